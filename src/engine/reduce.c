/* The one chunk reduction (see reduce.h): the plan of a gather of partials on rank 0 and their sum in chunk
 * order, shared by the generation loop (engine.c) and by every measurement of a fixed vector
 * (ng_engine_measure: eval, glue, retrofit). */
#include "engine/reduce.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/engine.h"
#include "nograd/error.h"

int ng__mpi_status(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return NG_OK;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return ng_error(NG_EMPI, "%s: %s", what, msg);
}

int ng__reserve(double **buf, size_t *cap, size_t need, const char *what) {
  if (need <= *cap && *buf) return NG_OK;
  free(*buf);
  *buf = malloc((need ? need : 1) * sizeof **buf);
  *cap = *buf ? need : 0;
  return *buf ? NG_OK : ng_error(NG_ENOMEM, "out of memory for %s (%zu values)", what, need);
}

void ng_engine_block(size_t total, size_t parts, size_t index, size_t *first, size_t *count) {
  size_t per = total / parts, extra = total % parts;
  *first = index * per + (index < extra ? index : extra);
  *count = per + (index < extra ? 1 : 0);
}

size_t ng__block_of(size_t total, size_t parts, size_t k) {
  size_t per = total / parts, extra = total % parts, big = extra * (per + 1);
  return k < big ? k / (per + 1) : extra + (k - big) / per;
}

int ng__reduce_init(ng__reduce *r, MPI_Comm comm, int groups, size_t nchunks, size_t w) {
  memset(r, 0, sizeof *r);
  r->comm = comm;
  MPI_Comm_rank(comm, &r->rank);
  MPI_Comm_size(comm, &r->size);
  r->groups = groups;
  r->shards = r->size / groups;
  r->nchunks = nchunks;
  r->w = w;
  if (r->rank == 0) {
    r->counts = malloc((size_t)r->size * sizeof *r->counts);
    r->displs = malloc((size_t)r->size * sizeof *r->displs);
    if (!r->counts || !r->displs)
      return ng_error(NG_ENOMEM, "out of memory for the plan of %d ranks", r->size);
  }
  return NG_OK;
}

void ng__reduce_free(ng__reduce *r) {
  free(r->counts);
  free(r->displs);
  free(r->all);
  memset(r, 0, sizeof *r);
}

int ng__reduce_plan(ng__reduce *r, size_t lambda) {
  if (lambda == r->lambda && (r->all || r->rank != 0)) return NG_OK;
  size_t nch = r->nchunks, w = r->w;
  /* MPI counts and displacements are int: rank 0 receives all the partials in one gather */
  if (lambda > (size_t)INT_MAX / w / nch)
    return ng_error(
        NG_EINVAL,
        "the partials of %zu candidates x %zu chunks x %zu doubles exceed one MPI gather (2^31 - 1 "
        "doubles): use fewer chunks or a smaller population",
        lambda, nch, w);
  r->lambda = lambda;
  if (r->rank != 0) return NG_OK;
  size_t need = w * lambda * nch;
  if (need > r->all_cap) {
    free(r->all);
    r->all = malloc((need ? need : 1) * sizeof *r->all);
    r->all_cap = r->all ? need : 0;
    if (!r->all) return ng_error(NG_ENOMEM, "out of memory for the partials of %zu candidates", lambda);
  }
  int off = 0;
  for (int q = 0; q < r->size; q++) {
    size_t f1, c1, f2, c2;
    ng_engine_block(lambda, (size_t)r->groups, (size_t)(q / r->shards), &f1, &c1);
    ng_engine_block(nch, (size_t)r->shards, (size_t)(q % r->shards), &f2, &c2);
    r->counts[q] = (int)(w * c1 * c2);
    r->displs[q] = off;
    off += r->counts[q];
  }
  return NG_OK;
}

void ng__reduce_share(const ng__reduce *r, size_t *cand_first, size_t *cand_count, size_t *chunk_first,
                      size_t *chunk_count) {
  ng_engine_block(r->lambda, (size_t)r->groups, (size_t)(r->rank / r->shards), cand_first, cand_count);
  ng_engine_block(r->nchunks, (size_t)r->shards, (size_t)(r->rank % r->shards), chunk_first, chunk_count);
}

int ng__reduce_gather(ng__reduce *r, const double *mine, ng__watch *watch) {
  size_t cf, cc, hf, hc;
  ng__reduce_share(r, &cf, &cc, &hf, &hc);
  const char *what = "gathering the partial losses";
  if (!watch || !watch->active)
    return ng__mpi_status(MPI_Gatherv(mine, (int)(r->w * cc * hc), MPI_DOUBLE, r->all, r->counts, r->displs,
                                      MPI_DOUBLE, 0, r->comm),
                          what);
  MPI_Request req;
  int rc = MPI_Igatherv(mine, (int)(r->w * cc * hc), MPI_DOUBLE, r->all, r->counts, r->displs, MPI_DOUBLE, 0,
                        r->comm, &req);
  if (rc != MPI_SUCCESS) return ng__mpi_status(rc, what);
  return ng__watch_wait(watch, &req, what);
}

void ng__reduce_sum(const ng__reduce *r, size_t k, double *acc) {
  size_t w = r->w, S = (size_t)r->shards, g = ng__block_of(r->lambda, (size_t)r->groups, k), f1, c1;
  ng_engine_block(r->lambda, (size_t)r->groups, g, &f1, &c1);
  memset(acc, 0, w * sizeof *acc);
  for (size_t s = 0; s < S; s++) {
    size_t f2, c2;
    ng_engine_block(r->nchunks, S, s, &f2, &c2);
    const double *p = r->all + r->displs[g * S + s] + w * (k - f1) * c2;
    for (size_t c = 0; c < c2; c++) /* shards hold consecutive chunk blocks: this is chunk order */
      for (size_t j = 0; j < w; j++)
        acc[j] += p[w * c + j];
  }
}

int ng_engine_measure(MPI_Comm comm, size_t nchunks, size_t w, ng_chunk_fn fn, void *ctx, double *sum) {
  ng__reduce r;
  double *part = NULL;
  int st = nchunks && w
               ? NG_OK
               : ng_error(NG_EINVAL, "a measurement needs chunks and partials (got %zu x %zu)", nchunks, w);
  if (st == NG_OK)
    st = ng__reduce_init(&r, comm, 1, nchunks, w);
  else
    memset(&r, 0, sizeof r);
  if (st == NG_OK) st = ng__reduce_plan(&r, 1);
  size_t cf = 0, cc = 0, hf = 0, hc = 0;
  if (st == NG_OK) {
    ng__reduce_share(&r, &cf, &cc, &hf, &hc);
    part = calloc(w * hc + 1, sizeof *part);
    if (!part) st = ng_error(NG_ENOMEM, "out of memory for the partials of %zu chunks", hc);
  }
  for (size_t i = 0; st == NG_OK && i < hc; i++)
    st = fn(ctx, hf + i, part + w * i);
  st = ng_engine_agree(comm, st);
  if (st == NG_OK) st = ng__reduce_gather(&r, part, NULL);
  if (st == NG_OK && r.rank == 0) ng__reduce_sum(&r, 0, sum);
  if (st == NG_OK)
    st = ng__mpi_status(MPI_Bcast(sum, (int)w, MPI_DOUBLE, 0, comm), "broadcasting a measurement");
  free(part);
  ng__reduce_free(&r);
  return st;
}
