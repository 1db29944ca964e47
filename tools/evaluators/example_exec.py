#!/usr/bin/env python3
"""An example exec: evaluator in Python, on nograd.evaluator.serve (tools/python; numpy): the shifted sphere
f(x) = sum_i (x_i - s)^2, s = 1 unless --shift says otherwise.

    nograd ... --evaluator "exec:python3 tools/evaluators/example_exec.py [--shift S] [--counts]"

With --counts, chunk c holds c + 1 examples: it answers (f(x) * (c + 1), c + 1), as the C example does.
serve does the frames (README.md here): reading, replying, flushing, and exiting at BYE or end of input.
"""
import argparse
import os
import sys

# Run from a checkout, use its package (tools/python); installed, the package is on Python's path.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from nograd.evaluator import serve  # noqa: E402  (it says so when numpy is missing)

import numpy as np  # noqa: E402

parser = argparse.ArgumentParser(description="the shifted sphere as an exec: evaluator")
parser.add_argument("--shift", type=float, default=1.0, help="s in sum_i (x_i - s)^2 (default 1)")
parser.add_argument("--counts", action="store_true", help="chunk c holds c + 1 examples")
args = parser.parse_args()


def score(X, chunk, generation, start):
    f = np.zeros(len(X))  # one loss per row (candidate)
    for d in (X - args.shift).T:  # coordinate by coordinate, as the C example adds them: the same bits
        f += d * d
    return (f * (chunk + 1), [chunk + 1] * len(X)) if args.counts else f


serve(score, counts=args.counts)
