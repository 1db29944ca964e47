/* Neural-network models: a list of layers over one flat float32 parameter vector with a named-tensor index.
 *
 * A model is described by a spec, one layer per line ('#' starts a comment):
 *
 *   input 1 16 16                 shape of one example: C H W (images) or F (vectors)
 *   conv2d conv1 8 3 stride=1 padding=1    name, out channels, kernel (square); stride, padding default 1, 0
 *   maxpool 2 stride=2            kernel; stride defaults to the kernel
 *   avgpool 2 stride=2
 *   flatten
 *   dense fc1 64                  name, out features
 *   relu | gelu | tanh | sigmoid | softmax
 *   batchnorm bn1 eps=1e-5        inference form over channels (C of C H W) or features; running statistics
 *   layernorm ln1 eps=1e-5        over all features of one example (a vector input or after flatten)
 *   dropout 0.1                   training only; the identity in evaluation
 *   residual                      opens a group: its output is  input + group(input)  (shapes must agree)
 *   end                           closes the innermost residual group
 *
 * Tensors and their layout follow PyTorch, so that models move both ways without copies: conv1.weight
 * [out, in, k, k], conv1.bias [out]; fc1.weight [out, in], fc1.bias [out]; bn1.weight, bn1.bias,
 * bn1.running_mean, bn1.running_var [C]; ln1.weight, ln1.bias [F]. The parameter vector holds the tensors
 * in spec order, each contiguous. Activations are float32, batch-major, C x H x W per example (NCHW).
 *
 * Model file (HDF5): /model/spec (string), /model/params (float32, nparams), /model/index/names (strings),
 * /model/index/offsets (int64), /model/index/shapes (int64, T x 4, unused trailing dimensions 1),
 * /model/index/ndims (int32); attributes of /model: format_version (1), and any of classes (int),
 * train_rows (int64: examples the model was trained on), dataset (string), threshold (float64 in [0, 1]: the
 * decision threshold of a binary classifier, class 1 when softmax[1] >= threshold; files without it read as
 * before, and readers that predate it ignore it).
 *
 * None of these functions is collective; a model is read-only during forward passes, so threads or ranks may
 * share one, each with its own workspace. */
#ifndef NOGRAD_NN_H
#define NOGRAD_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nograd/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_MODEL_FORMAT_VERSION 1

typedef struct ng_model ng_model;

/* Builds a model from a spec; parameters are zero, running variances one. NG_EINVAL names the line and what
 * is wrong (an unknown layer, a missing argument, a shape that does not fit, an unclosed residual group). */
NG_EXPORT int ng_model_from_spec(const char *spec, ng_model **out);

/* PyTorch's default initialisation: weights and biases of dense and conv2d uniform in +-1/sqrt(fan_in)
 * (kaiming_uniform with a = sqrt(5)), norm weights 1 and biases 0, running mean 0 and variance 1; drawn from
 * the stream (seed, NG_RNG_INIT, 0, tensor index). */
NG_EXPORT void ng_model_init(ng_model *m, uint64_t seed);

/* Reads a model file. Errors name the file and the HDF5 path: NG_EIO (cannot open), NG_EFORMAT (not a model
 * file, an unknown layer in the spec, a tensor missing from the index or of the wrong shape, params of the
 * wrong length or type), NG_ENUMERIC (a NaN or infinite weight: names the tensor and element). */
NG_EXPORT int ng_model_read(const char *path, ng_model **out);

/* Writes a model file atomically (PATH.tmp, fsync, rename). NG_EIO names the path. */
NG_EXPORT int ng_model_write(const ng_model *m, const char *path);

/* Frees; accepts NULL and clears the pointer. */
NG_EXPORT void ng_model_destroy(ng_model **m);

/* A copy (spec, parameters and attributes). */
NG_EXPORT int ng_model_clone(const ng_model *m, ng_model **out);

/* Whether the model was read from an ONNX file (ng_model_read of a path ending in .onnx). Every model's
 * forward passes run on the one graph executor (a native model's layers are written as its graph); an ONNX
 * model has forward passes only (no training workspace, no backward pass, no layer ranges), is written back
 * to ONNX with its graph kept, and its "spec text" is a canonical description of the
 * graph, one line per node and parameter, that is never parsed. */
NG_EXPORT bool ng_model_is_onnx(const ng_model *m);

NG_EXPORT const char *ng_model_spec_text(const ng_model *m);
NG_EXPORT size_t ng_model_nparams(const ng_model *m);
NG_EXPORT float *ng_model_params(ng_model *m);
NG_EXPORT const float *ng_model_params_const(const ng_model *m);
NG_EXPORT size_t ng_model_input_size(const ng_model *m); /* floats per example */
NG_EXPORT size_t
ng_model_output_size(const ng_model *m); /* floats per example out (classes for a classifier) */
/* The input shape: ndim 1 (F) or 3 (C H W). */
NG_EXPORT void ng_model_input_shape(const ng_model *m, size_t *ndim, size_t shape[3]);

