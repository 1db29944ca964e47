/* Losses and metrics (src/nn/loss.c): cross-entropy and MSE against values computed by hand, with their
 * gradients against central differences; metrics of a hand-made confusion matrix (values worked out in the
 * comments); chunks that add up to the whole; ties, thresholds (threshold_error, and confusion counts at a
 * decision threshold), top-k, and metric names. Not an MPI test. */
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

#include "nograd/error.h"
#include "nograd/loss.h"

static void test_cross_entropy(void **state) {
  /* -log softmax(1, 2, 3)[2] = log(1 + e^-1 + e^-2) = 0.40760596444; for label 0: 2.40760596444 */
  const float z[6] = {1, 2, 3, 1, 2, 3};
  const int32_t y[2] = {2, 0};
  float d[6];
  double l = ng_loss_cross_entropy(z, y, 2, 3, d);
  assert_float_equal(l, 0.40760596444 + 2.40760596444, 1e-9);
  double e = exp(1) + exp(2) + exp(3);
  assert_float_equal(d[0], exp(1) / e, 1e-7);
  assert_float_equal(d[2], exp(3) / e - 1, 1e-7);
  assert_float_equal(d[3], exp(1) / e - 1, 1e-7);
  /* The gradient of the sum, against central differences in double on the loss. */
  float zz[6];
  memcpy(zz, z, sizeof z);
  for (int i = 0; i < 6; i++) {
    float keep = zz[i];
    zz[i] = keep + 1e-2f;
    double lp = ng_loss_cross_entropy(zz, y, 2, 3, NULL);
    zz[i] = keep - 1e-2f;
    double lm = ng_loss_cross_entropy(zz, y, 2, 3, NULL);
    zz[i] = keep;
    assert_float_equal((lp - lm) / 2e-2, d[i], 1e-4);
  }
  /* Stable for large logits: softmax(1000, 0) with label 1 costs 1000. */
  const float big[2] = {1000, 0};
  const int32_t one = 1;
  assert_float_equal(ng_loss_cross_entropy(big, &one, 1, 2, NULL), 1000, 1e-9);
  /* A label out of range is a NaN loss, which ranks last. */
  const int32_t bad = 3;
  assert_true(isnan(ng_loss_cross_entropy(z, &bad, 1, 3, NULL)));
}

static void test_mse(void **state) {
  /* example 1: ((1-0)^2 + (2-4)^2) / 2 = 2.5; example 2: ((0-1)^2 + (1-1)^2) / 2 = 0.5 */
  const float out[4] = {1, 2, 0, 1}, target[4] = {0, 4, 1, 1};
  float d[4];
  assert_float_equal(ng_loss_mse(out, target, 2, 2, d), 3.0, 1e-12);
  const float want[4] = {1, -2, -1, 0}; /* 2 (out - target) / 2 */
  for (int i = 0; i < 4; i++)
    assert_float_equal(d[i], want[i], 1e-7);
}

/* Adds `n` examples of true class t predicted as p (one-hot logits, so the argmax is p). */
static void add_cell(ng_confusion *c, size_t K, int32_t t, int32_t p, int n) {
  float z[8] = {0};
  z[p] = 1;
  for (int i = 0; i < n; i++)
    check(ng_confusion_add(c, z, &t, 1), "add");
  (void)K;
}

