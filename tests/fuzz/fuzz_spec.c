/* The model spec parser (src/nn/model.c): any text either parses into a model whose every size was computed
 * without wrapping, or is refused with a message; a parsed model small enough to run is cloned and run
 * forward and backward on one example, so that the sizes it resolved are also the ones the passes use. */
#include "fuzz.h"

#include "nograd/error.h"
#include "nograd/nn.h"

#define RUN_MAX \
  4096 /* largest input, output and parameter count run forward (a fuzzing budget, not a limit) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *spec = fuzz_text(data, size);
  ng_model *m = NULL, *c = NULL;
  if (ng_model_from_spec(spec, &m) == NG_OK) {
    ng_model_init(m, 1);
    if (ng_model_clone(m, &c) != NG_OK) abort(); /* a parsed spec always parses again */
    size_t in = ng_model_input_size(m), out = ng_model_output_size(m), np = ng_model_nparams(m);
    ng_nn_work *w = NULL;
    if (in <= RUN_MAX && out <= RUN_MAX && np <= 64 * RUN_MAX && ng_nn_work_create(m, 2, true, &w) == NG_OK) {
      float *x = calloc(2 * in, sizeof *x), *dy = calloc(2 * out, sizeof *dy),
            *g = calloc(np ? np : 1, sizeof *g);
      const float *y = NULL;
      for (size_t i = 0; x && i < 2 * in; i++)
        x[i] = (float)(i % 7) - 3.0f;
      if (x && dy && g && ng_nn_forward(m, ng_model_params_const(m), w, x, 2, &y) == NG_OK) {
        for (size_t i = 0; i < 2 * out; i++)
          dy[i] = y[i];
        ng_nn_backward(m, ng_model_params_const(m), w, dy, g);
      }
      free(g);
      free(dy);
      free(x);
    }
    ng_nn_work_destroy(&w);
  }
  ng_model_destroy(&c);
  ng_model_destroy(&m);
  free(spec);
  return 0;
}
