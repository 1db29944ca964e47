/* The ONNX reader (src/nn/onnx_graph.h): a .onnx file unpacked by protobuf-c (C code generated at build time
 * from Debian's onnx.proto) and copied into plain structs that the graph executor reads, so that nothing
 * past this file sees protobuf-c.
 *
 * Everything taken from the file is checked before it is used: the byte count of every tensor against its
 * dimensions (with checked arithmetic), ranks, data types, the opset, external data. Tensor data is copied
 * into host order from whichever field holds it (raw_data is little-endian by the ONNX spec; float_data,
 * int64_data, int32_data and double_data are decoded by protobuf-c). The unpacked ModelProto is kept for
 * the writer (onnx_write.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/checked.h"
#include "nn/onnx_graph.h"
#include "nograd/error.h"
#include <onnx/onnx.pb-c.h> /* generated at build time from Debian's onnx.proto */

#define MAX_FILE ((size_t)1 << 31) /* protobuf's own limit is 2 GiB; larger models use external data */

static char *dup_str(const char *s) {
  return strdup(s ? s : "");
}

static size_t elem_size(int32_t dtype) {
  switch (dtype) {
    case NG__ONNX_FLOAT:
    case NG__ONNX_INT32:
      return 4;
    case NG__ONNX_UINT8:
    case NG__ONNX_INT8:
    case NG__ONNX_BOOL:
      return 1;
    case NG__ONNX_INT64:
    case NG__ONNX_DOUBLE:
      return 8;
    default:
      return 0;
  }
}

static const char *dtype_name(int32_t t) {
  static const char *const names[] = {"undefined", "float",  "uint8",     "int8",       "uint16",  "int16",
                                      "int32",     "int64",  "string",    "bool",       "float16", "double",
                                      "uint32",    "uint64", "complex64", "complex128", "bfloat16"};
  return t >= 0 && (size_t)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Copies the tensor proto t into out; `what` names it in messages ("initializer conv1.weight"). */
static int read_tensor(const char *path, const char *what, const Onnx__TensorProto *t, ng__onnx_tensor *out) {
  out->name = dup_str(t->name);
  if (!out->name) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  out->dtype = t->data_type;
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return ng_error(
        NG_EFORMAT,
        "%s: %s is stored as external data (a separate file), which nograd does not read: save the "
        "model with its weights inside (onnx.save without save_as_external_data)",
        path, what);
  if (t->n_dims > NG__ONNX_MAX_DIMS)
    return ng_error(NG_EFORMAT, "%s: %s has %zu dimensions, more than the %d nograd handles", path, what,
                    t->n_dims, NG__ONNX_MAX_DIMS);
  size_t numel = 1;
  out->ndim = t->n_dims;
  for (size_t k = 0; k < t->n_dims; k++) {
    if (t->dims[k] < 0 || !ng__mul(numel, (size_t)t->dims[k], &numel))
      return ng_error(NG_EFORMAT, "%s: %s has dimension %zu of %lld", path, what, k, (long long)t->dims[k]);
    out->dims[k] = t->dims[k];
  }
  size_t es = elem_size(t->data_type), nbytes;
  if (!es)
    return ng_error(NG_EFORMAT,
                    "%s: %s holds %s values; nograd reads float, double, int64, int32, int8, uint8 "
                    "and bool tensors",
                    path, what, dtype_name(t->data_type));
  if (!ng__mul(numel, es, &nbytes))
    return ng_error(NG_EFORMAT, "%s: %s of %zu elements is too large", path, what, numel);
  /* The bytes the file holds for it, counted before anything is allocated: a shape alone (4 TB for 8
   * bytes of data) must not allocate. */
  size_t have;
  if (t->has_raw_data)
    have = t->raw_data.len;
  else if (t->data_type == NG__ONNX_FLOAT)
    have = t->n_float_data * 4;
  else if (t->data_type == NG__ONNX_DOUBLE)
    have = t->n_double_data * 8;
  else if (t->data_type == NG__ONNX_INT64)
    have = t->n_int64_data * 8;
  else if (t->data_type == NG__ONNX_INT32)
    have = t->n_int32_data * 4;
  else /* int8, uint8, bool: one int32 each */
    have = t->n_int32_data;
  if (have != nbytes)
    return ng_error(NG_EFORMAT, "%s: %s has %zu bytes of %s data for %zu elements (%zu bytes expected)", path,
                    what, have, dtype_name(t->data_type), numel, nbytes);
  out->nbytes = nbytes;
  out->data = malloc(nbytes ? nbytes : 1);
  if (!out->data) return ng_error(NG_ENOMEM, "%s: out of memory for %s (%zu bytes)", path, what, nbytes);
  if (!nbytes) return NG_OK;
  if (t->has_raw_data) /* little-endian by the ONNX spec, as the hosts nograd runs on (x86, arm) */
    memcpy(out->data, t->raw_data.data, nbytes);
  else if (t->data_type == NG__ONNX_FLOAT)
    memcpy(out->data, t->float_data, nbytes);
  else if (t->data_type == NG__ONNX_DOUBLE)
    memcpy(out->data, t->double_data, nbytes);
  else if (t->data_type == NG__ONNX_INT64)
    memcpy(out->data, t->int64_data, nbytes);
  else if (t->data_type == NG__ONNX_INT32)
    memcpy(out->data, t->int32_data, nbytes);
  else
    for (size_t i = 0; i < numel; i++)
      ((unsigned char *)out->data)[i] = (unsigned char)t->int32_data[i];
  return NG_OK;
}

static int read_value(const char *path, const Onnx__ValueInfoProto *v, ng__onnx_value *out) {
  out->name = dup_str(v->name);
  if (!out->name) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  if (!v->type || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !v->type->tensor_type)
    return NG_OK; /* not a tensor, or untyped: the executor says so if it matters */
  const Onnx__TypeProto__Tensor *tt = v->type->tensor_type;
  out->dtype = tt->has_elem_type ? tt->elem_type : 0;
  if (!tt->shape) return NG_OK;
  if (tt->shape->n_dim > NG__ONNX_MAX_DIMS)
    return ng_error(NG_EFORMAT, "%s: graph value %s has %zu dimensions, more than the %d nograd handles",
                    path, out->name, tt->shape->n_dim, NG__ONNX_MAX_DIMS);
  out->has_shape = 1;
  out->ndim = tt->shape->n_dim;
  for (size_t k = 0; k < out->ndim; k++) {
    const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[k];
    out->dims[k] = -1;
    if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0)
      out->dims[k] = d->dim_value;
    else if (d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param)
      snprintf(out->dim_param[k], sizeof out->dim_param[k], "%s", d->dim_param);
  }
  return NG_OK;
}

