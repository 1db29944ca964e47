/* Workspaces, and the forward and backward passes of a model.
 *
 * A workspace is planned once, when it is created, for a model and a largest batch: which activations share
 * memory, which are computed in place, which dense layer absorbs the ReLU after it; then every buffer is
 * allocated. A pass only follows the plan: no allocation, no decision that depends on the data.
 *
 * The plan. Value 0 is the input, value i+1 the output of layer i. Flatten, the residual marker and (in
 * evaluation, or with p = 0) dropout compute nothing: their output is their input's memory. Element-wise
 * layers (activations, dropout, the norms, the end of a residual group) write over their input when nothing
 * needs that input any more, neither a later layer (a residual group's skip) nor the backward pass. The
 * other activations get buffers ("slots") by liveness: a slot is reused once its value has had its last use.
 * In a training workspace, the values the backward pass reads stay live to the end, and only those:
 * dense, conv2d, gelu and the norms read their input; relu, tanh, sigmoid and softmax their output; max
 * pooling keeps its argmax; dropout regenerates its mask from its random stream instead of storing it.
 *
 * The dense layer is one cblas_sgemm (y = x W^T, row-major, W [out, in] as PyTorch stores it) followed by one
 * pass that adds the bias and, when a relu follows, applies it: the relu layer then does nothing. */
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

struct ng_nn_work {
  size_t max_batch;
  bool training;
  size_t nlayers, nparams, in_size, out_size; /* of the model it was planned for */
  int *head;                                  /* per value: the value whose memory it is (aliases) */
  int *slot;                                  /* per head value: its slot, or -1 for the caller's input */
  unsigned char *fused;                       /* per layer: 1 = dense with relu fused, 2 = relu done by it */
  float **slots;
  size_t nslots;
  int32_t **argmax; /* per layer: max pooling's argmax (training), else NULL */
  float *col;       /* conv2d scratch */
  float *grad[2];   /* backward: the gradient flowing down, and the next one */
  float **skipg;    /* backward: the skip gradient of each open residual group, by depth */
  size_t depth;     /* deepest residual nesting */
  size_t batch;     /* of the last training forward; 0 = none */
  uint64_t seed, step;
  uint64_t fwd_seed, fwd_step;  /* dropout key of the last forward, which backward regenerates */
  struct ng__graph_work *graph; /* an ONNX model's: forward passes go to the graph executor */
};

static bool alias_layer(const ng_layer *L, bool training) {
  return L->kind == NG_L_FLATTEN || L->kind == NG_L_RESIDUAL ||
         (L->kind == NG_L_DROPOUT && (!training || L->p == 0));
}

static bool elementwise_layer(ng_layer_kind k) {
  return k == NG_L_RELU || k == NG_L_GELU || k == NG_L_TANH || k == NG_L_SIGMOID || k == NG_L_SOFTMAX ||
         k == NG_L_DROPOUT || k == NG_L_BATCHNORM || k == NG_L_LAYERNORM || k == NG_L_END;
}

static bool needs_input(ng_layer_kind k) {
  return k == NG_L_DENSE || k == NG_L_CONV2D || k == NG_L_GELU || k == NG_L_BATCHNORM || k == NG_L_LAYERNORM;
}

static bool needs_output(ng_layer_kind k) {
  return k == NG_L_RELU || k == NG_L_TANH || k == NG_L_SIGMOID || k == NG_L_SOFTMAX;
}

void ng_nn_work_destroy(ng_nn_work **wp) {
  if (!wp || !*wp) return;
  ng_nn_work *w = *wp;
  for (size_t i = 0; w->slots && i < w->nslots; i++)
    free(w->slots[i]);
  for (size_t i = 0; w->argmax && i < w->nlayers; i++)
    free(w->argmax[i]);
  for (size_t i = 0; w->skipg && i < w->depth; i++)
    free(w->skipg[i]);
  free(w->skipg);
  free(w->grad[0]);
  free(w->grad[1]);
  free(w->col);
  free(w->argmax);
  free(w->slots);
  free(w->fused);
  free(w->slot);
  free(w->head);
  ng__graph_work_destroy(&w->graph);
  free(w);
  *wp = NULL;
}

