/* The header in the HDF5 user block of every file nograd writes, its check, and opening a file only after
 * it (see seal.h): the bytes are verified before libhdf5 sees them, and the verified bytes are what it then
 * parses (a file image), so that a damaged file is a message, not a libhdf5 crash or loop. */
#include "io/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/h5util.h"
#include "nograd/error.h"

const unsigned char ng__seal_magic[8] = {0x89, 'N', 'O', 'G', 'R', 'A', 'D', '\n'};

#define SEAL_IMAGE_MAX ((size_t)64 << 20)     /* larger files are verified as a stream and opened from disk */
#define SEAL_CORE_INCREMENT ((size_t)1 << 20) /* the core driver's growth step while a file is built */
#define SEAL_TEXT_AT 96
static const char seal_text[] =
    "nograd: a CRC-32 of the bytes after this 512-byte HDF5 user block; check it with `nograd verify`\n";
static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const unsigned char *p) {
  return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* CRC-32 of len bytes continuing from crc, in pieces zlib's unsigned length can take. */
static uint32_t crc_bytes(uint32_t crc, const unsigned char *p, size_t len) {
  uLong c = crc;
  while (len) {
    unsigned piece = len > (1u << 30) ? (1u << 30) : (unsigned)len;
    c = crc32(c, p, piece);
    p += piece;
    len -= piece;
  }
  return (uint32_t)c;
}

/* The CRC-32 of the whole block with its own field (bytes 28..31) as zeros: every byte of the user block is
 * covered, so a change anywhere in the file is seen. */
static uint32_t header_crc(const unsigned char *b) {
  static const unsigned char zero[4];
  uint32_t c = crc_bytes(0, b, 28);
  c = crc_bytes(c, zero, 4);
  return crc_bytes(c, b + 32, NG_SEAL_BLOCK - 32);
}

static size_t image_max(void) {
  const char *v = getenv("NOGRAD_IMAGE_MAX");
  char *end = NULL;
  unsigned long long m = v ? strtoull(v, &end, 10) : 0;
  return v && *v && !*end ? (size_t)m : SEAL_IMAGE_MAX;
}

/* ---- Writing ---- */

hid_t ng__seal_create(const char *name) {
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = ng_h5_fapl(), fid = -1;
  if (fcpl >= 0 && fapl >= 0 && H5Pset_userblock(fcpl, NG_SEAL_BLOCK) >= 0 &&
      H5Pset_fapl_core(fapl, SEAL_CORE_INCREMENT, 0) >= 0)
    fid = H5Fcreate(name, H5F_ACC_TRUNC, fcpl, fapl);
  ng_h5_close(&fapl);
  ng_h5_close(&fcpl);
  return fid;
}

void ng__seal_header(unsigned char *b, size_t len) {
  memset(b, 0, NG_SEAL_BLOCK);
  memcpy(b, ng__seal_magic, 8);
  put_u32(b + 8, NG_SEAL_VERSION);
  put_u32(b + 12, NG_SEAL_BLOCK);
  put_u64(b + 16, (uint64_t)(len - NG_SEAL_BLOCK));
  put_u32(b + 24, crc_bytes(0, b + NG_SEAL_BLOCK, len - NG_SEAL_BLOCK));
  memcpy(b + 64, ng__seal_magic, 8);
  memcpy(b + SEAL_TEXT_AT, seal_text, sizeof seal_text - 1);
  put_u32(b + 28, header_crc(b));
}

int ng__seal_finish(hid_t *fid, const char *noun, const char *name, unsigned char **bytes, size_t *len) {
  *bytes = NULL;
  *len = 0;
  int st = NG_OK;
  ssize_t size = H5Fflush(*fid, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(*fid, NULL, 0);
  unsigned char *b = NULL;
  if (size <= 0) {
    st = ng_error(NG_EIO, "cannot write %s '%s': HDF5 cannot produce its image", noun, name);
    goto done;
  }
  /* HDF5 1.10 leaves the user block out of the image (it starts with the superblock); should a version put it
   * in, the image is used as it is. */
  size_t total = (size_t)size + NG_SEAL_BLOCK;
  if (!(b = malloc(total))) {
    st = ng_error(NG_ENOMEM, "cannot write %s '%s': out of memory for its %zu bytes", noun, name, total);
    goto done;
  }
  if (H5Fget_file_image(*fid, b + NG_SEAL_BLOCK, (size_t)size) != size) {
    st = ng_error(NG_EIO, "cannot write %s '%s': HDF5 cannot produce its image", noun, name);
    goto done;
  }
  int has_block = (size_t)size >= NG_SEAL_BLOCK + 8 && memcmp(b + NG_SEAL_BLOCK, hdf5_signature, 8) != 0 &&
                  memcmp(b + 2 * NG_SEAL_BLOCK, hdf5_signature, 8) == 0;
  if (has_block) { /* the image holds the user block already: drop the room added for it */
    memmove(b, b + NG_SEAL_BLOCK, (size_t)size);
    total = (size_t)size;
  } else if (memcmp(b + NG_SEAL_BLOCK, hdf5_signature, 8) != 0) {
    st = ng_error(NG_EIO, "cannot write %s '%s': HDF5's image does not start with its signature", noun, name);
    goto done;
  }
  ng__seal_header(b, total);
  *bytes = b;
  *len = total;
  b = NULL;
done:
  free(b);
  if (H5Fclose(*fid) < 0 && st == NG_OK)
    st = ng_error(NG_EIO, "cannot write %s '%s': HDF5 cannot close it", noun, name);
  *fid = -1;
  if (st != NG_OK) {
    free(*bytes);
    *bytes = NULL;
    *len = 0;
  }
  return st;
}

/* ---- The header ---- */

/* What the first NG_SEAL_BLOCK bytes (got of them read) of a file of `size` bytes say. */
typedef enum { HEAD_NONE, HEAD_OK, HEAD_BAD } head_kind;

static head_kind parse_head(const unsigned char *b, size_t got, uint64_t size, uint32_t *crc, char *why,
                            size_t len) {
  int m0 = got >= 8 && memcmp(b, ng__seal_magic, 8) == 0,
      m1 = got >= 72 && memcmp(b + 64, ng__seal_magic, 8) == 0;
  if (!m0 && !m1) return HEAD_NONE;
  if (got < NG_SEAL_BLOCK) {
    snprintf(why, len, "it ends after %zu bytes, within its nograd header (truncated?)", got);
    return HEAD_BAD;
  }
  if (!m0 || !m1 || get_u32(b + 28) != header_crc(b)) {
    snprintf(why, len, "its nograd header (the first %d bytes) is damaged", NG_SEAL_BLOCK);
    return HEAD_BAD;
  }
  if (get_u32(b + 8) != NG_SEAL_VERSION || get_u32(b + 12) != NG_SEAL_BLOCK) {
    snprintf(why, len, "its nograd header has version %u and block %u; this nograd reads version %d",
             get_u32(b + 8), get_u32(b + 12), NG_SEAL_VERSION);
    return HEAD_BAD;
  }
  uint64_t want = get_u64(b + 16);
  if (size - NG_SEAL_BLOCK != want) {
    snprintf(why, len, "it has %llu bytes after its header, nograd wrote %llu (%s)",
             (unsigned long long)(size - NG_SEAL_BLOCK), (unsigned long long)want,
             size - NG_SEAL_BLOCK < want ? "truncated?" : "appended to?");
    return HEAD_BAD;
  }
  *crc = get_u32(b + 24);
  return HEAD_OK;
}

static int damaged(const char *kind, const char *path, const char *why, const char *hint) {
  return ng_error(NG_ECORRUPT, "%s '%s' is damaged: %s; it was not read%s", kind, path, why,
                  hint ? hint : "");
}

/* Reads len bytes at the file's current position; NG_OK or NG_EIO. */
static int read_full(int fd, unsigned char *p, size_t len, size_t *got) {
  *got = 0;
  while (*got < len) {
    ssize_t r = read(fd, p + *got, len - *got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return NG_EIO;
    if (r == 0) break;
    *got += (size_t)r;
  }
  return NG_OK;
}

/* The state of one file being opened. */
typedef struct {
  const char *path, *kind, *hint;
  int fd;
  struct stat sb;
  unsigned char block[NG_SEAL_BLOCK];
  size_t head_got;
  head_kind head;
  uint32_t want_crc;
  unsigned char *image; /* the whole file, when it is opened from memory */
} opening;

static int io_error(const opening *o, const char *what) {
  return ng_error(NG_EIO, "cannot read %s '%s': %s%s", o->kind, o->path, what, o->hint ? o->hint : "");
}

/* Opens the file, reads its first block and parses it. */
static int start(opening *o) {
  char why[256];
  o->fd = open(o->path, O_RDONLY);
  if (o->fd < 0) return io_error(o, strerror(errno));
  if (fstat(o->fd, &o->sb) != 0) return io_error(o, strerror(errno));
  if (!S_ISREG(o->sb.st_mode)) return io_error(o, "not a regular file");
  if (read_full(o->fd, o->block, NG_SEAL_BLOCK, &o->head_got) != NG_OK) return io_error(o, strerror(errno));
  o->head = parse_head(o->block, o->head_got, (uint64_t)o->sb.st_size, &o->want_crc, why, sizeof why);
  if (o->head == HEAD_BAD) return damaged(o->kind, o->path, why, o->hint);
  return NG_OK;
}

/* The whole file into o->image (when small enough) or, for a header, a streamed CRC: *crc is the content's.
 */
static int load(opening *o, int keep, uint32_t *crc) {
  size_t size = (size_t)o->sb.st_size, got;
  *crc = 0;
  if (keep) {
    if (!(o->image = malloc(size ? size : 1)))
      return ng_error(NG_ENOMEM, "%s '%s': out of memory for its %zu bytes", o->kind, o->path, size);
    memcpy(o->image, o->block, o->head_got);
    if (read_full(o->fd, o->image + o->head_got, size - o->head_got, &got) != NG_OK)
      return io_error(o, strerror(errno));
    if (got != size - o->head_got) return io_error(o, "it changed size while it was read");
    if (o->head == HEAD_OK) *crc = crc_bytes(0, o->image + NG_SEAL_BLOCK, size - NG_SEAL_BLOCK);
    return NG_OK;
  }
  if (o->head != HEAD_OK) return NG_OK;
  unsigned char *buf = malloc((size_t)1 << 20);
  if (!buf) return ng_error(NG_ENOMEM, "%s '%s': out of memory", o->kind, o->path);
  size_t left = size - NG_SEAL_BLOCK;
  int st = NG_OK;
  while (left && st == NG_OK) {
    size_t want = left < ((size_t)1 << 20) ? left : ((size_t)1 << 20);
    if (read_full(o->fd, buf, want, &got) != NG_OK)
      st = io_error(o, strerror(errno));
    else if (got != want)
      st = io_error(o, "it changed size while it was read");
    else {
      *crc = crc_bytes(*crc, buf, got);
      left -= got;
    }
  }
  free(buf);
  return st;
}

/* ---- Opening a memory image whose buffer HDF5 takes over ----
 *
 * HDF5 copies a file image into the access list and again into the driver unless the callbacks below stand
 * in for malloc, memcpy and free: they hand the one buffer to both and free it when the last holder lets go
 * (as HDF5's high-level H5LTopen_file_image does with its "don't copy" flag). Read-only: no realloc. */

typedef struct {
  unsigned char *buf; /* kept (for comparisons) after it is freed */
  size_t size;
  int holders; /* nograd, the access lists and the open file that hold buf; freed at 0 */
  int refs;    /* copies of this structure held, nograd's included; freed at 0 */
} shared_image;

/* One holder lets go of the buffer. The open file holds the structure without copying it (no udata_copy), so
 * the structure goes only when neither copies nor holders are left. */
static void release(shared_image *s) {
  if (--s->holders > 0) return;
  free(s->buf);
  if (s->refs == 0) free(s);
}

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
  shared_image *s = udata;
  if (size != s->size || s->holders <= 0) return NULL;
  s->holders++;
  return s->buf;
}

static void *img_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *udata) {
  shared_image *s = udata;
  return dest == s->buf && src == s->buf && size == s->size ? dest : NULL;
}

static void *img_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
  return NULL; /* read-only */
}

