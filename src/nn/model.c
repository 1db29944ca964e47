/* Models: the spec parser (layers, shapes, the named-tensor index), PyTorch's default initialisation, copies
 * and the small accessors. The format of a spec is in include/nograd/nn.h; this file is its one reader.
 *
 * Parsing resolves every shape once, so that the forward pass and the file reader only look numbers up. The
 * tensor index is built in spec order with each tensor contiguous, which is what makes a model's parameter
 * vector the concatenation of PyTorch's state_dict tensors in the same order. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "nn/kernels.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"

#define MAX_TOKENS 16
#define LINE_SHOWN 160 /* characters of a spec line quoted in a message */
/* The most values one activation, one convolution's column block or one tensor may hold: BLAS takes its
 * sizes as int, and a spec's shapes are products of numbers from a file, which must not wrap. */
#define SPEC_SIZE_MAX ((size_t)INT32_MAX)
#define SPEC_PARAMS_MAX \
  ((size_t)1 << 53) /* the whole parameter vector: exact as a double, and times 8 fits */

typedef struct {
  int line;
  char text[LINE_SHOWN]; /* the line without its comment, for messages */
  char *tok[MAX_TOKENS];
  int ntok;
} spec_line;

static int spec_error(const spec_line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int spec_error(const spec_line *l, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return ng_error(NG_EINVAL, "spec line %d: '%s': %s", l->line, l->text, what);
}

/* A positive (or, with allow_zero, non-negative) integer that is the whole token. */
static int parse_size(const spec_line *l, const char *what, const char *s, int allow_zero, size_t *out) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = isdigit((unsigned char)s[0]) ? strtoull(s, &end, 10) : 0;
  if (!end || *end || errno || (!allow_zero && v == 0) || v > (1ull << 31))
    return spec_error(l, "%s: expected a %s integer, got '%s'", what,
                      allow_zero ? "non-negative" : "positive", s);
  *out = (size_t)v;
  return NG_OK;
}

static int parse_real(const spec_line *l, const char *what, const char *s, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno || !isfinite(v))
    return spec_error(l, "%s: expected a number, got '%s'", what, s);
  *out = v;
  return NG_OK;
}

/* Splits the layer's tokens after the keyword into positional arguments and key=value options, and checks
 * that the counts and option names are the ones the layer takes. */
typedef struct {
  const char *pos[MAX_TOKENS];
  int npos;
  const char *key[MAX_TOKENS], *val[MAX_TOKENS];
  int nopt;
} layer_args;

static int split_args(const spec_line *l, int npos, const char *const *keys, layer_args *a) {
  memset(a, 0, sizeof *a);
  for (int i = 1; i < l->ntok; i++) {
    char *eq = strchr(l->tok[i], '=');
    if (!eq) {
      if (a->nopt) return spec_error(l, "positional argument '%s' after an option", l->tok[i]);
      a->pos[a->npos++] = l->tok[i];
      continue;
    }
    *eq = '\0';
    int known = 0;
    for (const char *const *k = keys; k && *k; k++)
      if (!strcmp(*k, l->tok[i])) known = 1;
    if (!known) {
      int st = spec_error(l, "unknown option '%s' for %s", l->tok[i], l->tok[0]);
      *eq = '=';
      return st;
    }
    a->key[a->nopt] = l->tok[i];
    a->val[a->nopt++] = eq + 1;
  }
  if (a->npos != npos)
    return spec_error(l, "%s takes %d argument%s, got %d", l->tok[0], npos, npos == 1 ? "" : "s", a->npos);
  return NG_OK;
}

static const char *option(const layer_args *a, const char *key) {
  const char *v = NULL;
  for (int i = 0; i < a->nopt; i++)
    if (!strcmp(a->key[i], key)) v = a->val[i];
  return v;
}

