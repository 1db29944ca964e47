/* The graph executor (src/nn/graph.h): compiling an ONNX graph into tensors and nodes in execution order,
 * and the helpers the ops use while it is compiled. The workspace plan and the forward pass are in
 * graph_run.c; the helpers the ops call while they are set up are in graph_ops.c.
 *
 * Compiling, in order: the graph input (the batch is its dimension 0), the initializers (float ones that a
 * node reads become parameters, integer ones folded constants), the Identity nodes of a float initializer
 * (parameters of their own, torch's deduplication) and Constant nodes (constants), then the other nodes in
 * a topological order (Kahn's algorithm, ties by file order, so the order is a function of the file), each
 * through its op's setup, which infers its outputs' dims and folds integer arithmetic. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nn/graph_impl.h"
#include "nograd/error.h"

/* ---- Names: an open-addressing table from tensor name to index ---- */

typedef struct {
  size_t cap;
  int *slot; /* tensor index + 1; 0 = empty */
} names_t;

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int find_name(const ng__graph *gr, const char *name) {
  const names_t *nt = gr->names;
  for (size_t i = hash(name) & (nt->cap - 1);; i = (i + 1) & (nt->cap - 1)) {
    int s = nt->slot[i];
    if (!s) return -1;
    if (!strcmp(gr->t[s - 1].name, name)) return s - 1;
  }
}

static void put_name(ng__graph *gr, int index) {
  names_t *nt = gr->names;
  size_t i = hash(gr->t[index].name) & (nt->cap - 1);
  while (nt->slot[i])
    i = (i + 1) & (nt->cap - 1);
  nt->slot[i] = index + 1;
}

/* A new tensor named `name` (which must be new); its index, or -1 when out of memory. */
static int add_tensor(ng__graph *gr, const char *name, ng__tkind kind) {
  if (gr->nt == gr->tcap) return -1; /* capacity is counted before */
  ng__gt *t = &gr->t[gr->nt];
  memset(t, 0, sizeof *t);
  if (!(t->name = strdup(name))) return -1;
  t->kind = kind;
  t->alias = -1;
  t->producer = -1;
  t->last_use = -1;
  t->is_float = kind != NG__T_INT;
  put_name(gr, (int)gr->nt);
  return (int)gr->nt++;
}

/* ---- Compiling ---- */

static int oom(const ng__graph *gr) {
  return ng_error(NG_ENOMEM, "%s: out of memory", gr->path);
}

/* A tensor proto as a constant tensor: floats as NG__T_CONST, integers as NG__T_INT. */
static int const_tensor(ng__graph *gr, const ng__onnx_tensor *src, const char *name, const char *what) {
  int i = find_name(gr, name);
  if (i >= 0) return ng_error(NG_EFORMAT, "%s: tensor %s is produced twice (%s)", gr->path, name, what);
  size_t numel = 1;
  for (size_t k = 0; k < src->ndim; k++)
    numel *= (size_t)src->dims[k];
  bool isf = src->dtype == NG__ONNX_FLOAT || src->dtype == NG__ONNX_DOUBLE;
  bool isi = src->dtype == NG__ONNX_INT64 || src->dtype == NG__ONNX_INT32 || src->dtype == NG__ONNX_BOOL ||
             src->dtype == NG__ONNX_INT8 || src->dtype == NG__ONNX_UINT8;
  if (!isf && !isi)
    return ng_error(NG_EFORMAT, "%s: %s %s has a data type nograd cannot compute with", gr->path, what, name);
  if ((i = add_tensor(gr, name, isf ? NG__T_CONST : NG__T_INT)) < 0) return oom(gr);
  ng__gt *t = &gr->t[i];
  t->ndim = src->ndim;
  for (size_t k = 0; k < src->ndim; k++)
    t->dims[k] = ng__ldc(src->dims[k]);
  t->count = numel;
  if (isf) {
    if (!(t->fdata = ng__mallocn(numel ? numel : 1, 1, sizeof *t->fdata))) return oom(gr);
    for (size_t e = 0; e < numel; e++)
      t->fdata[e] = src->dtype == NG__ONNX_FLOAT ? ((const float *)src->data)[e]
                                                 : (float)((const double *)src->data)[e];
  } else {
    if (!(t->ivals = ng__mallocn(numel ? numel : 1, 1, sizeof *t->ivals))) return oom(gr);
    for (size_t e = 0; e < numel; e++) {
      int64_t v = src->dtype == NG__ONNX_INT64   ? ((const int64_t *)src->data)[e]
                  : src->dtype == NG__ONNX_INT32 ? ((const int32_t *)src->data)[e]
                  : src->dtype == NG__ONNX_INT8  ? ((const int8_t *)src->data)[e]
                                                 : ((const uint8_t *)src->data)[e];
      t->ivals[e] = ng__ldc(v);
    }
  }
  return NG_OK;
}

