/* Workspaces, and the forward and backward passes of a model.
 *
 * Every forward pass runs on the graph executor (src/nn/graph.h): an ONNX model's graph, or the graph the
 * native front end (src/nn/native_graph.c) writes for a native model's layers, compiled once per workspace.
 * One set of forward kernels (src/nn/ops/) serves both; what stays here is the backward pass of native
 * models, layer by layer, reading the values the forward pass left in the executor's workspace.
 *
 * A training workspace compiles its graph unfused and keeps the values the backward pass reads to the end of
 * the pass (dense, conv2d, max pooling, gelu and the norms' inputs, relu, tanh, sigmoid and softmax's
 * outputs; the others share memory by their lifetimes), and copies the input it is given, so that the
 * caller may reuse it. Max pooling's argmax is
 * recomputed from the layer's input when the backward pass reaches it (the first maximum of a window takes
 * the gradient); dropout regenerates its mask from its random stream. An evaluation workspace is planned by
 * the tensors' lifetimes, with a conv2d fused with the batchnorm and relu after it and a dense layer with its
 * relu, except at the first linear layer's output, where glue cuts a pass in two. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nn/graph.h"
#include "nn/kernels.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

/* What the backward pass of a layer reads: its input (max pooling recomputes its argmax from it), or its
 * output. */
static bool needs_input(ng_layer_kind k) {
  return k == NG_L_DENSE || k == NG_L_CONV2D || k == NG_L_MAXPOOL || k == NG_L_GELU || k == NG_L_BATCHNORM ||
         k == NG_L_LAYERNORM;
}

static bool needs_output(ng_layer_kind k) {
  return k == NG_L_RELU || k == NG_L_TANH || k == NG_L_SIGMOID || k == NG_L_SOFTMAX;
}

struct ng_nn_work {
  size_t max_batch;
  bool training;
  size_t nlayers, nparams, in_size, out_size; /* of the model it was planned for */
  ng__native_graph native;                    /* a native model's graph */
  struct ng__graph_work *nwork;               /* its workspace */
  float *xcopy;                               /* training: the input of the last forward */
  int32_t **argmax;                           /* training, per layer: max pooling's argmax, recomputed */
  float *col;                                 /* conv2d backward scratch */
  float *grad[2];                             /* backward: the gradient flowing down, and the next one */
  float **skipg;                              /* backward: the skip gradient of each open residual group */
  size_t depth;                               /* deepest residual nesting */
  size_t batch;                               /* of the last training forward; 0 = none */
  uint64_t seed, step;
  uint64_t fwd_seed, fwd_step;  /* dropout key of the last forward, which backward regenerates */
  struct ng__graph_work *graph; /* an ONNX model's: forward passes go to its graph */
};

void ng_nn_work_destroy(ng_nn_work **wp) {
  if (!wp || !*wp) return;
  ng_nn_work *w = *wp;
  for (size_t i = 0; w->argmax && i < w->nlayers; i++)
    free(w->argmax[i]);
  for (size_t i = 0; w->skipg && i < w->depth; i++)
    free(w->skipg[i]);
  free(w->skipg);
  free(w->grad[0]);
  free(w->grad[1]);
  free(w->col);
  free(w->argmax);
  free(w->xcopy);
  ng__graph_work_destroy(&w->nwork);
  ng__native_free(&w->native);
  ng__graph_work_destroy(&w->graph);
  free(w);
  *wp = NULL;
}

