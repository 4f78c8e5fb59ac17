"""torch's loss options: cross_entropy's weight, label_smoothing and soft targets
in log / logits space (against torch.nn.functional.cross_entropy), and the where=
mask of the elementwise functions (against torch and numpy references that drop the
masked positions)."""

import dask.array as da
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import kl_fast

RNG = np.random.default_rng(12)
N, K = 9, 6
REDUCTIONS = ("none", "sum", "mean")


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _q_in(space, logits, temperature=1.0):
    """q in `space` and torch's input for it (log-probabilities or the scaled logits)."""
    if space == "logits":
        return logits, torch.from_numpy(logits / temperature)
    logq = _log_softmax(logits)
    q = logq if space == "log" else np.exp(logq)
    return q, torch.from_numpy(logq)


def _torch_ce(inp, target, **kw):
    return F.cross_entropy(inp, target, **kw).numpy()


@pytest.mark.parametrize("space", ["prob", "log", "logits"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("ignore", [None, -100, 2])
@pytest.mark.parametrize("smoothing", [0.0, 0.15, 1.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_labels_match_torch(space, reduction, ignore, smoothing, weighted):
    logits = RNG.normal(size=(N, K)) * 2
    y = RNG.integers(0, K, size=N)
    if ignore == -100:
        y[[1, 4]] = -100
    elif ignore == 2:
        y[0] = 2          # the ignored label is a class index here
    temperature = 1.7 if space == "logits" else 1.0
    q, inp = _q_in(space, logits, temperature)
    w = RNG.uniform(0.2, 3.0, size=K) if weighted else None
    got = kl_fast.cross_entropy(y, q, q_space=space, temperature=temperature,
                                ignore_index=ignore, weight=w, label_smoothing=smoothing,
                                reduction=reduction)
    want = _torch_ce(inp, torch.from_numpy(y),
                     weight=None if w is None else torch.from_numpy(w),
                     ignore_index=-100 if ignore is None else ignore,
                     label_smoothing=smoothing, reduction=reduction)
    if reduction == "none" and ignore is not None:
        ignored = y == ignore
        assert np.isnan(got[ignored]).all()       # kl_fast: NaN, torch: 0
        got, want = got[~ignored], want[~ignored]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("q_space", ["prob", "log", "logits"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_probability_targets_match_torch(q_space, reduction, smoothing, weighted):
    logits = RNG.normal(size=(N, K))
    p = RNG.dirichlet(np.ones(K), size=N)
    q, inp = _q_in(q_space, logits)
    w = RNG.uniform(0.0, 2.0, size=K) if weighted else None
    got = kl_fast.cross_entropy(p, q, q_space=q_space, weight=w, label_smoothing=smoothing,
                                reduction=reduction)
    want = _torch_ce(inp, torch.from_numpy(p), weight=None if w is None else torch.from_numpy(w),
                     label_smoothing=smoothing, reduction=reduction)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("p_space", ["log", "logits"])
@pytest.mark.parametrize("q_space", ["prob", "log", "logits"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1},
                                     {"weight": np.linspace(0.5, 2.0, K)}])
def test_soft_targets_from_logits_match_torch(p_space, q_space, reduction, options):
    teacher, student = RNG.normal(size=(N, K)) * 3, RNG.normal(size=(N, K)) * 3
    temperature = 2.0 if "logits" in (p_space, q_space) else 1.0
    p = teacher if p_space == "logits" else _log_softmax(teacher)
    target = _softmax(teacher / temperature) if p_space == "logits" else _softmax(teacher)
    q, inp = _q_in(q_space, student, temperature)
    got = kl_fast.cross_entropy(p, q, p_space=p_space, q_space=q_space, temperature=temperature,
                                reduction=reduction, **options)
    torch_kw = {k: torch.from_numpy(v) if k == "weight" else v for k, v in options.items()}
    want = _torch_ce(inp, torch.from_numpy(target), reduction=reduction, **torch_kw)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_distillation_nearly_equal_logits_keeps_digits():
    """H(p) + KL(p || q): for q == p the result is exactly H(p) (KL is exactly 0)."""
    x = RNG.normal(size=(4, 50)) * 5
    got = kl_fast.cross_entropy(x, x, p_space="logits", q_space="logits", temperature=3.0)
    np.testing.assert_array_equal(got, kl_fast.entropy(x, space="logits", temperature=3.0))


def test_base_keepdims_out_axis_and_float32():
    logits = RNG.normal(size=(K, N)).astype(np.float32)       # categories on axis 0
    y = RNG.integers(0, K, size=N)
    w = RNG.uniform(0.5, 2, size=K)
    kw = dict(q_space="logits", axis=0, weight=w, label_smoothing=0.1)
    nats = kl_fast.cross_entropy(y, logits, **kw)
    assert nats.dtype == np.float32 and nats.shape == (N,)
    want = _torch_ce(torch.from_numpy(logits.T.astype(np.float64)), torch.from_numpy(y),
                     weight=torch.from_numpy(w), label_smoothing=0.1, reduction="none")
    np.testing.assert_allclose(nats, want, rtol=2e-7)
    bits = kl_fast.cross_entropy(y, logits, base=2, **kw)
    np.testing.assert_allclose(bits, want / np.log(2), rtol=2e-7)
    kept = kl_fast.cross_entropy(y, logits, keepdims=True, **kw)
    assert kept.shape == (1, N)
    out = np.empty(N)
    assert kl_fast.cross_entropy(y, logits, out=out, **kw) is out
    np.testing.assert_allclose(out, want, rtol=2e-7)
    mean = kl_fast.cross_entropy(y, logits, reduction="mean", keepdims=True, **kw)
    assert mean.shape == (1, 1)


def test_torch_in_torch_out():
    logits = torch.from_numpy(RNG.normal(size=(N, K)))
    y = torch.from_numpy(RNG.integers(0, K, size=N))
    w = torch.linspace(0.5, 1.5, K, dtype=torch.float64)
    got = kl_fast.cross_entropy(y, logits, q_space="logits", weight=w, label_smoothing=0.05,
                                reduction="mean")
    assert isinstance(got, torch.Tensor)
    want = F.cross_entropy(logits, y, weight=w, label_smoothing=0.05)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)


def test_weight_zero_class_with_infinite_term_is_zero():
    """A weight of 0 removes the class, also where -log q is inf (torch: 0 * inf = NaN)."""
    q = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    got = kl_fast.cross_entropy([0, 1], q, weight=[1.0, 1.0, 0.0], label_smoothing=0.3)
    want = 0.7 * -np.log([0.5, 0.3]) + 0.1 * -np.log(np.array([[0.5, 0.5], [0.2, 0.3]])).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # with weight 1 the zero probability makes the smoothed loss inf, as in torch
    assert kl_fast.cross_entropy([0], q[:1], label_smoothing=0.3)[0] == np.inf


def test_weighted_mean_all_ignored_is_nan():
    q = _softmax(RNG.normal(size=(3, K)))
    got = kl_fast.cross_entropy([-100] * 3, q, ignore_index=-100, weight=np.ones(K),
                                reduction="mean")
    assert np.isnan(got)


@pytest.mark.parametrize("weight, error, match", [
    (np.ones(K - 1), ValueError, "one value per class"),
    (np.ones((1, K)), ValueError, "1-D"),
    (np.r_[-1.0, np.ones(K - 1)], ValueError, r"weight\[0\] is -1.0"),
    (np.r_[np.ones(K - 1), np.nan], ValueError, "finite"),
    (np.ones(K, bool), TypeError, "real numbers"),
])
def test_bad_weight(weight, error, match):
    q = _softmax(RNG.normal(size=(N, K)))
    with pytest.raises(error, match=match):
        kl_fast.cross_entropy(RNG.integers(0, K, size=N), q, weight=weight)
    with pytest.raises(error, match=match):
        kl_fast.cross_entropy(q, q, weight=weight)


@pytest.mark.parametrize("value, error", [(-0.1, ValueError), (1.5, ValueError),
                                          (float("nan"), ValueError), (True, TypeError),
                                          ("0.1", TypeError)])
def test_bad_label_smoothing(value, error):
    q = _softmax(RNG.normal(size=(N, K)))
    with pytest.raises(error, match="label_smoothing"):
        kl_fast.cross_entropy(RNG.integers(0, K, size=N), q, label_smoothing=value)


def test_p_space_with_labels_and_temperature_without_logits_raise():
    q = _softmax(RNG.normal(size=(N, K)))
    with pytest.raises(ValueError, match="p_space"):
        kl_fast.cross_entropy(RNG.integers(0, K, size=N), q, p_space="logits")
    with pytest.raises(ValueError, match="temperature"):
        kl_fast.cross_entropy(q, q, p_space="log", temperature=2.0, label_smoothing=0.1)
    with pytest.raises(ValueError, match="p_space"):
        kl_fast.cross_entropy(q, q, p_space="probs")


@pytest.mark.parametrize("space, bad", [("prob", np.nan), ("prob", 1.5), ("log", 0.5),
                                        ("log", np.nan), ("logits", np.inf)])
def test_smoothing_checks_every_category(space, bad):
    """The picked value is fine; the bad one sits elsewhere in the row, which smoothing reads."""
    logits = RNG.normal(size=(N, K))
    q, _ = _q_in(space, logits)
    y = np.zeros(N, dtype=np.int64)
    q[3, 4] = bad
    # (logits: the kernel itself reads the whole row and names the position)
    with pytest.raises(ValueError, match=r"batch index \(3,\).*category 4|index \(3, 4\)"):
        kl_fast.cross_entropy(y, q, q_space=space, label_smoothing=0.1)
    # an ignored row is not read
    y[3] = -100
    got = kl_fast.cross_entropy(y, q, q_space=space, label_smoothing=0.1, ignore_index=-100)
    assert np.isnan(got[3]) and np.isfinite(np.delete(got, 3)).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(2, 7), seed=st.integers(0, 2**32 - 1),
       space=st.sampled_from(["prob", "log", "logits"]),
       reduction=st.sampled_from(REDUCTIONS), scale=st.floats(0.01, 100.0))
def test_properties(n, k, seed, space, reduction, scale):
    rng = np.random.default_rng(seed)
    q, _ = _q_in(space, rng.normal(size=(n, k)) * 3)
    y = rng.integers(0, k, size=n)
    p = rng.dirichlet(np.ones(k), size=n)
    for target in (y, p):
        plain = kl_fast.cross_entropy(target, q, q_space=space, reduction=reduction)
        ones = kl_fast.cross_entropy(target, q, q_space=space, reduction=reduction,
                                     weight=np.ones(k))
        zero = kl_fast.cross_entropy(target, q, q_space=space, reduction=reduction,
                                     weight=np.ones(k), label_smoothing=0.0)
        np.testing.assert_allclose(ones, plain, rtol=1e-15)
        np.testing.assert_allclose(zero, plain, rtol=1e-15)
    # a common factor of the weights cancels in the labels' weighted mean
    w = rng.uniform(0.1, 2.0, size=k)
    a = kl_fast.cross_entropy(y, q, q_space=space, reduction="mean", weight=w,
                              label_smoothing=0.2)
    b = kl_fast.cross_entropy(y, q, q_space=space, reduction="mean", weight=w * scale,
                              label_smoothing=0.2)
    np.testing.assert_allclose(a, b, rtol=1e-13)


# -- dask --------------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dask_options_equal_numpy(reduction):
    logits = RNG.normal(size=(12, K))
    y = RNG.integers(0, K, size=12)
    y[5] = -100
    w = RNG.uniform(0.5, 2, size=K)
    kw = dict(q_space="logits", weight=w, label_smoothing=0.1, ignore_index=-100,
              reduction=reduction)
    want = kl_fast.cross_entropy(y, logits, **kw)
    lazy = kl_fast.cross_entropy(da.from_array(y, chunks=5),
                                 da.from_array(logits, chunks=(5, 4)), **kw)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), want, rtol=1e-14)
    teacher = RNG.normal(size=(12, K))
    kw = dict(p_space="logits", q_space="logits", temperature=2.0, weight=w, reduction=reduction)
    want = kl_fast.cross_entropy(teacher, logits, **kw)
    lazy = kl_fast.cross_entropy(da.from_array(teacher, chunks=(5, 3)),
                                 da.from_array(logits, chunks=(4, K)), **kw)
    np.testing.assert_allclose(lazy.compute(), want, rtol=1e-14)


# -- where= --------------------------------------------------------------------------------

def _padded(rng, shape=(5, 7)):
    """Per-token log-probabilities with -inf / NaN padding at the ends of the rows."""
    logp = np.log(rng.uniform(0.05, 1.0, size=shape))
    logq = np.log(rng.uniform(0.05, 1.0, size=shape))
    mask = np.arange(shape[1]) < rng.integers(1, shape[1] + 1, size=(shape[0], 1))
    logp[~mask], logq[~mask] = -np.inf, np.nan
    return logp, logq, mask


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
@pytest.mark.parametrize("backend", ["cython", "numba", "numpy"])
def test_kl_estimate_where_drops_padding(kind, backend):
    logp, logq, mask = _padded(np.random.default_rng(3))
    kept = kl_fast.kl_estimate(logp[mask], logq[mask], kind=kind, backend=backend)
    none = kl_fast.kl_estimate(logp, logq, kind=kind, where=mask, backend=backend)
    np.testing.assert_array_equal(none[mask], kept)
    assert (none[~mask] == 0.0).all()
    total = kl_fast.kl_estimate(logp, logq, kind=kind, where=mask, reduction="sum",
                                backend=backend)
    mean = kl_fast.kl_estimate(logp, logq, kind=kind, where=mask, reduction="mean",
                               backend=backend)
    np.testing.assert_allclose(total, kept.sum(), rtol=1e-14)
    np.testing.assert_allclose(mean, kept.mean(), rtol=1e-14)
    with pytest.raises(ValueError, match="logp"):
        kl_fast.kl_estimate(logp, logq, kind=kind)       # without the mask the padding is bad


def test_where_broadcasts_and_checks_included_positions():
    rng = np.random.default_rng(4)
    logp, logq = np.log(rng.uniform(0.1, 1, size=(3, 4))), np.log(rng.uniform(0.1, 1, size=4))
    mask = np.array([True, False, True])[:, None]          # whole rows out
    got = kl_fast.kl_estimate(logp, logq, where=mask, reduction="mean")
    want = kl_fast.kl_estimate(logp[[0, 2]], logq, reduction="mean")
    np.testing.assert_allclose(got, want, rtol=1e-14)
    # a mask larger than the inputs gives the broadcast shape, as numpy's where= does
    wide = kl_fast.kl_estimate(logp[0], logq, where=np.ones((2, 4), bool))
    assert wide.shape == (2, 4)
    logp[2, 1] = np.nan                                    # included: still an error
    with pytest.raises(ValueError, match=r"logp"):
        kl_fast.kl_estimate(logp, logq, where=mask)
    with pytest.raises(TypeError, match="boolean mask"):
        kl_fast.kl_estimate(logp, logq, where=mask.astype(int))
    with pytest.raises(ValueError, match="where"):
        kl_fast.kl_estimate(logp, logq, where=np.ones(3, bool))


def test_where_all_masked_mean_is_nan_and_out():
    logp = np.full(4, -np.inf)
    assert np.isnan(kl_fast.kl_estimate(logp, logp, where=np.zeros(4, bool), reduction="mean"))
    out = np.full(4, 7.0)
    x = np.array([-1.0, -2.0, np.nan, -0.5])
    mask = ~np.isnan(x)
    assert kl_fast.kl_estimate(x, -1.0, where=mask, out=out) is out
    np.testing.assert_array_equal(out, np.where(mask, kl_fast.kl_estimate(
        np.nan_to_num(x), -1.0), 0.0))


@pytest.mark.parametrize("q_space", ["prob", "logits"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_where_matches_torch(q_space, reduction):
    rng = np.random.default_rng(5)
    y = rng.uniform(0, 1, size=(4, 6))
    q = rng.normal(size=(4, 6)) if q_space == "logits" else rng.uniform(0.01, 0.99, size=(4, 6))
    mask = rng.uniform(size=(4, 6)) < 0.6
    y_bad, q_bad = y.copy(), q.copy()
    y_bad[~mask], q_bad[~mask] = np.nan, -np.inf
    got = kl_fast.binary_cross_entropy(y_bad, q_bad, q_space=q_space, where=torch.from_numpy(mask),
                                       reduction=reduction)
    fn = F.binary_cross_entropy_with_logits if q_space == "logits" else F.binary_cross_entropy
    terms = fn(torch.from_numpy(q), torch.from_numpy(y), reduction="none").numpy()
    want = {"none": np.where(mask, terms, 0.0), "sum": terms[mask].sum(),
            "mean": terms[mask].mean()}[reduction]
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("spaces", [("prob", "prob"), ("logits", "logits"), ("prob", "logits")])
def test_binary_kl_where(spaces):
    rng = np.random.default_rng(6)
    p, q = rng.uniform(0.01, 0.99, size=(2, 10))
    if spaces[0] == "logits":
        p = np.log(p / (1 - p))
    if spaces[1] == "logits":
        q = np.log(q / (1 - q))
    mask = np.arange(10) % 3 != 0
    bad_p = np.where(mask, p, -7.0 if spaces[0] == "prob" else np.nan)
    kw = dict(p_space=spaces[0], q_space=spaces[1])
    got = kl_fast.binary_kl(bad_p, q, where=mask, reduction="mean", **kw)
    np.testing.assert_allclose(got, kl_fast.binary_kl(p[mask], q[mask], **kw).mean(), rtol=1e-14)


@pytest.mark.parametrize("fn, make", [
    ("kl_estimate", lambda rng: _padded(rng)),
    ("binary_cross_entropy", lambda rng: (rng.uniform(size=(5, 7)), rng.uniform(size=(5, 7)),
                                          rng.uniform(size=(5, 7)) < 0.5)),
    ("binary_kl", lambda rng: (rng.uniform(size=(5, 7)), rng.uniform(size=(5, 7)),
                               rng.uniform(size=(5, 7)) < 0.5)),
])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_dask_where_equals_numpy(fn, make, reduction):
    a, b, mask = make(np.random.default_rng(7))
    f = getattr(kl_fast, fn)
    want = f(a, b, where=mask, reduction=reduction)
    lazy = f(da.from_array(a, chunks=(2, 3)), da.from_array(b, chunks=(3, 4)),
             where=da.from_array(mask, chunks=(5, 2)), reduction=reduction)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), want, rtol=1e-14)
    # a numpy mask with dask inputs, broadcasting: whole rows in or out
    rows = mask.all(axis=1, keepdims=True)
    lazy = f(da.from_array(a, chunks=(2, 3)), b, where=rows, reduction=reduction)
    np.testing.assert_allclose(lazy.compute(), f(a, b, where=rows, reduction=reduction),
                               rtol=1e-14)


@pytest.mark.parametrize("backend", ["cython", "numpy"])
def test_backends_agree_with_torch(backend):
    logits = RNG.normal(size=(N, K))
    y = RNG.integers(0, K, size=N)
    w = RNG.uniform(0.5, 2.0, size=K)
    got = kl_fast.cross_entropy(y, logits, q_space="logits", weight=w, label_smoothing=0.2,
                                reduction="mean", backend=backend)
    want = _torch_ce(torch.from_numpy(logits), torch.from_numpy(y), weight=torch.from_numpy(w),
                     label_smoothing=0.2)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    teacher = RNG.normal(size=(N, K))
    got = kl_fast.cross_entropy(teacher, logits, p_space="logits", q_space="logits",
                                label_smoothing=0.2, backend=backend)
    want = _torch_ce(torch.from_numpy(logits), torch.from_numpy(_softmax(teacher)),
                     label_smoothing=0.2, reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_counts_and_eps_with_options():
    """normalize=True and eps reach the smoothing term and weighted targets too."""
    rng = np.random.default_rng(8)
    p, q = rng.dirichlet(np.ones(K), size=N), rng.dirichlet(np.ones(K), size=N)
    w = rng.uniform(0.5, 2.0, size=K)
    kw = dict(weight=w, label_smoothing=0.3, reduction="none")
    np.testing.assert_allclose(
        kl_fast.cross_entropy(p * 7, q * 3, normalize=True, **kw),
        kl_fast.cross_entropy(p, q, **kw), rtol=1e-13)
    y = rng.integers(0, K, size=N)
    np.testing.assert_allclose(
        kl_fast.cross_entropy(y, q * 3, normalize=True, **kw),
        kl_fast.cross_entropy(y, q, **kw), rtol=1e-13)
    eps = 1e-3
    smoothed = (q + eps) / (1 + K * eps)
    target = (p + eps) / (1 + K * eps)
    want = _torch_ce(torch.from_numpy(np.log(smoothed)), torch.from_numpy(target),
                     weight=torch.from_numpy(w), label_smoothing=0.3, reduction="none")
    np.testing.assert_allclose(kl_fast.cross_entropy(p, q, eps=eps, **kw), want, rtol=1e-12)


def test_gradient_is_never_dropped_silently():
    logits = torch.zeros(3, K, dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match="gradient"):
        kl_fast.cross_entropy(torch.tensor([0, 1, 2]), logits, q_space="logits",
                              label_smoothing=0.1)


def test_zero_factors_add_zero():
    """label_smoothing=0 with weight: an inf smoothing term (q = 0 where p = 0) is not
    multiplied in (0 * inf); label_smoothing=1: the target is uniform, as in torch."""
    p = np.array([[0.5, 0.5, 0.0]])
    q = np.array([[0.25, 0.75, 0.0]])
    got = kl_fast.cross_entropy(p, q, weight=[2.0, 1.0, 1.0])
    np.testing.assert_allclose(got, [-(1.0 * np.log(0.25) + 0.5 * np.log(0.75))], rtol=1e-15)
    q = np.array([[0.2, 0.3, 0.5]])
    got = kl_fast.cross_entropy(p, q, label_smoothing=1.0)
    want = _torch_ce(torch.from_numpy(np.log(q)), torch.from_numpy(p), label_smoothing=1.0,
                     reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-13)
    got = kl_fast.cross_entropy([1], q, label_smoothing=1.0)
    np.testing.assert_allclose(got, -np.log(q).mean(axis=1), rtol=1e-14)


def test_where_keeps_float32_and_torch():
    rng = np.random.default_rng(9)
    logp = np.log(rng.uniform(0.1, 1, size=(3, 5))).astype(np.float32)
    logq = np.log(rng.uniform(0.1, 1, size=(3, 5))).astype(np.float32)
    mask = rng.uniform(size=(3, 5)) < 0.7
    got = kl_fast.kl_estimate(logp, logq, where=mask)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got[mask], kl_fast.kl_estimate(logp[mask], logq[mask]))
    total = kl_fast.kl_estimate(torch.from_numpy(logp), torch.from_numpy(logq),
                                   where=torch.from_numpy(mask), reduction="sum")
    assert isinstance(total, torch.Tensor) and total.dtype == torch.float32
    want = kl_fast.kl_estimate(logp[mask], logq[mask]).astype(np.float64).sum()
    np.testing.assert_allclose(total.item(), want, rtol=1e-6)


# ---- where= for the elementwise Gaussian KL (gaussian_kl with axis=None) ----------------

def _gauss_ref(mu1, var1, mu2, var2):
    return 0.5 * (np.log(var2 / var1) + (var1 + (mu1 - mu2) ** 2) / var2 - 1.0)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_gaussian_where_leaves_padding_out(reduction):
    rng = np.random.default_rng(7)
    mu1, mu2 = rng.normal(size=(2, 3, 4))
    var1, var2 = rng.random((2, 3, 4)) + 0.2
    mask = rng.random((3, 4)) < 0.6
    mask[0, 0] = True
    bad_mu1 = np.where(mask, mu1, np.nan)
    bad_var1 = np.where(mask, var1, -np.inf)          # padding: invalid values
    got = kl_fast.gaussian_kl(bad_mu1, bad_var1, mu2, var2, axis=None, where=mask,
                              reduction=reduction)
    terms = np.where(mask, _gauss_ref(mu1, var1, mu2, var2), 0.0)
    want = {"none": terms, "sum": terms.sum(), "mean": terms.sum() / mask.sum()}[reduction]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)
    # the VAE prior form, log-variance scale, against torch
    logvar = np.where(mask, np.log(var1), np.inf)
    got = kl_fast.gaussian_kl(bad_mu1, logvar, scale="logvar", axis=None, where=mask,
                              reduction=reduction)
    prior = np.where(mask, _gauss_ref(mu1, var1, 0.0, 1.0), 0.0)
    want = {"none": prior, "sum": prior.sum(), "mean": prior.sum() / mask.sum()}[reduction]
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


