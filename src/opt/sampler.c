/* Candidate generation shared by the optimizers and by every rank in the seeded broadcast.
 *
 * Rank 0's ask and a worker's ng_sampler_generate call the same functions on the same inputs: the same
 * Philox streams, the same dgemm shape per block of NG_SAMPLER_BLOCK candidates (one BLAS thread), the
 * same arithmetic for the bound transform. So a regenerated candidate has the same bits as the asked one,
 * and the losses do not depend on which rank computed them. */
#include <cblas.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/rng.h"
#include "opt/sampler_impl.h"

void ng_sampler_gauss_draws(const ng_sampler *s, size_t k0, size_t b, double *Z) {
  for (size_t k = 0; k < b; k++) {
    ng_rng r;
    ng_rng_init(&r, s->seed, NG_RNG_SAMPLE, (uint32_t)s->generation, (uint32_t)(k0 + k));
    ng_rng_normal_fill(&r, Z + k * s->n, s->n);
  }
}

void ng_sampler_gauss_cols(size_t n, size_t b, const double *Z, const double *F_c, size_t nc, double *out) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)nc, (int)n, 1.0, Z, (int)n, F_c, (int)n,
              0.0, out, (int)nc);
}

void ng_sampler_gauss_block(const ng_sampler *s, size_t k0, size_t b, double *Z, double *Y) {
  size_t n = s->n;
  ng_sampler_gauss_draws(s, k0, b, Z);
  if (s->kind == NG_SAMPLER_GAUSS_DIAG) {
    for (size_t k = 0; k < b; k++)
      for (size_t i = 0; i < n; i++)
        Y[k * n + i] = s->factor[i] * Z[k * n + i];
  } else if (ng_sampler_by_cols(n)) { /* the products a rank keeping only some rows of the factor makes */
    double out[NG_SAMPLER_BLOCK * NG_SAMPLER_COLS];
    for (size_t c0 = 0; c0 < n; c0 += NG_SAMPLER_COLS) {
      size_t nc = n - c0 < NG_SAMPLER_COLS ? n - c0 : NG_SAMPLER_COLS;
      ng_sampler_gauss_cols(n, b, Z, s->factor + c0 * n, nc, out);
      for (size_t k = 0; k < b; k++)
        memcpy(Y + k * n + c0, out + k * nc, nc * sizeof *Y);
    }
  } else {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)b, (int)n, (int)n, 1.0, Z, (int)n, s->factor,
                (int)n, 0.0, Y, (int)n);
  }
}

/* pycma's linear-quadratic box transform of one coordinate: the identity well inside [lo, hi], quadratic
 * within a margin of the bounds, mirrored and periodic outside. */
static double bound_transform(double y, double lo, double hi) {
  bool has_lo = isfinite(lo), has_hi = isfinite(hi);
  double al = has_lo ? (1.0 + fabs(lo)) / 20.0 : 1.0, au = has_hi ? (1.0 + fabs(hi)) / 20.0 : 1.0;
  if (has_lo && has_hi) {
    al = fmin(al, (hi - lo) / 2.0);
    au = fmin(au, (hi - lo) / 2.0);
    double start = lo - al, period = 2.0 * (hi - lo + al + au);
    y = start + fmod(y - start, period);
    if (y < start) y += period;
    if (y > hi + au) y = 2.0 * (hi + au) - y;
  } else if (has_lo) {
    if (y < lo - al) y = 2.0 * (lo - al) - y;
  } else if (has_hi) {
    if (y > hi + au) y = 2.0 * (hi + au) - y;
  }
  if (has_lo && y < lo + al) return lo + (y - (lo - al)) * (y - (lo - al)) / (4.0 * al);
  if (has_hi && y > hi - au) return hi - (y - (hi + au)) * (y - (hi + au)) / (4.0 * au);
  return y;
}

void ng_sampler_gauss_finish(const ng_sampler *s, const double *Y, size_t count, double *x) {
  size_t n = s->n;
  for (size_t k = 0; k < count; k++) {
    const double *y = Y + k * n;
    double *xk = x + k * n;
    for (size_t i = 0; i < n; i++)
      xk[i] = s->mean[i] + s->sigma * y[i];
    if (s->lo)
      for (size_t i = 0; i < n; i++)
        xk[i] = bound_transform(xk[i], s->lo[i], s->hi[i]);
  }
}

