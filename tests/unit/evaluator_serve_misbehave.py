#!/usr/bin/python3
"""A test-only exec: evaluator written with nograd.evaluator.serve, for test_evaluator.c: what
evaluator_misbehave.c does by hand with the frames, done the way a user of serve would. It answers requests
right (f(x) = sum (x_i - 1)^2) until request K (0-based, per process) and there misbehaves as MODE says:

    evaluator_serve_misbehave.py MODE K

  exit        score calls sys.exit(3)              abort       score dies of SIGABRT
  hang        score sleeps                         raise       score raises ValueError("candidate 0 is cursed")
  wrongcount  score returns m + 1 losses           badcount    (counts=True) score returns a count of -1
  stderr      says "request k" on stderr for each request, then "dying now" and exits 4
  print       prints a line of text with print() for each request and never fails: serve keeps it off the
              frame channel
Not a test itself (tests/CMakeLists.txt globs test_*.c); the package comes from the checkout's tools/python.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "python"))
from nograd.evaluator import serve  # noqa: E402

mode, bad = sys.argv[1], int(sys.argv[2])
served = 0


def score(X, chunk, generation, start):
    global served
    k, served = served, served + 1
    f = np.zeros(len(X))
    for d in (X - 1.0).T:  # in order, as the C programs add: test_evaluator.c compares the bits
        f += d * d
    if mode == "stderr":
        print("request %d" % k, file=sys.stderr, flush=True)
    if mode == "print":
        print("oops: not a frame, request %d" % k)
    if k != bad:
        return (f, [1.0] * len(X)) if mode == "badcount" else f
    if mode == "exit":
        sys.exit(3)
    if mode == "abort":
        os.abort()
    if mode == "hang":
        time.sleep(1000)
    if mode == "raise":
        raise ValueError("candidate 0 is cursed")
    if mode == "wrongcount":
        return list(f) + [0.0]
    if mode == "badcount":
        return f, [-1.0] * len(X)
    if mode == "stderr":
        print("dying now", file=sys.stderr, flush=True)
        os._exit(4)
    return f


serve(score, counts=(mode == "badcount"))
