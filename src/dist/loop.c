/* The generation loop over MPI, population-parallel: candidates are dealt to ranks in contiguous blocks that
 * differ in size by at most one; the losses of each candidate's chunks are added in chunk order.
 *
 * Protocol of one generation (all on the duplicated communicator):
 *   1. rank 0 broadcasts a header {status, lambda} (status != 0 ends the loop on every rank);
 *   2. rank 0 broadcasts the lambda x n candidates;
 *   3. every rank evaluates its block; the (sum, count) pairs and an error count are reduced to rank 0 with
 *      MPI_SUM over arrays in which every entry has exactly one non-zero contributor, so the sum is exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/dist.h"
#include "nograd/error.h"

enum { HDR_CONTINUE = 0, HDR_DONE = 1, HDR_ERROR = 2 };

static int mpi_status(int rc, const char *what) {
  if (rc == MPI_SUCCESS) return NG_OK;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return ng_error(NG_EMPI, "%s: %s", what, msg);
}

int ng_dist_run(MPI_Comm comm_in, ng_opt *opt, const ng_objective *obj, ng_dist_monitor monitor,
                void *monitor_ctx) {
  MPI_Comm comm;
  int rank, size, st = NG_OK;
  NG_CALL(mpi_status(MPI_Comm_dup(comm_in, &comm), "MPI_Comm_dup"));
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  size_t n = obj->n, cap = 0;
  double *x = NULL, *part = NULL, *total = NULL;
  for (;;) {
    int64_t hdr[2] = {HDR_CONTINUE, 0};
    if (rank == 0) {
      if (st != NG_OK) hdr[0] = HDR_ERROR;
      else if (ng_opt_stop(opt) != NG_STOP_NONE) hdr[0] = HDR_DONE;
      hdr[1] = (int64_t)ng_opt_popsize(opt);
    }
    NG_TRY(st, mpi_status(MPI_Bcast(hdr, 2, MPI_INT64_T, 0, comm), "broadcast of the generation header"), out);
    if (hdr[0] != HDR_CONTINUE) {
      if (hdr[0] == HDR_ERROR && rank != 0) st = ng_error(NG_EMPI, "rank 0 ended the run with an error");
      break;
    }
    size_t lambda = (size_t)hdr[1];
    if (lambda > cap) {
      free(x);
      free(part);
      free(total);
      x = malloc(lambda * n * sizeof *x);
      part = malloc((2 * lambda + 1) * sizeof *part);
      total = malloc((2 * lambda + 1) * sizeof *total);
      cap = lambda;
      if (!x || !part || !total) {
        st = ng_error(NG_ENOMEM, "out of memory for %zu candidates of dimension %zu", lambda, n);
        MPI_Abort(comm, 1); /* no rank can go on, and the others wait in a collective */
      }
    }
    int ask_st = NG_OK;
    if (rank == 0) ask_st = ng_opt_ask(opt, x);
    NG_TRY(st, mpi_status(MPI_Bcast(x, (int)(lambda * n), MPI_DOUBLE, 0, comm), "broadcast of the candidates"),
           out);
    uint64_t generation = 0;
    if (rank == 0) {
      ng_opt_info info;
      ng_opt_get_info(opt, &info);
      generation = (uint64_t)info.generation;
    }
    NG_TRY(st, mpi_status(MPI_Bcast(&generation, 1, MPI_UINT64_T, 0, comm), "broadcast of the generation"), out);
    memset(part, 0, (2 * lambda + 1) * sizeof *part);
    size_t per = lambda / (size_t)size, extra = lambda % (size_t)size, r = (size_t)rank;
    size_t first = r * per + (r < extra ? r : extra), count = per + (r < extra ? 1 : 0);
    for (size_t k = first; k < first + count && ask_st == NG_OK; k++) {
      for (size_t c = 0; c < obj->nchunks; c++) {
        double s = 0, m = 0;
        int e = obj->eval(obj->ctx, x + k * n, generation, k, c, &s, &m);
        if (e != NG_OK) {
          part[2 * lambda] += 1;
          st = e;
          break;
        }
        part[2 * k] += s; /* chunk order within one rank is the chunk order: deterministic */
        part[2 * k + 1] += m;
      }
    }
    NG_TRY(st, mpi_status(MPI_Reduce(part, total, (int)(2 * lambda + 1), MPI_DOUBLE, MPI_SUM, 0, comm),
                          "reduction of the losses"),
           out);
    if (rank == 0) {
      if (ask_st != NG_OK) st = ask_st;
      else if (total[2 * lambda] > 0 && st == NG_OK)
        st = ng_error(NG_EINTERNAL, "%g evaluations failed on other ranks", total[2 * lambda]);
      if (st == NG_OK) {
        for (size_t k = 0; k < lambda; k++) total[k] = total[2 * k + 1] > 0 ? total[2 * k] / total[2 * k + 1] : NAN;
        st = ng_opt_tell(opt, total);
      }
      if (st == NG_OK && monitor) st = monitor(monitor_ctx, opt);
    } else if (st != NG_OK) {
      /* this rank's failure reached rank 0 through the error count; keep serving until rank 0 says stop */
    }
  }
out:
  free(x);
  free(part);
  free(total);
  MPI_Comm_free(&comm);
  return st;
}
