/* Dataset files in HDF5 (the layout is in include/nograd/data.h): the in-memory dataset, the atomic write,
 * and the checked open and row-range read.
 *
 * /x and /y are chunked along N with whole rows per chunk (about DATA_CHUNK_BYTES of /x each), so that the
 * hyperslab of a rank's contiguous rows touches only the chunks that hold them. Writing follows the
 * checkpoints (ng_h5_write_atomic, src/io/h5util.c): PATH.tmp is created, flushed, closed, fsynced and
 * renamed over PATH, then the directory is synced; unlike a checkpoint, no previous version is kept. HDF5's
 * error printing is off while these functions run: every failure is reported once, through ng_error, with the
 * file and the HDF5 path. */
#include "nograd/data.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/checked.h"
#include "core/text.h"
#include "data/dataset_impl.h"
#include "io/h5read.h"
#include "io/h5util.h"
#include "io/seal.h"
#include "nograd/error.h"

#define DATA_CHUNK_BYTES (256u * 1024u) /* target size of one chunk of /x: a few hundred rows of images */
#define DATA_FORMAT_NAME "nograd dataset"
#define DATA_ROW_MAX \
  ((size_t)INT32_MAX) /* values in a row of /x or /y: what a model's input can be (BLAS's int) */

/* ---- In memory ------------------------------------------------------------------------------------------
 */

int ng_data_alloc(ng_data *D, size_t n, int xrank, const size_t *xdims, size_t t) {
  memset(D, 0, sizeof *D);
  if (xrank < 1 || xrank > 3)
    return ng_error(NG_EINVAL, "dataset: a row must have 1 to 3 dimensions, not %d", xrank);
  size_t d = 1;
  for (int k = 0; k < xrank; k++) {
    if (xdims[k] == 0 || d > SIZE_MAX / xdims[k])
      return ng_error(NG_EINVAL, "dataset: row dimension %d is %zu", k, xdims[k]);
    d *= xdims[k];
    D->xdims[k] = xdims[k];
  }
  size_t cols = t ? t : 1;
  if (n > SIZE_MAX / sizeof(float) / d || n > SIZE_MAX / sizeof(float) / cols)
    return ng_error(NG_ENOMEM, "dataset: %zu rows of %zu values are too many", n, d);
  D->n = n;
  D->xrank = xrank;
  D->d = d;
  D->t = t;
  D->x = calloc(n ? n * d : 1, sizeof *D->x);
  if (t)
    D->yt = calloc(n ? n * t : 1, sizeof *D->yt);
  else
    D->y = calloc(n ? n : 1, sizeof *D->y);
  if (!D->x || (!D->y && !D->yt)) {
    ng_data_free(D);
    return ng_error(NG_ENOMEM, "dataset: out of memory for %zu rows of %zu values", n, d);
  }
  return NG_OK;
}

void ng_data_free(ng_data *D) {
  if (!D) return;
  free(D->x);
  free(D->y);
  free(D->yt);
  free(D->mean);
  free(D->std);
  memset(D, 0, sizeof *D);
}

void ng_data_count_classes(ng_data *D) {
  int64_t k = 0;
  if (D->t == 0)
    for (size_t i = 0; i < D->n; i++)
      if (D->y[i] + (int64_t)1 > k) k = D->y[i] + (int64_t)1;
  D->classes = k;
}

/* ---- Writing --------------------------------------------------------------------------------------------
 */

static int write_failed(const char *file, const char *h5path) {
  return ng_h5_write_failed("dataset", file, h5path);
}

/* A scalar (count 0) or one-dimensional attribute. */
static int put_attr(const char *file, hid_t loc, const char *where, const char *name, hid_t ftype,
                    hid_t mtype, const void *buf, hsize_t count) {
  return ng_h5_put_attr("dataset", file, loc, where, name, ftype, mtype, buf, count);
}

