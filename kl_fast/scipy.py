"""Drop-ins for the scipy functions people already call, on kl_fast's kernels.

``from kl_fast.scipy import rel_entr, entropy, jensenshannon`` gives the
signatures, defaults and results of :func:`scipy.special.rel_entr`,
:func:`scipy.stats.entropy` and :func:`scipy.spatial.distance.jensenshannon`
(``entropy`` and ``jensenshannon`` normalize their inputs and reduce
``axis=0``, as scipy's do), computed by the compiled kernels.  The standard
they meet is scipy's own test suite for those functions
(``tests/scipy_vendored``), in scipy's default mode and with
``SCIPY_ARRAY_API=1`` for numpy, torch and dask arrays.

After ``import kl_fast`` this module is reachable as ``kl_fast.scipy``; it is
imported on first use, not by ``import kl_fast`` (which never imports scipy).
"""

import math
import operator
import os

import numpy as np

from . import _api, _autograd
from ._dask import dispatch as _dask_dispatch
from ._dask import other as _dask_other
from ._inputs import array_types as _arrays

__all__ = ["rel_entr", "entropy", "jensenshannon", "rel_entr_ufunc"]

_NAN_POLICIES = ("propagate", "omit", "raise")

try:  # numpy >= 2
    from numpy.lib.array_utils import normalize_axis_index
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import normalize_axis_index


def _make_rel_entr():
    """The rel_entr ufunc: compiled (Cython), else scipy's own.

    No Numba twin: numba's loops cannot keep the flags of their intermediates
    (LLVM may evaluate x / y speculatively, and an overflow there becomes
    numpy's RuntimeWarning), while scipy's ufunc has the same loops, the same
    accurate form where x ~ y (scipy >= 1.14) and no spurious flags.
    """
    try:
        from ._cython.rel_entr_ufunc import rel_entr as ufunc
    except ImportError:  # a build without the Cython extensions
        from scipy.special import _ufuncs

        return _ufuncs.rel_entr
    return ufunc


rel_entr_ufunc = _make_rel_entr()


def _array_api_rel_entr(ufunc):
    """rel_entr as scipy exports it under SCIPY_ARRAY_API: a function dispatching on the
    array type.  numpy (and anything numpy takes) goes to the ufunc with every keyword;
    dask arrays reach it through ``__array_ufunc__`` (lazily); CPU torch tensors (and
    JAX arrays) are computed by the ufunc on their numpy views and returned as their
    own type (torch's old ``__array_wrap__`` would make numpy warn)."""

    def rel_entr(*args, **kwargs):
        names = [f"argument {i}" for i in range(len(args))]
        kinds = [_arrays.input_kind(a, n) for a, n in zip(args, names, strict=True)]
        if all(kind == "numpy" for kind in kinds):
            return ufunc(*args, **kwargs)
        for a, n in zip(args, names, strict=True):
            if getattr(a, "requires_grad", False):
                raise TypeError(
                    f"{n} is a torch tensor that requires grad; kl_fast.scipy.rel_entr carries "
                    "no gradient: pass .detach() to monitor the value, or use torch for a loss "
                    "you differentiate")
        values = [_arrays.to_numpy(a, k) for a, k in zip(args, kinds, strict=True)]
        return _arrays.wrap_result(ufunc(*values, **kwargs), _arrays.output_kind(kinds))

    rel_entr.__name__ = rel_entr.__qualname__ = "rel_entr"
    rel_entr.__module__ = __name__
    rel_entr.__doc__ = ufunc.__doc__
    rel_entr.ufunc = ufunc
    return rel_entr


# scipy.special.rel_entr is its ufunc, except under scipy's array-API switch
# SCIPY_ARRAY_API (read as scipy reads it, once) where scipy exports a function
# that dispatches torch tensors natively: the drop-in follows scipy in both modes.
if os.environ.get("SCIPY_ARRAY_API"):
    rel_entr = _array_api_rel_entr(rel_entr_ufunc)
