/* Pooling over 2-D maps: MaxPool (pads, strides, dilations, ceil_mode), AveragePool (pads, strides,
 * ceil_mode, count_include_pad) and GlobalAveragePool. Windows follow PyTorch's rules (the reference the
 * models come from): with ceil_mode the last window must start inside the input or its left padding, and
 * an average with count_include_pad divides by the window clipped to the padded input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nograd/error.h"

typedef struct {
  bool max, include_pad, global;
  int64_t kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  int64_t C, H, W, Ho, Wo;
} pool_attr;

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1, bool ceil_mode) {
  int64_t span = in + p0 + p1 - ((k - 1) * d + 1);
  if (span < 0) return 0;
  int64_t o = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (o - 1) * s >= in + p0) o--;
  return o;
}

static int setup_common(ng__gctx *cx, ng__gnode *n, bool max, bool global) {
  static const char *const known_max[] = {"auto_pad", "ceil_mode",     "dilations", "kernel_shape",
                                          "pads",     "storage_order", "strides",   NULL};
  static const char *const known_avg[] = {
      "auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides", NULL};
  static const char *const none[] = {NULL};
  NG_CALL(ng__attr_only(cx, global ? none : max ? known_max : known_avg));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x || !x->is_float || x->ndim != 4 || n->nout < 1)
    return ng__op_error(cx, "expected a float input of 4 dimensions (N C H W)");
  if (max && n->nout > 1 && ng__out(cx, n, 1)) return ng__op_error(cx, "the Indices output is not supported");
  for (size_t k = 1; k < 4; k++)
    if (!ng__ld_const(x->dims[k]))
      return ng__op_error(cx, "only dimension 0 of %s may depend on the batch", x->name);
  pool_attr *a = calloc(1, sizeof *a);
  if (!a) return ng_error(NG_ENOMEM, "out of memory");
  n->attr = a;
  a->max = max;
  a->global = global;
  a->C = x->dims[1].c, a->H = x->dims[2].c, a->W = x->dims[3].c;
  if (global) {
    a->Ho = a->Wo = 1;
  } else {
    size_t cnt;
    const int64_t *k = ng__attr_ints(cx, "kernel_shape", &cnt);
    if (!k || cnt != 2) return ng__op_error(cx, "kernel_shape must have 2 values");
    a->kh = k[0], a->kw = k[1];
    ng__window win;
    NG_CALL(ng__window_attrs(cx, &win));
    a->sh = win.sh, a->sw = win.sw, a->dh = win.dh, a->dw = win.dw;
    a->pt = win.pt, a->pl = win.pl, a->pb = win.pb, a->pr = win.pr;
    if (a->kh < 1 || a->kw < 1) return ng__op_error(cx, "kernel_shape must be positive");
    if (ng__attr_int(cx, "storage_order", 0) != 0)
      return ng__op_error(cx, "storage_order 1 is not supported");
    bool ceil_mode = ng__attr_int(cx, "ceil_mode", 0) != 0;
    a->include_pad = ng__attr_int(cx, "count_include_pad", 0) != 0;
    a->Ho = out_size(a->H, a->kh, a->sh, a->dh, a->pt, a->pb, ceil_mode);
    a->Wo = out_size(a->W, a->kw, a->sw, a->dw, a->pl, a->pr, ceil_mode);
    if (a->Ho < 1 || a->Wo < 1) return ng__op_error(cx, "the window is larger than the padded input");
  }
  ng__ldim od[4] = {x->dims[0], ng__ldc(a->C), ng__ldc(a->Ho), ng__ldc(a->Wo)};
  ng__set_float(ng__out(cx, n, 0), 4, od);
  n->scratch = ng__ldc(a->Wo);
  return NG_OK;
}

/* The outputs ow in [*lo, *hi) whose input column ow*s + off lies in [0, W). */
static void valid_cols(int64_t off, int64_t s, int64_t W, int64_t Wo, int64_t *lo, int64_t *hi) {
  *lo = off < 0 ? (-off + s - 1) / s : 0;
  *hi = W - off > 0 ? (W - off + s - 1) / s : 0;
  if (*hi > Wo) *hi = Wo;
  if (*lo > *hi) *lo = *hi;
}

/* 2x2 windows at stride 2 without padding, the taps in the general loop's order and with its comparison
 * (so -0, +0 and NaN come out the same), one output row from two input rows. */
