/* `nograd retrofit` (see nograd/retrofit.h): the objective over knobs or an external evaluator, the run
 * through the engine under the run policy, the measurements before and after, and the bound.
 *
 * ng_app_retrofit is a sequence of phases over one rf_run: what is searched (the model's knobs, or a plain
 * vector for an evaluator), what measures it (the validation rows and the nn objective, or the evaluator),
 * the optimizer, the start's score, the search, the returned point's scores, and the bound. Fixed points are
 * measured with the engine's chunk reduction, so every number is the same for any number of ranks. */
#include "nograd/retrofit.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/candcache.h"
#include "nograd/app.h"
#include "nograd/ckpt.h"
#include "nograd/data.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/evaluator.h"
#include "nograd/knobs.h"
#include "nograd/metrics.h"
#include "nograd/nn.h"
#include "nograd/nn_objective.h"
#include "nograd/plugin.h"
#include "nograd/timer.h"

#define RF_SEP_ABOVE 100 /* dimensions above which the default is separable CMA-ES */

void ng_retrofit_config_init(ng_retrofit_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->metric = "error";
  cfg->threshold = NAN;
  cfg->budget = 200;
  cfg->sigma0 = 0.3;
  cfg->seed = 1;
  cfg->delta = 0.05;
  cfg->chunk_rows = 256;
  cfg->max_restarts = -1;
  cfg->nchunks = 1;
}

double ng_retrofit_log_outputs(size_t lambda, int64_t generations) {
  if (generations < 1 || lambda < 1) return 0;
  return (double)(generations - 1) * lgamma((double)lambda + 1.0) + log((double)generations * (double)lambda);
}

double ng_retrofit_bound(double log_outputs, double delta, size_t T, const size_t *class_rows, size_t C) {
  if (!class_rows) return T ? sqrt((log_outputs + log(2.0 / delta)) / (2.0 * (double)T)) : INFINITY;
  double worst = 0;
  for (size_t c = 0; c < C; c++) {
    if (!class_rows[c]) continue; /* a class absent from the validation rows adds no term */
    double e = sqrt((log_outputs + log(2.0 * (double)C / delta)) / (2.0 * (double)class_rows[c]));
    if (e > worst) worst = e;
  }
  return worst;
}

/* ------------------------------------------------------------------------------------------------------ */

/* One run: everything the phases share. */
typedef struct {
  const ng_retrofit_config *cfg;
  ng_model *model;
  ng_knobs *knobs;
  ng_nn_objective *obj; /* the validation metric (model runs) */
  ng_evaluator *ev;     /* or the external evaluator */
  const ng_metric_def *metric;
  ng_nn_loss loss;
  ng_nn_objective_config oc; /* how the metric is measured (val, test) */
  size_t n, nparams;
  double *x0, *lo, *hi;
  bool bounded;
  const char *optimizer;
  bool rank_based; /* the optimizer sees only rankings (the bound holds) */
  ng_opt *opt;     /* rank 0 */
  int64_t max_evals;
  /* the validation rows: all of --val, or a --val-size subset in a per-rank temporary file */
  char tmpdir[4096], valpath[4200];
  size_t *class_rows, C, T;
  ng__cand_cache cand; /* the knobs applied to the model, once per candidate and generation */
  double written_f;    /* anytime: the metric of the model at --out (rank 0) */
} rf_run;

static void rf_free(rf_run *r) {
  if (r->tmpdir[0]) {
    remove(r->valpath);
    rmdir(r->tmpdir);
  }
  ng_opt_destroy(&r->opt);
  ng_model_destroy(&r->model);
  ng_knobs_destroy(&r->knobs);
  ng_nn_objective_destroy(&r->obj);
  ng_evaluator_close(&r->ev);
  ng__cand_cache_free(&r->cand);
  free(r->class_rows);
  free(r->x0);
  free(r->lo);
  free(r->hi);
}

