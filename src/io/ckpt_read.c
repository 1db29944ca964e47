/* Reading a checkpoint (the layout is in include/nograd/ckpt.h), verified before anything is handed over.
 *
 * Reading checks, in this order, that the file opens at all (NG_EIO), that HDF5 can read it (NG_ECORRUPT),
 * that it is a checkpoint of this format (NG_EFORMAT), and that the state read back hashes to the checksum
 * stored in /meta (NG_ECORRUPT); the outputs are filled only when everything holds. */
#include "nograd/ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/ckpt_internal.h"
#include "io/h5read.h"
#include "io/h5util.h"
#include "io/seal.h"
#include "nograd/error.h"

#ifndef NOGRAD_VERSION
#define NOGRAD_VERSION "unknown"
#endif

/* H5Lvisit's callback type changed in HDF5 1.12. */
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t ng_h5l_info;
#define NG_H5LVISIT H5Lvisit2
#else
typedef H5L_info_t ng_h5l_info;
#define NG_H5LVISIT H5Lvisit
#endif

/* ---- Reading --------------------------------------------------------------------------------------------
 */

typedef struct {
  const char *path;
  char *prev; /* PATH.prev when it exists, else NULL: the checkpoint to resume from instead */
  hid_t fid;
} reader;

#define PREV_HINT(r)                                                          \
  (r)->prev ? "; the previous checkpoint '" : "", (r)->prev ? (r)->prev : "", \
      (r)->prev ? "' may be resumed instead" : ""

