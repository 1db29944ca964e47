/* Private to the library: the HDF5 and file-system plumbing shared by the checkpoints (src/io/ckpt.c), the
 * model files (src/nn/model_io.c) and the dataset files (src/data/dataset.c).
 *
 * The three writers follow one pattern: the file is built in memory and sealed (io/seal.h), PATH.tmp is
 * written and fsynced, then (for checkpoints) PATH becomes PATH.prev, PATH.tmp becomes PATH and the directory
 * is fsynced; on any failure PATH.tmp is removed and PATH is untouched (Redis's rdbSave). The messages name
 * the kind of file through a noun the caller passes ("checkpoint", "dataset", "model"), so that each keeps
 * its own wording. ng_h5_* functions wrap HDF5, ng_fs_* ones the file system; none is collective, none
 * prints. */
#ifndef NOGRAD_IO_H5UTIL_H
#define NOGRAD_IO_H5UTIL_H

#include <hdf5.h>
#include <stdarg.h>

/* ---- HDF5 ---- */

/* HDF5's automatic error printing as it was before ng_h5_quiet_begin. */
typedef struct {
  H5E_auto2_t func;
  void *data;
} ng_h5_quiet;

/* Switches HDF5's error-stack printing off (every failure is reported once, through ng_error) and returns
 * the previous setting for ng_h5_quiet_end. Never fails. */
ng_h5_quiet ng_h5_quiet_begin(void);

/* Restores the setting that ng_h5_quiet_begin returned. */
void ng_h5_quiet_end(ng_h5_quiet q);

/* A file-access property list that keeps HDF5's file locks but does not fail on file systems without them
 * (Lustre, NFS); the caller closes it. A negative id when HDF5 cannot create one. */
hid_t ng_h5_fapl(void);

/* H5Fopen of `path` with `flags` (H5F_ACC_RDONLY, H5F_ACC_RDWR) and ng_h5_fapl's access list; a negative id
 * on failure. */
hid_t ng_h5_open(const char *path, unsigned flags);

/* H5Fcreate of `path` (truncating it) with ng_h5_fapl's access list; a negative id on failure. errno is
 * cleared first and, on return, holds what the system set while HDF5 created the file, if anything, for
 * ng_h5_write_failed and the like. */
hid_t ng_h5_create(const char *path);

/* A variable-length UTF-8 string type, or a negative id on failure; the caller closes it. */
hid_t ng_h5_vlen_utf8(void);

/* Closes any HDF5 id with the matching close function (file, group, dataset, attribute, type, space,
 * property list; others lose a reference) and sets *id to -1. Does nothing for a negative id. */
void ng_h5_close(hid_t *id);

/* Records "cannot write NOUN 'FILE': HDF5 path 'H5PATH' failed (REASON)", REASON being strerror(errno) when
 * errno is set and "HDF5 error" otherwise, and returns NG_EIO. */
int ng_h5_write_failed(const char *noun, const char *file, const char *h5path);

/* Creates the attribute `name` of the object `loc`, whose HDF5 path is `locpath` ("/", "/meta"): scalar when
 * count is 0, else one-dimensional of count values, stored as ftype and written from buf as mtype.
 * NG_OK, or NG_EIO through ng_h5_write_failed(noun, file, "LOCPATH/NAME"). */
int ng_h5_put_attr(const char *noun, const char *file, hid_t loc, const char *locpath, const char *name,
                   hid_t ftype, hid_t mtype, const void *buf, hsize_t count);

/* Records "KIND 'FILE': WHAT" and then `tail`, WHAT being fmt formatted with ap (cut at 767 bytes), and
 * returns status: the wording of the readers' messages ("checkpoint", "model file"). */
int ng_h5_read_verror(int status, const char *kind, const char *file, const char *tail, const char *fmt,
                      va_list ap) __attribute__((format(printf, 5, 0)));

/* All k strings of the string attribute or dataset `id`, whose file type is `ftype`, variable-length or
 * fixed, as a malloc'd array of k malloc'd strings in *out (NULL on failure). Fixed-length strings are read
 * with the file's character set when fixed_file_cset is set, else as ASCII (which HDF5 cannot convert UTF-8
 * to: model files have always refused those). Records no message, so that each caller words its own: NG_OK,
 * NG_ECORRUPT when HDF5 cannot read them, NG_ENOMEM. */
