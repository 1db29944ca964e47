/* JSON numbers for the --json results, the --log lines and nograd inspect. */
#include "core/json.h"

#include <math.h>

void ng_json_number(FILE *out, double v) {
  if (isfinite(v))
    fprintf(out, "%.17g", v);
  else
    fputs("null", out);
}
