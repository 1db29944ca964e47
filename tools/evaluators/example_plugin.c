/* An example plugin: evaluator (plugin ABI version 1, see README.md here and nograd/plugin.h): the shifted
 * sphere f(x) = sum_i (x_i - s)^2, s = 1 unless the words after the library's path say "--shift S".
 *
 *   cc -shared -fPIC -I PREFIX/include example_plugin.c -o example_plugin.so
 *   nograd ... --evaluator "plugin:./example_plugin.so --shift 0.5"
 *
 * It needs only the header: no libnograd, no MPI. Everything a rank needs lives in the context that init
 * returns, so two evaluators in one process (tests do that) do not share state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/plugin.h"

typedef struct {
  unsigned n;
  double shift;
  long long evaluated; /* candidates scored, reported by finish when NOGRAD_EXAMPLE_VERBOSE is set */
} sphere;

static int sphere_init(void **ctx, const ng_plugin_init_args *args, char *err, size_t errlen) {
  sphere *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return 1;
  }
  s->n = args->n;
  s->shift = 1;
  for (int i = 0; i < args->argc; i++) {
    char *end = NULL;
    if (strcmp(args->argv[i], "--shift") == 0 && i + 1 < args->argc) {
      s->shift = strtod(args->argv[++i], &end);
      if (*end == '\0' && end != args->argv[i]) continue;
    }
    snprintf(err, errlen, "example plugin: unknown or bad word '%s' (it takes --shift S)", args->argv[i]);
    free(s);
    return 1;
  }
  *ctx = s;
  return 0;
}

static int sphere_evaluate(void *ctx, const ng_plugin_batch *b, double *losses, double *counts, char *err,
                           size_t errlen) {
  sphere *s = ctx;
  if (b->n != s->n) {
    snprintf(err, errlen, "example plugin: a batch of dimension %u, init said %u", b->n, s->n);
    return 1;
  }
  for (unsigned k = 0; k < b->m; k++) {
    const double *x = b->x + (size_t)k * b->n;
    double f = 0;
    for (unsigned i = 0; i < b->n; i++)
      f += (x[i] - s->shift) * (x[i] - s->shift);
    losses[k] = f; /* counts stay 1: one score per candidate and chunk */
  }
  s->evaluated += b->m;
  return 0;
}

static void sphere_finish(void *ctx) {
  sphere *s = ctx;
  if (getenv("NOGRAD_EXAMPLE_VERBOSE")) fprintf(stderr, "example plugin: %lld candidates\n", s->evaluated);
  free(s);
}

static const ng_plugin_v1 table = {
    .abi_version = NG_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(ng_plugin_v1),
    .name = "example sphere",
    .init = sphere_init,
    .evaluate = sphere_evaluate,
    .finish = sphere_finish,
};

/* The one exported symbol (built with -fvisibility=hidden, it would need
 * __attribute__((visibility("default")))). */
const ng_plugin_v1 *nograd_plugin_v1(void);
const ng_plugin_v1 *nograd_plugin_v1(void) {
  return &table;
}
