"""The f-divergence family: Renyi divergence, Hellinger distance, total variation and
Pearson's chi^2, against mpmath on the inputs as stored, across backends (cython =
numba bit for bit), at the edges, through their identities, and under dask."""

import functools
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kl_fast
from tests import mp_reference as mpr

BACKENDS = kl_fast.available_backends()
COMPILED = [b for b in ("cython", "numba") if b in BACKENDS]

# (public call, mpmath reference, condition scale or None for a relative bound)
FAMILY = {
    "hellinger": (kl_fast.hellinger_distance, mpr.hellinger, None),
    "total_variation": (kl_fast.total_variation, mpr.total_variation, None),
    "chi2": (kl_fast.chi2_divergence, mpr.chi2, None),
}
for _alpha in (0.0, 0.5, 2.0, 7.0, np.inf):
    FAMILY[f"renyi-{_alpha:g}"] = (
        functools.partial(kl_fast.renyi_divergence, alpha=_alpha),
        functools.partial(mpr.renyi, alpha=_alpha),
        None if _alpha == np.inf else functools.partial(mpr.renyi_scale, alpha=_alpha))


def _rows(rng, n, k, dtype, zeros=True):
    """Dirichlet rows, some peaked, some with zeros, renormalized in `dtype`."""
    p = rng.dirichlet(np.ones(k) * rng.choice([0.1, 1.0, 5.0]), size=n)
    if zeros:
        p[rng.random(p.shape) < 0.1] = 0.0
        p[:, 0] += 1e-3
    p = p.astype(dtype)
    return p / p.sum(axis=-1, keepdims=True, dtype=dtype)


def _error(got, exact, scale, dtype):
    """The accuracy contract's unit: float32 ULPs, else eps relative (or relative to
    the condition scale where terms cancel, as docs/accuracy.md's eps*M)."""
    if dtype == np.float32:
        return mpr.ulp_error_f32(got, exact)
    if scale is None:
        return mpr.rel_error_eps(got, exact)
    return mpr.scaled_error_eps(got, exact, max(abs(exact), scale / 2))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(FAMILY))
def test_matches_mpmath_on_the_inputs_as_stored(name, backend, dtype):
    fn, exact, scale = FAMILY[name]
    # a seed of the name, the same in every process (hash() of a str is not)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    p, q = _rows(rng, 40, 9, dtype), _rows(rng, 40, 9, dtype, zeros=False)
    near = (q * (1 + 1e-4 * rng.standard_normal(q.shape))).astype(dtype)
    near /= near.sum(axis=-1, keepdims=True, dtype=dtype)
    p, q = np.concatenate([p, near]), np.concatenate([q, q])
    got = fn(p, q, backend=backend)
    assert got.dtype == dtype
    bound = 1.0 if dtype == np.float32 else 4.0
    for i in range(len(p)):
        ref = exact(p[i], q[i])
        s = None if scale is None else scale(p[i], q[i])
        assert _error(got[i], ref, s, dtype) <= bound, (i, got[i], ref)