static int check_name(const spec_line *l, const ng_model *m, const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len >= NG_NN_NAME_MAX - 16)
    return spec_error(l, "layer name '%s' must have 1 to %d characters", name, NG_NN_NAME_MAX - 17);
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
      return spec_error(l, "layer name '%s': only letters, digits, '_' and '-' are allowed", name);
  for (size_t i = 0; i < m->nlayers; i++)
    if (!strcmp(m->layers[i].name, name))
      return spec_error(l, "layer name '%s' is already used on line %d", name, m->layers[i].line);
  return NG_OK;
}

static int add_tensor(ng_model *m, ng_layer *L, const char *suffix, size_t ndim, size_t d0, size_t d1,
                      size_t d2, size_t d3) {
  ng_tensor *t = realloc(m->tensors, (m->ntensors + 1) * sizeof *t);
  if (!t) return ng_error(NG_ENOMEM, "model: out of memory for the tensor index");
  m->tensors = t;
  t = &m->tensors[m->ntensors];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s.%s", L->name, suffix);
  t->ndim = ndim;
  size_t dims[4] = {d0, d1, d2, d3}, n = 1;
  for (size_t i = 0; i < 4; i++) {
    t->shape[i] = i < ndim ? dims[i] : 1;
    n *= t->shape[i];
  }
  t->offset = m->nparams;
  if (L->ntensors == 0) L->tensor = m->ntensors;
  L->off[L->ntensors++] = t->offset;
  m->ntensors++;
  m->nparams += n;
  return NG_OK;
}

static const struct {
  const char *word;
  ng_layer_kind kind;
} layer_words[] = {{"conv2d", NG_L_CONV2D},   {"maxpool", NG_L_MAXPOOL},     {"avgpool", NG_L_AVGPOOL},
                   {"flatten", NG_L_FLATTEN}, {"dense", NG_L_DENSE},         {"relu", NG_L_RELU},
                   {"gelu", NG_L_GELU},       {"tanh", NG_L_TANH},           {"sigmoid", NG_L_SIGMOID},
                   {"softmax", NG_L_SOFTMAX}, {"batchnorm", NG_L_BATCHNORM}, {"layernorm", NG_L_LAYERNORM},
                   {"dropout", NG_L_DROPOUT}, {"residual", NG_L_RESIDUAL},   {"end", NG_L_END}};

static void set_out(ng_layer *L, size_t ndim, size_t a, size_t b, size_t c) {
  L->out_ndim = ndim;
  L->out_shape[0] = a;
  L->out_shape[1] = ndim == 3 ? b : 1;
  L->out_shape[2] = ndim == 3 ? c : 1;
  L->out_size = ndim == 3 ? a * b * c : a;
}

static const char *shape_str(size_t ndim, const size_t *s, char *buf, size_t size) {
  if (ndim == 3)
    snprintf(buf, size, "%zu x %zu x %zu", s[0], s[1], s[2]);
  else
    snprintf(buf, size, "%zu", s[0]);
  return buf;
}

