/* Unit tests of the convolution and pooling kernels of native models: the forward convolution (the graph
 * executor's Conv, through a conv2d layer), the backward kernels (src/nn/conv.c, src/nn/pool.c).
 *
 * The convolution runs over a table of shapes (channels, outputs, kernel, stride, padding, batch, H != W)
 * against a naive six-loop reference in double; its gradients are checked against central differences of
 * L = sum(dy * y) computed with that reference. Pooling (ng_pool_forward, which the backward pass calls for
 * the argmax) is checked against naive references on inputs with many ties (small integers), including the
 * argmax indices and the backward passes. */
#define _POSIX_C_SOURCE 200809L
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

#include "nn/kernels.h"
#include "nograd/error.h"
#include "nograd/nn.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A fixed pseudo-random sequence in [-1, 1), so that every run sees the same data. */
static uint64_t lcg_state;
static float uniform(void) {
  lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((double)(lcg_state >> 40) / (double)(1ULL << 24) * 2.0 - 1.0);
}
static void fill(float *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    v[i] = uniform();
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  assert_non_null(p);
  return p;
}

typedef struct {
  size_t B, C, H, W, O, k, stride, pad;
} conv_shape;

/* y and the sum of absolute values of the terms of each output (the scale of its rounding error), in double.
 */
static void conv_ref(const conv_shape *s, const double *x, const double *w, const double *b, double *y,
                     double *yabs) {
  size_t Ho = ng_conv_out(s->H, s->k, s->stride, s->pad), Wo = ng_conv_out(s->W, s->k, s->stride, s->pad);
  for (size_t n = 0; n < s->B; n++) {
    for (size_t o = 0; o < s->O; o++) {
      for (size_t oh = 0; oh < Ho; oh++) {
        for (size_t ow = 0; ow < Wo; ow++) {
          double acc = b[o], acc_abs = fabs(b[o]);
          for (size_t c = 0; c < s->C; c++) {
            for (size_t i = 0; i < s->k; i++) {
              for (size_t j = 0; j < s->k; j++) {
                long ih = (long)(oh * s->stride + i) - (long)s->pad,
                     iw = (long)(ow * s->stride + j) - (long)s->pad;
                if (ih < 0 || iw < 0 || ih >= (long)s->H || iw >= (long)s->W) continue;
                double t = w[((o * s->C + c) * s->k + i) * s->k + j] *
                           x[((n * s->C + c) * s->H + (size_t)ih) * s->W + (size_t)iw];
                acc += t;
                acc_abs += fabs(t);
              }
            }
          }
          size_t at = ((n * s->O + o) * Ho + oh) * Wo + ow;
          y[at] = acc;
          if (yabs) yabs[at] = acc_abs;
        }
      }
    }
  }
}

static double *to_double(const float *v, size_t n) {
  double *d = xmalloc(n * sizeof *d);
  for (size_t i = 0; i < n; i++)
    d[i] = v[i];
  return d;
}

/* Every combination of these, on two input sizes with H != W. */
static const size_t tab_C[] = {1, 3}, tab_O[] = {1, 4}, tab_k[] = {1, 3, 5}, tab_stride[] = {1, 2},
                    tab_pad[] = {0, 1, 2}, tab_B[] = {1, 3};

static size_t shape_table(conv_shape *out, size_t H, size_t W) {
  size_t n = 0;
  for (size_t a = 0; a < COUNT_OF(tab_C); a++)
    for (size_t o = 0; o < COUNT_OF(tab_O); o++)
      for (size_t k = 0; k < COUNT_OF(tab_k); k++)
        for (size_t s = 0; s < COUNT_OF(tab_stride); s++)
          for (size_t p = 0; p < COUNT_OF(tab_pad); p++)
            for (size_t b = 0; b < COUNT_OF(tab_B); b++)
              out[n++] =
                  (conv_shape){tab_B[b], tab_C[a], H, W, tab_O[o], tab_k[k], tab_stride[s], tab_pad[p]};
  return n;
}
#define TABLE_LEN                                                                                   \
  (COUNT_OF(tab_C) * COUNT_OF(tab_O) * COUNT_OF(tab_k) * COUNT_OF(tab_stride) * COUNT_OF(tab_pad) * \
   COUNT_OF(tab_B))

