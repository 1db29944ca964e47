#!/usr/bin/python3
"""Forward-pass speed and peak memory of nograd's graph executor beside PyTorch, in one run, one thread each.

Usage: bench_onnx.py BUILD_DIR [--rounds 5] [--batch 64]

For torchvision resnet18 and mobilenet_v2 at 3x32x32 and a 2-layer TransformerEncoder (d_model 64, 4 heads,
batch_first, 16 tokens, mean pool and linear head): samples/s of PyTorch (torch.set_num_threads(1), eval,
no_grad) and of nograd (BUILD_DIR/tests/onnx_run, the public API's ng_nn_forward, OPENBLAS_NUM_THREADS=1) on the
same exported model and batch, medians over --rounds rounds alternating the two, and the ratio. Then the peak
resident memory (ru_maxrss of a child process) of `nograd eval` and of a PyTorch process doing the same
evaluation of resnet18 (the model, 640 rows, batch 64). Prints the OpenBLAS kernel set
(openblas_get_corename) and the CPU model first, since both change the figures.
"""
import argparse
import ctypes
import ctypes.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

import nograd_torch as ngt  # noqa: E402


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4, 128, batch_first=True), 2)
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.enc(x).mean(1))


def corename():
    for name in ("libopenblas.so.0", ctypes.util.find_library("openblas") or ""):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except OSError:
            continue
    return "unknown"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(1)
    run = os.path.join(a.build, "tests", "onnx_run")
    nograd = os.path.join(a.build, "nograd")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    print("OpenBLAS core: %s; CPU: %s; OPENBLAS_CORETYPE=%s" % (corename(), cpu_model(),
                                                                 os.environ.get("OPENBLAS_CORETYPE", "(unset)")))
    B = a.batch
    torch.manual_seed(0)
    models = [("resnet18", torchvision.models.resnet18(num_classes=10), (3, 32, 32), 1.0),
              ("mobilenet_v2", torchvision.models.mobilenet_v2(num_classes=10), (3, 32, 32), 0.8),
              ("transformer", Encoder(), (16, 64), 0.8)]
    print("%-14s %14s %14s %7s %7s" % ("model", "nograd/s", "pytorch/s", "ratio", "target"))
    with tempfile.TemporaryDirectory() as d:
        for name, m, shape, target in models:
            m.eval()
            path = os.path.join(d, name + ".onnx")
            ngt.export_onnx(m, path, shape)
            reps = 10
            x = torch.randn((B * reps,) + shape)
            x.numpy().tofile(os.path.join(d, "in.f32"))
            tn, tp = [], []
            for _ in range(a.rounds):
                out = subprocess.run([run, path, os.path.join(d, "in.f32"), str(B * reps), os.path.join(d, "o.f32"),
                                      str(B), "3"], capture_output=True, text=True, env=env, check=True).stdout
                tn.append(float(out.split("median")[1]) / reps)
                with torch.no_grad():
                    m(x[:B])
                    times = []
                    for _ in range(3):
                        t0 = time.perf_counter()
                        for i in range(reps):
                            m(x[i * B:(i + 1) * B])
                        times.append((time.perf_counter() - t0) / reps)
                tp.append(statistics.median(times))
            sn, sp = B / statistics.median(tn), B / statistics.median(tp)
            print("%-14s %14.0f %14.0f %7.3f %7.1f" % (name, sn, sp, sn / sp, target))

        # peak memory: nograd eval vs a PyTorch process evaluating the same rows
        m = models[0][1]
        path = os.path.join(d, "resnet18.onnx")
        x = torch.randn(640, 3, 32, 32)
        y = torch.randint(0, 10, (640,))
        data = os.path.join(d, "data.h5")
        ngt.save_dataset(x, y, data, classes=10)
        def peak(cmd):  # GNU time's maximum resident set size of the command alone (a fork of this process
            # would count the parent's pages too)
            out = os.path.join(d, "rss")
            subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + cmd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            return float(open(out).read().split()[-1]) / 1024.0
        mn = peak([nograd, "eval", path, data, "--batch", str(B)])
        torch.save(m, os.path.join(d, "r.pt"))
        code = ("import torch,sys; sys.path.insert(0,%r); torch.set_num_threads(1); m=torch.load(%r); m.eval();"
                "import nograd_torch as n; x,y,_=n.load_dataset(%r)\n"
                "with torch.no_grad():\n    [m(x[i:i+%d]) for i in range(0,len(x),%d)]" %
                (os.path.join(HERE, ".."), os.path.join(d, "r.pt"), data, B, B))
        mp = peak([sys.executable, "-c", code])
        print("peak memory, resnet18, 640 rows, batch %d: nograd eval %.1f MB, PyTorch %.1f MB (ratio %.2f, target <= 1)"
              % (B, mn, mp, mn / mp))


if __name__ == "__main__":
    main()
