/* The child process that reads a file without nograd's header before nograd does (see seal.h): libhdf5 1.10
 * crashes or loops for ever on some damaged files, and neither may take nograd, or an MPI job, with it.
 *
 * The child is a fork of the reading process. It runs only the reader's own code on the same bytes (the
 * parent's memory image, or the file), with HDF5's output and its own stderr silenced, ignores the signals
 * meant for the job (the parent handles those) and dies with its parent; it calls no MPI function and ends
 * with _exit, so no atexit handler of MPI, HDF5 or the sanitizers runs in it. It reports through a pipe: its
 * status and ng_error message, which the parent records as its own, so that a file the reader refuses gives
 * the same message either way. The parent waits for the answer with a deadline and kills the child past it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "io/seal.h"
#include "nograd/error.h"

#define ANSWER_MAX 2048 /* the status and the message the child sends */

static struct {
  int active;
  const char *path;
  const unsigned char *image;
  size_t len;
} child;

int ng__seal_in_probe(void) {
  return child.active;
}

const unsigned char *ng__probe_image(const char *path, size_t *len) {
  if (!child.active || !child.image || strcmp(path, child.path) != 0) return NULL;
  *len = child.len;
  return child.image;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* In the child: reads the file and answers; never returns. */
static void run_child(int fd, pid_t parent, const char *path, const unsigned char *image, size_t len,
                      int (*probe)(const char *, void *), void *ctx) {
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
  if (getppid() != parent) _exit(3); /* the parent died before the line above */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  const int sigs[] = {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP, SIGPIPE};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaction(sigs[i], &ign, NULL);
  const char *keep = getenv("NOGRAD_PROBE_STDERR");
  if (!keep || strcmp(keep, "1") != 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDERR_FILENO);
  }
  child.active = 1;
  child.path = path;
  child.image = image;
  child.len = len;
  ng_error_clear();
  int st = probe(path, ctx);
  unsigned char answer[ANSWER_MAX];
  int32_t s32 = (int32_t)st;
  memcpy(answer, &s32, sizeof s32);
  size_t n = (size_t)snprintf((char *)answer + 4, sizeof answer - 4, "%s", st == NG_OK ? "" : ng_errmsg());
  if (n > sizeof answer - 5) n = sizeof answer - 5;
  size_t done = 0, total = 4 + n;
  while (done < total) {
    ssize_t w = write(fd, answer + done, total - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    done += (size_t)w;
  }
  _exit(0);
}

static const char *signal_name(int sig) {
  switch (sig) {
    case SIGSEGV:
      return "SIGSEGV";
    case SIGBUS:
      return "SIGBUS";
    case SIGABRT:
      return "SIGABRT";
    case SIGFPE:
      return "SIGFPE";
    case SIGILL:
      return "SIGILL";
    case SIGKILL:
      return "SIGKILL";
    default:
      return "a signal";
  }
}

int ng__probe_run(const char *path, const char *kind, const unsigned char *image, size_t len, double seconds,
                  int (*probe)(const char *path, void *ctx), void *ctx) {
  int fds[2];
  if (pipe(fds) != 0)
    return ng_error(NG_EIO, "cannot check %s '%s': pipe: %s (NOGRAD_PROBE=off reads it without checking)",
                    kind, path, strerror(errno));
  for (int i = 0; i < 2; i++)
    fcntl(fds[i], F_SETFD, FD_CLOEXEC);
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid(), pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    return ng_error(NG_EIO, "cannot check %s '%s': fork: %s (NOGRAD_PROBE=off reads it without checking)",
                    kind, path, strerror(e));
  }
  if (pid == 0) {
    close(fds[0]);
    run_child(fds[1], parent, path, image, len, probe, ctx);
  }
  close(fds[1]);
  unsigned char answer[ANSWER_MAX + 1];
  size_t got = 0;
  double deadline = now() + seconds;
  int timed_out = 0;
  for (;;) {
    double left = deadline - now();
    if (left <= 0) {
      timed_out = 1;
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    int r = poll(&p, 1, left > 1e6 ? 1000000000 : (int)(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) continue; /* the deadline is checked above */
    ssize_t n = read(fds[0], answer + got, ANSWER_MAX - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* EOF: the child ended */
    got += (size_t)n;
    if (got == ANSWER_MAX) break;
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    return ng_error(
        NG_ECORRUPT,
        "%s '%s' is damaged or hostile: reading it did not finish within %.0f s (libhdf5 loops for ever "
        "on some damaged files); it was not read",
        kind, path, seconds);
  if (got >= 4) {
    int32_t st;
    memcpy(&st, answer, sizeof st);
    answer[got] = '\0';
    if (st == NG_OK) return NG_OK;
    return ng_error(st, "%s", (const char *)answer + 4);
  }
  if (WIFSIGNALED(status))
    return ng_error(
        NG_ECORRUPT,
        "%s '%s' is damaged or hostile: reading it crashed (%s) in the separate process that checks "
        "files without a nograd header; it was not read",
        kind, path, signal_name(WTERMSIG(status)));
  /* a sanitizer that caught the crash ends the process with a status of its own instead of the signal */
  return ng_error(NG_ECORRUPT,
                  "%s '%s' is damaged or hostile: reading it crashed (the separate process that checks files "
                  "without a nograd header ended with status %d, without an answer); it was not read",
                  kind, path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
