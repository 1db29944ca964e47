/* `nograd inspect FILE.h5`: what a checkpoint holds, as text or one JSON object. Runs on rank 0 only. */
#include <stdio.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "nograd/error.h"
#include "nograd/inspect.h"

int ng_cmd_inspect(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  bool json = false;
  size_t last = 10;
  ng_arg table[] = {
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON object"},
      {"--last", NG_ARG_SIZE, &last, "N", "show the last N generations of the history", false, false,
       INT32_MAX},
  };
  /* the file is the first argument that is not an option */
  const char *path = NULL;
  int first = 2;
  if (argc > 2 && argv[2][0] != '-') {
    path = argv[2];
    first = 3;
  }
  FILE *sink = rank == 0 ? stderr : fopen("/dev/null", "w");
  int code = ng_args_parse("inspect", "FILE.h5 [--json] [--last N]", table, sizeof table / sizeof table[0],
                           argc, argv, first, rank == 0 ? stdout : sink, sink);
  if (code == 1) {
    code = NG_EXIT_OK;
  } else if (code == 0 && !path) {
    fprintf(sink, "nograd inspect: which file? (usage: nograd inspect FILE.h5 [--json] [--last N])\n");
    code = NG_EXIT_USAGE;
  } else if (code == 0) {
    int st = NG_OK;
    if (rank == 0) {
      st = ng_inspect(path, json, (int)last, stdout);
      if (st != NG_OK)
        fprintf(stderr, "nograd inspect: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    }
    MPI_Bcast(&st, 1, MPI_INT, 0, comm);
    code = st == NG_OK ? NG_EXIT_OK : NG_EXIT_FAILURE;
  }
  if (rank != 0 && sink) fclose(sink);
  return code;
}
