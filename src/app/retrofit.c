/* `nograd retrofit` (see nograd/retrofit.h): the objective over knobs or an external evaluator, the run
 * through the engine, the measurements before and after, and the bound. */
#include "nograd/retrofit.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nograd/app.h"
#include "nograd/data.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/evaluator.h"
#include "nograd/knobs.h"
#include "nograd/nn.h"
#include "nograd/nn_objective.h"
#include "nograd/plugin.h"
#include "nograd/rng.h"
#include "nograd/timer.h"

#define RF_DEFAULT_CHUNK 256
#define RF_DEFAULT_SIGMA \
  0.3 /* about a quarter of the useful range of a scale, an offset in logits, a threshold */
#define RF_DEFAULT_DELTA 0.05
#define RF_SEP_ABOVE 100 /* dimensions above which the default is separable CMA-ES */

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

typedef struct {
  ng_model *model;
  ng_knobs *knobs;
  ng_nn_objective *obj; /* the validation metric (model runs) */
  ng_evaluator *ev;     /* or the external evaluator */
  ng_objective ev_obj;  /* its per-candidate bridge */
  size_t n, nparams;
  /* candidates mixed once per generation, whatever the order of chunks */
  uint64_t gen;
  size_t ncand;
  float **pf;
  double *thr;
  bool *ok;
  /* anytime: the best so far, written to cfg->out by rank 0 after a generation that improves it */
  double written_f;
  bool cfg_ce; /* cross-entropy: the threshold knob (if any) does not enter the loss */
  const ng_retrofit_config *cfg;
} rf_ctx;

static void rf_free(rf_ctx *c) {
  ng_model_destroy(&c->model);
  ng_knobs_destroy(&c->knobs);
  ng_nn_objective_destroy(&c->obj);
  ng_evaluator_close(&c->ev);
  for (size_t k = 0; k < c->ncand; k++)
    free(c->pf[k]);
  free(c->pf);
  free(c->thr);
  free(c->ok);
  memset(c, 0, sizeof *c);
}

static int rf_candidate(rf_ctx *c, const double *x, uint64_t generation, size_t k) {
  if (generation != c->gen)
    for (size_t i = 0; i < c->ncand; i++)
      c->ok[i] = false;
  c->gen = generation;
  if (k >= c->ncand) {
    size_t n = k + 1;
    float **pf = realloc(c->pf, n * sizeof *pf);
    if (pf) c->pf = pf;
    double *thr = realloc(c->thr, n * sizeof *thr);
    if (thr) c->thr = thr;
    bool *ok = realloc(c->ok, n * sizeof *ok);
    if (ok) c->ok = ok;
    if (!pf || !thr || !ok) return ng_error(NG_ENOMEM, "retrofit: out of memory for %zu candidates", n);
    for (size_t i = c->ncand; i < n; i++) {
      c->pf[i] = malloc((c->nparams + 1) * sizeof **c->pf);
      c->ok[i] = false;
      c->ncand = i + 1;
      if (!c->pf[i]) return ng_error(NG_ENOMEM, "retrofit: out of memory for candidates");
    }
  }
  if (!c->ok[k]) {
    ng_knobs_apply(c->knobs, ng_model_params_const(c->model), x, c->pf[k], &c->thr[k]);
    c->ok[k] = true;
  }
  return NG_OK;
}

static int rf_load(void *ctx, size_t first_chunk, size_t count) {
  rf_ctx *c = ctx;
  return ng_nn_objective_load(c->obj, first_chunk, count);
}

static int rf_eval_stats(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                         double *stats) {
  rf_ctx *c = ctx;
  NG_CALL(rf_candidate(c, x, generation, k));
  return ng_nn_objective_eval_params(c->obj, c->pf[k], c->cfg_ce ? NAN : c->thr[k], chunk, stats);
}

static double rf_finish(void *ctx, const double *stats) {
  rf_ctx *c = ctx;
  return ng_nn_objective_finish(c->obj, stats);
}

