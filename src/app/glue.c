/* `nograd glue`: mix K experts of one architecture into a prior for a target domain (see nograd/glue.h).
 *
 * Every rank reads the experts and checks them alike. The optimized methods run through the engine: the
 * objective maps a candidate w (K x L) to softmax coefficients, mixes the experts into a per-rank scratch
 * vector (cached per generation and candidate, so the chunks of one candidate do not remix), and evaluates it
 * with an ng_nn_objective over all parameters on the chunks this rank owns. Fixed parameter vectors (the
 * baselines' experts, the final prior) are evaluated data-parallel: rank r evaluates its block of chunks,
 * rank 0 gathers the per-chunk sums and adds them in chunk order, so the numbers do not depend on P. */
#include "nograd/glue.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/app.h"
#include "nograd/data.h"
#include "nograd/engine.h"
#include "nograd/loss.h"
#include "nograd/error.h"
#include "nograd/nn.h"
#include "nograd/nn_objective.h"
#include "nograd/state.h"
#include "nograd/timer.h"

#define GLUE_DEFAULT_STEPS 100
#define GLUE_DEFAULT_CHUNK 256
#define GLUE_DEFAULT_SIGMA 0.1
#define GLUE_DEFAULT_LR 0.05

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

/* ------------------------------------------------------------------------------------------------------ */
/* Experts: reading, the architecture check, layer groups and mixing. */

typedef struct {
  size_t K, L, nparams;
  ng_model **models;
  const float **theta;    /* K parameter vectors */
  size_t *gstart, *gend;  /* L parameter ranges */
  double *coef;           /* K x L scratch coefficients */
  double *mixed;          /* nparams: scratch mixed parameters */
  ng_nn_objective *train; /* the engine's objective on the target train split (without the cache) */
  /* The mixed parameters of the candidates of the current generation, mixed once however many chunks
   * they meet: slot k holds candidate k (double for ng_nn_objective, float for the cache's passes). */
  uint64_t cand_gen;
  size_t ncand;
  double **cand;
  float **cand_f;
  bool *cand_ok;
  /* The first-layer cache (glue_first_layer_cache): the experts' first-layer outputs on this rank's rows. */
  bool fl;
  size_t fl_layer, fl_out, fl_group; /* the layer, its outputs per example, its layer group */
  size_t chunk_rows, batch, classes, d;
  size_t first_chunk, nchunks_loaded, nrows; /* the loaded chunks and their rows */
  float *z;                                  /* K x nrows x fl_out */
  int32_t *y;                                /* nrows labels */
  float *act;                                /* batch x fl_out: the combined first-layer output */
  ng_nn_work *work;
  const char *train_path;
} glue_ctx;

static void ctx_free(glue_ctx *c) {
  for (size_t k = 0; c->models && k < c->K; k++)
    ng_model_destroy(&c->models[k]);
  free(c->models);
  free(c->theta);
  free(c->gstart);
  free(c->gend);
  free(c->coef);
  free(c->mixed);
  ng_nn_objective_destroy(&c->train);
  for (size_t k = 0; k < c->ncand; k++) {
    free(c->cand[k]);
    free(c->cand_f[k]);
  }
  free(c->cand);
  free(c->cand_f);
  free(c->cand_ok);
  free(c->z);
  free(c->y);
  free(c->act);
  ng_nn_work_destroy(&c->work);
  memset(c, 0, sizeof *c);
}

/* The first line where two specs differ (1-based), with both lines. */
static int spec_difference(const char *a, const char *b, const char *pa, const char *pb) {
  size_t line = 1;
  while (*a || *b) {
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
    if (la != lb || strncmp(a, b, la) != 0)
      return ng_error(NG_EMISMATCH,
                      "the experts are not of one architecture: /model/spec line %zu is '%.*s' in %s but "
                      "'%.*s' in %s",
                      line, (int)(la > 120 ? 120 : la), a, pa, (int)(lb > 120 ? 120 : lb), b, pb);
    a += la + (ea ? 1 : 0);
    b += lb + (eb ? 1 : 0);
    line++;
  }
  return NG_OK;
}

static void shape_text(char *buf, size_t len, size_t ndim, const size_t *shape) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t k = 0; k < ndim && used < len; k++)
    used += (size_t)snprintf(buf + used, len - used, "%s%zu", k ? "x" : "", shape[k]);
}

/* Expert k against expert 0: the same tensors (names, offsets, shapes) first, so that the error names the
 * tensor; then the spec text. */
static int check_same(const ng_model *m0, const ng_model *mk, const char *p0, const char *pk) {
  size_t T0 = ng_model_ntensors(m0), Tk = ng_model_ntensors(mk);
  size_t T = T0 < Tk ? T0 : Tk;
  for (size_t i = 0; i < T; i++) {
    const char *n0, *nk;
    size_t o0, ok, d0, dk, s0[4], sk[4];
    ng_model_tensor(m0, i, &n0, &o0, &d0, s0);
    ng_model_tensor(mk, i, &nk, &ok, &dk, sk);
    if (strcmp(n0, nk) != 0)
      return ng_error(NG_EMISMATCH,
                      "the experts are not of one architecture: tensor %zu is '%s' in %s but '%s' in %s", i,
                      n0, p0, nk, pk);
    bool same = d0 == dk && o0 == ok;
    for (size_t j = 0; same && j < d0; j++)
      same = s0[j] == sk[j];
    if (!same) {
      char a[96], b[96];
      shape_text(a, sizeof a, d0, s0);
      shape_text(b, sizeof b, dk, sk);
      return ng_error(NG_EMISMATCH,
                      "the experts are not of one architecture: tensor '%s' is %s in %s but %s in %s", n0, a,
                      p0, b, pk);
    }
  }
  if (T0 != Tk) {
    const char *extra;
    size_t o, d, s[4];
    ng_model_tensor(T0 > Tk ? m0 : mk, T, &extra, &o, &d, s);
    return ng_error(
        NG_EMISMATCH,
        "the experts are not of one architecture: tensor '%s' is in %s but not in %s (%zu against "
        "%zu tensors)",
        extra, T0 > Tk ? p0 : pk, T0 > Tk ? pk : p0, T0, Tk);
  }
  NG_CALL(spec_difference(ng_model_spec_text(m0), ng_model_spec_text(mk), p0, pk));
  if (ng_model_nparams(m0) != ng_model_nparams(mk))
    return ng_error(NG_EMISMATCH, "the experts are not of one architecture: %s has %zu parameters, %s %zu",
                    p0, ng_model_nparams(m0), pk, ng_model_nparams(mk));
  return NG_OK;
}