# float32 rows that differ only in rounding: Renyi of order 0's W = sum over p > 0 of
# (q - p) is 3.8e-20 from terms ~1e-7 (a plain sum was off by 1e6 float32 ULP)
_CANCELLING = (
    np.array([2.1846711e-03, 1.3096378e-03, 6.1159958e-03, 6.1195810e-18, 3.0255714e-01,
              3.6027598e-01, 1.2634712e-15, 1.2318480e-02, 3.1523809e-01], dtype=np.float32),
    np.array([2.18441524e-03, 1.30969111e-03, 6.11631665e-03, 6.12035112e-18, 3.02489728e-01,
              3.60287815e-01, 1.26343276e-15, 1.23176165e-02, 3.15294415e-01],
             dtype=np.float32),
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_renyi_order_zero_where_its_terms_cancel(backend):
    # D_0 = -log1p(W / P), W = sum over p > 0 of (q - p): float32 rows that differ only
    # in rounding give a W many orders below its terms (here 3.8e-20 from terms ~1e-7);
    # a plain sum of the terms was off by 1e6 float32 ULP (every backend), found by a
    # random seed of the test above.  W is now summed with error-free additions.
    p, q = _CANCELLING
    rng = np.random.default_rng(5)
    rows = [(p, q)]
    for _ in range(30):     # more rows whose sums differ by rounding only, some with p = 0
        a = rng.dirichlet(np.ones(16) * 0.5).astype(np.float32)
        b = (a * (1 + 1e-5 * rng.standard_normal(16))).astype(np.float32)
        a[rng.random(16) < 0.2] = 0.0
        rows.append((a / a.sum(dtype=np.float32), b / b.sum(dtype=np.float32)))
    for dtype in (np.float32, np.float64):
        pp = np.array([r[0] for r in rows[1:]], dtype=dtype)
        qq = np.array([r[1] for r in rows[1:]], dtype=dtype)
        got = kl_fast.renyi_divergence(pp, qq, alpha=0.0, backend=backend, validate=False)
        one = kl_fast.renyi_divergence(p.astype(dtype), q.astype(dtype), alpha=0.0,
                                       backend=backend)
        for x, y, value in [(p, q, one), *zip(pp, qq, got, strict=True)]:
            exact = mpr.renyi(x.astype(dtype), y.astype(dtype), alpha=0.0)
            error = (mpr.ulp_error_f32(value, exact) if dtype == np.float32
                     else mpr.rel_error_eps(value, exact))
            assert error <= (1.0 if dtype == np.float32 else 4.0), (dtype, value, exact)


def test_hellinger_float32_tiers_meet_the_contract_on_both_sides_of_the_bound():
    # float32 rows take P + Q - 2B (one root an element) where kl_blocks.h's bound says
    # the cancellation costs under 2^-26, else the accurate terms: rows from far apart
    # to nearly equal cross the bound; every result within 1 ULP of mpmath, cython =
    # numba bit for bit, and one row per long-row path (a single row > one block)
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(24), size=12)
    rows_p, rows_q = [], []
    for delta in np.logspace(-6, -0.5, 12):
        q = p * np.exp(delta * rng.standard_normal(p.shape))
        rows_p.append(p)
        rows_q.append(q / q.sum(axis=-1, keepdims=True))
    pp = np.concatenate(rows_p).astype(np.float32)
    qq = np.concatenate(rows_q).astype(np.float32)
    pp /= pp.sum(axis=-1, keepdims=True, dtype=np.float32)
    qq /= qq.sum(axis=-1, keepdims=True, dtype=np.float32)
    got = {b: kl_fast.hellinger_distance(pp, qq, backend=b) for b in BACKENDS}
    for b, values in got.items():
        for i in range(len(pp)):
            error = mpr.ulp_error_f32(values[i], mpr.hellinger(pp[i], qq[i]))
            assert error <= 1.0, (b, i, values[i])
    if len(COMPILED) == 2:
        assert got["cython"].tobytes() == got["numba"].tobytes()
        long_p = rng.dirichlet(np.ones(20_000))[None].astype(np.float32)
        long_q = rng.dirichlet(np.ones(20_000))[None].astype(np.float32)
        one = [kl_fast.hellinger_distance(long_p, long_q, backend=b, num_threads=2)
               for b in COMPILED]
        assert one[0].tobytes() == one[1].tobytes()
        assert mpr.ulp_error_f32(one[0][0], mpr.hellinger(long_p[0], long_q[0])) <= 1.0


