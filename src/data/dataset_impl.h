/* Private to the library: what the dataset reader shares with `nograd verify` (src/app/verify.c). */
#ifndef NOGRAD_DATA_DATASET_IMPL_H
#define NOGRAD_DATA_DATASET_IMPL_H

/* Reads the dataset file at `path` completely: the open and its checks, every row of /x and /y (in blocks of
 * a few MB, labels checked) and the statistics of a standardized one. ctx is unused (the signature is the
 * probe's of io/seal.h). The status and message of the first failure, as ng_dataset_open and
 * ng_dataset_read_rows word them. */
int ng__dataset_read_all(const char *path, void *ctx);

#endif
