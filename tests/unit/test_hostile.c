/* Hostile sizes and crafted files (issue #14): the checked arithmetic of src/core/checked.h, and the places
 * that nograd 0.1 let wrap or read past a buffer, each refused now with a message naming what:
 * - model specs whose shape products wrap in 64 bits (0.1 loaded them; a forward pass then read far out of
 *   bounds);
 * - optimizer dimensions, populations and CMA-ES count parameters beyond what can be indexed or cast;
 * - --shape and --resize products that wrap;
 * - model and dataset files (written here with HDF5 directly, as another tool could) whose attributes hold
 *   several values where one is read (0.1 read them into room for one: stack and heap overflows that the
 *   sanitizer build reports), whose index is empty while its offsets are not, or whose rows wrap.
 * Not an MPI test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checked.h"
#include "nograd/data.h"
#include "nograd/error.h"
#include "nograd/nn.h"
#include "nograd/opt.h"

static char dir[] = "/tmp/nograd_test_hostile_XXXXXX";

static const char *tpath(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void test_checked(void **state) {
  size_t r = 7;
  assert_true(ng__mul(1u << 31, 1u << 31, &r) && r == (size_t)1 << 62);
  assert_false(ng__mul((size_t)1 << 32, (size_t)1 << 32, &r));
  assert_true(r == (size_t)1 << 62); /* unchanged on failure */
  assert_false(ng__mul3(4, (size_t)1 << 31, (size_t)1 << 31, &r));
  assert_false(ng__add(SIZE_MAX, 1, &r));
  assert_true(ng__add(SIZE_MAX - 1, 1, &r) && r == SIZE_MAX);
  assert_int_equal(ng__ceil_div(10, SIZE_MAX), 1);
  assert_int_equal(ng__ceil_div(SIZE_MAX, 2), SIZE_MAX / 2 + 1);
  assert_null(ng__mallocn((size_t)1 << 61, 8, 1));
  assert_error(ng__checked_mul("rows", (size_t)1 << 40, (size_t)1 << 40, &r), NG_EINVAL, "mul",
               WORDS("rows: 1099511627776 x 1099511627776"));
  int64_t v;
  int i;
  size_t z;
  assert_error(ng__checked_i64("maxiter", 1e300, 1, 1000, &v), NG_EINVAL, "1e300",
               WORDS("maxiter", "1e+300"));
  assert_error(ng__checked_i64("maxiter", -5, 1, 1000, &v), NG_EINVAL, "-5", WORDS("[1, 1000]", "-5"));
  assert_error(ng__checked_i64("x", NAN, 1, 1000, &v), NG_EINVAL, "NaN", WORDS("x: expected a whole number"));
  assert_error(ng__checked_i64("x", 2.5, 1, 1000, &v), NG_EINVAL, "2.5", WORDS("2.5"));
  check(ng__checked_i64("x", 9e18, 0, INT64_MAX, &v), "9e18");
  assert_true(v == (int64_t)9000000000000000000);
  assert_error(ng__checked_int("groups", 4294967298.0, 1, INT32_MAX, &i), NG_EINVAL, "int",
               WORDS("groups", "4294967298"));
  check(ng__checked_size("n", 3, 1, SIZE_MAX, &z), "size");
  assert_int_equal(z, 3);
  assert_true(ng__is_whole_in(2147483647.0, 1, INT32_MAX) && !ng__is_whole_in(2147483648.0, 1, INT32_MAX));
}

/* Specs whose products wrap (2^31 * 2^31 * 4 = 2^64 is 0) or exceed what BLAS indexes. */
static void test_spec_sizes(void **state) {
  ng_model *m = NULL;
  assert_error(
      ng_model_from_spec("input 4 2147483648 2147483648\nmaxpool 2147483648\nflatten\ndense fc 2\n", &m),
      NG_EINVAL, "wrapping input", WORDS("spec line 1", "input of more than"));
  assert_null(m);
  assert_error(ng_model_from_spec("input 2147483648\ndense fc 2147483648\n", &m), NG_EINVAL, "huge input",
               WORDS("spec line 1"));
  assert_error(ng_model_from_spec("input 65536\ndense fc 65536\n", &m), NG_EINVAL, "huge dense",
               WORDS("spec line 2", "tensor 'fc.weight'", "65536 x 65536"));
  assert_error(ng_model_from_spec("input 1 40000 40000\nconv2d c 2 1\n", &m), NG_EINVAL, "huge conv output",
               WORDS("spec line 2", "output of 2 x 40000 x 40000"));
  assert_error(ng_model_from_spec("input 65536 2 2\nconv2d c 1 200 padding=100\n", &m), NG_EINVAL,
               "huge kernel", WORDS("spec line 2"));
  check(ng_model_from_spec("input 1 8 8\nconv2d c 2 3 padding=1\nflatten\ndense fc 3\n", &m), "a fine spec");
  ng_model_destroy(&m);
}

