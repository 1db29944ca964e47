/* The native front end of the graph executor: a model described by a spec (src/nn/model.c) written as an
 * executor graph, so that native and ONNX models run on one set of kernels (src/nn/ops/).
 *
 * Each layer becomes at most three nodes, in spec order, over tensors named "input" (value 0) and "vI" (the
 * output of layer I-1); a layer that computes nothing (the residual marker, dropout outside training or with
 * p = 0) adds no node and its value is its input's tensor:
 *
 *   conv2d     Conv (kernel_shape, strides, pads)       maxpool, avgpool  MaxPool, AveragePool
 *   dense      Gemm (transB = 1)                         flatten           Flatten (axis 1)
 *   relu, tanh, sigmoid   Relu, Tanh, Sigmoid            gelu              ai.nograd Gelu
 *   softmax    Softmax (axis 1); on C H W: Flatten, Softmax, Reshape back
 *   batchnorm  BatchNormalization                        layernorm         LayerNormalization (axis -1)
 *   dropout    ai.nograd Dropout (training, p > 0)       end               Add (group output + skip)
 *
 * The parameters are the model's tensors, read by the nodes in spec order, so the executor's parameter
 * layout is the model's (checked when compiled). An evaluation graph is fused as the executor fuses ONNX
 * graphs (a conv2d with the batchnorm and relu after it), except at the output of the first linear layer,
 * which stays visible for glue's partial passes (ng_nn_forward_range). A training graph is not fused: the
 * backward pass (src/nn/forward.c) reads every layer's input or output. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph.h"
#include "nn/nn_impl.h"
#include "nn/onnx_graph.h"
#include "nograd/error.h"

#define NAME_LEN 96

typedef struct {
  ng__onnx_graph *g;
  size_t ncap, icap;
  int failed;
} builder;

static char *bstr(builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *bstr(builder *b, const char *fmt, ...) {
  char buf[NAME_LEN + 32];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  char *s = strdup(buf);
  if (!s) b->failed = 1;
  return s;
}

/* A node of `nin` inputs and one output (names copied); attributes are added after. */
static ng__onnx_node *node(builder *b, const char *domain, const char *op, const char *name, size_t nin,
                           const char *const *in, const char *out) {
  if (b->failed || b->g->nnodes >= b->ncap) {
    b->failed = 1;
    return NULL;
  }
  ng__onnx_node *n = &b->g->nodes[b->g->nnodes++];
  /* one spare zeroed entry each, as ng__onnx_free expects */
  n->inputs = calloc(nin + 1, sizeof *n->inputs);
  n->outputs = calloc(2, sizeof *n->outputs);
  n->attrs = calloc(4, sizeof *n->attrs);
  n->name = bstr(b, "%s", name);
  n->op_type = bstr(b, "%s", op);
  n->domain = bstr(b, "%s", domain);
  if (!n->inputs || !n->outputs || !n->attrs) b->failed = 1;
  if (b->failed) return NULL;
  for (size_t k = 0; k < nin; k++, n->ninputs++)
    n->inputs[k] = bstr(b, "%s", in[k]);
  n->outputs[0] = bstr(b, "%s", out);
  n->noutputs = 1;
  return b->failed ? NULL : n;
}

static ng__onnx_attr *attr(builder *b, ng__onnx_node *n, const char *name, ng__attr_type type) {
  if (!n || n->nattrs >= 3) {
    b->failed = 1;
    return NULL;
  }
  ng__onnx_attr *a = &n->attrs[n->nattrs++];
  a->type = type;
  a->name = bstr(b, "%s", name);
  return a;
}

static void attr_int(builder *b, ng__onnx_node *n, const char *name, int64_t v) {
  ng__onnx_attr *a = attr(b, n, name, NG__ATTR_INT);
  if (a) a->i = v;
}

