/* exec: evaluators. A program started once per rank, spoken to through the frames of nograd/plugin.h on its
 * stdin and stdout.
 *
 * All I/O with the program goes through pump(), one poll() loop that writes the request and reads the reply
 * at the same time, on non-blocking pipes, against a deadline. Reading while writing means that an
 * evaluator that streams its answers (and fills its stdout pipe before it has read the whole request)
 * cannot deadlock with us; the deadline means that one that stops reading or stops writing cannot hang us.
 * The reply is checked as its bytes arrive, so a program that prints a line of text and then waits is
 * reported at once, at the byte where the text began, not after the timeout.
 *
 * A failure (exit, signal, EOF, EPIPE, timeout, malformed reply) ends the process the same way: its process
 * group is killed with SIGKILL and the process is reaped, after a short wait for an exit status when the
 * failure looked like an exit; the pipes are closed; a new process is started unless the restart limit has
 * been passed. The program runs in a process group of its own, so a timeout also kills what it started, and
 * so that a Ctrl-C meant for nograd (which finishes its generation) does not kill the evaluator first.
 * Its signal mask is emptied and SIGPIPE, SIGINT, SIGTERM, SIGUSR1, SIGHUP and SIGCHLD are reset to their
 * defaults, whatever nograd ignores or blocks. With glibc >= 2.34 it also inherits no descriptor but 0, 1
 * and 2 (posix_spawn_file_actions_addclosefrom_np): not the MPI library's sockets, not an open HDF5 file. */
#ifdef __linux__
#define _GNU_SOURCE /* for posix_spawn_file_actions_addclosefrom_np only; its use is guarded below */
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/evaluator_frame.h"
#include "app/evaluator_impl.h"
#include "nograd/error.h"
#include "nograd/plugin.h"
#include "nograd/timer.h"

extern char **environ;

#define EXIT_WAIT_SECONDS 1.0  /* after EOF or EPIPE: how long an exiting program gets to give its status */
#define CLOSE_WAIT_SECONDS 5.0 /* after BYE: at most this long (and at most the timeout) before SIGKILL */
#define READ_SLACK 64          /* bytes read past a reply's end, to see a program that writes too much */
#define WHY_LEN 768

typedef enum { IO_OK = 0, IO_EOF, IO_EPIPE, IO_TIMEOUT, IO_GARBAGE, IO_VERSION, IO_SYS } io_result;

typedef struct {
  pid_t pid;          /* -1: none running */
  int to_child;       /* our end of its stdin, or -1 */
  int from_child;     /* our end of its stdout, or -1 */
  int err_from_child; /* our end of its stderr (NG_EVAL_STDERR_PREFIX), or -1 */
  uint32_t seq;       /* the next request's number; 0 for a new process */
  uint32_t flags;     /* its HELLO reply's */
  uint64_t out_bytes; /* read from its stdout since it started */
  int failures;       /* over the evaluator's life */
  bool dead;          /* the restart limit was passed: every call returns `fatal` */
  bool broken_pipe;   /* a write failed with EPIPE during this call (a SIGPIPE to consume) */
  unsigned char *req; /* the request being sent */
  unsigned char *rep; /* the reply being read */
  size_t req_cap, rep_cap;
  char line[256]; /* the stderr line being read (prefix mode), cut at its size */
  size_t line_len;
  bool line_cut;
  char last_line[256]; /* the last complete stderr line, for messages */
  char why[WHY_LEN];   /* what went wrong, as found by pump() */
  size_t why_len;
  char *fatal;
} exec_state;

typedef ng__frame_expect expect;

/* ------------------------------------------------------------------------------------------------------ */
/* SIGPIPE: blocked in this thread while we write, and consumed when a write raised it. */

typedef struct {
  sigset_t old;
  bool pending_before;
} pipe_guard;