/* Layer groups: runs of tensors whose names share the prefix before the last '.'. */
static int make_groups(glue_ctx *c, bool per_layer) {
  const ng_model *m = c->models[0];
  size_t T = ng_model_ntensors(m);
  c->gstart = malloc((T ? T : 1) * sizeof *c->gstart);
  c->gend = malloc((T ? T : 1) * sizeof *c->gend);
  if (!c->gstart || !c->gend) return ng_error(NG_ENOMEM, "glue: out of memory");
  if (!per_layer || T == 0) {
    c->L = 1;
    c->gstart[0] = 0;
    c->gend[0] = c->nparams;
    return NG_OK;
  }
  c->L = 0;
  const char *prev = NULL;
  size_t prev_len = 0;
  for (size_t i = 0; i < T; i++) {
    const char *name;
    size_t off, ndim, shape[4], len = 1;
    ng_model_tensor(m, i, &name, &off, &ndim, shape);
    for (size_t j = 0; j < ndim; j++)
      len *= shape[j];
    const char *dot = strrchr(name, '.');
    size_t plen = dot ? (size_t)(dot - name) : strlen(name);
    if (prev && plen == prev_len && strncmp(prev, name, plen) == 0 && c->gend[c->L - 1] == off) {
      c->gend[c->L - 1] = off + len;
    } else {
      c->gstart[c->L] = off;
      c->gend[c->L] = off + len;
      c->L++;
    }
    prev = name;
    prev_len = plen;
  }
  return NG_OK;
}

/* Reads the experts and checks them (every rank alike). */
static int read_experts(glue_ctx *c, const ng_glue_config *cfg) {
  c->K = cfg->nexperts;
  if (!(c->models = calloc(c->K, sizeof *c->models)) || !(c->theta = calloc(c->K, sizeof *c->theta)))
    return ng_error(NG_ENOMEM, "glue: out of memory");
  for (size_t k = 0; k < c->K; k++) {
    NG_CALL(ng_model_read(cfg->experts[k], &c->models[k]));
    if (k) NG_CALL(check_same(c->models[0], c->models[k], cfg->experts[0], cfg->experts[k]));
    c->theta[k] = ng_model_params_const(c->models[k]);
  }
  c->nparams = ng_model_nparams(c->models[0]);
  NG_CALL(make_groups(c, cfg->per_layer != 0));
  c->coef = malloc(c->K * c->L * sizeof *c->coef);
  c->mixed = malloc((c->nparams ? c->nparams : 1) * sizeof *c->mixed);
  if (!c->coef || !c->mixed) return ng_error(NG_ENOMEM, "glue: out of memory for %zu parameters", c->nparams);
  return NG_OK;
}

/* a = softmax(w) over the experts, per group. */
static void softmax(size_t K, size_t L, const double *w, double *a) {
  for (size_t l = 0; l < L; l++) {
    double m = w[l];
    for (size_t k = 1; k < K; k++)
      if (w[k * L + l] > m) m = w[k * L + l];
    double s = 0;
    for (size_t k = 0; k < K; k++)
      s += (a[k * L + l] = exp(w[k * L + l] - m));
    for (size_t k = 0; k < K; k++)
      a[k * L + l] /= s;
  }
}

/* mixed = sum_k a_k theta_k per group, added in expert order in double. */
static void mix(const glue_ctx *c, const double *a, double *mixed) {
  for (size_t l = 0; l < c->L; l++) {
    size_t s = c->gstart[l], e = c->gend[l];
    for (size_t i = s; i < e; i++)
      mixed[i] = 0;
    for (size_t k = 0; k < c->K; k++) {
      double ak = a[k * c->L + l];
      const float *t = c->theta[k];
      for (size_t i = s; i < e; i++)
        mixed[i] += ak * (double)t[i];
    }
  }
}

/* ------------------------------------------------------------------------------------------------------ */
/* The engine's objective. */

/* Rows [r0, r0 + rows) of a labelled dataset whose rows fit the model: x (rows x d) and y, malloc'd. */
static int read_rows(const ng_model *m, const char *path, size_t r0, size_t rows, float **x, int32_t **y) {
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(path, &ds));
  const ng_data_info *in = ng_dataset_info(ds);
  size_t classes = ng_model_output_size(m);
  int st = NG_OK;
  if (in->t != 0)
    st = ng_error(NG_EMISMATCH, "%s: the target has float targets (/y); mixing experts needs labels", path);
  else if (in->d != ng_model_input_size(m))
    st = ng_error(NG_EMISMATCH, "%s: rows of %zu features (/x) do not fit the experts' input of %zu", path,
                  in->d, ng_model_input_size(m));
  else if (in->classes > (int64_t)classes)
    st = ng_error(NG_EMISMATCH, "%s: %lld classes (/y) but the experts have %zu outputs", path,
                  (long long)in->classes, classes);
  else if (r0 + rows > in->n)
    st = ng_error(NG_EINVAL, "%s: rows %zu..%zu of %zu", path, r0, r0 + rows, in->n);
  *x = malloc((rows * in->d + 1) * sizeof **x);
  *y = malloc((rows + 1) * sizeof **y);
  if (st == NG_OK && (!*x || !*y)) st = ng_error(NG_ENOMEM, "%s: out of memory for %zu rows", path, rows);
  if (st == NG_OK && rows) st = ng_dataset_read_rows(ds, r0, rows, *x, *y);
  ng_dataset_close(&ds);
  for (size_t i = 0; st == NG_OK && i < rows; i++)
    if ((*y)[i] < 0 || (size_t)(*y)[i] >= classes)
      st = ng_error(NG_EMISMATCH, "%s: row %zu has label %d, outside the experts' %zu classes (/y)", path,
                    r0 + i, (int)(*y)[i], classes);
  if (st != NG_OK) {
    free(*x);
    free(*y);
    *x = NULL;
    *y = NULL;
  }
  return st;
}

