/* `nograd minimize`: a benchmark function or a data objective, an optimizer, and the engine between them;
 * checkpoints, resume and signals. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/app.h"
#include "nograd/ckpt.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/functions.h"
#include "nograd/synth.h"

typedef struct {
  ng_fn *fn;
  double *work;
} fn_ctx;

static int eval_fn(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                   double *count) {
  fn_ctx *c = ctx;
  *sum = ng_fn_eval(c->fn, x, generation, k, c->work);
  *count = 1;
  return NG_OK;
}

static int load_synth(void *ctx, size_t first, size_t count) {
  return ng_synth_load(ctx, first, count);
}

static bool is_data_objective(const char *name) {
  return strcmp(name, "logistic") == 0 || strcmp(name, "lsq") == 0;
}

int ng_app_make_optimizer(const ng_minimize_config *cfg, ng_opt **out) {
  ng_opt *opt = NULL;
  int st;
  NG_TRY(st, ng_opt_create(cfg->optimizer, cfg->dim, &opt), fail);
  if (cfg->x0) NG_TRY(st, ng_opt_set_x0(opt, cfg->x0), fail);
  NG_TRY(st, ng_opt_set_sigma0(opt, cfg->sigma0), fail);
  NG_TRY(st, ng_opt_set_seed(opt, cfg->seed), fail);
  NG_TRY(st, ng_opt_set_popsize(opt, cfg->popsize), fail);
  NG_TRY(st, ng_opt_set_ftarget(opt, cfg->ftarget), fail);
  NG_TRY(st, ng_opt_set_max_evals(opt, cfg->max_evals), fail);
  NG_TRY(st, ng_opt_set_restarts(opt, cfg->restarts, cfg->max_restarts), fail);
  if (isfinite(cfg->lower) || isfinite(cfg->upper)) {
    double *lo = malloc(cfg->dim * sizeof *lo), *hi = malloc(cfg->dim * sizeof *hi);
    if (!lo || !hi) {
      free(lo);
      free(hi);
      st = ng_error(NG_ENOMEM, "out of memory");
      goto fail;
    }
    for (size_t i = 0; i < cfg->dim; i++) {
      lo[i] = cfg->lower;
      hi[i] = cfg->upper;
    }
    st = ng_opt_set_bounds(opt, lo, hi);
    free(lo);
    free(hi);
    if (st) goto fail;
  }
  for (size_t i = 0; i < cfg->nparams; i++)
    NG_TRY(st, ng_opt_set_param(opt, cfg->param_names[i], cfg->param_values[i]), fail);
  NG_TRY(st, ng_opt_setup(opt), fail);
  *out = opt;
  return NG_OK;
fail:
  ng_opt_destroy(&opt);
  return st;
}

/* A growing string for the configuration text. */
typedef struct {
  char *s;
  size_t len, cap;
  bool failed;
} text;

