// ctest: LABELS unit TIMEOUT 120
/* The engine's stats objectives (include/nograd/engine.h: nstats, eval_stats, finish) and its loop order.
 *
 * At one rank (the unit test) it checks against a direct computation: every stats vector that finish
 * receives is the candidate's per-chunk stats added element-wise in chunk order from zero, bit for bit
 * (the stats span 2^-26 .. 2^26, so another order gives other bits), the loss the optimizer is told is
 * finish's (NaN ranks last), the classic (sum, count) pair gives sum / count, a rank evaluates chunk-outer
 * and candidate-inner, and the refusals (an objective without the functions its nstats needs, a gather too
 * large for MPI). The same binary under mpirun with P ranks (tests/mpi/test_stats.py: P = 2, 3, 4) compares
 * every layout of the P ranks (G = 1 and, where it divides P, 2 groups; explicit and seeded broadcast)
 * with a reference run on rank 0 alone (MPI_COMM_SELF): the stats and losses finish saw, the history's
 * deterministic columns and the best point, bit for bit; for a toy objective with floating stats, the
 * classic pair, and the nn objective's balanced_error and macro_f1 (confusion counts). Every verdict is
 * agreed on (broadcast from rank 0) before any rank asserts, so a failure cannot leave ranks waiting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nograd/ckpt.h"
#include "nograd/data.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/nn.h"
#include "nograd/nn_objective.h"
#include "nograd/opt.h"
#include "nograd/rng.h"

#define DIM 5
#define LAMBDA 7    /* uneven blocks over 2 groups */
#define CHUNKS 7    /* uneven blocks over 2, 3, 4 shards */
#define NSTATS 3    /* toy stats */
#define GENS 12     /* generations per run */
#define HIST_COLS 8 /* generation .. restarts: the history columns that do not depend on timing */

static int rank, size;
static char tmpdir[256];

static void check(int status, const char *what) {
  if (status != NG_OK) fail_msg("rank %d: %s: %s: %s", rank, what, ng_strerror(status), ng_errmsg());
}

/* All ranks assert rank 0's verdict, which it explains in msg. */
static void agree(int ok, const char *msg) {
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!ok) fail_msg("%s", rank == 0 ? msg : "rank 0 found a difference (see its message)");
}

/* Whether n doubles are the same bits (NaNs included). */
static bool same_bits(const double *a, const double *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint64_t u, v;
    memcpy(&u, &a[i], sizeof u);
    memcpy(&v, &b[i], sizeof v);
    if (u != v) return false;
  }
  return true;
}

/* ---- a toy objective: floating stats of very different magnitudes ------------------------------------ */

typedef struct {
  double *v;
  size_t len, cap;
} buf;

static void push(buf *b, const double *v, size_t n) {
  if (n == 0) return;
  if (b->len + n > b->cap) {
    b->cap = 2 * (b->len + n);
    b->v = realloc(b->v, b->cap * sizeof *b->v);
    assert_non_null(b->v);
  }
  memcpy(b->v + b->len, v, n * sizeof *v);
  b->len += n;
}

typedef struct {
  size_t nstats;              /* 0: the classic pair */
  ng_objective inner;         /* nn: the wrapped objective; toy: unused */
  bool record;                /* record on this rank (off while recomputing directly) */
  buf xs;                     /* (generation, k, x) of every candidate evaluated on chunk 0 */
  buf calls;                  /* (generation, k, chunk) of every evaluation, in call order */
  buf fin;                    /* rank 0: for every finish call, its stats and its result */
  size_t singles;             /* eval calls made by the engine (toy_eval_counted) */
  size_t batches, batch_rows; /* eval_batch calls and the candidates they carried */
} toy;

/* A stat of x on a chunk: scales from 2^-26 to 2^26 by chunk and index, so the order of the sums shows. */
static double term(const double *x, size_t chunk, size_t j) {
  double scale = ldexp(1.0, (int)((chunk * 7 + j * 3) % 5) * 13 - 26), s = 1;
  for (size_t i = 0; i < DIM; i++) {
    double d = x[i] - 0.1 * (double)(chunk + 1);
    s += d * d;
  }
  return scale * s + sin(x[j % DIM] * (double)(chunk + 1));
}

