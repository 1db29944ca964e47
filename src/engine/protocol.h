// clang-format off
/* Private: what travels between the ranks in one generation, in one place.
 *
 *   rank 0 -> all    MPI_Ibcast     header and mean (MPI_BYTE, sizeof(ng_gen_header) + 8n; the mean is zero
 *                                   unless seeded), completed under the stall watch (watch.h)
 *   rank 0 -> all    MPI_Bcast      explicit: lambda*n doubles (the candidates)
 *                                   seeded: factor_len doubles when factor_len > 0 and not sliced,
 *                                   then 2n doubles (lower, upper) when bounds == 1
 *   all              MPI_Iallreduce the status: 2 ints, MPI_MIN (the lowest failing rank or INT_MAX; minus the
 *                                   largest signal a rank received, or 0), under the watch
 *   failing rank -> rank 0  MPI_Send NG_TAG_ERROR: the lowest failing rank's ng_error_msg, only when that
 *                                   rank is not rank 0
 *   all -> rank 0    MPI_Igatherv   partials: for the rank's candidates x chunks, candidate-major, w doubles
 *                                   each (w = the objective's nstats, or 2 for a (sum, count) pair), under
 *                                   the watch
 *   rank 0 <-> rank  NG_TAG_ROLL_CALL / NG_TAG_ROLL_ANSWER: only in a wait past half a stall limit (watch.h)
 * and when the header says tell_blocked (seeded full CMA-ES: opt/tell_dist.h), after a generation without
 * error, among the holders and owners only (the holder of candidate k is shard 0 of the group that evaluates
 * k; the owner of tell block b is the holder of its first candidate; tell.c):
 *   rank 0 -> owner  MPI_Isend NG_TAG_PLAN: to every other owner, the plan's head and the weights and ranks
 *                                   of the candidates of its tell blocks (rank 0 holds the whole plan)
 *   owner -> owner   MPI_Isend NG_TAG_SHARE: a block's share (ng__tell_width(n) doubles; 2n with one block)
 *                                   up the binomial tree of the tell blocks to the owner of its parent
 *   owner -> rank 0  MPI_Send NG_TAG_BEST: the x of the candidate the plan's head asks for (n doubles)
 * and when the header says sliced (a tell by blocks on P > 1 ranks, full CMA-ES; slices.h), the factor is not
 * broadcast, and the steps come from its keepers (every owner gets its tell blocks' rows with its own):
 *   rank 0 -> keeper MPI_Isend NG_TAG_SLICE: when factor_len > 0, after the header, each column block of the
 *                                   factor to its first keeper (c, 0), and keeper (c, q) -> keeper (c, q + d)
 *                                   down a binomial tree, in segments of NG_SLICE_SEGMENT doubles
 *   keeper -> rank   MPI_Isend NG_TAG_PIECE: every generation, the keeper's coordinates of the steps of the
 *                                   rows of its range the receiver holds (its candidates, its tell blocks' rows)
 *
 * The ranks run one binary on one kind of machine, so structs travel as bytes. */
// clang-format on
#ifndef NOGRAD_ENGINE_PROTOCOL_H
#define NOGRAD_ENGINE_PROTOCOL_H

#include <stdint.h>

#define NG_TAG_ERROR 101  /* an error message for rank 0 */
#define NG_TAG_SHARE 104  /* a tell block's share, up the tree */
#define NG_TAG_BEST 105   /* the new best candidate's x */
#define NG_TAG_PLAN 106   /* a part of the plan of a tell by blocks, from rank 0 */
#define NG_TAG_SLICE 107  /* rows of the sampling factor, for their keeper (slices.h) */
#define NG_TAG_PIECE 108  /* a keeper's coordinates of the steps of a rank's rows */
#define NG_ERRMSG_LEN 512 /* bytes of a forwarded error message */

enum { NG_HDR_CONTINUE = 0, NG_HDR_DONE = 1, NG_HDR_ERROR = 2, NG_HDR_SIGNAL = 3 };

typedef struct {
  int64_t status;         /* NG_HDR_*: anything but CONTINUE ends the loop on every rank */
  int64_t lambda;         /* candidates in this generation */
  int64_t generation;     /* keys the sampling streams and the noise of noisy objectives */
  int64_t seeded;         /* 1: regenerate the candidates; 0: they follow */
  int64_t kind;           /* ng_sampler_kind */
  int64_t factor_version; /* of the factor the ranks must use */
  int64_t factor_len;     /* > 0: a new factor follows */
  int64_t bounds;         /* 1: lower and upper bounds follow */
  int64_t gaussian;       /* SPSA directions */
  int64_t center;         /* SPSA: centring stride of the directions (0: off) */
  int64_t signal;         /* NG_HDR_SIGNAL: which signal */
  int64_t tell_blocked;   /* 1: the ranks that sampled the candidates compute the tell's block shares */
  int64_t sliced;         /* 1: the factor is kept in slices and the steps come from its keepers (slices.h) */
  uint64_t seed;
  double sigma;
} ng_gen_header;

typedef struct {
  int32_t status;          /* the failing rank's status */
  char msg[NG_ERRMSG_LEN]; /* and its message */
} ng_error_msg;

#endif
