/* `nograd glue --method fullgrad` (see glue_impl.h): w learned by backpropagation through theta(w) with Adam,
 * data-parallel over the chunks of the target train split.
 *
 * Each rank forwards and backwards its chunks with the mixed parameters; a chunk's contribution is its
 * cross-entropy sum, its rows and dL/dw (K x L), computed from the chunk's parameter gradient alone, and the
 * engine's chunk reduction (ng_engine_measure) adds the chunks in chunk order, so every P gives the same
 * bits. The loop follows the run policy: a checkpoint (Adam's state, the curve so far, one history row per
 * step) when due and when a signal arrived, and a resume that continues to the same bits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "app/glue_impl.h"
#include "engine/run_impl.h"
#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/loss.h"
#include "nograd/timer.h"
#include "opt/adam.h"

typedef struct {
  const ng__glue *c;
  size_t nchunks, first, count, chunk_rows, rows, d, classes, batch;
  float *x; /* this rank's rows */
  int32_t *y;
  ng_nn_work *work;
  float *params; /* the mixed parameters as float32 */
  float *grad;   /* nparams: one chunk's gradient */
  float *dout;   /* batch x classes */
  double *dot;   /* K: g_l . theta_kl of one group */
  uint64_t seed; /* dropout masks: stream (seed, DROPOUT, step * nchunks + chunk, layer) */
  uint64_t step;
} fullgrad;

static void fullgrad_free(fullgrad *f) {
  free(f->x);
  free(f->y);
  ng_nn_work_destroy(&f->work);
  free(f->params);
  free(f->grad);
  free(f->dout);
  free(f->dot);
  memset(f, 0, sizeof *f);
}

/* Reads this rank's chunks of the train split and checks that the experts fit it (every rank alike). */
static int fullgrad_open(MPI_Comm comm, const ng__glue *c, const ng_glue_config *cfg, fullgrad *f) {
  int rank, size, st = NG_OK;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const ng_model *m = c->models[0];
  const char *path = cfg->target_train;
  size_t chunk_rows = cfg->chunk_rows;
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(path, &ds));
  size_t total = ng_dataset_info(ds)->n;
  ng_dataset_close(&ds);
  if (total == 0) return ng_error(NG_EINVAL, "%s: the target train split is empty", path);
  f->c = c;
  f->seed = cfg->seed;
  f->chunk_rows = chunk_rows;
  f->d = ng_model_input_size(m);
  f->classes = ng_model_output_size(m);
  f->batch = chunk_rows < NG_NN_OBJECTIVE_BATCH ? chunk_rows : NG_NN_OBJECTIVE_BATCH;
  f->nchunks = ng__ceil_div(total, chunk_rows);
  ng_engine_block(f->nchunks, (size_t)size, (size_t)rank, &f->first, &f->count); /* ng_engine_measure's */
  size_t r0 = f->first * chunk_rows, r1 = (f->first + f->count) * chunk_rows;
  if (r1 > total) r1 = total;
  f->rows = r1 > r0 ? r1 - r0 : 0;
  NG_CALL(ng__glue_read_rows(m, path, f->rows ? r0 : 0, f->rows, &f->x, &f->y));
  f->params = malloc((c->nparams + 1) * sizeof *f->params);
  f->grad = malloc((c->nparams + 1) * sizeof *f->grad);
  f->dout = ng__mallocn(f->batch, f->classes, sizeof *f->dout);
  f->dot = malloc(c->K * sizeof *f->dot);
  if (!f->params || !f->grad || !f->dout || !f->dot)
    st = ng_error(NG_ENOMEM, "--method fullgrad: out of memory for %zu parameters", c->nparams);
  if (st == NG_OK) st = ng_nn_work_create(m, f->batch, true, &f->work);
  return st;
}

/* Chunk `chunk`'s contribution (ng_chunk_fn): part[0 .. K*L) = dL/dw of the chunk's loss sum, part[K*L] the
 * sum, then the rows. */
