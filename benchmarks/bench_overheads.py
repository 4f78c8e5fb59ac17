"""Costs around the kernels: validation on vs off, cold start, two Python threads."""

import subprocess
import sys
import threading

import pytest

import kl_fast
from kl_fast._contenders import make_data

_BIG = {}
VALIDATED = {
    "kl": lambda d, v: kl_fast.kl_divergence(d["p"], d["q"], validate=v),
    "cross_entropy": lambda d, v: kl_fast.cross_entropy(d["p"], d["q"], validate=v),
    "entropy": lambda d, v: kl_fast.entropy(d["p"], validate=v),
    "js": lambda d, v: kl_fast.js_divergence(d["p"], d["q"], validate=v),
    "chi2": lambda d, v: kl_fast.chi2_divergence(d["p"], d["q"], validate=v),
    "total_variation": lambda d, v: kl_fast.total_variation(d["p"], d["q"], validate=v),
}


def _big(dtype):
    """200,000 x 256 probability rows (the contract's size: rows from memory), once."""
    if dtype not in _BIG:
        _BIG.clear()
        _BIG[dtype] = make_data("kl", 200_000, 256, dtype)
    return _BIG[dtype]


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("quantity", list(VALIDATED))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_validation_cost(benchmark, dtype, quantity, validate):
    # the contract: validation on vs off within 10% (docs/performance.md, "Sixth pass")
    benchmark.group = f"validation|{quantity}|200000x256|{dtype}"
    benchmark.extra_info.update(contender=f"validate={validate}")
    data = _big(dtype)
    benchmark.pedantic(VALIDATED[quantity], args=(data, validate), rounds=7, warmup_rounds=1)


COLD = {
    "numpy+scipy import": "import numpy, scipy, scipy.special",
    "kl_fast import + first call": (
        "import numpy as np, kl_fast; kl_fast.kl_divergence(np.full((100, 10), 0.1), "
        "np.full(10, 0.1))"),
}


@pytest.mark.parametrize("name", list(COLD))
def test_cold_start(benchmark, name):
    benchmark.group = "cold-start"
    benchmark.extra_info.update(contender=name)
    benchmark.pedantic(subprocess.run, args=([sys.executable, "-c", COLD[name]],),
                       kwargs={"check": True}, rounds=5, warmup_rounds=1)


@pytest.mark.parametrize("n_callers", [1, 2])
def test_gil_released(benchmark, n_callers):
    """Python threads each calling with num_threads=1: throughput scales if the GIL is free."""
    benchmark.group = "python-threads|many-rows|float64"
    benchmark.extra_info.update(contender=f"{n_callers} caller thread(s), 8 calls in all")
    half = make_data("kl", 50_000, 256, "float64")

    def work(calls):
        for _ in range(calls):
            kl_fast.kl_divergence(half["p"], half["q"], num_threads=1)

    def run():
        threads = [threading.Thread(target=work, args=(8 // n_callers,))
                   for _ in range(n_callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