/* The retrofitted model of x: the model with the knobs applied (and the threshold stored). */
static int rf_model_of(const rf_ctx *c, const double *x, ng_model **out) {
  NG_CALL(ng_model_clone(c->model, out));
  double thr = NAN;
  ng_knobs_apply(c->knobs, ng_model_params_const(c->model), x, ng_model_params(*out), &thr);
  if (!isnan(thr)) NG_CALL(ng_model_set_threshold(*out, thr));
  return NG_OK;
}

/* Rank 0, after every generation: the anytime model. */
static int rf_on_generation(void *ctx, const ng_opt *opt) {
  rf_ctx *c = ctx;
  double f;
  const double *x = ng_opt_best(opt, &f);
  if (!c->model || !c->cfg->out || !(f < c->written_f)) return NG_OK;
  ng_model *m = NULL;
  int st = rf_model_of(c, x, &m);
  if (st == NG_OK) st = ng_model_write(m, c->cfg->out);
  ng_model_destroy(&m);
  if (st == NG_OK) c->written_f = f;
  return st;
}

/* ------------------------------------------------------------------------------------------------------ */
/* The metric of fixed parameters on a dataset, data-parallel, the same bits for any number of ranks. */

static int measure(MPI_Comm comm, const ng_model *m, const char *path, const ng_nn_objective_config *oc,
                   const float *params, double threshold, double *value) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  ng_nn_objective *o = NULL;
  double *part = NULL, *all = NULL, *sum = NULL;
  int *counts = NULL, *displs = NULL;
  size_t ns = 0, nch = 0, first = 0, count = 0;
  int st = ng_nn_objective_create(m, path, oc, &o);
  if (st == NG_OK) {
    ns = ng_nn_objective_nstats(o);
    nch = ng_nn_objective_chunks(o);
    ng_engine_block(nch, (size_t)size, (size_t)rank, &first, &count);
    st = ng_nn_objective_load(o, first, count);
  }
  if (st == NG_OK) {
    part = calloc(ns * count + 1, sizeof *part);
    all = malloc((ns * nch + 1) * sizeof *all);
    sum = calloc(ns + 1, sizeof *sum);
    counts = malloc((size_t)size * sizeof *counts);
    displs = malloc((size_t)size * sizeof *displs);
    if (!part || !all || !sum || !counts || !displs) st = ng_error(NG_ENOMEM, "retrofit: out of memory");
  }
  for (size_t i = 0; st == NG_OK && i < count; i++)
    st = ng_nn_objective_eval_params(o, params, threshold, first + i, part + i * ns);
  st = ng_engine_agree(comm, st);
  if (st == NG_OK) {
    for (int r = 0; r < size; r++) {
      size_t f, n;
      ng_engine_block(nch, (size_t)size, (size_t)r, &f, &n);
      counts[r] = (int)(ns * n);
      displs[r] = (int)(ns * f);
    }
    MPI_Gatherv(part, (int)(ns * count), MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, comm);
    double v = 0;
    if (rank == 0) {
      for (size_t i = 0; i < nch; i++)
        for (size_t j = 0; j < ns; j++)
          sum[j] += all[i * ns + j];
      v = ng_nn_objective_finish(o, sum);
    }
    MPI_Bcast(&v, 1, MPI_DOUBLE, 0, comm);
    *value = v;
  }
  ng_nn_objective_destroy(&o);
  free(part);
  free(all);
  free(sum);
  free(counts);
  free(displs);
  return st;
}

/* Collective: the metric of the model with the knobs at x on the validation set, and on the test set when
 * test is not NULL (else *test_value is left alone). */
static int measure_point(MPI_Comm comm, const rf_ctx *c, const double *x, const ng_nn_objective_config *oc,
                         const char *valpath, const char *test, double *val_value, double *test_value) {
  float *params = malloc((c->nparams + 1) * sizeof *params);
  double threshold = NAN;
  int st = params ? NG_OK : ng_error(NG_ENOMEM, "retrofit: out of memory");
  if (st == NG_OK) ng_knobs_apply(c->knobs, ng_model_params_const(c->model), x, params, &threshold);
  if (c->cfg_ce) threshold = NAN;
  st = ng_engine_agree(comm, st);
  if (st == NG_OK) st = measure(comm, c->model, valpath, oc, params, threshold, val_value);
  if (st == NG_OK && test) st = measure(comm, c->model, test, oc, params, threshold, test_value);
  free(params);
  return st;
}