static void note_call(toy *t, const double *x, uint64_t generation, size_t k, size_t chunk) {
  if (!t->record) return;
  double c[3] = {(double)generation, (double)k, (double)chunk};
  push(&t->calls, c, 3);
  if (chunk == 0) {
    push(&t->xs, c, 2);
    push(&t->xs, x, DIM);
  }
}

static int toy_eval_stats(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                          double *stats) {
  toy *t = ctx;
  note_call(t, x, generation, k, chunk);
  for (size_t j = 0; j < NSTATS; j++)
    stats[j] += term(x, chunk, j);
  if (k % 5 == 3) stats[NSTATS - 1] += NAN; /* candidates 3 of each generation: a NaN loss, ranked last */
  return NG_OK;
}

static double toy_finish(void *ctx, const double *stats) {
  toy *t = ctx;
  double f = stats[0] * 1e-6 / stats[1] + stats[2] * 1e-3;
  if (t->record) {
    push(&t->fin, stats, t->nstats);
    push(&t->fin, &f, 1);
  }
  return f;
}

static int toy_eval(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                    double *count) {
  toy *t = ctx;
  note_call(t, x, generation, k, chunk);
  *sum += term(x, chunk, 0);
  *count += (double)(chunk + 1);
  return NG_OK;
}

static int toy_eval_counted(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                            double *sum, double *count) {
  ((toy *)ctx)->singles++;
  return toy_eval(ctx, x, generation, k, chunk, sum, count);
}

/* The batch hook: each candidate as toy_eval computes it, written (not added) into sums and counts. */
static int toy_eval_batch(void *ctx, const double *x, size_t m, uint64_t generation, size_t first,
                          size_t chunk, double *sums, double *counts) {
  toy *t = ctx;
  t->batches++;
  t->batch_rows += m;
  for (size_t i = 0; i < m; i++) {
    sums[i] = counts[i] = 0;
    NG_CALL(toy_eval(t, x + i * DIM, generation, first + i, chunk, &sums[i], &counts[i]));
  }
  return NG_OK;
}

static ng_objective toy_objective(toy *t, size_t nstats) {
  memset(t, 0, sizeof *t);
  t->nstats = nstats;
  t->record = true;
  ng_objective o = {.n = DIM, .nchunks = CHUNKS, .ctx = t};
  if (nstats) {
    o.nstats = nstats;
    o.eval_stats = toy_eval_stats;
    o.finish = toy_finish;
  } else {
    o.eval = toy_eval;
  }
  return o;
}

static void toy_free(toy *t) {
  free(t->xs.v);
  free(t->calls.v);
  free(t->fin.v);
  memset(t, 0, sizeof *t);
}

/* ---- the nn objective, wrapped to record what finish sees --------------------------------------------- */

static int nn_load(void *ctx, size_t first, size_t count) {
  toy *t = ctx;
  return t->inner.load(t->inner.ctx, first, count);
}

static int nn_eval_stats(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                         double *stats) {
  toy *t = ctx;
  return t->inner.eval_stats(t->inner.ctx, x, generation, k, chunk, stats);
}

static double nn_finish(void *ctx, const double *stats) {
  toy *t = ctx;
  double f = t->inner.finish(t->inner.ctx, stats);
  if (t->record) {
    push(&t->fin, stats, t->nstats);
    push(&t->fin, &f, 1);
  }
  return f;
}

/* ---- runs --------------------------------------------------------------------------------------------- */

typedef struct {
  int status;
  ng_history hist;
  double best[64], best_f;
} outcome;

