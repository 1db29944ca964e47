/* `nograd train`: minibatch SGD (with momentum) or Adam on a dataset file, early stopping on a validation
 * set.
 *
 * Rank 0 trains alone; the other ranks wait (sleeping, so that they leave the cores to rank 0) and learn the
 * status. Everything random is keyed: the row order of epoch e is a Fisher-Yates shuffle driven by the stream
 * (seed, NG_RNG_SHUFFLE, e, 0), the initial weights come from ng_model_init(seed), and the dropout masks of
 * step s from (seed, s). The optimizers follow torch.optim: SGD's buffer starts at the first gradient and
 * then is momentum * buf + g; Adam's step is lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps);
 * weight decay is L2, added to the gradient before either. Losses are means over the batch, as PyTorch's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/checked.h"
#include "nograd/error.h"
#include "opt/adam.h"
#include "nograd/rng.h"
#include "nograd/timer.h"
#include "nograd/nn_objective.h"
#include "nograd/train.h"

#define SPEC_MAX_BYTES (1 << 20) /* a spec file is a few lines; refuse anything absurd */
#define VAL_BATCH 256            /* examples per forward pass on the validation set */

/* A trainable range of the parameter vector (batch-norm running statistics are not trainable). */
typedef struct {
  size_t offset, len;
} span;

typedef struct {
  ng_model *model;
  ng_data train, val;
  ng_nn_work *work, *vwork;
  ng_confusion *conf;
  span *spans;
  size_t nspans;
  float *grad, *m1, *m2, *best, *xb, *yb, *dout;
  int32_t *lb;
  size_t *order;
} trainer;

static void trainer_free(trainer *t) {
  free(t->order);
  free(t->lb);
  free(t->dout);
  free(t->yb);
  free(t->xb);
  free(t->best);
  free(t->m2);
  free(t->m1);
  free(t->grad);
  free(t->spans);
  ng_confusion_destroy(&t->conf);
  ng_nn_work_destroy(&t->vwork);
  ng_nn_work_destroy(&t->work);
  ng_data_free(&t->val);
  ng_data_free(&t->train);
  ng_model_destroy(&t->model);
}

static int read_spec(const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return ng_error(NG_EIO, "%s: cannot open the spec file", path);
  char *text = malloc(SPEC_MAX_BYTES + 1);
  if (!text) {
    fclose(f);
    return ng_error(NG_ENOMEM, "out of memory for the spec %s", path);
  }
  size_t len = fread(text, 1, SPEC_MAX_BYTES + 1, f);
  int bad = ferror(f);
  fclose(f);
  if (bad || len > SPEC_MAX_BYTES) {
    free(text);
    return ng_error(NG_EIO, "%s: %s", path,
                    bad ? "cannot read the spec file" : "spec file larger than 1 MiB");
  }
  text[len] = '\0';
  *out = text;
  return NG_OK;
}

static int load_model(const ng_train_config *cfg, ng_model **out) {
  if (cfg->init_from) {
    NG_CALL(ng_model_read(cfg->init_from, out));
    if (!ng_model_is_onnx(*out)) return NG_OK;
    ng_model_destroy(out);
    return ng_error(NG_EINVAL,
                    "%s: nograd train needs a backward pass, which nograd has for its native models only; "
                    "fine-tune an ONNX model in PyTorch (tools/nograd_torch.py loads it back)",
                    cfg->init_from);
  }
  char *text = NULL;
  NG_CALL(read_spec(cfg->spec, &text));
  int st = ng_model_from_spec(text, out);
  free(text);
  if (st) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ng_errmsg());
    return ng_error(st, "%s: %s", cfg->spec, msg);
  }
  ng_model_init(*out, cfg->seed);
  return NG_OK;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Checks a dataset against the model: shape, and labels within the model's outputs. */
static int check_data(const ng_model *m, const char *model_path, const ng_data *D, const char *path,
                      bool ce) {
  ng_data_info info = {.n = D->n, .d = D->d, .xrank = D->xrank, .t = D->t, .classes = D->classes};
  memcpy(info.xdims, D->xdims, sizeof info.xdims);
  NG_CALL(ng_model_check_fit(m, model_path, &info, path));
  if (ce && D->t) return ng_error(NG_EINVAL, "--loss ce: %s has float targets (/y), not class labels", path);
  size_t classes = ng_model_output_size(m);
  for (size_t i = 0; !D->t && i < D->n; i++)
    if (D->y[i] < 0 || (size_t)D->y[i] >= classes)
      return ng_error(NG_EMISMATCH, "%s: /y row %zu: label %d is outside the model's classes [0, %zu) (%s)",
                      path, i, (int)D->y[i], classes, model_path);
  return NG_OK;
}

