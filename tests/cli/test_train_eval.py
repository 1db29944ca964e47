#!/usr/bin/python3
"""Command-line tests of `nograd train` and `nograd eval` on small generated datasets.

Usage: test_train_eval.py NOGRAD [MPIRUN]

Writes 3-class and 2-class Gaussian-blob datasets with tools/nograd_torch.py's save_dataset, then checks:
train an MLP from a spec to > 90% validation accuracy in a few seconds, with the attributes classes and
train_rows and the same weights for the same seed (also under mpirun -n 2); --init-from continues from a
model; eval's JSON has its keys, and its loss and metrics match a recomputation in Python from the logits of
nograd_torch.load(model) within 1e-5; eval is bit-identical for P = 1, 2, 3; bad input (a tensor missing from
the model, a wrong input shape, a label outside the model's classes, NaN weights, a bad spec) gives one message
naming the file and HDF5 path or row, exit code 1, and no output file. Exits 77 (skipped) without torch.
"""
import json
import os
import re
import sys
import tempfile
import time

NOGRAD = sys.argv[1]
MPIRUN = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
TIMEOUT = 60
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
try:
    import h5py
    import numpy as np
    import torch
    import nograd_torch as nt
except ImportError as e:
    print("SKIP: %s (needs python3-numpy, python3-h5py and python3-torch)" % e)
    sys.exit(77)

sys.path.insert(0, HERE)
import clitest  # noqa: E402
from clitest import check, failures, run  # noqa: E402


def json_line(args, mpi=0, what=None):
    code, out, err = run(args, mpi)
    what = what or " ".join(args)
    check(code == 0, "%s: exit 0 (got %d, stderr %r)" % (what, code, err[-500:]))
    lines = out.splitlines()
    if not check(len(lines) == 1, "%s: one line on stdout (got %r)" % (what, out)):
        return None, None
    return json.loads(lines[0]), lines[0]


def raw(line, key):
    m = re.search(r'"%s":([^,}]*)' % re.escape(key), line)
    return m.group(1) if m else None


CENTERS = np.array([[0, 0, 0, 0], [3, 0, 0, 3], [0, 3, 3, 0]], float)


def blobs(n, seed, classes=3):
    r = np.random.default_rng(seed)
    y = r.integers(0, classes, n)
    x = CENTERS[y] + r.normal(size=(n, 4))
    return x.astype(np.float32), y.astype(np.int32)


def params(path):
    with h5py.File(path, "r") as f:
        return f["/model/params"][...], dict(f["/model"].attrs)


def python_metrics(model_path, data_path, threshold=0.5):
    """Loss and metrics recomputed from the logits of the PyTorch model."""
    m = nt.load(model_path)
    m.eval()
    x, y, _ = nt.load_dataset(data_path)
    with torch.no_grad():
        logits = m(x).double()
    y = y.numpy()
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y)).item()
    pred = logits.argmax(1).numpy()
    k = logits.shape[1]
    recall, f1 = [], []
    for c in range(k):
        tp, t, p = np.sum((pred == c) & (y == c)), np.sum(y == c), np.sum(pred == c)
        if t:
            recall.append(tp / t)
        if t or p:
            f1.append(2 * tp / (t + p))
    out = {"loss": loss, "accuracy": float(np.mean(pred == y)), "error": float(np.mean(pred != y)),
           "balanced_error": 1 - float(np.mean(recall)), "macro_f1": float(np.mean(f1))}
    if k == 2:
        prob1 = torch.softmax(logits, 1)[:, 1].numpy()
        out["threshold_error"] = float(np.mean((prob1 >= threshold).astype(int) != y))
    out["top5_error"] = 0.0 if k <= 5 else None
    return out


def no_output(path, what):
    check(not os.path.exists(path) and not os.path.exists(path + ".tmp"), "%s: no output file left" % what)


