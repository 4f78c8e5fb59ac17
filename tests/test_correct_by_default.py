"""Mistakes users make get an error whose advice is right for their data, never a
silently wrong number: a category axis never broadcasts, label lookalikes, the (K, N)
layout, counts, binary data, logits passed as probabilities, positive log-probabilities,
and a row-sum tolerance that accepts real data (float32 once, CSV with 7 decimals).

Every "following the advice" test checks the advised call against a reference value.
"""

import numpy as np
import pytest
import scipy.special
import scipy.stats

import kl_fast
from kl_fast._inputs.validation import sum_tolerance

from . import reference as ref

BACKENDS = kl_fast.available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261206)


def _message(call):
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


# ---- a category axis never broadcasts -------------------------------------------------

def test_length_one_category_axis_is_rejected_naming_both_lengths(backend, rng):
    p = rng.dirichlet(np.ones(5), size=4)
    message = _message(lambda: kl_fast.kl_divergence(p[:, :1], p, backend=backend))
    assert "1 category along axis -1" in message and "have 5" in message
    message = _message(lambda: kl_fast.js_divergence(p, p[:, :1], backend=backend))
    assert "q has 1 category" in message


def test_missing_category_axis_is_rejected(backend, rng):
    p = rng.dirichlet(np.ones(3), size=4).T          # (K=3, N=4), categories on axis 0
    q = np.full(4, 0.25)                            # (N,): no category axis
    message = _message(lambda: kl_fast.kl_divergence(p, q, axis=0, backend=backend))
    assert "has no category axis 0" in message


def test_batch_axes_still_broadcast(backend, rng):
    p = rng.dirichlet(np.ones(6), size=5)
    q = rng.dirichlet(np.ones(6))
    np.testing.assert_allclose(kl_fast.kl_divergence(p, q, backend=backend),
                               ref.kl(p, np.broadcast_to(q, p.shape)), rtol=1e-13)
    np.testing.assert_allclose(kl_fast.cross_entropy(q, p, backend=backend),
                               -(q * np.log(p)).sum(-1), rtol=1e-13)


def test_gaussian_parameters_still_broadcast_along_the_summed_axis(rng):
    mu, var = rng.normal(size=(3, 4)), rng.random((3, 4)) + 0.5
    got = kl_fast.gaussian_kl(mu, var, 0.0, 1.0)
    want = 0.5 * (mu ** 2 + var - np.log(var) - 1).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_dask_rejects_a_broadcast_category_axis_at_call_time(rng):
    da = pytest.importorskip("dask.array")
    p = rng.dirichlet(np.ones(5), size=4)
    with pytest.raises(ValueError, match="1 category along axis -1"):
        kl_fast.kl_divergence(da.from_array(p[:, :1]), da.from_array(p))


# ---- things that look like labels ------------------------------------------------------

def test_int_labels_with_a_stray_axis(backend, rng):
    probs = rng.dirichlet(np.ones(4), size=6)
    y = rng.integers(0, 4, size=6)
    message = _message(lambda: kl_fast.cross_entropy(y[:, None], probs, backend=backend))
    assert "labels must be integers of shape q.shape[:-1] = (6,)" in message
    assert "normalize=True" not in message
    # the advice: drop the axis -> torch's / the naive label cross-entropy
    got = kl_fast.cross_entropy(np.squeeze(y[:, None], axis=1), probs, backend=backend)
    np.testing.assert_allclose(got, -np.log(probs[np.arange(6), y]), rtol=1e-14)


@pytest.mark.parametrize("n_rows", [6, 4])   # 4 == K: a one-hot float vector sums to 1
def test_float_labels(backend, rng, n_rows):
    probs = rng.dirichlet(np.ones(4), size=n_rows)
    y = np.array([1, 0, 0, 0, 3, 2][:n_rows])
    message = _message(lambda: kl_fast.cross_entropy(y.astype(float), probs, backend=backend))
    assert "looks like class labels" in message
    assert "labels must be integers of shape q.shape[:-1]" in message
    assert "p.astype(np.int64)" in message and "normalize=True" not in message
    got = kl_fast.cross_entropy(y.astype(float).astype(np.int64), probs, backend=backend)
    np.testing.assert_allclose(got, -np.log(probs[np.arange(n_rows), y]), rtol=1e-14)


