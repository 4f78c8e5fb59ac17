"""gaussian_kl_full: against torch, scipy's textbook formula and mpmath at 50 digits;
broadcasting, float32, validation messages, backend agreement and properties."""

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp, mpf
from torch.distributions import MultivariateNormal, kl_divergence

import kl_fast
from tests.conftest import COMPILED_BACKENDS

mp.dps = 50
EPS64 = float(np.finfo(np.float64).eps)


# -- data and references ---------------------------------------------------------------------
def spd(rng, k, cond=10.0, batch=()):
    """Exactly symmetric SPD matrices with eigenvalues spread over [1, cond]."""
    out = np.empty(batch + (k, k))
    for index in np.ndindex(*batch):
        q, _ = np.linalg.qr(rng.standard_normal((k, k)))
        c = (q * np.logspace(0, np.log10(cond), k)) @ q.T
        out[index] = np.tril(c) + np.tril(c, -1).T
    return out


def torch_kl(m1, c1, m2, c2):
    t = torch.tensor
    return kl_divergence(MultivariateNormal(t(m1), t(c1)), MultivariateNormal(t(m2), t(c2))).numpy()


def textbook_kl(m1, c1, m2, c2):
    """1/2 [tr(S2^-1 S1) - k + d^T S2^-1 d + log det S2 - log det S1], scipy, one item."""
    k = len(m1)
    f2 = scipy.linalg.cho_factor(c2, lower=True)
    d = m2 - m1
    tr = np.trace(scipy.linalg.cho_solve(f2, c1))
    quad = d @ scipy.linalg.cho_solve(f2, d)
    logdet = np.linalg.slogdet(c2)[1] - np.linalg.slogdet(c1)[1]
    return 0.5 * (tr - k + quad + logdet)


def mp_kl(m1, c1, m2, c2):
    """The textbook formula at 50 digits on the stored values (lower triangles, mirrored)."""
    k = len(m1)

    def mat(c):
        return mp.matrix([[mpf(float(c[max(i, j), min(i, j)])) for j in range(k)]
                          for i in range(k)])

    c1m, c2m = mat(c1), mat(c2)
    d = mp.matrix([mpf(float(m2[i])) - mpf(float(m1[i])) for i in range(k)])
    inv = mp.inverse(c2m)
    tr = sum((inv * c1m)[i, i] for i in range(k))
    quad = (d.T * inv * d)[0, 0]
    return (tr - k + quad + mp.log(mp.det(c2m)) - mp.log(mp.det(c1m))) / 2


def rel_err_eps(got, exact):
    return float(abs(mpf(float(got)) - exact) / abs(exact)) / EPS64


def near_pair(rng, k, cond, delta):
    """(m1, c1, m2, c2) with c2 = c1 perturbed by `delta` relative (symmetric), m2 ~ m1."""
    c1 = spd(rng, k, cond)
    r = rng.standard_normal((k, k))
    c2 = c1 * (1.0 + delta * (r + r.T))
    m1 = rng.standard_normal(k)
    return m1, c1, m1 + delta * rng.standard_normal(k), c2


# -- against independent implementations -----------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 8])
def test_matches_torch(backend, rng, k):
    c1, c2 = spd(rng, k, 50.0, (20,)), spd(rng, k, 50.0, (20,))
    m1, m2 = rng.standard_normal((20, k)), rng.standard_normal((20, k))
    got = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=backend)
    # torch's textbook formula cancels: its absolute error is ~eps * (trace + log dets)
    np.testing.assert_allclose(got, torch_kl(m1, c1, m2, c2), rtol=1e-12, atol=1e-13)


def test_prior_matches_torch(backend, rng):
    k = 4
    c1, m1 = spd(rng, k, 20.0, (10,)), rng.standard_normal((10, k))
    got = kl_fast.gaussian_kl_full(m1, c1, backend=backend)
    want = torch_kl(m1, c1, np.zeros(k), np.eye(k))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(
        got, kl_fast.gaussian_kl_full(m1, c1, np.zeros(k), np.eye(k), backend=backend))


