/* Throughput of a model's forward pass (evaluation workspace) and of a training step's forward + backward
 * (training workspace, summed cross-entropy and its gradient, the parameter gradient cleared first), at one
 * batch size, one BLAS thread. The PyTorch counterpart is bench_nn_torch.py; run_nn_bench.sh runs both.
 *
 *   bench_nn [--model mlp|lenet|FILE.h5] [--batch 256] [--reps 30] [--warmup 3] [--layers]
 *
 * mlp is 784-512-512-10 (relu between the dense layers), lenet is LeNet-5 on 1x28x28 (conv 6@5x5, relu,
 * maxpool 2, conv 16@5x5, relu, maxpool 2, flatten, dense 120, relu, dense 84, relu, dense 10), initialised
 * by ng_model_init (PyTorch's default scheme, seed 1). A FILE.h5 is a nograd model file, e.g. one that
 * bench_nn_torch.py --write-models wrote, so that both programs time the same weights.
 *
 * Each repetition times one forward pass, one training step and, when the model has dense layers, one bare
 * cblas_sgemm per dense layer of the shape and call form the dense layer uses (B x in times [out x in]^T):
 * interleaved, so that a noisy machine slows them alike. Prints the median of each as samples per second.
 * The sgemm line is the in-run sgemm throughput on those shapes and the share of it the forward pass reaches
 * (the median over the repetitions of sgemm time / forward time, two timings made a few ms apart; for the
 * MLP the rest is the bias + relu pass and the plan's overhead).
 *
 * --layers adds a per-layer table. Each prefix of the model (layers 1..i, the backward pass fed a random
 * output gradient) is timed, all prefixes in turn within each repetition; a layer's cost is the median over
 * the repetitions of its prefix's time minus the previous prefix's. A relu that the dense layer before it
 * absorbs shows up in the relu's row (the prefix that ends at the dense layer does the bias pass alone); a
 * prefix ending inside a residual group is not a model and is skipped. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/loss.h"
#include "nograd/nn.h"
#include "nograd/timer.h"

static const char *mlp_spec =
    "input 784\n"
    "dense fc1 512\nrelu\n"
    "dense fc2 512\nrelu\n"
    "dense fc3 10\n";

static const char *lenet_spec =
    "input 1 28 28\n"
    "conv2d conv1 6 5\nrelu\nmaxpool 2\n"
    "conv2d conv2 16 5\nrelu\nmaxpool 2\n"
    "flatten\n"
    "dense fc1 120\nrelu\n"
    "dense fc2 84\nrelu\n"
    "dense fc3 10\n";

static void die(const char *what) {
  fprintf(stderr, "bench_nn: %s: %s\n", what, ng_errmsg());
  exit(1);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "bench_nn: out of memory\n");
    exit(1);
  }
  return p;
}

static unsigned lcg(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 8;
}

static void fill(float *v, size_t n, unsigned *seed, float lo, float hi) {
  for (size_t i = 0; i < n; i++)
    v[i] = lo + (hi - lo) * (float)(lcg(seed) & 0xffff) / 65536.0f;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The spec's layer lines (comments and blank lines dropped), the input line first. */
