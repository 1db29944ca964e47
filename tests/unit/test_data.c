/* Datasets (src/data): the file round trip and row-range reads, the layout checks on open, atomic writes,
 * the text and IDX importers with their error messages, label maps, resampling, standardization and the
 * stratified split. Files go to a fresh temporary directory. Not an MPI test. */
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
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nograd/data.h"
#include "nograd/error.h"

static char dir[256];

static const char *tmp_path(const char *name) {
  static char buf[4][512];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void expect_error(int status, int expected, const char *fragment) {
  if (status != expected) fail_msg("expected status %d, got %d (%s)", expected, status, ng_errmsg());
  if (fragment && !strstr(ng_errmsg(), fragment))
    fail_msg("message '%s' does not contain '%s'", ng_errmsg(), fragment);
}

static int exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

static const char *write_text(const char *name, const char *text) {
  const char *p = tmp_path(name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return p;
}

/* n rows of d features, x[i][k] = i + k/100, labels i % classes. */
static void make_features(ng_data *D, size_t n, size_t d, int classes) {
  check(ng_data_alloc(D, n, 1, &d, 0), "alloc");
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < d; k++)
      D->x[i * d + k] = (float)i + (float)k / 100;
    D->y[i] = (int32_t)(i % (size_t)classes);
  }
  D->classes = classes;
  snprintf(D->name, sizeof D->name, "toy");
  snprintf(D->domain, sizeof D->domain, "lab");
}

/* ---- Files ----------------------------------------------------------------------------------------------
 */

static void test_roundtrip_rows(void **state) {
  ng_data D;
  make_features(&D, 1000, 7, 3);
  const char *p = tmp_path("rt.h5");
  check(ng_data_write(p, &D), "write");
  assert_false(exists(tmp_path("rt.h5.tmp")));
  ng_dataset *ds = NULL;
  check(ng_dataset_open(p, &ds), "open");
  const ng_data_info *in = ng_dataset_info(ds);
  assert_int_equal(in->n, 1000);
  assert_int_equal(in->d, 7);
  assert_int_equal(in->xrank, 1);
  assert_int_equal(in->t, 0);
  assert_int_equal(in->classes, 3);
  assert_string_equal(in->name, "toy");
  assert_string_equal(in->domain, "lab");
  assert_false(in->standardized);
  /* a rank's rows: exactly what was written, and nothing beyond the buffer */
  float x[300 * 7 + 1];
  int32_t y[301];
  x[300 * 7] = -7;
  y[300] = -7;
  check(ng_dataset_read_rows(ds, 613, 300, x, y), "read rows");
  assert_memory_equal(x, D.x + 613 * 7, 300 * 7 * sizeof(float));
  assert_memory_equal(y, D.y + 613, 300 * sizeof(int32_t));
  assert_true(x[300 * 7] == -7 && y[300] == -7);
  check(ng_dataset_read_rows(ds, 999, 1, NULL, y), "last row, labels only");
  assert_int_equal(y[0], 999 % 3);
  check(ng_dataset_read_rows(ds, 1000, 0, x, y), "empty range at the end");
  expect_error(ng_dataset_read_rows(ds, 990, 11, x, y), NG_EINVAL, "has 1000 rows");
  expect_error(ng_dataset_read_rows(ds, SIZE_MAX, 2, x, y), NG_EINVAL, "rt.h5");
  ng_dataset_close(&ds);
  assert_null(ds);
  ng_dataset_close(&ds); /* NULL is fine */

  ng_data E;
  check(ng_data_load(p, &E), "load");
  assert_int_equal(E.n, 1000);
  assert_memory_equal(E.x, D.x, 1000 * 7 * sizeof(float));
  assert_memory_equal(E.y, D.y, 1000 * sizeof(int32_t));
  ng_data_free(&E);
  ng_data_free(&D);
  ng_data_free(&D); /* a zeroed struct is fine */
}

