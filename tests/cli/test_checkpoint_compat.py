"""Checkpoints written by nograd 0.1 still load as what they are (issue #12).

nograd 0.1 saved the optimizer as its index in that version's table (/optimizer/cfg/algorithm); today's
checkpoints save its name (/optimizer/cfg/optimizer), so the table's order no longer matters. The fixtures in
tests/fixtures were written by nograd 0.1 (commit fc60f28):

  nograd minimize --function rosenbrock --dim 3 --optimizer O --max-evals 60 --seed 7 --checkpoint F
  (SPSA with --sigma0 0.1 --param maxiter=100)

and resumed by that same version with --max-evals 120, which gave the evaluations and f_best below. Today's
binary must resume them to the same numbers, refuse one as the wrong optimizer by name, and write the name."""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clitest  # noqa: E402
from clitest import check, run  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
BASE = ["minimize", "--function", "rosenbrock", "--dim", "3", "--seed", "7", "--json", "--quiet"]
CASES = {  # optimizer: (extra options, evaluations and f_best after resuming to 120, measured with 0.1)
    "cmaes": ([], 126, 1.0685558648849747),
    "sepcmaes": ([], 126, 1.1423009562631239),
    "spsa": (["--sigma0", "0.1", "--param", "maxiter=100"], 120, 0.82025788063900651),
}

tmp = tempfile.mkdtemp(prefix="nograd-compat-")
try:
    for name, (extra, evals, fbest) in CASES.items():
        ck = os.path.join(tmp, name + ".h5")
        shutil.copy(os.path.join(FIXTURES, "ckpt-0.1-%s.h5" % name), ck)
        code, out, err = run(BASE + ["--optimizer", name, "--max-evals", "120", "--resume", ck] + extra)
        ok = check(code == 0, "%s: a nograd 0.1 checkpoint resumes (exit %d: %s)" % (name, code, err.strip()))
        if ok:
            r = json.loads(out)
            check(r["evaluations"] == evals and r["f_best"] == fbest,
                  "%s: resumed to the 0.1 run's result (%s evaluations, f_best %r; got %s, %r)"
                  % (name, evals, fbest, r["evaluations"], r["f_best"]))
    # a 0.1 checkpoint of SPSA, resumed as CMA-ES with --force (the configuration differs): refused by name
    ck = os.path.join(tmp, "wrong.h5")
    shutil.copy(os.path.join(FIXTURES, "ckpt-0.1-spsa.h5"), ck)
    code, out, err = run(BASE + ["--optimizer", "cmaes", "--max-evals", "120", "--resume", ck, "--force"])
    check(code == 1 and "optimizer state is for 'spsa', not 'cmaes'" in err,
          "a 0.1 SPSA checkpoint is refused as CMA-ES, by name (exit %d: %s)" % (code, err.strip()))
    # today's checkpoints record the name, and resume
    ck = os.path.join(tmp, "new.h5")
    code, out, err = run(BASE + ["--optimizer", "sepcmaes", "--max-evals", "60", "--checkpoint", ck])
    check(code == 0, "a new checkpoint is written (exit %d)" % code)
    try:
        import h5py
        with h5py.File(ck, "r") as f:
            saved = f["/optimizer/cfg/optimizer"][()]
            saved = saved.decode() if isinstance(saved, bytes) else saved
            check(saved == "sepcmaes" and "cfg/algorithm" not in f["/optimizer"],
                  "the optimizer is saved by name (/optimizer/cfg/optimizer = %r)" % saved)
    except ImportError:
        print("skip the h5py look inside the checkpoint (no python3-h5py)")
    code, out, err = run(BASE + ["--optimizer", "sepcmaes", "--max-evals", "120", "--resume", ck])
    check(code == 0 and json.loads(out)["evaluations"] == 126,
          "a new checkpoint resumes to the same result as the 0.1 one (exit %d)" % code)
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("%d checks failed" % len(clitest.failures) if clitest.failures else "all checks passed")
sys.exit(1 if clitest.failures else 0)
