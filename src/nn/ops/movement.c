/* Data-movement ops: Concat, Gather, Slice (folded on integer constants, copies on floats), Transpose and Pad
 * (constant mode), over one strided-box copy. */
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nograd/error.h"

static int nomem(void) {
  return ng_error(NG_ENOMEM, "out of memory");
}

/* ---- Strided copies ---- */

/* Copies the box of src (dims sd, row-major) starting at `start` with steps `step` and extents `ext` into
 * dst, row-major. */
static void copy_box(const float *src, const int64_t *sd, size_t rank, const int64_t *start,
                     const int64_t *step, const int64_t *ext, float *dst) {
  int64_t stride[NG__MAXD], total = 1, base = 0;
  for (size_t k = rank, s = 1; k-- > 0;) {
    stride[k] = (int64_t)s;
    s *= (size_t)sd[k];
  }
  for (size_t k = 0; k < rank; k++) {
    total *= ext[k];
    base += start[k] * stride[k];
  }
  if (total == 0) return;
  int64_t idx[NG__MAXD] = {0}, inner = rank ? ext[rank - 1] : 1,
          is = rank ? step[rank - 1] * stride[rank - 1] : 1;
  int64_t pos = base;
  for (int64_t o = 0; o < total; o += inner) {
    if (is == 1)
      memcpy(dst + o, src + pos, (size_t)inner * sizeof *dst);
    else
      for (int64_t j = 0; j < inner; j++)
        dst[o + j] = src[pos + j * is];
    for (size_t k = rank >= 2 ? rank - 1 : 0; k-- > 0;) {
      pos += step[k] * stride[k];
      if (++idx[k] < ext[k]) break;
      pos -= step[k] * stride[k] * ext[k];
      idx[k] = 0;
    }
  }
}

/* copy_box for elements of `es` bytes (the folded integer tensors). */
static void copy_box_bytes(const void *src, size_t es, const int64_t *sd, size_t rank, const int64_t *start,
                           const int64_t *step, const int64_t *ext, void *dst) {
  int64_t stride[NG__MAXD], total = 1, idx[NG__MAXD] = {0};
  for (size_t k = rank, s = 1; k-- > 0;) {
    stride[k] = (int64_t)s;
    s *= (size_t)sd[k];
  }
  for (size_t k = 0; k < rank; k++)
    total *= ext[k];
  for (int64_t o = 0; o < total; o++) {
    int64_t pos = 0;
    for (size_t k = 0; k < rank; k++)
      pos += (start[k] + idx[k] * step[k]) * stride[k];
    memcpy((char *)dst + (size_t)o * es, (const char *)src + (size_t)pos * es, es);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < ext[k]) break;
      idx[k] = 0;
    }
  }
}

/* The constant dims of an integer tensor (they never depend on the batch). */
static bool int_dims(const ng__gt *x, int64_t *d) {
  for (size_t k = 0; k < x->ndim; k++) {
    if (!ng__ld_const(x->dims[k])) return false;
    d[k] = x->dims[k].c;
  }
  return true;
}

/* ---- Concat ---- */

typedef struct {
  int axis;
} axis_attr;

static int concat_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"axis", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x0 = ng__in(cx, n, 0);
  if (!x0) return ng__op_error(cx, "expected inputs");
  int ax = ng__axis(cx, ng__attr_int(cx, "axis", 0), x0->ndim, "axis");
  if (ax < 0) return NG_EFORMAT;
  ng__ldim d[NG__MAXD];
  memcpy(d, x0->dims, x0->ndim * sizeof *d);
  d[ax] = ng__ldc(0);
  size_t count = 0;
  bool isf = x0->is_float;
  for (size_t i = 0; i < n->nin; i++) {
    const ng__gt *x = ng__in(cx, n, i);
    if (!x || x->ndim != x0->ndim || x->is_float != isf)
      return ng__op_error(cx, "input %zu does not match input 0", i);
    for (size_t k = 0; k < x->ndim; k++)
      if (k != (size_t)ax && (x->dims[k].a != x0->dims[k].a || x->dims[k].c != x0->dims[k].c))
        return ng__op_error(cx, "input %s differs from %s outside the axis", x->name, x0->name);
    if (!ng__ld_add(d[ax], x->dims[ax], &d[ax])) return ng__op_error(cx, "the concatenated size overflows");
    count += x->count;
  }
  if (!isf) {
    ng__ldim *v = malloc((count ? count : 1) * sizeof *v);
    if (!v) return nomem();
    if (x0->ndim != 1) {
      free(v);
      return ng__op_error(cx, "integer concatenation of more than one dimension");
    }
    for (size_t i = 0, at = 0; i < n->nin; i++) {
      const ng__gt *x = ng__in(cx, n, i);
      memcpy(v + at, x->ivals, x->count * sizeof *v);
      at += x->count;
    }
    ng__set_int(ng__out(cx, n, 0), 1, d, v, count);
    n->folded = true;
    return NG_OK;
  }
  axis_attr *a = calloc(1, sizeof *a);
  if (!a) return nomem();
  a->axis = ax;
  n->attr = a;
  ng__set_float(ng__out(cx, n, 0), x0->ndim, d);
  return NG_OK;
}