def test_matches_scipy_textbook(backend, rng):
    k = 6
    for _ in range(10):
        m1, m2 = rng.standard_normal(k), rng.standard_normal(k)
        c1, c2 = spd(rng, k, 100.0), spd(rng, k, 100.0)
        got = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=backend)
        np.testing.assert_allclose(got, textbook_kl(m1, c1, m2, c2), rtol=1e-11, atol=1e-13)


# -- accuracy against mpmath -----------------------------------------------------------------
@pytest.mark.parametrize("cond", [10.0, 1e3, 1e6])
def test_mpmath_generic(backend, rng, cond):
    # measured: <= 0.6 eps * cond(cov2) (k = 2..8); the docstring promises 2
    for k in (2, 5):
        for _ in range(3):
            m1, m2 = rng.standard_normal(k), rng.standard_normal(k)
            c1, c2 = spd(rng, k, cond), spd(rng, k, cond)
            got = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=backend)
            assert rel_err_eps(got, mp_kl(m1, c1, m2, c2)) <= 2.0 * np.linalg.cond(c2)


@pytest.mark.parametrize("delta", [1e-6, 1e-9])
@pytest.mark.parametrize("cond", [10.0, 1e4])
def test_mpmath_nearly_coinciding(backend, rng, delta, cond):
    # KL ~ delta^2: the textbook formula (and L2^{-1} L1) lose every digit here
    for k in (2, 6):
        for _ in range(3):
            m1, c1, m2, c2 = near_pair(rng, k, cond, delta)
            exact = mp_kl(m1, c1, m2, c2)
            assert exact < 100 * (delta * cond) ** 2   # nearly coinciding indeed
            got = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=backend)
            assert rel_err_eps(got, exact) <= 2.0 * np.linalg.cond(c2)


@pytest.mark.parametrize("delta", [None, 1e-6, 1e-9])
def test_diagonal_matches_gaussian_kl(backend, rng, delta):
    k = 5
    for _ in range(20):
        v1, m1 = rng.random(k) + 0.1, rng.standard_normal(k)
        if delta is None:
            v2, m2 = rng.random(k) + 0.1, rng.standard_normal(k)
        else:
            v2 = v1 * (1.0 + delta * rng.standard_normal(k))
            m2 = m1 + delta * rng.standard_normal(k)
        want = kl_fast.gaussian_kl(m1, v1, m2, v2)
        got = kl_fast.gaussian_kl_full(m1, np.diag(v1), m2, np.diag(v2), backend=backend)
        assert abs(got - want) <= 8 * EPS64 * want


def test_k1_is_the_scalar_gaussian_kl(backend, rng):
    for _ in range(10):
        m1, m2 = rng.standard_normal(2)
        v1, v2 = rng.random(2) + 0.05
        exact = (mpf(v1) / mpf(v2) - 1 - mp.log(mpf(v1) / mpf(v2))
                 + (mpf(m1) - mpf(m2)) ** 2 / mpf(v2)) / 2
        got = kl_fast.gaussian_kl_full([m1], [[v1]], [m2], [[v2]], backend=backend)
        assert rel_err_eps(got, exact) <= 4


def test_float32_within_one_ulp(backend, rng):
    k = 4
    for _ in range(20):
        c1 = spd(rng, k, 20.0).astype(np.float32)
        c2 = spd(rng, k, 20.0).astype(np.float32)
        m1, m2 = rng.standard_normal((2, k)).astype(np.float32)
        got = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=backend)
        assert got.dtype == np.float32
        exact = mp_kl(m1, c1, m2, c2)
        ulp = float(np.spacing(np.float32(float(exact))))
        assert float(abs(mpf(float(got)) - exact)) <= ulp


# -- shapes, layouts, options ----------------------------------------------------------------
def test_batch_broadcasting(backend, rng):
    k = 3
    m1 = rng.standard_normal((4, 3, k))
    c1 = spd(rng, k, 10.0, (3,))
    m2 = rng.standard_normal(k)
    c2 = spd(rng, k, 10.0, (4, 1))
    got = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=backend)
    assert got.shape == (4, 3)
    for i, j in np.ndindex(4, 3):
        np.testing.assert_allclose(got[i, j], textbook_kl(m1[i, j], c1[j], m2, c2[i, 0]),
                                   rtol=1e-12, atol=1e-13)


