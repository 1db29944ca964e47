#!/usr/bin/python3
"""MPI test: a signal stops a run after its generation with a checkpoint and exit code 3, and the run resumes to
the uninterrupted result; a second signal ends the ranks at once.

Usage: test_signals.py NOGRAD MPIRUN

The run is test_resume.py's with twice the budget (CMA-ES on the logistic data objective, 308 generations, some
5 s on 2 ranks), checkpointing only when it stops (--checkpoint-every 1000). Each scenario sends its signal when
the --log file reaches generation 40 (10 for mpirun's SIGTERM):
- SIGUSR1 to mpirun (which forwards it to the ranks);
- SIGTERM to every rank (what Slurm does at preemption or at the time limit);
- SIGUSR1 to rank 1 only (rank 0 learns of it from rank 1's trailer);
- SIGTERM to mpirun. Open MPI 4.1's mpirun forwards SIGTERM to the ranks about 1 s later (they then stop and
  checkpoint as usual), but exits 1 itself whatever the ranks return (its abort path), so only "not 0" is
  asserted there; MPICH's Hydra forwards it at once and exits 3 with the ranks; under Slurm the signal reaches
  the ranks directly, as in the second scenario.
Then: the --json result says stop_reason "signal" with the generation reached, the checkpoint holds that generation,
and resuming it on 2 or 3 ranks gives the uninterrupted result and history.

A second signal: with the test hook NOGRAD_CKPT_PAUSE_MS=5000 (src/io/ckpt.c) the checkpoint written after the
first SIGTERM takes 5 s; a second SIGTERM while its PATH.tmp exists must end the ranks within 1 s, and mpirun with a
code that is neither 0 nor 3, leaving the previous checkpoint (generation 0) complete and resumable.
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_signals")

RUN = ["minimize", "--function", "logistic", "--dim", "21", "--rows", "50000", "--chunk-rows", "5000",
       "--max-evals", "4000", "--seed", "5", "--checkpoint-every", "1000", "--quiet", "--json"]
AT = 40

with mpitest.tempdir() as tmp:
    ref_ck = os.path.join(tmp, "ref.h5")
    res = mpitest.run(2, RUN + ["--checkpoint", ref_ck])
    check(res.code == 0, "reference run: exit code %r, stderr %r" % (res.code, res.err[-2000:]))
    ref = mpitest.parse_result(res, "reference run")
    ref_hist = mpitest.ckpt_history(ref_ck) if res.code == 0 else None
    if ref is None or ref_hist is None:
        mpitest.finish("test_signals")
    print("reference: %r" % mpitest.without_seconds(ref), flush=True)

    def resume_and_compare(what, nprocs, ck):
        res = mpitest.run(nprocs, RUN + ["--resume", ck, "--checkpoint", ck])
        if not check(res.code == 0, "%s: resume on %d ranks: exit code %r, stderr %r" %
                     (what, nprocs, res.code, res.err[-2000:])):
            return
        obj = mpitest.parse_result(res, what + ": resumed run")
        check(mpitest.without_seconds(obj) == mpitest.without_seconds(ref),
              "%s: resumed on %d ranks: %r; uninterrupted: %r" % (what, nprocs, obj, ref))
        hist = mpitest.ckpt_history(ck)
        check(hist == ref_hist, "%s: the history differs from the uninterrupted one at %s" %
              (what, mpitest.first_difference(hist or [], ref_hist)))

    def send(job, ranks, target, sig):
        if target == "mpirun":
            os.kill(job.p.pid, sig)
        else:
            for r in (ranks if target == "ranks" else {target: ranks[target]}).values():
                os.kill(r, sig)

    # (name, signal, target: "mpirun", "ranks" or one rank number, sent at this generation, exit code wanted
    # (None: not 0), ranks to resume on)
    SCENARIOS = [
        ("SIGUSR1 to mpirun", signal.SIGUSR1, "mpirun", AT, 3, 2),
        ("SIGTERM to the ranks", signal.SIGTERM, "ranks", AT, 3, 3),
        ("SIGUSR1 to rank 1", signal.SIGUSR1, 1, AT, 3, 2),
        # early: Open MPI's mpirun forwards it 1 s later and exits 1; MPICH's Hydra forwards it at once and
        # exits with the ranks' code
        ("SIGTERM to mpirun", signal.SIGTERM, "mpirun", 10,
         3 if mpitest.mpilaunch.flavor(mpitest.MPIRUN) == "mpich" else None, 2),
    ]
    for name, sig, target, at, want, resume_on in SCENARIOS:
        d = os.path.join(tmp, "signal%d" % len(os.listdir(tmp)))
        os.mkdir(d)
        ck, log = os.path.join(d, "c.h5"), os.path.join(d, "log.jsonl")
        job = mpitest.start(2, RUN + ["--checkpoint", ck, "--log", log])
        ranks = job.wait_ranks(2)
        reached = mpitest.wait_for(lambda: mpitest.count_lines(log) >= at, job)
        if not check(reached and job.running() and len(ranks) == 2,
                     "%s: the run ended before the signal (ranks %r)" % (name, ranks)):
            job.wait()
            continue
        send(job, ranks, target, sig)
        res = job.wait()
        check(mpitest.mpilaunch.code_ok(mpitest.MPIRUN, res.code, want),
              "%s: exit code %r, want %s; stderr %r" % (name, res.code, "not 0" if want is None else want,
                                                       res.err[-2000:]))
        obj = mpitest.parse_result(res, name)
        if obj is None:
            continue
        check(obj["stop_reason"] == "signal" and at <= obj["generations"] < ref["generations"],
              "%s: stop_reason %r at generation %r; want signal, between %d and %d" %
              (name, obj["stop_reason"], obj["generations"], at, ref["generations"]))
        check(mpitest.count_lines(log) == obj["generations"], "%s: %d log lines, the result says %d generations" %
              (name, mpitest.count_lines(log), obj["generations"]))
        info = mpitest.inspect(ck) or {}
        check(info.get("generation") == obj["generations"] and info.get("evaluations") == obj["evaluations"],
              "%s: the checkpoint holds generation %r, evaluations %r; the run stopped at %r, %r" %
              (name, info.get("generation"), info.get("evaluations"), obj["generations"], obj["evaluations"]))
        print("%s: exit code %r at generation %d (%.1f s)" % (name, res.code, obj["generations"], res.seconds),
              flush=True)
        resume_and_compare(name, resume_on, ck)

    # ---- a second signal ----------------------------------------------------------------------------------
    what = "a second SIGTERM during the checkpoint write"
    d = os.path.join(tmp, "second")
    os.mkdir(d)
    ck, log = os.path.join(d, "c.h5"), os.path.join(d, "log.jsonl")
    env = dict(mpitest.ENV, NOGRAD_CKPT_PAUSE_MS="5000")
    job = mpitest.start(2, RUN + ["--checkpoint", ck, "--log", log], env=env, pass_env=["NOGRAD_CKPT_PAUSE_MS"])
    ranks = job.wait_ranks(2)
    reached = mpitest.wait_for(lambda: mpitest.count_lines(log) >= 20, job)
    if check(reached and job.running() and len(ranks) == 2, "%s: the run ended too early" % what):
        send(job, ranks, "ranks", signal.SIGTERM)
        in_write = mpitest.wait_for(lambda: os.path.exists(ck + ".tmp"), job, timeout=20)
        check(in_write and job.running(), "%s: no %s.tmp after the first signal" % (what, ck))
        t0 = time.time()
        send(job, ranks, "ranks", signal.SIGTERM)
        while time.time() - t0 < 10 and any(mpitest.alive(pid) for pid in ranks.values()):
            time.sleep(0.005)
        took = time.time() - t0
        res = job.wait()
        check(res.code != 3 and mpitest.mpilaunch.code_ok(mpitest.MPIRUN, res.code, None),
              "%s: exit code %r, want a failure (not 0, not 3)" % (what, res.code))
        check(took < 1.0, "%s: the ranks took %.2f s to end, want < 1 s (the write pauses 5 s)" % (what, took))
        check(not mpitest.mpilaunch.program_output(mpitest.MPIRUN, res.out).strip(),
              "%s: a result on stdout: %r" % (what, res.out))
        info = mpitest.inspect(ck) or {}
        check(info.get("generation") == 0, "%s: %s holds generation %r, want the first checkpoint's 0" %
              (what, ck, info.get("generation")))
        print("%s: the ranks ended in %.3f s, mpirun with code %r" % (what, took, res.code), flush=True)
        if info.get("generation") == 0:
            resume_and_compare(what, 2, ck)

mpitest.finish("test_signals")
