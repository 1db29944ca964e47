#!/usr/bin/env python3
"""Real-data test (CTest label "data"): imports the public datasets of ../shared/data with `nograd data`.

Usage: test_real_data.py NOGRAD DATA_DIR

Imports the four heart-disease hospitals ('?' missing, filled with the median; num > 0 binarized), both wine
qualities (';', quoted header), optdigits train/test, USPS (whitespace, gzip, labels written as floats) and
MNIST test (IDX, gzip); resamples the three digit sources to 16x16 in [0, 1]; checks the row counts of
DATA_DIR/README.md, the label and value ranges and a stratified split (class proportions within one example per
class); and checks that bad input fails with a message naming the file, line and column, leaving no file.
Exits 77 (skipped) with a message when DATA_DIR is absent, as it is on a user's machine.
"""
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from datatest import SKIP, Checks, numpy_h5py, skip_without  # noqa: E402



def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    nograd, data = sys.argv[1], os.path.abspath(sys.argv[2])
    if skip_without(data, ["README.md"]):
        return SKIP
    mods = numpy_h5py()
    if not mods:
        return SKIP
    h5py, np = mods

    check = Checks()

    tmp = tempfile.mkdtemp(prefix="ng_real_data_")

    def run(*args, expect=0):
        p = subprocess.run([nograd, "data", *args], capture_output=True, text=True, timeout=120)
        if p.returncode != expect:
            print(p.stdout, p.stderr, sep="\n")
        check(p.returncode == expect, f"exit {expect}: nograd data {' '.join(a.replace(data + '/', '') for a in args)}")
        return p

    def load(name):
        with h5py.File(os.path.join(tmp, name), "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            return f["x"][...], f["y"][...], attrs, dict(f["y"].attrs)

    def src(*parts):
        return os.path.join(data, *parts)

    def out(name):
        return os.path.join(tmp, name)

    # Heart disease: four hospitals, '?' missing, num > 0.
    for hosp, rows in [("cleveland", 303), ("hungarian", 294), ("switzerland", 123), ("va", 200)]:
        run("import", "csv", src("heart_disease", f"processed.{hosp}.data"), "--out", out(f"{hosp}.h5"),
            "--missing", "?", "--missing-policy", "median", "--label-map", "gt:0", "--name", "heart_disease",
            "--domain", hosp)
        x, y, a, ya = load(f"{hosp}.h5")
        check(x.shape == (rows, 13) and x.dtype == np.float32, f"{hosp}: {x.shape}, expected ({rows}, 13) float32")
        check(y.dtype == np.int32 and set(np.unique(y)) <= {0, 1}, f"{hosp}: labels in {{0, 1}}")
        check(a["classes"] == 2 and ya["classes"] == 2 and a["domain"] == hosp and a["name"] == "heart_disease",
              f"{hosp}: attributes name, domain, classes")
        check(list(ya["class_counts"]) == list(np.bincount(y, minlength=2)), f"{hosp}: class_counts attribute")
        check(np.isfinite(x).all() and x[:, 0].min() >= 20 and x[:, 0].max() <= 80, f"{hosp}: ages in [20, 80]")
    x, y, _, _ = load("cleveland.h5")
    check(x[0, 0] == 63 and x[0, 3] == 145 and y[0] == 0 and y[1] == 1, "cleveland: first rows as in the file")
    # Dropping rows with a missing value instead leaves only one hungarian row (ca and thal are mostly missing).
    run("import", "csv", src("heart_disease", "processed.hungarian.data"), "--out", out("hu_drop.h5"),
        "--missing", "?", "--missing-policy", "drop", "--label-map", "gt:0")
    check(load("hu_drop.h5")[0].shape[0] == 1, "hungarian with drop: 1 row")

    # Wine quality: ';' with a quoted header, label by name.
    for colour, rows in [("red", 1599), ("white", 4898)]:
        run("import", "csv", src("wine_quality", f"winequality-{colour}.csv"), "--delim", ";", "--header",
            "--label", "quality", "--out", out(f"{colour}.h5"), "--domain", colour)
        x, y, a, _ = load(f"{colour}.h5")
        check(x.shape == (rows, 11), f"wine {colour}: {x.shape}, expected ({rows}, 11)")
        check(y.min() >= 3 and y.max() <= 9 and a["classes"] == y.max() + 1, f"wine {colour}: quality in 3..9")
        run("import", "csv", src("wine_quality", f"winequality-{colour}.csv"), "--delim", ";", "--header",
            "--label", "quality", "--label-map", "ge:6", "--out", out(f"{colour}_bin.h5"))
        _, yb, ab, _ = load(f"{colour}_bin.h5")
        check(ab["classes"] == 2 and (yb == (y >= 6)).all(), f"wine {colour}: quality >= 6 binarized")

    # The three digit sources, resampled to 16x16 and scaled to [0, 1].
    digits = {}
    for split, rows in [("tra", 3823), ("tes", 1797)]:
        run("import", "csv", src("optdigits", f"optdigits.{split}"), "--shape", "1,8,8", "--resize", "16x16",
            "--value-range", "0,16", "--out", out(f"optdigits_{split}.h5"), "--domain", "optdigits")
        digits[f"optdigits.{split}"] = (f"optdigits_{split}.h5", rows)
    run("import", "table", src("usps_test", "zip.test.gz"), "--shape", "1,16,16", "--resize", "16x16",
        "--value-range", "-1,1", "--out", out("usps.h5"), "--domain", "usps")
    digits["usps"] = ("usps.h5", 2007)
    run("import", "idx", src("mnist_test", "t10k-images-idx3-ubyte.gz"), src("mnist_test", "t10k-labels-idx1-ubyte.gz"),
        "--resize", "16x16", "--value-range", "0,255", "--out", out("mnist.h5"), "--domain", "mnist")
    digits["mnist"] = ("mnist.h5", 10000)
    for name, (f, rows) in digits.items():
        x, y, a, _ = load(f)
        check(x.shape == (rows, 1, 16, 16), f"{name}: {x.shape}, expected ({rows}, 1, 16, 16)")
        check(y.min() == 0 and y.max() == 9 and a["classes"] == 10 and len(np.unique(y)) == 10,
              f"{name}: labels 0..9, all present")
        check(x.min() >= 0 and x.max() <= 1 and x.min() < 0.01 and x.max() > 0.99,
              f"{name}: values in [0, 1] spanning it ({x.min():.3g}..{x.max():.3g})")
    _, y, _, _ = load("mnist.h5")
    check(list(np.bincount(y)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], "mnist: class counts")

    # A stratified split keeps each class's proportions within one example.
    for f in ["mnist.h5", "cleveland.h5", "red.h5"]:
        prefix = out(f[:-3] + "_s")
        run("split", out(f), "--train", "0.7", "--val", "0.15", "--test", "0.15", "--seed", "7",
            "--out-prefix", prefix)
        _, y, _, _ = load(f)
        k = int(y.max()) + 1
        whole = np.bincount(y, minlength=k)
        total = 0
        ok = True
        for part, frac in [("train", 0.7), ("val", 0.15), ("test", 0.15)]:
            _, yp, _, _ = load(f"{f[:-3]}_s-{part}.h5")
            total += len(yp)
            ok &= bool((np.abs(np.bincount(yp, minlength=k) - frac * whole) < 1 + 1e-9).all())
        check(ok and total == len(y), f"{f}: stratified split within one example per class, all {len(y)} rows")
    p = run("info", out("mnist_s-train.h5"))
    check("7000 labels, 10 classes" in p.stdout, "info: rows and classes of the training part")

    # Standardization fitted on one file and reused for another.
    run("import", "csv", src("wine_quality", "winequality-red.csv"), "--delim", ";", "--header", "--standardize",
        "--out", out("red_std.h5"))
    run("import", "csv", src("wine_quality", "winequality-white.csv"), "--delim", ";", "--header",
        "--stats-from", out("red_std.h5"), "--out", out("white_std.h5"))
    with h5py.File(out("red_std.h5"), "r") as r, h5py.File(out("white_std.h5"), "r") as w:
        xr = r["x"][...]
        same = (r["x"].attrs["mean"] == w["x"].attrs["mean"]).all() and (r["x"].attrs["std"] == w["x"].attrs["std"]).all()
        check(abs(xr.mean(axis=0)).max() < 1e-3 and abs(xr.std(axis=0) - 1).max() < 1e-3, "red standardized")
        check(bool(same), "white standardized with red's mean and std (/x attributes)")

    # Bad input: one line naming the file, line and column; exit 1; no output file.
    p = run("import", "csv", src("heart_disease", "processed.hungarian.data"), "--out", out("bad.h5"), expect=1)
    check("processed.hungarian.data:1: column 11" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
          f"'?' without --missing: {p.stderr.strip()}")
    p = run("import", "csv", src("heart_disease", "processed.va.data"), "--missing", "?", "--out", out("bad.h5"),
            expect=1)
    check("processed.va.data:1: column 12: missing value '?'" in p.stderr, f"no policy: {p.stderr.strip()}")
    p = run("import", "csv", src("wine_quality", "winequality-red.csv"), "--delim", ";", "--out", out("bad.h5"),
            expect=1)
    check("winequality-red.csv:1: column 1: '\"fixed acidity\"' is not a number" in p.stderr
          or "winequality-red.csv:1: column 1: 'fixed acidity'" in p.stderr, f"header not declared: {p.stderr.strip()}")
    p = run("import", "idx", src("mnist_test", "t10k-labels-idx1-ubyte.gz"), src("mnist_test", "t10k-labels-idx1-ubyte.gz"),
            "--out", out("bad.h5"), expect=1)
    check("magic number 2049, expected 2051" in p.stderr, f"labels given as images: {p.stderr.strip()}")
    p = run("import", "csv", src("optdigits", "optdigits.tra"), "--shape", "1,8,9", "--out", out("bad.h5"), expect=1)
    check("64 features" in p.stderr, f"wrong shape: {p.stderr.strip()}")
    run("import", "csv", src("optdigits", "optdigits.tra"), "--missing-policy", "sometimes", "--out", out("bad.h5"),
        expect=2)
    check(not os.path.exists(out("bad.h5")) and not os.path.exists(out("bad.h5.tmp")), "no output file left by failures")

    subprocess.run(["rm", "-rf", tmp])
    return check.verdict()


if __name__ == "__main__":
    sys.exit(main())
