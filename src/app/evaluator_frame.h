/* Private: the byte layer of the exec: evaluator protocol (the frames of nograd/plugin.h), shared by the
 * exec kind (evaluator_exec.c) and the fuzzer of the reply checker. */
#ifndef NOGRAD_APP_EVALUATOR_FRAME_H
#define NOGRAD_APP_EVALUATOR_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const unsigned char ng__frame_magic[4]; /* NG_FRAME_MAGIC without its NUL */

/* Little-endian fields, whatever the host's order. */
bool ng__frame_host_is_little_endian(void);
void ng__frame_put_u32(unsigned char *p, uint32_t v);
void ng__frame_put_u64(unsigned char *p, uint64_t v);
uint32_t ng__frame_get_u32(const unsigned char *p);
uint64_t ng__frame_get_u64(const unsigned char *p);
void ng__frame_put_f64s(unsigned char *p, const double *x, size_t count);
double ng__frame_get_f64(const unsigned char *p);
/* The 16-byte header: magic, type, body length. */
void ng__frame_put_header(unsigned char *p, uint32_t type, uint64_t body);
/* Grows *buf to `need` bytes; false (and ng_error's message) when memory runs out. */
bool ng__frame_reserve(unsigned char **buf, size_t *cap, size_t need);
/* Up to 24 bytes as 'text' when they are printable, else in hex, into out. */
void ng__frame_show_bytes(const unsigned char *p, size_t len, char *out, size_t outlen);

/* The reply a request waits for. */
typedef struct {
  uint32_t type;  /* NG_FRAME_HELLO_REPLY or NG_FRAME_EVAL_REPLY */
  uint32_t seq;   /* EVAL: the request's */
  uint32_t m;     /* EVAL: the request's */
  size_t len;     /* the reply's bytes */
  uint64_t start; /* bytes read from the program before the reply began, for messages */
} ng__frame_expect;

typedef enum { NG__FRAME_OK = 0, NG__FRAME_GARBAGE, NG__FRAME_VERSION } ng__frame_check;

/* Whether the `got` bytes received so far (r; got may exceed e->len by what was read past it) can still be
 * the start of the expected reply: NG__FRAME_OK, or what is wrong written into why (whylen bytes): a
 * malformed reply (where, in the reply and in the program's stdout, and what) or another frame version. */
ng__frame_check ng__frame_check_reply(const unsigned char *r, size_t got, const ng__frame_expect *e, char *why,
                                      size_t whylen);

/* The values of a complete EVAL reply (checked by ng__frame_check_reply) with width 1 (losses) or 2 (losses
 * and counts): into losses[0..e->m) and counts[0..e->m) (width 2 only). NG__FRAME_GARBAGE, with why, for a
 * count that is negative, infinite or NaN. */
ng__frame_check ng__frame_read_values(const unsigned char *r, const ng__frame_expect *e, size_t width,
                                      double *losses, double *counts, char *why, size_t whylen);

#endif
