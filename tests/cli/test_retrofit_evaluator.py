#!/usr/bin/python3
"""Command-line tests of `nograd retrofit --evaluator`: external evaluators from end to end.

Usage: test_retrofit_evaluator.py NOGRAD [MPIRUN]

The example evaluators are found through the environment (NOGRAD_EXAMPLE_EXEC, NOGRAD_EXAMPLE_PLUGIN, set
by tests/CMakeLists.txt) or next to NOGRAD; the Python one in tools/evaluators/.

Without a model (--dim --x0 --sigma0), the C exec example, the Python example and the plugin example each
drive the search to the minimum of their shifted sphere, with the start's score reported, and the three give
the same bits (they compute the same sums), under mpirun -n 2 as well. With a model (--params), a scripted
evaluator checks that the model path it is told names an HDF5 file and scores the distance of the knob
vector to a target; the start it is asked about first is the model's own values; --out writes the model with
the best vector applied (the tensor equal to it, the scaled layer scaled by it, everything else unchanged),
loadable by `nograd eval`, the same bits under mpirun -n 2. Options that only make sense with nograd's own
metric are refused with --evaluator. Crashing, hanging and garbage-printing evaluators, from the first
request and in the middle of the run, end the run with exit 1 and a message naming the evaluator and what it
did, leave no --out file half-written (none at all when no candidate was ever scored) and no evaluator
process behind, and never hang (every command has a time limit); under mpirun -n 2, an evaluator that hangs
on rank 1 alone ends both ranks with a message naming rank 1. The same evaluator written with
nograd.evaluator.serve (tools/python) passes the same crash, hang and garbage tests, its garbage refused by
serve (exit status 1) before it reaches the frames, and a print() in its score function harms nothing.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import NOGRAD, check, failures, run  # noqa: E402

clitest.MPIRUN = clitest.MPIRUN or shutil.which("mpirun")
MPIRUN = clitest.MPIRUN
clitest.TIMEOUT = 60  # no command may hang: subprocess.run raises TimeoutExpired, and the test fails

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.dirname(os.path.abspath(NOGRAD))
EXAMPLE_EXEC = os.environ.get("NOGRAD_EXAMPLE_EXEC") or os.path.join(BUILD, "nograd_example_exec")
EXAMPLE_PLUGIN = os.environ.get("NOGRAD_EXAMPLE_PLUGIN") or os.path.join(BUILD, "libnograd_example_plugin.so")
EXAMPLE_PY = os.path.normpath(os.path.join(HERE, "..", "..", "tools", "evaluators", "example_exec.py"))
PYTHON = "/usr/bin/python3"

# A scripted exec: evaluator (frame format version 1, nograd/plugin.h). It scores sum_i (x_i - t_i)^2 for
# the target of --target, logs what it is told to --log (HELLO's fields, whether the model path names an
# HDF5 file, every request's generation) and, from its (--after + 1)-th request on (counted per process),
# misbehaves as --mode says: ok, crash (SIGABRT), hang, garbage (text on stdout); --rank R limits that to
# the process of rank R. It appends its pid to --pids, so that the test can see that none outlives nograd.
SCRIPTED = r'''
import os, struct, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
target = [float(v) for v in args["--target"].split(",")]
mode, after = args.get("--mode", "ok"), int(args.get("--after", "0"))
only_rank = int(args.get("--rank", "-1"))
log = open(args["--log"], "a") if "--log" in args else None
if "--pids" in args:
    with open(args["--pids"], "a") as f:
        f.write("%d\n" % os.getpid())
inp, out = sys.stdin.buffer, sys.stdout.buffer
served, rank = 0, 0
while True:
    head = inp.read(16)
    if len(head) < 16:
        sys.exit(0)
    magic, ftype, length = struct.unpack("<4sIQ", head)
    body = inp.read(length) if length else b""
    if ftype == 1:
        version, n, nchunks, rank, nranks, plen = struct.unpack_from("<6I", body)
        path = body[24:24 + plen].decode()
        is_h5 = False
        if path:
            with open(path, "rb") as f:  # a path that does not exist fails here, at HELLO: a clear error
                head = f.read(1032)  # the HDF5 signature is at 0, or after a user block of 512, 1024, ...
                is_h5 = any(head[o:o + 8] == b"\x89HDF\r\n\x1a\n" for o in (0, 512, 1024))
        if log:
            log.write("hello n=%d nchunks=%d rank=%d nranks=%d h5=%d path=%s\n" % (n, nchunks, rank, nranks,
                                                                                 is_h5, path))
            log.flush()
        if n != len(target):
            sys.stderr.write("scripted: n = %d, but the target has %d values\n" % (n, len(target)))
            sys.exit(2)
        out.write(struct.pack("<4sIII", b"NGEV", 0x81, 1, 0))
    elif ftype == 2:
        generation, chunk, seq, first, m, n, _ = struct.unpack_from("<QIIIIII", body)
        if log:
            log.write("eval generation=%d chunk=%d first=%d m=%d\n" % (generation, chunk, first, m))
            log.flush()
        if served >= after and mode != "ok" and only_rank in (-1, rank):
            if mode == "crash":
                os.abort()
            if mode == "hang":
                time.sleep(1000)
            if mode == "garbage":
                out.write(b"oops: not a frame\n")
                out.flush()
                time.sleep(1000)
        x = struct.unpack_from("<%dd" % (m * n), body, 32)
        losses = [sum((x[k * n + i] - target[i]) ** 2 for i in range(n)) for k in range(m)]
        out.write(struct.pack("<4sIII%dd" % m, b"NGEV", 0x82, seq, m, *losses))
        served += 1
    elif ftype == 3:
        sys.exit(0)
    out.flush()
'''

# The same evaluator written with nograd.evaluator.serve (tools/python), as a user of the package would: the
# frames are serve's. Its misbehaviours are those a score function can commit: crash and hang as above, and
# for garbage, an answer that is not one loss per candidate, which serve refuses (status 1, the reason on
# stderr) instead of writing it; a print() in score ("print" mode) goes to stderr and the run goes on.
SCRIPTED_SERVE = r'''
import os, sys, time
sys.path.insert(0, %r)
from nograd.evaluator import serve
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
target = [float(v) for v in args["--target"].split(",")]
mode, after = args.get("--mode", "ok"), int(args.get("--after", "0"))
if "--pids" in args:
    with open(args["--pids"], "a") as f:
        f.write("%%d\n" %% os.getpid())
served = 0
def score(X, chunk, generation, start):
    global served
    served += 1
    if mode == "print":
        print("oops: not a frame")
    elif served > after and mode == "crash":
        os.abort()
    elif served > after and mode == "hang":
        time.sleep(1000)
    elif served > after and mode == "garbage":
        return "oops: not a frame"
    return [sum((x[i] - target[i]) ** 2 for i in range(len(target))) for x in X]
serve(score)
''' % os.path.normpath(os.path.join(HERE, "..", "..", "tools", "python"))


def must(args, mpi=0):
    rc, out, err = run(args, mpi)
    if rc != 0:
        print("command failed (%d): %s\n%s%s" % (rc, " ".join(args), out, err))
        sys.exit(1)
    return out


def tensors(path):
    """{name: float32 array} of a model file, and the flat parameter vector."""
    import h5py
    import numpy as np
    with h5py.File(path, "r") as f:
        flat = f["model/params"][()]
        names = [v.decode() if isinstance(v, bytes) else v for v in f["model/index/names"][()]]
        offsets = f["model/index/offsets"][()]
        shapes, ndims = f["model/index/shapes"][()], f["model/index/ndims"][()]
        threshold = f["model"].attrs.get("threshold")
    out = {}
    for name, off, shape, nd in zip(names, offsets, shapes, ndims):
        size = int(np.prod(shape[:nd]))
        out[name] = flat[off:off + size]
    return out, flat, threshold


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def evaluator_processes_gone(pidfile):
    if not os.path.exists(pidfile):
        return True
    with open(pidfile) as f:
        pids = [int(v) for v in f.read().split()]
    os.remove(pidfile)
    return pids and not any(alive(p) for p in pids)


if not (os.path.exists(EXAMPLE_EXEC) and os.path.exists(EXAMPLE_PLUGIN)):
    print("FAIL the example evaluators are not built: %s, %s" % (EXAMPLE_EXEC, EXAMPLE_PLUGIN))
    sys.exit(1)

with tempfile.TemporaryDirectory() as d:
    p = lambda name: os.path.join(d, name)

    # ---- (a, b, c) without a model: the three examples find the shifted sphere's minimum, and agree ----
    box = ["retrofit", "--dim", "6", "--x0", "0", "--sigma0", "0.5", "--budget", "1500", "--json"]
    specs = [("C exec example", "exec:%s --shift 0.5" % EXAMPLE_EXEC),
             ("Python exec example", "exec:%s %s --shift 0.5" % (PYTHON, EXAMPLE_PY)),
             ("plugin example", "plugin:%s --shift 0.5" % EXAMPLE_PLUGIN)]
    got = []
    for what, spec in specs:
        r = json.loads(must(box + ["--evaluator", spec]))
        got.append(r)
        check(r["val_before"] == 6 * 0.25 and r["val_after"] < 1e-10
              and max(abs(v - 0.5) for v in r["x"]) < 1e-4 and r["evaluations"] == 1500 // r["lambda"] * r["lambda"],
              "%s: sum (x_i - 0.5)^2 from %g at x0 = 0 to %.2e at x = %s" %
              (what, r["val_before"], r["val_after"], ["%.6f" % v for v in r["x"]]))
        check(r["bound"] is None and "evaluator" in r["no_bound"] and r["metric"] == "evaluator",
              "%s: no bound, with its reason (%s)" % (what, r["no_bound"]))
    check(all(g["x"] == got[0]["x"] and g["val_after"] == got[0]["val_after"] for g in got),
          "the C, Python and plugin evaluators give the same bits (same sums, same seed)")
    out = must(box[:-1] + ["--evaluator", specs[0][1]])
    check("evaluator score: 1.5 -> " in out and "bound: none" in out,
          "the text report gives the start's score and the best: %s" % out.strip().replace("\n", " | "))
    r = json.loads(must(["retrofit", "--dim", "3", "--x0", "0.5", "--budget", "30", "--json", "--evaluator",
                         specs[0][1]]))
    check(r["kept_start"] is True and r["x"] == [0.5] * 3 and r["val_after"] == 0,
          "a start at the minimum is kept: no candidate beats it")
    if MPIRUN:
        r2 = json.loads(must(box + ["--evaluator", specs[0][1]], mpi=2))
        check(r2["x"] == got[0]["x"] and r2["val_after"] == got[0]["val_after"],
              "mpirun -n 2 (one exec evaluator per rank) gives the same bits as one process")
    else:
        print("skip mpirun (not found)")

    # ---- (d) with a model: the knob vector, the model path, --out ----
    must(["data", "synth", "vectors", "--domains", "upright", "--rows", "400", "--classes", "3",
          "--out-prefix", p("v")])
    with open(p("spec.txt"), "w") as f:
        f.write("input 32\ndense fc1 8\nrelu\ndense fc2 3\n")
    must(["train", "--train", p("v-upright.h5"), "--spec", p("spec.txt"), "--out", p("m.h5"), "--epochs", "1",
          "--quiet"])
    with open(p("scripted.py"), "w") as f:
        f.write(SCRIPTED)
    with open(p("scripted_serve.py"), "w") as f:
        f.write(SCRIPTED_SERVE)
    base, _, _ = tensors(p("m.h5"))
    target = [0.3, -0.2, 0.45, 1.5]  # fc2.bias (3 values), then scale:fc1
    tspec = ",".join(repr(v) for v in target)
    ev = "exec:%s %s --target %s --log %s" % (PYTHON, p("scripted.py"), tspec, p("log.txt"))
    r = json.loads(must(["retrofit", p("m.h5"), "--params", "fc2.bias,scale:fc1", "--evaluator", ev,
                         "--sigma0", "0.3", "--budget", "600", "--out", p("r.h5"), "--json"]))
    with open(p("log.txt")) as f:
        log = f.read().splitlines()
    check(log[0] == "hello n=4 nchunks=1 rank=0 nranks=1 h5=1 path=%s" % p("m.h5"),
          "HELLO names the model file, which exists and is HDF5: %s" % log[0])
    check(log[1] == "eval generation=%d chunk=0 first=0 m=1" % (2 ** 64 - 1) and
          log[2].startswith("eval generation=0 "),
          "the start is scored first (generation 2^64 - 1), then generation 0: %s; %s" % (log[1], log[2]))
    x0 = [float(v) for v in base["fc2.bias"]] + [1.0]
    want = sum((a - b) ** 2 for a, b in zip(x0, target))
    check(r["val_before"] == want, "the start is the model's fc2.bias and scale 1: score %r (want %r)" %
          (r["val_before"], want))
    check(r["n"] == 4 and r["val_after"] < 1e-3 and r["val_after"] < r["val_before"]
          and max(abs(a - b) for a, b in zip(r["x"], target)) < 0.05,
          "the search moves the knob vector to the evaluator's target: score %.3g -> %.3g" %
          (r["val_before"], r["val_after"]))
    import numpy as np
    got_t, _, _ = tensors(p("r.h5"))
    x = np.array(r["x"])
    check(np.array_equal(got_t["fc2.bias"], x[:3].astype(np.float32)),
          "--out: fc2.bias is the best vector's first 3 values, as float32")
    check(np.array_equal(got_t["fc1.weight"], (base["fc1.weight"].astype(np.float64) * x[3]).astype(np.float32))
          and np.array_equal(got_t["fc1.bias"], (base["fc1.bias"].astype(np.float64) * x[3]).astype(np.float32)),
          "--out: fc1 is scaled by the best vector's last value (%.6f)" % x[3])
    check(np.array_equal(got_t["fc2.weight"], base["fc2.weight"]), "--out: fc2.weight is unchanged")
    rc, _, err = run(["eval", p("r.h5"), p("v-upright.h5")])
    check(rc == 0, "nograd eval loads the retrofitted model %s" % err.strip())
    check(not os.path.exists(p("r.h5.tmp")), "no temporary file is left")
    out = must(["retrofit", p("m.h5"), "--params", "fc2.bias,scale:fc1", "--evaluator", ev, "--sigma0", "0.3",
                "--budget", "40", "--out", p("r2.h5"), "--quiet"])
    check("evaluator score: " in out and "model: %s" % p("r2.h5") in out, "the text report names --out")
    if MPIRUN:
        r2 = json.loads(must(["retrofit", p("m.h5"), "--params", "fc2.bias,scale:fc1", "--evaluator", ev,
                              "--sigma0", "0.3", "--budget", "600", "--out", p("r_p2.h5"), "--json"], mpi=2))
        _, flat1, _ = tensors(p("r.h5"))
        _, flat2, _ = tensors(p("r_p2.h5"))
        check(r2["x"] == r["x"] and np.array_equal(flat1, flat2),
              "with a model, mpirun -n 2 writes the bit-identical model")

    # a threshold knob goes into the model's attribute, as without an evaluator
    must(["data", "synth", "vectors", "--domains", "upright", "--rows", "300", "--classes", "2",
          "--out-prefix", p("b")])
    with open(p("bspec.txt"), "w") as f:
        f.write("input 32\ndense fc1 4\nrelu\ndense fc2 2\n")
    must(["train", "--train", p("b-upright.h5"), "--spec", p("bspec.txt"), "--out", p("bin.h5"), "--epochs", "1",
          "--quiet"])
    ev_t = "exec:%s %s --target 0.2" % (PYTHON, p("scripted.py"))
    r = json.loads(must(["retrofit", p("bin.h5"), "--params", "threshold", "--evaluator", ev_t, "--budget", "120",
                         "--out", p("bt.h5"), "--json"]))
    _, _, thr = tensors(p("bt.h5"))
    check(thr is not None and thr == r["x"][0] and abs(thr - 0.2) < 1e-3,
          "a threshold knob is stored in the model's threshold attribute (%r)" % thr)

    # ---- options that belong to nograd's own metric are refused with an evaluator; nothing is written ----
    sphere = "exec:" + EXAMPLE_EXEC
    cases = [
        ([p("m.h5"), "--params", "fc2.bias", "--val", p("v-upright.h5")], "--val and --evaluator"),
        ([p("m.h5"), "--params", "fc2.bias", "--test", p("v-upright.h5")], "--test and --evaluator"),
        ([p("m.h5"), "--params", "fc2.bias", "--metric", "error"], "--metric and --evaluator"),
        ([p("m.h5"), "--params", "fc2.bias", "--val-size", "10"], "--val-size and --evaluator"),
        ([p("m.h5"), "--params", "fc2.bias", "--threshold", "0.3"], "--threshold and --evaluator"),
        ([p("m.h5"), "--params", "fc2.bias", "--x0", "1"], "--x0 is for runs without a model"),
        (["--dim", "3", "--params", "fc2.bias"], "--params names knobs of a model"),
        (["--dim", "3"], "--out writes the retrofitted model"),
    ]
    cases = [(extra, 2, words) for extra, words in cases] + [([p("m.h5"), "--params", "fc9.bias"], 1, "fc9.bias")]
    for extra, code, words in cases:
        rc, _, err = run(["retrofit"] + extra + ["--evaluator", sphere, "--out", p("bad.h5")])
        check(rc == code and words in err and not os.path.exists(p("bad.h5")),
              "%s: exit %d naming '%s': %s" % (" ".join(os.path.basename(a) for a in extra), code, words,
                                              err.strip()))

    # ---- (e) evaluators that crash, hang or print garbage: exit 1, a clear message, no hang ----
    # the hand-written evaluator and the one on serve, whose garbage serve refuses before it is written
    what = {("scripted.py", "crash"): "signal 6", ("scripted.py", "hang"): "timed out",
            ("scripted.py", "garbage"): "malformed reply", ("scripted_serve.py", "crash"): "signal 6",
            ("scripted_serve.py", "hang"): "timed out", ("scripted_serve.py", "garbage"): "exited with status 1"}
    for script, mode in what:
        for after in (0, 6):  # from the first request (the start), or in the middle of the run
            out_path = p("e-%s-%s-%d.h5" % (script[:-3], mode, after))
            spec = "exec:%s %s --target %s --mode %s --after %d --pids %s" % (
                PYTHON, p(script), tspec, mode, after, p("pids"))
            rc, out, err = run(["retrofit", p("m.h5"), "--params", "fc2.bias,scale:fc1", "--evaluator", spec,
                                "--eval-timeout", "0.5", "--max-restarts", "1", "--budget", "200", "--out",
                                out_path, "--quiet"])
            last = err.strip().splitlines()[-1] if err.strip() else ""
            check(rc == 1 and script in last and what[script, mode] in last and "restart limit" in last,
                  "%s, %s after %d requests: exit %d, the message names the evaluator and '%s': %s" %
                  (script, mode, after, rc, what[script, mode], last))
            if after == 0:
                ok = not os.path.exists(out_path)
            else:  # the anytime model may be there, but whole: it loads
                ok = not os.path.exists(out_path) or run(["eval", out_path, p("v-upright.h5")])[0] == 0
            check(ok and not os.path.exists(out_path + ".tmp"),
                  "%s, %s after %d: --out is %s, no temporary file" %
                  (script, mode, after, "a whole model" if os.path.exists(out_path) else "not written"))
            check(evaluator_processes_gone(p("pids")), "%s, %s after %d: no evaluator process outlives nograd" %
                  (script, mode, after))
    spec = "exec:%s %s --target %s --mode print" % (PYTHON, p("scripted_serve.py"), tspec)
    r = json.loads(must(["retrofit", p("m.h5"), "--params", "fc2.bias,scale:fc1", "--evaluator", spec,
                         "--max-restarts", "0", "--sigma0", "0.3", "--budget", "600", "--out", p("e-print.h5"),
                         "--json"]))
    check(r["val_after"] < 1e-3 and r["evaluations"] == 600 // r["lambda"] * r["lambda"],
          "serve: print() in score goes to stderr, not into the frames: the run is whole (score %.3g)" %
          r["val_after"])
    spec = "exec:%s %s --target %s --mode crash --pids %s" % (PYTHON, p("scripted.py"), tspec, p("pids"))
    rc, out, err = run(["retrofit", p("m.h5"), "--params", "fc2.bias,scale:fc1", "--evaluator", spec,
                        "--max-restarts", "0", "--budget", "200", "--out", p("e-start.h5"), "--quiet"])
    last = err.strip().splitlines()[-1] if err.strip() else ""
    check(rc == 1 and "scoring the start, before the search" in last and "signal 6" in last
          and "scripted.py" in last and not os.path.exists(p("e-start.h5")) and evaluator_processes_gone(p("pids")),
          "--max-restarts 0, a crash on the start: exit %d, the message says so, nothing written: %s" %
          (rc, last))
    if MPIRUN:
        spec = "exec:%s %s --target %s --mode hang --after 2 --rank 1 --pids %s" % (
            PYTHON, p("scripted.py"), tspec, p("pids"))
        out_path = p("e-mpi.h5")
        rc, out, err = run(["retrofit", p("m.h5"), "--params", "fc2.bias,scale:fc1", "--evaluator", spec,
                            "--eval-timeout", "0.5", "--max-restarts", "1", "--budget", "200", "--out", out_path,
                            "--quiet"], mpi=2)
        msg = [line for line in err.splitlines() if line.startswith("nograd retrofit:")]
        check(clitest.code_ok(rc, None, 2) and len(msg) == 1 and "rank 1" in msg[0] and "timed out" in msg[0]
              and "scripted.py" in msg[0],
              "mpirun -n 2, rank 1's evaluator hangs: both ranks end (exit %d), one message naming rank 1: %s" %
              (rc, msg[0] if msg else err.strip()))
        check(not os.path.exists(out_path + ".tmp") and evaluator_processes_gone(p("pids")),
              "mpirun -n 2: no temporary file, no evaluator process left")

if failures:
    print("%d failure(s)" % len(failures))
    sys.exit(1)
print("all ok")
