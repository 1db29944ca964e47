/* Checkpoints: the complete state of a run in one HDF5 file, written atomically, verified when read.
 *
 * Layout (readable with h5py):
 *   /meta        attributes: format_version (int), program_version, command_line, config (the effective
 *                configuration, "key=value" lines), budget (the budget lines: max-evals, ftarget), optimizer
 *                (name), ranks, groups (ints), created (UTC ISO 8601), state_checksum (16 hex digits,
 *                FNV-1a 64 over /optimizer, /history and /best in a canonical order: the optimizer's entries
 *                sorted by name, each as name bytes, type byte (ng_state_type), length as 8 little-endian
 *                bytes and values; then the history rows x columns; then best f and best x; all numbers as
 *                their little-endian bytes; /meta and /result are not covered); datasets input_files and
 *                input_checksums (strings) when the run read files
 *   /optimizer   one dataset per entry of the optimizer's ng_state, at the entry's name ("cfg/x0" is the
 *                dataset /optimizer/cfg/x0), float64 or int64
 *   /history     one float64 dataset per column of the history table (NG_HISTORY_COLUMNS), one row per
 *                generation; attribute `columns`
 *   /best        x (float64, n), f (float64 scalar attribute and dataset)
 *   /result      optional: whatever the command adds (ng_state entries, like /optimizer)
 *
 * Writing goes to PATH.tmp, which is flushed, fsynced, and renamed over PATH after the old PATH has been
 * renamed to PATH.prev; the directory is fsynced. A crash at any point leaves PATH or PATH.prev complete.
 * Only rank 0 calls these functions; none is collective. */
#ifndef NOGRAD_CKPT_H
#define NOGRAD_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"
#include "nograd/state.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_CKPT_FORMAT_VERSION 1

/* The history table: one row per generation. X-macro: (column name, meaning). */
#define NG_HISTORY_COLUMNS(X)                                   \
  X(generation, "generations told, over all restarts")          \
  X(evaluations, "evaluations so far")                          \
  X(best, "best loss so far")                                   \
  X(gen_best, "best loss of the generation")                    \
  X(median, "median loss of the generation")                    \
  X(sigma, "step size after the update")                        \
  X(popsize, "candidates in the generation")                    \
  X(restarts, "restarts so far")                                \
  X(t_sample, "seconds: ask on rank 0 (sampling)")              \
  X(t_broadcast, "seconds: broadcast of the generation")        \
  X(t_evaluate, "seconds: evaluation on rank 0")                \
  X(t_reduce, "seconds: gathering the partial losses")          \
  X(t_update, "seconds: tell on rank 0 (update)")               \
  X(t_eigen, "seconds: eigendecompositions in this generation") \
  X(bytes, "bytes broadcast by rank 0 in this generation")

enum {
#define NG_HISTORY_INDEX(name, doc) NG_HIST_##name,
  NG_HISTORY_COLUMNS(NG_HISTORY_INDEX)
#undef NG_HISTORY_INDEX
      NG_HISTORY_NCOLS
};

typedef struct {
  double *rows; /* nrows x NG_HISTORY_NCOLS, row-major */
  size_t nrows, cap;
} ng_history;

/* The column names in order, followed by NULL. */
NG_EXPORT const char *const *ng_history_columns(void);
/* Appends a row (NG_HISTORY_NCOLS values). NG_ENOMEM. */
NG_EXPORT int ng_history_append(ng_history *h, const double *row);
/* Frees the rows and zeroes the table. */
NG_EXPORT void ng_history_free(ng_history *h);

typedef struct {
  const char *program_version;
  const char *command_line;
  const char *config;    /* "key=value\n" lines: must match on resume */
  const char *budget;    /* "key=value\n" lines: may change on resume */
  const char *optimizer; /* name */
  int ranks, groups;
  const char *const *input_files; /* may be NULL when ninputs == 0 */
  const char *const *input_checksums;
  size_t ninputs;
  /* The kernels of the forward passes: the BLAS core and configuration (openblas_get_corename and
   * openblas_get_config) and the CPU model of rank 0; written as /meta attributes blas_core, blas_config and
   * cpu_model when not NULL. */
  const char *blas_core, *blas_config, *cpu_model;
} ng_ckpt_meta;

/* What ng_ckpt_read returns of /meta; the strings are owned by it and freed by ng_ckpt_meta_free. */
typedef struct {
  int format_version;
  char *program_version, *command_line, *config, *budget, *optimizer, *created;
  int ranks, groups;
  char **input_files, **input_checksums;
  size_t ninputs;
  char *blas_core, *blas_config, *cpu_model; /* NULL in a file that predates them */
} ng_ckpt_info;

NG_EXPORT void ng_ckpt_info_free(ng_ckpt_info *info);

/* The library's version ("0.1.0"): what the commands record as /meta's program_version. Bindings that write
 * checkpoints themselves (tools/python's nograd.CMAES.save) put it there too. Never NULL; not collective. */
NG_EXPORT const char *ng_version(void);

/* Writes a checkpoint atomically (see above). `result` may be NULL. NG_EIO names the path and the system
 * error (an unwritable directory, a full disk); nothing is left behind but PATH.tmp's removal is attempted.
 */
NG_EXPORT int ng_ckpt_write(const char *path, const ng_ckpt_meta *meta, const ng_state *optimizer,
                            const ng_history *history, const double *best_x, size_t n, double best_f,
                            const ng_state *result);

/* Reads and verifies a checkpoint. Any of the outputs may be NULL (not read). `optimizer` and `result` must
 * be empty states; `history` an empty table; best_x a buffer of *n values, or NULL (then *n receives the
 * length). Errors: NG_EIO (cannot open: names the path and errno), NG_EFORMAT (an HDF5 file that is not a
 * nograd checkpoint, or of another format version: says which), NG_ECORRUPT (not readable as HDF5 — e.g.
 * truncated — or the state checksum differs: says which, and names PATH.prev when it exists as the
 * checkpoint to resume from instead). The whole file is read and verified even when some outputs are NULL,
 * and the outputs are written only when everything holds. */
NG_EXPORT int ng_ckpt_read(const char *path, ng_ckpt_info *info, ng_state *optimizer, ng_history *history,
                           double *best_x, size_t *n, double *best_f, ng_state *result);

/* FNV-1a 64 checksum of a file's bytes as 16 hex digits + NUL, for the input checksums of /meta. NG_EIO. */
NG_EXPORT int ng_file_checksum(const char *path, char out[17]);

#ifdef __cplusplus
}
#endif
#endif
