/* main(): starts MPI, dispatches to a command, and ends every rank with the same exit code.
 *
 * Library code never exits; a command returns an exit code that is the same on every rank (its errors are
 * either found alike by all ranks or agreed on through the generation loop), and main finalizes MPI and
 * returns it. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: nograd <command> [options]\n\n"
          "commands:\n"
          "  minimize   minimize a benchmark function or a data objective with CMA-ES, sep-CMA-ES or SPSA\n"
          "  data       import, split, generate and describe dataset files (HDF5)\n"
          "  train      train a model by backpropagation (SGD with momentum, Adam)\n"
          "  eval       loss, exact metrics and throughput of a model on a dataset\n"
          "  glue       mix K experts into a prior for a target domain (SPSA, CMA-ES, baselines)\n"
          "  retrofit   tune chosen parameters of a model against an exact metric (CMA-ES), with a bound\n"
          "  demo       the glue protocol on built-in synthetic domains: every prior, fine-tuned and tested\n"
          "  inspect    show what a checkpoint file holds\n"
          "  version    print the version\n\n"
          "Run `nograd <command> --help` for the options of a command. Under MPI: mpirun -n P nograd ...\n");
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, code;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  FILE *out = rank == 0 ? stdout : NULL;
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    if (out) usage(argc < 2 ? stderr : stdout);
    code = argc < 2 ? NG_EXIT_USAGE : NG_EXIT_OK;
  } else if (strcmp(argv[1], "minimize") == 0) {
    code = ng_cmd_minimize(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "data") == 0) {
    code = ng_cmd_data(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "train") == 0) {
    code = ng_cmd_train(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "eval") == 0) {
    code = ng_cmd_eval(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "glue") == 0) {
    code = ng_cmd_glue(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "retrofit") == 0) {
    code = ng_cmd_retrofit(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "demo") == 0) {
    code = ng_cmd_demo(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "inspect") == 0) {
    code = ng_cmd_inspect(MPI_COMM_WORLD, argc, argv);
  } else if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
    if (out) printf("nograd %s\n", NOGRAD_VERSION);
    code = NG_EXIT_OK;
  } else {
    if (rank == 0) fprintf(stderr, "nograd: unknown command '%s' (see nograd --help)\n", argv[1]);
    code = NG_EXIT_USAGE;
  }
  MPI_Finalize();
  return code;
}
