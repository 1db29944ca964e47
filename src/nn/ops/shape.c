/* Shape ops: Shape, Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Cast (views or folded) and
 * ConstantOfShape; the ops that move data are in movement.c.
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

const ng__op ng__op_Reshape = {"Reshape", reshape_setup, ng__view_run};

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

const ng__op ng__op_Flatten = {"Flatten", flatten_setup, ng__view_run};

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

const ng__op ng__op_Squeeze = {"Squeeze", squeeze_setup, ng__view_run};

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

const ng__op ng__op_Unsqueeze = {"Unsqueeze", unsqueeze_setup, ng__view_run};

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

const ng__op ng__op_Identity = {"Identity", identity_setup, ng__view_run};
const ng__op ng__op_Dropout = {"Dropout", identity_setup, ng__view_run};

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

const ng__op ng__op_Cast = {"Cast", cast_setup, ng__view_run};

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
