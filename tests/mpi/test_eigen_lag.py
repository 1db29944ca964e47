#!/usr/bin/python3
"""MPI test: CMA-ES's eigendecomposition beside the generation loop (eigen_lag, src/opt/cmaes.c) keeps the
determinism contract.

Usage: test_eigen_lag.py NOGRAD MPIRUN

From n = 100 on, the decomposition due at iteration g runs in a background thread on rank 0 and is installed
at iteration g + eigen_lag, however early it finished. At n = 120 with lambda = 24 (a decomposition due every
5 iterations) and eigen_lag = 3, most checkpoints hold one in flight. Runs stopped by their budget at several
points on P ranks and resumed on P' must end as the uninterrupted run on one process (the --json result and
/history), some of those checkpoints must hold a decomposition in flight (/optimizer/algo/eigen_pending_at
>= 0, with the C it decomposes), and the uninterrupted run must have the same bits on 1 and 3 ranks.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_eigen_lag")
import h5py  # noqa: E402


with mpitest.tempdir() as tmp:
    base = ["--function", "rot-ellipsoid", "--dim", "120", "--popsize", "24", "--seed", "5",
            "--param", "eigen_lag=3"]
    full, full_rows = mpitest.run_logged(1, base + ["--max-evals", "2400"], tmp, "full")
    full3, _ = mpitest.run_logged(3, base + ["--max-evals", "2400", "--broadcast", "seeded"], tmp, "full3")
    if full is not None and full3 is not None:
        check(mpitest.without_seconds(full3) == mpitest.without_seconds(full),
              "3 ranks: %r; 1 rank: %r" % (full3, full))
    in_flight = 0
    for stop, first, second in ((720, 2, 3), (744, 3, 1), (768, 1, 2), (1200, 3, 2)):
        ck = os.path.join(tmp, "resume.h5")
        for f in (ck, ck + ".prev"):
            if os.path.exists(f):
                os.unlink(f)
        what = "stop at %d evaluations on %d ranks, resume to 2400 on %d" % (stop, first, second)
        part, _ = mpitest.run_logged(first, base + ["--max-evals", str(stop), "--checkpoint", ck], tmp, "part")
        if part is None or full is None:
            continue
        with h5py.File(ck, "r") as f:
            at = int(f["/optimizer/algo/eigen_pending_at"][0])
            has_c = "/optimizer/algo/eigen_C" in f
        check(has_c == (at >= 0), "%s: eigen_pending_at %d but eigen_C %s" % (what, at, "present" if has_c else
                                                                                "absent"))
        in_flight += at >= 0
        obj = mpitest.resume_matches(second, base + ["--max-evals", "2400"], ck, what, full, full_rows)
        if obj is None:
            continue
        print("%s (decomposition in flight at the stop: %s): %r" % (what, at >= 0, mpitest.without_seconds(obj)),
              flush=True)
    check(in_flight >= 2, "only %d of the 4 checkpoints held a decomposition in flight" % in_flight)
    # the lag is in effect: without it (pycma's schedule in line) the run differs
    sync, _ = mpitest.run_logged(1, base[:-2] + ["--param", "eigen_lag=0", "--max-evals", "2400"], tmp, "sync")
    if sync is not None and full is not None:
        check(sync["f_best"] != full["f_best"], "eigen_lag=0 and eigen_lag=3 gave the same f_best %r" % full["f_best"])


mpitest.finish("test_eigen_lag")
