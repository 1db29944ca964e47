/* The sliced factor (slices.h): rank 0 sends each keeper its rows of the factor once per decomposition, and
 * each generation the keepers make their coordinates of every step and send every rank the rows it holds. */
#include "engine/slices.h"

#include <stdlib.h>
#include <string.h>

#include "engine/protocol.h"
#include "engine/reduce.h"
#include "nograd/error.h"
#include "opt/sampler_impl.h"

int ng__slice_owner(const ng__slicer *sl, size_t c) {
  return sl->size > 1 ? 1 + (int)(c % (size_t)(sl->size - 1)) : 0;
}

/* Column block c: its first coordinate and its width. */
static size_t width_of(const ng__slicer *sl, size_t c) {
  size_t c0 = c * NG_SAMPLER_COLS;
  return sl->n - c0 < NG_SAMPLER_COLS ? sl->n - c0 : NG_SAMPLER_COLS;
}

/* The m-th block this rank keeps. */
static size_t mine(const ng__slicer *sl, size_t m) {
  return sl->size > 1 ? (size_t)(sl->rank - 1) + m * (size_t)(sl->size - 1) : m;
}

void ng__slicer_init(ng__slicer *sl, MPI_Comm comm, ng__watch *watch, size_t n) {
  memset(sl, 0, sizeof *sl);
  sl->comm = comm;
  sl->watch = watch;
  sl->n = n;
  sl->version = -1;
  MPI_Comm_rank(comm, &sl->rank);
  MPI_Comm_size(comm, &sl->size);
  sl->ncb = (n + NG_SAMPLER_COLS - 1) / NG_SAMPLER_COLS;
  if (sl->size == 1)
    sl->nmine = sl->ncb;
  else if (sl->rank >= 1 && (size_t)(sl->rank - 1) < sl->ncb)
    sl->nmine = (sl->ncb - (size_t)sl->rank + (size_t)sl->size - 1) / (size_t)(sl->size - 1);
}

void ng__slicer_free(ng__slicer *sl) {
  for (size_t m = 0; m < sl->nmine; m++) {
    if (sl->F) free(sl->F[m]);
    if (sl->pieces) free(sl->pieces[m]);
  }
  free(sl->F);
  free(sl->pieces);
  free(sl->Zb);
  free(sl->recv);
  free(sl->req);
  memset(sl, 0, sizeof *sl);
}

