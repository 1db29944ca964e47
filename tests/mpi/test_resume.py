#!/usr/bin/python3
"""MPI test: a run killed at any point resumes from its checkpoint to the uninterrupted result; damaged
checkpoints are refused with a message that names the file and the way out; `nograd inspect` agrees with the
history.

Usage: test_resume.py NOGRAD MPIRUN

The run: CMA-ES on the logistic data objective (n = 21, 50000 rows in 10 chunks: some 15 ms a generation on 2
ranks, 154 generations), with --checkpoint c.h5 --checkpoint-every 5. The reference is one uninterrupted run on 2
ranks. Each scenario SIGKILLs one rank (mpirun then ends the job) when the --log file reaches a generation, or, with
the test hook NOGRAD_CKPT_PAUSE_MS (src/io/ckpt.c), while rank 0 sits between writing c.h5.tmp and renaming it.
After every kill c.h5 must be a complete, verified checkpoint of a generation that is a multiple of 5, whose
history is the reference's first rows; resuming it (on another rank count) must give the reference's --json
result and its whole history (the columns of mpitest.HISTORY, read from the final checkpoint with h5py).
"""
import os
import shutil
import signal
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_resume")

RUN = ["minimize", "--function", "logistic", "--dim", "21", "--rows", "50000", "--chunk-rows", "5000",
       "--max-evals", "2000", "--seed", "5", "--checkpoint-every", "5", "--quiet", "--json"]
EVERY = 5


def ckpt_generation(path, what):
    """The generation a checkpoint holds, by `nograd inspect --json` (which verifies the file), checked against
    its last history row (test 7: inspect reports the generation and evaluations of the last row)."""
    info = mpitest.inspect(path)
    hist = mpitest.ckpt_history(path)
    if info is None or hist is None:
        return None, None
    if hist:
        last = dict(zip(mpitest.HISTORY, hist[-1]))
        check(info.get("generation") == last["generation"] and info.get("evaluations") == last["evaluations"],
              "%s: inspect says generation %r, evaluations %r; the last history row %r" %
              (what, info.get("generation"), info.get("evaluations"), last))
    check(info.get("history_rows") == len(hist), "%s: inspect says %r history rows, h5py reads %d" %
          (what, info.get("history_rows"), len(hist)))
    return info.get("generation"), hist


