#!/usr/bin/python3
"""`nograd plot` (src/cli/cmd_plot.c running tools/python/nograd/plot.py) on the checkpoints of minimize, glue
and retrofit and on a file saved by the Python package.

Usage: test_plot.py NOGRAD [MPIRUN]

Each picture is opened and checked: a PNG's signature and size (1100 x 860 pixels for pycma's four panels,
1100 x 1260 with the fifth, glue's mixture weights or retrofit's metric before and after), an SVG's number of
axes groups (<g id="axes_N">: one per panel), a PDF's header; the command says what it wrote and how many
panels. matplotlib takes about a second a picture, so each kind of run is drawn once or twice, not in every
format. Retrofit's
checkpoint holds /result with the metric before and after and the bound. Bad input gets exit 1 and a message
naming the file: a missing file, a text file, an HDF5 file that is not a checkpoint, a checkpoint without
/history, an --out that cannot be written; a suffix it cannot draw and a missing argument exit 2. Without
matplotlib or h5py it names the Debian package to install and exits 1. Under mpirun -n 2 one rank draws.
"""
import os
import re
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pkgtest import MPIRUN, check, clitest, finish, must, need, run  # noqa: E402

need("numpy", "h5py", "matplotlib")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

import nograd  # noqa: E402

FOUR, FIVE = (1100, 860), (1100, 1260)  # pixels: plot.py's 11 in wide, 4 in a row of panels + 0.6, 100 dpi


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def svg_panels(path):
    with open(path) as f:
        return len(re.findall(r'<g id="axes_\d+"', f.read()))


def picture(what, ck, panels, suffix):
    """nograd plot on ck into a .png (its default name), .svg or .pdf; checks the file and the report."""
    if suffix == ".png":
        rc, out, err = run(["plot", ck])
    else:
        rc, out, err = run(["plot", ck, "--out", ck[:-3] + suffix])
    pic = ck[:-3] + suffix
    said = rc == 0 and re.fullmatch(r"wrote %s: %d panels \(\d+ generations\)" % (re.escape(pic), panels), out.strip())
    if suffix == ".png":
        got = png_size(pic) if rc == 0 else None
        ok, want = got == (FOUR if panels == 4 else FIVE), "%s pixels" % (got,)
    elif suffix == ".svg":
        got = svg_panels(pic) if rc == 0 else None
        ok, want = got == panels, "%s axes groups" % got
    else:
        with open(pic, "rb") as f:
            ok, want = f.read(5) == b"%PDF-", "a PDF"
    check(bool(said) and ok, "%s: %s is %s for %d panels: %s%s" % (what, os.path.basename(pic), want, panels,
                                                                   out.strip(), err.strip()))


