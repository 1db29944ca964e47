#!/usr/bin/python3
"""PyTorch interchange for nograd: model files and dataset files both ways.

    import nograd_torch as ngt                     # with tools/ on sys.path
    ngt.save(model, "model.h5", classes=10, input_shape=(1, 28, 28))
    model = ngt.load("model.h5")                   # an nn.Sequential in eval mode
    ngt.save_dataset(x, y, "data.h5", name="mnist", domain="test", classes=10)
    x, y, meta = ngt.load_dataset("data.h5")

    python3 tools/nograd_torch.py convert-to-torch MODEL.h5 OUT.pt
    python3 tools/nograd_torch.py convert-from-torch IN.pt MODEL.h5 [--input-shape 1,28,28] [--classes K] ...

Model files follow include/nograd/nn.h: /model/spec (the layer list as text), /model/params (float32, the
tensors in spec order, each contiguous, PyTorch layouts), /model/index/{names, offsets, shapes, ndims}, and
attributes of /model: format_version (1) and, when known, classes, train_rows, dataset, and threshold (float64
in [0, 1]: the decision threshold of a binary classifier, class 1 when softmax[1] >= threshold; `nograd eval` uses
it for threshold_error, `nograd retrofit` may set it).

What `save` accepts: an nn.Sequential (nested ones are flattened) of nn.Conv2d (square kernel, equal strides and
paddings, zero padding, bias, no dilation or groups), nn.MaxPool2d and nn.AvgPool2d (no padding, floor mode),
nn.Flatten (from dim 1), nn.Linear (with bias), nn.ReLU, nn.GELU (exact), nn.Tanh, nn.Sigmoid, nn.Softmax
(dim=1 on vectors), nn.BatchNorm1d (on vectors) and nn.BatchNorm2d (in their inference form: running
statistics and eps; without affine parameters they are written as weight 1, bias 0), nn.LayerNorm (over the
whole feature vector of a vector input), nn.Dropout, nn.Identity (dropped) and `Residual` below (x + body(x)).
Anything else raises ValueError naming the layer (its position in the model and its class).

Tensor names: by kind and a running count over the whole model in spec order, starting at 1: "conv1", "conv2"
for convolutions, "fc1", "fc2" for dense layers, "bn1" for batch norms (1d and 2d), "ln1" for layer norms;
the tensors are NAME.weight and NAME.bias, plus NAME.running_mean and NAME.running_var for batch norms. The
names depend only on the order of the layers, so saving a loaded model writes the same file.

Dataset files (DESIGN.md "Files", include/nograd/data.h): /x float32 (N x d, N x S x d, or N x C x H x W), /y int32 labels
(N) or float32 targets (N x t), both chunked along N only (whole rows per chunk); root attributes format
("nograd dataset"), format_version (1), name and domain (strings), classes (int64; 0 for targets).

When this file runs as a command it imports itself as the module `nograd_torch`, so that a model saved by
convert-to-torch refers to nograd_torch.Residual; torch.load of such a file needs tools/ on sys.path.
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
from torch import nn

FORMAT_VERSION = 1  # NG_MODEL_FORMAT_VERSION in include/nograd/nn.h

__all__ = ["Residual", "save", "load", "to_spec", "save_dataset", "load_dataset", "export_onnx", "onnx_parameters",
           "load_onnx", "FORMAT_VERSION"]


class Residual(nn.Module):
    """A residual group: forward(x) = x + body(x). The body's output must have the shape of its input.

    Residual(layer, layer, ...) wraps the layers in an nn.Sequential; Residual(seq) with one nn.Sequential
    uses it as the body."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], nn.Sequential):
            self.body = layers[0]
        else:
            self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.body(x)


# ---------------------------------------------------------------------------------------------------------------
# torch -> spec


def _pair(v, what, where):
    """An int from an int or a tuple of equal ints (PyTorch stores kernel sizes and strides either way)."""
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ValueError("%s: %s %s is not square (only equal values are supported)" % (where, what, tuple(v)))
        v = v[0]
    if not isinstance(v, int):
        raise ValueError("%s: %s %r is not an integer" % (where, what, v))
    return v


def _conv_out(n, k, stride, pad):
    return (n + 2 * pad - k) // stride + 1 if k <= n + 2 * pad else 0


def _shape_str(shape):
    return "x".join(str(s) for s in shape) if shape else "?"


