/* Normalisations and reductions: BatchNormalization (inference: running statistics), LayerNormalization
 * (over the dimensions from `axis` on, opset 17), Softmax (one axis, opset 13) and ReduceMean (axes as an
 * attribute, keepdims). Statistics are accumulated in double, as nograd's native layers do. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nograd/error.h"

typedef struct {
  double eps;
  int axis;
  size_t nax;
  int axes[NG__MAXD];
  bool keep;
} norm_attr;

static int alloc_attr(ng__gnode *n, norm_attr **a) {
  *a = calloc(1, sizeof **a);
  if (!*a) return ng_error(NG_ENOMEM, "out of memory");
  n->attr = *a;
  return NG_OK;
}

/* outer x axis-length x inner split of t's dims at [from, to). */
static void split(const ng__gt *t, size_t B, size_t from, size_t to, size_t *outer, size_t *mid,
                  size_t *inner) {
  int64_t d[NG__MAXD];
  ng__dims(t, B, d);
  *outer = *mid = *inner = 1;
  for (size_t k = 0; k < t->ndim; k++)
    *(k < from ? outer : k < to ? mid : inner) *= (size_t)d[k];
}

/* ---- BatchNormalization ---- */

static int bn_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"epsilon", "momentum", "training_mode", NULL};
  NG_CALL(ng__attr_only(cx, known));
  if (ng__attr_int(cx, "training_mode", 0) != 0 || n->nout > 1)
    return ng__op_error(cx, "training mode is not supported (export the model in eval mode)");
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x || !x->is_float || x->ndim < 2 || !ng__ld_const(x->dims[1]) || n->nin != 5)
    return ng__op_error(cx, "expected a float input with channels in dimension 1, and 4 statistics");
  for (size_t k = 1; k < 5; k++) {
    const ng__gt *s = ng__in(cx, n, k);
    if (!s || !s->is_float || s->ndim != 1 || !ng__ld_const(s->dims[0]) || s->dims[0].c != x->dims[1].c)
      return ng__op_error(cx, "input %zu must be a float vector of %lld values", k, (long long)x->dims[1].c);
  }
  norm_attr *a;
  NG_CALL(alloc_attr(n, &a));
  a->eps = ng__attr_float(cx, "epsilon", 1e-5);
  ng__set_float(ng__out(cx, n, 0), x->ndim, x->dims);
  return NG_OK;
}

static void bn_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const norm_attr *a = n->attr;
  size_t outer, C, inner;
  split(&gr->t[n->in[0]], r->B, 1, 2, &outer, &C, &inner);
  const float *x = r->ptr[n->in[0]], *g = r->ptr[n->in[1]], *b = r->ptr[n->in[2]], *mu = r->ptr[n->in[3]],
              *var = r->ptr[n->in[4]];
  float *y = r->ptr[n->out[0]];
  for (size_t c = 0; c < C; c++) { /* y = x * s + t, s and t per channel, computed once in double */
    float sf, tf;
    ng__bn_coef(g, b, mu, var, a->eps, c, &sf, &tf);
    for (size_t o = 0; o < outer; o++) {
      const float *xp = x + (o * C + c) * inner;
      float *yp = y + (o * C + c) * inner;
      for (size_t i = 0; i < inner; i++)
        yp[i] = xp[i] * sf + tf;
    }
  }
}

const ng__op ng__op_BatchNormalization = {"BatchNormalization", bn_setup, bn_run};

double ng__bn_eps(const ng__gnode *bn) {
  return ((const norm_attr *)bn->attr)->eps;
}

void ng__bn_coef(const float *g, const float *b, const float *mu, const float *var, double eps, size_t c,
                 float *s, float *t) {
  double sc = (double)g[c] / sqrt((double)var[c] + eps);
  *s = (float)sc;
  *t = (float)((double)b[c] - (double)mu[c] * sc);
}

/* ---- LayerNormalization ---- */

/* The sum of x[i] (squares false) or of (x[i] - m)^2 (squares true) over n values, in eight float partial
 * sums added in double in a fixed order: independent chains that vectorise, and the same bits for the same
 * row. */
