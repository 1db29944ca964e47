/* The backward pass of a native model's conv2d layer, by im2col and single-threaded sgemm per example (the
 * forward pass is the graph executor's Conv, src/nn/ops/conv.c).
 *
 * For one example, im2col unfolds x[C, H, W] into col[C k k, Ho Wo] (row (c, ki, kj) holds the input pixel
 * each output position sees through that weight, zero where the window overhangs the padding). Then
 *
 *   dw[O, C k k]  += dy_b[O, Ho Wo] col^T
 *   col            = w^T dy_b,  dx_b = col2im(col) (the adjoint of im2col: overlapping windows add)
 *
 * Per example, not one GEMM over the batch: NCHW puts the batch outside the channels, so a batched GEMM
 * would need transposing copies of dy and an output-sized buffer. See ng_conv2d_col_size for the scratch it
 * needs. A 1x1 convolution with stride 1 and no padding skips im2col: col is x itself.
 *
 * Determinism: every sum runs in an order fixed by the shapes (one BLAS thread, examples in order, bias
 * gradients summed in double row by row), so the same inputs give the same bits on every call. */
#include <cblas.h>
#include <string.h>

#include "nn/kernels.h"

size_t ng_conv_out(size_t H, size_t k, size_t stride, size_t pad) {
  if (stride == 0 || k == 0 || k > H + 2 * pad) return 0;
  return (H + 2 * pad - k) / stride + 1;
}

/* One example needs col[C k k, Ho Wo]; B does not matter because the examples reuse it in turn. */
size_t ng_conv2d_col_size(size_t B, size_t C, size_t H, size_t W, size_t k, size_t stride, size_t pad) {
  (void)B;
  return C * k * k * ng_conv_out(H, k, stride, pad) * ng_conv_out(W, k, stride, pad);
}

/* The output columns [*lo, *hi) whose input column ow stride + kj - pad falls inside [0, W). */
static void valid_range(size_t W, size_t Wo, size_t kj, size_t stride, size_t pad, size_t *lo, size_t *hi) {
  size_t l = kj >= pad ? 0 : (pad - kj + stride - 1) / stride;
  size_t h = W + pad > kj ? (W + pad - kj - 1) / stride + 1 : 0;
  if (h > Wo) h = Wo;
  if (l > h) l = h;
  *lo = l;
  *hi = h;
}

/* col[C k k, Ho Wo] from one example x[C, H, W]. */
static void im2col(const float *x, size_t C, size_t H, size_t W, size_t k, size_t stride, size_t pad,
                   size_t Ho, size_t Wo, float *col) {
  float *row = col;
  for (size_t c = 0; c < C; c++) {
    const float *xc = x + c * H * W;
    for (size_t ki = 0; ki < k; ki++) {
      for (size_t kj = 0; kj < k; kj++, row += Ho * Wo) {
        size_t lo, hi;
        valid_range(W, Wo, kj, stride, pad, &lo, &hi);
        for (size_t oh = 0; oh < Ho; oh++) {
          float *out = row + oh * Wo;
          size_t ih = oh * stride + ki; /* + pad: unsigned, compared against pad below */
          if (ih < pad || ih - pad >= H || lo == hi) {
            memset(out, 0, Wo * sizeof *out);
            continue;
          }
          const float *in = xc + (ih - pad) * W + (lo * stride + kj - pad);
          if (lo > 0) memset(out, 0, lo * sizeof *out);
          if (stride == 1) { /* a loop, not memcpy: rows are short (8 to 32 floats) and a call costs more */
            for (size_t ow = lo; ow < hi; ow++)
              out[ow] = in[ow - lo];
          } else {
            for (size_t ow = lo; ow < hi; ow++)
              out[ow] = in[(ow - lo) * stride];
          }
          if (hi < Wo) memset(out + hi, 0, (Wo - hi) * sizeof *out);
        }
      }
    }
  }
}

/* dx[C, H, W] += the adjoint of im2col applied to col (positions in the padding are dropped). */
static void col2im_add(const float *col, size_t C, size_t H, size_t W, size_t k, size_t stride, size_t pad,
                       size_t Ho, size_t Wo, float *dx) {
  const float *row = col;
  for (size_t c = 0; c < C; c++) {
    float *dxc = dx + c * H * W;
    for (size_t ki = 0; ki < k; ki++) {
      for (size_t kj = 0; kj < k; kj++, row += Ho * Wo) {
        size_t lo, hi;
        valid_range(W, Wo, kj, stride, pad, &lo, &hi);
        if (lo == hi) continue;
        for (size_t oh = 0; oh < Ho; oh++) {
          size_t ih = oh * stride + ki;
          if (ih < pad || ih - pad >= H) continue;
          const float *in = row + oh * Wo;
          float *out = dxc + (ih - pad) * W + (lo * stride + kj - pad);
          if (stride == 1) {
            for (size_t ow = lo; ow < hi; ow++)
              out[ow - lo] += in[ow];
          } else {
            for (size_t ow = lo; ow < hi; ow++)
              out[(ow - lo) * stride] += in[ow];
          }
        }
      }
    }
  }
}

void ng_conv2d_backward(const float *x, size_t B, size_t C, size_t H, size_t W, const float *w, size_t O,
                        size_t k, size_t stride, size_t pad, const float *dy, float *dx, float *dw, float *db,
                        float *col) {
  size_t Ho = ng_conv_out(H, k, stride, pad), Wo = ng_conv_out(W, k, stride, pad);
  size_t P = Ho * Wo, K = C * k * k;
  if (dx) memset(dx, 0, B * C * H * W * sizeof *dx);
  if (B == 0 || O == 0 || P == 0) return;
  int pointwise = k == 1 && stride == 1 && pad == 0;
  for (size_t n = 0; n < B; n++) {
    const float *xn = x + n * C * H * W;
    const float *dyn = dy + n * O * P;
    if (db) {
      for (size_t o = 0; o < O; o++) {
        double s = 0.0;
        for (size_t p = 0; p < P; p++)
          s += dyn[o * P + p];
        db[o] += (float)s;
      }
    }
    if (dw) {
      const float *cn = xn;
      if (!pointwise) {
        im2col(xn, C, H, W, k, stride, pad, Ho, Wo, col);
        cn = col;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)O, (int)K, (int)P, 1.0f, dyn, (int)P, cn,
                  (int)P, 1.0f, dw, (int)K);
    }
    if (dx) {
      float *dxn = dx + n * C * H * W;
      if (pointwise) { /* col2im is the identity: write w^T dy_b straight into dx */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)O, 1.0f, w, (int)K, dyn,
                    (int)P, 0.0f, dxn, (int)P);
        continue;
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)O, 1.0f, w, (int)K, dyn,
                  (int)P, 0.0f, col, (int)P);
      col2im_add(col, C, H, W, k, stride, pad, Ho, Wo, dxn);
    }
  }
}
