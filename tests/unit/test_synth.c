/* Synthetic problems (src/data/synth.c): chunks that are the same bits whichever range was loaded, the losses
 * the model predicts at w* and at 0, short last chunks, the errors for unloaded chunks and bad
 * configurations, and CMA-ES recovering w* of a least-squares problem. Not an MPI test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/opt.h"
#include "nograd/rng.h"
#include "nograd/synth.h"

static ng_synth *make(const char *kind, size_t rows, size_t d, size_t chunk, uint64_t seed) {
  ng_synth *s = NULL;
  check(ng_synth_create(kind, rows, d, chunk, seed, &s), "create");
  return s;
}

/* The loss over all chunks, added in chunk order as rank 0 does; *count gets the rows. */
static double total_loss(ng_synth *s, const double *x, double *count) {
  double sum = 0, m = 0;
  for (size_t c = 0; c < ng_synth_chunks(s); c++)
    check(ng_synth_eval(s, x, 0, 0, c, &sum, &m), "eval");
  if (count) *count = m;
  return sum;
}

static void test_dims(void **state) {
  ng_synth *s = make("logistic", 1000, 7, 300, 1);
  assert_int_equal(ng_synth_chunks(s), 4);
  assert_int_equal(ng_synth_dim(s), 8);
  assert_int_equal(ng_synth_chunk_rows(s, 0), 300);
  assert_int_equal(ng_synth_chunk_rows(s, 3), 100);
  assert_int_equal(ng_synth_chunk_rows(s, 4), 0);
  ng_objective obj;
  ng_synth_objective(s, &obj);
  assert_int_equal(obj.n, 8);
  assert_int_equal(obj.nchunks, 4);
  assert_ptr_equal(obj.ctx, s);
  assert_true(obj.eval == ng_synth_eval);
  assert_non_null(obj.load);
  check(obj.load(obj.ctx, 1, 2), "objective load"); /* as the engine calls it: this rank's chunks */
  size_t first, count;
  ng_synth_loaded(s, &first, &count);
  assert_int_equal(first, 1);
  assert_int_equal(count, 2);
  ng_synth_destroy(&s);
  assert_null(s);
  ng_synth_destroy(&s); /* NULL is accepted */
  ng_synth_destroy(NULL);
  /* a chunk larger than the data: one chunk */
  s = make("lsq", 10, 3, 1000, 1);
  assert_int_equal(ng_synth_chunks(s), 1);
  assert_int_equal(ng_synth_chunk_rows(s, 0), 10);
  ng_synth_destroy(&s);
}

/* Chunk c of a whole load, of a one-chunk load and of a load around it: the same rows, labels and loss bits,
 * for candidates at every alignment. The true weights do not depend on the load either. */