static void test_roundtrip_images_targets_stats(void **state) {
  size_t shape[3] = {2, 3, 5};
  ng_data D;
  check(ng_data_alloc(&D, 40, 3, shape, 2), "alloc");
  assert_int_equal(D.d, 30);
  for (size_t i = 0; i < 40 * 30; i++)
    D.x[i] = (float)i * 0.5f;
  for (size_t i = 0; i < 40 * 2; i++)
    D.yt[i] = (float)i - 3;
  check(ng_data_standardize(&D), "standardize");
  const char *p = tmp_path("img.h5");
  check(ng_data_write(p, &D), "write");
  ng_dataset *ds = NULL;
  check(ng_dataset_open(p, &ds), "open");
  const ng_data_info *in = ng_dataset_info(ds);
  assert_int_equal(in->xrank, 3);
  assert_int_equal(in->xdims[0], 2);
  assert_int_equal(in->xdims[1], 3);
  assert_int_equal(in->xdims[2], 5);
  assert_int_equal(in->t, 2);
  assert_int_equal(in->classes, 0);
  assert_true(in->standardized);
  float x[5 * 30], y[5 * 2];
  check(ng_dataset_read_rows(ds, 10, 5, x, y), "read");
  assert_memory_equal(x, D.x + 10 * 30, sizeof x);
  assert_memory_equal(y, D.yt + 10 * 2, sizeof y);
  ng_dataset_close(&ds);
  float *mean, *std;
  check(ng_data_read_stats(p, 30, &mean, &std), "stats");
  assert_memory_equal(mean, D.mean, 30 * sizeof(float));
  assert_memory_equal(std, D.std, 30 * sizeof(float));
  free(mean);
  free(std);
  expect_error(ng_data_read_stats(p, 29, &mean, &std), NG_EMISMATCH, "30 features");
  ng_data_free(&D);
  make_features(&D, 10, 3, 2);
  check(ng_data_write(tmp_path("plain.h5"), &D), "write");
  expect_error(ng_data_read_stats(tmp_path("plain.h5"), 3, &mean, &std), NG_ENOTFOUND, "not standardized");
  ng_data_free(&D);
}

static void test_atomic_write(void **state) {
  ng_data D;
  make_features(&D, 20, 2, 2);
  const char *p = tmp_path("keep.h5");
  check(ng_data_write(p, &D), "write");
  D.y[5] = 2; /* outside [0, classes) */
  expect_error(ng_data_write(p, &D), NG_EINVAL, "row 5 has label 2");
  D.y[5] = 1;
  expect_error(ng_data_write(tmp_path("no/such/dir/x.h5"), &D), NG_EIO, "no/such/dir/x.h5.tmp");
  assert_false(exists(tmp_path("keep.h5.tmp")));
  ng_dataset *ds = NULL;
  check(ng_dataset_open(p, &ds), "the old file is intact");
  assert_int_equal(ng_dataset_info(ds)->n, 20);
  ng_dataset_close(&ds);
  ng_data E = D;
  E.n = 0;
  expect_error(ng_data_write(tmp_path("empty.h5"), &E), NG_EINVAL, "no rows");
  assert_false(exists(tmp_path("empty.h5")));
  ng_data_free(&D);
}