/* The first-layer cache. theta(a) is linear in a, and so is the output of a dense or conv2d first layer:
 * with sum_k a_k = 1 (per group), W(a) x + b(a) = sum_k a_k (W_k x + b_k). The experts' first-layer outputs
 * on this rank's rows are computed once, when the rows are loaded; a candidate then costs a K-term
 * combination per example instead of the first layer's product, and the passes start at the second layer.
 * Used when the first computing layer is dense or conv2d, computes at least GLUE_CACHE_MIN_FAN multiply-adds
 * per output value for each expert's one in the combination (below that, reading K cached values costs as
 * much as computing one: a first conv of 1 channel and 3x3 kernels computes 9 per value, and the cache made
 * tools/bench/glue_cost.sh's digits CNN 7% slower), and the outputs fit in GLUE_CACHE_BYTES. Each
 * chunk's outputs are computed in batches that start at multiples of the batch within the chunk, as every
 * pass here, so the numbers do not depend on which rank holds a chunk. (They differ from the uncached pass
 * in the last bits: the first layer's outputs are combined in float instead of its parameters in double.) */
#define GLUE_CACHE_BYTES ((size_t)1 << 28)
#define GLUE_CACHE_MIN_FAN 8

static int cache_setup(glue_ctx *c, const char *train_path, size_t chunk_rows) {
  const ng_model *m = c->models[0];
  size_t layer, out, fan_in;
  if (ng_model_first_linear(m, &layer, &out, &fan_in) != NG_OK || fan_in < GLUE_CACHE_MIN_FAN * c->K)
    return NG_OK; /* not applicable or not worth it: plain passes */
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(train_path, &ds));
  size_t rows = ng_dataset_info(ds)->n;
  ng_dataset_close(&ds);
  if ((double)c->K * (double)rows * (double)out * sizeof(float) > (double)GLUE_CACHE_BYTES) return NG_OK;
  const char *name;
  size_t off, ndim, shape[4];
  ng_model_tensor(m, 0, &name, &off, &ndim, shape); /* the first layer's weight: the first tensor */
  c->fl_group = 0;
  for (size_t l = 0; l < c->L; l++)
    if (c->gstart[l] <= off && off < c->gend[l]) c->fl_group = l;
  c->fl_layer = layer;
  c->fl_out = out;
  c->chunk_rows = chunk_rows;
  c->batch = chunk_rows < NG_NN_OBJECTIVE_BATCH ? chunk_rows : NG_NN_OBJECTIVE_BATCH;
  c->classes = ng_model_output_size(m);
  c->d = ng_model_input_size(m);
  c->train_path = train_path;
  c->act = malloc(c->batch * out * sizeof *c->act);
  if (!c->act) return ng_error(NG_ENOMEM, "glue: out of memory");
  NG_CALL(ng_nn_work_create(m, c->batch, false, &c->work));
  c->fl = true;
  return NG_OK;
}

static int cache_load(glue_ctx *c, size_t first_chunk, size_t count) {
  free(c->z);
  free(c->y);
  c->z = NULL;
  c->y = NULL;
  c->first_chunk = first_chunk;
  c->nchunks_loaded = count;
  c->nrows = 0;
  if (count == 0) return NG_OK;
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(c->train_path, &ds));
  size_t n = ng_dataset_info(ds)->n;
  ng_dataset_close(&ds);
  size_t r0 = first_chunk * c->chunk_rows, r1 = (first_chunk + count) * c->chunk_rows;
  if (r1 > n) r1 = n;
  float *x = NULL;
  NG_CALL(read_rows(c->models[0], c->train_path, r0, r1 - r0, &x, &c->y));
  c->nrows = r1 - r0;
  c->z = malloc((c->K * c->nrows * c->fl_out + 1) * sizeof *c->z);
  int st = c->z ? NG_OK : ng_error(NG_ENOMEM, "glue: out of memory for the first-layer cache");
  for (size_t k = 0; k < c->K && st == NG_OK; k++)
    for (size_t ch = 0; ch < count && st == NG_OK; ch++) {
      size_t c0 = ch * c->chunk_rows, c1 = c0 + c->chunk_rows < c->nrows ? c0 + c->chunk_rows : c->nrows;
      for (size_t b = c0; b < c1 && st == NG_OK; b += c->batch) {
        size_t nb = c1 - b < c->batch ? c1 - b : c->batch;
        const float *out;
        st = ng_nn_forward_range(c->models[0], c->theta[k], c->work, 0, c->fl_layer + 1, x + b * c->d, nb,
                                 &out);
        if (st == NG_OK) memcpy(c->z + (k * c->nrows + b) * c->fl_out, out, nb * c->fl_out * sizeof *out);
      }
    }
  free(x);
  return st;
}

/* The cross-entropy sum of mixed parameters p (coefficients a) on loaded chunk `chunk`, from the cache. */
static int cache_eval(glue_ctx *c, const double *a, const float *p, size_t chunk, double *sum,
                      double *count) {
  if (chunk < c->first_chunk || chunk >= c->first_chunk + c->nchunks_loaded)
    return ng_error(NG_EINVAL, "glue: chunk %zu is not loaded", chunk);
  size_t c0 = (chunk - c->first_chunk) * c->chunk_rows;
  size_t c1 = c0 + c->chunk_rows < c->nrows ? c0 + c->chunk_rows : c->nrows;
  size_t F = c->fl_out, L = c->L, g = c->fl_group;
  double loss = 0;
  for (size_t b = c0; b < c1; b += c->batch) {
    size_t nb = c1 - b < c->batch ? c1 - b : c->batch;
    for (size_t k = 0; k < c->K; k++) {
      float ak = (float)a[k * L + g];
      const float *z = c->z + (k * c->nrows + b) * F;
      if (k == 0)
        for (size_t e = 0; e < nb * F; e++)
          c->act[e] = ak * z[e];
      else
        for (size_t e = 0; e < nb * F; e++)
          c->act[e] += ak * z[e];
    }
    const float *out;
    NG_CALL(ng_nn_forward_range(c->models[0], p, c->work, c->fl_layer + 1, ng_model_nlayers(c->models[0]),
                                c->act, nb, &out));
    loss += ng_loss_cross_entropy(out, c->y + b, nb, c->classes, NULL);
  }
  *sum += loss;
  *count += (double)(c1 - c0);
  return NG_OK;
}

