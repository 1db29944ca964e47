/* The ops of domain ai.nograd: what a native model's spec says that no ONNX op of opsets 13 to 17 says in one
 * node. Only graphs built by the native front end (src/nn/native_graph.c) may use them; a file may not.
 *
 * Gelu: y = x/2 (1 + erf(x / sqrt 2)), the exact form (ONNX's Gelu of opset 20, approximate "none"); a row of
 * the unary ops in elementwise.c.
 *
 * Dropout: inverted dropout in training, with attributes ratio (p in [0, 1)) and layer (the spec layer's
 * index). An element is kept when its u32 draw from stream (seed, NG_RNG_DROPOUT, step, layer), batch-major,
 * is at least p 2^32, and then scaled by 1/(1-p). The key is the workspace's (ng__graph_work_set_dropout),
 * so that the backward pass regenerates the same mask. */
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nn/kernels.h"
#include "nograd/error.h"
#include "nograd/rng.h"

extern const ng__op ng__op_Gelu; /* elementwise.c, kept out of the ONNX table */

typedef struct {
  double p;
  uint32_t layer;
} dropout_attr;

static int dropout_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"ratio", "layer", NULL};
  NG_CALL(ng__attr_only(cx, known));
  double p = ng__attr_float(cx, "ratio", -1);
  int64_t layer = ng__attr_int(cx, "layer", -1);
  if (!(p >= 0 && p < 1) || layer < 0 || layer > UINT32_MAX)
    return ng__op_error(cx, "ratio must be in [0, 1) and layer in [0, 2^32)");
  dropout_attr *a = malloc(sizeof *a);
  if (!a) return ng_error(NG_ENOMEM, "out of memory");
  a->p = p;
  a->layer = (uint32_t)layer;
  n->attr = a;
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x || !x->is_float || n->nin != 1 || n->nout != 1)
    return ng__op_error(cx, "expected one float input and one output");
  ng__set_float(ng__out(cx, n, 0), x->ndim, x->dims);
  return NG_OK;
}

void ng__dropout_apply(uint64_t seed, uint64_t step, uint32_t layer, double p, const float *x, size_t n,
                       float *y) {
  ng_rng g;
  ng_rng_init(&g, seed, NG_RNG_DROPOUT, (uint32_t)step, layer);
  double thresh = p * 4294967296.0;
  float scale = (float)(1.0 / (1.0 - p));
  for (size_t i = 0; i < n; i++)
    y[i] = (double)ng_rng_u32(&g) >= thresh ? x[i] * scale : 0.0f;
}

static void dropout_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const dropout_attr *a = n->attr;
  ng__dropout_apply(r->seed, r->step, a->layer, a->p, r->ptr[n->in[0]], ng__numel(&gr->t[n->out[0]], r->B),
                    r->ptr[n->out[0]]);
}

static const ng__op dropout = {"Dropout", dropout_setup, dropout_run};

const ng__op *ng__op_find_native(const char *name) {
  if (!strcmp(name, ng__op_Gelu.name)) return &ng__op_Gelu;
  if (!strcmp(name, dropout.name)) return &dropout;
  return NULL;
}