/* The evaluator's score of the start x0, before the search (the start is a candidate too: see "after"),
 * reduced as the engine reduces a candidate's: each rank asks its own evaluator about its block of chunks
 * (as candidate 0 of generation NG_FRAME_GENERATION_START), rank 0 adds the (loss, count) pairs in chunk
 * order, and the score is their ratio, the same bits for any number of ranks. A failed request that the
 * evaluator absorbs gives NaN. Collective. */
static int score_start(MPI_Comm comm, ng_evaluator *ev, const double *x0, size_t nch, double *value) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  size_t first = 0, count = 0;
  ng_engine_block(nch, (size_t)size, (size_t)rank, &first, &count);
  double *part = calloc(2 * count + 1, sizeof *part), *all = malloc((2 * nch + 1) * sizeof *all);
  int *counts = malloc((size_t)size * sizeof *counts), *displs = malloc((size_t)size * sizeof *displs);
  int st = part && all && counts && displs ? NG_OK : ng_error(NG_ENOMEM, "retrofit: out of memory");
  for (size_t i = 0; st == NG_OK && i < count; i++)
    st =
        ng_evaluator_eval(ev, x0, 1, NG_FRAME_GENERATION_START, first + i, 0, &part[2 * i], &part[2 * i + 1]);
  if (st != NG_OK && st != NG_ENOMEM) {
    char msg[2048]; /* ng_error formats into the buffer ng_errmsg points to */
    snprintf(msg, sizeof msg, "%s", ng_errmsg());
    st = ng_error(st, "%s (scoring the start, before the search)", msg);
  }
  st = ng_engine_agree(comm, st);
  if (st == NG_OK) {
    for (int r = 0; r < size; r++) {
      size_t f, n;
      ng_engine_block(nch, (size_t)size, (size_t)r, &f, &n);
      counts[r] = (int)(2 * n);
      displs[r] = (int)(2 * f);
    }
    MPI_Gatherv(part, (int)(2 * count), MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, comm);
    double v = 0, sum = 0, cnt = 0;
    if (rank == 0) {
      for (size_t i = 0; i < nch; i++) {
        sum += all[2 * i];
        cnt += all[2 * i + 1];
      }
      v = cnt > 0 ? sum / cnt : NAN;
    }
    MPI_Bcast(&v, 1, MPI_DOUBLE, 0, comm);
    *value = v;
  }
  free(part);
  free(all);
  free(counts);
  free(displs);
  return st;
}

/* ------------------------------------------------------------------------------------------------------ */

/* The rows of a seeded, stratified subset of k of D's n rows, in their original order: each class gets
 * floor(k n_c / n) rows plus one for the largest remainders (ties: the lower class) until k are taken; a
 * class's rows are a Fisher-Yates draw from the stream (seed, NG_RNG_DATA, 1, class). */
static int stratified(const ng_data *D, size_t k, uint64_t seed, size_t *rows) {
  size_t C = (size_t)D->classes, n = D->n;
  size_t *count = calloc(C, sizeof *count), *quota = calloc(C, sizeof *quota), *idx = malloc(n * sizeof *idx);
  char *take = calloc(n, 1);
  double *rem = calloc(C, sizeof *rem);
  if (!count || !quota || !idx || !take || !rem) {
    free(count), free(quota), free(idx), free(take), free(rem);
    return ng_error(NG_ENOMEM, "--val-size: out of memory");
  }
  for (size_t i = 0; i < n; i++)
    count[D->y[i]]++;
  size_t given = 0;
  for (size_t c = 0; c < C; c++) {
    quota[c] = (size_t)((double)k * (double)count[c] / (double)n);
    rem[c] = (double)k * (double)count[c] / (double)n - (double)quota[c];
    given += quota[c];
  }
  while (given < k) {
    size_t best = C;
    for (size_t c = 0; c < C; c++)
      if (quota[c] < count[c] && (best == C || rem[c] > rem[best])) best = c;
    quota[best]++;
    rem[best] = -1;
    given++;
  }
  for (size_t c = 0; c < C; c++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if ((size_t)D->y[i] == c) idx[m++] = i;
    ng_rng r;
    ng_rng_init(&r, seed, NG_RNG_DATA, 1, (uint32_t)c);
    for (size_t j = 0; j < quota[c]; j++) { /* a partial Fisher-Yates shuffle */
      size_t t = j + (size_t)ng_rng_below(&r, m - j);
      size_t v = idx[t];
      idx[t] = idx[j];
      idx[j] = v;
      take[v] = 1;
    }
  }
  for (size_t i = 0, j = 0; i < n; i++)
    if (take[i]) rows[j++] = i;
  free(count), free(quota), free(idx), free(take), free(rem);
  return NG_OK;
}

