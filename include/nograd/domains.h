/* Synthetic multi-domain classification: classes of images or feature vectors under domain shifts.
 *
 * The demo and the default tests need several related domains (experts' training sets and a target) without
 * data files. A *concept* (the classes) is drawn once from the seed; a *domain* is a systematic shift of how
 * that concept is observed: rotation, scale, stroke thickness, noise, contrast, offset and class priors.
 *
 * Kinds:
 *   images   K classes of 16 x 16 single-channel "glyphs" with values in [0, 1]. Class c is 3 Gaussian
 strokes
 *            (line segments of width 0.11 in coordinates where the image spans [-1, 1], x right and y up),
 *            drawn from the class's stream; intensity I = 1 - prod_s (1 - g_s), g_s the stroke's Gaussian
 *            profile. An example renders the class under an affine map: the domain's rotation and scale times
 *            a small per-example jitter (rotation sd 8 degrees, log-scale sd 0.08, shift sd 0.08 per axis);
 *            pixel = offset + contrast * I + noise, clipped to [0, 1]. Strokes are rendered analytically (no
 *            resampling), so a rotation of the domain is exact.
 *   vectors  K classes of Gaussian clusters in d dimensions: mean mu_c = m0 + 5/sqrt(2d) N(0, I_d), about a
 *            common centre m0 = 7.5/sqrt(d) N(0, I_d) (features are not centred, as raw ones seldom are), so
 *            that means are about 5 within-class standard deviations apart; spread N(0, I_d). The domain maps
 *            v = contrast * mu_c + thickness * N(0, I_d) to s (.) (v + Q (R - I) Q^T v) + o + 4 noise N(0,
 I_d):
 *            Q an orthonormal basis of a random subspace of the span of the means (random combinations of
 *            them) of dimension 2 floor(min(K, d) / 2), R a rotation by `angle` in each of its planes (in a
 *            random subspace of the whole space a rotation would hardly move the classes relative to one
 *            another); s_j = scale^(1 + 0.5 g_j) per feature; o an offset of length 5 * `offset` along a
 *            random direction; g and the directions drawn from the domain's stream.

 * A domain's fields and what they do for each kind:
 *   angle      degrees. images: rotation, counterclockwise as displayed (row 0 on top). vectors: see above.
 *   scale      images: zoom about the centre. vectors: per-feature scales scale^(1 + 0.5 g_j).
 *   thickness  images: factor on the stroke width (blur). vectors: factor on the within-class spread.
 *   noise      images: pixel noise sd, on top of a base of 0.03. vectors: isotropic noise of sd 4 * noise
 *              added last (noisy: as much as the class spread).
 *   contrast   images: factor on the strokes' intensity. vectors: factor on the class means (< 1: closer).
 *   offset     images: brightness added to every pixel. vectors: the mean offset (above).
 *   imbalance  class priors p_k proportional to imbalance^(-k / (K - 1)): class 0 is `imbalance` times as
 *              frequent as class K-1; 1 is uniform.
 *
 * Presets (the same names for both kinds):
 *   name      angle  scale  thickness  noise  contrast  offset  imbalance
 *   upright       0   1        1       0       1        0         1      the reference domain
 *   tilted       20   1        1       0       1        0         1
 *   small         0   0.75     1       0       1        0         1
 *   noisy         0   1        1       0.25    1        0         1
 *   bold          0   1        1.6     0       1        0         1
 *   faint         0   1        1       0       0.5      0.25      1
 *   skewed        0   1        1       0       1        0        10      priors only
 *   target       10   0.9      1       0.1     1        0         5      a mix, with skewed priors
 *
 * Random streams (seed = the configuration's seed, purpose NG_RNG_DATA, then generation and index):
 *   (0xFFFF0000, c)             image class c's strokes
 *   (0xFFFF0001, c)             vector class c's mean; index 0xFFFFFFFF: the centre m0
 *   (0xFFFF0002, id)            vector domain id's Q, g and offset direction
 *   (0x80000000 | 2 id | kind, r)  row r of domain id (kind 0 images, 1 vectors): its label, jitter and noise
 * so row r's content depends only on (seed, classes, dim, domain, r): the same bits whichever rows are
 * generated together. Rows are numbered below 2^32. The concept (strokes, means) is shared by all domains.
 *
 * Nothing here is collective; the functions are reentrant. */
#ifndef NOGRAD_DOMAINS_H
#define NOGRAD_DOMAINS_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_DOMAINS_SIDE 16                 /* images are 1 x 16 x 16 */
#define NG_DOMAINS_DEFAULT_CLASSES 10      /* K when the configuration says 0 */
#define NG_DOMAINS_DEFAULT_DIM 32          /* d of vectors when the configuration says 0 */
#define NG_DOMAINS_MAX_ROWS 0x100000000ull /* row numbers are 32-bit stream indices */

typedef enum { NG_DOMAINS_IMAGES = 0, NG_DOMAINS_VECTORS = 1 } ng_domains_kind;

/* What is generated: the concept. Zero fields take the defaults. */
typedef struct ng_domains_config {
  ng_domains_kind kind;
  size_t classes; /* K >= 2 (0: 10) */
  size_t dim;     /* vectors: d >= 1 (0: 32); images: ignored (16 x 16) */
  uint64_t seed;
} ng_domains_config;

/* A domain: see the table above. `id` keys the domain's random streams; two domains with the same id and
 * the same fields give the same rows. */
typedef struct ng_domain_shift {
  const char *name;
  uint32_t id; /* 1 .. 0x3FFFFFFF */
  double angle, scale, thickness, noise, contrast, offset, imbalance;
} ng_domain_shift;

/* The presets, in the order of the table above; *count receives their number. */
NG_EXPORT const ng_domain_shift *ng_domains_presets(size_t *count);

/* The preset named `name`, or NULL. */
NG_EXPORT const ng_domain_shift *ng_domains_find(const char *name);

/* Writes the presets' names as "upright, tilted, ..." into buf (cut to size); returns buf. */
NG_EXPORT const char *ng_domains_names(char *buf, size_t size);

/* Floats per row: 256 for images, d for vectors (0 for a configuration with an unknown kind). */
NG_EXPORT size_t ng_domains_row_size(const ng_domains_config *cfg);

/* The class priors of a domain: K probabilities summing to 1 into p. */
NG_EXPORT void ng_domains_priors(const ng_domain_shift *shift, size_t classes, double *p);

/* Generates rows row0 .. row0+rows-1 of domain `shift`: rows * ng_domains_row_size floats into x (row-major;
 * an image row is 16 x 16, row 0 on top) and rows labels in [0, K) into y. NG_EINVAL names the value at
 * fault (kind, classes, shift field out of range, rows beyond 2^32); NG_ENOMEM. */
NG_EXPORT int ng_domains_generate_shift(const ng_domains_config *cfg, const ng_domain_shift *shift, size_t rows,
                              uint64_t row0, float *x, int32_t *y);

/* Same, for the preset named `domain`; NG_ENOTFOUND for an unknown name, the message listing the known ones.
 */
NG_EXPORT int ng_domains_generate(const ng_domains_config *cfg, const char *domain, size_t rows, uint64_t row0,
                        float *x, int32_t *y);

/* Writes rows 0 .. rows-1 of the preset `domain` to a dataset file (ng_data_write: atomic), x shaped
 * N x 1 x 16 x 16 or N x d, with the attributes name "synth-images" or "synth-vectors", domain = the preset's
 * name and classes = K. Statuses of ng_domains_generate (rows must be >= 1) and of ng_data_write. */
NG_EXPORT int ng_domains_write(const ng_domains_config *cfg, const char *domain, size_t rows, const char *path);

#ifdef __cplusplus
}
#endif
#endif