static const ng__onnx_tensor *find_init(const ng__onnx_graph *g, const char *name) {
  for (size_t i = 0; i < g->ninits; i++)
    if (!strcmp(g->inits[i].name, name)) return &g->inits[i];
  return NULL;
}

/* Whether some node reads `name`. */
static bool is_read(const ng__onnx_graph *g, const char *name) {
  for (size_t i = 0; i < g->nnodes; i++)
    for (size_t k = 0; k < g->nodes[i].ninputs; k++)
      if (!strcmp(g->nodes[i].inputs[k], name)) return true;
  return false;
}

static bool is_param_identity(const ng__onnx_graph *g, const ng__onnx_node *n) {
  if (strcmp(n->op_type, "Identity") || n->ninputs != 1 || n->noutputs != 1) return false;
  const ng__onnx_tensor *src = find_init(g, n->inputs[0]);
  return src && src->dtype == NG__ONNX_FLOAT;
}

static int add_param(ng__graph *gr, const ng__onnx_tensor *src, const char *name, const char *source,
                     size_t *used) {
  if (find_name(gr, name) >= 0) return ng_error(NG_EFORMAT, "%s: tensor %s is defined twice", gr->path, name);
  int i = add_tensor(gr, name, NG__T_PARAM);
  if (i < 0) return oom(gr);
  ng__gt *t = &gr->t[i];
  size_t numel = 1;
  t->ndim = src->ndim;
  for (size_t k = 0; k < src->ndim; k++) {
    t->dims[k] = ng__ldc(src->dims[k]);
    numel *= (size_t)src->dims[k];
  }
  t->offset = *used;
  t->count = numel;
  if (source && !(t->source = strdup(source))) return oom(gr);
  if (gr->params) memcpy(gr->params + *used, src->data, numel * sizeof(float));
  gr->param_tensors[gr->nentries++] = i;
  *used += numel;
  return NG_OK;
}

/* A parameter in the making: its name, the initializer holding its values, and that initializer's name when
 * it comes from an Identity copy. */
typedef struct {
  const char *name;
  const ng__onnx_tensor *src;
  const char *source;
} param_ref;

/* The tensor a compute node's input names when it is a parameter: a float initializer, or the output of an
 * Identity of one (*source set); NULL otherwise. */
static const ng__onnx_tensor *param_of(const ng__onnx_graph *g, const char *name, const char **source) {
  *source = NULL;
  const ng__onnx_tensor *t = find_init(g, name);
  if (t) return t->dtype == NG__ONNX_FLOAT ? t : NULL;
  for (size_t i = 0; i < g->nnodes; i++)
    if (is_param_identity(g, &g->nodes[i]) && !strcmp(g->nodes[i].outputs[0], name)) {
      t = find_init(g, g->nodes[i].inputs[0]);
      *source = t->name;
      return t;
    }
  return NULL;
}

/* Parameters: every float initializer a computing node reads, directly or through torch's Identity copy of
 * an equal initializer, in the order the nodes first read them (file order, Identity copies skipped). The
 * order does not depend on which tensors the exporter deduplicated, so every model of one architecture has
 * the same layout: a fresh expert whose BatchNorm statistics equal its biases, and a trained one. */
