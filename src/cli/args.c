/* The option parser shared by every command: strict, so that a typo is an error and not a silent default. */
#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool parse_u64(const char *s, uint64_t *v) {
  if (!*s || *s == '-' || *s == '+') return false;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *v = x;
  return true;
}

static bool parse_i64(const char *s, int64_t *v) {
  char *end;
  errno = 0;
  long long x = strtoll(s, &end, 10);
  if (!*s || errno || *end) {
    /* accept a float written in exponent form that is a whole number, like 1e6 */
    double d = strtod(s, &end);
    if (!*s || *end || d != floor(d) || fabs(d) > 9e18) return false;
    x = (long long)d;
  }
  *v = x;
  return true;
}

static bool parse_double(const char *s, double *v) {
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (!*s || *end || isnan(x) || (errno == ERANGE && isinf(x) == 0 && x != 0)) return false;
  *v = x;
  return true;
}

/* The value an option holds before parsing, which is the library's default (commands initialize their
 * configuration from the library before parsing): "" when there is none to show. */
static void default_text(const ng_arg *a, char *buf, size_t len) {
  buf[0] = '\0';
  if (!a->dest || a->no_default) return;
  switch (a->kind) {
    case NG_ARG_STRING:
      if (*(const char *const *)a->dest) snprintf(buf, len, "%s", *(const char *const *)a->dest);
      break;
    case NG_ARG_SIZE:
    case NG_ARG_POSINT:
      snprintf(buf, len, "%zu", *(const size_t *)a->dest);
      break;
    case NG_ARG_UINT64:
      snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)a->dest);
      break;
    case NG_ARG_INT64:
      snprintf(buf, len, "%lld", (long long)*(const int64_t *)a->dest);
      break;
    case NG_ARG_DOUBLE:
    case NG_ARG_POSDOUBLE:
      snprintf(buf, len, "%g", *(const double *)a->dest);
      break;
    case NG_ARG_FLAG:
    case NG_ARG_LIST:
      break;
  }
}

static void print_help(const char *command, const char *usage, const ng_arg *table, size_t count, FILE *out) {
  fprintf(out, "usage: nograd %s %s\n\noptions:\n", command, usage);
  for (size_t i = 0; i < count; i++) {
    char left[64], def[96];
    snprintf(left, sizeof left, "%s%s%s", table[i].name, table[i].metavar ? " " : "",
             table[i].metavar ? table[i].metavar : "");
    default_text(&table[i], def, sizeof def);
    fprintf(out, "  %-26s %s%s%s%s\n", left, table[i].help, def[0] ? " (default " : "", def,
            def[0] ? ")" : "");
  }
  fprintf(out, "  %-26s %s\n", "--help", "print this help and exit");
}

