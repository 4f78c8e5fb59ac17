"""kl_fast.scipy against the scipy functions it replaces.

``rel_entr``, ``entropy`` and ``jensenshannon`` must give scipy's signatures,
defaults (axis 0, normalizing) and results (DESIGN.md "Drop-ins"), except
that ``jensenshannon`` never returns NaN on nearly equal inputs (scipy's
can: scipy/scipy#20083, #20779), where it is held to the accuracy contract
against mpmath instead.
"""

import math
import os
import pathlib
import subprocess
import sys

import hypothesis.extra.numpy as hnp
import mpmath
import numpy as np
import pytest
import scipy.spatial.distance as ssd
import scipy.special as sps
import scipy.stats as sst
from hypothesis import given
from hypothesis import strategies as st

import kl_fast
from kl_fast import scipy as kls

from . import mp_reference as mpr

RTOL = 1e-12
EDGE = np.array([-1.0, -0.5, -0.0, 0.0, 0.5, 1.0, np.inf, np.nan])


def assert_same(got, want, rtol=RTOL):
    """Same shape, dtype, kind of object (scalar or array) and values (inf/NaN positions)."""
    assert type(got) is type(want), (type(got), type(want))
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=0, equal_nan=True)


def _scipy(f, *args, **kwargs):
    """scipy's result, with its inf/NaN warnings silenced (pytest turns warnings into errors)."""
    with np.errstate(all="ignore"):
        return f(*args, **kwargs)


# -- rel_entr -------------------------------------------------------------------------------------
def _positive(rng, shape, zeros=0.2):
    x = 10.0 ** rng.uniform(-8, 2, shape)
    return np.where(rng.random(shape) < zeros, 0.0, x)


SHAPES = [((), ()), ((7,), (7,)), ((3, 5), (3, 5)), ((2, 3, 4), (2, 3, 4)),
          ((3, 1), (4,)), ((5,), ()), ((), (6,)), ((2, 1, 4), (3, 1)), ((0,), (0,)),
          ((4, 0), (1, 0))]


@pytest.mark.parametrize("xshape, yshape", SHAPES)
def test_rel_entr_matches_scipy_on_shapes(xshape, yshape):
    rng = np.random.default_rng(len(xshape) * 10 + len(yshape))
    x, y = _positive(rng, xshape), _positive(rng, yshape)
    if x.ndim == 0:
        x = x[()]
    if y.ndim == 0:
        y = y[()]
    assert_same(kls.rel_entr(x, y), sps.rel_entr(x, y))


def test_rel_entr_matches_scipy_on_the_edge_grid():
    """{-1, -0.5, -0, 0, 0.5, 1, inf, nan}^2: 0 for x == 0 <= y, +inf, NaN exactly as scipy."""
    x, y = np.meshgrid(EDGE, EDGE, indexing="ij")
    got = _scipy(kls.rel_entr, x, y)
    want = _scipy(sps.rel_entr, x, y)
    np.testing.assert_array_equal(got, want)
    for a in EDGE:
        for b in EDGE:
            assert_same(_scipy(kls.rel_entr, a, b), _scipy(sps.rel_entr, a, b))


def test_rel_entr_nearly_equal_and_extreme_pairs():
    rng = np.random.default_rng(11)
    x = rng.uniform(0.01, 10.0, 500)
    y = x + rng.integers(-50, 50, 500) * np.spacing(x)
    got, want = kls.rel_entr(x, y), sps.rel_entr(x, y)
    # both are accurate to a few ULP of the exact value here (scipy gh-20710 fix)
    exact = [mpr.rel_entr(a, b) for a, b in zip(x, y, strict=True)]
    assert max(mpr.ulp_error_f64(g, e) for g, e in zip(got, exact, strict=True)) <= 4
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    big = 10.0 ** rng.uniform(-300, 300, (2, 500))
    assert_same(kls.rel_entr(*big), sps.rel_entr(*big), rtol=1e-13)


@pytest.mark.parametrize("xdt, ydt", [(np.float32, np.float32), (np.float16, np.float16),
                                      (np.float32, np.float16), (np.float32, np.float64),
                                      (np.float64, np.float32), (np.int64, np.float32),
                                      (np.int64, np.int64), (np.int32, np.float64)])
