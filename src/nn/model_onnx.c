/* ONNX models behind the ng_model interface: a .onnx file read with the ONNX reader (src/nn/onnx_read.c),
 * compiled by the graph executor (src/nn/graph.h), and presented as a model like a native one: the flat
 * parameter vector and its named-tensor index (the executor's parameter entries), the input shape of one
 * example, the output size, forward passes on a workspace. Every command that takes a model therefore takes
 * an ONNX file without knowing it, and the data-parallel determinism contract holds as for native models.
 *
 * The model's "spec text" is a canonical description of the graph (its input, one line per computing node in
 * file order: op type, name, inputs and outputs, attributes; then one line per parameter with its dimensions;
 * torch's Identity copies of equal tensors are parameters, not nodes, there;
 * not the opset, so that experts exported at different opsets mix when their graphs agree), so that two
 * experts of one architecture have the same text and the first line that differs names the node or tensor
 * at fault. It is never parsed.
 *
 * What is shared between clones (the compiled graph and the parsed file the writer rewrites) is reference
 * counted: ranks are single-threaded, so a plain counter suffices. Writing keeps the file's graph and
 * replaces the parameters' data (ng__onnx_write): a parameter that the exporter had turned into an Identity
 * of another initializer is written only when its value now differs from that initializer's, so that an
 * unchanged model is written with its graph unchanged. A stored decision threshold (retrofit's `threshold`)
 * lives in the model's metadata_props under "nograd.threshold". */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nn/graph.h"
#include "nn/nn_impl.h"
#include "nn/onnx_graph.h"
#include "nograd/error.h"

struct ng__onnx_model {
  int refs;
  ng__graph *graph;
  ng__onnx_graph *file; /* the parsed file, for the writer */
};

bool ng__onnx_path(const char *path) {
  size_t n = path ? strlen(path) : 0;
  return n > 5 && !strcmp(path + n - 5, ".onnx");
}

ng__onnx_model *ng__onnx_model_retain(ng__onnx_model *o) {
  if (o) o->refs++;
  return o;
}

void ng__onnx_model_release(ng__onnx_model **op) {
  if (!op || !*op) return;
  ng__onnx_model *o = *op;
  if (--o->refs == 0) {
    ng__graph_free(&o->graph);
    ng__onnx_free(&o->file);
    free(o);
  }
  *op = NULL;
}

/* ---- The canonical description ---- */

typedef struct {
  char *buf;
  size_t len, cap;
  int failed;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...) {
  if (t->failed) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = 1;
      return;
    }
    if (t->buf && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap : 4096;
    while (cap <= t->len + (size_t)n)
      if (!ng__mul(cap, 2, &cap)) {
        t->failed = 1;
        return;
      }
    char *b = realloc(t->buf, cap);
    if (!b) {
      t->failed = 1;
      return;
    }
    t->buf = b;
    t->cap = cap;
  }
}

static void put_attr(text *t, const ng__onnx_attr *a) {
  put(t, " %s=", a->name);
  switch (a->type) {
    case NG__ATTR_INT:
      put(t, "%lld", (long long)a->i);
      break;
    case NG__ATTR_FLOAT:
      put(t, "%.9g", a->f);
      break;
    case NG__ATTR_STRING:
      put(t, "'%s'", a->s ? a->s : "");
      break;
    case NG__ATTR_INTS:
      for (size_t k = 0; k < a->count; k++)
        put(t, "%s%lld", k ? "," : "[", (long long)a->ints[k]);
      put(t, a->count ? "]" : "[]");
      break;
    case NG__ATTR_FLOATS:
      for (size_t k = 0; k < a->count; k++)
        put(t, "%s%.9g", k ? "," : "[", a->floats[k]);
      put(t, a->count ? "]" : "[]");
      break;
    case NG__ATTR_TENSOR:
      put(t, "tensor");
      if (a->tensor)
        for (size_t k = 0; k < a->tensor->ndim; k++)
          put(t, "%s%lld", k ? "x" : ":", (long long)a->tensor->dims[k]);
      break;
    default:
      put(t, "?");
  }
}

/* Whether n is an Identity of a float initializer (torch's deduplication): not a computing node. */
static bool param_identity(const ng__onnx_graph *g, const ng__onnx_node *n) {
  if (strcmp(n->op_type, "Identity") || n->ninputs != 1 || n->noutputs != 1) return false;
  for (size_t i = 0; i < g->ninits; i++)
    if (!strcmp(g->inits[i].name, n->inputs[0])) return g->inits[i].dtype == NG__ONNX_FLOAT;
  return false;
}

