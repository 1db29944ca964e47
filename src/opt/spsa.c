/* SPSA: simultaneous perturbation stochastic approximation (Spall 1998, "Implementation of the simultaneous
 * perturbation algorithm for stochastic optimization", IEEE TAES 34(3)).
 *
 * One generation is one step with q perturbation pairs, 2q candidates asked together: candidate 2j is
 * theta + c_k Delta_j, candidate 2j+1 is theta - c_k Delta_j, with Delta_j drawn from the stream
 * (seed, NG_RNG_SPSA, generation, j), Rademacher by default or standard normal ("spsa_gaussian" = 1). Any
 * rank that knows (seed, generation, theta, c_k) regenerates every candidate. The step is
 *   theta_{k+1} = P(theta_k - a_k g_k),  g_k = (1/q') sum_j (f+_j - f-_j) / (2 c_k) * Delta_j^{-1}
 * over the q' pairs whose two losses are finite (Delta^{-1} = Delta elementwise for Rademacher; for Gaussian
 * directions Delta itself, the Gaussian-smoothing estimator), P the clamp onto the box.
 *
 * Centred directions ("spsa_center" = S >= 1; 0, the default, is off) are for losses invariant along the
 * all-equal direction of each class of coordinates {i : i mod S = r}, such as softmax(w) over groups of
 * logits laid out k * S + r: adding a constant to every logit of a group changes nothing. Plain Rademacher
 * directions then waste effort: their component along that direction only adds noise to the quotient, and
 * a direction all-equal in every class (probability 2^(S (1 - n/S)) per pair: one pair in two for two
 * experts and one group) gives an estimate of exactly 0. Centred, each class of Delta_j is H z, H an
 * orthonormal (Helmert) basis of the class's zero-sum subspace and z the class's first n/S - 1 draws
 * (Rademacher or normal), and the estimate multiplies by Delta itself: never a zero direction, E[Delta
 * Delta^T] = D, the centring projection, and D grad f = grad f for such a loss, so the estimate keeps its
 * mean. n must be a multiple of S, n / S >= 2.
 *
 * Gains: a_k = a / (k + 1 + A)^alpha, c_k = c / (k + 1)^gamma, where k counts the generations of the run
 * (steps attempted, whether taken, rejected or empty), so that both are functions of the generation alone.
 * Defaults: alpha 0.602, gamma 0.101, c = sigma0, A = 10% of the step budget (param "maxiter"; else
 * floor(max_evals / 2q); else 1000 steps). a is "spsa_a" when > 0; otherwise it is calibrated, without extra
 * evaluations, on the first W = "spsa_calibrate" (default 5) generations whose estimate is nonzero, as Spall
 * recommends (the magnitude of g averaged over several estimates at the start): at the j-th of them,
 *   a = step0 * (k + 1 + A)^alpha / mean over those j generations of mean_i |g_i|,
 * so that the first step moves each coordinate by "spsa_step0" (default c) on average and a later one by
 * step0 times its estimate's magnitude over the running mean; after the W-th, a stays. One estimate alone
 * (W = 1) can be tiny by chance, and a then makes the next steps overshoot by the same factor. A zero
 * estimate (no finite pair, or a direction along which the loss is flat) moves nothing and does not count;
 * a quotient that overflows gives a = step0 * (k + 1 + A)^alpha.
 *
 * Iterate averaging ("spsa_average" = 1): the reported mean is the running average of the iterates
 * theta_{k+1} produced by the generations k >= floor(f * budget), f = "spsa_average_start" in [0, 1]
 * (default 0.5: the first half of the budget is burn-in); before that it is theta.
 *
 * Step blocking ("spsa_block_tol" = tol >= 0; off when not set): a generation centred on theta_k estimates
 * the loss there as L_k = mean_j (f+_j + f-_j) / 2 over its finite pairs. If the last step moved theta and
 * L_k exceeds the estimate at the previous accepted iterate by more than tol, that step is rejected: theta
 * returns to the previous accepted iterate and this generation's gradient (measured around the rejected
 * point) is discarded. The rejections are counted in the saved entry "algo/rejected".
 *
 * A, the averaging start and a belong to the run: a resumed run keeps the saved ones even when it is given
 * another budget, so that the gain sequence continues unchanged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opt/opt_impl.h"
#include "opt/sampler_impl.h"

#define SPSA_DEFAULT_STEPS 1000 /* step budget when neither maxiter nor max_evals is given */
#define SPSA_MAX_STEPS 1e15     /* larger budgets are a configuration mistake (and overflow int64) */