def test_rel_entr_result_dtype_follows_scipy(xdt, ydt):
    rng = np.random.default_rng(12)
    x = (rng.integers(0, 5, 64) + 1).astype(xdt)
    y = (rng.integers(0, 5, 64)).astype(ydt)
    got, want = kls.rel_entr(x, y), sps.rel_entr(x, y)
    assert got.dtype == want.dtype
    rtol = 4 * float(np.finfo(got.dtype).eps)
    np.testing.assert_allclose(got, want, rtol=rtol)


@pytest.mark.parametrize("xdt, ydt", [(np.uint8, np.uint8), (np.int16, np.float32)])
def test_rel_entr_small_integer_result_dtype_follows_scipy(xdt, ydt):
    x = np.arange(1, 9).astype(xdt)
    y = np.arange(8, 0, -1).astype(ydt)
    assert kls.rel_entr(x, y).dtype == sps.rel_entr(x, y).dtype


def test_rel_entr_float32_within_one_ulp():
    rng = np.random.default_rng(13)
    x = _positive(rng, 400).astype(np.float32)
    y = _positive(rng, 400, zeros=0.0).astype(np.float32)
    got = kls.rel_entr(x, y)
    assert got.dtype == np.float32
    err = [mpr.ulp_error_f32(g, mpr.rel_entr(a, b)) for g, a, b in zip(got, x, y, strict=True)]
    assert max(err) <= 1.0


def test_rel_entr_out():
    rng = np.random.default_rng(14)
    x, y = _positive(rng, (3, 4)), _positive(rng, (3, 4))
    out = np.full((3, 4), np.nan)
    res = kls.rel_entr(x, y, out=out)
    assert res is out
    np.testing.assert_allclose(out, sps.rel_entr(x, y), rtol=RTOL)
    # an out of another float dtype is cast into, as for a ufunc (same_kind)
    out32, want32 = np.empty((3, 4), np.float32), np.empty((3, 4), np.float32)
    assert kls.rel_entr(x, y, out=out32) is out32
    sps.rel_entr(x, y, out=want32)
    np.testing.assert_allclose(out32, want32, rtol=2e-7)
    # a strided out and broadcasting inputs
    big = np.zeros((3, 8))
    view = big[:, ::2]
    assert kls.rel_entr(x, y[0], out=view) is view
    np.testing.assert_allclose(big[:, ::2], sps.rel_entr(x, y[0]), rtol=RTOL)
    assert np.all(big[:, 1::2] == 0)


def test_rel_entr_out_of_the_wrong_shape_raises_like_scipy():
    x = np.full(4, 0.25)
    with pytest.raises(ValueError):
        sps.rel_entr(x, x, out=np.empty(5))
    with pytest.raises(ValueError):
        kls.rel_entr(x, x, out=np.empty(5))


@pytest.mark.parametrize("x, y", [(0.5, 0.25), (1, 2), (0.0, 0.0), (3, 0), (np.float32(0.5),
                                  np.float32(0.125)), (2.0, [1.0, 2.0, 4.0])])
def test_rel_entr_scalars_and_lists(x, y):
    assert_same(_scipy(kls.rel_entr, x, y), _scipy(sps.rel_entr, x, y))


def test_rel_entr_large_and_strided_arrays():
    """Longer than the iterator's buffer, non-contiguous, reversed, big-endian."""
    rng = np.random.default_rng(15)
    x = _positive(rng, (300, 700))
    y = _positive(rng, (300, 700), zeros=0.05)
    for a, b in ((x, y), (x[::2, ::-3], y[::2, ::-3]), (x.T, y.T),
                 (x.astype(">f8"), y.astype(">f8"))):
        got = kls.rel_entr(a, b)
        want = sps.rel_entr(np.asarray(a, float), np.asarray(b, float))
        np.testing.assert_allclose(got, want, rtol=1e-13)


# -- entropy --------------------------------------------------------------------------------------
def _counts(rng, shape, zeros=0.2):
    return np.where(rng.random(shape) < zeros, 0, rng.integers(1, 100, shape))


@pytest.mark.parametrize("shape, axis", [((9,), 0), ((9,), -1), ((6, 4), 0), ((6, 4), 1),
                                         ((6, 4), -1), ((3, 5, 7), 1), ((3, 5, 7), -2),
                                         ((3, 5, 7), 0), ((1, 5), 1), ((5, 1), 0)])
