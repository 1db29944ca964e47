/* Winograd's F(2x2, 3x3) for Conv (winograd.c): the transforms and the 16 products. th x tw tiles of 2x2
 * output pixels per example, T = B th tw tiles in all. */
#ifndef NOGRAD_NN_OPS_WINOGRAD_H
#define NOGRAD_NN_OPS_WINOGRAD_H

#include <stdint.h>

/* The distance between two of the 16 planes of U, V or M holding n floats each: n rounded up to a multiple of
 * 16 (64-byte lines), plus 16 when that is a multiple of 1024, so that the 16 planes written side by side do
 * not fall into the same cache sets (the planes of resnet's layers are powers of two). */
static inline int64_t ng__wino_stride(int64_t n) {
  n = (n + 15) / 16 * 16;
  return n % 1024 == 0 ? n + 16 : n;
}

/* U[16][O][C] from the weights w[O][C][3][3]. */
void ng__wino_weights(const float *w, int64_t O, int64_t C, float *U);
/* V[16][C][T] from the input x[B][C][H][W] with pads pt (top) and pl (left); pad: (2 th + 2)(2 tw + 2)
 * floats of scratch. */
void ng__wino_input(const float *x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl,
                    int64_t th, int64_t tw, float *V, float *pad);
/* M[16][O][T] = U[xi] V[xi]. */
void ng__wino_multiply(const float *U, const float *V, int64_t O, int64_t C, int64_t T, float *M);
/* y[B][O][Ho][Wo] from M. */
void ng__wino_output(const float *M, int64_t B, int64_t O, int64_t Ho, int64_t Wo, int64_t th, int64_t tw,
                     float *y);

#endif
