/* The frames of exec: evaluators (nograd/plugin.h) as bytes: little-endian encoding whatever the host's
 * order, and the check of a reply as its bytes arrive (see evaluator_frame.h). No I/O here: the exec kind
 * (evaluator_exec.c) moves the bytes, and a fuzzer can feed the checker directly. */
#include "app/evaluator_frame.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"
#include "nograd/plugin.h"

/* ------------------------------------------------------------------------------------------------------ */
/* Little-endian encoding, whatever the host's order. */

bool ng__frame_host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char c;
  memcpy(&c, &one, 1);
  return c == 1;
}

void ng__frame_put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

void ng__frame_put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t ng__frame_get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t ng__frame_get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

void ng__frame_put_f64s(unsigned char *p, const double *x, size_t count) {
  if (ng__frame_host_is_little_endian()) {
    memcpy(p, x, count * sizeof *x);
    return;
  }
  for (size_t k = 0; k < count; k++) {
    uint64_t bits;
    memcpy(&bits, &x[k], sizeof bits);
    ng__frame_put_u64(p + 8 * k, bits);
  }
}

double ng__frame_get_f64(const unsigned char *p) {
  uint64_t bits = ng__frame_get_u64(p);
  double v;
  memcpy(&v, &bits, sizeof v);
  return v;
}

const unsigned char ng__frame_magic[4] = {'N', 'G', 'E', 'V'}; /* NG_FRAME_MAGIC without its NUL */

void ng__frame_put_header(unsigned char *p, uint32_t type, uint64_t body) {
  memcpy(p, ng__frame_magic, sizeof ng__frame_magic);
  ng__frame_put_u32(p + 4, type);
  ng__frame_put_u64(p + 8, body);
}

