"""Shared helpers of the MPI tests (tests/mpi/test_*.py): running `nograd` under mpirun with a time limit,
starting a run to signal or kill it, finding its ranks, reading logs and checkpoints, and the failure list.

Every script is run as `test_X.py NOGRAD MPIRUN` (see tests/CMakeLists.txt); without MPIRUN it prints SKIP and
exits 0. Each mpirun call is limited to TIMEOUT seconds; a run that overstays is killed (its whole process group,
which this module created) and counts as a failure.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mpilaunch  # noqa: E402

NOGRAD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
MPIRUN = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
TIMEOUT = 60  # seconds for any one mpirun

ENV = dict(os.environ)
ENV["OPENBLAS_NUM_THREADS"] = "1"
ENV.pop("NOGRAD_CKPT_PAUSE_MS", None)
if os.geteuid() == 0:  # Open MPI refuses root unless told twice
    ENV["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    ENV["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"

# The history columns that the determinism contract covers (the times and bytes are measurements).
HISTORY = ["generation", "evaluations", "best", "gen_best", "median", "sigma", "popsize", "restarts"]

failures = []
_started = time.time()


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)
    return cond


def skip_without_mpirun(name):
    if not NOGRAD or not MPIRUN:
        print("SKIP: %s needs NOGRAD and MPIRUN (usage: %s NOGRAD MPIRUN)" % (name, sys.argv[0]))
        sys.exit(0)


def finish(name):
    print("%s: %d failure(s), %.1f s" % (name, len(failures), time.time() - _started))
    sys.exit(1 if failures else 0)


def mpirun_cmd(nprocs, args, pass_env=()):
    """mpirun for nprocs ranks of nograd args, with OPENBLAS_NUM_THREADS and the variables pass_env passed on."""
    return mpilaunch.command(MPIRUN, nprocs, ("OPENBLAS_NUM_THREADS",) + tuple(pass_env)) + [NOGRAD] + list(args)


class Result:
    def __init__(self, code, out, err, seconds, timed_out=False):
        self.code, self.out, self.err, self.seconds, self.timed_out = code, out, err, seconds, timed_out

    def nograd_lines(self):
        """The lines on stderr that nograd wrote (mpirun's banners start otherwise)."""
        return [line for line in self.err.splitlines() if line.startswith("nograd")]


def run(nprocs, args, env=None, cwd=None, timeout=TIMEOUT):
    """`mpirun -n nprocs nograd args`, at most `timeout` seconds; a time-out is a failure (code None)."""
    p = start(nprocs, args, env=env, cwd=cwd)
    return p.wait(timeout)


class Job:
    """An mpirun started in its own process group, so that a run that hangs can be ended whole."""

    def __init__(self, cmd, env, cwd):
        self.cmd = cmd
        self.t0 = time.time()
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                  cwd=cwd, start_new_session=True)

    def wait(self, timeout=TIMEOUT):
        try:
            out, err = self.p.communicate(timeout=max(1.0, timeout - (time.time() - self.t0)))
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            out, err = self.p.communicate()
            check(False, "%s: still running after %d s; killed" % (" ".join(self.cmd), timeout))
            return Result(None, out, err, time.time() - self.t0, True)
        return Result(self.p.returncode, out, err, time.time() - self.t0)

    def running(self):
        return self.p.poll() is None

    def ranks(self):
        """{rank: pid} of the nograd processes that this mpirun started, by /proc: its descendants (Open MPI's
        ranks are its children, Hydra's the children of a proxy, each in a session of its own) running NOGRAD,
        with a rank variable in their environment."""
        parent, exe = {}, os.path.realpath(NOGRAD)
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        stat = f.read()
                    parent[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
                except (OSError, ValueError):
                    pass
        found = {}
        for pid in parent:
            up, hops = parent.get(pid), 0
            while up and up != self.p.pid and hops < 8:
                up, hops = parent.get(up), hops + 1
            if up != self.p.pid:
                continue
            try:
                if os.path.realpath("/proc/%d/exe" % pid) != exe:
                    continue
                with open("/proc/%d/environ" % pid, "rb") as f:
                    rank = mpilaunch.rank_of(f.read().split(b"\0"))
            except OSError:
                continue
            if rank is not None:
                found[rank] = pid
        return found

    def wait_ranks(self, nprocs, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline and self.running():
            r = self.ranks()
            if len(r) == nprocs:
                return r
            time.sleep(0.02)
        return {}


def start(nprocs, args, env=None, cwd=None, pass_env=()):
    return Job(mpirun_cmd(nprocs, args, pass_env), env or ENV, cwd)


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.endswith(b"\n"))
    except OSError:
        return 0


def wait_for(cond, job, timeout=TIMEOUT):
    """Polls cond() every 10 ms while the job runs; True when it held."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        if not job.running():
            return cond()
        time.sleep(0.01)
    return False


def parse_result(res, name):
    """The one JSON line that --json prints on stdout, or None (a failure)."""
    lines = [line for line in res.out.splitlines() if line.strip()]
    if not check(len(lines) == 1, "%s: %d lines on stdout, want 1 JSON line: %r (stderr %r)" %
                 (name, len(lines), res.out, res.err[-2000:])):
        return None
    try:
        return json.loads(lines[0])
    except ValueError as e:
        check(False, "%s: not JSON (%s): %r" % (name, e, lines[0]))
        return None


def without_seconds(obj):
    return {k: v for k, v in obj.items() if k != "seconds"} if obj else obj


def read_log(path):
    """The --log file as a list of dicts (one per generation)."""
    rows = []
    with open(path) as f:
        for i, line in enumerate(f):
            try:
                rows.append(json.loads(line))
            except ValueError as e:
                check(False, "%s line %d: not JSON (%s): %r" % (path, i + 1, e, line[:200]))
    return rows


def log_history(rows):
    """The covered columns of a log, as tuples of floats (exact: the log prints %.17g)."""
    return [tuple(float(r[c]) for c in HISTORY) for r in rows]


def ckpt_history(path):
    """The covered columns of a checkpoint's /history, as tuples of floats; None when h5py cannot read it."""
    import h5py
    try:
        with h5py.File(path, "r") as f:
            cols = [f["/history/" + c][()] for c in HISTORY]
    except (OSError, KeyError) as e:
        check(False, "%s: cannot read /history with h5py: %s" % (path, e))
        return None
    return [tuple(float(col[i]) for col in cols) for i in range(len(cols[0]))]


def first_difference(a, b):
    """Where two histories first differ, for a message."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return "row %d: %r vs %r" % (i, dict(zip(HISTORY, x)), dict(zip(HISTORY, y)))
    return "lengths %d and %d" % (len(a), len(b))


def inspect(path, cwd=None):
    """`nograd inspect PATH --json` (one process, no mpirun) as a dict, or None with the failure recorded."""
    p = subprocess.run([NOGRAD, "inspect", path, "--json"], capture_output=True, text=True, env=ENV, cwd=cwd,
                       timeout=TIMEOUT)
    if not check(p.returncode == 0, "nograd inspect %s: exit code %d, stderr %r" % (path, p.returncode, p.stderr)):
        return None
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        check(False, "nograd inspect %s --json: not JSON (%s): %r" % (path, e, p.stdout[:300]))
        return None


def run_logged(nprocs, args, tmp, name):
    """`nograd minimize ARGS --log TMP/NAME.jsonl --json --quiet` on nprocs ranks: (the --json result, the log
    rows), or (None, None) with the failure recorded."""
    log = os.path.join(tmp, name + ".jsonl")
    if os.path.exists(log):
        os.unlink(log)
    res = run(nprocs, ["minimize"] + args + ["--log", log, "--json", "--quiet"])
    what = "%s (P=%d)" % (" ".join(args), nprocs)
    if not check(res.code == 0, "%s: exit code %r, stderr %r" % (what, res.code, res.err[-2000:])):
        return None, None
    return parse_result(res, what), read_log(log)


def resume_matches(nprocs, args, ck, what, full, full_rows):
    """Resumes `nograd minimize ARGS` from checkpoint ck on nprocs ranks (writing ck again) and checks that the
    --json result and ck's /history equal the uninterrupted run's (full, full_rows from run_logged). Returns
    the result, or None after a failed run."""
    res = run(nprocs, ["minimize"] + args + ["--checkpoint", ck, "--resume", ck, "--json", "--quiet"])
    if not check(res.code == 0, "%s: exit code %r, stderr %r" % (what, res.code, res.err[-2000:])):
        return None
    obj = parse_result(res, what)
    check(without_seconds(obj) == without_seconds(full), "%s: %r; uninterrupted: %r" % (what, obj, full))
    hist = ckpt_history(ck)
    check(hist == log_history(full_rows), "%s: the history differs from the uninterrupted one at %s" %
          (what, first_difference(hist or [], log_history(full_rows))))
    return obj


def tempdir():
    return tempfile.TemporaryDirectory(prefix="nograd_mpi_")


def run_codes(nprocs, args, tmp, env=None, timeout=TIMEOUT):
    """Runs `nograd args` on nprocs ranks and returns (Result, {rank: exit code}): each rank writes its own exit
    code to a file, and mpirun is told not to end the other ranks when one exits non-zero (Open MPI's mpirun
    itself then exits 0), so that every rank's code is seen."""
    codes_dir = tempfile.mkdtemp(prefix="codes_", dir=tmp)
    env = dict(env or ENV, NG_CODES=codes_dir, **mpilaunch.keep_going_env(MPIRUN))
    wrapper = '"$@"; rc=$?; echo $rc > "$NG_CODES/rank.%s"; exit $rc' % mpilaunch.RANK_SHELL
    cmd = mpilaunch.command(MPIRUN, nprocs, ("OPENBLAS_NUM_THREADS", "NG_CODES")) + \
        ["/bin/sh", "-c", wrapper, "sh", NOGRAD] + list(args)
    res = Job(cmd, env, None).wait(timeout)
    codes = {}
    for name in os.listdir(codes_dir):
        with open(os.path.join(codes_dir, name)) as f:
            codes[int(name.split(".")[1])] = int(f.read().strip() or -1)
    return res, codes


def alive(pid):
    """True while pid runs (a zombie, exited but not yet reaped by mpirun, counts as ended)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] not in ("Z", "X")
