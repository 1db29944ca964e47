/* Private: the table of functions an algorithm provides, and the generic optimizer object.
 *
 * Adding an optimizer is one new file that defines a `const ng_opt_type` and one line in the list in
 * opt.c. The generic layer (opt.c) owns what all algorithms share: configuration, the ask/tell order, the
 * evaluation count, the best point, ftarget and the evaluation budget, non-finite losses, and restarts
 * (restart.c). An algorithm owns its distribution and its own stopping rules. */
#ifndef NOGRAD_OPT_IMPL_H
#define NOGRAD_OPT_IMPL_H

#include <stdbool.h>

#include "nograd/error.h"
#include "nograd/opt.h"
#include "nograd/rng.h"

/* One named numeric parameter set by the user; `used` is set when the algorithm reads it, so that setup can
 * reject names nobody knows. */
typedef struct {
  char name[48];
  double value;
  bool used;
} ng_opt_param_entry;

#define NG_OPT_MAX_PARAMS 64

typedef struct ng_opt_type {
  const char *name;    /* what users type, and what checkpoints record */
  const char *summary; /* one line for help texts */
  /* Allocates and initialises opt->impl for a (re)start: mean opt->run_x0, step opt->run_sigma0,
   * population opt->run_popsize (0: choose the default and store it there). Reads its parameters with
   * ng_opt_param. Called again at each restart, after destroy. */
  int (*setup)(ng_opt *opt);
  /* Fills opt->lambda x n candidates of generation opt->generation into x. */
  int (*ask)(ng_opt *opt, double *x);
  /* Takes the losses of the candidates asked (non-finite values already replaced by +inf) and the number of
   * finite ones; sets opt->algo_stop when one of its own stopping rules fires. */
  int (*tell)(ng_opt *opt, const double *f, size_t nfinite);
  /* Saves and loads the algorithm's state under the prefix "algo/". */
  int (*save)(const ng_opt *opt, ng_state *st);
  int (*load)(ng_opt *opt, const ng_state *st);
  /* Frees opt->impl (may be NULL) and sets it to NULL. */
  void (*destroy)(ng_opt *opt);
  /* Fills the algorithm's part of info (sigma, axis ratio, eigen time). */
  void (*info)(const ng_opt *opt, ng_opt_info *info);
  /* Row k of the candidates of the last ask, as the caller received it. */
  const double *(*candidate)(const ng_opt *opt, size_t k);
  /* Describes the pending generation for the seeded broadcast (NULL: explicit only). */
  void (*sampler)(const ng_opt *opt, ng_sampler *s);
  /* The point an anytime user would take (mean or iterate). */
  const double *(*mean)(const ng_opt *opt);
  /* The distributed tell (tell_dist.h; NULL where the algorithm is told whole): ask_lazy readies the
   * distribution without sampling; tell_plan ranks the losses (non-finite ones already +inf) and fills the
   * plan; tell_finish completes the update from the tree's sum V of the blocks' shares and the rows of block
   * 0. */
  int (*ask_lazy)(ng_opt *opt);
  int (*tell_plan)(ng_opt *opt, const double *f, double *plan);
  int (*tell_finish)(ng_opt *opt, const double *V, const double *Z0, const double *Y0, size_t nfinite);
  /* Whether the algorithm supports restarts (CMA-ES does, SPSA does not). */
  bool restartable;
  /* Whether it sees the losses only through their ranking within a generation (CMA-ES; not SPSA, which steps
   * along loss differences): what retrofit's overfitting bound needs. */
  bool rank_based;
} ng_opt_type;

struct ng_opt {
  const ng_opt_type *type;
  void *impl;
  size_t n;

  /* configuration (fixed by setup) */
  double *x0, sigma0;
  uint64_t seed;
  size_t popsize_req;
  double *lo, *hi; /* NULL when unbounded */
  double ftarget;
  int64_t max_evals;
  ng_restart restart_policy;
  int max_restarts;
  ng_opt_param_entry params[NG_OPT_MAX_PARAMS];
  size_t nparams;
  bool is_setup;

  /* the current (re)start, as the restart schedule chose it */
  double run_sigma0;
  size_t run_popsize;
  size_t default_popsize; /* the algorithm's default lambda, learnt at the first setup */
  bool run_large;         /* BIPOP: this run belongs to the large-population regime */
  int64_t run_maxiter;    /* BIPOP small runs: iteration cap of this run; 0 for the algorithm's default */

  /* run */
  size_t lambda; /* candidates of the pending or next ask */
  bool asked;
  bool lazy;           /* the pending generation was asked without its candidates (ng__opt_ask_lazy) */
  bool telling;        /* between ng__opt_tell_begin and ng__opt_tell_end */
  size_t tell_nfinite; /* begin's count of finite losses, for end */
  size_t tell_best;    /* begin's candidate that becomes the best point, or lambda */
  int64_t generation;  /* over all restarts; keys the sampling streams */
  int64_t run_generation;
  int64_t evaluations;
  int64_t run_evaluations;
  int64_t restarts;
  int64_t large_restarts;           /* BIPOP: restarts in the large regime so far (IPOP: all of them) */
  int64_t evals_large, evals_small; /* BIPOP budgets used by each regime */
  int64_t nonfinite, nonfinite_streak;
  double *best_x, best_f;
  double gen_best_f, gen_median_f;
  ng_stop algo_stop; /* set by the algorithm's tell */
  ng_stop stop;      /* final */
  double *fbuf;      /* lambda losses with non-finite values replaced */
  size_t fbuf_len;
};

/* The value of parameter `name` if the user set it (and marks it used), else `fallback`. */
double ng_opt_param(ng_opt *opt, const char *name, double fallback);

/* Restart policy (restart.c): after a run of the algorithm stopped with `reason`, decides whether to start
 * another; if so sets opt->run_popsize and opt->run_sigma0 for it and returns true. */
bool ng_restart_next(ng_opt *opt, ng_stop reason);

/* CMA-ES's default population for dimension n, 4 + 3 ln n (pycma's; real-valued: a first run takes its floor,
 * IPOP and BIPOP double it, maxiter and tolstagnation read it). Shared by cmaes.c and restart.c. */
double ng__cmaes_popf(size_t n);

extern const ng_opt_type ng_opt_cmaes;
extern const ng_opt_type ng_opt_sepcmaes;
extern const ng_opt_type ng_opt_spsa;

#endif
