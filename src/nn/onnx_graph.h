/* Private: an ONNX model as plain C structs, the boundary between the ONNX reader/writer (src/nn/onnx_*.c,
 * protobuf-c over Debian's onnx.proto) and the graph executor (src/nn/graph*.c), so that neither sees the
 * other's internals and each can be tested alone.
 *
 * The reader fills an ng__onnx_graph from a .onnx file: the nodes in file order (the executor sorts them
 * topologically), every initializer with its raw data in host order, the graph's inputs that are not
 * initializers and its outputs with their declared types and shapes (a dimension given by name, like
 * "batch", has dims[k] = -1 and its name in dim_param[k]), and the opset of the default domain. Attributes
 * keep their ONNX type; a TENSOR attribute (Constant's value) is a full ng__onnx_tensor. Strings are
 * NUL-terminated copies; every array is owned by the graph and freed by ng__onnx_free.
 *
 * The writer takes a graph that was read (it keeps the parsed file) and a new value for some float
 * initializers, and writes a file that is the original with only those initializers' data replaced: the
 * graph, its names and every other byte of meaning unchanged, so that onnx.checker and PyTorch read it
 * as before. Writes are atomic (PATH.tmp, fsync, rename). */
#ifndef NOGRAD_NN_ONNX_GRAPH_H
#define NOGRAD_NN_ONNX_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#define NG__ONNX_MAX_DIMS 8 /* ranks above this are refused by the reader, naming the tensor */

/* ONNX TensorProto.DataType values the executor may meet (others are refused when used). */
enum {
  NG__ONNX_FLOAT = 1,
  NG__ONNX_UINT8 = 2,
  NG__ONNX_INT8 = 3,
  NG__ONNX_INT32 = 6,
  NG__ONNX_INT64 = 7,
  NG__ONNX_BOOL = 9,
  NG__ONNX_DOUBLE = 11
};

typedef struct ng__onnx_tensor {
  char *name;
  int32_t dtype; /* NG__ONNX_* */
  size_t ndim;
  int64_t dims[NG__ONNX_MAX_DIMS];
  void *data; /* numel * element size bytes, host order (float_data/int64_data/raw_data unified) */
  size_t nbytes;
} ng__onnx_tensor;

typedef enum {
  NG__ATTR_FLOAT = 1,
  NG__ATTR_INT = 2,
  NG__ATTR_STRING = 3,
  NG__ATTR_TENSOR = 4,
  NG__ATTR_FLOATS = 6,
  NG__ATTR_INTS = 7
} ng__attr_type; /* ONNX AttributeProto.AttributeType values */

typedef struct {
  char *name;
  ng__attr_type type;
  int64_t i;               /* INT */
  double f;                /* FLOAT */
  char *s;                 /* STRING */
  int64_t *ints;           /* INTS */
  double *floats;          /* FLOATS */
  size_t count;            /* of ints or floats */
  ng__onnx_tensor *tensor; /* TENSOR */
} ng__onnx_attr;

typedef struct {
  char *name;    /* may be "" in a file; the reader names unnamed nodes "OpType_INDEX" for messages */
  char *op_type; /* "Conv", ... */
  char *domain;  /* "" for the default domain */
  char **inputs; /* "" for an omitted optional input */
  size_t ninputs;
  char **outputs;
  size_t noutputs;
  ng__onnx_attr *attrs;
  size_t nattrs;
} ng__onnx_node;

typedef struct {
  char *name;
  int32_t dtype; /* 0 when the file does not say */
  size_t ndim;   /* 0 with has_shape 0: the file does not say */
  int has_shape;
  int64_t dims[NG__ONNX_MAX_DIMS];       /* -1: symbolic or unknown */
  char dim_param[NG__ONNX_MAX_DIMS][32]; /* the symbolic name ("batch"), or "" */
} ng__onnx_value;

typedef struct ng__onnx_graph {
  char *path;    /* the file, for messages */
  int64_t opset; /* of the default domain ("" or "ai.onnx") */
  int64_t ir_version;
  char *producer; /* "pytorch 1.13.0", ... */
  ng__onnx_node *nodes;
  size_t nnodes;
  ng__onnx_tensor *inits; /* initializers, in file order */
  size_t ninits;
  ng__onnx_value *inputs; /* graph inputs that are not initializers */
  size_t ninputs;
  ng__onnx_value *outputs;
  size_t noutputs;
  char **meta_keys; /* the model's metadata_props, in file order */
  char **meta_values;
  size_t nmeta;
  void *proto; /* the reader's parsed file, kept for the writer (opaque) */
  int native;  /* built by the native front end (src/nn/native_graph.c), never read from a file: its nodes
                * may use nograd's own domain ai.nograd (Gelu, Dropout in training) */
} ng__onnx_graph;

/* Reads an ONNX file. Errors name the file and what is wrong: NG_EIO (cannot open or read), NG_EFORMAT (not
 * an ONNX model, truncated, an opset outside 13..17, a tensor of rank > NG__ONNX_MAX_DIMS, an initializer
 * stored as external data (named), a string or unknown data type where numbers are needed). Not collective.
 */
int ng__onnx_read(const char *path, ng__onnx_graph **out);

/* Frees; accepts NULL and clears the pointer. */
void ng__onnx_free(ng__onnx_graph **g);

/* Writes g's file to `path` with the float initializers named in names[0..count) given new data
 * (values[k] holds the initializer's numel floats, in its layout), every other byte of meaning as read.
 * A name may also be the output of an Identity node whose input is a float initializer (torch's
 * deduplication): that node is removed and an initializer of that name, with its source's type and dims,
 * added. The metadata_props keys meta_keys[0..nmeta) are set to meta_values (added or replaced; the
 * others kept). NG_EINVAL names an initializer that is not a float initializer of g; NG_EIO names the
 * path. */
int ng__onnx_write(const ng__onnx_graph *g, const char *path, const char *const *names,
                   const float *const *values, size_t count, const char *const *meta_keys,
                   const char *const *meta_values, size_t nmeta);

#endif
