"""More hypothesis properties (issue 6, part 1), beside tests/test_properties.py.

- MI >= 0 and <= min(log nx, log ny) (up to rounding), per backend;
- the backends agree: cython and numba bit for bit, the numpy reference within
  the accuracy bound (a few eps times the row's sum of |terms|), for the row
  reductions, Gaussian KL, binary KL, MI and pairwise KL;
- every family gives the same bits for num_threads 1, 2 and 3 on inputs big
  enough to really split (each thread gets >= MIN_ELEMENTS_PER_THREAD);
- every family gives the same bits under the layouts C, F, strided, reversed
  and big-endian (tests/layouts.py) on the compiled backends, and agrees to a
  few ULP on the numpy reference (whose pairwise sums follow memory order).

Examples per property come from the loaded profile (tests/conftest.py): "ci",
derandomized, 200 examples; ``KL_FAST_HYPOTHESIS_PROFILE=long`` runs 5000.
Numba runs float64 only here (its compile time is per dtype; float32 is
covered on numba by test_properties.py); cython and numpy draw both dtypes.
"""

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kl_fast
from kl_fast._engine.threads import MIN_WORK_PER_THREAD as MIN_ELEMENTS_PER_THREAD
from tests.layouts import make_layout

BACKENDS = kl_fast.available_backends()
COMPILED = [b for b in BACKENDS if b in ("cython", "numba")]
EPS64 = float(np.finfo(np.float64).eps)
LAYOUTS = ("C", "F", "strided", "reversed", "big-endian")

backends = pytest.mark.parametrize("backend", BACKENDS)


def _dtypes(backend):
    return st.just(np.float64) if backend == "numba" else st.sampled_from([np.float32, np.float64])


def _out_eps(dtype):
    return float(np.finfo(dtype).eps)


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _normalize(x, axes=-1):
    s = x.sum(axis=axes, keepdims=True)
    x = np.where(s > 0, x, x.dtype.type(1))
    return x / x.sum(axis=axes, keepdims=True)


def _probabilities(draw, dtype, shape, axes=-1):
    width = np.dtype(dtype).itemsize * 8
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1e6, width=width)))
    x = np.where(draw(hnp.arrays(np.bool_, shape)), dtype(0), x)
    return _normalize(x, axes)


# -- MI -------------------------------------------------------------------------------------------
@backends
@given(data=st.data())
def test_mutual_information_is_nonnegative_and_bounded(backend, data):
    dtype = data.draw(_dtypes(backend))
    shape = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 8)),
             data.draw(st.integers(1, 8)))
    joint = _probabilities(data.draw, dtype, shape, axes=(-2, -1))
    mi = kl_fast.mutual_information(joint, backend=backend)
    assert mi.dtype == dtype
    assert np.all(mi >= 0) and not np.isnan(mi).any()
    # I(X;Y) <= min(H(X), H(Y)) <= log min(nx, ny); the stored table sums to 1 + d
    # (moving the result by up to ~|d|, as for KL in test_properties.py), and the
    # result is a sum of terms of size up to ~log(nx ny) rounded in float64 (so
    # nx = 1, exactly 0 in exact arithmetic, may give a few 1e-17)
    d = np.abs(_f64(joint).sum(axis=(-2, -1)) - 1)
    log_nxy = math.log(shape[1] * shape[2]) + 1
    upper = (math.log(min(shape[1:])) * (1 + 8 * _out_eps(dtype) + d)
             + 2 * d + 16 * EPS64 * log_nxy)
    assert np.all(_f64(mi) <= upper)


# -- backends agree -------------------------------------------------------------------------------
def _terms_bound(p, q):
    """sum_k (p + q)(1 + |log p| + |log q|) over nonzero entries: bounds the row's |terms|."""
    p, q = _f64(p), _f64(q)
    with np.errstate(divide="ignore"):
        lp = np.where(p > 0, np.abs(np.log(np.where(p > 0, p, 1))), 0.0)
        lq = np.where(q > 0, np.abs(np.log(np.where(q > 0, q, 1))), 0.0)
    return ((p + q) * (1 + lp + lq)).sum(axis=-1)


