/* Shape and data-movement ops: Shape, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Cast (views
 * or folded), Gather, Concat, Slice (folded on integers, copies on floats), Transpose and Pad (constant).
 *
 * A reshape of a float tensor is a view: its output is the same memory (the planner keeps that memory alive
 * as long as either is read), so it costs nothing in a pass. On integer constants (shape arithmetic) these
 * ops are computed when the graph is compiled. */
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nn/graph_impl.h"
#include "nograd/error.h"

static int nomem(void) {
  return ng_error(NG_ENOMEM, "out of memory");
}

static bool ld_is(ng__ldim d, int64_t v) {
  return d.a == 0 && d.c == v;
}

/* Output 0 as a view of input 0 with dims d (float), or a folded copy of its values (an integer or a float
 * constant). */
static int view(ng__gctx *cx, ng__gnode *n, size_t ndim, const ng__ldim *d) {
  ng__gt *x = ng__in(cx, n, 0), *y = ng__out(cx, n, 0);
  if (x->kind == NG__T_CONST) {
    if (!(y->fdata = malloc((x->count ? x->count : 1) * sizeof *y->fdata))) return nomem();
    memcpy(y->fdata, x->fdata, x->count * sizeof *y->fdata);
    y->kind = NG__T_CONST;
    y->is_float = true;
    y->count = x->count;
    y->ndim = ndim;
    memcpy(y->dims, d, ndim * sizeof *d);
    n->folded = true;
    return NG_OK;
  }
  if (!x->is_float) {
    ng__ldim *v = malloc((x->count ? x->count : 1) * sizeof *v);
    if (!v) return nomem();
    memcpy(v, x->ivals, x->count * sizeof *v);
    ng__set_int(y, ndim, d, v, x->count);
    n->folded = true;
    return NG_OK;
  }
  ng__set_float(y, ndim, d);
  y->alias = n->in[0];
  return NG_OK;
}

static void view_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  r->ptr[n->out[0]] = r->ptr[n->in[0]];
  (void)gr;
}

/* The product of dims [from, to) if it is linear in the batch. */
static bool product(const ng__ldim *d, size_t from, size_t to, ng__ldim *out) {
  ng__ldim p = ng__ldc(1);
  for (size_t k = from; k < to; k++) {
    if (!ng__ld_mul(p, d[k], &p)) return false;
  }
  *out = p;
  return true;
}

/* ---- Shape ---- */

static int shape_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"start", "end", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x) return ng__op_error(cx, "expected one input");
  int64_t r = (int64_t)x->ndim, s = ng__attr_int(cx, "start", 0), e = ng__attr_int(cx, "end", r);
  if (s < 0) s += r;
  if (e < 0) e += r;
  s = s < 0 ? 0 : s > r ? r : s;
  e = e < 0 ? 0 : e > r ? r : e;
  size_t cnt = e > s ? (size_t)(e - s) : 0;
  ng__ldim *v = malloc((cnt ? cnt : 1) * sizeof *v);
  if (!v) return nomem();
  memcpy(v, x->dims + s, cnt * sizeof *v);
  ng__ldim d = ng__ldc((int64_t)cnt);
  ng__set_int(ng__out(cx, n, 0), 1, &d, v, cnt);
  n->folded = true;
  return NG_OK;
}

const ng__op ng__op_Shape = {"Shape", shape_setup, NULL};

/* ---- Reshape, Flatten ---- */

static int reshape_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"allowzero", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0);
  size_t cnt;
  const ng__ldim *s = ng__int_input(cx, n, 1, "shape", false, &cnt);
  if (!x || !s) return NG_EFORMAT;
  if (cnt > NG__MAXD) return ng__op_error(cx, "a shape of %zu dimensions", cnt);
  bool allowzero = ng__attr_int(cx, "allowzero", 0) != 0;
  ng__ldim d[NG__MAXD], total, known_p = ng__ldc(1);
  if (!product(x->dims, 0, x->ndim, &total))
    return ng__op_error(cx, "input %s has more than one dimension that depends on the batch", x->name);
  int infer = -1;
  for (size_t k = 0; k < cnt; k++) {
    d[k] = s[k];
    if (ld_is(s[k], 0) && !allowzero) {
      if (k >= x->ndim) return ng__op_error(cx, "shape entry %zu is 0 (copy) beyond the input's rank", k);
      d[k] = x->dims[k];
    } else if (ld_is(s[k], -1)) {
      if (infer >= 0) return ng__op_error(cx, "more than one -1 in the shape");
      infer = (int)k;
      continue;
    }
    if (d[k].a == 0 && d[k].c < 0) return ng__op_error(cx, "shape entry %zu is %lld", k, (long long)d[k].c);
    if (!ng__ld_mul(known_p, d[k], &known_p))
      return ng__op_error(cx, "the shape's size overflows or has two dimensions that depend on the batch");
  }
  if (infer >= 0) {
    ng__ldim q;
    if (known_p.a == 0 && known_p.c != 0 && total.a % known_p.c == 0 && total.c % known_p.c == 0)
      q = (ng__ldim){total.a / known_p.c, total.c / known_p.c};
    else if (known_p.a > 0 && total.a % known_p.a == 0 && total.a / known_p.a <= NG__MAX_ELEMENTS &&
             known_p.c <= NG__MAX_ELEMENTS && total.a / known_p.a * known_p.c == total.c)
      q = ng__ldc(total.a / known_p.a);
    else
      return ng__op_error(cx, "cannot infer the -1 dimension of the reshape of %s", x->name);
    d[infer] = q;
    known_p = total;
  }
  if (known_p.a != total.a || known_p.c != total.c)
    return ng__op_error(cx, "the shape does not hold the %s elements of %s", "same number of", x->name);
  return view(cx, n, cnt, d);
}

