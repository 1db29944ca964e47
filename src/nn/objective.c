/* A neural network's loss on a dataset as an objective of the engine (see include/nograd/nn_objective.h).
 *
 * What makes a chunk's (sum, rows) the same bits on every rank: the loaded chunks sit in one 64-byte
 * aligned buffer at a stride rounded up to 64 bytes, so a chunk's rows start on the same alignment whichever
 * range was loaded (sgemm's path may depend on it); the scratch parameter vector is aligned the same way; a
 * chunk is cut into batches at the same rows; and the batch losses are added in row order from zero.
 * Confusion counts are integers, exact in the doubles that carry them to the engine. */
#include "core/checked.h"
#include "nograd/nn_objective.h"

#include <math.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/loss.h"
#include "nograd/metrics.h"

static void shape_text(char *buf, size_t len, size_t ndim, const size_t *dims) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t k = 0; k < ndim && used < len; k++)
    used += (size_t)snprintf(buf + used, len - used, "%s%zu", k ? "x" : "", dims[k]);
}

int ng_model_check_fit(const ng_model *m, const char *model_path, const ng_data_info *info,
                       const char *data_path) {
  size_t ndim, shape[3], mdims = 1;
  ng_model_input_shape(m, &ndim, shape);
  for (size_t k = 0; k < ndim; k++)
    mdims *= shape[k];
  bool same = ndim == (size_t)info->xrank;
  for (size_t k = 0; same && k < ndim; k++)
    same = shape[k] == info->xdims[k];
  if (!same && !(ndim == 1 && mdims == info->d)) {
    char a[96], b[96];
    shape_text(a, sizeof a, ndim, shape);
    shape_text(b, sizeof b, (size_t)info->xrank, info->xdims);
    return ng_error(NG_EMISMATCH, "%s: the model's input is %s (%s), but the rows of %s (/x) are %s",
                    model_path, a, ng_model_is_onnx(m) ? "per example, the graph's input" : "/model/spec",
                    data_path, b);
  }
  size_t out = ng_model_output_size(m);
  if (info->t && out != info->t)
    return ng_error(NG_EMISMATCH, "%s: the model has %zu outputs, but %s (/y) has %zu targets per row",
                    model_path, out, data_path, info->t);
  if (!info->t && out < 2)
    return ng_error(NG_EMISMATCH,
                    "%s: the model has %zu output, but %s (/y) holds class labels (need >= 2 outputs)",
                    model_path, out, data_path);
  return NG_OK;
}

#define OBJ_ALIGN 64

/* A piece of the parameter vector that x fills: params[offset .. offset + len) = x[xoffset ...]. */
typedef struct {
  size_t offset, len;
} span;

struct ng_nn_objective {
  const ng_model *model;
  ng_dataset *ds;
  ng_nn_loss loss;
  double threshold;
  bool use_threshold; /* error, balanced_error, macro_f1: predict with the threshold (binary) */
  size_t rows, d, t, classes, chunk_rows, nchunks, batch, n, nparams;
  span *spans; /* NULL: all parameters */
  size_t nspans;
  float *params;     /* nparams, aligned: the model's values, the mapped ones overwritten per eval */
  bool params_whole; /* params holds a whole vector of eval_params: restore the model's first */
  ng_nn_work *work;
  ng_confusion *conf; /* error, balanced_error, macro_f1: counts of one chunk */
  ng_confusion *fin;  /* balanced_error, macro_f1: the summed counts of finish */
  size_t xstride;     /* floats between the starts of two loaded chunks: chunk_rows * d rounded up */
  size_t first, count;
  float *x;   /* count * xstride, aligned */
  int32_t *y; /* count * chunk_rows labels, or NULL */
  float *yt;  /* count * chunk_rows * t targets, or NULL */
  char *path; /* for messages */
};

const char *ng_nn_loss_name(ng_nn_loss loss) {
  for (size_t i = 0; i < ng_metric_def_count(); i++) /* the first row that minimizes it names it */
    if (ng_metric_def_at(i)->loss == (int)loss) return ng_metric_def_at(i)->name;
  return NULL;
}

