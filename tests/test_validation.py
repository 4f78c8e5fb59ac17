"""Every error: its type, and that its message names the argument, the reason and the fix.

The data checks (bad values, row sums, labels) run inside each backend's
kernels, so they are swept over every backend; the argument checks run
before dispatch but are swept too, which costs nothing.

Messages are matched on content, not on numpy's repr of a value.  The
numpy backend's floating-point warnings on invalid input are quieted with
``np.errstate`` here and checked on their own (``test_*_without_runtime_warning``).
"""

import contextlib
import re

import numpy as np
import pytest

import kl_fast
from kl_fast._engine import backends as _backends

from . import reference as ref

SCALES = ("var", "std", "logvar", "logstd")
PROB_FUNCS = {
    "kl": kl_fast.kl_divergence,
    "js": kl_fast.js_divergence,
    "cross_entropy": kl_fast.cross_entropy,
    "entropy": kl_fast.entropy,
}
N_ARGS = {"kl": 2, "js": 2, "cross_entropy": 2, "entropy": 1}
FUNC_ARGS = [(name, arg) for name in PROB_FUNCS for arg in ("p", "q")[:N_ARGS[name]]]
FUNC_ARG_IDS = [f"{name}-{arg}" for name, arg in FUNC_ARGS]


def call(name, p, q, **kwargs):
    return PROB_FUNCS[name](*(p, q)[:N_ARGS[name]], **kwargs)


@contextlib.contextmanager
def raises(exc, match):
    with pytest.raises(exc, match=match) as info, np.errstate(all="ignore"):
        yield info


def uniform(shape):
    return np.full(shape, 1.0 / shape[-1])


# -- negative, NaN and inf values ---------------------------------------------------------------

BAD_VALUES = [(-0.25, r"-0\.25"), (np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")]


@pytest.mark.parametrize(("bad", "bad_re"), BAD_VALUES, ids=["negative", "nan", "inf", "-inf"])
@pytest.mark.parametrize(("name", "arg"), FUNC_ARGS, ids=FUNC_ARG_IDS)
def test_invalid_value_names_argument_and_first_index(backend, name, arg, bad, bad_re):
    x = {"p": uniform((3, 4)), "q": uniform((3, 4))}
    x[arg][1, 2] = bad
    x[arg][2, 0] = -1.0           # a second bad value, later in C order
    pattern = (rf"^{arg} contains an invalid value, .*{bad_re}.* at index "
               r"\(1, 2\) \(2 invalid value\(s\) in the inputs\): "
               r"probabilities \(or counts\) must be "
               r"finite and >= 0.*validate=False")
    with raises(ValueError, pattern):
        call(name, x["p"], x["q"], backend=backend)


@pytest.mark.parametrize("kwargs", [{"normalize": True}, {"eps": 0.1}, {"base": 2}])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_invalid_value_is_caught_with_any_keywords(backend, name, kwargs):
    p = uniform((2, 5))
    p[1, 3] = np.nan
    with raises(ValueError, r"^p contains an invalid value, .* at index \(1, 3\) \(1 invalid"):
        call(name, p, uniform((2, 5)), backend=backend, **kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"normalize": True}, {"eps": 0.1}])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", sorted(set(PROB_FUNCS) | {"hellinger", "chi2", "tv", "renyi"}))
def test_negative_zero_is_a_valid_probability(backend, name, dtype, kwargs, rng):
    # The kernels flag a block by the sign bits of its values and count the bad
    # values exactly only then: -0.0 sets a sign bit, must not be counted, and
    # must give the bits that +0.0 gives.
    funcs = {**PROB_FUNCS, "hellinger": kl_fast.hellinger_distance,
             "chi2": kl_fast.chi2_divergence, "tv": kl_fast.total_variation,
             "renyi": lambda *a, **k: kl_fast.renyi_divergence(*a, alpha=0.7, **k)}
    p = rng.dirichlet(np.ones(300), size=5).astype(dtype)
    q = rng.dirichlet(np.ones(300), size=5).astype(dtype)
    p[:, ::7] = 0.0
    q[:, 1::11] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    q /= q.sum(axis=1, keepdims=True)
    signed_p, signed_q = p.copy(), q.copy()
    signed_p[:, ::7] = -0.0
    signed_q[:, 1::11] = -0.0
    args = (p,) if name == "entropy" else (p, q)
    signed = (signed_p,) if name == "entropy" else (signed_p, signed_q)
    expected = funcs[name](*args, backend=backend, **kwargs)
    np.testing.assert_array_equal(funcs[name](*signed, backend=backend, **kwargs), expected)