static void guard_sigpipe(pipe_guard *g) {
  sigset_t set, pending;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, &g->old);
  sigemptyset(&pending);
  sigpending(&pending);
  g->pending_before = sigismember(&pending, SIGPIPE) == 1;
}

static void unguard_sigpipe(pipe_guard *g, bool raised) {
  if (raised && !g->pending_before) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ------------------------------------------------------------------------------------------------------ */
/* The program's stderr, in prefix mode: whole lines, prefixed, and the last one kept for messages. */

static void emit_line(const ng_evaluator *ev, exec_state *ex) {
  fprintf(stderr, "[evaluator rank %d] %.*s%s\n", ev->cfg.rank, (int)ex->line_len, ex->line,
          ex->line_cut ? " [...]" : "");
  memcpy(ex->last_line, ex->line, ex->line_len);
  ex->last_line[ex->line_len] = '\0';
  ex->line_len = 0;
  ex->line_cut = false;
}

/* Reads what its stderr holds now (at most 64 reads, so a chatty program cannot keep us here). */
static void drain_stderr(const ng_evaluator *ev, exec_state *ex) {
  char buf[4096];
  for (int reads = 0; ex->err_from_child >= 0 && reads < 64; reads++) {
    ssize_t k = read(ex->err_from_child, buf, sizeof buf);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (k == 0) { /* EOF: the last line may lack its newline */
        if (ex->line_len > 0) emit_line(ev, ex);
        close(ex->err_from_child);
        ex->err_from_child = -1;
      }
      return;
    }
    for (ssize_t i = 0; i < k; i++) {
      if (buf[i] == '\n')
        emit_line(ev, ex);
      else if (ex->line_len + 1 < sizeof ex->line)
        ex->line[ex->line_len++] = buf[i];
      else
        ex->line_cut = true;
    }
  }
}

/* ------------------------------------------------------------------------------------------------------ */
/* The I/O loop. */

/* How long a new process has to start and answer HELLO: start_timeout, or the request timeout when it is 0,
 * so that --eval-timeout also bounds a program that never answers. */
static double hello_timeout(const ng_evaluator *ev) {
  return ev->cfg.start_timeout > 0 ? ev->cfg.start_timeout : ev->cfg.timeout;
}

/* Writes w[0..wlen) to the program while reading the reply `e` into ex->rep, until both are done or
 * `deadline` (ng_time_now() seconds; INFINITY: none) passes. Anything but IO_OK leaves a description in
 * ex->why. */
