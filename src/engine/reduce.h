/* Private: the one chunk reduction, and the MPI status check every collective of the engine goes through.
 *
 * The determinism contract (DESIGN.md) in one place: every rank evaluates whole chunks into partials of w
 * doubles, rank 0 gathers them and adds each candidate's partials element-wise, in chunk order, from zero.
 * The P ranks form a grid of G population groups x S = P/G data shards; rank r evaluates the candidates of
 * group r / S and the chunks of shard r % S, both as contiguous blocks (ng_engine_block). A rank sends its
 * partials candidate-major: for each of its candidates, its chunks in order. A fixed vector measured
 * data-parallel is the case lambda = 1, G = 1 (ng_engine_measure). */
#ifndef NOGRAD_ENGINE_REDUCE_H
#define NOGRAD_ENGINE_REDUCE_H

#include <mpi.h>
#include <stddef.h>

#include "engine/watch.h"

/* NG_OK for MPI_SUCCESS; otherwise NG_EMPI with "what: <MPI's message>". Not collective. */
int ng__mpi_status(int rc, const char *what);

/* (Re)allocates a buffer of doubles to hold at least `need`; *cap tracks its size. NG_ENOMEM naming `what`.
 * Its old contents are not kept. */
int ng__reserve(double **buf, size_t *cap, size_t need, const char *what);

typedef struct {
  MPI_Comm comm; /* not owned */
  int rank, size, groups, shards;
  size_t nchunks, w, lambda;
  int *counts, *displs; /* rank 0: doubles from each rank and where they land (planned per lambda) */
  double *all;          /* rank 0: lambda * nchunks * w partials, in rank order */
  size_t all_cap;
} ng__reduce;

/* The part of ng_engine_block(total, parts, ., .) that holds item k < total: computed, not searched. */
size_t ng__block_of(size_t total, size_t parts, size_t k);

/* A reduction over `comm` for a grid of `groups` (dividing the ranks) and nchunks chunks of w doubles each.
 * NG_ENOMEM. Not collective (every rank calls it alike). */
int ng__reduce_init(ng__reduce *r, MPI_Comm comm, int groups, size_t nchunks, size_t w);
void ng__reduce_free(ng__reduce *r);

/* Plans the gather for a generation of lambda candidates: the counts and displacements on rank 0, computed
 * again only when lambda changes. NG_EINVAL when rank 0's buffer would pass 2^31 - 1 doubles (one MPI
 * gather); NG_ENOMEM. Not collective. */
int ng__reduce_plan(ng__reduce *r, size_t lambda);

/* The candidates and chunks this rank evaluates: [*cand_first, + *cand_count) and [*chunk_first, +
 * *chunk_count). */
void ng__reduce_share(const ng__reduce *r, size_t *cand_first, size_t *cand_count, size_t *chunk_first,
                      size_t *chunk_count);

/* Gathers every rank's partials (this rank's: mine, cand_count * chunk_count * w doubles, candidate-major)
 * on rank 0, waiting under `watch` (NULL or inactive: MPI's blocking gather). Collective. NG_EMPI. */
int ng__reduce_gather(ng__reduce *r, const double *mine, ng__watch *watch);

/* Rank 0, after a gather: acc (w doubles) = candidate k's partials added in chunk order from zero. The group
 * that evaluated k is computed, not searched; the cost is that of reading k's partials. */
void ng__reduce_sum(const ng__reduce *r, size_t k, double *acc);

#endif