static herr_t img_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
  shared_image *s = udata;
  if (ptr != s->buf || s->holders <= 0) return -1;
  release(s);
  return 0;
}

static void *udata_copy(void *udata) {
  ((shared_image *)udata)->refs++;
  return udata;
}

static herr_t udata_free(void *udata) {
  shared_image *s = udata;
  if (--s->refs == 0 && s->holders == 0) free(s);
  return 0;
}

/* Opens `len` bytes at *image (which HDF5 takes over: *image becomes NULL) as a read-only HDF5 file. A
 * negative id when HDF5 cannot; the buffer is freed either way. The core driver refuses a name that exists on
 * disk, and takes two opens of one name for the same file, so each image gets a name of its own below the
 * file's path, which, the path being a regular file, cannot exist. */
static hid_t open_image(const char *path, unsigned char **image, size_t len) {
  static unsigned long serial;
  size_t nlen = strlen(path) + 40;
  char *name = malloc(nlen);
  shared_image *s = name ? calloc(1, sizeof *s) : NULL;
  hid_t fapl = s ? H5Pcreate(H5P_FILE_ACCESS) : -1, fid = -1;
  if (!s || fapl < 0) {
    free(name);
    free(s);
    free(*image);
    *image = NULL;
    ng_h5_close(&fapl);
    return -1;
  }
  s->buf = *image;
  s->size = len;
  s->holders = 1; /* ours, until HDF5 holds it */
  s->refs = 1;
  *image = NULL;
  H5FD_file_image_callbacks_t cb = {img_malloc, img_memcpy, img_realloc, img_free, udata_copy, udata_free, s};
  snprintf(name, nlen, "%s/nograd-image-%lu", path, ++serial);
  if (H5Pset_fapl_core(fapl, SEAL_CORE_INCREMENT, 0) >= 0 && H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
      H5Pset_file_image(fapl, s->buf, len) >= 0)
    fid = H5Fopen(name, H5F_ACC_RDONLY, fapl);
  free(name);
  ng_h5_close(&fapl); /* the access list's hold goes; the open file keeps the buffer */
  s->refs--;          /* our copy of the structure, then our hold on the buffer */
  release(s);
  return fid;
}

