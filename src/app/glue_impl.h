/* Private: what the parts of `nograd glue` share (src/app/glue*.c).
 *
 *   glue.c            the command: configuration, the methods in turn, the prior, the final checkpoint
 *   glue_experts.c    reading and checking the experts, layer groups, softmax and mixing
 *   glue_objective.c  the engine's objective for spsa and cmaes, with the first-layer cache
 *   glue_fullgrad.c   fullgrad: Adam through theta(w), data-parallel, checkpointed and resumable
 *
 * Mixing adds the experts' values in expert order in double and rounds to float32 once (glue.h). */
#ifndef NOGRAD_APP_GLUE_IMPL_H
#define NOGRAD_APP_GLUE_IMPL_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/candcache.h"
#include "nograd/ckpt.h"
#include "nograd/engine.h"
#include "nograd/glue.h"
#include "nograd/nn.h"
#include "nograd/nn_objective.h"
#include "nograd/run.h"
#include "nograd/state.h"

typedef struct {
  size_t K, L, nparams;
  ng_model **models;
  const float **theta;    /* K parameter vectors */
  size_t *gstart, *gend;  /* L parameter ranges */
  double *coef;           /* K x L scratch coefficients */
  double *mixed;          /* nparams: scratch mixed parameters */
  ng_nn_objective *train; /* the engine's objective on the target train split (without the cache) */
  /* The candidates of the current generation: K x L coefficients, then the mixed parameters (doubles, for
   * ng_nn_objective), and the mixed parameters as floats (for the cache's passes). */
  ng__cand_cache cand;
  /* The first-layer cache (glue_objective.c): the experts' first-layer outputs on this rank's rows. */
  bool fl;
  size_t fl_layer, fl_out, fl_group; /* the layer, its outputs per example, its layer group */
  size_t chunk_rows, batch, classes, d;
  size_t first_chunk, nchunks_loaded, nrows; /* the loaded chunks and their rows */
  float *z;                                  /* K x nrows x fl_out */
  int32_t *y;                                /* nrows labels */
  float *act;                                /* batch x fl_out: the combined first-layer output */
  ng_nn_work *work;
  const char *train_path;
} ng__glue;

/* glue_experts.c */
int ng__glue_read_experts(ng__glue *c, const ng_glue_config *cfg);
void ng__glue_free(ng__glue *c);
void ng__glue_softmax(size_t K, size_t L, const double *w, double *a);
void ng__glue_mix(const ng__glue *c, const double *a, double *mixed);
/* Rows [r0, r0 + rows) of a labelled dataset that fits the model: x (rows x d) and y, malloc'd. */
int ng__glue_read_rows(const ng_model *m, const char *path, size_t r0, size_t rows, float **x, int32_t **y);

/* glue_objective.c: the objective of spsa and cmaes on cfg's target train split (the cache when it pays). */
int ng__glue_objective(ng__glue *c, const ng_glue_config *cfg, ng_objective *obj);

/* glue_fullgrad.c: w (K x L, zero on entry) learned by Adam; on return every rank holds the coefficients in
 * c->coef, rank 0 the curve (cfg->steps values) and, when opt_state is not NULL, Adam's final state and the
 * history. Under cfg->run: checkpoints, resume, signals (*signalled). Collective. */
int ng__glue_fullgrad(MPI_Comm comm, ng__glue *c, const ng_glue_config *cfg, const char *config, double *w,
                      double *curve, ng_state *opt_state, ng_history *history, bool *signalled);

/* The measurement of fixed parameters on one split: data-parallel cross-entropy and accuracy. */
typedef struct {
  ng_nn_objective *ce, *err;
  size_t nchunks;
} ng__glue_split;

int ng__glue_split_open(MPI_Comm comm, const ng_model *m, const char *path, size_t chunk_rows, ng__glue_split *s);
/* Collective: the loss and accuracy of params on the split, the same on every rank and for every P. */
int ng__glue_split_eval(MPI_Comm comm, ng__glue_split *s, const double *params, double *loss, double *accuracy);
void ng__glue_split_free(ng__glue_split *s);

#endif