static char *describe(const ng__onnx_graph *g, const ng__graph *gr) {
  text t = {0};
  for (size_t i = 0; i < g->ninputs; i++) {
    const ng__onnx_value *v = &g->inputs[i];
    put(&t, "input %s", v->name);
    for (size_t k = 0; k < v->ndim; k++)
      put(&t, k ? "x%s" : " %s", v->dims[k] < 0 ? (v->dim_param[k][0] ? v->dim_param[k] : "?") : "");
    for (size_t k = 0; k < v->ndim; k++)
      if (v->dims[k] >= 0) put(&t, " [%zu]=%lld", k, (long long)v->dims[k]);
    put(&t, "\n");
  }
  for (size_t i = 0; i < g->nnodes; i++) {
    const ng__onnx_node *n = &g->nodes[i];
    if (param_identity(g, n)) continue; /* torch's copy of an equal tensor: a parameter, listed below */
    put(&t, "node %s %s%s%s", n->name, n->domain[0] ? n->domain : "", n->domain[0] ? "." : "", n->op_type);
    for (size_t k = 0; k < n->ninputs; k++)
      put(&t, "%s%s", k ? "," : " (", n->inputs[k]);
    put(&t, n->ninputs ? ") ->" : " () ->");
    for (size_t k = 0; k < n->noutputs; k++)
      put(&t, "%s%s", k ? "," : " ", n->outputs[k]);
    for (size_t k = 0; k < n->nattrs; k++)
      put_attr(&t, &n->attrs[k]);
    put(&t, "\n");
  }
  for (size_t i = 0; i < ng__graph_ntensors(gr); i++) {
    const char *name, *source;
    size_t off, ndim;
    const int64_t *dims;
    ng__graph_tensor(gr, i, &name, &off, &ndim, &dims, &source);
    put(&t, "param %s", name);
    for (size_t k = 0; k < ndim; k++)
      put(&t, "%s%lld", k ? "x" : " ", (long long)dims[k]);
    put(&t, "\n");
  }
  if (t.failed) {
    free(t.buf);
    return NULL;
  }
  return t.buf ? t.buf : strdup("");
}

/* ---- Reading ---- */

/* The public index allows four dimensions; a parameter of higher rank keeps its leading dimensions folded
 * into the first one (its numel and offset are what matter to every user of the index). Rank 0 is [1]. */
static void index_shape(size_t ndim, const int64_t *dims, ng_tensor *t) {
  if (ndim == 0) {
    t->ndim = 1;
    t->shape[0] = 1;
    return;
  }
  size_t skip = ndim > 4 ? ndim - 4 : 0;
  t->ndim = ndim - skip;
  for (size_t k = 0; k < 4; k++)
    t->shape[k] = 1;
  for (size_t k = 0; k <= skip; k++)
    t->shape[0] *= (size_t)dims[k];
  for (size_t k = skip + 1; k < ndim; k++)
    t->shape[k - skip] = (size_t)dims[k];
}

/* Fills m's index, parameters, shapes and attributes from the compiled graph. */
static int fill_model(ng_model *m, const char *path, const ng__graph *gr, const ng__onnx_graph *g) {
  size_t T = ng__graph_ntensors(gr), P = ng__graph_nparams(gr);
  m->tensors = calloc(T ? T : 1, sizeof *m->tensors);
  m->params = ng__mallocn(P ? P : 1, 1, sizeof *m->params);
  if (!m->tensors || !m->params) return ng_error(NG_ENOMEM, "%s: out of memory for %zu parameters", path, P);
  m->ntensors = T;
  m->nparams = P;
  memcpy(m->params, ng__graph_params(gr), P * sizeof *m->params);
  for (size_t i = 0; i < T; i++) {
    const char *name, *source;
    size_t off, ndim;
    const int64_t *dims;
    ng__graph_tensor(gr, i, &name, &off, &ndim, &dims, &source);
    if (strlen(name) >= sizeof m->tensors[i].name)
      return ng_error(NG_EFORMAT, "%s: the parameter name '%.60s...' is longer than %zu characters", path,
                      name, sizeof m->tensors[i].name - 1);
    strcpy(m->tensors[i].name, name);
    m->tensors[i].offset = off;
    index_shape(ndim, dims, &m->tensors[i]);
  }
  for (size_t i = 0; i < P; i++)
    if (!isfinite(m->params[i])) {
      for (size_t k = T; k-- > 0;)
        if (m->tensors[k].offset <= i)
          return ng_error(NG_ENUMERIC, "%s: initializer %s has a non-finite value (%g) at element %zu", path,
                          m->tensors[k].name, (double)m->params[i], i - m->tensors[k].offset);
      return ng_error(NG_ENUMERIC, "%s: parameter %zu is not finite", path, i);
    }
  const char *iname, *oname;
  size_t indim, ondim, isize, osize;
  const int64_t *idims, *odims;
  ng__graph_input(gr, &iname, &indim, &idims, &isize);
  ng__graph_output(gr, &oname, &ondim, &odims, &osize);
  if (indim < 1 || indim > 3)
    return ng_error(NG_EFORMAT,
                    "%s: graph input %s has %zu dimensions per example; nograd's datasets hold examples of 1 "
                    "to 3 (F, S x d, C x H x W)",
                    path, iname, indim);
  m->in_ndim = indim;
  for (size_t k = 0; k < indim; k++)
    m->in_shape[k] = (size_t)idims[k];
  m->in_size = isize;
  m->out_size = osize;
  if (ondim == 1 && osize >= 2) NG_CALL(ng_model_set_attr(m, "classes", (int64_t)osize));
  (void)g;
  return NG_OK;
}

