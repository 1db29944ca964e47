/* Checkpoints in HDF5 (the layout is in include/nograd/ckpt.h): the history table, the canonical state
 * checksum and the atomic write; reading and verifying is ckpt_read.c.
 *
 * Writing: PATH.tmp is created, filled, flushed, closed and fsynced; then PATH (if any) also becomes
 * PATH.prev (a hard link, so that PATH exists at every moment; a rename where the file system has no hard
 * links), PATH.tmp is renamed over PATH, and the directory is fsynced so that the renames survive a crash too
 * (Redis's rdbSave). HDF5 status codes become nograd ones here, with the file and the HDF5 path in the
 * message; HDF5's own error printing is switched off while these functions run and restored afterwards.
 *
 * Test hook: when the environment variable NOGRAD_CKPT_PAUSE_MS holds a positive integer, ng_ckpt_write
 * sleeps that many milliseconds after PATH.tmp is written and fsynced and before the renames, so that the
 * MPI tests (tests/mpi) can kill a run in the middle of a checkpoint write. Unset, it costs one getenv. */
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
#include "io/h5util.h"
#include "nograd/error.h"

#ifndef NOGRAD_VERSION
#define NOGRAD_VERSION "unknown"
#endif

const char *ng_version(void) {
  return NOGRAD_VERSION;
}

/* ---- The history table ----------------------------------------------------------------------------------
 */

const char *const ng__history_names[NG_HISTORY_NCOLS + 1] = {
#define NG_HISTORY_NAME(name, doc) #name,
    NG_HISTORY_COLUMNS(NG_HISTORY_NAME)
#undef NG_HISTORY_NAME
        NULL};

const char *const *ng_history_columns(void) {
  return ng__history_names;
}

int ng_history_append(ng_history *h, const double *row) {
  if (h->nrows == h->cap) {
    size_t cap = h->cap ? 2 * h->cap : 256;
    if (cap > SIZE_MAX / (NG_HISTORY_NCOLS * sizeof(double)))
      return ng_error(NG_ENOMEM, "history: too many rows (%zu)", h->nrows);
    double *grown = realloc(h->rows, cap * NG_HISTORY_NCOLS * sizeof *grown);
    if (!grown) return ng_error(NG_ENOMEM, "history: out of memory for %zu rows", cap);
    h->rows = grown;
    h->cap = cap;
  }
  memcpy(h->rows + h->nrows * NG_HISTORY_NCOLS, row, NG_HISTORY_NCOLS * sizeof *row);
  h->nrows++;
  return NG_OK;
}

void ng_history_free(ng_history *h) {
  if (!h) return;
  free(h->rows);
  h->rows = NULL;
  h->nrows = h->cap = 0;
}

/* ---- FNV-1a 64 and the state checksum -------------------------------------------------------------------
 */

uint64_t ng__fnv_bytes(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= NG__FNV_PRIME;
  }
  return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (unsigned char)(v >> (8 * i));
  return ng__fnv_bytes(h, b, 8);
}

/* 8-byte values (doubles or int64s), hashed as their little-endian bytes whatever the host's order. */
static uint64_t fnv_words(uint64_t h, const void *values, size_t count) {
  const uint16_t one = 1;
  if (*(const unsigned char *)&one == 1) return ng__fnv_bytes(h, values, count * 8);
  const unsigned char *p = values;
  for (size_t i = 0; i < count; i++) {
    uint64_t v;
    memcpy(&v, p + 8 * i, 8);
    h = fnv_u64(h, v);
  }
  return h;
}

typedef struct {
  const char *name;
  size_t index;
} named_index;

static int by_name(const void *a, const void *b) {
  return strcmp(((const named_index *)a)->name, ((const named_index *)b)->name);
}

/* The canonical serialization: the optimizer's entries sorted by name (name bytes, type byte, length as 8
 * little-endian bytes, values), then the history's rows x columns doubles, then best f and best x. It does
 * not depend on the order of the entries in the state nor on anything HDF5 adds. */