/* One layer line: resolves its output shape from L->in_* and adds its tensors. */
static int parse_layer(ng_model *m, const spec_line *l, ng_layer *L, size_t *stack, size_t *depth) {
  layer_args a;
  static const char *const conv_keys[] = {"stride", "padding", NULL};
  static const char *const pool_keys[] = {"stride", NULL};
  static const char *const eps_keys[] = {"eps", NULL};
  char sb[64];
  int image = L->in_ndim == 3;
  switch (L->kind) {
    case NG_L_CONV2D:
    case NG_L_MAXPOOL:
    case NG_L_AVGPOOL: {
      int conv = L->kind == NG_L_CONV2D;
      NG_CALL(split_args(l, conv ? 3 : 1, conv ? conv_keys : pool_keys, &a));
      if (!image)
        return spec_error(l, "%s needs an image input (C H W), got %zu features", l->tok[0], L->in_size);
      if (conv) {
        NG_CALL(check_name(l, m, a.pos[0]));
        snprintf(L->name, sizeof L->name, "%s", a.pos[0]);
        NG_CALL(parse_size(l, "out channels", a.pos[1], 0, &L->outc));
        NG_CALL(parse_size(l, "kernel", a.pos[2], 0, &L->k));
      } else {
        NG_CALL(parse_size(l, "kernel", a.pos[0], 0, &L->k));
      }
      const char *s = option(&a, "stride"), *p = conv ? option(&a, "padding") : NULL;
      L->stride = conv ? 1 : L->k;
      L->pad = 0;
      if (s) NG_CALL(parse_size(l, "stride", s, 0, &L->stride));
      if (p) NG_CALL(parse_size(l, "padding", p, 1, &L->pad));
      size_t Ho = ng_conv_out(L->in_shape[1], L->k, L->stride, L->pad);
      size_t Wo = ng_conv_out(L->in_shape[2], L->k, L->stride, L->pad);
      if (Ho == 0 || Wo == 0)
        return spec_error(l, "kernel %zu (padding %zu) does not fit the input %s", L->k, L->pad,
                          shape_str(3, L->in_shape, sb, sizeof sb));
      set_out(L, 3, conv ? L->outc : L->in_shape[0], Ho, Wo);
      if (conv) {
        NG_CALL(add_tensor(m, L, "weight", 4, L->outc, L->in_shape[0], L->k, L->k));
        NG_CALL(add_tensor(m, L, "bias", 1, L->outc, 1, 1, 1));
      }
      return NG_OK;
    }
    case NG_L_FLATTEN:
      NG_CALL(split_args(l, 0, NULL, &a));
      set_out(L, 1, L->in_size, 1, 1);
      return NG_OK;
    case NG_L_DENSE: {
      NG_CALL(split_args(l, 2, NULL, &a));
      if (image)
        return spec_error(l, "dense needs a vector input, got %s (add flatten before it)",
                          shape_str(3, L->in_shape, sb, sizeof sb));
      NG_CALL(check_name(l, m, a.pos[0]));
      snprintf(L->name, sizeof L->name, "%s", a.pos[0]);
      size_t out;
      NG_CALL(parse_size(l, "out features", a.pos[1], 0, &out));
      set_out(L, 1, out, 1, 1);
      NG_CALL(add_tensor(m, L, "weight", 2, out, L->in_size, 1, 1));
      NG_CALL(add_tensor(m, L, "bias", 1, out, 1, 1, 1));
      return NG_OK;
    }
    case NG_L_BATCHNORM:
    case NG_L_LAYERNORM: {
      int bn = L->kind == NG_L_BATCHNORM;
      NG_CALL(split_args(l, 1, eps_keys, &a));
      if (!bn && image)
        return spec_error(l, "layernorm needs a vector input, got %s (add flatten before it)",
                          shape_str(3, L->in_shape, sb, sizeof sb));
      NG_CALL(check_name(l, m, a.pos[0]));
      snprintf(L->name, sizeof L->name, "%s", a.pos[0]);
      L->eps = 1e-5;
      const char *e = option(&a, "eps");
      if (e) NG_CALL(parse_real(l, "eps", e, &L->eps));
      if (!(L->eps > 0)) return spec_error(l, "eps must be positive");
      set_out(L, L->in_ndim, L->in_shape[0], L->in_shape[1], L->in_shape[2]);
      size_t c = bn ? L->in_shape[0] : L->in_size;
      NG_CALL(add_tensor(m, L, "weight", 1, c, 1, 1, 1));
      NG_CALL(add_tensor(m, L, "bias", 1, c, 1, 1, 1));
      if (bn) {
        NG_CALL(add_tensor(m, L, "running_mean", 1, c, 1, 1, 1));
        NG_CALL(add_tensor(m, L, "running_var", 1, c, 1, 1, 1));
      }
      return NG_OK;
    }
    case NG_L_DROPOUT:
      NG_CALL(split_args(l, 1, NULL, &a));
      NG_CALL(parse_real(l, "probability", a.pos[0], &L->p));
      if (L->p < 0 || L->p >= 1) return spec_error(l, "dropout probability must be in [0, 1), got %g", L->p);
      set_out(L, L->in_ndim, L->in_shape[0], L->in_shape[1], L->in_shape[2]);
      return NG_OK;
    case NG_L_RESIDUAL:
      NG_CALL(split_args(l, 0, NULL, &a));
      stack[(*depth)++] = m->nlayers;
      set_out(L, L->in_ndim, L->in_shape[0], L->in_shape[1], L->in_shape[2]);
      return NG_OK;
    case NG_L_END: {
      NG_CALL(split_args(l, 0, NULL, &a));
      if (*depth == 0) return spec_error(l, "end without a residual");
      ng_layer *R = &m->layers[stack[--*depth]];
      if (R->in_ndim != L->in_ndim || R->in_size != L->in_size ||
          (L->in_ndim == 3 && memcmp(R->in_shape, L->in_shape, sizeof L->in_shape))) {
        char sa[64];
        return spec_error(l, "the residual group of line %d maps %s to %s; they must agree", R->line,
                          shape_str(R->in_ndim, R->in_shape, sa, sizeof sa),
                          shape_str(L->in_ndim, L->in_shape, sb, sizeof sb));
      }
      R->match = m->nlayers;
      L->match = (size_t)(R - m->layers);
      set_out(L, L->in_ndim, L->in_shape[0], L->in_shape[1], L->in_shape[2]);
      return NG_OK;
    }
    default: /* the activations */
      NG_CALL(split_args(l, 0, NULL, &a));
      set_out(L, L->in_ndim, L->in_shape[0], L->in_shape[1], L->in_shape[2]);
      return NG_OK;
  }
}

