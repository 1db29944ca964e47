/* Text from files and programs made safe to print (text.h). */
#include "core/text.h"

/* The length of the valid UTF-8 sequence at p (2 to 4) that is not a C1 control, or 0. */
static int utf8_length(const unsigned char *p) {
  int n = p[0] >= 0xc2 && p[0] <= 0xdf   ? 2
          : p[0] >= 0xe0 && p[0] <= 0xef ? 3
          : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4
                                         : 0;
  for (int i = 1; i < n; i++)
    if ((p[i] & 0xc0) != 0x80) return 0;
  if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) return 0; /* U+0080..U+009F: C1 controls (0x9b is a CSI) */
  if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
    return 0; /* overlong, or beyond U+10FFFF */
  return n;
}

void ng__text_sanitize(char *s, int keep_newlines) {
  unsigned char *p = (unsigned char *)s;
  while (p && *p) {
    int n = *p >= 0x80 ? utf8_length(p) : 1;
    if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f) && !(keep_newlines && *p == '\n'))) {
      *p++ = '?';
      continue;
    }
    p += n;
  }
}
