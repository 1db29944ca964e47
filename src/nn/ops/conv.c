/* Conv (2-D): groups (depthwise included), strides, explicit pads (asymmetric too), dilations, rectangular
 * kernels, optional bias; auto_pad NOTSET or VALID.
 *
 * Examples go through sgemm together, per group, in chunks of about CHUNK_COLS columns: the im2col
 * matrices of several examples side by side (K = C/group x kh x kw rows, Ho x Wo columns each), so that the
 * small late feature maps of a ResNet at 32x32 (down to 1x1) still give sgemm wide matrices while the
 * unfolded input stays in cache; the product is then scattered to NCHW with the bias. A map of
 * PER_EXAMPLE_MIN pixels or more gets one sgemm per example, written to NCHW directly. 3x3 convolutions run
 * as Winograd's (below). A depthwise convolution (one input and one output channel per group) runs as a
 * direct loop. The order of every sum is fixed by the shapes (one BLAS thread), so an example's bits depend
 * on the batch size only. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nn/ops/winograd.h"
#include "nograd/error.h"

#define MAX_TAPS 4096       /* kernels with more taps than this are refused */
#define GATHER_MAX_P 16     /* maps of up to this many pixels are unfolded through an index map per tap */
#define PER_EXAMPLE_MIN 256 /* output pixels from which each example gets its own sgemm (no scatter) */
#define CHUNK_COLS 256      /* below that, examples go through sgemm together, about this many columns */
/* 3x3 stride-1 convolutions with at least this many input and output channels run as Winograd's F(2x2, 3x3)
 * (winograd.c) */
#define WINO_MIN_CHANNELS 16
#define WINO_CHUNK_TILES 1024 /* tiles of 2x2 output pixels per chunk of examples (wino_chunk) */

typedef struct {
  int64_t group, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  int64_t C, H, W, O, Ho, Wo;
  bool depthwise;
  bool wino; /* Winograd's F(2x2, 3x3): th x tw tiles of 2x2 output pixels per example */
  int64_t th, tw;
  /* A BatchNormalization (and a Relu or Clip) after it, applied as the output is written (ng__conv_fuse):
   * the tensors of its four statistics (bn[0] = -1: none), its epsilon, and the activation. */
  int bn[4];
  double eps;
  int act; /* 0 none, 1 Relu, 2 Clip */
  float lo, hi;
  /* The taps (i*kw + j) that see the input for some output pixel; the others only ever see padding and are
   * left out of the product (resnet18's 3x3 convolutions on 1x1 maps become 1x1). */
  int64_t taps[MAX_TAPS];
  int64_t ntaps;
} conv_attr;

/* Examples per chunk of a Winograd convolution: about WINO_CHUNK_TILES tiles (at least one example), so that
 * the transformed input and products stay a few MB whatever the batch (the whole batch of 256 at 16x16 with
 * 32 channels in and out took 67 MB). */
static int64_t wino_chunk(const conv_attr *a) {
  int64_t tiles = a->th * a->tw;
  return tiles >= WINO_CHUNK_TILES ? 1 : WINO_CHUNK_TILES / tiles;
}