/* "checkpoint 'PATH': <what>", and for damage the hint at PATH.prev. */
static int read_error(const reader *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int read_error(const reader *r, int status, const char *fmt, ...) {
  char hint[1024] = ""; /* as long as a whole message */
  if (status == NG_ECORRUPT) snprintf(hint, sizeof hint, "%s%s%s", PREV_HINT(r));
  va_list ap;
  va_start(ap, fmt);
  int st = ng_h5_read_verror(status, "checkpoint", r->path, hint, fmt, ap);
  va_end(ap);
  return st;
}

static int damaged(const reader *r, const char *h5path) {
  return read_error(r, NG_ECORRUPT, "cannot read HDF5 path '%s' (damaged?)", h5path);
}

/* A whole float64 or int64 dataset (scalar or 1-D) into a malloc'd buffer. */
static int read_numeric(const reader *r, hid_t dset, const char *h5path, ng_state_type *type, void **values,
                        size_t *len) {
  hid_t ftype = H5Dget_type(dset), space = H5Dget_space(dset);
  int st = NG_OK;
  *values = NULL;
  *len = 0;
  if (ftype < 0 || space < 0) {
    st = damaged(r, h5path);
    goto done;
  }
  H5T_class_t cls = H5Tget_class(ftype);
  size_t size = H5Tget_size(ftype);
  hid_t mtype;
  if (cls == H5T_FLOAT && size == 8) {
    *type = NG_STATE_F64;
    mtype = H5T_NATIVE_DOUBLE;
  } else if (cls == H5T_INTEGER && size == 8 && H5Tget_sign(ftype) == H5T_SGN_2) {
    *type = NG_STATE_I64;
    mtype = H5T_NATIVE_INT64;
  } else {
    st = read_error(r, NG_EFORMAT, "HDF5 path '%s' holds %s, expected float64 or int64", h5path,
                    ng_h5_type_name(ftype));
    goto done;
  }
  int ndims = H5Sget_simple_extent_ndims(space);
  hssize_t points = H5Sget_simple_extent_npoints(space);
  if (ndims < 0 || points < 0) {
    st = damaged(r, h5path);
    goto done;
  }
  if (ndims > 1) {
    st = read_error(r, NG_EFORMAT, "HDF5 path '%s' has %d dimensions, expected 1", h5path, ndims);
    goto done;
  }
  *len = (size_t)points;
  if (*len > SIZE_MAX / 8 || !(*values = malloc(*len ? *len * 8 : 1))) {
    st = read_error(r, NG_ENOMEM, "out of memory for HDF5 path '%s' (%zu values)", h5path, *len);
    goto done;
  }
  if (*len && H5Dread(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *values) < 0) st = damaged(r, h5path);
done:
  if (st != NG_OK) {
    free(*values);
    *values = NULL;
  }
  ng_h5_close(&space);
  ng_h5_close(&ftype);
  return st;
}

/* The reader as ng_h5_read's functions name it in messages. */
static ng_h5_src src_of(const reader *r, char *hint, size_t len) {
  snprintf(hint, len, "%s%s%s", PREV_HINT(r));
  return (ng_h5_src){"checkpoint", r->path, hint};
}

/* Opens the dataset at an absolute path through ng_h5_dataset_open: a string dataset (strings set) or a
 * float64 or int64 one, of 0 or 1 dimensions. NG_EFORMAT when it is missing, not a dataset or another type.
 */
static int open_dataset(const reader *r, const char *abs, int strings, hid_t *out) {
  char hint[1024];
  ng_h5_src src = src_of(r, hint, sizeof hint);
  ng_h5_want want = {strings ? NG_H5_CLASS(H5T_STRING) : NG_H5_CLASS(H5T_FLOAT) | NG_H5_CLASS(H5T_INTEGER),
                     strings ? 0 : 8,
                     0,
                     1,
                     NULL,
                     strings ? "strings" : "float64 or int64"};
  return ng_h5_dataset_open(&src, r->fid, abs, &want, out, NULL, NULL);
}

/* A float64 dataset of the expected number of values (SIZE_MAX: any); *values is malloc'd. */
static int read_f64(const reader *r, const char *abs, double **values, size_t *len, size_t expect) {
  hid_t d;
  *values = NULL;
  *len = 0;
  NG_CALL(open_dataset(r, abs, 0, &d));
  ng_state_type type = NG_STATE_F64;
  void *v = NULL;
  int st = read_numeric(r, d, abs, &type, &v, len);
  ng_h5_close(&d);
  if (st == NG_OK && type != NG_STATE_F64)
    st = read_error(r, NG_EFORMAT, "HDF5 path '%s' holds int64, expected float64", abs);
  else if (st == NG_OK && expect != SIZE_MAX && *len != expect)
    st = read_error(r, NG_EFORMAT, "HDF5 path '%s' has %zu values, expected %zu", abs, *len, expect);
  if (st != NG_OK) free(v);
  *values = st == NG_OK ? v : NULL;
  return st;
}

/* All strings of a string attribute or dataset, variable-length or fixed, as malloc'd copies. */
static int read_strings(const reader *r, hid_t id, const char *h5path, char ***out, size_t *count) {
  int is_attr = H5Iget_type(id) == H5I_ATTR;
  hid_t ftype = is_attr ? H5Aget_type(id) : H5Dget_type(id);
  hid_t space = is_attr ? H5Aget_space(id) : H5Dget_space(id);
  size_t k = 0;
  int st = NG_OK;
  *out = NULL;
  hssize_t points = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
  if (ftype < 0 || points < 0) {
    st = damaged(r, h5path);
  } else if (H5Tget_class(ftype) != H5T_STRING) {
    st = read_error(r, NG_EFORMAT, "HDF5 path '%s' holds %s, expected a string", h5path,
                    ng_h5_type_name(ftype));
  } else {
    k = (size_t)points;
    int s = ng_h5_read_strings(id, ftype, k, 1, out);
    if (s == NG_ENOMEM)
      st = read_error(r, NG_ENOMEM, "out of memory for HDF5 path '%s'", h5path);
    else if (s != NG_OK)
      st = damaged(r, h5path);
  }
  ng_h5_close(&space);
  ng_h5_close(&ftype);
  *count = st == NG_OK ? k : 0;
  return st;
}

/* One string attribute, through ng_h5_attr_get (a missing one is a format error: the file is not ours). */
static int read_attr_str(const reader *r, hid_t obj, const char *objpath, const char *name, char **out) {
  char hint[1024];
  ng_h5_src src = src_of(r, hint, sizeof hint);
  int st = ng_h5_attr_get(&src, obj, objpath, name, NG_H5_STR, 1, out);
  return st == NG_ENOTFOUND ? NG_EFORMAT : st;
}

static int read_attr_int(const reader *r, hid_t obj, const char *objpath, const char *name, int64_t *out) {
  char hint[1024];
  ng_h5_src src = src_of(r, hint, sizeof hint);
  *out = 0;
  int st = ng_h5_attr_get(&src, obj, objpath, name, NG_H5_I64, 1, out);
  return st == NG_ENOTFOUND ? NG_EFORMAT : st;
}

static int read_attr_small_int(const reader *r, hid_t obj, const char *objpath, const char *name, int *out) {
  int64_t v = 0;
  NG_CALL(read_attr_int(r, obj, objpath, name, &v));
  if (v < -2147483647 || v > 2147483647)
    return read_error(r, NG_EFORMAT, "attribute '%s/%s' is %" PRId64 ", out of range", objpath, name, v);
  *out = (int)v;
  return NG_OK;
}

static int read_string_list(const reader *r, const char *abs, char ***out, size_t *count) {
  hid_t d;
  NG_CALL(open_dataset(r, abs, 1, &d));
  int st = read_strings(r, d, abs, out, count);
  ng_h5_close(&d);
  return st;
}

static int read_meta(const reader *r, hid_t g, ng_ckpt_info *info, char **checksum) {
  NG_CALL(read_attr_str(r, g, "/meta", "program_version", &info->program_version));
  NG_CALL(read_attr_str(r, g, "/meta", "command_line", &info->command_line));
  NG_CALL(read_attr_str(r, g, "/meta", "config", &info->config));
  NG_CALL(read_attr_str(r, g, "/meta", "budget", &info->budget));
  NG_CALL(read_attr_str(r, g, "/meta", "optimizer", &info->optimizer));
  NG_CALL(read_attr_str(r, g, "/meta", "created", &info->created));
  /* Optional: the kernels (files written before nograd recorded them have none). */
  const char *const optional[] = {"blas_core", "blas_config", "cpu_model"};
  char **dest[] = {&info->blas_core, &info->blas_config, &info->cpu_model};
  for (size_t k = 0; k < 3; k++) {
    char hint[1024];
    ng_h5_src src = src_of(r, hint, sizeof hint);
    int st = ng_h5_attr_get(&src, g, "/meta", optional[k], NG_H5_STR, 1, dest[k]);
    if (st == NG_ENOTFOUND) {
      *dest[k] = NULL;
      continue;
    }
    NG_CALL(st);
  }
  NG_CALL(read_attr_small_int(r, g, "/meta", "ranks", &info->ranks));
  NG_CALL(read_attr_small_int(r, g, "/meta", "groups", &info->groups));
  NG_CALL(read_attr_str(r, g, "/meta", "state_checksum", checksum));
  int has_files = ng__h5_path_exists(r->fid, "/meta/input_files"),
      has_sums = ng__h5_path_exists(r->fid, "/meta/input_checksums");
  if (has_files != has_sums)
    return read_error(r, NG_EFORMAT, "has %s but not %s",
                      has_files ? "/meta/input_files" : "/meta/input_checksums",
                      has_files ? "/meta/input_checksums" : "/meta/input_files");
  if (!has_files) return NG_OK;
  size_t k1, k2;
  NG_CALL(read_string_list(r, "/meta/input_files", &info->input_files, &k1));
  info->ninputs = k1;
  NG_CALL(read_string_list(r, "/meta/input_checksums", &info->input_checksums, &k2));
  if (k1 != k2) {
    for (size_t i = 0; i < k2; i++)
      free(info->input_checksums[i]);
    free(info->input_checksums);
    info->input_checksums = NULL;
    return read_error(r, NG_EFORMAT,
                      "/meta/input_files has %zu names but /meta/input_checksums %zu checksums", k1, k2);
  }
  return NG_OK;
}

typedef struct {
  const reader *r;
  const char *gpath;
  ng_state *st;
  int status;
} visit_ctx;

/* One link under /optimizer or /result: groups are walked through, datasets become entries. */
static herr_t visit_entry(hid_t group, const char *name, const ng_h5l_info *link, void *data) {
  visit_ctx *c = data;
  char where[NG_H5PATH_MAX];
  snprintf(where, sizeof where, "%s/%s", c->gpath, name);
  if (link->type != H5L_TYPE_HARD) {
    c->status =
        read_error(c->r, NG_EFORMAT, "HDF5 path '%s' is a soft or external link, expected a dataset", where);
    return -1;
  }
  hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
  if (obj < 0) {
    c->status = damaged(c->r, where);
    return -1;
  }
  H5I_type_t kind = H5Iget_type(obj);
  if (kind == H5I_GROUP) {
    ng_h5_close(&obj);
    return 0;
  }
  if (kind != H5I_DATASET) {
    ng_h5_close(&obj);
    c->status = read_error(c->r, NG_EFORMAT, "HDF5 path '%s' is neither a group nor a dataset", where);
    return -1;
  }
  hid_t ftype = H5Dget_type(obj);
  if (ftype >= 0 && H5Tget_class(ftype) == H5T_STRING) { /* a string entry: one string */
    ng_h5_close(&ftype);
    char **v = NULL;
    size_t k = 0;
    c->status = read_strings(c->r, obj, where, &v, &k);
    ng_h5_close(&obj);
    if (c->status == NG_OK && k != 1)
      c->status = read_error(c->r, NG_EFORMAT, "HDF5 path '%s' holds %zu strings, expected 1", where, k);
    if (c->status == NG_OK) c->status = ng_state_put_str(c->st, name, v[0]);
    for (size_t i = 0; i < k; i++)
      free(v[i]);
    free(v);
    return c->status == NG_OK ? 0 : -1;
  }
  ng_h5_close(&ftype);
  ng_state_type type;
  void *values;
  size_t len;
  c->status = read_numeric(c->r, obj, where, &type, &values, &len);
  ng_h5_close(&obj);
  if (c->status != NG_OK) return -1;
  c->status = type == NG_STATE_F64 ? ng_state_put_f64(c->st, name, values, len)
                                   : ng_state_put_i64(c->st, name, values, len);
  free(values);
  return c->status == NG_OK ? 0 : -1;
}

/* Every dataset under the group, by full relative name, in name order at each level. */
static int read_state(const reader *r, const char *gpath, ng_state *st) {
  if (!ng__h5_path_exists(r->fid, gpath)) return read_error(r, NG_EFORMAT, "no HDF5 path '%s'", gpath);
  hid_t g = H5Gopen2(r->fid, gpath, H5P_DEFAULT);
  if (g < 0) return read_error(r, NG_EFORMAT, "HDF5 path '%s' is not a group", gpath);
  visit_ctx c = {r, gpath, st, NG_OK};
  herr_t s = NG_H5LVISIT(g, H5_INDEX_NAME, H5_ITER_INC, visit_entry, &c);
  ng_h5_close(&g);
  if (c.status != NG_OK) return c.status;
  return s < 0 ? damaged(r, gpath) : NG_OK;
}

static int read_history(const reader *r, ng_history *h) {
  char where[NG_H5PATH_MAX];
  size_t rows = 0;
  int st = NG_OK;
  for (size_t j = 0; j < NG_HISTORY_NCOLS && st == NG_OK; j++) {
    snprintf(where, sizeof where, "/history/%s", ng__history_names[j]);
    double *col;
    size_t len;
    NG_TRY(st, read_f64(r, where, &col, &len, j ? rows : SIZE_MAX), done);
    if (j == 0) {
      rows = len;
      h->rows = malloc((rows ? rows : 1) * NG_HISTORY_NCOLS * sizeof *h->rows);
      h->nrows = h->cap = rows;
      if (!h->rows) st = read_error(r, NG_ENOMEM, "out of memory for %zu history rows", rows);
    }
    for (size_t i = 0; i < rows && h->rows; i++)
      h->rows[i * NG_HISTORY_NCOLS + j] = col[i];
    free(col);
  }
done:
  if (st != NG_OK) ng_history_free(h);
  return st;
}

static int copy_state(ng_state *dst, const ng_state *src) {
  for (size_t i = 0; i < ng_state_count(src); i++) {
    const char *name;
    ng_state_type type;
    size_t len;
    const void *values;
    ng_state_entry(src, i, &name, &type, &len, &values);
    NG_CALL(type == NG_STATE_F64   ? ng_state_put_f64(dst, name, values, len)
            : type == NG_STATE_I64 ? ng_state_put_i64(dst, name, values, len)
                                   : ng_state_put_str(dst, name, values));
  }
  return NG_OK;
}

void ng_ckpt_info_free(ng_ckpt_info *info) {
  if (!info) return;
  free(info->program_version);
  free(info->command_line);
  free(info->config);
  free(info->budget);
  free(info->optimizer);
  free(info->created);
  free(info->blas_core);
  free(info->blas_config);
  free(info->cpu_model);
  for (size_t i = 0; i < info->ninputs; i++) {
    if (info->input_files) free(info->input_files[i]);
    if (info->input_checksums) free(info->input_checksums[i]);
  }
  free(info->input_files);
  free(info->input_checksums);
  memset(info, 0, sizeof *info);
}

/* The whole read, run by the child process that checks a checkpoint without nograd's header (io/seal.h). */
static int probe(const char *path, void *ctx) {
  return ng_ckpt_read(path, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
}

/* Opens the file, sealed or checked by a child (ng_h5_open_checked), and checks that it is a checkpoint of
 * this format; r->fid is open on success. */
static int open_checkpoint(reader *r, int64_t *version) {
  char hint[1024];
  snprintf(hint, sizeof hint, "%s%s%s", PREV_HINT(r));
  ng_h5_reading how = {"checkpoint", hint, probe, NULL};
  NG_CALL(ng_h5_open_checked(r->path, &how, &r->fid, NULL));
  if (H5Lexists(r->fid, "meta", H5P_DEFAULT) <= 0 ||
      H5Aexists_by_name(r->fid, "meta", "format_version", H5P_DEFAULT) <= 0)
    return ng_error(NG_EFORMAT, "'%s' is not a nograd checkpoint (no /meta/format_version)", r->path);
  hid_t g = H5Oopen(r->fid, "meta", H5P_DEFAULT);
  if (g < 0) return damaged(r, "/meta");
  int st = read_attr_int(r, g, "/meta", "format_version", version);
  ng_h5_close(&g);
  if (st == NG_OK && *version != NG_CKPT_FORMAT_VERSION)
    st = ng_error(NG_EFORMAT,
                  "checkpoint '%s' has format version %" PRId64 "; this nograd (%s) reads format version %d",
                  r->path, *version, NOGRAD_VERSION, NG_CKPT_FORMAT_VERSION);
  return st;
}

int ng_ckpt_read(const char *path, ng_ckpt_info *info, ng_state *optimizer, ng_history *history,
                 double *best_x, size_t *n, double *best_f, ng_state *result) {
  if (info) memset(info, 0, sizeof *info);
  if (!path || !*path) return ng_error(NG_EINVAL, "ng_ckpt_read: no path");
  if (best_x && !n) return ng_error(NG_EINVAL, "ng_ckpt_read: best_x needs its length in *n");

  reader r = {path, ng_fs_suffixed(path, ".prev"), -1};
  if (!r.prev) return ng_error(NG_ENOMEM, "checkpoint: out of memory");
  if (!ng_fs_exists(r.prev)) {
    free(r.prev);
    r.prev = NULL;
  }
  ng_ckpt_info meta = {0};
  ng_state *opt = NULL, *res = NULL;
  ng_history hist = {0};
  double *x = NULL, *f = NULL;
  size_t xlen = 0, flen;
  char *stored = NULL;
  hid_t g = -1;
  int64_t version = 0;
  ng_h5_quiet q = ng_h5_quiet_begin();
  int st = open_checkpoint(&r, &version);
  if (st != NG_OK) goto done;
  meta.format_version = (int)version;

  g = H5Gopen2(r.fid, "/meta", H5P_DEFAULT);
  if (g < 0) {
    st = read_error(&r, NG_EFORMAT, "HDF5 path '/meta' is not a group");
    goto done;
  }
  NG_TRY(st, read_meta(&r, g, &meta, &stored), done);
  NG_TRY(st, ng_state_create(&opt), done);
  NG_TRY(st, read_state(&r, "/optimizer", opt), done);
  NG_TRY(st, read_history(&r, &hist), done);
  NG_TRY(st, read_f64(&r, "/best/x", &x, &xlen, SIZE_MAX), done);
  NG_TRY(st, read_f64(&r, "/best/f", &f, &flen, 1), done);
  if (result && ng__h5_path_exists(r.fid, "/result")) {
    NG_TRY(st, ng_state_create(&res), done);
    NG_TRY(st, read_state(&r, "/result", res), done);
  }

  if (!f || !stored) { /* cannot happen: the reads above succeeded */
    st = ng_error(NG_EINTERNAL, "checkpoint '%s': best f or the checksum missing after a read", path);
    goto done;
  }
  uint64_t sum = 0;
  NG_TRY(st, ng__ckpt_checksum(opt, &hist, x, xlen, f[0], &sum), done);
  char computed[17];
  snprintf(computed, sizeof computed, "%016" PRIx64, sum);
  if (strcmp(stored, computed) != 0) {
    st = read_error(&r, NG_ECORRUPT,
                    "state checksum mismatch (stored %s, computed %s): the file was altered or damaged",
                    stored, computed);
    goto done;
  }
  if (best_x && *n != xlen) {
    st = read_error(&r, NG_EMISMATCH, "/best/x has %zu values, expected %zu", xlen, *n);
    goto done;
  }

  /* Verified: hand the results over. */
  if (optimizer) NG_TRY(st, copy_state(optimizer, opt), done);
  if (result && res) NG_TRY(st, copy_state(result, res), done);
  if (history) {
    ng_history_free(history);
    *history = hist;
    hist = (ng_history){0};
  }
  if (best_x && xlen) memcpy(best_x, x, xlen * sizeof *x);
  if (n && !best_x) *n = xlen;
  if (best_f) *best_f = f[0];
  if (info) {
    *info = meta;
    memset(&meta, 0, sizeof meta);
  }
done:
  ng_h5_close(&g);
  if (r.fid >= 0) H5Fclose(r.fid);
  ng_h5_quiet_end(q);
  free(stored);
  free(f);
  free(x);
  ng_history_free(&hist);
  ng_state_destroy(&res);
  ng_state_destroy(&opt);
  ng_ckpt_info_free(&meta);
  free(r.prev);
  return st;
}
