#!/usr/bin/python3
"""nograd.CMAES, SepCMAES, SPSA, fmin and load (tools/python/nograd/optimizers.py) against their promises.

Usage: test_optimizers.py NOGRAD [MPIRUN]

- pycma's own example loop, written against nograd.CMAES (rosenbrock in numpy, n = 10, x0 = 0, sigma0 = 0.5,
  seeds 1..11, ftarget 1e-8, 1e5 evaluations): median evaluations within 20% of pycma 4.4's 5020 (the table of
  tests/unit/test_cmaes.c), at least 9 seeds solved.
- The same seed and settings as `nograd minimize` give the same bits: the /history columns, the whole
  /optimizer state and /best of the saved file equal those of minimize's checkpoint, for CMA-ES, CMA-ES with
  IPOP restarts, sep-CMA-ES with bounds and SPSA (mpirun -n 2 for one of them).
- save and load are exact: a run saved, loaded and continued is the run never stopped; a minimize checkpoint
  loads and continues with a larger budget as minimize --resume does; nograd inspect reads the file.
- Errors arrive as exceptions whose text is ng_errmsg()'s, of the right kind (ValueError for NG_EINVAL, ...).
- The ctypes mirrors of the public structs agree with the library's accessors.
"""
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pkgtest import MPIRUN, check, finish, must, need, run  # noqa: E402

need("numpy", "h5py")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

import nograd  # noqa: E402
from nograd import _lib  # noqa: E402

PYCMA_ROSENBROCK = 5020  # pycma 4.4, n = 10, x0 = 0, sigma0 = 0.5, seeds 1..11 (tests/unit/test_cmaes.c)
STATE_COLUMNS = ("generation", "evaluations", "best", "gen_best", "median", "sigma", "popsize", "restarts")


def rosen(x):  # pycma's cma.ff.rosen
    x = np.asarray(x)
    return float(np.sum(100.0 * (x[:-1] ** 2 - x[1:]) ** 2 + (1.0 - x[:-1]) ** 2))