typedef struct {
  size_t n, q;
  size_t center; /* "spsa_center": directions centred over the classes i mod center; 0 = off */
  bool gaussian, average, blocking;
  double alpha, gamma, c, step0, block_tol; /* configuration */
  double a, A;                              /* gains of the run (a calibrated when not given) */
  int64_t maxiter, avg_start;
  /* run */
  int64_t k;          /* generations of this run told */
  int64_t navg;       /* iterates in avg */
  int64_t rejected;   /* steps rejected by blocking */
  bool calibrated;    /* a is final (spsa_a given, or the W calibration estimates seen) */
  size_t cal_window;  /* W: estimates that calibrate a */
  int64_t cal_count;  /* calibration estimates seen so far */
  double cal_sum;     /* and the sum of their mean_i |g_i| */
  bool has_prev;      /* loss_prev and theta_prev hold an accepted iterate */
  bool stepped;       /* theta moved since it was last accepted */
  double loss_prev;   /* loss estimate at theta_prev */
  double *theta;      /* the iterate, centre of the next ask */
  double *theta_prev; /* the last accepted iterate (blocking) */
  double *avg;        /* running average of the iterates */
  double *delta;      /* q x n directions of the last ask */
  double *X;          /* 2q x n candidates of the last ask */
  double *g;          /* gradient estimate */
} spsa;

static void spsa_free(spsa *s) {
  if (!s) return;
  free(s->theta);
  free(s->theta_prev);
  free(s->avg);
  free(s->delta);
  free(s->X);
  free(s->g);
  free(s);
}

static void destroy(ng_opt *opt) {
  spsa_free(opt->impl);
  opt->impl = NULL;
}

static double c_gain(const spsa *s) {
  return s->c / pow((double)s->k + 1.0, s->gamma);
}
static double a_base(const spsa *s) {
  return pow((double)s->k + 1.0 + s->A, s->alpha);
}