/* H5Fopen of the file on disk after a streamed check, refused if it is no longer the file that was checked.
 */
static hid_t open_disk(const opening *o) {
  hid_t fid = ng_h5_open(o->path, H5F_ACC_RDONLY);
  struct stat now;
  if (fid >= 0 && (stat(o->path, &now) != 0 || now.st_dev != o->sb.st_dev || now.st_ino != o->sb.st_ino ||
                   now.st_size != o->sb.st_size || now.st_mtim.tv_sec != o->sb.st_mtim.tv_sec ||
                   now.st_mtim.tv_nsec != o->sb.st_mtim.tv_nsec)) {
    H5Fclose(fid);
    errno = 0;
    return -2;
  }
  return fid;
}

static int probe_seconds(size_t size, double *seconds) {
  const char *v = getenv("NOGRAD_PROBE_TIMEOUT");
  char *end = NULL;
  double t = v ? strtod(v, &end) : 0;
  *seconds = v && *v && !*end && t > 0 ? t : 20.0 + (double)size / 50e6;
  return NG_OK;
}

/* NOGRAD_PROBE: 0 ("off": files without the header are read in-process), 1 (the default: they are read by a
 * child first) or 2 ("all": sealed files too, for files from someone who could have forged the header). */
static int probe_mode(void) {
  const char *v = getenv("NOGRAD_PROBE");
  if (v && (!strcmp(v, "off") || !strcmp(v, "0"))) return 0;
  return v && !strcmp(v, "all") ? 2 : 1;
}