/* The knobs at x applied to the model: its parameters and the threshold knob's value (NaN without one, and
 * for cross-entropy, a loss of probabilities that no decision enters). */
static void apply_knobs(const rf_run *r, const double *x, float *params, double *threshold) {
  *threshold = NAN;
  ng_knobs_apply(r->knobs, ng_model_params_const(r->model), x, params, threshold);
  if (r->loss == NG_NN_LOSS_CROSS_ENTROPY) *threshold = NAN;
}

static int rf_load(void *ctx, size_t first_chunk, size_t count) {
  rf_run *r = ctx;
  return ng_nn_objective_load(r->obj, first_chunk, count);
}

static int rf_eval_stats(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                         double *stats) {
  rf_run *r = ctx;
  double *thr;
  float *pf;
  bool fresh;
  NG_CALL(ng__cand_slot(&r->cand, generation, k, 1, r->nparams, "retrofit", &thr, &pf, &fresh));
  if (fresh) {
    apply_knobs(r, x, pf, thr);
    ng__cand_done(&r->cand, k);
  }
  return ng_nn_objective_eval_params(r->obj, pf, *thr, chunk, stats);
}

static double rf_finish(void *ctx, const double *stats) {
  rf_run *r = ctx;
  return ng_nn_objective_finish(r->obj, stats);
}

/* The retrofitted model of x: the model with the knobs applied (and the threshold stored). */
static int model_of(const rf_run *r, const double *x, ng_model **out) {
  NG_CALL(ng_model_clone(r->model, out));
  double thr = NAN;
  ng_knobs_apply(r->knobs, ng_model_params_const(r->model), x, ng_model_params(*out), &thr);
  if (!isnan(thr)) NG_CALL(ng_model_set_threshold(*out, thr));
  return NG_OK;
}

/* Rank 0, after every generation: the anytime model. */
static int rf_on_generation(void *ctx, const ng_opt *opt) {
  rf_run *r = ctx;
  double f;
  const double *x = ng_opt_best(opt, &f);
  if (!r->model || !r->cfg->out || !(f < r->written_f)) return NG_OK;
  ng_model *m = NULL;
  int st = model_of(r, x, &m);
  if (st == NG_OK) st = ng_model_write(m, r->cfg->out);
  ng_model_destroy(&m);
  if (st == NG_OK) r->written_f = f;
  return st;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Fixed points, measured through the engine's chunk reduction. */

typedef struct {
  ng_nn_objective *o;
  const float *params;
  double threshold;
} metric_point;

static int metric_chunk(void *ctx, size_t chunk, double *stats) {
  metric_point *p = ctx;
  return ng_nn_objective_eval_params(p->o, p->params, p->threshold, chunk, stats);
}

/* The metric of the knobs at x on the dataset at `path`, the same on every rank. Collective. */
static int measure(MPI_Comm comm, const rf_run *r, const char *path, const double *x, double *value) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  metric_point p = {NULL, NULL, NAN};
  float *params = malloc((r->nparams + 1) * sizeof *params);
  double *sum = NULL;
  int st = params ? ng_nn_objective_create(r->model, path, &r->oc, &p.o)
                  : ng_error(NG_ENOMEM, "retrofit: out of memory");
  size_t nch = 0, first, count;
  if (st == NG_OK) {
    apply_knobs(r, x, params, &p.threshold);
    p.params = params;
    nch = ng_nn_objective_chunks(p.o);
    ng_engine_block(nch, (size_t)size, (size_t)rank, &first, &count); /* ng_engine_measure's block */
    st = ng_nn_objective_load(p.o, first, count);
  }
  if (st == NG_OK && !(sum = calloc(ng_nn_objective_nstats(p.o) + 1, sizeof *sum)))
    st = ng_error(NG_ENOMEM, "retrofit: out of memory");
  st = ng_engine_agree(comm, st);
  if (st == NG_OK) st = ng_engine_measure(comm, nch, ng_nn_objective_nstats(p.o), metric_chunk, &p, sum);
  if (st == NG_OK) *value = ng_nn_objective_finish(p.o, sum);
  ng_nn_objective_destroy(&p.o);
  free(sum);
  free(params);
  return st;
}

