/* The block shares of CMA-ES's update (see tell_dist.h): what any rank that holds a block's sampled rows
 * computes from the plan alone, without the optimizer, and the one addition of the tree that combines them.
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opt/tell_dist.h"

size_t ng__tell_plan_len(size_t lambda) {
  return NG_PLAN_HEAD + 2 * lambda;
}

size_t ng__tell_width(size_t n) {
  return 2 * n + n * (n + 1) / 2;
}

size_t ng__tell_scratch_len(size_t n) {
  return n * n + NG_TELL_BLOCK * n + NG_TELL_BLOCK;
}

size_t ng__tell_blocks(size_t lambda) {
  return (lambda + NG_TELL_BLOCK - 1) / NG_TELL_BLOCK;
}

/* A candidate of the block and its position in the ranking. */
typedef struct {
  double pos;
  size_t k;
} ranked_row;

static int compare_rows(const void *a, const void *b) {
  const ranked_row *p = a, *q = b;
  return (p->pos > q->pos) - (p->pos < q->pos);
}

void ng__tell_share(const double *plan, size_t b, const double *Z, const double *Y, double *v,
                    double *scratch) {
  size_t lambda = (size_t)plan[NG_PLAN_LAMBDA], n = (size_t)plan[NG_PLAN_N], mu = (size_t)plan[NG_PLAN_MU];
  double cmu = plan[NG_PLAN_CMU], N = (double)n;
  const double *w = plan + NG_PLAN_HEAD, *pos = w + lambda;
  size_t first = b * NG_TELL_BLOCK, count = lambda - first < NG_TELL_BLOCK ? lambda - first : NG_TELL_BLOCK;
  double *S = scratch, *A = scratch + n * n;
  ranked_row rows[NG_TELL_BLOCK];
  for (size_t j = 0; j < count; j++)
    rows[j] = (ranked_row){pos[first + j], j};
  qsort(rows, count, sizeof *rows, compare_rows);

  double *ymean = v, *zmean = v + n, *packed = v + 2 * n;
  memset(v, 0, 2 * n * sizeof *v);
  size_t npos = 0;
  for (size_t j = 0; j < count && (size_t)rows[j].pos < mu; j++, npos++) {
    double wi = w[first + rows[j].k];
    const double *y = Y + rows[j].k * n, *z = Z + rows[j].k * n;
    for (size_t i = 0; i < n; i++) {
      ymean[i] += wi * y[i];
      zmean[i] += wi * z[i];
    }
  }
  size_t npacked = n * (n + 1) / 2;
  if (b == 0) { /* rank 0 folds block 0's rows into C itself; alone, its share is the means only */
    if (ng__tell_blocks(lambda) > 1) memset(packed, 0, npacked * sizeof *packed);
    return;
  }

  /* positive rows sqrt(cmu w_i) y, then negative rows scaled by n / |z|^2, as the one-block update does */
  for (size_t j = 0; j < npos; j++) {
    double s = sqrt(cmu * w[first + rows[j].k]);
    const double *y = Y + rows[j].k * n;
    for (size_t i = 0; i < n; i++)
      A[j * n + i] = s * y[i];
  }
  bool filled = false;
  if (npos) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)npos, 1.0, A, (int)n, 0.0, S, (int)n);
    filled = true;
  }
  size_t nneg = 0;
  for (size_t j = npos; j < count; j++) {
    double wi = w[first + rows[j].k];
    if (isnan(wi)) continue; /* a failed evaluation says nothing about a direction */
    const double *z = Z + rows[j].k * n, *y = Y + rows[j].k * n;
    double z2 = 0;
    for (size_t i = 0; i < n; i++)
      z2 += z[i] * z[i];
    double norm = sqrt(z2) + 1e-9, s = sqrt(-cmu * wi * N / (norm * norm));
    for (size_t i = 0; i < n; i++)
      A[nneg * n + i] = s * y[i];
    nneg++;
  }
  if (nneg) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)nneg, -1.0, A, (int)n, filled ? 1.0 : 0.0,
                S, (int)n);
    filled = true;
  }
  if (!filled) {
    memset(packed, 0, npacked * sizeof *packed);
    return;
  }
  for (size_t r = 0, q = 0; r < n; q += n - r, r++)
    memcpy(packed + q, S + r * n + r, (n - r) * sizeof *packed);
}

void ng__tell_add(size_t width, double *acc, const double *v) {
  for (size_t i = 0; i < width; i++)
    acc[i] += v[i];
}
