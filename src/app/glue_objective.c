/* The objective of `nograd glue --method spsa|cmaes` (see glue_impl.h): a candidate w (K x L) becomes
 * softmax coefficients and mixed parameters once per generation, and its cross-entropy on the target train
 * split's chunks this rank owns is computed with an ng_nn_objective over all parameters, or, where it pays,
 * from the experts' first-layer outputs computed once (the cache below). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "app/glue_impl.h"
#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/loss.h"

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

static int cache_setup(ng__glue *c, const char *train_path, size_t chunk_rows) {
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
  c->act = ng__mallocn(c->batch, out, sizeof *c->act);
  if (!c->act) return ng_error(NG_ENOMEM, "glue: out of memory");
  NG_CALL(ng_nn_work_create(m, c->batch, false, &c->work));
  c->fl = true;
  return NG_OK;
}

static int cache_load(ng__glue *c, size_t first_chunk, size_t count) {
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
  NG_CALL(ng__glue_read_rows(c->models[0], c->train_path, r0, r1 - r0, &x, &c->y));
  c->nrows = r1 - r0;
  c->z = ng__mallocn(c->K, c->nrows ? c->nrows : 1, c->fl_out * sizeof *c->z);
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
static int cache_eval(ng__glue *c, const double *a, const float *p, size_t chunk, double *sum,
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
  ng__glue *c = ctx;
  return c->fl ? cache_load(c, first_chunk, count) : ng_nn_objective_load(c->train, first_chunk, count);
}

/* Candidate k of `generation`, mixed once per generation: its coefficients and mixed parameters (doubles),
 * and the mixed parameters as floats for the cache's passes. */
static int candidate(ng__glue *c, const double *x, uint64_t generation, size_t k, double **a, float **pf) {
  bool fresh;
  NG_CALL(ng__cand_slot(&c->cand, generation, k, c->K * c->L + c->nparams, c->fl ? c->nparams : 0, "glue", a,
                        pf, &fresh));
  if (fresh) {
    double *mixed = *a + c->K * c->L;
    ng__glue_softmax(c->K, c->L, x, *a);
    ng__glue_mix(c, *a, mixed);
    if (c->fl)
      for (size_t i = 0; i < c->nparams; i++)
        (*pf)[i] = (float)mixed[i];
    ng__cand_done(&c->cand, k);
  }
  return NG_OK;
}

static int eval_cb(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                   double *count) {
  ng__glue *c = ctx;
  double *a;
  float *pf;
  NG_CALL(candidate(c, x, generation, k, &a, &pf));
  if (c->fl) return cache_eval(c, a, pf, chunk, sum, count);
  return ng_nn_objective_eval(c->train, a + c->K * c->L, chunk, sum, count);
}

int ng__glue_objective(ng__glue *c, const ng_glue_config *cfg, ng_objective *obj) {
  ng_nn_objective_config oc = {.chunk_rows = cfg->chunk_rows, .loss = NG_NN_LOSS_CROSS_ENTROPY};
  NG_CALL(ng_nn_objective_create(c->models[0], cfg->target_train, &oc, &c->train));
  if (!cfg->no_cache) NG_CALL(cache_setup(c, cfg->target_train, cfg->chunk_rows));
  *obj = (ng_objective){.n = c->K * c->L,
                        .nchunks = ng_nn_objective_chunks(c->train),
                        .load = load_cb,
                        .eval = eval_cb,
                        .ctx = c};
  return NG_OK;
}
