/* `nograd verify FILE...`: checks files without running anything, one line each. Runs on rank 0 only. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "nograd/error.h"
#include "nograd/verify.h"

int ng_cmd_verify(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  bool json = false, quiet = false;
  ng_arg table[] = {
      {"--json", NG_ARG_FLAG, &json, NULL,
       "one JSON object per file: file, ok, kind, sealed, crc32 or error"},
      {"--quiet", NG_ARG_FLAG, &quiet, NULL, "print only the files that fail"},
  };
  /* the files are the arguments that are not options */
  int nfiles = 0, code = 0;
  char **files = argv + 2, *opts[8];
  int nopts = 0;
  for (int i = 2; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1] != '\0') {
      if (nopts == 8) {
        code = 2;
        break;
      }
      opts[nopts++] = argv[i];
    } else {
      files[nfiles++] = argv[i];
    }
  }
  FILE *sink = rank == 0 ? stderr : fopen("/dev/null", "w");
  if (code == 0) {
    char *pargv[10] = {argv[0], argv[1]};
    for (int i = 0; i < nopts; i++)
      pargv[2 + i] = opts[i];
    code = ng_args_parse("verify", "FILE... [--json] [--quiet]", table, sizeof table / sizeof table[0],
                         2 + nopts, pargv, 2, rank == 0 ? stdout : sink, sink);
  } else {
    fprintf(sink, "nograd verify: too many options\n");
  }
  if (code == 1) {
    code = NG_EXIT_OK;
  } else if (code == 0 && nfiles == 0) {
    fprintf(sink, "nograd verify: which files? (usage: nograd verify FILE... [--json] [--quiet])\n");
    code = NG_EXIT_USAGE;
  } else if (code == 0) {
    int bad = 0;
    for (int i = 0; i < nfiles && rank == 0; i++) {
      ng_verify_info in;
      ng_error_clear();
      int st = ng_verify_file(files[i], &in);
      bad += st != NG_OK;
      if (quiet && st == NG_OK) continue;
      if (json) {
        fputs("{\"file\":", stdout);
        ng_json_string(stdout, files[i]);
        if (st == NG_OK)
          printf(",\"ok\":true,\"kind\":\"%s\",\"sealed\":%s,\"crc32\":\"%08x\"}\n",
                 ng_file_kind_name(in.kind), in.sealed ? "true" : "false", (unsigned)in.crc32);
        else {
          fputs(",\"ok\":false,\"error\":", stdout);
          ng_json_string(stdout, ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
          fputs("}\n", stdout);
        }
      } else if (st == NG_OK) {
        if (in.sealed)
          printf("%s: ok: %s, sealed (CRC-32 %08x)\n", files[i], ng_file_kind_name(in.kind),
                 (unsigned)in.crc32);
        else
          printf("%s: ok: %s, without nograd's header (read first by a separate process)\n", files[i],
                 ng_file_kind_name(in.kind));
      } else {
        printf("%s: FAILED: %s\n", files[i], ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
      }
      fflush(stdout);
    }
    MPI_Bcast(&bad, 1, MPI_INT, 0, comm);
    code = bad ? NG_EXIT_FAILURE : NG_EXIT_OK;
  }
  if (rank != 0 && sink) fclose(sink);
  return code;
}
