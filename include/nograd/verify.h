/* Checking nograd's files without running anything: `nograd verify FILE...`.
 *
 * A file is checked the way every reader checks it before use (src/io/seal.h): nograd's header and the CRC-32
 * of its content, without libhdf5 reading a byte of a damaged file; a file without the header (written by
 * h5py, another tool or nograd 0.1) is first read by a separate process with a time limit. Then it is read
 * completely as what it is (a checkpoint: every dataset and the state checksum; a model: the spec, the index
 * and every weight; a dataset: every row and the statistics). Not collective: one process reads the file. */
#ifndef NOGRAD_VERIFY_H
#define NOGRAD_VERIFY_H

#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { NG_FILE_UNKNOWN = 0, NG_FILE_CHECKPOINT, NG_FILE_MODEL, NG_FILE_DATASET } ng_file_kind;

typedef struct {
  ng_file_kind kind;
  int sealed;     /* 1: nograd's header and CRC held; 0: no header (read by the checking process first) */
  uint32_t crc32; /* the content's CRC-32, when sealed */
} ng_verify_info;

/* "checkpoint", "model", "dataset" or "unknown". */
NG_EXPORT const char *ng_file_kind_name(ng_file_kind kind);

/* Checks the file at `path` as described above; *info (may be NULL) says what it is. NG_OK when it is a
 * readable nograd file. Errors name the file: NG_EIO (cannot open or read it), NG_ECORRUPT (damaged: the CRC,
 * the header or the length do not hold, it is not readable as HDF5, or reading it crashed or did not end in
 * the checking process), NG_EFORMAT ("not a nograd file", or what its reader refuses), NG_ENUMERIC (a NaN
 * weight in a model), NG_ENOMEM. */
NG_EXPORT int ng_verify_file(const char *path, ng_verify_info *info);

#ifdef __cplusplus
}
#endif
#endif