def test_invalid_value_reports_the_earliest_row_across_arguments(backend):
    p, q = uniform((4, 3)), uniform((4, 3))
    p[3, 0] = -1.0
    q[1, 2] = np.nan
    with raises(ValueError, r"^q contains an invalid value, .* at index \(1, 2\) \(\d+ invalid"):
        kl_fast.kl_divergence(p, q, backend=backend)


def test_invalid_value_count_covers_all_inputs(backend):
    # the first bad value (row order) is named; the count is over every input
    p, q = uniform((4, 3)), uniform((4, 3))
    p[3, 0] = -1.0
    q[1, 2] = np.nan
    with raises(ValueError, r"^q contains an invalid value, nan at index \(1, 2\) \(2 invalid"):
        kl_fast.kl_divergence(p, q, backend=backend)


def test_invalid_value_index_is_in_the_argument_own_coordinates(backend):
    # q of shape (K,) broadcast against p (N, K): the index is q's own, (2,)
    q = uniform((4,))
    q[2] = np.inf
    with raises(ValueError, r"^q contains an invalid value, .* at index \(2,\) \(\d+ invalid"):
        kl_fast.kl_divergence(uniform((3, 4)), q, backend=backend)
    # a category axis other than the last: the index is in the input's layout
    p = uniform((3, 5)).T.copy()  # (5, 3), axis 0
    p[4, 1] = -0.5
    with raises(ValueError, r"^p contains an invalid value, .* at index \(4, 1\) \(1 invalid"):
        kl_fast.kl_divergence(p, uniform((3, 5)).T, axis=0, backend=backend)


def test_invalid_value_in_one_distribution_has_a_1d_index(backend):
    with raises(ValueError, r"^p contains an invalid value, .* at index \(1,\) \(1 invalid"):
        kl_fast.entropy([0.5, -0.5, 1.0], backend=backend)


def test_invalid_value_far_into_a_long_batch_is_found(backend, rng):
    p = rng.dirichlet(np.ones(16), size=20_000)
    p[15_432, 7] = np.nan
    with raises(ValueError, r"^p contains an invalid value, .* at index \(15432, 7\) \(1 invalid"):
        kl_fast.kl_divergence(p, rng.dirichlet(np.ones(16), size=20_000), backend=backend)


def test_invalid_value_in_a_long_row_is_found(backend, rng):
    p = rng.dirichlet(np.ones(50_000))
    p[41_000] = -1e-3
    with raises(ValueError, r"^p contains an invalid value, .* at index \(41000,\) \(1 invalid"):
        kl_fast.entropy(p, backend=backend)


@pytest.mark.parametrize("case", ["js-inf", "kl-inf-normalize", "kl-zero-row-normalize",
                                  "entropy-inf-eps"])
def test_invalid_input_raises_without_runtime_warning(backend, case):
    name, value, kwargs = {
        "js-inf": ("js", np.inf, {}),
        "kl-inf-normalize": ("kl", np.inf, {"normalize": True}),
        "kl-zero-row-normalize": ("kl", 0.0, {"normalize": True}),
        "entropy-inf-eps": ("entropy", np.inf, {"eps": 0.1}),
    }[case]
    p = uniform((2, 3))
    p[1] = [value, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"^p"):  # no errstate: a warning would fail this test
        call(name, p, uniform((2, 3)), backend=backend, **kwargs)


def test_row_sum_overflow_is_reported_without_runtime_warning(backend):
    with pytest.raises(ValueError, match="must sum to 1"):
        kl_fast.kl_divergence([1e308, 1e308, 1e308], [0.2, 0.3, 0.5], backend=backend)


# -- rows that do not sum to one --------------------------------------------------------------

def test_row_sum_error_names_row_and_sum_and_suggests_normalize(backend):
    p = uniform((3, 4))
    p[1] = [0.5, 0.25, 0.125, 0.0625]      # sums to 0.9375 exactly
    pattern = (r"^p must sum to 1 along axis 1, but the row at batch index \(1,\) sums to "
               r"0\.9375 \(tolerance .*\)\. Fix: .*pass normalize=True")
    with raises(ValueError, pattern):
        kl_fast.kl_divergence(p, uniform((3, 4)), backend=backend)


@pytest.mark.parametrize("name", PROB_FUNCS)
def test_row_sum_error_for_every_function(backend, name):
    q = uniform((2, 4))
    q[1, 0] = 0.5   # sums to 1.25
    arg = "p" if name == "entropy" else "q"
    x = {"p": q if arg == "p" else uniform((2, 4)), "q": q}
    with raises(ValueError, rf"^{arg} must sum to 1 .*batch index \(1,\) sums to 1\.25"):
        call(name, x["p"], x["q"], backend=backend)


def test_row_sum_error_in_3d_batch_and_other_axis(backend):
    p = uniform((2, 3, 4))
    p[1, 0, 2] = 0.5                        # row (1, 0) sums to 1.25
    with raises(ValueError, r"^p must sum to 1 along axis 2, .*batch index \(1, 0\) sums to 1\.25"):
        kl_fast.entropy(p, backend=backend)
    moved = np.moveaxis(p, -1, 0)           # (4, 2, 3), categories on axis 0
    with raises(ValueError, r"^p must sum to 1 along axis 0, .*batch index \(1, 0\) sums to 1\.25"):
        kl_fast.entropy(moved, axis=0, backend=backend)


def test_row_sum_error_for_one_distribution(backend):
    with raises(ValueError, r"^p must sum to 1 along axis 0, but the distribution sums to 0\.75"):
        kl_fast.kl_divergence([0.5, 0.25], [0.5, 0.5], backend=backend)


def test_row_sum_is_checked_with_eps_but_not_with_normalize(backend):
    p, q = [0.5, 0.25, 0.0], [0.25, 0.25, 0.5]
    with raises(ValueError, r"must sum to 1 .*sums to 0\.75"):
        kl_fast.kl_divergence(p, q, eps=1e-3, backend=backend)
    result = kl_fast.kl_divergence(p, q, normalize=True, backend=backend)
    np.testing.assert_allclose(result, ref.kl(p, q, normalize=True), rtol=1e-14)


@pytest.mark.parametrize("name", PROB_FUNCS)
def test_normalize_rejects_a_row_with_no_mass(backend, name):
    p = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    pattern = (r"^p: the row at batch index \(1,\) sums to 0\.0 along axis 1, so it cannot be "
               r"normalized; .*eps > 0")
    with raises(ValueError, pattern):
        call(name, p, np.ones((2, 3)), normalize=True, backend=backend)


@pytest.mark.parametrize("n", [3, 1000, 100_000])
def test_float32_rows_normalized_in_float32_are_accepted(backend, n, rng):
    x = rng.random((4, n)).astype(np.float32)
    p = x / x.sum(axis=-1, keepdims=True, dtype=np.float32)
    q = p[::-1].copy()
    result = kl_fast.kl_divergence(p, q, backend=backend)
    assert result.dtype == np.float32
    kl_fast.entropy(p, backend=backend)
    kl_fast.js_divergence(p, q, backend=backend)


