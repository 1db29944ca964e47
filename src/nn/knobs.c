/* Knobs (include/nograd/knobs.h): the parser of `--params`, the map from a search vector onto a parameter
 * vector, the coordinate names and the --list-params table.
 *
 * Parsing turns the items into a list of segments, each a contiguous range of the parameter vector with its
 * source (x or the base vector) and its fold (the scale, temperature and offsets that multiply or shift it):
 * a tensor item is one segment whose source is x; a layer that is scaled or folded contributes segments for
 * the parts of its weight and bias that no item sets, whose source is the base vector. Applying is then one
 * copy of the base vector and one loop over the segments, each element computed in double and rounded once,
 * with no allocation and no branch on the item kinds. */
#include "nograd/knobs.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/knobs_units.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"

#define ITEM_SHOWN 96 /* characters of an item quoted in a message */
#define NONE SIZE_MAX

typedef enum { K_TENSOR, K_SCALE, K_TEMPERATURE, K_OFFSETS, K_THRESHOLD } knob_kind;

typedef struct {
  knob_kind kind;
  char text[ITEM_SHOWN]; /* as given, for messages */
  size_t xoff, n;        /* its coordinates in x */
  size_t tensor;         /* K_TENSOR: index in the model's tensor index */
  size_t row0, row1;     /* K_TENSOR: rows [row0, row1) of the first dimension */
  size_t unit;           /* K_TEMPERATURE, K_OFFSETS: the unit they fold into (knobs_units.h) */
} knob_item;

/* What multiplies and shifts the parameters of one unit (a dense or conv2d layer; a Conv, Gemm or MatMul
 * node). */
typedef struct {
  size_t scale_x;   /* coordinate of its scale, or NONE */
  size_t temp_x;    /* coordinate of the temperature (last dense layer only), or NONE */
  size_t offsets_x; /* first coordinate of the offsets (last dense layer only), or NONE */
} knob_fold;

typedef struct {
  size_t first, count; /* the parameter range */
  size_t src_x;        /* coordinate of params[first], or NONE: from the base vector */
  size_t fold;         /* index in folds, or NONE */
  size_t bias_off;     /* offset of the bias tensor the range lies in (offsets add per entry), or NONE */
} knob_segment;

struct ng_knobs {
  size_t n, nparams;
  double *x0, *lo, *hi;
  knob_item *items;
  size_t nitems;
  knob_fold *folds;
  size_t nfolds;
  knob_segment *segs;
  size_t nsegs;
  size_t threshold_x;   /* or NONE */
  ng__knob_unit *units; /* what scale:, temperature and offsets fold into */
  size_t nunits;
  size_t *unit_scale; /* per unit: the item that scales it, or NONE */
  /* For coordinate names: the tensor names and shapes of the model's index. */
  ng_tensor *tensors;
  size_t ntensors;
};

/* ---- The model's layers ---- */

static size_t numel(const ng_tensor *t) {
  return t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
}

static size_t find_layer(const ng_model *m, const char *name) {
  for (size_t i = 0; i < m->nlayers; i++)
    if (m->layers[i].name[0] && !strcmp(m->layers[i].name, name)) return i;
  return NONE;
}

static size_t find_tensor(const ng_model *m, const char *name) {
  for (size_t i = 0; i < m->ntensors; i++)
    if (!strcmp(m->tensors[i].name, name)) return i;
  return NONE;
}

/* The unit whose weight or bias tensor t is. */
static size_t unit_of(const ng_knobs *k, size_t t) {
  for (size_t u = 0; u < k->nunits; u++)
    if (k->units[u].weight == t || k->units[u].bias == t) return u;
  return NONE;
}

/* Edit distance, for "did you mean". Names are short (< 80 characters). */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[NG_NN_TNAME_MAX + 1];
  if (la > NG_NN_TNAME_MAX || lb > NG_NN_TNAME_MAX) return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* "did you mean fc3.bias?" or "tensors: conv1.weight, conv1.bias, ..." into buf. */