int ng_nn_work_create(const ng_model *m, size_t max_batch, bool training, ng_nn_work **out) {
  if (!out) return ng_error(NG_EINVAL, "ng_nn_work_create: out is NULL");
  *out = NULL;
  if (!m || max_batch == 0)
    return ng_error(NG_EINVAL, "ng_nn_work_create: a model and max_batch >= 1 are required");
  if (max_batch > (size_t)INT32_MAX) /* BLAS takes the batch as an int */
    return ng_error(NG_EINVAL, "workspace: a batch of %zu examples, more than %d", max_batch, INT32_MAX);
  size_t n = m->nlayers;
  ng_nn_work *w = calloc(1, sizeof *w);
  int st = NG_OK;
  if (!w) return ng_error(NG_ENOMEM, "workspace: out of memory");
  w->max_batch = max_batch;
  w->training = training;
  w->nlayers = n;
  w->nparams = m->nparams;
  w->in_size = m->in_size;
  w->out_size = m->out_size;
  if (m->onnx) {
    NG_TRY(st, ng__onnx_work_create(m, max_batch, training, &w->graph), fail);
    *out = w;
    return NG_OK;
  }
  NG_TRY(st, ng__native_compile(m, training, &w->native), fail);
  if (!training) {
    NG_TRY(st, ng__graph_work_create(w->native.gr, max_batch, NULL, 0, &w->nwork), fail);
    *out = w;
    return NG_OK;
  }
  /* the values the backward pass reads stay to the end of the pass; the others share memory as usual */
  int *keep = calloc(2 * n + 1, sizeof *keep);
  size_t nkeep = 0;
  if (!keep) goto nomem;
  for (size_t i = 0; i < n; i++) {
    if (needs_input(m->layers[i].kind)) keep[nkeep++] = w->native.value[i];
    if (needs_output(m->layers[i].kind)) keep[nkeep++] = w->native.value[i + 1];
  }
  st = ng__graph_work_create(w->native.gr, max_batch, keep, nkeep, &w->nwork);
  free(keep);
  if (st != NG_OK) goto fail;
  size_t colsize = 0, maxact = m->in_size, depth = 0;
  if (!(w->argmax = calloc(n + 1, sizeof *w->argmax)) ||
      !(w->xcopy = ng__mallocn(m->in_size ? m->in_size : 1, max_batch, sizeof(float))))
    goto nomem;
  for (size_t i = 0; i < n; i++) {
    const ng_layer *L = &m->layers[i];
    if (L->out_size > maxact) maxact = L->out_size;
    if (L->kind == NG_L_CONV2D) {
      size_t c = ng_conv2d_col_size(max_batch, L->in_shape[0], L->in_shape[1], L->in_shape[2], L->k,
                                    L->stride, L->pad);
      if (c > colsize) colsize = c;
    }
    if (L->kind == NG_L_MAXPOOL && !(w->argmax[i] = ng__mallocn(L->out_size, max_batch, sizeof(int32_t))))
      goto nomem;
    if (L->kind == NG_L_RESIDUAL) {
      size_t d = 1;
      for (size_t j = 0; j < i; j++)
        if (m->layers[j].kind == NG_L_RESIDUAL && m->layers[j].match > i) d++;
      if (d > depth) depth = d;
    }
  }
  if (colsize && !(w->col = ng__mallocn(colsize, 1, sizeof(float)))) goto nomem;
  w->depth = depth;
  if (!(w->grad[0] = ng__mallocn(maxact, max_batch, sizeof(float))) ||
      !(w->grad[1] = ng__mallocn(maxact, max_batch, sizeof(float))))
    goto nomem;
  if (depth && !(w->skipg = calloc(depth, sizeof *w->skipg))) goto nomem;
  for (size_t d = 0; d < depth; d++)
    if (!(w->skipg[d] = ng__mallocn(maxact, max_batch, sizeof(float)))) goto nomem;
  *out = w;
  return NG_OK;
nomem:
  st = ng_error(NG_ENOMEM, "workspace: out of memory for a batch of %zu", max_batch);
fail:
  ng_nn_work_destroy(&w);
  return st;
}

void ng_nn_work_set_dropout(ng_nn_work *w, uint64_t seed, uint64_t step) {
  w->seed = seed;
  w->step = step;
}

/* ---- Forward ---- */

static int check_pair(const ng_model *m, const ng_nn_work *w, const char *fn) {
  if (!m || !w) return ng_error(NG_EINVAL, "%s: NULL model or workspace", fn);
  if (w->nlayers != m->nlayers || !w->graph != !m->onnx || w->nparams != m->nparams ||
      w->in_size != m->in_size || w->out_size != m->out_size)
    return ng_error(NG_EINVAL, "%s: the workspace was created for another model", fn);
  return NG_OK;
}

