/* Elementwise ops: Add, Sub, Mul, Div, Pow with numpy broadcasting, and Relu, Sigmoid, Tanh, Sqrt, Erf, Clip,
 * HardSigmoid, HardSwish (MobileNetV3's), and Gelu for native graphs (ops/native.c).
 * On integer constants (shape arithmetic) Add, Sub, Mul and Div are folded when the graph is compiled, in
 * values linear in the batch (a product or quotient must keep them linear). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nograd/error.h"

typedef enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW } binop;

typedef struct {
  binop op;
  size_t rank;
  int64_t sa[NG__MAXD], sb[NG__MAXD]; /* strides of a and b over the output's dims (0: broadcast) */
  bool a_bcast[NG__MAXD], b_bcast[NG__MAXD];
} bin_attr;

static int fold_int(ng__gctx *cx, ng__gnode *n, binop op, const ng__gt *a, const ng__gt *b) {
  size_t ca = a->count, cb = b->count, cnt = ca > cb ? ca : cb;
  if (ca != cb && ca != 1 && cb != 1)
    return ng__op_error(cx, "integer operands of %zu and %zu values", ca, cb);
  ng__ldim *v = malloc((cnt ? cnt : 1) * sizeof *v);
  if (!v) return ng_error(NG_ENOMEM, "out of memory");
  for (size_t i = 0; i < cnt; i++) {
    ng__ldim x = a->ivals[ca == 1 ? 0 : i], y = b->ivals[cb == 1 ? 0 : i], r = {0, 0};
    bool ok = true;
    switch (op) {
      case B_ADD:
        ok = ng__ld_add(x, y, &r);
        break;
      case B_SUB:
        ok = ng__ld_sub(x, y, &r);
        break;
      case B_MUL:
        ok = ng__ld_mul(x, y, &r);
        break;
      case B_DIV: /* integer division of a shape by a constant */
        ok = y.a == 0 && y.c != 0 && !(y.c == -1 && (x.a == INT64_MIN || x.c == INT64_MIN)) &&
             x.a % y.c == 0 && (x.a == 0 || x.c % y.c == 0);
        if (ok) r = (ng__ldim){x.a / y.c, x.c / y.c};
        break;
      default:
        ok = false;
    }
    if (!ok) {
      free(v);
      return ng__op_error(cx,
                          "integer arithmetic on shapes that overflows or is not linear in the batch size");
    }
    v[i] = r;
  }
  const ng__gt *shape = ca >= cb ? a : b;
  ng__set_int(ng__out(cx, n, 0), shape->ndim, shape->dims, v, cnt);
  n->folded = true;
  return NG_OK;
}

static int binary_setup(ng__gctx *cx, ng__gnode *n, binop op) {
  static const char *const none[] = {NULL};
  NG_CALL(ng__attr_only(cx, none));
  const ng__gt *a = ng__in(cx, n, 0), *b = ng__in(cx, n, 1);
  if (!a || !b || n->nout != 1) return ng__op_error(cx, "expected two inputs and one output");
  if (!a->is_float && !b->is_float && op != B_POW) return fold_int(cx, n, op, a, b);
  if (!a->is_float || !b->is_float)
    return ng__op_error(cx, "mixes a float tensor with an integer one (%s, %s)", a->name, b->name);
  bin_attr *at = calloc(1, sizeof *at);
  if (!at) return ng_error(NG_ENOMEM, "out of memory");
  n->attr = at;
  at->op = op;
  size_t r = a->ndim > b->ndim ? a->ndim : b->ndim;
  ng__ldim d[NG__MAXD];
  at->rank = r;
  for (size_t k = 0; k < r; k++) {
    ng__ldim one = ng__ldc(1);
    ng__ldim da = k + a->ndim >= r ? a->dims[k + a->ndim - r] : one;
    ng__ldim db = k + b->ndim >= r ? b->dims[k + b->ndim - r] : one;
    bool a1 = da.a == 0 && da.c == 1, b1 = db.a == 0 && db.c == 1;
    if (da.a == db.a && da.c == db.c)
      d[k] = da;
    else if (a1)
      d[k] = db;
    else if (b1)
      d[k] = da;
    else
      return ng__op_error(cx, "cannot broadcast %s with %s at dimension %zu", a->name, b->name, k);
    at->a_bcast[k] = a1 && !(db.a == 0 && db.c == 1);
    at->b_bcast[k] = b1 && !(da.a == 0 && da.c == 1);
  }
  ng__set_float(ng__out(cx, n, 0), r, d);
  return NG_OK;
}

