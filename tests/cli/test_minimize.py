#!/usr/bin/python3
"""Command-line tests of `nograd minimize`: help, usage errors, the --json report, determinism, and MPI.

Usage: test_minimize.py NOGRAD [MPIRUN]

Runs the built binary as a user would and compares what it prints against what the command promises: --help
documents every option; a bad option or value gives exactly one line on stderr naming it and exit code 2;
--json prints one JSON line on stdout (progress lines, if any, go to stderr); the same command gives the same result (all but the time); under
`mpirun -n 2` the result is bit-identical to the 1-process one, and a usage error is reported
once (by rank 0) while both ranks exit with code 2. Without MPIRUN the MPI checks are skipped (and say so).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import ENV, MPIRUN, NOGRAD, check, failures, run  # noqa: E402

clitest.TIMEOUT = 30  # seconds for any one command; the CTest limit of the whole script is 60
TIMEOUT = clitest.TIMEOUT

OPTIONS = ["--function", "--dim", "--optimizer", "--popsize", "--restarts", "--max-restarts", "--x0", "--sigma0",
           "--seed", "--ftarget", "--max-evals", "--json"]
JSON_KEYS = {"evaluations": int, "f_best": float, "stop_reason": str, "generations": int, "restarts": int,
             "seconds": (int, float)}


def nonempty_lines(text):
    return [line for line in text.splitlines() if line.strip()]


def json_result(args, mpi=0):
    """Runs a minimization with --json and returns (parsed object, the raw line), checking the format."""
    code, out, err = run(["minimize"] + args + ["--json"], mpi)
    name = " ".join(args) + (" (mpirun -n %d)" % mpi if mpi else "")
    check(code == 0, "%s: exit code %d, stderr %r" % (name, code, err))
    lines = out.splitlines()
    if not check(len(lines) == 1, "%s --json: %d lines on stdout, want exactly 1: %r" % (name, len(lines), out)):
        return None, None
    try:
        obj = json.loads(lines[0])
    except ValueError as e:
        check(False, "%s --json: not JSON (%s): %r" % (name, e, lines[0]))
        return None, None
    for key, kind in JSON_KEYS.items():
        if check(key in obj, "%s --json: no key %r in %r" % (name, key, lines[0])):
            check(isinstance(obj[key], kind) and not isinstance(obj[key], bool),
                  "%s --json: %r is %r, want %s" % (name, key, obj[key], kind))
    return obj, lines[0]


def raw_field(line, key):
    """The text of one number in the JSON line, so that f_best is compared digit for digit (%.17g: exact)."""
    m = re.search(r'"%s":([^,}]*)' % re.escape(key), line)
    return m.group(1) if m else None


def without_seconds(obj):
    return {k: v for k, v in obj.items() if k != "seconds"}


# ---- help -------------------------------------------------------------------------------------------------

code, out, err = run(["minimize", "--help"])
check(code == 0, "--help: exit code %d" % code)
check(err == "", "--help: stderr not empty: %r" % err)
check(out.startswith("usage: nograd minimize"), "--help: does not start with the usage line: %r" % out[:80])
for opt in OPTIONS:
    m = re.search(r"^\s+%s(\s|$)" % re.escape(opt), out, re.M)
    if check(m is not None, "--help does not document %s" % opt):
        line = out[m.start():].splitlines()[0]
        check(len(line.split()) >= 2, "--help: %s has no description: %r" % (opt, line))

# ---- usage errors -----------------------------------------------------------------------------------------

BASE = ["minimize", "--function", "sphere", "--dim", "3", "--max-evals", "100"]
# (arguments, words the one line must contain)
BAD = [
    (["minimize", "--bogus"], ["--bogus"]),
    (BASE + ["--bogus"], ["--bogus"]),
    (BASE + ["--bogus=3"], ["--bogus"]),
    (["minimize", "--function", "sphere", "--dim", "abc"], ["--dim", "abc"]),
    (["minimize", "--function", "sphere", "--dim", "0"], ["--dim", "0"]),
    (BASE + ["--sigma0", "-1"], ["--sigma0", "-1"]),
    (BASE + ["--sigma0", "nan"], ["--sigma0", "nan"]),
    (BASE + ["--x0", "1,2"], ["--x0", "3"]),
    (BASE + ["--x0", "1,,2"], ["--x0", "1,,2"]),
    (BASE + ["--restarts", "foo"], ["--restarts", "foo"]),
    (BASE + ["--optimizer", "foo"], ["optimizer", "foo"]),
    (["minimize", "--function", "foo", "--dim", "3"], ["function", "foo"]),
    (BASE + ["--seed", "-3"], ["--seed", "-3"]),
    (BASE + ["--max-evals", "1.5"], ["--max-evals", "1.5"]),
    (BASE + ["--popsize"], ["--popsize"]),
    (BASE + ["--json=yes"], ["--json"]),
    (["minimize", "--dim", "3"], ["--function"]),
]
for args, words in BAD:
    code, out, err = run(args)
    name = " ".join(args[1:])
    check(code == 2, "%s: exit code %d, want 2" % (name, code))
    check(out == "", "%s: stdout not empty: %r" % (name, out))
    lines = nonempty_lines(err)
    if check(len(lines) == 1, "%s: %d lines on stderr, want 1: %r" % (name, len(lines), err)):
        for w in words:
            check(w in lines[0], "%s: the message %r does not name %r" % (name, lines[0], w))
        check(lines[0].startswith("nograd"), "%s: the message %r does not start with the program" % (name, lines[0]))

# ---- the report -------------------------------------------------------------------------------------------

SPHERE = ["--function", "sphere", "--dim", "5", "--x0", "3", "--sigma0", "2", "--ftarget", "1e-8", "--seed", "3"]
first, first_line = json_result(SPHERE)
if first:
    check(first["stop_reason"] == "ftarget", "sphere: stop_reason %r, want ftarget" % first["stop_reason"])
    check(0 <= first["f_best"] <= 1e-8, "sphere: f_best %r above ftarget" % first["f_best"])
    check(first["evaluations"] > 0 and first["evaluations"] % first["generations"] == 0,
          "sphere: %d evaluations in %d generations of one population size" %
          (first["evaluations"], first["generations"]))
    check(first["restarts"] == 0, "sphere: %d restarts without a restart policy" % first["restarts"])

    again, again_line = json_result(SPHERE)
    if again:
        check(without_seconds(again) == without_seconds(first),
              "the same command twice: %r then %r" % (first_line, again_line))
        check(raw_field(again_line, "f_best") == raw_field(first_line, "f_best"),
              "f_best printed differently: %s vs %s" % (raw_field(first_line, "f_best"), raw_field(again_line, "f_best")))

    other, _ = json_result(SPHERE[:-1] + ["4"])
    if other:
        check(without_seconds(other) != without_seconds(first), "seeds 3 and 4 gave the same result")

    # the text report says what the JSON says
    code, out, err = run(["minimize"] + SPHERE + ["--quiet"])
    check(code == 0, "text report: exit code %d" % code)
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    check(fields.get("stop") == "ftarget", "text report: stop %r" % fields.get("stop"))
    check(fields.get("evaluations") == str(first["evaluations"]),
          "text report: evaluations %r, JSON %d" % (fields.get("evaluations"), first["evaluations"]))
    check(fields.get("f_best") == raw_field(first_line, "f_best"),
          "text report: f_best %r, JSON %r" % (fields.get("f_best"), raw_field(first_line, "f_best")))
    check(len(fields.get("x_best", "").split()) == 5, "text report: x_best %r has not 5 values" % fields.get("x_best"))

# a budget ends the run with its reason; IPOP reports its restarts
budget, _ = json_result(["--function", "rastrigin", "--dim", "4", "--max-evals", "500"])
if budget:
    check(budget["stop_reason"] == "maxfevals", "--max-evals 500: stop_reason %r" % budget["stop_reason"])
    check(500 <= budget["evaluations"] < 500 + 8, "--max-evals 500: %d evaluations" % budget["evaluations"])
IPOP = ["--function", "rastrigin", "--dim", "4", "--x0", "3", "--sigma0", "2", "--restarts", "ipop",
        "--ftarget", "1e-8", "--max-evals", "100000", "--seed", "2"]
ipop, ipop_line = json_result(IPOP)
if ipop:
    check(ipop["restarts"] >= 1, "ipop on rastrigin 4-D: no restart (%r)" % ipop_line)

# ---- MPI --------------------------------------------------------------------------------------------------

if not MPIRUN:
    print("SKIP: no mpirun given; the MPI checks did not run")
else:
    ROT = ["--function", "rot-ellipsoid", "--dim", "8", "--ftarget", "1e-8", "--seed", "5"]
    for args in (ROT, IPOP, SPHERE + ["--optimizer", "sepcmaes"]):
        one, one_line = json_result(args)
        two, two_line = json_result(args, mpi=2)
        if one and two:
            check(without_seconds(one) == without_seconds(two),
                  "%s: 1 process %r, 2 processes %r" % (" ".join(args), one_line, two_line))
            check(raw_field(one_line, "f_best") == raw_field(two_line, "f_best"),
                  "%s: f_best %s with 1 process, %s with 2" %
                  (" ".join(args), raw_field(one_line, "f_best"), raw_field(two_line, "f_best")))

    # a usage error under MPI: one message (rank 0's), and mpirun fails
    code, out, err = run(["minimize", "--function", "sphere", "--dim", "3", "--bogus"], mpi=2)
    check(clitest.code_ok(code, None, 2), "mpirun --bogus: exit code 0")
    messages = [line for line in err.splitlines() if line.startswith("nograd")]
    check(len(messages) == 1, "mpirun --bogus: %d messages from nograd, want 1: %r" % (len(messages), err))
    check(all("--bogus" in m for m in messages), "mpirun --bogus: %r does not name --bogus" % messages)
    check(out.strip() == "", "mpirun --bogus: stdout not empty: %r" % out)

    # and every rank exits with 2: each rank writes its code to a file; mpirun is told not to kill the other
    # rank when the first one exits non-zero (which also makes Open MPI's mpirun itself exit 0)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(ENV, NG_CODES=tmp, **clitest.mpilaunch.keep_going_env(MPIRUN))
        wrapper = '"$@"; rc=$?; echo $rc > "$NG_CODES/rank.%s"; exit $rc' % clitest.mpilaunch.RANK_SHELL
        cmd = clitest.mpilaunch.command(MPIRUN, 2, ("OPENBLAS_NUM_THREADS", "NG_CODES")) + \
            ["/bin/sh", "-c", wrapper, "sh", NOGRAD, "minimize", "--function", "sphere", "--dim", "3", "--bogus"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=env)
        messages = [line for line in p.stderr.splitlines() if line.startswith("nograd")]
        check(len(messages) == 1, "mpirun --bogus: %d messages from nograd, want 1: %r" % (len(messages), p.stderr))
        codes = {}
        for name in sorted(os.listdir(tmp)):
            with open(os.path.join(tmp, name)) as f:
                codes[name] = f.read().strip()
        check(codes == {"rank.0": "2", "rank.1": "2"}, "mpirun --bogus: exit codes per rank %r, want 2 on both" % codes)

# no finite loss at all: JSON has no inf, so the result and the log say null
with tempfile.TemporaryDirectory() as tmp:
    log = os.path.join(tmp, "log.jsonl")
    code, out, err = run(["minimize", "--function", "sphere", "--dim", "3", "--x0", "1e300", "--sigma0", "1e300",
                          "--max-evals", "30", "--json", "--quiet", "--log", log])
    check(code == 0, "overflowing sphere: exit code %d, stderr %r" % (code, err))
    try:
        result = json.loads(out)
        check(result["f_best"] is None, "overflowing sphere: f_best %r, want null" % result["f_best"])
        rows = [json.loads(line) for line in open(log)]
        check(len(rows) == result["generations"] and all(r["best"] is None for r in rows),
              "overflowing sphere: log rows %r" % rows[:2])
    except ValueError as e:
        check(False, "overflowing sphere: not JSON (%s): %r" % (e, out))

print("%d failure(s)" % len(failures))
sys.exit(1 if failures else 0)