static int read_attr(const char *path, const ng__onnx_node *n, const Onnx__AttributeProto *a,
                     ng__onnx_attr *out) {
  out->name = dup_str(a->name);
  if (!out->name) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
      out->type = NG__ATTR_FLOAT;
      out->f = a->f;
      return NG_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
      out->type = NG__ATTR_INT;
      out->i = a->i;
      return NG_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
      out->type = NG__ATTR_STRING;
      out->s = malloc(a->s.len + 1);
      if (!out->s) return ng_error(NG_ENOMEM, "%s: out of memory", path);
      if (a->s.len) memcpy(out->s, a->s.data, a->s.len);
      out->s[a->s.len] = '\0';
      return NG_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
      out->type = NG__ATTR_INTS;
      out->count = a->n_ints;
      out->ints = malloc((a->n_ints ? a->n_ints : 1) * sizeof *out->ints);
      if (!out->ints) return ng_error(NG_ENOMEM, "%s: out of memory", path);
      if (a->n_ints) memcpy(out->ints, a->ints, a->n_ints * sizeof *out->ints);
      return NG_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
      out->type = NG__ATTR_FLOATS;
      out->count = a->n_floats;
      out->floats = malloc((a->n_floats ? a->n_floats : 1) * sizeof *out->floats);
      if (!out->floats) return ng_error(NG_ENOMEM, "%s: out of memory", path);
      for (size_t k = 0; k < a->n_floats; k++)
        out->floats[k] = a->floats[k];
      return NG_OK;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR: {
      out->type = NG__ATTR_TENSOR;
      if (!a->t)
        return ng_error(NG_EFORMAT, "%s: node %s (%s): attribute %s has no tensor", path, n->name, n->op_type,
                        out->name);
      out->tensor = calloc(1, sizeof *out->tensor);
      if (!out->tensor) return ng_error(NG_ENOMEM, "%s: out of memory", path);
      char what[200];
      snprintf(what, sizeof what, "the %s attribute of node %s (%s)", out->name, n->name, n->op_type);
      return read_tensor(path, what, a->t, out->tensor);
    }
    default:
      return ng_error(
          NG_EFORMAT,
          "%s: node %s (%s): attribute %s is of a kind nograd does not read (graphs, strings lists, "
          "sparse tensors: control flow and the like are outside the op set)",
          path, n->name, n->op_type, out->name);
  }
}

