/* The neural-network objective (src/nn/objective.c): its loss at the model's own parameters is `nograd
 * eval`'s (ng_app_eval and a direct forward pass), a chunk's (sum, count) is the same bits whichever range
 * was loaded, the tensor mapping, CMA-ES through the engine lowering the cross-entropy of a last-layer bias,
 * the confusion losses (balanced_error, macro_f1: stats summed over any chunking are the confusion counts
 * of the whole set, and their finish is ng_metric_from_confusion's), the thresholded prediction, a full
 * parameter vector (eval_params), CMA-ES through the engine lowering a balanced error, and the refusals. One
 * rank: MPI_Init in main. That the loss is independent of P follows from the chunk design, which the
 * per-chunk bit test checks: a rank's chunks are evaluated alone, and the engine adds them in chunk order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nograd/data.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/loss.h"
#include "nograd/nn.h"
#include "nograd/nn_objective.h"
#include "nograd/opt.h"
#include "nograd/rng.h"
#include "nograd/train.h"

#define ROWS 203
#define FEATURES 6
#define CLASSES 3

static char tmpdir[256];

static const char *tpath(const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

#define assert_contains(s, sub)                                                         \
  do {                                                                                  \
    if (!strstr((s), (sub))) fail_msg("expected '%s' in the message '%s'", (sub), (s)); \
  } while (0)

/* A dataset of `rows` rows: labels (classes > 0; a noisy linear rule) or one float target (classes 0). */
static void write_dataset(const char *path, size_t rows, int64_t classes, uint64_t seed) {
  ng_data D;
  size_t dims[1] = {FEATURES};
  check(ng_data_alloc(&D, rows, 1, dims, classes ? 0 : 1), "alloc");
  ng_rng r;
  ng_rng_init(&r, seed, NG_RNG_INIT, 0, 0);
  for (size_t i = 0; i < rows; i++) {
    double z = 0;
    for (size_t j = 0; j < FEATURES; j++) {
      D.x[i * FEATURES + j] = (float)ng_rng_normal(&r);
      z += (double)(j + 1) * D.x[i * FEATURES + j] / FEATURES;
    }
    if (classes) {
      int32_t label = z < -0.5 ? 0 : z < 0.5 ? 1 : 2;
      if (ng_rng_uniform(&r) < 0.1) label = (int32_t)(ng_rng_uniform(&r) * (double)classes);
      D.y[i] = label % (int32_t)classes;
    } else {
      D.yt[i] = (float)(z + 0.1 * ng_rng_normal(&r));
    }
  }
  D.classes = classes;
  check(ng_data_write(path, &D), "write dataset");
  ng_data_free(&D);
}

static ng_model *make_model(size_t outputs, uint64_t seed) {
  char spec[128];
  snprintf(spec, sizeof spec, "input %d\ndense fc1 8\ntanh\ndense fc2 %zu\n", FEATURES, outputs);
  ng_model *m = NULL;
  check(ng_model_from_spec(spec, &m), "spec");
  ng_model_init(m, seed);
  return m;
}

static int setup(void **state) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nograd_test_nn_objective_XXXXXX");
  if (!mkdtemp(tmpdir)) return -1;
  write_dataset(tpath("cls.h5"), ROWS, CLASSES, 7);
  write_dataset(tpath("bin.h5"), ROWS, 2, 8);
  write_dataset(tpath("reg.h5"), ROWS, 0, 9);
  return 0;
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd);
}

static ng_nn_objective *make_obj(const ng_model *m, const char *data, ng_nn_loss loss, size_t chunk,
                                 size_t batch) {
  ng_nn_objective_config cfg = {.chunk_rows = chunk, .batch = batch, .loss = loss, .threshold = 0.5};
  ng_nn_objective *o = NULL;
  check(ng_nn_objective_create(m, data, &cfg, &o), "create");
  return o;
}

/* The loss of x over all chunks (all loaded), added in chunk order as rank 0 does. */
static double total(ng_nn_objective *o, const double *x, double *count) {
  double sum = 0, c = 0;
  for (size_t k = 0; k < ng_nn_objective_chunks(o); k++) {
    double s = 0, n = 0;
    check(ng_nn_objective_eval(o, x, k, &s, &n), "eval");
    sum += s;
    c += n;
  }
  if (count) *count = c;
  return sum;
}

static void test_names(void **state) {
  ng_nn_loss l;
  check(ng_nn_loss_from_name("balanced_error", &l), "name");
  assert_int_equal(l, NG_NN_LOSS_BALANCED_ERROR);
  check(ng_nn_loss_from_name("macro_f1", &l), "name");
  assert_int_equal(l, NG_NN_LOSS_MACRO_F1);
  check(ng_nn_loss_from_name("cross_entropy", &l), "name");
  assert_int_equal(l, NG_NN_LOSS_CROSS_ENTROPY);
  check(ng_nn_loss_from_name("accuracy", &l), "name");
  assert_int_equal(l, NG_NN_LOSS_ERROR);
  check(ng_nn_loss_from_name("threshold_error", &l), "name");
  assert_int_equal(l, NG_NN_LOSS_THRESHOLD_ERROR);
  assert_int_equal(ng_nn_loss_from_name("hinge", &l), NG_EINVAL);
  assert_contains(ng_errmsg(), "hinge");
  assert_string_equal(ng_nn_loss_name(NG_NN_LOSS_MSE), "mse");
  assert_null(ng_nn_loss_name((ng_nn_loss)99));
}

