/* `nograd glue`: mix K experts of one architecture into a prior for a target domain (see nograd/glue.h).
 *
 * The command in phases: check the configuration, read the experts (every rank alike), open what the method
 * needs (the engine's objective, fullgrad's rows, the splits where priors are measured), learn or choose the
 * coefficients, mix and measure the prior, and have rank 0 write it and the final checkpoint. The learned
 * methods run under the run policy (nograd/run.h): spsa and cmaes through the engine, fullgrad through its
 * own loop (glue_fullgrad.c), so that a preempted run resumes to the same bits. Fixed parameter vectors are
 * measured with the engine's chunk reduction, so the numbers do not depend on P. */
#include "nograd/glue.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "app/glue_impl.h"
#include "nograd/app.h"
#include "nograd/error.h"
#include "nograd/timer.h"

static const char *const method_names[NG_GLUE_METHOD_COUNT] = {"spsa",  "cmaes", "uniform", "datasize",
                                                               "proxy", "best",  "fullgrad"};

const char *ng_glue_method_name(ng_glue_method m) {
  return (int)m >= 0 && (int)m < NG_GLUE_METHOD_COUNT ? method_names[m] : NULL;
}

int ng_glue_method_from_name(const char *name) {
  for (int k = 0; name && k < NG_GLUE_METHOD_COUNT; k++)
    if (strcmp(name, method_names[k]) == 0) return k;
  return -1;
}

void ng_glue_config_init(ng_glue_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->method = NG_GLUE_SPSA;
  cfg->steps = 100;
  cfg->q = 1;
  cfg->sigma0 = 0.1;
  cfg->lr = 0.05;
  cfg->seed = 1;
  cfg->chunk_rows = 256;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Fixed parameter vectors on one split: cross-entropy and error through the engine's chunk reduction. */

int ng__glue_split_open(MPI_Comm comm, const ng_model *m, const char *path, size_t chunk_rows, ng__glue_split *s) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  ng_nn_objective_config oc = {.chunk_rows = chunk_rows, .loss = NG_NN_LOSS_CROSS_ENTROPY};
  NG_CALL(ng_nn_objective_create(m, path, &oc, &s->ce));
  /* accuracy as `nograd eval` measures it: at the stored decision threshold of a binary model (the prior
   * carries expert 1's attributes), else the argmax */
  oc.loss = NG_NN_LOSS_ERROR;
  oc.threshold = ng_model_threshold(m);
  oc.use_threshold = !isnan(oc.threshold) && ng_model_output_size(m) == 2;
  if (!oc.use_threshold) oc.threshold = 0.5;
  NG_CALL(ng_nn_objective_create(m, path, &oc, &s->err));
  s->nchunks = ng_nn_objective_chunks(s->ce);
  size_t first, count;
  ng_engine_block(s->nchunks, (size_t)size, (size_t)rank, &first, &count); /* ng_engine_measure's block */
  NG_CALL(ng_nn_objective_load(s->ce, first, count));
  return ng_nn_objective_load(s->err, first, count);
}

typedef struct {
  ng__glue_split *s;
  const double *params;
} split_point;

/* One chunk: its cross-entropy sum, rows and errors. */
static int split_chunk(void *ctx, size_t chunk, double *part) {
  split_point *p = ctx;
  double rows2 = 0;
  NG_CALL(ng_nn_objective_eval(p->s->ce, p->params, chunk, &part[0], &part[1]));
  return ng_nn_objective_eval(p->s->err, p->params, chunk, &part[2], &rows2);
}

int ng__glue_split_eval(MPI_Comm comm, ng__glue_split *s, const double *params, double *loss, double *accuracy) {
  split_point p = {s, params};
  double sum[3];
  NG_CALL(ng_engine_measure(comm, s->nchunks, 3, split_chunk, &p, sum));
  *loss = sum[0] / sum[1];
  *accuracy = (sum[1] - sum[2]) / sum[1]; /* as `nograd eval`: correct / rows */
  return NG_OK;
}