static size_t spec_lines(const char *spec, char ***out) {
  size_t cap = 16, n = 0;
  char **lines = xmalloc(cap * sizeof *lines);
  const char *p = spec;
  while (*p) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char *s = xmalloc(len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    char *hash = strchr(s, '#');
    if (hash) *hash = '\0';
    size_t a = 0, b = strlen(s);
    while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r'))
      a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r'))
      b--;
    memmove(s, s + a, b - a);
    s[b - a] = '\0';
    if (*s) {
      if (n == cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
      lines[n++] = s;
    } else {
      free(s);
    }
    p = e ? e + 1 : p + len;
  }
  *out = lines;
  return n;
}

/* One model set up for timing: its inputs, labels or a random output gradient, both workspaces, and the bare
 * sgemms of its dense layers. */
typedef struct {
  ng_model *m;
  size_t B, out, np;
  float *x, *dout, *grad;
  int32_t *y;
  ng_nn_work *we, *wt;
  bool dout_random;         /* backpropagate a random output gradient instead of the cross-entropy's */
  size_t nd, dshape[64][2]; /* dense layers: out, in */
  float *sa, *sc;
  double dense_flops; /* of those sgemms, per batch */
} bench;

static void bench_init(bench *b, ng_model *m, size_t B, bool with_sgemm, bool dout_random) {
  memset(b, 0, sizeof *b);
  size_t in = ng_model_input_size(m);
  b->m = m;
  b->B = B;
  b->out = ng_model_output_size(m);
  b->np = ng_model_nparams(m);
  b->dout_random = dout_random;
  unsigned seed = 12345;
  b->x = xmalloc(B * in * sizeof *b->x);
  b->dout = xmalloc(B * b->out * sizeof *b->dout);
  b->grad = xmalloc(b->np * sizeof *b->grad);
  b->y = xmalloc(B * sizeof *b->y);
  fill(b->x, B * in, &seed, 0.0f, 1.0f);
  fill(b->dout, B * b->out, &seed, -1.0f, 1.0f);
  for (size_t i = 0; i < B; i++)
    b->y[i] = (int32_t)(lcg(&seed) % (b->out ? b->out : 1));
  if (ng_nn_work_create(m, B, false, &b->we) || ng_nn_work_create(m, B, true, &b->wt)) die("workspace");
  if (!with_sgemm) return;
  /* The dense layers' shapes, from the tensor index: the 2-d NAME.weight tensors, [out, in]. */
  size_t maxa = 0, maxc = 0;
  for (size_t t = 0; t < ng_model_ntensors(m) && b->nd < 64; t++) {
    const char *name;
    size_t off, ndim, shape[4];
    ng_model_tensor(m, t, &name, &off, &ndim, shape);
    size_t len = strlen(name);
    if (ndim == 2 && len > 7 && !strcmp(name + len - 7, ".weight")) {
      b->dshape[b->nd][0] = shape[0];
      b->dshape[b->nd][1] = shape[1];
      if (B * shape[1] > maxa) maxa = B * shape[1];
      if (B * shape[0] > maxc) maxc = B * shape[0];
      b->dense_flops += 2.0 * (double)B * (double)shape[0] * (double)shape[1];
      b->nd++;
    }
  }
  if (b->nd) {
    b->sa = xmalloc(maxa * sizeof *b->sa);
    b->sc = xmalloc(maxc * sizeof *b->sc);
    fill(b->sa, maxa, &seed, 0.0f, 1.0f);
  }
}

static void bench_free(bench *b) {
  free(b->sc), free(b->sa);
  ng_nn_work_destroy(&b->wt);
  ng_nn_work_destroy(&b->we);
  free(b->y), free(b->grad), free(b->dout), free(b->x);
}

/* One repetition: t[0] a forward pass, t[1] a training step, t[2] the bare sgemms (seconds). */
static void bench_step(bench *b, double t[3]) {
  const ng_model *m = b->m;
  const float *params = ng_model_params_const(m), *o;
  size_t B = b->B;
  double t0 = ng_time_now();
  if (ng_nn_forward(m, params, b->we, b->x, B, &o)) die("forward");
  double t1 = ng_time_now();
  memset(b->grad, 0, b->np * sizeof *b->grad);
  if (ng_nn_forward(m, params, b->wt, b->x, B, &o)) die("training forward");
  if (!b->dout_random) ng_loss_cross_entropy(o, b->y, B, b->out, b->dout);
  if (ng_nn_backward(m, params, b->wt, b->dout, b->grad)) die("backward");
  double t2 = ng_time_now();
  for (size_t d = 0; d < b->nd; d++) /* the weights: any out x in block of the parameters will do */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)b->dshape[d][0], (int)b->dshape[d][1],
                1.0f, b->sa, (int)b->dshape[d][1], params, (int)b->dshape[d][1], 0.0f, b->sc,
                (int)b->dshape[d][0]);
  double t3 = ng_time_now();
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  t[2] = t3 - t2;
}

/* Times each prefix of the model (the input line and layers 1..i), all of them in turn within each
 * repetition so that the machine's load hits them alike, and prints the median over the repetitions of the
 * difference between consecutive prefixes. */
