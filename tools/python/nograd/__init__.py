"""nograd from Python: pycma's ask/tell on nograd's optimizers, external evaluators in a few lines, and a
picture of every run.

    import nograd
    es = nograd.CMAES(10 * [0], 0.5, seed=1, ftarget=1e-8)
    while not es.stop():
        X = es.ask()
        es.tell(X, [f(x) for x in X])
    es.save("run.h5")                   # then: nograd plot run.h5

The modules:
  nograd.optimizers  CMAES, SepCMAES, SPSA, fmin, load, Function (also reachable as nograd.CMAES, ...): ctypes
                     over libnograd.so, found as nograd/_lib.py says (NOGRAD_LIBRARY first)
  nograd.evaluator   serve(score): an exec: evaluator's frames, replies and exit rules in one call (numpy only;
                     it does not load libnograd)
  nograd.plot        `nograd plot RUN.h5`: the run's history as pycma's four panels (h5py, matplotlib)

Importing the package loads nothing heavy: numpy and libnograd.so are loaded when an optimizer is first used,
so that the evaluator and the plot can say what is missing themselves.
"""

_OPTIMIZER_NAMES = ("CMAES", "SepCMAES", "SPSA", "Result", "fmin", "load", "Function", "optimizer_names",
                    "function_names")
_ERROR_NAMES = ("NogradError", "NogradValueError", "NogradOrderError", "NogradIOError")

__all__ = list(_OPTIMIZER_NAMES + _ERROR_NAMES) + ["library_version"]


def library_version():
    """The version of the libnograd.so in use (ng_version)."""
    from . import _lib
    return _lib.lib().ng_version().decode()


def __getattr__(name):  # PEP 562: nograd.CMAES imports the optimizers (numpy, libnograd) on first use
    if name in _OPTIMIZER_NAMES:
        from . import optimizers
        return getattr(optimizers, name)
    if name in _ERROR_NAMES:
        from . import _lib
        return getattr(_lib, name)
    raise AttributeError("module 'nograd' has no attribute %r" % name)