int ng__ckpt_checksum(const ng_state *st, const ng_history *hist, const double *best_x, size_t n,
                      double best_f, uint64_t *out) {
  uint64_t h = NG__FNV_OFFSET;
  size_t count = st ? ng_state_count(st) : 0;
  named_index *order = malloc((count ? count : 1) * sizeof *order);
  if (!order) return ng_error(NG_ENOMEM, "checkpoint: out of memory");
  for (size_t i = 0; i < count; i++) {
    ng_state_entry(st, i, &order[i].name, NULL, NULL, NULL);
    order[i].index = i;
  }
  qsort(order, count, sizeof *order, by_name);
  for (size_t i = 0; i < count; i++) {
    const char *name;
    ng_state_type type;
    size_t len;
    const void *values;
    ng_state_entry(st, order[i].index, &name, &type, &len, &values);
    unsigned char tb = (unsigned char)type;
    h = ng__fnv_bytes(h, name, strlen(name));
    h = ng__fnv_bytes(h, &tb, 1);
    h = fnv_u64(h, (uint64_t)len);
    h = fnv_words(h, values, len);
  }
  free(order);
  if (hist && hist->nrows) h = fnv_words(h, hist->rows, hist->nrows * NG_HISTORY_NCOLS);
  h = fnv_words(h, &best_f, 1);
  if (n) h = fnv_words(h, best_x, n);
  *out = h;
  return NG_OK;
}

/* ---- Writing --------------------------------------------------------------------------------------------
 */

typedef struct {
  const char *file; /* PATH.tmp, named in messages */
  hid_t fid, vstr, lcpl, dcpl;
} writer;

static int write_failed(const writer *w, const char *h5path) {
  return ng_h5_write_failed("checkpoint", w->file, h5path);
}

/* An attribute: scalar when count is 0, else one-dimensional. */
static int put_attr(const writer *w, hid_t loc, const char *locpath, const char *name, hid_t ftype,
                    hid_t mtype, const void *buf, hsize_t count) {
  return ng_h5_put_attr("checkpoint", w->file, loc, locpath, name, ftype, mtype, buf, count);
}

static int put_attr_str(const writer *w, hid_t loc, const char *locpath, const char *name,
                        const char *value) {
  const char *v = value ? value : "";
  return put_attr(w, loc, locpath, name, w->vstr, w->vstr, &v, 0);
}

static int put_attr_int(const writer *w, hid_t loc, const char *locpath, const char *name, int64_t value) {
  return put_attr(w, loc, locpath, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, 0);
}

