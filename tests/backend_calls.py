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
  call raises ValueError (found during the kernel's pass where it checks values).
"""

from collections.abc import Callable
from dataclasses import dataclass

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
    has_out: bool = True


def _nan_at_last(index):
    """Inputs with the last element of input `index` set to NaN (a bad row, not the first)."""
    def breaks(inputs):
        inputs = [np.array(x, copy=True) for x in inputs]
        flat = inputs[index].reshape(-1)
        flat[-1] = np.nan
        return tuple(inputs)
    return breaks


def _bad_label(inputs):
    y, q = (np.array(x, copy=True) for x in inputs)
    y[-1] = q.shape[-1] + 3
    return y, q


def _not_pd(inputs):
    mu1, cov1, mu2, cov2 = (np.array(x, copy=True) for x in inputs)
    cov1[-1] = -np.eye(cov1.shape[-1])
    return mu1, cov1, mu2, cov2


def _fn(f, **fixed):
    return lambda inputs, backend, **kw: f(*inputs, backend=backend, **fixed, **kw)


CALLS = {
    "kl_divergence": Call(PUBLIC["kl_divergence"][0], _fn(kl_fast.kl_divergence), (0, 1),
                          _nan_at_last(1)),
    "kl_divergence_logits": Call(PUBLIC["kl_divergence_logits"][0],
                                 _fn(kl_fast.kl_divergence, p_space="logits", q_space="logits"),
                                 (0, 1), _nan_at_last(0)),
    "entropy": Call(PUBLIC["entropy"][0], _fn(kl_fast.entropy), (0,), _nan_at_last(0)),
    "cross_entropy": Call(PUBLIC["cross_entropy"][0], _fn(kl_fast.cross_entropy), (0, 1),
                          _nan_at_last(1)),
    "cross_entropy_labels": Call(PUBLIC["cross_entropy_labels"][0],
                                 _fn(kl_fast.cross_entropy, q_space="logits"), (1,), _bad_label),
    "js_divergence": Call(PUBLIC["js_divergence"][0], _fn(kl_fast.js_divergence), (0, 1),
                          _nan_at_last(0)),
    "gaussian_kl": Call(PUBLIC["gaussian_kl"][0], _fn(kl_fast.gaussian_kl), (0, 1),
                        _nan_at_last(1)),
    "gaussian_kl_full": Call(PUBLIC["gaussian_kl_full"][0], _fn(kl_fast.gaussian_kl_full),
                             (0, 1, 2, 3), _not_pd),
    "mutual_information": Call(PUBLIC["mutual_information"][0],
                               _fn(kl_fast.mutual_information), (0,), _nan_at_last(0)),
    "pairwise_kl": Call(PUBLIC["pairwise_kl"][0], _fn(kl_fast.pairwise_kl), (0, 1),
                        _nan_at_last(1)),
    "pairwise_js": Call(PUBLIC["pairwise_js"][0], _fn(kl_fast.pairwise_js), (0, 1),
                        _nan_at_last(1)),
    "binary_kl": Call(PUBLIC["binary_kl"][0], _fn(kl_fast.binary_kl), (0, 1), _nan_at_last(1)),
    "binary_cross_entropy": Call(PUBLIC["binary_cross_entropy"][0],
                                 _fn(kl_fast.binary_cross_entropy), (0, 1), _nan_at_last(1)),
    "kl_estimate": Call(PUBLIC["kl_estimate"][0], _fn(kl_fast.kl_estimate, kind="k3"), (0, 1),
                        _nan_at_last(1)),
}

# the scipy drop-ins run on the default backend (they take no backend keyword)
SCIPY_CALLS = {
    "scipy.rel_entr": (PUBLIC["kl_divergence"][0], lambda p, q: ks.rel_entr(p, q)),
    "scipy.entropy": (PUBLIC["kl_divergence"][0], lambda p, q: ks.entropy(p, q, axis=-1)),
    "scipy.entropy_1": (PUBLIC["entropy"][0], lambda p: ks.entropy(p, axis=-1)),
    "scipy.jensenshannon": (PUBLIC["js_divergence"][0],
                            lambda p, q: ks.jensenshannon(p, q, axis=-1)),
}
