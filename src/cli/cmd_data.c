/* `nograd data import|split|info|synth`: dataset files from text tables, IDX and other dataset files, and
 * synthetic multi-domain ones (nograd/domains.h).
 *
 * Rank 0 does all the work; the other ranks only learn the exit code. An error is one line on stderr naming
 * the file and the line, column or HDF5 path, and exits 1 (2 for a bad command line); an output file is
 * either complete or absent, never half-written (ng_data_write is atomic).
 *
 * import runs, in this order: parse (text or IDX, the label map applied to each label), --classes,
 * --shape, --value-range, --resize, then --standardize or --stats-from. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checked.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "nograd/data.h"
#include "nograd/domains.h"
#include "nograd/error.h"

#define DATA_USAGE                                                                                         \
  "usage: nograd data import FORMAT IN [IN2] --out OUT.h5 [options]   FORMAT: csv, table, idx or h5\n"     \
  "       nograd data split IN.h5 --train F --val F --test F --seed S --out-prefix P [--standardize]\n"    \
  "       nograd data info IN.h5\n"                                                                        \
  "       nograd data synth images|vectors --domain NAME --rows N --out OUT.h5 [--classes K] [--seed S]\n" \
  "       nograd data synth images|vectors --domains A,B,... --rows N --out-prefix P [options]\n"          \
  "Run `nograd data import --help` (or split, info, synth) for the options.\n"

/* Counts the leading arguments that are not options, from argv[first]. */
static int positionals(int argc, char **argv, int first) {
  int k = first;
  while (k < argc && strncmp(argv[k], "--", 2) != 0 && strcmp(argv[k], "-h") != 0)
    k++;
  return k - first;
}

/* The file name without its directory, a ".gz" and then its last extension: "processed.hungarian". */
static const char *base_name(const char *path, char *buf, size_t size) {
  const char *b = strrchr(path, '/');
  snprintf(buf, size, "%s", b ? b + 1 : path);
  size_t len = strlen(buf);
  if (len > 3 && strcmp(buf + len - 3, ".gz") == 0) buf[len - 3] = '\0';
  char *dot = strrchr(buf, '.');
  if (dot && dot != buf) *dot = '\0';
  return buf;
}

static void describe(FILE *out, const char *path, const ng_data *D) {
  fprintf(out, "%s: %zu rows, x %zu", path, D->n, D->n);
  for (int k = 0; k < D->xrank; k++)
    fprintf(out, "x%zu", D->xdims[k]);
  if (D->t)
    fprintf(out, ", %zu targets per row", D->t);
  else
    fprintf(out, ", %lld classes", (long long)D->classes);
  fprintf(out, "%s\n", D->mean ? ", standardized" : "");
}

/* Parses "A,B" or "AxB" (sep any of ",x") into n numbers; 0 on success. */
static int parse_list(const char *s, int n, double *v) {
  const char *p = s;
  for (int k = 0; k < n; k++) {
    char *end;
    v[k] = strtod(p, &end);
    if (end == p || !isfinite(v[k])) return -1;
    if (k < n - 1 && *end != ',' && *end != 'x') return -1;
    if (k == n - 1 && *end) return -1;
    p = end + 1;
  }
  return 0;
}

typedef struct {
  const char *format, *in1, *in2, *out, *delim, *label, *missing, *policy, *label_map, *name, *domain, *shape,
      *range, *resize, *stats_from;
  bool header, targets, standardize;
  size_t classes;
} import_opts;

/* Rank 0's part of import; returns an exit code, having printed the one-line error. */
static int run_import(const import_opts *o, FILE *out, FILE *err) {
  ng_label_map *map = NULL;
  ng_data D = {0};
  float *mean = NULL, *std = NULL;
  int code = NG_EXIT_USAGE, st = NG_OK;
  double shape[3] = {0}, range[2] = {0}, size[2] = {0};
  if (o->shape && (parse_list(o->shape, 3, shape) != 0 || !ng__is_whole_in(shape[0], 1, INT32_MAX) ||
                   !ng__is_whole_in(shape[1], 1, INT32_MAX) || !ng__is_whole_in(shape[2], 1, INT32_MAX))) {
    fprintf(err,
            "nograd data import: --shape: expected C,H,W, whole numbers in [1, %d] (e.g. 1,8,8), got '%s'\n",
            INT32_MAX, o->shape);
    goto done;
  }
  if (o->range && parse_list(o->range, 2, range) != 0) {
    fprintf(err, "nograd data import: --value-range: expected LO,HI (e.g. 0,255), got '%s'\n", o->range);
    goto done;
  }
  if (o->resize && (parse_list(o->resize, 2, size) != 0 || !ng__is_whole_in(size[0], 1, INT32_MAX) ||
                    !ng__is_whole_in(size[1], 1, INT32_MAX))) {
    fprintf(err,
            "nograd data import: --resize: expected HxW, whole numbers in [1, %d] (e.g. 16x16), got '%s'\n",
            INT32_MAX, o->resize);
    goto done;
  }
  if (o->standardize && o->stats_from) {
    fprintf(err, "nograd data import: --standardize and --stats-from exclude each other\n");
    goto done;
  }
  ng_text_options t = {
      .delim = ',', .header = o->header, .label = o->label, .missing = o->missing, .targets = o->targets};
  if (o->policy) {
    if (strcmp(o->policy, "drop") == 0)
      t.policy = NG_MISSING_DROP;
    else if (strcmp(o->policy, "mean") == 0)
      t.policy = NG_MISSING_MEAN;
    else if (strcmp(o->policy, "median") == 0)
      t.policy = NG_MISSING_MEDIAN;
    else {
      fprintf(err, "nograd data import: --missing-policy: expected drop, mean or median, got '%s'\n",
              o->policy);
      goto done;
    }
  }
  if (o->delim) {
    if (strcmp(o->delim, "tab") == 0 || strcmp(o->delim, "\\t") == 0)
      t.delim = '\t';
    else if (strcmp(o->delim, "space") == 0 || strcmp(o->delim, "whitespace") == 0)
      t.delim = ' ';
    else if (strlen(o->delim) == 1)
      t.delim = o->delim[0];
    else {
      fprintf(err, "nograd data import: --delim: expected one character, tab or whitespace, got '%s'\n",
              o->delim);
      goto done;
    }
  }
  if (o->label_map && ng_label_map_parse(o->label_map, &map) != NG_OK) {
    fprintf(err, "nograd data import: %s\n", ng_errmsg());
    goto done;
  }
  int two = strcmp(o->format, "idx") == 0;
  if (two != (o->in2 != NULL)) {
    fprintf(err, "nograd data import: format %s takes %s\n", o->format,
            two ? "two files: IMAGES LABELS" : "one input file");
    goto done;
  }
  code = NG_EXIT_FAILURE;
  if (strcmp(o->format, "csv") == 0 || strcmp(o->format, "table") == 0) {
    if (strcmp(o->format, "table") == 0 && !o->delim) t.delim = ' ';
    st = ng_import_text(o->in1, &t, map, &D);
  } else if (two) {
    st = ng_import_idx(o->in1, o->in2, map, &D);
  } else if (strcmp(o->format, "h5") == 0) {
    st = ng_data_load(o->in1, &D);
    if (st == NG_OK && map && !D.t)
      for (size_t i = 0; i < D.n && st == NG_OK; i++) {
        double y;
        if (ng_label_map_apply(map, D.y[i], &y) != NG_OK || y != floor(y) || y < 0 || y > INT32_MAX - 1)
          st = ng_error(NG_EFORMAT,
                        "%s: HDF5 path '/y' row %zu: label %d is not in the --label-map or maps to no "
                        "label",
                        o->in1, i, (int)D.y[i]);
        else
          D.y[i] = (int32_t)y;
      }
    if (st == NG_OK && map) ng_data_count_classes(&D);
  } else {
    code = NG_EXIT_USAGE;
    fprintf(err, "nograd data import: unknown format '%s' (csv, table, idx or h5)\n", o->format);
    goto done;
  }
  if (st != NG_OK) goto fail;
  char buf[NG_DATA_NAME_MAX];
  if (o->name || !D.name[0])
    snprintf(D.name, sizeof D.name, "%s", o->name ? o->name : base_name(o->in1, buf, sizeof buf));
  if (o->domain || !D.domain[0]) snprintf(D.domain, sizeof D.domain, "%s", o->domain ? o->domain : D.name);
  if (o->classes) {
    if (D.t || (int64_t)o->classes < D.classes) {
      fprintf(err, "nograd data import: --classes %zu: %s %lld\n", o->classes,
              D.t ? "the data have targets, not labels; classes" : "the labels found need at least",
              (long long)D.classes);
      goto done;
    }
    D.classes = (int64_t)o->classes;
  }
  if (o->shape && (st = ng_data_reshape(&D, (size_t)shape[0], (size_t)shape[1], (size_t)shape[2])) != NG_OK)
    goto fail;
  if (o->range && (D.mean || (st = ng_data_rescale(&D, range[0], range[1])) != NG_OK)) {
    if (D.mean) st = ng_error(NG_EINVAL, "--value-range: '%s' is standardized already", o->in1);
    goto fail;
  }
  if (o->resize && (st = ng_data_resample(&D, (size_t)size[0], (size_t)size[1])) != NG_OK) goto fail;
  if (o->standardize && (st = ng_data_standardize(&D)) != NG_OK) goto fail;
  if (o->stats_from) {
    if ((st = ng_data_read_stats(o->stats_from, D.d, &mean, &std)) != NG_OK) goto fail;
    if ((st = ng_data_apply_stats(&D, mean, std)) != NG_OK) goto fail;
  }
  if ((st = ng_data_write(o->out, &D)) != NG_OK) goto fail;
  describe(out, o->out, &D);
  code = NG_EXIT_OK;
  goto done;
fail:
  fprintf(err, "nograd data import: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
done:
  free(mean);
  free(std);
  ng_data_free(&D);
  ng_label_map_destroy(&map);
  return code;
}

static int run_split(const char *in, const double frac[3], uint64_t seed, const char *prefix,
                     bool standardize, FILE *out, FILE *err) {
  static const char *const names[3] = {"train", "val", "test"};
  ng_data D = {0}, part[3] = {{0}};
  char path[3][4096];
  int written = 0, st = ng_data_load(in, &D);
  if (st == NG_OK) st = ng_data_split(&D, frac, seed, part);
  if (st == NG_OK && standardize) {
    if (D.mean)
      st = ng_error(NG_EINVAL, "--standardize: '%s' is standardized already", in);
    else if (part[0].n == 0)
      st = ng_error(NG_EINVAL, "--standardize: the training part is empty");
    else if ((st = ng_data_standardize(&part[0])) == NG_OK)
      for (int k = 1; k < 3 && st == NG_OK; k++)
        if (part[k].n) st = ng_data_apply_stats(&part[k], part[0].mean, part[0].std);
  }
  for (int k = 0; k < 3 && st == NG_OK; k++) {
    snprintf(path[k], sizeof path[k], "%s-%s.h5", prefix, names[k]);
    if (frac[k] == 0) continue;
    if (part[k].n == 0) {
      st = ng_error(NG_EINVAL, "split: the %s part of '%s' would be empty (fraction %g of %zu rows)",
                    names[k], in, frac[k], D.n);
      break;
    }
    if ((st = ng_data_write(path[k], &part[k])) == NG_OK) written = k + 1;
  }
  if (st != NG_OK) {
    /* all or nothing: a failed split leaves none of its parts */
    for (int k = 0; k < written; k++)
      if (frac[k] > 0) unlink(path[k]);
    fprintf(err, "nograd data split: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
  } else {
    for (int k = 0; k < 3; k++)
      if (frac[k] > 0) describe(out, path[k], &part[k]);
  }
  for (int k = 0; k < 3; k++)
    ng_data_free(&part[k]);
  ng_data_free(&D);
  return st == NG_OK ? NG_EXIT_OK : st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
}

static int run_info(const char *in, FILE *out, FILE *err) {
  ng_dataset *ds = NULL;
  int32_t *y = NULL;
  int64_t *counts = NULL;
  int st = ng_dataset_open(in, &ds);
  if (st == NG_OK) {
    const ng_data_info *i = ng_dataset_info(ds);
    fprintf(out, "file:     %s\nname:     %s\ndomain:   %s\nrows:     %zu\nx:        float32 %zu", in,
            i->name, i->domain, i->n, i->n);
    for (int k = 0; k < i->xrank; k++)
      fprintf(out, " x %zu", i->xdims[k]);
    fprintf(out, "%s\n", i->standardized ? " (standardized: /x has mean and std)" : "");
    if (i->t) {
      fprintf(out, "y:        float32 %zu x %zu targets\n", i->n, i->t);
    } else {
      y = malloc((i->n ? i->n : 1) * sizeof *y);
      counts = calloc((size_t)i->classes, sizeof *counts);
      if (!y || !counts)
        st = ng_error(NG_ENOMEM, "dataset '%s': out of memory", in);
      else
        st = ng_dataset_read_rows(ds, 0, i->n, NULL, y);
      if (st == NG_OK) {
        for (size_t r = 0; r < i->n; r++)
          counts[y[r]]++;
        fprintf(out, "y:        int32 %zu labels, %lld classes\ncounts:  ", i->n, (long long)i->classes);
        for (int64_t c = 0; c < i->classes; c++)
          fprintf(out, " %lld", (long long)counts[c]);
        fprintf(out, "\n");
      }
    }
  }
  if (st != NG_OK) fprintf(err, "nograd data info: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
  free(counts);
  free(y);
  ng_dataset_close(&ds);
  return st == NG_OK ? NG_EXIT_OK : NG_EXIT_FAILURE;
}

typedef struct {
  const char *kind, *domain, *domains, *out, *prefix;
  size_t rows, classes, dim;
  uint64_t seed;
} synth_opts;

/* Rank 0's part of synth: checks every domain name before writing anything; a failure removes the files this
 * call wrote, so that --domains writes all of them or none. Returns an exit code. */
static int run_synth(const synth_opts *o, FILE *out, FILE *err) {
  ng_domains_config cfg = {.classes = o->classes, .dim = o->dim, .seed = o->seed};
  char list[1024], names[256], path[16][4096];
  const char *dom[16];
  size_t ndom = 0, written = 0;
  if (strcmp(o->kind, "images") == 0)
    cfg.kind = NG_DOMAINS_IMAGES;
  else if (strcmp(o->kind, "vectors") == 0)
    cfg.kind = NG_DOMAINS_VECTORS;
  else {
    fprintf(err, "nograd data synth: unknown kind '%s' (images or vectors)\n", o->kind);
    return NG_EXIT_USAGE;
  }
  if (o->dim && cfg.kind == NG_DOMAINS_IMAGES) {
    fprintf(err, "nograd data synth: --dim is for vectors (images are %dx%d)\n", NG_DOMAINS_SIDE,
            NG_DOMAINS_SIDE);
    return NG_EXIT_USAGE;
  }
  snprintf(list, sizeof list, "%s", o->domain ? o->domain : o->domains);
  for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (ndom == sizeof dom / sizeof dom[0]) {
      fprintf(err, "nograd data synth: more than %zu domains\n", ndom);
      return NG_EXIT_USAGE;
    }
    if (!ng_domains_find(t)) {
      fprintf(err, "nograd data synth: unknown domain '%s' (known: %s)\n", t,
              ng_domains_names(names, sizeof names));
      return NG_EXIT_USAGE;
    }
    dom[ndom] = t;
    if (o->domain)
      snprintf(path[ndom], sizeof path[ndom], "%s", o->out);
    else
      snprintf(path[ndom], sizeof path[ndom], "%s-%s.h5", o->prefix, t);
    ndom++;
  }
  if (ndom == 0) {
    fprintf(err, "nograd data synth: no domain in '%s'\n", o->domain ? o->domain : o->domains);
    return NG_EXIT_USAGE;
  }
  int st = NG_OK;
  for (; written < ndom && st == NG_OK; written++)
    st = ng_domains_write(&cfg, dom[written], o->rows, path[written]);
  if (st != NG_OK) {
    for (size_t k = 0; k + 1 < written; k++)
      unlink(path[k]);
    fprintf(err, "nograd data synth: %s\n", ng_errmsg()[0] ? ng_errmsg() : ng_strerror(st));
    return st == NG_EINVAL ? NG_EXIT_USAGE : NG_EXIT_FAILURE;
  }
  for (size_t k = 0; k < ndom; k++)
    fprintf(out, "%s: %zu rows of synthetic %s, domain %s, %zu classes\n", path[k], o->rows, o->kind, dom[k],
            o->classes ? o->classes : (size_t)NG_DOMAINS_DEFAULT_CLASSES);
  return NG_EXIT_OK;
}

int ng_cmd_data(MPI_Comm comm, int argc, char **argv) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  FILE *out = rank == 0 ? stdout : fopen("/dev/null", "w"), *err = rank == 0 ? stderr : out;
  int code = NG_EXIT_USAGE;
  const char *sub = argc > 2 ? argv[2] : NULL;
  if (!sub || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
    fputs(DATA_USAGE, sub ? out : err);
    code = sub ? NG_EXIT_OK : NG_EXIT_USAGE;
    goto done;
  }
  int npos = positionals(argc, argv, 3), first = 3 + npos;
  if (strcmp(sub, "import") == 0) {
    import_opts o = {0};
    ng_arg table[] = {
        {"--out", NG_ARG_STRING, &o.out, "FILE", "the dataset file to write (HDF5; written atomically)"},
        {"--delim", NG_ARG_STRING, &o.delim, "C", "csv: field delimiter (default ','; 'tab', 'whitespace')"},
        {"--header", NG_ARG_FLAG, &o.header, NULL, "csv: the first line names the columns"},
        {"--label", NG_ARG_STRING, &o.label, "COL",
         "label column: number from 1, -1 for the last, or header name "
         "(default: last; first for table)"},
        {"--missing", NG_ARG_STRING, &o.missing, "TOKEN", "the token of a missing value, e.g. '?'"},
        {"--missing-policy", NG_ARG_STRING, &o.policy, "P",
         "drop (the row), mean or median (fill the column)"},
        {"--targets", NG_ARG_FLAG, &o.targets, NULL, "the label column is a float target (regression)"},
        {"--label-map", NG_ARG_STRING, &o.label_map, "SPEC", "gt:T, ge:T, lt:T, le:T, add:K or A=B,C=D,..."},
        {"--classes", NG_ARG_POSINT, &o.classes, "K", "number of classes (default: largest label + 1)", false,
         true, INT32_MAX},
        {"--name", NG_ARG_STRING, &o.name, "NAME", "the dataset's name (default: IN's base name)"},
        {"--domain", NG_ARG_STRING, &o.domain, "NAME", "its domain (default: the name)"},
        {"--shape", NG_ARG_STRING, &o.shape, "C,H,W", "give the feature rows an image shape"},
        {"--value-range", NG_ARG_STRING, &o.range, "LO,HI", "map x linearly so that LO -> 0 and HI -> 1"},
        {"--resize", NG_ARG_STRING, &o.resize, "HxW", "resample images (area average down, bilinear up)"},
        {"--standardize", NG_ARG_FLAG, &o.standardize, NULL,
         "subtract the feature means, divide by the stds"},
        {"--stats-from", NG_ARG_STRING, &o.stats_from, "FILE",
         "standardize with the mean and std of FILE's /x"},
    };
    code = ng_args_parse("data import", "FORMAT IN [IN2] --out OUT.h5 [options]", table,
                         sizeof table / sizeof table[0], argc, argv, first, out, err);
    if (ng_args_finished(&code)) goto done;
    code = NG_EXIT_USAGE;
    if (npos < 2 || npos > 3 || !o.out) {
      fprintf(err,
              "nograd data import: %s (usage: nograd data import FORMAT IN [IN2] --out OUT.h5 [options])\n",
              npos > 3 ? "too many input files"
              : !o.out ? "--out is required"
                       : "which format and file?");
      goto done;
    }
    o.format = argv[3];
    o.in1 = argv[4];
    o.in2 = npos == 3 ? argv[5] : NULL;
    if (rank == 0) code = run_import(&o, out, err);
  } else if (strcmp(sub, "split") == 0) {
    double frac[3] = {-1, 0, 0};
    uint64_t seed = 1;
    const char *prefix = NULL;
    bool standardize = false;
    ng_arg table[] = {
        {"--train", NG_ARG_DOUBLE, &frac[0], "F", "fraction of each class for training", false, true},
        {"--val", NG_ARG_DOUBLE, &frac[1], "F", "fraction for validation"},
        {"--test", NG_ARG_DOUBLE, &frac[2], "F", "fraction for testing"},
        {"--seed", NG_ARG_UINT64, &seed, "S", "random seed"},
        {"--out-prefix", NG_ARG_STRING, &prefix, "P",
         "write P-train.h5, P-val.h5, P-test.h5 (parts of fraction > 0)"},
        {"--standardize", NG_ARG_FLAG, &standardize, NULL,
         "standardize every part with the training part's stats"},
    };
    code = ng_args_parse("data split", "IN.h5 --train F --val F --test F --seed S --out-prefix P", table,
                         sizeof table / sizeof table[0], argc, argv, first, out, err);
    if (ng_args_finished(&code)) goto done;
    code = NG_EXIT_USAGE;
    if (npos != 1 || !prefix || frac[0] < 0) {
      fprintf(err,
              "nograd data split: %s (usage: nograd data split IN.h5 --train F --val F --test F --seed S "
              "--out-prefix P)\n",
              npos != 1 ? "one input file is needed"
              : !prefix ? "--out-prefix is required"
                        : "--train is required");
      goto done;
    }
    if (rank == 0) code = run_split(argv[3], frac, seed, prefix, standardize, out, err);
  } else if (strcmp(sub, "info") == 0) {
    code = ng_args_parse("data info", "IN.h5", NULL, 0, argc, argv, first, out, err);
    if (ng_args_finished(&code)) goto done;
    if (npos != 1) {
      fprintf(err, "nograd data info: which file? (usage: nograd data info IN.h5)\n");
      code = NG_EXIT_USAGE;
      goto done;
    }
    if (rank == 0) code = run_info(argv[3], out, err);
  } else if (strcmp(sub, "synth") == 0) {
    synth_opts o = {.seed = 1};
    ng_arg table[] = {
        {"--domain", NG_ARG_STRING, &o.domain, "NAME",
         "the domain: upright, tilted, small, noisy, bold, faint, skewed or target"},
        {"--domains", NG_ARG_STRING, &o.domains, "A,B,...",
         "several domains, one file each (with --out-prefix)"},
        {"--rows", NG_ARG_POSINT, &o.rows, "N", "rows to write (rows 0 .. N-1 of the domain)", false, true},
        {"--out", NG_ARG_STRING, &o.out, "FILE", "the dataset file to write, with --domain"},
        {"--out-prefix", NG_ARG_STRING, &o.prefix, "P", "with --domains: write P-NAME.h5 for each domain"},
        {"--classes", NG_ARG_POSINT, &o.classes, "K", "number of classes (default 10)", false, true,
         INT32_MAX},
        {"--dim", NG_ARG_POSINT, &o.dim, "D", "vectors: number of features (default 32)", false, true,
         INT32_MAX},
        {"--seed", NG_ARG_UINT64, &o.seed, "S", "random seed of the classes and domains"},
    };
    code = ng_args_parse("data synth", "images|vectors --domain NAME --rows N --out OUT.h5 [options]", table,
                         sizeof table / sizeof table[0], argc, argv, first, out, err);
    if (ng_args_finished(&code)) goto done;
    code = NG_EXIT_USAGE;
    const char *why = npos != 1                 ? "images or vectors?"
                      : !o.domain == !o.domains ? "give --domain or --domains"
                      : !o.rows                 ? "--rows is required"
                      : o.domain && !o.out      ? "--domain needs --out"
                      : o.domains && !o.prefix  ? "--domains needs --out-prefix"
                      : (o.domain && o.prefix) || (o.domains && o.out)
                          ? "--out goes with --domain, --out-prefix with --domains"
                          : NULL;
    if (why) {
      fprintf(err,
              "nograd data synth: %s (usage: nograd data synth images|vectors --domain NAME --rows N --out "
              "OUT.h5 [options])\n",
              why);
      goto done;
    }
    o.kind = argv[3];
    if (rank == 0) code = run_synth(&o, out, err);
  } else {
    fprintf(err, "nograd data: unknown subcommand '%s' (import, split, info or synth)\n", sub);
    goto done;
  }
done:
  MPI_Bcast(&code, 1, MPI_INT, 0, comm);
  if (rank != 0 && out) fclose(out);
  return code;
}
