/* Transforms of an in-memory dataset: label maps, reshaping and rescaling, image resampling, standardization
 * and the stratified split.
 *
 * Resampling is separable: each axis gets a small dense matrix of weights (output x input), applied along
 * the rows and then along the columns of every channel. Downsampling averages areas (exact for integer
 * factors, and a fractional factor weights the partly covered pixels by their overlap), which keeps the
 * stroke mass of a digit where bilinear sampling would skip pixels and alias; upsampling is bilinear between
 * pixel centres, with the edges clamped. Every output is a convex combination of inputs; the result is also
 * clamped to the channel's input range so that rounding cannot step out of it.
 *
 * The split draws only from Philox streams (seed, NG_RNG_SPLIT, 0, stratum), so the same seed gives the same
 * parts on any machine, whatever else the program has drawn. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/rng.h"

/* ---- Label maps -----------------------------------------------------------------------------------------
 */

enum { MAP_GT, MAP_GE, MAP_LT, MAP_LE, MAP_ADD, MAP_TABLE };

struct ng_label_map {
  int kind;
  double arg;
  size_t n; /* MAP_TABLE: pairs */
  double *from, *to;
};

static int parse_num(const char *s, const char *end, double *v) {
  char buf[64];
  size_t len = (size_t)(end - s);
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *e;
  *v = strtod(buf, &e);
  return *e || !isfinite(*v) ? -1 : 0;
}

int ng_label_map_parse(const char *spec, ng_label_map **out) {
  *out = NULL;
  static const char *const ops[] = {"gt:", "ge:", "lt:", "le:", "add:"};
  ng_label_map *m = calloc(1, sizeof *m);
  if (!m) return ng_error(NG_ENOMEM, "--label-map: out of memory");
  for (int k = 0; k < 5; k++) {
    size_t len = strlen(ops[k]);
    if (strncmp(spec, ops[k], len) == 0) {
      m->kind = k;
      if (parse_num(spec + len, spec + strlen(spec), &m->arg) != 0) break;
      *out = m;
      return NG_OK;
    }
  }
  if (!*out && strchr(spec, '=')) {
    m->kind = MAP_TABLE;
    size_t pairs = 1;
    for (const char *p = spec; *p; p++)
      pairs += *p == ',';
    m->from = malloc(pairs * sizeof *m->from);
    m->to = malloc(pairs * sizeof *m->to);
    if (!m->from || !m->to) {
      ng_label_map_destroy(&m);
      return ng_error(NG_ENOMEM, "--label-map: out of memory");
    }
    const char *p = spec;
    int ok = 1;
    while (ok) {
      const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
      const char *eq = memchr(p, '=', (size_t)(end - p));
      ok = eq && parse_num(p, eq, &m->from[m->n]) == 0 && parse_num(eq + 1, end, &m->to[m->n]) == 0;
      if (ok) m->n++;
      if (!comma) break;
      p = comma + 1;
    }
    if (ok) {
      *out = m;
      return NG_OK;
    }
  }
  ng_label_map_destroy(&m);
  return ng_error(NG_EINVAL,
                  "--label-map: cannot parse '%s'; expected gt:T, ge:T, lt:T, le:T, add:K or A=B,C=D,... "
                  "(e.g. gt:0 to binarize num > 0, ge:6 for quality >= 6)",
                  spec);
}

void ng_label_map_destroy(ng_label_map **m) {
  if (!m || !*m) return;
  free((*m)->from);
  free((*m)->to);
  free(*m);
  *m = NULL;
}

int ng_label_map_apply(const ng_label_map *m, double raw, double *mapped) {
  switch (m->kind) {
    case MAP_GT:
      *mapped = raw > m->arg;
      return NG_OK;
    case MAP_GE:
      *mapped = raw >= m->arg;
      return NG_OK;
    case MAP_LT:
      *mapped = raw < m->arg;
      return NG_OK;
    case MAP_LE:
      *mapped = raw <= m->arg;
      return NG_OK;
    case MAP_ADD:
      *mapped = raw + m->arg;
      return NG_OK;
    default:
      for (size_t i = 0; i < m->n; i++)
        if (m->from[i] == raw) {
          *mapped = m->to[i];
          return NG_OK;
        }
      return NG_EINVAL; /* the caller names the row */
  }
}

