/* The neural-network objective (src/nn/objective.c): its loss at the model's own parameters is `nograd
 * eval`'s (ng_app_eval and a direct forward pass), a chunk's (sum, count) is the same bits whichever range
 * was loaded, the tensor mapping, CMA-ES through the engine lowering the cross-entropy of a last-layer bias,
 * and the refusals. One rank: MPI_Init in main. That the loss is independent of P follows from the chunk
 * design, which the per-chunk bit test checks: a rank's chunks are evaluated alone, and the engine adds them
 * in chunk order. */
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

#include "nograd/data.h"
#include "nograd/dist.h"
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

static void check(int status, const char *what) {
  if (status != NG_OK) fail_msg("%s: %s: %s", what, ng_strerror(status), ng_errmsg());
}

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
  expect_create_error(m, cls, c, NG_EINVAL, "balanced_error", "not decomposable");
  c.loss = NG_NN_LOSS_MACRO_F1;
  expect_create_error(m, cls, c, NG_EINVAL, "macro_f1", "(sum, count)");
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
      cmocka_unit_test(test_names),          cmocka_unit_test(test_matches_eval),
      cmocka_unit_test(test_mse_threshold),  cmocka_unit_test(test_chunks_identical),
      cmocka_unit_test(test_tensor_mapping), cmocka_unit_test(test_engine_cmaes),
      cmocka_unit_test(test_refusals),
  };
  int failed = cmocka_run_group_tests(tests, setup, teardown);
  MPI_Finalize();
  return failed;
}