static void init_tensors(ng_model *m, uint64_t seed, int random);

static size_t tensor_numel(const ng_tensor *t) {
  return t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
}

/* What parse_layer resolved, recomputed without wrapping: its output, a convolution's column block (C k k by
 * Ho Wo) and each of its new tensors must hold at most SPEC_SIZE_MAX values. parse_layer only computes these
 * numbers (nothing is allocated from them before the spec is whole), so checking after it is enough. */
static int check_sizes(const spec_line *l, const ng_model *m, const ng_layer *L, size_t first_tensor) {
  size_t n;
  if (!ng__mul3(L->out_shape[0], L->out_shape[1], L->out_shape[2], &n) || n > SPEC_SIZE_MAX)
    return spec_error(l, "an output of %zu x %zu x %zu values, more than %zu", L->out_shape[0],
                      L->out_shape[1], L->out_shape[2], SPEC_SIZE_MAX);
  if (L->kind == NG_L_CONV2D && (!ng__mul3(L->in_shape[0], L->k, L->k, &n) || n > SPEC_SIZE_MAX))
    return spec_error(l, "a kernel of %zu x %zu x %zu values, more than %zu", L->in_shape[0], L->k, L->k,
                      SPEC_SIZE_MAX);
  for (size_t t = first_tensor; t < m->ntensors; t++) {
    const size_t *s = m->tensors[t].shape;
    if (!ng__mul3(s[0], s[1], s[2], &n) || !ng__mul(n, s[3], &n) || n > SPEC_SIZE_MAX)
      return spec_error(l, "tensor '%s' of %zu x %zu x %zu x %zu values, more than %zu", m->tensors[t].name,
                        s[0], s[1], s[2], s[3], SPEC_SIZE_MAX);
  }
  return NG_OK;
}

