/* Agreeing on a status after a phase that may fail on some ranks, in O(log P) on every rank: one allreduce
 * finds the lowest failing rank (and the largest signal any rank received, and the slowest rank of the
 * phase), and only that rank sends its message, to rank 0. Rank 0 never loops over the ranks, so its work
 * does not grow with P. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "engine/protocol.h"
#include "engine/reduce.h"
#include "engine/status.h"
#include "nograd/engine.h"
#include "nograd/error.h"

/* What one allreduce agrees on: the lowest failing rank, minus the largest signal, and the slowest rank of
 * the phase with its seconds and the sum of everybody's (for the mean). */
typedef struct {
  int first, neg_signal, slowest, unused;
  double seconds, sum;
} status_word;

static void combine(void *in, void *inout, int *len, MPI_Datatype *type) {
  const status_word *a = in;
  status_word *b = inout;
  for (int i = 0; i < *len; i++) {
    if (a[i].first < b[i].first) b[i].first = a[i].first;
    if (a[i].neg_signal < b[i].neg_signal) b[i].neg_signal = a[i].neg_signal;
    if (a[i].seconds > b[i].seconds || (a[i].seconds == b[i].seconds && a[i].slowest < b[i].slowest)) {
      b[i].seconds = a[i].seconds;
      b[i].slowest = a[i].slowest;
    }
    b[i].sum += a[i].sum;
  }
}

int ng__status_agree(MPI_Comm comm, int status, int signal, ng__phase_time *phase, int *first_rank,
                     int *signal_out) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  *first_rank = INT_MAX;
  *signal_out = 0;
  double seconds = phase ? phase->seconds : 0;
  status_word mine = {status != NG_OK ? rank : INT_MAX, -signal, rank, 0, seconds, seconds}, all;
  MPI_Datatype type;
  MPI_Op op;
  int rc = ng__mpi_status(MPI_Type_contiguous(sizeof mine, MPI_BYTE, &type), "agreeing on the status");
  if (rc == NG_OK) rc = ng__mpi_status(MPI_Type_commit(&type), "agreeing on the status");
  if (rc == NG_OK) rc = ng__mpi_status(MPI_Op_create(combine, 1, &op), "agreeing on the status");
  if (rc == NG_OK) {
    rc = ng__mpi_status(MPI_Allreduce(&mine, &all, 1, type, op, comm), "agreeing on the status");
    MPI_Op_free(&op);
  }
  MPI_Type_free(&type);
  if (rc != NG_OK) return rc;
  *first_rank = all.first;
  *signal_out = -all.neg_signal;
  if (phase) {
    phase->slowest = all.slowest;
    phase->max = all.seconds;
    phase->mean = all.sum / size;
  }
  int first = all.first;
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
  int st = ng__status_agree(comm, status, 0, NULL, &first, &signal);
  if (first == INT_MAX) return st;
  /* every rank returns the lowest failing rank's status */
  int agreed = st;
  if (MPI_Bcast(&agreed, 1, MPI_INT, first, comm) != MPI_SUCCESS) MPI_Abort(comm, 1); /* cannot even agree */
  return agreed;
}
