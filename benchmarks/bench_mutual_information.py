"""pytest-benchmark: mutual_information against a numpy formula and the read floor.

Groups are ``mutual_information|shape|dtype``; every contender in a group runs on
the same tables.  ``KL_FAST_BENCH_QUICK=1`` shrinks the batch 100-fold (a smoke
run: ``python -m pytest benchmarks/bench_mutual_information.py --benchmark-disable``).
"""

import os

import numpy as np
import pytest
from scipy import special

import kl_fast

QUICK = os.environ.get("KL_FAST_BENCH_QUICK", "0") == "1"
# shape class -> (tables, nx, ny)
SHAPES = {
    "small": (1, 16, 16),
    "many-tables": (100_000, 16, 16),
}
_cache = {}


def data(shape, dtype):
    key = (shape, dtype)
    if key not in _cache:
        _cache.clear()
        n, nx, ny = SHAPES[shape]
        if QUICK and n > 1:
            n //= 100
        j = np.random.default_rng(0).gamma(1.0, size=(n, nx, ny)).astype(dtype)
        j /= j.sum(axis=(-2, -1), keepdims=True, dtype=dtype)
        _cache[key] = j
    return _cache[key]


def numpy_mi(j):
    """The numpy a user writes: marginals, their outer product, rel_entr."""
    a = j.sum(axis=-1)
    b = j.sum(axis=-2)
    return special.rel_entr(j, a[..., :, None] * b[..., None, :]).sum(axis=(-2, -1))


def contenders(shape, dtype):
    j = data(shape, dtype)
    fns = {"floor": lambda: j.sum(axis=(-2, -1)), "numpy": lambda: numpy_mi(j)}
    for backend in kl_fast.available_backends():
        fns[f"kl_fast-{backend}"] = lambda b=backend: kl_fast.mutual_information(j, backend=b)
    return fns


NAMES = ["floor", "kl_fast-cython", "kl_fast-numba", "kl_fast-numpy", "numpy"]


@pytest.fixture(scope="module", autouse=True)
def warm_numba():
    """Compile the Numba kernels before timing."""
    if "numba" in kl_fast.available_backends():
        for dtype in ("float64", "float32"):
            j = np.full((4, 2, 2), 0.25, dtype=dtype)
            kl_fast.mutual_information(j, backend="numba", num_threads=1)
            kl_fast.mutual_information(j, backend="numba", num_threads=2)


def _cases():
    # one group after the other: the data of a group is built once
    for shape in SHAPES:
        for dtype in ("float64", "float32"):
            for name in NAMES:
                yield pytest.param(shape, dtype, name,
                                   id=f"mutual_information|{shape}|{dtype}|{name}")


@pytest.mark.parametrize(("shape", "dtype", "name"), list(_cases()))
def test_bench(benchmark, shape, dtype, name):
    fns = contenders(shape, dtype)
    if name not in fns:
        pytest.skip(f"{name} is not available here")
    benchmark.group = f"mutual_information|{shape}|{dtype}"
    benchmark.extra_info.update(quantity="mutual_information", shape=shape, dtype=dtype,
                                contender=name)
    small = shape == "small"
    benchmark.pedantic(fns[name], rounds=200 if small else 5, iterations=1, warmup_rounds=1)
