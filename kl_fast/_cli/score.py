"""``kl-fast score``: score .npy/.npz/.csv/.parquet files of any size in chunks.

The chunk loop calls the public function (``kl_fast.kl_divergence`` etc.) on
one slab of rows at a time, so validation, errors and results are exactly
those of the in-memory call: the kernels compute each row on its own, so the
per-row results are bit-identical to one call on the whole array; "sum" and
"mean" add the chunks' float64 partial sums with ``math.fsum``.

Inputs are opened by :mod:`kl_fast._cli.score_inputs` (one mapped window or one
reused buffer per chunk; CSV and parquet files are read in order, one row
chunk at a time); the output goes to a temporary file beside the
target and is renamed over it only when complete (:mod:`kl_fast._cli.score_output`).
"""

import importlib
import math
import os
import re
import time
from dataclasses import dataclass

import numpy as np

from .. import _fdivergences
from .._binary import binary_cross_entropy, binary_kl
from .._engine.backends import get_backend
from .._engine.threads import check_num_threads
from .._inputs.validation import check_base, check_eps, check_reduction
from .._registry import ROW_REDUCTIONS
from .._spaces import check_space, check_temperature
from .score_errors import ScoreInputError
from .score_inputs import open_input
from .score_output import AtomicNpyWriter, check_out, open_writer
from .score_table import TableSource

__all__ = ["METRICS", "ScoreInputError", "ScoreSummary", "AtomicNpyWriter", "score_files",
           "DEFAULT_CHUNK_BYTES"]

#: input bytes per chunk when --chunk-rows is not given: large enough that the
#: per-call overhead (~30 us) vanishes, small enough to stay in a few MB of RSS
DEFAULT_CHUNK_BYTES = 32 << 20
#: the same for CSV and parquet inputs: parsing costs far more than a call, and a
#: chunk of text lines takes several times the memory of the numbers it holds
TABLE_CHUNK_BYTES = 4 << 20


@dataclass(frozen=True)
class Metric:
    name: str
    fn: object
    n_inputs: int          # 1 for entropy, else 2
    elementwise: bool      # binary-kl: no category axis
    options: frozenset     # the optional settings it takes (beyond base/eps/backend/threads)
    logarithmic: bool = True   # takes --base


def _row_metric(row):
    """The metric of a registry row (a function of probability rows)."""
    fn = getattr(importlib.import_module(f"kl_fast.{row.module}"), row.function)
    options = row.score_options | ({row.parameter} if row.parameter else set())
    return Metric(row.metric, fn, row.n_inputs, False, frozenset(options),
                  logarithmic=row.logarithmic)


METRICS = {
    # the core rows, then the elementwise metrics, then the f-divergences
    **{r.metric: _row_metric(r) for r in ROW_REDUCTIONS if not r.is_fdivergence},
    "binary-kl": Metric("binary-kl", binary_kl, 2, True, frozenset({"p_space", "q_space"})),
    "binary-cross-entropy": Metric("binary-cross-entropy", binary_cross_entropy, 2, True,
                                   frozenset({"q_space"})),
    **{r.metric: _row_metric(r) for r in ROW_REDUCTIONS if r.is_fdivergence},
}

#: the registry rows' required parameters (Renyi's alpha): flag -> its check
PARAMETERS = {r.parameter: getattr(_fdivergences, f"check_{r.parameter}")
              for r in ROW_REDUCTIONS if r.parameter}

_PARAMETER_HELP = {r.parameter: r.parameter_help for r in ROW_REDUCTIONS if r.parameter}

_FLAGS = {"axis": "--axis", "normalize": "--normalize", "p_space": "--p-space",
          "q_space": "--q-space", "temperature": "--temperature",
          "ignore_index": "--ignore-index", "sum_tol": "--sum-tol",
          **{name: f"--{name}" for name in PARAMETERS}}