static int read_node(const char *path, size_t index, const Onnx__NodeProto *p, ng__onnx_node *n) {
  n->op_type = dup_str(p->op_type);
  n->domain = dup_str(p->domain);
  if (p->name && *p->name) {
    n->name = dup_str(p->name);
  } else if (n->op_type) {
    size_t len = strlen(n->op_type) + 24;
    if ((n->name = malloc(len))) snprintf(n->name, len, "%s_%zu", n->op_type, index);
  }
  /* One spare entry each, zeroed: ng__onnx_free frees entries up to and including the count, so that a
   * node whose reading failed half-way is freed whole. */
  n->inputs = calloc(p->n_input + 1, sizeof *n->inputs);
  n->outputs = calloc(p->n_output + 1, sizeof *n->outputs);
  n->attrs = calloc(p->n_attribute + 1, sizeof *n->attrs);
  if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs || !n->attrs)
    return ng_error(NG_ENOMEM, "%s: out of memory", path);
  for (size_t k = 0; k < p->n_input; k++, n->ninputs++)
    if (!(n->inputs[k] = dup_str(p->input[k]))) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  for (size_t k = 0; k < p->n_output; k++, n->noutputs++)
    if (!(n->outputs[k] = dup_str(p->output[k]))) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  for (size_t k = 0; k < p->n_attribute; k++, n->nattrs++)
    NG_CALL(read_attr(path, n, p->attribute[k], &n->attrs[k]));
  return NG_OK;
}

/* How deep messages may nest in a file: protobuf-c unpacks recursively, and a 2 MB file of graphs nested in
 * graphs overflows its stack. ONNX models nest a few levels per subgraph (graph, node, attribute). */
#define MAX_NESTING 100

/* Reads a varint at b[*at..len); false when it runs past the end or over 10 bytes. */
static bool read_varint(const uint8_t *b, size_t len, size_t *at, uint64_t *v) {
  *v = 0;
  for (unsigned shift = 0; shift < 70 && *at < len; shift += 7) {
    uint8_t c = b[(*at)++];
    if (shift < 64) *v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

/* Whether the message of type d encoded in b[0..len) nests its message fields at most MAX_NESTING - depth
 * levels deeper, scanning the wire format with protobuf-c's descriptors before it unpacks anything (and
 * recursing no deeper than that itself). Bytes that are not well formed end the scan with true: protobuf-c
 * refuses them. (Written on branch onnxio, where a file of 100,000 nested graphs crashed the unpacking.) */
static bool nesting_ok(const ProtobufCMessageDescriptor *d, const uint8_t *b, size_t len, int depth) {
  size_t at = 0;
  while (at < len) {
    uint64_t key, n;
    if (!read_varint(b, len, &at, &key)) return true;
    switch (key & 7) {
      case 0:
        if (!read_varint(b, len, &at, &n)) return true;
        break;
      case 1:
      case 5:
        if (len - at < ((key & 7) == 1 ? 8u : 4u)) return true;
        at += (key & 7) == 1 ? 8 : 4;
        break;
      case 2: {
        if (!read_varint(b, len, &at, &n) || n > len - at) return true;
        const ProtobufCFieldDescriptor *fd =
            key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
        if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
          if (depth + 1 >= MAX_NESTING) return false;
          if (!nesting_ok(fd->descriptor, b + at, (size_t)n, depth + 1)) return false;
        }
        at += (size_t)n;
      } break;
      default:
        return true;
    }
  }
  return true;
}

/* Whether no message in the tree under m keeps an unknown field of number 0. protobuf-c accepts such a field
 * when its tag is written in more than one byte and keeps it, but refuses the one-byte tag it packs for it,
 * so a file read with one could not be read again once nograd wrote it: it is refused as malformed (found
 * by tests/fuzz/fuzz_onnx.c). Walks every message field through protobuf-c's descriptors, oneof members only
 * when set; the recursion is as deep as protobuf-c's own unpacking went. */
static bool field_numbers_valid(const ProtobufCMessage *m) {
  for (unsigned k = 0; k < m->n_unknown_fields; k++)
    if (m->unknown_fields[k].tag == 0) return false;
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const char *base = (const char *)m;
  for (unsigned f = 0; f < d->n_fields; f++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[f];
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
      uint32_t which;
      memcpy(&which, base + fd->quantifier_offset, sizeof which);
      if (which != fd->id) continue;
    }
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n;
      ProtobufCMessage **v;
      memcpy(&n, base + fd->quantifier_offset, sizeof n);
      memcpy(&v, base + fd->offset, sizeof v);
      for (size_t i = 0; i < n; i++)
        if (v[i] && !field_numbers_valid(v[i])) return false;
    } else {
      ProtobufCMessage *sub;
      memcpy(&sub, base + fd->offset, sizeof sub);
      if (sub && !field_numbers_valid(sub)) return false;
    }
  }
  return true;
}

