/* Private: the compiled graph's structs, shared by the executor (src/nn/graph.c) and its ops
 * (src/nn/ops/).
 *
 * Dimensions are linear in the batch: a dimension is a*B + c for the batch B of a pass (a = 0 for the
 * constant ones). The batch enters as dimension 0 of the graph input, (1, 0); the shape arithmetic of an
 * exported graph (Shape, Gather, Mul, Concat, Reshape, ...) keeps it linear, e.g. [S, B*heads, d] in an
 * attention layer, so shapes are inferred once, when the graph is compiled, and evaluated per pass for its
 * batch. Integer tensors (shapes, indices, axes) are folded when the graph is compiled: their values are
 * linear in B too and no integer op runs in a forward pass. */
#ifndef NOGRAD_NN_GRAPH_IMPL_H
#define NOGRAD_NN_GRAPH_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/graph.h"
#include "nn/onnx_graph.h"

#define NG__MAXD NG__ONNX_MAX_DIMS
#define NG__MAX_IO 64                       /* inputs or outputs of one node (a DenseNet-201 Concat has 49) */
#define NG__MAX_ELEMENTS ((int64_t)1 << 40) /* elements of one tensor per example, and per unit of batch */

typedef struct {
  int64_t a, c; /* a*B + c */
} ng__ldim;

typedef enum {
  NG__T_ACT,   /* computed by a node in each pass (float) */
  NG__T_INPUT, /* the graph input: the caller's x */
  NG__T_PARAM, /* a parameter: the caller's vector at `offset` */
  NG__T_CONST, /* a float constant the graph owns (Constant nodes, folded casts) */
  NG__T_INT    /* an integer constant, folded: `ivals`, linear in B */
} ng__tkind;

typedef struct {
  char *name;
  ng__tkind kind;
  size_t ndim;
  ng__ldim dims[NG__MAXD];
  float *fdata;    /* NG__T_CONST */
  ng__ldim *ivals; /* NG__T_INT: count values, row-major */
  size_t count;    /* NG__T_INT, NG__T_CONST: elements */
  size_t offset;   /* NG__T_PARAM: in the parameter vector */
  char *source;    /* NG__T_PARAM made from an Identity: the initializer it copies */
  int alias;       /* NG__T_ACT: the tensor whose memory it is (a reshape), or -1 */
  int producer;    /* node index, or -1 */
  int last_use;    /* index of the last node that reads it (output: INT32_MAX) */
  bool is_float;   /* float data (every kind but NG__T_INT) */
  bool pinned;     /* must keep its own value: no fusion folds the node after it into its producer */
  bool partial;    /* its memory holds a later node's result too (a Conv fused with what follows): its own
                    * value is never seen, so no partial pass may end or start at it */
} ng__gt;

struct ng__op;

typedef struct ng__gnode {
  const struct ng__op *op;
  char *name, *op_type;
  int in[NG__MAX_IO], out[NG__MAX_IO]; /* tensor indices; -1: an omitted optional input */
  size_t nin, nout;
  void *attr;          /* the op's parsed attributes (freed with free()) */
  ng__ldim scratch;    /* floats of scratch a pass needs, linear in B ... */
  int64_t scratch_cap; /* ... but never more than this (0: no cap): work done in chunks of examples */
  bool folded;         /* computed when the graph was compiled: not run */
} ng__gnode;

struct ng__graph {
  char *path;
  ng__gt *t;
  size_t nt, tcap;
  ng__gnode *nodes; /* execution order */
  size_t nnodes;
  int input, output;
  float *params; /* the file's values (NULL when compiled with no_values) */
  bool no_values;
  size_t nparams;
  int *param_tensors; /* tensor index of each parameter entry, in entry order */
  size_t nentries;
  size_t in_size, out_size; /* floats per example */
  int64_t in_dims[NG__MAXD], out_dims[NG__MAXD];
  size_t in_ndim, out_ndim;
  void *names; /* name -> tensor index (graph.c) */
  int64_t opset;
};

/* What an op's setup sees: the graph being compiled, for messages and new tensors. */
typedef struct {
  ng__graph *gr;
  const ng__onnx_node *src;
} ng__gctx;

/* What an op's run sees in a pass. */
typedef struct {
  size_t B;
  float **ptr; /* per tensor */
  float *scratch;
  uint64_t seed, step; /* the native training Dropout's key (ng__graph_work_set_dropout) */
} ng__run;

typedef struct ng__op {
  const char *name;
  /* Parses and checks the node's attributes and inputs, sets its outputs' dims (and kind: an integer
   * result is computed here and the node marked folded; an alias sets the output's alias). Errors through
   * ng__op_error. */
  int (*setup)(ng__gctx *cx, ng__gnode *n);
  /* Computes the node's float outputs for r->B; no allocation. NULL for ops that always fold. */
  void (*run)(const ng__gnode *n, const ng__graph *gr, ng__run *r);
} ng__op;

/* The row of op `name` of the default domain, or NULL (src/nn/ops/ops.c). */
const ng__op *ng__op_find(const char *name);
/* The row of op `name` of domain ai.nograd, which only graphs built by the native front end may use
 * (src/nn/ops/native.c: Gelu, and Dropout in training), or NULL. */
const ng__op *ng__op_find_native(const char *name);
/* "Add, AveragePool, ..." : the known ops, for messages. */
void ng__op_list(char *buf, size_t len);

