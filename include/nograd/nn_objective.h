/* A neural network's loss on a dataset as an objective of the distributed engine (nograd/dist.h).
 *
 * A candidate x (n doubles) becomes (part of) the model's float32 parameter vector: by default all of it
 * (n = nparams, params[i] = (float)x[i]), or the elements of a list of named tensors ("fc2.weight",
 * "fc2.bias"), which x fills in the order given, each tensor in its own layout, while every other parameter
 * keeps the model's value. The dataset's rows are cut into chunks of chunk_rows (the last may be shorter);
 * a rank loads only the rows of its chunks (one hyperslab) and evaluates a candidate on one chunk into a
 * (loss sum, rows) pair, so that sum / rows over all chunks is the loss of the whole dataset.
 *
 * Determinism: a chunk is forwarded in batches of `batch` rows (the last one shorter) that start at
 * multiples of `batch` within the chunk, from a 64-byte aligned copy of its rows, with the same code, and
 * the batch losses are added in row order in double from zero. The (sum, rows) of a chunk is therefore the
 * same bits whichever rank holds it and whichever other chunks that rank loaded; with the engine adding the
 * chunks in chunk order, the loss of a candidate does not depend on P or G. With the same batch and chunk
 * rows, the cross-entropy and mse sums of a chunk are those of `nograd eval` (src/app/eval.c).
 *
 * Losses (each a sum per chunk and a count of rows):
 *   cross_entropy    sum of -log softmax(out)[y]                     (labels)
 *   mse              sum over rows of the mean squared error         (float targets)
 *   error            misclassified rows (argmax, ties to the lowest class, as ng_confusion_add); "accuracy"
 *                    names the same objective, 1 - accuracy, since a loss is minimized
 *   threshold_error  rows whose thresholded class (softmax[1] >= threshold) is not the label (binary)
 * balanced_error and macro_f1 are not sums over rows, so they cannot be written as (sum, count) per chunk:
 * they are refused (NG_EINVAL) until the engine can gather confusion matrices.
 *
 * None of these functions is collective. An objective belongs to one rank (its scratch parameter vector,
 * workspace and loaded rows); the model it reads is shared and must not change while it lives. */
#ifndef NOGRAD_NN_OBJECTIVE_H
#define NOGRAD_NN_OBJECTIVE_H

#include <stddef.h>

#include "nograd/dist.h"
#include "nograd/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  NG_NN_LOSS_CROSS_ENTROPY = 0,
  NG_NN_LOSS_MSE = 1,
  NG_NN_LOSS_ERROR = 2,
  NG_NN_LOSS_THRESHOLD_ERROR = 3,
  NG_NN_LOSS_BALANCED_ERROR = 4, /* refused: not decomposable */
  NG_NN_LOSS_MACRO_F1 = 5        /* refused: not decomposable */
} ng_nn_loss;

#define NG_NN_LOSS_COUNT 6
#define NG_NN_OBJECTIVE_BATCH 256 /* rows per forward pass when the configuration says 0 */

/* "cross_entropy", "mse", "error", "threshold_error", "balanced_error", "macro_f1"; NULL out of range. */
const char *ng_nn_loss_name(ng_nn_loss loss);

/* The loss of a name; "accuracy" gives NG_NN_LOSS_ERROR. NG_EINVAL lists the known names. */
int ng_nn_loss_from_name(const char *name, ng_nn_loss *out);

typedef struct {
  size_t chunk_rows;          /* rows per chunk, >= 1; results depend on it, never on the ranks */
  size_t batch;               /* rows per forward pass (0: NG_NN_OBJECTIVE_BATCH); capped at chunk_rows */
  ng_nn_loss loss;            /* see above */
  double threshold;           /* threshold_error: in [0, 1] */
  const char *const *tensors; /* the tensors x fills, in order; NULL (or ntensors 0): all parameters */
  size_t ntensors;
} ng_nn_objective_config;

typedef struct ng_nn_objective ng_nn_objective;

/* Opens the dataset (keeps it open to read rows on load) and sets up the mapping, a workspace of the batch
 * size and a scratch parameter vector (the model's values). NG_EINVAL: a bad configuration, a
 * non-decomposable loss (named), a loss that does not fit the data (cross_entropy, error, threshold_error
 * need labels, mse targets; threshold_error two classes), a tensor named twice; NG_ENOTFOUND names an unknown
 * tensor; NG_EMISMATCH: a model that does not fit the dataset; the statuses of ng_dataset_open; NG_ENOMEM. */
int ng_nn_objective_create(const ng_model *model, const char *data_path, const ng_nn_objective_config *cfg,
                           ng_nn_objective **out);

/* Frees; accepts NULL and clears the pointer. */
void ng_nn_objective_destroy(ng_nn_objective **o);

/* The engine's view: n, nchunks, load, eval and ctx = o. */
void ng_nn_objective_get(ng_nn_objective *o, ng_objective *obj);

size_t ng_nn_objective_dim(const ng_nn_objective *o);    /* n */
size_t ng_nn_objective_chunks(const ng_nn_objective *o); /* ceil(rows / chunk_rows) */
size_t ng_nn_objective_batch(const ng_nn_objective *o);  /* the batch in use */

/* The model's current values of the mapped parameters as a candidate (n doubles): a natural x0. */
void ng_nn_objective_x0(const ng_nn_objective *o, double *x);

/* The full parameter vector (nparams floats) of candidate x: the model's values with the mapped ones
 * replaced, e.g. to write the best candidate back into a model. */
void ng_nn_objective_params(const ng_nn_objective *o, const double *x, float *params);

/* Loads chunks [first_chunk, first_chunk + count) (replacing what was loaded); count 0 unloads. NG_EINVAL
 * for a range beyond the chunks; NG_EMISMATCH names a row whose label is outside the model's classes; the
 * statuses of ng_dataset_read_rows; NG_ENOMEM. */
int ng_nn_objective_load(ng_nn_objective *o, size_t first_chunk, size_t count);

/* Adds the loss sum of candidate x on a loaded chunk to *sum and its rows to *count. NG_EINVAL names a chunk
 * that is not loaded. No allocation. */
int ng_nn_objective_eval(ng_nn_objective *o, const double *x, size_t chunk, double *sum, double *count);

#ifdef __cplusplus
}
#endif
#endif
