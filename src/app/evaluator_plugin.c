/* plugin: evaluators. A shared library loaded into the rank with dlopen and called through the versioned
 * table of nograd/plugin.h. What can be checked before the first call is: the library loads (dlerror's
 * text otherwise), it exports the entry point (when it exports another version's instead, the message
 * says which), the table is of a version and size this nograd knows and has its two mandatory functions. */
#include <dlfcn.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/evaluator_impl.h"
#include "nograd/error.h"
#include "nograd/plugin.h"

#define PLUGIN_ERR_LEN 1024

typedef struct {
  void *handle;
  const ng_plugin_v1 *api;
  void *ctx;
  bool initialized; /* init succeeded: finish is owed */
  char err[PLUGIN_ERR_LEN];
} plugin_state;

/* The plugin's message, or a placeholder when it wrote none. */
static const char *plugin_message(plugin_state *ps) {
  ps->err[PLUGIN_ERR_LEN - 1] = '\0';
  return ps->err[0] ? ps->err : "(the plugin gave no message)";
}

static void plugin_close(ng_evaluator *ev) {
  plugin_state *ps = ev->impl;
  if (!ps) return;
  if (ps->initialized && ps->api->finish) ps->api->finish(ps->ctx);
  if (ps->handle) dlclose(ps->handle);
  free(ps);
  ev->impl = NULL;
}

static int plugin_open(ng_evaluator *ev) {
  plugin_state *ps = calloc(1, sizeof *ps);
  if (!ps) return ng_error(NG_ENOMEM, "out of memory");
  ev->impl = ps;
  int st = NG_OK;
  const char *file = ev->words[0];
  char *local = NULL;
  /* dlopen looks a bare name up in the library path, never in the current directory; a user who names a
   * file there means that file */
  if (!strchr(file, '/') && access(file, F_OK) == 0) {
    size_t len = strlen(file) + 3;
    local = malloc(len);
    if (!local) {
      st = ng_error(NG_ENOMEM, "out of memory");
      goto fail;
    }
    snprintf(local, len, "./%s", file);
  }
  dlerror();
  ps->handle = dlopen(local ? local : file, RTLD_NOW | RTLD_LOCAL);
  free(local);
  if (!ps->handle) {
    const char *why = dlerror();
    st = ng_error(NG_ENOTFOUND, "%s: cannot load '%s': %s", ev->spec, file, why ? why : "unknown reason");
    goto fail;
  }
  void *sym = dlsym(ps->handle, NG_PLUGIN_ENTRY_V1);
  if (!sym) {
    char other[32] = "";
    for (int v = 2; v <= 9 && !other[0]; v++) {
      char name[32];
      snprintf(name, sizeof name, "nograd_plugin_v%d", v);
      if (dlsym(ps->handle, name)) snprintf(other, sizeof other, "%s", name);
    }
    if (other[0])
      st = ng_error(NG_EMISMATCH,
                    "%s: '%s' exports %s, a newer plugin ABI than this nograd speaks (%s, version %u)",
                    ev->spec, file, other, NG_PLUGIN_ENTRY_V1, NG_PLUGIN_ABI_VERSION);
    else
      st = ng_error(NG_ENOTFOUND,
                    "%s: '%s' has no function %s: not a nograd plugin (see nograd/plugin.h; C++ needs "
                    "extern \"C\")",
                    ev->spec, file, NG_PLUGIN_ENTRY_V1);
    goto fail;
  }
  ng_plugin_entry_v1 entry;
  memcpy(&entry, &sym, sizeof entry); /* POSIX's way from dlsym to a function pointer */
  ps->api = entry();
  if (!ps->api) {
    st = ng_error(NG_EINVAL, "%s: %s() of '%s' returned NULL", ev->spec, NG_PLUGIN_ENTRY_V1, file);
    goto fail;
  }
  if (ps->api->abi_version != NG_PLUGIN_ABI_VERSION) {
    st = ng_error(NG_EMISMATCH,
                  "%s: '%s' was built for plugin ABI version %u, but this nograd speaks version %u", ev->spec,
                  file, ps->api->abi_version, NG_PLUGIN_ABI_VERSION);
    goto fail;
  }
  if (ps->api->struct_size < sizeof(ng_plugin_v1)) {
    st = ng_error(NG_EMISMATCH, "%s: '%s' has a function table of %u bytes, %zu expected for ABI version %u",
                  ev->spec, file, ps->api->struct_size, sizeof(ng_plugin_v1), NG_PLUGIN_ABI_VERSION);
    goto fail;
  }
  if (!ps->api->init || !ps->api->evaluate) {
    st = ng_error(NG_EINVAL, "%s: '%s' has no %s function", ev->spec, file,
                  ps->api->init ? "evaluate" : "init");
    goto fail;
  }
  ng_plugin_init_args args = {.n = (uint32_t)ev->cfg.n,
                              .nchunks = (uint32_t)ev->cfg.nchunks,
                              .rank = ev->cfg.rank,
                              .nranks = ev->cfg.nranks,
                              .model_path = ev->cfg.model_path,
                              .argc = (int)(ev->nwords - 1),
                              .argv = (const char *const *)(ev->words + 1)};
  if (ps->api->init(&ps->ctx, &args, ps->err, sizeof ps->err) != 0) {
    st = ng_error(NG_EIO, "%s: the plugin's init failed: %s", ev->spec, plugin_message(ps));
    goto fail;
  }
  ps->initialized = true;
  return NG_OK;
fail:
  plugin_close(ev);
  return st;
}

static int plugin_eval(ng_evaluator *ev, const double *x, size_t m, uint64_t generation, size_t chunk,
                       size_t first, double *losses, double *counts) {
  plugin_state *ps = ev->impl;
  for (size_t k = 0; k < m; k++) {
    losses[k] = NAN;
    counts[k] = 1;
  }
  ng_plugin_batch b = {.generation = generation,
                       .chunk = (uint32_t)chunk,
                       .first = (uint32_t)first,
                       .m = (uint32_t)m,
                       .n = (uint32_t)ev->cfg.n,
                       .x = x};
  ps->err[0] = '\0';
  if (ps->api->evaluate(ps->ctx, &b, losses, counts, ps->err, sizeof ps->err) != 0) {
    for (size_t k = 0; k < m; k++)
      losses[k] = NAN;
    return ng_error(NG_EIO, "%s: the plugin failed on generation %llu, chunk %zu (%zu candidates): %s",
                    ev->spec, (unsigned long long)generation, chunk, m, plugin_message(ps));
  }
  for (size_t k = 0; k < m; k++)
    if (!(counts[k] >= 0) || isinf(counts[k]))
      return ng_error(
          NG_EIO,
          "%s: the plugin gave candidate %zu of generation %llu, chunk %zu a count of %g (a count "
          "must be finite and >= 0)",
          ev->spec, first + k, (unsigned long long)generation, chunk, counts[k]);
  return NG_OK;
}

static long plugin_pid(const ng_evaluator *ev) {
  return -1;
}

const ng_evaluator_ops ng_evaluator_plugin_ops = {"plugin:", plugin_open, plugin_eval, plugin_close,
                                                  plugin_pid};
