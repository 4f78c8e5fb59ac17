"""The path of the elementwise functions (binary KL, binary cross-entropy,
KL estimators): inputs broadcast against each other and give one value per
element -- there is no category axis to reduce.

Kernels of every backend share one entry point, ``binary_elementwise(a, b,
out, report, op, eps, log_base, n_threads)``, over 2-D blocks (the last axis
as the column axis, see ``_inputs.shapes.make_rows``); ``op`` is one of the codes
below, mirrored from ``src/kl_binary.h``.
"""

import numpy as np

from ._engine.backends import get_backend
from ._engine.report import merge_reports, new_report, new_total, raise_for_values
from ._engine.run import Options, deliver
from ._engine.threads import chunk_count, resolve_num_threads, threads_for
from ._inputs import array_types as _arrays
from ._inputs.prepare import prepare_inputs
from ._inputs.shapes import broadcast_shape, make_rows

__all__ = ["OPS", "kl_op", "check_space", "check_where", "elementwise"]

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


def check_where(where):
    """The `where=` mask as a numpy bool array (numpy's rule: a bool dtype)."""
    kind = _arrays.input_kind(where, "where")
    mask = np.asarray(_arrays.to_numpy(where, kind))
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean mask (True = include), got dtype "
                        f"{mask.dtype}; pass where=mask.astype(bool) (torch: mask.bool())")
    return mask


def elementwise(named, op, eps, log_base, opts, requirements, what, where=None, fill=None):
    """Run op `op` over the broadcast inputs `named` [(name, x), (name, x)].

    `requirements[k]` words what input k must satisfy (for the error).
    `where` (bool mask, broadcasting) leaves positions out: they are first set
    to the valid stand-in `fill[k]` (so neither the checks nor the kernel see
    what padding holds), then give 0.0 under "none" and are left out of
    "sum"/"mean" ("mean" divides by the number of included positions).
    Returns the shaped result (reduction, out=, array type applied).
    """
    opts = Options.check(keepdims=False, **opts)
    arrays, dtype, out_kind, _ = prepare_inputs(named, what=what)
    names = [name for name, _ in named]
    mask = None
    if where is not None:
        mask = check_where(where)
        shape = broadcast_shape(arrays + [mask], names + ["where"])
        # one masked copy of each input: what the padding holds never reaches a check
        arrays = [np.where(mask, a, f).astype(dtype, copy=False)
                  for a, f in zip(arrays, fill, strict=True)]
        mask = np.broadcast_to(mask, shape)
    shape = broadcast_shape(arrays, names)
    size = int(np.prod(shape, dtype=np.int64))
    if mask is not None:
        return _masked(arrays, names, shape, size, mask, dtype, out_kind, op, eps, log_base,
                       opts, requirements)
    reduce = opts.reduction != "none"
    # "none" fills the result; "sum"/"mean" run through a small scratch buffer (the
    # result is a scalar: no input-sized array is ever made), summed in fixed pieces
    result = None if reduce else np.empty(shape, dtype=dtype)
    acc = 0.0
    if size:
        # make_rows needs an axis: scalars run as (1, 1), the last axis is the column axis
        inputs = [a.reshape((1,) * (1 - a.ndim) + a.shape) if not shape else a for a in arrays]
        rows = make_rows(inputs, names, -1, fixed=())
        target = None if reduce else result.reshape(-1, rows.n_cat)
        total, acc = _run(rows, target, dtype, op, eps, log_base, opts)
        if opts.validate and total[0] > 0:
            raise_for_values(total, rows, names, inputs, requirements[int(total[3])])
    if reduce:
        if opts.reduction == "mean":
            acc = acc / size if size else np.nan
        return _arrays.wrap_result(dtype.type(acc), out_kind)
    return _finish(result, opts, out_kind)


def _masked(arrays, names, shape, size, mask, dtype, out_kind, op, eps, log_base, opts,
            requirements):
    """The where= path: every value computed, masked ones then 0.0, reductions over the
    included positions only."""
    result = np.empty(shape, dtype=dtype)
    if size:
        inputs = [a.reshape((1,) * (1 - a.ndim) + a.shape) if not shape else a for a in arrays]
        rows = make_rows(inputs, names, -1, fixed=())
        total, _ = _run(rows, result.reshape(-1, rows.n_cat), dtype, op, eps, log_base, opts)
        if opts.validate and total[0] > 0:
            raise_for_values(total, rows, names, inputs, requirements[int(total[3])])
    result[~mask] = 0.0
    if opts.reduction != "none":
        acc = result.sum(dtype=np.float64)
        if opts.reduction == "mean":
            count = int(np.count_nonzero(mask))
            acc = acc / count if count else np.nan
        return _arrays.wrap_result(dtype.type(acc), out_kind)
    return _finish(result, opts, out_kind)


# elements per piece of a reduction ("sum"/"mean"): the scratch buffer's size
_PIECE = 1 << 17
# elements of one row per work unit of the elementwise kernels (UNIT in
# src/elementwise.pyx): the kernels split a piece into rows x units
_UNIT = 8192


def _pieces(n_rows, n_cols):
    """(r0, r1, c0, c1) pieces of at most about _PIECE elements, in C order."""
    if n_cols >= _PIECE:
        for r in range(n_rows):
            for c0 in range(0, n_cols, _PIECE):
                yield r, r + 1, c0, min(c0 + _PIECE, n_cols)
    else:
        step = _PIECE // n_cols
        for r0 in range(0, n_rows, step):
            yield r0, min(r0 + step, n_rows), 0, n_cols


def _run(rows, out2d, dtype, op, eps, log_base, opts):
    """Walk the 2-D blocks of `rows` through the kernel, into `out2d`, or, if it is
    None, through a scratch buffer whose pieces are summed; return (report, sum)."""
    _, module = get_backend(opts.backend)
    kernel = getattr(module, KERNEL)
    n_threads = resolve_num_threads(opts.num_threads)
    total = new_total()
    acc = 0.0
    scratch = None if out2d is not None else np.empty(_PIECE, dtype=dtype)
    for first_row, views in rows.blocks():
        n = views[0].shape[0]
        if out2d is not None:
            pieces = [(0, n, 0, rows.n_cat)]
        else:
            pieces = _pieces(n, rows.n_cat)
        for r0, r1, c0, c1 in pieces:
            m = (r1 - r0) * (c1 - c0)
            threads = threads_for(n_threads, m)
            units = (r1 - r0) * -(-(c1 - c0) // _UNIT)
            report = new_report(chunk_count(threads, units))
            if out2d is not None:
                out = out2d[first_row:first_row + n]
            else:
                out = scratch[:m].reshape(r1 - r0, c1 - c0)
            kernel(views[0][r0:r1, c0:c1], views[1][r0:r1, c0:c1], out, report, op,
                   float(eps), float(log_base), threads)
            report[report[:, 1] >= 0, 2] += c0
            merge_reports(report, first_row + r0, total)
            if out2d is None:
                acc += float(out.sum(dtype=np.float64))
    return total, acc


def _finish(result, opts, out_kind):
    return deliver(result, opts.out, out_kind)
