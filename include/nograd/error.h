/* Status codes and error messages.
 *
 * Every fallible nograd function returns an int status: 0 (NG_OK) on success, one of the negative codes below
 * otherwise. The code says what kind of failure it was; the message, kept per thread by the function that
 * failed, says which file, option, HDF5 path or value was at fault. Callers that only pass a failure up use
 * NG_CALL and leave the message as it is. */
#ifndef NOGRAD_ERROR_H
#define NOGRAD_ERROR_H

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X-macro table: one line per status, so that the enum and ng_strerror cannot disagree. */
#define NG_STATUS_TABLE(X)                \
  X(NG_OK, 0, "success")                  \
  X(NG_EINVAL, -1, "invalid argument")    \
  X(NG_ENOMEM, -2, "out of memory")       \
  X(NG_EORDER, -3, "call out of order")   \
  X(NG_EIO, -4, "input/output error")     \
  X(NG_EFORMAT, -5, "malformed file")     \
  X(NG_ENOTFOUND, -6, "not found")        \
  X(NG_EMISMATCH, -7, "mismatch")         \
  X(NG_ENUMERIC, -8, "numerical failure") \
  X(NG_EMPI, -9, "MPI error")             \
  X(NG_EHDF5, -10, "HDF5 error")          \
  X(NG_EUSAGE, -11, "usage error")        \
  X(NG_ECORRUPT, -12, "corrupt file")     \
  X(NG_EINTERNAL, -13, "internal error")

typedef enum {
#define NG_STATUS_ENUM(name, value, text) name = value,
  NG_STATUS_TABLE(NG_STATUS_ENUM)
#undef NG_STATUS_ENUM
} ng_status;

/* The fixed description of a status code ("invalid argument"); never NULL. Not collective. */
NG_EXPORT const char *ng_strerror(int status);

/* Records the message of the failure being returned, printf-style, and returns `status` so that a
 * function can write `return ng_error(NG_EINVAL, "--dim: expected a positive integer, got '%s'", s);`.
 * The message is kept per thread until the next call. Not collective. */
NG_EXPORT int ng_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message of the last ng_error on this thread, or "" if there was none. Not collective. */
NG_EXPORT const char *ng_errmsg(void);

/* Clears the message of this thread. */
NG_EXPORT void ng_error_clear(void);

/* Returns early with the status of `expr` when it is not NG_OK; the message is left as the callee set it. */
#define NG_CALL(expr)                                 \
  do {                                                \
    int ng_call_status_ = (expr);                     \
    if (ng_call_status_ != 0) return ng_call_status_; \
  } while (0)

/* Same, but jumps to a cleanup label with the status stored in `st` (the goto-cleanup pattern). */
#define NG_TRY(st, expr, label) \
  do {                          \
    (st) = (expr);              \
    if ((st) != 0) goto label;  \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