def same_bits(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def read(path):
    """/history (the state columns), every /optimizer dataset, /best of a checkpoint."""
    out = {"history": {}, "optimizer": {}}
    with h5py.File(path, "r") as f:
        for c in STATE_COLUMNS:
            out["history"][c] = f["history"][c][()]
        f["optimizer"].visititems(lambda name, obj: out["optimizer"].__setitem__(name, obj[()])
                                  if isinstance(obj, h5py.Dataset) else None)
        out["best_x"], out["best_f"] = f["best/x"][()], f["best/f"][()]
    return out


def differences(a, b):
    """The entries in which two checkpoints read by read() differ (nothing: the same bits)."""
    diff = ["history/" + c for c in STATE_COLUMNS if not same_bits(a["history"][c], b["history"][c])]
    keys = set(a["optimizer"]) | set(b["optimizer"])
    for k in sorted(keys):
        x, y = a["optimizer"].get(k), b["optimizer"].get(k)
        if x is None or y is None or np.asarray(x).tobytes() != np.asarray(y).tobytes():
            diff.append("optimizer/" + k)
    if not same_bits(a["best_x"], b["best_x"]) or not same_bits(a["best_f"], b["best_f"]):
        diff.append("best")
    return diff


def python_run(cls, fn, dim, x0, sigma0, seed, path, **kw):
    """The minimize loop in Python: the library's function evaluated as the engine does; saved to path."""
    f = nograd.Function(fn, dim, seed=seed)
    es = cls(np.full(dim, x0), sigma0, seed=seed, **kw)
    while not es.stop():
        X = es.ask()
        es.tell(X, f.batch(X, generation=es.countiter))
    es.save(path)
    return es


with tempfile.TemporaryDirectory() as d:
    p = lambda name: os.path.join(d, name)

    # ---- pycma's example loop ----
    evals = []
    for seed in range(1, 12):
        es = nograd.CMAES(10 * [0], 0.5, seed=seed, ftarget=1e-8, maxfevals=1e5)
        while not es.stop():
            X = es.ask()
            es.tell(X, [rosen(x) for x in X])
        evals.append(es.result.evaluations if es.stop() == "ftarget" else math.inf)
    median = sorted(evals)[5]
    solved = sum(math.isfinite(e) for e in evals)
    check(abs(median - PYCMA_ROSENBROCK) <= 0.2 * PYCMA_ROSENBROCK and solved >= 9,
          "pycma's loop on nograd.CMAES, rosenbrock 10-D, 11 seeds: median %g evaluations (pycma 4.4: %d, ratio "
          "%.3f), %d of 11 solved; per seed %s" % (median, PYCMA_ROSENBROCK, median / PYCMA_ROSENBROCK, solved,
                                                   evals))

    # ---- the same bits as nograd minimize ----
    cases = [
        ("cmaes, rosenbrock", nograd.CMAES, "rosenbrock", 10, 0.0, 0.5, 3, {"maxfevals": 3000}, []),
        ("cmaes + ipop, rastrigin", nograd.CMAES, "rastrigin", 6, 3.0, 2.0, 2,
         {"maxfevals": 8000, "restarts": "ipop", "max_restarts": 4, "tolfun": 1e-9},
         ["--restarts", "ipop", "--max-restarts", "4", "--param", "tolfun=1e-9"]),
        ("sepcmaes with bounds, ellipsoid", nograd.SepCMAES, "ellipsoid", 12, 3.0, 2.0, 5,
         {"maxfevals": 2000, "bounds": (-1, 5)}, ["--lower", "-1", "--upper", "5"]),
        ("spsa, q = 2, sphere", nograd.SPSA, "sphere", 8, 1.0, 0.3, 1, {"maxfevals": 400, "spsa_q": 2},
         ["--param", "spsa_q=2"]),
    ]
    for what, cls, fn, dim, x0, sigma0, seed, kw, extra in cases:
        args = ["minimize", "--function", fn, "--dim", str(dim), "--optimizer", cls.algorithm, "--x0", repr(x0),
                "--sigma0", repr(sigma0), "--seed", str(seed), "--max-evals", str(kw["maxfevals"]),
                "--checkpoint", p("m.h5"), "--checkpoint-every", "1000000", "--quiet", "--json"] + extra
        rc, out, err = run(args)
        es = python_run(cls, fn, dim, x0, sigma0, seed, p("py.h5"), **kw)
        m, y = read(p("m.h5")), read(p("py.h5"))
        diff = differences(m, y)
        res = json.loads(out) if rc == 0 else {}
        check(rc == 0 and not diff and res["evaluations"] == es.result.evaluations and
              res["stop_reason"] == es.stop() and len(y["history"]["generation"]) > 10,
              "%s: the saved history (%d generations, %d restarts), optimizer state and best point are minimize's "
              "bits (stop %s)%s" % (what, len(y["history"]["generation"]), es.restarts, es.stop(),
                                    "; differ: %s %s" % (diff, err) if diff or rc else ""))
        if what.startswith("cmaes, ") and MPIRUN:
            rc, _, err = run([a if a != p("m.h5") else p("m2.h5") for a in args], mpi=2)
            diff = differences(read(p("m2.h5")), y)
            check(rc == 0 and not diff, "%s: the same bits as minimize under mpirun -n 2 %s" % (what, diff or ""))

    # ---- save and load ----
    def advance(es, generations, f=rosen):
        for _ in range(generations):
            X = es.ask()
            es.tell(X, [f(x) for x in X])
        return es

    a = advance(nograd.CMAES(10 * [0.5], 0.3, seed=7, tolx=1e-13), 40)
    a.save(p("a.h5"))
    advance(a, 40)
    a.save(p("a80.h5"))
    b = advance(nograd.load(p("a.h5")), 40)
    b.save(p("b80.h5"))
    diff = differences(read(p("a80.h5")), read(p("b80.h5")))
    check(not diff and b.countiter == 80 and same_bits(a.mean, b.mean) and same_bits(a.sigma, b.sigma),
          "save after 40 generations, load, 40 more: the run never stopped (%s)" % (diff or "same bits"))
    c = advance(nograd.CMAES(10 * [0.5], 0.3, seed=7, tolx=1e-13).load(p("a.h5")), 40)
    check(same_bits(c.history["sigma"], a.history["sigma"]) and same_bits(c.result.xbest, a.result.xbest),
          "es.load(path) on a new CMAES with the same settings: the same continuation")
    try:
        nograd.CMAES(10 * [0.5], 0.3, seed=7).load(p("a.h5"))
        check(False, "load into an optimizer with other parameters is refused")
    except ValueError as e:
        check("tolx" in str(e), "load into an optimizer with other parameters is refused: %s" % e)
    rc, out, _ = run(["inspect", p("a80.h5"), "--json"])
    info = json.loads(out) if rc == 0 else {}
    check(rc == 0 and info["optimizer"] == "cmaes" and info["generation"] == 80 and info["n"] == 10 and
          info["config"]["param.tolx"] == "1e-13" and info["history_rows"] == 80,
          "nograd inspect reads the saved file: %s generations, config %s" % (info.get("generation"),
                                                                            info.get("config")))
    # a minimize checkpoint that ended on its budget goes on in Python as minimize --resume would
    base = ["minimize", "--function", "rosenbrock", "--dim", "10", "--x0", "0", "--sigma0", "0.5", "--seed", "4",
            "--checkpoint-every", "1000000", "--quiet"]
    must(base + ["--max-evals", "1500", "--checkpoint", p("short.h5")])
    must(base + ["--max-evals", "3000", "--checkpoint", p("long.h5")])
    e = nograd.load(p("short.h5"), maxfevals=3000)
    stopped = e.stop()
    f = nograd.Function("rosenbrock", 10, seed=4)
    while not e.stop():
        X = e.ask()
        e.tell(X, f.batch(X))
    e.save(p("long_py.h5"))
    diff = differences(read(p("long.h5")), read(p("long_py.h5")))
    check(stopped is None and not diff,
          "a minimize checkpoint at 1500 evaluations, loaded with maxfevals=3000 and continued: the 3000-evaluation "
          "run's bits (%s)" % (diff or "same"))

    # ---- errors carry ng_errmsg()'s text ----
    L = _lib.lib()

    def raises(what, kind, words, fn):
        try:
            fn()
        except kind as e:
            text = str(e)
            lib_text = L.ng_errmsg().decode()
            ok = all(w in text for w in words) and (not isinstance(e, nograd.NogradError) or text == lib_text)
            return check(ok, "%s: %s %r" % (what, type(e).__name__, text))
        except Exception as e:  # noqa: BLE001 -- the wrong kind
            return check(False, "%s: raised %s %r, expected %s" % (what, type(e).__name__, e, kind.__name__))
        return check(False, "%s: no exception" % what)

    raises("an unknown parameter", nograd.NogradValueError, ["tolfoo", "cmaes"],
           lambda: nograd.CMAES([0, 0], 1, tolfoo=1))
    raises("sigma0 0", nograd.NogradValueError, ["sigma0"], lambda: nograd.CMAES([0, 0], 0))
    raises("bounds with lower >= upper", nograd.NogradValueError, ["bounds of coordinate 1", "[2, 1]"],
           lambda: nograd.CMAES([1.5, 1.5], 1, bounds=([0, 2], [2, 1])))
    raises("SPSA with restarts", nograd.NogradValueError, ["spsa", "does not restart"],
           lambda: nograd.SPSA([0, 0], 1, restarts="ipop", maxfevals=100))
    raises("restarts='often'", ValueError, ["'often'"], lambda: nograd.CMAES([0, 0], 1, restarts="often"))
    es = nograd.CMAES([1, 2, 3], 1)
    raises("tell before ask", nograd.NogradOrderError, ["tell without a preceding ask"], lambda: es.tell([0] * 7))
    X = es.ask()
    raises("ask twice", nograd.NogradOrderError, ["ask called twice"], es.ask)
    raises("save between ask and tell", nograd.NogradOrderError, ["save between ask and tell"],
           lambda: es.save(p("never.h5")))
    raises("tell with 3 losses for 7 candidates", ValueError, ["expected 7 losses"], lambda: es.tell([1, 2, 3]))
    raises("tell(X, f) with another X", ValueError, ["row 0 of X is not the candidate the last ask returned"],
           lambda: es.tell(X + 1, np.zeros(len(X))))
    raises("tell(X, f) with X of another shape", ValueError, ["X has shape (7, 2)", "(7, 3)"],
           lambda: es.tell(X[:, :2], np.zeros(len(X))))
    X[3, 1] += 1
    raises("tell(f) after X[3] was changed in place", ValueError, ["row 3", "changed after ask"],
           lambda: es.tell(np.zeros(len(X))))
    X[3, 1] -= 1
    es.tell(X.copy(), np.full(len(X), np.nan))  # an equal X is the population; NaN losses are data
    check(es.countevals == len(X) and not os.path.exists(p("never.h5")),
          "tell(copy of X, NaN losses): accepted, counted, nothing written by the refused save")
    raises("load of a missing file", nograd.NogradIOError, [p("missing.h5")], lambda: nograd.load(p("missing.h5")))
    with open(p("text.h5"), "w") as fh:
        fh.write("not HDF5\n")
    raises("load of a text file", nograd.NogradError, [p("text.h5")], lambda: nograd.load(p("text.h5")))
    with h5py.File(p("other.h5"), "w") as fh:
        fh["x"] = 1
    raises("load of an HDF5 file that is not a checkpoint", nograd.NogradError, [p("other.h5")],
           lambda: nograd.load(p("other.h5")))
    raises("an unknown function", nograd.NogradValueError, ["rosenbrok"], lambda: nograd.Function("rosenbrok", 3))

    # ---- the ctypes mirrors of the public structs ----
    es = nograd.CMAES(np.zeros(4), 0.5, seed=2, popsize=9, restarts="ipop", maxfevals=3000)
    while not es.stop():
        advance(es, 1, lambda x: float(np.sum(x * x)) + 1.0)
    info = es._refresh()
    hist = es.history
    with h5py.File(p("a80.h5"), "r") as fh:
        columns = [c.decode() if isinstance(c, bytes) else c for c in fh["history"].attrs["columns"]]
    check(info.popsize == es.popsize and info.generation == len(hist["generation"]) and info.evaluations ==
          hist["evaluations"][-1] and info.sigma == hist["sigma"][-1] and info.restarts == es.restarts > 0 and
          L.ng_stop_name(info.stop).decode() == es.stop() and list(hist) == columns,
          "ng_opt_info's and ng_history's mirrors agree with the accessors and the file (popsize %d, %d restarts, "
          "stop %s)" % (info.popsize, info.restarts, es.stop()))

    # ---- fmin ----
    r1 = nograd.fmin(rosen, 10 * [0], 0.5, seed=1, ftarget=1e-8)
    r2 = nograd.fmin(lambda X: [rosen(x) for x in X], 10 * [0], 0.5, seed=1, ftarget=1e-8, vectorized=True,
                     save=p("fmin.h5"))
    es = nograd.CMAES(10 * [0], 0.5, seed=1, ftarget=1e-8)
    while not es.stop():
        X = es.ask()
        es.tell(X, [rosen(x) for x in X])
    check(r1.stop == "ftarget" and same_bits(r1.xbest, es.result.xbest) and r1.evaluations == es.result.evaluations
          and same_bits(r2.xbest, r1.xbest) and nograd.load(p("fmin.h5")).result.evaluations == r1.evaluations,
          "fmin = the ask/tell loop (%d evaluations, fbest %.3g), vectorized too; save= writes the run" %
          (r1.evaluations, r1.fbest))
    r3 = nograd.fmin(rosen, 10 * [0], 0.5, callback=lambda es: es.countiter >= 5)
    check(r3.stop == "callback" and r3.iterations == 5 and r3.evals_best <= r3.evaluations,
          "a callback that returns True stops the run (stop %s after %d generations)" % (r3.stop, r3.iterations))

    # ---- a rebalance of sigma into C while an eigendecomposition is in flight ----
    # On a linear slope sigma grows past 1e9 sigma0 and pycma's rule moves part of it into C (sigma^2 C kept).
    # With eigen_lag 4 a decomposition of C from before that is in flight most of the time; it must be installed
    # at the new scale, or the candidates' spread drops by the square root of the factor moved (3e4 here).
    es = nograd.CMAES(np.zeros(120), 1.0, seed=3, popsize=24, eigen_lag=4, tolupsigma=1e30)
    spreads, sigmas = [], []
    for g in range(430):
        X = np.asarray(es.ask())
        spreads.append(float(np.median(np.linalg.norm(X - np.asarray(es.mean), axis=1))))
        sigmas.append(es.sigma)
        es.tell(X, [float(np.sum(x)) for x in X])
    jump = max(max(a / b, b / a) for a, b in zip(spreads, spreads[1:]))
    check(max(sigmas) > 1e8 and sigmas[-1] < max(sigmas) / 100 and jump < 2,
          "n = 120, eigen_lag = 4, a linear slope: sigma reached %.3g and was rebalanced to %.3g; the candidates' "
          "spread changed by at most %.3gx from one generation to the next" % (max(sigmas), sigmas[-1], jump))

finish()