/* Value v of the last pass (0: the input; v: the output of layer v-1). */
static const float *value_ptr(const ng_nn_work *w, size_t v) {
  return ng__graph_work_ptr(w->nwork, w->native.value[v]);
}

int ng_nn_forward(const ng_model *m, const float *params, ng_nn_work *w, const float *x, size_t batch,
                  const float **out) {
  NG_CALL(check_pair(m, w, "ng_nn_forward"));
  if (batch > w->max_batch)
    return ng_error(NG_EINVAL, "ng_nn_forward: batch %zu is larger than the workspace's %zu", batch,
                    w->max_batch);
  if (!params || (!x && batch) || !out) return ng_error(NG_EINVAL, "ng_nn_forward: NULL argument");
  if (w->graph) return ng__onnx_forward(m, params, w->graph, x, batch, out);
  w->batch = 0;
  if (w->training && batch) { /* the backward pass reads the input after the caller has moved on */
    memcpy(w->xcopy, x, batch * m->in_size * sizeof *x);
    x = w->xcopy;
    ng__graph_work_set_dropout(w->nwork, w->seed, w->step);
  }
  NG_CALL(ng__graph_forward(w->native.gr, params, w->nwork, x, batch, out));
  if (w->training && batch) {
    w->batch = batch;
    w->fwd_seed = w->seed;
    w->fwd_step = w->step;
  }
  return NG_OK;
}

/* ---- Backward ---- */

/* Channels and the plane each channel covers: C of C H W, or every feature of a vector. */
static void channels(const ng_layer *L, size_t *C, size_t *plane) {
  *C = L->in_ndim == 3 ? L->in_shape[0] : L->in_size;
  *plane = L->in_ndim == 3 ? L->in_shape[1] * L->in_shape[2] : 1;
}

/* Mean and 1/sqrt(biased variance + eps) of one example's features, in double. */
static void row_stats(const float *x, size_t F, double eps, double *mean, double *rstd) {
  double s = 0, q = 0;
  for (size_t j = 0; j < F; j++)
    s += x[j];
  double mu = s / (double)F;
  for (size_t j = 0; j < F; j++) {
    double d = x[j] - mu;
    q += d * d;
  }
  *mean = mu;
  *rstd = 1.0 / sqrt(q / (double)F + eps);
}

static void dense_backward(const ng_layer *L, const float *p, const float *x, size_t B, const float *dy,
                           float *dx, float *grad) {
  size_t in = L->in_size, out = L->out_size;
  float *dW = grad + L->off[0], *db = grad + L->off[1];
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)B, 1.0f, dy, (int)out, x,
              (int)in, 1.0f, dW, (int)in);
  for (size_t j = 0; j < out; j++) {
    double s = 0;
    for (size_t r = 0; r < B; r++)
      s += dy[r * out + j];
    db[j] += (float)s;
  }
  if (dx)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)in, (int)out, 1.0f, dy, (int)out,
                p + L->off[0], (int)in, 0.0f, dx, (int)in);
}

static void batchnorm_backward(const ng_layer *L, const float *p, const float *x, size_t B, float *g,
                               float *grad) {
  size_t C, plane;
  channels(L, &C, &plane);
  const float *wt = p + L->off[0], *mean = p + L->off[2], *var = p + L->off[3];
  for (size_t c = 0; c < C; c++) {
    double rstd = 1.0 / sqrt((double)var[c] + L->eps), sw = 0, sb = 0;
    float scale = (float)(wt[c] * rstd);
    for (size_t r = 0; r < B; r++) {
      const float *xc = x + (r * C + c) * plane;
      float *gc = g + (r * C + c) * plane;
      for (size_t e = 0; e < plane; e++) {
        sw += (double)gc[e] * ((xc[e] - mean[c]) * rstd);
        sb += gc[e];
        gc[e] *= scale;
      }
    }
    grad[L->off[0] + c] += (float)sw;
    grad[L->off[1] + c] += (float)sb;
  }
}