typedef struct {
  ng_evaluator *ev;
  const double *x;
} start_point;

/* The evaluator's (loss, count) of the start on one chunk, as candidate 0 of generation
 * NG_FRAME_GENERATION_START. A failed request that the evaluator absorbs gives NaN. */
static int start_chunk(void *ctx, size_t chunk, double *part) {
  start_point *p = ctx;
  int st = ng_evaluator_eval(p->ev, p->x, 1, NG_FRAME_GENERATION_START, chunk, 0, &part[0], &part[1]);
  if (st != NG_OK && st != NG_ENOMEM) {
    char msg[2048]; /* ng_error formats into the buffer ng_errmsg points to */
    snprintf(msg, sizeof msg, "%s", ng_errmsg());
    st = ng_error(st, "%s (scoring the start, before the search)", msg);
  }
  return st;
}

/* The validation metric at x, and the test metric when there is a test set (else *test is left alone); or,
 * with an evaluator, its score of the start (x0). Collective. */
static int score(MPI_Comm comm, const rf_run *r, const double *x, double *val, double *test) {
  const ng_retrofit_config *cfg = r->cfg;
  if (cfg->evaluator) {
    start_point p = {r->ev, x};
    double sum[2];
    NG_CALL(ng_engine_measure(comm, cfg->nchunks, 2, start_chunk, &p, sum));
    *val = sum[1] > 0 ? sum[0] / sum[1] : NAN;
    return NG_OK;
  }
  NG_CALL(measure(comm, r, r->valpath, x, val));
  return cfg->test ? measure(comm, r, cfg->test, x, test) : NG_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The phases. */

/* The options that conflict, checked alike on every rank. */
static int check_config(const ng_retrofit_config *cfg) {
  /* the options that only make sense when nograd measures the metric itself */
  const char *metric_option = cfg->val ? "--val" : cfg->val_size ? "--val-size" : cfg->test ? "--test" : NULL;
  if (!cfg->model && !cfg->evaluator)
    return ng_error(NG_EINVAL, "retrofit: a model (MODEL.h5) is needed, or an --evaluator with --dim");
  if (cfg->model && !cfg->params)
    return ng_error(NG_EINVAL, "retrofit: --params is required with a model (see --list-params MODEL.h5)");
  if (cfg->model && !cfg->evaluator && !cfg->val)
    return ng_error(NG_EINVAL, "retrofit: --val is required (the validation set the metric is measured on)");
  if (!cfg->model && cfg->dim == 0)
    return ng_error(NG_EINVAL, "retrofit: --dim N is required with an evaluator and no model");
  if (!cfg->model && cfg->params)
    return ng_error(
        NG_EINVAL,
        "retrofit: --params names knobs of a model, and there is none (--dim runs search a plain vector)");
  if (!cfg->model && cfg->out)
    return ng_error(
        NG_EINVAL,
        "retrofit: --out writes the retrofitted model, and there is none (the best vector is in the "
        "report, and in --json's \"x\")");
  if (cfg->model && (cfg->dim || cfg->x0))
    return ng_error(
        NG_EINVAL,
        "retrofit: %s is for runs without a model (with a model, --params gives the dimension and the "
        "knobs' current values are the start)",
        cfg->dim ? "--dim" : "--x0");
  if (cfg->evaluator && metric_option)
    return ng_error(
        NG_EINVAL,
        "retrofit: %s and --evaluator exclude each other: the evaluator's score replaces the metric, so "
        "nograd measures nothing on a validation or test set (leave out one of them)",
        metric_option);
  if (!(cfg->delta > 0 && cfg->delta < 1))
    return ng_error(NG_EINVAL, "--delta: expected a number in (0, 1), got %g", cfg->delta);
  if (!cfg->chunk_rows || !cfg->nchunks || !(cfg->sigma0 > 0) || cfg->budget < 1)
    return ng_error(NG_EINVAL,
                    "retrofit: chunk rows and chunks must be >= 1, sigma0 > 0 and the budget >= 1 "
                    "(ng_retrofit_config_init)");
  return NG_OK;
}

/* What is searched: the model's knobs (their current values the start, their bounds), or a plain vector. */
static int open_search(rf_run *r) {
  const ng_retrofit_config *cfg = r->cfg;
  if (cfg->model) NG_CALL(ng_model_read(cfg->model, &r->model));
  if (r->model) NG_CALL(ng_knobs_parse(r->model, cfg->params, &r->knobs));
  r->n = r->knobs ? ng_knobs_dim(r->knobs) : cfg->dim;
  r->nparams = r->model ? ng_model_nparams(r->model) : 0;
  r->x0 = calloc(r->n, sizeof *r->x0);
  r->lo = malloc(r->n * sizeof *r->lo);
  r->hi = malloc(r->n * sizeof *r->hi);
  if (!r->x0 || !r->lo || !r->hi)
    return ng_error(NG_ENOMEM, "retrofit: out of memory for %zu dimensions", r->n);
  if (r->knobs) {
    ng_knobs_x0(r->knobs, r->x0);
    ng_knobs_bounds(r->knobs, r->lo, r->hi);
    for (size_t i = 0; i < r->n; i++)
      r->bounded |= isfinite(r->lo[i]) || isfinite(r->hi[i]);
  } else if (cfg->x0) {
    memcpy(r->x0, cfg->x0, r->n * sizeof *r->x0);
  }
  return NG_OK;
}

/* The validation rows: all of --val, or (--val-size) a stratified subset written by each rank to its own
 * temporary file (ranks need not share a file system); the class counts of the rows used, for the bound. */
static int open_validation(rf_run *r) {
  const ng_retrofit_config *cfg = r->cfg;
  ng_data D = {0}, S = {0};
  NG_CALL(ng_data_load(cfg->val, &D));
  const ng_data *use = &D;
  int st = NG_OK;
  snprintf(r->valpath, sizeof r->valpath, "%s", cfg->val);
  if (cfg->val_size) {
    st = ng_data_subset(&D, cfg->val_size, cfg->seed, &S);
    if (st != NG_OK) {
      char msg[600];
      snprintf(msg, sizeof msg, "%s", ng_errmsg());
      st = ng_error(st, "--val-size %zu: %s: %s", cfg->val_size, cfg->val, msg);
    }
    const char *base = getenv("TMPDIR");
    if (st == NG_OK) {
      snprintf(r->tmpdir, sizeof r->tmpdir, "%s/nograd-retrofit-XXXXXX", base && *base ? base : "/tmp");
      if (!mkdtemp(r->tmpdir)) {
        st = ng_error(NG_EIO, "--val-size: cannot create a temporary directory under %s",
                      base && *base ? base : "/tmp");
        r->tmpdir[0] = '\0';
      }
    }
    if (st == NG_OK) {
      snprintf(r->valpath, sizeof r->valpath, "%s/val.h5", r->tmpdir);
      st = ng_data_write(r->valpath, &S);
      use = &S;
    }
  }
  if (st == NG_OK) {
    r->T = use->n;
    r->C = use->t == 0 && use->classes > 0 ? (size_t)use->classes : 0;
    if (!(r->class_rows = calloc(r->C + 1, sizeof *r->class_rows)))
      st = ng_error(NG_ENOMEM, "retrofit: out of memory");
    for (size_t i = 0; st == NG_OK && r->C && i < use->n; i++)
      r->class_rows[use->y[i]]++;
  }
  ng_data_free(&D);
  ng_data_free(&S);
  return st;
}

/* What measures a point: the metric (a loss of the nn objective) on the validation rows. */
static int open_metric(rf_run *r) {
  const ng_retrofit_config *cfg = r->cfg;
  r->metric = ng_metric_def_find(cfg->metric);
  NG_CALL(ng_nn_loss_from_name(cfg->metric, &r->loss));
  if (r->loss == NG_NN_LOSS_MSE)
    return ng_error(NG_EINVAL, "--metric mse: retrofit tunes classifiers against an exact metric");
  NG_CALL(open_validation(r));
  double thr = cfg->threshold;
  if (isnan(thr)) thr = ng_model_threshold(r->model);
  if (r->loss == NG_NN_LOSS_CROSS_ENTROPY) thr = NAN; /* a loss of probabilities: no decision */
  if (isnan(thr) && r->loss == NG_NN_LOSS_THRESHOLD_ERROR) thr = 0.5;
  r->oc = (ng_nn_objective_config){.chunk_rows = cfg->chunk_rows,
                                   .loss = r->loss,
                                   .threshold = isnan(thr) ? 0.5 : thr,
                                   .use_threshold = !isnan(thr) && r->loss != NG_NN_LOSS_THRESHOLD_ERROR};
  return ng_nn_objective_create(r->model, r->valpath, &r->oc, &r->obj);
}

/* The search: CMA-ES (or as named) from x0 within the knobs' bounds, at most max_evals evaluations.
 * Comparison-based optimizers get no stopping rule that reads loss values (the bound needs it). */
static int make_optimizer(const rf_run *r, int64_t max_evals, ng_opt **out) {
  const ng_retrofit_config *cfg = r->cfg;
  ng_opt *opt = NULL;
  int st = ng_opt_create(r->optimizer, r->n, &opt);
  if (st == NG_OK) st = ng_opt_set_x0(opt, r->x0);
  if (st == NG_OK) st = ng_opt_set_sigma0(opt, cfg->sigma0);
  if (st == NG_OK) st = ng_opt_set_seed(opt, cfg->seed);
  if (st == NG_OK) st = ng_opt_set_popsize(opt, cfg->popsize);
  if (st == NG_OK) st = ng_opt_set_max_evals(opt, max_evals);
  if (st == NG_OK && r->bounded) st = ng_opt_set_bounds(opt, r->lo, r->hi);
  if (st == NG_OK && ng_opt_rank_based(opt)) { /* off: the rules that read loss values (the bound needs it) */
    const char *names[] = {"tolfun", "tolfunhist", "tolstagnation", "tolflatfitness"};
    const double values[] = {0, 0, 1e18, 1e9};
    for (size_t i = 0; i < 4 && st == NG_OK; i++)
      st = ng_opt_set_param(opt, names[i], values[i]);
  }
  if (st == NG_OK) st = ng_opt_setup(opt);
  if (st != NG_OK) ng_opt_destroy(&opt);
  *out = opt;
  return st;
}

/* --budget is a ceiling: the run takes floor(budget / lambda) whole generations. lambda is known after setup,
 * so a first optimizer tells it and a second one gets the budget cut to whole generations. */
static int open_optimizer(rf_run *r, ng_retrofit_result *res) {
  const ng_retrofit_config *cfg = r->cfg;
  r->optimizer = cfg->optimizer ? cfg->optimizer : (r->n > RF_SEP_ABOVE ? "sepcmaes" : "cmaes");
  ng_opt *probe = NULL;
  NG_CALL(make_optimizer(r, cfg->budget, &probe));
  res->lambda = ng_opt_popsize(probe);
  ng_opt_destroy(&probe);
  if (cfg->budget < (int64_t)res->lambda)
    return ng_error(
        NG_EINVAL,
        "--budget %lld is smaller than one generation of %zu candidates (--popsize, or the optimizer's "
        "default for %zu dimensions)",
        (long long)cfg->budget, res->lambda, r->n);
  r->max_evals = cfg->budget / (int64_t)res->lambda * (int64_t)res->lambda;
  NG_CALL(make_optimizer(r, r->max_evals, &r->opt));
  r->rank_based = ng_opt_rank_based(r->opt);
  return NG_OK;
}

static int open_evaluator(int rank, int size, rf_run *r) {
  const ng_retrofit_config *cfg = r->cfg;
  ng_evaluator_config ecfg;
  ng_evaluator_config_init(&ecfg);
  ecfg.n = r->n;
  ecfg.nchunks = cfg->nchunks;
  ecfg.model_path = cfg->model;
  ecfg.rank = rank;
  ecfg.nranks = size;
  if (cfg->eval_timeout > 0) ecfg.timeout = cfg->eval_timeout;
  if (cfg->eval_start_timeout > 0) ecfg.start_timeout = cfg->eval_start_timeout;
  if (cfg->max_restarts >= 0) ecfg.max_restarts = cfg->max_restarts;
  ecfg.log = rank == 0 ? stderr : NULL;
  return ng_evaluator_open(cfg->evaluator, &ecfg, &r->ev);
}

/* The configuration text of the checkpoint: what a resume must match. */
static void config_text(const rf_run *r, char *t, size_t len) {
  const ng_retrofit_config *cfg = r->cfg;
  snprintf(
      t, len,
      "model=%s\nparams=%s\nval=%s\nval-size=%zu\nmetric=%s\noptimizer=%s\nn=%zu\npopsize=%zu\nsigma0=%.17g\n"
      "seed=%llu\nchunk-rows=%zu\nevaluator=%s\n",
      cfg->model ? cfg->model : "", cfg->params ? cfg->params : "", cfg->val ? cfg->val : "", cfg->val_size,
      cfg->metric, r->optimizer, r->n, cfg->popsize, cfg->sigma0, (unsigned long long)cfg->seed,
      cfg->chunk_rows, cfg->evaluator ? cfg->evaluator : "");
}

/* The search through the engine, under the run policy. */
static int search(MPI_Comm comm, rf_run *r, ng_retrofit_result *res) {
  const ng_retrofit_config *cfg = r->cfg;
  int rank;
  MPI_Comm_rank(comm, &rank);
  ng_objective obj;
  if (cfg->evaluator)
    ng_evaluator_objective(r->ev, &obj);
  else
    obj = (ng_objective){.n = r->n,
                         .nchunks = ng_nn_objective_chunks(r->obj),
                         .load = rf_load,
                         .ctx = r,
                         .nstats = ng_nn_objective_nstats(r->obj),
                         .eval_stats = rf_eval_stats,
                         .finish = rf_finish};
  char config[8192], budget[96];
  config_text(r, config, sizeof config);
  snprintf(budget, sizeof budget, "budget=%lld\nevaluations=%lld\n", (long long)cfg->budget,
           (long long)r->max_evals);
  const char *inputs[2];
  size_t ninputs = 0;
  if (cfg->model) inputs[ninputs++] = cfg->model;
  if (cfg->val) inputs[ninputs++] = cfg->val;
  ng_run_spec spec = {.config = config,
                      .budget = budget,
                      .max_evals = r->max_evals,
                      .inputs = inputs,
                      .ninputs = ninputs,
                      .on_generation = r->model ? rf_on_generation : NULL,
                      .on_generation_ctx = r};
  ng_history history = {0};
  ng_engine_result er = {0};
  int st = ng_run_engine(comm, &cfg->run, &spec, r->opt, &obj, rank == 0 ? &history : NULL, &er);
  ng_history_free(&history);
  res->signalled = er.signalled;
  return st;
}

/* The returned point (rank 0's best, or the start when no candidate beat it), on every rank. */
static int best_point(MPI_Comm comm, rf_run *r, ng_retrofit_result *res) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  double *xb = calloc(r->n, sizeof *xb);
  if (!xb) return ng_engine_agree(comm, ng_error(NG_ENOMEM, "retrofit: out of memory"));
  if (rank == 0) {
    double f;
    memcpy(xb, ng_opt_best(r->opt, &f), r->n * sizeof *xb);
    /* the start is a candidate too: a search that found nothing better returns the model unchanged (an
     * evaluator that could not score the start, NaN, is beaten by any candidate it could score) */
    if (!(f < res->val_before) && !(r->cfg->evaluator && isnan(res->val_before))) {
      memcpy(xb, r->x0, r->n * sizeof *xb);
      res->kept_start = 1;
      f = res->val_before;
    }
    ng_opt_info in;
    ng_opt_get_info(r->opt, &in);
    res->evaluations = in.evaluations;
    res->generations = in.generation;
    res->stop = ng_stop_name(in.stop);
    if (r->cfg->evaluator) res->val_after = f;
  }
  MPI_Bcast(xb, (int)r->n, MPI_DOUBLE, 0, comm);
  MPI_Bcast(&res->kept_start, 1, MPI_INT, 0, comm);
  res->x_best = xb;
  return NG_OK;
}

