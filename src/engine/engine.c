/* The generation loop over MPI (see include/nograd/engine.h for the grid, and protocol.h for the messages).
 *
 * Rank 0 is the controller and a worker too. Every generation is: ask (rank 0), broadcast (explicit
 * candidates or the seeded description), evaluate (every rank, its chunks x its candidates, chunk-outer),
 * agree on the status (one allreduce: errors and signals), gather the partials (w doubles per candidate and
 * chunk: the (sum, count) pair, or the objective's nstats), and tell (rank 0), which also writes the history
 * row, the progress and log lines, and the checkpoint when one is due. With seeded full CMA-ES the tell is by
 * blocks (opt/tell_dist.h, tell.c): rank 0 samples only its own candidates, broadcasts the ranking, and the
 * ranks that sampled the population compute the update's shares, which add up a tree to rank 0. Nothing rank
 * 0 does in a generation loops over the ranks. Errors and signals travel in the status, so every rank leaves
 * the loop at the same generation with the same status: nothing waits forever. */
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "engine/protocol.h"
#include "engine/reduce.h"
#include "engine/signals.h"
#include "engine/slices.h"
#include "engine/status.h"
#include "engine/tell.h"
#include "linalg/linalg.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/timer.h"
#include "opt/sampler_impl.h"
#include "opt/tell_dist.h"

const char *ng_bcast_name(ng_bcast_mode mode) {
  switch (mode) {
    case NG_BCAST_AUTO:
      return "auto";
    case NG_BCAST_EXPLICIT:
      return "explicit";
    case NG_BCAST_SEEDED:
      return "seeded";
  }
  return "unknown";
}

int ng_bcast_from_name(const char *name) {
  for (int m = NG_BCAST_AUTO; m <= NG_BCAST_SEEDED; m++)
    if (strcmp(ng_bcast_name((ng_bcast_mode)m), name) == 0) return m;
  return -1;
}

typedef struct {
  MPI_Comm comm;
  int rank, size, groups, shards, group, shard;
  const ng_objective *obj;
  const ng_engine_config *cfg;
  ng_opt *opt;
  size_t n;
  size_t w;      /* doubles in one partial: obj->nstats, or 2 for the (sum, count) pair */
  size_t lambda; /* of the generation under way */
  double *x;     /* candidates [x0, x0 + rows): all of them when they are broadcast (or rank 0 asked them
                  * all); otherwise the whole sampling blocks of this rank's candidates, and in a tell by blocks
                  * also the tell blocks it owns */
  double *Z, *Y; /* tell by blocks: the draws and steps of the same rows */
  size_t x0, rows, x_cap, z_cap, y_cap;
  double *part;  /* this rank's partials: candidate-major, w doubles per (candidate, chunk) */
  double *batch; /* eval_batch: the sums and counts of one chunk (2 x this rank's candidates) */
  size_t part_cap, batch_cap;
  ng__reduce red;      /* the chunk reduction: every rank's partials on rank 0, summed in chunk order */
  ng__watch watch;     /* the waits for the other ranks, with the stall limits */
  ng__teller tell;     /* the tell by blocks */
  ng__slicer sl;       /* the sliced factor (slices.h) */
  int64_t slice_bytes; /* rank 0: what it sent of the factor's slices this generation */
  double *plan;        /* its plan (every rank) */
  double *V, *x_best;  /* rank 0: the sum of the shares, the new best candidate */
  size_t plan_cap;
  double *acc;  /* rank 0: w doubles, one candidate's partials summed over the chunks */
  double *loss; /* rank 0: lambda losses */
  size_t loss_cap;
  /* seeded mode: what the ranks keep between generations */
  unsigned char *hdrbuf; /* the header and the mean, as broadcast */
  double *mean, *factor, *lo, *hi;
  size_t factor_cap;
  int64_t factor_version; /* of `factor`; -1: none */
  bool have_bounds;
  /* rank 0 bookkeeping */
  double t_start, last_progress, last_checkpoint;
  int64_t last_checkpoint_gen, bytes_total, checkpoints;
  double eigen_before;
} engine;