static void attr_float(builder *b, ng__onnx_node *n, const char *name, double v) {
  ng__onnx_attr *a = attr(b, n, name, NG__ATTR_FLOAT);
  if (a) a->f = v;
}

/* An INTS attribute of `count` copies of v, or of v's four values when count is 4 and v4 is given. */
static void attr_ints(builder *b, ng__onnx_node *n, const char *name, size_t count, int64_t v) {
  ng__onnx_attr *a = attr(b, n, name, NG__ATTR_INTS);
  if (!a) return;
  if (!(a->ints = malloc(count * sizeof *a->ints))) {
    b->failed = 1;
    return;
  }
  for (size_t k = 0; k < count; k++)
    a->ints[k] = v;
  a->count = count;
}

/* An initializer: a float one (a parameter) borrows the model's values, which the compiled graph does not
 * copy (no_values); an integer one (a shape) owns a copy. */
static ng__onnx_tensor *init(builder *b, const char *name, int32_t dtype, size_t ndim, const int64_t *dims,
                             const void *data, size_t nbytes) {
  if (b->failed || b->g->ninits >= b->icap) {
    b->failed = 1;
    return NULL;
  }
  ng__onnx_tensor *t = &b->g->inits[b->g->ninits++];
  t->name = bstr(b, "%s", name);
  t->dtype = dtype;
  t->ndim = ndim;
  memcpy(t->dims, dims, ndim * sizeof *dims);
  t->nbytes = nbytes;
  if (dtype == NG__ONNX_FLOAT) {
    t->data = (void *)(uintptr_t)data;
    return t;
  }
  if (!(t->data = malloc(nbytes ? nbytes : 1))) {
    b->failed = 1;
    return NULL;
  }
  memcpy(t->data, data, nbytes);
  return t;
}

static const char *kind_word(ng_layer_kind k) {
  static const char *const w[] = {"conv2d",    "maxpool",   "avgpool", "flatten",  "dense",
                                  "relu",      "gelu",      "tanh",    "sigmoid",  "softmax",
                                  "batchnorm", "layernorm", "dropout", "residual", "end"};
  return (size_t)k < sizeof w / sizeof w[0] ? w[k] : "layer";
}

