"""DESIGN.md "Semantics at the edges", row by row, on every backend.

Exact identities (0, +inf, NaN, 1 bit) are asserted exactly; everything else
is compared with the naive oracle in ``reference.py``.
"""

import math

import numpy as np
import pytest

import kl_fast

from . import reference as ref

INF = math.inf
SCALES = ("var", "std", "logvar", "logstd")

FUNCS = {
    "kl": kl_fast.kl_divergence,
    "js": kl_fast.js_divergence,
    "cross_entropy": kl_fast.cross_entropy,
    "entropy": kl_fast.entropy,
}
ORACLES = {"kl": ref.kl, "js": ref.js, "cross_entropy": ref.cross_entropy, "entropy": ref.entropy}
N_ARGS = {"kl": 2, "js": 2, "cross_entropy": 2, "entropy": 1}


def call(name, args, **kwargs):
    return FUNCS[name](*args[:N_ARGS[name]], **kwargs)


def oracle(name, args, **kwargs):
    return ORACLES[name](*args[:N_ARGS[name]], **kwargs)


def unit_scale(scale, like):
    """The scale parameter of variance 1: 1 for var/std, 0 for logvar/logstd."""
    return np.ones_like(like) if scale in ("var", "std") else np.zeros_like(like)


def scale_params(rng, shape, scale):
    if scale in ("var", "std"):
        return rng.uniform(0.3, 3.0, size=shape)
    return rng.uniform(-1.5, 1.5, size=shape)


# -- the edge table: exact results -------------------------------------------------------------

EXACT_CASES = [
    # (id, function, args, kwargs, exact result)
    ("kl-p-zero-where-q-zero", "kl", ([0.0, 1.0], [0.0, 1.0]), {}, 0.0),
    ("ce-p-zero-where-q-zero", "cross_entropy", ([0.0, 1.0], [0.0, 1.0]), {}, 0.0),
    ("js-p-zero-where-q-zero", "js", ([0.0, 1.0], [0.0, 1.0]), {}, 0.0),
    ("entropy-point-mass", "entropy", ([0.0, 1.0, 0.0],), {}, 0.0),
    ("kl-q-zero-under-p-mass", "kl", ([0.5, 0.5], [1.0, 0.0]), {}, INF),
    ("ce-q-zero-under-p-mass", "cross_entropy", ([0.5, 0.5], [1.0, 0.0]), {}, INF),
    ("kl-q-zero-counts", "kl", ([1, 3], [4, 0]), {"normalize": True}, INF),
    ("js-disjoint-supports-one-bit", "js", ([1.0, 0.0], [0.0, 1.0]), {"base": 2}, 1.0),
    ("entropy-fair-coin-one-bit", "entropy", ([0.5, 0.5],), {"base": 2}, 1.0),
    ("kl-one-category", "kl", ([1.0], [1.0]), {}, 0.0),
    ("js-one-category", "js", ([1.0], [1.0]), {}, 0.0),
    ("ce-one-category", "cross_entropy", ([1.0], [1.0]), {}, 0.0),
    ("entropy-one-category", "entropy", ([1.0],), {}, 0.0),
    ("kl-one-category-counts", "kl", ([[3], [7]], [[5], [1]]), {"normalize": True}, [0.0, 0.0]),
    ("entropy-one-category-counts", "entropy", ([[3], [7]],), {"normalize": True}, [0.0, 0.0]),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "expected"),
                         [c[1:] for c in EXACT_CASES], ids=[c[0] for c in EXACT_CASES])
def test_edge_table_exact_results(backend, name, args, kwargs, expected):
    result = call(name, args, backend=backend, **kwargs)
    np.testing.assert_array_equal(result, expected)


# -- the edge table: results of the oracle -----------------------------------------------------

