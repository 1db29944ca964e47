/* `nograd demo`: the glue protocol that tools/glue_experiment.sh runs on real data, run end to end on the
 * built-in synthetic domains (nograd/domains.h), in-process, with no data files to fetch.
 *
 * For each seed s = seed, seed + 1, ..., seed + seeds - 1:
 *   data      the concept of seed s: 10 classes of 16 x 16 glyph images. Seven source domains (upright,
 *             tilted, small, noisy, bold, faint, skewed) of different sizes: rows times 1.6, 0.6, 1.0, 0.8,
 *             1.4, 0.4, 1.2 (fixed, so that datasize weighting differs from uniform); the target domain's
 *             rows 0..199 are its train split, the next NG_DEMO_VAL_ROWS its validation split, the next
 *             NG_DEMO_TEST_ROWS its test split (rows of a domain are independent draws, so these are random
 *             splits).
 *   base      an MLP (input 1 16 16, flatten, dense 64, relu, dense 10) initialised from s and trained with
 *             Adam on the pooled source domains.
 *   experts   the base fine-tuned on each source domain (each records its train_rows).
 *   priors    ng_app_glue with every method this build knows, in the order uniform, datasize, proxy, best,
 *             fullgrad, spsa, cmaes (per model, steps generations, seed s), each measured on the target
 *             validation split; the base is measured there too (ng_app_eval, the same chunks).
 *   fine-tune the base and every prior trained with the same budget on the target train split (Adam, a fixed
 *             number of epochs, the weights of the epoch with the lowest validation loss kept).
 *   test      ng_app_eval of each fine-tuned model on the target test split.
 * Training runs on rank 0 (ng_app_train); glue and evaluation are data-parallel and bit-identical for any
 * number of ranks, so the whole result is the same bits for any P.
 *
 * Files go to one directory: cfg->dir (created if missing, kept), or a fresh mkdtemp directory under $TMPDIR
 * (or /tmp) made by rank 0 and removed at the end. Every rank reads the files rank 0 writes, so the
 * directory must be on a file system they share (one node, or a shared TMPDIR). */
#ifndef NOGRAD_DEMO_H
#define NOGRAD_DEMO_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_DEMO_DEFAULT_SEEDS 5   /* seeds when the configuration says 0 */
#define NG_DEMO_DEFAULT_STEPS 100 /* glue generations (spsa, cmaes, fullgrad) when it says 0 */
#define NG_DEMO_DEFAULT_ROWS 1000 /* mean rows per source domain when it says 0 */
#define NG_DEMO_MAX_SEEDS 100     /* more would not fit the point of a demo */
#define NG_DEMO_MAX_ROWS 100000   /* per source domain, before its size factor */
#define NG_DEMO_TRAIN_ROWS 200    /* the target's labelled train split */
#define NG_DEMO_VAL_ROWS 400      /* its validation split: where priors are measured and fine-tuning stops */
#define NG_DEMO_TEST_ROWS 2000    /* its test split */
#define NG_DEMO_MAX_METHODS 8     /* "base" and the seven glue methods */
#define NG_DEMO_SOURCES 7         /* source domains, hence experts */

typedef struct {
  size_t seeds;    /* seeds to run, 1 .. NG_DEMO_MAX_SEEDS (0: NG_DEMO_DEFAULT_SEEDS) */
  uint64_t seed;   /* the first seed */
  size_t steps;    /* glue generations of spsa, cmaes and fullgrad (0: NG_DEMO_DEFAULT_STEPS) */
  size_t rows;     /* mean rows per source domain, 10 .. NG_DEMO_MAX_ROWS (0: NG_DEMO_DEFAULT_ROWS) */
  const char *dir; /* the work directory, kept at the end; NULL: a temporary one, removed at the end */
  FILE *progress;  /* rank 0: one line per phase of each seed here when not NULL */
} ng_demo_config;

typedef struct {
  size_t nmethods, nseeds;
  const char *methods[NG_DEMO_MAX_METHODS]; /* "base", then the glue methods run (static strings) */
  /* nmethods x nseeds each, [m * nseeds + s]; malloc'd on rank 0 (NULL elsewhere); ng_demo_result_free */
  double *prior_loss;                   /* cross-entropy on the target validation split, before fine-tuning */
  double *prior_accuracy;               /* accuracy there */
  double *test_accuracy;                /* accuracy on the target test split after fine-tuning */
  uint64_t *seeds;                      /* nseeds: the seed of each column */
  const char *sources[NG_DEMO_SOURCES]; /* the source domains' names, in the order above (static) */
  size_t source_rows[NG_DEMO_SOURCES];  /* and their rows */
  const char *setup;                    /* one line: the model and the training budgets (static) */
  double seconds;                       /* wall time of the whole run */
} ng_demo_result;

/* Runs the protocol above. Collective over comm: every rank calls it with the same configuration and
 * returns the same status; rank 0 holds the message and the result. NG_EINVAL names the field out of range;
 * NG_EIO names the directory that could not be made; the statuses of ng_app_train, ng_app_glue and
 * ng_app_eval (their messages name the file at fault). On failure a temporary directory is still removed. */
NG_EXPORT int ng_app_demo(MPI_Comm comm, const ng_demo_config *cfg, ng_demo_result *res);

/* Frees the arrays of a result and zeroes it; accepts NULL and a zeroed result. Not collective. */
NG_EXPORT void ng_demo_result_free(ng_demo_result *res);

#ifdef __cplusplus
}
#endif
#endif
