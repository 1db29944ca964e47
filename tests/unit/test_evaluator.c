// ctest: LABELS unit TIMEOUT 120
/* External evaluators (nograd/evaluator.h, nograd/plugin.h): the C and Python exec examples and the example
 * plugin agree with the formula; an exec evaluator that crashes, hangs, prints garbage or breaks the frame
 * format in any of a dozen ways gives NaN losses and is restarted, and the failure past the restart limit
 * is NG_EIO with a message that says what happened; bad HELLOs, missing programs and libraries, plugins
 * without the entry point or of another ABI version are clear errors; and nothing is left behind: no
 * process, no zombie, no descriptor, no pending SIGPIPE. The programs and libraries come from the build,
 * through compile definitions (CMakeLists.txt, "External evaluators"). Not an MPI test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nograd/error.h"
#include "nograd/evaluator.h"
#include "nograd/plugin.h"
#include "nograd/timer.h"

#define N 10

static double sphere(const double *x, size_t n, double shift) {
  double f = 0;
  for (size_t i = 0; i < n; i++) {
    double d = x[i] - shift;
    f += d * d;
  }
  return f;
}

static uint64_t rng_state = 88172645463325252ull;
static double uniform(void) { /* xorshift64: enough for test candidates */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (double)(rng_state >> 11) / 9007199254740992.0 * 4 - 2;
}

static double *candidates(size_t m) {
  double *x = malloc(m * N * sizeof *x);
  assert_non_null(x);
  for (size_t i = 0; i < m * N; i++)
    x[i] = uniform();
  return x;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int k = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (e->d_name[0] != '.') k++;
  closedir(d);
  return k - 1; /* the directory's own */
}

/* No child of ours is left, running or zombie. */
static void assert_no_children(const char *context) {
  int status;
  pid_t r = waitpid(-1, &status, WNOHANG);
  if (!(r == -1 && errno == ECHILD))
    fail_msg("%s: a child process is left (waitpid gave %d)", context, (int)r);
}

/* The process is gone, not even a zombie (waiting up to 2 s); an orphan, which only init can reap, may be a
 * zombie when zombie_ok. */
static void assert_dead(long pid, bool zombie_ok, const char *context) {
  double end = ng_time_now() + 2;
  for (;;) {
    char path[64], state = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1) state = '?';
    fclose(f);
    if (zombie_ok && state == 'Z') return;
    if (ng_time_now() > end) fail_msg("%s: process %ld is still there (state %c)", context, pid, state);
    const struct timespec pause = {0, 10000000};
    nanosleep(&pause, NULL);
  }
}

static void assert_gone(long pid, const char *context) {
  assert_dead(pid, false, context);
}

/* Whether NG_TEST_PYTHON has numpy, which the Python evaluators (nograd.evaluator.serve) need; without it
 * (python3-numpy not installed) their checks are skipped and say so. */
static bool have_numpy(void) {
  static int have = -1;
  if (have < 0) {
    have = system(NG_TEST_PYTHON " -c 'import numpy' 2>/dev/null") == 0;
    if (!have)
      printf("skip: %s has no numpy (apt-get install python3-numpy): no Python evaluator\n", NG_TEST_PYTHON);
  }
  return have;
}

static ng_evaluator_config config(void) {
  ng_evaluator_config cfg;
  ng_evaluator_config_init(&cfg);
  cfg.n = N;
  cfg.log = NULL;
  return cfg;
}

static ng_evaluator *opened(const char *spec, const ng_evaluator_config *cfg) {
  ng_evaluator *ev = NULL;
  int st = ng_evaluator_open(spec, cfg, &ev);
  if (st != NG_OK) fail_msg("ng_evaluator_open(%s): %s", spec, ng_errmsg());
  assert_non_null(ev);
  return ev;
}

/* m candidates through ev on `chunk`; the losses must be the shifted sphere's (times chunk + 1 with counts).
 */
