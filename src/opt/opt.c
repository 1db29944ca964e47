/* The generic optimizer layer: what every ask/tell algorithm shares.
 *
 * It checks the call order, counts evaluations, keeps the best point, turns non-finite losses into "worst"
 * (counting them), applies ftarget and the evaluation budget, and runs the restart schedule (restart.c)
 * when the algorithm's own stopping rules end a run. Algorithms see only a clean, ranked problem. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linalg/linalg.h"
#include "opt/opt_impl.h"
#include "opt/tell_dist.h"

/* The optimizers, by name: adding one is one file that defines its ng_opt_type and one row here. Checkpoints
 * save the name (cfg/optimizer), so the order of this table is free. */
static const ng_opt_type *const algorithms[] = {&ng_opt_cmaes, &ng_opt_sepcmaes, &ng_opt_spsa};
#define N_ALGORITHMS (sizeof algorithms / sizeof algorithms[0])

/* Checkpoints of nograd 0.1 saved the optimizer as its index in that version's table (cfg/algorithm). This
 * list is frozen, whatever the table above becomes, so that those checkpoints still load as what they are. */
static const char *const legacy_index_names[] = {"cmaes", "sepcmaes", "spsa"};
#define N_LEGACY (sizeof legacy_index_names / sizeof legacy_index_names[0])

#define NONFINITE_STREAK_LIMIT 10 /* generations without one finite loss before the run gives up */

const char *const *ng_opt_names(void) {
  static const char *names[N_ALGORITHMS + 1]; /* derived from the table once; the same on every call */
  for (size_t i = 0; i < N_ALGORITHMS; i++)
    names[i] = algorithms[i]->name;
  names[N_ALGORITHMS] = NULL;
  return names;
}

const char *ng_opt_summary(const char *name) {
  for (size_t i = 0; name && i < N_ALGORITHMS; i++)
    if (strcmp(algorithms[i]->name, name) == 0) return algorithms[i]->summary;
  return NULL;
}

const char *ng_opt_name(const ng_opt *opt) {
  return opt->type->name;
}

bool ng_opt_rank_based(const ng_opt *opt) {
  return opt->type->rank_based;
}

/* "a, b, c" of the optimizers' names, for messages. */
static void known_names(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < N_ALGORITHMS && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", algorithms[i]->name);
}

const char *ng_stop_name(ng_stop reason) {
  static const char *const names[] = {
#define NG_STOP_NAME(e, s) s,
      NG_STOP_TABLE(NG_STOP_NAME)
#undef NG_STOP_NAME
  };
  if ((int)reason < 0 || reason >= NG_STOP_COUNT_) return "unknown";
  return names[reason];
}

int ng_stop_from_name(const char *name) {
  for (int r = 0; r < NG_STOP_COUNT_; r++)
    if (strcmp(ng_stop_name((ng_stop)r), name) == 0) return r;
  return -1;
}

int ng_opt_create(const char *name, size_t n, ng_opt **out) {
  *out = NULL;
  const ng_opt_type *type = NULL;
  for (size_t i = 0; i < N_ALGORITHMS; i++)
    if (strcmp(algorithms[i]->name, name) == 0) type = algorithms[i];
  if (!type) {
    char known[256];
    known_names(known, sizeof known);
    return ng_error(NG_EINVAL, "unknown optimizer '%s' (known: %s)", name, known);
  }
  if (n == 0 || n > NG_OPT_DIM_MAX)
    return ng_error(NG_EINVAL, "optimizer '%s': the dimension must be in [1, %d], got %zu", name,
                    NG_OPT_DIM_MAX, n);
  ng_linalg_single_thread();
  ng_opt *opt = calloc(1, sizeof *opt);
  if (!opt) return ng_error(NG_ENOMEM, "optimizer: out of memory");
  opt->type = type;
  opt->n = n;
  opt->x0 = calloc(n, sizeof *opt->x0);
  opt->best_x = calloc(n, sizeof *opt->best_x);
  if (!opt->x0 || !opt->best_x) {
    ng_opt_destroy(&opt);
    return ng_error(NG_ENOMEM, "optimizer: out of memory for dimension %zu", n);
  }
  opt->sigma0 = 1.0;
  opt->seed = 1;
  opt->ftarget = -INFINITY;
  opt->best_f = INFINITY;
  opt->gen_best_f = opt->gen_median_f = NAN;
  *out = opt;
  return NG_OK;
}

