"""Elementwise Bernoulli divergences: binary KL and binary cross-entropy."""

from ._dask import dispatch as _dask_dispatch
from ._dask import other as _dask_other
from ._elementwise import (
    LOGIT_REQUIREMENT,
    OPS,
    PROB_REQUIREMENT,
    check_space,
    elementwise,
    kl_op,
)
from ._engine.report import note_out
from ._inputs.validation import check_base, check_eps

__all__ = ["binary_kl", "binary_cross_entropy"]


def binary_kl(p, q, *, p_space="prob", q_space="prob", base=None, eps=0.0, reduction="none",
              out=None, backend="auto", num_threads=None, validate=True, where=None):
    r"""KL(Bern(p) || Bern(q)), elementwise.

    Parameters
    ----------
    p, q : array_like
        Success probabilities (or logits, see `p_space`, `q_space`) of the
        two Bernoulli distributions; they broadcast against each other (e.g.
        p of shape (N, 1) against q of shape (M,)).  numpy arrays of any
        layout, lists, memmaps and CPU torch tensors.
    p_space, q_space : {"prob", "logits"}, default "prob"
        "logits": the value is a logit a, the probability sigmoid(a);
        +-inf logits mean probability 1 and 0.
    base : float, optional
        Logarithm base; None gives nats, 2 gives bits.
    eps : float, default 0.0
        Smoothing, as for two categories: each Bernoulli (x, 1 - x) gets
        ``x + eps`` and is renormalized, i.e. x -> (x + eps) / (1 + 2 eps);
        the result then stays finite.
    reduction : {"none", "sum", "mean"}, default "none"
        Return the elementwise values, or their sum or mean (a scalar).
    out : ndarray, optional
        Array of the result's shape to write into (``reduction="none"`` only).
        Written only once every check has passed: a call that raises leaves
        `out` untouched, and its error message ends by saying so.
    backend : {"auto", "cython", "numba", "numpy"}, default "auto"
        Which kernels run; all agree within the accuracy bound.
    num_threads : int, optional
        Threads for this call; None uses ``kl_fast.get_num_threads()``.
    validate : bool, default True
        Check, in the same pass, that probabilities are finite and in
        [0, 1] and that logits are not NaN.
    where : array_like of bool, optional
        numpy's convention, True = include; broadcasts against the inputs.
        Masked positions may hold anything (NaN, -inf) and are never
        checked; they are 0.0 under ``reduction="none"`` and left out of
        "sum" and "mean" ("mean" divides by the number of included
        positions, NaN if none).  The mask costs one masked copy of each
        input.

    Returns
    -------
    ndarray or scalar
        KL(Bern(p) || Bern(q)) per element of the broadcast shape (float32
        for float32 inputs, else float64), a numpy scalar for scalar inputs,
        a torch tensor for torch input.  Never negative; exactly 0 where
        p == q; +inf where q is 0 or 1 and p is not.

    Raises
    ------
    ValueError
        Invalid values (naming the argument and the first bad index), shapes
        that do not broadcast, a bad `p_space`, `q_space`, `eps` or `base`.
    TypeError
        Non-real data or a GPU array.

    See Also
    --------
    kl_divergence : the categorical KL, of which this is the two-category case.

    Notes
    -----
    .. math::

        KL = p \log\frac{p}{q} + (1 - p) \log\frac{1 - p}{1 - q}
           = q f(t_1) + (1 - q) f(t_2),

    with f(t) = (1 + t) log1p(t) - t >= 0, t1 = p/q - 1 and t2 = (1 - p)/(1 - q)
    - 1 (the Bregman form: both terms are non-negative, nothing cancels).  Each
    term is computed from the exact difference d = p - q as d s (1 + s (1 + s)
    B(s^2)) with s = d / (p + q) and B the atanh series where |s| <= 1/3,
    and as x log(x/y) - d beyond.  Two logits a, b within 2 of each other
    give log1p(v expm1mx(-u e) + u expm1mx(v e)) with u = sigmoid(-|a|),
    v = 1 - u, e = sign(a) (a - b): two non-negative terms, nothing cancels;
    farther apart, the Bregman terms with d = p - q.  A sigmoid that is
    subnormal or underflowed is replaced by its logarithm, -|a|, so extreme
    logits (+-1e4) give finite, accurate results.  Measured against mpmath
    (float64, docs/accuracy.md): probabilities <= 2.1 eps, generic and
    nearly equal; two logits <= 3.4 eps generic, <= 2.9 eps nearly equal,
    <= 2.7 eps extreme; float32 results within 0.5 float32 ulp.
    One logit and one probability are converted to (probability, complement)
    pairs first, so there the accuracy is that of the sigmoid (an absolute
    error of a few eps min(p, 1 - p) in p).

    dask arrays give a lazy dask array, computed block by block.

    Examples
    --------
    >>> import kl_fast
    >>> round(float(kl_fast.binary_kl(0.8, 0.6)), 6)
    0.091516
    >>> float(kl_fast.binary_kl(0.3, 0.3))
    0.0
    >>> kl_fast.binary_kl([0.8, 0.5], 0.5, base=2).round(6)
    array([0.278072, 0.      ])
    >>> round(float(kl_fast.binary_kl(0.0, 0.0, p_space="logits", q_space="logits")), 6)
    0.0
    """
    try:
        if _dask_dispatch.has_dask(p, q):
            return _dask_other.dispatch("binary_kl", locals())
        p_logits = check_space(p_space, "p_space")
        q_logits = check_space(q_space, "q_space")
        log_base = check_base(base)
        eps = check_eps(eps)
        op = kl_op(p_logits, q_logits, eps > 0)
        requirements = [LOGIT_REQUIREMENT if p_logits else PROB_REQUIREMENT,
                        LOGIT_REQUIREMENT if q_logits else PROB_REQUIREMENT]
        opts = dict(reduction=reduction, out=out, backend=backend, num_threads=num_threads,
                    validate=validate)
        fill = (0.0 if p_logits else 0.5, 0.0 if q_logits else 0.5)
        return elementwise([("p", p), ("q", q)], op, eps, log_base, opts, requirements,
                           "probabilities", where, fill)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise


def binary_cross_entropy(y, q, *, q_space="prob", base=None, eps=0.0, reduction="none",
                         out=None, backend="auto", num_threads=None, validate=True,
                         where=None):
    r"""Binary cross-entropy -(y log q + (1 - y) log(1 - q)), elementwise.

    Parameters
    ----------
    y : array_like
        Targets in [0, 1] (soft targets allowed).
    q : array_like
        Predicted probabilities, or logits with ``q_space="logits"``;
        broadcasts against `y`.
    q_space : {"prob", "logits"}, default "prob"
        "logits": q holds logits x, the probability is sigmoid(x).
    base, eps, reduction, out, backend, num_threads, validate, where
        As in :func:`binary_kl`; `eps` smooths both y and q, x -> (x + eps)
        / (1 + 2 eps), so that cross-entropy = entropy + KL holds for the
        smoothed pair too.

    Returns
    -------
    ndarray or scalar
        The cross-entropy per element of the broadcast shape, >= 0.

    Raises
    ------
    ValueError
        y outside [0, 1], q outside [0, 1] (probabilities) or NaN (logits),
        naming the argument and the first bad index; shapes that do not
        broadcast; a bad `q_space`, `eps` or `base`.
    TypeError
        Non-real data or a GPU array.

    See Also
    --------
    torch.nn.functional.binary_cross_entropy
    torch.nn.functional.binary_cross_entropy_with_logits

    Notes
    -----
    0 log 0 is 0, so y = 0 with q = 0 gives 0, while y > 0 with q = 0 gives
    +inf: unlike torch, which clamps the logs at -100, nothing is clamped.
    log(1 - q) is computed as log1p(-q).  From logits x the stable form of
    torch's ``binary_cross_entropy_with_logits`` is used,

    .. math::

        \max(x, 0) - x y + \log(1 + e^{-|x|}) = w |x| + \log(1 + e^{-|x|}),

    with w = 1 - y for x >= 0 and w = y for x < 0, a sum of non-negative
    terms.  Measured against mpmath: <= 1.1 eps (float64) from probabilities
    and from logits; float32 results within 0.5 float32 ulp.

    dask arrays give a lazy dask array, computed block by block.

    Examples
    --------
    >>> import kl_fast
    >>> round(float(kl_fast.binary_cross_entropy(1.0, 0.5)), 6)
    0.693147
    >>> kl_fast.binary_cross_entropy([0.0, 1.0], [0.0, 0.0])
    array([ 0., inf])
    >>> round(float(kl_fast.binary_cross_entropy(1.0, 0.0, q_space="logits")), 6)
    0.693147
    >>> float(kl_fast.binary_cross_entropy([1.0, 1.0], [0.5, float("nan")],
    ...                                    where=[True, False], reduction="mean"))
    0.6931471805599453
    """
    try:
        if _dask_dispatch.has_dask(y, q):
            return _dask_other.dispatch("binary_cross_entropy", locals())
        q_logits = check_space(q_space, "q_space")
        log_base = check_base(base)
        eps = check_eps(eps)
        op = OPS[("bce_logits" if q_logits else "bce_prob") + ("_eps" if eps > 0 else "")]
        requirements = ["targets must be finite and in [0, 1]",
                        LOGIT_REQUIREMENT if q_logits else PROB_REQUIREMENT]
        opts = dict(reduction=reduction, out=out, backend=backend, num_threads=num_threads,
                    validate=validate)
        return elementwise([("y", y), ("q", q)], op, eps, log_base, opts, requirements,
                           "probabilities", where, (0.0, 0.0 if q_logits else 0.5))
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise
