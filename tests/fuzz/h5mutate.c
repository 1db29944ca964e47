/* Object-level mutations of HDF5 files (see h5mutate.h). */
#include "h5mutate.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/seal.h"

#define MAX_ELEMS                                                                          \
  4096 /* a dataset with more elements is created chunked and left unwritten (fill values) \
        */

typedef struct {
  const uint8_t *p;
  size_t left;
} bytes;

static unsigned next(bytes *b) {
  if (!b->left) return 0;
  b->left--;
  return *b->p++;
}

static char *dup_or_die(const char *s) {
  char *d = strdup(s);
  if (!d) abort();
  return d;
}

static void push(char ***list, size_t *n, char *s) {
  char **g = realloc(*list, (*n + 1) * sizeof *g);
  if (!g) abort();
  g[(*n)++] = s;
  *list = g;
}

typedef struct {
  fuzz_h5_base *b;
  hid_t fid;
} visit_ctx;

static herr_t attr_cb(hid_t obj, const char *name, const H5A_info_t *info, void *data) {
  const char **ctx = data;
  fuzz_h5_base *b = (fuzz_h5_base *)ctx[0];
  size_t len = strlen(ctx[1]) + strlen(name) + 2;
  char *s = malloc(len);
  if (!s) abort();
  snprintf(s, len, "%s\n%s", ctx[1], name);
  push(&b->attrs, &b->nattrs, s);
  return 0;
}

static void add_object(visit_ctx *c, const char *path) {
  push(&c->b->objects, &c->b->nobjects, dup_or_die(path));
  hid_t o = H5Oopen(c->fid, path, H5P_DEFAULT);
  if (o < 0) abort();
  const void *ctx[2] = {c->b, path};
  hsize_t idx = 0;
  H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, (void *)ctx);
  H5Oclose(o);
}

static herr_t object_cb(hid_t root, const char *name, const H5O_info_t *info, void *data) {
  if (!strcmp(name, ".")) return 0;
  char path[512];
  snprintf(path, sizeof path, "/%s", name);
  add_object(data, path);
  return 0;
}

void fuzz_h5_base_load(fuzz_h5_base *b, const char *path) {
  memset(b, 0, sizeof *b);
  FILE *f = fopen(path, "rb");
  if (!f || fseek(f, 0, SEEK_END) != 0) abort();
  long len = ftell(f);
  rewind(f);
  b->bytes = malloc((size_t)len);
  if (!b->bytes || fread(b->bytes, 1, (size_t)len, f) != (size_t)len) abort();
  b->len = (size_t)len;
  fclose(f);
  visit_ctx c = {b, H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT)};
  if (c.fid < 0) abort();
  add_object(&c, "/");
#if H5_VERSION_GE(1, 12, 0)
  H5Ovisit3(c.fid, H5_INDEX_NAME, H5_ITER_INC, object_cb, &c, H5O_INFO_BASIC);
#else
  H5Ovisit(c.fid, H5_INDEX_NAME, H5_ITER_INC, object_cb, &c);
#endif
  H5Fclose(c.fid);
}

/* ---- Random types, spaces and contents ---- */

static hid_t make_type(bytes *b) {
  switch (next(b) % 15) {
    case 0:
      return H5Tcopy(H5T_STD_I8LE);
    case 1:
      return H5Tcopy(H5T_STD_I16LE);
    case 2:
      return H5Tcopy(H5T_STD_I32LE);
    case 3:
      return H5Tcopy(H5T_STD_I64LE);
    case 4:
      return H5Tcopy(H5T_STD_U64LE);
    case 5:
      return H5Tcopy(H5T_STD_U32BE);
    case 6:
      return H5Tcopy(H5T_IEEE_F32LE);
    case 7:
      return H5Tcopy(H5T_IEEE_F64LE);
    case 8:
      return H5Tcopy(H5T_IEEE_F64BE);
    case 9: {
      hid_t t = H5Tcopy(H5T_C_S1);
      H5Tset_size(t, H5T_VARIABLE);
      H5Tset_cset(t, next(b) & 1 ? H5T_CSET_UTF8 : H5T_CSET_ASCII);
      return t;
    }
    case 10: {
      hid_t t = H5Tcopy(H5T_C_S1);
      H5Tset_size(t, 1 + next(b) % 40);
      return t;
    }
    case 11: {
      hid_t t = H5Tcreate(H5T_COMPOUND, 12);
      H5Tinsert(t, "a", 0, H5T_STD_I32LE);
      H5Tinsert(t, "b", 4, H5T_IEEE_F64LE);
      return t;
    }
    case 12: {
      hsize_t d = 3;
      return H5Tarray_create2(H5T_IEEE_F64LE, 1, &d);
    }
    case 13:
      return H5Tcreate(H5T_OPAQUE, 4);
    default: {
      hid_t t = H5Tenum_create(H5T_NATIVE_INT);
      int v = 0;
      H5Tenum_insert(t, "zero", &v);
      v = 1;
      H5Tenum_insert(t, "one", &v);
      return t;
    }
  }
}

