/* The objective interface: what the engine evaluates, and what models, datasets and external evaluators
 * provide. It sits below its providers (src/nn, src/data, the evaluators) and the engine that drives it, so
 * that none of them includes a module above its own.
 *
 * An objective evaluates one candidate on one chunk of data into a partial: a (loss sum, count) pair, or
 * nstats numbers of its own. The engine (nograd/engine.h) adds each candidate's partials in chunk order, so a
 * loss is the same bits whatever the number of ranks; the chunk size belongs to the objective's
 * configuration, never to the number of ranks. None of these functions is collective. */
#ifndef NOGRAD_OBJECTIVE_H
#define NOGRAD_OBJECTIVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ng_objective {
  size_t n;       /* dimension of a candidate */
  size_t nchunks; /* data chunks, >= 1 */
  /* Called once on every rank before the first generation with the chunks this rank owns (count may be 0):
   * load or generate them. May be NULL. Returns NG_OK or a status with ng_error's message. */
  int (*load)(void *ctx, size_t first_chunk, size_t count);
  /* nstats 0 (the classic pair): adds the loss of candidate x (number k of generation `generation`) on
   * `chunk` to *sum and its number of examples to *count, both zero on entry; the candidate's loss is the sum
   * of its chunks' sums over the sum of their counts (NaN when the counts add to 0). Returns NG_OK or a
   * status with ng_error's message. Not collective. Unused (may be NULL) when nstats > 0. */
  int (*eval)(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
              double *count);
  void *ctx;
  /* A loss that is not a sum over examples (a metric of a confusion matrix, say) sets nstats > 0 and the two
   * functions below instead of eval; a zero-initialized ng_objective keeps the classic pair.
   * eval_stats ADDS nstats numbers for candidate x on `chunk` to stats (zero on entry); rank 0 sums each
   * candidate's stats element-wise over the chunks, in chunk order from zero, and finish maps the sums to
   * the candidate's loss (NaN allowed: it ranks last). finish is called on rank 0 only, once per candidate of
   * a generation, in candidate order; it must not fail. The gather and rank 0's buffer hold
   * lambda * nchunks * nstats doubles (lambda * nchunks * 2 for the classic pair), which must stay below
   * 2^31 (NG_EINVAL otherwise): for many stats, use fewer, larger chunks. */
  size_t nstats;
  int (*eval_stats)(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *stats);
  double (*finish)(void *ctx, const double *stats);
  /* Optional, for the classic pair (nstats 0): the losses of m candidates at once, for objectives where a
   * call costs more than a candidate (an external evaluator: one frame for all of a rank's candidates of a
   * chunk). x holds candidates first..first+m-1 of the generation (m x n, row-major); writes (not adds) the
   * m sums into sums and the m counts into counts. It must give each candidate what eval would give it;
   * when set, the engine calls it once per chunk instead of eval. */
  int (*eval_batch)(void *ctx, const double *x, size_t m, uint64_t generation, size_t first, size_t chunk,
                    double *sums, double *counts);
} ng_objective;

#ifdef __cplusplus
}
#endif
#endif
