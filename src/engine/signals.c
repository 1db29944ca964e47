/* The handler of SIGTERM, SIGUSR1 and SIGINT shared by every loop of a run (see signals.h). */
#include "engine/signals.h"

#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t pending_signal = 0;
static const int handled_signals[NG__NSIGNALS] = {SIGTERM, SIGUSR1, SIGINT};

/* The first signal asks the run to stop after this step; a second one ends the process at once. */
static void on_signal(int sig) {
  if (pending_signal) _exit(128 + sig);
  pending_signal = sig;
}

void ng__signals_install(ng__signals *saved) {
  pending_signal = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < NG__NSIGNALS; i++)
    sigaction(handled_signals[i], &sa, &saved->old[i]);
  saved->installed = 1;
}

void ng__signals_restore(ng__signals *saved) {
  if (!saved->installed) return;
  for (int i = 0; i < NG__NSIGNALS; i++)
    sigaction(handled_signals[i], &saved->old[i], NULL);
  saved->installed = 0;
}

int ng__signal_pending(void) {
  return (int)pending_signal;
}
