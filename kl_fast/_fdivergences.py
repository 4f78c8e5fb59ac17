"""The f-divergence family over probability rows: Renyi divergence, Hellinger
distance, total variation and Pearson's chi^2.

Each public function is its argument checks plus one pass of a compiled row
kernel, through the path KL takes (``_prob_rows.reduce_probability_rows``):
the kernels of every backend carry the math (``src/kl_blocks.h`` and
``kl_math.h``, ``_numba/kl_math.py``, ``_numpy/rows.py``), and the registry
(``_registry.ROW_REDUCTIONS``) says which kernel each function runs.  Adding a
member: its terms in those three places, its kernel entry points, its rows in
``_registry.py``, and its public function here (a docstring and one call).
"""

import numbers

import numpy as np

from ._dask import dispatch as _dask_dispatch
from ._dask import rows as _dask_rows
from ._engine.report import note_out
from ._engine.run import Options
from ._prob_rows import fast_vector, reduce_probability_rows
from ._registry import F_DIVERGENCES

__all__ = ["renyi_divergence", "hellinger_distance", "total_variation", "chi2_divergence",
           "FAMILY"]


# function -> its _registry.RowReduction (kernel, shortcut code, takes base)
FAMILY = {r.function: r for r in F_DIVERGENCES}

_NO_ADVICE = (None, None)   # no logits/log keywords to offer, no elementwise twin


