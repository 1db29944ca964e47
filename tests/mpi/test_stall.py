#!/usr/bin/python3
"""No silent stall (issue #14): a worker stopped with SIGSTOP mid-run is named (rank and host) on rank 0's
progress stream once a generation has waited --stall-timeout seconds; past --stall-abort the job ends with
exit 1 and a checkpoint of the state before the stalled generation, and --resume from it (on another number
of ranks) gives the uninterrupted run's result to the bit. A worker stopped and continued before the second
limit costs only the wait: the run ends normally, with the same result. Bad values of both options are
refused, naming them. A rank that stops in the middle of a tell by blocks is named too; when rank 0 itself
stops, the workers end the job past twice --stall-abort.

A data objective (logistic, 100,000 generated rows) on 3 ranks: about 7 s a run on 2 cores.

Usage: test_stall.py NOGRAD MPIRUN"""
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

NAME = "test_stall"
mpitest.skip_without_mpirun(NAME)
ARGS = ["minimize", "--function", "logistic", "--dim", "30", "--rows", "100000", "--max-evals", "6000",
        "--seed", "5", "--json"]
WARN, ABORT = 1, 4
HOST = socket.gethostname()


def stop_worker_when_logged(job, log, lines=30, rank=2):
    """Waits until the log has `lines` generations, then stops `rank` (SIGSTOP); its pid, or None."""
    ranks = job.wait_ranks(3)
    if not check(len(ranks) == 3, "the three ranks are found: %s" % ranks):
        return None
    if not check(mpitest.wait_for(lambda: mpitest.count_lines(log) >= lines, job, 30),
                 "the run logs %d generations" % lines):
        return None
    os.kill(ranks[rank], signal.SIGSTOP)
    return ranks[rank]


def make_sure_gone(pid, what):
    """mpirun ends a stopped rank (SIGKILL reaches a stopped process): give it a moment, check, and never leave
    it behind."""
    deadline = time.time() + 10
    while mpitest.alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    if not check(not mpitest.alive(pid), what):
        os.kill(pid, signal.SIGKILL)