/* The rows this rank holds in a generation of lambda: [*x0, *x0 + *rows). */
static void held_rows(const engine *e, const ng_gen_header *h, size_t *x0, size_t *rows) {
  size_t lambda = (size_t)h->lambda, cf, cc, hf, hc;
  if (h->sliced) { /* a tell by blocks on more than one rank */
    size_t a, end;
    ng__tell_span(&e->tell, lambda, e->rank, &a, &end);
    *x0 = a;
    *rows = end - a;
    return;
  }
  if (!h->seeded || e->rank == 0) { /* broadcast, asked whole on rank 0, or told by blocks on one process */
    *x0 = 0;
    *rows = lambda;
    return;
  }
  ng__reduce_share(&e->red, &cf, &cc, &hf, &hc);
  *x0 = cf;
  *rows = cc;
}

/* The buffers of a generation of lambda (known on every rank once the header arrived). */
static int grow(engine *e, const ng_gen_header *h) {
  size_t lambda = (size_t)h->lambda, n = e->n, cf, cc, hf, hc;
  e->lambda = lambda;
  NG_CALL(ng__reduce_plan(&e->red, lambda));
  ng__reduce_share(&e->red, &cf, &cc, &hf, &hc);
  held_rows(e, h, &e->x0, &e->rows);
  NG_CALL(ng__reserve(&e->x, &e->x_cap, e->rows * n, "the candidates"));
  if (h->tell_blocked) {
    NG_CALL(ng__reserve(&e->Z, &e->z_cap, e->rows * n, "the draws"));
    NG_CALL(ng__reserve(&e->Y, &e->y_cap, e->rows * n, "the steps"));
    NG_CALL(ng__reserve(&e->plan, &e->plan_cap, ng__tell_plan_len(lambda), "the plan of the tell"));
    NG_CALL(ng__tell_reserve(&e->tell, lambda));
  }
  if (h->sliced) NG_CALL(ng__slicer_reserve(&e->sl, lambda, e->rows));
  NG_CALL(ng__reserve(&e->part, &e->part_cap, e->w * cc * hc + 1, "the partials"));
  NG_CALL(ng__reserve(&e->batch, &e->batch_cap, 2 * cc + 1, "the partials"));
  if (e->rank == 0) NG_CALL(ng__reserve(&e->loss, &e->loss_cap, lambda, "the losses"));
  return NG_OK;
}

/* Rank 0: whether this generation's candidates will be regenerated by the ranks (before ask: the tell by
 * blocks needs an ask without candidates). The sampler may still refuse (explicit kind). */
static bool wants_seeded(const engine *e, size_t lambda) {
  ng_bcast_mode mode = e->cfg->bcast;
  return mode == NG_BCAST_SEEDED ||
         (mode == NG_BCAST_AUTO && e->size > 1 && lambda * e->n > NG_BCAST_AUTO_DOUBLES);
}

/* Rank 0: asks for a generation of lambda. Seeded full CMA-ES is told by blocks (*blocked): rank 0 then
 * samples only its own candidates, after the header, as every rank does; otherwise it asks them all. A
 * population too large for the gather of the partials fails here, before any rank has started on it. */
static int ask(engine *e, size_t lambda, bool *blocked) {
  NG_CALL(ng__reduce_plan(&e->red, lambda));
  *blocked = wants_seeded(e, lambda) && ng__opt_tell_blocked(e->opt);
  if (*blocked) return ng__opt_ask_lazy(e->opt);
  NG_CALL(ng__reserve(&e->x, &e->x_cap, lambda * e->n, "the candidates"));
  return ng_opt_ask(e->opt, e->x);
}

/* Rank 0: the header of the next generation (after ask), choosing the broadcast mode. */
static void make_header(engine *e, size_t lambda, bool blocked, ng_gen_header *h, ng_sampler *s) {
  ng_opt_info in;
  ng_opt_get_info(e->opt, &in);
  ng_opt_sampler(e->opt, s);
  memset(h, 0, sizeof *h);
  h->status = NG_HDR_CONTINUE;
  h->lambda = (int64_t)lambda;
  h->generation = in.generation;
  h->seeded = s->kind != NG_SAMPLER_EXPLICIT && wants_seeded(e, lambda);
  h->tell_blocked = blocked;
  if (h->seeded) {
    h->kind = s->kind;
    h->seed = s->seed;
    h->sigma = s->sigma;
    h->gaussian = s->gaussian;
    h->center = (int64_t)s->center;
    h->sliced = blocked && e->size > 1; /* told by blocks: full CMA-ES, whose sampler is GAUSS_FULL */
    h->factor_version = s->factor_version;
    bool kept = h->sliced ? ng__slicer_current(&e->sl, lambda, s->factor_version) /* what the ranks keep */
                          : s->factor_version == e->factor_version;
    h->factor_len = s->factor_len && !kept ? (int64_t)s->factor_len : 0;
    h->bounds = s->lo && !e->have_bounds;
  }
}

