#!/usr/bin/python3
"""nograd's files are checked before libhdf5 reads them (issue #14; src/io/seal.h).

Usage: test_hostile_files.py NOGRAD [MPIRUN]

- Every file nograd writes (checkpoint, model, dataset) carries nograd's header in its 512-byte HDF5 user block:
  the CRC-32 of every byte after it; h5py reads the files as before.
- A damaged file of each kind (a flipped byte, a truncation, a damaged header, bytes appended) is refused by
  `nograd verify`, `inspect` and `eval` with exit status 1 and one line naming the file and saying it is
  damaged; nograd 0.1 handed such files to libhdf5, which read some of them into wrong results.
- A file without the header (what h5py, another tool or nograd 0.1 writes) is read by a separate process first
  and then used as before, also under mpirun and with NOGRAD_PROBE=off.
- A full disk (the temporary file on /dev/full) ends a checkpoint, model or dataset write with exit status 1,
  one line naming the file and the system's reason, no temporary file left and the previous file intact;
  nograd 0.1 printed libhdf5's "infinite loop closing library" or died in its exit handler.
"""
import json
import os
import struct
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import ENV, MPIRUN, check, failures, run  # noqa: E402

clitest.TIMEOUT = 60


def must(args, what):
    code, out, err = run(args)
    check(code == 0, "%s: exit %d, %r" % (what, code, err.strip()[-300:]))
    return out


def sealed_ok(path):
    """Whether the file starts with nograd's header and its CRC and length hold."""
    data = open(path, "rb").read()
    if len(data) < 512 or data[:8] != clitest.SEAL_MAGIC or data[64:72] != clitest.SEAL_MAGIC:
        return False
    length, crc, hcrc = struct.unpack_from("<QII", data, 16)
    block = data[:28] + b"\0\0\0\0" + data[32:512]
    return length == len(data) - 512 and crc == zlib.crc32(data[512:]) and hcrc == zlib.crc32(block)


def refused(args, path, words, env=None):
    code, out, err = run(args, env=env)
    lines = [line for line in err.splitlines() if line.strip()]
    name = " ".join(os.path.basename(a) for a in args[:3])
    check(code == 1 and len(lines) == 1 and path in err and all(w in err for w in words),
          "%s on %s: exit %d (want 1), one line naming it with %r: %r" % (name, os.path.basename(path), code,
                                                                         words, err.strip()[-400:]))