def _agree(results, bound, dtype):
    """cython == numba bitwise; numpy within `bound` (+ output rounding); inf/NaN alike."""
    if "cython" in results and "numba" in results:
        assert results["cython"].tobytes() == results["numba"].tobytes()
    if "numpy" in results:
        ref = _f64(results[COMPILED[0]] if COMPILED else results["numpy"])
        got = _f64(results["numpy"])
        assert np.array_equal(np.isinf(got), np.isinf(ref))
        assert np.array_equal(np.isnan(got), np.isnan(ref))
        fin = np.isfinite(ref)
        tol = 16 * EPS64 * bound + 2 * _out_eps(dtype) * np.abs(ref)
        assert np.all(np.abs(got[fin] - ref[fin]) <= np.broadcast_to(tol, fin.shape)[fin])


@st.composite
def _pair(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 24)))
    return _probabilities(draw, dtype, shape), _probabilities(draw, dtype, shape)


_ROW_FUNCS = {
    "kl": kl_fast.kl_divergence, "ce": kl_fast.cross_entropy, "js": kl_fast.js_divergence,
    "entropy": lambda p, q, **kw: kl_fast.entropy(p, **kw),
    "pairwise_kl": kl_fast.pairwise_kl,
    "mi": lambda p, q, **kw: kl_fast.mutual_information(p[..., None] * q[:, None, :], **kw),
}


def _run_all(fn, dtype, *args, **kw):
    # numba float32 is compiled by test_properties.py; here float64 only (see docstring)
    return {b: fn(*args, backend=b, **kw) for b in BACKENDS
            if b != "numba" or dtype == np.float64}


@given(pq=_pair(), func=st.sampled_from(sorted(_ROW_FUNCS)), eps=st.sampled_from([0.0, 1e-9]))
def test_backends_agree_on_distributions(pq, func, eps):
    p, q = pq
    results = _run_all(_ROW_FUNCS[func], p.dtype, p, q, eps=eps)
    if func == "pairwise_kl":
        bound = _terms_bound(p[:, None, :], q[None, :, :]) + 2 * eps * p.shape[-1]
    elif func == "mi":
        outer = p[..., None] * q[:, None, :]
        bound = 3 * _terms_bound(outer.reshape(len(p), -1), outer.reshape(len(p), -1))
    else:
        bound = _terms_bound(p, q) + 2 * eps * p.shape[-1]
    _agree(results, bound, p.dtype)


@given(data=st.data())
def test_backends_agree_on_gaussian_and_binary_kl(data):
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    shape = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 12)))

    def arr(lo, hi):
        return data.draw(hnp.arrays(dtype, shape, elements=st.floats(lo, hi, width=32)))

    m1, m2, v1, v2 = arr(-50, 50), arr(-50, 50), arr(2**-10, 1024), arr(2**-10, 1024)
    r = _run_all(kl_fast.gaussian_kl, dtype, m1, v1, m2, v2)
    m1, m2, v1, v2 = (_f64(x) for x in (m1, m2, v1, v2))
    terms = np.abs(np.log(v2 / v1)) + v1 / v2 + (m1 - m2) ** 2 / v2 + 1
    _agree(r, 4 * terms.sum(axis=-1), dtype)
    p, q = arr(0, 1), arr(0, 1)
    r = _run_all(kl_fast.binary_kl, dtype, p, q)
    _agree(r, _terms_bound(_f64(p)[..., None], _f64(q)[..., None])
           + _terms_bound(1 - _f64(p)[..., None], 1 - _f64(q)[..., None]), dtype)


# -- thread count ---------------------------------------------------------------------------------
def _split(total):
    """A size that gives three threads at least MIN_ELEMENTS_PER_THREAD each."""
    return 3 * MIN_ELEMENTS_PER_THREAD // total + 1