static void per_layer(const ng_model *full, size_t B, int reps, int warmup) {
  char **lines;
  size_t n = spec_lines(ng_model_spec_text(full), &lines);
  const float *fp = ng_model_params_const(full);
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += strlen(lines[i]) + 1;
  char *spec = xmalloc(total + 1);
  bench *bs = xmalloc(n * sizeof *bs);
  bool *ok = xmalloc(n * sizeof *ok);
  ng_model **ms = xmalloc(n * sizeof *ms);
  for (size_t i = 1; i < n; i++) {
    spec[0] = '\0';
    for (size_t j = 0; j <= i; j++) {
      strcat(spec, lines[j]);
      strcat(spec, "\n");
    }
    ms[i] = NULL;
    ok[i] = ng_model_from_spec(spec, &ms[i]) == NG_OK;
    if (!ok[i]) continue;
    /* The prefix's tensors come first in the full model's vector, in the same order. */
    memcpy(ng_model_params(ms[i]), fp, ng_model_nparams(ms[i]) * sizeof *fp);
    bench_init(&bs[i], ms[i], B, false, true);
  }
  /* cum[i][k][r]: prefix i, k = forward / training step, repetition r; d: the same minus the previous prefix.
   */
  double *cum = xmalloc(n * 2 * (size_t)reps * sizeof *cum), *d = xmalloc(n * 2 * (size_t)reps * sizeof *d);
  for (int r = -warmup; r < reps; r++) {
    double prev[2] = {0, 0};
    for (size_t i = 1; i < n; i++) {
      if (!ok[i]) continue;
      double t[3];
      bench_step(&bs[i], t);
      if (r < 0) continue;
      for (int k = 0; k < 2; k++) {
        cum[(i * 2 + (size_t)k) * (size_t)reps + (size_t)r] = t[k];
        d[(i * 2 + (size_t)k) * (size_t)reps + (size_t)r] = t[k] - prev[k];
        prev[k] = t[k];
      }
    }
  }
  printf(
      "\nper layer: prefix 1..i minus prefix 1..i-1, all prefixes in turn in each repetition; median of %d, "
      "ms per batch of %zu\n",
      reps, B);
  printf("  %-3s %-28s %9s %9s %9s %9s\n", "i", "layer", "fwd", "fwd cum", "f+b", "f+b cum");
  for (size_t i = 1; i < n; i++) {
    char name[29];
    snprintf(name, sizeof name, "%s", lines[i]);
    if (!ok[i]) {
      printf("  %-3zu %-28s %9s\n", i, name, "(not a model alone)");
      continue;
    }
    double v[4];
    for (int k = 0; k < 2; k++) {
      v[2 * k] = median(d + (i * 2 + (size_t)k) * (size_t)reps, reps);
      v[2 * k + 1] = median(cum + (i * 2 + (size_t)k) * (size_t)reps, reps);
    }
    printf("  %-3zu %-28s %9.3f %9.3f %9.3f %9.3f\n", i, name, 1e3 * v[0], 1e3 * v[1], 1e3 * v[2],
           1e3 * v[3]);
    bench_free(&bs[i]);
    ng_model_destroy(&ms[i]);
  }
  free(d), free(cum), free(ms), free(ok), free(bs), free(spec);
  for (size_t i = 0; i < n; i++)
    free(lines[i]);
  free(lines);
}

int main(int argc, char **argv) {
  const char *model = "mlp";
  size_t B = 256;
  int reps = 30, warmup = 3, layers = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--layers")) {
      layers = 1;
    } else if (i + 1 < argc && !strcmp(argv[i], "--model")) {
      model = argv[++i];
    } else if (i + 1 < argc && !strcmp(argv[i], "--batch")) {
      B = (size_t)strtoul(argv[++i], NULL, 10);
    } else if (i + 1 < argc && !strcmp(argv[i], "--reps")) {
      reps = (int)strtol(argv[++i], NULL, 10);
    } else if (i + 1 < argc && !strcmp(argv[i], "--warmup")) {
      warmup = (int)strtol(argv[++i], NULL, 10);
    } else {
      fprintf(stderr,
              "usage: bench_nn [--model mlp|lenet|FILE.h5] [--batch B] [--reps R] [--warmup W] "
              "[--layers]\n");
      return 2;
    }
  }
  if (B == 0 || reps < 1 || warmup < 0) {
    fprintf(stderr, "bench_nn: --batch and --reps must be at least 1\n");
    return 2;
  }
  openblas_set_num_threads(1);
  ng_model *m = NULL;
  if (!strcmp(model, "mlp") || !strcmp(model, "lenet")) {
    if (ng_model_from_spec(!strcmp(model, "mlp") ? mlp_spec : lenet_spec, &m)) die(model);
    ng_model_init(m, 1);
  } else if (ng_model_read(model, &m)) {
    die(model);
  }
  bench b;
  bench_init(&b, m, B, true, false);
  double *tf = xmalloc((size_t)reps * sizeof *tf), *tt = xmalloc((size_t)reps * sizeof *tt),
         *ts = xmalloc((size_t)reps * sizeof *ts), *tq = xmalloc((size_t)reps * sizeof *tq);
  for (int r = -warmup; r < reps; r++) {
    double t[3];
    bench_step(&b, t);
    if (r < 0) continue;
    tf[r] = t[0];
    tt[r] = t[1];
    ts[r] = t[2];
    tq[r] = t[2] / t[0];
  }
  double fwd = median(tf, reps), train = median(tt, reps);
  printf("model %s: %zu parameters, batch %zu, median of %d repetitions, 1 BLAS thread\n", model,
         ng_model_nparams(m), B, reps);
  printf("forward            %12.0f samples/s  %9.3f ms/batch\n", (double)B / fwd, 1e3 * fwd);
  printf("forward+backward   %12.0f samples/s  %9.3f ms/batch\n", (double)B / train, 1e3 * train);
  if (b.nd) {
    double sg = median(ts, reps);
    printf(
        "sgemm              %12.0f samples/s  %9.3f ms/batch  %.1f GFLOP/s; forward %.1f GFLOP/s = %.3f of "
        "sgemm\n",
        (double)B / sg, 1e3 * sg, b.dense_flops / sg * 1e-9, b.dense_flops / fwd * 1e-9, median(tq, reps));
  }
  free(tq), free(ts), free(tt), free(tf);
  bench_free(&b);
  if (layers) per_layer(m, B, reps, warmup);
  ng_model_destroy(&m);
  return 0;
}