static void test_confusion_metrics(void **state) {
  /* true \ predicted   0  1  2
   *   0                5  1  0
   *   1                2  3  1
   *   2                0  0  0    (class 2 never occurs but is predicted once)
   * accuracy 8/12; balanced error 1 - (5/6 + 3/6)/2 = 1/3 (class 2 is not in the labels);
   * F1: class 0 2*5/(6+7) = 10/13, class 1 2*3/(6+4) = 0.6, class 2 0 (present among the predictions):
   * macro F1 = (10/13 + 0.6 + 0) / 3 = 0.45641025641 */
  ng_confusion *c = NULL, *a = NULL, *b = NULL;
  check(ng_confusion_create(3, &c), "create");
  check(ng_confusion_create(3, &a), "create");
  check(ng_confusion_create(3, &b), "create");
  assert_true(isnan(ng_metric_from_confusion(c, NG_METRIC_ACCURACY)));
  add_cell(c, 3, 0, 0, 5);
  add_cell(c, 3, 0, 1, 1);
  add_cell(c, 3, 1, 0, 2);
  add_cell(c, 3, 1, 1, 3);
  add_cell(c, 3, 1, 2, 1);
  assert_int_equal(ng_confusion_counts(c)[0 * 3 + 1], 1);
  assert_int_equal(ng_confusion_counts(c)[1 * 3 + 0], 2);
  assert_float_equal(ng_metric_from_confusion(c, NG_METRIC_ACCURACY), 8.0 / 12, 1e-12);
  assert_float_equal(ng_metric_from_confusion(c, NG_METRIC_ERROR), 4.0 / 12, 1e-12);
  assert_float_equal(ng_metric_from_confusion(c, NG_METRIC_BALANCED_ERROR), 1.0 / 3, 1e-12);
  assert_float_equal(ng_metric_from_confusion(c, NG_METRIC_MACRO_F1), 0.45641025641, 1e-10);
  /* Two chunks add up to the whole, bit for bit. */
  add_cell(a, 3, 0, 0, 5);
  add_cell(a, 3, 1, 2, 1);
  add_cell(b, 3, 0, 1, 1);
  add_cell(b, 3, 1, 0, 2);
  add_cell(b, 3, 1, 1, 3);
  check(ng_confusion_merge(a, b), "merge");
  assert_memory_equal(ng_confusion_counts(a), ng_confusion_counts(c), 9 * sizeof(int64_t));
  for (int mtr = 0; mtr < NG_METRIC_COUNT; mtr++)
    assert_true(ng_metric_from_confusion(a, (ng_metric)mtr) == ng_metric_from_confusion(c, (ng_metric)mtr));
  ng_confusion *two = NULL;
  check(ng_confusion_create(2, &two), "create");
  assert_int_equal(ng_confusion_merge(a, two), NG_EMISMATCH);
  /* Ties go to the lowest class; a NaN logit never wins; bad labels are refused and nothing is counted. */
  ng_confusion_clear(c);
  const float tie[6] = {1, 1, 0, NAN, 0, 2};
  const int32_t ty[2] = {1, 2};
  check(ng_confusion_add(c, tie, ty, 2), "ties");
  assert_int_equal(ng_confusion_counts(c)[1 * 3 + 0], 1);
  assert_int_equal(ng_confusion_counts(c)[2 * 3 + 2], 1);
  const int32_t bad[2] = {0, 3};
  assert_int_equal(ng_confusion_add(c, tie, bad, 2), NG_EINVAL);
  assert_string_equal(ng_errmsg(), "confusion matrix: label 3 of example 1 is outside [0, 3)");
  assert_int_equal(ng_confusion_counts(c)[0], 0);
  ng_confusion_destroy(&two);
  assert_int_equal(ng_confusion_create(1, &two), NG_EINVAL);
  assert_null(two);
  ng_confusion_destroy(&b);
  ng_confusion_destroy(&a);
  ng_confusion_destroy(&c);
  assert_null(c);
}

static void test_threshold_topk(void **state) {
  /* p1 = softmax(z)[1]: (0, 0) -> 0.5; (0, ln 3) -> 0.75; (2, 0) -> 0.119 */
  const float z[6] = {0, 0, 0, (float)log(3.0), 2, 0};
  const int32_t y[3] = {1, 0, 0};
  assert_int_equal(ng_metric_threshold_error(z, y, 3, 0.5), 1);  /* predictions 1, 1, 0 */
  assert_int_equal(ng_metric_threshold_error(z, y, 3, 0.8), 1);  /* predictions 0, 0, 0 */
  assert_int_equal(ng_metric_threshold_error(z, y, 3, 0.05), 2); /* predictions 1, 1, 1 */
  const int32_t bad[1] = {2};
  assert_int_equal(ng_metric_threshold_error(z, bad, 1, 0.5), 1);
  /* top-k: logits (3, 2, 1) label 2 is third; ties rank the lower class first */
  const float t[6] = {3, 2, 1, 1, 1, 1};
  const int32_t ty[2] = {2, 1};
  assert_int_equal(ng_topk_error(t, ty, 2, 3, 1), 2);
  assert_int_equal(ng_topk_error(t, ty, 2, 3, 2), 1);
  assert_int_equal(ng_topk_error(t, ty, 2, 3, 3), 0);
}

/* The confusion counts at a decision threshold: the rows of the hand-made cases above, a NaN row, the
 * agreement of their errors with ng_metric_threshold_error on many rows and thresholds (the same formula),
 * a threshold of 0.5 against the argmax (they differ only on a tie, which the argmax gives to class 0), and
 * the refusals, which count nothing. */
