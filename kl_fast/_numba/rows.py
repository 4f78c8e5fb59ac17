"""Row kernels of kl_fast, Numba backend.

A mirror of ``src/rows.pyx`` and the block loops of
``src/kl_blocks.h`` (read their design notes): same entry points and
positional arguments, same ``report`` layout, same blocks, lanes, passes and
summation order, so both backends return the same bits.  What differs is how
that is spelled in Numba:

* Compilation is lazy and once per machine.  Importing this module imports
  neither numba nor the math; each (kernel, variant, dtype) is compiled on
  first use for a single signature (2-D readonly 'A' arrays), so every
  layout, stride pattern and writeability of the inputs reuses the same
  machine code.  The compiled code is module-level (``_numba.row_loops``) and goes
  through numba's disk cache (``_numba.cache``): a later process loads it
  instead of compiling.
* A block runs as in kl_blocks.h, in sub-blocks of ``_numba.lanes.SUB`` elements: a row
  piece with unit inner stride is viewed in place (``row_view``), any other is
  first copied to a small buffer; one plain loop writes the per-element terms
  to a scratch buffer -- the loop LLVM vectorizes, the math being branch-free
  and force-inlined -- and ``lanes_full`` adds the buffer (and the raw values,
  for the row sums) into the LANES accumulators, element j to lane j % LANES,
  with one <8 x double> add per group: the C lane order exactly.  Counts (bad
  values, odd lanes) are exact integers, gathered wherever it is cheapest.
* The per-block code is force-inlined into the row loop, and the arrays it
  takes are passed ``borrow``-ed (no meminfo): otherwise every call would
  cost atomic reference-count updates, which dominate on short rows.
* Scratch is allocated once per chunk of rows (a few KiB), never per row.
* Numba's thread count belongs to the calling thread, so it is set around each
  call; the ``workqueue`` threading layer aborts on concurrent use, so
  parallel calls are serialized by a lock while that layer is (or may be)
  the active one.
"""

import contextlib
import sys
import threading

import numpy as np

from .._registry import ROW_REDUCTIONS

BLOCK_SIZE = 8192
LANES = 8

# Renyi's orders with drivers of their own (row_loops.ROW_KINDS); the rest take the
# general one, "renyi_rows"
_RENYI_ORDERS = {float("inf"): "renyi_max", 0.0: "renyi_zero", 0.5: "renyi_half",
                 2.0: "renyi_two"}

_build_lock = threading.Lock()
_workqueue_lock = threading.Lock()
_compiled = {}


def _signature(numba, family, dtype):
    from .cache import row_types  # lazily: importing kl_fast imports no numba

    t = numba.types
    x, out, rep, labels, i8, f8, b1 = row_types(dtype)
    if family == "label":
        return t.void(labels, x, out, rep, i8, f8, b1, i8, b1, f8)
    if isinstance(family, tuple):
        return t.void(x, x, x, x, out, rep, i8, f8)
    # a row quantity; the last argument is Renyi's 1 - alpha (the others ignore it)
    return t.void(x, x, out, rep, i8, f8, f8, b1, f8, f8)


def compile_once(key, build):
    """The compiled function cached under `key`, built by `build()` on first request.

    Every Numba kernel family compiles through here: one cache and one lock
    (two threads asking at once compile once; the lock is taken only on a miss).
    `key` starts with the family's module name so families never collide.
    """
    fn = _compiled.get(key)
    if fn is None:
        with _build_lock:
            fn = _compiled.get(key)
            if fn is None:
                fn = build()
                _compiled[key] = fn
    return fn


def _kernel(family, variant, dtype):
    """The compiled driver for (family, variant, dtype), compiled (or loaded from
    numba's disk cache) on first request."""
    def build():
        import numba

        from . import row_loops as _numba_rows
        from .cache import compile_kernel

        return compile_kernel(_numba_rows.ENTRIES[(family, variant)],
                              _signature(numba, family, dtype), parallel=variant != "serial")

    return compile_once((__name__, family, variant, dtype), build)


def cache_stats():
    """{kernel key: (disk-cache hits, misses)} of every Numba kernel compiled in this
    process, all families (numba's dispatcher counters)."""
    from .cache import cache_stats as stats

    return stats(dict(_compiled))


# dtype -> name, by a dict look-up: dtype.name is Python code, ~2 us a call
_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def dtype_name(x):
    name = _DTYPE_NAMES.get(x.dtype)
    if name is None:
        raise TypeError(f"numba kernels take float32 or float64 arrays, not {x.dtype}")
    return name


def call_parallel(fn, args, n_threads):
    """Run a parallel driver on min(n_threads, NUMBA_NUM_THREADS) numba threads."""
    import numba

    old = numba.get_num_threads()  # also starts numba's threading layer
    try:
        layer = numba.threading_layer()
    except ValueError:  # not started: assume the worst
        layer = "workqueue"
    lock = _workqueue_lock if layer == "workqueue" else contextlib.nullcontext()
    with lock:
        numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
        # one prange iteration (a chunk of rows, several per thread:
        # _threading.chunk_count) at a time, handed out dynamically, as the Cython
        # kernels' schedule="dynamic": a descheduled thread holds back one chunk
        old_chunk = numba.set_parallel_chunksize(1)
        try:
            fn(*args)
        finally:
            numba.set_parallel_chunksize(old_chunk)
            numba.set_num_threads(old)


