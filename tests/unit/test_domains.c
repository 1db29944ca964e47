/* Synthetic multi-domain data (src/data/domains.c): rows independent of how they are batched, domains that
 * differ as configured (image orientation by the angle, second moments by the scale squared, pixel variance
 * by the noise, class frequencies by the priors), classes a nearest-class-mean classifier learns on one
 * domain and that a shifted domain makes it worse at, and the dataset file. Not an MPI test. */
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
#include <unistd.h>

#include "nograd/data.h"
#include "nograd/domains.h"
#include "nograd/error.h"

#define PI 3.14159265358979323846
#define SIDE NG_DOMAINS_SIDE
#define PIX ((size_t)SIDE * SIDE)

static char dir[256];

/* Rows [row0, row0+n) of a preset, malloc'd. */
static void gen(const ng_domains_config *cfg, const char *domain, size_t n, uint64_t row0, float **x,
                int32_t **y) {
  size_t w = ng_domains_row_size(cfg);
  *x = malloc(n * w * sizeof **x);
  *y = malloc(n * sizeof **y);
  assert_non_null(*x);
  assert_non_null(*y);
  check(ng_domains_generate(cfg, domain, n, row0, *x, *y), domain);
}

static void test_determinism(void **state) {
  for (int kind = 0; kind < 2; kind++) {
    ng_domains_config cfg = {.kind = (ng_domains_kind)kind, .seed = 7};
    size_t w = ng_domains_row_size(&cfg);
    assert_int_equal(w, kind ? NG_DOMAINS_DEFAULT_DIM : PIX);
    float *xa, *xb, *xc;
    int32_t *ya, *yb, *yc;
    gen(&cfg, "target", 100, 0, &xa, &ya);
    gen(&cfg, "target", 50, 50, &xb, &yb);
    assert_memory_equal(xa + 50 * w, xb, 50 * w * sizeof *xa);
    assert_memory_equal(ya + 50, yb, 50 * sizeof *ya);
    /* one row alone, and the same call again */
    free(xb);
    free(yb);
    gen(&cfg, "target", 1, 73, &xb, &yb);
    assert_memory_equal(xa + 73 * w, xb, w * sizeof *xa);
    assert_int_equal(ya[73], yb[0]);
    gen(&cfg, "target", 100, 0, &xc, &yc);
    assert_memory_equal(xa, xc, 100 * w * sizeof *xa);
    for (size_t i = 0; i < 100; i++) {
      assert_true(ya[i] >= 0 && ya[i] < NG_DOMAINS_DEFAULT_CLASSES);
      for (size_t j = 0; kind == 0 && j < w; j++)
        assert_true(xa[i * w + j] >= 0.0f && xa[i * w + j] <= 1.0f);
    }
    free(xc);
    free(yc);
    /* another seed, another domain: other data */
    cfg.seed = 8;
    gen(&cfg, "target", 100, 0, &xc, &yc);
    assert_memory_not_equal(xa, xc, 100 * w * sizeof *xa);
    free(xc);
    free(yc);
    cfg.seed = 7;
    gen(&cfg, "upright", 100, 0, &xc, &yc);
    assert_memory_not_equal(xa, xc, 100 * w * sizeof *xa);
    free(xa);
    free(ya);
    free(xb);
    free(yb);
    free(xc);
    free(yc);
  }
}

static void test_errors(void **state) {
  ng_domains_config cfg = {.kind = NG_DOMAINS_IMAGES, .seed = 1};
  float x[PIX];
  int32_t y;
  assert_int_equal(ng_domains_generate(&cfg, "sideways", 1, 0, x, &y), NG_ENOTFOUND);
  assert_non_null(strstr(ng_errmsg(), "unknown domain 'sideways' (known: upright, tilted, small, noisy"));
  assert_int_equal(ng_domains_generate(&cfg, "upright", 2, 0xFFFFFFFFull, x, &y), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "2^32"));
  check(ng_domains_generate(&cfg, "upright", 1, 0xFFFFFFFFull, x, &y), "last row");
  cfg.classes = 1;
  assert_int_equal(ng_domains_generate(&cfg, "upright", 1, 0, x, &y), NG_EINVAL);
  cfg.classes = 0;
  ng_domain_shift bad = *ng_domains_find("tilted");
  bad.scale = 0;
  assert_int_equal(ng_domains_generate_shift(&cfg, &bad, 1, 0, x, &y), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "domain 'tilted'"));
}

