/* The ONNX writer (src/nn/onnx_graph.h): the file that was read, with new data for some float initializers
 * and a few metadata entries, everything else as read.
 *
 * What is packed is a shallow copy of the ModelProto the reader kept, which stays as read (the graph may be
 * written many times, e.g. by retrofit after every improving generation): a replaced initializer is a copy
 * whose raw_data points at the caller's floats (ONNX's raw_data is little-endian, as the hosts nograd runs
 * on) and whose float_data is empty; a parameter that the exporter had made an Identity of another
 * initializer becomes an initializer of its own and its Identity node is left out. The packed bytes
 * go to PATH.tmp, which is synced and renamed over PATH (and the directory synced): PATH is either the old
 * file or the new one, never half of one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checked.h"
#include "io/h5util.h"
#include "nn/onnx_graph.h"
#include "nograd/error.h"
#include <onnx/onnx.pb-c.h> /* generated at build time from Debian's onnx.proto */

/* The index of the initializer called `name`, or SIZE_MAX. */
static size_t init_index(const Onnx__GraphProto *gp, const char *name) {
  for (size_t i = 0; i < gp->n_initializer; i++)
    if (gp->initializer[i]->name && !strcmp(gp->initializer[i]->name, name)) return i;
  return SIZE_MAX;
}

static Onnx__TensorProto *find_init(const Onnx__GraphProto *gp, const char *name) {
  size_t i = init_index(gp, name);
  return i == SIZE_MAX ? NULL : gp->initializer[i];
}

/* The Identity node whose output is `name` and whose input is a float initializer, or SIZE_MAX. */
static size_t find_identity(const Onnx__GraphProto *gp, const char *name) {
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *n = gp->node[i];
    if (n->op_type && !strcmp(n->op_type, "Identity") && n->n_input == 1 && n->n_output == 1 &&
        !strcmp(n->output[0], name)) {
      const Onnx__TensorProto *src = find_init(gp, n->input[0]);
      if (src && src->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) return i;
    }
  }
  return SIZE_MAX;
}

static size_t numel_of(const Onnx__TensorProto *t) {
  size_t n = 1;
  for (size_t k = 0; k < t->n_dims; k++)
    n *= (size_t)t->dims[k]; /* checked by the reader */
  return n;
}

int ng__onnx_write(const ng__onnx_graph *g, const char *path, const char *const *names,
                   const float *const *values, size_t count, const char *const *meta_keys,
                   const char *const *meta_values, size_t nmeta) {
  if (!g || !g->proto || !path) return ng_error(NG_EINVAL, "ng__onnx_write: NULL argument");
  Onnx__ModelProto *mp = g->proto;
  Onnx__GraphProto *gp = mp->graph;
  Onnx__TensorProto *fresh = calloc(count + 1, sizeof *fresh); /* the written initializers */
  Onnx__TensorProto **inits = calloc(gp->n_initializer + count + 1, sizeof *inits);
  Onnx__NodeProto **nodes = calloc(gp->n_node + 1, sizeof *nodes);
  unsigned char *drop = calloc(gp->n_node + 1, 1);
  Onnx__StringStringEntryProto *meta = calloc(nmeta + 1, sizeof *meta);
  Onnx__StringStringEntryProto **props = calloc(mp->n_metadata_props + nmeta + 1, sizeof *props);
  size_t ninits = gp->n_initializer, nnodes = 0, nprops = mp->n_metadata_props;
  uint8_t *buf = NULL;
  int st = NG_OK;
  if (!fresh || !inits || !nodes || !drop || !meta || !props) {
    st = ng_error(NG_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  if (gp->n_initializer) memcpy(inits, gp->initializer, gp->n_initializer * sizeof *inits);
  if (mp->n_metadata_props) memcpy(props, mp->metadata_props, mp->n_metadata_props * sizeof *props);
  for (size_t k = 0; k < count; k++) {
    size_t i = init_index(gp, names[k]);
    size_t id = i != SIZE_MAX ? SIZE_MAX : find_identity(gp, names[k]);
    if (i == SIZE_MAX && id == SIZE_MAX) {
      st = ng_error(NG_EINVAL, "%s: %s is not a float initializer of %s (nor an Identity of one)", path,
                    names[k], g->path);
      goto done;
    }
    Onnx__TensorProto *t = &fresh[k];
    if (i != SIZE_MAX) { /* a copy of the initializer, in its place */
      if (gp->initializer[i]->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        st = ng_error(NG_EINVAL, "%s: initializer %s of %s is not float", path, names[k], g->path);
        goto done;
      }
      *t = *gp->initializer[i];
      inits[i] = t;
    } else { /* a new initializer with the Identity's output name and its source's dims */
      const Onnx__TensorProto *src = find_init(gp, gp->node[id]->input[0]);
      onnx__tensor_proto__init(t);
      t->name = (char *)names[k];
      t->n_dims = src->n_dims;
      t->dims = src->dims;
      t->has_data_type = 1;
      t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
      inits[ninits++] = t;
      drop[id] = 1;
    }
    size_t bytes;
    if (!ng__mul(numel_of(t), sizeof(float), &bytes)) {
      st = ng_error(NG_EINVAL, "%s: initializer %s is too large", path, names[k]);
      goto done;
    }
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = (uint8_t *)(uintptr_t)values[k];
    t->n_float_data = 0;
  }
  for (size_t i = 0; i < gp->n_node; i++)
    if (!drop[i]) nodes[nnodes++] = gp->node[i];
  for (size_t k = 0; k < nmeta; k++) {
    size_t at = nprops;
    for (size_t i = 0; i < mp->n_metadata_props; i++)
      if (props[i]->key && !strcmp(props[i]->key, meta_keys[k])) at = i;
    onnx__string_string_entry_proto__init(&meta[k]);
    meta[k].key = (char *)meta_keys[k];
    meta[k].value = (char *)meta_values[k];
    props[at] = &meta[k];
    if (at == nprops) nprops++;
  }
  /* Pack a shallow copy with these arrays; the parsed file is not touched. */
  Onnx__GraphProto graph = *gp;
  Onnx__ModelProto model = *mp;
  graph.initializer = inits;
  graph.n_initializer = ninits;
  graph.node = nodes;
  graph.n_node = nnodes;
  model.graph = &graph;
  model.metadata_props = props;
  model.n_metadata_props = nprops;
  size_t len = onnx__model_proto__get_packed_size(&model);
  if (!(buf = malloc(len ? len : 1))) {
    st = ng_error(NG_ENOMEM, "%s: out of memory for %zu bytes", path, len);
    goto done;
  }
  onnx__model_proto__pack(&model, buf);
  static const ng_fs_atomic how = {"ONNX model", "ONNX model", NULL, 0, NULL};
  st = ng_fs_write_atomic(path, &how, buf, len);
done:
  free(buf);
  free(props);
  free(meta);
  free(drop);
  free(nodes);
  free(inits);
  free(fresh);
  return st;
}