/* Fuses each Conv with the BatchNormalization that alone reads it (with fixed statistics), and the Relu or
 * Clip that alone reads that (or the Conv itself), into the convolution's output loop (src/nn/ops/conv.c);
 * the fused nodes become views. No bit changes: the fused loop does BatchNormalization's own arithmetic. */
void ng__conv_fuse(ng__graph *gr);
/* Fuses each Gemm with the Relu that alone reads it into the bias pass (src/nn/ops/gemm.c). No bit changes.
 */
void ng__gemm_fuse(ng__graph *gr);
/* The only node that reads tensor t, or -1 (also for the graph's output, which the caller reads, and for a
 * pinned tensor, whose own value must stay visible). */
int ng__sole_reader(const ng__graph *gr, int t);
/* The run of a view (a reshape, a node fused into the one before it): its output is its input's memory
 * (graph_ops.c). What a fused node becomes. */
void ng__view_run(const ng__gnode *n, const ng__graph *gr, ng__run *r);
extern const ng__op ng__op_fused;
extern const ng__op ng__op_Conv, ng__op_BatchNormalization, ng__op_Relu, ng__op_Clip;
/* BatchNormalization's epsilon (norm.c) and per-channel scale and shift, computed once per pass; Clip's
 * bounds (elementwise.c). */
double ng__bn_eps(const ng__gnode *bn);
void ng__bn_coef(const float *g, const float *b, const float *mu, const float *var, double eps, size_t c,
                 float *s, float *t);
void ng__clip_bounds(const ng__gnode *clip, float *lo, float *hi);

/* ---- Helpers for ops (graph.c) ---- */

/* NG_EFORMAT "FILE: node NAME (OP, opset N): MESSAGE". */
int ng__op_error(const ng__gctx *cx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Attributes of the node being set up: an integer, a float, a list of integers (count; NULL when absent). */
int64_t ng__attr_int(const ng__gctx *cx, const char *name, int64_t dflt);
double ng__attr_float(const ng__gctx *cx, const char *name, double dflt);
const int64_t *ng__attr_ints(const ng__gctx *cx, const char *name, size_t *count);
bool ng__attr_has(const ng__gctx *cx, const char *name);
/* NG_EFORMAT naming the first attribute of the node that is not among the NULL-terminated `known`. */
int ng__attr_only(const ng__gctx *cx, const char *const *known);

/* Tensors. */
static inline int64_t ng__ld(ng__ldim d, size_t B) {
  return d.a * (int64_t)B + d.c;
}
static inline bool ng__ld_const(ng__ldim d) {
  return d.a == 0;
}
static inline ng__ldim ng__ldc(int64_t c) {
  ng__ldim d = {0, c};
  return d;
}
/* Linear-dimension arithmetic with overflow checks (false: it overflows; the values come from files). */
static inline bool ng__ld_add(ng__ldim x, ng__ldim y, ng__ldim *r) {
  return !__builtin_add_overflow(x.a, y.a, &r->a) && !__builtin_add_overflow(x.c, y.c, &r->c);
}
static inline bool ng__ld_sub(ng__ldim x, ng__ldim y, ng__ldim *r) {
  return !__builtin_sub_overflow(x.a, y.a, &r->a) && !__builtin_sub_overflow(x.c, y.c, &r->c);
}
/* The product, when it stays linear (one side constant). */
static inline bool ng__ld_mul(ng__ldim x, ng__ldim y, ng__ldim *r) {
  int64_t p, q;
  if (x.a && y.a) return false;
  return !__builtin_mul_overflow(x.a, y.c, &p) && !__builtin_mul_overflow(y.a, x.c, &q) &&
         !__builtin_add_overflow(p, q, &r->a) && !__builtin_mul_overflow(x.c, y.c, &r->c);
}
/* Elements of t for batch B. */
size_t ng__numel(const ng__gt *t, size_t B);
/* The concrete dims of t for batch B. */
void ng__dims(const ng__gt *t, size_t B, int64_t *dims);
/* Input k of the node (NULL when omitted or absent). */
ng__gt *ng__in(ng__gctx *cx, ng__gnode *n, size_t k);
ng__gt *ng__out(ng__gctx *cx, ng__gnode *n, size_t k);
/* The values of an integer constant input (NULL with an error when it is not one; `what` names it). All
 * values must be constant (not depend on the batch) when `constant` is set. */
const ng__ldim *ng__int_input(ng__gctx *cx, ng__gnode *n, size_t k, const char *what, bool constant,
                              size_t *count);
/* A float input that must be a constant scalar (Clip's bounds, a Pow exponent): its value in *v. */
int ng__const_scalar(ng__gctx *cx, ng__gnode *n, size_t k, const char *what, float *v);
/* Sets output k as a float tensor of the given dims. */
void ng__set_float(ng__gt *t, size_t ndim, const ng__ldim *dims);
/* Sets output k as a folded integer tensor owning `vals` (malloc'd, count values). */
void ng__set_int(ng__gt *t, size_t ndim, const ng__ldim *dims, ng__ldim *vals, size_t count);
/* The window attributes Conv and the pools share: strides and dilations (2 values, default 1), pads (4
 * values, default 0), auto_pad NOTSET or VALID (others refused); positive strides and dilations, pads not
 * negative. */
typedef struct {
  int64_t sh, sw, dh, dw, pt, pl, pb, pr;
} ng__window;
int ng__window_attrs(const ng__gctx *cx, ng__window *w);
/* Normalises an axis in [-rank, rank) to [0, rank); -1 with an error when out of range. */
int ng__axis(ng__gctx *cx, int64_t axis, size_t rank, const char *what);

#endif
