"""Odd buffers on every backend and every public function (tests/call_table.py).

Misaligned data (a float64 view at byte offset 1 or 4 of a bytes buffer), zero
strides (``np.broadcast_to``), negative strides, big-endian, read-only memmaps:
each result equals the call on a C-contiguous copy of the same values, bit for
bit on the compiled backends (they sum each row in a fixed order whatever the
strides), within a few ULP on the numpy reference (numpy's pairwise sums
follow the memory order).  Then 0-d inputs, empty batches (N = 0: an empty
result of the right shape and dtype; "sum" is 0 and "mean" NaN, as numpy's
``np.mean([])``), K = 1 and non-native label dtypes.
"""

import numpy as np
import pytest

import kl_fast
from tests.call_table import CALLS

# numba compiles per dtype: float64 only there (its float32 kernels are covered elsewhere)
BACKEND_DTYPES = [(b, d) for b in kl_fast.available_backends()
                  for d in (np.float64, np.float32) if b != "numba" or d == np.float64]


def _misaligned(offset):
    def make(x, tmp_path):
        x = np.ascontiguousarray(x)
        buf = np.zeros(x.nbytes + offset, dtype=np.uint8)
        view = buf[offset:offset + x.nbytes].view(x.dtype).reshape(x.shape)
        view[...] = x
        assert not view.flags.aligned or x.nbytes == 0
        return view
    return make


def _reversed(x, tmp_path):
    rev = (slice(None, None, -1),) * x.ndim
    out = np.ascontiguousarray(x[rev])[rev]
    assert all(s < 0 for s in out.strides)
    return out


def _memmap(x, tmp_path):
    path = tmp_path / f"odd-{x.shape}-{x.dtype}-{id(x)}.npy"
    np.save(path, np.ascontiguousarray(x))
    return np.load(path, mmap_mode="r")


ODD = {
    "misaligned-1": _misaligned(1),
    "misaligned-4": _misaligned(4),
    "zero-stride": lambda x, tmp_path: np.broadcast_to(x[:1], x.shape),
    "negative-stride": _reversed,
    "big-endian": lambda x, tmp_path: x.astype(x.dtype.newbyteorder(">")),
    "readonly-memmap": _memmap,
}


def _same(got, expected, backend):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if backend == "numpy":
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-300)
    else:
        assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("odd", sorted(ODD))
@pytest.mark.parametrize("name", sorted(CALLS))
def test_odd_buffer_gives_the_contiguous_result(name, odd, backend, rng, tmp_path):
    c = CALLS[name]
    inputs = list(c.make(rng))
    for i in c.float_args:
        inputs[i] = ODD[odd](np.asarray(inputs[i], dtype=np.float64), tmp_path)
    plain = [np.ascontiguousarray(x) for x in inputs]
    if odd == "big-endian":
        plain = [x.astype(x.dtype.newbyteorder("=")) for x in plain]
    _same(c.run(tuple(inputs), backend), c.run(tuple(plain), backend), backend)


# -- 0-d inputs ---------------------------------------------------------------------------------
ROW_FUNCS_0D = {
    "kl_divergence": lambda b: kl_fast.kl_divergence(np.float64(1.0), np.float64(1.0), backend=b),
    "entropy": lambda b: kl_fast.entropy(np.array(1.0), backend=b),
    "cross_entropy": lambda b: kl_fast.cross_entropy(np.array(1.0), np.array(1.0), backend=b),
    "cross_entropy_labels": lambda b: kl_fast.cross_entropy(np.array(0), np.array(1.0),
                                                            backend=b),
    "js_divergence": lambda b: kl_fast.js_divergence(np.array(1.0), np.array(1.0), backend=b),
    "gaussian_kl_full": lambda b: kl_fast.gaussian_kl_full(np.array(0.5), np.array(2.0),
                                                           backend=b),
    "mutual_information": lambda b: kl_fast.mutual_information(np.array(1.0), backend=b),
    "pairwise_kl": lambda b: kl_fast.pairwise_kl(np.array(1.0), backend=b),
    "pairwise_js": lambda b: kl_fast.pairwise_js(np.array(1.0), backend=b),
}


