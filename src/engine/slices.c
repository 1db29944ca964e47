/* The sliced factor (slices.h): rank 0 sends each column block of the factor to its first keeper, which
 * passes it down a binomial tree of the block's keepers; each generation the keepers make their coordinates
 * of the steps of their range of candidates and send every rank the rows it holds. */
#include "engine/slices.h"

#include <stdlib.h>
#include <string.h>

#include "engine/protocol.h"
#include "engine/reduce.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "opt/sampler_impl.h"
#include "opt/tell_dist.h"

#define SB NG_SAMPLER_BLOCK

/* Column block c's width. */
static size_t width_of(const ng__slicer *sl, size_t c) {
  size_t c0 = c * sl->C;
  return sl->n - c0 < sl->C ? sl->n - c0 : sl->C;
}

/* The rank of keeper slot i. */
static int rank_of(const ng__slicer *sl, size_t i) {
  return sl->size > 1 ? 1 + (int)(i % (size_t)(sl->size - 1)) : 0;
}

/* The candidates of range q: [*lo, *hi). */
static void range_of(const ng__slicer *sl, size_t q, size_t *lo, size_t *hi) {
  size_t first, count;
  ng_engine_block(sl->nsb, sl->R, q, &first, &count);
  *lo = first * SB < sl->lambda ? first * SB : sl->lambda;
  *hi = (first + count) * SB < sl->lambda ? (first + count) * SB : sl->lambda;
}

/* The range that holds candidate k. */
static size_t range_at(const ng__slicer *sl, size_t k) {
  return ng__block_of(sl->nsb, sl->R, k / SB);
}

void ng__slicer_init(ng__slicer *sl, MPI_Comm comm, ng__watch *watch, size_t n) {
  memset(sl, 0, sizeof *sl);
  sl->comm = comm;
  sl->watch = watch;
  sl->n = n;
  sl->version = -1;
  MPI_Comm_rank(comm, &sl->rank);
  MPI_Comm_size(comm, &sl->size);
  sl->C = ng_sampler_by_cols(n) ? NG_SAMPLER_COLS : n;
  sl->ncb = (n + sl->C - 1) / sl->C;
}

void ng__slicer_free(ng__slicer *sl) {
  for (size_t m = 0; m < sl->nalloc; m++) {
    free(sl->F[m]);
    free(sl->pieces[m]);
  }
  free(sl->F);
  free(sl->pieces);
  free(sl->slot);
  free(sl->Zb);
  free(sl->recv);
  for (size_t i = 0; i < sl->nfwd; i++)
    MPI_Wait(&sl->fwd[i], MPI_STATUS_IGNORE);
  free(sl->fwd);
  free(sl->req);
  memset(sl, 0, sizeof *sl);
}

size_t ng__slicer_ranges(const ng__slicer *sl, size_t lambda) {
  size_t nsb = (lambda + SB - 1) / SB, room = sl->size > 1 ? (size_t)(sl->size - 1) / sl->ncb : 0;
  size_t R = room < nsb ? room : nsb;
  return R ? R : 1;
}

int ng__slicer_current(const ng__slicer *sl, size_t lambda, int64_t version) {
  return sl->version == version && sl->R_installed == ng__slicer_ranges(sl, lambda);
}

