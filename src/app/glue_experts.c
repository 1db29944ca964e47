/* `nograd glue`'s experts (see glue_impl.h): reading them, checking that they share one architecture (the
 * message names the first tensor or spec line that differs, and both files), the layer groups, softmax over
 * the experts and the mixing of their parameter vectors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "app/glue_impl.h"
#include "nograd/data.h"
#include "nograd/error.h"

void ng__glue_free(ng__glue *c) {
  for (size_t k = 0; c->models && k < c->K; k++)
    ng_model_destroy(&c->models[k]);
  free(c->models);
  free(c->theta);
  free(c->gstart);
  free(c->gend);
  free(c->coef);
  free(c->mixed);
  ng_nn_objective_destroy(&c->train);
  ng__cand_cache_free(&c->cand);
  free(c->z);
  free(c->y);
  free(c->act);
  ng_nn_work_destroy(&c->work);
  memset(c, 0, sizeof *c);
}

/* The first line where two specs differ (1-based), with both lines. */
static int spec_difference(const char *a, const char *b, const char *pa, const char *pb, bool onnx) {
  size_t line = 1;
  while (*a || *b) {
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
    if (la != lb || strncmp(a, b, la) != 0) {
      /* A long line (a graph's node) is quoted from a little before its first difference. */
      size_t at = 0;
      while (at < la && at < lb && a[at] == b[at])
        at++;
      size_t from = at > 60 ? at - 60 : 0;
      while (from > 0 && a[from - 1] != ' ')
        from--;
      size_t qa = la - from > 120 ? 120 : la - from, qb = lb - from > 120 ? 120 : lb - from;
      const char *dots = from ? "..." : "";
      return ng_error(NG_EMISMATCH,
                      "the experts are not of one architecture: %s %zu is '%s%.*s' in %s but '%s%.*s' in %s",
                      onnx ? "the graph's line (input, node or param)" : "/model/spec line", line, dots,
                      (int)qa, a + from, pa, dots, (int)qb, b + from, pb);
    }
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
  if (ng_model_is_onnx(m0) != ng_model_is_onnx(mk))
    return ng_error(NG_EMISMATCH, "the experts are not of one architecture: %s is %s model, %s %s", p0,
                    ng_model_is_onnx(m0) ? "an ONNX" : "a native", pk,
                    ng_model_is_onnx(mk) ? "an ONNX one" : "a native one");
  NG_CALL(spec_difference(ng_model_spec_text(m0), ng_model_spec_text(mk), p0, pk, ng_model_is_onnx(m0)));
  if (ng_model_nparams(m0) != ng_model_nparams(mk))
    return ng_error(NG_EMISMATCH, "the experts are not of one architecture: %s has %zu parameters, %s %zu",
                    p0, ng_model_nparams(m0), pk, ng_model_nparams(mk));
  return NG_OK;
}

/* Layer groups: runs of tensors whose names share the prefix before the last '.'. */
static int make_groups(ng__glue *c, bool per_layer) {
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
int ng__glue_read_experts(ng__glue *c, const ng_glue_config *cfg) {
  c->K = cfg->nexperts;
  if (!(c->models = calloc(c->K, sizeof *c->models)) || !(c->theta = calloc(c->K, sizeof *c->theta)))
    return ng_error(NG_ENOMEM, "glue: out of memory");
  for (size_t k = 0; k < c->K; k++) {
    NG_CALL(ng_model_read(cfg->experts[k], &c->models[k]));
    if (cfg->method == NG_GLUE_FULLGRAD && ng_model_is_onnx(c->models[k]))
      return ng_error(NG_EINVAL,
                      "%s: glue --method fullgrad backpropagates through the experts, and nograd has no "
                      "backward pass for ONNX models; use --method spsa or cmaes (no gradients), or mix "
                      "native models",
                      cfg->experts[k]);
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
void ng__glue_softmax(size_t K, size_t L, const double *w, double *a) {
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
void ng__glue_mix(const ng__glue *c, const double *a, double *mixed) {
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

/* Rows [r0, r0 + rows) of a labelled dataset whose rows fit the model: x (rows x d) and y, malloc'd. */
int ng__glue_read_rows(const ng_model *m, const char *path, size_t r0, size_t rows, float **x, int32_t **y) {
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
  *x = ng__mallocn(rows ? rows : 1, in->d, sizeof **x);
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