int ng_h5_open_checked(const char *path, const ng_h5_reading *how, hid_t *fid, ng_seal_state *state) {
  *fid = -1;
  opening o = {path, how->kind, how->hint, -1};
  size_t inlen = 0;
  const unsigned char *inherited = ng__seal_in_probe() ? ng__probe_image(path, &inlen) : NULL;
  int st = NG_OK;
  ng_seal_state how_checked = NG_SEAL_TRUSTED;
  uint32_t crc = 0;
  if (inherited) { /* the child of a probe: the parent's bytes, which have no header */
    if (!(o.image = malloc(inlen ? inlen : 1)))
      return ng_error(NG_ENOMEM, "%s '%s': out of memory", o.kind, path);
    memcpy(o.image, inherited, inlen);
    o.sb.st_size = (off_t)inlen;
    goto open;
  }
  NG_TRY(st, start(&o), done);
  int keep = (size_t)o.sb.st_size <= image_max();
  NG_TRY(st, load(&o, keep, &crc), done);
  if (o.head == HEAD_OK) {
    if (crc != o.want_crc) {
      char why[160];
      snprintf(why, sizeof why, "its content does not match the CRC-32 nograd wrote (%08x, now %08x)",
               o.want_crc, crc);
      st = damaged(o.kind, path, why, o.hint);
      goto done;
    }
    how_checked = NG_SEAL_VERIFIED;
  }
  if (!ng__seal_in_probe() && probe_mode() > (o.head == HEAD_OK)) {
    double seconds;
    probe_seconds((size_t)o.sb.st_size, &seconds);
    NG_TRY(st,
           ng__probe_run(path, o.kind, o.image, o.image ? (size_t)o.sb.st_size : 0, seconds, how->probe,
                         how->probe_ctx),
           done);
    if (how_checked != NG_SEAL_VERIFIED) how_checked = NG_SEAL_PROBED;
  }
open:
  if (o.image) {
    *fid = open_image(path, &o.image, (size_t)o.sb.st_size);
  } else {
    *fid = open_disk(&o);
    if (*fid == -2) {
      *fid = -1;
      st = io_error(&o, "it was replaced or changed while it was checked");
      goto done;
    }
  }
  if (*fid < 0)
    st = ng_error(how_checked == NG_SEAL_VERIFIED ? NG_EIO : NG_ECORRUPT,
                  "%s '%s' is not a readable HDF5 file (truncated or damaged?)%s", o.kind, path,
                  o.hint ? o.hint : "");
  else if (state)
    *state = how_checked;
done:
  if (o.fd >= 0) close(o.fd);
  free(o.image);
  return st;
}