const ng__op ng__op_Reshape = {"Reshape", reshape_setup, view_run};

static int flatten_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"axis", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x) return ng__op_error(cx, "expected one input");
  int64_t ax = ng__attr_int(cx, "axis", 1);
  if (ax < 0) ax += (int64_t)x->ndim;
  if (ax < 0 || ax > (int64_t)x->ndim) return ng__op_error(cx, "axis %lld out of range", (long long)ax);
  ng__ldim d[2];
  if (!product(x->dims, 0, (size_t)ax, &d[0]) || !product(x->dims, (size_t)ax, x->ndim, &d[1]))
    return ng__op_error(cx, "the flattened dimensions are not linear in the batch");
  return view(cx, n, 2, d);
}

const ng__op ng__op_Flatten = {"Flatten", flatten_setup, view_run};

/* ---- Squeeze, Unsqueeze ---- */

static int axes_of(ng__gctx *cx, ng__gnode *n, size_t rank, bool *mark, bool *given) {
  size_t cnt = 0;
  *given = ng__in(cx, n, 1) != NULL;
  if (!*given) return NG_OK;
  const ng__ldim *ax = ng__int_input(cx, n, 1, "axes", true, &cnt);
  if (!ax) return NG_EFORMAT;
  for (size_t k = 0; k < cnt; k++) {
    int a = ng__axis(cx, ax[k].c, rank, "axis");
    if (a < 0) return NG_EFORMAT;
    if (mark[a]) return ng__op_error(cx, "axis %d given twice", a);
    mark[a] = true;
  }
  return NG_OK;
}

static int squeeze_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const none[] = {NULL};
  NG_CALL(ng__attr_only(cx, none));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x) return ng__op_error(cx, "expected an input");
  bool mark[NG__MAXD] = {false}, given;
  NG_CALL(axes_of(cx, n, x->ndim, mark, &given));
  ng__ldim d[NG__MAXD];
  size_t on = 0;
  for (size_t k = 0; k < x->ndim; k++) {
    bool one = ld_is(x->dims[k], 1);
    if (given && mark[k] && !one) return ng__op_error(cx, "dimension %zu of %s is not 1", k, x->name);
    if (!(given ? mark[k] : one)) d[on++] = x->dims[k];
  }
  return view(cx, n, on, d);
}

const ng__op ng__op_Squeeze = {"Squeeze", squeeze_setup, view_run};

static int unsqueeze_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const none[] = {NULL};
  NG_CALL(ng__attr_only(cx, none));
  const ng__gt *x = ng__in(cx, n, 0);
  size_t cnt;
  if (!x || !ng__int_input(cx, n, 1, "axes", true, &cnt)) return NG_EFORMAT;
  size_t on = x->ndim + cnt;
  if (on > NG__MAXD) return ng__op_error(cx, "more than %d dimensions", NG__MAXD);
  bool mark[NG__MAXD] = {false}, given;
  NG_CALL(axes_of(cx, n, on, mark, &given));
  ng__ldim d[NG__MAXD];
  for (size_t k = 0, j = 0; k < on; k++)
    d[k] = mark[k] ? ng__ldc(1) : x->dims[j++];
  return view(cx, n, on, d);
}

const ng__op ng__op_Unsqueeze = {"Unsqueeze", unsqueeze_setup, view_run};

/* ---- Identity, Dropout, Cast ---- */