@pytest.mark.parametrize("base", [None, 2, 10, math.e])
def test_entropy_matches_scipy(shape, axis, base):
    rng = np.random.default_rng(sum(shape) + axis)
    pk = _counts(rng, shape)
    pk.reshape(-1, shape[-1])[:, 0] += 1                          # no all-zero slices
    np.moveaxis(pk, axis, 0)[0] += 1
    qk = _counts(rng, shape, zeros=0.0)
    kw = {"base": base} if axis == 0 else {"base": base, "axis": axis}
    assert_same(kls.entropy(pk, **kw), sst.entropy(pk, **kw))
    assert_same(kls.entropy(pk, qk, **kw), sst.entropy(pk, qk, **kw))
    probs = pk / pk.sum(axis=axis, keepdims=True)
    assert_same(kls.entropy(probs, **kw), sst.entropy(probs, **kw))


def test_entropy_defaults_and_special_values():
    assert_same(kls.entropy([0.5, 0.5]), sst.entropy([0.5, 0.5]))
    assert_same(kls.entropy([1, 1], base=2), sst.entropy([1, 1], base=2))
    assert_same(kls.entropy([0.5, 0.5], [0.3, 0.3]), sst.entropy([0.5, 0.5], [0.3, 0.3]))
    assert float(kls.entropy([0.5, 0.5], [0.3, 0.3])) == 0.0      # scipy/scipy#12553
    # q = 0 where p > 0: +inf, as scipy
    assert_same(kls.entropy([0.5, 0.5], [1.0, 0.0]), _scipy(sst.entropy, [0.5, 0.5], [1.0, 0.0]))
    # p = 0 where q = 0: the term is 0
    assert_same(kls.entropy([1.0, 0.0], [1.0, 0.0]), sst.entropy([1.0, 0.0], [1.0, 0.0]))
    # float32 stays float32
    p32 = np.array([1, 2, 3, 4], np.float32)
    assert_same(kls.entropy(p32), sst.entropy(p32), rtol=2e-7)
    assert_same(kls.entropy(p32, p32[::-1]), sst.entropy(p32, p32[::-1]), rtol=2e-6)
    # nothing is validated (as in scipy): an all-zero or negative row gives NaN / inf like it
    for bad in ([0.0, 0.0], [1.0, -1.0, 2.0]):
        assert_same(_scipy(kls.entropy, bad), _scipy(sst.entropy, bad))


def test_entropy_broadcasts_pk_and_qk():
    rng = np.random.default_rng(21)
    pk = _counts(rng, (6, 4), zeros=0.0)
    for qk in (_counts(rng, (6, 1), zeros=0.0), _counts(rng, (6,), zeros=0.0)[:, None],
               _counts(rng, (1, 4), zeros=0.0)):
        assert_same(kls.entropy(pk, qk), sst.entropy(pk, qk))
        assert_same(kls.entropy(pk, qk, axis=1), sst.entropy(pk, qk, axis=1))


def test_entropy_accuracy_against_mpmath():
    """scipy.stats.entropy semantics (normalize both), nearly equal rows, against mpmath.

    The exact value is that of the exactly normalized stored rows.  Normalizing
    in floating point rounds each p_k and q_k by up to eps relative; where
    p ~ q the derivatives of p log(p/q) are ~ +-1, so that alone moves the sum
    by up to ~2 eps in absolute terms, on top of the stored-input bound
    8 eps * sum |terms|.  (scipy is held to the same bound.)
    """
    rng = np.random.default_rng(22)
    pk = rng.dirichlet(np.ones(100), 8).T * 3.0                   # axis 0, unnormalized
    qk = pk * (1 + 1e-6 * rng.standard_normal(pk.shape))
    for f in (kls.entropy, sst.entropy):
        got = f(pk, qk)
        for g, a, b in zip(got, pk.T, qk.T, strict=True):
            pa = [mpr.exact(v) / mpmath.fsum(mpr.exact(w) for w in a) for v in a]
            pb = [mpr.exact(v) / mpmath.fsum(mpr.exact(w) for w in b) for v in b]
            exact = mpmath.fsum(x * mpmath.log(x / y) for x, y in zip(pa, pb, strict=True))
            scale = mpmath.fsum(abs(x * mpmath.log(x / y)) for x, y in zip(pa, pb, strict=True))
            err = abs(mpr.exact(g) - exact)
            assert err <= mpr.EPS64 * (8 * scale + 4), f.__module__


# -- jensenshannon --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, axis", [((9,), 0), ((6, 4), 0), ((6, 4), 1), ((6, 4), -1),
                                         ((3, 5, 7), 2), ((3, 5, 7), -3), ((2, 1), 0)])
