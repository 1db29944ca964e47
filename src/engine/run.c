/* The run policy (see nograd/run.h): the grid, resume, checkpoint schedule, signals and provenance that
 * minimize, glue and retrofit share, so that a preempted run of any of them continues to the same bits. */
#include "nograd/run.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "engine/reduce.h"
#include "engine/kernels.h"
#include "engine/run_impl.h"
#include "engine/signals.h"
#include "nograd/error.h"
#include "nograd/timer.h"

int ng_run_groups(int requested, int P, size_t nchunks, int *groups) {
  if (requested > 0) {
    if (P % requested != 0)
      return ng_error(NG_EINVAL, "--groups %d does not divide the %d ranks (P must be a multiple of G)",
                      requested, P);
    *groups = requested;
    return NG_OK;
  }
  *groups = P;
  for (int g = 1; g <= P; g++)
    if (P % g == 0 && (size_t)(P / g) <= nchunks) {
      *groups = g;
      break;
    }
  return NG_OK;
}

/* The first line where two configuration texts differ, as "'key=a' there, 'key=b' here". */
static void first_difference(const char *a, const char *b, char *out, size_t len) {
  while (*a || *b) {
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
    if (la != lb || strncmp(a, b, la) != 0) {
      snprintf(out, len, "'%.*s' there, '%.*s' here", (int)(la > 200 ? 200 : la), a,
               (int)(lb > 200 ? 200 : lb), b);
      return;
    }
    a += la + (ea ? 1 : 0);
    b += lb + (eb ? 1 : 0);
  }
  snprintf(out, len, "(no difference)");
}

int ng_run_load(const char *path, const char *config, bool force, ng_state *state, ng_history *history) {
  ng_ckpt_info info = {0};
  int rc = ng_ckpt_read(path, &info, state, history, NULL, NULL, NULL, NULL);
  const char *saved = info.config ? info.config : "";
  if (rc == NG_OK) ng__kernels_compare_saved(path, info.blas_core, info.cpu_model, stderr);
  if (rc == NG_OK && strcmp(saved, config) != 0 && !force) {
    char diff[512];
    first_difference(saved, config, diff, sizeof diff);
    rc = ng_error(
        NG_EMISMATCH,
        "--resume %s: the checkpoint was written with another configuration: %s (use --force to resume "
        "it anyway)",
        path, diff);
  }
  ng_ckpt_info_free(&info);
  return rc;
}

int ng_run_resume(const char *path, const char *config, bool force, ng_opt *opt, ng_history *history) {
  ng_state *st = NULL;
  int rc;
  NG_TRY(rc, ng_state_create(&st), out);
  NG_TRY(rc, ng_run_load(path, config, force, st, history), out);
  rc = ng_opt_load(opt, st);
  if (rc != NG_OK) {
    char msg[600];
    snprintf(msg, sizeof msg, "%s", ng_errmsg());
    rc = ng_error(rc, "--resume %s: %s", path, msg);
  }
out:
  ng_state_destroy(&st);
  return rc;
}

int ng_run_meta(const ng_run_policy *policy, const ng_run_spec *spec, const char *optimizer, int ranks,
                int groups, ng_ckpt_meta *meta) {
  memset(meta, 0, sizeof *meta);
  meta->program_version = NOGRAD_VERSION;
  meta->command_line = policy->command_line ? policy->command_line : "";
  meta->config = spec->config ? spec->config : "";
  meta->budget = spec->budget ? spec->budget : "";
  meta->optimizer = optimizer;
  meta->ranks = ranks;
  meta->groups = groups;
  const ng__kernels *k = ng__kernels_local();
  meta->blas_core = k->blas_core;
  meta->blas_config = k->blas_config;
  meta->cpu_model = k->cpu_model;
  if (!spec->ninputs) return NG_OK;
  char(*sums)[17] = malloc(spec->ninputs * sizeof *sums);
  const char **ptrs = malloc(spec->ninputs * sizeof *ptrs);
  if (!sums || !ptrs) {
    free(sums);
    free(ptrs);
    return ng_error(NG_ENOMEM, "out of memory for the checksums of %zu input files", spec->ninputs);
  }
  for (size_t i = 0; i < spec->ninputs; i++) {
    int st = ng_file_checksum(spec->inputs[i], sums[i]);
    if (st != NG_OK) {
      free(sums);
      free(ptrs);
      return st;
    }
    ptrs[i] = sums[i];
  }
  meta->input_files = spec->inputs;
  meta->input_checksums = ptrs;
  meta->ninputs = spec->ninputs;
  return NG_OK;
}

