// ctest: LABELS unit TIMEOUT 300
/* Checkpoints (src/io/ckpt.c) and their inspection (src/io/inspect.c): bit-identical round trips of states
 * (nested, empty, a 1000 x 1000 matrix, special values), of the history, /meta and /best; the PATH.prev
 * rotation; a CMA-ES run resumed from a checkpoint equal to one never interrupted; the errors for a
 * truncated file, a flipped byte, a file that is no checkpoint, another format version, a missing file and
 * an unwritable directory; the text and JSON of ng_inspect; h5py's view of the file; and the time to write
 * and read 16 MB of state. Not an MPI test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs the above first
#include <cmocka.h>

#include "unit.h"
#include <dirent.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/ckpt_internal.h"
#include "io/seal.h"
#include "nograd/ckpt.h"
#include "nograd/error.h"
#include "nograd/inspect.h"
#include "nograd/opt.h"
#include "nograd/state.h"

#define PYTHON "/usr/bin/python3"

static char tmpdir[256];

/* A path in the test's directory (one of a few rotating buffers). */
static const char *tpath(const char *name) {
  static char bufs[8][512];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, sizeof bufs[0], "%s/%s", tmpdir, name);
  return b;
}

static void assert_lacks(const char *haystack, const char *needle) {
  if (strstr(haystack, needle)) fail_msg("did not expect '%s' in: %s", needle, haystack);
}

static int remove_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[768];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat sb;
    if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
      chmod(p, 0700);
      remove_tree(p);
    } else {
      unlink(p);
    }
  }
  closedir(d);
  return rmdir(dir);
}

static int group_setup(void **state) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/ng_ckpt_XXXXXX", base && *base ? base : "/tmp");
  return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state) {
  if (getenv("NG_KEEP")) return 0;
  return remove_tree(tmpdir) == 0 ? 0 : -1;
}

/* ---- Fixtures -------------------------------------------------------------------------------------------
 */

static const char *const input_files[] = {"data/train.h5", "data/\xce\xbb-val.h5"};
static const char *const input_sums[] = {"0123456789abcdef", "fedcba9876543210"};

static ng_ckpt_meta sample_meta(void) {
  ng_ckpt_meta m = {
      .program_version = "0.1.0",
      .command_line =
          "nograd minimize --fn rosenbrock --dim 8 \\\n  --note \"\xce\xbb \xe2\x86\x92 \xc3\xbc\"",
      .config = "fn=rosenbrock\ndim=8\noptimizer=cmaes\nseed=7\n",
      .budget = "max-evals=5000\nftarget=1e-10\n",
      .optimizer = "cmaes",
      .ranks = 4,
      .groups = 2,
      .input_files = input_files,
      .input_checksums = input_sums,
      .ninputs = 2,
  };
  return m;
}

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
  return *s;
}

/* A state with every shape the writer must handle; `big` adds a big x big matrix of arbitrary bits. */
static ng_state *sample_state(size_t big) {
  ng_state *st;
  check(ng_state_create(&st), "create");
  double special[8] = {-0.0, INFINITY, -INFINITY, 4.9e-324, DBL_MAX, -DBL_MIN, 1.0 / 3.0, 0};
  uint64_t nan_bits = 0x7ff8000000012345ULL; /* a quiet NaN with a payload */
  memcpy(&special[7], &nan_bits, 8);
  check(ng_state_put_f64(st, "cmaes/special", special, 8), "put");
  int64_t ints[5] = {INT64_MIN, INT64_MAX, -1, 0, 42};
  check(ng_state_put_i64(st, "rng/counters", ints, 5), "put");
  check(ng_state_put_scalar(st, "a/b/c/d/deep", 1.5), "put");
  check(ng_state_put_f64(st, "empty/f64", NULL, 0), "put");
  check(ng_state_put_i64(st, "empty/i64", NULL, 0), "put");
  check(ng_state_put_int(st, "top", 7), "put");
  check(ng_state_put_int(st, "cfg/n", 8), "put");
  if (big) {
    double *m = malloc(big * big * sizeof *m);
    uint64_t s = 12345;
    for (size_t i = 0; i < big * big; i++) {
      uint64_t bits = lcg(&s);
      if (((bits >> 52) & 0x7ff) == 0x7ff) bits ^= 1ULL << 62; /* keep NaN payloads out of the bulk */
      memcpy(&m[i], &bits, 8);
    }
    check(ng_state_put_f64(st, "cmaes/C", m, big * big), "put");
    for (size_t i = 0; i < big * big; i++)
      m[i] = (double)i * 0.5 - 3.0;
    check(ng_state_put_f64(st, "cmaes/B", m, big * big), "put");
    free(m);
  }
  return st;
}

