/* Synthetic multi-domain classification data (the model and the streams are in include/nograd/domains.h).
 *
 * Each call rebuilds the concept (the strokes or the means) and the domain's transform from their streams
 * before it draws any row: that costs K strokes or K*d normals, plus O(d^2) for a vector domain's basis,
 * and keeps the functions free of state. Every row is then computed from its own stream alone, in double,
 * in a fixed order of operations, so its bits do not depend on which other rows share the call. */
#include "nograd/domains.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/rng.h"

#define DOM_PI 3.14159265358979323846
#define DOM_GEN_STROKES 0xFFFF0000u   /* stream generation of the image classes' strokes (index: class) */
#define DOM_GEN_MEANS 0xFFFF0001u     /* ... of the vector classes' means (index: class) */
#define DOM_GEN_TRANSFORM 0xFFFF0002u /* ... of a vector domain's Q, g and offset direction (index: id) */
#define DOM_GEN_ROWS 0x80000000u      /* rows: DOM_GEN_ROWS | 2 id | kind (index: row) */
#define DOM_MAX_ID 0x3FFFFFFFu        /* so that 2 id + 1 fits below DOM_GEN_ROWS */
#define DOM_MAX_CLASSES 65536         /* a sanity bound: the concept is rebuilt on every call */
#define DOM_STROKES 3                 /* strokes per image class */
#define DOM_STROKE_WIDTH 0.11         /* sd of a stroke's profile, image coordinates in [-1, 1] */
#define DOM_STROKE_CENTRE 0.4         /* stroke centres lie in the disc of this radius */
#define DOM_STROKE_HALF_MIN 0.25      /* half-lengths of strokes are uniform in [MIN, MIN + SPAN] */
#define DOM_STROKE_HALF_SPAN 0.3
#define DOM_JITTER_ANGLE 8.0     /* degrees: sd of an example's rotation about its domain's */
#define DOM_JITTER_LOGSCALE 0.08 /* sd of an example's log-scale */
#define DOM_JITTER_SHIFT 0.08    /* sd of an example's shift per axis (a pixel is 0.125) */
#define DOM_BASE_NOISE 0.03      /* pixel noise of every image domain */
#define DOM_SEPARATION 5.0       /* vectors: typical distance between two class means, in within-class sds */
#define DOM_CENTRE 7.5           /* vectors: typical length of the class means' common centre */
#define DOM_CENTRE_INDEX 0xFFFFFFFFu /* its stream index under DOM_GEN_MEANS (no class has it) */
#define DOM_SCALE_SPREAD 0.5         /* vectors: s_j = scale^(1 + SPREAD g_j) */
#define DOM_NOISE_UNIT 4.0           /* vectors: noise sd per unit of the domain's `noise` */

static const ng_domain_shift presets[] = {
    /* name, id, angle, scale, thickness, noise, contrast, offset, imbalance */
    {"upright", 1, 0, 1, 1, 0, 1, 0, 1},  {"tilted", 2, 20, 1, 1, 0, 1, 0, 1},
    {"small", 3, 0, 0.75, 1, 0, 1, 0, 1}, {"noisy", 4, 0, 1, 1, 0.25, 1, 0, 1},
    {"bold", 5, 0, 1, 1.6, 0, 1, 0, 1},   {"faint", 6, 0, 1, 1, 0, 0.5, 0.25, 1},
    {"skewed", 7, 0, 1, 1, 0, 1, 0, 10},  {"target", 8, 10, 0.9, 1, 0.1, 1, 0, 5},
};
#define DOM_NPRESETS (sizeof presets / sizeof presets[0])

const ng_domain_shift *ng_domains_presets(size_t *count) {
  if (count) *count = DOM_NPRESETS;
  return presets;
}

const ng_domain_shift *ng_domains_find(const char *name) {
  for (size_t k = 0; name && k < DOM_NPRESETS; k++)
    if (strcmp(presets[k].name, name) == 0) return &presets[k];
  return NULL;
}

const char *ng_domains_names(char *buf, size_t size) {
  size_t used = 0;
  if (size) buf[0] = '\0';
  for (size_t k = 0; k < DOM_NPRESETS && used < size; k++) {
    int n = snprintf(buf + used, size - used, "%s%s", k ? ", " : "", presets[k].name);
    if (n < 0) break;
    used += (size_t)n;
  }
  return buf;
}