static double sum8(const float *x, size_t n, bool squares, double m) {
  float p[8] = {0, 0, 0, 0, 0, 0, 0, 0}, mf = (float)m;
  size_t i = 0;
  if (!squares)
    for (; i + 8 <= n; i += 8)
      for (size_t k = 0; k < 8; k++)
        p[k] += x[i + k];
  else
    for (; i + 8 <= n; i += 8)
      for (size_t k = 0; k < 8; k++)
        p[k] += (x[i + k] - mf) * (x[i + k] - mf);
  double s = 0;
  for (size_t k = 0; k < 8; k++)
    s += p[k];
  for (; i < n; i++)
    s += !squares ? (double)x[i] : ((double)x[i] - m) * ((double)x[i] - m);
  return s;
}

static int ln_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"axis", "epsilon", "stash_type", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0), *s = ng__in(cx, n, 1), *b = ng__in(cx, n, 2);
  if (!x || !x->is_float || !s || !s->is_float) return ng__op_error(cx, "expected a float input and scale");
  if (ng__out(cx, n, 1) || ng__out(cx, n, 2))
    return ng__op_error(cx, "the Mean and InvStdDev outputs are not supported");
  norm_attr *a;
  NG_CALL(alloc_attr(n, &a));
  int ax = ng__axis(cx, ng__attr_int(cx, "axis", -1), x->ndim, "axis");
  if (ax < 0) return NG_EFORMAT;
  a->axis = ax;
  a->eps = ng__attr_float(cx, "epsilon", 1e-5);
  size_t nd = x->ndim - (size_t)ax, numel = 1;
  for (size_t k = (size_t)ax; k < x->ndim; k++) {
    if (!ng__ld_const(x->dims[k])) return ng__op_error(cx, "the normalised dimensions depend on the batch");
    numel *= (size_t)x->dims[k].c;
  }
  size_t sn = 1;
  for (size_t k = 0; k < s->ndim; k++)
    sn *= (size_t)s->dims[k].c;
  if (s->ndim > nd || sn != numel)
    return ng__op_error(cx, "scale %s does not match the normalised dimensions", s->name);
  if (b && !b->is_float) return ng__op_error(cx, "bias %s is not float", b->name);
  ng__set_float(ng__out(cx, n, 0), x->ndim, x->dims);
  return NG_OK;
}

static void ln_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const norm_attr *a = n->attr;
  const ng__gt *t = &gr->t[n->in[0]];
  size_t outer, F, inner;
  split(t, r->B, (size_t)a->axis, t->ndim, &outer, &F, &inner);
  const float *x = r->ptr[n->in[0]], *g = r->ptr[n->in[1]];
  const float *b = n->nin > 2 && n->in[2] >= 0 ? r->ptr[n->in[2]] : NULL;
  float *y = r->ptr[n->out[0]];
  for (size_t o = 0; o < outer; o++) {
    const float *xp = x + o * F;
    float *yp = y + o * F;
    double m = sum8(xp, F, false, 0) / (double)F;
    double rs = 1.0 / sqrt(sum8(xp, F, true, m) / (double)F + a->eps);
    float mf = (float)m, rsf = (float)rs;
    if (b)
      for (size_t i = 0; i < F; i++)
        yp[i] = (xp[i] - mf) * rsf * g[i] + b[i];
    else
      for (size_t i = 0; i < F; i++)
        yp[i] = (xp[i] - mf) * rsf * g[i];
  }
}

const ng__op ng__op_LayerNormalization = {"LayerNormalization", ln_setup, ln_run};

/* ---- Softmax ---- */

static int sm_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"axis", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x || !x->is_float || x->ndim < 1) return ng__op_error(cx, "expected a float input");
  norm_attr *a;
  NG_CALL(alloc_attr(n, &a));
  int ax = ng__axis(cx, ng__attr_int(cx, "axis", -1), x->ndim, "axis");
  if (ax < 0) return NG_EFORMAT;
  a->axis = ax;
  ng__set_float(ng__out(cx, n, 0), x->ndim, x->dims);
  return NG_OK;
}

