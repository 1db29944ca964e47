#!/usr/bin/python3
"""Every command that takes a model takes an ONNX file: nograd eval, glue and retrofit on models exported
from PyTorch (tools/nograd_torch.py export_onnx), and their results loaded back into PyTorch.

Usage: test_commands.py NOGRAD [MPIRUN]

Makes synthetic image domains with `nograd data synth`, trains three small residual CNNs in PyTorch (conv,
BatchNorm, a residual block, max and adaptive average pooling, linear head), one per source domain, and
exports them. Checks: `nograd eval`'s loss equals PyTorch's cross-entropy within 1e-4 relative; glue (SPSA,
per model and per layer group) and retrofit (scale: of a node and of a module prefix, temperature, offsets)
write ONNX files that are byte-identical under mpirun -n 1 and 2, pass onnx.checker, and loaded back into the
PyTorch module give the loss nograd reported; --list-params names nodes and modules; bad input is refused
with a message naming the file: glue --method fullgrad and train --init-from on ONNX, experts whose graphs
differ (the first differing node or tensor), a dataset whose rows do not fit the graph's input, a native
prior written as .onnx. Exits 77 (skipped) without python3-torch or python3-onnx.
"""
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import clitest  # noqa: E402
from clitest import check, failures, run  # noqa: E402

try:
    import numpy as np
    import onnx
    import torch
    from torch import nn
except ImportError as e:
    print("skipped: %s" % e)
    sys.exit(77)
import nograd_torch as ngt  # noqa: E402

clitest.MPIRUN = clitest.MPIRUN or shutil.which("mpirun")
MPIRUN = clitest.MPIRUN
clitest.TIMEOUT = 120
torch.set_num_threads(1)


def must(args, mpi=0):
    rc, out, err = run(args, mpi)
    if rc != 0:
        print("command failed (%d): %s\n%s%s" % (rc, " ".join(args), out, err))
        sys.exit(1)
    return out


def last_json(text):
    return json.loads(text.strip().splitlines()[-1])


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class Net(nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = Block(width)
        self.pool = nn.Sequential(nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(4))
        self.fc = nn.Linear(width * 16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer1(self.stem(x))), 1))


def train(net, x, y, seed, epochs=3):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
    return net.eval()


def torch_loss(net, path):
    x, y, _ = ngt.load_dataset(path)
    with torch.no_grad():
        return float(nn.functional.cross_entropy(net(x).double(), y.long(), reduction="mean"))


