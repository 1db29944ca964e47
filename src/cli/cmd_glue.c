/* `nograd glue`: the options, and the report (text, or one JSON line per method with --json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "nograd/error.h"
#include "nograd/glue.h"

int ng_cmd_glue(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  ng_arg_list experts = {0}, expert = {0};
  const char *target_train = NULL, *target_val = NULL, *out_path = NULL, *method = "spsa",
             *granularity = "model", *checkpoint = NULL;
  size_t steps = 100, q = 1, chunk_rows = 256;
  double sigma0 = 0.1;
  uint64_t seed = 1;
  bool json = false, quiet = false;
  ng_arg table[] = {
      {"--experts", NG_ARG_LIST, &experts, "E.h5",
       "expert model files of one architecture; takes the following non-option arguments too"},
      {"--expert", NG_ARG_LIST, &expert, "E.h5", "one expert model file (repeatable)"},
      {"--target-train", NG_ARG_STRING, &target_train, "T.h5", "target train split (dataset)"},
      {"--target-val", NG_ARG_STRING, &target_val, "V.h5",
       "target validation split: where the prior is measured (default: the train split)"},
      {"--out", NG_ARG_STRING, &out_path, "PRIOR.h5", "the prior's model file"},
      {"--method", NG_ARG_STRING, &method, "M", "spsa (default), cmaes, uniform, datasize, proxy or best"},
      {"--granularity", NG_ARG_STRING, &granularity, "G",
       "model (one weight per expert, default) or layer (per expert and layer)"},
      {"--steps", NG_ARG_POSINT, &steps, "N", "spsa, cmaes: generations (default 100)"},
      {"--q", NG_ARG_POSINT, &q, "Q", "spsa: perturbation pairs per step (default 1)"},
      {"--sigma0", NG_ARG_POSDOUBLE, &sigma0, "S", "spsa's c, cmaes' initial step size (default 0.1)"},
      {"--seed", NG_ARG_UINT64, &seed, "K", "random seed (default 1)"},
      {"--chunk-rows", NG_ARG_POSINT, &chunk_rows, "C", "rows per data chunk (default 256)"},
      {"--checkpoint", NG_ARG_STRING, &checkpoint, "FILE", "spsa, cmaes: the run's checkpoint"},
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line with the result"},
      {"--quiet", NG_ARG_FLAG, &quiet, NULL, "no progress lines"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  /* --experts A B C: the values after it up to the next option; rewrite to repeated --expert */
  char **args = malloc((size_t)(2 * argc + 1) * sizeof *args);
  int nargs = 0, code;
  if (!args) {
    code = NG_EXIT_FAILURE;
    goto done;
  }
  for (int i = 0; i < argc; i++) {
    if (i >= 2 && strcmp(argv[i], "--experts") == 0) {
      while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
        args[nargs++] = "--expert";
        args[nargs++] = argv[++i];
      }
      continue;
    }
    args[nargs++] = argv[i];
  }
  args[nargs] = NULL;
  code = ng_args_parse("glue", "--experts E1.h5 E2.h5 ... --target-train T.h5 --out PRIOR.h5 [options]",
                       table, ntable, nargs, args, 2, out ? out : err, err);
  if (ng_args_finished(&code)) goto done;
  code = NG_EXIT_USAGE;
  if (!target_train || !out_path) {
    fprintf(err, "nograd glue: %s is required (see nograd glue --help)\n",
            !target_train ? "--target-train" : "--out");
    goto done;
  }
  if (expert.count < 2) {
    fprintf(err, "nograd glue: at least 2 experts are needed (--experts E1.h5 E2.h5 ...), got %zu\n",
            expert.count);
    goto done;
  }
  int m = ng_glue_method_from_name(method);
  if (m < 0) {
    fprintf(err, "nograd glue: --method: expected spsa, cmaes, uniform, datasize, proxy or best, got '%s'\n",
            method);
    goto done;
  }
  if (strcmp(granularity, "model") != 0 && strcmp(granularity, "layer") != 0) {
    fprintf(err, "nograd glue: --granularity: expected model or layer, got '%s'\n", granularity);
    goto done;
  }
  char command_line[4096];
  size_t used = 0;
  for (int i = 0; i < argc && used < sizeof command_line - 1; i++)
    used += (size_t)snprintf(command_line + used, sizeof command_line - used, "%s%s", i ? " " : "", argv[i]);
  ng_glue_config cfg = {.experts = expert.items,
                        .nexperts = expert.count,
                        .target_train = target_train,
                        .target_val = target_val,
                        .out = out_path,
                        .method = (ng_glue_method)m,
                        .per_layer = strcmp(granularity, "layer") == 0,
                        .steps = steps,
                        .q = q,
                        .sigma0 = sigma0,
                        .seed = seed,
                        .chunk_rows = chunk_rows,
                        .checkpoint = checkpoint,
                        .command_line = command_line,
                        .progress = (quiet || json || rank != 0) ? NULL : stderr};
  ng_glue_result res;
  int st = ng_app_glue(comm, &cfg, &res);
  if (st != NG_OK) {
    fprintf(err, "nograd glue: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
    goto done;
  }
  code = NG_EXIT_OK;
  if (out && json) {
    fprintf(out, "{\"method\":\"%s\",\"granularity\":\"%s\",\"prior_loss\":", method, granularity);
    ng_json_number(out, res.prior_loss);
    fprintf(out, ",\"prior_accuracy\":");
    ng_json_number(out, res.prior_accuracy);
    fprintf(out, ",\"weights\":[");
    for (size_t i = 0; res.weights && i < res.K * res.L; i++) {
      if (i) fputc(',', out);
      ng_json_number(out, res.weights[i]);
    }
    fprintf(out, "],\"experts\":%zu,\"layers\":%zu,\"evaluations\":%lld,\"seconds\":%.6f}\n", res.K, res.L,
            (long long)res.evaluations, res.seconds);
  } else if (out) {
    fprintf(out, "method: %s\nprior_loss: %.10g\nprior_accuracy: %.6f\nweights:", method, res.prior_loss,
            res.prior_accuracy);
    for (size_t k = 0; res.weights && k < res.K; k++) {
      fprintf(out, "\n  expert %zu (%s):", k + 1, expert.items[k]);
      for (size_t l = 0; l < res.L && l < 16; l++)
        fprintf(out, " %.6f", res.weights[k * res.L + l]);
      if (res.L > 16) fprintf(out, " ...");
    }
    fprintf(out, "\nevaluations: %lld\nseconds: %.3f\nprior: %s\n", (long long)res.evaluations, res.seconds,
            out_path);
  }
  free(res.weights);
done:
  free(args);
  if (rank != 0 && err) fclose(err);
  return code;
}
