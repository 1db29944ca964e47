/* A neural network's loss on a dataset as an objective of the distributed engine (nograd/objective.h).
 *
 * A candidate x (n doubles) becomes (part of) the model's float32 parameter vector: by default all of it
 * (n = nparams, params[i] = (float)x[i]), or the elements of a list of named tensors ("fc2.weight",
 * "fc2.bias"), which x fills in the order given, each tensor in its own layout, while every other parameter
 * keeps the model's value. The dataset's rows are cut into chunks of chunk_rows (the last may be shorter);
 * a rank loads only the rows of its chunks (one hyperslab) and evaluates a candidate on one chunk into its
 * stats: a (loss sum, rows) pair for the losses that are sums over rows, so that sum / rows over all chunks
 * is the loss of the whole dataset; the chunk's confusion matrix for the others (see below).
 *
 * Determinism: a chunk is forwarded in batches of `batch` rows (the last one shorter) that start at
 * multiples of `batch` within the chunk, from a 64-byte aligned copy of its rows, with the same code, and
 * the batch losses are added in row order in double from zero. The stats of a chunk are therefore the same
 * bits whichever rank holds it and whichever other chunks that rank loaded; with the engine adding the
 * chunks in chunk order, the loss of a candidate does not depend on P or G. With the same batch and chunk
 * rows, the cross-entropy and mse sums of a chunk are those of `nograd eval` (src/app/eval.c).
 *
 * Losses that are sums over rows (stats: the sum per chunk and the count of rows; nstats 2):
 *   cross_entropy    sum of -log softmax(out)[y]                     (labels)
 *   mse              sum over rows of the mean squared error         (float targets)
 *   error            misclassified rows; "accuracy" names the same objective, 1 - accuracy, since a loss is
 *                    minimized
 *   threshold_error  rows whose thresholded class (softmax[1] >= threshold) is not the label (binary)
 * Losses that are not (stats: the chunk's C x C confusion counts, row = true class, column = predicted,
 * row-major as ng_confusion_counts, in doubles, which hold counts exactly up to 2^53; nstats C*C for C
 * classes; the loss is read from their sum over the chunks with ng_metric_from_confusion):
 *   balanced_error   1 - mean recall over the classes present in the labels
 *   macro_f1         1 - macro-F1 (mean F1 over the classes present in the labels or the predictions): a loss
 *                    to minimize, 0 when every row is right
 * The predicted class of error, balanced_error and macro_f1 is the argmax (ties to the lowest class, as
 * ng_confusion_add); with use_threshold on a binary model, it is class 1 when softmax[1] >= threshold, as in
 * threshold_error (same formula: ng_metric_threshold_error).
 *
 * None of these functions is collective. An objective belongs to one rank (its scratch parameter vector,
 * workspace and loaded rows); the model it reads is shared and must not change while it lives. */
#ifndef NOGRAD_NN_OBJECTIVE_H
#define NOGRAD_NN_OBJECTIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "nograd/export.h"
#include "nograd/objective.h"
#include "nograd/data.h"
#include "nograd/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  NG_NN_LOSS_CROSS_ENTROPY = 0,
  NG_NN_LOSS_MSE = 1,
  NG_NN_LOSS_ERROR = 2,
  NG_NN_LOSS_THRESHOLD_ERROR = 3,
  NG_NN_LOSS_BALANCED_ERROR = 4, /* confusion counts per chunk */
  NG_NN_LOSS_MACRO_F1 = 5        /* confusion counts per chunk; the loss is 1 - macro-F1 */
} ng_nn_loss;

#define NG_NN_LOSS_COUNT 6
#define NG_NN_OBJECTIVE_BATCH 256 /* rows per forward pass when the configuration says 0 */

/* "cross_entropy", "mse", "error", "threshold_error", "balanced_error", "macro_f1"; NULL out of range. */
NG_EXPORT const char *ng_nn_loss_name(ng_nn_loss loss);

/* The loss of a name; "accuracy" gives NG_NN_LOSS_ERROR. NG_EINVAL lists the known names. */
NG_EXPORT int ng_nn_loss_from_name(const char *name, ng_nn_loss *out);

typedef struct {
  size_t chunk_rows;          /* rows per chunk, >= 1; results depend on it, never on the ranks */
  size_t batch;               /* rows per forward pass (0: NG_NN_OBJECTIVE_BATCH); capped at chunk_rows */
  ng_nn_loss loss;            /* see above */
  double threshold;           /* threshold_error, or use_threshold: in [0, 1] */
  const char *const *tensors; /* the tensors x fills, in order; NULL (or ntensors 0): all parameters */
  size_t ntensors;
  bool use_threshold; /* error, balanced_error, macro_f1 on a binary model: predict class 1 when
                         softmax[1] >= threshold instead of the argmax (false: argmax, as before) */
} ng_nn_objective_config;

typedef struct ng_nn_objective ng_nn_objective;

