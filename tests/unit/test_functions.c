/* Benchmark functions: values at hand-computed points, optima, the rotations (orthogonal, reproducible from
 * the seed, and applied as f(R x)), the noisy sphere's determinism, and the errors for bad names and
 * dimensions. Not an MPI test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cblas.h>
#include <cmocka.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/functions.h"
#include "nograd/rng.h"

#define MAXN 64
#define NBASE 7 /* functions that have a "rot-" version */

static const char *const base_names[NBASE] = {"sphere",  "ellipsoid",  "cigar",    "tablet",
                                              "diffpow", "rosenbrock", "rastrigin"};

static ng_fn *make(const char *name, size_t n, uint64_t seed) {
  ng_fn *fn = NULL;
  int st = ng_fn_create(name, n, seed, &fn);
  if (st != NG_OK) fail_msg("ng_fn_create(%s, %zu): %s: %s", name, n, ng_strerror(st), ng_errmsg());
  assert_non_null(fn);
  return fn;
}

static void assert_rel(double got, double want, double tol, const char *what) {
  double scale = fabs(want) > 1.0 ? fabs(want) : 1.0;
  if (!(fabs(got - want) <= tol * scale)) fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

/* Random points from a stream of the tests' own purpose. */
static void random_point(uint64_t seed, uint32_t k, size_t n, double *x) {
  ng_rng r;
  ng_rng_init(&r, seed, NG_RNG_USER, 0, k);
  ng_rng_normal_fill(&r, x, n);
}

/* The rotation as functions.h specifies it, rebuilt independently: Gaussian n x n from stream
 * (seed, NG_RNG_ROTATION, 0, 0) filled column by column, Q of its QR, column j times sign(R_jj). */
static void expected_rotation(size_t n, uint64_t seed, double *q) {
  double tau[MAXN], d[MAXN] = {0};
  ng_rng r;
  ng_rng_init(&r, seed, NG_RNG_ROTATION, 0, 0);
  for (size_t k = 0; k < n * n; k++)
    q[k] = ng_rng_normal(&r);
  assert_int_equal(LAPACKE_dgeqrf(LAPACK_COL_MAJOR, (int)n, (int)n, q, (int)n, tau), 0);
  for (size_t j = 0; j < n; j++)
    d[j] = q[j + j * n] < 0 ? -1.0 : 1.0;
  assert_int_equal(LAPACKE_dorgqr(LAPACK_COL_MAJOR, (int)n, (int)n, (int)n, q, (int)n, tau), 0);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++)
      q[i + j * n] *= d[j];
}

static void apply(size_t n, const double *q, const double *x, double *y) {
  for (size_t i = 0; i < n; i++) {
    y[i] = 0.0;
    for (size_t j = 0; j < n; j++)
      y[i] += q[i + j * n] * x[j];
  }
}

/* ---- names and lifecycle ----------------------------------------------------------------------------- */

static void test_names(void **state) {
  (void)state;
  const char *const want[] = {"sphere",     "ellipsoid",   "cigar",          "tablet",        "diffpow",
                              "rosenbrock", "rastrigin",   "rot-sphere",     "rot-ellipsoid", "rot-cigar",
                              "rot-tablet", "rot-diffpow", "rot-rosenbrock", "rot-rastrigin", "noisy-sphere"};
  const char *const *names = ng_fn_names();
  size_t k = 0;
  for (; names[k]; k++) {
    assert_true(k < sizeof want / sizeof want[0]);
    assert_string_equal(names[k], want[k]);
    ng_fn *fn = make(names[k], 3, 1);
    assert_string_equal(ng_fn_name(fn), names[k]);
    assert_int_equal(ng_fn_dim(fn), 3);
    ng_fn_destroy(&fn);
    assert_null(fn);
  }
  assert_int_equal(k, 15);
  ng_fn_destroy(NULL);
  ng_fn *none = NULL;
  ng_fn_destroy(&none);
}

/* ---- values ------------------------------------------------------------------------------------------ */

typedef struct {
  const char *name;
  size_t n;
  double x[3];
  double f;
} known_value;

