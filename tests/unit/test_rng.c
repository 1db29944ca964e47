/* Unit tests of the random streams (src/rng/rng.c): Philox4x32-10 against Random123's published known-answer
 * vectors, the naming of streams, checkpointing, fills against single draws, and the distributions.
 *
 * The statistical tests use fixed seeds, so they are deterministic; their bounds are ~5 standard errors (or a
 * 0.1% / 1% critical value), so that a real defect of a few standard errors' size fails and a correct
 * generator with another seed would still pass. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <Random123/philox.h>

#include "nograd/error.h"
#include "nograd/rng.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* The int64_t with the bits of u, as ng_rng_state_save stores a seed. */
static int64_t bits_as_int64(uint64_t u) {
  int64_t i;
  memcpy(&i, &u, sizeof i);
  return i;
}

/* Random123's kat_vectors for philox4x32 with 10 rounds: counter, key, expected output. */
static const struct {
  uint32_t ctr[4], key[2], out[4];
} kat[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

/* The state of the stream whose block `ctr[0]` is Philox(ctr, key): seed = key[1]:key[0], (block, index,
 * generation, purpose) = ctr. */
static void state_of_counter(const uint32_t ctr[4], const uint32_t key[2], int64_t state[NG_RNG_STATE_LEN]) {
  state[0] = bits_as_int64((uint64_t)key[1] << 32 | key[0]);
  state[1] = ctr[3];
  state[2] = ctr[2];
  state[3] = ctr[1];
  state[4] = ctr[0];
  state[5] = 0;
}

static philox4x32_ctr_t philox_ref(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                   uint32_t k1) {
  philox4x32_ctr_t c = {{c0, c1, c2, c3}};
  philox4x32_key_t k = {{k0, k1}};
  return philox4x32_R(10, c, k);
}

/* The installed Random123 and our streams both give the published answers. */
static void test_philox_known_answers(void **unused) {
  (void)unused;
  for (size_t t = 0; t < COUNT_OF(kat); t++) {
    const uint32_t *c = kat[t].ctr, *k = kat[t].key;
    philox4x32_ctr_t o = philox_ref(c[0], c[1], c[2], c[3], k[0], k[1]);
    for (int j = 0; j < 4; j++)
      assert_int_equal(o.v[j], kat[t].out[j]);

    int64_t state[NG_RNG_STATE_LEN];
    state_of_counter(c, k, state);
    ng_rng r;
    assert_int_equal(ng_rng_state_load(&r, state), NG_OK);
    for (int j = 0; j < 4; j++)
      assert_int_equal(ng_rng_u32(&r), kat[t].out[j]);
  }
  /* ng_rng_init names the same counter: the zero vector is stream (0, 0, 0, 0) at block 0 */
  ng_rng r;
  ng_rng_init(&r, 0, 0, 0, 0);
  for (int j = 0; j < 4; j++)
    assert_int_equal(ng_rng_u32(&r), kat[0].out[j]);
  /* the seed's low word is key[0] and the counter is (block, index, generation, purpose) */
  ng_rng_init(&r, 0x299f31d0a4093822u, 0x03707344, 0x13198a2e, 0x85a308d3);
  philox4x32_ctr_t o = philox_ref(0, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0);
  for (int j = 0; j < 4; j++)
    assert_int_equal(ng_rng_u32(&r), o.v[j]);
}

/* Words 0..4n of a stream are blocks 0..n of Random123, both single and through the batched fills; and the
 * block counter wraps to 0 after 2^32 - 1. */
static void test_words_are_philox_blocks(void **unused) {
  (void)unused;
  const uint32_t seed_lo = 0x01234567, seed_hi = 0x89abcdef, purpose = 5, gen = 17, index = 1234;
  ng_rng r, f;
  ng_rng_init(&r, (uint64_t)seed_hi << 32 | seed_lo, purpose, gen, index);
  f = r;
  enum { BLOCKS = 300, UNIFORMS = 2 * BLOCKS }; /* two uniforms per block */
  static double u[UNIFORMS];
  ng_rng_uniform_fill(&f, u, UNIFORMS);
  for (size_t b = 0; b < BLOCKS; b++) {
    philox4x32_ctr_t o = philox_ref((uint32_t)b, index, gen, purpose, seed_lo, seed_hi);
    for (int j = 0; j < 4; j++)
      assert_int_equal(ng_rng_u32(&r), o.v[j]);
    for (size_t j = 0; j < 2; j++) {
      uint64_t w = (uint64_t)o.v[2 * j] << 32 | o.v[2 * j + 1];
      assert_true(u[2 * b + j] == ((double)(w >> 11) + 0.5) * 0x1p-53);
    }
  }

  int64_t state[NG_RNG_STATE_LEN] = {7, 1, 2, 3, 0xffffffff, 4};
  assert_int_equal(ng_rng_state_load(&r, state), NG_OK);
  philox4x32_ctr_t o = philox_ref(0, 3, 2, 1, 7, 0);
  for (int j = 0; j < 4; j++)
    assert_int_equal(ng_rng_u32(&r), o.v[j]);
  ng_rng_state_save(&r, state);
  assert_int_equal(state[4], 0);
}

/* ng_rng_u64 is two consecutive words, the first in the high half, also across a block boundary. */
static void test_u64_word_order(void **unused) {
  (void)unused;
  ng_rng a, b;
  ng_rng_init(&a, 99, NG_RNG_SAMPLE, 1, 2);
  for (int skip = 0; skip < 4; skip++) {
    b = a;
    for (int j = 0; j < 5; j++) {
      uint64_t hi = ng_rng_u32(&b);
      uint64_t lo = ng_rng_u32(&b);
      assert_int_equal(ng_rng_u64(&a), hi << 32 | lo);
    }
    ng_rng_u32(&a); /* shift the alignment by one word */
  }
}

static void draw_u64s(uint64_t seed, uint32_t purpose, uint32_t gen, uint32_t index, uint64_t *out, int n) {
  ng_rng r;
  ng_rng_init(&r, seed, purpose, gen, index);
  for (int j = 0; j < n; j++)
    out[j] = ng_rng_u64(&r);
}

/* Same name, same numbers; changing any one of seed, purpose, generation, index changes every number. */
static void test_stream_naming(void **unused) {
  (void)unused;
  enum { N = 64 };
  uint64_t base[N], again[N], other[N];
  draw_u64s(2024, NG_RNG_SAMPLE, 3, 7, base, N);
  draw_u64s(2024, NG_RNG_SAMPLE, 3, 7, again, N);
  assert_memory_equal(base, again, sizeof base);

  const struct {
    uint64_t seed;
    uint32_t purpose, gen, index;
  } variant[] = {
      {2025, NG_RNG_SAMPLE, 3, 7},   {2024 + (1ull << 32), NG_RNG_SAMPLE, 3, 7},
      {2024, NG_RNG_ROTATION, 3, 7}, {2024, NG_RNG_SAMPLE, 4, 7},
      {2024, NG_RNG_SAMPLE, 3, 8},   {2024, NG_RNG_SAMPLE, 7, 3}, /* index and generation swapped */
  };
  for (size_t v = 0; v < COUNT_OF(variant); v++) {
    draw_u64s(variant[v].seed, variant[v].purpose, variant[v].gen, variant[v].index, other, N);
    int same = 0;
    for (int j = 0; j < N; j++)
      same += other[j] == base[j];
    assert_int_equal(same, 0);
  }
}

/* Save in the middle of a block, load into another stream, continue: the same numbers as without stopping. */
static void test_save_load_continues(void **unused) {
  (void)unused;
  ng_rng r;
  uint64_t seed = 0xfedcba9876543210u; /* above INT64_MAX: stored as a negative int64 */
  ng_rng_init(&r, seed, NG_RNG_NOISE, 11, 12);
  int64_t state[NG_RNG_STATE_LEN];
  ng_rng_state_save(&r, state);
  const int64_t fresh[NG_RNG_STATE_LEN] = {bits_as_int64(seed), NG_RNG_NOISE, 11, 12, 0, 0};
  assert_memory_equal(state, fresh, sizeof state);

  for (int j = 0; j < 7; j++)
    ng_rng_u32(&r);
  (void)ng_rng_normal(&r);
  ng_rng_state_save(&r, state);

  enum { N = 50 };
  double expect[N], got[N];
  for (int j = 0; j < N; j++)
    expect[j] = ng_rng_normal(&r);
  uint32_t expect_word = ng_rng_u32(&r);

  ng_rng s;
  ng_rng_init(&s, 1, 1, 1, 1);
  assert_int_equal(ng_rng_state_load(&s, state), NG_OK);
  int64_t again[NG_RNG_STATE_LEN];
  ng_rng_state_save(&s, again);
  assert_memory_equal(state, again, sizeof state);
  for (int j = 0; j < N; j++)
    got[j] = ng_rng_normal(&s);
  assert_memory_equal(expect, got, sizeof got);
  assert_int_equal(ng_rng_u32(&s), expect_word);
}

/* A state that no stream can have is refused with a message naming the field, and the stream is untouched. */
static void test_load_rejects_bad_state(void **unused) {
  (void)unused;
  const struct {
    int field;
    int64_t value;
    const char *message;
  } bad[] = {
      {5, 5, "used must be in 0..4, found 5"},
      {5, -1, "used must be in 0..4, found -1"},
      {1, -1, "purpose must be in 0..4294967295, found -1"},
      {2, 4294967296, "generation must be in 0..4294967295, found 4294967296"},
      {3, INT64_MIN, "index must be in 0..4294967295, found -9223372036854775808"},
      {4, 1ll << 40, "block must be in 0..4294967295, found 1099511627776"},
  };
  ng_rng r, before;
  ng_rng_init(&r, 5, NG_RNG_SPSA, 6, 7);
  ng_rng_u32(&r);
  before = r;
  for (size_t t = 0; t < COUNT_OF(bad); t++) {
    int64_t state[NG_RNG_STATE_LEN];
    ng_rng_state_save(&r, state);
    state[bad[t].field] = bad[t].value;
    ng_error_clear();
    assert_int_equal(ng_rng_state_load(&r, state), NG_EINVAL);
    assert_non_null(strstr(ng_errmsg(), bad[t].message));
    assert_memory_equal(&r, &before, sizeof r);
  }
  assert_int_equal(ng_rng_state_load(&r, NULL), NG_EINVAL);

  /* the extremes are valid: any seed, used = 4 (the block is spent: the next word is the next block's) */
  int64_t edge[NG_RNG_STATE_LEN] = {INT64_MIN, 0xffffffff, 0xffffffff, 0xffffffff, 41, 4};
  assert_int_equal(ng_rng_state_load(&r, edge), NG_OK);
  philox4x32_ctr_t o = philox_ref(42, 0xffffffff, 0xffffffff, 0xffffffff, 0, 0x80000000);
  assert_int_equal(ng_rng_u32(&r), o.v[0]);
}

typedef void (*fill_fn)(ng_rng *, double *, size_t);
typedef double (*single_fn)(ng_rng *);

/* Fill and single draws from the same position give the same bits, leave the same state, and go on alike. */
static void check_fill(fill_fn fill, single_fn single, size_t count, int skip) {
  ng_rng a, b;
  ng_rng_init(&a, 31337, NG_RNG_SAMPLE, 9, (uint32_t)count);
  for (int j = 0; j < skip; j++)
    ng_rng_u32(&a);
  b = a;
  double *filled = malloc((count + 1) * sizeof *filled), *singles = malloc((count + 1) * sizeof *singles);
  assert_non_null(filled);
  assert_non_null(singles);
  fill(&a, filled, count);
  for (size_t k = 0; k < count; k++)
    singles[k] = single(&b);
  if (count > 0) assert_memory_equal(filled, singles, count * sizeof *filled);
  int64_t sa[NG_RNG_STATE_LEN], sb[NG_RNG_STATE_LEN];
  ng_rng_state_save(&a, sa);
  ng_rng_state_save(&b, sb);
  assert_memory_equal(sa, sb, sizeof sa);
  assert_int_equal(ng_rng_u32(&a), ng_rng_u32(&b));
  free(filled);
  free(singles);
}

static void test_fill_equals_single_draws(void **unused) {
  (void)unused;
  const size_t counts[] = {0, 1, 3, 4, 5, 1000};
  for (size_t c = 0; c < COUNT_OF(counts); c++) {
    for (int skip = 0; skip <= 4; skip++) {
      check_fill(ng_rng_normal_fill, ng_rng_normal, counts[c], skip);
      check_fill(ng_rng_uniform_fill, ng_rng_uniform, counts[c], skip);
      check_fill(ng_rng_rademacher_fill, ng_rng_rademacher, counts[c], skip);
    }
  }
  /* long enough for every slow path (about 50 tail draws and 3000 wedges) and many batches */
  check_fill(ng_rng_normal_fill, ng_rng_normal, 200003, 1);
  check_fill(ng_rng_uniform_fill, ng_rng_uniform, 100001, 3);
  check_fill(ng_rng_rademacher_fill, ng_rng_rademacher, 100001, 2);
}

/* The uniform is the documented function of one u64, lies in (0,1), and has the moments of U(0,1). */
static void test_uniform(void **unused) {
  (void)unused;
  ng_rng r, copy;
  ng_rng_init(&r, 4, NG_RNG_USER, 0, 0);
  copy = r;
  for (int j = 0; j < 1000; j++) {
    double u = ng_rng_uniform(&r);
    assert_true(u == ((double)(ng_rng_u64(&copy) >> 11) + 0.5) * 0x1p-53);
  }
  enum { N = 1000000 };
  double *u = malloc(N * sizeof *u);
  assert_non_null(u);
  ng_rng_uniform_fill(&r, u, N);
  double sum = 0, sum2 = 0, lo = 1, hi = 0;
  for (int k = 0; k < N; k++) {
    sum += u[k];
    lo = fmin(lo, u[k]);
    hi = fmax(hi, u[k]);
  }
  double mean = sum / N;
  for (int k = 0; k < N; k++)
    sum2 += (u[k] - mean) * (u[k] - mean);
  double var = sum2 / (N - 1);
  assert_true(lo > 0.0 && hi < 1.0);
  assert_true(lo < 1e-5 && hi > 1 - 1e-5);
  assert_true(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / N));
  assert_true(fabs(var - 1.0 / 12) < 5 * sqrt((1.0 / 80 - 1.0 / 144) / N));
  free(u);
}

