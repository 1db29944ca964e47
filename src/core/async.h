/* One job run beside the calling thread: CMA-ES's eigendecomposition while the generation loop goes on.
 *
 * Natively the job is a POSIX thread, which makes no MPI call. Under SimGrid's SMPI (tools/bench), where a
 * simulated rank cannot own a thread, it is a model of one: the job runs at once, outside the simulated
 * clock, and ng_async_wait charges the rank whatever of its measured duration has not yet gone by on the
 * simulated clock, as if it had run on a second core of the rank's host. */
#ifndef NOGRAD_CORE_ASYNC_H
#define NOGRAD_CORE_ASYNC_H

typedef struct ng_async ng_async;

/* Starts fn(arg). NG_ENOMEM, or NG_EIO when no thread can be created (nothing is started then). */
int ng_async_start(ng_async **out, int (*fn)(void *arg), void *arg);
/* Waits for the job, frees it and sets *job to NULL; returns fn's status (NG_OK for a NULL *job). */
int ng_async_wait(ng_async **job);

#endif