static int setup(const ng_train_config *cfg, trainer *t) {
  const char *mpath = cfg->init_from ? cfg->init_from : cfg->spec;
  NG_CALL(load_model(cfg, &t->model));
  NG_CALL(ng_data_load(cfg->train, &t->train));
  bool ce = cfg->loss == NG_TRAIN_LOSS_CE || (cfg->loss == NG_TRAIN_LOSS_AUTO && !t->train.t);
  NG_CALL(check_data(t->model, mpath, &t->train, cfg->train, ce));
  if (cfg->val) {
    NG_CALL(ng_data_load(cfg->val, &t->val));
    NG_CALL(check_data(t->model, mpath, &t->val, cfg->val, ce));
    if (t->val.t != t->train.t)
      return ng_error(NG_EMISMATCH, "%s has %s, %s has %s", cfg->train, t->train.t ? "targets" : "labels",
                      cfg->val, t->val.t ? "targets" : "labels");
  }
  size_t n = ng_model_nparams(t->model), out = ng_model_output_size(t->model), B = cfg->batch;
  size_t rows = B > VAL_BATCH ? B : VAL_BATCH; /* the batch buffers serve validation too */
  size_t nt = ng_model_ntensors(t->model);
  t->spans = malloc((nt ? nt : 1) * sizeof *t->spans);
  if (!t->spans) return ng_error(NG_ENOMEM, "out of memory");
  for (size_t i = 0; i < nt; i++) {
    const char *name;
    size_t off, ndim, shape[4], len = 1;
    NG_CALL(ng_model_tensor(t->model, i, &name, &off, &ndim, shape));
    for (size_t k = 0; k < ndim; k++)
      len *= shape[k];
    if (ends_with(name, ".running_mean") || ends_with(name, ".running_var")) continue;
    t->spans[t->nspans++] = (span){off, len};
  }
  NG_CALL(ng_nn_work_create(t->model, B, true, &t->work));
  if (cfg->val) NG_CALL(ng_nn_work_create(t->model, VAL_BATCH, false, &t->vwork));
  if (!t->train.t) NG_CALL(ng_confusion_create(out, &t->conf));
  t->grad = calloc(n, sizeof *t->grad);
  t->m1 = calloc(n, sizeof *t->m1);
  t->m2 = calloc(n, sizeof *t->m2);
  t->best = malloc(n * sizeof *t->best);
  t->xb = ng__mallocn(rows, t->train.d, sizeof *t->xb);
  t->yb = ng__mallocn(rows, out, sizeof *t->yb);
  t->dout = ng__mallocn(B, out, sizeof *t->dout);
  t->lb = malloc(rows * sizeof *t->lb);
  t->order = calloc(t->train.n, sizeof *t->order);
  if (!t->grad || !t->m1 || !t->m2 || !t->best || !t->xb || !t->yb || !t->dout || !t->lb || !t->order)
    return ng_error(NG_ENOMEM, "out of memory for %zu parameters and batches of %zu", n, B);
  return NG_OK;
}

/* The mean loss of a batch at `params`; dout (if not NULL) gets the gradient of that mean. Labels with MSE
 * become one-hot targets. */
static double batch_loss(const ng_train_config *cfg, trainer *t, const float *out, size_t b, float *dout) {
  size_t width = ng_model_output_size(t->model);
  double sum;
  bool mse = cfg->loss == NG_TRAIN_LOSS_MSE || t->train.t;
  if (mse && !t->train.t) {
    memset(t->yb, 0, b * width * sizeof *t->yb);
    for (size_t i = 0; i < b; i++)
      t->yb[i * width + (size_t)t->lb[i]] = 1.0f;
  }
  if (mse)
    sum = ng_loss_mse(out, t->yb, b, width, dout);
  else
    sum = ng_loss_cross_entropy(out, t->lb, b, width, dout);
  if (dout)
    for (size_t i = 0; i < b * width; i++)
      dout[i] /= (float)b;
  return sum / (double)b;
}

/* Copies rows idx[0..b) of D into the batch buffers. */
static void gather(trainer *t, const ng_data *D, const size_t *idx, size_t b) {
  size_t d = D->d;
  for (size_t i = 0; i < b; i++) {
    memcpy(t->xb + i * d, D->x + idx[i] * d, d * sizeof *t->xb);
    if (D->t)
      memcpy(t->yb + i * D->t, D->yt + idx[i] * D->t, D->t * sizeof *t->yb);
    else
      t->lb[i] = D->y[idx[i]];
  }
}