/* Computed by hand from the definitions in functions.c (pycma cma.ff). */
static const known_value known[] = {
    {"sphere", 2, {1, 2}, 5},              /* 1 + 4 */
    {"sphere", 3, {1, -2, 3}, 14},         /* 1 + 4 + 9 */
    {"ellipsoid", 1, {3}, 9},              /* n = 1: x_0^2, as pycma */
    {"ellipsoid", 2, {1, 2}, 4000001},     /* weights 1, 1e6: 1 + 1e6 * 4 */
    {"ellipsoid", 3, {1, -2, 3}, 9004001}, /* weights 1, 1e3, 1e6: 1 + 4e3 + 9e6 */
    {"cigar", 2, {1, 2}, 4000001},         /* 1 + 1e6 * 4 */
    {"cigar", 3, {1, -2, 3}, 13000001},    /* 1 + 1e6 * (4 + 9) */
    {"tablet", 2, {1, 2}, 1000004},        /* 1e6 * 1 + 4 */
    {"tablet", 3, {1, -2, 3}, 1000013},    /* 1e6 * 1 + 4 + 9 */
    {"diffpow", 2, {6, -2}, 100},          /* exponents 2, 6: 36 + 64 */
    {"diffpow", 3, {1, -2, 2}, 81},        /* exponents 2, 4, 6: 1 + 16 + 64 */
    {"rosenbrock", 2, {2, 1}, 901},        /* 100 (4 - 1)^2 + (1 - 2)^2 */
    {"rosenbrock", 3, {1, -2, 3}, 1009},   /* [100 (1 + 2)^2 + 0] + [100 (4 - 3)^2 + (1 + 2)^2] */
    {"rastrigin", 2, {0.5, 1}, 21.25},     /* 20 + (0.25 + 10) + (1 - 10) */
    {"rastrigin", 3, {0.5, -1, 2}, 25.25}, /* 30 + (0.25 + 10) + (1 - 10) + (4 - 10) */
};

static void test_known_values(void **state) {
  (void)state;
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
    const known_value *kv = &known[k];
    ng_fn *fn = make(kv->name, kv->n, 5);
    char what[64];
    snprintf(what, sizeof what, "%s n=%zu", kv->name, kv->n);
    assert_rel(ng_fn_eval(fn, kv->x, 0, 0, NULL), kv->f, 1e-14, what);
    ng_fn_destroy(&fn);
  }
}

static void test_optimum_is_zero(void **state) {
  (void)state;
  const size_t dims[] = {1, 2, 3, 10, 40};
  double x[MAXN], y[MAXN], q[MAXN * MAXN], work[MAXN];
  for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
    size_t n = dims[d];
    expected_rotation(n, 11, q);
    for (size_t b = 0; b < NBASE; b++) {
      if (n < 2 && (strcmp(base_names[b], "diffpow") == 0 || strcmp(base_names[b], "rosenbrock") == 0))
        continue;
      int rosen = strcmp(base_names[b], "rosenbrock") == 0;
      for (size_t i = 0; i < n; i++)
        x[i] = rosen ? 1.0 : 0.0;
      ng_fn *fn = make(base_names[b], n, 11);
      assert_true(ng_fn_eval(fn, x, 0, 0, NULL) == 0.0);
      ng_fn_destroy(&fn);

      char rot[32];
      snprintf(rot, sizeof rot, "rot-%s", base_names[b]);
      fn = make(rot, n, 11);
      /* f(R x) is minimal at x = R^T x*; for rosenbrock x* = ones, so only rounding remains. */
      for (size_t i = 0; i < n; i++) {
        y[i] = 0.0;
        for (size_t j = 0; j < n; j++)
          y[i] += q[j + i * n] * x[j];
      }
      double f = ng_fn_eval(fn, y, 0, 0, work);
      if (!(f >= 0.0 && f < 1e-20)) fail_msg("%s n=%zu at its optimum: %g", rot, n, f);
      ng_fn_destroy(&fn);
    }
  }
}

/* ---- rotations --------------------------------------------------------------------------------------- */

static void test_rotation_orthogonal(void **state) {
  (void)state;
  const size_t dims[] = {1, 2, 3, 10, MAXN};
  double q[MAXN * MAXN];
  for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
    size_t n = dims[d];
    for (uint64_t seed = 1; seed <= 3; seed++) {
      expected_rotation(n, seed, q);
      for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
          double s = 0.0;
          for (size_t k = 0; k < n; k++)
            s += q[k + i * n] * q[k + j * n];
          double want = i == j ? 1.0 : 0.0;
          if (fabs(s - want) > 1e-12) fail_msg("n=%zu (R^T R)_%zu%zu = %.17g", n, i, j, s);
        }
      }
    }
  }
}

