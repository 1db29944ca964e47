/* External evaluators: the public interface for programs and libraries that score nograd's candidates.
 *
 * nograd minimizes a loss it cannot always compute itself (a game score, BLEU, a person's rating). An
 * external evaluator computes it, in one of two forms, chosen with `--evaluator`:
 *
 *   exec:PROGRAM [ARGS...]   a separate process per rank, spoken to through binary frames on its stdin and
 *                            stdout (the "frame format" below). It may crash or hang without harming nograd:
 *                            its candidates get NaN losses and it is restarted, up to a limit.
 *   plugin:LIB.so [OPTS...]  a shared library loaded into each rank with dlopen, called through the table
 *                            of functions below (the "plugin ABI"). Fast, but a crash in it is a crash of
 *                            nograd.
 *
 * This header is self-contained: it needs neither libnograd nor MPI, so an evaluator or a plugin is built
 * with nothing but a C compiler (`cc -shared -fPIC -I PREFIX/include my_plugin.c -o my_plugin.so`). It may
 * be included from C++. tools/evaluators/ holds an example of each form and README.md, which describes both
 * with examples.
 *
 * A candidate is n float64 values. A loss is a float64; lower is better; NaN means "could not be scored"
 * and is passed on to the optimizer as such. The data may be cut into chunks (nchunks >= 1): a request asks
 * for the losses of m candidates on one chunk; the loss nograd optimizes for a candidate is
 *   (sum over chunks of loss) / (sum over chunks of count),
 * where count is 1 per chunk unless the evaluator supplies counts (the number of examples in the chunk, say),
 * so that a loss summed over a chunk's examples averages correctly over chunks of different sizes.
 *
 * What a candidate means depends on the run. Without a model (`nograd retrofit --dim N --x0 V`), it is a
 * plain search vector, and the model path is empty (exec) or NULL (plugin). With a model (`nograd retrofit
 * MODEL.h5 --params SPEC --evaluator ...`), it is the knob vector of SPEC, in the order SPEC names its items
 * (nograd/knobs.h: tensor values, multipliers for scale: and temperature, offsets added to the logits, a
 * threshold), and the start is the model's current values; the model path (HELLO's, or init's model_path)
 * names MODEL.h5 as given on nograd's command line (relative to nograd's working directory, which an exec
 * evaluator inherits). The evaluator reads the model itself and applies the vector to it; nograd does not
 * write a model per candidate.
 *
 * A request's generation counts from 0. `nograd retrofit` also scores its start once before the search (one
 * request per chunk, candidate index 0, generation NG_FRAME_GENERATION_START = 2^64 - 1, outside the budget),
 * so that it can return the model unchanged when no candidate beats it.
 *
 * ---------------------------------------------------------------------------------------------------------
 * Frame format, version 1 (exec:). All integers are unsigned little-endian; all reals are IEEE-754 binary64
 * little-endian; there is no padding. Every frame starts with a 16-byte header for nograd's frames and with
 * a 4-byte magic and a 4-byte type for the evaluator's:
 *
 *   nograd -> evaluator (stdin)                    evaluator -> nograd (stdout)
 *   header   magic "NGEV" | u32 type | u64 length  (length: bytes of the body that follows)
 *
 *   HELLO (type 1), once at start:                 HELLO reply (type 0x81), 16 bytes:
 *     u32 version (1)                                "NGEV" | u32 0x81 | u32 version (1) | u32 flags
 *     u32 n (dimension)                              flags bit 0 (NG_FRAME_FLAG_COUNTS): every EVAL reply
 *     u32 nchunks                                    carries (loss, count) pairs instead of losses; the
 *     u32 rank, u32 nranks (the MPI rank, size)      other bits must be 0.
 *     u32 L, then L bytes: the model file's path
 *       (UTF-8, no terminating NUL; L = 0: none)
 *
 *   EVAL (type 2), per request:                    EVAL reply (type 0x82):
 *     u64 generation (2^64 - 1: the start)           "NGEV" | u32 0x82 | u32 seq | u32 m
 *     u32 chunk (0 <= chunk < nchunks)               then m float64 losses, candidate by candidate, or
 *     u32 seq (request number, from 0 per process)   with NG_FRAME_FLAG_COUNTS m pairs (loss, count),
 *     u32 first (of x's candidates, the first's       count finite and >= 0.
 *         index within its generation)               seq and m must echo the request's.
 *     u32 m (candidates), u32 n, u32 reserved (0)
 *     then m*n float64: candidate k is values [k*n, (k+1)*n); the values start at byte 48 of the frame.
 *
 *   BYE (type 3, length 0), at the end: no reply; the evaluator should exit with status 0.
 *
 * The length field lets an evaluator skip a frame type it does not know; the version in HELLO is the one
 * nograd speaks, and the evaluator must answer with the same or nograd stops with a clear message. An
 * evaluator must write nothing but frames to stdout (logs go to stderr, which nograd passes through), must
 * flush stdout after each reply, and must exit when its stdin reaches end of file (nograd then is gone).
 * nograd treats as a failure of the request, gives its candidates NaN losses and restarts the evaluator
 * (up to a limit, then stops with a message naming what happened): an exit or a signal, a reply that is not
 * complete within the timeout, and a reply that breaks the format (wrong magic, type, seq or m, a bad count,
 * bytes after the reply).
 *
 * ---------------------------------------------------------------------------------------------------------
 * Plugin ABI, version 1 (plugin:). The library exports one function with C linkage,
 *
 *   const ng_plugin_v1 *nograd_plugin_v1(void);
 *
 * (the macro NG_PLUGIN_ENTRY_V1 below spells its name) returning a pointer to a table that lives as long
 * as the library. nograd checks abi_version == NG_PLUGIN_ABI_VERSION and struct_size >=
 * sizeof(ng_plugin_v1) before it calls anything else. One rank calls init once, evaluate many times,
 * finish once, all from one thread; each call gets the context init made, so a plugin needs no globals.
 * A nonzero return is a failure: nograd stops the run with the message the plugin wrote into err (a
 * NUL-terminated string of at most errlen bytes). A candidate the plugin cannot score gets a NaN loss
 * instead, and the run goes on. */