void ng_opt_destroy(ng_opt **opt) {
  if (!opt || !*opt) return;
  ng_opt *o = *opt;
  if (o->type && o->impl) o->type->destroy(o);
  free(o->x0);
  free(o->lo);
  free(o->hi);
  free(o->best_x);
  free(o->fbuf);
  free(o);
  *opt = NULL;
}

#define BEFORE_SETUP(opt, what)                                                                      \
  do {                                                                                               \
    if ((opt)->is_setup) return ng_error(NG_EORDER, "optimizer: %s must be set before setup", what); \
  } while (0)

int ng_opt_set_x0(ng_opt *opt, const double *x0) {
  BEFORE_SETUP(opt, "x0");
  for (size_t i = 0; i < opt->n; i++)
    if (!isfinite(x0[i])) return ng_error(NG_EINVAL, "x0[%zu] is not finite", i);
  memcpy(opt->x0, x0, opt->n * sizeof *x0);
  return NG_OK;
}

int ng_opt_set_sigma0(ng_opt *opt, double sigma0) {
  BEFORE_SETUP(opt, "sigma0");
  if (!(sigma0 > 0) || !isfinite(sigma0))
    return ng_error(NG_EINVAL, "sigma0 must be positive, got %g", sigma0);
  opt->sigma0 = sigma0;
  return NG_OK;
}

int ng_opt_set_seed(ng_opt *opt, uint64_t seed) {
  BEFORE_SETUP(opt, "the seed");
  opt->seed = seed;
  return NG_OK;
}

int ng_opt_set_popsize(ng_opt *opt, size_t lambda) {
  BEFORE_SETUP(opt, "popsize");
  if (lambda > NG_OPT_DIM_MAX)
    return ng_error(NG_EINVAL, "popsize must be at most %d, got %zu", NG_OPT_DIM_MAX, lambda);
  opt->popsize_req = lambda;
  return NG_OK;
}

int ng_opt_set_bounds(ng_opt *opt, const double *lo, const double *hi) {
  BEFORE_SETUP(opt, "bounds");
  double *l = NULL, *h = NULL;
  if (lo || hi) { /* check everything first: a rejected box leaves the previous one in place */
    l = malloc(opt->n * sizeof *l);
    h = malloc(opt->n * sizeof *h);
    if (!l || !h) {
      free(l);
      free(h);
      return ng_error(NG_ENOMEM, "optimizer: out of memory for bounds");
    }
    for (size_t i = 0; i < opt->n; i++) {
      l[i] = lo ? lo[i] : -INFINITY;
      h[i] = hi ? hi[i] : INFINITY;
      if (isnan(l[i]) || isnan(h[i]) || !(l[i] < h[i])) {
        int st =
            ng_error(NG_EINVAL, "bounds of coordinate %zu: need lower < upper, got [%g, %g]", i, l[i], h[i]);
        free(l);
        free(h);
        return st;
      }
    }
  }
  free(opt->lo);
  free(opt->hi);
  opt->lo = l;
  opt->hi = h;
  return NG_OK;
}

int ng_opt_set_ftarget(ng_opt *opt, double ftarget) {
  BEFORE_SETUP(opt, "ftarget");
  if (isnan(ftarget)) return ng_error(NG_EINVAL, "ftarget is NaN");
  opt->ftarget = ftarget;
  return NG_OK;
}

int ng_opt_set_max_evals(ng_opt *opt, int64_t max_evals) {
  BEFORE_SETUP(opt, "max_evals");
  opt->max_evals = max_evals > 0 ? max_evals : 0;
  return NG_OK;
}