def _family_inputs(family, rng, dtype, big):
    """(args, kwargs) for `family`; `big` sizes it past the per-thread threshold."""
    if family in ("binary_kl", "binary_cross_entropy", "kl_estimate"):
        n = 3 * MIN_ELEMENTS_PER_THREAD + 17 if big else 7
        p, q = rng.uniform(0, 1, size=(2, n)).astype(dtype)
        if family == "kl_estimate":
            return (np.log(p), np.log(q)), {"kind": "k3"}
        return (p, q), {}
    if family == "cross_entropy_labels":
        n = 3 * MIN_ELEMENTS_PER_THREAD + 5 if big else 6
        return (rng.integers(0, 4, size=n), rng.normal(size=(n, 4)).astype(dtype)), \
            {"q_space": "logits"}
    if family == "mutual_information":
        n = _split(64) if big else 3
        return (rng.dirichlet(np.ones(64), size=n).reshape(n, 8, 8).astype(dtype),), {}
    if family in ("pairwise_kl", "pairwise_js"):
        n = 50 if big else 3
        k = _split(n * n) if big else 5
        P = rng.dirichlet(np.ones(k), size=n).astype(dtype)
        return (P, rng.dirichlet(np.ones(k), size=n).astype(dtype)), {}
    if family == "gaussian_kl_full":
        k = 4
        n = 3 * (1 << 16) // k**3 + 3 if big else 3
        a = rng.normal(size=(n, k, k))
        cov = (a @ np.swapaxes(a, -1, -2) + k * np.eye(k)).astype(dtype)
        return (rng.normal(size=(n, k)).astype(dtype), cov,
                rng.normal(size=(n, k)).astype(dtype), np.eye(k, dtype=dtype)), {}
    raise ValueError(family)


FAMILIES = {
    "binary_kl": kl_fast.binary_kl,
    "binary_cross_entropy": kl_fast.binary_cross_entropy,
    "kl_estimate": kl_fast.kl_estimate,
    "cross_entropy_labels": kl_fast.cross_entropy,
    "mutual_information": kl_fast.mutual_information,
    "pairwise_kl": kl_fast.pairwise_kl,
    "pairwise_js": kl_fast.pairwise_js,
    "gaussian_kl_full": kl_fast.gaussian_kl_full,
}


@backends
@given(data=st.data())
def test_families_bitwise_identical_for_any_thread_count(backend, data):
    family = data.draw(st.sampled_from(sorted(FAMILIES)))
    dtype = data.draw(_dtypes(backend))
    big = data.draw(st.booleans())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    args, kw = _family_inputs(family, rng, dtype, big)
    fn = FAMILIES[family]
    one, two, three = (fn(*args, backend=backend, num_threads=t, **kw) for t in (1, 2, 3))
    assert one.dtype == dtype
    assert one.tobytes() == two.tobytes() == three.tobytes()


# -- layouts --------------------------------------------------------------------------------------
_LAYOUT_FUNCS = dict(FAMILIES, **{
    "kl_divergence": kl_fast.kl_divergence, "entropy": kl_fast.entropy,
    "cross_entropy": kl_fast.cross_entropy, "js_divergence": kl_fast.js_divergence,
    "gaussian_kl": kl_fast.gaussian_kl,
})


def _layout_inputs(family, rng, dtype):
    if family in ("kl_divergence", "cross_entropy", "js_divergence"):
        return (rng.dirichlet(np.ones(9), size=5).astype(dtype),
                rng.dirichlet(np.ones(9), size=5).astype(dtype)), {}
    if family == "entropy":
        return (rng.dirichlet(np.ones(9), size=5).astype(dtype),), {}
    if family == "gaussian_kl":
        return (rng.normal(size=(5, 9)).astype(dtype), rng.uniform(0.1, 3, (5, 9)).astype(dtype),
                rng.normal(size=(5, 9)).astype(dtype),
                rng.uniform(0.1, 3, (5, 9)).astype(dtype)), {}
    return _family_inputs(family, rng, dtype, big=False)


@backends
@given(data=st.data())
def test_every_family_equal_under_memory_layout(backend, data):
    family = data.draw(st.sampled_from(sorted(_LAYOUT_FUNCS)))
    dtype = data.draw(_dtypes(backend))
    layout = data.draw(st.sampled_from(LAYOUTS))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    args, kw = _layout_inputs(family, rng, dtype)
    fn = _LAYOUT_FUNCS[family]
    ref = fn(*args, backend=backend, **kw)
    odd = [make_layout(layout, a).data if a.ndim else a for a in args]
    got = fn(*odd, backend=backend, **kw)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    if backend in COMPILED:
        assert got.tobytes() == ref.tobytes(), layout
    else:
        np.testing.assert_allclose(_f64(got), _f64(ref), rtol=8 * _out_eps(dtype), atol=1e-300,
                                   err_msg=layout)