/* The same entries with the same types and bits, whatever the order. */
static void assert_states_equal(const ng_state *a, const ng_state *b) {
  assert_int_equal(ng_state_count(a), ng_state_count(b));
  for (size_t i = 0; i < ng_state_count(a); i++) {
    const char *name;
    ng_state_type type;
    size_t len;
    const void *va;
    check(ng_state_entry(a, i, &name, &type, &len, &va), "entry");
    int found = 0;
    for (size_t j = 0; j < ng_state_count(b) && !found; j++) {
      const char *nb;
      ng_state_type tb;
      size_t lb;
      const void *vb;
      check(ng_state_entry(b, j, &nb, &tb, &lb, &vb), "entry");
      if (strcmp(name, nb) != 0) continue;
      found = 1;
      if (tb != type) fail_msg("entry '%s': type %d, expected %d", name, (int)tb, (int)type);
      if (lb != len) fail_msg("entry '%s': %zu values, expected %zu", name, lb, len);
      if (len && memcmp(va, vb, len * 8) != 0) fail_msg("entry '%s': values differ", name);
    }
    if (!found) fail_msg("entry '%s' missing after the round trip", name);
  }
}

static void sample_history(ng_history *h, size_t rows) {
  double row[NG_HISTORY_NCOLS];
  for (size_t i = 0; i < rows; i++) {
    for (size_t j = 0; j < NG_HISTORY_NCOLS; j++)
      row[j] = (double)i * 100.0 + (double)j + 0.25;
    row[NG_HIST_generation] = (double)(i + 1);
    row[NG_HIST_sigma] = 1.0 / (double)(i + 1);
    check(ng_history_append(h, row), "append");
  }
}

static const double sample_best_x[5] = {1.0, -2.5, 0.0, 1e-300, 3.25};

/* Writes a small complete checkpoint at `path`; `tag` changes best f so that two writes differ. */
static void write_sample(const char *path, double tag) {
  ng_ckpt_meta m = sample_meta();
  ng_state *st = sample_state(0);
  ng_history h = {0};
  sample_history(&h, 7);
  check(ng_ckpt_write(path, &m, st, &h, sample_best_x, 5, tag, NULL), "write");
  ng_history_free(&h);
  ng_state_destroy(&st);
}

static double read_best_f(const char *path) {
  double f = NAN;
  check(ng_ckpt_read(path, NULL, NULL, NULL, NULL, NULL, &f, NULL), "read");
  return f;
}

static char *slurp(FILE *f) {
  long size;
  fflush(f);
  fseek(f, 0, SEEK_END);
  size = ftell(f);
  rewind(f);
  char *s = calloc((size_t)size + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)size, f), (size_t)size);
  return s;
}

static double seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int have_python_h5py(void) {
  return access(PYTHON, X_OK) == 0 && system(PYTHON " -c 'import h5py, json' >/dev/null 2>&1") == 0;
}

/* ---- 1. the history table and file checksums ------------------------------------------------------------
 */

static void test_history_table(void **state) {
  const char *const *cols = ng_history_columns();
  assert_int_equal(NG_HISTORY_NCOLS, 15);
  assert_string_equal(cols[NG_HIST_generation], "generation");
  assert_string_equal(cols[NG_HIST_best], "best");
  assert_string_equal(cols[NG_HIST_sigma], "sigma");
  assert_string_equal(cols[NG_HIST_bytes], "bytes");
  assert_null(cols[NG_HISTORY_NCOLS]);
  ng_history h = {0};
  sample_history(&h, 1000);
  assert_int_equal(h.nrows, 1000);
  assert_true(h.cap >= 1000);
  assert_true(h.rows[999 * NG_HISTORY_NCOLS + NG_HIST_generation] == 1000.0);
  assert_true(h.rows[10 * NG_HISTORY_NCOLS + NG_HIST_t_sample] == 1000.0 + NG_HIST_t_sample + 0.25);
  ng_history_free(&h);
  assert_null(h.rows);
  assert_int_equal(h.nrows, 0);
  assert_int_equal(h.cap, 0);
}

static void test_file_checksum(void **state) {
  /* FNV-1a 64 reference values. */
  const struct {
    const char *text, *sum;
  } cases[] = {{"", "cbf29ce484222325"}, {"a", "af63dc4c8601ec8c"}, {"foobar", "85944171f73967e8"}};
  for (size_t i = 0; i < 3; i++) {
    const char *p = tpath("sum.txt");
    FILE *f = fopen(p, "wb");
    fputs(cases[i].text, f);
    fclose(f);
    char out[17];
    check(ng_file_checksum(p, out), "checksum");
    assert_string_equal(out, cases[i].sum);
  }
  char out[17];
  const char *missing = tpath("no-such-input.bin");
  assert_int_equal(ng_file_checksum(missing, out), NG_EIO);
  assert_contains(ng_errmsg(), missing);
  assert_contains(ng_errmsg(), "No such file or directory");
}

