"""Threads: bit-identical results for any thread count, the thread-count API, concurrent
callers, and inputs that are never written to.

The engine runs small inputs on one thread whatever num_threads says (below
about 32k elements per thread starting threads costs more than it saves), so
the shapes here are large enough to take the parallel-rows and the
parallel-blocks (few long rows) paths.
"""

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import kl_fast
from kl_fast._engine import threads as _threading

from .conftest import BACKENDS

THREAD_COUNTS = [1, 2, 3, 4, 8, -1, None]
SCALES = ("var", "std", "logvar", "logstd")


@pytest.fixture
def restore_default_threads(monkeypatch):
    """Whatever a test does to the process-wide default is undone afterwards."""
    monkeypatch.setattr(_threading, "_default", _threading._default)


def probabilities(rng, shape, dtype=np.float64):
    x = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1])
    x[..., ::7] = 0.0
    return (x / x.sum(axis=-1, keepdims=True)).astype(dtype)


def every_quantity(rng, shape, dtype):
    """name -> a function of num_threads computing one quantity on fixed data."""
    p = probabilities(rng, shape, dtype)
    q = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(dtype)   # no zeros
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    mu1, mu2 = rng.normal(size=(2,) + shape).astype(dtype)
    s1, s2 = rng.uniform(0.5, 2.0, size=(2,) + shape).astype(dtype)
    return {
        "kl": lambda n, b: kl_fast.kl_divergence(p, q, num_threads=n, backend=b),
        "js": lambda n, b: kl_fast.js_divergence(p, q, num_threads=n, backend=b),
        "cross_entropy": lambda n, b: kl_fast.cross_entropy(p, q, num_threads=n, backend=b),
        "entropy": lambda n, b: kl_fast.entropy(p, num_threads=n, backend=b),
        "kl-eps": lambda n, b: kl_fast.kl_divergence(p, q, eps=1e-6, num_threads=n, backend=b),
        "js-normalize": lambda n, b: kl_fast.js_divergence(3 * p, q, normalize=True,
                                                           num_threads=n, backend=b),
        "entropy-nocheck": lambda n, b: kl_fast.entropy(p, validate=False, num_threads=n,
                                                        backend=b),
        "labels": lambda n, b: kl_fast.cross_entropy(labels, q, num_threads=n, backend=b),
        "labels-eps": lambda n, b: kl_fast.cross_entropy(labels, q, eps=1e-4, num_threads=n,
                                                         backend=b),
        "gaussian": lambda n, b: kl_fast.gaussian_kl(mu1, s1, mu2, s2, num_threads=n,
                                                     backend=b),
        "gaussian-prior": lambda n, b: kl_fast.gaussian_kl(mu1, s1, scale="std",
                                                           num_threads=n, backend=b),
    }


# -- bit-identical for any thread count -------------------------------------------------------

@pytest.mark.parametrize(
    "shape",
    [(1, 300_000), (3, 50_000), (1, 70_001), (4001, 33), (7, 50, 300), (5, 4, 17)],
    ids=["one-long-row", "few-long-rows", "one-row-nine-blocks", "many-rows", "3d", "tiny"],
)
def test_results_are_bit_identical_for_any_thread_count(compiled_backend, dtype, shape, rng):
    for name, compute in every_quantity(rng, shape, dtype).items():
        serial = compute(1, compiled_backend)
        for n in THREAD_COUNTS[1:]:
            np.testing.assert_array_equal(compute(n, compiled_backend), serial,
                                          err_msg=f"{name}, num_threads={n}")


def test_very_long_rows_are_bit_identical_for_any_thread_count(compiled_backend, rng):
    p = probabilities(rng, (1, 1_000_000))
    q = probabilities(rng, (1, 1_000_000))
    for fn in (kl_fast.kl_divergence, kl_fast.js_divergence, kl_fast.cross_entropy):
        serial = fn(p, q, num_threads=1, backend=compiled_backend)
        for n in THREAD_COUNTS[1:]:
            np.testing.assert_array_equal(fn(p, q, num_threads=n, backend=compiled_backend),
                                          serial)


