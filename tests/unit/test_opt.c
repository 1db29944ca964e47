/* The generic optimizer layer (opt.c), for every optimizer: the checked call order, configuration errors and
 * their messages, state save/load mismatches, the lifecycle, and the names of the stop reasons. What an
 * algorithm computes is tested in test_cmaes.c; here only the contract of opt.h. Not an MPI test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/opt.h"
#include "nograd/state.h"

#define N 5

/* Every test runs over every optimizer ng_opt_names() lists, so a new one is held to the same contract. */
#define optimizers (ng_opt_names())
static size_t count_optimizers(void) {
  size_t k = 0;
  while (ng_opt_names()[k])
    k++;
  return k;
}
#define count_optimizers() (count_optimizers())

static ng_opt *created(const char *name, size_t n) {
  ng_opt *opt = NULL;
  int st = ng_opt_create(name, n, &opt);
  if (st != NG_OK) fail_msg("ng_opt_create(%s, %zu): %s", name, n, ng_errmsg());
  assert_non_null(opt);
  return opt;
}

static ng_opt *ready(const char *name, size_t n) {
  ng_opt *opt = created(name, n);
  int st = ng_opt_setup(opt);
  if (st != NG_OK) fail_msg("ng_opt_setup(%s): %s", name, ng_errmsg());
  return opt;
}

static double sphere(const double *x, size_t n) {
  double f = 0;
  for (size_t i = 0; i < n; i++)
    f += (x[i] - 1) * (x[i] - 1);
  return f;
}

/* One ask and tell on the sphere; returns the popsize used. */
static size_t step(ng_opt *opt) {
  size_t lambda = ng_opt_popsize(opt), n = ng_opt_dim(opt);
  double *x = malloc(lambda * n * sizeof *x), *f = malloc(lambda * sizeof *f);
  assert_non_null(x);
  assert_non_null(f);
  int st = ng_opt_ask(opt, x);
  if (st != NG_OK) fail_msg("ng_opt_ask: %s", ng_errmsg());
  for (size_t k = 0; k < lambda; k++)
    f[k] = sphere(x + k * n, n);
  st = ng_opt_tell(opt, f);
  if (st != NG_OK) fail_msg("ng_opt_tell: %s", ng_errmsg());
  free(x);
  free(f);
  return lambda;
}

/* ---- call order -------------------------------------------------------------------------------------- */

static void test_ask_tell_order(void **state) {
  (void)state;
  for (size_t o = 0; o < count_optimizers(); o++) {
    ng_opt *opt = created(ng_opt_names()[o], N);
    double x[4096], f[512];
    assert_error(ng_opt_ask(opt, x), NG_EORDER, "ask before setup", NULL);
    assert_int_equal(ng_opt_setup(opt), NG_OK);
    size_t lambda = ng_opt_popsize(opt);
    assert_true(lambda >= 2 && lambda * N <= 4096);
    assert_error(ng_opt_tell(opt, f), NG_EORDER, "tell without ask", WORDS("tell"));
    assert_int_equal(ng_opt_ask(opt, x), NG_OK);
    assert_error(ng_opt_ask(opt, x), NG_EORDER, "ask twice", WORDS("ask"));
    for (size_t k = 0; k < lambda; k++)
      f[k] = sphere(x + k * N, N);
    assert_int_equal(ng_opt_tell(opt, f), NG_OK);
    assert_error(ng_opt_tell(opt, f), NG_EORDER, "tell twice", WORDS("tell"));
    /* the order errors changed nothing: one generation told */
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    assert_int_equal(in.generation, 1);
    assert_int_equal(in.evaluations, (int64_t)lambda);
    assert_int_equal(ng_opt_setup(opt), NG_EORDER);
    /* after a stop, ask refuses */
    ng_opt_request_stop(opt, NG_STOP_CALLBACK);
    assert_int_equal(ng_opt_stop(opt), NG_STOP_CALLBACK);
    ng_opt_request_stop(opt, NG_STOP_SIGNAL); /* the first reason stays */
    assert_int_equal(ng_opt_stop(opt), NG_STOP_CALLBACK);
    assert_error(ng_opt_ask(opt, x), NG_EORDER, "ask after stop", WORDS("callback"));
    ng_opt_destroy(&opt);
  }
}

