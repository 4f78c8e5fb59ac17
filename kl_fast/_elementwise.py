"""The path of the elementwise functions (binary KL, binary cross-entropy,
KL estimators): inputs broadcast against each other and give one value per
element -- there is no category axis to reduce.

Kernels of every backend share one entry point, ``binary_elementwise(a, b,
out, report, op, eps, log_base, n_threads)``, over 2-D blocks (the last axis
as the column axis, see ``_rows.make_rows``); ``op`` is one of the codes
below, mirrored from ``src/kl_binary.h``.
"""

import numpy as np

from . import _arrays
from ._api import _prepare_inputs
from ._backends import get_backend
from ._engine import MIN_ELEMENTS_PER_THREAD, Options
from ._report import merge_reports, new_report, raise_for_values
from ._rows import broadcast_shape, make_rows
from ._threading import resolve_num_threads

__all__ = ["OPS", "kl_op", "check_space", "elementwise"]

# operation codes of kl_binary.h's KL_OP_*
OPS = {
    "bce_prob": 8,
    "bce_prob_eps": 9,
    "bce_logits": 10,
    "bce_logits_eps": 11,
    "k1": 12,
    "k2": 13,
    "k3": 14,
}
SPACES = ("prob", "logits")
KERNEL = "binary_elementwise"

PROB_REQUIREMENT = "probabilities must be finite and in [0, 1]"
LOGIT_REQUIREMENT = "logits must not be NaN (+-inf are allowed: probability 1 or 0)"


def kl_op(p_logits, q_logits, smooth):
    """The op code of binary_kl for the two spaces and eps smoothing."""
    return 2 * int(p_logits) + int(q_logits) + (4 if smooth else 0)


def check_space(space, name):
    """True for "logits", False for "prob"; ValueError otherwise."""
    if not isinstance(space, str) or space not in SPACES:
        raise ValueError(f"{name} must be one of {SPACES}, got {space!r}")
    return space == "logits"


def elementwise(named, op, eps, log_base, opts, requirements, what):
    """Run op `op` over the broadcast inputs `named` [(name, x), (name, x)].

    `requirements[k]` words what input k must satisfy (for the error).
    Returns the shaped result (reduction, out=, array type applied).
    """
    opts = Options.check(keepdims=False, **opts)
    arrays, dtype, out_kind, _ = _prepare_inputs(named, what=what)
    names = [name for name, _ in named]
    shape = broadcast_shape(arrays, names)
    result = np.empty(shape, dtype=dtype)
    if result.size:
        # make_rows needs an axis: scalars run as (1, 1), the last axis is the column axis
        inputs = [a.reshape((1,) * (1 - a.ndim) + a.shape) if not shape else a for a in arrays]
        rows = make_rows(inputs, names, -1)
        total = _run(rows, result.reshape(-1, rows.n_cat), op, eps, log_base, opts)
        if opts.validate and total[0] > 0:
            raise_for_values(total, rows, names, inputs, requirements[int(total[3])])
    return _finish(result, opts, out_kind)


def _run(rows, out2d, op, eps, log_base, opts):
    """Walk the 2-D blocks of `rows` through the kernel; return the merged report."""
    _, module = get_backend(opts.backend)
    kernel = getattr(module, KERNEL)
    n_threads = resolve_num_threads(opts.num_threads)
    total = np.array([0, -1, -1, -1, -1, -1], dtype=np.int64)
    for first_row, views in rows.blocks():
        n = views[0].shape[0]
        chunks = max(1, min(n_threads, n * rows.n_cat // MIN_ELEMENTS_PER_THREAD))
        report = new_report(chunks)
        kernel(views[0], views[1], out2d[first_row:first_row + n], report, op, float(eps),
               float(log_base), chunks)
        merge_reports(report, first_row, total)
    return total


def _finish(result, opts, out_kind):
    if opts.reduction != "none":
        acc = result.sum(dtype=np.float64)
        if opts.reduction == "mean":
            acc = acc / result.size if result.size else np.nan
        return _arrays.wrap_result(result.dtype.type(acc), out_kind)
    if opts.out is not None:
        if opts.out.shape != result.shape:
            raise ValueError(f"out has shape {opts.out.shape}, but the result has shape "
                             f"{result.shape}; pass an array of that shape")
        np.copyto(opts.out, result, casting="same_kind")
        return opts.out
    if result.ndim == 0:
        return _arrays.wrap_result(result[()], out_kind)
    return _arrays.wrap_result(result, out_kind)
