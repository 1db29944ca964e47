#!/usr/bin/python3
"""Command-line tests of `nograd retrofit` on the built-in synthetic domains.

Usage: test_retrofit.py NOGRAD [MPIRUN]

Trains a small MLP on one image domain and retrofits per-class offsets and a last-layer scale on another:
--list-params names what can be tuned; the run reports the validation metric before and after (after <=
before, and equal to `nograd eval` of the written model), the test metric and a finite bound that matches
the formula; SPSA and macro-F1 get no bound with a reason; the retrofitted model is bit-identical under
mpirun -n 1, 2 and 4 with --val-size; a threshold retrofit on a binary model stores the threshold, and
`nograd eval` takes every metric of such a model at its stored threshold (--threshold only moves
threshold_error); SIGUSR1 leaves a usable model; an unknown tensor, a slice out of range, a budget below one
generation and a validation set that does not fit are refused with clear messages and nothing is written.
"""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import ENV, NOGRAD, check, failures, run  # noqa: E402

clitest.MPIRUN = clitest.MPIRUN or shutil.which("mpirun")
MPIRUN = clitest.MPIRUN


def must(args, mpi=0):
    rc, out, err = run(args, mpi)
    if rc != 0:
        print("command failed (%d): %s\n%s%s" % (rc, " ".join(args), out, err))
        sys.exit(1)
    return out


def params(path):
    import h5py
    with h5py.File(path, "r") as f:
        return f["model/params"][()].tobytes()