static void check_losses(ng_evaluator *ev, size_t m, size_t chunk, double shift, bool counted,
                         const char *context) {
  double *x = candidates(m), *loss = malloc(m * sizeof *loss), *cnt = malloc(m * sizeof *cnt);
  int st = ng_evaluator_eval(ev, x, m, 7, chunk, 3, loss, cnt);
  if (st != NG_OK) fail_msg("%s: eval of %zu candidates: %s", context, m, ng_errmsg());
  for (size_t k = 0; k < m; k++) {
    double w = counted ? (double)chunk + 1 : 1, f = sphere(x + k * N, N, shift) * w;
    if (!(fabs(loss[k] - f) <= 1e-12 * (1 + f)))
      fail_msg("%s: candidate %zu of %zu: loss %.17g, the formula gives %.17g", context, k, m, loss[k], f);
    if (cnt[k] != w) fail_msg("%s: candidate %zu: count %g, want %g", context, k, cnt[k], w);
  }
  free(x);
  free(loss);
  free(cnt);
}

/* ------------------------------------------------------------------------------------------------------ */

static void test_examples_agree_with_the_formula(void **state) {
  int fds = count_fds();
  char spec[1024];
  ng_evaluator_config cfg = config();
  cfg.nchunks = 3;
  /* the C example, through a spec string split on blanks */
  snprintf(spec, sizeof spec, "exec:  %s\t--shift 0.5 ", NG_TEST_EXAMPLE_EXEC);
  ng_evaluator *ev = opened(spec, &cfg);
  assert_true(ng_evaluator_pid(ev) > 0);
  const size_t sizes[] = {1, 7, 300, 2000}; /* 2000 x 10 doubles: more than a pipe holds, both ways */
  for (size_t i = 0; i < 4; i++)
    check_losses(ev, sizes[i], i % 3, 0.5, false, "C example");
  /* the engine's per-candidate view */
  ng_objective obj;
  ng_evaluator_objective(ev, &obj);
  assert_int_equal(obj.n, N);
  assert_int_equal(obj.nchunks, 3);
  double *one = candidates(1), sum = 0, count = 0;
  assert_int_equal(obj.eval(obj.ctx, one, 5, 2, 1, &sum, &count), NG_OK);
  assert_true(fabs(sum - sphere(one, N, 0.5)) <= 1e-12 * (1 + sum) && count == 1);
  free(one);
  ng_evaluator_stats s;
  ng_evaluator_get_stats(ev, &s);
  assert_int_equal(s.requests, 5);
  assert_int_equal(s.candidates, 1 + 7 + 300 + 2000 + 1);
  assert_int_equal(s.failures + s.restarts + s.nan_losses, 0);
  long pid = ng_evaluator_pid(ev);
  ng_evaluator_close(&ev);
  assert_null(ev);
  assert_gone(pid, "C example after close");

  /* the C example with (loss, count) pairs */
  snprintf(spec, sizeof spec, "exec:%s --counts", NG_TEST_EXAMPLE_EXEC);
  ev = opened(spec, &cfg);
  for (size_t c = 0; c < 3; c++)
    check_losses(ev, 5, c, 1.0, true, "C example --counts");
  ng_evaluator_close(&ev);

  /* the Python example, through an argument vector */
  if (have_numpy()) {
    cfg.argv = WORDS(NG_TEST_PYTHON, NG_TEST_EXAMPLE_PY, "--shift", "-0.25");
    ev = opened("exec:", &cfg);
    check_losses(ev, 1, 0, -0.25, false, "Python example");
    check_losses(ev, 40, 2, -0.25, false, "Python example");
    ng_evaluator_close(&ev);
    cfg.argv = NULL;
  }

  /* the plugin */
  snprintf(spec, sizeof spec, "plugin:%s --shift 0.5", NG_TEST_EXAMPLE_PLUGIN);
  ev = opened(spec, &cfg);
  assert_int_equal(ng_evaluator_pid(ev), -1);
  check_losses(ev, 33, 1, 0.5, false, "example plugin");
  ng_evaluator_close(&ev);
  snprintf(spec, sizeof spec, "plugin:%s --shift", NG_TEST_EXAMPLE_PLUGIN);
  assert_error(ng_evaluator_open(spec, &cfg, &ev), NG_EIO, "plugin with a bad word",
               WORDS("init failed", "'--shift'"));
  assert_null(ev);

  assert_no_children("examples");
  assert_int_equal(count_fds(), fds);
}

