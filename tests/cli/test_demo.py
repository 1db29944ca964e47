#!/usr/bin/python3
"""Command-line tests of `nograd demo` (the glue protocol on the built-in synthetic domains).

Usage: test_demo.py NOGRAD [MPIRUN]

Runs a small configuration (2 seeds, 60 mean rows per source domain, 20 glue steps) with --json alone and
under mpirun -n 2 and checks: one line per method, base first and then every glue method in the issue's
order; every number finite, losses > 0, accuracies in [0, 1], means and standard deviations that match the
per-seed values; the best single expert's prior loss at most proxy's (both pick one expert, best by this very
loss); datasize differs from uniform (the sources differ in size); every number is the same bits at n=1 and
n=2. The text table lists every method with the JSON's numbers to 4 decimals; --keep DIR keeps the data and
models, and without it the temporary directory under TMPDIR is removed. Bad options exit 2 with a message
naming the option; a --keep that is a file, or a data file that cannot be written, exits 1 naming it.
"""
import json
import math
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import check, failures, run  # noqa: E402

clitest.MPIRUN = clitest.MPIRUN or shutil.which("mpirun")
MPIRUN = clitest.MPIRUN

METHODS = ["base", "uniform", "datasize", "proxy", "best", "fullgrad", "spsa", "cmaes"]
SMALL = ["--seeds", "2", "--seed", "3", "--rows", "60", "--steps", "20"]


def must(args, mpi=0, env=None):
    rc, out, err = run(args, mpi, env)
    if rc != 0:
        print("command failed (%d): %s\n%s%s" % (rc, " ".join(args), out, err))
        sys.exit(1)
    return out, err


def parse(out):
    rows = [json.loads(line) for line in out.strip().splitlines()]
    return {r["method"]: r for r in rows}, [r["method"] for r in rows]


def finite(v):
    return isinstance(v, (int, float)) and math.isfinite(v)


def check_rows(rows, order, what):
    check(order == METHODS, "%s: one line per method in order %s (got %s)" % (what, METHODS, order))
    ok = True
    for m, r in rows.items():
        ok &= r["seeds"] == [3, 4] and r["steps"] == 20
        for key in ("prior_loss", "prior_accuracy", "test_accuracy"):
            vals = r[key]
            ok &= len(vals) == 2 and all(finite(v) for v in vals)
            ok &= all(0 < v < 10 for v in vals) if key == "prior_loss" else all(0 <= v <= 1 for v in vals)
            mean = sum(vals) / 2
            sd = math.sqrt(sum((v - mean) ** 2 for v in vals))  # n - 1 = 1
            ok &= abs(r[key + "_mean"] - mean) <= 1e-12 and abs(r[key + "_sd"] - sd) <= 1e-12
    check(ok, "%s: finite numbers in range, 2 seeds (3, 4), mean and sd of the per-seed values" % what)
    check(all(b <= p for b, p in zip(rows["best"]["prior_loss"], rows["proxy"]["prior_loss"])),
          "%s: best's prior loss <= proxy's in every seed" % what)
    check(rows["datasize"]["prior_loss"] != rows["uniform"]["prior_loss"],
          "%s: datasize's prior differs from uniform's (sources of different sizes)" % what)


def numbers(rows):
    return {m: (r["prior_loss"], r["prior_accuracy"], r["test_accuracy"]) for m, r in rows.items()}


