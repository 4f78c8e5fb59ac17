"""pairwise_kl / pairwise_js: values against kl_fast-independent references (scipy in a
naive double loop, mpmath at 50 digits), the exact identities (zero diagonal, bitwise
symmetry, thread-count and backend invariance), edges, validation, memory, properties.
"""


import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import special
from scipy.spatial import distance

import kl_fast
from kl_fast import _pairwise

from . import mp_reference as mpr
from .conftest import BACKENDS, COMPILED_BACKENDS
from .test_memory import peak_bytes

EPS64 = float(np.finfo(np.float64).eps)
LN2 = float(np.log(2.0))
FAST_BOUND = 2.0   # measured <= 1.47 eps (H + CE) (peaked rows); test_fast_accuracy_against_mpmath


def dirichlet(rng, shape, alpha=1.0, dtype=np.float64, zeros=False):
    x = rng.gamma(alpha, size=shape)
    if zeros:
        x[..., ::5] = 0.0
    return (x / x.sum(axis=-1, keepdims=True)).astype(dtype)


# -- kl_fast-independent references ----------------------------------------------------------
def naive_kl(P, Q):
    """scipy.special.rel_entr summed, one pair at a time, in float64."""
    P, Q = np.asarray(P, np.float64), np.asarray(Q, np.float64)
    return np.array([[special.rel_entr(p, q).sum() for q in Q] for p in P]).reshape(
        len(P), len(Q))


def naive_js(P, Q):
    """scipy.spatial.distance.jensenshannon squared, one pair at a time."""
    P, Q = np.asarray(P, np.float64), np.asarray(Q, np.float64)
    return np.array([[distance.jensenshannon(p, q) ** 2 for q in Q] for p in P]).reshape(
        len(P), len(Q))