def test_long_rows_are_bit_identical_for_any_default(compiled_backend, restore_default_threads,
                                                     rng):
    p = probabilities(rng, (2, 120_000))
    q = probabilities(rng, (2, 120_000)) + 1e-9
    q /= q.sum(axis=-1, keepdims=True)
    kl_fast.set_num_threads(1)
    serial = kl_fast.kl_divergence(p, q, backend=compiled_backend)
    for n in (2, 3, 5, None):
        kl_fast.set_num_threads(n)
        np.testing.assert_array_equal(kl_fast.kl_divergence(p, q, backend=compiled_backend),
                                      serial)
        with kl_fast.threads(7):
            np.testing.assert_array_equal(kl_fast.kl_divergence(p, q, backend=compiled_backend),
                                          serial)


def test_reductions_are_bit_identical_for_any_thread_count(compiled_backend, rng):
    p, q = probabilities(rng, (3000, 40)), probabilities(rng, (3000, 40)) + 1e-3
    q /= q.sum(axis=-1, keepdims=True)
    for reduction in ("sum", "mean"):
        serial = kl_fast.kl_divergence(p, q, reduction=reduction, num_threads=1,
                                       backend=compiled_backend)
        for n in THREAD_COUNTS[1:]:
            assert kl_fast.kl_divergence(p, q, reduction=reduction, num_threads=n,
                                         backend=compiled_backend) == serial


def test_first_bad_index_is_the_same_for_any_thread_count(backend, rng):
    p = probabilities(rng, (20_000, 8))
    p[[611, 19_902], [3, 1]] = np.nan
    messages = set()
    for n in THREAD_COUNTS:
        with pytest.raises(ValueError, match=r"at index \(611, 3\)") as info:
            kl_fast.entropy(p, num_threads=n, backend=backend)
        messages.add(str(info.value))
    assert len(messages) == 1


def test_first_bad_index_in_a_long_row_is_the_same_for_any_thread_count(compiled_backend, rng):
    p = probabilities(rng, (1, 100_000))
    p[0, [99_000, 20_500, 70_000]] = -1.0
    for n in THREAD_COUNTS:
        with pytest.raises(ValueError,
                           match=r"contains an invalid value, .*\(0, 20500\) \(3 invalid"):
            kl_fast.entropy(p, num_threads=n, backend=compiled_backend)


# -- set_num_threads / get_num_threads / threads() --------------------------------------------

def test_set_num_threads_sets_the_default(restore_default_threads):
    kl_fast.set_num_threads(3)
    assert kl_fast.get_num_threads() == 3
    kl_fast.set_num_threads(None)
    assert kl_fast.get_num_threads() == _threading.usable_cpu_count()


def test_negative_counts_count_back_from_all_cores(restore_default_threads):
    cores = _threading.usable_cpu_count()
    kl_fast.set_num_threads(-1)
    assert kl_fast.get_num_threads() == cores
    kl_fast.set_num_threads(-2)
    assert kl_fast.get_num_threads() == max(1, cores - 1)
    kl_fast.set_num_threads(-10_000)
    assert kl_fast.get_num_threads() == 1


def test_threads_overrides_and_restores(restore_default_threads):
    kl_fast.set_num_threads(3)
    with kl_fast.threads(1):
        assert kl_fast.get_num_threads() == 1
        with kl_fast.threads(5):
            assert kl_fast.get_num_threads() == 5
        assert kl_fast.get_num_threads() == 1
        with kl_fast.threads(None):       # None: back to the process default
            assert kl_fast.get_num_threads() == 3
    assert kl_fast.get_num_threads() == 3


def test_threads_restores_on_exception(restore_default_threads):
    kl_fast.set_num_threads(2)
    with pytest.raises(RuntimeError, match="boom"), kl_fast.threads(7):
        assert kl_fast.get_num_threads() == 7
        raise RuntimeError("boom")
    assert kl_fast.get_num_threads() == 2


def test_set_num_threads_inside_threads_changes_only_the_default(restore_default_threads):
    kl_fast.set_num_threads(2)
    with kl_fast.threads(6):
        kl_fast.set_num_threads(4)
        assert kl_fast.get_num_threads() == 6
    assert kl_fast.get_num_threads() == 4


