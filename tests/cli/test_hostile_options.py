#!/usr/bin/python3
"""Hostile command lines (issue #14): values at the edge of their type are refused with one line naming the
option, never wrapped, narrowed or cast into something else.

Usage: test_hostile_options.py NOGRAD [MPIRUN]

Each case is a command line that nograd 0.1 accepted and then ran with another value, or with an allocation
whose size had wrapped: --dim and --popsize near 2^61, train and eval --batch near 2^61, more than 32 --param
options, --param maxiter=1e300 or -5, --checkpoint-every 1e19, --max-restarts 2^32+1, --groups 2^32+2,
inspect --last 2^32, data import --shape whose product wraps, --resize larger than int, --classes beyond
int32, --label of the most negative integer (undefined behaviour in 0.1, which the sanitizer build
catches), and an exec evaluator that never answers HELLO (0.1 waited 60 s whatever --eval-timeout said). Each must exit with status 2 (a bad command line) or 1 (a runtime error that names the value), print
one line on stderr naming the option, and finish within seconds.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import check, failures, run  # noqa: E402

clitest.TIMEOUT = 30

BIG = "2305843009213693952"  # 2^61: times 8 bytes wraps to 0


def refused(args, words, codes=(2,)):
    """Runs nograd with args; it must exit with one of codes and its stderr name every one of words."""
    name = " ".join(a if len(a) < 40 else a[:37] + "..." for a in args)
    name = name if len(name) < 200 else name[:197] + "..."
    try:
        code, out, err = run(args)
    except Exception as e:  # a hang (timeout) or a crash of the harness
        check(False, "%s: %s" % (name, e))
        return
    lines = [line for line in err.splitlines() if line.strip()]
    ok = code in codes and all(w in err for w in words)
    check(ok, "%s: exit %d (want %s), stderr %r names %r" % (name, code, codes, err.strip()[:300], words))
    check(code in codes and len(lines) == 1, "%s: one line on stderr, got %d" % (name, len(lines)))


with tempfile.TemporaryDirectory() as tmp:
    sphere = ["minimize", "--function", "sphere", "--dim", "3", "--max-evals", "60", "--quiet"]
    refused(["minimize", "--function", "sphere", "--dim", BIG], ["--dim", "2147483647"])
    refused(sphere + ["--popsize", BIG], ["--popsize", "2147483647"])
    refused(sphere + ["--param", "maxiter=1e300"], ["maxiter", "1e+300"])
    refused(sphere + ["--param", "maxiter=-5"], ["maxiter", "-5"])
    refused(sphere + ["--param", "tolstagnation=1e300"], ["tolstagnation"])
    refused(sphere + ["--param", "tolflatfitness=4294967297"], ["tolflatfitness"])
    many = []
    for i in range(33):
        many += ["--param", "tolx=1e-%d" % (i % 9 + 1)]
    refused(sphere + many, ["--param", "32"])
    many = []
    for i in range(65):
        many += ["--param", "tolx=1"]
    refused(sphere + many, ["--param", "64"])
    ck = os.path.join(tmp, "c.h5")
    refused(sphere + ["--checkpoint", ck, "--checkpoint-every", "1e19"], ["--checkpoint-every", "1e19"])
    refused(sphere + ["--max-restarts", "4294967297"], ["--max-restarts", "4294967297"])
    refused(sphere + ["--groups", "4294967298"], ["--groups", "4294967298"])

    # A small checkpoint and dataset to point the other commands at.
    code, _, err = run(sphere + ["--checkpoint", ck])
    check(code == 0, "the checkpoint for inspect: exit %d, %r" % (code, err))
    refused(["inspect", ck, "--last", "4294967296"], ["--last", "4294967296"])
    data = os.path.join(tmp, "d.h5")
    synth, spec, model = os.path.join(tmp, "s.h5"), os.path.join(tmp, "spec.txt"), os.path.join(tmp, "m.h5")
    code, _, err = run(["data", "synth", "vectors", "--domain", "upright", "--rows", "40", "--dim", "6",
                        "--classes", "2", "--out", synth])
    check(code == 0, "data synth: exit %d, %r" % (code, err))
    with open(spec, "w") as f:
        f.write("input 6\ndense fc 2\n")
    code, _, err = run(["train", "--spec", spec, "--train", synth, "--epochs", "1", "--quiet", "--out", model])
    check(code == 0, "train: exit %d, %r" % (code, err))
    refused(["train", "--spec", spec, "--train", synth, "--batch", BIG, "--out", model], ["--batch", "2147483647"])
    refused(["eval", model, synth, "--batch", BIG], ["--batch", "2147483647"])

    csv = os.path.join(tmp, "t.csv")
    with open(csv, "w") as f:
        for i in range(8):
            f.write("%d,%d,%d,%d,%d\n" % (i, i + 1, i + 2, i + 3, i % 2))
    imp = ["data", "import", "csv", csv, "--out", data]
    # 4 features: 2^32 x 2^32 x 4 wraps to 0 in 64 bits
    refused(imp + ["--shape", "4294967296,4294967296,4"], ["--shape"])
    refused(imp + ["--shape", "1e300,1,4"], ["--shape"])
    refused(imp + ["--shape", "1.5,2,2"], ["--shape"])
    refused(imp + ["--shape", "1,2,2", "--resize", "4294967296x4294967296"], ["--resize"])
    refused(imp + ["--shape", "1,2,2", "--resize", "65536x65536"], ["--resize"], codes=(1,))
    refused(imp + ["--classes", "4294967296"], ["--classes", "2147483647"])
    refused(imp + ["--label", "-9223372036854775808"], ["label column -9223372036854775808"], codes=(1,))
    refused(imp + ["--label", "9223372036854775808"], ["9223372036854775808"], codes=(1, 2))

# An exec evaluator that never answers HELLO: --eval-timeout bounds its start too (nograd 0.1 waited 60 s).
t0 = time.time()
refused(["retrofit", "--evaluator", "exec:/bin/sleep 100", "--dim", "2", "--eval-timeout", "1", "--max-restarts",
         "0", "--budget", "10", "--quiet"], ["timed out after 1 s"], codes=(1,))
check(time.time() - t0 < 15, "a program that never answers HELLO costs --eval-timeout, not 60 s: %.1f s" %
      (time.time() - t0))

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
