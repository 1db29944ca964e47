/* `nograd verify` as a library function (nograd/verify.h): a file's seal, its kind, then a complete read by
 * the reader of that kind, every step through the checks every reader makes (io/seal.h), so that verifying
 * a file exercises exactly what a run would. */
#include "nograd/verify.h"

#include <hdf5.h>
#include <stdio.h>

#include "data/dataset_impl.h"
#include "io/h5util.h"
#include "io/seal.h"
#include "nograd/ckpt.h"
#include "nograd/error.h"
#include "nograd/nn.h"

const char *ng_file_kind_name(ng_file_kind kind) {
  switch (kind) {
    case NG_FILE_CHECKPOINT:
      return "checkpoint";
    case NG_FILE_MODEL:
      return "model";
    case NG_FILE_DATASET:
      return "dataset";
    default:
      return "unknown";
  }
}

/* The kind of an open file, from its top-level links: /meta, /model, or /x with /y. */
static ng_file_kind kind_of(hid_t fid) {
  if (H5Lexists(fid, "meta", H5P_DEFAULT) > 0) return NG_FILE_CHECKPOINT;
  if (H5Lexists(fid, "model", H5P_DEFAULT) > 0) return NG_FILE_MODEL;
  if (H5Lexists(fid, "x", H5P_DEFAULT) > 0 && H5Lexists(fid, "y", H5P_DEFAULT) > 0) return NG_FILE_DATASET;
  return NG_FILE_UNKNOWN;
}

/* The complete read of a file of the given kind, by its own reader. */
static int read_as(const char *path, ng_file_kind kind) {
  ng_model *m = NULL;
  int st;
  switch (kind) {
    case NG_FILE_CHECKPOINT:
      return ng_ckpt_read(path, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    case NG_FILE_MODEL:
      st = ng_model_read(path, &m);
      ng_model_destroy(&m);
      return st;
    case NG_FILE_DATASET:
      return ng__dataset_read_all(path, NULL);
    default:
      return ng_error(NG_EFORMAT, "'%s' is not a nograd file (no /meta, /model, or /x and /y)", path);
  }
}

/* Opens the file (sealed, or read first by the checking process, which runs this very function) and finds
 * its kind; the kind's own read is then made by the caller, or inside the child by the probe below. */
static int open_kind(const char *path, ng_file_kind *kind);

static int probe(const char *path, void *ctx) {
  ng_file_kind kind;
  NG_CALL(open_kind(path, &kind));
  return read_as(path, kind);
}

static int open_kind(const char *path, ng_file_kind *kind) {
  ng_h5_reading how = {"file", NULL, probe, NULL};
  hid_t fid = -1;
  NG_CALL(ng_h5_open_checked(path, &how, &fid, NULL));
  *kind = kind_of(fid);
  H5Fclose(fid);
  return NG_OK;
}

int ng_verify_file(const char *path, ng_verify_info *info) {
  ng_verify_info got = {NG_FILE_UNKNOWN, 0, 0};
  if (info) *info = got;
  if (!path || !*path) return ng_error(NG_EINVAL, "ng_verify_file: no path");
  ng_h5_quiet q = ng_h5_quiet_begin();
  int st = ng__seal_check(path, "file", &got.sealed, &got.crc32);
  if (st == NG_OK) st = open_kind(path, &got.kind);
  if (st == NG_OK) st = read_as(path, got.kind);
  ng_h5_quiet_end(q);
  if (st == NG_OK && info) *info = got;
  return st;
}
