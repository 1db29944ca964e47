/* `nograd minimize` as a library function: a benchmark function or the generated data objective, minimized
 * through the engine under the shared run policy (nograd/run.h), callable from C without the command line. */
#ifndef NOGRAD_APP_H
#define NOGRAD_APP_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/export.h"
#include "nograd/opt.h"
#include "nograd/run.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_MAX_PARAMS 32


typedef struct {
  const char *function; /* benchmark function name, or "logistic" / "lsq" for the data objective */
  size_t dim;
  const char *optimizer; /* a name of ng_opt_names() */
  size_t popsize;        /* 0: default */
  ng_restart restarts;
  int max_restarts;
  const double *x0; /* dim values */
  double sigma0;
  uint64_t seed;
  double ftarget;                         /* -inf: none */
  int64_t max_evals;                      /* 0: unlimited */
  double lower, upper;                    /* box bounds applied to every coordinate; -inf/+inf: none */
  const char *param_names[NG_MAX_PARAMS]; /* optimizer parameters (ng_opt_set_param) */
  double param_values[NG_MAX_PARAMS];
  size_t nparams;
  /* the data objective ("logistic", "lsq"): rows, rows per chunk, and the seed of the data */
  size_t rows, chunk_rows;
  uint64_t data_seed;
  ng_run_policy run; /* the grid, checkpoints, resume, signals, progress and log (nograd/run.h) */
} ng_minimize_config;

/* The library's defaults, the one place they are written: optimizer "cmaes", no function, popsize 0 (the
 * algorithm's), no restarts (at most 9 when asked for), x0 NULL (zeros), sigma0 1, seed 1, no ftarget (-inf),
 * no budget, no bounds, no parameters, 10000 rows in chunks of 1000 with data seed 1, and the run policy's
 * defaults (a zero ng_run_policy: the default grid, auto broadcast, no checkpoint, no signal handling). The
 * command line starts from these and its --help prints them. Not collective. */
NG_EXPORT void ng_minimize_config_init(ng_minimize_config *cfg);

typedef struct {
  int64_t evaluations, generations, restarts, nonfinite;
  double f_best;
  ng_stop stop;
  double seconds;
  double *x_best; /* dim values, owned by the caller (may be NULL) */
  int signalled;  /* stopped by a signal after its checkpoint: resumable */
  int64_t bytes;  /* broadcast by rank 0 */
  int64_t checkpoints;
} ng_minimize_result;

/* The configuration that shapes a run's trajectory, as "key=value" lines (what a resume must match), and
 * its budget lines. The caller frees both. NG_ENOMEM. Not collective. */
NG_EXPORT int ng_minimize_config_text(const ng_minimize_config *cfg, char **config, char **budget);

/* Minimizes a benchmark function or the data objective with the engine (checkpoints, resume, signals).
 * Collective over comm; the result is filled on rank 0. Every rank returns the same status; rank 0 holds the
 * message of the failure, whichever rank it happened on. */
NG_EXPORT int ng_app_minimize(MPI_Comm comm, const ng_minimize_config *cfg, ng_minimize_result *res);

/* Creates and sets up an optimizer from the configuration (shared by the commands). Not collective. */
NG_EXPORT int ng_app_make_optimizer(const ng_minimize_config *cfg, ng_opt **out);

#ifdef __cplusplus
}
#endif
#endif
