"""Leaks: 10,000 calls of every public function, error paths included, on both compiled
backends, leave the resident memory and numpy's traced allocations where they were.

Each function is called ``KL_FAST_LEAK_CALLS`` times (default 10,000) after a warm-up
(compiles, caches, the allocator's first arenas), on small inputs so the loop measures the
per-call bookkeeping -- result arrays, report arrays, views, error messages -- where a leak
of even 100 bytes a call would show as 1 MiB:

* resident set size (``/proc/self/statm``; psutil where there is no /proc) grows < 1 MiB
  over the calls of each function;
* the numpy domain of ``tracemalloc`` (numpy's data buffers) grows < 64 KiB over the
  calls of each function (``KL_FAST_LEAK_TRACE_CALLS``, default 2,000: tracing slows
  every Python allocation).

The error calls (a bad value, a bad row sum, a bad keyword, ...) must raise ValueError or
TypeError every time.  A longer run: ``KL_FAST_LEAK_CALLS=100000``.
"""

import gc
import os
import tracemalloc

import numpy as np
import pytest

from .backend_calls import error_calls, valid_calls
from .conftest import COMPILED_BACKENDS

N_CALLS = int(os.environ.get("KL_FAST_LEAK_CALLS", "2000"))
N_TRACE_CALLS = int(os.environ.get("KL_FAST_LEAK_TRACE_CALLS", "300"))
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
    growth = {}
    for name, call, fails in _all_calls():
        _repeat(call, backend_name, N_WARMUP, fails)
        gc.collect()
        before = _rss()
        _repeat(call, backend_name, N_CALLS, fails)
        gc.collect()
        growth[name] = _rss() - before
    leaks = {name: g for name, g in growth.items() if g >= RSS_LIMIT}
    assert leaks == {}, f"RSS growth over {N_CALLS} calls (bytes): {leaks}"


@pytest.mark.parametrize("backend_name", COMPILED_BACKENDS)
def test_numpy_allocations_do_not_grow(backend_name):
    numpy_only = [tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)]
    calls = _all_calls()
    for _, call, fails in calls:
        _repeat(call, backend_name, N_WARMUP, fails)
    growth = {}
    tracemalloc.start()
    try:
        for name, call, fails in calls:
            gc.collect()
            before = tracemalloc.take_snapshot().filter_traces(numpy_only)
            _repeat(call, backend_name, N_TRACE_CALLS, fails)
            gc.collect()
            after = tracemalloc.take_snapshot().filter_traces(numpy_only)
            growth[name] = sum(d.size_diff for d in after.compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    leaks = {name: g for name, g in growth.items() if g >= NUMPY_LIMIT}
    assert leaks == {}, f"numpy allocations grown over {N_TRACE_CALLS} calls (bytes): {leaks}"