static size_t config_classes(const ng_domains_config *cfg) {
  return cfg->classes ? cfg->classes : NG_DOMAINS_DEFAULT_CLASSES;
}

static size_t config_dim(const ng_domains_config *cfg) {
  return cfg->dim ? cfg->dim : NG_DOMAINS_DEFAULT_DIM;
}

size_t ng_domains_row_size(const ng_domains_config *cfg) {
  if (cfg->kind == NG_DOMAINS_IMAGES) return (size_t)NG_DOMAINS_SIDE * NG_DOMAINS_SIDE;
  if (cfg->kind == NG_DOMAINS_VECTORS) return config_dim(cfg);
  return 0;
}

void ng_domains_priors(const ng_domain_shift *shift, size_t classes, double *p) {
  double sum = 0;
  for (size_t k = 0; k < classes; k++) {
    p[k] = classes > 1 ? pow(shift->imbalance, -(double)k / (double)(classes - 1)) : 1.0;
    sum += p[k];
  }
  for (size_t k = 0; k < classes; k++)
    p[k] /= sum;
}

/* The label of a row from one uniform draw, by the inverse of the cumulative priors. */
static int32_t draw_label(ng_rng *r, const double *cdf, size_t classes) {
  double u = ng_rng_uniform(r);
  size_t c = 0;
  while (c + 1 < classes && u >= cdf[c])
    c++;
  return (int32_t)c;
}

/* ---- images ------------------------------------------------------------------------------------------ */

typedef struct {
  double ax, ay, bx, by; /* the segment's ends */
} stroke;

static void make_strokes(uint64_t seed, size_t classes, stroke *s) {
  for (size_t c = 0; c < classes; c++) {
    ng_rng r;
    ng_rng_init(&r, seed, NG_RNG_DATA, DOM_GEN_STROKES, (uint32_t)c);
    for (int k = 0; k < DOM_STROKES; k++) {
      double rad = DOM_STROKE_CENTRE * sqrt(ng_rng_uniform(&r)), t = 2 * DOM_PI * ng_rng_uniform(&r);
      double phi = DOM_PI * ng_rng_uniform(&r);
      double half = DOM_STROKE_HALF_MIN + DOM_STROKE_HALF_SPAN * ng_rng_uniform(&r);
      double cx = rad * cos(t), cy = rad * sin(t), dx = half * cos(phi), dy = half * sin(phi);
      s[c * DOM_STROKES + k] = (stroke){cx - dx, cy - dy, cx + dx, cy + dy};
    }
  }
}

/* Squared distance from (px, py) to a segment. */
static double dist2(const stroke *s, double px, double py) {
  double vx = s->bx - s->ax, vy = s->by - s->ay, wx = px - s->ax, wy = py - s->ay;
  double t = (vx * wx + vy * wy) / (vx * vx + vy * vy);
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  double ex = wx - t * vx, ey = wy - t * vy;
  return ex * ex + ey * ey;
}

static void image_row(const ng_domains_config *cfg, const ng_domain_shift *sh, const stroke *strokes,
                      const double *cdf, size_t classes, uint32_t row, float *x, int32_t *y) {
  ng_rng r;
  ng_rng_init(&r, cfg->seed, NG_RNG_DATA, DOM_GEN_ROWS | (sh->id << 1), row); /* kind 0 */
  int32_t c = draw_label(&r, cdf, classes);
  double angle = (sh->angle + DOM_JITTER_ANGLE * ng_rng_normal(&r)) * DOM_PI / 180.0;
  double scale = sh->scale * exp(DOM_JITTER_LOGSCALE * ng_rng_normal(&r));
  double tx = DOM_JITTER_SHIFT * ng_rng_normal(&r), ty = DOM_JITTER_SHIFT * ng_rng_normal(&r);
  double ca = cos(angle) / scale, sa = sin(angle) / scale;
  double w = DOM_STROKE_WIDTH * sh->thickness, inv2w2 = 1.0 / (2 * w * w);
  double sd = sqrt(DOM_BASE_NOISE * DOM_BASE_NOISE + sh->noise * sh->noise);
  const stroke *s = strokes + (size_t)c * DOM_STROKES;
  const double h = NG_DOMAINS_SIDE / 2.0;
  for (int i = 0; i < NG_DOMAINS_SIDE; i++) {
    double py = 1.0 - (i + 0.5) / h - ty;
    for (int j = 0; j < NG_DOMAINS_SIDE; j++) {
      double px = (j + 0.5) / h - 1.0 - tx;
      /* the pre-image of the pixel: rotate back by -angle, then divide by the scale */
      double qx = ca * px + sa * py, qy = -sa * px + ca * py;
      double dark = 1.0;
      for (int k = 0; k < DOM_STROKES; k++)
        dark *= 1.0 - exp(-dist2(&s[k], qx, qy) * inv2w2);
      double v = sh->offset + sh->contrast * (1.0 - dark) + sd * ng_rng_normal(&r);
      x[i * NG_DOMAINS_SIDE + j] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
    }
  }
  *y = c;
}