static void test_set_after_setup(void **state) {
  (void)state;
  for (size_t o = 0; o < count_optimizers(); o++) {
    ng_opt *opt = ready(ng_opt_names()[o], N);
    double v[N] = {0}, lo[N], hi[N];
    for (size_t i = 0; i < N; i++) {
      lo[i] = -1;
      hi[i] = 1;
    }
    assert_error(ng_opt_set_x0(opt, v), NG_EORDER, "set_x0 after setup", WORDS("x0"));
    assert_error(ng_opt_set_sigma0(opt, 0.5), NG_EORDER, "set_sigma0 after setup", WORDS("sigma0"));
    assert_error(ng_opt_set_seed(opt, 7), NG_EORDER, "set_seed after setup", WORDS("seed"));
    assert_error(ng_opt_set_popsize(opt, 12), NG_EORDER, "set_popsize after setup", WORDS("popsize"));
    assert_error(ng_opt_set_bounds(opt, lo, hi), NG_EORDER, "set_bounds after setup", WORDS("bounds"));
    assert_error(ng_opt_set_ftarget(opt, 1e-3), NG_EORDER, "set_ftarget after setup", WORDS("ftarget"));
    assert_error(ng_opt_set_max_evals(opt, 100), NG_EORDER, "set_max_evals after setup", NULL);
    assert_error(ng_opt_set_restarts(opt, NG_RESTART_NONE, 0), NG_EORDER, "set_restarts after setup", NULL);
    assert_error(ng_opt_set_param(opt, "tolx", 1e-3), NG_EORDER, "set_param after setup", WORDS("tolx"));
    ng_opt_destroy(&opt);
  }
}

static void test_save_between_ask_and_tell(void **state) {
  (void)state;
  for (size_t o = 0; o < count_optimizers(); o++) {
    ng_opt *opt = created(ng_opt_names()[o], N);
    ng_state *st = NULL;
    assert_int_equal(ng_state_create(&st), NG_OK);
    assert_error(ng_opt_save(opt, st), NG_EORDER, "save before setup", NULL);
    assert_int_equal(ng_opt_setup(opt), NG_OK);
    step(opt);
    double x[4096];
    assert_int_equal(ng_opt_ask(opt, x), NG_OK);
    assert_error(ng_opt_save(opt, st), NG_EORDER, "save between ask and tell", NULL);
    ng_state_destroy(&st);
    ng_opt_destroy(&opt);
  }
}

/* ---- configuration errors ---------------------------------------------------------------------------- */

static void test_unknown_optimizer(void **state) {
  (void)state;
  ng_opt *opt = (ng_opt *)&opt; /* must be cleared */
  int st = ng_opt_create("cma-es", N, &opt);
  assert_error(st, NG_EINVAL, "unknown optimizer", WORDS("cma-es"));
  assert_null(opt);
  /* the message lists every known name, whatever the list is */
  const char *const *names = ng_opt_names();
  size_t count = 0;
  for (; names[count]; count++)
    if (!strstr(ng_errmsg(), names[count]))
      fail_msg("message '%s' does not list optimizer '%s'", ng_errmsg(), names[count]);
  const char *const want[] = {"cmaes", "sepcmaes", "spsa"}; /* at least these */
  for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
    size_t k = 0;
    while (k < count && strcmp(names[k], want[w]) != 0)
      k++;
    if (k == count) fail_msg("ng_opt_names() does not list '%s'", want[w]);
  }
  assert_error(ng_opt_create("cmaes", 0, &opt), NG_EINVAL, "dimension 0", NULL);
  assert_null(opt);
}