/* At the model's own parameters: cross-entropy the same double as ng_app_eval (same batch and chunk rows) and
 * as a direct forward pass; error within 1e-12 of ng_app_eval's and of a confusion matrix. */
static void test_matches_eval(void **state) {
  ng_model *m = make_model(CLASSES, 3);
  check(ng_model_write(m, tpath("m.h5")), "write model");
  const size_t chunk = 50, batch = 16;
  ng_nn_objective *ce = make_obj(m, tpath("cls.h5"), NG_NN_LOSS_CROSS_ENTROPY, chunk, batch);
  ng_nn_objective *er = make_obj(m, tpath("cls.h5"), NG_NN_LOSS_ERROR, chunk, batch);
  assert_int_equal(ng_nn_objective_dim(ce), ng_model_nparams(m));
  assert_int_equal(ng_nn_objective_chunks(ce), 5);
  assert_int_equal(ng_nn_objective_batch(ce), 16);
  check(ng_nn_objective_load(ce, 0, 5), "load");
  check(ng_nn_objective_load(er, 0, 5), "load");
  double *x = malloc(ng_model_nparams(m) * sizeof *x);
  ng_nn_objective_x0(ce, x);
  double n_ce, n_er;
  double loss = total(ce, x, &n_ce) / n_ce, err = total(er, x, &n_er) / n_er;
  assert_true(n_ce == ROWS && n_er == ROWS);

  ng_eval_config ec = {.model = tpath("m.h5"), .data = tpath("cls.h5"), .batch = batch, .chunk_rows = chunk};
  ec.metrics[NG_METRIC_ERROR] = true;
  ng_eval_result res;
  check(ng_app_eval(MPI_COMM_WORLD, &ec, &res), "ng_app_eval");
  assert_true(loss == res.loss);
  assert_true(fabs(err - res.metrics[NG_METRIC_ERROR]) <= 1e-12 * fabs(res.metrics[NG_METRIC_ERROR]));

  /* directly: forward the whole set with the same split, in one process */
  ng_data D;
  check(ng_data_load(tpath("cls.h5"), &D), "load data");
  ng_nn_work *w = NULL;
  check(ng_nn_work_create(m, batch, false, &w), "work");
  ng_confusion *conf = NULL;
  check(ng_confusion_create(CLASSES, &conf), "confusion");
  double ref = 0;
  for (size_t k = 0; k * chunk < ROWS; k++) {
    size_t c0 = k * chunk, end = (k + 1) * chunk;
    if (end > ROWS) end = ROWS;
    double s = 0;
    for (size_t r = c0; r < end; r += batch) {
      size_t b = end - r < batch ? end - r : batch;
      const float *out;
      check(ng_nn_forward(m, ng_model_params_const(m), w, D.x + r * FEATURES, b, &out), "forward");
      s += ng_loss_cross_entropy(out, D.y + r, b, CLASSES, NULL);
      check(ng_confusion_add(conf, out, D.y + r, b), "confusion add");
    }
    ref += s;
  }
  assert_true(loss == ref / ROWS);
  double ref_err = ng_metric_from_confusion(conf, NG_METRIC_ERROR);
  assert_true(fabs(err - ref_err) <= 1e-12 * ref_err);
  assert_true(err > 0 && err < 1);
  ng_confusion_destroy(&conf);
  ng_nn_work_destroy(&w);
  ng_data_free(&D);
  free(x);
  ng_nn_objective_destroy(&ce);
  ng_nn_objective_destroy(&er);
  ng_model_destroy(&m);
}

/* mse on targets and threshold_error on binary labels against ng_app_eval / a direct count. */
static void test_mse_threshold(void **state) {
  ng_model *m = make_model(1, 4);
  check(ng_model_write(m, tpath("reg_model.h5")), "write model");
  ng_nn_objective *o = make_obj(m, tpath("reg.h5"), NG_NN_LOSS_MSE, 64, 0);
  assert_int_equal(ng_nn_objective_batch(o), 64);
  check(ng_nn_objective_load(o, 0, ng_nn_objective_chunks(o)), "load");
  double *x = malloc(ng_model_nparams(m) * sizeof *x), n;
  ng_nn_objective_x0(o, x);
  double mse = total(o, x, &n) / n;
  ng_eval_config ec = {
      .model = tpath("reg_model.h5"), .data = tpath("reg.h5"), .batch = 64, .chunk_rows = 64};
  ng_eval_result res;
  check(ng_app_eval(MPI_COMM_WORLD, &ec, &res), "ng_app_eval");
  assert_true(res.targets);
  assert_true(mse == res.loss);
  free(x);
  ng_nn_objective_destroy(&o);
  ng_model_destroy(&m);

  m = make_model(2, 5);
  check(ng_model_write(m, tpath("bin_model.h5")), "write model");
  o = make_obj(m, tpath("bin.h5"), NG_NN_LOSS_THRESHOLD_ERROR, 64, 32);
  check(ng_nn_objective_load(o, 0, ng_nn_objective_chunks(o)), "load");
  x = malloc(ng_model_nparams(m) * sizeof *x);
  ng_nn_objective_x0(o, x);
  double te = total(o, x, &n) / n;
  ng_eval_config bc = {.model = tpath("bin_model.h5"),
                       .data = tpath("bin.h5"),
                       .batch = 32,
                       .chunk_rows = 64,
                       .threshold = 0.5};
  bc.metrics[NG_EVAL_THRESHOLD_ERROR] = true;
  check(ng_app_eval(MPI_COMM_WORLD, &bc, &res), "ng_app_eval");
  assert_true(fabs(te - res.metrics[NG_EVAL_THRESHOLD_ERROR]) <=
              1e-12 * res.metrics[NG_EVAL_THRESHOLD_ERROR]);
  free(x);
  ng_nn_objective_destroy(&o);
  ng_model_destroy(&m);
}

