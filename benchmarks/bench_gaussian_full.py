"""pytest-benchmark: gaussian_kl_full against the numpy reference, torch and the read floor.

Groups are ``gaussian_kl_full|shape|dtype``; every contender in a group runs on the
same arrays.  ``KL_FAST_BENCH_QUICK=1`` shrinks the batches 100-fold (a smoke run:
``python -m pytest benchmarks/bench_gaussian_full.py --benchmark-disable``).
"""

import os

import numpy as np
import pytest

import kl_fast

QUICK = os.environ.get("KL_FAST_BENCH_QUICK", "0") == "1"
# shape class -> (batch, k)
SHAPES = {
    "small": (1, 8),
    "many-k8": (100_000, 8),
    "many-k64": (10_000, 64),
}
_cache = {}


def data(shape, dtype):
    """(mu1, cov1, mu2, cov2): well-conditioned random SPD pairs, built once per group."""
    key = (shape, dtype)
    if key not in _cache:
        _cache.clear()
        n, k = SHAPES[shape]
        if QUICK and n > 1:
            n //= 100
        rng = np.random.default_rng(0)

        def spd():
            a = rng.standard_normal((n, k, k)) / np.sqrt(k)
            return (a @ np.swapaxes(a, -1, -2) + np.eye(k)).astype(dtype)

        _cache[key] = (rng.standard_normal((n, k)).astype(dtype), spd(),
                       rng.standard_normal((n, k)).astype(dtype), spd())
    return _cache[key]


def contenders(shape, dtype):
    m1, c1, m2, c2 = data(shape, dtype)
    fns = {"floor": lambda: (m1.sum(axis=-1), c1.sum(axis=(-2, -1)), m2.sum(axis=-1),
                             c2.sum(axis=(-2, -1)))}
    for backend in kl_fast.available_backends():
        fns[f"kl_fast-{backend}"] = (
            lambda b=backend: kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=b))
    try:
        import torch
        from torch.distributions import MultivariateNormal, kl_divergence
    except ImportError:
        return fns
    t = [torch.from_numpy(x) for x in (m1, c1, m2, c2)]
    fns["torch"] = lambda: kl_divergence(
        MultivariateNormal(t[0], t[1], validate_args=False),
        MultivariateNormal(t[2], t[3], validate_args=False))
    return fns


NAMES = ["floor", "kl_fast-cython", "kl_fast-numba", "kl_fast-numpy", "torch"]


@pytest.fixture(scope="module", autouse=True)
def warm_numba():
    """Compile the Numba kernel before timing."""
    if "numba" in kl_fast.available_backends():
        m1, c1, m2, c2 = data("small", "float64")
        kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend="numba")
        kl_fast.gaussian_kl_full(np.repeat(m1, 4, 0), np.repeat(c1, 4, 0), backend="numba",
                                 num_threads=2)


def _cases():
    # one group after the other: the data of a group is built once
    for shape in SHAPES:
        for name in NAMES:
            yield pytest.param(shape, name, id=f"gaussian_kl_full|{shape}|float64|{name}")


@pytest.mark.parametrize(("shape", "name"), list(_cases()))
def test_bench(benchmark, shape, name):
    dtype = "float64"
    fns = contenders(shape, dtype)
    if name not in fns:
        pytest.skip(f"{name} is not installed here")
    benchmark.group = f"gaussian_kl_full|{shape}|{dtype}"
    benchmark.extra_info.update(quantity="gaussian_kl_full", shape=shape, dtype=dtype,
                                contender=name)
    small = shape == "small"
    benchmark.pedantic(fns[name], rounds=200 if small else 5, iterations=1, warmup_rounds=1)