static void test_hello_tells_the_evaluator(void **state) {
  char file[] = "/tmp/ng_evaluator_helloXXXXXX";
  int fd = mkstemp(file);
  assert_true(fd >= 0);
  close(fd);
  ng_evaluator_config cfg = config();
  cfg.nchunks = 4;
  cfg.rank = 2;
  cfg.nranks = 3;
  cfg.model_path = "/data/model with spaces.h5";
  cfg.argv = WORDS(NG_TEST_MISBEHAVE, "model", "0", file);
  ng_evaluator *ev = opened("exec:", &cfg);
  check_losses(ev, 4, 3, 1.0, false, "model mode");
  ng_evaluator_close(&ev);
  FILE *f = fopen(file, "r");
  char line[256] = "";
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  assert_string_equal(line, "10 4 2 3 /data/model with spaces.h5\n");

  /* a descriptor of ours without close-on-exec (an MPI socket, an HDF5 file) does not reach the evaluator */
  int mine = open("/dev/null", O_RDONLY);
  assert_true(mine > 2);
  cfg = config();
  cfg.argv = WORDS(NG_TEST_MISBEHAVE, "fds", "0", file);
  ev = opened("exec:", &cfg);
  ng_evaluator_close(&ev);
  close(mine);
  f = fopen(file, "r");
  assert_non_null(f);
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  unlink(file);
  assert_string_equal(line, "\n");
}

static void test_bad_specs_and_configurations(void **state) {
  ng_evaluator_config cfg = config();
  ng_evaluator *ev = (ng_evaluator *)&cfg; /* must be cleared on failure */
  assert_error(ng_evaluator_open("score.py", &cfg, &ev), NG_EINVAL, "no prefix",
               WORDS("'score.py'", "exec:PROGRAM"));
  assert_null(ev);
  assert_error(ng_evaluator_open("exec:   ", &cfg, &ev), NG_EINVAL, "no program", WORDS("no program"));
  assert_error(ng_evaluator_open("plugin:", &cfg, &ev), NG_EINVAL, "no library", WORDS("no library"));
  cfg.argv = WORDS("true");
  assert_error(ng_evaluator_open("exec:true", &cfg, &ev), NG_EINVAL, "argv and words", WORDS("both"));
  cfg = config();
  cfg.n = 0;
  assert_error(ng_evaluator_open("exec:true", &cfg, &ev), NG_EINVAL, "n = 0", WORDS("dimension"));
  cfg = config();
  cfg.timeout = 0;
  assert_error(ng_evaluator_open("exec:true", &cfg, &ev), NG_EINVAL, "timeout 0", WORDS("timeout"));
  cfg = config();
  cfg.max_restarts = -1;
  assert_error(ng_evaluator_open("exec:true", &cfg, &ev), NG_EINVAL, "restarts -1", WORDS("restart limit"));
  cfg = config();
  cfg.rank = 3;
  assert_error(ng_evaluator_open("exec:true", &cfg, &ev), NG_EINVAL, "rank 3 of 1", WORDS("rank 3 of 1"));

  /* calls on a working evaluator */
  char spec[1024];
  snprintf(spec, sizeof spec, "exec:%s", NG_TEST_EXAMPLE_EXEC);
  cfg = config();
  cfg.nchunks = 2;
  ev = opened(spec, &cfg);
  double x[N] = {0}, loss = 0;
  assert_error(ng_evaluator_eval(ev, x, 1, 0, 2, 0, &loss, NULL), NG_EINVAL, "chunk 2 of 2",
               WORDS("chunk 2", "2 chunks"));
  assert_error(ng_evaluator_eval(ev, NULL, 1, 0, 0, 0, &loss, NULL), NG_EINVAL, "NULL x", WORDS(spec));
  assert_int_equal(ng_evaluator_eval(ev, x, 0, 0, 0, 0, &loss, NULL), NG_OK); /* m = 0: nothing */
  assert_int_equal(ng_evaluator_eval(ev, x, 1, 0, 1, 0, &loss, NULL), NG_OK);
  assert_true(loss == N);
  ng_evaluator_close(&ev);
  ng_evaluator_close(&ev); /* NULL: nothing */
  ng_evaluator_close(NULL);
  assert_no_children("bad specs");
}