static int setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                      "pads",     "strides",   NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0), *w = ng__in(cx, n, 1), *b = ng__in(cx, n, 2);
  if (!x || !w || !x->is_float || !w->is_float || n->nout != 1)
    return ng__op_error(cx, "expected a float input and weight, and one output");
  if (x->ndim != 4 || w->ndim != 4)
    return ng__op_error(cx,
                        "only 2-D convolutions (4-D input and weight) are supported; got ranks %zu and %zu",
                        x->ndim, w->ndim);
  for (size_t k = 1; k < 4; k++)
    if (!ng__ld_const(x->dims[k]))
      return ng__op_error(cx, "input %s: only dimension 0 may depend on the batch", x->name);
  for (size_t k = 0; k < 4; k++)
    if (!ng__ld_const(w->dims[k])) return ng__op_error(cx, "weight %s depends on the batch", w->name);
  conv_attr *a = calloc(1, sizeof *a);
  if (!a) return ng_error(NG_ENOMEM, "out of memory");
  n->attr = a;
  a->group = ng__attr_int(cx, "group", 1);
  a->C = x->dims[1].c, a->H = x->dims[2].c, a->W = x->dims[3].c;
  a->O = w->dims[0].c;
  a->kh = w->dims[2].c, a->kw = w->dims[3].c;
  if (a->group < 1 || a->C % a->group || a->O % a->group || w->dims[1].c != a->C / a->group)
    return ng__op_error(
        cx, "weight %s of [%lld, %lld, %lld, %lld] does not fit %lld input channels in %lld groups", w->name,
        (long long)a->O, (long long)w->dims[1].c, (long long)a->kh, (long long)a->kw, (long long)a->C,
        (long long)a->group);
  size_t cnt;
  const int64_t *ks = ng__attr_ints(cx, "kernel_shape", &cnt);
  if (ks && (cnt != 2 || ks[0] != a->kh || ks[1] != a->kw))
    return ng__op_error(cx, "kernel_shape does not match the weight %s", w->name);
  ng__window win;
  NG_CALL(ng__window_attrs(cx, &win));
  a->sh = win.sh, a->sw = win.sw, a->dh = win.dh, a->dw = win.dw;
  a->pt = win.pt, a->pl = win.pl, a->pb = win.pb, a->pr = win.pr;
  int64_t eh = (a->kh - 1) * a->dh + 1, ew = (a->kw - 1) * a->dw + 1;
  a->Ho = (a->H + a->pt + a->pb - eh) / a->sh + 1;
  a->Wo = (a->W + a->pl + a->pr - ew) / a->sw + 1;
  if (a->H + a->pt + a->pb < eh || a->W + a->pl + a->pr < ew || a->Ho < 1 || a->Wo < 1)
    return ng__op_error(cx, "the kernel (%lldx%lld dilated) is larger than the padded input %lldx%lld",
                        (long long)eh, (long long)ew, (long long)a->H, (long long)a->W);
  if (b && (!b->is_float || b->ndim != 1 || !ng__ld_const(b->dims[0]) || b->dims[0].c != a->O))
    return ng__op_error(cx, "bias %s must be a float vector of %lld values", b->name, (long long)a->O);
  a->depthwise = a->group == a->C && a->O == a->C;
  a->bn[0] = -1;
  if (a->kh * a->kw > MAX_TAPS) return ng__op_error(cx, "a kernel of more than %d taps", MAX_TAPS);
  for (int64_t i = 0; i < a->kh; i++)
    for (int64_t j = 0; j < a->kw; j++) {
      bool rows = false, cols = false;
      for (int64_t oh = 0; oh < a->Ho && !rows; oh++)
        rows = oh * a->sh - a->pt + i * a->dh >= 0 && oh * a->sh - a->pt + i * a->dh < a->H;
      for (int64_t ow = 0; ow < a->Wo && !cols; ow++)
        cols = ow * a->sw - a->pl + j * a->dw >= 0 && ow * a->sw - a->pl + j * a->dw < a->W;
      if (rows && cols) a->taps[a->ntaps++] = i * a->kw + j;
    }
  ng__ldim od[4] = {x->dims[0], ng__ldc(a->O), ng__ldc(a->Ho), ng__ldc(a->Wo)};
  ng__set_float(ng__out(cx, n, 0), 4, od);
  a->wino = a->kh == 3 && a->kw == 3 && a->sh == 1 && a->sw == 1 && a->dh == 1 && a->dw == 1 &&
            a->group == 1 && a->ntaps == 9 && a->C >= WINO_MIN_CHANNELS && a->O >= WINO_MIN_CHANNELS;
  if (a->depthwise) {
    n->scratch = ng__ldc((a->H + a->pt + a->pb) * (a->W + a->pl + a->pr));
  } else if (a->wino) {
    /* U[16][O][C], V[16][C][T], M[16][O][T] (planes padded by ng__wino_stride, at most 32 floats) and one
     * padded plane; T = the tiles of a chunk of wino_chunk(a) examples, whatever the batch */
    a->th = (a->Ho + 1) / 2, a->tw = (a->Wo + 1) / 2;
    int64_t per, sc, u, tiles, cap;
    if (__builtin_mul_overflow(a->th, a->tw, &tiles) ||
        __builtin_mul_overflow(16 * (a->C + a->O), tiles, &per) || __builtin_mul_overflow(a->O, a->C, &u) ||
        __builtin_add_overflow(u, 32, &u) || __builtin_mul_overflow(u, 16, &u) ||
        __builtin_add_overflow(u, 2 * 16 * 32 + (2 * a->th + 2) * (2 * a->tw + 2), &sc) ||
        __builtin_mul_overflow(per, wino_chunk(a), &cap) || __builtin_add_overflow(cap, sc, &cap) ||
        per > NG__MAX_ELEMENTS || cap > NG__MAX_ELEMENTS)
      return ng__op_error(cx, "the convolution's transformed input is larger than %lld elements",
                          (long long)NG__MAX_ELEMENTS);
    n->scratch = (ng__ldim){per, sc};
    n->scratch_cap = cap;
  } else {
    /* the live weights, and the unfolded input and product of one chunk of examples (run) */
    int64_t K = a->C / a->group * a->ntaps, Og = a->O / a->group, P = a->Ho * a->Wo, wk, per, cap;
    int64_t cols = P < CHUNK_COLS ? CHUNK_COLS / P * P : P;
    if (__builtin_mul_overflow(a->O, K, &wk) || __builtin_mul_overflow(K + Og, P, &per) ||
        __builtin_mul_overflow(K + Og, cols, &cap) || __builtin_add_overflow(cap, wk, &cap) ||
        per > NG__MAX_ELEMENTS || cap > NG__MAX_ELEMENTS)
      return ng__op_error(cx, "the convolution's unfolded input is larger than %lld elements",
                          (long long)NG__MAX_ELEMENTS);
    n->scratch = (ng__ldim){per, wk};
    n->scratch_cap = cap;
  }
  return NG_OK;
}