static void layernorm_backward(const ng_layer *L, const float *p, const float *x, size_t B, float *g,
                               float *grad) {
  size_t F = L->in_size;
  const float *wt = p + L->off[0];
  float *dw = grad + L->off[0], *db = grad + L->off[1];
  for (size_t r = 0; r < B; r++) {
    const float *xr = x + r * F;
    float *gr = g + r * F;
    double mu, rstd, m1 = 0, m2 = 0;
    row_stats(xr, F, L->eps, &mu, &rstd);
    for (size_t j = 0; j < F; j++) {
      double xh = (xr[j] - mu) * rstd, dxh = (double)gr[j] * wt[j];
      m1 += dxh;
      m2 += dxh * xh;
      dw[j] += (float)(gr[j] * xh);
      db[j] += gr[j];
    }
    m1 /= (double)F;
    m2 /= (double)F;
    for (size_t j = 0; j < F; j++) {
      double xh = (xr[j] - mu) * rstd;
      gr[j] = (float)(rstd * ((double)gr[j] * wt[j] - m1 - xh * m2));
    }
  }
}

int ng_nn_backward(const ng_model *m, const float *params, ng_nn_work *w, const float *dout, float *grad) {
  NG_CALL(check_pair(m, w, "ng_nn_backward"));
  if (!w->training) return ng_error(NG_EORDER, "ng_nn_backward: the workspace is not a training workspace");
  if (!w->batch)
    return ng_error(NG_EORDER, "ng_nn_backward: no forward pass on this workspace to go back through");
  if (!params || !dout || !grad) return ng_error(NG_EINVAL, "ng_nn_backward: NULL argument");
  size_t B = w->batch, depth = 0;
  float *g = w->grad[0], *other = w->grad[1];
  memcpy(g, dout, B * m->out_size * sizeof *g);
  for (size_t i = m->nlayers; i-- > 0;) {
    const ng_layer *L = &m->layers[i];
    const float *x = value_ptr(w, i), *y = value_ptr(w, i + 1);
    size_t n = B * L->out_size;
    float *dx = i > 0 ? other : NULL; /* the input's gradient is not wanted */
    int swap = 0;
    switch (L->kind) {
      case NG_L_CONV2D:
        ng_conv2d_backward(x, B, L->in_shape[0], L->in_shape[1], L->in_shape[2], params + L->off[0], L->outc,
                           L->k, L->stride, L->pad, g, dx, grad + L->off[0], grad + L->off[1], w->col);
        swap = 1;
        break;
      case NG_L_MAXPOOL:
      case NG_L_AVGPOOL:
        if (dx && L->kind == NG_L_MAXPOOL) /* the argmax, into w->argmax; dx serves as scratch for y */
          ng_pool_forward(NG_POOL_MAX, x, B, L->in_shape[0], L->in_shape[1], L->in_shape[2], L->k, L->stride,
                          dx, w->argmax[i]);
        if (dx)
          ng_pool_backward(L->kind == NG_L_MAXPOOL ? NG_POOL_MAX : NG_POOL_AVG, g, B, L->in_shape[0],
                           L->in_shape[1], L->in_shape[2], L->k, L->stride, w->argmax[i], dx);
        swap = 1;
        break;
      case NG_L_DENSE:
        dense_backward(L, params, x, B, g, dx, grad);
        swap = 1;
        break;
      case NG_L_RELU:
        for (size_t e = 0; e < n; e++)
          g[e] = y[e] > 0.0f ? g[e] : 0.0f; /* a select, not a branch: vectorizes */
        break;
      case NG_L_GELU:
        for (size_t e = 0; e < n; e++) {
          double v = x[e];
          g[e] = (float)(g[e] * (0.5 * (1.0 + erf(v * SQRT1_2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v)));
        }
        break;
      case NG_L_TANH:
        for (size_t e = 0; e < n; e++)
          g[e] *= 1.0f - y[e] * y[e];
        break;
      case NG_L_SIGMOID:
        for (size_t e = 0; e < n; e++)
          g[e] *= y[e] * (1.0f - y[e]);
        break;
      case NG_L_SOFTMAX: {
        size_t F = L->out_size;
        for (size_t r = 0; r < B; r++) {
          double dot = 0;
          for (size_t j = 0; j < F; j++)
            dot += (double)g[r * F + j] * y[r * F + j];
          for (size_t j = 0; j < F; j++)
            g[r * F + j] = (float)(y[r * F + j] * (g[r * F + j] - dot));
        }
        break;
      }
      case NG_L_BATCHNORM:
        batchnorm_backward(L, params, x, B, g, grad);
        break;
      case NG_L_LAYERNORM:
        layernorm_backward(L, params, x, B, g, grad);
        break;
      case NG_L_DROPOUT:
        if (L->p > 0) ng__dropout_apply(w->fwd_seed, w->fwd_step, (uint32_t)i, L->p, g, n, g);
        break;
      case NG_L_END: /* the skip's gradient waits for the group's start */
        memcpy(w->skipg[depth++], g, n * sizeof *g);
        break;
      case NG_L_RESIDUAL: {
        const float *s = w->skipg[--depth];
        for (size_t e = 0; e < n; e++)
          g[e] += s[e];
        break;
      }
      case NG_L_FLATTEN:
        break;
    }
    if (swap) {
      float *t = g;
      g = other;
      other = t;
    }
  }
  return NG_OK;
}

int ng_nn_forward_range(const ng_model *m, const float *params, ng_nn_work *w, size_t from, size_t to,
                        const float *act, size_t batch, const float **out) {
  NG_CALL(check_pair(m, w, "ng_nn_forward_range"));
  if (w->training) return ng_error(NG_EINVAL, "ng_nn_forward_range: needs an evaluation workspace");
  if (w->graph) return ng_error(NG_EINVAL, "ng_nn_forward_range: an ONNX model runs whole (ng_nn_forward)");
  if (from > to || to > m->nlayers)
    return ng_error(NG_EINVAL, "ng_nn_forward_range: layers [%zu, %zu) of %zu", from, to, m->nlayers);
  if (batch > w->max_batch)
    return ng_error(NG_EINVAL, "ng_nn_forward_range: batch %zu is larger than the workspace's %zu", batch,
                    w->max_batch);
  if (!params || (!act && batch) || !out) return ng_error(NG_EINVAL, "ng_nn_forward_range: NULL argument");
  for (size_t r = 0; r < from; r++)
    if (m->layers[r].kind == NG_L_RESIDUAL && m->layers[r].match >= from)
      return ng_error(NG_EINVAL, "ng_nn_forward_range: layer %zu is inside the residual group of layer %zu",
                      from, r);
  const ng__native_graph *ng = &w->native;
  for (size_t v = from; v <= to; v += to > from ? to - from : 1)
    if (ng__graph_partial(ng->gr, ng->value[v]))
      return ng_error(NG_EINVAL,
                      "ng_nn_forward_range: the value after layer %zu is fused into the layers after it "
                      "(a range may cut after the first linear layer)",
                      v - 1);
  NG_CALL(ng__graph_run_nodes(ng->gr, params, w->nwork, ng->node[from], ng->node[to], ng->value[from], act,
                              batch));
  *out = value_ptr(w, to);
  return NG_OK;
}

int ng_model_first_linear(const ng_model *m, size_t *layer, size_t *out_size, size_t *fan_in) {
  for (size_t i = 0; i < m->nlayers; i++) {
    const ng_layer *L = &m->layers[i];
    ng_layer_kind k = L->kind;
    if (k == NG_L_DENSE || k == NG_L_CONV2D) {
      *layer = i;
      *out_size = L->out_size;
      *fan_in = k == NG_L_DENSE ? L->in_size : L->in_shape[0] * L->k * L->k;
      return NG_OK;
    }
    if (k != NG_L_FLATTEN) break;
  }
  return ng_error(NG_ENOTFOUND, "the model's first computing layer is not dense or conv2d");
}

size_t ng_model_nlayers(const ng_model *m) {
  return m->nlayers;
}
