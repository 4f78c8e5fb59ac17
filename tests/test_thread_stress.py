"""Thread stress: 8 Python threads x 200 calls at once, no abort, every result identical to
the result of the same call made alone.

* In this process, per backend: every public function (small inputs, serial kernel paths)
  and its error paths, mixed with a few calls large enough to take the parallel kernels,
  the threads released together by a barrier.
* Under every numba threading layer that can be installed -- omp, tbb, workqueue -- in a
  subprocess each (``NUMBA_THREADING_LAYER``), asserting the layer numba really loaded:
  threads call the three backends at once, numba through one kernel family only (a
  family costs a compile of ~1-20 s per subprocess).  The workqueue layer aborts the
  process when two threads launch parallel kernels at once; kl_fast serializes its
  parallel numba calls with a lock under that layer (``_numba.rows.call_parallel``):
  the test checks that the lock is taken and that no two parallel numba calls overlap,
  and that under omp/tbb they do overlap (no needless lock).

tbb: the ``tbb`` wheel (in the ``test`` extra on x86-64) puts ``libtbb.so.12`` in
``<prefix>/lib``, which the loader does not search in a venv; the subprocess adds that
directory to ``LD_LIBRARY_PATH`` (conda environments find it by rpath).  Where the tbb
distribution is not installed the tbb case is not generated.

Longer runs: ``KL_FAST_STRESS_CALLS=2000`` (calls per thread, default 200).
CI cost: ~20 s per layer subprocess (numba compiles) plus a few seconds in process.
"""

import importlib.metadata
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import kl_fast

from .call_table import error_calls, valid_calls
from .conftest import BACKENDS