/* ---- 2. round trips -------------------------------------------------------------------------------------
 */

static void test_round_trip_state(void **state) {
  const char *p = tpath("state.h5");
  ng_ckpt_meta m = sample_meta();
  ng_state *st = sample_state(1000), *res = sample_state(0), *back, *rback;
  check(ng_state_put_f64(res, "model/weights", sample_best_x, 5), "put");
  check(ng_ckpt_write(p, &m, st, NULL, NULL, 0, NAN, res), "write");
  check(ng_state_create(&back), "create");
  check(ng_state_create(&rback), "create");
  size_t n = 99;
  double f = 0;
  check(ng_ckpt_read(p, NULL, back, NULL, NULL, &n, &f, rback), "read");
  assert_states_equal(st, back);
  assert_states_equal(back, st);
  assert_states_equal(res, rback);
  assert_int_equal(n, 0);
  assert_true(isnan(f));
  ng_state_destroy(&rback);
  ng_state_destroy(&back);
  ng_state_destroy(&res);
  ng_state_destroy(&st);
}

static void test_round_trip_meta_history_best(void **state) {
  const char *p = tpath("all.h5");
  write_sample(p, -0.125);
  ng_ckpt_info info;
  ng_history h = {0}, expect = {0};
  double x[5], f = 0;
  size_t n = 5;
  check(ng_ckpt_read(p, &info, NULL, &h, x, &n, &f, NULL), "read");
  ng_ckpt_meta m = sample_meta();
  assert_int_equal(info.format_version, NG_CKPT_FORMAT_VERSION);
  assert_string_equal(info.program_version, m.program_version);
  assert_string_equal(info.command_line, m.command_line);
  assert_string_equal(info.config, m.config);
  assert_string_equal(info.budget, m.budget);
  assert_string_equal(info.optimizer, "cmaes");
  assert_int_equal(info.ranks, 4);
  assert_int_equal(info.groups, 2);
  assert_int_equal(info.ninputs, 2);
  for (size_t i = 0; i < 2; i++) {
    assert_string_equal(info.input_files[i], input_files[i]);
    assert_string_equal(info.input_checksums[i], input_sums[i]);
  }
  /* created: UTC ISO 8601, 2025-01-31T12:00:00Z */
  assert_int_equal(strlen(info.created), 20);
  assert_true(info.created[4] == '-' && info.created[10] == 'T' && info.created[19] == 'Z');
  ng_ckpt_info_free(&info);
  assert_null(info.config);
  assert_int_equal(info.ninputs, 0);

  sample_history(&expect, 7);
  assert_int_equal(h.nrows, 7);
  assert_memory_equal(h.rows, expect.rows, (size_t)7 * NG_HISTORY_NCOLS * sizeof(double));
  assert_memory_equal(x, sample_best_x, sizeof x);
  assert_true(f == -0.125);

  /* best_x NULL: *n receives the length; a buffer of the wrong length is refused. */
  n = 0;
  check(ng_ckpt_read(p, NULL, NULL, NULL, NULL, &n, NULL, NULL), "read");
  assert_int_equal(n, 5);
  n = 4;
  assert_int_equal(ng_ckpt_read(p, NULL, NULL, NULL, x, &n, NULL, NULL), NG_EMISMATCH);
  assert_contains(ng_errmsg(), "/best/x has 5 values, expected 4");

  /* No inputs: the info says 0 and has no arrays. */
  m.ninputs = 0;
  m.input_files = m.input_checksums = NULL;
  check(ng_ckpt_write(p, &m, NULL, NULL, NULL, 0, 1.0, NULL), "write");
  check(ng_ckpt_read(p, &info, NULL, &h, NULL, &n, &f, NULL), "read");
  assert_int_equal(info.ninputs, 0);
  assert_int_equal(h.nrows, 0);
  ng_ckpt_info_free(&info);
  ng_history_free(&h);
  ng_history_free(&expect);
}

static void test_prev_rotation(void **state) {
  const char *p = tpath("rot.h5"), *prev = tpath("rot.h5.prev"), *tmp = tpath("rot.h5.tmp");
  write_sample(p, 1.0);
  assert_int_equal(access(prev, F_OK), -1);
  write_sample(p, 2.0);
  assert_true(read_best_f(p) == 2.0);
  assert_true(read_best_f(prev) == 1.0);
  write_sample(p, 3.0);
  assert_true(read_best_f(p) == 3.0);
  assert_true(read_best_f(prev) == 2.0);
  assert_int_equal(access(tmp, F_OK), -1);
}

