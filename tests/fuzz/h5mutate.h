/* Mutations of well-formed HDF5 files at the level of their objects, for the harnesses of the file readers
 * (fuzz_model_file.c, fuzz_dataset_file.c, fuzz_ckpt_file.c).
 *
 * A byte-level mutation of an HDF5 file mostly exercises libhdf5's parser (which nograd keeps behind its CRC
 * and, for files without one, in a child process). What nograd's readers themselves must survive are
 * well-formed files with hostile content: an attribute of 100 values where one is read, a string where a
 * number is, a dataset of another rank, type or extent (2^40 rows, stored as unallocated chunks), a group or
 * a soft link where a dataset is, a missing object, NaN or huge values. So a harness starts from files nograd
 * wrote, and the input chooses, through HDF5's own API, which objects and attributes to replace, delete or
 * add and with what; the result is sealed (nograd's header for the new content, src/io/seal.h) so that the
 * reader parses it in-process, as it would a file it wrote. */
#ifndef NOGRAD_TESTS_FUZZ_H5MUTATE_H
#define NOGRAD_TESTS_FUZZ_H5MUTATE_H

#include <stddef.h>
#include <stdint.h>

/* A file to start from: its bytes and the paths of its objects and attributes. */
typedef struct {
  unsigned char *bytes;
  size_t len;
  char **objects; /* absolute paths of its groups and datasets, "/" first */
  size_t nobjects;
  char **attrs; /* "OBJECT\nNAME" of each attribute */
  size_t nattrs;
} fuzz_h5_base;

/* Loads the file at path (written by nograd) as a base. Aborts on failure. */
void fuzz_h5_base_load(fuzz_h5_base *b, const char *path);

/* Writes the base, mutated as the input's bytes choose, sealed, to a file of this process and returns its
 * path (valid until the next call). */
const char *fuzz_h5_mutant(const fuzz_h5_base *b, const uint8_t *data, size_t size);

#endif
