"""External evaluators in a few lines: serve(score) speaks nograd's exec: frame format (version 1).

    import numpy as np
    from nograd.evaluator import serve

    def score(X, chunk, generation, start):      # X: (m, n) float64, one candidate per row
        return ((X - 1.0) ** 2).sum(axis=1)       # m losses; NaN means "could not be scored"

    serve(score)                                  # nograd ... --evaluator "exec:python3 this.py"

serve reads nograd's frames from stdin, answers HELLO, calls score once per EVAL request and writes its reply,
flushing each one, and ends the process as the protocol says: status 0 on BYE or when stdin ends (nograd is
gone). The frame format is documented byte by byte in tools/evaluators/README.md; nothing of it is left to
the evaluator. This module needs numpy, not libnograd.

score(X, chunk, generation, start) gets the m candidates of one request on data chunk `chunk` (0 <= chunk <
nchunks), their generation (counted from 0; GENERATION_START = 2**64 - 1 for the start point that `nograd
retrofit` scores before the search) and `start`, the index within its generation of X's first row. It returns
m losses, or with counts=True a pair (losses, counts): a loss summed over a chunk's examples and their number,
so that nograd's mean over chunks of different sizes is exact.

What serve guards against:
  - stdout is the frame channel, so serve moves it aside: while it runs, file descriptor 1 (print, C
    libraries, child processes) goes to stderr, and only serve writes frames. A stray print is a log line,
    not a malformed reply.
  - score raising, or returning the wrong number of losses or a bad count, ends the process with status 1
    and the reason on stderr (the last line names it). nograd then gives that request's candidates NaN
    losses and restarts the evaluator, up to its --max-restarts, and quotes what happened.
  - init(hello), if given, is called once with the HELLO frame's fields (version, n, nchunks, rank, nranks,
    model: the model file's path or None) before serve answers it: the place to load a model. If it raises,
    nograd reports a failed start.
"""
import collections
import os
import struct
import sys
import traceback

try:
    import numpy as np
except ImportError as e:  # an evaluator's stderr is what nograd quotes when it fails to start: say what to do
    raise ImportError("nograd.evaluator needs numpy, which %s does not have (Debian: apt-get install "
                      "python3-numpy)" % sys.executable) from e

__all__ = ["serve", "Hello", "GENERATION_START"]

MAGIC = b"NGEV"
VERSION = 1
HELLO, EVAL, BYE = 1, 2, 3
HELLO_REPLY, EVAL_REPLY = 0x81, 0x82
FLAG_COUNTS = 1
GENERATION_START = 2 ** 64 - 1  # the start point's generation (NG_FRAME_GENERATION_START)

_HEADER = struct.Struct("<4sIQ")  # magic, type, body length
_HELLO_BODY = struct.Struct("<6I")  # version, n, nchunks, rank, nranks, model path length
_EVAL_BODY = struct.Struct("<QIIIIII")  # generation, chunk, seq, first, m, n, reserved
_REPLY = struct.Struct("<4sIII")  # magic, type, seq or version, m or flags

Hello = collections.namedtuple("Hello", "version n nchunks rank nranks model")


class _Refused(Exception):
    """score's answer breaks the protocol: serve ends with status 1 and this message."""


def _read_exact(inp, size):
    """size bytes as a bytearray, or None when the input ends first."""
    buf = bytearray(size)
    view, got = memoryview(buf), 0
    while got < size:
        k = inp.readinto(view[got:])
        if not k:
            return None
        got += k
    return buf


