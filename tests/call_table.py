"""The table of calls every sweep over the public functions uses: one small valid call of
each public function on a chosen backend, its other valid variants and its error variants.

Users: tests/test_odd_buffers.py and tests/test_inputs_untouched.py (``CALLS``: the
inputs, the call, how to break it), tests/test_thread_stress.py and tests/test_leaks.py
(``cases``: every valid and error variant as ``call(backend, num_threads)``).  The input
makers are those of ``public_calls.CALLS`` (the array-type tests).

``CALLS[name] = Call(function, make, run, float_args, breaks, errors, variants, oracle)``

- ``function``: the public function it calls (two entries call ``kl_divergence``, two
  ``cross_entropy``);
- ``make(rng)`` -> tuple of numpy inputs (valid);
- ``run(inputs, backend, **kw)`` -> the result; `kw` may override the entry's own
  keywords (an error variant's ``backend="fortran"`` too: pass ``backend=`` as a keyword
  then, ``run(inputs, **{"backend": b, **kw})``);
- ``float_args``: indices of the inputs that are float arrays (the ones an odd
  layout is applied to; integer labels are swept separately);
- ``breaks(inputs)`` -> the same inputs with one value made invalid, so the
  call raises ValueError (found during the kernel's pass where it checks values);
- ``errors``: every other kind of error the function can raise once ``out=`` was
  accepted, ``{label: fn(inputs) -> (inputs, extra keywords)}`` (a bad row sum, a
  label out of range, a matrix that is not positive definite, a bad keyword, ...);
- ``variants``: other valid calls, in the same form (other spaces, options, reductions);
- ``oracle(*inputs)`` -> what the plain call must return, in float64 from the textbook
  formula (``tests/reference.py``'s naive loops where it has one; checked on every backend
  by ``tests/test_call_table.py``).

``SCIPY_CALLS[name] = (make, run)``: the scipy drop-ins (no backend keyword).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import kl_fast
import kl_fast.scipy as ks
from tests import reference as ref
from tests.public_calls import CALLS as PUBLIC


@dataclass(frozen=True)
class Call:
    function: str
    make: Callable
    run: Callable
    float_args: tuple
    breaks: Callable
    errors: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)
    oracle: Callable | None = None

    def all_errors(self):
        """{label: fn(inputs) -> (inputs, keywords)}, the value error `breaks` first."""
        return {"bad-value": lambda inputs: (self.breaks(inputs), {}), **self.errors}

    def all_valid(self):
        """{label: fn(inputs) -> (inputs, keywords)}, the plain call first."""
        return {"plain": lambda inputs: (inputs, {}), **self.variants}


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


def _data(change, **keywords):
    """A variant: the inputs changed by `change` (and `keywords` added)."""
    return lambda inputs: (change(inputs), keywords)


def _keywords(**keywords):
    """A variant: the same inputs, other keywords (e.g. a bad one)."""
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


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _labels_on_probabilities(inputs):
    """Labels against probabilities (softmax of the logits), the last label out of range."""
    y, q = _bad_label(inputs)
    return y, _softmax(q)


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


def _stray_category_axis(index):
    """Input `index` with a length-1 category axis (it never broadcasts against K)."""
    return _changed(index, lambda x: x[..., :1])


def _labels_as_floats(inputs):
    """Soft targets replaced by whole-number floats of the labels' shape (a lookalike)."""
    p, q = inputs
    return np.zeros(q.shape[:-1]), q


def _positive_log_label(inputs):
    """Log-probabilities whose value picked by the first label is positive."""
    y, q = (np.array(x, copy=True) for x in inputs)
    logq = np.log(_softmax(q))
    logq[(0,) * (logq.ndim - 1) + (int(y.flat[0]),)] = 0.5
    return y, logq


def _fn(f, **fixed):
    """run(inputs, backend, **kw): `kw` may override the `fixed` keywords and the backend."""
    return lambda inputs, backend, **kw: f(*inputs, **{"backend": backend, **fixed, **kw})


