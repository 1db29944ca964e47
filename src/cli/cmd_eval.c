/* `nograd eval MODEL.h5 DATA.h5` (or MODEL.onnx): loss, metrics and forward throughput of a model on a
 * dataset, data-parallel under mpirun and the same bits for any number of ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "nograd/error.h"
#include "nograd/train.h"

#define EVAL_USAGE "MODEL.h5 DATA.h5 [options]"

/* "a, b, c": the metrics `nograd eval` reports, from the library's table. */
static void eval_metric_names(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int k = 0; k < NG_EVAL_NMETRICS && used < len; k++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", k ? ", " : "", ng_eval_metric_name(k));
}

/* "accuracy,macro_f1" into the flags; the order asked is kept in order[] for the report. */
static int parse_metrics(const char *list, ng_eval_config *cfg, int *order, int *norder, FILE *err) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", list);
  *norder = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    int k = ng_eval_metric_from_name(tok);
    if (k < 0) {
      char known[256];
      eval_metric_names(known, sizeof known);
      fprintf(err, "nograd eval: --metric: unknown metric '%s' (expected one of %s)\n", tok, known);
      return -1;
    }
    if (!cfg->metrics[k]) order[(*norder)++] = k;
    cfg->metrics[k] = true;
  }
  if (*norder == 0) {
    fprintf(err, "nograd eval: --metric: expected a comma-separated list of metrics, got '%s'\n", list);
    return -1;
  }
  return 0;
}

int ng_cmd_eval(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  ng_eval_config cfg;
  ng_eval_config_init(&cfg); /* the library's defaults: what --help shows */
  const char *metrics = NULL;
  bool json = false;
  char known[256], metric_help[320];
  eval_metric_names(known, sizeof known);
  snprintf(metric_help, sizeof metric_help, "comma-separated, of %s (default accuracy)", known);
  ng_arg table[] = {
      {"--metric", NG_ARG_STRING, &metrics, "LIST", metric_help},
      {"--threshold", NG_ARG_DOUBLE, &cfg.threshold, "T",
       "threshold_error: class 1 when softmax[1] >= T (default: the threshold stored in the model, "
       "e.g. by nograd retrofit, else 0.5)",
       false, true},
      {"--batch", NG_ARG_POSINT, &cfg.batch, "B", "examples per forward pass", false, false, INT32_MAX},
      {"--chunk-rows", NG_ARG_POSINT, &cfg.chunk_rows, "C", "rows per chunk, the unit of summation order"},
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  int npos = 0;
  while (2 + npos < argc && strncmp(argv[2 + npos], "--", 2) != 0 && strcmp(argv[2 + npos], "-h") != 0)
    npos++;
  int code = ng_args_parse("eval", EVAL_USAGE, table, ntable, argc, argv, 2 + npos, out ? out : err, err);
  if (ng_args_finished(&code)) goto done;
  code = NG_EXIT_USAGE;
  if (npos != 2) {
    fprintf(err, "nograd eval: expected MODEL.h5 DATA.h5, got %d file name%s (usage: nograd eval %s)\n", npos,
            npos == 1 ? "" : "s", EVAL_USAGE);
    goto done;
  }
  cfg.model = argv[2];
  cfg.data = argv[3];
  if (!isnan(cfg.threshold) && !(cfg.threshold >= 0 && cfg.threshold <= 1)) {
    fprintf(err, "nograd eval: --threshold: expected a number in [0, 1], got %g\n", cfg.threshold);
    goto done;
  }
  int order[NG_EVAL_NMETRICS], norder = 0;
  if (metrics && parse_metrics(metrics, &cfg, order, &norder, err) != 0) goto done;
  bool defaulted = !metrics;
  if (defaulted) {
    cfg.metrics[NG_METRIC_ACCURACY] = true;
    order[0] = NG_METRIC_ACCURACY;
    norder = 1;
  }
  ng_eval_result res = {0};
  int st = ng_app_eval(comm, &cfg, &res);
  if (st == NG_EINVAL &&
      defaulted) { /* float targets: the default accuracy does not apply; report the loss */
    memset(cfg.metrics, 0, sizeof cfg.metrics);
    norder = 0;
    st = ng_app_eval(comm, &cfg, &res);
  }
  if (st != NG_OK) {
    fprintf(err, "nograd eval: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
    goto done;
  }
  code = NG_EXIT_OK;
  if (out && json) {
    fprintf(out, "{\"loss\":");
    ng_json_number(out, res.loss);
    for (int i = 0; i < norder; i++) {
      fprintf(out, ",\"%s\":", ng_eval_metric_name(order[i]));
      ng_json_number(out, res.metrics[order[i]]);
    }
    fprintf(out, ",\"n\":%lld,\"samples_per_s\":", (long long)res.n);
    ng_json_number(out, res.samples_per_s);
    fprintf(out, ",\"seconds\":%.6f}\n", res.seconds);
  } else if (out) {
    fprintf(out, "loss: %.17g%s\n", res.loss, res.targets ? " (mse)" : " (cross-entropy)");
    for (int i = 0; i < norder; i++)
      fprintf(out, "%s: %.17g\n", ng_eval_metric_name(order[i]), res.metrics[order[i]]);
    fprintf(out, "n: %lld\nsamples_per_s: %.1f\nseconds: %.3f\n", (long long)res.n, res.samples_per_s,
            res.seconds);
  }
done:
  if (rank != 0 && err) fclose(err);
  return code;
}
