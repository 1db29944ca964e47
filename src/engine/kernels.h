/* Private: the kernels a rank's forward passes run on (the BLAS core and configuration, the CPU model), for
 * the provenance in /meta and for the check that every rank of a run computes with the same ones: the
 * determinism contract (the same bits for any P) assumes it, since OpenBLAS picks its kernels by CPU at run
 * time and different kernels give different bits. */
#ifndef NOGRAD_ENGINE_KERNELS_H
#define NOGRAD_ENGINE_KERNELS_H

#include <mpi.h>
#include <stdio.h>

typedef struct {
  char blas_core[64];    /* openblas_get_corename(): "Cooperlake", "Haswell", ... */
  char blas_config[192]; /* openblas_get_config(): version, build options */
  char cpu_model[128];   /* /proc/cpuinfo's first "model name", or "unknown" */
} ng__kernels;

/* This process's kernels (computed once, then the same static struct). Not collective. */
const ng__kernels *ng__kernels_local(void);

/* Collective: rank 0 gathers every rank's BLAS core and CPU model once and, when they are not all the same,
 * writes a warning to `err` (rank 0's; may be NULL) naming the first rank and host that differs from rank 0,
 * since the run's bits would then depend on where a chunk runs. Returns the number of ranks that differ
 * (on rank 0; 0 elsewhere), or -1 when MPI fails. */
int ng__kernels_check(MPI_Comm comm, FILE *err);

/* Rank 0 on resume: warns on `err` when the checkpoint was written with another BLAS core or CPU model
 * than this process's (the continuation is then not the uninterrupted run's bits). saved_* may be NULL (a
 * checkpoint that predates the record): nothing is said. */
void ng__kernels_compare_saved(const char *path, const char *saved_core, const char *saved_cpu, FILE *err);

#endif
