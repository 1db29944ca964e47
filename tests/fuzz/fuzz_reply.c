/* The exec evaluator's reply checker (src/app/evaluator_frame.c): the input chooses the expected reply (HELLO
 * or EVAL, seq, m, width) and how the bytes arrive (the cuts between reads), then is the program's stdout.
 * The checker is given each growing prefix, as evaluator_exec.c gives it, and a complete reply's values are
 * read: whatever the bytes, a verdict and a message that fits its buffer, never a read past what arrived. */
#include "fuzz.h"

#include "app/evaluator_frame.h"
#include "nograd/plugin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_bytes b = {data, size};
  unsigned mode = fuzz_byte(&b);
  ng__frame_expect e = {0};
  size_t width = mode & 1 ? 2 : 1;
  e.type = mode & 2 ? NG_FRAME_HELLO_REPLY : NG_FRAME_EVAL_REPLY;
  e.seq = (uint32_t)fuzz_u64(&b, 1);
  e.m = (uint32_t)(fuzz_byte(&b) % 64);
  e.start = fuzz_u64(&b, 8);
  e.len = NG_FRAME_REPLY_BYTES + (e.type == NG_FRAME_EVAL_REPLY ? 8 * width * e.m : 0);
  unsigned step = fuzz_byte(&b) % 32 + 1;
  /* the reply as bytes of its own (the checker may look at any of them, never past `got`) */
  size_t len = b.left;
  unsigned char *r = malloc(len ? len : 1);
  if (!r) abort();
  memcpy(r, b.p, len);
  char why[256];
  ng__frame_check c = NG__FRAME_OK;
  size_t got = 0;
  while (got < len && c == NG__FRAME_OK) {
    got = got + step < len ? got + step : len;
    c = ng__frame_check_reply(r, got, &e, why, sizeof why);
    if (c != NG__FRAME_OK && strlen(why) >= sizeof why) abort();
  }
  if (c == NG__FRAME_OK && got >= e.len && e.type == NG_FRAME_EVAL_REPLY) {
    double losses[64], counts[64];
    ng__frame_read_values(r, &e, width, losses, counts, why, sizeof why);
  }
  char shown[160];
  ng__frame_show_bytes(r, len, shown, sizeof shown);
  free(r);
  return 0;
}
