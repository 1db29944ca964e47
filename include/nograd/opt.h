/* The ask/tell optimizer interface.
 *
 * An ng_opt is a derivative-free minimizer driven by its caller:
 *
 *   ng_opt_create("cmaes", n, &opt);          create
 *   ng_opt_set_x0(opt, x0); ...               set_*
 *   ng_opt_setup(opt);                        fix the configuration
 *   while (!ng_opt_stop(opt)) {               work
 *     lambda = ng_opt_popsize(opt);
 *     ng_opt_ask(opt, X);                     X: lambda x n, row-major
 *     ... f[k] = loss of row k ...
 *     ng_opt_tell(opt, f);
 *   }
 *   ng_opt_destroy(&opt);                     destroy
 *
 * The order is checked: ask twice without tell, or tell without ask, returns NG_EORDER. A NaN or infinite
 * loss is data: it ranks after every finite one and is counted (ng_opt_info.nonfinite). The generic layer in
 * src/opt/opt.c owns what every algorithm shares (budgets, ftarget, the best point, restarts, the evaluation
 * count); each algorithm is one table of functions (src/opt/opt_impl.h) chosen by name.
 *
 * Randomness comes only from ng_rng streams keyed by (seed, purpose, generation, index), so the same
 * configuration and seed give the same run, bit for bit, and ng_opt_save/ng_opt_load carry it across a
 * checkpoint exactly. None of these functions is collective. */
#ifndef NOGRAD_OPT_H
#define NOGRAD_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"
#include "nograd/state.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ng_opt ng_opt;

/* The largest dimension and population: BLAS indexes with int, and a size from an option must not wrap. */
#define NG_OPT_DIM_MAX 2147483647

/* Why a run stopped: an outcome, not an error. X-macro: (enum, name printed and saved). */
#define NG_STOP_TABLE(X)                                                                                  \
  X(NG_STOP_NONE, "none")                   /* still running */                                           \
  X(NG_STOP_FTARGET, "ftarget")             /* best f <= ftarget */                                       \
  X(NG_STOP_MAXFEVALS, "maxfevals")         /* evaluation budget spent */                                 \
  X(NG_STOP_MAXITER, "maxiter")             /* iteration budget of one run spent */                       \
  X(NG_STOP_TOLFUN, "tolfun")               /* recent f values within tolfun */                           \
  X(NG_STOP_TOLFUNHIST, "tolfunhist")       /* recent best f values within tolfunhist */                  \
  X(NG_STOP_TOLX, "tolx")                   /* step sizes in every coordinate below tolx */               \
  X(NG_STOP_TOLUPSIGMA, "tolupsigma")       /* sigma grew far beyond the largest axis: diverging */       \
  X(NG_STOP_CONDITIONCOV, "conditioncov")   /* covariance condition number above the limit */             \
  X(NG_STOP_NOEFFECTAXIS, "noeffectaxis")   /* a step along a principal axis leaves the mean unchanged */ \
  X(NG_STOP_NOEFFECTCOORD, "noeffectcoord") /* a step in a coordinate leaves the mean unchanged */        \
  X(NG_STOP_STAGNATION, "stagnation")       /* median and best f no longer improve */                     \
  X(NG_STOP_FLATFITNESS, "flatfitness")     /* too many generations of equal f values */                  \
  X(NG_STOP_NONFINITE, "nonfinite")         /* too many generations without one finite loss */            \
  X(NG_STOP_SIGNAL, "signal")               /* the caller was asked to stop (a signal) */                 \
  X(NG_STOP_CALLBACK, "callback")           /* the caller stopped the run for its own reason */

typedef enum {
#define NG_STOP_ENUM(e, s) e,
  NG_STOP_TABLE(NG_STOP_ENUM)
#undef NG_STOP_ENUM
      NG_STOP_COUNT_
} ng_stop;

/* "ftarget", "tolfun", ... ; "unknown" for a value out of range. */
NG_EXPORT const char *ng_stop_name(ng_stop reason);
/* The reason named `name`, or -1. */
NG_EXPORT int ng_stop_from_name(const char *name);

typedef enum { NG_RESTART_NONE = 0, NG_RESTART_IPOP = 1, NG_RESTART_BIPOP = 2 } ng_restart;

