"""mutual_information: against the entropy identity, a naive loop and mpmath at 50
digits; exact zeros, axes, counts, validation, backends, float32 and properties."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp, mpf
from scipy import stats

import kl_fast
from tests.conftest import COMPILED_BACKENDS

mp.dps = 50
EPS64 = float(np.finfo(np.float64).eps)


# -- references ------------------------------------------------------------------------------
def naive_mi(table):
    """sum J log(J / (a b)) in plain Python floats."""
    a = [sum(row) for row in table]
    b = [sum(col) for col in zip(*table, strict=True)]
    return max(0.0, sum(x * math.log(x / (a[i] * b[j]))
                        for i, row in enumerate(table) for j, x in enumerate(row) if x > 0))


def mp_mi(table):
    """(I, sum |terms|) at 50 digits on the stored values."""
    t = [[mpf(float(x)) for x in row] for row in np.asarray(table)]
    a = [sum(row) for row in t]
    b = [sum(col) for col in zip(*t, strict=True)]
    terms = [x * mp.log(x / (a[i] * b[j])) for i, row in enumerate(t) for j, x in enumerate(row)
             if x != 0]
    return max(sum(terms), mpf(0)), sum(abs(x) for x in terms)


def random_tables(rng, n, nx, ny):
    j = rng.random((n, nx, ny))
    return j / j.sum(axis=(1, 2), keepdims=True)


def near_independent(rng, nx, ny, delta):
    j = np.outer(rng.random(nx), rng.random(ny)) * (1.0 + delta * rng.standard_normal((nx, ny)))
    return j / j.sum()


# -- against independent implementations -----------------------------------------------------
def test_entropy_identity(backend, rng):
    j = random_tables(rng, 30, 4, 6)
    j[:10] = j[:10] ** 4   # far from independent
    j /= j.sum(axis=(1, 2), keepdims=True)
    hx = stats.entropy(j.sum(axis=2), axis=1)
    hy = stats.entropy(j.sum(axis=1), axis=1)
    hxy = stats.entropy(j.reshape(30, -1), axis=1)
    got = kl_fast.mutual_information(j, backend=backend)
    np.testing.assert_allclose(got, hx + hy - hxy, atol=1e-14)
    assert np.all(got <= np.minimum(hx, hy) + 1e-15)


def test_naive_loop(backend, rng):
    j = random_tables(rng, 12, 3, 5) ** 3
    j /= j.sum(axis=(1, 2), keepdims=True)
    j[0, 1] = 0.0   # zero entries and a zero row
    j[0] /= j[0].sum()
    got = kl_fast.mutual_information(j, backend=backend)
    np.testing.assert_allclose(got, [naive_mi(t.tolist()) for t in j], rtol=1e-13, atol=1e-16)


def test_bits_and_perfect_dependence(backend):
    for n in (2, 4, 8, 5):
        got = kl_fast.mutual_information(np.eye(n) / n, base=2, backend=backend)
        assert got == pytest.approx(math.log2(n), rel=4 * EPS64)


# -- accuracy against mpmath -----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3), (16, 16)])
def test_mpmath_generic(backend, rng, shape):
    for _ in range(5):
        j = random_tables(rng, 1, *shape)[0] ** 2
        j /= j.sum()
        exact, scale = mp_mi(j)
        got = kl_fast.mutual_information(j, backend=backend)
        assert float(abs(mpf(float(got)) - exact)) <= 8 * EPS64 * float(scale)


@pytest.mark.parametrize("delta", [1e-3, 1e-6, 1e-9])
@pytest.mark.parametrize("shape", [(2, 3), (8, 8), (16, 16)])
def test_mpmath_near_independent(backend, rng, shape, delta):
    # terms cancel: the contract is |error| <= 8 eps sum |terms| (measured <= 0.25), on
    # the numpy reference too (double-double marginals by error-free products)
    for _ in range(4):
        j = near_independent(rng, *shape, delta)
        exact, scale = mp_mi(j)
        got = kl_fast.mutual_information(j, backend=backend, validate=False)
        assert float(abs(mpf(float(got)) - exact)) <= 8 * EPS64 * float(scale)


def test_underflowing_products(backend):
    # a_i b_j below DBL_MIN: the "odd" terms take the exact scalar path
    j = np.array([[0.5, 1e-200, 0.0], [1e-200, 1e-300, 0.0], [0.0, 0.0, 0.5]])
    j[0, 0] -= j.sum() - 1.0
    exact, scale = mp_mi(j)
    got = kl_fast.mutual_information(j, backend=backend)
    assert float(abs(mpf(float(got)) - exact)) <= 8 * EPS64 * float(scale)
    if backend != "numpy":
        assert got == kl_fast.mutual_information(j, backend=COMPILED_BACKENDS[0])


def test_float32_within_one_ulp(backend, rng):
    for _ in range(20):
        j = (random_tables(rng, 1, 4, 5)[0] ** 2).astype(np.float32)
        j /= j.sum()
        got = kl_fast.mutual_information(j, backend=backend)
        assert got.dtype == np.float32
        exact, _ = mp_mi(j)
        assert float(abs(mpf(float(got)) - exact)) <= float(np.spacing(np.float32(exact)))


def test_exact_zero_for_dyadic_outer_products(backend):
    a = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    b = np.array([0.75, 0.125, 0.125])
    tables = np.stack([np.outer([0.5, 0.25, 0.25], b), np.outer(b, b), np.outer(b[::-1], b)])
    np.testing.assert_array_equal(kl_fast.mutual_information(tables, backend=backend), 0.0)
    assert kl_fast.mutual_information(np.outer(a, b), backend=backend) == 0.0
    assert kl_fast.mutual_information(np.outer(b, a), backend=backend) == 0.0
    assert kl_fast.mutual_information([[1.0]], backend=backend) == 0.0


# -- axes, layouts, options ------------------------------------------------------------------
def same(backend, got, want):
    """Bit for bit on the compiled backends (fixed order); numpy's sums follow the layout."""
    if backend == "numpy":
        np.testing.assert_allclose(got, want, rtol=4 * EPS64, atol=1e-300)
    else:
        np.testing.assert_array_equal(got, want)