def test_strided_inputs_and_options(backend, rng):
    k = 4
    c1, c2 = spd(rng, k, 10.0, (6,)), spd(rng, k, 10.0, (6,))
    m1, m2 = rng.standard_normal((6, k)), rng.standard_normal((6, k))
    want = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=backend)
    # transposed (Fortran-ordered) matrices, a reversed batch, a column of a wider mean array
    wide = np.zeros((6, 2 * k))
    wide[:, ::2] = m1
    got = kl_fast.gaussian_kl_full(wide[:, ::2], np.swapaxes(c1, 1, 2).copy().swapaxes(1, 2),
                                   m2[::-1][::-1], c2[::-1], backend=backend)
    np.testing.assert_array_equal(got[::-1], kl_fast.gaussian_kl_full(
        m1[::-1], c1[::-1], m2[::-1], c2, backend=backend))
    np.testing.assert_allclose(kl_fast.gaussian_kl_full(m1, c1, m2, c2, base=2, backend=backend),
                               want / np.log(2), rtol=1e-15)
    assert kl_fast.gaussian_kl_full(m1, c1, m2, c2, reduction="sum", backend=backend) == \
        pytest.approx(want.sum(), rel=1e-15)
    out = np.empty(6)
    assert kl_fast.gaussian_kl_full(m1, c1, m2, c2, out=out, backend=backend) is out
    np.testing.assert_array_equal(out, want)
    torch_out = kl_fast.gaussian_kl_full(torch.tensor(m1), torch.tensor(c1), backend=backend)
    assert isinstance(torch_out, torch.Tensor)
    assert kl_fast.gaussian_kl_full(np.zeros((0, k)), np.zeros((0, k, k)),
                                    backend=backend).shape == (0,)


def test_compiled_backends_agree_bitwise(dtype, rng):
    k, n = 5, 1500   # enough work for the API to use 2 threads
    c1 = spd(rng, k, 1e3, (n,)).astype(dtype)
    c2 = spd(rng, k, 1e3, (n,)).astype(dtype)
    m1, m2 = rng.standard_normal((2, n, k)).astype(dtype)
    c1[:8] = c2[:8] * 1e-4   # the direct-form items too
    results = [kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend=b, num_threads=t)
               for b in COMPILED_BACKENDS for t in (1, 2)]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_kernels_give_the_same_bits_for_any_thread_count(compiled_backend, rng):
    from kl_fast._engine.backends import get_backend

    k, n = 3, 50
    c1, c2 = spd(rng, k, 10.0, (n,)), spd(rng, k, 10.0, (n,))
    m1, m2 = rng.standard_normal((2, n, k))
    kernel = get_backend(compiled_backend)[1].gaussian_full_kernel
    outs = []
    for threads in (1, 2, 3, 7):
        out, info = np.empty(n), np.zeros((n, 3), dtype=np.int64)
        kernel(m1, c1, m2, c2, out, info, False, 1, 1e-14, 1.0, threads)
        outs.append(out)
        assert not info.any()
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])


def test_empty_dimension(backend):
    assert kl_fast.gaussian_kl_full(np.zeros((2, 0)), np.zeros((2, 0, 0)),
                                    backend=backend).tolist() == [0.0, 0.0]


# -- validation ------------------------------------------------------------------------------
def test_not_symmetric(backend, rng):
    c = spd(rng, 3, 10.0, (2,))
    c[1, 0, 2] += 1e-3
    with pytest.raises(ValueError, match=r"cov1 is not symmetric at batch index \(1,\): entry "
                                         r"\(2, 0\).*pass a covariance matrix"):
        kl_fast.gaussian_kl_full(np.zeros((2, 3)), c, backend=backend)


