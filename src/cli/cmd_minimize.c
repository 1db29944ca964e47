/* `nograd minimize`: the options, and the final report (text, or one JSON line with --json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/runopts.h"
#include "core/json.h"
#include "nograd/app.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "nograd/functions.h"

/* "none", "ipop", "bipop"; -1 for anything else. */
static int restart_policy(const char *name) {
  return strcmp(name, "none") == 0    ? NG_RESTART_NONE
         : strcmp(name, "ipop") == 0  ? NG_RESTART_IPOP
         : strcmp(name, "bipop") == 0 ? NG_RESTART_BIPOP
                                      : -1;
}

int ng_cmd_minimize(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  ng_minimize_config cfg;
  ng_minimize_config_init(&cfg); /* the library's defaults: what --help shows */
  ng_cli_run run;
  ng_cli_run_init(&run);
  const char *restarts = "none", *x0s = NULL;
  size_t max_restarts = (size_t)cfg.max_restarts;
  bool json = false;
  ng_arg_list params = {0};
  char optimizers[256], optimizer_help[320];
  ng_args_join(ng_opt_names(), optimizers, sizeof optimizers);
  snprintf(optimizer_help, sizeof optimizer_help, "the optimizer: %s", optimizers);
  double *x0 = NULL, *xbest = NULL;
  ng_arg table[] = {
      {"--function", NG_ARG_STRING, &cfg.function, "NAME",
       "benchmark function (sphere, ellipsoid, cigar, tablet, "
       "diffpow, rosenbrock, rastrigin, rot-NAME, noisy-sphere), or a data objective (logistic, lsq)"},
      {"--dim", NG_ARG_POSINT, &cfg.dim, "N", "dimension", false, true, NG_OPT_DIM_MAX},
      {"--optimizer", NG_ARG_STRING, &cfg.optimizer, "NAME", optimizer_help},
      {"--popsize", NG_ARG_SIZE, &cfg.popsize, "L",
       "population size (CMA-ES) or 2q (SPSA); 0: the optimizer's", false, false, NG_OPT_DIM_MAX},
      {"--restarts", NG_ARG_STRING, &restarts, "POLICY", "none, ipop or bipop"},
      {"--max-restarts", NG_ARG_SIZE, &max_restarts, "R", "at most R restarts"},
      {"--x0", NG_ARG_STRING, &x0s, "V",
       "initial point: one value for every coordinate, or N comma-separated (default 0)"},
      {"--sigma0", NG_ARG_POSDOUBLE, &cfg.sigma0, "S", "initial step size"},
      {"--seed", NG_ARG_UINT64, &cfg.seed, "K", "random seed"},
      {"--ftarget", NG_ARG_DOUBLE, &cfg.ftarget, "T", "stop when f <= T"},
      {"--max-evals", NG_ARG_INT64, &cfg.max_evals, "M",
       "evaluation budget over all restarts (0: unlimited)"},
      {"--lower", NG_ARG_DOUBLE, &cfg.lower, "LO", "lower bound of every coordinate"},
      {"--upper", NG_ARG_DOUBLE, &cfg.upper, "HI", "upper bound of every coordinate"},
      {"--param", NG_ARG_LIST, &params, "NAME=V",
       "optimizer parameter, repeatable (tolfun=1e-12, spsa_a=0.1, ...)"},
      {"--rows", NG_ARG_POSINT, &cfg.rows, "N", "data objective (logistic, lsq): rows of generated data"},
      {"--chunk-rows", NG_ARG_POSINT, &cfg.chunk_rows, "C", "data objective: rows per chunk"},
      {"--data-seed", NG_ARG_UINT64, &cfg.data_seed, "K", "data objective: seed of the generated data"},
      NG_CLI_RUN_OPTIONS(&run),
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line with the result at the end"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  int code = ng_args_parse("minimize", "--function NAME --dim N [options]", table, ntable, argc, argv, 2,
                           out ? out : err, err);
  if (ng_args_finished(&code)) goto done;
  code = NG_EXIT_USAGE;
  if (!cfg.function || !cfg.dim) {
    fprintf(err, "nograd minimize: %s is required (see nograd minimize --help)\n",
            !cfg.function ? "--function" : "--dim");
    goto done;
  }
  if (max_restarts > (size_t)INT32_MAX) {
    fprintf(err, "nograd minimize: --max-restarts: expected at most %d, got %zu\n", INT32_MAX, max_restarts);
    goto done;
  }
  cfg.max_restarts = (int)max_restarts;
  int policy = restart_policy(restarts);
  if (policy < 0) {
    fprintf(err, "nograd minimize: --restarts: expected none, ipop or bipop, got '%s'\n", restarts);
    goto done;
  }
  cfg.restarts = (ng_restart)policy;
  if (cfg.max_evals < 0) {
    fprintf(err, "nograd minimize: --max-evals: expected a non-negative integer, got %lld\n",
            (long long)cfg.max_evals);
    goto done;
  }
  static char names[NG_MAX_PARAMS][48];
  if (params.count > NG_MAX_PARAMS) {
    fprintf(err, "nograd minimize: --param: at most %d parameters, got %zu\n", NG_MAX_PARAMS, params.count);
    goto done;
  }
  for (size_t i = 0; i < params.count; i++) {
    const char *eq = strchr(params.items[i], '=');
    char *end = NULL;
    double v = eq ? strtod(eq + 1, &end) : 0;
    if (!eq || eq == params.items[i] || (size_t)(eq - params.items[i]) >= sizeof names[i] || !end ||
        end == eq + 1 || *end || isnan(v)) {
      fprintf(err, "nograd minimize: --param: expected NAME=VALUE, got '%s'\n", params.items[i]);
      goto done;
    }
    snprintf(names[i], sizeof names[i], "%.*s", (int)(eq - params.items[i]), params.items[i]);
    cfg.param_names[i] = names[i];
    cfg.param_values[i] = v;
    cfg.nparams++;
  }
  x0 = calloc(cfg.dim, sizeof *x0);
  xbest = malloc(cfg.dim * sizeof *xbest);
  if (!x0 || !xbest) {
    fprintf(err, "nograd minimize: out of memory for dimension %zu\n", cfg.dim);
    code = NG_EXIT_FAILURE;
    goto done;
  }
  int pv = x0s ? ng_args_vector(x0s, cfg.dim, x0) : 0;
  if (pv != 0) {
    if (pv < 0)
      fprintf(err, "nograd minimize: --x0: expected a number or %zu comma-separated numbers, got '%s'\n",
              cfg.dim, x0s);
    else
      fprintf(err, "nograd minimize: --x0: expected 1 or %zu values, got %d\n", cfg.dim, pv);
    goto done;
  }
  cfg.x0 = x0;
  code = ng_cli_run_policy(comm, "minimize", &run, false, argc, argv, err, &cfg.run);
  if (code != 0) goto done;
  ng_minimize_result res = {.x_best = xbest};
  int st = ng_app_minimize(comm, &cfg, &res);
  if (st != NG_OK) {
    fprintf(err, "nograd minimize: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
  } else {
    code = res.signalled && cfg.run.checkpoint ? NG_EXIT_RESUMABLE : NG_EXIT_OK;
    if (out && json) {
      fprintf(out, "{\"evaluations\":%lld,\"f_best\":", (long long)res.evaluations);
      ng_json_number(out, res.f_best);
      fprintf(out, ",\"stop_reason\":\"%s\",\"generations\":%lld,\"restarts\":%lld,\"seconds\":%.6f}\n",
              ng_stop_name(res.stop), (long long)res.generations, (long long)res.restarts, res.seconds);
    } else if (out) {
      fprintf(out, "stop: %s\nevaluations: %lld\ngenerations: %lld\nrestarts: %lld\nf_best: %.17g\nx_best:",
              ng_stop_name(res.stop), (long long)res.evaluations, (long long)res.generations,
              (long long)res.restarts, res.f_best);
      for (size_t i = 0; i < cfg.dim && i < 20; i++)
        fprintf(out, " %.10g", xbest[i]);
      fprintf(out, "%s\nseconds: %.3f\n", cfg.dim > 20 ? " ..." : "", res.seconds);
    }
  }
done:
  ng_cli_run_close(&run);
  free(x0);
  free(xbest);
  if (rank != 0 && err) fclose(err);
  return code;
}
