"""Every backend, dtype and memory layout against the naive oracle and against scipy.

The oracle (``reference.py``) runs on the float64 values the inputs hold; a
float32 result must be the oracle's value rounded to float32 (within one
float32 ulp), a float64 result must agree to ~1e-12 relative (these are
generic inputs, far from the cancellation that ``test_accuracy.py`` covers).
"""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import torch
from scipy.spatial.distance import jensenshannon

import kl_fast

from . import reference as ref
from .conftest import BACKENDS, COMPILED_BACKENDS
from .layouts import LAYOUTS, make_layout

PROB_FUNCS = {
    "kl": (kl_fast.kl_divergence, ref.kl, 2),
    "js": (kl_fast.js_divergence, ref.js, 2),
    "cross_entropy": (kl_fast.cross_entropy, ref.cross_entropy, 2),
    "entropy": (kl_fast.entropy, ref.entropy, 1),
}
SCALES = ("var", "std", "logvar", "logstd")


def call(name, args, **kwargs):
    fn, _, n_args = PROB_FUNCS[name]
    return fn(*args[:n_args], **kwargs)


def oracle(name, args, **kwargs):
    _, fn, n_args = PROB_FUNCS[name]
    return fn(*args[:n_args], **kwargs)


def assert_matches(result, expected):
    """`result` (float32 or float64) is the oracle's float64 value to the result's precision."""
    result = np.asarray(result)
    if result.dtype == np.float32:
        np.testing.assert_allclose(result.astype(np.float64), expected,
                                   rtol=2 * np.finfo(np.float32).eps, atol=1e-30)
    else:
        assert result.dtype == np.float64
        np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-15)


def probabilities(rng, shape, dtype=np.float64, zeros=True):
    """Random distributions along the last axis, some entries exactly 0 (in p only)."""
    x = rng.dirichlet(np.full(shape[-1], 0.8), size=shape[:-1])
    if zeros:
        x[..., 1] = 0.0
        x /= x.sum(axis=-1, keepdims=True)
    return x.astype(dtype)


def gaussian_params(rng, shape, scale, dtype=np.float64):
    mu = rng.normal(size=shape)
    if scale in ("var", "std"):
        s = rng.uniform(0.5, 2.0, size=shape)
    else:
        s = rng.uniform(-1.0, 1.0, size=shape)
    return mu.astype(dtype), s.astype(dtype)


def expected_dtype(*arrays):
    dtypes = [np.asarray(a).dtype for a in arrays]
    if all(d.kind == "f" and d.itemsize <= 4 for d in dtypes):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


# -- the oracle, across layouts --------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_probability_functions_match_reference_across_layouts(backend, dtype, name, shape,
                                                              layout, rng, tmp_path):
    p = make_layout(layout, probabilities(rng, shape, dtype), tmp_path)
    q = make_layout(layout, probabilities(rng, shape, dtype, zeros=False), tmp_path)
    result = call(name, (p.data, q.data), normalize=p.normalize, backend=backend)
    expected = oracle(name, (p.values, q.values), normalize=p.normalize)
    assert np.shape(result) == expected.shape
    assert result.dtype == expected_dtype(p.data, q.data)
    assert_matches(result, expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("prior", [False, True], ids=["two", "prior"])
@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_matches_reference_across_layouts(backend, dtype, scale, prior, layout,
                                                      rng, tmp_path):
    mu1, s1 = (make_layout(layout, a, tmp_path) for a in gaussian_params(rng, (3, 5), scale, dtype))
    mu2, s2 = (make_layout(layout, a, tmp_path) for a in gaussian_params(rng, (3, 5), scale, dtype))
    if prior:
        result = kl_fast.gaussian_kl(mu1.data, s1.data, scale=scale, backend=backend)
        expected = ref.gaussian_kl(mu1.values, s1.values, scale=scale)
    else:
        result = kl_fast.gaussian_kl(mu1.data, s1.data, mu2.data, s2.data, scale=scale,
                                     backend=backend)
        expected = ref.gaussian_kl(mu1.values, s1.values, mu2.values, s2.values, scale=scale)
    assert result.shape == (3,)
    assert result.dtype == expected_dtype(mu1.data, s1.data)
    assert_matches(result, expected)


LABEL_LAYOUTS = ("C", "strided", "reversed", "big-endian", "readonly", "list", "broadcast")
LABEL_CASES = [("C", q) for q in LAYOUTS] + [(lab, "C") for lab in LABEL_LAYOUTS[1:]]


@pytest.mark.parametrize(("label_layout", "q_layout"), LABEL_CASES,
                         ids=[f"labels_{a}-q_{b}" for a, b in LABEL_CASES])
def test_cross_entropy_labels_match_reference_across_layouts(backend, dtype, q_layout,
                                                             label_layout, rng, tmp_path):
    q = make_layout(q_layout, probabilities(rng, (5, 4), dtype, zeros=False), tmp_path)
    labels = make_layout(label_layout, rng.integers(0, 4, size=5), tmp_path)
    result = kl_fast.cross_entropy(labels.data, q.data, normalize=q.normalize, backend=backend)
    expected = ref.cross_entropy_labels(np.asarray(labels.data), q.values, normalize=q.normalize)
    assert result.dtype == expected_dtype(q.data)
    assert_matches(result, expected)


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int32, np.uint64, np.int64])
def test_cross_entropy_labels_accept_every_integer_dtype(backend, label_dtype, rng):
    q = probabilities(rng, (6, 5), zeros=False)
    labels = rng.integers(0, 5, size=6).astype(label_dtype)
    result = kl_fast.cross_entropy(labels, q, backend=backend)
    assert_matches(result, ref.cross_entropy_labels(labels.astype(np.int64), q))


# -- scipy and torch as second opinions -------------------------------------------------------

def test_kl_matches_scipy_rel_entr_sum(backend, dtype, rng):
    p, q = probabilities(rng, (8, 9), dtype), probabilities(rng, (8, 9), dtype)
    expected = scipy.special.rel_entr(p.astype(np.float64), q.astype(np.float64)).sum(axis=-1)
    assert_matches(kl_fast.kl_divergence(p, q, backend=backend), expected)


def test_entropy_matches_scipy_stats_entropy(backend, dtype, rng):
    p = probabilities(rng, (8, 9), dtype)
    expected = scipy.stats.entropy(p.astype(np.float64), axis=-1)
    assert_matches(kl_fast.entropy(p, backend=backend), expected)


def test_kl_matches_scipy_stats_entropy_with_counts(backend, rng):
    p, q = rng.integers(1, 20, size=(2, 8, 9))
    expected = scipy.stats.entropy(p, q, axis=-1)
    result = kl_fast.kl_divergence(p, q, normalize=True, backend=backend)
    np.testing.assert_allclose(result, expected, rtol=1e-12)


def test_js_matches_scipy_jensenshannon_squared(backend, dtype, rng):
    p, q = probabilities(rng, (8, 9), dtype), probabilities(rng, (8, 9), dtype)
    expected = jensenshannon(p.astype(np.float64), q.astype(np.float64), axis=-1) ** 2
    result = kl_fast.js_divergence(p, q, backend=backend)
    if dtype == np.float32:
        assert_matches(result, expected)
    else:  # scipy takes a square root and squares back: ~1e-15 absolute
        np.testing.assert_allclose(result, expected, rtol=1e-10)


def test_js_base2_matches_scipy_jensenshannon_base2(backend, rng):
    p, q = probabilities(rng, (8, 9)), probabilities(rng, (8, 9))
    expected = jensenshannon(p, q, axis=-1, base=2) ** 2
    np.testing.assert_allclose(kl_fast.js_divergence(p, q, base=2, backend=backend), expected,
                               rtol=1e-10)


def test_cross_entropy_matches_scipy_xlogy(backend, dtype, rng):
    p, q = probabilities(rng, (8, 9), dtype), probabilities(rng, (8, 9), dtype, zeros=False)
    expected = -scipy.special.xlogy(p.astype(np.float64), q.astype(np.float64)).sum(axis=-1)
    assert_matches(kl_fast.cross_entropy(p, q, backend=backend), expected)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_matches_torch_normal_kl(backend, scale, rng):
    mu1, s1 = gaussian_params(rng, (4, 6), scale)
    mu2, s2 = gaussian_params(rng, (4, 6), scale)
    std = {"var": np.sqrt, "std": lambda s: s, "logvar": lambda s: np.exp(0.5 * s),
           "logstd": np.exp}[scale]
    normal = torch.distributions.Normal
    expected = torch.distributions.kl_divergence(
        normal(torch.from_numpy(mu1), torch.from_numpy(std(s1))),
        normal(torch.from_numpy(mu2), torch.from_numpy(std(s2))),
    ).sum(-1).numpy()
    result = kl_fast.gaussian_kl(mu1, s1, mu2, s2, scale=scale, backend=backend)
    np.testing.assert_allclose(result, expected, rtol=1e-10)