def _flatten(module, path):
    """Yields (path, module) for the layers of module, flattening nested nn.Sequential; Residual stays one item."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _flatten(child, path + [name])
    else:
        yield path, module


def _where(path, module):
    return "layer %s (%s)" % (".".join(path) if path else "<top>", type(module).__name__)


def _infer_input_shape(module):
    """The input shape from the first layer that fixes it (a Linear, BatchNorm1d or LayerNorm), or None."""
    for path, m in _flatten(module, []):
        if isinstance(m, Residual):
            shape = _infer_input_shape(m.body)
            if shape is not None:
                return shape
            continue
        if isinstance(m, nn.Linear):
            return (m.in_features,)
        if isinstance(m, nn.BatchNorm1d):
            return (m.num_features,)
        if isinstance(m, nn.LayerNorm):
            return tuple(m.normalized_shape) if len(m.normalized_shape) == 1 else None
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d, nn.Flatten)):
            return None
    return None


class _Writer:
    """Walks a model, producing spec lines and the list of (name, tensor) in spec order."""

    def __init__(self, raw=False):
        self.lines = []
        self.tensors = []
        self.count = {}
        self.raw = raw  # keep the module's own tensors (for autograd) instead of float32 copies

    def _name(self, kind):
        self.count[kind] = self.count.get(kind, 0) + 1
        return "%s%d" % (kind, self.count[kind])

    def _add(self, name, suffix, t):
        if not self.raw:
            t = t.detach().to(torch.float32).cpu().contiguous()
        self.tensors.append(("%s.%s" % (name, suffix), t))

    def walk(self, module, path, shape):
        for p, m in _flatten(module, path):
            shape = self.layer(p, m, shape)
        return shape

    def layer(self, path, m, shape):
        where = _where(path, m)
        vector = len(shape) == 1
        if isinstance(m, Residual):
            self.lines.append("residual")
            out = self.walk(m.body, path + ["body"], shape)
            if tuple(out) != tuple(shape):
                raise ValueError("%s: the body maps %s to %s; a residual group must keep the shape"
                                 % (where, _shape_str(shape), _shape_str(out)))
            self.lines.append("end")
            return shape
        if isinstance(m, nn.Conv2d):
            if len(shape) != 3:
                raise ValueError("%s: needs a C x H x W input, got %s" % (where, _shape_str(shape)))
            k = _pair(m.kernel_size, "kernel_size", where)
            s = _pair(m.stride, "stride", where)
            if isinstance(m.padding, str):
                raise ValueError("%s: padding=%r is not supported (use an integer)" % (where, m.padding))
            pad = _pair(m.padding, "padding", where)
            if _pair(m.dilation, "dilation", where) != 1:
                raise ValueError("%s: dilation=%r is not supported" % (where, m.dilation))
            if m.groups != 1:
                raise ValueError("%s: groups=%d is not supported" % (where, m.groups))
            if m.padding_mode != "zeros":
                raise ValueError("%s: padding_mode=%r is not supported" % (where, m.padding_mode))
            if m.bias is None:
                raise ValueError("%s: bias=False is not supported" % where)
            if m.in_channels != shape[0]:
                raise ValueError("%s: expects %d input channels, gets %s" % (where, m.in_channels, _shape_str(shape)))
            ho, wo = _conv_out(shape[1], k, s, pad), _conv_out(shape[2], k, s, pad)
            if ho < 1 or wo < 1:
                raise ValueError("%s: kernel %d does not fit the input %s" % (where, k, _shape_str(shape)))
            name = self._name("conv")
            self.lines.append("conv2d %s %d %d stride=%d padding=%d" % (name, m.out_channels, k, s, pad))
            self._add(name, "weight", m.weight)
            self._add(name, "bias", m.bias)
            return (m.out_channels, ho, wo)
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool"
            if len(shape) != 3:
                raise ValueError("%s: needs a C x H x W input, got %s" % (where, _shape_str(shape)))
            k = _pair(m.kernel_size, "kernel_size", where)
            s = _pair(m.stride if m.stride is not None else m.kernel_size, "stride", where)
            if _pair(m.padding, "padding", where) != 0:
                raise ValueError("%s: padding=%r is not supported" % (where, m.padding))
            if m.ceil_mode:
                raise ValueError("%s: ceil_mode=True is not supported" % where)
            if kind == "maxpool":
                if _pair(m.dilation, "dilation", where) != 1:
                    raise ValueError("%s: dilation=%r is not supported" % (where, m.dilation))
                if m.return_indices:
                    raise ValueError("%s: return_indices=True is not supported" % where)
            elif m.divisor_override is not None:
                raise ValueError("%s: divisor_override is not supported" % where)
            ho, wo = _conv_out(shape[1], k, s, 0), _conv_out(shape[2], k, s, 0)
            if ho < 1 or wo < 1:
                raise ValueError("%s: kernel %d does not fit the input %s" % (where, k, _shape_str(shape)))
            self.lines.append("%s %d stride=%d" % (kind, k, s))
            return (shape[0], ho, wo)
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError("%s: only Flatten(start_dim=1, end_dim=-1) is supported" % where)
            self.lines.append("flatten")
            return (int(np.prod(shape)),)
        if isinstance(m, nn.Linear):
            if not vector:
                raise ValueError("%s: needs a vector input (add nn.Flatten), got %s" % (where, _shape_str(shape)))
            if m.in_features != shape[0]:
                raise ValueError("%s: expects %d input features, gets %d" % (where, m.in_features, shape[0]))
            if m.bias is None:
                raise ValueError("%s: bias=False is not supported" % where)
            name = self._name("fc")
            self.lines.append("dense %s %d" % (name, m.out_features))
            self._add(name, "weight", m.weight)
            self._add(name, "bias", m.bias)
            return (m.out_features,)
        if type(m) in (nn.ReLU, nn.Tanh, nn.Sigmoid):
            self.lines.append({nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}[type(m)])
            return shape
        if isinstance(m, nn.GELU):
            if getattr(m, "approximate", "none") != "none":
                raise ValueError("%s: approximate=%r is not supported (only the exact GELU)" % (where, m.approximate))
            self.lines.append("gelu")
            return shape
        if isinstance(m, nn.Softmax):
            if not vector or m.dim not in (1, -1):
                raise ValueError("%s: only Softmax(dim=1) over a vector input is supported (dim=%r, input %s)"
                                 % (where, m.dim, _shape_str(shape)))
            self.lines.append("softmax")
            return shape
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            want = 1 if isinstance(m, nn.BatchNorm1d) else 3
            if len(shape) != want:
                raise ValueError("%s: needs a %s input, got %s"
                                 % (where, "vector" if want == 1 else "C x H x W", _shape_str(shape)))
            if m.num_features != shape[0]:
                raise ValueError("%s: expects %d features, gets %s" % (where, m.num_features, _shape_str(shape)))
            if m.running_mean is None or m.running_var is None:
                raise ValueError("%s: track_running_stats=False is not supported (the inference form needs "
                                 "running statistics)" % where)
            name = self._name("bn")
            self.lines.append("batchnorm %s eps=%r" % (name, float(m.eps)))
            ones, zeros = torch.ones(m.num_features), torch.zeros(m.num_features)
            self._add(name, "weight", m.weight if m.weight is not None else ones)
            self._add(name, "bias", m.bias if m.bias is not None else zeros)
            self._add(name, "running_mean", m.running_mean)
            self._add(name, "running_var", m.running_var)
            return shape
        if isinstance(m, nn.LayerNorm):
            if not vector or tuple(m.normalized_shape) != tuple(shape):
                raise ValueError("%s: only LayerNorm over a whole vector input is supported (normalized_shape %s, "
                                 "input %s)" % (where, tuple(m.normalized_shape), _shape_str(shape)))
            name = self._name("ln")
            self.lines.append("layernorm %s eps=%r" % (name, float(m.eps)))
            ones, zeros = torch.ones(shape[0]), torch.zeros(shape[0])
            self._add(name, "weight", m.weight if m.weight is not None else ones)
            self._add(name, "bias", m.bias if m.bias is not None else zeros)
            return shape
        if type(m) is nn.Dropout:
            self.lines.append("dropout %r" % float(m.p))
            return shape
        if type(m) is nn.Identity:
            return shape
        raise ValueError("%s: unsupported layer %s" % (where, type(m).__name__))


def _check_shape(input_shape):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise ValueError("input_shape %r: expected (F,) or (C, H, W) of positive sizes" % (input_shape,))
    return shape


def to_spec(module, input_shape=None, raw=False):
    """(spec text, [(name, tensor)] in spec order, output shape) for a model; see save(). The tensors are
    float32 copies, or with raw=True the module's own parameters and buffers (a batch or layer norm without
    affine parameters gives new ones and zeros)."""
    if input_shape is None:
        input_shape = getattr(module, "nograd_input_shape", None) or _infer_input_shape(module)
        if input_shape is None:
            raise ValueError("input_shape is needed: the first layer does not fix it (pass e.g. (1, 28, 28))")
    shape = _check_shape(input_shape)
    w = _Writer(raw)
    w.lines.append("input " + " ".join(str(s) for s in shape))
    out = w.walk(module, [], shape)
    return "\n".join(w.lines) + "\n", w.tensors, out


def _atomic_h5(path):
    tmp = "%s.tmp" % path
    return tmp, h5py.File(tmp, "w")


def _finish(tmp, f, path):
    f.flush()
    f.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def save(module, path, classes=None, train_rows=None, dataset=None, input_shape=None, threshold=None):
    """Writes module as a nograd model file at path (atomically: PATH.tmp, fsync, rename).

    input_shape is the shape of one example, (F,) or (C, H, W); it may be left out when the first layer fixes
    it (a Linear, BatchNorm1d or LayerNorm) or the module came from load(). classes, train_rows, dataset and
    threshold (a number in [0, 1]) become attributes of /model. ValueError names an unsupported layer or
    option."""
    if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
        raise ValueError("threshold %r: expected a number in [0, 1]" % (threshold,))
    spec, tensors, _ = to_spec(module, input_shape)
    sizes = [t.numel() for _, t in tensors]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
    params = (np.concatenate([t.numpy().ravel() for _, t in tensors]).astype(np.float32) if tensors
              else np.zeros(0, np.float32))
    if not np.all(np.isfinite(params)):
        bad = next(n for n, t in tensors if not torch.isfinite(t).all())
        raise ValueError("tensor %s has a NaN or infinite value" % bad)
    shapes = np.ones((len(tensors), 4), np.int64)
    ndims = np.zeros(len(tensors), np.int32)
    for i, (_, t) in enumerate(tensors):
        shapes[i, :t.dim()] = t.shape
        ndims[i] = t.dim()
    tmp, f = _atomic_h5(path)
    try:
        g = f.create_group("model")
        g.attrs["format_version"] = np.int64(FORMAT_VERSION)
        if classes is not None:
            g.attrs["classes"] = np.int64(classes)
        if train_rows is not None:
            g.attrs["train_rows"] = np.int64(train_rows)
        if dataset is not None:
            g.attrs.create("dataset", str(dataset), dtype=h5py.string_dtype("utf-8"))
        if threshold is not None:
            g.attrs["threshold"] = np.float64(threshold)
        g.create_dataset("spec", data=spec, dtype=h5py.string_dtype("utf-8"))
        g.create_dataset("params", data=params, dtype="<f4")
        ix = g.create_group("index")
        ix.create_dataset("names", data=[n for n, _ in tensors], dtype=h5py.string_dtype("utf-8"),
                          shape=(len(tensors),))
        ix.create_dataset("offsets", data=offsets, dtype="<i8")
        ix.create_dataset("shapes", data=shapes, dtype="<i8")
        ix.create_dataset("ndims", data=ndims, dtype="<i4")
    except BaseException:
        f.close()
        os.unlink(tmp)
        raise
    _finish(tmp, f, path)


# ---------------------------------------------------------------------------------------------------------------
# spec -> torch


def _str(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def parse_spec(text):
    """[(line number, keyword, [positional args], {key: value})] of a spec; comments and blank lines dropped."""
    out = []
    for no, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        toks = line.split()
        pos = [t for t in toks[1:] if "=" not in t]
        kw = dict(t.split("=", 1) for t in toks[1:] if "=" in t)
        out.append((no, toks[0].lower(), pos, kw))
    return out


def _build(lines, i, shape, params, names, path, depth):
    """Builds layers from lines[i:] until 'end' (depth > 0) or the end; returns (layers, next i, shape)."""
    layers = []
    while i < len(lines):
        no, kw, pos, opt = lines[i]
        where = "%s: spec line %d (%s)" % (path, no, kw)
        i += 1
        try:
            if kw == "end":
                if depth == 0:
                    raise ValueError("'end' without 'residual'")
                return layers, i, shape
            if kw == "residual":
                body, i, out = _build(lines, i, shape, params, names, path, depth + 1)
                if tuple(out) != tuple(shape):
                    raise ValueError("the residual group maps %s to %s" % (_shape_str(shape), _shape_str(out)))
                layers.append(Residual(nn.Sequential(*body)))
            elif kw == "conv2d":
                name, o, k = pos[0], int(pos[1]), int(pos[2])
                s, p = int(opt.get("stride", 1)), int(opt.get("padding", 0))
                m = nn.Conv2d(shape[0], o, k, stride=s, padding=p)
                _assign(m, name, ("weight", "bias"), params, names)
                layers.append(m)
                shape = (o, _conv_out(shape[1], k, s, p), _conv_out(shape[2], k, s, p))
            elif kw in ("maxpool", "avgpool"):
                k = int(pos[0])
                s = int(opt.get("stride", k))
                layers.append((nn.MaxPool2d if kw == "maxpool" else nn.AvgPool2d)(k, stride=s))
                shape = (shape[0], _conv_out(shape[1], k, s, 0), _conv_out(shape[2], k, s, 0))
            elif kw == "flatten":
                layers.append(nn.Flatten())
                shape = (int(np.prod(shape)),)
            elif kw == "dense":
                name, o = pos[0], int(pos[1])
                m = nn.Linear(shape[0], o)
                _assign(m, name, ("weight", "bias"), params, names)
                layers.append(m)
                shape = (o,)
            elif kw in ("relu", "gelu", "tanh", "sigmoid"):
                layers.append({"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[kw]())
            elif kw == "softmax":
                layers.append(nn.Softmax(dim=1))
            elif kw == "batchnorm":
                name, eps = pos[0], float(opt.get("eps", 1e-5))
                m = (nn.BatchNorm1d if len(shape) == 1 else nn.BatchNorm2d)(shape[0], eps=eps)
                _assign(m, name, ("weight", "bias", "running_mean", "running_var"), params, names)
                layers.append(m)
            elif kw == "layernorm":
                name, eps = pos[0], float(opt.get("eps", 1e-5))
                m = nn.LayerNorm(shape[0], eps=eps)
                _assign(m, name, ("weight", "bias"), params, names)
                layers.append(m)
            elif kw == "dropout":
                layers.append(nn.Dropout(float(pos[0]) if pos else 0.5))
            else:
                raise ValueError("unknown layer")
        except (IndexError, KeyError, ValueError) as e:
            raise ValueError("%s: %s" % (where, e if str(e) else type(e).__name__)) from None
    if depth > 0:
        raise ValueError("%s: a residual group is not closed with 'end'" % path)
    return layers, i, shape


def _assign(m, name, suffixes, params, names):
    for suf in suffixes:
        full = "%s.%s" % (name, suf)
        if full not in names:
            raise KeyError("tensor %s is not in /model/index" % full)
        off, shp = names[full]
        target = getattr(m, suf)
        if tuple(shp) != tuple(target.shape):
            raise ValueError("tensor %s has shape %s in the index, the layer needs %s"
                             % (full, tuple(shp), tuple(target.shape)))
        n = int(np.prod(shp)) if shp else 1
        if off < 0 or off + n > params.size:
            raise ValueError("tensor %s (offset %d, %d values) lies outside /model/params (%d values)"
                             % (full, off, n, params.size))
        with torch.no_grad():
            target.copy_(torch.from_numpy(params[off:off + n].reshape(shp).copy()))


def read_model(path):
    """(spec text, params float32 array, {name: (offset, shape)}, attributes dict) of a model file."""
    with h5py.File(path, "r") as f:
        if "model" not in f or "spec" not in f["model"] or "params" not in f["model"]:
            raise ValueError("%s: not a nograd model file (no /model/spec or /model/params)" % path)
        g = f["model"]
        version = int(g.attrs.get("format_version", -1))
        if version != FORMAT_VERSION:
            raise ValueError("%s: /model format_version %d, this tool reads %d" % (path, version, FORMAT_VERSION))
        spec = _str(g["spec"][()])
        params = np.asarray(g["params"][()], dtype=np.float32).ravel()
        ix = g["index"]
        nm = [_str(s) for s in ix["names"][()]]
        offsets = ix["offsets"][()]
        shapes = ix["shapes"][()].reshape(len(nm), -1) if nm else np.ones((0, 4), np.int64)
        ndims = ix["ndims"][()]
        names = {n: (int(offsets[i]), tuple(int(s) for s in shapes[i, :int(ndims[i])])) for i, n in enumerate(nm)}
        attrs = {}
        for key in ("classes", "train_rows"):
            if key in g.attrs:
                attrs[key] = int(g.attrs[key])
        if "dataset" in g.attrs:
            attrs["dataset"] = _str(g.attrs["dataset"])
        if "threshold" in g.attrs:
            attrs["threshold"] = float(g.attrs["threshold"])
    return spec, params, names, attrs


def load(path):
    """The model in a nograd model file as an nn.Sequential (residual groups as Residual), in eval mode: batch
    norms use their running statistics and dropout is off, as in nograd's forward pass. The input shape and
    the file's attributes are kept on the module as nograd_input_shape and nograd_attrs."""
    spec, params, names, attrs = read_model(path)
    lines = parse_spec(spec)
    if not lines or lines[0][1] != "input":
        raise ValueError("%s: /model/spec does not start with an 'input' line" % path)
    shape = _check_shape(lines[0][2])
    layers, _, _ = _build(lines, 1, shape, params, names, path, 0)
    model = nn.Sequential(*layers)
    model.nograd_input_shape = shape
    model.nograd_attrs = attrs
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------
# datasets