static void add(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (t->failed || need < 0) return;
  if (t->len + (size_t)need + 1 > t->cap) {
    size_t cap = (t->len + (size_t)need + 1) * 2;
    char *grown = realloc(t->s, cap);
    if (!grown) {
      t->failed = true;
      return;
    }
    t->s = grown;
    t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)need;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

int ng_minimize_config_text(const ng_minimize_config *cfg, char **config, char **budget) {
  text c = {0}, b = {0};
  add(&c, "function=%s\ndim=%zu\noptimizer=%s\npopsize=%zu\n", cfg->function, cfg->dim, cfg->optimizer,
      cfg->popsize);
  add(&c, "restarts=%s\nmax-restarts=%d\n",
      cfg->restarts == NG_RESTART_IPOP    ? "ipop"
      : cfg->restarts == NG_RESTART_BIPOP ? "bipop"
                                          : "none",
      cfg->max_restarts);
  add(&c, "x0=");
  for (size_t i = 0; i < cfg->dim; i++)
    add(&c, "%s%.17g", i ? "," : "", cfg->x0 ? cfg->x0[i] : 0.0);
  add(&c, "\nsigma0=%.17g\nseed=%llu\nlower=%.17g\nupper=%.17g\n", cfg->sigma0, (unsigned long long)cfg->seed,
      cfg->lower, cfg->upper);
  if (is_data_objective(cfg->function))
    add(&c, "rows=%zu\nchunk-rows=%zu\ndata-seed=%llu\n", cfg->rows, cfg->chunk_rows,
        (unsigned long long)cfg->data_seed);
  /* parameters in name order, so that the text does not depend on the order of the options */
  const char *const *order[NG_MAX_PARAMS] = {0};
  for (size_t i = 0; i < cfg->nparams; i++)
    order[i] = &cfg->param_names[i];
  qsort(order, cfg->nparams, sizeof order[0], compare_names);
  for (size_t i = 0; i < cfg->nparams; i++)
    add(&c, "param.%s=%.17g\n", *order[i], cfg->param_values[order[i] - cfg->param_names]);
  add(&b, "max-evals=%lld\nftarget=%.17g\n", (long long)cfg->max_evals, cfg->ftarget);
  if (c.failed || b.failed || !c.s || !b.s) {
    free(c.s);
    free(b.s);
    return ng_error(NG_ENOMEM, "out of memory for the configuration text");
  }
  *config = c.s;
  *budget = b.s;
  return NG_OK;
}

/* The first line where two configuration texts differ, as "key=a" and "key=b". */
static void first_difference(const char *a, const char *b, char *out, size_t len) {
  while (*a || *b) {
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
    if (la != lb || strncmp(a, b, la) != 0) {
      snprintf(out, len, "'%.*s' there, '%.*s' here", (int)(la > 200 ? 200 : la), a,
               (int)(lb > 200 ? 200 : lb), b);
      return;
    }
    a += la + (ea ? 1 : 0);
    b += lb + (eb ? 1 : 0);
  }
  snprintf(out, len, "(no difference)");
}

/* Rank 0: load the checkpoint into the optimizer and the history, after checking that it belongs to this
 * configuration. */
static int resume(const ng_minimize_config *cfg, const char *config, ng_opt *opt, ng_history *history) {
  ng_ckpt_info info = {0};
  ng_state *st = NULL;
  int rc;
  NG_TRY(rc, ng_state_create(&st), out);
  NG_TRY(rc, ng_ckpt_read(cfg->resume, &info, st, history, NULL, NULL, NULL, NULL), out);
  const char *saved = info.config ? info.config : "";
  if (strcmp(saved, config) != 0 && !cfg->force) {
    char diff[512];
    first_difference(saved, config, diff, sizeof diff);
    rc = ng_error(
        NG_EMISMATCH,
        "--resume %s: the checkpoint was written with another configuration: %s (use --force to resume "
        "it anyway)",
        cfg->resume, diff);
    goto out;
  }
  if (strcmp(info.optimizer ? info.optimizer : "", cfg->optimizer) != 0) {
    rc = ng_error(NG_EMISMATCH, "--resume %s: the checkpoint holds optimizer '%s', not '%s'", cfg->resume,
                  info.optimizer ? info.optimizer : "?", cfg->optimizer);
    goto out;
  }
  rc = ng_opt_load(opt, st);
  if (rc != NG_OK) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", ng_errmsg());
    rc = ng_error(rc, "--resume %s: %s", cfg->resume, msg);
  }
out:
  ng_ckpt_info_free(&info);
  ng_state_destroy(&st);
  return rc;
}