/* The bound of the header's comment, or why there is none. */
static void bound(const rf_run *r, ng_retrofit_result *res) {
  const char *label = r->metric ? r->metric->label : r->cfg->metric;
  unsigned flags = r->metric ? r->metric->flags : 0;
  if (!r->rank_based)
    snprintf(res->no_bound, sizeof res->no_bound,
             "%s steps along loss differences, not rankings: the count of possible outputs does not hold",
             strcmp(r->optimizer, "spsa") == 0 ? "SPSA" : r->optimizer);
  else if (r->cfg->evaluator)
    snprintf(res->no_bound, sizeof res->no_bound,
             "an external evaluator's scores are not known to be a mean of bounded terms over examples");
  else if (!(flags & (NG_METRIC_F_MEAN | NG_METRIC_F_CLASS_MEAN)))
    snprintf(res->no_bound, sizeof res->no_bound, "%s is not a mean over examples", label);
  else if (!(flags & NG_METRIC_F_BOUNDED))
    snprintf(res->no_bound, sizeof res->no_bound, "%s is not bounded in [0, 1]", label);
  if (!res->no_bound[0]) { /* a run stopped by a signal too: the count covers the generations it ran */
    /* ... and the start, which the returned model may be: N + 1 outputs */
    double ln = ng_retrofit_log_outputs(res->lambda, res->generations);
    res->log_outputs = ln + log1p(exp(-ln));
    res->bound = ng_retrofit_bound(res->log_outputs, r->cfg->delta, r->T,
                                   flags & NG_METRIC_F_CLASS_MEAN ? r->class_rows : NULL, r->C);
  }
  res->val_rows = r->T;
}

