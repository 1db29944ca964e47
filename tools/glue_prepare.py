#!/usr/bin/env python3
"""Data preparation of the GLUE experiment (tools/glue_experiment.sh): one dataset, one target domain, one seed.

Usage: glue_prepare.py --data DIR --dataset heart|wine|digits --target DOMAIN --seed S --out DIR
                       [--nograd PATH] [--cache DIR] [--target-train N] [--target-val N]
                       [--source-train N] [--source-val N]
       glue_prepare.py --domains heart|wine|digits      (prints the domain names, one line)

Reads the raw files of ../shared/data (never copied anywhere but the --cache and --out directories), and writes
nograd dataset files (the layout of include/nograd/data.h) into --out:
  src-<domain>-train.h5, src-<domain>-val.h5   one pair per source domain (every domain but the target)
  pooled-train.h5, pooled-val.h5                the source splits concatenated (the base model's data)
  target-train.h5, target-val.h5, target-test.h5
  prep.json                                     rows per file, features, classes, what was done to the data

What it does, in order:
  1. Reads every domain of the dataset.
     heart  processed.<hospital>.data for cleveland, hungarian, switzerland, va; label num > 0. '?' and
            chol == 0 are missing values. Columns missing in more than 30% of all 920 rows are dropped (ca 66%,
            thal 53%, slope 34%); 10 features remain. The other missing values are filled after the split
            with the mean of the pooled source train split (so the target's own statistics are never used).
     wine   winequality-red.csv and winequality-white.csv, imported by `nograd data import csv` (label
            quality >= 6). White is split at its median alcohol (10.4): white_low (alcohol < median) and
            white_high (>= median). Domains: red, white_low, white_high.
     digits mnist (t10k, IDX), usps (zip.test) and optdigits (optdigits.tra + optdigits.tes), each imported by
            `nograd data import` resampled to 1x16x16 with values in [0, 1] (area averaging down, bilinear up).
  2. Tabular data only: exact duplicate rows (same features and label) are removed within each domain, so that
     a test row never has an identical twin in a training split (wine has 240 red and 937 white duplicates).
  3. Splits each domain with a stratified, seeded order (every class shuffled, then interleaved by rank
     within its class, so any prefix keeps the class proportions to within one example):
     target: train min(--target-train, 30%), val min(--target-val, 20%), the rest is its test set;
     sources: val min(--source-val, 20%), train the rest; when the largest source's train split would exceed
     --source-train (default 3000) rows, every source keeps the same fraction of its rows, so that the largest
     has 3000 and the ratios of the experts' training-set sizes (the datasize baseline) are the data's. Only
     digits is subsampled: target mnist: optdigits 3000 of 5120, usps 941 of 1606; target usps: mnist 3000
     of 9500, optdigits 1617; target optdigits: mnist 3000, usps 507.
  4. Tabular data only: fills missing values (heart) with the pooled source train mean, then standardizes
     every file with the mean and std of the pooled source train split (recorded in /x as mean and std).
Each domain's order depends only on (seed, domain, role), and the prepared files are shared by every
architecture of one (dataset, target, seed).
"""
import argparse
import json
import os
import subprocess
import sys
import zlib

import numpy as np

try:
    import h5py
except ImportError:  # the experiment script turns this into a clear message
    h5py = None

DOMAINS = {
    "heart": ["cleveland", "hungarian", "switzerland", "va"],
    "wine": ["red", "white_low", "white_high"],
    "digits": ["mnist", "usps", "optdigits"],
}
HEART_COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
                 "slope", "ca", "thal"]
HEART_DROP_FRACTION = 0.30  # a column missing in more of all rows than this is dropped
FORMAT, FORMAT_VERSION = "nograd dataset", 1  # src/data/dataset.c, include/nograd/data.h
CHUNK_BYTES = 256 * 1024  # about the chunk size nograd itself writes


def fail(msg):
    print(f"glue_prepare.py: {msg}", file=sys.stderr)
    sys.exit(1)


