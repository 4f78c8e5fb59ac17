"""Public reductions over probability vectors: KL divergence, entropy, cross-entropy.

Each function is a flat run of explicit argument checks followed by one pass
of a compiled row kernel (see ``_engine/run.py``); the kernel also does the data
checks and reports, and ``_engine/report.py`` turns its report into errors.
"""

import numpy as np

from . import _autograd, _autograd_rows, _labels, _loss_options
from ._dask import dispatch as _dask_dispatch
from ._dask import rows as _dask_rows
from ._engine.report import note_out
from ._engine.run import Options, finish
from ._inputs import array_types as _arrays
from ._prob_rows import fast_vector, reduce_probability_rows
from ._registry import ROW_REDUCTIONS
from ._spaces import check_space, check_temperature, reduce_spaces

__all__ = ["kl_divergence", "entropy", "cross_entropy", "js_divergence"]


# Per row kernel: the keywords that declare an input as logits/log-probabilities, and
# the elementwise Bernoulli function for 1-D binary data (what error messages offer).
# kernel -> (log/logits keywords to offer, elementwise twin to offer), from the registry
_ADVICE = {r.kernel: (list(r.space_keywords) or None, r.elementwise_twin)
           for r in ROW_REDUCTIONS if r.module == "_api"}


def _reduce_probabilities(kernel_name, named, axis, base, eps, normalize, opts, advice=None):
    return reduce_probability_rows(kernel_name, named, axis, base, eps, normalize, opts,
                                   advice or _ADVICE[kernel_name])


def _in_spaces(kind, named, codes, axis, base, eps, normalize, temperature, opts):
    result, rows, out_kind = reduce_spaces(kind, named, codes, axis, base, eps, normalize,
                                           temperature, opts)
    return finish(result, rows, opts, out_kind)


