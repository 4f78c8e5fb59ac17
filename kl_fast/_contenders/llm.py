"""Contenders for the LLM-sized case: float32 logits over a 32,000-token vocabulary.

Two training losses, each reduced to one number as a training step uses it:

* ``llm_distill_kl`` -- distillation, KL(teacher || student) of the softened
  distributions at temperature ``LLM_TEMPERATURE``, averaged over the rows
  (torch's ``reduction="batchmean"``);
* ``llm_cross_entropy`` -- the label cross-entropy of the logits, averaged
  over the rows (``F.cross_entropy``'s default).

Part of the registry of ``_contenders.py`` (same protocol: name ->
zero-argument callable on one set of arrays).  The peers are what a training
script writes: torch's ``F.kl_div(log_softmax(s / T), log_softmax(t / T),
log_target=True, reduction="batchmean")`` and ``F.cross_entropy``, and the
same in numpy.  At (2048, 32000) each logits array is 250 MiB, so the
temporaries those expressions build are what the memory column shows.
"""

import numpy as np

from .._registry import names

__all__ = ["QUANTITIES", "LLM_TEMPERATURE", "make_data", "contenders"]

QUANTITIES = names("llm")
LLM_TEMPERATURE = 2.0


def make_data(quantity, n_rows, n_cat, dtype, seed=0):
    """Teacher and student logits (student = teacher + noise), or labels and logits."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    # drawn in the target dtype: no float64 copy of a 250 MiB float32 array
    teacher = rng.standard_normal((n_rows, n_cat), dtype=dtype)
    teacher *= 3
    if quantity == "llm_cross_entropy":
        return {"labels": rng.integers(0, n_cat, size=n_rows), "logits": teacher}
    student = rng.standard_normal((n_rows, n_cat), dtype=dtype)
    student *= 0.5
    student += teacher
    return {"teacher": teacher, "student": student}


def _kl_fast(quantity, d, backend):
    import kl_fast

    if quantity == "llm_distill_kl":
        return lambda: kl_fast.kl_divergence(
            d["teacher"], d["student"], p_space="logits", q_space="logits",
            temperature=LLM_TEMPERATURE, reduction="mean", backend=backend)
    return lambda: kl_fast.cross_entropy(d["labels"], d["logits"], q_space="logits",
                                         reduction="mean", backend=backend)


def _log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _numpy(quantity, d):
    """The numpy a training script would write (a stable log-softmax, then the loss)."""
    if quantity == "llm_distill_kl":
        def distill():
            lt = _log_softmax(d["teacher"] / LLM_TEMPERATURE)
            ls = _log_softmax(d["student"] / LLM_TEMPERATURE)
            return np.sum(np.exp(lt) * (lt - ls)) / lt.shape[0]
        return distill

    def ce():
        x = d["logits"]
        return -_log_softmax(x)[np.arange(x.shape[0]), d["labels"]].mean()
    return ce


def _torch(quantity, d):
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_numpy(v) for k, v in d.items()}
    if quantity == "llm_distill_kl":
        T = LLM_TEMPERATURE
        # the distillation idiom: input = student log-probabilities, target = teacher's
        return lambda: F.kl_div(F.log_softmax(t["student"] / T, dim=-1),
                                F.log_softmax(t["teacher"] / T, dim=-1),
                                log_target=True, reduction="batchmean")
    return lambda: F.cross_entropy(t["logits"], t["labels"])


def contenders(quantity, data, backends, peers, have):
    """The kl_fast and peer contenders of an LLM-sized quantity (the floor is the caller's)."""
    found = {f"kl_fast[{backend}]": _kl_fast(quantity, data, backend) for backend in backends}
    if peers:
        found["numpy"] = _numpy(quantity, data)
        if have("torch"):
            found["torch"] = _torch(quantity, data)
    return found