static int load_cb(void *ctx, size_t first_chunk, size_t count) {
  glue_ctx *c = ctx;
  return c->fl ? cache_load(c, first_chunk, count) : ng_nn_objective_load(c->train, first_chunk, count);
}

/* Candidate k of `generation`, mixed once: its slot. */
static int candidate(glue_ctx *c, const double *x, uint64_t generation, size_t k) {
  if (generation != c->cand_gen)
    for (size_t i = 0; i < c->ncand; i++)
      c->cand_ok[i] = false;
  c->cand_gen = generation;
  if (k >= c->ncand) { /* grows to the candidates this rank evaluates, once */
    size_t n = k + 1;
    double **cd = realloc(c->cand, n * sizeof *cd);
    if (cd) c->cand = cd;
    float **cf = realloc(c->cand_f, n * sizeof *cf);
    if (cf) c->cand_f = cf;
    bool *ok = realloc(c->cand_ok, n * sizeof *ok);
    if (ok) c->cand_ok = ok;
    if (!cd || !cf || !ok) return ng_error(NG_ENOMEM, "glue: out of memory for %zu candidates", n);
    for (size_t i = c->ncand; i < n; i++) {
      c->cand[i] = malloc((c->K * c->L + c->nparams + 1) * sizeof **c->cand);
      c->cand_f[i] = malloc((c->nparams + 1) * sizeof **c->cand_f);
      c->cand_ok[i] = false;
      c->ncand = i + 1;
      if (!c->cand[i] || !c->cand_f[i]) return ng_error(NG_ENOMEM, "glue: out of memory for candidates");
    }
  }
  if (!c->cand_ok[k]) {
    double *a = c->cand[k], *mixed = a + c->K * c->L;
    softmax(c->K, c->L, x, a);
    mix(c, a, mixed);
    if (c->fl)
      for (size_t i = 0; i < c->nparams; i++)
        c->cand_f[k][i] = (float)mixed[i];
    c->cand_ok[k] = true;
  }
  return NG_OK;
}

static int eval_cb(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                   double *count) {
  glue_ctx *c = ctx;
  NG_CALL(candidate(c, x, generation, k));
  const double *a = c->cand[k];
  if (c->fl) return cache_eval(c, a, c->cand_f[k], chunk, sum, count);
  return ng_nn_objective_eval(c->train, a + c->K * c->L, chunk, sum, count);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Data-parallel evaluation of a fixed parameter vector: cross-entropy and error on one split. */

typedef struct {
  ng_nn_objective *ce, *err;
  size_t nchunks, first, count;
  double *part; /* 3 x count: ce sum, rows, errors */
  double *all;  /* rank 0: 3 x nchunks */
  int *counts, *displs;
} split;

static void split_free(split *s) {
  ng_nn_objective_destroy(&s->ce);
  ng_nn_objective_destroy(&s->err);
  free(s->part);
  free(s->all);
  free(s->counts);
  free(s->displs);
  memset(s, 0, sizeof *s);
}

static int split_open(MPI_Comm comm, const ng_model *m, const char *path, size_t chunk_rows, split *s) {
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
  ng_engine_block(s->nchunks, (size_t)size, (size_t)rank, &s->first, &s->count);
  NG_CALL(ng_nn_objective_load(s->ce, s->first, s->count));
  NG_CALL(ng_nn_objective_load(s->err, s->first, s->count));
  s->part = malloc((3 * s->count + 1) * sizeof *s->part);
  s->all = malloc(3 * s->nchunks * sizeof *s->all);
  s->counts = malloc((size_t)size * sizeof *s->counts);
  s->displs = malloc((size_t)size * sizeof *s->displs);
  if (!s->part || !s->all || !s->counts || !s->displs) return ng_error(NG_ENOMEM, "glue: out of memory");
  for (int r = 0; r < size; r++) {
    size_t f, n;
    ng_engine_block(s->nchunks, (size_t)size, (size_t)r, &f, &n);
    s->counts[r] = (int)(3 * n);
    s->displs[r] = (int)(3 * f);
  }
  return NG_OK;
}

/* Collective: the loss and accuracy of params on the split, the same on every rank. */
static int split_eval(MPI_Comm comm, split *s, const double *params, double *loss, double *accuracy) {
  int st = NG_OK;
  for (size_t i = 0; i < s->count && st == NG_OK; i++) {
    double sum = 0, rows = 0, err = 0, rows2 = 0;
    st = ng_nn_objective_eval(s->ce, params, s->first + i, &sum, &rows);
    if (st == NG_OK) st = ng_nn_objective_eval(s->err, params, s->first + i, &err, &rows2);
    s->part[3 * i] = sum;
    s->part[3 * i + 1] = rows;
    s->part[3 * i + 2] = err;
  }
  NG_CALL(ng_engine_agree(comm, st));
  MPI_Gatherv(s->part, (int)(3 * s->count), MPI_DOUBLE, s->all, s->counts, s->displs, MPI_DOUBLE, 0, comm);
  double r[2] = {0, 0};
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) {
    double sum = 0, rows = 0, err = 0;
    for (size_t i = 0; i < s->nchunks; i++) {
      sum += s->all[3 * i];
      rows += s->all[3 * i + 1];
      err += s->all[3 * i + 2];
    }
    r[0] = sum / rows;
    r[1] = (rows - err) / rows; /* as `nograd eval`: correct / rows */
  }
  MPI_Bcast(r, 2, MPI_DOUBLE, 0, comm);
  *loss = r[0];
  *accuracy = r[1];
  return NG_OK;
}

