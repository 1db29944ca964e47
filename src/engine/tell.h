/* Private: the engine's side of a tell by blocks (opt/tell_dist.h): which rank holds which rows, the plan's
 * parts, the binomial tree of the shares, and the new best candidate's x (protocol.h). */
#ifndef NOGRAD_ENGINE_TELL_H
#define NOGRAD_ENGINE_TELL_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/watch.h"
#include "nograd/opt.h"

typedef struct {
  MPI_Comm comm;    /* not owned */
  ng__watch *watch; /* not owned, on comm: its deadline covers every message of the exchange */
  int rank, groups, shards;
  size_t n, lambda;
  /* buffers kept between generations */
  double **shares; /* one share per tell block this rank owns */
  size_t nshares, share_width;
  double *recv, *scratch; /* a share received up the tree; ng__tell_share's scratch */
  double *planbuf;        /* the plan's parts: rank 0's to send, or the one this owner receives */
  size_t planbuf_cap;
  int64_t plan_bytes; /* what this rank sent of the plan in the last exchange */
} ng__teller;

/* For the grid of `groups` groups of `shards` ranks over comm, its messages waited for under watch (set up
 * on comm). Not collective. */
void ng__teller_init(ng__teller *t, MPI_Comm comm, ng__watch *watch, int groups, int shards, size_t n);
void ng__teller_free(ng__teller *t);

/* The rows rank r holds in a tell by blocks of lambda on more than one rank (their steps come from the
 * sliced factor, slices.h): its own candidates and, for shard 0 of a group, the rest of the tell blocks it
 * owns, [*a, *e) (empty when r has no candidate). Not collective. */
void ng__tell_span(const ng__teller *t, size_t lambda, int r, size_t *a, size_t *e);

/* Allocates what this rank needs for a tell by blocks of lambda candidates. NG_ENOMEM. Not collective. */
int ng__tell_reserve(ng__teller *t, size_t lambda);

/* Collective, after rank 0 filled its plan (ng__opt_tell_begin; lambda -1 ends the tell), when every owner of
 * tell blocks holds their rows (ng__tell_span; on one process, all of them): rank 0 sends every other owner
 * its blocks' part of the plan; the owners compute their blocks' shares and add them up the tree, so that
 * rank 0 receives their sum V (ng__tell_width(n) doubles) and, when plan[NG_PLAN_FETCH] names a candidate,
 * its x (n doubles, made from its step by the owner of its block with the generation's sampler s) in x_best.
 * A rank that owns no block takes no part. Z and Y hold this rank's draws and steps from row w0; plan:
 * ng__tell_plan_len(lambda) doubles on every rank. The lambda is that of the last ng__tell_reserve. NG_EMPI,
 * NG_ENOMEM. */
int ng__tell_exchange(ng__teller *t, double *plan, size_t w0, double *Z, double *Y, const ng_sampler *s,
                      double *V, double *x_best);

#endif