static void concat_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const axis_attr *a = n->attr;
  const ng__gt *to = &gr->t[n->out[0]];
  int64_t od[NG__MAXD];
  ng__dims(to, r->B, od);
  size_t outer = 1, inner = 1;
  for (size_t k = 0; k < to->ndim; k++) {
    if (k < (size_t)a->axis) outer *= (size_t)od[k];
    if (k > (size_t)a->axis) inner *= (size_t)od[k];
  }
  float *y = r->ptr[n->out[0]];
  size_t orow = (size_t)od[a->axis] * inner, at = 0;
  for (size_t i = 0; i < n->nin; i++) {
    const ng__gt *x = &gr->t[n->in[i]];
    size_t len = (size_t)ng__ld(x->dims[a->axis], r->B) * inner;
    const float *src = r->ptr[n->in[i]];
    for (size_t o = 0; o < outer; o++)
      memcpy(y + o * orow + at, src + o * len, len * sizeof *y);
    at += len;
  }
}

const ng__op ng__op_Concat = {"Concat", concat_setup, concat_run};

/* ---- Gather ---- */

typedef struct {
  int axis;
  int64_t *idx; /* constant indices, normalised */
  size_t nidx;
} gather_attr;

static int gather_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"axis", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0), *it = ng__in(cx, n, 1);
  size_t cnt;
  const ng__ldim *iv = ng__int_input(cx, n, 1, "indices", true, &cnt);
  if (!x || !iv) return NG_EFORMAT;
  int ax = ng__axis(cx, ng__attr_int(cx, "axis", 0), x->ndim, "axis");
  if (ax < 0) return NG_EFORMAT;
  if (!ng__ld_const(x->dims[ax])) return ng__op_error(cx, "gathering along the batch is not supported");
  int64_t len = x->dims[ax].c;
  size_t on = x->ndim - 1 + it->ndim;
  if (on > NG__MAXD) return ng__op_error(cx, "more than %d dimensions", NG__MAXD);
  ng__ldim d[NG__MAXD];
  size_t k = 0;
  for (size_t j = 0; j < (size_t)ax; j++)
    d[k++] = x->dims[j];
  for (size_t j = 0; j < it->ndim; j++)
    d[k++] = it->dims[j];
  for (size_t j = (size_t)ax + 1; j < x->ndim; j++)
    d[k++] = x->dims[j];
  int64_t *idx = malloc((cnt ? cnt : 1) * sizeof *idx);
  if (!idx) return nomem();
  for (size_t i = 0; i < cnt; i++) {
    int64_t v = iv[i].c < 0 ? iv[i].c + len : iv[i].c;
    if (v < 0 || v >= len) {
      free(idx);
      return ng__op_error(cx, "index %lld is out of range for a dimension of %lld", (long long)iv[i].c,
                          (long long)len);
    }
    idx[i] = v;
  }
  if (!x->is_float) {
    if (x->ndim != 1) {
      free(idx);
      return ng__op_error(cx, "integer gather from more than one dimension");
    }
    ng__ldim *v = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v) {
      free(idx);
      return nomem();
    }
    for (size_t i = 0; i < cnt; i++)
      v[i] = x->ivals[idx[i]];
    free(idx);
    ng__set_int(ng__out(cx, n, 0), on, d, v, cnt);
    n->folded = true;
    return NG_OK;
  }
  gather_attr *a = calloc(1, sizeof *a);
  if (!a) {
    free(idx);
    return nomem();
  }
  a->axis = ax, a->idx = idx, a->nidx = cnt;
  n->attr = a;
  ng__set_float(ng__out(cx, n, 0), on, d);
  return NG_OK;
}

