/* Conv (2-D): groups (depthwise included), strides, explicit pads (asymmetric too), dilations, rectangular
 * kernels, optional bias; auto_pad NOTSET or VALID.
 *
 * The whole batch goes through one sgemm per group: the im2col matrix of every example side by side
 * (K = C/group x kh x kw rows, B x Ho x Wo columns), so that the small late feature maps of a ResNet at
 * 32x32 (down to 1x1) still give sgemm wide matrices; the product is then scattered to NCHW with the bias.
 * A depthwise convolution (one input and one output channel per group) runs as a direct loop. The order of
 * every sum is fixed by the shapes (one BLAS thread), so an example's bits depend on the batch size only. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nograd/error.h"

typedef struct {
  int64_t group, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  int64_t C, H, W, O, Ho, Wo;
  bool depthwise;
} conv_attr;

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
  const int64_t *s = ng__attr_ints(cx, "strides", &cnt);
  if (s && cnt != 2) return ng__op_error(cx, "strides must have 2 values");
  a->sh = s ? s[0] : 1, a->sw = s ? s[1] : 1;
  const int64_t *d = ng__attr_ints(cx, "dilations", &cnt);
  if (d && cnt != 2) return ng__op_error(cx, "dilations must have 2 values");
  a->dh = d ? d[0] : 1, a->dw = d ? d[1] : 1;
  const int64_t *p = ng__attr_ints(cx, "pads", &cnt);
  if (p && cnt != 4) return ng__op_error(cx, "pads must have 4 values");
  a->pt = p ? p[0] : 0, a->pl = p ? p[1] : 0, a->pb = p ? p[2] : 0, a->pr = p ? p[3] : 0;
  const ng__onnx_attr *ap = NULL;
  for (size_t k = 0; k < cx->src->nattrs; k++)
    if (!strcmp(cx->src->attrs[k].name, "auto_pad")) ap = &cx->src->attrs[k];
  if (ap && ap->s && strcmp(ap->s, "NOTSET") && strcmp(ap->s, "VALID"))
    return ng__op_error(cx, "auto_pad %s is not supported (export with explicit pads)", ap->s);
  if (a->sh < 1 || a->sw < 1 || a->dh < 1 || a->dw < 1 || a->pt < 0 || a->pl < 0 || a->pb < 0 || a->pr < 0)
    return ng__op_error(cx, "strides and dilations must be positive and pads not negative");
  int64_t eh = (a->kh - 1) * a->dh + 1, ew = (a->kw - 1) * a->dw + 1;
  a->Ho = (a->H + a->pt + a->pb - eh) / a->sh + 1;
  a->Wo = (a->W + a->pl + a->pr - ew) / a->sw + 1;
  if (a->H + a->pt + a->pb < eh || a->W + a->pl + a->pr < ew || a->Ho < 1 || a->Wo < 1)
    return ng__op_error(cx, "the kernel (%lldx%lld dilated) is larger than the padded input %lldx%lld",
                        (long long)eh, (long long)ew, (long long)a->H, (long long)a->W);
  if (b && (!b->is_float || b->ndim != 1 || !ng__ld_const(b->dims[0]) || b->dims[0].c != a->O))
    return ng__op_error(cx, "bias %s must be a float vector of %lld values", b->name, (long long)a->O);
  a->depthwise = a->group == a->C && a->O == a->C;
  ng__ldim od[4] = {x->dims[0], ng__ldc(a->O), ng__ldc(a->Ho), ng__ldc(a->Wo)};
  ng__set_float(ng__out(cx, n, 0), 4, od);
  if (!a->depthwise) {
    int64_t K = a->C / a->group * a->kh * a->kw, Og = a->O / a->group, P = a->Ho * a->Wo;
    n->scratch = (ng__ldim){(K + Og) * P * x->dims[0].a, (K + Og) * P * x->dims[0].c};
  }
  return NG_OK;
}

/* col[k, b*P + p] for the channels [c0, c0 + Cg) of every example. */
static void im2col(const conv_attr *a, const float *x, size_t B, int64_t c0, int64_t Cg, float *col) {
  int64_t P = a->Ho * a->Wo, N = (int64_t)B * P;
  for (int64_t c = 0; c < Cg; c++)
    for (int64_t i = 0; i < a->kh; i++)
      for (int64_t j = 0; j < a->kw; j++) {
        float *row = col + ((c * a->kh + i) * a->kw + j) * N;
        for (size_t b = 0; b < B; b++) {
          const float *plane = x + ((int64_t)b * a->C + c0 + c) * a->H * a->W;
          float *dst = row + (int64_t)b * P;
          for (int64_t oh = 0; oh < a->Ho; oh++) {
            int64_t ih = oh * a->sh - a->pt + i * a->dh;
            float *d = dst + oh * a->Wo;
            if (ih < 0 || ih >= a->H) {
              memset(d, 0, (size_t)a->Wo * sizeof *d);
              continue;
            }
            const float *src = plane + ih * a->W;
            int64_t off = j * a->dw - a->pl;
            if (a->sw == 1) {
              int64_t lo = off < 0 ? -off : 0, hi = a->W - off < a->Wo ? a->W - off : a->Wo;
              if (hi < lo) hi = lo;
              for (int64_t ow = 0; ow < lo; ow++)
                d[ow] = 0;
              if (hi > lo) memcpy(d + lo, src + lo + off, (size_t)(hi - lo) * sizeof *d);
              for (int64_t ow = hi; ow < a->Wo; ow++)
                d[ow] = 0;
            } else {
              for (int64_t ow = 0; ow < a->Wo; ow++) {
                int64_t iw = ow * a->sw + off;
                d[ow] = iw >= 0 && iw < a->W ? src[iw] : 0;
              }
            }
          }
        }
      }
}