int ng_nn_loss_from_name(const char *name, ng_nn_loss *out) {
  const ng_metric_def *def = ng_metric_def_find(name);
  if (def && def->loss >= 0) {
    *out = (ng_nn_loss)def->loss;
    return NG_OK;
  }
  char known[256];
  ng_metric_names(0, 1, known, sizeof known);
  return ng_error(NG_EINVAL, "unknown loss '%s' (known: %s)", name ? name : "(null)", known);
}

/* aligned_alloc wants a multiple of the alignment; NULL for 0 bytes or on overflow. */
static void *alloc_aligned(size_t items, size_t size) {
  if (items == 0 || items > SIZE_MAX / size - OBJ_ALIGN) return NULL;
  size_t bytes = (items * size + OBJ_ALIGN - 1) / OBJ_ALIGN * OBJ_ALIGN;
  return aligned_alloc(OBJ_ALIGN, bytes);
}

static void unload(ng_nn_objective *o) {
  free(o->x);
  free(o->y);
  free(o->yt);
  o->x = NULL;
  o->y = NULL;
  o->yt = NULL;
  o->first = o->count = 0;
}

void ng_nn_objective_destroy(ng_nn_objective **o) {
  if (!o || !*o) return;
  ng_nn_objective *s = *o;
  unload(s);
  ng_dataset_close(&s->ds);
  ng_nn_work_destroy(&s->work);
  ng_confusion_destroy(&s->conf);
  ng_confusion_destroy(&s->fin);
  free(s->spans);
  free(s->params);
  free(s->path);
  free(s);
  *o = NULL;
}

/* The losses whose stats are confusion counts, not a (sum, rows) pair. */
static bool is_confusion(ng_nn_loss loss) {
  return loss == NG_NN_LOSS_BALANCED_ERROR || loss == NG_NN_LOSS_MACRO_F1;
}

/* The losses that count predicted classes, which use_threshold or a threshold override may threshold. */
static bool predicts(ng_nn_loss loss) {
  return loss == NG_NN_LOSS_ERROR || is_confusion(loss);
}

static int check_loss(const ng_nn_objective_config *cfg, const ng_data_info *info, size_t outputs,
                      const char *path) {
  const char *name = ng_nn_loss_name(cfg->loss);
  if (!name) return ng_error(NG_EINVAL, "nn objective: unknown loss kind %d", (int)cfg->loss);
  bool labels = info->t == 0;
  if (cfg->loss == NG_NN_LOSS_MSE && labels)
    return ng_error(NG_EINVAL,
                    "nn objective: the loss mse needs float targets, but %s (/y) holds class labels", path);
  if (cfg->loss != NG_NN_LOSS_MSE && !labels)
    return ng_error(NG_EINVAL,
                    "nn objective: the loss %s needs class labels, but %s (/y) holds float targets", name,
                    path);
  if (cfg->loss == NG_NN_LOSS_THRESHOLD_ERROR) {
    if (outputs != 2)
      return ng_error(NG_EINVAL,
                      "nn objective: the loss threshold_error needs a binary classifier, but the "
                      "model has %zu outputs",
                      outputs);
    if (!(cfg->threshold >= 0 && cfg->threshold <= 1))
      return ng_error(NG_EINVAL, "nn objective: the threshold of threshold_error must be in [0, 1], got %g",
                      cfg->threshold);
  }
  if (cfg->use_threshold) {
    if (!predicts(cfg->loss))
      return ng_error(NG_EINVAL,
                      "nn objective: use_threshold applies to error, balanced_error and macro_f1, not to %s",
                      name);
    if (outputs != 2)
      return ng_error(NG_EINVAL,
                      "nn objective: use_threshold with %s needs a binary classifier, but the model has %zu "
                      "outputs",
                      name, outputs);
    if (!(cfg->threshold >= 0 && cfg->threshold <= 1))
      return ng_error(NG_EINVAL, "nn objective: the threshold of %s must be in [0, 1], got %g", name,
                      cfg->threshold);
  }
  return NG_OK;
}