/* Rank 0, after a run that ended: its checkpoint once more, with /result added (the metric before and after,
 * the bound and its inputs, or why there is none), so that the file tells what retrofit measured; nograd plot
 * draws it. The rest is read back and written as it was, and the engine's last write becomes PATH.prev. */
static int write_result(const rf_run *r, const ng_retrofit_result *res) {
  const char *path = r->cfg->run.checkpoint;
  ng_ckpt_info info = {0};
  ng_state *opt = NULL, *result = NULL;
  ng_history history = {0};
  size_t n = r->n;
  double best_f, *best_x = malloc(n * sizeof *best_x);
  int st = best_x ? NG_OK : ng_error(NG_ENOMEM, "retrofit: out of memory");
  if (st == NG_OK) st = ng_state_create(&opt);
  if (st == NG_OK) st = ng_state_create(&result);
  if (st == NG_OK) st = ng_ckpt_read(path, &info, opt, &history, best_x, &n, &best_f, NULL);
  const char *names[] = {"val_before", "val_after",   "test_before", "test_after",
                         "bound",      "log_outputs", "delta"};
  const double values[] = {res->val_before, res->val_after,   res->test_before, res->test_after,
                           res->bound,      res->log_outputs, r->cfg->delta};
  for (size_t i = 0; i < sizeof values / sizeof values[0] && st == NG_OK; i++)
    st = ng_state_put_scalar(result, names[i], values[i]);
  if (st == NG_OK) st = ng_state_put_str(result, "metric", r->cfg->evaluator ? "evaluator" : r->cfg->metric);
  if (st == NG_OK && res->no_bound[0]) st = ng_state_put_str(result, "no_bound", res->no_bound);
  if (st == NG_OK) st = ng_state_put_int(result, "val_rows", (int64_t)res->val_rows);
  if (st == NG_OK) st = ng_state_put_int(result, "kept_start", res->kept_start);
  ng_ckpt_meta meta = {.program_version = info.program_version,
                       .command_line = info.command_line,
                       .config = info.config,
                       .budget = info.budget,
                       .optimizer = info.optimizer,
                       .ranks = info.ranks,
                       .groups = info.groups,
                       .input_files = (const char *const *)info.input_files,
                       .input_checksums = (const char *const *)info.input_checksums,
                       .ninputs = info.ninputs,
                       .blas_core = info.blas_core,
                       .blas_config = info.blas_config,
                       .cpu_model = info.cpu_model};
  if (st == NG_OK) st = ng_ckpt_write(path, &meta, opt, &history, best_x, n, best_f, result);
  ng_ckpt_info_free(&info);
  ng_history_free(&history);
  ng_state_destroy(&opt);
  ng_state_destroy(&result);
  free(best_x);
  return st;
}