@pytest.mark.parametrize("base", [None, 2.0])
@pytest.mark.parametrize("keepdims", [False, True])
def test_jensenshannon_matches_scipy(shape, axis, base, keepdims):
    rng = np.random.default_rng(sum(shape) - axis)
    p = _counts(rng, shape, zeros=0.3) + 0.0
    q = _counts(rng, shape, zeros=0.3) + 0.0
    np.moveaxis(p, axis, 0)[0] += 1
    np.moveaxis(q, axis, 0)[-1] += 1
    kw = {"base": base, "axis": axis, "keepdims": keepdims}
    assert_same(kls.jensenshannon(p, q, **kw), ssd.jensenshannon(p, q, **kw))
    if axis == 0 and not keepdims:
        assert_same(kls.jensenshannon(p, q, base), ssd.jensenshannon(p, q, base))


def test_jensenshannon_disjoint_and_identical():
    assert_same(kls.jensenshannon([1.0, 0.0], [0.0, 1.0], base=2),
                ssd.jensenshannon([1.0, 0.0], [0.0, 1.0], base=2))
    assert float(kls.jensenshannon([1.0, 0.0], [0.0, 1.0], base=2)) == 1.0
    assert float(kls.jensenshannon([0.2, 0.8], [0.2, 0.8])) == 0.0
    p = np.array([[1, 2, 3], [4, 5, 6.0]])
    assert_same(kls.jensenshannon(p, p[:, ::-1], axis=1), ssd.jensenshannon(p, p[:, ::-1],
                                                                             axis=1))


def _exact_js_of_normalized(p, q):
    sp_ = mpmath.fsum(mpr.exact(v) for v in p)
    sq_ = mpmath.fsum(mpr.exact(v) for v in q)
    pn = [mpr.exact(v) / sp_ for v in p]
    qn = [mpr.exact(v) / sq_ for v in q]
    halves = []
    for a, b in zip(pn, qn, strict=True):
        m = (a + b) / 2
        halves += [a * mpmath.log(a / m) / 2 if a else 0, b * mpmath.log(b / m) / 2 if b else 0]
    return max(mpmath.fsum(halves), 0), mpmath.fsum(abs(h) for h in halves)


_X = np.nextafter(0.5, 0.0)
CONTRIVED = {
    "gh20779": ([_X, 1 - _X], [1 - _X, _X]),
    "half-vs-below": ([0.5, 0.5], [_X, _X]),
    "half-vs-below-unnormalized": ([0.5, 0.5], [_X, 0.5]),
    "one-ulp": ([0.3, 0.7], [np.nextafter(0.3, 1), np.nextafter(0.7, 0)]),
    "gh20083-float32": (np.array([0.027501475, 0.055202297], np.float32),
                        np.array([0.027537677, 0.055334348], np.float32)),
    "gh20083-float32-bumped": (np.array([0.027501475 + 1e-9, 0.055202297], np.float32),
                               np.array([0.027537677, 0.055334348], np.float32)),
}


@pytest.mark.parametrize("name", sorted(CONTRIVED))
def test_jensenshannon_never_nan_on_contrived_nearly_equal_inputs(name):
    p, q = CONTRIVED[name]
    got = kls.jensenshannon(p, q)
    assert not np.isnan(got)
    assert got >= 0
    exact, scale = _exact_js_of_normalized(p, q)
    if np.asarray(p).dtype == np.float32:
        assert got.dtype == np.float32
        assert mpr.ulp_error_f32(got, mpmath.sqrt(exact)) <= 1.0
    else:
        # the divergence (its square) is held to the nearly-equal contract
        assert mpr.scaled_error_eps(float(got) ** 2, exact, scale) <= 16
    swapped = kls.jensenshannon(q, p)
    assert swapped == got


@given(p=hnp.arrays(np.float64, st.integers(2, 12),
                    elements=st.floats(1e-3, 1.0)),
       steps=st.lists(st.integers(-3, 3), min_size=12, max_size=12))
def test_jensenshannon_never_nan_within_a_few_ulp(p, steps):
    q = p.copy()
    for i, s in enumerate(steps[: p.size]):
        for _ in range(abs(s)):
            q[i] = np.nextafter(q[i], np.inf if s > 0 else -np.inf)
    got = kls.jensenshannon(p, q)
    assert np.isfinite(got) and got >= 0
    assert kls.jensenshannon(q, p) == got


