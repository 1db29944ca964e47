/* CMA-ES: the covariance matrix adaptation evolution strategy, full and separable.
 *
 * Follows Hansen, "The CMA Evolution Strategy: A Tutorial" (2016), with the default parameters and update
 * order of his reference implementation pycma 4.x: weighted recombination with negative weights (active
 * CMA-ES), cumulative step-size adaptation, rank-one and rank-mu updates of C, and a lazy
 * eigendecomposition every 1/(c1+cmu)/n/10 iterations. The separable variant (Ros and Hansen 2008) keeps a
 * diagonal C with pycma's c1_sep, cmu_sep and cc_sep, which is O(n) per candidate and suits large n.
 *
 * Candidate k of generation g is x_k = m + sigma * BD z_k with z_k drawn from the stream
 * (seed, NG_RNG_SAMPLE, g, k): any rank that knows (m, sigma, BD) regenerates it (sampler.c). The population
 * is sampled in fixed blocks of NG_SAMPLER_BLOCK candidates, one matrix product each, so that a rank redoing
 * a block gets the same bits. Box bounds use pycma's linear-quadratic transform: the caller evaluates the
 * repaired point, the update uses the unrepaired one. */
#include <lapacke.h>
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/async.h"
#include "core/checked.h"
#include "nograd/timer.h"
#include "opt/cmaes_impl.h"
#include "opt/sampler_impl.h"
#include "opt/tell_dist.h"

static void es_free(cmaes *es) {
  if (!es) return;
  (void)ng_async_wait(&es->job); /* a decomposition in flight is of no use any more */
  double *arrays[] = {es->weights,  es->mean,       es->pc,    es->ps,    es->C,    es->B,     es->D,
                      es->BD,       es->Z,          es->Y,     es->X,     es->work, es->work2, es->hist,
                      es->histbest, es->histmedian, es->Csnap, es->eig_B, es->eig_D};
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
    free(arrays[i]);
  free(es->order);
  free(es->A);
  free(es->fsorted);
  free(es->ranked);
  free(es->plan);
  free(es->shares);
  free(es->share_scratch);
  free(es);
}

/* Recombination weights and learning rates, pycma 4.x defaults (evolution_strategy.py,
 * recombination_weights.py). `diagonal` selects the sep-CMA-ES rates. */
static void set_parameters(cmaes *es) {
  size_t n = es->n, lambda = es->lambda;
  double N = (double)n, lam = (double)lambda;
  double *w = es->weights;
  for (size_t i = 0; i < lambda; i++)
    w[i] = log((lam + 1.0) / 2.0) - log((double)(i + 1));
  size_t mu = 0;
  double spos = 0, sneg = 0, spos2 = 0, sneg2 = 0;
  for (size_t i = 0; i < lambda; i++) {
    if (w[i] > 0) {
      mu++;
      spos += w[i];
    } else {
      sneg -= w[i];
    }
  }
  for (size_t i = 0; i < lambda; i++) {
    if (w[i] > 0) {
      w[i] /= spos;
      spos2 += w[i] * w[i];
    } else if (sneg > 0) {
      w[i] /= sneg; /* negative weights first sum to -1 */
      sneg2 += w[i] * w[i];
    }
  }
  es->mu = mu;
  es->mueff = 1.0 / spos2;
  double mueff = es->mueff, mueffminus = sneg2 > 0 ? 1.0 / sneg2 : 0;

  if (!es->diagonal) {
    es->cc = (4.0 + mueff / N) / (N + 4.0 + 2.0 * mueff / N);
    es->c1 = fmin(1.0, lam / 6.0) * 2.0 / ((N + 1.3) * (N + 1.3) + mueff);
    es->cmu = fmin(1.0 - es->c1, 2.0 * (0.25 + mueff + 1.0 / mueff - 2.0) / ((N + 2.0) * (N + 2.0) + mueff));
  } else {
    es->cc = (1.0 + 1.0 / N + mueff / N) / (sqrt(N) + 1.0 / N + 2.0 * mueff / N);
    es->c1 = 1.0 / (N + 2.0 * sqrt(N) + mueff / N);
    es->cmu = fmin(1.0 - es->c1, (0.25 + mueff + 1.0 / mueff - 2.0) / (N + 4.0 * sqrt(N) + mueff / 2.0));
  }
  es->cs = (mueff + 2.0) / (N + mueff + 3.0);
  es->damps = 1.0 + 2.0 * fmax(0.0, sqrt((mueff - 1.0) / (N + 1.0)) - 1.0) + es->cs;
  es->chin = sqrt(N) * (1.0 - 1.0 / (4.0 * N) + 1.0 / (21.0 * N * N));

  /* Negative weights: their sum of magnitudes is 1 + c1/cmu, limited so that C stays positive definite
   * and by 1 + 2 mueff^- / (mueff + 2). sep-CMA-ES (Ros and Hansen 2008) has no active update: a diagonal C
   * has no positive-definiteness guarantee against negative updates, and lets its variances collapse. */
  if (es->diagonal) {
    for (size_t i = mu; i < lambda; i++)
      w[i] = 0.0;
  } else if (mu < lambda) {
    double target = 1.0 + es->c1 / es->cmu;
    target = fmin(target, (1.0 - es->c1 - es->cmu) / es->cmu / N);
    target = fmin(target, 1.0 + 2.0 * mueffminus / (mueff + 2.0));
    for (size_t i = mu; i < lambda; i++)
      w[i] *= target; /* they summed to -1 */
  }
}