static void test_confusion_threshold(void **state) {
  const float z[8] = {0, 0, 0, (float)log(3.0), 2, 0, NAN, 1}; /* p1 = 0.5, 0.75, 0.119, NaN */
  const int32_t y[4] = {1, 0, 0, 1};
  ng_confusion *c = NULL, *a = NULL, *three = NULL;
  check(ng_confusion_create(2, &c), "create");
  check(ng_confusion_create(2, &a), "create");
  check(ng_confusion_add_threshold(c, z, y, 4, 0.8), "add at 0.8"); /* predictions 0, 0, 0, 0 */
  const int64_t *k = ng_confusion_counts_const(c);
  assert_true(k[0] == 2 && k[1] == 0 && k[2] == 2 && k[3] == 0);
  ng_confusion_clear(c);
  check(ng_confusion_add_threshold(c, z, y, 4, 0.05), "add at 0.05"); /* 1, 1, 1, and 0 for the NaN row */
  assert_true(k[0] == 0 && k[1] == 2 && k[2] == 1 && k[3] == 1);
  ng_confusion_clear(c);
  check(ng_confusion_add_threshold(c, z, y, 3, 0.5), "add at 0.5"); /* 1, 1, 0: the tie goes to class 1 */
  check(ng_confusion_add(a, z, y, 3), "argmax");                    /* 0, 1, 0: the tie goes to class 0 */
  assert_true(k[1] == 1 && k[2] == 0 && k[3] == 1);
  assert_int_equal(ng_confusion_counts_const(a)[2], 1);

  /* many rows: errors of the counts == threshold_error, at every threshold; balanced error by hand */
  enum { N = 1000 };
  float *zz = malloc(2 * N * sizeof *zz);
  int32_t *yy = malloc(N * sizeof *yy);
  assert_non_null(zz);
  assert_non_null(yy);
  uint64_t r = 88172645463325252ull;
  for (size_t i = 0; i < N; i++) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    zz[2 * i] = (float)((double)(r % 20001) / 2000.0 - 5.0);
    zz[2 * i + 1] = (float)((double)(r / 20001 % 20001) / 2000.0 - 5.0);
    yy[i] = (int32_t)(r >> 63);
  }
  const double thresholds[] = {0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999, 1};
  for (size_t t = 0; t < sizeof thresholds / sizeof thresholds[0]; t++) {
    ng_confusion_clear(c);
    check(ng_confusion_add_threshold(c, zz, yy, N, thresholds[t]), "add");
    int64_t wrong = k[1] + k[2];
    assert_int_equal(wrong, ng_metric_threshold_error(zz, yy, N, thresholds[t]));
    assert_int_equal(k[0] + k[1] + k[2] + k[3], N);
    double want = 1 - 0.5 * ((double)k[0] / (double)(k[0] + k[1]) + (double)k[3] / (double)(k[2] + k[3]));
    assert_float_equal(ng_metric_from_confusion(c, NG_METRIC_BALANCED_ERROR), want, 1e-15);
    assert_float_equal(ng_metric_from_confusion(c, NG_METRIC_ERROR), (double)wrong / N, 1e-15);
  }
  ng_confusion_clear(c);
  check(ng_confusion_add_threshold(c, zz, yy, N, 0), "threshold 0");
  assert_true(k[0] == 0 && k[2] == 0); /* p1 >= 0 for every finite row: all class 1 */

  /* refusals: not binary, a threshold outside [0, 1], a label outside {0, 1}; nothing is counted */
  check(ng_confusion_create(3, &three), "create 3");
  const float z3[3] = {0, 1, 2};
  const int32_t y3[1] = {1};
  assert_int_equal(ng_confusion_add_threshold(three, z3, y3, 1, 0.5), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "binary"));
  ng_confusion_clear(c);
  assert_int_equal(ng_confusion_add_threshold(c, z, y, 3, 1.5), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "1.5"));
  assert_int_equal(ng_confusion_add_threshold(c, z, y, 3, NAN), NG_EINVAL);
  const int32_t bad[3] = {1, 0, 2};
  assert_int_equal(ng_confusion_add_threshold(c, z, bad, 3, 0.5), NG_EINVAL);
  assert_non_null(strstr(ng_errmsg(), "label 2 of example 2"));
  assert_true(k[0] == 0 && k[1] == 0 && k[2] == 0 && k[3] == 0);
  free(zz);
  free(yy);
  ng_confusion_destroy(&three);
  ng_confusion_destroy(&a);
  ng_confusion_destroy(&c);
}

static void test_metric_names(void **state) {
  ng_metric m;
  for (int i = 0; i < NG_METRIC_COUNT; i++) {
    check(ng_metric_from_name(ng_metric_name((ng_metric)i), &m), "name");
    assert_int_equal(m, i);
  }
  check(ng_metric_from_name("macro_f1", &m), "macro_f1");
  assert_int_equal(m, NG_METRIC_MACRO_F1);
  assert_int_equal(ng_metric_from_name("f1", &m), NG_EINVAL);
  assert_string_equal(ng_errmsg(), "unknown metric 'f1' (known: accuracy, error, balanced_error, macro_f1)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cross_entropy),       cmocka_unit_test(test_mse),
      cmocka_unit_test(test_confusion_metrics),   cmocka_unit_test(test_threshold_topk),
      cmocka_unit_test(test_confusion_threshold), cmocka_unit_test(test_metric_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