/* Intensity moments of an image in the frame x right, y up, of the pixels above a background threshold. */
typedef struct {
  double xx, yy, xy;
} moments;

static moments image_moments(const float *img, double threshold) {
  double m = 0, sx = 0, sy = 0;
  for (int i = 0; i < SIDE; i++)
    for (int j = 0; j < SIDE; j++) {
      double w = img[i * SIDE + j] - threshold;
      if (w <= 0) continue;
      double px = j + 0.5 - SIDE / 2.0, py = SIDE / 2.0 - (i + 0.5);
      m += w;
      sx += w * px;
      sy += w * py;
    }
  moments r = {0, 0, 0};
  if (m <= 0) return r;
  double cx = sx / m, cy = sy / m;
  for (int i = 0; i < SIDE; i++)
    for (int j = 0; j < SIDE; j++) {
      double w = img[i * SIDE + j] - threshold;
      if (w <= 0) continue;
      double px = j + 0.5 - SIDE / 2.0 - cx, py = SIDE / 2.0 - (i + 0.5) - cy;
      r.xx += w * px * px;
      r.yy += w * py * py;
      r.xy += w * px * py;
    }
  r.xx /= m;
  r.yy /= m;
  r.xy /= m;
  return r;
}

/* Class-mean images of n rows: K x PIX. */
static double *class_means(const float *x, const int32_t *y, size_t n, size_t w, size_t K) {
  double *mean = calloc(K * w, sizeof *mean);
  size_t *count = calloc(K, sizeof *count);
  assert_non_null(mean);
  assert_non_null(count);
  for (size_t i = 0; i < n; i++) {
    count[y[i]]++;
    for (size_t j = 0; j < w; j++)
      mean[(size_t)y[i] * w + j] += x[i * w + j];
  }
  for (size_t c = 0; c < K; c++)
    for (size_t j = 0; j < w; j++)
      mean[c * w + j] /= count[c] ? (double)count[c] : 1.0;
  free(count);
  return mean;
}

/* The mean over elongated classes of the change of orientation (degrees) of the class-mean image. */
static double orientation_shift(const ng_domains_config *cfg, const char *domain, size_t n) {
  size_t K = NG_DOMAINS_DEFAULT_CLASSES, used = 0;
  float *xa, *xb;
  int32_t *ya, *yb;
  gen(cfg, "upright", n, 0, &xa, &ya);
  gen(cfg, domain, n, 0, &xb, &yb);
  double *ma = class_means(xa, ya, n, PIX, K), *mb = class_means(xb, yb, n, PIX, K), sum = 0;
  for (size_t c = 0; c < K; c++) {
    float ia[PIX], ib[PIX];
    for (size_t j = 0; j < PIX; j++) {
      ia[j] = (float)ma[c * PIX + j];
      ib[j] = (float)mb[c * PIX + j];
    }
    moments a = image_moments(ia, 0.05), b = image_moments(ib, 0.05);
    double l1 = 0.5 * (a.xx + a.yy) + sqrt(0.25 * (a.xx - a.yy) * (a.xx - a.yy) + a.xy * a.xy);
    double l2 = a.xx + a.yy - l1;
    if (l1 < 1.5 * l2) continue; /* nearly isotropic: no orientation to measure */
    double ta = 0.5 * atan2(2 * a.xy, a.xx - a.yy), tb = 0.5 * atan2(2 * b.xy, b.xx - b.yy);
    double dt = (tb - ta) * 180 / PI;
    while (dt > 90)
      dt -= 180;
    while (dt <= -90)
      dt += 180;
    sum += dt;
    used++;
  }
  assert_true(used >= 3);
  free(ma);
  free(mb);
  free(xa);
  free(ya);
  free(xb);
  free(yb);
  return sum / (double)used;
}