with mpitest.tempdir() as d:
    ref = mpitest.parse_result(mpitest.run(3, ARGS + ["--quiet"]), "the uninterrupted run")

    # a stopped worker, never continued: named past WARN, the job ends past ABORT with exit 1 and a checkpoint
    ck, log = os.path.join(d, "ck.h5"), os.path.join(d, "run.log")
    job = mpitest.start(3, ARGS + ["--checkpoint", ck, "--log", log, "--stall-timeout", str(WARN),
                                   "--stall-abort", str(ABORT)])
    pid = stop_worker_when_logged(job, log)
    t_stop = time.time()
    r = job.wait(ABORT + 30)
    ended = time.time() - t_stop
    lines = r.nograd_lines()
    named = [line for line in lines if line.startswith("nograd: stall: generation")]
    check(named and ("for 1 of 3 ranks: rank 2 on %s " % HOST) in named[0] and "--stall-timeout 1" in named[0],
          "the stopped rank is named with its host after --stall-timeout: %s" % (named or r.err[-800:]))
    check(len(named) >= 2, "and again every --stall-timeout seconds: %d lines" % len(named))
    gave_up = [line for line in lines if line.startswith("nograd: error:") and "--stall-abort" in line]
    check(gave_up and "rank 2 on %s" % HOST in gave_up[0], "past --stall-abort an error names it: %s" % gave_up)
    check(any("holds the state before generation" in line and ck in line for line in lines),
          "and says where the checkpoint is: %s" % lines[-3:])
    # Open MPI's mpirun reports the code of rank 0's MPI_Abort; MPICH's Hydra reports either that or the signal
    # that ended the stopped rank (SIGKILL, 9), whichever of the two it sees first
    want = (1, 9) if mpitest.mpilaunch.flavor(mpitest.MPIRUN) == "mpich" else (1,)
    check(r.code in want, "the job exits %s: %s" % (" or ".join(map(str, want)), r.code))
    check(ABORT <= ended < ABORT + 20, "the job ended %.1f s after the stop (limit %d s)" % (ended, ABORT))
    if pid:
        make_sure_gone(pid, "the stopped rank is gone")
    resumed = mpitest.parse_result(mpitest.run(2, ARGS + ["--quiet", "--resume", ck]), "the resumed run")
    if ref and resumed:
        check(mpitest.without_seconds(resumed) == mpitest.without_seconds(ref),
              "the resumed run is the uninterrupted one's bits: %s vs %s" % (resumed, ref))

    # a worker stopped, then continued before --stall-abort: the run ends normally, with the same result
    log2 = os.path.join(d, "run2.log")
    job = mpitest.start(3, ARGS + ["--log", log2, "--stall-timeout", str(WARN), "--stall-abort", "60"])
    pid = stop_worker_when_logged(job, log2)
    if pid:
        time.sleep(WARN + 2.5)
        os.kill(pid, signal.SIGCONT)
    r = job.wait()
    check(r.code == 0, "a continued rank: the run ends normally: %s %s" % (r.code, r.err[-500:]))
    check(any(line.startswith("nograd: stall over: generation") for line in r.nograd_lines()),
          "and says the stall is over: %s" % r.nograd_lines()[-3:])
    got = mpitest.parse_result(r, "the continued run")
    if ref and got:
        check(mpitest.without_seconds(got) == mpitest.without_seconds(ref), "with the same result: %s" % got)

    # a rank that stops in the middle of a tell by blocks (its shares on their way up the tree to rank 0):
    # rank 0 waits for that message under the same watch, names the rank, and the run goes on when it comes
    blocked = ["minimize", "--function", "rot-ellipsoid", "--dim", "10", "--popsize", "260", "--seed", "9",
               "--max-evals", "5200", "--broadcast", "seeded", "--json", "--quiet"]
    plain = mpitest.parse_result(mpitest.run(3, blocked), "the tell by blocks, uninterrupted")
    env = dict(mpitest.ENV, NOGRAD_TEST_TELL_PAUSE="2:5:2.5")  # rank 2, generation 5, 2.5 s (src/engine/tell.c)
    r = mpitest.start(3, blocked + ["--stall-timeout", str(WARN)], env=env,
                      pass_env=("NOGRAD_TEST_TELL_PAUSE",)).wait()
    named = [line for line in r.nograd_lines() if line.startswith("nograd: stall: generation 5 ")]
    check(r.code == 0 and named and "rank 2 on %s" % HOST in named[0],
          "a rank paused in the tell is named: exit %s, %s" % (r.code, named or r.err[-500:]))
    check(any(line.startswith("nograd: stall over: generation 5") for line in r.nograd_lines()),
          "and the stall ends with it: %s" % r.nograd_lines()[-2:])
    got = mpitest.parse_result(r, "the paused tell")
    if plain and got:
        check(mpitest.without_seconds(got) == mpitest.without_seconds(plain), "with the same result: %s" % got)

    # past --stall-abort in the middle of the tell the state is half updated: the last checkpoint is kept
    ck3 = os.path.join(d, "ck3.h5")
    env = dict(mpitest.ENV, NOGRAD_TEST_TELL_PAUSE="2:5:6")
    r = mpitest.start(3, blocked + ["--stall-timeout", str(WARN), "--stall-abort", "3", "--checkpoint", ck3],
                      env=env, pass_env=("NOGRAD_TEST_TELL_PAUSE",)).wait()
    check(r.code in want and any("in the middle of the update of generation 5" in line and ck3 in line
                                 for line in r.nograd_lines()),
          "a rank stalled in the tell past --stall-abort: exit %s, %s" % (r.code, r.nograd_lines()[-2:]))
    got = mpitest.parse_result(mpitest.run(2, blocked + ["--resume", ck3]), "the run resumed after the tell")
    if plain and got:
        check(mpitest.without_seconds(got) == mpitest.without_seconds(plain),
              "and --resume from the kept checkpoint gives the uninterrupted result: %s" % got)

    # rank 0 itself stopped: no roll call comes, and past twice --stall-abort the workers end the job; the last
    # checkpoint rank 0 wrote is resumed to the uninterrupted run's bits
    ck4, log4 = os.path.join(d, "ck4.h5"), os.path.join(d, "run4.log")
    job = mpitest.start(3, ARGS + ["--checkpoint", ck4, "--checkpoint-every", "10", "--log", log4,
                                   "--stall-timeout", str(WARN), "--stall-abort", "2"])
    pid = stop_worker_when_logged(job, log4, rank=0)
    t_stop = time.time()
    r = job.wait(30)
    ended = time.time() - t_stop
    silent = [line for line in r.nograd_lines() if "no word from rank 0" in line]
    check(r.code in want and silent and "twice --stall-abort 2" in silent[0],
          "rank 0 stopped: a worker ends the job: exit %s, %s" % (r.code, silent or r.err[-500:]))
    check(4 <= ended < 20, "%.1f s after the stop (twice --stall-abort: 4 s)" % ended)
    if pid:
        make_sure_gone(pid, "the stopped rank 0 is gone")
    resumed = mpitest.parse_result(mpitest.run(2, ARGS + ["--quiet", "--resume", ck4]), "resumed after rank 0")
    if ref and resumed:
        check(mpitest.without_seconds(resumed) == mpitest.without_seconds(ref),
              "and the last checkpoint resumes to the uninterrupted run's bits: %s" % resumed)

    # bad values, named
    for opt, value in (("--stall-timeout", "-1"), ("--stall-abort", "nan"), ("--stall-timeout", "inf")):
        r = mpitest.run(1, ARGS + [opt, value])
        check(r.code == 2 and any(opt in line for line in r.nograd_lines()),
              "%s %s is refused with exit 2, naming the option: %s %s" % (opt, value, r.code, r.err[-300:]))
mpitest.finish(NAME)