/* Grows *buf to `need` bytes; false (and ng_error's message) when memory runs out. */
bool ng__frame_reserve(unsigned char **buf, size_t *cap, size_t need) {
  if (*cap >= need && *buf) return true;
  unsigned char *b = realloc(*buf, need);
  if (!b) {
    ng_error(NG_ENOMEM, "out of memory (%zu bytes for an evaluator frame)", need);
    return false;
  }
  *buf = b;
  *cap = need;
  return true;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Checking a reply as it arrives. */

/* Up to 24 bytes as 'text' when they are printable, else in hex. */
void ng__frame_show_bytes(const unsigned char *p, size_t len, char *out, size_t outlen) {
  bool text = true;
  size_t n = len < 24 ? len : 24;
  for (size_t i = 0; i < n; i++)
    if (!((p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\n' || p[i] == '\t' || p[i] == '\r')) text = false;
  size_t o = 0;
  out[0] = '\0';
  if (text) {
    o += (size_t)snprintf(out + o, outlen - o, "'");
    for (size_t i = 0; i < n && o + 4 < outlen; i++) {
      char c = (char)p[i];
      const char *esc = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
      if (esc)
        o += (size_t)snprintf(out + o, outlen - o, "%s", esc);
      else
        out[o++] = c;
    }
    out[o] = '\0';
    snprintf(out + o, outlen - o, "'%s", len > n ? "..." : "");
  } else {
    for (size_t i = 0; i < n && o + 4 < outlen; i++)
      o += (size_t)snprintf(out + o, outlen - o, "%s%02x", i ? " " : "", p[i]);
    if (len > n && o + 4 < outlen) snprintf(out + o, outlen - o, " ...");
  }
}

/* The start of a malformed-reply message, where it went wrong; GARBAGE adds what was wrong. */
static size_t garbage_prefix(char *why, size_t len, const ng__frame_expect *e, size_t at) {
  int o = snprintf(why, len, "sent a malformed reply, at byte %zu of the reply (byte %llu of its stdout): ", at,
                   (unsigned long long)e->start + (unsigned long long)at);
  return o > 0 && (size_t)o < len ? (size_t)o : 0;
}

#define GARBAGE(e, at, ...)                                     \
  (used = garbage_prefix(why, whylen, (e), (at)),              \
   snprintf(why + used, whylen - used, __VA_ARGS__), NG__FRAME_GARBAGE)

ng__frame_check ng__frame_check_reply(const unsigned char *r, size_t got, const ng__frame_expect *e, char *why,
                                      size_t whylen) {
  size_t used = 0;
  for (size_t i = 0; i < 4 && i < got; i++)
    if (r[i] != ng__frame_magic[i]) {
      char shown[160];
      ng__frame_show_bytes(r, got, shown, sizeof shown);
      bool text = shown[0] == '\'';
      return GARBAGE(
          e, i, "expected the magic 'NGEV', found %s%s", shown,
          text ? " (text on stdout? an evaluator must write only frames there, and its logs to stderr)" : "");
    }
  if (got >= 8) {
    uint32_t type = ng__frame_get_u32(r + 4);
    if (type != e->type) {
      if (type == NG_FRAME_HELLO || type == NG_FRAME_EVAL || type == NG_FRAME_BYE)
        return GARBAGE(e, 4,
                       "a frame of type %u, which only nograd sends (is the program echoing its input, like "
                       "cat?)",
                       type);
      return GARBAGE(e, 4, "a frame of type 0x%x where type 0x%x (%s reply) was expected", type, e->type,
                     e->type == NG_FRAME_HELLO_REPLY ? "HELLO" : "EVAL");
    }
  }
  if (e->type == NG_FRAME_HELLO_REPLY) {
    if (got >= 12 && ng__frame_get_u32(r + 8) != NG_FRAME_VERSION) {
      snprintf(why, whylen, "speaks frame version %u, but this nograd speaks version %u (see nograd/plugin.h)",
               ng__frame_get_u32(r + 8), NG_FRAME_VERSION);
      return NG__FRAME_VERSION;
    }
    if (got >= 16 && (ng__frame_get_u32(r + 12) & ~NG_FRAME_FLAG_COUNTS) != 0)
      return GARBAGE(e, 12, "unknown flags 0x%x in its HELLO reply (version %u knows 0x%x)",
                     ng__frame_get_u32(r + 12), NG_FRAME_VERSION, NG_FRAME_FLAG_COUNTS);
  } else {
    if (got >= 12 && ng__frame_get_u32(r + 8) != e->seq)
      return GARBAGE(e, 8,
                     "it answers request %u, but request %u is the one pending (a reply too many or "
                     "too few?)",
                     ng__frame_get_u32(r + 8), e->seq);
    if (got >= 16 && ng__frame_get_u32(r + 12) != e->m)
      return GARBAGE(e, 12, "it carries %u losses for the %u candidates sent", ng__frame_get_u32(r + 12), e->m);
  }
  if (got > e->len) {
    char shown[160];
    ng__frame_show_bytes(r + e->len, got - e->len, shown, sizeof shown);
    return GARBAGE(e, e->len, "%zu bytes after the end of the reply: %s", got - e->len, shown);
  }
  return NG__FRAME_OK;
}


ng__frame_check ng__frame_read_values(const unsigned char *r, const ng__frame_expect *e, size_t width,
                                      double *losses, double *counts, char *why, size_t whylen) {
  size_t used = 0;
  const unsigned char *v = r + NG_FRAME_REPLY_BYTES;
  for (size_t k = 0; k < e->m; k++) {
    losses[k] = ng__frame_get_f64(v + 8 * width * k);
    if (width != 2) continue;
    double c = ng__frame_get_f64(v + 8 * width * k + 8);
    counts[k] = c;
    if (!(c >= 0) || isinf(c))
      return GARBAGE(e, NG_FRAME_REPLY_BYTES + 8 * width * k + 8,
                     "the count of candidate %zu is %g (a count must be finite and >= 0)", k, c);
  }
  return NG__FRAME_OK;
}
