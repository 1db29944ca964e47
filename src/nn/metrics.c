/* The metric table (see nograd/metrics.h). Its order gives each objective loss its name: the first row that
 * minimizes a loss names it ("error" before "accuracy"). */
#include "nograd/metrics.h"

#include <stdio.h>
#include <string.h>

#include "nograd/loss.h"
#include "nograd/nn_objective.h"

#define MEAN01 (NG_METRIC_F_MEAN | NG_METRIC_F_BOUNDED)

static const ng_metric_def table[] = {
    {"cross_entropy", "cross-entropy", "mean -log softmax(output)[label]", NG_METRIC_F_MEAN | NG_METRIC_F_LABELS,
     NG_NN_LOSS_CROSS_ENTROPY, -1},
    {"mse", "mean squared error", "mean over rows of the mean squared error", NG_METRIC_F_MEAN | NG_METRIC_F_TARGETS, NG_NN_LOSS_MSE, -1},
    {"error", "0-1 error", "0-1 error: the share of rows misclassified", MEAN01 | NG_METRIC_F_LABELS, NG_NN_LOSS_ERROR,
     NG_METRIC_ERROR},
    {"threshold_error", "threshold error", "binary: error of class 1 when softmax[1] >= the threshold",
     MEAN01 | NG_METRIC_F_LABELS | NG_METRIC_F_BINARY, NG_NN_LOSS_THRESHOLD_ERROR, NG_EVAL_THRESHOLD_ERROR},
    {"balanced_error", "balanced error", "1 - the mean recall over the classes present",
     NG_METRIC_F_CLASS_MEAN | NG_METRIC_F_BOUNDED | NG_METRIC_F_LABELS, NG_NN_LOSS_BALANCED_ERROR,
     NG_METRIC_BALANCED_ERROR},
    {"macro_f1", "macro-F1", "the mean F1 over the classes present (minimized as 1 - macro-F1)",
     NG_METRIC_F_BOUNDED | NG_METRIC_F_LABELS | NG_METRIC_F_MAXIMIZE, NG_NN_LOSS_MACRO_F1, NG_METRIC_MACRO_F1},
    {"accuracy", "accuracy", "the share of rows classified right (minimized as the error)",
     MEAN01 | NG_METRIC_F_LABELS | NG_METRIC_F_MAXIMIZE, NG_NN_LOSS_ERROR, NG_METRIC_ACCURACY},
    {"top5_error", "top-5 error", "the share of rows whose label is not among the 5 highest outputs", MEAN01 | NG_METRIC_F_LABELS,
     -1, NG_EVAL_TOP5_ERROR},
};
#define NROWS (sizeof table / sizeof table[0])

size_t ng_metric_def_count(void) {
  return NROWS;
}

const ng_metric_def *ng_metric_def_at(size_t i) {
  return i < NROWS ? &table[i] : NULL;
}

const ng_metric_def *ng_metric_def_find(const char *name) {
  for (size_t i = 0; name && i < NROWS; i++)
    if (strcmp(table[i].name, name) == 0) return &table[i];
  return NULL;
}

void ng_metric_names(unsigned need, int objective_only, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < NROWS && used < len; i++)
    if ((table[i].flags & need) == need && (!objective_only || table[i].loss >= 0))
      used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", table[i].name);
}
