/* Restart schedules: IPOP (Auger and Hansen 2005) and BIPOP (Hansen 2009), with pycma's fmin rules.
 *
 * IPOP restarts from x0 with the population doubled each time. BIPOP interleaves two regimes: large runs,
 * whose population doubles as in IPOP, and small runs, whose population lambda_def * (lambda_large /
 * lambda_def)^(U^2) and step size sigma0 * 0.01^U are drawn anew (U uniform in (0,1)); the next run is small
 * while the evaluations spent in small runs are below those spent in large ones. The first run counts as
 * small, and only large runs count against max_restarts (pycma's fmin). The draws come from the stream (seed,
 * NG_RNG_RESTART, restart number), so a resumed run draws the same; the two budgets are part of the saved
 * state. */
#include <math.h>

#include "opt/opt_impl.h"

static bool restartable_reason(ng_stop reason) {
  switch (reason) {
    case NG_STOP_NONE:
    case NG_STOP_FTARGET:
    case NG_STOP_MAXFEVALS:
    case NG_STOP_NONFINITE:
    case NG_STOP_SIGNAL:
    case NG_STOP_CALLBACK:
      return false;
    default:
      return true;
  }
}

bool ng_restart_next(ng_opt *opt, ng_stop reason) {
  if (opt->run_large)
    opt->evals_large += opt->run_evaluations;
  else
    opt->evals_small += opt->run_evaluations;
  if (opt->restart_policy == NG_RESTART_NONE || !restartable_reason(reason)) return false;
  /* pycma's fmin: after each run, stop when the runs that were not small restarts (the first run and the
   * large ones) exceed max_restarts; so the loop ends right after the last allowed large run */
  bool finished_small = opt->restart_policy == NG_RESTART_BIPOP && !opt->run_large && opt->restarts > 0;
  if (!finished_small && opt->large_restarts >= opt->max_restarts) return false;

  double lambda0 = opt->popsize_req ? (double)opt->popsize_req : ng__cmaes_popf(opt->n);
  opt->run_maxiter = 0;
  opt->run_sigma0 = opt->sigma0;
  bool small = opt->restart_policy == NG_RESTART_BIPOP &&
               (double)opt->evals_small < fmax(1.0, (double)opt->evals_large);
  if (!small) {
    if (opt->large_restarts >= opt->max_restarts) return false; /* only after a small run; see above */
    opt->large_restarts++;
    opt->run_large = true;
    double pop = lambda0 * pow(2.0, (double)opt->large_restarts);
    if (!(pop <= NG_OPT_DIM_MAX)) return false; /* no population that large can be sampled: the runs end */
    opt->run_popsize = (size_t)pop;
    return true;
  }
  ng_rng r;
  ng_rng_init(&r, opt->seed, NG_RNG_RESTART, (uint32_t)(opt->restarts + 1), 0);
  double u_sigma = ng_rng_uniform(&r), u_pop = ng_rng_uniform(&r);
  double multiplier = pow(2.0, (double)opt->large_restarts);
  opt->run_large = false;
  opt->run_sigma0 = opt->sigma0 * pow(0.01, u_sigma);
  opt->run_popsize = (size_t)floor(lambda0 * pow(multiplier, u_pop * u_pop));
  if (opt->run_popsize < 2) opt->run_popsize = 2;
  /* a small run may not spend more than half of what the large runs spent */
  opt->run_maxiter = (int64_t)fmax(1.0, floor(0.5 * (double)opt->evals_large / (double)opt->run_popsize));
  return true;
}