with tempfile.TemporaryDirectory() as d:
    p = lambda name: os.path.join(d, name)

    # ---- minimize, with IPOP restarts ----
    must(["minimize", "--function", "rastrigin", "--dim", "6", "--restarts", "ipop", "--x0", "3", "--sigma0", "2",
          "--max-evals", "6000", "--seed", "2", "--checkpoint", p("min.h5"), "--quiet"])
    picture("minimize", p("min.h5"), 4, ".png")  # RUN.png beside RUN.h5 by default
    picture("minimize", p("min.h5"), 4, ".svg")

    # ---- glue: three experts, SPSA, and CMA-ES per layer group ----
    must(["data", "synth", "vectors", "--domains", "upright,tilted,small,target", "--rows", "400", "--classes", "3",
          "--out-prefix", p("v")])
    with open(p("spec.txt"), "w") as f:
        f.write("input 32\ndense fc1 16\nrelu\ndense fc2 3\n")
    must(["train", "--train", p("v-upright.h5"), "--spec", p("spec.txt"), "--out", p("base.h5"), "--epochs", "2",
          "--quiet"])
    experts = []
    for s in ("upright", "tilted", "small"):
        must(["train", "--train", p("v-%s.h5" % s), "--init-from", p("base.h5"), "--out", p("e-%s.h5" % s),
              "--epochs", "1", "--quiet"])
        experts.append(p("e-%s.h5" % s))
    glue = ["glue", "--experts"] + experts + ["--target-train", p("v-target.h5"), "--steps", "30", "--quiet"]
    must(glue + ["--method", "spsa", "--out", p("prior.h5"), "--checkpoint", p("glue.h5")])
    picture("glue (spsa)", p("glue.h5"), 5, ".png")
    must(glue + ["--method", "cmaes", "--granularity", "layer", "--out", p("prior2.h5"), "--checkpoint",
                 p("glue2.h5")])
    rc, out, err = run(["plot", p("glue2.h5"), "--out", p("glue2.svg")])
    with open(p("glue2.svg")) as f:
        svg = f.read()
    check(rc == 0 and svg_panels(p("glue2.svg")) == 5 and "layer group 2" in svg and "e-small.h5" in svg,
          "glue per layer group: the weights panel has a bar per expert and layer group, named by file")

    # ---- retrofit: /result, then the picture ----
    must(["retrofit", p("base.h5"), "--params", "fc2.bias,scale:fc1", "--val", p("v-target.h5"), "--test",
          p("v-tilted.h5"), "--budget", "120", "--out", p("r.h5"), "--checkpoint", p("retro.h5"), "--quiet"])
    with h5py.File(p("retro.h5"), "r") as f:
        r = {k: f["result"][k][()] for k in f["result"]} if "result" in f else {}
    keys = {"val_before", "val_after", "test_before", "test_after", "bound", "log_outputs", "delta", "metric",
            "val_rows", "kept_start"}
    check(keys <= set(r) and r["metric"] in (b"error", "error") and r["val_after"] <= r["val_before"] and
          0 < r["bound"] and r["val_rows"] == 400,
          "retrofit's checkpoint holds /result: the metric before and after, on val and test, and the bound (%s)" %
          {k: np.asarray(v).reshape(-1)[0] for k, v in r.items()})
    rc, out, err = run(["retrofit", p("base.h5"), "--params", "fc2.bias,scale:fc1", "--val", p("v-target.h5"),
                        "--test", p("v-tilted.h5"), "--budget", "120", "--out", p("r2.h5"), "--resume",
                        p("retro.h5"), "--checkpoint", p("retro2.h5"), "--quiet"])
    check(rc == 0, "a retrofit checkpoint with /result still resumes %s" % err.strip())
    picture("retrofit", p("retro.h5"), 5, ".png")

    # ---- a run saved by the Python package ----
    nograd.fmin(lambda x: float(np.sum(x * x)), 5 * [1], 0.5, ftarget=1e-10, save=p("py.h5"))
    picture("nograd.fmin(..., save=)", p("py.h5"), 4, ".pdf")

    # ---- bad input ----
    with open(p("text.h5"), "w") as f:
        f.write("not HDF5\n")
    with h5py.File(p("other.h5"), "w") as f:
        f["x"] = 1
    with h5py.File(p("min.h5"), "r") as src, h5py.File(p("nohist.h5"), "w") as dst:
        src.copy("meta", dst)
    cases = [([p("missing.h5")], 1, [p("missing.h5"), "no such file"]),
             ([p("text.h5")], 1, [p("text.h5"), "not a nograd checkpoint"]),
             ([p("other.h5")], 1, [p("other.h5"), "not a nograd checkpoint", "/meta"]),
             ([p("nohist.h5")], 1, [p("nohist.h5"), "no /history"]),
             ([p("min.h5"), "--out", p("no/such/dir.png")], 1, ["cannot write", p("no/such/dir.png")]),
             ([p("min.h5"), "--out", p("x.jpg")], 2, ["x.jpg", ".png, .svg, .pdf"]),
             ([], 2, ["RUN.h5"])]
    for args, code, words in cases:
        rc, out, err = run(["plot"] + args)
        check(rc == code and all(w in err for w in words) and not out.strip(),
              "nograd plot %s: exit %d, naming %s: %s" % (" ".join(os.path.basename(a) for a in args), rc, words,
                                                         err.strip().splitlines()[-1] if err.strip() else ""))
    # a Python without matplotlib, then without h5py: a module of that name that cannot be imported
    for module, package in (("matplotlib", "python3-matplotlib"), ("h5py", "python3-h5py")):
        fake = p("fake-" + module)
        os.makedirs(os.path.join(fake, module))
        with open(os.path.join(fake, module, "__init__.py"), "w") as f:
            f.write("raise ImportError('no %s here')\n" % module)
        env = dict(clitest.ENV, PYTHONPATH=fake)
        rc, out, err = run(["plot", p("min.h5"), "--out", p("nomod.png")], env=env)
        check(rc == 1 and package in err and "apt-get install" in err and not os.path.exists(p("nomod.png")),
              "without %s: exit %d, %s" % (module, rc, err.strip()))
    rc, out, err = run(["plot", p("min.h5")], env=dict(clitest.ENV, NOGRAD_PYTHON=p("no-python")))
    check(rc == 1 and "cannot start" in err and p("no-python") in err and "NOGRAD_PYTHON" in err,
          "NOGRAD_PYTHON naming no program: exit %d, %s" % (rc, err.strip()))
    if MPIRUN:
        rc, out, err = run(["plot", p("min.h5"), "--out", p("mpi.png")], mpi=2)
        check(rc == 0 and out.count("wrote") == 1 and png_size(p("mpi.png")) == FOUR,
              "mpirun -n 2 nograd plot: one rank draws, both exit 0")

finish()
