#!/usr/bin/python3
"""PyTorch parity of nograd's models (label "torch"): tools/nograd_torch.py and the C forward/backward passes.

Usage: test_parity.py [NN_PROBE]

Part 1 (Python only): models saved with nograd_torch.save and read back with load give bit-identical outputs,
saving a loaded model writes the same spec and parameters, the file has the layout of include/nograd/nn.h,
unsupported layers and options raise ValueError naming them, dataset files round-trip with their attributes and
chunking along N, and the convert-to-torch / convert-from-torch commands work.

Part 2 (with NN_PROBE, tests/torch/nn_probe.c built against libnograd): for random weights and inputs, an MLP,
a CNN (conv-pool-conv-pool-dense), a residual MLP and a model with every other layer kind (strided conv, batch
norms, average pooling, overlapping max pooling, GELU, sigmoid, tanh) are written with save() and run through
nograd's C code. Its logits must match PyTorch's within 1e-4 and its summed cross-entropy (divided by the batch)
PyTorch's mean cross-entropy within 1e-4, relative; one backward pass's parameter gradient must match
PyTorch's gradient of the summed loss within 1e-3 relative, tensor by tensor (max |C - torch| <= tol * max
|torch|). PyTorch runs in float64 on the same float32 weights, so the differences measure nograd's rounding.
A model with dropout and softmax is compared in evaluation mode, and models that nograd creates from a spec
(ng_model_init, ng_model_write) are read with load() and must give nograd's outputs.

Exit status: 0 all passed, 1 a failure, 77 (skipped) without torch, or when the probe is not given or not built
(after part 1 passed).
"""
import copy
import os
import subprocess
import sys
import tempfile
import time

T0 = time.time()
try:
    import h5py
    import numpy as np
    import torch
    from torch import nn
    import torch.nn.functional as F
except ImportError as e:
    print("SKIP: %s (install python3-torch, python3-h5py and python3-numpy)" % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import nograd_torch as ngt  # noqa: E402

PROBE = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None
TOOL = os.path.join(HERE, "..", "..", "tools", "nograd_torch.py")
FWD_TOL, LOSS_TOL, GRAD_TOL = 1e-4, 1e-4, 1e-3
BATCH = 7

torch.set_num_threads(1)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what)
    return cond


# ---------------------------------------------------------------------------------------------------------------
# models


def mlp():
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 5)), (20,), 5


def cnn():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(6 * 3 * 3, 10)), (2, 12, 12), 10


def resmlp():
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(),
                         ngt.Residual(nn.Linear(16, 16), nn.GELU(), nn.Linear(16, 16)),
                         ngt.Residual(nn.LayerNorm(16), nn.Linear(16, 16), nn.Tanh()),
                         nn.Linear(16, 4)), (12,), 4


def zoo():
    m = nn.Sequential(nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.BatchNorm2d(5), nn.GELU(), nn.AvgPool2d(2),
                      nn.Sequential(nn.Conv2d(5, 4, 2), nn.Sigmoid()), nn.MaxPool2d(2, stride=1),
                      nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8, eps=1e-3), nn.Tanh(),
                      ngt.Residual(nn.Linear(8, 8), nn.LayerNorm(8, eps=1e-4)), nn.Linear(8, 3))
    return m, (3, 18, 18), 3


def evalonly():
    return nn.Sequential(nn.Linear(10, 12), nn.Dropout(0.3), nn.ReLU(), nn.Linear(12, 6), nn.Softmax(dim=1)), (10,), 6


MODELS = {"mlp": mlp, "cnn": cnn, "resmlp": resmlp, "zoo": zoo, "evalonly": evalonly}


def make(kind, seed):
    """A model of the kind with random weights (norm parameters and running statistics randomised too)."""
    torch.manual_seed(seed)
    model, shape, classes = MODELS[kind]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model.eval(), shape, classes


