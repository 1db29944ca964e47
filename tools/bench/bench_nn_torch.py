#!/usr/bin/python3
"""PyTorch's side of bench_nn: the same models, timed the same way, on one thread, float32.

    bench_nn_torch.py --write-models DIR         writes DIR/mlp.h5 and DIR/lenet.h5 (nograd model files,
                                                 PyTorch's default initialisation, seed 1)
    bench_nn_torch.py [--model mlp|lenet|FILE.h5] [--batch 256] [--reps 30] [--warmup 3] [--layers]

A FILE.h5 is loaded with tools/nograd_torch.py, so that bench_nn and this script time the same weights.
"forward" is model.eval() under torch.inference_mode(); "forward+backward" is a training step without the
optimizer: grads set to None, model.train(), cross_entropy(reduction="sum") of the outputs and backward().
Each repetition times one of each, interleaved; the medians are printed as samples per second, in the format
bench_nn prints (run_nn_bench.sh parses both).

--layers prints the same per-layer table as bench_nn --layers: each prefix model[:i] (the backward pass of a
prefix propagates a random output gradient) timed, all prefixes in turn in each repetition, and the median
over the repetitions of the difference to the prefix before it.
"""
import argparse
import os
import statistics
import sys
import time

# One thread everywhere: torch.set_num_threads(1) limits ATen's OpenMP pool, but Debian's torch does its sgemm
# in OpenBLAS (pthread build), which reads its thread count when it is loaded and would otherwise use every
# core for Linear layers. So the variables are set before torch is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import torch  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import nograd_torch as ngt  # noqa: E402


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
                         nn.ReLU(), nn.Linear(84, 10))


SHAPES = {"mlp": (784,), "lenet": (1, 28, 28)}


def build(name):
    torch.manual_seed(1)
    return {"mlp": mlp, "lenet": lenet}[name]()


class Bench:
    """One model set up for timing: inputs, labels (or a random output gradient, for prefixes whose outputs are
    not logits)."""

    def __init__(self, model, shape, batch, classes_out=True):
        g = torch.Generator().manual_seed(12345)
        self.model, self.classes_out = model, classes_out
        self.x = torch.rand((batch,) + tuple(shape), generator=g, dtype=torch.float32)
        with torch.no_grad():
            out = model.eval()(self.x)
        self.y = torch.randint(0, out.shape[1], (batch,), generator=g) if classes_out else None
        self.dout = torch.rand(out.shape, generator=g) * 2 - 1

    def step(self):
        """(seconds of a forward pass in eval mode, seconds of a training step's forward + backward)."""
        model = self.model
        model.eval()
        t0 = time.perf_counter()
        with torch.inference_mode():
            model(self.x)
        t1 = time.perf_counter()
        for p in model.parameters():
            p.grad = None
        model.train()
        o = model(self.x)
        if self.classes_out:
            F.cross_entropy(o, self.y, reduction="sum").backward()
        elif o.requires_grad:  # a prefix without parameters has nothing to differentiate
            o.backward(self.dout)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1


def per_layer(model, shape, batch, reps, warmup):
    """Each prefix model[:i] timed, all of them in turn in each repetition; a layer's cost is the median over
    the repetitions of its prefix's time minus the previous prefix's."""
    layers = list(model)
    benches = [Bench(nn.Sequential(*layers[:i]), shape, batch, classes_out=False) for i in range(1, len(layers) + 1)]
    cum = [[[], []] for _ in benches]
    delta = [[[], []] for _ in benches]
    for r in range(-warmup, reps):
        prev = (0.0, 0.0)
        for i, b in enumerate(benches):
            t = b.step()
            if r >= 0:
                for k in range(2):
                    cum[i][k].append(t[k])
                    delta[i][k].append(t[k] - prev[k])
            prev = t
    print("\nper layer: prefix 1..i minus prefix 1..i-1, all prefixes in turn in each repetition; median of %d, "
          "ms per batch of %d" % (reps, batch))
    print("  %-3s %-28s %9s %9s %9s %9s" % ("i", "layer", "fwd", "fwd cum", "f+b", "f+b cum"))
    for i, layer in enumerate(layers):
        m = statistics.median
        print("  %-3d %-28s %9.3f %9.3f %9.3f %9.3f" % (i + 1, repr(layer)[:28], 1e3 * m(delta[i][0]),
                                                       1e3 * m(cum[i][0]), 1e3 * m(delta[i][1]), 1e3 * m(cum[i][1])))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--layers", action="store_true")
    ap.add_argument("--write-models", metavar="DIR")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    if args.write_models:
        os.makedirs(args.write_models, exist_ok=True)
        for name in ("mlp", "lenet"):
            path = os.path.join(args.write_models, name + ".h5")
            ngt.save(build(name), path, classes=10, input_shape=SHAPES[name])
            print(path)
        return 0
    if args.model in SHAPES:
        model, shape = build(args.model), SHAPES[args.model]
    else:
        model = ngt.load(args.model)
        shape = tuple(model.nograd_input_shape)
    model = model.float()
    bench = Bench(model, shape, args.batch)
    tf, tt = [], []
    for r in range(-args.warmup, args.reps):
        t = bench.step()
        if r >= 0:
            tf.append(t[0])
            tt.append(t[1])
    tf, tt = statistics.median(tf), statistics.median(tt)
    nparams = sum(p.numel() for p in model.parameters())
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0  # after the runs
    print("model %s: %d parameters, batch %d, median of %d repetitions, torch %s, %d intra-op thread, "
          "%d OS threads" % (args.model, nparams, args.batch, args.reps, torch.__version__, torch.get_num_threads(),
                             threads))
    print("forward            %12.0f samples/s  %9.3f ms/batch" % (args.batch / tf, 1e3 * tf))
    print("forward+backward   %12.0f samples/s  %9.3f ms/batch" % (args.batch / tt, 1e3 * tt))
    if args.layers:
        per_layer(model, shape, args.batch, args.reps, args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