static void test_unknown_parameter(void **state) {
  (void)state;
  for (size_t o = 0; o < count_optimizers(); o++) {
    ng_opt *opt = created(ng_opt_names()[o], N);
    assert_int_equal(ng_opt_set_param(opt, "tolfnu", 1e-9), NG_OK); /* checked at setup */
    assert_error(ng_opt_setup(opt), NG_EINVAL, ng_opt_names()[o], WORDS("tolfnu", ng_opt_names()[o]));
    double x[4096];
    assert_int_equal(ng_opt_ask(opt, x), NG_EORDER); /* not set up */
    ng_opt_destroy(&opt);
  }
  /* a known one is accepted */
  ng_opt *opt = created("cmaes", N);
  assert_int_equal(ng_opt_set_param(opt, "tolx", 1e-9), NG_OK);
  assert_int_equal(ng_opt_setup(opt), NG_OK);
  ng_opt_destroy(&opt);
}

static void test_invalid_values(void **state) {
  (void)state;
  for (size_t o = 0; o < count_optimizers(); o++) {
    ng_opt *opt = created(ng_opt_names()[o], N);
    assert_error(ng_opt_set_sigma0(opt, 0.0), NG_EINVAL, "sigma0 = 0", WORDS("sigma0"));
    assert_error(ng_opt_set_sigma0(opt, -1.0), NG_EINVAL, "sigma0 = -1", WORDS("sigma0"));
    assert_error(ng_opt_set_sigma0(opt, NAN), NG_EINVAL, "sigma0 = NaN", WORDS("sigma0"));
    assert_error(ng_opt_set_sigma0(opt, INFINITY), NG_EINVAL, "sigma0 = inf", WORDS("sigma0"));
    double x0[N] = {0, 0, NAN, 0, 0};
    assert_error(ng_opt_set_x0(opt, x0), NG_EINVAL, "NaN x0", WORDS("x0[2]"));
    x0[2] = INFINITY;
    assert_error(ng_opt_set_x0(opt, x0), NG_EINVAL, "infinite x0", WORDS("x0[2]"));
    assert_error(ng_opt_set_ftarget(opt, NAN), NG_EINVAL, "NaN ftarget", WORDS("ftarget"));
    /* a negative count is named, or, for an optimizer that does not restart, the optimizer */
    assert_error(ng_opt_set_restarts(opt, NG_RESTART_IPOP, -1), NG_EINVAL, "max_restarts -1", NULL);
    if (!strstr(ng_errmsg(), "-1") && !strstr(ng_errmsg(), ng_opt_names()[o]))
      fail_msg("%s: max_restarts -1: message '%s' names neither -1 nor the optimizer", ng_opt_names()[o],
               ng_errmsg());
    /* the rejected values changed nothing: the defaults stand and the run starts from 0 with sigma 1 */
    assert_int_equal(ng_opt_setup(opt), NG_OK);
    const double *m = ng_opt_mean(opt);
    for (size_t i = 0; i < N; i++)
      assert_true(m[i] == 0.0);
    ng_opt_destroy(&opt);
  }
  /* SPSA does not restart */
  ng_opt *opt = created("spsa", N);
  assert_error(ng_opt_set_restarts(opt, NG_RESTART_IPOP, 3), NG_EINVAL, "spsa with ipop", WORDS("spsa"));
  ng_opt_destroy(&opt);
  /* x0 outside the bounds is found at setup and named */
  opt = created("cmaes", N);
  double lo[N] = {-1, -1, -1, -1, -1}, hi[N] = {1, 1, 1, 1, 1}, x0[N] = {0, 0, 0, 3, 0};
  assert_int_equal(ng_opt_set_bounds(opt, lo, hi), NG_OK);
  assert_int_equal(ng_opt_set_x0(opt, x0), NG_OK);
  assert_error(ng_opt_setup(opt), NG_EINVAL, "x0 outside bounds", WORDS("x0[3]"));
  ng_opt_destroy(&opt);
  /* a population of 1 cannot rank anything */
  opt = created("cmaes", N);
  assert_int_equal(ng_opt_set_popsize(opt, 1), NG_OK);
  assert_error(ng_opt_setup(opt), NG_EINVAL, "popsize 1", WORDS("popsize"));
  ng_opt_destroy(&opt);
}

