/* Gemm (transA, transB, alpha, beta, a bias C broadcast to the product) and MatMul (numpy semantics: 1-D
 * operands, batched and broadcast leading dimensions). A MatMul whose right operand has no batch dimensions
 * (a weight) runs as one sgemm over all the left operand's rows; otherwise one sgemm per matrix pair. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nograd/error.h"

typedef struct {
  bool ta, tb;
  float alpha, beta;
  int cmode; /* bias: 0 none, 1 scalar, 2 per column [N], 3 per row [M, 1], 4 full [M, N] */
  bool relu; /* a Relu fused into the bias pass (ng__gemm_fuse) */
} gemm_attr;

static bool ld_eq(ng__ldim x, ng__ldim y) {
  return x.a == y.a && x.c == y.c;
}

static bool ld_one(ng__ldim x) {
  return x.a == 0 && x.c == 1;
}

static int gemm_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *A = ng__in(cx, n, 0), *Bt = ng__in(cx, n, 1), *C = ng__in(cx, n, 2);
  if (!A || !Bt || !A->is_float || !Bt->is_float || A->ndim != 2 || Bt->ndim != 2 || n->nout != 1)
    return ng__op_error(cx, "expected two float matrices");
  gemm_attr *a = calloc(1, sizeof *a);
  if (!a) return ng_error(NG_ENOMEM, "out of memory");
  n->attr = a;
  a->ta = ng__attr_int(cx, "transA", 0) != 0;
  a->tb = ng__attr_int(cx, "transB", 0) != 0;
  a->alpha = (float)ng__attr_float(cx, "alpha", 1.0);
  a->beta = (float)ng__attr_float(cx, "beta", 1.0);
  ng__ldim M = A->dims[a->ta ? 1 : 0], K = A->dims[a->ta ? 0 : 1];
  ng__ldim K2 = Bt->dims[a->tb ? 1 : 0], N = Bt->dims[a->tb ? 0 : 1];
  if (!ld_eq(K, K2) || !ng__ld_const(K) || !ng__ld_const(N) || (a->ta && !ng__ld_const(M)))
    return ng__op_error(cx, "the inner dimensions of %s and %s differ", A->name, Bt->name);
  if (C) {
    if (!C->is_float) return ng__op_error(cx, "bias %s is not float", C->name);
    if (C->ndim == 0 || (C->ndim == 1 && ld_one(C->dims[0])) ||
        (C->ndim == 2 && ld_one(C->dims[0]) && ld_one(C->dims[1])))
      a->cmode = 1;
    else if ((C->ndim == 1 && ld_eq(C->dims[0], N)) ||
             (C->ndim == 2 && ld_one(C->dims[0]) && ld_eq(C->dims[1], N)))
      a->cmode = 2;
    else if (C->ndim == 2 && ld_eq(C->dims[0], M) && ld_one(C->dims[1]))
      a->cmode = 3;
    else if (C->ndim == 2 && ld_eq(C->dims[0], M) && ld_eq(C->dims[1], N))
      a->cmode = 4;
    else
      return ng__op_error(cx, "bias %s does not broadcast to the product", C->name);
  }
  ng__ldim od[2] = {M, N};
  ng__set_float(ng__out(cx, n, 0), 2, od);
  return NG_OK;
}