/* The graph of model m (values named in vname[0..nlayers], first nodes of the layers in first[]). */
static void build(builder *b, const ng_model *m, bool training, char (*vname)[NAME_LEN], size_t *first) {
  ng__onnx_graph *g = b->g;
  for (size_t j = 0; j < m->ntensors; j++) { /* the parameters, in index order */
    const ng_tensor *T = &m->tensors[j];
    int64_t d[4];
    size_t numel = 1;
    for (size_t k = 0; k < T->ndim; k++) {
      d[k] = (int64_t)T->shape[k];
      numel *= T->shape[k];
    }
    init(b, T->name, NG__ONNX_FLOAT, T->ndim, d, m->params + T->offset, numel * sizeof(float));
  }
  snprintf(vname[0], NAME_LEN, "input");
  for (size_t i = 0; i < m->nlayers && !b->failed; i++) {
    const ng_layer *L = &m->layers[i];
    const char *x = vname[i], *y = vname[i + 1];
    char nm[NAME_LEN];
    snprintf(nm, sizeof nm, "%s%s%s (line %d)", kind_word(L->kind), L->name[0] ? " " : "", L->name, L->line);
    snprintf(vname[i + 1], NAME_LEN, "v%zu", i + 1);
    first[i] = g->nnodes;
    const char *p[5] = {x};
    for (size_t k = 0; k < L->ntensors && k < 4; k++)
      p[k + 1] = m->tensors[L->tensor + k].name;
    ng__onnx_node *n = NULL;
    switch (L->kind) {
      case NG_L_CONV2D:
        n = node(b, "", "Conv", nm, 3, p, y);
        attr_ints(b, n, "kernel_shape", 2, (int64_t)L->k);
        attr_ints(b, n, "strides", 2, (int64_t)L->stride);
        attr_ints(b, n, "pads", 4, (int64_t)L->pad);
        break;
      case NG_L_MAXPOOL:
      case NG_L_AVGPOOL:
        n = node(b, "", L->kind == NG_L_MAXPOOL ? "MaxPool" : "AveragePool", nm, 1, p, y);
        attr_ints(b, n, "kernel_shape", 2, (int64_t)L->k);
        attr_ints(b, n, "strides", 2, (int64_t)L->stride);
        break;
      case NG_L_FLATTEN:
        attr_int(b, node(b, "", "Flatten", nm, 1, p, y), "axis", 1);
        break;
      case NG_L_DENSE:
        attr_int(b, node(b, "", "Gemm", nm, 3, p, y), "transB", 1);
        break;
      case NG_L_RELU:
      case NG_L_TANH:
      case NG_L_SIGMOID:
      case NG_L_GELU: {
        const char *op = L->kind == NG_L_RELU      ? "Relu"
                         : L->kind == NG_L_TANH    ? "Tanh"
                         : L->kind == NG_L_SIGMOID ? "Sigmoid"
                                                   : "Gelu";
        node(b, L->kind == NG_L_GELU ? "ai.nograd" : "", op, nm, 1, p, y);
        break;
      }
      case NG_L_SOFTMAX:
        if (L->in_ndim == 1) {
          attr_int(b, node(b, "", "Softmax", nm, 1, p, y), "axis", 1);
        } else { /* over all of an example's C H W values */
          char flat[NAME_LEN], soft[NAME_LEN], shape[NAME_LEN];
          snprintf(flat, sizeof flat, "%s.flat", y);
          snprintf(soft, sizeof soft, "%s.softmax", y);
          snprintf(shape, sizeof shape, "%s.shape", y);
          attr_int(b, node(b, "", "Flatten", nm, 1, p, flat), "axis", 1);
          const char *q[2] = {flat, shape};
          attr_int(b, node(b, "", "Softmax", nm, 1, q, soft), "axis", 1);
          int64_t dims[1] = {4},
                  sh[4] = {-1, (int64_t)L->in_shape[0], (int64_t)L->in_shape[1], (int64_t)L->in_shape[2]};
          init(b, shape, NG__ONNX_INT64, 1, dims, sh, sizeof sh);
          q[0] = soft;
          node(b, "", "Reshape", nm, 2, q, y);
        }
        break;
      case NG_L_BATCHNORM:
        attr_float(b, node(b, "", "BatchNormalization", nm, 5, p, y), "epsilon", L->eps);
        break;
      case NG_L_LAYERNORM:
        n = node(b, "", "LayerNormalization", nm, 3, p, y);
        attr_int(b, n, "axis", -1);
        attr_float(b, n, "epsilon", L->eps);
        break;
      case NG_L_DROPOUT:
        if (training && L->p > 0) {
          n = node(b, "ai.nograd", "Dropout", nm, 1, p, y);
          attr_float(b, n, "ratio", L->p);
          attr_int(b, n, "layer", (int64_t)i);
        } else {
          snprintf(vname[i + 1], NAME_LEN, "%s", x);
        }
        break;
      case NG_L_RESIDUAL:
        snprintf(vname[i + 1], NAME_LEN, "%s", x);
        break;
      case NG_L_END: {
        const char *q[2] = {x, vname[L->match]}; /* the group's output, then its input */
        node(b, "", "Add", nm, 2, q, y);
        break;
      }
    }
  }
  if (!strcmp(vname[m->nlayers], "input")) { /* nothing computes: the output is a view of the input */
    const char *q[1] = {"input"};
    snprintf(vname[m->nlayers], NAME_LEN, "output");
    node(b, "", "Identity", "identity", 1, q, "output"); /* the last layer's, for ranges that end there */
  }
  first[m->nlayers] = g->nnodes;
  if (b->failed) return;
  g->inputs = calloc(1, sizeof *g->inputs);
  g->outputs = calloc(1, sizeof *g->outputs);
  if (!g->inputs || !g->outputs) {
    b->failed = 1;
    return;
  }
  ng__onnx_value *in = &g->inputs[0];
  g->ninputs = 1;
  in->name = bstr(b, "input");
  in->dtype = NG__ONNX_FLOAT;
  in->has_shape = 1;
  in->ndim = 1 + m->in_ndim;
  in->dims[0] = -1;
  snprintf(in->dim_param[0], sizeof in->dim_param[0], "batch");
  for (size_t k = 0; k < m->in_ndim; k++)
    in->dims[k + 1] = (int64_t)m->in_shape[k];
  g->outputs[0].name = bstr(b, "%s", vname[m->nlayers]);
  g->outputs[0].dtype = NG__ONNX_FLOAT;
  g->noutputs = 1;
}

