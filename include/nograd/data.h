/* Datasets: HDF5 files of examples, their importers and their transforms.
 *
 * File layout (DESIGN.md, "Files"; readable with h5py):
 *   /x   N x d float32, or N x C x H x W float32 for images; chunked along N (whole rows per chunk), so that
 *        a rank reads its rows [first, first+count) with one hyperslab;
 *        attributes "mean" and "std" (d float32 each) when the features were standardized: x = (raw-mean)/std
 *   /y   N int32 class labels in [0, classes), or N x t float32 targets; same chunking;
 *        attributes for labels: "classes" (int64, the class count) and "class_counts" (int64 per class)
 *   /    attributes "format" ("nograd dataset"), "format_version" (int64), "name", "domain" (strings) and
 *        "classes" (int64; 0 for targets).
 *
 * Two views of a dataset:
 *   ng_data     a whole dataset in memory, a plain struct: what importers produce, transforms change and
 *               ng_data_write stores. Its fields are public; ng_data_alloc / ng_data_free own the arrays.
 *   ng_dataset  an open file, opaque: a rank opens it, looks at its shape and reads only its own rows.
 *
 * Every failure returns a status of nograd/error.h with a message naming the file and the line, row, column
 * or HDF5 path at fault. Nothing here is collective: under MPI, rank 0 imports and writes, and every rank may
 * open a file and read its rows. Writes are atomic (PATH.tmp, fsync, rename): a failed write leaves no file.
 */
#ifndef NOGRAD_DATA_H
#define NOGRAD_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_DATA_FORMAT_VERSION 1 /* the "format_version" attribute written */
#define NG_DATA_NAME_MAX 256     /* bytes of name and domain, with the terminator; longer ones are cut */

/* A dataset in memory. Row i of x is x[i*d .. (i+1)*d); with xrank 3 a row is C x H x W in that order, with
 * xrank 2 a sequence S x d (tokens or time steps, for ONNX models whose input is one). */
typedef struct ng_data {
  size_t n;          /* rows */
  int xrank;         /* 1: a row is d features; 2: a sequence S x d; 3: a C x H x W image */
  size_t xdims[3];   /* the shape of a row: {d}, {S, d} or {C, H, W} */
  size_t d;          /* floats per row: the product of xdims */
  float *x;          /* n * d */
  size_t t;          /* 0: labels in y; >= 1: t float targets per row in yt */
  int32_t *y;        /* n labels when t == 0, else NULL */
  float *yt;         /* n * t targets when t >= 1, else NULL */
  int64_t classes;   /* labels are in [0, classes); 0 with targets */
  float *mean, *std; /* d each when standardized (the attributes of /x), else NULL */
  char name[NG_DATA_NAME_MAX], domain[NG_DATA_NAME_MAX];
} ng_data;

/* A label mapping (see ng_label_map_parse). */
typedef struct ng_label_map ng_label_map;

/* ---- In memory ------------------------------------------------------------------------------------------
 */

/* Allocates the arrays of an empty dataset of n rows shaped xdims[0..xrank) (xrank 1 to 3) with labels
 * (t == 0) or t targets per row; x and y are zeroed, classes 0, no statistics, empty name and domain.
 * NG_EINVAL names the bad shape; NG_ENOMEM. `D` is overwritten (free it first if it held anything). */
NG_EXPORT int ng_data_alloc(ng_data *D, size_t n, int xrank, const size_t *xdims, size_t t);

/* Frees the arrays and zeroes *D; accepts NULL and a zeroed struct. */
NG_EXPORT void ng_data_free(ng_data *D);

/* Sets `classes` to max label + 1 (0 with no rows or with targets). */
NG_EXPORT void ng_data_count_classes(ng_data *D);

/* ---- Files ----------------------------------------------------------------------------------------------
 */

/* Writes D to `path` atomically: PATH.tmp is written, fsynced and renamed over PATH, and the directory is
 * synced. Checks first that D is consistent (shape, labels in [0, classes), classes > 0 with labels, n >= 1):
 * NG_EINVAL names what is wrong; NG_EIO names the file and the HDF5 path that failed. On failure neither
 * PATH.tmp nor a new PATH is left (an old PATH is untouched). */