double ng__cmaes_popf(size_t n) {
  return 4.0 + 3.0 * log((double)n);
}

#define CMAES_COUNT_MAX 1e18 /* maxiter, tolstagnation: generations, far beyond any run, exact as int64 */

/* An integer parameter (a count of generations) in [lo, CMAES_COUNT_MAX] or [lo, 2^31-1] for
 * tolflatfitness: a value out of range or not whole is an error naming it, not a cast that wraps or stops
 * the run at once. A default too large for the range (maxiter in a huge dimension) is clamped to it. */
static int count_param(ng_opt *opt, const char *name, double fallback, int64_t lo, int64_t *out) {
  double hi = strcmp(name, "tolflatfitness") ? CMAES_COUNT_MAX : (double)INT32_MAX;
  double v = ng_opt_param(opt, name, NAN);
  char what[64];
  snprintf(what, sizeof what, "cmaes: parameter %s", name);
  return ng__checked_i64(what, isnan(v) ? fmin(fallback, hi) : v, lo, (int64_t)hi, out);
}

static int setup(ng_opt *opt, bool diagonal) {
  size_t n = opt->n;
  cmaes *es = calloc(1, sizeof *es);
  if (!es) return ng_error(NG_ENOMEM, "cmaes: out of memory");
  es->diagonal = diagonal;
  es->n = n;
  double default_popf = ng__cmaes_popf(n);
  if (!opt->run_popsize) opt->run_popsize = (size_t)floor(default_popf); /* = 4 + floor(3 ln n) for every n */
  if (opt->run_popsize < 2) {
    es_free(es);
    return ng_error(NG_EINVAL, "cmaes: popsize must be at least 2, got %zu", opt->run_popsize);
  }
  es->lambda = opt->run_popsize;
  size_t bytes;
  if (es->lambda > (size_t)INT32_MAX || !ng__mul3(es->lambda + 1, n, sizeof(double), &bytes)) {
    es_free(es);
    return ng_error(NG_EINVAL, "cmaes: a population of %zu in dimension %zu is more than can be sampled",
                    opt->run_popsize, n);
  }
  /* pycma keeps the first run's real-valued default popsize for maxiter and tolstagnation. */
  es->popf = opt->popsize_req ? (double)opt->popsize_req : default_popf;

  size_t nn = diagonal ? n : n * n, ln = es->lambda * n;
  es->weights = malloc(es->lambda * sizeof(double));
  es->mean = malloc(n * sizeof(double));
  es->pc = calloc(n, sizeof(double));
  es->ps = calloc(n, sizeof(double));
  es->C = calloc(nn, sizeof(double));
  es->B = diagonal ? NULL : calloc(nn, sizeof(double));
  es->BD = diagonal ? NULL : calloc(nn, sizeof(double));
  es->D = malloc(n * sizeof(double));
  es->Z = malloc(ln * sizeof(double));
  es->Y = malloc(ln * sizeof(double));
  es->X = malloc(n * sizeof(double));
  es->order = malloc(es->lambda * sizeof(size_t));
  es->work = malloc(n * sizeof(double));
  es->work2 = malloc(n * sizeof(double));
  es->A = malloc((es->lambda + 1) * n * sizeof(double));
  es->fsorted = malloc(es->lambda * sizeof(double));
  es->ranked = malloc(2 * es->lambda * sizeof(ng_ranked)); /* and sort_ranked's scratch */
  es->plan = malloc(ng__tell_plan_len(es->lambda) * sizeof(double));
  size_t nblocks = ng__tell_blocks(es->lambda);
  if (!diagonal) {
    es->shares = malloc((nblocks > 1 ? nblocks * ng__tell_width(n) : 2 * n) * sizeof(double));
    if (nblocks > 1) es->share_scratch = malloc(ng__tell_scratch_len(n) * sizeof(double));
  }
  if (!es->plan || (!diagonal && (!es->shares || (nblocks > 1 && !es->share_scratch))) || !es->A ||
      !es->fsorted || !es->ranked || !es->weights || !es->mean || !es->pc || !es->ps || !es->C ||
      (!diagonal && (!es->B || !es->BD)) || !es->D || !es->Z || !es->Y || !es->X || !es->order || !es->work ||
      !es->work2) {
    es_free(es);
    return ng_error(NG_ENOMEM, "cmaes: out of memory for n = %zu, lambda = %zu", n, opt->run_popsize);
  }
  set_parameters(es);
  es->sigma = opt->run_sigma0;
  memcpy(es->mean, opt->x0, n * sizeof(double));
  for (size_t i = 0; i < n; i++) {
    es->D[i] = 1.0;
    if (diagonal) {
      es->C[i] = 1.0;
    } else {
      es->C[i * n + i] = es->B[i * n + i] = es->BD[i * n + i] = 1.0;
    }
  }
  /* Lazy eigendecomposition: pycma's gap of 1/(c1+cmu)/n/10 iterations, but never less than ratio * n/lambda.
   * A decomposition costs as much arithmetic as about 1.6 n/lambda generations of sampling and update (dsyevd
   * vs dgemm+dsyrk, measured with OpenBLAS), so the second term caps its share of the optimizer's work, as
   * Hansen's c-cmaes caps it at 20% of the CPU time, but by an arithmetic count instead of the clock, so that
   * runs stay reproducible. It matters only for large n/lambda, where C moves by ~(c1+cmu) per iteration. */
  double pycma_gap = 1.0 / (es->c1 + es->cmu + 1e-23) / (double)n / 10.0;
  es->lazy_gap = fmax(pycma_gap, ng_opt_param(opt, "lazy_gap_ratio", 1.0) * (double)n / (double)es->lambda);
  /* From n = 100 on, the decomposition (O(n^3), 150 ms at n = 1000 on one core) runs beside the generation
   * loop and is installed eigen_lag iterations after it was due: 1 + n/300 by default (n = 1000: 4). The
   * factor is then older by that many iterations than pycma's lazy rule alone makes it; C itself moves by
   * about (c1 + cmu) per iteration. Below n = 100 it is pycma's own, in line. */
  es->pending_at = -1;
  int64_t lag_default = !diagonal && n >= 100 ? 1 + (int64_t)n / 300 : 0;
  int lst = count_param(opt, "eigen_lag", (double)lag_default, 0, &es->eigen_lag);
  if (lst != NG_OK) {
    es_free(es);
    return lst;
  }
  if (es->eigen_lag > 0) {
    es->Csnap = malloc(nn * sizeof(double));
    es->eig_B = malloc(nn * sizeof(double));
    es->eig_D = malloc(n * sizeof(double));
    if (!es->Csnap || !es->eig_B || !es->eig_D) {
      es_free(es);
      return ng_error(NG_ENOMEM, "cmaes: out of memory for n = %zu", n);
    }
  }

  /* stopping rules, pycma's defaults */
  double N = (double)n;
  int st =
      count_param(opt, "maxiter", 100.0 + floor(150.0 * (N + 3) * (N + 3) / sqrt(es->popf)), 1, &es->maxiter);
  if (opt->run_maxiter > 0 && opt->run_maxiter < es->maxiter) es->maxiter = opt->run_maxiter;
  if (st == NG_OK)
    st = count_param(opt, "tolstagnation", floor(100.0 + 100.0 * pow(N, 1.5) / es->popf), 1,
                     &es->tolstagnation);
  int64_t flat = 0;
  if (st == NG_OK) st = count_param(opt, "tolflatfitness", 1, 0, &flat);
  if (st != NG_OK) {
    es_free(es);
    return st;
  }
  es->tolfun = ng_opt_param(opt, "tolfun", 1e-11);
  es->tolfunhist = ng_opt_param(opt, "tolfunhist", 1e-12);
  es->tolx = ng_opt_param(opt, "tolx", 1e-11);
  es->tolupsigma = ng_opt_param(opt, "tolupsigma", 1e20);
  es->tolconditioncov = ng_opt_param(opt, "tolconditioncov", 1e14);
  es->tolflatfitness = (int)flat;
  es->hist_cap = (size_t)floor(10.0 + 30.0 * N / (double)es->lambda);
  es->stag_cap = 20000;
  es->hist = malloc(es->hist_cap * sizeof(double));
  es->best_f = INFINITY;
  if (!es->hist) {
    es_free(es);
    return ng_error(NG_ENOMEM, "cmaes: out of memory");
  }
  opt->impl = es;
  return NG_OK;
}

