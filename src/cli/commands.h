/* Private: the commands of the `nograd` program and its exit codes. */
#ifndef NOGRAD_CLI_COMMANDS_H
#define NOGRAD_CLI_COMMANDS_H

#include <mpi.h>

/* Exit codes, documented in README.md. */
enum {
  NG_EXIT_OK = 0,       /* the run finished (whatever its stop reason) */
  NG_EXIT_FAILURE = 1,  /* a runtime error: file, data, numerics, MPI */
  NG_EXIT_USAGE = 2,    /* a bad command line */
  NG_EXIT_RESUMABLE = 3 /* stopped by SIGTERM, SIGUSR1 or SIGINT after finishing the generation and writing
                         * the checkpoint (if --checkpoint): continue with --resume */
};

/* The commands, the one place they are listed: name (the word after `nograd`, and ng_cmd_NAME, the function
 * in src/cli/cmd_NAME.c that runs it) and the summary `nograd --help` prints. Adding a command is one file
 * and one row here. Each command parses its own options from argv[2..] and returns an exit code; collective
 * over comm. */
#define NG_COMMAND_TABLE(X)                                                                               \
  X(minimize, "minimize a benchmark function or a data objective with CMA-ES, sep-CMA-ES or SPSA")        \
  X(data, "import, split, generate and describe dataset files (HDF5)")                                    \
  X(train, "train a model by backpropagation (SGD with momentum, Adam)")                                  \
  X(eval, "loss, exact metrics and throughput of a model on a dataset")                                   \
  X(glue, "mix K experts into a prior for a target domain (SPSA, CMA-ES, baselines)")                     \
  X(retrofit, "tune chosen parameters of a model against an exact metric (CMA-ES), with a bound")         \
  X(demo, "the glue protocol on built-in synthetic domains: every prior, fine-tuned and tested")          \
  X(inspect, "show what a checkpoint file holds")                                                         \
  X(plot, "draw a run from its checkpoint: loss, step size, population, time per phase, result")          \
  X(verify, "check checkpoint, model and dataset files (checksum, then a complete read) without running") \
  X(version, "print the version")

#define NG_COMMAND_DECLARE(name, summary) int ng_cmd_##name(MPI_Comm comm, int argc, char **argv);
NG_COMMAND_TABLE(NG_COMMAND_DECLARE)
#undef NG_COMMAND_DECLARE

#endif
