/* `nograd eval`: the loss and exact metrics of a model on a dataset, data-parallel and the same bits for any
 * number of ranks.
 *
 * The rows are cut into chunks of cfg->chunk_rows; rank r owns the contiguous block ng_engine_block(nchunks,
 * P, r) and reads only its rows, batch by batch, each batch starting at a multiple of the batch size within
 * its chunk (so a row meets the same sgemm blocking whatever P is). A chunk yields one loss sum (double,
 * added batch by batch in row order), which the engine's chunk reduction (ng_engine_measure) adds in chunk
 * order on rank 0. Confusion counts and error counts are integers, summed exactly by MPI. Buffers are
 * allocated once, before the first batch.
 *
 * threshold_error uses cfg->threshold, or, when that is NaN, the threshold stored in the model file
 * (ng_model_threshold, e.g. set by `nograd retrofit`), or 0.5 when the model has none. A binary model that
 * stores a threshold is evaluated at it by every metric: the confusion counts behind accuracy, error,
 * balanced_error and macro_f1 predict class 1 when softmax[1] >= its threshold (ng_confusion_add_threshold,
 * the formula of threshold_error and of the nn objective), so that they agree with `nograd retrofit`, which
 * tuned them at that threshold. Without one, they predict the argmax. cfg->threshold keeps its one meaning,
 * the threshold of threshold_error ("what would the error be at T"); it does not move the model's own
 * decision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/timer.h"
#include "nograd/nn_objective.h"
#include "nograd/train.h"

const char *ng_eval_metric_name(int metric) {
  for (size_t i = 0; i < ng_metric_def_count(); i++)
    if (ng_metric_def_at(i)->eval == metric && metric >= 0) return ng_metric_def_at(i)->name;
  return NULL;
}

int ng_eval_metric_from_name(const char *name) {
  const ng_metric_def *def = ng_metric_def_find(name);
  return def ? def->eval : -1;
}

/* One rank's share of the work, and everything it allocates. */
typedef struct {
  ng_model *model;
  ng_dataset *ds;
  ng_nn_work *work;
  ng_confusion *conf;
  float *x, *yt;
  int32_t *y;
  const ng_eval_config *cfg;
  size_t nchunks;    /* of the whole dataset */
  int64_t counts[3]; /* this rank's threshold errors, top-5 errors, rows */
  double fwd_seconds;
  double threshold; /* of threshold_error: cfg's, else the model's stored one, else 0.5 */
  double decision;  /* of the confusion counts: the model's stored threshold on a binary model, else NaN
                     * (the argmax) */
} eval_state;

static void state_free(eval_state *s) {
  free(s->y);
  free(s->yt);
  free(s->x);
  ng_confusion_destroy(&s->conf);
  ng_nn_work_destroy(&s->work);
  ng_dataset_close(&s->ds);
  ng_model_destroy(&s->model);
}

static int setup(const ng_eval_config *cfg, eval_state *s) {
  NG_CALL(ng_model_read(cfg->model, &s->model));
  NG_CALL(ng_dataset_open(cfg->data, &s->ds));
  const ng_data_info *info = ng_dataset_info(s->ds);
  NG_CALL(ng_model_check_fit(s->model, cfg->model, info, cfg->data));
  size_t classes = ng_model_output_size(s->model);
  s->decision = classes == 2 ? ng_model_threshold(s->model) : NAN;
  s->threshold = cfg->threshold;
  if (isnan(s->threshold)) s->threshold = ng_model_threshold(s->model);
  if (isnan(s->threshold)) s->threshold = 0.5;
  for (int k = 0; k < NG_EVAL_NMETRICS; k++) {
    if (!cfg->metrics[k]) continue;
    if (info->t)
      return ng_error(NG_EINVAL, "--metric %s: %s has float targets (/y), not class labels",
                      ng_eval_metric_name(k), cfg->data);
    if (k == NG_EVAL_THRESHOLD_ERROR && classes != 2)
      return ng_error(NG_EINVAL,
                      "--metric threshold_error: needs a binary classifier, but %s has %zu outputs",
                      cfg->model, classes);
  }
  s->cfg = cfg;
  s->nchunks = ng__ceil_div(info->n, cfg->chunk_rows);
  size_t batch = cfg->batch < cfg->chunk_rows ? cfg->batch : cfg->chunk_rows;
  NG_CALL(ng_nn_work_create(s->model, batch, false, &s->work));
  if (!info->t) NG_CALL(ng_confusion_create(classes, &s->conf));
  s->x = ng__mallocn(batch, info->d, sizeof *s->x);
  s->y = info->t ? NULL : malloc(batch * sizeof *s->y);
  s->yt = info->t ? ng__mallocn(batch, info->t, sizeof *s->yt) : NULL;
  if (!s->x || (!s->y && !s->yt))
    return ng_error(NG_ENOMEM, "out of memory for batches of %zu rows of %s", batch, cfg->data);
  return NG_OK;
}

/* One chunk (ng_chunk_fn): its loss sum into partial[0]; its confusion and error counts, rows and forward
 * time into this rank's totals. */