static int setup_full(ng_opt *opt) {
  return setup(opt, false);
}
static int setup_diag(ng_opt *opt) {
  return setup(opt, true);
}

static void destroy(ng_opt *opt) {
  es_free(opt->impl);
  opt->impl = NULL;
}

static void finish_factor(cmaes *es);

/* Decomposes C = B diag(D^2) B^T (LAPACK's divide and conquer on the upper triangle) and forms BD. */
static int eigen_update(cmaes *es) {
  size_t n = es->n;
  double t0 = ng_time_now();
  /* dsyevd overwrites its input with the eigenvectors: work on B. LAPACK is column-major; C's upper triangle
   * in row-major order is its lower triangle in column-major order, and B comes back transposed, so read it
   * as B^T (row-major rows are eigenvectors). */
  memcpy(es->B, es->C, n * n * sizeof(double));
  lapack_int info = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, es->B, (lapack_int)n, es->D);
  if (info != 0)
    return ng_error(NG_ENUMERIC, "cmaes: eigendecomposition of C failed (LAPACK dsyevd info %d)", info);
  /* B now holds, row-major, B^T: row j is eigenvector j. Transpose in place so that column j is axis j. */
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) {
      double t = es->B[i * n + j];
      es->B[i * n + j] = es->B[j * n + i];
      es->B[j * n + i] = t;
    }
  finish_factor(es);
  es->last_update = es->count_tell;
  es->seconds_eigen += ng_time_now() - t0;
  return NG_OK;
}