static void test_opt_sizes(void **state) {
  ng_opt *o = NULL;
  assert_error(ng_opt_create("cmaes", (size_t)1 << 61, &o), NG_EINVAL, "dim",
               WORDS("dimension", "2147483647"));
  check(ng_opt_create("cmaes", 3, &o), "create");
  assert_error(ng_opt_set_popsize(o, (size_t)1 << 61), NG_EINVAL, "popsize", WORDS("popsize", "2147483647"));
  check(ng_opt_set_param(o, "maxiter", 1e300), "param");
  assert_error(ng_opt_setup(o), NG_EINVAL, "maxiter 1e300", WORDS("maxiter", "1e+300"));
  ng_opt_destroy(&o);
  check(ng_opt_create("sepcmaes", 3, &o), "create");
  check(ng_opt_set_param(o, "maxiter", -5), "param");
  assert_error(ng_opt_setup(o), NG_EINVAL, "maxiter -5", WORDS("maxiter", "-5"));
  ng_opt_destroy(&o);
  check(ng_opt_create("cmaes", 3, &o), "create");
  check(ng_opt_set_param(o, "maxiter", 7), "param");
  check(ng_opt_setup(o), "maxiter 7 is fine");
  ng_opt_destroy(&o);
  /* (lambda + 1) n doubles wraps: refused at setup instead of sizing a small buffer */
  check(ng_opt_create("sepcmaes", INT32_MAX, &o), "create a large sep-CMA-ES");
  check(ng_opt_set_popsize(o, INT32_MAX), "popsize");
  assert_true(ng_opt_setup(o) != NG_OK);
  ng_opt_destroy(&o);
}

static void test_reshape_resize(void **state) {
  ng_data D;
  size_t shape[1] = {4};
  check(ng_data_alloc(&D, 3, 1, shape, 0), "alloc");
  D.classes = 2;
  assert_error(ng_data_reshape(&D, (size_t)1 << 32, (size_t)1 << 32, 4), NG_EINVAL, "wrapping shape",
               WORDS("--shape"));
  check(ng_data_reshape(&D, 1, 2, 2), "reshape");
  assert_error(ng_data_resample(&D, (size_t)1 << 32, (size_t)1 << 32), NG_EINVAL, "wrapping resize",
               WORDS("--resize"));
  assert_error(ng_data_resample(&D, 65536, 65536), NG_EINVAL, "huge resize", WORDS("--resize"));
  check(ng_data_resample(&D, 3, 3), "a fine resize");
  assert_int_equal(D.d, 9);
  ng_data_free(&D);
}

/* ---- Crafted files, written with HDF5 directly ---- */

static void put_attr(hid_t loc, const char *name, hid_t type, const void *buf, hsize_t count) {
  hid_t s = count ? H5Screate_simple(1, &count, NULL) : H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(a >= 0 && H5Awrite(a, type, buf) >= 0);
  H5Aclose(a);
  H5Sclose(s);
}