def inputs(shape, classes, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((BATCH,) + shape, generator=g), torch.randint(0, classes, (BATCH,), generator=g)


# ---------------------------------------------------------------------------------------------------------------
# Part 1: Python round trips


def file_layout(path, model, shape):
    with h5py.File(path, "r") as f:
        g = f["model"]
        check(int(g.attrs["format_version"]) == 1, "format_version is 1")
        check(g["params"].dtype == np.float32 and g["params"].ndim == 1, "/model/params is a float32 vector")
        ix = g["index"]
        names = [n.decode() if isinstance(n, bytes) else n for n in ix["names"][()]]
        check(ix["offsets"].dtype == np.int64 and ix["shapes"].dtype == np.int64 and ix["ndims"].dtype == np.int32,
              "index types int64 offsets and shapes, int32 ndims")
        check(ix["shapes"].shape == (len(names), 4), "index shapes are T x 4")
        check(len(set(names)) == len(names) and all(" " not in n for n in names), "tensor names unique, no spaces")
        spec = g["spec"][()]
        spec = spec.decode() if isinstance(spec, bytes) else spec
        check(spec.splitlines()[0] == "input " + " ".join(map(str, shape)), "spec starts with the input line")
        # Every tensor contiguous, in order, with unused trailing dimensions 1, covering all parameters.
        off = 0
        for i, n in enumerate(names):
            nd = int(ix["ndims"][i])
            dims = ix["shapes"][i]
            check(int(ix["offsets"][i]) == off, "%s offset %d, expected %d" % (n, ix["offsets"][i], off))
            check(all(d == 1 for d in dims[nd:]), "%s: trailing dims are 1" % n)
            off += int(np.prod(dims[:nd]))
        check(off == g["params"].shape[0], "index covers /model/params")
        # PyTorch layouts: the flat vector is the state_dict's tensors, in spec order.
        sd = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
        flat = np.concatenate([v.numpy().ravel() for v in sd.values()])
        check(np.array_equal(np.sort(flat), np.sort(g["params"][()])), "params are the model's tensors")
        return spec, names


def part1(tmp):
    for kind in MODELS:
        model, shape, classes = make(kind, 1)
        path = os.path.join(tmp, kind + ".h5")
        ngt.save(model, path, classes=classes, train_rows=1234, dataset="synthetic", input_shape=shape)
        spec, names = file_layout(path, model, shape)
        back = ngt.load(path)
        x, _ = inputs(shape, classes, 2)
        with torch.no_grad():
            same = torch.equal(model(x), back(x))
        check(same, "%s: save -> load gives identical outputs" % kind)
        check(back.nograd_attrs == {"classes": classes, "train_rows": 1234, "dataset": "synthetic"},
              "%s: attributes read back: %s" % (kind, back.nograd_attrs))
        path2 = os.path.join(tmp, kind + "_2.h5")
        ngt.save(back, path2, classes=classes)
        s1, p1, n1, _ = ngt.read_model(path)
        s2, p2, n2, _ = ngt.read_model(path2)
        check(s1 == s2 and np.array_equal(p1, p2) and n1 == n2, "%s: save(load(f)) writes the same model" % kind)
    # The naming scheme: kind and running count in spec order; nested Sequentials flattened.
    _, _, n, _ = ngt.read_model(os.path.join(tmp, "zoo.h5"))
    check(list(n)[:6] == ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "bn1.running_mean",
                          "bn1.running_var"], "zoo names start conv1, bn1: %s" % list(n)[:6])
    check({k.split(".")[0] for k in n} == {"conv1", "conv2", "fc1", "bn1", "bn2", "fc2", "ln1", "fc3"},
          "zoo tensor names: %s" % sorted({k.split(".")[0] for k in n}))
    spec = ngt.to_spec(zoo()[0], (3, 18, 18))[0]
    check("residual\ndense fc2 8\nlayernorm ln1 eps=0.0001\nend\n" in spec, "zoo spec residual group:\n" + spec)
    check("maxpool 2 stride=1" in spec and "avgpool 2 stride=2" in spec and "batchnorm bn2 eps=0.001" in spec,
          "zoo spec pooling and batchnorm lines")
    check(ngt.to_spec(mlp()[0])[0].startswith("input 20\n"), "input shape inferred from a first Linear")

    bad = [(nn.Sequential(nn.Conv1d(1, 2, 3)), (8,), "Conv1d"),
           (nn.Sequential(nn.Conv2d(1, 2, 3, bias=False)), (1, 8, 8), "bias=False"),
           (nn.Sequential(nn.Conv2d(1, 2, (3, 5))), (1, 8, 8), "kernel_size"),
           (nn.Sequential(nn.Conv2d(1, 2, 3, padding="same")), (1, 8, 8), "padding"),
           (nn.Sequential(nn.Conv2d(1, 2, 3, dilation=2)), (1, 8, 8), "dilation"),
           (nn.Sequential(nn.MaxPool2d(2, padding=1)), (1, 8, 8), "padding"),
           (nn.Sequential(nn.AvgPool2d(2, ceil_mode=True)), (1, 7, 7), "ceil_mode"),
           (nn.Sequential(nn.Linear(4, 2), nn.GELU(approximate="tanh")), None, "approximate"),
           (nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=0)), None, "Softmax"),
           (nn.Sequential(nn.Conv2d(1, 2, 3), nn.LayerNorm([2, 6, 6])), (1, 8, 8), "LayerNorm"),
           (nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2, track_running_stats=False)), None, "track_running"),
           (nn.Sequential(nn.Linear(4, 2), nn.LeakyReLU()), None, "LeakyReLU"),
           (nn.Sequential(nn.Linear(4, 3), ngt.Residual(nn.Linear(3, 2))), None, "residual"),
           (nn.Sequential(nn.Linear(4, 3), nn.Linear(4, 2)), None, "expects 4 input features"),
           (nn.Sequential(nn.Conv2d(1, 2, 3)), None, "input_shape")]
    for model, shape, word in bad:
        try:
            ngt.save(model, os.path.join(tmp, "bad.h5"), input_shape=shape)
            check(False, "%s: no ValueError" % word)
        except ValueError as e:
            check(word in str(e), "ValueError for %s names it: %s" % (word, e))
    check(not os.path.exists(os.path.join(tmp, "bad.h5")) and not os.path.exists(os.path.join(tmp, "bad.h5.tmp")),
          "a refused model leaves no file")

    # Datasets: images with labels, vectors with targets.
    x = torch.randn(50, 1, 6, 6)
    y = torch.randint(0, 3, (50,))
    dpath = os.path.join(tmp, "data.h5")
    ngt.save_dataset(x, y, dpath, name="toy", domain="a", chunk_rows=16)
    x2, y2, meta = ngt.load_dataset(dpath)
    check(torch.equal(x, x2) and torch.equal(y, y2), "dataset round trip (images, labels)")
    check(meta == {"name": "toy", "domain": "a", "classes": int(y.max()) + 1}, "dataset attributes: %s" % meta)
    with h5py.File(dpath, "r") as f:
        check(f["x"].dtype == np.float32 and f["y"].dtype == np.int32, "dataset types float32 / int32")
        check(f.attrs["format"] == "nograd dataset" and int(f.attrs["format_version"]) == 1, "dataset format attrs")
        check(list(f["y"].attrs["class_counts"]) == list(np.bincount(y.numpy(), minlength=int(y.max()) + 1)),
              "dataset /y class_counts")
        check(f["x"].chunks == (16, 1, 6, 6) and f["y"].chunks == (16,), "chunked along N: %s %s"
              % (f["x"].chunks, f["y"].chunks))
    t = np.random.default_rng(0).normal(size=(30, 2))
    ngt.save_dataset(np.ones((30, 4)), t, dpath, classes=None)
    x2, y2, meta = ngt.load_dataset(dpath)
    check(x2.shape == (30, 4) and y2.dtype == torch.float32 and np.allclose(y2.numpy(), t.astype(np.float32))
          and meta == {"name": "", "domain": "", "classes": 0}, "dataset round trip (vectors, float targets): %s"
          % meta)
    try:
        ngt.save_dataset(np.ones((3, 2)), np.array([0, 1, 5]), dpath + "2", classes=3)
        check(False, "a label beyond classes is refused")
    except ValueError as e:
        check("[0, classes = 3)" in str(e), "a label beyond classes: %s" % e)

    # The command: torch.save'd module -> model file -> torch.save'd module.
    model, shape, classes = make("resmlp", 3)
    pt, h5, pt2 = (os.path.join(tmp, n) for n in ("m.pt", "m.h5", "m2.pt"))
    torch.save(model, pt)
    r = subprocess.run([sys.executable, TOOL, "convert-from-torch", pt, h5, "--classes", "4"], capture_output=True,
                       text=True, timeout=120)
    check(r.returncode == 0, "convert-from-torch: %s" % r.stderr.strip())
    r = subprocess.run([sys.executable, TOOL, "convert-to-torch", h5, pt2], capture_output=True, text=True,
                       timeout=120)
    check(r.returncode == 0, "convert-to-torch: %s" % r.stderr.strip())
    if r.returncode == 0:
        back = torch.load(pt2)
        x, _ = inputs(shape, classes, 4)
        with torch.no_grad():
            check(torch.equal(model(x), back(x)), "convert-from-torch then convert-to-torch keeps the outputs")
        check(back.nograd_attrs.get("classes") == 4, "convert-from-torch --classes")
    r = subprocess.run([sys.executable, TOOL, "convert-to-torch", os.path.join(tmp, "data.h5"), pt2],
                       capture_output=True, text=True, timeout=120)
    check(r.returncode == 1 and "not a nograd model file" in r.stderr, "convert-to-torch of a dataset: %s"
          % r.stderr.strip())


