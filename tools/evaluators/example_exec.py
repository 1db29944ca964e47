#!/usr/bin/env python3
"""An example exec: evaluator in Python 3 (standard library only), frame format version 1 (README.md here).

Scores the shifted sphere f(x) = sum_i (x_i - s)^2, s = 1 unless --shift says otherwise:

    nograd ... --evaluator "exec:python3 tools/evaluators/example_exec.py [--shift S]"

Frames come on stdin and replies go to stdout, in binary; anything meant for a person goes to stderr.
Every integer is little-endian ("<" in struct), every real a float64. It exits 0 on BYE or at end of input.
"""
import struct
import sys

MAGIC = b"NGEV"
VERSION = 1
HELLO, EVAL, BYE = 1, 2, 3
HELLO_REPLY, EVAL_REPLY = 0x81, 0x82
HEADER = struct.Struct("<4sIQ")  # magic, type, body length
HELLO_BODY = struct.Struct("<6I")  # version, n, nchunks, rank, nranks, model path length
EVAL_BODY = struct.Struct("<QIIIIII")  # generation, chunk, seq, first, m, n, reserved


def read_exact(f, size):
    """size bytes, or None at end of input."""
    data = f.read(size)
    return data if data is not None and len(data) == size else None


def objective(x, shift):
    return sum((v - shift) ** 2 for v in x)


def main(argv):
    shift = 1.0
    if len(argv) == 3 and argv[1] == "--shift":
        shift = float(argv[2])
    elif len(argv) != 1:
        print("usage: example_exec.py [--shift S]", file=sys.stderr)
        return 2
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    n = 0
    while True:
        head = read_exact(inp, HEADER.size)
        if head is None:
            return 0  # nograd is gone
        magic, ftype, length = HEADER.unpack(head)
        if magic != MAGIC:
            print("example_exec.py: bad magic %r" % magic, file=sys.stderr)
            return 2
        body = read_exact(inp, length) if length else b""
        if body is None:
            return 0
        if ftype == HELLO:
            version, n, nchunks, rank, nranks, plen = HELLO_BODY.unpack_from(body)
            model = body[HELLO_BODY.size:HELLO_BODY.size + plen].decode("utf-8") or None
            out.write(struct.pack("<4sIII", MAGIC, HELLO_REPLY, VERSION, 0))
        elif ftype == EVAL:
            generation, chunk, seq, first, m, n_req, _ = EVAL_BODY.unpack_from(body)
            if n_req != n:
                print("example_exec.py: EVAL with n=%d, HELLO said %d" % (n_req, n), file=sys.stderr)
                return 2
            x = struct.unpack_from("<%dd" % (m * n), body, EVAL_BODY.size)
            losses = [objective(x[k * n:(k + 1) * n], shift) for k in range(m)]
            out.write(struct.pack("<4sIII%dd" % m, MAGIC, EVAL_REPLY, seq, m, *losses))
        elif ftype == BYE:
            return 0
        # any other type: a later version's frame, skipped (its body has been read)
        out.flush()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except BrokenPipeError:  # nograd closed the pipe: nothing left to do
        sys.exit(0)
