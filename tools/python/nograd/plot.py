"""`nograd plot RUN.h5 [--out RUN.png]`: a picture of a run, from its checkpoint.

pycma's four panels, from the checkpoint's /history (one row per generation, nograd/ckpt.h):
  1. the loss: the best so far and the generation's median (and best), against evaluations, on a log scale;
  2. the step size sigma against evaluations (log scale);
  3. the population size against evaluations, a dotted line at each restart;
  4. the seconds of each phase of a generation (sampling, broadcast, evaluation, reduction, update) stacked
     against the generation, the eigendecompositions' share as a dashed line.
and what the command's /result adds, as a fifth panel across the bottom:
  - `nograd glue`: the mixture weights per expert (one bar per expert, or per expert and layer group);
  - `nograd retrofit`: the metric before and after, on validation and test, with the overfitting bound as an
    interval around the returned model's validation metric, or the reason there is none.

A glue checkpoint of a method that runs no generations (uniform, datasize, proxy, best) gets the weights panel
alone. The format follows --out's suffix: .png (the default: RUN.png beside RUN.h5), .svg or .pdf. It needs h5py and
matplotlib (Debian: python3-h5py, python3-matplotlib); without them it says which package to install and
exits 1. It exits 1 on a file it cannot use (missing, not HDF5, not a checkpoint, no history) or an --out it
cannot write, with a message naming the file, and 2 on a bad command line. On success it prints what it wrote
and how many panels: "wrote RUN.png: 4 panels (510 generations)".

Run as `python3 -m nograd.plot` or through the `nograd plot` command, which starts this module.
"""
import argparse
import os
import sys

PHASES = [("t_sample", "sampling (ask)"), ("t_broadcast", "broadcast"), ("t_evaluate", "evaluation"),
          ("t_reduce", "reduction"), ("t_update", "update (tell)")]
FORMATS = (".png", ".svg", ".pdf")
PACKAGES = {"h5py": "python3-h5py", "matplotlib": "python3-matplotlib", "numpy": "python3-numpy"}
PANEL_INCHES = 4.0  # height of a row of panels
WIDTH_INCHES = 11.0
DPI = 100


class PlotError(Exception):
    """A file that cannot be plotted or written: the message names it. Exit status 1."""


def _text(v):
    if hasattr(v, "tobytes") and getattr(v, "shape", None) == ():
        v = v[()]
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _scalar(group, name, default=None):
    if name not in group:
        return default
    v = group[name][()]
    return v.reshape(-1)[0] if hasattr(v, "reshape") and getattr(v, "size", 1) >= 1 and not isinstance(v, bytes) \
        else v


