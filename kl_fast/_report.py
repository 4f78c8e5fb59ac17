"""Turn what a kernel reported into the error a user can act on.

The kernels count bad values and note the first bad position and the first
row whose sum is off (see ``src/_kernels_cython.pyx``, note d); this module
decides what that means and words the message: the argument, the reason,
where, and the fix.
"""

import numpy as np

from ._scale import REPORT_WIDTH

__all__ = ["new_report", "merge_reports", "raise_for_values", "raise_for_sums", "OUT_UNTOUCHED",
           "note_out"]

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


def new_report(n_chunks):
    report = np.full((max(1, n_chunks), REPORT_WIDTH), -1, dtype=np.int64)
    report[:, 0] = 0
    return report


def merge_reports(report, first_row, total):
    """Fold a kernel's per-chunk report (rows relative to `first_row`) into `total`."""
    total[0] += int(report[:, 0].sum())
    if total[1] < 0:
        hits = np.flatnonzero(report[:, 1] >= 0)
        if hits.size:
            r = report[hits[0]]
            total[1:4] = (first_row + r[1], r[2], r[3])
    if total[4] < 0:
        hits = np.flatnonzero(report[:, 4] >= 0)
        if hits.size:
            r = report[hits[0]]
            total[4:6] = (first_row + r[4], r[5])


def _value_at(arr, index):
    try:
        return arr[index]
    except (IndexError, TypeError):
        return None


def raise_for_values(total, rows, names, originals, requirement):
    """ValueError for the first negative/NaN/inf (or otherwise invalid) value."""
    if total[0] == 0:
        return
    arg = int(total[3])
    name, original = names[arg], originals[arg]
    index = rows.position(int(total[1]), int(total[2]), original.shape)
    value = _value_at(original, index)
    value = value.item() if hasattr(value, "item") else value
    raise ValueError(
        f"{name} contains an invalid value, {value!r} at index {index} ({int(total[0])} "
        f"invalid value(s) in the inputs): {requirement}. Clean the input (e.g. "
        f"np.nan_to_num, np.clip), or pass validate=False to skip all checks."
    )


def raise_for_sums(total, rows, names, originals, tol):
    """ValueError for the first row that does not sum to 1 (or to something positive)."""
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
    raise ValueError(
        f"{name} must sum to 1 along axis {rows.axis}, but {where} sums to {row_sum!r} "
        f"(tolerance {tol:.3g}); pass normalize=True to divide each row by its sum."
    )
