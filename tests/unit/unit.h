/* Helpers shared by the cmocka unit tests (tests/unit/test_*.c). Include after cmocka.h. */
#ifndef NOGRAD_TESTS_UNIT_H
#define NOGRAD_TESTS_UNIT_H

#include <string.h>

#include "nograd/error.h"

/* Fails the test, with the status and the message, unless status is NG_OK. */
static inline void check(int status, const char *what) {
  if (status != NG_OK) fail_msg("%s: %s: %s", what, ng_strerror(status), ng_errmsg());
}

/* Fails unless haystack contains needle. */
static inline void assert_contains(const char *haystack, const char *needle) {
  if (!strstr(haystack, needle)) fail_msg("expected '%s' in: %s", needle, haystack);
}

/* `status` must be `want` and the message must contain each of `words` (NULL-terminated; NULL: none). */
static inline void assert_error(int status, int want, const char *context, const char *const *words) {
  if (status != want)
    fail_msg("%s: got status %d (%s), want %d (%s); message '%s'", context, status, ng_strerror(status), want,
             ng_strerror(want), ng_errmsg());
  for (size_t i = 0; words && words[i]; i++)
    if (!strstr(ng_errmsg(), words[i]))
      fail_msg("%s: message '%s' does not name '%s'", context, ng_errmsg(), words[i]);
}

#define WORDS(...) ((const char *const[]){__VA_ARGS__, NULL})

#endif
