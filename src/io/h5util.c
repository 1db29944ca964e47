/* The HDF5 and file-system plumbing shared by the checkpoint, model and dataset files (see h5util.h): one
 * copy of the error silencing, the file access list, the id closing, the attribute writes and the atomic
 * write-then-rename, so that the three formats fail, sync and clean up the same way. The messages keep
 * each caller's wording through the noun it passes. */
#include "io/h5util.h"

#include "io/ckpt_internal.h"
#include "io/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nograd/error.h"

#define H5UTIL_PATH_MAX 512 /* HDF5 paths in messages; longer ones are cut */

/* ---- HDF5 ---- */

ng_h5_quiet ng_h5_quiet_begin(void) {
  ng_h5_quiet q = {NULL, NULL};
  H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return q;
}

void ng_h5_quiet_end(ng_h5_quiet q) {
  H5Eset_auto2(H5E_DEFAULT, q.func, q.data);
}

hid_t ng_h5_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
  if (fapl >= 0) H5Pset_file_locking(fapl, 1, 1);
#endif
  return fapl;
}

hid_t ng_h5_open(const char *path, unsigned flags) {
  hid_t fapl = ng_h5_fapl();
  hid_t fid = H5Fopen(path, flags, fapl >= 0 ? fapl : H5P_DEFAULT);
  if (fapl >= 0) H5Pclose(fapl);
  return fid;
}

hid_t ng_h5_create(const char *path) {
  hid_t fapl = ng_h5_fapl();
  errno = 0;
  hid_t fid = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl >= 0 ? fapl : H5P_DEFAULT);
  int e = errno; /* the reason H5Fcreate failed, not one from closing the list */
  if (fapl >= 0) H5Pclose(fapl);
  errno = e;
  return fid;
}

hid_t ng_h5_vlen_utf8(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

void ng_h5_close(hid_t *id) {
  if (*id < 0) return;
  switch (H5Iget_type(*id)) {
    case H5I_FILE:
      H5Fclose(*id);
      break;
    case H5I_GROUP:
      H5Gclose(*id);
      break;
    case H5I_DATASET:
      H5Dclose(*id);
      break;
    case H5I_ATTR:
      H5Aclose(*id);
      break;
    case H5I_DATATYPE:
      H5Tclose(*id);
      break;
    case H5I_DATASPACE:
      H5Sclose(*id);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(*id);
      break;
    default:
      H5Idec_ref(*id);
      break;
  }
  *id = -1;
}

int ng_h5_write_failed(const char *noun, const char *file, const char *h5path) {
  int e = errno;
  return ng_error(NG_EIO, "cannot write %s '%s': HDF5 path '%s' failed (%s)", noun, file, h5path,
                  e ? strerror(e) : "HDF5 error");
}

int ng_h5_put_attr(const char *noun, const char *file, hid_t loc, const char *locpath, const char *name,
                   hid_t ftype, hid_t mtype, const void *buf, hsize_t count) {
  char where[H5UTIL_PATH_MAX];
  snprintf(where, sizeof where, "%s/%s", strcmp(locpath, "/") ? locpath : "", name);
  errno = 0;
  hid_t space = count ? H5Screate_simple(1, &count, NULL) : H5Screate(H5S_SCALAR);
  hid_t attr = space < 0 ? -1 : H5Acreate2(loc, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
  herr_t s = attr < 0 ? -1 : H5Awrite(attr, mtype, buf);
  ng_h5_close(&attr);
  ng_h5_close(&space);
  return s < 0 ? ng_h5_write_failed(noun, file, where) : NG_OK;
}

int ng_h5_read_verror(int status, const char *kind, const char *file, const char *tail, const char *fmt,
                      va_list ap) {
  char what[768];
  vsnprintf(what, sizeof what, fmt, ap);
  return ng_error(status, "%s '%s': %s%s", kind, file, what, tail);
}

int ng_h5_read_strings(hid_t id, hid_t ftype, size_t k, int fixed_file_cset, char ***out) {
  int is_attr = H5Iget_type(id) == H5I_ATTR;
  char **v = calloc(k ? k : 1, sizeof *v), *fixed = NULL;
  hid_t mtype = -1;
  int st = NG_OK;
  *out = NULL;
  if (!v) return NG_ENOMEM;
  mtype = H5Tcopy(H5T_C_S1);
  if (H5Tis_variable_str(ftype) > 0) {
    if (mtype < 0 || H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0 ||
        (k && (is_attr ? H5Aread(id, mtype, v) : H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, v)) < 0)) {
      memset(v, 0, k * sizeof *v);
      st = NG_ECORRUPT;
    } else {
      for (size_t i = 0; i < k; i++) {
        char *raw = v[i];
        v[i] = strdup(raw ? raw : "");
        if (raw) H5free_memory(raw);
        if (!v[i]) st = NG_ENOMEM;
      }
    }
  } else {
    size_t size = H5Tget_size(ftype) + 1;
    fixed = calloc(k ? k : 1, size);
    if (!fixed)
      st = NG_ENOMEM;
    else if (mtype < 0 || H5Tset_size(mtype, size) < 0 ||
             (fixed_file_cset && H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) ||
             (k && (is_attr ? H5Aread(id, mtype, fixed)
                            : H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, fixed)) < 0))
      st = NG_ECORRUPT;
    for (size_t i = 0; i < k && st == NG_OK; i++)
      if (!(v[i] = strndup(fixed + i * size, size))) st = NG_ENOMEM;
  }
  free(fixed);
  ng_h5_close(&mtype);
  if (st != NG_OK) {
    for (size_t i = 0; i < k; i++)
      free(v[i]);
    free(v);
    v = NULL;
  }
  *out = v;
  return st;
}