def read(path):
    """The parts of a checkpoint the picture needs: {"meta": {...}, "history": {column: array}, "result": {...}}."""
    import h5py
    import numpy as np
    if not os.path.exists(path):
        raise PlotError("cannot read '%s': no such file" % path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise PlotError("'%s' is not a nograd checkpoint: not an HDF5 file that can be read (%s)" % (path, e)) from None
    with f:
        if "meta" not in f or "format_version" not in f["meta"].attrs:
            raise PlotError("'%s' is not a nograd checkpoint (no /meta with a format_version); nograd plot draws "
                            "the checkpoints of minimize, glue, retrofit and the Python package's save()" % path)
        meta = {k: _text(v) if isinstance(v, (bytes, str)) or getattr(v, "dtype", None) is not None and
                v.dtype.kind in "SOU" else v for k, v in f["meta"].attrs.items()}
        if "input_files" in f["meta"]:
            meta["input_files"] = [_text(v) for v in f["meta/input_files"][()]]
        if "history" not in f:
            raise PlotError("'%s' has no /history: not a checkpoint of a run" % path)
        history = {name: np.asarray(f["history"][name][()], dtype=float) for name in f["history"]
                   if isinstance(f["history"][name], h5py.Dataset)}
        result = {}
        if "result" in f:
            for name, obj in f["result"].items():
                if isinstance(obj, h5py.Dataset):
                    v = obj[()]
                    result[name] = _text(v) if isinstance(v, bytes) or getattr(v, "dtype", None) is not None and \
                        v.dtype.kind in "SOU" else np.asarray(v)
    rows = len(history.get("generation", []))
    if rows == 0 and "weights" not in result:
        raise PlotError("'%s' has no generations in its /history: nothing to plot" % path)
    return {"meta": meta, "history": history, "result": result, "rows": rows}


def kind(run):
    """"glue", "retrofit" or "run" (minimize, the Python package), from what /result holds."""
    if "weights" in run["result"]:
        return "glue"
    if "val_before" in run["result"]:
        return "retrofit"
    return "run"


def _finite(x, y):
    import numpy as np
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _log_or_symlog(ax, values):
    """A log y axis when every value is positive, else a symmetric log one (losses may be negative)."""
    import numpy as np
    v = values[np.isfinite(values)]
    if v.size and np.all(v > 0):
        ax.set_yscale("log")
        if v.max() < 100 * v.min():  # within two decades: plain numbers read better than 4 x 10^-1
            _plain_ticks(ax)
    elif v.size:
        nonzero = np.abs(v[v != 0])
        ax.set_yscale("symlog", linthresh=10.0 ** np.floor(np.log10(nonzero.min())) if nonzero.size else 1.0)


def _plain_ticks(ax):
    from matplotlib.ticker import FuncFormatter
    plain = FuncFormatter(lambda v, _: "%.3g" % v)
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)


def _restarts(ax, h):
    """Dotted vertical lines at the evaluations where a restart began."""
    import numpy as np
    if "restarts" not in h or len(h["restarts"]) < 2:
        return 0
    starts = np.flatnonzero(np.diff(h["restarts"]) > 0)
    for i in starts:  # the run before ended at row i: the next one's first evaluations follow
        ax.axvline(h["evaluations"][i], color="0.5", linestyle=":", linewidth=1)
    return len(starts)


def panel_loss(ax, h):
    x = h["evaluations"]
    for col, label, style in (("best", "best so far", dict(color="C0", linewidth=1.8)),
                              ("median", "median of the generation", dict(color="C1", linewidth=1)),
                              ("gen_best", "best of the generation", dict(color="C2", linewidth=0.6, alpha=0.7))):
        if col in h:
            ax.plot(*_finite(x, h[col]), label=label, **style)
    _log_or_symlog(ax, h.get("median", h.get("best")))
    _restarts(ax, h)
    ax.set_title("loss")
    ax.set_xlabel("evaluations")
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, which="major", alpha=0.3)


def panel_sigma(ax, h):
    import numpy as np
    x, s = _finite(h["evaluations"], h.get("sigma", np.full(len(h["evaluations"]), np.nan)))
    if s.size and np.all(s > 0):
        ax.plot(x, s, color="C3")
        ax.set_yscale("log")
        if s.max() < 100 * s.min():
            _plain_ticks(ax)
    else:
        ax.text(0.5, 0.5, "no step size in this run", transform=ax.transAxes, ha="center", va="center")
    _restarts(ax, h)
    ax.set_title("step size sigma")
    ax.set_xlabel("evaluations")
    ax.grid(True, which="major", alpha=0.3)


def panel_population(ax, h):
    x = h["evaluations"]
    ax.step(x, h["popsize"], where="post", color="C4", label="population size")
    n = _restarts(ax, h)
    if n:
        ax.plot([], [], color="0.5", linestyle=":", label="restart (%d in all)" % n)
    from matplotlib.ticker import MaxNLocator
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_title("population size and restarts")
    ax.set_xlabel("evaluations")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(True, alpha=0.3)