int ng_opt_set_restarts(ng_opt *opt, ng_restart policy, int max_restarts) {
  BEFORE_SETUP(opt, "restarts");
  if (policy != NG_RESTART_NONE && !opt->type->restartable)
    return ng_error(NG_EINVAL, "optimizer '%s' does not restart; use --restarts none", opt->type->name);
  if (max_restarts < 0) return ng_error(NG_EINVAL, "max restarts must be >= 0, got %d", max_restarts);
  opt->restart_policy = policy;
  opt->max_restarts = max_restarts;
  return NG_OK;
}

int ng_opt_set_param(ng_opt *opt, const char *name, double value) {
  BEFORE_SETUP(opt, name);
  if (strlen(name) >= sizeof opt->params[0].name)
    return ng_error(NG_EINVAL, "parameter name '%s' too long", name);
  for (size_t i = 0; i < opt->nparams; i++)
    if (strcmp(opt->params[i].name, name) == 0) {
      opt->params[i].value = value;
      return NG_OK;
    }
  if (opt->nparams == NG_OPT_MAX_PARAMS) return ng_error(NG_EINVAL, "too many optimizer parameters");
  ng_opt_param_entry *p = &opt->params[opt->nparams++];
  strcpy(p->name, name);
  p->value = value;
  p->used = false;
  return NG_OK;
}

double ng_opt_param(ng_opt *opt, const char *name, double fallback) {
  for (size_t i = 0; i < opt->nparams; i++)
    if (strcmp(opt->params[i].name, name) == 0) {
      opt->params[i].used = true;
      return opt->params[i].value;
    }
  return fallback;
}

/* Starts a (re)start of the algorithm with opt->run_popsize and opt->run_sigma0. */
static int start_run(ng_opt *opt) {
  if (opt->impl) opt->type->destroy(opt);
  opt->run_generation = 0;
  opt->run_evaluations = 0;
  opt->algo_stop = NG_STOP_NONE;
  NG_CALL(opt->type->setup(opt));
  opt->lambda = opt->run_popsize;
  if (opt->fbuf_len < opt->lambda) {
    double *grown = realloc(opt->fbuf, opt->lambda * sizeof *grown);
    if (!grown) return ng_error(NG_ENOMEM, "optimizer: out of memory for %zu losses", opt->lambda);
    opt->fbuf = grown;
    opt->fbuf_len = opt->lambda;
  }
  return NG_OK;
}

int ng_opt_setup(ng_opt *opt) {
  if (opt->is_setup) return ng_error(NG_EORDER, "optimizer: setup called twice");
  if (opt->lo)
    for (size_t i = 0; i < opt->n; i++)
      if (opt->x0[i] < opt->lo[i] || opt->x0[i] > opt->hi[i])
        return ng_error(NG_EINVAL, "x0[%zu] = %g lies outside its bounds [%g, %g]", i, opt->x0[i], opt->lo[i],
                        opt->hi[i]);
  opt->run_sigma0 = opt->sigma0;
  opt->run_popsize = opt->popsize_req;
  opt->run_large = opt->restart_policy != NG_RESTART_BIPOP; /* BIPOP's first run counts as small */
  memcpy(opt->best_x, opt->x0, opt->n * sizeof *opt->x0);
  NG_CALL(start_run(opt));
  opt->default_popsize = opt->popsize_req ? opt->popsize_req : opt->run_popsize;
  for (size_t i = 0; i < opt->nparams; i++)
    if (!opt->params[i].used)
      return ng_error(NG_EINVAL, "optimizer '%s' has no parameter '%s'", opt->type->name,
                      opt->params[i].name);
  opt->is_setup = true;
  return NG_OK;
}

size_t ng_opt_popsize(const ng_opt *opt) {
  return opt->lambda;
}

size_t ng_opt_dim(const ng_opt *opt) {
  return opt->n;
}