@dataclass
class ScoreSummary:
    """What one run did: for the summary line and for callers."""

    rows: int              # distributions (or elements, for the binary metrics) scored
    n_cat: int             # categories per distribution (0 for the binary metrics)
    bytes_read: int
    seconds: float
    out: object            # the output path, or None (a sum/mean printed, not written)
    reduction: str
    value: object = None   # the sum or mean (reduction "sum"/"mean")
    chunks: int = 0

    def line(self):
        """One line: rows, categories, bytes, time, throughput, output path, sum/mean."""
        unit = "rows" if self.n_cat else "elements"
        what = f"{self.rows:,} {unit}" + (f" x {self.n_cat:,}" if self.n_cat else "")
        secs = max(self.seconds, 1e-9)
        text = (f"kl-fast score: {what} ({_size(self.bytes_read)}) in {self.seconds:.2f} s:"
                f" {self.rows / secs:,.0f} {unit}/s, {_size(self.bytes_read / secs)}/s")
        if self.out is not None:
            text += f" -> {self.out}"
        if self.value is not None:
            text += f" ({self.reduction} = {self.value_text()})"
        return text

    def value_text(self):
        """The sum or mean as text: the shortest digits that read back as the same
        value of its dtype (a float32 result is not shown with float64's digits)."""
        return str(self.value)


def _size(nbytes):
    """Bytes as GB, or as MB below 0.01 GB (where GB would print 0.00)."""
    if nbytes < 0.01e9:
        return f"{nbytes / 1e6:.2f} MB"
    return f"{nbytes / 1e9:.2f} GB"


def _keywords(metric, given, eps, base, backend, num_threads):
    """The keyword arguments of the metric's function; refuse settings it does not take."""
    for name, value in given.items():
        if value is not None and name not in metric.options:
            raise ScoreInputError(f"{_FLAGS[name]} does not apply to --metric {metric.name}")
    kw = {"eps": check_eps(eps), "backend": backend, "reduction": "none"}
    check_base(base)
    if metric.logarithmic:
        kw["base"] = base
    elif base is not None:
        raise ScoreInputError(f"--base does not apply to --metric {metric.name} "
                              "(not a logarithm)")
    for name, check in PARAMETERS.items():
        if name in metric.options:
            if given.get(name) is None:
                raise ScoreInputError(f"--metric {metric.name} needs --{name}: "
                                      f"{_PARAMETER_HELP[name]}")
            kw[name] = check(given[name])
    get_backend(backend)
    if num_threads is not None:
        kw["num_threads"] = check_num_threads(num_threads, "--threads")
    spaces = {k: given[k] for k in ("p_space", "q_space") if given.get(k) is not None}
    for name, space in spaces.items():
        check_space(space, _FLAGS[name])
    if metric.elementwise:
        bad = [s for s in spaces.values() if s == "log"]
        if bad:
            flags = "--q-space" if metric.name == "binary-cross-entropy" else \
                "--p-space/--q-space"
            raise ScoreInputError(f"{metric.name} takes {flags} prob or logits")
        kw.update(spaces)
        return kw
    kw["axis"] = -1 if given.get("axis") is None else given["axis"]
    kw["normalize"] = bool(given.get("normalize"))
    if given.get("temperature") is not None:
        codes = tuple(check_space(s, "space") for s in spaces.values())
        kw["temperature"] = check_temperature(given["temperature"], codes)
    if metric.name == "entropy":
        if "p_space" in spaces:
            kw["space"] = spaces["p_space"]
    else:
        kw.update(spaces)
    if given.get("ignore_index") is not None:
        kw["ignore_index"] = given["ignore_index"]
    if given.get("sum_tol") is not None:
        kw["sum_tol"] = given["sum_tol"]
    return kw