/* D from the eigenvalues it holds to their square roots, and BD. */
static void finish_factor(cmaes *es) {
  size_t n = es->n;
  double dmax = es->D[n - 1] > 0 ? es->D[n - 1] : 1.0;
  for (size_t j = 0; j < n; j++) {
    double ev = es->D[j];
    if (!(ev > dmax * 1e-300)) ev = dmax * 1e-300; /* rounding can make tiny eigenvalues negative */
    es->D[j] = sqrt(ev);
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      es->BD[i * n + j] = es->B[i * n + j] * es->D[j];
  es->factor_version++;
}

/* The background job: the decomposition of Csnap into eig_B (B^T, as in eigen_update) and eig_D. It touches
 * nothing else, calls no nograd error function (the caller reports eig_info), and returns NG_OK. */
static int eigen_job(void *p) {
  cmaes *es = p;
  size_t n = es->n;
  memcpy(es->eig_B, es->Csnap, n * n * sizeof(double));
  es->eig_info =
      (int)LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', (lapack_int)n, es->eig_B, (lapack_int)n, es->eig_D);
  return NG_OK;
}

/* Starts the decomposition of C as it is now (iteration count_tell) beside the loop. */
static int eigen_start(cmaes *es) {
  memcpy(es->Csnap, es->C, es->n * es->n * sizeof(double));
  es->pending_at = es->count_tell;
  es->pending_scale = 1.0;
  return ng_async_start(&es->job, eigen_job, es);
}

/* Waits for the decomposition in flight and installs it as the factor. */
static int eigen_install(cmaes *es) {
  size_t n = es->n;
  double t0 = ng_time_now();
  NG_CALL(ng_async_wait(&es->job));
  es->seconds_eigen += ng_time_now() - t0; /* what the loop waited for it */
  if (es->eig_info != 0)
    return ng_error(NG_ENUMERIC,
                    "cmaes: eigendecomposition of C (iteration %lld) failed (LAPACK dsyevd info %d)",
                    (long long)es->pending_at, es->eig_info);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      es->B[i * n + j] = es->eig_B[j * n + i];
  for (size_t j = 0; j < n; j++) /* the eigenvalues of pending_scale * Csnap, which is C now */
    es->D[j] = es->eig_D[j] * es->pending_scale;
  finish_factor(es);
  es->last_update = es->pending_at;
  es->pending_at = -1;
  return NG_OK;
}

static void sampler(const ng_opt *opt, ng_sampler *s) {
  const cmaes *es = opt->impl;
  *s = (ng_sampler){.kind = es->diagonal ? NG_SAMPLER_GAUSS_DIAG : NG_SAMPLER_GAUSS_FULL,
                    .n = es->n,
                    .lambda = es->lambda,
                    .seed = opt->seed,
                    .generation = opt->generation,
                    .mean = es->mean,
                    .sigma = es->sigma,
                    .factor = es->diagonal ? es->D : es->BD,
                    .factor_len = es->diagonal ? es->n : es->n * es->n,
                    .factor_version = es->factor_version,
                    .lo = opt->lo,
                    .hi = opt->hi};
}

/* ask without sampling (tell_dist.h): only the lazy eigendecomposition. */
static int ask_lazy(ng_opt *opt) {
  cmaes *es = opt->impl;
  if (es->diagonal) return NG_OK;
  if (es->pending_at >= 0 && es->count_tell >= es->pending_at + es->eigen_lag) NG_CALL(eigen_install(es));
  if (es->pending_at >= 0 || (double)(es->count_tell - es->last_update) < es->lazy_gap ||
      es->count_tell <= es->last_update)
    return NG_OK;
  return es->eigen_lag > 0 ? eigen_start(es) : eigen_update(es);
}

/* Samples the population in blocks through the shared sampler (sampler.c), keeping Z and Y for the update. */
static int ask(ng_opt *opt, double *x) {
  cmaes *es = opt->impl;
  size_t n = es->n, lambda = es->lambda;
  NG_CALL(ask_lazy(opt));
  ng_sampler s;
  sampler(opt, &s);
  for (size_t k0 = 0; k0 < lambda; k0 += NG_SAMPLER_BLOCK) {
    size_t b = lambda - k0 < NG_SAMPLER_BLOCK ? lambda - k0 : NG_SAMPLER_BLOCK;
    ng_sampler_gauss_block(&s, k0, b, es->Z + k0 * n, es->Y + k0 * n);
  }
  ng_sampler_gauss_finish(&s, es->Y, lambda, x);
  return NG_OK;
}

/* sigma and the scale of C are one quantity in two places; when sigma has grown beyond 1e9 sigma0 while C
 * shrank (as sep-CMA-ES does on a ridge), pycma moves half of the excess into C and relaxes tolupsigma by the
 * same factor, so that the rule still detects divergence rather than this drift. sigma^2 C is unchanged. */
static void rebalance_sigma(const ng_opt *opt, cmaes *es) {
  if (!(es->sigma > 1e9 * opt->run_sigma0)) return;
  size_t n = es->n;
  double cmax = 0;
  for (size_t i = 0; i < n; i++)
    cmax = fmax(cmax, es->diagonal ? es->C[i] : es->C[i * n + i]);
  double alpha = es->sigma / sqrt(cmax);
  if (!(alpha > 1.0) || !isfinite(alpha)) return;
  double root = sqrt(alpha);
  es->sigma /= root;
  es->tolupsigma /= root;
  size_t nn = es->diagonal ? n : n * n;
  for (size_t i = 0; i < nn; i++)
    es->C[i] *= alpha;
  if (es->pending_at >= 0) es->pending_scale *= alpha; /* the decomposition in flight is of C before */
  for (size_t i = 0; i < n; i++)
    es->D[i] *= root;
  if (!es->diagonal)
    for (size_t i = 0; i < nn; i++)
      es->BD[i] *= root;
  es->factor_version++;
}

/* The unsigned integer whose order is that of the loss f (not NaN: tell_generic made those +inf); -0 and +0
 * alike, as the comparison of doubles has them. */
static uint64_t sort_key(double f) {
  if (f == 0) f = 0.0;
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  return u >> 63 ? ~u : u | UINT64_C(1) << 63;
}

/* Sorts rk[0..lambda), which arrives in the order of asking, by loss: a least-significant-byte-first radix
 * sort of sort_key, stable, so that equal losses keep the order of asking (deterministic) and the order is
 * the one a comparison sort on (f, k) gives. O(lambda); the passes over bytes that every key shares are
 * skipped. tmp: lambda entries. At lambda = 4096 it takes a tenth of qsort's time, on rank 0's critical path
 * every generation. */
static void sort_ranked(ng_ranked *rk, ng_ranked *tmp, size_t lambda) {
  size_t count[8][256] = {{0}};
  for (size_t i = 0; i < lambda; i++) {
    uint64_t key = sort_key(rk[i].f);
    for (int b = 0; b < 8; b++)
      count[b][(key >> (8 * b)) & 0xff]++;
  }
  ng_ranked *src = rk, *dst = tmp;
  for (int b = 0; b < 8; b++) {
    size_t *c = count[b], sum = 0;
    if (c[(sort_key(src[0].f) >> (8 * b)) & 0xff] == lambda) continue; /* every key has this byte */
    for (int v = 0; v < 256; v++) {
      size_t t = c[v];
      c[v] = sum;
      sum += t;
    }
    for (size_t i = 0; i < lambda; i++)
      dst[c[(sort_key(src[i].f) >> (8 * b)) & 0xff]++] = src[i];
    ng_ranked *t = src;
    src = dst;
    dst = t;
  }
  if (src != rk) memcpy(rk, src, lambda * sizeof *rk);
}

/* Ranks the told generation and fills es->plan (tell_dist.h): each candidate's weight and position. */
static int rank_generation(ng_opt *opt, const double *f, double *plan) {
  cmaes *es = opt->impl;
  size_t lambda = es->lambda;
  ng_ranked *rk = es->ranked;
  for (size_t k = 0; k < lambda; k++)
    rk[k] = (ng_ranked){f[k], k};
  sort_ranked(rk, rk + lambda, lambda);
  double *w = plan + NG_PLAN_HEAD, *pos = w + lambda;
  for (size_t i = 0; i < lambda; i++) {
    size_t k = rk[i].k;
    es->order[i] = k;
    es->fsorted[i] = rk[i].f;
    pos[k] = (double)i;
    w[k] = i >= es->mu && !isfinite(rk[i].f) ? NAN : es->weights[i];
  }
  plan[NG_PLAN_LAMBDA] = (double)lambda;
  plan[NG_PLAN_N] = (double)es->n;
  plan[NG_PLAN_MU] = (double)es->mu;
  plan[NG_PLAN_CMU] = es->cmu;
  plan[NG_PLAN_FETCH] = -1;
  es->count_tell++;
  return NG_OK;
}

/* The update after the ranking, from the weighted means of the steps (ymean) and of their draws (zmean):
 * mean, paths, covariance and step size. The rank-one term, the decay and the rank-mu rows of the candidates
 * in [0, lim) (in ranking order) update C in one dsyrk, their negative rows in a second; T, the packed upper
 * triangle of the other candidates' rank-mu terms (tell_dist.h), is added last when not NULL. Z and Y hold
 * the rows of candidates [0, lim). */
static int update(ng_opt *opt, const double *ymean, const double *zmean, const double *T, size_t lim,
                  const double *Z, const double *Y, size_t nfinite) {
  cmaes *es = opt->impl;
  size_t n = es->n, lambda = es->lambda, mu = es->mu;
  const double *w = es->weights, *fs = es->fsorted;
  double *A = es->A;
  for (size_t j = 0; j < n; j++)
    es->mean[j] += es->sigma * ymean[j];

  /* evolution paths */
  double csn = sqrt(es->cs * (2.0 - es->cs) * es->mueff);
  if (es->diagonal) {
    for (size_t j = 0; j < n; j++)
      es->ps[j] = (1.0 - es->cs) * es->ps[j] + csn * zmean[j];
  } else {
    cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)n, csn, es->B, (int)n, zmean, 1, 1.0 - es->cs,
                es->ps, 1);
  }
  double ps2 = 0;
  for (size_t j = 0; j < n; j++)
    ps2 += es->ps[j] * es->ps[j];
  double N = (double)n;
  double hsig_lhs = ps2 / (1.0 - pow(1.0 - es->cs, 2.0 * (double)es->count_tell)) / N - 1.0;
  double hsig = hsig_lhs < 1.0 + 4.0 / (N + 1.0) ? 1.0 : 0.0;
  double ccn = hsig * sqrt(es->cc * (2.0 - es->cc) * es->mueff);
  for (size_t j = 0; j < n; j++)
    es->pc[j] = (1.0 - es->cc) * es->pc[j] + ccn * ymean[j];

  /* covariance: C = (1 - c1a - cmu sum w) C + c1 pc pc^T + cmu sum w'_i y_i y_i^T, where a negative weight
   * is rescaled by n / ||C^-1/2 y_i||^2 = n / ||z_i||^2 */
  double c1a = es->c1 * (1.0 - (1.0 - hsig * hsig) * es->cc * (2.0 - es->cc));
  double wsum = 0;
  for (size_t i = 0; i < lambda; i++)
    wsum += w[i];
  double decay = 1.0 - c1a - es->cmu * wsum;
  /* rows of A: sqrt(c1) pc, then sqrt(cmu w_i) y_i for the positive weights */
  size_t npos = 0;
  double s = sqrt(es->c1);
  for (size_t j = 0; j < n; j++)
    A[j] = s * es->pc[j];
  npos = 1;
  for (size_t i = 0; i < mu; i++) {
    if (es->order[i] >= lim) continue;
    s = sqrt(es->cmu * w[i]);
    const double *y = Y + es->order[i] * n;
    for (size_t j = 0; j < n; j++)
      A[npos * n + j] = s * y[j];
    npos++;
  }
  double *An = A + npos * n;
  size_t nneg = 0;
  for (size_t i = mu; i < lambda; i++) {
    if (!isfinite(fs[i]) || es->order[i] >= lim)
      continue; /* a failed evaluation says nothing about a direction */
    const double *z = Z + es->order[i] * n, *y = Y + es->order[i] * n;
    double z2 = 0;
    for (size_t j = 0; j < n; j++)
      z2 += z[j] * z[j];
    double norm = sqrt(z2) + 1e-9;
    s = sqrt(-es->cmu * w[i] * N / (norm * norm));
    for (size_t j = 0; j < n; j++)
      An[nneg * n + j] = s * y[j];
    nneg++;
  }
  if (es->diagonal) {
    for (size_t j = 0; j < n; j++) {
      double c = decay * es->C[j];
      for (size_t r = 0; r < npos; r++)
        c += A[r * n + j] * A[r * n + j];
      for (size_t r = 0; r < nneg; r++)
        c -= An[r * n + j] * An[r * n + j];
      es->C[j] = c > 0 ? c : 1e-300;
      es->D[j] = sqrt(es->C[j]);
    }
    es->factor_version++;
  } else {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)npos, 1.0, A, (int)n, decay, es->C,
                (int)n);
    if (nneg)
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)nneg, -1.0, An, (int)n, 1.0, es->C,
                  (int)n);
    if (T)
      for (size_t r = 0, q = 0; r < n; q += n - r, r++)
        ng__tell_add(n - r, es->C + r * n + r, T + q);
  }

  /* step size, with pycma's clip of the log-change to [-1, 1] */
  double ds = (sqrt(ps2) / es->chin - 1.0) * es->cs / es->damps;
  es->sigma *= exp(fmax(-1.0, fmin(1.0, ds)));
  rebalance_sigma(opt, es);

  opt->algo_stop = nfinite ? ng_cmaes_check_stop(opt, es, fs) : NG_STOP_NONE;
  return NG_OK;
}