static void sm_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const norm_attr *a = n->attr;
  size_t outer, L, inner;
  split(&gr->t[n->in[0]], r->B, (size_t)a->axis, (size_t)a->axis + 1, &outer, &L, &inner);
  const float *x = r->ptr[n->in[0]];
  float *y = r->ptr[n->out[0]];
  for (size_t o = 0; o < outer; o++) {
    if (inner == 1) { /* the last axis: contiguous rows */
      const float *xp = x + o * L;
      float *yp = y + o * L, mx = -INFINITY;
      for (size_t l = 0; l < L; l++)
        mx = xp[l] > mx ? xp[l] : mx;
      for (size_t l = 0; l < L; l++)
        yp[l] = expf(xp[l] - mx);
      float inv = (float)(1.0 / sum8(yp, L, false, 0));
      for (size_t l = 0; l < L; l++)
        yp[l] *= inv;
      continue;
    }
    for (size_t i = 0; i < inner; i++) {
      const float *xp = x + o * L * inner + i;
      float *yp = y + o * L * inner + i;
      float mx = -INFINITY;
      for (size_t l = 0; l < L; l++)
        if (xp[l * inner] > mx) mx = xp[l * inner];
      double s = 0;
      for (size_t l = 0; l < L; l++) {
        float e = expf(xp[l * inner] - mx);
        yp[l * inner] = e;
        s += e;
      }
      float inv = (float)(1.0 / s);
      for (size_t l = 0; l < L; l++)
        yp[l * inner] *= inv;
    }
  }
}

const ng__op ng__op_Softmax = {"Softmax", sm_setup, sm_run};

/* ---- ReduceMean ---- */

static int rm_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"axes", "keepdims", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x || !x->is_float || n->nin > 1)
    return ng__op_error(cx, "expected one float input (axes as an attribute)");
  norm_attr *a;
  NG_CALL(alloc_attr(n, &a));
  a->keep = ng__attr_int(cx, "keepdims", 1) != 0;
  size_t cnt;
  const int64_t *axes = ng__attr_ints(cx, "axes", &cnt);
  bool red[NG__MAXD] = {false};
  for (size_t k = 0; k < (axes ? cnt : x->ndim); k++) {
    int ax = axes ? ng__axis(cx, axes[k], x->ndim, "axis") : (int)k;
    if (ax < 0) return NG_EFORMAT;
    red[ax] = true;
  }
  ng__ldim od[NG__MAXD];
  size_t on = 0;
  for (size_t k = 0; k < x->ndim; k++) {
    if (red[k]) {
      if (!ng__ld_const(x->dims[k])) return ng__op_error(cx, "a reduction over the batch is not supported");
      a->axes[a->nax++] = (int)k;
      if (a->keep) od[on++] = ng__ldc(1);
    } else {
      od[on++] = x->dims[k];
    }
  }
  ng__set_float(ng__out(cx, n, 0), on, od);
  return NG_OK;
}

static void rm_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const norm_attr *a = n->attr;
  const ng__gt *t = &gr->t[n->in[0]];
  int64_t d[NG__MAXD];
  ng__dims(t, r->B, d);
  const float *x = r->ptr[n->in[0]];
  float *y = r->ptr[n->out[0]];
  bool red[NG__MAXD] = {false};
  for (size_t k = 0; k < a->nax; k++)
    red[a->axes[k]] = true;
  size_t total = ng__numel(t, r->B), count = 1, outn = 1;
  for (size_t k = 0; k < t->ndim; k++)
    *(red[k] ? &count : &outn) *= (size_t)d[k];
  for (size_t o = 0; o < outn; o++)
    y[o] = 0;
  /* accumulate in input order (a fixed order): output index of each input element */
  int64_t idx[NG__MAXD] = {0};
  for (size_t e = 0; e < total; e++) {
    size_t o = 0;
    for (size_t k = 0; k < t->ndim; k++)
      if (!red[k]) o = o * (size_t)d[k] + (size_t)idx[k];
    y[o] += x[e];
    for (size_t k = t->ndim; k-- > 0;) {
      if (++idx[k] < d[k]) break;
      idx[k] = 0;
    }
  }
  for (size_t o = 0; o < outn; o++)
    y[o] /= (float)count;
}

const ng__op ng__op_ReduceMean = {"ReduceMean", rm_setup, rm_run};
