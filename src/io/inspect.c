/* `nograd inspect`: what a nograd HDF5 file holds, as text for people or one JSON object for programs.
 *
 * Each kind of file is one line of a table (the top-level group that marks it, and its printer), so that
 * model files (/model/spec, /model/params, /model/index) can be added beside checkpoints. A file that
 * matches no kind goes to the checkpoint printer, whose reader then says which HDF5 path is missing. */
#include "nograd/inspect.h"
#include "core/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "core/text.h"
#include "io/ckpt_internal.h"
#include "nograd/ckpt.h"
#include "nograd/error.h"
#include "nograd/opt.h"
#include "nograd/state.h"

#define UNKNOWN INT64_MIN /* an integer the file does not give */

/* Indices into the optimizer's run/counters (see ng_opt_save in src/opt/opt.c). */
enum { COUNTER_GENERATION = 0, COUNTER_EVALUATIONS = 2, COUNTER_RESTARTS = 4, COUNTER_STOP = 10 };

/* ---- Output helpers -------------------------------------------------------------------------------------
 */

static void json_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    switch (*p) {
      case '"':
        fputs("\\\"", out);
        break;
      case '\\':
        fputs("\\\\", out);
        break;
      case '\n':
        fputs("\\n", out);
        break;
      case '\r':
        fputs("\\r", out);
        break;
      case '\t':
        fputs("\\t", out);
        break;
      case '\b':
        fputs("\\b", out);
        break;
      case '\f':
        fputs("\\f", out);
        break;
      default:
        if (*p < 0x20)
          fprintf(out, "\\u%04x", *p);
        else
          fputc(*p, out); /* UTF-8 passes through */
    }
  }
  fputc('"', out);
}

static void json_int(FILE *out, int64_t v) {
  if (v == UNKNOWN)
    fputs("null", out);
  else
    fprintf(out, "%" PRId64, v);
}

/* "key=value" lines as a JSON object of strings; a line without '=' is a key with an empty value. */
static void json_lines_object(FILE *out, const char *lines) {
  fputc('{', out);
  int first = 1;
  for (const char *p = lines ? lines : ""; *p;) {
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len) {
      const char *eq = memchr(p, '=', len);
      size_t klen = eq ? (size_t)(eq - p) : len;
      char *key = malloc(klen + 1), *value = malloc(len - klen + 1);
      if (key && value) {
        memcpy(key, p, klen);
        key[klen] = '\0';
        size_t vlen = eq ? len - klen - 1 : 0;
        if (vlen) memcpy(value, eq + 1, vlen);
        value[vlen] = '\0';
        fputs(first ? "" : ", ", out);
        json_string(out, key);
        fputs(": ", out);
        json_string(out, value);
        first = 0;
      }
      free(key);
      free(value);
    }
    p += len + (end ? 1 : 0);
  }
  fputc('}', out);
}

/* A multi-line value after a label: continuation lines are indented under the first. */
static void text_value(FILE *out, const char *label, const char *value) {
  fprintf(out, "  %-18s", label);
  for (const char *p = value ? value : ""; *p; p++) {
    fputc(*p, out);
    if (*p == '\n' && p[1]) fprintf(out, "  %-18s", "");
  }
  fputc('\n', out);
}

static void text_lines(FILE *out, const char *title, const char *lines) {
  fprintf(out, "%s\n", title);
  int any = 0;
  for (const char *p = lines ? lines : ""; *p;) {
    const char *end = strchr(p, '\n');
    int len = (int)(end ? end - p : (long)strlen(p));
    if (len) fprintf(out, "  %.*s\n", len, p);
    any |= len > 0;
    p += len + (end ? 1 : 0);
  }
  if (!any) fputs("  (none)\n", out);
}

static void text_int(FILE *out, const char *label, int64_t v) {
  if (v == UNKNOWN)
    fprintf(out, "  %-18s?\n", label);
  else
    fprintf(out, "  %-18s%" PRId64 "\n", label, v);
}

/* History values: counts as integers, the rest with 6 significant digits. */
static void text_cell(FILE *out, double v) {
  if (isfinite(v) && v == floor(v) && fabs(v) < 1e15)
    fprintf(out, " %13.0f", v);
  else
    fprintf(out, " %13.6g", v);
}

/* ---- Checkpoints ----------------------------------------------------------------------------------------
 */

typedef struct {
  ng_ckpt_info info;
  ng_state *opt;
  ng_history hist;
  size_t nbest;
  double best_f, sigma;
  int64_t n, generation, evaluations, restarts, stop;
  const char *stop_name; /* NULL when unknown */
} ckpt_summary;

/* Value `index` of the int64 entry `name`, or UNKNOWN; never sets an error (a summary takes what is there).
 */