@pytest.mark.parametrize("name", list(FAMILY))
def test_compiled_backends_agree_bit_for_bit_in_every_layout_and_thread_count(name):
    if len(COMPILED) < 2:
        pytest.skip("needs both compiled backends")
    fn = FAMILY[name][0]
    rng = np.random.default_rng(7)
    for dtype in (np.float64, np.float32):
        p, q = _rows(rng, 33, 40, dtype), _rows(rng, 33, 40, dtype, zeros=False)
        calls = {
            "c": ((p, q), {}),
            "fortran": ((np.asfortranarray(p), np.asfortranarray(q)), {}),
            "strided": ((np.repeat(p, 2, axis=1)[:, ::2], q), {}),
            "broadcast": ((p, q[0]), {}),
            "eps": ((p, q), {"eps": 1e-3}),
            "counts": ((p * 7, q * 3), {"normalize": True}),
            "unchecked": ((p, q), {"validate": False}),
        }
        for label, (args, kw) in calls.items():
            ref = fn(*args, backend="cython", num_threads=1, **kw)
            for backend in COMPILED:
                for threads in (1, 2):
                    got = fn(*args, backend=backend, num_threads=threads, **kw)
                    assert got.tobytes() == ref.tobytes(), (label, backend, threads)
    # one long row: its blocks in parallel, added in order
    p, q = _rows(rng, 1, 20_000, np.float64), _rows(rng, 1, 20_000, np.float64, zeros=False)
    ref = fn(p, q, backend="cython", num_threads=1)
    for backend in COMPILED:
        assert fn(p, q, backend=backend, num_threads=2).tobytes() == ref.tobytes(), backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_edges(backend):
    h, tv, chi2, renyi = (functools.partial(f, backend=backend) for f in (
        kl_fast.hellinger_distance, kl_fast.total_variation, kl_fast.chi2_divergence,
        kl_fast.renyi_divergence))
    rng = np.random.default_rng(1)
    p = _rows(rng, 5, 12, np.float64)
    # p == q: exactly 0, even for rows whose stored sums are off by rounding
    assert (h(p, p) == 0).all() and (tv(p, p) == 0).all() and (chi2(p, p) == 0).all()
    for alpha in (0.0, 0.3, 1.0, 2.5, np.inf):
        assert (renyi(p, p, alpha=alpha) == 0).all(), alpha
    # disjoint supports: distance 1, divergences +inf
    a, b = np.array([0.5, 0.5, 0.0, 0.0]), np.array([0.0, 0.0, 0.25, 0.75])
    assert h(a, b) == 1.0 and tv(a, b) == 1.0 and chi2(a, b) == np.inf
    for alpha in (0.0, 0.5, 2.0, np.inf):
        assert renyi(a, b, alpha=alpha) == np.inf, alpha
    # q = 0 < p in one category: chi^2 and orders >= 1 are infinite, orders < 1 finite
    a, b = np.array([0.5, 0.25, 0.25]), np.array([0.5, 0.5, 0.0])
    assert chi2(a, b) == np.inf
    assert renyi(a, b, alpha=1.0) == np.inf and renyi(a, b, alpha=3.0) == np.inf
    for alpha in (0.0, 0.5):
        ref = mpr.renyi(a, b, alpha)
        assert mpr.rel_error_eps(renyi(a, b, alpha=alpha), ref) <= 4, alpha
    # 0/0 terms are 0
    a, b = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.75, 0.0])
    assert chi2(a, b) == pytest.approx(0.25 ** 2 / 0.25 + 0.25 ** 2 / 0.75, rel=1e-15)


