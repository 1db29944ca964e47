/* External evaluators: losses computed by another program (exec:) or a loaded library (plugin:).
 *
 * An evaluator belongs to one rank. It is opened once with a spec, asked for the losses of a batch of
 * candidates on one chunk as many times as needed, and closed. The protocol it speaks with a program, and
 * the ABI of a plugin, are public and documented in nograd/plugin.h and tools/evaluators/README.md.
 *
 *   exec:PROGRAM [ARGS...]   PROGRAM is started once (posix_spawnp: no shell; a name without '/' is looked
 *                            up in PATH) in a process group of its own, with pipes on its stdin and stdout.
 *                            The spec is split on blanks (space, tab, newline): no quotes, no escapes, no
 *                            variables. A caller with an argument that contains blanks passes the words in
 *                            cfg->argv instead (then the spec may be just "exec:").
 *   plugin:LIB.so [WORDS...] LIB.so is loaded with dlopen (RTLD_NOW | RTLD_LOCAL). A name without '/' that
 *                            exists in the current directory is loaded from there; otherwise dlopen's
 *                            search applies. The words go to the plugin's init as argc/argv.
 *
 * Failures of an exec evaluator are absorbed up to a limit: when the program exits or is killed by a
 * signal, when no complete reply arrives within cfg->timeout seconds, or when the reply breaks the frame
 * format, the candidates of that request get NaN losses, the process (group) is killed with SIGKILL and
 * reaped, a new one is started, and ng_evaluator_eval returns NG_OK. The (max_restarts + 1)-th failure over
 * the evaluator's life returns NG_EIO with a message naming the spec, what happened (exit status, signal,
 * timeout, the byte at which the reply went wrong) and the request; so does every later call. SIGPIPE is
 * blocked in the calling thread while it writes, and a SIGPIPE raised by a write is consumed, so a dead
 * evaluator never kills the caller. No process outlives ng_evaluator_close, and no descriptor leaks (the
 * pipes are close-on-exec in nograd).
 *
 * A plugin runs in the caller's process: a plugin that crashes takes the rank with it, and a nonzero return
 * of its evaluate is an error (NG_EIO with the plugin's message), not a restart.
 *
 * None of these functions is collective, and none is thread-safe on one evaluator; the caller agrees on
 * statuses across ranks (ng_engine_agree) and adds the rank to messages. */
#ifndef NOGRAD_EVALUATOR_H
#define NOGRAD_EVALUATOR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nograd/export.h"
#include "nograd/objective.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What becomes of an exec evaluator's stderr. */
typedef enum {
  NG_EVAL_STDERR_INHERIT = 0, /* nograd's own stderr, unchanged (the default) */
  NG_EVAL_STDERR_PREFIX = 1,  /* each line is written to nograd's stderr as "[SPEC rank R] line"; the last
                               * line is quoted in failure messages. Read while nograd waits for a reply: an
                               * evaluator that writes more than a pipe holds (64 KiB) between requests
                               * waits until the next one. */
  NG_EVAL_STDERR_DISCARD = 2  /* /dev/null */
} ng_evaluator_stderr;

#define NG_EVALUATOR_DEFAULT_TIMEOUT 60.0 /* seconds per request */
#define NG_EVALUATOR_DEFAULT_RESTARTS 3

typedef struct {
  size_t n;               /* dimension of a candidate, 1 <= n < 2^32 */
  size_t nchunks;         /* chunks of the data, >= 1 */
  const char *model_path; /* told to the evaluator; NULL: none */
  int rank, nranks;       /* told to the evaluator and used in stderr prefixes */
  double timeout;         /* seconds for one request (write and complete reply), > 0; INFINITY: none */
  double start_timeout; /* seconds for start and HELLO, > 0; 0: the request timeout (so --eval-timeout bounds
                         * a program that never answers HELLO) */
  int max_restarts;     /* restarts allowed over the evaluator's life, >= 0 */
  ng_evaluator_stderr stderr_mode;
  FILE *log; /* one line per failed request and per restart, so that absorbed failures are seen; NULL: none */
  /* exec: the program and its arguments, NULL-terminated; when not NULL it replaces the spec's words, and
   * the spec is only the "exec:" prefix (anything after it is an error, to avoid two sources of truth). */
  const char *const *argv;
} ng_evaluator_config;

