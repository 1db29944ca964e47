/* `nograd demo`: the glue protocol on the synthetic domains (see nograd/demo.h), as calls of the library's
 * app functions on files in one work directory.
 *
 * Rank 0 makes the directory and writes the data; every phase after that is an app function, collective and
 * returning the same status on every rank, so one failure ends the run alike everywhere. The sizes below are
 * chosen so that `mpirun -n 2 nograd demo` (two seeds) takes well under a minute on two cores while each
 * method still gets the budget it would get in the real experiment (tools/glue_experiment.sh). */
#include "nograd/demo.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nograd/data.h"
#include "nograd/engine.h"
#include "nograd/domains.h"
#include "nograd/error.h"
#include "nograd/glue.h"
#include "nograd/timer.h"
#include "nograd/train.h"

#define DEMO_CLASSES 10
#define DEMO_NSOURCES NG_DEMO_SOURCES
#define DEMO_PATH_MAX 4096
#define DEMO_NAME_MAX 64 /* room for "/s<seed>-<name>.h5" after the directory */

/* Training budgets. The base sees the pooled sources; an expert only its own domain; fine-tuning is the same
 * for the base and every prior, so that the table compares starting points and nothing else. */
#define BASE_EPOCHS 4
#define EXPERT_EPOCHS 3
#define SOURCE_LR 0.003
#define SOURCE_BATCH 64
#define TUNE_EPOCHS 20
#define TUNE_LR 0.001
#define TUNE_BATCH 32
#define EVAL_CHUNK 256 /* glue's default chunk and batch, so that the base's val loss is measured alike */

static const char *const source_names[DEMO_NSOURCES] = {"upright", "tilted", "small", "noisy",
                                                        "bold",    "faint",  "skewed"};
/* Source domain sizes relative to cfg->rows (mean 1): real domains differ in size, and with equal sizes
 * datasize weighting would be uniform weighting. Fixed, not tuned to the target. */
static const double source_factor[DEMO_NSOURCES] = {1.6, 0.6, 1.0, 0.8, 1.4, 0.4, 1.2};
/* The order; a name this build's glue does not know is skipped. */
static const char *const glue_names[] = {"uniform", "datasize", "proxy", "best", "fullgrad", "spsa", "cmaes"};
#define DEMO_NGLUE (sizeof glue_names / sizeof glue_names[0])

#define STR_(x) #x
#define STR(x) STR_(x)
/* clang-format off */
static const char setup_text[] =
    "MLP 256-64-10, Adam: base " STR(BASE_EPOCHS) " epochs on the pooled sources, experts "
    STR(EXPERT_EPOCHS) " on their own domain; base and priors fine-tuned " STR(TUNE_EPOCHS) " epochs";
/* clang-format on */
static const char spec_text[] =
    "# nograd demo: a small MLP on 16 x 16 glyphs\n"
    "input 1 16 16\nflatten\ndense fc1 64\nrelu\ndense fc2 10\n";

void ng_demo_result_free(ng_demo_result *res) {
  if (!res) return;
  free(res->prior_loss);
  free(res->prior_accuracy);
  free(res->test_accuracy);
  free(res->seeds);
  memset(res, 0, sizeof *res);
}

/* ------------------------------------------------------------------------------------------------------ */
/* The work directory (rank 0). */

