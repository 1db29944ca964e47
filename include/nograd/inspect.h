/* Inspection of nograd's HDF5 files: what a file holds, for people (text) or programs (one JSON object).
 *
 * The kind of file is told by its top-level group: /meta is a checkpoint. (Model files, /model, will be
 * the second kind.) Not collective: one process reads the file. */
#ifndef NOGRAD_INSPECT_H
#define NOGRAD_INSPECT_H

#include <stdio.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Prints what the file at `path` holds to `out`.
 *
 * For a checkpoint: format and program version, creation time, command line, configuration and budget
 * lines, ranks and groups, input files with their checksums, a summary of the state (optimizer, dimension,
 * generation, evaluations, restarts, stop reason, best f, the last step size) and the last `last_rows`
 * generations of the history (all of them when last_rows < 0, none when 0).
 *
 * With json != 0 the output is one JSON object with the keys format_version, program_version, created,
 * command_line, config and budget (objects of key -> value strings), ranks, groups, inputs (array of
 * {file, checksum}), optimizer, n, generation, evaluations, restarts, stop_reason, best_f, sigma,
 * history_rows, history_columns and history_last (array of rows); numbers that are not finite, or not in
 * the file, are null.
 *
 * The file is verified as ng_ckpt_read does, with its status codes and messages: NG_EIO (cannot open),
 * NG_ECORRUPT (truncated, damaged, checksum mismatch), NG_EFORMAT (not a nograd file: names the HDF5 path
 * that is missing). NG_EIO also when writing to `out` fails. */
NG_EXPORT int ng_inspect(const char *path, int json, int last_rows, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
