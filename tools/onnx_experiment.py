#!/usr/bin/python3
"""GLUE and retrofit on ONNX models trained in PyTorch, on the handwritten digits of ../shared/data.

Usage: onnx_experiment.py --data ../shared/data --nograd build/nograd --out DIR [--mpirun mpirun] [--seed 1]
                          [--epochs 4] [--steps 60] [--budget 120]

For each digit source in turn as the target (mnist, usps, optdigits; tools/glue_prepare.py prepares the splits:
1x16x16 images, 200 target train and 200 target val rows, the rest of the target its test set):
  1. one small ResNet (a stem conv, two residual blocks with BatchNorm, adaptive average pooling, a linear
     head) is trained in PyTorch on each of the two other sources and exported to ONNX (nograd_torch.py
     export_onnx): the experts;
  2. `nograd glue` mixes them with SPSA (--method spsa), and the data-size and uniform baselines, on the target
     train split; SPSA runs on 1 and on 2 ranks and the two prior files must be the same bytes;
  3. each prior is loaded back into the PyTorch module (nograd_torch.py load_onnx), its loss on the target val
     split compared with the one nograd reported, and fine-tuned in PyTorch on the target train split (the
     GLUE recipe: the prior is a starting point); test accuracy before and after fine-tuning is reported;
  4. `nograd retrofit` tunes the first expert's head on the target val split (offsets, temperature and a scale
     of its last block: `--params offsets,temperature,scale:layer2`, cross-entropy, --budget evaluations) on 1
     and 2 ranks (the same bytes), and the tuned ONNX model, loaded into PyTorch, has the reported val loss;
     its test loss and error before and after are reported.
Writes DIR/results.md and DIR/results.json; exits 1 if a determinism or reload check fails.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import nograd_torch as ngt  # noqa: E402

DOMAINS = ["mnist", "usps", "optdigits"]


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class SmallResNet(nn.Module):
    def __init__(self, width=16, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = Block(width, width, 1)
        self.layer2 = Block(width, 2 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer2(self.layer1(self.stem(x)))), 1))


def fit(net, x, y, epochs, seed, lr=3e-3):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
    return net.eval()


def measure(net, path):
    x, y, _ = ngt.load_dataset(path)
    with torch.no_grad():
        out = net(x).double()
    y = y.long()
    return float(nn.functional.cross_entropy(out, y)), float((out.argmax(1) != y).double().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--nograd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--budget", type=int, default=120)
    a = ap.parse_args()
    torch.set_num_threads(1)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    os.makedirs(a.out, exist_ok=True)

    def ng(args, ranks=1):
        cmd = [a.nograd] + args
        if ranks > 1:
            cmd = [a.mpirun, "-n", str(ranks), "--oversubscribe"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            raise SystemExit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr))
        return json.loads(p.stdout.strip().splitlines()[-1])

    rows, problems = [], []
    t0 = time.time()
    for target in DOMAINS:
        d = os.path.join(a.out, target)
        subprocess.run([sys.executable, os.path.join(HERE, "glue_prepare.py"), "--data", a.data, "--dataset",
                        "digits", "--target", target, "--seed", str(a.seed), "--out", d, "--nograd", a.nograd,
                        "--cache", os.path.join(a.out, "cache")], check=True, env=env, capture_output=True)
        f = lambda name: os.path.join(d, name)
        sources = [s for s in DOMAINS if s != target]
        experts, sizes = [], []
        for k, s in enumerate(sources):
            x, y, _ = ngt.load_dataset(f("src-%s-train.h5" % s))
            torch.manual_seed(100 * a.seed + k)
            net = fit(SmallResNet(), x, y.long(), a.epochs, seed=a.seed + k)
            experts.append(f("expert-%s.onnx" % s))
            sizes.append(len(x))
            ngt.export_onnx(net, experts[-1], (1, 16, 16))
            torch.save(net, f("expert-%s.pt" % s))
        glue = ["glue", "--experts"] + experts + ["--target-train", f("target-train.h5"), "--target-val",
                                                 f("target-val.h5"), "--json", "--quiet", "--sizes",
                                                 ",".join(map(str, sizes))]
        row = {"target": target, "experts": sources}
        for method in ("spsa", "datasize", "uniform"):
            out = f("prior-%s.onnx" % method)
            extra = ["--steps", str(a.steps), "--seed", str(a.seed)] if method == "spsa" else []
            r = ng(glue + ["--method", method, "--out", out] + extra)
            if method == "spsa":
                r2 = ng(glue + ["--method", method, "--out", f("prior-spsa-2.onnx")] + extra, ranks=2)
                same = open(out, "rb").read() == open(f("prior-spsa-2.onnx"), "rb").read()
                row["spsa_same_bits_p1_p2"] = same
                if not same or r2["weights"] != r["weights"]:
                    problems.append("%s: the SPSA prior differs between 1 and 2 ranks" % target)
            net = torch.load(f("expert-%s.pt" % sources[0]))
            ngt.load_onnx(net, out)
            val_loss, _ = measure(net, f("target-val.h5"))
            if abs(val_loss - r["prior_loss"]) > 1e-4 * abs(r["prior_loss"]):
                problems.append("%s %s: PyTorch val loss %.7f, nograd %.7f" % (target, method, val_loss,
                                                                              r["prior_loss"]))
            test_before = measure(net, f("target-test.h5"))
            x, y, _ = ngt.load_dataset(f("target-train.h5"))
            fit(net, x, y.long(), 10, seed=a.seed, lr=1e-3)
            test_after = measure(net, f("target-test.h5"))
            row[method] = {"weights": r["weights"], "prior_val_loss": r["prior_loss"], "torch_val_loss": val_loss,
                           "test_error_prior": test_before[1], "test_error_finetuned": test_after[1]}
        # retrofit the first expert on the target's val split
        base = ["retrofit", experts[0], "--params", "offsets,temperature,scale:layer2", "--val",
                f("target-val.h5"), "--test", f("target-test.h5"), "--metric", "cross_entropy", "--budget",
                str(a.budget), "--seed", str(a.seed), "--json", "--quiet"]
        r = ng(base + ["--out", f("tuned.onnx")])
        ng(base + ["--out", f("tuned-2.onnx")], ranks=2)
        same = open(f("tuned.onnx"), "rb").read() == open(f("tuned-2.onnx"), "rb").read()
        if not same:
            problems.append("%s: the retrofitted model differs between 1 and 2 ranks" % target)
        net = torch.load(f("expert-%s.pt" % sources[0]))
        ngt.load_onnx(net, f("tuned.onnx"))
        val_loss, _ = measure(net, f("target-val.h5"))
        if abs(val_loss - r["val_after"]) > 1e-4 * abs(r["val_after"]):
            problems.append("%s retrofit: PyTorch val loss %.7f, nograd %.7f" % (target, val_loss, r["val_after"]))
        test_loss, test_err = measure(net, f("target-test.h5"))
        row["retrofit"] = {"expert": sources[0], "val_before": r["val_before"], "val_after": r["val_after"],
                           "torch_val_after": val_loss, "test_before": r["test_before"], "test_after": r["test_after"],
                           "test_error_after": test_err, "evaluations": r["evaluations"], "same_bits_p1_p2": same}
        rows.append(row)
        print("%s done (%.0f s)" % (target, time.time() - t0), file=sys.stderr)

    with open(os.path.join(a.out, "results.json"), "w") as fp:
        json.dump({"rows": rows, "problems": problems, "seconds": time.time() - t0}, fp, indent=1)
    lines = ["# GLUE and retrofit on ONNX experts (digits)", "",
             "Small ResNets trained in PyTorch (%d epochs) on each source, exported to ONNX; nograd glue on the "
             "target's 200 train rows (SPSA %d steps), priors fine-tuned in PyTorch (10 epochs on the same rows)."
             % (a.epochs, a.steps), "",
             "| target | method | weights | prior val loss (nograd / PyTorch) | test error: prior -> fine-tuned |",
             "|---|---|---|---|---|"]
    for row in rows:
        for method in ("spsa", "datasize", "uniform"):
            m = row[method]
            lines.append("| %s | %s | %s | %.4f / %.4f | %.3f -> %.3f |" % (
                row["target"], method, ", ".join("%.3f" % w for w in m["weights"]), m["prior_val_loss"],
                m["torch_val_loss"], m["test_error_prior"], m["test_error_finetuned"]))
    lines += ["", "Retrofit (offsets, temperature, scale:layer2; cross-entropy on the target val split):", "",
              "| target | expert | val loss before -> after (PyTorch after) | test loss before -> after | evaluations |",
              "|---|---|---|---|---|"]
    for row in rows:
        r = row["retrofit"]
        lines.append("| %s | %s | %.4f -> %.4f (%.4f) | %.4f -> %.4f | %d |" % (
            row["target"], r["expert"], r["val_before"], r["val_after"], r["torch_val_after"], r["test_before"],
            r["test_after"], r["evaluations"]))
    lines += ["", "Same bits on 1 and 2 ranks (glue SPSA prior and retrofitted model): %s" %
              all(r["spsa_same_bits_p1_p2"] and r["retrofit"]["same_bits_p1_p2"] for r in rows),
              "", "Problems: %s" % ("none" if not problems else "; ".join(problems))]
    with open(os.path.join(a.out, "results.md"), "w") as fp:
        fp.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
