/* Random streams for nograd: Philox4x32-10 words and the deviates built from them.
 *
 * Every random number of a run comes from here, and a run must be reproducible from its seed on any number of
 * ranks: a word is the pure function Philox(key = seed, counter = (block, index, generation, purpose)), so a
 * rank regenerates any candidate's draws without replaying anyone else's. On top of the words sit the uniform
 * (53 bits), the normal (a 256-layer ziggurat after Marsaglia and Tsang, 2000), the Rademacher sign and the
 * bounded integer (Lemire, 2019). The fill functions produce the words block-wise and then decode them with
 * the same code as the single draws, which is what makes them bit-identical to those.
 *
 * The ziggurat's tables, and its rare tail and wedge tests, use the exp and log below, built from +, -, *, /
 * (and sqrt): those are correctly rounded everywhere (IEEE 754), whereas the system's libm may take another
 * code path, and so give another last bit, on another CPU of the same cluster. The normals therefore do not
 * depend on the machine that draws them. */
#include "nograd/rng.h"

#include <Random123/philox.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "nograd/error.h"

/* On x86-64 the fills compute Philox with AVX2 when the CPU has it, chosen at run time; the kernel gives
 * exactly Random123's words (see philox_avx2), so a stream does not depend on the CPU. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_KERNELS 1
#endif

/* A fused multiply-add would change the last bits of the tables and the wedge test from build to build.
 * GCC does not fuse in ISO C mode (the project builds with -std=c11); clang needs to be told. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#define PHILOX_ROUNDS 10 /* Philox4x32-10: the round count Random123 recommends and its test vectors use */
#define ZIG_BITS 8       /* low bits of a draw that pick the ziggurat layer */
#define ZIG_LAYERS (1 << ZIG_BITS)
#define FILL_WORDS 1024 /* words produced per batch by the fill functions: 4 KiB of stack, stays in L1 */

static const double sign_of[2] = {1.0, -1.0}; /* a table, not a branch: a random sign defeats prediction */

/* ---- Philox words ---- */

/* Computes block `block` of the stream (the other three counter words from r) into out. */
static void philox_block(const ng_rng *r, uint32_t block, uint32_t out[4]) {
  philox4x32_key_t k = {{r->key[0], r->key[1]}};
  philox4x32_ctr_t c = {{block, r->ctr[1], r->ctr[2], r->ctr[3]}};
  philox4x32_ctr_t o = philox4x32_R(PHILOX_ROUNDS, c, k);
  memcpy(out, o.v, sizeof o.v);
}

/* Moves to the next block. The block counter wraps after 2^32 blocks (2^34 words); a stream that long would
 * start over, which no optimizer comes near: a candidate's stream holds its dimension's worth of normals. */
static void next_block(ng_rng *r) {
  r->ctr[0]++;
  philox_block(r, r->ctr[0], r->buf);
  r->used = 0;
}

void ng_rng_init(ng_rng *r, uint64_t seed, uint32_t purpose, uint32_t generation, uint32_t index) {
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  r->ctr[0] = 0;
  r->ctr[1] = index;
  r->ctr[2] = generation;
  r->ctr[3] = purpose;
  philox_block(r, 0, r->buf);
  r->used = 0;
}

uint32_t ng_rng_u32(ng_rng *r) {
  if (r->used == 4) next_block(r);
  return r->buf[r->used++];
}

uint64_t ng_rng_u64(ng_rng *r) {
  if (r->used <= 2) {
    uint64_t hi = r->buf[r->used], lo = r->buf[r->used + 1];
    r->used += 2;
    return hi << 32 | lo;
  }
  uint64_t hi = ng_rng_u32(r);
  return hi << 32 | ng_rng_u32(r);
}

#ifdef HAVE_AVX2_KERNELS
#define AVX2_BLOCKS \
  32 /* blocks per kernel call: four independent vectors of eight hide the multiplies' latency */

/* Blocks first .. first+31 of the stream into out, four words each: exactly Random123's philox4x32_R(10,
 * ...), with lane j of vector v holding block 8v + j and one vector per counter word. AVX2 multiplies
 * 32x32->64 bits on even lanes only, so the odd lanes are shifted down, multiplied apart and blended back.
 * Integer arithmetic only: its output cannot depend on the CPU, so choosing it at run time keeps every stream
 * the same. */