/* ---- vectors ----------------------------------------------------------------------------------------- */

typedef struct {
  size_t d, k;   /* dimension; dimension of the rotated subspace (even, 0 when there is no rotation) */
  double *means; /* classes x d */
  double *q;     /* k columns of d: an orthonormal basis of the rotated subspace */
  double *s, *o; /* d each: per-feature scales, offset */
  double cr, sr; /* cos and sin of the angle */
} vec_model;

static void vec_free(vec_model *m) {
  free(m->means);
  free(m->q);
  free(m->s);
  free(m->o);
}

/* The dimension of the rotated subspace: the span of the class means, less one dimension when it is odd. */
static size_t rotated_dim(size_t d, size_t classes) {
  return 2 * ((classes < d ? classes : d) / 2);
}

static int vec_build(const ng_domains_config *cfg, const ng_domain_shift *sh, size_t classes, vec_model *m) {
  size_t d = config_dim(cfg);
  memset(m, 0, sizeof *m);
  m->d = d;
  m->k = sh->angle == 0 ? 0 : rotated_dim(d, classes);
  m->means = malloc(classes * d * sizeof *m->means);
  m->q = malloc((m->k ? m->k * d : 1) * sizeof *m->q);
  m->s = malloc(d * sizeof *m->s);
  m->o = malloc(d * sizeof *m->o);
  if (!m->means || !m->q || !m->s || !m->o) {
    vec_free(m);
    return ng_error(NG_ENOMEM, "synthetic vectors: out of memory for %zu classes of dimension %zu", classes,
                    d);
  }
  /* the centre (m->o holds it until the offset is drawn below), then each class about it */
  double mscale = DOM_SEPARATION / sqrt(2.0 * (double)d), cscale = DOM_CENTRE / sqrt((double)d);
  ng_rng r;
  ng_rng_init(&r, cfg->seed, NG_RNG_DATA, DOM_GEN_MEANS, DOM_CENTRE_INDEX);
  for (size_t j = 0; j < d; j++)
    m->o[j] = cscale * ng_rng_normal(&r);
  for (size_t c = 0; c < classes; c++) {
    ng_rng_init(&r, cfg->seed, NG_RNG_DATA, DOM_GEN_MEANS, (uint32_t)c);
    for (size_t j = 0; j < d; j++)
      m->means[c * d + j] = m->o[j] + mscale * ng_rng_normal(&r);
  }
  ng_rng_init(&r, cfg->seed, NG_RNG_DATA, DOM_GEN_TRANSFORM, sh->id);
  /* Q: k random combinations of the class means (k*K normals), orthonormalized by modified Gram-Schmidt,
   * twice for accuracy: a random basis of (most of) the span of the means, where a rotation moves the classes
   * relative to one another. The draws are made whatever the angle, so that g and the offset do not depend
   * on it. */
  size_t kq = rotated_dim(d, classes);
  for (size_t a = 0; a < kq; a++) {
    if (m->k) memset(m->q + a * d, 0, d * sizeof *m->q);
    for (size_t c = 0; c < classes; c++) {
      double g = ng_rng_normal(&r);
      for (size_t j = 0; m->k && j < d; j++)
        m->q[a * d + j] += g * m->means[c * d + j];
    }
  }
  for (size_t a = 0; a < m->k; a++) {
    double *qa = m->q + a * d;
    for (int pass = 0; pass < 2; pass++)
      for (size_t b = 0; b < a; b++) {
        const double *qb = m->q + b * d;
        double dot = 0;
        for (size_t j = 0; j < d; j++)
          dot += qa[j] * qb[j];
        for (size_t j = 0; j < d; j++)
          qa[j] -= dot * qb[j];
      }
    double norm = 0;
    for (size_t j = 0; j < d; j++)
      norm += qa[j] * qa[j];
    norm = sqrt(norm);
    if (!(norm > 1e-12)) {
      vec_free(m);
      return ng_error(NG_ENUMERIC, "synthetic vectors: degenerate random basis (dimension %zu)", d);
    }
    for (size_t j = 0; j < d; j++)
      qa[j] /= norm;
  }
  double ls = log(sh->scale), onorm = 0;
  for (size_t j = 0; j < d; j++)
    m->s[j] = exp(ls * (1.0 + DOM_SCALE_SPREAD * ng_rng_normal(&r)));
  for (size_t j = 0; j < d; j++) {
    m->o[j] = ng_rng_normal(&r);
    onorm += m->o[j] * m->o[j];
  }
  onorm = sqrt(onorm);
  for (size_t j = 0; j < d; j++)
    m->o[j] = onorm > 0 ? DOM_SEPARATION * sh->offset * m->o[j] / onorm : 0;
  double a = sh->angle * DOM_PI / 180.0;
  m->cr = cos(a);
  m->sr = sin(a);
  return NG_OK;
}

