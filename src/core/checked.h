/* Private: arithmetic that cannot wrap, for every size and count that comes from a file or an option.
 *
 * A size read from a file (a model spec's shapes, a dataset's dimensions, an HDF5 dataspace) or from the
 * command line (--dim, --batch, --shape, --param maxiter=...) is multiplied, added and narrowed only
 * through these helpers, so that a value too large for the type becomes an error naming what it was, never a
 * wrapped product that then sizes an allocation, nor an undefined cast of a double.
 *
 * Two flavours: ng__mul/ng__add report success as a bool and record nothing, for code that words its own
 * message (spec lines, HDF5 paths); ng__checked_* record "WHAT: ..." through ng_error and return NG_EINVAL.
 * Header-only (static inline), so that the command-line front end, which links only the library's API, uses
 * the same ones. Nothing here is collective. */
#ifndef NOGRAD_CORE_CHECKED_H
#define NOGRAD_CORE_CHECKED_H

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "nograd/error.h"

/* *out = a * b; false (and *out unchanged) when the product does not fit in size_t. */
static inline bool ng__mul(size_t a, size_t b, size_t *out) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

/* *out = a + b; false (and *out unchanged) when the sum does not fit in size_t. */
static inline bool ng__add(size_t a, size_t b, size_t *out) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r)) return false;
  *out = r;
  return true;
}

/* *out = a * b * c; false when any step does not fit. */
static inline bool ng__mul3(size_t a, size_t b, size_t c, size_t *out) {
  size_t ab;
  return ng__mul(a, b, &ab) && ng__mul(ab, c, out);
}

/* ceil(a / b) for b > 0, without the wrap of (a + b - 1) / b when b is large. */
static inline size_t ng__ceil_div(size_t a, size_t b) {
  return a / b + (a % b != 0);
}

/* malloc(a * b * size), or NULL when that product does not fit (as when memory runs out: the caller's message
 * for a failed allocation stands). */
static inline void *ng__mallocn(size_t a, size_t b, size_t size) {
  size_t bytes;
  return ng__mul3(a, b, size, &bytes) ? malloc(bytes) : NULL;
}

/* *out = a * b, or NG_EINVAL with "WHAT: A x B does not fit in 64 bits" (the size of what the caller was
 * about to allocate or index). */
static inline int ng__checked_mul(const char *what, size_t a, size_t b, size_t *out) {
  if (ng__mul(a, b, out)) return NG_OK;
  return ng_error(NG_EINVAL, "%s: %zu x %zu does not fit in %zu bits", what, a, b, sizeof(size_t) * 8);
}

/* *out = a + b, or NG_EINVAL with "WHAT: A + B does not fit in 64 bits". */
static inline int ng__checked_add(const char *what, size_t a, size_t b, size_t *out) {
  if (ng__add(a, b, out)) return NG_OK;
  return ng_error(NG_EINVAL, "%s: %zu + %zu does not fit in %zu bits", what, a, b, sizeof(size_t) * 8);
}

/* Whether the double v is a whole number in [lo, hi] (NaN and infinities are not). lo and hi must be exactly
 * representable as doubles for the bounds to be exact; every limit nograd uses (2^31-1, 2^53, 9e18) is, or is
 * checked with a margin. */
static inline bool ng__is_whole_in(double v, double lo, double hi) {
  return isfinite(v) && v == floor(v) && v >= lo && v <= hi;
}

/* v as int64 when it is a whole number in [lo, hi] and within +-9e18 (where the cast is defined: INT64_MAX
 * itself is not a double); else NG_EINVAL with "WHAT: expected a whole number in [LO, HI], got V". */
static inline int ng__checked_i64(const char *what, double v, int64_t lo, int64_t hi, int64_t *out) {
  double dlo = lo < -(int64_t)9000000000000000000 ? -9e18 : (double)lo,
         dhi = hi > (int64_t)9000000000000000000 ? 9e18 : (double)hi;
  if (!ng__is_whole_in(v, dlo, dhi))
    return ng_error(NG_EINVAL, "%s: expected a whole number in [%" PRId64 ", %" PRId64 "], got %.15g", what,
                    lo, hi, v);
  *out = (int64_t)v;
  return NG_OK;
}

/* v as int when it is a whole number in [lo, hi]; else NG_EINVAL as ng__checked_i64. */
static inline int ng__checked_int(const char *what, double v, int lo, int hi, int *out) {
  int64_t w;
  int st = ng__checked_i64(what, v, lo, hi, &w);
  if (st == NG_OK) *out = (int)w;
  return st;
}

/* v as size_t when it is a whole number in [lo, hi] (hi at most 9e18); else NG_EINVAL as ng__checked_i64. */
static inline int ng__checked_size(const char *what, double v, size_t lo, size_t hi, size_t *out) {
  int64_t w;
  size_t cap = (size_t)9000000000000000000u;
  int st = ng__checked_i64(what, v, (int64_t)(lo < cap ? lo : cap), (int64_t)(hi < cap ? hi : cap), &w);
  if (st == NG_OK) *out = (size_t)w;
  return st;
}

#endif