/* The spans of the named tensors; n = their total size. */
static int map_tensors(ng_nn_objective *o, const ng_nn_objective_config *cfg) {
  o->spans = malloc(cfg->ntensors * sizeof *o->spans);
  if (!o->spans) return ng_error(NG_ENOMEM, "nn objective: out of memory");
  o->nspans = cfg->ntensors;
  o->n = 0;
  for (size_t i = 0; i < cfg->ntensors; i++) {
    const char *name = cfg->tensors[i];
    size_t offset, ndim, shape[4];
    if (!name) return ng_error(NG_EINVAL, "nn objective: tensor %zu of the list has no name", i);
    if (ng_model_find(o->model, name, &offset, &ndim, shape) != NG_OK) {
      size_t T = ng_model_ntensors(o->model);
      const char *first = NULL, *last = NULL;
      if (T) {
        size_t ignored[4], off;
        ng_model_tensor(o->model, 0, &first, &off, &ndim, ignored);
        ng_model_tensor(o->model, T - 1, &last, &off, &ndim, ignored);
      }
      return ng_error(NG_ENOTFOUND,
                      "nn objective: the model has no tensor '%s' (it has %zu tensors, '%s' .. '%s'; see "
                      "`nograd inspect`)",
                      name, T, first ? first : "", last ? last : "");
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(cfg->tensors[j], name) == 0)
        return ng_error(NG_EINVAL, "nn objective: the tensor '%s' is listed twice", name);
    size_t len = 1;
    for (size_t k = 0; k < ndim; k++)
      len *= shape[k];
    o->spans[i] = (span){offset, len};
    o->n += len;
  }
  if (o->n == 0) return ng_error(NG_EINVAL, "nn objective: the listed tensors hold no parameters");
  return NG_OK;
}

int ng_nn_objective_create(const ng_model *model, const char *data_path, const ng_nn_objective_config *cfg,
                           ng_nn_objective **out) {
  *out = NULL;
  if (!model || !data_path || !cfg)
    return ng_error(NG_EINVAL, "nn objective: a model, a dataset path and a configuration are needed");
  if (cfg->chunk_rows < 1) return ng_error(NG_EINVAL, "nn objective: chunk rows must be >= 1, got 0");
  if (cfg->ntensors && !cfg->tensors)
    return ng_error(NG_EINVAL, "nn objective: %zu tensors but no list of names", cfg->ntensors);
  ng_nn_objective *o = calloc(1, sizeof *o);
  if (!o) return ng_error(NG_ENOMEM, "nn objective: out of memory");
  int st;
  o->model = model;
  o->loss = cfg->loss;
  o->threshold = cfg->threshold;
  o->use_threshold = cfg->use_threshold;
  o->nparams = ng_model_nparams(model);
  o->classes = ng_model_output_size(model);
  if (!(o->path = malloc(strlen(data_path) + 1))) {
    st = ng_error(NG_ENOMEM, "nn objective: out of memory");
    goto fail;
  }
  memcpy(o->path, data_path, strlen(data_path) + 1);
  NG_TRY(st, ng_dataset_open(data_path, &o->ds), fail);
  const ng_data_info *info = ng_dataset_info(o->ds);
  NG_TRY(st, ng_model_check_fit(model, "the model", info, data_path), fail);
  NG_TRY(st, check_loss(cfg, info, o->classes, data_path), fail);
  o->rows = info->n;
  o->d = info->d;
  o->t = info->t;
  o->chunk_rows = cfg->chunk_rows;
  o->nchunks = ng__ceil_div(o->rows, o->chunk_rows);
  size_t batch = cfg->batch ? cfg->batch : NG_NN_OBJECTIVE_BATCH;
  o->batch = batch < o->chunk_rows ? batch : o->chunk_rows;
  size_t align = OBJ_ALIGN / sizeof(float);
  if (o->chunk_rows > SIZE_MAX / o->d - align) {
    st = ng_error(NG_EINVAL, "nn objective: chunks of %zu rows of %zu floats are too large", o->chunk_rows,
                  o->d);
    goto fail;
  }
  o->xstride = (o->chunk_rows * o->d + align - 1) / align * align;
  if (cfg->tensors && cfg->ntensors) {
    NG_TRY(st, map_tensors(o, cfg), fail);
  } else {
    o->n = o->nparams;
  }
  o->params = alloc_aligned(o->nparams, sizeof *o->params);
  if (!o->params) {
    st = ng_error(NG_ENOMEM, "nn objective: out of memory for %zu parameters", o->nparams);
    goto fail;
  }
  memcpy(o->params, ng_model_params_const(model), o->nparams * sizeof *o->params);
  NG_TRY(st, ng_nn_work_create(model, o->batch, false, &o->work), fail);
  if (predicts(o->loss)) NG_TRY(st, ng_confusion_create(o->classes, &o->conf), fail);
  if (is_confusion(o->loss)) NG_TRY(st, ng_confusion_create(o->classes, &o->fin), fail);
  *out = o;
  return NG_OK;
fail:
  ng_nn_objective_destroy(&o);
  return st;
}

