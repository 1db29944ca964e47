/* Checked reads of attributes and datasets (see h5read.h): the type class, the number of values and the
 * extents are compared with what the reader expects before a byte is read, so that the buffer a reader
 * passes always has room for what HDF5 writes into it. */
#include "io/h5read.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"
#include "nograd/error.h"

/* "KIND 'FILE': WHAT", with the damage hint after NG_ECORRUPT messages. */
static int src_error(const ng_h5_src *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int src_error(const ng_h5_src *s, int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int st = ng_h5_read_verror(status, s->kind, s->file,
                             status == NG_ECORRUPT && s->damage_hint ? s->damage_hint : "", fmt, ap);
  va_end(ap);
  return st;
}

const char *ng_h5_type_name(hid_t type) {
  size_t size = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      int sgn = H5Tget_sign(type) == H5T_SGN_2;
      switch (size) {
        case 1:
          return sgn ? "int8" : "uint8";
        case 2:
          return sgn ? "int16" : "uint16";
        case 4:
          return sgn ? "int32" : "uint32";
        case 8:
          return sgn ? "int64" : "uint64";
        default:
          return "an integer of unusual size";
      }
    }
    case H5T_FLOAT:
      return size == 2 ? "float16" : size == 4 ? "float32" : size == 8 ? "float64" : "a float";
    case H5T_STRING:
      return "a string";
    case H5T_COMPOUND:
      return "a compound type";
    case H5T_ENUM:
      return "an enum";
    case H5T_ARRAY:
      return "an array type";
    case H5T_VLEN:
      return "a variable-length sequence";
    case H5T_REFERENCE:
      return "a reference";
    case H5T_OPAQUE:
      return "an opaque type";
    case H5T_BITFIELD:
      return "a bit field";
    default:
      return "an unsupported type";
  }
}

static H5T_class_t elem_class(ng_h5_elem e) {
  return e == NG_H5_I64 ? H5T_INTEGER : e == NG_H5_STR ? H5T_STRING : H5T_FLOAT;
}

/* "one integer", "3 float values", ... */
static void expect_text(ng_h5_elem e, size_t count, char *buf, size_t len) {
  static const char *const one[] = {"one integer", "one number", "one number", "one string"};
  static const char *const many[] = {"integers", "numbers", "numbers", "strings"};
  if (count == 1)
    snprintf(buf, len, "%s", one[e]);
  else
    snprintf(buf, len, "%zu %s", count, many[e]);
}

int ng_h5_attr_get(const ng_h5_src *src, hid_t obj, const char *objpath, const char *name, ng_h5_elem elem,
                   size_t count, void *out) {
  char where[NG_H5PATH_MAX], want[64];
  snprintf(where, sizeof where, "%s/%s", strcmp(objpath, "/") ? objpath : "", name);
  expect_text(elem, count, want, sizeof want);
  htri_t exists = H5Aexists(obj, name);
  if (exists == 0) return src_error(src, NG_ENOTFOUND, "no attribute '%s'", where);
  if (exists < 0) return src_error(src, NG_ECORRUPT, "cannot read attribute '%s' (damaged?)", where);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), type = -1, space = -1;
  int st = NG_OK;
  if (a < 0 || (type = H5Aget_type(a)) < 0 || (space = H5Aget_space(a)) < 0) {
    st = src_error(src, NG_ECORRUPT, "cannot read attribute '%s' (damaged?)", where);
    goto done;
  }
  H5S_class_t sclass = H5Sget_simple_extent_type(space);
  hssize_t points = H5Sget_simple_extent_npoints(space);
  if (sclass == H5S_NO_CLASS || points < 0) {
    st = src_error(src, NG_ECORRUPT, "cannot read attribute '%s' (damaged?)", where);
  } else if (H5Tget_class(type) != elem_class(elem)) {
    st = src_error(src, NG_EFORMAT, "attribute '%s' holds %s, expected %s", where, ng_h5_type_name(type),
                   want);
  } else if (sclass == H5S_NULL || (size_t)points != count) {
    st = src_error(src, NG_EFORMAT, "attribute '%s' holds %lld values of %s, expected %s", where,
                   (long long)(sclass == H5S_NULL ? 0 : points), ng_h5_type_name(type), want);
  } else if (elem == NG_H5_STR) {
    char **v = NULL;
    int s = ng_h5_read_strings(a, type, count, 1, &v);
    if (s == NG_ENOMEM)
      st = src_error(src, NG_ENOMEM, "out of memory for attribute '%s'", where);
    else if (s != NG_OK)
      st = src_error(src, NG_ECORRUPT, "cannot read attribute '%s' (damaged?)", where);
    else
      memcpy(out, v, count * sizeof *v);
    free(v);
  } else {
    hid_t mtype = elem == NG_H5_I64   ? H5T_NATIVE_INT64
                  : elem == NG_H5_F64 ? H5T_NATIVE_DOUBLE
                                      : H5T_NATIVE_FLOAT;
    size_t esize = elem == NG_H5_F32 ? sizeof(float) : 8;
    void *buf = malloc(count * esize); /* count is the attribute's: at most what the file holds */
    if (!buf)
      st = src_error(src, NG_ENOMEM, "out of memory for attribute '%s'", where);
    else if (H5Aread(a, mtype, buf) < 0)
      st = src_error(src, NG_ECORRUPT, "cannot read attribute '%s' (damaged?)", where);
    else
      memcpy(out, buf, count * esize);
    free(buf);
  }
