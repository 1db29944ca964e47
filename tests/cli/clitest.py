"""Shared by the command-line tests (tests/cli/test_*.py): the environment nograd runs in, running it, and
recording checks. A test script imports this module; its arguments are the nograd binary and mpirun (empty:
the MPI parts are skipped)."""
import os
import struct
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mpilaunch  # noqa: E402

NOGRAD = sys.argv[1]
MPIRUN = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None
TIMEOUT = 60  # seconds for any one command; a script may lower it (clitest.TIMEOUT = 30)

ENV = dict(os.environ)
ENV.setdefault("OPENBLAS_NUM_THREADS", "1")
if os.geteuid() == 0:  # Open MPI refuses root unless told twice
    ENV["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    ENV["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"

failures = []


def check(cond, what):
    """Records a check; prints it, and keeps it in failures when it fails. Returns cond."""
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def code_ok(code, want, mpi):
    """Whether an exit code is want (None: any failure); under mpirun, as mpilaunch.code_ok reads it (MPICH's
    Hydra before 4.2.3 may report 0 for ranks that all failed alike)."""
    if mpi and MPIRUN:
        return mpilaunch.code_ok(MPIRUN, code, want)
    return code == want if want is not None else code != 0


def run(args, mpi=0, env=None):
    """Runs nograd with args (under mpirun -n mpi when mpi > 0); returns (exit code, stdout, stderr)."""
    cmd = [NOGRAD] + args
    if mpi:
        cmd = mpilaunch.command(MPIRUN, mpi) + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=TIMEOUT, env=env or ENV)
    return p.returncode, p.stdout, p.stderr


SEAL_MAGIC = b"\x89NOGRAD\n"  # nograd's header in the HDF5 user block (src/io/seal.h)


def reseal(path):
    """Rewrites nograd's header (src/io/seal.h: the CRC-32 of every byte after the 512-byte user block) of a
    file a test edited on purpose with h5py, which keeps the user block but changes the content: nograd then
    reaches its own checks of that content instead of refusing the file as damaged."""
    with open(path, "r+b") as f:
        data = f.read()
        if data[:8] != SEAL_MAGIC:
            raise ValueError("%s has no nograd header" % path)
        head = bytearray(data[:512])
        struct.pack_into("<Q", head, 16, len(data) - 512)
        struct.pack_into("<I", head, 24, zlib.crc32(data[512:]))
        struct.pack_into("<I", head, 28, 0)
        struct.pack_into("<I", head, 28, zlib.crc32(bytes(head)))  # the whole block, this field as zeros
        f.seek(0)
        f.write(head)