/* Reads and checks the parameters into s; every parameter is read, so that setup knows them all. */
static int read_params(ng_opt *opt, spsa *s) {
  s->q = 1;
  double q = ng_opt_param(opt, "spsa_q", NAN);
  s->alpha = ng_opt_param(opt, "spsa_alpha", 0.602);
  s->gamma = ng_opt_param(opt, "spsa_gamma", 0.101);
  s->c = ng_opt_param(opt, "spsa_c", opt->run_sigma0);
  double a = ng_opt_param(opt, "spsa_a", 0.0);
  double A = ng_opt_param(opt, "spsa_A", NAN);
  s->step0 = ng_opt_param(opt, "spsa_step0", s->c);
  double gaussian = ng_opt_param(opt, "spsa_gaussian", 0.0);
  double average = ng_opt_param(opt, "spsa_average", 0.0);
  double avg_frac = ng_opt_param(opt, "spsa_average_start", 0.5);
  double tol = ng_opt_param(opt, "spsa_block_tol", NAN);
  double center = ng_opt_param(opt, "spsa_center", 0.0);
  double window = ng_opt_param(opt, "spsa_calibrate", 5.0);
  double maxiter = ng_opt_param(opt, "maxiter", NAN);

  if (opt->run_popsize) {
    if (opt->run_popsize % 2)
      return ng_error(NG_EINVAL, "spsa: popsize must be even (q pairs of candidates), got %zu",
                      opt->run_popsize);
    s->q = opt->run_popsize / 2;
    if (!isnan(q) && q != (double)s->q)
      return ng_error(NG_EINVAL, "spsa: spsa_q = %g disagrees with popsize %zu (q = popsize / 2)", q,
                      opt->run_popsize);
  } else {
    if (isnan(q)) q = (double)s->q;
    if (!(q >= 1.0 && q <= 1e9) || q != floor(q))
      return ng_error(NG_EINVAL, "spsa: spsa_q must be an integer >= 1, got %g", q);
    s->q = (size_t)q;
  }
  if (!(s->alpha > 0.0 && s->alpha <= 1.0))
    return ng_error(NG_EINVAL, "spsa: spsa_alpha must lie in (0, 1], got %g", s->alpha);
  if (!(s->gamma > 0.0) || !isfinite(s->gamma))
    return ng_error(NG_EINVAL, "spsa: spsa_gamma must be positive, got %g", s->gamma);
  if (!(s->c > 0.0) || !isfinite(s->c))
    return ng_error(NG_EINVAL, "spsa: spsa_c must be positive, got %g", s->c);
  if (!isfinite(a)) return ng_error(NG_EINVAL, "spsa: spsa_a must be finite (<= 0: calibrate), got %g", a);
  if (!(s->step0 > 0.0) || !isfinite(s->step0))
    return ng_error(NG_EINVAL, "spsa: spsa_step0 must be positive, got %g", s->step0);
  if (gaussian != 0.0 && gaussian != 1.0)
    return ng_error(NG_EINVAL, "spsa: spsa_gaussian must be 0 or 1, got %g", gaussian);
  if (average != 0.0 && average != 1.0)
    return ng_error(NG_EINVAL, "spsa: spsa_average must be 0 or 1, got %g", average);
  if (!(avg_frac >= 0.0 && avg_frac <= 1.0))
    return ng_error(NG_EINVAL,
                    "spsa: spsa_average_start must lie in [0, 1] (a fraction of the budget), got %g",
                    avg_frac);
  if (!isnan(tol) && !(tol >= 0.0))
    return ng_error(NG_EINVAL, "spsa: spsa_block_tol must be >= 0, got %g", tol);
  if (!(center >= 0.0 && center <= (double)s->n) || center != floor(center) ||
      (center > 0.0 && (s->n % (size_t)center || s->n / (size_t)center < 2)))
    return ng_error(NG_EINVAL,
                    "spsa: spsa_center must be 0 (off) or a divisor S of n = %zu with n / S >= 2 (groups of "
                    "coordinates i mod S), got %g",
                    s->n, center);
  s->center = (size_t)center;
  if (!(window >= 1.0 && window <= 1e6) || window != floor(window))
    return ng_error(
        NG_EINVAL,
        "spsa: spsa_calibrate must be an integer in [1, 1e6] (the estimates that calibrate a), got %g",
        window);
  s->cal_window = (size_t)window;

  double budget;
  if (!isnan(maxiter)) {
    if (!(maxiter >= 1.0 && maxiter <= SPSA_MAX_STEPS) || maxiter != floor(maxiter))
      return ng_error(NG_EINVAL, "spsa: maxiter must be an integer in [1, %g], got %g", SPSA_MAX_STEPS,
                      maxiter);
    budget = maxiter;
  } else if (opt->max_evals > 0) {
    budget = fmax(1.0, floor((double)opt->max_evals / (2.0 * (double)s->q)));
  } else {
    budget = SPSA_DEFAULT_STEPS;
  }
  if (isnan(A)) A = 0.1 * budget;
  if (!(A >= 0.0) || !isfinite(A)) return ng_error(NG_EINVAL, "spsa: spsa_A must be >= 0, got %g", A);

  s->a = a > 0.0 ? a : 0.0;
  s->calibrated = a > 0.0;
  s->A = A;
  s->gaussian = gaussian == 1.0;
  s->average = average == 1.0;
  s->blocking = !isnan(tol);
  s->block_tol = s->blocking ? tol : -1.0;
  s->maxiter = (int64_t)budget;
  if (opt->run_maxiter > 0 && opt->run_maxiter < s->maxiter) s->maxiter = opt->run_maxiter;
  s->avg_start = (int64_t)floor(avg_frac * budget);
  return NG_OK;
}

