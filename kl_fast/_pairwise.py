"""Pairwise divergences: the (N, M) matrix between every row of P and every row of Q.

Both functions check their arguments, validate each input row once (the
entropy row kernel's one pass and its report, worded by ``_engine/report.py``), and
then compute without looking at the data again:

* ``pairwise_kl`` (default): the tiled kernel ``pairwise_kl_matrix`` of the
  backend's pairwise family (``src/pairwise.pyx`` and its twins),
  one log per row instead of one per (i, j, k);
* ``pairwise_kl(precise=True)`` and ``pairwise_js``: the accurate row
  kernels of ``kl_divergence`` / ``js_divergence`` on broadcast views
  ``P[:, None, :]`` against ``Q[None, :, :]``, walked as N blocks of M rows
  (M blocks of N rows when N > M; no N*M*K temporary: ``_inputs.shapes.make_rows``
  keeps the views, zero strides and all).

Inputs must be 2-D (N, K) and (M, K): a 1-D input is refused rather than
read as one row, so that the shape of the result is never a guess.
"""

import numpy as np

from . import _api
from ._dask import dispatch as _dask_dispatch
from ._dask import other as _dask_other
from ._engine.backends import get_backend
from ._engine.report import note_out, raise_for_sums, raise_for_values
from ._engine.run import Options, run_kernel
from ._engine.threads import resolve_num_threads, threads_for
from ._inputs import array_types as _arrays
from ._inputs.prepare import prepare_inputs
from ._inputs.shapes import make_rows
from ._inputs.validation import check_base, check_eps, check_flag
from ._prob_rows import PROB_REQUIREMENT, check_mode

__all__ = ["pairwise_kl", "pairwise_js"]


def _as_matrix(arr, name):
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D, one distribution per row (shape (n_rows, n_categories)), "
            f"but has shape {arr.shape}; pass {name}[None, :] for a single distribution, "
            "or use kl_divergence / js_divergence for row-by-row values"
        )
    return arr


def _validate_rows(arr, name, check, tol, opts):
    """Check every row of `arr` once: values finite and >= 0, sums as `check` says."""
    if arr.shape[0] == 0:
        return
    rows = make_rows([arr], [name], -1)
    _, report = run_kernel("entropy_rows", rows, arr.dtype, (check, tol, 0.0, False, 1.0),
                           opts)
    raise_for_values(report, rows, [name], [arr], PROB_REQUIREMENT)
    raise_for_sums(report, rows, [name], [arr], tol)


def _prepare(P, Q, eps, normalize, out, backend, num_threads, validate, sum_tol):
    """Checked numpy matrices P, Q (Q is P for Q=None), options and output kind."""
    eps = check_eps(eps)
    normalize = check_flag(normalize, "normalize")
    opts = Options.check(reduction="none", keepdims=False, out=out, backend=backend,
                         num_threads=num_threads, validate=validate, sum_tol=sum_tol)
    named = [("P", P)] if Q is None else [("P", P), ("Q", Q)]
    # pandas: the columns (categories) pair up; the rows label the result's axes
    layout = ([("n", "k"), ("m", "k")], ("n", "n" if Q is None else "m"))
    arrays, dtype, out_kind, tol_dtype = prepare_inputs(named, layout=layout)
    mats = [_as_matrix(a, name) for (name, _), a in zip(named, arrays, strict=True)]
    p_mat, q_mat = mats[0], mats[-1]
    if p_mat.shape[1] != q_mat.shape[1]:
        raise ValueError(
            f"P has shape {p_mat.shape} and Q has shape {q_mat.shape}: their rows must have "
            "the same number of categories (the last axis)"
        )
    if p_mat.shape[1] == 0:
        raise ValueError(f"P and Q have no categories (shapes {p_mat.shape} and "
                         f"{q_mat.shape}); a distribution needs at least one category")
    shape = (p_mat.shape[0], q_mat.shape[0])
    if out is not None and out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but the result has shape {shape}; "
                         "pass an array of that shape")
    check, tol = check_mode(opts, normalize, eps, tol_dtype, p_mat.shape[1])
    if check:
        for (name, _), arr in zip(named, mats, strict=True):
            _validate_rows(arr, name, check, tol, opts)
    return p_mat, q_mat, dtype, eps, normalize, opts, out_kind


def _deliver(result, opts, out_kind):
    """The result in the caller's `out` or array type."""
    if opts.out is not None:
        if result is not opts.out:
            np.copyto(opts.out, result, casting="same_kind")
        return opts.out
    return _arrays.wrap_result(result, out_kind)


def _divisors(x, eps, transform):
    """Per-row divisors of the transform x -> (x + eps) / d: row sum + K eps, or 1."""
    if not transform:
        return np.ones(x.shape[0])
    return x.sum(axis=1, dtype=np.float64) + x.shape[1] * eps