def panel_time(ax, h):
    import numpy as np
    g = h["generation"]
    present = [(i, c, label) for i, (c, label) in enumerate(PHASES) if c in h and np.any(h[c] > 0)]
    if present:  # a phase keeps its colour whichever others a run has
        ax.stackplot(g, *[1e3 * h[c] for _, c, _ in present], labels=[label for _, _, label in present],
                     colors=["C%d" % i for i, _, _ in present], alpha=0.8)
        total = sum(1e3 * h[c] for _, c, _ in present)
        # a few slow generations (a busy machine) would flatten the rest: the axis ends at twice the largest
        # running median over 25 generations, the level a run sustains, and says what lies above it
        window = min(25, len(total))
        level = np.median(np.lib.stride_tricks.sliding_window_view(total, window), axis=1).max()
        top = 2 * level
        above = np.flatnonzero(total > top)
        xlabel = "generation"
        if top > 0 and above.size:
            ax.set_ylim(0, top)
            xlabel += " (%d above the axis, up to %.3g ms)" % (above.size, total.max())
    if "t_eigen" in h and np.any(h["t_eigen"] > 0):
        ax.plot(g, 1e3 * h["t_eigen"], color="k", linestyle="--", linewidth=0.8,
                label="of which eigendecomposition")
    if not present:
        ax.text(0.5, 0.5, "no phase times recorded", transform=ax.transAxes, ha="center", va="center")
    ax.set_title("time per generation, by phase")
    ax.set_xlabel(xlabel if present else "generation")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    if present:
        ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, alpha=0.3)


def panel_weights(ax, run):
    import numpy as np
    r = run["result"]
    w = np.asarray(r["weights"], dtype=float).reshape(-1)
    K = int(np.asarray(r.get("K", len(w))).reshape(-1)[0])
    L = int(np.asarray(r.get("L", 1)).reshape(-1)[0])
    w = w.reshape(K, L)
    files = run["meta"].get("input_files", [])
    names = [os.path.basename(files[k]) if k < len(files) else "expert %d" % (k + 1) for k in range(K)]
    width = 0.8 / L
    for l in range(L):
        ax.bar(np.arange(K) + (l - (L - 1) / 2) * width, w[:, l], width,
               label="layer group %d" % (l + 1) if L > 1 else None, color="C%d" % (l % 10))
    for k in range(K):
        if L == 1:
            ax.text(k, w[k, 0], "%.3f" % w[k, 0], ha="center", va="bottom", fontsize="small")
    ax.set_xticks(np.arange(K))
    ax.set_xticklabels(names, rotation=15 if K > 4 else 0, fontsize="small")
    ax.set_ylim(0, max(1.0, float(w.max()) * 1.1))
    loss = np.asarray(r.get("prior_loss", np.nan)).reshape(-1)[0]
    method = run["meta"].get("optimizer", "")
    ax.set_title("mixture weights per expert (%s%s)" % (method, ", prior loss %.4g" % loss if np.isfinite(loss)
                                                         else ""))
    ax.set_ylabel("weight")
    if L > 1:
        ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)


def panel_retrofit(ax, run):
    import numpy as np
    r = run["result"]
    value = lambda name: float(np.asarray(r.get(name, np.nan)).reshape(-1)[0])
    metric = r.get("metric", "metric")
    groups = [("validation", value("val_before"), value("val_after"))]
    if np.isfinite(value("test_before")):
        groups.append(("test", value("test_before"), value("test_after")))
    for i, (name, before, after) in enumerate(groups):
        ax.bar(i - 0.2, before, 0.4, color="C7", label="before" if i == 0 else None)
        ax.bar(i + 0.2, after, 0.4, color="C0", label="after" if i == 0 else None)
        for dx, v in ((-0.2, before), (0.2, after)):
            ax.text(i + dx, v, "%.4g" % v, ha="center", va="bottom", fontsize="small")
    bound = value("bound")
    if np.isfinite(bound):
        after = groups[0][2]
        ax.errorbar([0.2], [after], yerr=[[min(bound, after)], [bound]], color="k", capsize=6,
                    label="bound: true %s within ±%.3g (probability %.2g)" % (metric, bound, 1 - value("delta")))
        note = "ln N = %.1f, T = %d validation rows" % (value("log_outputs"), int(value("val_rows")))
    else:
        note = "no bound: %s" % r.get("no_bound", "none recorded")
    ax.text(0.01, 0.97, note, transform=ax.transAxes, va="top", fontsize="small")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups])
    ax.set_xlim(-0.7, len(groups) - 0.3)
    ax.set_ylabel(metric)
    ax.set_title("%s before and after the retrofit%s" % (metric, ", start kept" if value("kept_start") == 1 else ""))
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)


