#!/usr/bin/python3
"""Mutated files of each kind end in a message naming the file, within seconds, never in a crash or a hang
(issue #14; src/io/seal.h).

Usage: test_mutations.py NOGRAD [MPIRUN]

A checkpoint, a model and a dataset are written by nograd, then mutated with a fixed seed (random bytes, bit
flips, runs of 0xff, 0x00 or extreme integers, deleted spans): N of each kind with nograd's header kept (the
content no longer matches its CRC-32) and N with the header removed (what another tool or nograd 0.1 writes),
N = $NOGRAD_MUTATIONS (default 1000), seed $NOGRAD_MUTATION_SEED (default 14). `nograd verify` checks them in
batches, with the checking process's time limit at 2 s (NOGRAD_PROBE_TIMEOUT): every file gets one line, "ok"
or "FAILED: " and a message naming it; a mutated file with the header is always refused as damaged without
libhdf5 reading it; the process never dies of a signal. Files without the header that crash or hang libhdf5
1.10.8 itself are among them: the test counts them (the checking process reports "crashed" or "did not
finish") and, with HDF5 1.10, wants at least one of each class caught. A sample is also given to `inspect`
and `eval` one by one, which must exit 0 or 1 with a message naming the file.
"""
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import ENV, NOGRAD, check, failures, run  # noqa: E402

N = int(os.environ.get("NOGRAD_MUTATIONS", "1000"))
SEED = int(os.environ.get("NOGRAD_MUTATION_SEED", "14"))
BATCH = 250
SAMPLE = 5  # files of each kind and class given to inspect or eval, one process each
clitest.TIMEOUT = 120
ENV_PROBE = dict(ENV, NOGRAD_PROBE_TIMEOUT="2")


def mutate(body, rng):
    """A copy of body with 1 to 8 mutations."""
    b = bytearray(body)
    for _ in range(rng.choice([1, 1, 2, 4, 8])):
        op, pos = rng.random(), rng.randrange(len(b))
        if op < 0.55:
            b[pos] = rng.randrange(256)
        elif op < 0.75:
            b[pos] ^= 1 << rng.randrange(8)
        elif op < 0.9:
            b[pos:pos + 4] = bytes(rng.choice([[0xff] * 4, [0] * 4, [0x7f, 0xff, 0xff, 0xff], [0x80, 0, 0, 0]]))
        else:
            del b[pos:pos + rng.randrange(1, 64)]
    return bytes(b)


def hdf5_major_minor():
    try:
        out = subprocess.run(["h5dump", "--version"], capture_output=True, text=True, timeout=10).stdout
        version = out.split("Version")[-1].strip().split(".")
        return int(version[0]), int(version[1])
    except Exception:
        return None


