/* Private: the pieces of candidate generation that the optimizers' ask and ng_sampler_generate share, so
 * that a rank regenerating a candidate runs exactly the code rank 0 ran. */
#ifndef NOGRAD_SAMPLER_IMPL_H
#define NOGRAD_SAMPLER_IMPL_H

#include "nograd/opt.h"

#define NG_SAMPLER_BLOCK 32 /* candidates per matrix product; fixed, so any rank can redo a block */

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
