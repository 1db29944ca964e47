/* Agreeing on a status after a phase that may fail on some ranks, in O(log P) on every rank: one allreduce
 * finds the lowest failing rank (and the largest signal any rank received, and the slowest and fastest
 * ranks' times of the phase), and only that rank sends its message, to rank 0. Rank 0 never loops over the
 * ranks, so its work does not grow with P. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "engine/protocol.h"
#include "engine/reduce.h"
#include "engine/status.h"
#include "nograd/engine.h"
#include "nograd/error.h"

int ng__status_agree(MPI_Comm comm, int status, int signal, ng__phase_time *phase, int *first_rank,
                     int *signal_out, ng__watch *watch) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  *first_rank = INT_MAX;
  *signal_out = 0;
  /* One allreduce of predefined type and operation (MPI_MAXLOC on value-rank pairs: the lowest rank among
   * equal values), so that it takes whatever tree the MPI library has for it: minus the lowest failing rank,
   * the largest signal, the slowest phase and minus the fastest. */
  double seconds = phase ? phase->seconds : 0;
  struct {
    double value;
    int rank;
  } mine[4] = {{status != NG_OK ? -(double)rank : -(double)INT_MAX, rank},
               {(double)signal, rank},
               {seconds, rank},
               {-seconds, rank}},
    all[4];
  const char *what = "agreeing on the status";
  MPI_Request req;
  if (watch && !watch->active) watch = NULL; /* then MPI's blocking allreduce */
  int rc = watch ? ng__mpi_status(MPI_Iallreduce(mine, all, 4, MPI_DOUBLE_INT, MPI_MAXLOC, comm, &req), what)
                 : ng__mpi_status(MPI_Allreduce(mine, all, 4, MPI_DOUBLE_INT, MPI_MAXLOC, comm), what);
  if (rc == NG_OK && watch) rc = ng__watch_wait(watch, &req, what);
  if (rc != NG_OK) return rc;
  *first_rank = (int)-all[0].value;
  *signal_out = (int)all[1].value;
  if (phase) {
    phase->slowest = all[2].rank;
    phase->max = all[2].value;
    phase->min = -all[3].value;
  }
  int first = *first_rank;
  if (first == INT_MAX) return NG_OK;
  ng_error_msg m;
  if (first == rank) {
    memset(&m, 0, sizeof m);
    m.status = status;
    snprintf(m.msg, sizeof m.msg, "%s", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(status));
    if (rank != 0) {
      rc = ng__mpi_status(MPI_Send(&m, sizeof m, MPI_BYTE, 0, NG_TAG_ERROR, comm), "forwarding an error");
      return rc != NG_OK ? rc : status;
    }
    return status; /* rank 0's own message stays as it is */
  }
  if (rank != 0) return status;
  rc = ng__mpi_status(MPI_Recv(&m, sizeof m, MPI_BYTE, first, NG_TAG_ERROR, comm, MPI_STATUS_IGNORE),
                      "receiving an error");
  if (rc != NG_OK) return rc;
  m.msg[NG_ERRMSG_LEN - 1] = '\0';
  return ng_error(m.status != NG_OK ? m.status : NG_EINTERNAL, "rank %d: %s", first, m.msg);
}

int ng_engine_agree(MPI_Comm comm, int status) {
  int first, signal, rank;
  MPI_Comm_rank(comm, &rank);
  int st = ng__status_agree(comm, status, 0, NULL, &first, &signal, NULL);
  if (first == INT_MAX) return st;
  /* every rank returns the lowest failing rank's status */
  int agreed = st;
  if (MPI_Bcast(&agreed, 1, MPI_INT, first, comm) != MPI_SUCCESS) MPI_Abort(comm, 1); /* cannot even agree */
  return agreed;
}