static void suggest_tensor(const ng_model *m, const char *name, char *buf, size_t len) {
  size_t best = SIZE_MAX, which = NONE;
  for (size_t i = 0; i < m->ntensors; i++) {
    size_t d = distance(name, m->tensors[i].name);
    if (d < best) {
      best = d;
      which = i;
    }
  }
  size_t limit = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
  static const char *const words[] = {"temperature", "offsets", "threshold"};
  const char *word = NULL;
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t d = distance(name, words[i]);
    if (d < best) {
      best = d;
      word = words[i];
    }
  }
  if ((word || which != NONE) && best <= limit) {
    snprintf(buf, len, "did you mean %s?", word ? word : m->tensors[which].name);
    return;
  }
  size_t used = (size_t)snprintf(buf, len, "its tensors include ");
  for (size_t i = 0; i < m->ntensors && i < 4 && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", m->tensors[i].name);
  if (m->ntensors > 4 && used < len) snprintf(buf + used, len - used, ", ...");
  if (m->ntensors == 0) snprintf(buf, len, "it has no tensors");
}

/* "conv1, fc1, fc2" (the layers or modules scale: accepts) into buf. */
static void scalable_layers(const ng_model *m, const ng_knobs *k, char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t u = 0; u < k->nunits && used < len; u++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", u ? ", " : "",
                             m->onnx ? k->units[u].module : k->units[u].name);
  if (!k->nunits)
    snprintf(buf, len, "none: the model has no %s",
             m->onnx ? "Conv, Gemm or MatMul node with a parameter weight" : "dense or conv2d layer");
}

/* ---- Parsing ---- */