/* The second half of a tell by blocks: V is the tree's sum of the shares (tell_dist.h). */
static int tell_finish(ng_opt *opt, const double *V, const double *Z0, const double *Y0, size_t nfinite) {
  cmaes *es = opt->impl;
  size_t n = es->n;
  return update(opt, V, V + n, ng__tell_blocks(es->lambda) > 1 ? V + 2 * n : NULL, NG_TELL_BLOCK, Z0, Y0,
                nfinite);
}

/* One process: the shares of every block from the rows of the last ask, added over the tree of tell_dist.h,
 * exactly as the engine adds them over the ranks. sep-CMA-ES sums its means over the whole population. */
static int tell(ng_opt *opt, const double *f, size_t nfinite) {
  cmaes *es = opt->impl;
  size_t n = es->n, lambda = es->lambda, mu = es->mu;
  NG_CALL(rank_generation(opt, f, es->plan));
  if (es->diagonal) {
    double *ymean = es->work, *zmean = es->work2;
    memset(ymean, 0, n * sizeof(double));
    memset(zmean, 0, n * sizeof(double));
    for (size_t i = 0; i < mu; i++) {
      const double *y = es->Y + es->order[i] * n, *z = es->Z + es->order[i] * n;
      for (size_t j = 0; j < n; j++) {
        ymean[j] += es->weights[i] * y[j];
        zmean[j] += es->weights[i] * z[j];
      }
    }
    return update(opt, ymean, zmean, NULL, lambda, es->Z, es->Y, nfinite);
  }
  size_t nb = ng__tell_blocks(lambda), width = ng__tell_width(n);
  for (size_t b = 0; b < nb; b++)
    ng__tell_share(es->plan, b, es->Z + b * NG_TELL_BLOCK * n, es->Y + b * NG_TELL_BLOCK * n,
                   es->shares + b * width, es->share_scratch);
  for (size_t step = 1; step < nb; step *= 2)
    for (size_t b = 0; b + step < nb; b += 2 * step)
      ng__tell_add(width, es->shares + b * width, es->shares + (b + step) * width);
  return tell_finish(opt, es->shares, es->Z, es->Y, nfinite);
}

