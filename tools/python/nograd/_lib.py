"""libnograd.so through ctypes: finding it, the prototypes this package uses, and errors as exceptions.

Only functions declared in include/nograd/*.h are used (the library exports nothing else). The structs below
mirror the public ones field for field; tests/python/test_python.py checks them against the library's own
accessors, so that a change to a header that is not mirrored here fails a test instead of reading garbage.

Where the library is looked for, first match wins:
  1. $NOGRAD_LIBRARY, the path of libnograd.so (an error if it does not load: no silent fallback);
  2. installed: the library directory recorded at `cmake --install` time in _paths.py, relative to this
     package (lib/python3/dist-packages/nograd -> lib/<multiarch>/libnograd.so);
  3. the source tree: $NOGRAD_BUILD_DIR/libnograd.so, then <repo>/build/libnograd.so, when this package is
     tools/python/nograd of a checkout;
  4. the system's loader: libnograd.so, libnograd.so.0 (LD_LIBRARY_PATH, ld.so.cache).
"""
import ctypes
import os
from ctypes import POINTER, c_char_p, c_double, c_int, c_int64, c_size_t, c_uint64, c_void_p

_here = os.path.dirname(os.path.abspath(__file__))


class OptInfo(ctypes.Structure):
    """ng_opt_info (nograd/opt.h)."""
    _fields_ = [("generation", c_int64), ("evaluations", c_int64), ("restarts", c_int64),
                ("nonfinite", c_int64), ("best_f", c_double), ("gen_best_f", c_double),
                ("gen_median_f", c_double), ("sigma", c_double), ("axis_ratio", c_double),
                ("popsize", c_size_t), ("stop", c_int), ("seconds_eigen", c_double)]


class History(ctypes.Structure):
    """ng_history (nograd/ckpt.h): nrows x ncols doubles, row-major."""
    _fields_ = [("rows", POINTER(c_double)), ("nrows", c_size_t), ("cap", c_size_t)]


class CkptMeta(ctypes.Structure):
    """ng_ckpt_meta (nograd/ckpt.h)."""
    _fields_ = [("program_version", c_char_p), ("command_line", c_char_p), ("config", c_char_p),
                ("budget", c_char_p), ("optimizer", c_char_p), ("ranks", c_int), ("groups", c_int),
                ("input_files", POINTER(c_char_p)), ("input_checksums", POINTER(c_char_p)),
                ("ninputs", c_size_t), ("blas_core", c_char_p), ("blas_config", c_char_p), ("cpu_model", c_char_p)]


class CkptInfo(ctypes.Structure):
    """ng_ckpt_info (nograd/ckpt.h); its strings belong to the library (ng_ckpt_info_free)."""
    _fields_ = [("format_version", c_int), ("program_version", c_char_p), ("command_line", c_char_p),
                ("config", c_char_p), ("budget", c_char_p), ("optimizer", c_char_p), ("created", c_char_p),
                ("ranks", c_int), ("groups", c_int), ("input_files", POINTER(c_char_p)),
                ("input_checksums", POINTER(c_char_p)), ("ninputs", c_size_t), ("blas_core", c_char_p),
                ("blas_config", c_char_p), ("cpu_model", c_char_p)]


# name: (restype, argtypes). Pointers to arrays are passed as c_void_p (numpy's .ctypes.data), which is the
# cheapest conversion ctypes has.
_PROTOTYPES = {
    "ng_strerror": (c_char_p, [c_int]),
    "ng_errmsg": (c_char_p, []),
    "ng_error_clear": (None, []),
    "ng_version": (c_char_p, []),
    "ng_opt_create": (c_int, [c_char_p, c_size_t, POINTER(c_void_p)]),
    "ng_opt_destroy": (None, [POINTER(c_void_p)]),
    "ng_opt_names": (POINTER(c_char_p), []),
    "ng_opt_name": (c_char_p, [c_void_p]),
    "ng_opt_set_x0": (c_int, [c_void_p, c_void_p]),
    "ng_opt_set_sigma0": (c_int, [c_void_p, c_double]),
    "ng_opt_set_seed": (c_int, [c_void_p, c_uint64]),
    "ng_opt_set_popsize": (c_int, [c_void_p, c_size_t]),
    "ng_opt_set_bounds": (c_int, [c_void_p, c_void_p, c_void_p]),
    "ng_opt_set_ftarget": (c_int, [c_void_p, c_double]),
    "ng_opt_set_max_evals": (c_int, [c_void_p, c_int64]),
    "ng_opt_set_restarts": (c_int, [c_void_p, c_int, c_int]),
    "ng_opt_set_param": (c_int, [c_void_p, c_char_p, c_double]),
    "ng_opt_setup": (c_int, [c_void_p]),
    "ng_opt_popsize": (c_size_t, [c_void_p]),
    "ng_opt_dim": (c_size_t, [c_void_p]),
    "ng_opt_ask": (c_int, [c_void_p, c_void_p]),
    "ng_opt_tell": (c_int, [c_void_p, c_void_p]),
    "ng_opt_stop": (c_int, [c_void_p]),
    "ng_opt_request_stop": (None, [c_void_p, c_int]),
    "ng_opt_best": (POINTER(c_double), [c_void_p, POINTER(c_double)]),
    "ng_opt_mean": (POINTER(c_double), [c_void_p]),
    "ng_opt_get_info": (None, [c_void_p, POINTER(OptInfo)]),
    "ng_opt_save": (c_int, [c_void_p, c_void_p]),
    "ng_opt_load": (c_int, [c_void_p, c_void_p]),
    "ng_stop_name": (c_char_p, [c_int]),
    "ng_stop_from_name": (c_int, [c_char_p]),
    "ng_state_create": (c_int, [POINTER(c_void_p)]),
    "ng_state_destroy": (None, [POINTER(c_void_p)]),
    "ng_state_get_int": (c_int, [c_void_p, c_char_p, POINTER(c_int64)]),
    "ng_state_get_i64": (c_int, [c_void_p, c_char_p, c_void_p, c_size_t]),
    "ng_state_get_f64": (c_int, [c_void_p, c_char_p, c_void_p, c_size_t]),
    "ng_state_get_scalar": (c_int, [c_void_p, c_char_p, POINTER(c_double)]),
    "ng_state_get_str": (c_int, [c_void_p, c_char_p, POINTER(c_char_p)]),
    "ng_state_length": (c_int, [c_void_p, c_char_p, POINTER(c_size_t)]),
    "ng_history_columns": (POINTER(c_char_p), []),
    "ng_history_free": (None, [POINTER(History)]),
    "ng_ckpt_write": (c_int, [c_char_p, POINTER(CkptMeta), c_void_p, POINTER(History), c_void_p, c_size_t,
                              c_double, c_void_p]),
    "ng_ckpt_read": (c_int, [c_char_p, POINTER(CkptInfo), c_void_p, POINTER(History), c_void_p,
                             POINTER(c_size_t), POINTER(c_double), c_void_p]),
    "ng_ckpt_info_free": (None, [POINTER(CkptInfo)]),
    "ng_fn_create": (c_int, [c_char_p, c_size_t, c_uint64, POINTER(c_void_p)]),
    "ng_fn_destroy": (None, [POINTER(c_void_p)]),
    "ng_fn_eval": (c_double, [c_void_p, c_void_p, c_uint64, c_uint64, c_void_p]),
    "ng_fn_names": (POINTER(c_char_p), []),
}