static void test_conv_out(void **state) {
  (void)state;
  assert_int_equal(ng_conv_out(28, 5, 1, 0), 24);
  assert_int_equal(ng_conv_out(5, 5, 1, 0), 1);
  assert_int_equal(ng_conv_out(4, 5, 1, 0), 0); /* k > H + 2 pad */
  assert_int_equal(ng_conv_out(4, 5, 1, 1), 2);
  assert_int_equal(ng_conv_out(3, 7, 1, 2), 1);
  assert_int_equal(ng_conv_out(2, 7, 1, 2), 0);
  assert_int_equal(ng_conv_out(7, 3, 2, 1), 4);
  assert_int_equal(ng_conv_out(8, 3, 2, 1), 4);
  assert_int_equal(ng_conv_out(24, 2, 2, 0), 12);
  assert_int_equal(ng_conv_out(5, 2, 2, 0), 2); /* the last row is dropped */
  assert_int_equal(ng_conv_out(0, 1, 1, 0), 0);
  assert_int_equal(ng_conv_out(5, 3, 0, 0), 0); /* stride 0 is no convolution */
  assert_int_equal(ng_conv2d_col_size(256, 6, 12, 12, 5, 1, 0), 150 * 64);
  assert_int_equal(ng_conv2d_col_size(7, 2, 3, 3, 5, 1, 0), 0);
}

/* The forward pass is the graph executor's Conv, reached as a native model's conv2d layer: against the
 * reference, and the same bits from an evaluation and a training workspace. */
static void check_forward(const conv_shape *s) {
  size_t Ho = ng_conv_out(s->H, s->k, s->stride, s->pad), Wo = ng_conv_out(s->W, s->k, s->stride, s->pad);
  size_t nx = s->B * s->C * s->H * s->W, nw = s->O * s->C * s->k * s->k, ny = s->B * s->O * Ho * Wo;
  char spec[160];
  snprintf(spec, sizeof spec, "input %zu %zu %zu\nconv2d c %zu %zu stride=%zu padding=%zu\n", s->C, s->H,
           s->W, s->O, s->k, s->stride, s->pad);
  ng_model *m = NULL;
  assert_int_equal(ng_model_from_spec(spec, &m), NG_OK);
  assert_int_equal(ng_model_nparams(m), nw + s->O);
  float *x = xmalloc(nx * sizeof *x), *w = ng_model_params(m), *b = w + nw;
  fill(x, nx);
  fill(w, nw);
  fill(b, s->O);
  ng_nn_work *ev = NULL, *tr = NULL;
  const float *y, *y2;
  assert_int_equal(ng_nn_work_create(m, s->B, false, &ev), NG_OK);
  assert_int_equal(ng_nn_work_create(m, s->B, true, &tr), NG_OK);
  assert_int_equal(ng_nn_forward(m, w, ev, x, s->B, &y), NG_OK);
  double *xd = to_double(x, nx), *wd = to_double(w, nw), *bd = to_double(b, s->O);
  double *yr = xmalloc(ny * sizeof *yr), *ya = xmalloc(ny * sizeof *ya);
  conv_ref(s, xd, wd, bd, yr, ya);
  for (size_t i = 0; i < ny; i++) {
    if (fabs(y[i] - yr[i]) > 1e-5 * ya[i]) {
      fail_msg("forward B%zu C%zu %zux%zu O%zu k%zu s%zu p%zu: y[%zu] = %.9g, reference %.9g", s->B, s->C,
               s->H, s->W, s->O, s->k, s->stride, s->pad, i, y[i], yr[i]);
    }
  }
  assert_int_equal(ng_nn_forward(m, w, tr, x, s->B, &y2), NG_OK);
  assert_memory_equal(y, y2, ny * sizeof *y);
  free(ya), free(yr), free(bd), free(wd), free(xd), free(x);
  ng_nn_work_destroy(&tr);
  ng_nn_work_destroy(&ev);
  ng_model_destroy(&m);
}

static void test_conv_forward(void **state) {
  (void)state;
  conv_shape tab[2 * TABLE_LEN];
  size_t n = shape_table(tab, 7, 10);
  n += shape_table(tab + n, 6, 5);
  assert_int_equal(n, 2 * TABLE_LEN);
  lcg_state = 1;
  for (size_t i = 0; i < n; i++)
    check_forward(&tab[i]);
  /* LeNet's two layers, as the network calls them. */
  check_forward(&(conv_shape){4, 1, 28, 28, 6, 5, 1, 0});
  check_forward(&(conv_shape){4, 6, 12, 12, 16, 5, 1, 0});
}

