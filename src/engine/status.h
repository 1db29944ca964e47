/* Private: the status agreement of the generation loop and of ng_engine_agree (status.c). */
#ifndef NOGRAD_ENGINE_STATUS_H
#define NOGRAD_ENGINE_STATUS_H

#include <mpi.h>

/* Every rank passes its status and the signal it received (0: none). One allreduce: *first_rank is the lowest
 * rank whose status is not NG_OK (INT_MAX when none failed) and *signal_out the largest signal, on every
 * rank. That rank's message moves to rank 0, which returns its status with ng_error's "rank R: ..." (rank 0's
 * own message when it is the one); every other rank returns its own status. Collective; NG_EMPI. */
int ng__status_agree(MPI_Comm comm, int status, int signal, int *first_rank, int *signal_out);

#endif