/* One run of CMA-ES (seed 3, lambda 7, GENS generations) from x0 over comm; rank 0 of comm fills out. */
static void run(MPI_Comm comm, int groups, ng_bcast_mode mode, const ng_objective *obj, const double *x0,
                outcome *out) {
  int r;
  MPI_Comm_rank(comm, &r);
  memset(out, 0, sizeof *out);
  ng_opt *opt = NULL;
  if (r == 0) {
    check(ng_opt_create("cmaes", obj->n, &opt), "opt");
    check(ng_opt_set_x0(opt, x0), "x0");
    check(ng_opt_set_sigma0(opt, 0.5), "sigma0");
    check(ng_opt_set_seed(opt, 3), "seed");
    check(ng_opt_set_popsize(opt, LAMBDA), "popsize");
    check(ng_opt_set_max_evals(opt, (int64_t)LAMBDA * GENS), "max evals");
    check(ng_opt_setup(opt), "setup");
  }
  int P;
  MPI_Comm_size(comm, &P);
  ng_engine_config cfg = {.groups = groups,
                          .bcast = mode,
                          .meta = {.program_version = "test",
                                   .command_line = "test_engine_stats",
                                   .config = "",
                                   .budget = "",
                                   .optimizer = "cmaes",
                                   .ranks = P,
                                   .groups = groups},
                          .history = r == 0 ? &out->hist : NULL};
  ng_engine_result res;
  out->status = ng_engine_run(comm, opt, obj, &cfg, &res);
  if (r == 0 && out->status == NG_OK) {
    const double *b = ng_opt_best(opt, &out->best_f);
    memcpy(out->best, b, obj->n * sizeof *b);
  }
  ng_opt_destroy(&opt);
}

/* Rank 0: whether b matches the reference a bit for bit (history columns, best point); msg says where not. */
static int same_outcome(const outcome *a, const outcome *b, size_t n, char *msg, size_t len) {
  if (a->hist.nrows != b->hist.nrows) {
    snprintf(msg, len, "%zu history rows, the reference has %zu", b->hist.nrows, a->hist.nrows);
    return 0;
  }
  for (size_t i = 0; i < a->hist.nrows; i++)
    if (!same_bits(a->hist.rows + i * NG_HISTORY_NCOLS, b->hist.rows + i * NG_HISTORY_NCOLS, HIST_COLS)) {
      snprintf(msg, len, "history row %zu differs: median %.17g vs %.17g", i,
               b->hist.rows[i * NG_HISTORY_NCOLS + NG_HIST_median],
               a->hist.rows[i * NG_HISTORY_NCOLS + NG_HIST_median]);
      return 0;
    }
  if (!same_bits(&a->best_f, &b->best_f, 1) || !same_bits(a->best, b->best, n)) {
    snprintf(msg, len, "best %.17g, the reference %.17g", b->best_f, a->best_f);
    return 0;
  }
  return 1;
}

/* Runs obj on rank 0 alone (the reference), then over all ranks in every layout, and agrees that each is
 * the reference's bits: what finish saw (t->fin, rank 0) and the outcome. Returns the layouts compared. */
static int compare_layouts(const char *name, const ng_objective *obj, toy *t, const double *x0) {
  outcome ref = {0}, got;
  buf ref_fin = {0};
  char msg[512] = "";
  if (rank == 0) {
    t->fin.len = 0;
    run(MPI_COMM_SELF, 1, NG_BCAST_EXPLICIT, obj, x0, &ref);
    check(ref.status, "reference run");
    push(&ref_fin, t->fin.v, t->fin.len);
  }
  int layouts = 0;
  for (int groups = 1; groups <= 2; groups++) {
    if (size % groups) continue;
    for (int m = 0; m < 2; m++) {
      ng_bcast_mode mode = m ? NG_BCAST_SEEDED : NG_BCAST_EXPLICIT;
      t->fin.len = 0;
      run(MPI_COMM_WORLD, groups, mode, obj, x0, &got);
      int ok = got.status == NG_OK;
      if (!ok) snprintf(msg, sizeof msg, "%s", ng_errmsg());
      if (ok && rank == 0) {
        ok = same_outcome(&ref, &got, obj->n, msg, sizeof msg);
        if (ok && (t->fin.len != ref_fin.len || !same_bits(t->fin.v, ref_fin.v, ref_fin.len))) {
          ok = 0;
          snprintf(msg, sizeof msg, "finish saw other stats (%zu doubles, the reference %zu)", t->fin.len,
                   ref_fin.len);
        }
      }
      char full[700];
      snprintf(full, sizeof full, "%s, P=%d G=%d %s: %s", name, size, groups, ng_bcast_name(mode), msg);
      ng_history_free(&got.hist);
      agree(ok, full);
      layouts++;
      if (rank == 0)
        printf("engine_stats: %s P=%d G=%d %s: bit-identical to one rank\n", name, size, groups,
               ng_bcast_name(mode));
    }
  }
  if (rank == 0) ng_history_free(&ref.hist);
  free(ref_fin.v);
  return layouts;
}

/* ---- tests -------------------------------------------------------------------------------------------- */

