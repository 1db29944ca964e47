/* The private side of nograd/evaluator.h: the object every kind of evaluator shares, and the table of
 * functions by which a kind (exec, plugin) plugs in. The generic layer (evaluator.c) parses the spec, checks
 * the configuration and the arguments of each call, and keeps the counters; a kind only talks to its
 * program or library. */
#ifndef NOGRAD_EVALUATOR_IMPL_H
#define NOGRAD_EVALUATOR_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/evaluator.h"

typedef struct ng_evaluator_ops {
  const char *prefix; /* "exec:", "plugin:" */
  /* Starts the evaluator from ev->words (ev->nwords >= 1) and ev->cfg; sets ev->impl. On failure releases
   * what it made, leaves ev->impl NULL and returns a status with ng_error's message. */
  int (*open)(ng_evaluator *ev);
  /* Fills losses[0..m) and counts[0..m) (both given, m >= 1, chunk checked); failures as in evaluator.h. */
  int (*eval)(ng_evaluator *ev, const double *x, size_t m, uint64_t generation, size_t chunk, size_t first,
              double *losses, double *counts);
  void (*close)(ng_evaluator *ev); /* releases ev->impl (may be NULL) */
  long (*pid)(const ng_evaluator *ev);
} ng_evaluator_ops;

struct ng_evaluator {
  const ng_evaluator_ops *ops;
  char *spec;              /* as given, for messages */
  ng_evaluator_config cfg; /* a copy; its model_path and argv point into this object */
  char *model_path;        /* owned copy, or NULL */
  char **words;            /* program (or library) and its arguments, NULL-terminated, owned */
  size_t nwords;
  ng_evaluator_stats stats; /* failures and restarts are kept by the kind */
  double *counts_scratch;   /* counts when the caller passes none */
  size_t counts_cap;
  void *impl;
};

extern const ng_evaluator_ops ng_evaluator_exec_ops;
extern const ng_evaluator_ops ng_evaluator_plugin_ops;

#endif