int ng_opt_ask(ng_opt *opt, double *x) {
  if (!opt->is_setup) return ng_error(NG_EORDER, "ask before setup");
  if (opt->stop != NG_STOP_NONE)
    return ng_error(NG_EORDER, "ask after the run stopped (%s)", ng_stop_name(opt->stop));
  if (opt->asked || opt->telling) return ng_error(NG_EORDER, "ask called twice without tell");
  NG_CALL(opt->type->ask(opt, x));
  opt->asked = true;
  return NG_OK;
}

int ng_opt_withdraw(ng_opt *opt) {
  if (!opt->asked) return ng_error(NG_EORDER, "optimizer: no generation is pending to withdraw");
  opt->asked = false;
  return NG_OK;
}

/* Moves the k-th smallest of v[0..len) to v[k], the smaller ones before it and the others after (Hoare's
 * selection, expected O(len)). v holds no NaN. */
static void select_kth(double *v, size_t len, size_t k) {
  size_t lo = 0, hi = len - 1;
  while (lo < hi) {
    double pivot = v[lo + (hi - lo) / 2];
    size_t i = lo, j = hi;
    while (i <= j) {
      while (v[i] < pivot)
        i++;
      while (v[j] > pivot)
        j--;
      if (i <= j) {
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
        i++;
        if (j == 0) break;
        j--;
      }
    }
    if (k <= j)
      hi = j;
    else if (k >= i)
      lo = i;
    else
      return;
  }
}

/* The median of the told losses (non-finite ones already mapped to +inf): the value a sorted copy has in its
 * middle (the mean of the two middle ones for an even count), found by selection in O(lambda). */
static double median_of(const double *f, size_t lambda, double *scratch) {
  memcpy(scratch, f, lambda * sizeof *f);
  size_t mid = lambda / 2;
  select_kth(scratch, lambda, mid);
  if (lambda % 2) return scratch[mid];
  double below = scratch[0];
  for (size_t i = 1; i < mid; i++)
    if (scratch[i] > below) below = scratch[i];
  return 0.5 * (below + scratch[mid]);
}

/* After a tell (or a load): the stop rules of the whole run, then the algorithm's, which may start a restart.
 * The budgets come first; when one of them ends the run, algo_stop stays as it is, so that a run resumed with
 * a larger budget takes the restart decision the budget pre-empted, as the longer run would have. */
static int end_of_generation(ng_opt *opt) {
  opt->stop = NG_STOP_NONE;
  if (opt->best_f <= opt->ftarget)
    opt->stop = NG_STOP_FTARGET;
  else if (opt->max_evals && opt->evaluations >= opt->max_evals)
    opt->stop = NG_STOP_MAXFEVALS;
  else if (opt->nonfinite_streak >= NONFINITE_STREAK_LIMIT)
    opt->stop = NG_STOP_NONFINITE;
  else if (opt->algo_stop != NG_STOP_NONE) {
    if (ng_restart_next(opt, opt->algo_stop)) {
      opt->restarts++;
      NG_CALL(start_run(opt)); /* clears algo_stop */
    } else {
      opt->stop = opt->algo_stop;
    }
  }
  return NG_OK;
}

/* The generic half of a tell, before the algorithm's: non-finite losses become +inf (counted), the counters
 * advance, and the generation's best and median are kept. *ibest: the candidate that becomes the best point
 * of the run, or lambda. */
static int tell_generic(ng_opt *opt, const double *f, size_t *nfinite_out, size_t *ibest_out) {
  size_t lambda = opt->lambda, nfinite = 0, ibest = lambda;
  for (size_t k = 0; k < lambda; k++) {
    double v = f[k];
    if (isfinite(v)) {
      nfinite++;
      if (ibest == lambda || v < opt->fbuf[ibest]) ibest = k;
    } else {
      v = INFINITY;
      opt->nonfinite++;
    }
    opt->fbuf[k] = v;
  }
  opt->asked = false;
  opt->generation++;
  opt->run_generation++;
  opt->evaluations += (int64_t)lambda;
  opt->run_evaluations += (int64_t)lambda;
  opt->nonfinite_streak = nfinite ? 0 : opt->nonfinite_streak + 1;
  opt->gen_best_f = ibest < lambda ? opt->fbuf[ibest] : INFINITY;
  /* The algorithm's tell may reorder nothing; the median needs a sorted copy, taken before it runs. */
  double *scratch = malloc(lambda * sizeof *scratch);
  if (!scratch) return ng_error(NG_ENOMEM, "optimizer: out of memory");
  opt->gen_median_f = median_of(opt->fbuf, lambda, scratch);
  free(scratch);
  *nfinite_out = nfinite;
  *ibest_out = ibest < lambda && opt->fbuf[ibest] < opt->best_f ? ibest : lambda;
  return NG_OK;
}

