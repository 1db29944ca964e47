"""pycma's ask/tell on nograd's optimizers: CMAES, SepCMAES, SPSA, fmin, load, and the benchmark functions.

    es = nograd.CMAES(10 * [0], 0.5, seed=1, ftarget=1e-8)
    while not es.stop():
        X = es.ask()                              # (lambda, n) numpy array
        es.tell(X, [rosen(x) for x in X])         # or es.tell(losses)
    print(es.result.xbest, es.result.fbest, es.stop())
    es.save("run.h5")                             # nograd inspect run.h5; nograd plot run.h5

Each object owns one ng_opt of libnograd.so (nograd/opt.h): the same algorithm, defaults, stopping rules and
random streams as `nograd minimize`, so the same seed and settings give the same bits. ask() writes the
candidates straight into a new numpy array; tell() hands the losses over as one float64 buffer. Every call
that the library refuses raises a NogradError (a ValueError for NG_EINVAL, ...) whose text is ng_errmsg()'s.

Each generation also becomes a row of the history table that `nograd minimize` keeps (nograd/ckpt.h):
evaluations, best, median, sigma, popsize, restarts, and the seconds of ask (t_sample), of the caller's
evaluation between ask and tell (t_evaluate), of tell (t_update) and of its eigendecompositions (t_eigen).
save() writes it with the optimizer's complete state as a nograd checkpoint, which `nograd inspect` and
`nograd plot` read, and load() continues exactly where it was saved: the same bits as a run never stopped.
"""
import collections
import ctypes
import math
import os
import sys
import time
import weakref

import numpy as np

from . import _lib
from ._lib import check

__all__ = ["CMAES", "SepCMAES", "SPSA", "Result", "fmin", "load", "Function", "optimizer_names",
           "function_names"]

Result = collections.namedtuple("Result", "xbest fbest evals_best evaluations iterations xfavorite stop")
Result.__doc__ = """The outcome so far, in pycma's order (without its stds): the best point and its loss, the
evaluation count at the end of the generation that found it, evaluations and iterations (generations) over
all restarts, the distribution's mean (pycma's xfavorite), and the stop reason's name or None."""

_RESTART_POLICIES = {None: 0, "none": 0, "ipop": 1, "bipop": 2}
_RESTART_NAMES = {0: "none", 1: "ipop", 2: "bipop"}
_ARRAY = ctypes.POINTER(ctypes.c_double)


def _destroy(L, handle):
    L.ng_opt_destroy(ctypes.byref(handle))


def _vector(value, n, what, fill):
    """value as n float64s: None -> fill, a scalar -> n copies, else exactly n values."""
    if value is None:
        return np.full(n, fill)
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return np.full(n, float(v))
    if v.shape != (n,):
        raise ValueError("%s: expected %d values (the dimension of x0), got shape %s" % (what, n, v.shape))
    return np.ascontiguousarray(v)


def _number(v):
    return "%.17g" % v


