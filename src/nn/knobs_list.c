/* `nograd retrofit --list-params` (ng_knobs_list, include/nograd/knobs.h): the tensors, the units scale:
 * takes, and whether temperature, offsets and threshold apply. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/knobs_units.h"
#include "nn/nn_impl.h"
#include "nograd/error.h"
#include "nograd/knobs.h"

#define NONE SIZE_MAX

static size_t numel(const ng_tensor *t) {
  return t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3];
}

static void shape_text(const ng_tensor *T, char *buf, size_t len) {
  size_t used = (size_t)snprintf(buf, len, "[");
  for (size_t d = 0; d < T->ndim && used < len; d++)
    used += (size_t)snprintf(buf + used, len - used, "%s%zu", d ? ", " : "", T->shape[d]);
  if (used < len) snprintf(buf + used, len - used, "]");
}

int ng_knobs_list(const ng_model *m, FILE *out) {
  if (!m || !out) return ng_error(NG_EINVAL, "ng_knobs_list: NULL argument");
  size_t wname = 4, wshape = 5, wlayer = 0;
  char shape[64];
  ng__knob_unit *units = NULL;
  size_t nunits = 0;
  NG_CALL(ng__knob_units(m, &units, &nunits));
  for (size_t i = 0; i < m->ntensors; i++) {
    shape_text(&m->tensors[i], shape, sizeof shape);
    if (strlen(m->tensors[i].name) > wname) wname = strlen(m->tensors[i].name);
    if (strlen(shape) > wshape) wshape = strlen(shape);
  }
  for (size_t u = 0; u < nunits; u++)
    if (strlen(units[u].name) > wlayer) wlayer = strlen(units[u].name);
  fprintf(out,
          "Tensors: NAME (all of it), NAME[a:b] (rows a to b-1 of its first dimension), NAME[i] (row i)\n");
  fprintf(out, "  %-*s  %-*s  %9s  %5s\n", (int)wname, "name", (int)wshape, "shape", "size", "rows");
  for (size_t i = 0; i < m->ntensors; i++) {
    const ng_tensor *T = &m->tensors[i];
    shape_text(T, shape, sizeof shape);
    fprintf(out, "  %-*s  %-*s  %9zu  %5zu\n", (int)wname, T->name, (int)wshape, shape, numel(T),
            T->shape[0]);
  }
  fprintf(out, "  %zu tensors, %zu parameters\n\n", m->ntensors, m->nparams);

  if (m->onnx)
    fprintf(out,
            "Nodes for scale:NODE, scale:MODULE or scale:PREFIX (one multiplier on the weight and bias of "
            "each node it names)\n");
  else
    fprintf(out, "Layers for scale:LAYER (one multiplier on the layer's weight and bias)\n");
  for (size_t u = 0; u < nunits; u++) {
    const ng__knob_unit *U = &units[u];
    if (m->onnx)
      fprintf(out, "  scale:%-*s  %s, module %s, weight %s%s%s\n", (int)wlayer, U->name, U->kind, U->module,
              m->tensors[U->weight].name, U->bias != NONE ? ", bias " : "",
              U->bias != NONE ? m->tensors[U->bias].name : "");
    else if (!strcmp(U->kind, "dense"))
      fprintf(out, "  scale:%-*s  dense, %zu outputs\n", (int)wlayer, U->name, U->outputs);
    else
      fprintf(out, "  scale:%-*s  conv2d, %zu output channels\n", (int)wlayer, U->name, U->outputs);
  }
  if (!nunits)
    fprintf(out, "  (none: the model has no %s)\n",
            m->onnx ? "Conv, Gemm or MatMul node with a parameter weight" : "dense or conv2d layer");
  fprintf(out, "\n");

  char why[256];
  size_t last = ng__knob_output_unit(m, units, nunits, why, sizeof why);
  if (last != NONE) {
    const ng__knob_unit *U = &units[last];
    fprintf(out, "temperature  yes: the logits of %s divided by T (its weight and bias over T)\n", U->name);
    fprintf(out, "offsets      yes: C = %zu per-class offsets added to %s\n", U->outputs,
            m->tensors[U->bias].name);
  } else {
    fprintf(out, "temperature  no: %s\n", why);
    fprintf(out, "offsets      no: the same reason\n");
  }
  free(units);
  if (m->out_size == 2) {
    double t = ng_model_threshold(m);
    if (isnan(t))
      fprintf(out, "threshold    yes: binary classifier, no threshold stored (starts at 0.5)\n");
    else
      fprintf(out, "threshold    yes: binary classifier, stored threshold %.17g\n", t);
  } else {
    fprintf(out, "threshold    no: the model has %zu outputs; a threshold needs 2\n", m->out_size);
  }
  return ferror(out) ? ng_error(NG_EIO, "--list-params: cannot write the table") : NG_OK;
}