def test_jensenshannon_matches_scipy_where_scipy_is_accurate():
    """Generic float64 rows: within 1e-12 relative of scipy (and both of mpmath)."""
    rng = np.random.default_rng(31)
    p = rng.dirichlet(np.ones(50), 20).T
    q = rng.dirichlet(np.ones(50), 20).T * 7.0
    got, want = kls.jensenshannon(p, q), ssd.jensenshannon(p, q)
    np.testing.assert_allclose(got, want, rtol=RTOL)
    for g, a, b in zip(got, p.T, q.T, strict=True):
        exact, _ = _exact_js_of_normalized(a, b)
        assert mpr.rel_error_eps(g, mpmath.sqrt(exact)) <= 8


# -- rel_entr is a real numpy ufunc ---------------------------------------------------------------
def test_rel_entr_is_a_ufunc_with_scipys_loops():
    assert isinstance(kls.rel_entr, np.ufunc)
    assert kls.rel_entr.types == ["ff->f", "dd->d"] == sps._ufuncs.rel_entr.types
    assert (kls.rel_entr.nin, kls.rel_entr.nout) == (2, 1)


def test_rel_entr_ufunc_keywords_match_scipy():
    rng = np.random.default_rng(41)
    x, y = _positive(rng, (4, 5)), _positive(rng, (4, 5), zeros=0.0)
    ref = sps._ufuncs.rel_entr                                    # scipy's ufunc in either mode
    # dtype=: the float32 loop, computed in double then rounded once
    got, want = kls.rel_entr(x, y, dtype=np.float32), ref(x, y, dtype=np.float32)
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-7)
    # where= with out=: masked positions keep what out held
    mask = rng.random((4, 5)) < 0.5
    got, want = np.full((4, 5), -7.0), np.full((4, 5), -7.0)
    kls.rel_entr(x, y, out=got, where=mask)
    ref(x, y, out=want, where=mask)
    np.testing.assert_allclose(got, want, rtol=1e-13)
    assert np.all(got[~mask] == -7.0)
    # .outer: every pair
    np.testing.assert_allclose(kls.rel_entr.outer(x[0], y[0]), ref.outer(x[0], y[0]), rtol=1e-13)
    # casting='unsafe' into an int out is allowed only when asked for, as for any ufunc
    ints = np.zeros(3, np.int64)
    with np.errstate(invalid="ignore"):
        kls.rel_entr([2.0, 3.0, 4.0], [1.0, 1.0, 1.0], out=ints, casting="unsafe")
    np.testing.assert_array_equal(ints, np.trunc(ref([2.0, 3.0, 4.0], [1.0, 1.0, 1.0])))


def test_rel_entr_int_out_is_a_casting_error_like_scipy():
    for f in (kls.rel_entr, sps._ufuncs.rel_entr):
        out = np.zeros(3, np.int64)
        with pytest.raises(TypeError, match="Cannot cast ufunc 'rel_entr' output"):
            f([0.5, 0.2, 0.3], [0.3, 0.3, 0.4], out=out)
        assert np.all(out == 0)


def test_rel_entr_dask_in_lazy_dask_out():
    da = pytest.importorskip("dask.array")
    x, y = np.array([0.5, 0.0, 0.2, 1.0]), np.array([0.25, 0.5, 0.0, 1.0 + 1e-12])
    lazy = kls.rel_entr(da.from_array(x, chunks=2), da.from_array(y, chunks=2))
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), sps._ufuncs.rel_entr(x, y))


def test_rel_entr_under_scipy_array_api_takes_torch_like_scipy():
    """With SCIPY_ARRAY_API=1 scipy's rel_entr dispatches torch tensors; so does kl_fast's
    (a function around the same ufunc), and numpy still gets every ufunc keyword."""
    pytest.importorskip("torch")
    code = (
        "import numpy as np, torch, scipy.special as sps\n"
        "from kl_fast import scipy as kls\n"
        "assert kls.rel_entr.ufunc is kls.rel_entr_ufunc\n"
        "x, y = [0.5, 0.0, 0.2, 3.0], [0.25, 0.5, 0.0, 1.0]\n"
        "for dt in (torch.float32, torch.float64):\n"
        "    got = kls.rel_entr(torch.tensor(x, dtype=dt), torch.tensor(y, dtype=dt))\n"
        "    want = sps.rel_entr(torch.tensor(x, dtype=dt), torch.tensor(y, dtype=dt))\n"
        "    assert isinstance(got, torch.Tensor) and got.dtype == want.dtype == dt\n"
        "    torch.testing.assert_close(got, want)\n"
        "out = np.empty(4, np.float32)\n"
        "assert kls.rel_entr(np.array(x), np.array(y), out=out) is out\n"
        "np.testing.assert_allclose(out, sps.rel_entr(np.array(x), np.array(y)), rtol=1e-6)\n"
    )
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    root = pathlib.Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, cwd=root, env=env)


