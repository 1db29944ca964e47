/* Counter-based random streams on Random123's Philox4x32-10.
 *
 * A stream is named by (seed, purpose, generation, index): draw j of stream (s, p, g, i) is a pure function
 * of those five numbers, so any rank can regenerate candidate i of generation g without communication and
 * without replaying earlier draws. The Philox key is the 64-bit seed; the 128-bit counter is (block, index,
 * generation, purpose), one block giving four 32-bit words. The state is a handful of integers
 * (ng_rng_state_save) that checkpoints store exactly.
 *
 * The fill functions give exactly the values of the same number of single draws, in the same order.
 * None of these functions is collective; an ng_rng must not be shared between threads. */
#ifndef NOGRAD_RNG_H
#define NOGRAD_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a stream is for. Separate purposes never share random numbers, whatever the other indices. */
enum ng_rng_purpose {
  NG_RNG_SAMPLE = 1,   /* candidates of an optimizer: generation g, candidate i */
  NG_RNG_ROTATION = 2, /* fixed rotations of benchmark functions */
  NG_RNG_RESTART = 3,  /* restart schedules (BIPOP's draws) */
  NG_RNG_NOISE = 4,    /* noise of noisy benchmark functions */
  NG_RNG_SPSA = 5,     /* SPSA perturbation directions */
  NG_RNG_SHUFFLE = 6,  /* minibatch order in training */
  NG_RNG_INIT = 7,     /* initial weights of models */
  NG_RNG_SPLIT = 8,    /* dataset splits and subsets */
  NG_RNG_DATA = 9,     /* synthetic data generators */
  NG_RNG_DROPOUT = 10, /* dropout masks: step, layer */
  NG_RNG_USER = 64     /* first purpose free for applications */
};

/* A stream. Plain struct so that it can be embedded and copied; treat the fields as private. */
typedef struct ng_rng {
  uint32_t key[2]; /* the seed */
  uint32_t ctr[4]; /* block, index, generation, purpose */
  uint32_t buf[4]; /* the current block's output (derived; not saved) */
  uint32_t used;   /* words of buf already consumed, 0..4 */
} ng_rng;

#define NG_RNG_STATE_LEN 6 /* seed, purpose, generation, index, block, used */

/* Positions `r` at the start of stream (seed, purpose, generation, index). */
NG_EXPORT void ng_rng_init(ng_rng *r, uint64_t seed, uint32_t purpose, uint32_t generation, uint32_t index);

/* Raw draws. */
NG_EXPORT uint32_t ng_rng_u32(ng_rng *r);
NG_EXPORT uint64_t ng_rng_u64(ng_rng *r); /* two consecutive words, the first in the high half */

/* A uniform double in the open interval (0,1), from 53 random bits (one u64 draw). */
NG_EXPORT double ng_rng_uniform(ng_rng *r);

/* A standard normal deviate (one or, rarely, more u64 draws). */
NG_EXPORT double ng_rng_normal(ng_rng *r);

/* +1.0 or -1.0 with probability 1/2 each (one u32 draw). */
NG_EXPORT double ng_rng_rademacher(ng_rng *r);

/* An integer uniform in [0, n), without modulo bias; n >= 1. */
NG_EXPORT uint64_t ng_rng_below(ng_rng *r, uint64_t n);

/* Fill out[0..count) with what `count` single draws would give, faster. */
NG_EXPORT void ng_rng_uniform_fill(ng_rng *r, double *out, size_t count);
NG_EXPORT void ng_rng_normal_fill(ng_rng *r, double *out, size_t count);
NG_EXPORT void ng_rng_rademacher_fill(ng_rng *r, double *out, size_t count);

/* The stream's position as NG_RNG_STATE_LEN integers, and back. ng_rng_state_load returns NG_EINVAL for a
 * state that no stream can have (used > 4, a field out of range). */
NG_EXPORT void ng_rng_state_save(const ng_rng *r, int64_t state[NG_RNG_STATE_LEN]);
NG_EXPORT int ng_rng_state_load(ng_rng *r, const int64_t state[NG_RNG_STATE_LEN]);

#ifdef __cplusplus
}
#endif
#endif