def test_one_distribution_against_many_rows_is_not_taken_for_labels(backend, rng):
    q = rng.dirichlet(np.ones(4), size=6)
    p = np.array([0.0, 1.0, 0.0, 0.0])              # one-hot target for every row
    got = kl_fast.cross_entropy(p, q, backend=backend)
    np.testing.assert_allclose(got, -np.log(q[:, 1]), rtol=1e-14)
    square = rng.dirichlet(np.ones(4), size=4)       # ambiguous: shape (1, K) says which
    np.testing.assert_allclose(kl_fast.cross_entropy(p[None, :], square, backend=backend),
                               -np.log(square[:, 1]), rtol=1e-14)


def test_binary_targets_point_to_binary_cross_entropy(backend):
    y = np.array([1, 0, 1, 1])
    q = np.array([0.9, 0.2, 0.7, 0.6])
    message = _message(lambda: kl_fast.cross_entropy(y, q, backend=backend))
    assert "kl_fast.binary_cross_entropy" in message and "normalize=True" not in message
    want = -(y * np.log(q) + (1 - y) * np.log1p(-q))
    np.testing.assert_allclose(kl_fast.binary_cross_entropy(y.astype(float), q), want,
                               rtol=1e-14)
    message = _message(lambda: kl_fast.kl_divergence([0.1, 0.5, 0.3], q[:3], backend=backend))
    assert "kl_fast.binary_kl" in message


# ---- the (K, N) layout and counts ------------------------------------------------------

def test_wrong_axis_points_to_the_axis_not_to_normalize(backend, rng):
    P = rng.dirichlet(np.ones(5), size=7)
    Q = rng.dirichlet(np.ones(5), size=7)
    message = _message(lambda: kl_fast.kl_divergence(P.T, Q.T, backend=backend))
    assert "pass axis=0" in message and "normalize=True" not in message
    np.testing.assert_allclose(kl_fast.kl_divergence(P.T, Q.T, axis=0, backend=backend),
                               scipy.stats.entropy(P, Q, axis=1), rtol=1e-13)
    message = _message(lambda: kl_fast.entropy(P.T, backend=backend))
    assert "pass axis=0" in message


def test_counts_point_to_normalize(backend, rng):
    counts = rng.integers(0, 20, size=(5, 6)).astype(float) + 1
    q = rng.dirichlet(np.ones(6), size=5)
    message = _message(lambda: kl_fast.kl_divergence(counts, q, backend=backend))
    assert "look like counts: pass normalize=True" in message
    np.testing.assert_allclose(kl_fast.kl_divergence(counts, q, normalize=True,
                                                     backend=backend),
                               scipy.stats.entropy(counts, q, axis=1), rtol=1e-13)


def test_unnormalized_weights_point_to_normalize(backend, rng):
    w = rng.random((3, 5)) * 3
    message = _message(lambda: kl_fast.entropy(w, backend=backend))
    assert "unnormalized weights, pass normalize=True" in message


# ---- logits or log-probabilities passed as probabilities --------------------------------

def test_logits_as_probabilities_point_to_p_space(backend, rng):
    import torch

    a, b = rng.normal(size=(2, 4, 6))
    message = _message(lambda: kl_fast.kl_divergence(a, b, backend=backend))
    assert "p_space='logits'" in message and "np.clip" not in message
    got = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", backend=backend)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    want = torch.nn.functional.kl_div(tb.log_softmax(-1), ta.log_softmax(-1), log_target=True,
                                      reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_log_probabilities_as_probabilities_point_to_space_log(backend, rng):
    p = rng.dirichlet(np.ones(6), size=3)
    message = _message(lambda: kl_fast.entropy(np.log(p), backend=backend))
    assert "space='log'" in message
    np.testing.assert_allclose(kl_fast.entropy(np.log(p), space="log", backend=backend),
                               scipy.stats.entropy(p, axis=1), rtol=1e-13)


def test_js_divergence_has_no_space_keyword_and_says_how(backend, rng):
    a = rng.normal(size=(2, 5))
    message = _message(lambda: kl_fast.js_divergence(a[0], a[1], backend=backend))
    assert "scipy.special.softmax" in message
    p, q = scipy.special.softmax(a, axis=-1)
    np.testing.assert_allclose(kl_fast.js_divergence(p, q, backend=backend),
                               ref.js(p[None], q[None])[0], rtol=1e-12)


# ---- positive log-probabilities are an error in every path -------------------------------

