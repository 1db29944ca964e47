/* `nograd retrofit`: evolutionary retrofitting (AfterLearnER): a few chosen parameters of a trained model
 * tuned by a comparison-based optimizer against an exact metric on a validation set, within a budget of
 * evaluations, anytime, with a bound on how far the returned model's validation metric can be from its
 * true one.
 *
 * What is tuned is a knob spec (nograd/knobs.h) over the model; the metric is a loss of the nn objective
 * (nograd/nn_objective.h: error, balanced_error, macro_f1 (as 1 - macro-F1), threshold_error, or
 * cross_entropy), or the score of an external evaluator (nograd/evaluator.h), which may also run without a
 * model over a plain search vector. With a model and an evaluator, the evaluator scores the knob vector and
 * is told the model's path (nograd/plugin.h); nograd measures nothing itself. The start is scored too (the
 * metric on the validation rows, or the evaluator's score), outside the budget, and returned unchanged when
 * no candidate beats it. The search runs through the engine (nograd/engine.h), so the retrofitted model is
 * the same bits for any number of ranks.
 *
 * The bound (README.md, "The overfitting bound"): with its seed fixed, CMA-ES sees the losses only through
 * the order of each generation's candidates (ties broken by index) once the value-based stopping rules are
 * off (tolfun, tolfunhist, stagnation and flatfitness are disabled here, ftarget is -inf), so after G
 * generations of lambda candidates the evaluated candidates are one of at most (lambda!)^(G-1) sets, and the
 * returned best is one of their G*lambda members, or the start when none beats it (the start's validation
 * metric is measured, and the model at --out is only ever replaced by a better one):
 * N <= (lambda!)^(G-1) G lambda + 1. For a metric
 * that is a mean over T validation examples with values in [0, 1], Hoeffding and a union bound over the N
 * possible outputs give, with probability >= 1 - delta,
 *   |validation - true| <= sqrt((ln N + ln(2 / delta)) / (2 T)).
 * balanced_error is a mean of C per-class error rates: the bound is the largest of the per-class bounds with
 * T_c rows of class c and delta / C each. SPSA (which steps along loss differences), macro-F1 (not a mean
 * over examples) and external evaluators (whose scores nograd cannot vouch for) give no bound, with the
 * reason. */
#ifndef NOGRAD_RETROFIT_H
#define NOGRAD_RETROFIT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/export.h"
#include "nograd/run.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  const char *model;  /* model file, or NULL with an evaluator (then dim, x0, sigma0 describe the search) */
  const char *params; /* knob spec (with a model; NG_EINVAL without) */
  /* nograd's own metric: val is required without an evaluator; with one, val, val_size, test and metric
   * must be 0/NULL (the evaluator replaces the metric: NG_EINVAL naming the option), and threshold is
   * ignored (`nograd retrofit` refuses --threshold with --evaluator) */
  const char *val;       /* validation dataset */
  size_t val_size;       /* 0: all of val; else a seeded, stratified subset of this many rows */
  const char *test;      /* held-out dataset for before/after, or NULL */
  const char *metric;    /* a metric of nograd/metrics.h that an objective minimizes */
  double threshold;      /* for the metrics that threshold a binary model when no threshold knob: NaN: the
                          * model's stored one, else 0.5 (argmax for error, balanced_error, macro_f1) */
  const char *optimizer; /* a name of ng_opt_names(); NULL: "cmaes" up to 100 dimensions, else "sepcmaes" */
  int64_t budget;        /* at most this many evaluations (whole generations: floor(budget / lambda)) */
  size_t popsize;        /* 0: the optimizer's default */
  double sigma0;         /* > 0 */
  uint64_t seed;         /* the search's streams and --val-size's draw */
  double delta;          /* the bound's confidence parameter, in (0, 1) */
  size_t chunk_rows;     /* rows per data chunk, >= 1 */
  const char *out;       /* the retrofitted model (rewritten after every generation that improves the best);
                          * with a model only (NG_EINVAL without) */
  ng_run_policy run;     /* checkpoints, resume, signals, progress (nograd/run.h) */
  /* an external evaluator */
  const char *evaluator;     /* "exec:PROGRAM ARGS" or "plugin:LIB.so", or NULL */
  double eval_timeout;       /* seconds per request (0: the evaluator's default) */
  double eval_start_timeout; /* seconds to start and answer HELLO (0: eval_timeout, or the default) */
  int max_restarts;          /* -1: the default */
  size_t nchunks;            /* chunks the evaluator is asked about, >= 1 */
  size_t dim;                /* without a model: the dimension (with one: must be 0) */
  const double *x0;          /* without a model: the start (dim values), or NULL for zeros (with one: NULL) */
} ng_retrofit_config;

/* The library's defaults, the one place they are written: metric "error", threshold NaN (the model's), the
 * optimizer by dimension, a budget of 200 evaluations, sigma0 0.3 (about a quarter of the useful range of a
 * scale, an offset in logits, a threshold), seed 1, delta 0.05, chunks of 256 rows, 1 evaluator chunk, the
 * evaluator's own timeout and restarts, a zero run policy. Not collective. */
NG_EXPORT void ng_retrofit_config_init(ng_retrofit_config *cfg);

typedef struct {
  size_t n;           /* dimension of the search */
  double val_before;  /* the metric on the validation rows at the start (the evaluator's score of x0) */
  double val_after;   /* ... of the returned model (the evaluator's best score) */
  double test_before; /* on --test (NaN without) */
  double test_after;
  int64_t evaluations, generations;
  size_t lambda;
  size_t val_rows;    /* T */
  double log_outputs; /* ln N (NaN when there is no bound) */
  double bound;       /* the bound's epsilon, NaN when none */
  char no_bound[256]; /* why there is no bound ("" when there is one) */
  const char *stop;   /* why the optimizer stopped */
  int signalled;      /* stopped by a signal: with a checkpoint, only x_best, evaluations and generations are
                       * set (resume the run); without one, the run ended there and everything is set */
  int kept_start;     /* no candidate beat the start: the model (or x0) is returned unchanged */
  double *x_best;     /* n values, malloc'd on rank 0 (the caller frees) */
  double seconds;
} ng_retrofit_result;

/* Runs a retrofit. Collective over comm; every rank returns the same status, rank 0 holds the message and
 * the result. NG_EINVAL: a bad configuration (a budget smaller than one generation: says both numbers);
 * the statuses of ng_knobs_parse, ng_model_read, the dataset and nn objective functions (features that do
 * not fit the model: NG_EMISMATCH naming the file), the evaluator and the engine. Nothing is written on an
 * error found before the first generation. */
NG_EXPORT int ng_app_retrofit(MPI_Comm comm, const ng_retrofit_config *cfg, ng_retrofit_result *res);

/* ln N and the bound of the header's comment, for lambda candidates over G generations, T examples and
 * delta; the per-class form when class_rows is not NULL (C counts). Exposed for the tests. */
NG_EXPORT double ng_retrofit_log_outputs(size_t lambda, int64_t generations);
NG_EXPORT double ng_retrofit_bound(double log_outputs, double delta, size_t T, const size_t *class_rows,
                                   size_t C);

#ifdef __cplusplus
}
#endif
#endif
