/* Knobs (src/nn/knobs.c) and the decision threshold stored with a model (src/nn/model.c, model_io.c,
 * src/app/eval.c): parsing (dimension, starting point, bounds, coordinate names) and every refusal, each
 * message naming its item; apply at x0 giving the base parameters bit for bit; a slice setting exactly its
 * elements; scale:, temperature and offsets checked through forward passes against the base output times s,
 * over T plus o (and under softmax); the fold rounding once from double; the threshold knob; the threshold's
 * round trip through a model file, clone and h5py, and refused when damaged; `nograd eval`'s threshold_error
 * using the stored threshold unless --threshold is given; the --list-params table; no allocation in apply.
 * One rank: MPI_Init in main, for ng_app_eval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <malloc.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/seal.h"
#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/knobs.h"
#include "nograd/loss.h"
#include "nograd/nn.h"
#include "nograd/rng.h"
#include "nograd/train.h"

static char tmpdir[256];

/* 3 classes: tensors conv1.weight [4,1,3,3], conv1.bias [4], bn1.{weight,bias,running_mean,running_var} [4],
 * fc1.weight [8,36], fc1.bias [8], fc2.weight [3,8], fc2.bias [3]. */
static const char *const CNN =
    "input 1 6 6\n"
    "conv2d conv1 4 3 padding=1\n"
    "relu\n"
    "batchnorm bn1\n"
    "maxpool 2\n"
    "flatten\n"
    "dense fc1 8\n"
    "relu\n"
    "dense fc2 3\n"
    "softmax\n";
static const char *const MLP = "input 6\ndense fc1 8\ntanh\ndense fc2 4\n";
static const char *const MLP_SOFTMAX = "input 6\ndense fc1 8\ntanh\ndense fc2 4\nsoftmax\n";
static const char *const CONV_ONLY = "input 2 5 5\nconv2d conv1 3 3 padding=1\n";
static const char *const BINARY = "input 5\ndense fc1 6\ntanh\ndense out 2\n";