__attribute__((target("avx2"))) static void philox_avx2(const ng_rng *r, uint32_t first, uint32_t *out) {
  __m256i c0[4], c1[4], c2[4], c3[4];
  for (int v = 0; v < 4; v++) {
    c0[v] = _mm256_add_epi32(_mm256_set1_epi32((int)(first + 8u * (uint32_t)v)),
                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    c1[v] = _mm256_set1_epi32((int)r->ctr[1]);
    c2[v] = _mm256_set1_epi32((int)r->ctr[2]);
    c3[v] = _mm256_set1_epi32((int)r->ctr[3]);
  }
  const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M4x32_0), m1 = _mm256_set1_epi32((int)PHILOX_M4x32_1);
  uint32_t k0 = r->key[0], k1 = r->key[1];
  for (int round = 0; round < PHILOX_ROUNDS; round++) {
    __m256i vk0 = _mm256_set1_epi32((int)k0), vk1 = _mm256_set1_epi32((int)k1);
    for (int v = 0; v < 4; v++) {
      __m256i even0 = _mm256_mul_epu32(c0[v], m0), odd0 = _mm256_mul_epu32(_mm256_srli_epi64(c0[v], 32), m0);
      __m256i even1 = _mm256_mul_epu32(c2[v], m1), odd1 = _mm256_mul_epu32(_mm256_srli_epi64(c2[v], 32), m1);
      __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(even0, 32), odd0, 0xAA);
      __m256i lo0 = _mm256_blend_epi32(even0, _mm256_slli_epi64(odd0, 32), 0xAA);
      __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(even1, 32), odd1, 0xAA);
      __m256i lo1 = _mm256_blend_epi32(even1, _mm256_slli_epi64(odd1, 32), 0xAA);
      c0[v] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[v]), vk0);
      c1[v] = lo1;
      c2[v] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[v]), vk1);
      c3[v] = lo0;
    }
    k0 += PHILOX_W32_0;
    k1 += PHILOX_W32_1;
  }
  for (size_t v = 0; v < 4; v++) { /* transpose 4 words x 8 blocks into 8 blocks of 4 words */
    __m256i a = _mm256_unpacklo_epi32(c0[v], c1[v]), b = _mm256_unpackhi_epi32(c0[v], c1[v]);
    __m256i c = _mm256_unpacklo_epi32(c2[v], c3[v]), d = _mm256_unpackhi_epi32(c2[v], c3[v]);
    __m256i b04 = _mm256_unpacklo_epi64(a, c), b15 = _mm256_unpackhi_epi64(a, c);
    __m256i b26 = _mm256_unpacklo_epi64(b, d), b37 = _mm256_unpackhi_epi64(b, d);
    __m256i *o = (__m256i *)(out + 32 * v);
    _mm256_storeu_si256(o, _mm256_permute2x128_si256(b04, b15, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(b26, b37, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(b04, b15, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(b26, b37, 0x31));
  }
}
#endif

/* Writes the next n words of the stream to out and leaves r exactly as n calls of ng_rng_u32 would. Whole
 * blocks are computed in batches, eight at a time where the CPU has AVX2: that is where the fills gain. */
static void stream_words(ng_rng *r, uint32_t *out, size_t n) {
  size_t k = 0;
  while (k < n && r->used < 4)
    out[k++] = r->buf[r->used++];
  size_t blocks = (n - k) / 4, j = 0;
  if (blocks > 0) {
    uint32_t first = r->ctr[0] + 1;
#ifdef HAVE_AVX2_KERNELS
    if (blocks >= 8 && __builtin_cpu_supports("avx2")) {
      for (; j + AVX2_BLOCKS <= blocks; j += AVX2_BLOCKS)
        philox_avx2(r, first + (uint32_t)j, out + k + 4 * j);
      if (blocks - j >=
          8) { /* a batch seldom starts on a block boundary: its last blocks are computed in full */
        uint32_t tail[4 * AVX2_BLOCKS];
        philox_avx2(r, first + (uint32_t)j, tail);
        memcpy(out + k + 4 * j, tail, 4 * (blocks - j) * sizeof *tail);
        j = blocks;
      }
    }
#endif
    for (; j < blocks; j++)
      philox_block(r, first + (uint32_t)j, out + k + 4 * j);
    k += 4 * blocks;
    r->ctr[0] += (uint32_t)blocks; /* modulo 2^32, as block by block */
    memcpy(r->buf, out + k - 4, sizeof r->buf);
    r->used = 4;
  }
  while (k < n)
    out[k++] = ng_rng_u32(r);
}

/* ---- uniform, Rademacher, bounded integer ---- */

/* The uniform of one u64: the top 53 bits plus one half, scaled by 2^-53. Above 1/2 the sum (m + 0.5) needs
 * 54 bits and is rounded to even, so the largest m would give exactly 1.0; it gets the largest double
 * below 1. */
static inline double uniform_of(uint64_t b) {
  double u = ((double)(b >> 11) + 0.5) * 0x1p-53;
  return u < 1.0 ? u : 0x1.fffffffffffffp-1;
}

double ng_rng_uniform(ng_rng *r) {
  return uniform_of(ng_rng_u64(r));
}

double ng_rng_rademacher(ng_rng *r) {
  return sign_of[ng_rng_u32(r) & 1];
}

/* The high and low halves of the 128-bit product a * b, from 32-bit pieces so that no compiler extension is
 * needed. */
static uint64_t mul_64x64(uint64_t a, uint64_t b, uint64_t *lo) {
  uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
  uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
  *lo = mid << 32 | (p00 & 0xffffffffu);
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* Lemire's multiply-and-reject: the high half of x * n is uniform in [0, n) once the few low halves below
 * 2^64 mod n are rejected; the division that computes that threshold is only reached in the rare case where a
 * rejection is possible at all. n == 0 is outside the contract and gives 0 without a draw. */
uint64_t ng_rng_below(ng_rng *r, uint64_t n) {
  if (n == 0) return 0;
  uint64_t lo, hi = mul_64x64(ng_rng_u64(r), n, &lo);
  if (lo < n) {
    uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
    while (lo < threshold)
      hi = mul_64x64(ng_rng_u64(r), n, &lo);
  }
  return hi;
}

void ng_rng_uniform_fill(ng_rng *r, double *out, size_t count) {
  uint32_t w[FILL_WORDS];
  for (size_t done = 0, m; done < count; done += m) {
    m = count - done < FILL_WORDS / 2 ? count - done : FILL_WORDS / 2;
    stream_words(r, w, 2 * m);
    for (size_t k = 0; k < m; k++)
      out[done + k] = uniform_of((uint64_t)w[2 * k] << 32 | w[2 * k + 1]);
  }
}

void ng_rng_rademacher_fill(ng_rng *r, double *out, size_t count) {
  uint32_t w[FILL_WORDS];
  for (size_t done = 0, m; done < count; done += m) {
    m = count - done < FILL_WORDS ? count - done : FILL_WORDS;
    stream_words(r, w, m);
    for (size_t k = 0; k < m; k++)
      out[done + k] = sign_of[w[k] & 1];
  }
}

/* ---- exp and log from the four operations ---- */

/* fdlibm's split of ln 2: the high part has 32 significant bits, so k * LN2_HI is exact for |k| < 2^21. */
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define LOG2_E 1.44269504088896338700e+00
#define ROUNDER \
  0x1.8p52 /* adding and subtracting it rounds a double below 2^51 to an integer, ties to even */

static double double_of_bits(uint64_t bits) {
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

/* e^x to about one ulp for -708 <= x <= 0 (0 below): x = k ln 2 + t with |t| <= ln 2 / 2, e^t by its Taylor
 * series to t^13 (the next term is below 2^-57) and 2^k from its bits. The series goes by Estrin's scheme, in
 * four levels of independent multiply-adds, because the wedge test waits for this result: a chain of thirteen
 * made it the costliest part of a normal fill. No libm call, so nothing to differ between machines. */
static double det_exp(double x) {
  if (x < -708.0) return 0.0;
  double k = (x * LOG2_E + ROUNDER) - ROUNDER;
  double t = (x - k * LN2_HI) - k * LN2_LO;
  double t2 = t * t, t4 = t2 * t2, t8 = t4 * t4;
  double e0 = 1.0 / 2 + t * (1.0 / 6), e1 = 1.0 / 24 + t * (1.0 / 120), e2 = 1.0 / 720 + t * (1.0 / 5040);
  double e3 = 1.0 / 40320 + t * (1.0 / 362880), e4 = 1.0 / 3628800 + t * (1.0 / 39916800);
  double e5 = 1.0 / 479001600 + t * (1.0 / 6227020800);
  double q = (e0 + e1 * t2) + (e2 + e3 * t2) * t4 + (e4 + e5 * t2) * t8; /* (e^t - 1 - t) / t^2 */
  return (1.0 + (t + t2 * q)) * double_of_bits((uint64_t)((int64_t)k + 1023) << 52);
}

/* ln x for a normal double x > 0, as fdlibm does it: x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1
 * (exact), s = f / (2 + f) and ln(1 + f) = 2 atanh(s) = f - (f^2/2 - s (f^2/2 + R(s^2))), R from the atanh
 * series, whose terms fall by s^2 <= 0.03 each; eleven of them reach below 2^-60. */
static double det_log(double x) {
  static const double atanh_coef[11] = {2.0 / 23, 2.0 / 21, 2.0 / 19, 2.0 / 17, 2.0 / 15, 2.0 / 13,
                                        2.0 / 11, 2.0 / 9,  2.0 / 7,  2.0 / 5,  2.0 / 3};
  uint64_t bits;
  memcpy(&bits, &x, sizeof bits);
  int e = (int)(bits >> 52) - 1022;
  double m = double_of_bits((bits & 0x000fffffffffffffu) | 0x3fe0000000000000u); /* in [1/2, 1) */
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e--;
  }
  double f = m - 1.0, s = f / (2.0 + f), z = s * s, hfsq = 0.5 * f * f;
  double R = 0.0;
  for (int j = 0; j < 11; j++)
    R = (R + atanh_coef[j]) * z;
  double dk = e;
  return dk * LN2_HI - ((hfsq - (s * (hfsq + R) + dk * LN2_LO)) - f);
}

/* ---- the ziggurat ----
 *
 * The half-density f(x) = exp(-x^2/2), x >= 0, is covered by ZIG_LAYERS layers of equal area v. Layer 0 is
 * the rectangle [0, r] x [0, f(r)] together with the tail beyond r; it is drawn as if it were a rectangle of
 * width x[0] = v / f(r). Layer i >= 1 is [0, x[i]] x [f(x[i]), f(x[i+1])], from x[1] = r down to the top
 * layer, whose x[i+1] is 0. A draw picks a layer i and a point x = u x[i]; below x[i+1] it lies under the
 * curve whatever its height, and that is the answer in 98.5% of draws. Otherwise layer 0 hands over to
 * Marsaglia's exact tail method and the other layers draw the height and compare it with f(x) (the wedge); a
 * rejected point starts over with a new draw. */

static struct {
  double x[ZIG_LAYERS + 1]; /* right edges of the layers, x[0] the base layer's equivalent width */
  double f[ZIG_LAYERS + 1]; /* f(x[i]); f[0] is unused */
  double xs[ZIG_LAYERS]; /* x[i] * 2^-53: turns the 53 uniform bits of a draw into a point in one product */
} zig;
static pthread_once_t zig_once = PTHREAD_ONCE_INIT;
static atomic_int zig_ready; /* lets every draw after the first skip pthread_once's call */

/* The integral of f from r to infinity, divided by f(r) (Mills' ratio), from Laplace's continued fraction
 * 1/(r + 1/(r + 2/(r + 3/(r + ...)))) evaluated from a fixed depth. For r >= 3 the value stops changing after
 * about 100 levels and agrees with a long double evaluation to an ulp; 200 leave a margin. */
static double mills_ratio(double r) {
  double t = r;
  for (int k = 200; k >= 1; k--)
    t = r + k / t;
  return 1.0 / t;
}

/* Builds the layers for a base edge r. Returns -1 if r is too small (the layers reach the peak before the
 * last one, or leave it less than v), +1 if it is too large (the last layer is left more than v). */
static int zig_layers(double r) {
  double fr = det_exp(-0.5 * r * r);
  double v = fr * (r + mills_ratio(r)); /* base rectangle r f(r) plus the tail */
  zig.x[0] = v / fr;
  zig.x[1] = r;
  zig.f[1] = fr;
  for (int i = 1; i < ZIG_LAYERS - 1; i++) {
    double y = zig.f[i] + v / zig.x[i]; /* x[i] (f[i+1] - f[i]) = v */
    if (y >= 1.0) return -1;
    zig.x[i + 1] = sqrt(-2.0 * det_log(y));
    zig.f[i + 1] = y;
  }
  zig.x[ZIG_LAYERS] = 0.0;
  zig.f[ZIG_LAYERS] = 1.0;
  return zig.x[ZIG_LAYERS - 1] * (1.0 - zig.f[ZIG_LAYERS - 1]) >= v ? 1 : -1;
}

/* Finds r by bisection down to adjacent doubles, so that the top layer has the same area as the others to
 * rounding, rather than trusting a constant with a dozen published digits (r = 3.6541528853610088 for 256).
 */
static void zig_build(void) {
  double lo = 3.0, hi = 4.0;
  for (;;) {
    double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (zig_layers(mid) > 0) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  zig_layers(hi); /* the side whose layers all fit */
  for (int i = 0; i < ZIG_LAYERS; i++)
    zig.xs[i] = zig.x[i] * 0x1p-53;
  atomic_store_explicit(&zig_ready, 1, memory_order_release);
}

static inline void zig_init(void) {
  if (!atomic_load_explicit(&zig_ready, memory_order_acquire)) pthread_once(&zig_once, zig_build);
}

/* The fast path of one draw b: bits 0-7 pick the layer, bit 8 the sign, bits 11-63 the point. Returns 1 and
 * the deviate in *z when the point lies in the part of the layer that is under the curve for sure. */
static inline int zig_fast(uint64_t b, double *z) {
  unsigned i = (unsigned)(b & (ZIG_LAYERS - 1));
  double x = ((double)(b >> 11) + 0.5) * zig.xs[i];
  *z = sign_of[(b >> ZIG_BITS) & 1] * x;
  return x < zig.x[i + 1];
}

/* How many of the m draws in w (two words each) take the fast path before the first that does not; their
 * deviates go to out[0..returned), and the rest of out[0..m) may be written with values of no use. */
static size_t zig_run(const uint32_t *w, size_t m, double *out) {
  size_t j = 0;
  while (j < m && zig_fast((uint64_t)w[2 * j] << 32 | w[2 * j + 1], &out[j]))
    j++;
  return j;
}

/* Where the further u64 draws of the slow path come from: the stream itself, or a fill function's batch. */
typedef uint64_t (*draw_fn)(void *src);

/* Finishes a draw b that missed the fast path: tail or wedge, and new draws from `next` until one is
 * accepted. */
static double zig_slow(uint64_t b, draw_fn next, void *src) {
  for (;;) {
    double z;
    if (zig_fast(b, &z)) return z;
    unsigned i = (unsigned)(b & (ZIG_LAYERS - 1));
    double s = sign_of[(b >> ZIG_BITS) & 1];
    if (i == 0) {
      /* Marsaglia (1964): r + a with a ~ Exp(r), accepted with probability exp(-a^2/2), is the tail. */
      double r = zig.x[1];
      for (;;) {
        double a = -det_log(uniform_of(next(src))) / r;
        double e = -det_log(uniform_of(next(src)));
        if (e + e > a * a) return s * (r + a);
      }
    }
    double x = fabs(z);
    double y = zig.f[i] + uniform_of(next(src)) * (zig.f[i + 1] - zig.f[i]);
    if (y < det_exp(-0.5 * x * x)) return z;
    b = next(src);
  }
}

static uint64_t draw_from_stream(void *src) {
  return ng_rng_u64(src);
}

double ng_rng_normal(ng_rng *r) {
  zig_init();
  uint64_t b = ng_rng_u64(r);
  double z;
  if (zig_fast(b, &z)) return z;
  return zig_slow(b, draw_from_stream, r);
}

/* The words of a normal fill, produced in batches. It never produces a word that the single draws would not
 * consume: `need` is a lower bound on the words still to be drawn (two for each normal not yet finished). */
typedef struct {
  ng_rng *r;
  size_t pos, len, need;
  uint32_t w[FILL_WORDS];
} batch;

/* Produces the next batch once the last is used up; batches have even lengths and are consumed two words at a
 * time, so none ends in the middle of a u64. */
static void batch_refill(batch *s) {
  s->len = s->need < FILL_WORDS ? s->need : FILL_WORDS;
  s->pos = 0;
  stream_words(s->r, s->w, s->len);
}

static uint64_t draw_from_batch(void *src) {
  batch *s = src;
  if (s->pos == s->len) batch_refill(s);
  uint64_t b = (uint64_t)s->w[s->pos] << 32 | s->w[s->pos + 1];
  s->pos += 2;
  return b;
}

void ng_rng_normal_fill(ng_rng *r, double *out, size_t count) {
  zig_init();
  batch s; /* not an initializer, which would clear the 4 KiB of words too */
  s.r = r;
  s.pos = s.len = 0;
  size_t k = 0;
  while (k < count) {
    s.need = 2 * (count - k);
    if (s.pos == s.len) batch_refill(&s);
    /* the fast path over what the batch holds, with no bookkeeping per normal */
    size_t m = (s.len - s.pos) / 2, j;
    if (m > count - k) m = count - k;
    j = zig_run(s.w + s.pos, m, out + k);
    k += j;
    s.pos += 2 * j;
    if (j < m) { /* a miss: finish it on the slow path, which may draw more */
      s.need = 2 * (count - k);
      uint64_t b = (uint64_t)s.w[s.pos] << 32 | s.w[s.pos + 1];
      s.pos += 2;
      out[k++] = zig_slow(b, draw_from_batch, &s);
    }
  }
}

/* ---- state ---- */

void ng_rng_state_save(const ng_rng *r, int64_t state[NG_RNG_STATE_LEN]) {
  uint64_t seed = (uint64_t)r->key[1] << 32 | r->key[0];
  /* two's complement without relying on the implementation-defined conversion of a large uint64_t */
  state[0] = seed <= INT64_MAX ? (int64_t)seed : -(int64_t)(~seed) - 1;
  state[1] = r->ctr[3];
  state[2] = r->ctr[2];
  state[3] = r->ctr[1];
  state[4] = r->ctr[0];
  state[5] = r->used;
}

int ng_rng_state_load(ng_rng *r, const int64_t state[NG_RNG_STATE_LEN]) {
  static const char *const field[NG_RNG_STATE_LEN] = {"seed",  "purpose", "generation",
                                                      "index", "block",   "used"};
  if (r == NULL || state == NULL)
    return ng_error(NG_EINVAL, "rng state: NULL %s", r == NULL ? "stream" : "state");
  for (int j = 1; j < NG_RNG_STATE_LEN; j++) {
    int64_t max = j == 5 ? 4 : (int64_t)UINT32_MAX;
    if (state[j] < 0 || state[j] > max)
      return ng_error(NG_EINVAL, "rng state: %s must be in 0..%lld, found %lld", field[j], (long long)max,
                      (long long)state[j]);
  }
  uint64_t seed = (uint64_t)state[0]; /* conversion to unsigned is defined: modulo 2^64 */
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  r->ctr[0] = (uint32_t)state[4];
  r->ctr[1] = (uint32_t)state[3];
  r->ctr[2] = (uint32_t)state[2];
  r->ctr[3] = (uint32_t)state[1];
  philox_block(r, r->ctr[0], r->buf); /* derived, so never trusted from outside */
  r->used = (uint32_t)state[5];
  return NG_OK;
}