N_WORKERS = 8
N_CALLS = int(os.environ.get("KL_FAST_STRESS_CALLS", "200"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _installed(dist):
    try:
        importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


LAYERS = ["omp", "workqueue"] + (["tbb"] if _installed("tbb") else [])


def _outcome(call, backend, n_threads):
    """The result of a call, or (exception type, message) for a call that raises."""
    try:
        return call(backend, n_threads)
    except (ValueError, TypeError) as exc:
        return (type(exc).__name__, str(exc))


def _same(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return a == b
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def _hammer(cases, n_workers=N_WORKERS, n_calls=N_CALLS):
    """Run `cases` [(label, thunk)] from n_workers threads at once; return the mismatches.

    The expected outcome of each case is that of one call made alone first; each worker
    starts at its own offset in the list so different functions run side by side.
    """
    expected = [thunk() for _, thunk in cases]
    start = threading.Barrier(n_workers)

    def worker(w):
        start.wait(timeout=60)
        bad = []
        for i in range(n_calls):
            j = (w * 7 + i) % len(cases)
            got = cases[j][1]()
            if not _same(got, expected[j]):
                bad.append((w, i, cases[j][0]))
        return bad

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        return [b for bad in pool.map(worker, range(n_workers)) for b in bad]


def _big_calls(rng):
    """Calls the compiled kernels run on 2+ threads (>= 2 * 2**15 elements; a label row
    counts as one element)."""
    p = rng.dirichlet(np.ones(8192), size=16)
    q = rng.dirichlet(np.ones(8192), size=16)
    q_small = rng.dirichlet(np.ones(16), size=70_000)
    labels = rng.integers(0, 16, size=70_000)
    return {
        "big-kl": lambda b, n: kl_fast.kl_divergence(p, q, backend=b, num_threads=n),
        "big-labels": lambda b, n: kl_fast.cross_entropy(labels, q_small, backend=b,
                                                         num_threads=n),
    }


def _thunks(calls, backend, thread_counts):
    return [(f"{backend}:{name}:{n}", lambda c=call, n=n: _outcome(c, backend, n))
            for name, call in calls.items() for n in thread_counts]


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_eight_threads_call_every_function_at_once(backend_name):
    rng = np.random.default_rng(604)
    cases = _thunks(valid_calls(rng), backend_name, [1])
    cases += _thunks(error_calls(rng), backend_name, [1])
    cases += _thunks(_big_calls(rng), backend_name, [1, 2])
    assert _hammer(cases) == []


def test_parallel_and_serial_results_are_identical():
    """The expected values above come from lone calls; here: 2 threads == 1 thread."""
    big = _big_calls(np.random.default_rng(605))
    for backend in BACKENDS:
        for name, call in big.items():
            np.testing.assert_array_equal(call(backend, 2), call(backend, 1),
                                          err_msg=f"{backend} {name}")


# -- one subprocess per numba threading layer ------------------------------------------------

class _CountingLock:
    """Wraps kl_fast's workqueue lock: how often it is taken, how many hold it at once."""

    def __init__(self, lock):
        self._lock, self._guard = lock, threading.Lock()
        self.taken = self.inside = self.most_inside = 0

    def __enter__(self):
        self._lock.acquire()
        with self._guard:
            self.taken += 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)

    def __exit__(self, *exc):
        with self._guard:
            self.inside -= 1
        self._lock.release()


def stress_in_this_process():
    """The subprocess side: hammer all backends, print a JSON summary on the last line."""
    import numba

    from kl_fast._numba import rows as _numba_kernels

    lock = _CountingLock(_numba_kernels._workqueue_lock)
    _numba_kernels._workqueue_lock = lock
    # how many parallel numba calls run at once (the lock, if taken, is taken inside)
    guard, running = threading.Lock(), {"now": 0, "most": 0, "calls": 0}
    call_parallel = _numba_kernels.call_parallel

    def counted_call_parallel(*args):
        with guard:
            running["now"] += 1
            running["calls"] += 1
            running["most"] = max(running["most"], running["now"])
        try:
            call_parallel(*args)
        finally:
            with guard:
                running["now"] -= 1

    _numba_kernels.call_parallel = counted_call_parallel

    rng = np.random.default_rng(606)
    small, big = valid_calls(rng), _big_calls(rng)
    # numba: one cheap kernel family only (the label kernels compile in ~1 s), a fifth of
    # all calls
    numba_big = {"big-labels": big["big-labels"]}
    cases = _thunks(numba_big, "numba", [1, 2]) * 10
    for backend in ("cython", "numpy"):
        cases += _thunks(small, backend, [1]) + _thunks(big, backend, [2])
    serial_equal = all(_same(call("numba", 2), call("numba", 1)) for call in numba_big.values())
    failures = _hammer(cases)
    print(json.dumps({
        "layer": numba.threading_layer(), "failures": failures[:20],
        "n_failures": len(failures), "serial_equal": serial_equal,
        "calls": N_WORKERS * N_CALLS, "parallel_numba_calls": running["calls"],
        "most_parallel_at_once": running["most"], "lock_taken": lock.taken,
        "lock_most_inside": lock.most_inside,
    }))


def _start_under_layer(layer):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    env.pop("NUMBA_NUM_THREADS", None)
    if layer == "tbb":   # the tbb wheel's libtbb.so.12 lies in <prefix>/lib
        lib = os.path.join(sys.prefix, "lib")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [lib] + [d for d in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if d])
    code = "from tests.test_thread_stress import stress_in_this_process as s; s()"
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def layer_runs():
    """All layer subprocesses started at once (their numba start-up and compiles overlap
    on a multi-core machine); each test waits for its own."""
    runs = {layer: _start_under_layer(layer) for layer in LAYERS}
    yield runs
    for proc in runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize("layer", LAYERS)
def test_eight_threads_under_each_numba_threading_layer(layer, layer_runs):
    stdout, stderr = layer_runs[layer].communicate(timeout=600)
    code = layer_runs[layer].returncode
    assert code == 0, f"{layer}: exit {code}\n{stderr[-3000:]}"
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["layer"] == layer
    assert summary["n_failures"] == 0, summary["failures"]
    assert summary["serial_equal"]
    assert summary["parallel_numba_calls"] >= N_WORKERS * N_CALLS // 16
    if layer == "workqueue":
        # the fallback: parallel numba calls serialized by kl_fast's lock
        assert summary["lock_taken"] == summary["parallel_numba_calls"]
        assert summary["lock_most_inside"] == 1
    else:
        # thread-safe layers: no lock, parallel kernels really run side by side
        assert summary["lock_taken"] == 0
        assert summary["most_parallel_at_once"] >= 2