void ng__glue_split_free(ng__glue_split *s) {
  ng_nn_objective_destroy(&s->ce);
  ng_nn_objective_destroy(&s->err);
  memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------------------------------------ */

/* The configuration text of a checkpoint: what a resume must match. */
static char *config_text(const ng_glue_config *cfg) {
  size_t len = 512;
  for (size_t k = 0; k < cfg->nexperts; k++)
    len += strlen(cfg->experts[k]) + 1;
  len += strlen(cfg->target_train);
  char *t = malloc(len);
  if (!t) return NULL;
  size_t used = (size_t)snprintf(t, len, "experts=");
  for (size_t k = 0; k < cfg->nexperts; k++)
    used += (size_t)snprintf(t + used, len - used, "%s%s", k ? "," : "", cfg->experts[k]);
  used += (size_t)snprintf(t + used, len - used,
                           "\ntarget-train=%s\nmethod=%s\ngranularity=%s\nsteps=%zu\nq=%zu\nsigma0=%.17g\nseed=%llu\n"
                           "chunk-rows=%zu\n",
                           cfg->target_train, ng_glue_method_name(cfg->method), cfg->per_layer ? "layer" : "model",
                           cfg->steps, cfg->q, cfg->sigma0, (unsigned long long)cfg->seed, cfg->chunk_rows);
  if (cfg->method == NG_GLUE_FULLGRAD) snprintf(t + used, len - used, "lr=%.17g\n", cfg->lr);
  return t;
}

/* The files a glue run reads, for the provenance of its checkpoints: the experts. */
static ng_run_spec run_spec(const ng_glue_config *cfg, const char *config) {
  return (ng_run_spec){.config = config, .budget = "", .inputs = cfg->experts, .ninputs = cfg->nexperts};
}

/* spsa or cmaes through the engine under the run policy; on return every rank holds the coefficients in
 * c->coef (unless signalled), rank 0 the curve (the median loss of each generation, at most `steps` of them),
 * the optimizer's state and the history. */
static int run_engine(MPI_Comm comm, ng__glue *c, const ng_glue_config *cfg, const char *config,
                      ng_glue_result *res, double *curve, ng_state *state, ng_history *history, double *w) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  size_t n = c->K * c->L;
  bool spsa = cfg->method == NG_GLUE_SPSA;
  ng_opt *opt = NULL;
  ng_objective obj;
  ng_minimize_config mc;
  ng_minimize_config_init(&mc);
  mc.function = "glue";
  mc.dim = n;
  mc.optimizer = spsa ? "spsa" : "cmaes";
  mc.popsize = spsa ? 2 * cfg->q : 0;
  mc.x0 = w; /* zeros: uniform coefficients */
  mc.sigma0 = cfg->sigma0;
  mc.seed = cfg->seed;
  /* SPSA: directions centred within each softmax group (w is K x L, group l at l, L + l, ...), along whose
   * all-equal direction the loss is invariant */
  mc.param_names[0] = "maxiter";
  mc.param_values[0] = (double)cfg->steps;
  mc.param_names[1] = "spsa_center";
  mc.param_values[1] = (double)c->L;
  mc.nparams = spsa ? 2 : 1;
  int st = ng__glue_objective(c, cfg, &obj);
  if (st == NG_OK) st = ng_app_make_optimizer(&mc, &opt);
  if (rank != 0) ng_opt_destroy(&opt);
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;
  ng_run_spec spec = run_spec(cfg, config);
  ng_engine_result er = {0};
  st = ng_run_engine(comm, &cfg->run, &spec, opt, &obj, rank == 0 ? history : NULL, &er);
  if (st != NG_OK) goto out;
  res->signalled = er.signalled;
  if (rank == 0) {
    memcpy(w, ng_opt_mean(opt), n * sizeof *w);
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    res->evaluations = in.evaluations;
    res->seconds = er.seconds;
    res->ncurve = history->nrows < cfg->steps ? history->nrows : cfg->steps;
    for (size_t i = 0; i < res->ncurve; i++)
      curve[i] = history->rows[i * NG_HISTORY_NCOLS + NG_HIST_median];
    if (state) st = ng_opt_save(opt, state);
  }
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;
  MPI_Bcast(w, (int)n, MPI_DOUBLE, 0, comm);
  ng__glue_softmax(c->K, c->L, w, c->coef);
out:
  ng_opt_destroy(&opt);
  return st;
}

/* The coefficients of the fixed methods. */
static int fixed_weights(MPI_Comm comm, ng__glue *c, const ng_glue_config *cfg, ng__glue_split *val,
                         ng__glue_split *train, ng_glue_result *res) {
  size_t K = c->K, L = c->L;
  switch (cfg->method) {
    case NG_GLUE_UNIFORM:
      for (size_t i = 0; i < K * L; i++)
        c->coef[i] = 1.0 / (double)K;
      return NG_OK;
    case NG_GLUE_DATASIZE: {
      double total = 0;
      for (size_t k = 0; k < K; k++)
        total += cfg->sizes ? cfg->sizes[k] : (double)ng_model_attr(c->models[k], "train_rows");
      for (size_t k = 0; k < K; k++)
        for (size_t l = 0; l < L; l++)
          c->coef[k * L + l] = (cfg->sizes ? cfg->sizes[k] : (double)ng_model_attr(c->models[k], "train_rows")) / total;
      return NG_OK;
    }
    default: { /* proxy, best: the single expert that scores best */
      ng__glue_split *s = cfg->method == NG_GLUE_PROXY && cfg->target_val ? train : val;
      bool by_loss = cfg->method == NG_GLUE_BEST || cfg->proxy_loss;
      size_t chosen = 0;
      double best = INFINITY;
      for (size_t k = 0; k < K; k++) {
        double loss, acc;
        for (size_t i = 0; i < c->nparams; i++)
          c->mixed[i] = (double)c->theta[k][i];
        NG_CALL(ng__glue_split_eval(comm, s, c->mixed, &loss, &acc));
        double score = by_loss ? loss : -acc;
        if (score < best) {
          best = score;
          chosen = k;
        }
      }
      res->evaluations = (int64_t)K;
      for (size_t k = 0; k < K; k++)
        for (size_t l = 0; l < L; l++)
          c->coef[k * L + l] = k == chosen ? 1.0 : 0.0;
      return NG_OK;
    }
  }
}