typedef struct {
  int64_t requests;   /* calls of ng_evaluator_eval with m >= 1 */
  int64_t candidates; /* candidates asked for */
  int64_t failures;   /* requests that failed (crash, timeout, garbled reply) */
  int64_t restarts;   /* processes started after the first */
  int64_t nan_losses; /* NaN losses returned: the failed requests' and those the evaluator sent */
  double seconds;     /* wall time spent in ng_evaluator_eval */
} ng_evaluator_stats;

typedef struct ng_evaluator ng_evaluator;

/* Fills a configuration with the defaults: n 0 (must be set), nchunks 1, no model, rank 0 of 1, timeout
 * NG_EVALUATOR_DEFAULT_TIMEOUT, start_timeout 0 (the timeout), NG_EVALUATOR_DEFAULT_RESTARTS, stderr
 * inherited, log stderr. */
NG_EXPORT void ng_evaluator_config_init(ng_evaluator_config *cfg);

/* Starts an evaluator from its spec ("exec:PROGRAM ARGS", "plugin:LIB.so WORDS"). For exec it starts the
 * program and exchanges HELLO frames; for plugin it loads the library, checks its ABI and calls init.
 * NG_EINVAL: a spec without a known prefix, no program, a bad configuration; NG_ENOTFOUND: a program that
 * cannot be started (named, with the reason), a library dlopen refuses (with dlerror's text), a library
 * without the entry symbol; NG_EMISMATCH: a HELLO reply of another version or an ABI version nograd does
 * not speak; NG_EIO: a program that fails during HELLO (exit, signal, timeout, garbage), a plugin's init
 * failing (with its message); NG_ENOMEM. On failure *out is NULL and nothing is left running. */
NG_EXPORT int ng_evaluator_open(const char *spec, const ng_evaluator_config *cfg, ng_evaluator **out);

/* Writes the losses of the m candidates x[0..m*n) (row-major) of generation `generation` on chunk `chunk`
 * into losses[0..m), and, when counts is not NULL, their counts into counts[0..m) (1 unless the evaluator
 * supplies them; 1 for a failed request). `first` is the index of x's first candidate within its
 * generation, passed on to the evaluator. m = 0 does nothing. A failed request that is within the restart
 * limit gives NaN losses and NG_OK (see the top of this file). NG_EINVAL: chunk >= nchunks, m >= 2^32, a
 * NULL array; NG_EIO: the restart limit was passed (the losses are NaN) or a plugin's evaluate failed;
 * NG_ENOMEM. */
NG_EXPORT int ng_evaluator_eval(ng_evaluator *ev, const double *x, size_t m, uint64_t generation,
                                size_t chunk, size_t first, double *losses, double *counts);

/* Ends the evaluator: exec sends BYE, closes the pipes, waits up to min(timeout, 5 s) for the program to
 * exit, then kills its process group and reaps it; plugin calls finish and dlclose. Accepts NULL and clears
 * the pointer. */
NG_EXPORT void ng_evaluator_close(ng_evaluator **ev);

/* The counters so far. */
NG_EXPORT void ng_evaluator_get_stats(const ng_evaluator *ev, ng_evaluator_stats *out);

/* The spec as given ("exec:./score.py --fast"), for messages. */
NG_EXPORT const char *ng_evaluator_spec(const ng_evaluator *ev);

/* The bridge to the engine (nograd/objective.h): fills obj's n, nchunks, eval, eval_batch and ctx (load NULL,
 * nstats 0). The engine calls eval_batch, so all of a rank's candidates of a chunk travel in one request
 * (one frame, one plugin call; `first` is the first one's index in the generation); each loss is the
 * chunk's sum and its count the count. eval, one candidate per request, gives the same numbers at one round
 * trip each (about 13 us with the C example, see tools/bench). The objective lives as long as ev. */
NG_EXPORT void ng_evaluator_objective(ng_evaluator *ev, ng_objective *obj);

/* The process id of a running exec evaluator, or -1 (plugin, or none running). For tests and diagnostics. */
NG_EXPORT long ng_evaluator_pid(const ng_evaluator *ev);

#ifdef __cplusplus
}
#endif
#endif