static void test_programs_that_cannot_start(void **state) {
  int fds = count_fds();
  ng_evaluator_config cfg = config();
  ng_evaluator *ev = NULL;
  assert_error(ng_evaluator_open("exec:/nonexistent/score --fast", &cfg, &ev), NG_ENOTFOUND,
               "missing program",
               WORDS("exec:/nonexistent/score --fast", "cannot start '/nonexistent/score'", "No such file"));
  assert_null(ev);
  assert_error(ng_evaluator_open("exec:nograd_no_such_evaluator", &cfg, &ev), NG_ENOTFOUND, "missing in PATH",
               WORDS("'nograd_no_such_evaluator'", "PATH"));
  /* a file that is not executable */
  char file[] = "/tmp/ng_evaluator_noexecXXXXXX";
  int fd = mkstemp(file);
  assert_true(fd >= 0);
  close(fd);
  char spec[256];
  snprintf(spec, sizeof spec, "exec:%s", file);
  assert_error(ng_evaluator_open(spec, &cfg, &ev), NG_ENOTFOUND, "not executable",
               WORDS(file, "Permission denied"));
  unlink(file);
  /* programs that do not speak the protocol, or another version of it */
  cfg.argv = WORDS(NG_TEST_MISBEHAVE, "helloversion", "0");
  assert_error(ng_evaluator_open("exec:", &cfg, &ev), NG_EMISMATCH, "HELLO version 2",
               WORDS("failed to start", "frame version 2", "version 1"));
  cfg.argv = WORDS("cat");
  assert_error(ng_evaluator_open("exec:", &cfg, &ev), NG_EIO, "cat", WORDS("exec:cat", "echoing its input"));
  cfg.argv = WORDS("true");
  assert_error(ng_evaluator_open("exec:", &cfg, &ev), NG_EIO, "true", WORDS("exited with status 0"));
  cfg.argv = WORDS("echo", "hello");
  assert_error(ng_evaluator_open("exec:", &cfg, &ev), NG_EIO, "echo",
               WORDS("at byte 0 of the reply", "'hello\\n'", "text on stdout?"));
  cfg.argv = WORDS(NG_TEST_MISBEHAVE, "hellohang", "0");
  cfg.timeout = 0.3; /* the start timeout follows it (it was at least 60 s in nograd 0.1) */
  double t0 = ng_time_now();
  assert_error(ng_evaluator_open("exec:", &cfg, &ev), NG_EIO, "HELLO hangs", WORDS("timed out after 0.3 s"));
  double dt = ng_time_now() - t0;
  if (dt < 0.3 || dt > 2) fail_msg("a hanging HELLO took %g s, want the timeout of 0.3 s", dt);
  assert_null(ev);
  cfg.start_timeout = 0.6; /* a slow starter may get longer than a request */
  t0 = ng_time_now();
  assert_error(ng_evaluator_open("exec:", &cfg, &ev), NG_EIO, "HELLO hangs", WORDS("timed out after 0.6 s"));
  dt = ng_time_now() - t0;
  if (dt < 0.6 || dt > 2.5) fail_msg("a hanging HELLO took %g s, want the start timeout of 0.6 s", dt);
  cfg.start_timeout = 0;
  assert_null(ev);
  assert_no_children("programs that cannot start");
  assert_int_equal(count_fds(), fds);
}

/* One kind of misbehaviour: the evaluator answers request 0 of each process right and fails request 1, with
 * a restart limit of 2. The calls alternate OK, NaN, OK, NaN, OK, and the sixth fails with NG_EIO. */
typedef struct {
  const char *mode;
  double timeout;
  ng_evaluator_stderr err;
  const char *words[4]; /* the message must name them */
} misbehaviour;

static const misbehaviour misbehaviours[] = {
    {"exit", 5, NG_EVAL_STDERR_INHERIT, {"exited with status 3"}},
    {"abort", 5, NG_EVAL_STDERR_INHERIT, {"killed by signal 6"}},
    {"hang", 0.4, NG_EVAL_STDERR_INHERIT, {"timed out after 0.4 s", "0 of the 24 bytes of its reply"}},
    {"garbage",
     5,
     NG_EVAL_STDERR_INHERIT,
     {"byte 0 of the reply", "'oops: not a frame\\n'", "text on stdout?"}},
    {"wrongcount", 5, NG_EVAL_STDERR_INHERIT, {"byte 12 of the reply", "2 losses for the 1 candidates"}},
    {"badseq", 5, NG_EVAL_STDERR_INHERIT, {"byte 8 of the reply", "answers request 2, but request 1"}},
    {"short",
     5,
     NG_EVAL_STDERR_INHERIT,
     {"exited with status 0", "closed its stdout after 12 of the 24 bytes"}},
    {"extra", 5, NG_EVAL_STDERR_INHERIT, {"byte 24 of the reply", "8 bytes after the end of the reply"}},
    {"badcount", 5, NG_EVAL_STDERR_INHERIT, {"byte 24 of the reply", "count of candidate 0 is -1"}},
    {"noread", 5, NG_EVAL_STDERR_INHERIT, {"exited with status 5"}},
    {"closeout", 5, NG_EVAL_STDERR_INHERIT, {"closed its stdout", "kept running; killed"}},
    {"stderr", 5, NG_EVAL_STDERR_PREFIX, {"exited with status 4", "its last stderr line: 'dying now'"}},
};