/* ---- File system ---- */

char *ng_fs_suffixed(const char *path, const char *suffix) {
  size_t size = strlen(path) + strlen(suffix) + 1;
  char *s = malloc(size);
  if (s) snprintf(s, size, "%s%s", path, suffix);
  return s;
}

int ng_fs_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

int ng_fs_sync(const char *path, int directory, const char *what) {
  const char *w = what ? what : "", *sp = what ? " " : "";
  int fd = open(path, O_RDONLY | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return ng_error(NG_EIO, "cannot sync %s%s'%s': %s", w, sp, path, strerror(errno));
  int s = fsync(fd), e = errno;
  close(fd);
  /* Some file systems cannot sync a directory (EINVAL); the rename is then as durable as they make it. */
  if (s != 0 && !(directory && e == EINVAL))
    return ng_error(NG_EIO, "cannot sync %s%s'%s': %s", w, sp, path, strerror(e));
  return NG_OK;
}

int ng_fs_sync_parent(const char *path, const char *noun, const char *what) {
  char *dir = strdup(path);
  if (!dir) return ng_error(NG_ENOMEM, "%s: out of memory", noun);
  char *slash = strrchr(dir, '/');
  const char *d = dir;
  if (!slash)
    d = ".";
  else if (slash == dir)
    d = "/";
  else
    *slash = '\0';
  int st = ng_fs_sync(d, 1, what);
  free(dir);
  return st;
}

/* Creates or truncates tmp, so that a place nograd cannot write to fails before any work; NG_OK or NG_EIO. */
static int create_tmp(const ng_fs_atomic *how, const char *tmp) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return ng_error(NG_EIO, "cannot write %s '%s': %s", how->noun, tmp, strerror(errno));
  close(fd);
  return NG_OK;
}

/* Writes the len bytes to tmp (created or truncated) and fsyncs it; NG_OK or NG_EIO naming tmp and the
 * system's reason (a full disk is ENOSPC here, not a failure inside libhdf5). */
static int write_bytes(const ng_fs_atomic *how, const char *tmp, const unsigned char *bytes, size_t len) {
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
  if (fd < 0) return ng_error(NG_EIO, "cannot write %s '%s': %s", how->noun, tmp, strerror(errno));
  size_t done = 0;
  while (done < len) {
    ssize_t w = write(fd, bytes + done, len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      close(fd);
      return ng_error(NG_EIO, "cannot write %s '%s': %s", how->noun, tmp, strerror(e));
    }
    done += (size_t)w;
  }
  const char *w = how->file_what ? how->file_what : "", *sp = how->file_what ? " " : "";
  if (fsync(fd) != 0) {
    int e = errno;
    close(fd);
    return ng_error(NG_EIO, "cannot sync %s%s'%s': %s", w, sp, tmp, strerror(e));
  }
  if (close(fd) != 0) return ng_error(NG_EIO, "cannot write %s '%s': %s", how->noun, tmp, strerror(errno));
  return NG_OK;
}