/* The liveness plan; fills head, slot, fused and the slot capacities (floats per example). */
static int plan(const ng_model *m, ng_nn_work *w, size_t **capp) {
  size_t n = m->nlayers, V = n + 1;
  const ng_layer *Ls = m->layers;
  bool tr = w->training;
  size_t *last = malloc(V * sizeof *last), *cap = calloc(V, sizeof *cap);
  bool *keep = calloc(V, sizeof *keep), *busy = calloc(V, sizeof *busy);
  int st = NG_OK;
  if (!last || !cap || !keep || !busy) {
    st = ng_error(NG_ENOMEM, "workspace: out of memory");
    goto done;
  }
  /* Heads, and for each head its last forward use and whether backward reads it. */
  for (size_t v = 0; v < V; v++) {
    w->head[v] = (v > 0 && alias_layer(&Ls[v - 1], tr)) ? w->head[v - 1] : (int)v;
    last[v] = v;
    keep[v] = tr && v > 0 && needs_output(Ls[v - 1].kind) && w->head[v] == (int)v;
  }
  for (size_t i = 0; i < n; i++) {
    size_t h = (size_t)w->head[i];
    if (last[h] < i) last[h] = i;
    if (tr && needs_input(Ls[i].kind)) keep[h] = true;
    if (Ls[i].kind == NG_L_END) { /* the skip: the residual marker's input */
      size_t s = (size_t)w->head[Ls[i].match];
      if (last[s] < i) last[s] = i;
    }
  }
  last[w->head[n]] = SIZE_MAX; /* the output */
  /* Slots by liveness: a slot is busy from the layer that writes its value to that value's last reader.
   * slot[v] stays recorded after the slot is freed, since the passes look values up by it before then. */
  for (size_t v = 0; v < V; v++)
    w->slot[v] = -1;
  w->nslots = 0;
  if (tr && keep[0]) { /* backward reads the input: the forward copies it */
    w->slot[0] = 0;
    cap[0] = m->in_size;
    busy[0] = true;
    w->nslots = 1;
  }
  for (size_t i = 0; i < n; i++) {
    const ng_layer *L = &Ls[i];
    size_t in = (size_t)w->head[i], out = i + 1;
    if (w->head[out] != (int)out) continue; /* an alias */
    if (L->kind == NG_L_RELU && i > 0 && w->fused[i - 1] == 1) w->fused[i] = 2;
    bool inplace = elementwise_layer(L->kind) && w->slot[in] >= 0 && last[in] == i && !keep[in] &&
                   !(L->kind == NG_L_END && (size_t)w->head[L->match] == in);
    if (inplace) {
      w->slot[out] = w->slot[in];
    } else {
      size_t best = SIZE_MAX;
      for (size_t s = 0; s < w->nslots; s++)
        if (!busy[s] && (best == SIZE_MAX || cap[s] > cap[best])) best = s;
      if (best == SIZE_MAX) best = w->nslots++;
      busy[best] = true;
      w->slot[out] = (int)best;
    }
    if (cap[w->slot[out]] < L->out_size) cap[w->slot[out]] = L->out_size;
    /* A dense layer whose output only a relu reads, in place, takes the relu into its bias pass. */
    if (L->kind == NG_L_DENSE && i + 1 < n && Ls[i + 1].kind == NG_L_RELU && last[out] == i + 1 && !keep[out])
      w->fused[i] = 1;
    /* Free the slots whose values this layer was the last to read (not the one it wrote in place). */
    for (size_t v = 0; v <= i; v++)
      if (w->head[v] == (int)v && w->slot[v] >= 0 && last[v] == i && !keep[v] && w->slot[v] != w->slot[out])
        busy[w->slot[v]] = false;
  }
done:
  free(busy);
  free(keep);
  free(last);
  *capp = cap;
  return st;
}