int ng_h5_read_strings(hid_t id, hid_t ftype, size_t k, int fixed_file_cset, char ***out);

/* ---- File system ---- */

/* A malloc'd copy of path followed by suffix (".tmp"), or NULL when out of memory. */
char *ng_fs_suffixed(const char *path, const char *suffix);

/* 1 when stat(path) succeeds, else 0. */
int ng_fs_exists(const char *path);

/* Opens `path` (a directory when `directory` is set) and fsyncs it. A directory that cannot be synced
 * (EINVAL on some file systems) is not an error. NG_OK, or NG_EIO with "cannot sync WHAT 'PATH': REASON"
 * ("cannot sync 'PATH': REASON" when what is NULL). */
int ng_fs_sync(const char *path, int directory, const char *what);

/* ng_fs_sync of the directory that holds `path` ("." for a bare name). NG_OK, NG_EIO as ng_fs_sync, or
 * NG_ENOMEM with "NOUN: out of memory". */
int ng_fs_sync_parent(const char *path, const char *noun, const char *what);

/* How ng_h5_write_atomic words its messages and whether it keeps the previous version. */
typedef struct {
  const char *noun;            /* "checkpoint": "cannot write NOUN 'PATH'", "NOUN: out of memory" */
  const char *file_what;       /* for the fsync of PATH.tmp: "cannot sync FILE_WHAT 'PATH.tmp'"; NULL: none */
  const char *dir_what;        /* for ng_fs_sync of the directory; NULL: "cannot sync 'DIR'" */
  int keep_prev;               /* rename an existing PATH to PATH.prev before PATH.tmp replaces it */
  void (*before_rename)(void); /* called after PATH.tmp is synced and before the renames; may be NULL */
} ng_fs_atomic;

/* Writes HDF5 file PATH atomically and sealed (src/io/seal.h): creates or truncates PATH.tmp with open(2) (so
 * that an unwritable place fails at once, with the system's reason), builds the file in memory with HDF5's
 * core driver (fill(fid, "PATH.tmp", ctx) adds its contents to the open file fid, which it must not close;
 * HDF5's error printing is off meanwhile), fills the user block's header with the CRC of the content, writes
 * the bytes to PATH.tmp and fsyncs it, calls before_rename, renames an existing PATH to PATH.prev when
 * keep_prev is set, renames PATH.tmp over PATH and fsyncs the directory. libhdf5 never writes to the disk, so
 * a full disk is an error like any other. On any failure PATH.tmp is removed and PATH left as it was. fill
 * returns a status and records its own message. Returns NG_OK; fill's status; NG_ENOMEM with "NOUN: out of
 * memory"; NG_EIO with "cannot write NOUN 'PATH.tmp': REASON", "cannot sync ...", "cannot keep the previous
 * NOUN: renaming 'PATH' to 'PATH.prev': REASON" or "cannot write NOUN 'PATH': renaming 'PATH.tmp' over it:
 * REASON"; or the status of ng_fs_sync_parent. */
int ng_h5_write_atomic(const char *path, const ng_fs_atomic *how,
                       int (*fill)(hid_t fid, const char *name, void *ctx), void *ctx);

/* Writes the len bytes to PATH atomically, as ng_h5_write_atomic does once the file is built (for files that
 * are not HDF5, like ONNX models): PATH.tmp written and fsynced, before_rename, PATH.prev kept when asked,
 * PATH.tmp renamed over PATH, the directory fsynced; on any failure PATH.tmp is removed and PATH left as it
 * was. Returns NG_OK, or the statuses and messages of ng_h5_write_atomic (but none from fill). */
int ng_fs_write_atomic(const char *path, const ng_fs_atomic *how, const void *bytes, size_t len);

#define NG_H5PATH_MAX 512 /* HDF5 paths in messages; longer ones are cut */

/* Whether every component of the absolute HDF5 path exists (H5Lexists alone fails on a missing parent). */
int ng__h5_path_exists(hid_t fid, const char *abs);

#endif