def test_axes_choices(backend, rng):
    j = random_tables(rng, 6, 3, 4)                     # (batch, X, Y)
    want = kl_fast.mutual_information(j, backend=backend)
    moved = np.ascontiguousarray(np.moveaxis(j, 0, 1))  # (X, batch, Y)
    same(backend, kl_fast.mutual_information(moved, axes=(0, 2), backend=backend), want)
    swapped = kl_fast.mutual_information(moved, axes=(2, 0), backend=backend)
    np.testing.assert_allclose(swapped, want, rtol=1e-14, atol=1e-16)
    kept = kl_fast.mutual_information(moved, axes=(0, 2), keepdims=True, backend=backend)
    assert kept.shape == (1, 6, 1)
    same(backend, kept[0, :, 0], want)
    assert kl_fast.mutual_information(j, reduction="mean", backend=backend) == \
        pytest.approx(want.mean(), rel=1e-15)
    out = np.empty(6)
    assert kl_fast.mutual_information(j, out=out, backend=backend) is out
    four = np.broadcast_to(j, (2, 6, 3, 4))
    assert kl_fast.mutual_information(four, backend=backend).shape == (2, 6)


def test_strided_tables_read_in_place(backend, rng):
    big = random_tables(rng, 5, 6, 8)
    view = big[:, ::2, ::-2]            # strided, reversed
    view = view / view.sum(axis=(1, 2), keepdims=True)
    fortran = np.asfortranarray(view)
    want = kl_fast.mutual_information(np.ascontiguousarray(view), backend=backend)
    same(backend, kl_fast.mutual_information(fortran, backend=backend), want)
    same(backend, kl_fast.mutual_information(view, backend=backend), want)
    t = kl_fast.mutual_information(torch.tensor(view), backend=backend)
    assert isinstance(t, torch.Tensor)


