#!/usr/bin/env python3
"""Real-data test (CTest label "data"): a short run of tools/glue_experiment.sh on the heart-disease data.

Usage: test_glue_experiment.py NOGRAD DATA_DIR

Runs the experiment script on the smallest real dataset (heart, target switzerland, MLP, seed 1, 20 mixing
steps) and checks what it leaves:
  - the prepared data: 10 features (ca, thal and slope dropped), no missing value left, the pooled source train
    split standardized (mean 0, std 1), a target train split of at most 200 rows, target splits that share no row;
  - results.csv: exactly the columns of issue #5, one row for base and for each of the seven mixing methods,
    accuracies in [0, 1], positive finite losses; the uniform and datasize priors' weights are those of their
    definition (1/K, and the experts' train_rows);
  - curves.csv with the SPSA and full-gradient curves (one row a step), priors.csv with every prior's target train
    loss, results.md with its tables and checks, the PNG plots;
  - a second run of the same command skips the seed and leaves results.csv as it was; without its results.csv
    (an interrupted seed) the seed is run again and gives the same bytes;
  - the same seed under --ranks 2 (mpirun) gives the same results.csv, byte for byte;
  - bad input: an unknown target, a missing dataset, an unknown architecture: a message naming it, no run.
Exits 77 (skipped) with a message when DATA_DIR is absent, as it is on a user's machine.
"""
import csv
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from datatest import SKIP, Checks, numpy_h5py, run_script, skip_without  # noqa: E402