/* Cuts the next line off `*cursor` (modified in place) and tokenizes it. 0 at the end of the text. */
static int next_line(char **cursor, int *lineno, spec_line *l) {
  char *s = *cursor;
  if (!s || !*s) return 0;
  char *nl = strchr(s, '\n');
  *cursor = nl ? nl + 1 : s + strlen(s);
  if (nl) *nl = '\0';
  char *hash = strchr(s, '#');
  if (hash) *hash = '\0';
  l->line = ++*lineno;
  while (isspace((unsigned char)*s))
    s++;
  size_t len = strlen(s);
  while (len && isspace((unsigned char)s[len - 1]))
    s[--len] = '\0';
  snprintf(l->text, sizeof l->text, "%s", s);
  l->ntok = 0;
  for (char *p = s; *p;) {
    while (isspace((unsigned char)*p))
      *p++ = '\0';
    if (!*p) break;
    if (l->ntok == MAX_TOKENS) return -1;
    l->tok[l->ntok++] = p;
    while (*p && !isspace((unsigned char)*p))
      p++;
  }
  return 1;
}

int ng_model_from_spec(const char *spec, ng_model **out) {
  if (!out) return ng_error(NG_EINVAL, "ng_model_from_spec: out is NULL");
  *out = NULL;
  if (!spec) return ng_error(NG_EINVAL, "ng_model_from_spec: spec is NULL");
  ng_model *m = calloc(1, sizeof *m);
  char *work = strdup(spec);
  size_t lines = 1, depth = 0;
  for (const char *p = spec; *p; p++)
    lines += *p == '\n';
  size_t *stack = malloc(lines * sizeof *stack); /* open residual groups; at most one per line */
  int st = NG_OK;
  if (!m || !work || !stack || !(m->spec = strdup(spec))) {
    st = ng_error(NG_ENOMEM, "model: out of memory for the spec");
    goto fail;
  }
  char *cursor = work;
  int lineno = 0, have_input = 0;
  spec_line l;
  int r;
  while ((r = next_line(&cursor, &lineno, &l)) != 0) {
    if (r < 0) {
      st = spec_error(&l, "more than %d words", MAX_TOKENS);
      goto fail;
    }
    if (l.ntok == 0) continue;
    if (!strcmp(l.tok[0], "input")) {
      if (have_input) {
        st = spec_error(&l, "a second input line");
        goto fail;
      }
      if (l.ntok != 2 && l.ntok != 4) {
        st = spec_error(&l, "input takes F (features) or C H W");
        goto fail;
      }
      m->in_ndim = (size_t)(l.ntok - 1);
      for (int i = 1; i < l.ntok; i++)
        NG_TRY(st, parse_size(&l, "input dimension", l.tok[i], 0, &m->in_shape[i - 1]), fail);
      if (m->in_ndim == 1) m->in_shape[1] = m->in_shape[2] = 1;
      if (!ng__mul3(m->in_shape[0], m->in_shape[1], m->in_shape[2], &m->in_size) ||
          m->in_size > SPEC_SIZE_MAX) {
        st = spec_error(&l, "an input of more than %zu values", SPEC_SIZE_MAX);
        goto fail;
      }
      have_input = 1;
      continue;
    }
    if (!have_input) {
      st = spec_error(&l, "the first line must be 'input F' or 'input C H W'");
      goto fail;
    }
    ng_layer_kind kind = NG_L_END;
    int found = 0;
    for (size_t i = 0; i < sizeof layer_words / sizeof layer_words[0]; i++)
      if (!strcmp(layer_words[i].word, l.tok[0])) {
        kind = layer_words[i].kind;
        found = 1;
      }
    if (!found) {
      st = spec_error(
          &l,
          "unknown layer '%s' (known: input, conv2d, maxpool, avgpool, flatten, dense, relu, gelu, "
          "tanh, sigmoid, softmax, batchnorm, layernorm, dropout, residual, end)",
          l.tok[0]);
      goto fail;
    }
    ng_layer *grown = realloc(m->layers, (m->nlayers + 1) * sizeof *grown);
    if (!grown) {
      st = ng_error(NG_ENOMEM, "model: out of memory for the layers");
      goto fail;
    }
    m->layers = grown;
    ng_layer *L = &m->layers[m->nlayers];
    memset(L, 0, sizeof *L);
    L->kind = kind;
    L->line = l.line;
    const ng_layer *prev = m->nlayers ? &m->layers[m->nlayers - 1] : NULL;
    L->in_ndim = prev ? prev->out_ndim : m->in_ndim;
    memcpy(L->in_shape, prev ? prev->out_shape : m->in_shape, sizeof L->in_shape);
    L->in_size = prev ? prev->out_size : m->in_size;
    size_t first_tensor = m->ntensors;
    NG_TRY(st, parse_layer(m, &l, L, stack, &depth), fail);
    NG_TRY(st, check_sizes(&l, m, L, first_tensor), fail);
    m->nlayers++;
  }
  if (!have_input) {
    st = ng_error(NG_EINVAL, "spec: no input line ('input F' or 'input C H W')");
    goto fail;
  }
  if (depth) {
    st = ng_error(NG_EINVAL, "spec line %d: 'residual': the residual group is not closed by 'end'",
                  m->layers[stack[depth - 1]].line);
    goto fail;
  }
  m->out_size = m->nlayers ? m->layers[m->nlayers - 1].out_size : m->in_size;
  size_t total = 0;
  for (size_t t = 0; t < m->ntensors; t++)
    if (!ng__add(total, tensor_numel(&m->tensors[t]), &total) || total > SPEC_PARAMS_MAX) {
      st = ng_error(NG_EINVAL, "spec: more than %zu parameters (at tensor '%s')", SPEC_PARAMS_MAX,
                    m->tensors[t].name);
      goto fail;
    }
  m->params = calloc(m->nparams ? m->nparams : 1, sizeof *m->params);
  if (!m->params) {
    st = ng_error(NG_ENOMEM, "model: out of memory for %zu parameters", m->nparams);
    goto fail;
  }
  init_tensors(m, 0, 0);
  free(stack);
  free(work);
  *out = m;
  return NG_OK;
fail:
  free(stack);
  free(work);
  ng_model_destroy(&m);
  return st;
}

