"""Backend registry: the name a user passes -> the module whose row kernels run.

A backend is a package ``kl_fast._<name>`` whose family modules all have the
same names (``FAMILY_MODULES``): the core ``rows`` module offers the row
kernels of the protocol below (with the signatures of ``src/rows.pyx``), the
other families (log spaces, full-covariance Gaussian, mutual information,
pairwise, elementwise) are looked up by name in order.  ``"auto"`` walks an ordered
chain of eligibility predicates (as xarray's ``nputils`` does) and takes the
first backend that can run: the ahead-of-time Cython kernels (no compile
wait), then Numba, then the numpy reference.  ``KL_FAST_BACKEND`` sets what
``"auto"`` means for the whole process.
"""

import importlib
import os

from .._registry import ROW_REDUCTIONS

__all__ = ["BACKENDS", "BACKEND_NAMES", "FAMILY_MODULES", "KERNELS", "available_backends",
           "auto_name", "get_backend", "load_backend", "load_error"]

# the kernels every backend's core module must have: the core probability rows (the
# registry's rows with public functions in _api), labels and diagonal Gaussians
KERNELS = (
    *(r.kernel for r in ROW_REDUCTIONS if r.module == "_api"),
    "cross_entropy_label_rows",
    "gaussian_kl_rows",
    "gaussian_kl_prior_rows",
)

# The backends, in "auto" preference order.  Each is a package
# kl_fast._<name> holding the same kernel family modules (FAMILY_MODULES),
# so a kernel is looked up as kl_fast._<backend>.<family>.<kernel>.
BACKEND_NAMES = ("cython", "numba", "numpy")

# The kernel families: "rows" (the core, probability rows, labels and
# diagonal Gaussians: KERNELS) first, then the others in lookup order.
FAMILY_MODULES = ("rows", "spaces", "gaussian_full", "mutual_information", "pairwise",
                  "elementwise")

# name -> core module path
BACKENDS = {name: f"kl_fast._{name}.{FAMILY_MODULES[0]}" for name in BACKEND_NAMES}

# name -> the family modules searched after the core module, in order
FAMILIES = {name: [f"kl_fast._{name}.{family}" for family in FAMILY_MODULES[1:]]
            for name in BACKEND_NAMES}


class Backend:
    """The kernels of one backend: the core module, then its family modules.

    Attribute lookup walks the modules in order, so ``getattr(backend, name)``
    finds a kernel wherever its family defines it.
    """

    def __init__(self, name, core, families):
        self.name = name
        self.core = core
        self._modules = [core]
        self._family_errors = {}
        for path in families:
            try:
                self._modules.append(importlib.import_module(path))
            except ImportError as exc:  # that family is not built: its kernels are missing
                self._family_errors[path] = f"{type(exc).__name__}: {exc}"

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        for module in self._modules:
            if hasattr(module, attr):
                return getattr(module, attr)
        detail = "; ".join(f"{p}: {e}" for p, e in self._family_errors.items())
        raise AttributeError(f"backend {self.name!r} has no kernel {attr!r}"
                             + (f" ({detail})" if detail else ""))

_loaded = {}
_errors = {}


def load_backend(name):
    """The Backend `name` (loaded once), or None where it cannot run here (then
    load_error(name) says why)."""
    if name in _loaded:
        return _loaded[name]
    if name in _errors:
        return None
    try:
        if name == "numba":
            importlib.import_module("numba")  # the kernels module imports it lazily
        module = importlib.import_module(BACKENDS[name])
    except ImportError as exc:  # not built / not installed: ineligible, not fatal
        _errors[name] = f"{type(exc).__name__}: {exc}"
        return None
    missing = [k for k in KERNELS if not hasattr(module, k)]
    if missing:
        _errors[name] = f"module {BACKENDS[name]} lacks {missing}"
        return None
    backend = Backend(name, module, FAMILIES.get(name, ()))
    _loaded[name] = backend
    return backend


def available_backends():
    """Names of the backends that can run in this installation, in "auto" order."""
    return [name for name in BACKENDS if load_backend(name) is not None]


_auto = None


def auto_name():
    """The backend "auto" means in this process: ``KL_FAST_BACKEND`` if set, else the
    first of BACKENDS that loads.  Decided once, at the first call that asks (reading
    the environment cost every call ~1 us), and the one place it is decided."""
    global _auto
    if _auto is None:
        forced = os.environ.get("KL_FAST_BACKEND", "auto").strip().lower() or "auto"
        if forced == "auto":
            forced = next((name for name in BACKENDS if load_backend(name) is not None), None)
            if forced is None:
                raise RuntimeError("no kl_fast backend can run (even numpy failed to import)")
        _auto = forced       # a benign race: every thread finds the same name
    return _auto


def get_backend(backend):
    """Resolve a user's ``backend`` argument to (name, module).

    Raises
    ------
    TypeError
        If `backend` is not a string.
    ValueError
        If the name is unknown, or names a backend that cannot run here.
    """
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, one of {['auto', *BACKENDS]}, "
                        f"got {type(backend).__name__}")
    name = backend.strip().lower()
    if name == "auto":
        name = auto_name()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {['auto', *BACKENDS]}")
    module = load_backend(name)
    if module is None:
        raise ValueError(
            f"backend {name!r} is not available here ({_errors.get(name)}); "
            f"use one of {available_backends()} or backend='auto'"
        )
    return name, module


def load_error(name):
    """Why backend `name` failed to load, or None."""
    load_backend(name)
    return _errors.get(name)
