/* Private to src/io and its tests: small HDF5 helpers that keep HDF5's types out of the public headers.
 *
 * inspect.c uses ng_h5_has_toplevel to tell a checkpoint from other nograd files. The other three exist so
 * that tests can damage or alter a checkpoint the way a disk, a user or another version would, without
 * linking HDF5 themselves. All of them silence HDF5's error printing while they run; none is collective. */
#ifndef NOGRAD_IO_CKPT_INTERNAL_H
#define NOGRAD_IO_CKPT_INTERNAL_H

#include <stdint.h>

/* 1 when `path` opens as an HDF5 file and has a top-level link `name` ("meta", "model"); 0 otherwise
 * (missing, unreadable or without it). Never fails and leaves the error message alone. */
int ng_h5_has_toplevel(const char *path, const char *name);

/* The byte offset in the file of the raw data of the contiguous dataset `dataset` ("/optimizer/x").
 * NG_EIO when the file cannot be opened, NG_ENOTFOUND without the dataset, NG_EINVAL when it has no
 * contiguous storage. */
int ng_h5_dataset_offset(const char *path, const char *dataset, uint64_t *offset);

/* Removes the link `object` ("/meta") from the file. NG_EIO, NG_ENOTFOUND. */
int ng_h5_unlink(const char *path, const char *object);

/* Sets (or replaces) the int64 attribute `name` of `object`. NG_EIO, NG_ENOTFOUND. */
int ng_h5_set_int_attr(const char *path, const char *object, const char *name, int64_t value);

#endif
