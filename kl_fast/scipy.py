"""Drop-ins for the scipy functions people already call, on kl_fast's kernels.

``from kl_fast.scipy import rel_entr, entropy, jensenshannon`` gives scipy's
signatures, defaults and results (``entropy`` and ``jensenshannon``
normalize their inputs and reduce ``axis=0``, as scipy's do), computed by the
compiled kernels in parallel.  ``jensenshannon`` never returns NaN for valid
input (scipy's can, on nearly equal inputs: scipy/scipy#20083).
"""

import numpy as np
from scipy import special as _special

from . import _api, _backends, _dask_dispatch, _dask_other
from ._threading import get_num_threads

__all__ = ["rel_entr", "entropy", "jensenshannon"]


def rel_entr(x, y, out=None):
    """Elementwise ``x * log(x / y)``, as :func:`scipy.special.rel_entr`.

    0 where x == 0 and y >= 0, +inf where x > 0 and y == 0 or either is
    negative; accurate where x ~ y.  float32 (and float16) inputs give
    float32, others float64; `out` as for a ufunc.

    dask arrays give a lazy dask array (with ``out=None``).

    Examples
    --------
    >>> from kl_fast.scipy import rel_entr
    >>> rel_entr([0.5, 0.0, 0.5], [0.25, 0.5, 0.0])
    array([0.34657359, 0.        ,        inf])
    """
    if _dask_dispatch.has_dask(x, y):
        return _dask_other.rel_entr(x, y, out)
    x = np.asarray(x)
    y = np.asarray(y)
    cython = _backends._load("cython")
    if cython is None or x.dtype.kind not in "fiu" or y.dtype.kind not in "fiu":
        return _special.rel_entr(x, y, out=out)
    # scipy's ufunc takes its first loop ('ff->f', then 'dd->d') that both
    # inputs cast to safely: small integers and float16 give float32 too
    small = np.can_cast(x.dtype, np.float32) and np.can_cast(y.dtype, np.float32)
    dtype = np.float32 if small else np.float64
    it = np.nditer(
        [x, y, out],
        flags=["external_loop", "buffered", "zerosize_ok", "refs_ok"],
        op_flags=[["readonly"], ["readonly"], ["writeonly", "allocate"]],
        op_dtypes=[dtype, dtype, out.dtype if out is not None else dtype],
        casting="same_kind",
        buffersize=1 << 16,
    )
    n_threads = get_num_threads()
    with it:
        for xs, ys, outs in it:
            if outs.dtype == dtype:
                cython.rel_entr_1d(xs, ys, outs, n_threads)
            else:
                tmp = np.empty(outs.shape, dtype)
                cython.rel_entr_1d(xs, ys, tmp, n_threads)
                outs[...] = tmp
        result = it.operands[2]
    return result if result.ndim else result[()]


def entropy(pk, qk=None, base=None, axis=0):
    """Shannon entropy, or KL divergence with `qk`, as :func:`scipy.stats.entropy`.

    Both inputs are normalized along `axis` (default 0, like scipy), so
    ``entropy([.5, .5], [.3, .3]) == 0``.  Values are not validated (as in
    scipy: negative entries give inf or NaN).

    dask arrays give a lazy dask array (see :func:`kl_fast.kl_divergence`).

    Examples
    --------
    >>> from kl_fast.scipy import entropy
    >>> float(entropy([1, 1], base=2))
    1.0
    >>> round(float(entropy([0.8, 0.2], [0.6, 0.4], base=2)), 5)
    0.13203
    """
    if qk is None:
        return _api.entropy(pk, axis=axis, base=base, normalize=True, validate=False)
    return _api.kl_divergence(pk, qk, axis=axis, base=base, normalize=True, validate=False)


def jensenshannon(p, q, base=None, *, axis=0, keepdims=False):
    """Jensen-Shannon distance (the square root of the divergence), as scipy's.

    Both inputs are normalized along `axis` (default 0).  Never NaN for
    non-negative input with positive sums: the divergence is clamped at 0
    before the square root.

    dask arrays give a lazy dask array (see :func:`kl_fast.kl_divergence`).

    Examples
    --------
    >>> from kl_fast.scipy import jensenshannon
    >>> float(jensenshannon([1.0, 0.0], [0.0, 1.0], base=2))
    1.0
    """
    js = _api.js_divergence(p, q, axis=axis, base=base, normalize=True, validate=False,
                            keepdims=keepdims)
    return np.sqrt(js)