# -- dtype rules -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("p_dtype", "q_dtype", "out_dtype"),
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.float16, np.float16, np.float32),
        (np.float16, np.float32, np.float32),
        (np.int64, np.int64, np.float64),
        (np.uint8, np.int32, np.float64),
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
        (np.int64, np.float32, np.float64),
    ],
)
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_result_dtype_follows_input_dtypes(backend, name, p_dtype, q_dtype, out_dtype, rng):
    counts = rng.integers(1, 9, size=(2, 3, 5))
    p, q = counts[0].astype(p_dtype), counts[1].astype(q_dtype)
    result = call(name, (p, q), normalize=True, backend=backend)
    if name == "entropy":  # p alone decides
        out_dtype = expected_dtype(p)
    assert result.dtype == out_dtype
    expected = oracle(name, (p.astype(np.float64), q.astype(np.float64)), normalize=True)
    assert_matches(result, expected)


@pytest.mark.parametrize(
    ("dtypes", "out_dtype"),
    [
        ((np.float32, np.float32), np.float32),
        ((np.float16, np.float16), np.float32),
        ((np.float64, np.float32), np.float64),
        ((np.int64, np.int64), np.float64),
    ],
)
def test_gaussian_kl_dtype_follows_input_dtypes(backend, dtypes, out_dtype, rng):
    mu = rng.integers(-3, 4, size=(2, 5)).astype(dtypes[0])
    var = rng.integers(1, 4, size=(2, 5)).astype(dtypes[1])
    result = kl_fast.gaussian_kl(mu, var, backend=backend)
    assert result.dtype == out_dtype
    assert_matches(result, ref.gaussian_kl(mu.astype(np.float64), var.astype(np.float64)))


# -- compiled backends agree bit for bit ------------------------------------------------------

needs_two_compiled = pytest.mark.skipif(
    len(COMPILED_BACKENDS) < 2, reason=f"only {COMPILED_BACKENDS} compiled backend(s) available")


@needs_two_compiled
@pytest.mark.parametrize("shape", [(7, 13), (3, 20_000), (2, 4, 9)], ids=["small", "long", "3d"])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_compiled_backends_agree_exactly(name, shape, dtype, rng):
    p, q = probabilities(rng, shape, dtype), probabilities(rng, shape, dtype, zeros=False)
    results = [call(name, (p, q), backend=b) for b in COMPILED_BACKENDS]
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@needs_two_compiled
@pytest.mark.parametrize("scale", SCALES)
def test_compiled_backends_agree_exactly_on_gaussian_kl(scale, dtype, rng):
    mu1, s1 = gaussian_params(rng, (5, 11), scale, dtype)
    mu2, s2 = gaussian_params(rng, (5, 11), scale, dtype)
    for args in [(mu1, s1, mu2, s2), (mu1, s1)]:
        results = [kl_fast.gaussian_kl(*args, scale=scale, backend=b) for b in COMPILED_BACKENDS]
        for other in results[1:]:
            np.testing.assert_array_equal(results[0], other)


@needs_two_compiled
def test_compiled_backends_agree_exactly_on_labels_and_smoothing(dtype, rng):
    q = probabilities(rng, (9, 6), dtype)
    labels = rng.integers(0, 6, size=9)
    for kwargs in [{}, {"eps": 1e-3}, {"normalize": True}]:
        results = [kl_fast.cross_entropy(labels, q, backend=b, **kwargs)
                   for b in COMPILED_BACKENDS]
        for other in results[1:]:
            np.testing.assert_array_equal(results[0], other)


