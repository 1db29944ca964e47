#!/usr/bin/python3
"""nograd.evaluator.serve (tools/python/nograd/evaluator.py) at the byte level, driven as nograd drives it.

Usage: test_serve.py NOGRAD [MPIRUN]

An evaluator on serve answers HELLO with version 1 and the COUNTS flag when asked for counts; init sees
HELLO's fields (the model path too); EVAL replies echo seq and m and carry score's losses bit for bit (or
(loss, count) pairs), for one candidate and for more than a pipe holds; X is the request's (m, n) array and
score gets chunk, generation (2^64 - 1 for the start) and the first candidate's index; a frame type of a later
version is skipped; the process exits 0 at BYE and at end of input, 2 on a frame without the magic, 1 with the
reason on stderr when score raises or answers wrongly; a print() in score reaches stderr, never the frames.
The failure tests against nograd itself are in tests/unit/test_evaluator.c (test_serve_evaluators) and
tests/cli/test_retrofit_evaluator.py.
"""
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pkgtest import ROOT, check, finish, need  # noqa: E402

need("numpy")
import numpy as np  # noqa: E402

# An evaluator that logs what serve gives it (to the file in argv[1]) and scores sum(x) + chunk, or
# (sum(x) * 2, 2) with --counts; --raise, --wrong and --nan misbehave on generation 5.
EVALUATOR = r'''
import sys
sys.path.insert(0, %r)
from nograd.evaluator import serve
log = open(sys.argv[1], "w")
counts = "--counts" in sys.argv
def init(hello):
    log.write("hello %%r\n" %% (tuple(hello),))
def score(X, chunk, generation, start):
    log.write("eval %%s %%s %%d %%d %%d %%s\n" %% (X.shape, X.dtype, chunk, generation, start, X.flags.writeable))
    log.flush()
    print("a print in score")
    if generation == 5 and "--raise" in sys.argv:
        raise RuntimeError("no score for generation 5")
    if generation == 5 and "--wrong" in sys.argv:
        return [1.0, 2.0]
    f = X.sum(axis=1) + chunk
    return (f * 2, [2.0] * len(X)) if counts else f
serve(score, counts=counts, init=init)
''' % os.path.join(ROOT, "tools", "python")

HEADER, HELLO_BODY, EVAL_BODY, REPLY = "<4sIQ", "<6I", "<QIIIIII", "<4sIII"


def frame(ftype, body=b""):
    return struct.pack(HEADER, b"NGEV", ftype, len(body)) + body


def hello(n, model=b""):
    return frame(1, struct.pack(HELLO_BODY, 1, n, 3, 1, 2, len(model)) + model)


def evaluate(seq, X, generation=0, chunk=0, first=0):
    m, n = X.shape
    return frame(2, struct.pack(EVAL_BODY, generation, chunk, seq, first, m, n, 0) + X.astype("<f8").tobytes())


def talk(script, args, data):
    """Runs the evaluator on `data` (all of stdin at once); returns (status, stdout bytes, stderr, log)."""
    log = os.path.join(d, "log.txt")
    p = subprocess.run([sys.executable, script, log] + args, input=data, capture_output=True, timeout=60)
    with open(log) as f:
        return p.returncode, p.stdout, p.stderr.decode(), f.read().splitlines()


with tempfile.TemporaryDirectory() as d:
    script = os.path.join(d, "ev.py")
    with open(script, "w") as f:
        f.write(EVALUATOR)
    rng = np.random.default_rng(1)
    X1, X2 = rng.normal(size=(1, 4)), rng.normal(size=(3000, 4))  # 3000 x 4 doubles: more than a pipe holds
    data = (hello(4, b"/models/m 1.h5") + evaluate(0, X1) + frame(9, b"later version") +
            evaluate(1, X2, generation=2 ** 64 - 1, chunk=2, first=7) + frame(3) + evaluate(2, X1))
    rc, out, err, log = talk(script, [], data)
    check(rc == 0, "BYE ends the process with status 0 (%d), a request after it unanswered" % rc)
    check(out[:16] == struct.pack(REPLY, b"NGEV", 0x81, 1, 0) and log[0] == "hello (1, 4, 3, 1, 2, '/models/m 1.h5')",
          "HELLO: answered with version 1, no flags; init got (version, n, nchunks, rank, nranks, model): %s" %
          log[0])
    r1 = out[16:16 + 16 + 8]
    r2 = out[40:]
    want1 = struct.pack(REPLY, b"NGEV", 0x82, 0, 1) + (X1.sum(axis=1) + 0).astype("<f8").tobytes()
    want2 = struct.pack(REPLY, b"NGEV", 0x82, 1, 3000) + (X2.sum(axis=1) + 2).astype("<f8").tobytes()
    check(r1 == want1 and r2 == want2 and len(out) == 16 + len(want1) + len(want2),
          "EVAL replies echo seq and m and carry score's losses bit for bit (1 and 3000 candidates), a frame "
          "type 9 is skipped, nothing else is written to stdout (%d bytes)" % len(out))
    check(log[1:] == ["eval (1, 4) float64 0 0 0 True", "eval (3000, 4) float64 2 %d 7 True" % (2 ** 64 - 1)],
          "score gets X (m, n) float64 (writable), chunk, generation (2^64 - 1 for the start) and start: %s" %
          log[1:])
    check(err.count("a print in score") == 2, "print() in score goes to stderr: %r" % err.strip())

    rc, out, err, log = talk(script, ["--counts"], hello(4) + evaluate(3, X1, chunk=1))
    pair = np.frombuffer(out[32:], dtype="<f8")
    check(rc == 0 and struct.unpack_from(REPLY, out) == (b"NGEV", 0x81, 1, 1) and
          pair.tolist() == [(X1.sum() + 1) * 2, 2.0],
          "counts=True: HELLO sets the COUNTS flag, EVAL replies (loss, count) pairs; end of input: status %d" % rc)

    rc, out, err, _ = talk(script, [], hello(4) + b"XXXX" + bytes(12))
    check(rc == 2 and "without the magic 'NGEV'" in err and "version 1" in err,
          "a frame without the magic: status %d, %s" % (rc, err.strip()))
    rc, out, err, _ = talk(script, ["--raise"], hello(4) + evaluate(0, X1) + evaluate(1, X1, generation=5))
    last = err.strip().splitlines()[-1]
    check(rc == 1 and len(out) == 16 + 24 and last == "RuntimeError: no score for generation 5",
          "score raises: status %d after the replies before, the traceback on stderr ending '%s'" % (rc, last))
    rc, out, err, _ = talk(script, ["--wrong"], hello(4) + evaluate(0, X1, generation=5))
    last = err.strip().splitlines()[-1]
    check(rc == 1 and len(out) == 16 and "score returned 2 losses for the 1 candidates of request 0 "
          "(generation 5, chunk 0)" in last,
          "score answers 2 losses for 1 candidate: status %d, nothing written, '%s'" % (rc, last))
    rc, out, err, _ = talk(script, [], hello(4) + evaluate(0, X1)[:30])
    check(rc == 0 and len(out) == 16, "input that ends inside a frame: status %d (nograd is gone)" % rc)

finish()
