"""Inputs users pass that used to give a silently wrong or useless result: torch tensors
that require grad, torch/JAX bfloat16, one univariate Gaussian from scalars, and pandas
objects whose labels differ."""

import math
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

import kl_fast
import kl_fast.scipy
from kl_fast import _autograd_rows

from . import reference as ref
from .public_calls import CALLS

SCALES = ("var", "logvar", "std", "logstd")
GRAD_MESSAGE = (r"is a torch tensor that requires grad, but kl_fast's results carry no "
                r"gradient .*pass \w+\.detach\(\) .*torch's own function")


def _torch(x):
    return torch.from_numpy(np.ascontiguousarray(x))


# -- gradients: carried by gaussian_kl and the row reductions, refused by the rest ---------------

WITH_GRAD = ("gaussian_kl", "kl_divergence", "kl_divergence_logits", "entropy", "cross_entropy",
             "cross_entropy_labels")
NO_GRAD_CALLS = [name for name in CALLS if name not in WITH_GRAD]


@pytest.mark.parametrize("name", NO_GRAD_CALLS)
def test_tensor_requiring_grad_raises_type_error_in_every_function(name):
    make_inputs, call = CALLS[name]
    inputs = make_inputs(np.random.default_rng(3))
    for i, x in enumerate(inputs):
        if x.dtype.kind != "f":
            continue            # integer labels cannot require grad
        tensors = [_torch(a) for a in inputs]
        tensors[i].requires_grad_(True)
        with pytest.raises(TypeError, match=GRAD_MESSAGE):
            call(*tensors)


@pytest.mark.parametrize("name", WITH_GRAD)
def test_tensor_requiring_grad_gets_a_result_with_a_gradient(name):
    make_inputs, call = CALLS[name]
    inputs = make_inputs(np.random.default_rng(5))
    tensors = [_torch(a).requires_grad_(a.dtype.kind == "f") for a in inputs]
    result = call(*tensors)
    assert isinstance(result, torch.Tensor) and result.grad_fn is not None
    np.testing.assert_array_equal(result.detach().numpy(), np.asarray(call(*inputs)))
    floats = [t for t in tensors if t.requires_grad]
    for grad, t in zip(torch.autograd.grad(result.sum(), floats), floats, strict=True):
        assert grad.shape == t.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("name", list(CALLS))
def test_tensor_requiring_grad_computes_inside_no_grad(name):
    make_inputs, call = CALLS[name]
    inputs = make_inputs(np.random.default_rng(4))
    tensors = [_torch(a).requires_grad_(a.dtype.kind == "f") for a in inputs]
    with torch.no_grad():
        result = call(*tensors)
    assert isinstance(result, torch.Tensor) and result.grad_fn is None
    np.testing.assert_array_equal(result.numpy(), np.asarray(call(*inputs)))


def test_grad_message_names_the_argument():
    p = torch.tensor([0.5, 0.5])
    q = torch.tensor([0.25, 0.75], requires_grad=True)
    with pytest.raises(TypeError, match=r"^q is a torch tensor that requires grad.*q\.detach\(\)"):
        kl_fast.js_divergence(p, q)
    with pytest.raises(TypeError, match=r"^P is a torch tensor that requires grad"):
        kl_fast.pairwise_kl(q[None, :], p[None, :])
    with pytest.raises(TypeError, match=r"^y is a torch tensor that requires grad"):
        kl_fast.binary_cross_entropy(q, p)


def test_detached_tensor_gives_the_value_of_the_monitored_loss():
    logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 3])
    ours = kl_fast.cross_entropy(labels, logits.detach(), q_space="logits", reduction="mean")
    theirs = torch.nn.functional.cross_entropy(logits, labels)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-13)