with tempfile.TemporaryDirectory() as d:
    p = lambda name: os.path.join(d, name)
    must(["data", "synth", "images", "--domains", "upright,tilted", "--rows", "3000", "--out-prefix", p("d")])
    must(["data", "split", p("d-tilted.h5"), "--train", "0.2", "--val", "0.3", "--test", "0.5", "--seed", "1",
          "--out-prefix", p("t")])
    with open(p("spec.txt"), "w") as f:
        f.write("input 1 16 16\nflatten\ndense fc1 32\nrelu\ndense fc2 10\n")
    must(["train", "--train", p("d-upright.h5"), "--spec", p("spec.txt"), "--out", p("m.h5"), "--optimizer",
          "adam", "--lr", "0.003", "--epochs", "3", "--quiet"])

    out = must(["retrofit", "--list-params", p("m.h5")])
    check("fc2.bias" in out and "scale:fc2" in out and "offsets" in out, "--list-params names tensors and knobs")

    base = ["retrofit", p("m.h5"), "--params", "offsets,scale:fc2", "--val", p("t-val.h5"), "--test",
            p("t-test.h5"), "--budget", "150", "--json"]
    r = json.loads(must(base + ["--out", p("r.h5"), "--checkpoint", p("ck.h5")]))
    print("     error: val %.4f -> %.4f, test %.4f -> %.4f, bound %.4f" %
          (r["val_before"], r["val_after"], r["test_before"], r["test_after"], r["bound"]))
    check(r["n"] == 11 and r["evaluations"] == 150 // r["lambda"] * r["lambda"],
          "11 dimensions, at most --budget 150 evaluations in whole generations (%d of %d)" % (r["evaluations"], r["lambda"]))
    check(r["val_after"] <= r["val_before"], "the validation error does not get worse")
    e = json.loads(must(["eval", p("r.h5"), p("t-val.h5"), "--metric", "error", "--json"]))
    check(abs(e["error"] - r["val_after"]) < 1e-12,
          "nograd eval of the written model gives the reported validation error (%.6f)" % e["error"])
    T, lam, G = r["val_rows"], r["lambda"], r["generations"]
    ln = (G - 1) * math.lgamma(lam + 1) + math.log(G * lam)
    ln = ln + math.log1p(math.exp(-ln))
    want = math.sqrt((ln + math.log(2 / 0.05)) / (2 * T))
    check(abs(r["log_outputs"] - ln) < 1e-9 and abs(r["bound"] - want) < 1e-12,
          "the bound is sqrt((ln N + ln(2/delta)) / 2T) = %.4f with ln N = %.1f" % (want, ln))
    check(os.path.exists(p("ck.h5")), "a checkpoint is written")

    r = json.loads(must(base + ["--optimizer", "spsa", "--out", p("s.h5")]))
    check(r["bound"] is None and "SPSA" in r["no_bound"], "SPSA: no bound, with the reason")
    r = json.loads(must(base + ["--metric", "macro_f1", "--out", p("f.h5")]))
    check(r["bound"] is None and "macro-F1" in r["no_bound"] and r["val_after"] <= r["val_before"],
          "macro_f1: minimized as 1 - F1, no bound")
    r = json.loads(must(base + ["--metric", "balanced_error", "--out", p("b.h5")]))
    check(r["bound"] is not None and r["bound"] > 0, "balanced_error: the per-class bound")

    if MPIRUN:
        args = ["retrofit", p("m.h5"), "--params", "offsets,fc2.bias[0:3]", "--metric", "balanced_error",
                "--val", p("t-train.h5"), "--val-size", "300", "--budget", "120", "--chunk-rows", "64", "--json"]
        got = [json.loads(must(args + ["--out", p("p%d.h5" % P)], mpi=P)) for P in (1, 2, 4)]
        check(all(g["x"] == got[0]["x"] and g["val_after"] == got[0]["val_after"] for g in got)
              and params(p("p1.h5")) == params(p("p2.h5")) == params(p("p4.h5")),
              "the retrofitted model is bit-identical under mpirun -n 1, 2 and 4")
        check(got[0]["val_rows"] == 300, "--val-size 300 uses 300 rows (%d)" % got[0]["val_rows"])
    else:
        print("skip mpirun (not found)")

    # a binary model: the threshold is tuned and stored with the model
    must(["data", "synth", "vectors", "--domains", "upright,tilted", "--rows", "1500", "--classes", "2",
          "--out-prefix", p("v")])
    must(["data", "split", p("v-tilted.h5"), "--train", "0.5", "--val", "0.5", "--seed", "2",
          "--out-prefix", p("vt")])
    with open(p("vspec.txt"), "w") as f:
        f.write("input 32\ndense fc1 16\nrelu\ndense fc2 2\n")
    must(["train", "--train", p("v-upright.h5"), "--spec", p("vspec.txt"), "--out", p("bin.h5"), "--epochs", "2",
          "--quiet"])
    r = json.loads(must(["retrofit", p("bin.h5"), "--params", "threshold,offsets", "--metric", "threshold_error",
                         "--val", p("vt-train.h5"), "--test", p("vt-val.h5"), "--budget", "100", "--out",
                         p("bt.h5"), "--json"]))
    import h5py
    with h5py.File(p("bt.h5"), "r") as f:
        stored = f["model"].attrs.get("threshold")
    check(stored is not None and abs(stored - r["x"][0]) < 1e-15, "the tuned threshold is stored in the model")
    e = json.loads(must(["eval", p("bt.h5"), p("vt-train.h5"), "--metric", "threshold_error", "--json"]))
    check(abs(e["threshold_error"] - r["val_after"]) < 1e-12,
          "nograd eval uses the stored threshold: error %.6f" % e["threshold_error"])
    print("     threshold %.4f: error %.4f -> %.4f" % (r["x"][0], r["val_before"], r["val_after"]))

    # every metric of a binary model is taken at its stored threshold, in eval as in retrofit
    r = json.loads(must(["retrofit", p("bin.h5"), "--params", "threshold,offsets", "--metric", "balanced_error",
                         "--val", p("vt-train.h5"), "--budget", "100", "--out", p("bb.h5"), "--json"]))
    e = json.loads(must(["eval", p("bb.h5"), p("vt-train.h5"), "--metric", "balanced_error", "--json"]))
    check(abs(e["balanced_error"] - r["val_after"]) < 1e-12,
          "nograd eval's balanced_error of a model with a threshold (%.4f) is retrofit's: %.6f" %
          (r["x"][0], e["balanced_error"]))
    shutil.copy(p("bin.h5"), p("b90.h5"))
    with h5py.File(p("b90.h5"), "r+") as f:
        f["model"].attrs["threshold"] = 0.9
    clitest.reseal(p("b90.h5"))
    names = "accuracy,error,balanced_error,macro_f1,threshold_error"
    at = json.loads(must(["eval", p("b90.h5"), p("vt-val.h5"), "--metric", names, "--json"]))
    given = json.loads(must(["eval", p("bin.h5"), p("vt-val.h5"), "--metric", names, "--threshold", "0.9",
                             "--json"]))
    argmax = json.loads(must(["eval", p("bin.h5"), p("vt-val.h5"), "--metric", names, "--json"]))
    check(at["error"] == at["threshold_error"] == given["threshold_error"]
          and abs(at["accuracy"] + at["error"] - 1) < 1e-12 and at["error"] != argmax["error"],
          "a stored threshold of 0.9 sets every metric (error %.4f = threshold_error = threshold_error at "
          "--threshold 0.9; argmax: %.4f)" % (at["error"], argmax["error"]))
    check(all(given[k] == argmax[k] for k in ("accuracy", "error", "balanced_error", "macro_f1")),
          "--threshold sets threshold_error alone; the model's decision stays its own (argmax here)")
    # fine-tuning a model with a threshold: train's val accuracy is taken at it, as eval's, and it is kept
    tr = json.loads(must(["train", "--train", p("vt-train.h5"), "--val", p("vt-val.h5"), "--init-from",
                          p("b90.h5"), "--epochs", "2", "--out", p("t90.h5"), "--json", "--quiet"]))
    e = json.loads(must(["eval", p("t90.h5"), p("vt-val.h5"), "--metric", "accuracy", "--json"]))
    with h5py.File(p("t90.h5"), "r") as f:
        kept = f["model"].attrs.get("threshold")
    check(kept == 0.9 and abs(tr["val_accuracy"] - e["accuracy"]) < 1e-12,
          "train --init-from a model with a threshold keeps it and reports val accuracy at it (%.6f = eval's)"
          % tr["val_accuracy"])

    # anytime: SIGUSR1 ends the run after the generation, and leaves the best model so far
    proc = subprocess.Popen([NOGRAD] + ["retrofit", p("m.h5"), "--params", "offsets,scale:fc1,scale:fc2",
                                        "--val", p("t-val.h5"), "--budget", "10000000", "--popsize", "40",
                                        "--out", p("any.h5"), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    time.sleep(3)
    proc.send_signal(signal.SIGUSR1)
    o, e = proc.communicate(timeout=60)
    r = json.loads(o) if proc.returncode == 0 else {}
    check(proc.returncode == 0 and r.get("signalled") is True, "SIGUSR1 stops the run cleanly: %s" % e.strip())
    ok = os.path.exists(p("any.h5")) and run(["eval", p("any.h5"), p("t-val.h5")])[0] == 0
    check(ok, "the model left behind loads and evaluates")

    # bad input: clear messages, nothing written
    cases = [
        (["--params", "fc9.bias"], 1, "fc9.bias"),
        (["--params", "fc2.weight[0:11]"], 2, "10 rows"),
        (["--params", "offsets", "--budget", "5"], 2, "smaller than one generation"),
    ]
    for extra, code, words in cases:
        rc, _, err = run(["retrofit", p("m.h5"), "--val", p("t-val.h5"), "--out", p("bad.h5")] + extra)
        check(rc == code and words in err and not os.path.exists(p("bad.h5")),
              "%s: exit %d naming '%s': %s" % (" ".join(extra), code, words, err.strip()))
    rc, _, err = run(["retrofit", p("m.h5"), "--params", "offsets", "--val", p("v-upright.h5"), "--out",
                      p("bad.h5")])
    check(rc == 1 and "v-upright.h5" in err and not os.path.exists(p("bad.h5")),
          "a validation set whose features do not fit is refused naming it: %s" % err.strip())

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all ok")