class _Optimizer:
    """The ask/tell loop common to CMAES, SepCMAES and SPSA (see the module's documentation)."""
    algorithm = None  # the library's name: "cmaes", "sepcmaes", "spsa"

    def __init__(self, x0, sigma0, seed=1, popsize=None, restarts=None, bounds=None, **params):
        """x0: the initial mean (n values); sigma0: the initial step size.

        seed: the random streams' seed (an integer >= 0). popsize: lambda (None: the algorithm's default; for
        SPSA, 2q). restarts: None, "ipop" or "bipop" (CMA-ES), with at most `max_restarts` (default 9).
        bounds: None or (lower, upper), each None, one value or n values (pycma's form).

        params: the budget, in pycma's names, ftarget (stop when a loss <= it) and maxfevals (evaluations
        over all restarts), and any optimizer parameter of `nograd minimize --param` (tolfun, maxiter,
        lazy_gap_ratio, spsa_q, spsa_a, ...; see the README's table). An unknown name raises a ValueError
        naming it."""
        L = self._L = _lib.lib()
        x0 = np.array(x0, dtype=np.float64)
        if x0.ndim != 1 or x0.size == 0:
            raise ValueError("x0: expected a vector of at least one value, got shape %s" % (x0.shape,))
        n = x0.size
        if restarts not in _RESTART_POLICIES:
            raise ValueError("restarts: expected None, 'ipop' or 'bipop', got %r" % (restarts,))
        max_restarts = params.pop("max_restarts", 9)
        ftarget = params.pop("ftarget", None)
        maxfevals = params.pop("maxfevals", None)
        self._handle = ctypes.c_void_p()
        check(L.ng_opt_create(self.algorithm.encode(), n, ctypes.byref(self._handle)))
        self._finalizer = weakref.finalize(self, _destroy, L, self._handle)
        h = self._handle
        self.dim = n
        lower = upper = None
        if bounds is not None:
            try:
                lo, hi = bounds
            except (TypeError, ValueError):
                raise ValueError("bounds: expected (lower, upper), got %r" % (bounds,)) from None
            lower, upper = _vector(lo, n, "bounds[0]", -math.inf), _vector(hi, n, "bounds[1]", math.inf)
        check(L.ng_opt_set_x0(h, x0.ctypes.data))
        check(L.ng_opt_set_sigma0(h, float(sigma0)))
        if int(seed) < 0:
            raise ValueError("seed: expected an integer >= 0, got %r" % (seed,))
        check(L.ng_opt_set_seed(h, int(seed)))
        check(L.ng_opt_set_popsize(h, int(popsize or 0)))
        if lower is not None:
            check(L.ng_opt_set_bounds(h, lower.ctypes.data, upper.ctypes.data))
        if ftarget is not None:
            check(L.ng_opt_set_ftarget(h, float(ftarget)))
        if maxfevals is not None:
            check(L.ng_opt_set_max_evals(h, int(maxfevals)))
        check(L.ng_opt_set_restarts(h, _RESTART_POLICIES[restarts], int(max_restarts)))  # saved, as minimize does
        self._params = {}
        for name, value in sorted(params.items()):
            check(L.ng_opt_set_param(h, name.encode(), float(value)))
            self._params[name] = float(value)
        check(L.ng_opt_setup(h))
        self._x0, self._sigma0, self._seed = x0, float(sigma0), int(seed)
        self._popsize_req, self._lower, self._upper = int(popsize or 0), lower, upper
        self._restarts, self._max_restarts = restarts or "none", int(max_restarts)
        self._ftarget = -math.inf if ftarget is None else float(ftarget)
        self._maxfevals = int(maxfevals or 0)
        self._start_history()

    # ---- the history table ------------------------------------------------------------------------------

    def _start_history(self, rows=None):
        names = _lib.strings(self._L.ng_history_columns())
        self._columns = names
        self._col = {name: i for i, name in enumerate(names)}
        self._rows = np.zeros((max(64, 0 if rows is None else 2 * len(rows)), len(names)))
        self._nrows = 0
        if rows is not None:
            self._rows[:len(rows)] = rows
            self._nrows = len(rows)
        self._info = _lib.OptInfo()
        self._asked = self._asked_copy = None
        self._L.ng_opt_get_info(self._handle, ctypes.byref(self._info))
        self._eigen_before = self._info.seconds_eigen

    def _append_row(self, lam, t_sample, t_evaluate, t_update):
        info = self._info
        if self._nrows == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
        row, c = self._rows[self._nrows], self._col
        for name, value in (("generation", info.generation), ("evaluations", info.evaluations),
                            ("best", info.best_f), ("gen_best", info.gen_best_f),
                            ("median", info.gen_median_f), ("sigma", info.sigma), ("popsize", lam),
                            ("restarts", info.restarts), ("t_sample", t_sample), ("t_evaluate", t_evaluate),
                            ("t_update", t_update), ("t_eigen", info.seconds_eigen - self._eigen_before)):
            if name in c:
                row[c[name]] = value
        self._eigen_before = info.seconds_eigen
        self._nrows += 1

    @property
    def history(self):
        """The history table so far: {column: numpy array}, one value per generation (nograd/ckpt.h)."""
        rows = self._rows[:self._nrows]
        return {name: rows[:, i].copy() for i, name in enumerate(self._columns)}

    # ---- ask and tell ----------------------------------------------------------------------------------

    def ask(self):
        """The next generation's candidates: a new (popsize, n) float64 array, one candidate per row."""
        lam = self._L.ng_opt_popsize(self._handle)
        X = np.empty((lam, self.dim))
        t0 = time.perf_counter()
        check(self._L.ng_opt_ask(self._handle, X.ctypes.data))
        self._t_asked = time.perf_counter()
        self._t_sample = self._t_asked - t0
        self._asked, self._asked_copy = X, X.copy()  # tell checks that the candidates were not changed
        return X

    def tell(self, X_or_losses, losses=None):
        """Takes the losses of the last ask's candidates, in its order: tell(losses) or pycma's tell(X, losses).

        X must be the population of the last ask (nograd regenerates candidates from its streams, so it takes
        no injected or repaired ones): the array ask returned, or an equal one, and neither form accepts an
        array that was changed after ask (a ValueError names the first row that differs). A NaN or infinite
        loss ranks after every finite one and is counted; it never stops the run by itself."""
        t0 = time.perf_counter()
        if self._asked is None:  # the library says what is wrong: tell without a preceding ask
            check(self._L.ng_opt_tell(self._handle, np.zeros(self._L.ng_opt_popsize(self._handle)).ctypes.data))
            raise _lib.NogradOrderError("tell without a preceding ask", -3, "call out of order")
        X = self._asked if losses is None else np.asarray(X_or_losses)
        if losses is None:
            losses = X_or_losses
        if X.shape != self._asked_copy.shape or not np.array_equal(X, self._asked_copy):
            rows = np.flatnonzero(np.any(X != self._asked_copy, axis=1)) if X.shape == self._asked_copy.shape else []
            raise ValueError("tell: %s; nograd learns from the candidates it asked for and takes no injected or "
                             "repaired ones: evaluate and pass the array ask returned, unchanged" % (
                                 "X has shape %s, the last ask %s" % (X.shape, self._asked_copy.shape)
                                 if not len(rows) else "row %d of X is not the candidate the last ask returned%s"
                                 % (rows[0], " (the array was changed after ask)" if X is self._asked else "")))
        f = np.ascontiguousarray(losses, dtype=np.float64)
        lam = len(self._asked)
        if f.size != lam or (f.ndim > 1 and f.shape[0] != lam):
            raise ValueError("tell: expected %d losses (one per candidate of the last ask), got shape %s" %
                             (lam, f.shape))
        check(self._L.ng_opt_tell(self._handle, f.ctypes.data))
        t1 = time.perf_counter()
        self._L.ng_opt_get_info(self._handle, ctypes.byref(self._info))
        self._append_row(lam, self._t_sample, t0 - self._t_asked, t1 - t0)
        self._asked = self._asked_copy = None

    def stop(self):
        """None while the run goes on; afterwards the stop reason's name ("ftarget", "maxfevals", "tolfun",
        ...; README "Stop reasons"), so that `while not es.stop():` loops as with pycma."""
        reason = self._L.ng_opt_stop(self._handle)
        return None if reason == 0 else self._L.ng_stop_name(reason).decode()

    def request_stop(self, reason="callback"):
        """Ends the run for a reason of the caller's: "callback" (the default) or "signal"."""
        code = self._L.ng_stop_from_name(reason.encode())
        if reason not in ("callback", "signal") or code < 0:
            raise ValueError("request_stop: the reason must be 'callback' or 'signal', got %r" % (reason,))
        self._L.ng_opt_request_stop(self._handle, code)

    # ---- what a run is now -----------------------------------------------------------------------------

    def _refresh(self):
        self._L.ng_opt_get_info(self._handle, ctypes.byref(self._info))
        return self._info

    @property
    def popsize(self):
        """lambda: the number of candidates the next ask returns (it grows at IPOP and BIPOP restarts)."""
        return self._L.ng_opt_popsize(self._handle)

    @property
    def sigma(self):
        """The overall step size (CMA-ES's sigma, SPSA's perturbation size c_k)."""
        return self._refresh().sigma

    @property
    def mean(self):
        """The distribution's mean (SPSA: its iterate, or the iterate average): a copy, n values."""
        return np.ctypeslib.as_array(self._L.ng_opt_mean(self._handle), (self.dim,)).copy()

    @property
    def countiter(self):
        """Generations told, over all restarts (pycma's name)."""
        return self._refresh().generation

    @property
    def countevals(self):
        """Losses told, over all restarts (pycma's name)."""
        return self._refresh().evaluations

    @property
    def restarts(self):
        """Restarts begun so far."""
        return self._refresh().restarts

    @property
    def result(self):
        """A Result named tuple: xbest, fbest, evals_best, evaluations, iterations, xfavorite, stop."""
        fbest = ctypes.c_double()
        xbest = np.ctypeslib.as_array(self._L.ng_opt_best(self._handle, ctypes.byref(fbest)), (self.dim,)).copy()
        info = self._refresh()
        evals_best = 0
        if self._nrows and math.isfinite(fbest.value):
            rows = self._rows[:self._nrows]
            hit = np.flatnonzero(rows[:, self._col["best"]] == fbest.value)
            if hit.size:
                evals_best = int(rows[hit[0], self._col["evaluations"]])
        return Result(xbest, fbest.value, evals_best, info.evaluations, info.generation, self.mean, self.stop())

    def disp(self, modulo=100):
        """Prints a progress line (generation, evaluations, best, median, sigma) every `modulo` generations,
        with a header the first time, as pycma's disp does."""
        info = self._refresh()
        if info.generation == 0 or (info.generation % modulo and not self.stop()):
            return
        if not getattr(self, "_disp_header", False):
            print("%8s %10s %14s %14s %11s" % ("iter", "evals", "best", "median", "sigma"))
            self._disp_header = True
        print("%8d %10d %14.7e %14.7e %11.4e" % (info.generation, info.evaluations, info.best_f,
                                                 info.gen_median_f, info.sigma))

    def __repr__(self):
        return "<nograd.%s n=%d popsize=%d iterations=%d stop=%s>" % (
            type(self).__name__, self.dim, self.popsize, self.countiter, self.stop())

    # ---- save and load ---------------------------------------------------------------------------------

    def _config_text(self):
        """The configuration lines of /meta (the form `nograd minimize` writes; param.* lines alike)."""
        def vec(v, fill):
            if v is None:
                return _number(fill)
            return _number(v[0]) if np.all(v == v[0]) else ",".join(_number(x) for x in v)
        lines = ["optimizer=%s" % self.algorithm, "dim=%d" % self.dim, "popsize=%d" % self._popsize_req,
                 "restarts=%s" % self._restarts, "max-restarts=%d" % self._max_restarts,
                 "x0=" + ",".join(_number(v) for v in self._x0), "sigma0=" + _number(self._sigma0),
                 "seed=%d" % self._seed, "lower=" + vec(self._lower, -math.inf),
                 "upper=" + vec(self._upper, math.inf)]
        lines += ["param.%s=%s" % (k, _number(v)) for k, v in sorted(self._params.items())]
        budget = "max-evals=%d\nftarget=%s\n" % (self._maxfevals, _number(self._ftarget))
        return "\n".join(lines) + "\n", budget

    def save(self, path, command_line=None):
        """Writes the exact state, the history table and the best point as a nograd checkpoint (HDF5, written
        to PATH.tmp and renamed; an old PATH becomes PATH.prev). Between an ask and its tell it raises
        NogradOrderError: a generation in flight cannot be saved. `nograd inspect PATH` and `nograd plot
        PATH` read the file; load(PATH) continues the run bit for bit."""
        L, h = self._L, self._handle
        state = ctypes.c_void_p()
        check(L.ng_state_create(ctypes.byref(state)))
        try:
            check(L.ng_opt_save(h, state))
            config, budget = self._config_text()
            if command_line is None:
                command_line = " ".join([os.path.basename(sys.executable)] + sys.argv)
            meta = _lib.CkptMeta(program_version=L.ng_version(), command_line=command_line.encode(),
                                 config=config.encode(), budget=budget.encode(),
                                 optimizer=self.algorithm.encode(), ranks=1, groups=1, ninputs=0)
            rows = np.ascontiguousarray(self._rows[:self._nrows])
            hist = _lib.History(rows=rows.ctypes.data_as(_ARRAY) if self._nrows else None, nrows=self._nrows,
                                cap=self._nrows)
            fbest = ctypes.c_double()
            xbest = L.ng_opt_best(h, ctypes.byref(fbest))
            check(L.ng_ckpt_write(os.fsencode(path), ctypes.byref(meta), state, ctypes.byref(hist),
                                  ctypes.cast(xbest, ctypes.c_void_p), self.dim, fbest.value, None))
        finally:
            L.ng_state_destroy(ctypes.byref(state))

    def load(self, path):
        """Continues the run saved at `path` (by save, or by `nograd minimize --checkpoint`) in this object.

        As `nograd minimize --resume` does, the saved configuration that shapes the trajectory (seed, x0,
        sigma0, popsize, bounds, restarts) is adopted and this object's budget (ftarget, maxfevals) is kept.
        The optimizer, the dimension and the parameters must be this object's (ValueError otherwise, naming
        the first that differs). The history table becomes the file's. Returns self."""
        saved = _Checkpoint(path)
        try:
            if saved.optimizer != self.algorithm or saved.dim != self.dim:
                raise ValueError("%s holds a %s run in dimension %d, not %s in dimension %d" %
                                 (path, saved.optimizer, saved.dim, self.algorithm, self.dim))
            if saved.params != self._params:
                raise ValueError("%s was saved with the parameters %s, this optimizer has %s" %
                                 (path, saved.params or "{}", self._params or "{}"))
            rc = self._L.ng_opt_load(self._handle, saved.state)
            if rc != 0:
                e = _lib.error(rc)
                raise type(e)("%s: %s" % (path, e), e.status, e.status_name)
            cfg = saved.config_from_state()
            self._x0, self._sigma0, self._seed = cfg["x0"], cfg["sigma0"], cfg["seed"]
            self._popsize_req, self._lower, self._upper = cfg["popsize"], cfg["lower"], cfg["upper"]
            self._restarts, self._max_restarts = cfg["restarts"], cfg["max_restarts"]
            self._start_history(saved.rows)
        finally:
            saved.close()
        return self


