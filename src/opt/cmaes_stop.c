/* The stopping rules of CMA-ES, with pycma 4.x's defaults and tests (evolution_strategy.py, _CMAStopDict).
 *
 * They end one run of the algorithm; the generic layer then decides whether a restart follows. ftarget and
 * the evaluation budget belong to the generic layer, since they hold across restarts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "opt/cmaes_impl.h"

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(const double *v, size_t len) {
  double *c = malloc(len * sizeof *c);
  if (!c) return NAN;
  memcpy(c, v, len * sizeof *c);
  qsort(c, len, sizeof *c, compare_double);
  double m = len % 2 ? c[len / 2] : 0.5 * (c[len / 2 - 1] + c[len / 2]);
  free(c);
  return m;
}

/* Grows the two stagnation histories to hold at least `len` entries. */
static int reserve_stagnation(cmaes *es, size_t len) {
  if (len <= es->stag_alloc) return NG_OK;
  size_t cap = es->stag_alloc ? es->stag_alloc : 64;
  while (cap < len)
    cap *= 2;
  double *b = realloc(es->histbest, cap * sizeof(double));
  if (!b) return ng_error(NG_ENOMEM, "cmaes: out of memory");
  es->histbest = b;
  double *m = realloc(es->histmedian, cap * sizeof(double));
  if (!m) return ng_error(NG_ENOMEM, "cmaes: out of memory");
  es->histmedian = m;
  es->stag_alloc = cap;
  return NG_OK;
}

static void push_stagnation(cmaes *es, double best, double med) {
  if (es->stag_len == es->stag_cap) { /* drop the oldest */
    memmove(es->histbest, es->histbest + 1, (es->stag_len - 1) * sizeof(double));
    memmove(es->histmedian, es->histmedian + 1, (es->stag_len - 1) * sizeof(double));
    es->stag_len--;
  }
  if (reserve_stagnation(es, es->stag_len + 1) != NG_OK) return; /* out of memory: stop tracking */
  es->histbest[es->stag_len] = best;
  es->histmedian[es->stag_len] = med;
  es->stag_len++;
}

/* pycma's stagnation test: the median of the most recent l entries of both the best and the median history is
 * not better than the median of the l entries before them. */
static bool stagnated(const cmaes *es, int64_t iter) {
  size_t len = es->stag_len;
  double N = (double)es->n;
  if ((double)iter <= N * (5.0 + 100.0 / (double)es->lambda)) return false;
  if ((double)(iter - es->best_iter) <= (double)es->tolstagnation / 2.0) return false;
  if (len <= 100) return false;
  size_t l = (size_t)fmax((double)es->tolstagnation / 10.0, (double)len / 10.0);
  if (2 * l >= len) return false;
  /* newest last: recent = [len-l, len), before = [len-2l, len-l) */
  double recent_med = median(es->histmedian + len - l, l),
         before_med = median(es->histmedian + len - 2 * l, l);
  double recent_best = median(es->histbest + len - l, l), before_best = median(es->histbest + len - 2 * l, l);
  return recent_med >= before_med && recent_best >= before_best;
}