def test_rel_entr_threaded_loop_matches_serial():
    """A long inner loop runs on several threads; the result is identical to one thread."""
    rng = np.random.default_rng(42)
    x, y = _positive(rng, 300_000), _positive(rng, 300_000, zeros=0.01)
    with kl_fast.threads(1):
        serial = kls.rel_entr(x, y)
    with kl_fast.threads(2):
        parallel = kls.rel_entr(x, y)
    np.testing.assert_array_equal(parallel, serial)
    np.testing.assert_allclose(serial, _scipy(sps._ufuncs.rel_entr, x, y), rtol=1e-13)


@pytest.mark.parametrize("missing", [["kl_fast._cython.rel_entr_ufunc"]])
def test_rel_entr_fallbacks_without_the_compiled_ufunc(missing):
    """Without the Cython build, scipy's own ufunc (the same loops and accuracy)."""
    code = (
        "import sys\n"
        f"for name in {missing!r}: sys.modules[name] = None\n"
        "import numpy as np, scipy.special as sps\n"
        "from kl_fast import scipy as kls\n"
        "u = kls.rel_entr\n"
        "assert isinstance(u, np.ufunc) and u.__name__ == 'rel_entr', u\n"
        "assert u.types == ['ff->f', 'dd->d'], u.types\n"
        "x = np.array([0.5, 0.0, 1e-300, 4.0, 0.3]); y = np.array([0.25, 0.5, 1e300, 2.22e-308, 0.3])\n"
        "np.testing.assert_allclose(u(x, y), sps.rel_entr(x, y), rtol=1e-13)\n"
        "assert u(np.float32(x[:2]), np.float32(y[:2])).dtype == np.float32\n"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, cwd=root)


# -- entropy: scipy's nan_policy, keepdims, axis=None/tuple, empty input ----------------------------
def test_entropy_nan_policy_keepdims_and_axes_match_scipy():
    rng = np.random.default_rng(51)
    pk = rng.random((3, 4, 5))
    qk = rng.random((3, 4, 5))
    pk[0, 1, 2] = np.nan
    qk[2, 0, 4] = np.nan
    for axis in (None, 0, -1, (0, 2), (2, 0, 1)):
        for keepdims in (False, True):
            for policy in ("propagate", "omit"):
                kw = {"axis": axis, "keepdims": keepdims, "nan_policy": policy}
                assert_same(kls.entropy(pk, **kw), sst.entropy(pk, **kw))
                assert_same(kls.entropy(pk, qk, **kw), sst.entropy(pk, qk, **kw))
    # omit leaves NaN *pairs* out: the same as dropping them by hand
    p1, q1 = pk[0, 1], qk[0, 1]
    keep = ~np.isnan(p1) & ~np.isnan(q1)
    np.testing.assert_allclose(kls.entropy(p1, q1, nan_policy="omit"),
                               sst.entropy(p1[keep], q1[keep]), rtol=1e-14)


def test_entropy_empty_input_is_zero_like_scipy():
    assert_same(kls.entropy([]), sst.entropy([]))
    assert float(kls.entropy([])) == 0.0
    assert_same(kls.entropy([], []), sst.entropy([], []))
    for axis in (0, 1):
        assert_same(kls.entropy(np.zeros((2, 0)), axis=axis),
                    sst.entropy(np.zeros((2, 0)), axis=axis))
    # an all-NaN slice omitted entirely is empty too
    assert_same(kls.entropy([np.nan, np.nan], nan_policy="omit"),
                sst.entropy([np.nan, np.nan], nan_policy="omit"))


def test_entropy_messages_contain_scipys():
    with pytest.raises(ValueError, match="The input contains nan values"):
        kls.entropy([0.5, np.nan], nan_policy="raise")
    with pytest.raises(ValueError, match=r"nan_policy must be one of \{'propagate', 'omit'"):
        kls.entropy([0.5, 0.5], nan_policy="ignore")
    with pytest.raises(ValueError, match="`base` must be a positive number or `None`."):
        kls.entropy([0.5, 0.5], base=-2)
    with pytest.raises(ValueError, match="Array shapes are incompatible for broadcasting."):
        kls.entropy(np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="Array shapes are incompatible for broadcasting."):
        kls.jensenshannon(np.ones((3, 2)), np.ones((2, 2)))
    # scipy's jensenshannon returns NaN from log(base <= 0); kl_fast's says why instead
    for base in (0, -2.0, np.nan):
        with pytest.raises(ValueError, match="base must be a positive number or None"):
            kls.jensenshannon([0.5, 0.5], [0.2, 0.8], base=base)


