"""One small valid call of every public function, on a chosen backend.

Like ``public_calls.CALLS`` (whose input makers it reuses), but each call takes
``backend`` and extra keywords, and each entry says how to break its inputs, so
the odd-buffer and untouched-input tests can sweep every function x backend:

``CALLS[name] = Call(make, run, float_args, breaks)``

- ``make(rng)`` -> tuple of numpy inputs (valid);
- ``run(inputs, backend, **kw)`` -> the result;
- ``float_args``: indices of the inputs that are float arrays (the ones an odd
  layout is applied to; integer labels are swept separately);
- ``breaks(inputs)`` -> the same inputs with one value made invalid, so the
  call raises ValueError (found during the kernel's pass where it checks values);
- ``errors``: every other kind of error the function can raise once ``out=`` was
  accepted, ``{label: fn(inputs) -> (inputs, extra keywords)}`` (a bad row sum, a
  label out of range, a matrix that is not positive definite, a bad keyword, ...).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import kl_fast
import kl_fast.scipy as ks
from tests.public_calls import CALLS as PUBLIC


@dataclass(frozen=True)
class Call:
    make: Callable
    run: Callable
    float_args: tuple
    breaks: Callable
    errors: dict = field(default_factory=dict)

    def all_errors(self):
        """{label: fn(inputs) -> (inputs, keywords)}, the value error `breaks` first."""
        return {"bad-value": lambda inputs: (self.breaks(inputs), {}), **self.errors}


def _changed(index, change):
    """Inputs with input `index` replaced by ``change(copy of it)``."""
    def breaks(inputs):
        inputs = [np.array(x, copy=True) for x in inputs]
        inputs[index] = change(inputs[index])
        return tuple(inputs)
    return breaks


def _set_last(x, value):
    x.reshape(-1)[-1] = value
    return x


def _nan_at_last(index):
    """Inputs with the last element of input `index` set to NaN (a bad row, not the first)."""
    return _changed(index, lambda x: _set_last(x, np.nan))


def _data(breaks, **keywords):
    """An error variant: the inputs changed by `breaks` (and `keywords` added)."""
    return lambda inputs: (breaks(inputs), keywords)


def _keywords(**keywords):
    """An error variant: valid inputs, a bad keyword."""
    return lambda inputs: (inputs, keywords)


def _scaled(index, factor=1.5):
    """Rows of input `index` that sum to `factor`, not 1."""
    return _data(_changed(index, lambda x: x * factor))


def _last_row(index, value):
    """The last row of input `index` all `value` (e.g. every logit -inf)."""
    def change(x):
        x[-1] = value
        return x
    return _data(_changed(index, change))


def _labels_on_probabilities(inputs):
    """Labels against probabilities (softmax of the logits), the last label out of range."""
    y, q = _bad_label(inputs)
    q = np.exp(q - q.max(axis=-1, keepdims=True))
    return y, q / q.sum(axis=-1, keepdims=True)


def _not_symmetric(inputs):
    mu1, cov1, mu2, cov2 = (np.array(x, copy=True) for x in inputs)
    cov1[-1, 0, 1] += 1.0
    return mu1, cov1, mu2, cov2


def _bad_label(inputs):
    y, q = (np.array(x, copy=True) for x in inputs)
    y[-1] = q.shape[-1] + 3
    return y, q


def _not_pd(inputs):
    mu1, cov1, mu2, cov2 = (np.array(x, copy=True) for x in inputs)
    cov1[-1] = -np.eye(cov1.shape[-1])
    return mu1, cov1, mu2, cov2


def _fn(f, **fixed):
    """run(inputs, backend, **kw): `kw` may override the `fixed` keywords."""
    return lambda inputs, backend, **kw: f(*inputs, backend=backend, **{**fixed, **kw})


CALLS = {
    "kl_divergence": Call(
        PUBLIC["kl_divergence"][0], _fn(kl_fast.kl_divergence), (0, 1), _nan_at_last(1),
        {"bad-sum": _scaled(0), "bad-base": _keywords(base=-1.0),
         "bad-space": _keywords(p_space="probs")}),
    "kl_divergence_logits": Call(
        PUBLIC["kl_divergence_logits"][0],
        _fn(kl_fast.kl_divergence, p_space="logits", q_space="logits"), (0, 1),
        _nan_at_last(0),
        {"row-all-minus-inf": _last_row(1, -np.inf), "bad-temperature": _keywords(temperature=-1.0),
         "eps-with-logits": _keywords(eps=0.1)}),
    "entropy": Call(
        PUBLIC["entropy"][0], _fn(kl_fast.entropy), (0,), _nan_at_last(0),
        {"bad-sum": _scaled(0), "bad-eps": _keywords(eps=-1.0)}),
    "cross_entropy": Call(
        PUBLIC["cross_entropy"][0], _fn(kl_fast.cross_entropy), (0, 1), _nan_at_last(1),
        {"bad-sum": _scaled(1), "ignore-index-without-labels": _keywords(ignore_index=3)}),
    "cross_entropy_labels": Call(
        PUBLIC["cross_entropy_labels"][0], _fn(kl_fast.cross_entropy, q_space="logits"), (1,),
        _bad_label,
        {"nan-logit": _data(_nan_at_last(1)), "row-all-minus-inf": _last_row(1, -np.inf),
         "label-out-of-range-on-probabilities": _data(_labels_on_probabilities,
                                                      q_space="prob"),
         "bad-ignore-index": _keywords(ignore_index=1.5), "eps-with-logits": _keywords(eps=0.1)}),
    "js_divergence": Call(
        PUBLIC["js_divergence"][0], _fn(kl_fast.js_divergence), (0, 1), _nan_at_last(0),
        {"bad-sum": _scaled(1), "bad-normalize": _keywords(normalize="yes")}),
    "gaussian_kl": Call(
        PUBLIC["gaussian_kl"][0], _fn(kl_fast.gaussian_kl), (0, 1), _nan_at_last(1),
        {"negative-variance": _data(_changed(1, lambda x: _set_last(x, -1.0))),
         "bad-scale": _keywords(scale="sigma")}),
    "gaussian_kl_full": Call(
        PUBLIC["gaussian_kl_full"][0], _fn(kl_fast.gaussian_kl_full), (0, 1, 2, 3), _not_pd,
        {"not-symmetric": _data(_not_symmetric), "nan-mean": _data(_nan_at_last(0)),
         "bad-base": _keywords(base=0.0)}),
    "mutual_information": Call(
        PUBLIC["mutual_information"][0], _fn(kl_fast.mutual_information), (0,),
        _nan_at_last(0),
        {"bad-sum": _scaled(0), "same-axis-twice": _keywords(axes=(1, 1))}),
    "pairwise_kl": Call(
        PUBLIC["pairwise_kl"][0], _fn(kl_fast.pairwise_kl), (0, 1), _nan_at_last(1),
        {"bad-sum": _scaled(0), "nan-precise": _data(_nan_at_last(0), precise=True),
         "categories-differ": _data(_changed(1, lambda x: x[:, :-1]))}),
    "pairwise_js": Call(
        PUBLIC["pairwise_js"][0], _fn(kl_fast.pairwise_js), (0, 1), _nan_at_last(1),
        {"bad-sum": _scaled(1), "bad-eps": _keywords(eps=-1.0)}),
    "binary_kl": Call(
        PUBLIC["binary_kl"][0], _fn(kl_fast.binary_kl), (0, 1), _nan_at_last(1),
        {"above-one": _scaled(0, 3.0), "bad-space": _keywords(q_space="probs")}),
    "binary_cross_entropy": Call(
        PUBLIC["binary_cross_entropy"][0], _fn(kl_fast.binary_cross_entropy), (0, 1),
        _nan_at_last(1),
        {"target-above-one": _scaled(0, 3.0), "bad-eps": _keywords(eps=-0.1)}),
    "kl_estimate": Call(
        PUBLIC["kl_estimate"][0], _fn(kl_fast.kl_estimate, kind="k3"), (0, 1), _nan_at_last(1),
        {"infinite-logp": _data(_changed(0, lambda x: _set_last(x, np.inf))),
         "bad-kind": _keywords(kind="k4")}),
}

# the scipy drop-ins run on the default backend (they take no backend keyword)
SCIPY_CALLS = {
    "scipy.rel_entr": (PUBLIC["kl_divergence"][0], lambda p, q: ks.rel_entr(p, q)),
    "scipy.entropy": (PUBLIC["kl_divergence"][0], lambda p, q: ks.entropy(p, q, axis=-1)),
    "scipy.entropy_1": (PUBLIC["entropy"][0], lambda p: ks.entropy(p, axis=-1)),
    "scipy.jensenshannon": (PUBLIC["js_divergence"][0],
                            lambda p, q: ks.jensenshannon(p, q, axis=-1)),
}