/* The named-tensor index. */
NG_EXPORT size_t ng_model_ntensors(const ng_model *m);
NG_EXPORT int ng_model_tensor(const ng_model *m, size_t i, const char **name, size_t *offset, size_t *ndim,
                              size_t shape[4]);
/* By name; NG_ENOTFOUND names it. */
NG_EXPORT int ng_model_find(const ng_model *m, const char *name, size_t *offset, size_t *ndim,
                            size_t shape[4]);

/* Integer attributes stored with the model (classes, train_rows); absent ones are -1. set_attr refuses
 * (NG_EINVAL) the names format_version, dataset and threshold, which have their own meaning and type. */
NG_EXPORT int64_t ng_model_attr(const ng_model *m, const char *name);
NG_EXPORT int ng_model_set_attr(ng_model *m, const char *name, int64_t value);

/* The decision threshold stored with a binary classifier (e.g. by `nograd retrofit`): class 1 when
 * softmax(output)[1] >= threshold. NaN when the model has none (then 0.5 is the usual default). Written to
 * and read from the model file, copied by ng_model_clone. set_threshold: NaN removes it; NG_EINVAL for a
 * value outside [0, 1]. */
NG_EXPORT double ng_model_threshold(const ng_model *m);
NG_EXPORT int ng_model_set_threshold(ng_model *m, double threshold);

/* A workspace: every buffer a forward (and, in training mode, backward) pass of up to max_batch examples
 * needs, allocated once. Not shared between threads. */
typedef struct ng_nn_work ng_nn_work;

NG_EXPORT int ng_nn_work_create(const ng_model *m, size_t max_batch, bool training, ng_nn_work **out);
NG_EXPORT void ng_nn_work_destroy(ng_nn_work **w);

/* The seed and step that key dropout masks in training mode: stream (seed, NG_RNG_DROPOUT, step, layer),
 * layer being the layer's index in the spec (0 = the first line after input) and step taken modulo 2^32. One
 * u32 draw per element, batch-major; an element is kept when draw / 2^32 >= p. The backward pass regenerates
 * the mask of the forward pass it follows (no mask is stored), even if this is called in between. */
NG_EXPORT void ng_nn_work_set_dropout(ng_nn_work *w, uint64_t seed, uint64_t step);

/* Forward pass of `batch` examples (x: batch x input_size floats) with the parameters `params` (a vector laid
 * out like the model's, e.g. a candidate of an optimizer). *out points into the workspace (or at x itself
 * when no layer computes, e.g. a lone flatten): batch x output_size, valid until the next pass on the
 * workspace. A training workspace copies x when the backward pass needs it, so x may change afterwards. The
 * bits of an example's output may depend on the batch size (sgemm's blocking), never on anything else. No
 * allocation. NG_EINVAL for batch > max_batch or a workspace made for another model. */
NG_EXPORT int ng_nn_forward(const ng_model *m, const float *params, ng_nn_work *w, const float *x,
                            size_t batch, const float **out);

/* The layers [from, to) of a forward pass on an evaluation workspace: act is the value entering layer `from`
 * (batch x its size per example; the input when from is 0), *out the value leaving layer to - 1, valid until
 * the next pass. ng_nn_forward is the range [0, nlayers). The output of the first linear layer
 * (ng_model_first_linear) is always a place to cut, e.g. to compute it once and combine its outputs; a
 * layer the executor fuses with the next ones (a dense or conv2d layer with the relu, or the batchnorm and
 * relu, after it) is not. No allocation. NG_EINVAL for a training workspace, a range out of order or beyond
 * the layers, `from` inside a residual group, a cut inside a fused group, batch > max_batch. */
NG_EXPORT int ng_nn_forward_range(const ng_model *m, const float *params, ng_nn_work *w, size_t from,
                                  size_t to, const float *act, size_t batch, const float **out);

/* The index of the model's first computing layer, its output size per example and its multiply-adds per
 * output value (dense: its inputs; conv2d: in channels x k x k), when it is dense or conv2d (only a flatten
 * may come before it): a layer whose output is linear in its parameters. NG_ENOTFOUND otherwise. */
NG_EXPORT int ng_model_first_linear(const ng_model *m, size_t *layer, size_t *out_size, size_t *fan_in);

/* The number of layers: the spec's lines after `input` (a residual group's `residual` and `end` count). */
NG_EXPORT size_t ng_model_nlayers(const ng_model *m);

/* Backward pass after a forward pass in training mode on the same workspace: dout (batch x output_size) is
 * the gradient of the loss with respect to the outputs; the gradient with respect to the parameters is ADDED
 * to grad (nparams floats). Batch-norm running statistics are constants (inference form): their entries of
 * grad are left as they are. `params` must be the vector of the forward pass. No allocation. NG_EORDER
 * without a training forward (or on an evaluation workspace). */
NG_EXPORT int ng_nn_backward(const ng_model *m, const float *params, ng_nn_work *w, const float *dout,
                             float *grad);

#ifdef __cplusplus
}
#endif
#endif
