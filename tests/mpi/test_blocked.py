#!/usr/bin/python3
"""MPI test: CMA-ES told by blocks (seeded broadcast: the ranks that sampled the candidates compute the update's shares,
which add up a tree to rank 0; src/opt/tell_dist.h, src/engine/tell.c) continues across checkpoint and resume.

Usage: test_blocked.py NOGRAD MPIRUN

A population of three tell blocks (lambda = 260) stopped by its budget on P ranks in one broadcast mode and resumed
from its checkpoint on P' ranks in the other must end as the uninterrupted run on one process: the --json result
(all but seconds) and the checkpoint's /history (the columns of mpitest.HISTORY). test_ranks.py checks that such
populations give the same bits for every P, G and broadcast mode; test_resume.py kills runs at any point.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_blocked")


with mpitest.tempdir() as tmp:
    # ---- resume across P and the broadcast mode -------------------------------------------------------------
    base = ["--function", "rot-ellipsoid", "--dim", "10", "--popsize", "260", "--seed", "9"]
    full, full_rows = mpitest.run_logged(1, base + ["--max-evals", "26000"], tmp, "full")
    for first, second in (((3, "seeded"), (2, "explicit")), ((1, "explicit"), (4, "seeded"))):
        ck = os.path.join(tmp, "resume.h5")
        for f in (ck, ck + ".prev"):
            if os.path.exists(f):
                os.unlink(f)
        what = "stop at 13000 evaluations on %d ranks (%s), resume to 26000 on %d (%s)" % (first + second)
        part, _ = mpitest.run_logged(first[0], base + ["--max-evals", "13000", "--broadcast", first[1],
                                               "--checkpoint", ck], tmp, "part")
        if part is None:
            continue
        check(part["stop_reason"] == "maxfevals", "%s: the first part stopped for %r" % (what, part["stop_reason"]))
        obj = mpitest.resume_matches(second[0], base + ["--max-evals", "26000", "--broadcast", second[1]], ck, what,
                                     full, full_rows)
        if obj is None:
            continue
        print("%s: %r" % (what, mpitest.without_seconds(obj)), flush=True)


mpitest.finish("test_blocked")