def bad(args, what, patterns, mpi=0):
    code, out, err = run(args, mpi)
    # under mpirun, count only nograd's lines (mpirun adds its own banner about the exit code)
    lines = [line for line in err.splitlines() if line.strip() and (not mpi or line.startswith("nograd"))]
    check(clitest.code_ok(code, 1, mpi), "%s: exit 1 (got %d)" % (what, code))
    check(len(lines) == 1, "%s: one line on stderr (got %r)" % (what, err))
    for p in patterns:
        check(p in err, "%s: the message names %r (%r)" % (what, p, err.strip()))


def main():
    tmp = tempfile.mkdtemp(prefix="ng_train_eval_")
    f = lambda name: os.path.join(tmp, name)  # noqa: E731
    for name, n, seed in (("train.h5", 1500, 1), ("val.h5", 500, 2), ("test.h5", 1000, 3)):
        x, y = blobs(n, seed)
        nt.save_dataset(x, y, f(name), chunk_rows=100)
    for name, n, seed in (("bin_train.h5", 800, 4), ("bin_test.h5", 400, 5)):
        x, y = blobs(n, seed, classes=2)
        nt.save_dataset(x, y, f(name), chunk_rows=64)
    with open(f("mlp.spec"), "w") as s:
        s.write("# a small MLP\ninput 4\ndense fc1 32\nrelu\ndropout 0.1\ndense fc2 3\n")
    with open(f("bin.spec"), "w") as s:
        s.write("input 4\ndense fc1 16\ntanh\ndense fc2 2\n")

    # help
    for cmd, opts in (("train", ["--train", "--val", "--spec", "--init-from", "--out", "--optimizer", "--lr",
                                 "--momentum", "--weight-decay", "--batch", "--epochs", "--patience", "--seed",
                                 "--loss", "--json", "--quiet"]),
                      ("eval", ["--metric", "--threshold", "--batch", "--chunk-rows", "--json"])):
        code, out, _ = run([cmd, "--help"])
        check(code == 0 and all(o in out for o in opts), "%s --help lists every option" % cmd)
    code, _, err = run(["train", "--train", f("train.h5"), "--out", f("x.h5")])
    check(code == 2 and "--spec" in err, "train without --spec or --init-from: usage error naming them")
    code, _, err = run(["eval", f("m.h5"), f("test.h5"), "--metric", "accuracy,bogus"])
    check(code == 2 and "bogus" in err, "eval --metric bogus: usage error naming it")

    # train from a spec
    t0 = time.time()
    train = ["train", "--train", f("train.h5"), "--val", f("val.h5"), "--spec", f("mlp.spec"), "--epochs", "10",
             "--seed", "3", "--json"]
    res, _ = json_line(train + ["--out", f("m.h5")], what="train (SGD)")
    secs = time.time() - t0
    if res:
        for key in ("epochs", "best_epoch", "train_loss", "val_loss", "val_accuracy", "seconds"):
            check(key in res, "train --json has %r" % key)
        check(res["val_accuracy"] > 0.9, "SGD: val accuracy %.4f > 0.9" % res["val_accuracy"])
        check(1 <= res["best_epoch"] <= res["epochs"] <= 10, "best epoch within the epochs run")
    check(secs < 10, "training took %.2f s < 10 s" % secs)
    p1, attrs = params(f("m.h5"))
    check(int(attrs.get("classes", -1)) == 3 and int(attrs.get("train_rows", -1)) == 1500,
          "model attributes classes 3, train_rows 1500 (%r)" % attrs)
    json_line(train + ["--out", f("m_again.h5"), "--quiet"], what="train again")
    check(np.array_equal(p1, params(f("m_again.h5"))[0]), "same seed: the same weights")
    code, _, err = run(train + ["--out", f("m_progress.h5")])
    check(len(re.findall(r"^epoch +\d+ +train_loss", err, re.M)) >= 1, "progress lines on stderr without --quiet")
    res_adam, _ = json_line(["train", "--train", f("train.h5"), "--val", f("val.h5"), "--spec", f("mlp.spec"),
                             "--optimizer", "adam", "--lr", "0.01", "--epochs", "10", "--weight-decay", "1e-4",
                             "--out", f("m_adam.h5"), "--json", "--quiet"], what="train (Adam)")
    if res_adam:
        check(res_adam["val_accuracy"] > 0.9, "Adam: val accuracy %.4f > 0.9" % res_adam["val_accuracy"])
    if MPIRUN:
        json_line(train + ["--out", f("m_mpi.h5"), "--quiet"], mpi=2, what="train under mpirun -n 2")
        check(np.array_equal(p1, params(f("m_mpi.h5"))[0]), "mpirun -n 2: the same weights as one process")
    else:
        print("SKIP: no mpirun; the MPI checks are not run")

    # --init-from continues: its first epoch starts from the trained weights
    json_line(["train", "--train", f("train.h5"), "--spec", f("mlp.spec"), "--epochs", "1", "--lr", "0.002",
               "--out", f("short.h5"), "--quiet", "--json"], what="short training")
    _, out_short = json_line(["eval", f("short.h5"), f("test.h5"), "--json"])
    cont, _ = json_line(["train", "--train", f("train.h5"), "--init-from", f("short.h5"), "--epochs", "3",
                         "--lr", "0.002", "--out", f("cont.h5"), "--json", "--quiet"], what="train --init-from")
    _, out_cont = json_line(["eval", f("cont.h5"), f("test.h5"), "--json"])
    if out_short and out_cont:
        check(json.loads(out_cont)["loss"] < json.loads(out_short)["loss"],
              "--init-from: the test loss fell (%s -> %s)" % (raw(out_short, "loss"), raw(out_cont, "loss")))
    _, ca = params(f("cont.h5"))
    check(int(ca.get("train_rows", -1)) == 1500, "--init-from: train_rows written")

    # eval: keys and values against Python
    metrics = "accuracy,error,balanced_error,macro_f1,top5_error"
    res, line = json_line(["eval", f("m.h5"), f("test.h5"), "--metric", metrics, "--json"], what="eval")
    if res:
        for key in ["loss", "n", "samples_per_s"] + metrics.split(","):
            check(key in res, "eval --json has %r" % key)
        check(res["n"] == 1000, "eval n = 1000")
        check(res["samples_per_s"] > 0, "samples_per_s > 0")
        ref = python_metrics(f("m.h5"), f("test.h5"))
        for key in ["loss"] + metrics.split(","):
            check(abs(res[key] - ref[key]) <= 1e-5, "eval %s %.8f vs Python %.8f" % (key, res[key], ref[key]))
    json_line(["train", "--train", f("bin_train.h5"), "--spec", f("bin.spec"), "--epochs", "5", "--out",
               f("bin.h5"), "--json", "--quiet"], what="train a binary model")
    res, _ = json_line(["eval", f("bin.h5"), f("bin_test.h5"), "--metric", "threshold_error,accuracy",
                        "--threshold", "0.3", "--json"], what="eval threshold_error")
    if res:
        ref = python_metrics(f("bin.h5"), f("bin_test.h5"), 0.3)
        for key in ("loss", "threshold_error", "accuracy"):
            check(abs(res[key] - ref[key]) <= 1e-5, "binary eval %s %.8f vs Python %.8f" % (key, res[key], ref[key]))
    code, _, err = run(["eval", f("m.h5"), f("test.h5"), "--metric", "threshold_error"])
    check(code == 2 and "threshold_error" in err, "threshold_error on 3 classes: usage error")

    # eval: the same bits for P = 1, 2, 3 (chunks of 100 rows, batches of 32 within each chunk)
    if MPIRUN:
        args = ["eval", f("m.h5"), f("test.h5"), "--metric", metrics, "--chunk-rows", "100", "--batch", "32", "--json"]
        lines = {p: json_line(args, mpi=p, what="eval -n %d" % p)[1] for p in (1, 2, 3)}
        if all(lines.values()):
            for key in ["loss", "n"] + metrics.split(","):
                vals = {raw(lines[p], key) for p in lines}
                check(len(vals) == 1, "eval %s bit-identical for P = 1, 2, 3 (%s)" % (key, vals))

    # bad input
    import shutil
    shutil.copy(f("m.h5"), f("missing.h5"))
    with h5py.File(f("missing.h5"), "r+") as h:
        names = h["/model/index/names"][...]
        names[2] = b"fc9.weight"
        h["/model/index/names"][...] = names
    clitest.reseal(f("missing.h5"))
    shutil.copy(f("m.h5"), f("nan.h5"))
    with h5py.File(f("nan.h5"), "r+") as h:
        a = h["/model/params"][...]
        a[40] = np.nan
        h["/model/params"][...] = a
    clitest.reseal(f("nan.h5"))
    x = np.random.default_rng(0).normal(size=(50, 5)).astype(np.float32)
    nt.save_dataset(x, (np.arange(50) % 3).astype(np.int32), f("wide.h5"))
    x, y = blobs(300, 9)
    y[250] = 4
    nt.save_dataset(x, y, f("badlabel.h5"), chunk_rows=50)
    bad(["eval", f("missing.h5"), f("test.h5")], "eval: a tensor missing", ["missing.h5", "/model/index", "fc2.weight"])
    bad(["eval", f("nan.h5"), f("test.h5")], "eval: NaN weights", ["nan.h5", "/model/params", "fc1.weight"])
    bad(["eval", f("m.h5"), f("wide.h5")], "eval: wrong input shape", ["m.h5", "wide.h5", " 4 ", " 5"])
    bad(["eval", f("m.h5"), f("badlabel.h5")], "eval: label outside the classes", ["badlabel.h5", "row 250"])
    if MPIRUN:
        bad(["eval", f("m.h5"), f("badlabel.h5"), "--chunk-rows", "50"], "eval -n 2: label outside the classes",
            ["badlabel.h5", "row 250"], mpi=2)
        bad(["eval", f("nan.h5"), f("test.h5")], "eval -n 3: NaN weights", ["nan.h5", "fc1.weight"], mpi=3)
    out = f("never.h5")
    for args, what, pats in (
            (["--init-from", f("missing.h5")], "train: a tensor missing", ["missing.h5", "fc2.weight"]),
            (["--init-from", f("nan.h5")], "train: NaN weights", ["nan.h5", "fc1.weight"]),
            (["--spec", f("mlp.spec"), "--val", f("wide.h5")], "train: wrong input shape", ["wide.h5", " 4 ", " 5"]),
            (["--spec", f("mlp.spec"), "--val", f("badlabel.h5")], "train: label outside the classes",
             ["badlabel.h5", "row 250"]),
            (["--spec", f("nope.spec")], "train: no spec file", ["nope.spec"])):
        bad(["train", "--train", f("train.h5"), "--out", out, "--quiet"] + args, what, pats)
        no_output(out, what)
    with open(f("bad.spec"), "w") as s:
        s.write("input 4\ndense fc1\n")
    bad(["train", "--train", f("train.h5"), "--spec", f("bad.spec"), "--out", out], "train: bad spec",
        ["bad.spec", "line 2"])
    no_output(out, "train: bad spec")
    bad(["train", "--train", f("absent.h5"), "--spec", f("mlp.spec"), "--out", out], "train: no dataset",
        ["absent.h5"])
    no_output(out, "train: no dataset")
    if MPIRUN:
        bad(["train", "--train", f("wide.h5"), "--spec", f("mlp.spec"), "--out", out], "train -n 2: wrong shape",
            ["wide.h5"], mpi=2)
        no_output(out, "train -n 2: wrong shape")

    if failures:
        print("%d FAILED" % len(failures))
        return 1
    print("all passed")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