with tempfile.TemporaryDirectory() as tmp:
    def p(name):
        return os.path.join(tmp, name)

    data, model, ckpt, spec = p("d.h5"), p("m.h5"), p("c.h5"), p("spec.txt")
    with open(spec, "w") as f:
        f.write("input 8\ndense fc1 6\nrelu\ndense fc2 3\n")
    for args in (["data", "synth", "vectors", "--domain", "upright", "--rows", "300", "--dim", "8", "--classes",
                  "3", "--out", data],
                 ["train", "--spec", spec, "--train", data, "--epochs", "1", "--quiet", "--out", model],
                 ["minimize", "--function", "sphere", "--dim", "4", "--max-evals", "80", "--quiet",
                  "--checkpoint", ckpt]):
        code, _, err = run(args)
        check(code == 0, "%s: exit %d, %r" % (args[0], code, err))

    rng = random.Random(SEED)
    caught = {}
    start = time.time()
    for kind, base in (("checkpoint", ckpt), ("model", model), ("dataset", data)):
        whole = open(base, "rb").read()
        for sealed in (True, False):
            label = "%s %s" % (kind, "with the header" if sealed else "without the header")
            d = p("%s-%d" % (kind, sealed))
            os.mkdir(d)
            paths, unchanged = [], set()
            for i in range(N):
                if sealed:  # anywhere, the header included
                    content = mutate(whole, rng)
                    if content == whole:
                        unchanged.add(i)
                else:
                    content = mutate(whole[512:], rng)
                paths.append(os.path.join(d, "%05d.h5" % i))
                with open(paths[-1], "wb") as f:
                    f.write(content)
            lines = {}
            t0 = time.time()
            for b in range(0, N, BATCH):
                batch = paths[b:b + BATCH]
                try:
                    pr = subprocess.run([NOGRAD, "verify"] + batch, capture_output=True, text=True, errors="replace",
                                        env=ENV_PROBE, timeout=len(batch) * 3 + 60)
                except subprocess.TimeoutExpired:
                    check(False, "%s: nograd verify of %d files did not end" % (label, len(batch)))
                    continue
                check(pr.returncode in (0, 1), "%s: nograd verify exited with %d (a signal?): %r" %
                      (label, pr.returncode, pr.stderr[-500:]))
                for line in pr.stdout.splitlines():
                    path = line.split(": ", 1)[0]
                    lines[path] = line
            seconds = time.time() - t0
            missing = [x for x in paths if x not in lines]
            check(not missing, "%s: %d files got no line, e.g. %r" % (label, len(missing), missing[:3]))
            ok = [x for x in paths if x in lines and lines[x].startswith(x + ": ok: ")]
            failed = [x for x in paths if x in lines and lines[x].startswith(x + ": FAILED: ")]
            odd = [lines[x] for x in paths if x in lines and x not in ok and x not in failed]
            check(not odd, "%s: lines neither ok nor FAILED: %r" % (label, odd[:3]))
            garbled = [lines[x] for x in paths if x in lines and "\ufffd" in lines[x]]
            check(not garbled, "%s: lines with bytes that are not UTF-8: %r" % (label, garbled[:3]))
            unnamed = [lines[x] for x in failed if x not in lines[x].split(": FAILED: ", 1)[1]]
            check(not unnamed, "%s: messages that do not name the file: %r" % (label, unnamed[:3]))
            crashed = sum("crashed (" in lines[x] for x in failed)
            hung = sum("did not finish within" in lines[x] for x in failed)
            caught[label] = (crashed, hung)
            if sealed:
                wrongly = [lines[x] for x in ok if int(os.path.basename(x)[:5]) not in unchanged]
                check(not wrongly, "%s: mutated files accepted: %r" % (label, wrongly[:3]))
                libhdf5 = [lines[x] for x in failed if "is damaged" not in lines[x]]
                check(not libhdf5 and crashed == 0 and hung == 0,
                      "%s: every mutated file refused as damaged before libhdf5 read it: %r" % (label, libhdf5[:3]))
            print("%s: %d files in %.1f s: %d ok, %d refused (%d crashed libhdf5, %d hung it, in the checking "
                  "process)" % (label, N, seconds, len(ok), len(failed), crashed, hung))

            # a sample, one process each, through the commands that use such files
            for x in paths[:SAMPLE]:
                args = ["inspect", x] if kind == "checkpoint" else ["eval", x, data] if kind == "model" else \
                    ["eval", model, x]
                try:
                    code, out, err = run(args, env=ENV_PROBE)
                except subprocess.TimeoutExpired:
                    check(False, "%s: nograd %s did not end" % (label, " ".join(args)))
                    continue
                check(code == 0 or (code == 1 and x in err),
                      "%s: nograd %s: exit %d, %r" % (label, args[0], code, err.strip()[-300:]))
                check("\ufffd" not in err + out, "%s: nograd %s printed bytes that are not UTF-8: %r" %
                      (label, args[0], (out + err)[-300:]))

    total_crashed = sum(c for c, h in caught.values())
    total_hung = sum(h for c, h in caught.values())
    print("%d mutated files of 3 kinds in %.0f s; the checking process caught %d libhdf5 crashes and %d hangs" %
          (6 * N, time.time() - start, total_crashed, total_hung))
    version = hdf5_major_minor()
    if version and version[:2] == (1, 10) and N >= 1000:
        check(total_crashed > 0, "files that crash libhdf5 %d.%d are among the mutations (and were caught)" %
              version)
        check(total_hung > 0, "files that hang libhdf5 %d.%d are among the mutations (and were caught)" % version)

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
