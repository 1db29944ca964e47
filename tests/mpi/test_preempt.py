"""MPI test (issue #12): `nograd glue` (spsa and fullgrad) and `nograd retrofit`, sent SIGUSR1 mid-run under
mpirun -n 2, exit 3 with a checkpoint, and --resume on another number of ranks gives the uninterrupted run's
result byte for byte: the same prior (or retrofitted model) file and the same numbers.

Set-up (synthetic, about 10 s on 2 cores): three image domains from `nograd data synth`, two experts (an MLP
trained on one domain each) and a target split. Each command runs once uninterrupted on 1 rank (the
reference), then on 2 ranks with --checkpoint-every 1 and --log, where SIGUSR1 goes to mpirun once the log
has a few generations; then the run is resumed on 3 ranks (glue) or 1 rank (retrofit) from the checkpoint.
"""
import json
import os
import signal
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

NAME = "test_preempt"
mpitest.skip_without_mpirun(NAME)
AT = 5  # generations logged before the signal

SPEC = "input 1 16 16\nflatten\ndense fc1 48\nrelu\ndense fc2 10\n"


def nograd(args):
    p = subprocess.run([mpitest.NOGRAD] + args, capture_output=True, text=True, env=mpitest.ENV,
                       timeout=mpitest.TIMEOUT)
    if p.returncode != 0:
        print("set-up failed (%d): %s\n%s%s" % (p.returncode, " ".join(args), p.stdout, p.stderr))
        sys.exit(1)


def content(path):
    """The parameters of a model file, as bytes (None when it cannot be read)."""
    try:
        import h5py
        with h5py.File(path, "r") as f:
            return f["/model/params"][()].tobytes() + repr(dict(f["/model"].attrs)).encode()
    except ImportError:  # without h5py, the whole file: a model file holds no time stamp
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def without(obj, *keys):
    return {k: v for k, v in obj.items() if k not in keys}


def preempt(what, args, out, resume_on, result_keys_to_drop):
    """Reference, signalled and resumed runs of `nograd args` whose result file is `out`."""
    ref_out = out + ".ref"
    ref = mpitest.run(1, args + ["--json", "--quiet"] + out_args(args, ref_out))
    if not check(ref.code == 0, "%s: reference run: exit %r, stderr %r" % (what, ref.code, ref.err[-2000:])):
        return
    ref_lines = [json.loads(l) for l in ref.out.splitlines() if l.strip()]
    d = os.path.dirname(out)
    ck, log = os.path.join(d, what + ".h5"), os.path.join(d, what + ".jsonl")
    job = mpitest.start(2, args + ["--json", "--quiet", "--checkpoint", ck, "--checkpoint-every", "1", "--log", log]
                        + out_args(args, out))
    reached = mpitest.wait_for(lambda: mpitest.count_lines(log) >= AT, job)
    if not check(reached and job.running(), "%s: the run ended before %d generations" % (what, AT)):
        job.wait()
        return
    os.kill(job.p.pid, signal.SIGUSR1)
    res = job.wait()
    stopped = mpitest.count_lines(log)
    check(mpitest.mpilaunch.code_ok(mpitest.MPIRUN, res.code, 3),
          "%s: SIGUSR1 under mpirun -n 2: exit %r, want 3; stderr %r" % (what, res.code, res.err[-2000:]))
    info = mpitest.inspect(ck) or {}
    total = ref_lines[-1].get("generations") or ref_lines[-1].get("evaluations")
    check(info.get("generation") == stopped and AT <= stopped,
          "%s: the checkpoint holds generation %r, the log %d lines (signal after %d)" %
          (what, info.get("generation"), stopped, AT))
    print("%s: stopped at generation %d of %s (%.1f s)" % (what, stopped, total, res.seconds), flush=True)
    res = mpitest.run(resume_on, args + ["--json", "--quiet", "--checkpoint", ck, "--resume", ck] + out_args(args, out))
    if not check(res.code == 0, "%s: resume on %d ranks: exit %r, stderr %r" % (what, resume_on, res.code, res.err[-2000:])):
        return
    lines = [json.loads(l) for l in res.out.splitlines() if l.strip()]
    a = [without(o, *result_keys_to_drop) for o in ref_lines]
    b = [without(o, *result_keys_to_drop) for o in lines]
    check(a == b, "%s: resumed on %d ranks, the result differs from the uninterrupted run's:\n%r\n%r" %
          (what, resume_on, a, b))
    check(content(ref_out) is not None and content(ref_out) == content(out),
          "%s: the model file after the resume is the uninterrupted run's, byte for byte" % what)


def out_args(args, path):
    return ["--out", path]


with mpitest.tempdir() as tmp:
    p = lambda name: os.path.join(tmp, name)
    nograd(["data", "synth", "images", "--domains", "upright,tilted,target", "--rows", "1200", "--out-prefix", p("d")])
    nograd(["data", "split", p("d-target.h5"), "--train", "0.5", "--val", "0.25", "--test", "0.25", "--seed", "1",
            "--out-prefix", p("t")])
    with open(p("spec.txt"), "w") as f:
        f.write(SPEC)
    experts = []
    for s in ["upright", "tilted"]:
        nograd(["train", "--train", p("d-%s.h5" % s), "--spec", p("spec.txt"), "--optimizer", "adam", "--lr", "0.003",
                "--epochs", "2", "--quiet", "--out", p("e-%s.h5" % s)])
        experts.append(p("e-%s.h5" % s))
    glue = ["glue", "--experts"] + experts + ["--target-train", p("t-train.h5"), "--target-val", p("t-val.h5"),
                                              "--granularity", "layer", "--steps", "60", "--chunk-rows", "64"]
    preempt("glue-spsa", glue + ["--method", "spsa"], p("prior-spsa.h5"), 3, ["seconds", "prior"])
    preempt("glue-fullgrad", glue + ["--method", "fullgrad"], p("prior-fullgrad.h5"), 3, ["seconds", "prior"])
    retrofit = ["retrofit", experts[0], "--params", "offsets,scale:fc1,scale:fc2", "--val", p("t-val.h5"),
                "--test", p("t-test.h5"), "--budget", "400", "--popsize", "8", "--chunk-rows", "64"]
    preempt("retrofit", retrofit, p("tuned.h5"), 1, ["seconds"])

mpitest.finish(NAME)
