"""pytest-benchmark: the compiled kernels release the GIL.

Group ``threads|<function>|<backend>``: two calls with ``num_threads=1`` on different
data, made one after the other by one Python thread ("one-thread") or at the same time by
two Python threads ("two-threads").  With the GIL released the two threads take about the
time of one call: the "two-threads" entry records ``speedup`` = one-thread time / two-threads
time in ``extra_info`` (target >= 1.7 on a machine with >= 2 idle cores).  The speedup is the
median, over paired rounds run back to back (one-thread, then two-threads), of the ratio of
the two times: pairing cancels the drift of a shared machine that separate runs of the two
entries would see.  Full size: 1000 x 4096 float64 per call (labels: 200,000 x 64, as a
labelled row reads one q value); ``--benchmark-disable`` (the CI check) runs 20 x 256.
"""

import statistics
import threading
import time

import numpy as np
import pytest

import kl_fast

FULL_SHAPE, SMALL_SHAPE = (1000, 4096), (20, 256)
FULL_SHAPE_LABELS = (200_000, 64)
PAIRED_ROUNDS = 15
BACKENDS = [b for b in ("cython", "numba") if b in kl_fast.available_backends()]
FUNCTIONS = ["kl_divergence", "entropy", "cross_entropy", "js_divergence",
             "cross_entropy_labels", "gaussian_kl"]
MODES = ["one-thread", "two-threads"]


def _call(function, backend, rng, shape, num_threads=1):
    """A no-argument call of `function` on its own fresh data, on `num_threads` kernel
    threads (None: the default)."""
    p = rng.dirichlet(np.ones(shape[1]), size=shape[0])
    q = rng.dirichlet(np.ones(shape[1]), size=shape[0])
    kw = {"backend": backend, "num_threads": num_threads}
    if function == "entropy":
        return lambda: kl_fast.entropy(p, **kw)
    if function == "cross_entropy_labels":
        labels = rng.integers(0, shape[1], size=shape[0])
        return lambda: kl_fast.cross_entropy(labels, q, **kw)
    if function == "gaussian_kl":
        mu, var = rng.normal(size=shape), rng.uniform(0.5, 2.0, size=shape)
        return lambda: kl_fast.gaussian_kl(mu, var, mu[::-1], var[::-1], **kw)
    fn = getattr(kl_fast, function)
    return lambda: fn(p, q, **kw)


class _TwoThreads:
    """Two long-lived threads, each running its call once per `run()` (no thread start
    inside the timed region: the barrier releases them together)."""

    def __init__(self, calls):
        self._calls, self._go = calls, threading.Barrier(len(calls) + 1)
        self._done, self._stop = threading.Barrier(len(calls) + 1), False
        self._threads = [threading.Thread(target=self._loop, args=(c,), daemon=True)
                         for c in calls]
        for t in self._threads:
            t.start()

    def _loop(self, call):
        while True:
            self._go.wait()
            if self._stop:
                return
            call()
            self._done.wait()

    def run(self):
        self._go.wait()
        self._done.wait()

    def close(self):
        self._stop = True
        self._go.wait()
        for t in self._threads:
            t.join()


@pytest.fixture(scope="session", autouse=True)
def warm_numba():
    """Overrides the suite's all-kernel Numba warm-up: each case compiles (and runs) its
    own two calls before timing."""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_bench(benchmark, request, function, backend, mode):
    small = request.config.getoption("benchmark_disable", False)
    shape = SMALL_SHAPE if small else (
        FULL_SHAPE_LABELS if function == "cross_entropy_labels" else FULL_SHAPE)
    rng = np.random.default_rng(7)
    calls = [_call(function, backend, rng, shape) for _ in range(2)]
    for c in calls:      # compile (numba) and fault the pages in before timing
        c()
    benchmark.group = f"threads|{function}|{backend}"
    benchmark.extra_info.update(function=function, backend=backend, mode=mode,
                                shape=f"{shape[0]}x{shape[1]}", contender=mode)
    def one_thread():
        for c in calls:
            c()

    if mode == "one-thread":
        benchmark.pedantic(one_thread, rounds=20, iterations=1, warmup_rounds=1)
        return
    pool = _TwoThreads(calls)
    try:
        benchmark.pedantic(pool.run, rounds=20, iterations=1, warmup_rounds=1)
        if benchmark.stats is not None:   # timing on: the paired rounds
            benchmark.extra_info["speedup"] = round(_paired_speedup(one_thread, pool.run), 3)
    finally:
        pool.close()


def _paired_speedup(one_thread, two_threads):
    """Median over PAIRED_ROUNDS of (one-thread time / two-threads time), each pair timed
    back to back."""
    ratios = []
    for _ in range(PAIRED_ROUNDS):
        t0 = time.perf_counter()
        one_thread()
        t1 = time.perf_counter()
        two_threads()
        t2 = time.perf_counter()
        ratios.append((t1 - t0) / (t2 - t1))
    return statistics.median(ratios)


# ---- contention: one core busy elsewhere ------------------------------------------
# Group ``contention|<function>|<backend>``: one call on the default thread count while
# another process keeps one core busy (a DataLoader worker, another job), against the
# same call on one thread.  The "default-threads" entry records ``ratio`` = default time /
# one-thread time in ``extra_info``, the median over paired rounds (target <= 1.0: the
# chunks are handed out dynamically, so a descheduled thread holds back one small chunk).
CONTENTION_SHAPE = (100_000, 256)
CONTENTION_FUNCTIONS = ["kl_divergence", "entropy", "cross_entropy_labels", "gaussian_kl"]


@pytest.fixture
def busy_core():
    """Another process spinning on one core for the duration of the test."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("mode", ["one-thread", "default-threads"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("function", CONTENTION_FUNCTIONS)
def test_contention(benchmark, request, busy_core, function, backend, mode):
    small = request.config.getoption("benchmark_disable", False)
    shape = SMALL_SHAPE if small else CONTENTION_SHAPE
    # the same data (same seed) on one thread and on the default thread count
    call = _call(function, backend, np.random.default_rng(11), shape)
    default = _call(function, backend, np.random.default_rng(11), shape, num_threads=None)
    call(), default()     # compile (numba) and fault the pages in before timing
    benchmark.group = f"contention|{function}|{backend}"
    benchmark.extra_info.update(function=function, backend=backend, mode=mode,
                                shape=f"{shape[0]}x{shape[1]}", contender=mode)
    fn = call if mode == "one-thread" else default
    benchmark.pedantic(fn, rounds=10, iterations=1, warmup_rounds=1)
    if mode == "default-threads" and benchmark.stats is not None:
        ratios = []
        for _ in range(PAIRED_ROUNDS):
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            default()
            t2 = time.perf_counter()
            ratios.append((t2 - t1) / (t1 - t0))
        benchmark.extra_info["ratio"] = round(statistics.median(ratios), 3)