static void gemm_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const gemm_attr *a = n->attr;
  const ng__gt *A = &gr->t[n->in[0]], *Bt = &gr->t[n->in[1]];
  int64_t M = ng__ld(A->dims[a->ta ? 1 : 0], r->B), K = ng__ld(A->dims[a->ta ? 0 : 1], r->B);
  int64_t N = ng__ld(Bt->dims[a->tb ? 0 : 1], r->B);
  float *y = r->ptr[n->out[0]];
  cblas_sgemm(CblasRowMajor, a->ta ? CblasTrans : CblasNoTrans, a->tb ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, a->alpha, r->ptr[n->in[0]], a->ta ? (int)M : (int)K, r->ptr[n->in[1]],
              a->tb ? (int)K : (int)N, 0.0f, y, (int)N);
  const float *c = a->cmode && a->beta != 0 ? r->ptr[n->in[2]] : NULL;
  if (c && a->cmode == 2 && a->beta == 1) { /* a dense layer's bias, the common case: one vectorised pass */
    for (int64_t i = 0; i < M; i++) {
      float *yr = y + i * N;
      if (a->relu)
        for (int64_t j = 0; j < N; j++) {
          float v = yr[j] + c[j];
          yr[j] = v > 0 ? v : 0;
        }
      else
        for (int64_t j = 0; j < N; j++)
          yr[j] += c[j];
    }
    return;
  }
  if (c)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        float v = a->cmode == 1 ? c[0] : a->cmode == 2 ? c[j] : a->cmode == 3 ? c[i] : c[i * N + j];
        y[i * N + j] += a->beta * v;
      }
  if (a->relu)
    for (int64_t e = 0; e < M * N; e++)
      y[e] = y[e] > 0 ? y[e] : 0;
}

const ng__op ng__op_Gemm = {"Gemm", gemm_setup, gemm_run};

void ng__gemm_fuse(ng__graph *gr) {
  for (size_t i = 0; i < gr->nnodes; i++) {
    ng__gnode *g = &gr->nodes[i];
    if (g->op != &ng__op_Gemm || g->folded) continue;
    int q = ng__sole_reader(gr, g->out[0]);
    if (q < 0 || gr->nodes[q].op != &ng__op_Relu) continue;
    ((gemm_attr *)g->attr)->relu = true;
    gr->nodes[q].op = &ng__op_fused;
    gr->t[gr->nodes[q].out[0]].alias = g->out[0];
    gr->t[g->out[0]].partial = true;
  }
}

/* ---- MatMul ---- */

typedef struct {
  size_t ra, rb, r; /* ranks (after 1-D promotion) and the output's batch rank */
  bool a1, b1;      /* a 1-D operand was promoted */
  bool flat;        /* b has no batch: one sgemm over all rows of a */
} mm_attr;

static int mm_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const none[] = {NULL};
  NG_CALL(ng__attr_only(cx, none));
  const ng__gt *A = ng__in(cx, n, 0), *Bt = ng__in(cx, n, 1);
  if (!A || !Bt || !A->is_float || !Bt->is_float || A->ndim < 1 || Bt->ndim < 1 || n->nout != 1)
    return ng__op_error(cx, "expected two float tensors");
  mm_attr *a = calloc(1, sizeof *a);
  if (!a) return ng_error(NG_ENOMEM, "out of memory");
  n->attr = a;
  ng__ldim da[NG__MAXD + 1], db[NG__MAXD + 1];
  size_t ra = A->ndim, rb = Bt->ndim;
  memcpy(da, A->dims, ra * sizeof *da);
  memcpy(db, Bt->dims, rb * sizeof *db);
  if (ra == 1) {
    da[1] = da[0];
    da[0] = ng__ldc(1);
    ra = 2;
    a->a1 = true;
  }
  if (rb == 1) {
    db[1] = ng__ldc(1);
    rb = 2;
    a->b1 = true;
  }
  if (!ld_eq(da[ra - 1], db[rb - 2]) || !ng__ld_const(da[ra - 1]) || !ng__ld_const(db[rb - 1]))
    return ng__op_error(cx, "the inner dimensions of %s and %s differ", A->name, Bt->name);
  size_t r = (ra > rb ? ra : rb) - 2;
  ng__ldim od[NG__MAXD + 2];
  for (size_t k = 0; k < r; k++) {
    ng__ldim x = k + ra - 2 >= r ? da[k + ra - 2 - r] : ng__ldc(1);
    ng__ldim y = k + rb - 2 >= r ? db[k + rb - 2 - r] : ng__ldc(1);
    if (ld_eq(x, y) || ld_one(y))
      od[k] = x;
    else if (ld_one(x))
      od[k] = y;
    else
      return ng__op_error(cx, "cannot broadcast the batch dimensions of %s and %s", A->name, Bt->name);
  }
  a->ra = ra, a->rb = rb, a->r = r;
  a->flat = rb == 2;
  size_t on = r;
  if (!a->a1) od[on++] = da[ra - 2];
  if (!a->b1) od[on++] = db[rb - 1];
  if (on > NG__MAXD) return ng__op_error(cx, "the product has more than %d dimensions", NG__MAXD);
  ng__set_float(ng__out(cx, n, 0), on, od);
  return NG_OK;
}

