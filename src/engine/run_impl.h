/* Private: what the generation loop (engine.c) and the commands' own step loops (glue's fullgrad) share to
 * follow the run policy alike. */
#ifndef NOGRAD_ENGINE_RUN_IMPL_H
#define NOGRAD_ENGINE_RUN_IMPL_H

#include <stdio.h>

/* One --log line: every column of a history row (NG_HISTORY_NCOLS values) as a JSON object, then
 * "broadcast": mode, flushed. */
void ng__run_log(FILE *f, const double *row, const char *mode);

#endif
