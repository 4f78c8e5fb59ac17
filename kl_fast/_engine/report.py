"""Turn what a kernel reported into the error a user can act on.

The kernels count bad values and note the first bad position and the first
row whose sum is off (see ``src/rows.pyx``, note d); this module
decides what that means and words the message: the argument, the reason,
where, and the fix.
"""

import numpy as np

from .scale import REPORT_WIDTH

__all__ = ["new_total", "new_report", "merge_reports", "raise_for_values", "raise_for_sums",
           "OUT_UNTOUCHED", "note_out", "sum_advice"]

# Every check runs before a result reaches the caller's out= array: the kernels write
# into a private buffer that is copied into out as the very last step, and the one
# kernel that writes into out directly (pairwise_kl) starts only after both inputs
# were validated.  So a call that raises never touched out=, and every error of a call
# given out= says so (``note_out``, at the public functions); a call without out= does
# not mention it.
OUT_UNTOUCHED = "Nothing was written to the out= array."


def note_out(err, out):
    """Append OUT_UNTOUCHED to the message of `err` (in place) if the call got an `out`.

    The public functions call it on every ValueError / TypeError they let through, then
    re-raise the same exception (type and traceback kept).  An explicit try/except in
    each function rather than a decorator: a wrapper call costs ~110 ns, a sixth of the
    one-vector fast path; a try block costs nothing until something raises.
    """
    if out is None or not err.args or not isinstance(err.args[0], str):
        return
    message = err.args[0].rstrip()
    if OUT_UNTOUCHED in message:     # a nested public call already said it
        return
    sep = " " if message.endswith((".", "!", "?")) else ". "
    err.args = (message + sep + OUT_UNTOUCHED,) + err.args[1:]


def new_total():
    """The report row a call's chunk reports merge into: nothing bad seen yet."""
    total = np.full(REPORT_WIDTH, -1, dtype=np.int64)
    total[0] = 0
    return total


def new_report(n_chunks):
    report = np.full((max(1, n_chunks), REPORT_WIDTH), -1, dtype=np.int64)
    report[:, 0] = 0
    return report


def merge_reports(report, first_row, total):
    """Fold a kernel's per-chunk report (rows relative to `first_row`) into `total`."""
    # as Python ints: a report has at most a few dozen rows, and numpy's per-call cost
    # on arrays that small was a tenth of a small call (4 us)
    rows = report.tolist()
    total[0] += sum(r[0] for r in rows)
    if total[1] < 0:
        r = next((r for r in rows if r[1] >= 0), None)
        if r is not None:
            total[1:4] = (first_row + r[1], r[2], r[3])
    if total[4] < 0:
        r = next((r for r in rows if r[4] >= 0), None)
        if r is not None:
            total[4:6] = (first_row + r[4], r[5])


def _value_at(arr, index):
    try:
        return arr[index]
    except (IndexError, TypeError):
        return None


def _value_fix(original, value, space_kw):
    """The fix for an invalid probability: depends on what the values say the data are."""
    if value != value:
        return ("NaN has no meaning as a probability: find where it came from, or drop "
                "those rows (np.isnan)")
    if value == float("inf"):
        return "an infinite value is no probability or count: check how it was computed"
    with np.errstate(invalid="ignore"):
        sample = np.asarray(original.flat[: 1 << 22])   # at most 4M values, any layout
        finite = sample[np.isfinite(sample)]
        negative = finite[finite < 0]
    if finite.size == 0:
        return "clean the input (e.g. np.nan_to_num)"
    if negative.size and float(negative.min()) > -1e-6:
        return ("the negative values are tiny, like rounding errors of a computation: "
                "np.clip(x, 0, None) removes them")
    if space_kw is None:
        return ("if these are logits or log-probabilities, turn them into probabilities "
                "first (scipy.special.softmax along the category axis); probabilities and "
                "counts are >= 0")
    if negative.size == finite.size or bool(np.all(finite <= 0)):
        return (f"every value is <= 0, so these look like log-probabilities: pass "
                f"{space_kw}='log' (or {space_kw}='logits' if they are unnormalized)")
    return (f"values of both signs look like logits: pass {space_kw}='logits' (a softmax "
            "is applied inside the kernel)")