with tempfile.TemporaryDirectory() as d:
    tmp = os.path.join(d, "tmp")
    os.mkdir(tmp)
    env = dict(clitest.ENV, TMPDIR=tmp)

    rc, out, err = run(["demo", "--help"])
    check(rc == 0 and all(o in out for o in ("--seeds", "--seed", "--steps", "--rows", "--keep", "--json",
                                             "--quiet")), "--help lists every option")

    out1, err1 = must(["demo", "--json", "--quiet"] + SMALL, env=env)
    rows1, order1 = parse(out1)
    check_rows(rows1, order1, "n=1")
    check(err1 == "", "--quiet: nothing on stderr")
    check(os.listdir(tmp) == [], "the temporary directory is removed (TMPDIR empty afterwards)")
    for m in ("spsa", "uniform", "datasize"):
        print("     %-8s prior_loss %s test_accuracy %s" % (m, rows1[m]["prior_loss"], rows1[m]["test_accuracy"]))

    if MPIRUN:
        out2, err2 = must(["demo", "--json", "--quiet"] + SMALL, mpi=2, env=env)
        rows2, order2 = parse(out2)
        check_rows(rows2, order2, "n=2")
        check(numbers(rows1) == numbers(rows2), "n=1 and n=2: the same prior losses and accuracies, bit for bit")
        check(os.listdir(tmp) == [], "n=2: the temporary directory is removed")

        keep = os.path.join(d, "keep")
        out3, err3 = must(["demo", "--keep", keep] + SMALL, mpi=2, env=env)
        lines = out3.splitlines()
        ok = True
        for m in METHODS:
            row = [line for line in lines if line.split()[:1] == [m]]
            ok &= len(row) == 1
            if len(row) == 1:
                for key in ("prior_loss", "prior_accuracy", "test_accuracy"):
                    ok &= ("%.4f" % rows1[m][key + "_mean"]) in row[0] and ("%.4f" % rows1[m][key + "_sd"]) in row[0]
        check(ok, "the table has one row per method with the JSON's means and sds to 4 decimals")
        check("seeds 3..4" in out3 and "in " in out3 and "of 2 seeds" in out3,
              "the table names the seeds and counts spsa's wins over uniform and datasize")
        check("seed 3: prior spsa" in err3 and "seed 4: 8 models fine-tuned and tested" in err3,
              "progress lines on stderr without --quiet")
        files = set(os.listdir(keep)) if os.path.isdir(keep) else set()
        want = {"spec.txt", "s3-pool.h5", "s3-target-train.h5", "s3-target-val.h5", "s3-target-test.h5",
                "s4-expert-faint.h5", "s4-prior-spsa.h5", "s4-tuned-base.h5", "s4-tuned-cmaes.h5"}
        check(want <= files and not any(f.endswith(".tmp") for f in files),
              "--keep DIR keeps the data, experts, priors and fine-tuned models (%d files)" % len(files))
        check(os.listdir(tmp) == [], "--keep: nothing made under TMPDIR")
    else:
        print("skip mpirun parts (no mpirun)")

    for args, what in ((["--seeds", "0"], "--seeds"), (["--seeds", "101"], "--seeds: expected 1 .. 100"),
                       (["--rows", "5"], "--rows: expected 10 .. 100000"), (["--steps", "x"], "--steps"),
                       (["--seed", "-1"], "--seed"), (["--keep", ""], "--keep"), (["--bogus"], "--bogus")):
        rc, out, err = run(["demo"] + args, env=env)
        check(rc == 2 and what in err and "demo" in err and out == "",
              "demo %s: exit 2 naming %s (%s)" % (" ".join(args), what, err.strip().splitlines()[:1]))
    afile = os.path.join(d, "afile")
    open(afile, "w").close()
    rc, out, err = run(["demo", "--keep", afile, "--quiet"] + SMALL, env=env)
    check(rc == 1 and afile in err and "not a directory" in err, "--keep FILE: exit 1 naming it: %s" % err.strip())
    # a failure inside a phase (the pooled data cannot be written over a directory) ends every rank alike
    blocked = os.path.join(d, "blocked")
    os.makedirs(os.path.join(blocked, "s3-pool.h5", "x"))
    rc, out, err = run(["demo", "--keep", blocked, "--quiet"] + SMALL, mpi=2 if MPIRUN else 0, env=env)
    check(clitest.code_ok(rc, 1, MPIRUN) and "s3-pool.h5" in err and out == "",
          "a file that cannot be written: exit 1 naming it: %s" % err.strip().splitlines()[:1])
    check(os.listdir(tmp) == [], "nothing left under TMPDIR after the failures")

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all ok")
