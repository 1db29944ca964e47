/* Private to the library: nograd's HDF5 files are checked before libhdf5 reads a byte of them.
 *
 * Writing. Every file nograd writes (checkpoint, model, dataset: ng_h5_write_atomic) is built in memory by
 * HDF5's core driver, without a backing store, with a 512-byte user block; nograd then fills the user block
 * with a small header (below) that holds a CRC-32 of every byte after it, and writes the bytes out itself
 * (write, fsync, rename). libhdf5 never touches the disk, so a full disk or a failed write is an ordinary
 * error, never a half-closed HDF5 file. h5py, h5dump and any other HDF5 reader skip the user block.
 *
 * Reading (ng_h5_open_checked). A file that starts with the header is verified first: header, length and
 * the CRC of the content; a damaged one is refused with a message naming it, and libhdf5 never sees it. The
 * verified bytes are then opened from memory (a file image), so that what HDF5 parses is what was checked;
 * a file larger than the image limit is verified as a stream and opened from disk, after checking that it is
 * still the same file. A file without the header (written by h5py, another tool or nograd 0.1) is first
 * opened and read by a child process (fork, no MPI in it) that runs the reader's own code on the same bytes,
 * with a time limit: a crash or an endless loop inside libhdf5 becomes a message naming the file, and only a
 * file the child read completely is then read by nograd.
 *
 * The header, little-endian, at the start of the 512-byte user block:
 *   0  magic  "\211NOGRAD\n" (8 bytes)     8  version 1 (u32)       12 user block size 512 (u32)
 *   16 content length: file size - 512 (u64)                          24 CRC-32 of the content (u32, zlib's)
 *   28 CRC-32 of the whole 512-byte block with this field as zeros (u32)
 *   64 the magic again                      96 a line of text saying what this is, then zeros up to 512.
 * The second magic lets a damaged first one be told from a file without a header.
 *
 * The header guards against damage, not against someone who rewrites it for a forged content (CRC-32 is no
 * signature): NOGRAD_PROBE=all sends sealed files through the child too, for files from untrusted hands.
 *
 * Environment: NOGRAD_PROBE_TIMEOUT (seconds, > 0) overrides the child's time limit (by default 20 s plus
 * 1 s per 50 MB); NOGRAD_PROBE=off reads files without the header in-process (trusting libhdf5 with them);
 * NOGRAD_IMAGE_MAX (bytes) overrides the largest file opened from memory (64 MiB), for tests. None of these
 * functions is collective. */
#ifndef NOGRAD_IO_SEAL_H
#define NOGRAD_IO_SEAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#define NG_SEAL_BLOCK 512 /* the user block, and the header's room */
#define NG_SEAL_VERSION 1
extern const unsigned char ng__seal_magic[8];

/* ---- Writing ---- */

/* A new HDF5 file in memory (core driver, no backing store) with a NG_SEAL_BLOCK user block; `name` only
 * names it (HDF5 creates nothing on disk). A negative id when HDF5 cannot. */
hid_t ng__seal_create(const char *name);

/* Flushes and closes the in-memory file *fid and returns its bytes, user block and header included, in a
 * malloc'd *bytes of *len bytes, ready to be written. NG_OK; NG_ENOMEM; NG_EIO ("cannot write NOUN 'NAME':
 * HDF5 cannot produce its image"). *fid is closed in every case. */
int ng__seal_finish(hid_t *fid, const char *noun, const char *name, unsigned char **bytes, size_t *len);

/* Writes the header of the file whose `len` bytes (user block included) are `bytes` into its first
 * NG_SEAL_BLOCK bytes. */
void ng__seal_header(unsigned char *bytes, size_t len);

/* Rewrites the header of the file at `path` for its present content (a test helper, for files altered on
 * purpose with HDF5 after nograd wrote them). NG_OK, NG_EIO, NG_EFORMAT when it has no header. */
int ng__seal_file(const char *path);

/* ---- Reading ---- */

/* How a reader opens its file. */
typedef struct {
  const char *kind; /* "checkpoint", "model file", "dataset": the messages' first word */
  const char *hint; /* appended to messages about damage (the checkpoint's ".prev" advice); NULL: none */
  /* The reader's whole read of `path`, run in the child process for a file without the header: it opens the
   * file again with ng_h5_open_checked (which then opens it directly) and reads everything it would. Returns
   * a status and leaves its message with ng_error. */
  int (*probe)(const char *path, void *ctx);
  void *probe_ctx;
} ng_h5_reading;

/* What ng_h5_open_checked found. */
typedef enum {
  NG_SEAL_VERIFIED = 1, /* the header and the content's CRC held */
  NG_SEAL_PROBED = 2,   /* no header; a child process read the file completely */
  NG_SEAL_TRUSTED = 3   /* no header, read without a child (NOGRAD_PROBE=off, or inside the child itself) */
} ng_seal_state;

/* Opens `path` for reading as described at the top of this file. On success *fid is an open HDF5 file (the
 * caller closes it with H5Fclose; a memory image is freed then) and *state (may be NULL) says how it was
 * checked. Errors, each naming the file: NG_EIO (cannot open or read it; a child process cannot be started),
 * NG_ECORRUPT ("KIND 'PATH' is damaged: ..." for a header or CRC that does not hold, a truncated file, a
 * child that crashed or ran out of time), NG_ENOMEM, or the status and message of the reader's own probe
 * (NG_EFORMAT, ...), exactly as reading it in-process would have given. HDF5's error printing should be off.
 */
int ng_h5_open_checked(const char *path, const ng_h5_reading *how, hid_t *fid, ng_seal_state *state);

/* The seal of `path` alone, without HDF5: NG_OK with *sealed = 1 when the header and CRC hold, NG_OK with
 * *sealed = 0 when there is no header, NG_ECORRUPT (naming KIND and the file) when the header or the content
 * is damaged, NG_EIO. *crc (may be NULL) receives the content's CRC-32. For `nograd verify` and the tests. */
int ng__seal_check(const char *path, const char *kind, int *sealed, uint32_t *crc);

/* Whether this process is a probe child (its opens of files without the header are direct). */
int ng__seal_in_probe(void);

/* ---- The child process (probe.c) ---- */

/* Runs probe(path, ctx) in a child process with a time limit of `seconds`, the child seeing `image` (len
 * bytes; NULL: the file on disk) as the content of `path`. NG_OK when it read the file; else its status and
 * message, or NG_ECORRUPT when it crashed ("KIND 'PATH': reading it crashed (signal 11) ...") or ran out of
 * time, or NG_EIO when it cannot be started. */
int ng__probe_run(const char *path, const char *kind, const unsigned char *image, size_t len, double seconds,
                  int (*probe)(const char *path, void *ctx), void *ctx);

/* Inside the child: the image the parent loaded for `path`, if any (set by ng__probe_run). */
const unsigned char *ng__probe_image(const char *path, size_t *len);

#endif