def fast_bound(P, Q):
    """eps * (H(P_i) + CE(P_i, Q_j)): the documented error scale of the fast method."""
    P, Q = np.asarray(P, np.float64), np.asarray(Q, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -special.xlogy(P, P).sum(axis=1)
        ce = np.array([[-special.xlogy(p, q).sum() for q in Q] for p in P]).reshape(
            len(P), len(Q))
    return EPS64 * (h[:, None] + ce)


def assert_close_kl(got, P, Q, dtype, bound=FAST_BOUND):
    """got == naive KL within the fast bound (+ scipy's own rounding), +inf where it is."""
    ref = naive_kl(P, Q)
    scale = fast_bound(P, Q)
    assert got.dtype == dtype and got.shape == ref.shape
    got = got.astype(np.float64)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    fin = np.isfinite(ref)
    # scipy sums p log(p/q) naively: allow its own eps * sum|terms| (<= scale) too
    tol = (bound + 4.0) * scale[fin] + 1e-300
    if dtype == np.float32:
        tol = tol + np.abs(ref[fin]) * 2.0 ** -24   # the final rounding to float32
    assert np.all(np.abs(got[fin] - ref[fin]) <= tol)


# -- values on every backend and dtype -------------------------------------------------------
@pytest.mark.parametrize("precise", [False, True], ids=["fast", "precise"])
def test_pairwise_kl_matches_naive_loop(backend, dtype, precise, rng):
    P = dirichlet(rng, (13, 37), dtype=dtype, zeros=True)
    Q = dirichlet(rng, (9, 37))
    Q[2, 3] = 0.0                                    # P_i3 > 0 for some i -> +inf entries
    Q = (Q / Q.sum(axis=1, keepdims=True)).astype(dtype)
    D = kl_fast.pairwise_kl(P, Q, precise=precise, backend=backend)
    assert np.isinf(D[:, 2]).any() and not np.isnan(D).any()
    assert_close_kl(D, P, Q, dtype)


def test_pairwise_js_matches_scipy_loop(backend, dtype, rng):
    P = dirichlet(rng, (11, 29), dtype=dtype, zeros=True)
    Q = dirichlet(rng, (7, 29), dtype=dtype, zeros=True)
    D = kl_fast.pairwise_js(P, Q, backend=backend)
    assert D.dtype == dtype and D.shape == (11, 7)
    tol = 1e-14 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(D, naive_js(P, Q), rtol=tol, atol=tol)
    assert np.all((D >= 0) & (D <= D.dtype.type(LN2)))


def test_base_eps_normalize(backend, rng):
    counts = rng.integers(0, 5, size=(6, 10)).astype(np.float64)
    counts[:, 0] += 1                                # every row has positive mass
    Qc = rng.integers(0, 5, size=(4, 10)).astype(np.float64)
    Qc[:, 1] += 1
    for eps in (0.0, 1e-3):
        x = (counts + eps) / (counts + eps).sum(axis=1, keepdims=True)
        y = (Qc + eps) / (Qc + eps).sum(axis=1, keepdims=True)
        for precise in (False, True):
            D = kl_fast.pairwise_kl(counts, Qc, normalize=True, eps=eps, base=2,
                                    precise=precise, backend=backend)
            assert_close_kl(D * LN2, x, y, np.float64, bound=8.0)
        J = kl_fast.pairwise_js(counts, Qc, normalize=True, eps=eps, base=2, backend=backend)
        np.testing.assert_allclose(J, naive_js(x, y) / LN2, rtol=1e-13, atol=1e-15)
    # eps smoothing of probabilities keeps everything finite
    P = dirichlet(rng, (5, 10), zeros=True)
    assert np.isfinite(kl_fast.pairwise_kl(P, P[::-1], eps=1e-9, backend=backend)).all()


# -- accuracy against mpmath -------------------------------------------------------------------
def _regimes(rng):
    P = dirichlet(rng, (5, 48))
    near = P[:4] * (1.0 + 1e-6 * rng.standard_normal((4, 48)))
    return {
        "generic": (P, dirichlet(rng, (4, 48))),
        "peaked": (dirichlet(rng, (5, 48), alpha=0.05), dirichlet(rng, (4, 48), alpha=0.05)),
        "near1e-6": (P, near / near.sum(axis=1, keepdims=True)),
        "long": (dirichlet(rng, (2, 5000)), dirichlet(rng, (2, 5000))),   # 2 chunks
    }


@pytest.mark.parametrize("regime", ["generic", "peaked", "near1e-6", "long"])
def test_fast_accuracy_against_mpmath(compiled_backend, regime, rng):
    """|error| <= FAST_BOUND * eps * (H(P_i) + CE(P_i, Q_j)), the documented bound."""
    P, Q = _regimes(rng)[regime]
    D = kl_fast.pairwise_kl(P, Q, backend=compiled_backend)
    worst = 0.0
    for i in range(len(P)):
        h = mpr.entropy(P[i])
        for j in range(len(Q)):
            exact = mpr.kl(P[i], Q[j])
            scale = float(h + mpr.cross_entropy(P[i], Q[j]))
            worst = max(worst, abs(float(D[i, j]) - float(exact)) / (EPS64 * scale))
    assert worst <= FAST_BOUND


@pytest.mark.parametrize("regime", ["generic", "peaked", "near1e-6"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_precise_meets_kl_divergence_contract(regime, dtype, rng):
    """precise=True: 4 eps relative (generic), 8 eps sum|terms| (near equal), 1 f32 ULP."""
    P, Q = (x.astype(dtype) for x in _regimes(rng)[regime])
    D = kl_fast.pairwise_kl(P, Q, precise=True)
    J = kl_fast.pairwise_js(P, Q)
    for i in range(len(P)):
        for j in range(len(Q)):
            exact, jexact = mpr.kl(P[i], Q[j]), mpr.js(P[i], Q[j])
            if dtype == np.float32:
                assert mpr.ulp_error_f32(D[i, j], exact) <= 1.0
                assert mpr.ulp_error_f32(J[i, j], jexact) <= 1.0
            elif regime == "near1e-6":
                assert mpr.scaled_error_eps(float(D[i, j]), exact,
                                            mpr.kl_terms_abs(P[i], Q[j])) <= 8.0
                assert mpr.scaled_error_eps(float(J[i, j]), jexact,
                                            mpr.js_terms_abs(P[i], Q[j])) <= 8.0
            else:
                assert mpr.rel_error_eps(float(D[i, j]), exact) <= 4.0
                assert mpr.rel_error_eps(float(J[i, j]), jexact) <= 4.0


# -- exact identities ---------------------------------------------------------------------------
def test_diagonal_is_exactly_zero(backend, dtype, rng):
    P = dirichlet(rng, (40, 300), alpha=0.3, dtype=dtype, zeros=True)
    for precise in (False, True):
        D = kl_fast.pairwise_kl(P, precise=precise, backend=backend)
        assert np.all(np.diag(D) == 0.0) and np.all(D >= 0.0)
    J = kl_fast.pairwise_js(P, backend=backend)
    assert np.all(np.diag(J) == 0.0)


def test_js_symmetric_bit_for_bit(backend, dtype, rng):
    P = dirichlet(rng, (17, 65), dtype=dtype, zeros=True)
    Q = dirichlet(rng, (12, 65), dtype=dtype)
    for kw in ({}, {"eps": 1e-3}, {"base": 2}):
        a = kl_fast.pairwise_js(P, Q, backend=backend, **kw)
        b = kl_fast.pairwise_js(Q, P, backend=backend, **kw)
        np.testing.assert_array_equal(a.view(np.uint8), b.T.copy().view(np.uint8))
        top = 1.0 if kw.get("base") else a.dtype.type(LN2)
        assert not np.isnan(a).any() and a.max() <= top
    self_js = kl_fast.pairwise_js(P, backend=backend)
    np.testing.assert_array_equal(self_js, self_js.T)


@pytest.mark.parametrize("what", ["fast", "precise", "js"])
def test_thread_count_invariance(compiled_backend, what, rng):
    # large enough that the engine really uses two threads
    P = dirichlet(rng, (150, 300), zeros=True)
    Q = dirichlet(rng, (140, 300))
    fn = {"fast": kl_fast.pairwise_kl, "js": kl_fast.pairwise_js,
          "precise": lambda *a, **k: kl_fast.pairwise_kl(*a, precise=True, **k)}[what]
    one = fn(P, Q, num_threads=1, backend=compiled_backend)
    two = fn(P, Q, num_threads=2, backend=compiled_backend)
    np.testing.assert_array_equal(one.view(np.int64), two.view(np.int64))


@pytest.mark.skipif(COMPILED_BACKENDS != ["cython", "numba"], reason="needs both backends")
@pytest.mark.parametrize("n_cat", [1, 7, 300, 5000])
def test_cython_equals_numba_bitwise(dtype, n_cat, rng):
    P = dirichlet(rng, (21, n_cat), alpha=0.5, dtype=dtype, zeros=n_cat > 5)
    Q = dirichlet(rng, (19, n_cat), dtype=dtype, zeros=n_cat > 5)
    for kw in ({}, {"eps": 1e-4, "base": 2}, {"normalize": True}):
        a = kl_fast.pairwise_kl(P, Q[::-1], backend="cython", **kw)
        b = kl_fast.pairwise_kl(P, Q[::-1], backend="numba", **kw)
        np.testing.assert_array_equal(a.view(np.uint8), b.view(np.uint8))
        if not kw:
            assert_close_kl(a, P, Q[::-1], dtype)


# -- layouts, shapes, array types ---------------------------------------------------------------
def test_layouts_give_the_same_bits(backend, rng):
    """Fortran, strided and negative-stride inputs: the kernels read them in place."""
    base = dirichlet(rng, (20, 33), zeros=True)
    Qbase = dirichlet(rng, (15, 33))
    rev_p, rev_q = base[:, ::-1].copy(), Qbase[:, ::-1].copy()
    wide = np.zeros((20, 66))
    wide[:, ::2] = base
    layouts = {    # name -> (P, Q, the contiguous equivalent, rows reversed?)
        "fortran": (np.asfortranarray(base), np.asfortranarray(Qbase), (base, Qbase), False),
        "strided": (wide[:, ::2], Qbase, (base, Qbase), False),
        "reversed-rows": (base[::-1], Qbase[::-1], (base, Qbase), True),
        "reversed-categories": (base[:, ::-1], Qbase[:, ::-1], (rev_p, rev_q), False),
    }
    for name, (P, Q, (P0, Q0), flip) in layouts.items():
        for fn in (kl_fast.pairwise_kl, kl_fast.pairwise_js):
            got = fn(P, Q, backend=backend)
            want = fn(P0, Q0, backend=backend)
            if flip:
                got = got[::-1, ::-1]
            if backend == "numpy":
                np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=name)
            else:
                np.testing.assert_array_equal(got, want, err_msg=name)


def test_shapes_and_types(backend, rng):
    P = dirichlet(rng, (3, 4))
    for fn in (kl_fast.pairwise_kl, kl_fast.pairwise_js):
        assert fn(np.zeros((0, 4)), P, backend=backend).shape == (0, 3)
        assert fn(P, np.zeros((0, 4)), backend=backend).shape == (3, 0)
        one = fn(np.ones((2, 1)), np.ones((3, 1)), backend=backend)   # K = 1: all zero
        assert one.shape == (2, 3) and np.all(one == 0.0)
        # float32 in -> float32 out; mixed -> float64; lists work
        assert fn(P.astype(np.float32), backend=backend).dtype == np.float32
        assert fn(P.astype(np.float32), P, backend=backend).dtype == np.float64
        assert fn(P.tolist(), backend=backend).shape == (3, 3)
        # torch CPU in -> torch out, same values
        t = fn(torch.from_numpy(P), backend=backend)
        assert isinstance(t, torch.Tensor)
        np.testing.assert_array_equal(t.numpy(), fn(P, backend=backend))


def test_out_argument(backend, rng):
    P, Q = dirichlet(rng, (5, 6)), dirichlet(rng, (4, 6))
    for fn in (kl_fast.pairwise_kl, kl_fast.pairwise_js):
        want = fn(P, Q, backend=backend)
        for out in (np.empty((5, 4)), np.empty((4, 5)).T, np.empty((5, 4), np.float32)):
            got = fn(P, Q, out=out, backend=backend)
            assert got is out
            np.testing.assert_allclose(out, want, rtol=1e-6 if out.dtype == np.float32 else 0)
        with pytest.raises(ValueError, match=r"out has shape \(4, 5\).*\(5, 4\)"):
            fn(P, Q, out=np.empty((4, 5)), backend=backend)
        with pytest.raises(TypeError, match="out"):
            fn(P, Q, out=[[0.0] * 4] * 5, backend=backend)


# -- validation ---------------------------------------------------------------------------------
def test_validation_messages(backend, rng):
    P, Q = dirichlet(rng, (4, 5)), dirichlet(rng, (3, 5))
    bad = P.copy()
    bad[2, 3] = -0.25
    with pytest.raises(ValueError, match=r"^P contains an invalid value, -0\.25 at index "
                                         r"\(2, 3\).*validate=False"):
        kl_fast.pairwise_kl(bad, Q, backend=backend)
    badq = Q.copy()
    badq[1, 4] = np.nan
    for fn in (kl_fast.pairwise_kl, kl_fast.pairwise_js):
        with pytest.raises(ValueError, match=r"^Q contains an invalid value, nan at index "
                                             r"\(1, 4\)"):
            fn(P, badq, backend=backend)
    off = Q.copy()
    off[1] *= 1.1
    with pytest.raises(ValueError, match=r"^Q must sum to 1 along axis 1, but the row at "
                                         r"batch index \(1,\).*normalize=True"):
        kl_fast.pairwise_kl(P, off, backend=backend)
    with pytest.raises(ValueError, match=r"P has shape \(4, 5\) and Q has shape \(3, 6\)"):
        kl_fast.pairwise_kl(P, dirichlet(rng, (3, 6)), backend=backend)
    with pytest.raises(ValueError, match=r"P must be 2-D.*shape \(5,\).*P\[None, :\]"):
        kl_fast.pairwise_js(P[0], Q, backend=backend)
    with pytest.raises(ValueError, match="Q must be 2-D"):
        kl_fast.pairwise_kl(P, np.ones((2, 2, 5)) / 5, backend=backend)
    with pytest.raises(ValueError, match="no categories"):
        kl_fast.pairwise_kl(np.zeros((2, 0)), np.zeros((3, 0)), backend=backend)
    with pytest.raises(ValueError, match="cannot be normalized"):
        kl_fast.pairwise_kl(P, np.zeros((2, 5)), normalize=True, backend=backend)
    with pytest.raises(TypeError, match="complex"):
        kl_fast.pairwise_kl(P.astype(complex), backend=backend)
    with pytest.raises(TypeError, match="precise"):
        kl_fast.pairwise_kl(P, precise="yes", backend=backend)
    with pytest.raises(ValueError, match="base"):
        kl_fast.pairwise_js(P, base=1.0, backend=backend)
    with pytest.raises(ValueError, match="eps"):
        kl_fast.pairwise_kl(P, eps=-1.0, backend=backend)


def test_each_row_is_validated_once(monkeypatch, rng):
    seen = []
    real = _pairwise.run_kernel

    def spy(name, rows, *args):
        seen.append((name, rows.n_rows))
        return real(name, rows, *args)

    monkeypatch.setattr(_pairwise, "run_kernel", spy)
    P, Q = dirichlet(rng, (30, 8)), dirichlet(rng, (20, 8))
    kl_fast.pairwise_kl(P, Q)
    kl_fast.pairwise_js(P, Q)
    kl_fast.pairwise_kl(P, precise=True)
    assert seen == [("entropy_rows", 30), ("entropy_rows", 20)] * 2 + [("entropy_rows", 30)]


def test_validate_false_never_crashes(backend):
    garbage = np.array([[np.nan, -1.0, np.inf, 0.0], [0.0, 0.0, 0.0, 0.0],
                        [1e308, 1e308, -0.0, 5e-324], [2.0, -3.0, 0.5, np.nan]])
    for kw in ({}, {"normalize": True}, {"eps": 1e-3}, {"precise": True}):
        r = kl_fast.pairwise_kl(garbage, garbage[::-1], validate=False, backend=backend, **kw)
        assert r.shape == (4, 4)
    r = kl_fast.pairwise_js(garbage, validate=False, backend=backend)
    assert r.shape == (4, 4)


# -- memory ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["cython"])
def test_memory_is_o_of_n_m_not_n_m_k(backend, rng):
    """2000 x 2000 x 256: the output (32 MB) and O(N + M) extras, not N*M*K (8 GB)."""
    n, m, k = 2000, 2000, 256
    P = np.asfortranarray(dirichlet(rng, (n, k)))    # a strided layout: still no copy
    Q = dirichlet(rng, (m, k))
    peak = peak_bytes(lambda: kl_fast.pairwise_kl(P, Q, eps=1e-9, backend=backend))
    assert peak <= n * m * 8 + 4 * (n + m) * 8 + 64 * 1024


@pytest.mark.parametrize("what", ["precise", "js"])
def test_memory_of_the_row_kernel_paths(compiled_backend, what, rng):
    n, m, k = 300, 400, 256
    P, Q = dirichlet(rng, (n, k)), dirichlet(rng, (m, k))
    call = {"precise": lambda: kl_fast.pairwise_kl(P, Q, precise=True, backend=compiled_backend),
            "js": lambda: kl_fast.pairwise_js(P, Q, backend=compiled_backend)}[what]
    assert peak_bytes(call) <= n * m * 8 + 4 * (n + m) * 8 + 64 * 1024


# -- properties ---------------------------------------------------------------------------------
@st.composite
def row_sets(draw):
    k = draw(st.integers(1, 9))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    rows = []
    for n in (draw(st.integers(1, 4)), draw(st.integers(1, 4))):
        x = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0.0, 1e3)))
        x[:, 0] += 1e-3                                   # a positive sum in every row
        rows.append((x / x.sum(axis=1, keepdims=True)).astype(dtype))
    return rows


@given(rows=row_sets())
def test_property_kl_nonnegative_and_equal_to_kl_divergence(rows):
    P, Q = rows
    for backend in BACKENDS:
        D = kl_fast.pairwise_kl(P, Q, backend=backend)
        assert np.all(D >= 0)
        rowwise = np.array([[kl_fast.kl_divergence(p, q) for q in Q] for p in P])
        fin = np.isfinite(rowwise)
        np.testing.assert_array_equal(np.isinf(D), ~fin)
        tol = FAST_BOUND * fast_bound(P, Q)[fin] + 8 * EPS64 * np.abs(rowwise[fin])
        if P.dtype == np.float32:
            tol = tol + np.abs(rowwise[fin]) * 2.0 ** -23
        assert np.all(np.abs(D[fin].astype(np.float64) - rowwise[fin]) <= tol + 1e-300)


@given(rows=row_sets())
def test_property_js_symmetric_and_bounded(rows):
    P, Q = rows
    for backend in BACKENDS:
        a = kl_fast.pairwise_js(P, Q, backend=backend)
        np.testing.assert_array_equal(a, kl_fast.pairwise_js(Q, P, backend=backend).T)
        assert np.all(a >= 0) and np.all(a <= np.log(2.0))
