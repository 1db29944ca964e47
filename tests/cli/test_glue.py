#!/usr/bin/python3
"""Command-line tests of `nograd glue` on the built-in synthetic domains.

Usage: test_glue.py NOGRAD [MPIRUN]

Makes four image domains with `nograd data synth`, splits the target, trains a base on one source domain and
fine-tunes one expert per source domain from it, then runs glue with every method: each writes a model file
whose `nograd eval` loss on the target validation split equals the reported prior_loss within 1e-6; SPSA's
loss is at most uniform's plus a small tolerance and within 5% of the full-gradient prior's; --method all
writes every prior and one JSON line per method; --sizes, --proxy loss, --curves and the checkpoint's
/result do what they say; SPSA's, CMA-ES's and fullgrad's weights and losses are bit-identical under mpirun
-n 1, 2 and 4; experts of different architectures are refused naming the tensor; datasize with an expert
that has no train_rows is refused naming the expert; a target whose rows do not fit is refused naming the
file; nothing is written on error.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import check, failures, run  # noqa: E402

clitest.MPIRUN = clitest.MPIRUN or shutil.which("mpirun")
MPIRUN = clitest.MPIRUN
TIMEOUT = clitest.TIMEOUT


def must(args, mpi=0):
    rc, out, err = run(args, mpi)
    if rc != 0:
        print("command failed (%d): %s\n%s%s" % (rc, " ".join(args), out, err))
        sys.exit(1)
    return out


SPEC = "input 1 16 16\nflatten\ndense fc1 32\nrelu\ndense fc2 10\n"
SPEC_OTHER = "input 1 16 16\nflatten\ndense fc1 24\nrelu\ndense fc2 10\n"
SOURCES = ["upright", "tilted", "small"]
METHODS = ["uniform", "datasize", "proxy", "best", "fullgrad", "spsa", "cmaes"]

with tempfile.TemporaryDirectory() as d:
    p = lambda name: os.path.join(d, name)
    must(["data", "synth", "images", "--domains", ",".join(SOURCES + ["target"]), "--rows", "1500",
          "--out-prefix", p("d")])
    must(["data", "split", p("d-target.h5"), "--train", "0.3", "--val", "0.3", "--test", "0.4", "--seed", "1",
          "--out-prefix", p("t")])
    with open(p("spec.txt"), "w") as f:
        f.write(SPEC)
    with open(p("other.txt"), "w") as f:
        f.write(SPEC_OTHER)
    common = ["--optimizer", "adam", "--lr", "0.003", "--epochs", "2", "--quiet"]
    must(["train", "--train", p("d-upright.h5"), "--spec", p("spec.txt"), "--out", p("base.h5")] + common)
    experts = []
    for s in SOURCES:
        must(["train", "--train", p("d-%s.h5" % s), "--init-from", p("base.h5"), "--out", p("e-%s.h5" % s)]
             + common)
        experts.append(p("e-%s.h5" % s))
    glue = ["glue", "--experts"] + experts + ["--target-train", p("t-train.h5"), "--target-val", p("t-val.h5"),
                                             "--json"]

    results = {}
    for m in METHODS:
        out = p("prior-%s.h5" % m)
        r = json.loads(must(glue + ["--method", m, "--out", out]).strip().splitlines()[-1])
        results[m] = r
        check(r["method"] == m and len(r["weights"]) == 3 and abs(sum(r["weights"]) - 1) < 1e-9,
              "%s: one JSON line with 3 weights summing to 1" % m)
        e = json.loads(must(["eval", out, p("t-val.h5"), "--json"]).strip().splitlines()[-1])
        check(abs(e["loss"] - r["prior_loss"]) <= 1e-6,
              "%s: nograd eval loss %.9f == reported prior_loss %.9f" % (m, e["loss"], r["prior_loss"]))
        check(abs(e["accuracy"] - r["prior_accuracy"]) <= 1e-9, "%s: eval accuracy == prior_accuracy" % m)
        e = json.loads(must(["eval", out, p("t-train.h5"), "--json"]).strip().splitlines()[-1])
        check(abs(e["loss"] - r["train_loss"]) <= 1e-6 and abs(e["accuracy"] - r["train_accuracy"]) <= 1e-9,
              "%s: nograd eval on the target train split == reported train_loss %.9f, train_accuracy" %
              (m, r["train_loss"]))
        print("     %-8s prior_loss %.6f accuracy %.4f weights %s" %
              (m, r["prior_loss"], r["prior_accuracy"], ["%.4f" % w for w in r["weights"]]))
    check(results["spsa"]["prior_loss"] <= results["uniform"]["prior_loss"] + 0.01,
          "spsa's target-val loss <= uniform's + 0.01")
    check(results["best"]["weights"].count(1.0) == 1 and results["proxy"]["weights"].count(1.0) == 1,
          "best and proxy pick one expert")
    r = json.loads(must(glue + ["--method", "spsa", "--granularity", "layer", "--out", p("prior-layer.h5")])
                   .strip().splitlines()[-1])
    check(r["L"] == 2 and len(r["weights"]) == 6, "granularity layer: K x L = 3 x 2 weights")
    gap = (results["spsa"]["prior_loss"] - results["fullgrad"]["prior_loss"]) / results["fullgrad"]["prior_loss"]
    check(gap <= 0.05, "spsa's prior loss within 5%% of fullgrad's (gap %.4f)" % gap)

    # --sizes overrides train_rows; --proxy loss picks the expert with the lowest target-train loss
    r = json.loads(must(glue + ["--method", "datasize", "--sizes", "1,1,2", "--out", p("sz.h5")]))
    check(r["weights"] == [0.25, 0.25, 0.5], "--sizes 1,1,2 gives weights 0.25 0.25 0.5: %s" % r["weights"])
    r = json.loads(must(glue + ["--method", "proxy", "--proxy", "loss", "--out", p("px.h5")]))
    losses = [json.loads(must(["eval", e, p("t-train.h5"), "--json"]))["loss"] for e in experts]
    check(r["weights"] == [1.0 if l == min(losses) else 0.0 for l in losses],
          "--proxy loss picks the expert with the lowest train loss: %s for %s" % (r["weights"], losses))

    # --method all: every prior, one JSON line each, the curves and a checkpoint per method
    lines = must(glue + ["--method", "all", "--steps", "30", "--out", p("all"), "--curves", p("curves.csv"),
                         "--checkpoint", p("ck.h5")]).strip().splitlines()
    got = [json.loads(l) for l in lines]
    check([g["method"] for g in got] == ["uniform", "datasize", "proxy", "best", "fullgrad", "spsa", "cmaes"],
          "--method all: one JSON line per method in order")
    check(all(os.path.exists(p("all/%s.h5" % g["method"])) for g in got), "--method all writes all/METHOD.h5")
    with open(p("curves.csv")) as f:
        rows = [l.strip().split(",") for l in f][1:]
    for m in ("fullgrad", "spsa", "cmaes"):
        steps = [int(r[1]) for r in rows if r[0] == m]
        check(steps == list(range(1, 31)), "--curves: 30 steps of %s" % m)
    try:
        import h5py
        spsa = [g for g in got if g["method"] == "spsa"][0]
        with h5py.File(p("ck-spsa.h5"), "r") as f:
            check(list(f["result/weights"][()]) == spsa["weights"], "checkpoint /result/weights == the JSON's")
            check(len(f["result/curve"][()]) == 30 and f["history/median"].shape[0] == 30,
                  "checkpoint: a 30-step curve and history")
    except ImportError:
        print("skip checkpoint contents (no h5py)")

    if MPIRUN:
        for m in ("spsa", "cmaes", "fullgrad"):
            args = glue + ["--method", m, "--chunk-rows", "64", "--steps", "40", "--granularity", "layer"]
            got = [json.loads(must(args + ["--out", p("m%d.h5" % P)], mpi=P)) for P in (1, 2, 4)]
            check(all(g["weights"] == got[0]["weights"] and g["prior_loss"] == got[0]["prior_loss"]
                      for g in got), "%s bit-identical under mpirun -n 1, 2 and 4" % m)
    else:
        print("skip mpirun (not found)")

    # target rows that do not fit the experts: refused naming the file, nothing written
    must(["data", "synth", "vectors", "--domain", "target", "--rows", "100", "--out", p("vec.h5")])
    for m in ("fullgrad", "spsa", "all"):
        out = p("bad-all") if m == "all" else p("bad.h5")
        rc, _, err = run(["glue", "--experts"] + experts + ["--target-train", p("vec.h5"), "--out", out,
                                                            "--method", m])
        check(rc == 1 and "vec.h5" in err and not os.path.exists(out),
              "%s: a target that does not fit is refused naming it: %s" % (m, err.strip()))

    # experts of another architecture: refused naming the tensor, nothing written
    must(["train", "--train", p("d-small.h5"), "--spec", p("other.txt"), "--out", p("e-other.h5")] + common)
    rc, out, err = run(["glue", "--experts", experts[0], p("e-other.h5"), "--target-train", p("t-train.h5"),
                        "--out", p("bad.h5"), "--method", "uniform"])
    check(rc == 1 and "fc1.weight" in err and not os.path.exists(p("bad.h5")),
          "different architectures refused naming fc1.weight: %s" % err.strip())

    # datasize without train_rows: refused naming the expert
    try:
        import h5py
        shutil.copy(experts[1], p("e-norows.h5"))
        with h5py.File(p("e-norows.h5"), "a") as f:
            del f["model"].attrs["train_rows"]
        clitest.reseal(p("e-norows.h5"))
        rc, out, err = run(["glue", "--experts", experts[0], p("e-norows.h5"), "--target-train",
                            p("t-train.h5"), "--out", p("bad.h5"), "--method", "datasize"])
        check(rc == 1 and "e-norows.h5" in err and "train_rows" in err and not os.path.exists(p("bad.h5")),
              "datasize without train_rows refused naming the expert: %s" % err.strip())
        rc, out, err = run(["glue", "--experts", experts[0], p("e-norows.h5"), "--target-train",
                            p("t-train.h5"), "--out", p("bad-all"), "--method", "all"])
        check(rc == 1 and "e-norows.h5" in err and not os.path.exists(p("bad-all")),
              "--method all with an expert without train_rows writes nothing: %s" % err.strip())
    except ImportError:
        print("skip datasize without train_rows (no h5py)")

    rc, out, err = run(["glue", "--experts", experts[0], "--target-train", p("t-train.h5"), "--out", p("bad.h5")])
    check(rc == 2 and "2 experts" in err, "a single expert is refused")

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all ok")