int ng_app_retrofit(MPI_Comm comm, const ng_retrofit_config *cfg, ng_retrofit_result *res) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(res, 0, sizeof *res);
  res->val_before = res->val_after = res->test_before = res->test_after = NAN;
  res->log_outputs = res->bound = NAN;
  double t0 = ng_time_now();
  rf_run r = {.cfg = cfg, .written_f = INFINITY};

  /* what is searched, what measures it, and how: every rank alike, then agreed */
  int st = check_config(cfg);
  if (st == NG_OK) st = open_search(&r);
  res->n = r.n;
  if (st == NG_OK && !cfg->evaluator) st = open_metric(&r);
  if (st == NG_OK) st = open_optimizer(&r, res);
  if (st == NG_OK && cfg->evaluator) st = open_evaluator(rank, size, &r);
  if (rank != 0) ng_opt_destroy(&r.opt);
  NG_TRY(st, ng_engine_agree(comm, st), out);

  /* before: the start is scored outside the budget; the model at --out only ever improves on it */
  NG_TRY(st, score(comm, &r, r.x0, &res->val_before, &res->test_before), out);
  r.written_f = isnan(res->val_before) ? INFINITY : res->val_before;

  NG_TRY(st, search(comm, &r, res), out);
  NG_TRY(st, best_point(comm, &r, res), out);
  if (res->signalled && cfg->run.checkpoint) goto out; /* resumable: the anytime model is at --out */

  /* after: the returned point's scores, the final model, the bound */
  if (!cfg->evaluator) NG_TRY(st, score(comm, &r, res->x_best, &res->val_after, &res->test_after), out);
  if (r.model && cfg->out && rank == 0) { /* the final model, also when no generation improved on x0 */
    ng_model *m = NULL;
    st = model_of(&r, res->x_best, &m);
    if (st == NG_OK) st = ng_model_write(m, cfg->out);
    ng_model_destroy(&m);
  }
  NG_TRY(st, ng_engine_agree(comm, st), out);
  bound(&r, res);
  if (rank == 0 && cfg->run.checkpoint) st = write_result(&r, res);
  NG_TRY(st, ng_engine_agree(comm, st), out);
  res->seconds = ng_time_now() - t0;
out:
  if (st != NG_OK) {
    free(res->x_best);
    res->x_best = NULL;
  }
  rf_free(&r);
  return st;
}
