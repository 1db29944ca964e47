/* The IDX importer (ng_import_idx, src/data/import.c): the input is cut into an images file and a labels file
 * at a point its first two bytes choose. Headers may claim any sizes; none may size a buffer that wraps. */
#include "fuzz.h"

#include "nograd/data.h"
#include "nograd/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  size_t cut = ((size_t)data[0] << 8 | data[1]) % (size - 1);
  const uint8_t *rest = data + 2;
  size_t len = size - 2;
  if (cut > len) cut = len;
  const char *images = fuzz_file("images.idx", rest, cut),
             *labels = fuzz_file("labels.idx", rest + cut, len - cut);
  ng_data D;
  if (ng_import_idx(images, labels, NULL, &D) == NG_OK) {
    if (D.n == 0 || D.xrank != 3 || D.d != D.xdims[0] * D.xdims[1] * D.xdims[2]) abort();
    ng_data_free(&D);
  }
  return 0;
}