/* ------------------------------------------------------------------------------------------------------ */
/* fullgrad: w learned by backpropagation through theta(w), data-parallel over the chunks of the train split.
 * Each rank forwards and backwards its chunks with the mixed parameters; a chunk's contribution is its
 * cross-entropy sum, its rows and dL/dw (K x L), computed from the chunk's parameter gradient alone, so rank
 * 0 can add the chunks in chunk order and every P gives the same bits. */

typedef struct {
  size_t nchunks, first, count, chunk_rows, rows, d, classes, batch;
  float *x; /* this rank's rows */
  int32_t *y;
  ng_nn_work *work;
  float *params;      /* the mixed parameters as float32 */
  float *grad;        /* nparams: one chunk's gradient */
  float *dout;        /* batch x classes */
  double *dot;        /* K: g_l . theta_kl of one group */
  double *part, *all; /* (K*L + 2) per chunk: dL/dw, loss sum, rows */
  uint64_t seed;      /* dropout masks: stream (seed, DROPOUT, step * nchunks + chunk, layer) */
  int *counts, *displs;
} fullgrad_ctx;

static void fullgrad_free(fullgrad_ctx *f) {
  free(f->x);
  free(f->y);
  ng_nn_work_destroy(&f->work);
  free(f->params);
  free(f->grad);
  free(f->dout);
  free(f->dot);
  free(f->part);
  free(f->all);
  free(f->counts);
  free(f->displs);
  memset(f, 0, sizeof *f);
}

/* Reads this rank's chunks of the train split and checks that the experts fit it (every rank alike). */
static int fullgrad_open(MPI_Comm comm, const glue_ctx *c, const char *path, size_t chunk_rows,
                         fullgrad_ctx *f) {
  int rank, size, st = NG_OK;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const ng_model *m = c->models[0];
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(path, &ds));
  size_t total = ng_dataset_info(ds)->n;
  ng_dataset_close(&ds);
  if (total == 0) return ng_error(NG_EINVAL, "%s: the target train split is empty", path);
  size_t K = c->K, L = c->L, w = K * L + 2;
  f->chunk_rows = chunk_rows;
  f->d = ng_model_input_size(m);
  f->classes = ng_model_output_size(m);
  f->batch = chunk_rows < NG_NN_OBJECTIVE_BATCH ? chunk_rows : NG_NN_OBJECTIVE_BATCH;
  f->nchunks = (total + chunk_rows - 1) / chunk_rows;
  ng_engine_block(f->nchunks, (size_t)size, (size_t)rank, &f->first, &f->count);
  size_t r0 = f->first * chunk_rows, r1 = (f->first + f->count) * chunk_rows;
  if (r1 > total) r1 = total;
  f->rows = r1 > r0 ? r1 - r0 : 0;
  NG_CALL(read_rows(m, path, f->rows ? r0 : 0, f->rows, &f->x, &f->y));
  f->params = malloc((c->nparams + 1) * sizeof *f->params);
  f->grad = malloc((c->nparams + 1) * sizeof *f->grad);
  f->dout = malloc(f->batch * f->classes * sizeof *f->dout);
  f->dot = malloc(K * sizeof *f->dot);
  f->part = malloc((w * f->count + 1) * sizeof *f->part);
  f->all = malloc(w * f->nchunks * sizeof *f->all);
  f->counts = malloc((size_t)size * sizeof *f->counts);
  f->displs = malloc((size_t)size * sizeof *f->displs);
  if (!f->params || !f->grad || !f->dout || !f->dot || !f->part || !f->all || !f->counts || !f->displs)
    st = ng_error(NG_ENOMEM, "--method fullgrad: out of memory for %zu parameters", c->nparams);
  if (st == NG_OK) st = ng_nn_work_create(m, f->batch, true, &f->work);
  NG_CALL(st);
  for (int r = 0; r < size; r++) {
    size_t first, count;
    ng_engine_block(f->nchunks, (size_t)size, (size_t)r, &first, &count);
    f->counts[r] = (int)(w * count);
    f->displs[r] = (int)(w * first);
  }
  return NG_OK;
}

/* Local chunk i's contribution: part[0 .. K*L) = dL/dw of the chunk's loss sum, part[K*L] the sum, then the
 * rows. */
static int fullgrad_chunk(const glue_ctx *c, fullgrad_ctx *f, size_t i, uint64_t step, double *part) {
  const ng_model *m = c->models[0];
  size_t r0 = i * f->chunk_rows, rows = f->rows - r0 < f->chunk_rows ? f->rows - r0 : f->chunk_rows;
  memset(f->grad, 0, c->nparams * sizeof *f->grad);
  double loss = 0;
  for (size_t b = 0; b < rows; b += f->batch) {
    size_t nb = rows - b < f->batch ? rows - b : f->batch;
    const float *out;
    ng_nn_work_set_dropout(f->work, f->seed, step * f->nchunks + f->first + i);
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
      part[k * L + l] = c->coef[k * L + l] * (f->dot[k] - mean);
  }
  part[K * L] = loss;
  part[K * L + 1] = (double)rows;
  return NG_OK;
}

