#!/usr/bin/python3
"""MPI test: the result and the history of a run do not depend on the number of ranks, the grid or the broadcast
mode; and the seeded broadcast sends O(n) bytes per generation.

Usage: test_ranks.py NOGRAD MPIRUN

Rank counts: P = 1, 2, 3, 4 (oversubscribed on any machine), with G = 1 and 2 population groups where G divides
P, each with --broadcast explicit and seeded: 12 runs per configuration. For every configuration (a table of
optimizer x objective, run by one loop) the --json result (all fields but seconds) and the per-generation --log
lines (the columns of mpitest.HISTORY) must be bit-identical to those of P = 1, explicit; and the log must say
which broadcast each generation used.

Seeded full CMA-ES is told by blocks (the ranks that sampled the candidates compute the update's shares, which add
up a tree to rank 0: src/opt/tell_dist.h); the populations of more than one tell block of 128 (lambda 129, 300, and
IPOP's restarts from 70 to 140 and 280) must give the bits of P = 1, explicit (told whole) too.

Bytes (P = 2): explicit sends 120 + 8*lambda*n bytes a generation (header + candidates); seeded sends the header and
the mean (8n), for full CMA-ES the plan of the tell (8 (2 lambda + 5): each candidate's weight and rank), and for
sep-CMA-ES the diagonal factor (8n) every generation: nothing of size lambda n. Full CMA-ES does not broadcast its
factor (src/engine/slices.h): only in the generations where it changed (an eigendecomposition: t_eigen > 0, or the
first generation) rank 0 sends it, 8n^2 bytes, to the keepers (the log's factor_slice_bytes).
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_ranks")

LAYOUTS = [(1, 1), (2, 1), (2, 2), (3, 1), (4, 1), (4, 2)]  # (P, G)
MODES = ["explicit", "seeded"]
LOGISTIC = ["--function", "logistic", "--dim", "11", "--rows", "20000", "--chunk-rows", "1000"]
LSQ = ["--function", "lsq", "--dim", "11", "--rows", "20000", "--chunk-rows", "1000"]
# (name, arguments, at least this many generations, at least this many restarts)
CONFIGS = [
    ("cmaes rot-rosenbrock-12", ["--function", "rot-rosenbrock", "--dim", "12", "--seed", "3", "--ftarget", "1e-8",
                                 "--max-evals", "100000"], 300, 0),
    ("cmaes-ipop rastrigin-6", ["--function", "rastrigin", "--dim", "6", "--x0", "3", "--sigma0", "2", "--restarts",
                                "ipop", "--ftarget", "1e-8", "--max-evals", "100000", "--seed", "2"], 100, 1),
    ("sepcmaes bounded sphere-20", ["--function", "sphere", "--dim", "20", "--optimizer", "sepcmaes", "--x0", "3",
                                    "--lower", "-1", "--upper", "4", "--ftarget", "1e-10", "--seed", "4"], 100, 0),
    ("cmaes logistic", LOGISTIC + ["--max-evals", "3000", "--seed", "7"], 100, 0),
    # told by blocks: populations of several tell blocks of 128
    ("cmaes lambda-300 rot-ellipsoid-12", ["--function", "rot-ellipsoid", "--dim", "12", "--popsize", "300", "--seed",
                                           "5", "--max-evals", "24000"], 80, 0),
    ("cmaes lambda-129 bounded rosenbrock-8", ["--function", "rosenbrock", "--dim", "8", "--popsize", "129", "--x0",
                                               "0.5", "--lower", "-2", "--upper", "2", "--seed", "2", "--max-evals",
                                               "12900"], 100, 0),
    ("cmaes-ipop lambda-70 rastrigin-8", ["--function", "rastrigin", "--dim", "8", "--x0", "3", "--sigma0", "0.3",
                                          "--popsize", "70", "--restarts", "ipop", "--max-evals", "30000", "--seed",
                                          "1"], 200, 2),
    ("spsa lsq", LSQ + ["--optimizer", "spsa", "--param", "spsa_q=4", "--max-evals", "2000", "--sigma0", "0.1"],
     200, 0),
    # centred directions: the workers rebuild them from the header's centring stride (seeded mode)
    ("spsa centred lsq-12", ["--function", "lsq", "--dim", "12", "--rows", "20000", "--chunk-rows", "1000",
                             "--optimizer", "spsa", "--param", "spsa_q=4", "--param", "spsa_center=3",
                             "--max-evals", "800", "--sigma0", "0.1"], 100, 0),
]

with mpitest.tempdir() as tmp:
    for name, args, min_gens, min_restarts in CONFIGS:
        ref = ref_hist = None
        failed_before = len(mpitest.failures)
        for nprocs, groups in LAYOUTS:
            for mode in MODES:
                what = "%s, P=%d G=%d %s" % (name, nprocs, groups, mode)
                log = os.path.join(tmp, "log.jsonl")
                if os.path.exists(log):
                    os.unlink(log)
                res = mpitest.run(nprocs, ["minimize"] + args + ["--groups", str(groups), "--broadcast", mode,
                                                                 "--log", log, "--json", "--quiet"])
                if not check(res.code == 0, "%s: exit code %r, stderr %r" % (what, res.code, res.err[-2000:])):
                    continue
                obj = mpitest.parse_result(res, what)
                rows = mpitest.read_log(log)
                hist = mpitest.log_history(rows)
                if obj is None:
                    continue
                check(len(rows) == obj["generations"],
                      "%s: %d log lines for %d generations" % (what, len(rows), obj["generations"]))
                modes = sorted(set(r.get("broadcast") for r in rows))
                check(modes == [mode], "%s: the log's broadcast fields are %r, want only %r" % (what, modes, mode))
                if ref is None:
                    ref, ref_hist = obj, hist
                    check(obj["generations"] >= min_gens and obj["restarts"] >= min_restarts,
                          "%s: a test run too short to show anything: %r" % (what, obj))
                    continue
                check(mpitest.without_seconds(obj) == mpitest.without_seconds(ref),
                      "%s: result %r, with P=1 explicit %r" % (what, obj, ref))
                check(hist == ref_hist, "%s: history differs from P=1 explicit's at %s" %
                      (what, mpitest.first_difference(hist, ref_hist)))
        if len(mpitest.failures) == failed_before:
            print("%s: %d layouts x %d modes agree: %r" % (name, len(LAYOUTS), len(MODES),
                                                           mpitest.without_seconds(ref)), flush=True)

    # ---- bytes on the wire ---------------------------------------------------------------------------------
    HEADER_MAX = 1024  # the generation header (120 bytes today) and anything else that is O(1)

    def byte_rows(args, mode):
        log = os.path.join(tmp, "bytes.jsonl")
        if os.path.exists(log):
            os.unlink(log)
        what = "%s --broadcast %s" % (" ".join(args), mode)
        res = mpitest.run(2, ["minimize"] + args + ["--broadcast", mode, "--log", log, "--json", "--quiet"])
        check(res.code == 0, "%s: exit code %r, stderr %r" % (what, res.code, res.err[-2000:]))
        rows = mpitest.read_log(log)
        check(len(rows) > 20, "%s: only %d generations" % (what, len(rows)))
        check(all(r.get("broadcast") == mode for r in rows), "%s: a log line without \"broadcast\":\"%s\"" %
              (what, mode))
        return what, rows

    n = 50
    for popsize in (100, 0):  # lambda = 100 (the factor changes every generation), and the default 15
        args = ["--function", "rot-ellipsoid", "--dim", str(n), "--x0", "1", "--max-evals", "9000", "--seed", "2"]
        if popsize:
            args += ["--popsize", str(popsize)]
        lam = popsize or 15
        what, rows = byte_rows(args, "explicit")
        bad = [(r["generation"], r["bytes"]) for r in rows
               if not 8 * lam * n <= r["bytes"] < 8 * lam * n + HEADER_MAX]
        check(not bad, "%s: generations whose bytes are not 8*lambda*n + a header (%d..%d): %r" %
              (what, 8 * lam * n, 8 * lam * n + HEADER_MAX, bad[:5]))
        what, rows = byte_rows(args, "seeded")
        changed = [r for i, r in enumerate(rows) if i == 0 or r["t_eigen"] > 0]
        kept = [r for i, r in enumerate(rows) if not (i == 0 or r["t_eigen"] > 0)]
        plan = 8 * (2 * lam + 5)
        bad = [(r["generation"], r["bytes"]) for r in kept if r["bytes"] > 8 * n + plan + HEADER_MAX]
        check(not bad, "%s: generations with the same factor sending more than 8n + plan + %d = %d bytes: %r" %
              (what, HEADER_MAX, 8 * n + plan + HEADER_MAX, bad[:5]))
        bad = [(r["generation"], r["bytes"]) for r in changed if r["bytes"] > 8 * n + plan + HEADER_MAX]
        check(not bad, "%s: generations with a new factor broadcasting more than 8n + plan + %d = %d bytes: %r" %
              (what, HEADER_MAX, 8 * n + plan + HEADER_MAX, bad[:5]))
        bad = [(r["generation"], r["factor_slice_bytes"]) for r in changed if r["factor_slice_bytes"] != 8 * n * n]
        bad += [(r["generation"], r["factor_slice_bytes"]) for r in kept if r["factor_slice_bytes"] != 0]
        check(not bad, "%s: generations whose factor_slice_bytes are not 8n^2 = %d with a new factor and 0 without: %r"
              % (what, 8 * n * n, bad[:5]))
        if popsize:
            check(len(kept) == 0, "%s: lambda = 100, n = 50: the factor is new every generation (the lazy gap is "
                  "under one iteration), but %d generations kept it" % (what, len(kept)))
        else:
            check(len(kept) > len(changed) > 1, "%s: lambda = 15, n = 50: %d generations with a new factor, %d "
                  "without; want both, most without (the lazy gap is n/lambda > 3)" % (what, len(changed), len(kept)))
        print("%s: %d generations with a new factor, %d without" % (what, len(changed), len(kept)))

    # sep-CMA-ES: the diagonal D changes every generation, so seeded sends mean and D: 16n + a header
    args = ["--function", "ellipsoid", "--dim", str(n), "--optimizer", "sepcmaes", "--popsize", "100", "--x0", "1",
            "--max-evals", "9000", "--seed", "2"]
    what, rows = byte_rows(args, "seeded")
    bad = [(r["generation"], r["bytes"]) for r in rows if not 16 * n <= r["bytes"] <= 16 * n + HEADER_MAX]
    check(not bad, "%s: generations whose bytes are not 16n + a header (%d..%d): %r" %
          (what, 16 * n, 16 * n + HEADER_MAX, bad[:5]))
    what, rows = byte_rows(args, "explicit")
    bad = [(r["generation"], r["bytes"]) for r in rows if not 8 * 100 * n <= r["bytes"] < 8 * 100 * n + HEADER_MAX]
    check(not bad, "%s: generations whose bytes are not 8*lambda*n + a header: %r" % (what, bad[:5]))

mpitest.finish("test_ranks")
