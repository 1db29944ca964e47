/* See async.h. */
#include "core/async.h"

#include <mpi.h> /* under smpicc this is SMPI's, which defines SMPI_H */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "nograd/error.h"

struct ng_async {
  int (*fn)(void *arg);
  void *arg;
  int status;
#ifdef SMPI_H
  double ready; /* simulated time at which the modelled job ends */
#else
  pthread_t thread;
#endif
};

#ifdef SMPI_H
/* The host's monotonic clock; the parentheses keep SMPI's clock_gettime macro (simulated time) out. */
static double host_now(void) {
  struct timespec t;
  (clock_gettime)(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
#else
static void *thread_main(void *p) {
  ng_async *a = p;
  a->status = a->fn(a->arg);
  return NULL;
}
#endif

int ng_async_start(ng_async **out, int (*fn)(void *arg), void *arg) {
  ng_async *a = calloc(1, sizeof *a);
  if (!a) return ng_error(NG_ENOMEM, "out of memory for a background job");
  a->fn = fn, a->arg = arg;
#ifdef SMPI_H
  smpi_bench_end(); /* what the rank computed so far is charged; the job itself is not */
  double t0 = host_now();
  a->status = fn(arg);
  double seconds = host_now() - t0;
  smpi_bench_begin();
  a->ready = MPI_Wtime() + seconds;
#else
  /* The job inherits a mask that blocks every signal, so that SIGTERM, SIGUSR1 and SIGINT reach the thread
   * that runs the generation loop (src/engine/signals.c). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(&a->thread, NULL, thread_main, a);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    free(a);
    return ng_error(NG_EIO, "cannot start a background thread (pthread_create error %d)", e);
  }
#endif
  *out = a;
  return NG_OK;
}

int ng_async_wait(ng_async **job) {
  ng_async *a = *job;
  if (!a) return NG_OK;
#ifdef SMPI_H
  double left = a->ready - MPI_Wtime();
  if (left > 0) smpi_execute(left);
#else
  pthread_join(a->thread, NULL);
#endif
  int st = a->status;
  free(a);
  *job = NULL;
  return st;
}