/* The Adam run; on return every rank holds the coefficients in c->coef, rank 0 the curve and the state. */
static int run_fullgrad(MPI_Comm comm, glue_ctx *c, const ng_glue_config *cfg, fullgrad_ctx *f, double *w,
                        double *curve, ng_state *state) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  size_t n = c->K * c->L, W = n + 2;
  size_t steps = cfg->steps ? cfg->steps : GLUE_DEFAULT_STEPS;
  double lr = cfg->lr > 0 ? cfg->lr : GLUE_DEFAULT_LR, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  double *mom = calloc(2 * n + W, sizeof *mom);
  if (!mom) return ng_engine_agree(comm, ng_error(NG_ENOMEM, "--method fullgrad: out of memory"));
  double *vel = mom + n, *g = vel + n;
  int st = NG_OK;
  for (size_t t = 0; t < steps && st == NG_OK; t++) {
    softmax(c->K, c->L, w, c->coef);
    mix(c, c->coef, c->mixed);
    for (size_t i = 0; i < c->nparams; i++)
      f->params[i] = (float)c->mixed[i];
    for (size_t i = 0; i < f->count && st == NG_OK; i++)
      st = fullgrad_chunk(c, f, i, t, f->part + i * W);
    st = ng_engine_agree(comm, st);
    if (st != NG_OK) break;
    MPI_Gatherv(f->part, (int)(W * f->count), MPI_DOUBLE, f->all, f->counts, f->displs, MPI_DOUBLE, 0, comm);
    if (rank == 0) {
      memset(g, 0, W * sizeof *g);
      for (size_t i = 0; i < f->nchunks; i++)
        for (size_t j = 0; j < W; j++)
          g[j] += f->all[i * W + j];
    }
    MPI_Bcast(g, (int)W, MPI_DOUBLE, 0, comm);
    double rows = g[n + 1];
    if (curve) curve[t] = g[n] / rows;
    double c1 = 1 - pow(b1, (double)(t + 1)), c2 = 1 - pow(b2, (double)(t + 1));
    for (size_t j = 0; j < n; j++) {
      double gj = g[j] / rows;
      mom[j] = b1 * mom[j] + (1 - b1) * gj;
      vel[j] = b2 * vel[j] + (1 - b2) * gj * gj;
      w[j] -= lr * (mom[j] / c1) / (sqrt(vel[j] / c2) + eps);
    }
    if (!isfinite(g[n]))
      st = ng_engine_agree(
          comm, ng_error(NG_ENUMERIC, "--method fullgrad: the train loss is %g at step %zu", g[n] / rows, t));
  }
  if (st == NG_OK) softmax(c->K, c->L, w, c->coef);
  if (st == NG_OK && rank == 0 && state) {
    st = ng_state_put_f64(state, "adam/w", w, n);
    if (st == NG_OK) st = ng_state_put_f64(state, "adam/m", mom, n);
    if (st == NG_OK) st = ng_state_put_f64(state, "adam/v", vel, n);
    if (st == NG_OK) st = ng_state_put_int(state, "adam/t", (int64_t)steps);
    if (st == NG_OK) st = ng_state_put_scalar(state, "adam/lr", lr);
  }
  free(mom);
  return ng_engine_agree(comm, st);
}

/* ------------------------------------------------------------------------------------------------------ */

/* The configuration text of a checkpoint. */
static char *config_text(const ng_glue_config *cfg, size_t steps, size_t q, double sigma0, uint64_t seed,
                         size_t chunk_rows) {
  size_t len = 512;
  for (size_t k = 0; k < cfg->nexperts; k++)
    len += strlen(cfg->experts[k]) + 1;
  len += strlen(cfg->target_train);
  char *t = malloc(len);
  if (!t) return NULL;
  size_t used = (size_t)snprintf(t, len, "experts=");
  for (size_t k = 0; k < cfg->nexperts; k++)
    used += (size_t)snprintf(t + used, len - used, "%s%s", k ? "," : "", cfg->experts[k]);
  snprintf(t + used, len - used,
           "\ntarget-train=%s\nmethod=%s\ngranularity=%s\nsteps=%zu\nq=%zu\nsigma0=%.17g\nseed=%llu\n"
           "chunk-rows=%zu\n",
           cfg->target_train, ng_glue_method_name(cfg->method), cfg->per_layer ? "layer" : "model", steps, q,
           sigma0, (unsigned long long)seed, chunk_rows);
  return t;
}

/* spsa or cmaes through the engine; on return every rank holds the coefficients in c->coef, rank 0 the
 * curve (the median loss of each generation, at most `steps` of them), the optimizer's state and the
 * history. */
static int run_engine(MPI_Comm comm, glue_ctx *c, const ng_glue_config *cfg, int64_t *evaluations,
                      double *seconds, double *curve, size_t *ncurve, ng_state *state, ng_history *history,
                      double *w_out) {
  int rank, size, st = NG_OK;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  size_t n = c->K * c->L;
  size_t steps = cfg->steps ? cfg->steps : GLUE_DEFAULT_STEPS, q = cfg->q ? cfg->q : 1;
  double sigma0 = cfg->sigma0 > 0 ? cfg->sigma0 : GLUE_DEFAULT_SIGMA;
  uint64_t seed = cfg->seed ? cfg->seed : 1;
  size_t chunk_rows = cfg->chunk_rows ? cfg->chunk_rows : GLUE_DEFAULT_CHUNK;
  bool spsa = cfg->method == NG_GLUE_SPSA;
  ng_opt *opt = NULL;
  char *config = NULL;
  double *w = calloc(n, sizeof *w);
  if (!w) st = ng_error(NG_ENOMEM, "glue: out of memory");
  if (st == NG_OK) {
    ng_minimize_config mc = {.function = "glue",
                             .dim = n,
                             .optimizer = spsa ? "spsa" : "cmaes",
                             .popsize = spsa ? 2 * q : 0,
                             .x0 = w,
                             .sigma0 = sigma0,
                             .seed = seed,
                             .ftarget = -INFINITY,
                             .lower = -INFINITY,
                             .upper = INFINITY,
                             /* SPSA: directions centred within each softmax group (w is K x L,
                              * group l at l, L + l, ...), along whose all-equal direction the loss
                              * is invariant */
                             .param_names = {"maxiter", "spsa_center"},
                             .param_values = {(double)steps, (double)c->L},
                             .nparams = spsa ? 2 : 1};
    st = ng_app_make_optimizer(&mc, &opt);
  }
  if (rank != 0) ng_opt_destroy(&opt);
  if (st == NG_OK && !(config = config_text(cfg, steps, q, sigma0, seed, chunk_rows)))
    st = ng_error(NG_ENOMEM, "glue: out of memory");
  ng_objective obj = {.n = n,
                      .nchunks = c->train ? ng_nn_objective_chunks(c->train) : 1,
                      .load = load_cb,
                      .eval = eval_cb,
                      .ctx = c};
  int groups = size;
  for (int g = 1; g <= size; g++)
    if (size % g == 0 && (size_t)(size / g) <= obj.nchunks) {
      groups = g;
      break;
    }
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;
  ng_engine_config ec = {.groups = groups,
                         .bcast = NG_BCAST_EXPLICIT,
                         .checkpoint = cfg->checkpoint,
                         .checkpoint_secs = cfg->checkpoint ? 60.0 : 0.0,
                         .meta = {.program_version = NOGRAD_VERSION,
                                  .command_line = cfg->command_line ? cfg->command_line : "",
                                  .config = config,
                                  .budget = "",
                                  .optimizer = spsa ? "spsa" : "cmaes",
                                  .ranks = size,
                                  .groups = groups},
                         .history = history,
                         .progress = cfg->progress,
                         .progress_secs = 1.0};
  ng_engine_result er = {0};
  st = ng_engine_run(comm, opt, &obj, &ec, &er);
  if (st != NG_OK) goto out;
  if (rank == 0) {
    memcpy(w, ng_opt_mean(opt), n * sizeof *w);
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    *evaluations = in.evaluations;
    *seconds = er.seconds;
    *ncurve = history->nrows < steps ? history->nrows : steps;
    for (size_t i = 0; i < *ncurve; i++)
      curve[i] = history->rows[i * NG_HISTORY_NCOLS + NG_HIST_median];
    if (state) st = ng_opt_save(opt, state);
  }
  st = ng_engine_agree(comm, st);
  if (st != NG_OK) goto out;
  MPI_Bcast(w, (int)n, MPI_DOUBLE, 0, comm);
  memcpy(w_out, w, n * sizeof *w);
  softmax(c->K, c->L, w, c->coef);
out:
  ng_opt_destroy(&opt);
  free(config);
  free(w);
  return st;
}

