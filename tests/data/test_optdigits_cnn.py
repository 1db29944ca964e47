#!/usr/bin/env python3
"""Real-data test (CTest label "data"): a small CNN trained with `nograd train` on optdigits.

Usage: test_optdigits_cnn.py NOGRAD DATA_DIR

Imports optdigits.tra and optdigits.tes of DATA_DIR/optdigits with `nograd data import csv` (64 features and
the label in the last column, reshaped to 1x8x8 and scaled from 0..16 to [0, 1]), splits 15% of the training
writers' rows off as a stratified validation set, trains a two-convolution CNN with Adam (early stopping on
the validation loss), and asserts that `nograd eval --json` gives an accuracy >= 0.95 on the test writers.
Prints the accuracy and the training time. Exits 77 (skipped) when DATA_DIR is absent.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

SKIP = 77
SPEC = """# a small CNN for 8x8 digits
input 1 8 8
conv2d conv1 16 3 padding=1
relu
maxpool 2
conv2d conv2 32 3 padding=1
relu
flatten
dense fc1 64
relu
dense fc2 10
"""


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    nograd, data = sys.argv[1], os.path.abspath(sys.argv[2])
    src = os.path.join(data, "optdigits")
    if not os.path.isfile(os.path.join(src, "optdigits.tra")):
        print(f"SKIP: the real datasets are not here ({src} is absent); nothing to test")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="ng_optdigits_cnn_")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")

    def run(*args):
        p = subprocess.run([nograd, *args], capture_output=True, text=True, timeout=150, env=env)
        if p.returncode != 0:
            print(f"FAIL: nograd {' '.join(args)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
            sys.exit(1)
        return p

    t = lambda name: os.path.join(tmp, name)  # noqa: E731
    for split in ("tra", "tes"):
        run("data", "import", "csv", os.path.join(src, f"optdigits.{split}"), "--shape", "1,8,8", "--value-range",
            "0,16", "--out", t(f"optdigits_{split}.h5"), "--domain", "optdigits")
    run("data", "split", t("optdigits_tra.h5"), "--train", "0.85", "--val", "0.15", "--seed", "1", "--out-prefix",
        t("od"))
    with open(t("cnn.spec"), "w") as f:
        f.write(SPEC)
    t0 = time.time()
    p = run("train", "--train", t("od-train.h5"), "--val", t("od-val.h5"), "--spec", t("cnn.spec"), "--out",
            t("cnn.h5"), "--optimizer", "adam", "--lr", "0.001", "--batch", "32", "--epochs", "20", "--patience", "5",
            "--seed", "1", "--json")
    seconds = time.time() - t0
    sys.stderr.write(p.stderr)
    res = json.loads(p.stdout)
    ev = json.loads(run("eval", t("cnn.h5"), t("optdigits_tes.h5"), "--metric", "accuracy,macro_f1", "--json").stdout)
    print(f"optdigits CNN: {res['epochs']} epochs (best {res['best_epoch']}), val accuracy {res['val_accuracy']:.4f},"
          f" test accuracy {ev['accuracy']:.4f} on {ev['n']} rows, macro F1 {ev['macro_f1']:.4f},"
          f" training {seconds:.1f} s")
    ok = ev["n"] == 1797 and ev["accuracy"] >= 0.95
    print(("ok   " if ok else "FAIL ") + f"test accuracy {ev['accuracy']:.4f} >= 0.95 on 1797 rows")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
