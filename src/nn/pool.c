/* Max and average pooling over square windows without padding, each channel plane on its own.
 *
 * Max pooling remembers where each maximum came from (an index into the example's channel plane, ih W + iw)
 * so that the backward pass routes the gradient without the input; ties go to the first maximum in
 * row-then-column order, so the choice, and with it the gradient, depends on nothing but the data. A NaN in a
 * window wins only if it comes first (comparisons with NaN are false). Average pooling divides the window sum
 * by k k, and its backward pass spreads dy / (k k) over the window, adding where windows overlap (stride <
 * k). */
#include <string.h>

#include "nn/kernels.h"

/* The common 2x2 window with stride 2, unrolled into selects that the compiler turns into vector blends: on
 * real data the winner is random, and a branch would mispredict half the time. The comparisons run in the
 * general loop's order, so ties and NaNs come out the same. */
static void max2x2(const float *xp, size_t W, size_t Ho, size_t Wo, float *yp, int32_t *ap) {
  int32_t w = (int32_t)W;
  for (size_t oh = 0; oh < Ho; oh++) {
    const float *r0 = xp + 2 * oh * W, *r1 = r0 + W;
    float *yr = yp + oh * Wo;
    int32_t *ar = ap ? ap + oh * Wo : NULL, base = (int32_t)(2 * oh * W);
    for (size_t ow = 0; ow < Wo; ow++) {
      float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
      int32_t gb = b > a, mb = -gb;
      float m = gb ? b : a;
      int32_t off = mb & 1;
      int32_t gc = c > m, mc = -gc;
      m = gc ? c : m;
      off = (mc & w) | (~mc & off);
      int32_t gd = d > m, md = -gd;
      m = gd ? d : m;
      off = (md & (w + 1)) | (~md & off);
      yr[ow] = m;
      if (ar) ar[ow] = base + 2 * (int32_t)ow + off;
    }
  }
}

void ng_pool_forward(ng_pool_kind kind, const float *x, size_t B, size_t C, size_t H, size_t W, size_t k,
                     size_t stride, float *y, int32_t *argmax) {
  size_t Ho = ng_conv_out(H, k, stride, 0), Wo = ng_conv_out(W, k, stride, 0);
  float area = (float)(k * k);
  for (size_t pl = 0; pl < B * C; pl++) {
    const float *xp = x + pl * H * W;
    float *yp = y + pl * Ho * Wo;
    int32_t *ap = argmax ? argmax + pl * Ho * Wo : NULL;
    if (kind == NG_POOL_MAX && k == 2 && stride == 2) {
      max2x2(xp, W, Ho, Wo, yp, ap);
      continue;
    }
    for (size_t oh = 0; oh < Ho; oh++) {
      for (size_t ow = 0; ow < Wo; ow++) {
        size_t first = oh * stride * W + ow * stride;
        const float *win = xp + first;
        if (kind == NG_POOL_MAX) {
          float m = win[0];
          size_t at = first;
          for (size_t i = 0; i < k; i++) {
            for (size_t j = 0; j < k; j++) {
              if (win[i * W + j] > m) {
                m = win[i * W + j];
                at = first + i * W + j;
              }
            }
          }
          yp[oh * Wo + ow] = m;
          if (ap) ap[oh * Wo + ow] = (int32_t)at;
        } else {
          float s = 0.0f;
          for (size_t i = 0; i < k; i++) {
            for (size_t j = 0; j < k; j++)
              s += win[i * W + j];
          }
          yp[oh * Wo + ow] = s / area;
        }
      }
    }
  }
}

/* For NG_POOL_MAX, argmax must be the one the forward pass filled (it is the only record of the input). */
void ng_pool_backward(ng_pool_kind kind, const float *dy, size_t B, size_t C, size_t H, size_t W, size_t k,
                      size_t stride, const int32_t *argmax, float *dx) {
  size_t Ho = ng_conv_out(H, k, stride, 0), Wo = ng_conv_out(W, k, stride, 0);
  float area = (float)(k * k);
  memset(dx, 0, B * C * H * W * sizeof *dx);
  for (size_t pl = 0; pl < B * C; pl++) {
    const float *dyp = dy + pl * Ho * Wo;
    float *dxp = dx + pl * H * W;
    if (kind == NG_POOL_MAX) {
      const int32_t *ap = argmax + pl * Ho * Wo;
      for (size_t o = 0; o < Ho * Wo; o++)
        dxp[ap[o]] += dyp[o];
      continue;
    }
    for (size_t oh = 0; oh < Ho; oh++) {
      for (size_t ow = 0; ow < Wo; ow++) {
        float g = dyp[oh * Wo + ow] / area;
        float *win = dxp + oh * stride * W + ow * stride;
        for (size_t i = 0; i < k; i++) {
          for (size_t j = 0; j < k; j++)
            win[i * W + j] += g;
        }
      }
    }
  }
}