static int put_attr_str(const char *file, hid_t loc, const char *where, const char *name, const char *value) {
  hid_t t = ng_h5_vlen_utf8();
  if (t < 0) return write_failed(file, where);
  int st = put_attr(file, loc, where, name, t, t, &value, 0);
  ng_h5_close(&t);
  return st;
}

static int put_attr_i64(const char *file, hid_t loc, const char *where, const char *name, int64_t v) {
  return put_attr(file, loc, where, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 0);
}

/* A dataset of `rank` dimensions chunked along the first, filled from buf. */
static int put_array(const char *file, hid_t fid, const char *path, int rank, const hsize_t *dims,
                     hid_t ftype, hid_t mtype, const void *buf, hid_t *out) {
  size_t row = 1;
  for (int k = 1; k < rank; k++)
    row *= (size_t)dims[k];
  hsize_t chunk[4];
  size_t rows = DATA_CHUNK_BYTES / (row * 4);
  if (rows < 1) rows = 1;
  if (rows > dims[0]) rows = (size_t)dims[0];
  chunk[0] = rows;
  for (int k = 1; k < rank; k++)
    chunk[k] = dims[k];
  errno = 0;
  hid_t space = H5Screate_simple(rank, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  herr_t s = space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, rank, chunk) < 0 ? -1 : 0;
  *out = s < 0 ? -1 : H5Dcreate2(fid, path, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (*out < 0 || H5Dwrite(*out, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) s = -1;
  ng_h5_close(&dcpl);
  ng_h5_close(&space);
  return s < 0 ? write_failed(file, path) : NG_OK;
}

static int check_data(const char *path, const ng_data *D) {
  if (D->n == 0) return ng_error(NG_EINVAL, "cannot write dataset '%s': it has no rows", path);
  if (D->xrank < 1 || D->xrank > 3)
    return ng_error(NG_EINVAL, "cannot write dataset '%s': a row has %d dimensions, expected 1 to 3", path,
                    D->xrank);
  size_t d = 1;
  for (int k = 0; k < D->xrank; k++)
    d *= D->xdims[k];
  if (d != D->d || d == 0 || !D->x)
    return ng_error(NG_EINVAL, "cannot write dataset '%s': row shape does not give %zu features", path, D->d);
  if (D->t == 0) {
    if (!D->y) return ng_error(NG_EINVAL, "cannot write dataset '%s': no labels", path);
    if (D->classes < 1 || D->classes > INT32_MAX)
      return ng_error(NG_EINVAL, "cannot write dataset '%s': %lld classes", path, (long long)D->classes);
    for (size_t i = 0; i < D->n; i++)
      if (D->y[i] < 0 || D->y[i] >= D->classes)
        return ng_error(NG_EINVAL, "cannot write dataset '%s': row %zu has label %d, outside [0, %lld)", path,
                        i, (int)D->y[i], (long long)D->classes);
  } else if (!D->yt) {
    return ng_error(NG_EINVAL, "cannot write dataset '%s': no targets", path);
  }
  if (!D->mean != !D->std)
    return ng_error(NG_EINVAL, "cannot write dataset '%s': a mean without a std or the reverse", path);
  return NG_OK;
}

/* Fills the dataset file being built in memory as `tmp` (ng_h5_write_atomic's callback). */
static int write_file(hid_t fid, const char *tmp, void *ctx) {
  const ng_data *D = ctx;
  hid_t dx = -1, dy = -1;
  int st = NG_OK;
  int64_t *counts = NULL;
  NG_TRY(st, put_attr_str(tmp, fid, "/", "format", DATA_FORMAT_NAME), done);
  NG_TRY(st, put_attr_i64(tmp, fid, "/", "format_version", NG_DATA_FORMAT_VERSION), done);
  NG_TRY(st, put_attr_str(tmp, fid, "/", "name", D->name), done);
  NG_TRY(st, put_attr_str(tmp, fid, "/", "domain", D->domain), done);
  NG_TRY(st, put_attr_i64(tmp, fid, "/", "classes", D->t ? 0 : D->classes), done);

  hsize_t dims[4] = {D->n, D->xdims[0], D->xdims[1], D->xdims[2]};
  NG_TRY(st, put_array(tmp, fid, "/x", D->xrank + 1, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, D->x, &dx),
         done);
  if (D->mean) {
    NG_TRY(st, put_attr(tmp, dx, "/x", "mean", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, D->mean, D->d), done);
    NG_TRY(st, put_attr(tmp, dx, "/x", "std", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, D->std, D->d), done);
  }
  if (D->t) {
    hsize_t ydims[2] = {D->n, D->t};
    NG_TRY(st, put_array(tmp, fid, "/y", 2, ydims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, D->yt, &dy), done);
  } else {
    hsize_t ydims[1] = {D->n};
    NG_TRY(st, put_array(tmp, fid, "/y", 1, ydims, H5T_STD_I32LE, H5T_NATIVE_INT32, D->y, &dy), done);
    counts = calloc((size_t)D->classes, sizeof *counts);
    if (!counts) {
      st = ng_error(NG_ENOMEM, "cannot write dataset '%s': out of memory", tmp);
      goto done;
    }
    for (size_t i = 0; i < D->n; i++)
      counts[D->y[i]]++;
    NG_TRY(st, put_attr_i64(tmp, dy, "/y", "classes", D->classes), done);
    NG_TRY(
        st,
        put_attr(tmp, dy, "/y", "class_counts", H5T_STD_I64LE, H5T_NATIVE_INT64, counts, (hsize_t)D->classes),
        done);
  }
done:
  free(counts);
  ng_h5_close(&dy);
  ng_h5_close(&dx);
  return st;
}

int ng_data_write(const char *path, const ng_data *D) {
  if (!path || !*path || !D) return ng_error(NG_EINVAL, "ng_data_write: a path and a dataset are required");
  NG_CALL(check_data(path, D));
  static const ng_fs_atomic how = {"dataset", NULL, NULL, 0, NULL};
  return ng_h5_write_atomic(path, &how, write_file, (void *)D);
}

/* ---- Reading --------------------------------------------------------------------------------------------
 */

struct ng_dataset {
  char *path;
  hid_t fid, dx, dy;
  ng_data_info info;
};

/* Opens /x or /y through ng_h5_dataset_open: a float32 /x of 2 to 4 dimensions, or a /y of int32 or float32
 * and 1 or 2 dimensions (which of them fit together is checked by the caller); dims gets the shape. */
static int open_array(ng_dataset *ds, const char *h5path, hid_t *out, int *rank, hsize_t dims[4]) {
  ng_h5_src src = {"dataset", ds->path, NULL};
  int x = h5path[1] == 'x';
  ng_h5_want want = {x ? NG_H5_CLASS(H5T_FLOAT) : NG_H5_CLASS(H5T_FLOAT) | NG_H5_CLASS(H5T_INTEGER),
                     4,
                     x ? 2 : 1,
                     x ? 4 : 2,
                     NULL,
                     x ? "float32" : "int32 labels or float32 targets"};
  int st = ng_h5_dataset_open(&src, ds->fid, h5path, &want, out, rank, dims);
  if (st == NG_EFORMAT && !ng__h5_path_exists(ds->fid, h5path))
    st = ng_error(NG_EFORMAT, "dataset '%s': no HDF5 path '%s' (not a nograd dataset?)", ds->path, h5path);
  return st;
}

/* An optional string attribute of the root into buf (cut at size): 1 when absent, else ng_h5_attr_get's
 * status (one string, checked before it is read). */
static int read_attr_str(ng_dataset *ds, const char *name, char *buf, size_t size) {
  ng_h5_src src = {"dataset", ds->path, NULL};
  char *v = NULL;
  buf[0] = '\0';
  int st = ng_h5_attr_get(&src, ds->fid, "/", name, NG_H5_STR, 1, &v);
  if (st == NG_OK) snprintf(buf, size, "%s", v);
  free(v);
  return st == NG_ENOTFOUND ? 1 : st;
}

/* An optional integer attribute of the root: 1 when absent, else ng_h5_attr_get's status. */
static int read_attr_i64(ng_dataset *ds, const char *name, int64_t *v) {
  ng_h5_src src = {"dataset", ds->path, NULL};
  int st = ng_h5_attr_get(&src, ds->fid, "/", name, NG_H5_I64, 1, v);
  return st == NG_ENOTFOUND ? 1 : st;
}

/* A float attribute of /x of exactly d values into a malloc'd array (ng_h5_attr_get's status). */
static int read_attr_floats(ng_dataset *ds, const char *name, size_t d, float **out) {
  ng_h5_src src = {"dataset", ds->path, NULL};
  *out = malloc((d ? d : 1) * sizeof **out);
  if (!*out) return ng_error(NG_ENOMEM, "dataset '%s': out of memory", ds->path);
  int st = ng_h5_attr_get(&src, ds->dx, "/x", name, NG_H5_F32, d, *out);
  if (st != NG_OK) {
    free(*out);
    *out = NULL;
  }
  return st;
}

/* The whole read (dataset_impl.h), also run by the child process that checks a dataset without nograd's
 * header (io/seal.h). */
int ng__dataset_read_all(const char *path, void *ctx) {
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(path, &ds));
  const ng_data_info *in = &ds->info;
  size_t row = in->d + (in->t ? in->t : 1), block = ((size_t)4 << 20) / (row * sizeof(float)) + 1;
  if (block > in->n) block = in->n ? in->n : 1;
  float *x = ng__mallocn(block, in->d, sizeof *x), *y = ng__mallocn(block, in->t ? in->t : 1, sizeof(float));
  int st = x && y ? NG_OK : ng_error(NG_ENOMEM, "dataset '%s': out of memory", path);
  for (size_t first = 0; first < in->n && st == NG_OK; first += block)
    st = ng_dataset_read_rows(ds, first, in->n - first < block ? in->n - first : block, x, y);
  free(x);
  free(y);
  float *mean = NULL, *std = NULL;
  if (st == NG_OK && in->standardized) st = ng_data_read_stats(path, in->d, &mean, &std);
  free(mean);
  free(std);
  ng_dataset_close(&ds);
  return st;
}

static int open_checked(ng_dataset *ds) {
  ng_h5_reading how = {"dataset", NULL, ng__dataset_read_all, NULL};
  NG_CALL(ng_h5_open_checked(ds->path, &how, &ds->fid, NULL));
  ng_data_info *in = &ds->info;
  int xr, yr;
  hsize_t xd[4], yd[4];
  NG_CALL(open_array(ds, "/x", &ds->dx, &xr, xd));
  NG_CALL(open_array(ds, "/y", &ds->dy, &yr, yd));
  if (xr < 2 || xr > 4)
    return ng_error(NG_EFORMAT,
                    "dataset '%s': HDF5 path '/x' has %d dimensions, expected 2 (N x d), 3 (N x S x d: "
                    "sequences) or 4 (N x C x H x W)",
                    ds->path, xr);
  hid_t t = H5Dget_type(ds->dy);
  H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  int labels = cls == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_2;
  int targets = cls == H5T_FLOAT;
  const char *found = t >= 0 ? ng_h5_type_name(t) : "an unreadable type";
  ng_h5_close(&t);
  if (!labels && !targets)
    return ng_error(NG_EFORMAT,
                    "dataset '%s': HDF5 path '/y' holds %s, expected int32 labels or float32 targets",
                    ds->path, found);
  if (labels && yr != 1)
    return ng_error(NG_EFORMAT,
                    "dataset '%s': HDF5 path '/y' holds int32 labels of %d dimensions, expected 1", ds->path,
                    yr);
  if (targets && yr != 2)
    return ng_error(NG_EFORMAT,
                    "dataset '%s': HDF5 path '/y' holds float32 targets of %d dimensions, expected 2 (N x t)",
                    ds->path, yr);
  if (xd[0] != yd[0])
    return ng_error(NG_EFORMAT, "dataset '%s': HDF5 path '/x' has %llu rows but '/y' has %llu", ds->path,
                    (unsigned long long)xd[0], (unsigned long long)yd[0]);
  in->n = (size_t)xd[0];
  in->xrank = xr - 1;
  in->d = 1;
  for (int k = 0; k < in->xrank; k++) {
    in->xdims[k] = (size_t)xd[k + 1];
    if (!ng__mul(in->d, in->xdims[k], &in->d) || in->d > DATA_ROW_MAX)
      return ng_error(NG_EFORMAT, "dataset '%s': HDF5 path '/x' has rows of more than %zu values", ds->path,
                      DATA_ROW_MAX);
  }
  in->t = targets ? (size_t)yd[1] : 0;
  if (targets && in->t == 0)
    return ng_error(NG_EFORMAT, "dataset '%s': HDF5 path '/y' has 0 targets per row", ds->path);
  if (in->t > DATA_ROW_MAX)
    return ng_error(NG_EFORMAT, "dataset '%s': HDF5 path '/y' has rows of more than %zu targets", ds->path,
                    DATA_ROW_MAX);
  int r = read_attr_str(ds, "name", in->name, sizeof in->name);
  if (r < 0) return r;
  r = read_attr_str(ds, "domain", in->domain, sizeof in->domain);
  if (r < 0) return r;
  ng__text_sanitize(in->name, 0); /* shown by `nograd data info` and in messages */
  ng__text_sanitize(in->domain, 0);
  r = read_attr_i64(ds, "classes", &in->classes);
  if (r < 0) return r;
  if (labels && (r == 1 || in->classes < 1 || in->classes > INT32_MAX))
    return ng_error(NG_EFORMAT, "dataset '%s': labels need a positive root attribute 'classes'%s", ds->path,
                    r == 1 ? ", which is missing" : "");
  if (targets) in->classes = 0;
  in->standardized = H5Aexists(ds->dx, "mean") > 0 && H5Aexists(ds->dx, "std") > 0;
  return NG_OK;
}

int ng_dataset_open(const char *path, ng_dataset **out) {
  *out = NULL;
  if (!path || !*path) return ng_error(NG_EINVAL, "ng_dataset_open: no path");
  ng_dataset *ds = calloc(1, sizeof *ds);
  if (!ds || !(ds->path = strdup(path))) {
    free(ds);
    return ng_error(NG_ENOMEM, "dataset '%s': out of memory", path);
  }
  ds->fid = ds->dx = ds->dy = -1;
  ng_h5_quiet q = ng_h5_quiet_begin();
  int st = open_checked(ds);
  ng_h5_quiet_end(q);
  if (st != NG_OK)
    ng_dataset_close(&ds);
  else
    *out = ds;
  return st;
}

void ng_dataset_close(ng_dataset **ds) {
  if (!ds || !*ds) return;
  ng_h5_quiet q = ng_h5_quiet_begin();
  ng_h5_close(&(*ds)->dy);
  ng_h5_close(&(*ds)->dx);
  ng_h5_close(&(*ds)->fid);
  ng_h5_quiet_end(q);
  free((*ds)->path);
  free(*ds);
  *ds = NULL;
}

const ng_data_info *ng_dataset_info(const ng_dataset *ds) {
  return &ds->info;
}

/* Rows [first, first+count) of a dataset with `rank` dimensions into buf, with one hyperslab. */
static int read_slab(ng_dataset *ds, hid_t dset, const char *h5path, size_t first, size_t count, hid_t mtype,
                     void *buf) {
  hid_t fs = H5Dget_space(dset);
  int rank = fs < 0 ? -1 : H5Sget_simple_extent_ndims(fs);
  hsize_t dims[4], start[4] = {0, 0, 0, 0}, cnt[4];
  herr_t s = rank < 1 ? -1 : H5Sget_simple_extent_dims(fs, dims, NULL);
  hsize_t total = 1;
  for (int k = 0; k < rank; k++) {
    cnt[k] = k ? dims[k] : (hsize_t)count;
    total *= cnt[k];
  }
  start[0] = first;
  if (s >= 0) s = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
  hid_t ms = s < 0 ? -1 : H5Screate_simple(1, &total, NULL);
  if (ms < 0 || H5Dread(dset, mtype, ms, fs, H5P_DEFAULT, buf) < 0) s = -1;
  ng_h5_close(&ms);
  ng_h5_close(&fs);
  if (s < 0)
    return ng_error(NG_ECORRUPT, "dataset '%s': cannot read rows %zu..%zu of HDF5 path '%s' (damaged?)",
                    ds->path, first, first + count - 1, h5path);
  return NG_OK;
}

int ng_dataset_read_rows(ng_dataset *ds, size_t first, size_t count, float *x, void *y) {
  const ng_data_info *in = &ds->info;
  if (first > in->n || count > in->n - first)
    return ng_error(NG_EINVAL, "dataset '%s': rows %zu..%zu requested, but it has %zu rows", ds->path, first,
                    first + count, in->n);
  if (count == 0) return NG_OK;
  ng_h5_quiet q = ng_h5_quiet_begin();
  int st = NG_OK;
  if (x) st = read_slab(ds, ds->dx, "/x", first, count, H5T_NATIVE_FLOAT, x);
  if (st == NG_OK && y)
    st = read_slab(ds, ds->dy, "/y", first, count, in->t ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT32, y);
  ng_h5_quiet_end(q);
  if (st == NG_OK && y && in->t == 0) {
    const int32_t *lab = y;
    for (size_t i = 0; i < count; i++)
      if (lab[i] < 0 || lab[i] >= in->classes)
        return ng_error(NG_ECORRUPT, "dataset '%s': HDF5 path '/y' row %zu holds label %d, outside [0, %lld)",
                        ds->path, first + i, (int)lab[i], (long long)in->classes);
  }
  return st;
}

int ng_data_read_stats(const char *path, size_t d, float **mean, float **std) {
  *mean = *std = NULL;
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(path, &ds));
  int st = NG_OK;
  if (!ds->info.standardized) {
    st = ng_error(NG_ENOTFOUND,
                  "dataset '%s': HDF5 path '/x' has no 'mean' and 'std' attributes (not standardized)", path);
  } else if (ds->info.d != d) {
    st = ng_error(NG_EMISMATCH, "dataset '%s': its statistics are for %zu features, the data have %zu", path,
                  ds->info.d, d);
  } else {
    ng_h5_quiet q = ng_h5_quiet_begin();
    st = read_attr_floats(ds, "mean", d, mean);
    if (st == NG_OK) st = read_attr_floats(ds, "std", d, std);
    ng_h5_quiet_end(q);
  }
  if (st != NG_OK) {
    free(*mean);
    free(*std);
    *mean = *std = NULL;
  }
  ng_dataset_close(&ds);
  return st;
}

int ng_data_load(const char *path, ng_data *D) {
  memset(D, 0, sizeof *D);
  ng_dataset *ds = NULL;
  NG_CALL(ng_dataset_open(path, &ds));
  const ng_data_info *in = &ds->info;
  int st = ng_data_alloc(D, in->n, in->xrank, in->xdims, in->t);
  if (st == NG_OK) st = ng_dataset_read_rows(ds, 0, in->n, D->x, in->t ? (void *)D->yt : (void *)D->y);
  if (st == NG_OK) {
    D->classes = in->classes;
    snprintf(D->name, sizeof D->name, "%s", in->name);
    snprintf(D->domain, sizeof D->domain, "%s", in->domain);
    if (in->standardized) st = ng_data_read_stats(path, in->d, &D->mean, &D->std);
  }
  ng_dataset_close(&ds);
  if (st != NG_OK) ng_data_free(D);
  return st;
}