static void clamp(const ng_opt *opt, double *x) {
  if (!opt->lo) return;
  for (size_t i = 0; i < opt->n; i++)
    x[i] = fmin(fmax(x[i], opt->lo[i]), opt->hi[i]);
}

static int setup(ng_opt *opt) {
  size_t n = opt->n;
  spsa *s = calloc(1, sizeof *s);
  if (!s) return ng_error(NG_ENOMEM, "spsa: out of memory");
  s->n = n;
  int status = read_params(opt, s);
  if (status != NG_OK) {
    spsa_free(s);
    return status;
  }
  opt->run_popsize = 2 * s->q;
  s->theta = malloc(n * sizeof(double));
  s->theta_prev = malloc(n * sizeof(double));
  s->avg = calloc(n, sizeof(double));
  s->delta = malloc(s->q * n * sizeof(double));
  s->X = malloc(2 * s->q * n * sizeof(double));
  s->g = malloc(n * sizeof(double));
  if (!s->theta || !s->theta_prev || !s->avg || !s->delta || !s->X || !s->g) {
    spsa_free(s);
    return ng_error(NG_ENOMEM, "spsa: out of memory for n = %zu, q = %zu", n, opt->run_popsize / 2);
  }
  memcpy(s->theta, opt->x0, n * sizeof(double));
  clamp(opt, s->theta);
  memcpy(s->theta_prev, s->theta, n * sizeof(double));
  s->loss_prev = INFINITY;
  opt->impl = s;
  return NG_OK;
}

static void sampler(const ng_opt *opt, ng_sampler *smp) {
  const spsa *s = opt->impl;
  *smp = (ng_sampler){.kind = NG_SAMPLER_SPSA,
                      .n = s->n,
                      .lambda = 2 * s->q,
                      .seed = opt->seed,
                      .generation = opt->generation,
                      .mean = s->theta,
                      .sigma = c_gain(s),
                      .lo = opt->lo,
                      .hi = opt->hi,
                      .gaussian = s->gaussian,
                      .center = s->center};
}

/* The pairs come from the shared sampler (sampler.c), so that any rank can regenerate them. */
static int ask(ng_opt *opt, double *x) {
  spsa *s = opt->impl;
  size_t n = s->n;
  ng_sampler smp;
  sampler(opt, &smp);
  for (size_t j = 0; j < s->q; j++) {
    double *xp = s->X + 2 * j * n;
    ng_sampler_spsa_pair(&smp, j, s->delta + j * n, xp, xp + n);
  }
  memcpy(x, s->X, 2 * s->q * n * sizeof(double));
  return NG_OK;
}

static void average_in(spsa *s) {
  s->navg++;
  double w = 1.0 / (double)s->navg;
  for (size_t i = 0; i < s->n; i++)
    s->avg[i] += w * (s->theta[i] - s->avg[i]);
}