/* Rank 0: the final checkpoint, with /result. */
static int write_checkpoint(const ng_glue_config *cfg, const glue_ctx *c, const ng_glue_result *res,
                            ng_state *opt_state, const ng_history *history, const double *w, int ranks) {
  ng_state *result = NULL;
  char *config = config_text(cfg, cfg->steps ? cfg->steps : GLUE_DEFAULT_STEPS, cfg->q ? cfg->q : 1,
                             cfg->sigma0 > 0 ? cfg->sigma0 : GLUE_DEFAULT_SIGMA, cfg->seed ? cfg->seed : 1,
                             cfg->chunk_rows ? cfg->chunk_rows : GLUE_DEFAULT_CHUNK);
  int st = config ? ng_state_create(&result) : ng_error(NG_ENOMEM, "glue: out of memory");
  size_t n = c->K * c->L;
  if (st == NG_OK) st = ng_state_put_int(result, "method", (int64_t)cfg->method);
  if (st == NG_OK) st = ng_state_put_f64(result, "weights", res->weights, n);
  if (st == NG_OK) st = ng_state_put_int(result, "K", (int64_t)c->K);
  if (st == NG_OK) st = ng_state_put_int(result, "L", (int64_t)c->L);
  if (st == NG_OK) st = ng_state_put_scalar(result, "prior_loss", res->prior_loss);
  if (st == NG_OK) st = ng_state_put_scalar(result, "prior_accuracy", res->prior_accuracy);
  if (st == NG_OK) st = ng_state_put_scalar(result, "train_loss", res->train_loss);
  if (st == NG_OK) st = ng_state_put_scalar(result, "train_accuracy", res->train_accuracy);
  if (st == NG_OK && res->ncurve) st = ng_state_put_f64(result, "curve", res->curve, res->ncurve);
  if (st == NG_OK) {
    ng_ckpt_meta meta = {.program_version = NOGRAD_VERSION,
                         .command_line = cfg->command_line ? cfg->command_line : "",
                         .config = config,
                         .budget = "",
                         .optimizer = ng_glue_method_name(cfg->method),
                         .ranks = ranks,
                         .groups = 1};
    /* best: the final w for the optimized methods (the log-weights), else the coefficients */
    st = ng_ckpt_write(cfg->checkpoint, &meta, opt_state, history, w ? w : res->weights, n, res->prior_loss,
                       result);
  }
  ng_state_destroy(&result);
  free(config);
  return st;
}

