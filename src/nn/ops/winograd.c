/* Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural
 * Networks", 2016) for Conv's 3x3, stride-1, undilated, ungrouped case (conv.c decides when).
 *
 * Each 2x2 block of output pixels ("tile") of channel o is A^T [ sum_c (G g_oc G^T) . (B^T d_c B) ] A, where
 * d_c is the 4x4 input patch under the tile and g_oc the 3x3 kernel: 16 multiplications per tile and channel
 * pair instead of 36. The sum over c is, for each of the 16 positions xi of the 4x4 transformed tile, one
 * product of an O x C matrix (the transformed weights) by a C x T matrix (the transformed patches of all T
 * tiles of the batch), so the arithmetic is 16 sgemm calls of 4/9 of im2col's one. The order of every sum is
 * fixed by the shapes: an example's bits depend on the batch size only, as in conv.c.
 *
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * The weights are parameters (glue and retrofit change them between passes), so they are transformed on
 * every pass; that costs 16 O C writes against the 16 sgemm calls' 32 O C T flops. */
#include <cblas.h>
#include <string.h>

#include "nn/ops/winograd.h"

/* U[xi][o][c] = (G g G^T)[xi] for w[o][c][3][3]. */
void ng__wino_weights(const float *w, int64_t O, int64_t C, float *U) {
  int64_t OC = O * C, S = ng__wino_stride(OC);
  for (int64_t p = 0; p < OC; p++) {
    const float *g = w + p * 9;
    float t[4][3]; /* G g */
    for (int j = 0; j < 3; j++) {
      float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
      t[0][j] = g0;
      t[1][j] = 0.5f * (g0 + g1 + g2);
      t[2][j] = 0.5f * (g0 - g1 + g2);
      t[3][j] = g2;
    }
    for (int i = 0; i < 4; i++) { /* (G g) G^T */
      float r0 = t[i][0], r1 = t[i][1], r2 = t[i][2];
      U[(i * 4 + 0) * S + p] = r0;
      U[(i * 4 + 1) * S + p] = 0.5f * (r0 + r1 + r2);
      U[(i * 4 + 2) * S + p] = 0.5f * (r0 - r1 + r2);
      U[(i * 4 + 3) * S + p] = r2;
    }
  }
}

/* V[xi][c][t] = (B^T d B)[xi] for every channel c and tile t = b * th * tw + i * tw + j of the batch, d the
 * 4x4 patch of rows 2i - pt.. and columns 2j - pl.. (zeros outside the input). pad holds (2 th + 2) x
 * (2 tw + 2) floats: one plane, zero-padded, so that no tile needs a bounds check. */
void ng__wino_input(const float *x, int64_t B, int64_t C, int64_t H, int64_t W, int64_t pt, int64_t pl,
                    int64_t th, int64_t tw, float *V, float *pad) {
  int64_t Hp = 2 * th + 2, Wp = 2 * tw + 2, T = B * th * tw, CT = ng__wino_stride(C * T);
  /* the rows and columns of the input that land in the padded plane */
  int64_t r0 = pt > 0 ? 0 : -pt, c0 = pl > 0 ? 0 : -pl;
  int64_t r1 = H < Hp - pt ? H : Hp - pt, c1 = W < Wp - pl ? W : Wp - pl;
  memset(pad, 0, (size_t)(Hp * Wp) * sizeof *pad);
  for (int64_t c = 0; c < C; c++)
    for (int64_t b = 0; b < B; b++) {
      const float *plane = x + (b * C + c) * H * W;
      for (int64_t r = r0; r < r1; r++)
        memcpy(pad + (r + pt) * Wp + c0 + pl, plane + r * W + c0, (size_t)(c1 - c0) * sizeof *pad);
      float *v = V + c * T + b * th * tw;
      for (int64_t i = 0; i < th; i++)
        for (int64_t j = 0; j < tw; j++) {
          const float *d = pad + 2 * i * Wp + 2 * j;
          float t[4][4]; /* B^T d */
          for (int k = 0; k < 4; k++) {
            float d0 = d[k], d1 = d[Wp + k], d2 = d[2 * Wp + k], d3 = d[3 * Wp + k];
            t[0][k] = d0 - d2;
            t[1][k] = d1 + d2;
            t[2][k] = d2 - d1;
            t[3][k] = d1 - d3;
          }
          float *o = v + i * tw + j;
          for (int k = 0; k < 4; k++) { /* (B^T d) B */
            o[(k * 4 + 0) * CT] = t[k][0] - t[k][2];
            o[(k * 4 + 1) * CT] = t[k][1] + t[k][2];
            o[(k * 4 + 2) * CT] = t[k][2] - t[k][1];
            o[(k * 4 + 3) * CT] = t[k][1] - t[k][3];
          }
        }
      /* the plane's rows are rewritten by the next copy; its zero border stays */
    }
}

/* M[xi] = U[xi] V[xi]: O x T, for the 16 positions. */
void ng__wino_multiply(const float *U, const float *V, int64_t O, int64_t C, int64_t T, float *M) {
  int64_t su = ng__wino_stride(O * C), sv = ng__wino_stride(C * T), sm = ng__wino_stride(O * T);
  for (int xi = 0; xi < 16; xi++)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)T, (int)C, 1.0f, U + xi * su, (int)C,
                V + xi * sv, (int)T, 0.0f, M + xi * sm, (int)T);
}

/* y[b][o] (Ho x Wo, NCHW) = A^T M A over the tiles, the pixels past Ho or Wo of the last tiles dropped. */
void ng__wino_output(const float *M, int64_t B, int64_t O, int64_t Ho, int64_t Wo, int64_t th, int64_t tw,
                     float *y) {
  int64_t T = B * th * tw, OT = ng__wino_stride(O * T);
  for (int64_t o = 0; o < O; o++)
    for (int64_t b = 0; b < B; b++) {
      const float *m = M + o * T + b * th * tw;
      float *out = y + (b * O + o) * Ho * Wo;
      for (int64_t i = 0; i < th; i++)
        for (int64_t j = 0; j < tw; j++) {
          const float *q = m + i * tw + j;
          float t[2][4]; /* A^T m */
          for (int k = 0; k < 4; k++) {
            float m0 = q[k * OT], m1 = q[(4 + k) * OT], m2 = q[(8 + k) * OT], m3 = q[(12 + k) * OT];
            t[0][k] = m0 + m1 + m2;
            t[1][k] = m1 - m2 - m3;
          }
          for (int r = 0; r < 2; r++) { /* (A^T m) A */
            int64_t oh = 2 * i + r;
            if (oh >= Ho) break;
            float *row = out + oh * Wo + 2 * j;
            row[0] = t[r][0] + t[r][1] + t[r][2];
            if (2 * j + 1 < Wo) row[1] = t[r][1] - t[r][2] - t[r][3];
          }
        }
    }
}
