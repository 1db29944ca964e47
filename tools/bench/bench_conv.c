/* Throughput of the convolution and pooling kernels on LeNet-5's feature extractor (28x28 input: conv 6@5x5,
 * maxpool 2, conv 16@5x5, maxpool 2), layer by layer, forward and backward, one BLAS thread.
 *
 *   OPENBLAS_NUM_THREADS=1 bench_conv [--batch 256] [--reps 50]
 *
 * Prints the best time of each kernel call over the repetitions as samples per second, and the total. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/nn/kernels.h" /* private to the library: the kernels are not in include/ */
#include "nograd/timer.h"

enum { NSTAGE = 8 };
static const char *stage_name[NSTAGE] = {"conv1 fwd", "pool1 fwd", "conv2 fwd", "pool2 fwd",
                                         "pool2 bwd", "conv2 bwd", "pool1 bwd", "conv1 bwd (no dx)"};

static float *alloc_fill(size_t n, unsigned *seed) {
  float *v = malloc(n * sizeof *v);
  if (!v) {
    fprintf(stderr, "bench_conv: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < n; i++) {
    *seed = *seed * 1103515245u + 12345u;
    v[i] = (float)((*seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
  return v;
}

int main(int argc, char **argv) {
  size_t B = 256;
  int reps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--batch"))
      B = (size_t)strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--reps"))
      reps = (int)strtol(argv[i + 1], NULL, 10);
  }
  unsigned seed = 1;
  size_t ncol = ng_conv2d_col_size(B, 1, 28, 28, 5, 1, 0), ncol2 = ng_conv2d_col_size(B, 6, 12, 12, 5, 1, 0);
  if (ncol2 > ncol) ncol = ncol2;
  float *x = alloc_fill(B * 784, &seed), *y1 = alloc_fill(B * 6 * 576, &seed),
        *p1 = alloc_fill(B * 6 * 144, &seed);
  float *dp1 = alloc_fill(B * 6 * 144, &seed), *y2 = alloc_fill(B * 16 * 64, &seed);
  float *p2 = alloc_fill(B * 16 * 16, &seed), *col = alloc_fill(ncol, &seed);
  float *w1 = alloc_fill(150, &seed), *b1 = alloc_fill(6, &seed), *w2 = alloc_fill(2400, &seed);
  float *b2 = alloc_fill(16, &seed), *dw1 = alloc_fill(150, &seed), *db1 = alloc_fill(6, &seed);
  float *dw2 = alloc_fill(2400, &seed), *db2 = alloc_fill(16, &seed);
  int32_t *a1 = malloc(B * 6 * 144 * sizeof *a1), *a2 = malloc(B * 16 * 16 * sizeof *a2);
  double best[NSTAGE];
  for (int s = 0; s < NSTAGE; s++)
    best[s] = 1e30;
  for (int r = 0; r < reps; r++) {
    double t[NSTAGE + 1];
    t[0] = ng_time_now();
    ng_conv2d_forward(x, B, 1, 28, 28, w1, b1, 6, 5, 1, 0, y1, col);
    t[1] = ng_time_now();
    ng_pool_forward(NG_POOL_MAX, y1, B, 6, 24, 24, 2, 2, p1, a1);
    t[2] = ng_time_now();
    ng_conv2d_forward(p1, B, 6, 12, 12, w2, b2, 16, 5, 1, 0, y2, col);
    t[3] = ng_time_now();
    ng_pool_forward(NG_POOL_MAX, y2, B, 16, 8, 8, 2, 2, p2, a2);
    t[4] = ng_time_now();
    ng_pool_backward(NG_POOL_MAX, p2, B, 16, 8, 8, 2, 2, a2, y2);
    t[5] = ng_time_now();
    ng_conv2d_backward(p1, B, 6, 12, 12, w2, 16, 5, 1, 0, y2, dp1, dw2, db2, col);
    t[6] = ng_time_now();
    ng_pool_backward(NG_POOL_MAX, dp1, B, 6, 24, 24, 2, 2, a1, y1);
    t[7] = ng_time_now();
    ng_conv2d_backward(x, B, 1, 28, 28, w1, 6, 5, 1, 0, y1, NULL, dw1, db1, col);
    t[8] = ng_time_now();
    for (int s = 0; s < NSTAGE; s++) {
      if (t[s + 1] - t[s] < best[s]) best[s] = t[s + 1] - t[s];
    }
  }
  double fwd = 0, all = 0;
  for (int s = 0; s < NSTAGE; s++) {
    printf("%-18s %10.0f samples/s  %8.3f ms\n", stage_name[s], (double)B / best[s], 1e3 * best[s]);
    if (s < 4) fwd += best[s];
    all += best[s];
  }
  printf("%-18s %10.0f samples/s\n%-18s %10.0f samples/s\n", "forward", (double)B / fwd, "forward+backward",
         (double)B / all);
  free(a2), free(a1), free(db2), free(dw2), free(db1), free(dw1), free(b2), free(w2), free(b1), free(w1);
  free(col), free(p2), free(y2), free(dp1), free(p1), free(y1), free(x);
  return 0;
}