class _Input:
    """An opened source placed in the broadcast frame: which axis (if any) is chunked."""

    def __init__(self, source, frame_shape, own_axis_of):
        self.source = source
        self.frame_shape = frame_shape     # shape as it broadcasts (labels get a 1 axis)
        self._own_axis_of = own_axis_of    # frame axis -> the source's own axis
        self.chunk_axis = None             # the source's own axis that is sliced
        self.whole = None                  # the whole array, when it is not sliced

    def place(self, frame_ndim, chunk_axis, n):
        """Slice this input along the frame's `chunk_axis` (length `n`) iff it has the
        full length there; otherwise it broadcasts and is read whole, once."""
        axis = None if chunk_axis is None else chunk_axis - (frame_ndim - len(self.frame_shape))
        if axis is not None and axis >= 0 and self.frame_shape[axis] == n:
            self.chunk_axis = self._own_axis_of(axis)
        else:
            self.whole = self.source.read_all()

    def chunk(self, start, stop):
        if self.chunk_axis is None:
            return self.whole
        return self.source.read_slab(self.chunk_axis, start, stop)


# the function's keywords, as the fixes in its messages name them, and the flags that set
# them: "pass normalize=True" must read "pass --normalize" on the command line
_FLAG_WORDS = [
    (re.compile(r"\bnormalize=True\b"), "--normalize"),
    (re.compile(r"\bvalidate=False\b"), "--no-validate"),
    (re.compile(r"\baxis=(-?\d+)"), r"--axis \1"),
    (re.compile(r"\bignore_index=(-?\d+)"), r"--ignore-index \1"),
    (re.compile(r"\btemperature=(?=\S)"), "--temperature "),
    (re.compile(r"\b(?:p_)?space=['\"]?(\w+)['\"]?"), r"--p-space \1"),
    (re.compile(r"\bq_space=['\"]?(\w+)['\"]?"), r"--q-space \1"),
    (re.compile(r"\ba larger sum_tol\b"), "a larger --sum-tol"),
]


def as_flags(message):
    """An API error's text with the keywords in its advice written as score's flags."""
    text = str(message)
    for pattern, flag in _FLAG_WORDS:
        text = pattern.sub(flag, text)
    return text


def _check_axis(axis, shape, what):
    """`axis` as a non-negative index into `shape` (the CLI's --axis)."""
    if not shape:
        raise ScoreInputError(f"{what} is 0-d; it needs an axis of categories")
    if not -len(shape) <= axis < len(shape):
        raise ScoreInputError(f"--axis {axis} is out of range for {what} of shape {shape}")
    return axis % len(shape)


def _frame(metric, sources, kw):
    """Inputs in the broadcast frame; (inputs, frame shape, category axis or None, labels?)."""
    p = sources[0]
    q = sources[1] if len(sources) > 1 else None
    labels = (metric.name == "cross-entropy" and p.dtype.kind in "iu"
              and len(p.shape) == len(q.shape) - 1)
    normalize = kw.get("normalize", False)
    for source in sources:
        # a CSV column of integers has no dtype of its own: it is float data unless labels
        if hasattr(source, "use_float") and source.dtype.kind in "iu" \
                and not (labels and source is p):
            source.use_float()
    p.check_dtype(allow_int=labels or normalize)
    if q is not None:
        q.check_dtype(allow_int=normalize)
    if labels:
        # as the API does: labels get a length-1 category axis and broadcast against q
        ax = _check_axis(kw["axis"], q.shape, q.label)
        frame = p.shape[:ax] + (1,) + p.shape[ax:]
        inputs = [_Input(p, frame, lambda a: a if a < ax else a - 1),
                  _Input(q, q.shape, lambda a: a)]
    else:
        inputs = [_Input(s, s.shape, lambda a: a) for s in sources]
    try:
        shape = np.broadcast_shapes(*(i.frame_shape for i in inputs))
    except ValueError:
        described = " and ".join(f"{i.source.label} of shape {i.source.shape}" for i in inputs)
        raise ScoreInputError(f"the shapes do not broadcast: {described}") from None
    if metric.elementwise:
        cat_axis = None
    elif labels:
        cat_axis = ax       # labels have q.ndim - 1 dimensions, so the frame is q's
    else:
        cat_axis = _check_axis(kw["axis"], shape, " and ".join(s.label for s in sources))
    return inputs, shape, cat_axis, labels


