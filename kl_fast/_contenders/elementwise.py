"""Contenders for the elementwise quantities: binary KL, binary cross-entropy
(probabilities and logits) and the k3 KL estimator.  Part of the registry of
``_contenders.py`` (same protocol: name -> zero-argument callable on one set of
arrays ``a``, ``b`` of the same shape).  An elementwise call also writes an
output the size of its inputs, which the read floor does not count.
"""

import numpy as np

from .._registry import names

__all__ = ["QUANTITIES", "make_data", "contenders"]

QUANTITIES = names("elementwise")


def make_data(quantity, n_rows, n_cat, dtype, seed=0):
    rng = np.random.default_rng(seed)
    size = (n_rows, n_cat)
    if quantity == "binary_kl":
        a, b = rng.uniform(0.001, 0.999, size), rng.uniform(0.001, 0.999, size)
    elif quantity == "binary_cross_entropy":
        a, b = rng.uniform(0.0, 1.0, size), rng.uniform(0.001, 0.999, size)
    elif quantity == "binary_cross_entropy_logits":
        a, b = rng.uniform(0.0, 1.0, size), rng.normal(0.0, 3.0, size)
    else:   # per-sample log-probabilities of the policy and of the reference
        a = rng.normal(-5.0, 1.0, size)
        b = a + rng.normal(0.0, 0.3, size)
    return {"a": a.astype(dtype), "b": b.astype(dtype)}


def _kl_fast(quantity, a, b, backend):
    import kl_fast

    if quantity == "binary_kl":
        return lambda: kl_fast.binary_kl(a, b, backend=backend)
    if quantity == "binary_cross_entropy":
        return lambda: kl_fast.binary_cross_entropy(a, b, backend=backend)
    if quantity == "binary_cross_entropy_logits":
        return lambda: kl_fast.binary_cross_entropy(a, b, q_space="logits", backend=backend)
    return lambda: kl_fast.kl_estimate(a, b, kind="k3", backend=backend)


def _numpy(quantity, a, b):
    """The formula a numpy user writes."""
    if quantity == "binary_kl":
        return lambda: a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))
    if quantity == "binary_cross_entropy":
        return lambda: -(a * np.log(b) + (1 - a) * np.log1p(-b))
    if quantity == "binary_cross_entropy_logits":
        return lambda: np.maximum(b, 0) - b * a + np.log1p(np.exp(-np.abs(b)))

    def k3():
        log_r = b - a
        return np.expm1(log_r) - log_r
    return k3


def _scipy(quantity, a, b):
    from scipy import special

    if quantity == "binary_kl":
        return {"scipy rel_entr": lambda: special.rel_entr(a, b) + special.rel_entr(1 - a, 1 - b)}
    if quantity == "binary_cross_entropy":
        return {"scipy xlogy": lambda: -(special.xlogy(a, b) + special.xlog1py(1 - a, -b))}
    if quantity == "binary_cross_entropy_logits":
        return {"scipy log_expit": lambda: -(a * special.log_expit(b)
                                            + (1 - a) * special.log_expit(-b))}
    return {}


def _torch(quantity, a, b):
    import torch
    import torch.nn.functional as F

    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if quantity == "binary_kl":
        return lambda: torch.xlogy(ta, ta / tb) + torch.xlogy(1 - ta, (1 - ta) / (1 - tb))
    if quantity == "binary_cross_entropy":
        return lambda: F.binary_cross_entropy(tb, ta, reduction="none")
    if quantity == "binary_cross_entropy_logits":
        return lambda: F.binary_cross_entropy_with_logits(tb, ta, reduction="none")

    def k3():
        log_r = tb - ta
        return torch.expm1(log_r) - log_r
    return k3


def contenders(quantity, data, backends, peers, have):
    """The kl_fast and peer contenders of an elementwise quantity (the floor is the caller's)."""
    a, b = data["a"], data["b"]
    found = {f"kl_fast[{backend}]": _kl_fast(quantity, a, b, backend) for backend in backends}
    if peers:
        found["numpy"] = _numpy(quantity, a, b)
        found.update(_scipy(quantity, a, b))
        if have("torch"):
            found["torch"] = _torch(quantity, a, b)
    return found