int ng_app_minimize(MPI_Comm comm, const ng_minimize_config *cfg, ng_minimize_result *res) {
  int rank, size, st;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  fn_ctx fc = {0};
  ng_synth *synth = NULL;
  ng_opt *opt = NULL;
  char *config = NULL, *budget = NULL;
  ng_history history = {0};
  ng_objective obj = {0};
  /* Every rank validates the whole configuration; the statuses are then agreed on, so that a failure on some
   * ranks only (memory, a file) still ends all of them together. */
  st = NG_OK;
  if (is_data_objective(cfg->function)) {
    if (cfg->dim < 2)
      st = ng_error(NG_EINVAL,
                    "--function %s: --dim is the number of features + 1 (a bias), so at least 2, got %zu",
                    cfg->function, cfg->dim);
    if (st == NG_OK)
      st = ng_synth_create(cfg->function, cfg->rows, cfg->dim - 1, cfg->chunk_rows, cfg->data_seed, &synth);
    if (st == NG_OK) {
      ng_synth_objective(synth, &obj);
      obj.load = load_synth;
      obj.ctx = synth;
    }
  } else {
    st = ng_fn_create(cfg->function, cfg->dim, cfg->seed, &fc.fn);
    if (st == NG_OK && !(fc.work = malloc(cfg->dim * sizeof *fc.work)))
      st = ng_error(NG_ENOMEM, "out of memory");
    obj = (ng_objective){.n = cfg->dim, .nchunks = 1, .eval = eval_fn, .ctx = &fc};
  }
  if (st == NG_OK) st = ng_app_make_optimizer(cfg, &opt);
  if (rank != 0) ng_opt_destroy(&opt);
  if (st == NG_OK) st = ng_minimize_config_text(cfg, &config, &budget);
  /* groups 0: the fewest groups (most data parallelism) that leave no shard without a chunk */
  int groups = cfg->groups;
  if (st == NG_OK && groups == 0) {
    groups = size;
    for (int g = 1; g <= size; g++)
      if (size % g == 0 && (size_t)(size / g) <= obj.nchunks) {
        groups = g;
        break;
      }
  }
  if (st == NG_OK && (groups < 1 || size % groups != 0))
    st = ng_error(NG_EINVAL, "--groups %d does not divide the %d ranks (P must be a multiple of G)", groups,
                  size);
  if (st == NG_OK && cfg->resume && rank == 0) st = resume(cfg, config, opt, &history);
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;

  ng_engine_config ec = {.groups = groups,
                         .bcast = (ng_bcast_mode)cfg->bcast,
                         .checkpoint = cfg->checkpoint,
                         .checkpoint_gens = cfg->checkpoint_gens,
                         .checkpoint_secs = cfg->checkpoint_secs,
                         .meta = {.program_version = NOGRAD_VERSION,
                                  .command_line = cfg->command_line ? cfg->command_line : "",
                                  .config = config,
                                  .budget = budget,
                                  .optimizer = cfg->optimizer,
                                  .ranks = size,
                                  .groups = groups},
                         .history = &history,
                         .progress = cfg->progress,
                         .progress_secs = 1.0,
                         .log = cfg->log,
                         .max_evals = cfg->max_evals,
                         .handle_signals = cfg->handle_signals != 0};
  ng_engine_result er;
  st = ng_engine_run(comm, opt, &obj, &ec, &er);
  res->signalled = er.signalled;
  res->bytes = er.bytes;
  res->checkpoints = er.checkpoints;
  if (st == NG_OK && rank == 0) {
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    res->evaluations = in.evaluations;
    res->generations = in.generation;
    res->restarts = in.restarts;
    res->nonfinite = in.nonfinite;
    res->stop = er.signalled && in.stop == NG_STOP_NONE ? NG_STOP_SIGNAL : in.stop;
    const double *xb = ng_opt_best(opt, &res->f_best);
    if (res->x_best) memcpy(res->x_best, xb, cfg->dim * sizeof *xb);
    res->seconds = er.seconds;
  }
out:
  free(fc.work);
  ng_fn_destroy(&fc.fn);
  ng_synth_destroy(&synth);
  ng_opt_destroy(&opt);
  ng_history_free(&history);
  free(config);
  free(budget);
  return st;
}