/* PyTorch's defaults; with random 0, dense and conv2d tensors are zero instead (a fresh spec). */
static void init_tensors(ng_model *m, uint64_t seed, int random) {
  for (size_t i = 0; i < m->nlayers; i++) {
    const ng_layer *L = &m->layers[i];
    for (size_t j = 0; j < L->ntensors; j++) {
      size_t t = L->tensor + j;
      float *p = m->params + m->tensors[t].offset;
      size_t n = tensor_numel(&m->tensors[t]);
      if (L->kind == NG_L_CONV2D || L->kind == NG_L_DENSE) {
        /* kaiming_uniform(a = sqrt 5) gives gain sqrt(1/3) * sqrt(3 / fan_in) = 1 / sqrt(fan_in); PyTorch's
         * bias bound is the same 1 / sqrt(fan_in). */
        size_t fan_in = L->kind == NG_L_DENSE ? L->in_size : L->in_shape[0] * L->k * L->k;
        double bound = 1.0 / sqrt((double)fan_in);
        ng_rng r;
        ng_rng_init(&r, seed, NG_RNG_INIT, 0, (uint32_t)t);
        for (size_t e = 0; e < n; e++)
          p[e] = random ? (float)((2.0 * ng_rng_uniform(&r) - 1.0) * bound) : 0.0f;
      } else {
        /* Norms: weight 1, bias 0, running mean 0, running variance 1. */
        float v = (j == 0 || j == 3) ? 1.0f : 0.0f;
        for (size_t e = 0; e < n; e++)
          p[e] = v;
      }
    }
  }
}

void ng_model_init(ng_model *m, uint64_t seed) {
  if (m && !m->onnx) init_tensors(m, seed, 1);
}

