/* Private: the pieces of candidate generation that the optimizers' ask and ng_sampler_generate share, so
 * that a rank regenerating a candidate runs exactly the code rank 0 ran. */
#ifndef NOGRAD_SAMPLER_IMPL_H
#define NOGRAD_SAMPLER_IMPL_H

#include "nograd/opt.h"

#define NG_SAMPLER_BLOCK 32 /* candidates per matrix product; fixed, so any rank can redo a block */
#define NG_SAMPLER_COLS 16  /* coordinates per matrix product from NG_SAMPLER_COLS_MIN_N on */
#define NG_SAMPLER_COLS_MIN_N 256

/* Whether the full Gaussian steps of dimension n are made by column blocks: one product of fixed shape per
 * sampling block and NG_SAMPLER_COLS coordinates, which needs only those rows of the factor. A rank that
 * keeps some rows of the factor (the engine's sliced factor, src/engine/slices.c) then makes the same bits
 * for its coordinates as a rank that has it whole. */
static inline int ng_sampler_by_cols(size_t n) {
  return n >= NG_SAMPLER_COLS_MIN_N;
}

/* Coordinates [c0, c0 + nc) of the steps of b candidates (b <= NG_SAMPLER_BLOCK, nc = min(NG_SAMPLER_COLS,
 * n - c0)): out (b x nc) = Z F_c^T, Z the candidates' draws (b x n), F_c the factor's rows c0.. (nc x n, row
 * stride n). */
void ng_sampler_gauss_cols(size_t n, size_t b, const double *Z, const double *F_c, size_t nc, double *out);

/* The standard normal draws of candidates k0..k0+b (b x n) of a Gaussian sampler. */
void ng_sampler_gauss_draws(const ng_sampler *s, size_t k0, size_t b, double *Z);

/* Gaussian kinds: fills Z (b x n standard normals of candidates k0..k0+b) and Y (b x n, F z). For
 * GAUSS_FULL, b must be a whole block: min(NG_SAMPLER_BLOCK, lambda - k0) with k0 a multiple of the block. */
void ng_sampler_gauss_block(const ng_sampler *s, size_t k0, size_t b, double *Z, double *Y);

/* x = T(mean + sigma * y) for `count` rows; T is pycma's linear-quadratic box transform when bounded. */
void ng_sampler_gauss_finish(const ng_sampler *s, const double *Y, size_t count, double *x);

/* SPSA: direction Delta_j (n values) and the pair x_{2j} (xp), x_{2j+1} (xm). */
void ng_sampler_spsa_pair(const ng_sampler *s, size_t j, double *delta, double *xp, double *xm);

/* Clamps x (n values) onto the box of s (no-op without bounds). */
void ng_sampler_clamp(const ng_sampler *s, double *x);

#endif