def test_sum_tolerance_scales_with_dtype(backend):
    # off by 1e-5: rounding for float32, an unnormalized row for float64 (whose
    # default tolerance, 1e-6 for 2 categories, allows for data that were float32 once)
    p = np.array([0.5, 0.5 + 1e-5])
    q = np.array([0.5, 0.5])
    kl_fast.kl_divergence(p.astype(np.float32), q.astype(np.float32), backend=backend)
    with raises(ValueError, "must sum to 1"):
        kl_fast.kl_divergence(p, q, backend=backend)


def test_sum_tolerance_grows_with_row_length(backend):
    # a float32 row off by 5e-4: beyond rounding for 4 categories, within it for 100,000
    for n, ok in [(4, False), (100_000, True)]:
        p = np.full(n, 1.0 / n, dtype=np.float32)
        p[0] += np.float32(5e-4)
        if ok:
            kl_fast.entropy(p, backend=backend)
        else:
            with raises(ValueError, "must sum to 1"):
                kl_fast.entropy(p, backend=backend)


def test_sum_tolerance_rejects_clearly_unnormalized_long_rows(backend):
    for dtype in (np.float32, np.float64):
        p = np.full(100_000, 1.0 / 100_000, dtype=dtype)
        p[0] += dtype(0.01)
        with raises(ValueError, "must sum to 1"):
            kl_fast.entropy(p, backend=backend)


def test_mixed_precision_accepts_float32_rows_normalized_in_float32(backend, rng):
    x = rng.random((4, 100)).astype(np.float32)
    p = x / x.sum(axis=-1, keepdims=True, dtype=np.float32)
    q = rng.dirichlet(np.ones(100), size=4)
    result = kl_fast.kl_divergence(p, q, backend=backend)
    np.testing.assert_allclose(result, ref.kl(p.astype(np.float64), q), rtol=1e-12)


# -- shapes and axes --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["kl", "js", "cross_entropy"])
def test_shapes_that_do_not_broadcast_raise(backend, name):
    with raises(ValueError, r"^shapes do not broadcast: p \(3, 4\), q \(2, 4\)"):
        call(name, uniform((3, 4)), uniform((2, 4)), backend=backend)


def test_gaussian_shapes_that_do_not_broadcast_raise(backend):
    with raises(ValueError, r"^shapes do not broadcast: mu1 \(3,\), s1 \(3,\), mu2 \(2,\)"):
        kl_fast.gaussian_kl(np.zeros(3), np.ones(3), np.zeros(2), np.ones(2), backend=backend)


@pytest.mark.parametrize("axis", [2, -3, 100])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_axis_out_of_range_raises_value_error(backend, name, axis):
    with raises(ValueError, rf"^axis {axis} is out of bounds .* use an axis in \[-2, 1\]"):
        call(name, uniform((3, 4)), uniform((3, 4)), axis=axis, backend=backend)


@pytest.mark.parametrize("axis", [1.0, "1", None, True, [0]])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_axis_that_is_not_an_int_raises_type_error(backend, name, axis):
    with raises(TypeError, "^axis must be an int"):
        call(name, uniform((3, 4)), uniform((3, 4)), axis=axis, backend=backend)


def test_axis_out_of_range_raises_for_labels_and_gaussians(backend):
    with raises(ValueError, "^axis 3 is out of bounds for q"):
        kl_fast.cross_entropy(np.zeros(3, int), uniform((3, 4)), axis=3, backend=backend)
    with raises(ValueError, "^axis 2 is out of bounds for mu1 and s1"):
        kl_fast.gaussian_kl(np.zeros((3, 4)), np.ones((3, 4)), axis=2, backend=backend)
    with raises(TypeError, "^axis must be an int"):
        kl_fast.gaussian_kl(np.zeros((3, 4)), np.ones((3, 4)), axis=1.5, backend=backend)


@pytest.mark.parametrize("name", PROB_FUNCS)
def test_empty_category_axis_raises(backend, name):
    with raises(ValueError, r"category axis -1 of .*\(shape \(3, 0\)\) is empty"):
        call(name, np.ones((3, 0)), np.ones((3, 0)), backend=backend)


def test_empty_category_axis_raises_for_gaussians_and_labels(backend):
    with raises(ValueError, r"category axis -1 of mu1 and s1 \(shape \(3, 0\)\) is empty"):
        kl_fast.gaussian_kl(np.zeros((3, 0)), np.ones((3, 0)), backend=backend)
    with raises(ValueError, r"category axis 1 of p \(labels\) and q \(shape \(3, 0\)\) is empty"):
        kl_fast.cross_entropy(np.zeros(3, int), np.ones((3, 0)), backend=backend)


@pytest.mark.parametrize("name", PROB_FUNCS)
def test_zero_dimensional_input_raises(backend, name):
    with raises(ValueError, "0-d; they need an axis of categories"):
        call(name, 0.5, 0.5, backend=backend)


def test_zero_dimensional_gaussian_is_one_univariate_gaussian(backend):
    expected = 0.5 * (1.0 + 2.0 - np.log(2.0) - 1.0)     # KL(N(1, 2) || N(0, 1))
    for axis in (-1, None):
        got = kl_fast.gaussian_kl(1.0, 2.0, axis=axis, backend=backend)
        assert type(got) is np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-15)


# -- dtypes -----------------------------------------------------------------------------------

BAD_DTYPES = [
    (np.array([0.5 + 0j, 0.5]), "complex"),
    (np.array([True, False]), "bool"),
    (np.array([0.5, 0.5], dtype=object), "object"),
    (np.array(["0.5", "0.5"]), "string"),
    (np.array([b"a", b"b"]), "bytes"),
    (np.array([1, 2], dtype="M8[s]"), "datetime"),
]


@pytest.mark.parametrize(("bad", "kind"), BAD_DTYPES, ids=[k for _, k in BAD_DTYPES])
@pytest.mark.parametrize(("name", "arg"), FUNC_ARGS, ids=FUNC_ARG_IDS)
def test_non_real_dtypes_raise_type_error(backend, name, arg, bad, kind):
    x = {"p": uniform((2,)), "q": uniform((2,))}
    x[arg] = bad
    with raises(TypeError, rf"^{arg} has dtype .*\({kind}\).* must be real numbers: convert "
                           rf"with {arg}\.astype\(np\.float64\)"):
        call(name, x["p"], x["q"], backend=backend)


@pytest.mark.parametrize("arg", ["mu1", "s1", "mu2", "s2"])
def test_gaussian_non_real_dtypes_raise_type_error(backend, arg):
    x = {"mu1": np.zeros(3), "s1": np.ones(3), "mu2": np.zeros(3), "s2": np.ones(3)}
    x[arg] = x[arg].astype(complex)
    with raises(TypeError, rf"^{arg} has dtype complex128 \(complex\)"):
        kl_fast.gaussian_kl(x["mu1"], x["s1"], x["mu2"], x["s2"], backend=backend)


def test_labels_with_complex_q_raise_type_error(backend):
    with raises(TypeError, r"^q has dtype complex128 \(complex\)"):
        kl_fast.cross_entropy(np.array([0, 1]), uniform((2, 3)).astype(complex), backend=backend)


def test_list_of_strings_raises_type_error(backend):
    with raises(TypeError, r"^p has dtype <U3 \(string\)"):
        kl_fast.entropy(["0.5", "0.5"], backend=backend)


# -- labels -----------------------------------------------------------------------------------

@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("bad", [4, -1, 2**40, -100])
def test_labels_out_of_range_raise_even_without_validation(backend, bad, validate):
    labels = np.array([0, 3, bad, 1, bad])
    pattern = (rf"^p holds 2 label\(s\) outside \[0, 4\) for q's 4 categories; the first is "
               rf"{bad} at index \(2,\).*ignore_index")
    with raises(ValueError, pattern):
        kl_fast.cross_entropy(labels, uniform((5, 4)), validate=validate, backend=backend)


def test_labels_out_of_range_raise_besides_ignored_ones(backend):
    labels = np.array([-100, 0, 9])
    with raises(ValueError, r"^p holds 1 label\(s\) outside \[0, 4\).* first is 9 at index \(2,\)"):
        kl_fast.cross_entropy(labels, uniform((3, 4)), ignore_index=-100, validate=False,
                              backend=backend)


def test_labels_out_of_range_in_a_batch_of_rows_report_their_index(backend):
    labels = np.zeros((2, 3), dtype=np.int64)
    labels[1, 2] = 7
    with raises(ValueError, r"first is 7 at index \(1, 2\)"):
        kl_fast.cross_entropy(labels, uniform((2, 3, 5)), backend=backend)


def test_unsigned_labels_beyond_int64_raise(backend):
    labels = np.array([0, 2**64 - 1], dtype=np.uint64)
    with raises(ValueError, "beyond the int64 range"):
        kl_fast.cross_entropy(labels, uniform((2, 3)), backend=backend)


@pytest.mark.parametrize("picked", [1.5, -0.5, np.nan, np.inf])
def test_picked_probability_outside_unit_interval_raises(backend, picked):
    q = uniform((3, 4))
    q[1, 2] = picked
    pattern = (r"^q contains an invalid value, .* at index \(1, 2\) "
               r"\(1 invalid value\(s\) in the inputs\): the probability picked by "
               r"each label must be in \[0, 1\]")
    with raises(ValueError, pattern):
        kl_fast.cross_entropy(np.array([0, 2, 1]), q, backend=backend)


@pytest.mark.parametrize("kwargs", [{"normalize": True}, {"eps": 1e-3}])
def test_smoothed_labels_check_the_whole_row(backend, kwargs):
    q = uniform((3, 4))
    q[1, 0] = -1.0   # not the picked column
    with raises(ValueError, r"^q contains an invalid value, .* at index \(1, 0\) \(1 invalid"):
        kl_fast.cross_entropy(np.array([0, 2, 1]), q, backend=backend, **kwargs)


def test_ignore_index_must_be_an_int(backend):
    for bad in (-100.0, "x", True):
        with raises(TypeError, "^ignore_index must be an int or None"):
            kl_fast.cross_entropy(np.array([0, 1]), uniform((2, 3)), ignore_index=bad,
                                  backend=backend)


def test_ignore_index_needs_labels(backend):
    with raises(ValueError, "^ignore_index applies to integer class labels"):
        kl_fast.cross_entropy(uniform((2, 3)), uniform((2, 3)), ignore_index=-100,
                              backend=backend)


# -- keywords ---------------------------------------------------------------------------------

KEYWORD_ERRORS = [
    ({"reduction": "avg"}, ValueError, r"^reduction must be one of \('none', 'sum', 'mean'\)"),
    ({"reduction": None}, ValueError, "^reduction must be one of"),
    ({"base": 1}, ValueError, "^base must be positive, finite and != 1.*base=2 for bits"),
    ({"base": 0}, ValueError, "^base must be positive"),
    ({"base": -2}, ValueError, "^base must be positive"),
    ({"base": np.inf}, ValueError, "^base must be positive"),
    ({"base": np.nan}, ValueError, "^base must be positive"),
    ({"base": "2"}, TypeError, "^base must be a real number or None, got str"),
    ({"base": True}, TypeError, "^base must be a real number or None, got bool"),
    ({"eps": -1e-3}, ValueError, "^eps must be finite and >= 0"),
    ({"eps": np.nan}, ValueError, "^eps must be finite and >= 0"),
    ({"eps": np.inf}, ValueError, "^eps must be finite and >= 0"),
    ({"eps": "0.1"}, TypeError, "^eps must be a real number"),
    ({"eps": None}, TypeError, "^eps must be a real number"),
    ({"num_threads": 0}, ValueError, "^num_threads=0 is not a thread count"),
    ({"num_threads": 1.5}, TypeError, "^num_threads must be an int or None, got float"),
    ({"num_threads": True}, TypeError, "^num_threads must be an int or None, got bool"),
    ({"num_threads": "2"}, TypeError, "^num_threads must be an int or None, got str"),
    ({"backend": "torch"}, ValueError, r"^unknown backend 'torch'; choose one of"),
    ({"backend": None}, TypeError, "^backend must be a str"),
    ({"normalize": 1}, TypeError, "^normalize must be True or False, got int"),
    ({"keepdims": "yes"}, TypeError, "^keepdims must be True or False, got str"),
    ({"validate": None}, TypeError, "^validate must be True or False, got NoneType"),
]