/* The configuration checks every rank makes alike. */
static int check_config(const ng_glue_config *cfg) {
  if (cfg->nexperts < 2) return ng_error(NG_EINVAL, "glue: at least 2 experts are needed, got %zu", cfg->nexperts);
  if (!ng_glue_method_name(cfg->method)) return ng_error(NG_EINVAL, "glue: unknown method %d", (int)cfg->method);
  if (!cfg->target_train || !cfg->out)
    return ng_error(NG_EINVAL, "glue: a target train split and an output path are needed");
  if (!cfg->steps || !cfg->q || !cfg->chunk_rows || !(cfg->sigma0 > 0) || !(cfg->lr > 0))
    return ng_error(NG_EINVAL, "glue: steps, q and chunk rows must be >= 1, sigma0 and lr > 0 (ng_glue_config_init)");
  for (size_t k = 0; cfg->sizes && k < cfg->nexperts; k++)
    if (!(cfg->sizes[k] > 0) || !isfinite(cfg->sizes[k]))
      return ng_error(NG_EINVAL, "--sizes: value %zu (for %s) must be a positive number, got %g", k + 1,
                      cfg->experts[k], cfg->sizes[k]);
  return NG_OK;
}

/* Rank 0: the prior's model file, and the result's copies of the weights. */
static int write_prior(const ng__glue *c, const ng_glue_config *cfg, ng_glue_result *res, double **curve) {
  ng_model *prior = NULL;
  int st = ng_model_clone(c->models[0], &prior);
  if (st == NG_OK) {
    float *p = ng_model_params(prior);
    for (size_t i = 0; i < c->nparams; i++)
      p[i] = (float)c->mixed[i];
    st = ng_model_write(prior, cfg->out);
  }
  ng_model_destroy(&prior);
  size_t n = c->K * c->L;
  if (st == NG_OK && !(res->weights = malloc(n * sizeof *res->weights)))
    st = ng_error(NG_ENOMEM, "glue: out of memory");
  if (st == NG_OK) memcpy(res->weights, c->coef, n * sizeof *res->weights);
  if (st == NG_OK && res->ncurve) {
    res->curve = *curve;
    *curve = NULL;
  }
  return st;
}

/* Rank 0: the final checkpoint, with /result. */
static int write_checkpoint(const ng_glue_config *cfg, const char *config, const ng__glue *c,
                            const ng_glue_result *res, ng_state *opt_state, const ng_history *history,
                            const double *w, int ranks) {
  ng_state *result = NULL;
  ng_ckpt_meta meta;
  ng_run_spec spec = run_spec(cfg, config);
  size_t n = c->K * c->L;
  int st = ng_run_meta(&cfg->run, &spec, ng_glue_method_name(cfg->method), ranks, 1, &meta);
  if (st == NG_OK) st = ng_state_create(&result);
  if (st == NG_OK) st = ng_state_put_int(result, "method", (int64_t)cfg->method);
  if (st == NG_OK) st = ng_state_put_f64(result, "weights", res->weights, n);
  if (st == NG_OK) st = ng_state_put_int(result, "K", (int64_t)c->K);
  if (st == NG_OK) st = ng_state_put_int(result, "L", (int64_t)c->L);
  if (st == NG_OK) st = ng_state_put_scalar(result, "prior_loss", res->prior_loss);
  if (st == NG_OK) st = ng_state_put_scalar(result, "prior_accuracy", res->prior_accuracy);
  if (st == NG_OK) st = ng_state_put_scalar(result, "train_loss", res->train_loss);
  if (st == NG_OK) st = ng_state_put_scalar(result, "train_accuracy", res->train_accuracy);
  if (st == NG_OK && res->ncurve) st = ng_state_put_f64(result, "curve", res->curve, res->ncurve);
  /* best: the final w for the learned methods (the log-weights), else the coefficients */
  if (st == NG_OK)
    st = ng_ckpt_write(cfg->run.checkpoint, &meta, opt_state, history, w ? w : res->weights, n, res->prior_loss,
                       result);
  ng_state_destroy(&result);
  ng_run_meta_free(&meta);
  return st;
}