static void put_data(hid_t f, const char *path, hid_t type, int rank, const hsize_t *dims, const void *buf) {
  hid_t s = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t d = H5Dcreate2(f, path, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(d >= 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  H5Dclose(d);
  H5Sclose(s);
}

static hid_t vstr(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  return t;
}

/* The model "input 2 / dense fc 1" as nograd writes it; `defect` changes one thing. */
enum { M_OK, M_VERSION2, M_DATASET3, M_THRESHOLD2, M_EMPTY_INDEX };
static const char *write_model(const char *name, int defect) {
  const char *p = tpath(name);
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), t = vstr();
  hid_t g = H5Gcreate2(f, "/model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Gclose(H5Gcreate2(f, "/model/index", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  int64_t version[2] = {1, 1};
  put_attr(g, "format_version", H5T_NATIVE_INT64, version, defect == M_VERSION2 ? 2 : 0);
  const char *ds[3] = {"a", "b", "c"};
  put_attr(g, "dataset", t, ds, defect == M_DATASET3 ? 3 : 0);
  double th[2] = {0.5, 0.5};
  if (defect == M_THRESHOLD2) put_attr(g, "threshold", H5T_NATIVE_DOUBLE, th, 2);
  const char *spec = "input 2\ndense fc 1\n";
  put_data(f, "/model/spec", t, 0, NULL, &spec);
  float params[3] = {0.5f, -0.5f, 0.25f};
  hsize_t np = 3, T = defect == M_EMPTY_INDEX ? 0 : 2, T4[2] = {T, 4}, T2 = 2, T24[2] = {2, 4};
  put_data(f, "/model/params", H5T_NATIVE_FLOAT, 1, &np, params);
  const char *names[2] = {"fc.weight", "fc.bias"};
  int64_t offsets[2] = {0, 2}, shapes[8] = {1, 2, 1, 1, 1, 1, 1, 1};
  int32_t ndims[2] = {2, 1};
  put_data(f, "/model/index/names", t, 1, &T, names);
  /* with an empty name list, the other index arrays keep their 2 entries: 0.1 read them into room for 1 */
  put_data(f, "/model/index/offsets", H5T_NATIVE_INT64, 1, &T2, offsets);
  put_data(f, "/model/index/shapes", H5T_NATIVE_INT64, 2, defect == M_EMPTY_INDEX ? T24 : T4, shapes);
  put_data(f, "/model/index/ndims", H5T_NATIVE_INT32, 1, &T2, ndims);
  H5Gclose(g);
  H5Tclose(t);
  H5Fclose(f);
  return p;
}

static void test_crafted_models(void **state) {
  ng_model *m = NULL;
  check(ng_model_read(write_model("ok.h5", M_OK), &m), "the model as nograd writes it");
  assert_int_equal(ng_model_nparams(m), 3);
  ng_model_destroy(&m);
  const char *p = write_model("v2.h5", M_VERSION2);
  assert_error(ng_model_read(p, &m), NG_EFORMAT, "format_version of 2 values",
               WORDS(p, "attribute '/model/format_version' holds 2 values"));
  p = write_model("d3.h5", M_DATASET3);
  assert_error(ng_model_read(p, &m), NG_EFORMAT, "dataset of 3 strings",
               WORDS(p, "attribute '/model/dataset' holds 3 values"));
  p = write_model("t2.h5", M_THRESHOLD2);
  assert_error(ng_model_read(p, &m), NG_EFORMAT, "threshold of 2 values",
               WORDS(p, "attribute '/model/threshold' holds 2 values"));
  p = write_model("e.h5", M_EMPTY_INDEX);
  assert_error(ng_model_read(p, &m), NG_EFORMAT, "empty index, full offsets",
               WORDS(p, "'/model/index/offsets' has 2 entries along dimension 0, expected 0"));
  assert_null(m);
}

/* A dataset of 2 rows of 3 features; `defect` changes one thing. */
enum { D_OK, D_NAME4, D_DOMAIN2, D_WRAP };
static const char *write_dataset(const char *name, int defect) {
  const char *p = tpath(name);
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), t = vstr();
  float x[6] = {1, 2, 3, 4, 5, 6};
  int32_t y[2] = {0, 1};
  hsize_t xd[2] = {2, 3}, yd = 2;
  if (defect == D_WRAP) { /* rows of 2^32 x 2^32 values: 0 in 64 bits; chunked, so nothing is stored */
    hsize_t wd[4] = {2, (hsize_t)1 << 32, (hsize_t)1 << 32, 1}, ch[4] = {1, 1, 1, 1};
    hid_t s = H5Screate_simple(4, wd, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 4, ch);
    hid_t d = H5Dcreate2(f, "/x", H5T_IEEE_F32LE, s, H5P_DEFAULT, pl, H5P_DEFAULT);
    assert_true(d >= 0);
    H5Dclose(d);
    H5Pclose(pl);
    H5Sclose(s);
  } else {
    put_data(f, "/x", H5T_NATIVE_FLOAT, 2, xd, x);
  }
  put_data(f, "/y", H5T_NATIVE_INT32, 1, &yd, y);
  int64_t classes = 2;
  put_attr(f, "classes", H5T_NATIVE_INT64, &classes, 0);
  if (defect == D_NAME4) { /* four fixed strings of 8 bytes: 32 bytes where 0.1 allocated 9 */
    hid_t ft = H5Tcopy(H5T_C_S1);
    H5Tset_size(ft, 8);
    put_attr(f, "name", ft, "aaaaaaaabbbbbbbbccccccccdddddddd", 4);
    H5Tclose(ft);
  } else {
    const char *n = "crafted";
    put_attr(f, "name", t, &n, 0);
  }
  const char *dom[2] = {"d1", "d2"};
  put_attr(f, "domain", t, dom, defect == D_DOMAIN2 ? 2 : 0);
  H5Tclose(t);
  H5Fclose(f);
  return p;
}

static void test_crafted_datasets(void **state) {
  ng_dataset *ds = NULL;
  check(ng_dataset_open(write_dataset("ok.h5", D_OK), &ds), "a fine dataset");
  assert_string_equal(ng_dataset_info(ds)->name, "crafted");
  ng_dataset_close(&ds);
  const char *p = write_dataset("n4.h5", D_NAME4);
  assert_error(ng_dataset_open(p, &ds), NG_EFORMAT, "name of 4 strings",
               WORDS(p, "attribute '/name' holds 4 values"));
  p = write_dataset("d2.h5", D_DOMAIN2);
  assert_error(ng_dataset_open(p, &ds), NG_EFORMAT, "domain of 2 strings",
               WORDS(p, "attribute '/domain' holds 2 values"));
  p = write_dataset("w.h5", D_WRAP);
  assert_error(ng_dataset_open(p, &ds), NG_EFORMAT, "rows that wrap", WORDS(p, "rows of more than"));
  assert_null(ds);
}

static int setup(void **state) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_checked),        cmocka_unit_test(test_spec_sizes),
      cmocka_unit_test(test_opt_sizes),      cmocka_unit_test(test_reshape_resize),
      cmocka_unit_test(test_crafted_models), cmocka_unit_test(test_crafted_datasets),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
