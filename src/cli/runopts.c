/* The run-policy options shared by minimize, glue and retrofit (see runopts.h). */
#include "cli/runopts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "nograd/engine.h"

void ng_cli_run_init(ng_cli_run *r) {
  memset(r, 0, sizeof *r);
  r->bcast = "auto";
  r->stall = NG_RUN_STALL_SECS;
  r->stall_abort = NG_RUN_STALL_ABORT_SECS;
}

/* "100" (generations), "30s", "5m", "2h" (time), or "100,30s" (both). */
static int parse_every(const char *spec, int64_t *gens, double *secs) {
  *gens = 0;
  *secs = 0;
  char buf[64];
  if (strlen(spec) >= sizeof buf) return -1;
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *end;
    double v = strtod(tok, &end);
    if (end == tok || !(v > 0) || !isfinite(v)) return -1;
    if (*end == '\0') {
      if (v != floor(v) || v > 9e18) return -1;
      *gens = (int64_t)v;
    } else if (end[1] == '\0' && (*end == 's' || *end == 'm' || *end == 'h')) {
      *secs = v * (*end == 's' ? 1 : *end == 'm' ? 60 : 3600);
    } else {
      return -1;
    }
  }
  return *gens || *secs ? 0 : -1;
}

int ng_cli_run_policy(MPI_Comm comm, const char *command, ng_cli_run *r, bool quiet, int argc, char **argv,
                      FILE *err, ng_run_policy *p) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  memset(p, 0, sizeof *p);
  if (r->groups > (size_t)INT32_MAX) {
    fprintf(err, "nograd %s: --groups: expected at most %d, got %zu\n", command, INT32_MAX, r->groups);
    return NG_EXIT_USAGE;
  }
  p->groups = (int)r->groups;
  int mode = ng_bcast_from_name(r->bcast);
  if (mode < 0) {
    fprintf(err, "nograd %s: --broadcast: expected auto, explicit or seeded, got '%s'\n", command, r->bcast);
    return NG_EXIT_USAGE;
  }
  p->bcast = mode;
  if (r->every && parse_every(r->every, &p->checkpoint_gens, &p->checkpoint_secs) != 0) {
    fprintf(
        err,
        "nograd %s: --checkpoint-every: expected K, Ts, Tm, Th or K,Ts (e.g. 100, 30s, 100,5m), got '%s'\n",
        command, r->every);
    return NG_EXIT_USAGE;
  }
  const double *limits[2] = {&r->stall, &r->stall_abort};
  const char *names[2] = {"--stall-timeout", "--stall-abort"};
  for (int i = 0; i < 2; i++)
    if (!(*limits[i] >= 0) || !isfinite(*limits[i])) {
      fprintf(err, "nograd %s: %s: expected seconds >= 0 (0: off), got %g\n", command, names[i], *limits[i]);
      return NG_EXIT_USAGE;
    }
  p->stall_secs = r->stall;
  p->stall_abort_secs = r->stall_abort;
  p->checkpoint = r->checkpoint;
  p->resume = r->resume;
  p->force = r->force;
  ng_args_command_line(argc, argv, r->command_line, sizeof r->command_line);
  p->command_line = r->command_line;
  p->progress = quiet || r->quiet || rank != 0 ? NULL : stderr;
  p->handle_signals = true;
  int log_ok = 1;
  if (r->log && rank == 0) {
    r->log_file = fopen(r->log, "a");
    log_ok = r->log_file != NULL;
    if (!log_ok) fprintf(err, "nograd %s: --log: cannot open '%s' for writing\n", command, r->log);
  }
  MPI_Bcast(&log_ok, 1, MPI_INT, 0, comm);
  p->log = r->log_file;
  return log_ok ? 0 : NG_EXIT_FAILURE;
}

void ng_cli_run_close(ng_cli_run *r) {
  if (r->log_file) fclose(r->log_file);
  r->log_file = NULL;
}
