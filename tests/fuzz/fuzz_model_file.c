/* The model file reader behind the checksum (ng_model_read, src/nn/model_io.c): files nograd wrote, mutated
 * at the level of their objects and attributes and sealed again (h5mutate.h), so that the reader parses them
 * in-process as it would its own. Whatever they hold, a model whose index matches its spec, or a message. A
 * model read is run forward on one example, so that what the reader accepted is what the pass can use. */
#include "fuzz.h"

#include "h5mutate.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"
#include "nograd/nn.h"

static const char *const specs[] = {
    "input 2 4 4\nconv2d c1 2 3 padding=1\nbatchnorm bn1\nrelu\nmaxpool 2\nflatten\ndense fc1 3\n",
    "input 5\ndense fc1 4\nlayernorm ln1\nresidual\ndense fc2 4\ntanh\nend\ndense fc3 2\nsoftmax\n",
};
#define NBASES (sizeof specs / sizeof specs[0])

static fuzz_h5_base *bases(void) {
  static fuzz_h5_base b[NBASES];
  static int loaded;
  if (loaded) return b;
  fuzz_quiet_hdf5();
  for (size_t i = 0; i < NBASES; i++) {
    ng_model *m = NULL;
    if (ng_model_from_spec(specs[i], &m) != NG_OK) abort();
    ng_model_init(m, 3);
    ng_model_set_attr(m, "classes", 3);
    ng_model_set_attr(m, "train_rows", 100);
    ng_model_set_threshold(m, 0.25);
    ng_nn_set_dataset(m, "digits");
    const char *p = fuzz_path("model-base.h5");
    if (ng_model_write(m, p) != NG_OK) abort();
    fuzz_h5_base_load(&b[i], p);
    ng_model_destroy(&m);
  }
  loaded = 1;
  return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  const char *path = fuzz_h5_mutant(&bases()[data[0] % NBASES], data + 1, size - 1);
  ng_model *m = NULL;
  int st = ng_model_read(path, &m);
  if (st != NG_OK && !strstr(ng_errmsg(), path)) abort(); /* a refusal names the file */
  if (st == NG_OK) {
    size_t in = ng_model_input_size(m), out = ng_model_output_size(m);
    ng_nn_work *w = NULL;
    if (in <= 4096 && ng_nn_work_create(m, 1, false, &w) == NG_OK) {
      float *x = calloc(in, sizeof *x);
      const float *y = NULL;
      if (x && ng_nn_forward(m, ng_model_params_const(m), w, x, 1, &y) == NG_OK && out && !y) abort();
      free(x);
    }
    ng_nn_work_destroy(&w);
  }
  ng_model_destroy(&m);
  return 0;
}