P3, Q3 = [0.0, 0.25, 0.75], [0.5, 0.25, 0.25]
REFERENCE_CASES = [
    # (id, function, args, kwargs)
    ("kl-p-zero-term", "kl", (P3, Q3), {}),
    ("js-p-zero-term", "js", (P3, Q3), {}),
    ("ce-p-zero-term", "cross_entropy", (P3, Q3), {}),
    ("entropy-p-zero-term", "entropy", (P3,), {}),
    ("js-q-zero-stays-finite", "js", ([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]), {}),
    ("kl-eps-smooths-q-zero", "kl", ([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]), {"eps": 1e-3}),
    ("ce-eps-smooths-q-zero", "cross_entropy", ([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]), {"eps": 1e-3}),
    ("js-eps", "js", ([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]), {"eps": 1e-3}),
    ("entropy-eps", "entropy", ([1.0, 0.0, 0.0],), {"eps": 0.25}),
    ("kl-tiny-eps", "kl", ([0.5, 0.5, 0.0], [1.0, 0.0, 0.0]), {"eps": 1e-300}),
    ("kl-normalize-counts", "kl", ([2, 1, 3], [1, 1, 5]), {"normalize": True}),
    ("js-normalize-counts", "js", ([2, 0, 3], [0, 1, 5]), {"normalize": True}),
    ("ce-normalize-counts", "cross_entropy", ([2, 0, 3], [1, 1, 5]), {"normalize": True}),
    ("entropy-normalize-counts", "entropy", ([[1, 1, 2], [0, 0, 4]],), {"normalize": True}),
    ("kl-eps-and-normalize", "kl", ([2, 0, 3], [0, 0, 5]), {"eps": 0.5, "normalize": True}),
    ("kl-eps-rescues-all-zero-counts", "kl", ([0, 0, 0], [1, 2, 3]),
     {"eps": 0.1, "normalize": True}),
    ("entropy-eps-rescues-all-zero-counts", "entropy", ([0, 0, 0, 0],),
     {"eps": 1.0, "normalize": True}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), [c[1:] for c in REFERENCE_CASES],
                         ids=[c[0] for c in REFERENCE_CASES])
def test_edge_table_matches_reference(backend, name, args, kwargs):
    result = call(name, args, backend=backend, **kwargs)
    expected = oracle(name, args, **kwargs)
    np.testing.assert_allclose(result, expected, rtol=1e-13, atol=1e-16)
    assert np.all(np.isfinite(result))


