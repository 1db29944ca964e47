/* Models (src/nn/model.c, model_io.c, forward.c): spec parsing (shapes and parameter counts of LeNet-5 and of
 * a 784-512-512-10 MLP; errors that name the line), the model file (bit-identical round trip; missing,
 * damaged and NaN tensors refused with the file, HDF5 path and tensor named; the atomic write), forward
 * passes of small nets checked against values computed by hand, backward passes against central differences
 * for every layer kind, dropout's masks, no allocation per pass (glibc's mallinfo2), and the MLP's throughput
 * at batch 256 (printed, not asserted). Not an MPI test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/ckpt_internal.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"
#include "nograd/nn.h"
#include "nograd/rng.h"

static char tmpdir[256];

static const char *const LENET =
    "# LeNet-5 on 28 x 28\n"
    "input 1 28 28\n"
    "conv2d c1 6 5\n"
    "relu\n"
    "maxpool 2\n"
    "conv2d c2 16 5\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "dense f1 120\n"
    "relu\n"
    "dense f2 84\n"
    "relu\n"
    "dense f3 10\n";

static const char *const MLP = "input 784\ndense fc1 512\nrelu\ndense fc2 512\nrelu\ndense fc3 10\n";

static const char *tpath(const char *name) {
  static char bufs[4][512];
  static int next;
  char *b = bufs[next++ % 4];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

static int group_setup(void **state) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/nograd_test_nn_XXXXXX");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static ng_model *build(const char *spec) {
  ng_model *m = NULL;
  check(ng_model_from_spec(spec, &m), spec);
  return m;
}

static void fill_uniform(float *v, size_t n, uint32_t index, double lo, double hi) {
  ng_rng r;
  ng_rng_init(&r, 99, NG_RNG_USER, 0, index);
  for (size_t i = 0; i < n; i++)
    v[i] = (float)(lo + (hi - lo) * ng_rng_uniform(&r));
}

/* ---- Specs ---- */

static void test_spec_lenet(void **state) {
  ng_model *m = build(LENET);
  /* c1 6*1*25+6 = 156, c2 16*6*25+16 = 2416, f1 256*120+120 = 30840, f2 120*84+84 = 10164, f3 84*10+10 = 850
   */
  assert_int_equal(ng_model_nparams(m), 44426);
  assert_int_equal(ng_model_ntensors(m), 10);
  assert_int_equal(ng_model_input_size(m), 784);
  assert_int_equal(ng_model_output_size(m), 10);
  size_t off, ndim, shape[4];
  check(ng_model_find(m, "c2.weight", &off, &ndim, shape), "find");
  assert_int_equal(off, 156);
  assert_int_equal(ndim, 4);
  assert_int_equal(shape[0], 16);
  assert_int_equal(shape[1], 6);
  assert_int_equal(shape[2], 5);
  assert_int_equal(shape[3], 5);
  check(ng_model_find(m, "f1.weight", &off, &ndim, shape), "find");
  assert_int_equal(off, 156 + 2416);
  assert_int_equal(ndim, 2);
  assert_int_equal(shape[0], 120);
  assert_int_equal(shape[1], 256); /* 16 x 4 x 4 after two conv/pool stages */
  assert_int_equal(shape[2], 1);
  assert_int_equal(ng_model_find(m, "f9.weight", NULL, NULL, NULL), NG_ENOTFOUND);
  assert_contains(ng_errmsg(), "f9.weight");
  const char *name;
  check(ng_model_tensor(m, 9, &name, &off, NULL, NULL), "tensor");
  assert_string_equal(name, "f3.bias");
  assert_int_equal(off, 44416);
  size_t in_ndim, in_shape[3];
  ng_model_input_shape(m, &in_ndim, in_shape);
  assert_int_equal(in_ndim, 3);
  assert_int_equal(in_shape[1], 28);
  assert_string_equal(ng_model_spec_text(m), LENET);
  /* A fresh model: weights zero. */
  for (size_t i = 0; i < ng_model_nparams(m); i++)
    assert_true(ng_model_params(m)[i] == 0.0f);
  ng_model_destroy(&m);
  assert_null(m);
  ng_model_destroy(&m);
}

static void test_spec_mlp(void **state) {
  ng_model *m = build(MLP);
  /* 784*512+512 + 512*512+512 + 512*10+10 */
  assert_int_equal(ng_model_nparams(m), 669706);
  assert_int_equal(ng_model_ntensors(m), 6);
  /* A spec with norms: running variance starts at one. */
  ng_model *n = build("input 3 4 4\nbatchnorm bn eps=1e-3\nflatten\nlayernorm ln\n");
  size_t off;
  check(ng_model_find(n, "bn.running_var", &off, NULL, NULL), "find");
  assert_int_equal(off, 9);
  assert_true(ng_model_params(n)[off] == 1.0f && ng_model_params(n)[off + 2] == 1.0f);
  check(ng_model_find(n, "ln.weight", &off, NULL, NULL), "find");
  assert_int_equal(off, 12);
  assert_int_equal(ng_model_nparams(n), 12 + 48 + 48);
  ng_model_destroy(&n);
  ng_model_destroy(&m);
}

