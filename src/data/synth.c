/* Synthetic supervised problems generated chunk by chunk (see include/nograd/synth.h for the model).
 *
 * What makes a chunk's loss the same bits on every rank: its rows come from a stream keyed by the chunk
 * number alone; the loaded chunks sit in one 64-byte-aligned buffer at a stride rounded up to 64 bytes, so a
 * chunk starts on the same alignment whichever range was loaded; the candidate's weights are copied into an
 * aligned buffer of the object before cblas_dgemv, so the caller's alignment of x does not choose the BLAS
 * kernel's path either; and the rows' losses are added in row order from zero.
 *
 * Labels and losses use the C library's exp and log1p. The loss of a chunk is therefore the same bits on
 * machines with the same libm, which is what a cluster's nodes have. A logistic label compares a uniform
 * with sigmoid(z), so a libm differing in the last bit would change a label only when the uniform falls in
 * that bit: about once in 2^52 rows. */
#include "nograd/synth.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/rng.h"

#define SYNTH_ALIGN 64 /* bytes: a cache line, and the widest vector loads BLAS uses */
#define SYNTH_ALIGN_DOUBLES (SYNTH_ALIGN / sizeof(double))
#define SYNTH_WSTAR_GENERATION 0xFFFFFFFFu /* stream of the true parameters; no chunk has this number */
#define SYNTH_WSTAR_INDEX 1u               /* ... and chunks use index 0 */
#define SYNTH_SIGNAL_SD 2.0                /* standard deviation of w*.x */
#define SYNTH_BIAS_SD 0.5                  /* standard deviation of b* */
#define SYNTH_LSQ_NOISE 0.1                /* standard deviation of the least-squares noise */
#define SYNTH_MAX_CHUNKS 0xFFFFFFFEu       /* chunk numbers are 32-bit stream generations, less w*'s */

/* One kind of problem: how a row's target is drawn from z* = w*.x + b*, and the loss of a chunk given its
 * linear predictions z (without the bias b, which the loss adds) and targets y, summed in row order. */
typedef struct synth_kind {
  const char *name;
  double (*target)(double zstar, ng_rng *r);
  double (*loss)(const double *z, double b, const double *y, size_t m);
} synth_kind;

struct ng_synth {
  const synth_kind *kind;
  size_t rows, d, chunk_rows, nchunks;
  uint64_t seed;
  double *wstar;       /* d + 1: w*, then b* */
  double *w;           /* d, aligned: the candidate's weights as dgemv reads them */
  double *z;           /* chunk_rows, aligned: dgemv's output */
  size_t xstride;      /* doubles between the starts of two loaded chunks in x: chunk_rows * d, rounded up */
  size_t first, count; /* the loaded range */
  double *x;           /* count * xstride, aligned */
  double *y;           /* count * chunk_rows */
};

/* ---- the kinds --------------------------------------------------------------------------------------- */

static double sigmoid(double t) {
  if (t >= 0.0) return 1.0 / (1.0 + exp(-t));
  double e = exp(t);
  return e / (1.0 + e);
}

static double target_logistic(double zstar, ng_rng *r) {
  return ng_rng_uniform(r) < sigmoid(zstar) ? 1.0 : 0.0;
}

/* log(1 + exp(-m)) with margin m = (2y - 1) z, as max(-m, 0) + log1p(exp(-|m|)): no overflow for any z, and
 * exactly log1p(1) = ln 2 per row at z = 0. */
static double loss_logistic(const double *z, double b, const double *y, size_t m) {
  double s = 0.0;
  for (size_t i = 0; i < m; i++) {
    double t = z[i] + b, margin = y[i] > 0.5 ? t : -t;
    s += (margin < 0.0 ? -margin : 0.0) + log1p(exp(-fabs(margin)));
  }
  return s;
}

static double target_lsq(double zstar, ng_rng *r) {
  return zstar + SYNTH_LSQ_NOISE * ng_rng_normal(r);
}

static double loss_lsq(const double *z, double b, const double *y, size_t m) {
  double s = 0.0;
  for (size_t i = 0; i < m; i++) {
    double e = z[i] + b - y[i];
    s += 0.5 * (e * e);
  }
  return s;
}