/* L = sum(dy * y) of the double reference. */
static double loss_ref(const conv_shape *s, const double *x, const double *w, const double *b,
                       const double *dy, double *y, size_t ny) {
  conv_ref(s, x, w, b, y, NULL);
  double L = 0;
  for (size_t i = 0; i < ny; i++)
    L += dy[i] * y[i];
  return L;
}

/* The central difference of L along each element of v, against g; ||g - num||_inf <= 1e-3 ||num||_inf. */
static void check_gradient(const char *what, const conv_shape *s, double *v, size_t nv, const float *g,
                           const double *x, const double *w, const double *b, const double *dy, double *y,
                           size_t ny) {
  const double h = 1e-3;
  double worst = 0, scale = 0;
  size_t at = 0;
  for (size_t i = 0; i < nv; i++) {
    double v0 = v[i];
    v[i] = v0 + h;
    double Lp = loss_ref(s, x, w, b, dy, y, ny);
    v[i] = v0 - h;
    double Lm = loss_ref(s, x, w, b, dy, y, ny);
    v[i] = v0;
    double num = (Lp - Lm) / (2 * h);
    if (fabs(num) > scale) scale = fabs(num);
    if (fabs(g[i] - num) > worst) worst = fabs(g[i] - num), at = i;
  }
  if (worst > 1e-3 * scale) {
    fail_msg("%s of B%zu C%zu %zux%zu O%zu k%zu s%zu p%zu: error %.3g at %zu, scale %.3g", what, s->B, s->C,
             s->H, s->W, s->O, s->k, s->stride, s->pad, worst, at, scale);
  }
}

static void check_backward(const conv_shape *s) {
  size_t Ho = ng_conv_out(s->H, s->k, s->stride, s->pad), Wo = ng_conv_out(s->W, s->k, s->stride, s->pad);
  size_t nx = s->B * s->C * s->H * s->W, nw = s->O * s->C * s->k * s->k, ny = s->B * s->O * Ho * Wo;
  size_t ncol = ng_conv2d_col_size(s->B, s->C, s->H, s->W, s->k, s->stride, s->pad);
  float *x = xmalloc(nx * sizeof *x), *w = xmalloc(nw * sizeof *w), *dy = xmalloc(ny * sizeof *dy);
  float *dx = xmalloc(nx * sizeof *dx), *dw = xmalloc(nw * sizeof *dw), *db = xmalloc(s->O * sizeof *db);
  float *dw0 = xmalloc(nw * sizeof *dw), *db0 = xmalloc(s->O * sizeof *db),
        *col = xmalloc(ncol * sizeof *col);
  fill(x, nx);
  fill(w, nw);
  fill(dy, ny);
  fill(dx, nx); /* overwritten */
  fill(dw0, nw);
  fill(db0, s->O);
  fill(col, ncol);
  memcpy(dw, dw0, nw * sizeof *dw);
  memcpy(db, db0, s->O * sizeof *db);
  ng_conv2d_backward(x, s->B, s->C, s->H, s->W, w, s->O, s->k, s->stride, s->pad, dy, dx, dw, db, col);
  for (size_t i = 0; i < nw; i++)
    dw[i] -= dw0[i]; /* the kernel adds to what was there */
  for (size_t i = 0; i < s->O; i++)
    db[i] -= db0[i];

  double *xd = to_double(x, nx), *wd = to_double(w, nw), *dyd = to_double(dy, ny),
         *yd = xmalloc(ny * sizeof *yd);
  double *bd = xmalloc(s->O * sizeof *bd);
  for (size_t i = 0; i < s->O; i++)
    bd[i] = 0.25 * (double)i;
  check_gradient("dx", s, xd, nx, dx, xd, wd, bd, dyd, yd, ny);
  check_gradient("dw", s, wd, nw, dw, xd, wd, bd, dyd, yd, ny);
  check_gradient("db", s, bd, s->O, db, xd, wd, bd, dyd, yd, ny);

  /* Again, without dx and with other garbage in the scratch: the same bits for dw and db. */
  float *dw2 = xmalloc(nw * sizeof *dw), *db2 = xmalloc(s->O * sizeof *db);
  memcpy(dw2, dw0, nw * sizeof *dw);
  memcpy(db2, db0, s->O * sizeof *db);
  fill(col, ncol);
  ng_conv2d_backward(x, s->B, s->C, s->H, s->W, w, s->O, s->k, s->stride, s->pad, dy, NULL, dw2, db2, col);
  for (size_t i = 0; i < nw; i++)
    dw2[i] -= dw0[i];
  for (size_t i = 0; i < s->O; i++)
    db2[i] -= db0[i];
  assert_memory_equal(dw, dw2, nw * sizeof *dw);
  assert_memory_equal(db, db2, s->O * sizeof *db);
  free(db2), free(dw2);
  free(bd), free(yd), free(dyd), free(wd), free(xd);
  free(col), free(db0), free(dw0), free(db), free(dw), free(dx), free(dy), free(w), free(x);
}