def test_positive_log_probability_label_is_rejected(backend):
    with pytest.raises(ValueError, match=r"must be <= 0"):
        kl_fast.cross_entropy([0], [[0.5, -1.0]], q_space="log", backend=backend)
    with pytest.raises(ValueError, match=r"must be <= 0"):
        kl_fast.cross_entropy(np.array([1, 0]), np.log([[0.5, 0.5], [2.0, 0.1]]),
                              q_space="log", backend=backend)
    # valid log-probabilities: -log q[label]
    q = np.log([[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_allclose(kl_fast.cross_entropy([1, 0], q, q_space="log",
                                                     backend=backend),
                               [-np.log(0.75), np.log(2.0)], rtol=1e-15)


@pytest.mark.parametrize("fn", ["kl", "ce", "entropy"])
def test_positive_log_probabilities_are_rejected_in_row_paths(backend, fn):
    bad = np.array([[0.1, -0.5, -3.0]])          # exp sums to ~1.76
    good = np.log(np.array([[0.2, 0.3, 0.5]]))
    with pytest.raises(ValueError, match=r"must be <= 0") as info:
        if fn == "kl":
            kl_fast.kl_divergence(bad, good, p_space="log", q_space="log", backend=backend)
        elif fn == "ce":
            kl_fast.cross_entropy(np.exp(good), bad, q_space="log", backend=backend)
        else:
            kl_fast.entropy(bad, space="log", backend=backend)
    assert "0.1" in str(info.value)
    # normalize=True makes them unnormalized log-weights: renormalized, fine
    got = kl_fast.entropy(bad, space="log", normalize=True, backend=backend)
    np.testing.assert_allclose(got, scipy.stats.entropy(np.exp(bad[0])), rtol=1e-13)


def test_positive_log_probability_label_is_rejected_by_dask():
    da = pytest.importorskip("dask.array")
    q = np.log(np.array([[0.5, 0.5, 1e-300], [2.0, 0.1, 0.1]]))
    for chunks in ((2, 3), (2, 1)):          # category axis whole, and split
        result = kl_fast.cross_entropy(da.from_array(np.array([1, 0])),
                                       da.from_array(q, chunks=chunks), q_space="log")
        with pytest.raises(ValueError, match=r"<= 0"):
            result.compute()


# ---- the label path's checks and validate="full" ----------------------------------------

def test_label_path_checks_only_what_it_reads_unless_full(backend):
    q = np.array([[0.5, 0.6, 0.1], [0.2, 0.2, 0.2]])       # rows sum to 1.2 and 0.6
    labels = np.array([0, 2])
    got = kl_fast.cross_entropy(labels, q, backend=backend)
    np.testing.assert_allclose(got, -np.log([0.5, 0.2]), rtol=1e-15)
    with pytest.raises(ValueError, match=r"^q must sum to 1 along axis 1") as info:
        kl_fast.cross_entropy(labels, q, validate="full", backend=backend)
    assert "p " not in str(info.value).split(".")[0]
    good = np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(kl_fast.cross_entropy(labels, good, validate="full",
                                                     backend=backend),
                               -np.log([0.5, 0.6]), rtol=1e-15)
    with pytest.raises(ValueError, match=r"q must be log-probabilities whose exponentials"):
        kl_fast.cross_entropy(labels, np.log(q), q_space="log", validate="full",
                              backend=backend)
    with pytest.raises(ValueError, match="invalid value"):
        bad = good.copy()
        bad[1, 0] = -0.1
        kl_fast.cross_entropy(labels, bad, validate="full", backend=backend)


def test_validate_full_with_dask_split_rows():
    da = pytest.importorskip("dask.array")
    q = np.array([[0.5, 0.6, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]])
    labels = da.from_array(np.array([0, 2]))
    lazy = kl_fast.cross_entropy(labels, da.from_array(q, chunks=(1, 2)))
    np.testing.assert_allclose(lazy.compute(), -np.log([0.5, 0.25]), rtol=1e-15)
    full = kl_fast.cross_entropy(labels, da.from_array(q, chunks=(1, 2)), validate="full")
    with pytest.raises(ValueError, match="q must sum to 1"):
        full.compute()


def test_validate_keyword_is_checked():
    with pytest.raises(ValueError, match=r"validate must be True, False or 'full'"):
        kl_fast.entropy([0.5, 0.5], validate="rows")
    with pytest.raises(TypeError, match="validate must be True or False"):
        kl_fast.entropy([0.5, 0.5], validate=1)


# ---- a row-sum tolerance that fits real data -------------------------------------------

@pytest.mark.parametrize("k", [10, 256, 32000])
def test_float32_softmax_cast_to_float64_is_accepted(backend, rng, k):
    import torch

    logits = rng.normal(scale=3.0, size=(8, k)).astype(np.float32)
    p32 = torch.softmax(torch.from_numpy(logits), -1).numpy()
    p = p32.astype(np.float64)
    q = np.full(k, 1.0 / k)
    got = kl_fast.kl_divergence(p, q, backend=backend)
    np.testing.assert_allclose(got, ref.kl(p, np.broadcast_to(q, p.shape)), rtol=1e-12)
    np.testing.assert_allclose(kl_fast.entropy(p, backend=backend), ref.entropy(p),
                               rtol=1e-12)
    # a float32 row normalized by a plain sequential float32 sum: n * eps32 / 2 at worst
    e = np.exp(logits - logits.max(-1, keepdims=True))
    seq = (e / np.cumsum(e, axis=-1, dtype=np.float32)[:, -1:]).astype(np.float64)
    kl_fast.entropy(seq, backend=backend)


def test_probabilities_printed_with_7_decimals_are_accepted(backend, rng, tmp_path):
    p = rng.dirichlet(np.ones(256), size=50)
    path = tmp_path / "probs.csv"
    np.savetxt(path, p, fmt="%.7f", delimiter=",")
    loaded = np.loadtxt(path, delimiter=",")
    assert np.abs(loaded.sum(-1) - 1).max() > 1.49e-8        # the old tolerance rejected it
    got = kl_fast.entropy(loaded, backend=backend)
    np.testing.assert_allclose(got, ref.entropy(loaded), rtol=1e-13)


def test_default_tolerance_still_rejects_counts_logits_and_wrong_axes(backend, rng):
    k = 32000
    counts = rng.integers(0, 3, size=(2, k)).astype(float)
    assert "normalize=True" in _message(lambda: kl_fast.entropy(counts, backend=backend))
    logits = rng.normal(size=(2, k))
    assert "space='logits'" in _message(lambda: kl_fast.entropy(logits, backend=backend))
    P = rng.dirichlet(np.ones(3), size=k)          # (K=3, N=32000) taken along axis -1
    assert "axis=0" in _message(lambda: kl_fast.entropy(P.T, backend=backend))
    off = rng.dirichlet(np.ones(k), size=2) * 1.01
    _message(lambda: kl_fast.entropy(off, backend=backend))


def test_sum_tol_keyword(backend):
    p = np.array([0.5, 0.55])
    with pytest.raises(ValueError, match="tolerance 1e-06"):
        kl_fast.entropy(p, backend=backend)
    np.testing.assert_allclose(kl_fast.entropy(p, sum_tol=0.1, backend=backend),
                               -(p * np.log(p)).sum(), rtol=1e-15)
    once32 = np.array([0.1, 0.2, 0.7], dtype=np.float32).astype(np.float64)
    kl_fast.entropy(once32, backend=backend)
    with pytest.raises(ValueError, match="must sum to 1"):
        kl_fast.entropy(once32, sum_tol=0.0, backend=backend)
    with pytest.raises(ValueError, match="must sum to 1"):
        kl_fast.pairwise_kl(p[None], p[None], backend=backend)
    kl_fast.pairwise_kl(p[None], p[None], sum_tol=0.1, backend=backend)
    kl_fast.mutual_information(np.array([[0.25, 0.25], [0.25, 0.3]]), sum_tol=0.1,
                               backend=backend)
    with pytest.raises(ValueError, match="sum_tol must be finite and >= 0"):
        kl_fast.entropy(p, sum_tol=-1.0)
    with pytest.raises(TypeError, match="sum_tol must be a float"):
        kl_fast.entropy(p, sum_tol="0.1")


def test_sum_tol_with_dask(rng):
    da = pytest.importorskip("dask.array")
    p = np.array([[0.5, 0.55, 0.0, 0.0]])
    for chunks in ((1, 4), (1, 2)):
        x = da.from_array(p, chunks=chunks)
        with pytest.raises(ValueError, match="sum to 1"):
            kl_fast.entropy(x).compute()
        np.testing.assert_allclose(kl_fast.entropy(x, sum_tol=0.1).compute(),
                                   ref.entropy(p), rtol=1e-14)


def test_one_vector_fast_path_uses_the_same_tolerance():
    from kl_fast._cython import rows as _kernels_cython

    for dtype in (np.float32, np.float64):
        eps = float(np.finfo(dtype).eps)
        for n in (1, 2, 7, 100, 8400, 10_000, 1 << 15):
            assert _kernels_cython.sum_tolerance(eps, n) == sum_tolerance(dtype, n)