static int add_params(ng__graph *gr, const ng__onnx_graph *g) {
  size_t cap = 1, n = 0, total = 0;
  for (size_t i = 0; i < g->nnodes; i++)
    cap += g->nodes[i].ninputs;
  param_ref *refs = calloc(cap, sizeof *refs);
  if (!refs) return oom(gr);
  int st = NG_OK;
  for (size_t i = 0; i < g->nnodes; i++) {
    const ng__onnx_node *nd = &g->nodes[i];
    if (is_param_identity(g, nd)) continue;
    for (size_t k = 0; k < nd->ninputs; k++) {
      const char *source;
      const ng__onnx_tensor *t = nd->inputs[k][0] ? param_of(g, nd->inputs[k], &source) : NULL;
      bool seen = !t;
      for (size_t j = 0; j < n && !seen; j++)
        seen = !strcmp(refs[j].name, nd->inputs[k]);
      if (seen) continue;
      size_t numel = 1;
      for (size_t d = 0; d < t->ndim; d++)
        numel *= (size_t)t->dims[d];
      if (!ng__add(total, numel, &total)) {
        st = oom(gr);
        goto done;
      }
      refs[n++] = (param_ref){nd->inputs[k], t, source};
    }
  }
  if (!gr->no_values) gr->params = ng__mallocn(total ? total : 1, 1, sizeof *gr->params);
  gr->param_tensors = calloc(n + 1, sizeof *gr->param_tensors);
  if ((!gr->params && !gr->no_values) || !gr->param_tensors) {
    st = oom(gr);
    goto done;
  }
  gr->nparams = total;
  size_t used = 0;
  for (size_t j = 0; j < n && st == NG_OK; j++)
    st = add_param(gr, refs[j].src, refs[j].name, refs[j].source, &used);
done:
  free(refs);
  if (st != NG_OK) return st;
  /* Integer and unread float initializers: constants. */
  for (size_t i = 0; i < g->ninits; i++) {
    const ng__onnx_tensor *it = &g->inits[i];
    if (find_name(gr, it->name) >= 0 || !is_read(g, it->name)) continue;
    NG_CALL(const_tensor(gr, it, it->name, "initializer"));
  }
  return NG_OK;
}

static int add_input(ng__graph *gr, const ng__onnx_graph *g) {
  const ng__onnx_value *in = NULL;
  for (size_t i = 0; i < g->ninputs; i++) {
    if (find_name(gr, g->inputs[i].name) >= 0) continue;
    if (in)
      return ng_error(NG_EFORMAT, "%s: the graph has more than one input (%s, %s); nograd feeds one",
                      gr->path, in->name, g->inputs[i].name);
    in = &g->inputs[i];
  }
  if (!in) return ng_error(NG_EFORMAT, "%s: the graph has no input", gr->path);
  if (in->dtype != NG__ONNX_FLOAT)
    return ng_error(NG_EFORMAT, "%s: graph input %s is not float32 (type %d)", gr->path, in->name, in->dtype);
  if (!in->has_shape || in->ndim < 2)
    return ng_error(NG_EFORMAT,
                    "%s: graph input %s has no shape of at least 2 dimensions (batch first); export with a "
                    "shaped example input",
                    gr->path, in->name);
  int i = add_tensor(gr, in->name, NG__T_INPUT);
  if (i < 0) return oom(gr);
  ng__gt *t = &gr->t[i];
  t->ndim = in->ndim;
  t->dims[0] = (ng__ldim){1, 0};
  gr->in_ndim = in->ndim - 1;
  gr->in_size = 1;
  for (size_t k = 1; k < in->ndim; k++) {
    if (in->dims[k] < 1)
      return ng_error(
          NG_EFORMAT,
          "%s: dimension %zu of graph input %s is %s; only the batch (dimension 0) may be dynamic", gr->path,
          k, in->name, in->dim_param[k][0] ? in->dim_param[k] : "unknown");
    t->dims[k] = ng__ldc(in->dims[k]);
    gr->in_dims[k - 1] = in->dims[k];
    gr->in_size *= (size_t)in->dims[k];
  }
  gr->input = i;
  return NG_OK;
}

/* Every output's dims: not negative, and its element count (a*B + c) with both parts below NG__MAX_ELEMENTS,
 * computed with checked arithmetic, so that no later size (the workspace, a loop bound) can wrap. */
static int check_sizes(const ng__gctx *cx, const ng__gnode *n) {
  for (size_t k = 0; k < n->nout; k++) {
    if (n->out[k] < 0) continue;
    const ng__gt *t = &cx->gr->t[n->out[k]];
    uint64_t a = 0, c = 1; /* numel = a*B + c, as a product of linear dims with at most one in B */
    for (size_t j = 0; j < t->ndim; j++) {
      ng__ldim d = t->dims[j];
      if (d.a < 0 || d.c < 0 || (d.a == 0 && d.c < 0) || d.a > NG__MAX_ELEMENTS || d.c > NG__MAX_ELEMENTS)
        return ng__op_error(cx, "output %s has dimension %zu of %lld*batch + %lld", t->name, j,
                            (long long)d.a, (long long)d.c);
      if (a && d.a) return ng__op_error(cx, "output %s has two dimensions that grow with the batch", t->name);
      size_t na, nc;
      if (!ng__mul((size_t)a, (size_t)d.c, &na) || !ng__mul((size_t)c, (size_t)d.a, &nc) ||
          !ng__add(na, nc, &na) || !ng__mul((size_t)c, (size_t)d.c, &nc) || na > (size_t)NG__MAX_ELEMENTS ||
          nc > (size_t)NG__MAX_ELEMENTS)
        return ng__op_error(cx, "output %s has more than %lld elements", t->name,
                            (long long)NG__MAX_ELEMENTS);
      a = na;
      c = nc;
    }
  }
  return NG_OK;
}

