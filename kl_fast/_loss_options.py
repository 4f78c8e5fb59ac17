"""torch's loss options for ``cross_entropy``: per-class ``weight``,
``label_smoothing`` and soft targets given as logits or log-probabilities
(``p_space``), with ``torch.nn.functional.cross_entropy``'s meaning.

A. The plain per-row value comes from the public path (the compiled kernels,
   their checks and messages): -log q[label] for labels, H(p, q) for
   probability targets, and H(p) + KL(p || q) for targets in log or logits
   space (two non-negative, accurately computed parts, so nothing cancels).
B. What no kernel computes -- the smoothing term sum_k w_k (-log q_k) and a
   weighted soft cross-entropy sum_k w_k p_k (-log q_k) -- is a vectorized
   numpy pass in double precision over row chunks (bounded memory): it costs
   one extra read of q (and of p for weighted soft targets).  Every term is
   non-negative, so the sums keep their relative accuracy.
C. torch's reduction rules: labels with `weight` average by sum(w[y_i]) over
   the rows not ignored (``nll_loss``'s weighted mean, also for the smoothing
   term); probability targets average by the number of rows, weight or not.
D. One deliberate difference: a term whose weight (or target) is 0 is 0 even
   where -log q is inf (torch gives NaN from 0 * inf).
"""

import math
import numbers

import numpy as np

from ._engine.run import Options, deliver
from ._inputs import array_types as _arrays
from ._inputs.shapes import broadcast_shape, normalize_axis
from ._inputs.validation import check_base, check_eps, check_flag
from ._spaces import LOG, LOGITS, PROB, check_space, check_temperature

__all__ = ["wants_options", "check_weight", "check_label_smoothing", "cross_entropy"]

# rows per chunk of the numpy pass: about this many elements in flight
_CHUNK = 1 << 17

_SMOOTH_REQUIREMENT = {
    PROB: "probabilities must be finite and in [0, 1]",
    LOG: "log-probabilities must not be NaN or positive (-inf is probability 0)",
    LOGITS: "logits must not be NaN or +inf (-inf is probability 0)",
}


def wants_options(p_space, weight, label_smoothing):
    """True when a call needs this module rather than the plain cross-entropy path."""
    return weight is not None or p_space != "prob" or not (
        isinstance(label_smoothing, (int, float)) and not isinstance(label_smoothing, bool)
        and label_smoothing == 0)