@pytest.mark.parametrize("name", ["kl", "js", "cross_entropy", "entropy"])
def test_eps_keeps_results_finite_and_matches_reference(backend, dtype, name, rng):
    p = rng.dirichlet(np.ones(6), size=5)
    q = rng.dirichlet(np.ones(6), size=5)
    p[:, :2] = 0.0
    q[:, 2:4] = 0.0
    p, q = (x / x.sum(axis=-1, keepdims=True) for x in (p, q))
    p, q = p.astype(dtype), q.astype(dtype)
    result = call(name, (p, q), eps=1e-4, backend=backend)
    assert np.all(np.isfinite(result))
    expected = oracle(name, (p.astype(np.float64), q.astype(np.float64)), eps=1e-4)
    np.testing.assert_allclose(result, expected, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("name", ["kl", "js", "cross_entropy", "entropy"])
def test_normalize_ignores_the_scale_of_counts(backend, name, rng):
    counts_p = rng.integers(0, 30, size=(4, 7)) + np.eye(4, 7, dtype=np.int64)
    counts_q = rng.integers(1, 30, size=(4, 7))
    result = call(name, (counts_p, counts_q), normalize=True, backend=backend)
    scaled = call(name, (1000 * counts_p, 0.5 * counts_q), normalize=True, backend=backend)
    np.testing.assert_allclose(scaled, result, rtol=1e-13)
    probs = (counts_p / counts_p.sum(-1, keepdims=True), counts_q / counts_q.sum(-1, keepdims=True))
    np.testing.assert_allclose(result, oracle(name, probs), rtol=1e-13)


def test_normalize_refuses_counts_whose_sum_overflows(backend):
    # the row sum of finite counts overflows to inf: dividing by it would
    # silently give KL(0 || q), so the call refuses and says how to fix it
    q = [0.2, 0.3, 0.5]
    with pytest.raises(ValueError, match=r"sums to inf .*cannot be normalized; scale"):
        kl_fast.kl_divergence([1e308, 1e308, 1e308], q, normalize=True, backend=backend)


def test_infinite_rows_propagate_to_sum_and_mean(backend):
    p = [[0.5, 0.5], [0.5, 0.5]]
    q = [[0.5, 0.5], [1.0, 0.0]]
    np.testing.assert_array_equal(kl_fast.kl_divergence(p, q, backend=backend), [0.0, INF])
    assert kl_fast.kl_divergence(p, q, reduction="sum", backend=backend) == INF
    assert kl_fast.kl_divergence(p, q, reduction="mean", backend=backend) == INF


def test_q_zero_gives_inf_in_float32(backend):
    p = np.array([[0.25, 0.75], [0.5, 0.5]], dtype=np.float32)
    q = np.array([[0.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    for fn in (kl_fast.kl_divergence, kl_fast.cross_entropy):
        result = fn(p, q, backend=backend)
        assert result.dtype == np.float32
        assert result[0] == INF and np.isfinite(result[1])


# -- identities: exactly zero, never negative --------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"eps": 1e-3}, {"normalize": True}, {"base": 2}],
                         ids=["plain", "eps", "normalize", "bits"])
@pytest.mark.parametrize("name", ["kl", "js"])
def test_divergence_of_a_distribution_with_itself_is_exactly_zero(backend, dtype, name, kwargs,
                                                                   rng):
    p = rng.dirichlet(np.full(9, 0.5), size=(3, 4))
    p[0, 0, :3] = 0.0
    p = (p / p.sum(axis=-1, keepdims=True)).astype(dtype)
    result = call(name, (p, p.copy()), backend=backend, **kwargs)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, 0.0)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_of_identical_gaussians_is_exactly_zero(backend, dtype, scale, rng):
    mu = rng.normal(size=(4, 6)).astype(dtype)
    s = scale_params(rng, (4, 6), scale).astype(dtype)
    np.testing.assert_array_equal(kl_fast.gaussian_kl(mu, s, mu, s, scale=scale, backend=backend),
                                  0.0)
    unit = unit_scale(scale, s)
    np.testing.assert_array_equal(
        kl_fast.gaussian_kl(np.zeros_like(mu), unit, scale=scale, backend=backend), 0.0)


@pytest.mark.parametrize("rel", [1e-15, 1e-12, 1e-8])
@pytest.mark.parametrize("name", ["kl", "js"])
def test_divergences_are_never_negative_for_nearly_equal_inputs(backend, dtype, name, rel, rng):
    p = rng.dirichlet(np.ones(50), size=200)
    q = p * (1.0 + rel * rng.standard_normal(p.shape))
    q /= q.sum(axis=-1, keepdims=True)
    result = call(name, (p.astype(dtype), q.astype(dtype)), backend=backend)
    assert np.all(result >= 0.0)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_is_never_negative_for_nearly_equal_gaussians(backend, scale, rng):
    mu = rng.normal(size=(100, 8))
    s = scale_params(rng, (100, 8), scale)
    s2 = s + 1e-14 * rng.standard_normal(s.shape)
    result = kl_fast.gaussian_kl(mu, s, mu + 1e-15, s2, scale=scale, backend=backend)
    assert np.all(result >= 0.0)


# -- shapes at the edges -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(0, 4), (2, 0, 4), (0, 0, 3)])
@pytest.mark.parametrize("name", ["kl", "js", "cross_entropy", "entropy"])
def test_empty_batch_gives_empty_result(backend, dtype, name, shape):
    p = np.empty(shape, dtype=dtype)
    result = call(name, (p, p), backend=backend)
    assert isinstance(result, np.ndarray)
    assert result.shape == shape[:-1] and result.dtype == dtype
    kept = call(name, (p, p), keepdims=True, backend=backend)
    assert kept.shape == shape[:-1] + (1,)
    assert call(name, (p, p), reduction="sum", backend=backend) == 0.0
    assert np.isnan(call(name, (p, p), reduction="mean", backend=backend))


def test_empty_batch_of_labels_gives_empty_result(backend, dtype):
    result = kl_fast.cross_entropy(np.empty(0, np.int64), np.empty((0, 5), dtype),
                                   backend=backend)
    assert result.shape == (0,) and result.dtype == dtype


@pytest.mark.parametrize("prior", [False, True])
def test_gaussian_kl_empty_batch_gives_empty_result(backend, prior):
    mu, var = np.empty((0, 3)), np.empty((0, 3))
    args = (mu, var) if prior else (mu, var, mu, var)
    assert kl_fast.gaussian_kl(*args, backend=backend).shape == (0,)
    assert kl_fast.gaussian_kl(*args, axis=None, backend=backend).shape == (0, 3)


def test_one_category_rows_in_a_batch(backend, rng):
    p = np.ones((5, 1))
    for name in FUNCS:
        np.testing.assert_array_equal(call(name, (p, p), backend=backend), np.zeros(5))
    np.testing.assert_array_equal(kl_fast.cross_entropy(np.zeros(5, int), p, backend=backend),
                                  np.zeros(5))


# -- labels and ignore_index -------------------------------------------------------------------

def label_data(rng, n=8, k=5, dtype=np.float64):
    q = rng.dirichlet(np.ones(k), size=n).astype(dtype)
    labels = rng.integers(0, k, size=n)
    labels[[1, 4, 5]] = -100
    return labels, q


def test_ignored_labels_are_nan_under_none(backend, rng):
    labels, q = label_data(rng)
    result = kl_fast.cross_entropy(labels, q, ignore_index=-100, backend=backend)
    ignored = labels == -100
    assert np.all(np.isnan(result[ignored]))
    expected = ref.cross_entropy_labels(labels, q, ignore_index=-100)
    np.testing.assert_allclose(result[~ignored], expected[~ignored], rtol=1e-13)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_ignored_labels_are_left_out_of_reductions(backend, dtype, reduction, rng):
    labels, q = label_data(rng, dtype=dtype)
    result = kl_fast.cross_entropy(labels, q, ignore_index=-100, reduction=reduction,
                                   backend=backend)
    per_row = ref.cross_entropy_labels(labels, q.astype(np.float64), ignore_index=-100)
    expected = ref.reduce(per_row, reduction, ignored=labels == -100)
    assert result.dtype == dtype and np.isfinite(result)
    np.testing.assert_allclose(result, expected, rtol=4 * np.finfo(dtype).eps)


def test_ignore_index_inside_the_label_range_ignores_that_class(backend, rng):
    labels, q = rng.integers(0, 3, size=12), rng.dirichlet(np.ones(3), size=12)
    result = kl_fast.cross_entropy(labels, q, ignore_index=0, reduction="mean", backend=backend)
    expected = ref.reduce(ref.cross_entropy_labels(labels, q, ignore_index=0), "mean",
                          ignored=labels == 0)
    np.testing.assert_allclose(result, expected, rtol=1e-13)


def test_all_ignored_labels_give_nan_mean_and_zero_sum(backend, rng):
    q = rng.dirichlet(np.ones(4), size=3)
    labels = np.full(3, -100)
    assert np.isnan(kl_fast.cross_entropy(labels, q, ignore_index=-100, reduction="mean",
                                          backend=backend))
    assert kl_fast.cross_entropy(labels, q, ignore_index=-100, reduction="sum",
                                 backend=backend) == 0.0
    assert np.all(np.isnan(kl_fast.cross_entropy(labels, q, ignore_index=-100, backend=backend)))


def test_ignore_index_absent_from_labels_changes_nothing(backend, rng):
    labels, q = rng.integers(0, 4, size=6), rng.dirichlet(np.ones(4), size=6)
    np.testing.assert_array_equal(
        kl_fast.cross_entropy(labels, q, ignore_index=-100, backend=backend),
        kl_fast.cross_entropy(labels, q, backend=backend))


@pytest.mark.parametrize("kwargs", [{"eps": 1e-3}, {"normalize": True}, {"base": 2}])
def test_labels_with_smoothing_match_reference(backend, kwargs, rng):
    labels, q = label_data(rng)
    q[0, labels[0]] = 0.0
    q /= q.sum(axis=-1, keepdims=True)
    result = kl_fast.cross_entropy(labels, q, ignore_index=-100, backend=backend, **kwargs)
    expected = ref.cross_entropy_labels(labels, q, ignore_index=-100, **kwargs)
    np.testing.assert_allclose(result, expected, rtol=1e-13)


def test_label_on_zero_probability_gives_inf(backend):
    result = kl_fast.cross_entropy([0, 1], [[0.0, 1.0], [0.0, 1.0]], backend=backend)
    np.testing.assert_array_equal(result, [INF, 0.0])


def test_labels_equal_to_one_hot_targets(backend, rng):
    labels, q = rng.integers(0, 6, size=7), rng.dirichlet(np.ones(6), size=7)
    one_hot = np.eye(6)[labels]
    np.testing.assert_allclose(kl_fast.cross_entropy(labels, q, backend=backend),
                               kl_fast.cross_entropy(one_hot, q, backend=backend), rtol=1e-15)


# -- validate=False: garbage in, garbage out, never a crash ------------------------------------

GARBAGE_ROWS = [
    [np.nan, 0.5, 0.5],
    [-1.0, 1.0, 1.0],
    [np.inf, 0.0, 1.0],
    [-np.inf, 2.0, -1.0],
    [np.inf, np.inf, np.inf],
    [0.0, 0.0, 0.0],
    [-1.0, 0.5, 0.5],
    [5.0, 7.0, 9.0],
]
VALID_P, VALID_Q = [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]
KEYWORD_SETS = [{}, {"normalize": True}, {"eps": 0.1}, {"normalize": True, "eps": 0.1}]
KEYWORD_IDS = ["plain", "normalize", "eps", "normalize-eps"]


def garbage_batches():
    """(p, q) pairs: garbage against garbage, against a valid row, and a valid row at the end."""
    g = np.array(GARBAGE_ROWS + [VALID_P])
    valid_q = np.broadcast_to(VALID_Q, g.shape)
    return [(g, valid_q), (valid_q, g), (g, np.concatenate([g[::-1][1:], [VALID_Q]]))]


@pytest.mark.parametrize("kwargs", KEYWORD_SETS, ids=KEYWORD_IDS)
@pytest.mark.parametrize("name", ["kl", "js", "cross_entropy", "entropy"])
def test_validate_false_never_raises_on_garbage(backend, name, kwargs):
    for p, q in garbage_batches():
        with np.errstate(all="ignore"):  # warnings are checked on their own below
            result = call(name, (p, q), validate=False, backend=backend, **kwargs)
            expected_last = oracle(name, (p[-1], q[-1]), **kwargs)
        assert result.shape == (len(GARBAGE_ROWS) + 1,) and result.dtype == np.float64
        # garbage stays in its own row: the valid last row is still right
        if np.all(np.isfinite(p[-1])) and np.all(np.isfinite(q[-1])):
            np.testing.assert_allclose(result[-1], expected_last, rtol=1e-13)


@pytest.mark.parametrize("kwargs", KEYWORD_SETS, ids=KEYWORD_IDS)
def test_validate_false_never_raises_on_garbage_labels(backend, kwargs):
    q = np.array(GARBAGE_ROWS + [VALID_Q])
    labels = np.arange(len(q)) % 3
    with np.errstate(all="ignore"):
        result = kl_fast.cross_entropy(labels, q, validate=False, backend=backend, **kwargs)
    assert result.shape == (len(q),)
    expected = ref.cross_entropy_labels(labels[-1:], q[-1:], **kwargs)
    np.testing.assert_allclose(result[-1:], expected, rtol=1e-13)


@pytest.mark.parametrize("scale", SCALES)
def test_validate_false_never_raises_on_garbage_gaussians(backend, scale):
    bad = [np.nan, -1.0, 0.0, np.inf, -np.inf, 1e308, 1e-308, 0.5]
    grid = np.array(np.meshgrid(bad, bad, [0.0, np.nan, np.inf, 1.0], indexing="ij"))
    s1, s2, mu = (g.reshape(-1) for g in grid)
    with np.errstate(all="ignore"):
        two = kl_fast.gaussian_kl(mu, s1, 0.5 * mu, s2, axis=None, scale=scale, validate=False,
                                  backend=backend)
        prior = kl_fast.gaussian_kl(mu, s1, axis=None, scale=scale, validate=False,
                                    backend=backend)
    assert two.shape == prior.shape == mu.shape
    fine = (s1 == 0.5) & (s2 == 0.5) & (mu == 1.0)
    np.testing.assert_allclose(two[fine], ref.gaussian_kl(1.0, 0.5, 0.5, 0.5, scale=scale,
                                                          elementwise=True), rtol=1e-13)


def _call_every_function_on_garbage(backend):
    for p, q in garbage_batches():
        for name in FUNCS:
            for kwargs in KEYWORD_SETS:
                call(name, (p, q), validate=False, backend=backend, **kwargs)
    q = np.array(GARBAGE_ROWS)
    for kwargs in KEYWORD_SETS:
        kl_fast.cross_entropy(np.arange(len(q)) % 3, q, validate=False, backend=backend,
                              **kwargs)
    for scale in SCALES:
        bad = np.array([np.nan, -1.0, 0.0, np.inf, -np.inf])
        kl_fast.gaussian_kl(bad, bad, bad[::-1], bad, axis=None, scale=scale, validate=False,
                            backend=backend)


def test_validate_false_garbage_emits_no_runtime_warning(backend):
    _call_every_function_on_garbage(backend)  # filterwarnings=error turns a warning into a failure


# -- the standard-normal prior -----------------------------------------------------------------

@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_prior_equals_explicit_standard_normal(backend, dtype, scale, rng):
    mu = rng.normal(size=(6, 5)).astype(dtype)
    s = scale_params(rng, (6, 5), scale).astype(dtype)
    prior = kl_fast.gaussian_kl(mu, s, scale=scale, backend=backend)
    explicit = kl_fast.gaussian_kl(mu, s, np.zeros_like(mu), unit_scale(scale, s), scale=scale,
                                   backend=backend)
    assert prior.dtype == explicit.dtype == dtype
    np.testing.assert_allclose(prior, explicit, rtol=2 * np.finfo(dtype).eps)
    expected = ref.gaussian_kl(mu.astype(np.float64), s.astype(np.float64), scale=scale)
    np.testing.assert_allclose(prior, expected, rtol=2 * np.finfo(dtype).eps)


def test_gaussian_kl_prior_is_the_vae_term(backend, rng):
    mu, logvar = rng.normal(size=(5, 4)), rng.uniform(-2, 2, size=(5, 4))
    vae = 0.5 * np.sum(mu**2 + np.exp(logvar) - logvar - 1.0, axis=-1)
    np.testing.assert_allclose(kl_fast.gaussian_kl(mu, logvar, scale="logvar", backend=backend),
                               vae, rtol=1e-12)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_scales_describe_the_same_gaussians(backend, scale, rng):
    mu1, mu2 = rng.normal(size=(2, 4, 3))
    var1, var2 = rng.uniform(0.2, 4.0, size=(2, 4, 3))
    param = {"var": lambda v: v, "std": np.sqrt, "logvar": np.log,
             "logstd": lambda v: 0.5 * np.log(v)}[scale]
    result = kl_fast.gaussian_kl(mu1, param(var1), mu2, param(var2), scale=scale,
                                 backend=backend)
    np.testing.assert_allclose(result, ref.gaussian_kl(mu1, var1, mu2, var2), rtol=1e-12)