static void max2x2(const pool_attr *a, const float *x, size_t planes, float *y) {
  for (size_t q = 0; q < planes; q++) {
    const float *p = x + (int64_t)q * a->H * a->W;
    float *o = y + (int64_t)q * a->Ho * a->Wo;
    for (int64_t oh = 0; oh < a->Ho; oh++) {
      const float *r0 = p + 2 * oh * a->W, *r1 = r0 + a->W;
      float *orow = o + oh * a->Wo;
      for (int64_t ow = 0; ow < a->Wo; ow++) {
        float m = -INFINITY, v;
        v = r0[2 * ow], m = v > m ? v : m;
        v = r0[2 * ow + 1], m = v > m ? v : m;
        v = r1[2 * ow], m = v > m ? v : m;
        v = r1[2 * ow + 1], m = v > m ? v : m;
        orow[ow] = m;
      }
    }
  }
}

/* Row by row: each kernel tap is a loop over the output columns it reaches, which vectorises. A NaN input
 * is not propagated by MaxPool (as fmaxf). */
static void run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const pool_attr *a = n->attr;
  const float *x = r->ptr[n->in[0]];
  float *y = r->ptr[n->out[0]];
  size_t planes = r->B * (size_t)a->C;
  int64_t HW = a->H * a->W;
  if (a->global) {
    for (size_t q = 0; q < planes; q++) {
      const float *p = x + (int64_t)q * HW;
      float s = 0;
      for (int64_t i = 0; i < HW; i++)
        s += p[i];
      y[q] = s / (float)HW;
    }
    return;
  }
  if (a->max && a->kh == 2 && a->kw == 2 && a->sh == 2 && a->sw == 2 && a->dh == 1 && a->dw == 1 &&
      a->pt == 0 && a->pl == 0 && 2 * a->Ho <= a->H && 2 * a->Wo <= a->W) {
    max2x2(a, x, planes, y); /* the common window, in cache-friendly rows */
    return;
  }
  float *cols = r->scratch; /* per output column: taps inside the input (or the padded window) */
  for (int64_t ow = 0; ow < a->Wo; ow++) {
    int64_t ws = ow * a->sw - a->pl, c = 0;
    for (int64_t j = 0; j < a->kw; j++)
      c += ws + j * a->dw >= 0 && ws + j * a->dw < a->W;
    if (a->include_pad) c = (ws + a->kw < a->W + a->pr ? ws + a->kw : a->W + a->pr) - ws;
    cols[ow] = (float)c;
  }
  for (size_t q = 0; q < planes; q++) {
    const float *p = x + (int64_t)q * HW;
    float *o = y + (int64_t)q * a->Ho * a->Wo;
    for (int64_t oh = 0; oh < a->Ho; oh++) {
      float *orow = o + oh * a->Wo;
      int64_t hs = oh * a->sh - a->pt, rows = 0;
      for (int64_t ow = 0; ow < a->Wo; ow++)
        orow[ow] = a->max ? -INFINITY : 0;
      for (int64_t i = 0; i < a->kh; i++) {
        int64_t ih = hs + i * a->dh;
        if (ih < 0 || ih >= a->H) continue;
        rows++;
        const float *src = p + ih * a->W;
        for (int64_t j = 0; j < a->kw; j++) {
          int64_t off = j * a->dw - a->pl, lo, hi;
          valid_cols(off, a->sw, a->W, a->Wo, &lo, &hi);
          if (a->max && a->sw == 1)
            for (int64_t ow = lo; ow < hi; ow++)
              orow[ow] = src[ow + off] > orow[ow] ? src[ow + off] : orow[ow];
          else if (a->max)
            for (int64_t ow = lo; ow < hi; ow++)
              orow[ow] = src[ow * a->sw + off] > orow[ow] ? src[ow * a->sw + off] : orow[ow];
          else
            for (int64_t ow = lo; ow < hi; ow++)
              orow[ow] += src[ow * a->sw + off];
        }
      }
      if (!a->max) {
        float rcount = a->include_pad ? (float)((hs + a->kh < a->H + a->pb ? hs + a->kh : a->H + a->pb) - hs)
                                      : (float)rows;
        for (int64_t ow = 0; ow < a->Wo; ow++) {
          float c = rcount * cols[ow];
          orow[ow] = c > 0 ? orow[ow] / c : 0;
        }
      }
    }
  }
  (void)gr;
}

static int setup_max(ng__gctx *cx, ng__gnode *n) {
  return setup_common(cx, n, true, false);
}
static int setup_avg(ng__gctx *cx, ng__gnode *n) {
  return setup_common(cx, n, false, false);
}
static int setup_global(ng__gctx *cx, ng__gnode *n) {
  return setup_common(cx, n, false, true);
}

const ng__op ng__op_MaxPool = {"MaxPool", setup_max, run};
const ng__op ng__op_AveragePool = {"AveragePool", setup_avg, run};
const ng__op ng__op_GlobalAveragePool = {"GlobalAveragePool", setup_global, run};
