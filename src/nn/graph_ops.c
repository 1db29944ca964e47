/* The helpers the ops use while a graph is compiled (declared in src/nn/graph_impl.h): messages naming the
 * node, attribute access, integer-constant inputs, output shapes, axes and convolution windows. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph_impl.h"
#include "nograd/error.h"

int ng__op_error(const ng__gctx *cx, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return ng_error(NG_EFORMAT, "%s: node %s (%s, opset %lld): %s", cx->gr->path, cx->src->name,
                  cx->src->op_type, (long long)cx->gr->opset, msg);
}

static const ng__onnx_attr *attr(const ng__gctx *cx, const char *name) {
  for (size_t k = 0; k < cx->src->nattrs; k++)
    if (!strcmp(cx->src->attrs[k].name, name)) return &cx->src->attrs[k];
  return NULL;
}

bool ng__attr_has(const ng__gctx *cx, const char *name) {
  return attr(cx, name) != NULL;
}

int64_t ng__attr_int(const ng__gctx *cx, const char *name, int64_t dflt) {
  const ng__onnx_attr *a = attr(cx, name);
  return a && a->type == NG__ATTR_INT ? a->i : dflt;
}

double ng__attr_float(const ng__gctx *cx, const char *name, double dflt) {
  const ng__onnx_attr *a = attr(cx, name);
  return a && a->type == NG__ATTR_FLOAT ? a->f : dflt;
}

const int64_t *ng__attr_ints(const ng__gctx *cx, const char *name, size_t *count) {
  const ng__onnx_attr *a = attr(cx, name);
  if (!a || a->type != NG__ATTR_INTS) {
    *count = 0;
    return NULL;
  }
  *count = a->count;
  return a->ints;
}

int ng__attr_only(const ng__gctx *cx, const char *const *known) {
  for (size_t k = 0; k < cx->src->nattrs; k++) {
    bool ok = false;
    for (const char *const *p = known; *p && !ok; p++)
      ok = !strcmp(*p, cx->src->attrs[k].name);
    if (!ok) return ng__op_error(cx, "attribute %s is not supported", cx->src->attrs[k].name);
  }
  return NG_OK;
}

int ng__window_attrs(const ng__gctx *cx, ng__window *w) {
  size_t cnt;
  const int64_t *s = ng__attr_ints(cx, "strides", &cnt);
  if (s && cnt != 2) return ng__op_error(cx, "strides must have 2 values");
  const int64_t *d = ng__attr_ints(cx, "dilations", &cnt);
  if (d && cnt != 2) return ng__op_error(cx, "dilations must have 2 values");
  const int64_t *p = ng__attr_ints(cx, "pads", &cnt);
  if (p && cnt != 4) return ng__op_error(cx, "pads must have 4 values");
  w->sh = s ? s[0] : 1, w->sw = s ? s[1] : 1, w->dh = d ? d[0] : 1, w->dw = d ? d[1] : 1;
  w->pt = p ? p[0] : 0, w->pl = p ? p[1] : 0, w->pb = p ? p[2] : 0, w->pr = p ? p[3] : 0;
  const ng__onnx_attr *ap = attr(cx, "auto_pad");
  if (ap && ap->s && strcmp(ap->s, "NOTSET") && strcmp(ap->s, "VALID"))
    return ng__op_error(cx, "auto_pad %s is not supported (export with explicit pads)", ap->s);
  if (w->sh < 1 || w->sw < 1 || w->dh < 1 || w->dw < 1 || w->pt < 0 || w->pl < 0 || w->pb < 0 || w->pr < 0)
    return ng__op_error(cx, "strides and dilations must be positive and pads not negative");
  return NG_OK;
}

size_t ng__numel(const ng__gt *t, size_t B) {
  size_t n = 1;
  for (size_t k = 0; k < t->ndim; k++)
    n *= (size_t)ng__ld(t->dims[k], B);
  return n;
}

void ng__dims(const ng__gt *t, size_t B, int64_t *dims) {
  for (size_t k = 0; k < t->ndim; k++)
    dims[k] = ng__ld(t->dims[k], B);
}

ng__gt *ng__in(ng__gctx *cx, ng__gnode *n, size_t k) {
  return k < n->nin && n->in[k] >= 0 ? &cx->gr->t[n->in[k]] : NULL;
}

ng__gt *ng__out(ng__gctx *cx, ng__gnode *n, size_t k) {
  return k < n->nout && n->out[k] >= 0 ? &cx->gr->t[n->out[k]] : NULL;
}

const ng__ldim *ng__int_input(ng__gctx *cx, ng__gnode *n, size_t k, const char *what, bool constant,
                              size_t *count) {
  const ng__gt *t = ng__in(cx, n, k);
  if (!t) {
    ng__op_error(cx, "input %zu (%s) is missing", k, what);
    return NULL;
  }
  if (t->kind != NG__T_INT) {
    ng__op_error(
        cx,
        "input %zu (%s, tensor %s) must be an integer constant or computable from the shapes when the "
        "graph is loaded",
        k, what, t->name);
    return NULL;
  }
  for (size_t i = 0; constant && i < t->count; i++)
    if (!ng__ld_const(t->ivals[i])) {
      ng__op_error(cx, "input %zu (%s, tensor %s) depends on the batch size", k, what, t->name);
      return NULL;
    }
  *count = t->count;
  return t->ivals;
}

int ng__const_scalar(ng__gctx *cx, ng__gnode *n, size_t k, const char *what, float *v) {
  const ng__gt *t = ng__in(cx, n, k);
  if (t && t->kind == NG__T_CONST && t->count == 1) {
    *v = t->fdata[0];
    return NG_OK;
  }
  if (t && t->kind == NG__T_INT && t->count == 1 && ng__ld_const(t->ivals[0])) {
    *v = (float)t->ivals[0].c;
    return NG_OK;
  }
  return ng__op_error(cx, "input %zu (%s%s%s) must be a constant scalar", k, what, t ? ", tensor " : "",
                      t ? t->name : "");
}

void ng__set_float(ng__gt *t, size_t ndim, const ng__ldim *dims) {
  t->ndim = ndim;
  t->is_float = true;
  t->kind = NG__T_ACT;
  memcpy(t->dims, dims, ndim * sizeof *dims);
}

void ng__set_int(ng__gt *t, size_t ndim, const ng__ldim *dims, ng__ldim *vals, size_t count) {
  t->ndim = ndim;
  t->is_float = false;
  t->kind = NG__T_INT;
  memcpy(t->dims, dims, ndim * sizeof *dims);
  free(t->ivals);
  t->ivals = vals;
  t->count = count;
}

int ng__axis(ng__gctx *cx, int64_t axis, size_t rank, const char *what) {
  if (axis < -(int64_t)rank || axis >= (int64_t)rank) {
    ng__op_error(cx, "%s %lld is out of range for rank %zu", what, (long long)axis, rank);
    return -1;
  }
  return (int)(axis < 0 ? axis + (int64_t)rank : axis);
}

int ng__sole_reader(const ng__graph *gr, int t) {
  int who = -1;
  if (t == gr->output || gr->t[t].pinned) return -1;
  for (size_t i = 0; i < gr->nnodes; i++)
    for (size_t k = 0; k < gr->nodes[i].nin; k++)
      if (gr->nodes[i].in[k] == t) {
        if (who >= 0) return -1;
        who = (int)i;
      }
  return who;
}

void ng__view_run(const ng__gnode *n, const ng__graph *gr, ng__run *r) {
  r->ptr[n->out[0]] = r->ptr[n->in[0]];
  (void)gr;
}

const ng__op ng__op_fused = {"(fused)", NULL, ng__view_run};
