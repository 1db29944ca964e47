/* The generation loop over MPI (see include/nograd/engine.h for the grid, and protocol.h for the messages).
 *
 * Rank 0 is the controller and a worker too. Every generation is: ask (rank 0), broadcast (explicit
 * candidates or the seeded description), evaluate (every rank, its chunks x its candidates, chunk-outer),
 * gather the partials (w doubles per candidate and chunk: the (sum, count) pair, or the objective's nstats)
 * and one trailer per rank, and tell (rank 0), which also writes the history row, the progress and log
 * lines, and the checkpoint when one is due. Errors and signals travel in the trailers,
 * so every rank leaves the loop at the same generation with the same status: nothing waits forever. */
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
#include "linalg/linalg.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/timer.h"

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

/* Rank 0 collects the messages of the failing ranks listed in `trailers` (NULL on other ranks) and keeps the
 * lowest one's; failing ranks send theirs. Returns the lowest failing rank's status (on rank 0). */
static int forward_errors(MPI_Comm comm, int rank, int size, int my_status, const ng_gen_trailer *trailers) {
  char msg[NG_ERRMSG_LEN];
  if (rank != 0) {
    if (my_status != NG_OK) {
      snprintf(msg, sizeof msg, "%s", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(my_status));
      MPI_Send(msg, NG_ERRMSG_LEN, MPI_CHAR, 0, NG_TAG_ERROR, comm);
    }
    return my_status;
  }
  int first = my_status;
  char first_msg[NG_ERRMSG_LEN];
  snprintf(first_msg, sizeof first_msg, "%s", ng_errmsg());
  for (int r = 1; r < size; r++) {
    if (trailers[r].status == NG_OK) continue;
    MPI_Recv(msg, NG_ERRMSG_LEN, MPI_CHAR, r, NG_TAG_ERROR, comm, MPI_STATUS_IGNORE);
    msg[NG_ERRMSG_LEN - 1] = '\0';
    if (first == NG_OK) {
      first = trailers[r].status;
      ng_error(first, "rank %d: %s", r, msg);
    }
  }
  if (my_status != NG_OK) ng_error(my_status, "%s", first_msg);
  return first;
}

int ng_engine_agree(MPI_Comm comm, int status) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  ng_gen_trailer mine = {status, 0}, *all = rank == 0 ? malloc((size_t)size * sizeof *all) : NULL;
  if (rank == 0 && !all) MPI_Abort(comm, 1); /* cannot even agree on failing */
  MPI_Gather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, 0, comm);
  int st = forward_errors(comm, rank, size, status, all);
  free(all);
  int agreed = st;
  MPI_Bcast(&agreed, 1, MPI_INT, 0, comm);
  return agreed;
}

typedef struct {
  MPI_Comm comm;
  int rank, size, groups, shards, group, shard;
  const ng_objective *obj;
  const ng_engine_config *cfg;
  ng_opt *opt;
  size_t n, cap;
  size_t w;        /* doubles in one partial: obj->nstats, or 2 for the (sum, count) pair */
  double *x;       /* lambda x n candidates (rank 0: all; others: theirs, at their offset) */
  double *part;    /* this rank's partials: candidate-major, w doubles per (candidate, chunk) */
  double *batch;   /* eval_batch: the sums and counts of one chunk (2 x lambda) */
  ng__reduce red;  /* the chunk reduction: every rank's partials on rank 0, summed in chunk order */
  ng__watch watch; /* the waits for the other ranks, with the stall limits */
  double *acc;     /* rank 0: w doubles, one candidate's partials summed over the chunks */
  double *loss;    /* rank 0: lambda losses */
  ng_gen_trailer *trailers;
  /* seeded mode: what the ranks keep between generations */
  double *mean, *factor, *lo, *hi;
  size_t factor_cap;
  int64_t factor_version; /* of `factor`; -1: none */
  bool have_bounds;
  /* rank 0 bookkeeping */
  double t_start, last_progress, last_checkpoint;
  int64_t last_checkpoint_gen, bytes_total, checkpoints;
  double eigen_before;
} engine;

static int grow(engine *e, size_t lambda) {
  NG_CALL(ng__reduce_plan(&e->red, lambda));
  if (lambda <= e->cap) return NG_OK;
  size_t n = e->n, nch = e->obj->nchunks, w = e->w;
  free(e->x);
  free(e->part);
  free(e->loss);
  free(e->batch);
  e->x = malloc(lambda * n * sizeof *e->x);
  e->part = malloc(w * lambda * nch * sizeof *e->part);
  e->batch = malloc(2 * lambda * sizeof *e->batch);
  e->loss = e->rank == 0 ? malloc(lambda * sizeof *e->loss) : NULL;
  e->cap = lambda;
  if (!e->x || !e->part || !e->batch || (e->rank == 0 && !e->loss))
    return ng_error(NG_ENOMEM, "out of memory for %zu candidates of dimension %zu", lambda, n);
  return NG_OK;
}