static int broadcast(engine *e, ng_gen_header *h, const ng_sampler *s, int64_t *bytes) {
  size_t n = e->n, hlen = sizeof *h + n * sizeof(double);
  unsigned char *buf = e->hdrbuf; /* header and mean, one message */
  if (e->rank == 0) {
    memcpy(buf, h, sizeof *h);
    if (h->status == NG_HDR_CONTINUE && h->seeded)
      memcpy(buf + sizeof *h, s->mean, n * sizeof(double));
    else
      memset(buf + sizeof *h, 0, n * sizeof(double));
  }
  /* every broadcast under the watch: a stopped rank may hold the root of one too (a segmented or pipelined
   * algorithm needs the receivers), and then the stall must still be seen */
  ng__watch *w = &e->watch;
  NG_CALL(ng__watch_bcast(w, buf, (int)hlen, MPI_BYTE, "broadcast of the generation header"));
  memcpy(h, buf, sizeof *h);
  e->watch.generation = h->generation;
  *bytes = (int64_t)hlen;
  if (h->status != NG_HDR_CONTINUE) return NG_OK;
  size_t lambda = (size_t)h->lambda; /* known on every rank only now */
  NG_CALL(grow(e, h));
  if (!h->seeded) {
    NG_CALL(ng__watch_bcast(w, e->x, (int)(lambda * n), MPI_DOUBLE, "broadcast of the candidates"));
    *bytes += (int64_t)(lambda * n * sizeof(double));
    return NG_OK;
  }
  memcpy(e->mean, buf + sizeof *h, n * sizeof *e->mean);
  e->slice_bytes = 0;
  if (h->factor_len > 0 && h->sliced) { /* rank 0 to the keepers of its slices only: not a broadcast */
    NG_CALL(ng__slicer_install(&e->sl, e->rank == 0 ? s->factor : NULL, h->factor_version));
    e->slice_bytes = e->sl.slice_bytes;
  } else if (h->factor_len > 0) {
    size_t len = (size_t)h->factor_len;
    NG_CALL(ng__reserve(&e->factor, &e->factor_cap, len, "the sampling factor"));
    if (e->rank == 0) memcpy(e->factor, s->factor, len * sizeof *e->factor);
    NG_CALL(ng__watch_bcast(w, e->factor, (int)len, MPI_DOUBLE, "broadcast of the sampling factor"));
    *bytes += (int64_t)(len * sizeof(double));
    e->factor_version = h->factor_version;
  }
  if (h->bounds) {
    if (e->rank == 0) {
      memcpy(e->lo, s->lo, n * sizeof *e->lo);
      memcpy(e->hi, s->hi, n * sizeof *e->hi);
    }
    NG_CALL(ng__watch_bcast(w, e->lo, (int)n, MPI_DOUBLE, "broadcast of the bounds"));
    NG_CALL(ng__watch_bcast(w, e->hi, (int)n, MPI_DOUBLE, "broadcast of the bounds"));
    *bytes += (int64_t)(2 * n * sizeof(double));
    e->have_bounds = true;
  }
  return NG_OK;
}

/* The sampler of a seeded generation, as its header and the kept state describe it. */
static ng_sampler sampler_of(const engine *e, const ng_gen_header *h) {
  return (ng_sampler){.kind = (ng_sampler_kind)h->kind,
                      .n = e->n,
                      .lambda = (size_t)h->lambda,
                      .seed = h->seed,
                      .generation = h->generation,
                      .mean = e->mean,
                      .sigma = h->sigma,
                      .factor = e->factor,
                      .factor_len = e->factor_cap,
                      .factor_version = e->factor_version,
                      .lo = e->have_bounds ? e->lo : NULL,
                      .hi = e->have_bounds ? e->hi : NULL,
                      .gaussian = (int)h->gaussian,
                      .center = (size_t)h->center};
}