static int item_error(int status, const char *item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int item_error(int status, const char *item, const char *fmt, ...) {
  char what[640];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return ng_error(status, "--params '%s': %s", item, what);
}

/* A row number: digits only, the whole of [s, end). */
static int parse_row(const char *s, const char *end, size_t *out) {
  if (s == end) return -1;
  size_t v = 0;
  for (const char *p = s; p < end; p++) {
    if (!isdigit((unsigned char)*p) || v > (SIZE_MAX - 9) / 10) return -1;
    v = 10 * v + (size_t)(*p - '0');
  }
  *out = v;
  return 0;
}

/* NAME, NAME[i], NAME[a:b], NAME[a:], NAME[:b]. */
static int parse_tensor_item(const ng_model *m, const char *text, knob_item *it) {
  char name[NG_NN_TNAME_MAX + 1];
  const char *br = strchr(text, '[');
  size_t nlen = br ? (size_t)(br - text) : strlen(text);
  if (nlen == 0) return item_error(NG_EINVAL, text, "expected a tensor name before '['");
  if (nlen > NG_NN_TNAME_MAX)
    return item_error(NG_ENOTFOUND, text,
                      "no tensor has a name that long (see nograd retrofit --list-params)");
  memcpy(name, text, nlen);
  name[nlen] = '\0';
  for (const char *p = name; *p; p++)
    if (*p == ']' || *p == ':' || isspace((unsigned char)*p))
      return item_error(
          NG_EINVAL, text,
          "malformed item (expected NAME, NAME[a:b], NAME[i], scale:LAYER, temperature, offsets "
          "or threshold)");
  size_t t = find_tensor(m, name);
  if (t == NONE) {
    size_t L = find_layer(m, name);
    if (L != NONE) {
      const ng_layer *ly = &m->layers[L];
      if (ly->kind == NG_L_DENSE || ly->kind == NG_L_CONV2D)
        return item_error(NG_ENOTFOUND, text,
                          "'%s' is a layer, not a tensor: name %s.weight or %s.bias, or scale:%s for one "
                          "multiplier on its output",
                          name, name, name, name);
      return item_error(NG_ENOTFOUND, text,
                        "'%s' is a %s layer, not a tensor: name one of its tensors, e.g. %s", name,
                        ng__knob_kind_word(ly->kind), m->tensors[ly->tensor].name);
    }
    char hint[256];
    suggest_tensor(m, name, hint, sizeof hint);
    return item_error(NG_ENOTFOUND, text,
                      "the model has no tensor '%s'; %s (nograd retrofit --list-params MODEL.h5 lists them)",
                      name, hint);
  }
  const ng_tensor *T = &m->tensors[t];
  size_t rows = T->shape[0];
  it->kind = K_TENSOR;
  it->tensor = t;
  it->row0 = 0;
  it->row1 = rows;
  if (br) {
    const char *close = strchr(br, ']'), *colon = strchr(br, ':');
    if (!close || close[1] != '\0' || (colon && colon > close))
      return item_error(NG_EINVAL, text,
                        "malformed slice (expected %s[a:b] or %s[i], rows of the first dimension)", name,
                        name);
    if (colon) {
      if (colon == br + 1)
        it->row0 = 0;
      else if (parse_row(br + 1, colon, &it->row0))
        return item_error(NG_EINVAL, text, "malformed slice start (expected a row number, 0 to %zu)",
                          rows - 1);
      if (colon + 1 == close)
        it->row1 = rows;
      else if (parse_row(colon + 1, close, &it->row1))
        return item_error(NG_EINVAL, text, "malformed slice end (expected a row number, 1 to %zu)", rows);
      if (it->row1 <= it->row0)
        return item_error(NG_EINVAL, text, "empty slice: [a:b] takes rows a to b-1, so b must exceed a");
    } else {
      if (parse_row(br + 1, close, &it->row0))
        return item_error(NG_EINVAL, text, "malformed row (expected %s[i] with i a row number, 0 to %zu)",
                          name, rows - 1);
      it->row1 = it->row0 + 1;
    }
    if (it->row1 > rows || it->row0 >= rows)
      return item_error(NG_EINVAL, text, "the first dimension of %s has %zu row%s (0 to %zu)", name, rows,
                        rows == 1 ? "" : "s", rows - 1);
  }
  it->n = (it->row1 - it->row0) * (numel(T) / rows);
  return NG_OK;
}

/* Marks unit u as scaled by item `self`; twice is an error naming the earlier item. */
static int mark_scaled(ng_knobs *k, size_t u, size_t self, const char *text) {
  if (k->unit_scale[u] != NONE)
    return item_error(NG_EINVAL, text, "given twice (as '%s')", k->items[k->unit_scale[u]].text);
  k->unit_scale[u] = self;
  return NG_OK;
}

static int parse_scale_item(const ng_model *m, ng_knobs *k, const char *text, knob_item *it) {
  const char *name = text + strlen("scale:");
  char layers[256];
  size_t self = (size_t)(it - k->items), hits = 0;
  scalable_layers(m, k, layers, sizeof layers);
  if (!*name)
    return item_error(NG_EINVAL, text, "expected scale:%s, %s one of: %s", m->onnx ? "NODE" : "LAYER",
                      m->onnx ? "NODE a node or module" : "LAYER", layers);
  it->kind = K_SCALE;
  it->n = 1;
  if (m->onnx) {
    for (size_t u = 0; u < k->nunits; u++)
      if (ng__knob_unit_matches(m, &k->units[u], name)) {
        NG_CALL(mark_scaled(k, u, self, text));
        hits++;
      }
    if (!hits)
      return item_error(NG_ENOTFOUND, text,
                        "no Conv, Gemm or MatMul node of the model is named '%s' or lies in module '%s'; "
                        "scale: takes a node, a module or a module prefix: %s (nograd retrofit --list-params "
                        "MODEL.onnx)",
                        name, name, layers);
    return NG_OK;
  }
  size_t L = find_layer(m, name);
  if (L == NONE) {
    for (size_t i = 0; i < m->nlayers; i++)
      if (!strcmp(ng__knob_kind_word(m->layers[i].kind), name))
        return item_error(
            NG_EINVAL, text,
            "a %s layer has no weights to scale; scale: takes a dense or conv2d layer by name: %s", name,
            layers);
    return item_error(
        NG_ENOTFOUND, text,
        "the model has no layer '%s'; scale: takes a dense or conv2d layer: %s (nograd retrofit "
        "--list-params MODEL.h5)",
        name, layers);
  }
  const ng_layer *ly = &m->layers[L];
  if (ly->kind != NG_L_DENSE && ly->kind != NG_L_CONV2D)
    return item_error(
        NG_EINVAL, text,
        "'%s' is a %s layer; scale: multiplies the weight and bias of a dense or conv2d layer: %s", name,
        ng__knob_kind_word(ly->kind), layers);
  for (size_t u = 0; u < k->nunits; u++)
    if (k->units[u].layer == L) return mark_scaled(k, u, self, text);
  return ng_error(NG_EINTERNAL, "knobs: layer %s has no unit", name);
}

/* The unit temperature and offsets fold into, or NONE with the reason in why. */
static size_t output_unit(const ng_model *m, const ng_knobs *k, char *why, size_t len) {
  return ng__knob_output_unit(m, k->units, k->nunits, why, len);
}

static int parse_item(const ng_model *m, ng_knobs *k, const char *text, knob_item *it, size_t *last) {
  memset(it, 0, sizeof *it);
  snprintf(it->text, sizeof it->text, "%s", text);
  if (!strcmp(text, "temperature") || !strcmp(text, "offsets")) {
    char why[256];
    if (*last == NONE && (*last = output_unit(m, k, why, sizeof why)) == NONE)
      return item_error(NG_EINVAL, text, "%s; %s folds into that %s", why, text, m->onnx ? "node" : "layer");
    it->kind = text[0] == 't' ? K_TEMPERATURE : K_OFFSETS;
    it->n = it->kind == K_TEMPERATURE ? 1 : k->units[*last].outputs;
    it->unit = *last;
    return NG_OK;
  }
  if (!strcmp(text, "threshold")) {
    if (m->out_size != 2)
      return item_error(
          NG_EINVAL, text,
          "the model has %zu output%s; a decision threshold needs a binary classifier (2 outputs)",
          m->out_size, m->out_size == 1 ? "" : "s");
    it->kind = K_THRESHOLD;
    it->n = 1;
    return NG_OK;
  }
  if (!strncmp(text, "scale:", 6)) return parse_scale_item(m, k, text, it);
  return parse_tensor_item(m, text, it);
}

/* Twice the same item, or two tensor items over common rows. */
static int check_overlap(const ng_model *m, const knob_item *a, const knob_item *b) {
  if (!strcmp(a->text, b->text)) return item_error(NG_EINVAL, b->text, "given twice");
  if (a->kind != b->kind) return NG_OK;
  if (a->kind != K_TENSOR || a->tensor != b->tensor || a->row1 <= b->row0 || b->row1 <= a->row0) return NG_OK;
  size_t lo = a->row0 > b->row0 ? a->row0 : b->row0, hi = a->row1 < b->row1 ? a->row1 : b->row1;
  return item_error(NG_EINVAL, b->text,
                    "overlaps '%s' (rows %zu to %zu of %s): each parameter may be named once", a->text, lo,
                    hi - 1, m->tensors[a->tensor].name);
}

/* Splits the spec at commas into items, trimmed. */
static int parse_items(const ng_model *m, const char *spec, ng_knobs *k, size_t *last) {
  size_t cap = 1;
  for (const char *p = spec; *p; p++)
    cap += *p == ',';
  k->items = calloc(cap, sizeof *k->items);
  if (!k->items) return ng_error(NG_ENOMEM, "--params: out of memory");
  const char *s = spec;
  for (;;) {
    const char *end = strchr(s, ',');
    if (!end) end = s + strlen(s);
    while (s < end && isspace((unsigned char)*s))
      s++;
    const char *e = end;
    while (e > s && isspace((unsigned char)e[-1]))
      e--;
    if (e == s)
      return ng_error(NG_EINVAL,
                      "--params '%s': empty item %zu (expected a comma-separated list of items such "
                      "as fc3.bias, conv1.weight[0:4], scale:fc2, temperature, offsets, threshold)",
                      spec, k->nitems + 1);
    char text[ITEM_SHOWN];
    size_t len = (size_t)(e - s);
    if (len >= sizeof text) {
      snprintf(text, sizeof text, "%.*s", (int)sizeof text - 4, s);
      return item_error(NG_EINVAL, text, "item too long (at most %zu characters)", sizeof text - 1);
    }
    memcpy(text, s, len);
    text[len] = '\0';
    knob_item *it = &k->items[k->nitems];
    NG_CALL(parse_item(m, k, text, it, last));
    for (size_t j = 0; j < k->nitems; j++)
      NG_CALL(check_overlap(m, &k->items[j], it));
    it->xoff = k->n;
    k->n += it->n;
    k->nitems++;
    if (!*end) break;
    s = end + 1;
  }
  return NG_OK;
}

/* x0 and the bounds. */
static void fill_start(const ng_model *m, ng_knobs *k) {
  for (size_t i = 0; i < k->nitems; i++) {
    const knob_item *it = &k->items[i];
    double *x0 = k->x0 + it->xoff, *lo = k->lo + it->xoff, *hi = k->hi + it->xoff;
    for (size_t j = 0; j < it->n; j++) {
      lo[j] = -INFINITY;
      hi[j] = INFINITY;
    }
    switch (it->kind) {
      case K_TENSOR: {
        const ng_tensor *T = &m->tensors[it->tensor];
        const float *p = m->params + T->offset + it->row0 * (numel(T) / T->shape[0]);
        for (size_t j = 0; j < it->n; j++)
          x0[j] = (double)p[j];
        break;
      }
      case K_SCALE:
      case K_TEMPERATURE:
        x0[0] = 1;
        lo[0] = NG_KNOBS_POS_MIN;
        hi[0] = NG_KNOBS_POS_MAX;
        break;
      case K_OFFSETS:
        for (size_t j = 0; j < it->n; j++)
          x0[j] = 0;
        break;
      case K_THRESHOLD: {
        double t = ng_model_threshold(m);
        x0[0] = isnan(t) ? 0.5 : t;
        lo[0] = 0;
        hi[0] = 1;
        break;
      }
    }
  }
}

static int add_segment(ng_knobs *k, size_t cap, knob_segment s) {
  if (k->nsegs == cap) return ng_error(NG_EINTERNAL, "knobs: more segments than counted");
  k->segs[k->nsegs++] = s;
  return NG_OK;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

/* The folds (one per scaled or last dense layer) and the segments. */
static int build_segments(const ng_model *m, ng_knobs *k) {
  size_t *fold_of = malloc((k->nunits ? k->nunits : 1) * sizeof *fold_of);
  k->folds = calloc(k->nunits + k->nitems + 1, sizeof *k->folds);
  if (!fold_of || !k->folds) {
    free(fold_of);
    return ng_error(NG_ENOMEM, "--params: out of memory");
  }
  for (size_t u = 0; u < k->nunits; u++)
    fold_of[u] = NONE;
  /* Folds in unit order: the scales first, then temperature and offsets (on the output unit). */
  for (size_t u = 0; u < k->nunits; u++)
    if (k->unit_scale[u] != NONE) {
      fold_of[u] = k->nfolds;
      k->folds[k->nfolds++] = (knob_fold){k->items[k->unit_scale[u]].xoff, NONE, NONE};
    }
  for (size_t i = 0; i < k->nitems; i++) {
    const knob_item *it = &k->items[i];
    if (it->kind != K_TEMPERATURE && it->kind != K_OFFSETS) continue;
    if (fold_of[it->unit] == NONE) {
      fold_of[it->unit] = k->nfolds;
      k->folds[k->nfolds++] = (knob_fold){NONE, NONE, NONE};
    }
    knob_fold *f = &k->folds[fold_of[it->unit]];
    if (it->kind == K_TEMPERATURE) f->temp_x = it->xoff;
    if (it->kind == K_OFFSETS) f->offsets_x = it->xoff;
  }
  /* At most: one segment per tensor item, and per folded tensor one more than the items inside it. */
  size_t cap = 2 * k->nitems + 4 * k->nfolds + 1;
  int st = NG_OK;
  size_t *starts = malloc(2 * (k->nitems + 1) * sizeof *starts);
  k->segs = calloc(cap, sizeof *k->segs);
  if (!starts || !k->segs) {
    st = ng_error(NG_ENOMEM, "--params: out of memory");
    goto done;
  }
  for (size_t i = 0; i < k->nitems; i++) {
    const knob_item *it = &k->items[i];
    if (it->kind != K_TENSOR) continue;
    const ng_tensor *T = &m->tensors[it->tensor];
    size_t u = unit_of(k, it->tensor), f = u == NONE ? NONE : fold_of[u];
    bool bias = f != NONE && it->tensor == k->units[u].bias;
    knob_segment s = {T->offset + it->row0 * (numel(T) / T->shape[0]), it->n, it->xoff, f,
                      bias ? T->offset : NONE};
    NG_TRY(st, add_segment(k, cap, s), done);
  }
  /* The rest of each folded unit's weight and bias, from the base vector. */
  for (size_t L = 0; L < k->nunits; L++) {
    if (fold_of[L] == NONE) continue;
    for (size_t j = 0; j < 2; j++) {
      size_t t = j ? k->units[L].bias : k->units[L].weight, nst = 0;
      if (t == NONE) continue;
      const ng_tensor *T = &m->tensors[t];
      for (size_t i = 0; i < k->nitems; i++)
        if (k->items[i].kind == K_TENSOR && k->items[i].tensor == t) {
          size_t row = numel(T) / T->shape[0];
          starts[nst++] = T->offset + k->items[i].row0 * row;
          starts[nst++] = T->offset + k->items[i].row1 * row;
        }
      /* Disjoint ranges: sorting the bounds keeps each range's pair adjacent. */
      qsort(starts, nst / 2, 2 * sizeof *starts, cmp_size);
      size_t at = T->offset, end = T->offset + numel(T);
      for (size_t r = 0; r <= nst / 2; r++) {
        size_t stop = r < nst / 2 ? starts[2 * r] : end;
        if (stop > at) {
          knob_segment s = {at, stop - at, NONE, fold_of[L], j == 1 ? T->offset : NONE};
          NG_TRY(st, add_segment(k, cap, s), done);
        }
        if (r < nst / 2) at = starts[2 * r + 1];
      }
    }
  }
done:
  free(starts);
  free(fold_of);
  return st;
}

int ng_knobs_parse(const ng_model *m, const char *spec, ng_knobs **out) {
  if (!out) return ng_error(NG_EINVAL, "ng_knobs_parse: out is NULL");
  *out = NULL;
  if (!m) return ng_error(NG_EINVAL, "ng_knobs_parse: model is NULL");
  const char *s = spec ? spec : "";
  while (isspace((unsigned char)*s))
    s++;
  if (!*s)
    return ng_error(NG_EINVAL,
                    "--params: empty (expected a comma-separated list of items such as fc3.bias, "
                    "conv1.weight[0:4], scale:fc2, temperature, offsets, threshold)");
  ng_knobs *k = calloc(1, sizeof *k);
  if (!k) return ng_error(NG_ENOMEM, "--params: out of memory");
  k->nparams = m->nparams;
  k->threshold_x = NONE;
  size_t last = NONE;
  int st = ng__knob_units(m, &k->units, &k->nunits);
  if (st != NG_OK) goto fail;
  if (!(k->unit_scale = malloc((k->nunits ? k->nunits : 1) * sizeof *k->unit_scale))) {
    st = ng_error(NG_ENOMEM, "--params: out of memory");
    goto fail;
  }
  for (size_t u = 0; u < k->nunits; u++)
    k->unit_scale[u] = NONE;
  st = parse_items(m, spec, k, &last);
  if (st != NG_OK) goto fail;
  size_t n = k->n ? k->n : 1;
  k->x0 = malloc(n * sizeof *k->x0);
  k->lo = malloc(n * sizeof *k->lo);
  k->hi = malloc(n * sizeof *k->hi);
  k->tensors = malloc((m->ntensors ? m->ntensors : 1) * sizeof *k->tensors);
  if (!k->x0 || !k->lo || !k->hi || !k->tensors) {
    st = ng_error(NG_ENOMEM, "--params: out of memory for %zu coordinates", k->n);
    goto fail;
  }
  memcpy(k->tensors, m->tensors, m->ntensors * sizeof *k->tensors);
  k->ntensors = m->ntensors;
  fill_start(m, k);
  for (size_t i = 0; i < k->nitems; i++)
    if (k->items[i].kind == K_THRESHOLD) k->threshold_x = k->items[i].xoff;
  NG_TRY(st, build_segments(m, k), fail);
  *out = k;
  return NG_OK;
fail:
  ng_knobs_destroy(&k);
  return st;
}

void ng_knobs_destroy(ng_knobs **kp) {
  if (!kp || !*kp) return;
  ng_knobs *k = *kp;
  free(k->tensors);
  free(k->unit_scale);
  free(k->units);
  free(k->segs);
  free(k->folds);
  free(k->items);
  free(k->hi);
  free(k->lo);
  free(k->x0);
  free(k);
  *kp = NULL;
}

size_t ng_knobs_dim(const ng_knobs *k) {
  return k ? k->n : 0;
}

void ng_knobs_x0(const ng_knobs *k, double *x) {
  memcpy(x, k->x0, k->n * sizeof *x);
}

void ng_knobs_bounds(const ng_knobs *k, double *lo, double *hi) {
  if (lo) memcpy(lo, k->lo, k->n * sizeof *lo);
  if (hi) memcpy(hi, k->hi, k->n * sizeof *hi);
}

bool ng_knobs_has_threshold(const ng_knobs *k) {
  return k && k->threshold_x != NONE;
}

/* ---- Applying ---- */

void ng_knobs_apply(const ng_knobs *k, const float *base_params, const double *x, float *params,
                    double *threshold) {
  memcpy(params, base_params, k->nparams * sizeof *params);
  for (size_t g = 0; g < k->nsegs; g++) {
    const knob_segment *s = &k->segs[g];
    knob_fold f = s->fold == NONE ? (knob_fold){NONE, NONE, NONE} : k->folds[s->fold];
    bool scaled = f.scale_x != NONE, tempered = f.temp_x != NONE,
         shifted = f.offsets_x != NONE && s->bias_off != NONE;
    double scale = scaled ? x[f.scale_x] : 1.0, temp = tempered ? x[f.temp_x] : 1.0;
    for (size_t e = 0; e < s->count; e++) {
      size_t p = s->first + e;
      double v = s->src_x != NONE ? x[s->src_x + e] : (double)base_params[p];
      if (scaled) v *= scale;
      if (tempered) v /= temp;
      if (shifted) v += x[f.offsets_x + (p - s->bias_off)];
      params[p] = (float)v;
    }
  }
  if (threshold) *threshold = k->threshold_x != NONE ? x[k->threshold_x] : NAN;
}

/* ---- Names ---- */

const char *ng_knobs_coord_name(const ng_knobs *k, size_t i, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  snprintf(buf, len, "?");
  if (!k || i >= k->n) return buf;
  const knob_item *it = k->items;
  while (i >= it->xoff + it->n)
    it++;
  size_t j = i - it->xoff;
  switch (it->kind) {
    case K_SCALE:
    case K_TEMPERATURE:
    case K_THRESHOLD:
      snprintf(buf, len, "%s", it->text);
      break;
    case K_OFFSETS:
      snprintf(buf, len, "offsets[%zu]", j);
      break;
    case K_TENSOR: {
      const ng_tensor *T = &k->tensors[it->tensor];
      size_t e = it->row0 * (numel(T) / T->shape[0]) + j, idx[4] = {0, 0, 0, 0};
      for (size_t d = T->ndim; d-- > 0;) {
        idx[d] = e % T->shape[d];
        e /= T->shape[d];
      }
      size_t used = (size_t)snprintf(buf, len, "%s[", T->name);
      for (size_t d = 0; d < T->ndim && used < len; d++)
        used += (size_t)snprintf(buf + used, len - used, "%s%zu", d ? "," : "", idx[d]);
      if (used < len) snprintf(buf + used, len - used, "]");
      break;
    }
  }
  return buf;
}