int ng__slicer_reserve(ng__slicer *sl, size_t lambda, size_t rows) {
  size_t n = sl->n;
  sl->lambda = lambda;
  sl->nsb = (lambda + SB - 1) / SB;
  sl->R = ng__slicer_ranges(sl, lambda);
  /* this rank's slots: rank - 1, rank - 1 + (P - 1), ... below ncb R (all of them on one rank) */
  size_t total = sl->ncb * sl->R, step = sl->size > 1 ? (size_t)(sl->size - 1) : 1;
  size_t i0 = sl->size > 1 ? (size_t)(sl->rank - 1) : 0;
  sl->nslots = sl->rank == 0 && sl->size > 1 ? 0 : i0 < total ? (total - i0 + step - 1) / step : 0;
  size_t longest = (sl->nsb + sl->R - 1) / sl->R * SB, need = longest * sl->C;
  if (sl->nslots > sl->nalloc) {
    double **F = realloc(sl->F, sl->nslots * sizeof *F);
    if (F) sl->F = F;
    double **P = F ? realloc(sl->pieces, sl->nslots * sizeof *P) : NULL;
    if (P) sl->pieces = P;
    size_t *slot = P ? realloc(sl->slot, sl->nslots * sizeof *slot) : NULL;
    if (!slot) return ng_error(NG_ENOMEM, "out of memory for %zu keeper slots", sl->nslots);
    sl->slot = slot;
    for (; sl->nalloc < sl->nslots; sl->nalloc++)
      sl->F[sl->nalloc] = sl->pieces[sl->nalloc] = NULL;
  }
  if (need > sl->pieces_cap) {
    for (size_t m = 0; m < sl->nalloc; m++) {
      free(sl->pieces[m]);
      sl->pieces[m] = NULL;
    }
    sl->pieces_cap = need;
  }
  for (size_t m = 0; m < sl->nslots; m++) { /* one allocation each: SMPI may share larger buffers */
    if (!sl->F[m] && !(sl->F[m] = malloc(sl->C * n * sizeof(double))))
      return ng_error(NG_ENOMEM, "out of memory for %zu rows of the sampling factor", sl->C);
    if (!sl->pieces[m] && !(sl->pieces[m] = malloc(sl->pieces_cap * sizeof(double))))
      return ng_error(NG_ENOMEM, "out of memory for the steps of %zu candidates", longest);
  }
  for (size_t m = 0; m < sl->nslots; m++)
    sl->slot[m] = i0 + m * step;
  if (sl->nslots && !sl->Zb && !(sl->Zb = malloc(SB * n * sizeof *sl->Zb)))
    return ng_error(NG_ENOMEM, "out of memory for a block of draws");
  NG_CALL(ng__reserve(&sl->recv, &sl->recv_cap, sl->ncb > 1 ? rows * n : 0, "the steps received"));
  size_t nseg = (sl->C * n + NG_SLICE_SEGMENT - 1) / NG_SLICE_SEGMENT;
  size_t nfwd = sl->nslots * nseg * 8 * sizeof(size_t); /* each segment passed on at most once per bit */
  if (nfwd > sl->fwd_cap) {
    MPI_Request *f = realloc(sl->fwd, nfwd * sizeof *f);
    if (!f) return ng_error(NG_ENOMEM, "out of memory for %zu requests", nfwd);
    sl->fwd = f;
    sl->fwd_cap = nfwd;
  }
  /* receives: at most every range of every column block; sends: every rank from each slot, and the tree */
  size_t nreq = total * nseg + sl->nslots * ((size_t)sl->size + nseg);
  if (nreq > sl->req_cap) {
    free(sl->req);
    sl->req = malloc(nreq * sizeof *sl->req);
    sl->req_cap = sl->req ? nreq : 0;
    if (!sl->req) return ng_error(NG_ENOMEM, "out of memory for %zu requests", nreq);
  }
  return NG_OK;
}

/* Completes req[i0..i1) under the watch, the first error kept. */
static int wait_all(ng__slicer *sl, size_t i0, size_t i1, const char *what) {
  int st = NG_OK;
  for (size_t i = i0; i < i1; i++) {
    int w = ng__watch_wait(sl->watch, &sl->req[i], what);
    if (st == NG_OK) st = w;
  }
  return st;
}

/* Completes the sends of the last install that passed the factor on. */
static int wait_forwards(ng__slicer *sl) {
  int st = NG_OK;
  for (size_t i = 0; i < sl->nfwd; i++) {
    int w = ng__watch_wait(sl->watch, &sl->fwd[i], "passing on rows of the sampling factor");
    if (st == NG_OK) st = w;
  }
  sl->nfwd = 0;
  return st;
}