int ng_nn_work_create(const ng_model *m, size_t max_batch, bool training, ng_nn_work **out) {
  if (!out) return ng_error(NG_EINVAL, "ng_nn_work_create: out is NULL");
  *out = NULL;
  if (!m || max_batch == 0)
    return ng_error(NG_EINVAL, "ng_nn_work_create: a model and max_batch >= 1 are required");
  if (max_batch > (size_t)INT32_MAX) /* BLAS takes the batch as an int */
    return ng_error(NG_EINVAL, "workspace: a batch of %zu examples, more than %d", max_batch, INT32_MAX);
  size_t n = m->nlayers, V = n + 1;
  ng_nn_work *w = calloc(1, sizeof *w);
  size_t *cap = NULL;
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
  w->head = calloc(V, sizeof *w->head);
  w->slot = calloc(V, sizeof *w->slot);
  w->fused = calloc(V, sizeof *w->fused);
  w->argmax = calloc(V, sizeof *w->argmax);
  if (!w->head || !w->slot || !w->fused || !w->argmax) goto nomem;
  NG_TRY(st, plan(m, w, &cap), fail);
  w->slots = calloc(w->nslots ? w->nslots : 1, sizeof *w->slots);
  if (!w->slots) goto nomem;
  for (size_t s = 0; s < w->nslots; s++)
    if (!(w->slots[s] = ng__mallocn(cap[s] ? cap[s] : 1, max_batch, sizeof(float)))) goto nomem;
  size_t colsize = 0, maxact = m->in_size, depth = 0;
  for (size_t i = 0; i < n; i++) {
    const ng_layer *L = &m->layers[i];
    if (L->out_size > maxact) maxact = L->out_size;
    if (L->kind == NG_L_CONV2D) {
      size_t c = ng_conv2d_col_size(max_batch, L->in_shape[0], L->in_shape[1], L->in_shape[2], L->k,
                                    L->stride, L->pad);
      if (c > colsize) colsize = c;
    }
    if (L->kind == NG_L_MAXPOOL && training &&
        !(w->argmax[i] = ng__mallocn(L->out_size, max_batch, sizeof(int32_t))))
      goto nomem;
    if (L->kind == NG_L_RESIDUAL) {
      size_t d = 1;
      for (size_t j = 0; j < i; j++)
        if (m->layers[j].kind == NG_L_RESIDUAL && m->layers[j].match > i) d++;
      if (d > depth) depth = d;
    }
  }
  if (colsize && !(w->col = ng__mallocn(colsize, 1, sizeof(float)))) goto nomem;
  if (training) {
    w->depth = depth;
    if (!(w->grad[0] = ng__mallocn(maxact, max_batch, sizeof(float))) ||
        !(w->grad[1] = ng__mallocn(maxact, max_batch, sizeof(float))))
      goto nomem;
    if (depth && !(w->skipg = calloc(depth, sizeof *w->skipg))) goto nomem;
    for (size_t d = 0; d < depth; d++)
      if (!(w->skipg[d] = ng__mallocn(maxact, max_batch, sizeof(float)))) goto nomem;
  }
  free(cap);
  *out = w;
  return NG_OK;
nomem:
  st = ng_error(NG_ENOMEM, "workspace: out of memory for a batch of %zu", max_batch);
fail:
  free(cap);
  ng_nn_work_destroy(&w);
  return st;
}

void ng_nn_work_set_dropout(ng_nn_work *w, uint64_t seed, uint64_t step) {
  w->seed = seed;
  w->step = step;
}

/* ---- Forward ---- */

static float *value_ptr(const ng_nn_work *w, size_t v, const float *x) {
  int s = w->slot[w->head[v]];
  return s < 0 ? (float *)(uintptr_t)x : w->slots[s]; /* the input is only read, never written */
}

static int check_pair(const ng_model *m, const ng_nn_work *w, const char *fn) {
  if (!m || !w) return ng_error(NG_EINVAL, "%s: NULL model or workspace", fn);
  if (w->nlayers != m->nlayers || !w->graph != !m->onnx || w->nparams != m->nparams ||
      w->in_size != m->in_size || w->out_size != m->out_size)
    return ng_error(NG_EINVAL, "%s: the workspace was created for another model", fn);
  return NG_OK;
}