int ng_app_glue(MPI_Comm comm, const ng_glue_config *cfg, ng_glue_result *res) {
  int rank, size, st = NG_OK;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(res, 0, sizeof *res);
  double t0 = ng_time_now();
  glue_ctx c = {0};
  split val = {0}, train = {0};
  fullgrad_ctx fg = {0};
  ng_state *opt_state = NULL;
  ng_history history = {0};
  double *w = NULL, *curve = NULL;
  size_t chunk_rows = cfg->chunk_rows ? cfg->chunk_rows : GLUE_DEFAULT_CHUNK;
  size_t steps = cfg->steps ? cfg->steps : GLUE_DEFAULT_STEPS;
  if (cfg->nexperts < 2)
    st = ng_error(NG_EINVAL, "glue: at least 2 experts are needed, got %zu", cfg->nexperts);
  else if (!ng_glue_method_name(cfg->method))
    st = ng_error(NG_EINVAL, "glue: unknown method %d", (int)cfg->method);
  else if (!cfg->target_train || !cfg->out)
    st = ng_error(NG_EINVAL, "glue: a target train split and an output path are needed");
  for (size_t k = 0; st == NG_OK && cfg->sizes && k < cfg->nexperts; k++)
    if (!(cfg->sizes[k] > 0) || !isfinite(cfg->sizes[k]))
      st = ng_error(NG_EINVAL, "--sizes: value %zu (for %s) must be a positive number, got %g", k + 1,
                    cfg->experts[k], cfg->sizes[k]);
  if (st == NG_OK) st = read_experts(&c, cfg);
  if (st == NG_OK && cfg->method == NG_GLUE_DATASIZE && !cfg->sizes)
    for (size_t k = 0; k < c.K && st == NG_OK; k++)
      if (ng_model_attr(c.models[k], "train_rows") < 1)
        st = ng_error(NG_ENOTFOUND,
                      "--method datasize: the expert %s records no training-set size (attribute train_rows "
                      "of /model; `nograd train` writes it), and no --sizes were given",
                      cfg->experts[k]);
  bool engine = cfg->method == NG_GLUE_SPSA || cfg->method == NG_GLUE_CMAES;
  bool fullgrad = cfg->method == NG_GLUE_FULLGRAD;
  if (st == NG_OK && engine) {
    ng_nn_objective_config oc = {.chunk_rows = chunk_rows, .loss = NG_NN_LOSS_CROSS_ENTROPY};
    st = ng_nn_objective_create(c.models[0], cfg->target_train, &oc, &c.train);
    if (st == NG_OK && !cfg->no_cache) st = cache_setup(&c, cfg->target_train, chunk_rows);
  }
  if (st == NG_OK && fullgrad) {
    fg.seed = cfg->seed ? cfg->seed : 1;
    st = fullgrad_open(comm, &c, cfg->target_train, chunk_rows, &fg);
  }
  /* the split where the prior is measured, and target-train for proxy */
  if (st == NG_OK)
    st = split_open(comm, c.models[0], cfg->target_val ? cfg->target_val : cfg->target_train, chunk_rows,
                    &val);
  if (st == NG_OK && cfg->target_val) /* proxy's criterion, and the prior's train loss */
    st = split_open(comm, c.models[0], cfg->target_train, chunk_rows, &train);
  size_t n = c.K * c.L;
  if (st == NG_OK && (engine || fullgrad)) {
    w = calloc(n ? n : 1, sizeof *w);
    curve = calloc(steps, sizeof *curve);
    if (!w || !curve) st = ng_error(NG_ENOMEM, "glue: out of memory for %zu steps", steps);
  }
  if (st == NG_OK && rank == 0 && cfg->checkpoint) st = ng_state_create(&opt_state);
  st = ng_engine_agree(comm, st);
  if (st != NG_OK || cfg->check_only) goto out;

  switch (cfg->method) {
    case NG_GLUE_SPSA:
    case NG_GLUE_CMAES:
      st = run_engine(comm, &c, cfg, &res->evaluations, &res->seconds, curve, &res->ncurve, opt_state,
                      &history, w);
      if (st != NG_OK) goto out;
      break;
    case NG_GLUE_FULLGRAD:
      st = run_fullgrad(comm, &c, cfg, &fg, w, curve, opt_state);
      if (st != NG_OK) goto out;
      res->ncurve = steps;
      res->evaluations = (int64_t)steps;
      break;
    case NG_GLUE_UNIFORM:
      for (size_t i = 0; i < n; i++)
        c.coef[i] = 1.0 / (double)c.K;
      break;
    case NG_GLUE_DATASIZE: {
      double total = 0;
      for (size_t k = 0; k < c.K; k++)
        total += cfg->sizes ? cfg->sizes[k] : (double)ng_model_attr(c.models[k], "train_rows");
      for (size_t k = 0; k < c.K; k++)
        for (size_t l = 0; l < c.L; l++)
          c.coef[k * c.L + l] =
              (cfg->sizes ? cfg->sizes[k] : (double)ng_model_attr(c.models[k], "train_rows")) / total;
      break;
    }
    case NG_GLUE_PROXY:
    case NG_GLUE_BEST: {
      split *s = cfg->method == NG_GLUE_PROXY && cfg->target_val ? &train : &val;
      bool by_loss = cfg->method == NG_GLUE_BEST || cfg->proxy_loss;
      size_t chosen = 0;
      double best = INFINITY;
      for (size_t k = 0; k < c.K; k++) {
        double loss, acc;
        for (size_t i = 0; i < c.nparams; i++)
          c.mixed[i] = (double)c.theta[k][i];
        st = split_eval(comm, s, c.mixed, &loss, &acc);
        if (st != NG_OK) goto out;
        double score = by_loss ? loss : -acc;
        if (score < best) {
          best = score;
          chosen = k;
        }
      }
      res->evaluations = (int64_t)c.K;
      for (size_t k = 0; k < c.K; k++)
        for (size_t l = 0; l < c.L; l++)
          c.coef[k * c.L + l] = k == chosen ? 1.0 : 0.0;
      break;
    }
  }
  mix(&c, c.coef, c.mixed);
  st = split_eval(comm, &val, c.mixed, &res->prior_loss, &res->prior_accuracy);
  if (st != NG_OK) goto out;
  res->train_loss = res->prior_loss, res->train_accuracy = res->prior_accuracy;
  if (cfg->target_val) st = split_eval(comm, &train, c.mixed, &res->train_loss, &res->train_accuracy);
  if (st != NG_OK) goto out;
  res->K = c.K;
  res->L = c.L;
  if (!engine) res->seconds = ng_time_now() - t0;
  if (rank == 0) {
    ng_model *prior = NULL;
    st = ng_model_clone(c.models[0], &prior);
    if (st == NG_OK) {
      float *p = ng_model_params(prior);
      for (size_t i = 0; i < c.nparams; i++)
        p[i] = (float)c.mixed[i];
      st = ng_model_write(prior, cfg->out);
    }
    ng_model_destroy(&prior);
    if (st == NG_OK) {
      res->weights = malloc(n * sizeof *res->weights);
      if (!res->weights)
        st = ng_error(NG_ENOMEM, "glue: out of memory");
      else
        memcpy(res->weights, c.coef, n * sizeof *res->weights);
    }
    if (st == NG_OK && res->ncurve) {
      res->curve = curve;
      curve = NULL;
    }
    if (st == NG_OK && cfg->checkpoint) st = write_checkpoint(cfg, &c, res, opt_state, &history, w, size);
    if (st != NG_OK) {
      free(res->weights);
      free(res->curve);
      res->weights = res->curve = NULL;
      res->ncurve = 0;
    }
  }
  st = ng_engine_agree(comm, st);
out:
  split_free(&val);
  split_free(&train);
  fullgrad_free(&fg);
  ctx_free(&c);
  ng_state_destroy(&opt_state);
  ng_history_free(&history);
  free(w);
  free(curve);
  return st;
}