static void vector_row(const ng_domains_config *cfg, const ng_domain_shift *sh, const vec_model *m,
                       const double *cdf, size_t classes, uint32_t row, double *v, float *x, int32_t *y) {
  ng_rng r;
  ng_rng_init(&r, cfg->seed, NG_RNG_DATA, DOM_GEN_ROWS | (sh->id << 1) | 1u, row);
  int32_t c = draw_label(&r, cdf, classes);
  size_t d = m->d;
  const double *mu = m->means + (size_t)c * d;
  for (size_t j = 0; j < d; j++)
    v[j] = sh->contrast * mu[j] + sh->thickness * ng_rng_normal(&r);
  /* v += Q (R - I) Q^T v, one plane (two columns of Q) at a time */
  for (size_t a = 0; a < m->k; a += 2) {
    const double *q0 = m->q + a * d, *q1 = q0 + d;
    double a0 = 0, a1 = 0;
    for (size_t j = 0; j < d; j++) {
      a0 += q0[j] * v[j];
      a1 += q1[j] * v[j];
    }
    double d0 = (m->cr - 1) * a0 - m->sr * a1, d1 = m->sr * a0 + (m->cr - 1) * a1;
    for (size_t j = 0; j < d; j++)
      v[j] += d0 * q0[j] + d1 * q1[j];
  }
  for (size_t j = 0; j < d; j++) {
    double e = sh->noise > 0 ? DOM_NOISE_UNIT * sh->noise * ng_rng_normal(&r) : 0.0;
    x[j] = (float)(m->s[j] * v[j] + m->o[j] + e);
  }
  *y = c;
}

/* ---- generation -------------------------------------------------------------------------------------- */

static int check_shift(const ng_domain_shift *sh) {
  const char *name = sh->name ? sh->name : "(unnamed)";
  if (sh->id < 1 || sh->id > DOM_MAX_ID)
    return ng_error(NG_EINVAL, "domain '%s': id %u is not in [1, %u]", name, (unsigned)sh->id, DOM_MAX_ID);
  const double f[] = {sh->angle,    sh->scale,  sh->thickness, sh->noise,
                      sh->contrast, sh->offset, sh->imbalance};
  for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
    if (!isfinite(f[k])) return ng_error(NG_EINVAL, "domain '%s': a field is not finite", name);
  if (!(sh->scale > 0) || !(sh->thickness > 0) || !(sh->imbalance > 0) || sh->noise < 0)
    return ng_error(NG_EINVAL,
                    "domain '%s': scale %g, thickness %g and imbalance %g must be > 0 and noise %g >= 0",
                    name, sh->scale, sh->thickness, sh->imbalance, sh->noise);
  return NG_OK;
}

