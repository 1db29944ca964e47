/* Wall-clock time for the phase timings of the history table and the benchmarks. Not collective. */
#ifndef NOGRAD_TIMER_H
#define NOGRAD_TIMER_H

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds on a monotonic clock, from an arbitrary origin: only differences mean anything. */
NG_EXPORT double ng_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
