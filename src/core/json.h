/* Private: the one way nograd writes numbers and strings into JSON. */
#ifndef NOGRAD_CORE_JSON_H
#define NOGRAD_CORE_JSON_H

#include <stdio.h>

/* Writes v with 17 significant digits (it reads back to the same double), or null: JSON has no infinities and
 * no NaN, and a loss may be either. */
void ng_json_number(FILE *out, double v);

/* Writes s as a JSON string: quotes, backslash escapes for '"' and '\\', \\u00XX for control bytes. */
void ng_json_string(FILE *out, const char *s);

#endif