def test_chi2_float32_at_the_ends_of_the_float32_range():
    # float32 rows read as they are take chi^2's terms with no odd-lane test
    # (kl_blocks.h: the float32 range cannot overflow d / q nor underflow d (d / q));
    # the extremes of that range, and inf / NaN, must still give the exact values
    tiny, huge = np.float32(2.0 ** -149), np.float32(3.0e38)
    rows = np.array([
        [huge, tiny, 0.5, 0.0],           # d / q = 3e38 / 2^-149 and d^2 / q of 2^-149
        [tiny, huge, 1e-30, 0.25],
        [1e-30, tiny, 0.5, 0.5],          # d / q = 7e14 with a finite sum
        [tiny, 2 * tiny, 1e-38, 1.0],     # every term subnormal-sized in float32
        [0.0, tiny, 0.0, 3.0],
    ], dtype=np.float32)
    others = rows[::-1].copy()
    # p = inf (q finite), q = inf (p finite), NaN, p = inf over q = 0
    special = np.array([[np.inf, 0.5, 0.0, 1.0], [0.5, 0.5, 0.0, 1.0],
                        [np.nan, 0.5, 0.0, 1.0], [np.inf, 0.0, 0.0, 1.0]], dtype=np.float32)
    special_q = np.array([[0.5, 0.5, 0.0, 1.0], [0.5, np.inf, 0.0, 1.0],
                          [0.5, 0.5, 0.0, 1.0], [0.0, 0.5, 0.0, 1.0]], dtype=np.float32)
    expected_special = [np.inf, np.nan, np.nan, np.inf]
    for backend in BACKENDS:
        got = kl_fast.chi2_divergence(rows, others, backend=backend, validate=False)
        for i in range(len(rows)):
            exact = mpr.chi2(rows[i], others[i])
            if exact > np.finfo(np.float32).max:      # rounds to inf in float32
                assert got[i] == np.inf, (backend, i, got[i], exact)
            else:
                assert mpr.ulp_error_f32(got[i], exact) <= 1, (backend, i, got[i], exact)
        got = kl_fast.chi2_divergence(special, special_q, backend=backend, validate=False)
        np.testing.assert_array_equal(got, np.array(expected_special, np.float32), backend)
        # the same rows in float64 take the odd-lane test: the same values
        got64 = kl_fast.chi2_divergence(special.astype(np.float64), special_q.astype(np.float64),
                                        backend=backend, validate=False)
        np.testing.assert_array_equal(got64, np.array(expected_special), backend)
    if len(COMPILED) == 2:
        for p, q in ((rows, others), (special, special_q)):
            a, b = (kl_fast.chi2_divergence(p, q, backend=be, validate=False) for be in COMPILED)
            assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_renyi_tiers_far_from_the_common_case(backend):
    """Nearly disjoint supports (alpha < 1: S << P cancels in S - P), a sum that
    overflows (large alpha, far-apart probabilities) or underflows: still accurate."""
    rows = [
        ([1 - 1e-12, 1e-12, 0.0], [0.0, 1e-12, 1 - 1e-12], 0.5),
        ([1 - 1e-40, 1e-40], [1e-40, 1 - 1e-40], 10.0),
        ([1 - 1e-40, 1e-40], [1e-40, 1 - 1e-40], 0.05),
        ([0.5, 0.5 - 1e-300, 1e-300], [1e-300, 0.5, 0.5 - 1e-300], 3.0),
        ([1e-300, 1 - 1e-300], [1 - 1e-300, 1e-300], 1e-3),
    ]
    for p, q, alpha in rows:
        got = kl_fast.renyi_divergence(p, q, alpha=alpha, backend=backend)
        ref = mpr.renyi(p, q, alpha)
        scale = mpr.renyi_scale(p, q, alpha)
        assert np.isfinite(got) and mpr.scaled_error_eps(got, ref, max(ref, scale / 2)) <= 4, (
            p, q, alpha, got, ref)