static int tell(ng_opt *opt, const double *f, size_t nfinite) {
  (void)nfinite;
  spsa *s = opt->impl;
  size_t n = s->n, pairs = 0;
  double ck = c_gain(s), loss = 0.0;
  memset(s->g, 0, n * sizeof(double));
  for (size_t j = 0; j < s->q; j++) {
    double fp = f[2 * j], fm = f[2 * j + 1];
    if (!isfinite(fp) || !isfinite(fm)) continue;
    pairs++;
    loss += 0.5 * (fp + fm);
    double slope = (fp - fm) / (2.0 * ck);
    const double *d = s->delta + j * n;
    /* Rademacher: 1/Delta_i = Delta_i; Gaussian smoothing and centred directions use Delta itself. */
    for (size_t i = 0; i < n; i++)
      s->g[i] += slope * d[i];
  }

  if (pairs) {
    loss /= (double)pairs;
    if (s->blocking && s->stepped && s->has_prev && loss > s->loss_prev + s->block_tol) {
      memcpy(s->theta, s->theta_prev, n * sizeof(double)); /* reject the last step */
      s->rejected++;
      s->stepped = false;
    } else {
      memcpy(s->theta_prev, s->theta, n * sizeof(double));
      s->loss_prev = loss;
      s->has_prev = true;
      double mean_abs = 0.0;
      for (size_t i = 0; i < n; i++) {
        s->g[i] /= (double)pairs;
        mean_abs += fabs(s->g[i]);
      }
      mean_abs /= (double)n;
      /* calibrate on the first W nonzero estimates: a zero one (e.g. a direction along which the loss is
       * invariant, like adding a constant to every softmax logit) moves nothing, so waiting costs nothing */
      if (!s->calibrated && mean_abs > 0.0) {
        s->cal_sum += mean_abs;
        s->cal_count++;
        double a = s->step0 * a_base(s) / (s->cal_sum / (double)s->cal_count);
        s->a = isfinite(a) ? a : s->step0 * a_base(s);
        s->calibrated = s->cal_count >= (int64_t)s->cal_window;
      }
      double ak = s->a / a_base(s);
      for (size_t i = 0; i < n; i++)
        s->theta[i] -= ak * s->g[i];
      clamp(opt, s->theta);
      s->stepped = true;
    }
  }
  if (s->average && s->k >= s->avg_start) average_in(s);
  s->k++;
  if (s->k >= s->maxiter) opt->algo_stop = NG_STOP_MAXITER;
  return NG_OK;
}

static const double *candidate(const ng_opt *opt, size_t k) {
  const spsa *s = opt->impl;
  return s->X + k * s->n;
}

static const double *mean(const ng_opt *opt) {
  const spsa *s = opt->impl;
  return s->average && s->navg > 0 ? s->avg : s->theta;
}

static void info(const ng_opt *opt, ng_opt_info *in) {
  const spsa *s = opt->impl;
  in->sigma = c_gain(s);
  in->axis_ratio = 1.0;
}

#define N_CONFIG 7

static void config_of(const spsa *s, double cfg[N_CONFIG]) {
  cfg[0] = s->alpha;
  cfg[1] = s->gamma;
  cfg[2] = s->c;
  cfg[3] = s->step0;
  cfg[4] = s->gaussian;
  cfg[5] = s->average;
  cfg[6] = s->block_tol;
}

static int save(const ng_opt *opt, ng_state *st) {
  const spsa *s = opt->impl;
  size_t n = s->n;
  double cfg[N_CONFIG];
  config_of(s, cfg);
  NG_CALL(ng_state_put_int(st, "algo/q", (int64_t)s->q));
  NG_CALL(ng_state_put_f64(st, "algo/config", cfg, N_CONFIG));
  NG_CALL(ng_state_put_int(st, "algo/center", (int64_t)s->center));
  int64_t cal[2] = {(int64_t)s->cal_window, s->cal_count};
  NG_CALL(ng_state_put_i64(st, "algo/calibration", cal, 2));
  NG_CALL(ng_state_put_scalar(st, "algo/calibration_sum", s->cal_sum));
  double gains[2] = {s->a, s->A};
  NG_CALL(ng_state_put_f64(st, "algo/gains", gains, 2));
  int64_t counters[6] = {s->k, s->navg, s->avg_start, s->calibrated, s->has_prev, s->stepped};
  NG_CALL(ng_state_put_i64(st, "algo/counters", counters, 6));
  NG_CALL(ng_state_put_int(st, "algo/rejected", s->rejected));
  NG_CALL(ng_state_put_scalar(st, "algo/loss_prev", s->loss_prev));
  NG_CALL(ng_state_put_f64(st, "algo/theta", s->theta, n));
  NG_CALL(ng_state_put_f64(st, "algo/theta_prev", s->theta_prev, n));
  return ng_state_put_f64(st, "algo/average", s->avg, n);
}