/* A chunk's (sum, count) is the same bits whether loaded alone, with its neighbours, or as the whole set;
 * eval adds to *sum and *count. */
static void test_chunks_identical(void **state) {
  ng_model *m = make_model(CLASSES, 11);
  ng_nn_objective *a = make_obj(m, tpath("cls.h5"), NG_NN_LOSS_CROSS_ENTROPY, 30, 8);
  ng_nn_objective *b = make_obj(m, tpath("cls.h5"), NG_NN_LOSS_CROSS_ENTROPY, 30, 8);
  size_t nchunks = ng_nn_objective_chunks(a), n = ng_nn_objective_dim(a);
  assert_int_equal(nchunks, 7);
  double *x = malloc(n * sizeof *x);
  ng_rng r;
  ng_rng_init(&r, 5, NG_RNG_INIT, 1, 0);
  for (size_t i = 0; i < n; i++)
    x[i] = 0.5 * ng_rng_normal(&r);
  check(ng_nn_objective_load(a, 0, nchunks), "load all");
  for (size_t first = 0; first < nchunks; first++)
    for (size_t count = 1; first + count <= nchunks; count += 2) {
      check(ng_nn_objective_load(b, first, count), "load some");
      for (size_t k = first; k < first + count; k++) {
        double sa = 0, ca = 0, sb = 0, cb = 0;
        check(ng_nn_objective_eval(a, x, k, &sa, &ca), "eval a");
        check(ng_nn_objective_eval(b, x, k, &sb, &cb), "eval b");
        assert_memory_equal(&sa, &sb, sizeof sa);
        assert_memory_equal(&ca, &cb, sizeof ca);
        assert_true(ca == (k + 1 < nchunks ? 30 : ROWS - 30 * (nchunks - 1)));
      }
    }
  /* eval adds */
  double s = 1.0, c = 2.0, s0 = 0, c0 = 0;
  check(ng_nn_objective_eval(a, x, 3, &s0, &c0), "eval");
  check(ng_nn_objective_eval(a, x, 3, &s, &c), "eval");
  assert_true(s == 1.0 + s0 && c == 2.0 + c0);
  /* an unloaded chunk, then nothing loaded, then a range beyond the chunks */
  check(ng_nn_objective_load(b, 2, 2), "load");
  assert_int_equal(ng_nn_objective_eval(b, x, 4, &s, &c), NG_EINVAL);
  assert_contains(ng_errmsg(), "chunk 4");
  assert_contains(ng_errmsg(), "loaded: chunks 2..3");
  check(ng_nn_objective_load(b, 0, 0), "unload");
  assert_int_equal(ng_nn_objective_eval(b, x, 0, &s, &c), NG_EINVAL);
  assert_contains(ng_errmsg(), "no chunks are loaded");
  assert_int_equal(ng_nn_objective_load(b, 5, 3), NG_EINVAL);
  free(x);
  ng_nn_objective_destroy(&a);
  ng_nn_objective_destroy(&b);
  ng_model_destroy(&m);
}

/* Named tensors: x fills them in the order given, the rest keeps the model's values; the loss at x0 is the
 * model's. */
static void test_tensor_mapping(void **state) {
  ng_model *m = make_model(CLASSES, 12);
  const char *names[] = {"fc2.bias", "fc1.weight"};
  ng_nn_objective_config cfg = {
      .chunk_rows = 64, .loss = NG_NN_LOSS_CROSS_ENTROPY, .tensors = names, .ntensors = 2};
  ng_nn_objective *o = NULL, *all = make_obj(m, tpath("cls.h5"), NG_NN_LOSS_CROSS_ENTROPY, 64, 0);
  check(ng_nn_objective_create(m, tpath("cls.h5"), &cfg, &o), "create");
  assert_int_equal(ng_nn_objective_dim(o), CLASSES + 8 * FEATURES);
  size_t np = ng_model_nparams(m), off_b, off_w, nd, sh[4];
  check(ng_model_find(m, "fc2.bias", &off_b, &nd, sh), "find");
  check(ng_model_find(m, "fc1.weight", &off_w, &nd, sh), "find");
  double x[CLASSES + 8 * FEATURES];
  ng_nn_objective_x0(o, x);
  const float *p = ng_model_params_const(m);
  for (size_t i = 0; i < CLASSES; i++)
    assert_true(x[i] == p[off_b + i]);
  for (size_t i = 0; i < 8 * FEATURES; i++)
    assert_true(x[CLASSES + i] == p[off_w + i]);
  for (size_t i = 0; i < CLASSES + 8 * FEATURES; i++)
    x[i] = (double)i;
  float *q = malloc(np * sizeof *q);
  ng_nn_objective_params(o, x, q);
  for (size_t i = 0; i < np; i++) {
    float want = p[i];
    if (i >= off_b && i < off_b + CLASSES) want = (float)(i - off_b);
    if (i >= off_w && i < off_w + 8 * FEATURES) want = (float)(CLASSES + i - off_w);
    assert_true(q[i] == want);
  }
  /* the loss at x0 equals the all-parameter objective's at the model's parameters, and a change of x is seen
   * (and undone: the scratch vector holds no stale values of an earlier x) */
  check(ng_nn_objective_load(o, 0, ng_nn_objective_chunks(o)), "load");
  check(ng_nn_objective_load(all, 0, ng_nn_objective_chunks(all)), "load");
  double *xa = malloc(np * sizeof *xa);
  ng_nn_objective_x0(all, xa);
  ng_nn_objective_x0(o, x);
  double f0 = total(o, x, NULL);
  assert_true(f0 == total(all, xa, NULL));
  x[0] += 1.0;
  assert_true(total(o, x, NULL) != f0);
  x[0] -= 1.0;
  assert_true(total(o, x, NULL) == f0);
  free(xa);
  free(q);
  ng_nn_objective_destroy(&o);
  ng_nn_objective_destroy(&all);
  ng_model_destroy(&m);
}