static void test_conv_backward(void **state) {
  (void)state;
  conv_shape tab[TABLE_LEN];
  size_t n = shape_table(tab, 5, 7);
  lcg_state = 2;
  for (size_t i = 0; i < n; i++)
    check_backward(&tab[i]);
}

/* Naive pooling in double; the first maximum in row-then-column order wins. */
static void pool_ref(ng_pool_kind kind, const float *x, size_t B, size_t C, size_t H, size_t W, size_t k,
                     size_t stride, double *y, int32_t *argmax) {
  size_t Ho = ng_conv_out(H, k, stride, 0), Wo = ng_conv_out(W, k, stride, 0);
  for (size_t pl = 0; pl < B * C; pl++) {
    for (size_t oh = 0; oh < Ho; oh++) {
      for (size_t ow = 0; ow < Wo; ow++) {
        double best = -INFINITY, sum = 0;
        int32_t at = -1;
        for (size_t i = 0; i < k; i++) {
          for (size_t j = 0; j < k; j++) {
            size_t idx = (oh * stride + i) * W + ow * stride + j;
            double v = x[pl * H * W + idx];
            sum += v;
            if (at < 0 || v > best) best = v, at = (int32_t)idx;
          }
        }
        y[pl * Ho * Wo + oh * Wo + ow] = kind == NG_POOL_MAX ? best : sum / (double)(k * k);
        argmax[pl * Ho * Wo + oh * Wo + ow] = at;
      }
    }
  }
}

