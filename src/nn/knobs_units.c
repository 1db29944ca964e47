/* The units that retrofit's scale:, temperature and offsets knobs fold into (src/nn/knobs.c): a part of a
 * model whose output is linear in a weight tensor and an optional bias tensor of the parameter vector.
 *
 * Of a native model, its dense and conv2d layers (named as in the spec; they always have a bias). Of an ONNX
 * model, its Conv, Gemm and MatMul nodes whose weight (input 1) is a parameter, named by the node's name and
 * by their module, the weight's name without its last component ("layer1.0.conv1" for
 * "layer1.0.conv1.weight"), so that scale: takes a node, a module or a module prefix ("layer1"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/knobs_units.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"

static const char *native_kind(ng_layer_kind k) {
  return k == NG_L_DENSE ? "dense" : "conv2d";
}

static int native_units(const ng_model *m, ng__knob_unit *u, size_t *n) {
  *n = 0;
  for (size_t i = 0; i < m->nlayers; i++) {
    const ng_layer *L = &m->layers[i];
    if (L->kind != NG_L_DENSE && L->kind != NG_L_CONV2D) continue;
    ng__knob_unit *x = &u[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", L->name);
    snprintf(x->module, sizeof x->module, "%s", L->name);
    x->kind = native_kind(L->kind);
    x->weight = L->tensor;
    x->bias = L->tensor + 1;
    x->outputs = L->kind == NG_L_DENSE ? L->out_size : L->outc;
    x->layer = i;
  }
  return NG_OK;
}

static int onnx_units(const ng_model *m, ng__knob_unit *u, size_t cap, size_t *n) {
  *n = 0;
  const char *name, *op;
  size_t w, b;
  for (size_t i = 0; ng__onnx_node_params(m, i, &name, &op, &w, &b) == NG_OK; i++) {
    if (w == SIZE_MAX || w >= m->ntensors) continue;
    if (strcmp(op, "Conv") && strcmp(op, "Gemm") && strcmp(op, "MatMul")) continue;
    if (*n == cap) return ng_error(NG_EINTERNAL, "knobs: more units than counted");
    ng__knob_unit *x = &u[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    const char *wname = m->tensors[w].name, *dot = strrchr(wname, '.');
    size_t len = dot ? (size_t)(dot - wname) : strlen(wname);
    snprintf(x->module, sizeof x->module, "%.*s", (int)len, wname);
    x->kind = !strcmp(op, "Conv") ? "Conv" : !strcmp(op, "Gemm") ? "Gemm" : "MatMul";
    x->weight = w;
    x->bias = b < m->ntensors ? b : SIZE_MAX;
    x->outputs = x->bias != SIZE_MAX ? m->tensors[x->bias].shape[0] : 0;
    x->layer = i;
  }
  return NG_OK;
}

int ng__knob_units(const ng_model *m, ng__knob_unit **units, size_t *n) {
  size_t cap = m->onnx ? 0 : m->nlayers;
  if (m->onnx) {
    const char *name, *op;
    size_t w, b;
    while (ng__onnx_node_params(m, cap, &name, &op, &w, &b) == NG_OK)
      cap++;
  }
  *units = calloc(cap ? cap : 1, sizeof **units);
  if (!*units) return ng_error(NG_ENOMEM, "--params: out of memory");
  return m->onnx ? onnx_units(m, *units, cap, n) : native_units(m, *units, n);
}

const char *ng__knob_kind_word(int k) {
  static const char *const words[] = {"conv2d",    "maxpool",   "avgpool", "flatten",  "dense",
                                      "relu",      "gelu",      "tanh",    "sigmoid",  "softmax",
                                      "batchnorm", "layernorm", "dropout", "residual", "end"};
  return (size_t)k < sizeof words / sizeof words[0] ? words[k] : "?";
}

/* The dense layer that produces the model's output (only softmax or dropout may follow it), or NONE with a
 * reason in why. */
static size_t last_dense(const ng_model *m, char *why, size_t len) {
  size_t i = m->nlayers;
  while (i > 0 && (m->layers[i - 1].kind == NG_L_SOFTMAX || m->layers[i - 1].kind == NG_L_DROPOUT))
    i--;
  if (i == 0) {
    snprintf(why, len, "the model has no dense layer before its output");
    return SIZE_MAX;
  }
  const ng_layer *L = &m->layers[i - 1];
  if (L->kind != NG_L_DENSE) {
    snprintf(why, len,
             "the model's output comes from a %s layer (spec line %d), not from a dense layer followed by "
             "nothing but softmax",
             ng__knob_kind_word(L->kind), L->line);
    return SIZE_MAX;
  }
  return i - 1;
}

/* The node ops that may stand between the output unit and the graph's output. */
static bool passes_through(const char *op) {
  return !strcmp(op, "Softmax") || !strcmp(op, "Dropout") || !strcmp(op, "Identity") ||
         !strcmp(op, "LogSoftmax");
}

size_t ng__knob_onnx_output_unit(const ng_model *m, const ng__knob_unit *u, size_t n, char *why, size_t len) {
  size_t last = 0;
  const char *name, *op;
  size_t w, b;
  while (ng__onnx_node_params(m, last, &name, &op, &w, &b) == NG_OK)
    last++;
  while (last > 0) {
    ng__onnx_node_params(m, last - 1, &name, &op, &w, &b);
    if (!passes_through(op)) break;
    last--;
  }
  if (last == 0) {
    snprintf(why, len, "the graph has no node before its output");
    return SIZE_MAX;
  }
  ng__onnx_node_params(m, last - 1, &name, &op, &w, &b);
  for (size_t k = 0; k < n; k++)
    if (u[k].layer == last - 1) {
      if (u[k].bias == SIZE_MAX || u[k].outputs != m->out_size) {
        snprintf(why, len,
                 "the graph's output comes from %s node %s, which has no bias of %zu values to fold into", op,
                 name, m->out_size);
        return SIZE_MAX;
      }
      return k;
    }
  snprintf(why, len,
           "the graph's output comes from %s node %s, not from a Gemm or MatMul with a parameter weight "
           "followed by nothing but Softmax",
           op, name);
  return SIZE_MAX;
}

bool ng__knob_unit_matches(const ng_model *m, const ng__knob_unit *u, const char *name) {
  if (!strcmp(u->name, name)) return true;
  if (!m->onnx) return false;
  size_t len = strlen(name);
  return !strcmp(u->module, name) || (!strncmp(u->module, name, len) && u->module[len] == '.');
}

size_t ng__knob_output_unit(const ng_model *m, const ng__knob_unit *u, size_t n, char *why, size_t len) {
  if (m->onnx) return ng__knob_onnx_output_unit(m, u, n, why, len);
  size_t L = last_dense(m, why, len);
  for (size_t k = 0; L != SIZE_MAX && k < n; k++)
    if (u[k].layer == L) return k;
  return SIZE_MAX;
}
