// clang-format off
/* The engine at scale: CMA-ES on an objective whose cost per candidate is a sleep, so that SimGrid's SMPI
 * (tools/bench/scale_smpi.sh) turns it into simulated time while everything else the engine and the
 * optimizer compute is timed on this core; under mpirun it is a plain sleep.
 *
 *   mpirun -n P bench_scale [--dim 100] [--popsize 0] [--generations 10] [--cost-ms 50] [--bcast seeded]
 *                           [--groups P] [--seed 1] [--jitter none|exp:F|lognormal:S|slow:R:F] [--quiet]
 *
 * The loss is the ellipsoid sum (1 + 999^(i/(n-1))) x_i^2 (x0 = 1, sigma0 = 0.5), computed exactly, so that
 * the result is the same bits under SMPI and under Open MPI. Per-candidate cost (seeded by (seed, generation,
 * k): the same draws whatever P is):
 *   none          cost
 *   exp:F         cost * (1 + F E), E ~ Exp(1): a long tail; mean cost * (1 + F)
 *   lognormal:S   cost * exp(S N - S^2 / 2): mean cost
 *   slow:R:F      cost, and F * cost for every candidate rank R evaluates (one slow node)
 *
 * Rank 0 prints one line per generation (unless --quiet): its wall time, the efficiency of that generation
 * (the ideal ceil(lambda/G) * cost over the wall time), the phases of the history (sample, broadcast,
 * evaluate, reduce, update, of which eigen) and the bytes it broadcast; then the result ("result: ..."),
 * whose bits must not depend on P, G or the broadcast mode; and last
 *   P=... lambda=... n=... efficiency=E
 * with E = generations * ideal / the seconds of the generation loop (res.seconds of ng_engine_run: from the
 * end of the engine's set-up to the end of the run, first generation included). The set-up (the engine
 * duplicates its communicator, for which SMPI with computation simulated charges time that grows as P^2:
 * some 70 ms at P = 1024 and 200 ms at P = 4096, where Open MPI spends one allreduce) is printed beside it,
 * and the first generation's wall time starts after it. With --measure-dup the run is preceded by one
 * MPI_Comm_dup and barrier of MPI_COMM_WORLD, timed and printed, for comparison. --log FILE writes the engine's JSON log (one line per generation, with the slowest rank of the
 * evaluation, its seconds and the fastest rank's). */
// clang-format on
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nograd/ckpt.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/opt.h"
#include "nograd/rng.h"
#include "nograd/timer.h"

enum { JITTER_NONE, JITTER_EXP, JITTER_LOGNORMAL, JITTER_SLOW };

typedef struct {
  size_t n;
  double cost_s;     /* seconds per candidate */
  int jitter;        /* JITTER_* */
  double jitter_a;   /* F or S */
  int slow_rank;     /* JITTER_SLOW */
  int rank;          /* this rank */
  uint64_t seed;     /* keys the jitter draws */
  double *gen_times; /* rank 0: the wall time at the end of each generation */
  size_t gen_count, gen_cap;
} bench;

/* The cost of candidate k of a generation on this rank. */
static double candidate_cost(const bench *b, uint64_t generation, size_t k) {
  if (b->jitter == JITTER_NONE) return b->cost_s;
  if (b->jitter == JITTER_SLOW) return b->rank == b->slow_rank ? b->jitter_a * b->cost_s : b->cost_s;
  ng_rng r;
  ng_rng_init(&r, b->seed, NG_RNG_USER + 1, (uint32_t)generation, (uint32_t)k);
  if (b->jitter == JITTER_EXP) return b->cost_s * (1.0 - b->jitter_a * log1p(-ng_rng_uniform(&r)));
  double s = b->jitter_a;
  return b->cost_s * exp(s * ng_rng_normal(&r) - 0.5 * s * s);
}

static int sleep_eval(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                      double *count) {
  const bench *b = ctx;
  size_t n = b->n;
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    double scale = n > 1 ? pow(999.0, (double)i / (double)(n - 1)) : 1.0;
    s += (1.0 + scale) * x[i] * x[i];
  }
  double c = candidate_cost(b, generation, k);
  if (c > 0) { /* SMPI maps nanosleep to simulated time */
    struct timespec ts = {(time_t)c, (long)((c - floor(c)) * 1e9)};
    nanosleep(&ts, NULL);
  }
  *sum = s;
  *count = 1;
  return NG_OK;
}

