/* Private: the state of CMA-ES, shared by its update (cmaes.c) and its stopping rules (cmaes_stop.c).
 *
 * One struct serves both variants: full covariance (active CMA-ES, Hansen's tutorial with the defaults of
 * pycma 4.x) and diagonal covariance (sep-CMA-ES, Ros and Hansen 2008). */
#ifndef NOGRAD_CMAES_IMPL_H
#define NOGRAD_CMAES_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opt/opt_impl.h"

/* A loss and the index of its candidate, for ranking. */
typedef struct {
  double f;
  size_t k;
} ng_ranked;

typedef struct {
  bool diagonal;
  size_t n, lambda, mu;
  double popf; /* the population size as a real number, as pycma uses it in maxiter and tolstagnation */

  /* strategy parameters */
  double *weights; /* lambda recombination weights, positive ones summing to 1, then the negative ones */
  double mueff, cc, cs, c1, cmu, damps, chin, lazy_gap;

  /* distribution */
  double sigma;
  double *mean, *pc, *ps;
  double *C;                       /* full: n x n, upper triangle kept (row-major); diagonal: n variances */
  double *B;                       /* full: n x n eigenvectors, column j is axis j (row-major) */
  double *D;                       /* n square roots of the eigenvalues (diagonal: sqrt of C) */
  double *BD;                      /* full: B * diag(D), the sampling factor */
  int64_t count_tell, last_update; /* lazy eigendecomposition: iterations told, and at the last update */
  int64_t factor_version;          /* bumped whenever BD (or D) changes: the engine resends it then */
  double seconds_eigen;
  /* The eigendecomposition beside the loop (full, eigen_lag > 0): the one due at iteration pending_at is of
   * Csnap, C as it was then; a background job (core/async.h) decomposes it into eig_B and eig_D, and it is
   * installed when iteration pending_at + eigen_lag is asked, whether the job was early or not, so that the
   * run does not depend on timing. pending_at is -1 when none is in flight. */
  int64_t eigen_lag, pending_at;
  double pending_scale; /* C was multiplied by this since Csnap was taken (rebalance_sigma): eig_D is too */
  double *Csnap, *eig_B, *eig_D;
  struct ng_async *job;
  int eig_info; /* the job's LAPACK info */

  /* the last ask */
  double *Z; /* lambda x n standard normal draws */
  double *Y; /* lambda x n steps BD z (genotype x = mean + sigma y) */
  double *X; /* n: a candidate as the caller got it (after the bound transform), made again for the tell */
  size_t *order;
  double *work, *work2;  /* n each */
  double *A;             /* (lambda + 1) x n: the weighted vectors of the covariance update */
  double *fsorted;       /* lambda losses, ascending */
  ng_ranked *ranked;     /* lambda */
  double *plan;          /* the last tell's plan (tell_dist.h) */
  double *shares;        /* full: the blocks' shares of a tell (the means only when there is one block) */
  double *share_scratch; /* full, more than one block: ng__tell_share's scratch */

  /* stopping rules */
  int64_t maxiter, tolstagnation;
  double tolfun, tolfunhist, tolx, tolupsigma, tolconditioncov;
  double *hist; /* best f of the last hist_cap iterations (ring) */
  size_t hist_cap, hist_len, hist_pos;
  double *histbest, *histmedian; /* every 5th iteration, newest last */
  size_t stag_len, stag_cap, stag_alloc;
  double best_f;     /* best f of this run */
  int64_t best_iter; /* iteration at which it was found */
  int64_t flat_count;
  int tolflatfitness;
} cmaes;

/* Evaluates the stopping rules after an update; returns the reason or NG_STOP_NONE. `fsorted` holds the
 * lambda losses of the generation in ascending order. */
ng_stop ng_cmaes_check_stop(ng_opt *opt, cmaes *es, const double *fsorted);

/* Writes the stopping-rule state to st / reads it back (part of the saved state). */
int ng_cmaes_stop_save(const cmaes *es, ng_state *st);
int ng_cmaes_stop_load(cmaes *es, const ng_state *st);

#endif
