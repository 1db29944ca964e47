/* Private: the status agreement of the generation loop and of ng_engine_agree (status.c). */
#ifndef NOGRAD_ENGINE_STATUS_H
#define NOGRAD_ENGINE_STATUS_H

#include <mpi.h>

#include "engine/watch.h"

/* A phase's time on this rank (seconds, in) and, agreed, the slowest rank, its seconds and the fastest rank's
 * seconds (out). */
typedef struct {
  double seconds;
  int slowest;
  double max, min;
} ng__phase_time;

/* Every rank passes its status and the signal it received (0: none), and optionally the seconds of the phase
 * (phase, may be NULL). One allreduce: *first_rank is the lowest rank whose status is not NG_OK (INT_MAX when
 * none failed) and *signal_out the largest signal, on every rank; phase gets the slowest rank (the lowest of
 * equals), its seconds and the fastest rank's. The failing rank's message moves to rank 0, which returns its
 * status with ng_error's "rank R: ..." (rank 0's own message when it is the one); every other rank returns
 * its own status. The allreduce is waited for under `watch` (NULL: MPI's blocking one). Collective; NG_EMPI.
 */
int ng__status_agree(MPI_Comm comm, int status, int signal, ng__phase_time *phase, int *first_rank,
                     int *signal_out, ng__watch *watch);

#endif
