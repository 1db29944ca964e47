/* Adam's step (see adam.h), one body for both precisions. */
#include "opt/adam.h"

#include <math.h>

/* T: the working type; SQRT: its square root. The coefficients are rounded to T once, as PyTorch does for a
 * float32 tensor. */
#define NG_ADAM_STEP(T, SQRT)                                                                    \
  double bc1 = 1 - pow(a->beta1, (double)t), bc2 = 1 - pow(a->beta2, (double)t);                \
  T wd = (T)a->weight_decay, b1 = (T)a->beta1, b2 = (T)a->beta2, eps = (T)a->eps;                \
  T step_size = (T)(a->lr / bc1), sbc2 = (T)sqrt(bc2);                                           \
  for (size_t i = 0; i < n; i++) {                                                               \
    T gi = g[i] + wd * p[i];                                                                     \
    m[i] = b1 * m[i] + (1 - b1) * gi;                                                            \
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;                                                       \
    p[i] -= step_size * m[i] / (SQRT(v[i]) / sbc2 + eps);                                        \
  }

void ng__adam_step_f32(const ng__adam *a, uint64_t t, size_t n, float *p, const float *g, float *m, float *v) {
  NG_ADAM_STEP(float, sqrtf)
}

void ng__adam_step_f64(const ng__adam *a, uint64_t t, size_t n, double *p, const double *g, double *m,
                       double *v) {
  NG_ADAM_STEP(double, sqrt)
}
