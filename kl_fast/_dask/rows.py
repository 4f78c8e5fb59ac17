"""dask twins of the category-axis reductions: kl_divergence, js_divergence,
entropy and cross_entropy (probabilities, log-probabilities, logits, labels).

The keyword checks run at call time, exactly as in the numpy call.  Then:

* every input holds the category axis in one chunk -> each block is one call
  of the numpy API (``da.blockwise``, like a gufunc ``(k),(k)->()``: the batch
  axes broadcast and their chunks are unified by dask; an error names the
  block's position).  This is the
  contract path: per-row results are bitwise those of the numpy call.
* the category axis is split across chunks -> ``_dask.split`` merges exact
  per-chunk partial states (sums, or log-sum-exp states for logits).

"sum" and "mean" are lazy float64 sums of the per-row values, cast to the
result dtype, like the numpy call's.
"""

from .._engine.backends import get_backend
from .._engine.run import Options
from .._inputs.shapes import broadcast_shape, check_category_length, normalize_axis
from .._inputs.validation import check_base, check_eps, check_flag
from .._labels import check_label_rows_fully
from .._loss_options import check_label_smoothing, check_weight, wants_options
from .._registry import ROW_REDUCTIONS
from .._spaces import LOGITS, check_space, check_temperature
from . import dispatch as dd

__all__ = ["dispatch"]

# public function -> its path here (kl, js, h, ce: spaces, labels; fdiv: the family's)
_KIND = {r.function: r.dask_kind for r in ROW_REDUCTIONS}


def dispatch(name, args):
    """The dask version of public function `name`, called with its `args` (locals())."""
    args = dict(args)
    dd.reject_out(args.pop("out"))
    Options.check(reduction=args["reduction"], keepdims=args["keepdims"], out=None,
                  backend=args["backend"], num_threads=args["num_threads"],
                  validate=args["validate"], sum_tol=args.get("sum_tol"))
    get_backend(args["backend"])   # an unknown or unavailable backend fails at call time
    kind = _KIND[name]
    if kind == "ce" and wants_options(args["p_space"], args["weight"], args["label_smoothing"]):
        return _ce_options(args)
    if kind == "kl":
        codes = (check_space(args["p_space"], "p_space"), check_space(args["q_space"], "q_space"))
    elif kind == "h":
        codes = (check_space(args["space"], "space"),)
    elif kind == "ce":
        codes = (0, check_space(args["q_space"], "q_space"))
    else:
        codes = (0, 0)
    temperature = check_temperature(args.get("temperature", 1.0), codes)
    check_base(args.get("base"))
    eps = check_eps(args["eps"])
    normalize = check_flag(args["normalize"], "normalize")
    if eps > 0 and any(codes):
        raise ValueError("eps smoothing applies to probabilities; with 'log' or 'logits' "
                         "inputs leave eps=0 (logits give every category mass already)")
    names = ["p"] if kind == "h" else ["p", "q"]
    xs = dd.as_dask_inputs([(n, args[n]) for n in names])
    ignore = args.get("ignore_index")
    labels = kind == "ce" and xs[0].dtype.kind in "iu" and xs[0].ndim == xs[1].ndim - 1
    if labels:
        return _labels(xs[0], xs[1], args, codes[1], temperature, eps, normalize, ignore)
    if ignore is not None:
        raise ValueError("ignore_index applies to integer class labels (p with q.ndim - 1 "
                         f"dimensions), but p has {xs[0].ndim} and q {xs[1].ndim}")
    dtype = dd.float_dtype(xs, names=names)
    tol_dtype = min((dd.float_dtype([x]) for x in xs), key=lambda d: d.itemsize)
    shape = broadcast_shape(xs, names)
    if len(shape) == 0:
        raise ValueError(f"{' and '.join(names)} are 0-d; they need an axis of categories")
    ax = normalize_axis(args["axis"], len(shape), " and ".join(names))
    for x, x_name in zip(xs, names, strict=True):
        check_category_length(x.shape, x_name, ax, shape, args["axis"])
    # common chunks first: equal inputs then give equal partial sums in any path
    rows = dd.align([rows_view(x, shape, ax) for x in xs], [("k",)] * len(xs))
    kw = {k: args[k] for k in ("base", "eps", "normalize", "backend", "num_threads",
                               "validate", "sum_tol", "alpha") if k in args}
    kw.update({k: args[k] for k in ("p_space", "q_space", "space", "temperature")
               if k in args})
    import kl_fast

    if all(len(r.chunks[-1]) == 1 for r in rows):
        fn = getattr(kl_fast, name)
        values = per_block(fn, rows, [1] * len(rows), dtype, kw)
    else:
        from . import split as _dask_split

        values = _dask_split.rows(name if kind == "fdiv" else kind, rows, codes, temperature,
                                  eps, normalize, args, dtype, tol_dtype)
    return _shape(values, args, ax, len(shape), dtype)