/* A snapshot of a run, for progress lines, logs and the history table. */
typedef struct {
  int64_t generation;   /* generations told so far, over all restarts */
  int64_t evaluations;  /* losses told so far, over all restarts */
  int64_t restarts;     /* restarts begun */
  int64_t nonfinite;    /* NaN or infinite losses told */
  double best_f;        /* best finite loss so far (+inf before one is seen) */
  double gen_best_f;    /* best loss of the last generation told */
  double gen_median_f;  /* median loss of the last generation told */
  double sigma;         /* overall step size (CMA-ES sigma, SPSA c_k) */
  double axis_ratio;    /* sqrt(condition number) of the covariance; 1 where it has none */
  size_t popsize;       /* lambda of the next ask */
  ng_stop stop;         /* NG_STOP_NONE while running */
  double seconds_eigen; /* time spent in eigendecompositions so far */
} ng_opt_info;

/* Creates optimizer `name` ("cmaes", "sepcmaes", "spsa") for an n-dimensional problem, 1 <= n <=
 * NG_OPT_DIM_MAX. NG_EINVAL names an unknown optimizer (listing the known ones) or the dimension at fault. */
NG_EXPORT int ng_opt_create(const char *name, size_t n, ng_opt **out);

/* Frees; accepts NULL and clears the caller's pointer. */
NG_EXPORT void ng_opt_destroy(ng_opt **opt);

/* The names of the optimizers, NULL-terminated, in the order of the library's table. */
NG_EXPORT const char *const *ng_opt_names(void);

/* A one-line description of optimizer `name` for help texts; NULL for an unknown name. */
NG_EXPORT const char *ng_opt_summary(const char *name);

/* The name of opt's algorithm ("cmaes", ...). */
NG_EXPORT const char *ng_opt_name(const ng_opt *opt);

/* Whether the algorithm sees the losses only through their ranking within each generation (CMA-ES; not SPSA,
 * which steps along loss differences). */
NG_EXPORT bool ng_opt_rank_based(const ng_opt *opt);

/* Configuration, before ng_opt_setup (NG_EORDER after). Each returns NG_EINVAL with the value at fault. */
NG_EXPORT int ng_opt_set_x0(ng_opt *opt, const double *x0);   /* initial mean; default all zeros */
NG_EXPORT int ng_opt_set_sigma0(ng_opt *opt, double sigma0);  /* initial step size > 0; default 1 */
NG_EXPORT int ng_opt_set_seed(ng_opt *opt, uint64_t seed);    /* default 1 */
NG_EXPORT int ng_opt_set_popsize(ng_opt *opt, size_t lambda); /* 0: default; <= NG_OPT_DIM_MAX */
NG_EXPORT int ng_opt_set_bounds(ng_opt *opt, const double *lo, const double *hi); /* NULL: unbounded */
NG_EXPORT int ng_opt_set_ftarget(ng_opt *opt, double ftarget);                    /* default -inf */
NG_EXPORT int ng_opt_set_max_evals(ng_opt *opt, int64_t max_evals); /* over all restarts; <= 0: unlimited */
NG_EXPORT int ng_opt_set_restarts(ng_opt *opt, ng_restart policy, int max_restarts);
/* A named numeric parameter of the algorithm or of its stopping rules ("tolfun", "spsa_a", ...). Unknown
 * names are reported by ng_opt_setup, which knows the algorithm's list. */
NG_EXPORT int ng_opt_set_param(ng_opt *opt, const char *name, double value);

/* Checks the configuration and allocates the state. NG_EINVAL names the parameter at fault. */
NG_EXPORT int ng_opt_setup(ng_opt *opt);

/* The number of candidates the next ask returns (changes at IPOP/BIPOP restarts). */
NG_EXPORT size_t ng_opt_popsize(const ng_opt *opt);
/* The dimension n. */
NG_EXPORT size_t ng_opt_dim(const ng_opt *opt);

/* Writes ng_opt_popsize(opt) candidates, row-major, into x. NG_EORDER before setup, after a stop, or when
 * the previous ask was not told. */
NG_EXPORT int ng_opt_ask(ng_opt *opt, double *x);

/* Takes the losses of the candidates of the last ask, in the same order; updates the state, the best point
 * and the stop reason, and starts a restart when the policy asks for one. NG_EORDER without an ask. */
NG_EXPORT int ng_opt_tell(ng_opt *opt, const double *f);

/* NG_STOP_NONE while the run goes on; the final reason afterwards. */
NG_EXPORT ng_stop ng_opt_stop(const ng_opt *opt);