/* The validation rows: all of --val, or (--val-size) a subset written by each rank to its own temporary file
 * (ranks need not share a file system); the class counts of the rows used, for the bound. */
static int validation_rows(const ng_retrofit_config *cfg, char *tmpdir, char *path, size_t len,
                           size_t **class_rows, size_t *C, size_t *T) {
  ng_data D = {0}, S = {0};
  NG_CALL(ng_data_load(cfg->val, &D));
  int st = NG_OK;
  const ng_data *use = &D;
  size_t *rows = NULL;
  if (cfg->val_size) {
    if (D.t != 0)
      st = ng_error(NG_EINVAL, "--val-size: %s has float targets (/y); a stratified subset needs labels",
                    cfg->val);
    else if (cfg->val_size > D.n)
      st = ng_error(NG_EINVAL, "--val-size %zu: %s has only %zu rows", cfg->val_size, cfg->val, D.n);
    else if (!(rows = malloc(cfg->val_size * sizeof *rows)))
      st = ng_error(NG_ENOMEM, "--val-size: out of memory");
    if (st == NG_OK) st = stratified(&D, cfg->val_size, cfg->seed ? cfg->seed : 1, rows);
    if (st == NG_OK) st = ng_data_alloc(&S, cfg->val_size, D.xrank, D.xdims, 0);
    if (st == NG_OK) {
      for (size_t i = 0; i < S.n; i++) {
        memcpy(S.x + i * S.d, D.x + rows[i] * D.d, D.d * sizeof *S.x);
        S.y[i] = D.y[rows[i]];
      }
      S.classes = D.classes;
      memcpy(S.name, D.name, sizeof S.name);
      memcpy(S.domain, D.domain, sizeof S.domain);
      if (D.mean && D.std) {
        S.mean = malloc(D.d * sizeof *S.mean);
        S.std = malloc(D.d * sizeof *S.std);
        if (!S.mean || !S.std) st = ng_error(NG_ENOMEM, "--val-size: out of memory");
        if (st == NG_OK) {
          memcpy(S.mean, D.mean, D.d * sizeof *S.mean);
          memcpy(S.std, D.std, D.d * sizeof *S.std);
        }
      }
    }
    if (st == NG_OK) {
      const char *base = getenv("TMPDIR");
      snprintf(tmpdir, 4096, "%s/nograd-retrofit-XXXXXX", base && *base ? base : "/tmp");
      if (!mkdtemp(tmpdir)) {
        st = ng_error(NG_EIO, "--val-size: cannot create a temporary directory under %s",
                      base && *base ? base : "/tmp");
        tmpdir[0] = '\0';
      }
    }
    if (st == NG_OK) {
      snprintf(path, len, "%s/val.h5", tmpdir);
      st = ng_data_write(path, &S);
      use = &S;
    }
  } else {
    snprintf(path, len, "%s", cfg->val);
  }
  if (st == NG_OK) {
    *T = use->n;
    *C = use->t == 0 && use->classes > 0 ? (size_t)use->classes : 0;
    *class_rows = calloc(*C + 1, sizeof **class_rows);
    if (!*class_rows) st = ng_error(NG_ENOMEM, "retrofit: out of memory");
    for (size_t i = 0; st == NG_OK && *C && i < use->n; i++)
      (*class_rows)[use->y[i]]++;
  }
  free(rows);
  ng_data_free(&D);
  ng_data_free(&S);
  return st;
}