def test_entropy_and_jensenshannon_base_one_follow_scipy():
    """base=1 divides by log(1) = 0: inf for a positive result, NaN for 0 (and numpy warns)."""
    for args in (([0.5, 0.5],), ([1.0, 0.0],), ([0.8, 0.2], [0.6, 0.4]), ([0.5, 0.5], [0.5, 0.5])):
        with pytest.warns(RuntimeWarning):
            got = kls.entropy(*args, base=1)
        assert_same(got, _scipy(sst.entropy, *args, base=1))
    with pytest.warns(RuntimeWarning):
        got = kls.jensenshannon([0.8, 0.2], [0.6, 0.4], base=1)
    assert_same(got, _scipy(ssd.jensenshannon, [0.8, 0.2], [0.6, 0.4], base=1))
    assert got == np.inf


def test_entropy_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    pk = np.array([[0.1, 0.2], [0.6, 0.3], [0.3, 0.5]])
    for dtype in (torch.float32, torch.float64):
        got = kls.entropy(torch.tensor(pk, dtype=dtype), axis=1, keepdims=True)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype and got.shape == (3, 1)
        np.testing.assert_allclose(got.numpy(), sst.entropy(pk, axis=1, keepdims=True),
                                   rtol=2e-6)
    # a gradient is carried for one int axis with nan_policy="propagate"
    # (tests/test_array_types.py); elsewhere it is refused, never dropped
    with pytest.raises(TypeError, match="requires grad"):
        kls.entropy(torch.tensor(pk, requires_grad=True), axis=(0, 1))
    with pytest.raises(TypeError, match="requires grad"):
        kls.entropy(torch.tensor(pk, requires_grad=True), nan_policy="omit")


def test_entropy_and_jensenshannon_on_dask_are_lazy_and_match_scipy():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(52)
    p, q = rng.random((6, 7, 4)), rng.random((6, 7, 4))
    p[1, 2, 3] = np.nan
    dp, dq = da.from_array(p, chunks=(2, 3, 2)), da.from_array(q, chunks=(3, 2, 4))
    for axis, keepdims in ((0, False), (-1, True), ((0, 2), False), (None, True)):
        got = kls.entropy(dp, dq, axis=axis, keepdims=keepdims, nan_policy="omit")
        assert isinstance(got, da.Array)
        want = sst.entropy(p, q, axis=axis, keepdims=keepdims, nan_policy="omit")
        np.testing.assert_allclose(got.compute(), want, rtol=1e-13)
        got = kls.jensenshannon(dp, dq, axis=axis, keepdims=keepdims)
        assert isinstance(got, da.Array)
        np.testing.assert_allclose(got.compute(), ssd.jensenshannon(p, q, axis=axis,
                                                                    keepdims=keepdims),
                                   rtol=1e-12, equal_nan=True)


# -- a clamp never turns inf or NaN into a finite number -------------------------------------------
def test_jensenshannon_invalid_input_gives_scipys_inf():
    assert_same(_scipy(kls.jensenshannon, [-1.0, 2.0], [1.0, 1.0]),
                _scipy(ssd.jensenshannon, [-1.0, 2.0], [1.0, 1.0]))
    assert kls.jensenshannon([-1.0, 2.0], [1.0, 1.0]) == np.inf
    assert np.isnan(_scipy(kls.jensenshannon, [np.nan, 1.0], [0.5, 0.5]))


