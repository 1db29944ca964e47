/* Times the optimizer alone: ask + tell per generation (sampling, update, eigendecomposition), with a loss
 * that costs O(n) per candidate, in one process with one BLAS thread (set OPENBLAS_NUM_THREADS=1).
 *
 * usage: bench_cmaes [optimizer n lambda generations] ...   (default: the two configurations of issue #2)
 * Prints one line per configuration: the median over 5 runs of the mean time per generation, and the share
 * of it spent in eigendecompositions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/timer.h"
#include "nograd/opt.h"

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One run of `generations` generations; returns its seconds and the seconds spent in eigendecompositions. */
static int run(const char *name, size_t n, size_t lambda, int generations, double *seconds, double *eigen,
               size_t *lambda_out) {
  ng_opt *opt = NULL;
  double *x0 = malloc(n * sizeof *x0);
  for (size_t i = 0; i < n; i++)
    x0[i] = 3.0;
  int st = ng_opt_create(name, n, &opt);
  if (!st) st = ng_opt_set_x0(opt, x0);
  if (!st) st = ng_opt_set_sigma0(opt, 2.0);
  if (!st) st = ng_opt_set_popsize(opt, lambda);
  if (!st) st = ng_opt_setup(opt);
  free(x0);
  if (st) {
    fprintf(stderr, "bench_cmaes: %s\n", ng_errmsg());
    return 1;
  }
  lambda = ng_opt_popsize(opt);
  double *x = malloc(lambda * n * sizeof *x), *f = malloc(lambda * sizeof *f);
  double t0 = ng_time_now();
  for (int g = 0; g < generations; g++) {
    if (ng_opt_ask(opt, x)) return 1;
    for (size_t k = 0; k < lambda; k++) { /* an ellipsoid, O(n): the optimizer has something to adapt */
      double s = 0;
      for (size_t i = 0; i < n; i++)
        s += (1.0 + (double)i) * x[k * n + i] * x[k * n + i];
      f[k] = s;
    }
    if (ng_opt_tell(opt, f)) return 1;
  }
  *seconds = ng_time_now() - t0;
  ng_opt_info in;
  ng_opt_get_info(opt, &in);
  *eigen = in.seconds_eigen;
  *lambda_out = lambda;
  free(x);
  free(f);
  ng_opt_destroy(&opt);
  return 0;
}

/* Mean time per generation of whole runs (so that every lazy eigendecomposition is paid for), median of
 * `repeats` runs. */
static int bench(const char *name, size_t n, size_t lambda, int generations) {
  enum { REPEATS = 5 };
  double ms[REPEATS], share[REPEATS];
  size_t lam = lambda;
  for (int r = 0; r < REPEATS; r++) {
    double sec, eig;
    if (run(name, n, lambda, generations, &sec, &eig, &lam)) return 1;
    ms[r] = 1e3 * sec / generations;
    share[r] = 100.0 * eig / sec;
  }
  double sorted[REPEATS];
  memcpy(sorted, ms, sizeof ms);
  qsort(sorted, REPEATS, sizeof *sorted, compare_double);
  double eig_share = 0;
  for (int r = 0; r < REPEATS; r++)
    eig_share += share[r] / REPEATS;
  printf(
      "%-9s n=%-5zu lambda=%-5zu generations=%-5d median of %d runs %.2f ms/generation (runs %.2f..%.2f), "
      "eigendecomposition %.0f%% of the time\n",
      name, n, lam, generations, REPEATS, sorted[REPEATS / 2], sorted[0], sorted[REPEATS - 1], eig_share);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 5) {
    for (int i = 1; i + 3 < argc; i += 4)
      if (bench(argv[i], (size_t)atol(argv[i + 1]), (size_t)atol(argv[i + 2]), atoi(argv[i + 3]))) return 1;
    return 0;
  }
  int rc = bench("cmaes", 1000, 0, 420); /* ten lazy eigendecompositions */
  rc |= bench("cmaes", 200, 1000, 100);
  rc |= bench("sepcmaes", 1000, 0, 1000);
  return rc;
}