static int make_dir(const char *want, char *dir, bool *temporary) {
  *temporary = want == NULL;
  if (want) {
    if (strlen(want) + DEMO_NAME_MAX >= DEMO_PATH_MAX)
      return ng_error(NG_EINVAL, "--keep: the directory name is too long (%zu bytes)", strlen(want));
    if (mkdir(want, 0777) != 0 && errno != EEXIST)
      return ng_error(NG_EIO, "%s: cannot make the directory: %s", want, strerror(errno));
    struct stat sb;
    if (stat(want, &sb) != 0 || !S_ISDIR(sb.st_mode)) return ng_error(NG_EIO, "%s: not a directory", want);
    snprintf(dir, DEMO_PATH_MAX, "%s", want);
    return NG_OK;
  }
  const char *tmp = getenv("TMPDIR");
  if (!tmp || !tmp[0]) tmp = "/tmp";
  if (strlen(tmp) + 32 + DEMO_NAME_MAX >= DEMO_PATH_MAX)
    return ng_error(NG_EINVAL, "TMPDIR is too long (%zu bytes)", strlen(tmp));
  snprintf(dir, DEMO_PATH_MAX, "%s/nograd-demo-XXXXXX", tmp);
  if (!mkdtemp(dir))
    return ng_error(NG_EIO, "%s: cannot make a temporary directory: %s", tmp, strerror(errno));
  return NG_OK;
}

