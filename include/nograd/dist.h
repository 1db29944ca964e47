/* The distributed generation loop: rank 0 asks the optimizer, every rank evaluates, rank 0 tells.
 *
 * An objective evaluates one candidate on one data chunk into a partial (loss sum, count); the loss of a
 * candidate is the sum over its chunks divided by the total count, added on rank 0 in chunk order, so that
 * it is the same bits whatever the number of ranks. Benchmark functions have one chunk and count 1. */
#ifndef NOGRAD_DIST_H
#define NOGRAD_DIST_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "nograd/opt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ng_objective {
  size_t n;       /* dimension of a candidate */
  size_t nchunks; /* data chunks, >= 1 */
  /* Adds the loss of candidate x (number k of generation `generation`) on `chunk` to *sum and its number of
   * examples to *count. Returns NG_OK or a status with ng_error's message. Not collective. */
  int (*eval)(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
              double *count);
  void *ctx;
} ng_objective;

/* Called on rank 0 after every tell, with the optimizer; a non-zero return stops the run with that status. */
typedef int (*ng_dist_monitor)(void *ctx, const ng_opt *opt);

/* Runs the optimizer to its stop. Collective over `comm`: rank 0 passes its set-up optimizer, the other ranks
 * NULL. Every rank returns the same status: NG_OK when the run stopped for one of its reasons, otherwise the
 * first error (its message is on the rank where it happened; NG_EMPI elsewhere). */
int ng_dist_run(MPI_Comm comm, ng_opt *opt, const ng_objective *obj, ng_dist_monitor monitor, void *monitor_ctx);

#ifdef __cplusplus
}
#endif
#endif
