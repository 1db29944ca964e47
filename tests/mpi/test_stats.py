#!/usr/bin/python3
"""MPI test: objectives made of stats (ng_objective.nstats, eval_stats, finish: balanced_error and macro_f1 of the
nn objective, and a toy objective whose floating stats show any change in the order of the sums), and the classic
pair through eval and through the batch hook eval_batch, give the same bits at any number of ranks and groups.

Usage: test_stats.py NOGRAD MPIRUN

It runs the unit test test_engine_stats (tests/unit/test_engine_stats.c, built beside `nograd` in tests/) under
mpirun with P = 2, 3 and 4 ranks (oversubscribed). The program runs each objective on rank 0 alone
(MPI_COMM_SELF) as the reference, then on all P ranks with G = 1 and, where it divides P, G = 2 groups, each with
the explicit and the seeded broadcast, and asserts on every rank that the stats and losses finish saw, the
history and the best point are the reference's bits. Here we check that every rank passed and that rank 0
reported every layout as bit-identical (so that no layout was skipped).
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_stats")

PROGRAM = os.path.join(os.path.dirname(mpitest.NOGRAD), "tests", "test_engine_stats")
OBJECTIVES = ["toy stats", "toy pair", "toy batch", "nn balanced_error", "nn macro_f1"]

if not check(os.access(PROGRAM, os.X_OK), "%s is missing: it is built from tests/unit/test_engine_stats.c" % PROGRAM):
    mpitest.finish("test_stats")

for nprocs in (2, 3, 4):
    cmd = mpitest.mpilaunch.command(mpitest.MPIRUN, nprocs) + [PROGRAM]
    res = mpitest.Job(cmd, mpitest.ENV, None).wait()
    what = "test_engine_stats at P=%d" % nprocs
    if not check(res.code == 0, "%s: exit code %r; stdout %r; stderr %r" % (what, res.code, res.out[-3000:],
                                                                            res.err[-2000:])):
        continue
    passed = (res.out + res.err).count("[  PASSED  ] 5 test(s).")  # cmocka's summary: one per rank
    check(passed == nprocs, "%s: %d ranks say all 5 tests passed, want %d" % (what, passed, nprocs))
    reported = set(line for line in res.out.splitlines() if line.startswith("engine_stats: "))
    for name in OBJECTIVES:
        for groups in (1, 2):
            if nprocs % groups:
                continue
            for mode in ("explicit", "seeded"):
                line = "engine_stats: %s P=%d G=%d %s: bit-identical to one rank" % (name, nprocs, groups, mode)
                check(line in reported, "%s: rank 0 did not report %r" % (what, line))
    print("%s: %d layouts bit-identical to one rank, %.1f s" % (what, len(reported), res.seconds), flush=True)

mpitest.finish("test_stats")
