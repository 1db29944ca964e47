/* Test-only plugins for test_evaluator.c, one source built four ways by the top-level CMakeLists.txt
 * (BADPLUGIN_KIND):
 *   0  a valid ABI-1 plugin whose behaviour its first word chooses: "initfail" (init fails with a message),
 *      "evalfail" (the second evaluate fails), "badcount" (a count of -1), "counts" (chunk c counts c + 1),
 *      "finish FILE" (finish writes "finished" to FILE); no word: f(x) = sum (x_i - 1)^2
 *   1  exports no entry point                 2  says ABI version 99
 *   3  exports only nograd_plugin_v2 (a newer nograd's) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/plugin.h"

#ifndef BADPLUGIN_KIND
#define BADPLUGIN_KIND 0
#endif

typedef struct {
  char mode[32];
  char file[512];
  unsigned n;
  int calls;
} bad;

static int bad_init(void **ctx, const ng_plugin_init_args *args, char *err, size_t errlen) {
  if (args->argc > 0 && strcmp(args->argv[0], "initfail") == 0) {
    snprintf(err, errlen, "cannot open the scoring server at localhost:1");
    return 7;
  }
  bad *b = calloc(1, sizeof *b);
  if (!b) return 1;
  b->n = args->n;
  if (args->argc > 0) snprintf(b->mode, sizeof b->mode, "%s", args->argv[0]);
  if (args->argc > 1) snprintf(b->file, sizeof b->file, "%s", args->argv[1]);
  *ctx = b;
  return 0;
}

static int bad_evaluate(void *ctx, const ng_plugin_batch *batch, double *losses, double *counts, char *err,
                        size_t errlen) {
  bad *b = ctx;
  if (++b->calls == 2 && strcmp(b->mode, "evalfail") == 0) {
    snprintf(err, errlen, "the scoring server went away");
    return 1;
  }
  for (unsigned k = 0; k < batch->m; k++) {
    double f = 0;
    for (unsigned i = 0; i < batch->n; i++)
      f += (batch->x[(size_t)k * batch->n + i] - 1) * (batch->x[(size_t)k * batch->n + i] - 1);
    losses[k] = f;
    if (strcmp(b->mode, "badcount") == 0) counts[k] = -1;
    if (strcmp(b->mode, "counts") == 0) {
      counts[k] = batch->chunk + 1.0;
      losses[k] = f * counts[k];
    }
  }
  return 0;
}

static void bad_finish(void *ctx) {
  bad *b = ctx;
  if (strcmp(b->mode, "finish") == 0 && b->file[0]) {
    FILE *f = fopen(b->file, "w");
    if (f) {
      fprintf(f, "finished after %d calls\n", b->calls);
      fclose(f);
    }
  }
  free(b);
}

static const ng_plugin_v1 table = {
    .abi_version = BADPLUGIN_KIND == 2 ? 99 : NG_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(ng_plugin_v1),
    .name = "bad",
    .init = bad_init,
    .evaluate = bad_evaluate,
    .finish = bad_finish,
};

#if BADPLUGIN_KIND == 0 || BADPLUGIN_KIND == 2
const ng_plugin_v1 *nograd_plugin_v1(void);
const ng_plugin_v1 *nograd_plugin_v1(void) {
  return &table;
}
#elif BADPLUGIN_KIND == 3
const void *nograd_plugin_v2(void);
const void *nograd_plugin_v2(void) {
  return &table;
}
#else
const void *not_a_nograd_plugin(void);
const void *not_a_nograd_plugin(void) {
  return &table;
}
#endif