/* CMA-ES through the engine (one rank) on the last layer's bias lowers the cross-entropy of a random model;
 * the best loss the engine reports is the objective's at the best x. */
static void test_engine_cmaes(void **state) {
  ng_model *m = make_model(CLASSES, 21);
  /* a bad bias to start from, so that there is something to gain */
  size_t off, nd, sh[4];
  check(ng_model_find(m, "fc2.bias", &off, &nd, sh), "find");
  ng_model_params(m)[off] = 3.0f;
  const char *names[] = {"fc2.bias"};
  ng_nn_objective_config cfg = {
      .chunk_rows = 40, .batch = 16, .loss = NG_NN_LOSS_CROSS_ENTROPY, .tensors = names, .ntensors = 1};
  ng_nn_objective *o = NULL;
  check(ng_nn_objective_create(m, tpath("cls.h5"), &cfg, &o), "create");
  ng_objective obj;
  ng_nn_objective_get(o, &obj);
  assert_int_equal(obj.n, CLASSES);
  assert_int_equal(obj.nchunks, 6);
  double x0[CLASSES], n;
  ng_nn_objective_x0(o, x0);
  check(ng_nn_objective_load(o, 0, obj.nchunks), "load");
  double f0 = total(o, x0, &n) / n;

  ng_opt *opt = NULL;
  check(ng_opt_create("cmaes", CLASSES, &opt), "opt");
  check(ng_opt_set_x0(opt, x0), "x0");
  check(ng_opt_set_sigma0(opt, 1.0), "sigma0");
  check(ng_opt_set_seed(opt, 3), "seed");
  check(ng_opt_set_max_evals(opt, 300), "max evals");
  check(ng_opt_setup(opt), "setup");
  ng_history hist = {0};
  ng_engine_config ec = {.groups = 1,
                         .meta = {.program_version = "test",
                                  .command_line = "test_nn_objective",
                                  .config = "",
                                  .budget = "",
                                  .optimizer = "cmaes",
                                  .ranks = 1,
                                  .groups = 1},
                         .history = &hist};
  ng_engine_result res;
  check(ng_engine_run(MPI_COMM_WORLD, opt, &obj, &ec, &res), "engine");
  double fbest;
  const double *xb = ng_opt_best(opt, &fbest);
  double xbest[CLASSES];
  memcpy(xbest, xb, sizeof xbest);
  assert_true(fbest < f0 - 0.05);
  assert_true(fbest == total(o, xbest, NULL) / n); /* the engine adds chunks in order, as total() does */
  ng_history_free(&hist);
  ng_opt_destroy(&opt);
  ng_nn_objective_destroy(&o);
  ng_model_destroy(&m);
}

/* The confusion counts of params on the whole dataset, forwarded directly in one pass of batches of 16 from
 * row 0 (no chunks): the argmax, or with thr >= 0 (binary) class 1 when softmax[1] >= thr, written out here
 * from the definition. */
static void direct_confusion(const ng_model *m, const float *params, const char *data, double thr,
                             ng_confusion *conf) {
  ng_data D;
  check(ng_data_load(data, &D), "load data");
  size_t C = ng_model_output_size(m), batch = 16;
  ng_nn_work *w = NULL;
  check(ng_nn_work_create(m, batch, false, &w), "work");
  ng_confusion_clear(conf);
  int64_t *counts = ng_confusion_counts(conf);
  for (size_t r = 0; r < D.n; r += batch) {
    size_t b = D.n - r < batch ? D.n - r : batch;
    const float *out;
    check(ng_nn_forward(m, params, w, D.x + r * D.d, b, &out), "forward");
    if (thr < 0) {
      check(ng_confusion_add(conf, out, D.y + r, b), "confusion add");
      continue;
    }
    for (size_t i = 0; i < b; i++) {
      double p1 = 1.0 / (1.0 + exp((double)out[2 * i] - (double)out[2 * i + 1]));
      counts[D.y[r + i] * 2 + (p1 >= thr ? 1 : 0)]++;
    }
  }
  assert_int_equal(C, ng_confusion_classes(conf));
  ng_nn_work_destroy(&w);
  ng_data_free(&D);
}

/* The stats of x summed over all chunks in chunk order through the engine's view (eval_stats), as rank 0
 * does; nstats from the view. */