def test_threads_override_is_thread_local(restore_default_threads):
    kl_fast.set_num_threads(3)
    inside, seen = threading.Event(), {}

    def other_thread():
        inside.wait(timeout=10)
        seen["other"] = kl_fast.get_num_threads()
        with kl_fast.threads(2):
            seen["other-override"] = kl_fast.get_num_threads()

    worker = threading.Thread(target=other_thread)
    worker.start()
    with kl_fast.threads(1):
        inside.set()
        worker.join(timeout=10)
        assert kl_fast.get_num_threads() == 1
    assert seen == {"other": 3, "other-override": 2}
    assert kl_fast.get_num_threads() == 3


def test_num_threads_argument_wins_over_defaults(compiled_backend, restore_default_threads,
                                                 rng):
    p = probabilities(rng, (1, 50_000))
    expected = kl_fast.entropy(p, num_threads=1, backend=compiled_backend)
    with kl_fast.threads(1):
        np.testing.assert_array_equal(kl_fast.entropy(p, num_threads=4, backend=compiled_backend),
                                      expected)


def _get_num_threads_in_subprocess(value):
    env = {k: v for k, v in os.environ.items() if k != "KL_FAST_NUM_THREADS"}
    if value is not None:
        env["KL_FAST_NUM_THREADS"] = value
    code = ("import warnings; warnings.simplefilter('always')\n"
            "import kl_fast, kl_fast._engine.threads as t\n"
            "print(kl_fast.get_num_threads(), t.usable_cpu_count())")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True,
                          text=True, timeout=120, check=True)
    n, cores = (int(v) for v in done.stdout.split())
    return n, cores, done.stderr


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("1", 1), ("-1", "cores"),
                                                 (None, "cores"), (" ", "cores")])
def test_env_var_sets_default_at_import(value, expected):
    n, cores, stderr = _get_num_threads_in_subprocess(value)
    assert n == (cores if expected == "cores" else expected)
    assert "RuntimeWarning" not in stderr


@pytest.mark.parametrize("value", ["abc", "0", "2.5"])
def test_env_var_that_is_not_a_count_is_ignored_with_a_warning(value):
    n, cores, stderr = _get_num_threads_in_subprocess(value)
    assert n == cores
    assert "RuntimeWarning" in stderr and "KL_FAST_NUM_THREADS" in stderr


def test_env_var_is_read_only_at_import(monkeypatch, restore_default_threads):
    before = kl_fast.get_num_threads()
    monkeypatch.setenv("KL_FAST_NUM_THREADS", str(before + 5))
    assert kl_fast.get_num_threads() == before


# -- many Python threads at once ---------------------------------------------------------------

@pytest.mark.parametrize("backend_name", BACKENDS)
def test_concurrent_python_threads_get_identical_results(backend_name, rng):
    cases = list(every_quantity(rng, (64, 100), np.float64).items())
    cases += [(f"{k}-f32", v) for k, v in every_quantity(rng, (16, 9000), np.float32).items()]
    expected = {name: compute(1, backend_name) for name, compute in cases}
    start = threading.Barrier(8)

    def worker(w):
        start.wait(timeout=30)
        bad = []
        with kl_fast.threads(1 + w % 3):
            for i in range(50):
                name, compute = cases[(w * 7 + i) % len(cases)]
                n_threads = (None, 1, 2, -1)[i % 4]
                result = compute(n_threads, backend_name)
                if not np.array_equal(result, expected[name]):
                    bad.append((name, n_threads))
                if kl_fast.get_num_threads() != 1 + w % 3:
                    bad.append(("override leaked", kl_fast.get_num_threads()))
        return bad

    with ThreadPoolExecutor(max_workers=8) as pool:
        failures = [f for bad in pool.map(worker, range(8)) for f in bad]
    assert failures == []


# -- inputs are never modified ------------------------------------------------------------------

