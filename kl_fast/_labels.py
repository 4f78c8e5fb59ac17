"""Cross-entropy against integer class labels (``cross_entropy(labels, q)``).

The label path of ``cross_entropy``: the look-alike check (whole-number floats
that were meant as labels), the label kernels over probability, log-probability
or logits rows, ``ignore_index``, and ``validate="full"``'s extra pass over `q`.
"""

import numpy as np

from ._engine.backends import get_backend
from ._engine.report import new_report, raise_for_values
from ._engine.run import Options, finish, run_kernel
from ._engine.threads import chunk_count, resolve_num_threads, threads_for
from ._inputs import array_types as _arrays
from ._inputs.prepare import prepare_inputs
from ._inputs.shapes import make_rows, normalize_axis
from ._inputs.validation import as_label_array, check_base, check_eps, check_flag
from ._prob_rows import reduce_probability_rows
from ._spaces import reduce_spaces

__all__ = ["reject_label_lookalike", "cross_entropy_labels", "check_label_rows_fully",
           "fast_label_rows", "q_space_name", "LabelRows"]

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def fast_label_rows(labels, q, axis, base, eps, normalize, reduction, keepdims, out, backend,
                    num_threads, validate, sum_tol):
    """The commonest label call -- int64 labels (N,) against probabilities (N, K), every
    keyword at its default but `reduction`, `validate` and `backend` -- as one kernel
    call without the general path's Python layers (~120 us of a 5,000-row call), or
    None for anything else, and for any call whose kernel reports a problem: the
    general path then runs it again and words the error.  The same kernel, the same
    bits as the general path.
    """
    if (type(labels) is not np.ndarray or type(q) is not np.ndarray or labels.ndim != 1
            or q.ndim != 2 or labels.dtype != np.int64 or q.dtype not in _FAST_DTYPES
            or not q.dtype.isnative or not q.flags.aligned or not labels.flags.aligned
            or q.shape[0] != labels.shape[0] or q.shape[0] == 0 or q.shape[1] == 0
            or type(axis) is not int or axis not in (-1, 1) or base is not None
            or type(eps) is not float or eps != 0.0 or normalize is not False
            or keepdims is not False or out is not None or num_threads is not None
            or sum_tol is not None or (validate is not True and validate is not False)
            or reduction not in ("none", "mean", "sum") or type(backend) is not str):
        return None
    try:
        _, module = get_backend(backend)
    except (TypeError, ValueError):
        return None    # the general path raises the same error, worded in context
    n = q.shape[0]
    threads = threads_for(resolve_num_threads(None), n)   # one read per row
    report = new_report(chunk_count(threads, n))
    result = np.empty(n, dtype=q.dtype)
    module.cross_entropy_label_rows(labels, q, result, report, 1 if validate else 0, 0.0, False,
                                    0, False, 1.0, threads)
    if report[:, 0].any():
        return None
    if reduction == "none":
        return result
    total = result.sum(dtype=np.float64)   # as _engine.run.finish: float64, then the dtype
    return result.dtype.type(total / n if reduction == "mean" else total)


def reject_label_lookalike(p, q, axis):
    """ValueError for a `p` that looks like class labels but is not given as labels.

    Labels are integers of shape ``q.shape[:-1]`` (the batch shape).  Whole numbers
    in [0, K) that are floats, or that carry a stray length-1 category axis, would
    otherwise be read as probabilities -- broadcast, or silently valid when a float
    one-hot vector happens to sum to 1.
    """
    if q.ndim < 2 or p.size == 0 or p.dtype.kind not in "iuf" or p.size > 1 << 24:
        return
    try:
        ax = normalize_axis(axis, q.ndim, "q")
    except (TypeError, ValueError):
        return
    n_cat = q.shape[ax]
    batch = q.shape[:ax] + q.shape[ax + 1:]
    stray_axis = p.ndim == q.ndim and p.shape[ax] == 1 and n_cat > 1
    short = p.ndim == q.ndim - 1
    if not (stray_axis or short):
        return
    if short and ax >= 1 and p.shape[ax - 1] == n_cat and p.shape != batch:
        return    # one distribution for every row of q (its shape cannot be labels')
    with np.errstate(invalid="ignore"):
        whole = bool(np.all((np.mod(p, 1) == 0) & (p >= 0) & (p < n_cat)))
    if not whole:
        return
    if stray_axis:
        how = f"drop the length-1 axis (np.squeeze(p, axis={ax}))"
    else:
        how = "pass p.astype(np.int64)"
    raise ValueError(
        f"p of dtype {p.dtype} and shape {p.shape} holds whole numbers in [0, {n_cat}), so it "
        f"looks like class labels: labels must be integers of shape q.shape[:-1] = {batch} "
        f"(one per row of q); {how}. If p really is a distribution, give it the category "
        f"axis of q ({n_cat} entries along axis {axis}; one distribution for every row of q "
        f"as shape (1, {n_cat}))"
    )