static void stats_total(ng_nn_objective *o, const double *x, double *stats) {
  ng_objective obj;
  ng_nn_objective_get(o, &obj);
  size_t ns = ng_nn_objective_nstats(o);
  double *part = malloc(ns * sizeof *part);
  memset(stats, 0, ns * sizeof *stats);
  for (size_t c = 0; c < obj.nchunks; c++) {
    memset(part, 0, ns * sizeof *part);
    check(obj.eval_stats(obj.ctx, x, 0, 0, c, part), "eval_stats");
    for (size_t j = 0; j < ns; j++)
      stats[j] += part[j];
  }
  free(part);
}

/* balanced_error and macro_f1 over several chunkings and batches: the summed stats are exactly the confusion
 * counts of a direct pass over the whole set, and the loss is ng_metric_from_confusion's of them (1 - the
 * metric for macro_f1), at the model's parameters and at a random candidate. */
static void test_confusion_losses(void **state) {
  ng_model *m = make_model(CLASSES, 31);
  size_t np = ng_model_nparams(m);
  double *x = malloc(np * sizeof *x);
  float *params = malloc(np * sizeof *params);
  ng_confusion *ref = NULL;
  check(ng_confusion_create(CLASSES, &ref), "confusion");
  const size_t chunkings[][2] = {{7, 16}, {50, 16}, {64, 0}, {203, 203}, {300, 32}, {1, 1}};
  for (int which = 0; which < 2; which++) {
    ng_rng r;
    ng_rng_init(&r, 9, NG_RNG_INIT, (uint64_t)which, 0);
    for (size_t i = 0; i < np; i++)
      x[i] = which == 0 ? (double)ng_model_params_const(m)[i] : 0.8 * ng_rng_normal(&r);
    for (size_t i = 0; i < np; i++)
      params[i] = (float)x[i];
    direct_confusion(m, params, tpath("cls.h5"), -1, ref);
    const int64_t *want = ng_confusion_counts_const(ref);
    double be = ng_metric_from_confusion(ref, NG_METRIC_BALANCED_ERROR);
    double f1 = ng_metric_from_confusion(ref, NG_METRIC_MACRO_F1);
    assert_true(be > 0 && be < 1 && f1 > 0 && f1 < 1);
    assert_true(be != ng_metric_from_confusion(ref, NG_METRIC_ERROR)); /* another metric than the error */
    for (size_t t = 0; t < sizeof chunkings / sizeof chunkings[0]; t++)
      for (int l = 0; l < 2; l++) {
        ng_nn_loss loss = l ? NG_NN_LOSS_MACRO_F1 : NG_NN_LOSS_BALANCED_ERROR;
        ng_nn_objective *o = make_obj(m, tpath("cls.h5"), loss, chunkings[t][0], chunkings[t][1]);
        assert_int_equal(ng_nn_objective_nstats(o), CLASSES * CLASSES);
        ng_objective obj;
        ng_nn_objective_get(o, &obj);
        assert_int_equal(obj.nstats, CLASSES * CLASSES);
        assert_null(obj.eval);
        assert_non_null(obj.eval_stats);
        assert_non_null(obj.finish);
        check(ng_nn_objective_load(o, 0, ng_nn_objective_chunks(o)), "load");
        double stats[CLASSES * CLASSES];
        stats_total(o, x, stats);
        for (size_t k = 0; k < (size_t)CLASSES * CLASSES; k++)
          if (stats[k] != (double)want[k])
            fail_msg("chunks of %zu rows, %s: count [%zu][%zu] is %g, directly %lld", chunkings[t][0],
                     ng_nn_loss_name(loss), k / CLASSES, k % CLASSES, stats[k], (long long)want[k]);
        double f = obj.finish(obj.ctx, stats);
        assert_true(f == ng_nn_objective_finish(o, stats));
        assert_true(l ? f == 1.0 - f1 : f == be);
        /* the pair interface refuses a loss that is not a sum */
        double sum = 0, count = 0;
        assert_int_equal(ng_nn_objective_eval(o, x, 0, &sum, &count), NG_EINVAL);
        assert_contains(ng_errmsg(), "eval_stats");
        ng_nn_objective_destroy(&o);
      }
  }
  /* finish: no rows is NaN, and so are stats that are not counts */
  ng_nn_objective *o = make_obj(m, tpath("cls.h5"), NG_NN_LOSS_BALANCED_ERROR, 64, 0);
  double zero[CLASSES * CLASSES] = {0}, bad[CLASSES * CLASSES] = {0};
  assert_true(isnan(ng_nn_objective_finish(o, zero)));
  bad[0] = 2.5;
  assert_true(isnan(ng_nn_objective_finish(o, bad)));
  bad[0] = -1;
  assert_true(isnan(ng_nn_objective_finish(o, bad)));
  /* a perfect matrix: no error, macro-F1 1 (loss 0) */
  double diag[CLASSES * CLASSES] = {0};
  for (size_t k = 0; k < CLASSES; k++)
    diag[k * CLASSES + k] = 10.0 + (double)k;
  assert_true(ng_nn_objective_finish(o, diag) == 0.0);
  ng_nn_objective_destroy(&o);
  o = make_obj(m, tpath("cls.h5"), NG_NN_LOSS_MACRO_F1, 64, 0);
  assert_true(ng_nn_objective_finish(o, diag) == 0.0);
  ng_nn_objective_destroy(&o);
  ng_confusion_destroy(&ref);
  free(params);
  free(x);
  ng_model_destroy(&m);
}

