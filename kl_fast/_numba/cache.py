"""Compiling kl_fast's Numba kernels once per machine.

Every Numba kernel entry point is a module-level function, compiled on first
use for one explicit signature (``compile_kernel``) with numba's on-disk
cache: the first process on a machine compiles it (seconds), every later one
loads the machine code from the cache (milliseconds).  The cache lives where
numba puts it (``NUMBA_CACHE_DIR``, else ``__pycache__`` beside the source,
else numba's user-wide directory); where none is writable, the kernel is
compiled per process, as numba would do.

Why not plain ``cache=True``: numba keys a cached function by its own
bytecode and its own file's time stamp, not by the functions it calls.  A
kernel here inlines the math of ``_numba/kl_math.py`` and the lane helpers of
other files, so an edit there would leave a stale kernel in the cache: a
silently wrong number.  The key below adds a hash of every ``.py``
source of ``kl_fast._numba``, so any edit to any of them recompiles every kernel
(once).  Each kernel module registers its source as it is imported, so the
hash describes the code this process compiles even if a file is edited
while it runs.
"""

import functools
import hashlib
import pathlib
import warnings

import numba
from numba.core.caching import FunctionCache
from numba.core.errors import NumbaPerformanceWarning

__all__ = ["compile_kernel", "cache_stats"]

_HERE = pathlib.Path(__file__).resolve().parent
# the modules whose code goes into the kernels; every one is imported (and so
# registered) before the digest is taken
_KERNEL_MODULES = ("kl_math", "lanes", "row_loops", "rows", "spaces", "elementwise",
                   "pairwise", "mutual_information", "gaussian_full")
_registered = {}


def register_source(path):
    """Record the source of a kernel module as it is imported: the digest must
    describe the code this process compiles, even if the file changes later."""
    path = pathlib.Path(path).resolve()
    if path.name not in _registered:   # the first import's source is the one in use
        _registered[path.name] = path.read_bytes()


@functools.cache
def sources_digest():
    """SHA-256 of the package's Numba sources (every ``kl_fast/_numba/*.py``), as imported."""
    import importlib

    for name in _KERNEL_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    h = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")):
        h.update(path.name.encode())
        source = _registered.get(path.name)
        h.update(source if source is not None else path.read_bytes())
    return h.hexdigest()


register_source(__file__)


class _KernelCache(FunctionCache):
    """numba's FunctionCache, with the digest of all kernel sources in the key."""

    def _index_key(self, sig, codegen):
        return (*super()._index_key(sig, codegen), sources_digest())


def row_types(dtype):
    """The numba types of the row kernels' arguments for a float dtype name:
    (x: 2-D readonly 'A' rows, out, report, labels, int64, float64, boolean).
    One signature per dtype fits every layout and stride pattern of the inputs."""
    t = numba.types
    fl = t.float64 if dtype == "float64" else t.float32
    return (t.Array(fl, 2, "A", readonly=True), t.Array(fl, 1, "C"),
            t.Array(t.int64, 2, "C"), t.Array(t.int64, 1, "A", readonly=True),
            t.int64, t.float64, t.boolean)


def compile_kernel(func, sig, parallel=False):
    """`func` (a module-level function) compiled for `sig`, through the disk cache.

    Returns a dispatcher that runs only that signature (arrays of other
    layouts or writeability are converted to it, as ``numba.njit(sig)``
    does), so every layout shares one compiled kernel.
    """
    disp = numba.njit(nogil=True, error_model="numpy", parallel=parallel)(func)
    try:
        # numba's own enable_caching() sets this attribute to a FunctionCache
        disp._cache = _KernelCache(func)
    except RuntimeError:   # no cache directory can be written: compile per process
        pass
    with warnings.catch_warnings():
        # "parallel=True ... no transformation for parallel execution was possible": the
        # long-row driver of Renyi's order inf sums its blocks in order (same bits as the
        # serial driver), so its prange folds away; nothing a user could act on
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        disp.compile(sig)
    disp.disable_compile()
    return disp


def cache_stats(dispatchers):
    """{name: (cache hits, cache misses)} of compiled dispatchers (numba's counters)."""
    out = {}
    for key, disp in dispatchers.items():
        stats = disp.stats
        out[key] = (sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
    return out
