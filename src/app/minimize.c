/* `nograd minimize`: a benchmark function or a data objective, an optimizer, and the engine between them;
 * checkpoints, resume and signals. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/app.h"
#include "nograd/ckpt.h"
#include "nograd/engine.h"
#include "nograd/run.h"
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

void ng_minimize_config_init(ng_minimize_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->optimizer = "cmaes";
  cfg->restarts = NG_RESTART_NONE;
  cfg->max_restarts = 9;
  cfg->sigma0 = 1.0;
  cfg->seed = 1;
  cfg->ftarget = -INFINITY;
  cfg->lower = -INFINITY;
  cfg->upper = INFINITY;
  cfg->rows = 10000;
  cfg->chunk_rows = 1000;
  cfg->data_seed = 1;
}

int ng_app_minimize(MPI_Comm comm, const ng_minimize_config *cfg, ng_minimize_result *res) {
  int rank, st;
  MPI_Comm_rank(comm, &rank);
  fn_ctx fc = {0};
  ng_synth *synth = NULL;
  ng_opt *opt = NULL;
  char *config = NULL, *budget = NULL;
  ng_history history = {0};
  ng_objective obj = {0};
  /* Every rank validates the whole configuration; the statuses are then agreed on (in ng_run_engine), so that
   * a failure on some ranks only (memory, a file) still ends all of them together. */
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
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;

  ng_run_spec spec = {.config = config, .budget = budget, .max_evals = cfg->max_evals};
  ng_engine_result er;
  st = ng_run_engine(comm, &cfg->run, &spec, opt, &obj, rank == 0 ? &history : NULL, &er);
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
