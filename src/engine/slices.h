/* Private: the sliced factor (issue #13). From NG_SAMPLER_COLS_MIN_N coordinates on, in a seeded generation
 * told by blocks on more than one rank, the sampling factor F (n x n) is not broadcast. Its rows are cut into
 * column blocks of NG_SAMPLER_COLS rows (the rows that make NG_SAMPLER_COLS coordinates of a step), and
 * block c is kept by one rank, ng__slice_owner(c): rank 1 + c mod (P - 1), never rank 0 unless it is alone.
 * - When rank 0 installs a new factor, it sends each block's rows to its keeper: n^2 doubles in all, n x
 *   NG_SAMPLER_COLS per block, once per decomposition, and no rank but a keeper receives any.
 * - Each generation every keeper regenerates the draws of all lambda candidates from the seeded streams and
 *   makes its coordinates of every step (sampler_impl.h: one product of fixed shape per sampling block and
 *   column block, so the bits are those of a rank that has the whole factor). It sends every rank the rows
 *   that rank holds (ng__tell_span: its candidates, and the rest of the tell blocks it owns).
 * So the broadcast of a generation carries O(n + lambda) numbers; the steps travel point to point, n doubles
 * per candidate a rank holds; and the work of the steps, lambda n^2 multiply-adds, is spread over the
 * keepers instead of repeated for every sampling block on every rank that evaluates in it.
 *
 * Messages (protocol.h): NG_TAG_SLICE rank 0 -> keeper, NG_TAG_PIECE keeper -> every rank with rows. Every
 * wait is under the stall watch. */
#ifndef NOGRAD_ENGINE_SLICES_H
#define NOGRAD_ENGINE_SLICES_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tell.h"
#include "engine/watch.h"
#include "nograd/opt.h"

typedef struct {
  MPI_Comm comm;    /* not owned */
  ng__watch *watch; /* not owned */
  int rank, size;
  size_t n, ncb;   /* dimension; column blocks */
  size_t nmine;    /* the column blocks this rank keeps: rank - 1, rank - 1 + (P - 1), ... */
  double **F;      /* their rows of the factor, NG_SAMPLER_COLS x n for each block */
  int64_t version; /* of F (on rank 0: of what it sent); -1: none */
  double **pieces; /* a generation's steps at those coordinates: per block, lambda x its width (one
                    * allocation each: SMPI may share larger buffers between simulated ranks) */
  double *Zb;      /* one sampling block's draws */
  double *recv;    /* the pieces this rank receives: per column block, its rows x that block's width */
  size_t pieces_cap, recv_cap;
  MPI_Request *req; /* a generation's messages */
  size_t req_cap;
  int64_t slice_bytes; /* rank 0: what it sent of the factor in the last install */
} ng__slicer;

/* For dimension n over comm, its waits under watch. Not collective. */
void ng__slicer_init(ng__slicer *sl, MPI_Comm comm, ng__watch *watch, size_t n);
void ng__slicer_free(ng__slicer *sl);

/* The rank that keeps column block c. */
int ng__slice_owner(const ng__slicer *sl, size_t c);

/* Allocates a generation's buffers: lambda candidates, `rows` held by this rank. NG_ENOMEM. Not collective:
 * call it where a failure still reaches every rank (before the generation's messages). */
int ng__slicer_reserve(ng__slicer *sl, size_t lambda, size_t rows);

/* Rank 0 sends every keeper its rows of F (rank 0: the whole factor, n x n; elsewhere ignored), which
 * becomes version `version`. Rank 0 and the keepers take part; NG_EMPI. */
int ng__slicer_install(ng__slicer *sl, const double *F, int64_t version);

/* Every rank: the steps Y (rows [a, e) x n, from the sampler s of this generation, lambda = s->lambda) of the
 * rows this rank holds, [a, e) = ng__tell_span(t, lambda, rank). Every rank takes part, with rows or not.
 * NG_EMPI. */
int ng__slicer_steps(ng__slicer *sl, const ng__teller *t, const ng_sampler *s, size_t a, size_t e, double *Y);

#endif