def test_renyi_orders_that_are_other_quantities():
    rng = np.random.default_rng(2)
    p, q = _rows(rng, 50, 16, np.float64), _rows(rng, 50, 16, np.float64, zeros=False)
    assert (kl_fast.renyi_divergence(p, q, alpha=1) == kl_fast.kl_divergence(p, q)).all()
    chi2 = kl_fast.chi2_divergence(p, q)
    np.testing.assert_allclose(kl_fast.renyi_divergence(p, q, alpha=2), np.log1p(chi2),
                               rtol=1e-13)
    h = kl_fast.hellinger_distance(p, q)
    np.testing.assert_allclose(kl_fast.renyi_divergence(p, q, alpha=0.5),
                               -2 * np.log1p(-h * h), rtol=1e-13)
    support = np.where(p > 0, q, 0.0).sum(axis=-1)
    np.testing.assert_allclose(kl_fast.renyi_divergence(p, q, alpha=0),
                               -np.log(support), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(kl_fast.renyi_divergence(p, q, alpha=np.inf),
                               np.log(np.where(p > 0, p / q, 0).max(axis=-1)), rtol=1e-14)
    bits = kl_fast.renyi_divergence(p, q, alpha=3, base=2)
    np.testing.assert_allclose(bits * np.log(2), kl_fast.renyi_divergence(p, q, alpha=3),
                               rtol=1e-15)


_probabilities = st.lists(st.floats(0.0, 1.0, allow_subnormal=False), min_size=2,
                          max_size=12).filter(lambda x: sum(x) > 0.1)


def _pair(data):
    p = np.array(data.draw(_probabilities))
    q = np.array(data.draw(st.lists(st.floats(0.0, 1.0, allow_subnormal=False),
                                    min_size=len(p), max_size=len(p)).filter(
                                        lambda x: sum(x) > 0.1)))
    return p / p.sum(), q / q.sum()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_identities_and_inequalities(data):
    p, q = _pair(data)
    kw = {"validate": False}
    h, h_back = kl_fast.hellinger_distance(p, q, **kw), kl_fast.hellinger_distance(q, p, **kw)
    tv, tv_back = kl_fast.total_variation(p, q, **kw), kl_fast.total_variation(q, p, **kw)
    assert h == h_back and tv == tv_back          # symmetric bit for bit
    assert 0.0 <= h <= 1.0 and 0.0 <= tv <= 1.0
    slack = 1e-12
    assert h * h <= tv + slack and tv <= np.sqrt(2) * h + slack     # Le Cam
    kl = kl_fast.kl_divergence(p, q, **kw)
    assert tv <= np.sqrt(kl / 2) + slack                               # Pinsker
    assert kl <= kl_fast.renyi_divergence(p, q, alpha=2, **kw) * (1 + slack) + slack
    orders = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, np.inf]
    values = [kl_fast.renyi_divergence(p, q, alpha=a, **kw) for a in orders]
    for lo, hi in zip(values[:-1], values[1:], strict=True):   # non-decreasing in alpha
        assert lo <= hi * (1 + 1e-12) + 1e-14, values


def test_argument_errors_name_the_argument_and_the_fix():
    p, q = [0.5, 0.5], [0.9, 0.1]
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        kl_fast.renyi_divergence(p, q, alpha=-0.5)
    with pytest.raises(ValueError, match="alpha must be a number >= 0, got nan"):
        kl_fast.renyi_divergence(p, q, alpha=float("nan"))
    with pytest.raises(TypeError, match="alpha must be a real number"):
        kl_fast.renyi_divergence(p, q, alpha="2")
    with pytest.raises(TypeError):
        kl_fast.renyi_divergence(p, q)          # alpha has no default
    with pytest.raises(TypeError, match="base"):
        kl_fast.hellinger_distance(p, q, base=2)   # not a logarithm
    with pytest.raises(ValueError, match=r"q contains an invalid value, -0.5 at index \(1,\)"):
        kl_fast.chi2_divergence(p, [1.5, -0.5])
    with pytest.raises(ValueError, match="normalize=True"):
        kl_fast.total_variation([2.0, 1.0], q)
    out = np.empty(3)
    with pytest.raises(ValueError):
        kl_fast.total_variation(np.ones((3, 2)) / 2, [0.1, 0.2, 0.7], out=out)