/* col[c*ntaps + t, b*P + p] for the channels [c0, c0 + Cg) of every example and the live taps. Tiny maps go
 * through an index map per tap (the geometry per row would cost more than the copy); a tap of a stride-1
 * "same"-width map is the plane shifted by one offset: one contiguous copy, then the wrapped columns zeroed.
 */
static void im2col(const conv_attr *a, const float *x, size_t B, int64_t c0, int64_t Cg, float *col) {
  int64_t P = a->Ho * a->Wo, N = (int64_t)B * P, HW = a->H * a->W, nt = a->ntaps;
  for (int64_t t = 0; t < nt; t++) {
    int64_t i = a->taps[t] / a->kw, j = a->taps[t] % a->kw, off = j * a->dw - a->pl;
    if (P <= GATHER_MAX_P) {
      int64_t idx[GATHER_MAX_P];
      for (int64_t oh = 0; oh < a->Ho; oh++)
        for (int64_t ow = 0; ow < a->Wo; ow++) {
          int64_t ih = oh * a->sh - a->pt + i * a->dh, iw = ow * a->sw + off;
          idx[oh * a->Wo + ow] = ih >= 0 && ih < a->H && iw >= 0 && iw < a->W ? ih * a->W + iw : -1;
        }
      for (int64_t c = 0; c < Cg; c++)
        for (size_t b = 0; b < B; b++) {
          const float *plane = x + ((int64_t)b * a->C + c0 + c) * HW;
          float *d = col + (c * nt + t) * N + (int64_t)b * P;
          for (int64_t q = 0; q < P; q++)
            d[q] = idx[q] >= 0 ? plane[idx[q]] : 0.0f;
        }
      continue;
    }
    int64_t lo = off < 0 ? (-off + a->sw - 1) / a->sw : 0;
    int64_t hi = a->W - off > 0 ? (a->W - off + a->sw - 1) / a->sw : 0;
    if (hi > a->Wo) hi = a->Wo;
    if (lo > hi) lo = hi;
    for (int64_t c = 0; c < Cg; c++)
      for (size_t b = 0; b < B; b++) {
        const float *plane = x + ((int64_t)b * a->C + c0 + c) * HW;
        float *dst = col + (c * nt + t) * N + (int64_t)b * P;
        for (int64_t oh = 0; oh < a->Ho; oh++) {
          int64_t ih = oh * a->sh - a->pt + i * a->dh;
          float *d = dst + oh * a->Wo;
          if (ih < 0 || ih >= a->H) {
            for (int64_t ow = 0; ow < a->Wo; ow++)
              d[ow] = 0;
            continue;
          }
          const float *src = plane + ih * a->W + off;
          for (int64_t ow = 0; ow < lo; ow++)
            d[ow] = 0;
          if (a->sw == 1)
            for (int64_t ow = lo; ow < hi; ow++)
              d[ow] = src[ow];
          else
            for (int64_t ow = lo; ow < hi; ow++)
              d[ow] = src[ow * a->sw];
          for (int64_t ow = hi; ow < a->Wo; ow++)
            d[ow] = 0;
        }
      }
  }
}