@pytest.mark.parametrize("name", sorted(ROW_FUNCS_0D))
def test_zero_dimensional_input_is_refused_clearly(name, backend):
    """Functions that need an axis (categories, a mean vector, a table) say so."""
    with pytest.raises(ValueError, match="0-d|shape|ndim|axis|dimension"):
        ROW_FUNCS_0D[name](backend)


@pytest.mark.parametrize("fn, args", [
    (kl_fast.binary_kl, (0.3, 0.6)),
    (kl_fast.binary_cross_entropy, (0.3, 0.6)),
    (kl_fast.kl_estimate, (np.log(0.3), np.log(0.6))),
    # one univariate Gaussian: 0-d parameters need no axis (tests/test_array_types.py)
    (lambda mu, var, **kw: kl_fast.gaussian_kl(mu, var, **kw) if np.ndim(mu) == 0
     else kl_fast.gaussian_kl(mu, var, axis=None, **kw), (0.5, 2.0)),
], ids=["binary_kl", "binary_cross_entropy", "kl_estimate", "gaussian_kl"])
def test_zero_dimensional_elementwise_input_gives_a_scalar(fn, args, backend):
    got = fn(*(np.array(a) for a in args), backend=backend)
    vec = fn(*(np.array([a]) for a in args), backend=backend)
    assert np.ndim(got) == 0 and np.asarray(got).dtype == np.float64
    assert np.asarray(got).tobytes() == vec[0].tobytes()


# -- empty batches ------------------------------------------------------------------------------
def _e(*shape):
    return np.zeros(shape)


EMPTY = {
    # name: (call(backend, reduction), shape of the "none" result)
    "kl_divergence": (lambda b, r: kl_fast.kl_divergence(_e(0, 3), _e(0, 3), backend=b,
                                                         reduction=r), (0,)),
    "entropy": (lambda b, r: kl_fast.entropy(_e(2, 0, 3), backend=b, reduction=r), (2, 0)),
    "cross_entropy": (lambda b, r: kl_fast.cross_entropy(_e(0, 3), _e(0, 3), backend=b,
                                                         reduction=r), (0,)),
    "cross_entropy_labels": (lambda b, r: kl_fast.cross_entropy(
        np.zeros(0, np.int64), _e(0, 3), backend=b, reduction=r), (0,)),
    "js_divergence": (lambda b, r: kl_fast.js_divergence(_e(0, 3), _e(0, 3), backend=b,
                                                         reduction=r), (0,)),
    "gaussian_kl": (lambda b, r: kl_fast.gaussian_kl(_e(0, 3), _e(0, 3) + 1, backend=b,
                                                     reduction=r), (0,)),
    "gaussian_kl_full": (lambda b, r: kl_fast.gaussian_kl_full(
        _e(0, 2), _e(0, 2, 2), backend=b, reduction=r), (0,)),
    "mutual_information": (lambda b, r: kl_fast.mutual_information(_e(0, 2, 2), backend=b,
                                                                   reduction=r), (0,)),
    "binary_kl": (lambda b, r: kl_fast.binary_kl(_e(0), _e(0), backend=b, reduction=r), (0,)),
    "binary_cross_entropy": (lambda b, r: kl_fast.binary_cross_entropy(
        _e(0), _e(0), backend=b, reduction=r), (0,)),
    "kl_estimate": (lambda b, r: kl_fast.kl_estimate(_e(0), _e(0), backend=b, reduction=r),
                    (0,)),
}


@pytest.mark.parametrize("backend, dtype", BACKEND_DTYPES,
                         ids=[f"{b}-{np.dtype(d).name}" for b, d in BACKEND_DTYPES])
@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_batch(name, dtype, backend, monkeypatch):
    call, shape = EMPTY[name]
    # the inputs above are float64: run them in `dtype` by wrapping _e
    monkeypatch.setitem(globals(), "_e", lambda *s: np.zeros(s, dtype=dtype))
    none = call(backend, "none")
    assert none.shape == shape and none.dtype == dtype
    total = call(backend, "sum")
    assert np.asarray(total).dtype == dtype and total == 0
    mean = call(backend, "mean")
    assert np.asarray(mean).dtype == dtype and np.isnan(mean)   # as np.mean of nothing