def kl_divergence(p, q, *, p_space="prob", q_space="prob", temperature=1.0, axis=-1,
                  base=None, eps=0.0, normalize=False, reduction="none", keepdims=False,
                  out=None, backend="auto", num_threads=None, validate=True, sum_tol=None):
    r"""Kullback-Leibler divergence KL(p || q) = sum p log(p / q) along `axis`.

    Parameters
    ----------
    p, q : array_like
        Probabilities (or counts with ``normalize=True``); the batch axes
        broadcast, e.g. p of shape (N, K) against one q of shape (K,).
        numpy arrays of any layout, lists, memmaps, CPU torch tensors
        (bfloat16 computed as float32), JAX arrays, and pandas objects
        (paired by their index/columns labels, never silently by position).
    p_space, q_space : {"prob", "log", "logits"}, default "prob"
        What `p` and `q` hold: probabilities, natural-log probabilities, or
        unnormalized logits (a stable log-softmax is applied inside the
        kernel; no softmax array is built).  -inf log-probabilities and
        logits are probability 0.  With ``normalize=True`` log-probabilities
        are renormalized by their log-sum-exp.
    temperature : float, default 1.0
        Logits are divided by it before the softmax (distillation); only
        with an input in "logits" space.
    axis : int, default -1
        The category axis that is summed over.
    base : float, optional
        Logarithm base; None gives nats, 2 gives bits.
    eps : float, default 0.0
        Smoothing: both inputs get ``x + eps`` and are renormalized along
        `axis`, so the result stays finite where q has zeros.
    normalize : bool, default False
        Divide each input by its sum along `axis` first (counts work).
    reduction : {"none", "sum", "mean"}, default "none"
        Return one value per distribution, or their sum or mean (a scalar).
    keepdims : bool, default False
        Keep the reduced axis with length one.
    out : ndarray, optional
        Array of the result's shape to write into (``reduction="none"`` only).
        Written only once every check has passed: a call that raises leaves
        `out` untouched, and its error message ends by saying so.
    backend : {"auto", "cython", "numba", "numpy"}, default "auto"
        Which kernels run; all agree within the accuracy bound.
    num_threads : int, optional
        Threads for this call; None uses ``kl_fast.get_num_threads()``.
    validate : bool or "full", default True
        Check for negative, NaN or inf values and for rows not summing to 1,
        in the same pass that computes the result.  ``"full"`` matters only
        for the label path of :func:`cross_entropy` (which otherwise reads
        just the picked value of each row); elsewhere it equals True.
    sum_tol : float, optional
        How far a row sum may miss 1.  None (default): ``K * eps(float32)``
        for K categories, at least 1e-6 and at most 1e-3 (float32 inputs: at
        least sqrt(eps32)), which accepts probabilities that were float32
        once or were printed with 7 decimals, and still rejects counts,
        logits and rows taken along the wrong axis.

    Returns
    -------
    ndarray or scalar
        KL(p || q) per distribution (float32 for float32 inputs, else
        float64), a numpy scalar for a single distribution, or a torch
        tensor for torch input (a pandas Series, labelled like the batch
        axis, for a DataFrame).  A torch tensor that requires grad gives a
        result that carries the gradient (closed-form backward, as
        ``torch.nn.functional.kl_div`` would give); so do :func:`entropy`
        and :func:`cross_entropy`.

    Raises
    ------
    ValueError
        Negative, NaN or inf values, rows not summing to 1 (with
        ``validate``), shapes that do not broadcast, a bad `axis`, an empty
        category axis, or a bad keyword value.
    TypeError
        Complex, bool, object or string data, a GPU array, or `out` with a
        torch tensor that requires grad (a numpy `out` cannot carry the
        gradient).  The functions without a gradient (:func:`js_divergence`,
        the pairwise, binary and elementwise ones, mutual information) raise
        it for a tensor that requires grad while autograd records, rather
        than drop the gradient: pass ``x.detach()`` to monitor the value.

    See Also
    --------
    scipy.special.rel_entr : the elementwise terms.
    scipy.stats.entropy : ``entropy(p, q)`` normalizes and reduces axis 0.
    torch.nn.functional.kl_div : takes ``(log q, p)``, the reverse order.
    cross_entropy, entropy

    Notes
    -----
    .. math::

        D_{KL}(p \| q) = \sum_k p_k \log \frac{p_k}{q_k} = H(p, q) - H(p)

    Terms with p = 0 are 0 (whatever q); p > 0 with q = 0 gives +inf.  Each
    term is computed in double precision with a log1p form where p ~ q, so
    nearly equal distributions keep their digits; the result is never
    negative and KL(p, p) is exactly 0.  It is not computed as H(p, q) - H(p),
    which cancels catastrophically.

    Two logits rows a, b (distillation) use the centred form
    KL = E_p[c] + log E_p[exp(-c)] with c = (a - b) / T - E_p[(a - b) / T],
    p = softmax(a / T), evaluated as ``S2 + log1p(S1 - S2)`` with
    S1 = E_p[expm1(-c) + c] >= 0: it keeps its relative accuracy (a few eps)
    when the rows nearly coincide, where ``log_softmax(a) - log_softmax(b)``
    loses every digit.  The difference is shifted by max(a) - max(b) in
    double-double and its rounding kept, so logits of +-1e4 and peaked rows
    stay within 2.2 eps too (docs/accuracy.md).  "log" against "log" takes the terms
    exp(x) (x - y), exact where x ~ y.  Mixed spaces (a probability or
    log-probability against logits, or logits against probabilities) carry
    the rounding of log p, so their error is about eps * sum_k p_k |log p_k|
    in absolute terms.

    dask arrays (any input) give a lazy dask array.  With the category axis
    in one chunk each block runs the kernels (the values of the numpy call, bit
    for bit); split across chunks, exact per-chunk partial sums (log-sum-exp
    states for logits) are merged, see ``kl_fast/_dask/split.py`` for the
    accuracy of that path.

    Examples
    --------
    The coin example: a fair-ish model of a biased coin, in bits.

    >>> import kl_fast
    >>> round(float(kl_fast.kl_divergence([0.8, 0.2], [0.6, 0.4], base=2)), 5)
    0.13203
    >>> kl_fast.kl_divergence([[0.5, 0.5], [1.0, 0.0]], [0.5, 0.5])
    array([0.        , 0.69314718])

    From logits, e.g. a teacher against a student at temperature 2:

    >>> teacher, student = [2.0, 1.0, 0.1], [1.5, 1.2, 0.3]
    >>> round(float(kl_fast.kl_divergence(teacher, student, p_space="logits",
    ...                                   q_space="logits", temperature=2.0)), 6)
    0.015241
    """
    try:
        if not type(p) is type(q) is np.ndarray and _dask_dispatch.has_dask(p, q):
            return _dask_rows.dispatch("kl_divergence", locals())
        if not type(p) is type(q) is np.ndarray and _autograd.wants_grad(p, q):
            return _autograd_rows.differentiate("kl", kl_divergence, locals())
        codes = (check_space(p_space, "p_space"), check_space(q_space, "q_space"))
        if codes != (0, 0) or temperature != 1.0:
            opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                                 num_threads=num_threads, validate=validate, sum_tol=sum_tol)
            temperature = check_temperature(temperature, codes)
            return _in_spaces("kl", [("p", p), ("q", q)], codes, axis, base, eps, normalize,
                              temperature, opts)
        result = fast_vector("kl_rows", p, q, axis, base, eps, normalize, reduction, keepdims, out,
                             backend, num_threads, validate, sum_tol)
        if result is not None:
            return result
        opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                             num_threads=num_threads, validate=validate, sum_tol=sum_tol)
        return _reduce_probabilities("kl_rows", [("p", p), ("q", q)], axis, base, eps, normalize,
                                     opts)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise


def js_divergence(p, q, *, axis=-1, base=None, eps=0.0, normalize=False, reduction="none",
                  keepdims=False, out=None, backend="auto", num_threads=None, validate=True,
                  sum_tol=None):
    r"""Jensen-Shannon divergence JS(p, q) = (KL(p || m) + KL(q || m)) / 2, m = (p + q) / 2.

    The divergence itself, not its square root (which
    :func:`kl_fast.scipy.jensenshannon` returns, like scipy).

    Parameters
    ----------
    p, q : array_like
        Probabilities (or counts with ``normalize=True``), broadcasting.
    axis, base, eps, normalize, reduction, keepdims, out, backend, num_threads, validate
        As in :func:`kl_divergence`.

    Returns
    -------
    ndarray or scalar
        JS(p, q) per distribution, in [0, log 2] (in [0, 1] with ``base=2``).

    Raises
    ------
    ValueError, TypeError
        As in :func:`kl_divergence`.

    See Also
    --------
    scipy.spatial.distance.jensenshannon : the square root, axis 0, normalizing.

    Notes
    -----
    .. math:: JS(p, q) = \tfrac12 \sum_k \left[ p_k \log\frac{p_k}{m_k}
              + q_k \log\frac{q_k}{m_k} \right], \qquad m = \tfrac12 (p + q)

    Symmetric bit for bit, exactly 0 for p == q, never negative or NaN for
    valid input: the rounding of p + q is corrected exactly (TwoSum), which
    keeps nearly equal distributions accurate.

    dask arrays give a lazy dask array, as in :func:`kl_divergence`.

    Examples
    --------
    >>> import kl_fast
    >>> float(kl_fast.js_divergence([1.0, 0.0], [0.0, 1.0], base=2))
    1.0
    >>> float(kl_fast.js_divergence([0.3, 0.7], [0.3, 0.7]))
    0.0
    """
    try:
        if not type(p) is type(q) is np.ndarray and _dask_dispatch.has_dask(p, q):
            return _dask_rows.dispatch("js_divergence", locals())
        result = fast_vector("js_rows", p, q, axis, base, eps, normalize, reduction, keepdims, out,
                             backend, num_threads, validate, sum_tol)
        if result is not None:
            return result
        opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                             num_threads=num_threads, validate=validate, sum_tol=sum_tol)
        return _reduce_probabilities("js_rows", [("p", p), ("q", q)], axis, base, eps, normalize,
                                     opts)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise


def entropy(p, *, space="prob", temperature=1.0, axis=-1, base=None, eps=0.0,
            normalize=False, reduction="none", keepdims=False, out=None, backend="auto",
            num_threads=None, validate=True, sum_tol=None):
    r"""Shannon entropy H(p) = -sum p log p along `axis`.

    Parameters
    ----------
    p : array_like
        Probabilities (or counts with ``normalize=True``).
    space : {"prob", "log", "logits"}, default "prob"
        What `p` holds, as `p_space` of :func:`kl_divergence`.  From logits,
        H = log S - E_p[x - max x] with S = sum exp(x - max x): two
        non-negative parts, no cancellation.
    temperature : float, default 1.0
        Divides logits before the softmax.
    axis, base, eps, normalize, reduction, keepdims, out, backend, num_threads, validate
        As in :func:`kl_divergence`.

    Returns
    -------
    ndarray or scalar
        H(p) per distribution, in [0, log K].

    Raises
    ------
    ValueError, TypeError
        As in :func:`kl_divergence`.

    See Also
    --------
    scipy.stats.entropy : with one argument; normalizes, axis 0.
    scipy.special.entr : the elementwise terms.
    torch.distributions.Categorical.entropy

    Notes
    -----
    .. math:: H(p) = -\sum_k p_k \log p_k, \qquad H(p, q) = H(p) + D_{KL}(p \| q)

    Terms with p = 0 are 0.

    dask arrays give a lazy dask array, as in :func:`kl_divergence`.

    Examples
    --------
    >>> import kl_fast
    >>> float(kl_fast.entropy([0.5, 0.5], base=2))
    1.0
    >>> kl_fast.entropy([[1, 1, 2], [0, 0, 4]], normalize=True, base=2)
    array([1.5, 0. ])
    >>> float(kl_fast.entropy([0.0, 0.0, -float("inf")], space="logits", base=2))
    1.0
    """
    try:
        if type(p) is not np.ndarray and _dask_dispatch.has_dask(p):
            return _dask_rows.dispatch("entropy", locals())
        if type(p) is not np.ndarray and _autograd.wants_grad(p):
            return _autograd_rows.differentiate("h", entropy, locals())
        code = check_space(space, "space")
        if code != 0 or temperature != 1.0:
            opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                                 num_threads=num_threads, validate=validate, sum_tol=sum_tol)
            temperature = check_temperature(temperature, (code,))
            return _in_spaces("h", [("p", p)], (code,), axis, base, eps, normalize, temperature,
                              opts)
        result = fast_vector("entropy_rows", p, None, axis, base, eps, normalize, reduction,
                             keepdims, out, backend, num_threads, validate, sum_tol)
        if result is not None:
            return result
        opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                             num_threads=num_threads, validate=validate, sum_tol=sum_tol)
        return _reduce_probabilities("entropy_rows", [("p", p)], axis, base, eps, normalize, opts)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise


def cross_entropy(p, q, *, q_space="prob", temperature=1.0, ignore_index=None, axis=-1,
                  base=None, eps=0.0, normalize=False, reduction="none", keepdims=False,
                  out=None, backend="auto", num_threads=None, validate=True,
                  sum_tol=None, p_space="prob", weight=None, label_smoothing=0.0):
    r"""Cross-entropy H(p, q) = -sum p log q along `axis`, or -log q[label] for labels.

    Parameters
    ----------
    p : array_like
        Target probabilities with the shape of `q` (batch axes broadcast; the
        category axis never does), or integer class labels with
        ``q.ndim - 1`` dimensions: the batch shape of `q` with `axis`
        removed.  Whole numbers that look like labels but are floats, or
        carry a length-1 category axis, raise a ValueError saying so.
    q : array_like
        Predictions: probabilities, or see `q_space`.
    q_space : {"prob", "log", "logits"}, default "prob"
        What `q` holds.  Logits with integer labels is the classic softmax
        cross-entropy (``torch.nn.functional.cross_entropy``):
        log sum exp(q - max q) - (q[label] - max q), two non-negative parts.
    temperature : float, default 1.0
        Divides logits before the softmax.
    ignore_index : int, optional
        With labels: rows whose label equals it are NaN under
        ``reduction="none"`` and left out of "sum" and "mean" (PyTorch
        uses -100).
    axis, base, eps, normalize, reduction, keepdims, out, backend, num_threads, sum_tol
        As in :func:`kl_divergence`.
    validate : bool or "full", default True
        Probability targets: as in :func:`kl_divergence`.  With labels,
        ``True`` checks what the call reads: the picked probability of each
        row must be in [0, 1] (the call costs O(N), not O(N K)), the picked
        log-probability <= 0 (q_space="log"), and logits rows whole (they
        are read whole for the log-sum-exp); rows are checked to sum to 1
        only where `eps` or `normalize` read them.  ``"full"`` also checks
        every row of q as a distribution (finite, >= 0 and summing to 1 within
        `sum_tol`; log-probabilities <= 0 whose exponentials sum to 1), at the
        cost of one more pass over q.  Labels out of range always raise, even
        with ``validate=False``.
    p_space : {"prob", "log", "logits"}, default "prob"
        What soft targets `p` hold (not labels).  Teacher logits
        (distillation) give torch's ``cross_entropy(q_logits / T,
        softmax(p_logits / T))``; computed as H(p) + KL(p || q), two
        non-negative parts from the accurate kernels.  `temperature` divides
        every input in logits space.
    weight : array_like, optional
        Per-class weights, 1-D of length K, finite and >= 0, with torch's
        meaning.  Labels: row i gives ``w[y_i] * (-log q[i, y_i])`` and
        ``reduction="mean"`` divides the sum by ``sum(w[y_i])`` over the rows
        not ignored.  Soft targets: ``-sum_k w_k p_k log q_k``, and "mean"
        divides by the number of rows.
    label_smoothing : float in [0, 1], default 0.0
        torch's label smoothing: the target becomes ``(1 - e) target + e/K``,
        i.e. ``(1 - e) loss + e/K sum_k w_k (-log q_k)`` per row, with the
        weighted mean above.  The smoothing term reads the whole row of `q`
        (one extra numpy pass in double precision, which also checks every
        value of the row).

    Returns
    -------
    ndarray or scalar
        H(p, q) per row.

    Raises
    ------
    ValueError, TypeError
        As in :func:`kl_divergence`; ValueError for labels out of range, a
        `weight` that is not 1-D of length K, finite and >= 0, or a
        `label_smoothing` outside [0, 1].

    See Also
    --------
    torch.nn.functional.cross_entropy : from logits, with labels or probabilities.
    sklearn.metrics.log_loss

    Notes
    -----
    .. math:: H(p, q) = -\sum_k p_k \log q_k = H(p) + D_{KL}(p \| q)

    Terms with p = 0 are 0 even where q = 0; p > 0 with q = 0 gives +inf.

    `weight`, `label_smoothing` and `p_space` match
    ``torch.nn.functional.cross_entropy`` (``input`` = log q or the logits,
    ``target`` = the labels or ``softmax(p)``), with two differences:
    ignored rows are NaN under ``reduction="none"`` (torch: 0), and a term
    whose weight or target is 0 is 0 even where -log q is inf (torch: NaN).

    dask arrays give a lazy dask array, as in :func:`kl_divergence`; with
    labels and a split category axis the label's value comes from its chunk.

    Examples
    --------
    >>> import kl_fast
    >>> round(float(kl_fast.cross_entropy([1.0, 0.0, 0.0], [0.8, 0.1, 0.1], base=2)), 6)
    0.321928
    >>> kl_fast.cross_entropy([0, 2], [[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]], base=2)
    array([1., 1.])
    >>> logits = [[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]]
    >>> kl_fast.cross_entropy([0, 1], logits, q_space="logits").round(6)
    array([0.241311, 1.098612])

    torch's options: class weights and label smoothing, or teacher logits:

    >>> w = [1.0, 2.0, 0.5]
    >>> round(float(kl_fast.cross_entropy([0, 1], logits, q_space="logits", weight=w,
    ...                                   label_smoothing=0.1, reduction="mean")), 6)
    0.833669
    >>> round(float(kl_fast.cross_entropy([1.0, 0.0, 0.0], logits[0], p_space="logits",
    ...                                   q_space="logits")), 6)
    1.195048
    """
    try:
        if not type(p) is type(q) is np.ndarray and _dask_dispatch.has_dask(p, q):
            return _dask_rows.dispatch("cross_entropy", locals())
        if not type(p) is type(q) is np.ndarray and _autograd.wants_grad(p, q):
            return _autograd_rows.differentiate("ce", cross_entropy, locals())
        # inline checks: the one-vector fast path below costs ~0.2 us; locals() are
        # the parameters only here, as for the dask dispatch above
        if p_space != "prob" or weight is not None or (type(label_smoothing) is not float
                                                       or label_smoothing != 0.0):
            return _loss_options.cross_entropy(
                {"ce": cross_entropy, "h": entropy, "kl": kl_divergence}, **locals())
        q_code = check_space(q_space, "q_space")
        if q_code != 0 or temperature != 1.0:
            temperature = check_temperature(temperature, (q_code,))
        plain = q_code == 0 and temperature == 1.0 and ignore_index is None
        if plain:
            result = fast_vector("cross_entropy_rows", p, q, axis, base, eps, normalize, reduction,
                                 keepdims, out, backend, num_threads, validate, sum_tol)
            if result is None and type(p) is np.ndarray and p.ndim == 1:
                result = _labels.fast_label_rows(p, q, axis, base, eps, normalize, reduction,
                                                 keepdims, out, backend, num_threads, validate,
                                                 sum_tol)
            if result is not None:
                return result
        opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                             num_threads=num_threads, validate=validate, sum_tol=sum_tol)
        p_np = _arrays.to_numpy(p, _arrays.input_kind(p, "p"))
        q_np = _arrays.to_numpy(q, _arrays.input_kind(q, "q"))
        is_labels = p_np.dtype.kind in "iu" and p_np.ndim == q_np.ndim - 1
        if not is_labels:
            _labels.reject_label_lookalike(p_np, q_np, axis)
        if is_labels:
            return _labels.cross_entropy_labels(p, q, axis, base, eps, normalize, ignore_index,
                                                opts, q_code, temperature)
        if ignore_index is not None:
            raise ValueError("ignore_index applies to integer class labels (p with q.ndim - 1 "
                             f"dimensions), but p has {p_np.ndim} and q {q_np.ndim}")
        if q_code != 0:
            return _in_spaces("ce", [("p", p), ("q", q)], (0, q_code), axis, base, eps, normalize,
                              temperature, opts)
        return _reduce_probabilities("cross_entropy_rows", [("p", p), ("q", q)], axis, base, eps,
                                     normalize, opts)
    except (ValueError, TypeError) as err:
        note_out(err, out)
        raise
