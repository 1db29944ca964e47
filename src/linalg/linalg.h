/* Private: thin helpers over CBLAS and LAPACKE. */
#ifndef NOGRAD_LINALG_H
#define NOGRAD_LINALG_H

/* Makes OpenBLAS use one thread in this process. The determinism contract needs it: a threaded dgemm or
 * dsyevd may add in another order, and the ranks are the parallelism anyway. Called by ng_opt_create and the
 * engine; cheap to call again. */
void ng_linalg_single_thread(void);

#endif