def cross_entropy_labels(labels, q, axis, base, eps, normalize, ignore_index, opts,
                          q_code=0, temperature=1.0):
    log_base = check_base(base)
    eps = check_eps(eps)
    normalize = check_flag(normalize, "normalize")
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
    labels, q, pandas_kind = _arrays.pair_labels(labels, q, axis)
    label_kind = _arrays.input_kind(labels, "p")
    (q_arr,), dtype, out_kind, _ = prepare_inputs([("q", q)])
    out_kind = pandas_kind or out_kind
    label_arr = as_label_array(_arrays.to_numpy(labels, label_kind), "p (labels)")
    if q_arr.ndim == 0:
        raise ValueError("q is 0-d; it needs an axis of categories (e.g. shape (N, K))")
    ax = normalize_axis(axis, q_arr.ndim, "q")
    # labels index the category axis: give them a length-1 axis there so that
    # they broadcast against q like any batch input
    label_view = np.expand_dims(label_arr, ax)
    rows = make_rows([label_view, q_arr], ["p (labels)", "q"], ax, fixed=(1,))
    check = 1 if opts.validate else 0
    transform = normalize or eps > 0
    has_ignore = ignore_index is not None
    ignore = int(ignore_index) if has_ignore else 0
    if q_code != 0:
        if eps > 0:
            raise ValueError("eps smoothing applies to probabilities; with q_space "
                             f"{q_space_name(q_code)!r} leave eps=0")
        if normalize and q_code == 1:
            q_code = 2   # log-probabilities renormalized by their log-sum-exp
        # logits read the whole row (log-sum-exp); log-probabilities one value
        label_rows = LabelRows(rows, rows.n_cat if q_code == 2 else 1)
        result, report = run_kernel("cross_entropy_label_space_rows", label_rows, dtype,
                                    (check, q_code, temperature, ignore, has_ignore, log_base),
                                    opts)
        requirement = ("logits must not be NaN or +inf" if q_code == 2 else
                       "the log-probability picked by each label must be <= 0 (a probability "
                       "<= 1), not NaN")
    else:
        # without eps/normalize a row costs one read, not n_cat (sizes the thread count)
        label_rows = LabelRows(rows, rows.n_cat if transform else 1)
        result, report = run_kernel("cross_entropy_label_rows", label_rows, dtype,
                                    (check, eps, transform, ignore, has_ignore, log_base),
                                    opts)
        requirement = "the probability picked by each label must be in [0, 1]"
    if report[0] and report[3] == 0:
        row = int(report[1])
        index = tuple(int(i) for i in np.unravel_index(row, rows.batch)) if rows.batch else ()
        bad = label_arr[index] if index else label_arr[()]
        raise ValueError(
            f"p holds {int(report[0])} label(s) outside [0, {rows.n_cat}) for q's "
            f"{rows.n_cat} categories; the first is {int(bad)} at index {index}. Labels must "
            "index the category axis of q (use ignore_index to skip rows)"
        )
    if check:
        raise_for_values(report, rows, ["p", "q"], [label_arr, q_arr], requirement,
                         [None, "q_space"])
        if report[4] >= 0:
            row = int(report[4])
            index = tuple(int(i) for i in np.unravel_index(row, rows.batch)) if rows.batch else ()
            raise ValueError(f"q: the row at batch index {index} has every logit -inf, so it "
                             "is no distribution; give at least one category a finite logit")
    if opts.full_check:
        check_label_rows_fully(q, q_code, axis, eps, normalize, opts)
    keep = None
    if has_ignore:
        keep = label_rows.labels_flat() != ignore
    return finish(result, rows, opts, out_kind, keep_rows=keep)


def check_label_rows_fully(q, q_code, axis, eps, normalize, opts):
    """validate="full": check every row of `q` as a distribution, as the probability
    path does (values and row sums), at the cost of one more pass over q.  Logits rows
    are read whole by the label kernel already."""
    check_opts = Options(reduction="sum", keepdims=False, out=None, backend=opts.backend,
                         num_threads=opts.num_threads, validate=True, sum_tol=opts.sum_tol)
    if q_code == 0:
        reduce_probability_rows("entropy_rows", [("q", q)], axis, None, eps, normalize,
                                check_opts, (["q_space"], None))
    elif q_code == 1:
        reduce_spaces("h", [("q", q)], (1,), axis, None, 0.0, False, 1.0, check_opts)


def q_space_name(code):
    return ("prob", "log", "logits")[code]


class LabelRows:
    """Adapter: the label view of each 2-D block is its first column, 1-D."""

    def __init__(self, rows, work_per_row):
        self._rows = rows
        self.n_rows = rows.n_rows
        self.batch = rows.batch
        self.n_cat = work_per_row

    def blocks(self):
        for first_row, (labels2d, q2d) in self._rows.blocks():
            yield first_row, [labels2d[:, 0], q2d]

    def labels_flat(self):
        return np.broadcast_to(self._rows.views[0][..., 0], self.batch).reshape(-1)