int ng_opt_tell(ng_opt *opt, const double *f) {
  if (!opt->asked) return ng_error(NG_EORDER, "tell without a preceding ask");
  if (opt->lazy) return ng_error(NG_EORDER, "tell after an ask without candidates (use ng__opt_tell_begin)");
  size_t nfinite, ibest;
  NG_CALL(tell_generic(opt, f, &nfinite, &ibest));
  /* The best point is a candidate of this generation: the algorithm keeps the rows of its last ask. */
  if (ibest < opt->lambda) {
    memcpy(opt->best_x, opt->type->candidate(opt, ibest), opt->n * sizeof *opt->best_x);
    opt->best_f = opt->fbuf[ibest];
  }
  NG_CALL(opt->type->tell(opt, opt->fbuf, nfinite));
  return end_of_generation(opt);
}

bool ng__opt_tell_blocked(const ng_opt *opt) {
  return opt->type->ask_lazy && opt->type->tell_plan && opt->type->tell_finish;
}

int ng__opt_ask_lazy(ng_opt *opt) {
  if (!opt->is_setup) return ng_error(NG_EORDER, "ask before setup");
  if (opt->stop != NG_STOP_NONE)
    return ng_error(NG_EORDER, "ask after the run stopped (%s)", ng_stop_name(opt->stop));
  if (opt->asked || opt->telling) return ng_error(NG_EORDER, "ask called twice without tell");
  if (!opt->type->ask_lazy)
    return ng_error(NG_EINVAL, "optimizer '%s' cannot be told by blocks", opt->type->name);
  NG_CALL(opt->type->ask_lazy(opt));
  opt->asked = opt->lazy = true;
  return NG_OK;
}

int ng__opt_tell_begin(ng_opt *opt, const double *f, double *plan) {
  if (!opt->asked || !opt->lazy)
    return ng_error(NG_EORDER, "tell by blocks without an ask without candidates");
  size_t nfinite, ibest;
  NG_CALL(tell_generic(opt, f, &nfinite, &ibest));
  opt->telling = true;
  opt->tell_nfinite = nfinite;
  opt->tell_best = ibest;
  NG_CALL(opt->type->tell_plan(opt, opt->fbuf, plan));
  plan[NG_PLAN_FETCH] = ibest < opt->lambda ? (double)ibest : -1.0;
  return NG_OK;
}

int ng__opt_tell_end(ng_opt *opt, const double *V, const double *Z0, const double *Y0,
                     const double *x_fetched) {
  if (!opt->telling) return ng_error(NG_EORDER, "the end of a tell by blocks without its beginning");
  if (opt->tell_best < opt->lambda) {
    if (!x_fetched) return ng_error(NG_EINVAL, "tell by blocks: the new best candidate's x is missing");
    memcpy(opt->best_x, x_fetched, opt->n * sizeof *opt->best_x);
    opt->best_f = opt->fbuf[opt->tell_best];
  }
  opt->telling = opt->lazy = false;
  NG_CALL(opt->type->tell_finish(opt, V, Z0, Y0, opt->tell_nfinite));
  return end_of_generation(opt);
}

ng_stop ng_opt_stop(const ng_opt *opt) {
  return opt->stop;
}

void ng_opt_request_stop(ng_opt *opt, ng_stop reason) {
  if (opt->stop == NG_STOP_NONE) opt->stop = reason;
}