class CMAES(_Optimizer):
    """CMA-ES (Hansen's tutorial, with pycma 4.x's defaults, update order and stopping rules; active
    covariance update), optionally with IPOP or BIPOP restarts. See _Optimizer.__init__ for the arguments."""
    algorithm = "cmaes"


class SepCMAES(_Optimizer):
    """Separable CMA-ES (Ros and Hansen 2008): a diagonal covariance, O(n) per candidate, for large n."""
    algorithm = "sepcmaes"


class SPSA(_Optimizer):
    """Two-point SPSA (Spall): each generation is q pairs x +- c_k Delta (popsize = 2q); spsa_* parameters
    set its gains. It needs a budget: maxfevals or maxiter. No restarts."""
    algorithm = "spsa"


_CLASSES = {cls.algorithm: cls for cls in (CMAES, SepCMAES, SPSA)}


def optimizer_names():
    """The library's optimizers ("cmaes", "sepcmaes", "spsa")."""
    return _lib.strings(_lib.lib().ng_opt_names())


class _Checkpoint:
    """A checkpoint read and verified by the library: its /meta, optimizer state and history rows."""

    def __init__(self, path):
        L = self._L = _lib.lib()
        self.state = ctypes.c_void_p()
        check(L.ng_state_create(ctypes.byref(self.state)))
        info, hist, n = _lib.CkptInfo(), _lib.History(), ctypes.c_size_t(0)
        try:
            check(L.ng_ckpt_read(os.fsencode(path), ctypes.byref(info), self.state, ctypes.byref(hist), None,
                                 ctypes.byref(n), None, None))
            ncols = len(_lib.strings(L.ng_history_columns()))
            self.rows = np.ctypeslib.as_array(hist.rows, (hist.nrows, ncols)).copy() if hist.nrows else \
                np.zeros((0, ncols))
            text = lambda s: (s or b"").decode()
            self.config, self.budget, meta_optimizer = text(info.config), text(info.budget), text(info.optimizer)
        except BaseException:
            self.close()
            raise
        finally:
            L.ng_history_free(ctypes.byref(hist))
            L.ng_ckpt_info_free(ctypes.byref(info))
        name = ctypes.c_char_p()
        if L.ng_state_get_str(self.state, b"cfg/optimizer", ctypes.byref(name)) == 0:
            self.optimizer = name.value.decode()
        else:  # nograd 0.1 saved an index; /meta names the optimizer of minimize's checkpoints
            L.ng_error_clear()
            self.optimizer = meta_optimizer
        self.dim = self._int("cfg/n")
        self.params = {}
        for line in self.config.splitlines():
            key, _, value = line.partition("=")
            if key.startswith("param."):
                self.params[key[len("param."):]] = float(value)
        lines = dict(line.partition("=")[::2] for line in self.budget.splitlines())
        self.ftarget = float(lines["ftarget"]) if "ftarget" in lines else None
        self.maxfevals = int(lines["max-evals"]) if lines.get("max-evals", "").lstrip("-").isdigit() else None

    def _int(self, name):
        v = ctypes.c_int64()
        check(self._L.ng_state_get_int(self.state, name.encode(), ctypes.byref(v)))
        return v.value

    def _f64(self, name, n):
        v = np.empty(n)
        check(self._L.ng_state_get_f64(self.state, name.encode(), v.ctypes.data, n))
        return v

    def config_from_state(self):
        """The saved configuration that shapes the trajectory (the cfg/* entries of /optimizer)."""
        L, n = self._L, self.dim
        restarts = np.empty(2, dtype=np.int64)
        check(L.ng_state_get_i64(self.state, b"cfg/restarts", restarts.ctypes.data, 2))
        length = ctypes.c_size_t()
        bounded = L.ng_state_length(self.state, b"cfg/lower", ctypes.byref(length)) == 0
        if not bounded:
            L.ng_error_clear()
        return {"x0": self._f64("cfg/x0", n), "sigma0": float(self._f64("cfg/sigma0", 1)[0]),
                "seed": self._int("cfg/seed"), "popsize": self._int("cfg/popsize"),
                "lower": self._f64("cfg/lower", n) if bounded else None,
                "upper": self._f64("cfg/upper", n) if bounded else None,
                "restarts": _RESTART_NAMES.get(int(restarts[0]), "none"), "max_restarts": int(restarts[1])}

    def close(self):
        if self.state:
            self._L.ng_state_destroy(ctypes.byref(self.state))