def _dispatch(family, args, n_rows, n, report, n_threads, dtype, long_ok):
    # the branches of _rows / _gauss_rows / cross_entropy_label_rows
    if long_ok and n_rows < n_threads and n > BLOCK_SIZE:
        call_parallel(_kernel(family, "long", dtype), args, n_threads)
    elif n_threads == 1 or report.shape[0] == 1:
        _kernel(family, "serial", dtype)(*args)
    else:
        call_parallel(_kernel(family, "parallel", dtype), args, n_threads)


def _rows(name, p, q, out, report, check, tol, eps, transform, log_base, n_threads,
          oma=0.0):
    n_rows, n = p.shape
    if n_rows == 0 or n == 0:
        return
    args = (p, q, out, report, int(check), float(tol), float(eps), bool(transform),
            float(log_base), float(oma))
    _dispatch(name, args, n_rows, n, report, n_threads, dtype_name(p), True)


def _row_kernel(row):
    """The row kernel of registry row `row` (its quantity in row_loops.ROW_KINDS), with
    every backend's arguments for it (one input for entropy)."""
    name = row.kernel
    if row.n_inputs == 1:
        def kernel(p, out, report, check, tol, eps, transform, log_base, n_threads):
            _rows(name, p, p, out, report, check, tol, eps, transform, log_base, n_threads)
    else:
        def kernel(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
            _rows(name, p, q, out, report, check, tol, eps, transform, log_base, n_threads)
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = (f"out[i] = {name.removesuffix('_rows')}(p[i], q[i]) / log_base: the "
                      "quantity of _numba.row_loops.ROW_KINDS of that name.")
    return kernel


def renyi_rows(p, q, out, report, check, tol, eps, transform, log_base, alpha, n_threads):
    """out[i] = log(sum_j p^alpha q^(1-alpha) / sum_j p) / (alpha - 1) / log_base:
    KL at alpha = 1, max log(p/q) over p > 0 at alpha = inf (alpha >= 0)."""
    alpha = float(alpha)
    if alpha == 1.0:
        _rows("kl_rows", p, q, out, report, check, tol, eps, transform, log_base, n_threads)
        return
    _rows(_RENYI_ORDERS.get(alpha, "renyi_rows"), p, q, out, report, check, tol, eps,
          transform, log_base, n_threads, 1.0 - alpha)


# a kernel for every row of the registry's ROW_REDUCTIONS (kl_rows, ..., chi2_rows) but
# those written out above
globals().update({row.kernel: _row_kernel(row) for row in ROW_REDUCTIONS
                  if row.kernel not in globals()})


def cross_entropy_label_rows(labels, q, out, report, check, eps, transform, ignore_index,
                             has_ignore, log_base, n_threads):
    """out[i] = -log q[i, labels[i]] / log_base; NaN where labels[i] == ignore_index.

    Labels out of [0, n_cat) are counted in ``report`` (arg 0) even when
    ``check == 0``; without ``transform`` only the picked value of q is read.
    """
    n_rows, n = q.shape
    if n_rows == 0 or n == 0:
        return
    args = (labels, q, out, report, int(check), float(eps), bool(transform), int(ignore_index),
            bool(has_ignore), float(log_base))
    _dispatch("label", args, n_rows, n, report, n_threads, dtype_name(q), False)


def _gauss(mu1, s1, mu2, s2, prior, out, report, check, scale, log_base, n_threads):
    n_rows, n = mu1.shape
    if n_rows == 0 or n == 0:
        return
    scale = int(scale)
    if scale not in (0, 1, 2, 3):
        raise ValueError(f"scale code must be 0, 1, 2 or 3, not {scale}")
    args = (mu1, s1, mu2, s2, out, report, int(check), float(log_base))
    _dispatch(("gauss", scale, bool(prior)), args, n_rows, n, report, n_threads,
              dtype_name(mu1), False)


def gaussian_kl_rows(mu1, s1, mu2, s2, out, report, check, scale, log_base, n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(mu2, s2))[i, j] / log_base, s in `scale`."""
    _gauss(mu1, s1, mu2, s2, False, out, report, check, scale, log_base, n_threads)


def gaussian_kl_prior_rows(mu1, s1, out, report, check, scale, log_base, n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(0, 1))[i, j] / log_base, s in `scale`."""
    _gauss(mu1, s1, mu1, s1, True, out, report, check, scale, log_base, n_threads)


def threading_layer():
    """Name of numba's active threading layer, or None before it has started."""
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def warmup(dtypes=("float32", "float64")):
    """Compile every kernel variant for ``dtypes`` now instead of on first use (slow
    the first time on a machine; later processes load them from the disk cache)."""
    from .row_loops import ROW_KINDS

    plan = [(k, v) for k in ROW_KINDS for v in ("serial", "parallel", "long")]
    gauss = [("gauss", scale, prior) for scale in range(4) for prior in (False, True)]
    plan += [(f, v) for f in ["label", *gauss] for v in ("serial", "parallel")]
    for dtype in dtypes:
        for family, variant in plan:
            _kernel(family, variant, np.dtype(dtype).name)
