/* Importers: delimited text tables (CSV, ';'-separated, whitespace tables) and MNIST's IDX files.
 *
 * Every file is read through zlib's gzopen, which reads gzip-compressed and plain files alike, so
 * "zip.test.gz" and "winequality-red.csv" need no option to tell them apart. Text is parsed strictly: a field
 * that is neither a finite number nor the missing-value token, a row with a different number of fields than
 * the first, and a label that is not a whole number >= 0 are errors that name the file, the line (from 1) and
 * the column (from 1, with its header name when there is one). Columns are numbered from 1 for people, as the
 * data sets' own descriptions do. A missing value is kept as NaN while the table is read (a finite number in
 * the file never is one) and resolved at the end by the policy. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/checked.h"
#include "nograd/data.h"
#include "nograd/error.h"

#define LABEL_MAX 1.0e6 /* labels above this are taken for a wrong label column, not a million classes */

/* ---- Lines and fields -----------------------------------------------------------------------------------
 */

typedef struct {
  const char *path;
  gzFile f;
  char *buf;
  size_t cap, len;
  size_t line; /* number of the line in buf, from 1 */
} reader;

/* Reads the next line into r->buf without its end-of-line characters: 1, or 0 at the end, or an error. */
static int next_line(reader *r) {
  r->len = 0;
  for (;;) {
    if (r->cap - r->len < 2) {
      size_t cap = r->cap ? 2 * r->cap : 4096;
      char *b = realloc(r->buf, cap);
      if (!b) return ng_error(NG_ENOMEM, "%s:%zu: out of memory for a line", r->path, r->line + 1);
      r->buf = b;
      r->cap = cap;
    }
    int room = r->cap - r->len > (size_t)INT32_MAX ? INT32_MAX : (int)(r->cap - r->len);
    if (!gzgets(r->f, r->buf + r->len, room)) {
      int err;
      const char *msg = gzerror(r->f, &err);
      if (err != Z_OK && err != Z_STREAM_END)
        return ng_error(NG_EIO, "%s:%zu: cannot read: %s", r->path, r->line + 1,
                        err == Z_ERRNO ? strerror(errno) : msg);
      if (r->len == 0) return 0;
      break;
    }
    r->len += strlen(r->buf + r->len);
    if (r->len && r->buf[r->len - 1] == '\n') break;
  }
  r->line++;
  while (r->len && (r->buf[r->len - 1] == '\n' || r->buf[r->len - 1] == '\r'))
    r->buf[--r->len] = '\0';
  return 1;
}

static int is_blank(char c) {
  return c == ' ' || c == '\t';
}

/* Appends a field, without surrounding blanks and double quotes; -1 when out of memory. */
static int push_field(char *start, char ***fields, size_t *cap, size_t *count) {
  if (*count == *cap) {
    size_t c = *cap ? 2 * *cap : 64;
    char **g = realloc(*fields, c * sizeof *g);
    if (!g) return -1;
    *fields = g;
    *cap = c;
  }
  while (is_blank(*start))
    start++;
  for (char *e = start + strlen(start); e > start && is_blank(e[-1]);)
    *--e = '\0';
  size_t n = strlen(start);
  if (n >= 2 && start[0] == '"' && start[n - 1] == '"') {
    start[n - 1] = '\0';
    start++;
  }
  (*fields)[(*count)++] = start;
  return 0;
}

/* Splits buf in place into fields. With delim ' ' a field ends at a run of blanks or tabs; otherwise at each
 * delimiter (so "a,,b" has an empty middle field). A quoted field cannot hold the delimiter: none of the
 * supported data needs it. */
static int split(char *buf, char delim, char ***fields, size_t *cap, size_t *count) {
  *count = 0;
  char *p = buf;
  for (;;) {
    if (delim == ' ') {
      while (is_blank(*p))
        p++;
      if (!*p) return 0;
    }
    char *start = p;
    while (*p && (delim == ' ' ? !is_blank(*p) : *p != delim))
      p++;
    int last = *p == '\0';
    *p = '\0';
    if (push_field(start, fields, cap, count) != 0) return -1;
    if (last) return 0;
    p++;
  }
}

