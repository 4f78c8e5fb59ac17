"""A call allocates its output and nothing input-sized (tracemalloc, numpy's allocations)."""

import tracemalloc

import numpy as np
import pytest

import kl_fast

COMPILED = [b for b in kl_fast.available_backends() if b != "numpy"]
SLACK = 64 * 1024


def peak_bytes(fn):
    fn()  # warm up: compile (numba), caches
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def dirichlet(rng, shape, dtype):
    x = rng.gamma(1.0, size=shape)
    return (x / x.sum(axis=-1, keepdims=True)).astype(dtype)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["kl", "entropy", "cross_entropy", "js", "labels", "gauss"])
def test_call_allocates_only_its_output(backend, dtype, name, rng):
    n_rows, n_cat = 4000, 512                  # inputs of 8-16 MiB each
    p, q = dirichlet(rng, (n_rows, n_cat), dtype), dirichlet(rng, (n_rows, n_cat), dtype)
    call = {
        "kl": lambda: kl_fast.kl_divergence(p, q, backend=backend),
        "entropy": lambda: kl_fast.entropy(p, backend=backend),
        "cross_entropy": lambda: kl_fast.cross_entropy(p, q, backend=backend),
        "js": lambda: kl_fast.js_divergence(p, q[0], backend=backend),   # broadcast q
        "labels": lambda: kl_fast.cross_entropy(rng.integers(0, n_cat, n_rows), q,
                                                backend=backend),
        "gauss": lambda: kl_fast.gaussian_kl(p, q, scale="logvar", backend=backend),
    }[name]
    output = n_rows * np.dtype(dtype).itemsize
    labels = n_rows * 8 if name == "labels" else 0     # the label array made in the lambda
    assert peak_bytes(call) <= output + labels + SLACK