/* The program is `program` (its words, NULL-terminated) followed by the mode and "1". */
static void run_misbehaviour(const misbehaviour *b, size_t m, const char *const *program) {
  int fds = count_fds();
  char context[128], spec_word[1024] = "exec:";
  const char *argv[8];
  size_t nw = 0;
  for (; program[nw]; nw++) {
    argv[nw] = program[nw];
    snprintf(spec_word + strlen(spec_word), sizeof spec_word - strlen(spec_word), "%s ", program[nw]);
  }
  argv[nw] = b->mode;
  argv[nw + 1] = "1";
  argv[nw + 2] = NULL;
  snprintf(spec_word + strlen(spec_word), sizeof spec_word - strlen(spec_word), "%s 1", b->mode);
  snprintf(context, sizeof context, "%s mode %s, m = %zu", nw > 1 ? "serve" : "C", b->mode, m);
  FILE *log = tmpfile();
  assert_non_null(log);
  ng_evaluator_config cfg = config();
  cfg.argv = argv;
  cfg.timeout = b->timeout;
  cfg.max_restarts = 2;
  cfg.stderr_mode = b->err;
  cfg.log = log;
  /* the prefixed stderr lines go to our stderr: keep them out of the test's output, and look at them */
  int saved_err = -1;
  FILE *err_copy = NULL;
  if (b->err == NG_EVAL_STDERR_PREFIX) {
    err_copy = tmpfile();
    fflush(stderr);
    saved_err = dup(2);
    dup2(fileno(err_copy), 2);
  }
  ng_evaluator *ev = opened("exec:", &cfg);
  double *x = candidates(m), *loss = malloc(m * sizeof *loss);
  long pids[3] = {0};
  for (int call = 0; call < 6; call++) {
    long pid = ng_evaluator_pid(ev);
    double t0 = ng_time_now();
    int st = ng_evaluator_eval(ev, x, m, (uint64_t)call, 0, 0, loss, NULL);
    double dt = ng_time_now() - t0;
    if (call % 2 == 0 && call < 6) {
      if (st != NG_OK) fail_msg("%s: call %d: %s", context, call, ng_errmsg());
      pids[call / 2] = pid;
      for (size_t k = 0; k < m; k++)
        if (loss[k] != sphere(x + k * N, N, 1))
          fail_msg("%s: call %d: candidate %zu has loss %g", context, call, k, loss[k]);
      continue;
    }
    for (size_t k = 0; k < m; k++)
      if (!isnan(loss[k]))
        fail_msg("%s: call %d failed but candidate %zu has loss %g, not NaN", context, call, k, loss[k]);
    assert_gone(pid, context); /* killed and reaped, or reaped */
    if (dt > b->timeout + 2) fail_msg("%s: call %d took %g s", context, call, dt);
    if (call < 5) {
      if (st != NG_OK)
        fail_msg("%s: call %d: a failure within the limit returned %d: %s", context, call, st, ng_errmsg());
      assert_true(ng_evaluator_pid(ev) > 0);
      assert_true(ng_evaluator_pid(ev) != pid);
    } else {
      const char *const *w = b->words;
      assert_error(st, NG_EIO, context,
                   WORDS(spec_word, "failed 3 times", "restart limit (2)", "on request 1"));
      assert_error(st, NG_EIO, context, w);
      assert_int_equal(ng_evaluator_pid(ev), -1);
      /* and every later call says the same */
      assert_error(ng_evaluator_eval(ev, x, m, 9, 0, 0, loss, NULL), NG_EIO, context,
                   WORDS("failed 3 times"));
      assert_true(isnan(loss[0]));
    }
  }
  ng_evaluator_stats s;
  ng_evaluator_get_stats(ev, &s);
  assert_int_equal(s.failures, 3);
  assert_int_equal(s.restarts, 2);
  assert_int_equal(s.requests, 7);
  assert_int_equal(s.nan_losses, 4 * (int64_t)m);
  ng_evaluator_close(&ev);
  for (int i = 0; i < 3; i++)
    assert_gone(pids[i], context);
  if (err_copy) {
    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    char text[16384] = "";
    rewind(err_copy);
    size_t len = fread(text, 1, sizeof text - 1, err_copy);
    text[len] = '\0';
    fclose(err_copy);
    if (strcmp(b->mode, "stderr") == 0 &&
        (!strstr(text, "[evaluator rank 0] request 0\n") || !strstr(text, "[evaluator rank 0] dying now\n")))
      fail_msg("%s: the evaluator's stderr was not passed on with its prefix: '%s'", context, text);
  }
  char text[8192] = "";
  rewind(log);
  size_t len = fread(text, 1, sizeof text - 1, log);
  text[len] = '\0';
  fclose(log);
  if (!strstr(text, "restarting it (restart 1 of at most 2)") || !strstr(text, "restart 2 of at most 2") ||
      !strstr(text, "giving up after 2 restarts"))
    fail_msg("%s: the log does not tell the restarts: '%s'", context, text);
  free(x);
  free(loss);
  assert_no_children(context);
  if (count_fds() != fds) fail_msg("%s: %d descriptors open before, %d after", context, fds, count_fds());
}