/* The library's rotation is the one specified: rot-f(x) == f(R x) with R rebuilt here, for every function;
 * this also makes the orthogonality test above a test of the library's R. */
static void test_rotated_is_f_of_rx(void **state) {
  (void)state;
  const size_t dims[] = {2, 3, 10, 40};
  double q[MAXN * MAXN], x[MAXN], y[MAXN], work[MAXN];
  for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
    size_t n = dims[d];
    uint64_t seed = 1000 + d;
    expected_rotation(n, seed, q);
    for (size_t b = 0; b < NBASE; b++) {
      char rot[32];
      snprintf(rot, sizeof rot, "rot-%s", base_names[b]);
      ng_fn *f = make(base_names[b], n, seed);
      ng_fn *rf = make(rot, n, seed);
      for (uint32_t k = 0; k < 20; k++) {
        random_point(77, k, n, x);
        apply(n, q, x, y);
        char what[64];
        snprintf(what, sizeof what, "%s n=%zu point %u", rot, n, (unsigned)k);
        assert_rel(ng_fn_eval(rf, x, 0, 0, work), ng_fn_eval(f, y, 0, 0, NULL), 1e-12, what);
      }
      ng_fn_destroy(&rf);
      ng_fn_destroy(&f);
    }
  }
}

static void test_rot_sphere_is_sphere(void **state) {
  (void)state;
  double x[MAXN], work[MAXN];
  for (size_t n = 1; n <= MAXN; n *= 2) {
    ng_fn *f = make("sphere", n, 3);
    ng_fn *rf = make("rot-sphere", n, 3);
    for (uint32_t k = 0; k < 10; k++) {
      random_point(5, k, n, x);
      assert_rel(ng_fn_eval(rf, x, 0, 0, work), ng_fn_eval(f, x, 0, 0, NULL), 1e-12, "rot-sphere");
    }
    ng_fn_destroy(&rf);
    ng_fn_destroy(&f);
  }
}

static void test_rotation_from_seed(void **state) {
  (void)state;
  const size_t n = 10;
  double x[MAXN], work[MAXN];
  ng_fn *a = make("rot-ellipsoid", n, 7);
  ng_fn *b = make("rot-ellipsoid", n, 7);
  ng_fn *c = make("rot-ellipsoid", n, 8);
  for (uint32_t k = 0; k < 10; k++) {
    random_point(9, k, n, x);
    double fa = ng_fn_eval(a, x, 0, 0, work);
    assert_true(fa == ng_fn_eval(b, x, 0, 0, work)); /* bit-identical */
    assert_true(fa == ng_fn_eval(a, x, 0, 0, work));
    if (fabs(fa - ng_fn_eval(c, x, 0, 0, work)) <= 1e-6 * fa) fail_msg("seeds 7 and 8 give the same value");
  }
  ng_fn_destroy(&c);
  ng_fn_destroy(&b);
  ng_fn_destroy(&a);
}

/* Without the sign correction, LAPACK's Householder QR makes R_00 = -sign(A_00) |A e_0|, so Q_00 = A_00 /
 * R_00 is always negative; with it, Q_00 is symmetric. Of 400 seeds about 200 +- 10 give Q_00 > 0. */
static void test_rotation_sign_symmetric(void **state) {
  (void)state;
  double q[9];
  int positive = 0;
  for (uint64_t seed = 0; seed < 400; seed++) {
    expected_rotation(3, seed, q);
    positive += q[0] > 0.0;
  }
  if (positive < 150 || positive > 250) fail_msg("Q_00 > 0 for %d of 400 seeds", positive);
}

static void test_rotated_needs_work(void **state) {
  (void)state;
  double x[3] = {1, 2, 3};
  ng_fn *fn = make("rot-sphere", 3, 1);
  assert_true(isnan(ng_fn_eval(fn, x, 0, 0, NULL)));
  ng_fn_destroy(&fn);
}

/* ---- noise ------------------------------------------------------------------------------------------- */

