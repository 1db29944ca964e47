/* Private to the library: reading an attribute or opening a dataset of one of nograd's HDF5 files only after
 * its type and dataspace are checked against what the reader expects.
 *
 * Every reader (checkpoints in src/io/ckpt_read.c, models in src/nn/model_io.c, datasets in
 * src/data/dataset.c) goes through these two functions, so that a crafted file whose attribute holds 100
 * values where one is expected, a string where a number is, or a dataset of another rank, is refused with a
 * message naming the file and the HDF5 path, and is never read into room for fewer values. Messages read
 * "KIND 'FILE': WHAT" in each reader's wording (the kind is theirs). None is collective; none prints; HDF5's
 * error printing should be off (ng_h5_quiet_begin) while they run. */
#ifndef NOGRAD_IO_H5READ_H
#define NOGRAD_IO_H5READ_H

#include <hdf5.h>
#include <stddef.h>

/* The file being read, for messages. */
typedef struct {
  const char *kind;        /* "checkpoint", "model file", "dataset" */
  const char *file;        /* its path */
  const char *damage_hint; /* appended to NG_ECORRUPT messages (the checkpoint's "; ... '.prev' may be resumed
                            * instead"); NULL: none */
} ng_h5_src;

/* The element types readers ask for: the file's type class must match, and HDF5 converts the values. */
typedef enum {
  NG_H5_I64, /* an integer of any size and sign, read as int64_t */
  NG_H5_F64, /* a float of any size, read as double */
  NG_H5_F32, /* a float of any size, read as float */
  NG_H5_STR  /* a string, variable-length or fixed, read as a malloc'd char * (the file's character set) */
} ng_h5_elem;

/* "int32", "float64", "a string", ...: what an HDF5 type is, for messages. */
const char *ng_h5_type_name(hid_t type);

/* Reads attribute `name` of `obj` (whose HDF5 path is objpath: "/", "/meta") into out after checking that it
 * holds exactly `count` (>= 1) elements of the class `elem` names: a scalar when count is 1, or a simple
 * dataspace of count points. out is int64_t[count], double[count], float[count] or char *[count] (each string
 * malloc'd; the caller frees them). On failure out is unchanged. Returns NG_OK; NG_ENOTFOUND when there is no
 * such attribute ("no attribute 'OBJPATH/NAME'"); NG_EFORMAT when it holds another type or another number of
 * values ("attribute 'OBJPATH/NAME' holds 3 values of int64, expected one integer"); NG_ECORRUPT when HDF5
 * cannot read it; NG_ENOMEM. */
int ng_h5_attr_get(const ng_h5_src *src, hid_t obj, const char *objpath, const char *name, ng_h5_elem elem,
                   size_t count, void *out);

#define NG_H5_MAX_RANK 4        /* the most dimensions any of nograd's datasets has */
#define NG_H5_ANY ((hsize_t)-1) /* in ng_h5_want.dims: any extent along that dimension */

/* What a dataset must be. */
typedef struct {
  unsigned classes;       /* accepted type classes: NG_H5_CLASS(H5T_FLOAT) | NG_H5_CLASS(H5T_INTEGER) ... */
  size_t size;            /* the element's bytes; 0: any */
  int min_rank, max_rank; /* accepted ranks, 0 (scalar) to NG_H5_MAX_RANK */
  const hsize_t *dims;    /* NULL: any extents; else max_rank values, each exact or NG_H5_ANY (only when
                           * min_rank == max_rank) */
  const char *expect;     /* the type the reader wants, for messages: "float32", "int32 labels or ..." */
} ng_h5_want;

#define NG_H5_CLASS(c) (1u << (unsigned)(c))

/* Opens the dataset at the absolute HDF5 path `h5path` of file `fid` and checks it against `want`: its
 * type class and size, its rank, its extents. On success *out is the open dataset (the caller closes it),
 * *rank its rank and dims[0..rank) its extents (either may be NULL). Returns NG_OK; NG_EFORMAT naming the
 * path and what differs ("no HDF5 path '/x'", "HDF5 path '/x' holds float64, expected float32", "HDF5 path
 * '/x' has 3 dimensions, expected 2 or 4", "HDF5 path '/model/index/offsets' has 7 entries along dimension 0,
 * expected 5"); NG_ECORRUPT when HDF5 cannot read its type or dataspace. */
int ng_h5_dataset_open(const ng_h5_src *src, hid_t fid, const char *h5path, const ng_h5_want *want,
                       hid_t *out, int *rank, hsize_t *dims);

#endif