def test_scipy_drop_ins_never_drop_a_gradient_silently():
    counts = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64, requires_grad=True)
    q = torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64, requires_grad=True)
    # scipy's entropy normalizes its inputs: the gradient goes through the normalization
    ours = kl_fast.scipy.entropy(counts, q, base=2)
    p, q_normalized = counts / counts.sum(), q / q.sum()
    theirs = (p * torch.log2(p / q_normalized)).sum()
    _assert_same_value_and_gradient(ours, theirs, (counts, q))
    for call in (lambda: kl_fast.scipy.jensenshannon(counts, q),
                 lambda: kl_fast.scipy.rel_entr(counts, q)):
        with pytest.raises((TypeError, RuntimeError), match="requires grad"):
            call()


# -- gaussian_kl carries the gradient ----------------------------------------------------------

def _gaussian_params(scale, shape, gen, dtype=torch.float64):
    mu = torch.randn(shape, dtype=dtype, generator=gen)
    if scale in ("var", "std"):
        s = torch.rand(shape, dtype=dtype, generator=gen) + 0.5
    else:
        s = torch.randn(shape, dtype=dtype, generator=gen) * 0.7
    return mu.requires_grad_(), s.requires_grad_()


def _std(s, scale):
    return {"var": torch.sqrt(s), "std": s, "logvar": torch.exp(0.5 * s),
            "logstd": torch.exp(s)}[scale]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("axis,keepdims", [(-1, False), (0, False), (0, True), (None, False)])
def test_gaussian_kl_gradcheck(scale, reduction, axis, keepdims):
    gen = torch.Generator().manual_seed(11)
    mu1, s1 = _gaussian_params(scale, (3, 4), gen)
    mu2, s2 = _gaussian_params(scale, (4,), gen)        # broadcast against (3, 4)
    options = dict(scale=scale, reduction=reduction, axis=axis, keepdims=keepdims)
    assert gradcheck(lambda *a: kl_fast.gaussian_kl(*a, base=2, **options), (mu1, s1, mu2, s2))
    assert gradcheck(lambda a, b: kl_fast.gaussian_kl(a, b, **options), (mu1, s1))


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_second_derivatives(scale):
    gen = torch.Generator().manual_seed(12)
    mu1, s1 = _gaussian_params(scale, (2, 3), gen)
    mu2, s2 = _gaussian_params(scale, (2, 3), gen)
    assert gradgradcheck(lambda *a: kl_fast.gaussian_kl(*a, scale=scale), (mu1, s1, mu2, s2))


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_gradient_matches_torch_distributions(scale):
    gen = torch.Generator().manual_seed(13)
    params = [*_gaussian_params(scale, (5, 3), gen), *_gaussian_params(scale, (5, 3), gen)]
    ours = kl_fast.gaussian_kl(*params, scale=scale, reduction="mean")
    ours_grads = torch.autograd.grad(ours, params)
    normal = torch.distributions.Normal
    theirs = torch.distributions.kl_divergence(
        normal(params[0], _std(params[1], scale)), normal(params[2], _std(params[3], scale))
    ).sum(-1).mean()
    theirs_grads = torch.autograd.grad(theirs, params)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-13)
    for a, b in zip(ours_grads, theirs_grads, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-15)