/* Everything after tmp is written with status st: renames, directory sync; tmp removed on failure. */
static int commit(const ng_fs_atomic *how, const char *path, const char *tmp, const char *prev, int st) {
  if (st != NG_OK) {
    unlink(tmp);
    return st;
  }
  if (how->before_rename) how->before_rename();
  /* PATH.prev becomes a second name of PATH (a hard link), so that PATH exists at every moment and the
   * rename below replaces it atomically; a file system without hard links gets a rename, which leaves a
   * moment without PATH (a crash then leaves PATH.prev and PATH.tmp, and the reader points at PATH.prev). */
  if (prev && ng_fs_exists(path)) {
    if (unlink(prev) != 0 && errno != ENOENT) {
      st = ng_error(NG_EIO, "cannot keep the previous %s: removing '%s': %s", how->noun, prev,
                    strerror(errno));
      unlink(tmp);
      return st;
    }
    if (link(path, prev) != 0 && rename(path, prev) != 0) {
      st = ng_error(NG_EIO, "cannot keep the previous %s: renaming '%s' to '%s': %s", how->noun, path, prev,
                    strerror(errno));
      unlink(tmp);
      return st;
    }
  }
  if (rename(tmp, path) != 0) {
    st = ng_error(NG_EIO, "cannot write %s '%s': renaming '%s' over it: %s", how->noun, path, tmp,
                  strerror(errno));
    unlink(tmp);
    return st;
  }
  return ng_fs_sync_parent(path, how->noun, how->dir_what);
}

int ng_fs_write_atomic(const char *path, const ng_fs_atomic *how, const void *bytes, size_t len) {
  char *tmp = ng_fs_suffixed(path, ".tmp"), *prev = how->keep_prev ? ng_fs_suffixed(path, ".prev") : NULL;
  int st = !tmp || (how->keep_prev && !prev) ? ng_error(NG_ENOMEM, "%s: out of memory", how->noun) : NG_OK;
  if (st == NG_OK) st = commit(how, path, tmp, prev, write_bytes(how, tmp, bytes, len));
  free(prev);
  free(tmp);
  return st;
}

int ng_h5_write_atomic(const char *path, const ng_fs_atomic *how,
                       int (*fill)(hid_t fid, const char *name, void *ctx), void *ctx) {
  char *tmp = ng_fs_suffixed(path, ".tmp"), *prev = how->keep_prev ? ng_fs_suffixed(path, ".prev") : NULL;
  unsigned char *bytes = NULL;
  size_t len = 0;
  int st = !tmp || (how->keep_prev && !prev) ? ng_error(NG_ENOMEM, "%s: out of memory", how->noun)
                                             : create_tmp(how, tmp);
  if (st == NG_OK) {
    ng_h5_quiet q = ng_h5_quiet_begin();
    hid_t fid = ng__seal_create(tmp);
    if (fid < 0)
      st = ng_error(NG_EIO, "cannot write %s '%s': HDF5 cannot create it in memory", how->noun, tmp);
    else
      st = fill(fid, tmp, ctx);
    if (fid >= 0 && st == NG_OK)
      st = ng__seal_finish(&fid, how->noun, tmp, &bytes, &len);
    else if (fid >= 0)
      H5Fclose(fid);
    ng_h5_quiet_end(q);
    if (st == NG_OK) st = write_bytes(how, tmp, bytes, len);
    free(bytes);
    st = commit(how, path, tmp, prev, st);
  }
  free(prev);
  free(tmp);
  return st;
}

/* Whether every component of the absolute path exists (H5Lexists alone fails on a missing parent). */
int ng__h5_path_exists(hid_t fid, const char *abs) {
  char buf[NG_H5PATH_MAX];
  size_t len = strlen(abs);
  if (len >= sizeof buf) return 0;
  memcpy(buf, abs, len + 1);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (H5Lexists(fid, buf, H5P_DEFAULT) <= 0) return 0;
      if (c == '\0') return 1;
      *p = c;
    }
  }
}

/* ---- Tampering helpers for tests and the inspector (ckpt_internal.h) ---------------------------------- */

/* The child's part of ng_h5_has_toplevel: opening the file and looking the name up. */
static int toplevel_probe(const char *path, void *ctx) {
  ng_h5_reading how = {"file", NULL, toplevel_probe, ctx};
  hid_t fid = -1;
  NG_CALL(ng_h5_open_checked(path, &how, &fid, NULL));
  H5Lexists(fid, ctx, H5P_DEFAULT);
  H5Fclose(fid);
  return NG_OK;
}

