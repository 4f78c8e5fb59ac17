"""Inputs given as log-probabilities or logits: argument checks and the kernel call.

``kl_divergence``, ``cross_entropy`` and ``entropy`` route here whenever an
input is not in probability space.  A logits row is normalized by a stable
log-sum-exp inside the kernel (``src/kl_spaces.h``); no softmax array is
built.
"""

import math

import numpy as np

from ._engine.report import raise_for_values, sum_advice
from ._engine.run import run_kernel
from ._inputs.prepare import prepare_inputs
from ._inputs.shapes import make_rows
from ._inputs.validation import check_base, check_eps, check_flag, sum_tolerance

__all__ = ["SPACES", "check_space", "check_temperature", "reduce_spaces"]

SPACES = {"prob": 0, "log": 1, "logits": 2}
PROB, LOG, LOGITS = 0, 1, 2

_REQUIREMENT = {
    PROB: "probabilities (or counts) must be finite and >= 0",
    LOG: ("log-probabilities must be <= 0, not NaN (-inf is probability 0; a positive "
          "value is a probability above 1)"),
    LOGITS: "logits must not be NaN or +inf (-inf is probability 0)",
}


def check_space(space, name):
    """The code of a space argument ("prob", "log" or "logits")."""
    if not isinstance(space, str) or space not in SPACES:
        raise ValueError(f"{name} must be one of {tuple(SPACES)}, got {space!r}")
    return SPACES[space]


def check_temperature(temperature, codes):
    """A positive finite float; anything but 1 needs an input in logits space."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.number)):
        raise TypeError(f"temperature must be a positive float, got {type(temperature).__name__}")
    temperature = float(temperature)
    if not (temperature > 0.0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
    if temperature != 1.0 and LOGITS not in codes:
        raise ValueError("temperature divides logits; pass p_space/q_space (or space) "
                         f"'logits', or leave temperature=1 (got {temperature!r})")
    return temperature


def _effective(code, normalize):
    # normalize=True turns log-probabilities into logits: log-sum-exp normalizes them
    return LOGITS if (normalize and code == LOG) else code


def _tolerance(code, normalize, tol):
    if code == LOGITS or (code == PROB and normalize):
        return -1.0
    return tol


def _raise_for_sums(report, rows, names, arrays, codes, tols):
    if report[4] < 0:
        return
    arg = int(report[5])
    name, code = names[arg], codes[arg]
    row = int(report[4])
    batch_index = tuple(int(i) for i in np.unravel_index(row, rows.batch)) if rows.batch else ()
    view = rows.views[arg][batch_index] if rows.batch else rows.views[arg]
    where = f"the row at batch index {batch_index}" if batch_index else "the distribution"
    with np.errstate(all="ignore"):
        values = np.asarray(view, dtype=np.float64)
        if code == LOGITS:
            raise ValueError(f"{name}: {where} has every logit -inf along axis {rows.axis}, so "
                             "it is no distribution; give at least one category a finite logit")
        if code == LOG:
            total = float(np.exp(values).sum())
            raise ValueError(
                f"{name} must be log-probabilities whose exponentials sum to 1 along axis "
                f"{rows.axis}, but {where} sums to {total!r} (tolerance {tols[arg]:.3g}); "
                "pass normalize=True to normalize it (log-sum-exp), or use space 'logits'")
        total = float(values.sum())
    if tols[arg] < 0:
        raise ValueError(f"{name}: {where} sums to {total!r} along axis {rows.axis}, so it "
                         "cannot be normalized; give it positive finite mass")
    fix = sum_advice(np.asarray(arrays[arg]), rows, name, total, tols[arg])
    raise ValueError(
        f"{name} must sum to 1 along axis {rows.axis}, but {where} sums to {total!r} "
        f"(tolerance {tols[arg]:.3g}). Fix: {fix}.")


def reduce_spaces(kind, named, codes, axis, base, eps, normalize, temperature, opts):
    """KL ("kl"), cross-entropy ("ce") or entropy ("h") of inputs in `codes` spaces."""
    log_base = check_base(base)
    eps = check_eps(eps)
    normalize = check_flag(normalize, "normalize")
    if eps > 0:
        raise ValueError("eps smoothing applies to probabilities; with 'log' or 'logits' "
                         "inputs leave eps=0 (logits give every category mass already)")
    arrays, dtype, _out_kind, tol_dtype = prepare_inputs(named)
    names = [name for name, _ in named]
    rows = make_rows(arrays, names, axis)
    codes = [_effective(c, normalize) for c in codes]
    tol = sum_tolerance(tol_dtype, rows.n_cat, opts.sum_tol)
    tols = [_tolerance(c, normalize, tol) for c in codes]
    check = 2 if opts.validate else 0
    if kind == "kl":
        args = (check, tols[0], tols[1], codes[0], codes[1], temperature,
                normalize and codes[0] == PROB, normalize and codes[1] == PROB, log_base)
        kernel = "kl_space_rows"
    elif kind == "ce":
        args = (check, tols[0], tols[1], codes[1], temperature, normalize, log_base)
        kernel = "cross_entropy_space_rows"
    else:
        args = (check, tols[0], codes[0], temperature, log_base)
        kernel = "entropy_space_rows"
    result, report = run_kernel(kernel, rows, dtype, args, opts)
    if check:
        if report[0]:
            space_kws = ["space"] if kind == "h" else ["p_space", "q_space"]
            raise_for_values(report, rows, names, arrays, _REQUIREMENT[codes[int(report[3])]],
                             space_kws)
        _raise_for_sums(report, rows, names, arrays, codes, tols)
    return result, rows, _out_kind
