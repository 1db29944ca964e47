/* What an exec: evaluator costs: candidates/s through the frame protocol for a trivial objective (the
 * examples' shifted sphere), for several batch sizes (candidates per frame).
 *
 *   bench_exec [--dim 10] [--batches 1,16,256] [--reps 15] [--candidates 20000] [--exec "exec:PROG ARGS"]
 *
 * Without --exec it measures the C example (nograd_example_exec) and the Python one (example_exec.py, with
 * the build's Python), whose paths the build compiles in. One repetition sends --candidates candidates (at
 * least 200 frames) in frames of the batch size and times it; the program prints the median, min and max
 * over the repetitions of candidates/s and of the time per frame. Every loss is checked against the
 * formula, so a broken evaluator cannot look fast. The target is >= 10,000 candidates/s at n = 10. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/evaluator.h"
#include "nograd/timer.h"

#ifndef NG_BENCH_EXAMPLE_EXEC
#define NG_BENCH_EXAMPLE_EXEC "nograd_example_exec"
#endif
#ifndef NG_BENCH_EXAMPLE_PY
#define NG_BENCH_EXAMPLE_PY "tools/evaluators/example_exec.py"
#endif
#ifndef NG_BENCH_PYTHON
#define NG_BENCH_PYTHON "python3"
#endif

/* A whole decimal number >= 1, or 0. */
static size_t count_arg(const char *s) {
  char *end = NULL;
  long long v = strtoll(s, &end, 10);
  return end != s && *end == '\0' && v >= 1 ? (size_t)v : 0;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One evaluator, one batch size: the medians, or a status. */
static int run(const char *label, const char *spec, const char *const *argv, size_t n, size_t batch, int reps,
               size_t target) {
  ng_evaluator_config cfg;
  ng_evaluator_config_init(&cfg);
  cfg.n = n;
  cfg.argv = argv;
  ng_evaluator *ev = NULL;
  int st = ng_evaluator_open(spec, &cfg, &ev);
  if (st != NG_OK) {
    fprintf(stderr, "bench_exec: %s\n", ng_errmsg());
    return st;
  }
  size_t frames = (target + batch - 1) / batch;
  if (frames < 200) frames = 200;
  double *x = malloc(batch * n * sizeof *x), *loss = malloc(batch * sizeof *loss);
  double *rate = malloc((size_t)reps * sizeof *rate), *per_frame = malloc((size_t)reps * sizeof *per_frame);
  if (!x || !loss || !rate || !per_frame) {
    st = ng_error(NG_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < batch * n; i++)
    x[i] = (double)(i % 7) * 0.25;
  uint64_t gen = 0;
  for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
    double t0 = ng_time_now();
    for (size_t f = 0; f < frames; f++) {
      x[0] = (double)f; /* a different first candidate each time */
      NG_TRY(st, ng_evaluator_eval(ev, x, batch, gen++, 0, 0, loss, NULL), done);
    }
    double dt = ng_time_now() - t0;
    for (size_t k = 0; k < batch; k++) {
      double f = 0;
      for (size_t i = 0; i < n; i++)
        f += (x[k * n + i] - 1) * (x[k * n + i] - 1);
      if (fabs(loss[k] - f) > 1e-9 * (1 + fabs(f))) {
        st = ng_error(NG_ENUMERIC, "%s: candidate %zu has loss %.17g, the formula gives %.17g", label, k,
                      loss[k], f);
        goto done;
      }
    }
    if (r >= 0) {
      rate[r] = (double)(frames * batch) / dt;
      per_frame[r] = dt / (double)frames * 1e6;
    }
  }
  ng_evaluator_stats s;
  ng_evaluator_get_stats(ev, &s);
  if (s.failures) {
    st = ng_error(NG_EIO, "%s: %lld failed requests", label, (long long)s.failures);
    goto done;
  }
  qsort(rate, (size_t)reps, sizeof *rate, compare_double);
  qsort(per_frame, (size_t)reps, sizeof *per_frame, compare_double);
  printf("%-8s n=%-4zu batch=%-5zu  %12.0f candidates/s (min %.0f, max %.0f)  %9.1f us/frame  %s\n", label, n,
         batch, rate[reps / 2], rate[0], rate[reps - 1], per_frame[reps / 2],
         rate[reps / 2] >= 10000 ? ">= 10,000: ok" : "< 10,000: BELOW TARGET");
  fflush(stdout);
done:
  if (st != NG_OK) fprintf(stderr, "bench_exec: %s\n", ng_errmsg());
  ng_evaluator_close(&ev);
  free(x);
  free(loss);
  free(rate);
  free(per_frame);
  return st;
}

int main(int argc, char **argv) {
  size_t n = 10, target = 20000;
  int reps = 15;
  const char *batches = "1,16,256", *spec = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--dim"))
      n = count_arg(argv[i + 1]);
    else if (!strcmp(argv[i], "--batches"))
      batches = argv[i + 1];
    else if (!strcmp(argv[i], "--reps"))
      reps = (int)count_arg(argv[i + 1]);
    else if (!strcmp(argv[i], "--candidates"))
      target = count_arg(argv[i + 1]);
    else if (!strcmp(argv[i], "--exec"))
      spec = argv[i + 1];
    else {
      fprintf(stderr, "bench_exec: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (argc % 2 == 0 || n < 1 || reps < 1 || target < 1) {
    fprintf(
        stderr,
        "usage: bench_exec [--dim 10] [--batches 1,16,256] [--reps 15] [--candidates 20000] [--exec SPEC]\n");
    return 2;
  }
  const char *const c_argv[] = {NG_BENCH_EXAMPLE_EXEC, NULL};
  const char *const py_argv[] = {NG_BENCH_PYTHON, NG_BENCH_EXAMPLE_PY, NULL};
  int bad = 0;
  char *list = strdup(batches);
  for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
    size_t b = count_arg(tok);
    if (b < 1) continue;
    if (spec) {
      bad |= run("exec", spec, NULL, n, b, reps, target) != NG_OK;
    } else {
      bad |= run("C", "exec:", c_argv, n, b, reps, target) != NG_OK;
      bad |= run("Python", "exec:", py_argv, n, b, reps, target) != NG_OK;
    }
  }
  free(list);
  return bad ? 1 : 0;
}