static void test_spec_errors(void **state) {
  static const struct {
    const char *spec, *needle;
  } cases[] = {
      {"input 4\ndense a 3\n\nfoo 3\n", "spec line 4: 'foo 3': unknown layer 'foo'"},
      {"input 4\ndense a\n", "spec line 2: 'dense a': dense takes 2 arguments, got 1"},
      {"input 1 8 8\ndense a 3\n", "spec line 2: 'dense a 3': dense needs a vector input"},
      {"input 1 4 4\n# comment\nconv2d c 2 5 # too big\n", "spec line 3: 'conv2d c 2 5': kernel 5"},
      {"input 4\nresidual\ndense a 4\n", "spec line 2: 'residual': the residual group is not closed"},
      {"input 4\nend\n", "spec line 2: 'end': end without a residual"},
      {"input 4\nresidual\ndense a 3\nend\n", "spec line 4: 'end': the residual group of line 2 maps 4 to 3"},
      {"input 4\ndense a 4\ndense a 2\n",
       "spec line 3: 'dense a 2': layer name 'a' is already used on line 2"},
      {"dense a 4\n", "spec line 1: 'dense a 4': the first line must be"},
      {"input 4\ndropout 1.5\n", "spec line 2: 'dropout 1.5': dropout probability"},
      {"input 1 8 8\nconv2d c 2 3 strid=2\n", "unknown option 'strid'"},
      {"input 4\ndense a -3\n", "spec line 2: 'dense a -3': out features: expected a positive integer"},
      {"input 4\nlayernorm ln eps=0\n", "eps must be positive"},
      {"", "no input line"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ng_model *m = (ng_model *)&m;
    int st = ng_model_from_spec(cases[i].spec, &m);
    if (st != NG_EINVAL) fail_msg("case %zu: status %d for %s", i, st, cases[i].spec);
    assert_null(m);
    assert_contains(ng_errmsg(), cases[i].needle);
  }
}

/* ---- Files ---- */

static void assert_same_model(const ng_model *a, const ng_model *b) {
  assert_string_equal(ng_model_spec_text(a), ng_model_spec_text(b));
  assert_int_equal(ng_model_nparams(a), ng_model_nparams(b));
  assert_memory_equal(ng_model_params_const(a), ng_model_params_const(b),
                      ng_model_nparams(a) * sizeof(float));
  assert_int_equal(ng_model_ntensors(a), ng_model_ntensors(b));
  for (size_t i = 0; i < ng_model_ntensors(a); i++) {
    const char *na, *nb;
    size_t oa, ob, da, db, sa[4], sb[4];
    ng_model_tensor(a, i, &na, &oa, &da, sa);
    ng_model_tensor(b, i, &nb, &ob, &db, sb);
    assert_string_equal(na, nb);
    assert_int_equal(oa, ob);
    assert_int_equal(da, db);
    assert_memory_equal(sa, sb, sizeof sa);
  }
}

static void test_file_round_trip(void **state) {
  ng_model *m = build(LENET), *r = NULL, *c = NULL;
  ng_model_init(m, 7);
  check(ng_model_set_attr(m, "classes", 10), "attr");
  check(ng_model_set_attr(m, "train_rows", 60000), "attr");
  check(ng_nn_set_dataset(m, "mnist"), "dataset");
  assert_int_equal(ng_model_set_attr(m, "a/b", 1), NG_EINVAL);
  const char *path = tpath("lenet.h5");
  check(ng_model_write(m, path), "write");
  assert_int_equal(access(tpath("lenet.h5.tmp"), F_OK), -1); /* no temporary left */
  check(ng_model_read(path, &r), "read");
  assert_same_model(m, r);
  assert_int_equal(ng_model_attr(r, "classes"), 10);
  assert_int_equal(ng_model_attr(r, "train_rows"), 60000);
  assert_int_equal(ng_model_attr(r, "nothing"), -1);
  assert_string_equal(r->dataset, "mnist");
  /* Write again over it (rename over an existing file) and the clone. */
  check(ng_model_clone(r, &c), "clone");
  assert_same_model(m, c);
  assert_int_equal(ng_model_attr(c, "train_rows"), 60000);
  check(ng_model_write(c, path), "rewrite");
  ng_model_destroy(&r);
  check(ng_model_read(path, &r), "reread");
  assert_same_model(m, r);
  /* h5py sees the layout nn.h promises, when it is installed. */
  if (access("/usr/bin/python3", X_OK) == 0) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 -c 'import h5py' 2>/dev/null || exit 0; "
             "/usr/bin/python3 -c \"import h5py; f=h5py.File('%s','r'); g=f['model']; "
             "assert g['params'].dtype=='float32' and g['params'].shape==(44426,); "
             "assert g['index/shapes'].shape==(10,4) and list(g['index/shapes'][2])==[16,6,5,5]; "
             "assert g['index/names'][9].decode()=='f3.bias' and g.attrs['format_version']==1; "
             "assert g.attrs['classes']==10 and g.attrs['dataset']=='mnist'\"",
             path);
    assert_int_equal(system(cmd), 0);
  }
  ng_model_destroy(&c);
  ng_model_destroy(&r);
  ng_model_destroy(&m);
}

/* Reads `path` expecting `status` and every needle in the message. */
static void expect_read_error(const char *path, int status, const char *n1, const char *n2, const char *n3) {
  ng_model *r = NULL;
  int st = ng_model_read(path, &r);
  if (st != status) fail_msg("read '%s': status %d, expected %d (%s)", path, st, status, ng_errmsg());
  assert_null(r);
  assert_contains(ng_errmsg(), path);
  if (n1) assert_contains(ng_errmsg(), n1);
  if (n2) assert_contains(ng_errmsg(), n2);
  if (n3) assert_contains(ng_errmsg(), n3);
}