@pytest.mark.parametrize(("kwargs", "exc", "pattern"), KEYWORD_ERRORS,
                         ids=[",".join(f"{k}={v!r}" for k, v in c[0].items())
                              for c in KEYWORD_ERRORS])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_bad_keyword_raises(backend, name, kwargs, exc, pattern):
    kwargs = {"backend": backend, **kwargs}
    with raises(exc, pattern):
        call(name, uniform((2, 3)), uniform((2, 3)), **kwargs)


@pytest.mark.parametrize(("kwargs", "exc", "pattern"),
                         [c for c in KEYWORD_ERRORS if "normalize" not in c[0]
                          and "eps" not in c[0]])
def test_bad_keyword_raises_for_gaussians(backend, kwargs, exc, pattern):
    kwargs = {"backend": backend, **kwargs}
    with raises(exc, pattern):
        kl_fast.gaussian_kl(np.zeros((2, 3)), np.ones((2, 3)), **kwargs)


def test_unavailable_backend_raises_with_the_reason(monkeypatch):
    monkeypatch.setattr(_backends, "_loaded", {})
    monkeypatch.setattr(_backends, "_errors", {"numba": "ImportError: no numba here"})
    with raises(ValueError, r"^backend 'numba' is not available here \(ImportError: no numba"):
        kl_fast.kl_divergence([0.5, 0.5], [0.5, 0.5], backend="numba")


@pytest.mark.parametrize("scale", ["variance", "VAR", None, 0])
def test_gaussian_bad_scale_raises(backend, scale):
    with raises(ValueError, r"^scale must be one of \('var', 'std', 'logvar', 'logstd'\)"):
        kl_fast.gaussian_kl(np.zeros(3), np.ones(3), scale=scale, backend=backend)


@pytest.mark.parametrize("given", ["mu2", "s2"])
def test_gaussian_needs_both_mu2_and_s2_or_neither(backend, given):
    kwargs = {given: np.ones(3)}
    with raises(ValueError, r"^give both mu2 and s2, or neither"):
        kl_fast.gaussian_kl(np.zeros(3), np.ones(3), backend=backend, **kwargs)


# -- Gaussian values --------------------------------------------------------------------------

GAUSSIAN_BAD = [
    # (scale, argument, bad value, requirement in the message)
    ("var", "s1", 0.0, "variances finite and > 0"),
    ("var", "s2", -1.0, "variances finite and > 0"),
    ("var", "s1", np.inf, "variances finite and > 0"),
    ("var", "mu1", np.nan, "means must be finite"),
    ("var", "mu2", np.inf, "means must be finite"),
    ("std", "s1", 0.0, "standard deviations finite and > 0"),
    ("std", "s2", -0.5, "standard deviations finite and > 0"),
    ("std", "mu1", -np.inf, "means must be finite"),
    ("logvar", "s1", -np.inf, "log-variances must be finite"),
    ("logvar", "s2", np.nan, "log-variances must be finite"),
    ("logstd", "s1", np.inf, "log-standard-deviations must be finite"),
    ("logstd", "mu2", np.nan, "means and log-standard-deviations must be finite"),
]


@pytest.mark.parametrize(("scale", "arg", "bad", "requirement"), GAUSSIAN_BAD,
                         ids=[f"{s}-{a}-{b}" for s, a, b, _ in GAUSSIAN_BAD])
