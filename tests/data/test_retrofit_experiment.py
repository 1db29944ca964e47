#!/usr/bin/env python3
"""Real-data test (CTest label "data"): a short run of tools/retrofit_experiment.sh on digits and heart.

Usage: test_retrofit_experiment.py NOGRAD DATA_DIR

Runs the experiment script small (seed 1, a budget of three generations): digits with the usps target (a CNN
trained on mnist alone, retrofitted on 200 usps rows) and heart with every hospital as the unseen one, into one
OUTDIR, and checks what it leaves:
  - results.csv: exactly the columns below, one row per (dataset, target, seed); every metric in [0, 1];
    val_after <= val_before (the start competes); evaluations a whole number of generations and within the
    budget; the population nograd uses for 11 (digits) and 3 (heart) knobs; the bound equal to its formula
    recomputed here from lambda, the generations and the validation rows (per class, from the validation
    pool's labels, for balanced error), in (0, 1] where every class has 20 rows or more (all but switzerland,
    whose 4 or so healthy patients make it vacuous, > 1);
  - the data: the model trained on the source only (its train_rows), the validation pool and the test split
    of the target disjoint (heart) or together the whole domain (digits), test_rows the size of the test file;
  - the numbers are those of the files: `nograd eval` of the trained and the retrofitted digits model on the
    test split gives test_before and test_after; the retrofitted heart model stores the threshold found;
  - results.md with its per-setting table, the per-dataset line and the checks;
  - a second run skips every seed and leaves them untouched; a seed without its results.csv is run again and
    gives the same row (but for the seconds);
  - --ranks 2 (mpirun) gives the same retrofitted models, bit for bit, and the same rows;
  - bad input: an unknown dataset, a missing dataset folder, the source as a target, a budget smaller than one
    generation, other settings into the same OUTDIR: a message naming it, and no result.
Exits 77 (skipped) with a message when DATA_DIR is absent, as it is on a user's machine. About 1 minute.
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from datatest import SKIP, Checks, numpy_h5py, run_script, skip_without  # noqa: E402

COLUMNS = ["dataset", "source", "target", "seed", "params", "metric", "budget", "evaluations", "lambda",
           "generations", "val_rows", "test_rows", "val_before", "val_after", "test_before", "test_after", "bound",
           "log_outputs", "delta", "kept_start", "source_val_error", "train_seconds", "retrofit_seconds", "seconds"]
TIMES = {"train_seconds", "retrofit_seconds", "seconds"}
HOSPITALS = ["cleveland", "hungarian", "switzerland", "va"]
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "tools", "retrofit_experiment.sh")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    nograd, data = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    need = ["heart_disease/processed.va.data", "mnist_test/t10k-images-idx3-ubyte.gz", "usps_test/zip.test.gz"]
    if skip_without(data, need):
        return SKIP
    mods = numpy_h5py()
    if not mods:
        return SKIP
    h5py, np = mods

    check = Checks()

    tmp = tempfile.mkdtemp(prefix="ng_retrofit_exp_")

    def run(*args, expect=0):
        shown = " ".join(a.replace(data, "DATA").replace(tmp, "TMP") for a in args)
        return run_script(check, SCRIPT, [*args, "--nograd", nograd], expect, shown)

    def rows_of(path):
        with open(path) as f:
            reader = csv.DictReader(f)
            return reader.fieldnames, list(reader)

    def same(a, b):
        return all(a[c] == b[c] for c in COLUMNS if c not in TIMES)

    out = os.path.join(tmp, "out")
    digits = ["--data", data, "--dataset", "digits", "--targets", "usps", "--seeds", "1", "--budget", "33"]
    heart = ["--data", data, "--dataset", "heart", "--seeds", "1", "--budget", "21"]
    run(*digits, "--out", out)
    p = run(*heart, "--out", out)
    check("wrote" in p.stderr and "results.md" in p.stderr, "the script says where the results are")

    header, rows = rows_of(os.path.join(out, "results.csv"))
    check(header == COLUMNS, f"results.csv columns: {header}")
    check([(r["dataset"], r["target"], r["seed"]) for r in rows]
          == [("digits", "usps", "1")] + [("heart", h, "1") for h in HOSPITALS],
          f"one row per setting and seed: {[(r['dataset'], r['target']) for r in rows]}")
    by = {(r["dataset"], r["target"]): r for r in rows}
    for r in rows:
        name = f"{r['dataset']} {r['source']} -> {r['target']}"
        v = {c: float(r[c]) for c in ("val_before", "val_after", "test_before", "test_after")}
        check(all(0 <= x <= 1 for x in v.values()), f"{name}: metrics in [0, 1]: {v}")
        check(v["val_after"] <= v["val_before"], f"{name}: val after {v['val_after']} <= before {v['val_before']}")
        lam, gens, evals = int(r["lambda"]), int(r["generations"]), int(r["evaluations"])
        check(evals == lam * gens and evals <= int(r["budget"]) and gens == 3,
              f"{name}: {evals} evaluations = {gens} generations of {lam}, within the budget {r['budget']}")
        # ln N of N + 1 possible outputs, N = (lambda!)^(G-1) G lambda (the README's derivation).
        ln = (gens - 1) * math.lgamma(lam + 1) + math.log(gens * lam)
        ln += math.log1p(math.exp(-ln))
        check(math.isclose(float(r["log_outputs"]), ln, rel_tol=1e-12),
              f"{name}: ln N {r['log_outputs']} recomputed {ln:.6f}")
        prep = os.path.join(out, "data", r["dataset"], r["target"], "seed1")
        with h5py.File(os.path.join(prep, "target-pool.h5"), "r") as f:
            ypool, xpool = f["y"][...], f["x"][...]
        with h5py.File(os.path.join(prep, "target-test.h5"), "r") as f:
            ytest, xtest = f["y"][...], f["x"][...]
        check(int(r["test_rows"]) == len(ytest), f"{name}: test_rows {r['test_rows']} = rows of target-test.h5")
        delta, bound = float(r["delta"]), float(r["bound"])
        if r["metric"] == "balanced_error":
            counts = np.bincount(ypool, minlength=2)
            want = max(math.sqrt((ln + math.log(2 * 2 / delta)) / (2 * c)) for c in counts if c)
        else:
            counts = [int(r["val_rows"])]
            want = math.sqrt((ln + math.log(2 / delta)) / (2 * counts[0]))
        check(0 < bound and math.isclose(bound, want, rel_tol=1e-9),
              f"{name}: bound {bound:.6f} > 0, recomputed {want:.6f}")
        # Every class with 20 rows or more keeps three generations' bound below 1; switzerland's pool has
        # about 4 healthy patients, and no bound over 4 rows says anything.
        if min(counts) >= 20:
            check(bound <= 1, f"{name}: bound {bound:.6f} <= 1 ({min(counts)} rows in the smallest class)")
        else:
            check(bound > 1, f"{name}: bound {bound:.6f} > 1: vacuous with {min(counts)} rows in a class")
        if r["dataset"] == "heart":
            check(r["source"] == "+".join(h for h in HOSPITALS if h != r["target"]),
                  f"{name}: trained on the three other hospitals")
            check(int(r["val_rows"]) == len(ypool), f"{name}: the whole pool ({len(ypool)} rows) is validation")
            pool_rows = {row.tobytes() for row in xpool}
            check(not any(row.tobytes() in pool_rows for row in xtest), f"{name}: pool and test share no row")
            run_dir = os.path.join(out, "runs", "heart", r["target"], "seed1")
            with h5py.File(os.path.join(prep, "pooled-train.h5"), "r") as f:
                ntrain = len(f["y"])
            with h5py.File(os.path.join(run_dir, "model.h5"), "r") as f:
                check(int(f["model"].attrs["train_rows"]) == ntrain, f"{name}: the model saw the pooled sources")
            with open(os.path.join(run_dir, "retrofit.json")) as f:
                x = json.load(f)["x"]
            with h5py.File(os.path.join(run_dir, "retrofit.h5"), "r") as f:
                thr = float(f["model"].attrs.get("threshold", float("nan")))
            check(thr == x[0], f"{name}: the retrofitted model stores the threshold found ({thr} = {x[0]})")

    d = by[("digits", "usps")]
    check(d["source"] == "mnist" and d["params"] == "offsets,scale:out" and d["metric"] == "error"
          and d["lambda"] == "11" and d["val_rows"] == "200", f"digits settings: {d['params']}, {d['lambda']}")
    check(all(by[("heart", h)]["lambda"] == "7" and by[("heart", h)]["params"] == "threshold,offsets"
              for h in HOSPITALS), "heart settings: threshold,offsets, lambda 7")
    prep = os.path.join(out, "data", "digits", "usps", "seed1")
    with h5py.File(os.path.join(out, "models", "digits", "mnist", "seed1", "model.h5"), "r") as f:
        check(int(f["model"].attrs["train_rows"]) == 9500, "digits: the CNN saw the 9,500 mnist train rows only")
    with h5py.File(os.path.join(prep, "target-pool.h5"), "r") as f:
        npool = len(f["y"])
    check(npool + int(d["test_rows"]) == 2007, f"digits: pool {npool} + test {d['test_rows']} = the 2007 usps rows")
    evals = {}
    for name, model in (("before", os.path.join(out, "models", "digits", "mnist", "seed1", "model.h5")),
                        ("after", os.path.join(out, "runs", "digits", "usps", "seed1", "retrofit.h5"))):
        p = subprocess.run([nograd, "eval", model, os.path.join(prep, "target-test.h5"), "--metric", "error",
                            "--json"], capture_output=True, text=True)
        evals[name] = json.loads(p.stdout)["error"] if p.returncode == 0 else float("nan")
    check(math.isclose(evals["before"], float(d["test_before"]), abs_tol=1e-12)
          and math.isclose(evals["after"], float(d["test_after"]), abs_tol=1e-12),
          f"digits: nograd eval gives test error {evals['before']:.6f} -> {evals['after']:.6f}, as in results.csv")

    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    check("| digits | mnist → usps | error | 1 |" in md and "| **heart** | **every target** |" in md
          and "val after <= val before in every seed: yes" in md and "evaluations within the budget" in md,
          "results.md: the per-setting table, the per-dataset line, the checks")

    # Resumable: complete seeds are skipped and left as they were.
    seed_csv = {h: os.path.join(out, "runs", "heart", h, "seed1", "results.csv") for h in HOSPITALS}
    stamp = {h: (open(p, "rb").read(), os.path.getmtime(p)) for h, p in seed_csv.items()}
    p = run(*heart, "--out", out)
    check(p.stderr.count("seed 1: complete, skipped") == 4, "a second run skips the four complete seeds")
    check(all((open(p, "rb").read(), os.path.getmtime(p)) == stamp[h] for h, p in seed_csv.items()),
          "their results.csv untouched")
    os.unlink(seed_csv["va"])
    p = run(*heart, "--out", out)
    _, again = rows_of(seed_csv["va"])
    check("heart va seed 1: complete" not in p.stderr and len(again) == 1 and same(again[0], by[("heart", "va")]),
          "a seed without results.csv is run again and gives the same row")

    # Two ranks: the same models and rows.
    out2 = os.path.join(tmp, "out2")
    run(*digits, "--out", out2, "--ranks", "2")
    run(*heart, "--targets", "va", "--out", out2, "--ranks", "2")
    _, rows2 = rows_of(os.path.join(out2, "results.csv"))
    by2 = {(r["dataset"], r["target"]): r for r in rows2}
    for key in (("digits", "usps"), ("heart", "va")):
        a = os.path.join(out, "runs", key[0], key[1], "seed1", "retrofit.h5")
        b = os.path.join(out2, "runs", key[0], key[1], "seed1", "retrofit.h5")
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
            pa, pb = fa["model/params"][...], fb["model/params"][...]
            ta, tb = fa["model"].attrs.get("threshold"), fb["model"].attrs.get("threshold")
        check(key in by2 and same(by[key], by2[key]) and pa.tobytes() == pb.tobytes() and ta == tb,
              f"{key[0]} {key[1]}: --ranks 2 gives the same retrofitted model and row")

    # Bad input: a message naming it, and no result.
    bad = os.path.join(tmp, "bad")
    p = run("--data", data, "--dataset", "wine", "--seeds", "1", "--out", bad, expect=2)
    check("unknown --dataset 'wine'" in p.stderr, f"unknown dataset: {p.stderr.strip()}")
    p = run(*[a if a != data else tmp for a in heart], "--out", bad, expect=1)
    check("heart_disease/ folder" in p.stderr and "missing" in p.stderr, f"missing dataset: {p.stderr.strip()}")
    p = run(*[a if a != "usps" else "mnist" for a in digits], "--out", bad, expect=1)
    check("the target must be another domain" in p.stderr, f"source as target: {p.stderr.strip()}")
    p = run(*[a if a != "21" else "5" for a in heart], "--targets", "va", "--out", bad, expect=1)
    check("--budget 5 is smaller than one generation of 7 candidates" in p.stderr,
          f"budget below a generation: {p.stderr.strip()}")
    check(not os.path.exists(os.path.join(bad, "runs", "heart", "va", "seed1", "retrofit.json")),
          "no retrofit run on a budget below a generation")
    p = run(*[a if a != "21" else "28" for a in heart], "--out", out, expect=1)
    check("made with other settings" in p.stderr and "budget=21" in p.stderr,
          f"other settings into the same OUTDIR: {p.stderr.strip()}")
    check(not os.path.exists(os.path.join(bad, "results.csv")), "no results.csv from bad input")

    shutil.rmtree(tmp)
    return check.verdict()


if __name__ == "__main__":
    sys.exit(main())