def test_vae_loss_trains_with_the_gradient_of_the_explicit_formula():
    gen = torch.Generator().manual_seed(14)
    mu, logvar = _gaussian_params("logvar", (8, 6), gen)
    loss = kl_fast.gaussian_kl(mu, logvar, scale="logvar").mean()
    loss.backward()
    mu_ref, lv_ref = mu.detach().clone().requires_grad_(), logvar.detach().clone().requires_grad_()
    explicit = (0.5 * (mu_ref ** 2 + torch.exp(lv_ref) - lv_ref - 1).sum(-1)).mean()
    explicit.backward()
    np.testing.assert_allclose(loss.detach().numpy(), explicit.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(mu.grad.numpy(), mu_ref.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(logvar.grad.numpy(), lv_ref.grad.numpy(), rtol=1e-12)


def test_gaussian_kl_float32_gradient_has_the_input_dtype():
    gen = torch.Generator().manual_seed(15)
    mu, logvar = _gaussian_params("logvar", (4, 3), gen, torch.float32)
    target = torch.zeros(3)                 # a tensor without grad beside ones with it
    loss = kl_fast.gaussian_kl(mu, logvar, target, np.zeros(3, np.float32), scale="logvar")
    assert loss.dtype == torch.float32 and loss.grad_fn is not None
    loss.sum().backward()
    assert mu.grad.dtype == torch.float32 and logvar.grad.dtype == torch.float32
    np.testing.assert_allclose(mu.grad.numpy(), mu.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(logvar.grad.numpy(), 0.5 * np.expm1(logvar.detach().numpy()),
                               rtol=1e-5, atol=1e-7)


def test_gaussian_kl_with_grad_refuses_out():
    mu = torch.zeros(3, requires_grad=True)
    with pytest.raises(TypeError, match="out= .* cannot carry the gradient"):
        kl_fast.gaussian_kl(mu, torch.ones(3), axis=None, out=np.empty(3, np.float32))


# -- kl_divergence, cross_entropy and entropy carry the gradient --------------------------------

def _rows_in(space, shape, normalize, gen, axis=-1):
    """Interior inputs in `space`: a small step keeps them valid (or normalized)."""
    x = torch.randn(shape, dtype=torch.float64, generator=gen)
    if space == "prob":
        x = torch.rand(shape, dtype=torch.float64, generator=gen) + 0.2 if normalize \
            else torch.softmax(x, axis)
    elif space == "log":
        x = torch.log_softmax(x, axis) + (0.3 if normalize else 0.0)
    return x.requires_grad_()


ROW_OPTIONS = [
    dict(normalize=False, reduction="none", axis=-1, keepdims=False),
    dict(normalize=True, reduction="mean", axis=-1, keepdims=False, base=2),
    dict(normalize=False, reduction="sum", axis=0, keepdims=False, temperature=2.0),
    dict(normalize=True, reduction="none", axis=0, keepdims=True),
]


def _row_cases():
    for ps in ("prob", "log", "logits"):
        for qs in ("prob", "log", "logits"):
            for i, options in enumerate(ROW_OPTIONS):
                if options.get("temperature", 1.0) != 1.0 and "logits" not in (ps, qs):
                    continue
                # probabilities or log-probabilities against logits are defined on the simplex
                # only (the kernel's extension off it differs from torch's): compared with
                # torch's own formula on valid rows below instead of a finite-difference check
                if ps != "logits" and qs == "logits" and not options["normalize"]:
                    continue
                yield ps, qs, i


@pytest.mark.parametrize("ps,qs,i", list(_row_cases()))
def test_row_reductions_gradcheck(ps, qs, i):
    options = dict(ROW_OPTIONS[i], validate=False)
    gen = torch.Generator().manual_seed(20 + i)
    axis, normalize = options["axis"], options["normalize"]
    p = _rows_in(ps, (3, 4), normalize, gen, axis)
    q = _rows_in(qs, (3, 4) if axis == 0 else (4,), normalize, gen, axis)
    assert gradcheck(lambda a, b: kl_fast.kl_divergence(a, b, p_space=ps, q_space=qs, **options),
                     (p, q))
    if ps == "prob":
        assert gradcheck(lambda a, b: kl_fast.cross_entropy(a, b, q_space=qs, **options), (p, q))
    if qs == "prob" and (ps == "logits" or "temperature" not in options):
        assert gradcheck(lambda a: kl_fast.entropy(a, space=ps, **options), (p,))


@pytest.mark.parametrize("q_space", ["prob", "log", "logits"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_label_cross_entropy_gradcheck(q_space, reduction):
    gen = torch.Generator().manual_seed(30)
    q = _rows_in(q_space, (5, 4), False, gen)
    labels = torch.tensor([0, 3, 2, 1, 2])
    assert gradcheck(lambda b: kl_fast.cross_entropy(labels, b, q_space=q_space,
                                                     reduction=reduction, validate=False), (q,))
    axis0 = _rows_in(q_space, (4, 5), True, gen, axis=0)
    assert gradcheck(lambda b: kl_fast.cross_entropy(labels, b, q_space=q_space, axis=0,
                                                     normalize=True, reduction=reduction), (axis0,))


def test_distillation_gradient_matches_torch():
    gen = torch.Generator().manual_seed(31)
    teacher = torch.randn(6, 10, dtype=torch.float64, generator=gen, requires_grad=True)
    student = torch.randn(6, 10, dtype=torch.float64, generator=gen, requires_grad=True)
    ours = kl_fast.kl_divergence(teacher, student, p_space="logits", q_space="logits",
                                 temperature=2.0, reduction="mean")
    theirs = torch.nn.functional.kl_div(torch.log_softmax(student / 2, -1),
                                        torch.log_softmax(teacher / 2, -1), log_target=True,
                                        reduction="batchmean")
    _assert_same_value_and_gradient(ours, theirs, (teacher, student))


def test_soft_target_cross_entropy_gradient_matches_torch():
    gen = torch.Generator().manual_seed(32)
    target = torch.softmax(torch.randn(6, 10, dtype=torch.float64, generator=gen), -1)
    target.requires_grad_()
    logits = torch.randn(6, 10, dtype=torch.float64, generator=gen, requires_grad=True)
    ours = kl_fast.cross_entropy(target, logits, q_space="logits", reduction="mean")
    theirs = torch.nn.functional.cross_entropy(logits, target)
    _assert_same_value_and_gradient(ours, theirs, (target, logits))
    # probabilities or log-probabilities against logits
    ours = kl_fast.kl_divergence(target, logits, q_space="logits", reduction="sum")
    theirs = (target * (torch.log(target) - torch.log_softmax(logits, -1))).sum()
    _assert_same_value_and_gradient(ours, theirs, (target, logits))
    ours = kl_fast.kl_divergence(torch.log(target), logits, p_space="log", q_space="logits")
    theirs = (target * (torch.log(target) - torch.log_softmax(logits, -1))).sum(-1)
    _assert_same_value_and_gradient(ours.sum(), theirs.sum(), (target, logits))


@pytest.mark.parametrize("q_space", ["prob", "logits"])
def test_label_cross_entropy_gradient_matches_torch(q_space):
    gen = torch.Generator().manual_seed(33)
    logits = torch.randn(7, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    def scores():
        return torch.softmax(logits, -1) if q_space == "prob" else logits

    labels = torch.tensor([0, 4, -100, 1, 2, 2, -100])
    ours = kl_fast.cross_entropy(labels, scores(), q_space=q_space, ignore_index=-100,
                                 reduction="mean")
    theirs = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100)
    _assert_same_value_and_gradient(ours, theirs, (logits,))
    per_row = kl_fast.cross_entropy(labels, scores(), q_space=q_space, ignore_index=-100)
    keep = labels != -100
    assert torch.isnan(per_row[~keep]).all()
    theirs = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="none")
    _assert_same_value_and_gradient(per_row[keep].sum(), theirs[keep].sum(), (logits,))


def test_entropy_and_probability_kl_gradients_match_torch():
    gen = torch.Generator().manual_seed(34)
    logits = torch.randn(4, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    ours = kl_fast.entropy(logits, space="logits", base=2).sum()
    theirs = torch.distributions.Categorical(logits=logits).entropy().sum() / math.log(2)
    _assert_same_value_and_gradient(ours, theirs, (logits,))
    p = torch.softmax(logits, -1)
    q = torch.softmax(torch.randn(6, dtype=torch.float64, generator=gen), -1).requires_grad_()
    ours = kl_fast.kl_divergence(p, q, reduction="mean")          # q broadcast over the rows
    theirs = (p * (torch.log(p) - torch.log(q))).sum(-1).mean()
    _assert_same_value_and_gradient(ours, theirs, (logits, q))


def _assert_same_value_and_gradient(ours, theirs, inputs):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    # retain_graph: the two graphs may share a node (e.g. a softmax of the inputs)
    ours_grads = torch.autograd.grad(ours, inputs, retain_graph=True)
    for a, b in zip(ours_grads, torch.autograd.grad(theirs, inputs), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-14)


def test_row_reduction_gradient_float32_and_second_derivatives():
    gen = torch.Generator().manual_seed(35)
    a = torch.randn(3, 5, generator=gen, requires_grad=True)
    b = torch.randn(3, 5, generator=gen, requires_grad=True)
    loss = kl_fast.kl_divergence(a, b, p_space="logits", q_space="logits", reduction="sum")
    assert loss.dtype == torch.float32
    loss.backward()
    assert a.grad.dtype == torch.float32
    a64, b64 = a.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    assert gradgradcheck(lambda x, y: kl_fast.kl_divergence(x, y, p_space="logits",
                                                            q_space="logits"), (a64, b64))


def test_row_reduction_gradient_refuses_out_and_keywords_it_cannot_differentiate():
    logits = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(TypeError, match="out= .* cannot carry the gradient"):
        kl_fast.entropy(logits, space="logits", out=np.empty(2))

    def with_weight(p, *, space="prob", weight=None):     # a keyword with no derivative here
        return kl_fast.entropy(p, space=space)

    options = dict(p=logits, space="logits", weight=np.ones(3), **{
        k: v for k, v in dict(axis=-1, base=None, eps=0.0, normalize=False, reduction="none",
                              keepdims=False, out=None, backend="auto", num_threads=None,
                              validate=True, temperature=1.0).items()})
    with pytest.raises(TypeError, match=r"^with_weight carries a gradient .* not with weight="):
        _autograd_rows.differentiate("h", with_weight, options)


# -- bfloat16 is computed as float32 -----------------------------------------------------------

def test_bfloat16_logits_give_the_float32_result():
    gen = torch.Generator().manual_seed(16)
    teacher = (3 * torch.randn(6, 50, generator=gen)).bfloat16()
    student = (3 * torch.randn(6, 50, generator=gen)).bfloat16()
    ours = kl_fast.kl_divergence(teacher, student, p_space="logits", q_space="logits")
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32
    same = kl_fast.kl_divergence(teacher.float(), student.float(), p_space="logits",
                                 q_space="logits")
    np.testing.assert_array_equal(ours.numpy(), same.numpy())
    a, b = teacher.double(), student.double()      # bf16 values are exact in float64
    theirs = torch.nn.functional.kl_div(torch.log_softmax(b, -1), torch.log_softmax(a, -1),
                                        log_target=True, reduction="none").sum(-1)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-7)


def test_bfloat16_label_cross_entropy_matches_torch():
    gen = torch.Generator().manual_seed(17)
    logits = torch.randn(7, 11, generator=gen).bfloat16()
    labels = torch.randint(0, 11, (7,), generator=gen)
    ours = kl_fast.cross_entropy(labels, logits, q_space="logits", reduction="mean")
    assert ours.dtype == torch.float32
    theirs = torch.nn.functional.cross_entropy(logits.double(), labels)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_bfloat16_probabilities_and_gaussians():
    p = torch.tensor([[1.0, 3.0, 4.0], [2.0, 2.0, 4.0]]).bfloat16()
    h = kl_fast.entropy(p, normalize=True)
    assert h.dtype == torch.float32
    np.testing.assert_allclose(h.numpy(), ref.entropy(p.double().numpy(), normalize=True),
                               rtol=1e-6)
    mu, logvar = torch.randn(3, 4).bfloat16(), torch.randn(3, 4).bfloat16()
    kl = kl_fast.gaussian_kl(mu, logvar, scale="logvar")
    assert kl.dtype == torch.float32
    np.testing.assert_allclose(kl.numpy(), ref.gaussian_kl(mu.double().numpy(),
                                                           logvar.double().numpy(),
                                                           scale="logvar"), rtol=1e-6)


def test_jax_bfloat16_is_computed_as_float32():
    logits = np.random.default_rng(18).normal(size=(4, 9)).astype(np.float32)
    as_bf16 = jnp.asarray(logits, dtype=jnp.bfloat16)
    ours = kl_fast.entropy(as_bf16, space="logits")
    assert ours.dtype == jnp.float32
    expected = kl_fast.entropy(np.asarray(as_bf16.astype(jnp.float32)), space="logits")
    np.testing.assert_array_equal(np.asarray(ours), expected)


# -- one univariate Gaussian from scalars -------------------------------------------------------

def _closed_form(m1, v1, m2, v2):
    return 0.5 * (v1 / v2 - 1.0 - math.log(v1 / v2) + (m1 - m2) ** 2 / v2)


@pytest.mark.parametrize("scale", SCALES)
def test_gaussian_kl_of_python_scalars(scale):
    m1, v1, m2, v2 = 0.3, 1.7, -0.2, 0.6
    to_scale = {"var": lambda v: v, "std": math.sqrt, "logvar": math.log,
                "logstd": lambda v: 0.5 * math.log(v)}[scale]
    result = kl_fast.gaussian_kl(m1, to_scale(v1), m2, to_scale(v2), scale=scale)
    assert type(result) is np.float64
    np.testing.assert_allclose(result, _closed_form(m1, v1, m2, v2), rtol=1e-14)
    prior = kl_fast.gaussian_kl(m1, to_scale(v1), scale=scale, base=2)
    np.testing.assert_allclose(prior, _closed_form(m1, v1, 0.0, 1.0) / math.log(2), rtol=1e-14)


def test_gaussian_kl_the_issue_example_and_zero_d_arrays():
    result = kl_fast.gaussian_kl(0.0, 1.0, 0.2, 1.0)
    assert type(result) is np.float64
    normal = torch.distributions.Normal
    theirs = torch.distributions.kl_divergence(normal(torch.tensor(0.0, dtype=torch.float64), 1.0),
                                               normal(torch.tensor(0.2, dtype=torch.float64), 1.0))
    np.testing.assert_allclose(result, theirs.item(), rtol=1e-14)
    np.testing.assert_allclose(result, 0.02, rtol=1e-14)
    zero_d = kl_fast.gaussian_kl(np.float32(0.0), np.array(1.0, np.float32),
                                 np.array(0.2, np.float32), np.float32(1.0))
    assert type(zero_d) is np.float32
    np.testing.assert_allclose(zero_d, _closed_form(0.0, 1.0, float(np.float32(0.2)), 1.0),
                               rtol=1e-7)
    tensor = kl_fast.gaussian_kl(torch.tensor(0.5), torch.tensor(2.0))
    assert isinstance(tensor, torch.Tensor) and tensor.dim() == 0
    np.testing.assert_allclose(tensor.numpy(), _closed_form(0.5, 2.0, 0.0, 1.0), rtol=1e-6)


# -- pandas: paired by label, pandas out -------------------------------------------------------

def _frame(values, rows, cols):
    return pd.DataFrame(values, index=list(rows), columns=list(cols))


def test_series_with_reordered_labels_are_aligned():
    p = pd.Series([0.8, 0.2], index=["h", "t"])
    q = pd.Series([0.4, 0.6], index=["t", "h"])
    result = kl_fast.kl_divergence(p, q)
    assert type(result) is np.float64
    np.testing.assert_allclose(result, ref.kl([0.8, 0.2], [0.6, 0.4]), rtol=1e-14)
    np.testing.assert_allclose(kl_fast.kl_divergence(p, q, base=2), 0.13203, atol=5e-6)


def test_frames_with_reordered_rows_and_columns_are_aligned(rng):
    values_p, values_q = rng.dirichlet(np.ones(4), 5), rng.dirichlet(np.ones(4), 5)
    p = _frame(values_p, "abcde", "wxyz")
    q = _frame(values_q, "abcde", "wxyz").loc[list("ecadb"), list("zxwy")]
    for fn, oracle in [(kl_fast.kl_divergence, ref.kl), (kl_fast.js_divergence, ref.js),
                       (kl_fast.cross_entropy, ref.cross_entropy)]:
        result = fn(p, q)
        assert isinstance(result, pd.Series) and list(result.index) == list("abcde")
        np.testing.assert_allclose(result.to_numpy(), oracle(values_p, values_q), rtol=1e-13)
        swapped = fn(q, p)           # the first input's order labels the result
        assert list(swapped.index) == list("ecadb")
        np.testing.assert_allclose(swapped.loc[list("abcde")].to_numpy(),
                                   oracle(values_q, values_p), rtol=1e-13)


def test_different_labels_raise_naming_both_and_the_fix():
    p = pd.Series([0.8, 0.2], index=["h", "t"])
    q = pd.Series([0.5, 0.3, 0.2], index=["h", "t", "edge"])
    message = (r"^q's index and p's index hold different labels \(only in q's index: "
               r"\['edge'\]; only in p's index: \[\]\).*never silently by position.*"
               r"q = q\.reindex\(index=p\.index, fill_value=0\).*q\.to_numpy\(\)")
    with pytest.raises(ValueError, match=message):
        kl_fast.kl_divergence(p, q)
    # the advice the other way round: p gets the missing category with probability 0
    filled = p.reindex(index=q.index, fill_value=0)
    np.testing.assert_allclose(kl_fast.kl_divergence(filled, q),
                               ref.kl([0.8, 0.2, 0.0], [0.5, 0.3, 0.2]), rtol=1e-14)


def test_different_rows_and_duplicate_labels_raise():
    p = _frame(np.full((2, 2), 0.5), "ab", "xy")
    with pytest.raises(ValueError, match=r"^q's index and p's index hold different labels"):
        kl_fast.kl_divergence(p, _frame(np.full((2, 2), 0.5), "ac", "xy"))
    with pytest.raises(ValueError, match=r"^q's columns and p's columns hold duplicate labels"):
        kl_fast.kl_divergence(p, _frame(np.full((2, 2), 0.5), "ab", "xx"))


def test_numpy_against_pandas_pairs_by_position_and_keeps_the_labels(rng):
    values = rng.dirichlet(np.ones(3), 4)
    p = _frame(values, "abcd", "xyz")
    q = values[::-1].copy()
    result = kl_fast.kl_divergence(q, p)
    assert isinstance(result, pd.Series) and list(result.index) == list("abcd")
    np.testing.assert_allclose(result.to_numpy(), ref.kl(q, values), rtol=1e-13)
    single = kl_fast.kl_divergence(p, p.iloc[2])     # a Series pairs with the columns
    np.testing.assert_allclose(single.to_numpy(), ref.kl(values, values[2]), rtol=1e-13)


def test_pandas_out_shapes_for_row_reductions(rng):
    values = rng.dirichlet(np.ones(3), 4)
    p = _frame(values, "abcd", "xyz")
    along_rows = kl_fast.entropy(p.T, axis=0)
    assert isinstance(along_rows, pd.Series) and list(along_rows.index) == list("abcd")
    np.testing.assert_allclose(along_rows.to_numpy(), ref.entropy(values), rtol=1e-13)
    kept = kl_fast.entropy(p, keepdims=True)
    assert isinstance(kept, pd.DataFrame) and kept.shape == (4, 1)
    assert list(kept.index) == list("abcd")
    total = kl_fast.entropy(p, reduction="sum")
    assert type(total) is np.float64
    np.testing.assert_allclose(total, ref.entropy(values).sum(), rtol=1e-13)
    logits = kl_fast.kl_divergence(p, p.iloc[::-1], p_space="logits", q_space="logits")
    assert list(logits.index) == list("abcd")
    np.testing.assert_array_equal(logits.to_numpy(), np.zeros(4))


def test_pandas_labels_against_a_frame_of_probabilities(rng):
    values = rng.dirichlet(np.ones(3), 4)
    q = _frame(values, "abcd", "xyz")
    labels = pd.Series([2, 0, 1, 0], index=list("dcba"))      # d -> 2, c -> 0, ...
    result = kl_fast.cross_entropy(labels, q)
    assert isinstance(result, pd.Series) and list(result.index) == list("dcba")
    expected = ref.cross_entropy_labels([0, 1, 0, 2], values)  # rows a, b, c, d
    np.testing.assert_allclose(result.loc[list("abcd")].to_numpy(), expected, rtol=1e-13)
    with pytest.raises(ValueError, match=r"^q's index and p's index hold different labels"):
        kl_fast.cross_entropy(labels, q.iloc[:3])


def test_pandas_elementwise_functions(rng):
    p = pd.Series(rng.uniform(0.1, 0.9, 5), index=list("abcde"))
    q = pd.Series(rng.uniform(0.1, 0.9, 5), index=list("abcde"))
    shuffled = q.loc[list("cebad")]
    for fn in (kl_fast.binary_kl, kl_fast.binary_cross_entropy):
        result = fn(p, shuffled)
        assert isinstance(result, pd.Series) and list(result.index) == list("abcde")
        np.testing.assert_array_equal(result.to_numpy(), fn(p.to_numpy(), q.to_numpy()))
    est = kl_fast.kl_estimate(np.log(p), np.log(shuffled), reduction="mean")
    assert type(est) is np.float64
    np.testing.assert_allclose(est, kl_fast.kl_estimate(np.log(p.to_numpy()),
                                                        np.log(q.to_numpy()), reduction="mean"),
                               rtol=1e-15)


def test_pandas_gaussians(rng):
    mu, var = _frame(rng.normal(size=(3, 2)), "abc", "uv"), _frame(rng.uniform(1, 2, (3, 2)),
                                                                    "abc", "uv")
    per_row = kl_fast.gaussian_kl(mu, var.loc[list("cab"), ["v", "u"]])
    assert isinstance(per_row, pd.Series) and list(per_row.index) == list("abc")
    np.testing.assert_allclose(per_row.to_numpy(), ref.gaussian_kl(mu.to_numpy(), var.to_numpy()),
                               rtol=1e-13)
    per_coordinate = kl_fast.gaussian_kl(mu, var, axis=None)
    assert isinstance(per_coordinate, pd.DataFrame)
    assert list(per_coordinate.index) == list("abc") and list(per_coordinate.columns) == ["u", "v"]
    one = kl_fast.gaussian_kl(mu.iloc[0], var.iloc[0])
    assert type(one) is np.float64
    cov = np.array([[2.0, 0.3], [0.3, 1.0]])
    labelled = _frame(cov, "uv", "uv").loc[["v", "u"], ["v", "u"]]
    full = kl_fast.gaussian_kl_full(mu, labelled)
    assert isinstance(full, pd.Series) and list(full.index) == list("abc")
    np.testing.assert_allclose(full.to_numpy(), kl_fast.gaussian_kl_full(mu.to_numpy(), cov),
                               rtol=1e-14)


def test_pandas_pairwise_and_mutual_information(rng):
    P = _frame(rng.dirichlet(np.ones(3), 4), "abcd", "xyz")
    Q = _frame(rng.dirichlet(np.ones(3), 2), "mn", "xyz")
    matrix = kl_fast.pairwise_kl(P, Q[["z", "y", "x"]])
    assert isinstance(matrix, pd.DataFrame)
    assert list(matrix.index) == list("abcd") and list(matrix.columns) == ["m", "n"]
    expected = ref.kl(P.to_numpy()[:, None, :], Q.to_numpy()[None, :, :])
    np.testing.assert_allclose(matrix.to_numpy(), expected, rtol=1e-12)
    square = kl_fast.pairwise_js(P)
    assert list(square.index) == list(square.columns) == list("abcd")
    joint = _frame(np.array([[0.5, 0.0], [0.0, 0.5]]), "ab", "cd")
    mi = kl_fast.mutual_information(joint, base=2)
    assert type(mi) is np.float64 and mi == 1.0


def test_importing_kl_fast_does_not_import_pandas():
    code = "import sys, kl_fast; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