def load(path, ftarget=None, maxfevals=None):
    """The optimizer saved at `path` (by save, or a `nograd minimize --checkpoint` file), ready to continue:
    a CMAES, SepCMAES or SPSA with the saved configuration, parameters, state and history. The budget is the
    saved one unless ftarget or maxfevals give a new one (a run that ended on its budget then goes on)."""
    saved = _Checkpoint(path)
    try:
        cls = _CLASSES.get(saved.optimizer)
        if cls is None:
            raise ValueError("%s holds the state of '%s', which is not one of nograd's optimizers (%s)" %
                             (path, saved.optimizer, ", ".join(_CLASSES)))
        cfg = saved.config_from_state()
        budget = {}
        ftarget = saved.ftarget if ftarget is None else ftarget
        maxfevals = saved.maxfevals if maxfevals is None else maxfevals
        if ftarget is not None and ftarget != -math.inf:
            budget["ftarget"] = ftarget
        if maxfevals:
            budget["maxfevals"] = maxfevals
        bounds = None if cfg["lower"] is None else (cfg["lower"], cfg["upper"])
        restarts = None if cfg["restarts"] == "none" else cfg["restarts"]
        opt = cls(cfg["x0"], cfg["sigma0"], seed=cfg["seed"], popsize=cfg["popsize"] or None, restarts=restarts,
                  bounds=bounds, max_restarts=cfg["max_restarts"], **budget, **saved.params)
    finally:
        saved.close()
    return opt.load(path)