static void dense_forward(const ng_layer *L, const float *p, const float *x, size_t B, float *y, int relu) {
  size_t in = L->in_size, out = L->out_size;
  const float *W = p + L->off[0], *b = p + L->off[1];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)out, (int)in, 1.0f, x, (int)in, W,
              (int)in, 0.0f, y, (int)out);
  for (size_t r = 0; r < B; r++) {
    float *yr = y + r * out;
    if (relu) {
      for (size_t j = 0; j < out; j++) {
        float v = yr[j] + b[j];
        yr[j] = v > 0.0f ? v : 0.0f;
      }
    } else {
      for (size_t j = 0; j < out; j++)
        yr[j] += b[j];
    }
  }
}

static void softmax_rows(const float *x, float *y, size_t B, size_t F) {
  for (size_t r = 0; r < B; r++) {
    const float *xr = x + r * F;
    float *yr = y + r * F;
    float mx = xr[0];
    for (size_t j = 1; j < F; j++)
      if (xr[j] > mx) mx = xr[j];
    double sum = 0;
    for (size_t j = 0; j < F; j++) {
      yr[j] = expf(xr[j] - mx);
      sum += yr[j];
    }
    float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < F; j++)
      yr[j] *= inv;
  }
}

/* Channels and the plane each channel covers: C of C H W, or every feature of a vector. */
static void channels(const ng_layer *L, size_t *C, size_t *plane) {
  *C = L->in_ndim == 3 ? L->in_shape[0] : L->in_size;
  *plane = L->in_ndim == 3 ? L->in_shape[1] * L->in_shape[2] : 1;
}

