/* A small growable list of named arrays. States hold tens of entries, so lookups are linear scans. */
#include "nograd/state.h"

#include <stdlib.h>
#include <string.h>

#include "nograd/error.h"

typedef struct {
  char *name;
  ng_state_type type;
  size_t len;
  void *values; /* double[len], int64_t[len], or a string NUL-padded to len 8-byte words */
} entry;

struct ng_state {
  entry *entries;
  size_t count, capacity;
};

int ng_state_create(ng_state **out) {
  *out = calloc(1, sizeof **out);
  return *out ? NG_OK : ng_error(NG_ENOMEM, "state: out of memory");
}

void ng_state_destroy(ng_state **st) {
  if (!st || !*st) return;
  for (size_t i = 0; i < (*st)->count; i++) {
    free((*st)->entries[i].name);
    free((*st)->entries[i].values);
  }
  free((*st)->entries);
  free(*st);
  *st = NULL;
}

static entry *find(const ng_state *st, const char *name) {
  for (size_t i = 0; i < st->count; i++)
    if (strcmp(st->entries[i].name, name) == 0) return &st->entries[i];
  return NULL;
}

static int put(ng_state *st, const char *name, ng_state_type type, const void *values, size_t len) {
  if (!name || !*name) return ng_error(NG_EINVAL, "state: an entry needs a name");
  size_t bytes = len * 8; /* every type is a whole number of 8-byte words */
  void *copy = malloc(bytes ? bytes : 1);
  if (!copy) return ng_error(NG_ENOMEM, "state: out of memory for '%s' (%zu values)", name, len);
  if (len) memcpy(copy, values, bytes);
  entry *e = find(st, name);
  if (!e) {
    if (st->count == st->capacity) {
      size_t cap = st->capacity ? 2 * st->capacity : 32;
      entry *grown = realloc(st->entries, cap * sizeof *grown);
      if (!grown) {
        free(copy);
        return ng_error(NG_ENOMEM, "state: out of memory");
      }
      st->entries = grown;
      st->capacity = cap;
    }
    e = &st->entries[st->count];
    e->name = strdup(name);
    if (!e->name) {
      free(copy);
      return ng_error(NG_ENOMEM, "state: out of memory");
    }
    st->count++;
  } else {
    free(e->values);
  }
  e->type = type;
  e->len = len;
  e->values = copy;
  return NG_OK;
}

int ng_state_put_f64(ng_state *st, const char *name, const double *values, size_t len) {
  return put(st, name, NG_STATE_F64, values, len);
}

int ng_state_put_i64(ng_state *st, const char *name, const int64_t *values, size_t len) {
  return put(st, name, NG_STATE_I64, values, len);
}

int ng_state_put_str(ng_state *st, const char *name, const char *value) {
  size_t chars = strlen(value), words = chars / 8 + 1; /* at least one NUL */
  char *padded = calloc(words, 8);
  if (!padded) return ng_error(NG_ENOMEM, "state: out of memory for '%s'", name ? name : "");
  memcpy(padded, value, chars);
  int st_ = put(st, name, NG_STATE_STR, padded, words);
  free(padded);
  return st_;
}

int ng_state_put_scalar(ng_state *st, const char *name, double value) {
  return put(st, name, NG_STATE_F64, &value, 1);
}

int ng_state_put_int(ng_state *st, const char *name, int64_t value) {
  return put(st, name, NG_STATE_I64, &value, 1);
}

static const char *type_name(ng_state_type type) {
  return type == NG_STATE_F64 ? "float64" : type == NG_STATE_I64 ? "int64" : "a string";
}

static int get(const ng_state *st, const char *name, ng_state_type type, void *values, size_t len) {
  const entry *e = find(st, name);
  if (!e) return ng_error(NG_ENOTFOUND, "state: no entry '%s'", name);
  if (e->type != type)
    return ng_error(NG_EMISMATCH, "state: entry '%s' is %s, expected %s", name, type_name(e->type),
                    type_name(type));
  if (e->len != len)
    return ng_error(NG_EMISMATCH, "state: entry '%s' has %zu values, expected %zu", name, e->len, len);
  if (len) memcpy(values, e->values, len * 8);
  return NG_OK;
}

int ng_state_get_f64(const ng_state *st, const char *name, double *values, size_t len) {
  return get(st, name, NG_STATE_F64, values, len);
}

int ng_state_get_i64(const ng_state *st, const char *name, int64_t *values, size_t len) {
  return get(st, name, NG_STATE_I64, values, len);
}

int ng_state_get_scalar(const ng_state *st, const char *name, double *value) {
  return get(st, name, NG_STATE_F64, value, 1);
}

int ng_state_get_int(const ng_state *st, const char *name, int64_t *value) {
  return get(st, name, NG_STATE_I64, value, 1);
}

int ng_state_get_str(const ng_state *st, const char *name, const char **value) {
  const entry *e = find(st, name);
  if (!e) return ng_error(NG_ENOTFOUND, "state: no entry '%s'", name);
  if (e->type != NG_STATE_STR)
    return ng_error(NG_EMISMATCH, "state: entry '%s' is %s, expected a string", name, type_name(e->type));
  *value = e->values;
  return NG_OK;
}

size_t ng_state_count(const ng_state *st) {
  return st->count;
}

int ng_state_entry(const ng_state *st, size_t i, const char **name, ng_state_type *type, size_t *len,
                   const void **values) {
  if (i >= st->count) return ng_error(NG_EINVAL, "state: entry %zu out of range (%zu entries)", i, st->count);
  const entry *e = &st->entries[i];
  if (name) *name = e->name;
  if (type) *type = e->type;
  if (len) *len = e->len;
  if (values) *values = e->values;
  return NG_OK;
}

int ng_state_length(const ng_state *st, const char *name, size_t *len) {
  const entry *e = find(st, name);
  if (!e) return ng_error(NG_ENOTFOUND, "state: no entry '%s'", name);
  *len = e->len;
  return NG_OK;
}