static void test_noisy_sphere(void **state) {
  (void)state;
  const size_t n = 4;
  double x[4] = {1, -1, 0.5, 2}; /* sphere 6.25 */
  ng_fn *fn = make("noisy-sphere", n, 42);
  ng_fn *other = make("noisy-sphere", n, 43);
  double f = ng_fn_eval(fn, x, 3, 5, NULL);
  assert_true(f == ng_fn_eval(fn, x, 3, 5, NULL));
  assert_true(f != ng_fn_eval(fn, x, 3, 6, NULL));
  assert_true(f != ng_fn_eval(fn, x, 4, 5, NULL));
  assert_true(f != ng_fn_eval(other, x, 3, 5, NULL));

  /* pycma's noisysphere: sphere * exp(2.1e-9 N / n) + 0.1 U, N drawn before U, stream (42, NOISE, 3, 5). */
  ng_rng r;
  ng_rng_init(&r, 42, NG_RNG_NOISE, 3, 5);
  double z = ng_rng_normal(&r);
  double u = ng_rng_uniform(&r);
  assert_true(f == 6.25 * exp(2.10e-9 * z / 4.0) + 0.10 * u);
  assert_true(f > 6.25 * (1 - 1e-7) && f < 6.25 * (1 + 1e-7) + 0.1);

  /* At the optimum only the additive term remains: 0 < f < 0.1, mean 0.05. */
  double zero[4] = {0, 0, 0, 0}, sum = 0.0;
  for (uint64_t i = 0; i < 1000; i++) {
    double f0 = ng_fn_eval(fn, zero, 0, i, NULL);
    assert_true(f0 > 0.0 && f0 < 0.1);
    sum += f0;
  }
  /* The mean of 1000 uniforms on (0, 0.1) has sd 0.1 / sqrt(12000) ~ 0.0009. */
  if (fabs(sum / 1000 - 0.05) > 0.005) fail_msg("mean noise at the optimum %g, want 0.05", sum / 1000);
  ng_fn_destroy(&other);
  ng_fn_destroy(&fn);
}

/* ---- errors ------------------------------------------------------------------------------------------ */

static void expect_einval(const char *name, size_t n, const char *const *fragments) {
  static int sentinel;
  ng_fn *fn = (ng_fn *)(void *)&sentinel; /* not NULL, to see that create clears it */
  ng_error_clear();
  assert_int_equal(ng_fn_create(name, n, 1, &fn), NG_EINVAL);
  assert_null(fn);
  for (; *fragments; fragments++) {
    if (!strstr(ng_errmsg(), *fragments)) fail_msg("message '%s' lacks '%s'", ng_errmsg(), *fragments);
  }
}

static void test_errors(void **state) {
  (void)state;
  expect_einval("foo", 3,
                (const char *const[]){"unknown function 'foo'", "known: sphere, ellipsoid",
                                      "rot-rastrigin, noisy-sphere)", NULL});
  expect_einval("Sphere", 3, (const char *const[]){"'Sphere'", NULL});
  expect_einval("rot-noisy-sphere", 3, (const char *const[]){"'rot-noisy-sphere'", NULL});
  expect_einval("sphere", 0, (const char *const[]){"'sphere'", "n >= 1", "n = 0", NULL});
  expect_einval("rot-cigar", 0, (const char *const[]){"'rot-cigar'", "n = 0", NULL});
  expect_einval("rosenbrock", 1, (const char *const[]){"'rosenbrock'", "n >= 2", "n = 1", NULL});
  expect_einval("diffpow", 1, (const char *const[]){"'diffpow'", "n >= 2", "n = 1", NULL});
  expect_einval("rot-diffpow", 1, (const char *const[]){"'rot-diffpow'", "n >= 2", NULL});
  expect_einval(NULL, 3, (const char *const[]){"NULL", NULL});
  assert_int_equal(ng_fn_create("sphere", 3, 1, NULL), NG_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names),
      cmocka_unit_test(test_known_values),
      cmocka_unit_test(test_optimum_is_zero),
      cmocka_unit_test(test_rotation_orthogonal),
      cmocka_unit_test(test_rotated_is_f_of_rx),
      cmocka_unit_test(test_rot_sphere_is_sphere),
      cmocka_unit_test(test_rotation_from_seed),
      cmocka_unit_test(test_rotation_sign_symmetric),
      cmocka_unit_test(test_rotated_needs_work),
      cmocka_unit_test(test_noisy_sphere),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
