/* External evaluators, the generic layer (see nograd/evaluator.h): the spec is split into its kind and words,
 * the configuration and every call's arguments are checked here once, and the counters are kept here, so
 * that a kind (evaluator_exec.c, evaluator_plugin.c) only has to talk to its program or library. */
#include "nograd/evaluator.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/evaluator_impl.h"
#include "nograd/error.h"
#include "nograd/timer.h"

static const ng_evaluator_ops *const kinds[] = {&ng_evaluator_exec_ops, &ng_evaluator_plugin_ops};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static const char *const blanks = " \t\n\r\v\f";

void ng_evaluator_config_init(ng_evaluator_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->nchunks = 1;
  cfg->nranks = 1;
  cfg->timeout = NG_EVALUATOR_DEFAULT_TIMEOUT;
  cfg->start_timeout = 0; /* HELLO gets the request timeout */
  cfg->max_restarts = NG_EVALUATOR_DEFAULT_RESTARTS;
  cfg->stderr_mode = NG_EVAL_STDERR_INHERIT;
  cfg->log = stderr;
}

static int check_config(const char *spec, const ng_evaluator_config *cfg) {
  if (cfg->n < 1 || cfg->n > UINT32_MAX)
    return ng_error(NG_EINVAL, "%s: the dimension must be in [1, 2^32), got %zu", spec, cfg->n);
  if (cfg->nchunks < 1 || cfg->nchunks > UINT32_MAX)
    return ng_error(NG_EINVAL, "%s: the number of chunks must be in [1, 2^32), got %zu", spec, cfg->nchunks);
  if (cfg->nranks < 1 || cfg->rank < 0 || cfg->rank >= cfg->nranks)
    return ng_error(NG_EINVAL, "%s: rank %d of %d ranks", spec, cfg->rank, cfg->nranks);
  if (!(cfg->timeout > 0))
    return ng_error(NG_EINVAL, "%s: the timeout must be a positive number of seconds (inf: none), got %g",
                    spec, cfg->timeout);
  if (!(cfg->start_timeout >= 0))
    return ng_error(NG_EINVAL,
                    "%s: the start timeout must be a positive number of seconds (0: the timeout), got %g",
                    spec, cfg->start_timeout);
  if (cfg->max_restarts < 0)
    return ng_error(NG_EINVAL, "%s: the restart limit must be >= 0, got %d", spec, cfg->max_restarts);
  if (cfg->stderr_mode != NG_EVAL_STDERR_INHERIT && cfg->stderr_mode != NG_EVAL_STDERR_PREFIX &&
      cfg->stderr_mode != NG_EVAL_STDERR_DISCARD)
    return ng_error(NG_EINVAL, "%s: unknown stderr mode %d", spec, (int)cfg->stderr_mode);
  return NG_OK;
}

/* Splits `text` on blanks into ev->words (NULL-terminated). */
static int split_words(ng_evaluator *ev, const char *text) {
  size_t cap = 1;
  for (const char *p = text; *p; p++)
    cap++; /* a word per character at most, and the NULL */
  ev->words = calloc(cap, sizeof *ev->words);
  char *copy = strdup(text);
  if (!ev->words || !copy) {
    free(copy);
    return ng_error(NG_ENOMEM, "out of memory");
  }
  for (char *w = copy + strspn(copy, blanks); *w; w += strspn(w, blanks)) {
    size_t len = strcspn(w, blanks);
    ev->words[ev->nwords] = malloc(len + 1);
    if (!ev->words[ev->nwords]) {
      free(copy);
      return ng_error(NG_ENOMEM, "out of memory");
    }
    memcpy(ev->words[ev->nwords], w, len);
    ev->words[ev->nwords++][len] = '\0';
    w += len;
  }
  free(copy);
  return NG_OK;
}

static int copy_argv(ng_evaluator *ev, const char *const *argv) {
  size_t k = 0;
  while (argv[k])
    k++;
  ev->words = calloc(k + 1, sizeof *ev->words);
  if (!ev->words) return ng_error(NG_ENOMEM, "out of memory");
  for (ev->nwords = 0; ev->nwords < k; ev->nwords++)
    if (!(ev->words[ev->nwords] = strdup(argv[ev->nwords]))) return ng_error(NG_ENOMEM, "out of memory");
  return NG_OK;
}

static void free_evaluator(ng_evaluator *ev) {
  for (size_t k = 0; ev->words && k < ev->nwords; k++)
    free(ev->words[k]);
  free(ev->words);
  free(ev->model_path);
  free(ev->spec);
  free(ev->counts_scratch);
  free(ev);
}

