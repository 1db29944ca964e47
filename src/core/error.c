/* The status table and the per-thread message of the last failure. */
#include "nograd/error.h"

#include "core/text.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_message[1024]; /* long enough for two paths and a shape */

const char *ng_strerror(int status) {
  switch (status) {
#define NG_STATUS_CASE(name, value, text) \
  case value:                             \
    return text;
    NG_STATUS_TABLE(NG_STATUS_CASE)
#undef NG_STATUS_CASE
    default:
      return "unknown status";
  }
}

int ng_error(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  ng__text_sanitize(last_message, 0); /* names and values quoted from files and programs (core/text.h) */
  return status;
}

const char *ng_errmsg(void) {
  return last_message;
}

void ng_error_clear(void) {
  last_message[0] = '\0';
}