static int on_generation(void *ctx, const ng_opt *opt) {
  bench *b = ctx;
  if (b->gen_count == b->gen_cap) {
    size_t cap = b->gen_cap ? 2 * b->gen_cap : 64;
    double *t = realloc(b->gen_times, cap * sizeof *t);
    if (!t) return ng_error(NG_ENOMEM, "bench_scale: out of memory");
    b->gen_times = t;
    b->gen_cap = cap;
  }
  b->gen_times[b->gen_count++] = ng_time_now();
  return NG_OK;
}

/* FNV-1a over the bytes of n doubles: a fingerprint of a vector's bits. */
static uint64_t fnv(uint64_t h, const double *v, size_t n) {
  const unsigned char *p = (const unsigned char *)v;
  for (size_t i = 0; i < n * sizeof *v; i++) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static int parse_jitter(const char *spec, bench *b) {
  if (!strcmp(spec, "none")) {
    b->jitter = JITTER_NONE;
    return 0;
  }
  if (!strncmp(spec, "exp:", 4)) {
    b->jitter = JITTER_EXP;
    b->jitter_a = atof(spec + 4);
    return b->jitter_a >= 0 ? 0 : -1;
  }
  if (!strncmp(spec, "lognormal:", 10)) {
    b->jitter = JITTER_LOGNORMAL;
    b->jitter_a = atof(spec + 10);
    return b->jitter_a >= 0 ? 0 : -1;
  }
  if (!strncmp(spec, "slow:", 5)) {
    b->jitter = JITTER_SLOW;
    return sscanf(spec + 5, "%d:%lf", &b->slow_rank, &b->jitter_a) == 2 && b->jitter_a > 0 ? 0 : -1;
  }
  return -1;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  bench b = {.n = 100, .cost_s = 0.050, .rank = rank, .seed = 1};
  size_t lambda = 0;
  int generations = 10, groups = size, quiet = 0, measure_dup = 0;
  const char *bcast = "seeded", *log_path = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    int bad = 0;
    if (!strcmp(a, "--quiet") || !strcmp(a, "--measure-dup")) {
      *(!strcmp(a, "--quiet") ? &quiet : &measure_dup) = 1;
      continue;
    }
    if (!v)
      bad = 1;
    else if (!strcmp(a, "--dim"))
      b.n = (size_t)atol(v);
    else if (!strcmp(a, "--popsize"))
      lambda = (size_t)atol(v);
    else if (!strcmp(a, "--generations"))
      generations = atoi(v);
    else if (!strcmp(a, "--cost-ms"))
      b.cost_s = atof(v) / 1e3;
    else if (!strcmp(a, "--bcast"))
      bcast = v;
    else if (!strcmp(a, "--groups"))
      groups = atoi(v);
    else if (!strcmp(a, "--seed"))
      b.seed = (uint64_t)atoll(v);
    else if (!strcmp(a, "--jitter"))
      bad = parse_jitter(v, &b);
    else if (!strcmp(a, "--log"))
      log_path = v;
    else
      bad = 1;
    if (bad) {
      if (rank == 0)
        fprintf(stderr, "bench_scale: bad argument %s %s (see the comment atop bench_scale.c)\n", a,
                v ? v : "");
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    i++;
  }
  int mode = ng_bcast_from_name(bcast);
  if (mode < 0 || b.n < 1 || generations < 1 || groups < 1 || size % groups) {
    if (rank == 0) fprintf(stderr, "bench_scale: bad --bcast, --dim, --generations or --groups\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  ng_opt *opt = NULL;
  if (rank == 0) { /* maxiter: exactly `generations` generations (no other rule fires that early) */
    double *x0 = malloc(b.n * sizeof *x0);
    for (size_t i = 0; i < b.n; i++)
      x0[i] = 1.0;
    if (!x0 || ng_opt_create("cmaes", b.n, &opt) || ng_opt_set_x0(opt, x0) || ng_opt_set_sigma0(opt, 0.5) ||
        ng_opt_set_seed(opt, b.seed) || ng_opt_set_popsize(opt, lambda) ||
        ng_opt_set_param(opt, "maxiter", generations) || ng_opt_setup(opt)) {
      fprintf(stderr, "bench_scale: %s\n", ng_errmsg());
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    lambda = ng_opt_popsize(opt);
    free(x0);
  }
  FILE *log = rank == 0 && log_path ? fopen(log_path, "w") : NULL;
  if (rank == 0 && log_path && !log) {
    fprintf(stderr, "bench_scale: cannot write %s\n", log_path);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  double dup_cost = 0;
  if (measure_dup) {
    MPI_Comm probe;
    MPI_Barrier(MPI_COMM_WORLD);
    double td = ng_time_now();
    MPI_Comm_dup(MPI_COMM_WORLD, &probe);
    MPI_Barrier(probe);
    dup_cost = ng_time_now() - td;
    MPI_Comm_free(&probe);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  ng_history hist = {0};
  ng_objective obj = {.n = b.n, .nchunks = 1, .eval = sleep_eval, .ctx = &b};
  ng_engine_config cfg = {.groups = groups,
                          .bcast = (ng_bcast_mode)mode,
                          .history = rank == 0 ? &hist : NULL,
                          .log = log,
                          .on_generation = on_generation,
                          .on_generation_ctx = &b};
  ng_engine_result res;
  double t0 = ng_time_now();
  int st = ng_engine_run(MPI_COMM_WORLD, opt, &obj, &cfg, &res);
  double seconds = ng_time_now() - t0;
  if (st) {
    if (rank == 0) fprintf(stderr, "bench_scale: %s\n", ng_errmsg());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rank == 0) {
    double ideal = ceil((double)lambda / groups) * b.cost_s;
    double t_loop = t0 + seconds - res.seconds; /* the end of the engine's set-up */
    if (!quiet) {
      printf("bench_scale: P=%d G=%d lambda=%zu n=%zu cost=%.1f ms bcast=%s jitter=%s\n", size, groups,
             lambda, b.n, b.cost_s * 1e3, bcast, b.jitter == JITTER_NONE ? "none" : "on");
      printf("%4s %9s %6s | %8s %8s %8s %8s %8s %8s | %10s\n", "gen", "wall_ms", "eff", "sample", "bcast",
             "evaluate", "reduce", "update", "eigen", "bytes");
      for (size_t r = 0; r < hist.nrows && r < b.gen_count; r++) {
        const double *row = hist.rows + r * NG_HISTORY_NCOLS;
        double wall = b.gen_times[r] - (r ? b.gen_times[r - 1] : t_loop);
        printf("%4zu %9.3f %6.3f | %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f | %10.0f\n", r + 1, wall * 1e3,
               ideal / wall, row[NG_HIST_t_sample] * 1e3, row[NG_HIST_t_broadcast] * 1e3,
               row[NG_HIST_t_evaluate] * 1e3, row[NG_HIST_t_reduce] * 1e3, row[NG_HIST_t_update] * 1e3,
               row[NG_HIST_t_eigen] * 1e3, row[NG_HIST_bytes]);
      }
    }
    double best_f;
    const double *best = ng_opt_best(opt, &best_f);
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    uint64_t h = fnv(fnv(1469598103934665603ull, best, b.n), ng_opt_mean(opt), b.n);
    h = fnv(h, &in.sigma, 1);
    printf("result: generations=%lld evaluations=%lld f_best=%a sigma=%a fingerprint=%016llx\n",
           (long long)in.generation, (long long)in.evaluations, best_f, in.sigma, (unsigned long long)h);
    double whole = (double)hist.nrows * ideal / res.seconds;
    printf(
        "run: %.3f s of generations after %.3f s of engine set-up (communicator, loading); with the set-up "
        "the efficiency would be %.4f\n",
        res.seconds, seconds - res.seconds, (double)hist.nrows * ideal / seconds);
    if (measure_dup)
      printf("communicator creation alone (MPI_Comm_dup + barrier, timed before the run): %.3f ms\n",
             dup_cost * 1e3);
    printf("P=%d lambda=%zu n=%zu efficiency=%.4f\n", size, lambda, b.n, whole);
    fflush(stdout);
  }
  if (log) fclose(log);
  free(b.gen_times);
  ng_history_free(&hist);
  ng_opt_destroy(&opt);
  MPI_Finalize();
  return 0;
}