int ng_evaluator_open(const char *spec, const ng_evaluator_config *cfg, ng_evaluator **out) {
  if (!out) return ng_error(NG_EINVAL, "ng_evaluator_open: no place for the result");
  *out = NULL;
  if (!spec || !cfg) return ng_error(NG_EINVAL, "ng_evaluator_open: no spec or no configuration");
  const ng_evaluator_ops *ops = NULL;
  for (size_t k = 0; k < NKINDS && !ops; k++)
    if (strncmp(spec, kinds[k]->prefix, strlen(kinds[k]->prefix)) == 0) ops = kinds[k];
  if (!ops)
    return ng_error(NG_EINVAL, "evaluator '%s': expected exec:PROGRAM [ARGS...] or plugin:LIB.so [WORDS...]",
                    spec);
  NG_CALL(check_config(spec, cfg));
  const char *rest = spec + strlen(ops->prefix);
  bool has_words = rest[strspn(rest, blanks)] != '\0';
  if (cfg->argv && has_words)
    return ng_error(NG_EINVAL,
                    "evaluator '%s': the program is given both in the spec and as an argument vector; give "
                    "only \"%s\" with the vector",
                    spec, ops->prefix);

  ng_evaluator *ev = calloc(1, sizeof *ev);
  if (!ev) return ng_error(NG_ENOMEM, "out of memory");
  int st = NG_OK;
  ev->ops = ops;
  ev->cfg = *cfg;
  ev->spec = strdup(spec);
  if (!ev->spec || (cfg->model_path && !(ev->model_path = strdup(cfg->model_path)))) {
    st = ng_error(NG_ENOMEM, "out of memory");
    goto fail;
  }
  NG_TRY(st, cfg->argv ? copy_argv(ev, cfg->argv) : split_words(ev, rest), fail);
  if (ev->nwords == 0 || ev->words[0][0] == '\0') {
    st = ng_error(NG_EINVAL, "evaluator '%s': no %s after '%s'", spec,
                  ops == &ng_evaluator_exec_ops ? "program" : "library", ops->prefix);
    goto fail;
  }
  if (cfg->argv) { /* messages show the words, not the bare prefix */
    size_t len = strlen(ops->prefix) + 1;
    for (size_t k = 0; k < ev->nwords; k++)
      len += strlen(ev->words[k]) + 1;
    char *shown = malloc(len);
    if (!shown) {
      st = ng_error(NG_ENOMEM, "out of memory");
      goto fail;
    }
    size_t o = (size_t)snprintf(shown, len, "%s", ops->prefix);
    for (size_t k = 0; k < ev->nwords && o < len; k++)
      o += (size_t)snprintf(shown + o, len - o, "%s%s", k > 0 ? " " : "", ev->words[k]);
    free(ev->spec);
    ev->spec = shown;
  }
  ev->cfg.model_path = ev->model_path;
  ev->cfg.argv = (const char *const *)ev->words;
  NG_TRY(st, ops->open(ev), fail);
  *out = ev;
  return NG_OK;
fail:
  free_evaluator(ev);
  return st;
}

int ng_evaluator_eval(ng_evaluator *ev, const double *x, size_t m, uint64_t generation, size_t chunk,
                      size_t first, double *losses, double *counts) {
  if (!ev) return ng_error(NG_EINVAL, "ng_evaluator_eval: no evaluator");
  if (m == 0) return NG_OK;
  if (!x || !losses) return ng_error(NG_EINVAL, "%s: no candidates or no room for their losses", ev->spec);
  if (m > UINT32_MAX || first > UINT32_MAX - m)
    return ng_error(NG_EINVAL, "%s: %zu candidates from index %zu do not fit a request (at most 2^32 - 1)",
                    ev->spec, m, first);
  if (chunk >= ev->cfg.nchunks)
    return ng_error(NG_EINVAL, "%s: chunk %zu requested, but there are %zu chunks", ev->spec, chunk,
                    ev->cfg.nchunks);
  if (!counts) {
    if (ev->counts_cap < m) {
      double *c = realloc(ev->counts_scratch, m * sizeof *c);
      if (!c) return ng_error(NG_ENOMEM, "out of memory");
      ev->counts_scratch = c;
      ev->counts_cap = m;
    }
    counts = ev->counts_scratch;
  }
  double t0 = ng_time_now();
  int st = ev->ops->eval(ev, x, m, generation, chunk, first, losses, counts);
  ev->stats.requests++;
  ev->stats.candidates += (int64_t)m;
  for (size_t k = 0; k < m; k++)
    if (isnan(losses[k])) ev->stats.nan_losses++;
  ev->stats.seconds += ng_time_now() - t0;
  return st;
}

void ng_evaluator_close(ng_evaluator **pev) {
  if (!pev || !*pev) return;
  ng_evaluator *ev = *pev;
  ev->ops->close(ev);
  free_evaluator(ev);
  *pev = NULL;
}

void ng_evaluator_get_stats(const ng_evaluator *ev, ng_evaluator_stats *out) {
  if (ev)
    *out = ev->stats;
  else
    memset(out, 0, sizeof *out);
}

const char *ng_evaluator_spec(const ng_evaluator *ev) {
  return ev ? ev->spec : "";
}

long ng_evaluator_pid(const ng_evaluator *ev) {
  return ev ? ev->ops->pid(ev) : -1;
}

static int objective_eval(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                          double *sum, double *count) {
  return ng_evaluator_eval(ctx, x, 1, generation, chunk, k, sum, count);
}

/* All of a rank's candidates of a chunk in one request (one frame, one plugin call). */
static int objective_eval_batch(void *ctx, const double *x, size_t m, uint64_t generation, size_t first,
                                size_t chunk, double *sums, double *counts) {
  return ng_evaluator_eval(ctx, x, m, generation, chunk, first, sums, counts);
}

void ng_evaluator_objective(ng_evaluator *ev, ng_objective *obj) {
  memset(obj, 0, sizeof *obj);
  obj->n = ev->cfg.n;
  obj->nchunks = ev->cfg.nchunks;
  obj->eval = objective_eval;
  obj->eval_batch = objective_eval_batch;
  obj->ctx = ev;
}