# ---------------------------------------------------------------------------------------------------------------
# Part 2: C parity


class _RefBN(nn.Module):
    """Inference-form batch norm that autograd can differentiate with respect to the running statistics too."""

    def __init__(self, bn):
        super().__init__()
        self.bn = bn

    def forward(self, x):
        bn = self.bn
        view = (1, -1) + (1,) * (x.dim() - 2)
        scale = bn.weight.view(view) / torch.sqrt(bn.running_var.view(view) + bn.eps)
        return (x - bn.running_mean.view(view)) * scale + bn.bias.view(view)


def _swap_bn(module):
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, _RefBN(child))
        else:
            _swap_bn(child)


def reference(model, shape, x, y):
    """PyTorch in float64: logits, mean cross-entropy, and {name: gradient of the summed loss}."""
    ref = copy.deepcopy(model).double().eval()
    _, tensors, _ = ngt.to_spec(ref, shape, raw=True)
    for _, t in tensors:
        t.requires_grad_(True)
    _swap_bn(ref)
    logits = ref(x.double())
    if y is None:
        return logits.detach(), None, None
    F.cross_entropy(logits, y, reduction="sum").backward()
    loss = F.cross_entropy(logits.detach(), y).item()
    return logits.detach(), loss, {n: t.grad.detach().clone() for n, t in tensors}