/* ---- 3. a CMA-ES run resumed from a checkpoint is the run never interrupted -----------------------------
 */

static double rosen(const double *x, size_t n) {
  double f = 0;
  for (size_t i = 0; i + 1 < n; i++)
    f += 100 * pow(x[i + 1] - x[i] * x[i], 2) + pow(1 - x[i], 2);
  return f;
}

static ng_opt *make_cmaes(size_t n) {
  ng_opt *opt;
  check(ng_opt_create("cmaes", n, &opt), "create");
  check(ng_opt_set_seed(opt, 7), "seed");
  check(ng_opt_set_sigma0(opt, 0.5), "sigma0");
  check(ng_opt_setup(opt), "setup");
  return opt;
}

static void generation(ng_opt *opt, double *X, ng_history *h) {
  size_t n = ng_opt_dim(opt), lambda = ng_opt_popsize(opt);
  double f[64];
  assert_true(lambda <= 64);
  check(ng_opt_ask(opt, X), "ask");
  for (size_t k = 0; k < lambda; k++)
    f[k] = rosen(X + k * n, n);
  check(ng_opt_tell(opt, f), "tell");
  if (h) {
    ng_opt_info in;
    ng_opt_get_info(opt, &in);
    double row[NG_HISTORY_NCOLS] = {0};
    row[NG_HIST_generation] = (double)in.generation;
    row[NG_HIST_evaluations] = (double)in.evaluations;
    row[NG_HIST_best] = in.best_f;
    row[NG_HIST_gen_best] = in.gen_best_f;
    row[NG_HIST_median] = in.gen_median_f;
    row[NG_HIST_sigma] = in.sigma;
    row[NG_HIST_popsize] = (double)lambda;
    check(ng_history_append(h, row), "append");
  }
}

/* Writes the checkpoint of a CMA-ES run on Rosenbrock after 20 generations (n = 8). */
static void write_cmaes_checkpoint(const char *path, ng_opt **keep) {
  const size_t n = 8;
  ng_opt *opt = make_cmaes(n);
  double X[64 * 8];
  ng_history h = {0};
  for (int g = 0; g < 20; g++)
    generation(opt, X, &h);
  ng_state *st;
  check(ng_state_create(&st), "create");
  check(ng_opt_save(opt, st), "save");
  double best_f;
  const double *best = ng_opt_best(opt, &best_f);
  ng_ckpt_meta m = sample_meta();
  check(ng_ckpt_write(path, &m, st, &h, best, n, best_f, NULL), "write");
  ng_state_destroy(&st);
  ng_history_free(&h);
  if (keep)
    *keep = opt;
  else
    ng_opt_destroy(&opt);
}

static void test_resume_bit_identical(void **state) {
  const char *p = tpath("cmaes.h5");
  ng_opt *a;
  write_cmaes_checkpoint(p, &a);
  ng_state *st;
  ng_history h = {0};
  check(ng_state_create(&st), "create");
  size_t n = 8;
  double x[8], f;
  check(ng_ckpt_read(p, NULL, st, &h, x, &n, &f, NULL), "read");
  assert_int_equal(h.nrows, 20);
  assert_true(h.rows[19 * NG_HISTORY_NCOLS + NG_HIST_generation] == 20.0);
  ng_opt *b = make_cmaes(8);
  check(ng_opt_load(b, st), "load");
  double fa, fb;
  assert_memory_equal(ng_opt_best(a, &fa), x, sizeof x);
  assert_true(fa == f);
  double XA[64 * 8], XB[64 * 8];
  for (int g = 0; g < 15; g++) {
    generation(a, XA, NULL);
    generation(b, XB, NULL);
    assert_memory_equal(XA, XB, ng_opt_popsize(a) * 8 * sizeof(double));
  }
  ng_opt_best(a, &fa);
  ng_opt_best(b, &fb);
  assert_memory_equal(&fa, &fb, sizeof fa);
  assert_memory_equal(ng_opt_mean(a), ng_opt_mean(b), 8 * sizeof(double));
  ng_opt_destroy(&b);
  ng_opt_destroy(&a);
  ng_history_free(&h);
  ng_state_destroy(&st);
}

/* ---- 4. damaged and foreign files -----------------------------------------------------------------------
 */

/* Removes nograd's header (io/seal.h) from the checkpoint at p, keeping `keep` bytes of it in all: what
 * nograd 0.1 or another tool would have written. */
