#!/usr/bin/python3
"""The kernels in the provenance (issue #14): /meta of a checkpoint records the BLAS core and configuration
(openblas_get_corename, openblas_get_config) and the CPU model; ranks that would compute with other kernels are
named at start (one rank made to claim another core through NOGRAD_TEST_BLAS_CORE, a variable for tests), and a
resume on another kernel set warns. 3 ranks at most.

Usage: test_kernels.py NOGRAD MPIRUN"""
import ctypes
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpitest  # noqa: E402
from mpitest import check  # noqa: E402

mpitest.skip_without_mpirun("test_kernels")
try:
    import h5py
except ImportError:
    print("SKIP: test_kernels needs python3-h5py")
    sys.exit(0)

lib = ctypes.CDLL("libopenblas.so.0")
lib.openblas_get_corename.restype = ctypes.c_char_p
core = lib.openblas_get_corename().decode()
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break

ARGS = ["minimize", "--function", "sphere", "--dim", "8", "--max-evals", "400", "--seed", "3", "--quiet"]
with mpitest.tempdir() as d:
    ck = os.path.join(d, "ck.h5")
    r = mpitest.run(2, ARGS + ["--checkpoint", ck])
    check(r.code == 0, "a 2-rank run with a checkpoint: exit %s %s" % (r.code, r.err[-300:]))
    with h5py.File(ck, "r") as f:
        meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["meta"].attrs.items()}
    check(meta.get("blas_core") == core and meta.get("cpu_model") == cpu and "OpenBLAS" in meta.get("blas_config", ""),
          "/meta records blas_core %r (OpenBLAS says %r), cpu_model %r, blas_config %r" %
          (meta.get("blas_core"), core, meta.get("cpu_model"), meta.get("blas_config")))
    check(not [l for l in r.nograd_lines() if "kernels" in l], "ranks of one kernel set: no warning")

    # one rank of three claims another core: rank 0 names it at start
    cmd = mpitest.mpilaunch.mpmd(mpitest.MPIRUN, [(2, {}, [mpitest.NOGRAD] + ARGS),
                                                  (1, {"NOGRAD_TEST_BLAS_CORE": "Prescott"}, [mpitest.NOGRAD] + ARGS)])
    env = dict(mpitest.ENV)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=mpitest.TIMEOUT)
    warn = [l for l in p.stderr.splitlines() if "different kernels" in l]
    check(p.returncode == 0 and len(warn) == 1 and "rank 2" in warn[0] and "Prescott" in warn[0],
          "a rank with another BLAS core is named once at start: %s" % (warn or p.stderr[-300:]))

    # a resume on another kernel set warns
    env = dict(mpitest.ENV, NOGRAD_TEST_BLAS_CORE="Prescott")
    r = mpitest.run(1, ARGS + ["--max-evals", "800", "--resume", ck], env=env)
    warn = [l for l in r.err.splitlines() if "--resume" in l and "other kernels" in l]
    check(r.code == 0 and len(warn) == 1 and core in warn[0] and "Prescott" in warn[0],
          "a resume on another BLAS core warns: %s" % (warn or r.err[-300:]))
    r = mpitest.run(1, ARGS + ["--max-evals", "800", "--resume", ck])
    check(r.code == 0 and not [l for l in r.err.splitlines() if "other kernels" in l],
          "a resume on the same kernels says nothing")
mpitest.finish("test_kernels")