/* A file with /x and /y of the given types and ranks, written with HDF5 directly. */
static void write_raw(const char *path, hid_t xtype, int xrank, hid_t ytype, int yrank, hsize_t ny) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t xd[5] = {4, 3, 1, 1, 1}, yd[2] = {ny, 1};
  hid_t sx = H5Screate_simple(xrank, xd, NULL), sy = H5Screate_simple(yrank, yd, NULL);
  hid_t dx = H5Dcreate2(f, "/x", xtype, sx, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t dy = H5Dcreate2(f, "/y", ytype, sy, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int64_t classes = 2;
  hid_t sa = H5Screate(H5S_SCALAR), a = H5Acreate2(f, "classes", H5T_STD_I64LE, sa, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT64, &classes);
  H5Aclose(a);
  H5Sclose(sa);
  H5Dclose(dx);
  H5Dclose(dy);
  H5Sclose(sx);
  H5Sclose(sy);
  H5Fclose(f);
}

static void test_open_checks(void **state) {
  ng_dataset *ds = NULL;
  expect_error(ng_dataset_open(tmp_path("absent.h5"), &ds), NG_EIO, "absent.h5");
  expect_error(ng_dataset_open(write_text("text.h5", "not hdf5\n"), &ds), NG_ECORRUPT,
               "not a readable HDF5 file");
  const char *p = tmp_path("bad.h5");
  write_raw(p, H5T_IEEE_F64LE, 2, H5T_STD_I32LE, 1, 4);
  expect_error(ng_dataset_open(p, &ds), NG_EFORMAT, "'/x' holds float64, expected float32");
  write_raw(p, H5T_IEEE_F32LE, 5, H5T_STD_I32LE, 1, 4);
  expect_error(ng_dataset_open(p, &ds), NG_EFORMAT, "'/x' has 5 dimensions");
  write_raw(p, H5T_IEEE_F32LE, 3, H5T_STD_I32LE, 1, 4); /* N x S x d: sequences */
  check(ng_dataset_open(p, &ds), "a dataset of sequences");
  assert_int_equal(ng_dataset_info(ds)->xrank, 2);
  ng_dataset_close(&ds);
  write_raw(p, H5T_IEEE_F32LE, 2, H5T_STD_I64LE, 1, 4);
  expect_error(ng_dataset_open(p, &ds), NG_EFORMAT, "'/y' holds int64");
  write_raw(p, H5T_IEEE_F32LE, 2, H5T_STD_I32LE, 2, 4);
  expect_error(ng_dataset_open(p, &ds), NG_EFORMAT, "int32 labels of 2 dimensions");
  write_raw(p, H5T_IEEE_F32LE, 2, H5T_STD_I32LE, 1, 5);
  expect_error(ng_dataset_open(p, &ds), NG_EFORMAT, "'/x' has 4 rows but '/y' has 5");
  write_raw(p, H5T_IEEE_F32LE, 2, H5T_IEEE_F32LE, 2, 4);
  check(ng_dataset_open(p, &ds), "float targets");
  ng_dataset_close(&ds);
  hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  H5Fclose(f);
  expect_error(ng_dataset_open(p, &ds), NG_EFORMAT, "no HDF5 path '/x'");
  assert_null(ds);
}

/* ---- Importers ------------------------------------------------------------------------------------------
 */

static void test_csv(void **state) {
  const char *p = write_text("w.csv", "\"a\";\"b\";\"quality\"\n1;2;5\n3; 4 ;7\n\n5;6;6\n");
  ng_text_options o = {.delim = ';', .header = 1, .label = "quality"};
  ng_data D;
  check(ng_import_text(p, &o, NULL, &D), "import");
  assert_int_equal(D.n, 3);
  assert_int_equal(D.d, 2);
  assert_int_equal(D.classes, 8);
  assert_true(D.x[2] == 3 && D.x[3] == 4 && D.y[1] == 7);
  ng_data_free(&D);
  ng_label_map *m = NULL;
  check(ng_label_map_parse("ge:6", &m), "map");
  o.label = "-1";
  check(ng_import_text(p, &o, m, &D), "import mapped");
  assert_int_equal(D.classes, 2);
  assert_true(D.y[0] == 0 && D.y[1] == 1 && D.y[2] == 1);
  ng_data_free(&D);
  ng_label_map_destroy(&m);
  assert_null(m);
  o.label = "1"; /* the first column */
  check(ng_import_text(p, &o, NULL, &D), "label 1");
  assert_true(D.y[2] == 5 && D.x[0] == 2 && D.x[1] == 5);
  ng_data_free(&D);
  o.label = "nope";
  expect_error(ng_import_text(p, &o, NULL, &D), NG_EINVAL, "no column named 'nope'");
  o.label = "4";
  expect_error(ng_import_text(p, &o, NULL, &D), NG_EINVAL, "label column 4 does not exist");

  ng_text_options c = {.delim = ','};
  p = write_text("bad.csv", "1,2,0\n1,x,1\n");
  expect_error(ng_import_text(p, &c, NULL, &D), NG_EFORMAT, "bad.csv:2: column 2: 'x' is not a number");
  p = write_text("rag.csv", "1,2,0\n1,2,1\n1,1\n");
  expect_error(ng_import_text(p, &c, NULL, &D), NG_EFORMAT, "rag.csv:3: ragged row: 2 fields, expected 3");
  p = write_text("frac.csv", "1,2,0\n1,2,1.5\n");
  expect_error(ng_import_text(p, &c, NULL, &D), NG_EFORMAT, "frac.csv:2: column 3: label 1.5");
  p = write_text("inf.csv", "1,inf,0\n");
  expect_error(ng_import_text(p, &c, NULL, &D), NG_EFORMAT, "not a finite number");
  p = write_text("hdr.csv", "a,b,c\n1,2,zz\n");
  c.header = 1;
  expect_error(ng_import_text(p, &c, NULL, &D), NG_EFORMAT, "hdr.csv:2: column 3 ('c')");
  expect_error(ng_import_text(tmp_path("none.csv"), &c, NULL, &D), NG_EIO, "none.csv");
  assert_null(D.x);
}

static void test_missing(void **state) {
  const char *p = write_text("m.csv", "1,?,0\n2,4,1\n3,?,1\n4,10,0\n5,7,1\n");
  ng_text_options o = {.delim = ',', .missing = "?"};
  ng_data D;
  expect_error(ng_import_text(p, &o, NULL, &D), NG_EFORMAT, "m.csv:1: column 2: missing value '?'");
  o.policy = NG_MISSING_DROP;
  check(ng_import_text(p, &o, NULL, &D), "drop");
  assert_int_equal(D.n, 3);
  assert_true(D.x[0] == 2 && D.x[2] == 4 && D.x[4] == 5);
  ng_data_free(&D);
  o.policy = NG_MISSING_MEAN;
  check(ng_import_text(p, &o, NULL, &D), "mean");
  assert_int_equal(D.n, 5);
  assert_float_equal(D.x[1], 7.0, 1e-6);
  assert_float_equal(D.x[5], 7.0, 1e-6);
  ng_data_free(&D);
  p = write_text("m2.csv", "1,?,0\n2,4,1\n3,?,1\n4,10,0\n5,5,1\n");
  o.policy = NG_MISSING_MEDIAN;
  check(ng_import_text(p, &o, NULL, &D), "median");
  assert_float_equal(D.x[1], 5.0, 1e-6);
  ng_data_free(&D);
  p = write_text("m3.csv", "1,2,?\n2,4,1\n");
  expect_error(ng_import_text(p, &o, NULL, &D), NG_EFORMAT, "m3.csv:1: column 3: the label is missing");
  p = write_text("m4.csv", "1,?,0\n2,?,1\n");
  expect_error(ng_import_text(p, &o, NULL, &D), NG_EFORMAT, "column 2: every value is missing");
}

static void test_whitespace_gz(void **state) {
  const char *p = tmp_path("zip.gz");
  gzFile f = gzopen(p, "wb");
  gzputs(f, "9.0000 -1 0.5 1\n 3.0000\t0 0 -0.25  \n");
  gzclose(f);
  ng_text_options o = {.delim = ' '};
  ng_data D;
  check(ng_import_text(p, &o, NULL, &D), "whitespace table");
  assert_int_equal(D.n, 2);
  assert_int_equal(D.d, 3);
  assert_true(D.y[0] == 9 && D.y[1] == 3 && D.x[2] == 1 && D.x[5] == -0.25f);
  check(ng_data_reshape(&D, 1, 1, 3), "reshape");
  expect_error(ng_data_reshape(&D, 1, 2, 2), NG_EINVAL, "a row has 3 features");
  ng_data_free(&D);
}

static void put_be32(FILE *f, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  fwrite(b, 1, 4, f);
}

static void write_idx(const char *images, const char *labels, uint32_t n, uint32_t stored, uint32_t magic) {
  FILE *f = fopen(images, "wb");
  put_be32(f, magic);
  put_be32(f, n);
  put_be32(f, 2);
  put_be32(f, 3);
  for (uint32_t i = 0; i < stored * 6; i++)
    fputc((int)(i % 256), f);
  fclose(f);
  f = fopen(labels, "wb");
  put_be32(f, 2049);
  put_be32(f, n);
  for (uint32_t i = 0; i < n; i++)
    fputc((int)(i % 10), f);
  fclose(f);
}

static void test_idx(void **state) {
  const char *im = tmp_path("im.idx"), *lb = tmp_path("lb.idx");
  write_idx(im, lb, 5, 5, 2051);
  ng_data D;
  check(ng_import_idx(im, lb, NULL, &D), "idx");
  assert_int_equal(D.n, 5);
  assert_int_equal(D.xrank, 3);
  assert_true(D.xdims[0] == 1 && D.xdims[1] == 2 && D.xdims[2] == 3);
  assert_true(D.x[7] == 7 && D.y[4] == 4);
  assert_int_equal(D.classes, 5);
  ng_data_free(&D);
  write_idx(im, lb, 5, 4, 2051);
  expect_error(ng_import_idx(im, lb, NULL, &D), NG_EFORMAT, "ends after 4 of 5 images");
  write_idx(im, lb, 5, 5, 2049);
  expect_error(ng_import_idx(im, lb, NULL, &D), NG_EFORMAT, "magic number 2049, expected 2051");
  expect_error(ng_import_idx(lb, lb, NULL, &D), NG_EFORMAT, "lb.idx: IDX magic number 2049, expected 2051");
  assert_null(D.x);
}

/* ---- Transforms -----------------------------------------------------------------------------------------
 */

static void test_label_map(void **state) {
  ng_label_map *m = NULL;
  double y;
  check(ng_label_map_parse("gt:0", &m), "gt");
  check(ng_label_map_apply(m, 3, &y), "apply");
  assert_true(y == 1);
  check(ng_label_map_apply(m, 0, &y), "apply");
  assert_true(y == 0);
  ng_label_map_destroy(&m);
  check(ng_label_map_parse("add:-3", &m), "add");
  check(ng_label_map_apply(m, 9, &y), "apply");
  assert_true(y == 6);
  ng_label_map_destroy(&m);
  check(ng_label_map_parse("3=0,4=0,5=1", &m), "table");
  check(ng_label_map_apply(m, 5, &y), "apply");
  assert_true(y == 1);
  assert_int_equal(ng_label_map_apply(m, 6, &y), NG_EINVAL);
  ng_label_map_destroy(&m);
  expect_error(ng_label_map_parse("gt:x", &m), NG_EINVAL, "cannot parse 'gt:x'");
  expect_error(ng_label_map_parse("3=0,4", &m), NG_EINVAL, "--label-map");
  expect_error(ng_label_map_parse("binarize", &m), NG_EINVAL, "--label-map");
  assert_null(m);
}

static void test_resample(void **state) {
  size_t shape[3] = {1, 4, 4};
  ng_data D;
  check(ng_data_alloc(&D, 2, 3, shape, 0), "alloc");
  for (int i = 0; i < 16; i++) {
    D.x[i] = (float)i;
    D.x[16 + i] = 5;
  }
  D.classes = 1;
  check(ng_data_resample(&D, 2, 2), "down");
  assert_int_equal(D.d, 4);
  /* area averages of the 2x2 blocks of 0..15 */
  assert_float_equal(D.x[0], (0 + 1 + 4 + 5) / 4.0, 1e-6);
  assert_float_equal(D.x[3], (10 + 11 + 14 + 15) / 4.0, 1e-6);
  for (int i = 4; i < 8; i++)
    assert_float_equal(D.x[i], 5, 0);
  check(ng_data_resample(&D, 4, 4), "up");
  /* bilinear between centres: the corners keep their values (clamped), the inside interpolates */
  assert_float_equal(D.x[0], 2.5, 1e-6);
  assert_float_equal(D.x[15], 12.5, 1e-6);
  assert_float_equal(D.x[1], 2.5 + 0.25 * 2, 1e-6);
  for (int i = 0; i < 16; i++)
    assert_true(D.x[i] >= 2.5f && D.x[i] <= 12.5f);
  /* a non-integer factor: 28 -> 16 keeps a constant image constant and the mean of a ramp */
  ng_data_free(&D);
  size_t big[3] = {1, 28, 28};
  check(ng_data_alloc(&D, 1, 3, big, 0), "alloc");
  double sum = 0;
  for (int i = 0; i < 28 * 28; i++)
    sum += D.x[i] = (float)(i % 28);
  check(ng_data_resample(&D, 16, 16), "28 -> 16");
  double sum2 = 0;
  for (int i = 0; i < 256; i++)
    sum2 += D.x[i];
  assert_float_equal(sum / (28 * 28), sum2 / 256, 1e-4);
  ng_data_free(&D);
  size_t flat = 4;
  check(ng_data_alloc(&D, 1, 1, &flat, 0), "alloc");
  expect_error(ng_data_resample(&D, 2, 2), NG_EINVAL, "not images");
  ng_data_free(&D);
}

static void test_standardize(void **state) {
  ng_data D;
  make_features(&D, 50, 3, 2);
  for (size_t i = 0; i < 50; i++)
    D.x[i * 3 + 2] = 4; /* a constant feature */
  check(ng_data_standardize(&D), "standardize");
  for (size_t k = 0; k < 3; k++) {
    double m = 0, v = 0;
    for (size_t i = 0; i < 50; i++)
      m += D.x[i * 3 + k];
    m /= 50;
    for (size_t i = 0; i < 50; i++)
      v += (D.x[i * 3 + k] - m) * (D.x[i * 3 + k] - m);
    assert_float_equal(m, 0, 1e-5);
    assert_float_equal(sqrt(v / 50), k == 2 ? 0 : 1, 1e-5);
  }
  assert_true(D.std[2] == 1 && D.mean[2] == 4);
  expect_error(ng_data_standardize(&D), NG_EINVAL, "already standardized");
  ng_data E;
  make_features(&E, 5, 3, 2);
  check(ng_data_apply_stats(&E, D.mean, D.std), "apply");
  assert_float_equal(E.x[3], (1 - D.mean[0]) / D.std[0], 1e-6);
  ng_data_free(&E);
  ng_data_free(&D);
}

static void test_split(void **state) {
  ng_data D;
  make_features(&D, 1003, 1, 1);
  for (size_t i = 0; i < D.n; i++)
    D.y[i] = i % 7 == 0 ? 0 : i % 3 == 0 ? 1 : 2; /* uneven classes */
  D.classes = 3;
  double frac[3] = {0.7, 0.15, 0.15};
  ng_data a[3], b[3], c[3];
  check(ng_data_split(&D, frac, 42, a), "split");
  check(ng_data_split(&D, frac, 42, b), "split again");
  check(ng_data_split(&D, frac, 43, c), "other seed");
  size_t total = 0;
  int differs = 0;
  long per[3][3] = {{0}}, all[3] = {0};
  for (size_t i = 0; i < D.n; i++)
    all[D.y[i]]++;
  unsigned char *seen = calloc(D.n, 1);
  for (int k = 0; k < 3; k++) {
    total += a[k].n;
    assert_int_equal(a[k].n, b[k].n);
    assert_memory_equal(a[k].x, b[k].x, a[k].n * sizeof(float));
    differs |= a[k].n != c[k].n || memcmp(a[k].x, c[k].x, a[k].n * sizeof(float)) != 0;
    assert_int_equal(a[k].classes, 3);
    assert_string_equal(a[k].name, "toy");
    for (size_t i = 0; i < a[k].n; i++) {
      size_t row = (size_t)a[k].x[i];
      assert_false(seen[row]);
      seen[row] = 1;
      assert_int_equal(a[k].y[i], D.y[row]);
      if (i) assert_true(a[k].x[i] > a[k].x[i - 1]); /* original order kept */
      per[k][a[k].y[i]]++;
    }
  }
  free(seen);
  assert_int_equal(total, D.n);
  assert_true(differs);
  for (int k = 0; k < 3; k++)
    for (int cl = 0; cl < 3; cl++)
      assert_true(fabs((double)per[k][cl] - frac[k] * (double)all[cl]) < 1.0);
  for (int k = 0; k < 3; k++) {
    ng_data_free(&a[k]);
    ng_data_free(&b[k]);
    ng_data_free(&c[k]);
  }
  double bad[3] = {0.5, 0.2, 0.2};
  expect_error(ng_data_split(&D, bad, 1, a), NG_EINVAL, "sum to 0.9");
  ng_data_free(&D);
}

/* ng_data_subset: k rows in their original order, each class floor(k n_c / n) or one more (the largest
 * remainders), the same rows for the same seed, other rows for another seed; refused beyond n rows. */
static void test_subset(void **state) {
  ng_data D, a, b, c;
  make_features(&D, 1003, 1, 1);
  for (size_t i = 0; i < D.n; i++)
    D.y[i] = i % 7 == 0 ? 0 : i % 3 == 0 ? 1 : 2; /* uneven classes */
  D.classes = 3;
  size_t k = 200;
  check(ng_data_subset(&D, k, 42, &a), "subset");
  check(ng_data_subset(&D, k, 42, &b), "subset again");
  check(ng_data_subset(&D, k, 43, &c), "other seed");
  assert_int_equal(a.n, k);
  assert_memory_equal(a.x, b.x, k * sizeof(float));
  assert_true(memcmp(a.x, c.x, k * sizeof(float)) != 0);
  long per[3] = {0}, all[3] = {0};
  for (size_t i = 0; i < D.n; i++)
    all[D.y[i]]++;
  for (size_t i = 0; i < a.n; i++) {
    size_t row = (size_t)a.x[i];
    assert_int_equal(a.y[i], D.y[row]);
    if (i) assert_true(a.x[i] > a.x[i - 1]); /* original order, no row twice */
    per[a.y[i]]++;
  }
  for (int cl = 0; cl < 3; cl++) {
    double want = (double)k * (double)all[cl] / (double)D.n;
    assert_true((double)per[cl] >= floor(want) && (double)per[cl] <= floor(want) + 1);
  }
  assert_string_equal(a.name, "toy");
  ng_data_free(&a);
  ng_data_free(&b);
  ng_data_free(&c);
  expect_error(ng_data_subset(&D, D.n + 1, 1, &a), NG_EINVAL, "only 1003");
  ng_data_free(&D);
}

static int setup(void **state) {
  snprintf(dir, sizeof dir, "/tmp/ng_test_data_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_rows),
      cmocka_unit_test(test_roundtrip_images_targets_stats),
      cmocka_unit_test(test_atomic_write),
      cmocka_unit_test(test_open_checks),
      cmocka_unit_test(test_csv),
      cmocka_unit_test(test_missing),
      cmocka_unit_test(test_whitespace_gz),
      cmocka_unit_test(test_idx),
      cmocka_unit_test(test_label_map),
      cmocka_unit_test(test_resample),
      cmocka_unit_test(test_standardize),
      cmocka_unit_test(test_split),
      cmocka_unit_test(test_subset),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