/* The threshold stored in the file's metadata, if any. */
static int read_threshold(ng_model *m, const char *path, const ng__onnx_graph *g) {
  for (size_t i = 0; i < g->nmeta; i++) {
    if (strcmp(g->meta_keys[i], "nograd.threshold") != 0) continue;
    char *end;
    double t = strtod(g->meta_values[i], &end);
    if (end == g->meta_values[i] || *end || !(t >= 0 && t <= 1))
      return ng_error(NG_EFORMAT, "%s: metadata nograd.threshold is '%.40s', not a number in [0, 1]", path,
                      g->meta_values[i]);
    NG_CALL(ng_model_set_threshold(m, t));
  }
  return NG_OK;
}

int ng__onnx_model_read(const char *path, ng_model **out) {
  *out = NULL;
  ng__onnx_graph *g = NULL;
  ng__onnx_model *o = NULL;
  ng_model *m = NULL;
  int st;
  NG_TRY(st, ng__onnx_read(path, &g), fail);
  if (!(o = calloc(1, sizeof *o)) || !(m = calloc(1, sizeof *m))) {
    st = ng_error(NG_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  o->refs = 1;
  NG_TRY(st, ng__graph_compile(g, &o->graph), fail);
  o->file = g;
  g = NULL;
  m->onnx = o;
  o = NULL;
  NG_TRY(st, fill_model(m, path, m->onnx->graph, m->onnx->file), fail);
  NG_TRY(st, read_threshold(m, path, m->onnx->file), fail);
  if (!(m->spec = describe(m->onnx->file, m->onnx->graph))) {
    st = ng_error(NG_ENOMEM, "%s: out of memory", path);
    goto fail;
  }
  *out = m;
  return NG_OK;
fail:
  ng__onnx_free(&g);
  ng__onnx_model_release(&o);
  ng_model_destroy(&m);
  return st;
}

/* ---- Writing ---- */

int ng__onnx_model_write(const ng_model *m, const char *path) {
  if (!ng__onnx_path(path))
    return ng_error(NG_EINVAL,
                    "%s: an ONNX model is written as an ONNX file: give the output a name ending in .onnx",
                    path);
  const ng__graph *gr = m->onnx->graph;
  size_t T = ng__graph_ntensors(gr), count = 0;
  const char **names = calloc(T ? T : 1, sizeof *names);
  const float **values = calloc(T ? T : 1, sizeof *values);
  int st = NG_OK;
  if (!names || !values) {
    st = ng_error(NG_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  for (size_t i = 0; i < T; i++) {
    const char *name, *source;
    size_t off, ndim;
    const int64_t *dims;
    ng__graph_tensor(gr, i, &name, &off, &ndim, &dims, &source);
    if (source) { /* an Identity of `source`: written only when it now differs */
      size_t soff, numel = 1;
      for (size_t k = 0; k < ndim; k++)
        numel *= (size_t)dims[k];
      if (ng_model_find(m, source, &soff, NULL, NULL) == NG_OK &&
          !memcmp(m->params + off, m->params + soff, numel * sizeof *m->params))
        continue;
    }
    names[count] = name;
    values[count++] = m->params + off;
  }
  char tbuf[32] = "";
  double t = ng_model_threshold(m);
  if (!isnan(t)) snprintf(tbuf, sizeof tbuf, "%.17g", t);
  const char *mkey = "nograd.threshold", *mval = tbuf;
  st = ng__onnx_write(m->onnx->file, path, names, values, count, &mkey, &mval, isnan(t) ? 0 : 1);
done:
  free(names);
  free(values);
  return st;
}

/* ---- Forward passes ---- */

int ng__onnx_work_create(const ng_model *m, size_t max_batch, bool training, struct ng__graph_work **out) {
  if (training)
    return ng_error(
        NG_EINVAL,
        "this is an ONNX model: nograd evaluates it but has no backward pass for it (training and "
        "glue --method fullgrad need a native model; fine-tune the ONNX model in PyTorch)");
  return ng__graph_work_create(m->onnx->graph, max_batch, NULL, 0, out);
}

int ng__onnx_forward(const ng_model *m, const float *params, struct ng__graph_work *w, const float *x,
                     size_t batch, const float **out) {
  return ng__graph_forward(m->onnx->graph, params, w, x, batch, out);
}

int ng__onnx_node_params(const ng_model *m, size_t i, const char **name, const char **op_type, size_t *weight,
                         size_t *bias) {
  if (i >= ng__graph_nnodes(m->onnx->graph)) return NG_ENOTFOUND;
  ng__graph_node(m->onnx->graph, i, name, op_type, weight, bias);
  return NG_OK;
}
