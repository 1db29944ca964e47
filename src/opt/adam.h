/* Private: Adam's update (Kingma and Ba, in PyTorch's form), written once for the two precisions that use it:
 * float32 for a model's parameters (`nograd train`), float64 for glue's mixture log-weights (fullgrad).
 *
 * Step t (1-based) with g' = g + weight_decay * p (L2, added to the gradient as torch.optim.Adam does):
 *   m = beta1 m + (1 - beta1) g',  v = beta2 v + (1 - beta2) g'^2,
 *   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * The bias corrections are computed in double and rounded once to the working precision. */
#ifndef NOGRAD_OPT_ADAM_H
#define NOGRAD_OPT_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  double lr, beta1, beta2, eps, weight_decay;
} ng__adam;

/* One step t >= 1 on n values: p, m and v are updated in place, g is read. No allocation. */
void ng__adam_step_f32(const ng__adam *a, uint64_t t, size_t n, float *p, const float *g, float *m, float *v);
void ng__adam_step_f64(const ng__adam *a, uint64_t t, size_t n, double *p, const double *g, double *m,
                       double *v);

#endif