static int fullgrad_chunk(void *ctx, size_t chunk, double *part) {
  fullgrad *f = ctx;
  const ng__glue *c = f->c;
  const ng_model *m = c->models[0];
  size_t i = chunk - f->first;
  size_t r0 = i * f->chunk_rows, rows = f->rows - r0 < f->chunk_rows ? f->rows - r0 : f->chunk_rows;
  memset(f->grad, 0, c->nparams * sizeof *f->grad);
  double loss = 0;
  for (size_t b = 0; b < rows; b += f->batch) {
    size_t nb = rows - b < f->batch ? rows - b : f->batch;
    const float *out;
    ng_nn_work_set_dropout(f->work, f->seed, f->step * f->nchunks + chunk);
    NG_CALL(ng_nn_forward(m, f->params, f->work, f->x + (r0 + b) * f->d, nb, &out));
    loss += ng_loss_cross_entropy(out, f->y + r0 + b, nb, f->classes, f->dout);
    NG_CALL(ng_nn_backward(m, f->params, f->work, f->dout, f->grad));
  }
  size_t K = c->K, L = c->L;
  for (size_t l = 0; l < L; l++) {
    double mean = 0;
    for (size_t k = 0; k < K; k++) {
      double dot = 0;
      for (size_t p = c->gstart[l]; p < c->gend[l]; p++)
        dot += (double)f->grad[p] * (double)c->theta[k][p];
      f->dot[k] = dot;
      mean += c->coef[k * L + l] * dot;
    }
    for (size_t k = 0; k < K; k++)
      part[k * L + l] += c->coef[k * L + l] * (f->dot[k] - mean);
  }
  part[K * L] += loss;
  part[K * L + 1] += (double)rows;
  return NG_OK;
}

/* Adam's state at step t (t steps done) and the curve so far, as the checkpoint's /optimizer. */
static int save_state(ng_state *st, size_t n, const double *w, const double *mom, const double *vel,
                      int64_t t, double lr, const double *curve) {
  NG_CALL(ng_state_put_f64(st, "adam/w", w, n));
  NG_CALL(ng_state_put_f64(st, "adam/m", mom, n));
  NG_CALL(ng_state_put_f64(st, "adam/v", vel, n));
  NG_CALL(ng_state_put_int(st, "adam/t", t));
  NG_CALL(ng_state_put_scalar(st, "adam/lr", lr));
  return ng_state_put_f64(st, "adam/curve", curve, (size_t)t);
}

static int load_state(const ng_state *st, size_t n, size_t steps, double *w, double *mom, double *vel,
                      int64_t *t, double *curve, const char *path) {
  NG_CALL(ng_state_get_int(st, "adam/t", t));
  if (*t < 0 || (uint64_t)*t > steps)
    return ng_error(NG_EFORMAT, "--resume %s: Adam's step %lld is outside 0..%zu", path, (long long)*t,
                    steps);
  NG_CALL(ng_state_get_f64(st, "adam/w", w, n));
  NG_CALL(ng_state_get_f64(st, "adam/m", mom, n));
  NG_CALL(ng_state_get_f64(st, "adam/v", vel, n));
  return ng_state_get_f64(st, "adam/curve", curve, (size_t)*t);
}

/* Rank 0: a checkpoint of the loop after step t. */
static int checkpoint(const ng_glue_config *cfg, const char *config, int ranks, size_t n, const double *w,
                      const double *mom, const double *vel, int64_t t, const double *curve,
                      const ng_history *history) {
  ng_state *st = NULL;
  ng_ckpt_meta meta;
  ng_run_spec spec = {.config = config, .inputs = cfg->experts, .ninputs = cfg->nexperts};
  int rc = ng_run_meta(&cfg->run, &spec, "fullgrad", ranks, 1, &meta);
  if (rc == NG_OK) rc = ng_state_create(&st);
  if (rc == NG_OK) rc = save_state(st, n, w, mom, vel, t, cfg->lr, curve);
  double best = t ? curve[t - 1] : INFINITY;
  if (rc == NG_OK) rc = ng_ckpt_write(cfg->run.checkpoint, &meta, st, history, w, n, best, NULL);
  ng_state_destroy(&st);
  ng_run_meta_free(&meta);
  return rc;
}

/* Rank 0: the history row of step t (1-based) whose loss was `loss`, and its --log line. */
static int history_row(ng_history *h, FILE *log, int64_t t, double loss, double best, double seconds) {
  double row[NG_HISTORY_NCOLS] = {0};
  row[NG_HIST_generation] = (double)t;
  row[NG_HIST_evaluations] = (double)t;
  row[NG_HIST_best] = best;
  row[NG_HIST_gen_best] = row[NG_HIST_median] = loss;
  row[NG_HIST_popsize] = 1;
  row[NG_HIST_t_evaluate] = seconds;
  if (log) ng__run_log(log, row, "none");
  return ng_history_append(h, row);
}