def rel(a, b):
    """max |a - b| / max |b| (max |a - b| when b is all zeros)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(b)) if b.size else 0.0
    err = np.max(np.abs(a - b)) if b.size else 0.0
    return err / scale if scale > 0 else err


def probe(mode, *args):
    r = subprocess.run([PROBE, mode] + list(args), capture_output=True, text=True, timeout=60)
    if not check(r.returncode == 0, "nn_probe %s %s: exit %d: %s" % (mode, " ".join(os.path.basename(a)
                                                                                   for a in args),
                                                                         r.returncode, r.stderr.strip())):
        return None
    return r.stdout


def probe_index(stdout):
    out = {}
    for line in stdout.splitlines():
        f = line.split()
        if f and f[0] == "tensor" and len(f) == 8:
            nd = int(f[3])
            out[f[1]] = (int(f[2]), tuple(int(s) for s in f[4:4 + nd]))
    return out


worst = {"logits": 0.0, "loss": 0.0, "grad": 0.0}


def compare(kind, seed, tmp):
    model, shape, classes = make(kind, seed)
    x, y = inputs(shape, classes, seed + 100)
    mpath, dpath, opath = (os.path.join(tmp, "%s_%d.%s.h5" % (kind, seed, s)) for s in ("model", "data", "out"))
    ngt.save(model, mpath, classes=classes, input_shape=shape)
    ngt.save_dataset(x, y, dpath)
    backward = kind != "evalonly"
    modes = ["forward", "backward"] if backward else ["forward"]
    _, _, names, _ = ngt.read_model(mpath)
    ref_logits, ref_loss, ref_grad = reference(model, shape, x, y if backward else None)
    for mode in modes:
        out = probe(mode, mpath, dpath, opath)
        if out is None:
            continue
        check(probe_index(out) == names, "%s: nograd reads the index as written: %s" % (kind, probe_index(out)))
        with h5py.File(opath, "r") as f:
            logits = f["logits"][()]
            e = rel(logits, ref_logits.numpy())
            worst["logits"] = max(worst["logits"], e)
            check(logits.shape == (BATCH, classes) and e <= FWD_TOL,
                  "%s seed %d %s: logits differ from PyTorch by %.2e relative" % (kind, seed, mode, e))
            if mode != "backward":
                continue
            loss = float(f["loss"][()]) / BATCH  # nograd sums over the batch; torch's default is the mean
            e = abs(loss - ref_loss) / abs(ref_loss)
            worst["loss"] = max(worst["loss"], e)
            check(e <= LOSS_TOL, "%s seed %d: loss %.8g (sum / batch), PyTorch %.8g: %.2e relative"
                  % (kind, seed, loss, ref_loss, e))
            dl = f["dlogits"][()]
            soft = torch.softmax(ref_logits, 1).numpy() - np.eye(classes)[y.numpy()]
            check(rel(dl, soft) <= FWD_TOL, "%s seed %d: dlogits = softmax - onehot (%.2e)" % (kind, seed,
                                                                                        rel(dl, soft)))
            grad = f["grad"][()]
            for name, (off, shp) in names.items():
                g = grad[off:off + int(np.prod(shp))]
                want = ref_grad[name].numpy().ravel()
                e = rel(g, want)
                if name.endswith((".running_mean", ".running_var")):
                    # Running statistics are constants of the inference form: nograd may leave their gradient
                    # zero or give the true one; anything else is wrong.
                    check(e <= GRAD_TOL or not np.any(g),
                          "%s seed %d: gradient of %s neither zero nor PyTorch's (%.2e)" % (kind, seed, name, e))
                    continue
                worst["grad"] = max(worst["grad"], e)
                check(e <= GRAD_TOL, "%s seed %d: gradient of %s differs from PyTorch by %.2e relative"
                      % (kind, seed, name, e))


INIT_SPECS = {
    "mlp": "input 20\ndense fc1 32\nrelu\ndense fc2 5\n",
    "cnn": "input 2 12 12\nconv2d conv1 4 3 padding=1\nrelu\nmaxpool 2\nconv2d conv2 6 3 stride=1 padding=1\n"
           "relu\nmaxpool 2 stride=2\nflatten\ndense fc1 10\n",
    "mixed": "# every layer kind\ninput 3 10 10\nconv2d c1 4 3 stride=2 padding=1\nbatchnorm b1 eps=1e-5\ngelu\n"
             "avgpool 2\nflatten\ndense d1 8\nlayernorm n1\ntanh\nresidual\ndense d2 8\nsigmoid\nend\n"
             "dropout 0.25\ndense d3 3\nsoftmax\n",
}


def from_c(tmp):
    """Models that nograd creates and writes are read by load() and give nograd's outputs."""
    for kind, spec in INIT_SPECS.items():
        spath, mpath, dpath, opath = (os.path.join(tmp, "init_%s.%s" % (kind, s))
                                      for s in ("spec", "model.h5", "data.h5", "out.h5"))
        with open(spath, "w") as f:
            f.write(spec)
        if probe("init", spath, "7", mpath) is None:
            continue
        try:
            model = ngt.load(mpath)
        except (ValueError, KeyError, OSError) as e:
            check(False, "init %s: load() of a model nograd wrote: %s" % (kind, e))
            continue
        shape = model.nograd_input_shape
        x, _ = inputs(shape, 2, 5)
        ngt.save_dataset(x, torch.zeros(BATCH, dtype=torch.long), dpath)
        if probe("forward", mpath, dpath, opath) is None:
            continue
        with h5py.File(opath, "r") as f:
            logits = f["logits"][()]
        e = rel(logits, reference(model, shape, x, None)[0].numpy())
        check(e <= FWD_TOL, "init %s: load() of nograd's file gives logits %.2e from nograd's" % (kind, e))
        # PyTorch's default initialisation: |w| and |b| below 1/sqrt(fan_in), not all equal; norms 1 and 0.
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                bound = 1 / np.sqrt(m.weight[0].numel())
                for t in (m.weight, m.bias):
                    check(float(t.abs().max()) <= bound * (1 + 1e-6) and float(t.std()) > bound / 10,
                          "init %s: %s uniform in +-%.3g" % (kind, type(m).__name__, bound))
            if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d)):
                check(bool((m.weight == 1).all() and (m.bias == 0).all()), "init %s: norm weight 1, bias 0" % kind)
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                check(bool((m.running_mean == 0).all() and (m.running_var == 1).all()),
                      "init %s: running mean 0, variance 1" % kind)


