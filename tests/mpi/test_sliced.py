#!/usr/bin/python3
"""MPI test: the sliced factor (src/engine/slices.c) keeps the determinism contract, and the broadcast of a
generation stays O(n + lambda).

Usage: test_sliced.py NOGRAD MPIRUN

From n = 256 on, a seeded CMA-ES generation on more than one rank does not broadcast the sampling factor:
rank 0 sends each column block's rows to the rank that keeps it, and the keepers send every rank the
coordinates of its candidates' steps. At n = 260 with lambda = 300 (three tell blocks, a decomposition every
few generations, eigen_lag 1 + 260/300 = 1) the run must have the same bits on one process and on P ranks for
several grids of groups, and stopped on one P and resumed on another it must end as the uninterrupted run
(the --json result and /history). The log must show the factor going to the keepers (factor_slice_bytes =
8 n^2 in some generations) and no broadcast bigger than the header, the mean and the plan.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_sliced")

N, LAMBDA = 260, 300
with mpitest.tempdir() as tmp:
    base = ["--function", "rot-ellipsoid", "--dim", str(N), "--popsize", str(LAMBDA), "--seed", "4"]
    full, full_rows = mpitest.run_logged(1, base + ["--max-evals", "6000"], tmp, "full")
    for p, g in ((2, 1), (3, 3), (4, 2)):
        got, rows = mpitest.run_logged(p, base + ["--max-evals", "6000", "--broadcast", "seeded", "--groups",
                                                  str(g)], tmp, "p%d_g%d" % (p, g))
        if got is None or full is None:
            continue
        check(mpitest.without_seconds(got) == mpitest.without_seconds(full),
              "P=%d G=%d: %r; 1 rank: %r" % (p, g, got, full))
        check(mpitest.log_history(rows) == mpitest.log_history(full_rows),
              "P=%d G=%d: the history differs at %s" % (p, g, mpitest.first_difference(
                  mpitest.log_history(rows), mpitest.log_history(full_rows))))
        slices = [r["factor_slice_bytes"] for r in rows]
        installs = sum(1 for b in slices if b > 0)
        check(installs >= 3 and all(b in (0, 8 * N * N) for b in slices),
              "P=%d G=%d: factor_slice_bytes per generation %r (expected 0 or %d, some of them nonzero)" %
              (p, g, slices, 8 * N * N))
        # the header (under 200 bytes), the mean (8n) and the plan (5 + 2 lambda doubles, sent down the tree
        # of the three tell blocks): nothing of size n^2
        limit = 200 + 8 * N + 8 * (5 + 2 * LAMBDA) * 3
        check(max(r["bytes"] for r in rows) <= limit,
              "P=%d G=%d: a generation broadcast %d bytes (limit %d: no factor)" %
              (p, g, max(r["bytes"] for r in rows), limit))
        print("P=%d G=%d: the same bits as one process; %d factor installs of %d bytes to the keepers, at most "
              "%d bytes broadcast a generation" % (p, g, installs, 8 * N * N, max(r["bytes"] for r in rows)),
              flush=True)
    for stop, first, second in ((1500, 3, 2), (2700, 2, 4)):
        ck = os.path.join(tmp, "resume.h5")
        for f in (ck, ck + ".prev"):
            if os.path.exists(f):
                os.unlink(f)
        what = "stop at %d evaluations on %d ranks, resume to 6000 on %d" % (stop, first, second)
        seeded = ["--broadcast", "seeded"]
        part, _ = mpitest.run_logged(first, base + seeded + ["--max-evals", str(stop), "--checkpoint", ck], tmp,
                                     "part")
        if part is None or full is None:
            continue
        obj = mpitest.resume_matches(second, base + seeded + ["--max-evals", "6000"], ck, what, full, full_rows)
        if obj is not None:
            print("%s: %r" % (what, mpitest.without_seconds(obj)), flush=True)


mpitest.finish("test_sliced")