def _labels_ignored_on_probabilities(inputs):
    """Labels (the first one -100, ignored) against probabilities."""
    y, q = (np.array(x, copy=True) for x in inputs)
    y[0] = -100
    return y, _softmax(q)


def _log_of(index):
    """Input `index` as log-probabilities (p_space="log")."""
    return _changed(index, np.log)


# a where= mask for the 6 elements of the elementwise calls; ~_EVERY_OTHER[::-1] leaves
# the last element out (where the padding variants put their NaN / -inf)
_EVERY_OTHER = np.arange(6) % 2 == 0


def _two_gaussians(inputs):
    mu, var = inputs
    return mu, var, mu[::-1], var[::-1]


def _prior_only(inputs):
    return inputs[:2]


# -- oracles: the plain call's value from its formula, in float64 --------------------------------

def _gaussian_kl_full(mu1, cov1, mu2, cov2):
    """KL(N(mu1, cov1) || N(mu2, cov2))
    = (tr(S2^-1 S1) + d' S2^-1 d - k + log|S2| - log|S1|) / 2, d = mu2 - mu1."""
    k = mu1.shape[-1]
    inv2 = np.linalg.inv(cov2)
    d = (mu2 - mu1)[..., None]
    trace = np.trace(inv2 @ cov1, axis1=-2, axis2=-1)
    maha = (np.swapaxes(d, -1, -2) @ inv2 @ d)[..., 0, 0]
    logdet = np.linalg.slogdet(cov2)[1] - np.linalg.slogdet(cov1)[1]
    return 0.5 * (trace + maha - k + logdet)


def _mutual_information(joint):
    """sum p(x, y) log(p(x, y) / (p(x) p(y))) over the last two axes."""
    px = joint.sum(axis=-1, keepdims=True)
    py = joint.sum(axis=-2, keepdims=True)
    return (joint * np.log(joint / (px * py))).sum(axis=(-2, -1))


def _pairwise(term):
    return lambda p, q: np.array([[float(term(a, b)) for b in q] for a in p])


def _binary_kl(p, q):
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def _bce(y, q):
    return -(y * np.log(q) + (1 - y) * np.log1p(-q))


def _k3(logp, logq):
    """(r - 1) - log r with r = q / p, from samples of p."""
    return np.expm1(logq - logp) - (logq - logp)


