/* Private: CMA-ES's update told as a sum over blocks of candidates, so that the engine can have each block's
 * share computed by a rank that sampled it and add the shares over a fixed tree (src/engine/engine.c) instead
 * of sampling and updating everything on rank 0. A single process (ng_opt_tell) runs the same arithmetic in
 * the same order, so the bits of a run do not depend on which ranks computed what, nor on P.
 *
 * The lambda candidates of a generation are cut into blocks of NG_TELL_BLOCK consecutive ones. The share of
 * block b is ng__tell_width(n) = 2n + n(n+1)/2 doubles:
 *   ymean_b, zmean_b  the sums of w_i y_k and w_i z_k over the block's candidates k of positive weight, taken
 * in ranking order (i is k's position in the ranking, w_i its recombination weight); S_b               for b
 * > 0 (zero for b = 0): the sum of cmu w_i y_k y_k^T over them minus, over those of negative weight whose
 * loss is finite, cmu |w_i| n / (|z_k| + 1e-9)^2 y_k y_k^T (active CMA-ES), as two rank-k updates (dsyrk)
 * from zero; the upper triangle, packed row by row. Shares add over the binomial tree rooted at block 0: for
 * s = 1, 2, 4, ... < nblocks, v_b += v_{b+s} for every b that is a multiple of 2s with b + s < nblocks. Rank
 * 0 then finishes the update: the rank-one term, the decay and block 0's rank-mu rows in one dsyrk on C, as
 * the update of one block always did, and then the tree's S. With lambda <= NG_TELL_BLOCK that is exactly the
 * update of a single block.
 *
 * What the other ranks need to compute a share travels as the plan: ng__tell_plan_len(lambda) doubles that
 * rank 0 fills after the losses are known (NG_PLAN_* below, then for each candidate its weight, NaN for one
 * left out, then its position in the ranking). */
#ifndef NOGRAD_OPT_TELL_DIST_H
#define NOGRAD_OPT_TELL_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "nograd/opt.h"

#define NG_TELL_BLOCK 128 /* candidates per share: four sampling blocks (sampler_impl.h) */

enum {
  NG_PLAN_LAMBDA, /* candidates in the generation */
  NG_PLAN_N,      /* dimension */
  NG_PLAN_MU,     /* candidates of positive weight */
  NG_PLAN_CMU,    /* the rank-mu learning rate */
  NG_PLAN_FETCH,  /* the candidate whose x rank 0 needs (a new best point), or -1 */
  NG_PLAN_HEAD    /* doubles before the per-candidate arrays */
};

/* Doubles in a plan, in a share, in the scratch ng__tell_share needs; blocks of a generation. Not collective.
 */
size_t ng__tell_plan_len(size_t lambda);
size_t ng__tell_width(size_t n);
size_t ng__tell_scratch_len(size_t n);
size_t ng__tell_blocks(size_t lambda);

/* Writes block b's share into v (ng__tell_width doubles; only the 2n of the means when the generation has one
 * block). Z and Y hold the block's rows (its first candidate is b * NG_TELL_BLOCK), as the sampler made them;
 * scratch: ng__tell_scratch_len(n) doubles (unused for block 0). Not collective. */
void ng__tell_share(const double *plan, size_t b, const double *Z, const double *Y, double *v,
                    double *scratch);

/* acc += v, element-wise over width doubles: one edge of the tree. */
void ng__tell_add(size_t width, double *acc, const double *v);

/* Whether the pending generation of opt is told by blocks (full CMA-ES); the other optimizers are told whole
 * on rank 0. Not collective. */
bool ng__opt_tell_blocked(const ng_opt *opt);

/* ng_opt_ask without the candidates: the distribution of the generation is ready (a lazy eigendecomposition
 * done when due) and the generation is pending, so ng_opt_sampler describes it. NG_EORDER as ng_opt_ask. */
int ng__opt_ask_lazy(ng_opt *opt);

/* The two halves of ng_opt_tell for a generation asked with ng__opt_ask_lazy. begin takes the losses, does
 * the generic bookkeeping and the ranking, and fills plan (ng__tell_plan_len(lambda) doubles);
 * plan[NG_PLAN_FETCH] names the candidate whose x end needs. end takes V, the tree's sum of every block's
 * share, the rows of block 0 (Z0, Y0) and that candidate's x (NULL when none was asked for), and finishes the
 * tell as ng_opt_tell does. NG_EORDER out of order; NG_ENOMEM. */
int ng__opt_tell_begin(ng_opt *opt, const double *f, double *plan);
int ng__opt_tell_end(ng_opt *opt, const double *V, const double *Z0, const double *Y0,
                     const double *x_fetched);

#endif