static void check_same_chunks(const char *kind, size_t rows, size_t d, size_t chunk) {
  ng_synth *all = make(kind, rows, d, chunk, 42);
  size_t nc = ng_synth_chunks(all);
  check(ng_synth_load(all, 0, nc), "load all");
  double xs[3 * 32];
  ng_rng r;
  ng_rng_init(&r, 7, NG_RNG_USER, 0, 0);
  ng_rng_normal_fill(&r, xs, sizeof xs / sizeof xs[0]);
  for (size_t c = 0; c < nc; c++) {
    ng_synth *one = make(kind, rows, d, chunk, 42), *around = make(kind, rows, d, chunk, 42);
    check(ng_synth_load(one, c, 1), "load one");
    size_t lo = c > 0 ? c - 1 : 0, hi = c + 2 < nc ? c + 2 : nc;
    check(ng_synth_load(around, lo, hi - lo), "load around");
    assert_memory_equal(ng_synth_true_weights(all), ng_synth_true_weights(one), (d + 1) * sizeof(double));
    ng_synth *objs[3] = {all, one, around};
    const double *x0, *y0;
    size_t m0;
    check(ng_synth_chunk(all, c, &x0, &y0, &m0), "chunk");
    assert_int_equal(m0, ng_synth_chunk_rows(all, c));
    for (int o = 1; o < 3; o++) {
      const double *x1, *y1;
      size_t m1;
      check(ng_synth_chunk(objs[o], c, &x1, &y1, &m1), "chunk");
      assert_int_equal(m1, m0);
      assert_memory_equal(x0, x1, m0 * d * sizeof(double));
      assert_memory_equal(y0, y1, m0 * sizeof(double));
    }
    for (size_t off = 0; off < 3; off++) { /* x at 8-byte offsets: the caller's alignment must not matter */
      const double *x = xs + off + (c % 8) * (d + 1) % 32;
      double s[3], m[3];
      for (int o = 0; o < 3; o++) {
        s[o] = 0;
        m[o] = 0;
        check(ng_synth_eval(objs[o], x, 0, 0, c, &s[o], &m[o]), "eval");
      }
      assert_memory_equal(&s[0], &s[1], sizeof(double));
      assert_memory_equal(&s[0], &s[2], sizeof(double));
      assert_true(m[0] == (double)m0 && m[1] == m[0] && m[2] == m[0]);
      assert_true(isfinite(s[0]) && s[0] > 0);
    }
    ng_synth_destroy(&one);
    ng_synth_destroy(&around);
  }
  ng_synth_destroy(&all);
}

static void test_determinism(void **state) {
  check_same_chunks("logistic", 1000, 20, 128);
  check_same_chunks("lsq", 777, 5, 100);
  check_same_chunks("lsq", 50, 1, 7);
  /* the same seed twice gives the same problem; another seed another one */
  ng_synth *a = make("lsq", 10, 3, 5, 9), *b = make("lsq", 10, 3, 5, 9), *c = make("lsq", 10, 3, 5, 10);
  assert_memory_equal(ng_synth_true_weights(a), ng_synth_true_weights(b), 4 * sizeof(double));
  assert_memory_not_equal(ng_synth_true_weights(a), ng_synth_true_weights(c), 4 * sizeof(double));
  ng_synth_destroy(&a);
  ng_synth_destroy(&b);
  ng_synth_destroy(&c);
}

/* The rows are what the model says: feature j has standard deviation 1 + j mod 5. */
static void test_feature_scales(void **state) {
  size_t rows = 20000, d = 6;
  ng_synth *s = make("lsq", rows, d, 4096, 3);
  check(ng_synth_load(s, 0, ng_synth_chunks(s)), "load");
  double ss[6] = {0};
  for (size_t c = 0; c < ng_synth_chunks(s); c++) {
    const double *x, *y;
    size_t m;
    check(ng_synth_chunk(s, c, &x, &y, &m), "chunk");
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < d; j++)
        ss[j] += x[i * d + j] * x[i * d + j];
  }
  for (size_t j = 0; j < d; j++) {
    double sd = sqrt(ss[j] / (double)rows), want = (double)(1 + j % 5);
    assert_true(fabs(sd / want - 1.0) < 0.03);
  }
  ng_synth_destroy(&s);
}

/* At x = w*, the residuals are the noise 0.1 N(0,1): the sum of r^2/2 has mean N 0.01/2 and standard
 * deviation 0.005 sqrt(2N). */
static void test_lsq_at_truth(void **state) {
  size_t rows = 20000;
  ng_synth *s = make("lsq", rows, 8, 999, 5);
  check(ng_synth_load(s, 0, ng_synth_chunks(s)), "load");
  double m, f = total_loss(s, ng_synth_true_weights(s), &m);
  double mean = 0.005 * (double)rows, sd = 0.005 * sqrt(2.0 * (double)rows);
  assert_true(m == (double)rows);
  if (fabs(f - mean) > 5 * sd) fail_msg("lsq loss at w* %g, expected %g +- %g", f, mean, 5 * sd);
  /* and away from it the loss is larger */
  double x[9];
  memcpy(x, ng_synth_true_weights(s), sizeof x);
  x[8] += 0.1;
  assert_true(total_loss(s, x, NULL) > f);
  ng_synth_destroy(&s);
}