/* The whole file in memory. */
static int slurp(const char *path, uint8_t **buf, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return ng_error(NG_EIO, "cannot open ONNX model '%s': %s", path, strerror(errno));
  struct stat sb;
  int st = NG_OK;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = ng_error(NG_EIO, "'%s' is not a regular file", path);
  } else if ((size_t)sb.st_size > MAX_FILE) {
    st = ng_error(NG_EFORMAT, "%s: %lld bytes, more than ONNX's 2 GiB limit for a file without external data",
                  path, (long long)sb.st_size);
  } else if (!(*buf = malloc(sb.st_size ? (size_t)sb.st_size : 1))) {
    st = ng_error(NG_ENOMEM, "%s: out of memory for %lld bytes", path, (long long)sb.st_size);
  } else if (fread(*buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
    st =
        ng_error(NG_EIO, "cannot read ONNX model '%s': %s", path, ferror(f) ? strerror(errno) : "short read");
  } else {
    *len = (size_t)sb.st_size;
  }
  fclose(f);
  return st;
}

static int fill(const char *path, const Onnx__ModelProto *mp, ng__onnx_graph *g) {
  g->ir_version = mp->has_ir_version ? mp->ir_version : 0;
  g->opset = -1;
  for (size_t k = 0; k < mp->n_opset_import; k++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[k];
    if (o && (!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx")) && o->has_version)
      g->opset = o->version;
  }
  if (g->opset < 13 || g->opset > 17)
    return ng_error(NG_EFORMAT,
                    g->opset < 0
                        ? "%s: no opset of the default ONNX domain is declared (nograd reads 13 to 17)"
                        : "%s: opset %lld of the default domain; nograd reads opsets 13 to 17 (export "
                          "with opset_version=13..17)",
                    path, (long long)g->opset);
  size_t plen = strlen(mp->producer_name ? mp->producer_name : "") +
                strlen(mp->producer_version ? mp->producer_version : "") + 2;
  if (!(g->producer = malloc(plen))) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  snprintf(g->producer, plen, "%s %s", mp->producer_name ? mp->producer_name : "",
           mp->producer_version ? mp->producer_version : "");
  const Onnx__GraphProto *gp = mp->graph;
  if (!gp) return ng_error(NG_EFORMAT, "%s: the model has no graph", path);
  if (gp->n_sparse_initializer)
    return ng_error(NG_EFORMAT, "%s: the graph has sparse initializers, which nograd does not read", path);
  g->meta_keys = calloc(mp->n_metadata_props + 1, sizeof *g->meta_keys);
  g->meta_values = calloc(mp->n_metadata_props + 1, sizeof *g->meta_values);
  g->nodes = calloc(gp->n_node + 1, sizeof *g->nodes);
  g->inits = calloc(gp->n_initializer + 1, sizeof *g->inits);
  g->inputs = calloc(gp->n_input + 1, sizeof *g->inputs);
  g->outputs = calloc(gp->n_output + 1, sizeof *g->outputs);
  if (!g->meta_keys || !g->meta_values || !g->nodes || !g->inits || !g->inputs || !g->outputs)
    return ng_error(NG_ENOMEM, "%s: out of memory", path);
  for (size_t k = 0; k < mp->n_metadata_props; k++, g->nmeta++) {
    g->meta_keys[k] = dup_str(mp->metadata_props[k]->key);
    g->meta_values[k] = dup_str(mp->metadata_props[k]->value);
    if (!g->meta_keys[k] || !g->meta_values[k]) return ng_error(NG_ENOMEM, "%s: out of memory", path);
  }
  for (size_t k = 0; k < gp->n_initializer; k++) {
    char what[200];
    snprintf(what, sizeof what, "initializer %s", gp->initializer[k]->name ? gp->initializer[k]->name : "?");
    g->ninits++;
    NG_CALL(read_tensor(path, what, gp->initializer[k], &g->inits[k]));
  }
  for (size_t k = 0; k < gp->n_input; k++) {
    const char *name = gp->input[k]->name ? gp->input[k]->name : "";
    int is_init = 0;
    for (size_t j = 0; j < g->ninits && !is_init; j++)
      is_init = !strcmp(g->inits[j].name, name);
    if (is_init) continue; /* keep_initializers_as_inputs exports list them as inputs too */
    NG_CALL(read_value(path, gp->input[k], &g->inputs[g->ninputs++]));
  }
  for (size_t k = 0; k < gp->n_output; k++)
    NG_CALL(read_value(path, gp->output[k], &g->outputs[g->noutputs++]));
  for (size_t k = 0; k < gp->n_node; k++)
    NG_CALL(read_node(path, k, gp->node[k], &g->nodes[g->nnodes++]));
  return NG_OK;
}

int ng__onnx_read(const char *path, ng__onnx_graph **out) {
  if (!out) return ng_error(NG_EINVAL, "ng__onnx_read: out is NULL");
  *out = NULL;
  uint8_t *buf = NULL;
  size_t len = 0;
  NG_CALL(slurp(path, &buf, &len));
  if (!nesting_ok(&onnx__model_proto__descriptor, buf, len, 0)) {
    free(buf);
    return ng_error(NG_EFORMAT, "%s: messages nested more than %d deep (not an ONNX model nograd reads)",
                    path, MAX_NESTING);
  }
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
  free(buf);
  if (mp && !field_numbers_valid(&mp->base)) {
    onnx__model_proto__free_unpacked(mp, NULL);
    mp = NULL;
  }
  if (!mp)
    return ng_error(NG_EFORMAT, "%s: not an ONNX model, or truncated (the protobuf message does not parse)",
                    path);
  ng__onnx_graph *g = calloc(1, sizeof *g);
  if (!g || !(g->path = strdup(path))) {
    free(g);
    onnx__model_proto__free_unpacked(mp, NULL);
    return ng_error(NG_ENOMEM, "%s: out of memory", path);
  }
  g->proto = mp;
  int st = fill(path, mp, g);
  if (st != NG_OK) {
    ng__onnx_free(&g);
    return st;
  }
  *out = g;
  return NG_OK;
}

static void free_tensor(ng__onnx_tensor *t) {
  free(t->name);
  free(t->data);
}

/* Frees a node's contents: entries up to and including the counts (the arrays have a spare zeroed one). */
static void free_node(ng__onnx_node *n) {
  for (size_t k = 0; n->inputs && k <= n->ninputs; k++)
    free(n->inputs[k]);
  for (size_t k = 0; n->outputs && k <= n->noutputs; k++)
    free(n->outputs[k]);
  for (size_t k = 0; n->attrs && k <= n->nattrs; k++) {
    ng__onnx_attr *a = &n->attrs[k];
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    if (a->tensor) free_tensor(a->tensor);
    free(a->tensor);
  }
  free(n->inputs);
  free(n->outputs);
  free(n->attrs);
  free(n->name);
  free(n->op_type);
  free(n->domain);
}

void ng__onnx_free(ng__onnx_graph **gp) {
  if (!gp || !*gp) return;
  ng__onnx_graph *g = *gp;
  for (size_t i = 0; i < g->nnodes; i++)
    free_node(&g->nodes[i]);
  for (size_t i = 0; i < g->ninits; i++)
    free_tensor(&g->inits[i]);
  for (size_t i = 0; i < g->ninputs; i++)
    free(g->inputs[i].name);
  for (size_t i = 0; i < g->noutputs; i++)
    free(g->outputs[i].name);
  for (size_t i = 0; i < g->nmeta; i++) {
    free(g->meta_keys[i]);
    free(g->meta_values[i]);
  }
  free(g->meta_keys);
  free(g->meta_values);
  free(g->nodes);
  free(g->inits);
  free(g->inputs);
  free(g->outputs);
  free(g->producer);
  free(g->path);
  if (g->proto) onnx__model_proto__free_unpacked(g->proto, NULL);
  free(g);
  *gp = NULL;
}