void ng_sampler_clamp(const ng_sampler *s, double *x) {
  if (!s->lo) return;
  for (size_t i = 0; i < s->n; i++) {
    if (x[i] < s->lo[i]) x[i] = s->lo[i];
    if (x[i] > s->hi[i]) x[i] = s->hi[i];
  }
}

/* SPSA centred directions: each class {c, S + c, ..., (m - 1) S + c} of delta (m = n / S values) is replaced
 * by H z, H the m x (m - 1) Helmert basis of the zero-sum subspace (column j = 1..m-1: 1/sqrt(j (j + 1)) in
 * rows 0..j-1, -j/sqrt(j (j + 1)) in row j) and z the class's first m - 1 draws. The direction is never
 * zero, and E[H z z^T H^T] = H H^T, the centring projection. In place, from the last row down:
 *   (H z)_k = sum_{j > k} z_{j-1} / sqrt(j (j + 1)) - [k >= 1] k z_{k-1} / sqrt(k (k + 1)). */
static void helmert(double *delta, size_t n, size_t S) {
  size_t m = n / S;
  for (size_t c = 0; c < S; c++) {
    double *d = delta + c, tail = 0.0;
    for (size_t k = m; k-- > 0;) {
      if (k + 1 < m) tail += d[k * S] / sqrt((double)(k + 1) * (double)(k + 2));
      double v = tail;
      if (k >= 1) v -= (double)k * d[(k - 1) * S] / sqrt((double)k * (double)(k + 1));
      d[k * S] = v;
    }
  }
}

void ng_sampler_spsa_pair(const ng_sampler *s, size_t j, double *delta, double *xp, double *xm) {
  size_t n = s->n;
  ng_rng r;
  ng_rng_init(&r, s->seed, NG_RNG_SPSA, (uint32_t)s->generation, (uint32_t)j);
  if (s->gaussian)
    ng_rng_normal_fill(&r, delta, n);
  else
    ng_rng_rademacher_fill(&r, delta, n);
  if (s->center) helmert(delta, n, s->center);
  for (size_t i = 0; i < n; i++) {
    xp[i] = s->mean[i] + s->sigma * delta[i];
    xm[i] = s->mean[i] - s->sigma * delta[i];
  }
  ng_sampler_clamp(s, xp);
  ng_sampler_clamp(s, xm);
}

int ng_sampler_generate(const ng_sampler *s, size_t first, size_t count, double *x) {
  size_t n = s->n;
  if (first + count > s->lambda || first + count < first)
    return ng_error(NG_EINVAL, "sampler: candidates [%zu, %zu) past the population of %zu", first,
                    first + count, s->lambda);
  if (!count) return NG_OK;
  if (s->kind == NG_SAMPLER_SPSA) {
    double *buf = malloc(3 * n * sizeof *buf);
    if (!buf) return ng_error(NG_ENOMEM, "sampler: out of memory");
    for (size_t k = first; k < first + count; k++) {
      ng_sampler_spsa_pair(s, k / 2, buf, buf + n, buf + 2 * n);
      memcpy(x + (k - first) * n, buf + (k % 2 ? 2 : 1) * n, n * sizeof *x);
    }
    free(buf);
    return NG_OK;
  }
  if (s->kind != NG_SAMPLER_GAUSS_FULL && s->kind != NG_SAMPLER_GAUSS_DIAG)
    return ng_error(NG_EINVAL,
                    "sampler: this optimizer's candidates cannot be regenerated; send them explicitly");
  size_t B = NG_SAMPLER_BLOCK;
  double *Z = malloc(2 * B * n * sizeof *Z);
  if (!Z) return ng_error(NG_ENOMEM, "sampler: out of memory for a block of %zu x %zu", B, n);
  double *Y = Z + B * n;
  for (size_t k0 = first / B * B; k0 < first + count; k0 += B) {
    size_t b = s->lambda - k0 < B ? s->lambda - k0 : B;
    ng_sampler_gauss_block(s, k0, b, Z, Y);
    size_t lo = first > k0 ? first - k0 : 0, hi = first + count < k0 + b ? first + count - k0 : b;
    ng_sampler_gauss_finish(s, Y + lo * n, hi - lo, x + (k0 + lo - first) * n);
  }
  free(Z);
  return NG_OK;
}