def test_not_positive_definite(backend, rng):
    c2 = spd(rng, 3, 10.0, (3,))
    c2[2] = np.diag([1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"cov2 is not positive definite at batch index \(2,\): "
                                         r"pivot 1 .*<= 0.*jitter"):
        kl_fast.gaussian_kl_full(np.zeros(3), np.eye(3), np.zeros(3), c2, backend=backend)
    c1 = np.array([[1.0, 2.0], [2.0, 1.0]])   # symmetric, indefinite
    with pytest.raises(ValueError, match=r"cov1 is not positive definite: pivot 1"):
        kl_fast.gaussian_kl_full(np.zeros(2), c1, np.zeros(2), np.eye(2), backend=backend)


def test_non_finite_values(backend):
    with pytest.raises(ValueError, match=r"mu2 contains an invalid value, nan at index \(1,\)"):
        kl_fast.gaussian_kl_full([0.0, 0.0], np.eye(2), [0.0, np.nan], np.eye(2),
                                 backend=backend)
    c = np.eye(2)
    c[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"cov1 contains an invalid value, inf at index \(1, 1\)"):
        kl_fast.gaussian_kl_full([0.0, 0.0], c, backend=backend)


def test_shape_and_argument_errors():
    with pytest.raises(ValueError, match=r"mu1 \(3,\), cov1 \(2, 2\)"):
        kl_fast.gaussian_kl_full(np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="do not broadcast"):
        kl_fast.gaussian_kl_full(np.zeros((2, 3)), np.eye(3)[None].repeat(3, 0))
    with pytest.raises(ValueError, match="both mu2 and cov2"):
        kl_fast.gaussian_kl_full(np.zeros(2), np.eye(2), np.zeros(2))
    with pytest.raises(ValueError, match="covariance"):
        kl_fast.gaussian_kl_full(np.zeros(2), np.zeros(2))
    with pytest.raises(TypeError):
        kl_fast.gaussian_kl_full(np.zeros(2, dtype=complex), np.eye(2))


def test_validate_false_never_crashes(backend, rng):
    c = spd(rng, 3, 10.0, (4,))
    c[0] = -np.eye(3)               # not positive definite: NaN
    c[1, 0, 0] = np.nan             # NaN: NaN
    c[2, 2, 0] = 5.0                # lower triangle changed: some value, no check
    got = kl_fast.gaussian_kl_full(np.zeros((4, 3)), c, validate=False, backend=backend)
    assert np.isnan(got[0]) and np.isnan(got[1])
    assert got[3] == kl_fast.gaussian_kl_full(np.zeros(3), c[3], backend=backend)
    # not positive definite stays NaN without raising even for cov2
    assert np.isnan(kl_fast.gaussian_kl_full(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2),
                                             validate=False, backend=backend))


# -- properties ------------------------------------------------------------------------------
@st.composite
def gaussians(draw, k=None):
    k = draw(st.integers(1, 5)) if k is None else k
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    cond = draw(st.sampled_from([1.0, 10.0, 1e3]))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    return rng.standard_normal(k) * scale, spd(rng, k, cond) * scale**2


@given(gaussians(), st.data())
def test_property_nonnegative_and_zero_on_equal(g1, data):
    m1, c1 = g1
    m2, c2 = data.draw(gaussians(len(m1)))
    assert kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend="cython") >= 0.0
    assert kl_fast.gaussian_kl_full(m1, c1, m1, c1, backend="cython") == 0.0


@given(gaussians(), st.data(), st.integers(0, 2**32 - 1))
def test_property_affine_invariance(g1, data, seed):
    m1, c1 = g1
    m2, c2 = data.draw(gaussians(len(m1)))
    k = len(m1)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, k)) + 3.0 * np.eye(k)   # well-conditioned, invertible
    # a shift of the means' size: a much larger one would round their difference away
    b = rng.standard_normal(k) * np.abs(np.concatenate([m1, m2])).max()

    def move(m, c):
        cc = a @ c @ a.T
        return a @ m + b, np.tril(cc) + np.tril(cc, -1).T

    before = kl_fast.gaussian_kl_full(m1, c1, m2, c2, backend="cython")
    after = kl_fast.gaussian_kl_full(*move(m1, c1), *move(m2, c2), backend="cython")
    # the transformed inputs carry roundings of relative size ~eps cond(a)^2
    cond = np.linalg.cond(c2) * np.linalg.cond(a) ** 2
    assert abs(after - before) <= 1e-12 * cond * before
