#!/usr/bin/python3
"""MPI test: the sliced factor (src/engine/slices.h) keeps the determinism contract, and the broadcast of a
generation stays O(n + lambda).

Usage: test_sliced.py NOGRAD MPIRUN

A seeded CMA-ES generation on more than one rank does not broadcast the sampling factor: rank 0 sends each
column block of it to its first keeper, the keepers of a block pass it down a binomial tree, and each keeper
makes its coordinates of the steps of its range of candidates and sends every rank its rows. From n = 256 on
a column block is 16 rows of the factor, below it the whole factor. With lambda = 300 (three tell blocks,
ten sampling blocks, a decomposition every generation or two):
- n = 260: 17 column blocks, one range (R = 1) on up to 4 ranks, several blocks per keeper on 2 and 3;
- n = 60: one column block, R = P - 1 ranges on 3, 5 and 7 ranks, so the tree has two and three levels.
Each run must have the same bits as one process (the --json result and the log's history columns), for
several grids of groups; stopped on one P and resumed on another it must end as the uninterrupted run. The
log must show the factor going to the keepers (factor_slice_bytes = 8 n^2 in the generations with a new one)
and no broadcast bigger than the header, the mean and the plan.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_sliced")

LAMBDA = 300
CASES = ((260, ((2, 1), (3, 3), (4, 2))), (60, ((3, 1), (5, 5), (7, 7))))
with mpitest.tempdir() as tmp:
    for N, grids in CASES:
        base = ["--function", "rot-ellipsoid", "--dim", str(N), "--popsize", str(LAMBDA), "--seed", "4"]
        full, full_rows = mpitest.run_logged(1, base + ["--max-evals", "6000"], tmp, "full")
        for p, g in grids:
            what = "n=%d P=%d G=%d" % (N, p, g)
            got, rows = mpitest.run_logged(p, base + ["--max-evals", "6000", "--broadcast", "seeded", "--groups",
                                                      str(g)], tmp, "p%d_g%d" % (p, g))
            if got is None or full is None:
                continue
            check(mpitest.without_seconds(got) == mpitest.without_seconds(full),
                  "%s: %r; 1 rank: %r" % (what, got, full))
            check(mpitest.log_history(rows) == mpitest.log_history(full_rows),
                  "%s: the history differs at %s" % (what, mpitest.first_difference(
                      mpitest.log_history(rows), mpitest.log_history(full_rows))))
            slices = [r["factor_slice_bytes"] for r in rows]
            installs = sum(1 for b in slices if b > 0)
            check(installs >= 3 and all(b in (0, 8 * N * N) for b in slices),
                  "%s: factor_slice_bytes per generation %r (expected 0 or %d, some of them nonzero)" %
                  (what, slices, 8 * N * N))
            # the header (under 200 bytes), the mean (8n) and the plan (5 + 2 lambda doubles, sent down the
            # tree of the three tell blocks): nothing of size n^2
            limit = 200 + 8 * N + 8 * (5 + 2 * LAMBDA) * 3
            check(max(r["bytes"] for r in rows) <= limit,
                  "%s: a generation broadcast %d bytes (limit %d: no factor)" %
                  (what, max(r["bytes"] for r in rows), limit))
            print("%s: the same bits as one process; %d factor installs of %d bytes to the keepers, at most %d "
                  "bytes broadcast a generation" % (what, installs, 8 * N * N, max(r["bytes"] for r in rows)),
                  flush=True)
        for stop, first, second in ((1500, 3, 2), (2700, 2, 5)):
            ck = os.path.join(tmp, "resume.h5")
            for f in (ck, ck + ".prev"):
                if os.path.exists(f):
                    os.unlink(f)
            what = "n=%d: stop at %d evaluations on %d ranks, resume to 6000 on %d" % (N, stop, first, second)
            seeded = ["--broadcast", "seeded"]
            part, _ = mpitest.run_logged(first, base + seeded + ["--max-evals", str(stop), "--checkpoint", ck],
                                         tmp, "part")
            if part is None or full is None:
                continue
            obj = mpitest.resume_matches(second, base + seeded + ["--max-evals", "6000"], ck, what, full,
                                         full_rows)
            if obj is not None:
                print("%s: %r" % (what, mpitest.without_seconds(obj)), flush=True)


mpitest.finish("test_sliced")