static void test_rotation(void **state) {
  ng_domains_config cfg = {.kind = NG_DOMAINS_IMAGES, .seed = 3};
  double tilted = orientation_shift(&cfg, "tilted", 3000), target = orientation_shift(&cfg, "target", 3000);
  double upright = orientation_shift(&cfg, "small", 3000);
  print_message("orientation change: tilted %.1f (20), target %.1f (10), small %.1f (0) degrees\n", tilted,
                target, upright);
  assert_true(fabs(tilted - 20) < 3);
  assert_true(fabs(target - 10) < 3);
  assert_true(fabs(upright) < 3);
}

/* The mean over rows of the trace of the second moments, and the mean pixel variance about the class means.
 */
static void image_stats(const ng_domains_config *cfg, const char *domain, size_t n, double *m2, double *var) {
  float *x;
  int32_t *y;
  gen(cfg, domain, n, 0, &x, &y);
  double *mean = class_means(x, y, n, PIX, NG_DOMAINS_DEFAULT_CLASSES);
  *m2 = 0;
  *var = 0;
  for (size_t i = 0; i < n; i++) {
    moments m = image_moments(x + i * PIX, 0.2);
    *m2 += m.xx + m.yy;
    for (size_t j = 0; j < PIX; j++) {
      double e = x[i * PIX + j] - mean[(size_t)y[i] * PIX + j];
      *var += e * e;
    }
  }
  *m2 /= (double)n;
  *var /= (double)n * PIX;
  free(mean);
  free(x);
  free(y);
}

static void test_scale_noise(void **state) {
  ng_domains_config cfg = {.kind = NG_DOMAINS_IMAGES, .seed = 3};
  double m2u, vu, m2s, vs, m2n, vn;
  image_stats(&cfg, "upright", 2000, &m2u, &vu);
  image_stats(&cfg, "small", 2000, &m2s, &vs);
  image_stats(&cfg, "noisy", 2000, &m2n, &vn);
  print_message(
      "second moments small/upright %.3f (0.75^2 = 0.5625); pixel variance upright %.4f, noisy %.4f\n",
      m2s / m2u, vu, vn);
  assert_true(fabs(m2s / m2u - 0.5625) < 0.06);
  /* clipping at 0 keeps about a third of the added variance 0.25^2 on the background */
  assert_true(vn > vu + 0.25 * 0.25 * 0.25);
}

static void test_priors(void **state) {
  const size_t n = 20000;
  const char *domains[] = {"upright", "skewed", "target"};
  for (int kind = 0; kind < 2; kind++)
    for (size_t k = 0; k < 3; k++) {
      ng_domains_config cfg = {.kind = (ng_domains_kind)kind, .seed = 11, .classes = 8, .dim = 8};
      float *x;
      int32_t *y;
      gen(&cfg, domains[k], n, 0, &x, &y);
      double p[8];
      size_t count[8] = {0};
      ng_domains_priors(ng_domains_find(domains[k]), 8, p);
      for (size_t i = 0; i < n; i++)
        count[y[i]]++;
      for (int c = 0; c < 8; c++) {
        double expect = (double)n * p[c], sd = sqrt((double)n * p[c] * (1 - p[c]));
        if (fabs((double)count[c] - expect) > 3 * sd)
          fail_msg("%s: class %d: %zu rows, expected %.0f +- %.0f", domains[k], c, count[c], expect, 3 * sd);
      }
      if (k == 1) assert_true(fabs(p[0] / p[7] - 10) < 1e-9);
      free(x);
      free(y);
    }
}

/* Accuracy on (xt, yt) of the nearest class mean of `mean`. */
static double ncm_accuracy(const double *mean, size_t K, size_t w, const float *x, const int32_t *y,
                           size_t n) {
  size_t right = 0;
  for (size_t i = 0; i < n; i++) {
    double best = INFINITY;
    size_t arg = 0;
    for (size_t c = 0; c < K; c++) {
      double d2 = 0;
      for (size_t j = 0; j < w; j++) {
        double e = x[i * w + j] - mean[c * w + j];
        d2 += e * e;
      }
      if (d2 < best) {
        best = d2;
        arg = c;
      }
    }
    right += (int32_t)arg == y[i];
  }
  return (double)right / (double)n;
}

