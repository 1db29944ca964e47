/* `nograd glue`: K experts of one architecture mixed into one prior for a target domain.
 *
 * The prior is theta(a) = sum_k a_k theta_k with coefficients a on the simplex: one set of K per model
 * (granularity "model", L = 1) or one per layer group (granularity "layer": L groups, the tensors of one
 * parameterized layer, named by the prefix before the last '.' of their names, e.g. fc1.weight, fc1.bias).
 * a is stored K x L, row-major (a[k * L + l]). The optimized methods parameterize a = softmax(w) over k, per
 * group, with w of the same shape, starting from w = 0 (uniform):
 *   spsa, cmaes   w minimizes the cross-entropy on the target train split, through the engine
 *                 (ng_engine_run), so the run is bit-identical for any number of ranks; the prior is the
 *                 optimizer's mean (SPSA's iterate)
 *   fullgrad      w minimizes the same loss by backpropagation through theta(w) with Adam (lr, betas 0.9,
 *                 0.999, eps 1e-8), one full pass over the target train split per step, as many steps as
 *                 spsa: dL/dw_kl = a_kl (g_l . theta_kl - sum_j a_jl g_l . theta_jl), g the gradient with
 *                 respect to the mixed parameters. Per-chunk gradients are added in chunk order, so this
 *                 too is bit-identical for any number of ranks. It uses the training forward pass: a
 *                 dropout layer is active there, unlike in the objective of spsa and cmaes.
 *   uniform       a = 1/K
 *   datasize      a_k proportional to expert k's training-set size: `sizes` when given, else the
 *                 train_rows attribute of its model file (refused when an expert lacks it)
 *   proxy         the single expert with the best accuracy (or, with proxy_loss, the lowest cross-entropy)
 *                 on the target train split (ties: the first)
 *   best          the single expert with the lowest cross-entropy on the target validation split (or the
 *                 train split when none is given; ties: the first)
 *
 * spsa and cmaes compute the experts' first-layer outputs on the target train rows once and combine them per
 * candidate (theta(a) is linear in a), when the first computing layer is dense or conv2d (src/app/glue.c).
 *
 * Mixing adds the experts' values in expert order in double and rounds to float32 once. Losses are computed
 * on chunks of chunk_rows rows exactly as ng_nn_objective (and `nograd eval` with the same chunk and batch)
 * does, and added in chunk order on rank 0. */
#ifndef NOGRAD_GLUE_H
#define NOGRAD_GLUE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/export.h"
#include "nograd/run.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  NG_GLUE_SPSA = 0,
  NG_GLUE_CMAES = 1,
  NG_GLUE_UNIFORM = 2,
  NG_GLUE_DATASIZE = 3,
  NG_GLUE_PROXY = 4,
  NG_GLUE_BEST = 5,
  NG_GLUE_FULLGRAD = 6
} ng_glue_method;

#define NG_GLUE_METHOD_COUNT 7

/* "spsa", "cmaes", "uniform", "datasize", "proxy", "best", "fullgrad"; NULL out of range. And back: -1 if
 * unknown. */
NG_EXPORT const char *ng_glue_method_name(ng_glue_method m);
NG_EXPORT int ng_glue_method_from_name(const char *name);

typedef struct {
  const char *const *experts; /* K >= 2 model files */
  size_t nexperts;
  const char *target_train; /* dataset: the objective of spsa and cmaes, proxy's split */
  const char *target_val;   /* dataset or NULL: where prior_loss and prior_accuracy are measured */
  const char *out;          /* the prior's model file (written by rank 0) */
  ng_glue_method method;
  int per_layer;        /* 0: one weight per expert; 1: one per expert and layer group */
  size_t steps;         /* spsa, cmaes, fullgrad: generations (steps), >= 1 */
  size_t q;             /* spsa: perturbation pairs per step, >= 1 */
  double sigma0;        /* spsa's c and cmaes' sigma0, > 0 */
  double lr;            /* fullgrad: Adam's learning rate, > 0 */
  const double *sizes;  /* datasize: the experts' training-set sizes (nexperts values > 0), or NULL */
  int proxy_loss;       /* proxy: 0 picks by accuracy, 1 by cross-entropy */
  uint64_t seed;        /* spsa's and cmaes' streams, fullgrad's dropout masks */
  size_t chunk_rows;    /* rows per data chunk, >= 1 */
  ng_run_policy run;    /* checkpoints, resume, signals, progress (nograd/run.h); the checkpoint holds the
                         * run as it goes (spsa, cmaes: the optimizer; fullgrad: Adam's state) and, at the end,
                         * /result: the method, weights (K x L), K, L, prior_loss, prior_accuracy, train_loss,
                         * train_accuracy and curve */
  int check_only;       /* 1: read and check the experts, the sizes and the datasets, then return */
  int no_cache;         /* spsa, cmaes: 1 turns the first-layer cache off (to measure what it buys) */
} ng_glue_config;

/* The library's defaults, the one place they are written: method spsa, granularity model, 100 steps, q 1,
 * sigma0 0.1, lr 0.05, proxy by accuracy, seed 1, chunks of 256 rows, a zero run policy; no experts, datasets
 * or output. The command line starts from these and its --help prints them. Not collective. */
NG_EXPORT void ng_glue_config_init(ng_glue_config *cfg);

typedef struct {
  double prior_loss;     /* mean cross-entropy of the prior on target_val (or target_train) */
  double prior_accuracy; /* and its accuracy there */
  double train_loss;     /* the same on target_train, the loss the weights were learned on (equal to */
  double train_accuracy; /* prior_loss and prior_accuracy without a target_val) */
  size_t K, L;
  double *weights; /* K x L coefficients a (malloc'd by ng_app_glue on rank 0; the caller frees) */
  double *curve;   /* spsa, cmaes, fullgrad: one train loss per step (spsa, cmaes: the median over the
                    * step's candidates; fullgrad: the loss at the step's w), malloc'd on rank 0 */
  size_t ncurve;
  int64_t evaluations;
  double seconds;
  bool signalled; /* stopped by a signal (spsa, cmaes, fullgrad): with a checkpoint, resume it (no prior was
                   * written); without one, the prior is that of the point reached */
} ng_glue_result;

/* Builds the prior and writes it. Collective over comm; every rank returns the same status, rank 0 holds the
 * message and the result. NG_EINVAL: a bad configuration (fewer than 2 experts, an unknown method);
 * NG_EMISMATCH: experts of different architectures (the message names the first spec line or tensor that
 * differs and both files), a target dataset the experts do not fit; NG_ENOTFOUND: datasize with an expert
 * lacking train_rows (named) and no sizes given; the statuses of the model, dataset and engine functions.
 * Nothing is written on error. A run stopped by a signal (res->signalled) leaves its checkpoint and writes no
 * prior. */
NG_EXPORT int ng_app_glue(MPI_Comm comm, const ng_glue_config *cfg, ng_glue_result *res);

#ifdef __cplusplus
}
#endif
#endif