def _naive_js(p, q):
    """0.5 sum [rel_entr(p, m) + rel_entr(q, m)], m = (p + q)/2, by scipy, unclamped."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = (p + q) / 2
    return 0.5 * (sps._ufuncs.rel_entr(p, m) + sps._ufuncs.rel_entr(q, m)).sum(axis=-1)


JS_GARBAGE = [
    ([-1.0, 2.0], [1.0, 1.0]),        # negative entry: inf
    ([np.nan, 1.0], [0.5, 0.5]),      # NaN
    ([3.0, 0.0], [0.0, 0.0]),         # not normalized: 1.5 log 2 > log 2, finite
    ([0.0, 5.0], [7.0, 0.0]),         # disjoint and not normalized: 6 log 2
]


@pytest.mark.parametrize("p, q", JS_GARBAGE)
def test_js_divergence_validate_false_never_clamps_garbage_to_log2(p, q, backend):
    want = _scipy(_naive_js, p, q)
    got = kl_fast.js_divergence(p, q, validate=False, backend=backend)
    np.testing.assert_array_equal(got, want)
    assert not (np.isfinite(got) and got == np.log(2.0))
    rows = kl_fast.js_divergence(np.array([p, q]), np.array([q, p]), validate=False,
                                 backend=backend)
    np.testing.assert_array_equal(rows, [want, want])
    pair = kl_fast.pairwise_js(np.array([p]), np.array([q]), validate=False, backend=backend)
    np.testing.assert_array_equal(pair, [[want]])


def test_js_divergence_rounding_excess_still_clamped_to_log2(backend):
    """Disjoint supports give log 2 up to rounding; a rounding excess above it is clamped."""
    rng = np.random.default_rng(61)
    p = np.zeros((50, 8))
    q = np.zeros((50, 8))
    p[:, :4] = rng.dirichlet(np.ones(4), 50)
    q[:, 4:] = rng.dirichlet(np.ones(4), 50)
    got = kl_fast.js_divergence(p, q, backend=backend)
    assert np.all(got <= np.log(2.0))
    np.testing.assert_allclose(got, np.log(2.0), rtol=4 * np.finfo(float).eps, atol=0)
    # a sum just above log 2 by rounding is clamped; one beyond the rounding band is not
    excess = np.array([[0.5, 0.5 + 2e-15, 0.0, 0.0]])
    other = np.array([[0.0, 0.0, 0.5, 0.5]])
    naive = _naive_js(excess, other)[0]
    assert np.log(2.0) < naive <= np.log(2.0) * (1 + 64 * np.finfo(float).eps)
    got = kl_fast.js_divergence(excess, other, validate=False, backend=backend)
    assert got[0] == np.log(2.0)


@pytest.mark.parametrize("p, q", JS_GARBAGE)
def test_js_divergence_dask_passes_garbage_through(p, q):
    da = pytest.importorskip("dask.array")
    want = _scipy(_naive_js, p, q)
    got = kl_fast.js_divergence(da.from_array(np.array([p])), da.from_array(np.array([q])),
                                validate=False)
    np.testing.assert_array_equal(got.compute(), [want])


# -- kl_fast.scipy is reached lazily ---------------------------------------------------------------
def test_import_kl_fast_does_not_import_scipy_and_kl_fast_scipy_is_lazy():
    code = (
        "import sys, kl_fast\n"
        "assert 'scipy' not in sys.modules, sorted(m for m in sys.modules if 'scipy' in m)\n"
        "assert 'kl_fast.scipy' not in sys.modules\n"
        "v = kl_fast.scipy.entropy([1, 1], base=2)\n"
        "assert v == 1.0, v\n"
        "assert kl_fast.scipy is sys.modules['kl_fast.scipy']\n"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_kl_fast_has_no_other_lazy_attributes():
    with pytest.raises(AttributeError, match="has no attribute 'scipi'"):
        kl_fast.scipi  # noqa: B018


# -- scipy's own tests, in scipy's array-API mode -------------------------------------------------
def test_vendored_scipy_tests_pass_with_scipy_array_api():
    """tests/scipy_vendored under SCIPY_ARRAY_API=1 (it must be set before scipy is imported,
    hence a subprocess), on numpy, CPU torch and dask; the default mode runs in this session.

    The count: 29 tests take the ``xp`` fixture and run once per backend, except that scipy
    itself xfails rel_entr's int/float mixing on torch (test_support_alternative_backends_
    mismatched_dtypes); 56 tests do not take it and run once.  Nothing may be skipped.
    """
    backends = ["numpy"] + [name for name in ("torch", "dask") if _installed(name)]
    n_xfail = 1 if "torch" in backends else 0
    n_pass = 29 * len(backends) - n_xfail + 56
    env = {**os.environ, "SCIPY_ARRAY_API": "1"}
    root = pathlib.Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/scipy_vendored", "-q",
                          "-p", "no:cacheprovider"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=600)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    want = f"{n_pass} passed" + (f", {n_xfail} xfailed" if n_xfail else "")
    assert summary.startswith(want + " in "), summary


def _installed(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None
