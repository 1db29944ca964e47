#!/usr/bin/python3
"""ONNX models from PyTorch through nograd's graph executor: every op of the table against PyTorch in one loop,
whole models, the determinism contract, and bad files.

Usage: test_models.py ONNX_RUN NOGRAD

ONNX_RUN is tests/onnx/onnx_run.c (a forward pass through the public API on raw float32 files).
1. Ops: one loop over a table of small modules, at least one per op of src/nn/ops/ops.c, exported with
   opsets 13 and 17: outputs within 1e-5 (relative to the output's scale) of PyTorch's.
2. Models: torchvision resnet18, mobilenet_v2, squeezenet1_1 at 3x32x32 (BatchNorm statistics randomised so
   that no layer is an identity), a 2-layer TransformerEncoder (d_model 64, 4 heads, batch_first) with a mean
   pool and a linear head, a Sequential CNN with BatchNorm and AdaptiveAvgPool2d, and other torchvision
   classifiers whose ops are in the set: logits within 1e-4 and cross-entropy within 1e-4 relative.
3. Determinism: the same batch twice, and in a second process, gives the same bits.
4. Bad files get a message naming the file (and the node, tensor or opset): not ONNX, truncated, opset 12
   and 18, external data, an op outside the set (the message lists the set), a graph input whose
   non-batch dimension is symbolic.
Exits 77 (skipped) without python3-torch, python3-torchvision or python3-onnx.
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
try:
    import numpy as np
    import onnx
    import torch
    import torchvision
    from torch import nn
except ImportError as e:
    print("skipped: %s" % e)
    sys.exit(77)
import nograd_torch as ngt  # noqa: E402

RUN, NOGRAD = sys.argv[1], sys.argv[2]
torch.set_num_threads(1)
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def forward(path, x, d, batch=None):
    """nograd's outputs for x (numpy, N x ...) through onnx_run; (None, stderr) on failure."""
    inp, out = os.path.join(d, "in.f32"), os.path.join(d, "out.f32")
    np.ascontiguousarray(x, dtype=np.float32).tofile(inp)
    args = [RUN, path, inp, str(len(x)), out] + ([str(batch)] if batch else [])
    p = subprocess.run(args, capture_output=True, text=True, env=ENV)
    if p.returncode:
        return None, p.stderr.strip()
    return np.fromfile(out, dtype=np.float32), p.stdout


def compare(name, module, shape, d, tol, opsets=(17,), n=5, loss=False):
    module.eval()
    torch.manual_seed(1)
    x = torch.randn((n,) + tuple(shape))
    with torch.no_grad():
        ref = module(x)
    ok_all = True
    for opset in opsets:
        safe = "".join(c if c.isalnum() else "_" for c in name)
        path = os.path.join(d, "%s-%d.onnx" % (safe, opset))
        try:
            ngt.export_onnx(module, path, shape, opset=opset)
        except Exception as e:  # an exporter that cannot express the module at this opset
            check(False, "%s (opset %d): export failed: %s" % (name, opset, str(e)[:200]))
            continue
        y, err = forward(path, x.numpy(), d)
        if y is None:
            ok_all = check(False, "%s (opset %d): %s" % (name, opset, err[-300:])) and ok_all
            continue
        r = ref.numpy().reshape(-1)
        scale = max(1.0, float(np.abs(r).max()))
        diff = float(np.abs(y - r).max()) / scale if y.shape == r.shape else float("inf")
        what = "%s (opset %d): max |difference| %.2g (output scale %.2g)" % (name, opset, diff * scale, scale)
        if loss:
            labels = torch.arange(n) % ref.shape[1]
            lt = float(nn.functional.cross_entropy(ref.double(), labels))
            ln = float(nn.functional.cross_entropy(torch.from_numpy(y).reshape(ref.shape).double(), labels))
            what += ", cross-entropy %.7f vs PyTorch %.7f" % (ln, lt)
            ok_all = check(diff <= tol and abs(ln - lt) <= 1e-4 * abs(lt), what) and ok_all
        else:
            ok_all = check(diff <= tol, what) and ok_all
    return ok_all