const double *ng_opt_best(const ng_opt *opt, double *best_f) {
  if (best_f) *best_f = opt->best_f;
  return opt->best_x;
}

const double *ng_opt_mean(const ng_opt *opt) {
  return opt->impl ? opt->type->mean(opt) : opt->x0;
}

void ng_opt_get_info(const ng_opt *opt, ng_opt_info *info) {
  memset(info, 0, sizeof *info);
  info->generation = opt->generation;
  info->evaluations = opt->evaluations;
  info->restarts = opt->restarts;
  info->nonfinite = opt->nonfinite;
  info->best_f = opt->best_f;
  info->gen_best_f = opt->gen_best_f;
  info->gen_median_f = opt->gen_median_f;
  info->popsize = opt->lambda;
  info->stop = opt->stop;
  info->axis_ratio = 1.0;
  if (opt->impl) opt->type->info(opt, info);
}

/* Saved form: "cfg/..." the configuration that shapes the run, "run/..." the generic counters and best point,
 * "algo/..." the algorithm's own state. Budgets (ftarget, max_evals) are not part of it: a resumed run may be
 * given a larger budget. */
int ng_opt_save(const ng_opt *opt, ng_state *st) {
  if (!opt->is_setup) return ng_error(NG_EORDER, "optimizer: save before setup");
  if (opt->asked || opt->telling) return ng_error(NG_EORDER, "optimizer: save between ask and tell");
  size_t n = opt->n;
  NG_CALL(ng_state_put_int(st, "cfg/n", (int64_t)n));
  NG_CALL(ng_state_put_str(st, "cfg/optimizer", opt->type->name));
  NG_CALL(ng_state_put_int(st, "cfg/seed", (int64_t)opt->seed));
  NG_CALL(ng_state_put_scalar(st, "cfg/sigma0", opt->sigma0));
  NG_CALL(ng_state_put_f64(st, "cfg/x0", opt->x0, n));
  NG_CALL(ng_state_put_int(st, "cfg/popsize", (int64_t)opt->popsize_req));
  int64_t restart[2] = {opt->restart_policy, opt->max_restarts};
  NG_CALL(ng_state_put_i64(st, "cfg/restarts", restart, 2));
  if (opt->lo) {
    NG_CALL(ng_state_put_f64(st, "cfg/lower", opt->lo, n));
    NG_CALL(ng_state_put_f64(st, "cfg/upper", opt->hi, n));
  }
  int64_t counters[15] = {opt->generation,       opt->run_generation, opt->evaluations,
                          opt->run_evaluations,  opt->restarts,       opt->large_restarts,
                          opt->evals_large,      opt->evals_small,    opt->nonfinite,
                          opt->nonfinite_streak, (int64_t)opt->stop,  (int64_t)opt->run_popsize,
                          opt->run_large,        opt->run_maxiter,    (int64_t)opt->algo_stop};
  NG_CALL(ng_state_put_i64(st, "run/counters", counters, 15));
  double reals[4] = {opt->best_f, opt->gen_best_f, opt->gen_median_f, opt->run_sigma0};
  NG_CALL(ng_state_put_f64(st, "run/reals", reals, 4));
  NG_CALL(ng_state_put_f64(st, "run/best_x", opt->best_x, n));
  return opt->type->save(opt, st);
}