static void test_logistic(void **state) {
  size_t rows = 5003, d = 10;
  ng_synth *s = make("logistic", rows, d, 500, 11);
  check(ng_synth_load(s, 0, ng_synth_chunks(s)), "load");
  double zero[11] = {0}, m;
  double f0 = total_loss(s, zero, &m);
  assert_true(m == (double)rows);
  double want = (double)rows * log(2.0);
  if (fabs(f0 - want) > 1e-9 * want) fail_msg("logistic loss at 0: %.17g, expected N ln 2 = %.17g", f0, want);
  double ft = total_loss(s, ng_synth_true_weights(s), NULL);
  assert_true(ft < f0);
  assert_true(ft > 0);
  /* labels are 0 or 1, and both occur */
  size_t ones = 0;
  for (size_t c = 0; c < ng_synth_chunks(s); c++) {
    const double *x, *y;
    size_t k;
    check(ng_synth_chunk(s, c, &x, &y, &k), "chunk");
    for (size_t i = 0; i < k; i++) {
      assert_true(y[i] == 0.0 || y[i] == 1.0);
      ones += y[i] == 1.0;
    }
  }
  assert_true(ones > rows / 10 && ones < rows - rows / 10);
  /* huge margins neither overflow nor lose the sign */
  double big[11];
  for (size_t j = 0; j <= d; j++)
    big[j] = 1e6 * ng_synth_true_weights(s)[j];
  double fb = total_loss(s, big, NULL);
  assert_true(isfinite(fb));
  ng_synth_destroy(&s);
}

static void test_short_last_chunk(void **state) {
  ng_synth *s = make("lsq", 1003, 4, 100, 2);
  assert_int_equal(ng_synth_chunks(s), 11);
  check(ng_synth_load(s, 9, 2), "load");
  double x[5] = {0.1, 0.2, 0.3, 0.4, 0.5}, sum = 0, m = 0;
  check(ng_synth_eval(s, x, 0, 0, 10, &sum, &m), "eval last");
  assert_true(m == 3.0);
  check(ng_synth_eval(s, x, 0, 0, 9, &sum, &m), "eval before last"); /* adds */
  assert_true(m == 103.0);
  /* the whole objective counts every row once */
  check(ng_synth_load(s, 0, 11), "load all");
  double count;
  total_loss(s, x, &count);
  assert_true(count == 1003.0);
  ng_synth_destroy(&s);
}

static void test_unloaded(void **state) {
  ng_synth *s = make("logistic", 1000, 3, 100, 2);
  double x[4] = {0}, sum = 1.5, m = 2.0;
  assert_int_equal(ng_synth_eval(s, x, 0, 0, 0, &sum, &m), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "chunk 0 is not loaded"));
  assert_non_null(strstr(ng_errmsg(), "no chunks"));
  check(ng_synth_load(s, 3, 4), "load");
  assert_int_equal(ng_synth_eval(s, x, 0, 0, 7, &sum, &m), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "chunk 7 is not loaded"));
  assert_non_null(strstr(ng_errmsg(), "3..6"));
  assert_int_equal(ng_synth_eval(s, x, 0, 0, 2, &sum, &m), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "chunk 2"));
  assert_int_equal(ng_synth_eval(s, x, 0, 0, 10, &sum, &m), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "chunk 10 does not exist"));
  assert_true(sum == 1.5 && m == 2.0); /* untouched on failure */
  const double *cx, *cy;
  size_t rows;
  assert_int_equal(ng_synth_chunk(s, 0, &cx, &cy, &rows), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "chunk 0 is not loaded"));
  /* a load replaces the previous one; a range beyond the end is refused */
  check(ng_synth_load(s, 0, 2), "reload");
  size_t first, count;
  ng_synth_loaded(s, &first, &count);
  assert_int_equal(first, 0);
  assert_int_equal(count, 2);
  assert_int_equal(ng_synth_eval(s, x, 0, 0, 3, &sum, &m), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "loaded: chunks 0..1"));
  assert_int_equal(ng_synth_load(s, 8, 3), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "10 chunks"));
  check(ng_synth_load(s, 10, 0), "unload");
  ng_synth_loaded(s, &first, &count);
  assert_int_equal(count, 0);
  ng_synth_destroy(&s);
}

