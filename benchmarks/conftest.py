"""Shapes, dtypes and contenders of the pytest-benchmark suite.

Run: ``python -m pytest benchmarks --benchmark-json=bench-results/suite.json``
then ``python benchmarks/report.py bench-results/suite.json`` for the table.
Groups are ``quantity|shape|dtype``; every contender in a group runs on the
same arrays, so the ratios within a group are the result.
"""

import pytest

import kl_fast
from kl_fast._contenders import contenders, make_data
from kl_fast._registry import REGISTRY

# shape classes: one small distribution, many rows, one long row, huge
SHAPES = {
    "small": (1, 10),
    "many-rows": (200_000, 256),
    "long-row": (1, 10_000_000),
}
# the probability-row quantities run in every shape class; every other quantity of the
# registry (labels, Gaussians, logits, tables, pairwise matrices, the f-divergences, ...)
# at its contract size ("huge"; n_cat is the table side, the Gaussian dimension or K)
ROW_QUANTITIES = ["kl", "entropy", "cross_entropy", "js"]
HUGE = {q.name: q.full_size for q in REGISTRY if q.name not in ROW_QUANTITIES}
# the LLM case is float32 logits (what models emit); other quantities run both dtypes
FLOAT32_ONLY = {q.name for q in REGISTRY if q.dtypes == ("float32",)}

_cache = {}


def data_for(quantity, shape, dtype):
    """Arrays for one group, built once per session (the big ones take seconds)."""
    key = (quantity, shape, dtype)
    if key not in _cache:
        _cache.clear()  # keep one group in memory at a time
        n_rows, n_cat = HUGE[quantity] if shape == "huge" else SHAPES[shape]
        _cache[key] = make_data(quantity, n_rows, n_cat, dtype)
    return _cache[key]


@pytest.fixture(scope="session", autouse=True)
def warm_numba():
    """Compile the Numba kernels before timing (compile time is reported by kl-fast bench)."""
    if "numba" in kl_fast.available_backends():
        from kl_fast._numba import rows as _numba_kernels

        _numba_kernels.warmup()


def contender(quantity, shape, dtype, name):
    fns = contenders(quantity, data_for(quantity, shape, dtype))
    if name not in fns:
        pytest.skip(f"{name} not installed or not applicable to {quantity}")
    return fns[name]