/* ---- Shape and scale ------------------------------------------------------------------------------------
 */

int ng_data_reshape(ng_data *D, size_t c, size_t h, size_t w) {
  size_t chw;
  if (!ng__mul3(c, h, w, &chw))
    return ng_error(NG_EINVAL,
                    "--shape %zu,%zu,%zu: more values than 64 bits count, but a row has %zu features", c, h,
                    w, D->d);
  if (c == 0 || h == 0 || w == 0 || chw != D->d)
    return ng_error(NG_EINVAL, "--shape %zu,%zu,%zu: %zu values, but a row has %zu features", c, h, w, chw,
                    D->d);
  D->xrank = 3;
  D->xdims[0] = c;
  D->xdims[1] = h;
  D->xdims[2] = w;
  return NG_OK;
}

int ng_data_rescale(ng_data *D, double lo, double hi) {
  if (!(lo != hi) || !isfinite(lo) || !isfinite(hi))
    return ng_error(NG_EINVAL, "--value-range %g,%g: need two different finite numbers", lo, hi);
  for (size_t i = 0; i < D->n * D->d; i++)
    D->x[i] = (float)((D->x[i] - lo) / (hi - lo));
  return NG_OK;
}

/* ---- Resampling -----------------------------------------------------------------------------------------
 */

/* The out x in weights of one axis (see the top of the file). */
static double *axis_weights(size_t in, size_t out) {
  size_t cells;
  double *w = ng__mul(out, in, &cells) ? calloc(cells, sizeof *w) : NULL;
  if (!w) return NULL;
  double scale = (double)in / (double)out;
  for (size_t o = 0; o < out; o++) {
    double *row = w + o * in;
    if (out == in) {
      row[o] = 1;
    } else if (out < in) {
      double a = o * scale, b = (o + 1) * scale;
      for (size_t i = (size_t)floor(a); i < in && (double)i < b; i++) {
        double lo = fmax(a, (double)i), hi = fmin(b, (double)i + 1);
        if (hi > lo) row[i] += (hi - lo) / scale;
      }
    } else {
      double src = (o + 0.5) * scale - 0.5;
      if (src < 0) src = 0;
      if (src > (double)(in - 1)) src = (double)(in - 1);
      size_t i0 = (size_t)floor(src), i1 = i0 + 1 < in ? i0 + 1 : i0;
      double f = src - (double)i0;
      row[i0] += 1 - f;
      row[i1] += f;
    }
  }
  return w;
}