NG_EXPORT int ng_data_write(const char *path, const ng_data *D);

/* Reads a whole dataset file into D (which is overwritten; ng_data_free it afterwards). Same checks and
 * statuses as ng_dataset_open and ng_dataset_read_rows. */
NG_EXPORT int ng_data_load(const char *path, ng_data *D);

typedef struct ng_dataset ng_dataset;

/* The shape and attributes of an open dataset file. */
typedef struct ng_data_info {
  size_t n, d;      /* rows, floats per row */
  int xrank;        /* 1 to 3 */
  size_t xdims[3];  /* a row's shape */
  size_t t;         /* 0: int32 labels; else float32 targets per row */
  int64_t classes;  /* from the root attribute; 0 with targets */
  int standardized; /* 1 when /x has "mean" and "std" */
  char name[NG_DATA_NAME_MAX], domain[NG_DATA_NAME_MAX];
} ng_data_info;

/* Opens a dataset file and checks its layout: /x float32 of rank 2 or 4, /y int32 of rank 1 or float32 of
 * rank 2, the same N, the attributes' types and sizes. NG_EIO (cannot open), NG_EFORMAT (not a dataset, or a
 * wrong dtype or shape: the message names the HDF5 path, expected and found), NG_ENOMEM. */
NG_EXPORT int ng_dataset_open(const char *path, ng_dataset **out);

/* Closes; accepts NULL and clears the caller's pointer. */
NG_EXPORT void ng_dataset_close(ng_dataset **ds);

/* The shape and attributes; never fails. */
NG_EXPORT const ng_data_info *ng_dataset_info(const ng_dataset *ds);

/* Reads rows [first, first+count) with one hyperslab per array: count*d floats into x, and into y count
 * int32 labels (t == 0) or count*t floats. x or y may be NULL to skip that array; count 0 reads nothing.
 * NG_EINVAL names a range beyond N; NG_ECORRUPT names the HDF5 path that could not be read, or the row whose
 * label is outside [0, classes). */
NG_EXPORT int ng_dataset_read_rows(ng_dataset *ds, size_t first, size_t count, float *x, void *y);

/* The per-feature mean and std stored on /x of `path` (d floats each, malloc'd, the caller frees).
 * NG_ENOTFOUND when the file has none; NG_EMISMATCH when they do not have d values. */
NG_EXPORT int ng_data_read_stats(const char *path, size_t d, float **mean, float **std);

/* ---- Importers (src/data/import.c) ----------------------------------------------------------------------
 */

typedef enum {
  NG_MISSING_ERROR = 0, /* a missing value is an error (the default: the policy must be chosen) */
  NG_MISSING_DROP,      /* drop the row */
  NG_MISSING_MEAN,      /* fill a feature with the mean of its column over the rows read */
  NG_MISSING_MEDIAN     /* ... with the median */
} ng_missing_policy;

/* How to read a delimited text table. */
typedef struct ng_text_options {
  char delim;          /* ',' or ';' ...; ' ' means runs of blanks and tabs (whitespace tables) */
  int header;          /* 1: the first line names the columns (quotes around names are removed) */
  const char *label;   /* the label column: an index from 0, a negative index from the end (-1: last),
                        * or a header name; NULL: the last column (the first for whitespace tables) */
  const char *missing; /* the token of a missing value ("?"), or NULL: none */
  ng_missing_policy policy;
  int targets; /* 1: the label column is a float target (t = 1), not a class label */
} ng_text_options;

/* Reads a delimited text file (gzip-compressed or not) into D: all columns but the label one become the
 * features (xrank 1), in file order; labels must be whole numbers >= 0 after `label_map` (NULL: none;
 * see ng_label_map_parse). Blank lines are skipped. NG_EFORMAT with "FILE:LINE: column K ('name'): ..." for
 * text in a numeric column, a ragged row, a missing value without a policy, a label that is not a whole
 * number; NG_EIO when the file cannot be read; NG_EINVAL for a label column that does not exist. */
NG_EXPORT int ng_import_text(const char *path, const ng_text_options *opt, const ng_label_map *label_map,
                             ng_data *D);