#ifndef NOGRAD_PLUGIN_H
#define NOGRAD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- the frame format (exec:) --- */
#define NG_FRAME_MAGIC "NGEV"         /* the first 4 bytes of every frame, both ways */
#define NG_FRAME_VERSION 1u           /* the version this header describes */
#define NG_FRAME_HELLO 1u             /* nograd -> evaluator */
#define NG_FRAME_EVAL 2u              /* nograd -> evaluator */
#define NG_FRAME_BYE 3u               /* nograd -> evaluator */
#define NG_FRAME_HELLO_REPLY 0x81u    /* evaluator -> nograd */
#define NG_FRAME_EVAL_REPLY 0x82u     /* evaluator -> nograd */
#define NG_FRAME_FLAG_COUNTS 1u       /* HELLO reply flag: EVAL replies carry (loss, count) pairs */
#define NG_FRAME_HEADER_BYTES 16u     /* magic, type, u64 body length */
#define NG_FRAME_EVAL_BODY_BYTES 32u  /* EVAL body before the candidates' values */
#define NG_FRAME_HELLO_BODY_BYTES 24u /* HELLO body before the model path */
#define NG_FRAME_REPLY_BYTES 16u      /* either reply's fixed part */

/* The generation of a start point that nograd scores once before the search (EVAL, and a plugin's batch). */
#define NG_FRAME_GENERATION_START UINT64_MAX

/* --- the plugin ABI (plugin:) --- */
#define NG_PLUGIN_ABI_VERSION 1u
#define NG_PLUGIN_ENTRY_V1 "nograd_plugin_v1" /* the symbol nograd looks up */

/* What init is told. The pointers are valid during init only: copy what must be kept. */
typedef struct ng_plugin_init_args {
  uint32_t n;             /* the dimension of a candidate */
  uint32_t nchunks;       /* chunks of the data; requests name one in [0, nchunks) */
  int32_t rank, nranks;   /* this MPI rank and the number of ranks (0 and 1 without MPI) */
  const char *model_path; /* the model file, or NULL when the run has none */
  int argc;               /* the words after the library's path in "plugin:LIB.so WORD WORD..." */
  const char *const *argv;
} ng_plugin_init_args;

/* One request: m candidates of generation `generation` on chunk `chunk`. */
typedef struct ng_plugin_batch {
  uint64_t generation; /* from 0; NG_FRAME_GENERATION_START for a start scored before the search */
  uint32_t chunk;
  uint32_t first;  /* index of x's first candidate within its generation */
  uint32_t m, n;   /* candidates, and values per candidate */
  const double *x; /* m*n values, row-major: candidate k at x + k*n */
} ng_plugin_batch;

typedef struct ng_plugin_v1 {
  uint32_t abi_version; /* NG_PLUGIN_ABI_VERSION */
  uint32_t struct_size; /* sizeof(ng_plugin_v1) */
  const char *name;     /* a short name, informational; may be NULL */
  /* Sets up one rank's evaluator and stores its context in *ctx (may stay NULL). Returns 0, or nonzero with
   * a message in err. */
  int (*init)(void **ctx, const ng_plugin_init_args *args, char *err, size_t errlen);
  /* Writes the loss of each of batch->m candidates into losses[0..m). counts[0..m) holds 1.0 on entry; a
   * plugin that sums a loss over a chunk's examples may store their number there (finite, >= 0). Returns 0,
   * or nonzero with a message in err. */
  int (*evaluate)(void *ctx, const ng_plugin_batch *batch, double *losses, double *counts, char *err,
                  size_t errlen);
  /* Releases the context; called once, also after a failed evaluate (not after a failed init). May be NULL.
   */
  void (*finish)(void *ctx);
} ng_plugin_v1;

/* The entry point's type, for nograd and for plugins that want to check their own definition. */
typedef const ng_plugin_v1 *(*ng_plugin_entry_v1)(void);

#ifdef __cplusplus
}
#endif
#endif