/* Rank 0: the header of the next generation (after ask), choosing the broadcast mode. */
static void make_header(engine *e, size_t lambda, ng_gen_header *h, ng_sampler *s) {
  ng_opt_info in;
  ng_opt_get_info(e->opt, &in);
  ng_opt_sampler(e->opt, s);
  memset(h, 0, sizeof *h);
  h->status = NG_HDR_CONTINUE;
  h->lambda = (int64_t)lambda;
  h->generation = in.generation;
  bool can_seed = s->kind != NG_SAMPLER_EXPLICIT;
  ng_bcast_mode mode = e->cfg->bcast;
  h->seeded = can_seed && (mode == NG_BCAST_SEEDED ||
                           (mode == NG_BCAST_AUTO && e->size > 1 && lambda * e->n > NG_BCAST_AUTO_DOUBLES));
  if (h->seeded) {
    h->kind = s->kind;
    h->seed = s->seed;
    h->sigma = s->sigma;
    h->gaussian = s->gaussian;
    h->center = (int64_t)s->center;
    h->factor_version = s->factor_version;
    h->factor_len = s->factor_len && s->factor_version != e->factor_version ? (int64_t)s->factor_len : 0;
    h->bounds = s->lo && !e->have_bounds;
  }
}

static int broadcast(engine *e, ng_gen_header *h, const ng_sampler *s, int64_t *bytes) {
  /* every broadcast under the watch: a stopped rank may hold the root of one too (a segmented or pipelined
   * algorithm needs the receivers), and then the stall must still be seen */
  ng__watch *w = &e->watch;
  NG_CALL(ng__watch_bcast(w, h, sizeof *h, MPI_BYTE, "broadcast of the generation header"));
  e->watch.generation = h->generation;
  *bytes = (int64_t)sizeof *h;
  if (h->status != NG_HDR_CONTINUE) return NG_OK;
  size_t n = e->n, lambda = (size_t)h->lambda; /* known on every rank only now */
  NG_CALL(grow(e, lambda));
  if (!h->seeded) {
    NG_CALL(ng__watch_bcast(w, e->x, (int)(lambda * n), MPI_DOUBLE, "broadcast of the candidates"));
    *bytes += (int64_t)(lambda * n * sizeof(double));
    return NG_OK;
  }
  if (e->rank == 0) memcpy(e->mean, s->mean, n * sizeof *e->mean);
  NG_CALL(ng__watch_bcast(w, e->mean, (int)n, MPI_DOUBLE, "broadcast of the mean"));
  *bytes += (int64_t)(n * sizeof(double));
  if (h->factor_len > 0) {
    size_t len = (size_t)h->factor_len;
    if (len > e->factor_cap) {
      free(e->factor);
      e->factor = malloc(len * sizeof *e->factor);
      e->factor_cap = len;
      if (!e->factor) return ng_error(NG_ENOMEM, "out of memory for a sampling factor of %zu values", len);
    }
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

/* Every rank: regenerate (seeded, not rank 0) and evaluate this rank's candidates on this rank's chunks,
 * chunk-outer so that a chunk's rows serve all the candidates while they are in cache. A partial depends on
 * its candidate and chunk only, and its slot in `part` (candidate-major) on neither loop, so the order
 * changes no bit of what is gathered. */
static int evaluate(engine *e, const ng_gen_header *h) {
  size_t n = e->n, lambda = (size_t)h->lambda, cf, cc, hf, hc;
  ng__reduce_share(&e->red, &cf, &cc, &hf, &hc);
  if (cc == 0 || hc == 0) return NG_OK;
  if (h->seeded && e->rank != 0) {
    ng_sampler s = {.kind = (ng_sampler_kind)h->kind,
                    .n = n,
                    .lambda = lambda,
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
    NG_CALL(ng_sampler_generate(&s, cf, cc, e->x + cf * n));
  }
  const ng_objective *o = e->obj;
  size_t w = e->w;
  if (!o->nstats && o->eval_batch) { /* one call per chunk for all of this rank's candidates */
    double *sums = e->batch, *counts = e->batch + cc;
    for (size_t c = 0; c < hc; c++) {
      NG_CALL(o->eval_batch(o->ctx, e->x + cf * n, cc, (uint64_t)h->generation, cf, hf + c, sums, counts));
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
      const double *x = e->x + (cf + k) * n;
      memset(p, 0, w * sizeof *p);
      if (o->nstats)
        NG_CALL(o->eval_stats(o->ctx, x, (uint64_t)h->generation, cf + k, hf + c, p));
      else
        NG_CALL(o->eval(o->ctx, x, (uint64_t)h->generation, cf + k, hf + c, &p[0], &p[1]));
    }
  return NG_OK;
}

/* Gathers the trailers and the partials; rank 0 adds each candidate's chunks element-wise in chunk order and
 * turns the sums into its loss. */
static int reduce(engine *e, const ng_gen_header *h, int my_status, int *signal_seen) {
  size_t lambda = (size_t)h->lambda;
  ng_gen_trailer mine = {my_status, (int32_t)ng__signal_pending()};
  MPI_Request req;
  const char *what = "gathering the status of the ranks";
  if (e->watch.active) { /* where the ranks wait for the slowest one */
    NG_CALL(ng__mpi_status(
        MPI_Igather(&mine, sizeof mine, MPI_BYTE, e->trailers, sizeof mine, MPI_BYTE, 0, e->comm, &req),
        what));
    NG_CALL(ng__watch_wait(&e->watch, &req, what));
  } else {
    NG_CALL(ng__mpi_status(
        MPI_Gather(&mine, sizeof mine, MPI_BYTE, e->trailers, sizeof mine, MPI_BYTE, 0, e->comm), what));
  }
  NG_CALL(ng__reduce_gather(&e->red, e->part, &e->watch));
  int st = forward_errors(e->comm, e->rank, e->size, my_status, e->trailers);
  if (e->rank != 0) return st;
  *signal_seen = 0;
  for (int r = 0; r < e->size; r++)
    if (e->trailers[r].signal && !*signal_seen) *signal_seen = e->trailers[r].signal;
  if (st != NG_OK) return st;
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

static void log_line(engine *e, const double *row, bool seeded) {
  FILE *f = e->cfg->log;
  if (!f) return;
  const char *const *cols = ng_history_columns();
  fputc('{', f);
  for (int c = 0; c < NG_HISTORY_NCOLS; c++) {
    fprintf(f, "%s\"%s\":", c ? "," : "", cols[c]);
    ng_json_number(f, row[c]);
  }
  fprintf(f, ",\"broadcast\":\"%s\"}\n", seeded ? "seeded" : "explicit");
  fflush(f);
}

/* Rank 0 after the reduction: tell, history, progress, log, checkpoint. */
static int conclude(engine *e, const ng_gen_header *h, const double *times, int64_t bytes, bool signalled) {
  double t0 = ng_time_now();
  NG_CALL(ng_opt_tell(e->opt, e->loss));
  double t_update = ng_time_now() - t0;
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
  row[NG_HIST_t_update] = t_update;
  row[NG_HIST_t_eigen] = in.seconds_eigen - e->eigen_before;
  row[NG_HIST_bytes] = (double)bytes;
  e->eigen_before = in.seconds_eigen;
  if (e->cfg->history) NG_CALL(ng_history_append(e->cfg->history, row));
  if (e->cfg->on_generation) NG_CALL(e->cfg->on_generation(e->cfg->on_generation_ctx, e->opt));
  bool done = in.stop != NG_STOP_NONE;
  progress_line(e, &in, done || signalled);
  log_line(e, row, h->seeded);
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
  free(e->part);
  free(e->batch);
  ng__reduce_free(&e->red);
  ng__watch_free(&e->watch);
  free(e->acc);
  free(e->loss);
  free(e->trailers);
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
  e.mean = malloc(e.n * sizeof *e.mean);
  e.lo = malloc(e.n * sizeof *e.lo);
  e.hi = malloc(e.n * sizeof *e.hi);
  e.trailers = malloc((size_t)e.size * sizeof *e.trailers);
  e.acc = e.rank == 0 ? malloc(e.w * sizeof *e.acc) : NULL;
  st = ng__reduce_init(&e.red, e.comm, e.groups, obj->nchunks, e.w);
  int wst = ng__watch_init(&e.watch, e.comm, cfg->stall_secs, cfg->stall_abort_secs, cfg->progress);
  if (st == NG_OK) st = wst;
  e.watch.on_abort = stall_checkpoint;
  e.watch.ctx = &e;
  if (st == NG_OK && (!e.mean || !e.lo || !e.hi || !e.trailers || (e.rank == 0 && !e.acc)))
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

  int signal_seen = 0;
  for (;;) {
    ng_gen_header h;
    ng_sampler s;
    double times[4] = {0}, t0 = ng_time_now();
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
        st = grow(&e, lambda);
        if (st == NG_OK) st = ng_opt_ask(opt, e.x);
        if (st == NG_OK)
          make_header(&e, lambda, &h, &s);
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
    int rst = reduce(&e, &h, my_status, &signal_seen);
    times[3] = ng_time_now() - t0;
    if (e.rank == 0) {
      st = rst;
      if (st == NG_OK) st = conclude(&e, &h, times, bytes, signal_seen != 0);
    } else if (my_status != NG_OK) {
      st = my_status; /* keep serving until rank 0 says stop: it knows of this failure */
    }
    if (e.rank == 0) e.bytes_total += bytes;
  }
  ng__signals_restore(&saved);
  res->bytes = e.bytes_total;
  res->checkpoints = e.checkpoints;
  res->seconds = ng_time_now() - e.t_start;
  engine_free(&e);
  return st;
}