/* Candidate k of the pending generation, made again from its step as ask made it (the mean and step size are
 * still those of the ask: the generic tell asks before the update), so that ask need not keep a copy. */
static const double *candidate(const ng_opt *opt, size_t k) {
  cmaes *es = opt->impl;
  ng_sampler s;
  sampler(opt, &s);
  ng_sampler_gauss_finish(&s, es->Y + k * es->n, 1, es->X);
  return es->X;
}

static const double *mean(const ng_opt *opt) {
  const cmaes *es = opt->impl;
  return es->mean;
}

static void info(const ng_opt *opt, ng_opt_info *in) {
  const cmaes *es = opt->impl;
  in->sigma = es->sigma;
  double dmin = INFINITY, dmax = 0;
  for (size_t i = 0; i < es->n; i++) {
    dmin = fmin(dmin, es->D[i]);
    dmax = fmax(dmax, es->D[i]);
  }
  in->axis_ratio = dmin > 0 ? dmax / dmin : INFINITY;
  in->seconds_eigen = es->seconds_eigen;
}

static int save(const ng_opt *opt, ng_state *st) {
  const cmaes *es = opt->impl;
  size_t n = es->n, nn = es->diagonal ? n : n * n;
  NG_CALL(ng_state_put_int(st, "algo/lambda", (int64_t)es->lambda));
  NG_CALL(ng_state_put_scalar(st, "algo/sigma", es->sigma));
  NG_CALL(ng_state_put_scalar(st, "algo/tolupsigma", es->tolupsigma));
  NG_CALL(ng_state_put_f64(st, "algo/mean", es->mean, n));
  NG_CALL(ng_state_put_f64(st, "algo/pc", es->pc, n));
  NG_CALL(ng_state_put_f64(st, "algo/ps", es->ps, n));
  NG_CALL(ng_state_put_f64(st, "algo/C", es->C, nn));
  NG_CALL(ng_state_put_f64(st, "algo/D", es->D, n));
  if (!es->diagonal) NG_CALL(ng_state_put_f64(st, "algo/B", es->B, nn));
  int64_t counters[3] = {es->count_tell, es->last_update, es->factor_version};
  NG_CALL(ng_state_put_i64(st, "algo/counters", counters, 3));
  if (!es->diagonal) { /* a decomposition in flight: the C it decomposes (the job only reads it) */
    NG_CALL(ng_state_put_int(st, "algo/eigen_pending_at", es->pending_at));
    if (es->pending_at >= 0) {
      NG_CALL(ng_state_put_f64(st, "algo/eigen_C", es->Csnap, nn));
      NG_CALL(ng_state_put_scalar(st, "algo/eigen_scale", es->pending_scale));
    }
  }
  return ng_cmaes_stop_save(es, st);
}