int ng__slicer_reserve(ng__slicer *sl, size_t lambda, size_t rows) {
  size_t n = sl->n, per = NG_SAMPLER_COLS * n, nreq = sl->ncb + sl->nmine * (size_t)sl->size;
  if (sl->nmine && !sl->F) {
    sl->F = calloc(sl->nmine, sizeof *sl->F);
    sl->Zb = malloc(NG_SAMPLER_BLOCK * n * sizeof *sl->Zb);
    sl->pieces = calloc(sl->nmine, sizeof *sl->pieces);
    for (size_t m = 0; sl->F && m < sl->nmine; m++)
      if (!(sl->F[m] = malloc(per * sizeof(double)))) break;
    if (!sl->F || !sl->Zb || !sl->pieces || !sl->F[sl->nmine - 1])
      return ng_error(NG_ENOMEM, "out of memory for %zu rows of the sampling factor",
                      sl->nmine * NG_SAMPLER_COLS);
  }
  size_t need = lambda * NG_SAMPLER_COLS;
  if (need > sl->pieces_cap)
    for (size_t m = 0; m < sl->nmine; m++) {
      free(sl->pieces[m]);
      if (!(sl->pieces[m] = malloc(need * sizeof(double))))
        return ng_error(NG_ENOMEM, "out of memory for the steps of %zu candidates", lambda);
    }
  if (need > sl->pieces_cap) sl->pieces_cap = need;
  NG_CALL(ng__reserve(&sl->recv, &sl->recv_cap, rows * n, "the steps' slices received"));
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

int ng__slicer_install(ng__slicer *sl, const double *F, int64_t version) {
  size_t n = sl->n, nreq = 0;
  int st = NG_OK;
  sl->slice_bytes = 0;
  for (size_t m = 0; st == NG_OK && m < sl->nmine; m++) {
    size_t c = mine(sl, m);
    st = ng__mpi_status(MPI_Irecv(sl->F[m], (int)(width_of(sl, c) * n), MPI_DOUBLE, 0, NG_TAG_SLICE, sl->comm,
                                  &sl->req[nreq++]),
                        "receiving rows of the sampling factor");
  }
  if (sl->rank == 0) /* one message per column block: O(n), not O(P) */
    for (size_t c = 0; st == NG_OK && c < sl->ncb; c++) {
      size_t len = width_of(sl, c) * n;
      st = ng__mpi_status(MPI_Isend(F + c * NG_SAMPLER_COLS * n, (int)len, MPI_DOUBLE, ng__slice_owner(sl, c),
                                    NG_TAG_SLICE, sl->comm, &sl->req[nreq++]),
                          "sending rows of the sampling factor");
      sl->slice_bytes += (int64_t)(len * sizeof(double));
    }
  int wst = wait_all(sl, 0, nreq, "the rows of the sampling factor");
  if (st == NG_OK) st = wst;
  if (st == NG_OK) sl->version = version;
  return st;
}

int ng__slicer_steps(ng__slicer *sl, const ng__teller *t, const ng_sampler *s, size_t a, size_t e,
                     double *Y) {
  size_t n = sl->n, lambda = s->lambda, rows = e - a, nreq = 0, SB = NG_SAMPLER_BLOCK, C = NG_SAMPLER_COLS;
  int st = NG_OK;
  /* every rank's receives first: block c's columns of this rank's rows, from its keeper */
  for (size_t c = 0; st == NG_OK && rows && c < sl->ncb; c++)
    st = ng__mpi_status(MPI_Irecv(sl->recv + c * C * rows, (int)(width_of(sl, c) * rows), MPI_DOUBLE,
                                  ng__slice_owner(sl, c), NG_TAG_PIECE, sl->comm, &sl->req[nreq++]),
                        "receiving steps");
  size_t nrecv = nreq;
  if (st == NG_OK && sl->nmine) {
    /* a keeper: every candidate's draws, a sampling block at a time, times its rows of the factor */
    for (size_t k0 = 0; k0 < lambda; k0 += SB) {
      size_t b = lambda - k0 < SB ? lambda - k0 : SB;
      ng_sampler_gauss_draws(s, k0, b, sl->Zb);
      for (size_t m = 0; m < sl->nmine; m++) {
        size_t wc = width_of(sl, mine(sl, m));
        ng_sampler_gauss_cols(n, b, sl->Zb, sl->F[m], wc, sl->pieces[m] + k0 * wc);
      }
    }
    /* and every rank its rows (blocks in increasing order, as the receives were posted) */
    for (int r = 0; st == NG_OK && r < sl->size; r++) {
      size_t ar, er;
      ng__tell_span(t, lambda, r, &ar, &er);
      for (size_t m = 0; st == NG_OK && er > ar && m < sl->nmine; m++) {
        size_t wc = width_of(sl, mine(sl, m));
        st = ng__mpi_status(MPI_Isend(sl->pieces[m] + ar * wc, (int)((er - ar) * wc), MPI_DOUBLE, r,
                                      NG_TAG_PIECE, sl->comm, &sl->req[nreq++]),
                            "sending steps");
      }
    }
  }
  int wst = wait_all(sl, 0, nrecv, "receiving the steps of this rank's candidates");
  if (st == NG_OK) st = wst;
  wst = wait_all(sl, nrecv, nreq, "sending steps");
  if (st == NG_OK) st = wst;
  if (st != NG_OK) return st;
  for (size_t c = 0; c < sl->ncb; c++) {
    size_t wc = width_of(sl, c);
    const double *p = sl->recv + c * C * rows;
    for (size_t k = 0; k < rows; k++)
      memcpy(Y + k * n + c * C, p + k * wc, wc * sizeof *Y);
  }
  return NG_OK;
}