class Fn(nn.Module):
    """A module from a function, for the op table."""

    def __init__(self, f, *params):
        super().__init__()
        self.f = f
        self.p = nn.ParameterList([nn.Parameter(torch.randn(*s)) for s in params])

    def forward(self, x):
        return self.f(x, *self.p)


def randomise_bn(m):
    g = torch.Generator().manual_seed(3)
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g))
            mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))
            if mod.affine:
                mod.weight.data.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
                mod.bias.data.copy_(0.1 * torch.randn(mod.bias.shape, generator=g))
    return m


# One row per op (and per variant worth testing): name, module, one example's shape.
torch.manual_seed(0)
OPS = [
    ("Add/Mul/Sub/Div broadcast", Fn(lambda x, a, b: (x + a) * b - x / (b * b + 1), (4, 1), (5,)), (3, 4, 5)),
    ("Pow, Sqrt", Fn(lambda x: torch.sqrt(x * x + 1) + x ** 2), (6,)),
    ("Erf (exact GELU)", nn.GELU(), (10,)),
    ("Relu, Sigmoid, Tanh", Fn(lambda x: torch.relu(x) + torch.sigmoid(x) * torch.tanh(x)), (3, 7)),
    ("Clip (ReLU6, hardtanh)", Fn(lambda x: nn.functional.relu6(3 * x) + nn.functional.hardtanh(x, -0.5, 0.2)), (8,)),
    ("HardSigmoid, HardSwish (MobileNetV3)", Fn(lambda x: nn.functional.hardsigmoid(3 * x) +
                                                nn.functional.hardswish(4 * x)), (9,)),
    ("Softmax", nn.Softmax(dim=1), (4, 6)),
    ("Softmax last axis", nn.Softmax(dim=-1), (4, 6)),
    ("Conv groups, stride, pads, dilation, rectangular", nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2),
                                                                  dilation=(1, 2), groups=2), (4, 9, 8)),
    ("Conv depthwise stride 2", nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6), (6, 9, 9)),
    ("Conv 1x1, no bias", nn.Conv2d(5, 7, 1, bias=False), (5, 4, 3)),
    ("Conv asymmetric pad", nn.Sequential(nn.ZeroPad2d((1, 0, 2, 0)), nn.Conv2d(2, 3, 3)), (2, 6, 6)),
    # 3x3 stride 1 with >= 16 channels in and out: Winograd's F(2x2, 3x3) (src/nn/ops/winograd.c); odd output
    # sizes leave part of the last tiles unused, a pad of 2 or 0 moves the tiles against the input
    ("Conv 3x3 Winograd, odd map", nn.Conv2d(16, 24, 3, padding=1), (16, 7, 5)),
    ("Conv 3x3 Winograd, pads 2 and 0, BN, ReLU", nn.Sequential(nn.Conv2d(16, 16, 3, padding=(2, 0)),
                                                                randomise_bn(nn.BatchNorm2d(16)), nn.ReLU()),
     (16, 3, 6)),
    ("Conv 3x3 Winograd, no pad, 1x1 output", nn.Conv2d(20, 16, 3, bias=False), (20, 3, 3)),
    ("BatchNormalization", randomise_bn(nn.BatchNorm2d(3)), (3, 4, 4)),
    ("BatchNormalization 1d", randomise_bn(nn.BatchNorm1d(5)), (5,)),
    ("Gemm (Linear)", nn.Linear(6, 3), (6,)),
    ("MatMul batched", Fn(lambda x, w: x @ w, (6, 4)), (3, 6)),
    ("MatMul broadcast", Fn(lambda x: x @ x.transpose(1, 2)), (3, 4)),
    ("MaxPool pads, ceil_mode", nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 8, 8)),
    ("MaxPool dilation", nn.MaxPool2d(2, stride=1, dilation=2), (2, 7, 7)),
    ("AveragePool count_include_pad", nn.AvgPool2d(3, stride=2, padding=1), (2, 7, 7)),
    ("AveragePool exclude pad, ceil", nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
     (2, 8, 8)),
    ("GlobalAveragePool (AdaptiveAvgPool2d(1))", nn.AdaptiveAvgPool2d(1), (3, 5, 5)),
    ("Pad constant", Fn(lambda x: nn.functional.pad(x, (1, 2, 0, 1), value=0.5)), (2, 3, 3)),
    ("Flatten", nn.Flatten(), (2, 3, 4)),
    ("Reshape, Shape, Gather, Unsqueeze, Concat", Fn(lambda x: x.reshape(x.shape[0], -1, 2)), (4, 3)),
    ("Transpose", Fn(lambda x: x.permute(0, 2, 3, 1)), (2, 3, 4)),
    ("Concat, Slice", Fn(lambda x: torch.cat([x[:, 1:3], x[:, ::2], x[:, -1:]], dim=1)), (6, 2)),
    ("Gather (select)", Fn(lambda x: x[:, 2] + x[:, -1]), (5, 3)),
    ("Squeeze, Unsqueeze", Fn(lambda x: x.unsqueeze(1).squeeze(1) * 2), (4,)),
    ("ReduceMean", Fn(lambda x: x.mean(dim=(2, 3)) + x.mean(dim=1, keepdim=True).mean(dim=(2, 3))), (3, 4, 4)),
    ("LayerNormalization", nn.LayerNorm(8), (5, 8)),
    ("LayerNormalization 2 axes", nn.LayerNorm((4, 3)), (4, 3)),
    ("Cast, Identity, Dropout", nn.Sequential(nn.Dropout(0.3), nn.Identity(), nn.Linear(4, 4)), (4,)),
]


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.enc(x).mean(1))