int ng_app_glue(MPI_Comm comm, const ng_glue_config *cfg, ng_glue_result *res) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(res, 0, sizeof *res);
  double t0 = ng_time_now();
  ng__glue c = {0};
  ng__glue_split val = {0}, train = {0};
  ng_state *opt_state = NULL;
  ng_history history = {0};
  double *w = NULL, *curve = NULL;
  char *config = NULL;
  bool engine = cfg->method == NG_GLUE_SPSA || cfg->method == NG_GLUE_CMAES;
  bool fullgrad = cfg->method == NG_GLUE_FULLGRAD, learned = engine || fullgrad;

  /* ---- check and open, on every rank alike ---- */
  int st = check_config(cfg);
  if (st == NG_OK) st = ng__glue_read_experts(&c, cfg);
  if (st == NG_OK && cfg->method == NG_GLUE_DATASIZE && !cfg->sizes)
    for (size_t k = 0; k < c.K && st == NG_OK; k++)
      if (ng_model_attr(c.models[k], "train_rows") < 1)
        st = ng_error(NG_ENOTFOUND,
                      "--method datasize: the expert %s records no training-set size (attribute train_rows "
                      "of /model; `nograd train` writes it), and no --sizes were given",
                      cfg->experts[k]);
  /* the split where the prior is measured; the train split for proxy's criterion and the prior's train loss */
  if (st == NG_OK)
    st = ng__glue_split_open(comm, c.models[0], cfg->target_val ? cfg->target_val : cfg->target_train,
                             cfg->chunk_rows, &val);
  if (st == NG_OK && cfg->target_val)
    st = ng__glue_split_open(comm, c.models[0], cfg->target_train, cfg->chunk_rows, &train);
  size_t n = c.K * c.L;
  if (st == NG_OK && learned) {
    w = calloc(n ? n : 1, sizeof *w);
    curve = calloc(cfg->steps, sizeof *curve);
    if (!w || !curve) st = ng_error(NG_ENOMEM, "glue: out of memory for %zu steps", cfg->steps);
  }
  if (st == NG_OK && !(config = config_text(cfg))) st = ng_error(NG_ENOMEM, "glue: out of memory");
  if (st == NG_OK && rank == 0 && cfg->run.checkpoint) st = ng_state_create(&opt_state);
  st = ng_engine_agree(comm, st);
  if (st != NG_OK || cfg->check_only) goto out;

  /* ---- the coefficients ---- */
  if (engine) {
    st = run_engine(comm, &c, cfg, config, res, curve, opt_state, &history, w);
  } else if (fullgrad) {
    st = ng__glue_fullgrad(comm, &c, cfg, config, w, curve, opt_state, &history, &res->signalled);
    res->ncurve = cfg->steps;
    res->evaluations = (int64_t)cfg->steps;
  } else {
    st = fixed_weights(comm, &c, cfg, &val, &train, res);
  }
  /* stopped by a signal: with a checkpoint, the run is resumed later and writes no prior now; without one,
   * it ends here like a run whose budget is spent, with the prior of the point it reached */
  if (st != NG_OK || (res->signalled && cfg->run.checkpoint)) goto out;

  /* ---- the prior: mixed, measured, written ---- */
  ng__glue_mix(&c, c.coef, c.mixed);
  NG_TRY(st, ng__glue_split_eval(comm, &val, c.mixed, &res->prior_loss, &res->prior_accuracy), out);
  res->train_loss = res->prior_loss, res->train_accuracy = res->prior_accuracy;
  if (cfg->target_val) NG_TRY(st, ng__glue_split_eval(comm, &train, c.mixed, &res->train_loss, &res->train_accuracy), out);
  res->K = c.K;
  res->L = c.L;
  if (!engine) res->seconds = ng_time_now() - t0;
  if (rank == 0) {
    st = write_prior(&c, cfg, res, &curve);
    if (st == NG_OK && cfg->run.checkpoint)
      st = write_checkpoint(cfg, config, &c, res, opt_state, &history, w, size);
    if (st != NG_OK) {
      free(res->weights);
      free(res->curve);
      res->weights = res->curve = NULL;
      res->ncurve = 0;
    }
  }
  st = ng_engine_agree(comm, st);
out:
  ng__glue_split_free(&val);
  ng__glue_split_free(&train);
  ng__glue_free(&c);
  ng_state_destroy(&opt_state);
  ng_history_free(&history);
  free(config);
  free(w);
  free(curve);
  return st;
}