static void test_file_errors(void **state) {
  const char *spec = "input 6\ndense fc1 5\nrelu\ndense fc2 4\n";
  ng_model *m = build(spec);
  ng_model_init(m, 3);
  const char *path = tpath("bad.h5");

  expect_read_error(tpath("missing.h5"), NG_EIO, "No such file", NULL, NULL);
  FILE *f = fopen(path, "w");
  fputs("not hdf5\n", f);
  fclose(f);
  expect_read_error(path, NG_ECORRUPT, "not a readable HDF5 file", NULL, NULL);

  /* A tensor missing from the index: the file's index names it otherwise. */
  snprintf(m->tensors[0].name, sizeof m->tensors[0].name, "fc1.kernel");
  check(ng_model_write(m, path), "write");
  snprintf(m->tensors[0].name, sizeof m->tensors[0].name, "fc1.weight");
  expect_read_error(path, NG_EFORMAT, "'/model/index/names'", "no tensor 'fc1.weight'", NULL);

  /* A tensor of the wrong shape. */
  m->tensors[2].shape[1] = 2;
  check(ng_model_write(m, path), "write");
  m->tensors[2].shape[1] = 5;
  expect_read_error(path, NG_EFORMAT, "'/model/index/shapes'", "tensor 'fc2.weight' has shape [4, 2]",
                    "the spec gives [4, 5]");

  /* An unknown layer in the spec. */
  char *saved = m->spec;
  m->spec = (char *)"input 6\ndense fc1 5\nswish\ndense fc2 4\n";
  check(ng_model_write(m, path), "write");
  m->spec = saved;
  expect_read_error(path, NG_EFORMAT, "'/model/spec'", "spec line 3: 'swish': unknown layer", NULL);

  /* Params of the wrong length, then missing. */
  m->nparams -= 1;
  check(ng_model_write(m, path), "write");
  m->nparams += 1;
  expect_read_error(path, NG_EFORMAT, "'/model/params'", "has 58 entries", "expected 59");
  check(ng_model_write(m, path), "write");
  check(ng_h5_unlink(path, "/model/params"), "unlink");
  expect_read_error(path, NG_EFORMAT, "no HDF5 path '/model/params'", NULL, NULL);
  check(ng_model_write(m, path), "write");
  check(ng_h5_unlink(path, "/model/index/offsets"), "unlink");
  expect_read_error(path, NG_EFORMAT, "no HDF5 path '/model/index/offsets'", NULL, NULL);
  check(ng_model_write(m, path), "write");
  check(ng_h5_unlink(path, "/model"), "unlink");
  expect_read_error(path, NG_EFORMAT, "not a nograd model file", NULL, NULL);
  check(ng_model_write(m, path), "write");
  check(ng_h5_set_int_attr(path, "/model", "format_version", 2), "attr");
  expect_read_error(path, NG_EFORMAT, "format_version' is 2", NULL, NULL);

  /* A NaN weight: fc1 holds 6*5+5 = 35 floats, fc2.weight 20, so fc2.bias is at 55..58. */
  ng_model_params(m)[55 + 3] = NAN;
  check(ng_model_write(m, path), "write");
  expect_read_error(path, NG_ENUMERIC, "tensor 'fc2.bias' element 3", "'/model/params'", NULL);
  ng_model_params(m)[58] = 0.5f;

  /* A write that cannot happen leaves nothing, and an old file untouched. */
  check(ng_model_write(m, path), "write");
  assert_int_equal(ng_model_write(m, tpath("no/such/dir.h5")), NG_EIO);
  assert_contains(ng_errmsg(), "no/such/dir.h5.tmp");
  chmod(tmpdir, 0500);
  if (access(tmpdir, W_OK) != 0) { /* not root */
    assert_int_equal(ng_model_write(m, path), NG_EIO);
    assert_int_equal(access(tpath("bad.h5.tmp"), F_OK), -1);
  }
  chmod(tmpdir, 0700);
  ng_model *r = NULL;
  check(ng_model_read(path, &r), "read");
  assert_same_model(m, r);
  ng_model_destroy(&r);
  ng_model_destroy(&m);
}

/* ---- Forward passes by hand ---- */

static const float *run(ng_model *m, ng_nn_work **w, const float *x, size_t batch, bool training) {
  const float *out = NULL;
  check(ng_nn_work_create(m, batch, training, w), "work");
  check(ng_nn_forward(m, ng_model_params(m), *w, x, batch, &out), "forward");
  return out;
}

static void set(ng_model *m, const char *tensor, const float *v) {
  size_t off, shape[4];
  check(ng_model_find(m, tensor, &off, NULL, shape), tensor);
  memcpy(ng_model_params(m) + off, v, shape[0] * shape[1] * shape[2] * shape[3] * sizeof *v);
}