static void batchnorm_forward(const ng_layer *L, const float *p, const float *x, size_t B, float *y) {
  size_t C, plane;
  channels(L, &C, &plane);
  const float *wt = p + L->off[0], *bs = p + L->off[1], *mean = p + L->off[2], *var = p + L->off[3];
  for (size_t r = 0; r < B; r++)
    for (size_t c = 0; c < C; c++) {
      float scale = (float)(wt[c] / sqrt((double)var[c] + L->eps)), shift = bs[c] - mean[c] * scale;
      const float *xc = x + (r * C + c) * plane;
      float *yc = y + (r * C + c) * plane;
      for (size_t e = 0; e < plane; e++)
        yc[e] = xc[e] * scale + shift;
    }
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

static void layernorm_forward(const ng_layer *L, const float *p, const float *x, size_t B, float *y) {
  size_t F = L->in_size;
  const float *wt = p + L->off[0], *bs = p + L->off[1];
  for (size_t r = 0; r < B; r++) {
    double mu, rstd;
    row_stats(x + r * F, F, L->eps, &mu, &rstd);
    for (size_t j = 0; j < F; j++)
      y[r * F + j] = (float)((x[r * F + j] - mu) * rstd) * wt[j] + bs[j];
  }
}

/* Inverted dropout: keep an element when its u32 draw, as a fraction of 2^32, is at least p; scale by
 * 1/(1-p). With dx != NULL the same mask scales dy into dx (the backward pass), so no mask is stored. */
static void dropout_apply(const ng_layer *L, size_t layer, uint64_t seed, uint64_t step, const float *x,
                          size_t n, float *y) {
  ng_rng r;
  ng_rng_init(&r, seed, NG_RNG_DROPOUT, (uint32_t)step, (uint32_t)layer);
  double thresh = L->p * 4294967296.0;
  float scale = (float)(1.0 / (1.0 - L->p));
  for (size_t e = 0; e < n; e++)
    y[e] = (double)ng_rng_u32(&r) >= thresh ? x[e] * scale : 0.0f;
}

/* Layers [from, to) of a pass of B > 0 examples; x is the value entering layer `from`, written into its slot
 * first when it has one. A relu fused into the dense layer before it is applied by the dense layer, unless
 * the range starts at the relu (then it runs here) or ends between them (then it is left to a later range).
 */
static void run_layers(const ng_model *m, const float *params, ng_nn_work *w, size_t from, size_t to,
                       const float *x, size_t B) {
  if (w->slot[w->head[from]] >= 0) {
    size_t size = from == 0 ? m->in_size : m->layers[from - 1].out_size;
    float *dst = value_ptr(w, from, x);
    if (dst != x) memcpy(dst, x, B * size * sizeof *x);
  }
  for (size_t i = from; i < to; i++) {
    const ng_layer *L = &m->layers[i];
    if (w->head[i + 1] != (int)(i + 1) || (w->fused[i] == 2 && i != from))
      continue; /* an alias, or a relu done already */
    const float *in = value_ptr(w, i, x);
    float *y = value_ptr(w, i + 1, x);
    size_t n = B * L->out_size;
    switch (L->kind) {
      case NG_L_CONV2D:
        ng_conv2d_forward(in, B, L->in_shape[0], L->in_shape[1], L->in_shape[2], params + L->off[0],
                          params + L->off[1], L->outc, L->k, L->stride, L->pad, y, w->col);
        break;
      case NG_L_MAXPOOL:
      case NG_L_AVGPOOL:
        ng_pool_forward(L->kind == NG_L_MAXPOOL ? NG_POOL_MAX : NG_POOL_AVG, in, B, L->in_shape[0],
                        L->in_shape[1], L->in_shape[2], L->k, L->stride, y, w->argmax[i]);
        break;
      case NG_L_DENSE:
        dense_forward(L, params, in, B, y, w->fused[i] == 1 && i + 1 < to);
        break;
      case NG_L_RELU:
        for (size_t e = 0; e < n; e++)
          y[e] = in[e] > 0.0f ? in[e] : 0.0f;
        break;
      case NG_L_GELU:
        for (size_t e = 0; e < n; e++)
          y[e] = 0.5f * in[e] * (1.0f + erff(in[e] * (float)SQRT1_2));
        break;
      case NG_L_TANH:
        for (size_t e = 0; e < n; e++)
          y[e] = tanhf(in[e]);
        break;
      case NG_L_SIGMOID:
        for (size_t e = 0; e < n; e++)
          y[e] = 1.0f / (1.0f + expf(-in[e]));
        break;
      case NG_L_SOFTMAX:
        softmax_rows(in, y, B, L->in_size);
        break;
      case NG_L_BATCHNORM:
        batchnorm_forward(L, params, in, B, y);
        break;
      case NG_L_LAYERNORM:
        layernorm_forward(L, params, in, B, y);
        break;
      case NG_L_DROPOUT:
        dropout_apply(L, i, w->seed, w->step, in, n, y);
        break;
      case NG_L_END: {
        const float *skip = value_ptr(w, L->match, x);
        for (size_t e = 0; e < n; e++)
          y[e] = in[e] + skip[e];
        break;
      }
      default: /* flatten, residual: aliases, never here */
        break;
    }
  }
}

int ng_nn_forward(const ng_model *m, const float *params, ng_nn_work *w, const float *x, size_t batch,
                  const float **out) {
  NG_CALL(check_pair(m, w, "ng_nn_forward"));
  if (batch > w->max_batch)
    return ng_error(NG_EINVAL, "ng_nn_forward: batch %zu is larger than the workspace's %zu", batch,
                    w->max_batch);
  if (!params || (!x && batch) || !out) return ng_error(NG_EINVAL, "ng_nn_forward: NULL argument");
  if (w->graph) return ng__onnx_forward(m, params, w->graph, x, batch, out);
  size_t B = batch;
  w->batch = 0;
  if (B == 0) { /* nothing to compute; BLAS would be called with empty matrices */
    *out = value_ptr(w, m->nlayers, x);
    return NG_OK;
  }
  run_layers(m, params, w, 0, m->nlayers, x, B);
  *out = value_ptr(w, m->nlayers, x);
  if (w->training) {
    w->batch = B;
    w->fwd_seed = w->seed;
    w->fwd_step = w->step;
  }
  return NG_OK;
}

/* ---- Backward ---- */

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
    const float *x = value_ptr(w, i, NULL), *y = value_ptr(w, i + 1, NULL);
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
        if (L->p > 0) dropout_apply(L, i, w->fwd_seed, w->fwd_step, g, n, g);
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
  if (batch) run_layers(m, params, w, from, to, act, batch);
  *out = value_ptr(w, to, act);
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