static const hsize_t extents[] = {
    0, 1, 2, 3, 4, 5, 8, 64, (hsize_t)1 << 31, (hsize_t)1 << 32, (hsize_t)1 << 40};

/* rank 0 (scalar) to max_rank, extents from the table; *elems the product, saturated. */
static hid_t make_space(bytes *b, int max_rank, int small, int *rank, hsize_t *dims, hsize_t *elems) {
  *rank = (int)(next(b) % (unsigned)(max_rank + 1));
  *elems = 1;
  for (int i = 0; i < *rank; i++) {
    unsigned k = next(b) % (small ? 8 : sizeof extents / sizeof extents[0]);
    dims[i] = extents[k];
    *elems = dims[i] && *elems > ((hsize_t)1 << 62) / dims[i] ? ((hsize_t)1 << 62) : *elems * dims[i];
  }
  return *rank ? H5Screate_simple(*rank, dims, NULL) : H5Screate(H5S_SCALAR);
}

/* A buffer of n values of type t from the input (strings for a variable-length string type); NULL when it
 * cannot be made. free_values releases it. */
static void *make_values(bytes *b, hid_t t, hsize_t n, char ***strings) {
  *strings = NULL;
  if (H5Tis_variable_str(t) > 0) {
    char **s = calloc(n ? n : 1, sizeof *s);
    for (hsize_t i = 0; s && i < n; i++) {
      size_t len = next(b) % 24;
      s[i] = malloc(len + 1);
      if (!s[i]) abort();
      for (size_t j = 0; j < len; j++)
        s[i][j] = (char)(next(b) | (j % 3 == 0 ? 0x40 : 0)); /* mostly printable, sometimes not */
      s[i][len] = '\0';
    }
    *strings = s;
    return s;
  }
  size_t size = H5Tget_size(t), total = (size_t)n * size;
  unsigned char *v = malloc(total ? total : 1);
  if (!v) abort();
  static const unsigned char specials[][8] = {{0, 0, 0, 0, 0, 0, 0xf8, 0x7f}, /* NaN (double) */
                                              {0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, /* inf */
                                              {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
                                              {0, 0, 0xc0, 0x7f, 0, 0, 0, 0}, /* NaN (float) */
                                              {1, 0, 0, 0, 0, 0, 0, 0}};
  unsigned mode = next(b);
  for (size_t i = 0; i < total; i++)
    v[i] = mode % 4 == 0 ? specials[(mode >> 2) % 5][i % 8] : (unsigned char)next(b);
  return v;
}

static void free_values(void *v, char **strings, hsize_t n) {
  for (hsize_t i = 0; strings && i < n; i++)
    free(strings[i]);
  free(v);
}

/* ---- The mutations ---- */

static const char *const attr_names[] = {
    "format_version", "dataset",      "threshold", "classes",      "train_rows", "name",  "domain",
    "format",         "mean",         "std",       "class_counts", "columns",    "f",     "state_checksum",
    "config",         "command_line", "optimizer", "ranks",        "groups",     "budget"};

static void new_dataset(hid_t fid, const char *path, bytes *b) {
  hid_t t = make_type(b), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  int rank;
  hsize_t dims[4], elems;
  hid_t s = make_space(b, 4, 0, &rank, dims, &elems);
  int write = elems <= MAX_ELEMS;
  if (rank && !write) {
    hsize_t chunk[4];
    for (int i = 0; i < rank; i++)
      chunk[i] = dims[i] > 4 ? 4 : dims[i] ? dims[i] : 1;
    H5Pset_chunk(dcpl, rank, chunk);
  }
  hid_t d = H5Dcreate2(fid, path, t, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (d >= 0 && write && elems) {
    char **strings;
    void *v = make_values(b, t, elems, &strings);
    if (v) H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free_values(v, strings, elems);
  }
  if (d >= 0) H5Dclose(d);
  H5Sclose(s);
  H5Pclose(dcpl);
  H5Tclose(t);
}

static void new_attr(hid_t obj, const char *name, bytes *b) {
  hid_t t = make_type(b);
  int rank;
  hsize_t dims[4], elems;
  hid_t s = make_space(b, 2, 1, &rank, dims, &elems);
  if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0 && elems) {
    char **strings;
    void *v = make_values(b, t, elems, &strings);
    if (v) H5Awrite(a, t, v);
    free_values(v, strings, elems);
  }
  if (a >= 0) H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

/* Overwrites a dataset's values in place (same type and extent): NaN, infinities, huge integers. */
static void new_values(hid_t fid, const char *path, bytes *b) {
  hid_t d = H5Dopen2(fid, path, H5P_DEFAULT);
  if (d < 0) return;
  hid_t t = H5Dget_type(d), s = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(s);
  if (n > 0 && n <= MAX_ELEMS && H5Tget_class(t) != H5T_STRING && H5Tget_class(t) != H5T_VLEN) {
    char **strings;
    void *v = make_values(b, t, (hsize_t)n, &strings);
    if (v) H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free_values(v, strings, (hsize_t)n);
  }
  H5Sclose(s);
  H5Tclose(t);
  H5Dclose(d);
}

static void mutate(hid_t fid, const fuzz_h5_base *base, bytes *b) {
  const char *obj = base->objects[next(b) % base->nobjects];
  int root = !strcmp(obj, "/");
  char attr_obj[512] = "/", attr_name[128] = "x";
  if (base->nattrs) {
    const char *a = base->attrs[next(b) % base->nattrs], *nl = strchr(a, '\n');
    snprintf(attr_obj, sizeof attr_obj, "%.*s", (int)(nl - a), a);
    snprintf(attr_name, sizeof attr_name, "%s", nl + 1);
  }
  switch (next(b) % 9) {
    case 0: /* a dataset of another type, rank or extent in its place */
      if (!root && H5Ldelete(fid, obj, H5P_DEFAULT) >= 0) new_dataset(fid, obj, b);
      break;
    case 1: { /* an attribute of another type or size */
      hid_t o = H5Oopen(fid, attr_obj, H5P_DEFAULT);
      if (o >= 0) {
        new_attr(o, attr_name, b);
        H5Oclose(o);
      }
      break;
    }
    case 2:
      if (!root) H5Ldelete(fid, obj, H5P_DEFAULT);
      break;
    case 3: {
      hid_t o = H5Oopen(fid, attr_obj, H5P_DEFAULT);
      if (o >= 0) {
        H5Adelete(o, attr_name);
        H5Oclose(o);
      }
      break;
    }
    case 4: { /* an attribute that some reader looks for, on any object */
      hid_t o = H5Oopen(fid, obj, H5P_DEFAULT);
      if (o >= 0) {
        new_attr(o, attr_names[next(b) % (sizeof attr_names / sizeof attr_names[0])], b);
        H5Oclose(o);
      }
      break;
    }
    case 5: /* a group where a dataset was */
      if (!root && H5Ldelete(fid, obj, H5P_DEFAULT) >= 0) {
        hid_t g = H5Gcreate2(fid, obj, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g >= 0) H5Gclose(g);
      }
      break;
    case 6: /* a soft link (to another object, or nowhere) or an external link */
      if (!root && H5Ldelete(fid, obj, H5P_DEFAULT) >= 0) {
        unsigned k = next(b);
        if (k % 3 == 2)
          H5Lcreate_external("/nonexistent.h5", "/x", fid, obj, H5P_DEFAULT, H5P_DEFAULT);
        else
          H5Lcreate_soft(k % 3 ? base->objects[k % base->nobjects] : "/nowhere", fid, obj, H5P_DEFAULT,
                         H5P_DEFAULT);
      }
      break;
    case 7:
      new_values(fid, obj, b);
      break;
    default: { /* a new member of a group */
      char path[600];
      snprintf(path, sizeof path, "%s/%s", root ? "" : obj, attr_names[next(b) % 4]);
      new_dataset(fid, path, b);
      break;
    }
  }
}

const char *fuzz_h5_mutant(const fuzz_h5_base *base, const uint8_t *data, size_t size) {
  static char path[128];
  snprintf(path, sizeof path, "/tmp/nograd-fuzz-%ld-mutant.h5", (long)getpid());
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(base->bytes, 1, base->len, f) != base->len || fclose(f) != 0) abort();
  bytes b = {data, size};
  hid_t fid = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (fid < 0) abort();
  unsigned count = 1 + next(&b) % 4;
  for (unsigned i = 0; i < count; i++)
    mutate(fid, base, &b);
  if (H5Fclose(fid) < 0) abort();
  if (ng__seal_file(path) != 0) abort();
  return path;
}