static void gather_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const gather_attr *a = n->attr;
  const ng__gt *x = &gr->t[n->in[0]];
  int64_t d[NG__MAXD];
  ng__dims(x, r->B, d);
  size_t outer = 1, inner = 1;
  for (size_t k = 0; k < x->ndim; k++)
    if (k != (size_t)a->axis) *(k < (size_t)a->axis ? &outer : &inner) *= (size_t)d[k];
  const float *src = r->ptr[n->in[0]];
  float *y = r->ptr[n->out[0]];
  for (size_t o = 0; o < outer; o++)
    for (size_t i = 0; i < a->nidx; i++)
      memcpy(y + (o * a->nidx + i) * inner, src + (o * (size_t)d[a->axis] + (size_t)a->idx[i]) * inner,
             inner * sizeof *y);
}

const ng__op ng__op_Gather = {"Gather", gather_setup, gather_run};

/* ---- Slice ---- */

typedef struct {
  int64_t start[NG__MAXD], step[NG__MAXD], ext[NG__MAXD];
  bool sliced[NG__MAXD];
} slice_attr;

static int slice_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const none[] = {NULL};
  NG_CALL(ng__attr_only(cx, none));
  const ng__gt *x = ng__in(cx, n, 0);
  size_t ns, ne, na = 0, nst = 0;
  const ng__ldim *st = ng__int_input(cx, n, 1, "starts", true, &ns),
                 *en = ng__int_input(cx, n, 2, "ends", true, &ne);
  if (!x || !st || !en) return NG_EFORMAT;
  const ng__ldim *ax = ng__in(cx, n, 3) ? ng__int_input(cx, n, 3, "axes", true, &na) : NULL;
  const ng__ldim *sp = ng__in(cx, n, 4) ? ng__int_input(cx, n, 4, "steps", true, &nst) : NULL;
  if ((ng__in(cx, n, 3) && !ax) || (ng__in(cx, n, 4) && !sp)) return NG_EFORMAT;
  if (ns != ne || (ax && na != ns) || (sp && nst != ns))
    return ng__op_error(cx, "starts, ends, axes, steps differ in length");
  slice_attr *a = calloc(1, sizeof *a);
  if (!a) return nomem();
  n->attr = a;
  ng__ldim d[NG__MAXD];
  memcpy(d, x->dims, x->ndim * sizeof *d);
  for (size_t k = 0; k < x->ndim; k++)
    a->step[k] = 1;
  for (size_t i = 0; i < ns; i++) {
    int k = ng__axis(cx, ax ? ax[i].c : (int64_t)i, x->ndim, "axis");
    if (k < 0) return NG_EFORMAT;
    int64_t s = st[i].c, e = en[i].c, step = sp ? sp[i].c : 1;
    if (step == 0) return ng__op_error(cx, "a step of 0");
    if (!ng__ld_const(x->dims[k])) {
      if (step == 1 && s == 0 && e >= INT32_MAX) continue; /* the whole batch */
      return ng__op_error(cx, "slicing the batch dimension is not supported");
    }
    int64_t L = x->dims[k].c;
    if (s < 0) s += L;
    if (e < 0) e += L;
    if (step > 0) {
      s = s < 0 ? 0 : s > L ? L : s;
      e = e < 0 ? 0 : e > L ? L : e;
    } else {
      s = s < 0 ? -1 : s > L - 1 ? L - 1 : s;
      e = e < -1 ? -1 : e > L - 1 ? L - 1 : e;
    }
    int64_t len =
        step > 0 ? (e > s ? (e - s + step - 1) / step : 0) : (s > e ? (s - e - step - 1) / -step : 0);
    a->start[k] = s, a->step[k] = step, a->ext[k] = len, a->sliced[k] = true;
    d[k] = ng__ldc(len);
  }
  if (!x->is_float) {
    int64_t sd[NG__MAXD], start[NG__MAXD], ext[NG__MAXD];
    size_t total = 1;
    if (!int_dims(x, sd)) return ng__op_error(cx, "an integer tensor whose shape depends on the batch");
    for (size_t k = 0; k < x->ndim; k++) {
      start[k] = a->sliced[k] ? a->start[k] : 0;
      ext[k] = a->sliced[k] ? a->ext[k] : sd[k];
      total *= (size_t)ext[k];
    }
    ng__ldim *v = malloc((total ? total : 1) * sizeof *v);
    if (!v) return nomem();
    copy_box_bytes(x->ivals, sizeof *v, sd, x->ndim, start, a->step, ext, v);
    ng__set_int(ng__out(cx, n, 0), x->ndim, d, v, total);
    n->folded = true;
    return NG_OK;
  }
  ng__set_float(ng__out(cx, n, 0), x->ndim, d);
  return NG_OK;
}