def _chunk_rows(inputs, n, chunk_rows):
    if chunk_rows is not None:
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ScoreInputError(f"--chunk-rows must be a positive integer, got {chunk_rows!r}")
        return chunk_rows
    sliced = [i.source for i in inputs if i.chunk_axis is not None]
    per_row = sum(s.nbytes // max(n, 1) for s in sliced)
    budget = min((TABLE_CHUNK_BYTES if isinstance(s, TableSource) else DEFAULT_CHUNK_BYTES)
                 for s in sliced) if sliced else DEFAULT_CHUNK_BYTES
    return max(1, budget // max(per_row, 1))


def score_files(p, q=None, *, metric, out=None, key=None, p_key=None, q_key=None,
                axis=None, eps=0.0, base=None, normalize=None, p_space=None, q_space=None,
                temperature=None, ignore_index=None, reduction="none", chunk_rows=None,
                num_threads=None, backend="auto", validate=True, progress=None,
                delimiter=None, header="auto", sum_tol=None, **parameters):
    """Score the arrays in files `p` (and `q`) chunk by chunk and write a .npy or .csv.

    What ``kl-fast score`` runs.  The result equals ``kl_fast.<metric>`` on
    the whole arrays: bit for bit per row, and to ~1e-16 relative for "sum"
    and "mean" (chunk partials merged with ``math.fsum``).

    Parameters
    ----------
    p, q : str or path
        .npy files, .npz archives (the array named by the key, or the only
        one), parquet files (pyarrow; the column named by the key, else every
        column) or CSV files (.csv, .tsv or .txt).  `q` is not given for
        ``metric="entropy"``; when `q_key` is given, `q` defaults to `p` (two
        arrays of one file).  For "cross-entropy" an integer `p` with one
        dimension fewer than `q` holds class labels (a CSV with one column of
        integers, say).  Inputs broadcast by numpy rules; only the ones that
        have the full length along the chunked axis are sliced.
    metric : {"kl", "entropy", "cross-entropy", "js", "binary-kl", \
"binary-cross-entropy", "renyi", "hellinger", "total-variation", "chi2"}
        The quantity: :func:`kl_fast.kl_divergence`, :func:`~kl_fast.entropy`,
        :func:`~kl_fast.cross_entropy`, :func:`~kl_fast.js_divergence`,
        :func:`~kl_fast.binary_kl` or :func:`~kl_fast.binary_cross_entropy`
        (these two elementwise; for binary-cross-entropy `p` holds the
        targets y), :func:`~kl_fast.renyi_divergence` (of order `alpha`),
        :func:`~kl_fast.hellinger_distance`, :func:`~kl_fast.total_variation`
        or :func:`~kl_fast.chi2_divergence` (these three take no `base`).
    out : str or path, optional
        The .npy to write: the per-row results (shape: the batch shape), or a
        0-d array holding the sum or mean.  A name ending in .csv gets text
        instead: a header line (the metric's name), then one line per row, the
        values with the digits that read back exactly (1-D or 2-D batches
        only).  Written atomically.  May be None
        only for a "sum" or "mean" (then only ``ScoreSummary.value`` has it).
    key : str, optional
        Array name inside .npz inputs, or column of parquet inputs; a file
        holding a single array ignores it.
    p_key, q_key : str, optional
        The same for `p` alone or `q` alone (overriding `key`); it must
        exist.
    axis, eps, base, normalize, p_space, q_space, temperature, ignore_index
        As for the metric's function (None: its default).  `p_space` is
        `space` for entropy.  A setting the metric does not take raises.
    reduction : {"none", "sum", "mean"}, default "none"
    chunk_rows : int, optional
        Rows per chunk along the first batch axis; default: about 32 MiB of
        input per chunk.
    num_threads : int, optional
    backend : {"auto", "cython", "numba", "numpy"}, default "auto"
    validate : bool, default True
        As for the metric's function (labels out of range are always errors).
    sum_tol : float, optional
        The row-sum tolerance, as for the metric's function (None: its default).
    progress : callable, optional
        ``progress(total_rows)`` returns an object with ``update(n)`` and
        ``close()`` (a tqdm bar, say).
    delimiter : str, optional
        CSV inputs: the one-character delimiter (default ",", tab for .tsv;
        "\\t" and "tab" mean tab).
    header : {"auto", "yes", "no"}, default "auto"
        CSV inputs: "auto" reads a first row of text cells as a header and
        refuses a first row it cannot place (text beside numbers, pandas'
        index or its integer column names).
    **parameters
        The required parameters of the metrics that take one
        (``_registry.ROW_REDUCTIONS``): ``alpha``, the order of "renyi"
        (refused by the other metrics).

    Returns
    -------
    ScoreSummary
        Rows, categories, bytes read, seconds, output path and the sum/mean.

    Raises
    ------
    ScoreInputError
        A missing, truncated or unknown file, an unsupported dtype, shapes
        that do not broadcast, an output that would overwrite an input, or a
        setting the metric does not take; in a CSV file a ragged row or a cell
        that is not a number (naming the line and column), in a parquet file a
        null, a non-numeric column or a missing pyarrow.  Bad values found in
        a chunk carry the chunk's rows in the message.
    ValueError, TypeError
        A bad option value (from the metric's own checks).

    Notes
    -----
    Memory: each chunk maps only its own window of each input (or reads it
    into one reused buffer; CSV lines and parquet batches are read in order,
    one chunk at a time), and the output is appended with sequential writes,
    so the peak resident set is a few chunks (plus one parquet row group)
    whatever the file size.  A CSV file is read twice: a fast scan counts
    its rows (the output's shape is needed first), then the chunks are
    parsed.

    Examples
    --------
    >>> import os, tempfile, numpy as np, kl_fast
    >>> from kl_fast._cli.score import score_files
    >>> d = tempfile.mkdtemp()
    >>> P = np.array([[0.8, 0.2], [0.5, 0.5], [1.0, 0.0]])
    >>> np.save(os.path.join(d, "p.npy"), P); np.save(os.path.join(d, "q.npy"), [0.6, 0.4])
    >>> s = score_files(os.path.join(d, "p.npy"), os.path.join(d, "q.npy"), metric="kl",
    ...                 base=2, chunk_rows=2, out=os.path.join(d, "kl.npy"))
    >>> np.load(os.path.join(d, "kl.npy")).round(5)
    array([0.13203, 0.02945, 0.73697])
    >>> s.rows, s.n_cat, s.chunks
    (3, 2, 2)
    """
    start_time = time.perf_counter()
    if metric not in METRICS:
        raise ScoreInputError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
    metric = METRICS[metric]
    reduction = check_reduction(reduction)
    if q is None and q_key is not None and metric.n_inputs == 2:
        q = p                    # --q-key without Q: both arrays come from one file
    paths = [p] if q is None else [p, q]
    if len(paths) != metric.n_inputs:
        raise ScoreInputError("entropy takes one input (P)" if metric.n_inputs == 1
                              else f"--metric {metric.name} needs two inputs, P and Q "
                                   "(or P alone with --q-key, both arrays from one file)")
    if metric.n_inputs == 1 and q_key is not None:
        raise ScoreInputError("--q-key does not apply to --metric entropy (one input)")
    paths = [os.fspath(x) for x in paths]
    out = check_out(out, paths, reduction)
    given = {"axis": axis, "normalize": normalize or None, "p_space": p_space,
             "q_space": q_space, "temperature": temperature, "ignore_index": ignore_index,
             "sum_tol": sum_tol}
    unknown = set(parameters) - set(PARAMETERS)
    if unknown:
        raise TypeError(f"score_files() got unexpected keyword(s) {sorted(unknown)}; "
                        f"the metrics' parameters are {sorted(PARAMETERS)}")
    given.update(parameters)
    kw = _keywords(metric, given, eps, base, backend, num_threads)
    kw["validate"] = bool(validate)
    sources = []
    try:
        for path, own in zip(paths, (p_key, q_key), strict=False):
            sources.append(open_input(path, key if own is None else own,
                                      strict_key=own is not None, delimiter=delimiter,
                                      header=header))
        return _run(metric, sources, kw, out, reduction, chunk_rows, progress, start_time)
    finally:
        for source in sources:
            source.close()


class _Merge:
    """Sum and count of the per-row results over chunks, for "sum" and "mean".

    Each chunk's values are summed in float64 (numpy's pairwise sum, as the
    API does for one array); the chunk sums are added exactly with
    ``math.fsum``, so chunking changes the result by ~1 rounding at most.
    """

    def __init__(self):
        self.partials = []
        self.count = 0
        self.dtype = None

    def add(self, result, keep=None):
        values = result if keep is None else result[keep]
        self.partials.append(float(values.sum(dtype=np.float64)))
        self.count += values.size
        self.dtype = result.dtype

    def value(self, reduction):
        total = math.fsum(self.partials)
        if reduction == "mean":
            total = total / self.count if self.count else math.nan
        return self.dtype.type(total)


def _run(metric, sources, kw, out, reduction, chunk_rows, progress, start_time):
    inputs, shape, cat_axis, labels = _frame(metric, sources, kw)
    batch_axes = [a for a in range(len(shape)) if a != cat_axis]
    chunk_axis = batch_axes[0] if batch_axes else None
    n = shape[chunk_axis] if chunk_axis is not None else 1
    for item in inputs:
        item.place(len(shape), chunk_axis, n)
    out_shape = tuple(s for a, s in enumerate(shape) if a != cat_axis)
    step = _chunk_rows(inputs, n, chunk_rows) if chunk_axis is not None else max(n, 1)
    bounds = [(a, min(a + step, n)) for a in range(0, n, step)] or [(0, 0)]
    names = ", ".join(f"{arg} = {i.source.label}"
                      for arg, i in zip(("p", "q"), inputs, strict=False))
    bar = progress(n) if progress is not None else None
    merge = _Merge()
    ignore = kw.get("ignore_index")
    try:
        with open_writer(out, metric.name) as writer:
            for first, stop in bounds:
                arrays = [item.chunk(first, stop) for item in inputs]
                try:
                    result = np.asarray(metric.fn(*arrays, **kw))
                except (ValueError, TypeError) as exc:
                    if len(bounds) == 1:
                        raise ScoreInputError(f"{names}: {as_flags(exc)}") from None
                    lines = "".join(
                        f", line {i.source.chunk_first_line:,} of {i.source.label}"
                        for i in inputs if getattr(i.source, "chunk_first_line", None))
                    raise ScoreInputError(
                        f"rows {first:,}-{stop - 1:,} ({names}): {as_flags(exc)} [the index "
                        f"is relative to the chunk starting at row {first:,}{lines}]") from None
                if reduction == "none":
                    if not writer.is_open:
                        writer.open(out_shape, result.dtype)
                    writer.write(result)
                else:
                    # rows with an ignored label do not count, as in the API
                    keep = (np.broadcast_to(arrays[0] != ignore, result.shape)
                            if labels and ignore is not None else None)
                    merge.add(result, keep)
                del arrays, result
                if bar is not None:
                    bar.update(stop - first)
            value = None
            if reduction != "none":
                value = merge.value(reduction)
                writer.open((), value.dtype)
                writer.write(np.asarray(value))
            writer.commit()
    finally:
        if bar is not None:
            bar.close()
    rows = int(np.prod(out_shape, dtype=np.int64))
    n_cat = 0 if cat_axis is None else shape[cat_axis]
    return ScoreSummary(rows=rows, n_cat=n_cat,
                        bytes_read=sum(i.source.read_bytes for i in inputs),
                        seconds=time.perf_counter() - start_time, out=out,
                        reduction=reduction, value=value, chunks=len(bounds))