def _all_calls(rng, dtype):
    """(label, args, call) for every public function with the keywords that transform data."""
    p = probabilities(rng, (6, 10), dtype)
    q = probabilities(rng, (6, 10), dtype)
    counts = rng.integers(0, 9, size=(6, 10))
    counts[:, 0] += 1
    labels = rng.integers(0, 10, size=6)
    labels[2] = -100
    garbage = p.copy()
    garbage[1, 1], garbage[2, 2], garbage[3, 3] = np.nan, -1.0, np.inf
    mu, s = rng.normal(size=(6, 10)).astype(dtype), rng.uniform(0.5, 2, (6, 10)).astype(dtype)
    p_f = np.asfortranarray(p)
    q_be = q.astype(q.dtype.newbyteorder(">"))
    calls = []
    for name, fn in [("kl", kl_fast.kl_divergence), ("js", kl_fast.js_divergence),
                     ("cross_entropy", kl_fast.cross_entropy)]:
        calls += [
            (f"{name}", (p, q), lambda b, fn=fn: fn(p, q, backend=b)),
            (f"{name}-eps", (p, q), lambda b, fn=fn: fn(p, q, eps=0.1, backend=b)),
            (f"{name}-counts", (counts, q), lambda b, fn=fn: fn(counts, q, normalize=True,
                                                              backend=b)),
            (f"{name}-layouts", (p_f, q_be), lambda b, fn=fn: fn(p_f, q_be, normalize=True,
                                                               backend=b)),
            (f"{name}-garbage", (garbage, q), lambda b, fn=fn: fn(garbage, q, validate=False,
                                                                normalize=True, backend=b)),
        ]
    calls += [
        ("entropy", (p,), lambda b: kl_fast.entropy(p, backend=b)),
        ("entropy-eps", (p,), lambda b: kl_fast.entropy(p, eps=0.5, normalize=True, backend=b)),
        ("entropy-garbage", (garbage,), lambda b: kl_fast.entropy(garbage, validate=False,
                                                                  eps=0.1, backend=b)),
        ("labels", (labels, q), lambda b: kl_fast.cross_entropy(labels, q, ignore_index=-100,
                                                                backend=b)),
        ("labels-eps", (labels, q), lambda b: kl_fast.cross_entropy(
            labels, q, ignore_index=-100, eps=0.1, normalize=True, backend=b)),
        ("labels-garbage", (labels, garbage), lambda b: kl_fast.cross_entropy(
            labels, garbage, ignore_index=-100, validate=False, normalize=True, backend=b)),
    ]
    for scale in SCALES:
        calls += [
            (f"gaussian-{scale}", (mu, s), lambda b, sc=scale: kl_fast.gaussian_kl(
                mu, s, s, mu + 3, scale=sc, validate=False, backend=b)),
            (f"gaussian-prior-{scale}", (mu, s), lambda b, sc=scale: kl_fast.gaussian_kl(
                mu, s, scale=sc, axis=None, validate=False, backend=b)),
        ]
    return calls


def test_inputs_are_never_modified(backend, dtype, rng):
    for label, args, run in _all_calls(rng, dtype):
        before = [np.array(a, copy=True) for a in args]
        with np.errstate(all="ignore"):   # garbage calls: only the inputs matter here
            run(backend)
        for a, b in zip(args, before, strict=True):
            assert a.dtype == b.dtype and a.flags.writeable
            np.testing.assert_array_equal(a, b, err_msg=label)


def test_inputs_are_never_modified_by_failing_calls(backend, rng):
    p = probabilities(rng, (4, 5))
    p[2, 2] = -0.5
    before = p.copy()
    with pytest.raises(ValueError), np.errstate(all="ignore"):
        kl_fast.kl_divergence(p, p[::-1], normalize=True, backend=backend)
    np.testing.assert_array_equal(p, before)


def test_torch_inputs_are_never_modified(backend, rng):
    p = torch.from_numpy(probabilities(rng, (4, 6)))
    q = torch.from_numpy(probabilities(rng, (4, 6)) + 0.1)
    before_p, before_q = p.clone(), q.clone()
    kl_fast.kl_divergence(p, q, normalize=True, backend=backend)
    assert torch.equal(p, before_p) and torch.equal(q, before_q)