static void test_forward_dense(void **state) {
  /* y = relu(x W^T + b), W = [[1, 2], [-1, 1], [0.5, -2]], b = [0.5, 0, -1]; then z = softmax(y) */
  ng_model *m = build("input 2\ndense d 3\nrelu\n");
  set(m, "d.weight", (const float[]){1, 2, -1, 1, 0.5f, -2});
  set(m, "d.bias", (const float[]){0.5f, 0, -1});
  const float x[4] = {1, 1, 2, -1};
  ng_nn_work *w = NULL;
  const float *y = run(m, &w, x, 2, false);
  /* example 1: (1+2+.5, -1+1, .5-2-1) = (3.5, 0, -2.5) -> (3.5, 0, 0); example 2: (2-2+.5, -2-1, 1+2-1) */
  const float want[6] = {3.5f, 0, 0, 0.5f, 0, 2};
  for (int i = 0; i < 6; i++)
    assert_float_equal(y[i], want[i], 1e-6);
  assert_int_equal(ng_nn_forward(m, ng_model_params(m), w, x, 3, &y), NG_EINVAL);
  assert_contains(ng_errmsg(), "batch 3");
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);

  /* softmax of (1, 2, 3) and of (1000, 0, -1000) (stable) */
  m = build("input 3\nsoftmax\n");
  const float xs[6] = {1, 2, 3, 1000, 0, -1000};
  y = run(m, &w, xs, 2, false);
  double e = 1 + exp(1) + exp(2);
  assert_float_equal(y[0], 1 / e, 1e-6);
  assert_float_equal(y[2], exp(2) / e, 1e-6);
  assert_float_equal(y[3], 1, 1e-6);
  assert_float_equal(y[5], 0, 1e-6);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);

  /* gelu(1) = 0.5 (1 + erf(1/sqrt 2)) = 0.841344746; tanh; sigmoid(0) = 0.5 */
  m = build("input 1\ngelu\n");
  y = run(m, &w, (const float[]){1.0f}, 1, false);
  assert_float_equal(y[0], 0.841344746, 1e-6);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
  m = build("input 2\nsigmoid\ntanh\n");
  y = run(m, &w, (const float[]){0, 100}, 1, false);
  assert_float_equal(y[0], tanh(0.5), 1e-6);
  assert_float_equal(y[1], tanh(1.0), 1e-6);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
}

static void test_forward_norms_residual(void **state) {
  /* batchnorm over 2 channels of 1 x 2 planes: (x - mean) / sqrt(var + eps) * w + b */
  ng_model *m = build("input 2 1 2\nbatchnorm bn eps=0.25\n");
  set(m, "bn.weight", (const float[]){2, 1});
  set(m, "bn.bias", (const float[]){1, -1});
  set(m, "bn.running_mean", (const float[]){1, 0});
  set(m, "bn.running_var", (const float[]){0.75f, 3.75f}); /* sqrt(1) = 1, sqrt(4) = 2 */
  ng_nn_work *w = NULL;
  const float *y = run(m, &w, (const float[]){3, 0, 4, -2}, 1, false);
  /* channel 0: (3-1)*2+1 = 5, (0-1)*2+1 = -1; channel 1: 4/2-1 = 1, -2/2-1 = -2 */
  const float want_bn[4] = {5, -1, 1, -2};
  for (int i = 0; i < 4; i++)
    assert_float_equal(y[i], want_bn[i], 1e-6);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);

  /* layernorm of (1, 2, 3, 6): mean 3, biased variance (4+1+0+9)/4 = 3.5 */
  m = build("input 4\nlayernorm ln eps=0.5\n"); /* sqrt(3.5 + 0.5) = 2 */
  set(m, "ln.weight", (const float[]){1, 1, 2, 1});
  set(m, "ln.bias", (const float[]){0, 1, 0, 0});
  y = run(m, &w, (const float[]){1, 2, 3, 6}, 1, false);
  const float want_ln[4] = {-1, 0.5f, 0, 1.5f};
  for (int i = 0; i < 4; i++)
    assert_float_equal(y[i], want_ln[i], 1e-6);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);

  /* residual: out = x + (x W^T + b) then a second group nested: x + relu(...) */
  m = build("input 2\nresidual\ndense d 2\nresidual\nrelu\nend\nend\n");
  set(m, "d.weight", (const float[]){1, 1, 0, -1});
  set(m, "d.bias", (const float[]){0, 1});
  y = run(m, &w, (const float[]){1, 2}, 1, false);
  /* d: (3, -1); inner group: (3 + 3, -1 + 0) = (6, -1); outer: (1 + 6, 2 - 1) */
  assert_float_equal(y[0], 7, 1e-6);
  assert_float_equal(y[1], 1, 1e-6);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
}

static void test_forward_conv_pool(void **state) {
  /* 1 x 3 x 3 input 1..9, conv 2x2 weights 1 bias 0.5: window sums 12, 16, 24, 28 (+0.5) */
  ng_model *m = build("input 1 3 3\nconv2d c 1 2\n");
  set(m, "c.weight", (const float[]){1, 1, 1, 1});
  set(m, "c.bias", (const float[]){0.5f});
  const float x9[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  ng_nn_work *w = NULL;
  const float *y = run(m, &w, x9, 1, false);
  const float want[4] = {12.5f, 16.5f, 24.5f, 28.5f};
  for (int i = 0; i < 4; i++)
    assert_float_equal(y[i], want[i], 1e-5);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);

  /* max and average pooling 2x2 of a 4x4 plane 0..15, and stride 1 max pooling */
  float x16[16];
  for (int i = 0; i < 16; i++)
    x16[i] = (float)i;
  m = build("input 1 4 4\nmaxpool 2\n");
  y = run(m, &w, x16, 1, true);
  assert_float_equal(y[0], 5, 0);
  assert_float_equal(y[3], 15, 0);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
  m = build("input 1 4 4\navgpool 2\n");
  y = run(m, &w, x16, 1, false);
  assert_float_equal(y[0], 2.5, 1e-6);  /* (0+1+4+5)/4 */
  assert_float_equal(y[3], 12.5, 1e-6); /* (10+11+14+15)/4 */
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
  m = build("input 1 4 4\nmaxpool 3 stride=1\nflatten\n");
  assert_int_equal(ng_model_output_size(m), 4);
  y = run(m, &w, x16, 1, false);
  assert_float_equal(y[0], 10, 0);
  assert_float_equal(y[3], 15, 0);
  ng_nn_work_destroy(&w);
  ng_model_destroy(&m);
}