size_t ng_nn_objective_dim(const ng_nn_objective *o) {
  return o->n;
}
size_t ng_nn_objective_chunks(const ng_nn_objective *o) {
  return o->nchunks;
}
size_t ng_nn_objective_batch(const ng_nn_objective *o) {
  return o->batch;
}

void ng_nn_objective_x0(const ng_nn_objective *o, double *x) {
  const float *p = ng_model_params_const(o->model);
  if (!o->spans) {
    for (size_t i = 0; i < o->n; i++)
      x[i] = p[i];
    return;
  }
  size_t j = 0;
  for (size_t s = 0; s < o->nspans; s++)
    for (size_t i = 0; i < o->spans[s].len; i++)
      x[j++] = p[o->spans[s].offset + i];
}

/* Writes the mapped parameters of x into params (the rest is left as it is). */
static void fill(const ng_nn_objective *o, const double *x, float *params) {
  if (!o->spans) {
    for (size_t i = 0; i < o->n; i++)
      params[i] = (float)x[i];
    return;
  }
  for (size_t s = 0; s < o->nspans; s++) {
    float *dst = params + o->spans[s].offset;
    for (size_t i = 0; i < o->spans[s].len; i++)
      dst[i] = (float)x[i];
    x += o->spans[s].len;
  }
}

void ng_nn_objective_params(const ng_nn_objective *o, const double *x, float *params) {
  memcpy(params, ng_model_params_const(o->model), o->nparams * sizeof *params);
  fill(o, x, params);
}

static size_t chunk_size(const ng_nn_objective *o, size_t chunk) {
  size_t start = chunk * o->chunk_rows;
  return o->rows - start < o->chunk_rows ? o->rows - start : o->chunk_rows;
}

int ng_nn_objective_load(ng_nn_objective *o, size_t first_chunk, size_t count) {
  if (first_chunk > o->nchunks || count > o->nchunks - first_chunk)
    return ng_error(NG_EINVAL,
                    "nn objective: cannot load %zu chunks from chunk %zu: %s has %zu chunks (0..%zu)", count,
                    first_chunk, o->path, o->nchunks, o->nchunks - 1);
  unload(o);
  if (count == 0) return NG_OK;
  size_t cr = o->chunk_rows;
  o->x = alloc_aligned(count * o->xstride, sizeof *o->x);
  if (o->t)
    o->yt = ng__mallocn(count * cr, o->t, sizeof *o->yt);
  else
    o->y = ng__mallocn(count, cr, sizeof *o->y);
  if (!o->x || (!o->y && !o->yt)) {
    unload(o);
    return ng_error(NG_ENOMEM, "nn objective: out of memory for chunks %zu..%zu of %s (%zu MB)", first_chunk,
                    first_chunk + count - 1, o->path,
                    count * (o->xstride + cr * (o->t ? o->t : 1)) * sizeof(float) >> 20);
  }
  for (size_t i = 0; i < count; i++) {
    size_t chunk = first_chunk + i, m = chunk_size(o, chunk), start = chunk * cr;
    void *y = o->t ? (void *)(o->yt + i * cr * o->t) : (void *)(o->y + i * cr);
    int st = ng_dataset_read_rows(o->ds, start, m, o->x + i * o->xstride, y);
    if (st != NG_OK) {
      unload(o);
      return st;
    }
    for (size_t r = 0; !o->t && r < m; r++) {
      int32_t label = o->y[i * cr + r];
      if (label < 0 || (size_t)label >= o->classes) {
        unload(o);
        return ng_error(NG_EMISMATCH, "%s: /y row %zu: label %d is outside the model's classes [0, %zu)",
                        o->path, start + r, (int)label, o->classes);
      }
    }
  }
  o->first = first_chunk;
  o->count = count;
  return NG_OK;
}

