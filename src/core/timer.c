/* The monotonic clock behind every timing in nograd; never used for anything that shapes a run. */
#include "nograd/timer.h"

#include <time.h>

double ng_time_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