def test_counts_and_eps(backend, rng):
    counts = rng.integers(0, 20, size=(4, 3, 5))
    probs = counts / counts.sum(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(kl_fast.mutual_information(counts, normalize=True,
                                                          backend=backend),
                               kl_fast.mutual_information(probs, backend=backend), rtol=1e-14,
                               atol=1e-16)
    eps = 0.01
    smoothed = (probs + eps) / (1.0 + 15 * eps)
    np.testing.assert_allclose(kl_fast.mutual_information(probs, eps=eps, backend=backend),
                               kl_fast.mutual_information(smoothed, backend=backend), rtol=1e-13)


def test_compiled_backends_agree_bitwise(dtype, rng):
    n = 2000   # enough work for the API to use 2 threads
    j = random_tables(rng, n, 7, 9).astype(dtype)
    j[:50] = (np.outer(np.arange(1, 8), np.arange(1, 10)) / 1260.0
              * (1 + 1e-7 * rng.standard_normal((50, 7, 9)))).astype(dtype)
    results = [kl_fast.mutual_information(j, backend=b, num_threads=t, validate=False)
               for b in COMPILED_BACKENDS for t in (1, 2)]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_kernels_give_the_same_bits_for_any_thread_count(compiled_backend, rng):
    from kl_fast._engine.backends import get_backend

    n = 40
    j = random_tables(rng, n, 3, 5)
    kernel = get_backend(compiled_backend)[1].mutual_information_kernel
    outs = []
    for threads in (1, 2, 3, 7):
        out, sums = np.empty(n), np.empty(n)
        info = np.zeros((n, 3), dtype=np.int64)
        kernel(j, out, sums, info, 1, 0.0, False, 1.0, threads)
        outs.append(out)
        np.testing.assert_allclose(sums, 1.0, rtol=1e-15)
        assert not info.any()
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


# -- validation ------------------------------------------------------------------------------
def test_invalid_values(backend, rng):
    j = random_tables(rng, 3, 2, 4)
    j[2, 1, 3] = -0.1
    with pytest.raises(ValueError, match=r"joint contains an invalid value, -0.1 at index "
                                         r"\(2, 1, 3\).*finite and >= 0.*validate=False"):
        kl_fast.mutual_information(j, backend=backend)
    j[2, 1, 3] = np.nan
    with pytest.raises(ValueError, match=r"nan at index \(1, 3, 2\)"):
        kl_fast.mutual_information(np.moveaxis(j, 0, 2), axes=(0, 1), backend=backend)


def test_sums_not_one(backend, rng):
    j = random_tables(rng, 3, 2, 4)
    j[1] *= 1.5
    with pytest.raises(ValueError, match=r"joint must sum to 1 over axes \(1, 2\), but the table "
                                         r"at batch index \(1,\) sums to 1.5.*normalize=True"):
        kl_fast.mutual_information(j, backend=backend)
    with pytest.raises(ValueError, match=r"sums to 0.0 .*cannot be normalized.*eps > 0"):
        kl_fast.mutual_information(np.zeros((2, 2)), normalize=True, backend=backend)
    assert kl_fast.mutual_information(np.zeros((2, 2)), normalize=True, eps=0.1,
                                      backend=backend) == 0.0


def test_argument_errors():
    j = np.full((2, 2), 0.25)
    with pytest.raises(ValueError, match="same axis twice"):
        kl_fast.mutual_information(j, axes=(1, -1))
    with pytest.raises(ValueError, match="out of bounds"):
        kl_fast.mutual_information(j, axes=(0, 2))
    with pytest.raises(TypeError, match="pair of ints"):
        kl_fast.mutual_information(j, axes=0)
    with pytest.raises(ValueError, match="two axes"):
        kl_fast.mutual_information([0.5, 0.5])
    with pytest.raises(ValueError, match="empty"):
        kl_fast.mutual_information(np.zeros((3, 0)))
    with pytest.raises(TypeError, match="complex"):
        kl_fast.mutual_information(j.astype(complex))


def test_validate_false_never_crashes(backend):
    garbage = np.array([[[-1.0, 2.0], [np.nan, 0.5]], [[np.inf, 0.0], [1.0, 1.0]],
                        [[0.0, 0.0], [0.0, 0.0]]])
    got = kl_fast.mutual_information(garbage, validate=False, backend=backend)
    assert got.shape == (3,)


# -- properties ------------------------------------------------------------------------------
@st.composite
def tables(draw):
    nx, ny = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    j = rng.random((nx, ny)) ** draw(st.sampled_from([1, 3, 10]))
    j[rng.random((nx, ny)) < draw(st.sampled_from([0.0, 0.3]))] = 0.0
    j.flat[0] += 1e-3
    return j / j.sum()


@given(tables())
def test_property_nonnegative_and_symmetric(j):
    a = kl_fast.mutual_information(j, backend="cython")
    b = kl_fast.mutual_information(j, axes=(1, 0), backend="cython")
    assert a >= 0.0
    assert abs(a - b) <= 1e-14 * max(a, 1e-300) + 8 * EPS64 * float(mp_mi(j)[1])


def dyadic(splits):
    """A distribution of powers of two summing to exactly 1: halve entries repeatedly."""
    p = [1.0]
    for k in splits:
        half = p.pop(k % len(p)) / 2
        p += [half, half]
    return np.array(p)


@given(st.lists(st.integers(0, 10), max_size=6), st.lists(st.integers(0, 10), max_size=6))
def test_property_zero_for_dyadic_outer_products(sx, sy):
    # every product and every marginal sum is exact: the kernels must return exactly 0
    j = np.outer(dyadic(sx), dyadic(sy))
    assert kl_fast.mutual_information(j, backend="cython") == 0.0
    assert kl_fast.mutual_information(j, backend="numba") == 0.0
    assert kl_fast.mutual_information(j, backend="numpy") == 0.0