static void strip_header(const char *p, off_t keep) {
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  char *b = malloc((size_t)keep);
  assert_int_equal(fread(b, 1, (size_t)keep, f), (size_t)keep);
  fclose(f);
  f = fopen(p, "wb");
  assert_int_equal(fwrite(b + NG_SEAL_BLOCK, 1, (size_t)keep - NG_SEAL_BLOCK, f),
                   (size_t)keep - NG_SEAL_BLOCK);
  fclose(f);
  free(b);
}

static void test_truncated(void **state) {
  const char *p = tpath("trunc.h5"), *prev = tpath("trunc.h5.prev");
  write_sample(p, 1.0);
  write_sample(p, 2.0);
  struct stat sb;
  assert_int_equal(stat(p, &sb), 0);
  assert_int_equal(truncate(p, sb.st_size / 2), 0);
  ng_ckpt_info info;
  assert_int_equal(ng_ckpt_read(p, &info, NULL, NULL, NULL, NULL, NULL, NULL), NG_ECORRUPT);
  char expect[1024];
  snprintf(
      expect, sizeof expect,
      "checkpoint '%s' is damaged: it has %lld bytes after its header, nograd wrote %lld (truncated?); it "
      "was not read; the previous checkpoint '%s' may be resumed instead",
      p, (long long)(sb.st_size / 2 - NG_SEAL_BLOCK), (long long)(sb.st_size - NG_SEAL_BLOCK), prev);
  assert_string_equal(ng_errmsg(), expect);
  assert_null(info.config);
  assert_true(read_best_f(prev) == 1.0); /* which is true */
  /* Without nograd's header (a checkpoint of nograd 0.1, or one rewritten by another tool), the truncated
   * HDF5 file is read by the checking child first, which cannot read it. */
  write_sample(p, 1.0);
  write_sample(p, 2.0);
  assert_int_equal(stat(p, &sb), 0);
  strip_header(p, sb.st_size / 2);
  assert_int_equal(ng_ckpt_read(p, &info, NULL, NULL, NULL, NULL, NULL, NULL), NG_ECORRUPT);
  snprintf(
      expect, sizeof expect,
      "checkpoint '%s' is not a readable HDF5 file (truncated or damaged?); the previous checkpoint '%s' "
      "may be resumed instead",
      p, prev);
  assert_string_equal(ng_errmsg(), expect);
}

/* Flips one byte of the raw data of `dataset`: the file's CRC (io/seal.h) refuses it before HDF5 reads it;
 * sealed again for the flipped content, as a deliberate alteration would be, the state checksum in /meta
 * refuses it. */
static void flip_and_expect_mismatch(const char *p, const char *dataset, uint64_t within, int has_prev) {
  uint64_t off;
  check(ng_h5_dataset_offset(p, dataset, &off), "offset");
  int fd = open(p, O_RDWR);
  assert_true(fd >= 0);
  unsigned char byte;
  assert_int_equal(pread(fd, &byte, 1, (off_t)(off + within)), 1);
  byte ^= 0x10;
  assert_int_equal(pwrite(fd, &byte, 1, (off_t)(off + within)), 1);
  close(fd);
  ng_state *st;
  check(ng_state_create(&st), "create");
  assert_int_equal(ng_ckpt_read(p, NULL, st, NULL, NULL, NULL, NULL, NULL), NG_ECORRUPT);
  assert_int_equal(ng_state_count(st), 0); /* nothing handed over */
  char expect[700];
  snprintf(expect, sizeof expect,
           "checkpoint '%s' is damaged: its content does not match the CRC-32 nograd wrote (", p);
  assert_true(strncmp(ng_errmsg(), expect, strlen(expect)) == 0);
  check(ng__seal_file(p), "seal again");
  assert_int_equal(ng_ckpt_read(p, NULL, st, NULL, NULL, NULL, NULL, NULL), NG_ECORRUPT);
  assert_int_equal(ng_state_count(st), 0);
  ng_state_destroy(&st);
  snprintf(expect, sizeof expect, "checkpoint '%s': state checksum mismatch (stored ", p);
  assert_true(strncmp(ng_errmsg(), expect, strlen(expect)) == 0);
  assert_contains(ng_errmsg(), "): the file was altered or damaged");
  if (has_prev) {
    snprintf(expect, sizeof expect, "; the previous checkpoint '%s.prev' may be resumed instead", p);
    assert_contains(ng_errmsg(), expect);
  } else {
    assert_lacks(ng_errmsg(), ".prev");
  }
}

