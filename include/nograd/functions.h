/* Benchmark functions: the optimizers' test bench.
 *
 * sphere, ellipsoid (condition 1e6), cigar, tablet, diffpow, rosenbrock, rastrigin, each also rotated
 * ("rot-ellipsoid": x is multiplied by a fixed orthogonal matrix drawn from the seed before evaluation), and
 * a noisy sphere. A function object holds its rotation and its noise stream; evaluation of one point is a
 * pure function of (function, point, generation, candidate index), so that noisy values are the same
 * whichever rank computes them. None of these functions is collective. */
#ifndef NOGRAD_FUNCTIONS_H
#define NOGRAD_FUNCTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ng_fn ng_fn;

/* Creates function `name` in dimension n. `seed` draws the rotation of "rot-*" functions and the noise of
 * "noisy-sphere". NG_EINVAL names an unknown function (and lists the known ones) or a dimension the function
 * cannot take (rosenbrock and diffpow need n >= 2). */
NG_EXPORT int ng_fn_create(const char *name, size_t n, uint64_t seed, ng_fn **out);

/* Frees; accepts NULL and clears the pointer. */
NG_EXPORT void ng_fn_destroy(ng_fn **fn);

/* f(x). `generation` and `index` key the noise stream of noisy functions and are ignored by the others.
 * `work` is scratch of at least n doubles (rotated functions need it), or NULL for functions that do not. */
NG_EXPORT double ng_fn_eval(const ng_fn *fn, const double *x, uint64_t generation, uint64_t index, double *work);

/* The function's name and its dimension. The minimum of every deterministic function is 0; the noisy sphere
 * follows pycma (sphere * exp(2.1e-9 N(0,1)/n) + 0.1 U(0,1)), whose expected value at 0 is 0.05. */
NG_EXPORT const char *ng_fn_name(const ng_fn *fn);
NG_EXPORT size_t ng_fn_dim(const ng_fn *fn);

/* The names of the built-in functions, NULL-terminated. */
NG_EXPORT const char *const *ng_fn_names(void);

#ifdef __cplusplus
}
#endif
#endif