/* The nodes that compute, in a topological order; Identity-of-parameter and Constant nodes become tensors. */
static int add_nodes(ng__graph *gr, const ng__onnx_graph *g) {
  size_t N = g->nnodes;
  unsigned char *done = calloc(N + 1, 1);
  gr->nodes = calloc(N + 1, sizeof *gr->nodes);
  if (!done || !gr->nodes) {
    free(done);
    return oom(gr);
  }
  int st = NG_OK;
  for (size_t i = 0; i < N; i++) { /* Constants first: they have no inputs */
    const ng__onnx_node *n = &g->nodes[i];
    if (is_param_identity(g, n)) {
      done[i] = 1;
      continue;
    }
    if (strcmp(n->op_type, "Constant") || n->domain[0]) continue;
    done[i] = 1;
    ng__gctx cx = {gr, n};
    if (n->noutputs != 1 || n->nattrs != 1) {
      st = ng__op_error(&cx, "expected one output and one value attribute");
      goto out;
    }
    const ng__onnx_attr *a = &n->attrs[0];
    ng__onnx_tensor tmp = {0};
    int64_t iv;
    float fv;
    if (a->type == NG__ATTR_TENSOR && a->tensor) {
      tmp = *a->tensor;
    } else if (!strcmp(a->name, "value_int") || !strcmp(a->name, "value_ints")) {
      tmp.dtype = NG__ONNX_INT64;
      tmp.ndim = a->type == NG__ATTR_INTS ? 1 : 0;
      tmp.dims[0] = (int64_t)a->count;
      iv = a->i;
      tmp.data = a->type == NG__ATTR_INTS ? (void *)a->ints : (void *)&iv;
    } else if (!strcmp(a->name, "value_float")) {
      tmp.dtype = NG__ONNX_FLOAT;
      fv = (float)a->f;
      tmp.data = &fv;
    } else {
      st = ng__op_error(&cx, "attribute %s is not supported (value, value_int, value_ints, value_float are)",
                        a->name);
      goto out;
    }
    if ((st = const_tensor(gr, &tmp, n->outputs[0], "Constant")) != NG_OK) goto out;
  }
  for (;;) {
    bool progress = false;
    for (size_t i = 0; i < N; i++) {
      if (done[i]) continue;
      const ng__onnx_node *n = &g->nodes[i];
      bool ready = true;
      for (size_t k = 0; k < n->ninputs && ready; k++)
        ready = !n->inputs[k][0] || find_name(gr, n->inputs[k]) >= 0;
      if (!ready) continue;
      done[i] = 1;
      progress = true;
      ng__gctx cx = {gr, n};
      ng__gnode *gn = &gr->nodes[gr->nnodes];
      memset(gn, 0, sizeof *gn);
      bool own = g->native && !strcmp(n->domain, "ai.nograd");
      if (n->domain[0] && strcmp(n->domain, "ai.onnx") && !own) {
        st = ng__op_error(&cx, "domain %s is not the default ONNX domain", n->domain);
        goto out;
      }
      if (!(gn->op = own ? ng__op_find_native(n->op_type) : ng__op_find(n->op_type))) {
        char known[1024];
        ng__op_list(known, sizeof known);
        st = ng__op_error(&cx, "op %s is not in nograd's op set: %s", n->op_type, known);
        goto out;
      }
      if (n->ninputs > NG__MAX_IO || n->noutputs > NG__MAX_IO) {
        st = ng__op_error(&cx, "too many inputs or outputs");
        goto out;
      }
      if (!(gn->name = strdup(n->name)) || !(gn->op_type = strdup(n->op_type))) {
        st = oom(gr);
        goto out;
      }
      gr->nnodes++;
      gn->nin = n->ninputs;
      gn->nout = n->noutputs;
      for (size_t k = 0; k < n->ninputs; k++)
        gn->in[k] = n->inputs[k][0] ? find_name(gr, n->inputs[k]) : -1;
      for (size_t k = 0; k < n->noutputs; k++) {
        gn->out[k] = -1;
        if (!n->outputs[k][0]) continue;
        if (find_name(gr, n->outputs[k]) >= 0) {
          st = ng__op_error(&cx, "output %s is produced twice", n->outputs[k]);
          goto out;
        }
        if ((gn->out[k] = add_tensor(gr, n->outputs[k], NG__T_ACT)) < 0) {
          st = oom(gr);
          goto out;
        }
        gr->t[gn->out[k]].producer = (int)(gr->nnodes - 1);
      }
      if (gn->nout < 1 || gn->out[0] < 0) {
        st = ng__op_error(&cx, "the node has no output");
        goto out;
      }
      if ((st = gn->op->setup(&cx, gn)) != NG_OK || (st = check_sizes(&cx, gn)) != NG_OK) goto out;
    }
    if (!progress) break;
  }
  for (size_t i = 0; i < N; i++)
    if (!done[i]) {
      const ng__onnx_node *n = &g->nodes[i];
      for (size_t k = 0; k < n->ninputs; k++)
        if (n->inputs[k][0] && find_name(gr, n->inputs[k]) < 0) {
          st = ng_error(NG_EFORMAT,
                        "%s: node %s (%s) reads %s, which no node produces (or the graph has a cycle)",
                        gr->path, n->name, n->op_type, n->inputs[k]);
          goto out;
        }
    }
out:
  free(done);
  return st;
}