static const char *tpath(const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nograd_test_knobs_XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A model with PyTorch's initialisation and, for the norms, parameters that are not 1 and 0. */
static ng_model *build(const char *spec, uint64_t seed) {
  ng_model *m = NULL;
  check(ng_model_from_spec(spec, &m), spec);
  ng_model_init(m, seed);
  size_t off, shape[4];
  if (ng_model_find(m, "bn1.running_var", &off, NULL, shape) == NG_OK)
    for (size_t i = 0; i < 4 * shape[0]; i++) /* bn1's four tensors */
      ng_model_params(m)[off - 3 * shape[0] + i] = 0.5f + 0.125f * (float)i;
  ng_error_clear();
  return m;
}

static ng_knobs *parse(const ng_model *m, const char *spec) {
  ng_knobs *k = NULL;
  check(ng_knobs_parse(m, spec, &k), spec);
  return k;
}

static float *input(size_t n, uint64_t seed) {
  float *x = malloc(n * sizeof *x);
  ng_rng r;
  ng_rng_init(&r, seed, NG_RNG_DATA, 0, 0);
  for (size_t i = 0; i < n; i++)
    x[i] = (float)ng_rng_normal(&r);
  return x;
}

/* Forward pass of `batch` rows with params; the output copied into a new array. */
static float *forward(const ng_model *m, const float *params, const float *x, size_t batch) {
  ng_nn_work *w = NULL;
  check(ng_nn_work_create(m, batch, false, &w), "work");
  const float *out;
  check(ng_nn_forward(m, params, w, x, batch, &out), "forward");
  size_t n = batch * ng_model_output_size(m);
  float *copy = malloc(n * sizeof *copy);
  memcpy(copy, out, n * sizeof *copy);
  ng_nn_work_destroy(&w);
  return copy;
}

/* Bit equality of two floats (-0 and 0 differ, a NaN equals itself). */
static bool same_bits(float a, float b) {
  uint32_t x, y;
  memcpy(&x, &a, sizeof x);
  memcpy(&y, &b, sizeof y);
  return x == y;
}

static void assert_close(double got, double want, double rel, const char *what, size_t i) {
  if (!(fabs(got - want) <= rel * (1.0 + fabs(want))))
    fail_msg("%s[%zu]: got %.9g, want %.9g", what, i, got, want);
}

/* ---- Parsing ---- */

static void test_parse(void **state) {
  (void)state;
  ng_model *m = build(CNN, 1);
  ng_knobs *k = parse(m, " fc2.bias, conv1.weight[1:3] ,scale:fc1,temperature,offsets");
  size_t n = ng_knobs_dim(k);
  assert_int_equal(n, 3 + 2 * 9 + 1 + 1 + 3);
  assert_false(ng_knobs_has_threshold(k));
  double x0[26], lo[26], hi[26];
  ng_knobs_x0(k, x0);
  ng_knobs_bounds(k, lo, hi);
  size_t off;
  check(ng_model_find(m, "fc2.bias", &off, NULL, NULL), "find");
  for (size_t i = 0; i < 3; i++)
    assert_true(x0[i] == (double)ng_model_params_const(m)[off + i]);
  check(ng_model_find(m, "conv1.weight", &off, NULL, NULL), "find");
  for (size_t i = 0; i < 18; i++)
    assert_true(x0[3 + i] == (double)ng_model_params_const(m)[off + 9 + i]);
  assert_true(x0[21] == 1.0 && x0[22] == 1.0);
  for (size_t i = 23; i < 26; i++)
    assert_true(x0[i] == 0.0);
  for (size_t i = 0; i < n; i++) {
    bool positive = i == 21 || i == 22;
    assert_true(lo[i] == (positive ? NG_KNOBS_POS_MIN : -INFINITY));
    assert_true(hi[i] == (positive ? NG_KNOBS_POS_MAX : INFINITY));
  }
  char buf[64];
  static const struct {
    size_t i;
    const char *name;
  } names[] = {{0, "fc2.bias[0]"},
               {2, "fc2.bias[2]"},
               {3, "conv1.weight[1,0,0,0]"},
               {8, "conv1.weight[1,0,1,2]"},
               {20, "conv1.weight[2,0,2,2]"},
               {21, "scale:fc1"},
               {22, "temperature"},
               {23, "offsets[0]"},
               {25, "offsets[2]"},
               {26, "?"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    assert_string_equal(ng_knobs_coord_name(k, names[i].i, buf, sizeof buf), names[i].name);
  assert_string_equal(ng_knobs_coord_name(k, 20, buf, 8), "conv1.w"); /* cut, still terminated */
  ng_knobs_destroy(&k);
  ng_knobs_destroy(&k); /* accepts NULL */
  assert_null(k);

  /* Open-ended slices and a row of a 1-D tensor. */
  k = parse(m, "fc1.weight[6:],fc1.bias[:2],bn1.running_mean[3]");
  assert_int_equal(ng_knobs_dim(k), (size_t)2 * 36 + 2 + 1);
  assert_string_equal(ng_knobs_coord_name(k, 0, buf, sizeof buf), "fc1.weight[6,0]");
  assert_string_equal(ng_knobs_coord_name(k, 71, buf, sizeof buf), "fc1.weight[7,35]");
  assert_string_equal(ng_knobs_coord_name(k, 73, buf, sizeof buf), "fc1.bias[1]");
  assert_string_equal(ng_knobs_coord_name(k, 74, buf, sizeof buf), "bn1.running_mean[3]");
  ng_knobs_destroy(&k);
  ng_model_destroy(&m);
}

static void test_refusals(void **state) {
  (void)state;
  ng_model *cnn = build(CNN, 1), *conv = build(CONV_ONLY, 2),
           *sig = build("input 3\ndense fc1 2\nsigmoid\n", 3);
  static const struct {
    const char *spec;
    const char *needles[3];
    int model; /* 0 CNN, 1 CONV_ONLY, 2 dense + sigmoid */
    int status;
  } cases[] = {
      {"", {"--params: empty", "temperature"}, 0, NG_EINVAL},
      {"  ", {"--params: empty"}, 0, NG_EINVAL},
      {"fc2.bais", {"--params 'fc2.bais'", "did you mean fc2.bias?", "--list-params"}, 0, NG_ENOTFOUND},
      {"nothing.here", {"'nothing.here'", "conv1.weight, conv1.bias", "--list-params"}, 0, NG_ENOTFOUND},
      {"tempreature", {"'tempreature'", "did you mean temperature?"}, 0, NG_ENOTFOUND},
      {"conv1.weight[0:9]",
       {"'conv1.weight[0:9]'", "first dimension of conv1.weight has 4 rows"},
       0,
       NG_EINVAL},
      {"conv1.weight[4]", {"'conv1.weight[4]'", "has 4 rows (0 to 3)"}, 0, NG_EINVAL},
      {"conv1.weight[2:2]", {"'conv1.weight[2:2]'", "empty slice"}, 0, NG_EINVAL},
      {"conv1.weight[a:2]", {"'conv1.weight[a:2]'", "malformed slice start"}, 0, NG_EINVAL},
      {"conv1.weight[1", {"'conv1.weight[1'", "malformed slice"}, 0, NG_EINVAL},
      {"conv1.weight[1]x", {"'conv1.weight[1]x'", "malformed slice"}, 0, NG_EINVAL},
      {"conv1.weight[-1]", {"'conv1.weight[-1]'", "malformed row"}, 0, NG_EINVAL},
      {"[1:2]", {"'[1:2]'", "tensor name"}, 0, NG_EINVAL},
      {"fc2.bias,,temperature", {"'fc2.bias,,temperature'", "empty item 2"}, 0, NG_EINVAL},
      {"fc2.bias,", {"empty item 2"}, 0, NG_EINVAL},
      {"scale:relu", {"'scale:relu'", "relu layer has no weights", "conv1, fc1, fc2"}, 0, NG_EINVAL},
      {"scale:bn1", {"'scale:bn1'", "batchnorm", "dense or conv2d"}, 0, NG_EINVAL},
      {"scale:fc9", {"'scale:fc9'", "no layer 'fc9'", "conv1, fc1, fc2"}, 0, NG_ENOTFOUND},
      {"scale:", {"'scale:'", "expected scale:LAYER"}, 0, NG_EINVAL},
      {"fc1", {"'fc1'", "is a layer, not a tensor", "scale:fc1"}, 0, NG_ENOTFOUND},
      {"bn1", {"'bn1'", "batchnorm layer", "bn1.weight"}, 0, NG_ENOTFOUND},
      {"threshold", {"'threshold'", "3 outputs", "binary"}, 0, NG_EINVAL},
      {"temperature,fc2.bias,temperature", {"--params 'temperature': given twice"}, 0, NG_EINVAL},
      {"scale:fc1,offsets,scale:fc1", {"'scale:fc1': given twice"}, 0, NG_EINVAL},
      {"conv1.weight[0:2],conv1.weight[1:3]",
       {"'conv1.weight[1:3]'", "overlaps 'conv1.weight[0:2]'", "rows 1 to 1"},
       0,
       NG_EINVAL},
      {"fc2.bias[1],fc2.bias", {"'fc2.bias'", "overlaps 'fc2.bias[1]'"}, 0, NG_EINVAL},
      {"fc2.bias[0:2],fc2.bias[2]", {NULL}, 0, NG_OK}, /* adjacent, not overlapping */
      {"temperature",
       {"'temperature'", "conv2d layer (spec line 2)", "not from a dense layer"},
       1,
       NG_EINVAL},
      {"offsets", {"'offsets'", "conv2d layer"}, 1, NG_EINVAL},
      {"scale:conv1,conv1.bias", {NULL}, 1, NG_OK},
      {"offsets", {"'offsets'", "sigmoid layer (spec line 3)"}, 2, NG_EINVAL},
      {"threshold", {NULL}, 2, NG_OK}, /* 2 outputs: a binary classifier */
  };
  const ng_model *models[3] = {cnn, conv, sig};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ng_knobs *k = (ng_knobs *)(void *)&cases; /* not NULL: a failure must clear it */
    ng_error_clear();
    int st = ng_knobs_parse(models[cases[i].model], cases[i].spec, &k);
    if (st != cases[i].status)
      fail_msg("'%s': status %d (%s), expected %d", cases[i].spec, st, ng_errmsg(), cases[i].status);
    if (st != NG_OK) assert_null(k);
    for (size_t j = 0; j < 3 && cases[i].needles[j]; j++)
      assert_contains(ng_errmsg(), cases[i].needles[j]);
    ng_knobs_destroy(&k);
  }
  ng_model_destroy(&sig);
  ng_model_destroy(&conv);
  ng_model_destroy(&cnn);
}

/* ---- Applying ---- */

static void test_x0_identity(void **state) {
  (void)state;
  ng_model *m = build(CNN, 4);
  ng_knobs *k = parse(m,
                      "conv1.weight[1:3],conv1.bias,bn1.running_var,fc1.weight[2],scale:conv1,scale:fc1,"
                      "scale:fc2,temperature,offsets,fc2.weight[0:2],fc2.bias[1]");
  size_t n = ng_knobs_dim(k), np = ng_model_nparams(m);
  double *x = malloc(n * sizeof *x), thr = 0;
  float *p = malloc(np * sizeof *p);
  ng_knobs_x0(k, x);
  memset(p, 0xff, np * sizeof *p);
  ng_knobs_apply(k, ng_model_params_const(m), x, p, &thr);
  assert_memory_equal(p, ng_model_params_const(m), np * sizeof *p);
  assert_true(isnan(thr));
  /* No allocation per candidate. */
  struct mallinfo2 before = mallinfo2();
  for (int r = 0; r < 100; r++)
    ng_knobs_apply(k, ng_model_params_const(m), x, p, NULL);
  struct mallinfo2 after = mallinfo2();
  assert_int_equal(before.uordblks, after.uordblks);
  free(p);
  free(x);
  ng_knobs_destroy(&k);
  ng_model_destroy(&m);
}

static void test_slice(void **state) {
  (void)state;
  ng_model *m = build(CNN, 5);
  ng_knobs *k = parse(m, "fc1.weight[2:4],conv1.bias[1],bn1.bias");
  size_t n = ng_knobs_dim(k), np = ng_model_nparams(m);
  assert_int_equal(n, 72 + 1 + 4);
  double *x = malloc(n * sizeof *x);
  float *p = malloc(np * sizeof *p);
  ng_knobs_x0(k, x);
  for (size_t i = 0; i < n; i++)
    x[i] += 0.25 * (double)(i + 1);
  ng_knobs_apply(k, ng_model_params_const(m), x, p, NULL);
  size_t w, cb, bb;
  check(ng_model_find(m, "fc1.weight", &w, NULL, NULL), "find");
  check(ng_model_find(m, "conv1.bias", &cb, NULL, NULL), "find");
  check(ng_model_find(m, "bn1.bias", &bb, NULL, NULL), "find");
  const float *base = ng_model_params_const(m);
  size_t set = 0;
  for (size_t e = 0; e < np; e++) {
    float want = base[e];
    if (e >= w + (size_t)2 * 36 && e < w + (size_t)4 * 36)
      want = (float)x[e - (w + (size_t)2 * 36)];
    else if (e == cb + 1)
      want = (float)x[72];
    else if (e >= bb && e < bb + 4)
      want = (float)x[73 + e - bb];
    set += want != base[e];
    if (!same_bits(p[e], want)) fail_msg("parameter %zu: got %.9g, want %.9g", e, p[e], want);
  }
  assert_int_equal(set, n);
  free(p);
  free(x);
  ng_knobs_destroy(&k);
  ng_model_destroy(&m);
}

static void test_scale(void **state) {
  (void)state;
  static const struct {
    const char *spec, *knobs;
  } cases[] = {{CONV_ONLY, "scale:conv1"}, {MLP, "scale:fc2"}};
  for (size_t c = 0; c < 2; c++) {
    ng_model *m = build(cases[c].spec, 6 + c);
    ng_knobs *k = parse(m, cases[c].knobs);
    assert_int_equal(ng_knobs_dim(k), 1);
    size_t np = ng_model_nparams(m), batch = 7, nout = batch * ng_model_output_size(m);
    float *p = malloc(np * sizeof *p), *x = input(batch * ng_model_input_size(m), 10 + c);
    double s = 1.7;
    ng_knobs_apply(k, ng_model_params_const(m), &s, p, NULL);
    /* The layer's weight and bias are multiplied (rounded once); nothing else moves. */
    const char *layer = strchr(cases[c].knobs, ':') + 1;
    char name[32];
    size_t lo, hi, shape[4];
    snprintf(name, sizeof name, "%s.weight", layer);
    check(ng_model_find(m, name, &lo, NULL, NULL), name);
    snprintf(name, sizeof name, "%s.bias", layer);
    check(ng_model_find(m, name, &hi, NULL, shape), name);
    hi += shape[0];
    for (size_t e = 0; e < np; e++) {
      double b = ng_model_params_const(m)[e];
      float want = e >= lo && e < hi ? (float)(b * s) : (float)b;
      if (!same_bits(p[e], want)) fail_msg("%s: parameter %zu", cases[c].knobs, e);
    }
    float *y0 = forward(m, ng_model_params_const(m), x, batch), *y1 = forward(m, p, x, batch);
    for (size_t i = 0; i < nout; i++)
      assert_close(y1[i], s * y0[i], 1e-5, cases[c].knobs, i);
    free(y1);
    free(y0);
    free(x);
    free(p);
    ng_knobs_destroy(&k);
    ng_model_destroy(&m);
  }
}

static void test_temperature_offsets(void **state) {
  (void)state;
  ng_model *m = build(MLP, 8), *ms = NULL;
  check(ng_model_from_spec(MLP_SOFTMAX, &ms), "softmax model"); /* same tensors, same layout */
  ng_knobs *k = parse(m, "temperature,offsets"), *ks = parse(ms, "offsets,temperature");
  assert_int_equal(ng_knobs_dim(k), 5);
  size_t np = ng_model_nparams(m), batch = 9;
  const double xt[5] = {2.5, 0.3, -1.2, 0.05, 2.0}, xs[5] = {0.3, -1.2, 0.05, 2.0, 2.5};
  const double T = 2.5, *o = xt + 1;
  float *p = malloc(np * sizeof *p), *ps = malloc(np * sizeof *ps), *x = input(batch * 6, 12);
  ng_knobs_apply(k, ng_model_params_const(m), xt, p, NULL);
  ng_knobs_apply(ks, ng_model_params_const(m), xs, ps, NULL);
  assert_memory_equal(p, ps, np * sizeof *p); /* the order of the items does not matter */
  float *z = forward(m, ng_model_params_const(m), x, batch), *z1 = forward(m, p, x, batch),
        *pr = forward(ms, p, x, batch);
  for (size_t r = 0; r < batch; r++) {
    double want[4], max = -INFINITY, sum = 0;
    for (size_t j = 0; j < 4; j++) {
      want[j] = z[4 * r + j] / T + o[j];
      assert_close(z1[4 * r + j], want[j], 1e-5, "logits/T + o", 4 * r + j);
      if (want[j] > max) max = want[j];
    }
    for (size_t j = 0; j < 4; j++)
      sum += exp(want[j] - max);
    for (size_t j = 0; j < 4; j++)
      assert_close(pr[4 * r + j], exp(want[j] - max) / sum, 1e-5, "softmax(logits/T + o)", 4 * r + j);
  }
  free(pr);
  free(z1);
  free(z);
  free(x);
  free(ps);
  free(p);
  ng_knobs_destroy(&ks);
  ng_knobs_destroy(&k);

  /* Scale, temperature, offsets and a tensor item on one layer: each parameter rounded once from double. */
  k = parse(m, "offsets,fc2.bias[1],scale:fc2,temperature");
  const double x2[7] = {0.5, -0.25, 1.0 / 3, 0.75, 0.1, 3.0, 0.7}, s = 3.0, t = 0.7;
  p = malloc(np * sizeof *p);
  ng_knobs_apply(k, ng_model_params_const(m), x2, p, NULL);
  size_t w, b;
  check(ng_model_find(m, "fc2.weight", &w, NULL, NULL), "find");
  check(ng_model_find(m, "fc2.bias", &b, NULL, NULL), "find");
  const float *base = ng_model_params_const(m);
  for (size_t e = 0; e < np; e++) {
    float want = base[e];
    if (e >= w && e < w + 32) want = (float)((double)base[e] * s / t);
    if (e >= b && e < b + 4) want = (float)((e == b + 1 ? x2[4] : (double)base[e]) * s / t + x2[e - b]);
    if (!same_bits(p[e], want)) fail_msg("parameter %zu: got %.9g, want %.9g", e, p[e], want);
  }
  free(p);
  ng_knobs_destroy(&k);
  ng_model_destroy(&ms);
  ng_model_destroy(&m);
}

/* ---- The threshold ---- */

static void test_threshold_model(void **state) {
  (void)state;
  ng_model *m = build(BINARY, 9), *r = NULL, *c = NULL;
  const char *path = tpath("thr.h5"), *plain = tpath("plain.h5");
  assert_true(isnan(ng_model_threshold(m)));
  check(ng_model_write(m, plain), "write plain");
  assert_int_equal(ng_model_set_threshold(m, 1.5), NG_EINVAL);
  assert_contains(ng_errmsg(), "[0, 1]");
  assert_int_equal(ng_model_set_threshold(m, -0.0001), NG_EINVAL);
  check(ng_model_set_attr(m, "classes", 2), "classes");
  check(ng_model_set_threshold(m, 0.5), "set");
  check(ng_model_set_threshold(m, 0.3125), "set again");
  assert_true(ng_model_threshold(m) == 0.3125);
  assert_int_equal(ng_model_attr(m, "threshold"), -1); /* not an integer attribute */
  assert_int_equal(ng_model_set_attr(m, "threshold", 1), NG_EINVAL);
  assert_contains(ng_errmsg(), "threshold");
  const double t = 0.1 + 0.2; /* not a float: the file keeps a double */
  check(ng_model_set_threshold(m, t), "set");
  check(ng_model_write(m, path), "write");
  check(ng_model_read(path, &r), "read");
  assert_true(ng_model_threshold(r) == t);
  assert_int_equal(ng_model_attr(r, "classes"), 2);
  assert_memory_equal(ng_model_params_const(r), ng_model_params_const(m),
                      ng_model_nparams(m) * sizeof(float));
  check(ng_model_clone(r, &c), "clone");
  assert_true(ng_model_threshold(c) == t);
  check(ng_model_set_threshold(c, NAN), "clear");
  assert_true(isnan(ng_model_threshold(c)));
  assert_int_equal(ng_model_attr(c, "classes"), 2);
  assert_true(ng_model_threshold(r) == t); /* the clone is a copy */
  ng_model_destroy(&c);
  ng_model_destroy(&r);
  check(ng_model_read(plain, &r), "read a file without threshold");
  assert_true(isnan(ng_model_threshold(r)));
  ng_model_destroy(&r);

  /* h5py sees a float64 attribute; a damaged one is refused with the file and the attribute named. */
  if (access("/usr/bin/python3", X_OK) == 0 && system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") == 0) {
    char cmd[2048];
    const char *bad = tpath("bad.h5"), *badint = tpath("badint.h5");
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c \"import h5py, shutil, numpy as np; g=h5py.File('%s','r')['model']; "
             "assert g.attrs['threshold'].dtype==np.float64 and g.attrs['threshold']==0.1+0.2; "
             "shutil.copy('%s','%s'); shutil.copy('%s','%s'); "
             "h5py.File('%s','r+')['model'].attrs['threshold']=np.float64(1.5); "
             "h5py.File('%s','r+')['model'].attrs['threshold']=np.int64(0)\"",
             path, path, bad, path, badint, bad, badint);
    assert_int_equal(system(cmd), 0);
    /* h5py kept nograd's header but changed the content: the CRC refuses the files, sealed again they meet
     * the threshold checks */
    assert_int_equal(ng_model_read(bad, &r), NG_ECORRUPT);
    assert_contains(ng_errmsg(), "is damaged");
    check(ng__seal_file(bad), "seal");
    check(ng__seal_file(badint), "seal");
    assert_int_equal(ng_model_read(bad, &r), NG_EFORMAT);
    assert_contains(ng_errmsg(), bad);
    assert_contains(ng_errmsg(), "attribute 'threshold' is 1.5");
    assert_int_equal(ng_model_read(badint, &r), NG_EFORMAT);
    assert_contains(ng_errmsg(), "attribute '/model/threshold' holds int64");
  } else {
    print_message("h5py not available: the file-level threshold checks are skipped\n");
  }
  ng_model_destroy(&m);
}

static void test_threshold_knob(void **state) {
  (void)state;
  ng_model *m = build(BINARY, 10);
  ng_knobs *k = parse(m, "threshold,offsets");
  assert_true(ng_knobs_has_threshold(k));
  assert_int_equal(ng_knobs_dim(k), 3);
  double x0[3], lo[3], hi[3], thr = 0;
  ng_knobs_x0(k, x0);
  ng_knobs_bounds(k, lo, hi);
  assert_true(x0[0] == 0.5 && lo[0] == 0 && hi[0] == 1);
  ng_knobs_destroy(&k);
  check(ng_model_set_threshold(m, 0.375), "set");
  k = parse(m, "offsets,threshold");
  ng_knobs_x0(k, x0);
  assert_true(x0[2] == 0.375 && x0[0] == 0 && x0[1] == 0);
  char buf[32];
  assert_string_equal(ng_knobs_coord_name(k, 2, buf, sizeof buf), "threshold");
  assert_string_equal(ng_knobs_coord_name(k, 1, buf, sizeof buf), "offsets[1]");
  size_t np = ng_model_nparams(m);
  float *p = malloc(np * sizeof *p);
  const double x[3] = {0, 0, 0.8125};
  ng_knobs_apply(k, ng_model_params_const(m), x, p, &thr);
  assert_true(thr == 0.8125);
  assert_memory_equal(p, ng_model_params_const(m), np * sizeof *p); /* offsets 0 */
  ng_knobs_destroy(&k);
  k = parse(m, "out.bias");
  assert_false(ng_knobs_has_threshold(k));
  ng_knobs_apply(k, ng_model_params_const(m), x, p, &thr);
  assert_true(isnan(thr));
  free(p);
  ng_knobs_destroy(&k);
  ng_model_destroy(&m);
}

/* `nograd eval`'s threshold_error: the model's stored threshold when none is given, else 0.5. */
static void test_eval_threshold(void **state) {
  (void)state;
  const size_t rows = 300;
  ng_model *m = build(BINARY, 11);
  const char *data = tpath("bin_data.h5"), *stored = tpath("bin_stored.h5"), *none = tpath("bin_none.h5");
  ng_data D;
  size_t dims[1] = {5};
  check(ng_data_alloc(&D, rows, 1, dims, 0), "alloc");
  ng_rng r;
  ng_rng_init(&r, 11, NG_RNG_DATA, 0, 1);
  for (size_t i = 0; i < rows; i++) {
    for (size_t j = 0; j < 5; j++)
      D.x[5 * i + j] = (float)ng_rng_normal(&r);
    D.y[i] = ng_rng_uniform(&r) < 0.5;
  }
  D.classes = 2;
  check(ng_data_write(data, &D), "write data");
  /* The expected counts, from a forward pass of all rows. */
  float *z = forward(m, ng_model_params_const(m), D.x, rows);
  int64_t e_half = ng_metric_threshold_error(z, D.y, rows, 0.5);
  double t = 0.5;
  int64_t best = 0;
  for (int i = 1; i < 20; i++) { /* a threshold whose error differs most from 0.5's */
    double c = i / 20.0;
    int64_t e = ng_metric_threshold_error(z, D.y, rows, c);
    if (llabs(e - e_half) > best) {
      best = llabs(e - e_half);
      t = c;
    }
  }
  int64_t e_t = ng_metric_threshold_error(z, D.y, rows, t);
  assert_true(e_t != e_half);
  free(z);
  ng_data_free(&D);
  check(ng_model_write(m, none), "write");
  check(ng_model_set_threshold(m, t), "set");
  check(ng_model_write(m, stored), "write");

  static const struct {
    double given; /* NaN: none given; -1: t */
    int model;    /* 0: the stored threshold t, 1: none */
    int expect_t; /* 1: t's error, 0: 0.5's */
  } cases[] = {{NAN, 0, 1}, {NAN, 1, 0}, {0.5, 0, 0}, {-1, 1, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    ng_eval_config cfg = {.model = cases[c].model ? none : stored,
                          .data = data,
                          .threshold = cases[c].given < 0 ? t : cases[c].given,
                          .batch = 64,
                          .chunk_rows = 128};
    cfg.metrics[NG_EVAL_THRESHOLD_ERROR] = true;
    ng_eval_result res;
    check(ng_app_eval(MPI_COMM_WORLD, &cfg, &res), "eval");
    double want = (double)(cases[c].expect_t ? e_t : e_half) / (double)rows;
    if (res.metrics[NG_EVAL_THRESHOLD_ERROR] != want)
      fail_msg("case %zu: threshold_error %.17g, want %.17g", c, res.metrics[NG_EVAL_THRESHOLD_ERROR], want);
  }
  ng_eval_config bad = {.model = stored, .data = data, .threshold = 1.5, .batch = 64, .chunk_rows = 128};
  ng_eval_result res;
  assert_int_equal(ng_app_eval(MPI_COMM_WORLD, &bad, &res), NG_EINVAL);
  ng_model_destroy(&m);
}

/* ---- --list-params ---- */

static char *list(const ng_model *m) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  assert_non_null(f);
  check(ng_knobs_list(m, f), "list");
  fclose(f);
  return text;
}

static void test_list(void **state) {
  (void)state;
  ng_model *cnn = build(CNN, 1), *conv = build(CONV_ONLY, 2), *bin = build(BINARY, 3);
  char *t = list(cnn);
  assert_contains(t,
                  "\n  name              shape              size   rows\n"
                  "  conv1.weight      [4, 1, 3, 3]         36      4\n");
  assert_contains(t, "\n  fc1.weight        [8, 36]             288      8\n");
  assert_contains(t, "\n  bn1.running_var   [4]                   4      4\n");
  assert_contains(t, "\n  10 tensors, 379 parameters\n");
  assert_contains(t,
                  "\n  scale:conv1  conv2d, 4 output channels\n  scale:fc1    dense, 8 outputs\n"
                  "  scale:fc2    dense, 3 outputs\n");
  assert_contains(t, "\ntemperature  yes: the logits of fc2 divided by T");
  assert_contains(t, "\noffsets      yes: C = 3 per-class offsets added to fc2.bias\n");
  assert_contains(t, "\nthreshold    no: the model has 3 outputs; a threshold needs 2\n");
  if (strstr(t, "scale:bn1")) fail_msg("bn1 listed for scale:");
  free(t);
  t = list(conv);
  assert_contains(t, "temperature  no: the model's output comes from a conv2d layer (spec line 2)");
  free(t);
  check(ng_model_set_threshold(bin, 0.25), "set");
  t = list(bin);
  assert_contains(t, "threshold    yes: binary classifier, stored threshold 0.25");
  free(t);
  ng_model_destroy(&bin);
  ng_model_destroy(&conv);
  ng_model_destroy(&cnn);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse),           cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_x0_identity),     cmocka_unit_test(test_slice),
      cmocka_unit_test(test_scale),           cmocka_unit_test(test_temperature_offsets),
      cmocka_unit_test(test_threshold_model), cmocka_unit_test(test_threshold_knob),
      cmocka_unit_test(test_eval_threshold),  cmocka_unit_test(test_list),
  };
  int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
  MPI_Finalize();
  return failed;
}