else:
    rel_entr = rel_entr_ufunc


# -- checks with scipy's messages (kl_fast's text around them) ------------------------------------
def _check_nan_policy(nan_policy):
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(
            "nan_policy must be one of {'propagate', 'omit', 'raise'}. "
            f"Got nan_policy={nan_policy!r}: 'propagate' returns NaN for a slice holding NaN, "
            "'omit' leaves the NaN entries (pairs, with qk) out, 'raise' rejects them."
        )


def _log_base(base, fn):
    """log(base) to divide by, or None.  scipy's conventions: base=1 divides by 0 (inf/NaN)."""
    if base is None:
        return None
    if fn == "entropy" and not base > 0:
        raise ValueError(
            "`base` must be a positive number or `None`. "
            f"Got base={base!r}: use base=2 for bits, base=10 for digits, None for nats."
        )
    if fn == "jensenshannon" and not base > 0:
        raise ValueError(
            f"base must be a positive number or None for jensenshannon, got base={base!r} "
            "(log(base) would be undefined or negative): use base=2 for bits, None for nats."
        )
    return math.log(base)


def _broadcast_shape(shapes, names):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        shapes = ", ".join(f"{n} {s}" for n, s in zip(names, shapes, strict=True))
        raise ValueError(
            "Array shapes are incompatible for broadcasting. "
            f"Got {shapes}: along `axis` too they must be equal or 1 (pass the two "
            "distributions with the same number of categories)."
        ) from None