/* Opens the dataset (keeps it open to read rows on load) and sets up the mapping, a workspace of the batch
 * size and a scratch parameter vector (the model's values). NG_EINVAL: a bad configuration, a loss that
 * does not fit the data (mse needs targets, the others labels; threshold_error and use_threshold two classes
 * and a threshold in [0, 1]; use_threshold a loss that predicts classes), a tensor named twice; NG_ENOTFOUND
 * names an unknown tensor; NG_EMISMATCH: a model that does not fit the dataset; the statuses of
 * ng_dataset_open; NG_ENOMEM. */
NG_EXPORT int ng_nn_objective_create(const ng_model *model, const char *data_path, const ng_nn_objective_config *cfg,
                           ng_nn_objective **out);

/* Frees; accepts NULL and clears the pointer. */
NG_EXPORT void ng_nn_objective_destroy(ng_nn_objective **o);

/* The engine's view: n, nchunks, load and ctx = o; eval for the sums (nstats 0, the classic pair), or
 * nstats = C*C, eval_stats and finish for balanced_error and macro_f1. */
NG_EXPORT void ng_nn_objective_get(ng_nn_objective *o, ng_objective *obj);

/* The number of stats of one chunk: 2 for the sums, C*C for the confusion losses. */
NG_EXPORT size_t ng_nn_objective_nstats(const ng_nn_objective *o);

/* The loss of stats summed over chunks (element-wise, in chunk order): sum / count for the sums (NaN for a
 * count of 0); the metric of the confusion counts for balanced_error, 1 - the metric for macro_f1 (NaN with
 * no rows, or for counts that are not whole numbers in [0, 2^53]). Uses a scratch matrix of the objective:
 * not for two threads at once. */
NG_EXPORT double ng_nn_objective_finish(const ng_nn_objective *o, const double *stats);

NG_EXPORT size_t ng_nn_objective_dim(const ng_nn_objective *o);    /* n */
NG_EXPORT size_t ng_nn_objective_chunks(const ng_nn_objective *o); /* ceil(rows / chunk_rows) */
NG_EXPORT size_t ng_nn_objective_batch(const ng_nn_objective *o);  /* the batch in use */

/* The model's current values of the mapped parameters as a candidate (n doubles): a natural x0. */
NG_EXPORT void ng_nn_objective_x0(const ng_nn_objective *o, double *x);

/* The full parameter vector (nparams floats) of candidate x: the model's values with the mapped ones
 * replaced, e.g. to write the best candidate back into a model. */
NG_EXPORT void ng_nn_objective_params(const ng_nn_objective *o, const double *x, float *params);

/* Loads chunks [first_chunk, first_chunk + count) (replacing what was loaded); count 0 unloads. NG_EINVAL
 * for a range beyond the chunks; NG_EMISMATCH names a row whose label is outside the model's classes; the
 * statuses of ng_dataset_read_rows; NG_ENOMEM. */
NG_EXPORT int ng_nn_objective_load(ng_nn_objective *o, size_t first_chunk, size_t count);

/* Adds the loss sum of candidate x on a loaded chunk to *sum and its rows to *count. NG_EINVAL names a chunk
 * that is not loaded, or a confusion loss (not a sum: use ng_nn_objective_eval_stats). No allocation. */
NG_EXPORT int ng_nn_objective_eval(ng_nn_objective *o, const double *x, size_t chunk, double *sum, double *count);

/* ADDS the nstats stats of candidate x on a loaded chunk to stats (for the sums: stats[0] += sum, stats[1]
 * += rows). NG_EINVAL names a chunk that is not loaded. No allocation. */
NG_EXPORT int ng_nn_objective_eval_stats(ng_nn_objective *o, const double *x, size_t chunk, double *stats);

/* As ng_nn_objective_eval_stats for a FULL parameter vector (nparams floats, laid out as the model's, e.g.
 * from ng_nn_objective_params or ng_model_params), which is copied into the objective's aligned scratch
 * vector: the same params give the same bits as a candidate that maps to them. threshold: NaN for the
 * configured prediction; a value in [0, 1] overrides it for this call (threshold_error, and error,
 * balanced_error, macro_f1, which then predict class 1 when softmax[1] >= threshold). NG_EINVAL: a chunk
 * that is not loaded; a threshold that is outside [0, 1], or given for cross_entropy or mse, or for a model
 * that is not binary. No allocation. */
NG_EXPORT int ng_nn_objective_eval_params(ng_nn_objective *o, const float *params, double threshold, size_t chunk,
                                double *stats);

/* Checks that a model fits a dataset: the same input shape (a vector model also takes image rows of as many
 * floats), and outputs that match the data: at least two classes for labels, t outputs for t targets.
 * NG_EMISMATCH names both files and both shapes. Not collective. */
NG_EXPORT int ng_model_check_fit(const ng_model *m, const char *model_path, const ng_data_info *info,
                     const char *data_path);

#ifdef __cplusplus
}
#endif
#endif
