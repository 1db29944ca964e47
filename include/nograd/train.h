/* Training and evaluating models on dataset files: what `nograd train` and `nograd eval` do, as library
 * functions.
 *
 * Training is minibatch gradient descent on one rank (the other ranks of the communicator wait and return the
 * same status): rows shuffled each epoch with the stream (seed, NG_RNG_SHUFFLE, epoch, 0), PyTorch's SGD with
 * momentum or Adam, L2 weight decay added to the gradient (what torch.optim.SGD and torch.optim.Adam do with
 * weight_decay, not AdamW's decoupled decay), dropout masks keyed by (seed, step), early stopping on the
 * validation loss with the best weights kept. Batch-norm running statistics are constants: they are neither
 * updated nor decayed.
 *
 * Evaluation is data-parallel: the rows are cut into chunks of a fixed size (never depending on the number of
 * ranks), each rank owns a contiguous block of chunks and reads only their rows, and rank 0 adds the
 * per-chunk loss sums in chunk order and the integer counts exactly, so the results are the same bits for any
 * P. */
#ifndef NOGRAD_TRAIN_H
#define NOGRAD_TRAIN_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/data.h"
#include "nograd/export.h"
#include "nograd/loss.h"
#include "nograd/metrics.h"
#include "nograd/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NG_TRAIN_SGD = 0, NG_TRAIN_ADAM = 1 } ng_train_optimizer;

typedef enum {
  NG_TRAIN_LOSS_AUTO = 0, /* cross-entropy for class labels, MSE for float targets */
  NG_TRAIN_LOSS_CE = 1,   /* mean cross-entropy of the logits; needs class labels */
  NG_TRAIN_LOSS_MSE = 2   /* mean squared error against the targets, or against one-hot labels */
} ng_train_loss;

typedef struct {
  const char *train;     /* training dataset file */
  const char *val;       /* validation dataset file, or NULL: no early stopping, the last weights are kept */
  const char *spec;      /* a spec file (weights from ng_model_init(seed)) ... */
  const char *init_from; /* ... or a model file to continue from (exactly one of the two) */
  const char *out;       /* the model file to write (atomically) */
  ng_train_optimizer optimizer;
  double lr;                /* learning rate, > 0 */
  double momentum;          /* SGD momentum in [0, 1) (PyTorch's form, no dampening) */
  double weight_decay;      /* L2 coefficient added to the gradient, >= 0 */
  double beta1, beta2, eps; /* Adam (ng_train_config_init: PyTorch's 0.9, 0.999, 1e-8) */
  size_t batch;             /* examples per step, >= 1; the last batch of an epoch may be smaller */
  size_t epochs;            /* at most this many epochs, >= 1 */
  size_t patience;          /* stop after this many epochs without a lower validation loss; 0: never */
  uint64_t seed;
  ng_train_loss loss;
  FILE *progress; /* one line per epoch here (rank 0) when not NULL */
} ng_train_config;

typedef struct {
  size_t epochs;     /* epochs run */
  size_t best_epoch; /* the epoch whose weights were written (1-based) */
  double train_loss; /* mean training loss of that epoch (with dropout, as trained) */
  double val_loss;   /* its validation loss and accuracy; NaN without --val (accuracy also for targets) */
  double val_accuracy;
  double seconds;
} ng_train_result;

/* The library's defaults, the one place they are written: SGD with lr 0.01 and momentum 0.9, no weight
 * decay, Adam's betas 0.9, 0.999 and eps 1e-8, batches of 64, at most 20 epochs, patience 5, seed 1, the loss
 * chosen by the data; no files. The command line starts from these and its --help prints them. */
NG_EXPORT void ng_train_config_init(ng_train_config *cfg);

/* Trains a model and writes it to cfg->out with the attributes classes (the training set's; not set for
 * targets) and train_rows (rows of the training set). Collective over comm: rank 0 trains, the other ranks
 * wait; every rank returns the same status, and rank 0 holds the message and the result. Statuses: NG_EINVAL
 * (a bad configuration), NG_EIO / NG_EFORMAT / NG_ECORRUPT naming the file and HDF5 path, NG_EMISMATCH naming
 * the model's and the data's shapes or the row with a label outside the model's classes, NG_ENUMERIC when the
 * training loss became NaN or infinite. On failure no output file is left. */
NG_EXPORT int ng_app_train(MPI_Comm comm, const ng_train_config *config, ng_train_result *res);


/* "accuracy", "error", "balanced_error", "macro_f1", "threshold_error", "top5_error"; NULL out of range. */
NG_EXPORT const char *ng_eval_metric_name(int metric);
/* The metric of a name, or -1. */
NG_EXPORT int ng_eval_metric_from_name(const char *name);

#define NG_EVAL_CHUNK_ROWS 4096 /* default rows per chunk: the unit of work and of summation order */

typedef struct {
  const char *model, *data;
  bool metrics[NG_EVAL_NMETRICS]; /* which to compute (classifiers only) */
  double threshold;               /* for threshold_error, in [0, 1] */
  size_t batch;                   /* examples per forward pass, >= 1 */
  size_t chunk_rows;              /* rows per chunk, >= 1; results depend on it, never on the ranks */
} ng_eval_config;

/* The library's defaults: no metric (the command line asks for accuracy), threshold NaN (the model's), batches of
 * 256 rows, chunks of NG_EVAL_CHUNK_ROWS. */
NG_EXPORT void ng_eval_config_init(ng_eval_config *cfg);

typedef struct {
  double loss;                      /* mean cross-entropy (labels) or mean MSE (targets); may be NaN or inf */
  double metrics[NG_EVAL_NMETRICS]; /* the asked ones; NaN for the others */
  int64_t n;                        /* rows evaluated */
  bool targets;                     /* the data had float targets (loss is MSE, no metrics) */
  double forward_seconds;           /* the slowest rank's time in forward passes */
  double samples_per_s;             /* n / forward_seconds */
  double seconds;                   /* wall time of the whole evaluation */
} ng_eval_result;

/* Evaluates a model on a dataset. Collective over comm; the result is complete on rank 0. Every rank returns
 * the same status (agreed with ng_engine_agree); rank 0 holds the message: NG_EIO / NG_EFORMAT / NG_ENUMERIC
 * naming the file and HDF5 path or tensor, NG_EMISMATCH naming both shapes or the row whose label is outside
 * the model's classes, NG_EINVAL for a metric that does not fit the data (a classification metric with
 * targets, threshold_error without two classes). Allocates only before the first batch. */
NG_EXPORT int ng_app_eval(MPI_Comm comm, const ng_eval_config *cfg, ng_eval_result *res);

#ifdef __cplusplus
}
#endif
#endif
