"""dask twins of the functions without a split-merge of their own: the elementwise
ones (binary_kl, binary_cross_entropy, kl_estimate, gaussian_kl with axis=None),
gaussian_kl along an axis, gaussian_kl_full, mutual_information, pairwise_kl and
pairwise_js, and the reductions of the scipy drop-ins (kl_fast.scipy.entropy and
jensenshannon; kl_fast.scipy.rel_entr is a numpy ufunc, which dask arrays take
through ``__array_ufunc__``).

Each block is one call of the numpy API (so the kernels, checks and messages
are the ordinary ones, run at compute time); "sum"/"mean" are lazy float64
sums of the per-item values cast to the result dtype, as in the numpy call.
Core dimensions that must be whole (a covariance matrix, a joint table, the
category axis of pairwise_*) are rechunked to one chunk by dask where needed.
"""

import numpy as np

from .._engine.backends import get_backend
from .._engine.run import Options
from .._inputs.shapes import check_axes_pair
from . import dispatch as dd

__all__ = ["dispatch", "scipy_reduce"]

_INPUTS = {
    "binary_kl": ("p", "q"),
    "binary_cross_entropy": ("y", "q"),
    "kl_estimate": ("logp", "logq"),
    "gaussian_kl": ("mu1", "s1", "mu2", "s2"),
    "gaussian_kl_full": ("mu1", "cov1", "mu2", "cov2"),
    "mutual_information": ("joint",),
    "pairwise_kl": ("P", "Q"),
    "pairwise_js": ("P", "Q"),
}


