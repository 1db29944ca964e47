#!/usr/bin/env python3
"""The Python side of the retrofit experiment (tools/retrofit_experiment.sh): the validation pool, one row a
seed, and the tables.

Usage: retrofit_report.py pool PREP_DIR
       retrofit_report.py collect RUN_DIR --dataset D --source S --target T --seed K --prep PREP_DIR
                          --train-json FILE --config FILE
       retrofit_report.py report OUTDIR

pool     writes PREP_DIR/target-pool.h5: the target's train and validation splits of tools/glue_prepare.py
         concatenated (train rows first). Retrofit draws its validation rows from this pool; the target's test
         split (target-test.h5) is never touched until the before/after measurement. Nothing is trained on the
         target domain, so the pool is all of the target's rows that are not held out.
collect  reads RUN_DIR/retrofit.json (the JSON line of `nograd retrofit --json`), the training JSON and
         RUN_DIR/seconds, and writes RUN_DIR/results.csv (a header and one row, to a temporary file renamed into
         place: it is written last, so the experiment script takes a seed with a results.csv as complete).
report   gathers OUTDIR/runs/*/*/seed*/results.csv into OUTDIR/results.csv and writes OUTDIR/results.md: per
         (dataset, source, target) the mean +- std over seeds of the validation and test metrics before and
         after, the mean test change, how many seeds improved, tied or got worse on test (and a two-sided sign
         test over the seeds that did not tie), the mean bound, and the wall time; then one line per dataset
         over all its settings, and every seed.
"""
import argparse
import csv
import glob
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ["dataset", "source", "target", "seed", "params", "metric", "budget", "evaluations", "lambda",
           "generations", "val_rows", "test_rows", "val_before", "val_after", "test_before", "test_after", "bound",
           "log_outputs", "delta", "kept_start", "source_val_error", "train_seconds", "retrofit_seconds", "seconds"]
TIME_COLUMNS = ["train_seconds", "retrofit_seconds", "seconds"]  # the only columns that differ between reruns


def fail(msg):
    print(f"retrofit_report.py: {msg}", file=sys.stderr)
    sys.exit(1)


def pool(prep):
    sys.path.insert(0, HERE)
    import glue_prepare  # the same dataset writer as the rest of the prepared files
    import h5py
    import numpy as np

    xs, ys, attrs = [], [], None
    for part in ("target-train", "target-val"):
        path = os.path.join(prep, part + ".h5")
        try:
            with h5py.File(path, "r") as f:
                xs.append(f["x"][...])
                ys.append(f["y"][...])
                if attrs is None:
                    attrs = (int(f.attrs["classes"]), str(f.attrs["name"]), str(f.attrs["domain"]),
                             f["x"].attrs.get("mean"), f["x"].attrs.get("std"))
        except (OSError, KeyError) as e:
            fail(f"{path}: {e} (delete {prep} to prepare the data again)")
    classes, name, domain, mean, std = attrs
    glue_prepare.write_dataset(os.path.join(prep, "target-pool.h5"), np.concatenate(xs), np.concatenate(ys),
                               classes, name, domain, mean, std)


def read_json(path):
    """A JSON file, or the last line of a file of JSON lines (nograd's --json output)."""
    try:
        with open(path) as f:
            text = f.read()
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return json.loads(text.strip().splitlines()[-1])
    except (OSError, IndexError, json.JSONDecodeError) as e:
        fail(f"{path}: no JSON result ({e})")


def number(v):
    if v is None:
        return "nan"
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