/* Seeded: this rank's candidates from the header's description. In a tell by blocks every rank (rank 0 too)
 * receives the steps of the rows it holds from the keepers, and an owner of tell blocks draws their draws
 * (on one process it samples them all itself); otherwise rank 0 asked them all and the others regenerate
 * theirs. Either way a candidate has the bits of rank 0's ask. */
static int regenerate(engine *e, const ng_gen_header *h) {
  size_t n = e->n, cf, cc, hf, hc;
  ng__reduce_share(&e->red, &cf, &cc, &hf, &hc);
  ng_sampler s = sampler_of(e, h);
  if (h->sliced) { /* every rank takes part: the keepers send to every rank that holds rows */
    NG_CALL(ng__slicer_steps(&e->sl, &e->tell, &s, e->x0, e->x0 + e->rows, e->Y));
    /* an owner's tell blocks are the rows from the first block start among them to the end (ng__tell_span);
     * the share of a block needs their draws too */
    size_t B = NG_TELL_BLOCK, end = e->x0 + e->rows, b0 = (e->x0 + B - 1) / B * B;
    if (e->shard == 0 && b0 < end) ng_sampler_gauss_draws(&s, b0, end - b0, e->Z + (b0 - e->x0) * n);
    if (cc) ng_sampler_gauss_finish(&s, e->Y + (cf - e->x0) * n, cc, e->x + (cf - e->x0) * n);
    return NG_OK;
  }
  if (!h->seeded || cc == 0 || hc == 0) return NG_OK;
  if (!h->tell_blocked) return e->rank == 0 ? NG_OK : ng_sampler_generate(&s, cf, cc, e->x);
  for (size_t k0 = 0, SB = NG_SAMPLER_BLOCK; k0 < s.lambda; k0 += SB) /* told by blocks on one process */
    ng_sampler_gauss_block(&s, k0, s.lambda - k0 < SB ? s.lambda - k0 : SB, e->Z + k0 * n, e->Y + k0 * n);
  ng_sampler_gauss_finish(&s, e->Y, s.lambda, e->x);
  return NG_OK;
}

/* Every rank: regenerate (seeded) and evaluate this rank's candidates on this rank's chunks, chunk-outer so
 * that a chunk's rows serve all the candidates while they are in cache. A partial depends on its candidate
 * and chunk only, and its slot in `part` (candidate-major) on neither loop, so the order changes no bit of
 * what is gathered. */
static int evaluate(engine *e, const ng_gen_header *h) {
  size_t n = e->n, cf, cc, hf, hc;
  ng__reduce_share(&e->red, &cf, &cc, &hf, &hc);
  if (h->sliced) NG_CALL(regenerate(e, h)); /* every rank, with candidates or not */
  if (cc == 0 || hc == 0) return NG_OK;
  if (!h->sliced) NG_CALL(regenerate(e, h));
  const double *xs = e->x + (cf - e->x0) * n; /* this rank's first candidate */
  const ng_objective *o = e->obj;
  size_t w = e->w;
  if (!o->nstats && o->eval_batch) { /* one call per chunk for all of this rank's candidates */
    double *sums = e->batch, *counts = e->batch + cc;
    for (size_t c = 0; c < hc; c++) {
      NG_CALL(o->eval_batch(o->ctx, xs, cc, (uint64_t)h->generation, cf, hf + c, sums, counts));
      for (size_t k = 0; k < cc; k++) {
        double *p = e->part + w * (k * hc + c);
        p[0] = sums[k];
        p[1] = counts[k];
      }
    }
    return NG_OK;
  }
  for (size_t c = 0; c < hc; c++)
    for (size_t k = 0; k < cc; k++) {
      double *p = e->part + w * (k * hc + c);
      const double *x = xs + k * n;
      memset(p, 0, w * sizeof *p);
      if (o->nstats)
        NG_CALL(o->eval_stats(o->ctx, x, (uint64_t)h->generation, cf + k, hf + c, p));
      else
        NG_CALL(o->eval(o->ctx, x, (uint64_t)h->generation, cf + k, hf + c, &p[0], &p[1]));
    }
  return NG_OK;
}

/* Agrees on the status and signals (one allreduce), then gathers the partials; rank 0 adds each candidate's
 * chunks element-wise in chunk order and turns the sums into its loss. Every rank returns the agreed outcome:
 * NG_OK, or an error (rank 0: the lowest failing rank's; the others: NG_EINTERNAL unless theirs). */
