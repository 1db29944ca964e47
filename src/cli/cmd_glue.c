/* `nograd glue`: the options, the runs (one method, or all of them in turn), and the report (text, or one
 * JSON line per method with --json; the loss curves as CSV with --curves). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/runopts.h"
#include "core/json.h"
#include "nograd/error.h"
#include "nograd/glue.h"

/* The order of --method all: the fixed baselines first, then the learned ones. */
static const ng_glue_method all_methods[] = {NG_GLUE_UNIFORM,  NG_GLUE_DATASIZE, NG_GLUE_PROXY, NG_GLUE_BEST,
                                             NG_GLUE_FULLGRAD, NG_GLUE_SPSA,     NG_GLUE_CMAES};
#define NALL (sizeof all_methods / sizeof all_methods[0])

/* PATH with "-SUFFIX" before a trailing ".h5" (or at the end); malloc'd. */
static char *with_suffix(const char *path, const char *suffix) {
  size_t len = strlen(path), stem = len > 3 && strcmp(path + len - 3, ".h5") == 0 ? len - 3 : len;
  char *s = malloc(len + strlen(suffix) + 2);
  if (s) sprintf(s, "%.*s-%s%s", (int)stem, path, suffix, path + stem);
  return s;
}

static void print_json(FILE *out, const char *method, const char *granularity, const ng_glue_result *r,
                       const char *prior) {
  fprintf(out, "{\"method\":\"%s\",\"granularity\":\"%s\",\"prior_loss\":", method, granularity);
  ng_json_number(out, r->prior_loss);
  fprintf(out, ",\"prior_accuracy\":");
  ng_json_number(out, r->prior_accuracy);
  fprintf(out, ",\"train_loss\":");
  ng_json_number(out, r->train_loss);
  fprintf(out, ",\"train_accuracy\":");
  ng_json_number(out, r->train_accuracy);
  fprintf(out, ",\"weights\":[");
  for (size_t i = 0; r->weights && i < r->K * r->L; i++) {
    if (i) fputc(',', out);
    ng_json_number(out, r->weights[i]);
  }
  fprintf(out, "],\"K\":%zu,\"L\":%zu,\"evaluations\":%lld,\"seconds\":%.6f,\"prior\":", r->K, r->L,
          (long long)r->evaluations, r->seconds);
  ng_json_string(out, prior);
  fprintf(out, "}\n");
}

static void print_text(FILE *out, const char *method, const ng_glue_result *r, const char *prior,
                       const ng_arg_list *experts) {
  fprintf(out,
          "method: %s\nprior_loss: %.10g\nprior_accuracy: %.6f\ntrain_loss: %.10g\ntrain_accuracy: "
          "%.6f\nweights:",
          method, r->prior_loss, r->prior_accuracy, r->train_loss, r->train_accuracy);
  for (size_t k = 0; r->weights && k < r->K; k++) {
    fprintf(out, "\n  expert %zu (%s):", k + 1, experts->items[k]);
    for (size_t l = 0; l < r->L && l < 16; l++)
      fprintf(out, " %.6f", r->weights[k * r->L + l]);
    if (r->L > 16) fprintf(out, " ...");
  }
  fprintf(out, "\nevaluations: %lld\nseconds: %.3f\nprior: %s\n", (long long)r->evaluations, r->seconds,
          prior);
}

/* One row of the --method all table; weights shown per expert (their mean over layer groups). */
static void print_row(FILE *out, const char *method, const ng_glue_result *r) {
  fprintf(out, "%-9s %11.6f %9.4f %11.6f %7lld %8.2f  ", method, r->prior_loss, r->prior_accuracy,
          r->train_loss, (long long)r->evaluations, r->seconds);
  for (size_t k = 0; r->weights && k < r->K; k++) {
    double m = 0;
    for (size_t l = 0; l < r->L; l++)
      m += r->weights[k * r->L + l];
    fprintf(out, "%s%.3f", k ? " " : "", m / (double)r->L);
  }
  fputc('\n', out);
}

/* Rank 0: the curves of the runs as CSV (method,step,loss), written to PATH.tmp and renamed. */
static int write_curves(const char *path, const ng_glue_method *methods, const ng_glue_result *res,
                        size_t count) {
  char *tmp = with_suffix(path, "tmp");
  FILE *f = tmp ? fopen(tmp, "w") : NULL;
  if (!f) {
    int st = ng_error(NG_EIO, "--curves: cannot write '%s': %s", tmp ? tmp : path, strerror(errno));
    free(tmp);
    return st;
  }
  fprintf(f, "method,step,loss\n");
  for (size_t m = 0; m < count; m++)
    for (size_t i = 0; i < res[m].ncurve; i++)
      fprintf(f, "%s,%zu,%.17g\n", ng_glue_method_name(methods[m]), i + 1, res[m].curve[i]);
  int bad = ferror(f) | fclose(f);
  if (bad || rename(tmp, path) != 0) {
    int st = ng_error(NG_EIO, "--curves: cannot write '%s': %s", path, strerror(errno));
    remove(tmp);
    free(tmp);
    return st;
  }
  free(tmp);
  return NG_OK;
}

/* The per-method path of --checkpoint or --resume under --method all: FILE-METHOD.h5 (NULL without FILE). For
 * --resume, NULL also when that file does not exist: the method starts afresh (it had not begun). */
static int method_path(const char *file, const char *method, bool all, bool must_exist, char **out) {
  *out = NULL;
  if (!file) return 0;
  *out = all ? with_suffix(file, method) : strdup(file);
  if (!*out) return -1;
  if (all && must_exist) {
    struct stat sb;
    if (stat(*out, &sb) != 0) {
      free(*out);
      *out = NULL;
    }
  }
  return 0;
}

int ng_cmd_glue(MPI_Comm comm, int argc, char **argv) {
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  FILE *out = rank == 0 ? stdout : NULL, *err = rank == 0 ? stderr : fopen("/dev/null", "w");
  ng_glue_config cfg;
  ng_glue_config_init(&cfg); /* the library's defaults: what --help shows */
  ng_cli_run run;
  ng_cli_run_init(&run);
  ng_arg_list experts = {0}, expert = {0};
  const char *method = ng_glue_method_name(cfg.method), *granularity = cfg.per_layer ? "layer" : "model",
             *sizes_text = NULL, *proxy = cfg.proxy_loss ? "loss" : "accuracy", *curves = NULL;
  bool json = false, no_cache = false;
  ng_arg table[] = {
      {"--experts", NG_ARG_LIST, &experts, "E.h5",
       "expert model files of one architecture (nograd's .h5 or ONNX .onnx); takes the following non-option "
       "arguments too"},
      {"--expert", NG_ARG_LIST, &expert, "E.h5", "one expert model file (repeatable)"},
      {"--target-train", NG_ARG_STRING, &cfg.target_train, "T.h5", "target train split (dataset)"},
      {"--target-val", NG_ARG_STRING, &cfg.target_val, "V.h5",
       "target validation split: where the prior is measured (default: the train split)"},
      {"--out", NG_ARG_STRING, &cfg.out, "PRIOR.h5",
       "the prior's model file (.onnx for ONNX experts); with --method all a directory, which gets METHOD.h5 "
       "(METHOD.onnx) for each method"},
      {"--method", NG_ARG_STRING, &method, "M",
       "spsa, cmaes, fullgrad, uniform, datasize, proxy, best, or all of them"},
      {"--granularity", NG_ARG_STRING, &granularity, "G",
       "model (one weight per expert) or layer (per expert and layer)"},
      {"--steps", NG_ARG_POSINT, &cfg.steps, "N", "spsa, cmaes, fullgrad: steps (generations)"},
      {"--q", NG_ARG_POSINT, &cfg.q, "Q", "spsa: perturbation pairs per step"},
      {"--sigma0", NG_ARG_POSDOUBLE, &cfg.sigma0, "S", "spsa's c, cmaes' initial step size"},
      {"--lr", NG_ARG_POSDOUBLE, &cfg.lr, "LR", "fullgrad: Adam's learning rate"},
      {"--sizes", NG_ARG_STRING, &sizes_text, "N1,..,NK",
       "datasize: the experts' training-set sizes (default: train_rows of each model file)"},
      {"--proxy", NG_ARG_STRING, &proxy, "P",
       "proxy: pick the expert by accuracy or loss on the target train split"},
      {"--seed", NG_ARG_UINT64, &cfg.seed, "K", "random seed"},
      {"--chunk-rows", NG_ARG_POSINT, &cfg.chunk_rows, "C", "rows per data chunk"},
      NG_CLI_RUN_OPTIONS(&run),
      {"--curves", NG_ARG_STRING, &curves, "FILE.csv",
       "write the train loss per step of spsa, cmaes and fullgrad: method,step,loss"},
      {"--no-first-layer-cache", NG_ARG_FLAG, &no_cache, NULL,
       "spsa, cmaes: mix the first layer's parameters per candidate (to measure what the cache buys)"},
      {"--json", NG_ARG_FLAG, &json, NULL, "print one JSON line per method"},
  };
  size_t ntable = sizeof table / sizeof table[0];
  /* --experts A B C: the values after it up to the next option; rewrite to repeated --expert */
  char **args = malloc((size_t)(2 * argc + 1) * sizeof *args);
  char *prior_paths[NALL] = {0}, *ckpt_paths[NALL] = {0}, *resume_paths[NALL] = {0};
  ng_glue_result res[NALL];
  ng_glue_method methods[NALL];
  size_t nmethods = 0, done_runs = 0;
  double sizes[64];
  memset(res, 0, sizeof res);
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
  if (!cfg.target_train || !cfg.out) {
    fprintf(err, "nograd glue: %s is required (see nograd glue --help)\n",
            !cfg.target_train ? "--target-train" : "--out");
    goto done;
  }
  if (expert.count < 2) {
    fprintf(err, "nograd glue: at least 2 experts are needed (--experts E1.h5 E2.h5 ...), got %zu\n",
            expert.count);
    goto done;
  }
  bool all = strcmp(method, "all") == 0;
  int m = ng_glue_method_from_name(method);
  if (m < 0 && !all) {
    fprintf(err,
            "nograd glue: --method: expected spsa, cmaes, fullgrad, uniform, datasize, proxy, best or all, "
            "got '%s'\n",
            method);
    goto done;
  }
  if (strcmp(granularity, "model") != 0 && strcmp(granularity, "layer") != 0) {
    fprintf(err, "nograd glue: --granularity: expected model or layer, got '%s'\n", granularity);
    goto done;
  }
  if (strcmp(proxy, "accuracy") != 0 && strcmp(proxy, "loss") != 0) {
    fprintf(err, "nograd glue: --proxy: expected accuracy or loss, got '%s'\n", proxy);
    goto done;
  }
  size_t nsizes = 0;
  if (sizes_text && (ng_args_doubles(sizes_text, sizes, 64, &nsizes) != 0 || nsizes != expert.count)) {
    fprintf(err, "nograd glue: --sizes: expected %zu comma-separated numbers (one per expert), got '%s'\n",
            expert.count, sizes_text);
    goto done;
  }
  /* ONNX experts give ONNX priors; fullgrad needs a backward pass, which only native models have. */
  bool onnx = ng_cli_onnx_path(expert.items[0]);
  const char *suffix = onnx ? "onnx" : "h5";
  if (!all && ng_cli_onnx_path(cfg.out) != onnx) {
    fprintf(err, "nograd glue: --out %s: the experts are %s models, so the prior is written as %s\n", cfg.out,
            onnx ? "ONNX" : "native",
            onnx ? "ONNX: give --out a name ending in .onnx"
                 : "a model file (HDF5): give --out a name that does not end in .onnx");
    goto done;
  }
  if (all) {
    nmethods = 0;
    for (size_t i = 0; i < NALL; i++)
      if (!(onnx && all_methods[i] == NG_GLUE_FULLGRAD)) methods[nmethods++] = all_methods[i];
    if (onnx)
      fprintf(err,
              "nograd glue: --method all on ONNX experts runs every method but fullgrad (no backward "
              "pass for ONNX models)\n");
  } else {
    methods[0] = (ng_glue_method)m;
    nmethods = 1;
  }
  code = ng_cli_run_policy(comm, "glue", &run, json || all, argc, argv, err, &cfg.run);
  if (code != 0) goto done;
  code = NG_EXIT_FAILURE;
  for (size_t i = 0; i < nmethods; i++) {
    const char *name = ng_glue_method_name(methods[i]);
    size_t len = strlen(cfg.out) + strlen(name) + 8;
    prior_paths[i] = malloc(len);
    if (!prior_paths[i]) goto done;
    if (all)
      snprintf(prior_paths[i], len, "%s/%s.%s", cfg.out, name, suffix);
    else
      snprintf(prior_paths[i], len, "%s", cfg.out);
    if (method_path(run.checkpoint, name, all, false, &ckpt_paths[i]) != 0 ||
        method_path(run.resume, name, all, true, &resume_paths[i]) != 0)
      goto done;
  }
  const char *out_dir = cfg.out;
  cfg.experts = expert.items;
  cfg.nexperts = expert.count;
  cfg.per_layer = strcmp(granularity, "layer") == 0;
  cfg.sizes = sizes_text ? sizes : NULL;
  cfg.proxy_loss = strcmp(proxy, "loss") == 0;
  cfg.no_cache = no_cache;
  int st = NG_OK;
  bool signalled = false;
  if (all) {
    /* every check first (datasize's sizes included), so that a bad input writes nothing */
    cfg.method = NG_GLUE_DATASIZE;
    cfg.check_only = 1;
    st = ng_app_glue(comm, &cfg, &res[0]);
    cfg.check_only = 0;
    if (st == NG_OK && rank == 0 && mkdir(out_dir, 0777) != 0 && errno != EEXIST)
      st = ng_error(NG_EIO, "--out: cannot create the directory '%s': %s", out_dir, strerror(errno));
    int bad = st != NG_OK;
    MPI_Bcast(&bad, 1, MPI_INT, 0, comm);
    if (bad && st == NG_OK) st = NG_EIO;
    if (out && st == NG_OK && !json)
      fprintf(out, "%-9s %11s %9s %11s %7s %8s  %s\n", "method", "prior_loss", "prior_acc", "train_loss",
              "evals", "seconds", "weights (per expert)");
  }
  for (size_t i = 0; i < nmethods && st == NG_OK && !signalled; i++) {
    cfg.method = methods[i];
    cfg.out = prior_paths[i];
    cfg.run.checkpoint = ckpt_paths[i];
    cfg.run.resume = resume_paths[i];
    st = ng_app_glue(comm, &cfg, &res[i]);
    if (st != NG_OK) break;
    signalled = res[i].signalled;
    if (signalled && cfg.run.checkpoint) break; /* resumable: no prior yet */
    done_runs = i + 1;
    const char *name = ng_glue_method_name(methods[i]);
    if (out && json)
      print_json(out, name, granularity, &res[i], prior_paths[i]);
    else if (out && all)
      print_row(out, name, &res[i]);
    else if (out)
      print_text(out, name, &res[i], prior_paths[i], &expert);
    if (out) fflush(out);
  }
  if (st == NG_OK && curves && !signalled) {
    if (rank == 0) st = write_curves(curves, methods, res, done_runs);
    int bad = st != NG_OK;
    MPI_Bcast(&bad, 1, MPI_INT, 0, comm);
    if (bad && st == NG_OK) st = NG_EIO;
  }
  if (st != NG_OK) {
    fprintf(err, "nograd glue: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    code = st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
    goto done;
  }
  if (signalled && cfg.run.checkpoint) {
    fprintf(err, "nograd glue: stopped by a signal after its checkpoint; continue with --resume\n");
    code = NG_EXIT_RESUMABLE;
    goto done;
  }
  if (signalled && done_runs < nmethods)
    fprintf(err,
            "nograd glue: stopped by a signal (no --checkpoint): %s ended early, the methods after it were "
            "not run\n",
            ng_glue_method_name(methods[done_runs - 1]));
  if (out && all && !json) fprintf(out, "priors: %s/METHOD.%s\n", out_dir, suffix);
  code = NG_EXIT_OK;
done:
  for (size_t i = 0; i < NALL; i++) {
    free(res[i].weights);
    free(res[i].curve);
    free(prior_paths[i]);
    free(ckpt_paths[i]);
    free(resume_paths[i]);
  }
  ng_cli_run_close(&run);
  free(args);
  if (rank != 0 && err) fclose(err);
  return code;
}