def data_compat(tmp):
    """nograd's dataset reader (ng_dataset_open, ng_dataset_read_rows) accepts what save_dataset writes."""
    path = os.path.join(tmp, "compat.h5")
    x = torch.randn(40, 2, 3, 5)
    y = torch.randint(1, 4, (40,))
    ngt.save_dataset(x, y, path, name="toy images", domain="d1", classes=5)
    out = probe("data", path)
    if out is not None:
        want = ["n 40 d 30 xrank 3 xdims 2 3 5 t 0 classes 5", "name toy images", "domain d1",
                "y0 %d x0 %.9g" % (int(y[0]), float(x[0, 0, 0, 0]))]
        check(out.splitlines() == want, "nograd reads a labelled image dataset as %r, expected %r"
              % (out.splitlines(), want))
    t = torch.randn(9, 3)
    ngt.save_dataset(torch.ones(9, 4), t, path)
    out = probe("data", path)
    if out is not None:
        want = ["n 9 d 4 xrank 1 xdims 4 0 0 t 3 classes 0", "name ", "domain ", "y0 %.9g x0 1" % float(t[0, 0])]
        check(out.splitlines() == want, "nograd reads a target dataset as %r, expected %r" % (out.splitlines(), want))


def main():
    with tempfile.TemporaryDirectory(prefix="nograd_torch_") as tmp:
        part1(tmp)
        print("part 1 (Python round trips): %s (%.1f s)" % ("FAILED" if failures else "ok", time.time() - T0))
        if PROBE is None or not os.path.exists(PROBE):
            print("SKIP: C parity: nn_probe %s (the C model code is not built yet)"
                  % ("not given" if PROBE is None else "not found at " + PROBE))
            return 1 if failures else 77
        for kind in MODELS:
            for seed in (11, 12, 13):
                compare(kind, seed, tmp)
        from_c(tmp)
        data_compat(tmp)
        print("part 2 (C parity): worst relative differences: logits %.2e, loss %.2e, gradients %.2e (limits %g, "
              "%g, %g)" % (worst["logits"], worst["loss"], worst["grad"], FWD_TOL, LOSS_TOL, GRAD_TOL))
    print("%s: %d failures (%.1f s)" % ("FAILED" if failures else "PASSED", len(failures), time.time() - T0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