int ng_h5_has_toplevel(const char *path, const char *name) {
  if (!ng_fs_exists(path)) return 0;
  char keep[1024];
  snprintf(keep, sizeof keep, "%s", ng_errmsg());
  ng_h5_quiet q = ng_h5_quiet_begin();
  ng_h5_reading how = {"file", NULL, toplevel_probe, (void *)name};
  hid_t fid = -1;
  int found = ng_h5_open_checked(path, &how, &fid, NULL) == NG_OK && H5Lexists(fid, name, H5P_DEFAULT) > 0;
  if (fid >= 0) H5Fclose(fid);
  ng_h5_quiet_end(q);
  if (keep[0])
    ng_error(NG_OK, "%s", keep); /* "leaves the error message alone" */
  else
    ng_error_clear();
  return found;
}

int ng_h5_dataset_offset(const char *path, const char *dataset, uint64_t *offset) {
  ng_h5_quiet q = ng_h5_quiet_begin();
  int st = NG_OK;
  hid_t fid = ng_h5_open(path, H5F_ACC_RDONLY), d = -1;
  if (fid < 0) {
    st = ng_error(NG_EIO, "cannot open '%s' as HDF5", path);
  } else if (!ng__h5_path_exists(fid, dataset) || (d = H5Dopen2(fid, dataset, H5P_DEFAULT)) < 0) {
    st = ng_error(NG_ENOTFOUND, "'%s' has no dataset '%s'", path, dataset);
  } else {
    haddr_t a = H5Dget_offset(d);
    if (a == HADDR_UNDEF)
      st = ng_error(NG_EINVAL, "'%s': dataset '%s' has no contiguous storage", path, dataset);
    else
      *offset = (uint64_t)a;
  }
  ng_h5_close(&d);
  if (fid >= 0) H5Fclose(fid);
  ng_h5_quiet_end(q);
  return st;
}

int ng_h5_unlink(const char *path, const char *object) {
  int sealed = 0;
  ng__seal_check(path, "file", &sealed, NULL);
  ng_h5_quiet q = ng_h5_quiet_begin();
  int st = NG_OK;
  hid_t fid = ng_h5_open(path, H5F_ACC_RDWR);
  if (fid < 0)
    st = ng_error(NG_EIO, "cannot open '%s' as HDF5 for writing", path);
  else if (!ng__h5_path_exists(fid, object) || H5Ldelete(fid, object, H5P_DEFAULT) < 0)
    st = ng_error(NG_ENOTFOUND, "'%s' has no '%s'", path, object);
  if (fid >= 0 && H5Fclose(fid) < 0 && st == NG_OK) st = ng_error(NG_EIO, "cannot close '%s'", path);
  ng_h5_quiet_end(q);
  return st == NG_OK && sealed ? ng__seal_file(path) : st;
}

int ng_h5_set_int_attr(const char *path, const char *object, const char *name, int64_t value) {
  int sealed = 0;
  ng__seal_check(path, "file", &sealed, NULL);
  ng_h5_quiet q = ng_h5_quiet_begin();
  int st = NG_OK;
  hid_t fid = ng_h5_open(path, H5F_ACC_RDWR), obj = -1, space = -1, attr = -1;
  if (fid < 0) {
    st = ng_error(NG_EIO, "cannot open '%s' as HDF5 for writing", path);
  } else if (!ng__h5_path_exists(fid, object) || (obj = H5Oopen(fid, object, H5P_DEFAULT)) < 0) {
    st = ng_error(NG_ENOTFOUND, "'%s' has no '%s'", path, object);
  } else {
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    space = H5Screate(H5S_SCALAR);
    attr = space < 0 ? -1 : H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0 || H5Awrite(attr, H5T_NATIVE_INT64, &value) < 0)
      st = ng_error(NG_EIO, "cannot write attribute '%s' of '%s' in '%s'", name, object, path);
  }
  ng_h5_close(&attr);
  ng_h5_close(&space);
  if (obj >= 0) H5Oclose(obj);
  if (fid >= 0 && H5Fclose(fid) < 0 && st == NG_OK) st = ng_error(NG_EIO, "cannot close '%s'", path);
  ng_h5_quiet_end(q);
  return st == NG_OK && sealed ? ng__seal_file(path) : st;
}
