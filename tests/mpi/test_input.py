#!/usr/bin/python3
"""MPI test: bad input under mpirun gets one clear message (rank 0's) and the same non-zero exit code on every
rank, within the time limit; idle ranks are harmless; a checkpoint of another configuration is refused unless
--force.

Usage: test_input.py NOGRAD MPIRUN

Each bad case runs on 3 ranks twice: once with every rank writing its own exit code (Open MPI told not to end
the others), which must all be the expected code, and once plainly, where mpirun must exit with that code too.
Both times stderr must hold exactly one line that mentions the fault, and it starts with "nograd" (not one per
rank; mpirun's banners name no fault). Exit codes: 2 for a bad command line (unknown optimizer or function, a
grid that does not divide the ranks), 1 for a runtime error (a file).
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_input")

SMALL = ["minimize", "--function", "logistic", "--dim", "5", "--rows", "2000", "--chunk-rows", "1000", "--quiet"]
SPHERE = ["minimize", "--function", "sphere", "--dim", "4", "--max-evals", "200", "--quiet"]


def bad(what, nprocs, args, code, words, tmp):
    """Runs a case that must fail: every rank exits `code`, stderr has one line naming the fault (all of
    `words`, the first of which is the fault's key word)."""
    res, codes = mpitest.run_codes(nprocs, args, tmp)
    check(codes == {r: code for r in range(nprocs)},
          "%s: exit codes per rank %r, want %d on all %d" % (what, codes, code, nprocs))
    plain = mpitest.run(nprocs, args)
    check(mpitest.mpilaunch.code_ok(mpitest.MPIRUN, plain.code, code),
          "%s: mpirun exit code %r, want %d" % (what, plain.code, code))
    for r in (res, plain):
        mention = [line for line in r.err.splitlines() if words[0] in line]
        if check(len(mention) == 1, "%s: %d lines on stderr mention %r, want 1: %r" %
                 (what, len(mention), words[0], r.err[-3000:])):
            check(mention[0].startswith("nograd"), "%s: the message %r is not nograd's" % (what, mention[0]))
            for w in words[1:]:
                check(w in mention[0], "%s: the message %r does not say %r" % (what, mention[0], w))
        check(not r.out.strip(), "%s: stdout not empty: %r" % (what, r.out))
    print("%s: %s" % (what, (mention or ["?"])[0]), flush=True)


with mpitest.tempdir() as tmp:
    bad("unknown optimizer", 3, SPHERE + ["--optimizer", "foo"], 2, ["foo", "optimizer"], tmp)
    bad("unknown function", 3, ["minimize", "--function", "foo", "--dim", "4"], 2, ["foo", "function"], tmp)
    bad("3 ranks in 2 groups", 3, SMALL + ["--groups", "2"], 2, ["--groups 2", "3 ranks"], tmp)

    # unwritable checkpoints: found by the first checkpoint, before any generation
    bad("checkpoint in a missing directory", 3, SPHERE + ["--checkpoint", "/nonexistent_dir/c.h5"], 1,
        ["/nonexistent_dir/c.h5", "No such file or directory"], tmp)
    plain = os.path.join(tmp, "plain_file")
    with open(plain, "w") as f:
        f.write("not a directory\n")
    bad("checkpoint under a regular file", 3, SPHERE + ["--checkpoint", plain + "/c.h5"], 1,
        [plain + "/c.h5", "Not a directory"], tmp)

    # --resume of files that are not checkpoints
    empty = os.path.join(tmp, "empty.h5")
    open(empty, "w").close()
    text = os.path.join(tmp, "text.h5")
    with open(text, "w") as f:
        f.write("function=sphere\ndim=4\n" * 100)
    other = os.path.join(tmp, "other.h5")
    import h5py
    import numpy
    with h5py.File(other, "w") as f:
        f["x"] = numpy.arange(10.0)
        f["optimizer/algo/C"] = numpy.eye(4).ravel()
    missing = os.path.join(tmp, "missing.h5")
    bad("--resume of an empty file", 3, SPHERE + ["--resume", empty], 1, [empty, "not a readable HDF5 file"], tmp)
    bad("--resume of a text file", 3, SPHERE + ["--resume", text], 1, [text, "not a readable HDF5 file"], tmp)
    bad("--resume of an HDF5 file without /meta", 3, SPHERE + ["--resume", other], 1,
        [other, "not a nograd checkpoint", "/meta"], tmp)
    bad("--resume of a missing file", 3, SPHERE + ["--resume", missing], 1, [missing, "No such file"], tmp)

    # more ranks than chunks: 2 chunks, 4 ranks in one group: two ranks have no data and the result is P=1's
    for mode in ("explicit", "seeded"):
        results = []
        for nprocs, groups in ((1, 1), (4, 1)):
            log = os.path.join(tmp, "idle%d%s.jsonl" % (nprocs, mode))
            what = "2 chunks on %d ranks, %s" % (nprocs, mode)
            res = mpitest.run(nprocs, SMALL + ["--groups", str(groups), "--broadcast", mode, "--max-evals", "1500",
                                               "--log", log, "--json"])
            check(res.code == 0, "%s: exit code %r, stderr %r" % (what, res.code, res.err[-2000:]))
            results.append((mpitest.parse_result(res, what), mpitest.log_history(mpitest.read_log(log))))
        (one, one_hist), (four, four_hist) = results
        check(one is not None and one["generations"] > 50, "2 chunks, %s: a run too short: %r" % (mode, one))
        check(mpitest.without_seconds(one) == mpitest.without_seconds(four),
              "2 chunks, %s: 1 rank %r, 4 ranks (2 idle) %r" % (mode, one, four))
        check(one_hist == four_hist, "2 chunks, %s: the histories differ at %s" %
              (mode, mpitest.first_difference(one_hist, four_hist)))
    print("2 chunks on 4 ranks (2 idle): the result and history of 1 rank", flush=True)

    # a checkpoint of another configuration: refused, naming the difference and --force; with --force it goes on
    ck = os.path.join(tmp, "seed1.h5")
    res = mpitest.run(2, SMALL + ["--seed", "1", "--max-evals", "300", "--checkpoint", ck, "--json"])
    check(res.code == 0, "checkpointed run: exit code %r, stderr %r" % (res.code, res.err[-2000:]))
    first = mpitest.parse_result(res, "checkpointed run")
    saved = mpitest.ckpt_history(ck) or []
    args = SMALL + ["--seed", "2", "--max-evals", "600", "--resume", ck]
    bad("--resume with another --seed", 3, args, 1, ["--force", ck, "seed=1", "seed=2"], tmp)
    res = mpitest.run(3, args + ["--force", "--checkpoint", os.path.join(tmp, "forced.h5"), "--json"])
    check(res.code == 0, "--resume --force: exit code %r, stderr %r" % (res.code, res.err[-2000:]))
    forced = mpitest.parse_result(res, "--resume --force")
    hist = mpitest.ckpt_history(os.path.join(tmp, "forced.h5")) or []
    if first and forced:
        check(forced["evaluations"] >= 600 and forced["generations"] > first["generations"],
              "--resume --force with --max-evals 600: %r after %r" % (forced, first))
        check(len(saved) == first["generations"] and hist[:len(saved)] == saved,
              "--resume --force: the history does not start with the checkpoint's %d rows" % len(saved))
        print("--resume --force: went on from generation %d to %d" % (first["generations"], forced["generations"]))

mpitest.finish("test_input")