def plot(path, out):
    """Draws the run saved at `path` into `out`; returns the number of panels."""
    from matplotlib.figure import Figure
    from matplotlib.gridspec import GridSpec
    run = read(path)
    what = kind(run)
    extra = {"glue": panel_weights, "retrofit": panel_retrofit}.get(what)
    history_rows = 2 if run["rows"] else 0
    rows = history_rows + (1 if extra else 0)
    height = PANEL_INCHES * rows + 0.6
    fig = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI)
    # fixed margins in inches (matplotlib's tight_layout would take most of the drawing time)
    grid = GridSpec(rows, 2, figure=fig, left=0.9 / WIDTH_INCHES, right=1 - 0.2 / WIDTH_INCHES,
                    top=1 - 0.9 / height, bottom=0.55 / height, hspace=0.9 / (PANEL_INCHES - 0.9), wspace=0.25)
    panels = []
    if run["rows"]:
        h = run["history"]
        for (i, j), draw in zip(((0, 0), (0, 1), (1, 0), (1, 1)),
                                (panel_loss, panel_sigma, panel_population, panel_time)):
            ax = fig.add_subplot(grid[i, j])
            draw(ax, h)
            panels.append(ax)
    if extra:
        ax = fig.add_subplot(grid[history_rows, :])
        extra(ax, run)
        panels.append(ax)
    meta = run["meta"]
    best = run["history"]["best"][-1] if run["rows"] and "best" in run["history"] else float("nan")
    fig.suptitle("%s: %s%s, %d generations%s" % (
        os.path.basename(path), meta.get("optimizer", "?"),
        {"glue": " (nograd glue)", "retrofit": " (nograd retrofit)"}.get(what, ""), run["rows"],
        ", best %.6g" % best if best == best else ""), y=1 - 0.3 / height)
    try:
        fig.savefig(out, format=os.path.splitext(out)[1][1:].lower())
    except OSError as e:
        raise PlotError("cannot write '%s': %s" % (out, e.strerror or e)) from None
    return len(panels), run["rows"]


def default_out(path):
    root, ext = os.path.splitext(path)
    return (root if ext.lower() == ".h5" else path) + ".png"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="nograd plot", description="A picture of a run: pycma's four panels from a checkpoint's /history, "
        "and the mixture weights (glue) or the metric before and after with its bound (retrofit).")
    parser.add_argument("checkpoint", metavar="RUN.h5", help="a checkpoint of minimize, glue, retrofit or save()")
    parser.add_argument("--out", metavar="FILE", help="the picture: .png (default RUN.png), .svg or .pdf")
    args = parser.parse_args(argv)
    out = args.out or default_out(args.checkpoint)
    if os.path.splitext(out)[1].lower() not in FORMATS:
        parser.error("--out %s: the format follows the suffix, one of %s" % (out, ", ".join(FORMATS)))
    for module in ("numpy", "h5py", "matplotlib"):
        try:
            __import__(module)
        except ImportError:
            sys.stderr.write("nograd plot: needs the Python module %s, which %s does not have; on Debian: "
                             "apt-get install %s\n" % (module, sys.executable, PACKAGES[module]))
            return 1
    where = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(where) or not os.access(where, os.W_OK):  # before the drawing, which takes a second
        sys.stderr.write("nograd plot: cannot write '%s': %s\n" % (
            out, "No such file or directory" if not os.path.isdir(where) else "Permission denied"))
        return 1
    try:
        panels, rows = plot(args.checkpoint, out)
    except PlotError as e:
        sys.stderr.write("nograd plot: %s\n" % e)
        return 1
    print("wrote %s: %d panel%s (%d generations)" % (out, panels, "s" * (panels != 1), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