int ng_data_resample(ng_data *D, size_t oh, size_t ow) {
  if (D->xrank != 3)
    return ng_error(NG_EINVAL, "--resize: the rows are not images (give their shape with --shape C,H,W)");
  if (oh == 0 || ow == 0) return ng_error(NG_EINVAL, "--resize: %zux%zu is empty", oh, ow);
  size_t c = D->xdims[0], h = D->xdims[1], w = D->xdims[2], od;
  if (oh == h && ow == w) return NG_OK;
  if (!ng__mul3(c, oh, ow, &od) || od > (size_t)INT32_MAX)
    return ng_error(NG_EINVAL, "--resize %zux%zu: images of %zu channels would have more than %d values", oh,
                    ow, c, INT32_MAX);
  double *wh = axis_weights(h, oh), *ww = axis_weights(w, ow), *tmp = ng__mallocn(h, ow, sizeof *tmp);
  float *x = ng__mallocn(D->n, od, sizeof *x);
  int st = NG_OK;
  if (!wh || !ww || !tmp || !x) {
    st = ng_error(NG_ENOMEM, "--resize: out of memory for %zu images of %zux%zu", D->n, oh, ow);
    free(x);
    goto done;
  }
  for (size_t r = 0; r < D->n; r++)
    for (size_t ch = 0; ch < c; ch++) {
      const float *src = D->x + r * D->d + ch * h * w;
      float *dst = x + r * od + ch * oh * ow;
      float lo = src[0], hi = src[0];
      for (size_t i = 0; i < h * w; i++) {
        lo = fminf(lo, src[i]);
        hi = fmaxf(hi, src[i]);
      }
      for (size_t i = 0; i < h; i++)
        for (size_t o = 0; o < ow; o++) {
          double s = 0;
          for (size_t j = 0; j < w; j++)
            s += ww[o * w + j] * src[i * w + j];
          tmp[i * ow + o] = s;
        }
      for (size_t o = 0; o < oh; o++)
        for (size_t q = 0; q < ow; q++) {
          double s = 0;
          for (size_t i = 0; i < h; i++)
            s += wh[o * h + i] * tmp[i * ow + q];
          float v = (float)s;
          dst[o * ow + q] = v < lo ? lo : v > hi ? hi : v;
        }
    }
  free(D->x);
  D->x = x;
  D->xdims[1] = oh;
  D->xdims[2] = ow;
  D->d = od;
done:
  free(tmp);
  free(ww);
  free(wh);
  return st;
}

/* ---- Standardization ------------------------------------------------------------------------------------
 */

int ng_data_apply_stats(ng_data *D, const float *mean, const float *std) {
  if (D->mean) return ng_error(NG_EINVAL, "standardize: the dataset is already standardized");
  for (size_t k = 0; k < D->d; k++)
    if (!(std[k] > 0) || !isfinite(std[k]) || !isfinite(mean[k]))
      return ng_error(NG_EINVAL, "standardize: feature %zu has mean %g and std %g", k, mean[k], std[k]);
  D->mean = malloc(D->d * sizeof *D->mean);
  D->std = malloc(D->d * sizeof *D->std);
  if (!D->mean || !D->std) {
    free(D->mean);
    free(D->std);
    D->mean = D->std = NULL;
    return ng_error(NG_ENOMEM, "standardize: out of memory");
  }
  memcpy(D->mean, mean, D->d * sizeof *mean);
  memcpy(D->std, std, D->d * sizeof *std);
  for (size_t i = 0; i < D->n; i++)
    for (size_t k = 0; k < D->d; k++) {
      float *v = D->x + i * D->d + k;
      *v = (float)(((double)*v - mean[k]) / std[k]);
    }
  return NG_OK;
}

int ng_data_standardize(ng_data *D) {
  if (D->mean) return ng_error(NG_EINVAL, "standardize: the dataset is already standardized");
  if (D->n == 0) return ng_error(NG_EINVAL, "standardize: no rows");
  double *acc = calloc(2 * D->d, sizeof *acc);
  float *mean = malloc(D->d * sizeof *mean), *std = malloc(D->d * sizeof *std);
  int st = NG_OK;
  if (!acc || !mean || !std) {
    st = ng_error(NG_ENOMEM, "standardize: out of memory");
    goto done;
  }
  for (size_t i = 0; i < D->n; i++)
    for (size_t k = 0; k < D->d; k++)
      acc[k] += D->x[i * D->d + k];
  for (size_t k = 0; k < D->d; k++)
    acc[k] /= (double)D->n;
  for (size_t i = 0; i < D->n; i++)
    for (size_t k = 0; k < D->d; k++) {
      double e = D->x[i * D->d + k] - acc[k];
      acc[D->d + k] += e * e;
    }
  for (size_t k = 0; k < D->d; k++) {
    double s = sqrt(acc[D->d + k] / (double)D->n);
    mean[k] = (float)acc[k];
    std[k] = s > 1e-12 && (float)s > 0 ? (float)s : 1.0f; /* a constant feature maps to 0, not NaN */
  }
  st = ng_data_apply_stats(D, mean, std);
done:
  free(std);
  free(mean);
  free(acc);
  return st;
}