with mpitest.tempdir() as tmp:
    # ---- the reference ------------------------------------------------------------------------------------
    ref_ck, ref_log = os.path.join(tmp, "ref.h5"), os.path.join(tmp, "ref.jsonl")
    res = mpitest.run(2, RUN + ["--checkpoint", ref_ck, "--log", ref_log])
    check(res.code == 0, "reference run: exit code %r, stderr %r" % (res.code, res.err[-2000:]))
    ref = mpitest.parse_result(res, "reference run")
    ref_hist = mpitest.ckpt_history(ref_ck) if res.code == 0 else None
    if ref is None or ref_hist is None:
        mpitest.finish("test_resume")
    total = ref["generations"]
    print("reference: %r in %.1f s" % (mpitest.without_seconds(ref), res.seconds), flush=True)
    check(total >= 120, "the reference run has only %d generations; the kill points need more" % total)
    check(mpitest.log_history(mpitest.read_log(ref_log)) == ref_hist,
          "the reference's --log and its checkpoint's /history differ")
    gen, _ = ckpt_generation(ref_ck, "reference checkpoint")
    check(gen == total, "reference checkpoint: generation %r, the run reported %d" % (gen, total))
    info = mpitest.inspect(ref_ck) or {}
    check(info.get("evaluations") == ref["evaluations"] and info.get("stop_reason") == ref["stop_reason"],
          "inspect of the reference: evaluations %r, stop_reason %r; the run reported %r" %
          (info.get("evaluations"), info.get("stop_reason"), ref))

    def resume_and_compare(what, nprocs, resume_from, ck, extra=()):
        res = mpitest.run(nprocs, RUN + list(extra) + ["--resume", resume_from, "--checkpoint", ck])
        if not check(res.code == 0, "%s: resume on %d ranks: exit code %r, stderr %r" %
                     (what, nprocs, res.code, res.err[-2000:])):
            return
        obj = mpitest.parse_result(res, what + ": resumed run")
        check(mpitest.without_seconds(obj) == mpitest.without_seconds(ref),
              "%s: resumed on %d ranks: %r; uninterrupted: %r" % (what, nprocs, obj, ref))
        hist = mpitest.ckpt_history(ck)
        check(hist == ref_hist, "%s: resumed on %d ranks: the history differs from the uninterrupted one at %s" %
              (what, nprocs, mpitest.first_difference(hist or [], ref_hist)))

    # ---- kill one rank, resume ----------------------------------------------------------------------------
    # (name, rank to kill, kill when the log has this many lines, pause each checkpoint write, ranks to resume on,
    # options of both runs, options of the resumed run)
    SEEDED = ["--broadcast", "seeded"]
    SCENARIOS = [
        ("early", 1, 12, False, 3, [], []),
        ("middle", 0, total // 2, False, 1, [], []),
        ("late, seeded broadcast", 1, total - 14, False, 4, SEEDED, ["--groups", "2"]),
        ("in a checkpoint write", 0, 10, True, 2, [], []),
    ]
    kept = None  # a killed run's checkpoints, for the damage tests
    for name, victim, at, pause, resume_on, opts, resume_opts in SCENARIOS:
        what = "kill rank %d %s (generation %d)" % (victim, name, at)
        d = os.path.join(tmp, "kill%d" % len(os.listdir(tmp)))
        os.mkdir(d)
        ck, log = os.path.join(d, "c.h5"), os.path.join(d, "log.jsonl")
        env = dict(mpitest.ENV, NOGRAD_CKPT_PAUSE_MS="1000") if pause else None
        job = mpitest.start(2, RUN + opts + ["--checkpoint", ck, "--log", log], env=env,
                            pass_env=["NOGRAD_CKPT_PAUSE_MS"] if pause else [])
        ranks = job.wait_ranks(2)
        check(len(ranks) == 2, "%s: found the ranks %r, want 2" % (what, ranks))
        reached = mpitest.wait_for(lambda: mpitest.count_lines(log) >= at, job)
        if pause:
            reached = reached and mpitest.wait_for(lambda: os.path.exists(ck + ".tmp"), job)
        lines_at_kill = mpitest.count_lines(log)
        if check(reached and job.running() and victim in ranks, "%s: the run ended before the kill" % what):
            os.kill(ranks[victim], signal.SIGKILL)
        res = job.wait()
        lines = mpitest.count_lines(log)
        check(res.code not in (0, None) and not mpitest.mpilaunch.program_output(mpitest.MPIRUN, res.out).strip(),
              "%s: exit code %r and stdout %r; want a failure without a result" % (what, res.code, res.out))
        check(lines < total, "%s: the run got to the end (%d generations) despite the kill" % (what, lines))
        check(os.path.exists(ck), "%s: %s is missing after the kill (files: %r)" % (what, ck, os.listdir(d)))
        gen, hist = ckpt_generation(ck, what + ": " + ck)
        if gen is None:
            continue
        check(gen % EVERY == 0 and lines - EVERY <= gen <= lines,
              "%s: the checkpoint holds generation %r; want a multiple of %d within %d of the log's %d lines" %
              (what, gen, EVERY, EVERY, lines))
        check(hist == ref_hist[:len(hist)], "%s: the checkpoint's history is not the reference's first %d rows: %s" %
              (what, len(hist), mpitest.first_difference(hist, ref_hist)))
        if pause:
            check(os.path.exists(ck + ".tmp"), "%s: no %s.tmp after a kill during its write" % (what, ck))
            check(lines_at_kill % EVERY == 0 and gen == lines_at_kill - EVERY,
                  "%s: killed while writing the checkpoint of generation %d, but %s holds generation %r" %
                  (what, lines_at_kill, ck, gen))
        print("%s: ended in %.1f s with code %r; %s holds generation %d of the %d logged" %
              (what, res.seconds, res.code, os.path.basename(ck), gen, lines), flush=True)
        if name == "middle":
            kept = os.path.join(tmp, "kept")
            os.mkdir(kept)
            for f in ("c.h5", "c.h5.prev"):
                shutil.copy(os.path.join(d, f), kept)
        resume_and_compare(what, resume_on, ck, ck, opts + resume_opts)

    # ---- damaged checkpoints ------------------------------------------------------------------------------
    if check(kept is not None and os.path.exists(os.path.join(kept, "c.h5.prev")),
             "no checkpoint and previous checkpoint kept from the middle kill"):
        ck, prev = os.path.join(kept, "c.h5"), os.path.join(kept, "c.h5.prev")
        good = os.path.join(tmp, "good.h5")
        shutil.copy(ck, good)

        def refused(what, words):
            res, codes = mpitest.run_codes(2, RUN + ["--resume", ck, "--checkpoint", os.path.join(kept, "new.h5")],
                                           tmp)
            check(codes == {0: 1, 1: 1}, "%s: exit codes per rank %r, want 1 on both" % (what, codes))
            msgs = res.nograd_lines()
            if check(len(msgs) == 1, "%s: %d messages from nograd, want 1: %r" % (what, len(msgs), res.err)):
                for w in words:
                    check(w in msgs[0], "%s: the message %r does not say %r" % (what, msgs[0], w))
            check(not os.path.exists(os.path.join(kept, "new.h5")), "%s: a checkpoint was written" % what)
            print("%s: %s" % (what, msgs[0] if msgs else "?"))

        size = os.path.getsize(ck)
        with open(ck, "r+b") as f:
            f.truncate(size // 2)
        refused("a checkpoint cut to half its size", [ck, "is damaged", "truncated", prev])

        shutil.copy(good, ck)
        import h5py
        with h5py.File(ck, "r") as f:
            dset = f["/optimizer/algo/C"]
            offset, nbytes = dset.id.get_offset(), dset.size * dset.dtype.itemsize
        if check(offset is not None and nbytes > 100, "/optimizer/algo/C has no contiguous storage"):
            with open(ck, "r+b") as f:
                f.seek(offset + nbytes // 2 + 3)
                b = f.read(1)
                f.seek(offset + nbytes // 2 + 3)
                f.write(bytes([b[0] ^ 0x10]))
            refused("one byte flipped inside /optimizer/algo/C", [ck, "CRC-32", prev])
        resume_and_compare("resumed from the previous checkpoint after damage", 2, prev, ck)

    # ---- many resume cycles, across restarts ---------------------------------------------------------------
    # A run cut into pieces by growing budgets (--max-evals may change on resume), each piece on another rank
    # count and broadcast mode, ends where the uninterrupted run ends, with its history: the restart schedules
    # of IPOP and BIPOP are in the checkpoint.
    for policy, dim, seed, budgets in (("ipop", 6, 2, [1500, 3000, 4500, 6000, 7500]),
                                       ("bipop", 5, 4, [2000, 3500, 5000, 6500, 8000])):
        args = ["minimize", "--function", "rastrigin", "--dim", str(dim), "--x0", "3", "--sigma0", "2", "--restarts",
                policy, "--ftarget", "1e-8", "--seed", str(seed), "--quiet", "--json"]
        what = "%s rastrigin-%d in %d pieces" % (policy, dim, len(budgets) + 1)
        whole = os.path.join(tmp, policy + "_whole.h5")
        res = mpitest.run(1, args + ["--max-evals", "100000", "--checkpoint", whole])
        check(res.code == 0, "%s: the whole run: exit code %r, stderr %r" % (what, res.code, res.err[-2000:]))
        one = mpitest.parse_result(res, what + ": the whole run")
        ck = os.path.join(tmp, policy + "_pieces.h5")
        obj = None
        for i, budget in enumerate(budgets + [100000]):
            res = mpitest.run(i % 4 + 1, args + ["--max-evals", str(budget), "--checkpoint", ck,
                                                 "--broadcast", ("explicit", "seeded")[i % 2]] +
                              (["--resume", ck] if i else []))
            check(res.code == 0, "%s: piece %d: exit code %r, stderr %r" % (what, i, res.code, res.err[-2000:]))
            obj = mpitest.parse_result(res, "%s: piece %d" % (what, i))
            if obj and i < len(budgets):
                check(obj["stop_reason"] == "maxfevals", "%s: piece %d ended by %r, not its budget" %
                      (what, i, obj["stop_reason"]))
        if one and obj:
            check(one["restarts"] >= 2, "%s: only %d restarts in the whole run" % (what, one["restarts"]))
            check(mpitest.without_seconds(obj) == mpitest.without_seconds(one),
                  "%s: %r; the whole run %r" % (what, obj, one))
            a, b = mpitest.ckpt_history(whole), mpitest.ckpt_history(ck)
            check(a == b, "%s: the histories differ at %s" % (what, mpitest.first_difference(a or [], b or [])))
            print("%s: the whole run's %r" % (what, mpitest.without_seconds(one)), flush=True)

mpitest.finish("test_resume")