static int load(ng_opt *opt, const ng_state *st) {
  cmaes *es = opt->impl;
  size_t n = es->n, nn = es->diagonal ? n : n * n;
  int64_t lambda;
  NG_CALL(ng_state_get_int(st, "algo/lambda", &lambda));
  if ((size_t)lambda != es->lambda)
    return ng_error(NG_EMISMATCH, "cmaes: saved population size %lld differs from %zu", (long long)lambda,
                    es->lambda);
  NG_CALL(ng_state_get_scalar(st, "algo/sigma", &es->sigma));
  NG_CALL(ng_state_get_scalar(st, "algo/tolupsigma", &es->tolupsigma));
  NG_CALL(ng_state_get_f64(st, "algo/mean", es->mean, n));
  NG_CALL(ng_state_get_f64(st, "algo/pc", es->pc, n));
  NG_CALL(ng_state_get_f64(st, "algo/ps", es->ps, n));
  NG_CALL(ng_state_get_f64(st, "algo/C", es->C, nn));
  NG_CALL(ng_state_get_f64(st, "algo/D", es->D, n));
  if (!es->diagonal) {
    NG_CALL(ng_state_get_f64(st, "algo/B", es->B, nn));
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n; j++)
        es->BD[i * n + j] = es->B[i * n + j] * es->D[j];
  }
  int64_t counters[3];
  NG_CALL(ng_state_get_i64(st, "algo/counters", counters, 3));
  es->count_tell = counters[0];
  es->last_update = counters[1];
  es->factor_version = counters[2];
  if (!es->diagonal) {
    NG_CALL(ng_async_wait(&es->job)); /* loading over a running optimizer: its job is stale */
    int64_t at = -1;
    size_t len;
    if (ng_state_length(st, "algo/eigen_pending_at", &len) == NG_OK) /* absent in older checkpoints: none */
      NG_CALL(ng_state_get_int(st, "algo/eigen_pending_at", &at));
    else
      ng_error_clear();
    if (at >= 0 && (es->eigen_lag == 0 || at > es->count_tell))
      return ng_error(
          NG_EMISMATCH,
          "cmaes: the saved state has an eigendecomposition in flight (iteration %lld), which this "
          "run's eigen_lag %lld cannot take over",
          (long long)at, (long long)es->eigen_lag);
    es->pending_at = at;
    if (at >= 0) {
      NG_CALL(ng_state_get_f64(st, "algo/eigen_C", es->Csnap, nn));
      NG_CALL(ng_state_get_scalar(st, "algo/eigen_scale", &es->pending_scale));
      NG_CALL(ng_async_start(&es->job, eigen_job, es));
    }
  }
  return ng_cmaes_stop_load(es, st);
}

const ng_opt_type ng_opt_cmaes = {
    .name = "cmaes",
    .summary = "CMA-ES (Hansen; pycma 4.x's defaults): full covariance, active update, restarts",
    .setup = setup_full,
    .ask = ask,
    .tell = tell,
    .ask_lazy = ask_lazy,
    .tell_plan = rank_generation,
    .tell_finish = tell_finish,
    .save = save,
    .load = load,
    .destroy = destroy,
    .info = info,
    .candidate = candidate,
    .sampler = sampler,
    .mean = mean,
    .restartable = true,
    .rank_based = true};
const ng_opt_type ng_opt_sepcmaes = {
    .name = "sepcmaes",
    .summary = "separable CMA-ES (Ros and Hansen 2008): diagonal covariance, O(n) per candidate",
    .setup = setup_diag,
    .ask = ask,
    .tell = tell,
    .save = save,
    .load = load,
    .destroy = destroy,
    .info = info,
    .candidate = candidate,
    .sampler = sampler,
    .mean = mean,
    .restartable = true,
    .rank_based = true};