static int reduce(engine *e, const ng_gen_header *h, int my_status, ng__phase_time *eval, int *signal_seen) {
  size_t lambda = (size_t)h->lambda;
  int first;
  int st = ng__status_agree(e->comm, my_status, (int)ng__signal_pending(), eval, &first, signal_seen,
                            &e->watch); /* where the ranks wait for the slowest one */
  if (first != INT_MAX)
    return st != NG_OK ? st : ng_error(NG_EINTERNAL, "rank %d failed this generation", first);
  NG_CALL(st);
  NG_CALL(ng__reduce_gather(&e->red, e->part, &e->watch));
  if (e->rank != 0) return NG_OK;
  /* loss[k] = sum / count for the pair, finish(sums) for stats */
  const ng_objective *o = e->obj;
  for (size_t k = 0; k < lambda; k++) {
    ng__reduce_sum(&e->red, k, e->acc);
    if (o->nstats)
      e->loss[k] = o->finish(o->ctx, e->acc);
    else
      e->loss[k] = e->acc[1] > 0 ? e->acc[0] / e->acc[1] : NAN;
  }
  return NG_OK;
}

/* A generation told by blocks, after the losses: rank 0 ranks them into the plan, the holders and owners of
 * the blocks exchange rows, plan and shares (tell.c), and rank 0 finishes the update. A plan with lambda -1
 * (rank 0 could not begin) ends it on every rank that takes part. */
static int tell_blocked(engine *e, const ng_gen_header *h, int64_t *bytes) {
  int st = NG_OK;
  if (e->rank == 0) {
    st = ng__opt_tell_begin(e->opt, e->loss, e->plan);
    if (st != NG_OK) e->plan[NG_PLAN_LAMBDA] = -1;
  }
  ng_sampler s = sampler_of(e, h);
  NG_CALL(ng__tell_exchange(&e->tell, e->plan, e->x0, e->Z, e->Y, &s, e->V, e->x_best));
  *bytes += e->tell.plan_bytes;
  if (e->rank != 0 || st != NG_OK) return st;
  return ng__opt_tell_end(e->opt, e->V, e->Z, e->Y, e->plan[NG_PLAN_FETCH] >= 0 ? e->x_best : NULL);
}

static int write_checkpoint(engine *e) {
  const ng_engine_config *cfg = e->cfg;
  ng_state *st = NULL;
  int rc;
  NG_TRY(rc, ng_state_create(&st), out);
  NG_TRY(rc, ng_opt_save(e->opt, st), out);
  double best_f;
  const double *best = ng_opt_best(e->opt, &best_f);
  NG_TRY(rc, ng_ckpt_write(cfg->checkpoint, &cfg->meta, st, cfg->history, best, e->n, best_f, NULL), out);
  e->checkpoints++;
  e->last_checkpoint = ng_time_now();
out:
  ng_state_destroy(&st);
  return rc;
}

/* Rank 0, when a stalled generation ends the run (watch.c): the generation is withdrawn and the state before
 * it written to the checkpoint, from which --resume runs it again, to the uninterrupted run's bits. */
static int stall_checkpoint(void *ctx) {
  engine *e = ctx;
  if (!e->cfg->checkpoint) {
    fprintf(stderr, "nograd: no --checkpoint was given: the run's state is not kept\n");
    return NG_OK;
  }
  int st = ng_opt_withdraw(e->opt);
  if (st == NG_EORDER) { /* in the middle of a tell by blocks: the state is half updated, keep the last one */
    ng_error_clear();
    fprintf(stderr,
            "nograd: the stall came in the middle of the update of generation %lld; the checkpoint %s of "
            "generation %lld is kept: continue with --resume %s\n",
            (long long)e->watch.generation, e->cfg->checkpoint, (long long)e->last_checkpoint_gen,
            e->cfg->checkpoint);
    return NG_OK;
  }
  if (st == NG_OK) st = write_checkpoint(e);
  if (st == NG_OK)
    fprintf(stderr,
            "nograd: the checkpoint %s holds the state before generation %lld: continue with --resume %s\n",
            e->cfg->checkpoint, (long long)e->watch.generation, e->cfg->checkpoint);
  else
    fprintf(stderr, "nograd: error: the checkpoint could not be written: %s\n", ng_errmsg());
  return st;
}

