/* Private: what travels between the ranks in one generation, in one place.
 *
 *   rank 0 -> all   MPI_Ibcast header (MPI_BYTE, sizeof(ng_gen_header)), completed under the stall watch
 *   rank 0 -> all   MPI_Bcast  explicit: lambda*n doubles (the candidates)
 *                              seeded:   n doubles (mean), then factor_len doubles when factor_len > 0,
 *                                        then 2n doubles (lower, upper) when bounds == 1
 *   all -> rank 0   MPI_Igather ng_gen_trailer (MPI_BYTE) from every rank, under the stall watch
 *   all -> rank 0   MPI_Igatherv partials: for the rank's candidates x chunks, candidate-major, w doubles
 *                              each (w = the objective's nstats, or 2 for a (sum, count) pair), under the watch
 *   failing rank -> rank 0  MPI_Send NG_TAG_ERROR: its error message (NG_ERRMSG_LEN bytes)
 *   rank 0 <-> rank        NG_TAG_ROLL_CALL / NG_TAG_ROLL_ANSWER: only in a wait past half a stall limit
 *                              (watch.h)
 *
 * The ranks run one binary on one kind of machine, so structs travel as bytes. */
#ifndef NOGRAD_ENGINE_PROTOCOL_H
#define NOGRAD_ENGINE_PROTOCOL_H

#include <stdint.h>

#define NG_TAG_ERROR 101  /* an error message for rank 0 */
#define NG_ERRMSG_LEN 512 /* bytes of a forwarded error message */

enum { NG_HDR_CONTINUE = 0, NG_HDR_DONE = 1, NG_HDR_ERROR = 2, NG_HDR_SIGNAL = 3 };

typedef struct {
  int64_t status;         /* NG_HDR_*: anything but CONTINUE ends the loop on every rank */
  int64_t lambda;         /* candidates in this generation */
  int64_t generation;     /* keys the sampling streams and the noise of noisy objectives */
  int64_t seeded;         /* 1: regenerate the candidates; 0: they follow */
  int64_t kind;           /* ng_sampler_kind */
  int64_t factor_version; /* of the factor the ranks must use */
  int64_t factor_len;     /* > 0: a new factor follows */
  int64_t bounds;         /* 1: lower and upper bounds follow */
  int64_t gaussian;       /* SPSA directions */
  int64_t center;         /* SPSA: centring stride of the directions (0: off) */
  int64_t signal;         /* NG_HDR_SIGNAL: which signal */
  uint64_t seed;
  double sigma;
} ng_gen_header;

typedef struct {
  int32_t status; /* NG_OK, or the rank's error status (its message follows with NG_TAG_ERROR) */
  int32_t signal; /* a signal this rank received, or 0 */
} ng_gen_trailer;

#endif
