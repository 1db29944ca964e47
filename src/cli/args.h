/* Private: a small table-driven parser for the options of one command.
 *
 * Each command declares its options as a table of (name, kind, destination, help); ng_args_parse fills the
 * destinations and reports the first unknown option or malformed value in one line naming it. */
#ifndef NOGRAD_CLI_ARGS_H
#define NOGRAD_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  NG_ARG_FLAG,      /* bool, no value */
  NG_ARG_STRING,    /* const char * */
  NG_ARG_SIZE,      /* size_t, >= 0 */
  NG_ARG_POSINT,    /* size_t, >= 1 */
  NG_ARG_INT64,     /* int64_t */
  NG_ARG_UINT64,    /* uint64_t */
  NG_ARG_DOUBLE,    /* double, finite or +-inf */
  NG_ARG_POSDOUBLE, /* double > 0, finite */
  NG_ARG_LIST       /* repeatable string option: appended to an ng_arg_list */
} ng_arg_kind;

typedef struct {
  const char *items[64];
  size_t count;
} ng_arg_list;

typedef struct {
  const char *name; /* "--dim" */
  ng_arg_kind kind;
  void *dest;
  const char *metavar; /* "N" */
  const char *help;
  bool seen;
  bool no_default; /* --help shows no "(default ...)" (the value before parsing is not the library's) */
  uint64_t max;    /* NG_ARG_SIZE, NG_ARG_POSINT, NG_ARG_UINT64: the largest value accepted, where the library
                    * narrows or multiplies it (NG_OPT_DIM_MAX, INT32_MAX); 0: the type's own */
} ng_arg;

/* --help lists each option with its help and, after it, the value its destination holds before parsing:
 * commands initialize their configuration from the library (ng_*_config_init) before parsing, so that this
 * is the library's default, written in one place. */

/* Parses argv[first..argc) into the table. Returns 0, or 2 (usage error) after printing one line to `err`
 * naming the command, the option and the value at fault. "--help" prints the table to `out` and returns 1. */
int ng_args_parse(const char *command, const char *usage, ng_arg *table, size_t count, int argc, char **argv,
                  int first, FILE *out, FILE *err);

/* After ng_args_parse: whether the command ends here (after --help, with *code set to 0; after a usage error,
 * with *code left at 2). */
bool ng_args_finished(int *code);

/* Parses a comma-separated list of finite numbers into out (at most cap); *count receives how many there
 * were (even beyond cap). Returns 0, or -1 for an empty or malformed list. */
int ng_args_doubles(const char *s, double *out, size_t cap, size_t *count);

/* A vector of n numbers given as one value (repeated n times) or n comma-separated ones. Returns 0, -1 for a
 * malformed list, or the count of values when it is neither 1 nor n. */
int ng_args_vector(const char *s, size_t n, double *out);

/* The command line, words joined by spaces, into buf (len bytes; cut there), for checkpoints and logs. */
void ng_args_command_line(int argc, char **argv, char *buf, size_t len);

/* "a, b, c": a NULL-terminated list of names (from a library table) joined into buf (cut at len). */
void ng_args_join(const char *const *names, char *buf, size_t len);

/* Whether the option named `name` was given. */
bool ng_args_seen(const ng_arg *table, size_t count, const char *name);

/* Whether a model path names an ONNX file (ends in .onnx), as ng_model_read and ng_model_write decide. */
bool ng_cli_onnx_path(const char *path);

#endif