static void test_flipped_byte(void **state) {
  const char *p = tpath("flip.h5");
  ng_ckpt_meta m = sample_meta();
  ng_state *st = sample_state(100);
  check(ng_ckpt_write(p, &m, st, NULL, NULL, 0, 0.0, NULL), "write");
  flip_and_expect_mismatch(p, "/optimizer/cmaes/C", 8 * 4321 + 3, 0);
  /* The message quotes both checksums as 16 hex digits. */
  const char *s = strstr(ng_errmsg(), "(stored ");
  assert_non_null(s);
  assert_int_equal(strspn(s + 8, "0123456789abcdef"), 16);
  assert_true(strncmp(s + 24, ", computed ", 11) == 0);
  assert_int_equal(strspn(s + 35, "0123456789abcdef"), 16);

  const char *q = tpath("flip2.h5");
  write_sample(q, 1.0);
  write_sample(q, 2.0);
  flip_and_expect_mismatch(q, "/history/best", 24, 1); /* in row 3 */
  write_sample(q, 3.0);
  flip_and_expect_mismatch(q, "/best/x", 8, 1);
  ng_state_destroy(&st);
}

static void test_not_a_checkpoint(void **state) {
  const char *p = tpath("foreign.h5");
  write_sample(p, 1.0);
  check(ng_h5_unlink(p, "/meta"), "unlink");
  assert_int_equal(ng_ckpt_read(p, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NG_EFORMAT);
  char expect[700];
  snprintf(expect, sizeof expect, "'%s' is not a nograd checkpoint (no /meta/format_version)", p);
  assert_string_equal(ng_errmsg(), expect);
  FILE *out = tmpfile();
  assert_int_equal(ng_inspect(p, 0, 5, out), NG_EFORMAT);
  assert_string_equal(ng_errmsg(), expect);
  fclose(out);

  /* A file that is not HDF5 at all. */
  const char *t = tpath("text.h5");
  FILE *f = fopen(t, "w");
  fputs("not hdf5\n", f);
  fclose(f);
  assert_int_equal(ng_ckpt_read(t, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NG_ECORRUPT);
  assert_contains(ng_errmsg(), "is not a readable HDF5 file");
  assert_lacks(ng_errmsg(), ".prev");

  /* A missing part of a checkpoint is named. */
  const char *r = tpath("part.h5");
  write_sample(r, 1.0);
  check(ng_h5_unlink(r, "/history/median"), "unlink");
  assert_int_equal(ng_ckpt_read(r, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NG_EFORMAT);
  assert_contains(ng_errmsg(), "no HDF5 path '/history/median'");
}

static void test_format_version(void **state) {
  const char *p = tpath("v7.h5");
  write_sample(p, 1.0);
  check(ng_h5_set_int_attr(p, "/meta", "format_version", 7), "set");
  assert_int_equal(ng_ckpt_read(p, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NG_EFORMAT);
  char expect[700];
  snprintf(expect, sizeof expect, "checkpoint '%s' has format version 7; this nograd (", p);
  assert_true(strncmp(ng_errmsg(), expect, strlen(expect)) == 0);
  assert_contains(ng_errmsg(), ") reads format version 1");
}

static void test_missing_file(void **state) {
  const char *p = tpath("nothing.h5");
  assert_int_equal(ng_ckpt_read(p, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NG_EIO);
  char expect[700];
  snprintf(expect, sizeof expect, "cannot read checkpoint '%s': No such file or directory", p);
  assert_string_equal(ng_errmsg(), expect);
  /* After a crash between the two renames only PATH.prev is there: the message says so. */
  const char *q = tpath("gone.h5");
  write_sample(q, 1.0);
  write_sample(q, 2.0);
  assert_int_equal(unlink(q), 0);
  assert_int_equal(ng_ckpt_read(q, NULL, NULL, NULL, NULL, NULL, NULL, NULL), NG_EIO);
  assert_contains(ng_errmsg(), "No such file or directory; the previous checkpoint '");
  assert_contains(ng_errmsg(), "gone.h5.prev' may be resumed instead");
}

static void test_unwritable(void **state) {
  ng_ckpt_meta m = sample_meta();
  char expect[700];
  /* A regular file used as a directory fails for everyone, root included. */
  const char *plain = tpath("plain");
  FILE *f = fopen(plain, "w");
  fclose(f);
  char p[600];
  snprintf(p, sizeof p, "%s/x.h5", plain);
  assert_int_equal(ng_ckpt_write(p, &m, NULL, NULL, NULL, 0, 0.0, NULL), NG_EIO);
  snprintf(expect, sizeof expect, "cannot write checkpoint '%s.tmp': Not a directory", p);
  assert_string_equal(ng_errmsg(), expect);
  if (geteuid() == 0) return; /* root ignores directory permissions */
  const char *ro = tpath("readonly");
  assert_int_equal(mkdir(ro, 0500), 0);
  snprintf(p, sizeof p, "%s/x.h5", ro);
  assert_int_equal(ng_ckpt_write(p, &m, NULL, NULL, NULL, 0, 0.0, NULL), NG_EIO);
  snprintf(expect, sizeof expect, "cannot write checkpoint '%s.tmp': Permission denied", p);
  assert_string_equal(ng_errmsg(), expect);
  chmod(ro, 0700);
}

/* ---- 5. inspection and h5py -----------------------------------------------------------------------------
 */

static size_t count(const char *s, const char *needle) {
  size_t k = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
    k++;
  return k;
}

static void test_inspect(void **state) {
  const char *p = tpath("inspect.h5");
  write_cmaes_checkpoint(p, NULL);

  FILE *out = tmpfile();
  check(ng_inspect(p, 0, 5, out), "inspect");
  char *text = slurp(out);
  fclose(out);
  char line[700];
  snprintf(line, sizeof line, "nograd checkpoint '%s'\n", p);
  assert_contains(text, line);
  assert_contains(text, "  format version    1\n");
  assert_contains(text, "  program version   0.1.0\n");
  assert_contains(text, "  command line      nograd minimize --fn rosenbrock --dim 8 \\\n");
  assert_contains(text, "  ranks             4 in 2 groups\n");
  assert_contains(text, "configuration\n  fn=rosenbrock\n  dim=8\n");
  assert_contains(text, "budget\n  max-evals=5000\n  ftarget=1e-10\n");
  assert_contains(text, "  0123456789abcdef  data/train.h5\n");
  assert_contains(text, "  optimizer         cmaes\n");
  assert_contains(text, "  dimension         8\n");
  assert_contains(text, "  generation        20\n");
  assert_contains(text, "  evaluations       200\n"); /* lambda = 4 + 3 ln 8 = 10 */
  assert_contains(text, "  restarts          0\n");
  assert_contains(text, "  stop reason       none\n");
  assert_contains(text, "history: 20 generations, the last 5\n");
  const char *table = strstr(text, "the last 5\n");
  assert_non_null(table);
  assert_int_equal(count(table, "\n"), 1 + 1 + 5); /* that line, the header, five rows */
  assert_contains(table, "    generation   evaluations          best");
  assert_contains(table, "\n            16           160");
  assert_contains(table, "\n            20           200");
  free(text);

  out = tmpfile();
  check(ng_inspect(p, 1, 3, out), "inspect --json");
  char *json = slurp(out);
  fclose(out);
  const char *keys[] = {"\"format_version\": 1",
                        "\"program_version\": \"0.1.0\"",
                        "\"created\": \"",
                        "\"command_line\": \"nograd minimize --fn rosenbrock --dim 8 \\\\\\n  --note \\\"",
                        "\"config\": {\"fn\": \"rosenbrock\", \"dim\": \"8\", \"optimizer\": \"cmaes\"",
                        "\"budget\": {\"max-evals\": \"5000\", \"ftarget\": \"1e-10\"}",
                        "\"ranks\": 4",
                        "\"groups\": 2",
                        "{\"file\": \"data/train.h5\", \"checksum\": \"0123456789abcdef\"}",
                        "\"optimizer\": \"cmaes\"",
                        "\"n\": 8",
                        "\"generation\": 20",
                        "\"evaluations\": 200",
                        "\"restarts\": 0",
                        "\"stop_reason\": \"none\"",
                        "\"best_f\": ",
                        "\"history_columns\": [\"generation\", \"evaluations\", \"best\"",
                        "\"history_last\": ["};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    assert_contains(json, keys[i]);
  assert_int_equal(count(json, "\n    ["), 3); /* generations 18, 19, 20 */
  assert_contains(json, "\n    [20, 200, ");
  assert_true(json[0] == '{' && json[strlen(json) - 2] == '}');

  if (have_python_h5py()) {
    const char *jp = tpath("inspect.json");
    FILE *f = fopen(jp, "w");
    fputs(json, f);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             PYTHON
             " -c 'import json,sys; d=json.load(open(sys.argv[1], encoding=\"utf-8\"));"
             " assert d[\"generation\"]==20 and d[\"n\"]==8 and d[\"evaluations\"]==200, d;"
             " assert [r[0] for r in d[\"history_last\"]]==[18,19,20], d[\"history_last\"];"
             " assert d[\"config\"][\"seed\"]==\"7\" and d[\"inputs\"][1][\"file\"]==\"data/\\u03bb-val.h5\";"
             " assert \"\\u2192\" in d[\"command_line\"] and \"\\n\" in d[\"command_line\"];"
             " assert len(d[\"history_columns\"])==15' '%s'",
             jp);
    assert_int_equal(system(cmd), 0);
  } else {
    print_message("python3 with json/h5py not found: JSON checked by substrings only\n");
  }
  free(json);

  /* Zero rows asked: no table, valid JSON still. */
  out = tmpfile();
  check(ng_inspect(p, 1, 0, out), "inspect --json");
  json = slurp(out);
  fclose(out);
  assert_contains(json, "\"history_last\": []\n}\n");
  free(json);
}

static void test_h5py(void **state) {
  if (!have_python_h5py()) {
    print_message("python3 with h5py not found: skipped\n");
    skip();
  }
  const char *p = tpath("h5py.h5");
  write_sample(p, 0.5);
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           PYTHON
           " -c 'import sys, h5py\n"
           "f = h5py.File(sys.argv[1], \"r\")\n"
           "assert isinstance(f[\"/history/best\"], h5py.Dataset)\n"
           "assert f[\"/history/best\"].shape == (7,) and f[\"/history/sigma\"][1] == 0.5\n"
           "assert list(f[\"/history\"].attrs[\"columns\"])[:3] == [\"generation\", \"evaluations\", "
           "\"best\"]\n"
           "a = f[\"/meta\"].attrs\n"
           "assert a[\"format_version\"] == 1 and a[\"ranks\"] == 4 and a[\"optimizer\"] == \"cmaes\"\n"
           "assert isinstance(a[\"command_line\"], str) and \"\\u03bb \\u2192 \\u00fc\" in "
           "a[\"command_line\"]\n"
           "assert len(a[\"state_checksum\"]) == 16\n"
           "assert f[\"/meta/input_files\"].asstr()[1] == \"data/\\u03bb-val.h5\"\n"
           "assert f[\"/optimizer/cfg/n\"][0] == 8 and f[\"/optimizer/a/b/c/d/deep\"][0] == 1.5\n"
           "assert f[\"/optimizer/empty/f64\"].shape == (0,) and f[\"/optimizer/rng/counters\"].dtype == "
           "\"int64\"\n"
           "assert f[\"/best/f\"][()] == 0.5 and f[\"/best\"].attrs[\"f\"] == 0.5 and "
           "list(f[\"/best/x\"]) == [1.0, -2.5, 0.0, 1e-300, 3.25]\n"
           "' '%s'",
           p);
  assert_int_equal(system(cmd), 0);
}

/* ---- 6. speed: 16 MB of state and 10,000 history rows ---------------------------------------------------
 */

static void test_speed(void **state) {
  const char *p = tpath("big.h5");
  ng_ckpt_meta m = sample_meta();
  ng_state *st = sample_state(1000);
  double *mean = calloc(1000, sizeof *mean);
  check(ng_state_put_f64(st, "cmaes/mean", mean, 1000), "put");
  free(mean);
  ng_history h = {0}, back_h = {0};
  sample_history(&h, 10000);
  double best_x[1000] = {0}, x[1000];
  size_t n = 1000;
  double t0 = seconds();
  check(ng_ckpt_write(p, &m, st, &h, best_x, 1000, 1.0, NULL), "write");
  double t1 = seconds(), t2 = t1; /* the second write also rotates */
  check(ng_ckpt_write(p, &m, st, &h, best_x, 1000, 1.0, NULL), "write");
  double t3 = seconds();
  ng_state *back;
  check(ng_state_create(&back), "create");
  double t4 = seconds();
  check(ng_ckpt_read(p, NULL, back, &back_h, x, &n, NULL, NULL), "read");
  double t5 = seconds();
  struct stat sb;
  stat(p, &sb);
  print_message("checkpoint of %.1f MB: write %.3f s, write with rotation %.3f s, read and verify %.3f s\n",
                (double)sb.st_size / 1e6, t1 - t0, t3 - t2, t5 - t4);
  assert_states_equal(st, back);
  assert_int_equal(back_h.nrows, 10000);
  assert_memory_equal(back_h.rows, h.rows, (size_t)10000 * NG_HISTORY_NCOLS * sizeof(double));
  assert_true(t1 - t0 < 2.0);
  assert_true(t3 - t2 < 2.0);
  assert_true(t5 - t4 < 2.0);
  ng_state_destroy(&back);
  ng_history_free(&back_h);
  ng_history_free(&h);
  ng_state_destroy(&st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_history_table),
      cmocka_unit_test(test_file_checksum),
      cmocka_unit_test(test_round_trip_state),
      cmocka_unit_test(test_round_trip_meta_history_best),
      cmocka_unit_test(test_prev_rotation),
      cmocka_unit_test(test_resume_bit_identical),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_flipped_byte),
      cmocka_unit_test(test_not_a_checkpoint),
      cmocka_unit_test(test_format_version),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_unwritable),
      cmocka_unit_test(test_inspect),
      cmocka_unit_test(test_h5py),
      cmocka_unit_test(test_speed),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
