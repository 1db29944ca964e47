/* Private: the run-policy options every optimizing command takes (minimize, glue, retrofit), parsed once.
 *
 *   --groups G  --broadcast MODE  --checkpoint FILE  --checkpoint-every SPEC  --resume FILE  --force
 *   --log FILE  --quiet  --stall-timeout S  --stall-abort S
 *
 * A command puts NG_CLI_RUN_OPTIONS(&r) into its option table and, after parsing, turns them into the
 * library's ng_run_policy with ng_cli_run_policy. */
#ifndef NOGRAD_CLI_RUNOPTS_H
#define NOGRAD_CLI_RUNOPTS_H

#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli/args.h"
#include "nograd/run.h"

typedef struct {
  size_t groups;
  const char *bcast, *checkpoint, *every, *resume, *log;
  bool force, quiet;
  double stall, stall_abort; /* --stall-timeout, --stall-abort (seconds; 0: off) */
  FILE *log_file;            /* rank 0: --log, opened by ng_cli_run_policy */
  char command_line[4096];   /* for /meta */
} ng_cli_run;

#define NG_CLI_STR_(x) #x
#define NG_CLI_STR(x) NG_CLI_STR_(x)

/* The table entries; `r` must point to an ng_cli_run that lives as long as the table. */
/* clang-format off */
#define NG_CLI_RUN_OPTIONS(r) \
  {"--groups", NG_ARG_POSINT, &(r)->groups, "G", \
   "population groups: the P ranks form G groups x P/G data shards (default: the fewest groups that give " \
   "every shard a chunk)", false, true}, \
  {"--broadcast", NG_ARG_STRING, &(r)->bcast, "MODE", \
   "auto (seeded when lambda*n > 4096 on more than one rank), explicit (the candidates) or seeded"}, \
  {"--checkpoint", NG_ARG_STRING, &(r)->checkpoint, "FILE", \
   "write the run's state to FILE (HDF5) as it goes, FILE.prev kept"}, \
  {"--checkpoint-every", NG_ARG_STRING, &(r)->every, "SPEC", \
   "K generations, Ts (or Tm, Th) of time, or both as K,Ts (default every " \
   NG_CLI_STR(NG_RUN_CHECKPOINT_SECS) " s)"}, \
  {"--resume", NG_ARG_STRING, &(r)->resume, "FILE", \
   "continue the run saved in checkpoint FILE, on any number of ranks"}, \
  {"--force", NG_ARG_FLAG, &(r)->force, NULL, "resume even when the configuration differs"}, \
  {"--log", NG_ARG_STRING, &(r)->log, "FILE", "rank 0 appends one JSON line per generation to FILE"}, \
  {"--quiet", NG_ARG_FLAG, &(r)->quiet, NULL, "no progress lines"}, \
  {"--stall-timeout", NG_ARG_DOUBLE, &(r)->stall, "S", \
   "name the ranks (and hosts) a generation has waited S seconds for, again every S s (0: off)"}, \
  {"--stall-abort", NG_ARG_DOUBLE, &(r)->stall_abort, "S", \
   "a generation stalled S seconds ends the run: checkpoint of the state before it, exit 1 (0: off)"}
/* clang-format on */

/* Sets the options' values before parsing (broadcast "auto", the stall limits NG_RUN_STALL_*). */
void ng_cli_run_init(ng_cli_run *r);

/* After parsing: the policy (signals handled, progress on stderr unless --quiet or `quiet`, on rank 0), with
 * rank 0 opening --log. Returns 0, or NG_EXIT_USAGE after a line on err naming the option, or NG_EXIT_FAILURE
 * when --log cannot be opened. Collective (the ranks agree on --log). */
int ng_cli_run_policy(MPI_Comm comm, const char *command, ng_cli_run *r, bool quiet, int argc, char **argv,
                      FILE *err, ng_run_policy *p);

/* Closes --log (rank 0). */
void ng_cli_run_close(ng_cli_run *r);

#endif