static int set_output(ng__graph *gr, const ng__onnx_graph *g) {
  if (g->noutputs < 1) return ng_error(NG_EFORMAT, "%s: the graph has no output", gr->path);
  int i = find_name(gr, g->outputs[0].name);
  if (i < 0)
    return ng_error(NG_EFORMAT, "%s: graph output %s is produced by no node", gr->path, g->outputs[0].name);
  const ng__gt *t = &gr->t[i];
  if (!t->is_float || t->ndim < 1 || t->dims[0].a != 1 || t->dims[0].c != 0)
    return ng_error(NG_EFORMAT,
                    "%s: graph output %s is not a float tensor whose first dimension is the batch", gr->path,
                    t->name);
  gr->output = i;
  gr->out_ndim = t->ndim - 1;
  gr->out_size = 1;
  for (size_t k = 1; k < t->ndim; k++) {
    if (!ng__ld_const(t->dims[k]) || t->dims[k].c < 1)
      return ng_error(NG_EFORMAT, "%s: dimension %zu of graph output %s depends on the batch", gr->path, k,
                      t->name);
    gr->out_dims[k - 1] = t->dims[k].c;
    gr->out_size *= (size_t)t->dims[k].c;
  }
  return NG_OK;
}

/* Last uses, following aliases to the tensor that owns the memory. */
static void lifetimes(ng__graph *gr) {
  for (size_t i = 0; i < gr->nnodes; i++) {
    const ng__gnode *n = &gr->nodes[i];
    if (n->folded) continue;
    for (size_t k = 0; k < n->nin; k++)
      for (int t = n->in[k]; t >= 0; t = gr->t[t].alias)
        gr->t[t].last_use = (int)i;
  }
  for (int t = gr->output; t >= 0; t = gr->t[t].alias)
    gr->t[t].last_use = INT32_MAX;
}

int ng__graph_compile(const ng__onnx_graph *g, ng__graph **out) {
  return ng__graph_compile_opts(g, NULL, out);
}