/* One row of the output: the loop is written per op and per stride pattern, so that the compiler
 * vectorises the common cases (same shape, a broadcast scalar or row). */
#define ROW(EXPR)                                     \
  do {                                                \
    if (ia == 1 && ib == 1)                           \
      for (int64_t j = 0; j < inner; j++) {           \
        float x = a[pa + j], z = b[pb + j];           \
        y[o + j] = EXPR;                              \
      }                                               \
    else if (ia == 1 && ib == 0)                      \
      for (int64_t j = 0; j < inner; j++) {           \
        float x = a[pa + j], z = b[pb];               \
        y[o + j] = EXPR;                              \
      }                                               \
    else                                              \
      for (int64_t j = 0; j < inner; j++) {           \
        float x = a[pa + j * ia], z = b[pb + j * ib]; \
        y[o + j] = EXPR;                              \
      }                                               \
  } while (0)

static void binary_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const bin_attr *at = n->attr;
  const ng__gt *to = &gr->t[n->out[0]];
  const float *a = r->ptr[n->in[0]], *b = r->ptr[n->in[1]];
  float *y = r->ptr[n->out[0]];
  size_t R = at->rank;
  int64_t d[NG__MAXD], sa[NG__MAXD], sb[NG__MAXD];
  ng__dims(to, r->B, d);
  int64_t ea = 1, eb = 1; /* strides, innermost first */
  const ng__gt *ta = &gr->t[n->in[0]], *tb = &gr->t[n->in[1]];
  for (size_t k = R; k-- > 0;) {
    bool ina = k + ta->ndim >= R, inb = k + tb->ndim >= R;
    sa[k] = ina && !at->a_bcast[k] ? ea : 0;
    sb[k] = inb && !at->b_bcast[k] ? eb : 0;
    if (ina) ea *= at->a_bcast[k] ? 1 : d[k];
    if (inb) eb *= at->b_bcast[k] ? 1 : d[k];
  }
  size_t total = ng__numel(to, r->B);
  if (total == 0) return;
  int64_t inner = R ? d[R - 1] : 1, ia = R ? sa[R - 1] : 0, ib = R ? sb[R - 1] : 0;
  int64_t idx[NG__MAXD] = {0};
  size_t pa = 0, pb = 0;
  for (size_t o = 0; o < total; o += (size_t)inner) {
    switch (at->op) {
      case B_ADD:
        ROW(x + z);
        break;
      case B_SUB:
        ROW(x - z);
        break;
      case B_MUL:
        ROW(x * z);
        break;
      case B_DIV:
        ROW(x / z);
        break;
      default:
        ROW(powf(x, z));
    }
    for (size_t k = R >= 2 ? R - 1 : 0; k-- > 0;) { /* next row: odometer over the outer dims */
      idx[k]++;
      pa += sa[k];
      pb += sb[k];
      if (idx[k] < d[k]) break;
      pa -= sa[k] * d[k];
      pb -= sb[k] * d[k];
      idx[k] = 0;
    }
  }
}

#define BINARY(NAME, OP)                                \
  static int setup_##NAME(ng__gctx *cx, ng__gnode *n) { \
    return binary_setup(cx, n, OP);                     \
  }                                                     \
  const ng__op ng__op_##NAME = {#NAME, setup_##NAME, binary_run};
BINARY(Add, B_ADD)
BINARY(Sub, B_SUB)
BINARY(Mul, B_MUL)
BINARY(Div, B_DIV)
BINARY(Pow, B_POW)

/* ---- Unary ---- */

typedef enum { U_RELU, U_SIGMOID, U_TANH, U_SQRT, U_ERF, U_CLIP, U_HARDSIGMOID, U_HARDSWISH, U_GELU } unop;