/* ---- Split ----------------------------------------------------------------------------------------------
 */

/* The part sizes of a stratum of n rows: floors of frac*n, the rest to the largest remainders; equal
 * remainders are served from part `first` on (the stratum number), so that no part collects every tie. */
static void quotas(size_t n, const double frac[3], size_t first, size_t q[3]) {
  double rem[3];
  size_t sum = 0;
  for (int k = 0; k < 3; k++) {
    double e = frac[k] * (double)n;
    q[k] = (size_t)floor(e);
    rem[k] = e - (double)q[k];
    sum += q[k];
  }
  while (sum < n) {
    int best = -1;
    for (size_t j = 0; j < 3; j++) { /* ties go to part `first` first, so that strata share them out */
      int k = (int)((first + j) % 3);
      if (frac[k] > 0 && (best < 0 || rem[k] > rem[best])) best = k;
    }
    if (best < 0) best = 0; /* not reached: the fractions sum to 1 */
    q[best]++;
    rem[best] = -1;
    sum++;
  }
}

static int copy_rows(const ng_data *D, const unsigned char *part, int k, ng_data *out) {
  size_t n = 0;
  for (size_t i = 0; i < D->n; i++)
    n += part[i] == k;
  NG_CALL(ng_data_alloc(out, n, D->xrank, D->xdims, D->t));
  size_t j = 0;
  for (size_t i = 0; i < D->n; i++) {
    if (part[i] != k) continue;
    memcpy(out->x + j * D->d, D->x + i * D->d, D->d * sizeof *D->x);
    if (D->t)
      memcpy(out->yt + j * D->t, D->yt + i * D->t, D->t * sizeof *D->yt);
    else
      out->y[j] = D->y[i];
    j++;
  }
  out->classes = D->classes;
  memcpy(out->name, D->name, sizeof out->name);
  memcpy(out->domain, D->domain, sizeof out->domain);
  if (D->mean) {
    out->mean = malloc(D->d * sizeof *out->mean);
    out->std = malloc(D->d * sizeof *out->std);
    if (!out->mean || !out->std) {
      ng_data_free(out);
      return ng_error(NG_ENOMEM, "split: out of memory");
    }
    memcpy(out->mean, D->mean, D->d * sizeof *D->mean);
    memcpy(out->std, D->std, D->d * sizeof *D->std);
  }
  return NG_OK;
}

int ng_data_split(const ng_data *D, const double frac[3], uint64_t seed, ng_data out[3]) {
  for (int k = 0; k < 3; k++)
    memset(&out[k], 0, sizeof out[k]);
  double sum = 0;
  for (int k = 0; k < 3; k++) {
    if (!(frac[k] >= 0 && frac[k] <= 1))
      return ng_error(NG_EINVAL, "fraction %g of part %d is not in [0, 1]", frac[k], k);
    sum += frac[k];
  }
  if (fabs(sum - 1) > 1e-9)
    return ng_error(NG_EINVAL, "the fractions %g + %g + %g sum to %.12g, not 1", frac[0], frac[1], frac[2],
                    sum);
  size_t strata = D->t ? 1 : (size_t)D->classes;
  if (!D->t)
    for (size_t i = 0; i < D->n; i++)
      if (D->y[i] < 0 || D->y[i] >= D->classes)
        return ng_error(NG_EINVAL, "row %zu has label %d outside [0, %lld)", i, (int)D->y[i],
                        (long long)D->classes);
  unsigned char *part = calloc(D->n ? D->n : 1, 1);
  size_t *idx = malloc((D->n ? D->n : 1) * sizeof *idx);
  int st = NG_OK;
  if (!part || !idx) {
    st = ng_error(NG_ENOMEM, "split: out of memory for %zu rows", D->n);
    goto done;
  }
  for (size_t c = 0; c < strata; c++) {
    size_t m = 0;
    for (size_t i = 0; i < D->n; i++)
      if (D->t || (size_t)D->y[i] == c) idx[m++] = i;
    ng_rng r;
    ng_rng_init(&r, seed, NG_RNG_SPLIT, 0, (uint32_t)c);
    for (size_t i = m; i > 1; i--) { /* Fisher-Yates */
      size_t j = (size_t)ng_rng_below(&r, i);
      size_t t = idx[i - 1];
      idx[i - 1] = idx[j];
      idx[j] = t;
    }
    size_t q[3], at = 0;
    quotas(m, frac, c, q);
    for (int k = 0; k < 3; k++)
      for (size_t i = 0; i < q[k]; i++)
        part[idx[at++]] = (unsigned char)k;
  }
  for (int k = 0; k < 3 && st == NG_OK; k++)
    st = copy_rows(D, part, k, &out[k]);
  if (st != NG_OK)
    for (int k = 0; k < 3; k++)
      ng_data_free(&out[k]);
done:
  free(idx);
  free(part);
  return st;
}

