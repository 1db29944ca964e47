/* The knob parser (ng_knobs_parse, src/nn/knobs.c) against a fixed small model: any spec of knobs is either
 * refused with a message or gives a knob set whose start, bounds and application stay inside the model. */
#include "fuzz.h"

#include <math.h>

#include "nograd/error.h"
#include "nograd/knobs.h"
#include "nograd/nn.h"

static ng_model *model(void) {
  static ng_model *m;
  if (!m) {
    if (ng_model_from_spec("input 1 6 6\nconv2d c1 2 3 padding=1\nbatchnorm bn1\nrelu\nmaxpool 2\nflatten\n"
                           "dense fc1 5\nlayernorm ln1\ngelu\ndense fc2 3\n",
                           &m) != NG_OK)
      abort();
    ng_model_init(m, 7);
  }
  return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ng_model *m = model();
  char *spec = fuzz_text(data, size);
  ng_knobs *k = NULL;
  if (ng_knobs_parse(m, spec, &k) == NG_OK) {
    size_t n = ng_knobs_dim(k), np = ng_model_nparams(m);
    double *x = calloc(n ? n : 1, sizeof *x), *lo = calloc(n ? n : 1, sizeof *lo),
           *hi = calloc(n ? n : 1, sizeof *hi);
    float *params = calloc(np, sizeof *params);
    if (!x || !lo || !hi || !params) abort();
    ng_knobs_x0(k, x);
    ng_knobs_bounds(k, lo, hi);
    double t = 0;
    ng_knobs_apply(k, ng_model_params_const(m), x, params, &t);
    for (size_t i = 0; i < n; i++)
      x[i] = isfinite(hi[i]) ? hi[i] : 1e3;
    ng_knobs_apply(k, ng_model_params_const(m), x, params, &t);
    char name[64];
    for (size_t i = 0; i <= n; i++)
      ng_knobs_coord_name(k, i, name, sizeof name);
    free(params);
    free(hi);
    free(lo);
    free(x);
  }
  ng_knobs_destroy(&k);
  free(spec);
  return 0;
}