static void slice_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const slice_attr *a = n->attr;
  const ng__gt *x = &gr->t[n->in[0]];
  int64_t d[NG__MAXD], start[NG__MAXD], ext[NG__MAXD];
  ng__dims(x, r->B, d);
  for (size_t k = 0; k < x->ndim; k++) {
    start[k] = a->sliced[k] ? a->start[k] : 0;
    ext[k] = a->sliced[k] ? a->ext[k] : d[k];
  }
  copy_box(r->ptr[n->in[0]], d, x->ndim, start, a->step, ext, r->ptr[n->out[0]]);
}

const ng__op ng__op_Slice = {"Slice", slice_setup, slice_run};

/* ---- Transpose ---- */

typedef struct {
  size_t perm[NG__MAXD];
} perm_attr;

static int transpose_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"perm", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x) return ng__op_error(cx, "expected an input");
  size_t cnt;
  const int64_t *p = ng__attr_ints(cx, "perm", &cnt);
  if (p && cnt != x->ndim) return ng__op_error(cx, "perm has %zu entries for rank %zu", cnt, x->ndim);
  perm_attr *a = calloc(1, sizeof *a);
  if (!a) return nomem();
  n->attr = a;
  bool seen[NG__MAXD] = {false};
  ng__ldim d[NG__MAXD];
  for (size_t k = 0; k < x->ndim; k++) {
    int64_t v = p ? p[k] : (int64_t)(x->ndim - 1 - k);
    if (v < 0 || v >= (int64_t)x->ndim || seen[v]) return ng__op_error(cx, "perm is not a permutation");
    seen[v] = true;
    a->perm[k] = (size_t)v;
    d[k] = x->dims[v];
  }
  if (!x->is_float) { /* a transposed integer constant: element by element */
    int64_t sd[NG__MAXD], st[NG__MAXD], od[NG__MAXD], idx[NG__MAXD] = {0};
    if (!int_dims(x, sd)) return ng__op_error(cx, "an integer tensor whose shape depends on the batch");
    for (size_t k = x->ndim, s = 1; k-- > 0;) {
      st[k] = (int64_t)s;
      s *= (size_t)sd[k];
    }
    for (size_t k = 0; k < x->ndim; k++)
      od[k] = sd[a->perm[k]];
    ng__ldim *v = malloc((x->count ? x->count : 1) * sizeof *v);
    if (!v) return nomem();
    for (size_t o = 0; o < x->count; o++) {
      int64_t pos = 0;
      for (size_t k = 0; k < x->ndim; k++)
        pos += idx[k] * st[a->perm[k]];
      v[o] = x->ivals[pos];
      for (size_t k = x->ndim; k-- > 0;) {
        if (++idx[k] < od[k]) break;
        idx[k] = 0;
      }
    }
    ng__set_int(ng__out(cx, n, 0), x->ndim, d, v, x->count);
    n->folded = true;
    return NG_OK;
  }
  ng__set_float(ng__out(cx, n, 0), x->ndim, d);
  return NG_OK;
}