with tempfile.TemporaryDirectory() as d:
    for name, module, shape in OPS:
        compare(name, module, shape, d, 1e-5, opsets=(13, 17))
    seq = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(16, 10))
    models = [("resnet18", torchvision.models.resnet18(num_classes=10), (3, 32, 32)),
              ("mobilenet_v2", torchvision.models.mobilenet_v2(num_classes=10), (3, 32, 32)),
              ("squeezenet1_1", torchvision.models.squeezenet1_1(num_classes=10), (3, 32, 32)),
              ("transformer encoder", Encoder(), (16, 64)),
              ("Sequential CNN", seq, (3, 32, 32)),
              ("resnet34", torchvision.models.resnet34(num_classes=10), (3, 32, 32)),
              ("shufflenet_v2_x0_5", torchvision.models.shufflenet_v2_x0_5(num_classes=10), (3, 32, 32)),
              ("mnasnet0_5", torchvision.models.mnasnet0_5(num_classes=10), (3, 32, 32)),
              ("densenet121", torchvision.models.densenet121(num_classes=10), (3, 32, 32)),
              ("convnext_tiny", torchvision.models.convnext_tiny(num_classes=10), (3, 32, 32)),
              ("efficientnet_b0", torchvision.models.efficientnet_b0(num_classes=10), (3, 32, 32)),
              ("mobilenet_v3_small", torchvision.models.mobilenet_v3_small(num_classes=10), (3, 32, 32))]
    for name, m, shape in models:
        torch.manual_seed(2)
        randomise_bn(m)
        compare(name, m, shape, d, 1e-4, n=8, loss=True)

    # determinism: the same batch twice in one process and in another gives the same bits
    path = os.path.join(d, "resnet18-17.onnx")
    x = np.random.default_rng(0).standard_normal((9, 3, 32, 32)).astype(np.float32)
    y1, _ = forward(path, np.concatenate([x, x]), d, batch=9)
    y2, _ = forward(path, x, d, batch=9)
    check(y1 is not None and y2 is not None and np.array_equal(y1[:90], y1[90:]) and np.array_equal(y1[:90], y2),
          "resnet18: the same batch gives the same bits, twice and in another process")

    # bad files
    def refused(path, want, what):
        p = subprocess.run([NOGRAD, "eval", path, os.path.join(d, "none.h5")], capture_output=True, text=True,
                           env=ENV)
        return check(p.returncode != 0 and path in p.stderr and all(w in p.stderr for w in want),
                     "%s: %s" % (what, p.stderr.strip()[-230:]))

    junk = os.path.join(d, "junk.onnx")
    with open(junk, "wb") as f:
        f.write(os.urandom(3000))
    refused(junk, ["not an ONNX model"], "random bytes")
    data = open(os.path.join(d, "Sequential_CNN-17.onnx"), "rb").read()
    trunc = os.path.join(d, "trunc.onnx")
    with open(trunc, "wb") as f:
        f.write(data[:len(data) * 2 // 3])
    refused(trunc, ["ONNX"], "a truncated file")
    small = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    for opset in (12, 18):
        path = os.path.join(d, "opset%d.onnx" % opset)
        torch.onnx.export(small, torch.zeros(1, 4), path, opset_version=min(opset, 17))
        mp = onnx.load(path)
        mp.opset_import[0].version = opset
        onnx.save(mp, path)
        refused(path, ["opset %d" % opset, "13 to 17"], "opset %d" % opset)
    ext = os.path.join(d, "ext.onnx")
    mp = onnx.load(os.path.join(d, "Sequential_CNN-17.onnx"))
    onnx.save(mp, ext, save_as_external_data=True, all_tensors_to_one_file=True, location="ext.data",
              size_threshold=0)
    refused(ext, ["external data"], "initializers as external data")
    unk = os.path.join(d, "unknown-op.onnx")
    torch.onnx.export(Fn(lambda x: torch.floor(x)), torch.zeros(1, 4), unk, opset_version=17,
                      dynamic_axes={"x": {0: "b"}}, input_names=["x"])
    refused(unk, ["Floor", "not in nograd's op set", "Conv", "MatMul"], "an op outside the set (the set listed)")
    # nograd's own domain (the ops native models are written with) is not for files
    own = os.path.join(d, "own-domain.onnx")
    mp = onnx.load(os.path.join(d, "opset12.onnx"))
    mp.opset_import[0].version = 17
    for node in mp.graph.node:
        if node.op_type == "Relu":
            node.op_type, node.domain = "Gelu", "ai.nograd"
    mp.opset_import.append(onnx.helper.make_opsetid("ai.nograd", 1))
    onnx.save(mp, own)
    refused(own, ["domain ai.nograd", "not the default ONNX domain"], "an op of nograd's own domain in a file")
    # graphs nested 100,000 deep (ModelProto.graph 7, GraphProto.node 1, NodeProto.attribute 5,
    # AttributeProto.g 6): refused before protobuf-c's recursive unpacking could overflow its stack
    def field(number, payload):
        key, out = (number << 3) | 2, bytearray()
        for v in (key, len(payload)):
            while True:
                b = v & 0x7F
                v >>= 7
                out.append(b | (0x80 if v else 0))
                if not v:
                    break
        return bytes(out) + payload
    g = b""
    for _ in range(100000):
        g = field(1, field(5, field(6, g)))
    deep = os.path.join(d, "deep.onnx")
    with open(deep, "wb") as f:
        f.write(field(7, g))
    refused(deep, ["nested more than"], "graphs nested 100,000 deep")
    sym = os.path.join(d, "symbolic.onnx")
    torch.onnx.export(small, torch.zeros(2, 4), sym, opset_version=17, input_names=["x"],
                      dynamic_axes={"x": {0: "b", 1: "features"}})
    refused(sym, ["features", "only the batch"], "a symbolic non-batch input dimension")

sys.exit(1 if failures else 0)
