/* Private: the signals a run answers (SIGTERM, SIGUSR1, SIGINT), for the generation loop and for the
 * commands' own step loops (glue's fullgrad).
 *
 * The first signal only records itself: the loop finishes the step it is in, agrees with the other ranks,
 * checkpoints and stops (exit code 3). A second one ends the process at once (status 128 + signal), for a
 * user who does not want to wait. */
#ifndef NOGRAD_ENGINE_SIGNALS_H
#define NOGRAD_ENGINE_SIGNALS_H

#include <signal.h>

#define NG__NSIGNALS 3

typedef struct {
  struct sigaction old[NG__NSIGNALS];
  int installed;
} ng__signals;

/* Clears the pending signal and installs the handler, keeping the old ones in *saved. Not collective. */
void ng__signals_install(ng__signals *saved);

/* Puts back the handlers that were there before ng__signals_install (nothing if it was not called). */
void ng__signals_restore(ng__signals *saved);

/* The signal received since ng__signals_install, or 0. */
int ng__signal_pending(void);

#endif