with tempfile.TemporaryDirectory() as tmp:
    def p(name):
        return os.path.join(tmp, name)

    data, model, ckpt, spec = p("d.h5"), p("m.h5"), p("c.h5"), p("spec.txt")
    must(["data", "synth", "vectors", "--domain", "upright", "--rows", "200", "--dim", "8", "--classes", "3",
          "--out", data], "data synth")
    with open(spec, "w") as f:
        f.write("input 8\ndense fc1 6\nrelu\ndense fc2 3\n")
    must(["train", "--spec", spec, "--train", data, "--epochs", "1", "--quiet", "--out", model], "train")
    must(["minimize", "--function", "sphere", "--dim", "4", "--max-evals", "80", "--quiet", "--checkpoint", ckpt],
         "minimize")
    files = {"dataset": data, "model": model, "checkpoint": ckpt}

    # ---- sealed as written, readable by h5py --------------------------------------------------------------
    for kind, path in files.items():
        check(sealed_ok(path), "%s: nograd's header with the CRC-32 of the content" % kind)
        out = must(["verify", path], "verify %s" % kind)
        check(out.startswith("%s: ok: %s, sealed (CRC-32 " % (path, kind)), "verify %s: %r" % (kind, out))
    try:
        import h5py
        for kind, path in files.items():
            with h5py.File(path, "r") as h:
                check(h.userblock_size == 512 and len(h.keys()) > 0,
                      "h5py reads the %s (user block %d, keys %r)" % (kind, h.userblock_size, list(h.keys())))
    except ImportError:
        print("SKIP h5py checks: no h5py")

    def use(kind, path):
        """The command that reads a file of this kind in earnest."""
        if kind == "checkpoint":
            return ["inspect", path]
        if kind == "model":
            return ["eval", path, data]
        return ["eval", model, path]

    # ---- damage ---------------------------------------------------------------------------------------------
    for kind, path in files.items():
        good = open(path, "rb").read()
        bad = p("bad-" + os.path.basename(path))
        cases = []
        flipped = bytearray(good)
        flipped[len(good) // 2] ^= 0x10
        cases.append(("a flipped byte", bytes(flipped), ["is damaged", "does not match the CRC-32"]))
        cases.append(("cut to half", good[:len(good) // 2], ["is damaged", "truncated"]))
        cases.append(("a damaged magic", b"\0" + good[1:], ["is damaged", "header"]))
        head = bytearray(good)
        head[20] ^= 1  # the length field, which the header's own CRC covers
        cases.append(("a damaged header", bytes(head), ["is damaged", "header"]))
        cases.append(("bytes appended", good + b"\0" * 100, ["is damaged", "appended"]))
        for what, content, words in cases:
            with open(bad, "wb") as f:
                f.write(content)
            code, out, err = run(["verify", bad])
            check(code == 1 and out.startswith(bad + ": FAILED: ") and all(w in out for w in words),
                  "verify, %s with %s: exit %d, %r" % (kind, what, code, out.strip()))
            refused(use(kind, bad), bad, words)

    # ---- no header: read by a separate process first -------------------------------------------------------
    plain = {}
    for kind, path in files.items():
        plain[kind] = p("plain-" + os.path.basename(path))
        with open(plain[kind], "wb") as f:
            f.write(open(path, "rb").read()[512:])
        out = must(["verify", plain[kind]], "verify %s without a header" % kind)
        check(" ok: %s, without nograd's header" % kind in out, "verify %s without a header: %r" % (kind, out))
    def result(out):
        """eval's loss, metric and count, without its timing."""
        r = json.loads(out) if out.strip() else {}
        return (r.get("loss"), r.get("accuracy"), r.get("n"))

    want = result(must(["eval", model, data, "--json"], "eval sealed"))
    check(result(must(["eval", plain["model"], plain["dataset"], "--json"], "eval without headers")) == want,
          "eval of the files without their headers gives the same result")
    off = dict(ENV, NOGRAD_PROBE="off")
    code, out, err = run(["eval", plain["model"], plain["dataset"], "--json"], env=off)
    check(code == 0 and result(out) == want, "NOGRAD_PROBE=off reads them in-process: exit %d, %r" % (code, err))
    code, out, err = run(["inspect", plain["checkpoint"]])
    check(code == 0 and "nograd checkpoint" in out, "inspect a checkpoint without its header: %r" % err)
    if MPIRUN:
        code, out, err = run(["eval", plain["model"], plain["dataset"], "--json"], mpi=2)
        check(code == 0 and result(out) == want, "mpirun -n 2 eval of files without headers: exit %d, %r" % (code, err))
    else:
        print("SKIP the MPI check: no mpirun")
    # a file without a header that libhdf5 cannot read: refused by the checking process's reader, same words
    with open(p("text.h5"), "w") as f:
        f.write("not hdf5\n")
    refused(["eval", p("text.h5"), data], p("text.h5"), ["not a readable HDF5 file"])

    # ---- a full disk ---------------------------------------------------------------------------------------
    writes = [
        ("checkpoint", ckpt, ["minimize", "--function", "sphere", "--dim", "4", "--max-evals", "80", "--quiet",
                              "--checkpoint", ckpt]),
        ("model", model, ["train", "--spec", spec, "--train", data, "--epochs", "1", "--quiet", "--out", model]),
        ("dataset", data, ["data", "synth", "vectors", "--domain", "upright", "--rows", "200", "--dim", "8",
                           "--classes", "3", "--out", data]),
    ]
    for kind, path, args in writes:
        before = open(path, "rb").read()
        prev = open(path + ".prev", "rb").read() if os.path.exists(path + ".prev") else None
        os.symlink("/dev/full", path + ".tmp")
        code, out, err = run(args)
        lines = [line for line in err.splitlines() if line.strip()]
        check(code == 1 and len(lines) == 1 and "No space left on device" in err and path + ".tmp" in err,
              "%s written to a full disk: exit %d, one line with the reason: %r" % (kind, code, err.strip()))
        check(not os.path.lexists(path + ".tmp"), "%s: the temporary file is removed" % kind)
        check(open(path, "rb").read() == before, "%s: the previous file is intact" % kind)
        if prev is not None:
            check(open(path + ".prev", "rb").read() == prev, "%s: the .prev file is intact" % kind)
        must(["verify", path], "verify the %s after the failed write" % kind)

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