def rows_view(x, shape, ax):
    """`x` with the broadcast ndim, the category axis last and its full length (the
    batch axes may stay of length one: dask and the blocks broadcast them).  A
    distribution's category axis never broadcasts: the rows path checks that first."""
    import dask.array as da

    x = x.reshape((1,) * (len(shape) - x.ndim) + x.shape) if x.ndim < len(shape) else x
    x = da.moveaxis(x, ax, -1)
    if x.shape[-1] != shape[ax]:   # Gaussian parameters broadcast along the summed axis
        x = da.broadcast_to(x, x.shape[:-1] + (shape[ax],))
    return x


def per_block(fn, rows, cores, dtype, kw):
    """One call of the numpy function `fn` per block of the aligned `rows` (`cores`:
    1 for an input with the category axis last, 0 for labels).  Each block also gets
    its position (an arange block per batch axis), so that an error names it."""
    import dask.array as da
    import numpy as np

    n_in = len(rows)
    batch_ndim = max(r.ndim - c for r, c in zip(rows, cores, strict=True))
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:batch_ndim]
    pairs = []
    for r, c in zip(rows, cores, strict=True):
        pairs += [r, letters[batch_ndim - (r.ndim - c):] + "k" * c]
    chunks = da.core.unify_chunks(*pairs, warn=False)[0]
    for letter in letters:
        pairs += [da.arange(sum(chunks[letter]), chunks=(chunks[letter],)), letter]

    def run(*blocks):
        # the category axis is contracted, so each input comes as a list of its blocks
        # along it: one block, as every input holds the axis in one chunk here
        blocks = [b[0] if isinstance(b, list) else b for b in blocks]
        origin = tuple(int(o[0]) if o.size else 0 for o in blocks[n_in:])
        try:
            result = fn(*blocks[:n_in], axis=-1, reduction="none", **kw)
        except ValueError as err:
            where = f" whose first row is at batch index {origin}" if origin else ""
            raise ValueError(f"{err} [in the dask block{where}; the index above counts "
                             "from the block's first row]") from err
        return np.asarray(result).astype(dtype, copy=False)

    run.__name__ = fn.__name__     # the task names (dashboard) say what runs
    # concatenate=False: concatenating a single block still copies it (dask's
    # concatenate3), a full extra pass over the inputs
    return da.blockwise(run, letters, *pairs, dtype=dtype, concatenate=False,
                        meta=np.empty((0,) * batch_ndim, dtype=dtype))


def _shape(values, args, ax, ndim, dtype, keep=None):
    if args["reduction"] != "none":
        return dd.reduce_lazy(values, args["reduction"], args["keepdims"], ndim, dtype, keep)
    if args["keepdims"]:
        values = dd.expand_keepdims(values, ax, ndim)
    return values


def _labels(labels, q, args, q_code, temperature, eps, normalize, ignore):
    import dask.array as da
    import numpy as np

    import kl_fast

    if ignore is not None and (isinstance(ignore, bool)
                               or not isinstance(ignore, (int, np.integer))):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore).__name__}")
    if q_code != 0 and eps > 0:
        raise ValueError("eps smoothing applies to probabilities; with q_space "
                         f"{('prob', 'log', 'logits')[q_code]!r} leave eps=0")
    dtype = dd.float_dtype([q], names=["q"])
    ax = normalize_axis(args["axis"], q.ndim, "q")
    q_rows = da.moveaxis(q, ax, -1)
    batch = np.broadcast_shapes(labels.shape, q_rows.shape[:-1])
    if labels.shape != batch:
        labels = da.broadcast_to(labels, batch)
    if q_rows.shape[:-1] != batch:
        q_rows = da.broadcast_to(q_rows, batch + q_rows.shape[-1:])
    kw = {k: args[k] for k in ("base", "eps", "normalize", "backend", "num_threads",
                               "validate", "sum_tol", "q_space", "temperature",
                               "ignore_index")}
    if len(q_rows.chunks[-1]) == 1:
        values = per_block(kl_fast.cross_entropy, [labels, q_rows], [0, 1], dtype, kw)
    else:
        from . import split as _dask_split

        code = LOGITS if (q_code == 1 and normalize) else q_code
        values = _dask_split.label_rows(labels, q_rows, code, temperature, eps, normalize,
                                        ignore, args, dtype)
        if args["validate"] == "full" and code != LOGITS:
            values = _checked_rows_first(values, q_rows, q_code, eps, normalize, args)
    keep = None if ignore is None else labels != int(ignore)
    return _shape(values, args, ax, q.ndim, dtype, keep)