def write_dataset(path, x, y, classes, name, domain, mean=None, std=None):
    """A nograd dataset file, written to path.tmp and renamed into place."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int32)
    if len(x) == 0:
        fail(f"{path}: no rows left for this split (the domain is too small for the requested sizes)")
    d = int(np.prod(x.shape[1:]))
    rows = min(len(x), max(1, CHUNK_BYTES // (4 * d)))
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        s = h5py.string_dtype("utf-8")
        f.attrs.create("format", FORMAT, dtype=s)
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs.create("name", name, dtype=s)
        f.attrs.create("domain", domain, dtype=s)
        f.attrs["classes"] = np.int64(classes)
        dx = f.create_dataset("x", data=x, chunks=(rows,) + x.shape[1:])
        if mean is not None:
            dx.attrs["mean"] = np.asarray(mean, np.float32).ravel()
            dx.attrs["std"] = np.asarray(std, np.float32).ravel()
        dy = f.create_dataset("y", data=y, chunks=(rows,))
        dy.attrs["classes"] = np.int64(classes)
        dy.attrs["class_counts"] = np.bincount(y, minlength=classes).astype(np.int64)
    os.replace(tmp, path)


def read_dataset(path):
    with h5py.File(path, "r") as f:
        return f["x"][...], f["y"][...]


def nograd_import(nograd, cache, name, args):
    """Runs `nograd data import ARGS --out CACHE/NAME.h5` once (kept in the cache) and returns (x, y)."""
    out = os.path.join(cache, name + ".h5")
    if not os.path.exists(out):
        cmd = [nograd, "data", "import", *args, "--out", out]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            fail(f"{' '.join(cmd)} failed (exit {p.returncode}): {p.stderr.strip()}")
    return read_dataset(out)


def load_heart(data):
    """{hospital: (x with NaN for missing, y, feature names)}; the column choice is made over all hospitals."""
    raw = {}
    for h in DOMAINS["heart"]:
        path = os.path.join(data, "heart_disease", f"processed.{h}.data")
        rows = []
        with open(path) as fh:
            for i, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                fields = line.strip().split(",")
                if len(fields) != 14:
                    fail(f"{path}:{i}: {len(fields)} fields, expected 14")
                try:
                    rows.append([np.nan if v.strip() == "?" else float(v) for v in fields])
                except ValueError as e:
                    fail(f"{path}:{i}: {e}")
        a = np.array(rows, dtype=np.float64)
        chol = HEART_COLUMNS.index("chol")
        a[a[:, chol] == 0, chol] = np.nan  # chol == 0 is a missing measurement, not a value
        raw[h] = a
    every = np.concatenate(list(raw.values()))
    missing = np.isnan(every[:, :13]).mean(axis=0)
    keep = [j for j in range(13) if missing[j] <= HEART_DROP_FRACTION]
    dropped = {HEART_COLUMNS[j]: round(float(missing[j]), 3) for j in range(13) if j not in keep}
    out = {h: (a[:, keep], (a[:, 13] > 0).astype(np.int32)) for h, a in raw.items()}
    note = (f"heart: '?' and chol == 0 are missing; dropped the columns missing in more than "
            f"{HEART_DROP_FRACTION:.0%} of all {len(every)} rows: "
            + ", ".join(f"{c} ({v:.0%})" for c, v in dropped.items())
            + "; the other missing values are filled with the pooled source train mean")
    return out, [HEART_COLUMNS[j] for j in keep], note


def load_wine(data, nograd, cache):
    out = {}
    for colour in ["red", "white"]:
        path = os.path.join(data, "wine_quality", f"winequality-{colour}.csv")
        out[colour] = nograd_import(nograd, cache, f"wine-{colour}",
                                    ["csv", path, "--delim", ";", "--header", "--label", "quality", "--label-map",
                                     "ge:6", "--classes", "2", "--name", "wine_quality", "--domain", colour])
    x, y = out.pop("white")
    alcohol = 10  # the 11th column of winequality.names
    median = float(np.median(x[:, alcohol]))
    low = x[:, alcohol] < median
    out["white_low"] = (x[low], y[low])
    out["white_high"] = (x[~low], y[~low])
    note = (f"wine: label quality >= 6; white split at its median alcohol {median:g}: "
            f"white_low {int(low.sum())} rows (alcohol < median), white_high {int((~low).sum())} rows")
    return out, note


def load_digits(data, nograd, cache):
    common = ["--resize", "16x16", "--classes", "10", "--name", "digits"]
    out = {}
    out["mnist"] = nograd_import(nograd, cache, "digits-mnist",
                                 ["idx", os.path.join(data, "mnist_test", "t10k-images-idx3-ubyte.gz"),
                                  os.path.join(data, "mnist_test", "t10k-labels-idx1-ubyte.gz"),
                                  "--value-range", "0,255", "--domain", "mnist", *common])
    out["usps"] = nograd_import(nograd, cache, "digits-usps",
                                ["table", os.path.join(data, "usps_test", "zip.test.gz"), "--shape", "1,16,16",
                                 "--value-range", "-1,1", "--domain", "usps", *common])
    parts = [nograd_import(nograd, cache, f"digits-optdigits-{s}",
                           ["csv", os.path.join(data, "optdigits", f"optdigits.{s}"), "--shape", "1,8,8",
                            "--value-range", "0,16", "--domain", "optdigits", *common]) for s in ("tra", "tes")]
    out["optdigits"] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    note = ("digits: mnist (10000 test images), usps (2007), optdigits (3823 + 1797), all resampled to 1x16x16 in "
            "[0, 1] by nograd data import")
    return out, note


def dedupe(x, y):
    """Drops exact duplicate rows (features and label, NaN equal to NaN), keeping the first of each."""
    flat = np.concatenate([np.nan_to_num(x.reshape(len(x), -1), nan=-1e30), y.reshape(-1, 1)], axis=1)
    _, first = np.unique(flat, axis=0, return_index=True)
    first.sort()
    return x[first], y[first]


def stratified_order(y, seed, key):
    """A permutation of the rows whose every prefix holds each class in proportion (to within one row)."""
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    score = np.empty(len(y))
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        score[idx] = (np.arange(len(idx)) + rng.random(len(idx))) / len(idx)
    return np.argsort(score, kind="stable")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", choices=sorted(DOMAINS))
    ap.add_argument("--data")
    ap.add_argument("--dataset", choices=sorted(DOMAINS))
    ap.add_argument("--target")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out")
    ap.add_argument("--nograd", default="nograd")
    ap.add_argument("--cache", help="where the imported raw domains are kept (default: OUT/../cache)")
    ap.add_argument("--target-train", type=int, default=200)
    ap.add_argument("--target-val", type=int, default=200)
    ap.add_argument("--source-train", type=int, default=3000)
    ap.add_argument("--source-val", type=int, default=500)
    a = ap.parse_args()
    if a.domains:
        print(" ".join(DOMAINS[a.domains]))
        return 0
    for opt in ("data", "dataset", "target", "seed", "out"):
        if getattr(a, opt) is None:
            ap.error(f"--{opt} is required")
    if h5py is None:
        fail("python3-h5py is needed (apt-get install python3-h5py)")
    if a.target not in DOMAINS[a.dataset]:
        fail(f"unknown target '{a.target}' for {a.dataset}: one of {', '.join(DOMAINS[a.dataset])}")
    os.makedirs(a.out, exist_ok=True)
    cache = a.cache or os.path.join(os.path.dirname(os.path.abspath(a.out)), "cache")
    os.makedirs(cache, exist_ok=True)

    if a.dataset == "heart":
        domains, features, note = load_heart(a.data)
        classes, tabular = 2, True
    elif a.dataset == "wine":
        domains, note = load_wine(a.data, a.nograd, cache)
        classes, tabular, features = 2, True, None
    else:
        domains, note = load_digits(a.data, a.nograd, cache)
        classes, tabular, features = 10, False, None
    notes = [note]
    if tabular:
        removed = {}
        for d, (x, y) in list(domains.items()):
            domains[d] = dedupe(x, y)
            removed[d] = len(x) - len(domains[d][0])
        notes.append("exact duplicate rows removed within each domain: "
                     + ", ".join(f"{d} {n}" for d, n in removed.items()))

    # Sources: the validation split first (at most --source-val rows, 20%), then the train split from the rest.
    # When the largest source has more than --source-train rows left, every source is subsampled by the same
    # factor, so that the ratios of the experts' train_rows (the datasize baseline) stay those of the data.
    sources = [d for d in DOMAINS[a.dataset] if d != a.target]
    nval = {d: min(a.source_val, int(0.2 * len(domains[d][1]))) for d in sources}
    avail = {d: len(domains[d][1]) - nval[d] for d in sources}
    factor = min(1.0, a.source_train / max(avail.values()))
    parts = {}  # file stem -> (x, y, domain)
    used = {}
    for d in DOMAINS[a.dataset]:
        x, y = domains[d]
        n = len(y)
        if d == a.target:
            order = stratified_order(y, a.seed, "target:" + d)
            ntr = min(a.target_train, int(0.3 * n))
            nva = min(a.target_val, int(0.2 * n))
            parts["target-train"] = (x[order[:ntr]], y[order[:ntr]], d)
            parts["target-val"] = (x[order[ntr:ntr + nva]], y[order[ntr:ntr + nva]], d)
            parts["target-test"] = (x[order[ntr + nva:]], y[order[ntr + nva:]], d)
            used[d] = {"rows": n, "train": ntr, "val": nva, "test": n - ntr - nva}
        else:
            order = stratified_order(y, a.seed, "source:" + d)
            nva = nval[d]
            ntr = int(round(factor * avail[d]))
            parts[f"src-{d}-val"] = (x[order[:nva]], y[order[:nva]], d)
            parts[f"src-{d}-train"] = (x[order[nva:nva + ntr]], y[order[nva:nva + ntr]], d)
            used[d] = {"rows": n, "train": ntr, "val": nva, "unused": n - ntr - nva}
    for s in ("train", "val"):
        parts[f"pooled-{s}"] = (np.concatenate([parts[f"src-{d}-{s}"][0] for d in sources]),
                                np.concatenate([parts[f"src-{d}-{s}"][1] for d in sources]), "+".join(sources))
    if factor < 1:
        notes.append("sources subsampled for cost: every source's train split keeps the same fraction %.3g of "
                     "its rows so that the largest has %d (%s); rows not used: %s" % (
                         factor, a.source_train, ", ".join(f"{d} {used[d]['train']}" for d in sources),
                         ", ".join(f"{d} {used[d]['unused']}" for d in sources)))

    mean = std = None
    if tabular:
        xp = parts["pooled-train"][0].astype(np.float64)
        fill = np.nanmean(xp, axis=0)
        if np.isnan(fill).any():
            fail("a feature is missing in every pooled source train row")
        nfilled = {}
        for k, (x, y, d) in parts.items():
            x = x.astype(np.float64)
            miss = np.isnan(x)
            nfilled[k] = int(miss.sum())
            x[miss] = np.take(fill, np.nonzero(miss)[1])
            parts[k] = (x, y, d)
        xp = parts["pooled-train"][0]
        mean, std = xp.mean(axis=0), xp.std(axis=0)
        std[std < 1e-12] = 1.0
        for k, (x, y, d) in parts.items():
            parts[k] = ((x - mean) / std, y, d)
        if any(nfilled.values()):
            notes.append("missing values filled with the pooled source train mean: "
                         + ", ".join(f"{k} {v}" for k, v in nfilled.items() if v and not k.startswith("pooled")))
        notes.append("features standardized with the mean and std of the pooled source train split")

    name = {"heart": "heart_disease", "wine": "wine_quality", "digits": "digits"}[a.dataset]
    for k, (x, y, d) in parts.items():
        write_dataset(os.path.join(a.out, k + ".h5"), x, y, classes, name, d, mean, std)
    x0 = parts["target-train"][0]
    info = {"dataset": a.dataset, "target": a.target, "seed": a.seed, "sources": sources,
            "input": list(x0.shape[1:]), "classes": classes, "features": features, "domains": used,
            "train_rows": {d: int(len(parts[f"src-{d}-train"][1])) for d in sources},
            "files": {k: int(len(v[1])) for k, v in parts.items()}, "notes": notes}
    tmp = os.path.join(a.out, "prep.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(info, fh, indent=1)
    os.replace(tmp, os.path.join(a.out, "prep.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