static io_result pump(const ng_evaluator *ev, exec_state *ex, const unsigned char *w, size_t wlen,
                      const expect *e, double deadline) {
  size_t wdone = 0, got = 0, cap = e->len + READ_SLACK;
  if (!ng__frame_reserve(&ex->rep, &ex->rep_cap, cap)) {
    snprintf(ex->why, sizeof ex->why, "%s", ng_errmsg());
    return IO_SYS;
  }
  bool broken = false; /* a write failed with EPIPE: read on, for a message better than "broken pipe" */
  char broken_why[WHY_LEN] = "";
  while ((wdone < wlen && !broken) || got < e->len) {
    struct pollfd p[3];
    nfds_t np = 0;
    int iw = -1, ir = -1, ie = -1;
    if (got < e->len) {
      p[np] = (struct pollfd){.fd = ex->from_child, .events = POLLIN};
      ir = (int)np++;
    }
    if (wdone < wlen && !broken) {
      p[np] = (struct pollfd){.fd = ex->to_child, .events = POLLOUT};
      iw = (int)np++;
    }
    if (ex->err_from_child >= 0) {
      p[np] = (struct pollfd){.fd = ex->err_from_child, .events = POLLIN};
      ie = (int)np++;
    }
    int ms = -1;
    if (isfinite(deadline)) {
      double left = deadline - ng_time_now();
      if (left <= 0) {
        double t = e->type == NG_FRAME_HELLO_REPLY ? hello_timeout(ev) : ev->cfg.timeout;
        if (broken) {
          snprintf(ex->why, sizeof ex->why, "%s", broken_why);
          return IO_EPIPE;
        }
        if (wdone < wlen)
          snprintf(ex->why, sizeof ex->why,
                   "timed out after %g s: it read only %zu of the %zu bytes of the request", t, wdone, wlen);
        else
          snprintf(ex->why, sizeof ex->why, "timed out after %g s: %zu of the %zu bytes of its reply arrived",
                   t, got, e->len);
        return IO_TIMEOUT;
      }
      ms = left * 1e3 >= INT_MAX ? INT_MAX : (int)ceil(left * 1e3);
    }
    int r = poll(p, np, ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      snprintf(ex->why, sizeof ex->why, "poll: %s", strerror(errno));
      return IO_SYS;
    }
    /* read before writing: what it said before it died explains more than the broken pipe */
    if (ir >= 0 && p[ir].revents) {
      ssize_t k = read(ex->from_child, ex->rep + got, cap - got);
      if (k == 0) {
        if (broken) {
          snprintf(ex->why, sizeof ex->why, "%s", broken_why);
          return IO_EPIPE;
        }
        snprintf(ex->why, sizeof ex->why, "closed its stdout after %zu of the %zu bytes of its reply", got,
                 e->len);
        return IO_EOF;
      }
      if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        snprintf(ex->why, sizeof ex->why, "read from its stdout: %s", strerror(errno));
        return IO_SYS;
      }
      if (k > 0) {
        got += (size_t)k;
        ex->out_bytes += (uint64_t)k;
        ng__frame_check fc = ng__frame_check_reply(ex->rep, got, e, ex->why, sizeof ex->why);
        io_result c = fc == NG__FRAME_OK ? IO_OK : fc == NG__FRAME_VERSION ? IO_VERSION : IO_GARBAGE;
        if (c != IO_OK) return c;
      }
    }
    if (iw >= 0 && p[iw].revents) {
      ssize_t k = write(ex->to_child, w + wdone, wlen - wdone);
      if (k > 0) {
        wdone += (size_t)k;
      } else if (k < 0 && errno == EPIPE) {
        ex->broken_pipe = true;
        broken = true;
        snprintf(broken_why, sizeof broken_why,
                 "closed its stdin after reading %zu of the %zu bytes of the request", wdone, wlen);
      } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        snprintf(ex->why, sizeof ex->why, "write to its stdin: %s", strerror(errno));
        return IO_SYS;
      }
    }
    if (ie >= 0 && p[ie].revents) drain_stderr(ev, ex);
  }
  if (broken) { /* a complete reply to a request it did not read is no reply */
    snprintf(ex->why, sizeof ex->why, "%s", broken_why);
    return IO_EPIPE;
  }
  return IO_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Processes: start, wait, kill, reap. */

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

/* A pipe whose two ends are close-on-exec and above 2 (so that the dup2 onto 0/1/2 in the child always
 * makes a new descriptor, without close-on-exec, even when nograd's own 0/1/2 are closed). */
static int make_pipe(int fds[2]) {
  int raw[2];
  fds[0] = fds[1] = -1;
  if (pipe(raw) != 0) return -1;
  fds[0] = fcntl(raw[0], F_DUPFD_CLOEXEC, 3);
  fds[1] = fcntl(raw[1], F_DUPFD_CLOEXEC, 3);
  int err = errno;
  close(raw[0]);
  close(raw[1]);
  if (fds[0] < 0 || fds[1] < 0) {
    close_fd(&fds[0]);
    close_fd(&fds[1]);
    errno = err;
    return -1;
  }
  return 0;
}