done:
  ng_h5_close(&space);
  ng_h5_close(&type);
  ng_h5_close(&a);
  return st;
}

/* "2", "2 or 4", "1 to 3": the ranks a want accepts. */
static void ranks_text(const ng_h5_want *w, char *buf, size_t len) {
  if (w->min_rank == w->max_rank)
    snprintf(buf, len, "%d", w->min_rank);
  else if (w->max_rank == w->min_rank + 1)
    snprintf(buf, len, "%d or %d", w->min_rank, w->max_rank);
  else
    snprintf(buf, len, "%d to %d", w->min_rank, w->max_rank);
}

int ng_h5_dataset_open(const ng_h5_src *src, hid_t fid, const char *h5path, const ng_h5_want *want,
                       hid_t *out, int *rank, hsize_t *dims) {
  *out = -1;
  if (!ng__h5_path_exists(fid, h5path)) return src_error(src, NG_EFORMAT, "no HDF5 path '%s'", h5path);
  hid_t d = H5Dopen2(fid, h5path, H5P_DEFAULT), type = -1, space = -1;
  if (d < 0) return src_error(src, NG_EFORMAT, "HDF5 path '%s' is not a dataset", h5path);
  int st = NG_OK, nd = -1;
  hsize_t got[NG_H5_MAX_RANK] = {0};
  if ((type = H5Dget_type(d)) < 0 || (space = H5Dget_space(d)) < 0 ||
      (nd = H5Sget_simple_extent_ndims(space)) < 0 || H5Sget_simple_extent_type(space) == H5S_NO_CLASS) {
    st = src_error(src, NG_ECORRUPT, "cannot read HDF5 path '%s' (damaged?)", h5path);
    goto done;
  }
  H5T_class_t cls = H5Tget_class(type);
  if (cls < 0 || cls >= 32 || !(want->classes & NG_H5_CLASS(cls)) ||
      (want->size && H5Tget_size(type) != want->size)) {
    st = src_error(src, NG_EFORMAT, "HDF5 path '%s' holds %s, expected %s", h5path, ng_h5_type_name(type),
                   want->expect);
    goto done;
  }
  if (nd < want->min_rank || nd > want->max_rank || nd > NG_H5_MAX_RANK) {
    char r[32];
    ranks_text(want, r, sizeof r);
    st = src_error(src, NG_EFORMAT, "HDF5 path '%s' has %d dimensions, expected %s", h5path, nd, r);
    goto done;
  }
  if (nd && H5Sget_simple_extent_dims(space, got, NULL) < 0) {
    st = src_error(src, NG_ECORRUPT, "cannot read HDF5 path '%s' (damaged?)", h5path);
    goto done;
  }
  for (int i = 0; want->dims && i < nd; i++)
    if (want->dims[i] != NG_H5_ANY && got[i] != want->dims[i]) {
      st = src_error(src, NG_EFORMAT, "HDF5 path '%s' has %llu entries along dimension %d, expected %llu",
                     h5path, (unsigned long long)got[i], i, (unsigned long long)want->dims[i]);
      goto done;
    }
  if (rank) *rank = nd;
  if (dims) memcpy(dims, got, (size_t)nd * sizeof *got);
done:
  ng_h5_close(&space);
  ng_h5_close(&type);
  if (st == NG_OK)
    *out = d;
  else
    ng_h5_close(&d);
  return st;
}
