/* `nograd minimize`: the options, and the final report (text, or one JSON line with --json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "nograd/app.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/functions.h"

/* "100" (generations), "30s", "5m", "2h" (time), or "100,30s" (both). */
static int parse_every(const char *spec, int64_t *gens, double *secs) {
  *gens = 0;
  *secs = 0;
  char buf[64];
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *end;
    double v = strtod(tok, &end);
    if (end == tok || !(v > 0) || !isfinite(v)) return -1;
    if (*end == '\0') {
      if (v != floor(v)) return -1;
      *gens = (int64_t)v;
    } else if (end[1] == '\0' && (*end == 's' || *end == 'm' || *end == 'h')) {
      *secs = v * (*end == 's' ? 1 : *end == 'm' ? 60 : 3600);
    } else {
      return -1;
    }
  }
  return *gens || *secs ? 0 : -1;
}

int ng_cmd_minimize(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  const char *function = NULL, *optimizer = "cmaes", *restarts = "none", *x0s = "0";
  size_t dim = 0, popsize = 0, max_restarts = 9;
  double sigma0 = 1.0, ftarget = -INFINITY, lower = -INFINITY, upper = INFINITY;
  uint64_t seed = 1;
  int64_t max_evals = 0;
  bool json = false, quiet = false, force = false;
  ng_arg_list params = {0};
  size_t groups = 0, rows = 10000, chunk_rows = 1000;
  uint64_t data_seed = 1;
  const char *bcast = "auto", *checkpoint = NULL, *every = "60s", *resume_path = NULL, *log_path = NULL;
  ng_arg table[] = {
      {"--function", NG_ARG_STRING, &function, "NAME",
       "benchmark function (sphere, ellipsoid, cigar, tablet, "
       "diffpow, rosenbrock, rastrigin, rot-NAME, noisy-sphere)"},
      {"--dim", NG_ARG_POSINT, &dim, "N", "dimension"},
      {"--optimizer", NG_ARG_STRING, &optimizer, "NAME", "cmaes (default), sepcmaes or spsa"},
      {"--popsize", NG_ARG_SIZE, &popsize, "L", "population size (CMA-ES) or 2q (SPSA); 0: default"},
      {"--restarts", NG_ARG_STRING, &restarts, "POLICY", "none (default), ipop or bipop"},
      {"--max-restarts", NG_ARG_SIZE, &max_restarts, "R", "at most R restarts (default 9)"},
      {"--x0", NG_ARG_STRING, &x0s, "V",
       "initial point: one value for every coordinate, or N comma-separated"},
      {"--sigma0", NG_ARG_POSDOUBLE, &sigma0, "S", "initial step size (default 1)"},
      {"--seed", NG_ARG_UINT64, &seed, "K", "random seed (default 1)"},
      {"--ftarget", NG_ARG_DOUBLE, &ftarget, "T", "stop when f <= T"},
      {"--max-evals", NG_ARG_INT64, &max_evals, "M",
       "evaluation budget over all restarts (default unlimited)"},
      {"--lower", NG_ARG_DOUBLE, &lower, "LO", "lower bound of every coordinate"},
      {"--upper", NG_ARG_DOUBLE, &upper, "HI", "upper bound of every coordinate"},
      {"--param", NG_ARG_LIST, &params, "NAME=V",
       "optimizer parameter, repeatable (tolfun=1e-12, spsa_a=0.1, ...)"},
      {"--rows", NG_ARG_POSINT, &rows, "N",
       "data objective (logistic, lsq): rows of generated data (default 10000)"},
      {"--chunk-rows", NG_ARG_POSINT, &chunk_rows, "C", "data objective: rows per chunk (default 1000)"},
      {"--data-seed", NG_ARG_UINT64, &data_seed, "K",
       "data objective: seed of the generated data (default 1)"},
      {"--groups", NG_ARG_POSINT, &groups, "G",
       "population groups: the P ranks form G groups x P/G data shards (default: the fewest groups that give "
       "every shard a chunk; P for a benchmark function)"},
      {"--broadcast", NG_ARG_STRING, &bcast, "MODE", "auto (default), explicit (candidates) or seeded"},
      {"--checkpoint", NG_ARG_STRING, &checkpoint, "FILE",
       "write the run's state to FILE (HDF5), FILE.prev kept"},
      {"--checkpoint-every", NG_ARG_STRING, &every, "SPEC",
       "K generations, Ts seconds, or both as K,Ts (default 60s)"},
      {"--resume", NG_ARG_STRING, &resume_path, "FILE", "continue the run saved in checkpoint FILE"},
      {"--force", NG_ARG_FLAG, &force, NULL, "resume even when the configuration differs"},
      {"--log", NG_ARG_STRING, &log_path, "FILE", "rank 0 writes one JSON line per generation to FILE"},
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line with the result at the end"},
      {"--quiet", NG_ARG_FLAG, &quiet, NULL, "no progress lines"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  int code = ng_args_parse("minimize", "--function NAME --dim N [options]", table, ntable, argc, argv, 2,
                           out ? out : err, err);
  if (ng_args_finished(&code)) goto done;
  code = NG_EXIT_USAGE;
  if (!function || !dim) {
    fprintf(err, "nograd minimize: %s is required (see nograd minimize --help)\n",
            !function ? "--function" : "--dim");
    goto done;
  }
  ng_minimize_config cfg = {.function = function,
                            .dim = dim,
                            .optimizer = optimizer,
                            .popsize = popsize,
                            .max_restarts = (int)max_restarts,
                            .sigma0 = sigma0,
                            .seed = seed,
                            .ftarget = ftarget,
                            .max_evals = max_evals,
                            .lower = lower,
                            .upper = upper,
                            .rows = rows,
                            .chunk_rows = chunk_rows,
                            .data_seed = data_seed,
                            .groups = (int)groups,
                            .checkpoint = checkpoint,
                            .resume = resume_path,
                            .force = force,
                            .handle_signals = 1,
                            .progress = (quiet || rank != 0) ? NULL : stderr};
  int mode = ng_bcast_from_name(bcast);
  if (mode < 0) {
    fprintf(err, "nograd minimize: --broadcast: expected auto, explicit or seeded, got '%s'\n", bcast);
    goto done;
  }
  cfg.bcast = mode;
  if (parse_every(every, &cfg.checkpoint_gens, &cfg.checkpoint_secs) != 0) {
    fprintf(err,
            "nograd minimize: --checkpoint-every: expected K, Ts, Tm, Th or K,Ts (e.g. 100, 30s, 100,5m), "
            "got '%s'\n",
            every);
    goto done;
  }
  char command_line[4096];
  ng_args_command_line(argc, argv, command_line, sizeof command_line);
  cfg.command_line = command_line;
  if (strcmp(restarts, "none") == 0)
    cfg.restarts = NG_RESTART_NONE;
  else if (strcmp(restarts, "ipop") == 0)
    cfg.restarts = NG_RESTART_IPOP;
  else if (strcmp(restarts, "bipop") == 0)
    cfg.restarts = NG_RESTART_BIPOP;
  else {
    fprintf(err, "nograd minimize: --restarts: expected none, ipop or bipop, got '%s'\n", restarts);
    goto done;
  }
  if (max_evals < 0) {
    fprintf(err, "nograd minimize: --max-evals: expected a non-negative integer, got %lld\n",
            (long long)max_evals);
    goto done;
  }
  for (size_t i = 0; i < params.count; i++) {
    const char *eq = strchr(params.items[i], '=');
    char *end = NULL;
    double v = eq ? strtod(eq + 1, &end) : 0;
    if (!eq || eq == params.items[i] || !end || end == eq + 1 || *end || isnan(v)) {
      fprintf(err, "nograd minimize: --param: expected NAME=VALUE, got '%s'\n", params.items[i]);
      goto done;
    }
    static char names[NG_MAX_PARAMS][48];
    snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - params.items[i]), params.items[i]);
    cfg.param_names[i] = names[i];
    cfg.param_values[i] = v;
    cfg.nparams++;
  }
  double *x0 = malloc(dim * sizeof *x0), *xbest = malloc(dim * sizeof *xbest);
  if (!x0 || !xbest) {
    fprintf(err, "nograd minimize: out of memory for dimension %zu\n", dim);
    free(x0);
    free(xbest);
    code = NG_EXIT_FAILURE;
    goto done;
  }
  int pv = ng_args_vector(x0s, dim, x0);
  if (pv != 0) {
    if (pv < 0)
      fprintf(err, "nograd minimize: --x0: expected a number or %zu comma-separated numbers, got '%s'\n", dim,
              x0s);
    else
      fprintf(err, "nograd minimize: --x0: expected 1 or %zu values, got %d\n", dim, pv);
    free(x0);
    free(xbest);
    goto done;
  }
  cfg.x0 = x0;
  FILE *log = NULL;
  int log_ok = 1;
  if (log_path && rank == 0) {
    log = fopen(log_path, "a");
    log_ok = log != NULL;
    if (!log) fprintf(err, "nograd minimize: --log: cannot open '%s' for writing\n", log_path);
  }
  MPI_Bcast(&log_ok, 1, MPI_INT, 0, comm);
  if (!log_ok) {
    free(x0);
    free(xbest);
    code = NG_EXIT_FAILURE;
    goto done;
  }
  cfg.log = log;
  ng_minimize_result res = {.x_best = xbest};
  int st = ng_app_minimize(comm, &cfg, &res);
  if (log) fclose(log);
  if (st != NG_OK) {
    fprintf(err, "nograd minimize: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
  } else {
    code = res.signalled ? NG_EXIT_RESUMABLE : NG_EXIT_OK;
    if (out && json) {
      fprintf(out, "{\"evaluations\":%lld,\"f_best\":", (long long)res.evaluations);
      ng_json_number(out, res.f_best);
      fprintf(out, ",\"stop_reason\":\"%s\",\"generations\":%lld,\"restarts\":%lld,\"seconds\":%.6f}\n",
              ng_stop_name(res.stop), (long long)res.generations, (long long)res.restarts, res.seconds);
    } else if (out) {
      fprintf(out, "stop: %s\nevaluations: %lld\ngenerations: %lld\nrestarts: %lld\nf_best: %.17g\nx_best:",
              ng_stop_name(res.stop), (long long)res.evaluations, (long long)res.generations,
              (long long)res.restarts, res.f_best);
      for (size_t i = 0; i < dim && i < 20; i++)
        fprintf(out, " %.10g", xbest[i]);
      fprintf(out, "%s\nseconds: %.3f\n", dim > 20 ? " ..." : "", res.seconds);
    }
  }
  free(x0);
  free(xbest);
done:
  if (rank != 0 && err) fclose(err);
  return code;
}