/* A dataset: scalar, or one-dimensional of len values (len may be 0). Intermediate groups are created. */
static int put_dataset(const writer *w, hid_t loc, const char *locpath, const char *name, hid_t ftype,
                       hid_t mtype, const void *buf, size_t len, int scalar) {
  char where[NG_H5PATH_MAX];
  snprintf(where, sizeof where, "%s/%s", locpath, name);
  errno = 0;
  hsize_t dims[1] = {(hsize_t)len};
  /* Variable-length data cannot be created with the fill time "never"; numbers use it to skip a fill. */
  hid_t dcpl = H5Tis_variable_str(ftype) > 0 ? H5P_DEFAULT : w->dcpl;
  hid_t space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
  hid_t dset = space < 0 ? -1 : H5Dcreate2(loc, name, ftype, space, w->lcpl, dcpl, H5P_DEFAULT);
  herr_t s = dset < 0 ? -1 : 0;
  if (s == 0 && (scalar || len)) s = H5Dwrite(dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  ng_h5_close(&dset);
  ng_h5_close(&space);
  return s < 0 ? write_failed(w, where) : NG_OK;
}

static int put_group(const writer *w, const char *name, hid_t *out) {
  errno = 0;
  *out = H5Gcreate2(w->fid, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  return *out < 0 ? write_failed(w, name) : NG_OK;
}

static int put_state(const writer *w, hid_t group, const char *gpath, const ng_state *st) {
  size_t count = st ? ng_state_count(st) : 0;
  for (size_t i = 0; i < count; i++) {
    const char *name;
    ng_state_type type;
    size_t len;
    const void *values;
    ng_state_entry(st, i, &name, &type, &len, &values);
    if (name[0] == '/' || strstr(name, "//") || name[strlen(name) - 1] == '/')
      return ng_error(NG_EINVAL, "cannot write checkpoint '%s': state entry '%s' is not a relative path",
                      w->file, name);
    if (type == NG_STATE_STR) { /* a scalar string dataset; the padding stays in memory */
      const char *text = values;
      NG_CALL(put_dataset(w, group, gpath, name, w->vstr, w->vstr, &text, 1, 1));
      continue;
    }
    int f64 = type == NG_STATE_F64;
    NG_CALL(put_dataset(w, group, gpath, name, f64 ? H5T_IEEE_F64LE : H5T_STD_I64LE,
                        f64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64, values, len, 0));
  }
  return NG_OK;
}

static int put_meta(const writer *w, hid_t g, const ng_ckpt_meta *m, const char *created,
                    const char *checksum) {
  NG_CALL(put_attr_int(w, g, "/meta", "format_version", NG_CKPT_FORMAT_VERSION));
  NG_CALL(put_attr_str(w, g, "/meta", "program_version", m->program_version));
  NG_CALL(put_attr_str(w, g, "/meta", "command_line", m->command_line));
  NG_CALL(put_attr_str(w, g, "/meta", "config", m->config));
  NG_CALL(put_attr_str(w, g, "/meta", "budget", m->budget));
  NG_CALL(put_attr_str(w, g, "/meta", "optimizer", m->optimizer));
  NG_CALL(put_attr_int(w, g, "/meta", "ranks", m->ranks));
  NG_CALL(put_attr_int(w, g, "/meta", "groups", m->groups));
  NG_CALL(put_attr_str(w, g, "/meta", "created", created));
  NG_CALL(put_attr_str(w, g, "/meta", "state_checksum", checksum));
  if (m->blas_core) NG_CALL(put_attr_str(w, g, "/meta", "blas_core", m->blas_core));
  if (m->blas_config) NG_CALL(put_attr_str(w, g, "/meta", "blas_config", m->blas_config));
  if (m->cpu_model) NG_CALL(put_attr_str(w, g, "/meta", "cpu_model", m->cpu_model));
  if (m->ninputs) {
    NG_CALL(put_dataset(w, g, "/meta", "input_files", w->vstr, w->vstr, m->input_files, m->ninputs, 0));
    NG_CALL(
        put_dataset(w, g, "/meta", "input_checksums", w->vstr, w->vstr, m->input_checksums, m->ninputs, 0));
  }
  return NG_OK;
}

/* One dataset per column, so that h5py users see named columns; one transposition buffer for all. */
static int put_history(const writer *w, hid_t g, const ng_history *hist) {
  size_t rows = hist ? hist->nrows : 0;
  NG_CALL(put_attr(w, g, "/history", "columns", w->vstr, w->vstr, ng__history_names, NG_HISTORY_NCOLS));
  double *col = malloc((rows ? rows : 1) * sizeof *col);
  if (!col)
    return ng_error(NG_ENOMEM, "cannot write checkpoint '%s': out of memory for the history", w->file);
  int st = NG_OK;
  for (size_t j = 0; j < NG_HISTORY_NCOLS && st == NG_OK; j++) {
    for (size_t i = 0; i < rows; i++)
      col[i] = hist->rows[i * NG_HISTORY_NCOLS + j];
    st = put_dataset(w, g, "/history", ng__history_names[j], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, col, rows, 0);
  }
  free(col);
  return st;
}

/* What ng_ckpt_write puts in the file. */
typedef struct {
  const ng_ckpt_meta *meta;
  const ng_state *optimizer, *result;
  const ng_history *history;
  const double *best_x;
  size_t n;
  double best_f;
  const char *created, *checksum;
} contents;

/* Fills the checkpoint being built in memory as `tmp` (ng_h5_write_atomic's callback). */
static int write_file(hid_t fid, const char *tmp, void *ctx) {
  const contents *c = ctx;
  const ng_ckpt_meta *meta = c->meta;
  const ng_state *optimizer = c->optimizer, *result = c->result;
  const ng_history *history = c->history;
  const double *best_x = c->best_x;
  size_t n = c->n;
  double best_f = c->best_f;
  const char *created = c->created, *checksum = c->checksum;
  writer w = {tmp, -1, -1, -1, -1};
  hid_t g = -1;
  int st = NG_OK;
  w.fid = fid;
  w.vstr = ng_h5_vlen_utf8();
  w.lcpl = H5Pcreate(H5P_LINK_CREATE);
  w.dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (w.vstr < 0 || w.lcpl < 0 || w.dcpl < 0 || H5Pset_create_intermediate_group(w.lcpl, 1) < 0 ||
      H5Pset_layout(w.dcpl, H5D_CONTIGUOUS) < 0 || H5Pset_fill_time(w.dcpl, H5D_FILL_TIME_NEVER) < 0) {
    st = write_failed(&w, "/");
    goto done;
  }

  NG_TRY(st, put_group(&w, "/meta", &g), done);
  NG_TRY(st, put_meta(&w, g, meta, created, checksum), done);
  ng_h5_close(&g);

  NG_TRY(st, put_group(&w, "/optimizer", &g), done);
  NG_TRY(st, put_state(&w, g, "/optimizer", optimizer), done);
  ng_h5_close(&g);

  NG_TRY(st, put_group(&w, "/history", &g), done);
  NG_TRY(st, put_history(&w, g, history), done);
  ng_h5_close(&g);

  NG_TRY(st, put_group(&w, "/best", &g), done);
  NG_TRY(st, put_dataset(&w, g, "/best", "x", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, best_x, n, 0), done);
  NG_TRY(st, put_dataset(&w, g, "/best", "f", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &best_f, 1, 1), done);
  NG_TRY(st, put_attr(&w, g, "/best", "f", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &best_f, 0), done);
  ng_h5_close(&g);

  if (result) {
    NG_TRY(st, put_group(&w, "/result", &g), done);
    NG_TRY(st, put_state(&w, g, "/result", result), done);
    ng_h5_close(&g);
  }

done:
  ng_h5_close(&g);
  ng_h5_close(&w.dcpl);
  ng_h5_close(&w.lcpl);
  ng_h5_close(&w.vstr);
  return st;
}

/* The test hook (see the top of this file): sleeps NOGRAD_CKPT_PAUSE_MS milliseconds, through signals. */
static void test_pause(void) {
  const char *v = getenv("NOGRAD_CKPT_PAUSE_MS");
  char *end = NULL;
  long ms = v ? strtol(v, &end, 10) : 0;
  if (!v || *end || ms <= 0) return;
  struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

int ng_ckpt_write(const char *path, const ng_ckpt_meta *meta, const ng_state *optimizer,
                  const ng_history *history, const double *best_x, size_t n, double best_f,
                  const ng_state *result) {
  if (!path || !*path || !meta)
    return ng_error(NG_EINVAL, "ng_ckpt_write: a path and the metadata are required");
  if (n && !best_x) return ng_error(NG_EINVAL, "ng_ckpt_write: best_x is NULL but n = %zu", n);
  if (meta->ninputs && (!meta->input_files || !meta->input_checksums))
    return ng_error(NG_EINVAL, "ng_ckpt_write: %zu input files but no names or checksums", meta->ninputs);
  if (history && history->nrows && !history->rows)
    return ng_error(NG_EINVAL, "ng_ckpt_write: a history of %zu rows without rows", history->nrows);

  uint64_t sum = 0;
  NG_CALL(ng__ckpt_checksum(optimizer, history, best_x, n, best_f, &sum));
  char checksum[17], created[32];
  snprintf(checksum, sizeof checksum, "%016" PRIx64, sum);
  time_t now = time(NULL);
  struct tm tm;
  if (!gmtime_r(&now, &tm) || !strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(created, sizeof created, "unknown");

  static const ng_fs_atomic how = {"checkpoint", "checkpoint", "the directory of checkpoint", 1, test_pause};
  contents c = {meta, optimizer, result, history, best_x, n, best_f, created, checksum};
  return ng_h5_write_atomic(path, &how, write_file, &c);
}

/* ---- Input checksums ------------------------------------------------------------------------------------
 */

int ng_file_checksum(const char *path, char out[17]) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return ng_error(NG_EIO, "cannot read '%s': %s", path, strerror(errno));
  size_t size = 1 << 20;
  unsigned char *buf = malloc(size);
  if (!buf) {
    close(fd);
    return ng_error(NG_ENOMEM, "checksum of '%s': out of memory", path);
  }
  uint64_t h = NG__FNV_OFFSET;
  int st = NG_OK;
  for (;;) {
    ssize_t got = read(fd, buf, size);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      st = ng_error(NG_EIO, "cannot read '%s': %s", path, strerror(errno));
      break;
    }
    if (got == 0) break;
    h = ng__fnv_bytes(h, buf, (size_t)got);
  }
  free(buf);
  close(fd);
  if (st == NG_OK) snprintf(out, 17, "%016" PRIx64, h);
  return st;
}
