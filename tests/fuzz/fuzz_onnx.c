/* The ONNX reader and writer (src/nn/onnx_read.c, onnx_write.c): any bytes as a .onnx file are either a graph
 * whose every tensor holds exactly the bytes its shape and type say (each is read to the end here, so that
 * ASan sees a size that lies), or refused with a message naming the file. A graph read is written back with
 * its first float initializer negated, and that file must read again with the new values and everything else
 * as before. A graph read is then compiled by the executor (src/nn/graph.c): a refusal names the file; a
 * compiled graph whose tensors are small runs a forward pass of 2 examples of zeros, which must succeed.
 * The seeds (corpus/onnx) are small PyTorch exports. */
#include "fuzz.h"

#include "nn/graph_impl.h"
#include "nn/onnx_graph.h"
#include "nograd/error.h"

/* Reads every byte of the tensor; returns a checksum so that the reads are not optimized away. */
static unsigned touch(const ng__onnx_tensor *t) {
  unsigned sum = (unsigned)t->ndim;
  const unsigned char *p = t->data;
  for (size_t k = 0; k < t->nbytes; k++)
    sum += p[k];
  return sum;
}

static unsigned walk(const ng__onnx_graph *g) {
  unsigned sum = (unsigned)strlen(g->producer);
  for (size_t i = 0; i < g->ninits; i++)
    sum += touch(&g->inits[i]) + (unsigned)strlen(g->inits[i].name);
  for (size_t j = 0; j < g->nnodes; j++) {
    const ng__onnx_node *n = &g->nodes[j];
    sum += (unsigned)(strlen(n->name) + strlen(n->op_type) + strlen(n->domain));
    for (size_t k = 0; k < n->ninputs; k++)
      sum += (unsigned)strlen(n->inputs[k]);
    for (size_t k = 0; k < n->noutputs; k++)
      sum += (unsigned)strlen(n->outputs[k]);
    for (size_t k = 0; k < n->nattrs; k++) {
      const ng__onnx_attr *a = &n->attrs[k];
      sum += (unsigned)strlen(a->name);
      if (a->type == NG__ATTR_STRING) sum += (unsigned)strlen(a->s);
      if (a->type == NG__ATTR_TENSOR) sum += touch(a->tensor);
      if (a->type == NG__ATTR_INTS)
        for (size_t c = 0; c < a->count; c++)
          sum += (unsigned)a->ints[c];
      if (a->type == NG__ATTR_FLOATS)
        for (size_t c = 0; c < a->count; c++)
          sum += a->floats[c] > 0;
    }
  }
  for (size_t k = 0; k < g->ninputs; k++)
    sum += (unsigned)(strlen(g->inputs[k].name) + g->inputs[k].ndim);
  for (size_t k = 0; k < g->noutputs; k++)
    sum += (unsigned)(strlen(g->outputs[k].name) + g->outputs[k].ndim);
  return sum;
}

/* Writes g with its first float initializer negated and checks the file read back. */
static void round_trip(const ng__onnx_graph *g) {
  size_t i = 0;
  while (i < g->ninits && g->inits[i].dtype != NG__ONNX_FLOAT)
    i++;
  if (i == g->ninits) return;
  const ng__onnx_tensor *t = &g->inits[i];
  size_t n = t->nbytes / sizeof(float);
  float *v = malloc(t->nbytes ? t->nbytes : 1);
  if (!v) abort();
  memcpy(v, t->data, t->nbytes);
  for (size_t k = 0; k < n; k++)
    v[k] = -v[k];
  const char *out = fuzz_path("written.onnx");
  const char *name = t->name;
  const float *vals = v;
  int st = ng__onnx_write(g, out, &name, &vals, 1, NULL, NULL, 0);
  if (st != NG_OK) {
    /* a file that was read is written unless names repeat (the writer then sees the first) */
    if (!strstr(ng_errmsg(), out) && !strstr(ng_errmsg(), g->path)) abort();
    free(v);
    return;
  }
  ng__onnx_graph *h = NULL;
  if (ng__onnx_read(out, &h) != NG_OK) abort(); /* what was written reads again */
  if (h->ninits != g->ninits || h->nnodes != g->nnodes || h->opset != g->opset) abort();
  size_t j = 0;
  while (strcmp(h->inits[j].name, name) != 0)
    j++;
  if (h->inits[j].nbytes != t->nbytes || memcmp(h->inits[j].data, v, t->nbytes) != 0) abort();
  ng__onnx_free(&h);
  free(v);
}

/* Compiles g and, when every tensor is small, runs a forward pass. */
static void execute(const ng__onnx_graph *g) {
  ng__graph *gr = NULL;
  if (ng__graph_compile(g, &gr) != NG_OK) {
    if (gr || !strstr(ng_errmsg(), g->path)) abort();
    return;
  }
  size_t total = 0;
  for (size_t i = 0; i < gr->nt; i++)
    total += gr->t[i].kind == NG__T_ACT ? ng__numel(&gr->t[i], 2) : 0;
  for (size_t i = 0; i < gr->nnodes; i++)
    total += (size_t)ng__ld(gr->nodes[i].scratch, 2);
  if (total < ((size_t)1 << 22)) {
    ng__graph_work *w = NULL;
    float *x = calloc(2 * gr->in_size + 1, sizeof *x);
    const float *out;
    if (!x || ng__graph_work_create(gr, 2, NULL, 0, &w) != NG_OK) abort();
    if (ng__graph_forward(gr, ng__graph_params(gr), w, x, 2, &out) != NG_OK) abort();
    volatile float first = gr->out_size ? out[0] : 0;
    (void)first;
    ng__graph_work_destroy(&w);
    free(x);
  }
  ng__graph_free(&gr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("model.onnx", data, size);
  ng__onnx_graph *g = NULL;
  int st = ng__onnx_read(path, &g);
  if (st != NG_OK) {
    if (g || !strstr(ng_errmsg(), path)) abort(); /* a refusal names the file and returns no graph */
    return 0;
  }
  volatile unsigned sum = walk(g);
  (void)sum;
  round_trip(g);
  execute(g);
  ng__onnx_free(&g);
  return 0;
}
