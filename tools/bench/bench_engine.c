/* Overhead of the distributed engine: an objective that costs a fixed CPU time per candidate (it spins on
 * the clock, as a real forward pass would keep the core busy), run under mpirun with P ranks.
 *
 *   mpirun -n P bench_engine [--cost-ms 5] [--dim 10] [--popsize 16] [--generations 30] [--checkpoint FILE]
 *
 * Prints the median time per generation and its ratio to the ideal ceil(lambda/P) * cost: what the engine
 * adds (ask, broadcast, gather, tell, history, checkpoints at the default 60 s interval). */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/ckpt.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/timer.h"
#include "nograd/opt.h"

static double cost_s = 0.005;

static int spin_eval(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                     double *count) {
  size_t n = *(size_t *)ctx;
  double t_end = ng_time_now() + cost_s, s = 0;
  for (size_t i = 0; i < n; i++)
    s += x[i] * x[i];
  while (ng_time_now() < t_end) {
  }
  *sum = s;
  *count = 1;
  return NG_OK;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  size_t n = 10, lambda = 16;
  int generations = 30;
  const char *checkpoint = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--cost-ms"))
      cost_s = atof(argv[i + 1]) / 1e3;
    else if (!strcmp(argv[i], "--dim"))
      n = (size_t)atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--popsize"))
      lambda = (size_t)atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--generations"))
      generations = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--checkpoint"))
      checkpoint = argv[i + 1];
  }
  ng_opt *opt = NULL;
  if (rank == 0) {
    double *x0 = calloc(n, sizeof *x0);
    for (size_t i = 0; i < n; i++)
      x0[i] = 3;
    if (ng_opt_create("cmaes", n, &opt) || ng_opt_set_x0(opt, x0) || ng_opt_set_popsize(opt, lambda) ||
        ng_opt_set_max_evals(opt, (int64_t)lambda * generations) || ng_opt_setup(opt)) {
      fprintf(stderr, "bench_engine: %s\n", ng_errmsg());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    free(x0);
  }
  ng_history hist = {0};
  ng_objective obj = {.n = n, .nchunks = 1, .eval = spin_eval, .ctx = &n};
  ng_engine_config cfg = {.groups = size,
                          .checkpoint = checkpoint,
                          .checkpoint_secs = 60,
                          .meta = {.program_version = "bench",
                                   .command_line = "bench_engine",
                                   .config = "",
                                   .budget = "",
                                   .optimizer = "cmaes",
                                   .ranks = size,
                                   .groups = size},
                          .history = &hist};
  ng_engine_result res;
  int st = ng_engine_run(MPI_COMM_WORLD, opt, &obj, &cfg, &res);
  if (st) {
    if (rank == 0) fprintf(stderr, "bench_engine: %s\n", ng_errmsg());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rank == 0) {
    /* a generation's wall time: from the history's phases; the first generation pays for warm-up */
    double *t = malloc(hist.nrows * sizeof *t);
    size_t m = 0;
    for (size_t r = 1; r < hist.nrows; r++) {
      const double *row = hist.rows + r * NG_HISTORY_NCOLS;
      t[m++] = row[NG_HIST_t_sample] + row[NG_HIST_t_broadcast] + row[NG_HIST_t_evaluate] +
               row[NG_HIST_t_reduce] + row[NG_HIST_t_update];
    }
    qsort(t, m, sizeof *t, compare_double);
    double ideal = ceil((double)lambda / size) * cost_s, med = t[m / 2];
    double total_ideal = ideal * (double)hist.nrows;
    printf(
        "P=%d lambda=%zu n=%zu cost=%.1f ms: median %.2f ms/generation, ideal ceil(lambda/P)*cost = %.2f ms, "
        "ratio %.4f; whole run %.3f s vs %.3f s ideal (ratio %.4f, %lld checkpoints)\n",
        size, lambda, n, cost_s * 1e3, med * 1e3, ideal * 1e3, med / ideal, res.seconds, total_ideal,
        res.seconds / total_ideal, (long long)res.checkpoints);
    free(t);
  }
  ng_history_free(&hist);
  ng_opt_destroy(&opt);
  MPI_Finalize();
  return 0;
}