# -- axes, broadcasting and result shapes -----------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, -2, 2])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_any_axis_matches_reference_on_moved_axis(backend, name, axis, rng):
    p = np.moveaxis(probabilities(rng, (3, 4, 5)), -1, axis)
    q = np.moveaxis(probabilities(rng, (3, 4, 5), zeros=False), -1, axis)
    result = call(name, (p, q), axis=axis, backend=backend)
    expected = oracle(name, (np.moveaxis(p, axis, -1), np.moveaxis(q, axis, -1)))
    assert result.shape == expected.shape
    assert_matches(result, expected)


@pytest.mark.parametrize("axis", [0, 1, None])
def test_gaussian_kl_axis_matches_reference(backend, axis, rng):
    mu1, v1 = gaussian_params(rng, (3, 4), "var")
    mu2, v2 = gaussian_params(rng, (3, 4), "var")
    result = kl_fast.gaussian_kl(mu1, v1, mu2, v2, axis=axis, backend=backend)
    if axis is None:
        expected = ref.gaussian_kl(mu1, v1, mu2, v2, elementwise=True)
    else:
        moved = [np.moveaxis(a, axis, -1) for a in (mu1, v1, mu2, v2)]
        expected = ref.gaussian_kl(*moved)
    assert result.shape == expected.shape
    assert_matches(result, expected)


@pytest.mark.parametrize("name", ["kl", "js", "cross_entropy"])
def test_batch_broadcasts_against_one_distribution(backend, name, rng):
    p, q = probabilities(rng, (6, 5)), probabilities(rng, (5,), zeros=False)
    result = call(name, (p, q), backend=backend)
    expected = oracle(name, (p, np.broadcast_to(q, p.shape)))
    assert result.shape == (6,)
    assert_matches(result, expected)
    # and the other way round
    assert_matches(call(name, (q, p), backend=backend),
                   oracle(name, (np.broadcast_to(q, p.shape), p)))


@pytest.mark.parametrize("name", ["kl", "js", "cross_entropy"])
def test_batch_axes_broadcast_to_an_outer_product(backend, name, rng):
    p, q = probabilities(rng, (3, 1, 5)), probabilities(rng, (4, 5), zeros=False)
    result = call(name, (p, q), backend=backend)
    expected = oracle(name, (p, q))
    assert result.shape == (3, 4)
    assert_matches(result, expected)


def test_gaussian_kl_broadcasts_batch_against_one_prior(backend, rng):
    mu1, v1 = gaussian_params(rng, (6, 4), "var")
    mu2, v2 = gaussian_params(rng, (4,), "var")
    result = kl_fast.gaussian_kl(mu1, v1, mu2, v2, backend=backend)
    assert_matches(result, ref.gaussian_kl(mu1, v1, mu2, v2))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_keepdims_keeps_the_reduced_axis(backend, name, axis, rng):
    p = np.moveaxis(probabilities(rng, (3, 4, 5)), -1, axis)
    q = np.moveaxis(probabilities(rng, (3, 4, 5), zeros=False), -1, axis)
    result = call(name, (p, q), axis=axis, keepdims=True, backend=backend)
    plain = call(name, (p, q), axis=axis, backend=backend)
    assert result.shape == np.expand_dims(plain, axis).shape
    np.testing.assert_array_equal(result, np.expand_dims(plain, axis))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_reduction_matches_reference(backend, dtype, name, reduction, rng):
    p, q = probabilities(rng, (2, 3, 5), dtype), probabilities(rng, (2, 3, 5), dtype, zeros=False)
    result = call(name, (p, q), reduction=reduction, backend=backend)
    per_row = oracle(name, (p, q))
    assert np.ndim(result) == 0
    assert isinstance(result, np.floating) and result.dtype == dtype
    assert_matches(result, ref.reduce(per_row, reduction))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reduction_with_keepdims_has_all_axes_of_length_one(backend, reduction, rng):
    p, q = probabilities(rng, (2, 3, 5)), probabilities(rng, (2, 3, 5), zeros=False)
    result = kl_fast.kl_divergence(p, q, reduction=reduction, keepdims=True, backend=backend)
    assert result.shape == (1, 1, 1)
    assert_matches(result, np.full((1, 1, 1), ref.reduce(ref.kl(p, q), reduction)))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gaussian_kl_reduction_matches_reference(backend, reduction, rng):
    mu, lv = gaussian_params(rng, (5, 3), "logvar")
    result = kl_fast.gaussian_kl(mu, lv, scale="logvar", reduction=reduction, backend=backend)
    assert_matches(result, ref.reduce(ref.gaussian_kl(mu, lv, scale="logvar"), reduction))


