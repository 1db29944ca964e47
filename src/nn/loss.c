/* Losses and metrics (include/nograd/loss.h). Sums run over the batch in order and in double, so a chunk's
 * partial loss is the same bits on every rank. */
#include "nograd/loss.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/metrics.h"

struct ng_confusion {
  size_t classes;
  int64_t *counts;
};

double ng_loss_cross_entropy(const float *logits, const int32_t *y, size_t batch, size_t classes,
                             float *dlogits) {
  double total = 0;
  if (classes == 0) return batch ? NAN : 0.0;
  for (size_t r = 0; r < batch; r++) {
    const float *z = logits + r * classes;
    double mx = z[0], sum = 0;
    for (size_t j = 1; j < classes; j++)
      if (z[j] > mx) mx = z[j];
    for (size_t j = 0; j < classes; j++)
      sum += exp((double)z[j] - mx);
    /* sum >= 1: the largest logit contributes exp(0). */
    // cppcheck-suppress invalidFunctionArg
    double lse = mx + log(sum);
    int32_t label = y[r];
    int ok = label >= 0 && (size_t)label < classes;
    total += ok ? lse - z[label] : NAN;
    if (dlogits)
      for (size_t j = 0; j < classes; j++)
        dlogits[r * classes + j] = (float)(exp((double)z[j] - lse) - (ok && (size_t)label == j ? 1.0 : 0.0));
  }
  return total;
}

double ng_loss_mse(const float *out, const float *target, size_t batch, size_t width, float *dout) {
  double total = 0;
  for (size_t r = 0; r < batch; r++) {
    double s = 0;
    for (size_t j = 0; j < width; j++) {
      double d = (double)out[r * width + j] - target[r * width + j];
      s += d * d;
      if (dout) dout[r * width + j] = (float)(2.0 * d / (double)width);
    }
    total += s / (double)width;
  }
  return total;
}

const char *ng_metric_name(ng_metric metric) {
  for (size_t i = 0; i < ng_metric_def_count(); i++)
    if (ng_metric_def_at(i)->eval == (int)metric && (unsigned)metric < NG_METRIC_COUNT) return ng_metric_def_at(i)->name;
  return "unknown";
}

int ng_metric_from_name(const char *name, ng_metric *out) {
  const ng_metric_def *def = ng_metric_def_find(name);
  if (def && def->eval >= 0 && def->eval < NG_METRIC_COUNT) {
    *out = (ng_metric)def->eval;
    return NG_OK;
  }
  char known[256] = "", *p = known;
  for (int m = 0; m < NG_METRIC_COUNT; m++)
    p += snprintf(p, sizeof known - (size_t)(p - known), "%s%s", m ? ", " : "", ng_metric_name((ng_metric)m));
  return ng_error(NG_EINVAL, "unknown metric '%s' (known: %s)", name ? name : "(null)", known);
}

int ng_confusion_create(size_t classes, ng_confusion **out) {
  if (!out) return ng_error(NG_EINVAL, "ng_confusion_create: out is NULL");
  *out = NULL;
  if (classes < 2 || classes > 65536)
    return ng_error(NG_EINVAL, "confusion matrix: %zu classes, expected 2 to 65536", classes);
  ng_confusion *c = malloc(sizeof *c);
  int64_t *counts = calloc(classes * classes, sizeof *counts);
  if (!c || !counts) {
    free(c);
    free(counts);
    return ng_error(NG_ENOMEM, "confusion matrix: out of memory for %zu classes", classes);
  }
  c->classes = classes;
  c->counts = counts;
  *out = c;
  return NG_OK;
}

void ng_confusion_destroy(ng_confusion **c) {
  if (!c || !*c) return;
  free((*c)->counts);
  free(*c);
  *c = NULL;
}

void ng_confusion_clear(ng_confusion *c) {
  memset(c->counts, 0, c->classes * c->classes * sizeof *c->counts);
}
size_t ng_confusion_classes(const ng_confusion *c) {
  return c->classes;
}
int64_t *ng_confusion_counts(ng_confusion *c) {
  return c->counts;
}
const int64_t *ng_confusion_counts_const(const ng_confusion *c) {
  return c->counts;
}

static size_t argmax_row(const float *z, size_t classes) {
  size_t best = 0;
  while (best + 1 < classes && isnan(z[best]))
    best++;
  for (size_t j = best + 1; j < classes; j++)
    if (z[j] > z[best]) best = j;
  return best;
}

/* The thresholded class of one row of a binary classifier's logits: 1 when softmax(z)[1] >= threshold.
 * softmax(z)[1] = 1 / (1 + exp(z0 - z1)), stable for either sign; a NaN logit gives p1 = NaN: class 0. */