int ng__seal_check(const char *path, const char *kind, int *sealed, uint32_t *crc) {
  opening o = {path, kind, NULL, -1};
  uint32_t c = 0;
  *sealed = 0;
  int st = start(&o);
  if (st == NG_OK) st = load(&o, 0, &c);
  if (st == NG_OK && o.head == HEAD_OK && c != o.want_crc) {
    char why[160];
    snprintf(why, sizeof why, "its content does not match the CRC-32 nograd wrote (%08x, now %08x)",
             o.want_crc, c);
    st = damaged(kind, path, why, NULL);
  }
  if (st == NG_OK) {
    *sealed = o.head == HEAD_OK;
    if (crc) *crc = c;
  }
  if (o.fd >= 0) close(o.fd);
  return st;
}

int ng__seal_file(const char *path) {
  int fd = open(path, O_RDWR);
  if (fd < 0) return ng_error(NG_EIO, "cannot open '%s': %s", path, strerror(errno));
  struct stat sb;
  unsigned char *b = NULL;
  size_t got = 0;
  int st = NG_OK;
  if (fstat(fd, &sb) != 0 || !(b = malloc((size_t)sb.st_size + 1)) ||
      read_full(fd, b, (size_t)sb.st_size, &got) != NG_OK || got != (size_t)sb.st_size)
    st = ng_error(NG_EIO, "cannot read '%s'", path);
  else if (got < NG_SEAL_BLOCK + 8 || memcmp(b, ng__seal_magic, 8) != 0)
    st = ng_error(NG_EFORMAT, "'%s' has no nograd header", path);
  if (st == NG_OK) {
    ng__seal_header(b, got);
    if (pwrite(fd, b, NG_SEAL_BLOCK, 0) != NG_SEAL_BLOCK || fsync(fd) != 0)
      st = ng_error(NG_EIO, "cannot write '%s': %s", path, strerror(errno));
  }
  free(b);
  close(fd);
  return st;
}