/* Mean loss and accuracy on the validation set. */
static int validate(const ng_train_config *cfg, trainer *t, double *loss, double *acc) {
  const ng_data *V = &t->val;
  const float *params = ng_model_params_const(t->model);
  double sum = 0;
  size_t idx[VAL_BATCH] = {0};
  if (t->conf) ng_confusion_clear(t->conf);
  for (size_t row = 0; row < V->n; row += VAL_BATCH) {
    size_t b = V->n - row; /* > 0 */
    if (b > VAL_BATCH) b = VAL_BATCH;
    for (size_t i = 0; i < b; i++)
      idx[i] = row + i;
    gather(t, V, idx, b);
    const float *out;
    NG_CALL(ng_nn_forward(t->model, params, t->vwork, t->xb, b, &out));
    sum += batch_loss(cfg, t, out, b, NULL) * (double)b;
    if (t->conf) {
      /* a binary model with a stored decision threshold (retrofit) is measured at it, as eval does */
      double thr = ng_model_threshold(t->model);
      if (!isnan(thr) && ng_model_output_size(t->model) == 2)
        NG_CALL(ng_confusion_add_threshold(t->conf, out, t->lb, b, thr));
      else
        NG_CALL(ng_confusion_add(t->conf, out, t->lb, b));
    }
  }
  *loss = sum / (double)V->n;
  *acc = t->conf ? ng_metric_from_confusion(t->conf, NG_METRIC_ACCURACY) : NAN;
  return NG_OK;
}

static void shuffle(size_t *order, size_t n, uint64_t seed, size_t epoch) {
  ng_rng r;
  ng_rng_init(&r, seed, NG_RNG_SHUFFLE, (uint32_t)epoch, 0);
  for (size_t i = 0; i < n; i++)
    order[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)ng_rng_below(&r, i);
    size_t tmp = order[i - 1];
    order[i - 1] = order[j];
    order[j] = tmp;
  }
}

/* One optimizer step on the trainable spans (step is 1-based). */
static void update(const ng_train_config *cfg, trainer *t, uint64_t step) {
  float *p = ng_model_params(t->model);
  if (cfg->optimizer == NG_TRAIN_ADAM) {
    ng__adam adam = {cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay};
    for (size_t s = 0; s < t->nspans; s++) {
      size_t o = t->spans[s].offset;
      ng__adam_step_f32(&adam, step, t->spans[s].len, p + o, t->grad + o, t->m1 + o, t->m2 + o);
    }
    return;
  }
  float lr = (float)cfg->lr, wd = (float)cfg->weight_decay, mom = (float)cfg->momentum;
  for (size_t s = 0; s < t->nspans; s++) {
    size_t end = t->spans[s].offset + t->spans[s].len;
    for (size_t i = t->spans[s].offset; i < end; i++) {
      float g = t->grad[i] + wd * p[i];
      if (mom > 0) {
        t->m1[i] = step == 1 ? g : mom * t->m1[i] + g;
        g = t->m1[i];
      }
      p[i] -= lr * g;
    }
  }
}

