"""Leaks: 5,000 calls of every public function, error paths included, on every backend,
leave the resident memory and numpy's traced allocations where they were.

The calls are those of tests/call_table.py (``cases``): for each public function its valid
variants (options, spaces, reductions) and its error variants (a bad value, a bad row sum,
a label out of range, a matrix that is not positive definite, a bad keyword, ...).  Each
function gets ``KL_FAST_LEAK_CALLS`` calls (default 5,000) per backend, spread evenly
over its variants (``kl_divergence`` has 17: 295 calls each), after a warm-up of 100
calls a variant (compiles, caches, the allocator's first arenas): ~110,000 calls a
backend.  The inputs are tiny (4 rows of 5 and the like), so a call costs only its Python
bookkeeping -- result arrays, report arrays, views, error messages -- which is what could
leak: a leak of ~10 bytes a call on average (~210 bytes a call in one function) reaches
the limit.

* resident set size (``/proc/self/statm``; psutil where there is no /proc) grows < 1 MiB
  over the calls of all the functions together (the growth per function is printed, and
  in the failure message); measured: 0-250 KiB on each backend (one-off steps of the
  allocator, not growth: 30,000 more calls of the same variant add nothing);
* the numpy domain of ``tracemalloc`` (numpy's data buffers) grows < 64 KiB over
  ``KL_FAST_LEAK_TRACE_CALLS`` calls of each variant (default 100: tracing slows every
  Python allocation).

Every error variant must raise ValueError or TypeError every time, every valid one return.

CI cost: ~75 s for the file on a shared 2-core machine (it was ~146 s at 10,000 calls
and 200 traced calls, once the f-divergences had added four functions; the CI job as a
whole must stay under 20 minutes).  Longer: ``KL_FAST_LEAK_CALLS=10000`` or
``KL_FAST_LEAK_CALLS_PER_VARIANT=10000`` (10,000 calls of every variant; the RSS test
took 77 s on cython), and ``KL_FAST_LEAK_TRACE_CALLS``.
"""

import gc
import math
import os
import tracemalloc
from collections import defaultdict

import numpy as np
import pytest

import kl_fast

from .call_table import cases
from .conftest import BACKENDS

N_CALLS = int(os.environ.get("KL_FAST_LEAK_CALLS", "5000"))
N_CALLS_PER_VARIANT = int(os.environ.get("KL_FAST_LEAK_CALLS_PER_VARIANT", "0"))
N_TRACE_CALLS = int(os.environ.get("KL_FAST_LEAK_TRACE_CALLS", "100"))
N_WARMUP = 100      # calls of each variant before measuring
RSS_LIMIT = 1 << 20
NUMPY_LIMIT = 64 << 10


def _rss():
    """Resident set size in bytes."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import psutil  # noqa: PLC0415 -- only where there is no /proc

        return psutil.Process().memory_info().rss


def _repeat(case, backend, n):
    for _ in range(n):
        try:
            case.call(backend, None)
        except (ValueError, TypeError):
            if not case.fails:
                raise
        else:
            if case.fails:
                raise AssertionError(f"the error call {case.label} returned a result")


def _by_function():
    """{public function: [its cases]}, in the table's order."""
    grouped = defaultdict(list)
    for case in cases(np.random.default_rng(6005)):
        grouped[case.function].append(case)
    return dict(grouped)


def _calls_per_variant(n_variants):
    if N_CALLS_PER_VARIANT:
        return N_CALLS_PER_VARIANT
    return math.ceil(N_CALLS / n_variants)


def _warm_up(grouped, backend):
    for variants in grouped.values():
        for case in variants:
            _repeat(case, backend, N_WARMUP)
    gc.collect()


# kl_fast.__all__ entries that compute nothing
NOT_COMPUTING = {"available_backends", "set_num_threads", "get_num_threads", "threads",
                 "show_config", "__version__"}


def test_every_public_function_gets_its_calls_and_error_paths():
    grouped = _by_function()
    computing = set(kl_fast.__all__) - NOT_COMPUTING
    assert computing <= set(grouped), computing - set(grouped)
    for function, variants in grouped.items():
        assert _calls_per_variant(len(variants)) * len(variants) >= N_CALLS, function
        # the scipy drop-ins follow scipy: bad values give nan/inf, no error
        assert any(c.fails for c in variants) or function.startswith("scipy."), function


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_resident_memory_does_not_grow(backend_name):
    grouped = _by_function()
    _warm_up(grouped, backend_name)
    start = before = _rss()
    growth = {}
    for function, variants in grouped.items():   # no gc.collect in between: ~0.1 s a time
        n = _calls_per_variant(len(variants))
        for case in variants:
            _repeat(case, backend_name, n)
        now = _rss()
        growth[f"{function} ({n * len(variants)} calls)"], before = now - before, now
    gc.collect()
    total = _rss() - start
    print(f"\n{backend_name}: RSS grew {total} bytes; per function: {growth}")
    assert total < RSS_LIMIT, (f"RSS grew {total} bytes; per function (bytes): {growth}")


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_numpy_allocations_do_not_grow(backend_name):
    numpy_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    grouped = _by_function()
    _warm_up(grouped, backend_name)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(numpy_only)
        for variants in grouped.values():
            for case in variants:
                _repeat(case, backend_name, N_TRACE_CALLS)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(numpy_only)
    finally:
        tracemalloc.stop()
    diff = after.compare_to(before, "lineno")
    growth = sum(d.size_diff for d in diff)
    assert growth < NUMPY_LIMIT, (f"numpy allocations grew {growth} bytes over "
                                  f"{N_TRACE_CALLS} calls of each variant: {diff[:5]}")
