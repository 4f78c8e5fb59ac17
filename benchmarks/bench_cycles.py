"""pytest-benchmark: the cost of each kernel per element, where memory does not limit it.

Group ``cycles|<case>``: one call on one thread over rows that stay in the L2/L3
caches (64 x 4096 = 262,144 elements; the label cross-entropy reads one row
in full per label), repeated; ``extra_info`` records ``ns_per_element``
(median time / elements).  Multiplied by the core clock this is the cycles per
element that docs/performance.md compares with the instruction throughput of
the CPU; it isolates the arithmetic from the read floor, which the large-batch
groups of bench_kl.py measure.  ``--benchmark-disable`` (the CI check) runs
each case once on 4 x 64.
"""

import numpy as np
import pytest

import kl_fast

SHAPE, SMALL_SHAPE = (64, 4096), (4, 64)
BACKENDS = [b for b in ("cython", "numba") if b in kl_fast.available_backends()]


def _case(name, dtype, shape, backend):
    """A no-argument call of case `name` on fresh data, one thread, no validation."""
    rng = np.random.default_rng(5)
    n, k = shape
    p = rng.dirichlet(np.ones(k), size=n).astype(dtype)
    q = rng.dirichlet(np.ones(k), size=n).astype(dtype)
    x = (2.0 * rng.normal(size=(n, k))).astype(dtype)
    y = (x + rng.normal(size=(n, k))).astype(dtype)
    labels = rng.integers(0, k, size=n)
    kw = {"backend": backend, "num_threads": 1, "validate": False}
    return {
        "kl": lambda: kl_fast.kl_divergence(p, q, **kw),
        "kl_validated": lambda: kl_fast.kl_divergence(p, q, backend=backend, num_threads=1),
        "entropy": lambda: kl_fast.entropy(p, **kw),
        "cross_entropy": lambda: kl_fast.cross_entropy(p, q, **kw),
        "js": lambda: kl_fast.js_divergence(p, q, **kw),
        "kl_logits": lambda: kl_fast.kl_divergence(x, y, p_space="logits", q_space="logits",
                                                   **kw),
        "kl_logits_nearly_equal": lambda: kl_fast.kl_divergence(
            x, x + np.asarray(1e-3, dtype) * y, p_space="logits", q_space="logits", **kw),
        "entropy_logits": lambda: kl_fast.entropy(x, space="logits", **kw),
        "cross_entropy_labels_logits": lambda: kl_fast.cross_entropy(labels, x,
                                                                     q_space="logits", **kw),
        "cross_entropy_logits": lambda: kl_fast.cross_entropy(p, x, q_space="logits", **kw),
        "kl_logits_temperature": lambda: kl_fast.kl_divergence(
            x, y, p_space="logits", q_space="logits", temperature=2.0, **kw),
    }[name]


CASES = ["kl", "kl_validated", "entropy", "cross_entropy", "js", "kl_logits",
         "kl_logits_nearly_equal", "entropy_logits", "cross_entropy_labels_logits",
         "cross_entropy_logits", "kl_logits_temperature"]


@pytest.fixture(scope="module", autouse=True)
def warm_numba():
    """Overrides the suite's warm-up: each case compiles (numba) before timing."""


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES)
def test_cycles(benchmark, request, case, dtype, backend):
    small = request.config.getoption("benchmark_disable", False)
    shape = SMALL_SHAPE if small else SHAPE
    fn = _case(case, dtype, shape, backend)
    fn()  # compile (numba), fault the pages in, fill the caches
    benchmark.group = f"cycles|{case}"
    benchmark.extra_info.update(case=case, dtype=dtype, backend=backend,
                                shape=f"{shape[0]}x{shape[1]}",
                                contender=f"kl_fast[{backend}] {dtype}")
    benchmark.pedantic(fn, rounds=30, iterations=5, warmup_rounds=2)
    if benchmark.stats is not None:
        per = benchmark.stats.stats.median / (shape[0] * shape[1])
        benchmark.extra_info["ns_per_element"] = round(per * 1e9, 3)