# The status codes of nograd/error.h that get a more specific Python base class than NogradError alone.
_EINVAL, _EORDER, _EIO, _ENOTFOUND = -1, -3, -4, -6


class NogradError(Exception):
    """A failure reported by libnograd. str(e) is ng_errmsg()'s text; e.status is the code (NG_EINVAL, ...)
    and e.status_name its description (ng_strerror)."""

    def __init__(self, message, status, status_name):
        super().__init__(message)
        self.status = status
        self.status_name = status_name


class NogradValueError(NogradError, ValueError):
    """NG_EINVAL: an argument the library refused (the message names it)."""


class NogradOrderError(NogradError, RuntimeError):
    """NG_EORDER: a call out of order (ask twice, tell without ask, save between ask and tell, ...)."""


class NogradIOError(NogradError, OSError):
    """NG_EIO, NG_ENOTFOUND: a file that cannot be read or written."""


def _candidates():
    """Where to look for libnograd.so, in order, as (path or name, why)."""
    out = []
    try:
        from . import _paths  # written by `cmake --install`
        out.append((os.path.normpath(os.path.join(_here, _paths.LIBDIR, "libnograd.so")), "installed"))
    except ImportError:
        pass
    repo = os.path.normpath(os.path.join(_here, "..", "..", ".."))
    if os.path.isfile(os.path.join(repo, "include", "nograd", "opt.h")):  # a checkout: tools/python/nograd
        build = os.environ.get("NOGRAD_BUILD_DIR")
        if build:
            out.append((os.path.join(os.path.abspath(build), "libnograd.so"), "$NOGRAD_BUILD_DIR"))
        out.append((os.path.join(repo, "build", "libnograd.so"), "the source tree's build/"))
    return out


_lib = None


def lib():
    """The loaded library, with its prototypes declared (loaded on first use)."""
    global _lib
    if _lib is not None:
        return _lib
    path = os.environ.get("NOGRAD_LIBRARY")
    if path:
        try:
            handle = ctypes.CDLL(path)
        except OSError as e:
            raise ImportError("nograd: $NOGRAD_LIBRARY=%s does not load: %s" % (path, e)) from None
    else:
        handle, tried = None, []
        for cand, why in _candidates():
            if os.path.exists(cand):
                handle = ctypes.CDLL(cand)
                break
            tried.append("%s (%s)" % (cand, why))
        for name in ("libnograd.so", "libnograd.so.0"):
            if handle is not None:
                break
            try:
                handle = ctypes.CDLL(name)
            except OSError:
                tried.append("%s (the system's loader)" % name)
        if handle is None:
            raise ImportError("nograd: libnograd.so not found; tried %s. Set NOGRAD_LIBRARY to its path, or "
                              "build nograd (cmake --build build)" % ", ".join(tried))
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(handle, name)
        except AttributeError:
            raise ImportError("nograd: %s has no function %s: a libnograd of another version?" %
                              (handle._name, name)) from None
        fn.restype = restype
        fn.argtypes = argtypes
    _lib = handle
    return _lib


def check(status):
    """Raises the library's failure as an exception carrying ng_errmsg(); returns nothing on NG_OK."""
    if status == 0:
        return
    raise error(status)


def error(status):
    """The exception for a status code, with the library's message (or its generic text)."""
    L = lib()
    message = (L.ng_errmsg() or b"").decode("utf-8", "replace")
    name = (L.ng_strerror(status) or b"").decode()
    cls = {_EINVAL: NogradValueError, _EORDER: NogradOrderError, _EIO: NogradIOError,
           _ENOTFOUND: NogradIOError}.get(status, NogradError)
    return cls(message or name, status, name)


def strings(array):
    """A NULL-terminated const char *const * as a list of str."""
    out, i = [], 0
    while array[i] is not None:
        out.append(array[i].decode())
        i += 1
    return out
