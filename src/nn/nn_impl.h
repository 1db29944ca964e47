/* Private: the model and workspace structs shared by src/nn/model.c, model_io.c and forward.c, and the few
 * helpers they call in each other.
 *
 * A model is the parsed layer list (shapes resolved), the tensor index and the flat parameter vector. The
 * "values" of a network are its input (value 0) and the output of each layer (value i+1 for layer i); layers
 * that do not compute (flatten, the residual marker) make their output the same memory as their input. */
#ifndef NOGRAD_NN_IMPL_H
#define NOGRAD_NN_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nograd/nn.h"
#include "nograd/rng.h"

#define NG_NN_NAME_MAX 64   /* layer names; tensor names add ".running_mean" */
#define NG_NN_TNAME_MAX 128 /* tensor names (ONNX ones such as encoder.layers.0.self_attn.in_proj_weight) */
#define NG_NN_ATTR_MAX 16   /* integer attributes of a model */

typedef enum {
  NG_L_CONV2D,
  NG_L_MAXPOOL,
  NG_L_AVGPOOL,
  NG_L_FLATTEN,
  NG_L_DENSE,
  NG_L_RELU,
  NG_L_GELU,
  NG_L_TANH,
  NG_L_SIGMOID,
  NG_L_SOFTMAX,
  NG_L_BATCHNORM,
  NG_L_LAYERNORM,
  NG_L_DROPOUT,
  NG_L_RESIDUAL,
  NG_L_END
} ng_layer_kind;

typedef struct {
  ng_layer_kind kind;
  int line;                    /* of the spec, for messages */
  char name[NG_NN_NAME_MAX];   /* "" for layers without parameters */
  size_t in_ndim, in_shape[3]; /* C H W, or F */
  size_t out_ndim, out_shape[3];
  size_t in_size, out_size;    /* floats per example */
  size_t outc, k, stride, pad; /* conv2d (outc, k, stride, pad) and pooling (k, stride) */
  double eps;                  /* batchnorm, layernorm */
  double p;                    /* dropout */
  size_t ntensors, tensor;     /* tensors it owns and the index of the first */
  size_t off[4];               /* parameter offsets of those tensors, in index order */
  size_t match;                /* residual: index of its end; end: index of its residual */
} ng_layer;

typedef struct {
  char name[NG_NN_TNAME_MAX];
  size_t offset, ndim, shape[4];
} ng_tensor;

typedef struct {
  char name[32];
  int64_t value;
} ng_model_attr_entry;

struct ng_model {
  char *spec;
  ng_layer *layers;
  size_t nlayers;
  ng_tensor *tensors;
  size_t ntensors;
  float *params;
  size_t nparams;
  size_t in_ndim, in_shape[3], in_size, out_size;
  ng_model_attr_entry attrs[NG_NN_ATTR_MAX];
  size_t nattrs;
  char *dataset; /* the string attribute "dataset" of a model file, or NULL; kept through read and write */
  struct ng__onnx_model
      *onnx; /* an ONNX model (src/nn/model_onnx.c), shared by clones; NULL: native, layers */
};

/* ONNX models (src/nn/model_onnx.c). An ONNX model has no layers (nlayers 0): its forward passes go to the
 * graph executor through these, called by model.c, model_io.c and forward.c where a native model would use
 * its layers. */
typedef struct ng__onnx_model ng__onnx_model;
struct ng__graph_work;
bool ng__onnx_path(const char *path); /* ends in .onnx */
int ng__onnx_model_read(const char *path, ng_model **out);
int ng__onnx_model_write(const ng_model *m, const char *path);
ng__onnx_model *ng__onnx_model_retain(ng__onnx_model *o);
void ng__onnx_model_release(ng__onnx_model **o);
int ng__onnx_work_create(const ng_model *m, size_t max_batch, bool training, struct ng__graph_work **out);
int ng__onnx_forward(const ng_model *m, const float *params, struct ng__graph_work *w, const float *x,
                     size_t batch, const float **out);
/* Node i of the compiled graph (execution order): name, op type, parameter entries of its weight and bias
 * (SIZE_MAX: none). NG_ENOTFOUND past the last node (no message). */
int ng__onnx_node_params(const ng_model *m, size_t i, const char **name, const char **op_type, size_t *weight,
                         size_t *bias);

/* The native front end of the graph executor (src/nn/native_graph.c): a model's layers as an executor graph
 * whose parameter layout is the model's. value[v] is the tensor of value v (0: the input, v: layer v-1's
 * output); node[i] the first node of layer i in execution order (node[nlayers]: the number of nodes), so
 * that layers [from, to) are the nodes [node[from], node[to]). A training graph is not fused (every value
 * is its own); an evaluation graph keeps the first linear layer's output visible. */
typedef struct {
  struct ng__graph *gr;
  int *value;
  size_t *node;
} ng__native_graph;
int ng__native_compile(const ng_model *m, bool training, ng__native_graph *out);
void ng__native_free(ng__native_graph *ng);

/* Sets the model's dataset string (NULL clears it). NG_ENOMEM. */
int ng_nn_set_dataset(ng_model *m, const char *dataset);

#endif
