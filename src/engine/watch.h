/* Private: waiting for the other ranks with a deadline (issue #14: no silent stall).
 *
 * The generation loop's collectives are started nonblocking and completed here. Every rank polls its request
 * (MPI_Test, then sleeps that grow with the time waited: at most 1% of it, and 10 ms), and while it polls it
 * answers rank 0's roll call. Rank 0, when a wait passes half its first limit, asks every other rank where
 * it is (one small message each, sent only then); the ranks that are waiting too answer at once, so the ones
 * that do not answer are the ones the generation waits for: stopped, hung in a file system, or slow.
 * - Past `warn` seconds rank 0 names them (rank and host) on its progress stream, and again every `warn`
 *   seconds while the wait goes on.
 * - Past `abort` seconds it names them in an error, calls on_abort (the engine writes its checkpoint of the
 *   state before this generation) and ends the job with MPI_Abort(comm, 1): a stopped rank cannot take part
 *   in anything else.
 * - A rank other than 0 that has waited twice `abort` seconds without a roll call concludes that rank 0 is
 *   stopped or hung (it would have called the roll at half its first limit had it been waiting), says so and
 *   ends the job with MPI_Abort(MPI_COMM_WORLD, 1); the last checkpoint rank 0 wrote stays.
 * With both limits 0 (or one rank) the watch is inactive and nothing is sent: the callers then use MPI's
 * blocking collectives, which an MPI library may implement better than the nonblocking ones (SimGrid's
 * SMPI, for one, builds its nonblocking collectives from point-to-point messages).
 *
 * Cost when nothing stalls: the polling, and nothing on the network. A roll call costs rank 0 one message
 * to and from each rank; it happens only in a wait that has already passed half its limit. */
#ifndef NOGRAD_ENGINE_WATCH_H
#define NOGRAD_ENGINE_WATCH_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define NG_TAG_ROLL_CALL                                                                                     \
  102                          /* rank 0 -> rank: where are you? (one int64: the generation rank 0 waits in) \
                                */
#define NG_TAG_ROLL_ANSWER 103 /* rank -> rank 0: here (one int64: the generation it waits in) */
#define NG__HOST_LEN 64

typedef struct {
  MPI_Comm comm; /* not owned */
  int rank, size;
  double warn, abort;         /* seconds; 0: off */
  bool active;                /* more than one rank and a limit: poll and answer (else MPI_Wait) */
  FILE *out;                  /* rank 0: the stall lines (NULL: stderr) */
  int64_t generation;         /* the generation this rank is in (for the lines and the answers) */
  int (*on_abort)(void *ctx); /* rank 0: before the job ends on a stall (may be NULL) */
  void *ctx;
  /* rank 0 */
  char *hosts;          /* size x NG__HOST_LEN */
  MPI_Request *answers; /* one per rank: the answer to a roll call, MPI_REQUEST_NULL when none is awaited */
  int64_t *answer_buf;  /* their buffers */
  int64_t call_buf;     /* the roll call's content */
  int *index;           /* MPI_Testsome's output ... */
  MPI_Status *statuses; /* ... (MPICH's header wants room for them even where they are not used) */
  int awaited;          /* answers still outstanding */
} ng__watch;

/* Sets the watch up. Collective when active (rank 0 gathers the host names); NG_ENOMEM, NG_EMPI. */
int ng__watch_init(ng__watch *w, MPI_Comm comm, double warn, double abort, FILE *out);

/* Completes *req (a nonblocking collective or message of this rank) under the watch: NG_OK, or NG_EMPI with
 * "what: <MPI's message>". On rank 0 a wait past `abort`, on the others one past twice `abort` without a roll
 * call, does not return. */
int ng__watch_wait(ng__watch *w, MPI_Request *req, const char *what);

/* A broadcast from rank 0 under the watch: MPI_Ibcast completed by ng__watch_wait when the watch is active,
 * MPI_Bcast otherwise. Collective; NG_EMPI with "what: ...". */
int ng__watch_bcast(ng__watch *w, void *buf, int count, MPI_Datatype type, const char *what);

/* A blocking receive from src, or send to dest, on the watch's communicator, under the watch: MPI_Irecv or
 * MPI_Isend completed by ng__watch_wait when the watch is active, MPI_Recv or MPI_Send otherwise. NG_EMPI
 * with "what: ...". */
int ng__watch_recv(ng__watch *w, void *buf, int count, MPI_Datatype type, int src, int tag, const char *what);
int ng__watch_send(ng__watch *w, const void *buf, int count, MPI_Datatype type, int dest, int tag,
                   const char *what);

/* Cancels the answers still awaited (rank 0) and frees. Not collective. */
void ng__watch_free(ng__watch *w);

#endif
