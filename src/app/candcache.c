/* The per-generation candidate cache of the model objectives (see candcache.h). */
#include "app/candcache.h"

#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"

int ng__cand_slot(ng__cand_cache *c, uint64_t generation, size_t k, size_t nd, size_t nf, const char *what,
                  double **d, float **f, bool *fresh) {
  if (generation != c->generation)
    for (size_t i = 0; i < c->n; i++)
      c->ok[i] = false;
  c->generation = generation;
  if (k >= c->n) { /* grows to the candidates this rank evaluates, once */
    size_t n = k + 1;
    double **dd = realloc(c->d, n * sizeof *dd);
    if (dd) c->d = dd;
    float **ff = realloc(c->f, n * sizeof *ff);
    if (ff) c->f = ff;
    bool *ok = realloc(c->ok, n * sizeof *ok);
    if (ok) c->ok = ok;
    if (!dd || !ff || !ok) return ng_error(NG_ENOMEM, "%s: out of memory for %zu candidates", what, n);
    c->nd = nd;
    c->nf = nf;
    for (size_t i = c->n; i < n; i++) {
      c->d[i] = malloc((nd + 1) * sizeof **c->d);
      c->f[i] = malloc((nf + 1) * sizeof **c->f);
      c->ok[i] = false;
      c->n = i + 1;
      if (!c->d[i] || !c->f[i]) return ng_error(NG_ENOMEM, "%s: out of memory for candidates", what);
    }
  }
  *d = c->d[k];
  *f = c->f[k];
  *fresh = !c->ok[k];
  return NG_OK;
}

void ng__cand_done(ng__cand_cache *c, size_t k) {
  c->ok[k] = true;
}

void ng__cand_cache_free(ng__cand_cache *c) {
  for (size_t i = 0; i < c->n; i++) {
    free(c->d[i]);
    free(c->f[i]);
  }
  free(c->d);
  free(c->f);
  free(c->ok);
  memset(c, 0, sizeof *c);
}