/* A rejected set_bounds must not leave a half-checked box behind: the coordinates after the faulty one were
 * never checked, and an empty interval [0, 0] makes the bound transform divide by zero. Either setup refuses
 * or the candidates are finite. */
static void test_rejected_bounds_leave_no_trace(void **state) {
  (void)state;
  ng_opt *opt = created("cmaes", 2);
  double lo[2] = {0, 0}, hi[2] = {1, 0};
  assert_error(ng_opt_set_bounds(opt, lo, hi), NG_EINVAL, "empty interval", WORDS("coordinate 1"));
  if (ng_opt_setup(opt) == NG_OK) {
    double x[64];
    assert_true(ng_opt_popsize(opt) * 2 <= 64);
    assert_int_equal(ng_opt_ask(opt, x), NG_OK);
    for (size_t j = 0; j < ng_opt_popsize(opt) * 2; j++)
      if (!isfinite(x[j]))
        fail_msg(
            "after a rejected ng_opt_set_bounds, setup succeeded and candidate %zu has coordinate %zu = %g",
            j / 2, j % 2, x[j]);
  }
  ng_opt_destroy(&opt);
}

/* ---- save and load mismatches ------------------------------------------------------------------------ */

static ng_state *saved(const char *name, size_t n) {
  ng_opt *opt = ready(name, n);
  step(opt);
  ng_state *st = NULL;
  assert_int_equal(ng_state_create(&st), NG_OK);
  assert_int_equal(ng_opt_save(opt, st), NG_OK);
  ng_opt_destroy(&opt);
  return st;
}

static void test_load_mismatch(void **state) {
  (void)state;
  for (size_t o = 0; o < count_optimizers(); o++) {
    ng_state *st = saved(ng_opt_names()[o], N);
    /* another dimension */
    ng_opt *other = ready(ng_opt_names()[o], N + 1);
    assert_error(ng_opt_load(other, st), NG_EMISMATCH, "other dimension", WORDS("5", "6"));
    ng_opt_destroy(&other);
    /* another optimizer of the same dimension */
    for (size_t p = 0; p < count_optimizers(); p++) {
      if (p == o) continue;
      other = ready(ng_opt_names()[p], N);
      assert_error(ng_opt_load(other, st), NG_EMISMATCH, "other optimizer",
                   WORDS(ng_opt_names()[o], ng_opt_names()[p]));
      ng_opt_destroy(&other);
    }
    /* the right one loads, but not before setup */
    other = created(ng_opt_names()[o], N);
    assert_int_equal(ng_opt_load(other, st), NG_EORDER);
    assert_int_equal(ng_opt_setup(other), NG_OK);
    int s = ng_opt_load(other, st);
    if (s != NG_OK) fail_msg("%s: load of its own state: %s", ng_opt_names()[o], ng_errmsg());
    ng_opt_info in;
    ng_opt_get_info(other, &in);
    assert_int_equal(in.generation, 1);
    ng_opt_destroy(&other);
    ng_state_destroy(&st);
  }
  /* a state without the optimizer's entries */
  ng_state *empty = NULL;
  assert_int_equal(ng_state_create(&empty), NG_OK);
  ng_opt *opt = ready("cmaes", N);
  assert_error(ng_opt_load(opt, empty), NG_ENOTFOUND, "empty state", WORDS("cfg/n"));
  ng_opt_destroy(&opt);
  ng_state_destroy(&empty);
}

/* ---- lifecycle --------------------------------------------------------------------------------------- */