/* One rank alone: the stats finish receives are the chunks' stats added element-wise in chunk order; the
 * best loss is the least non-NaN finish; NaN candidates exist and never win. */
static void check_direct(toy *t, const ng_objective *obj, double best_f) {
  size_t ns = t->nstats ? t->nstats : 2, per = 2 + DIM, ncand = t->xs.len / per;
  assert_int_equal(ncand, LAMBDA * GENS);
  if (t->nstats) assert_int_equal(t->fin.len, ncand * (ns + 1));
  t->record = false;
  double least = INFINITY;
  size_t nans = 0;
  for (size_t i = 0; i < ncand; i++) {
    const double *e = t->xs.v + i * per, *x = e + 2;
    uint64_t gen = (uint64_t)e[0];
    size_t k = (size_t)e[1];
    assert_int_equal(k, i % LAMBDA); /* chunk 0 sees the candidates in order */
    double acc[NSTATS] = {0}, part[NSTATS];
    for (size_t c = 0; c < CHUNKS; c++) {
      memset(part, 0, sizeof part);
      if (t->nstats)
        check(obj->eval_stats(obj->ctx, x, gen, k, c, part), "eval_stats");
      else
        check(obj->eval(obj->ctx, x, gen, k, c, &part[0], &part[1]), "eval");
      for (size_t j = 0; j < ns; j++)
        acc[j] += part[j];
    }
    double f;
    if (t->nstats) {
      const double *rec = t->fin.v + i * (ns + 1);
      for (size_t j = 0; j < ns; j++)
        if (!same_bits(&rec[j], &acc[j], 1))
          fail_msg("candidate %zu of generation %llu: finish saw stats[%zu] %a, chunk order gives %a", k,
                   (unsigned long long)gen, j, rec[j], acc[j]);
      f = obj->finish(obj->ctx, acc);
      assert_memory_equal(&f, rec + ns, sizeof f);
    } else {
      f = acc[1] > 0 ? acc[0] / acc[1] : NAN;
    }
    if (isnan(f))
      nans++;
    else if (f < least)
      least = f;
  }
  t->record = true;
  assert_true(least == best_f);
  assert_int_equal(nans, t->nstats ? GENS : 0); /* candidate 3 of each generation (k % 5 == 3, k < 7) */
}

/* The order of the evaluations on this rank: chunk-outer, candidate-inner, in every generation. */
static void check_loop_order(const toy *t) {
  for (size_t i = 3; i < t->calls.len; i += 3) {
    const double *a = t->calls.v + i - 3, *b = t->calls.v + i;
    if (a[0] != b[0]) continue; /* a new generation */
    bool ok = b[2] > a[2] ? true : b[2] == a[2] && b[1] > a[1];
    if (!ok)
      fail_msg("generation %g: (candidate %g, chunk %g) after (candidate %g, chunk %g): not chunk-outer",
               b[0], b[1], b[2], a[1], a[2]);
  }
  assert_true(t->calls.len > 0);
}

static void test_toy_stats(void **state) {
  toy t;
  ng_objective obj = toy_objective(&t, NSTATS);
  double x0[DIM] = {0.3, -0.2, 0.5, 0.1, -0.4};
  if (size == 1) {
    outcome o;
    run(MPI_COMM_WORLD, 1, NG_BCAST_EXPLICIT, &obj, x0, &o);
    check(o.status, "run");
    assert_int_equal(o.hist.nrows, GENS);
    check_direct(&t, &obj, o.best_f);
    check_loop_order(&t);
    ng_history_free(&o.hist);
  }
  t.calls.len = t.xs.len = 0;
  int layouts = compare_layouts("toy stats", &obj, &t, x0);
  assert_int_equal(layouts, size % 2 ? 2 : 4);
  check_loop_order(&t); /* this rank's evaluations in the multi-rank runs */
  toy_free(&t);
}

/* The classic pair, through the same loop: sum / count in chunk order; the same on every layout. */
static void test_toy_pair(void **state) {
  toy t;
  ng_objective obj = toy_objective(&t, 0);
  double x0[DIM] = {-0.3, 0.2, 0.1, 0.6, 0.0};
  if (size == 1) {
    outcome o;
    run(MPI_COMM_WORLD, 1, NG_BCAST_EXPLICIT, &obj, x0, &o);
    check(o.status, "run");
    check_direct(&t, &obj, o.best_f);
    check_loop_order(&t);
    ng_history_free(&o.hist);
  }
  compare_layouts("toy pair", &obj, &t, x0);
  toy_free(&t);
}

