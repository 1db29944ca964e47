/* main(): starts MPI, dispatches to a command of the table in commands.h, and ends every rank with the same
 * exit code.
 *
 * Library code never exits; a command returns an exit code that is the same on every rank (its errors are
 * either found alike by all ranks or agreed on through the generation loop), and main finalizes MPI and
 * returns it. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct {
  const char *name;
  int (*run)(MPI_Comm comm, int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
#define NG_COMMAND_ROW(name, summary) {#name, ng_cmd_##name, summary},
    NG_COMMAND_TABLE(NG_COMMAND_ROW)
#undef NG_COMMAND_ROW
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  fprintf(out, "usage: nograd <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nRun `nograd <command> --help` for the options of a command. Under MPI: mpirun -n P nograd ...\n");
}

int ng_cmd_version(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0) printf("nograd %s\n", NOGRAD_VERSION);
  return NG_EXIT_OK;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, code = NG_EXIT_USAGE;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char *name = argc > 1 ? argv[1] : NULL;
  const command *cmd = NULL;
  for (size_t i = 0; name && i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) cmd = &commands[i];
  if (!name || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
    if (rank == 0) usage(name ? stdout : stderr);
    code = name ? NG_EXIT_OK : NG_EXIT_USAGE;
  } else if (strcmp(name, "--version") == 0) {
    code = ng_cmd_version(MPI_COMM_WORLD, argc, argv);
  } else if (cmd) {
    code = cmd->run(MPI_COMM_WORLD, argc, argv);
  } else if (rank == 0) {
    fprintf(stderr, "nograd: unknown command '%s' (see nograd --help)\n", name);
  }
  MPI_Finalize();
  return code;
}
