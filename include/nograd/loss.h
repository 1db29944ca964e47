/* Losses and exact metrics of model outputs.
 *
 * Losses are SUMS over the examples of a batch (not means), so that the partial losses of data chunks add up
 * to the loss of the whole set in a fixed order (the determinism contract of DESIGN.md); divide by the count
 * for a mean. Their gradients, when asked for, are the gradients of those sums.
 *
 * Classification metrics are computed exactly from a confusion matrix of int64 counts, which chunks and ranks
 * add up without rounding: fill one per chunk with ng_confusion_add, sum the counts (ng_confusion_merge, or
 * an MPI sum of ng_confusion_counts), then read any metric from the total.
 *
 * A label outside [0, classes) is not an error in the losses (the loss is NaN, which ranks last); it is in
 * ng_confusion_add. None of these functions is collective or allocates, but create. */
#ifndef NOGRAD_LOSS_H
#define NOGRAD_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sum over the batch of -log softmax(logits)[y] (logits: batch x classes, computed stably in double). When
 * dlogits is not NULL it receives softmax - onehot(y), the gradient of that sum. NaN for a bad label. */
NG_EXPORT double ng_loss_cross_entropy(const float *logits, const int32_t *y, size_t batch, size_t classes,
                             float *dlogits);

/* Sum over the batch of the mean over the width of (out - target)^2: PyTorch's MSELoss (reduction "mean") of
 * a batch times the batch size. dout, when not NULL, receives 2 (out - target) / width, its gradient. */
NG_EXPORT double ng_loss_mse(const float *out, const float *target, size_t batch, size_t width, float *dout);

typedef enum {
  NG_METRIC_ACCURACY = 0,       /* correct / total */
  NG_METRIC_ERROR = 1,          /* 0-1 error: 1 - accuracy */
  NG_METRIC_BALANCED_ERROR = 2, /* 1 - mean recall over the classes present in the labels */
  NG_METRIC_MACRO_F1 = 3        /* mean F1 over the classes present in the labels or the predictions */
} ng_metric;

#define NG_METRIC_COUNT 4

/* "accuracy", "error", "balanced_error", "macro_f1". */
NG_EXPORT const char *ng_metric_name(ng_metric metric);

/* The metric of a name; NG_EINVAL lists the known names. */
NG_EXPORT int ng_metric_from_name(const char *name, ng_metric *out);

/* A classes x classes count matrix: row = true class, column = predicted class. */
typedef struct ng_confusion ng_confusion;

/* NG_EINVAL for classes < 2; NG_ENOMEM. */
NG_EXPORT int ng_confusion_create(size_t classes, ng_confusion **out);
NG_EXPORT void ng_confusion_destroy(ng_confusion **c);
NG_EXPORT void ng_confusion_clear(ng_confusion *c);
NG_EXPORT size_t ng_confusion_classes(const ng_confusion *c);

/* The counts, row-major (classes * classes int64): to read, or to sum across ranks. */
NG_EXPORT int64_t *ng_confusion_counts(ng_confusion *c);
NG_EXPORT const int64_t *ng_confusion_counts_const(const ng_confusion *c);

/* Counts a batch: the prediction is the argmax of each row of logits (batch x classes), ties to the lowest
 * class (a NaN logit never wins). NG_EINVAL names the first label outside [0, classes); nothing is counted
 * then. */
NG_EXPORT int ng_confusion_add(ng_confusion *c, const float *logits, const int32_t *y, size_t batch);

/* Counts a batch of a binary classifier at a decision threshold: the prediction is class 1 when
 * softmax(logits)[1] >= threshold (logits batch x 2; a row with a NaN logit is class 0), by the formula of
 * ng_metric_threshold_error, so that the errors of these counts are that function's count. For every metric
 * of a model that carries a threshold (ng_model_threshold): `nograd eval` and the nn objective count with it.
 * NG_EINVAL: a matrix that is not 2 x 2, a threshold outside [0, 1], or (named) the first label outside
 * {0, 1}; nothing is counted then. */
NG_EXPORT int ng_confusion_add_threshold(ng_confusion *c, const float *logits, const int32_t *y, size_t batch,
                               double threshold);

/* dst += src; NG_EMISMATCH when the class counts differ. */
NG_EXPORT int ng_confusion_merge(ng_confusion *dst, const ng_confusion *src);

/* The metric of the counts; NaN when there is nothing to average (no examples). */
NG_EXPORT double ng_metric_from_confusion(const ng_confusion *c, ng_metric metric);

/* Binary classification with a threshold: the number of examples whose prediction (class 1 when
 * softmax(logits)[1] >= threshold, logits batch x 2) differs from y. A label other than 0 or 1 counts as an
 * error. Divide by the batch for the error rate. */
NG_EXPORT int64_t ng_metric_threshold_error(const float *logits, const int32_t *y, size_t batch, double threshold);

/* The number of examples whose label is not among the k highest logits (ties ranked to the lowest class, as
 * in ng_confusion_add; a label outside [0, classes) counts as an error). */
NG_EXPORT int64_t ng_topk_error(const float *logits, const int32_t *y, size_t batch, size_t classes, size_t k);

#ifdef __cplusplus
}
#endif
#endif