int ng_args_parse(const char *command, const char *usage, ng_arg *table, size_t count, int argc, char **argv,
                  int first, FILE *out, FILE *err) {
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      print_help(command, usage, table, count, out);
      return 1;
    }
    char name[64];
    const char *inline_value = NULL, *eq = strchr(a, '=');
    if (strncmp(a, "--", 2) == 0 && eq && (size_t)(eq - a) < sizeof name) {
      memcpy(name, a, (size_t)(eq - a));
      name[eq - a] = '\0';
      inline_value = eq + 1;
    } else {
      snprintf(name, sizeof name, "%s", a);
    }
    ng_arg *opt = NULL;
    for (size_t k = 0; k < count; k++)
      if (strcmp(table[k].name, name) == 0) opt = &table[k];
    if (!opt) {
      fprintf(err, "nograd %s: unknown %s '%s' (see nograd %s --help)\n", command,
              a[0] == '-' ? "option" : "argument", a, command);
      return 2;
    }
    opt->seen = true;
    if (opt->kind == NG_ARG_FLAG) {
      if (inline_value) {
        fprintf(err, "nograd %s: %s takes no value\n", command, opt->name);
        return 2;
      }
      *(bool *)opt->dest = true;
      continue;
    }
    const char *v = inline_value;
    if (!v) {
      if (i + 1 >= argc) {
        fprintf(err, "nograd %s: %s needs a value (%s)\n", command, opt->name,
                opt->metavar ? opt->metavar : "");
        return 2;
      }
      v = argv[++i];
    }
    bool ok = true;
    const char *expect = "";
    uint64_t u = 0;
    int64_t s;
    double d;
    switch (opt->kind) {
      case NG_ARG_STRING:
        ok = *v != '\0';
        expect = "a non-empty value";
        if (ok) *(const char **)opt->dest = v;
        break;
      case NG_ARG_LIST: {
        ng_arg_list *l = opt->dest;
        size_t cap = sizeof l->items / sizeof l->items[0];
        ok = *v != '\0' && l->count < cap;
        expect = l->count < cap ? "a non-empty value" : "at most 64 of them";
        if (ok) l->items[l->count++] = v;
        break;
      }
      case NG_ARG_SIZE:
      case NG_ARG_POSINT:
        ok = parse_u64(v, &u) && (opt->kind == NG_ARG_SIZE || u >= 1);
        expect = opt->kind == NG_ARG_SIZE ? "a non-negative integer" : "a positive integer";
        if (ok) *(size_t *)opt->dest = (size_t)u;
        break;
      case NG_ARG_UINT64:
        ok = parse_u64(v, &u);
        expect = "a non-negative integer";
        if (ok) *(uint64_t *)opt->dest = u;
        break;
      case NG_ARG_INT64:
        ok = parse_i64(v, &s);
        expect = "an integer";
        if (ok) *(int64_t *)opt->dest = s;
        break;
      case NG_ARG_DOUBLE:
        ok = parse_double(v, &d);
        expect = "a number";
        if (ok) *(double *)opt->dest = d;
        break;
      case NG_ARG_POSDOUBLE:
        ok = parse_double(v, &d) && d > 0 && isfinite(d);
        expect = "a positive number";
        if (ok) *(double *)opt->dest = d;
        break;
      case NG_ARG_FLAG:
        break;
    }
    if (ok && opt->max &&
        (opt->kind == NG_ARG_SIZE || opt->kind == NG_ARG_POSINT || opt->kind == NG_ARG_UINT64) &&
        u > opt->max) {
      fprintf(err, "nograd %s: %s: expected %s of at most %llu, got '%s'\n", command, opt->name, expect,
              (unsigned long long)opt->max, v);
      return 2;
    }
    if (!ok) {
      fprintf(err, "nograd %s: %s: expected %s, got '%s'\n", command, opt->name, expect, v);
      return 2;
    }
  }
  return 0;
}

bool ng_args_seen(const ng_arg *table, size_t count, const char *name) {
  for (size_t k = 0; k < count; k++)
    if (strcmp(table[k].name, name) == 0) return table[k].seen;
  return false;
}

bool ng_args_finished(int *code) {
  if (*code == 1) {
    *code = 0; /* --help: printed, a success */
    return true;
  }
  return *code != 0;
}

int ng_args_doubles(const char *s, double *out, size_t cap, size_t *count) {
  *count = 0;
  if (!s || !*s) return -1;
  const char *p = s;
  for (;;) {
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v) || (*end && *end != ',')) return -1;
    if (*count < cap) out[*count] = v;
    (*count)++;
    if (!*end) return 0;
    p = end + 1;
  }
}

int ng_args_vector(const char *s, size_t n, double *out) {
  size_t count;
  if (ng_args_doubles(s, out, n, &count) != 0) return -1;
  if (count == 1) {
    for (size_t i = 1; i < n; i++)
      out[i] = out[0];
    return 0;
  }
  return count == n ? 0 : (int)count;
}

void ng_args_command_line(int argc, char **argv, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; i < argc && used < len - 1; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? " " : "", argv[i]);
}

void ng_args_join(const char *const *names, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; names[i] && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
}

bool ng_cli_onnx_path(const char *path) {
  size_t n = path ? strlen(path) : 0;
  return n > 5 && strcmp(path + n - 5, ".onnx") == 0;
}
