/* The checkpoint reader behind the checksum (src/io/ckpt_read.c) and nograd inspect (src/io/inspect.c): a
 * checkpoint nograd wrote, mutated at the level of its objects and attributes and sealed again (h5mutate.h).
 * Whatever it holds, the state, history and result are handed over only when everything verifies, or a
 * message names the file; inspect prints it as text and as JSON. */
#include "fuzz.h"

#include "h5mutate.h"
#include "nograd/ckpt.h"
#include "nograd/error.h"
#include "nograd/inspect.h"
#include "nograd/state.h"

static fuzz_h5_base *base(void) {
  static fuzz_h5_base b;
  static int loaded;
  if (loaded) return &b;
  fuzz_quiet_hdf5();
  ng_state *st = NULL, *res = NULL;
  if (ng_state_create(&st) != NG_OK || ng_state_create(&res) != NG_OK) abort();
  double x0[3] = {1, 2, 3}, C[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  int64_t counters[14] = {5, 0, 40, 0, 1, 0, 0, 0, 0, 0, 0, 8, 1, 100};
  ng_state_put_f64(st, "cfg/x0", x0, 3);
  ng_state_put_int(st, "cfg/n", 3);
  ng_state_put_f64(st, "algo/C", C, 9);
  ng_state_put_i64(st, "run/counters", counters, 14);
  ng_state_put_str(st, "cfg/optimizer", "cmaes");
  ng_state_put_f64(res, "weights", x0, 3);
  ng_state_put_str(res, "method", "spsa");
  ng_history h = {0};
  for (int r = 0; r < 3; r++) {
    double row[NG_HISTORY_NCOLS] = {0};
    row[NG_HIST_generation] = r + 1;
    row[NG_HIST_evaluations] = 8 * (r + 1);
    row[NG_HIST_sigma] = 0.5;
    ng_history_append(&h, row);
  }
  const char *files[] = {"data.h5"}, *sums[] = {"0123456789abcdef"};
  ng_ckpt_meta m = {"0.1.0",
                    "nograd minimize --function sphere",
                    "function=sphere\ndim=3\n",
                    "max-evals=100\n",
                    "cmaes",
                    2,
                    1,
                    files,
                    sums,
                    1};
  const char *p = fuzz_path("ckpt-base.h5");
  if (ng_ckpt_write(p, &m, st, &h, x0, 3, 0.5, res) != NG_OK) abort();
  fuzz_h5_base_load(&b, p);
  ng_history_free(&h);
  ng_state_destroy(&res);
  ng_state_destroy(&st);
  loaded = 1;
  return &b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_h5_mutant(base(), data, size);
  ng_ckpt_info info;
  ng_state *st = NULL, *res = NULL;
  ng_history h = {0};
  double f = 0;
  size_t n = 0;
  if (ng_state_create(&st) != NG_OK || ng_state_create(&res) != NG_OK) abort();
  int s = ng_ckpt_read(path, &info, st, &h, NULL, &n, &f, res);
  if (s != NG_OK && s != NG_ENOMEM && !strstr(ng_errmsg(), path)) abort(); /* a refusal names the file */
  if (s == NG_OK) ng_ckpt_info_free(&info);
  ng_history_free(&h);
  ng_state_destroy(&res);
  ng_state_destroy(&st);
  FILE *null = fopen("/dev/null", "w");
  if (!null) abort();
  ng_inspect(path, size % 2, 3, null);
  fclose(null);
  return 0;
}