int ng__glue_fullgrad(MPI_Comm comm, ng__glue *c, const ng_glue_config *cfg, const char *config, double *w,
                      double *curve, ng_state *opt_state, ng_history *history, bool *signalled) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  *signalled = false;
  size_t n = c->K * c->L, W = n + 2, steps = cfg->steps;
  ng__adam adam = {cfg->lr, 0.9, 0.999, 1e-8, 0};
  fullgrad f = {0};
  ng_run_signals *sig = NULL;
  ng_history hist = {0};
  double *mom = calloc(2 * n + W, sizeof *mom);
  double *vel = mom ? mom + n : NULL, *g = mom ? vel + n : NULL;
  int64_t t0 = 0;
  int st = mom ? NG_OK : ng_error(NG_ENOMEM, "--method fullgrad: out of memory");
  if (st == NG_OK) st = fullgrad_open(comm, c, cfg, &f);
  if (st == NG_OK && rank == 0 &&
      cfg->run.resume) { /* every rank needs the state: rank 0 reads, then sends */
    ng_state *saved = NULL;
    st = ng_state_create(&saved);
    if (st == NG_OK) st = ng_run_load(cfg->run.resume, config, cfg->run.force, saved, &hist);
    if (st == NG_OK) st = load_state(saved, n, steps, w, mom, vel, &t0, curve, cfg->run.resume);
    ng_state_destroy(&saved);
  }
  if (st == NG_OK) st = ng_run_signals_start(&cfg->run, &sig);
  st = ng_engine_agree(comm, st);
  if (st == NG_OK && cfg->run.resume) {
    double head[1] = {(double)t0};
    MPI_Bcast(head, 1, MPI_DOUBLE, 0, comm);
    t0 = (int64_t)head[0];
    MPI_Bcast(w, (int)n, MPI_DOUBLE, 0, comm);
    MPI_Bcast(mom, (int)(2 * n), MPI_DOUBLE, 0, comm);
  }
  double last_time = ng_time_now(), best = INFINITY;
  for (int64_t i = 0; i < t0; i++)
    best = fmin(best, curve[i]);
  int64_t last_step = t0;
  for (size_t t = (size_t)t0; t < steps && st == NG_OK && !*signalled; t++) {
    double ts = ng_time_now();
    ng__glue_softmax(c->K, c->L, w, c->coef);
    ng__glue_mix(c, c->coef, c->mixed);
    for (size_t i = 0; i < c->nparams; i++)
      f.params[i] = (float)c->mixed[i];
    f.step = t;
    st = ng_engine_measure(comm, f.nchunks, W, fullgrad_chunk, &f, g);
    if (st != NG_OK) break;
    double rows = g[n + 1];
    curve[t] = g[n] / rows;
    best = fmin(best, curve[t]);
    for (size_t j = 0; j < n; j++)
      g[j] /= rows;
    ng__adam_step_f64(&adam, t + 1, n, w, g, mom, vel);
    if (!isfinite(g[n])) {
      st = ng_error(NG_ENUMERIC, "--method fullgrad: the train loss is %g at step %zu", g[n] / rows, t);
      break;
    }
    int signal = 0;
    st = ng_run_signals_poll(comm, sig, &signal);
    *signalled = signal != 0;
    if (st == NG_OK && rank == 0) {
      st = history_row(&hist, cfg->run.log, (int64_t)t + 1, curve[t], best, ng_time_now() - ts);
      bool due =
          cfg->run.checkpoint && (*signalled || t + 1 == steps ||
                                  ng_run_checkpoint_due(&cfg->run, (int64_t)t + 1, last_step, last_time));
      if (st == NG_OK && due) {
        st = checkpoint(cfg, config, size, n, w, mom, vel, (int64_t)t + 1, curve, &hist);
        last_step = (int64_t)t + 1;
        last_time = ng_time_now();
      }
    }
    st = ng_engine_agree(comm, st);
  }
  if (st == NG_OK) ng__glue_softmax(c->K, c->L, w, c->coef);
  if (st == NG_OK && rank == 0 && opt_state)
    st = save_state(opt_state, n, w, mom, vel, (int64_t)steps, cfg->lr, curve);
  if (st == NG_OK && rank == 0 && history) {
    ng_history_free(history);
    *history = hist;
    hist = (ng_history){0};
  }
  ng_run_signals_stop(&sig);
  ng_history_free(&hist);
  fullgrad_free(&f);
  free(mom);
  return ng_engine_agree(comm, st);
}