def collect(a):
    r = read_json(os.path.join(a.run, "retrofit.json"))
    t = read_json(a.train_json)
    prep = read_json(os.path.join(a.prep, "prep.json"))
    cfg = {}
    with open(a.config) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                cfg[k] = v
    with open(os.path.join(a.run, "seconds")) as f:
        seconds = float(f.read())
    row = {
        "dataset": a.dataset, "source": a.source, "target": a.target, "seed": str(a.seed),
        "params": cfg["params"], "metric": r["metric"], "budget": cfg["budget"],
        "evaluations": number(r["evaluations"]), "lambda": number(r["lambda"]),
        "generations": number(r["generations"]), "val_rows": number(r["val_rows"]),
        "test_rows": number(prep["files"]["target-test"]),
        "val_before": number(r["val_before"]), "val_after": number(r["val_after"]),
        "test_before": number(r["test_before"]), "test_after": number(r["test_after"]),
        "bound": number(r["bound"]), "log_outputs": number(r["log_outputs"]), "delta": number(r["delta"]),
        "kept_start": number(bool(r["kept_start"])),
        "source_val_error": number(1 - t["val_accuracy"]),
        "train_seconds": "%.3f" % t["seconds"], "retrofit_seconds": "%.3f" % r["seconds"],
        "seconds": "%.3f" % seconds,
    }
    out = os.path.join(a.run, "results.csv")
    with open(out + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerow(row)
    os.replace(out + ".tmp", out)


def mean_std(v):
    v = [x for x in v if math.isfinite(x)]
    if not v:
        return float("nan"), float("nan")
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, s


def sign_test(wins, losses):
    """Two-sided exact sign test over the seeds that did not tie: P(a split at least this uneven | p = 1/2)."""
    n = wins + losses
    if n == 0:
        return float("nan")
    k = min(wins, losses)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def summary(rows):
    f = {c: [float(r[c]) for r in rows] for c in ("val_before", "val_after", "test_before", "test_after", "bound",
                                                  "seconds", "evaluations", "val_rows")}
    diff = [a - b for a, b in zip(f["test_after"], f["test_before"])]
    better = sum(d < 0 for d in diff)
    worse = sum(d > 0 for d in diff)
    return f, diff, better, len(diff) - better - worse, worse


def fmt(m_s, digits=3):
    m, s = m_s
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def report(outdir):
    rows = []
    for path in sorted(glob.glob(os.path.join(outdir, "runs", "*", "*", "seed*", "results.csv"))):
        with open(path) as f:
            rd = csv.DictReader(f)
            if rd.fieldnames != COLUMNS:
                fail(f"{path}: columns {rd.fieldnames}, expected {COLUMNS} (delete it to run that seed again)")
            rows.extend(rd)
    if not rows:
        fail(f"{outdir}/runs: no finished seed (no results.csv)")
    order = {"digits": 0, "heart": 1}
    rows.sort(key=lambda r: (order.get(r["dataset"], 9), r["dataset"], r["target"], int(r["seed"])))
    tmp = os.path.join(outdir, "results.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, os.path.join(outdir, "results.csv"))

    settings = {}
    for r in rows:
        settings.setdefault((r["dataset"], r["source"], r["target"]), []).append(r)
    lines = ["# Retrofit on real data (tools/retrofit_experiment.sh)", ""]
    cmd = os.path.join(outdir, "command")
    if os.path.exists(cmd):
        with open(cmd) as f:
            cmds = list(dict.fromkeys(ln.rstrip() for ln in f if ln.strip()))
        lines += ["Commands that wrote this directory:", "", "```"] + cmds + ["```", ""]
    for cfg in sorted(glob.glob(os.path.join(outdir, "config-*"))):
        with open(cfg) as f:
            lines += [f"Configuration ({os.path.basename(cfg)}):", "", "```"] + [ln.rstrip() for ln in f] + ["```", ""]
    lines += [
        "Mean ± std over seeds. *val* is the metric on the retrofit's validation rows (drawn from the target "
        "domain), *test* on the target's held-out rows, never seen by training or retrofit. *change* is test "
        "after - test before (negative is better); *better / tie / worse* counts seeds by that sign, and *p* is "
        "the two-sided sign test over the seeds that did not tie. The bound is the |validation - true| of "
        "`nograd retrofit` with probability 0.95; above 1 it says nothing.", "",
        "| dataset | source → target | metric | seeds | val rows | evals | val before | val after | test before "
        "| test after | change | better / tie / worse | p | bound | s per seed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def table_row(name, metric, rs):
        f, diff, better, tie, worse = summary(rs)
        return (f"| {name} | {metric} | {len(rs)} | {mean_std(f['val_rows'])[0]:.0f} | "
                f"{mean_std(f['evaluations'])[0]:.0f} | {fmt(mean_std(f['val_before']))} | "
                f"{fmt(mean_std(f['val_after']))} | {fmt(mean_std(f['test_before']))} | "
                f"{fmt(mean_std(f['test_after']))} | {fmt(mean_std(diff))} | {better} / {tie} / {worse} | "
                f"{sign_test(better, worse):.3g} | {mean_std(f['bound'])[0]:.3f} | {mean_std(f['seconds'])[0]:.1f} |")

    for (ds, src, tgt), rs in settings.items():
        lines.append(table_row(f"{ds} | {src} → {tgt}", rs[0]["metric"], rs))
    per_ds = {}
    for (ds, _, _), rs in settings.items():
        per_ds.setdefault(ds, []).extend(rs)
    for ds, rs in per_ds.items():
        if len({r["target"] for r in rs}) > 1:
            lines.append(table_row(f"**{ds}** | **every target**", rs[0]["metric"], rs))
    total = sum(float(r["seconds"]) for r in rows)
    lines += ["", f"Wall time of all {len(rows)} seeds: {total:.1f} s (training, retrofit and measurement, without "
              "the data preparation; the digits model of a seed is trained once, in its first target's time).", ""]

    lines += ["## Every seed", "",
              "| dataset | source → target | seed | val before | val after | test before | test after | bound | "
              "evals | kept start |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['source']} → {r['target']} | {r['seed']} | "
                     f"{float(r['val_before']):.4f} | {float(r['val_after']):.4f} | {float(r['test_before']):.4f} | "
                     f"{float(r['test_after']):.4f} | {float(r['bound']):.3f} | {r['evaluations']} | "
                     f"{'yes' if r['kept_start'] == '1' else 'no'} |")
    lines += ["", "## Checks", ""]
    ok = all(float(r["val_after"]) <= float(r["val_before"]) for r in rows)
    lines.append(f"- val after <= val before in every seed: {'yes' if ok else 'NO'}")
    ok = all(int(r["evaluations"]) <= int(r["budget"]) for r in rows)
    lines.append(f"- evaluations within the budget in every seed: {'yes' if ok else 'NO'}")
    vac = sum(float(r["bound"]) > 1 for r in rows)
    lines.append(f"- seeds whose bound is above 1 (vacuous): {vac} of {len(rows)}")
    for ds, rs in per_ds.items():
        _, diff, better, tie, worse = summary(rs)
        m = mean_std(diff)[0]
        lines.append(f"- {ds}: held-out test metric {'lower' if m < 0 else 'not lower'} after retrofit on average "
                     f"({m:+.4f} over {len(rs)} runs; {better} better, {tie} tied, {worse} worse)")
    tmp = os.path.join(outdir, "results.md.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(outdir, "results.md"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pool")
    p.add_argument("prep")
    p = sub.add_parser("collect")
    p.add_argument("run")
    for o in ("--dataset", "--source", "--target", "--prep", "--train-json", "--config"):
        p.add_argument(o, required=True)
    p.add_argument("--seed", type=int, required=True)
    p = sub.add_parser("report")
    p.add_argument("outdir")
    a = ap.parse_args()
    if a.cmd == "pool":
        pool(a.prep)
    elif a.cmd == "collect":
        collect(a)
    else:
        report(a.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