/* The weights of the live taps, [O, Cg*ntaps] (w itself when every tap is live). */
static const float *live_weights(const conv_attr *a, const float *w, float *buf) {
  int64_t kk = a->kh * a->kw, Cg = a->C / a->group;
  if (a->ntaps == kk) return w;
  for (int64_t o = 0; o < a->O; o++)
    for (int64_t c = 0; c < Cg; c++)
      for (int64_t t = 0; t < a->ntaps; t++)
        buf[(o * Cg + c) * a->ntaps + t] = w[(o * Cg + c) * kk + a->taps[t]];
  return buf;
}

/* A depthwise convolution, plane by plane: each input plane is copied once into a zero-padded buffer, so that
 * the taps need no bounds checks; 3x3 kernels at stride 1 or 2 (MobileNet's) have their own unrolled loop. */
static void depthwise(const conv_attr *a, const float *x, const float *w, size_t B, float *y, float *pad) {
  int64_t Hp = a->H + a->pt + a->pb, Wp = a->W + a->pl + a->pr;
  memset(pad, 0, (size_t)(Hp * Wp) * sizeof *pad);
  bool k3 = a->kh == 3 && a->kw == 3 && a->dh == 1 && a->dw == 1 && a->sh == a->sw;
  for (size_t b = 0; b < B; b++)
    for (int64_t c = 0; c < a->C; c++) {
      const float *plane = x + ((int64_t)b * a->C + c) * a->H * a->W, *k = w + c * a->kh * a->kw;
      float *out = y + ((int64_t)b * a->C + c) * a->Ho * a->Wo;
      for (int64_t h = 0; h < a->H; h++)
        memcpy(pad + (h + a->pt) * Wp + a->pl, plane + h * a->W, (size_t)a->W * sizeof *pad);
      for (int64_t oh = 0; oh < a->Ho; oh++) {
        float *o = out + oh * a->Wo;
        const float *r0 = pad + oh * a->sh * Wp;
        if (k3) {
          const float *r1 = r0 + Wp, *r2 = r1 + Wp;
          int64_t s = a->sh;
          for (int64_t ow = 0; ow < a->Wo; ow++) {
            int64_t q = ow * s;
            o[ow] = k[0] * r0[q] + k[1] * r0[q + 1] + k[2] * r0[q + 2] + k[3] * r1[q] + k[4] * r1[q + 1] +
                    k[5] * r1[q + 2] + k[6] * r2[q] + k[7] * r2[q + 1] + k[8] * r2[q + 2];
          }
          continue;
        }
        for (int64_t ow = 0; ow < a->Wo; ow++)
          o[ow] = 0;
        for (int64_t i = 0; i < a->kh; i++) {
          const float *row = r0 + i * a->dh * Wp;
          for (int64_t j = 0; j < a->kw; j++) {
            float kv = k[i * a->kw + j];
            const float *src = row + j * a->dw;
            for (int64_t ow = 0; ow < a->Wo; ow++)
              o[ow] += kv * src[ow * a->sw];
          }
        }
      }
    }
}

/* dst[p] = act((src[p] + b0) * s + t) over P values: the bias, the fused BatchNormalization (skipped without
 * one) and the fused activation, with BatchNormalization's own arithmetic (norm.c), so that fusing changes
 * no bit. src may be dst. */