static void depthwise(const conv_attr *a, const float *x, const float *w, const float *bias, size_t B,
                      float *y) {
  for (size_t b = 0; b < B; b++)
    for (int64_t c = 0; c < a->C; c++) {
      const float *plane = x + ((int64_t)b * a->C + c) * a->H * a->W, *k = w + c * a->kh * a->kw;
      float *out = y + ((int64_t)b * a->C + c) * a->Ho * a->Wo, b0 = bias ? bias[c] : 0;
      for (int64_t oh = 0; oh < a->Ho; oh++) {
        float *o = out + oh * a->Wo;
        for (int64_t ow = 0; ow < a->Wo; ow++)
          o[ow] = 0;
        for (int64_t i = 0; i < a->kh; i++) {
          int64_t ih = oh * a->sh - a->pt + i * a->dh;
          if (ih < 0 || ih >= a->H) continue;
          const float *src = plane + ih * a->W;
          for (int64_t j = 0; j < a->kw; j++) {
            float kv = k[i * a->kw + j];
            int64_t off = j * a->dw - a->pl;
            /* the outputs whose input column lies inside: ow*sw + off in [0, W) */
            int64_t lo = off < 0 ? (-off + a->sw - 1) / a->sw : 0;
            int64_t hi = (a->W - off + a->sw - 1) / a->sw;
            if (hi > a->Wo) hi = a->Wo;
            if (a->sw == 1)
              for (int64_t ow = lo; ow < hi; ow++)
                o[ow] += kv * src[ow + off];
            else
              for (int64_t ow = lo; ow < hi; ow++)
                o[ow] += kv * src[ow * a->sw + off];
          }
        }
        for (int64_t ow = 0; ow < a->Wo; ow++)
          o[ow] += b0;
      }
    }
}

static void run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const conv_attr *a = n->attr;
  const float *x = r->ptr[n->in[0]], *w = r->ptr[n->in[1]];
  const float *bias = n->nin > 2 && n->in[2] >= 0 ? r->ptr[n->in[2]] : NULL;
  float *y = r->ptr[n->out[0]];
  size_t B = r->B;
  if (a->depthwise) {
    depthwise(a, x, w, bias, B, y);
    return;
  }
  int64_t Cg = a->C / a->group, Og = a->O / a->group, K = Cg * a->kh * a->kw, P = a->Ho * a->Wo;
  int64_t N = (int64_t)B * P;
  float *col = r->scratch, *tmp = col + K * N;
  for (int64_t g = 0; g < a->group; g++) {
    im2col(a, x, B, g * Cg, Cg, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Og, (int)N, (int)K, 1.0f, w + g * Og * K,
                (int)K, col, (int)N, 0.0f, tmp, (int)N);
    for (size_t b = 0; b < B; b++)
      for (int64_t o = 0; o < Og; o++) {
        int64_t oc = g * Og + o;
        float *dst = y + ((int64_t)b * a->O + oc) * P, b0 = bias ? bias[oc] : 0;
        const float *src = tmp + o * N + (int64_t)b * P;
        for (int64_t p = 0; p < P; p++)
          dst[p] = src[p] + b0;
      }
  }
  (void)gr;
}

const ng__op ng__op_Conv = {"Conv", setup, run};