int ng_data_subset(const ng_data *D, size_t k, uint64_t seed, ng_data *out) {
  memset(out, 0, sizeof *out);
  if (D->t)
    return ng_error(NG_EINVAL, "a stratified subset needs class labels, and the rows have float targets");
  if (k > D->n) return ng_error(NG_EINVAL, "a subset of %zu rows, but there are only %zu", k, D->n);
  size_t C = (size_t)D->classes, n = D->n;
  for (size_t i = 0; i < n; i++)
    if (D->y[i] < 0 || (size_t)D->y[i] >= C)
      return ng_error(NG_EINVAL, "row %zu has label %d outside [0, %zu)", i, (int)D->y[i], C);
  size_t *count = calloc(C + 1, sizeof *count), *quota = calloc(C + 1, sizeof *quota),
         *idx = malloc((n + 1) * sizeof *idx);
  unsigned char *take = calloc(n + 1, 1);
  double *rem = calloc(C + 1, sizeof *rem);
  int st = count && quota && idx && take && rem
               ? NG_OK
               : ng_error(NG_ENOMEM, "subset: out of memory for %zu rows", n);
  for (size_t i = 0; st == NG_OK && i < n; i++)
    count[D->y[i]]++;
  /* each class gets floor(k n_c / n) rows, then one more for the largest remainders (ties: the lower class)
   */
  size_t given = 0;
  for (size_t c = 0; st == NG_OK && c < C; c++) {
    quota[c] = (size_t)((double)k * (double)count[c] / (double)n);
    rem[c] = (double)k * (double)count[c] / (double)n - (double)quota[c];
    given += quota[c];
  }
  while (st == NG_OK && given < k) {
    size_t best = C;
    for (size_t c = 0; c < C; c++)
      if (quota[c] < count[c] && (best == C || rem[c] > rem[best])) best = c;
    quota[best]++;
    rem[best] = -1;
    given++;
  }
  for (size_t c = 0; st == NG_OK && c < C; c++) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if ((size_t)D->y[i] == c) idx[m++] = i;
    ng_rng r;
    ng_rng_init(&r, seed, NG_RNG_SPLIT, 1, (uint32_t)c); /* generation 1: the split uses 0 */
    for (size_t j = 0; j < quota[c]; j++) {              /* a partial Fisher-Yates shuffle */
      size_t t = j + (size_t)ng_rng_below(&r, m - j);
      size_t v = idx[t];
      idx[t] = idx[j];
      idx[j] = v;
      take[v] = 1;
    }
  }
  if (st == NG_OK) st = copy_rows(D, take, 1, out);
  free(count);
  free(quota);
  free(idx);
  free(take);
  free(rem);
  return st;
}
