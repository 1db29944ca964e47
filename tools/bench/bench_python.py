#!/usr/bin/python3
"""What Python's ask/tell costs: nograd.CMAES against the C benchmark (bench_cmaes) on the same problem, in one
invocation, so that both see the same machine.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 tools/bench/bench_python.py [--build build] [--n 1000]
        [--popsize 0] [--generations 84] [--rounds 9]

Both sides run whole runs of --generations generations of CMA-ES from x0 = 3, sigma0 = 2 with the default
population (--popsize 0) on the ellipsoid sum_i (i + 1) x_i^2, whose cost is O(n) per candidate, and report
the mean time per generation (ask, loss, tell), lazy eigendecompositions included (the same schedule on both
sides: it counts iterations). bench_cmaes does 5 runs and prints their median; the Python side does 5 runs of
the loop a user writes:

    X = es.ask(); es.tell(X, (X * X) @ w)

and takes their median. A round runs both, C first in odd rounds and Python first in even ones; the summary is
the median over rounds of each, and of the ratio Python / C measured within each round. Short runs in many
rounds (84 generations, two eigendecompositions at n = 1000; 9 rounds, about a minute) keep the two sides of a
ratio seconds apart, so that other jobs on a shared machine slow both alike: rounds of 420 generations, 20 s
apart, gave ratios from 0.72 to 1.34 on a loaded 2-core machine where these gave 0.94 to 1.09. The issue's
target is a ratio of at most 1.3 at n = 1000. The share of a Python generation spent outside ask and tell (the loss and the
loop) is printed too, from the history the optimizer keeps (t_sample + t_update against the whole).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
REPEATS = 5  # runs per measurement, as bench_cmaes does


def c_side(bench, n, popsize, generations):
    """bench_cmaes's median ms per generation, and the lambda it used."""
    out = subprocess.run([bench, "cmaes", str(n), str(popsize), str(generations)], check=True, capture_output=True,
                         text=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout
    m = re.search(r"lambda=(\d+).*median of \d+ runs ([0-9.]+) ms/generation", out)
    if not m:
        sys.exit("bench_python: cannot read bench_cmaes's output: %r" % out)
    return float(m.group(2)), int(m.group(1))


def python_side(nograd, np, n, popsize, generations):
    """The median over REPEATS runs of the mean ms per generation, and of ask + tell's share of it."""
    w = np.arange(1.0, n + 1.0)
    ms, share = [], []
    for _ in range(REPEATS):
        es = nograd.CMAES(np.full(n, 3.0), 2.0, popsize=popsize or None)
        t0 = time.perf_counter()
        for _ in range(generations):
            X = es.ask()
            es.tell(X, (X * X) @ w)
        seconds = time.perf_counter() - t0
        h = es.history
        ms.append(1e3 * seconds / generations)
        share.append((h["t_sample"].sum() + h["t_update"].sum()) / seconds)
    return statistics.median(ms), statistics.median(share), es.popsize


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.environ.get("NOGRAD_BUILD_DIR", os.path.join(ROOT, "build")))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--popsize", type=int, default=0, help="lambda; 0: the default, 4 + 3 ln n")
    parser.add_argument("--generations", type=int, default=84, help="per run (84: two lazy eigendecompositions "
                        "at n = 1000)")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy loads OpenBLAS: one thread, as bench_cmaes
    bench = os.path.join(args.build, "bench_cmaes")
    os.environ.setdefault("NOGRAD_LIBRARY", os.path.join(args.build, "libnograd.so"))
    sys.path.insert(0, os.path.join(ROOT, "tools", "python"))
    import numpy as np
    import nograd
    print("n=%d, generations=%d per run, %d runs per measurement, %d rounds; libnograd %s; load average %s" % (
        args.n, args.generations, REPEATS, args.rounds, os.environ["NOGRAD_LIBRARY"],
        " ".join("%.2f" % v for v in os.getloadavg())))
    cs, ps, ratios, shares = [], [], [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            c, lam_c = c_side(bench, args.n, args.popsize, args.generations)
            p, share, lam_p = python_side(nograd, np, args.n, args.popsize, args.generations)
        else:
            p, share, lam_p = python_side(nograd, np, args.n, args.popsize, args.generations)
            c, lam_c = c_side(bench, args.n, args.popsize, args.generations)
        if lam_c != lam_p:
            sys.exit("bench_python: C used lambda %d, Python %d" % (lam_c, lam_p))
        cs.append(c)
        ps.append(p)
        ratios.append(p / c)
        shares.append(share)
        print("round %d (lambda %d, %s first): C %.3f ms/generation, Python %.3f ms/generation, ratio %.3f; "
              "ask + tell are %.1f%% of Python's generation" % (r + 1, lam_c, "C" if r % 2 == 0 else "Python", c, p,
                                                               p / c, 100 * share))
    ratio = statistics.median(ratios)
    print("median over rounds: C %.3f ms, Python %.3f ms per generation; ratio %.3f (rounds %s); target <= 1.3: %s"
          % (statistics.median(cs), statistics.median(ps), ratio, ", ".join("%.3f" % x for x in ratios),
             "ok" if ratio <= 1.3 else "MISSED"))


if __name__ == "__main__":
    main()