static const synth_kind kinds[] = {
    {"logistic", target_logistic, loss_logistic},
    {"lsq", target_lsq, loss_lsq},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static const char *const kind_names[] = {"logistic", "lsq", NULL}; /* kinds[]'s names, in its order */
_Static_assert(sizeof kind_names / sizeof kind_names[0] == NKINDS + 1, "kind_names must list every kind");

const char *const *ng_synth_kinds(void) {
  return kind_names;
}

/* ---- creation ---------------------------------------------------------------------------------------- */

static double feature_scale(size_t j) {
  return (double)(1 + j % 5);
}

/* aligned_alloc wants a size that is a multiple of the alignment; NULL for 0 doubles or on overflow. */
static double *alloc_aligned(size_t ndoubles) {
  if (ndoubles == 0 || ndoubles > (SIZE_MAX - SYNTH_ALIGN) / sizeof(double)) return NULL;
  size_t bytes = (ndoubles * sizeof(double) + SYNTH_ALIGN - 1) / SYNTH_ALIGN * SYNTH_ALIGN;
  return aligned_alloc(SYNTH_ALIGN, bytes);
}

int ng_synth_create(const char *kind, size_t rows, size_t features, size_t chunk_rows, uint64_t seed,
                    ng_synth **out) {
  *out = NULL;
  const synth_kind *k = NULL;
  for (size_t i = 0; kind && i < NKINDS; i++)
    if (strcmp(kind, kinds[i].name) == 0) k = &kinds[i];
  if (!k) {
    char known[128] = "";
    for (size_t i = 0; i < NKINDS; i++) {
      size_t len = strlen(known);
      snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", kinds[i].name);
    }
    return ng_error(NG_EINVAL, "synthetic data: unknown kind '%s' (known: %s)", kind ? kind : "(null)",
                    known);
  }
  if (rows < 1) return ng_error(NG_EINVAL, "synthetic data: rows must be >= 1, got %zu", rows);
  if (features < 1) return ng_error(NG_EINVAL, "synthetic data: features must be >= 1, got %zu", features);
  if (chunk_rows < 1)
    return ng_error(NG_EINVAL, "synthetic data: chunk rows must be >= 1, got %zu", chunk_rows);
  if (chunk_rows > rows) chunk_rows = rows; /* one chunk holds everything; scratch need not be larger */
  if (features > INT_MAX || chunk_rows > INT_MAX)
    return ng_error(NG_EINVAL, "synthetic data: %zu features x %zu chunk rows exceed what BLAS indexes (%d)",
                    features, chunk_rows, INT_MAX);
  size_t nchunks = rows / chunk_rows + (rows % chunk_rows != 0);
  if (nchunks > SYNTH_MAX_CHUNKS)
    return ng_error(NG_EINVAL, "synthetic data: %zu rows in chunks of %zu make %zu chunks, more than %u",
                    rows, chunk_rows, nchunks, SYNTH_MAX_CHUNKS);
  if (chunk_rows > (SIZE_MAX - SYNTH_ALIGN) / sizeof(double) / features)
    return ng_error(NG_EINVAL, "synthetic data: a chunk of %zu rows x %zu features is too large", chunk_rows,
                    features);

  ng_synth *s = calloc(1, sizeof *s);
  if (!s) return ng_error(NG_ENOMEM, "synthetic data: out of memory");
  s->kind = k;
  s->rows = rows;
  s->d = features;
  s->chunk_rows = chunk_rows;
  s->nchunks = nchunks;
  s->seed = seed;
  size_t cells = chunk_rows * features;
  s->xstride = (cells + SYNTH_ALIGN_DOUBLES - 1) / SYNTH_ALIGN_DOUBLES * SYNTH_ALIGN_DOUBLES;
  s->wstar = malloc((features + 1) * sizeof *s->wstar);
  s->w = alloc_aligned(features);
  s->z = alloc_aligned(chunk_rows);
  if (!s->wstar || !s->w || !s->z) {
    ng_synth_destroy(&s);
    return ng_error(NG_ENOMEM, "synthetic data: out of memory for %zu features and chunks of %zu rows",
                    features, chunk_rows);
  }
  ng_rng r;
  ng_rng_init(&r, seed, NG_RNG_DATA, SYNTH_WSTAR_GENERATION, SYNTH_WSTAR_INDEX);
  ng_rng_normal_fill(&r, s->wstar, features + 1);
  double unit = SYNTH_SIGNAL_SD / sqrt((double)features);
  for (size_t j = 0; j < features; j++)
    s->wstar[j] *= unit / feature_scale(j);
  s->wstar[features] *= SYNTH_BIAS_SD;
  *out = s;
  return NG_OK;
}

static void unload(ng_synth *s) {
  free(s->x);
  free(s->y);
  s->x = s->y = NULL;
  s->first = s->count = 0;
}

void ng_synth_destroy(ng_synth **s) {
  if (!s || !*s) return;
  unload(*s);
  free((*s)->wstar);
  free((*s)->w);
  free((*s)->z);
  free(*s);
  *s = NULL;
}

size_t ng_synth_chunks(const ng_synth *s) {
  return s->nchunks;
}

size_t ng_synth_dim(const ng_synth *s) {
  return s->d + 1;
}

size_t ng_synth_chunk_rows(const ng_synth *s, size_t chunk) {
  if (chunk >= s->nchunks) return 0;
  size_t start = chunk * s->chunk_rows;
  return s->rows - start < s->chunk_rows ? s->rows - start : s->chunk_rows;
}

const double *ng_synth_true_weights(const ng_synth *s) {
  return s->wstar;
}

/* ---- generation -------------------------------------------------------------------------------------- */

/* Chunk c from its own stream, row after row: d normals scaled per feature, then the draws of the target. */
static void generate(const ng_synth *s, size_t c, double *x, double *y) {
  size_t m = ng_synth_chunk_rows(s, c), d = s->d;
  ng_rng r;
  ng_rng_init(&r, s->seed, NG_RNG_DATA, (uint32_t)c, 0);
  for (size_t i = 0; i < m; i++) {
    double *row = x + i * d;
    ng_rng_normal_fill(&r, row, d);
    double zstar = 0.0;
    for (size_t j = 0; j < d; j++) {
      row[j] *= feature_scale(j);
      zstar += s->wstar[j] * row[j];
    }
    y[i] = s->kind->target(zstar + s->wstar[d], &r);
  }
}

int ng_synth_load(ng_synth *s, size_t first_chunk, size_t count) {
  if (first_chunk > s->nchunks || count > s->nchunks - first_chunk)
    return ng_error(NG_EINVAL,
                    "synthetic data: cannot load %zu chunks from chunk %zu: there are %zu chunks (0..%zu)",
                    count, first_chunk, s->nchunks, s->nchunks - 1);
  unload(s);
  if (count == 0) return NG_OK;
  if (count > SIZE_MAX / sizeof(double) / s->xstride - 1)
    return ng_error(NG_ENOMEM, "synthetic data: %zu chunks of %zu values do not fit in memory", count,
                    s->xstride);
  s->x = alloc_aligned(count * s->xstride);
  s->y = malloc(count * s->chunk_rows * sizeof *s->y);
  if (!s->x || !s->y) {
    unload(s);
    return ng_error(NG_ENOMEM, "synthetic data: out of memory for chunks %zu..%zu (%zu MB)", first_chunk,
                    first_chunk + count - 1, count * (s->xstride + s->chunk_rows) * sizeof(double) >> 20);
  }
  for (size_t i = 0; i < count; i++)
    generate(s, first_chunk + i, s->x + i * s->xstride, s->y + i * s->chunk_rows);
  s->first = first_chunk;
  s->count = count;
  return NG_OK;
}

void ng_synth_loaded(const ng_synth *s, size_t *first_chunk, size_t *count) {
  *first_chunk = s->first;
  *count = s->count;
}

/* ---- evaluation -------------------------------------------------------------------------------------- */

static int not_loaded(const ng_synth *s, size_t chunk) {
  if (chunk >= s->nchunks)
    return ng_error(NG_EINVAL, "synthetic data: chunk %zu does not exist (%zu chunks)", chunk, s->nchunks);
  if (s->count == 0)
    return ng_error(NG_EINVAL, "synthetic data: chunk %zu is not loaded (no chunks are loaded)", chunk);
  return ng_error(NG_EINVAL, "synthetic data: chunk %zu is not loaded (loaded: chunks %zu..%zu)", chunk,
                  s->first, s->first + s->count - 1);
}

int ng_synth_chunk(const ng_synth *s, size_t chunk, const double **x, const double **y, size_t *rows) {
  if (chunk < s->first || chunk - s->first >= s->count) return not_loaded(s, chunk);
  size_t i = chunk - s->first;
  *x = s->x + i * s->xstride;
  *y = s->y + i * s->chunk_rows;
  *rows = ng_synth_chunk_rows(s, chunk);
  return NG_OK;
}

int ng_synth_eval(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                  double *count) {
  ng_synth *s = ctx;
  if (chunk < s->first || chunk - s->first >= s->count) return not_loaded(s, chunk);
  size_t i = chunk - s->first, m = ng_synth_chunk_rows(s, chunk), d = s->d;
  memcpy(s->w, x, d * sizeof *x);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)d, 1.0, s->x + i * s->xstride, (int)d, s->w, 1, 0.0,
              s->z, 1);
  *sum += s->kind->loss(s->z, x[d], s->y + i * s->chunk_rows, m);
  *count += (double)m;
  return NG_OK;
}

/* ng_objective.load: every rank generates the chunks it owns. */
static int load_objective(void *ctx, size_t first_chunk, size_t count) {
  return ng_synth_load(ctx, first_chunk, count);
}

void ng_synth_objective(ng_synth *s, ng_objective *obj) {
  *obj = (ng_objective){
      .n = s->d + 1, .nchunks = s->nchunks, .load = load_objective, .eval = ng_synth_eval, .ctx = s};
}