static void test_bad_config(void **state) {
  ng_synth *s = (ng_synth *)&s;
  assert_int_equal(ng_synth_create("logit", 10, 2, 5, 1, &s), NG_EINVAL);
  assert_null(s);
  assert_non_null(strstr(ng_errmsg(), "'logit'"));
  assert_non_null(strstr(ng_errmsg(), "logistic"));
  assert_non_null(strstr(ng_errmsg(), "lsq"));
  assert_int_equal(ng_synth_create(NULL, 10, 2, 5, 1, &s), NG_EINVAL);
  assert_int_equal(ng_synth_create("lsq", 0, 2, 5, 1, &s), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "rows must be >= 1, got 0"));
  assert_int_equal(ng_synth_create("lsq", 10, 0, 5, 1, &s), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "features must be >= 1, got 0"));
  assert_int_equal(ng_synth_create("lsq", 10, 2, 0, 1, &s), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "chunk rows must be >= 1, got 0"));
  const char *const *k = ng_synth_kinds();
  assert_string_equal(k[0], "logistic");
  assert_string_equal(k[1], "lsq");
  assert_null(k[2]);
}

/* CMA-ES on the mean least-squares loss (chunks added in order, then divided by the count, as ng_dist_run
 * does) finds w* to within the noise: the least-squares estimate is within about 0.1 / sqrt(N) of it. */
static void test_cmaes_recovers_truth(void **state) {
  size_t d = 5, n = d + 1, rows = 2000;
  ng_synth *s = make("lsq", rows, d, 256, 17);
  check(ng_synth_load(s, 0, ng_synth_chunks(s)), "load");
  ng_opt *opt = NULL;
  check(ng_opt_create("cmaes", n, &opt), "create");
  check(ng_opt_set_seed(opt, 3), "seed");
  check(ng_opt_set_sigma0(opt, 0.5), "sigma0");
  check(ng_opt_set_max_evals(opt, 20000), "max evals");
  check(ng_opt_setup(opt), "setup");
  size_t lambda = ng_opt_popsize(opt);
  double *X = malloc(lambda * n * sizeof *X), *f = malloc(lambda * sizeof *f);
  assert_non_null(X);
  assert_non_null(f);
  while (ng_opt_stop(opt) == NG_STOP_NONE) {
    check(ng_opt_ask(opt, X), "ask");
    for (size_t k = 0; k < lambda; k++) {
      double m;
      f[k] = total_loss(s, X + k * n, &m) / m;
    }
    check(ng_opt_tell(opt, f), "tell");
  }
  double fbest;
  const double *xb = ng_opt_best(opt, &fbest), *w = ng_synth_true_weights(s);
  for (size_t j = 0; j < n; j++)
    if (fabs(xb[j] - w[j]) > 0.05)
      fail_msg("coordinate %zu: %g, w* %g (stop %s)", j, xb[j], w[j], ng_stop_name(ng_opt_stop(opt)));
  assert_true(fbest < 0.0055);
  free(X);
  free(f);
  ng_opt_destroy(&opt);
  ng_synth_destroy(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dims),
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_feature_scales),
      cmocka_unit_test(test_lsq_at_truth),
      cmocka_unit_test(test_logistic),
      cmocka_unit_test(test_short_last_chunk),
      cmocka_unit_test(test_unloaded),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_cmaes_recovers_truth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