int ng__slicer_install(ng__slicer *sl, const double *F, int64_t version) {
  size_t n = sl->n, R = sl->R, nreq = 0, SEG = NG_SLICE_SEGMENT;
  int st = wait_forwards(sl); /* none, unless a generation ended between install and steps */
  sl->slice_bytes = 0;
  /* every slot receives its column block, segment by segment: (c, 0) from rank 0, (c, q) from (c, q without
   * its top bit) */
  for (size_t m = 0; st == NG_OK && m < sl->nslots; m++) {
    size_t c = sl->slot[m] / R, q = sl->slot[m] % R, top = 1, len = width_of(sl, c) * n;
    while (2 * top <= q)
      top *= 2;
    int src = q ? rank_of(sl, c * R + q - top) : 0;
    for (size_t j = 0; st == NG_OK && j < len; j += SEG)
      st = ng__mpi_status(MPI_Irecv(sl->F[m] + j, (int)(len - j < SEG ? len - j : SEG), MPI_DOUBLE, src,
                                    NG_TAG_SLICE, sl->comm, &sl->req[nreq++]),
                          "receiving rows of the sampling factor");
  }
  size_t nrecv = nreq;
  if (sl->rank == 0) /* O(n^2 / NG_SLICE_SEGMENT) messages, not O(P) */
    for (size_t c = 0; st == NG_OK && c < sl->ncb; c++) {
      size_t len = width_of(sl, c) * n;
      for (size_t j = 0; st == NG_OK && j < len; j += SEG)
        st = ng__mpi_status(MPI_Isend(F + c * sl->C * n + j, (int)(len - j < SEG ? len - j : SEG), MPI_DOUBLE,
                                      rank_of(sl, c * R), NG_TAG_SLICE, sl->comm, &sl->req[nreq++]),
                            "sending rows of the sampling factor");
      sl->slice_bytes += (int64_t)(len * sizeof(double));
    }
  /* and passes each segment on as it comes: slot (c, q) to (c, q + d) for the powers of two d > q with
   * q + d < R, smallest d (the largest subtree) first, so that the tree takes log2 R rounds and the segments
   * follow one another down it. The sends complete at the end of the generation's steps: a keeper makes its
   * steps while they travel. (With R > 1 a rank has at most one slot, so these waits cannot wait on one
   * another.) */
  for (size_t m = 0, r = 0; st == NG_OK && m < sl->nslots; m++) {
    size_t c = sl->slot[m] / R, q = sl->slot[m] % R, d0 = 1, len = width_of(sl, c) * n;
    while (d0 <= q)
      d0 *= 2;
    for (size_t j = 0; st == NG_OK && j < len; j += SEG, r++) {
      size_t seg = len - j < SEG ? len - j : SEG;
      st = ng__watch_wait(sl->watch, &sl->req[r], "receiving rows of the sampling factor");
      sl->req[r] = MPI_REQUEST_NULL;
      for (size_t d = d0; st == NG_OK && q + d < R; d *= 2)
        st = ng__mpi_status(MPI_Isend(sl->F[m] + j, (int)seg, MPI_DOUBLE, rank_of(sl, c * R + q + d),
                                      NG_TAG_SLICE, sl->comm, &sl->fwd[sl->nfwd++]),
                            "passing on rows of the sampling factor");
    }
  }
  int wst = wait_all(sl, 0, nrecv, "receiving rows of the sampling factor"); /* only after an error */
  if (st == NG_OK) st = wst;
  wst = wait_all(sl, nrecv, nreq, "sending rows of the sampling factor");
  if (st == NG_OK) st = wst;
  if (st == NG_OK) {
    sl->version = version;
    sl->R_installed = R;
  }
  return st;
}

