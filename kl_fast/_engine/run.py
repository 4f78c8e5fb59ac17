"""The path every public function takes after its own argument checks:
resolve backend and threads, walk the 2-D blocks through the kernel, judge
the reports, and shape the result (reduction, keepdims, out, array type).
"""

from dataclasses import dataclass

import numpy as np

from .._inputs import array_types as _arrays
from .._inputs.validation import check_flag, check_reduction, check_sum_tol, check_validate
from . import report as _report
from .backends import get_backend
from .threads import chunk_count, resolve_num_threads, threads_for

__all__ = ["Options", "run_kernel", "finish", "deliver"]


@dataclass
class Options:
    """The common keywords of every reduction, checked once."""

    reduction: str
    keepdims: bool
    out: object
    backend: str
    num_threads: object
    validate: bool
    full_check: bool = False     # validate="full": the label path checks whole q rows
    sum_tol: object = None       # the row-sum tolerance (None: the default)

    @classmethod
    def check(cls, *, reduction, keepdims, out, backend, num_threads, validate, sum_tol=None):
        reduction = check_reduction(reduction)
        keepdims = check_flag(keepdims, "keepdims")
        validate, full_check = check_validate(validate)
        sum_tol = check_sum_tol(sum_tol)
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError(f"out must be a numpy array or None, got {type(out).__name__}")
            if reduction != "none":
                raise ValueError(f"out= needs reduction='none' (got {reduction!r}); "
                                 "a reduction returns a scalar")
            if out.dtype.kind != "f":
                raise TypeError(f"out must have a float dtype, got {out.dtype}")
            if not out.flags.writeable:
                raise ValueError("out is read-only; pass a writeable array")
        return cls(reduction, keepdims, out, backend, num_threads, validate, full_check, sum_tol)


def run_kernel(kernel_name, rows, dtype, args, opts):
    """Run `kernel_name` over every 2-D block of `rows`; return (flat result, report)."""
    _, module = get_backend(opts.backend)
    kernel = getattr(module, kernel_name)
    n_threads = resolve_num_threads(opts.num_threads)
    result = np.empty(rows.n_rows, dtype=dtype)
    total = _report.new_total()
    for first_row, views in rows.blocks():
        n = views[-1].shape[0]
        threads = threads_for(n_threads, n * rows.n_cat)
        report = _report.new_report(chunk_count(threads, n))
        kernel(*views, result[first_row:first_row + n], report, *args, threads)
        _report.merge_reports(report, first_row, total)
    return result, total


def finish(result, rows, opts, out_kind, keep_rows=None):
    """Shape the flat per-row `result`: reduction, keepdims, out=, array type.

    `keep_rows` (bool mask or None) says which rows a "sum"/"mean" counts
    (rows with an ignored label are left out).
    """
    batch = rows.batch
    if opts.reduction != "none":
        values = result if keep_rows is None else result[keep_rows]
        acc = values.sum(dtype=np.float64)
        if opts.reduction == "mean":
            acc = acc / values.size if values.size else np.nan
        value = result.dtype.type(acc)
        if opts.keepdims:
            value = np.full((1,) * len(rows.shape), value, dtype=result.dtype)
        return _arrays.wrap_result(value, out_kind)
    shaped = result.reshape(batch)
    if opts.keepdims:
        shaped = np.expand_dims(shaped, rows.axis)
    return deliver(shaped, opts.out, out_kind, rows.shape, rows.axis)


def deliver(shaped, out, out_kind, shape=None, axis=None):
    """A per-row (or elementwise) result of its final shape, into `out` (checked,
    numpy's same-kind casting) or as the caller's array type; 0-d gives a scalar.
    `shape`/`axis` (the broadcast input shape and the reduced axis) label pandas
    results."""
    if out is not None:
        if out.shape != shaped.shape:
            raise ValueError(f"out has shape {out.shape}, but the result has shape "
                             f"{shaped.shape}; pass an array of that shape")
        np.copyto(out, shaped, casting="same_kind")
        return out
    if shaped.ndim == 0:
        return _arrays.wrap_result(shaped[()], out_kind)
    return _arrays.wrap_result(shaped, out_kind, shape, axis)
