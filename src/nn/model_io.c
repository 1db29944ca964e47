/* Model files in HDF5 (the layout is in include/nograd/nn.h): the atomic write and the checked read.
 *
 * Writing goes to PATH.tmp, which is flushed, closed and fsynced, then renamed over PATH, and the directory
 * is fsynced (ng_h5_write_atomic in src/io/h5util.c, as for checkpoints); on any failure PATH.tmp is removed
 * and PATH is untouched. Reading parses /model/spec with the same parser as ng_model_from_spec and then
 * checks the file's index against the index the spec implies, tensor by tensor, so that a file whose
 * parameters would be read at the wrong offsets is refused with the tensor's name. Every message names the
 * file and the HDF5 path; HDF5's own error printing is off while these functions run. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/text.h"
#include "io/h5read.h"
#include "io/h5util.h"
#include "io/seal.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"

/* ---- Writing ---- */

typedef struct {
  const char *file; /* PATH.tmp */
  hid_t fid, vstr;
} writer;

static int write_failed(const writer *w, const char *h5path) {
  return ng_h5_write_failed("model", w->file, h5path);
}

/* A dataset of `rank` dimensions (0: scalar). */
static int put_dataset(const writer *w, const char *h5path, hid_t ftype, hid_t mtype, const void *buf,
                       int rank, const hsize_t *dims) {
  errno = 0;
  hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t dset =
      space < 0 ? -1 : H5Dcreate2(w->fid, h5path, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= dims[i];
  herr_t s = dset < 0 ? -1 : (n ? H5Dwrite(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0);
  ng_h5_close(&dset);
  ng_h5_close(&space);
  return s < 0 ? write_failed(w, h5path) : NG_OK;
}

static int put_attr(const writer *w, hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *buf) {
  return ng_h5_put_attr("model", w->file, obj, "/model", name, ftype, mtype, buf, 0);
}

static int write_contents(writer *w, const ng_model *m) {
  int st = NG_OK;
  hid_t g = -1, gi = -1;
  size_t T = m->ntensors;
  const char **names = malloc((T ? T : 1) * sizeof *names);
  int64_t *offsets = malloc((T ? T : 1) * sizeof *offsets),
          *shapes = malloc((T ? T : 1) * 4 * sizeof *shapes);
  int32_t *ndims = malloc((T ? T : 1) * sizeof *ndims);
  if (!names || !offsets || !shapes || !ndims) {
    st = ng_error(NG_ENOMEM, "cannot write model '%s': out of memory", w->file);
    goto done;
  }
  for (size_t i = 0; i < T; i++) {
    names[i] = m->tensors[i].name;
    offsets[i] = (int64_t)m->tensors[i].offset;
    ndims[i] = (int32_t)m->tensors[i].ndim;
    for (size_t j = 0; j < 4; j++)
      shapes[4 * i + j] = (int64_t)m->tensors[i].shape[j];
  }
  errno = 0;
  if ((g = H5Gcreate2(w->fid, "/model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
      (gi = H5Gcreate2(w->fid, "/model/index", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
    st = write_failed(w, g < 0 ? "/model" : "/model/index");
    goto done;
  }
  int64_t version = NG_MODEL_FORMAT_VERSION;
  NG_TRY(st, put_attr(w, g, "format_version", H5T_STD_I64LE, H5T_NATIVE_INT64, &version), done);
  for (size_t i = 0; i < m->nattrs; i++)
    if (strcmp(m->attrs[i].name, "threshold") != 0) /* the table's double, written below */
      NG_TRY(st, put_attr(w, g, m->attrs[i].name, H5T_STD_I64LE, H5T_NATIVE_INT64, &m->attrs[i].value), done);
  double threshold = ng_model_threshold(m);
  if (!isnan(threshold))
    NG_TRY(st, put_attr(w, g, "threshold", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &threshold), done);
  if (m->dataset) NG_TRY(st, put_attr(w, g, "dataset", w->vstr, w->vstr, &m->dataset), done);

  NG_TRY(st, put_dataset(w, "/model/spec", w->vstr, w->vstr, &m->spec, 0, NULL), done);
  hsize_t np = m->nparams, t1 = T, t4[2] = {T, 4};
  NG_TRY(st, put_dataset(w, "/model/params", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, m->params, 1, &np), done);
  NG_TRY(st, put_dataset(w, "/model/index/names", w->vstr, w->vstr, names, 1, &t1), done);
  NG_TRY(st, put_dataset(w, "/model/index/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, offsets, 1, &t1), done);
  NG_TRY(st, put_dataset(w, "/model/index/shapes", H5T_STD_I64LE, H5T_NATIVE_INT64, shapes, 2, t4), done);
  NG_TRY(st, put_dataset(w, "/model/index/ndims", H5T_STD_I32LE, H5T_NATIVE_INT32, ndims, 1, &t1), done);
done:
  ng_h5_close(&gi);
  ng_h5_close(&g);
  free(ndims);
  free(shapes);
  free(offsets);
  free(names);
  return st;
}

/* Fills the model file being built in memory as `tmp` (ng_h5_write_atomic's callback). */
static int write_file(hid_t fid, const char *tmp, void *ctx) {
  const ng_model *m = ctx;
  writer w = {tmp, fid, -1};
  int st;
  w.vstr = ng_h5_vlen_utf8();
  if (w.vstr < 0)
    st = write_failed(&w, "/");
  else
    st = write_contents(&w, m);
  ng_h5_close(&w.vstr);
  return st;
}

int ng_model_write(const ng_model *m, const char *path) {
  if (!m || !path || !*path) return ng_error(NG_EINVAL, "ng_model_write: a model and a path are required");
  if (m->onnx) return ng__onnx_model_write(m, path);
  if (ng__onnx_path(path))
    return ng_error(NG_EINVAL,
                    "%s: this model is a native nograd model, written as a model file (HDF5), not as ONNX: "
                    "give the output another suffix (e.g. .h5)",
                    path);
  static const ng_fs_atomic how = {"model", NULL, NULL, 0, NULL};
  return ng_h5_write_atomic(path, &how, write_file, (void *)m);
}

/* ---- Reading ---- */

typedef struct {
  const char *path;
  hid_t fid;
} reader;

static int read_error(const reader *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int read_error(const reader *r, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int st = ng_h5_read_verror(status, "model file", r->path, "", fmt, ap);
  va_end(ap);
  return st;
}

/* Opens a dataset and checks its type class (a float must be float32) and shape: `rank` dimensions, each
 * dims[i] exactly, or any extents when dims is NULL (ng_h5_dataset_open); got receives the extents. */
static int open_checked(const reader *r, const char *h5path, H5T_class_t cls, int rank, const hsize_t *dims,
                        hid_t *out, hsize_t *got) {
  static const char *const cls_names[] = {"an integer", "float32", "a time", "a string"};
  ng_h5_src src = {"model file", r->path, NULL};
  ng_h5_want want = {NG_H5_CLASS(cls),
                     cls == H5T_FLOAT ? 4 : 0,
                     rank,
                     rank,
                     dims,
                     cls <= H5T_STRING ? cls_names[cls] : "another type"};
  return ng_h5_dataset_open(&src, r->fid, h5path, &want, out, NULL, got);
}

/* A whole string dataset (scalar or 1-D; variable-length or fixed) as malloc'd strings. */
static int read_strings(const reader *r, const char *h5path, int rank, size_t *count, char ***out) {
  hsize_t got[1] = {1};
  hid_t d, ftype;
  *out = NULL;
  NG_CALL(open_checked(r, h5path, H5T_STRING, rank, NULL, &d, got));
  size_t k = rank ? (size_t)got[0] : 1;
  int st = NG_OK;
  ftype = H5Dget_type(d);
  int s = ng_h5_read_strings(d, ftype, k, 0, out);
  if (s == NG_ENOMEM)
    st = read_error(r, NG_ENOMEM, "out of memory for HDF5 path '%s'", h5path);
  else if (s != NG_OK)
    st = read_error(r, NG_EFORMAT, "cannot read HDF5 path '%s' (damaged?)", h5path);
  ng_h5_close(&ftype);
  ng_h5_close(&d);
  *count = st == NG_OK ? k : 0;
  return st;
}

static int read_ints(const reader *r, const char *h5path, int rank, const hsize_t *dims, int64_t *buf) {
  hid_t d;
  hsize_t got[2];
  NG_CALL(open_checked(r, h5path, H5T_INTEGER, rank, dims, &d, got));
  hsize_t n = rank == 2 ? dims[0] * dims[1] : dims[0];
  int st = NG_OK;
  if (n && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    st = read_error(r, NG_EFORMAT, "cannot read HDF5 path '%s' (damaged?)", h5path);
  ng_h5_close(&d);
  return st;
}

typedef struct {
  const reader *r;
  ng_model *m;
  int status;
} attr_ctx;

/* One attribute of /model: integers become model attributes, "dataset" the dataset string, "threshold" (a
 * float) the decision threshold, checked to lie in [0, 1]. Each is read through ng_h5_attr_get, so only after
 * its type and size are checked; an integer attribute of several values, or one beyond the table, is skipped
 * as before. */
static herr_t visit_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data) {
  attr_ctx *c = data;
  ng_h5_src src = {"model file", c->r->path, NULL};
  if (!strcmp(name, "format_version")) return 0;
  if (!strcmp(name, "threshold")) {
    double t = NAN;
    c->status = ng_h5_attr_get(&src, obj, "/model", name, NG_H5_F64, 1, &t);
    if (c->status == NG_OK && !(t >= 0 && t <= 1))
      c->status = read_error(
          c->r, NG_EFORMAT, "HDF5 path '/model' attribute 'threshold' is %g, expected a number in [0, 1]", t);
    if (c->status == NG_OK) c->status = ng_model_set_threshold(c->m, t);
  } else if (!strcmp(name, "dataset")) {
    char *s = NULL;
    c->status = ng_h5_attr_get(&src, obj, "/model", name, NG_H5_STR, 1, &s);
    ng__text_sanitize(s, 0); /* a name that is printed */
    if (c->status == NG_OK) c->status = ng_nn_set_dataset(c->m, s);
    free(s);
  } else {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), type = a < 0 ? -1 : H5Aget_type(a);
    int is_int = type >= 0 && H5Tget_class(type) == H5T_INTEGER;
    ng_h5_close(&type);
    ng_h5_close(&a);
    int64_t v = 0;
    if (is_int && strlen(name) < sizeof c->m->attrs[0].name && c->m->nattrs < NG_NN_ATTR_MAX &&
        ng_h5_attr_get(&src, obj, "/model", name, NG_H5_I64, 1, &v) == NG_OK) {
      snprintf(c->m->attrs[c->m->nattrs].name, sizeof c->m->attrs[0].name, "%s", name);
      c->m->attrs[c->m->nattrs++].value = v;
    }
  }
  return c->status == NG_OK ? 0 : -1;
}

/* "[4, 5]": the shape's ndim entries, and those after them that are not 1 (a file's index may hold any). */
static void shape_text(const int64_t *s, int64_t ndim, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int64_t j = ndim < 0 ? 0 : ndim; j < 4; j++)
    if (s[j] != 1) ndim = j + 1;
  for (int64_t i = 0; i < ndim && i < 4 && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? ", " : "", s[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
}

/* The file's index against the spec's, tensor by tensor. */
static int check_index(const reader *r, const ng_model *m) {
  size_t T = 0;
  char **names = NULL;
  int64_t *offsets = NULL, *shapes = NULL, *ndims = NULL;
  NG_CALL(read_strings(r, "/model/index/names", 1, &T, &names));
  int st = NG_OK;
  hsize_t d1[1] = {T}, d2[2] = {T, 4};
  offsets = malloc((T ? T : 1) * sizeof *offsets);
  ndims = malloc((T ? T : 1) * sizeof *ndims);
  shapes = malloc((T ? T : 1) * 4 * sizeof *shapes);
  if (!offsets || !ndims || !shapes) {
    st = read_error(r, NG_ENOMEM, "out of memory for the index");
    goto done;
  }
  NG_TRY(st, read_ints(r, "/model/index/offsets", 1, d1, offsets), done);
  NG_TRY(st, read_ints(r, "/model/index/shapes", 2, d2, shapes), done);
  NG_TRY(st, read_ints(r, "/model/index/ndims", 1, d1, ndims), done);
  for (size_t t = 0; t < m->ntensors; t++) {
    const ng_tensor *want = &m->tensors[t];
    size_t j = 0;
    while (j < T && strcmp(names[j], want->name))
      j++;
    if (j == T) {
      st = read_error(r, NG_EFORMAT,
                      "HDF5 path '/model/index/names': no tensor '%s', which the spec declares", want->name);
      goto done;
    }
    int64_t ws[4];
    for (size_t i = 0; i < 4; i++)
      ws[i] = (int64_t)want->shape[i];
    if (ndims[j] != (int64_t)want->ndim || memcmp(ws, shapes + 4 * j, sizeof ws)) {
      char a[96], b[96];
      shape_text(shapes + 4 * j, ndims[j], a, sizeof a);
      shape_text(ws, (int64_t)want->ndim, b, sizeof b);
      st = read_error(r, NG_EFORMAT,
                      "HDF5 path '/model/index/shapes': tensor '%s' has shape %s, the spec gives %s",
                      want->name, a, b);
      goto done;
    }
    if (offsets[j] != (int64_t)want->offset) {
      st = read_error(r, NG_EFORMAT,
                      "HDF5 path '/model/index/offsets': tensor '%s' is at offset %" PRId64
                      ", the spec puts it at %zu",
                      want->name, offsets[j], want->offset);
      goto done;
    }
  }
  if (T != m->ntensors) {
    for (size_t j = 0; j < T; j++) {
      const ng_tensor *hit = NULL;
      for (size_t t = 0; t < m->ntensors && !hit; t++)
        if (!strcmp(names[j], m->tensors[t].name)) hit = &m->tensors[t];
      if (!hit) {
        st = read_error(r, NG_EFORMAT, "HDF5 path '/model/index/names': tensor '%s' is not in the spec",
                        names[j]);
        goto done;
      }
    }
    st = read_error(r, NG_EFORMAT, "HDF5 path '/model/index/names': %zu tensors, the spec declares %zu", T,
                    m->ntensors);
  }
done:
  for (size_t j = 0; j < T; j++)
    free(names[j]);
  free(names);
  free(shapes);
  free(ndims);
  free(offsets);
  return st;
}

static int read_model(reader *r, ng_model **out) {
  ng_model *m = NULL;
  hid_t g = -1, d = -1;
  char **spec = NULL;
  size_t k = 0;
  int st = NG_OK;
  if (H5Lexists(r->fid, "model", H5P_DEFAULT) <= 0 || (g = H5Gopen2(r->fid, "/model", H5P_DEFAULT)) < 0 ||
      H5Aexists(g, "format_version") <= 0) {
    st = read_error(r, NG_EFORMAT, "not a nograd model file (no HDF5 path '/model' with format_version)");
    goto done;
  }
  ng_h5_src src = {"model file", r->path, NULL};
  int64_t version = -1;
  NG_TRY(st, ng_h5_attr_get(&src, g, "/model", "format_version", NG_H5_I64, 1, &version), done);
  if (version != NG_MODEL_FORMAT_VERSION) {
    st = read_error(r, NG_EFORMAT, "HDF5 path '/model/format_version' is %" PRId64 ", this nograd reads %d",
                    version, NG_MODEL_FORMAT_VERSION);
    goto done;
  }
  NG_TRY(st, read_strings(r, "/model/spec", 0, &k, &spec), done);
  st = ng_model_from_spec(spec[0], &m);
  if (st != NG_OK) {
    char msg[768];
    snprintf(msg, sizeof msg, "%s", ng_errmsg());
    st = read_error(r, st == NG_EINVAL ? NG_EFORMAT : st, "HDF5 path '/model/spec': %s", msg);
    goto done;
  }
  hsize_t np[1] = {m->nparams}, got[1];
  NG_TRY(st, open_checked(r, "/model/params", H5T_FLOAT, 1, np, &d, got), done);
  if (m->nparams && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->params) < 0) {
    st = read_error(r, NG_EFORMAT, "cannot read HDF5 path '/model/params' (damaged?)");
    goto done;
  }
  NG_TRY(st, check_index(r, m), done);
  for (size_t t = 0; t < m->ntensors; t++) {
    const ng_tensor *T = &m->tensors[t];
    size_t n = T->shape[0] * T->shape[1] * T->shape[2] * T->shape[3];
    for (size_t e = 0; e < n; e++)
      if (!isfinite(m->params[T->offset + e])) {
        st = read_error(r, NG_ENUMERIC, "HDF5 path '/model/params': tensor '%s' element %zu is %g", T->name,
                        e, (double)m->params[T->offset + e]);
        goto done;
      }
  }
  attr_ctx c = {r, m, NG_OK};
  hsize_t idx = 0;
  if (H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_attr, &c) < 0 && c.status == NG_OK)
    c.status = read_error(r, NG_EFORMAT, "cannot read the attributes of HDF5 path '/model' (damaged?)");
  st = c.status;
done:
  ng_h5_close(&d);
  ng_h5_close(&g);
  if (spec) {
    free(spec[0]);
    free(spec);
  }
  if (st != NG_OK)
    ng_model_destroy(&m);
  else
    *out = m;
  return st;
}

/* The whole read, run by the child process that checks a model file without nograd's header (io/seal.h). */
static int probe(const char *path, void *ctx) {
  ng_model *m = NULL;
  int st = ng_model_read(path, &m);
  ng_model_destroy(&m);
  return st;
}

int ng_model_read(const char *path, ng_model **out) {
  if (!out) return ng_error(NG_EINVAL, "ng_model_read: out is NULL");
  *out = NULL;
  if (!path || !*path) return ng_error(NG_EINVAL, "ng_model_read: no path");
  if (ng__onnx_path(path)) return ng__onnx_model_read(path, out);
  ng_h5_quiet q = ng_h5_quiet_begin();
  reader r = {path, -1};
  ng_h5_reading how = {"model file", NULL, probe, NULL};
  int st = ng_h5_open_checked(path, &how, &r.fid, NULL);
  if (st == NG_OK) st = read_model(&r, out);
  if (r.fid >= 0) H5Fclose(r.fid);
  ng_h5_quiet_end(q);
  return st;
}