/* use_threshold on a binary model: class 1 when softmax[1] >= threshold (a direct count); 0 predicts class 1
 * everywhere (balanced error exactly 0.5); error with use_threshold is threshold_error's count; without
 * use_threshold (a zero-initialized config, threshold 0) the prediction stays the argmax. */
static void test_thresholded(void **state) {
  ng_model *m = make_model(2, 32);
  size_t np = ng_model_nparams(m);
  const float *p = ng_model_params_const(m);
  const char *bin = tpath("bin.h5");
  ng_confusion *ref = NULL;
  check(ng_confusion_create(2, &ref), "confusion");
  double *x = malloc(np * sizeof *x);
  for (size_t i = 0; i < np; i++)
    x[i] = p[i];
  ng_nn_objective_config cfg = {.chunk_rows = 40, .batch = 8, .loss = NG_NN_LOSS_BALANCED_ERROR};
  ng_nn_objective *o = NULL;
  check(ng_nn_objective_create(m, bin, &cfg, &o), "create argmax");
  check(ng_nn_objective_load(o, 0, ng_nn_objective_chunks(o)), "load");
  double stats[4];
  stats_total(o, x, stats);
  direct_confusion(m, p, bin, -1, ref);
  for (size_t k = 0; k < 4; k++)
    assert_true(stats[k] == (double)ng_confusion_counts_const(ref)[k]);
  ng_nn_objective_destroy(&o);

  const double thresholds[] = {0.3, 0.5, 0.62, 0.0};
  for (size_t t = 0; t < 4; t++) {
    cfg.use_threshold = true;
    cfg.threshold = thresholds[t];
    check(ng_nn_objective_create(m, bin, &cfg, &o), "create thresholded");
    check(ng_nn_objective_load(o, 0, ng_nn_objective_chunks(o)), "load");
    stats_total(o, x, stats);
    direct_confusion(m, p, bin, thresholds[t], ref);
    const int64_t *want = ng_confusion_counts_const(ref);
    for (size_t k = 0; k < 4; k++)
      if (stats[k] != (double)want[k])
        fail_msg("threshold %g: count [%zu][%zu] is %g, directly %lld", thresholds[t], k / 2, k % 2, stats[k],
                 (long long)want[k]);
    double be = ng_nn_objective_finish(o, stats);
    assert_true(be == ng_metric_from_confusion(ref, NG_METRIC_BALANCED_ERROR));
    if (thresholds[t] == 0.0) assert_true(be == 0.5 && stats[0] == 0 && stats[2] == 0);
    ng_nn_objective_destroy(&o);
    /* error with the threshold is threshold_error's count */
    ng_nn_objective_config ce = cfg, ct = cfg;
    ce.loss = NG_NN_LOSS_ERROR;
    ct.loss = NG_NN_LOSS_THRESHOLD_ERROR;
    ct.use_threshold = false;
    ng_nn_objective *oe = NULL, *ot = NULL;
    check(ng_nn_objective_create(m, bin, &ce, &oe), "create error");
    check(ng_nn_objective_create(m, bin, &ct, &ot), "create threshold_error");
    check(ng_nn_objective_load(oe, 0, ng_nn_objective_chunks(oe)), "load");
    check(ng_nn_objective_load(ot, 0, ng_nn_objective_chunks(ot)), "load");
    double ne, nt, se = total(oe, x, &ne), st = total(ot, x, &nt);
    assert_true(se == st && ne == nt && ne == ROWS);
    assert_true(se == (double)(want[1] + want[2]));
    ng_nn_objective_destroy(&oe);
    ng_nn_objective_destroy(&ot);
  }
  ng_confusion_destroy(&ref);
  free(x);
  ng_model_destroy(&m);
}

/* eval_params: the model's own parameter vector gives the bits of eval_stats at x0 (cross_entropy and
 * balanced_error, all parameters or a tensor list), and adds to stats; a vector that differs from the model
 * in unmapped parameters is evaluated as given, and the next candidate evaluation sees the model's values
 * again; a threshold override is a configured threshold for this call; the refusals. */
