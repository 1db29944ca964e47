/* The metrics every command names, in one table: what `nograd eval` reports, what the nn objective
 * (nograd/nn_objective.h) minimizes, and what `nograd retrofit` can bound.
 *
 * A row says what a metric is: a mean over examples of per-example terms, or a mean over classes of
 * per-class rates (balanced error), or neither (macro-F1); whether each term lies in [0, 1]; whether it
 * needs class labels or float targets, or a binary classifier; whether higher is better (an objective then
 * minimizes 1 - it). Names, help texts and "known: ..." messages are derived from the table; adding a metric
 * is one row here and its computation. None of these functions is collective. */
#ifndef NOGRAD_METRICS_H
#define NOGRAD_METRICS_H

#include <stddef.h>

#include "nograd/export.h"
#include "nograd/loss.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  NG_METRIC_F_MEAN = 1u << 0,       /* a mean over examples of per-example terms */
  NG_METRIC_F_CLASS_MEAN = 1u << 1, /* a mean over the classes present of per-class means */
  NG_METRIC_F_BOUNDED = 1u << 2,    /* every term lies in [0, 1] */
  NG_METRIC_F_LABELS = 1u << 3,     /* needs class labels */
  NG_METRIC_F_TARGETS = 1u << 4,    /* needs float targets */
  NG_METRIC_F_BINARY = 1u << 5,     /* binary classifiers only */
  NG_METRIC_F_MAXIMIZE = 1u << 6    /* higher is better: an objective minimizes 1 - it */
};

/* Metrics of `nograd eval`: the four of nograd/loss.h (ng_metric), then these. */
#define NG_EVAL_THRESHOLD_ERROR NG_METRIC_COUNT  /* binary: class 1 when softmax[1] >= threshold */
#define NG_EVAL_TOP5_ERROR (NG_METRIC_COUNT + 1) /* label not among the 5 highest logits */
#define NG_EVAL_NMETRICS (NG_METRIC_COUNT + 2)

typedef struct {
  const char *name;    /* what users type */
  const char *label;   /* what messages call it ("macro-F1") */
  const char *summary; /* one line for help texts */
  unsigned flags;      /* NG_METRIC_F_* */
  int loss;            /* the ng_nn_loss an objective minimizes for it, or -1 (not an objective) */
  int eval;            /* its index among `nograd eval`'s metrics (NG_EVAL_*), or -1 (eval reports it as the
                          loss) */
} ng_metric_def;

/* The rows, in the table's order: ng_metric_def_at(i) for i < ng_metric_def_count(). */
NG_EXPORT size_t ng_metric_def_count(void);
NG_EXPORT const ng_metric_def *ng_metric_def_at(size_t i);

/* The row of a name, or NULL. */
NG_EXPORT const ng_metric_def *ng_metric_def_find(const char *name);

/* "a, b, c": the names of the rows with every flag of `need` and, when objective_only, a loss; for help
 * texts and messages (cut at len). */
NG_EXPORT void ng_metric_names(unsigned need, int objective_only, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