static int eval_chunk(void *ctx, size_t chunk, double *partial) {
  eval_state *s = ctx;
  const ng_eval_config *cfg = s->cfg;
  const ng_data_info *info = ng_dataset_info(s->ds);
  size_t classes = ng_model_output_size(s->model),
         batch = cfg->batch < cfg->chunk_rows ? cfg->batch : cfg->chunk_rows;
  const float *params = ng_model_params_const(s->model);
  size_t start = chunk * cfg->chunk_rows,
         end = start + cfg->chunk_rows < info->n ? start + cfg->chunk_rows : info->n;
  double sum = 0;
  for (size_t row = start; row < end; row += batch) {
    size_t b = end - row < batch ? end - row : batch;
    NG_CALL(ng_dataset_read_rows(s->ds, row, b, s->x, info->t ? (void *)s->yt : (void *)s->y));
    if (!info->t)
      for (size_t i = 0; i < b; i++)
        if (s->y[i] < 0 || (size_t)s->y[i] >= classes)
          return ng_error(NG_EMISMATCH,
                          "%s: /y row %zu: label %d is outside the model's classes [0, %zu) (%s)", cfg->data,
                          row + i, (int)s->y[i], classes, cfg->model);
    const float *out;
    double t0 = ng_time_now();
    NG_CALL(ng_nn_forward(s->model, params, s->work, s->x, b, &out));
    s->fwd_seconds += ng_time_now() - t0;
    if (info->t) {
      sum += ng_loss_mse(out, s->yt, b, info->t, NULL);
    } else {
      sum += ng_loss_cross_entropy(out, s->y, b, classes, NULL);
      if (isnan(s->decision))
        NG_CALL(ng_confusion_add(s->conf, out, s->y, b));
      else
        NG_CALL(ng_confusion_add_threshold(s->conf, out, s->y, b, s->decision));
      if (cfg->metrics[NG_EVAL_THRESHOLD_ERROR])
        s->counts[0] += ng_metric_threshold_error(out, s->y, b, s->threshold);
      if (cfg->metrics[NG_EVAL_TOP5_ERROR])
        s->counts[1] += ng_topk_error(out, s->y, b, classes, classes < 5 ? classes : 5);
    }
    s->counts[2] += (int64_t)b;
  }
  partial[0] += sum;
  return NG_OK;
}

static int mpi_status(int rc, const char *what) {
  return rc == MPI_SUCCESS ? NG_OK : ng_error(NG_EMPI, "eval: %s failed (MPI error %d)", what, rc);
}

/* The loss (the chunks' sums added in chunk order by the engine's reduction), the counts (integers: an exact
 * sum on rank 0 whatever the order) and the slowest rank's forward time. Collective. */
static int combine(MPI_Comm comm, int rank, eval_state *s, ng_eval_result *res) {
  const ng_eval_config *cfg = s->cfg;
  const ng_data_info *info = ng_dataset_info(s->ds);
  size_t classes = ng_model_output_size(s->model);
  double loss_sum = 0;
  if (s->nchunks) NG_CALL(ng_engine_measure(comm, s->nchunks, 1, eval_chunk, s, &loss_sum));
  size_t ncounts = 3 + (s->conf ? classes * classes : 0);
  int64_t *mine = malloc(ncounts * sizeof *mine), *total = malloc(ncounts * sizeof *total);
  int st = mine && total ? NG_OK : ng_error(NG_ENOMEM, "out of memory");
  NG_TRY(st, ng_engine_agree(comm, st), done);
  memcpy(mine, s->counts, 3 * sizeof *mine);
  if (s->conf) memcpy(mine + 3, ng_confusion_counts_const(s->conf), classes * classes * sizeof *mine);
  st = mpi_status(MPI_Reduce(mine, total, (int)ncounts, MPI_INT64_T, MPI_SUM, 0, comm), "summing the counts");
  double slowest = 0;
  if (!st) st = mpi_status(MPI_Reduce(&s->fwd_seconds, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, comm), "timing");
  if (!st && rank == 0) {
    res->n = total[2];
    res->loss = res->n ? loss_sum / (double)res->n : NAN;
    res->targets = info->t != 0;
    res->forward_seconds = slowest;
    res->samples_per_s = slowest > 0 ? (double)res->n / slowest : NAN;
    for (int k = 0; k < NG_EVAL_NMETRICS; k++)
      res->metrics[k] = NAN;
    if (s->conf) {
      memcpy(ng_confusion_counts(s->conf), total + 3, classes * classes * sizeof *total);
      for (int k = 0; k < NG_METRIC_COUNT; k++)
        if (cfg->metrics[k]) res->metrics[k] = ng_metric_from_confusion(s->conf, (ng_metric)k);
      if (cfg->metrics[NG_EVAL_THRESHOLD_ERROR] && res->n)
        res->metrics[NG_EVAL_THRESHOLD_ERROR] = (double)total[0] / (double)res->n;
      if (cfg->metrics[NG_EVAL_TOP5_ERROR] && res->n)
        res->metrics[NG_EVAL_TOP5_ERROR] = (double)total[1] / (double)res->n;
    }
  }
done:
  free(mine);
  free(total);
  return st;
}

void ng_eval_config_init(ng_eval_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->threshold = NAN;
  cfg->batch = 256;
  cfg->chunk_rows = NG_EVAL_CHUNK_ROWS;
}

int ng_app_eval(MPI_Comm comm, const ng_eval_config *cfg, ng_eval_result *res) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  double t0 = ng_time_now();
  eval_state s = {0};
  int st = NG_OK;
  /* the same on every rank, so no agreement needed */
  if (!cfg || !cfg->model || !cfg->data || cfg->batch < 1 || cfg->chunk_rows < 1 ||
      (!isnan(cfg->threshold) && !(cfg->threshold >= 0 && cfg->threshold <= 1)))
    return ng_error(NG_EINVAL,
                    "eval: a model, a dataset, batch >= 1, chunk rows >= 1 and a threshold in [0, "
                    "1] (or NaN: the model's own) are needed");
  st = setup(cfg, &s);
  NG_TRY(st, ng_engine_agree(comm, st), done);
  st = combine(comm, rank, &s, res);
  NG_TRY(st, ng_engine_agree(comm, st), done);
  if (rank == 0) res->seconds = ng_time_now() - t0;
done:
  state_free(&s);
  return st;
}
