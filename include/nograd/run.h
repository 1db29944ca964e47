/* The run policy every command shares: how a run is laid out on the ranks and how it survives.
 *
 * minimize, glue and retrofit run their optimizer through ng_run_engine, which applies one policy: the rank
 * grid (ng_run_groups), checkpoints (--checkpoint, --checkpoint-every), resume from a checkpoint of the same
 * configuration on any number of ranks (--resume, --force), signals (SIGTERM, SIGUSR1, SIGINT: finish the
 * generation, checkpoint, stop with res->signalled so the command exits 3), the progress and log lines, and
 * the provenance in /meta (program version, command line, configuration, optimizer, ranks, groups, and the
 * checksums of the input files). A command's own step loop (glue's fullgrad) gets the same checkpoint
 * schedule (ng_run_checkpoint_due) and signal handling (ng_run_signals_*). */
#ifndef NOGRAD_RUN_H
#define NOGRAD_RUN_H

#include <mpi.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/ckpt.h"
#include "nograd/engine.h"
#include "nograd/export.h"
#include "nograd/objective.h"
#include "nograd/opt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_RUN_CHECKPOINT_SECS 60.0 /* the default checkpoint interval when neither count nor time is set */
#define NG_RUN_PROGRESS_SECS 1.0    /* at most one progress line per this many seconds */
#define NG_RUN_STALL_SECS 300.0     /* --stall-timeout's default: name the ranks a generation waits for */
#define NG_RUN_STALL_ABORT_SECS 3600.0 /* --stall-abort's default: end a stalled run with its checkpoint */

typedef struct {
  int groups;              /* G: population groups (P/G data shards); 0: ng_run_groups' default */
  int bcast;               /* ng_bcast_mode (0: auto) */
  const char *checkpoint;  /* rank 0 writes the run's state here; NULL: no checkpoints */
  int64_t checkpoint_gens; /* every K generations (or steps) ... */
  double checkpoint_secs;  /* ... and/or every T seconds; both 0: every NG_RUN_CHECKPOINT_SECS */
  const char *resume;      /* a checkpoint to continue, or NULL */
  bool force;              /* resume even when the configuration differs */
  const char *command_line;
  FILE *progress;          /* rank 0: progress lines; NULL: quiet */
  FILE *log;               /* rank 0: one JSON line per generation; NULL: none */
  bool handle_signals;     /* SIGTERM, SIGUSR1, SIGINT: finish the generation, checkpoint, stop */
  double stall_secs;       /* name the ranks a generation has waited for this long (0: never) ... */
  double stall_abort_secs; /* ... and end the run with its checkpoint and exit 1 past this (0: never) */
} ng_run_policy;

/* What one command's run is, beside its optimizer and objective. */
typedef struct {
  const char *config;        /* "key=value\n" lines that shape the trajectory: a resume must match */
  const char *budget;        /* "key=value\n" lines a resume may change (may be NULL) */
  int64_t max_evals;         /* for the time-left estimate of the progress line (0: unknown) */
  const char *const *inputs; /* files the run reads: /meta records their checksums */
  size_t ninputs;            /*   (may be 0) */
  int (*on_generation)(void *ctx, const ng_opt *opt); /* rank 0, after each tell (see ng_engine_config) */
  void *on_generation_ctx;
} ng_run_spec;

/* The grid for P ranks and nchunks data chunks: `requested` when it is > 0 (NG_EINVAL when it does not divide
 * P, naming --groups), else the fewest groups that give every data shard a chunk (G = 1, pure data
 * parallelism, when there are at least P chunks; G = P for a one-chunk objective). Not collective. */
NG_EXPORT int ng_run_groups(int requested, int P, size_t nchunks, int *groups);

/* Rank 0: reads checkpoint `path` written with the same configuration text (else NG_EMISMATCH names the first
 * line that differs and suggests --force, unless force): its /optimizer into state (empty on entry) and its
 * history rows into *history (empty on entry). For a command's own loop (glue's fullgrad). Errors name the
 * file: those of ng_ckpt_read. Not collective. */
NG_EXPORT int ng_run_load(const char *path, const char *config, bool force, ng_state *state,
                          ng_history *history);

/* Rank 0: continues from checkpoint `path` written with the same configuration text (else NG_EMISMATCH names
 * the first line that differs and suggests --force, unless force) and the same optimizer (name and
 * dimension, always): loads the optimizer's state into opt and the history rows into *history (empty on
 * entry). Errors name the file: those of ng_ckpt_read and ng_opt_load. Not collective. */
NG_EXPORT int ng_run_resume(const char *path, const char *config, bool force, ng_opt *opt,
                            ng_history *history);

/* Runs opt on obj through the engine under the policy. Collective over comm: rank 0 passes its set-up
 * optimizer and history table (filled from policy->resume first, if given), the other ranks NULL for both.
 * Every rank returns the same status (rank 0 holds the message): NG_EINVAL (the grid), the errors of
 * ng_run_resume, ng_engine_run's. res->signalled says the run stopped for a signal after its checkpoint. */
NG_EXPORT int ng_run_engine(MPI_Comm comm, const ng_run_policy *policy, const ng_run_spec *spec, ng_opt *opt,
                            const ng_objective *obj, ng_history *history, ng_engine_result *res);

/* The /meta of a run's checkpoints under the policy (what ng_run_engine writes), with the checksums of
 * spec->inputs, which ng_run_meta_free releases. Rank 0 only (it reads the input files). NG_EIO names an
 * input file that cannot be read; NG_ENOMEM. Not collective. */
NG_EXPORT int ng_run_meta(const ng_run_policy *policy, const ng_run_spec *spec, const char *optimizer,
                          int ranks, int groups, ng_ckpt_meta *meta);
NG_EXPORT void ng_run_meta_free(ng_ckpt_meta *meta);

/* Whether a checkpoint is due at step `step` (generations or steps), given the step and time of the last one
 * (time from ng_time_now). */
NG_EXPORT bool ng_run_checkpoint_due(const ng_run_policy *policy, int64_t step, int64_t last_step,
                                     double last_time);

/* A command's own step loop: install the policy's signal handling (nothing without handle_signals), and ask
 * after each step whether any rank received a signal; ng_run_signals_poll is collective and returns the
 * same signal number (or 0) on every rank. */
typedef struct ng_run_signals ng_run_signals;
NG_EXPORT int ng_run_signals_start(const ng_run_policy *policy, ng_run_signals **out);
NG_EXPORT int ng_run_signals_poll(MPI_Comm comm, const ng_run_signals *s, int *signal);
NG_EXPORT void ng_run_signals_stop(ng_run_signals **s);

#ifdef __cplusplus
}
#endif
#endif
