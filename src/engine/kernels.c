/* The kernels of the forward passes in the provenance (src/engine/kernels.h). */
#include "engine/kernels.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

static void cpu_model(char *out, size_t len) {
  snprintf(out, len, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) != 0) continue;
    const char *v = strchr(line, ':');
    if (!v) break;
    v++;
    while (*v == ' ' || *v == '\t')
      v++;
    snprintf(out, len, "%.*s", (int)strcspn(v, "\n"), v);
    break;
  }
  fclose(f);
}

const ng__kernels *ng__kernels_local(void) {
  static ng__kernels k;
  static int done;
  if (!done) {
    const char *core = openblas_get_corename(), *config = openblas_get_config();
    const char *fake = getenv("NOGRAD_TEST_BLAS_CORE"); /* tests only: a rank that claims other kernels */
    if (fake && *fake) core = fake;
    snprintf(k.blas_core, sizeof k.blas_core, "%.63s", core ? core : "unknown");
    snprintf(k.blas_config, sizeof k.blas_config, "%s", config ? config : "unknown");
    size_t n = strlen(k.blas_config); /* OpenBLAS ends its configuration with a space */
    while (n && k.blas_config[n - 1] == ' ')
      k.blas_config[--n] = '\0';
    cpu_model(k.cpu_model, sizeof k.cpu_model);
    done = 1;
  }
  return &k;
}

typedef struct {
  char core[64], cpu[128], host[MPI_MAX_PROCESSOR_NAME];
} rank_kernels;

int ng__kernels_check(MPI_Comm comm, FILE *err) {
  int rank, size, len = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  rank_kernels mine;
  memset(&mine, 0, sizeof mine);
  const ng__kernels *k = ng__kernels_local();
  snprintf(mine.core, sizeof mine.core, "%.63s", k->blas_core);
  snprintf(mine.cpu, sizeof mine.cpu, "%.127s", k->cpu_model);
  MPI_Get_processor_name(mine.host, &len);
  rank_kernels *all = NULL;
  if (rank == 0 && !(all = malloc((size_t)size * sizeof *all))) return -1;
  int rc = MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, comm);
  if (rc != MPI_SUCCESS) {
    free(all);
    return -1;
  }
  int differ = 0, first = -1;
  for (int r = 1; rank == 0 && r < size; r++)
    if (strcmp(all[r].core, all[0].core) || strcmp(all[r].cpu, all[0].cpu)) {
      differ++;
      if (first < 0) first = r;
    }
  if (differ && err)
    fprintf(
        err,
        "nograd: warning: the ranks compute with different kernels: rank %d on %s has BLAS core %s on '%s', "
        "rank 0 on %s has %s on '%s' (%d of %d ranks differ); forward passes then depend on where a chunk "
        "runs, and the run is not the same bits for another number of ranks\n",
        first, all[first].host, all[first].core, all[first].cpu, all[0].host, all[0].core, all[0].cpu, differ,
        size);
  free(all);
  return differ;
}

void ng__kernels_compare_saved(const char *path, const char *saved_core, const char *saved_cpu, FILE *err) {
  const ng__kernels *k = ng__kernels_local();
  if (!err || !saved_core || !saved_cpu) return;
  if (strcmp(saved_core, k->blas_core) || strcmp(saved_cpu, k->cpu_model))
    fprintf(err,
            "nograd: warning: --resume %s: the checkpoint was written with BLAS core %s on '%s', this run "
            "has %s on "
            "'%s': the continuation computes with other kernels and is not the uninterrupted run's bits\n",
            path, saved_core, saved_cpu, k->blas_core, k->cpu_model);
}