/* ---- Text tables ----------------------------------------------------------------------------------------
 */

typedef struct {
  double *v; /* rows x ncols, NaN for a missing value */
  size_t *line;
  size_t rows, cap, ncols;
} table;

static int table_push(table *t, const reader *r) {
  if (t->rows == t->cap) {
    size_t c = t->cap ? 2 * t->cap : 1024;
    double *v = realloc(t->v, c * t->ncols * sizeof *v);
    if (v) t->v = v;
    size_t *l = v ? realloc(t->line, c * sizeof *l) : NULL;
    if (!l) return ng_error(NG_ENOMEM, "%s:%zu: out of memory for %zu rows", r->path, r->line, c);
    t->line = l;
    t->cap = c;
  }
  t->line[t->rows] = r->line;
  t->rows++;
  return NG_OK;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* "column 5 ('chol')" or "column 5". */
static const char *column_name(char *out, size_t size, size_t col, char **names) {
  if (names)
    snprintf(out, size, "column %zu ('%s')", col + 1, names[col]);
  else
    snprintf(out, size, "column %zu", col + 1);
  return out;
}

/* Finds the label column from the option: a number from 1, a negative number from the end, or a name. */
static int find_label(const char *path, const ng_text_options *o, size_t ncols, char **names, size_t *out) {
  if (!o->label) {
    *out = o->delim == ' ' ? 0 : ncols - 1;
    return NG_OK;
  }
  char *end;
  errno = 0;
  long v = strtol(o->label, &end, 10);
  if (*o->label && !*end && !errno) {
    if (v >= 1 && (size_t)v <= ncols) {
      *out = (size_t)v - 1;
      return NG_OK;
    }
    if (v < 0 && (size_t)(-(v + 1)) < ncols) { /* -(v + 1): no overflow for the most negative long */
      *out = ncols - 1 - (size_t)(-(v + 1));
      return NG_OK;
    }
    return ng_error(
        NG_EINVAL,
        "%s: label column %ld does not exist: the rows have %zu columns (1..%zu, or -1 for the last)", path,
        v, ncols, ncols);
  }
  if (!names)
    return ng_error(NG_EINVAL,
                    "%s: label column '%s' is a name, but the file has no header (give a column number)",
                    path, o->label);
  for (size_t k = 0; k < ncols; k++)
    if (strcmp(names[k], o->label) == 0) {
      *out = k;
      return NG_OK;
    }
  return ng_error(NG_EINVAL, "%s: no column named '%s' in the header", path, o->label);
}

/* Fills or drops the missing values. */
static int resolve_missing(const char *path, const ng_text_options *o, table *t, size_t label, char **names) {
  size_t nc = t->ncols;
  if (o->policy == NG_MISSING_DROP) {
    size_t kept = 0;
    for (size_t i = 0; i < t->rows; i++) {
      int any = 0;
      for (size_t k = 0; k < nc; k++)
        any |= isnan(t->v[i * nc + k]);
      if (any) continue;
      memmove(t->v + kept * nc, t->v + i * nc, nc * sizeof *t->v);
      t->line[kept++] = t->line[i];
    }
    t->rows = kept;
    return NG_OK;
  }
  if (o->policy != NG_MISSING_MEAN && o->policy != NG_MISSING_MEDIAN) return NG_OK;
  double *col = malloc((t->rows ? t->rows : 1) * sizeof *col);
  if (!col) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  char cname[300];
  int st = NG_OK;
  for (size_t k = 0; k < nc && st == NG_OK; k++) {
    size_t m = 0, first_missing = SIZE_MAX;
    for (size_t i = 0; i < t->rows; i++) {
      double v = t->v[i * nc + k];
      if (!isnan(v))
        col[m++] = v;
      else if (first_missing == SIZE_MAX)
        first_missing = i;
    }
    if (first_missing == SIZE_MAX) continue;
    if (k == label) {
      st = ng_error(NG_EFORMAT,
                    "%s:%zu: %s: the label is missing; a label cannot be filled (use --missing-policy drop)",
                    path, t->line[first_missing], column_name(cname, sizeof cname, k, names));
      break;
    }
    if (m == 0) {
      st = ng_error(NG_EFORMAT, "%s: %s: every value is missing, so there is no %s to fill with", path,
                    column_name(cname, sizeof cname, k, names),
                    o->policy == NG_MISSING_MEAN ? "mean" : "median");
      break;
    }
    double fill = 0;
    if (o->policy == NG_MISSING_MEAN) {
      for (size_t i = 0; i < m; i++)
        fill += col[i];
      fill /= (double)m;
    } else {
      qsort(col, m, sizeof *col, cmp_double);
      fill = m % 2 ? col[m / 2] : 0.5 * (col[m / 2 - 1] + col[m / 2]);
    }
    for (size_t i = 0; i < t->rows; i++)
      if (isnan(t->v[i * nc + k])) t->v[i * nc + k] = fill;
  }
  free(col);
  return st;
}

/* Converts the table into D: features, then the label column through the map. */
static int table_to_data(const char *path, const ng_text_options *o, const ng_label_map *map, const table *t,
                         size_t label, char **names, ng_data *D) {
  size_t nc = t->ncols, d = nc - 1;
  if (t->rows == 0)
    return ng_error(NG_EFORMAT, "%s: no rows%s", path,
                    o->policy == NG_MISSING_DROP ? " left after dropping the rows with missing values" : "");
  NG_CALL(ng_data_alloc(D, t->rows, 1, &d, o->targets ? 1 : 0));
  char cname[300];
  for (size_t i = 0; i < t->rows; i++) {
    const double *row = t->v + i * nc;
    float *x = D->x + i * d;
    for (size_t k = 0; k < nc; k++)
      if (k != label) *x++ = (float)row[k];
    double y = row[label];
    if (map && ng_label_map_apply(map, y, &y) != NG_OK) {
      ng_data_free(D);
      return ng_error(NG_EFORMAT, "%s:%zu: %s: label %g is not in the --label-map", path, t->line[i],
                      column_name(cname, sizeof cname, label, names), row[label]);
    }
    if (o->targets) {
      D->yt[i] = (float)y;
    } else if (y != floor(y) || y < 0 || y > LABEL_MAX) {
      ng_data_free(D);
      return ng_error(NG_EFORMAT,
                      "%s:%zu: %s: label %g%s is not a whole number in [0, %g] (wrong label column? "
                      "or map it with --label-map)",
                      path, t->line[i], column_name(cname, sizeof cname, label, names), row[label],
                      map ? " after --label-map" : "", LABEL_MAX);
    } else {
      D->y[i] = (int32_t)y;
    }
  }
  ng_data_count_classes(D);
  return NG_OK;
}

static int parse_rows(reader *r, const ng_text_options *o, table *t, char ***names_out) {
  char **fields = NULL, **names = NULL;
  size_t fcap = 0, nf = 0;
  int st = NG_OK, more;
  char cname[300];
  *names_out = NULL;
  while ((more = next_line(r)) == 1) {
    const char *s = r->buf;
    while (is_blank(*s))
      s++;
    if (!*s) continue; /* blank line */
    if (split(r->buf, o->delim, &fields, &fcap, &nf) != 0) {
      st = ng_error(NG_ENOMEM, "%s:%zu: out of memory", r->path, r->line);
      goto done;
    }
    if (t->ncols == 0) {
      if (nf < 2) {
        st = ng_error(NG_EFORMAT,
                      "%s:%zu: %zu field%s: a table needs a label column and at least one feature "
                      "(wrong delimiter?)",
                      r->path, r->line, nf, nf == 1 ? "" : "s");
        goto done;
      }
      t->ncols = nf;
      if (o->header && !names) {
        names = calloc(nf, sizeof *names);
        for (size_t k = 0; names && k < nf; k++)
          if (!(names[k] = strdup(fields[k]))) break;
        if (!names || !names[nf - 1]) {
          st = ng_error(NG_ENOMEM, "%s:%zu: out of memory", r->path, r->line);
          goto done;
        }
        continue;
      }
    }
    if (nf != t->ncols) {
      st = ng_error(NG_EFORMAT, "%s:%zu: ragged row: %zu fields, expected %zu as on line %zu", r->path,
                    r->line, nf, t->ncols, t->rows ? t->line[0] : r->line - 1);
      goto done;
    }
    NG_TRY(st, table_push(t, r), done);
    double *row = t->v + (t->rows - 1) * t->ncols;
    for (size_t k = 0; k < nf; k++) {
      const char *f = fields[k];
      if (o->missing && strcmp(f, o->missing) == 0) {
        if (o->policy == NG_MISSING_ERROR) {
          st = ng_error(NG_EFORMAT,
                        "%s:%zu: %s: missing value '%s'; choose --missing-policy drop, mean or median",
                        r->path, r->line, column_name(cname, sizeof cname, k, names), f);
          goto done;
        }
        row[k] = NAN;
        continue;
      }
      char *end;
      errno = 0;
      double v = strtod(f, &end);
      if (!*f || *end || !isfinite(v)) {
        st = ng_error(NG_EFORMAT, "%s:%zu: %s: '%s' is not a %snumber%s", r->path, r->line,
                      column_name(cname, sizeof cname, k, names), f, *f && !*end ? "finite " : "",
                      o->missing ? "" : " (a missing-value token? give --missing TOKEN)");
        goto done;
      }
      row[k] = v;
    }
  }
  if (more < 0) st = more;
done:
  free(fields);
  *names_out = names;
  return st;
}

int ng_import_text(const char *path, const ng_text_options *opt, const ng_label_map *label_map, ng_data *D) {
  memset(D, 0, sizeof *D);
  reader r = {path, NULL, NULL, 0, 0, 0};
  table t = {0};
  char **names = NULL;
  errno = 0;
  r.f = gzopen(path, "rb");
  if (!r.f) return ng_error(NG_EIO, "cannot open '%s': %s", path, errno ? strerror(errno) : "zlib error");
  int st = parse_rows(&r, opt, &t, &names);
  size_t label = 0;
  if (st == NG_OK && t.ncols == 0) st = ng_error(NG_EFORMAT, "%s: no rows", path);
  if (st == NG_OK) st = find_label(path, opt, t.ncols, names, &label);
  if (st == NG_OK) st = resolve_missing(path, opt, &t, label, names);
  if (st == NG_OK) st = table_to_data(path, opt, label_map, &t, label, names, D);
  for (size_t k = 0; names && k < t.ncols; k++)
    free(names[k]);
  free(names);
  free(t.v);
  free(t.line);
  free(r.buf);
  gzclose(r.f);
  return st;
}

/* ---- IDX ------------------------------------------------------------------------------------------------
 */

/* Reads the header of an IDX file of unsigned bytes: magic 0x0000 0x08 ndims, then ndims big-endian sizes. */
static int idx_header(gzFile f, const char *path, uint32_t magic, uint32_t *dims, int ndims) {
  unsigned char b[4 * 4];
  int want = 4 * (1 + ndims);
  int got = gzread(f, b, (unsigned)want);
  if (got < 4)
    return ng_error(NG_EFORMAT, "%s: too short for an IDX file (%d bytes)", path, got < 0 ? 0 : got);
  uint32_t m = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  if (m != magic)
    return ng_error(NG_EFORMAT, "%s: IDX magic number %u, expected %u (%s)", path, m, magic,
                    magic == 2051 ? "images" : "labels");
  if (got < want)
    return ng_error(NG_EFORMAT, "%s: the IDX header ends after %d of %d bytes", path, got, want);
  for (int k = 0; k < ndims; k++) {
    const unsigned char *p = b + 4 * (k + 1);
    dims[k] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  }
  return NG_OK;
}

/* Reads the len bytes the header promised into a malloc'd *out, growing the buffer as the bytes arrive, so
 * that a header that claims more than the file holds costs what the file holds, not what it claims. */
static int read_all(gzFile f, const char *path, unsigned char **out, size_t len, size_t per,
                    const char *what) {
  size_t done = 0, cap = 0;
  unsigned char *buf = NULL;
  int st = NG_OK;
  while (done < len && st == NG_OK) {
    if (done == cap) {
      size_t grown =
          cap ? (cap < len - cap ? 2 * cap : len) : (len < ((size_t)1 << 20) ? len : ((size_t)1 << 20));
      unsigned char *g = realloc(buf, grown);
      if (!g) {
        st = ng_error(NG_ENOMEM, "%s: out of memory for %zu %s", path, len / per, what);
        break;
      }
      buf = g;
      cap = grown;
    }
    size_t chunk = cap - done > (1u << 30) ? (1u << 30) : cap - done;
    int got = gzread(f, buf + done, (unsigned)chunk);
    if (got < 0) {
      int err;
      st = ng_error(NG_EIO, "%s: cannot read: %s", path, gzerror(f, &err));
    } else if (got == 0) {
      st = ng_error(NG_EFORMAT, "%s: the file ends after %zu of %zu %s (truncated?)", path, done / per,
                    len / per, what);
    }
    done += got > 0 ? (size_t)got : 0;
  }
  if (st != NG_OK) {
    free(buf);
    buf = NULL;
  }
  *out = buf;
  return st;
}

int ng_import_idx(const char *images, const char *labels, const ng_label_map *label_map, ng_data *D) {
  memset(D, 0, sizeof *D);
  gzFile fi = NULL, fl = NULL;
  unsigned char *pix = NULL, *lab = NULL;
  uint32_t di[3] = {0, 0, 0}, dl[1] = {0};
  int st = NG_OK;
  errno = 0;
  if (!(fi = gzopen(images, "rb"))) {
    st = ng_error(NG_EIO, "cannot open '%s': %s", images, errno ? strerror(errno) : "zlib error");
    goto done;
  }
  errno = 0;
  if (!(fl = gzopen(labels, "rb"))) {
    st = ng_error(NG_EIO, "cannot open '%s': %s", labels, errno ? strerror(errno) : "zlib error");
    goto done;
  }
  NG_TRY(st, idx_header(fi, images, 2051, di, 3), done);
  NG_TRY(st, idx_header(fl, labels, 2049, dl, 1), done);
  if (di[0] != dl[0]) {
    st =
        ng_error(NG_EMISMATCH, "'%s' holds %u images but '%s' holds %u labels", images, di[0], labels, dl[0]);
    goto done;
  }
  if (di[0] == 0 || di[1] == 0 || di[2] == 0) {
    st = ng_error(NG_EFORMAT, "%s: empty IDX images (%u x %u x %u)", images, di[0], di[1], di[2]);
    goto done;
  }
  size_t n = di[0], hw = (size_t)di[1] * di[2], total;
  size_t shape[3] = {1, di[1], di[2]};
  if (!ng__mul(n, hw, &total)) {
    st = ng_error(NG_EFORMAT, "%s: %zu images of %u x %u pixels are more bytes than 64 bits count", images, n,
                  di[1], di[2]);
    goto done;
  }
  NG_TRY(st, read_all(fi, images, &pix, total, hw, "images"), done);
  NG_TRY(st, read_all(fl, labels, &lab, n, 1, "labels"), done);
  NG_TRY(st, ng_data_alloc(D, n, 3, shape, 0), done);
  for (size_t i = 0; i < n * hw; i++)
    D->x[i] = (float)pix[i];
  for (size_t i = 0; i < n; i++) {
    double y = lab[i];
    if (label_map && ng_label_map_apply(label_map, y, &y) != NG_OK) {
      st = ng_error(NG_EFORMAT, "%s: label %u of row %zu is not in the --label-map", labels, lab[i], i + 1);
      goto done;
    }
    if (y != floor(y) || y < 0 || y > LABEL_MAX) {
      st = ng_error(NG_EFORMAT, "%s: row %zu: label %g after --label-map is not a whole number >= 0", labels,
                    i + 1, y);
      goto done;
    }
    D->y[i] = (int32_t)y;
  }
  ng_data_count_classes(D);
done:
  if (st != NG_OK) ng_data_free(D);
  free(lab);
  free(pix);
  if (fl) gzclose(fl);
  if (fi) gzclose(fi);
  return st;
}