void ng__native_free(ng__native_graph *ng) {
  if (!ng) return;
  ng__graph_free(&ng->gr);
  free(ng->value);
  free(ng->node);
  memset(ng, 0, sizeof *ng);
}

int ng__native_compile(const ng_model *m, bool training, ng__native_graph *out) {
  memset(out, 0, sizeof *out);
  size_t n = m->nlayers;
  builder b = {0};
  b.ncap = 3 * n + 2;
  b.icap = m->ntensors + n + 1;
  char(*vname)[NAME_LEN] = calloc(n + 1, sizeof *vname);
  ng__onnx_graph *g = calloc(1, sizeof *g);
  out->value = calloc(n + 1, sizeof *out->value);
  out->node = calloc(n + 1, sizeof *out->node);
  int st = NG_OK;
  if (!vname || !g || !out->value || !out->node || !(g->nodes = calloc(b.ncap + 1, sizeof *g->nodes)) ||
      !(g->inits = calloc(b.icap + 1, sizeof *g->inits)) || !(g->path = strdup("native model"))) {
    b.failed = 1;
  } else {
    g->opset = 17;
    g->native = 1;
    b.g = g;
    build(&b, m, training, vname, out->node);
  }
  if (b.failed) {
    st = ng_error(NG_ENOMEM, "native model: out of memory for its graph");
    goto done;
  }
  size_t fl, fl_size, fan_in;
  const char *pin = NULL;
  if (!training && ng_model_first_linear(m, &fl, &fl_size, &fan_in) == NG_OK) pin = vname[fl + 1];
  ng_error_clear();
  ng__compile_opts opts = {training, &pin, pin ? 1 : 0, true};
  NG_TRY(st, ng__graph_compile_opts(g, &opts, &out->gr), done);
  /* The executor's parameter layout must be the model's: the same entries at the same offsets. */
  bool same = ng__graph_nparams(out->gr) == m->nparams && ng__graph_ntensors(out->gr) == m->ntensors &&
              ng__graph_nnodes(out->gr) == g->nnodes;
  for (size_t j = 0; same && j < m->ntensors; j++) {
    const char *name, *source;
    size_t off, nd;
    const int64_t *dims;
    ng__graph_tensor(out->gr, j, &name, &off, &nd, &dims, &source);
    same = !strcmp(name, m->tensors[j].name) && off == m->tensors[j].offset;
  }
  for (size_t v = 0; same && v <= n; v++)
    same = (out->value[v] = ng__graph_find(out->gr, vname[v])) >= 0;
  if (!same) st = ng_error(NG_EINTERNAL, "native model: its executor graph does not keep the model's layout");
done:
  for (size_t i = 0; g && i < g->ninits; i++) /* the borrowed values are the model's */
    if (g->inits[i].dtype == NG__ONNX_FLOAT) g->inits[i].data = NULL;
  ng__onnx_free(&g);
  free(vname);
  if (st != NG_OK) ng__native_free(out);
  return st;
}
