/* Synthetic supervised problems, generated chunk by chunk: a data-dependent objective without data files.
 *
 * N rows of d features are cut into chunks of a fixed number of rows (the last chunk may be shorter). Chunk c
 * is drawn from the random stream (seed, NG_RNG_DATA, c, 0) and the true parameters (w*, b*) from
 * (seed, NG_RNG_DATA, 0xFFFFFFFF, 1), so a chunk's rows are the same bits whichever rank generates it and
 * however many ranks there are; a rank generates and keeps only the chunks it loads.
 *
 * Rows: x_j = (1 + j mod 5) * N(0,1). True parameters: w*_j = 2 N(0,1) / ((1 + j mod 5) sqrt(d)) and
 * b* = 0.5 N(0,1), so that w*.x has variance about 4 whatever d is. Kinds:
 *   "logistic"  y ~ Bernoulli(sigmoid(w*.x + b*)) in {0, 1}; loss: log-loss, log(1 + exp(-(2y-1) z));
 *   "lsq"       y = w*.x + b* + 0.1 N(0,1); loss: (z - y)^2 / 2;
 * where z = w.x + b for a candidate (w, b) of dimension d + 1 (the d weights, then the bias). The loss of a
 * chunk is the sum over its rows, in row order.
 *
 * Evaluation of one chunk computes z with one cblas_dgemv on 64-byte-aligned copies of the chunk and of the
 * weights, so it runs the same code on the same bytes wherever the chunk lives; run it with one BLAS thread
 * (DESIGN.md, "Determinism contract"). It allocates nothing: an ng_synth keeps its scratch, which is why one
 * object must not be evaluated from two threads at once.
 *
 * None of these functions is collective. */
#ifndef NOGRAD_SYNTH_H
#define NOGRAD_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"
#include "nograd/objective.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ng_synth ng_synth;

/* Creates a problem of `rows` rows and `features` features cut into chunks of `chunk_rows` rows, with the
 * true parameters drawn from `seed`. No chunk is loaded yet. NG_EINVAL names the value at fault: an unknown
 * kind (the message lists the known ones), a zero count, more than 2^32 - 2 chunks, or more features or
 * chunk rows than a BLAS int holds; NG_ENOMEM. */
NG_EXPORT int ng_synth_create(const char *kind, size_t rows, size_t features, size_t chunk_rows, uint64_t seed,
                    ng_synth **out);

/* Frees; accepts NULL and clears the caller's pointer. */
NG_EXPORT void ng_synth_destroy(ng_synth **s);

/* The kinds, NULL-terminated. */
NG_EXPORT const char *const *ng_synth_kinds(void);

/* The number of chunks, ceil(rows / chunk_rows). */
NG_EXPORT size_t ng_synth_chunks(const ng_synth *s);

/* The dimension of a candidate: features + 1. */
NG_EXPORT size_t ng_synth_dim(const ng_synth *s);

/* The number of rows of chunk `chunk` (chunk_rows, or fewer for the last one); 0 for a chunk out of range. */
NG_EXPORT size_t ng_synth_chunk_rows(const ng_synth *s, size_t chunk);

/* Generates chunks first_chunk .. first_chunk+count-1 and keeps them, replacing whatever was loaded; count 0
 * unloads everything. The old chunks are freed before the new ones are allocated, so that a rank never holds
 * both: after a failure nothing is loaded. NG_EINVAL names a range beyond the last chunk; NG_ENOMEM. */
NG_EXPORT int ng_synth_load(ng_synth *s, size_t first_chunk, size_t count);

/* The loaded range: its first chunk and its number of chunks (0 when nothing is loaded). */
NG_EXPORT void ng_synth_loaded(const ng_synth *s, size_t *first_chunk, size_t *count);

/* The rows of a loaded chunk: *x (rows x features, row-major), *y (rows values: labels 0/1 or targets) and
 * *rows. Read-only views, valid until the next ng_synth_load or ng_synth_destroy. NG_EINVAL names a chunk
 * that is not loaded and the loaded range. */
NG_EXPORT int ng_synth_chunk(const ng_synth *s, size_t chunk, const double **x, const double **y, size_t *rows);

/* ng_objective.eval with ctx the ng_synth: adds the loss of candidate x (d weights, then the bias) on chunk
 * `chunk`, summed over its rows from zero in row order, to *sum, and the chunk's number of rows to *count.
 * `generation` and `k` are not used: the data do not depend on them. NG_EINVAL names a chunk that is not
 * loaded and the loaded range; *sum and *count are then unchanged. */
NG_EXPORT int ng_synth_eval(void *ctx, const double *x, uint64_t generation, size_t k, size_t chunk, double *sum,
                  double *count);

/* The true parameters (w*_0 .. w*_{d-1}, b*): d + 1 values owned by s. */
NG_EXPORT const double *ng_synth_true_weights(const ng_synth *s);

/* Fills obj with this problem: n = d + 1, nchunks, load (ng_synth_load on ctx), eval = ng_synth_eval,
 * ctx = s; any other field zero. The engine then has every rank generate only the chunks it owns. */
NG_EXPORT void ng_synth_objective(ng_synth *s, ng_objective *obj);

#ifdef __cplusplus
}
#endif
#endif