static int load(ng_opt *opt, const ng_state *st) {
  static const char *const cfg_names[N_CONFIG] = {
      "spsa_alpha", "spsa_gamma", "spsa_c", "spsa_step0", "spsa_gaussian", "spsa_average", "spsa_block_tol"};
  spsa *s = opt->impl;
  size_t n = s->n;
  int64_t q;
  NG_CALL(ng_state_get_int(st, "algo/q", &q));
  if (q != (int64_t)s->q)
    return ng_error(NG_EMISMATCH, "spsa: saved q = %lld pairs differs from the configured %zu", (long long)q,
                    s->q);
  double saved[N_CONFIG], cfg[N_CONFIG];
  NG_CALL(ng_state_get_f64(st, "algo/config", saved, N_CONFIG));
  config_of(s, cfg);
  for (size_t i = 0; i < N_CONFIG; i++)
    if (saved[i] != cfg[i])
      return ng_error(NG_EMISMATCH, "spsa: algo/config: saved %s = %.17g differs from the configured %.17g",
                      cfg_names[i], saved[i], cfg[i]);
  /* algo/center came after algo/config: a checkpoint without it was written with centring off */
  int64_t center = 0;
  size_t len;
  if (ng_state_length(st, "algo/center", &len) == NG_OK)
    NG_CALL(ng_state_get_int(st, "algo/center", &center));
  if (center != (int64_t)s->center)
    return ng_error(NG_EMISMATCH, "spsa: saved spsa_center = %lld differs from the configured %zu",
                    (long long)center, s->center);
  /* so did algo/calibration: without it, a was calibrated on one estimate, or not yet (then the window
   * configured now applies from the start) */
  int64_t cal[2] = {(int64_t)s->cal_window, 0};
  double cal_sum = 0.0;
  if (ng_state_length(st, "algo/calibration", &len) == NG_OK) {
    NG_CALL(ng_state_get_i64(st, "algo/calibration", cal, 2));
    NG_CALL(ng_state_get_scalar(st, "algo/calibration_sum", &cal_sum));
  }
  if (cal[0] != (int64_t)s->cal_window)
    return ng_error(NG_EMISMATCH, "spsa: saved spsa_calibrate = %lld differs from the configured %zu",
                    (long long)cal[0], s->cal_window);
  if (cal[1] < 0 || !(cal_sum >= 0.0))
    return ng_error(NG_ECORRUPT, "spsa: algo/calibration out of range (%lld estimates, sum %g)",
                    (long long)cal[1], cal_sum);
  double gains[2];
  int64_t c[6];
  NG_CALL(ng_state_get_f64(st, "algo/gains", gains, 2));
  NG_CALL(ng_state_get_i64(st, "algo/counters", c, 6));
  if (c[0] < 0 || c[1] < 0 || c[2] < 0 || !(gains[0] >= 0.0) || !(gains[1] >= 0.0))
    return ng_error(NG_ECORRUPT, "spsa: algo/counters or algo/gains out of range (k = %lld, a = %g, A = %g)",
                    (long long)c[0], gains[0], gains[1]);
  NG_CALL(ng_state_get_int(st, "algo/rejected", &s->rejected));
  NG_CALL(ng_state_get_scalar(st, "algo/loss_prev", &s->loss_prev));
  NG_CALL(ng_state_get_f64(st, "algo/theta", s->theta, n));
  NG_CALL(ng_state_get_f64(st, "algo/theta_prev", s->theta_prev, n));
  NG_CALL(ng_state_get_f64(st, "algo/average", s->avg, n));
  s->a = gains[0];
  s->A = gains[1];
  s->k = c[0];
  s->navg = c[1];
  s->avg_start = c[2];
  s->calibrated = c[3] != 0;
  s->cal_count = cal[1];
  s->cal_sum = cal_sum;
  s->has_prev = c[4] != 0;
  s->stepped = c[5] != 0;
  return NG_OK;
}

const ng_opt_type ng_opt_spsa = {
    .name = "spsa",
    .summary = "SPSA (Spall): two-point gradient estimates, q pairs a step, calibrated gains",
    .setup = setup,
    .ask = ask,
    .tell = tell,
    .save = save,
    .load = load,
    .destroy = destroy,
    .info = info,
    .candidate = candidate,
    .sampler = sampler,
    .mean = mean,
    .restartable = false,
    .rank_based = false};