def _column(values, m, what, request):
    """values as m float64s, or _Refused naming the request."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise _Refused("score returned %s that are not numbers (%s) for %s" % (what, e, request)) from None
    if v.size != m or (v.ndim > 1 and v.shape[0] != m):
        raise _Refused("score returned %d %s for the %d candidates of %s" % (v.size, what, m, request))
    return v.reshape(m)


def _reply(score, counts, body, n):
    """The EVAL reply's bytes for one request's body."""
    if len(body) < _EVAL_BODY.size:
        raise _Protocol("an EVAL frame of %d bytes, shorter than its %d-byte header" % (len(body), _EVAL_BODY.size))
    generation, chunk, seq, first, m, n_req, _ = _EVAL_BODY.unpack_from(body)
    if n_req != n or len(body) != _EVAL_BODY.size + 8 * m * n:
        raise _Protocol("an EVAL frame of %d candidates of dimension %d in %d bytes (HELLO said n = %d)" %
                        (m, n_req, len(body), n))
    X = np.frombuffer(body, dtype="<f8", count=m * n, offset=_EVAL_BODY.size).reshape(m, n)
    if not X.dtype.isnative:  # a big-endian host
        X = X.astype(np.float64)
    out = score(X, chunk, generation, first)
    request = "request %d (generation %d, chunk %d)" % (seq, generation, chunk)
    if counts:
        try:
            losses, cnt = out
        except (TypeError, ValueError):
            raise _Refused("score must return (losses, counts) with counts=True; it returned %s for %s" %
                           (type(out).__name__, request)) from None
        pairs = np.empty((m, 2), dtype="<f8")
        pairs[:, 0] = _column(losses, m, "losses", request)
        pairs[:, 1] = _column(cnt, m, "counts", request)
        bad = np.flatnonzero(~(np.isfinite(pairs[:, 1]) & (pairs[:, 1] >= 0)))
        if bad.size:
            raise _Refused("score returned count %r for candidate %d of %s: a count must be finite and >= 0" %
                           (pairs[bad[0], 1], bad[0], request))
        payload = pairs.tobytes()
    else:
        payload = _column(out, m, "losses", request).astype("<f8").tobytes()
    return _REPLY.pack(MAGIC, EVAL_REPLY, seq, m) + payload


class _Protocol(Exception):
    """A frame serve does not understand: nograd speaks another version, or something else writes to stdin."""


def _channels(stdin, stdout):
    """The frame streams: the given ones, or stdin and a duplicate of stdout, fd 1 then going to stderr."""
    inp = stdin if stdin is not None else sys.stdin.buffer
    if stdout is not None:
        return inp, stdout
    sys.stdout.flush()
    frames = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # print(), C libraries and children: to stderr
    return inp, open(frames, "wb", buffering=0)


def serve(score, counts=False, init=None, stdin=None, stdout=None):
    """Answers nograd's requests with score until nograd says BYE or goes away, then ends the process.

    score(X, chunk, generation, start) -> m losses, or (losses, counts) with counts=True (see the module's
    documentation). init(hello), optional, receives the HELLO frame's fields (a Hello) before the reply.
    stdin and stdout default to the process's own (binary) streams; tests may pass others.

    It does not return: it raises SystemExit with status 0 (BYE, end of input), 1 (score or init failed, or
    answered wrongly: the reason is on stderr) or 2 (a frame it does not understand)."""
    inp, out = _channels(stdin, stdout)
    n = 0
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "evaluator"
    try:
        while True:
            head = _read_exact(inp, _HEADER.size)
            if head is None:
                raise SystemExit(0)  # nograd is gone
            magic, ftype, length = _HEADER.unpack(head)
            if magic != MAGIC:
                raise _Protocol("a frame without the magic 'NGEV' (found %r)" % bytes(magic))
            body = _read_exact(inp, length) if length else bytearray()
            if body is None:
                raise SystemExit(0)
            if ftype == HELLO:
                if len(body) < _HELLO_BODY.size:
                    raise _Protocol("a HELLO frame of %d bytes" % len(body))
                version, n, nchunks, rank, nranks, plen = _HELLO_BODY.unpack_from(body)
                model = bytes(body[_HELLO_BODY.size:_HELLO_BODY.size + plen]).decode("utf-8") or None
                if init is not None:
                    init(Hello(version, n, nchunks, rank, nranks, model))
                out.write(_REPLY.pack(MAGIC, HELLO_REPLY, VERSION, FLAG_COUNTS if counts else 0))
            elif ftype == EVAL:
                out.write(_reply(score, counts, body, n))
            elif ftype == BYE:
                raise SystemExit(0)
            else:
                continue  # a later version's frame type: skipped, as its length allows
            out.flush()
    except BrokenPipeError:
        raise SystemExit(0) from None  # nograd closed the pipe: nothing left to do
    except _Refused as e:
        sys.stderr.write("%s: %s\n" % (name, e))
        raise SystemExit(1) from None
    except _Protocol as e:
        sys.stderr.write("%s: nograd.evaluator.serve: %s; this is frame format version %d\n" % (name, e, VERSION))
        raise SystemExit(2) from None
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception:  # score or init failed: the traceback, its last line the exception
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(1) from None
