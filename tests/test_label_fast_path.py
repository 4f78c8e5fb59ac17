"""cross_entropy(labels, q)'s one-kernel shortcut (_labels.fast_label_rows) gives the
general path's bits, types and errors, and steps aside for every call it does not cover."""

import numpy as np
import pytest

import kl_fast
from kl_fast import _labels

from . import reference as ref


def _data(rng, dtype, n=300, k=7):
    q = rng.dirichlet(np.ones(k), size=n).astype(dtype)
    return rng.integers(0, k, size=n), q


def _general(y, q, **kw):
    # an ignore_index no label equals takes the general path with the same kernel
    return kl_fast.cross_entropy(y, q, ignore_index=-1000, **kw)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("validate", [True, False])
def test_shortcut_equals_the_general_path_bit_for_bit(backend, dtype, reduction, validate, rng):
    y, q = _data(rng, dtype)
    assert _labels.fast_label_rows(y, q, -1, None, 0.0, False, reduction, False, None, backend,
                                   None, validate, None) is not None
    got = kl_fast.cross_entropy(y, q, reduction=reduction, validate=validate, backend=backend)
    want = _general(y, q, reduction=reduction, validate=validate, backend=backend)
    assert type(got) is type(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype == q.dtype
    assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64),
                               ref.reduce(ref.cross_entropy_labels(y, q), reduction),
                               rtol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("change, match", [
    (lambda y, q: (np.where(np.arange(y.size) == 5, 99, y), q), "outside \\[0, 7\\)"),
    (lambda y, q: (y, np.where(np.arange(q.shape[1]) == y[:, None], np.nan, q)), "q"),
    (lambda y, q: (y, q * 3.0), "q"),
])
def test_a_reported_problem_falls_back_to_the_worded_error(change, match, rng):
    y, q = change(*_data(rng, np.float64))
    assert _labels.fast_label_rows(y, q, -1, None, 0.0, False, "none", False, None, "auto",
                                   None, True, None) is None
    with pytest.raises(ValueError, match=match):
        kl_fast.cross_entropy(y, q)


@pytest.mark.parametrize("call", [
    lambda y, q: (y.astype(np.int32), q),                    # another label dtype
    lambda y, q: (y, q.astype(">f8")),                       # byte-swapped
    lambda y, q: (y[:, None], q[:, None, :]),                 # a batch axis more
    lambda y, q: (y[:0], q[:0]),                             # no rows
    lambda y, q: (list(y), q),                               # not an ndarray
])
def test_other_inputs_take_the_general_path_with_the_same_values(call, rng):
    y, q = _data(rng, np.float64)
    y2, q2 = call(y, q)
    assert _labels.fast_label_rows(y2, q2, -1, None, 0.0, False, "none", False, None, "auto",
                                   None, True, None) is None
    np.testing.assert_array_equal(np.asarray(kl_fast.cross_entropy(y2, q2)).reshape(-1),
                                  np.asarray(_general(y, q)).reshape(-1)[:len(y2)])


@pytest.mark.parametrize("keywords", [
    {"base": 2.0}, {"eps": 1e-3}, {"normalize": True}, {"keepdims": True}, {"num_threads": 1},
    {"validate": "full"}, {"sum_tol": 1e-3}, {"axis": 0}, {"reduction": "median"},
    {"backend": "fortran"}, {"out": np.empty(300)},
])
def test_non_default_keywords_step_aside(keywords, rng):
    y, q = _data(rng, np.float64)
    args = {"axis": -1, "base": None, "eps": 0.0, "normalize": False, "reduction": "none",
            "keepdims": False, "out": None, "backend": "auto", "num_threads": None,
            "validate": True, "sum_tol": None, **keywords}
    assert _labels.fast_label_rows(y, q, args["axis"], args["base"], args["eps"],
                                   args["normalize"], args["reduction"], args["keepdims"],
                                   args["out"], args["backend"], args["num_threads"],
                                   args["validate"], args["sum_tol"]) is None