def _checked_rows_first(values, q_rows, q_code, eps, normalize, args):
    """`values`, computed only once every row of `q_rows` passed the check of
    validate="full" (the rows rechunked whole: that check needs their sums)."""
    import dask.array as da
    import numpy as np

    opts = Options.check(reduction="none", keepdims=False, out=None, backend=args["backend"],
                         num_threads=args["num_threads"], validate="full",
                         sum_tol=args.get("sum_tol"))

    def check(block):
        check_label_rows_fully(block, q_code, -1, eps, normalize, opts)
        return np.zeros(block.shape[:-1], dtype=values.dtype)

    whole = q_rows.rechunk({q_rows.ndim - 1: -1})
    ok = da.map_blocks(check, whole, drop_axis=q_rows.ndim - 1, dtype=values.dtype)
    return values + ok


def _ce_options(args):
    """cross_entropy with weight / label_smoothing / p_space: the category axis in one
    chunk (rechunked if split: these options read whole rows), one numpy call per
    block; "mean" with labels and weight divides by the lazy sum of w[label]."""
    import dask.array as da
    import numpy as np

    import kl_fast

    check_label_smoothing(args["label_smoothing"])
    codes = (check_space(args["p_space"], "p_space"), check_space(args["q_space"], "q_space"))
    check_base(args["base"])
    check_eps(args["eps"])
    check_flag(args["normalize"], "normalize")
    p, q = dd.as_dask_inputs([("p", args["p"]), ("q", args["q"])])
    labels = p.dtype.kind in "iu" and p.ndim == q.ndim - 1
    check_temperature(args["temperature"], codes[1:] if labels else codes)
    kw = {k: args[k] for k in ("base", "eps", "normalize", "backend", "num_threads", "validate",
                               "sum_tol", "p_space", "q_space", "temperature", "ignore_index",
                               "label_smoothing")}
    if not labels:
        names = ["p", "q"]
        dtype = dd.float_dtype([p, q], names=names)
        shape = broadcast_shape([p, q], names)
        if len(shape) == 0:
            raise ValueError("p and q are 0-d; they need an axis of categories")
        ax = normalize_axis(args["axis"], len(shape), "p and q")
        kw["weight"] = None if args["weight"] is None else check_weight(args["weight"],
                                                                          shape[ax])
        rows = dd.align([rows_view(x, shape, ax).rechunk({-1: -1}) for x in (p, q)],
                        [("k",)] * 2)
        values = per_block(kl_fast.cross_entropy, rows, [1, 1], dtype, kw)
        return _shape(values, args, ax, len(shape), dtype)
    ignore = args["ignore_index"]
    if ignore is not None and (isinstance(ignore, bool)
                               or not isinstance(ignore, (int, np.integer))):
        raise TypeError(f"ignore_index must be an int or None, got {type(ignore).__name__}")
    dtype = dd.float_dtype([q], names=["q"])
    ax = normalize_axis(args["axis"], q.ndim, "q")
    q_rows = da.moveaxis(q, ax, -1).rechunk({-1: -1})
    w = None if args["weight"] is None else check_weight(args["weight"], q_rows.shape[-1])
    kw["weight"] = w
    batch = np.broadcast_shapes(p.shape, q_rows.shape[:-1])
    p = p if p.shape == batch else da.broadcast_to(p, batch)
    if q_rows.shape[:-1] != batch:
        q_rows = da.broadcast_to(q_rows, batch + q_rows.shape[-1:])
    values = per_block(kl_fast.cross_entropy, [p, q_rows], [0, 1], dtype, kw)
    keep = None if ignore is None else p != int(ignore)
    if w is None or args["reduction"] != "mean":
        return _shape(values, args, ax, q.ndim, dtype, keep)
    # torch's weighted mean: sum of the weighted losses over sum(w[y_i]), both lazy
    wy = p.map_blocks(_label_weights, w, ignore, dtype=np.float64)
    v = values.astype(np.float64)
    total = (v if keep is None else da.where(keep, v, 0.0)).sum()
    den = wy.sum()
    result = da.where(den > 0, total / da.where(den > 0, den, 1.0), np.nan).astype(dtype)
    return result.reshape((1,) * q.ndim) if args["keepdims"] else result


def _label_weights(labels, w, ignore):
    """w[label] per row, 0 for ignored rows (labels out of range are clipped here; the
    block's own call raises for them)."""
    import numpy as np

    keep = np.ones(labels.shape, bool) if ignore is None else labels != int(ignore)
    return np.where(keep, w[np.clip(labels, 0, w.size - 1)], 0.0)