void ng_model_destroy(ng_model **mp) {
  if (!mp || !*mp) return;
  ng_model *m = *mp;
  free(m->spec);
  free(m->layers);
  free(m->tensors);
  free(m->params);
  free(m->dataset);
  ng__onnx_model_release(&m->onnx);
  free(m);
  *mp = NULL;
}

/* An ONNX model's clone shares the compiled graph and the parsed file, and copies the rest. */
static int clone_onnx(const ng_model *m, ng_model **out) {
  ng_model *c = calloc(1, sizeof *c);
  if (!c) return ng_error(NG_ENOMEM, "ng_model_clone: out of memory");
  *c = *m;
  c->dataset = NULL;
  c->spec = strdup(m->spec);
  c->tensors = ng__mallocn(m->ntensors ? m->ntensors : 1, 1, sizeof *c->tensors);
  c->params = ng__mallocn(m->nparams ? m->nparams : 1, 1, sizeof *c->params);
  c->onnx = ng__onnx_model_retain(m->onnx);
  if (!c->spec || !c->tensors || !c->params) {
    ng_model_destroy(&c);
    return ng_error(NG_ENOMEM, "ng_model_clone: out of memory");
  }
  memcpy(c->tensors, m->tensors, m->ntensors * sizeof *c->tensors);
  *out = c;
  return NG_OK;
}

int ng_model_clone(const ng_model *m, ng_model **out) {
  if (!m || !out) return ng_error(NG_EINVAL, "ng_model_clone: NULL argument");
  if (m->onnx)
    NG_CALL(clone_onnx(m, out));
  else
    NG_CALL(ng_model_from_spec(m->spec, out));
  ng_model *c = *out;
  memcpy(c->params, m->params, m->nparams * sizeof *m->params);
  memcpy(c->attrs, m->attrs, sizeof m->attrs);
  c->nattrs = m->nattrs;
  int st = ng_nn_set_dataset(c, m->dataset);
  if (st != NG_OK) ng_model_destroy(out);
  return st;
}

int ng_nn_set_dataset(ng_model *m, const char *dataset) {
  char *d = NULL;
  if (dataset && !(d = strdup(dataset))) return ng_error(NG_ENOMEM, "model: out of memory");
  free(m->dataset);
  m->dataset = d;
  return NG_OK;
}

bool ng_model_is_onnx(const ng_model *m) {
  return m && m->onnx;
}

const char *ng_model_spec_text(const ng_model *m) {
  return m->spec;
}
size_t ng_model_nparams(const ng_model *m) {
  return m->nparams;
}
float *ng_model_params(ng_model *m) {
  return m->params;
}
const float *ng_model_params_const(const ng_model *m) {
  return m->params;
}
size_t ng_model_input_size(const ng_model *m) {
  return m->in_size;
}
size_t ng_model_output_size(const ng_model *m) {
  return m->out_size;
}

void ng_model_input_shape(const ng_model *m, size_t *ndim, size_t shape[3]) {
  if (ndim) *ndim = m->in_ndim;
  if (shape)
    for (size_t i = 0; i < 3; i++)
      shape[i] = i < m->in_ndim ? m->in_shape[i] : 1;
}

size_t ng_model_ntensors(const ng_model *m) {
  return m->ntensors;
}

static void tensor_out(const ng_tensor *t, size_t *offset, size_t *ndim, size_t shape[4]) {
  if (offset) *offset = t->offset;
  if (ndim) *ndim = t->ndim;
  if (shape) memcpy(shape, t->shape, 4 * sizeof *shape);
}

int ng_model_tensor(const ng_model *m, size_t i, const char **name, size_t *offset, size_t *ndim,
                    size_t shape[4]) {
  if (i >= m->ntensors) return ng_error(NG_EINVAL, "model: tensor %zu of %zu", i, m->ntensors);
  if (name) *name = m->tensors[i].name;
  tensor_out(&m->tensors[i], offset, ndim, shape);
  return NG_OK;
}