static void test_misbehaving_evaluators(void **state) {
  for (size_t i = 0; i < sizeof misbehaviours / sizeof misbehaviours[0]; i++)
    run_misbehaviour(&misbehaviours[i], 1, WORDS(NG_TEST_MISBEHAVE));
}

/* The same failures from an evaluator written with nograd.evaluator.serve (tools/python): the ones a score
 * function can commit (exit, abort, hang, dying with a word on stderr), and the ones serve catches before
 * they reach the frames (an exception, the wrong number of losses, a negative count: the process ends with
 * status 1 and the reason as its last stderr line). A print() in score is not garbage on the frame channel
 * with serve: the evaluator keeps answering right. */
static const misbehaviour serve_misbehaviours[] = {
    {"exit", 5, NG_EVAL_STDERR_INHERIT, {"exited with status 3"}},
    {"abort", 5, NG_EVAL_STDERR_INHERIT, {"killed by signal 6"}},
    {"hang", 0.4, NG_EVAL_STDERR_INHERIT, {"timed out after 0.4 s", "0 of the 24 bytes of its reply"}},
    {"stderr", 5, NG_EVAL_STDERR_PREFIX, {"exited with status 4", "its last stderr line: 'dying now'"}},
    {"raise", 5, NG_EVAL_STDERR_PREFIX, {"exited with status 1", "'ValueError: candidate 0 is cursed'"}},
    {"wrongcount",
     5,
     NG_EVAL_STDERR_PREFIX,
     {"exited with status 1",
      "score returned 2 losses for the 1 candidates of request 1 (generation 5, chunk 0)"}},
    {"badcount",
     5,
     NG_EVAL_STDERR_PREFIX,
     {"exited with status 1", "score returned count -1.0 for candidate 0 of request 1"}},
};

static void test_serve_evaluators(void **state) {
  if (!have_numpy()) skip();
  for (size_t i = 0; i < sizeof serve_misbehaviours / sizeof serve_misbehaviours[0]; i++)
    run_misbehaviour(&serve_misbehaviours[i], 1, WORDS(NG_TEST_PYTHON, NG_TEST_SERVE_MISBEHAVE));
  ng_evaluator_config cfg = config();
  cfg.argv = WORDS(NG_TEST_PYTHON, NG_TEST_SERVE_MISBEHAVE, "print", "1");
  cfg.max_restarts = 0;
  ng_evaluator *ev = opened("exec:", &cfg);
  for (size_t k = 0; k < 3; k++)
    check_losses(ev, 1 + 20 * k, 0, 1.0, false, "serve, print() in score");
  ng_evaluator_stats s;
  ng_evaluator_get_stats(ev, &s);
  assert_int_equal(s.failures, 0);
  ng_evaluator_close(&ev);
  /* the Python example's (loss, count) pairs, as the C example's */
  cfg = config();
  cfg.nchunks = 3;
  cfg.argv = WORDS(NG_TEST_PYTHON, NG_TEST_EXAMPLE_PY, "--counts");
  ev = opened("exec:", &cfg);
  for (size_t c = 0; c < 3; c++)
    check_losses(ev, 5, c, 1.0, true, "Python example --counts");
  ng_evaluator_close(&ev);
  assert_no_children("serve");
}