def test_gaussian_where_gradient_and_errors():
    import torch

    rng = np.random.default_rng(8)
    mu = torch.tensor(rng.normal(size=(2, 5)), requires_grad=True)
    logvar = torch.tensor(rng.normal(size=(2, 5)), requires_grad=True)
    mask = np.arange(10).reshape(2, 5) % 3 != 0
    loss = kl_fast.gaussian_kl(mu, logvar, scale="logvar", axis=None, where=mask,
                               reduction="mean")
    loss.backward()
    keep = torch.from_numpy(mask)
    mu2, lv2 = mu.detach().clone().requires_grad_(), logvar.detach().clone().requires_grad_()
    ref_terms = 0.5 * (mu2 ** 2 + lv2.exp() - lv2 - 1)
    (ref_terms[keep].sum() / keep.sum()).backward()
    torch.testing.assert_close(loss.detach(), (ref_terms[keep].sum() / keep.sum()).detach())
    torch.testing.assert_close(mu.grad, mu2.grad)
    torch.testing.assert_close(logvar.grad, lv2.grad)
    with pytest.raises(ValueError, match=r"where= applies to the elementwise KL \(axis=None\)"):
        kl_fast.gaussian_kl(np.zeros(3), np.ones(3), where=np.ones(3, bool))
    with pytest.raises(TypeError, match="where must be a boolean mask"):
        kl_fast.gaussian_kl(np.zeros(3), np.ones(3), axis=None, where=np.ones(3))


def test_gaussian_where_dask():
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(9)
    mu, var = rng.normal(size=(6, 4)), rng.random((6, 4)) + 0.1
    mask = rng.random((6, 4)) < 0.5
    mask[0, 0] = True
    var_pad = np.where(mask, var, np.nan)
    for reduction in ("none", "mean"):
        lazy = kl_fast.gaussian_kl(da.from_array(mu, chunks=(3, 2)),
                                   da.from_array(var_pad, chunks=(3, 2)), axis=None,
                                   where=da.from_array(mask, chunks=(3, 2)),
                                   reduction=reduction)
        want = kl_fast.gaussian_kl(mu, var_pad, axis=None, where=mask, reduction=reduction)
        np.testing.assert_allclose(lazy.compute(), want, rtol=1e-14)