def _axes(axis, ndim):
    """The reduced axes as a sorted tuple of non-negative ints (scipy's axis=None/int/tuple)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple | list):
        axes = tuple(normalize_axis_index(operator.index(a), ndim)
                     for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis {axis!r} names the same axis twice: list each axis once")
        return tuple(sorted(axes))
    return (normalize_axis_index(operator.index(axis), ndim),)


def _to_rows(x, axes):
    """x with the reduced axes moved last and merged: shape (*batch, n)."""
    last = tuple(range(x.ndim - len(axes), x.ndim))
    if axes == last and len(axes) == 1:       # the common case: nothing to move or merge
        return x
    moved = np.moveaxis(x, axes, last)
    batch = moved.shape[: x.ndim - len(axes)]
    n = math.prod(x.shape[a] for a in axes)   # not -1: a batch of size 0 leaves it open
    return moved.reshape(batch + (n,))


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _reduce_numpy(row_fn, arrays, names, axis, keepdims, nan_policy):
    """Broadcast, reduce `axis` (None, int or tuple) with row_fn(*rows) -> (*batch,).

    Empty slices give 0.0, as scipy's (a sum over nothing); with
    nan_policy="omit" a slice holding NaN is reduced without its NaN entries
    (pairs), and gives 0.0 if none is left.
    """
    arrays = [np.asarray(a) for a in arrays]
    if nan_policy == "raise" and any(a.dtype.kind in "fc" and np.isnan(a).any() for a in arrays):
        raise ValueError(
            "The input contains nan values. Pass nan_policy='omit' to leave them out, or "
            "'propagate' to get NaN for the slices that hold them."
        )
    if len(arrays) > 1:
        shape = _broadcast_shape([a.shape for a in arrays], names)
        arrays = [a if a.shape == shape else np.broadcast_to(a, shape) for a in arrays]
    shape = arrays[0].shape
    axes = _axes(axis, len(shape))
    rows = [_to_rows(a, axes) for a in arrays]
    dtype = np.result_type(*(a.dtype for a in arrays), np.float32)
    if rows[0].shape[-1] == 0:
        result = np.zeros(rows[0].shape[:-1], dtype)
    else:
        result = np.asarray(row_fn(*rows))
    if nan_policy == "omit" and result.size and rows[0].shape[-1]:
        nan = np.zeros(rows[0].shape, bool)
        for r in rows:
            if r.dtype.kind in "fc":
                nan |= np.isnan(r)
        # as scipy's decorator: each slice holding NaN is computed on its own,
        # without them (the result is then that of the 1-D call on the clean slice)
        flat_rows = [r.reshape(-1, r.shape[-1]) for r in rows]
        flat_nan = nan.reshape(-1, nan.shape[-1])
        bad = np.flatnonzero(flat_nan.any(axis=-1))
        if bad.size:
            flat = np.array(result).reshape(-1)
            for b in bad:
                keep = ~flat_nan[b]
                flat[b] = row_fn(*(r[b][keep] for r in flat_rows)) if keep.any() else 0.0
            result = flat.reshape(result.shape)
    if keepdims:
        result = result.reshape(_kept_shape(shape, axes))
    return result


def _entropy_rows(pk, qk=None):
    if qk is None:
        return _api.entropy(pk, axis=-1, normalize=True, validate=False)
    return _api.kl_divergence(pk, qk, axis=-1, normalize=True, validate=False)


def _js_rows(p, q):
    return _api.js_divergence(p, q, axis=-1, normalize=True, validate=False)


def _finish(result, log_base, root=False):
    if log_base is not None:
        result = result / log_base   # base=1: scipy's inf/NaN (and numpy's warning)
    if root:
        result = np.sqrt(result)
    return result[()] if result.ndim == 0 else result


def _drop_in(row_fn, arrays, names, axis, keepdims, nan_policy, log_base, root):
    """The numpy computation, for numpy, CPU torch and JAX inputs and lazily for dask."""
    if _dask_dispatch.has_dask(*arrays):
        arrays = [a if _dask_dispatch.has_dask(a) else np.asarray(a) for a in arrays]
        shape = _broadcast_shape([a.shape for a in arrays], names)
        dtype = np.result_type(*(a.dtype for a in arrays), np.float32)

        def block(*blocks):   # the reduced axes come last, whole, in each block
            return np.asarray(_finish(_reduce_numpy(row_fn, blocks, names, -1, False,
                                                    nan_policy), log_base, root))

        return _dask_other.scipy_reduce(block, arrays, shape, _axes(axis, len(shape)),
                                        keepdims, dtype)
    for a, n in zip(arrays, names, strict=True):
        if getattr(a, "requires_grad", False):
            raise TypeError(
                f"{n} is a torch tensor that requires grad; kl_fast.scipy results carry no "
                f"gradient: pass {n}.detach() to monitor the value, or use torch for a loss "
                "you differentiate")
    kinds = [_arrays.input_kind(a, n) for a, n in zip(arrays, names, strict=True)]
    values = [_arrays.to_numpy(a, k) for a, k in zip(arrays, kinds, strict=True)]
    result = _finish(_reduce_numpy(row_fn, values, names, axis, keepdims, nan_policy),
                     log_base, root)
    return _arrays.wrap_result(result, _arrays.output_kind(kinds))


def entropy(pk, qk=None, base=None, axis=0, *, nan_policy="propagate", keepdims=False):
    """Shannon entropy, or KL divergence with `qk`, as :func:`scipy.stats.entropy`.

    ``H = -sum(pk * log(pk))``, or ``D = sum(pk * log(pk / qk))`` with `qk`;
    both inputs are first normalized along `axis` (default 0, like scipy), so
    ``entropy([.5, .5], [.3, .3]) == 0``.  Values are not validated (as in
    scipy: negative entries give inf or NaN, an all-zero slice NaN).

    Parameters
    ----------
    pk, qk : array_like
        (Possibly unnormalized) probabilities; `qk` broadcasts against `pk`
        (along `axis` too, as scipy's).  numpy, CPU torch (torch out) and
        dask (lazy dask out) arrays.
    base : float, optional
        Logarithm base; None for nats.  ``base=1`` divides by ``log(1) = 0``
        (inf, or NaN for a zero result), as scipy does.
    axis : int, tuple of ints or None, default 0
        Axis or axes reduced; None reduces all of them.
    nan_policy : {"propagate", "omit", "raise"}, default "propagate"
        scipy's meaning: NaN for slices holding NaN; leave NaN entries (with
        `qk`, pairs) out; or raise ``ValueError``.
    keepdims : bool, default False
        Keep the reduced axes with length 1.

    Returns
    -------
    numpy scalar or array
        ``0.0`` for an empty slice (a sum over nothing), as scipy.

    Raises
    ------
    ValueError
        With scipy's message text (followed by kl_fast's advice): shapes that do
        not broadcast, ``base <= 0``, an unknown `nan_policy`, NaN with
        ``nan_policy="raise"``.

    See Also
    --------
    scipy.stats.entropy, kl_fast.entropy, kl_fast.kl_divergence

    Examples
    --------
    >>> from kl_fast.scipy import entropy
    >>> float(entropy([1, 1], base=2))
    1.0
    >>> round(float(entropy([0.8, 0.2], [0.6, 0.4], base=2)), 5)
    0.13203
    >>> float(entropy([1.0, float("nan"), 1.0], nan_policy="omit", base=2))
    1.0
    """
    _check_nan_policy(nan_policy)
    log_base = _log_base(base, "entropy")
    arrays, names = ([pk], ["pk"]) if qk is None else ([pk, qk], ["pk", "qk"])
    if (_autograd.wants_grad(pk, qk) and nan_policy == "propagate"
            and isinstance(axis, (int, np.integer)) and not isinstance(axis, bool)):
        # torch inputs that require grad: kl_fast's entropy / KL carry the gradient
        # (through the normalization too); the base is a torch division
        if qk is None:
            result = _api.entropy(pk, axis=axis, normalize=True, validate=False,
                                  keepdims=keepdims)
        else:
            result = _api.kl_divergence(pk, qk, axis=axis, normalize=True, validate=False,
                                        keepdims=keepdims)
        return result if log_base is None else result / log_base
    return _drop_in(_entropy_rows, arrays, names, axis, keepdims, nan_policy, log_base, False)


def jensenshannon(p, q, base=None, *, axis=0, keepdims=False):
    """Jensen-Shannon distance (the square root of the divergence), as scipy's.

    Both inputs are normalized along `axis` (default 0).  Never NaN for
    non-negative input with positive sums (scipy's can be, on nearly equal
    inputs: scipy/scipy#20083); invalid input gives what scipy's gives, e.g.
    ``jensenshannon([-1.0, 2.0], [1.0, 1.0]) == inf`` (no clamp to log 2).

    Parameters
    ----------
    p, q : array_like
        (Possibly unnormalized) probability vectors, broadcast against each
        other; numpy, CPU torch (torch out) and dask (lazy) arrays.
    base : float, optional
        Logarithm base; None for nats.  ``base=1`` divides by 0, as scipy.
    axis : int, tuple of ints or None, default 0
        Axis or axes reduced.
    keepdims : bool, default False
        Keep the reduced axes with length 1.

    Returns
    -------
    numpy scalar or array
        The distance; 0.0 for empty slices, as scipy.

    Raises
    ------
    ValueError
        Shapes that do not broadcast (with scipy's message text), and
        ``base <= 0``, where scipy would return NaN from ``log(base)``.

    See Also
    --------
    scipy.spatial.distance.jensenshannon, kl_fast.js_divergence

    Examples
    --------
    >>> from kl_fast.scipy import jensenshannon
    >>> float(jensenshannon([1.0, 0.0], [0.0, 1.0], base=2))
    1.0
    """
    log_base = _log_base(base, "jensenshannon")
    return _drop_in(_js_rows, [p, q], ["p", "q"], axis, keepdims, "propagate", log_base, True)