/* A forward pass cut in two ranges, between a dense layer and the relu it fuses or after a conv, gives the
 * bits of the whole pass; ng_model_first_linear finds the layer to cut after; bad ranges are refused. */
static void test_forward_range(void **state) {
  const char *specs[] = {"input 1 8 8\nflatten\ndense fc1 16\nrelu\ndense fc2 4\n",
                         "input 1 8 8\nconv2d c1 3 3 padding=1\nrelu\nmaxpool 2\nflatten\ndense fc 4\n",
                         "input 64\ndense fc1 8\nresidual\ndense fc2 8\nrelu\nend\ndense fc3 4\n"};
  for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
    ng_model *m = build(specs[s]);
    ng_model_init(m, 5);
    size_t layer, out_size, fan_in, B = 7;
    check(ng_model_first_linear(m, &layer, &out_size, &fan_in), specs[s]);
    assert_int_equal(fan_in, s == 0 ? 64 : s == 1 ? 9 : 64);
    assert_true(out_size <= 192);
    float x[7 * 64], mid[7 * 192], whole[7 * 4]; /* the conv's output: 3 x 8 x 8 */
    fill_uniform(x, B * 64, 3, -1, 1);
    ng_nn_work *w = NULL;
    check(ng_nn_work_create(m, B, false, &w), "workspace");
    const float *y;
    check(ng_nn_forward(m, ng_model_params(m), w, x, B, &y), "forward");
    memcpy(whole, y, B * 4 * sizeof *y);
    check(ng_nn_forward_range(m, ng_model_params(m), w, 0, layer + 1, x, B, &y), "first range");
    memcpy(mid, y, B * out_size * sizeof *y);
    check(ng_nn_forward_range(m, ng_model_params(m), w, layer + 1, ng_model_nlayers(m), mid, B, &y),
          "second range");
    assert_memory_equal(y, whole, B * 4 * sizeof *y);
    assert_int_equal(ng_nn_forward_range(m, ng_model_params(m), w, 2, 1, x, B, &y), NG_EINVAL);
    assert_int_equal(ng_nn_forward_range(m, ng_model_params(m), w, 0, 99, x, B, &y), NG_EINVAL);
    ng_nn_work_destroy(&w);
    check(ng_nn_work_create(m, B, true, &w), "training workspace");
    assert_int_equal(ng_nn_forward_range(m, ng_model_params(m), w, 0, 1, x, B, &y), NG_EINVAL);
    ng_nn_work_destroy(&w);
    ng_model_destroy(&m);
  }
  ng_model *m = build("input 4\nlayernorm ln\ndense fc 2\n");
  size_t layer, out_size, fan_in;
  assert_int_equal(ng_model_first_linear(m, &layer, &out_size, &fan_in), NG_ENOTFOUND);
  ng_model_destroy(&m);
}

/* Native models run on the graph executor (src/nn/native_graph.c). An evaluation workspace fuses a conv2d
 * with its batchnorm and relu, and a dense layer with its relu; a training workspace fuses nothing: both give
 * the same bits. A range may cut after the first linear layer (kept visible even before a batchnorm) but not
 * inside a fused group, nor start inside a residual group. Softmax over an image's C H W values sums to 1. */
