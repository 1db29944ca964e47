/* The engine's side of a tell by blocks (tell.h, opt/tell_dist.h, protocol.h).
 *
 * Candidate k is evaluated by group g(k); the holder of k is shard 0 of that group. Tell block b
 * (NG_TELL_BLOCK candidates) is owned by the holder of its first candidate, which received the draws and
 * steps of the whole block with its own (slices.h: ng__tell_span). Rank 0 sends the owners their parts of the
 * plan; owners compute their blocks' shares and add them up the binomial tree of tell_dist.h; rank 0 owns
 * block 0 and ends with the sum. Every owner only looks at its own blocks; rank 0 sends one part per owner.
 */
#include "engine/tell.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/protocol.h"
#include "engine/reduce.h"
#include "nograd/engine.h"
#include "nograd/error.h"
#include "opt/sampler_impl.h"
#include "opt/tell_dist.h"

void ng__teller_init(ng__teller *t, MPI_Comm comm, ng__watch *watch, int groups, int shards, size_t n) {
  memset(t, 0, sizeof *t);
  t->comm = comm;
  t->watch = watch;
  MPI_Comm_rank(comm, &t->rank);
  t->groups = groups;
  t->shards = shards;
  t->n = n;
}

void ng__teller_free(ng__teller *t) {
  for (size_t i = 0; i < t->nshares; i++)
    free(t->shares[i]);
  free(t->shares);
  free(t->recv);
  free(t->scratch);
  free(t->planbuf);
  memset(t, 0, sizeof *t);
}

/* The exchange's messages wait under the stall watch (watch.h) when it is active: a rank that stops in the
 * middle of the tell is named, and past --stall-abort the job ends, instead of rank 0 hanging in a receive.
 */
static int t_recv(ng__teller *t, double *buf, size_t count, int src, int tag, const char *what) {
  return ng__watch_recv(t->watch, buf, (int)count, MPI_DOUBLE, src, tag, what);
}

static int t_send(ng__teller *t, const double *buf, size_t count, int dest, int tag, const char *what) {
  return ng__watch_send(t->watch, buf, (int)count, MPI_DOUBLE, dest, tag, what);
}

/* Completes every request of req[0..nreq), the first error kept. */
static int t_wait_all(ng__teller *t, MPI_Request *req, size_t nreq, const char *what) {
  int st = NG_OK;
  for (size_t i = 0; i < nreq; i++) { /* one wait each: MPICH's header annotates MPI_Waitall as writing
                                       * statuses even when they are ignored, and GCC then warns */
    int w = ng__watch_wait(t->watch, &req[i], what);
    if (st == NG_OK) st = w;
  }
  return st;
}

/* Tests only (tests/mpi/test_stall.py): NOGRAD_TEST_TELL_PAUSE=RANK:GENERATION:SECONDS makes that rank stop
 * for that long in that generation's tell, before it sends its shares up the tree. */
static void test_pause(const ng__teller *t) {
  const char *v = getenv("NOGRAD_TEST_TELL_PAUSE");
  int rank;
  long long gen;
  double secs;
  if (!v || sscanf(v, "%d:%lld:%lf", &rank, &gen, &secs) != 3 || rank != t->rank ||
      gen != (long long)t->watch->generation || !(secs > 0 && secs < 3600))
    return;
  struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
  nanosleep(&ts, NULL);
}

/* The rank that holds candidate k: shard 0 of its group. */
static int holder(const ng__teller *t, size_t k) {
  return (int)ng__block_of(t->lambda, (size_t)t->groups, k) * t->shards;
}

void ng__tell_span(const ng__teller *t, size_t lambda, int r, size_t *a, size_t *e) {
  size_t first, count, B = NG_TELL_BLOCK;
  ng_engine_block(lambda, (size_t)t->groups, (size_t)(r / t->shards), &first, &count);
  *a = first;
  *e = first + count;
  if (!count || r % t->shards) return;
  size_t b0 = (first + B - 1) / B, b1 = (first + count - 1) / B + 1; /* the blocks that start here */
  if (b1 > b0) {
    size_t end = b1 * B < lambda ? b1 * B : lambda;
    if (end > *e) *e = end;
  }
}