def test_gaussian_invalid_parameter_names_argument_and_index(backend, scale, arg, bad,
                                                             requirement):
    unit = 1.0 if scale in ("var", "std") else 0.0
    x = {"mu1": np.zeros((2, 3)), "s1": np.full((2, 3), unit),
         "mu2": np.zeros((2, 3)), "s2": np.full((2, 3), unit)}
    x[arg][1, 2] = bad
    pattern = (rf"^{arg} contains an invalid value, .* at index \(1, 2\) "
               r"\(1 invalid value\(s\) in the inputs\): "
               rf".*{re.escape(requirement)}")
    with raises(ValueError, pattern):
        kl_fast.gaussian_kl(x["mu1"], x["s1"], x["mu2"], x["s2"], scale=scale, backend=backend)
    if arg in ("mu1", "s1"):
        with raises(ValueError, pattern):
            kl_fast.gaussian_kl(x["mu1"], x["s1"], scale=scale, backend=backend)


@pytest.mark.parametrize("scale", ["logvar", "logstd"])
def test_gaussian_log_scales_accept_any_finite_value(backend, scale):
    s = np.array([-30.0, 0.0, -1.0, 5.0])
    result = kl_fast.gaussian_kl(np.zeros(4), s, scale=scale, axis=None, backend=backend)
    np.testing.assert_allclose(result, ref.gaussian_kl(np.zeros(4), s, scale=scale,
                                                       elementwise=True), rtol=1e-13)


# -- out= -------------------------------------------------------------------------------------

OUT_ERRORS = [
    (lambda: np.empty(4), {}, ValueError, r"^out has shape \(4,\), but the result has shape \(3,"),
    (lambda: np.empty((3, 1)), {}, ValueError, r"^out has shape \(3, 1\), but the result has "),
    (lambda: np.empty(3), {"reduction": "sum"}, ValueError, "^out= needs reduction='none'"),
    (lambda: np.empty(3, dtype=np.int64), {}, TypeError, "^out must have a float dtype"),
    (lambda: [0.0, 0.0, 0.0], {}, TypeError, "^out must be a numpy array or None, got list"),
]


@pytest.mark.parametrize(("make_out", "kwargs", "exc", "pattern"), OUT_ERRORS,
                         ids=["short", "extra-axis", "reduction", "int", "list"])
@pytest.mark.parametrize("name", PROB_FUNCS)
def test_bad_out_raises(backend, name, make_out, kwargs, exc, pattern):
    with raises(exc, pattern):
        call(name, uniform((3, 4)), uniform((3, 4)), out=make_out(), backend=backend, **kwargs)


def test_read_only_out_raises(backend):
    out = np.empty(3)
    out.flags.writeable = False
    with raises(ValueError, "^out is read-only"):
        kl_fast.kl_divergence(uniform((3, 4)), uniform((3, 4)), out=out, backend=backend)


def test_gaussian_out_of_wrong_shape_raises(backend):
    with raises(ValueError, r"^out has shape \(2,\), but the result has shape \(3,\)"):
        kl_fast.gaussian_kl(np.zeros((3, 4)), np.ones((3, 4)), out=np.empty(2), backend=backend)


def test_out_is_left_alone_when_validation_fails(backend):
    out = np.full(2, 7.0)
    p = uniform((2, 3))
    p[0, 0] = np.nan
    with raises(ValueError, "invalid value"):
        kl_fast.kl_divergence(p, uniform((2, 3)), out=out, backend=backend)
    np.testing.assert_array_equal(out, 7.0)


# -- thread-count helpers ---------------------------------------------------------------------

@pytest.mark.parametrize("bad", [0, 2.0, "4", True])
def test_thread_helpers_reject_bad_counts(bad):
    exc = ValueError if bad == 0 and bad is not True else TypeError
    with raises(exc, "^n"):
        kl_fast.set_num_threads(bad)
    with raises(exc, "^n"), kl_fast.threads(bad):
        pass