with tempfile.TemporaryDirectory() as d:
    p = lambda name: os.path.join(d, name)
    sources = ["upright", "small", "bold"]
    must(["data", "synth", "images", "--domains", ",".join(sources + ["tilted"]), "--rows", "1200",
          "--out-prefix", p("d")])
    must(["data", "split", p("d-tilted.h5"), "--train", "0.3", "--val", "0.3", "--test", "0.4", "--seed", "1",
          "--out-prefix", p("t")])
    nets, experts = [], []
    for k, s in enumerate(sources):
        x, y, _ = ngt.load_dataset(p("d-%s.h5" % s))
        torch.manual_seed(10 + k)
        net = train(Net(), x, y.long(), seed=k)
        nets.append(net)
        experts.append(p("e-%s.onnx" % s))
        ngt.export_onnx(net, experts[-1], (1, 16, 16), opset=17)
        torch.save(net, p("e-%s.pt" % s))
    ngt.export_onnx(nets[1], p("e-small-13.onnx"), (1, 16, 16), opset=13)

    # eval: nograd's cross-entropy is PyTorch's
    for net, e in zip(nets + [nets[1]], experts + [p("e-small-13.onnx")]):
        r = last_json(must(["eval", e, p("t-val.h5"), "--json"]))
        want = torch_loss(net, p("t-val.h5"))
        check(abs(r["loss"] - want) <= 1e-4 * abs(want),
              "eval %s: loss %.7f, PyTorch %.7f" % (os.path.basename(e), r["loss"], want))

    # glue: the same bytes on 1 and 2 ranks; the prior in PyTorch has the reported loss
    glue = ["glue", "--experts"] + experts + ["--target-train", p("t-train.h5"), "--target-val", p("t-val.h5"),
                                             "--steps", "15", "--json", "--chunk-rows", "100"]
    for gran in ("model", "layer"):
        outs = []
        for P in (1, 2):
            out = p("prior-%s-%d.onnx" % (gran, P))
            r = last_json(must(glue + ["--granularity", gran, "--out", out], mpi=P if P > 1 else 0))
            outs.append((out, r))
        same = open(outs[0][0], "rb").read() == open(outs[1][0], "rb").read()
        check(same and outs[0][1]["weights"] == outs[1][1]["weights"],
              "glue --granularity %s: the same prior file and weights on 1 and 2 ranks" % gran)
        onnx.checker.check_model(onnx.load(outs[0][0]))
        net = torch.load(p("e-upright.pt"))
        report = ngt.load_onnx(net, outs[0][0])
        got = torch_loss(net, p("t-val.h5"))
        r = outs[0][1]
        check(len(report) > 0 and abs(got - r["prior_loss"]) <= 1e-4 * abs(r["prior_loss"]),
              "glue %s: the prior loaded into PyTorch (%d tensors changed) has loss %.7f, nograd reported %.7f"
              % (gran, len(report), got, r["prior_loss"]))

    # a fresh expert (torch replaces its BatchNorm statistics equal to biases by Identity copies) has the
    # layout of the trained ones, so they mix
    torch.manual_seed(99)
    ngt.export_onnx(Net(), p("fresh.onnx"), (1, 16, 16))
    fresh_ids = sum(n.op_type == "Identity" for n in onnx.load(p("fresh.onnx")).graph.node)
    rc, out, err = run(["glue", "--experts", experts[0], p("fresh.onnx"), "--target-train", p("t-train.h5"),
                        "--method", "uniform", "--out", p("with-fresh.onnx"), "--json"])
    check(fresh_ids > 0 and rc == 0 and os.path.exists(p("with-fresh.onnx")),
          "a fresh expert (%d Identity copies) mixes with a trained one: exit %d %s" % (fresh_ids, rc, err.strip()[-200:]))

    # retrofit: the same bytes on 1 and 2 ranks; the result in PyTorch has the reported loss
    listing = must(["retrofit", "--list-params", experts[0]])
    check("scale:" in listing and "module layer1.conv1" in listing and "offsets      yes" in listing,
          "--list-params names the Conv/Gemm nodes with their modules, and offsets on the head")
    base = ["retrofit", experts[0], "--params", "scale:layer1,scale:stem.0,temperature,offsets", "--val",
            p("t-val.h5"), "--test", p("t-test.h5"), "--metric", "cross_entropy", "--budget", "60", "--json"]
    res = []
    for P in (1, 2):
        out = p("tuned-%d.onnx" % P)
        res.append((out, last_json(must(base + ["--out", out], mpi=P if P > 1 else 0))))
    check(open(res[0][0], "rb").read() == open(res[1][0], "rb").read(),
          "retrofit: the same tuned file on 1 and 2 ranks")
    r = res[0][1]
    check(r["n"] == 2 + 1 + 10, "retrofit: 2 scales, a temperature and 10 offsets (n = %d)" % r["n"])
    onnx.checker.check_model(onnx.load(res[0][0]))
    net = torch.load(p("e-upright.pt"))
    report = ngt.load_onnx(net, res[0][0])
    got = torch_loss(net, p("t-val.h5"))
    check(abs(got - r["val_after"]) <= 1e-4 * abs(r["val_after"]) and r["val_after"] <= r["val_before"],
          "retrofit: the tuned model in PyTorch has validation loss %.7f, nograd reported %.7f (before %.7f)"
          % (got, r["val_after"], r["val_before"]))
    changed = {name for name, _, _ in report}
    check({"layer1.conv1.weight", "layer1.conv2.weight", "stem.0.weight", "fc.bias"} <= changed and
          "layer1.bn1.weight" not in changed,
          "retrofit: the scaled and folded tensors changed, the others did not (%s)" % sorted(changed))

    # sequences: a dataset of N x S x d rows for a TransformerEncoder, on 1 and 2 ranks
    torch.manual_seed(7)
    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 1)
            self.head = nn.Linear(16, 3)

        def forward(self, x):
            return self.head(self.enc(x).mean(1))
    seq = Seq().eval()
    ngt.export_onnx(seq, p("seq.onnx"), (6, 16))
    xs, ys = torch.randn(70, 6, 16), torch.randint(0, 3, (70,))
    ngt.save_dataset(xs, ys, p("seq.h5"), classes=3)
    r1 = last_json(must(["eval", p("seq.onnx"), p("seq.h5"), "--json", "--chunk-rows", "16"]))
    r2 = last_json(must(["eval", p("seq.onnx"), p("seq.h5"), "--json", "--chunk-rows", "16"], mpi=2))
    want = torch_loss(seq, p("seq.h5"))
    check(abs(r1["loss"] - want) <= 1e-4 * want and r1["loss"] == r2["loss"],
          "a sequence dataset (70 x 6 x 16) through a TransformerEncoder: loss %.7f on 1 and 2 ranks, PyTorch %.7f"
          % (r1["loss"], want))

    # a decision threshold is stored in the ONNX file's metadata and read back
    must(["data", "synth", "vectors", "--domain", "upright", "--rows", "400", "--classes", "2", "--out", p("bin.h5")])
    xb, yb, _ = ngt.load_dataset(p("bin.h5"))
    torch.manual_seed(5)
    binnet = train(nn.Sequential(nn.Linear(xb.shape[1], 16), nn.ReLU(), nn.Linear(16, 2)), xb, yb.long(), seed=5)
    ngt.export_onnx(binnet, p("bin.onnx"), (xb.shape[1],))
    r = last_json(must(["retrofit", p("bin.onnx"), "--params", "threshold", "--val", p("bin.h5"), "--metric",
                        "threshold_error", "--budget", "40", "--out", p("bin-t.onnx"), "--json"]))
    meta = {m.key: m.value for m in onnx.load(p("bin-t.onnx")).metadata_props}
    e = last_json(must(["eval", p("bin-t.onnx"), p("bin.h5"), "--metric", "threshold_error", "--json"]))
    check("nograd.threshold" in meta and abs(e["threshold_error"] - r["val_after"]) < 1e-12,
          "retrofit threshold: stored as metadata nograd.threshold=%s, and nograd eval uses it (%.4f)" %
          (meta.get("nograd.threshold"), e["threshold_error"]))

    # bad input
    rc, out, err = run(glue + ["--method", "fullgrad", "--out", p("fg.onnx")])
    check(rc != 0 and experts[0] in err and "ONNX" in err and not os.path.exists(p("fg.onnx")),
          "glue --method fullgrad on ONNX experts is refused naming the file: " + err.strip()[-160:])
    rc, out, err = run(["train", "--train", p("t-train.h5"), "--init-from", experts[0], "--out", p("tr.h5")])
    check(rc != 0 and experts[0] in err and "ONNX" in err, "train --init-from an ONNX model is refused: "
          + err.strip()[-160:])
    other = p("other.onnx")
    ngt.export_onnx(Net(width=4), other, (1, 16, 16))
    rc, out, err = run(["glue", "--experts", experts[0], other, "--target-train", p("t-train.h5"), "--out",
                        p("x.onnx")])
    check(rc == 1 and "not of one architecture" in err and other in err and not os.path.exists(p("x.onnx")),
          "experts whose graphs differ are refused naming the tensor or node: " + err.strip()[-200:])
    must(["data", "synth", "vectors", "--domain", "upright", "--rows", "50", "--out", p("vec.h5")])
    rc, out, err = run(["eval", experts[0], p("vec.h5")])
    check(rc != 0 and experts[0] in err and "vec.h5" in err, "rows that do not fit the graph's input: "
          + err.strip()[-200:])
    with open(p("spec.txt"), "w") as f:
        f.write("input 1 16 16\nflatten\ndense fc 10\n")
    must(["train", "--train", p("t-train.h5"), "--spec", p("spec.txt"), "--out", p("n1.h5"), "--epochs", "1",
          "--quiet"])
    shutil.copy(p("n1.h5"), p("n2.h5"))
    rc, out, err = run(["glue", "--experts", p("n1.h5"), p("n2.h5"), "--target-train", p("t-train.h5"),
                        "--method", "uniform", "--out", p("n.onnx")])
    check(rc == 2 and "n.onnx" in err and not os.path.exists(p("n.onnx")),
          "a native prior is not written as .onnx: " + err.strip()[-160:])

sys.exit(1 if failures else 0)