COLUMNS = ["dataset", "target", "arch", "seed", "method", "prior_loss", "prior_accuracy", "test_accuracy"]
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "tools", "glue_experiment.sh")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    nograd, data = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if skip_without(data, ["heart_disease/processed.switzerland.data"]):
        return SKIP
    mods = numpy_h5py()
    if not mods:
        return SKIP
    h5py, np = mods

    check = Checks()

    tmp = tempfile.mkdtemp(prefix="ng_glue_exp_")
    base_args = ["--data", data, "--dataset", "heart", "--target", "switzerland", "--arch", "mlp", "--seeds", "1",
                 "--steps", "20", "--nograd", nograd]

    def run(*args, expect=0):
        shown = " ".join(a.replace(data, "DATA").replace(tmp, "TMP") for a in args)
        return run_script(check, SCRIPT, args, expect, shown)

    out = os.path.join(tmp, "out")
    p = run(*base_args, "--out", out)
    methods = ["base", "uniform", "datasize", "proxy", "best", "fullgrad", "spsa", "cmaes"]

    # The prepared data.
    prep = os.path.join(out, "data", "heart", "switzerland", "seed1")
    with open(os.path.join(prep, "prep.json")) as f:
        info = json.load(f)
    check(info["sources"] == ["cleveland", "hungarian", "va"] and info["input"] == [10],
          f"sources and features: {info['sources']}, {info['input']}")
    check(not {"ca", "thal", "slope"} & set(info["features"]), f"ca, thal, slope dropped: {info['features']}")
    parts = {}
    for name in ["pooled-train", "pooled-val", "target-train", "target-val", "target-test", "src-va-train"]:
        with h5py.File(os.path.join(prep, name + ".h5"), "r") as f:
            parts[name] = (f["x"][...], f["y"][...], f.attrs["domain"], f["x"].attrs.get("mean"))
    check(all(np.isfinite(x).all() for x, _, _, _ in parts.values()), "no missing value left in any split")
    xp = parts["pooled-train"][0]
    check(abs(xp.mean(axis=0)).max() < 1e-4 and abs(xp.std(axis=0) - 1).max() < 1e-3,
          "pooled source train split standardized")
    check(all(np.array_equal(parts["pooled-train"][3], v[3]) for v in parts.values()),
          "every split carries the pooled source train statistics")
    ntr, nva, nte = (len(parts[k][1]) for k in ("target-train", "target-val", "target-test"))
    check(0 < ntr <= 200 and nva > 0 and nte > 0 and ntr + nva + nte == info["domains"]["switzerland"]["rows"],
          f"target splits {ntr} + {nva} + {nte} rows, the train split at most 200")
    rows = [tuple(r) for k in ("target-train", "target-val", "target-test") for r in parts[k][0]]
    check(len(set(rows)) == len(rows), "the target splits share no row")

    # results.csv and the priors.
    run_dir = os.path.join(out, "runs", "heart", "switzerland", "mlp", "seed1")
    with open(os.path.join(out, "results.csv")) as f:
        reader = csv.reader(f)
        header = next(reader)
        res = list(reader)
    check(header == COLUMNS, f"results.csv columns: {header}")
    check([r[4] for r in res] == methods, f"one row per method: {[r[4] for r in res]}")
    check(all(r[:4] == ["heart", "switzerland", "mlp", "1"] for r in res), "dataset, target, arch, seed columns")
    vals = [[float(v) for v in r[5:]] for r in res]
    check(all(math.isfinite(l) and l > 0 and 0 <= a <= 1 and 0 <= t <= 1 for l, a, t in vals),
          "prior losses positive and finite, accuracies in [0, 1]")
    glue = {}
    with open(os.path.join(run_dir, "glue.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            glue[j["method"]] = j
    check(all(abs(w - 1 / 3) < 1e-12 for w in glue["uniform"]["weights"]), "uniform weights 1/3")
    sizes = np.array([info["train_rows"][d] for d in info["sources"]], float)
    check(np.allclose(glue["datasize"]["weights"], sizes / sizes.sum(), atol=1e-12),
          f"datasize weights {glue['datasize']['weights']} from train_rows {sizes.tolist()}")
    check(abs(sum(glue["spsa"]["weights"]) - 1) < 1e-9 and min(glue["spsa"]["weights"]) >= 0, "spsa weights on the simplex")
    # priors.csv: each prior's loss on the target train split, as `nograd glue` reported it
    with open(os.path.join(out, "priors.csv")) as f:
        pri = {r["method"]: r for r in csv.DictReader(f)}
    check(sorted(pri) == sorted(m for m in methods if m != "base")
          and all(float(pri[m]["train_loss"]) == glue[m]["train_loss"] for m in pri),
          f"priors.csv: the train loss of every prior, as glue.jsonl has it ({sorted(pri)})")
    with open(os.path.join(out, "curves.csv")) as f:
        curves = list(csv.DictReader(f))
    for m in ("spsa", "fullgrad"):
        steps = [int(r["step"]) for r in curves if r["method"] == m]
        check(steps == list(range(1, 21)), f"{m}: curve rows for steps 1..20 ({len(steps)} rows)")
    check(all(math.isfinite(float(r["loss"])) and r["seed"] == "1" for r in curves), "curves: finite losses, seed 1")
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    check("## Test accuracy after fine-tuning" in md and "| heart | mlp | switzerland | 1 |" in md
          and "SPSA <= datasize and uniform" in md and "| heart | mlp | 1 |" in md, "results.md tables and checks")
    if importlib.util.find_spec("matplotlib"):
        for png in ("curves-heart-mlp.png", "accuracy-heart-mlp.png"):
            with open(os.path.join(out, "plots", png), "rb") as f:
                check(f.read(8) == b"\x89PNG\r\n\x1a\n", f"plots/{png} is a PNG")
    else:
        print("(no matplotlib: plots not checked)")

    # Resumable: the complete seed is skipped and its results stay as they were.
    with open(os.path.join(run_dir, "results.csv"), "rb") as f:
        before = f.read()
    mtime = os.path.getmtime(os.path.join(run_dir, "results.csv"))
    p = run(*base_args, "--out", out)
    check("seed 1: complete, skipped" in p.stderr, "second run skips the complete seed")
    with open(os.path.join(run_dir, "results.csv"), "rb") as f:
        check(f.read() == before and os.path.getmtime(os.path.join(run_dir, "results.csv")) == mtime,
              "its results.csv untouched")

    # An interrupted seed (no results.csv yet) is done again, with the same results.
    os.unlink(os.path.join(run_dir, "results.csv"))
    p = run(*base_args, "--out", out)
    with open(os.path.join(run_dir, "results.csv"), "rb") as f:
        check("seed 1: complete, skipped" not in p.stderr and f.read() == before,
              "an incomplete seed is run again and gives the same results.csv")

    # The same seed on 2 ranks: the same bits.
    out2 = os.path.join(tmp, "out2")
    run(*base_args, "--out", out2, "--ranks", "2")
    with open(os.path.join(out, "results.csv"), "rb") as a, open(os.path.join(out2, "results.csv"), "rb") as b:
        check(a.read() == b.read(), "--ranks 2 gives the same results.csv")

    # Bad input.
    bad = os.path.join(tmp, "bad")
    p = run(*[a if a != "switzerland" else "zurich" for a in base_args], "--out", bad, expect=1)
    check("unknown --target 'zurich'" in p.stderr and "cleveland hungarian switzerland va" in p.stderr,
          f"unknown target: {p.stderr.strip()}")
    p = run(*[a if a != data else tmp for a in base_args], "--out", bad, expect=1)
    check("heart_disease/ folder" in p.stderr and "missing" in p.stderr, f"missing dataset: {p.stderr.strip()}")
    p = run(*[a if a != "mlp" else "cnn" for a in base_args], "--out", bad, expect=1)
    check("--arch cnn needs images" in p.stderr, f"cnn on tabular data: {p.stderr.strip()}")
    p = run(*[a if a != "mlp" else "transformer" for a in base_args], "--out", bad, expect=2)
    check("unknown --arch 'transformer'" in p.stderr, f"unknown architecture: {p.stderr.strip()}")
    check(not os.path.exists(os.path.join(bad, "runs")), "no run started on bad input")

    shutil.rmtree(tmp)
    return check.verdict()


if __name__ == "__main__":
    sys.exit(main())