static void test_native_graph(void **state) {
  ng_model *m = build(
      "input 2 6 6\nconv2d c1 4 3 padding=1\nbatchnorm bn1\nrelu\n"
      "conv2d c2 4 3 padding=1\nbatchnorm bn2\nrelu\nflatten\ndense fc1 8\nrelu\n"
      "dense fc2 3\n");
  ng_model_init(m, 7);
  float *p = ng_model_params(m);
  for (size_t j = 0; j < ng_model_ntensors(m); j++) { /* statistics other than 0 and 1, so BN does work */
    const char *name;
    size_t off, nd, shape[4];
    check(ng_model_tensor(m, j, &name, &off, &nd, shape), "tensor");
    if (strstr(name, "running_var")) fill_uniform(p + off, shape[0], 30 + (uint32_t)j, 0.5, 2);
    if (strstr(name, "running_mean")) fill_uniform(p + off, shape[0], 40 + (uint32_t)j, -0.3, 0.3);
  }
  size_t B = 5, layer, out_size, fan_in;
  float x[5 * 72], mid[5 * 144], whole[5 * 3];
  fill_uniform(x, B * 72, 8, -1, 1);
  ng_nn_work *we = NULL, *wt = NULL;
  const float *y;
  check(ng_nn_work_create(m, B, false, &we), "evaluation workspace");
  check(ng_nn_work_create(m, B, true, &wt), "training workspace");
  check(ng_nn_forward(m, p, we, x, B, &y), "evaluation forward");
  memcpy(whole, y, sizeof whole);
  check(ng_nn_forward(m, p, wt, x, B, &y), "training forward");
  assert_memory_equal(y, whole, sizeof whole);
  check(ng_model_first_linear(m, &layer, &out_size, &fan_in), "first linear");
  assert_int_equal(layer, 0);
  check(ng_nn_forward_range(m, p, we, 0, 1, x, B, &y), "first range");
  memcpy(mid, y, B * out_size * sizeof *y);
  check(ng_nn_forward_range(m, p, we, 1, ng_model_nlayers(m), mid, B, &y), "second range");
  assert_memory_equal(y, whole, sizeof whole);
  /* after c2 (fused with bn2 and relu), after bn2 (fused with the relu), after fc1 (fused with its relu) */
  assert_int_equal(ng_nn_forward_range(m, p, we, 0, 4, x, B, &y), NG_EINVAL);
  assert_int_equal(ng_nn_forward_range(m, p, we, 5, 10, mid, B, &y), NG_EINVAL);
  assert_int_equal(ng_nn_forward_range(m, p, we, 8, 10, mid, B, &y), NG_EINVAL);
  /* bn1 and its relu: c1's output is kept, so nothing is fused there */
  check(ng_nn_forward_range(m, p, we, 1, 3, mid, B, &y), "a range between unfused layers");
  ng_nn_work_destroy(&wt);
  ng_nn_work_destroy(&we);
  ng_model_destroy(&m);

  m = build("input 8\ndense d 8\nresidual\ndense e 8\nend\ndense f 2\n");
  check(ng_nn_work_create(m, B, false, &we), "evaluation workspace");
  assert_int_equal(ng_nn_forward_range(m, ng_model_params(m), we, 2, 4, x, B, &y), NG_EINVAL);
  ng_nn_work_destroy(&we);
  ng_model_destroy(&m);

  /* nothing computes (dropout outside training): the output and a range over every layer are the input */
  m = build("input 6\ndropout 0.5\n");
  y = run(m, &we, x, 2, false);
  assert_memory_equal(y, x, 12 * sizeof *x);
  check(ng_nn_forward_range(m, ng_model_params(m), we, 0, 1, x + 12, 2, &y), "a range that computes nothing");
  assert_memory_equal(y, x + 12, 12 * sizeof *x); /* other rows than the whole pass's */
  ng_nn_work_destroy(&we);
  ng_model_destroy(&m);

  m = build("input 2 2 3\nsoftmax\n");
  y = run(m, &we, x, 2, false);
  for (size_t r = 0; r < 2; r++) {
    double sum = 0;
    for (size_t i = 0; i < 12; i++) {
      assert_true(y[r * 12 + i] > 0);
      sum += y[r * 12 + i];
    }
    assert_float_equal(sum, 1.0, 1e-6);
    /* the largest input has the largest share */
    size_t big = 0;
    for (size_t i = 1; i < 12; i++)
      if (x[r * 12 + i] > x[r * 12 + big]) big = i;
    for (size_t i = 0; i < 12; i++)
      assert_true(y[r * 12 + i] <= y[r * 12 + big]);
  }
  ng_nn_work_destroy(&we);
  ng_model_destroy(&m);
}

/* Training and evaluation workspaces give the same bits without dropout; LeNet at two batch sizes. */
static void test_forward_train_eval(void **state) {
  ng_model *m = build(LENET);
  ng_model_init(m, 11);
  float *x = malloc(5 * 784 * sizeof *x);
  fill_uniform(x, 5 * 784, 1, 0, 1);
  ng_nn_work *we = NULL, *wt = NULL;
  const float *ye = run(m, &we, x, 5, false), *yt = run(m, &wt, x, 5, true);
  assert_memory_equal(ye, yt, 50 * sizeof *ye);
  const float *y3;
  check(ng_nn_forward(m, ng_model_params(m), we, x, 3, &y3), "forward 3");
  for (int i = 0; i < 30; i++) /* the same up to sgemm's blocking, which may depend on the batch */
    assert_float_equal(y3[i], yt[i], 1e-5 * (1 + fabs(yt[i])));
  ng_nn_work_destroy(&we);
  ng_nn_work_destroy(&wt);
  free(x);
  ng_model_destroy(&m);
}

static void test_dropout(void **state) {
  ng_model *m = build("input 1000\ndropout 0.25\n");
  float *x = malloc(1000 * sizeof *x);
  for (int i = 0; i < 1000; i++)
    x[i] = 1.0f + (float)i;
  ng_nn_work *we = NULL, *wt = NULL;
  const float *y = run(m, &we, x, 1, false);
  assert_memory_equal(y, x, 1000 * sizeof *x); /* evaluation: identity */
  check(ng_nn_work_create(m, 1, true, &wt), "work");
  ng_nn_work_set_dropout(wt, 5, 1);
  check(ng_nn_forward(m, ng_model_params(m), wt, x, 1, &y), "forward");
  float *first = malloc(1000 * sizeof *first);
  memcpy(first, y, 1000 * sizeof *y);
  int zeros = 0;
  for (int i = 0; i < 1000; i++) {
    if (y[i] == 0)
      zeros++;
    else
      assert_float_equal(y[i], x[i] / 0.75f, 1e-3);
  }
  assert_in_range(zeros, 200, 300); /* p = 0.25 of 1000; 6 standard deviations either side */
  check(ng_nn_forward(m, ng_model_params(m), wt, x, 1, &y), "again");
  assert_memory_equal(y, first, 1000 * sizeof *y); /* same (seed, step): same mask */
  ng_nn_work_set_dropout(wt, 5, 2);
  check(ng_nn_forward(m, ng_model_params(m), wt, x, 1, &y), "step 2");
  assert_true(memcmp(y, first, 1000 * sizeof *y) != 0);
  ng_nn_work_destroy(&we);
  ng_nn_work_destroy(&wt);
  free(first);
  free(x);
  ng_model_destroy(&m);
}