/* The batch hook (eval_batch, as external evaluators use it): the engine calls it once per chunk with all
 * of the rank's candidates and never calls eval; the run is the bits of the per-candidate pair's, at one
 * rank and on every layout. */
static void test_toy_batch(void **state) {
  toy t;
  ng_objective pair = toy_objective(&t, 0);
  ng_objective batch = pair;
  batch.eval = toy_eval_counted;
  batch.eval_batch = toy_eval_batch;
  double x0[DIM] = {0.2, 0.4, -0.1, 0.3, -0.6};
  if (size == 1) {
    outcome a, b;
    run(MPI_COMM_WORLD, 1, NG_BCAST_EXPLICIT, &pair, x0, &a);
    check(a.status, "run with eval");
    t.calls.len = t.xs.len = 0;
    run(MPI_COMM_WORLD, 1, NG_BCAST_EXPLICIT, &batch, x0, &b);
    check(b.status, "run with eval_batch");
    char msg[512] = "";
    if (!same_outcome(&a, &b, DIM, msg, sizeof msg)) fail_msg("eval_batch against eval: %s", msg);
    assert_int_equal(t.batches, (size_t)GENS * CHUNKS); /* one call per (generation, chunk) */
    assert_int_equal(t.batch_rows, (size_t)GENS * CHUNKS * LAMBDA);
    check_loop_order(&t);
    ng_history_free(&a.hist);
    ng_history_free(&b.hist);
  }
  compare_layouts("toy batch", &batch, &t, x0);
  agree(t.singles == 0, "eval is never called when eval_batch is set");
  toy_free(&t);
}

/* The nn objective's balanced_error and macro_f1 (3 classes, 9 chunks of 23 rows, the last of 19; two
 * tensors: 11 dimensions): every layout gives the reference's bits, and at one rank the finish of the
 * summed counts is the loss of the whole set (ng_nn_objective_eval_stats over all chunks). */
static void test_nn_confusion(void **state) {
  char path[300];
  snprintf(path, sizeof path, "%s/cls.h5", tmpdir);
  ng_model *m = NULL;
  check(ng_model_from_spec("input 6\ndense fc1 8\ntanh\ndense fc2 3\n", &m), "spec");
  ng_model_init(m, 17);
  const char *names[] = {"fc2.bias", "fc1.bias"};
  for (int l = 0; l < 2; l++) {
    ng_nn_objective_config cfg = {.chunk_rows = 23,
                                  .batch = 8,
                                  .loss = l ? NG_NN_LOSS_MACRO_F1 : NG_NN_LOSS_BALANCED_ERROR,
                                  .tensors = names,
                                  .ntensors = 2};
    ng_nn_objective *o = NULL;
    check(ng_nn_objective_create(m, path, &cfg, &o), "create");
    toy t = {.record = true};
    ng_nn_objective_get(o, &t.inner);
    assert_int_equal(t.inner.nstats, 9);
    assert_int_equal(t.inner.nchunks, 9);
    t.nstats = t.inner.nstats;
    ng_objective obj = {.n = t.inner.n,
                        .nchunks = t.inner.nchunks,
                        .load = nn_load,
                        .ctx = &t,
                        .nstats = t.inner.nstats,
                        .eval_stats = nn_eval_stats,
                        .finish = nn_finish};
    double x0[11];
    assert_int_equal(obj.n, 11);
    ng_nn_objective_x0(o, x0);
    x0[0] += 1.0; /* a bias towards class 0, so that there is something to gain */
    compare_layouts(l ? "nn macro_f1" : "nn balanced_error", &obj, &t, x0);
    if (size == 1) { /* the best loss is that of the best x over the whole set, evaluated directly */
      outcome r;
      t.fin.len = 0;
      run(MPI_COMM_WORLD, 1, NG_BCAST_EXPLICIT, &obj, x0, &r);
      check(r.status, "run");
      double direct[9] = {0}, f;
      check(ng_nn_objective_load(o, 0, 9), "load");
      for (size_t c = 0; c < 9; c++)
        check(ng_nn_objective_eval_stats(o, r.best, c, direct), "eval_stats");
      f = ng_nn_objective_finish(o, direct);
      assert_true(f == r.best_f);
      double rows = 0;
      for (size_t k = 0; k < 9; k++)
        rows += direct[k];
      assert_true(rows == 203);
      ng_history_free(&r.hist);
    }
    toy_free(&t);
    ng_nn_objective_destroy(&o);
  }
  ng_model_destroy(&m);
}

