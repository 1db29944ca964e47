/* An example exec: evaluator (frame format version 1, see README.md here and nograd/plugin.h): the shifted
 * sphere f(x) = sum_i (x_i - s)^2, s = 1 unless --shift says otherwise.
 *
 *   nograd ... --evaluator "exec:nograd_example_exec [--shift S] [--counts]"
 *
 * With --counts it sets the COUNTS flag and says that chunk c holds c + 1 examples: it answers
 * (f(x) * (c + 1), c + 1), a loss summed over a chunk's examples with their number, so the loss nograd
 * optimizes is still f(x) averaged over the chunks.
 *
 * It reads frames from stdin and writes replies to stdout, and logs (nothing, here) to stderr. It decodes
 * and encodes every field byte by byte, so it is right on any host; it exits 0 on BYE or at end of input,
 * and 2 on a frame it does not understand. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nograd/plugin.h"

static const unsigned char magic[4] = {'N', 'G', 'E', 'V'}; /* NG_FRAME_MAGIC, without its NUL */

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static double get_f64(const unsigned char *p) {
  uint64_t bits = get_u64(p);
  double v;
  memcpy(&v, &bits, sizeof v);
  return v;
}

static void put_f64(unsigned char *p, double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(bits >> (8 * i));
}

static int fail(const char *what) {
  fprintf(stderr, "example_exec: %s\n", what);
  return 2;
}

int main(int argc, char **argv) {
  double shift = 1;
  int counts = 0;
  for (int i = 1; i < argc; i++) {
    char *end = NULL;
    if (strcmp(argv[i], "--shift") == 0 && i + 1 < argc && (shift = strtod(argv[i + 1], &end), *end == '\0'))
      i++;
    else if (strcmp(argv[i], "--counts") == 0)
      counts = 1;
    else
      return fail("usage: example_exec [--shift S] [--counts]");
  }
  unsigned char head[NG_FRAME_HEADER_BYTES], *body = NULL, *reply = NULL;
  size_t body_cap = 0, reply_cap = 0;
  uint32_t n = 0;
  int status = 0;
  for (;;) {
    if (fread(head, 1, sizeof head, stdin) != sizeof head) break; /* end of input: nograd is gone */
    if (memcmp(head, magic, 4) != 0) {
      status = fail("bad magic");
      break;
    }
    uint32_t type = get_u32(head + 4);
    uint64_t len = get_u64(head + 8);
    if (len > SIZE_MAX / 2) {
      status = fail("frame too long");
      break;
    }
    if (len > body_cap) {
      free(body);
      body_cap = (size_t)len;
      if (!(body = malloc(body_cap))) {
        status = fail("out of memory");
        break;
      }
    }
    if (len && fread(body, 1, (size_t)len, stdin) != len) break;

    if (type == NG_FRAME_HELLO) {
      if (len < NG_FRAME_HELLO_BODY_BYTES) {
        status = fail("short HELLO");
        break;
      }
      n = get_u32(body + 4); /* also: version, nchunks, rank, nranks, the model's path */
      unsigned char r[NG_FRAME_REPLY_BYTES];
      memcpy(r, magic, 4);
      put_u32(r + 4, NG_FRAME_HELLO_REPLY);
      put_u32(r + 8, NG_FRAME_VERSION);
      put_u32(r + 12, counts ? NG_FRAME_FLAG_COUNTS : 0);
      fwrite(r, 1, sizeof r, stdout);
    } else if (type == NG_FRAME_EVAL) {
      uint32_t chunk = 0, seq = 0, m = 0;
      if (len >= NG_FRAME_EVAL_BODY_BYTES) {
        chunk = get_u32(body + 8);
        seq = get_u32(body + 12);
        m = get_u32(body + 20);
      }
      if (len < NG_FRAME_EVAL_BODY_BYTES || get_u32(body + 24) != n ||
          len != NG_FRAME_EVAL_BODY_BYTES + 8ull * m * n) {
        status = fail("EVAL of the wrong size");
        break;
      }
      size_t width = counts ? 2 : 1, rlen = NG_FRAME_REPLY_BYTES + 8 * width * m;
      if (rlen > reply_cap || !reply) {
        free(reply);
        reply_cap = rlen;
        if (!(reply = malloc(reply_cap + 1))) {
          status = fail("out of memory");
          break;
        }
      }
      memcpy(reply, magic, 4);
      put_u32(reply + 4, NG_FRAME_EVAL_REPLY);
      put_u32(reply + 8, seq);
      put_u32(reply + 12, m);
      const unsigned char *x = body + NG_FRAME_EVAL_BODY_BYTES;
      for (uint32_t k = 0; k < m; k++) {
        double f = 0;
        for (uint32_t i = 0; i < n; i++) {
          double d = get_f64(x + 8 * ((size_t)k * n + i)) - shift;
          f += d * d;
        }
        unsigned char *out = reply + NG_FRAME_REPLY_BYTES + 8 * width * k;
        if (counts) {
          put_f64(out, f * (chunk + 1.0));
          put_f64(out + 8, chunk + 1.0);
        } else {
          put_f64(out, f);
        }
      }
      fwrite(reply, 1, rlen, stdout);
    } else if (type == NG_FRAME_BYE) {
      break;
    }                               /* another type: a later version's; skipped, as the length allows */
    if (fflush(stdout) != 0) break; /* nograd closed the pipe */
  }
  free(body);
  free(reply);
  return status;
}