static void progress_line(engine *e, const ng_opt_info *in, bool last) {
  double t = ng_time_now();
  if (!e->cfg->progress || (!last && t - e->last_progress < e->cfg->progress_secs)) return;
  e->last_progress = t;
  double rate = (double)in->evaluations / fmax(t - e->t_start, 1e-9);
  fprintf(e->cfg->progress, "gen %6lld  evals %9lld  best %.6e  median %.6e  sigma %.3e  evals/s %.0f",
          (long long)in->generation, (long long)in->evaluations, in->best_f, in->gen_median_f, in->sigma,
          rate);
  if (e->cfg->max_evals > 0 && rate > 0) {
    double left = (double)(e->cfg->max_evals - in->evaluations) / rate;
    fprintf(e->cfg->progress, "  left <= %.0fs", fmax(left, 0.0));
  }
  fputc('\n', e->cfg->progress);
  fflush(e->cfg->progress);
}

/* One JSON line: the history row, the broadcast mode, and the evaluation phase across the ranks (the slowest
 * rank, its seconds and the fastest rank's): a straggler shows there, and in t_reduce, where rank 0 waits.
 * Then what rank 0 sent of a new factor to its keepers (slices.h), which the row's bytes (the broadcast
 * and the plan) leave out. */
static void log_line(engine *e, const double *row, const ng__phase_time *eval, bool seeded) {
  FILE *f = e->cfg->log;
  if (!f) return;
  const char *const *cols = ng_history_columns();
  fputc('{', f);
  for (int c = 0; c < NG_HISTORY_NCOLS; c++) {
    fprintf(f, "%s\"%s\":", c ? "," : "", cols[c]);
    ng_json_number(f, row[c]);
  }
  fprintf(f, ",\"broadcast\":\"%s\",\"slowest_rank\":%d,\"t_evaluate_max\":", seeded ? "seeded" : "explicit",
          eval->slowest);
  ng_json_number(f, eval->max);
  fputs(",\"t_evaluate_min\":", f);
  ng_json_number(f, eval->min);
  fprintf(f, ",\"factor_slice_bytes\":%lld", (long long)e->slice_bytes);
  fputs("}\n", f);
  fflush(f);
}

/* Rank 0 after the tell: history, progress, log, checkpoint. times: sample, broadcast, evaluate, reduce,
 * update (the tell). */
static int conclude(engine *e, const ng_gen_header *h, const double *times, const ng__phase_time *eval,
                    int64_t bytes, bool signalled) {
  ng_opt_info in;
  ng_opt_get_info(e->opt, &in);
  double row[NG_HISTORY_NCOLS] = {0};
  row[NG_HIST_generation] = (double)in.generation;
  row[NG_HIST_evaluations] = (double)in.evaluations;
  row[NG_HIST_best] = in.best_f;
  row[NG_HIST_gen_best] = in.gen_best_f;
  row[NG_HIST_median] = in.gen_median_f;
  row[NG_HIST_sigma] = in.sigma;
  row[NG_HIST_popsize] = (double)h->lambda;
  row[NG_HIST_restarts] = (double)in.restarts;
  row[NG_HIST_t_sample] = times[0];
  row[NG_HIST_t_broadcast] = times[1];
  row[NG_HIST_t_evaluate] = times[2];
  row[NG_HIST_t_reduce] = times[3];
  row[NG_HIST_t_update] = times[4];
  row[NG_HIST_t_eigen] = in.seconds_eigen - e->eigen_before;
  row[NG_HIST_bytes] = (double)bytes;
  e->eigen_before = in.seconds_eigen;
  if (e->cfg->history) NG_CALL(ng_history_append(e->cfg->history, row));
  if (e->cfg->on_generation) NG_CALL(e->cfg->on_generation(e->cfg->on_generation_ctx, e->opt));
  bool done = in.stop != NG_STOP_NONE;
  progress_line(e, &in, done || signalled);
  log_line(e, row, eval, h->seeded);
  if (e->cfg->checkpoint) {
    bool due =
        done || signalled ||
        (e->cfg->checkpoint_gens > 0 && in.generation - e->last_checkpoint_gen >= e->cfg->checkpoint_gens) ||
        (e->cfg->checkpoint_secs > 0 && ng_time_now() - e->last_checkpoint >= e->cfg->checkpoint_secs);
    if (due) {
      NG_CALL(write_checkpoint(e));
      e->last_checkpoint_gen = in.generation;
    }
  }
  return NG_OK;
}