def check_alpha(alpha):
    """Renyi's order as a float in [0, inf] (``check_<parameter>`` of its registry row)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"alpha must be a real number >= 0 (or inf), got "
                        f"{type(alpha).__name__}")
    alpha = float(alpha)
    if alpha != alpha:
        raise ValueError("alpha must be a number >= 0, got nan")
    if not alpha >= 0.0:
        raise ValueError(f"alpha must be >= 0 (or inf), got {alpha}: Renyi divergences of "
                         "negative order are not divergences (they are <= 0)")
    return alpha


def _reduce(name, args, extra=()):
    """The body every member shares: dask, the one-vector shortcut, one kernel pass."""
    member = FAMILY[name]
    p, q, out = args["p"], args["q"], args["out"]
    base = args.get("base")
    try:
        if not type(p) is type(q) is np.ndarray and _dask_dispatch.has_dask(p, q):
            return _dask_rows.dispatch(name, args)
        result = fast_vector(member.kernel, p, q, args["axis"], base, args["eps"],
                             args["normalize"], args["reduction"], args["keepdims"], out,
                             args["backend"], args["num_threads"], args["validate"],
                             args["sum_tol"])
        if result is not None:
            return result
        opts = Options.check(reduction=args["reduction"], keepdims=args["keepdims"], out=out,
                             backend=args["backend"], num_threads=args["num_threads"],
                             validate=args["validate"], sum_tol=args["sum_tol"])
        return reduce_probability_rows(member.kernel, [("p", p), ("q", q)], args["axis"], base,
                                       args["eps"], args["normalize"], opts, _NO_ADVICE, extra)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise


def renyi_divergence(p, q, *, alpha, axis=-1, base=None, eps=0.0, normalize=False,
                     reduction="none", keepdims=False, out=None, backend="auto",
                     num_threads=None, validate=True, sum_tol=None):
    r"""Renyi divergence of order `alpha`, D_alpha(p || q), along `axis`.

    Parameters
    ----------
    p, q : array_like
        Probabilities (or counts with ``normalize=True``); the batch axes
        broadcast.  numpy arrays of any layout, lists, memmaps, CPU torch
        tensors, JAX arrays, pandas objects, dask arrays.
    alpha : float
        The order, in [0, inf]: ``alpha=1`` is :func:`kl_divergence`,
        ``alpha=0.5`` is -2 log of the Bhattacharyya coefficient, ``alpha=2``
        is log(1 + chi^2) and ``alpha=inf`` is log max p/q.
    axis : int, default -1
        The category axis (the one summed over).
    base : float, optional
        Logarithm base (None: nats; 2: bits).
    eps : float, default 0
        Additive smoothing: both inputs become (x + eps) / (sum x + K eps).
    normalize : bool, default False
        Divide each row by its sum first (counts work).
    reduction : {"none", "mean", "sum"}, default "none"
        Per distribution, or their mean or sum (a float64 accumulation).
    keepdims : bool, default False
        Keep the category axis with length 1.
    out : ndarray, optional
        Where to write the per-distribution result (``reduction="none"``).
    backend : {"auto", "cython", "numba", "numpy"}, default "auto"
        Which kernels run; all give the same result within the accuracy bound
        (cython and numba bit for bit).
    num_threads : int, optional
        Threads (default: :func:`kl_fast.get_num_threads`); the result does
        not depend on it.
    validate : bool, default True
        Check for negative, NaN or inf values and rows that do not sum to 1,
        inside the kernel's one pass.
    sum_tol : float, optional
        The row-sum tolerance of the check (default: accepts probabilities
        that were float32 once or printed with 7 decimals).

    Returns
    -------
    ndarray or scalar
        D_alpha(p || q) >= 0 per distribution (float32 for float32 inputs);
        +inf where q = 0 < p and alpha >= 1, or where the supports are
        disjoint.

    Raises
    ------
    ValueError
        alpha < 0 or NaN; negative, NaN or inf probabilities; rows that do not
        sum to 1 (with the likely fix); shapes that do not broadcast.
    TypeError
        alpha not a real number; complex, object or bool inputs; a torch
        tensor that requires grad (no gradient is defined here).

    See Also
    --------
    kl_divergence : the order-1 case.
    hellinger_distance : sqrt(1 - exp(-D_{1/2} / 2)) for normalized inputs.

    Notes
    -----
    .. math:: D_\alpha(p \| q) = \frac{1}{\alpha - 1}
              \log \frac{\sum_k p_k^\alpha q_k^{1 - \alpha}}{\sum_k p_k}

    Renyi's definition for (possibly incomplete) distributions: dividing by
    :math:`\sum p` changes nothing for normalized rows, makes D(p, p) exactly
    0 on stored inputs whose sums are off by rounding, and gives the KL
    divergence as alpha -> 1.  Terms with p = 0 are 0 (alpha = 0: the sum runs
    over the support of p).  The sum is formed as
    :math:`\sum p + \sum p\,\mathrm{expm1}((1 - \alpha) \log(q/p))`, whose
    second part keeps its digits when p ~ q (the result is then tiny and
    still accurate); rows whose sum is dominated by cancellation (nearly
    disjoint supports, alpha < 1) use the terms themselves, and rows whose
    sum overflows or underflows a double (large alpha, far-apart
    probabilities) the log domain.  The orders 1/2 and 2 have algebraic
    terms (:math:`\sqrt p (q - p) / (\sqrt p + \sqrt q)`,
    :math:`p (p - q) / q`): no log, no exp, 3-6x faster.  Order 0,
    :math:`-\log(\sum_{p>0} q / \sum p)`, sums its terms q - p with error-free
    additions: they cancel completely when the two rows differ only by
    rounding, and the result is then as small as that rounding.  The error is bounded
    like KL's, by a few eps times a sum of term magnitudes: the larger of
    :math:`\sum_k w_k |\log(p_k/q_k)|` (the weights
    :math:`w_k = p_k^\alpha q_k^{1-\alpha} / \sum_j p_j^\alpha q_j^{1-\alpha}`)
    and :math:`\sum_k |p_k^\alpha q_k^{1-\alpha} - p_k| / (|\alpha - 1| S)`
    (docs/accuracy.md).

    Examples
    --------
    >>> import kl_fast
    >>> p, q = [0.5, 0.5], [0.9, 0.1]
    >>> round(float(kl_fast.renyi_divergence(p, q, alpha=2)), 12)   # log(1 + chi^2)
    1.021651247532
    >>> float(kl_fast.renyi_divergence(p, q, alpha=1)) == float(kl_fast.kl_divergence(p, q))
    True
    >>> round(float(kl_fast.renyi_divergence(p, q, alpha=float("inf"))), 12)   # log max p/q
    1.609437912434
    """
    args = dict(locals())
    try:
        alpha = check_alpha(alpha)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise
    args["alpha"] = alpha
    return _reduce("renyi_divergence", args, (alpha,))


def hellinger_distance(p, q, *, axis=-1, eps=0.0, normalize=False, reduction="none",
                       keepdims=False, out=None, backend="auto", num_threads=None,
                       validate=True, sum_tol=None):
    r"""Hellinger distance H(p, q) = ||sqrt p - sqrt q||_2 / sqrt 2, along `axis`.

    Parameters
    ----------
    p, q : array_like
        Probabilities (or counts with ``normalize=True``), broadcasting.
    axis, eps, normalize, reduction, keepdims, out, backend, num_threads, validate, sum_tol
        As in :func:`renyi_divergence` (no `base`: this is not a logarithm).

    Returns
    -------
    ndarray or scalar
        H(p, q) in [0, 1] per distribution: 0 for p == q, 1 for disjoint
        supports.  A metric (symmetric, triangle inequality).

    Raises
    ------
    ValueError, TypeError
        As in :func:`renyi_divergence`.

    See Also
    --------
    total_variation : H^2 <= TV <= sqrt(2) H.

    Notes
    -----
    .. math:: H(p, q) = \sqrt{\tfrac12 \sum_k \left(\sqrt{p_k} - \sqrt{q_k}\right)^2}
              = \sqrt{1 - \sum_k \sqrt{p_k q_k}} \quad (\text{normalized } p, q)

    Each term is formed as :math:`((p - q) / (\sqrt p + \sqrt q))^2`: the
    textbook 1 - BC (Bhattacharyya coefficient) loses every digit when p ~ q,
    and so does the difference of the two roots; this form loses none, so the
    distance between nearly equal distributions keeps full relative accuracy.

    Examples
    --------
    >>> import kl_fast
    >>> float(kl_fast.hellinger_distance([1.0, 0.0], [0.0, 1.0]))
    1.0
    >>> float(kl_fast.hellinger_distance([0.3, 0.7], [0.3, 0.7]))
    0.0
    """
    return _reduce("hellinger_distance", dict(locals()))


def total_variation(p, q, *, axis=-1, eps=0.0, normalize=False, reduction="none",
                    keepdims=False, out=None, backend="auto", num_threads=None, validate=True,
                    sum_tol=None):
    r"""Total variation distance TV(p, q) = sum |p - q| / 2, along `axis`.

    Parameters
    ----------
    p, q : array_like
        Probabilities (or counts with ``normalize=True``), broadcasting.
    axis, eps, normalize, reduction, keepdims, out, backend, num_threads, validate, sum_tol
        As in :func:`renyi_divergence` (no `base`).

    Returns
    -------
    ndarray or scalar
        TV(p, q) in [0, 1] per distribution: the largest difference of the
        probability the two give one event.

    Raises
    ------
    ValueError, TypeError
        As in :func:`renyi_divergence`.

    See Also
    --------
    hellinger_distance, kl_divergence : Pinsker: TV <= sqrt(KL / 2).

    Examples
    --------
    >>> import kl_fast
    >>> float(kl_fast.total_variation([0.5, 0.5], [0.9, 0.1]))
    0.4
    """
    return _reduce("total_variation", dict(locals()))


def chi2_divergence(p, q, *, axis=-1, eps=0.0, normalize=False, reduction="none",
                    keepdims=False, out=None, backend="auto", num_threads=None, validate=True,
                    sum_tol=None):
    r"""Pearson's chi^2 divergence sum (p - q)^2 / q, along `axis`.

    Parameters
    ----------
    p, q : array_like
        Probabilities (or counts with ``normalize=True``), broadcasting.
    axis, eps, normalize, reduction, keepdims, out, backend, num_threads, validate, sum_tol
        As in :func:`renyi_divergence` (no `base`).

    Returns
    -------
    ndarray or scalar
        chi^2(p || q) >= 0 per distribution; +inf where q = 0 < p (terms with
        p = q = 0 are 0).

    Raises
    ------
    ValueError, TypeError
        As in :func:`renyi_divergence`.

    See Also
    --------
    renyi_divergence : D_2 = log(1 + chi^2); KL <= log(1 + chi^2).

    Notes
    -----
    Not symmetric: q is the reference (the expected frequencies of Pearson's
    test, divided by the sample size).  Each term is (p - q) ((p - q) / q),
    which keeps its relative accuracy when p ~ q and underflows only where
    the exact term does.

    Examples
    --------
    >>> import kl_fast
    >>> round(float(kl_fast.chi2_divergence([0.5, 0.5], [0.9, 0.1])), 12)
    1.777777777778
    """
    return _reduce("chi2_divergence", dict(locals()))