static int64_t state_i64(const ng_state *st, const char *name, size_t index) {
  for (size_t i = 0; i < ng_state_count(st); i++) {
    const char *en;
    ng_state_type type;
    size_t len;
    const void *values;
    ng_state_entry(st, i, &en, &type, &len, &values);
    if (strcmp(en, name) == 0 && type == NG_STATE_I64 && index < len) return ((const int64_t *)values)[index];
  }
  return UNKNOWN;
}

/* A count from the history (a double in the file) as an integer, or UNKNOWN when it is not one. */
static int64_t whole(double v) {
  return ng__is_whole_in(v, -9e18, 9e18) ? (int64_t)v : UNKNOWN;
}

static int ckpt_load(const char *path, ckpt_summary *s) {
  memset(s, 0, sizeof *s);
  NG_CALL(ng_state_create(&s->opt));
  NG_CALL(ng_ckpt_read(path, &s->info, s->opt, &s->hist, NULL, &s->nbest, &s->best_f, NULL));
  ng_ckpt_info *in = &s->info; /* its strings are printed: made safe (a checksum does not make text safe) */
  char *texts[] = {in->program_version, in->optimizer, in->created};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    ng__text_sanitize(texts[i], 0);
  ng__text_sanitize(in->command_line, 1); /* printed with its lines indented */
  ng__text_sanitize(in->config, 1);
  ng__text_sanitize(in->budget, 1);
  for (size_t i = 0; i < in->ninputs; i++) {
    ng__text_sanitize(in->input_files[i], 0);
    ng__text_sanitize(in->input_checksums[i], 0);
  }
  s->n = state_i64(s->opt, "cfg/n", 0);
  if (s->n == UNKNOWN) s->n = (int64_t)s->nbest;
  s->generation = state_i64(s->opt, "run/counters", COUNTER_GENERATION);
  s->evaluations = state_i64(s->opt, "run/counters", COUNTER_EVALUATIONS);
  s->restarts = state_i64(s->opt, "run/counters", COUNTER_RESTARTS);
  s->stop = state_i64(s->opt, "run/counters", COUNTER_STOP);
  s->stop_name = s->stop == UNKNOWN ? NULL : ng_stop_name((ng_stop)s->stop);
  const double *last = s->hist.nrows ? s->hist.rows + (s->hist.nrows - 1) * NG_HISTORY_NCOLS : NULL;
  s->sigma = last ? last[NG_HIST_sigma] : NAN;
  /* a loop that is not an ng_opt (glue's fullgrad) keeps no run/counters: its history says where it is */
  if (s->generation == UNKNOWN && last) s->generation = whole(last[NG_HIST_generation]);
  if (s->evaluations == UNKNOWN && last) s->evaluations = whole(last[NG_HIST_evaluations]);
  return NG_OK;
}

static void ckpt_free(ckpt_summary *s) {
  ng_ckpt_info_free(&s->info);
  ng_state_destroy(&s->opt);
  ng_history_free(&s->hist);
}

/* The first history row to print for `last_rows` (< 0: all). */
static size_t first_row(const ng_history *h, int last_rows) {
  if (last_rows < 0 || (size_t)last_rows >= h->nrows) return 0;
  return h->nrows - (size_t)last_rows;
}

static void ckpt_text(const char *path, const ckpt_summary *s, int last_rows, FILE *out) {
  const ng_ckpt_info *in = &s->info;
  fprintf(out, "nograd checkpoint '%s'\n", path);
  fprintf(out, "  %-18s%d\n", "format version", in->format_version);
  text_value(out, "program version", in->program_version);
  text_value(out, "created", in->created);
  text_value(out, "command line", in->command_line);
  fprintf(out, "  %-18s%d in %d group%s\n", "ranks", in->ranks, in->groups, in->groups == 1 ? "" : "s");
  text_lines(out, "configuration", in->config);
  text_lines(out, "budget", in->budget);
  fputs("input files\n", out);
  if (!in->ninputs) fputs("  (none)\n", out);
  for (size_t i = 0; i < in->ninputs; i++)
    fprintf(out, "  %s  %s\n", in->input_checksums[i], in->input_files[i]);
  fputs("state\n", out);
  text_value(out, "optimizer", in->optimizer);
  text_int(out, "dimension", s->n);
  text_int(out, "generation", s->generation);
  text_int(out, "evaluations", s->evaluations);
  text_int(out, "restarts", s->restarts);
  text_value(out, "stop reason", s->stop_name ? s->stop_name : "?");
  fprintf(out, "  %-18s%.17g\n", "best f", s->best_f);
  if (isnan(s->sigma))
    fprintf(out, "  %-18s?\n", "sigma");
  else
    fprintf(out, "  %-18s%.6g\n", "sigma", s->sigma);

  size_t from = first_row(&s->hist, last_rows);
  fprintf(out, "history: %zu generation%s", s->hist.nrows, s->hist.nrows == 1 ? "" : "s");
  if (last_rows == 0 || s->hist.nrows == 0) {
    fputc('\n', out);
    return;
  }
  fprintf(out, ", the last %zu\n", s->hist.nrows - from);
  const char *const *cols = ng_history_columns();
  for (size_t j = 0; j < NG_HISTORY_NCOLS; j++)
    fprintf(out, " %13s", cols[j]);
  fputc('\n', out);
  for (size_t i = from; i < s->hist.nrows; i++) {
    for (size_t j = 0; j < NG_HISTORY_NCOLS; j++)
      text_cell(out, s->hist.rows[i * NG_HISTORY_NCOLS + j]);
    fputc('\n', out);
  }
}

static void ckpt_json(const char *path, const ckpt_summary *s, int last_rows, FILE *out) {
  const ng_ckpt_info *in = &s->info;
  fputs("{\n  \"kind\": \"checkpoint\",\n  \"file\": ", out);
  json_string(out, path);
  fprintf(out, ",\n  \"format_version\": %d,\n  \"program_version\": ", in->format_version);
  json_string(out, in->program_version);
  fputs(",\n  \"created\": ", out);
  json_string(out, in->created);
  fputs(",\n  \"command_line\": ", out);
  json_string(out, in->command_line);
  fputs(",\n  \"config\": ", out);
  json_lines_object(out, in->config);
  fputs(",\n  \"budget\": ", out);
  json_lines_object(out, in->budget);
  fprintf(out, ",\n  \"ranks\": %d,\n  \"groups\": %d,\n  \"inputs\": [", in->ranks, in->groups);
  for (size_t i = 0; i < in->ninputs; i++) {
    fputs(i ? ", {\"file\": " : "{\"file\": ", out);
    json_string(out, in->input_files[i]);
    fputs(", \"checksum\": ", out);
    json_string(out, in->input_checksums[i]);
    fputc('}', out);
  }
  fputs("],\n  \"optimizer\": ", out);
  json_string(out, in->optimizer);
  fputs(",\n  \"n\": ", out);
  json_int(out, s->n);
  fputs(",\n  \"generation\": ", out);
  json_int(out, s->generation);
  fputs(",\n  \"evaluations\": ", out);
  json_int(out, s->evaluations);
  fputs(",\n  \"restarts\": ", out);
  json_int(out, s->restarts);
  fputs(",\n  \"stop_reason\": ", out);
  if (s->stop_name)
    json_string(out, s->stop_name);
  else
    fputs("null", out);
  fputs(",\n  \"best_f\": ", out);
  ng_json_number(out, s->best_f);
  fputs(",\n  \"sigma\": ", out);
  ng_json_number(out, s->sigma);
  fprintf(out, ",\n  \"history_rows\": %zu,\n  \"history_columns\": [", s->hist.nrows);
  const char *const *cols = ng_history_columns();
  for (size_t j = 0; j < NG_HISTORY_NCOLS; j++) {
    if (j) fputs(", ", out);
    json_string(out, cols[j]);
  }
  fputs("],\n  \"history_last\": [", out);
  size_t from = last_rows == 0 ? s->hist.nrows : first_row(&s->hist, last_rows);
  for (size_t i = from; i < s->hist.nrows; i++) {
    fputs(i > from ? ",\n    [" : "\n    [", out);
    for (size_t j = 0; j < NG_HISTORY_NCOLS; j++) {
      if (j) fputs(", ", out);
      ng_json_number(out, s->hist.rows[i * NG_HISTORY_NCOLS + j]);
    }
    fputc(']', out);
  }
  fputs(from < s->hist.nrows ? "\n  ]\n}\n" : "]\n}\n", out);
}

static int inspect_checkpoint(const char *path, int json, int last_rows, FILE *out) {
  ckpt_summary s;
  int st = ckpt_load(path, &s);
  if (st == NG_OK) {
    if (json)
      ckpt_json(path, &s, last_rows, out);
    else
      ckpt_text(path, &s, last_rows, out);
  }
  ckpt_free(&s);
  return st;
}

/* ---- The kinds of files ---------------------------------------------------------------------------------
 */

typedef int (*inspect_fn)(const char *path, int json, int last_rows, FILE *out);

static const struct {
  const char *group; /* the top-level link that marks the kind */
  inspect_fn inspect;
} kinds[] = {
    {"meta", inspect_checkpoint}, /* a checkpoint */
};

int ng_inspect(const char *path, int json, int last_rows, FILE *out) {
  if (!path || !out) return ng_error(NG_EINVAL, "inspect: a path and an output stream are required");
  inspect_fn fn = kinds[0].inspect; /* no kind matched: its reader names what is missing */
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (ng_h5_has_toplevel(path, kinds[i].group)) {
      fn = kinds[i].inspect;
      break;
    }
  NG_CALL(fn(path, json, last_rows, out));
  if (fflush(out) != 0 || ferror(out))
    return ng_error(NG_EIO, "inspect: cannot write the report of '%s'", path);
  return NG_OK;
}