DATASET_FORMAT = "nograd dataset"  # the root attribute "format" (src/data/dataset.c)
DATASET_FORMAT_VERSION = 1  # NG_DATA_FORMAT_VERSION in include/nograd/data.h
DATASET_CHUNK_BYTES = 256 * 1024  # target bytes of /x a chunk, as src/data/dataset.c writes


def save_dataset(x, y, path, name=None, domain=None, classes=None, chunk_rows=None, mean=None, std=None):
    """Writes a nograd dataset file (atomically; the layout of include/nograd/data.h): /x float32 (N x d or
    N x C x H x W); /y int32 labels (N) when y is of an integer type, float32 targets (N x t; a 1-D float y
    becomes N x 1) otherwise. Both are chunked along N only, chunk_rows rows a chunk (default: about 256 KiB of
    x). Root attributes: format, format_version, name and domain (default ""), classes (labels: default
    max label + 1, every label must lie in [0, classes); targets: 0). /y of labels carries classes and
    class_counts; /x carries mean and std (d floats) when given, for standardized features."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if x.ndim not in (2, 3, 4):
        raise ValueError("x has shape %s: expected N x d, N x S x d (sequences) or N x C x H x W" % (x.shape,))
    n = x.shape[0]
    if n < 1:
        raise ValueError("a dataset needs at least one row")
    if y.shape[0] != n:
        raise ValueError("x has %d rows, y %d" % (n, y.shape[0]))
    labels = np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_
    if labels:
        if y.ndim != 1:
            raise ValueError("integer y has shape %s: labels must be N" % (y.shape,))
        classes = int(y.max()) + 1 if classes is None else int(classes)
        if y.min() < 0 or y.max() >= classes or classes > np.iinfo(np.int32).max:
            raise ValueError("labels must lie in [0, classes = %d), found %d .. %d" % (classes, y.min(), y.max()))
        y = y.astype(np.int32)
    else:
        y = y.astype(np.float32)
        if y.ndim == 1:
            y = y.reshape(n, 1)
        if y.ndim != 2 or y.shape[1] < 1:
            raise ValueError("float y has shape %s: targets must be N x t" % (y.shape,))
        classes = 0
    x = x.astype(np.float32)
    d = int(np.prod(x.shape[1:]))
    rows = min(n, chunk_rows or max(1, DATASET_CHUNK_BYTES // (4 * d)))
    tmp, f = _atomic_h5(path)
    try:
        string = h5py.string_dtype("utf-8")
        f.attrs.create("format", DATASET_FORMAT, dtype=string)
        f.attrs["format_version"] = np.int64(DATASET_FORMAT_VERSION)
        f.attrs.create("name", "" if name is None else str(name), dtype=string)
        f.attrs.create("domain", "" if domain is None else str(domain), dtype=string)
        f.attrs["classes"] = np.int64(classes)
        dx = f.create_dataset("x", data=x, chunks=(rows,) + x.shape[1:])
        if mean is not None or std is not None:
            mean = np.asarray(mean, np.float32).ravel()
            std = np.asarray(std, np.float32).ravel()
            if mean.size != d or std.size != d:
                raise ValueError("mean and std need %d values each, got %d and %d" % (d, mean.size, std.size))
            dx.attrs["mean"] = mean
            dx.attrs["std"] = std
        dy = f.create_dataset("y", data=y, chunks=(rows,) + y.shape[1:])
        if labels:
            dy.attrs["classes"] = np.int64(classes)
            dy.attrs["class_counts"] = np.bincount(y, minlength=classes).astype(np.int64)
    except BaseException:
        f.close()
        os.unlink(tmp)
        raise
    _finish(tmp, f, path)


def load_dataset(path):
    """(x float32 tensor, y tensor, meta dict) of a nograd dataset file; y is int64 for labels (what torch's
    losses take) and float32 N x t for targets; meta holds name, domain and classes when the file has them,
    and mean and std (numpy arrays) for standardized features."""
    with h5py.File(path, "r") as f:
        if "x" not in f or "y" not in f:
            raise ValueError("%s: not a nograd dataset file (no /x or /y)" % path)
        x = np.asarray(f["x"][()], dtype=np.float32)
        yd = f["y"]
        if np.issubdtype(yd.dtype, np.integer):
            y = torch.from_numpy(yd[()].astype(np.int64))
        else:
            y = torch.from_numpy(yd[()].astype(np.float32))
        meta = {}
        for key in ("name", "domain"):
            if key in f.attrs:
                meta[key] = _str(f.attrs[key])
        if "classes" in f.attrs:
            meta["classes"] = int(f.attrs["classes"])
        for key in ("mean", "std"):
            if key in f["x"].attrs:
                meta[key] = np.asarray(f["x"].attrs[key], np.float32)
    return torch.from_numpy(x), y, meta


# ---------------------------------------------------------------------------------------------------------------
# ONNX: any module out to the ONNX nograd reads, and a prior or a retrofitted ONNX file back into the module


def export_onnx(module, path, input_shape, opset=17, input_name="input", output_name="logits"):
    """Exports `module` (put in eval mode) to the ONNX file nograd reads: the batch (dimension 0) symbolic,
    BatchNorm kept as BatchNormalization nodes (TrainingMode.PRESERVE on an eval module: the EVAL mode would
    fold it into the convolutions and rename the tensors), initializers named by the module's state_dict keys.
    input_shape is one example's shape (e.g. (3, 32, 32) or (S, d)). Written atomically (PATH.tmp, rename).
    torch may replace an initializer equal to another by an Identity node of it (a fresh BatchNorm's
    running_mean equals its bias); nograd gives such names their own parameters, so the layout is the same
    for every model of the architecture."""
    if not 13 <= opset <= 17:
        raise ValueError("opset %d: nograd reads opsets 13 to 17" % opset)
    module.eval()
    x = torch.zeros((2,) + tuple(int(d) for d in input_shape))
    tmp = path + ".tmp"
    try:
        # Not under no_grad: in eval mode without gradients nn.TransformerEncoderLayer takes its fused fast
        # path (aten::_transformer_encoder_layer_fwd), which has no ONNX form.
        torch.onnx.export(module, x, tmp, input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
                          opset_version=opset, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE, export_params=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def onnx_parameters(path):
    """The parameters nograd sees in an ONNX file, as {name: numpy array}: the float initializers, and the
    outputs of Identity nodes whose input is one of them (torch's deduplicated tensors)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise ValueError("%s: initializer %s is stored as external data, which nograd does not read"
                             % (path, t.name))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    params = {k: v for k, v in inits.items() if v.dtype == np.float32}
    for n in model.graph.node:
        if n.op_type == "Identity" and n.input[0] in params and n.output[0] not in params:
            params[n.output[0]] = params[n.input[0]]
    return params


