/* Private: the graph executor. A compiled graph runs the forward pass of a model given as an ng__onnx_graph
 * (src/nn/onnx_graph.h): nodes in topological order over named tensors, the shapes inferred once when it is
 * compiled (the batch, dimension 0 of the one graph input, is the only dynamic dimension), every chain of
 * Shape, Gather, Concat, Unsqueeze, ... that computes a constant folded, and one workspace per maximum batch
 * planned by the tensors' lifetimes and allocated once: a forward pass allocates nothing.
 *
 * Parameters. The float initializers that nodes read, and the outputs of Identity nodes whose input is such
 * an initializer (torch 1.13 replaces an initializer equal to another one by an Identity of it, e.g. a fresh
 * model's BatchNorm tensors), are the model's parameters: each name has its own entry in one flat float32
 * vector, in the order the computing nodes first read them (file order, the Identity copies themselves
 * skipped), each tensor contiguous in its ONNX layout (row-major). Models of one architecture therefore have
 * one layout whatever the exporter deduplicated. Forward passes read the parameters from a vector the caller
 * passes (a candidate), never from the graph; the graph's own copy (ng__graph_params) is the file's values.
 * Integer initializers and folded constants belong to the graph.
 *
 * Ops: one file per op under src/nn/ops/ and one row in the table of src/nn/ops/ops.c (ng__op_find). An op
 * outside the table, or an attribute value an op does not support, is refused when the graph is compiled,
 * with the file, the node's name and op type and the opset, and for an unknown op the list of the known ones.
 *
 * Determinism: the bits of an example's output depend on the batch size and nothing else (the same kernels,
 * one BLAS thread, reductions in an order fixed by the shapes). */
#ifndef NOGRAD_NN_GRAPH_H
#define NOGRAD_NN_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/onnx_graph.h"

typedef struct ng__graph ng__graph;
typedef struct ng__graph_work ng__graph_work;

/* Compiles g (which may be freed afterwards: the graph keeps what it needs). The graph must have exactly one
 * float input whose dimension 0 is the batch (symbolic, or fixed: then treated as the batch all the same) and
 * at least one float output; the first output is the model's output. Errors name g->path and the node or
 * tensor: NG_EFORMAT (an op or attribute outside the set, a cycle, a tensor no node produces, a shape that
 * cannot be resolved or does not fit an op), NG_ENOMEM. */
int ng__graph_compile(const ng__onnx_graph *g, ng__graph **out);

/* How a graph is compiled: no_fuse keeps every node's own output (a Conv is not fused with the
 * BatchNormalization and activation after it), as a backward pass that reads the values needs; pins names
 * tensors whose own value must stay visible however the rest is fused (where a partial pass may end);
 * no_values keeps no copy of the parameters' values (ng__graph_params is then NULL: the caller has them). */
typedef struct {
  bool no_fuse;
  const char *const *pins;
  size_t npins;
  bool no_values;
} ng__compile_opts;
int ng__graph_compile_opts(const ng__onnx_graph *g, const ng__compile_opts *opts, ng__graph **out);

void ng__graph_free(ng__graph **gr);

/* The parameter vector's length and the graph's copy of it (the file's values). */
size_t ng__graph_nparams(const ng__graph *gr);
const float *ng__graph_params(const ng__graph *gr);

/* The parameter index: entry i's name, offset in the vector, rank and dimensions (at most NG__ONNX_MAX_DIMS).
 * For an entry that comes from an Identity node, *source is the initializer it copies, else NULL. */
size_t ng__graph_ntensors(const ng__graph *gr);
void ng__graph_tensor(const ng__graph *gr, size_t i, const char **name, size_t *offset, size_t *ndim,
                      const int64_t **dims, const char **source);

/* One example's input and output: rank and dimensions without the batch, and the number of floats. */
void ng__graph_input(const ng__graph *gr, const char **name, size_t *ndim, const int64_t **dims,
                     size_t *size);
void ng__graph_output(const ng__graph *gr, const char **name, size_t *ndim, const int64_t **dims,
                      size_t *size);

/* The nodes after compilation, in execution order (constant nodes that were folded are not among them): name
 * and op type, and for Conv, Gemm and MatMul the parameter entry of the weight (input 1) and of the bias
 * (input 2), or SIZE_MAX when that input is not a parameter. For retrofit's scale:NODE. */
size_t ng__graph_nnodes(const ng__graph *gr);
void ng__graph_node(const ng__graph *gr, size_t i, const char **name, const char **op_type, size_t *weight,
                    size_t *bias);

/* A tensor's index by name, or -1; whether a fusion left its memory holding a later node's result. */
int ng__graph_find(const ng__graph *gr, const char *name);
bool ng__graph_partial(const ng__graph *gr, int t);

/* A workspace for batches of up to max_batch examples. Memory is reused once a tensor's last reader has
 * run, except for the tensors keep[0..nkeep) (indices, as ng__graph_find gives them), which keep theirs to
 * the end of the pass so that a backward pass can read them afterwards. NG_ENOMEM; NG_EINVAL for max_batch
 * 0. */
int ng__graph_work_create(const ng__graph *gr, size_t max_batch, const int *keep, size_t nkeep,
                          ng__graph_work **out);
void ng__graph_work_destroy(ng__graph_work **w);

/* Forward pass of `batch` examples (x: batch x input size floats) with the parameter vector `params`;
 * *out points into the workspace: batch x output size floats, valid until the next pass. No allocation.
 * NG_EINVAL for batch > max_batch or a workspace made for another graph. */
int ng__graph_forward(const ng__graph *gr, const float *params, ng__graph_work *w, const float *x,
                      size_t batch, const float **out);

/* Part of a pass: the nodes [from, to) (execution order), with tensor `in` given by x (batch x its size per
 * example; the graph input when from is 0) instead of computed. The nodes in the range must read nothing
 * computed before `from` but `in`. Afterwards ng__graph_work_ptr gives any tensor the range computed, valid
 * until the next pass. No allocation. NG_EINVAL as ng__graph_forward, or for a range out of order. */
int ng__graph_run_nodes(const ng__graph *gr, const float *params, ng__graph_work *w, size_t from, size_t to,
                        int in, const float *x, size_t batch);
/* Tensor t's memory in the last pass (NULL before any). */
const float *ng__graph_work_ptr(const ng__graph_work *w, int t);
/* The key of the native front end's training Dropout masks (stream (seed, NG_RNG_DROPOUT, step, layer)). */
void ng__graph_work_set_dropout(ng__graph_work *w, uint64_t seed, uint64_t step);

#endif