/* The candidate x into the scratch vector, undoing a whole vector that eval_params left there. */
static void set_candidate(ng_nn_objective *o, const double *x) {
  if (o->params_whole && o->spans)
    memcpy(o->params, ng_model_params_const(o->model), o->nparams * sizeof *o->params);
  o->params_whole = false;
  fill(o, x, o->params);
}

static int check_loaded(const ng_nn_objective *o, size_t chunk) {
  if (chunk >= o->first && chunk - o->first < o->count) return NG_OK;
  if (o->count == 0)
    return ng_error(NG_EINVAL, "nn objective: chunk %zu of %s is not loaded (no chunks are loaded)", chunk,
                    o->path);
  return ng_error(NG_EINVAL, "nn objective: chunk %zu of %s is not loaded (loaded: chunks %zu..%zu)", chunk,
                  o->path, o->first, o->first + o->count - 1);
}

/* Adds the stats of the scratch parameters on a loaded chunk; thr: NaN for the argmax, else the threshold
 * of threshold_error or of the thresholded prediction. */
static int eval_chunk(ng_nn_objective *o, size_t chunk, double thr, double *stats) {
  size_t i = chunk - o->first, m = chunk_size(o, chunk), cr = o->chunk_rows, C = o->classes;
  const float *xs = o->x + i * o->xstride;
  double s = 0;
  if (o->conf) ng_confusion_clear(o->conf);
  for (size_t row = 0; row < m; row += o->batch) {
    size_t b = m - row < o->batch ? m - row : o->batch;
    const float *out;
    NG_CALL(ng_nn_forward(o->model, o->params, o->work, xs + row * o->d, b, &out));
    const int32_t *y = o->y ? o->y + i * cr + row : NULL;
    switch (o->loss) {
      case NG_NN_LOSS_CROSS_ENTROPY:
        s += ng_loss_cross_entropy(out, y, b, C, NULL);
        break;
      case NG_NN_LOSS_MSE:
        s += ng_loss_mse(out, o->yt + (i * cr + row) * o->t, b, o->t, NULL);
        break;
      case NG_NN_LOSS_THRESHOLD_ERROR:
        s += (double)ng_metric_threshold_error(out, y, b, thr);
        break;
      case NG_NN_LOSS_ERROR:
      case NG_NN_LOSS_BALANCED_ERROR:
      case NG_NN_LOSS_MACRO_F1:
        if (!y) return ng_error(NG_EINTERNAL, "nn objective: %s without labels", ng_nn_loss_name(o->loss));
        if (isnan(thr))
          NG_CALL(ng_confusion_add(o->conf, out, y, b));
        else
          NG_CALL(ng_confusion_add_threshold(o->conf, out, y, b, thr));
        break;
      default:
        return ng_error(NG_EINTERNAL, "nn objective: loss %d cannot be evaluated", (int)o->loss);
    }
  }
  if (is_confusion(o->loss)) {
    const int64_t *c = ng_confusion_counts_const(o->conf);
    for (size_t k = 0; k < C * C; k++)
      stats[k] += (double)c[k];
    return NG_OK;
  }
  if (o->loss == NG_NN_LOSS_ERROR) { /* misclassified: the rows off the diagonal */
    const int64_t *c = ng_confusion_counts_const(o->conf);
    int64_t correct = 0;
    for (size_t k = 0; k < C; k++)
      correct += c[k * C + k];
    s = (double)((int64_t)m - correct);
  }
  stats[0] += s;
  stats[1] += (double)m;
  return NG_OK;
}