/* A request larger than a pipe holds (3000 x 10 doubles) to a program that exits without reading it: the
 * write fails with EPIPE; SIGPIPE must neither kill us nor be left pending. */
static void test_sigpipe(void **state) {
  sigset_t pending;
  struct sigaction old, dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, &old); /* a SIGPIPE would end this test */
  ng_evaluator_config cfg = config();
  cfg.argv = WORDS(NG_TEST_MISBEHAVE, "noread", "1");
  cfg.max_restarts = 1;
  ng_evaluator *ev = opened("exec:", &cfg);
  size_t m = 3000;
  double *x = candidates(m), *loss = malloc(m * sizeof *loss);
  assert_int_equal(ng_evaluator_eval(ev, x, m, 0, 0, 0, loss, NULL), NG_OK);
  assert_int_equal(ng_evaluator_eval(ev, x, m, 1, 0, 0, loss, NULL), NG_OK);
  assert_true(isnan(loss[0]) && isnan(loss[m - 1]));
  ng_evaluator_stats s;
  ng_evaluator_get_stats(ev, &s);
  assert_int_equal(s.failures, 1);
  sigemptyset(&pending);
  sigpending(&pending);
  assert_false(sigismember(&pending, SIGPIPE));
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, NULL, &mask);
  assert_false(sigismember(&mask, SIGPIPE)); /* the mask is back as it was */
  ng_evaluator_close(&ev);
  sigaction(SIGPIPE, &old, NULL);
  free(x);
  free(loss);
  assert_no_children("sigpipe");
}

/* The evaluator's own children die with it (process group), and one that ignores BYE is killed at close. */
static void test_process_group_and_close(void **state) {
  char file[] = "/tmp/ng_evaluator_gchildXXXXXX";
  int fd = mkstemp(file);
  assert_true(fd >= 0);
  close(fd);
  ng_evaluator_config cfg = config();
  cfg.argv = WORDS(NG_TEST_MISBEHAVE, "grandchild", "0", file);
  cfg.timeout = 0.3;
  cfg.max_restarts = 0;
  ng_evaluator *ev = opened("exec:", &cfg);
  FILE *f = fopen(file, "r");
  char line[64] = "";
  assert_non_null(f);
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  long gpid = strtol(line, NULL, 10);
  unlink(file);
  assert_true(gpid > 0);
  assert_int_equal(kill((pid_t)gpid, 0), 0); /* alive */
  double x[N] = {0}, loss;
  assert_error(ng_evaluator_eval(ev, x, 1, 0, 0, 0, &loss, NULL), NG_EIO, "grandchild",
               WORDS("timed out after 0.3 s", "failed 1 time, more than its restart limit (0)"));
  assert_dead(gpid, true, "the evaluator's child");
  ng_evaluator_close(&ev);

  cfg.argv = WORDS(NG_TEST_MISBEHAVE, "ignorebye", "0");
  ev = opened("exec:", &cfg);
  long pid = ng_evaluator_pid(ev);
  assert_int_equal(ng_evaluator_eval(ev, x, 1, 0, 0, 0, &loss, NULL), NG_OK);
  double t0 = ng_time_now();
  ng_evaluator_close(&ev);
  double dt = ng_time_now() - t0;
  if (dt < 0.25 || dt > 2) fail_msg("closing an evaluator that ignores BYE took %g s, want about 0.3", dt);
  assert_gone(pid, "ignorebye");
  assert_no_children("process group");
}