int ng__graph_compile_opts(const ng__onnx_graph *g, const ng__compile_opts *opts, ng__graph **out) {
  if (!g || !out) return ng_error(NG_EINVAL, "ng__graph_compile: NULL argument");
  *out = NULL;
  ng__graph *gr = calloc(1, sizeof *gr);
  names_t *nt = calloc(1, sizeof *nt);
  size_t cap = g->ninits + g->ninputs + 8;
  for (size_t i = 0; i < g->nnodes; i++)
    cap += g->nodes[i].noutputs;
  if (gr) gr->path = strdup(g->path ? g->path : "ONNX model");
  size_t slots = 16;
  while (slots < 2 * cap)
    slots *= 2;
  if (nt) nt->cap = slots;
  if (!gr || !nt || !gr->path || !(nt->slot = calloc(slots, sizeof *nt->slot)) ||
      !(gr->t = calloc(cap, sizeof *gr->t))) {
    if (nt) free(nt->slot);
    free(nt);
    if (gr) free(gr->path);
    free(gr);
    return ng_error(NG_ENOMEM, "%s: out of memory", g->path);
  }
  gr->names = nt;
  gr->tcap = cap;
  gr->opset = g->opset;
  gr->input = gr->output = -1;
  gr->no_values = opts && opts->no_values;
  int st = add_params(gr, g);
  if (st == NG_OK) st = add_input(gr, g);
  if (st == NG_OK) st = add_nodes(gr, g);
  if (st == NG_OK) st = set_output(gr, g);
  if (st != NG_OK) {
    ng__graph_free(&gr);
    return st;
  }
  for (size_t k = 0; opts && k < opts->npins; k++) {
    int t = find_name(gr, opts->pins[k]);
    if (t < 0) {
      st = ng_error(NG_EINVAL, "%s: tensor %s to keep is not in the graph", gr->path, opts->pins[k]);
      ng__graph_free(&gr);
      return st;
    }
    gr->t[t].pinned = true;
  }
  if (!opts || !opts->no_fuse) {
    ng__conv_fuse(gr);
    ng__gemm_fuse(gr);
  }
  lifetimes(gr);
  *out = gr;
  return NG_OK;
}

void ng__graph_free(ng__graph **grp) {
  if (!grp || !*grp) return;
  ng__graph *gr = *grp;
  for (size_t i = 0; i < gr->nt; i++) {
    free(gr->t[i].name);
    free(gr->t[i].fdata);
    free(gr->t[i].ivals);
    free(gr->t[i].source);
  }
  for (size_t i = 0; i < gr->nnodes; i++) {
    free(gr->nodes[i].name);
    free(gr->nodes[i].op_type);
    free(gr->nodes[i].attr);
  }
  if (gr->names) free(((names_t *)gr->names)->slot);
  free(gr->names);
  free(gr->nodes);
  free(gr->t);
  free(gr->params);
  free(gr->param_tensors);
  free(gr->path);
  free(gr);
  *grp = NULL;
}

/* ---- The index ---- */

size_t ng__graph_nparams(const ng__graph *gr) {
  return gr->nparams;
}

const float *ng__graph_params(const ng__graph *gr) {
  return gr->params;
}

size_t ng__graph_ntensors(const ng__graph *gr) {
  return gr->nentries;
}

void ng__graph_tensor(const ng__graph *gr, size_t i, const char **name, size_t *offset, size_t *ndim,
                      const int64_t **dims, const char **source) {
  static int64_t scratch[NG__MAXD]; /* dims of a parameter are constants: c of each */
  const ng__gt *t = &gr->t[gr->param_tensors[i]];
  *name = t->name;
  *offset = t->offset;
  *ndim = t->ndim;
  for (size_t k = 0; k < t->ndim; k++)
    scratch[k] = t->dims[k].c;
  *dims = scratch;
  *source = t->source;
}

void ng__graph_input(const ng__graph *gr, const char **name, size_t *ndim, const int64_t **dims,
                     size_t *size) {
  *name = gr->t[gr->input].name;
  *ndim = gr->in_ndim;
  *dims = gr->in_dims;
  *size = gr->in_size;
}

void ng__graph_output(const ng__graph *gr, const char **name, size_t *ndim, const int64_t **dims,
                      size_t *size) {
  *name = gr->t[gr->output].name;
  *ndim = gr->out_ndim;
  *dims = gr->out_dims;
  *size = gr->out_size;
}

int ng__graph_find(const ng__graph *gr, const char *name) {
  return find_name(gr, name);
}

bool ng__graph_partial(const ng__graph *gr, int t) {
  return t >= 0 && (size_t)t < gr->nt && gr->t[t].partial;
}

size_t ng__graph_nnodes(const ng__graph *gr) {
  return gr->nnodes;
}

static size_t entry_of(const ng__graph *gr, int tensor) {
  if (tensor < 0 || gr->t[tensor].kind != NG__T_PARAM) return SIZE_MAX;
  for (size_t e = 0; e < gr->nentries; e++)
    if (gr->param_tensors[e] == tensor) return e;
  return SIZE_MAX;
}

void ng__graph_node(const ng__graph *gr, size_t i, const char **name, const char **op_type, size_t *weight,
                    size_t *bias) {
  const ng__gnode *n = &gr->nodes[i];
  *name = n->name;
  *op_type = n->op_type;
  *weight = n->nin > 1 ? entry_of(gr, n->in[1]) : SIZE_MAX;
  *bias = n->nin > 2 ? entry_of(gr, n->in[2]) : SIZE_MAX;
}
