"""Leaks: thousands of calls of every public function, error paths included, on both
compiled backends, leave the resident memory and numpy's traced allocations where they were.

Each function is called ``KL_FAST_LEAK_CALLS`` times after a warm-up
(compiles, caches, the allocator's first arenas), on small inputs so the loop measures the
per-call bookkeeping -- result arrays, report arrays, views, error messages: at 10,000
calls of each of the 29 calls, a leak of 4 bytes a call on average (100 bytes a call in one
function) reaches the limit of 1 MiB.

* resident set size (``/proc/self/statm``; psutil where there is no /proc) grows < 1 MiB
  over the calls of all the functions together (the growth per function is in the
  failure message);
* the numpy domain of ``tracemalloc`` (numpy's data buffers) grows < 64 KiB over
  ``KL_FAST_LEAK_TRACE_CALLS`` calls of each function (default 200: tracing slows every
  Python allocation).

The error calls (a bad value, a bad row sum, a bad keyword, ...) must raise ValueError or
TypeError every time.

CI runs 1,000 calls of each of the 29 calls per backend (~5 s a backend for the RSS test
and ~5 s for the tracemalloc test on an idle 2-core machine, a small call costing ~110 us
of Python; twice that on a busy one; plus the Numba compiles, shared with the rest of the
suite).  The issue's figure, 10,000 calls of each: ``KL_FAST_LEAK_CALLS=10000`` (~1-1.5
minutes a backend, measured passing on both); longer: ``KL_FAST_LEAK_CALLS=100000``.
"""

import gc
import os
import tracemalloc

import numpy as np
import pytest

from .call_table import error_calls, valid_calls
from .conftest import COMPILED_BACKENDS

N_CALLS = int(os.environ.get("KL_FAST_LEAK_CALLS", "1000"))
N_TRACE_CALLS = int(os.environ.get("KL_FAST_LEAK_TRACE_CALLS", "200"))
N_WARMUP = 200
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


def _repeat(call, backend, n, fails):
    for _ in range(n):
        try:
            call(backend, None)
        except (ValueError, TypeError):
            if not fails:
                raise
        else:
            if fails:
                raise AssertionError("an error call returned a result")


def _all_calls():
    rng = np.random.default_rng(6005)
    return ([(name, call, False) for name, call in valid_calls(rng).items()]
            + [(name, call, True) for name, call in error_calls(rng).items()])


@pytest.mark.parametrize("backend_name", COMPILED_BACKENDS)
def test_resident_memory_does_not_grow(backend_name):
    calls = _all_calls()
    for _, call, fails in calls:
        _repeat(call, backend_name, N_WARMUP, fails)
    gc.collect()
    start = before = _rss()
    growth = {}
    for name, call, fails in calls:      # no gc.collect in between: it costs ~0.1 s a time
        _repeat(call, backend_name, N_CALLS, fails)
        now = _rss()
        growth[name], before = now - before, now
    gc.collect()
    total = _rss() - start
    assert total < RSS_LIMIT, (f"RSS grew {total} bytes over {N_CALLS} calls of each "
                               f"function; per function (bytes): {growth}")


@pytest.mark.parametrize("backend_name", COMPILED_BACKENDS)
def test_numpy_allocations_do_not_grow(backend_name):
    numpy_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    calls = _all_calls()
    for _, call, fails in calls:
        _repeat(call, backend_name, N_WARMUP, fails)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(numpy_only)
        for _, call, fails in calls:
            _repeat(call, backend_name, N_TRACE_CALLS, fails)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(numpy_only)
    finally:
        tracemalloc.stop()
    diff = after.compare_to(before, "lineno")
    growth = sum(d.size_diff for d in diff)
    assert growth < NUMPY_LIMIT, (f"numpy allocations grew {growth} bytes over "
                                  f"{N_TRACE_CALLS} calls of each function: {diff[:5]}")