static void test_learnable(void **state) {
  const size_t n = 3000, K = NG_DOMAINS_DEFAULT_CLASSES;
  const char *shifted[] = {"tilted", "small", "noisy", "bold", "faint", "target"};
  for (int kind = 0; kind < 2; kind++) {
    ng_domains_config cfg = {.kind = (ng_domains_kind)kind, .seed = 5};
    size_t w = ng_domains_row_size(&cfg);
    float *x, *xt;
    int32_t *y, *yt;
    gen(&cfg, "upright", n, 0, &x, &y);
    double *mean = class_means(x, y, n, w, K);
    gen(&cfg, "upright", n, n, &xt, &yt); /* held-out rows of the same domain */
    double same = ncm_accuracy(mean, K, w, xt, yt, n), accs[6];
    char line[512];
    int len = snprintf(line, sizeof line, "%s: nearest class mean trained on upright: upright %.3f",
                       kind ? "vectors" : "images", same);
    assert_true(same > 0.8);
    for (size_t k = 0; k < sizeof shifted / sizeof shifted[0]; k++) {
      free(xt);
      free(yt);
      gen(&cfg, shifted[k], n, 0, &xt, &yt);
      double acc = ncm_accuracy(mean, K, w, xt, yt, n);
      len += snprintf(line + len, sizeof line - (size_t)len, ", %s %.3f", shifted[k], acc);
      accs[k] = acc;
    }
    print_message("%s\n", line);
    for (size_t k = 0; k < sizeof shifted / sizeof shifted[0]; k++)
      if (strcmp(shifted[k], "tilted") == 0 || strcmp(shifted[k], "target") == 0) {
        if (!(accs[k] < same - 0.05 && accs[k] > 2.0 / (double)K))
          fail_msg("%s: accuracy on %s %.3f, on upright %.3f", line, shifted[k], accs[k], same);
      }
    free(mean);
    free(x);
    free(y);
    free(xt);
    free(yt);
  }
}

static void test_file(void **state) {
  char path[512];
  for (int kind = 0; kind < 2; kind++) {
    ng_domains_config cfg = {.kind = (ng_domains_kind)kind, .seed = 9, .classes = 4, .dim = 6};
    snprintf(path, sizeof path, "%s/synth-%d.h5", dir, kind);
    check(ng_domains_write(&cfg, "noisy", 120, path), "write");
    ng_dataset *ds = NULL;
    check(ng_dataset_open(path, &ds), "open");
    const ng_data_info *info = ng_dataset_info(ds);
    assert_int_equal(info->n, 120);
    assert_int_equal(info->classes, 4);
    assert_int_equal(info->t, 0);
    assert_string_equal(info->name, kind ? "synth-vectors" : "synth-images");
    assert_string_equal(info->domain, "noisy");
    if (kind) {
      assert_int_equal(info->xrank, 1);
      assert_int_equal(info->d, 6);
    } else {
      assert_int_equal(info->xrank, 3);
      assert_int_equal(info->xdims[0], 1);
      assert_int_equal(info->xdims[1], SIDE);
      assert_int_equal(info->xdims[2], SIDE);
    }
    size_t w = info->d;
    float *x = malloc(20 * w * sizeof *x), *xg;
    int32_t y[20], *yg;
    assert_non_null(x);
    check(ng_dataset_read_rows(ds, 100, 20, x, y), "read");
    gen(&cfg, "noisy", 20, 100, &xg, &yg);
    assert_memory_equal(x, xg, 20 * w * sizeof *x);
    assert_memory_equal(y, yg, sizeof y);
    ng_dataset_close(&ds);
    free(x);
    free(xg);
    free(yg);
  }
  snprintf(path, sizeof path, "%s/none.h5", dir);
  ng_domains_config cfg = {.kind = NG_DOMAINS_VECTORS};
  assert_int_equal(ng_domains_write(&cfg, "nowhere", 10, path), NG_ENOTFOUND);
  assert_int_equal(access(path, F_OK), -1);
}

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/nograd-test-domains-XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_determinism), cmocka_unit_test(test_errors), cmocka_unit_test(test_rotation),
      cmocka_unit_test(test_scale_noise), cmocka_unit_test(test_priors), cmocka_unit_test(test_learnable),
      cmocka_unit_test(test_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
