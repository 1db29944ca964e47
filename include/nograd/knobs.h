/* Knobs: what `nograd retrofit` tunes. A search vector x of n doubles maps onto a model's parameters (and a
 * decision threshold); everything it does not name stays as it is in a base parameter vector.
 *
 * A knob spec is a comma-separated list of items, filled into x in the order given:
 *
 *   NAME            a whole tensor of the model's index (fc3.bias, conv1.weight), in its PyTorch layout
 *   NAME[a:b]       rows a .. b-1 along the first dimension (output channels of a conv weight, rows of a
 *                   dense weight, entries of a bias); a or b may be left out ([:4], [2:])
 *   NAME[i]         row i alone
 *   scale:LAYER     one multiplier on the output of the dense or conv2d layer LAYER (its weight and its
 *                   bias are multiplied)
 *   temperature     the logits divided by T; folded into the last dense layer, which must produce the
 *                   model's output (nothing may follow it but softmax or dropout)
 *   offsets         C per-class offsets added to the logits (C = that last dense layer's outputs); with
 *                   temperature, b' = b / T + o
 *   threshold       the decision threshold of a binary classifier (class 1 when softmax[1] >= t); not a
 *                   parameter: ng_knobs_apply hands it back and the caller stores it in the model
 *
 * Starting point x0: the model's values for tensors and slices, 1 for scales and temperature, 0 for offsets,
 * the model's stored threshold (ng_model_threshold) or 0.5 for threshold. Bounds: scales and temperature in
 * [NG_KNOBS_POS_MIN, NG_KNOBS_POS_MAX], threshold in [0, 1], everything else unbounded.
 *
 * Order of application (ng_knobs_apply): the tensors and slices are set, then the scales multiply their
 * layers, then temperature and offsets fold into the last dense layer. Each parameter is computed in double
 * from its base (or x) value and rounded to float once, so at x0 the base parameters come back bit for bit.
 *
 * An item may appear once, and slices (or a slice and its whole tensor) may not overlap. A knob set keeps
 * no pointer to the model it was parsed against, but it only fits parameter vectors laid out like that
 * model's. Nothing here is collective; a knob set is read-only after parsing, so threads may share one. */
#ifndef NOGRAD_KNOBS_H
#define NOGRAD_KNOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "nograd/export.h"
#include "nograd/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NG_KNOBS_POS_MIN 1e-3 /* lower bound of scale: and temperature knobs */
#define NG_KNOBS_POS_MAX 1e3  /* upper bound of scale: and temperature knobs */

typedef struct ng_knobs ng_knobs;

/* Parses a knob spec against a model. Errors begin with "--params 'ITEM': " and say what is wrong:
 * NG_ENOTFOUND for a tensor or layer that the model does not have (with the closest names and a pointer to
 * `nograd retrofit --list-params`); NG_EINVAL for a malformed item, a slice out of range, scale: of a layer
 * without weights, temperature or offsets when the model's output is not a dense layer, threshold on a
 * model without exactly 2 outputs, an item given twice, overlapping slices, an empty spec; NG_ENOMEM. */
NG_EXPORT int ng_knobs_parse(const ng_model *m, const char *spec, ng_knobs **out);

/* Frees; accepts NULL and clears the pointer. */
NG_EXPORT void ng_knobs_destroy(ng_knobs **k);

/* The dimension n of the search vector. */
NG_EXPORT size_t ng_knobs_dim(const ng_knobs *k);

/* The starting point (n doubles): the model's values at parse time, see above. */
NG_EXPORT void ng_knobs_x0(const ng_knobs *k, double *x);

/* The bounds (n doubles each): -INFINITY / INFINITY where a coordinate is unbounded. */
NG_EXPORT void ng_knobs_bounds(const ng_knobs *k, double *lo, double *hi);

/* The parameters of the candidate x: params = base_params with the knobs applied (nparams floats each,
 * not overlapping). *threshold (when threshold is not NULL) receives x's threshold coordinate as it is, or
 * NaN when there is no threshold knob. x should lie within the bounds (a temperature of 0 gives infinite
 * weights); nothing is clamped. Deterministic, no allocation, no error. */
NG_EXPORT void ng_knobs_apply(const ng_knobs *k, const float *base_params, const double *x, float *params,
                    double *threshold);

/* A readable name of coordinate i, written into buf (len bytes, cut if needed) and returned: "offsets[3]",
 * "fc3.bias[2]", "conv1.weight[0,1,2,2]", "scale:fc2", "temperature", "threshold". "?" when i >= n. */
NG_EXPORT const char *ng_knobs_coord_name(const ng_knobs *k, size_t i, char *buf, size_t len);

/* Whether the spec has a threshold item. */
NG_EXPORT bool ng_knobs_has_threshold(const ng_knobs *k);

/* For `nograd retrofit --list-params MODEL.h5`: a table of every tensor (name, shape, size, slice syntax),
 * the layers scale: accepts, whether temperature and offsets are available (and C), whether threshold is.
 * NG_EIO when writing fails. */
NG_EXPORT int ng_knobs_list(const ng_model *m, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