ng_stop ng_cmaes_check_stop(ng_opt *opt, cmaes *es, const double *fs) {
  size_t n = es->n, lambda = es->lambda;
  int64_t iter = es->count_tell;

  /* histories */
  es->hist[es->hist_pos] = fs[0];
  es->hist_pos = (es->hist_pos + 1) % es->hist_cap;
  if (es->hist_len < es->hist_cap) es->hist_len++;
  if (fs[0] < es->best_f) {
    es->best_f = fs[0];
    es->best_iter = iter;
  }
  if (iter % 5 == 0) /* fs is sorted: its median is at its middle */
    push_stagnation(es, fs[0], lambda % 2 ? fs[lambda / 2] : 0.5 * (fs[lambda / 2 - 1] + fs[lambda / 2]));
  es->flat_count = fs[0] < fs[(size_t)(0.75 * (double)lambda)] ? 0 : es->flat_count + 1;

  if (iter >= es->maxiter) return NG_STOP_MAXITER;
  double hmin = INFINITY, hmax = -INFINITY;
  for (size_t i = 0; i < es->hist_len; i++) {
    hmin = fmin(hmin, es->hist[i]);
    hmax = fmax(hmax, es->hist[i]);
  }
  if (fs[lambda - 1] - fs[0] < es->tolfun && hmax - hmin < es->tolfun) return NG_STOP_TOLFUN;
  if (es->hist_len > 9 && hmax - hmin < es->tolfunhist) return NG_STOP_TOLFUNHIST;

  bool small = true;
  double dmax = 0, dmin = INFINITY;
  for (size_t i = 0; i < n && small; i++) {
    double cii = es->diagonal ? es->C[i] : es->C[i * n + i];
    if (!(es->sigma * sqrt(cii) < es->tolx) || !(es->sigma * es->pc[i] < es->tolx)) small = false;
  }
  if (small) return NG_STOP_TOLX;
  for (size_t i = 0; i < n; i++) {
    dmax = fmax(dmax, es->D[i]);
    dmin = fmin(dmin, es->D[i]);
  }
  if (es->sigma / opt->run_sigma0 > es->tolupsigma * dmax) return NG_STOP_TOLUPSIGMA;
  if (dmax > sqrt(es->tolconditioncov) * dmin) return NG_STOP_CONDITIONCOV;

  /* a step of 0.1 sigma along principal axis (iter mod n) that leaves the mean unchanged */
  size_t axis = (size_t)(iter % (int64_t)n);
  bool noeffect = true;
  for (size_t i = 0; i < n && noeffect; i++) {
    double b = es->diagonal ? (i == axis ? 1.0 : 0.0) : es->B[i * n + axis];
    double m = es->mean[i];
    if (m + 0.1 * es->sigma * es->D[axis] * b != m) noeffect = false;
  }
  if (noeffect) return NG_STOP_NOEFFECTAXIS;
  for (size_t i = 0; i < n; i++) {
    double cii = es->diagonal ? es->C[i] : es->C[i * n + i];
    if (es->mean[i] + 0.2 * es->sigma * sqrt(cii) == es->mean[i]) return NG_STOP_NOEFFECTCOORD;
  }
  if (stagnated(es, iter)) return NG_STOP_STAGNATION;
  if (es->flat_count > es->tolflatfitness) return NG_STOP_FLATFITNESS;
  return NG_STOP_NONE;
}

int ng_cmaes_stop_save(const cmaes *es, ng_state *st) {
  /* the ring in chronological order, so that the saved form does not depend on where the ring started */
  double *h = malloc((es->hist_len ? es->hist_len : 1) * sizeof *h);
  if (!h) return ng_error(NG_ENOMEM, "cmaes: out of memory");
  size_t start = es->hist_len < es->hist_cap ? 0 : es->hist_pos;
  for (size_t i = 0; i < es->hist_len; i++)
    h[i] = es->hist[(start + i) % es->hist_cap];
  int st_ = ng_state_put_f64(st, "algo/hist", h, es->hist_len);
  free(h);
  NG_CALL(st_);
  NG_CALL(ng_state_put_f64(st, "algo/histbest", es->histbest, es->stag_len));
  NG_CALL(ng_state_put_f64(st, "algo/histmedian", es->histmedian, es->stag_len));
  NG_CALL(ng_state_put_scalar(st, "algo/best_f", es->best_f));
  int64_t c[2] = {es->best_iter, es->flat_count};
  return ng_state_put_i64(st, "algo/stop_counters", c, 2);
}

int ng_cmaes_stop_load(cmaes *es, const ng_state *st) {
  size_t len;
  NG_CALL(ng_state_length(st, "algo/hist", &len));
  if (len > es->hist_cap) return ng_error(NG_EMISMATCH, "cmaes: saved history longer than %zu", es->hist_cap);
  NG_CALL(ng_state_get_f64(st, "algo/hist", es->hist, len));
  es->hist_len = len;
  es->hist_pos = len % es->hist_cap;
  NG_CALL(ng_state_length(st, "algo/histbest", &len));
  if (len > es->stag_cap) return ng_error(NG_EMISMATCH, "cmaes: saved stagnation history too long");
  NG_CALL(reserve_stagnation(es, len));
  NG_CALL(ng_state_get_f64(st, "algo/histbest", es->histbest, len));
  NG_CALL(ng_state_get_f64(st, "algo/histmedian", es->histmedian, len));
  es->stag_len = len;
  NG_CALL(ng_state_get_scalar(st, "algo/best_f", &es->best_f));
  int64_t c[2];
  NG_CALL(ng_state_get_i64(st, "algo/stop_counters", c, 2));
  es->best_iter = c[0];
  es->flat_count = c[1];
  return NG_OK;
}
