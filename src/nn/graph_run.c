/* The graph executor's workspace and forward pass (src/nn/graph.h).
 *
 * The workspace is one arena of floats planned for the maximum batch: every computed tensor that is not an
 * alias (a reshape of another) gets an offset, first fit among the ranges of tensors whose last reader has
 * run, so that memory follows the graph's width, not its depth; plus the largest scratch any node asks for.
 * A pass sets each tensor's pointer (the caller's input, the caller's parameter vector, a constant of the
 * graph or the arena) and runs the nodes in order; nothing is allocated. */
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nn/graph_impl.h"
#include "nograd/error.h"

#define ALIGN_FLOATS 16 /* 64 bytes */

struct ng__graph_work {
  const ng__graph *gr;
  size_t max_batch;
  uint64_t seed, step; /* the training Dropout's key */
  int moved;           /* an arena tensor a partial pass pointed at its caller's memory, or -1 */
  size_t *off;         /* per tensor: offset in the arena (NG__T_ACT owners) */
  float **ptr;         /* per tensor, for the pass */
  float *arena;        /* activations, then scratch */
  size_t scratch_off;
};

typedef struct {
  size_t off, len;
  int until; /* the node after which it is free */
} block;

static size_t round_up(size_t n) {
  return (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* First-fit plan; the arena's length in *total. The tensors in keep (and the ones whose memory they are)
 * are never freed. */
static int plan(const ng__graph *gr, size_t B, const int *keep, size_t nkeep, size_t *off, size_t *total) {
  block *live = calloc(gr->nt + 1, sizeof *live);
  bool *kept = calloc(gr->nt + 1, sizeof *kept);
  if (!live || !kept) {
    free(live);
    free(kept);
    return ng_error(NG_ENOMEM, "%s: out of memory", gr->path);
  }
  for (size_t k = 0; k < nkeep; k++)
    for (int t = keep[k]; t >= 0 && (size_t)t < gr->nt; t = gr->t[t].alias)
      kept[t] = true;
  size_t nlive = 0, end = 0;
  for (size_t i = 0; i < gr->nnodes; i++) {
    const ng__gnode *n = &gr->nodes[i];
    if (n->folded) continue;
    size_t w = 0;
    for (size_t b = 0; b < nlive; b++) /* free what the earlier nodes were the last to read */
      if (live[b].until >= (int)i) live[w++] = live[b];
    nlive = w;
    for (size_t k = 0; k < n->nout; k++) {
      int t = n->out[k];
      if (t < 0 || gr->t[t].kind != NG__T_ACT || gr->t[t].alias >= 0) continue;
      size_t len = round_up(ng__numel(&gr->t[t], B)), at = 0;
      int until = kept[t] ? INT32_MAX : gr->t[t].last_use < 0 ? (int)i : gr->t[t].last_use;
      /* live sorted by offset: the first gap that fits */
      size_t pos = 0;
      for (; pos < nlive; pos++) {
        if (live[pos].off >= at + len) break;
        if (live[pos].off + live[pos].len > at) at = live[pos].off + live[pos].len;
      }
      memmove(&live[pos + 1], &live[pos], (nlive - pos) * sizeof *live);
      live[pos] = (block){at, len, until};
      nlive++;
      off[t] = at;
      if (at + len > end) end = at + len;
    }
  }
  free(live);
  free(kept);
  *total = end;
  return NG_OK;
}

int ng__graph_work_create(const ng__graph *gr, size_t max_batch, const int *keep, size_t nkeep,
                          ng__graph_work **out) {
  if (!out) return ng_error(NG_EINVAL, "ng__graph_work_create: out is NULL");
  *out = NULL;
  if (!gr || max_batch == 0) return ng_error(NG_EINVAL, "ng__graph_work_create: a graph and max_batch >= 1");
  ng__graph_work *w = calloc(1, sizeof *w);
  if (!w) return ng_error(NG_ENOMEM, "%s: out of memory for a workspace", gr->path);
  w->gr = gr;
  w->max_batch = max_batch;
  w->moved = -1;
  w->off = calloc(gr->nt + 1, sizeof *w->off);
  w->ptr = calloc(gr->nt + 1, sizeof *w->ptr);
  size_t total = 0, scratch = 0;
  int st = NG_OK;
  if (!w->off || !w->ptr) goto nomem;
  NG_TRY(st, plan(gr, max_batch, keep, nkeep, w->off, &total), fail);
  for (size_t i = 0; i < gr->nnodes; i++) {
    ng__ldim d = gr->nodes[i].scratch;
    int64_t cap = gr->nodes[i].scratch_cap, s;
    if (cap > 0 && (d.c >= cap || (d.a > 0 && (int64_t)max_batch > (cap - d.c) / d.a)))
      s = cap; /* and a*B + c is not computed, so it cannot overflow */
    else
      s = ng__ld(d, max_batch);
    if (s > 0 && (size_t)s > scratch) scratch = (size_t)s;
  }
  w->scratch_off = total;
  if (!ng__add(total, round_up(scratch), &total) ||
      !(w->arena = ng__mallocn(total ? total : 1, 1, sizeof(float))))
    goto nomem;
  /* Constants and the arena's tensors keep their place; the input and parameters are set per pass. */
  for (size_t t = 0; t < gr->nt; t++) {
    if (gr->t[t].kind == NG__T_CONST) w->ptr[t] = gr->t[t].fdata;
    if (gr->t[t].kind == NG__T_ACT && gr->t[t].alias < 0) w->ptr[t] = w->arena + w->off[t];
  }
  *out = w;
  return NG_OK;
nomem:
  st = ng_error(NG_ENOMEM, "%s: out of memory for a workspace of batch %zu", gr->path, max_batch);
fail:
  ng__graph_work_destroy(&w);
  return st;
}

void ng__graph_work_destroy(ng__graph_work **wp) {
  if (!wp || !*wp) return;
  free((*wp)->off);
  free((*wp)->ptr);
  free((*wp)->arena);
  free(*wp);
  *wp = NULL;
}

/* Gives an arena tensor that an earlier partial pass pointed elsewhere its own memory back, and points the
 * parameters at the caller's vector. */
static void bind(const ng__graph *gr, ng__graph_work *w, const float *params) {
  if (w->moved >= 0) w->ptr[w->moved] = w->arena + w->off[w->moved];
  w->moved = -1;
  for (size_t e = 0; e < gr->nentries; e++) {
    int t = gr->param_tensors[e];
    w->ptr[t] = (float *)(uintptr_t)(params + gr->t[t].offset); /* read only */
  }
}

static void run(const ng__graph *gr, ng__graph_work *w, size_t from, size_t to, size_t batch) {
  ng__run r = {batch, w->ptr, w->arena + w->scratch_off, w->seed, w->step};
  for (size_t i = from; i < to; i++) {
    const ng__gnode *n = &gr->nodes[i];
    if (!n->folded) n->op->run(n, gr, &r);
  }
}

static int check_pass(const ng__graph *gr, const ng__graph_work *w, const float *params, const float *x,
                      size_t batch, const char *fn) {
  if (!gr || !w || !params || (!x && batch)) return ng_error(NG_EINVAL, "%s: NULL argument", fn);
  if (w->gr != gr) return ng_error(NG_EINVAL, "%s: the workspace was made for another graph", fn);
  if (batch > w->max_batch)
    return ng_error(NG_EINVAL, "%s: batch %zu is larger than the workspace's %zu", fn, batch, w->max_batch);
  return NG_OK;
}

int ng__graph_forward(const ng__graph *gr, const float *params, ng__graph_work *w, const float *x,
                      size_t batch, const float **out) {
  if (!out) return ng_error(NG_EINVAL, "ng__graph_forward: NULL argument");
  NG_CALL(check_pass(gr, w, params, x, batch, "ng__graph_forward"));
  bind(gr, w, params);
  w->ptr[gr->input] = (float *)(uintptr_t)x; /* read only */
  if (batch == 0) {
    *out = w->arena;
    return NG_OK;
  }
  run(gr, w, 0, gr->nnodes, batch);
  *out = w->ptr[gr->output];
  return NG_OK;
}

int ng__graph_run_nodes(const ng__graph *gr, const float *params, ng__graph_work *w, size_t from, size_t to,
                        int in, const float *x, size_t batch) {
  NG_CALL(check_pass(gr, w, params, x, batch, "ng__graph_run_nodes"));
  if (from > to || to > gr->nnodes || in < 0 || (size_t)in >= gr->nt)
    return ng_error(NG_EINVAL, "ng__graph_run_nodes: nodes [%zu, %zu) of %zu, tensor %d", from, to,
                    gr->nnodes, in);
  bind(gr, w, params);
  if (gr->t[in].kind == NG__T_ACT && gr->t[in].alias < 0) w->moved = in;
  w->ptr[in] = (float *)(uintptr_t)x; /* read only */
  if (batch) run(gr, w, from, to, batch);
  return NG_OK;
}

const float *ng__graph_work_ptr(const ng__graph_work *w, int t) {
  return t >= 0 && (size_t)t < w->gr->nt ? w->ptr[t] : NULL;
}

void ng__graph_work_set_dropout(ng__graph_work *w, uint64_t seed, uint64_t step) {
  w->seed = seed;
  w->step = step;
}