static void test_destroy(void **state) {
  (void)state;
  ng_opt_destroy(NULL);
  ng_opt *opt = NULL;
  ng_opt_destroy(&opt);
  assert_null(opt);
  for (size_t o = 0; o < count_optimizers(); o++) {
    opt = created(ng_opt_names()[o], N);
    ng_opt_destroy(&opt); /* never set up */
    assert_null(opt);
    opt = ready(ng_opt_names()[o], N);
    step(opt);
    double x[4096];
    assert_int_equal(ng_opt_ask(opt, x), NG_OK);
    ng_opt_destroy(&opt); /* between ask and tell */
    assert_null(opt);
    opt = created(ng_opt_names()[o], N);
    assert_int_equal(ng_opt_set_param(opt, "nonsense", 1), NG_OK);
    assert_int_equal(ng_opt_setup(opt), NG_EINVAL);
    ng_opt_destroy(&opt); /* after a failed setup */
    assert_null(opt);
  }
}

static void test_accessors(void **state) {
  (void)state;
  for (size_t o = 0; o < count_optimizers(); o++) {
    ng_opt *opt = created(ng_opt_names()[o], N);
    double x0[N] = {1, 2, 3, 4, 5};
    assert_int_equal(ng_opt_set_x0(opt, x0), NG_OK);
    assert_int_equal(ng_opt_setup(opt), NG_OK);
    assert_int_equal(ng_opt_dim(opt), N);
    double fb = 0;
    const double *b = ng_opt_best(opt, &fb);
    assert_true(isinf(fb) && fb > 0);      /* +inf before a finite loss */
    assert_memory_equal(b, x0, sizeof x0); /* and the initial mean */
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    assert_int_equal(in.generation, 0);
    assert_int_equal(in.evaluations, 0);
    assert_int_equal(in.stop, NG_STOP_NONE);
    assert_int_equal(in.popsize, ng_opt_popsize(opt));
    size_t lambda = step(opt);
    ng_opt_get_info(opt, &in);
    assert_int_equal(in.generation, 1);
    assert_int_equal(in.evaluations, (int64_t)lambda);
    b = ng_opt_best(opt, &fb);
    assert_true(fb == sphere(b, N)); /* the best point is the one whose loss is reported */
    assert_true(in.best_f == fb);
    assert_true(in.gen_best_f == fb);
    assert_true(in.gen_median_f >= in.gen_best_f);
    ng_opt_destroy(&opt);
  }
}

/* ---- stop names -------------------------------------------------------------------------------------- */

static void test_stop_names(void **state) {
  (void)state;
  const char *const want[] = {"none",         "ftarget",      "maxfevals",     "maxiter",
                              "tolfun",       "tolfunhist",   "tolx",          "tolupsigma",
                              "conditioncov", "noeffectaxis", "noeffectcoord", "stagnation",
                              "flatfitness",  "nonfinite",    "signal",        "callback"};
  assert_int_equal(NG_STOP_COUNT_, sizeof want / sizeof want[0]);
  for (int r = 0; r < NG_STOP_COUNT_; r++) {
    const char *name = ng_stop_name((ng_stop)r);
    assert_string_equal(name, want[r]);
    assert_int_equal(ng_stop_from_name(name), r);
    for (int q = 0; q < r; q++)
      assert_string_not_equal(ng_stop_name((ng_stop)q), name);
  }
  assert_string_equal(ng_stop_name(NG_STOP_COUNT_), "unknown");
  assert_string_equal(ng_stop_name((ng_stop)-1), "unknown");
  assert_int_equal(ng_stop_from_name("unknown"), -1);
  assert_int_equal(ng_stop_from_name(""), -1);
  assert_int_equal(ng_stop_from_name("FTARGET"), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ask_tell_order),
      cmocka_unit_test(test_set_after_setup),
      cmocka_unit_test(test_save_between_ask_and_tell),
      cmocka_unit_test(test_unknown_optimizer),
      cmocka_unit_test(test_unknown_parameter),
      cmocka_unit_test(test_invalid_values),
      cmocka_unit_test(test_rejected_bounds_leave_no_trace),
      cmocka_unit_test(test_load_mismatch),
      cmocka_unit_test(test_destroy),
      cmocka_unit_test(test_accessors),
      cmocka_unit_test(test_stop_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