/* Removes the temporary directory and the files in it (the demo makes no subdirectories). */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  char path[DEMO_PATH_MAX + 256];
  const struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static void path_of(char *buf, const char *dir, uint64_t seed, const char *name) {
  snprintf(buf, DEMO_PATH_MAX, "%s/s%llu-%s.h5", dir, (unsigned long long)seed, name);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Data (rank 0). */

/* Writes rows [first, first + n) of `all` as a dataset of its own: a view, not a copy. */
static int write_rows(const char *path, const ng_data *all, size_t first, size_t n, const char *domain) {
  ng_data v = *all;
  v.n = n;
  v.x = all->x + first * all->d;
  v.y = all->y + first;
  snprintf(v.domain, sizeof v.domain, "%s", domain);
  return ng_data_write(path, &v);
}

static int alloc_images(ng_data *D, size_t n) {
  const size_t dims[3] = {1, NG_DOMAINS_SIDE, NG_DOMAINS_SIDE};
  NG_CALL(ng_data_alloc(D, n, 3, dims, 0));
  D->classes = DEMO_CLASSES;
  snprintf(D->name, sizeof D->name, "synth-images");
  return NG_OK;
}

static int write_data(const char *dir, uint64_t seed, const size_t *source_rows) {
  ng_domains_config dc = {.kind = NG_DOMAINS_IMAGES, .classes = DEMO_CLASSES, .seed = seed};
  ng_data pool = {0}, target = {0};
  char path[DEMO_PATH_MAX], name[DEMO_NAME_MAX];
  size_t total = 0, first = 0;
  for (size_t k = 0; k < DEMO_NSOURCES; k++)
    total += source_rows[k];
  int st;
  NG_TRY(st, alloc_images(&pool, total), out);
  snprintf(pool.domain, sizeof pool.domain, "sources");
  for (size_t k = 0; k < DEMO_NSOURCES; k++) {
    NG_TRY(
        st,
        ng_domains_generate(&dc, source_names[k], source_rows[k], 0, pool.x + first * pool.d, pool.y + first),
        out);
    snprintf(name, sizeof name, "src-%s", source_names[k]);
    path_of(path, dir, seed, name);
    NG_TRY(st, write_rows(path, &pool, first, source_rows[k], source_names[k]), out);
    first += source_rows[k];
  }
  path_of(path, dir, seed, "pool");
  NG_TRY(st, ng_data_write(path, &pool), out);
  const size_t n = NG_DEMO_TRAIN_ROWS + NG_DEMO_VAL_ROWS + NG_DEMO_TEST_ROWS;
  NG_TRY(st, alloc_images(&target, n), out);
  NG_TRY(st, ng_domains_generate(&dc, "target", n, 0, target.x, target.y), out);
  path_of(path, dir, seed, "target-train");
  NG_TRY(st, write_rows(path, &target, 0, NG_DEMO_TRAIN_ROWS, "target"), out);
  path_of(path, dir, seed, "target-val");
  NG_TRY(st, write_rows(path, &target, NG_DEMO_TRAIN_ROWS, NG_DEMO_VAL_ROWS, "target"), out);
  path_of(path, dir, seed, "target-test");
  NG_TRY(st, write_rows(path, &target, NG_DEMO_TRAIN_ROWS + NG_DEMO_VAL_ROWS, NG_DEMO_TEST_ROWS, "target"),
         out);
out:
  ng_data_free(&target);
  ng_data_free(&pool);
  return st;
}

static int write_spec(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return ng_error(NG_EIO, "%s: cannot write the spec: %s", path, strerror(errno));
  bool ok = fputs(spec_text, f) >= 0;
  ok = fclose(f) == 0 && ok;
  return ok ? NG_OK : ng_error(NG_EIO, "%s: cannot write the spec", path);
}

/* ------------------------------------------------------------------------------------------------------ */
/* The phases: collective. */

static int train(MPI_Comm comm, const char *data, const char *val, const char *spec, const char *init,
                 const char *out, size_t epochs, size_t batch, double lr, uint64_t seed) {
  ng_train_config tc;
  ng_train_config_init(&tc);
  tc.train = data;
  tc.val = val;
  tc.spec = spec;
  tc.init_from = init;
  tc.out = out;
  tc.optimizer = NG_TRAIN_ADAM;
  tc.lr = lr;
  tc.momentum = 0;
  tc.batch = batch;
  tc.epochs = epochs;
  tc.patience = 0;
  tc.seed = seed;
  ng_train_result tr;
  return ng_app_train(comm, &tc, &tr);
}

static int eval(MPI_Comm comm, const char *model, const char *data, double *loss, double *accuracy) {
  ng_eval_config ec = {
      .model = model, .data = data, .threshold = 0.5, .batch = EVAL_CHUNK, .chunk_rows = EVAL_CHUNK};
  ec.metrics[NG_METRIC_ACCURACY] = true;
  ng_eval_result er;
  NG_CALL(ng_app_eval(comm, &ec, &er));
  *loss = er.loss;
  *accuracy = er.metrics[NG_METRIC_ACCURACY];
  return NG_OK;
}

typedef struct {
  MPI_Comm comm;
  int rank;
  const char *dir;
  uint64_t first_seed;
  size_t steps;
  FILE *progress;
  ng_demo_result *res;
  const int *methods; /* the glue method of each row after "base" */
} demo_run;

/* Row m, column s of a result table (rank 0 only: elsewhere the arrays are NULL). */
static void put(const demo_run *r, double *table, size_t m, size_t s, double v) {
  if (table) table[m * r->res->nseeds + s] = v;
}

static int run_seed(const demo_run *r, size_t s) {
  const uint64_t seed = r->first_seed + s;
  ng_demo_result *res = r->res;
  char spec[DEMO_PATH_MAX], pool[DEMO_PATH_MAX], base[DEMO_PATH_MAX], ttrain[DEMO_PATH_MAX],
      tval[DEMO_PATH_MAX], ttest[DEMO_PATH_MAX], src[DEMO_PATH_MAX], model[DEMO_PATH_MAX],
      tuned[DEMO_PATH_MAX], name[DEMO_NAME_MAX];
  char experts[DEMO_NSOURCES][DEMO_PATH_MAX];
  const char *expert_ptr[DEMO_NSOURCES];
  snprintf(spec, sizeof spec, "%s/spec.txt", r->dir);
  path_of(pool, r->dir, seed, "pool");
  path_of(base, r->dir, seed, "base");
  path_of(ttrain, r->dir, seed, "target-train");
  path_of(tval, r->dir, seed, "target-val");
  path_of(ttest, r->dir, seed, "target-test");

  double t = ng_time_now();
  int st = NG_OK;
  if (r->rank == 0) st = write_data(r->dir, seed, res->source_rows);
  NG_CALL(ng_engine_agree(r->comm, st));
  if (r->progress)
    fprintf(r->progress, "seed %llu: data written (%.1f s)\n", (unsigned long long)seed, ng_time_now() - t);

  t = ng_time_now();
  NG_CALL(train(r->comm, pool, NULL, spec, NULL, base, BASE_EPOCHS, SOURCE_BATCH, SOURCE_LR, seed));
  for (size_t k = 0; k < DEMO_NSOURCES; k++) {
    snprintf(name, sizeof name, "src-%s", source_names[k]);
    path_of(src, r->dir, seed, name);
    snprintf(name, sizeof name, "expert-%s", source_names[k]);
    path_of(experts[k], r->dir, seed, name);
    expert_ptr[k] = experts[k];
    NG_CALL(train(r->comm, src, NULL, NULL, base, experts[k], EXPERT_EPOCHS, SOURCE_BATCH, SOURCE_LR, seed));
  }
  if (r->progress)
    fprintf(r->progress, "seed %llu: base and %d experts trained (%.1f s)\n", (unsigned long long)seed,
            DEMO_NSOURCES, ng_time_now() - t);

  double loss, acc;
  NG_CALL(eval(r->comm, base, tval, &loss, &acc));
  put(r, res->prior_loss, 0, s, loss);
  put(r, res->prior_accuracy, 0, s, acc);
  for (size_t m = 1; m < res->nmethods; m++) {
    t = ng_time_now();
    snprintf(name, sizeof name, "prior-%s", res->methods[m]);
    path_of(model, r->dir, seed, name);
    ng_glue_config gc;
    ng_glue_config_init(&gc);
    gc.experts = expert_ptr;
    gc.nexperts = DEMO_NSOURCES;
    gc.target_train = ttrain;
    gc.target_val = tval;
    gc.out = model;
    gc.method = (ng_glue_method)r->methods[m];
    gc.steps = r->steps;
    gc.seed = seed;
    gc.chunk_rows = EVAL_CHUNK;
    ng_glue_result gr;
    st = ng_app_glue(r->comm, &gc, &gr);
    free(gr.weights); /* also on failure: rank 0 may hold them when another rank failed at the end */
    free(gr.curve);
    if (st != NG_OK) return st;
    put(r, res->prior_loss, m, s, gr.prior_loss);
    put(r, res->prior_accuracy, m, s, gr.prior_accuracy);
    if (r->progress)
      fprintf(r->progress, "seed %llu: prior %-8s val loss %.4f, accuracy %.4f (%.1f s)\n",
              (unsigned long long)seed, res->methods[m], gr.prior_loss, gr.prior_accuracy, ng_time_now() - t);
  }

  t = ng_time_now();
  for (size_t m = 0; m < res->nmethods; m++) {
    if (m == 0) {
      snprintf(model, sizeof model, "%s", base);
    } else {
      snprintf(name, sizeof name, "prior-%s", res->methods[m]);
      path_of(model, r->dir, seed, name);
    }
    snprintf(name, sizeof name, "tuned-%s", res->methods[m]);
    path_of(tuned, r->dir, seed, name);
    NG_CALL(train(r->comm, ttrain, tval, NULL, model, tuned, TUNE_EPOCHS, TUNE_BATCH, TUNE_LR, seed));
    NG_CALL(eval(r->comm, tuned, ttest, &loss, &acc));
    put(r, res->test_accuracy, m, s, acc);
  }
  if (r->progress)
    fprintf(r->progress, "seed %llu: %zu models fine-tuned and tested (%.1f s)\n", (unsigned long long)seed,
            res->nmethods, ng_time_now() - t);
  return NG_OK;
}

int ng_app_demo(MPI_Comm comm, const ng_demo_config *cfg, ng_demo_result *res) {
  int rank;
  MPI_Comm_rank(comm, &rank);
  memset(res, 0, sizeof *res);
  double t0 = ng_time_now();
  size_t seeds = cfg->seeds ? cfg->seeds : NG_DEMO_DEFAULT_SEEDS;
  size_t rows = cfg->rows ? cfg->rows : NG_DEMO_DEFAULT_ROWS;
  size_t steps = cfg->steps ? cfg->steps : NG_DEMO_DEFAULT_STEPS;
  /* Every rank checks the same configuration, so these need no agreement. */
  if (seeds > NG_DEMO_MAX_SEEDS)
    return ng_error(NG_EINVAL, "demo: seeds: expected 1 .. %d, got %zu", NG_DEMO_MAX_SEEDS, seeds);
  if (rows < 10 || rows > NG_DEMO_MAX_ROWS)
    return ng_error(NG_EINVAL, "demo: rows: expected 10 .. %d, got %zu", NG_DEMO_MAX_ROWS, rows);
  if (cfg->seed > UINT64_MAX - seeds)
    return ng_error(NG_EINVAL, "demo: seed %llu + %zu seeds overflows", (unsigned long long)cfg->seed, seeds);

  int methods[NG_DEMO_MAX_METHODS];
  res->methods[0] = "base";
  methods[0] = -1;
  res->nmethods = 1;
  for (size_t i = 0; i < DEMO_NGLUE && res->nmethods < NG_DEMO_MAX_METHODS; i++) {
    int m = ng_glue_method_from_name(glue_names[i]);
    if (m < 0) continue;
    methods[res->nmethods] = m;
    res->methods[res->nmethods++] = ng_glue_method_name((ng_glue_method)m);
  }
  res->nseeds = seeds;
  res->setup = setup_text;
  for (size_t k = 0; k < DEMO_NSOURCES; k++) {
    res->sources[k] = source_names[k];
    res->source_rows[k] = (size_t)fmax(1.0, floor(source_factor[k] * (double)rows + 0.5));
  }

  int st = NG_OK;
  char dir[DEMO_PATH_MAX] = "";
  bool temporary = false, made = false;
  size_t cells = res->nmethods * seeds;
  if (rank == 0) {
    res->prior_loss = malloc(cells * sizeof *res->prior_loss);
    res->prior_accuracy = malloc(cells * sizeof *res->prior_accuracy);
    res->test_accuracy = malloc(cells * sizeof *res->test_accuracy);
    res->seeds = malloc(seeds * sizeof *res->seeds);
    if (!res->prior_loss || !res->prior_accuracy || !res->test_accuracy || !res->seeds)
      st = ng_error(NG_ENOMEM, "demo: out of memory");
    for (size_t i = 0; st == NG_OK && i < cells; i++)
      res->prior_loss[i] = res->prior_accuracy[i] = res->test_accuracy[i] = NAN;
    for (size_t s = 0; st == NG_OK && s < seeds; s++)
      res->seeds[s] = cfg->seed + s;
    if (st == NG_OK) st = make_dir(cfg->dir, dir, &temporary);
    made = st == NG_OK;
    if (st == NG_OK) {
      char spec[DEMO_PATH_MAX];
      snprintf(spec, sizeof spec, "%s/spec.txt", dir);
      st = write_spec(spec);
    }
  }
  st = ng_engine_agree(comm, st);
  if (st == NG_OK) MPI_Bcast(dir, DEMO_PATH_MAX, MPI_CHAR, 0, comm);
  demo_run r = {.comm = comm,
                .rank = rank,
                .dir = dir,
                .first_seed = cfg->seed,
                .steps = steps,
                .progress = rank == 0 ? cfg->progress : NULL,
                .res = res,
                .methods = methods};
  for (size_t s = 0; st == NG_OK && s < seeds; s++)
    st = run_seed(&r, s);
  if (rank == 0 && made && temporary) remove_dir(dir);
  res->seconds = ng_time_now() - t0;
  if (st != NG_OK) ng_demo_result_free(res); /* the message stays: nothing here calls ng_error */
  return st;
}