def load_onnx(module, path):
    """Loads the parameters of an ONNX file written by nograd (a glue prior, a retrofitted model) or
    exported by export_onnx into `module` (load_state_dict of the names they share) and reports what changed:
    a list of (name, changed elements, max |difference|) for every tensor whose values differ from the
    module's, in state_dict order. Raises ValueError naming a tensor the module has with another shape, or
    a file that shares no tensor with the module. Entries of the state_dict that are not in the file (e.g.
    BatchNorm's num_batches_tracked, an integer) keep their values."""
    params = onnx_parameters(path)
    state = module.state_dict()
    new, report = {}, []
    for name, old in state.items():
        if name not in params:
            continue
        value = torch.from_numpy(np.array(params[name], dtype=np.float32))
        if tuple(value.shape) != tuple(old.shape):
            raise ValueError("%s: tensor %s is %s in the file but %s in the module"
                             % (path, name, _shape_str(tuple(value.shape)), _shape_str(tuple(old.shape))))
        new[name] = value.to(old.dtype)
        diff = (new[name].double() - old.double()).abs()
        if diff.numel() and bool((diff > 0).any()):
            report.append((name, int((diff > 0).sum()), float(diff.max())))
    if not new:
        raise ValueError("%s: no tensor of the file has a name of the module's state_dict (was it exported "
                         "from another module, or with EVAL mode folding BatchNorm?)" % path)
    module.load_state_dict(new, strict=False)
    return report


