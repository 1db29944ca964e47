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

/* Each command parses its own options from argv[2..] and returns an exit code; collective over comm. */
int ng_cmd_minimize(MPI_Comm comm, int argc, char **argv);
int ng_cmd_inspect(MPI_Comm comm, int argc, char **argv);
int ng_cmd_data(MPI_Comm comm, int argc, char **argv);
int ng_cmd_train(MPI_Comm comm, int argc, char **argv);
int ng_cmd_eval(MPI_Comm comm, int argc, char **argv);
int ng_cmd_glue(MPI_Comm comm, int argc, char **argv);
int ng_cmd_demo(MPI_Comm comm, int argc, char **argv);
int ng_cmd_retrofit(MPI_Comm comm, int argc, char **argv);

#endif