static int noop_stats(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                      double *stats) {
  return NG_OK;
}

static double noop_finish(void *ctx, const double *stats) {
  return 0;
}

/* Objectives the engine refuses on every rank alike, before any work. */
static void test_refusals(void **state) {
  double x0[DIM] = {0};
  outcome o;
  ng_objective bad = {.n = DIM, .nchunks = 2, .nstats = 4, .finish = noop_finish};
  run(MPI_COMM_WORLD, 1, NG_BCAST_AUTO, &bad, x0, &o);
  assert_int_equal(o.status, NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "nstats 4 but no eval_stats"));
  bad = (ng_objective){.n = DIM, .nchunks = 2, .nstats = 4, .eval_stats = noop_stats};
  run(MPI_COMM_WORLD, 1, NG_BCAST_AUTO, &bad, x0, &o);
  assert_int_equal(o.status, NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "no finish"));
  bad = (ng_objective){.n = DIM, .nchunks = 2};
  run(MPI_COMM_WORLD, 1, NG_BCAST_AUTO, &bad, x0, &o);
  assert_int_equal(o.status, NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "no eval function"));
  bad = (ng_objective){.n = DIM, .nchunks = 0, .eval_stats = noop_stats, .finish = noop_finish, .nstats = 1};
  run(MPI_COMM_WORLD, 1, NG_BCAST_AUTO, &bad, x0, &o);
  assert_int_equal(o.status, NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "no data chunks"));
  /* 7 candidates x 2^28 chunks x 4 stats: more doubles than one gather carries; rank 0 says so */
  bad = (ng_objective){
      .n = DIM, .nchunks = (size_t)1 << 28, .nstats = 4, .eval_stats = noop_stats, .finish = noop_finish};
  run(MPI_COMM_WORLD, 1, NG_BCAST_AUTO, &bad, x0, &o);
  assert_int_not_equal(o.status, NG_OK);
  if (rank == 0) {
    assert_int_equal(o.status, NG_EINVAL);
    assert_non_null(strstr(ng_errmsg(), "exceed one MPI gather"));
  }
  ng_history_free(&o.hist);
}

/* A 3-class dataset of 203 rows (rank 0 writes it; every rank reads it). */
static int setup(void **state) {
  if (rank == 0) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nograd_test_engine_stats_XXXXXX");
    if (!mkdtemp(tmpdir)) tmpdir[0] = '\0';
    ng_data D;
    size_t dims[1] = {6};
    if (tmpdir[0] && ng_data_alloc(&D, 203, 1, dims, 0) == NG_OK) {
      ng_rng r;
      ng_rng_init(&r, 4, NG_RNG_INIT, 0, 0);
      for (size_t i = 0; i < 203; i++) {
        double z = 0;
        for (size_t j = 0; j < 6; j++) {
          D.x[i * 6 + j] = (float)ng_rng_normal(&r);
          z += (double)(j + 1) * D.x[i * 6 + j] / 6;
        }
        D.y[i] = z < -0.6 ? 0 : z < 0.4 ? 1 : 2;
      }
      D.classes = 3;
      char path[300];
      snprintf(path, sizeof path, "%s/cls.h5", tmpdir);
      if (ng_data_write(path, &D) != NG_OK) tmpdir[0] = '\0';
      ng_data_free(&D);
    }
  }
  MPI_Bcast(tmpdir, sizeof tmpdir, MPI_CHAR, 0, MPI_COMM_WORLD);
  return tmpdir[0] ? 0 : -1;
}

static int teardown(void **state) {
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank != 0) return 0;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_toy_stats),    cmocka_unit_test(test_toy_pair), cmocka_unit_test(test_toy_batch),
      cmocka_unit_test(test_nn_confusion), cmocka_unit_test(test_refusals),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  MPI_Finalize();
  return failed;
}
