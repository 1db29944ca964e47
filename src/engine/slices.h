/* Private: the sliced factor (issue #13). In a seeded generation of full CMA-ES told by blocks on more than
 * one rank, the sampling factor F (n x n) is not broadcast, and the ranks that evaluate do not make their
 * steps themselves: keepers do.
 * - F is cut into column blocks: the rows that make NG_SAMPLER_COLS coordinates of a step from
 *   NG_SAMPLER_COLS_MIN_N coordinates on (sampler_impl.h), the whole of F below. The sampling blocks of the
 *   generation (NG_SAMPLER_BLOCK candidates each) are cut into R contiguous ranges. Keeper (c, q) holds
 *   column block c and makes its coordinates of the steps of range q. R = min(sampling blocks, (P - 1) /
 *   column blocks), at least 1; keeper slot i = c R + q is rank 1 + i mod (P - 1): never rank 0, and one
 *   slot per rank whenever R > 1.
 * - When rank 0 installs a new factor (or R changes with lambda), it sends each column block to keeper
 *   (c, 0); the keepers of a column block pass it on down a binomial tree over q. Rank 0 sends n^2 doubles
 *   in all, once per decomposition.
 * - Each generation every keeper regenerates the draws of its range from the seeded streams and makes its
 *   coordinates of their steps, with one product of fixed shape per sampling block and column block (the
 *   products a rank with the whole factor makes, so the bits do not depend on who makes them). It sends
 *   every rank the rows of its range that rank holds (ng__tell_span: its candidates, and the rest of the
 *   tell blocks it owns).
 * So the broadcast of a generation carries O(n + lambda) numbers; the factor reaches R ranks per column
 * block instead of all P; the steps travel point to point, n doubles per candidate a rank holds; and their
 * lambda n^2 multiply-adds are made once, spread over the keepers.
 *
 * Messages (protocol.h): NG_TAG_SLICE rank 0 -> keeper (c, 0) -> keepers (c, q), NG_TAG_PIECE keeper -> every
 * rank with rows in its range. Every wait is under the stall watch. */
#ifndef NOGRAD_ENGINE_SLICES_H
#define NOGRAD_ENGINE_SLICES_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tell.h"
#include "engine/watch.h"
#include "nograd/opt.h"

#define NG_SLICE_SEGMENT                                                                \
  1024 /* doubles per message of the factor: a large message costs a rendezvous at each \
        * hop of the tree; segments follow one another down it */

typedef struct {
  MPI_Comm comm;    /* not owned */
  ng__watch *watch; /* not owned */
  int rank, size;
  size_t n, ncb, C; /* dimension; column blocks and their width (the last may be narrower) */
  /* the layout of the generation (ng__slicer_reserve) */
  size_t lambda, nsb, R;
  size_t nslots, *slot; /* this rank's keeper slots i = c R + q, increasing */
  /* what the keepers keep between generations */
  size_t R_installed; /* the R of the installed factor; 0: none */
  int64_t version;    /* of the installed factor (on rank 0: of what it sent); -1: none */
  double **F;         /* per slot, its column block's rows of the factor (C x n) */
  double **pieces;    /* per slot, the steps of its range at its coordinates (rows x width; one allocation
                       * each: SMPI may share larger buffers between simulated ranks) */
  size_t nalloc, pieces_cap; /* slots with buffers; doubles in each piece buffer */
  double *Zb;                /* one sampling block's draws */
  double *recv; /* the pieces this rank receives: per column block, its rows x the block's width */
  size_t recv_cap;
  MPI_Request *req; /* a generation's messages */
  MPI_Request *fwd; /* the install's sends down the tree, completed at the end of the steps */
  size_t req_cap, fwd_cap, nfwd;
  int64_t slice_bytes; /* rank 0: what it sent of the factor in the last install */
} ng__slicer;

/* For dimension n over comm, its waits under watch. Not collective. */
void ng__slicer_init(ng__slicer *sl, MPI_Comm comm, ng__watch *watch, size_t n);
void ng__slicer_free(ng__slicer *sl);

/* R for a generation of lambda; whether the keepers hold a factor for that R and of that version, so that
 * rank 0 need not send it. Not collective. */
size_t ng__slicer_ranges(const ng__slicer *sl, size_t lambda);
int ng__slicer_current(const ng__slicer *sl, size_t lambda, int64_t version);

/* Sets the layout of a generation of lambda and allocates its buffers (`rows` held by this rank). NG_ENOMEM.
 * Not collective: call it where a failure still reaches every rank (before the generation's messages). */
int ng__slicer_reserve(ng__slicer *sl, size_t lambda, size_t rows);

/* Rank 0 sends the keepers F (rank 0: the whole factor, n x n; elsewhere ignored), which becomes version
 * `version`, in the layout of the last reserve. Rank 0 and the keepers take part; NG_EMPI. */
int ng__slicer_install(ng__slicer *sl, const double *F, int64_t version);

/* Every rank: the steps Y (rows [a, e) x n) of the rows this rank holds, [a, e) = ng__tell_span(t, lambda,
 * rank), from the keepers, for the sampler s of this generation (s->lambda = the reserve's lambda). Every
 * rank takes part, with rows or not. NG_EMPI. */
int ng__slicer_steps(ng__slicer *sl, const ng__teller *t, const ng_sampler *s, size_t a, size_t e, double *Y);

#endif