static int spawn(const ng_evaluator *ev, exec_state *ex) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  bool prefix = ev->cfg.stderr_mode == NG_EVAL_STDERR_PREFIX;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  bool fa_made = false, attr_made = false;
  int st = NG_OK, e = 0;
  if (make_pipe(in) != 0 || make_pipe(out) != 0 || (prefix && make_pipe(err) != 0)) {
    st = ng_error(NG_EIO, "%s: cannot make a pipe: %s", ev->spec, strerror(errno));
    goto done;
  }
  if ((e = posix_spawn_file_actions_init(&fa)) != 0) goto spawn_failed;
  fa_made = true;
  if ((e = posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO)) != 0 ||
      (e = posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO)) != 0)
    goto spawn_failed;
  if (prefix && (e = posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO)) != 0) goto spawn_failed;
  if (ev->cfg.stderr_mode == NG_EVAL_STDERR_DISCARD &&
      (e = posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0)) != 0)
    goto spawn_failed;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  if ((e = posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1)) != 0) goto spawn_failed;
#endif
  if ((e = posix_spawnattr_init(&attr)) != 0) goto spawn_failed;
  attr_made = true;
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  const int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGUSR1, SIGHUP, SIGCHLD};
  for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++)
    sigaddset(&defaults, reset[i]);
  if ((e = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
      (e = posix_spawnattr_setsigdefault(&attr, &defaults)) != 0 ||
      (e = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
      (e = posix_spawnattr_setflags(
           &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0)
    goto spawn_failed;
  pid_t pid;
  e = posix_spawnp(&pid, ev->words[0], &fa, &attr, ev->words, environ);
  if (e != 0) {
    st = ng_error(NG_ENOTFOUND, "%s: cannot start '%s': %s%s", ev->spec, ev->words[0], strerror(e),
                  strchr(ev->words[0], '/') ? "" : " (a name without '/' is looked up in PATH)");
    goto done;
  }
  ex->pid = pid;
  ex->to_child = in[1];
  ex->from_child = out[0];
  ex->err_from_child = err[0];
  in[1] = out[0] = err[0] = -1;
  fcntl(ex->to_child, F_SETFL, fcntl(ex->to_child, F_GETFL) | O_NONBLOCK);
  fcntl(ex->from_child, F_SETFL, fcntl(ex->from_child, F_GETFL) | O_NONBLOCK);
  if (ex->err_from_child >= 0)
    fcntl(ex->err_from_child, F_SETFL, fcntl(ex->err_from_child, F_GETFL) | O_NONBLOCK);
  ex->seq = 0;
  ex->flags = 0;
  ex->out_bytes = 0;
  ex->line_len = 0;
  ex->line_cut = false;
  ex->last_line[0] = '\0';
  goto done;
spawn_failed:
  st = ng_error(NG_EIO, "%s: cannot set up the start of '%s': %s", ev->spec, ev->words[0], strerror(e));
done:
  if (fa_made) posix_spawn_file_actions_destroy(&fa);
  if (attr_made) posix_spawnattr_destroy(&attr);
  for (int i = 0; i < 2; i++) {
    close_fd(&in[i]);
    close_fd(&out[i]);
    close_fd(&err[i]);
  }
  return st;
}

/* Waits up to `seconds` for the program to end, without reaping it (its pid, and so its process group's,
 * stay ours until stop_process). In prefix mode its stderr is read meanwhile, so that it cannot block there.
 */
static bool wait_end(const ng_evaluator *ev, exec_state *ex, double seconds) {
  double end = ng_time_now() + seconds;
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int r = waitid(P_PID, (id_t)ex->pid, &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == ex->pid) return true;
    if (r < 0 && errno != EINTR) return true; /* ECHILD: someone else reaps our children (SIGCHLD ignored) */
    if (ng_time_now() >= end) return false;
    drain_stderr(ev, ex);
    const struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
  }
}

/* Kills the program's process group (what it started too) and reaps it; returns its wait status, or -1 when
 * it could not be had. */
static int stop_process(exec_state *ex) {
  int status = -1;
  if (kill(-ex->pid, SIGKILL) != 0) kill(ex->pid, SIGKILL);
  while (waitpid(ex->pid, &status, 0) < 0)
    if (errno != EINTR) {
      status = -1;
      break;
    }
  ex->pid = -1;
  return status;
}

static void describe_status(int status, char *out, size_t len) {
  if (status == -1)
    snprintf(out, len, "ended (its status could not be had)");
  else if (WIFEXITED(status))
    snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(out, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else
    snprintf(out, len, "ended with wait status 0x%x", (unsigned)status);
}

/* Ends the process after the failure `r` that pump() described in ex->why, and writes into `what` what
 * happened, in words for a message: its exit status when it ended by itself, else the failure and that it
 * was killed; and its last stderr line when we read it. */
static void end_after_failure(const ng_evaluator *ev, exec_state *ex, io_result r, char *what, size_t len) {
  bool exited = (r == IO_EOF || r == IO_EPIPE) && wait_end(ev, ex, EXIT_WAIT_SECONDS);
  drain_stderr(ev, ex);
  int status = stop_process(ex);
  drain_stderr(ev, ex);
  if (exited) {
    char how[128];
    describe_status(status, how, sizeof how);
    snprintf(what, len, "it %s; it %s", how, ex->why);
  } else if (r == IO_EOF || r == IO_EPIPE) {
    snprintf(what, len, "it %s but kept running; killed", ex->why);
  } else {
    snprintf(what, len, "it %s; killed", ex->why);
  }
  if (ex->last_line[0]) {
    size_t o = strlen(what);
    if (o < len) snprintf(what + o, len - o, "; its last stderr line: '%s'", ex->last_line);
  }
  close_fd(&ex->to_child);
  close_fd(&ex->from_child);
  close_fd(&ex->err_from_child);
}

/* ------------------------------------------------------------------------------------------------------ */
/* The frames. */

static io_result hello(const ng_evaluator *ev, exec_state *ex) {
  size_t plen = ev->cfg.model_path ? strlen(ev->cfg.model_path) : 0;
  if (plen > UINT32_MAX) plen = 0; /* cannot be told; the evaluator sees "no model" */
  size_t len = NG_FRAME_HEADER_BYTES + NG_FRAME_HELLO_BODY_BYTES + plen;
  if (!ng__frame_reserve(&ex->req, &ex->req_cap, len)) {
    snprintf(ex->why, sizeof ex->why, "%s", ng_errmsg());
    return IO_SYS;
  }
  unsigned char *p = ex->req;
  ng__frame_put_header(p, NG_FRAME_HELLO, NG_FRAME_HELLO_BODY_BYTES + plen);
  ng__frame_put_u32(p + 16, NG_FRAME_VERSION);
  ng__frame_put_u32(p + 20, (uint32_t)ev->cfg.n);
  ng__frame_put_u32(p + 24, (uint32_t)ev->cfg.nchunks);
  ng__frame_put_u32(p + 28, (uint32_t)ev->cfg.rank);
  ng__frame_put_u32(p + 32, (uint32_t)ev->cfg.nranks);
  ng__frame_put_u32(p + 36, (uint32_t)plen);
  if (plen) memcpy(p + 40, ev->cfg.model_path, plen);
  expect e = {.type = NG_FRAME_HELLO_REPLY, .len = NG_FRAME_REPLY_BYTES, .start = ex->out_bytes};
  pipe_guard g;
  guard_sigpipe(&g);
  ex->broken_pipe = false;
  io_result r = pump(ev, ex, ex->req, len, &e, ng_time_now() + hello_timeout(ev));
  unguard_sigpipe(&g, ex->broken_pipe);
  if (r == IO_OK) ex->flags = ng__frame_get_u32(ex->rep + 12);
  return r;
}

/* One line on the configured log: what happened, what is done about it. */
static void log_line(const ng_evaluator *ev, const char *where, const char *what, const char *action) {
  if (!ev->cfg.log) return;
  fprintf(ev->cfg.log, "nograd: %s (rank %d): %s: %s; %s\n", ev->spec, ev->cfg.rank, where, what, action);
  fflush(ev->cfg.log);
}

/* After a failure described in `what` (already counted): a new process, or the fatal error once the limit is
 * passed. A new process that fails its HELLO is one more failure. */
static int restart_or_give_up(ng_evaluator *ev, exec_state *ex, const char *where, char *what, size_t len) {
  for (;;) {
    if (ex->failures > ev->cfg.max_restarts) {
      const char *fmt =
          "%s: the evaluator failed %d time%s, more than its restart limit (%d) allows; the last time, %s: "
          "%s";
      const char *plural = ex->failures == 1 ? "" : "s";
      int need = snprintf(NULL, 0, fmt, ev->spec, ex->failures, plural, ev->cfg.max_restarts, where, what);
      free(ex->fatal);
      ex->fatal = need > 0 ? malloc((size_t)need + 1) : NULL;
      if (ex->fatal)
        snprintf(ex->fatal, (size_t)need + 1, fmt, ev->spec, ex->failures, plural, ev->cfg.max_restarts,
                 where, what);
      ex->dead = true;
      char action[64];
      snprintf(action, sizeof action, "giving up after %d restart%s", ev->cfg.max_restarts,
               ev->cfg.max_restarts == 1 ? "" : "s");
      log_line(ev, where, what, action);
      return ng_error(NG_EIO, "%s", ex->fatal ? ex->fatal : "out of memory");
    }
    char action[64];
    snprintf(action, sizeof action, "restarting it (restart %d of at most %d)", ex->failures,
             ev->cfg.max_restarts);
    log_line(ev, where, what, action);
    int st = spawn(ev, ex);
    if (st != NG_OK) {
      free(ex->fatal);
      ex->fatal = strdup(ng_errmsg());
      ex->dead = true;
      return st;
    }
    ev->stats.restarts++;
    io_result r = hello(ev, ex);
    if (r == IO_OK) return NG_OK;
    end_after_failure(ev, ex, r, what, len);
    where = "while starting again";
    ex->failures++;
    ev->stats.failures++;
  }
}

static int exec_eval(ng_evaluator *ev, const double *x, size_t m, uint64_t generation, size_t chunk,
                     size_t first, double *losses, double *counts) {
  exec_state *ex = ev->impl;
  for (size_t k = 0; k < m; k++) {
    losses[k] = NAN;
    counts[k] = 1;
  }
  if (ex->dead) return ng_error(NG_EIO, "%s", ex->fatal ? ex->fatal : "the evaluator is gone");
  size_t n = ev->cfg.n;
  size_t head = NG_FRAME_HEADER_BYTES + NG_FRAME_EVAL_BODY_BYTES;
  if (m == 0 || n > (SIZE_MAX - head) / 8 / m)
    return ng_error(NG_EINVAL, "%s: %zu candidates of %zu values do not fit a frame", ev->spec, m, n);
  size_t width = (ex->flags & NG_FRAME_FLAG_COUNTS) ? 2 : 1;
  size_t len = head + 8 * m * n, rlen = NG_FRAME_REPLY_BYTES + 8 * width * m;
  if (!ng__frame_reserve(&ex->req, &ex->req_cap, len)) return NG_ENOMEM;
  unsigned char *p = ex->req;
  ng__frame_put_header(p, NG_FRAME_EVAL, NG_FRAME_EVAL_BODY_BYTES + 8 * m * n);
  ng__frame_put_u64(p + 16, generation);
  ng__frame_put_u32(p + 24, (uint32_t)chunk);
  ng__frame_put_u32(p + 28, ex->seq);
  ng__frame_put_u32(p + 32, (uint32_t)first);
  ng__frame_put_u32(p + 36, (uint32_t)m);
  ng__frame_put_u32(p + 40, (uint32_t)n);
  ng__frame_put_u32(p + 44, 0);
  ng__frame_put_f64s(p + head, x, m * n);
  expect e = {
      .type = NG_FRAME_EVAL_REPLY, .seq = ex->seq, .m = (uint32_t)m, .len = rlen, .start = ex->out_bytes};

  pipe_guard g;
  guard_sigpipe(&g);
  ex->broken_pipe = false;
  double deadline = ng_time_now() + ev->cfg.timeout;
  io_result r = pump(ev, ex, ex->req, len, &e, deadline);
  unguard_sigpipe(&g, ex->broken_pipe);
  if (r == IO_OK &&
      ng__frame_read_values(ex->rep, &e, width, losses, counts, ex->why, sizeof ex->why) != NG__FRAME_OK)
    r = IO_GARBAGE;
  ex->seq++;
  if (r == IO_OK) return NG_OK;

  for (size_t k = 0; k < m; k++) {
    losses[k] = NAN;
    counts[k] = 1;
  }
  char where[160], what[2 * WHY_LEN];
  snprintf(where, sizeof where, "on request %u (generation %llu, chunk %zu, %zu candidate%s)", e.seq,
           (unsigned long long)generation, chunk, m, m == 1 ? "" : "s");
  end_after_failure(ev, ex, r, what, sizeof what);
  ex->failures++;
  ev->stats.failures++;
  return restart_or_give_up(ev, ex, where, what, sizeof what);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Open and close. */

static void exec_close(ng_evaluator *ev) {
  exec_state *ex = ev->impl;
  if (!ex) return;
  if (ex->pid > 0) {
    double grace = fmin(ev->cfg.timeout, CLOSE_WAIT_SECONDS);
    unsigned char bye[NG_FRAME_HEADER_BYTES];
    ng__frame_put_header(bye, NG_FRAME_BYE, 0);
    expect none = {.type = NG_FRAME_EVAL_REPLY};
    pipe_guard g;
    guard_sigpipe(&g);
    ex->broken_pipe = false;
    pump(ev, ex, bye, sizeof bye, &none, ng_time_now() + grace);
    unguard_sigpipe(&g, ex->broken_pipe);
    close_fd(&ex->to_child); /* EOF: the other way to say bye */
    wait_end(ev, ex, grace);
    stop_process(ex); /* also what it left behind in its group */
  }
  drain_stderr(ev, ex);
  if (ex->err_from_child >= 0 && ex->line_len > 0) emit_line(ev, ex);
  close_fd(&ex->to_child);
  close_fd(&ex->from_child);
  close_fd(&ex->err_from_child);
  free(ex->req);
  free(ex->rep);
  free(ex->fatal);
  free(ex);
  ev->impl = NULL;
}

static int exec_open(ng_evaluator *ev) {
  exec_state *ex = calloc(1, sizeof *ex);
  if (!ex) return ng_error(NG_ENOMEM, "out of memory");
  ex->pid = -1;
  ex->to_child = ex->from_child = ex->err_from_child = -1;
  ev->impl = ex;
  int st = spawn(ev, ex);
  if (st == NG_OK) {
    io_result r = hello(ev, ex);
    if (r != IO_OK) {
      char what[2 * WHY_LEN];
      end_after_failure(ev, ex, r, what, sizeof what);
      st = ng_error(r == IO_VERSION ? NG_EMISMATCH : NG_EIO, "%s: the evaluator failed to start: %s",
                    ev->spec, what);
    }
  }
  if (st != NG_OK) exec_close(ev);
  return st;
}

static long exec_pid(const ng_evaluator *ev) {
  const exec_state *ex = ev->impl;
  return ex && ex->pid > 0 ? (long)ex->pid : -1;
}

const ng_evaluator_ops ng_evaluator_exec_ops = {"exec:", exec_open, exec_eval, exec_close, exec_pid};