CALLS = {
    "kl_divergence": Call(
        "kl_divergence", PUBLIC["kl_divergence"][0], _fn(kl_fast.kl_divergence), (0, 1),
        _nan_at_last(1),
        {"bad-sum": _scaled(0), "bad-base": _keywords(base=-1.0),
         "bad-space": _keywords(p_space="probs"), "bad-reduction": _keywords(reduction="median"),
         "category-axis-broadcast": _data(_stray_category_axis(1)),
         "bad-sum-tol": _keywords(sum_tol=-1.0)},
        {"normalize-eps-bits": _keywords(normalize=True, eps=1e-9, base=2),
         "reduction-sum": _keywords(reduction="sum"), "sum-tol": _keywords(sum_tol=1e-3)},
        oracle=ref.kl),
    "kl_divergence_logits": Call(
        "kl_divergence", PUBLIC["kl_divergence_logits"][0],
        _fn(kl_fast.kl_divergence, p_space="logits", q_space="logits"), (0, 1),
        _nan_at_last(0),
        {"row-all-minus-inf": _last_row(1, -np.inf), "bad-temperature": _keywords(temperature=-1.0),
         "eps-with-logits": _keywords(eps=0.1)},
        {"temperature": _keywords(temperature=2.0)},
        oracle=lambda a, b: ref.kl(_softmax(a), _softmax(b))),
    "entropy": Call(
        "entropy", PUBLIC["entropy"][0], _fn(kl_fast.entropy), (0,), _nan_at_last(0),
        {"bad-sum": _scaled(0), "bad-eps": _keywords(eps=-1.0),
         "bad-backend": _keywords(backend="fortran"), "bad-num-threads": _keywords(num_threads=0)},
        {"logits": _keywords(space="logits")},
        oracle=ref.entropy),
    "cross_entropy": Call(
        "cross_entropy", PUBLIC["cross_entropy"][0], _fn(kl_fast.cross_entropy), (0, 1),
        _nan_at_last(1),
        {"bad-sum": _scaled(1), "ignore-index-without-labels": _keywords(ignore_index=3),
         "float-labels": _data(_labels_as_floats)},
        {"logits": _keywords(q_space="logits"),
         "log-targets-weight-smoothing": _data(_log_of(0), p_space="log",
                                               weight=np.linspace(0.5, 2.0, 5),
                                               label_smoothing=0.1)},
        oracle=ref.cross_entropy),
    "cross_entropy_labels": Call(
        "cross_entropy", PUBLIC["cross_entropy_labels"][0],
        _fn(kl_fast.cross_entropy, q_space="logits"), (1,), _bad_label,
        {"nan-logit": _data(_nan_at_last(1)), "row-all-minus-inf": _last_row(1, -np.inf),
         "label-out-of-range-on-probabilities": _data(_labels_on_probabilities,
                                                      q_space="prob"),
         "bad-ignore-index": _keywords(ignore_index=1.5), "eps-with-logits": _keywords(eps=0.1),
         "bad-weight": _keywords(weight=np.ones(4)),
         "positive-log-probability": _data(_positive_log_label, q_space="log"),
         "full-check-bad-row": _data(lambda inputs: (inputs[0], inputs[1] * 0 + 0.5),
                                     q_space="prob", validate="full"),
         "bad-label-smoothing": _keywords(label_smoothing=1.5)},
        {"ignore-index-on-probabilities": _data(_labels_ignored_on_probabilities,
                                                q_space="prob", ignore_index=-100),
         "reduction-mean": _keywords(reduction="mean"),
         "full-check": _data(lambda inputs: (inputs[0], _softmax(inputs[1])), q_space="prob",
                             validate="full"),
         "weight-smoothing": _keywords(weight=np.linspace(0.5, 2.0, 5), label_smoothing=0.1)},
        oracle=lambda y, q: ref.cross_entropy_labels(y, _softmax(q))),
    "js_divergence": Call(
        "js_divergence", PUBLIC["js_divergence"][0], _fn(kl_fast.js_divergence), (0, 1),
        _nan_at_last(0),
        {"bad-sum": _scaled(1), "bad-normalize": _keywords(normalize="yes")},
        {"bits": _keywords(base=2)},
        oracle=ref.js),
    "gaussian_kl": Call(
        "gaussian_kl", PUBLIC["gaussian_kl"][0], _fn(kl_fast.gaussian_kl), (0, 1),
        _nan_at_last(1),
        {"negative-variance": _data(_changed(1, lambda x: _set_last(x, -1.0))),
         "bad-scale": _keywords(scale="sigma")},
        {"two-gaussians": _data(_two_gaussians),
         "logvar-elementwise": _keywords(scale="logvar", axis=None)},
        oracle=lambda mu, var: ref.gaussian_kl(mu, var)),
    "gaussian_kl_full": Call(
        "gaussian_kl_full", PUBLIC["gaussian_kl_full"][0], _fn(kl_fast.gaussian_kl_full),
        (0, 1, 2, 3), _not_pd,
        {"not-symmetric": _data(_not_symmetric), "nan-mean": _data(_nan_at_last(0)),
         "bad-base": _keywords(base=0.0)},
        {"prior": _data(_prior_only)},
        oracle=_gaussian_kl_full),
    "mutual_information": Call(
        "mutual_information", PUBLIC["mutual_information"][0], _fn(kl_fast.mutual_information),
        (0,), _nan_at_last(0),
        {"bad-sum": _scaled(0), "same-axis-twice": _keywords(axes=(1, 1))},
        {"counts": _data(_changed(0, lambda x: x * 7.0), normalize=True)},
        oracle=_mutual_information),
    "pairwise_kl": Call(
        "pairwise_kl", PUBLIC["pairwise_kl"][0], _fn(kl_fast.pairwise_kl), (0, 1),
        _nan_at_last(1),
        {"bad-sum": _scaled(0), "nan-precise": _data(_nan_at_last(0), precise=True),
         "categories-differ": _data(_changed(1, lambda x: x[:, :-1]))},
        {"normalize-eps": _keywords(normalize=True, eps=1e-9), "precise": _keywords(precise=True),
         "one-matrix": _data(lambda inputs: inputs[:1])},
        oracle=_pairwise(ref.kl)),
    "pairwise_js": Call(
        "pairwise_js", PUBLIC["pairwise_js"][0], _fn(kl_fast.pairwise_js), (0, 1),
        _nan_at_last(1),
        {"bad-sum": _scaled(1), "bad-eps": _keywords(eps=-1.0)},
        {"normalize": _keywords(normalize=True)},
        oracle=_pairwise(ref.js)),
    "binary_kl": Call(
        "binary_kl", PUBLIC["binary_kl"][0], _fn(kl_fast.binary_kl), (0, 1), _nan_at_last(1),
        {"above-one": _scaled(0, 3.0), "bad-space": _keywords(q_space="probs")},
        {"logits": _keywords(p_space="logits", q_space="logits"), "eps": _keywords(eps=1e-6),
         "where": _keywords(where=_EVERY_OTHER)},
        oracle=_binary_kl),
    "binary_cross_entropy": Call(
        "binary_cross_entropy", PUBLIC["binary_cross_entropy"][0],
        _fn(kl_fast.binary_cross_entropy), (0, 1), _nan_at_last(1),
        {"target-above-one": _scaled(0, 3.0), "bad-eps": _keywords(eps=-0.1)},
        {"logits": _keywords(q_space="logits"), "reduction-mean": _keywords(reduction="mean"),
         "where-padding": _data(_changed(1, lambda x: _set_last(x, np.nan)),
                                where=~_EVERY_OTHER[::-1])},
        oracle=_bce),
    "kl_estimate": Call(
        "kl_estimate", PUBLIC["kl_estimate"][0], _fn(kl_fast.kl_estimate, kind="k3"), (0, 1),
        _nan_at_last(1),
        {"infinite-logp": _data(_changed(0, lambda x: _set_last(x, np.inf))),
         "bad-kind": _keywords(kind="k4"), "where-not-bool": _keywords(where=np.ones(6, int))},
        {"k1": _keywords(kind="k1"), "k2": _keywords(kind="k2"),
         "where-padding": _data(_changed(0, lambda x: _set_last(x, -np.inf)),
                                where=~_EVERY_OTHER[::-1], reduction="mean")},
        oracle=_k3),
    "renyi_divergence": Call(
        "renyi_divergence", PUBLIC["renyi_divergence"][0],
        _fn(kl_fast.renyi_divergence, alpha=0.5), (0, 1), _nan_at_last(1),
        {"bad-sum": _scaled(0), "negative-alpha": _keywords(alpha=-1.0),
         "alpha-not-a-number": _keywords(alpha="2"), "bad-base": _keywords(base=1.0)},
        {"order-2-bits": _keywords(alpha=2.0, base=2), "order-inf": _keywords(alpha=np.inf),
         "order-0-normalize-eps": _keywords(alpha=0.0, normalize=True, eps=1e-9),
         "order-1": _keywords(alpha=1.0)},
        oracle=lambda p, q: -2.0 * np.log(np.sqrt(p * q).sum(axis=-1))),
    "hellinger_distance": Call(
        "hellinger_distance", PUBLIC["hellinger_distance"][0], _fn(kl_fast.hellinger_distance),
        (0, 1), _nan_at_last(0),
        {"bad-sum": _scaled(1), "category-axis-broadcast": _data(_stray_category_axis(1))},
        {"normalize": _keywords(normalize=True), "reduction-mean": _keywords(reduction="mean")},
        oracle=lambda p, q: np.sqrt(((np.sqrt(p) - np.sqrt(q)) ** 2).sum(axis=-1) / 2)),
    "total_variation": Call(
        "total_variation", PUBLIC["total_variation"][0], _fn(kl_fast.total_variation), (0, 1),
        _nan_at_last(1),
        {"bad-sum": _scaled(0), "bad-eps": _keywords(eps=-1.0)},
        {"eps": _keywords(eps=1e-6), "reduction-sum": _keywords(reduction="sum")},
        oracle=lambda p, q: np.abs(p - q).sum(axis=-1) / 2),
    "chi2_divergence": Call(
        "chi2_divergence", PUBLIC["chi2_divergence"][0], _fn(kl_fast.chi2_divergence), (0, 1),
        _nan_at_last(1),
        {"bad-sum": _scaled(1), "bad-reduction": _keywords(reduction="median")},
        {"keepdims": _keywords(keepdims=True), "sum-tol": _keywords(sum_tol=1e-3)},
        oracle=lambda p, q: ((p - q) ** 2 / q).sum(axis=-1)),
}