static void transpose_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const perm_attr *a = n->attr;
  const ng__gt *x = &gr->t[n->in[0]];
  size_t R = x->ndim;
  int64_t d[NG__MAXD], st[NG__MAXD], od[NG__MAXD], os[NG__MAXD];
  ng__dims(x, r->B, d);
  for (size_t k = R, s = 1; k-- > 0;) {
    st[k] = (int64_t)s;
    s *= (size_t)d[k];
  }
  for (size_t k = 0; k < R; k++) {
    od[k] = d[a->perm[k]];
    os[k] = st[a->perm[k]];
  }
  size_t total = ng__numel(x, r->B);
  const float *src = r->ptr[n->in[0]];
  float *y = r->ptr[n->out[0]];
  if (!total) return;
  int64_t idx[NG__MAXD] = {0}, pos = 0, inner = R ? od[R - 1] : 1, is = R ? os[R - 1] : 1;
  for (size_t o = 0; o < total; o += (size_t)inner) {
    for (int64_t j = 0; j < inner; j++)
      y[o + (size_t)j] = src[pos + j * is];
    for (size_t k = R >= 2 ? R - 1 : 0; k-- > 0;) {
      pos += os[k];
      if (++idx[k] < od[k]) break;
      pos -= os[k] * od[k];
      idx[k] = 0;
    }
  }
}

const ng__op ng__op_Transpose = {"Transpose", transpose_setup, transpose_run};

/* ---- Pad (constant) ---- */

typedef struct {
  int64_t before[NG__MAXD];
  float value;
} pad_attr;

static int pad_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"mode", NULL};
  NG_CALL(ng__attr_only(cx, known));
  for (size_t q = 0; q < cx->src->nattrs; q++)
    if (!strcmp(cx->src->attrs[q].name, "mode") && cx->src->attrs[q].s &&
        strcmp(cx->src->attrs[q].s, "constant"))
      return ng__op_error(cx, "mode %s is not supported (constant is)", cx->src->attrs[q].s);
  const ng__gt *x = ng__in(cx, n, 0);
  size_t cnt;
  const ng__ldim *p = ng__int_input(cx, n, 1, "pads", true, &cnt);
  if (!x || !x->is_float || !p) return NG_EFORMAT;
  if (cnt != 2 * x->ndim || ng__in(cx, n, 3))
    return ng__op_error(cx, "pads must have 2 x rank values (no axes input)");
  pad_attr *a = calloc(1, sizeof *a);
  if (!a) return nomem();
  n->attr = a;
  if (ng__in(cx, n, 2)) NG_CALL(ng__const_scalar(cx, n, 2, "constant_value", &a->value));
  ng__ldim d[NG__MAXD];
  for (size_t k = 0; k < x->ndim; k++) {
    int64_t b = p[k].c, e = p[k + x->ndim].c;
    if (b < 0 || e < 0) return ng__op_error(cx, "negative pads are not supported");
    if ((b || e) && !ng__ld_const(x->dims[k])) return ng__op_error(cx, "padding the batch dimension");
    a->before[k] = b;
    if (b > NG__MAX_ELEMENTS || e > NG__MAX_ELEMENTS) return ng__op_error(cx, "pads of more than 2^40");
    d[k] = (ng__ldim){x->dims[k].a, x->dims[k].c + b + e};
  }
  ng__set_float(ng__out(cx, n, 0), x->ndim, d);
  return NG_OK;
}

static void pad_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  const pad_attr *a = n->attr;
  const ng__gt *x = &gr->t[n->in[0]], *to = &gr->t[n->out[0]];
  size_t R = x->ndim, total = ng__numel(to, r->B);
  int64_t d[NG__MAXD], od[NG__MAXD];
  ng__dims(x, r->B, d);
  ng__dims(to, r->B, od);
  const float *src = r->ptr[n->in[0]];
  float *y = r->ptr[n->out[0]];
  int64_t idx[NG__MAXD] = {0};
  for (size_t o = 0; o < total; o++) {
    int64_t pos = 0;
    bool inside = true;
    for (size_t k = 0; k < R && inside; k++) {
      int64_t i = idx[k] - a->before[k];
      inside = i >= 0 && i < d[k];
      pos = pos * d[k] + i;
    }
    y[o] = inside ? src[pos] : a->value;
    for (size_t k = R; k-- > 0;) {
      if (++idx[k] < od[k]) break;
      idx[k] = 0;
    }
  }
}

const ng__op ng__op_Pad = {"Pad", pad_setup, pad_run};