# ---------------------------------------------------------------------------------------------------------------
# command line


def main(argv=None):
    ap = argparse.ArgumentParser(prog="nograd_torch.py", description="PyTorch interchange for nograd model files")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("convert-to-torch", help="nograd model file -> torch.save'd nn.Sequential")
    a.add_argument("model")
    a.add_argument("out")
    b = sub.add_parser("convert-from-torch", help="torch.save'd nn.Sequential -> nograd model file")
    b.add_argument("pt")
    b.add_argument("model")
    b.add_argument("--input-shape", help="one example's shape: F or C,H,W (needed when the first layer is a conv)")
    b.add_argument("--classes", type=int)
    b.add_argument("--train-rows", type=int)
    b.add_argument("--dataset")
    b.add_argument("--threshold", type=float, help="decision threshold of a binary classifier, in [0, 1]")
    c = sub.add_parser("export-onnx", help="torch.save'd module -> ONNX file nograd reads (BatchNorm kept)")
    c.add_argument("pt")
    c.add_argument("onnx")
    c.add_argument("--input-shape", required=True, help="one example's shape, e.g. 3,32,32 or 16,64")
    c.add_argument("--opset", type=int, default=17)
    d = sub.add_parser("load-onnx", help="ONNX file (a prior, a retrofitted model) -> the torch.save'd module "
                                         "with its parameters, and what changed")
    d.add_argument("pt", help="the module the ONNX file was exported from (torch.save'd)")
    d.add_argument("onnx")
    d.add_argument("out", help="where to torch.save the module with the file's parameters")
    args = ap.parse_args(argv)
    try:
        if args.cmd in ("export-onnx", "load-onnx"):
            model = torch.load(args.pt, map_location="cpu")
            if not isinstance(model, nn.Module):
                raise ValueError("%s holds a %s, not a module" % (args.pt, type(model).__name__))
            if args.cmd == "export-onnx":
                shape = tuple(int(v) for v in args.input_shape.replace("x", ",").split(","))
                export_onnx(model, args.onnx, shape, opset=args.opset)
                print("%s -> %s (opset %d, input batch x %s)" % (args.pt, args.onnx, args.opset,
                                                                _shape_str(shape)))
            else:
                report = load_onnx(model, args.onnx)
                torch.save(model, args.out)
                for name, count, delta in report:
                    print("changed %s: %d elements, max |difference| %.6g" % (name, count, delta))
                print("%s + %s -> %s: %d tensors changed" % (args.pt, args.onnx, args.out, len(report)))
            return 0
        if args.cmd == "convert-to-torch":
            model = load(args.model)
            torch.save(model, args.out)
            print("%s -> %s: %d layers, %d parameters" % (args.model, args.out, len(model),
                                                         sum(p.numel() for p in model.state_dict().values())))
        else:
            model = torch.load(args.pt, map_location="cpu")
            if not isinstance(model, nn.Module):
                raise ValueError("%s holds a %s, not a module (a state_dict alone does not say the architecture; "
                                 "torch.save the nn.Sequential itself)" % (args.pt, type(model).__name__))
            shape = None
            if args.input_shape:
                shape = tuple(int(s) for s in args.input_shape.replace("x", ",").split(","))
            attrs = getattr(model, "nograd_attrs", {})
            save(model, args.model, classes=args.classes if args.classes is not None else attrs.get("classes"),
                 train_rows=args.train_rows if args.train_rows is not None else attrs.get("train_rows"),
                 dataset=args.dataset if args.dataset is not None else attrs.get("dataset"), input_shape=shape,
                 threshold=args.threshold if args.threshold is not None else attrs.get("threshold"))
            print("%s -> %s" % (args.pt, args.model))
    except (OSError, ValueError) as e:
        print("nograd_torch.py: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import nograd_torch  # noqa: E402  (so that pickled modules refer to nograd_torch.Residual, not __main__)

    sys.exit(nograd_torch.main())