def fmin(f, x0, sigma0, optimizer="cmaes", args=(), vectorized=False, callback=None, save=None, **options):
    """Minimizes f from x0 with step size sigma0 until a stop rule fires; returns the Result.

    f(x, *args) gets one candidate (n values) and returns its loss; with vectorized=True, f(X, *args) gets
    the whole (popsize, n) population and returns popsize losses. optimizer: "cmaes" (default), "sepcmaes"
    or "spsa". options: the constructor's (seed, popsize, restarts, bounds, ftarget, maxfevals, max_restarts
    and any optimizer parameter). callback(es), after each tell, ends the run (stop reason "callback") when
    it returns True. save: a path the final state is saved to (nograd plot reads it)."""
    cls = _CLASSES.get(optimizer)
    if cls is None:
        raise ValueError("fmin: unknown optimizer %r (known: %s)" % (optimizer, ", ".join(_CLASSES)))
    es = cls(x0, sigma0, **options)
    while not es.stop():
        X = es.ask()
        losses = f(X, *args) if vectorized else [f(x, *args) for x in X]
        es.tell(X, losses)
        if callback is not None and callback(es):
            es.request_stop("callback")
    if save is not None:
        es.save(save)
    return es.result


def function_names():
    """The library's benchmark functions (pycma's cma.ff definitions): sphere, ellipsoid, ..., rot-NAME."""
    return _lib.strings(_lib.lib().ng_fn_names())