static double normal_cdf(double x) {
  return 0.5 * erfc(-x / sqrt(2.0));
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Mean, variance, skewness and excess kurtosis of 10^6 normals within 5 standard errors of 0, 1, 0, 0. */
static void test_normal_moments(void **unused) {
  (void)unused;
  enum { N = 1000000 };
  double *z = malloc(N * sizeof *z);
  assert_non_null(z);
  ng_rng r;
  ng_rng_init(&r, 1, NG_RNG_SAMPLE, 0, 0);
  ng_rng_normal_fill(&r, z, N);
  double sum = 0;
  for (int k = 0; k < N; k++)
    sum += z[k];
  double mean = sum / N, m2 = 0, m3 = 0, m4 = 0;
  for (int k = 0; k < N; k++) {
    double d = z[k] - mean, d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
  }
  m2 /= N;
  m3 /= N;
  m4 /= N;
  double skew = m3 / pow(m2, 1.5), kurt = m4 / (m2 * m2) - 3;
  print_message("normal moments: mean %.5f var %.5f skew %.5f exkurt %.5f\n", mean, m2, skew, kurt);
  assert_true(fabs(mean) < 5 * sqrt(1.0 / N));
  assert_true(fabs(m2 - 1) < 5 * sqrt(2.0 / N));
  assert_true(fabs(skew) < 5 * sqrt(6.0 / N));
  assert_true(fabs(kurt) < 5 * sqrt(24.0 / N));
  free(z);
}

/* Kolmogorov-Smirnov over 10^5 normals below the 1% critical value 1.628 / sqrt(n). */
static void test_normal_kolmogorov_smirnov(void **unused) {
  (void)unused;
  enum { N = 100000 };
  double *z = malloc(N * sizeof *z);
  assert_non_null(z);
  ng_rng r;
  ng_rng_init(&r, 2, NG_RNG_SAMPLE, 0, 0);
  ng_rng_normal_fill(&r, z, N);
  qsort(z, N, sizeof *z, compare_doubles);
  double d = 0;
  for (int k = 0; k < N; k++) {
    double p = normal_cdf(z[k]);
    d = fmax(d, fmax((k + 1.0) / N - p, p - (double)k / N));
  }
  print_message("normal KS: D = %.5f (1%% critical %.5f)\n", d, 1.628 / sqrt(N));
  assert_true(d < 1.628 / sqrt(N));
  free(z);
}

/* Tail frequencies of 10^6 normals within 5 standard errors: beyond 3 (wedges), beyond the ziggurat's base
 * edge r = 3.654 (tail method only) and beyond 4; and a chi-square over 82 cells of width 0.1 on [-4, 4],
 * which sees any layer or wedge drawn with the wrong weight. */
static void test_normal_tails_and_histogram(void **unused) {
  (void)unused;
  enum { N = 1000000, CELLS = 80 };
  double *z = malloc(N * sizeof *z);
  assert_non_null(z);
  ng_rng r;
  ng_rng_init(&r, 3, NG_RNG_SAMPLE, 0, 0);
  ng_rng_normal_fill(&r, z, N);
  const double edge[] = {3.0, 3.6541528853610088, 4.0};
  for (size_t e = 0; e < COUNT_OF(edge); e++) {
    int beyond = 0;
    for (int k = 0; k < N; k++)
      beyond += fabs(z[k]) > edge[e];
    double p = erfc(edge[e] / sqrt(2.0)), se = sqrt(p * (1 - p) / N);
    print_message("P(|z| > %.3f) = %.6f, expected %.6f\n", edge[e], (double)beyond / N, p);
    assert_true(fabs((double)beyond / N - p) < 5 * se);
  }
  int count[CELLS + 2] = {0};
  for (int k = 0; k < N; k++) {
    int c = z[k] < -4 ? 0 : z[k] >= 4 ? CELLS + 1 : 1 + (int)floor((z[k] + 4) * 10);
    count[c == CELLS + 1 && z[k] < 4 ? CELLS : c]++; /* (z + 4) * 10 may round up to 80 just below 4 */
  }
  double chi2 = 0;
  for (int c = 0; c < CELLS + 2; c++) {
    double lo = c == 0 ? -INFINITY : -4 + 0.1 * (c - 1), hi = c == CELLS + 1 ? INFINITY : -4 + 0.1 * c;
    double expect = N * (normal_cdf(hi) - normal_cdf(lo));
    chi2 += (count[c] - expect) * (count[c] - expect) / expect;
  }
  print_message("normal histogram: chi2 = %.1f on 81 degrees of freedom (0.1%% critical 126)\n", chi2);
  assert_true(chi2 < 126);
  free(z);
}

/* Rademacher signs: +1 for an even word, -1 for an odd one; balanced over 10^6 draws. */
static void test_rademacher(void **unused) {
  (void)unused;
  ng_rng r, copy;
  ng_rng_init(&r, 5, NG_RNG_SPSA, 0, 0);
  copy = r;
  for (int j = 0; j < 100; j++)
    assert_true(ng_rng_rademacher(&r) == ((ng_rng_u32(&copy) & 1) ? -1.0 : 1.0));
  enum { N = 1000000 };
  double *s = malloc(N * sizeof *s);
  assert_non_null(s);
  ng_rng_rademacher_fill(&r, s, N);
  double sum = 0;
  for (int k = 0; k < N; k++) {
    assert_true(s[k] == 1.0 || s[k] == -1.0);
    sum += s[k];
  }
  assert_true(fabs(sum) < 5 * sqrt(N));
  free(s);
}

/* ng_rng_below: exact for powers of two, in range, and uniform by chi-square, also where Lemire's method
 * rejects often (n just above 2^63). */
static void test_below(void **unused) {
  (void)unused;
  ng_rng r, copy;
  ng_rng_init(&r, 6, NG_RNG_SHUFFLE, 0, 0);
  copy = r;
  for (int j = 0; j < 100; j++)
    assert_int_equal(ng_rng_below(&r, 16), ng_rng_u64(&copy) >> 60);
  for (int j = 0; j < 10; j++)
    assert_int_equal(ng_rng_below(&r, 1), 0);

  enum { N = 700000, K = 7 };
  int count[K] = {0};
  for (int j = 0; j < N; j++)
    count[ng_rng_below(&r, K)]++;
  double chi2 = 0;
  const double expect = (double)N / K;
  for (int c = 0; c < K; c++)
    chi2 += (count[c] - expect) * (count[c] - expect) / expect;
  assert_true(chi2 < 22.46); /* 0.1% critical value, 6 degrees of freedom */

  const uint64_t n = (1ull << 63) + 1; /* 2^64 mod n = 2^63 - 1: almost half the draws are rejected */
  int third[3] = {0};
  for (int j = 0; j < 30000; j++) {
    uint64_t x = ng_rng_below(&r, n);
    assert_true(x < n);
    third[x < n / 3 ? 0 : x < n / 3 * 2 ? 1 : 2]++;
  }
  chi2 = 0;
  for (int c = 0; c < 3; c++)
    chi2 += (third[c] - 10000.0) * (third[c] - 10000.0) / 10000.0;
  assert_true(chi2 < 13.82); /* 0.1% critical value, 2 degrees of freedom */
  for (int j = 0; j < 1000; j++)
    assert_true(ng_rng_below(&r, UINT64_MAX) < UINT64_MAX);
}

static double seconds(void) {
  struct timespec t;
  timespec_get(&t, TIME_UTC);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Throughput, printed only: a CMA-ES generation of the benchmark draws 200,000 normals. */
static void test_throughput(void **unused) {
  (void)unused;
  enum { N = 200000, REPS = 20 };
  double *z = malloc(N * sizeof *z);
  assert_non_null(z);
  ng_rng r;
  ng_rng_init(&r, 7, NG_RNG_SAMPLE, 0, 0);
  ng_rng_normal_fill(&r, z, N); /* builds the tables, warms the caches */
  double t0 = seconds();
  for (int rep = 0; rep < REPS; rep++)
    ng_rng_normal_fill(&r, z, N);
  double t1 = seconds();
  for (int rep = 0; rep < REPS; rep++) {
    for (int k = 0; k < N; k++)
      z[k] = ng_rng_normal(&r);
  }
  double t2 = seconds();
  for (int rep = 0; rep < REPS; rep++)
    ng_rng_uniform_fill(&r, z, N);
  double t3 = seconds();
  print_message(
      "throughput: normal_fill %.2f ns/normal (%.3f ms per 200k), ng_rng_normal %.2f ns, "
      "uniform_fill %.2f ns\n",
      1e9 * (t1 - t0) / (REPS * (double)N), 1e3 * (t1 - t0) / REPS, 1e9 * (t2 - t1) / (REPS * (double)N),
      1e9 * (t3 - t2) / (REPS * (double)N));
  free(z);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_known_answers),
      cmocka_unit_test(test_words_are_philox_blocks),
      cmocka_unit_test(test_u64_word_order),
      cmocka_unit_test(test_stream_naming),
      cmocka_unit_test(test_save_load_continues),
      cmocka_unit_test(test_load_rejects_bad_state),
      cmocka_unit_test(test_fill_equals_single_draws),
      cmocka_unit_test(test_uniform),
      cmocka_unit_test(test_normal_moments),
      cmocka_unit_test(test_normal_kolmogorov_smirnov),
      cmocka_unit_test(test_normal_tails_and_histogram),
      cmocka_unit_test(test_rademacher),
      cmocka_unit_test(test_below),
      cmocka_unit_test(test_throughput),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