static void epilogue(const conv_attr *a, const float *src, float *dst, int64_t P, float b0, float s,
                     float t) {
  if (a->bn[0] < 0)
    for (int64_t p = 0; p < P; p++)
      dst[p] = src[p] + b0;
  else
    for (int64_t p = 0; p < P; p++) {
      float v = src[p] + b0;
      dst[p] = v * s + t;
    }
  if (a->act == 1)
    for (int64_t p = 0; p < P; p++)
      dst[p] = dst[p] > 0 ? dst[p] : 0;
  else if (a->act == 2)
    for (int64_t p = 0; p < P; p++)
      dst[p] = dst[p] < a->lo ? a->lo : dst[p] > a->hi ? a->hi : dst[p];
}

/* The fused BatchNormalization's scale and shift of channel c (ng__bn_coef, as norm.c computes them). */
static void bn_coef(const conv_attr *a, ng__run *r, int64_t c, float *s, float *t) {
  *s = 1, *t = 0;
  if (a->bn[0] >= 0)
    ng__bn_coef(r->ptr[a->bn[0]], r->ptr[a->bn[1]], r->ptr[a->bn[2]], r->ptr[a->bn[3]], a->eps, (size_t)c, s,
                t);
}

/* The epilogue over a finished output y[B][O][Ho][Wo], in place. */
static void epilogue_in_place(const conv_attr *a, ng__run *r, const float *bias, size_t B, float *y) {
  int64_t P = a->Ho * a->Wo;
  float s, t;
  for (int64_t o = 0; o < a->O; o++) {
    bn_coef(a, r, o, &s, &t);
    for (size_t b = 0; b < B; b++) {
      float *yp = y + ((int64_t)b * a->O + o) * P;
      epilogue(a, yp, yp, P, bias ? bias[o] : 0, s, t);
    }
  }
}