#define TINY 32768 /* multiply-adds below which a product is computed here, not by sgemm */

/* c[M, N] = a[M, K] b[K, N], row by row, k outer: the inner loop over a row of b vectorises. */
static void small_product(const float *restrict a, const float *restrict b, float *restrict c, int64_t M,
                          int64_t N, int64_t K) {
  for (int64_t i = 0; i < M; i++) {
    float *ci = c + i * N;
    for (int64_t j = 0; j < N; j++)
      ci[j] = 0;
    for (int64_t k = 0; k < K; k++) {
      float v = a[i * K + k];
      const float *bk = b + k * N;
      for (int64_t j = 0; j < N; j++)
        ci[j] += v * bk[j];
    }
  }
}

static void mm_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const mm_attr *a = n->attr;
  const ng__gt *A = &gr->t[n->in[0]], *Bt = &gr->t[n->in[1]];
  int64_t da[NG__MAXD + 1], db[NG__MAXD + 1];
  ng__dims(A, r->B, da);
  ng__dims(Bt, r->B, db);
  if (a->a1) {
    da[1] = da[0];
    da[0] = 1;
  }
  if (a->b1) db[1] = 1;
  size_t ra = a->ra, rb = a->rb;
  int64_t M = da[ra - 2], K = da[ra - 1], N = db[rb - 1];
  const float *x = r->ptr[n->in[0]], *w = r->ptr[n->in[1]];
  float *y = r->ptr[n->out[0]];
  if (a->flat) { /* all rows of a at once */
    int64_t rows = 1;
    for (size_t k = 0; k + 1 < ra; k++)
      rows *= da[k];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)N, (int)K, 1.0f, x, (int)K, w,
                (int)N, 0.0f, y, (int)N);
    return;
  }
  /* one product per batch index, with broadcasting over the leading dimensions */
  size_t R = a->r;
  int64_t bd[NG__MAXD], sa[NG__MAXD], sb[NG__MAXD], total = 1;
  int64_t ea = M * K, eb = K * N;
  for (size_t k = R; k-- > 0;) {
    int64_t xa = k + ra - 2 >= R ? da[k + ra - 2 - R] : 1, xb = k + rb - 2 >= R ? db[k + rb - 2 - R] : 1;
    bd[k] = xa > xb ? xa : xb;
    sa[k] = xa == 1 ? 0 : ea;
    sb[k] = xb == 1 ? 0 : eb;
    ea *= xa;
    eb *= xb;
    total *= bd[k];
  }
  int64_t idx[NG__MAXD] = {0};
  for (int64_t i = 0; i < total; i++) {
    int64_t oa = 0, ob = 0;
    for (size_t k = 0; k < R; k++) {
      oa += idx[k] * sa[k];
      ob += idx[k] * sb[k];
    }
    if (M * N * K <= TINY) /* attention's per-head products: a call to sgemm costs more than the work */
      small_product(x + oa, w + ob, y + i * M * N, M, N, K);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, x + oa, (int)K,
                  w + ob, (int)N, 0.0f, y + i * M * N, (int)N);
    for (size_t k = R; k-- > 0;) {
      if (++idx[k] < bd[k]) break;
      idx[k] = 0;
    }
  }
}

const ng__op ng__op_MatMul = {"MatMul", mm_setup, mm_run};