/* The tell blocks rank owns: [*b0, *b1). */
static void owned_blocks(const ng__teller *t, size_t *b0, size_t *b1) {
  size_t g = (size_t)(t->rank / t->shards), first, count, B = NG_TELL_BLOCK;
  ng_engine_block(t->lambda, (size_t)t->groups, g, &first, &count);
  *b0 = *b1 = 0;
  if (!count || t->rank % t->shards) return;
  *b0 = (first + B - 1) / B;
  *b1 = (first + count - 1) / B + 1;
  if (*b1 < *b0) *b1 = *b0;
}

static int owner(const ng__teller *t, size_t b) {
  return holder(t, b * NG_TELL_BLOCK);
}

static int grow_shares(ng__teller *t, size_t count, size_t width) {
  if (width != t->share_width) {
    for (size_t i = 0; i < t->nshares; i++)
      free(t->shares[i]);
    free(t->shares);
    free(t->recv);
    free(t->scratch);
    t->shares = NULL;
    t->recv = t->scratch = NULL;
    t->nshares = 0;
    t->share_width = width;
  }
  if (count > t->nshares) {
    double **s = realloc(t->shares, count * sizeof *s);
    if (!s) return ng_error(NG_ENOMEM, "out of memory for %zu tell shares", count);
    t->shares = s;
    for (size_t i = t->nshares; i < count; i++)
      t->shares[i] = NULL;
    for (; t->nshares < count; t->nshares++) /* one allocation each: SMPI may share larger buffers */
      if (!(t->shares[t->nshares] = malloc(width * sizeof(double))))
        return ng_error(NG_ENOMEM, "out of memory for a tell share of %zu doubles", width);
  }
  size_t plan_len =
      ng__tell_plan_len(t->lambda) + NG_PLAN_HEAD * ng__tell_blocks(t->lambda); /* rank 0's parts */
  if (plan_len > t->planbuf_cap) {
    free(t->planbuf);
    t->planbuf = malloc(plan_len * sizeof(double));
    t->planbuf_cap = t->planbuf ? plan_len : 0;
    if (!t->planbuf) return ng_error(NG_ENOMEM, "out of memory for the plan of %zu candidates", t->lambda);
  }
  if (!count) return NG_OK; /* the rest is for the owners of tell blocks only: 12 n^2 bytes at large n */
  if (!t->recv) t->recv = malloc(width * sizeof(double));
  if (!t->scratch) t->scratch = malloc(ng__tell_scratch_len(t->n) * sizeof(double));
  if (!t->recv || !t->scratch)
    return ng_error(NG_ENOMEM, "out of memory for the tell of dimension %zu", t->n);
  return NG_OK;
}

int ng__tell_reserve(ng__teller *t, size_t lambda) {
  size_t b0, b1;
  t->lambda = lambda;
  owned_blocks(t, &b0, &b1);
  return grow_shares(t, b1 - b0, ng__tell_width(t->n));
}

/* The plan goes from rank 0 to every other owner of tell blocks, one message each with the part for its
 * blocks (protocol.h): O(lambda / NG_TELL_BLOCK) messages of O(lambda) doubles in all, sent at once, instead
 * of a tree whose levels the shares' way up would wait for in turn. Rank 0's plan is whole; an owner's holds
 * its blocks' entries at their places (the rest is left as it was). A part: the head, then the weights, then
 * the ranks of its candidates. */
static int scatter_plan(ng__teller *t, double *plan, size_t b0, size_t b1, size_t nb) {
  size_t lambda = t->lambda, B = NG_TELL_BLOCK, HEAD = NG_PLAN_HEAD;
  double *w = plan + HEAD, *pos = w + lambda, *buf = t->planbuf;
  if (t->rank != 0) {
    size_t lo = b0 * B, hi = b1 * B < lambda ? b1 * B : lambda, count = hi - lo;
    NG_CALL(t_recv(t, buf, HEAD + 2 * count, 0, NG_TAG_PLAN, "receiving the plan of the tell"));
    memcpy(plan, buf, HEAD * sizeof *buf);
    if (plan[NG_PLAN_LAMBDA] < 0) return NG_OK; /* rank 0 could not rank: nothing follows */
    memcpy(w + lo, buf + HEAD, count * sizeof *buf);
    memcpy(pos + lo, buf + HEAD + count, count * sizeof *buf);
    return NG_OK;
  }
  MPI_Request *req = malloc(nb * sizeof *req);
  size_t nreq = 0;
  int st = req ? NG_OK : ng_error(NG_ENOMEM, "out of memory");
  for (size_t b = b1, e; st == NG_OK && b < nb; b = e) { /* rank 0 owns [0, b1) */
    int dest = owner(t, b);
    for (e = b + 1; e < nb && owner(t, e) == dest;)
      e++;
    size_t lo = b * B, hi = e * B < lambda ? e * B : lambda, count = hi - lo, len = HEAD + 2 * count;
    memcpy(buf, plan, HEAD * sizeof *buf);
    memcpy(buf + HEAD, w + lo, count * sizeof *buf);
    memcpy(buf + HEAD + count, pos + lo, count * sizeof *buf);
    st = ng__mpi_status(MPI_Isend(buf, (int)len, MPI_DOUBLE, dest, NG_TAG_PLAN, t->comm, &req[nreq++]),
                        "sending the plan of the tell");
    t->plan_bytes += (int64_t)(len * sizeof *buf);
    buf += len;
  }
  int wst = t_wait_all(t, req, nreq, "sending the plan of the tell");
  free(req);
  return st != NG_OK ? st : wst;
}