static void remove_tmp(const char *tmpdir, const char *path) {
  if (!tmpdir[0]) return;
  remove(path);
  rmdir(tmpdir);
}

static char *config_text(const ng_retrofit_config *cfg, const char *optimizer, size_t n) {
  char *t = malloc(8192);
  if (!t) return NULL;
  snprintf(t, 8192,
           "model=%s\nparams=%s\nval=%s\nval-size=%zu\nmetric=%s\noptimizer=%s\nn=%zu\npopsize=%zu\n"
           "sigma0=%.17g\nseed=%llu\nchunk-rows=%zu\nevaluator=%s\n",
           cfg->model ? cfg->model : "", cfg->params ? cfg->params : "", cfg->val ? cfg->val : "",
           cfg->val_size, cfg->metric ? cfg->metric : "error", optimizer, n, cfg->popsize,
           cfg->sigma0 > 0 ? cfg->sigma0 : RF_DEFAULT_SIGMA, (unsigned long long)cfg->seed,
           cfg->chunk_rows ? cfg->chunk_rows : RF_DEFAULT_CHUNK, cfg->evaluator ? cfg->evaluator : "");
  return t;
}

/* The search: CMA-ES (or as named) from x0 within [lo, hi] (NULL: unbounded), at most max_evals
 * evaluations. Comparison-based optimizers get no stopping rule that reads loss values (the bound needs it).
 */