int ng__slicer_steps(ng__slicer *sl, const ng__teller *t, const ng_sampler *s, size_t a, size_t e,
                     double *Y) {
  size_t n = sl->n, lambda = sl->lambda, rows = e - a, nreq = 0, R = sl->R;
  size_t G = (size_t)t->groups, S = (size_t)t->shards;
  double *into = sl->ncb > 1 ? sl->recv : Y; /* one column block: its rows are the steps */
  int st = NG_OK;
  /* every rank's receives first: block c's columns of this rank's rows, from the keepers of their ranges */
  for (size_t c = 0; st == NG_OK && rows && c < sl->ncb; c++) {
    size_t wc = width_of(sl, c);
    for (size_t q = range_at(sl, a); st == NG_OK && q <= range_at(sl, e - 1); q++) {
      size_t lo, hi;
      range_of(sl, q, &lo, &hi);
      if (lo < a) lo = a;
      if (hi > e) hi = e;
      if (lo >= hi) continue;
      st =
          ng__mpi_status(MPI_Irecv(into + c * sl->C * rows + (lo - a) * wc, (int)((hi - lo) * wc), MPI_DOUBLE,
                                   rank_of(sl, c * R + q), NG_TAG_PIECE, sl->comm, &sl->req[nreq++]),
                         "receiving steps");
    }
  }
  size_t nrecv = nreq;
  if (st == NG_OK && sl->nslots) {
    /* a keeper: the draws of its range, a sampling block at a time, times its rows of the factor (with more
     * than one slot, R = 1 and every slot has the whole population) */
    size_t lo, hi;
    range_of(sl, sl->slot[0] % R, &lo, &hi);
    for (size_t k0 = lo; k0 < hi; k0 += SB) {
      size_t b = hi - k0 < SB ? hi - k0 : SB;
      ng_sampler_gauss_draws(s, k0, b, sl->Zb);
      for (size_t m = 0; m < sl->nslots; m++) {
        size_t wc = width_of(sl, sl->slot[m] / R);
        ng_sampler_gauss_cols(n, b, sl->Zb, sl->F[m], wc, sl->pieces[m] + (k0 - lo) * wc);
      }
    }
    /* and every rank whose rows meet the range: the groups from the one holding the start of the first tell
     * block that meets it (its owner holds it whole) to the one holding its end, every shard */
    size_t g0 = ng__block_of(lambda, G, lo / NG_TELL_BLOCK * NG_TELL_BLOCK),
           g1 = ng__block_of(lambda, G, hi - 1);
    for (size_t r = g0 * S; st == NG_OK && hi > lo && r < (g1 + 1) * S; r++) {
      size_t ar, er;
      ng__tell_span(t, lambda, (int)r, &ar, &er);
      if (ar < lo) ar = lo;
      if (er > hi) er = hi;
      for (size_t m = 0; st == NG_OK && ar < er && m < sl->nslots; m++) {
        size_t wc = width_of(sl, sl->slot[m] / R);
        st = ng__mpi_status(MPI_Isend(sl->pieces[m] + (ar - lo) * wc, (int)((er - ar) * wc), MPI_DOUBLE,
                                      (int)r, NG_TAG_PIECE, sl->comm, &sl->req[nreq++]),
                            "sending steps");
      }
    }
  }
  int wst = wait_all(sl, 0, nrecv, "receiving the steps of this rank's candidates");
  if (st == NG_OK) st = wst;
  wst = wait_all(sl, nrecv, nreq, "sending steps");
  if (st == NG_OK) st = wst;
  wst = wait_forwards(sl);
  if (st == NG_OK) st = wst;
  if (st != NG_OK || sl->ncb == 1) return st;
  for (size_t c = 0; c < sl->ncb; c++) {
    size_t wc = width_of(sl, c);
    const double *p = sl->recv + c * sl->C * rows;
    for (size_t k = 0; k < rows; k++)
      memcpy(Y + k * n + c * sl->C, p + k * wc, wc * sizeof *Y);
  }
  return NG_OK;
}