@pytest.mark.parametrize("out_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_out_receives_the_result(backend, name, out_dtype, rng):
    p, q = probabilities(rng, (2, 3, 5)), probabilities(rng, (2, 3, 5), zeros=False)
    out = np.full((2, 3), -1.0, dtype=out_dtype)
    returned = call(name, (p, q), out=out, backend=backend)
    assert returned is out
    assert_matches(out, oracle(name, (p, q)))  # float32 out: the float64 result, rounded


def test_out_may_be_a_strided_view(backend, rng):
    p, q = probabilities(rng, (4, 5)), probabilities(rng, (4, 5), zeros=False)
    buffer = np.full(8, -1.0)
    returned = kl_fast.kl_divergence(p, q, out=buffer[::2], backend=backend)
    assert_matches(returned, ref.kl(p, q))
    np.testing.assert_array_equal(buffer[1::2], -1.0)
    assert_matches(buffer[::2], ref.kl(p, q))


def test_gaussian_kl_out_receives_the_result(backend, rng):
    mu, var = gaussian_params(rng, (4, 3), "var")
    out = np.empty(4)
    assert kl_fast.gaussian_kl(mu, var, out=out, backend=backend) is out
    assert_matches(out, ref.gaussian_kl(mu, var))


@pytest.mark.parametrize("base", [2, 10, np.e, 0.5])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_base_scales_the_result(backend, name, base, rng):
    p, q = probabilities(rng, (4, 5)), probabilities(rng, (4, 5), zeros=False)
    result = call(name, (p, q), base=base, backend=backend)
    assert_matches(result, oracle(name, (p, q), base=base))


def test_base_two_gives_one_bit_for_a_fair_coin(backend):
    assert kl_fast.entropy([0.5, 0.5], base=2, backend=backend) == 1.0
    assert kl_fast.js_divergence([1.0, 0.0], [0.0, 1.0], base=2, backend=backend) == 1.0


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_base_two_matches_reference(backend, scale, rng):
    mu, s = gaussian_params(rng, (3, 4), scale)
    result = kl_fast.gaussian_kl(mu, s, scale=scale, base=2, backend=backend)
    assert_matches(result, ref.gaussian_kl(mu, s, scale=scale, base=2))


@pytest.mark.parametrize("name", PROB_FUNCS)
def test_single_distribution_returns_numpy_scalar(backend, dtype, name, rng):
    p, q = probabilities(rng, (6,), dtype), probabilities(rng, (6,), dtype, zeros=False)
    result = call(name, (p, q), backend=backend)
    assert isinstance(result, np.floating) and not isinstance(result, np.ndarray)
    assert result.dtype == dtype
    assert_matches(result, oracle(name, (p, q)))


def test_single_label_returns_numpy_scalar(backend, dtype, rng):
    q = probabilities(rng, (6,), dtype, zeros=False)
    result = kl_fast.cross_entropy(np.int64(3), q, backend=backend)
    assert isinstance(result, np.floating) and result.dtype == dtype
    assert_matches(result, ref.cross_entropy_labels(3, q))


def test_gaussian_kl_single_vector_returns_numpy_scalar(backend, dtype, rng):
    mu, var = gaussian_params(rng, (5,), "var", dtype)
    result = kl_fast.gaussian_kl(mu, var, backend=backend)
    assert isinstance(result, np.floating) and result.dtype == dtype
    assert_matches(result, ref.gaussian_kl(mu, var))


def test_gaussian_kl_scalars_elementwise_return_numpy_scalar(backend):
    result = kl_fast.gaussian_kl(0.0, 1.0, 1.0, 2.0, axis=None, backend=backend)
    assert isinstance(result, np.float64)
    assert_matches(result, ref.gaussian_kl(0.0, 1.0, 1.0, 2.0, elementwise=True))


def test_auto_backend_matches_every_named_backend(rng):
    p, q = probabilities(rng, (5, 7)), probabilities(rng, (5, 7), zeros=False)
    auto = kl_fast.kl_divergence(p, q)
    for name in BACKENDS:
        np.testing.assert_allclose(kl_fast.kl_divergence(p, q, backend=name), auto, rtol=1e-13)