int ng_opt_load(ng_opt *opt, const ng_state *st) {
  if (!opt->is_setup) return ng_error(NG_EORDER, "optimizer: load before setup");
  size_t n = opt->n;
  int64_t v;
  NG_CALL(ng_state_get_int(st, "cfg/n", &v));
  if (v != (int64_t)n)
    return ng_error(NG_EMISMATCH, "optimizer state is for dimension %lld, not %zu", (long long)v, n);
  const char *saved = NULL;
  if (ng_state_get_str(st, "cfg/optimizer", &saved) != NG_OK) { /* nograd 0.1: an index */
    NG_CALL(ng_state_get_int(st, "cfg/algorithm", &v));
    saved = v >= 0 && (size_t)v < N_LEGACY ? legacy_index_names[v] : "an unknown optimizer";
  }
  if (strcmp(saved, opt->type->name) != 0)
    return ng_error(NG_EMISMATCH, "optimizer state is for '%s', not '%s'", saved, opt->type->name);
  NG_CALL(ng_state_get_int(st, "cfg/seed", &v));
  opt->seed = (uint64_t)v;
  NG_CALL(ng_state_get_scalar(st, "cfg/sigma0", &opt->sigma0));
  NG_CALL(ng_state_get_f64(st, "cfg/x0", opt->x0, n));
  NG_CALL(ng_state_get_int(st, "cfg/popsize", &v));
  opt->popsize_req = (size_t)v;
  int64_t restart[2];
  NG_CALL(ng_state_get_i64(st, "cfg/restarts", restart, 2));
  opt->restart_policy = (ng_restart)restart[0];
  opt->max_restarts = (int)restart[1];
  size_t len;
  if (ng_state_length(st, "cfg/lower", &len) == NG_OK) {
    double *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
    int s = lo && hi ? ng_state_get_f64(st, "cfg/lower", lo, n) : ng_error(NG_ENOMEM, "out of memory");
    if (s == NG_OK) s = ng_state_get_f64(st, "cfg/upper", hi, n);
    if (s != NG_OK) {
      free(lo);
      free(hi);
      return s;
    }
    free(opt->lo);
    free(opt->hi);
    opt->lo = lo;
    opt->hi = hi;
  } else {
    ng_error_clear();
    free(opt->lo);
    free(opt->hi);
    opt->lo = opt->hi = NULL;
  }
  int64_t c[15];
  double reals[4];
  NG_CALL(ng_state_get_i64(st, "run/counters", c, 15));
  NG_CALL(ng_state_get_f64(st, "run/reals", reals, 4));
  NG_CALL(ng_state_get_f64(st, "run/best_x", opt->best_x, n));
  if (c[10] < 0 || c[10] >= NG_STOP_COUNT_ || c[14] < 0 || c[14] >= NG_STOP_COUNT_ || c[11] < 1)
    return ng_error(NG_ECORRUPT, "optimizer state: stop reason %lld or population %lld out of range",
                    (long long)c[10], (long long)c[11]);
  opt->run_popsize = (size_t)c[11];
  opt->run_large = c[12] != 0;
  opt->run_maxiter = c[13];
  opt->run_sigma0 = reals[3];
  NG_CALL(start_run(opt));
  opt->generation = c[0];
  opt->run_generation = c[1];
  opt->evaluations = c[2];
  opt->run_evaluations = c[3];
  opt->restarts = c[4];
  opt->large_restarts = c[5];
  opt->evals_large = c[6];
  opt->evals_small = c[7];
  opt->nonfinite = c[8];
  opt->nonfinite_streak = c[9];
  opt->stop = (ng_stop)c[10];
  opt->best_f = reals[0];
  opt->gen_best_f = reals[1];
  opt->gen_median_f = reals[2];
  opt->asked = opt->lazy = opt->telling = false;
  NG_CALL(opt->type->load(opt, st));
  opt->algo_stop = (ng_stop)c[14];
  /* A run that ended on a budget continues when this optimizer's budget is larger; one that ended on its own
   * rules stays ended. The restart bookkeeping of ng_restart_next must not run twice for the same run end, so
   * only the budget stops are reconsidered. */
  if (opt->stop == NG_STOP_MAXFEVALS || opt->stop == NG_STOP_FTARGET) NG_CALL(end_of_generation(opt));
  return NG_OK;
}

int ng_opt_sampler(const ng_opt *opt, ng_sampler *s) {
  if (!opt->asked) return ng_error(NG_EORDER, "optimizer: no generation is pending (call ask first)");
  if (!opt->type->sampler) {
    *s = (ng_sampler){.kind = NG_SAMPLER_EXPLICIT, .n = opt->n, .lambda = opt->lambda};
    return NG_OK;
  }
  opt->type->sampler(opt, s);
  return NG_OK;
}
