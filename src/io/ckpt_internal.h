/* Private to src/io and its tests: what the checkpoint writer and reader share, and small HDF5 helpers that
 * keep HDF5's types out of the public headers.
 *
 * inspect.c uses ng_h5_has_toplevel to tell a checkpoint from other nograd files. ng_h5_dataset_offset,
 * ng_h5_unlink and ng_h5_set_int_attr exist so that tests can damage or alter a checkpoint the way a disk, a
 * user or another version would, without linking HDF5 themselves (src/io/h5util.c). All of them silence
 * HDF5's error printing while they run; none is collective. */
#ifndef NOGRAD_IO_CKPT_INTERNAL_H
#define NOGRAD_IO_CKPT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/ckpt.h"
#include "nograd/state.h"

#define NG__FNV_OFFSET UINT64_C(0xcbf29ce484222325) /* FNV-1a 64 */
#define NG__FNV_PRIME UINT64_C(0x100000001b3)

/* The history's column names in order, then NULL. */
extern const char *const ng__history_names[NG_HISTORY_NCOLS + 1];

/* FNV-1a 64 of len bytes, continuing from h. */
uint64_t ng__fnv_bytes(uint64_t h, const void *data, size_t len);

/* The canonical checksum of a checkpoint's state: the optimizer's entries sorted by name (name bytes, type
 * byte, length as 8 little-endian bytes, values as little-endian 8-byte words), then the history's rows x
 * columns, then best f and best x. NG_ENOMEM. */
int ng__ckpt_checksum(const ng_state *st, const ng_history *hist, const double *best_x, size_t n,
                      double best_f, uint64_t *out);

/* 1 when `path` opens as an HDF5 file and has a top-level link `name` ("meta", "model"); 0 otherwise
 * (missing, unreadable or without it). Never fails and leaves the error message alone. */
int ng_h5_has_toplevel(const char *path, const char *name);

/* The byte offset in the file of the raw data of the contiguous dataset `dataset` ("/optimizer/x").
 * NG_EIO when the file cannot be opened, NG_ENOTFOUND without the dataset, NG_EINVAL when it has no
 * contiguous storage. */
int ng_h5_dataset_offset(const char *path, const char *dataset, uint64_t *offset);

/* Removes the link `object` ("/meta") from the file; a sealed file (io/seal.h) is sealed again for its new
 * content, so that the readers' own checks are what a test meets. NG_EIO, NG_ENOTFOUND. */
int ng_h5_unlink(const char *path, const char *object);

/* Sets (or replaces) the int64 attribute `name` of `object`, sealing a sealed file again (as ng_h5_unlink).
 * NG_EIO, NG_ENOTFOUND. */
int ng_h5_set_int_attr(const char *path, const char *object, const char *name, int64_t value);

#endif
