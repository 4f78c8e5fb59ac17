"""dask arrays in every public function: lazy results equal to the numpy call.

The reference of every check is the numpy call of the same function on the
computed inputs (itself tested against scipy, mpmath and naive loops elsewhere).
One chunk along the category axis with reduction "none" must match bit for bit
(the same kernels run per block); a split category axis, "sum" and "mean" within
rtol 1e-13 (other summation orders; the logits merges within an absolute 1e-12,
see kl_fast/_dask/split.py).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

import kl_fast
import kl_fast.scipy as ks

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

N, K = 23, 19
# chunkings of (rows, categories): rows chunked with one category chunk, the
# category axis split in 2 and unevenly
CHUNKINGS = [(5, K), (8, (9, 10)), (7, (1, 5, 6, 7))]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(K, 0.7), N)
    q = rng.dirichlet(np.full(K, 0.7), N)
    zp = rng.normal(scale=2.0, size=(N, K))
    zq = rng.normal(scale=2.0, size=(N, K))
    labels = rng.integers(0, K, N)
    labels[[2, 11]] = -100
    return dict(p=p, q=q, zp=zp, zq=zq, logp=np.log(p), logq=np.log(q), labels=labels,
                counts=rng.integers(0, 9, (N, K)).astype(np.float64) + 0.5 * (p > 0))


D = _data()

# (id, function, input names, keywords, logits-type merge)
ROW_CASES = [
    ("kl", kl_fast.kl_divergence, ["p", "q"], {}, False),
    ("kl_bcast_q", kl_fast.kl_divergence, ["p", "q0"], {}, False),
    ("kl_bcast_q_row_eps", kl_fast.kl_divergence, ["p", "q1"], dict(eps=1e-4), False),
    ("kl_logits_bcast_q_row", kl_fast.kl_divergence, ["zp", "q1"],
     dict(p_space="logits", normalize=True), True),
    ("kl_base2_sum", kl_fast.kl_divergence, ["p", "q"], dict(base=2, reduction="sum"), False),
    ("kl_eps_mean", kl_fast.kl_divergence, ["p", "q"], dict(eps=1e-3, reduction="mean"), False),
    ("kl_normalize", kl_fast.kl_divergence, ["counts", "q"], dict(normalize=True), False),
    ("kl_keepdims", kl_fast.kl_divergence, ["p", "q"], dict(keepdims=True), False),
    ("kl_f32", kl_fast.kl_divergence, ["p32", "q32"], {}, False),
    ("kl_logits_T", kl_fast.kl_divergence, ["zp", "zq"],
     dict(p_space="logits", q_space="logits", temperature=2.0), True),
    ("kl_prob_logits", kl_fast.kl_divergence, ["p", "zq"], dict(q_space="logits"), True),
    ("kl_log_log", kl_fast.kl_divergence, ["logp", "logq"],
     dict(p_space="log", q_space="log"), True),
    ("kl_log_normalize", kl_fast.kl_divergence, ["zp", "logq"],
     dict(p_space="log", q_space="log", normalize=True), True),
    ("kl_counts_no_validate", kl_fast.kl_divergence, ["counts", "q"], dict(validate=False),
     False),
    ("js", kl_fast.js_divergence, ["p", "q"], {}, False),
    ("js_normalize_sum", kl_fast.js_divergence, ["counts", "q"],
     dict(normalize=True, reduction="sum"), False),
    ("entropy", kl_fast.entropy, ["p"], {}, False),
    ("entropy_eps_f32", kl_fast.entropy, ["p32"], dict(eps=1e-4), False),
    ("entropy_logits_T", kl_fast.entropy, ["zp"], dict(space="logits", temperature=0.5), True),
    ("ce", kl_fast.cross_entropy, ["p", "q"], {}, False),
    ("ce_logits", kl_fast.cross_entropy, ["p", "zq"], dict(q_space="logits"), True),
    ("ce_labels", kl_fast.cross_entropy, ["labels0", "q"], {}, False),
    ("ce_labels_eps", kl_fast.cross_entropy, ["labels", "q"],
     dict(eps=1e-3, ignore_index=-100), False),
    ("ce_labels_logits_mean", kl_fast.cross_entropy, ["labels", "zq"],
     dict(q_space="logits", ignore_index=-100, reduction="mean", temperature=1.5), True),
    ("ce_labels_logits_none", kl_fast.cross_entropy, ["labels", "zq"],
     dict(q_space="logits", ignore_index=-100), True),
    ("ce_labels_log_normalize", kl_fast.cross_entropy, ["labels", "zq"],
     dict(q_space="log", normalize=True, ignore_index=-100, reduction="sum"), True),
]


def _inputs(names):
    out = []
    for name in names:
        if name == "q0":
            out.append(D["q"][0])
        elif name == "q1":
            out.append(D["q"][3:4])
        elif name == "labels0":
            out.append(np.abs(D["labels"]) % K)
        elif name.endswith("32"):
            out.append(D[name[:-2]].astype(np.float32))
        else:
            out.append(D[name])
    return out


def _to_dask(a, chunks):
    rows, cats = chunks
    if a.ndim == 1 and a.dtype.kind in "iu":      # labels: the row chunks
        return da.from_array(a, chunks=rows)
    if a.ndim == 1:                                # one broadcast distribution
        return da.from_array(a, chunks=(cats,))
    if a.shape[0] == 1:                            # one row, broadcast
        return da.from_array(a, chunks=(1, cats))
    return da.from_array(a, chunks=(rows, cats))


def _check(result, expected, exact, logits_merge=False):
    assert isinstance(result, da.Array)
    expected = np.asarray(expected)
    value = result.compute()
    assert value.dtype == expected.dtype
    assert value.shape == expected.shape
    if exact:
        np.testing.assert_array_equal(value, expected)
    elif expected.dtype == np.float32:
        np.testing.assert_allclose(value, expected, rtol=3e-7, atol=0)
    else:
        np.testing.assert_allclose(value, expected, rtol=1e-13,
                                   atol=1e-12 if logits_merge else 0)


@pytest.mark.parametrize("chunks", CHUNKINGS, ids=["rows", "split2", "uneven"])
@pytest.mark.parametrize(("fn", "names", "kw", "logits_merge"),
                         [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES])
def test_row_functions_match_numpy(fn, names, kw, logits_merge, chunks):
    arrays = _inputs(names)
    expected = fn(*arrays, **kw)
    result = fn(*[_to_dask(a, chunks) for a in arrays], **kw)
    one_chunk = chunks[1] == K
    _check(result, expected, exact=one_chunk and kw.get("reduction", "none") == "none",
           logits_merge=logits_merge)


def test_mixed_numpy_and_dask_and_axis0():
    p, q = D["p"].T, D["q"].T     # categories on axis 0
    for chunks in [(K, 6), ((9, 10), 6)]:
        expected = kl_fast.kl_divergence(p, q, axis=0, keepdims=True)
        result = kl_fast.kl_divergence(da.from_array(p, chunks=chunks), q, axis=0, keepdims=True)
        _check(result, expected, exact=chunks[0] == K)


def test_backend_and_threads_reach_the_blocks():
    expected = kl_fast.kl_divergence(D["p"], D["q"], backend="numpy", num_threads=1)
    result = kl_fast.kl_divergence(da.from_array(D["p"], chunks=(5, K)), D["q"],
                                   backend="numpy", num_threads=1)
    _check(result, expected, exact=True)


def _elementwise_cases():
    rng = np.random.default_rng(1)
    a = rng.uniform(0.02, 0.98, (N, 6))
    b = rng.uniform(0.02, 0.98, (N, 6))
    mu, s = rng.normal(size=(N, 6)), rng.uniform(0.5, 2.0, (N, 6))
    return [
        ("binary_kl", kl_fast.binary_kl, [a, b[0]], {}),
        ("binary_kl_logits_mean", kl_fast.binary_kl, [mu, s],
         dict(p_space="logits", q_space="logits", reduction="mean")),
        ("bce_sum", kl_fast.binary_cross_entropy, [(a > 0.5) * 1.0, b], dict(reduction="sum")),
        ("bce_f32", kl_fast.binary_cross_entropy, [a.astype(np.float32), b.astype(np.float32)],
         {}),
        ("kl_estimate_k2", kl_fast.kl_estimate, [np.log(a), np.log(b)], dict(kind="k2")),
        ("gaussian_axis_none", kl_fast.gaussian_kl, [mu, s, mu[::-1], s[::-1]], dict(axis=None)),
        ("gaussian_rows", kl_fast.gaussian_kl, [mu, s, mu[::-1], s[::-1]], {}),
        ("gaussian_prior_logvar_mean", kl_fast.gaussian_kl, [mu, np.log(s)],
         dict(scale="logvar", reduction="mean")),
        ("gaussian_axis0_keepdims", kl_fast.gaussian_kl, [mu, s], dict(axis=0, keepdims=True)),
        ("rel_entr", ks.rel_entr, [a, b], {}),
    ]


@pytest.mark.parametrize("split", [False, True], ids=["one_chunk", "split"])
@pytest.mark.parametrize(("fn", "arrays", "kw"), [c[1:] for c in _elementwise_cases()],
                         ids=[c[0] for c in _elementwise_cases()])
def test_elementwise_and_gaussian_match_numpy(fn, arrays, kw, split):
    expected = fn(*arrays, **kw)
    cols = (2, 4) if split else 6
    dasks = [da.from_array(x, chunks=(5, cols)[-x.ndim:] if x.ndim == 2 else cols)
             for x in arrays]
    result = fn(*dasks, **kw)
    # elementwise values are per element: exact; an axis sum split across chunks is not
    exact = kw.get("reduction", "none") == "none" and (
        fn is not kl_fast.gaussian_kl or kw.get("axis", -1) is None or not split)
    if kw.get("axis") == 0:
        exact = False     # axis 0 is split into row chunks of 5
    _check(result, expected, exact=exact)


def test_gaussian_full_mutual_information_pairwise():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(9, 3, 3))
    cov = a @ a.transpose(0, 2, 1) + 3 * np.eye(3)
    mu = rng.normal(size=(9, 3))
    _check(kl_fast.gaussian_kl_full(da.from_array(mu, chunks=(4, 2)),
                                    da.from_array(cov, chunks=(3, 2, 3)), mu[::-1], cov[::-1]),
           kl_fast.gaussian_kl_full(mu, cov, mu[::-1], cov[::-1]), exact=True)
    _check(kl_fast.gaussian_kl_full(da.from_array(mu, chunks=4), cov, reduction="mean"),
           kl_fast.gaussian_kl_full(mu, cov, reduction="mean"), exact=False)
    joint = rng.dirichlet(np.ones(12), (4, 5)).reshape(4, 5, 3, 4).transpose(0, 2, 1, 3)
    for kw in [dict(axes=(1, 3)), dict(axes=(1, 3), keepdims=True),
               dict(axes=(1, 3), reduction="sum", keepdims=True)]:
        _check(kl_fast.mutual_information(da.from_array(joint, chunks=(2, 2, 3, 3)), **kw),
               kl_fast.mutual_information(joint, **kw), exact="reduction" not in kw)
    P, Q = rng.dirichlet(np.ones(K), 11), rng.dirichlet(np.ones(K), 7)
    for fn in (kl_fast.pairwise_kl, kl_fast.pairwise_js):
        _check(fn(da.from_array(P, chunks=(4, (9, 10))), da.from_array(Q, chunks=(3, K))),
               fn(P, Q), exact=True)
        _check(fn(da.from_array(P, chunks=(4, K)), base=2), fn(P, base=2), exact=True)


def test_scipy_dropins_with_dask():
    p, q = D["counts"].T, D["q"].T
    _check(ks.entropy(da.from_array(p, chunks=(K, 5)), q), ks.entropy(p, q), exact=True)
    _check(ks.jensenshannon(da.from_array(p, chunks=((9, 10), 5)), q),
           ks.jensenshannon(p, q), exact=False)


# -- laziness: nothing is computed at call time ------------------------------------------
def _explosive(a, chunks):
    def boom(block):
        raise RuntimeError("computed at call time")

    return da.from_array(a, chunks=chunks).map_blocks(boom, dtype=a.dtype)


@pytest.mark.parametrize("chunks", [(5, K), (5, (9, 10))], ids=["one_chunk", "split"])
def test_nothing_is_computed_at_call_time(chunks):
    p, q, zq = (_explosive(D[n], chunks) for n in ("p", "q", "zq"))
    labels = da.from_array(D["labels"], chunks=5).map_blocks(
        lambda b: (_ for _ in ()).throw(RuntimeError("computed")), dtype=np.int64)
    results = [
        kl_fast.kl_divergence(p, q, reduction="mean", normalize=True),
        kl_fast.kl_divergence(p, zq, q_space="logits"),
        kl_fast.js_divergence(p, q, eps=1e-3),
        kl_fast.entropy(zq, space="logits", reduction="sum"),
        kl_fast.cross_entropy(labels, zq, q_space="logits", ignore_index=-100,
                              reduction="mean"),
        kl_fast.binary_kl(p, q, reduction="sum"),
        kl_fast.binary_cross_entropy(p, q),
        kl_fast.kl_estimate(zq, zq),
        kl_fast.gaussian_kl(p, q),
        kl_fast.pairwise_kl(p, q),
        kl_fast.pairwise_js(p),
        kl_fast.mutual_information(p[:, :4].reshape(N, 2, 2), normalize=True),
        ks.rel_entr(p, q),
    ]
    for result in results:
        assert isinstance(result, da.Array)
    with pytest.raises(RuntimeError, match="computed"):
        results[0].compute()


def test_import_does_not_import_dask():
    code = "import sys, kl_fast, kl_fast.scipy; assert 'dask' not in sys.modules"
    root = os.path.dirname(os.path.dirname(os.path.abspath(kl_fast.__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("cats", [K, (9, 10)], ids=["one_chunk", "split"])
def test_bad_values_raise_at_compute_time(cats):
    bad = D["p"].copy()
    bad[7, 12] = -0.25
    lazy = kl_fast.kl_divergence(da.from_array(bad, chunks=(5, cats)), D["q"])
    with pytest.raises(ValueError, match="p.*>= 0"):
        lazy.compute()
    off = D["p"] * 1.01
    lazy = kl_fast.entropy(da.from_array(off, chunks=(5, cats)))
    with pytest.raises(ValueError, match="sum to 1"):
        lazy.compute()
    nan = D["zq"].copy()
    nan[3, 4] = np.nan
    lazy = kl_fast.entropy(da.from_array(nan, chunks=(5, cats)), space="logits")
    with pytest.raises(ValueError, match="logits must not be NaN"):
        lazy.compute()
    labels = D["labels"].copy()
    labels[4] = K
    lazy = kl_fast.cross_entropy(da.from_array(labels, chunks=5),
                                 da.from_array(D["zq"], chunks=(5, cats)), q_space="logits",
                                 ignore_index=-100)
    with pytest.raises(ValueError, match="outside"):
        lazy.compute()


def test_call_time_errors():
    p = da.from_array(D["p"], chunks=(5, K))
    with pytest.raises(TypeError, match=r"lazy.*\.compute\(\)"):
        kl_fast.kl_divergence(p, D["q"], out=np.empty(N))
    with pytest.raises(TypeError, match="lazy"):
        kl_fast.binary_kl(p, p, out=np.empty((N, K)))
    # rel_entr is a numpy ufunc: dask's __array_ufunc__ answers, as for scipy's ufunc
    for ufunc in (ks.rel_entr, scipy.special._ufuncs.rel_entr):
        with pytest.raises(NotImplementedError, match="out parameter is not fully supported"):
            ufunc(p, p, out=np.empty((N, K)))
    with pytest.raises(ValueError, match="reduction"):
        kl_fast.entropy(p, reduction="max")
    with pytest.raises(ValueError, match="base"):
        kl_fast.gaussian_kl(p, p + 1, base=1.0)
    with pytest.raises(ValueError, match="eps"):
        kl_fast.kl_divergence(p, p, q_space="logits", eps=0.1)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="torch array mixed with dask"):
        kl_fast.kl_divergence(p, torch.from_numpy(D["q"]))


# -- property: any split of the category axis gives the one-chunk result -----------------
@st.composite
def _split(draw):
    cuts = sorted(draw(st.sets(st.integers(1, K - 1), max_size=6)))
    edges = [0, *cuts, K]
    return tuple(b - a for a, b in zip(edges[:-1], edges[1:], strict=True))


@settings(max_examples=40)
@given(cats=_split(), rows=st.integers(1, N), which=st.sampled_from(range(5)))
def test_any_category_split_equals_one_chunk(cats, rows, which):
    fn, names, kw, logits_merge = [
        (kl_fast.kl_divergence, ["p", "q"], dict(eps=1e-6), False),
        (kl_fast.js_divergence, ["p", "q"], {}, False),
        (kl_fast.kl_divergence, ["zp", "zq"], dict(p_space="logits", q_space="logits"), True),
        (kl_fast.cross_entropy, ["labels", "zq"],
         dict(q_space="logits", ignore_index=-100, temperature=0.7), True),
        (kl_fast.entropy, ["counts"], dict(normalize=True), False),
    ][which]
    arrays = _inputs(names)
    one = fn(*[_to_dask(a, (rows, K)) for a in arrays], **kw).compute()
    split = fn(*[_to_dask(a, (rows, cats)) for a in arrays], **kw)
    _check(split, one, exact=len(cats) == 1, logits_merge=logits_merge)


# -- a real dask.distributed cluster: worker processes on loopback -----------------------
@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_local_cluster_workers_import_this_kl_fast(client):
    files = client.run(lambda: __import__("kl_fast").__file__)
    assert set(files.values()) == {kl_fast.__file__}


def test_local_cluster_results_match_numpy(client):
    p = da.from_array(D["p"], chunks=(6, K))
    zq = da.from_array(D["zq"], chunks=(6, (9, 10)))
    labels = da.from_array(D["labels"], chunks=6)
    p, zq, labels = client.persist([p, zq, labels])
    lazy = [
        kl_fast.kl_divergence(p, D["q"]),
        kl_fast.kl_divergence(p, zq, q_space="logits", reduction="mean"),
        kl_fast.cross_entropy(labels, zq, q_space="logits", ignore_index=-100),
        kl_fast.entropy(zq, space="logits", temperature=2.0),
        kl_fast.pairwise_js(p, p[:5]),
    ]
    expected = [
        kl_fast.kl_divergence(D["p"], D["q"]),
        kl_fast.kl_divergence(D["p"], D["zq"], q_space="logits", reduction="mean"),
        kl_fast.cross_entropy(D["labels"], D["zq"], q_space="logits", ignore_index=-100),
        kl_fast.entropy(D["zq"], space="logits", temperature=2.0),
        kl_fast.pairwise_js(D["p"], D["p"][:5]),
    ]
    values = client.compute(lazy, sync=True)
    for value, exp, exact in zip(values, expected, [True, False, False, False, True],
                                 strict=True):
        assert value.dtype == exp.dtype and value.shape == np.shape(exp)
        if exact:
            np.testing.assert_array_equal(value, exp)
        else:
            np.testing.assert_allclose(value, exp, rtol=1e-13, atol=1e-12)


def test_other_functions_check_keywords_at_call_time():
    x = da.from_array(D["p"], chunks=(5, K))
    with pytest.raises(ValueError, match="kind"):
        kl_fast.kl_estimate(x, x, kind="k9")
    with pytest.raises(ValueError, match="scale"):
        kl_fast.gaussian_kl(x, x, scale="variance")
    with pytest.raises(ValueError, match="p_space"):
        kl_fast.binary_kl(x, x, p_space="odds")
    with pytest.raises(ValueError, match="backend"):
        kl_fast.pairwise_kl(x, backend="fortran")
    with pytest.raises(ValueError, match="backend"):
        kl_fast.kl_divergence(x, x, backend="fortran")
    with pytest.raises(ValueError, match="axes"):
        kl_fast.mutual_information(x, axes=(0, 0))
    with pytest.raises(ValueError, match="2-D"):
        kl_fast.pairwise_js(x[0])


# -- accuracy of the split path against mpmath (50 digits) -------------------------------
def _mp_log_softmax(z, temperature=1.0):
    import mpmath

    z = [mpmath.mpf(float(v)) / mpmath.mpf(temperature) for v in z]
    top = max(z)
    lse = top + mpmath.log(mpmath.fsum(mpmath.exp(v - top) for v in z))
    return [v - lse for v in z]


def test_split_path_accuracy_against_mpmath():
    import mpmath

    from tests import mp_reference as mr

    mpmath.mp.dps = 50
    rng = np.random.default_rng(7)
    n, k, cats = 12, 24, (5, 8, 11)
    p, q = rng.dirichlet(np.full(k, 0.5), n), rng.dirichlet(np.full(k, 0.5), n)
    za, zb = rng.normal(scale=3, size=(n, k)), rng.normal(scale=3, size=(n, k))

    def split(a):
        return da.from_array(a, chunks=(4, cats))

    got = kl_fast.kl_divergence(split(p), split(q)).compute()
    assert max(mr.rel_error_eps(g, r) for g, r in zip(got, mr.rows(mr.kl, p, q), strict=True)) <= 4
    got = kl_fast.js_divergence(split(p), split(q)).compute()
    assert max(mr.rel_error_eps(g, r) for g, r in zip(got, mr.rows(mr.js, p, q), strict=True)) <= 4
    # logits against logits: absolute, in units of eps * sum_k p_k (|log p_k| + |log q_k|)
    got = kl_fast.kl_divergence(split(za), split(zb), p_space="logits", q_space="logits",
                                temperature=2.0).compute()
    for g, a, b in zip(got, za, zb, strict=True):
        la, lb = _mp_log_softmax(a, 2.0), _mp_log_softmax(b, 2.0)
        ref = mpmath.fsum(mpmath.exp(x) * (x - y) for x, y in zip(la, lb, strict=True))
        scale = mpmath.fsum(mpmath.exp(x) * (abs(x) + abs(y)) for x, y in zip(la, lb, strict=True))
        assert mr.scaled_error_eps(g, ref, scale) <= 8
    # peaked rows (T = 0.3): entropy and confident labels keep their relative digits
    got = kl_fast.entropy(split(za), space="logits", temperature=0.3).compute()
    for g, a in zip(got, za, strict=True):
        la = _mp_log_softmax(a, 0.3)
        assert mr.rel_error_eps(g, -mpmath.fsum(mpmath.exp(x) * x for x in la)) <= 32
    labels = np.argmax(za, axis=1)
    got = kl_fast.cross_entropy(da.from_array(labels, chunks=4), split(za), q_space="logits",
                                temperature=0.3).compute()
    for g, a, lab in zip(got, za, labels, strict=True):
        assert mr.rel_error_eps(g, -_mp_log_softmax(a, 0.3)[lab]) <= 32