def raise_for_values(total, rows, names, originals, requirement, space_kws=None):
    """ValueError for the first negative/NaN/inf (or otherwise invalid) value.

    `space_kws` (aligned with `names`) names the keyword that would declare an
    input as logits or log-probabilities; the fix offered depends on the value."""
    if total[0] == 0:
        return
    arg = int(total[3])
    name, original = names[arg], originals[arg]
    index = rows.position(int(total[1]), int(total[2]), original.shape)
    value = _value_at(original, index)
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, (int, float)) and requirement.startswith("probabilities"):
        fix = _value_fix(np.asarray(original), float(value),
                         space_kws[arg] if space_kws else None)
    elif ("log-probabilit" in requirement and isinstance(value, (int, float))
          and value > 0 and value != float("inf")):
        kw = (space_kws[arg] if space_kws else None) or "space"
        fix = (f"a positive log-probability is a probability above 1: if {name} holds "
               f"probabilities pass {kw}='prob'; if unnormalized log-weights, {kw}='logits'")
    else:
        fix = "clean the input (e.g. np.nan_to_num)"
    raise ValueError(
        f"{name} contains an invalid value, {value!r} at index {index} ({int(total[0])} "
        f"invalid value(s) in the inputs): {requirement}. Fix: {fix}; validate=False skips "
        "all checks (garbage in, garbage out)."
    )


def _own_axis(rows, original):
    """The category axis of the broadcast shape, as an axis of `original`."""
    return rows.axis - (len(rows.shape) - original.ndim)


def _axis_summing_to_one(original, own, tol):
    """Another axis of `original` along which every sum is 1 (the wrong-axis mistake)."""
    if original.ndim < 2 or original.size > 1 << 26:
        return None
    with np.errstate(all="ignore"):
        for a in range(original.ndim):
            if a == own or original.shape[a] < 2:
                continue
            sums = np.sum(original, axis=a, dtype=np.float64)
            if sums.size and np.all(np.abs(sums - 1.0) <= max(tol, 1e-6)):
                return a
    return None


def _looks_binary(originals):
    """Two 1-D inputs of values in [0, 1]: per-sample Bernoulli targets and probabilities."""
    if len(originals) != 2 or any(a.ndim != 1 or a.size < 2 for a in originals):
        return False
    with np.errstate(invalid="ignore"):
        return all(bool(np.all((a >= 0) & (a <= 1))) for a in originals)


def sum_advice(original, rows, arg_name, row_sum, tol, originals=(), binary=None):
    """The fix for a row that does not sum to 1, judged from what the data look like:
    another axis that sums to 1, per-sample binary data, or counts/weights."""
    own = _own_axis(rows, original)
    other = _axis_summing_to_one(original, own, tol)
    if other is not None:
        suggest = other + (len(rows.shape) - original.ndim)
        return (f"its sums along axis {suggest} are 1, so the categories run along that "
                f"axis: pass axis={suggest}")
    if binary is not None and _looks_binary(originals):
        return (f"both inputs are 1-D with values in [0, 1], which looks like one Bernoulli "
                f"per element (binary targets and predicted probabilities): use "
                f"kl_fast.{binary}(...) for that; this function needs whole distributions "
                f"along axis {rows.axis}")
    with np.errstate(all="ignore"):
        whole = original.size <= 1 << 24 and bool(np.all(np.mod(original, 1) == 0))
    if abs(row_sum - 1.0) < 1e-2:
        return (f"it misses 1 by {abs(row_sum - 1.0):.3g}, more than the tolerance: pass "
                "normalize=True to renormalize the rows, or a larger sum_tol if such "
                "rounding is expected")
    if whole:
        return "the values look like counts: pass normalize=True to divide each row by its sum"
    return ("if these are unnormalized weights, pass normalize=True to divide each row by "
            "its sum")


def raise_for_sums(total, rows, names, originals, tol, binary=None):
    """ValueError for the first row that does not sum to 1 (or to something positive).

    `binary` names the elementwise Bernoulli function to suggest when two 1-D inputs
    look like per-sample binary data."""
    if total[4] < 0:
        return
    arg = int(total[5])
    name = names[arg]
    row = int(total[4])
    batch_index = tuple(int(i) for i in np.unravel_index(row, rows.batch)) if rows.batch else ()
    view = rows.views[arg][batch_index] if rows.batch else rows.views[arg]
    with np.errstate(over="ignore", invalid="ignore"):
        row_sum = float(np.sum(view, dtype=np.float64))
    where = f"the row at batch index {batch_index}" if batch_index else "the distribution"
    if tol < 0:
        fix = ("scale the values down" if row_sum == np.inf
               else "give it positive mass, or pass eps > 0 to smooth it")
        raise ValueError(
            f"{name}: {where} sums to {row_sum!r} along axis {rows.axis}, so it cannot be "
            f"normalized; {fix}."
        )
    fix = sum_advice(np.asarray(originals[arg]), rows, name, row_sum, tol, originals, binary)
    raise ValueError(
        f"{name} must sum to 1 along axis {rows.axis}, but {where} sums to {row_sum!r} "
        f"(tolerance {tol:.3g}). Fix: {fix}."
    )