/* The threshold of this evaluation (see eval_chunk), from the configuration or an override. */
static int resolve_threshold(const ng_nn_objective *o, double override, double *thr) {
  if (isnan(override)) {
    *thr = o->loss == NG_NN_LOSS_THRESHOLD_ERROR || o->use_threshold ? o->threshold : NAN;
    return NG_OK;
  }
  const char *name = ng_nn_loss_name(o->loss);
  if (o->loss != NG_NN_LOSS_THRESHOLD_ERROR && !predicts(o->loss))
    return ng_error(NG_EINVAL,
                    "nn objective: a threshold (%g) applies to threshold_error, error, balanced_error and "
                    "macro_f1, not to %s",
                    override, name);
  if (o->classes != 2)
    return ng_error(NG_EINVAL,
                    "nn objective: a threshold (%g) needs a binary classifier, but the model has %zu outputs",
                    override, o->classes);
  if (!(override >= 0 && override <= 1))
    return ng_error(NG_EINVAL, "nn objective: the threshold of %s must be in [0, 1], got %g", name, override);
  *thr = override;
  return NG_OK;
}

size_t ng_nn_objective_nstats(const ng_nn_objective *o) {
  return is_confusion(o->loss) ? o->classes * o->classes : 2;
}

double ng_nn_objective_finish(const ng_nn_objective *o, const double *stats) {
  if (!is_confusion(o->loss)) return stats[1] > 0 ? stats[0] / stats[1] : NAN;
  size_t K = o->classes * o->classes;
  int64_t *c = ng_confusion_counts(o->fin);
  for (size_t k = 0; k < K; k++) {
    double v = stats[k];
    if (!(v >= 0 && v <= 9007199254740992.0 && v == floor(v))) return NAN; /* not a count: 2^53 */
    c[k] = (int64_t)v;
  }
  if (o->loss == NG_NN_LOSS_BALANCED_ERROR) return ng_metric_from_confusion(o->fin, NG_METRIC_BALANCED_ERROR);
  return 1.0 - ng_metric_from_confusion(o->fin, NG_METRIC_MACRO_F1);
}

int ng_nn_objective_eval(ng_nn_objective *o, const double *x, size_t chunk, double *sum, double *count) {
  NG_CALL(check_loaded(o, chunk));
  if (is_confusion(o->loss))
    return ng_error(NG_EINVAL,
                    "nn objective: the loss %s is not a sum over rows, so it has no (sum, count) per chunk: "
                    "evaluate its confusion counts with ng_nn_objective_eval_stats",
                    ng_nn_loss_name(o->loss));
  double thr = NAN, st[2] = {0, 0};
  NG_CALL(resolve_threshold(o, NAN, &thr));
  set_candidate(o, x);
  NG_CALL(eval_chunk(o, chunk, thr, st));
  *sum += st[0];
  *count += st[1];
  return NG_OK;
}

int ng_nn_objective_eval_stats(ng_nn_objective *o, const double *x, size_t chunk, double *stats) {
  NG_CALL(check_loaded(o, chunk));
  double thr = NAN;
  NG_CALL(resolve_threshold(o, NAN, &thr));
  set_candidate(o, x);
  return eval_chunk(o, chunk, thr, stats);
}

int ng_nn_objective_eval_params(ng_nn_objective *o, const float *params, double threshold, size_t chunk,
                                double *stats) {
  NG_CALL(check_loaded(o, chunk));
  double thr = NAN;
  NG_CALL(resolve_threshold(o, threshold, &thr));
  memcpy(o->params, params, o->nparams * sizeof *o->params);
  o->params_whole = true;
  return eval_chunk(o, chunk, thr, stats);
}

static int load_cb(void *ctx, size_t first_chunk, size_t count) {
  return ng_nn_objective_load(ctx, first_chunk, count);
}

static int eval_cb(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                   double *count) {
  return ng_nn_objective_eval(ctx, x, chunk, sum, count);
}

static int eval_stats_cb(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk,
                         double *stats) {
  return ng_nn_objective_eval_stats(ctx, x, chunk, stats);
}

static double finish_cb(void *ctx, const double *stats) {
  return ng_nn_objective_finish(ctx, stats);
}

void ng_nn_objective_get(ng_nn_objective *o, ng_objective *obj) {
  *obj = (ng_objective){.n = o->n, .nchunks = o->nchunks, .load = load_cb, .eval = eval_cb, .ctx = o};
  if (is_confusion(o->loss)) {
    obj->eval = NULL;
    obj->nstats = ng_nn_objective_nstats(o);
    obj->eval_stats = eval_stats_cb;
    obj->finish = finish_cb;
  }
}