def check_label_smoothing(value):
    """A float in [0, 1] (torch's range)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"label_smoothing must be a float in [0, 1], got "
                        f"{type(value).__name__}")
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1] (torch's range), got {value!r}; "
                         "0 is no smoothing, 0.1 a common choice")
    return value


def check_weight(weight, n_cat):
    """The per-class weights as float64 of length `n_cat`, finite and >= 0."""
    kind = _arrays.input_kind(weight, "weight")
    w = np.asarray(_arrays.to_numpy(weight, kind))
    if w.dtype.kind not in "iuf":
        raise TypeError(f"weight must be a 1-D array of real numbers (one per class), got "
                        f"dtype {w.dtype}")
    if w.ndim != 1 or w.shape[0] != n_cat:
        raise ValueError(f"weight must be 1-D with one value per class ({n_cat} classes along "
                         f"the category axis of q), got shape {w.shape}")
    w = w.astype(np.float64)
    bad = np.flatnonzero(~((w >= 0) & (w < np.inf)))
    if bad.size:
        raise ValueError(f"weight must be finite and >= 0; weight[{int(bad[0])}] is "
                         f"{float(w[bad[0]])!r} ({bad.size} bad value(s)); give every class a "
                         "finite non-negative weight (0 leaves the class out)")
    return w


def _neg_log_q(x, code, temperature, eps, normalize):
    """-log q of a float64 block of rows (n, K), in nats, from q in space `code`."""
    if code == PROB:
        if eps > 0 or normalize:
            x = x + eps
            return np.log(x.sum(axis=1, keepdims=True)) - np.log(x)
        return -np.log(x)
    if code == LOG and not normalize:
        return -x
    if code == LOGITS and temperature != 1.0:
        x = x / temperature
    m = x.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    return lse - x


def _target(x, code, temperature, eps, normalize):
    """The target probabilities of a float64 block of rows (n, K) in space `code`."""
    if code == PROB:
        if eps > 0 or normalize:
            x = x + eps
            return x / x.sum(axis=1, keepdims=True)
        return x
    if code == LOG and not normalize:
        return np.exp(x)
    if code == LOGITS and temperature != 1.0:
        x = x / temperature
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _bad_q(x, code, transform):
    if code == PROB:
        return ~((x >= 0) & (x < np.inf)) if transform else ~((x >= 0) & (x <= 1))
    if code == LOG:
        return np.isnan(x) | (x > 0)
    return np.isnan(x) | (x == np.inf)


def _weighted_sum(terms, w):
    """sum_k w_k terms_k per row, a zero weight giving 0 even where a term is inf."""
    if w is None:
        return terms.sum(axis=1)
    return np.where(w > 0, terms * w, 0.0).sum(axis=1)


def _row_pass(batch, views, fn):
    """fn(r0, blocks) over chunks of rows: `views` broadcast to ``batch + (K,)``,
    each chunk gathered as float64 (n, K) blocks (memory: one chunk, any layout)."""
    n_rows = math.prod(batch)
    n_cat = views[0].shape[-1]
    step = max(1, _CHUNK // max(n_cat, 1))
    shape = batch if batch else (1,)
    views = [v.reshape((1, n_cat)) if not batch else v for v in views]
    for r0 in range(0, n_rows, step):
        index = np.unravel_index(np.arange(r0, min(r0 + step, n_rows)), shape)
        fn(r0, [np.asarray(v[index], dtype=np.float64) for v in views])


def _smoothing_and_weighted(batch, p_view, q_view, codes, temperature, eps, normalize, w,
                            check_rows, validate):
    """Per row: S = sum_k w_k (-log q_k) and, if p_view is given, the weighted soft
    cross-entropy sum_k w_k p_k (-log q_k); both in nats, float64, of shape `batch`.
    With `validate`, q is checked where `check_rows` (flat bool, or None for all) is set."""
    n_rows = math.prod(batch)
    smooth = np.empty(n_rows)
    weighted = None if p_view is None else np.empty(n_rows)
    transform = eps > 0 or normalize
    views = [q_view] if p_view is None else [q_view, p_view]

    def one(r0, blocks):
        x = blocks[0]
        r1 = r0 + x.shape[0]
        if validate:
            bad = _bad_q(x, codes[1], transform)
            if check_rows is not None:
                bad &= check_rows[r0:r1, None]
            if bad.any():
                row, col = (int(i) for i in np.argwhere(bad)[0])
                index = tuple(int(i) for i in np.unravel_index(r0 + row, batch)) if batch else ()
                raise ValueError(
                    f"q: {_SMOOTH_REQUIREMENT[codes[1]]}, but the row at batch index {index} "
                    f"holds {float(x[row, col])!r} at category {col} (label_smoothing and "
                    "weight read every category of a row); fix the input or pass the right "
                    "q_space")
        with np.errstate(all="ignore"):
            nl = _neg_log_q(x, codes[1], temperature, eps, normalize)
            smooth[r0:r1] = _weighted_sum(nl, w)
            if weighted is not None:
                t = _target(blocks[1], codes[0], temperature, eps, normalize)
                wt = t if w is None else t * w
                weighted[r0:r1] = np.where(wt > 0, wt * nl, 0.0).sum(axis=1)

    _row_pass(batch, views, one)
    return smooth, weighted


def _moved(x, ax, ndim, batch, n_cat):
    """`x` with the category axis last, broadcast to ``batch + (n_cat,)`` (a view)."""
    x = x.reshape((1,) * (ndim - x.ndim) + x.shape)
    return np.broadcast_to(np.moveaxis(x, ax, -1), batch + (n_cat,))


def cross_entropy(fns, p, q, *, p_space, q_space, temperature, ignore_index, weight,
                  label_smoothing, axis, base, eps, normalize, reduction, keepdims, out,
                  backend, num_threads, validate, **extra):
    """cross_entropy with weight / label_smoothing / p_space (see the module notes).

    `fns` holds the public functions (``ce``, ``h``, ``kl``) that give the plain
    per-row values; passing them in keeps this module free of an import cycle.
    """
    opts = Options.check(reduction=reduction, keepdims=keepdims, out=out, backend=backend,
                         num_threads=num_threads, validate=validate,
                         sum_tol=extra.get("sum_tol"))
    smoothing = check_label_smoothing(label_smoothing)
    p_code = check_space(p_space, "p_space")
    q_code = check_space(q_space, "q_space")
    log_base = check_base(base)
    eps = check_eps(eps)
    normalize = check_flag(normalize, "normalize")
    for name, x in (("p", p), ("q", q), ("weight", weight)):
        if getattr(x, "requires_grad", False) is True:
            raise TypeError(
                f"{name} requires a gradient, but kl_fast's cross_entropy with weight, "
                "label_smoothing or p_space returns a result that carries none; pass "
                f"{name}.detach() to monitor the loss, or train with "
                "torch.nn.functional.cross_entropy")
    kinds = [_arrays.input_kind(p, "p"), _arrays.input_kind(q, "q")]
    p_np, q_np = _arrays.to_numpy(p, kinds[0]), _arrays.to_numpy(q, kinds[1])
    out_kind = _arrays.output_kind(kinds)
    common = dict(axis=axis, base=base, eps=eps, normalize=normalize, reduction="none",
                  backend=backend, num_threads=num_threads, validate=validate,
                  sum_tol=extra.get("sum_tol"))
    ce_common = dict(common, **extra)   # keywords of the plain path this module leaves alone
    labels = p_np.dtype.kind in "iu" and p_np.ndim == q_np.ndim - 1
    if labels:
        if p_code != PROB:
            raise ValueError(f"p_space={p_space!r} describes soft targets, but p holds integer "
                             "class labels; leave p_space='prob' with labels")
        temperature = check_temperature(temperature, (q_code,))
        plain = np.asarray(fns["ce"](p_np, q_np, q_space=q_space, temperature=temperature,
                                     ignore_index=ignore_index, **ce_common))
        ndim = q_np.ndim
        ax = normalize_axis(axis, ndim, "q")
        q_view = _moved(q_np, ax, ndim, plain.shape, q_np.shape[ax])
        values, keep, denominator = _labels(plain, p_np, q_view, q_code, ignore_index, weight,
                                            smoothing, temperature, eps, normalize, log_base,
                                            opts.validate)
    else:
        if ignore_index is not None:
            raise ValueError("ignore_index applies to integer class labels (p with q.ndim - 1 "
                             f"dimensions), but p has {p_np.ndim} and q {q_np.ndim}")
        temperature = check_temperature(temperature, (p_code, q_code))
        if p_code == PROB:
            plain = np.asarray(fns["ce"](p_np, q_np, q_space=q_space, temperature=temperature,
                                         **ce_common))
        else:
            h = fns["h"](p_np, space=p_space,
                         temperature=temperature if p_code == LOGITS else 1.0, **common)
            kl = fns["kl"](p_np, q_np, p_space=p_space, q_space=q_space,
                           temperature=temperature, **common)
            plain = np.asarray(h + kl)   # H(p) + KL(p || q): both >= 0, nothing cancels
        ndim = max(p_np.ndim, q_np.ndim)
        ax = normalize_axis(axis, ndim, "p and q")
        n_cat = broadcast_shape([p_np, q_np], ["p", "q"])[ax]
        views = [_moved(x, ax, ndim, plain.shape, n_cat) for x in (p_np, q_np)]
        values = _soft(plain, views, (p_code, q_code), weight, smoothing, temperature, eps,
                       normalize, log_base, opts.validate)
        keep, denominator = None, values.size
    return _finish(values.astype(plain.dtype), keep, denominator, plain.shape, ax, ndim, opts,
                   out_kind)


def _mix(plain, smooth, smoothing, n_cat):
    """(1 - e) plain + e/K smooth; a factor of 0 adds 0 even where its term is inf."""
    if smoothing == 0.0:
        return plain
    mixed = (smoothing / n_cat) * smooth
    return mixed if smoothing == 1.0 else (1.0 - smoothing) * plain + mixed


def _labels(plain, y, q_view, q_code, ignore_index, weight, smoothing, temperature, eps,
            normalize, log_base, validate):
    """Flat per-row values, the rows kept, and the "mean" denominator (torch's
    sum(w[y_i]) over the rows not ignored, or their count)."""
    batch, n_cat = plain.shape, q_view.shape[-1]
    w = None if weight is None else check_weight(weight, n_cat)
    y = np.broadcast_to(y, batch).reshape(-1)
    keep = np.ones(y.shape, bool) if ignore_index is None else y != int(ignore_index)
    values = plain.reshape(-1).astype(np.float64)
    wy = None
    if w is not None:
        wy = np.where(keep, w[np.where(keep, y, 0)], 0.0)
        with np.errstate(invalid="ignore"):
            values = np.where(wy > 0, wy * values, 0.0)
    if smoothing > 0:
        smooth, _ = _smoothing_and_weighted(batch, None, q_view, (PROB, q_code), temperature,
                                            eps, normalize, w, keep, validate)
        values = _mix(values, smooth / log_base, smoothing, n_cat)
    values = np.where(keep, values, np.nan)
    return values, keep, (keep.sum() if wy is None else wy[keep].sum())


def _soft(plain, views, codes, weight, smoothing, temperature, eps, normalize, log_base,
          validate):
    """Flat per-row values for probability targets (torch's "mean" divides by the rows)."""
    n_cat = views[1].shape[-1]
    w = None if weight is None else check_weight(weight, n_cat)
    values = plain.reshape(-1).astype(np.float64)
    if smoothing == 0 and w is None:
        return values
    smooth, weighted = _smoothing_and_weighted(plain.shape, None if w is None else views[0],
                                               views[1], codes, temperature, eps, normalize, w,
                                               None, validate)
    if weighted is not None:
        values = weighted / log_base
    return _mix(values, smooth / log_base, smoothing, n_cat)


def _finish(values, keep, denominator, batch, ax, ndim, opts, out_kind):
    """Reduction (torch's weighted mean: the sum over `denominator`), keepdims, out=,
    array type."""
    if opts.reduction != "none":
        kept = values if keep is None else values[keep]
        acc = kept.sum(dtype=np.float64)
        if opts.reduction == "mean":
            acc = acc / denominator if denominator else np.nan
        value = values.dtype.type(acc)
        if opts.keepdims:
            value = np.full((1,) * ndim, value, dtype=values.dtype)
        return _arrays.wrap_result(value, out_kind)
    shaped = values.reshape(batch)
    if opts.keepdims:
        shaped = np.expand_dims(shaped, ax)
    return deliver(shaped, opts.out, out_kind)
