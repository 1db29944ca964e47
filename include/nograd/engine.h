/* The distributed engine: rank 0 asks the optimizer, every rank evaluates, rank 0 tells.
 *
 * The P ranks form a grid of G population groups x S data shards (P = G*S; rank r is in group r / S and
 * shard r % S). Group g evaluates a contiguous block of the lambda candidates, shard s a contiguous block of
 * the data chunks; both splits differ by at most one between ranks. An objective evaluates one candidate on
 * one chunk into a partial: a (loss sum, count) pair, or nstats numbers of its own (see ng_objective). Rank 0
 * gathers all partials and adds each candidate's element-wise in chunk order, so its loss is the same bits
 * whatever P and G are. The chunk size belongs to the objective's configuration, never to P. A rank
 * evaluates chunk-outer, candidate-inner (each of its chunks for all of its candidates in turn), so that a
 * chunk's data stays in cache across the candidates of a generation; the partials do not depend on that
 * order.
 *
 * Rank 0 sends each generation either the candidates (explicit mode: 8*lambda*n bytes) or, in seeded mode,
 * the generation number, mean and step size, and the sampling factor only when it changed (8n bytes plus
 * a header), from which every rank regenerates its candidates (ng_sampler_generate). */
#ifndef NOGRAD_ENGINE_H
#define NOGRAD_ENGINE_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/ckpt.h"
#include "nograd/export.h"
#include "nograd/objective.h"
#include "nograd/opt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NG_BCAST_AUTO = 0, NG_BCAST_EXPLICIT = 1, NG_BCAST_SEEDED = 2 } ng_bcast_mode;

/* "auto", "explicit", "seeded"; and back (-1 for an unknown name). */
NG_EXPORT const char *ng_bcast_name(ng_bcast_mode mode);
NG_EXPORT int ng_bcast_from_name(const char *name);

typedef struct {
  int groups;              /* G >= 1; must divide the number of ranks */
  ng_bcast_mode bcast;     /* auto: seeded when lambda*n > NG_BCAST_AUTO_DOUBLES and the optimizer allows */
  const char *checkpoint;  /* rank 0 writes it here; NULL: no checkpoints */
  int64_t checkpoint_gens; /* every K generations (0: not by count) */
  double checkpoint_secs;  /* and/or every T seconds (0: not by time) */
  ng_ckpt_meta meta;       /* what /meta of each checkpoint says */
  ng_history *history;     /* rank 0: the rows so far (from a resumed checkpoint); rows are appended */
  FILE *progress;          /* rank 0: one line per generation, at most every progress_secs; NULL: quiet */
  double progress_secs;
  FILE *log;           /* rank 0: one JSON line per generation; NULL: none */
  int64_t max_evals;   /* for the time-left estimate (0: unknown) */
  bool handle_signals; /* SIGTERM, SIGUSR1, SIGINT: finish the generation, checkpoint, stop */
  /* The stall limits (seconds; 0: off). Rank 0 waits for the other ranks with deadlines: past stall_secs it
   * names the ranks (and hosts) a generation waits for on the progress stream (stderr when progress is
   * NULL), again every stall_secs; past stall_abort_secs it writes the checkpoint of the state before that
   * generation (when `checkpoint` is set) and ends the job: MPI_Abort(comm, 1). Both 0: blocking waits. */
  double stall_secs, stall_abort_secs;
  /* rank 0, after each generation is told and before its checkpoint: e.g. write the best model so far
   * (anytime results). An error stops the run with that error. NULL: none. */
  int (*on_generation)(void *ctx, const ng_opt *opt);
  void *on_generation_ctx;
} ng_engine_config;

#define NG_BCAST_AUTO_DOUBLES 4096 /* up to this many doubles of candidates, explicit mode is cheaper */

typedef struct {
  bool signalled;      /* the run stopped because a signal arrived (a checkpoint was written if configured) */
  int signal;          /* which */
  int64_t bytes;       /* bytes rank 0 broadcast over the run */
  int64_t checkpoints; /* checkpoints written */
  double seconds; /* of the generation loop: the set-up before it (the communicator, loading the data, the
                   * first checkpoint and the ranks' agreement on all that) is not counted */
} ng_engine_result;

/* Runs the optimizer to its stop. Collective over `comm`: rank 0 passes its set-up optimizer, the other ranks
 * NULL; all pass the same objective shape and configuration. NG_EINVAL (on every rank, before any work): a
 * groups count that does not divide the ranks, or an objective without the functions its nstats needs
 * (eval; or eval_stats and finish). Every rank returns the same status: NG_OK when
 * the run stopped for one of its reasons (or a signal: res->signalled), otherwise the first error. Rank 0
 * then holds the error's message, prefixed with the rank it happened on when that is not 0. */
NG_EXPORT int ng_engine_run(MPI_Comm comm, ng_opt *opt, const ng_objective *obj, const ng_engine_config *cfg,
                            ng_engine_result *res);

/* Agrees on a status after a phase that may fail on some ranks: returns on every rank the status of the
 * lowest failing rank (NG_OK if none), and moves that rank's message to rank 0 ("rank R: ..."). Collective.
 */
NG_EXPORT int ng_engine_agree(MPI_Comm comm, int status);

/* What one chunk contributes to a measurement: ADDS w numbers for chunk `chunk` to partial (zero on entry).
 * Returns NG_OK or a status with ng_error's message. */
typedef int (*ng_chunk_fn)(void *ctx, size_t chunk, double *partial);

/* Measures a fixed vector (a model's loss on a dataset, an evaluator's score of one point) data-parallel, the
 * same bits for any number of ranks: rank r computes the partials of its chunks, the block
 * ng_engine_block(nchunks, P, r) (load them beforehand), rank 0 adds them element-wise in chunk order from
 * zero, and every rank receives the w sums in `sum`. This is the reduction of the generation loop with one
 * candidate and one group. Collective; every rank returns the same status: NG_EINVAL (no chunks, w = 0, or
 * more than 2^31 - 1 doubles), NG_ENOMEM, NG_EMPI, or the first failing rank's error from fn, whose message
 * rank 0 then holds ("rank R: ..."). */
NG_EXPORT int ng_engine_measure(MPI_Comm comm, size_t nchunks, size_t w, ng_chunk_fn fn, void *ctx,
                                double *sum);

/* The block [first, first + count) of `total` items that part `index` of `parts` owns (sizes differ by <= 1).
 */
NG_EXPORT void ng_engine_block(size_t total, size_t parts, size_t index, size_t *first, size_t *count);

#ifdef __cplusplus
}
#endif
#endif