void ng_run_meta_free(ng_ckpt_meta *meta) {
  if (meta->ninputs && meta->input_checksums) {
    free((void *)meta->input_checksums[0]); /* the one block of sums that ng_run_meta allocated */
    free((void *)meta->input_checksums);
  }
  meta->input_checksums = NULL;
  meta->ninputs = 0;
}

bool ng_run_checkpoint_due(const ng_run_policy *policy, int64_t step, int64_t last_step, double last_time) {
  int64_t gens = policy->checkpoint_gens;
  double secs = policy->checkpoint_secs;
  if (gens <= 0 && secs <= 0) secs = NG_RUN_CHECKPOINT_SECS;
  return (gens > 0 && step - last_step >= gens) || (secs > 0 && ng_time_now() - last_time >= secs);
}

int ng_run_engine(MPI_Comm comm, const ng_run_policy *policy, const ng_run_spec *spec, ng_opt *opt,
                  const ng_objective *obj, ng_history *history, ng_engine_result *res) {
  int rank, size, groups = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  memset(res, 0, sizeof *res);
  ng_engine_config ec = {0};
  if (size > 1 && ng__kernels_check(comm, rank == 0 ? stderr : NULL) < 0)
    return ng_error(NG_EMPI, "the start-up check of the ranks' kernels failed (MPI_Gather)");
  int st = ng_run_groups(policy->groups, size, obj->nchunks, &groups);
  if (st == NG_OK && rank == 0 && policy->resume)
    st = ng_run_resume(policy->resume, spec->config ? spec->config : "", policy->force, opt, history);
  if (st == NG_OK && rank == 0 && policy->checkpoint)
    st = ng_run_meta(policy, spec, ng_opt_name(opt), size, groups, &ec.meta);
  st = ng_engine_agree(comm, st);
  if (st == NG_OK) {
    ec.groups = groups;
    ec.bcast = (ng_bcast_mode)policy->bcast;
    ec.checkpoint = policy->checkpoint;
    ec.checkpoint_gens = policy->checkpoint_gens;
    ec.checkpoint_secs = policy->checkpoint_secs;
    if (policy->checkpoint && ec.checkpoint_gens <= 0 && ec.checkpoint_secs <= 0)
      ec.checkpoint_secs = NG_RUN_CHECKPOINT_SECS;
    ec.history = history;
    ec.progress = policy->progress;
    ec.progress_secs = NG_RUN_PROGRESS_SECS;
    ec.log = policy->log;
    ec.max_evals = spec->max_evals;
    ec.handle_signals = policy->handle_signals;
    ec.stall_secs = policy->stall_secs;
    ec.stall_abort_secs = policy->stall_abort_secs;
    ec.on_generation = spec->on_generation;
    ec.on_generation_ctx = spec->on_generation_ctx;
    st = ng_engine_run(comm, opt, obj, &ec, res);
  }
  ng_run_meta_free(&ec.meta);
  return st;
}

struct ng_run_signals {
  ng__signals saved;
};

int ng_run_signals_start(const ng_run_policy *policy, ng_run_signals **out) {
  *out = calloc(1, sizeof **out);
  if (!*out) return ng_error(NG_ENOMEM, "out of memory");
  if (policy->handle_signals) ng__signals_install(&(*out)->saved);
  return NG_OK;
}

int ng_run_signals_poll(MPI_Comm comm, const ng_run_signals *s, int *signal) {
  int mine = s && s->saved.installed ? ng__signal_pending() : 0;
  return ng__mpi_status(MPI_Allreduce(&mine, signal, 1, MPI_INT, MPI_MAX, comm), "agreeing on signals");
}

void ng_run_signals_stop(ng_run_signals **s) {
  if (!*s) return;
  ng__signals_restore(&(*s)->saved);
  free(*s);
  *s = NULL;
}

void ng__run_log(FILE *f, const double *row, const char *mode) {
  const char *const *cols = ng_history_columns();
  fputc('{', f);
  for (int c = 0; c < NG_HISTORY_NCOLS; c++) {
    fprintf(f, "%s\"%s\":", c ? "," : "", cols[c]);
    ng_json_number(f, row[c]);
  }
  fprintf(f, ",\"broadcast\":\"%s\"}\n", mode);
  fflush(f);
}
