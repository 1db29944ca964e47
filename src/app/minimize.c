/* `nograd minimize`: a benchmark function, an optimizer, and the distributed loop between them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nograd/app.h"
#include "nograd/dist.h"
#include "nograd/error.h"
#include "nograd/functions.h"

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

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
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
  for (size_t i = 0; i < cfg->nparams; i++) NG_TRY(st, ng_opt_set_param(opt, cfg->param_names[i], cfg->param_values[i]), fail);
  NG_TRY(st, ng_opt_setup(opt), fail);
  *out = opt;
  return NG_OK;
fail:
  ng_opt_destroy(&opt);
  return st;
}

typedef struct {
  FILE *out;
  double t0, last;
} progress_ctx;

static int progress(void *ctx, const ng_opt *opt) {
  progress_ctx *p = ctx;
  double t = now();
  if (t - p->last < 1.0 && ng_opt_stop(opt) == NG_STOP_NONE) return NG_OK; /* at most one line a second */
  p->last = t;
  ng_opt_info in;
  ng_opt_get_info(opt, &in);
  fprintf(p->out, "gen %6lld  evals %9lld  best %.6e  median %.6e  sigma %.3e  evals/s %.0f\n",
          (long long)in.generation, (long long)in.evaluations, in.best_f, in.gen_median_f, in.sigma,
          (double)in.evaluations / (t - p->t0));
  return NG_OK;
}

int ng_app_minimize(MPI_Comm comm, const ng_minimize_config *cfg, ng_minimize_result *res) {
  int rank, st;
  MPI_Comm_rank(comm, &rank);
  fn_ctx fc = {0};
  ng_opt *opt = NULL;
  double t0 = now();
  /* every rank validates the whole configuration, so that all fail together without communicating */
  NG_TRY(st, ng_fn_create(cfg->function, cfg->dim, cfg->seed, &fc.fn), out);
  NG_TRY(st, ng_app_make_optimizer(cfg, &opt), out);
  if (rank != 0) ng_opt_destroy(&opt);
  fc.work = malloc(cfg->dim * sizeof *fc.work);
  if (!fc.work) {
    st = ng_error(NG_ENOMEM, "out of memory");
    goto out;
  }
  ng_objective obj = {cfg->dim, 1, eval_fn, &fc};
  progress_ctx pc = {cfg->progress, t0, t0};
  st = ng_dist_run(comm, opt, &obj, cfg->progress ? progress : NULL, &pc);
  if (st == NG_OK && rank == 0) {
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    res->evaluations = in.evaluations;
    res->generations = in.generation;
    res->restarts = in.restarts;
    res->nonfinite = in.nonfinite;
    res->stop = in.stop;
    const double *xb = ng_opt_best(opt, &res->f_best);
    if (res->x_best) memcpy(res->x_best, xb, cfg->dim * sizeof *xb);
    res->seconds = now() - t0;
  }
out:
  free(fc.work);
  ng_fn_destroy(&fc.fn);
  ng_opt_destroy(&opt);
  return st;
}