static void test_plugin_errors(void **state) {
  int fds = count_fds();
  ng_evaluator_config cfg = config();
  cfg.nchunks = 2;
  ng_evaluator *ev = NULL;
  char spec[1024];
  assert_error(ng_evaluator_open("plugin:/nonexistent/lib.so", &cfg, &ev), NG_ENOTFOUND, "missing .so",
               WORDS("plugin:/nonexistent/lib.so", "cannot load '/nonexistent/lib.so'", "No such file"));
  assert_null(ev);
  /* a file that is not a library */
  char file[] = "/tmp/ng_evaluator_notsoXXXXXX";
  int fd = mkstemp(file);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "not an ELF file\n", 16), 16);
  close(fd);
  snprintf(spec, sizeof spec, "plugin:%s", file);
  assert_error(ng_evaluator_open(spec, &cfg, &ev), NG_ENOTFOUND, "not a library", WORDS(file, "cannot load"));
  unlink(file);
  snprintf(spec, sizeof spec, "plugin:%s", NG_TEST_BADPLUGIN1);
  assert_error(ng_evaluator_open(spec, &cfg, &ev), NG_ENOTFOUND, "no symbol",
               WORDS(NG_TEST_BADPLUGIN1, "has no function nograd_plugin_v1"));
  snprintf(spec, sizeof spec, "plugin:%s", NG_TEST_BADPLUGIN2);
  assert_error(ng_evaluator_open(spec, &cfg, &ev), NG_EMISMATCH, "ABI 99",
               WORDS(NG_TEST_BADPLUGIN2, "ABI version 99", "speaks version 1"));
  snprintf(spec, sizeof spec, "plugin:%s", NG_TEST_BADPLUGIN3);
  assert_error(ng_evaluator_open(spec, &cfg, &ev), NG_EMISMATCH, "only v2",
               WORDS(NG_TEST_BADPLUGIN3, "exports nograd_plugin_v2"));
  snprintf(spec, sizeof spec, "plugin:%s initfail", NG_TEST_BADPLUGIN0);
  assert_error(ng_evaluator_open(spec, &cfg, &ev), NG_EIO, "init fails",
               WORDS("init failed", "cannot open the scoring server at localhost:1"));
  assert_null(ev);

  /* evaluate fails on its second call; finish is still called */
  char done[] = "/tmp/ng_evaluator_finishXXXXXX";
  fd = mkstemp(done);
  assert_true(fd >= 0);
  close(fd);
  snprintf(spec, sizeof spec, "plugin:%s evalfail %s", NG_TEST_BADPLUGIN0, done);
  ev = opened(spec, &cfg);
  check_losses(ev, 3, 0, 1.0, false, "evalfail, first call");
  double x[N] = {0}, loss = 0;
  assert_error(ng_evaluator_eval(ev, x, 1, 4, 1, 0, &loss, NULL), NG_EIO, "evalfail",
               WORDS("generation 4, chunk 1", "the scoring server went away"));
  assert_true(isnan(loss));
  ng_evaluator_close(&ev);
  /* counts from a plugin, and finish */
  snprintf(spec, sizeof spec, "plugin:%s counts", NG_TEST_BADPLUGIN0);
  ev = opened(spec, &cfg);
  check_losses(ev, 4, 1, 1.0, true, "plugin counts");
  ng_evaluator_close(&ev);
  snprintf(spec, sizeof spec, "plugin:%s finish %s", NG_TEST_BADPLUGIN0, done);
  ev = opened(spec, &cfg);
  check_losses(ev, 2, 0, 1.0, false, "plugin finish");
  check_losses(ev, 2, 1, 1.0, false, "plugin finish");
  ng_evaluator_close(&ev);
  FILE *f = fopen(done, "r");
  char line[128] = "";
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  unlink(done);
  assert_string_equal(line, "finished after 2 calls\n");
  snprintf(spec, sizeof spec, "plugin:%s badcount", NG_TEST_BADPLUGIN0);
  ev = opened(spec, &cfg);
  assert_error(ng_evaluator_eval(ev, x, 1, 0, 0, 0, &loss, NULL), NG_EIO, "badcount", WORDS("a count of -1"));
  ng_evaluator_close(&ev);
  assert_int_equal(count_fds(), fds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_examples_agree_with_the_formula),
      cmocka_unit_test(test_hello_tells_the_evaluator),
      cmocka_unit_test(test_bad_specs_and_configurations),
      cmocka_unit_test(test_programs_that_cannot_start),
      cmocka_unit_test(test_misbehaving_evaluators),
      cmocka_unit_test(test_serve_evaluators),
      cmocka_unit_test(test_sigpipe),
      cmocka_unit_test(test_process_group_and_close),
      cmocka_unit_test(test_plugin_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
