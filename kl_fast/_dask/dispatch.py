"""dask arrays in, lazy dask arrays out: detection, wrapping and the shared helpers.

Every public function starts with ``if has_dask(...): return <dask twin>(...)``.
Detection looks only at the type's module, so importing kl_fast never imports
dask; dask is imported the first time a dask array actually comes in.

The dask twins (``_dask.rows``, ``_dask.split``, ``_dask.other``) build a graph
whose blocks call the ordinary numpy API: the compiled kernels, the checks and
the error messages are the same, they only run at compute time.

>>> import dask.array as da
>>> import numpy as np
>>> import kl_fast
>>> p = da.from_array(np.array([[0.5, 0.5], [0.9, 0.1]] * 2), chunks=(2, 2))
>>> lazy = kl_fast.kl_divergence(p, [0.5, 0.5], reduction="none")
>>> type(lazy).__name__, lazy.shape, lazy.dtype
('Array', (4,), dtype('float64'))
>>> lazy.compute().round(6)
array([0.      , 0.368064, 0.      , 0.368064])
>>> float(kl_fast.entropy(p, base=2, reduction="mean").compute().round(6))
0.734498
"""

import numpy as np

__all__ = ["has_dask", "as_dask_inputs", "reject_out", "float_dtype", "reduce_lazy",
           "expand_keepdims", "call_in_block"]


def _is_dask(x):
    return type(x).__module__.startswith("dask") and hasattr(x, "__dask_graph__")


_NDARRAY = np.ndarray


def has_dask(*xs):
    """True if any argument is a dask collection; no dask import.  About 0.1 us for
    numpy arrays (ndarrays are ruled out first: this runs before the one-vector fast
    path).  xarray objects also have ``__dask_graph__`` but are not dask's."""
    for x in xs:
        if type(x) is not _NDARRAY and hasattr(x, "__dask_graph__") and _is_dask(x):
            return True
    return False


def reject_out(out):
    if out is not None:
        raise TypeError("out= cannot take the result of a dask computation: with dask inputs "
                        "the result is a lazy dask array; call .compute() on it, or write it "
                        "with dask.array.store(result, target)")


def as_dask_inputs(named):
    """dask arrays for the named inputs (None stays None): numpy arrays and lists are
    wrapped with ``da.asarray``; torch/JAX/CuPy arrays mixed with dask raise TypeError."""
    import dask.array as da

    out = []
    for name, x in named:
        if x is None:
            out.append(None)
            continue
        top = type(x).__module__.split(".", 1)[0]
        if top in ("torch", "jax", "jaxlib", "cupy"):
            raise TypeError(f"{name} is a {top} array mixed with dask arrays; pass numpy "
                            f"or dask arrays (e.g. da.from_array({name}.numpy()))")
        arr = x if _is_dask(x) else da.asarray(np.asarray(x))
        if not isinstance(arr, da.Array):
            raise TypeError(f"{name} is a {type(x).__name__}; kl_fast takes dask arrays "
                            "(dask.array.Array), not other dask collections")
        if any(np.isnan(c) for c in arr.shape):
            raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes()"
                             " first")
        out.append(arr)
    return out


def float_dtype(arrays, what="probabilities", names=None):
    """The numpy call's result dtype (float32 if every input is float32/float16,
    else float64); TypeError for complex, bool or object data."""
    from .._inputs.validation import as_float_array, result_dtype

    names = names or [f"argument {i}" for i in range(len(arrays))]
    probes = [as_float_array(np.empty(0, a.dtype), n, what)
              for a, n in zip(arrays, names, strict=True)]
    return result_dtype(probes)


def call_in_block(fn, *args, **kwargs):
    """Run one block; a ValueError says that its indices count within the block."""
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        raise ValueError(f"{err} [in a dask block: indices count from the block's start]") \
            from err


def expand_keepdims(result, axis, ndim):
    """Put the reduced axis back (length one) at position `axis` of an `ndim` result."""
    import dask.array as da

    return da.expand_dims(result, axis % ndim)


def reduce_lazy(values, reduction, keepdims, ndim, dtype, keep=None):
    """The lazy "sum"/"mean" of per-row `values`, accumulated in float64 then cast:
    a 0-d dask array (shape (1,) * ndim with keepdims). `keep` masks rows out."""
    import dask.array as da

    v = values.astype(np.float64)
    if keep is None:
        total = v.sum()
        if reduction == "mean":
            total = total / v.size if v.size else da.full((), np.nan)
    else:
        total = da.where(keep, v, 0.0).sum()
        if reduction == "mean":
            count = keep.sum()
            total = da.where(count > 0, total / da.maximum(count, 1), np.nan)
    result = total.astype(dtype)
    if keepdims:
        result = result.reshape((1,) * ndim)
    return result


def align(xs, core_dims):
    """Give the loop (batch) axes of `xs` common chunks (``apply_gufunc`` does not
    unify loop chunks itself).  Missing leading axes become length-1 axes, which
    dask broadcasts block by block (no broadcast copy is ever made or shipped).
    `core_dims` names the core axes of each input, as in a gufunc signature,
    e.g. [("k",), ("k", "j")]."""
    import dask.array as da

    cores = [len(c) for c in core_dims]
    n_loop = max(x.ndim - n for x, n in zip(xs, cores, strict=True))
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n_loop]
    pairs = []
    for x, names in zip(xs, core_dims, strict=True):
        missing = n_loop - (x.ndim - len(names))
        if missing:
            x = x.reshape((1,) * missing + x.shape)
        pairs += [x, letters + "".join(names)]
    return list(da.core.unify_chunks(*pairs, warn=False)[1])
