"""Huge arrays: more than 2**31 elements, and a row longer than 2**31, give correct results
(no 32-bit index or offset anywhere).  Marked slow: ``pytest tests/test_huge.py --run-slow``.

Inputs are sparse memory-mapped float32 files in ``tmp_path``: only their last rows (or
last elements) are written, so each takes ~8 GiB of address space but a few MiB of disk.
Reading the holes fills the page cache with zero pages (~8 GiB per file, 16 GiB for the
module, dropped by the kernel under pressure; the process's own memory stays small), so
the machine wants ~16 GiB of free memory for a fast run.  Measured on a busy 2-core
machine: ~6.5 minutes for the module (2**31 elements: ~2 min per backend; long row:
~1 min per backend), each call reading 8 GiB.  The compiled backends only: the numpy
reference backend would make float64 copies of 8 GiB blocks.

* ``(2049, 2**20)`` float32 (2**31 + 2**20 elements), the last three rows non-zero: their
  results (data at byte offsets >= 2**33) equal the results on those rows alone and the
  float64 scipy reference; every all-zero row gives 0 (``validate=False``).
* One row of ``2**31 + 2**16`` elements with its mass in the last elements: equal to the
  result on the tail alone (the zeros add nothing) and to scipy.

The sources were audited for 32-bit indices (src/*.h, src/*.pyx, kl_fast/_numba_*.py):
sizes, strides, offsets and loop counters are Py_ssize_t / ptrdiff_t / int64 (numba's
intp); C ``int`` holds only flags, codes, lane numbers (< 8) and thread counts.
"""

import numpy as np
import pytest
from scipy import special

import kl_fast

from .conftest import COMPILED_BACKENDS

pytestmark = pytest.mark.slow

K = 1 << 20
N_ROWS = 2049                    # N_ROWS * K > 2**31; row 2048 starts at byte 2**33
LONG = (1 << 31) + (1 << 16)     # one row longer than 2**31
TAIL = 4096


def _sparse(path, shape):
    """A float32 file of `shape` that is all holes, mapped for writing its non-zero part."""
    with open(path, "wb") as f:
        f.truncate(int(np.prod(shape)) * 4)
    return np.memmap(path, dtype=np.float32, mode="r+", shape=shape)


def _rows(rng, n, k):
    x = rng.uniform(0.0, 1.0, size=(n, k))
    x[:, ::5] = 0.0
    return (x / x.sum(axis=1, keepdims=True)).astype(np.float32)


def _entropy_ref(p):
    return special.entr(p.astype(np.float64)).sum(axis=-1)


def _kl_ref(p, q):
    return special.rel_entr(p.astype(np.float64), q.astype(np.float64)).sum(axis=-1)


@pytest.fixture(scope="module")
def many_rows(tmp_path_factory):
    rng = np.random.default_rng(2049)
    path = tmp_path_factory.mktemp("huge") / "rows.f32"
    mm = _sparse(path, (N_ROWS, K))
    mm[-3:] = _rows(rng, 3, K)
    mm.flush()
    del mm
    p = np.memmap(path, dtype=np.float32, mode="r", shape=(N_ROWS, K))
    q = rng.uniform(0.5, 1.5, size=K)
    return p, (q / q.sum()).astype(np.float32)


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_more_than_2_31_elements(many_rows, backend):
    p, q = many_rows
    assert p.size > 2**31 and (N_ROWS - 1) * K * 4 >= 2**33
    tail = np.array(p[-3:])                  # the non-zero rows alone, in memory
    for n_threads in (1, None):
        h = kl_fast.entropy(p, validate=False, backend=backend, num_threads=n_threads)
        kl = kl_fast.kl_divergence(p, q, validate=False, backend=backend,
                                   num_threads=n_threads)
        assert h.shape == kl.shape == (N_ROWS,)
        assert not h[:-3].any() and not kl[:-3].any()
        np.testing.assert_array_equal(h[-3:], kl_fast.entropy(tail, backend=backend))
        np.testing.assert_array_equal(kl[-3:], kl_fast.kl_divergence(tail, q, backend=backend))
        np.testing.assert_allclose(h[-3:], _entropy_ref(tail), rtol=1e-6)
        np.testing.assert_allclose(kl[-3:], _kl_ref(tail, q), rtol=1e-5, atol=1e-9)


@pytest.fixture(scope="module")
def long_row(tmp_path_factory):
    """p = mm[:LONG] with mass in its last TAIL elements, q = mm[TAIL:] (mass in its last
    2 * TAIL): one file, two overlapping views, both rows longer than 2**31."""
    rng = np.random.default_rng(31)
    path = tmp_path_factory.mktemp("huge") / "row.f32"
    mm = _sparse(path, (LONG + TAIL,))
    mm[LONG - TAIL:] = rng.uniform(0.5, 1.5, size=2 * TAIL).astype(np.float32)
    mm.flush()
    del mm
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=(LONG + TAIL,))
    return mm[:LONG], mm[TAIL:]


@pytest.mark.parametrize("backend", COMPILED_BACKENDS)
def test_a_row_longer_than_2_31(long_row, backend):
    p, q = long_row
    assert p.size == q.size == LONG > 2**31
    # the last 2 * TAIL elements hold all the mass of both rows
    p_tail, q_tail = np.array(p[-2 * TAIL:]), np.array(q[-2 * TAIL:])
    p_ref = p_tail / p_tail.astype(np.float64).sum()
    q_ref = q_tail / q_tail.astype(np.float64).sum()
    for n_threads in (1, None):
        kw = {"normalize": True, "backend": backend, "num_threads": n_threads}
        h = kl_fast.entropy(p, **kw)
        kl = kl_fast.kl_divergence(p, q, **kw)
        assert h == kl_fast.entropy(p_tail, **kw)
        assert kl == kl_fast.kl_divergence(p_tail, q_tail, **kw)
        np.testing.assert_allclose(h, _entropy_ref(p_ref), rtol=1e-6)
        np.testing.assert_allclose(kl, _kl_ref(p_ref, q_ref), rtol=1e-5)