/* ---- Gradients ---- */

/* L = sum(out * r) in double, over a batch. */
static double loss_of(ng_model *m, const float *p, ng_nn_work *w, const float *x, size_t B, const float *r) {
  const float *y;
  check(ng_nn_forward(m, p, w, x, B, &y), "forward");
  double s = 0;
  for (size_t i = 0; i < B * ng_model_output_size(m); i++)
    s += (double)y[i] * r[i];
  return s;
}

/* The relative error ||g - g_num|| / max(||g||, ||g_num||) over all parameters. */
static double grad_check(const char *spec, uint64_t seed, double step) {
  ng_model *m = build(spec);
  ng_model_init(m, seed);
  size_t n = ng_model_nparams(m), B = 3, in = ng_model_input_size(m), out = ng_model_output_size(m);
  float *p = ng_model_params(m);
  /* Norm parameters away from their defaults, variances positive. */
  for (size_t t = 0; t < ng_model_ntensors(m); t++) {
    const char *name;
    size_t off, shape[4];
    ng_model_tensor(m, t, &name, &off, NULL, shape);
    size_t len = shape[0] * shape[1] * shape[2] * shape[3];
    if (strstr(name, "running_var"))
      fill_uniform(p + off, len, (uint32_t)t + 10, 0.5, 2);
    else if (!strstr(name, "c.") && !strstr(name, "d.") && (strstr(name, "bn") || strstr(name, "ln")))
      fill_uniform(p + off, len, (uint32_t)t + 10, -0.5, 1.5);
  }
  float *x = malloc(B * in * sizeof *x), *r = malloc(B * out * sizeof *r);
  float *g = calloc(n, sizeof *g), *q = malloc(n * sizeof *q);
  fill_uniform(x, B * in, 1, -1, 1);
  fill_uniform(r, B * out, 2, -1, 1);
  ng_nn_work *w = NULL;
  check(ng_nn_work_create(m, B, true, &w), "work");
  ng_nn_work_set_dropout(w, 17, 3);
  assert_int_equal(ng_nn_backward(m, p, w, r, g), NG_EORDER);
  loss_of(m, p, w, x, B, r);
  check(ng_nn_backward(m, p, w, r, g), "backward");
  memcpy(q, p, n * sizeof *q);
  double num2 = 0, diff2 = 0, g2 = 0;
  /* Running statistics are constants of the backward pass (nn.h): not compared. */
  unsigned char *skip = calloc(n, 1);
  for (size_t t = 0; t < ng_model_ntensors(m); t++) {
    const char *name;
    size_t off, shape[4];
    ng_model_tensor(m, t, &name, &off, NULL, shape);
    if (strstr(name, "running_")) memset(skip + off, 1, shape[0]);
  }
  for (size_t i = 0; i < n; i++) {
    if (skip[i]) continue;
    double h = step * fmax(1.0, fabs(q[i]));
    float keep = q[i];
    q[i] = (float)(keep + h);
    double hp = (double)q[i] - keep;
    double lp = loss_of(m, q, w, x, B, r);
    q[i] = (float)(keep - h);
    double hm = keep - (double)q[i];
    double lm = loss_of(m, q, w, x, B, r);
    q[i] = keep;
    double d = (lp - lm) / (hp + hm);
    num2 += d * d;
    g2 += (double)g[i] * g[i];
    diff2 += (d - g[i]) * (d - g[i]);
  }
  /* Backward accumulates: a second pass doubles the gradient. */
  float *g1 = malloc(n * sizeof *g1);
  memcpy(g1, g, n * sizeof *g);
  loss_of(m, p, w, x, B, r);
  check(ng_nn_backward(m, p, w, r, g), "backward 2");
  for (size_t i = 0; i < n; i++)
    assert_float_equal(g[i], 2 * g1[i], 1e-5 * (1 + fabs(g1[i])));
  ng_nn_work_destroy(&w);
  free(skip);
  free(g1);
  free(q);
  free(g);
  free(r);
  free(x);
  ng_model_destroy(&m);
  return sqrt(diff2) / fmax(sqrt(num2), sqrt(g2));
}

