"""kl_estimate: the k1/k2/k3 estimators against mpmath and a direct numpy formula,
on every backend; edges, reductions, validation, properties, backend parity."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import kl_fast
from tests import binary_reference as ref
from tests.conftest import BACKENDS, COMPILED_BACKENDS

KINDS = ["k1", "k2", "k3"]


@pytest.mark.parametrize("kind", KINDS)
def test_matches_direct_formula(backend, dtype, kind, rng):
    logp = rng.normal(-3, 2, (5, 1)).astype(dtype)
    logq = rng.normal(-3, 2, 7).astype(dtype)
    got = kl_fast.kl_estimate(logp, logq, kind=kind, backend=backend)
    assert got.shape == (5, 7) and got.dtype == dtype
    lr = logq.astype(np.float64) - logp.astype(np.float64)
    want = {"k1": -lr, "k2": lr ** 2 / 2, "k3": np.exp(lr) - 1 - lr}[kind]
    np.testing.assert_allclose(got, want, rtol=1e-10 if dtype == np.float64 else 2e-6,
                               atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_accuracy_mpmath(compiled_backend, kind, rng):
    lp = np.concatenate([rng.normal(-5, 3, 100), rng.normal(-5, 3, 100), [-1.0, 0.0, -700.0]])
    lq = np.concatenate([lp[:100] + 1e-9 * rng.standard_normal(100),   # nearly equal
                         rng.normal(-5, 3, 100), [-1.0, -np.inf, -1.0]])
    got = kl_fast.kl_estimate(lp, lq, kind=kind, backend=compiled_backend)
    err = max(ref.err_eps(g, ref.estimate(a, b, kind)) for a, b, g in zip(lp, lq, got,
                                                                          strict=True))
    assert err <= 4, err


def test_float32_within_one_ulp(compiled_backend, rng):
    lp = rng.normal(-3, 2, 300).astype(np.float32)
    lq = (lp + rng.normal(0, 0.5, 300)).astype(np.float32)
    for kind in KINDS:
        got = kl_fast.kl_estimate(lp, lq, kind=kind, backend=compiled_backend)
        assert got.dtype == np.float32
        errs = [ref.err_ulp32(g, ref.estimate(a, b, kind)) for a, b, g in zip(lp, lq, got,
                                                                               strict=True)]
        assert max(errs) <= 1.0


def test_edges(backend):
    lp = np.array([-1.0, -1.0, 0.0, -1e300, 5.0])
    lq = np.array([-np.inf, -1.0, -1e-300, -1e300, 5.0 + 2 ** -50])
    for kind in KINDS:
        got = kl_fast.kl_estimate(lp, lq, kind=kind, backend=backend)
        assert got[0] == np.inf          # q(x) = 0: every estimator is +inf
        assert got[1] == 0.0 and got[3] == 0.0
        for a, b, g in zip(lp, lq, got, strict=True):
            assert ref.err_eps(g, ref.estimate(a, b, kind)) <= 4


def test_mean_is_the_estimate_and_reductions(backend, rng):
    # samples from p = N(0, 1), q = N(1, 1): KL(p || q) = 1/2
    x = rng.standard_normal(200_000)
    logp = -0.5 * x ** 2
    logq = -0.5 * (x - 1) ** 2
    # log r = x - 1/2: k1 and k3 are unbiased, k2 has mean E[(x - 1/2)^2] / 2 = 5/8
    for kind, mean in [("k1", 0.5), ("k2", 0.625), ("k3", 0.5)]:
        est = kl_fast.kl_estimate(logp, logq, kind=kind, reduction="mean", backend=backend)
        assert isinstance(est, np.float64)
        assert abs(est - mean) < 0.02
    s = kl_fast.kl_estimate(logp[:10], logq[:10], reduction="sum", backend=backend)
    np.testing.assert_allclose(s, kl_fast.kl_estimate(logp[:10], logq[:10],
                                                      backend=backend).sum(), rtol=1e-14)
    bits = kl_fast.kl_estimate(logp[:10], logq[:10], base=2, backend=backend)
    np.testing.assert_allclose(bits, kl_fast.kl_estimate(logp[:10], logq[:10],
                                                         backend=backend) / np.log(2),
                               rtol=1e-15)
    out = np.empty(10)
    assert kl_fast.kl_estimate(logp[:10], logq[:10], out=out, backend=backend) is out
    t = kl_fast.kl_estimate(torch.from_numpy(logp[:4]), torch.from_numpy(logq[:4]),
                            backend=backend)
    assert isinstance(t, torch.Tensor) and t.shape == (4,)


@pytest.mark.parametrize(
    ("logp", "logq", "name", "index", "value"),
    [
        ([-1.0, np.nan], [-1.0, -1.0], "logp", (1,), np.nan),
        ([[-1.0, -1.0], [-np.inf, 0.0]], -1.0, "logp", (1, 0), -np.inf),
        ([-1.0, 2.0], [-1.0, np.inf], "logq", (1,), np.inf),
        (-1.0, [[0.0, -np.inf], [np.nan, 0.0]], "logq", (1, 0), np.nan),
    ],
)
def test_invalid_values(backend, logp, logq, name, index, value):
    with pytest.raises(ValueError, match=rf"^{name} contains an invalid value") as info:
        kl_fast.kl_estimate(logp, logq, backend=backend)
    assert f"at index {index}" in str(info.value) and repr(value) in str(info.value)


def test_argument_errors_and_validate_false(backend):
    with pytest.raises(ValueError, match="kind must be one of"):
        kl_fast.kl_estimate(0.0, 0.0, kind="k4")
    with pytest.raises(TypeError, match="string"):
        kl_fast.kl_estimate(np.array(["a"]), 0.0)
    garbage = np.array([np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0])
    for kind in KINDS:
        got = kl_fast.kl_estimate(np.repeat(garbage, 6), np.tile(garbage, 6), kind=kind,
                                  validate=False, backend=backend)
        assert got.shape == (36,)


@pytest.mark.skipif("numba" not in BACKENDS or "cython" not in BACKENDS,
                    reason="needs both compiled backends")
def test_cython_equals_numba_bitwise(rng):
    lp = rng.normal(-3, 3, 5000)
    lq = np.concatenate([lp[:2500] + rng.normal(0, 1e-6, 2500), rng.normal(-3, 3, 2500)])
    lq[:3] = -np.inf
    for dtype in (np.float64, np.float32):
        for kind in KINDS:
            c = kl_fast.kl_estimate(lp.astype(dtype), lq.astype(dtype), kind=kind,
                                    backend="cython")
            n = kl_fast.kl_estimate(lp.astype(dtype), lq.astype(dtype), kind=kind,
                                    backend="numba")
            np.testing.assert_array_equal(c.view(np.uint8), n.view(np.uint8))


finite = st.floats(-1e6, 1e6)


@given(lp=finite, lq=finite, backend=st.sampled_from(COMPILED_BACKENDS or BACKENDS))
def test_prop_k3_nonnegative_and_zero_at_equal(lp, lq, backend):
    got = kl_fast.kl_estimate([lp, lp], [lq, lp], kind="k3", backend=backend)
    assert got[0] >= 0.0
    assert got[1] == 0.0
    k2 = kl_fast.kl_estimate(lp, lq, kind="k2", backend=backend)
    assert k2 >= 0.0


def test_k3_float32_form_within_one_ulp_across_its_bands(compiled_backend, rng):
    # float32 k3 is expm1mx(lq - lp) by a short series on |x| <= 1/16 and a cheap exp
    # beyond (kl_blocks.h's kl_vexpm1mx_f32): both sides of the band's edge, tiny
    # differences, the ends of the exp's range and far beyond
    x = np.concatenate([rng.uniform(-0.07, 0.07, 300), 10.0 ** rng.uniform(-8, 2.9, 300),
                        -(10.0 ** rng.uniform(-8, 6, 300)), [0.0625, -0.0625, 88.0, 700.0,
                                                             -708.5, -1e30]])
    lp = rng.normal(-3, 2, x.size)
    lq = (lp + x).astype(np.float32)
    lp = lp.astype(np.float32)
    got = kl_fast.kl_estimate(lp, lq, kind="k3", backend=compiled_backend)
    f32_max = float(np.finfo(np.float32).max)

    def exact(a, b):   # the float32 answer beyond float32's range is inf
        e = ref.estimate(a, b, "k3")
        return float("inf") if e > f32_max else e

    errs = [ref.err_ulp32(g, exact(a, b)) for a, b, g in zip(lp, lq, got, strict=True)]
    worst = int(np.argmax(errs))
    assert errs[worst] <= 1.0, (lp[worst], lq[worst], got[worst], errs[worst])