/* Reads MNIST-style IDX files (gzip-compressed or not): images (magic 2051, N x H x W uint8) and labels
 * (magic 2049, N uint8) into D as N x 1 x H x W floats with the raw values 0..255. NG_EFORMAT names the file
 * and what is wrong (magic, dimensions, counts that differ, a file shorter than its header says). */
NG_EXPORT int ng_import_idx(const char *images, const char *labels, const ng_label_map *label_map,
                            ng_data *D);

/* ---- Transforms (src/data/transform.c) ------------------------------------------------------------------
 */

/* A label mapping, parsed from a specification:
 *   "gt:T" "ge:T" "lt:T" "le:T"  1 when the label compares true with T, else 0 (binarize num>0: "gt:0");
 *   "add:K"                      label + K (shift 1..10 to 0..9: "add:-1");
 *   "A=B,C=D,..."                explicit: label A becomes B ...; a label not listed is an error.
 * NG_EINVAL names the specification at fault. */
NG_EXPORT int ng_label_map_parse(const char *spec, ng_label_map **out);
NG_EXPORT void ng_label_map_destroy(ng_label_map **m);

/* Maps one raw label; NG_EINVAL when an explicit map does not list it (the caller names the row). */
NG_EXPORT int ng_label_map_apply(const ng_label_map *m, double raw, double *mapped);

/* Gives the rows of a feature dataset (xrank 1) the image shape C x H x W (C*H*W must equal d). NG_EINVAL. */
NG_EXPORT int ng_data_reshape(ng_data *D, size_t c, size_t h, size_t w);

/* Maps x linearly so that lo becomes 0 and hi becomes 1 (lo != hi). */
NG_EXPORT int ng_data_rescale(ng_data *D, double lo, double hi);

/* Resamples image rows (xrank 3) to H x W, channel by channel, separably. Downsampling along an axis uses
 * area averaging: an output pixel is the mean of the input area it covers, fractional pixels weighted by
 * their overlap, which is exact for integer factors and does not alias as bilinear sampling would. Upsampling
 * uses bilinear interpolation between pixel centres (edges clamped). Both weight sets are convex, so values
 * stay within the input's range. NG_EINVAL (not images, zero size), NG_ENOMEM. */
NG_EXPORT int ng_data_resample(ng_data *D, size_t h, size_t w);

/* Computes the per-feature mean and (population) standard deviation of D, stores them in D->mean/std and
 * standardizes x with them. A constant feature gets std 1 so that it maps to 0 instead of NaN. With
 * D->mean already set it fails (NG_EINVAL: already standardized). */
NG_EXPORT int ng_data_standardize(ng_data *D);

/* Standardizes x with given statistics (d values each, copied into D->mean/std), e.g. a training split's. */
NG_EXPORT int ng_data_apply_stats(ng_data *D, const float *mean, const float *std);

/* Splits D into train, val and test by the fractions frac[0..3) (each >= 0, summing to 1 within 1e-9),
 * stratified by label: the rows of each class are shuffled with the Philox stream (seed, NG_RNG_SPLIT, 0,
 * class) and cut so that each part holds frac*count of the class rounded by largest remainders (within 1
 * example per class). Targets are one stratum. Each part keeps the rows in their original order, the
 * attributes and the statistics of D; out[k].n may be 0. NG_EINVAL, NG_ENOMEM. */
NG_EXPORT int ng_data_split(const ng_data *D, const double frac[3], uint64_t seed, ng_data out[3]);

/* A seeded, stratified subset of k of D's rows (labels only), in their original order, with D's attributes
 * and statistics: each class gets floor(k n_c / n) rows plus one for the largest remainders (ties: the lower
 * class) until k are taken, drawn by a partial Fisher-Yates shuffle of the class's rows from the stream
 * (seed, NG_RNG_SPLIT, 1, class) (ng_data_split draws from generation 0 of the same purpose). NG_EINVAL
 * (float targets, k > n, a label outside [0, classes)), NG_ENOMEM. */
NG_EXPORT int ng_data_subset(const ng_data *D, size_t k, uint64_t seed, ng_data *out);

#ifdef __cplusplus
}
#endif
#endif
