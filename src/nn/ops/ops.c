/* The op table of the graph executor: one row per ONNX op, the single place that says which ops nograd runs.
 * An op is a file under src/nn/ops/ with its setup (attributes, shapes, folding) and run, plus one row here;
 * tests/onnx/test_ops.py runs every row against PyTorch. */
#include <stdio.h>
#include <string.h>

#include "nn/graph_impl.h"

/* clang-format off */
#define NG__OPS(X) \
  X(Add) \
  X(AveragePool) \
  X(BatchNormalization) \
  X(Cast) \
  X(Clip) \
  X(Concat) \
  X(ConstantOfShape) \
  X(Conv) \
  X(Div) \
  X(Dropout) \
  X(Erf) \
  X(Flatten) \
  X(Gather) \
  X(Gemm) \
  X(GlobalAveragePool) \
  X(HardSigmoid) \
  X(HardSwish) \
  X(Identity) \
  X(LayerNormalization) \
  X(MatMul) \
  X(MaxPool) \
  X(Mul) \
  X(Pad) \
  X(Pow) \
  X(ReduceMean) \
  X(Relu) \
  X(Reshape) \
  X(Shape) \
  X(Sigmoid) \
  X(Slice) \
  X(Softmax) \
  X(Sqrt) \
  X(Squeeze) \
  X(Sub) \
  X(Tanh) \
  X(Transpose) \
  X(Unsqueeze)

/* clang-format on */

#define NG__DECLARE(NAME) extern const ng__op ng__op_##NAME;
NG__OPS(NG__DECLARE)

static const ng__op *const table[] = {
#define NG__ROW(NAME) &ng__op_##NAME,
    NG__OPS(NG__ROW)};

const ng__op *ng__op_find(const char *name) {
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (!strcmp(table[i]->name, name)) return table[i];
  return NULL;
}

void ng__op_list(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof table / sizeof table[0] && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", table[i]->name);
}
