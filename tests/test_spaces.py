"""Log-probability and logits inputs: p_space / q_space / space, temperature.

References: PyTorch (kl_div with log_target, cross_entropy with labels and
with probabilities, Categorical.entropy), scipy.special (log_softmax,
logsumexp, rel_entr), and mpmath at 50 digits on the stored logits.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special

import kl_fast

from . import mp_reference as mpr
from .conftest import BACKENDS, COMPILED_BACKENDS

mpf = mpr.mpf
SPACES = ("prob", "log", "logits")


def _as(space, logits):
    """The same distributions in each space (float64 logits in)."""
    if space == "logits":
        return logits
    lp = special.log_softmax(logits, axis=-1)
    return lp if space == "log" else np.exp(lp)


# 80 digits whatever the global mpmath precision: KL of logits 1e-12 apart is
# ~1e-27, a sum of terms of ~1e-14 that cancel, and 50 digits of log-softmax
# values near -5 leave it ~1e-22 relative (40 digits would leave 1e-12)
_DPS = 80


def _mp_log_softmax(row, temperature=1.0):
    with mpr.mpmath.workdps(_DPS):
        xs = [mpf(float(v)) / temperature for v in row]
        m = max(xs)
        lse = m + mpr.mpmath.log(mpr.mpmath.fsum(mpr.mpmath.exp(v - m) for v in xs))
        return [v - lse for v in xs]


def _mp_kl_logits(a, b, temperature=1.0):
    la, lb = _mp_log_softmax(a, temperature), _mp_log_softmax(b, temperature)
    with mpr.mpmath.workdps(_DPS):
        return mpr.mpmath.fsum(mpr.mpmath.exp(u) * (u - v)
                               for u, v in zip(la, lb, strict=True) if u != -mpr.mpmath.inf)


# -- against PyTorch and scipy -------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_kl_logits_matches_torch_kl_div(backend, rng, temperature):
    a = rng.normal(size=(64, 33)) * 3
    b = rng.normal(size=(64, 33)) * 3
    got = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits",
                                temperature=temperature, backend=backend)
    ta, tb = torch.tensor(a) / temperature, torch.tensor(b) / temperature
    want = F.kl_div(F.log_softmax(tb, -1), F.log_softmax(ta, -1), log_target=True,
                    reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("p_space", SPACES)
@pytest.mark.parametrize("q_space", SPACES)
def test_every_space_pair_matches_the_probability_kernel(backend, rng, p_space, q_space):
    a = rng.normal(size=(40, 17)) * 2
    b = rng.normal(size=(40, 17)) * 2
    got = kl_fast.kl_divergence(_as(p_space, a), _as(q_space, b), p_space=p_space,
                                q_space=q_space, backend=backend)
    want = special.rel_entr(_as("prob", a), _as("prob", b)).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_cross_entropy_logits_labels_matches_torch(backend, rng):
    logits = rng.normal(size=(100, 12)) * 4
    labels = rng.integers(0, 12, size=100)
    labels[::7] = -100
    got = kl_fast.cross_entropy(labels, logits, q_space="logits", ignore_index=-100,
                                backend=backend)
    want = F.cross_entropy(torch.tensor(logits), torch.tensor(labels), ignore_index=-100,
                           reduction="none").numpy()
    keep = labels != -100
    np.testing.assert_allclose(got[keep], want[keep], rtol=1e-13)
    assert np.isnan(got[~keep]).all()
    mean = kl_fast.cross_entropy(labels, logits, q_space="logits", ignore_index=-100,
                                 reduction="mean", backend=backend)
    torch_mean = F.cross_entropy(torch.tensor(logits), torch.tensor(labels), ignore_index=-100)
    np.testing.assert_allclose(mean, torch_mean.item(), rtol=1e-13)


def test_cross_entropy_logits_probability_targets_matches_torch(backend, rng):
    logits = rng.normal(size=(50, 9)) * 3
    target = rng.dirichlet(np.ones(9), size=50)
    target[::5, :3] = 0.0
    target /= target.sum(-1, keepdims=True)
    got = kl_fast.cross_entropy(target, logits, q_space="logits", backend=backend)
    want = F.cross_entropy(torch.tensor(logits), torch.tensor(target), reduction="none").numpy()
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_cross_entropy_log_space_labels_and_targets(backend, rng):
    logq = special.log_softmax(rng.normal(size=(30, 6)), axis=-1)
    labels = rng.integers(0, 6, size=30)
    got = kl_fast.cross_entropy(labels, logq, q_space="log", backend=backend)
    np.testing.assert_array_equal(got, -logq[np.arange(30), labels])
    p = rng.dirichlet(np.ones(6), size=30)
    got = kl_fast.cross_entropy(p, logq, q_space="log", backend=backend)
    np.testing.assert_allclose(got, -(p * logq).sum(-1), rtol=1e-13)


@pytest.mark.parametrize("space", ["log", "logits"])
def test_entropy_matches_torch_categorical(backend, rng, space):
    logits = rng.normal(size=(40, 21)) * 5
    got = kl_fast.entropy(_as(space, logits), space=space, backend=backend)
    want = torch.distributions.Categorical(logits=torch.tensor(logits)).entropy().numpy()
    # torch's -sum p log p is the less accurate of the two on peaked rows (the
    # mpmath test below bounds ours at 4 eps)
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_temperature_divides_logits(backend, rng):
    a, b = rng.normal(size=(2, 8, 10)) * 4
    for fn, args, kw in [
        (kl_fast.kl_divergence, (a, b), dict(p_space="logits", q_space="logits")),
        (kl_fast.entropy, (a,), dict(space="logits")),
        (kl_fast.cross_entropy, (np.exp(special.log_softmax(a, -1)), b),
         dict(q_space="logits")),
    ]:
        scaled = [x / 4.0 if x is b or (x is a and fn is not kl_fast.cross_entropy) else x
                  for x in args]
        got = fn(*args, temperature=4.0, backend=backend, **kw)
        np.testing.assert_allclose(got, fn(*scaled, backend=backend, **kw), rtol=1e-14)


# -- accuracy against mpmath ------------------------------------------------------------------

@pytest.mark.parametrize("delta", [1e-3, 1e-7, 1e-12])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_distillation_nearly_equal_logits_mpmath(backend, rng, delta, temperature):
    """Teacher and student logits that nearly coincide: relative error <= 8 eps."""
    a = rng.normal(size=(6, 64)) * 4
    b = a + rng.normal(size=(6, 64)) * delta
    got = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits",
                                temperature=temperature, backend=backend)
    for g, ra, rb in zip(got, a, b, strict=True):
        exact = _mp_kl_logits(ra, rb, temperature)
        assert mpr.rel_error_eps(g, exact) <= 8, (g, float(exact))


def test_distillation_float32_within_one_ulp(backend, rng):
    a = (rng.normal(size=(8, 100)) * 4).astype(np.float32)
    b = (a + rng.normal(size=(8, 100)).astype(np.float32) * 1e-3).astype(np.float32)
    got = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", backend=backend)
    assert got.dtype == np.float32
    for g, ra, rb in zip(got, a, b, strict=True):
        assert mpr.ulp_error_f32(g, _mp_kl_logits(ra, rb)) <= 1


def test_log_space_nearly_equal_within_contract(backend, rng):
    """log x log: terms exp(x)(x - y), |error| <= 8 eps sum|terms| (DESIGN)."""
    lp = special.log_softmax(rng.normal(size=(5, 50)), axis=-1)
    lq = lp + rng.normal(size=lp.shape) * 1e-9
    got = kl_fast.kl_divergence(lp, lq, p_space="log", q_space="log", validate=False,
                                backend=backend)
    for g, x, y in zip(got, lp, lq, strict=True):
        terms = [mpr.mpmath.exp(mpf(float(u))) * (mpf(float(u)) - mpf(float(v)))
                 for u, v in zip(x, y, strict=True)]
        exact = max(mpr.mpmath.fsum(terms), 0)
        scale = mpr.mpmath.fsum(abs(t) for t in terms)
        assert mpr.scaled_error_eps(g, exact, scale) <= 8


@pytest.mark.parametrize("scale", [2.0, 12.0], ids=["generic", "peaked"])
@pytest.mark.parametrize("space", ["log", "logits"])
def test_entropy_and_labels_accuracy_mpmath(backend, rng, space, scale):
    """Generic and peaked rows (the entropy and the label's cross-entropy are then
    the small tails, which the rounding of x - max would spoil): <= 4 eps."""
    logits = rng.normal(size=(6, 40)) * scale
    x = _as(space, logits)
    got = kl_fast.entropy(x, space=space, backend=backend)
    labels = rng.integers(0, 40, size=6)
    labels[::2] = np.argmax(logits[::2], axis=-1)
    ce = kl_fast.cross_entropy(labels, x, q_space=space, backend=backend)
    for i in range(6):
        if space == "logits":
            lp = _mp_log_softmax(x[i])
        else:
            lp = [mpf(float(v)) for v in x[i]]
        exact = -mpr.mpmath.fsum(mpr.mpmath.exp(v) * v for v in lp)
        assert mpr.rel_error_eps(got[i], exact) <= 4
        assert mpr.rel_error_eps(ce[i], -lp[labels[i]]) <= 4


# -- extremes and zeros -----------------------------------------------------------------------

def test_extreme_logits_are_finite_and_correct(backend):
    a = np.array([[1e4, -1e4, 0.0], [1000.0, 1000.0, 1000.0], [-1e4, -1e4, -1e4]])
    b = np.array([[1e4, 1e4, 0.0], [1000.0, 1000.0, 1000.0], [0.0, 0.0, 1e-300]])
    got = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", backend=backend)
    # (the last row's exact KL is ~1e-600, below the reference's 80 digits: it
    # reads as ~1e-78 there)
    want = [max(float(_mp_kl_logits(ra, rb)), 0.0) for ra, rb in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-70)
    assert got[1] == 0.0
    h = kl_fast.entropy(a, space="logits", backend=backend)
    np.testing.assert_allclose(h, [0.0, np.log(3), np.log(3)], rtol=1e-15, atol=1e-300)
    ce = kl_fast.cross_entropy([0, 1, 2], a, q_space="logits", backend=backend)
    np.testing.assert_allclose(ce, [0.0, np.log(3), np.log(3)], rtol=1e-15)


def test_minus_inf_logits_are_probability_zero_never_nan(backend):
    # -inf where the target is 0: a 0 x -inf term is 0
    a = np.array([0.0, -np.inf, 1.0])
    b = np.array([1.0, 2.0, 1.0])
    for p, q in [(a, b), (b, a), (a, a)]:
        got = kl_fast.kl_divergence(p, q, p_space="logits", q_space="logits", backend=backend)
        want = special.rel_entr(np.exp(special.log_softmax(p)),
                                np.exp(special.log_softmax(q))).sum()
        assert not np.isnan(got)
        np.testing.assert_allclose(got, want, rtol=1e-14)
    assert kl_fast.kl_divergence(a, a, p_space="logits", q_space="logits",
                                 backend=backend) == 0.0
    h = kl_fast.entropy(a, space="logits", backend=backend)
    np.testing.assert_allclose(h, special.entr(np.exp(special.log_softmax(a))).sum(),
                               rtol=1e-15)
    target = np.array([0.3, 0.0, 0.7])
    ce = kl_fast.cross_entropy(target, a, q_space="logits", backend=backend)
    np.testing.assert_allclose(ce, -(special.xlogy(target, np.exp(special.log_softmax(a)))).sum(),
                               rtol=1e-15)
    # probability in p where q's logit is -inf: +inf, no error
    assert kl_fast.kl_divergence(b, a, p_space="logits", q_space="logits",
                                 backend=backend) == np.inf
    assert kl_fast.cross_entropy([0.2, 0.5, 0.3], a, q_space="logits", backend=backend) == np.inf


def test_kl_of_equal_logits_is_exactly_zero(backend, rng):
    a = rng.normal(size=(20, 30)) * 10
    np.testing.assert_array_equal(
        kl_fast.kl_divergence(a, a, p_space="logits", q_space="logits", backend=backend), 0.0)
    lp = special.log_softmax(a, axis=-1)
    np.testing.assert_array_equal(
        kl_fast.kl_divergence(lp, lp, p_space="log", q_space="log", backend=backend), 0.0)


# -- arguments and validation ------------------------------------------------------------------

def test_bad_space_and_temperature_arguments():
    p = [0.5, 0.5]
    with pytest.raises(ValueError, match="p_space must be one of"):
        kl_fast.kl_divergence(p, p, p_space="probs")
    with pytest.raises(ValueError, match="space must be one of"):
        kl_fast.entropy(p, space=None)
    with pytest.raises(ValueError, match="temperature divides logits"):
        kl_fast.kl_divergence(p, p, temperature=2.0)
    with pytest.raises(ValueError, match="temperature must be positive"):
        kl_fast.entropy(p, space="logits", temperature=0.0)
    with pytest.raises(TypeError, match="temperature must be a positive float"):
        kl_fast.entropy(p, space="logits", temperature="2")
    with pytest.raises(ValueError, match="eps smoothing applies to probabilities"):
        kl_fast.kl_divergence(p, p, q_space="logits", eps=1e-6)
    with pytest.raises(ValueError, match="eps smoothing applies to probabilities"):
        kl_fast.cross_entropy([1], [[0.0, 1.0]], q_space="logits", eps=1e-3)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bad_logits_name_argument_and_index(backend, bad):
    q = np.zeros((3, 4))
    q[2, 1] = bad
    with pytest.raises(ValueError, match=r"q contains an invalid value, .* at index \(2, 1\).*"
                                         r"logits must not be NaN or \+inf"):
        kl_fast.kl_divergence(np.zeros((3, 4)), q, p_space="logits", q_space="logits",
                              backend=backend)
    with pytest.raises(ValueError, match=r"q contains an invalid value"):
        kl_fast.cross_entropy([0, 1, 2], q, q_space="logits", backend=backend)
    with pytest.raises(ValueError, match=r"p contains an invalid value"):
        kl_fast.entropy(q.T.copy().T, space="logits", backend=backend)
    # validate=False: no crash, a NaN result for that row
    got = kl_fast.kl_divergence(np.zeros((3, 4)), q, p_space="logits", q_space="logits",
                                validate=False, backend=backend)
    assert np.isfinite(got[:2]).all()


def test_all_minus_inf_row_is_refused(backend):
    q = np.zeros((2, 3))
    q[1] = -np.inf
    with pytest.raises(ValueError, match=r"batch index \(1,\) has every logit -inf"):
        kl_fast.entropy(q, space="logits", backend=backend)
    with pytest.raises(ValueError, match=r"every logit -inf"):
        kl_fast.cross_entropy([0, 1], q, q_space="logits", backend=backend)


def test_log_space_rows_must_normalize(backend, rng):
    lp = special.log_softmax(rng.normal(size=(4, 5)), axis=-1)
    bad = lp.copy()
    bad[3] += 0.1
    with pytest.raises(ValueError, match=r"p must be log-probabilities whose exponentials sum "
                                         r"to 1 .* batch index \(3,\).*normalize=True"):
        kl_fast.kl_divergence(bad, lp, p_space="log", q_space="log", backend=backend)
    # normalize=True renormalizes them by their log-sum-exp
    got = kl_fast.kl_divergence(bad, lp, p_space="log", q_space="log", normalize=True,
                                backend=backend)
    np.testing.assert_allclose(got, kl_fast.kl_divergence(lp, lp, p_space="log",
                                                          q_space="log"), atol=1e-15)


def test_labels_out_of_range_with_logits(backend):
    with pytest.raises(ValueError, match="label"):
        kl_fast.cross_entropy([0, 3], np.zeros((2, 3)), q_space="logits", backend=backend)
    with pytest.raises(ValueError, match="label"):
        kl_fast.cross_entropy([0, -1], np.zeros((2, 3)), q_space="log", validate=False,
                              backend=backend)


# -- layout, broadcasting, threads, array types ---------------------------------------------

def test_broadcast_axis_and_layouts(backend, rng):
    a = rng.normal(size=(7, 5, 11))
    b = rng.normal(size=(11,))
    want = np.array([[kl_fast.kl_divergence(a[i, j], b, p_space="logits", q_space="logits")
                      for j in range(5)] for i in range(7)])
    got = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", backend=backend)
    # compiled kernels: the same bits whatever the layout; numpy: within rounding
    same = (np.testing.assert_array_equal if backend != "numpy" else
            lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-14))
    same(got, want)
    moved = np.moveaxis(a, -1, 0)
    same(kl_fast.kl_divergence(moved, b[:, None, None], p_space="logits", q_space="logits",
                               axis=0, backend=backend), want)
    fortran = np.asfortranarray(a[:, :, ::-1])
    np.testing.assert_allclose(
        kl_fast.kl_divergence(fortran, b[::-1], p_space="logits", q_space="logits",
                              backend=backend), want, rtol=1e-13)


@pytest.mark.parametrize("backend_name", COMPILED_BACKENDS)
def test_thread_count_never_changes_bits(backend_name, rng):
    a = rng.normal(size=(3000, 40)) * 3
    b = a + rng.normal(size=a.shape) * 1e-4
    one = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits",
                                backend=backend_name, num_threads=1)
    two = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits",
                                backend=backend_name, num_threads=2)
    np.testing.assert_array_equal(one, two)


@pytest.mark.skipif(len(COMPILED_BACKENDS) < 2, reason="needs both compiled backends")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_backends_agree_bitwise(rng, dtype):
    a = (rng.normal(size=(60, 23)) * 3).astype(dtype)
    b = (a + rng.normal(size=a.shape) * 1e-2).astype(dtype)
    lp = special.log_softmax(a.astype(np.float64), -1).astype(dtype)
    probs = np.exp(special.log_softmax(b.astype(np.float64), -1)).astype(dtype)
    labels = rng.integers(0, 23, size=60)
    calls = [
        lambda be: kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", backend=be,
                                         temperature=1.7),
        lambda be: kl_fast.kl_divergence(lp, b, p_space="log", q_space="logits", backend=be,
                                         validate=False),
        lambda be: kl_fast.kl_divergence(a, probs, p_space="logits", backend=be,
                                         validate=False),
        lambda be: kl_fast.entropy(a, space="logits", backend=be),
        lambda be: kl_fast.cross_entropy(probs, a, q_space="logits", backend=be,
                                         validate=False),
        lambda be: kl_fast.cross_entropy(labels, a, q_space="logits", backend=be),
    ]
    for call in calls:
        np.testing.assert_array_equal(call("cython"), call("numba"))


@pytest.mark.skipif(len(COMPILED_BACKENDS) < 2, reason="needs both compiled backends")
def test_compiled_backends_agree_on_signed_zero_and_tied_logits(rng):
    # the float32 fast tiers take each row's maxima in 8 lanes combined in order: with
    # +0.0 and -0.0 (or ties) the lane order decides the sign of a zero maximum, which
    # reaches the result; rows of every length mod 8, so the tail lanes count too
    for n in (1, 5, 8, 13, 24, 31):
        a = rng.choice(np.array([0.0, -0.0, -1.0, 2.0], np.float32), size=(40, n))
        b = rng.choice(np.array([0.0, -0.0, -3.0, 2.0], np.float32), size=(40, n))
        labels = rng.integers(0, n, size=40)
        kl, ce = ([kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits",
                                         backend=be).tobytes() for be in ("cython", "numba")],
                  [kl_fast.cross_entropy(labels, a, q_space="logits", backend=be).tobytes()
                   for be in ("cython", "numba")])
        assert kl[0] == kl[1] and ce[0] == ce[1], n


@pytest.mark.skipif(len(COMPILED_BACKENDS) < 2, reason="needs both compiled backends")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_backends_agree_on_strided_rows_and_declined_fast_tiers(rng, dtype):
    # Numba reads unit-stride rows through contiguous views and other rows element by
    # element; a temperature's diff row is made only for the rows the float32 fast tier
    # turns down (here: nearly equal rows), and q's mass where p is 0 (a -inf logit)
    # only in rows that have such zeros.  Every case, every layout: Cython's bits.
    a = (rng.normal(size=(40, 38)) * 3).astype(dtype)
    b = np.where(np.arange(40)[:, None] % 2 == 0,
                 a + rng.normal(size=a.shape) * 1e-6, rng.normal(size=a.shape) * 3)
    b = b.astype(dtype)
    a[::5, 3] = -np.inf
    probs = np.exp(special.log_softmax(b.astype(np.float64), -1)).astype(dtype)
    labels = rng.integers(0, 19, size=40)
    calls = [
        lambda x, y, be: kl_fast.kl_divergence(x, y, p_space="logits", q_space="logits",
                                               backend=be),
        lambda x, y, be: kl_fast.kl_divergence(x, y, p_space="logits", q_space="logits",
                                               temperature=2.5, backend=be),
        lambda x, y, be: kl_fast.entropy(x, space="logits", backend=be),
        lambda x, y, be: kl_fast.cross_entropy(probs[:, :x.shape[1]], y, q_space="logits",
                                               validate=False, backend=be),
        lambda x, y, be: kl_fast.cross_entropy(labels, y, q_space="logits", backend=be),
    ]
    layouts = [(a, b), (a[:, ::2], b[:, ::2]), (np.asfortranarray(a), np.asfortranarray(b))]
    for x, y in layouts:
        for call in calls:
            assert call(x, y, "cython").tobytes() == call(x, y, "numba").tobytes()
    # and the layouts agree with each other (the same rows give the same bits)
    for call in calls:
        assert call(a, b, "numba").tobytes() == call(layouts[2][0], layouts[2][1],
                                                      "numba").tobytes()


def test_torch_in_torch_out(rng):
    a = torch.tensor(rng.normal(size=(4, 6)))
    got = kl_fast.kl_divergence(a, a * 0.5, p_space="logits", q_space="logits")
    assert isinstance(got, torch.Tensor)
    want = F.kl_div(F.log_softmax(a * 0.5, -1), F.log_softmax(a, -1), log_target=True,
                    reduction="none").sum(-1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)


# -- properties ---------------------------------------------------------------------------------

logit_rows = hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 12)),
                        elements=st.floats(-50, 50, allow_nan=False))


@given(logit_rows, st.floats(-30, 30), st.floats(0.25, 8.0))
def test_property_logits_identities(a, shift, temperature):
    b = a[::-1] if a.shape[0] > 1 else a * 0.5
    kw = dict(p_space="logits", q_space="logits", temperature=temperature)
    kl = kl_fast.kl_divergence(a, b, **kw)
    assert (kl >= 0).all()
    # softmax is shift-invariant per row
    np.testing.assert_allclose(kl_fast.kl_divergence(a + shift, b - shift, **kw), kl,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(kl_fast.kl_divergence(a, a, **kw), 0.0)
    h = kl_fast.entropy(a, space="logits", temperature=temperature)
    assert (h >= -1e-15).all() and (h <= np.log(a.shape[-1]) + 1e-12).all()
    # CE = H + KL with the probability target
    p = np.exp(special.log_softmax(a / temperature, axis=-1))
    ce = kl_fast.cross_entropy(p, b, q_space="logits", temperature=temperature,
                               validate=False)
    np.testing.assert_allclose(ce, h + kl, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_reductions_and_out(backend_name, rng):
    a, b = rng.normal(size=(2, 10, 4))
    per_row = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits",
                                    backend=backend_name)
    total = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", reduction="sum",
                                  backend=backend_name)
    np.testing.assert_allclose(total, per_row.sum(), rtol=1e-14)
    out = np.empty(10)
    kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", out=out,
                          backend=backend_name)
    np.testing.assert_array_equal(out, per_row)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float32_rows_report_bad_values_found_after_the_fast_tier(backend, bad, rng):
    # float32 logits rows are scanned for bad values only when the fast tier turns a row
    # down (taking it proves every logit finite): the report must be the one a scan
    # gives -- the first bad value, the right argument -- whatever tier the rows took
    x = (rng.normal(size=(5, 40)) * 2).astype(np.float32)
    y = (x + rng.normal(size=x.shape)).astype(np.float32)
    y[1] = x[1]                      # nearly equal: the accurate tier
    y[3, 7] = bad
    x[4, 2] = bad
    with pytest.raises(ValueError, match=r"q contains an invalid value, .* at index \(3, 7\)"
                                         r" \(2 invalid"):   # the first in C order
        kl_fast.kl_divergence(x, y, p_space="logits", q_space="logits", backend=backend)
    with pytest.raises(ValueError, match=r"p contains an invalid value, .* at index \(4, 2\)"):
        kl_fast.kl_divergence(x, x[:1].repeat(5, 0), p_space="logits", q_space="logits",
                              backend=backend)
    with pytest.raises(ValueError, match=r"q contains an invalid value, .* at index \(3, 7\)"):
        kl_fast.cross_entropy(rng.integers(0, 40, 5), y, q_space="logits", backend=backend)
    with pytest.raises(ValueError, match=r"p contains an invalid value, .* at index \(4, 2\)"):
        kl_fast.entropy(x, space="logits", backend=backend)
    # cross-entropy's weights: checked by the fast tier, scanned when it declines
    w = special.softmax(rng.normal(size=(5, 40)), axis=-1).astype(np.float32)
    with pytest.raises(ValueError, match=r"q contains an invalid value, .* at index \(3, 7\)"):
        kl_fast.cross_entropy(w, y, q_space="logits", backend=backend)
    w[2, 5] = -0.01
    with pytest.raises(ValueError, match=r"p contains an invalid value, .* at index \(2, 5\)"):
        kl_fast.cross_entropy(w, x[:4].repeat(2, 0)[:5], q_space="logits", backend=backend)
    w[2, 5] = 0.5                    # every value valid, row 2 sums to ~1.5
    with pytest.raises(ValueError, match=r"p.*batch index \(2,\).*sum"):
        kl_fast.cross_entropy(w, x[:4].repeat(2, 0)[:5], q_space="logits", backend=backend)
    w[2] /= w[2].sum()
    got = kl_fast.cross_entropy(w, x[:4].repeat(2, 0)[:5], q_space="logits", backend=backend)
    want = -(w.astype(np.float64) * special.log_softmax(
        x[:4].repeat(2, 0)[:5].astype(np.float64), axis=-1)).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