@pytest.mark.parametrize("fn", [kl_fast.pairwise_kl, kl_fast.pairwise_js],
                         ids=lambda f: f.__name__)
def test_empty_pairwise(fn, backend):
    Q = np.full((2, 3), 1 / 3)
    assert fn(np.zeros((0, 3)), Q, backend=backend).shape == (0, 2)
    assert fn(Q, np.zeros((0, 3)), backend=backend).shape == (2, 0)
    assert fn(np.zeros((0, 3)), backend=backend).shape == (0, 0)


# -- K = 1 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend, dtype", BACKEND_DTYPES,
                         ids=[f"{b}-{np.dtype(d).name}" for b, d in BACKEND_DTYPES])
def test_single_category(backend, dtype, rng):
    """One category: every distribution is [1]; divergences and entropies are exactly 0."""
    one = np.ones((4, 1), dtype=dtype)
    for got in (kl_fast.kl_divergence(one, one, backend=backend),
                kl_fast.entropy(one, backend=backend),
                kl_fast.cross_entropy(one, one, backend=backend),
                kl_fast.cross_entropy(np.zeros(4, np.int64), rng.normal(size=(4, 1)).astype(dtype),
                                      q_space="logits", backend=backend),
                kl_fast.js_divergence(one, one, backend=backend),
                kl_fast.mutual_information(np.ones((4, 1, 1), dtype=dtype), backend=backend),
                kl_fast.pairwise_kl(one, backend=backend),
                kl_fast.pairwise_js(one, backend=backend)):
        assert got.dtype == dtype
        assert np.all(got == 0) and not np.signbit(got).any()


def test_single_dimension_gaussians_match_the_scalar_formula(backend, rng):
    mu1, mu2 = rng.normal(size=(2, 5, 1))
    v1, v2 = rng.uniform(0.5, 2.0, size=(2, 5, 1))
    expected = 0.5 * (np.log(v2 / v1) + (v1 + (mu1 - mu2) ** 2) / v2 - 1)
    got = kl_fast.gaussian_kl(mu1, v1, mu2, v2, backend=backend)
    np.testing.assert_allclose(got, expected[:, 0], rtol=1e-12)
    full = kl_fast.gaussian_kl_full(mu1, v1[..., None], mu2, v2[..., None], backend=backend)
    np.testing.assert_allclose(full, expected[:, 0], rtol=1e-12)


@pytest.mark.parametrize("backend, dtype", BACKEND_DTYPES,
                         ids=[f"{b}-{np.dtype(d).name}" for b, d in BACKEND_DTYPES])
def test_label_cross_entropy_of_a_certain_label_is_plus_zero(backend, dtype):
    got = kl_fast.cross_entropy(np.zeros(4, np.int64), np.ones((4, 1), dtype=dtype),
                                backend=backend)
    assert np.all(got == 0)
    assert not np.signbit(got).any()


# -- label dtypes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("label_dtype", [np.uint8, np.int8, np.int16, np.int32, ">i8", np.uint64,
                                         ">u4"], ids=str)
def test_non_native_label_dtypes(label_dtype, backend, rng):
    y = rng.integers(0, 5, size=7)
    q = rng.dirichlet(np.ones(5), size=7)
    expected = kl_fast.cross_entropy(y.astype(np.int64), q, backend=backend)
    got = kl_fast.cross_entropy(y.astype(label_dtype), q, backend=backend)
    assert got.tobytes() == expected.tobytes()
    # ignore_index with a narrow or unsigned dtype: the value is compared as a label
    y[2] = 4
    ignored = kl_fast.cross_entropy(y.astype(label_dtype), q, ignore_index=4, backend=backend)
    ref = kl_fast.cross_entropy(y.astype(np.int64), q, ignore_index=4, backend=backend)
    assert ignored.tobytes() == ref.tobytes()
    assert np.isnan(ignored[2])     # ignored rows are NaN under reduction="none" (documented)
