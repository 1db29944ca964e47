"""Shared by the Python package's tests (tests/python/test_*.py, label "python"): the package from the checkout
(tools/python), the library of the build under test, the skip rule, and tests/cli/clitest.py's run and check.

A test script takes the nograd binary and mpirun (empty: the MPI parts are skipped), like the cli tests. It
calls need("numpy", "h5py", ...) first: a missing module ends it with status 77, which CTest reports as
skipped, naming the Debian package to install.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
sys.path.insert(0, os.path.join(ROOT, "tools", "python"))

import shutil  # noqa: E402

import clitest  # noqa: E402
from clitest import NOGRAD, check, failures, run  # noqa: E402,F401

clitest.MPIRUN = MPIRUN = clitest.MPIRUN or shutil.which("mpirun")

BUILD = os.path.dirname(os.path.abspath(NOGRAD))
# the library of the build under test, whatever else is installed (tests/CMakeLists.txt sets it too)
os.environ.setdefault("NOGRAD_LIBRARY", os.path.join(BUILD, "libnograd.so"))
clitest.ENV["NOGRAD_LIBRARY"] = os.environ["NOGRAD_LIBRARY"]
clitest.ENV["PYTHONPATH"] = os.path.join(ROOT, "tools", "python")

DEBIAN = {"numpy": "python3-numpy", "h5py": "python3-h5py", "matplotlib": "python3-matplotlib"}


def need(*modules):
    """Imports the modules, or says which package is missing and exits 77 (skipped)."""
    for name in modules:
        try:
            __import__(name)
        except ImportError:
            print("SKIP: no %s in %s (apt-get install %s)" % (name, sys.executable, DEBIAN.get(name, name)))
            sys.exit(77)


def must(args, mpi=0):
    """Runs nograd and returns its stdout; a failure ends the test (status 1) with the command and its output."""
    rc, out, err = run(args, mpi)
    if rc != 0:
        print("FAIL command failed (%d): %s\n%s%s" % (rc, " ".join(args), out, err))
        sys.exit(1)
    return out


def finish():
    """Ends the test: status 1 with the number of failures, else 0."""
    if failures:
        print("%d failure(s)" % len(failures))
        sys.exit(1)
    print("all ok")
    sys.exit(0)