static void engine_free(engine *e) {
  free(e->x);
  free(e->Z);
  free(e->Y);
  free(e->part);
  free(e->batch);
  ng__reduce_free(&e->red);
  ng__teller_free(&e->tell);
  ng__slicer_free(&e->sl);
  free(e->plan);
  free(e->V);
  free(e->x_best);
  ng__watch_free(&e->watch);
  free(e->acc);
  free(e->loss);
  free(e->hdrbuf);
  free(e->mean);
  free(e->factor);
  free(e->lo);
  free(e->hi);
  if (e->comm != MPI_COMM_NULL) MPI_Comm_free(&e->comm);
}

int ng_engine_run(MPI_Comm comm, ng_opt *opt, const ng_objective *obj, const ng_engine_config *cfg,
                  ng_engine_result *res) {
  engine e = {.comm = MPI_COMM_NULL,
              .obj = obj,
              .cfg = cfg,
              .opt = opt,
              .n = obj->n,
              .w = obj->nstats ? obj->nstats : 2,
              .factor_version = -1};
  memset(res, 0, sizeof *res);
  ng_linalg_single_thread();
  int st = NG_OK;
  ng__signals saved = {0};
  NG_CALL(ng__mpi_status(MPI_Comm_dup(comm, &e.comm), "MPI_Comm_dup"));
  MPI_Comm_rank(e.comm, &e.rank);
  MPI_Comm_size(e.comm, &e.size);
  /* configuration errors are found alike by every rank: no communication needed to agree on them */
  if (cfg->groups < 1 || e.size % cfg->groups != 0) {
    st = ng_error(NG_EINVAL, "--groups %d does not divide the %d ranks (P must be a multiple of G)",
                  cfg->groups, e.size);
    engine_free(&e);
    return st;
  }
  if (obj->nchunks < 1 || (obj->nstats == 0 && !obj->eval) ||
      (obj->nstats > 0 && (!obj->eval_stats || !obj->finish))) {
    st = obj->nchunks < 1 ? ng_error(NG_EINVAL, "the objective has no data chunks (nchunks must be >= 1)")
         : obj->nstats    ? ng_error(NG_EINVAL,
                                     "the objective has nstats %zu but no %s: a loss made of stats needs both "
                                        "eval_stats and finish",
                                     obj->nstats, obj->eval_stats ? "finish" : "eval_stats")
                          : ng_error(NG_EINVAL, "the objective has no eval function (and nstats 0)");
    engine_free(&e);
    return st;
  }
  e.groups = cfg->groups;
  e.shards = e.size / e.groups;
  e.group = e.rank / e.shards;
  e.shard = e.rank % e.shards;
  e.hdrbuf = malloc(sizeof(ng_gen_header) + e.n * sizeof(double));
  e.mean = malloc(e.n * sizeof *e.mean);
  e.lo = malloc(e.n * sizeof *e.lo);
  e.hi = malloc(e.n * sizeof *e.hi);
  e.acc = e.rank == 0 ? malloc(e.w * sizeof *e.acc) : NULL;
  if (e.rank == 0 && ng__opt_tell_blocked(opt)) {
    e.V = malloc(ng__tell_width(e.n) * sizeof *e.V);
    e.x_best = malloc(e.n * sizeof *e.x_best);
    if (!e.V || !e.x_best) st = ng_error(NG_ENOMEM, "out of memory for the tell of dimension %zu", e.n);
  }
  ng__teller_init(&e.tell, e.comm, &e.watch, e.groups, e.shards, e.n);
  ng__slicer_init(&e.sl, e.comm, &e.watch, e.n);
  if (st == NG_OK) st = ng__reduce_init(&e.red, e.comm, e.groups, obj->nchunks, e.w);
  int wst = ng__watch_init(&e.watch, e.comm, cfg->stall_secs, cfg->stall_abort_secs, cfg->progress);
  if (st == NG_OK) st = wst;
  e.watch.on_abort = stall_checkpoint;
  e.watch.ctx = &e;
  if (st == NG_OK && (!e.hdrbuf || !e.mean || !e.lo || !e.hi || (e.rank == 0 && !e.acc)))
    st = ng_error(NG_ENOMEM, "out of memory");
  /* load this rank's chunks; agree on success (a rank may fail to read its data) */
  size_t hf, hc;
  ng_engine_block(obj->nchunks, (size_t)e.shards, (size_t)e.shard, &hf, &hc);
  if (st == NG_OK && obj->load) st = obj->load(obj->ctx, hf, hc);
  e.t_start = e.last_progress = e.last_checkpoint = ng_time_now();
  if (e.rank == 0) {
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    e.last_checkpoint_gen = in.generation;
    e.eigen_before = in.seconds_eigen;
    e.last_progress = e.t_start - (cfg->progress_secs > 0 ? cfg->progress_secs : 0);
    /* a first checkpoint before any work: an unwritable path is found now, not after an hour */
    if (st == NG_OK && cfg->checkpoint) st = write_checkpoint(&e);
  }
  st = ng_engine_agree(e.comm, st);
  if (st != NG_OK) {
    engine_free(&e);
    return st;
  }
  if (cfg->handle_signals) ng__signals_install(&saved);
  double t_loop = ng_time_now(); /* res->seconds counts from here */

  int signal_seen = 0;
  for (;;) {
    ng_gen_header h;
    ng_sampler s;
    double times[5] = {0}, t0 = ng_time_now();
    int my_status = NG_OK;
    if (e.rank == 0) {
      memset(&h, 0, sizeof h);
      if (st != NG_OK)
        h.status = NG_HDR_ERROR;
      else if (ng_opt_stop(opt) != NG_STOP_NONE)
        h.status = NG_HDR_DONE;
      else if (signal_seen) {
        h.status = NG_HDR_SIGNAL;
        h.signal = signal_seen;
      }
      if (h.status == NG_HDR_CONTINUE) {
        size_t lambda = ng_opt_popsize(opt);
        bool blocked = false;
        st = ask(&e, lambda, &blocked);
        if (st == NG_OK)
          make_header(&e, lambda, blocked, &h, &s);
        else
          h.status = NG_HDR_ERROR;
      }
    }
    times[0] = ng_time_now() - t0;
    t0 = ng_time_now();
    int64_t bytes = 0;
    int bst = broadcast(&e, &h, &s, &bytes);
    if (bst != NG_OK) {
      /* out of memory for this generation's buffers, or MPI itself failed, on this rank only: the others
       * are already inside the next collective, so the only way to end every rank together is to abort */
      fprintf(stderr, "nograd: rank %d: %s\n", e.rank, ng_errmsg());
      MPI_Abort(e.comm, 1);
    }
    times[1] = ng_time_now() - t0;
    if (h.status != NG_HDR_CONTINUE) {
      if (h.status == NG_HDR_ERROR && e.rank != 0 && st == NG_OK)
        st = ng_error(NG_EINTERNAL, "rank 0 ended the run with an error");
      if (h.status == NG_HDR_SIGNAL) {
        res->signalled = true;
        res->signal = (int)h.signal;
      }
      break;
    }
    t0 = ng_time_now();
    my_status = evaluate(&e, &h);
    times[2] = ng_time_now() - t0;
    t0 = ng_time_now();
    ng__phase_time eval = {.seconds = times[2]};
    int rst = reduce(&e, &h, my_status, &eval, &signal_seen);
    times[3] = ng_time_now() - t0;
    t0 = ng_time_now();
    if (rst == NG_OK && h.tell_blocked) /* every rank saw the same outcome of reduce */
      rst = tell_blocked(&e, &h, &bytes);
    else if (rst == NG_OK && e.rank == 0)
      rst = ng_opt_tell(opt, e.loss);
    times[4] = ng_time_now() - t0;
    if (e.rank == 0) {
      st = rst;
      if (st == NG_OK) st = conclude(&e, &h, times, &eval, bytes, signal_seen != 0);
      e.bytes_total += bytes;
    } else if (my_status != NG_OK) {
      st = my_status; /* keep serving until rank 0 says stop: it knows of this failure */
    } else if (rst != NG_OK && rst != NG_EINTERNAL) {
      st = rst; /* a failure of this rank's own in the tell by blocks */
    }
  }
  ng__signals_restore(&saved);
  res->bytes = e.bytes_total;
  res->checkpoints = e.checkpoints;
  res->seconds = ng_time_now() - t_loop;
  engine_free(&e);
  return st;
}