/* Ends the run for a reason of the caller's (NG_STOP_SIGNAL, NG_STOP_CALLBACK). */
NG_EXPORT void ng_opt_request_stop(ng_opt *opt, ng_stop reason);

/* The best point seen so far (n values) and its loss; the initial mean and +inf before any finite loss. */
NG_EXPORT const double *ng_opt_best(const ng_opt *opt, double *best_f);

/* The current mean (the point an anytime user would take): the distribution mean, or SPSA's iterate
 * (its average, with iterate averaging). */
NG_EXPORT const double *ng_opt_mean(const ng_opt *opt);

/* A snapshot of the run. */
NG_EXPORT void ng_opt_get_info(const ng_opt *opt, ng_opt_info *info);

/* How the candidates of a generation are drawn, for the seeded broadcast: with this description any rank
 * regenerates any candidate, bit-identical to what ask returned on rank 0. */
typedef enum {
  NG_SAMPLER_EXPLICIT = 0,   /* no description: the candidates themselves must be sent */
  NG_SAMPLER_GAUSS_FULL = 1, /* x_k = T(mean + sigma * F z_k), F = B*D (n x n, row-major) */
  NG_SAMPLER_GAUSS_DIAG = 2, /* x_k = T(mean + sigma * F .* z_k), F = D (n) */
  NG_SAMPLER_SPSA = 3        /* x_{2j}, x_{2j+1} = clamp(mean +- sigma * Delta_j) */
} ng_sampler_kind;

typedef struct {
  ng_sampler_kind kind;
  size_t n, lambda;
  uint64_t seed;
  int64_t generation;   /* keys the streams: z_k from (seed, NG_RNG_SAMPLE, generation, k) */
  const double *mean;   /* n values */
  double sigma;         /* CMA-ES: sigma; SPSA: c_k */
  const double *factor; /* GAUSS_FULL: n*n; GAUSS_DIAG: n; otherwise NULL */
  size_t factor_len;
  int64_t factor_version; /* changes whenever the factor does: it is sent again only then */
  const double *lo, *hi;  /* box bounds, or NULL */
  int gaussian;           /* SPSA: Gaussian instead of Rademacher directions */
  size_t center;          /* SPSA: directions centred over the classes i mod center (0: off) */
} ng_sampler;

/* Describes the pending generation (after ask, before tell). The pointers stay valid until the next tell.
 * NG_EORDER when no ask is pending. */
NG_EXPORT int ng_opt_sampler(const ng_opt *opt, ng_sampler *s);

/* Writes candidates [first, first + count) of the generation `s` describes into x (count x n, row-major),
 * bit-identical to rows first.. of what ask returned. Full-covariance candidates are computed in blocks of
 * 32 (one matrix product each, as ask does), so a rank pays for whole blocks. NG_EINVAL for a range past
 * lambda or an EXPLICIT sampler; NG_ENOMEM. Not collective. */
NG_EXPORT int ng_sampler_generate(const ng_sampler *s, size_t first, size_t count, double *x);

/* The complete state (configuration included) as named arrays, and back. ng_opt_load needs a set-up optimizer
 * of the same name and dimension (NG_EMISMATCH otherwise, naming both); it adopts the saved configuration
 * that shapes the trajectory (seed, x0, sigma0, popsize, bounds, restart policy) and keeps its own budgets
 * (ftarget, max_evals), so that a resumed run continues the saved one exactly, possibly with a larger budget.
 * Whether a resume may go ahead with another configuration is the caller's decision (the commands compare
 * their configuration text and refuse without --force). NG_ENOTFOUND for a missing entry. Between an ask and
 * its tell, save returns NG_EORDER: checkpoints are taken between generations. */
NG_EXPORT int ng_opt_save(const ng_opt *opt, ng_state *st);
NG_EXPORT int ng_opt_load(ng_opt *opt, const ng_state *st);

/* Drops the pending generation (after ask, before tell) without telling it: a save then holds the state
 * before that ask, and the next ask returns the same candidates again. This holds because an algorithm's ask
 * changes nothing but what that ask would compute alike again (its candidates come from counter-based
 * streams; CMA-ES's eigendecomposition, which ask may bring up to date, is part of the saved state). The
 * engine uses it when a stalled generation ends the run. NG_EORDER when no ask is pending. */
NG_EXPORT int ng_opt_withdraw(ng_opt *opt);

#ifdef __cplusplus
}
#endif
#endif
