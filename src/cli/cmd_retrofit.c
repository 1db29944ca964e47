/* `nograd retrofit`: options, --list-params, and the report (text, or one JSON line with --json). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/runopts.h"
#include "core/json.h"
#include "nograd/error.h"
#include "nograd/knobs.h"
#include "nograd/metrics.h"
#include "nograd/nn.h"
#include "nograd/retrofit.h"

static int list_params(const char *path, FILE *out, FILE *err) {
  ng_model *m = NULL;
  int st = ng_model_read(path, &m);
  if (st == NG_OK && out) st = ng_knobs_list(m, out);
  ng_model_destroy(&m);
  if (st != NG_OK && err) fprintf(err, "nograd retrofit: %s\n", ng_errmsg());
  return st == NG_OK ? NG_EXIT_OK : NG_EXIT_FAILURE;
}

static void json_field(FILE *out, const char *name, double v) {
  fprintf(out, ",\"%s\":", name);
  ng_json_number(out, v);
}

int ng_cmd_retrofit(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  ng_retrofit_config cfg;
  ng_retrofit_config_init(&cfg); /* the library's defaults: what --help shows */
  ng_cli_run run;
  ng_cli_run_init(&run);
  const char *list = NULL, *x0_text = NULL;
  size_t dim = 0;
  bool json = false;
  double *x0 = NULL;
  size_t max_restarts = (size_t)-1;
  ng_retrofit_result res = {0};
  int code;
  char metrics[256], metric_help[320], optimizers[256], optimizer_help[320];
  ng_metric_names(NG_METRIC_F_LABELS, 1, metrics, sizeof metrics);
  snprintf(metric_help, sizeof metric_help, "the metric minimized: %s", metrics);
  ng_args_join(ng_opt_names(), optimizers, sizeof optimizers);
  snprintf(optimizer_help, sizeof optimizer_help, "%s (default: cmaes up to 100 dimensions, sepcmaes above)",
           optimizers);
  ng_arg table[] = {
      {"--list-params", NG_ARG_STRING, &list, "MODEL.h5", "show what --params can name in a model, and exit"},
      {"--params", NG_ARG_STRING, &cfg.params, "SPEC",
       "what to tune: NAME, NAME[a:b], scale:LAYER (ONNX: scale:NODE, scale:MODULE), temperature, offsets, "
       "threshold (comma-separated)"},
      {"--val", NG_ARG_STRING, &cfg.val, "V.h5", "the validation set the metric is minimized on"},
      {"--val-size", NG_ARG_SIZE, &cfg.val_size, "N",
       "a seeded, stratified subset of N validation rows (0: all)"},
      {"--test", NG_ARG_STRING, &cfg.test, "T.h5", "a held-out set: the metric before and after"},
      {"--metric", NG_ARG_STRING, &cfg.metric, "M", metric_help},
      {"--threshold", NG_ARG_DOUBLE, &cfg.threshold, "T",
       "binary models: predict class 1 when softmax[1] >= T (default: the model's stored threshold)", false,
       true},
      {"--optimizer", NG_ARG_STRING, &cfg.optimizer, "NAME", optimizer_help},
      {"--budget", NG_ARG_INT64, &cfg.budget, "E", "at most E evaluations, whole generations"},
      {"--popsize", NG_ARG_SIZE, &cfg.popsize, "L", "candidates per generation (0: the optimizer's)", false,
       false, NG_OPT_DIM_MAX},
      {"--sigma0", NG_ARG_POSDOUBLE, &cfg.sigma0, "S",
       "initial step size (for raw tensors, about their spread)"},
      {"--seed", NG_ARG_UINT64, &cfg.seed, "K", "random seed: the search and --val-size"},
      {"--delta", NG_ARG_POSDOUBLE, &cfg.delta, "D", "the bound holds with probability 1 - D"},
      {"--chunk-rows", NG_ARG_POSINT, &cfg.chunk_rows, "C", "rows per data chunk"},
      {"--out", NG_ARG_STRING, &cfg.out, "MODEL.h5",
       "the retrofitted model (.onnx for an ONNX model): rewritten after every generation that improves it, "
       "and "
       "at the end"},
      NG_CLI_RUN_OPTIONS(&run),
      {"--evaluator", NG_ARG_STRING, &cfg.evaluator, "SPEC",
       "exec:PROGRAM [ARGS] or plugin:LIB.so: an external scorer (see tools/evaluators/README.md)"},
      {"--eval-timeout", NG_ARG_POSDOUBLE, &cfg.eval_timeout, "S", "seconds an evaluator may take a request",
       false, true},
      {"--eval-start-timeout", NG_ARG_POSDOUBLE, &cfg.eval_start_timeout, "S",
       "seconds an evaluator may take to start and answer HELLO (default: --eval-timeout)", false, true},
      {"--max-restarts", NG_ARG_SIZE, &max_restarts, "R", "evaluator restarts before the run stops", false,
       true},
      {"--chunks", NG_ARG_POSINT, &cfg.nchunks, "K", "chunks the evaluator is asked about"},
      {"--dim", NG_ARG_POSINT, &dim, "N", "without a model: the dimension of the search", false, true,
       NG_OPT_DIM_MAX},
      {"--x0", NG_ARG_STRING, &x0_text, "V", "without a model: the start, one value or N (default 0)"},
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line with the result"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  /* the model file: the first argument when it is not an option */
  int first = 2;
  if (argc > 2 && strncmp(argv[2], "--", 2) != 0 && strcmp(argv[2], "-h") != 0) {
    cfg.model = argv[2];
    first = 3;
  }
  code = ng_args_parse("retrofit", "MODEL.h5 --params SPEC --val V.h5 [options] | --list-params MODEL.h5",
                       table, ntable, argc, argv, first, out ? out : err, err);
  if (ng_args_finished(&code)) goto done;
  if (list) {
    code = list_params(list, out, err);
    goto done;
  }
  cfg.max_restarts = max_restarts == (size_t)-1 ? -1 : (int)max_restarts;
  code = NG_EXIT_USAGE;
  if (cfg.model && (dim || x0_text)) {
    fprintf(err,
            "nograd retrofit: %s is for runs without a model (with a model, --params gives the dimension and "
            "the knobs' current values are the start)\n",
            dim ? "--dim" : "--x0");
    goto done;
  }
  if (cfg.model && cfg.out && ng_cli_onnx_path(cfg.model) != ng_cli_onnx_path(cfg.out)) {
    fprintf(err, "nograd retrofit: --out %s: %s is %s model, so the retrofitted model is written as %s\n",
            cfg.out, cfg.model, ng_cli_onnx_path(cfg.model) ? "an ONNX" : "a native",
            ng_cli_onnx_path(cfg.model)
                ? "ONNX: give --out a name ending in .onnx"
                : "a model file (HDF5): give --out a name that does not end in .onnx");
    goto done;
  }
  if (cfg.evaluator && ng_args_seen(table, ntable, "--metric")) {
    fprintf(err,
            "nograd retrofit: retrofit: --metric and --evaluator exclude each other: the evaluator's score "
            "replaces "
            "the metric, so nograd measures nothing on a validation or test set (leave out one of them)\n");
    goto done;
  }
  if (cfg.evaluator && !isnan(cfg.threshold)) {
    fprintf(err,
            "nograd retrofit: --threshold and --evaluator exclude each other: the evaluator's score "
            "replaces the metric (tune a decision threshold with --params threshold)\n");
    goto done;
  }
  if (x0_text) {
    x0 = malloc((dim ? dim : 1) * sizeof *x0);
    if (!x0 || !dim || ng_args_vector(x0_text, dim, x0) != 0) {
      fprintf(err,
              "nograd retrofit: --x0: expected 1 or %zu comma-separated numbers (with --dim), got '%s'\n",
              dim, x0_text);
      goto done;
    }
    cfg.x0 = x0;
  }
  cfg.dim = dim;
  if (cfg.budget < 1) {
    fprintf(err, "nograd retrofit: --budget: expected a positive number of evaluations, got %lld\n",
            (long long)cfg.budget);
    goto done;
  }
  code = ng_cli_run_policy(comm, "retrofit", &run, json, argc, argv, err, &cfg.run);
  if (code != 0) goto done;
  code = NG_EXIT_USAGE;
  int st = ng_app_retrofit(comm, &cfg, &res);
  if (st != NG_OK) {
    fprintf(err, "nograd retrofit: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
    goto done;
  }
  if (res.signalled && cfg.run.checkpoint) {
    fprintf(err,
            "nograd retrofit: stopped by a signal after its checkpoint; continue with --resume %s%s%s%s\n",
            cfg.run.checkpoint, cfg.out ? " (the best model so far is at " : "", cfg.out ? cfg.out : "",
            cfg.out ? ")" : "");
    code = NG_EXIT_RESUMABLE;
    goto done;
  }
  const char *metric = cfg.evaluator ? "evaluator" : cfg.metric;
  double delta = cfg.delta;
  if (out && json) {
    fprintf(out, "{\"metric\":\"%s\",\"n\":%zu,\"lambda\":%zu,\"generations\":%lld,\"evaluations\":%lld",
            metric, res.n, res.lambda, (long long)res.generations, (long long)res.evaluations);
    json_field(out, "val_before", res.val_before);
    json_field(out, "val_after", res.val_after);
    json_field(out, "test_before", res.test_before);
    json_field(out, "test_after", res.test_after);
    fprintf(out, ",\"val_rows\":%zu", res.val_rows);
    json_field(out, "log_outputs", res.log_outputs);
    json_field(out, "delta", delta);
    json_field(out, "bound", res.bound);
    fprintf(out, ",\"no_bound\":");
    ng_json_string(out, res.no_bound);
    fprintf(out, ",\"stop\":");
    ng_json_string(out, res.stop ? res.stop : "");
    fprintf(out, ",\"signalled\":%s,\"kept_start\":%s,\"seconds\":%.6f,\"x\":[",
            res.signalled ? "true" : "false", res.kept_start ? "true" : "false", res.seconds);
    for (size_t i = 0; res.x_best && i < res.n; i++) {
      if (i) fputc(',', out);
      ng_json_number(out, res.x_best[i]);
    }
    fprintf(out, "]}\n");
  } else if (out) {
    fprintf(out, "retrofit: %zu dimensions, lambda %zu, %lld generations, %lld evaluations (stop: %s%s)\n",
            res.n, res.lambda, (long long)res.generations, (long long)res.evaluations, res.stop,
            res.signalled ? ", by a signal" : "");
    if (cfg.evaluator) {
      fprintf(out, "evaluator score: %.10g -> %.10g%s\n", res.val_before, res.val_after,
              res.kept_start ? (cfg.model ? " (no candidate beat the start: the model is unchanged)"
                                          : " (no candidate beat the start: x is the start)")
                             : "");
    } else {
      fprintf(out, "metric: %s on %zu validation rows\n", metric, res.val_rows);
      fprintf(out, "validation: %.6f -> %.6f%s\n", res.val_before, res.val_after,
              res.kept_start ? " (no candidate beat the start: the model is unchanged)" : "");
      if (cfg.test) fprintf(out, "test:       %.6f -> %.6f\n", res.test_before, res.test_after);
    }
    if (isnan(res.bound))
      fprintf(out, "bound: none: %s\n", res.no_bound);
    else
      fprintf(out,
              "bound: |validation - true| <= %.4f with probability >= %.3g\n"
              "       (ln N = %.1f possible outputs for lambda %zu over %lld generations, T = %zu rows, "
              "delta %.3g)\n",
              res.bound, 1 - delta, res.log_outputs, res.lambda, (long long)res.generations, res.val_rows,
              delta);
    if (cfg.out && cfg.model) fprintf(out, "model: %s\n", cfg.out);
  }
  code = NG_EXIT_OK;
done:
  ng_cli_run_close(&run);
  free(res.x_best);
  free(x0);
  if (rank != 0 && err) fclose(err);
  return code;
}
