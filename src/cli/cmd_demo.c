/* `nograd demo`: the options, and the table (text, or one JSON line per method with --json). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/json.h"
#include "nograd/demo.h"
#include "nograd/error.h"

/* Mean and sample standard deviation of row m of a table (sd NaN with one seed). */
static void stats(const double *table, size_t m, size_t n, double *mean, double *sd) {
  double sum = 0, ss = 0;
  for (size_t s = 0; s < n; s++)
    sum += table[m * n + s];
  *mean = sum / (double)n;
  for (size_t s = 0; s < n; s++)
    ss += (table[m * n + s] - *mean) * (table[m * n + s] - *mean);
  *sd = n > 1 ? sqrt(ss / (double)(n - 1)) : NAN;
}

/* One column: 19 characters wide, the mean's last digit at the same place with or without the spread. */
static void cell(FILE *out, const double *table, size_t m, size_t n, bool last) {
  double mean, sd;
  stats(table, m, n, &mean, &sd);
  if (n > 1)
    fprintf(out, "  %8.4f ± %-6.4f", mean, sd);
  else
    fprintf(out, "  %8.4f%s", mean, last ? "" : "         ");
}

static int find_method(const ng_demo_result *r, const char *name) {
  for (size_t m = 0; m < r->nmethods; m++)
    if (strcmp(r->methods[m], name) == 0) return (int)m;
  return -1;
}

static void print_table(FILE *out, const ng_demo_result *r, size_t steps) {
  size_t n = r->nseeds;
  fprintf(out, "nograd demo: glue priors for the synthetic target domain (nograd/demo.h)\n");
  fprintf(out, "  sources (rows):");
  for (size_t k = 0; k < NG_DEMO_SOURCES; k++)
    fprintf(out, " %s %zu%s", r->sources[k], r->source_rows[k], k + 1 < NG_DEMO_SOURCES ? "," : "\n");
  fprintf(out, "  %s\n", r->setup);
  fprintf(out, "  target: %d train, %d val, %d test rows; glue steps %zu; ", NG_DEMO_TRAIN_ROWS,
          NG_DEMO_VAL_ROWS, NG_DEMO_TEST_ROWS, steps);
  if (n > 1)
    fprintf(out, "seeds %llu..%llu (mean ± sd over seeds)\n\n", (unsigned long long)r->seeds[0],
            (unsigned long long)r->seeds[n - 1]);
  else
    fprintf(out, "seed %llu\n\n", (unsigned long long)r->seeds[0]);
  fprintf(out, "%-9s    %-15s    %-15s    %s\n", "method", "prior val loss", "prior val acc",
          "test acc after fine-tuning");
  for (size_t m = 0; m < r->nmethods; m++) {
    fprintf(out, "%-9s", r->methods[m]);
    cell(out, r->prior_loss, m, n, false);
    cell(out, r->prior_accuracy, m, n, false);
    cell(out, r->test_accuracy, m, n, true);
    fputc('\n', out);
  }
  int spsa = find_method(r, "spsa"), uni = find_method(r, "uniform"), ds = find_method(r, "datasize");
  if (spsa >= 0 && uni >= 0 && ds >= 0) {
    size_t wins = 0;
    for (size_t s = 0; s < n; s++) {
      double l = r->prior_loss[(size_t)spsa * n + s];
      wins += l < r->prior_loss[(size_t)uni * n + s] && l < r->prior_loss[(size_t)ds * n + s];
    }
    fprintf(out, "\nspsa's prior has a lower val loss than uniform's and datasize's in %zu of %zu seeds\n",
            wins, n);
  }
  fprintf(out, "time: %.1f s\n", r->seconds);
}

static void json_row(FILE *out, const char *key, const double *table, size_t m, size_t n) {
  double mean, sd;
  stats(table, m, n, &mean, &sd);
  fprintf(out, ",\"%s\":[", key);
  for (size_t s = 0; s < n; s++) {
    if (s) fputc(',', out);
    ng_json_number(out, table[m * n + s]);
  }
  fprintf(out, "],\"%s_mean\":", key);
  ng_json_number(out, mean);
  fprintf(out, ",\"%s_sd\":", key);
  ng_json_number(out, sd);
}

static void print_json(FILE *out, const ng_demo_result *r, size_t steps) {
  size_t n = r->nseeds;
  for (size_t m = 0; m < r->nmethods; m++) {
    fprintf(out, "{\"method\":\"%s\",\"steps\":%zu,\"seeds\":[", r->methods[m], steps);
    for (size_t s = 0; s < n; s++)
      fprintf(out, "%s%llu", s ? "," : "", (unsigned long long)r->seeds[s]);
    fputc(']', out);
    json_row(out, "prior_loss", r->prior_loss, m, n);
    json_row(out, "prior_accuracy", r->prior_accuracy, m, n);
    json_row(out, "test_accuracy", r->test_accuracy, m, n);
    fprintf(out, ",\"seconds\":%.3f}\n", r->seconds);
  }
}

int ng_cmd_demo(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  ng_demo_config cfg = {.seeds = NG_DEMO_DEFAULT_SEEDS,
                        .seed = 1,
                        .steps = NG_DEMO_DEFAULT_STEPS,
                        .rows = NG_DEMO_DEFAULT_ROWS};
  bool json = false, quiet = false;
  ng_arg table[] = {
      {"--seeds", NG_ARG_POSINT, &cfg.seeds, "N", "run N seeds: S, S+1, ... (at most 100)"},
      {"--seed", NG_ARG_UINT64, &cfg.seed, "S", "the first seed"},
      {"--steps", NG_ARG_POSINT, &cfg.steps, "N",
       "glue generations of spsa, cmaes and fullgrad"},
      {"--rows", NG_ARG_POSINT, &cfg.rows, "N", "mean rows per source domain, 10 .. 100000"},
      {"--keep", NG_ARG_STRING, &cfg.dir, "DIR",
       "work in DIR (made if missing) and keep the data and models there (default: a temporary directory, "
       "removed)"},
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line per method instead of the table"},
      {"--quiet", NG_ARG_FLAG, &quiet, NULL, "no progress lines"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  int code = ng_args_parse("demo", "[--seeds N] [--seed S] [--steps N] [--rows N] [--keep DIR] [--json]",
                           table, ntable, argc, argv, 2, out ? out : err, err);
  if (ng_args_finished(&code)) goto done;
  code = NG_EXIT_USAGE;
  if (cfg.seeds > NG_DEMO_MAX_SEEDS) {
    fprintf(err, "nograd demo: --seeds: expected 1 .. %d, got %zu\n", NG_DEMO_MAX_SEEDS, cfg.seeds);
    goto done;
  }
  if (cfg.rows < 10 || cfg.rows > NG_DEMO_MAX_ROWS) {
    fprintf(err, "nograd demo: --rows: expected 10 .. %d, got %zu\n", NG_DEMO_MAX_ROWS, cfg.rows);
    goto done;
  }
  cfg.progress = quiet || rank != 0 ? NULL : stderr;
  ng_demo_result res;
  int st = ng_app_demo(comm, &cfg, &res);
  if (st != NG_OK) {
    fprintf(err, "nograd demo: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
    goto done;
  }
  code = NG_EXIT_OK;
  if (out && json)
    print_json(out, &res, cfg.steps);
  else if (out)
    print_table(out, &res, cfg.steps);
  ng_demo_result_free(&res);
done:
  if (rank != 0 && err) fclose(err);
  return code;
}