static void run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const conv_attr *a = n->attr;
  const float *x = r->ptr[n->in[0]], *w = r->ptr[n->in[1]];
  const float *bias = n->nin > 2 && n->in[2] >= 0 ? r->ptr[n->in[2]] : NULL;
  float *y = r->ptr[n->out[0]];
  size_t B = r->B;
  int64_t P = a->Ho * a->Wo;
  float s, t;
  if (a->depthwise) {
    depthwise(a, x, w, B, y, r->scratch);
    epilogue_in_place(a, r, bias, B, y);
    return;
  }
  if (a->wino) { /* examples in chunks of wino_chunk(a), whose tiles' transforms fit the scratch */
    int64_t nb = wino_chunk(a) < (int64_t)B ? wino_chunk(a) : (int64_t)B, Tmax = nb * a->th * a->tw;
    float *U = r->scratch, *V = U + 16 * ng__wino_stride(a->O * a->C),
          *M = V + 16 * ng__wino_stride(a->C * Tmax);
    float *pad = M + 16 * ng__wino_stride(a->O * Tmax);
    ng__wino_weights(w, a->O, a->C, U);
    for (size_t b0 = 0; b0 < B; b0 += (size_t)nb) {
      int64_t cb = (int64_t)(B - b0 < (size_t)nb ? B - b0 : (size_t)nb), T = cb * a->th * a->tw;
      ng__wino_input(x + (int64_t)b0 * a->C * a->H * a->W, cb, a->C, a->H, a->W, a->pt, a->pl, a->th, a->tw,
                     V, pad);
      ng__wino_multiply(U, V, a->O, a->C, T, M);
      ng__wino_output(M, cb, a->O, a->Ho, a->Wo, a->th, a->tw, y + (int64_t)b0 * a->O * a->Ho * a->Wo);
    }
    epilogue_in_place(a, r, bias, B, y);
    return;
  }
  int64_t Cg = a->C / a->group, Og = a->O / a->group, K = Cg * a->ntaps;
  w = live_weights(a, w, r->scratch);
  float *scratch = r->scratch + (w == r->scratch ? a->O * K : 0);
  if (a->group == 1 && P >= PER_EXAMPLE_MIN) { /* wide enough per example: NCHW written directly */
    float *col = scratch;
    for (size_t b = 0; b < B; b++) {
      float *yb = y + (int64_t)b * a->O * P;
      im2col(a, x + (int64_t)b * a->C * a->H * a->W, 1, 0, Cg, col);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)a->O, (int)P, (int)K, 1.0f, w, (int)K, col,
                  (int)P, 0.0f, yb, (int)P);
      for (int64_t o = 0; o < a->O; o++) {
        bn_coef(a, r, o, &s, &t);
        epilogue(a, yb + o * P, yb + o * P, P, bias ? bias[o] : 0, s, t);
      }
    }
    return;
  }
  /* Examples in chunks of about CHUNK_COLS columns, so that the unfolded input stays in cache (LeNet's
   * second convolution unfolds to 150 rows of 64 columns per example: 9.8 MB for the whole batch of 256).
   * Measured against the whole batch at once: LeNet's conv2 at batch 256 2.4 -> 1.7 ms; whole passes at
   * batch 64, squeezenet1_1 12.4 -> 11.5 ms, mobilenet_v2 31.0 -> 30.2 ms, resnet18 unchanged (1024
   * columns: in between). */
  size_t nb = P >= CHUNK_COLS ? 1 : (size_t)(CHUNK_COLS / P);
  if (nb > B) nb = B; /* the scratch was sized for the workspace's batch (and at most a chunk) */
  float *col = scratch, *tmp = col + K * (int64_t)nb * P;
  for (size_t b0 = 0; b0 < B; b0 += nb) {
    size_t cb = B - b0 < nb ? B - b0 : nb;
    int64_t N = (int64_t)cb * P;
    for (int64_t g = 0; g < a->group; g++) {
      im2col(a, x + (int64_t)b0 * a->C * a->H * a->W, cb, g * Cg, Cg, col);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Og, (int)N, (int)K, 1.0f, w + g * Og * K,
                  (int)K, col, (int)N, 0.0f, tmp, (int)N);
      for (int64_t o = 0; o < Og; o++) {
        int64_t oc = g * Og + o;
        bn_coef(a, r, oc, &s, &t);
        for (size_t b = 0; b < cb; b++)
          epilogue(a, tmp + o * N + (int64_t)b * P, y + ((int64_t)(b0 + b) * a->O + oc) * P, P,
                   bias ? bias[oc] : 0, s, t);
      }
    }
  }
  (void)gr;
}

const ng__op ng__op_Conv = {"Conv", setup, run};

/* ---- Fusion ---- */

void ng__conv_fuse(ng__graph *gr) {
  for (size_t i = 0; i < gr->nnodes; i++) {
    ng__gnode *c = &gr->nodes[i];
    if (c->op != &ng__op_Conv || c->folded) continue;
    conv_attr *a = c->attr;
    int last = c->out[0]; /* the tensor whose value the convolution's output loop now writes */
    int r = ng__sole_reader(gr, last);
    ng__gnode *bn = r >= 0 ? &gr->nodes[r] : NULL;
    if (bn && bn->op == &ng__op_BatchNormalization && bn->in[0] == last) {
      bool fixed = true; /* statistics that are parameters or constants, not computed */
      for (size_t k = 1; k < 5; k++)
        fixed = fixed && gr->t[bn->in[k]].kind != NG__T_ACT;
      if (!fixed) continue;
      for (size_t k = 0; k < 4; k++)
        a->bn[k] = bn->in[k + 1];
      a->eps = ng__bn_eps(bn);
      bn->op = &ng__op_fused;
      gr->t[bn->out[0]].alias = last;
      gr->t[last].partial = true;
      last = bn->out[0];
    }
    int q = ng__sole_reader(gr, last);
    if (q < 0) continue;
    ng__gnode *act = &gr->nodes[q];
    if (act->op == &ng__op_Relu) {
      a->act = 1;
    } else if (act->op == &ng__op_Clip) {
      ng__clip_bounds(act, &a->lo, &a->hi);
      a->act = 2;
    } else {
      continue;
    }
    act->op = &ng__op_fused;
    gr->t[act->out[0]].alias = last;
    gr->t[last].partial = true;
  }
}