def test_reductions_dtype_and_out():
    rng = np.random.default_rng(3)
    p = _rows(rng, 6, 5, np.float32)
    q = _rows(rng, 6, 5, np.float32, zeros=False)
    for fn in (kl_fast.hellinger_distance, kl_fast.total_variation, kl_fast.chi2_divergence,
               functools.partial(kl_fast.renyi_divergence, alpha=0.5)):
        per_row = fn(p, q)
        assert per_row.dtype == np.float32 and per_row.shape == (6,)
        assert fn(p, q, reduction="mean") == np.float32(per_row.astype(np.float64).mean())
        assert fn(p, q, keepdims=True).shape == (6, 1)
        out = np.empty(6, np.float32)
        assert fn(p, q, out=out) is out and (out == per_row).all()
        assert fn(p.T, q.T, axis=0).tobytes() == per_row.tobytes()


def test_dask_blocks_match_the_numpy_call_and_split_rows_merge():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(4)
    p, q = _rows(rng, 30, 40, np.float64), _rows(rng, 30, 40, np.float64, zeros=False)
    for name, (fn, _, _) in FAMILY.items():
        ref = fn(p, q)
        whole = fn(da.from_array(p, chunks=(7, 40)), da.from_array(q, chunks=(7, 40)))
        assert whole.compute().tobytes() == ref.tobytes(), name
        split = fn(da.from_array(p, chunks=(7, 13)), da.from_array(q, chunks=(7, 13)))
        np.testing.assert_allclose(split.compute(), ref, rtol=1e-13, atol=1e-15, err_msg=name)
        counts = fn(da.from_array(p * 5, chunks=(7, 13)), da.from_array(q, chunks=(7, 13)),
                    normalize=True)
        np.testing.assert_allclose(counts.compute(), fn(p * 5, q, normalize=True), rtol=1e-13,
                                   atol=1e-15, err_msg=name)
    bad = p.copy()
    bad[3, 20] = -1.0
    with pytest.raises(ValueError, match="p: probabilities"):
        kl_fast.hellinger_distance(da.from_array(bad, chunks=(7, 13)), q).compute()
    # Renyi of order 0 whose W cancels across the chunks of a split axis as within one:
    # each chunk's W is carried as hi + lo and the chunks add with TwoSum
    a, b = _CANCELLING
    exact = mpr.renyi(a, b, alpha=0.0)
    for chunks in ((1, 2), (1, 4), (1, 9)):
        got = kl_fast.renyi_divergence(da.from_array(a[None], chunks=chunks),
                                       da.from_array(b[None], chunks=chunks), alpha=0.0)
        assert mpr.ulp_error_f32(got.compute()[0], exact) <= 1.0, chunks


def test_score_command_runs_the_family(tmp_path):
    from kl_fast._cli.score import ScoreInputError, score_files

    rng = np.random.default_rng(5)
    p, q = _rows(rng, 50, 6, np.float64), _rows(rng, 50, 6, np.float64, zeros=False)
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "q.npy", q)
    paths = (tmp_path / "p.npy", tmp_path / "q.npy")
    for metric, fn, kw in (("renyi", kl_fast.renyi_divergence, {"alpha": 0.5}),
                           ("hellinger", kl_fast.hellinger_distance, {}),
                           ("total-variation", kl_fast.total_variation, {}),
                           ("chi2", kl_fast.chi2_divergence, {})):
        out = tmp_path / f"{metric}.npy"
        score_files(*paths, metric=metric, out=out, chunk_rows=7, **kw)
        assert np.load(out).tobytes() == fn(p, q, **kw).tobytes(), metric
    with pytest.raises(ScoreInputError, match="needs --alpha"):
        score_files(*paths, metric="renyi", reduction="sum")
    with pytest.raises(ScoreInputError, match="--base does not apply"):
        score_files(*paths, metric="hellinger", base=2, reduction="sum")
    with pytest.raises(ScoreInputError, match="--alpha does not apply"):
        score_files(*paths, metric="js", alpha=2, reduction="sum")