static int threshold_class(const float *z, double threshold) {
  double d = (double)z[0] - z[1];
  double p1 = d > 0 ? exp(-d) / (1.0 + exp(-d)) : 1.0 / (1.0 + exp(d));
  return p1 >= threshold;
}

int ng_confusion_add_threshold(ng_confusion *c, const float *logits, const int32_t *y, size_t batch,
                               double threshold) {
  if (c->classes != 2)
    return ng_error(NG_EINVAL,
                    "confusion matrix: a decision threshold needs a binary classifier, not %zu classes",
                    c->classes);
  if (!(threshold >= 0 && threshold <= 1))
    return ng_error(NG_EINVAL, "confusion matrix: the decision threshold must be in [0, 1], got %g",
                    threshold);
  for (size_t r = 0; r < batch; r++)
    if (y[r] != 0 && y[r] != 1)
      return ng_error(NG_EINVAL, "confusion matrix: label %d of example %zu is outside [0, 2)", (int)y[r], r);
  for (size_t r = 0; r < batch; r++)
    c->counts[(size_t)y[r] * 2 + (size_t)threshold_class(logits + 2 * r, threshold)]++;
  return NG_OK;
}

int ng_confusion_add(ng_confusion *c, const float *logits, const int32_t *y, size_t batch) {
  size_t K = c->classes;
  for (size_t r = 0; r < batch; r++)
    if (y[r] < 0 || (size_t)y[r] >= K)
      return ng_error(NG_EINVAL, "confusion matrix: label %d of example %zu is outside [0, %zu)", (int)y[r],
                      r, K);
  for (size_t r = 0; r < batch; r++)
    c->counts[(size_t)y[r] * K + argmax_row(logits + r * K, K)]++;
  return NG_OK;
}

int ng_confusion_merge(ng_confusion *dst, const ng_confusion *src) {
  if (dst->classes != src->classes)
    return ng_error(NG_EMISMATCH, "confusion matrices of %zu and %zu classes cannot be added", dst->classes,
                    src->classes);
  for (size_t i = 0; i < dst->classes * dst->classes; i++)
    dst->counts[i] += src->counts[i];
  return NG_OK;
}

double ng_metric_from_confusion(const ng_confusion *c, ng_metric metric) {
  size_t K = c->classes;
  int64_t total = 0, correct = 0;
  double sum = 0;
  size_t present = 0;
  for (size_t k = 0; k < K; k++) {
    int64_t row = 0, col = 0, tp = c->counts[k * K + k];
    for (size_t j = 0; j < K; j++) {
      row += c->counts[k * K + j];
      col += c->counts[j * K + k];
    }
    total += row;
    correct += tp;
    if (metric == NG_METRIC_BALANCED_ERROR && row > 0) {
      sum += (double)tp / (double)row;
      present++;
    } else if (metric == NG_METRIC_MACRO_F1 && (row > 0 || col > 0)) {
      sum += 2.0 * (double)tp / (double)(row + col); /* 2TP / (2TP + FP + FN) */
      present++;
    }
  }
  switch (metric) {
    case NG_METRIC_ACCURACY:
      return total ? (double)correct / (double)total : NAN;
    case NG_METRIC_ERROR:
      return total ? 1.0 - (double)correct / (double)total : NAN;
    case NG_METRIC_BALANCED_ERROR:
      return present ? 1.0 - sum / (double)present : NAN;
    case NG_METRIC_MACRO_F1:
      return present ? sum / (double)present : NAN;
  }
  return NAN;
}

int64_t ng_metric_threshold_error(const float *logits, const int32_t *y, size_t batch, double threshold) {
  int64_t errors = 0;
  for (size_t r = 0; r < batch; r++)
    errors += (y[r] != 0 && y[r] != 1) || threshold_class(logits + 2 * r, threshold) != y[r];
  return errors;
}

int64_t ng_topk_error(const float *logits, const int32_t *y, size_t batch, size_t classes, size_t k) {
  int64_t errors = 0;
  for (size_t r = 0; r < batch; r++) {
    int32_t label = y[r];
    if (label < 0 || (size_t)label >= classes) {
      errors++;
      continue;
    }
    const float *z = logits + r * classes;
    float zl = z[label];
    size_t rank = 0; /* classes ranked before the label */
    for (size_t j = 0; j < classes; j++)
      if (z[j] > zl || (j < (size_t)label && z[j] == zl) || (isnan(zl) && !isnan(z[j]))) rank++;
    errors += rank >= k;
  }
  return errors;
}