typedef struct {
  unop op;
  float lo, hi;
  float alpha, beta; /* HardSigmoid, HardSwish: max(0, min(1, alpha x + beta)) */
} un_attr;

static int unary_setup(ng__gctx *cx, ng__gnode *n, unop op) {
  static const char *const none[] = {NULL}, *const hard[] = {"alpha", "beta", NULL};
  NG_CALL(ng__attr_only(cx, op == U_HARDSIGMOID ? hard : none));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x || !x->is_float || n->nout != 1) return ng__op_error(cx, "expected one float input and one output");
  un_attr *at = calloc(1, sizeof *at);
  if (!at) return ng_error(NG_ENOMEM, "out of memory");
  n->attr = at;
  at->op = op;
  at->lo = -INFINITY;
  at->hi = INFINITY;
  /* HardSwish has no attributes: its alpha and beta are fixed at 1/6 and 1/2 (opset 14) */
  at->alpha = (float)(op == U_HARDSIGMOID ? ng__attr_float(cx, "alpha", 0.2) : 1.0 / 6.0);
  at->beta = (float)(op == U_HARDSIGMOID ? ng__attr_float(cx, "beta", 0.5) : 0.5);
  if (op == U_CLIP) {
    if (ng__in(cx, n, 1)) NG_CALL(ng__const_scalar(cx, n, 1, "min", &at->lo));
    if (ng__in(cx, n, 2)) NG_CALL(ng__const_scalar(cx, n, 2, "max", &at->hi));
  } else if (n->nin != 1) {
    return ng__op_error(cx, "expected one input");
  }
  ng__set_float(ng__out(cx, n, 0), x->ndim, x->dims);
  return NG_OK;
}

static void unary_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const un_attr *at = n->attr;
  const float *x = r->ptr[n->in[0]];
  float *y = r->ptr[n->out[0]];
  size_t N = ng__numel(&gr->t[n->out[0]], r->B);
  switch (at->op) {
    case U_RELU:
      for (size_t i = 0; i < N; i++)
        y[i] = x[i] > 0 ? x[i] : 0;
      break;
    case U_SIGMOID:
      for (size_t i = 0; i < N; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
      break;
    case U_TANH:
      for (size_t i = 0; i < N; i++)
        y[i] = tanhf(x[i]);
      break;
    case U_SQRT:
      for (size_t i = 0; i < N; i++)
        y[i] = sqrtf(x[i]);
      break;
    case U_ERF:
      for (size_t i = 0; i < N; i++)
        y[i] = erff(x[i]);
      break;
    case U_CLIP:
      for (size_t i = 0; i < N; i++)
        y[i] = x[i] < at->lo ? at->lo : x[i] > at->hi ? at->hi : x[i];
      break;
    case U_GELU: /* x/2 (1 + erf(x / sqrt 2)), the exact form */
      for (size_t i = 0; i < N; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752440f));
      break;
    case U_HARDSIGMOID:
    case U_HARDSWISH:
      for (size_t i = 0; i < N; i++) {
        float v = at->alpha * x[i] + at->beta;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        y[i] = at->op == U_HARDSWISH ? x[i] * v : v;
      }
      break;
  }
}

#define UNARY(NAME, OP)                                 \
  static int setup_##NAME(ng__gctx *cx, ng__gnode *n) { \
    return unary_setup(cx, n, OP);                      \
  }                                                     \
  const ng__op ng__op_##NAME = {#NAME, setup_##NAME, unary_run};
UNARY(Relu, U_RELU)
UNARY(Sigmoid, U_SIGMOID)
UNARY(Tanh, U_TANH)
UNARY(Sqrt, U_SQRT)
UNARY(Erf, U_ERF)
UNARY(Clip, U_CLIP)
UNARY(HardSigmoid, U_HARDSIGMOID)
UNARY(HardSwish, U_HARDSWISH)
UNARY(Gelu, U_GELU) /* not in ops.c's table: nograd's own domain (ops/native.c) */

void ng__clip_bounds(const ng__gnode *clip, float *lo, float *hi) {
  const un_attr *a = clip->attr;
  *lo = a->lo;
  *hi = a->hi;
}