# the scipy drop-ins run on the default backend (they take no backend keyword)
SCIPY_CALLS = {
    "scipy.rel_entr": (PUBLIC["kl_divergence"][0], lambda p, q: ks.rel_entr(p, q)),
    "scipy.entropy": (PUBLIC["kl_divergence"][0], lambda p, q: ks.entropy(p, q, axis=-1)),
    "scipy.entropy_1": (PUBLIC["entropy"][0], lambda p: ks.entropy(p, axis=-1)),
    "scipy.jensenshannon": (PUBLIC["js_divergence"][0],
                            lambda p, q: ks.jensenshannon(p, q, axis=-1)),
}


# -- every variant as call(backend, num_threads): the thread-stress and leak tests ------------

@dataclass(frozen=True)
class Case:
    function: str      # the public function, e.g. "cross_entropy" or "scipy.entropy"
    label: str         # "<CALLS name>:<variant>", e.g. "cross_entropy_labels:bad-ignore-index"
    call: Callable     # call(backend, num_threads)
    fails: bool        # the call must raise ValueError or TypeError


def _case(c, name, variant, inputs, keywords, fails):
    def call(backend, num_threads):
        return c.run(inputs, **{"backend": backend, "num_threads": num_threads, **keywords})
    return Case(c.function, f"{name}:{variant}", call, fails)


def cases(rng):
    """Every valid variant and every error variant of every entry of CALLS, then the scipy
    drop-ins (which pick the backend themselves: the same call for every backend)."""
    out = []
    for name, c in CALLS.items():
        inputs = c.make(rng)
        for variant, make in c.all_valid().items():
            out.append(_case(c, name, variant, *make(inputs), fails=False))
        for variant, make in c.all_errors().items():
            out.append(_case(c, name, variant, *make(inputs), fails=True))
    for name, (make, run) in SCIPY_CALLS.items():
        inputs = make(rng)
        function = name.removesuffix("_1")
        out.append(Case(function, f"{name}:plain",
                        lambda backend, num_threads, x=inputs, f=run: f(*x), fails=False))
    return out


def valid_calls(rng):
    """label -> call(backend, num_threads) for every valid variant."""
    return {c.label: c.call for c in cases(rng) if not c.fails}


def error_calls(rng):
    """label -> call(backend, num_threads) for every error variant (each must raise)."""
    return {c.label: c.call for c in cases(rng) if c.fails}