int ng_domains_generate_shift(const ng_domains_config *cfg, const ng_domain_shift *shift, size_t rows,
                              uint64_t row0, float *x, int32_t *y) {
  if (!cfg || !shift) return ng_error(NG_EINVAL, "synthetic domains: no configuration or domain");
  if (cfg->kind != NG_DOMAINS_IMAGES && cfg->kind != NG_DOMAINS_VECTORS)
    return ng_error(NG_EINVAL, "synthetic domains: unknown kind %d (images or vectors)", (int)cfg->kind);
  size_t classes = config_classes(cfg);
  if (classes < 2 || classes > DOM_MAX_CLASSES)
    return ng_error(NG_EINVAL, "synthetic domains: %zu classes (expected 2 to %d)", classes, DOM_MAX_CLASSES);
  NG_CALL(check_shift(shift));
  if (row0 > NG_DOMAINS_MAX_ROWS || rows > NG_DOMAINS_MAX_ROWS - row0)
    return ng_error(NG_EINVAL, "synthetic domains: rows %llu .. %llu reach beyond 2^32",
                    (unsigned long long)row0, (unsigned long long)row0 + rows);
  if (rows == 0) return NG_OK;
  if (!x || !y) return ng_error(NG_EINVAL, "synthetic domains: no output arrays");
  size_t width = ng_domains_row_size(cfg);
  int st = NG_OK;
  double *cdf = malloc(classes * sizeof *cdf);
  stroke *strokes = NULL;
  double *v = NULL;
  vec_model m = {0};
  if (!cdf) return ng_error(NG_ENOMEM, "synthetic domains: out of memory");
  ng_domains_priors(shift, classes, cdf);
  for (size_t c = 1; c < classes; c++)
    cdf[c] += cdf[c - 1];
  if (cfg->kind == NG_DOMAINS_IMAGES) {
    strokes = malloc(classes * DOM_STROKES * sizeof *strokes);
    if (!strokes) {
      st = ng_error(NG_ENOMEM, "synthetic images: out of memory");
      goto done;
    }
    make_strokes(cfg->seed, classes, strokes);
    for (size_t i = 0; i < rows; i++)
      image_row(cfg, shift, strokes, cdf, classes, (uint32_t)(row0 + i), x + i * width, y + i);
  } else {
    NG_TRY(st, vec_build(cfg, shift, classes, &m), done);
    v = malloc(width * sizeof *v);
    if (!v) {
      st = ng_error(NG_ENOMEM, "synthetic vectors: out of memory");
      goto done;
    }
    for (size_t i = 0; i < rows; i++)
      vector_row(cfg, shift, &m, cdf, classes, (uint32_t)(row0 + i), v, x + i * width, y + i);
  }
done:
  free(v);
  vec_free(&m);
  free(strokes);
  free(cdf);
  return st;
}

static int find(const char *domain, const ng_domain_shift **out) {
  *out = ng_domains_find(domain);
  if (!*out) {
    char names[256];
    return ng_error(NG_ENOTFOUND, "unknown domain '%s' (known: %s)", domain ? domain : "",
                    ng_domains_names(names, sizeof names));
  }
  return NG_OK;
}

int ng_domains_generate(const ng_domains_config *cfg, const char *domain, size_t rows, uint64_t row0,
                        float *x, int32_t *y) {
  const ng_domain_shift *sh;
  NG_CALL(find(domain, &sh));
  return ng_domains_generate_shift(cfg, sh, rows, row0, x, y);
}

int ng_domains_write(const ng_domains_config *cfg, const char *domain, size_t rows, const char *path) {
  const ng_domain_shift *sh;
  NG_CALL(find(domain, &sh));
  if (rows == 0) return ng_error(NG_EINVAL, "synthetic domain '%s': no rows to write to '%s'", domain, path);
  if (!cfg || (cfg->kind != NG_DOMAINS_IMAGES && cfg->kind != NG_DOMAINS_VECTORS))
    return ng_error(NG_EINVAL, "synthetic domains: unknown kind (images or vectors)");
  ng_data D;
  const size_t img[3] = {1, NG_DOMAINS_SIDE, NG_DOMAINS_SIDE}, vec[1] = {config_dim(cfg)};
  int images = cfg->kind == NG_DOMAINS_IMAGES;
  NG_CALL(ng_data_alloc(&D, rows, images ? 3 : 1, images ? img : vec, 0));
  int st = ng_domains_generate_shift(cfg, sh, rows, 0, D.x, D.y);
  if (st == NG_OK) {
    D.classes = (int64_t)config_classes(cfg);
    snprintf(D.name, sizeof D.name, "%s", images ? "synth-images" : "synth-vectors");
    snprintf(D.domain, sizeof D.domain, "%s", sh->name);
    st = ng_data_write(path, &D);
  }
  ng_data_free(&D);
  return st;
}