int ng__tell_exchange(ng__teller *t, double *plan, size_t w0, double *Z, double *Y, const ng_sampler *s,
                      double *V, double *x_best) {
  size_t n = t->n, lambda = t->lambda, B = NG_TELL_BLOCK;
  size_t nb = ng__tell_blocks(lambda), width = ng__tell_width(n), b0, b1;
  owned_blocks(t, &b0, &b1);
  t->plan_bytes = 0;
  int st = grow_shares(t, b1 - b0, width), wst;
  if (st != NG_OK) return st;
  if (b1 > b0) st = scatter_plan(t, plan, b0, b1, nb);
  if (st != NG_OK || b1 == b0 || plan[NG_PLAN_LAMBDA] < 0) return st;
  for (size_t b = b0; b < b1; b++)
    ng__tell_share(plan, b, Z + (b * B - w0) * n, Y + (b * B - w0) * n, t->shares[b - b0], t->scratch);

  test_pause(t);
  /* the tree: at each step, first every send of this rank, then every receive */
  MPI_Request *sreq = malloc((b1 - b0 + 1) * sizeof *sreq);
  size_t nsreq = 0, w = nb > 1 ? width : 2 * n;
  if (!sreq) st = ng_error(NG_ENOMEM, "out of memory");
  for (size_t step = 1; st == NG_OK && step < nb; step *= 2) {
    for (size_t b = b0; st == NG_OK && b < b1; b++)
      if (b % (2 * step) == step && owner(t, b - step) != t->rank)
        st = ng__mpi_status(MPI_Isend(t->shares[b - b0], (int)w, MPI_DOUBLE, owner(t, b - step), NG_TAG_SHARE,
                                      t->comm, &sreq[nsreq++]),
                            "sending a tell share");
    for (size_t b = b0; st == NG_OK && b < b1; b++) {
      if (b % (2 * step) || b + step >= nb) continue;
      int src = owner(t, b + step);
      const double *v = src == t->rank ? t->shares[b + step - b0] : t->recv;
      if (src != t->rank) st = t_recv(t, t->recv, w, src, NG_TAG_SHARE, "receiving a tell share");
      if (st == NG_OK) ng__tell_add(w, t->shares[b - b0], v);
    }
  }
  wst = t_wait_all(t, sreq, nsreq, "sending a tell share");
  if (st == NG_OK) st = wst;
  free(sreq);
  if (st == NG_OK && t->rank == 0) memcpy(V, t->shares[0], w * sizeof *V);

  /* the new best candidate's x: the owner of its block has its step, and makes it as its evaluator did */
  double fetch = plan[NG_PLAN_FETCH];
  if (st == NG_OK && fetch >= 0 && (size_t)fetch / B >= b0 && (size_t)fetch / B < b1) {
    size_t k = (size_t)fetch;
    double *x = t->rank == 0 ? x_best : t->recv;
    ng_sampler_gauss_finish(s, Y + (k - w0) * n, 1, x);
    if (t->rank != 0) st = t_send(t, x, n, 0, NG_TAG_BEST, "sending the best candidate");
  } else if (st == NG_OK && fetch >= 0 && t->rank == 0) {
    st = t_recv(t, x_best, n, owner(t, (size_t)fetch / B), NG_TAG_BEST, "receiving the best candidate");
  }
  return st;
}
