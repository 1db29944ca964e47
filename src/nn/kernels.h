/* Private: the kernels the backward pass of native models (src/nn/forward.c) calls.
 *
 * Layout: activations NCHW float32, batch-major; weights as PyTorch ([O, C, k, k] and [O]). The kernels do no
 * allocation: `col` is scratch of ng_conv2d_col_size floats that the workspace allocates once. They use one
 * BLAS thread (sgemm) and must give the same bits for the same inputs on every call (no threading, no
 * reductions whose order depends on anything but the shapes). */
#ifndef NOGRAD_NN_KERNELS_H
#define NOGRAD_NN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Output size of a convolution or pooling along one axis: (H + 2 pad - k) / stride + 1, or 0 if k > H + 2
 * pad. */
size_t ng_conv_out(size_t H, size_t k, size_t stride, size_t pad);

/* Scratch floats that ng_conv2d_backward needs for a batch of B examples: C k k Ho Wo, one example's im2col
 * matrix, whatever B (one sgemm per example). */
size_t ng_conv2d_col_size(size_t B, size_t C, size_t H, size_t W, size_t k, size_t stride, size_t pad);

/* Given dy[B, O, Ho, Wo]: dw += dL/dw, db += dL/db, and dx = dL/dx (overwritten; skipped when dx is NULL, as
 * for the first layer). dw or db may also be NULL to skip them. */
void ng_conv2d_backward(const float *x, size_t B, size_t C, size_t H, size_t W, const float *w, size_t O,
                        size_t k, size_t stride, size_t pad, const float *dy, float *dx, float *dw, float *db,
                        float *col);

typedef enum { NG_POOL_MAX = 0, NG_POOL_AVG = 1 } ng_pool_kind;

/* y[B, C, Ho, Wo] = pool(x[B, C, H, W]) without padding (avg divides by k*k). The backward pass calls it to
 * recompute max pooling's argmax from the layer's input (the forward pass is the executor's MaxPool). argmax
 * (B*C*Ho*Wo int32, may be NULL in evaluation) receives the index within the example's channel plane of each
 * maximum (the first one on ties, scanning rows then columns). */
void ng_pool_forward(ng_pool_kind kind, const float *x, size_t B, size_t C, size_t H, size_t W, size_t k,
                     size_t stride, float *y, int32_t *argmax);

/* dx = dL/dx (overwritten) from dy[B, C, Ho, Wo]. Max pooling routes dy through the argmax that its forward
 * pass filled (it must not be NULL here); avg pooling ignores argmax. */
void ng_pool_backward(ng_pool_kind kind, const float *dy, size_t B, size_t C, size_t H, size_t W, size_t k,
                      size_t stride, const int32_t *argmax, float *dx);

/* Inverted dropout with the mask of stream (seed, NG_RNG_DROPOUT, step, layer): y[e] = x[e] / (1 - p) when
 * the e-th u32 draw, as a fraction of 2^32, is at least p, else 0 (y may be x). The native Dropout op's pass
 * and the backward pass's (src/nn/ops/native.c). */
void ng__dropout_apply(uint64_t seed, uint64_t step, uint32_t layer, double p, const float *x, size_t n,
                       float *y);

#endif
