/* nograd's file header (src/io/seal.c), parsed before libhdf5 sees a byte: any bytes as a file are either
 * verified (header, length and CRC hold), found to have no header, or refused as damaged with a message
 * naming the file; nothing here reads HDF5. Also the header writer against the reader: sealing any content
 * gives a file that verifies. */
#include "fuzz.h"

#include "io/seal.h"
#include "nograd/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file("seal.h5", data, size);
  int sealed = 0;
  uint32_t crc = 0;
  int st = ng__seal_check(path, "file", &sealed, &crc);
  if (st != NG_OK && !strstr(ng_errmsg(), path)) abort(); /* every refusal names the file */
  if (size >= NG_SEAL_BLOCK) {                            /* sealed for its content, it verifies */
    unsigned char *b = malloc(size);
    if (!b) abort();
    memcpy(b, data, size);
    ng__seal_header(b, size);
    path = fuzz_file("sealed.h5", b, size);
    if (ng__seal_check(path, "file", &sealed, &crc) != NG_OK || !sealed) abort();
    free(b);
  }
  return 0;
}
