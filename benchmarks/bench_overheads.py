"""Costs around the kernels: validation on vs off, cold start, two Python threads."""

import subprocess
import sys
import threading

import pytest

import kl_fast
from kl_fast._contenders import make_data

BIG = make_data("kl", 200_000, 256, "float64")


@pytest.mark.parametrize("validate", [True, False])
def test_validation_cost(benchmark, validate):
    benchmark.group = "validation|many-rows|float64"
    benchmark.extra_info.update(contender=f"validate={validate}")
    benchmark.pedantic(kl_fast.kl_divergence, args=(BIG["p"], BIG["q"]),
                       kwargs={"validate": validate}, rounds=7, warmup_rounds=1)


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