int ng_model_find(const ng_model *m, const char *name, size_t *offset, size_t *ndim, size_t shape[4]) {
  for (size_t i = 0; name && i < m->ntensors; i++)
    if (!strcmp(m->tensors[i].name, name)) {
      tensor_out(&m->tensors[i], offset, ndim, shape);
      return NG_OK;
    }
  return ng_error(NG_ENOTFOUND, "model: no tensor '%s'", name ? name : "(null)");
}

/* The threshold lives in the attribute table too, under its own name, its value the bits of a double: one
 * table for everything a model file carries in attributes, copied as a whole by ng_model_clone. It is
 * hidden from the integer accessors and written as float64 by model_io.c. */
#define THRESHOLD_ATTR "threshold"

static ng_model_attr_entry *find_attr(const ng_model *m, const char *name) {
  for (size_t i = 0; i < m->nattrs; i++)
    if (!strcmp(m->attrs[i].name, name)) return (ng_model_attr_entry *)&m->attrs[i];
  return NULL;
}

double ng_model_threshold(const ng_model *m) {
  const ng_model_attr_entry *e = m ? find_attr(m, THRESHOLD_ATTR) : NULL;
  double t = NAN;
  if (e) memcpy(&t, &e->value, sizeof t);
  return t;
}

int ng_model_set_threshold(ng_model *m, double threshold) {
  if (!m) return ng_error(NG_EINVAL, "ng_model_set_threshold: model is NULL");
  ng_model_attr_entry *e = find_attr(m, THRESHOLD_ATTR);
  if (isnan(threshold)) {
    if (e) {
      *e = m->attrs[m->nattrs - 1];
      m->nattrs--;
    }
    return NG_OK;
  }
  if (!(threshold >= 0 && threshold <= 1))
    return ng_error(NG_EINVAL, "model threshold: expected a number in [0, 1], got %g", threshold);
  if (!e) {
    if (m->nattrs == NG_NN_ATTR_MAX)
      return ng_error(NG_EINVAL, "model threshold: a model holds at most %d attributes", NG_NN_ATTR_MAX);
    e = &m->attrs[m->nattrs++];
    snprintf(e->name, sizeof e->name, "%s", THRESHOLD_ATTR);
  }
  memcpy(&e->value, &threshold, sizeof threshold);
  return NG_OK;
}

int64_t ng_model_attr(const ng_model *m, const char *name) {
  if (name && !strcmp(name, THRESHOLD_ATTR)) return -1;
  for (size_t i = 0; name && i < m->nattrs; i++)
    if (!strcmp(m->attrs[i].name, name)) return m->attrs[i].value;
  return -1;
}

int ng_model_set_attr(ng_model *m, const char *name, int64_t value) {
  if (!name || !*name || strlen(name) >= sizeof m->attrs[0].name || strchr(name, '/') ||
      !strcmp(name, "format_version") || !strcmp(name, "dataset") || !strcmp(name, THRESHOLD_ATTR))
    return ng_error(NG_EINVAL,
                    "model attribute '%s': expected a name of 1 to %zu characters other than "
                    "format_version, dataset and threshold, without '/'",
                    name ? name : "(null)", sizeof m->attrs[0].name - 1);
  for (size_t i = 0; i < m->nattrs; i++)
    if (!strcmp(m->attrs[i].name, name)) {
      m->attrs[i].value = value;
      return NG_OK;
    }
  if (m->nattrs == NG_NN_ATTR_MAX)
    return ng_error(NG_EINVAL, "model attribute '%s': a model holds at most %d attributes", name,
                    NG_NN_ATTR_MAX);
  snprintf(m->attrs[m->nattrs].name, sizeof m->attrs[0].name, "%s", name);
  m->attrs[m->nattrs++].value = value;
  return NG_OK;
}