static int identity_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"seed", "ratio", "training_mode", NULL};
  NG_CALL(ng__attr_only(cx, known));
  const ng__gt *x = ng__in(cx, n, 0);
  if (!x) return ng__op_error(cx, "expected an input");
  if (n->nout > 1 && ng__out(cx, n, 1)) return ng__op_error(cx, "the mask output is not supported");
  if (ng__in(cx, n, 2)) return ng__op_error(cx, "training_mode as an input is not supported");
  return view(cx, n, x->ndim, x->dims);
}

const ng__op ng__op_Identity = {"Identity", identity_setup, view_run};
const ng__op ng__op_Dropout = {"Dropout", identity_setup, view_run};

static int cast_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"to", "saturate", NULL};
  NG_CALL(ng__attr_only(cx, known));
  ng__gt *x = ng__in(cx, n, 0);
  if (!x) return ng__op_error(cx, "expected an input");
  int64_t to = ng__attr_int(cx, "to", 0);
  bool to_float = to == NG__ONNX_FLOAT || to == NG__ONNX_DOUBLE;
  bool to_int = to == NG__ONNX_INT64 || to == NG__ONNX_INT32;
  if (x->is_float && to_float) return view(cx, n, x->ndim, x->dims);
  if (!x->is_float && to_int) return view(cx, n, x->ndim, x->dims);
  if (!x->is_float && to_float) { /* a shape value used in float arithmetic: a constant if it is one */
    ng__gt *y = ng__out(cx, n, 0);
    if (!(y->fdata = malloc((x->count ? x->count : 1) * sizeof *y->fdata))) return nomem();
    for (size_t i = 0; i < x->count; i++) {
      if (!ng__ld_const(x->ivals[i]))
        return ng__op_error(cx, "a cast to float of a value that depends on the batch");
      y->fdata[i] = (float)x->ivals[i].c;
    }
    y->kind = NG__T_CONST;
    y->is_float = true;
    y->count = x->count;
    y->ndim = x->ndim;
    memcpy(y->dims, x->dims, x->ndim * sizeof *x->dims);
    n->folded = true;
    return NG_OK;
  }
  return ng__op_error(cx, "a cast to type %lld is not supported", (long long)to);
}

const ng__op ng__op_Cast = {"Cast", cast_setup, view_run};

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

/* ---- ConstantOfShape ---- */

static int cos_setup(ng__gctx *cx, ng__gnode *n) {
  static const char *const known[] = {"value", NULL};
  NG_CALL(ng__attr_only(cx, known));
  size_t cnt;
  const ng__ldim *s = ng__int_input(cx, n, 0, "shape", true, &cnt);
  if (!s) return NG_EFORMAT;
  if (cnt > NG__MAXD) return ng__op_error(cx, "a shape of %zu dimensions", cnt);
  const ng__onnx_tensor *v = NULL;
  for (size_t q = 0; q < cx->src->nattrs; q++)
    if (!strcmp(cx->src->attrs[q].name, "value")) v = cx->src->attrs[q].tensor;
  ng__ldim d[NG__MAXD];
  size_t total = 1;
  for (size_t k = 0; k < cnt; k++) {
    if (s[k].c < 0) return ng__op_error(cx, "a negative dimension");
    d[k] = s[k];
    if (!ng__mul(total, (size_t)s[k].c, &total) || total > NG__MAX_ELEMENTS)
      return ng__op_error(cx, "a constant of more than %lld elements", (long long)NG__MAX_ELEMENTS);
  }
  bool isf = v && (v->dtype == NG__ONNX_FLOAT || v->dtype == NG__ONNX_DOUBLE);
  ng__gt *y = ng__out(cx, n, 0);
  if (isf) {
    float f = v->dtype == NG__ONNX_FLOAT ? *(const float *)v->data : (float)*(const double *)v->data;
    if (!(y->fdata = malloc((total ? total : 1) * sizeof *y->fdata))) return nomem();
    for (size_t i = 0; i < total; i++)
      y->fdata[i] = f;
    y->kind = NG__T_CONST;
    y->is_float = true;
    y->count = total;
    y->ndim = cnt;
    memcpy(y->dims, d, cnt * sizeof *d);
  } else {
    int64_t iv = 0;
    if (v && v->dtype == NG__ONNX_INT64)
      iv = *(const int64_t *)v->data;
    else if (v && v->dtype == NG__ONNX_INT32)
      iv = *(const int32_t *)v->data;
    else if (v)
      return ng__op_error(cx, "value of type %d is not supported", v->dtype);
    ng__ldim *vals = malloc((total ? total : 1) * sizeof *vals);
    if (!vals) return nomem();
    for (size_t i = 0; i < total; i++)
      vals[i] = ng__ldc(iv);
    ng__set_int(y, cnt, d, vals, total);
  }
  n->folded = true;
  return NG_OK;
}

const ng__op ng__op_ConstantOfShape = {"ConstantOfShape", cos_setup, NULL};

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