def dispatch(name, args):
    """The dask version of public function `name`, called with its `args` (locals())."""
    import kl_fast

    args = dict(args)
    dd.reject_out(args.pop("out"))
    Options.check(reduction=args.get("reduction", "none"), keepdims=args.get("keepdims", False),
                  out=None, backend=args["backend"], num_threads=args["num_threads"],
                  validate=args["validate"], sum_tol=args.get("sum_tol"))
    where = args.pop("where", None)
    names = [n for n in _INPUTS[name] if args[n] is not None]
    xs = dd.as_dask_inputs([(n, args[n]) for n in names])
    kw = {k: v for k, v in args.items() if k not in _INPUTS[name]}
    fn = getattr(kl_fast, name)
    dtype = _probe(fn, xs, kw)
    if name == "gaussian_kl" and args["axis"] is not None:
        if where is not None:
            raise ValueError(
                f"where= applies to the elementwise KL (axis=None), got axis={args['axis']!r}:"
                " pass axis=None, where=mask and sum the per-coordinate values (masked ones "
                "are 0) along the axis")
        return _gaussian_axis(fn, xs, names, kw, dtype)
    if name == "gaussian_kl_full":
        return _cores(fn, xs, kw, dtype, ",".join(["(k)", "(k,j)"] * (len(xs) // 2)) + "->()",
                      keep_axes=())
    if name == "mutual_information":
        return _mutual_information(fn, xs[0], kw, dtype)
    if name in ("pairwise_kl", "pairwise_js"):
        return _pairwise(fn, xs, kw, dtype)
    return elementwise(fn, xs, kw, dtype, where)


def _probe(fn, xs, kw):
    """The numpy call's dtype, and its keyword errors raised now, not at compute time:
    one call on tiny stand-ins (every axis of length 1, values 0.5, validate=False,
    the numpy backend) with the inputs' ndim and dtypes."""
    get_backend(kw["backend"])   # an unknown or unavailable backend fails here too
    probes = [np.full((1,) * x.ndim, 0.5).astype(x.dtype) for x in xs]
    probe_kw = dict(kw, validate=False, backend="numpy", num_threads=1)
    with np.errstate(all="ignore"):
        return np.asarray(fn(*probes, **probe_kw)).dtype


def _run(fn, dtype, kw):
    def run(*blocks):
        result = dd.call_in_block(fn, *blocks, **kw)
        return np.asarray(result).astype(dtype, copy=False)

    run.__name__ = getattr(fn, "__name__", "kl_fast")   # the task names say what runs
    return run


def _finish(values, reduction, keepdims, ndim, dtype):
    if reduction == "none":
        return values
    return dd.reduce_lazy(values, reduction, keepdims, ndim, dtype)


def elementwise(fn, xs, kw, dtype, where=None):
    """One numpy call per block of the broadcast inputs (reduction "none"), then the
    lazy reduction.  A `where` mask is one more blockwise input: each block gets its
    part (masked values 0.0) and "sum"/"mean" count only the included positions."""
    import dask.array as da

    reduction = kw.pop("reduction", "none")
    kw.pop("keepdims", None)
    if where is not None:
        from .._elementwise import check_where

        (mask,) = dd.as_dask_inputs([("where", where)])
        check_where(np.empty(0, dtype=mask.dtype))   # a non-bool mask fails at call time
        xs = [*xs, mask]
    shape = np.broadcast_shapes(*(x.shape for x in xs))
    block_kw = dict(kw, reduction="none") if "reduction" in _signature_of(fn) else kw
    if "axis" in block_kw:
        block_kw["axis"] = None
    letters = "abcdefghijklmnop"[:len(shape)]
    pairs = []
    for x in xs:
        pairs += [x, letters[len(shape) - x.ndim:]]
    run = _run(fn, dtype, block_kw) if where is None else _run_masked(fn, dtype, block_kw)
    values = da.blockwise(run, letters, *pairs, dtype=dtype,
                          meta=np.empty((0,) * len(shape), dtype=dtype))
    if where is None or reduction == "none":
        return _finish(values, reduction, False, len(shape), dtype)
    keep = da.broadcast_to(xs[-1], shape)
    return dd.reduce_lazy(values, reduction, False, len(shape), dtype, keep)


def _run_masked(fn, dtype, kw):
    def run(*blocks):
        result = dd.call_in_block(fn, *blocks[:-1], where=blocks[-1], **kw)
        return np.asarray(result).astype(dtype, copy=False)

    run.__name__ = getattr(fn, "__name__", "kl_fast")
    return run


def _signature_of(fn):
    import inspect

    return inspect.signature(fn).parameters


def _cores(fn, xs, kw, dtype, signature, keep_axes):
    """apply_gufunc with the core dimensions rechunked to one chunk (allow_rechunk)."""
    import dask.array as da

    reduction, keepdims = kw.pop("reduction", "none"), kw.pop("keepdims", False)
    batch_ndim = max(x.ndim - n for x, n in zip(xs, _core_ndims(signature), strict=True))
    xs = dd.align(xs, _core_names(signature))
    values = da.apply_gufunc(_run(fn, dtype, dict(kw, reduction="none")), signature, *xs,
                             meta=np.empty((0,) * batch_ndim, dtype=dtype), allow_rechunk=True)
    full_ndim = batch_ndim + len(keep_axes)
    if reduction == "none" and keepdims:
        for ax in sorted(keep_axes):
            values = da.expand_dims(values, ax)
    return _finish(values, reduction, keepdims, full_ndim, dtype)


def _core_names(signature):
    ins = signature.split("->")[0]
    return [tuple(n for n in part.strip("()").split(",") if n)
            for part in ins.replace("),(", ")|(").split("|")]


def _core_ndims(signature):
    return [len(names) for names in _core_names(signature)]


def _gaussian_axis(fn, xs, names, kw, dtype):
    """gaussian_kl summed along `axis`: per block if the axis is one chunk, else the
    per-chunk sums (each a sum of per-coordinate KLs >= 0) are added in float64."""
    from .._inputs.shapes import broadcast_shape, normalize_axis
    from . import rows as _dask_rows
    from . import split as _dask_split

    shape = broadcast_shape(xs, names)
    if len(shape) == 0:
        raise ValueError("the Gaussian parameters are 0-d; use axis=None for elementwise KL")
    ax = normalize_axis(kw["axis"], len(shape), " and ".join(names))
    rows = [_dask_rows.rows_view(x, shape, ax) for x in xs]
    reduction, keepdims = kw.pop("reduction"), kw.pop("keepdims")
    block_kw = dict(kw, axis=-1, reduction="none")
    if all(len(r.chunks[-1]) == 1 for r in rows):
        # the rows path of kl_divergence: one call per block, no copy of the blocks
        rows = dd.align(rows, [("k",)] * len(rows))
        per_block_kw = {k: v for k, v in kw.items() if k != "axis"}
        values = _dask_rows.per_block(fn, rows, [1] * len(rows), dtype, per_block_kw)
    else:
        def chunk(offsets, *blocks):
            wide = [np.asarray(b, dtype=np.float64) for b in blocks]
            part = dd.call_in_block(fn, *wide, **block_kw)
            return np.asarray(part, dtype=np.float64)[..., None]

        def aggregate(states):
            total = states[0][..., 0].copy()
            for s in states[1:]:
                total += s[..., 0]
            return total.astype(dtype)

        values = _dask_split.two_stage(chunk, aggregate, rows, 1, dtype)
    if reduction == "none":
        return dd.expand_keepdims(values, ax, len(shape)) if keepdims else values
    return dd.reduce_lazy(values, reduction, keepdims, len(shape), dtype)


def _mutual_information(fn, joint, kw, dtype):
    import dask.array as da

    ax = check_axes_pair(kw.pop("axes"), joint.ndim)
    moved = da.moveaxis(joint, ax, (-2, -1))
    return _cores(fn, [moved], dict(kw, axes=(-2, -1)), dtype, "(i,j)->()", keep_axes=ax)


def _pairwise(fn, xs, kw, dtype):
    """D[i, j] per (row block of P, row block of Q); a category axis split across
    chunks is concatenated per block (dask's contraction over k)."""
    import dask.array as da

    for x, n in zip(xs, ("P", "Q"), strict=False):
        if x.ndim != 2:
            raise ValueError(f"{n} must be 2-D (rows of distributions), got shape {x.shape}; "
                             f"pass {n}[None, :] for one distribution")
    p = xs[0]
    q = xs[1] if len(xs) > 1 else xs[0]
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"P and Q need the same number of categories, got P {p.shape} and "
                         f"Q {q.shape}")
    run = _run(fn, dtype, kw)
    return da.blockwise(run, "nm", p, "nk", q, "mk", concatenate=True, dtype=dtype,
                        meta=np.empty((0, 0), dtype=dtype))


def scipy_reduce(block_fn, xs, shape, axes, keepdims, dtype):
    """A kl_fast.scipy reduction on dask arrays, lazily.

    `xs` are broadcast to `shape`, the reduced `axes` are moved last, made one
    chunk each and merged, and ``block_fn(*blocks)`` reduces the last axis of
    each block (numpy in, numpy out).  Only the batch axes stay chunked, so
    the result does not depend on the chunking.
    """
    import dask.array as da

    ndim, k = len(shape), len(axes)
    last = tuple(range(ndim - k, ndim))
    moved = [da.moveaxis(da.broadcast_to(da.asarray(x), shape), axes, last) for x in xs]
    moved = [x.rechunk({a: -1 for a in last}) for x in moved]
    moved = [x.rechunk(moved[0].chunks) for x in moved]
    batch = moved[0].shape[: ndim - k]
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    rows = [x.reshape(batch + (n,)) for x in moved]
    out = da.map_blocks(block_fn, *rows, drop_axis=len(batch), dtype=dtype,
                        meta=np.empty((0,) * len(batch), dtype))
    if keepdims:
        out = out.reshape(tuple(1 if i in axes else s for i, s in enumerate(shape)))
    return out
