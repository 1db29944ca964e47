/* Test driver: the forward pass of a model file (ONNX or native) on raw float32 input, through the public
 * API.
 *
 *   onnx_run MODEL IN.f32 N OUT.f32 [BATCH [REPEAT]]
 *
 * Reads N examples (N x input size floats, little-endian) from IN.f32, runs them through ng_nn_forward in
 * batches of BATCH (default N) and writes the N x output size floats to OUT.f32. With REPEAT > 1 the whole
 * pass is repeated that many times and the median time per pass (seconds) printed on stdout, for the
 * benchmark (tools/bench/bench_onnx.py); "parameters P input I output O" is printed first. Exit 1 on an
 * error, with nograd's message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nograd/error.h"
#include "nograd/nn.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: onnx_run MODEL IN.f32 N OUT.f32 [BATCH [REPEAT]]\n");
    return 2;
  }
  size_t N = strtoul(argv[3], NULL, 10), batch = argc > 5 ? strtoul(argv[5], NULL, 10) : N;
  int repeat = argc > 6 ? atoi(argv[6]) : 1;
  if (!batch) batch = 1;
  ng_model *m = NULL;
  ng_nn_work *w = NULL;
  if (ng_model_read(argv[1], &m) != NG_OK) {
    fprintf(stderr, "onnx_run: %s\n", ng_errmsg());
    return 1;
  }
  size_t in = ng_model_input_size(m), out = ng_model_output_size(m);
  printf("parameters %zu input %zu output %zu\n", ng_model_nparams(m), in, out);
  float *x = malloc(N * in * sizeof *x), *y = malloc(N * out * sizeof *y);
  FILE *f = fopen(argv[2], "rb");
  if (!x || !y || !f || fread(x, sizeof *x, N * in, f) != N * in) {
    fprintf(stderr, "onnx_run: cannot read %zu x %zu floats from %s\n", N, in, argv[2]);
    return 1;
  }
  fclose(f);
  if (ng_nn_work_create(m, batch, false, &w) != NG_OK) {
    fprintf(stderr, "onnx_run: %s\n", ng_errmsg());
    return 1;
  }
  double *times = malloc((size_t)(repeat > 0 ? repeat : 1) * sizeof *times);
  for (int rep = 0; rep < (repeat > 0 ? repeat : 1); rep++) {
    double t0 = now();
    for (size_t s = 0; s < N; s += batch) {
      size_t b = N - s < batch ? N - s : batch;
      const float *o;
      if (ng_nn_forward(m, ng_model_params_const(m), w, x + s * in, b, &o) != NG_OK) {
        fprintf(stderr, "onnx_run: %s\n", ng_errmsg());
        return 1;
      }
      memcpy(y + s * out, o, b * out * sizeof *y);
    }
    times[rep] = now() - t0;
  }
  if (repeat > 1) {
    qsort(times, (size_t)repeat, sizeof *times, cmp);
    printf("median %.9f\n", times[repeat / 2]);
  }
  f = fopen(argv[4], "wb");
  if (!f || fwrite(y, sizeof *y, N * out, f) != N * out || fclose(f) != 0) {
    fprintf(stderr, "onnx_run: cannot write %s\n", argv[4]);
    return 1;
  }
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
  free(x);
  free(y);
  free(times);
  return 0;
}
