/* Shared by the libFuzzer harnesses of tests/fuzz (one per file, fuzz_NAME.c, each defining
 * LLVMFuzzerTestOneInput; see tests/fuzz/CMakeLists.txt). Include it from one translation unit only. */
#ifndef NOGRAD_TESTS_FUZZ_H
#define NOGRAD_TESTS_FUZZ_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The sanitizers' options when the harness runs (under CTest or by hand): a huge allocation that a hostile
 * size asks for is a NULL that nograd reports as out of memory, not a sanitizer abort (libFuzzer runs with
 * -malloc_limit_mb above this limit, see CMakeLists.txt). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  /* 2 GB: a larger request (what a hostile size asks for) returns NULL at once, below libFuzzer's own limit
   */
  return "allocator_may_return_null=1:max_allocation_size_mb=2048:detect_leaks=1:handle_abort=1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated, malloc'd copy of the input (NUL bytes in it end the text early, as in a C string). */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* "/tmp/nograd-fuzz-PID-TAG": a file of this process, rewritten for each input. */
static inline const char *fuzz_path(const char *tag) {
  static char buf[4][128];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "/tmp/nograd-fuzz-%ld-%s", (long)getpid(), tag);
  return buf[k];
}

/* Writes len bytes to the file of this process named by tag and returns its path. */
static inline const char *fuzz_file(const char *tag, const void *bytes, size_t len) {
  const char *p = fuzz_path(tag);
  FILE *f = fopen(p, "wb");
  if (!f || (len && fwrite(bytes, 1, len, f) != len) || fclose(f) != 0) abort();
  return p;
}

/* Reads input bytes in order; past the end, zeros. */
typedef struct {
  const uint8_t *p;
  size_t left;
} fuzz_bytes;

static inline unsigned fuzz_byte(fuzz_bytes *b) {
  if (!b->left) return 0;
  b->left--;
  return *b->p++;
}

static inline uint64_t fuzz_u64(fuzz_bytes *b, int nbytes) {
  uint64_t v = 0;
  for (int i = 0; i < nbytes; i++)
    v = v << 8 | fuzz_byte(b);
  return v;
}

/* HDF5 quiet once: the harnesses' own HDF5 calls fail on purpose. */
static inline void fuzz_quiet_hdf5(void) {
  static int done;
  if (!done) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  done = 1;
}

#endif
