/* Named arrays: the complete state of an object as a flat list of (name, type, length, values).
 *
 * Optimizers save themselves into an ng_state and load themselves back from one; the checkpoint writer
 * stores each entry as an HDF5 dataset under /optimizer. Names are short paths ("cmaes/mean"); an entry is
 * float64 or int64 (counters, random stream positions, and enums are int64 so that they survive a round trip
 * through any file format exactly), or a string (names that must survive a change of any table's order, like
 * the optimizer's). A string entry is held as NUL-padded 8-byte words, so that every entry is a whole number
 * of 8-byte values and generic code (checksums, comparisons, copies) treats all types alike; its length is in
 * words. None of these functions is collective. */
#ifndef NOGRAD_STATE_H
#define NOGRAD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ng_state ng_state;

typedef enum { NG_STATE_F64 = 1, NG_STATE_I64 = 2, NG_STATE_STR = 3 } ng_state_type;

/* Creates an empty state. Returns NG_OK or NG_ENOMEM. */
NG_EXPORT int ng_state_create(ng_state **out);

/* Frees a state; accepts NULL and clears the caller's pointer. */
NG_EXPORT void ng_state_destroy(ng_state **st);

/* Adds (or replaces) an entry; the values are copied. NG_EINVAL for an empty name, NG_ENOMEM. */
NG_EXPORT int ng_state_put_f64(ng_state *st, const char *name, const double *values, size_t len);
NG_EXPORT int ng_state_put_i64(ng_state *st, const char *name, const int64_t *values, size_t len);
/* A string entry (copied; see above for its layout). NG_EINVAL for an empty name, NG_ENOMEM. */
NG_EXPORT int ng_state_put_str(ng_state *st, const char *name, const char *value);
/* A one-value convenience for scalars. */
NG_EXPORT int ng_state_put_scalar(ng_state *st, const char *name, double value);
NG_EXPORT int ng_state_put_int(ng_state *st, const char *name, int64_t value);

/* Copies an entry out. The entry must exist, have the type asked for and exactly `len` values:
 * NG_ENOTFOUND names the missing entry, NG_EMISMATCH gives the expected and found type or length. */
NG_EXPORT int ng_state_get_f64(const ng_state *st, const char *name, double *values, size_t len);
NG_EXPORT int ng_state_get_i64(const ng_state *st, const char *name, int64_t *values, size_t len);
NG_EXPORT int ng_state_get_scalar(const ng_state *st, const char *name, double *value);
NG_EXPORT int ng_state_get_int(const ng_state *st, const char *name, int64_t *value);
/* A string entry: *value points into the state (valid until it changes). NG_ENOTFOUND, NG_EMISMATCH. */
NG_EXPORT int ng_state_get_str(const ng_state *st, const char *name, const char **value);

/* Iteration, for writers: the number of entries, and entry i's name, type, length and values (the
 * pointer stays valid until the state changes). NG_EINVAL for i out of range. */
NG_EXPORT size_t ng_state_count(const ng_state *st);
NG_EXPORT int ng_state_entry(const ng_state *st, size_t i, const char **name, ng_state_type *type, size_t *len,
                   const void **values);

/* Length of the named entry, or NG_ENOTFOUND. */
NG_EXPORT int ng_state_length(const ng_state *st, const char *name, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