def _fast_kl(p_mat, q_mat, dtype, eps, normalize, log_base, opts):
    n, m, k = p_mat.shape[0], q_mat.shape[0], p_mat.shape[1]
    out = opts.out
    # in place only when out is not also an input: the kernel reads P and Q while it
    # writes, so pairwise_kl(P, P, out=P) must go through a fresh array
    if (out is not None and out.dtype == dtype and out.flags.c_contiguous
            and not np.may_share_memory(out, p_mat) and not np.may_share_memory(out, q_mat)):
        result = out
    else:
        result = np.empty((n, m), dtype=dtype)
    if n == 0 or m == 0:
        return result
    transform = normalize or eps > 0
    with np.errstate(all="ignore"):   # validate=False: garbage sums give inf/NaN, no warning
        d_p = _divisors(p_mat, eps, transform)
        d_q = d_p if q_mat is p_mat else _divisors(q_mat, eps, transform)
    _, backend = get_backend(opts.backend)
    work = n * m * k
    threads = threads_for(resolve_num_threads(opts.num_threads), work)
    backend.pairwise_kl_matrix(p_mat, q_mat, result, d_p, d_q, eps if transform else 0.0,
                               log_base, threads)
    return result


def _broadcast_rows(fn, p_mat, q_mat, base, eps, normalize, opts):
    """fn (kl_divergence or js_divergence) on P[:, None] against Q[None]: an (N, M) array.

    The rows were validated once already, so the row kernel skips its checks."""
    n, m = p_mat.shape[0], q_mat.shape[0]
    if n == 0 or m == 0:
        return np.empty((n, m), dtype=p_mat.dtype)
    kw = dict(base=base, eps=eps, normalize=normalize, backend=opts.backend,
              num_threads=opts.num_threads, validate=False)
    if n <= m:
        # n kernel calls of m rows each
        return fn(p_mat[:, None, :], q_mat[None, :, :], **kw)
    # many P rows, few Q rows: m calls of n rows (the same pairs, so the same bits),
    # not n calls of a few rows each, whose Python overhead would dominate
    return np.ascontiguousarray(fn(p_mat[None, :, :], q_mat[:, None, :], **kw).T)


def pairwise_kl(P, Q=None, *, precise=False, base=None, eps=0.0, normalize=False, out=None,
                backend="auto", num_threads=None, validate=True, sum_tol=None):
    r"""KL divergence between every row of `P` and every row of `Q`: D[i, j] = KL(P_i || Q_j).

    Parameters
    ----------
    P : array_like, shape (N, K)
        N distributions of K categories, one per row (probabilities, or
        counts with ``normalize=True``).  numpy arrays of any layout and
        strides, lists, memmaps and CPU torch tensors.  1-D input is refused
        (pass ``P[None, :]`` for a single distribution).
    Q : array_like, shape (M, K), optional
        M distributions over the same K categories; None means `P` itself
        (its rows are then validated once).
    precise : bool, default False
        False: the fast method (one log per row, see Notes).  True: every
        pair with the accurate per-term kernel of :func:`kl_divergence`,
        meeting its accuracy contract, at about the cost of N*M*K logs.
    base : float, optional
        Logarithm base; None gives nats, 2 gives bits.
    eps : float, default 0.0
        Smoothing: every row gets ``x + eps`` and is renormalized.
    normalize : bool, default False
        Divide each row by its sum first (counts work).
    out : ndarray of shape (N, M), optional
        Array to write the result into (written in place when it is
        C-contiguous with the result's dtype and shares no memory with P or Q).
        Written only once every check has passed: a call that raises leaves
        `out` untouched, and its error message ends by saying so.
    backend : {"auto", "cython", "numba", "numpy"}, default "auto"
        Which kernels run.
    num_threads : int, optional
        Threads for this call; None uses ``kl_fast.get_num_threads()``.
        The result is bit-identical for any thread count.
    validate : bool, default True
        Check every row of P and Q once (finite, >= 0, summing to 1 unless
        `normalize`) before the pairs are computed.

    Returns
    -------
    ndarray or torch.Tensor, shape (N, M)
        KL(P_i || Q_j) in float32 if all inputs are float32, else float64
        (a torch tensor for torch input).

    Raises
    ------
    ValueError
        Negative, NaN or inf values or rows not summing to 1 (the message
        names P or Q, the row and index, and the fix), inputs that are not
        2-D, rows of different lengths (both shapes are named), no
        categories, an `out` of the wrong shape, or a bad keyword value.
    TypeError
        Complex, bool, object or string data, or a GPU array.

    See Also
    --------
    pairwise_js, kl_divergence
    scipy.spatial.distance.cdist : pairwise distances (has Jensen-Shannon, not KL).

    Notes
    -----
    The fast method writes

    .. math:: D_{ij} = \sum_k P_{ik} (\log P_{ik} - \log Q_{jk})

    with each log computed once per row (a vectorized log within 1 ULP) and
    the terms summed in double precision in a fixed order (blocks of 1024
    categories, 8 lanes, a fixed tree), so the result does not depend on the
    thread count and ``pairwise_kl(P)`` has an exactly zero diagonal (equal
    rows give equal log bits).  A term is 0 where P_ik = 0 and +inf where
    P_ik > 0 = Q_jk.  Memory: the output plus small per-thread buffers;
    never N*M*K.

    Accuracy of the fast method: each log is within 1 ULP, so the absolute
    error is about eps * sum_k P_ik (|log P_ik| + |log Q_jk|), which is
    eps * (H(P_i) + CE(P_i, Q_j)) (entropy plus cross-entropy, in nats;
    eps = 2**-52 for the double-precision arithmetic).  Relative accuracy
    is lost only when KL << H, i.e. for nearly equal rows; use
    ``precise=True`` there, which computes each term as
    :func:`kl_divergence` does (relative error <= 4 eps on generic float64
    input, |error| <= 8 eps * sum |terms| for nearly equal rows, 1 float32
    ULP for float32).

    dask arrays give a lazy (N, M) dask array, one block per pair of row
    chunks of `P` and `Q`; a category axis split across chunks is joined per
    block.

    Examples
    --------
    >>> import numpy as np
    >>> import kl_fast
    >>> P = np.array([[0.5, 0.5], [0.9, 0.1]])
    >>> Q = np.array([[0.5, 0.5], [0.1, 0.9], [1.0, 0.0]])
    >>> kl_fast.pairwise_kl(P, Q, base=2).round(6)
    array([[0.      , 0.736966,      inf],
           [0.531004, 2.53594 ,      inf]])
    >>> kl_fast.pairwise_kl(P)                     # Q = P: the diagonal is exactly 0
    array([[0.        , 0.51082562],
           [0.36806421, 0.        ]])
    """
    try:
        if _dask_dispatch.has_dask(P, Q):
            return _dask_other.dispatch("pairwise_kl", locals())
        precise = check_flag(precise, "precise")
        log_base = check_base(base)
        p_mat, q_mat, dtype, eps, normalize, opts, out_kind = _prepare(
            P, Q, eps, normalize, out, backend, num_threads, validate, sum_tol)
        if precise:
            result = _broadcast_rows(_api.kl_divergence, p_mat, q_mat, base, eps, normalize, opts)
        else:
            result = _fast_kl(p_mat, q_mat, dtype, eps, normalize, log_base, opts)
        return _deliver(result, opts, out_kind)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise


def pairwise_js(P, Q=None, *, base=None, eps=0.0, normalize=False, out=None, backend="auto",
                num_threads=None, validate=True, sum_tol=None):
    r"""Jensen-Shannon divergence between every row of `P` and of `Q`: D[i, j] = JS(P_i, Q_j).

    The divergence itself, not its square root (scipy's ``cdist(P, Q,
    "jensenshannon")`` gives the root).

    Parameters
    ----------
    P : array_like, shape (N, K)
        N distributions, one per row (probabilities, or counts with
        ``normalize=True``); 1-D input is refused (pass ``P[None, :]``).
    Q : array_like, shape (M, K), optional
        M distributions; None means `P` itself.
    base, eps, normalize, out, backend, num_threads, validate
        As in :func:`pairwise_kl`.

    Returns
    -------
    ndarray or torch.Tensor, shape (N, M)
        JS(P_i, Q_j), in [0, log 2] (in [0, 1] with ``base=2``).

    Raises
    ------
    ValueError, TypeError
        As in :func:`pairwise_kl`.

    See Also
    --------
    pairwise_kl, js_divergence
    scipy.spatial.distance.cdist : with ``"jensenshannon"``, the square root.

    Notes
    -----
    .. math:: JS(p, q) = \tfrac12 \sum_k \left[ p_k \log\frac{p_k}{m_k}
              + q_k \log\frac{q_k}{m_k} \right], \qquad m = \tfrac12 (p + q)

    Each pair needs the log of its own mixture, so every pair runs the
    accurate row kernel of :func:`js_divergence` (on broadcast views: no
    N*M*K temporary) and keeps its accuracy contract.  The result is
    symmetric bit for bit (``pairwise_js(P, Q) == pairwise_js(Q, P).T``),
    exactly 0 for equal rows, never negative and never NaN for valid
    input; it does not depend on the thread count.

    dask arrays give a lazy (N, M) dask array, as in :func:`pairwise_kl`.

    Examples
    --------
    >>> import numpy as np
    >>> import kl_fast
    >>> P = np.array([[1.0, 0.0], [0.5, 0.5]])
    >>> kl_fast.pairwise_js(P, base=2).round(6)
    array([[0.      , 0.311278],
           [0.311278, 0.      ]])
    """
    try:
        if _dask_dispatch.has_dask(P, Q):
            return _dask_other.dispatch("pairwise_js", locals())
        check_base(base)   # fail before any work; the row kernel applies it
        p_mat, q_mat, _, eps, normalize, opts, out_kind = _prepare(
            P, Q, eps, normalize, out, backend, num_threads, validate, sum_tol)
        result = _broadcast_rows(_api.js_divergence, p_mat, q_mat, base, eps, normalize, opts)
        return _deliver(result, opts, out_kind)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise
