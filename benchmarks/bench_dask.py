"""pytest-benchmark: kl_divergence on dask arrays against the single-process numpy call.

Group ``dask|<rows>x<K>|float64``: the numpy call with 1 and 2 kernel threads,
dask's threaded scheduler (2 threads, one kernel thread per block), and a
``distributed.LocalCluster`` with 1 and 2 worker processes (one thread each).
q is one distribution (K,) broadcast against p.
On the cluster the inputs are created on the workers and persisted before
timing, and the result is persisted on the workers (not gathered), so the time
is the computation.  Full size: 2,000,000 x 256 rows in chunks of 250,000
rows; ``--benchmark-disable`` (the CI check) runs a small size instead.
``KL_FAST_BENCH_DASK_ROWS`` overrides the row count.
"""

import itertools
import os

import dask.array as da
import distributed
import numpy as np
import pytest

import kl_fast

K = 256
FULL_ROWS, FULL_CHUNK = 2_000_000, 250_000
SMALL_ROWS, SMALL_CHUNK = 4_000, 1_000
CONTENDERS = ["numpy-threads1", "numpy-threads2", "dask-threaded", "cluster-1-worker",
              "cluster-2-workers"]


def _sizes(config):
    small = config.getoption("benchmark_disable", False)
    rows, chunk = (SMALL_ROWS, SMALL_CHUNK) if small else (FULL_ROWS, FULL_CHUNK)
    rows = int(os.environ.get("KL_FAST_BENCH_DASK_ROWS", rows))
    return rows, min(chunk, rows)


def _block(block_id, rows, k, seed):
    """Rows of probabilities, seeded by the block: the same data on a worker or here."""
    rng = np.random.default_rng([seed, block_id])
    x = rng.random((rows, k)) + 1e-3
    return x / x.sum(axis=1, keepdims=True)


def _lazy(rows, chunk, seed):
    """A dask array built by tasks (so on a cluster it is created on the workers)."""
    chunks = [min(chunk, rows - start) for start in range(0, rows, chunk)]
    return da.map_blocks(lambda block_info=None: _block(block_info[None]["chunk-location"][0],
                                                        block_info[None]["chunk-shape"][0],
                                                        K, seed),
                         chunks=(tuple(chunks), (K,)), dtype=np.float64)


@pytest.fixture(scope="session", autouse=True)
def warm_numba():
    """Overrides the suite's Numba warm-up: this file times the Cython kernels only."""


@pytest.fixture(scope="module")
def data(request):
    rows, chunk = _sizes(request.config)
    # p (N, K) against one q (K,): the common scoring layout, and half the memory
    # (4 GiB for p at the full size, once here and once on the workers)
    p, q = _lazy(rows, chunk, 1), _lazy(1, 1, 2)[0]
    return rows, p, q, p.compute(), q.compute()


def _same(block):
    return block


def _cluster_runner(n_workers, p, q, stack):
    cluster = stack.enter_context(distributed.LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, memory_limit=0))   # no spilling: time the computation
    client = stack.enter_context(distributed.Client(cluster))
    p, q = client.persist([p, q])
    distributed.wait([p, q])

    rounds = itertools.count()

    def run():
        # dask names tasks by their inputs, so a repeated call could find the last
        # round's result still held on the workers; a zero-copy identity step with a
        # fresh name per round makes every round compute
        fresh = p.map_blocks(_same, dtype=p.dtype, name=f"p-round-{next(rounds)}")
        result = client.persist(kl_fast.kl_divergence(fresh, q, num_threads=1))
        distributed.wait(result)
        del result

    return run


@pytest.mark.parametrize("name", CONTENDERS)
def test_bench_dask(benchmark, data, name):
    import contextlib

    rows, p, q, p_np, q_np = data
    benchmark.group = f"dask|{rows}x{K}|float64"
    benchmark.extra_info.update(quantity="kl", shape=f"{rows}x{K}", dtype="float64",
                                contender=name)
    with contextlib.ExitStack() as stack:
        if name.startswith("numpy"):
            threads = int(name[-1])

            def run():
                return kl_fast.kl_divergence(p_np, q_np, num_threads=threads)
        elif name == "dask-threaded":
            p_mem = da.from_array(p_np, chunks=p.chunks)
            q_mem = da.from_array(q_np)

            def run():
                return kl_fast.kl_divergence(p_mem, q_mem, num_threads=1).compute(
                    scheduler="threads", num_workers=2)
        else:
            run = _cluster_runner(1 if "1" in name else 2, p, q, stack)
        result = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
        if name.startswith("numpy") or name == "dask-threaded":
            np.testing.assert_array_equal(result, kl_fast.kl_divergence(p_np, q_np))