static int make_optimizer(const ng_retrofit_config *cfg, const char *optimizer, size_t n, const double *x0,
                          const double *lo, const double *hi, int64_t max_evals, ng_opt **out) {
  ng_opt *opt = NULL;
  int st = ng_opt_create(optimizer, n, &opt);
  if (st == NG_OK) st = ng_opt_set_x0(opt, x0);
  if (st == NG_OK) st = ng_opt_set_sigma0(opt, cfg->sigma0 > 0 ? cfg->sigma0 : RF_DEFAULT_SIGMA);
  if (st == NG_OK) st = ng_opt_set_seed(opt, cfg->seed ? cfg->seed : 1);
  if (st == NG_OK) st = ng_opt_set_popsize(opt, cfg->popsize);
  if (st == NG_OK) st = ng_opt_set_max_evals(opt, max_evals);
  if (st == NG_OK && lo) st = ng_opt_set_bounds(opt, lo, hi);
  if (st == NG_OK && strcmp(optimizer, "spsa") != 0) {
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

int ng_app_retrofit(MPI_Comm comm, const ng_retrofit_config *cfg, ng_retrofit_result *res) {
  int rank, size, st = NG_OK;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(res, 0, sizeof *res);
  res->val_before = res->val_after = res->test_before = res->test_after = NAN;
  res->log_outputs = res->bound = NAN;
  double t0 = ng_time_now();
  rf_ctx c = {.written_f = INFINITY, .cfg = cfg};
  ng_opt *opt = NULL;
  char tmpdir[4096] = "", valpath[4200] = "", *config = NULL;
  size_t *class_rows = NULL, C = 0, T = 0, chunk_rows = cfg->chunk_rows ? cfg->chunk_rows : RF_DEFAULT_CHUNK;
  double *x0 = NULL, *lo = NULL, *hi = NULL;
  ng_history history = {0};
  ng_nn_loss loss = NG_NN_LOSS_ERROR;
  const char *metric = cfg->metric ? cfg->metric : "error";
  double delta = cfg->delta > 0 ? cfg->delta : RF_DEFAULT_DELTA;

  /* ---- what is searched ---- */
  /* the options that only make sense when nograd measures the metric itself */
  const char *metric_option = cfg->val        ? "--val"
                              : cfg->val_size ? "--val-size"
                              : cfg->test     ? "--test"
                              : cfg->metric   ? "--metric"
                                              : NULL;
  if (!cfg->model && !cfg->evaluator)
    st = ng_error(NG_EINVAL, "retrofit: a model (MODEL.h5) is needed, or an --evaluator with --dim");
  else if (cfg->model && !cfg->params)
    st = ng_error(NG_EINVAL, "retrofit: --params is required with a model (see --list-params MODEL.h5)");
  else if (cfg->model && !cfg->evaluator && !cfg->val)
    st = ng_error(NG_EINVAL, "retrofit: --val is required (the validation set the metric is measured on)");
  else if (!cfg->model && cfg->dim == 0)
    st = ng_error(NG_EINVAL, "retrofit: --dim N is required with an evaluator and no model");
  else if (!cfg->model && cfg->params)
    st = ng_error(NG_EINVAL,
                  "retrofit: --params names knobs of a model, and there is none (--dim runs "
                  "search a plain vector)");
  else if (!cfg->model && cfg->out)
    st = ng_error(NG_EINVAL,
                  "retrofit: --out writes the retrofitted model, and there is none (the best vector "
                  "is in the report, and in --json's \"x\")");
  else if (cfg->model && (cfg->dim || cfg->x0))
    st = ng_error(NG_EINVAL,
                  "retrofit: %s is for runs without a model (with a model, --params gives the "
                  "dimension and the knobs' current values are the start)",
                  cfg->dim ? "--dim" : "--x0");
  else if (cfg->evaluator && metric_option)
    st = ng_error(
        NG_EINVAL,
        "retrofit: %s and --evaluator exclude each other: the evaluator's score replaces the metric, "
        "so nograd measures nothing on a validation or test set (leave out one of them)",
        metric_option);
  else if (!(delta > 0 && delta < 1))
    st = ng_error(NG_EINVAL, "--delta: expected a number in (0, 1), got %g", delta);
  if (st == NG_OK && cfg->model) st = ng_model_read(cfg->model, &c.model);
  if (st == NG_OK && c.model) st = ng_knobs_parse(c.model, cfg->params, &c.knobs);
  if (st == NG_OK) {
    c.n = c.knobs ? ng_knobs_dim(c.knobs) : cfg->dim;
    c.nparams = c.model ? ng_model_nparams(c.model) : 0;
    res->n = c.n;
    x0 = calloc(c.n, sizeof *x0);
    lo = malloc(c.n * sizeof *lo);
    hi = malloc(c.n * sizeof *hi);
    if (!x0 || !lo || !hi) st = ng_error(NG_ENOMEM, "retrofit: out of memory for %zu dimensions", c.n);
  }
  bool bounded = false;
  if (st == NG_OK) {
    if (c.knobs) {
      ng_knobs_x0(c.knobs, x0);
      ng_knobs_bounds(c.knobs, lo, hi);
      for (size_t i = 0; i < c.n; i++)
        bounded |= isfinite(lo[i]) || isfinite(hi[i]);
    } else if (cfg->x0) {
      memcpy(x0, cfg->x0, c.n * sizeof *x0);
    }
  }
  if (st == NG_OK && !cfg->evaluator) {
    st = ng_nn_loss_from_name(metric, &loss);
    if (st == NG_OK && loss == NG_NN_LOSS_MSE)
      st = ng_error(NG_EINVAL, "--metric mse: retrofit tunes classifiers against an exact metric");
  }
  if (st == NG_OK && !cfg->evaluator)
    st = validation_rows(cfg, tmpdir, valpath, sizeof valpath, &class_rows, &C, &T);
  double thr = cfg->threshold;
  if (st == NG_OK && c.model && isnan(thr)) thr = ng_model_threshold(c.model);
  if (loss == NG_NN_LOSS_CROSS_ENTROPY) thr = NAN; /* a loss of probabilities: no decision */
  c.cfg_ce = loss == NG_NN_LOSS_CROSS_ENTROPY;
  if (isnan(thr) && loss == NG_NN_LOSS_THRESHOLD_ERROR) thr = 0.5;
  ng_nn_objective_config oc = {.chunk_rows = chunk_rows,
                               .loss = loss,
                               .threshold = isnan(thr) ? 0.5 : thr,
                               .use_threshold = !isnan(thr) && loss != NG_NN_LOSS_THRESHOLD_ERROR};
  if (st == NG_OK && !cfg->evaluator) st = ng_nn_objective_create(c.model, valpath, &oc, &c.obj);

  /* ---- the optimizer ---- */
  const char *optimizer = cfg->optimizer ? cfg->optimizer : (c.n > RF_SEP_ABOVE ? "sepcmaes" : "cmaes");
  bool spsa = strcmp(optimizer, "spsa") == 0;
  /* --budget is a ceiling: the run takes floor(budget / lambda) whole generations. lambda is known after
   * setup, so a first optimizer tells it and a second one gets the budget cut to whole generations. */
  int64_t max_evals = cfg->budget;
  for (int pass = 0; pass < 2 && st == NG_OK; pass++) {
    ng_opt_destroy(&opt);
    st = make_optimizer(cfg, optimizer, c.n, x0, bounded ? lo : NULL, bounded ? hi : NULL, max_evals, &opt);
    if (st == NG_OK && pass == 0) {
      res->lambda = ng_opt_popsize(opt);
      if (cfg->budget < (int64_t)res->lambda)
        st = ng_error(NG_EINVAL,
                      "--budget %lld is smaller than one generation of %zu candidates (--popsize, or the "
                      "optimizer's default for %zu dimensions)",
                      (long long)cfg->budget, res->lambda, c.n);
      max_evals = cfg->budget / (int64_t)res->lambda * (int64_t)res->lambda;
    }
  }
  if (st == NG_OK && cfg->evaluator) {
    ng_evaluator_config ecfg;
    ng_evaluator_config_init(&ecfg);
    ecfg.n = c.n;
    ecfg.nchunks = cfg->nchunks ? cfg->nchunks : 1;
    ecfg.model_path = cfg->model;
    ecfg.rank = rank;
    ecfg.nranks = size;
    if (cfg->eval_timeout > 0) ecfg.timeout = cfg->eval_timeout;
    if (cfg->max_restarts >= 0) ecfg.max_restarts = cfg->max_restarts;
    ecfg.log = rank == 0 ? stderr : NULL;
    st = ng_evaluator_open(cfg->evaluator, &ecfg, &c.ev);
  }
  if (rank != 0) ng_opt_destroy(&opt);
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;

  /* ---- before ---- */
  if (c.model && !cfg->evaluator) {
    st = measure_point(comm, &c, x0, &oc, valpath, cfg->test, &res->val_before, &res->test_before);
    if (st != NG_OK) goto out;
    c.written_f = res->val_before; /* the model at --out only ever improves on the start */
  } else {
    st = score_start(comm, c.ev, x0, cfg->nchunks ? cfg->nchunks : 1, &res->val_before);
    if (st != NG_OK) goto out;
    c.written_f = isnan(res->val_before) ? INFINITY : res->val_before;
  }

  /* ---- the run ---- */
  ng_objective obj;
  if (cfg->evaluator) {
    ng_evaluator_objective(c.ev, &obj);
  } else {
    obj = (ng_objective){.n = c.n,
                         .nchunks = ng_nn_objective_chunks(c.obj),
                         .load = rf_load,
                         .ctx = &c,
                         .nstats = ng_nn_objective_nstats(c.obj),
                         .eval_stats = rf_eval_stats,
                         .finish = rf_finish};
  }
  int groups = size;
  for (int g = 1; g <= size; g++)
    if (size % g == 0 && (size_t)(size / g) <= obj.nchunks) {
      groups = g;
      break;
    }
  if (!(config = config_text(cfg, optimizer, c.n))) {
    st = ng_engine_agree(comm, ng_error(NG_ENOMEM, "retrofit: out of memory"));
    goto out;
  }
  char budget[64];
  snprintf(budget, sizeof budget, "budget=%lld\nevaluations=%lld\n", (long long)cfg->budget,
           (long long)max_evals);
  ng_engine_config ec = {.groups = groups,
                         .bcast = NG_BCAST_EXPLICIT,
                         .checkpoint = cfg->checkpoint,
                         .checkpoint_gens = cfg->checkpoint ? 1 : 0,
                         .meta = {.program_version = NOGRAD_VERSION,
                                  .command_line = cfg->command_line ? cfg->command_line : "",
                                  .config = config,
                                  .budget = budget,
                                  .optimizer = optimizer,
                                  .ranks = size,
                                  .groups = groups},
                         .history = &history,
                         .progress = cfg->progress,
                         .progress_secs = 1.0,
                         .max_evals = max_evals,
                         .handle_signals = true,
                         .on_generation = c.model ? rf_on_generation : NULL,
                         .on_generation_ctx = &c};
  ng_engine_result er = {0};
  st = ng_engine_run(comm, opt, &obj, &ec, &er);
  if (st != NG_OK) goto out;
  res->signalled = er.signalled;

  /* ---- after ---- */
  double *xb = calloc(c.n, sizeof *xb);
  if (!xb) {
    st = ng_engine_agree(comm, ng_error(NG_ENOMEM, "retrofit: out of memory"));
    goto out;
  }
  if (rank == 0) {
    double f;
    memcpy(xb, ng_opt_best(opt, &f), c.n * sizeof *xb);
    /* the start is a candidate too: a search that found nothing better returns the model unchanged (an
     * evaluator that could not score the start, NaN, is beaten by any candidate it could score) */
    if (!(f < res->val_before) && !(cfg->evaluator && isnan(res->val_before))) {
      memcpy(xb, x0, c.n * sizeof *xb);
      res->kept_start = 1;
      f = res->val_before;
    }
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    res->evaluations = in.evaluations;
    res->generations = in.generation;
    res->stop = ng_stop_name(in.stop);
    if (cfg->evaluator) res->val_after = f;
  }
  MPI_Bcast(xb, (int)c.n, MPI_DOUBLE, 0, comm);
  MPI_Bcast(&res->kept_start, 1, MPI_INT, 0, comm);
  res->x_best = xb;
  if (c.model && !cfg->evaluator) {
    st = measure_point(comm, &c, xb, &oc, valpath, cfg->test, &res->val_after, &res->test_after);
    if (st != NG_OK) goto out;
  }
  if (c.model && cfg->out && rank == 0) { /* the final model, also when no generation improved on x0 */
    ng_model *m = NULL;
    st = rf_model_of(&c, xb, &m);
    if (st == NG_OK) st = ng_model_write(m, cfg->out);
    ng_model_destroy(&m);
  }
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;

  /* ---- the bound ---- */
  if (spsa)
    snprintf(res->no_bound, sizeof res->no_bound,
             "SPSA steps along loss differences, not rankings: the count of possible outputs does not hold");
  else if (cfg->evaluator)
    snprintf(res->no_bound, sizeof res->no_bound,
             "an external evaluator's scores are not known to be a mean of bounded terms over examples");
  else if (loss == NG_NN_LOSS_MACRO_F1)
    snprintf(res->no_bound, sizeof res->no_bound, "macro-F1 is not a mean over examples");
  else if (loss == NG_NN_LOSS_CROSS_ENTROPY)
    snprintf(res->no_bound, sizeof res->no_bound, "cross-entropy is not bounded in [0, 1]");
  if (!res->no_bound[0]) { /* a run stopped by a signal too: the count covers the generations it ran */
    /* ... and the start, which the returned model may be: N + 1 outputs */
    double ln = ng_retrofit_log_outputs(res->lambda, res->generations);
    res->log_outputs = ln + log1p(exp(-ln));
    res->bound = ng_retrofit_bound(res->log_outputs, delta, T,
                                   loss == NG_NN_LOSS_BALANCED_ERROR ? class_rows : NULL, C);
  }
  res->val_rows = T;
  res->seconds = ng_time_now() - t0;
out:
  if (st != NG_OK) {
    free(res->x_best);
    res->x_best = NULL;
  }
  remove_tmp(tmpdir, valpath);
  ng_opt_destroy(&opt);
  ng_history_free(&history);
  rf_free(&c);
  free(config);
  free(class_rows);
  free(x0);
  free(lo);
  free(hi);
  return st;
}
