"""Helpers shared by the real-data tests (tests/data/test_*.py): the skip rule, the verdicts, and running a
tool script under test."""
import os
import subprocess
import time

SKIP = 77  # CTest's SKIP_RETURN_CODE for these tests


def skip_without(data, paths):
    """SKIP after a message when one of `paths` (relative to the data directory) is missing; None otherwise."""
    missing = [p for p in paths if not os.path.isfile(os.path.join(data, p))]
    if missing:
        print(f"SKIP: the real datasets are not here ({data}: no {', '.join(missing)}); nothing to test")
        return SKIP
    return None


def numpy_h5py():
    """(h5py, numpy), or None after a SKIP message when one is not installed."""
    try:
        import h5py
        import numpy as np
    except ImportError as e:
        print(f"SKIP: {e} (install python3-h5py and python3-numpy)")
        return None
    return h5py, np


class Checks:
    """check(cond, what) prints ok/FAIL and keeps the failures; verdict() is the exit status."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            self.failures.append(what)
        return cond

    def verdict(self):
        print(f"{len(self.failures)} failure(s)")
        return 1 if self.failures else 0


def run_script(check, script, args, expect, shown):
    """Runs `bash script args...`, checks its exit status against `expect` (naming it by `shown`, the
    arguments as they should read in the log), prints its output tails when the status differs."""
    t = time.time()
    p = subprocess.run(["bash", script, *args], capture_output=True, text=True, timeout=600)
    if p.returncode != expect:
        print(p.stdout[-3000:], p.stderr[-3000:], sep="\n")
    check(p.returncode == expect, f"exit {p.returncode} (expected {expect}) in {time.time() - t:.1f} s: "
          f"{os.path.basename(script)} {shown}")
    return p
