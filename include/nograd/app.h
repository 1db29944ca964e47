/* The commands as library functions: what `nograd minimize` (and later glue, retrofit, train, eval) does,
 * callable from C without the command line. */
#ifndef NOGRAD_APP_H
#define NOGRAD_APP_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/opt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_MAX_PARAMS 32

typedef struct {
  const char *function;  /* benchmark function name */
  size_t dim;
  const char *optimizer; /* "cmaes", "sepcmaes", "spsa" */
  size_t popsize;        /* 0: default */
  ng_restart restarts;
  int max_restarts;
  const double *x0;      /* dim values */
  double sigma0;
  uint64_t seed;
  double ftarget;        /* -inf: none */
  int64_t max_evals;     /* 0: unlimited */
  double lower, upper;   /* box bounds applied to every coordinate; -inf/+inf: none */
  const char *param_names[NG_MAX_PARAMS]; /* optimizer parameters (ng_opt_set_param) */
  double param_values[NG_MAX_PARAMS];
  size_t nparams;
  FILE *progress;        /* rank 0 prints one line per generation here when not NULL */
} ng_minimize_config;

typedef struct {
  int64_t evaluations, generations, restarts, nonfinite;
  double f_best;
  ng_stop stop;
  double seconds;
  double *x_best; /* dim values, owned by the caller (may be NULL) */
} ng_minimize_result;

/* Minimizes a benchmark function. Collective over comm; the result is filled on rank 0. Every rank returns
 * the same status; a configuration error is found by every rank alike (so nothing hangs) and its message is
 * set on every rank. */
int ng_app_minimize(MPI_Comm comm, const ng_minimize_config *cfg, ng_minimize_result *res);

/* Creates and sets up an optimizer from the configuration (shared by the commands). Not collective. */
int ng_app_make_optimizer(const ng_minimize_config *cfg, ng_opt **out);

#ifdef __cplusplus
}
#endif
#endif
