/* The dataset file reader behind the checksum (src/data/dataset.c): files nograd wrote (labels with
 * statistics, and float targets), mutated at the level of their objects and attributes and sealed again
 * (h5mutate.h). Whatever they hold, every row is read into buffers of the size the reader reported, or a
 * message names the file. */
#include "fuzz.h"

#include "data/dataset_impl.h"
#include "h5mutate.h"
#include "nograd/data.h"
#include "nograd/error.h"

#define NBASES 2

static fuzz_h5_base *bases(void) {
  static fuzz_h5_base b[NBASES];
  static int loaded;
  if (loaded) return b;
  fuzz_quiet_hdf5();
  for (int i = 0; i < NBASES; i++) {
    ng_data D;
    size_t dims[3] = {1, 2, 3};
    if (ng_data_alloc(&D, 20, i ? 1 : 3, i ? dims + 2 : dims, i ? 2 : 0) != NG_OK) abort();
    for (size_t r = 0; r < D.n * D.d; r++)
      D.x[r] = (float)(r % 11) - 5.0f;
    for (size_t r = 0; r < D.n; r++) {
      if (i)
        D.yt[2 * r] = D.yt[2 * r + 1] = (float)r;
      else
        D.y[r] = (int32_t)(r % 3);
    }
    D.classes = i ? 0 : 3;
    snprintf(D.name, sizeof D.name, "base%d", i);
    snprintf(D.domain, sizeof D.domain, "upright");
    if (!i) {
      D.mean = calloc(D.d, sizeof *D.mean);
      D.std = malloc(D.d * sizeof *D.std);
      for (size_t k = 0; k < D.d; k++)
        D.std[k] = 1.5f;
    }
    const char *p = fuzz_path("dataset-base.h5");
    if (ng_data_write(p, &D) != NG_OK) abort();
    fuzz_h5_base_load(&b[i], p);
    ng_data_free(&D);
  }
  loaded = 1;
  return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  const char *path = fuzz_h5_mutant(&bases()[data[0] % NBASES], data + 1, size - 1);
  ng_dataset *ds = NULL;
  int st = ng_dataset_open(path, &ds);
  if (st != NG_OK && st != NG_ENOMEM && !strstr(ng_errmsg(), path)) abort(); /* a refusal names the file */
  if (st != NG_OK) return 0;
  ng_data_info in = *ng_dataset_info(ds);
  size_t row = in.d + (in.t ? in.t : 1);
  if (in.n <= ((size_t)16 << 20) / row) { /* what fits a fuzzing budget is read whole, twice */
    ng_dataset_close(&ds);
    st = ng__dataset_read_all(path, NULL);
    if (st != NG_OK && st != NG_ENOMEM && !strstr(ng_errmsg(), path)) abort();
    ng_data D;
    if (ng_data_load(path, &D) == NG_OK) {
      if (D.n != in.n || D.d != in.d || !D.x) abort(); /* it holds what the reader said */
      ng_data_free(&D);
    }
    return 0;
  }
  /* a claim of many rows (unallocated chunks): the first and the last rows */
  float *x = calloc(4 * in.d, sizeof *x), *y = calloc(4 * (in.t ? in.t : 1), sizeof *y);
  if (x && y) {
    ng_dataset_read_rows(ds, 0, 4, x, y);
    ng_dataset_read_rows(ds, in.n - 4, 4, x, y);
  }
  free(y);
  free(x);
  ng_dataset_close(&ds);
  return 0;
}