static void test_gradients(void **state) {
  /* The step is 1e-3 but where max pooling may meet a near tie: a step that crosses it measures a kink. */
  static const struct {
    const char *what, *spec;
    double step;
  } nets[] = {
      {"dense", "input 5\ndense d 4\ndense e 3\n", 1e-3},
      {"relu", "input 5\ndense d 6\nrelu\ndense e 3\n", 1e-3},
      {"gelu", "input 5\ndense d 6\ngelu\ndense e 3\n", 1e-3},
      {"tanh", "input 5\ndense d 6\ntanh\ndense e 3\n", 1e-3},
      {"sigmoid", "input 5\ndense d 6\nsigmoid\ndense e 3\n", 1e-3},
      {"softmax", "input 5\ndense d 4\nsoftmax\n", 1e-3},
      {"softmax inside", "input 5\ndense d 4\nsoftmax\ndense e 3\n", 1e-3},
      {"softmax (image)", "input 2 3 3\nconv2d c 2 3 padding=1\nsoftmax\nflatten\ndense d 3\n", 1e-3},
      {"batchnorm (vector)", "input 5\ndense d 4\nbatchnorm bn\ndense e 3\n", 1e-3},
      {"batchnorm (image)", "input 2 5 5\nconv2d c 3 3 padding=1\nbatchnorm bn\nflatten\ndense d 3\n", 1e-3},
      {"layernorm", "input 5\ndense d 6\nlayernorm ln eps=1e-3\ndense e 3\n", 1e-3},
      {"dropout", "input 5\ndense d 8\ndropout 0.4\ndense e 3\n", 1e-3},
      {"relu then dropout", "input 5\ndense d 8\nrelu\ndropout 0.4\ndense e 3\n", 1e-3},
      {"residual", "input 4\ndense d 4\nresidual\ndense e 4\ntanh\nend\ndense f 2\n", 1e-3},
      {"nested residual", "input 4\ndense d 4\nresidual\nresidual\ndense e 4\nend\nsigmoid\nend\ndense f 2\n",
       1e-3},
      {"conv", "input 2 6 6\nconv2d c 3 3 stride=2 padding=1\ntanh\nflatten\ndense d 3\n", 1e-3},
      {"maxpool", "input 2 6 6\nconv2d c 3 3 padding=1\nmaxpool 2\nflatten\ndense d 3\n", 1e-4},
      {"avgpool", "input 2 6 6\nconv2d c 3 3 padding=1\navgpool 2 stride=1\nflatten\ndense d 3\n", 1e-3},
      {"small lenet",
       "input 1 12 12\nconv2d c 4 3\nrelu\nmaxpool 2\nconv2d c2 6 3\nrelu\nmaxpool 2\nflatten\ndense d "
       "10\nrelu\n"
       "dense e 4\n",
       1e-3},
  };
  int failed = 0;
  for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
    double err = grad_check(nets[i].spec, 100 + i, nets[i].step);
    printf("  gradient %-20s relative error %.2e\n", nets[i].what, err);
    if (!(err < 1e-3)) failed++;
  }
  assert_int_equal(failed, 0);
}

/* ---- No allocation per pass, and speed ---- */

static void test_no_allocation(void **state) {
  const char *specs[2] = {LENET,
                          "input 8\ndense d 16\nrelu\nresidual\ndense e 16\ngelu\nend\ndropout 0.2\n"
                          "layernorm ln\ndense f 4\n"};
  for (int s = 0; s < 2; s++) {
    ng_model *m = build(specs[s]);
    ng_model_init(m, 1);
    size_t B = 8, in = ng_model_input_size(m), out = ng_model_output_size(m), n = ng_model_nparams(m);
    float *x = malloc(B * in * sizeof *x), *d = calloc(B * out, sizeof *d), *g = calloc(n, sizeof *g);
    fill_uniform(x, B * in, 4, 0, 1);
    ng_nn_work *we = NULL, *wt = NULL;
    check(ng_nn_work_create(m, B, false, &we), "work");
    check(ng_nn_work_create(m, B, true, &wt), "work");
    const float *y;
    check(ng_nn_forward(m, ng_model_params(m), we, x, B, &y), "warm-up");
    check(ng_nn_forward(m, ng_model_params(m), wt, x, B, &y), "warm-up");
    check(ng_nn_backward(m, ng_model_params(m), wt, d, g), "warm-up");
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 1000; i++) {
      check(ng_nn_forward(m, ng_model_params(m), we, x, B, &y), "forward");
      if (i % 10 == 0) {
        check(ng_nn_forward(m, ng_model_params(m), wt, x, B, &y), "forward");
        check(ng_nn_backward(m, ng_model_params(m), wt, d, g), "backward");
      }
    }
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(after.uordblks, before.uordblks);
    assert_int_equal(after.hblkhd, before.hblkhd);
    ng_nn_work_destroy(&we);
    ng_nn_work_destroy(&wt);
    free(g);
    free(d);
    free(x);
    ng_model_destroy(&m);
  }
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_mlp_speed(void **state) {
  ng_model *m = build(MLP);
  ng_model_init(m, 1);
  size_t B = 256;
  float *x = malloc(B * 784 * sizeof *x);
  fill_uniform(x, B * 784, 5, 0, 1);
  ng_nn_work *w = NULL;
  check(ng_nn_work_create(m, B, false, &w), "work");
  const float *y;
  for (int i = 0; i < 5; i++)
    check(ng_nn_forward(m, ng_model_params(m), w, x, B, &y), "forward");
  double best = 1e30;
  for (int rep = 0; rep < 5; rep++) {
    double t0 = now();
    for (int i = 0; i < 20; i++)
      check(ng_nn_forward(m, ng_model_params(m), w, x, B, &y), "forward");
    double t = (now() - t0) / 20;
    if (t < best) best = t;
  }
  printf("  MLP 784-512-512-10 forward, batch 256: %.0f samples/s (%.3f ms a batch; best of 5 x 20)\n",
         (double)B / best, 1e3 * best);
  ng_nn_work_destroy(&w);
  free(x);
  ng_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_lenet),
      cmocka_unit_test(test_spec_mlp),
      cmocka_unit_test(test_spec_errors),
      cmocka_unit_test(test_file_round_trip),
      cmocka_unit_test(test_file_errors),
      cmocka_unit_test(test_forward_dense),
      cmocka_unit_test(test_forward_norms_residual),
      cmocka_unit_test(test_forward_conv_pool),
      cmocka_unit_test(test_forward_range),
      cmocka_unit_test(test_native_graph),
      cmocka_unit_test(test_forward_train_eval),
      cmocka_unit_test(test_dropout),
      cmocka_unit_test(test_gradients),
      cmocka_unit_test(test_no_allocation),
      cmocka_unit_test(test_mlp_speed),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