static int train_rank0(const ng_train_config *cfg, ng_train_result *res) {
  double t0 = ng_time_now();
  trainer t = {0};
  int st;
  NG_TRY(st, setup(cfg, &t), done);
  const ng_data *T = &t.train;
  size_t n = ng_model_nparams(t.model), B = cfg->batch;
  float *params = ng_model_params(t.model);
  uint64_t step = 0;
  double best_val = INFINITY;
  size_t since_best = 0;
  memcpy(t.best, params, n * sizeof *params);
  res->best_epoch = 0;
  res->val_loss = res->val_accuracy = NAN;
  for (size_t epoch = 1; epoch <= cfg->epochs; epoch++) {
    shuffle(t.order, T->n, cfg->seed, epoch);
    double sum = 0;
    for (size_t row = 0; row < T->n; row += B) {
      size_t b = T->n - row < B ? T->n - row : B;
      gather(&t, T, t.order + row, b);
      const float *out;
      ng_nn_work_set_dropout(t.work, cfg->seed, step);
      NG_TRY(st, ng_nn_forward(t.model, params, t.work, t.xb, b, &out), done);
      double loss = batch_loss(cfg, &t, out, b, t.dout);
      if (!isfinite(loss)) {
        st = ng_error(NG_ENUMERIC,
                      "%s: the training loss became %g at epoch %zu, step %llu (try a lower --lr)",
                      cfg->train, loss, epoch, (unsigned long long)step + 1);
        goto done;
      }
      sum += loss * (double)b;
      memset(t.grad, 0, n * sizeof *t.grad);
      NG_TRY(st, ng_nn_backward(t.model, params, t.work, t.dout, t.grad), done);
      update(cfg, &t, ++step);
    }
    double train_loss = sum / (double)T->n, vloss = NAN, vacc = NAN;
    res->epochs = epoch;
    if (cfg->val) NG_TRY(st, validate(cfg, &t, &vloss, &vacc), done);
    if (cfg->progress) {
      fprintf(cfg->progress, "epoch %4zu  train_loss %.6f", epoch, train_loss);
      if (cfg->val) fprintf(cfg->progress, "  val_loss %.6f  val_accuracy %.4f", vloss, vacc);
      fprintf(cfg->progress, "  %.1fs\n", ng_time_now() - t0);
      fflush(cfg->progress);
    }
    if (!cfg->val || vloss < best_val) {
      if (cfg->val) best_val = vloss;
      since_best = 0;
      memcpy(t.best, params, n * sizeof *params);
      res->best_epoch = epoch;
      res->train_loss = train_loss;
      res->val_loss = vloss;
      res->val_accuracy = vacc;
    } else if (cfg->patience && ++since_best >= cfg->patience) {
      break;
    }
  }
  if (res->best_epoch == 0) {
    st = ng_error(NG_ENUMERIC, "%s: the validation loss was never finite; no model written", cfg->val);
    goto done;
  }
  memcpy(params, t.best, n * sizeof *params);
  if (!T->t) NG_TRY(st, ng_model_set_attr(t.model, "classes", T->classes), done);
  NG_TRY(st, ng_model_set_attr(t.model, "train_rows", (int64_t)T->n), done);
  NG_TRY(st, ng_model_write(t.model, cfg->out), done);
  res->seconds = ng_time_now() - t0;
done:
  trainer_free(&t);
  return st;
}

static int check_config(const ng_train_config *cfg) {
  if (!cfg->train || !cfg->out) return ng_error(NG_EINVAL, "train: --train and --out are required");
  if (!cfg->spec == !cfg->init_from)
    return ng_error(NG_EINVAL, "train: give exactly one of --spec and --init-from");
  if (!(cfg->lr > 0) || !isfinite(cfg->lr))
    return ng_error(NG_EINVAL, "--lr: expected a positive number, got %g", cfg->lr);
  if (!(cfg->momentum >= 0 && cfg->momentum < 1))
    return ng_error(NG_EINVAL, "--momentum: expected a number in [0, 1), got %g", cfg->momentum);
  if (!(cfg->weight_decay >= 0) || !isfinite(cfg->weight_decay))
    return ng_error(NG_EINVAL, "--weight-decay: expected a number >= 0, got %g", cfg->weight_decay);
  if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->eps >= 0))
    return ng_error(NG_EINVAL, "train: Adam's betas must lie in [0, 1) and eps be >= 0");
  if (cfg->batch < 1 || cfg->epochs < 1)
    return ng_error(NG_EINVAL, "train: --batch and --epochs must be >= 1");
  return NG_OK;
}

void ng_train_config_init(ng_train_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->optimizer = NG_TRAIN_SGD;
  cfg->lr = 0.01;
  cfg->momentum = 0.9;
  cfg->beta1 = 0.9;
  cfg->beta2 = 0.999;
  cfg->eps = 1e-8;
  cfg->batch = 64;
  cfg->epochs = 20;
  cfg->patience = 5;
  cfg->seed = 1;
  cfg->loss = NG_TRAIN_LOSS_AUTO;
}

int ng_app_train(MPI_Comm comm, const ng_train_config *config, ng_train_result *res) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  ng_train_config cfg = *config;
  int st = NG_OK;
  if (rank == 0) {
    st = check_config(&cfg);
    if (!st) st = train_rank0(&cfg, res);
  }
  /* The waiting ranks poll a non-blocking broadcast with sleeps instead of spinning in MPI_Bcast. */
  MPI_Request req;
  int rc = MPI_Ibcast(&st, 1, MPI_INT, 0, comm, &req);
  if (rc != MPI_SUCCESS)
    return ng_error(NG_EMPI, "train: broadcasting the status failed (MPI error %d)", rc);  // NOLINT
  for (int done = 0;;) {
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) break;
    struct timespec nap = {0, 20000000L}; /* 20 ms */
    nanosleep(&nap, NULL);
  }
  MPI_Wait(&req, MPI_STATUS_IGNORE); /* already complete: the request is null now */
  return st;
}
