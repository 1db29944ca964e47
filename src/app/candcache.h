/* Private: the candidates of the current generation, built once however many chunks they meet.
 *
 * An objective over a model (glue's mixtures, retrofit's knobs) turns candidate x into a parameter vector
 * before it can evaluate a chunk, and the engine hands it each candidate once per chunk. A slot per candidate
 * index, cleared when the generation changes, holds what was built, so the vector is built once per
 * generation. A slot holds nd doubles and nf floats; the sizes are fixed by the first use. */
#ifndef NOGRAD_APP_CANDCACHE_H
#define NOGRAD_APP_CANDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  size_t n, nd, nf; /* slots, doubles and floats per slot */
  uint64_t generation;
  double **d;
  float **f;
  bool *ok;
} ng__cand_cache;

/* Slot k of `generation` (slots of other generations are stale): *d (nd doubles) and *f (nf floats), and
 * whether it still has to be built (*fresh; the caller builds it and then calls ng__cand_done). NG_ENOMEM
 * names `what`. Not collective. */
int ng__cand_slot(ng__cand_cache *c, uint64_t generation, size_t k, size_t nd, size_t nf, const char *what,
                  double **d, float **f, bool *fresh);

/* Marks slot k as built. */
void ng__cand_done(ng__cand_cache *c, size_t k);

void ng__cand_cache_free(ng__cand_cache *c);

#endif
