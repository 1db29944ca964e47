/* Private: the units of a model that retrofit's scale:, temperature and offsets knobs fold into (see
 * knobs_units.c), for src/nn/knobs.c. */
#ifndef NOGRAD_NN_KNOBS_UNITS_H
#define NOGRAD_NN_KNOBS_UNITS_H

#include <stdbool.h>
#include <stddef.h>

#include "nograd/nn.h"

typedef struct {
  char name[128];   /* the layer's or node's name */
  char module[128]; /* the weight's name without its last component (native: the layer's name) */
  const char *kind; /* "dense", "conv2d", "Conv", "Gemm", "MatMul" */
  size_t weight;    /* index of the weight tensor in the model's index */
  size_t bias;      /* of the bias tensor, or SIZE_MAX */
  size_t outputs;   /* the bias's length (offsets count), 0 without a bias; native: outputs or channels */
  size_t layer;     /* native: the layer's index; ONNX: the node's index */
} ng__knob_unit;

/* The model's units, in layer or execution order, in a new array (free it). NG_ENOMEM. */
int ng__knob_units(const ng_model *m, ng__knob_unit **units, size_t *n);

/* Of an ONNX model: the unit that produces the graph's output (only Softmax, Dropout or Identity after it)
 * and has a bias of out_size values, for temperature and offsets; SIZE_MAX with the reason in why. */
size_t ng__knob_onnx_output_unit(const ng_model *m, const ng__knob_unit *u, size_t n, char *why, size_t len);

/* The unit temperature and offsets fold into: the dense layer (native) or the Gemm/MatMul node (ONNX) that
 * produces the output, followed by nothing but softmax, dropout or identity; SIZE_MAX with the reason in why.
 */
size_t ng__knob_output_unit(const ng_model *m, const ng__knob_unit *u, size_t n, char *why, size_t len);

/* A native layer kind's spec word ("conv2d", "dense", ...; "?" out of range). */
const char *ng__knob_kind_word(int kind);

/* Whether scale:NAME takes unit u: its name, or (ONNX) its module or a module prefix ending at a dot. */
bool ng__knob_unit_matches(const ng_model *m, const ng__knob_unit *u, const char *name);

#endif
