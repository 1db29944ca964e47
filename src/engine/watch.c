/* Waiting for the other ranks with a deadline (see watch.h). */
#include "engine/watch.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/reduce.h"
#include "nograd/error.h"
#include "nograd/timer.h"

#define NAP_MAX 0.010   /* seconds: the longest sleep between two polls */
#define NAP_SHARE 0.01  /* of the time waited so far: what a sleep may add to a wait */
#define SPIN_SECS 50e-6 /* polls without sleeping at the start of a wait */
#define NAMES_SHOWN 8   /* ranks named on one line */

int ng__watch_init(ng__watch *w, MPI_Comm comm, double warn, double abort, FILE *out) {
  memset(w, 0, sizeof *w);
  w->comm = comm;
  MPI_Comm_rank(comm, &w->rank);
  MPI_Comm_size(comm, &w->size);
  w->warn = warn > 0 ? warn : 0;
  w->abort = abort > 0 ? abort : 0;
  w->out = out;
  w->active = w->size > 1 && (w->warn > 0 || w->abort > 0);
  if (!w->active) return NG_OK;
  int ok = 1;
  if (w->rank == 0) {
    size_t P = (size_t)w->size;
    w->hosts = calloc(P, NG__HOST_LEN);
    w->answers = malloc(P * sizeof *w->answers);
    w->answer_buf = calloc(P, sizeof *w->answer_buf);
    w->index = malloc(P * sizeof *w->index);
    w->statuses = malloc(P * sizeof *w->statuses);
    ok = w->hosts && w->answers && w->answer_buf && w->index && w->statuses;
    for (size_t r = 0; ok && r < P; r++)
      w->answers[r] = MPI_REQUEST_NULL;
  }
  int rc = MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
  if (rc != MPI_SUCCESS) return ng__mpi_status(rc, "setting up the stall watch");
  if (!ok) return ng_error(NG_ENOMEM, "out of memory for the stall watch of %d ranks", w->size);
  char name[MPI_MAX_PROCESSOR_NAME] = "", mine[NG__HOST_LEN] = "";
  int len = 0;
  MPI_Get_processor_name(name, &len);
  snprintf(mine, sizeof mine, "%.*s", NG__HOST_LEN - 1, name);
  return ng__mpi_status(MPI_Gather(mine, NG__HOST_LEN, MPI_CHAR, w->hosts, NG__HOST_LEN, MPI_CHAR, 0, comm),
                        "gathering the host names");
}

void ng__watch_free(ng__watch *w) {
  for (int r = 0; w->answers && r < w->size; r++)
    if (w->answers[r] != MPI_REQUEST_NULL) {
      MPI_Cancel(&w->answers[r]);
      MPI_Wait(&w->answers[r], MPI_STATUS_IGNORE);
    }
  free(w->hosts);
  free(w->answers);
  free(w->answer_buf);
  free(w->index);
  free(w->statuses);
  memset(w, 0, sizeof *w);
}

