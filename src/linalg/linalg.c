/* Thin helpers over CBLAS and LAPACKE. */
#include "linalg/linalg.h"

#include <cblas.h>

void ng_linalg_single_thread(void) {
  /* OpenBLAS reads OPENBLAS_NUM_THREADS at load time; a user who set it higher would otherwise get results
   * that depend on the thread count. */
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}
