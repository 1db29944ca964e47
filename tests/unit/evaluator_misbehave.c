/* A test-only exec: evaluator that answers K requests correctly (f(x) = sum (x_i - 1)^2) and then
 * misbehaves in the way MODE names, for test_evaluator.c. Not a test itself (tests/CMakeLists.txt globs
 * test_*.c); built by the top-level CMakeLists.txt.
 *
 *   evaluator_misbehave MODE K [FILE]
 *
 * Request K (0-based, counted per process) is the one misbehaved on:
 *   ok          never misbehaves            exit       exits with status 3 after reading it
 *   abort       dies of SIGABRT             hang       sleeps without reading or writing
 *   garbage     prints a line of text       wrongcount claims m + 1 losses
 *   badseq      answers another request     short      writes half a reply and exits 0
 *   extra       writes 8 bytes too many     badcount   (COUNTS flag) a count of -1
 *   noread      exits 5 without reading it  closeout   closes stdout and sleeps
 *   stderr      says "request k" on stderr for each request, then "dying now" and exits 4
 *   grandchild  starts a child that sleeps (its pid written to FILE), then hangs like "hang"
 * and at start:
 *   helloversion  answers HELLO with version 2        hellohang  never answers HELLO
 *   helloecho     echoes the HELLO frame back (as cat would)
 *   ignorebye     on BYE, sleeps instead of exiting
 *   model         writes the HELLO's fields to FILE ("n nchunks rank nranks path"), then behaves
 *   fds           writes the descriptors it inherited above 2 to FILE (a line, maybe empty), then behaves */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "nograd/plugin.h"

static const char *mode;
/* static, not malloc'ed: an exit in the middle must not be turned into LeakSanitizer's status 23 */
static unsigned char body[1 << 22], reply[1 << 22];

static const unsigned char magic[4] = {'N', 'G', 'E', 'V'}; /* NG_FRAME_MAGIC, without its NUL */

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static int is(const char *m) {
  return strcmp(mode, m) == 0;
}

static void sleep_forever(void) {
  for (;;)
    sleep(1000);
}

static int read_all(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t k = read(fd, (char *)buf + got, len - got);
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  return 0;
}

static void write_all(int fd, const void *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t k = write(fd, (const char *)buf + done, len - done);
    if (k <= 0) exit(0);
    done += (size_t)k;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: evaluator_misbehave MODE K [FILE]\n");
    return 2;
  }
  mode = argv[1];
  long bad = strtol(argv[2], NULL, 10);
  const char *file = argc > 3 ? argv[3] : NULL;
  int counts = is("badcount");
  unsigned char head[NG_FRAME_HEADER_BYTES];
  uint32_t n = 0;
  for (long k = 0;; k++) {
    if (is("noread") && k == bad + 1) return 5; /* request number `bad`, counting the HELLO as frame 0 */
    if (read_all(0, head, sizeof head) != 0) return 0;
    uint32_t type = get_u32(head + 4);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--)
      len = len << 8 | head[8 + i];
    if (len > sizeof body) return 2;
    if (len && read_all(0, body, len) != 0) return 0;
    if (type == NG_FRAME_HELLO) {
      if (is("hellohang")) sleep_forever();
      if (is("helloecho")) {
        write_all(1, head, sizeof head);
        write_all(1, body, len);
        sleep_forever();
      }
      if (is("grandchild")) {
        pid_t child = fork();
        if (child == 0) {
          close(0);
          sleep_forever();
        }
        FILE *f = fopen(file, "w");
        if (f) {
          fprintf(f, "%ld\n", (long)child);
          fclose(f);
        }
      }
      n = get_u32(body + 4);
      if (is("fds") && file) {
        FILE *f = fopen(file, "w");
        DIR *d = opendir("/proc/self/fd");
        if (f && d) {
          for (struct dirent *e; (e = readdir(d));) {
            int fd = atoi(e->d_name);
            if (e->d_name[0] != '.' && fd > 2 && fd != dirfd(d) && fd != fileno(f)) fprintf(f, "%d ", fd);
          }
          fprintf(f, "\n");
        }
        if (d) closedir(d);
        if (f) fclose(f);
      }
      if (is("model") && file) {
        FILE *f = fopen(file, "w");
        if (f) {
          uint32_t plen = get_u32(body + 20);
          fprintf(f, "%u %u %u %u %.*s\n", n, get_u32(body + 8), get_u32(body + 12), get_u32(body + 16),
                  (int)plen, (const char *)body + 24);
          fclose(f);
        }
      }
      unsigned char r[NG_FRAME_REPLY_BYTES];
      memcpy(r, magic, 4);
      put_u32(r + 4, NG_FRAME_HELLO_REPLY);
      put_u32(r + 8, is("helloversion") ? 2 : NG_FRAME_VERSION);
      put_u32(r + 12, counts ? NG_FRAME_FLAG_COUNTS : 0);
      write_all(1, r, sizeof r);
      continue;
    }
    if (type == NG_FRAME_BYE) {
      if (is("ignorebye")) sleep_forever();
      return 0;
    }
    long req = k - 1; /* frame 0 was the HELLO */
    uint32_t seq = get_u32(body + 12), m = get_u32(body + 20);
    if (is("stderr")) {
      fprintf(stderr, "request %ld\n", req);
      if (req == bad) {
        fprintf(stderr, "dying now\n");
        return 4;
      }
    }
    if (req == bad) {
      if (is("exit")) return 3;
      if (is("abort")) {
        signal(SIGABRT, SIG_DFL);
        abort();
      }
      if (is("hang") || is("grandchild")) sleep_forever();
      if (is("garbage")) {
        write_all(1, "oops: not a frame\n", 18);
        sleep_forever();
      }
      if (is("closeout")) {
        close(1);
        sleep_forever();
      }
    }
    size_t width = counts ? 2 : 1, rlen = NG_FRAME_REPLY_BYTES + 8 * width * m;
    if (rlen + 8 > sizeof reply) return 2;
    unsigned char *r = reply;
    memset(r, 0, rlen + 8);
    memcpy(r, magic, 4);
    put_u32(r + 4, NG_FRAME_EVAL_REPLY);
    put_u32(r + 8, req == bad && is("badseq") ? seq + 1 : seq);
    put_u32(r + 12, req == bad && is("wrongcount") ? m + 1 : m);
    for (uint32_t c = 0; c < m; c++) {
      double f = 0;
      for (uint32_t i = 0; i < n; i++) {
        double v; /* tests run on little-endian hosts */
        memcpy(&v, body + NG_FRAME_EVAL_BODY_BYTES + 8 * ((size_t)c * n + i), sizeof v);
        f += (v - 1) * (v - 1);
      }
      memcpy(r + NG_FRAME_REPLY_BYTES + 8 * width * c, &f, 8);
      if (counts) {
        double cnt = req == bad ? -1.0 : 1.0;
        memcpy(r + NG_FRAME_REPLY_BYTES + 8 * width * c + 8, &cnt, 8);
      }
    }
    if (req == bad && is("short")) {
      write_all(1, r, rlen / 2);
      return 0;
    }
    write_all(1, r, rlen + (req == bad && is("extra") ? 8 : 0));
  }
}