/* A rank other than 0: answers the roll calls that have come; whether there was one. */
static bool answer(ng__watch *w) {
  bool heard = false;
  for (;;) {
    int flag = 0;
    int64_t call;
    if (MPI_Iprobe(0, NG_TAG_ROLL_CALL, w->comm, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS || !flag)
      return heard;
    MPI_Recv(&call, 1, MPI_INT64_T, 0, NG_TAG_ROLL_CALL, w->comm, MPI_STATUS_IGNORE);
    MPI_Send(&w->generation, 1, MPI_INT64_T, 0, NG_TAG_ROLL_ANSWER, w->comm);
    heard = true;
  }
}

/* A rank other than 0 that has waited twice --stall-abort without a roll call: rank 0 would have called the
 * roll at half its first limit had it been waiting too, and ended the job at --stall-abort, so it is stopped
 * or hung itself and will end nothing. This rank ends the job; the last checkpoint rank 0 wrote stays. */
static _Noreturn void rank0_silent(ng__watch *w, double waited) {
  char host[MPI_MAX_PROCESSOR_NAME] = "";
  int len = 0;
  MPI_Get_processor_name(host, &len);
  fprintf(
      stderr,
      "nograd: error: rank %d on %s: no word from rank 0 in %.0f s of generation %lld (twice "
      "--stall-abort %g): rank 0 is stopped or hung; ending the run (the last checkpoint it wrote is the one "
      "to resume)\n",
      w->rank, host, waited, (long long)w->generation, w->abort);
  fflush(NULL);
  /* the whole job: MPICH 4.0's MPI_Abort on a duplicate of the world, with rank 0 stopped, leaves the job
   * running (tests/mpi/test_stall.py) */
  MPI_Abort(MPI_COMM_WORLD, 1);
  exit(1); /* not reached */
}

/* Rank 0: takes in the answers that have come. */
static void collect(ng__watch *w) {
  if (w->awaited == 0) return;
  int count = 0;
  if (MPI_Testsome(w->size, w->answers, &count, w->index, w->statuses) != MPI_SUCCESS) return;
  if (count > 0 && count != MPI_UNDEFINED) w->awaited -= count;
}

/* Rank 0: asks every rank that is not already asked where it is. */
static void roll_call(ng__watch *w) {
  w->call_buf = w->generation;
  for (int r = 1; r < w->size; r++) {
    if (w->answers[r] != MPI_REQUEST_NULL) continue; /* asked before and has not answered yet */
    MPI_Request send;
    if (MPI_Irecv(&w->answer_buf[r], 1, MPI_INT64_T, r, NG_TAG_ROLL_ANSWER, w->comm, &w->answers[r]) !=
        MPI_SUCCESS)
      continue;
    w->awaited++;
    if (MPI_Isend(&w->call_buf, 1, MPI_INT64_T, r, NG_TAG_ROLL_CALL, w->comm, &send) == MPI_SUCCESS)
      MPI_Request_free(&send); /* 8 bytes: completes on its own; a stopped rank takes it when it wakes */
  }
}

/* Rank 0: "N of P ranks: rank R on HOST, ..." for the ranks that have not answered. */
static void name_absent(ng__watch *w, FILE *f) {
  int absent = 0;
  for (int r = 1; r < w->size; r++)
    absent += w->answers[r] != MPI_REQUEST_NULL;
  if (absent == 0) {
    fprintf(f, "every rank answers, yet the collective has not completed (the network?)");
    return;
  }
  fprintf(f, "%d of %d ranks:", absent, w->size);
  int shown = 0;
  for (int r = 1; r < w->size && shown < NAMES_SHOWN; r++)
    if (w->answers[r] != MPI_REQUEST_NULL)
      fprintf(f, "%s rank %d on %s", shown++ ? "," : "", r, w->hosts + (size_t)r * NG__HOST_LEN);
  if (absent > shown) fprintf(f, " and %d more", absent - shown);
}

static void report(ng__watch *w, double waited) {
  FILE *f = w->out ? w->out : stderr;
  fprintf(f, "nograd: stall: generation %lld has waited %.0f s (--stall-timeout %g) for ",
          (long long)w->generation, waited, w->warn);
  name_absent(w, f);
  fprintf(f, " (stopped, hung in a file system, or slow)");
  if (w->abort > 0) fprintf(f, "; at %g s (--stall-abort) the run ends with a checkpoint", w->abort);
  fprintf(f, "\n");
  fflush(f);
}

static _Noreturn void give_up(ng__watch *w, double waited) {
  fprintf(stderr, "nograd: error: generation %lld has waited %.0f s (--stall-abort %g) for ",
          (long long)w->generation, waited, w->abort);
  name_absent(w, stderr);
  fprintf(stderr, "; ending the run\n");
  fflush(stderr);
  if (w->on_abort) w->on_abort(w->ctx);
  fflush(NULL);
  MPI_Abort(w->comm, 1);
  exit(1); /* not reached */
}

static void nap(double waited) {
  if (waited < SPIN_SECS) return;
  double s = waited * NAP_SHARE;
  if (s > NAP_MAX) s = NAP_MAX;
  if (s < 20e-6) s = 20e-6;
  struct timespec ts = {0, (long)(s * 1e9)};
  nanosleep(&ts, NULL);
}

int ng__watch_wait(ng__watch *w, MPI_Request *req, const char *what) {
  if (!w || !w->active) return ng__mpi_status(MPI_Wait(req, MPI_STATUS_IGNORE), what);
  double t0 = ng_time_now(),
         first = w->warn > 0 && (w->abort <= 0 || w->warn < w->abort) ? w->warn : w->abort;
  double call_at = 0.5 * first, next_report = w->warn;
  bool called = false, reported = false, heard = false;
  for (;;) {
    int done = 0;
    int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return ng__mpi_status(rc, what);
    if (w->rank != 0)
      heard = answer(w) || heard;
    else
      collect(w);
    if (done) break;
    double waited = ng_time_now() - t0;
    if (w->rank != 0 && !heard && w->abort > 0 && waited >= 2 * w->abort) rank0_silent(w, waited);
    if (w->rank == 0) {
      if (!called && waited >= call_at) {
        roll_call(w);
        called = true;
      }
      if (w->abort > 0 && waited >= w->abort) give_up(w, waited);
      if (w->warn > 0 && waited >= next_report) {
        report(w, waited);
        next_report += w->warn;
        reported = true;
      }
    }
    nap(waited);
  }
  if (reported) {
    FILE *f = w->out ? w->out : stderr;
    fprintf(f, "nograd: stall over: generation %lld went on after %.0f s\n", (long long)w->generation,
            ng_time_now() - t0);
    fflush(f);
  }
  return NG_OK;
}

int ng__watch_bcast(ng__watch *w, void *buf, int count, MPI_Datatype type, const char *what) {
  if (!w->active) return ng__mpi_status(MPI_Bcast(buf, count, type, 0, w->comm), what);
  MPI_Request req;
  int rc = MPI_Ibcast(buf, count, type, 0, w->comm, &req);
  if (rc != MPI_SUCCESS) return ng__mpi_status(rc, what);
  return ng__watch_wait(w, &req, what);
}

int ng__watch_recv(ng__watch *w, void *buf, int count, MPI_Datatype type, int src, int tag,
                   const char *what) {
  if (!w->active)
    return ng__mpi_status(MPI_Recv(buf, count, type, src, tag, w->comm, MPI_STATUS_IGNORE), what);
  MPI_Request req;
  int rc = MPI_Irecv(buf, count, type, src, tag, w->comm, &req);
  if (rc != MPI_SUCCESS) return ng__mpi_status(rc, what);
  return ng__watch_wait(w, &req, what);
}

int ng__watch_send(ng__watch *w, const void *buf, int count, MPI_Datatype type, int dest, int tag,
                   const char *what) {
  if (!w->active) return ng__mpi_status(MPI_Send(buf, count, type, dest, tag, w->comm), what);
  MPI_Request req;
  int rc = MPI_Isend(buf, count, type, dest, tag, w->comm, &req);
  if (rc != MPI_SUCCESS) return ng__mpi_status(rc, what);
  return ng__watch_wait(w, &req, what);
}