class Function:
    """One of the library's benchmark functions (nograd/functions.h), the very code `nograd minimize
    --function NAME` evaluates: f(x) for one point, f.batch(X) for a population's rows. `seed` draws the
    rotation of rot-* functions and the noise of noisy-sphere; `generation` and the row index key that
    noise, as in the engine."""

    def __init__(self, name, dim, seed=1):
        L = self._L = _lib.lib()
        self._handle = ctypes.c_void_p()
        check(L.ng_fn_create(name.encode(), int(dim), int(seed), ctypes.byref(self._handle)))
        self._finalizer = weakref.finalize(self, lambda L, h: L.ng_fn_destroy(ctypes.byref(h)), L, self._handle)
        self.name, self.dim = name, int(dim)
        self._work = np.empty(self.dim)

    def __call__(self, x, generation=0, index=0):
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (self.dim,):
            raise ValueError("%s: expected %d values, got shape %s" % (self.name, self.dim, x.shape))
        return self._L.ng_fn_eval(self._handle, x.ctypes.data, generation, index, self._work.ctypes.data)

    def batch(self, X, generation=0):
        """The losses of the rows of X, row k evaluated as candidate k of `generation`."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError("%s: expected rows of %d values, got shape %s" % (self.name, self.dim, X.shape))
        ev, h, w, base = self._L.ng_fn_eval, self._handle, self._work.ctypes.data, X.ctypes.data
        return np.array([ev(h, base + 8 * k * self.dim, generation, k, w) for k in range(len(X))])