static void test_pool(void **state) {
  (void)state;
  static const struct {
    size_t B, C, H, W, k, stride;
  } tab[] = {
      {2, 3, 8, 6, 2, 2},                       /* the usual case */
      {1, 2, 7, 9, 2, 2},                       /* odd sizes: the last row and column are dropped */
      {2, 1, 7, 6, 3, 2},                       /* overlapping windows */
      {1, 2, 5, 8, 3, 1},   {2, 2, 9, 7, 2, 3}, /* gaps between windows */
      {1, 1, 4, 4, 4, 4},                       /* one window */
      {3, 6, 24, 24, 2, 2},
  };
  lcg_state = 3;
  for (size_t t = 0; t < COUNT_OF(tab); t++) {
    size_t B = tab[t].B, C = tab[t].C, H = tab[t].H, W = tab[t].W, k = tab[t].k, s = tab[t].stride;
    size_t Ho = ng_conv_out(H, k, s, 0), Wo = ng_conv_out(W, k, s, 0), nx = B * C * H * W,
           ny = B * C * Ho * Wo;
    float *x = xmalloc(nx * sizeof *x), *y = xmalloc(ny * sizeof *y), *y2 = xmalloc(ny * sizeof *y);
    float *dy = xmalloc(ny * sizeof *dy), *dx = xmalloc(nx * sizeof *dx);
    double *yr = xmalloc(ny * sizeof *yr), *dxr = xmalloc(nx * sizeof *dxr);
    int32_t *am = xmalloc(ny * sizeof *am), *amr = xmalloc(ny * sizeof *amr);
    /* Values in {-1, 0, 1, 2}: most windows hold ties, some are all equal. */
    for (size_t i = 0; i < nx; i++)
      x[i] = (float)floor(2.0 * uniform() + 0.5);
    fill(dy, ny);
    for (int kind = NG_POOL_MAX; kind <= NG_POOL_AVG; kind++) {
      fill(y, ny);
      for (size_t i = 0; i < ny; i++)
        am[i] = -7;
      ng_pool_forward((ng_pool_kind)kind, x, B, C, H, W, k, s, y, kind == NG_POOL_MAX ? am : NULL);
      pool_ref((ng_pool_kind)kind, x, B, C, H, W, k, s, yr, amr);
      for (size_t i = 0; i < ny; i++) {
        if (fabs(y[i] - yr[i]) > 1e-6 * (1 + fabs(yr[i])))
          fail_msg("pool %d case %zu: y[%zu] = %g, reference %g", kind, t, i, y[i], yr[i]);
      }
      if (kind == NG_POOL_MAX) {
        assert_memory_equal(am, amr, ny * sizeof *am);
        ng_pool_forward(NG_POOL_MAX, x, B, C, H, W, k, s, y2, NULL); /* evaluation: no argmax */
        assert_memory_equal(y, y2, ny * sizeof *y);
      }
      /* Backward against the naive routing and spreading. */
      fill(dx, nx);
      ng_pool_backward((ng_pool_kind)kind, dy, B, C, H, W, k, s, am, dx);
      memset(dxr, 0, nx * sizeof *dxr);
      for (size_t pl = 0; pl < B * C; pl++) {
        for (size_t oh = 0; oh < Ho; oh++) {
          for (size_t ow = 0; ow < Wo; ow++) {
            size_t o = pl * Ho * Wo + oh * Wo + ow;
            if (kind == NG_POOL_MAX) {
              dxr[pl * H * W + (size_t)amr[o]] += dy[o];
              continue;
            }
            for (size_t i = 0; i < k; i++)
              for (size_t j = 0; j < k; j++)
                dxr[pl * H * W + (oh * s + i) * W + ow * s + j] += dy[o] / (double)(k * k);
          }
        }
      }
      double adj_l = 0, adj_r = 0; /* backward is the adjoint of forward for average pooling */
      for (size_t i = 0; i < nx; i++) {
        if (fabs(dx[i] - dxr[i]) > 1e-6 * (1 + fabs(dxr[i])))
          fail_msg("pool %d case %zu: dx[%zu] = %g, reference %g", kind, t, i, dx[i], dxr[i]);
        adj_l += (double)dx[i] * x[i];
      }
      for (size_t i = 0; i < ny; i++)
        adj_r += (double)dy[i] * y[i];
      if (kind == NG_POOL_AVG) assert_true(fabs(adj_l - adj_r) <= 1e-5 * (1 + fabs(adj_r)));
    }
    free(amr), free(am), free(dxr), free(yr), free(dx), free(dy), free(y2), free(y), free(x);
  }
}

/* A window of equal values routes its gradient to the first element; a NaN does not win after a number. */
static void test_pool_ties(void **state) {
  (void)state;
  const float x[8] = {3, 3, 3, 3, 1, 5, 5, 2}; /* 1 example, 1 channel, 2 x 4, windows 2 x 2 */
  float y[2], dx[8];
  int32_t am[2];
  ng_pool_forward(NG_POOL_MAX, x, 1, 1, 2, 4, 2, 2, y, am);
  assert_true(y[0] == 5.0f && y[1] == 5.0f);
  assert_int_equal(am[0], 5); /* row 1, column 1 */
  assert_int_equal(am[1], 6); /* row 1, column 2: first of the two 5s in row order */
  const float ties[4] = {2, 2, 2, 2}, dy[1] = {1.5f};
  ng_pool_forward(NG_POOL_MAX, ties, 1, 1, 2, 2, 2, 2, y, am);
  assert_int_equal(am[0], 0);
  ng_pool_backward(NG_POOL_MAX, dy, 1, 1, 2, 2, 2, 2, am, dx);
  assert_true(dx[0] == 1.5f && dx[1] == 0.0f && dx[2] == 0.0f && dx[3] == 0.0f);
  ng_pool_backward(NG_POOL_AVG, dy, 1, 1, 2, 2, 2, 2, NULL, dx);
  for (int i = 0; i < 4; i++)
    assert_true(dx[i] == 0.375f);
  const float withnan[4] = {1, NAN, 4, 0};
  ng_pool_forward(NG_POOL_MAX, withnan, 1, 1, 2, 2, 2, 2, y, am);
  assert_true(y[0] == 4.0f);
  assert_int_equal(am[0], 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_out),      cmocka_unit_test(test_conv_forward),
      cmocka_unit_test(test_conv_backward), cmocka_unit_test(test_pool),
      cmocka_unit_test(test_pool_ties),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