static void test_eval_params(void **state) {
  ng_model *m = make_model(CLASSES, 33);
  size_t np = ng_model_nparams(m), nch = 4;
  const float *p = ng_model_params_const(m);
  const char *names[] = {"fc2.bias"};
  for (int l = 0; l < 2; l++)
    for (int mapped = 0; mapped < 2; mapped++) {
      ng_nn_objective_config cfg = {.chunk_rows = 60,
                                    .batch = 16,
                                    .loss = l ? NG_NN_LOSS_BALANCED_ERROR : NG_NN_LOSS_CROSS_ENTROPY,
                                    .tensors = mapped ? names : NULL,
                                    .ntensors = mapped ? 1 : 0};
      ng_nn_objective *o = NULL;
      check(ng_nn_objective_create(m, tpath("cls.h5"), &cfg, &o), "create");
      assert_int_equal(ng_nn_objective_chunks(o), nch);
      check(ng_nn_objective_load(o, 0, nch), "load");
      size_t n = ng_nn_objective_dim(o), ns = ng_nn_objective_nstats(o);
      assert_int_equal(ns, l ? CLASSES * CLASSES : 2);
      double *x0 = malloc(n * sizeof *x0), a[CLASSES * CLASSES], b[CLASSES * CLASSES];
      ng_nn_objective_x0(o, x0);
      for (size_t c = 0; c < nch; c++) {
        for (size_t j = 0; j < ns; j++)
          a[j] = b[j] = 1.0 + (double)j; /* both add */
        check(ng_nn_objective_eval_stats(o, x0, c, a), "eval_stats");
        check(ng_nn_objective_eval_params(o, p, NAN, c, b), "eval_params");
        assert_memory_equal(a, b, ns * sizeof *a);
        assert_true(a[ns - 1] > ns); /* something was added */
      }
      /* a whole vector with another first weight (unmapped when only fc2.bias is) */
      float *q = malloc(np * sizeof *q);
      memcpy(q, p, np * sizeof *q);
      q[0] += 2.0f;
      double f0[CLASSES * CLASSES] = {0}, fq[CLASSES * CLASSES] = {0}, fx[CLASSES * CLASSES] = {0};
      check(ng_nn_objective_eval_stats(o, x0, 1, f0), "eval_stats");
      check(ng_nn_objective_eval_params(o, q, NAN, 1, fq), "eval_params");
      check(ng_nn_objective_eval_stats(o, x0, 1, fx), "eval_stats after eval_params");
      assert_memory_equal(f0, fx, ns * sizeof *f0);
      if (!l) assert_true(fq[0] != f0[0]);
      /* refusals: an override for a 3-class model or for cross_entropy, an unloaded chunk */
      assert_int_equal(ng_nn_objective_eval_params(o, p, 0.5, 0, fq), NG_EINVAL);
      assert_contains(ng_errmsg(), l ? "binary" : "not to cross_entropy");
      assert_int_equal(ng_nn_objective_eval_params(o, p, NAN, nch, fq), NG_EINVAL);
      assert_contains(ng_errmsg(), "not loaded");
      free(q);
      free(x0);
      ng_nn_objective_destroy(&o);
    }
  ng_model_destroy(&m);

  /* the override on a binary model: threshold_error at 0.3 by override equals one configured at 0.3;
   * balanced_error at 0 by override predicts class 1 everywhere */
  m = make_model(2, 34);
  p = ng_model_params_const(m);
  ng_nn_objective *a = make_obj(m, tpath("bin.h5"), NG_NN_LOSS_THRESHOLD_ERROR, 64, 0); /* threshold 0.5 */
  ng_nn_objective_config c3 = {.chunk_rows = 64, .loss = NG_NN_LOSS_THRESHOLD_ERROR, .threshold = 0.3};
  ng_nn_objective *b = NULL, *be = make_obj(m, tpath("bin.h5"), NG_NN_LOSS_BALANCED_ERROR, 64, 0);
  check(ng_nn_objective_create(m, tpath("bin.h5"), &c3, &b), "create");
  check(ng_nn_objective_load(a, 0, ng_nn_objective_chunks(a)), "load");
  check(ng_nn_objective_load(b, 0, ng_nn_objective_chunks(b)), "load");
  check(ng_nn_objective_load(be, 0, ng_nn_objective_chunks(be)), "load");
  double sa[2] = {0}, sb[2] = {0}, s5[2] = {0}, sbe[4] = {0};
  for (size_t c = 0; c < ng_nn_objective_chunks(a); c++) {
    check(ng_nn_objective_eval_params(a, p, 0.3, c, sa), "override");
    check(ng_nn_objective_eval_params(b, p, NAN, c, sb), "configured");
    check(ng_nn_objective_eval_params(a, p, NAN, c, s5), "configured 0.5");
    check(ng_nn_objective_eval_params(be, p, 0.0, c, sbe), "override 0");
  }
  assert_true(sa[0] == sb[0] && sa[1] == sb[1] && sa[1] == ROWS);
  assert_true(sa[0] != s5[0]);
  assert_true(ng_nn_objective_finish(be, sbe) == 0.5 && sbe[0] == 0 && sbe[2] == 0);
  assert_int_equal(ng_nn_objective_eval_params(a, p, 1.5, 0, sa), NG_EINVAL);
  assert_contains(ng_errmsg(), "[0, 1]");
  ng_nn_objective_destroy(&a);
  ng_nn_objective_destroy(&b);
  ng_nn_objective_destroy(&be);
  ng_model_destroy(&m);
}

/* CMA-ES through the engine (one rank) on the last layer's bias lowers the balanced error of a model whose
 * bias favours class 0; the best loss is finish of the stats of the best x summed in chunk order. */
static void test_engine_balanced(void **state) {
  ng_model *m = make_model(CLASSES, 35);
  size_t off, nd, sh[4];
  check(ng_model_find(m, "fc2.bias", &off, &nd, sh), "find");
  double xinit[CLASSES];
  for (size_t i = 0; i < CLASSES; i++)
    xinit[i] = ng_model_params(m)[off + i];
  ng_model_params(m)[off] = 1.5f;
  const char *names[] = {"fc2.bias"};
  ng_nn_objective_config cfg = {
      .chunk_rows = 40, .batch = 16, .loss = NG_NN_LOSS_BALANCED_ERROR, .tensors = names, .ntensors = 1};
  ng_nn_objective *o = NULL;
  check(ng_nn_objective_create(m, tpath("cls.h5"), &cfg, &o), "create");
  ng_objective obj;
  ng_nn_objective_get(o, &obj);
  double x0[CLASSES], stats[CLASSES * CLASSES];
  ng_nn_objective_x0(o, x0);
  check(ng_nn_objective_load(o, 0, obj.nchunks), "load");
  stats_total(o, x0, stats);
  double f0 = ng_nn_objective_finish(o, stats);
  assert_true(f0 > 0.5);

  ng_opt *opt = NULL;
  check(ng_opt_create("cmaes", CLASSES, &opt), "opt");
  check(ng_opt_set_x0(opt, x0), "x0");
  check(ng_opt_set_sigma0(opt, 2.0), "sigma0");
  check(ng_opt_set_seed(opt, 5), "seed");
  check(ng_opt_set_max_evals(opt, 300), "max evals");
  check(ng_opt_setup(opt), "setup");
  ng_engine_config ec = {.groups = 1,
                         .meta = {.program_version = "test",
                                  .command_line = "test_nn_objective",
                                  .config = "",
                                  .budget = "",
                                  .optimizer = "cmaes",
                                  .ranks = 1,
                                  .groups = 1}};
  ng_engine_result res;
  check(ng_engine_run(MPI_COMM_WORLD, opt, &obj, &ec, &res), "engine");
  double fbest, xbest[CLASSES];
  memcpy(xbest, ng_opt_best(opt, &fbest), sizeof xbest);
  stats_total(o, xinit, stats);
  double finit = ng_nn_objective_finish(o, stats);
  if (!(fbest < f0 - 0.05 && fbest <= finit))
    fail_msg("balanced error %g at x0 (%g at the initial bias), best %g", f0, finit, fbest);
  stats_total(o, xbest, stats);
  assert_true(fbest == ng_nn_objective_finish(o, stats));
  ng_opt_destroy(&opt);
  ng_nn_objective_destroy(&o);
  ng_model_destroy(&m);
}

static void expect_create_error(const ng_model *m, const char *data, ng_nn_objective_config cfg, int status,
                                const char *msg1, const char *msg2) {
  ng_nn_objective *o = NULL;
  assert_int_equal(ng_nn_objective_create(m, data, &cfg, &o), status);
  assert_null(o);
  assert_contains(ng_errmsg(), msg1);
  if (msg2) assert_contains(ng_errmsg(), msg2);
}

static void test_refusals(void **state) {
  ng_model *m = make_model(CLASSES, 13);
  const char *cls = tpath("cls.h5"), *reg = tpath("reg.h5");
  ng_nn_objective_config base = {.chunk_rows = 32, .loss = NG_NN_LOSS_CROSS_ENTROPY};
  ng_nn_objective_config c = base;
  c.loss = NG_NN_LOSS_BALANCED_ERROR;
  c.use_threshold = true;
  c.threshold = 0.5;
  expect_create_error(m, cls, c, NG_EINVAL, "use_threshold", "3 outputs"); /* not binary */
  c.loss = NG_NN_LOSS_CROSS_ENTROPY;
  expect_create_error(m, cls, c, NG_EINVAL, "use_threshold", "not to cross_entropy");
  const char *bad[] = {"fc2.bias", "fc9.weight"};
  c = base;
  c.tensors = bad;
  c.ntensors = 2;
  expect_create_error(m, cls, c, NG_ENOTFOUND, "fc9.weight", NULL);
  const char *twice[] = {"fc2.bias", "fc2.bias"};
  c.tensors = twice;
  expect_create_error(m, cls, c, NG_EINVAL, "listed twice", NULL);
  c = base;
  c.loss = NG_NN_LOSS_MSE;
  expect_create_error(m, cls, c, NG_EINVAL, "mse", "class labels");
  c = base;
  c.loss = NG_NN_LOSS_THRESHOLD_ERROR;
  expect_create_error(m, cls, c, NG_EINVAL, "binary", NULL);
  c = base;
  c.chunk_rows = 0;
  expect_create_error(m, cls, c, NG_EINVAL, "chunk rows", NULL);
  c = base;
  expect_create_error(m, reg, c, NG_EMISMATCH, "outputs", NULL); /* 3 outputs for 1 target */
  expect_create_error(m, tpath("missing.h5"), base, NG_EIO, "missing.h5", NULL);
  ng_model_destroy(&m);

  /* a label outside the model's classes: refused on load, naming the row */
  m = make_model(2, 14);
  c = base;
  c.loss = NG_NN_LOSS_BALANCED_ERROR;
  c.use_threshold = true;
  c.threshold = 1.5;
  expect_create_error(m, tpath("bin.h5"), c, NG_EINVAL, "threshold of balanced_error", "1.5");
  ng_model *m1 = make_model(1, 15);
  c = base;
  c.loss = NG_NN_LOSS_MACRO_F1;
  expect_create_error(m1, reg, c, NG_EINVAL, "macro_f1", "class labels");
  ng_model_destroy(&m1);
  ng_nn_objective *o = NULL;
  check(ng_nn_objective_create(m, cls, &base, &o), "create");
  assert_int_equal(ng_nn_objective_load(o, 0, 2), NG_EMISMATCH);
  assert_contains(ng_errmsg(), "/y row");
  ng_nn_objective_destroy(&o);
  ng_nn_objective_destroy(&o); /* accepts NULL */
  ng_model_destroy(&m);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_matches_eval),
      cmocka_unit_test(test_mse_threshold),
      cmocka_unit_test(test_chunks_identical),
      cmocka_unit_test(test_tensor_mapping),
      cmocka_unit_test(test_engine_cmaes),
      cmocka_unit_test(test_confusion_losses),
      cmocka_unit_test(test_thresholded),
      cmocka_unit_test(test_eval_params),
      cmocka_unit_test(test_engine_balanced),
      cmocka_unit_test(test_refusals),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  MPI_Finalize();
  return failed;
}
