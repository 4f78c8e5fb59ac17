"""Row kernels for log-probability and logits inputs, numpy reference backend.

Same names, signatures and report protocol as ``src/spaces.pyx``
(read its notes and the formulas in ``src/kl_spaces.h``), written with whole-
array numpy and scipy.special (log_softmax, expm1, log1p): the readable
statement of what the compiled kernels compute, agreeing with them within the
accuracy bound rather than bit for bit.
"""

import numpy as np
from scipy import special

from .exact import expm1mx, two_diff
from .rows import quiet, report_values

__all__ = [
    "kl_space_rows",
    "cross_entropy_space_rows",
    "entropy_space_rows",
    "cross_entropy_label_space_rows",
]

PROB, LOG, LOGITS = 0, 1, 2


def _bad(x, space):
    if space == PROB:
        return ~((x >= 0) & (x < np.inf))
    if space == LOG:
        return ~(x <= 0)
    return np.isnan(x) | (x == np.inf)


def _load(x, space, temperature, normalize):
    """(float64 values in the kernel's space, raw row sums)."""
    x = np.asarray(x, dtype=np.float64)
    raw = x.sum(axis=1)
    if space == LOGITS and temperature != 1.0:
        x = x / temperature
    if space == PROB and normalize:
        x = x / raw[:, None]
    return x, raw


def _check_value(space, x, raw):
    """What the sum check looks at: the sum (prob), the sum of exp (log), or
    the log-sum-exp normalizer's sum (logits; 0 for a row of all -inf)."""
    if space == PROB:
        return raw
    if space == LOG:
        return np.exp(x).sum(axis=1)
    m = x.max(axis=1)
    ok = np.isfinite(m)
    s = np.exp(x - np.where(ok, m, 0.0)[:, None]).sum(axis=1)
    return np.where(ok, s, 0.0)


def _report_checks(report, check, checks):
    """checks = [(arg, space, x, values, raw, tol)]: values first, then sums."""
    if not check:
        return
    report_values(report, [(arg, _bad(values, space)) for arg, space, _, values, _, _ in checks])
    if check != 2 or report[0, 0]:
        return
    best = None
    for arg, space, x, _, raw, tol in checks:
        s = _check_value(space, x, raw)
        bad = ~((s > 0) & (s < np.inf)) if tol < 0 else ~(np.abs(s - 1.0) <= tol)
        rows = np.flatnonzero(bad)
        if rows.size and (best is None or rows[0] < best[0]):
            best = (rows[0], arg)
    if best is not None:
        report[0, 4:6] = best


def _exp_shifted(x, shift):
    """(t, e): t = x - shift and e = exp(x - shift), the subtraction's rounding
    lo (TwoSum) put back as t + lo and exp(t) (1 + lo) (src/kl_spaces.h)."""
    t, lo = two_diff(x, shift)
    return t + lo, np.exp(t) * (1.0 + lo)


def _log_sum_tail(x):
    """(max, log S, S) per row, S = sum exp(x - max), log S = log1p(S - 1) with the
    maximum's exact ones counted apart (peaked rows keep their tails' digits)."""
    mx = x.max(axis=1)
    safe = np.where(np.isfinite(mx), mx, 0.0)
    t, e = _exp_shifted(x, safe[:, None])
    top = x == mx[:, None]
    sm1 = (top.sum(axis=1) - 1.0) + np.where(top, 0.0, e).sum(axis=1)
    return mx, t, e, np.log1p(sm1), 1.0 + sm1


def _log_weights(x, space):
    """(weights p, log p) of rows in `space`."""
    if space == PROB:
        return x, np.log(x)
    if space == LOG:
        return np.exp(x), x
    # exp(x - max) with the subtraction's rounding put back, over its sum: a peaked
    # row's tail keeps its digits (exp(log_softmax(x)) carries eps |log p| into each)
    _, t, e, l1p, total = _log_sum_tail(x)
    return e / total[:, None], t - l1p[:, None]


def _kl(x, y, pspace, qspace, diff=None):
    w, lp = _log_weights(x, pspace)
    on = w > 0
    if qspace != LOGITS:
        lq = np.log(y) if qspace == PROB else y
        return np.where(on, w * (lp - lq), 0.0).sum(axis=1)
    # q in logits: KL = E_p[c] + log(E_p[exp(-c)] + R), c = d - E_p[d] (src/kl_spaces.h):
    # d = (xu - y) - (top - my), shifted by the rows' maxima and kept as hi + lo, so that
    # rows of +-1e4 logits and the tails of peaked rows keep their digits
    xu = x if pspace == LOGITS else lp
    if pspace == LOGITS:
        top, _, _, l1p, _ = _log_sum_tail(x)
    else:
        top, l1p = np.zeros(x.shape[0]), np.zeros(x.shape[0])
    my = y.max(axis=1)
    sh, sl = two_diff(top, my)
    sh = np.where(np.isfinite(sh), sh, 0.0)[:, None]
    t, e = two_diff(xu, y) if diff is None else two_diff(diff, 0.0)
    u, f = two_diff(t, sh)
    v = (e + f) - sl[:, None]
    d = u + v
    _, dlo = two_diff(u, -v)
    d = np.where(on, d, 0.0)
    s = (w * d).sum(axis=1) / np.where(on, w, 0.0).sum(axis=1)
    c, cl = two_diff(d, s[:, None])
    c, cl = np.where(on, c, 0.0), np.where(on, cl + dlo, 0.0)
    fm = expm1mx(-c)
    s1 = np.where(on, w * (fm - cl * (fm - c)), 0.0).sum(axis=1)   # expm1mx(-(c + cl))
    s2 = np.where(on, w * (c + cl), 0.0).sum(axis=1)
    rest = np.where(on, 0.0, np.exp((y - my[:, None]) + (s - l1p)[:, None])).sum(axis=1)
    kl = s2 + np.log1p(s1 - s2 + rest)
    infinite = (on & (y == -np.inf)).any(axis=1)
    far = ~np.isfinite(kl) & ~infinite
    if far.any():
        lq = special.log_softmax(y[far], axis=1)
        kl[far] = np.where(on[far], w[far] * (lp[far] - lq), 0.0).sum(axis=1)
    kl[infinite] = np.inf
    return kl


def _finish(out, value, log_base, clamp):
    if clamp:
        value = np.where(value < 0, 0.0, value)
    out[...] = value / log_base


@quiet
def kl_space_rows(p, q, out, report, check, tol_p, tol_q, p_space, q_space, temperature,
                  norm_p, norm_q, log_base, n_threads):
    """out[i] = KL(p[i] || q[i]) / log_base for inputs in the given spaces."""
    if p.shape[0] == 0 or p.shape[1] == 0:
        return
    x, raw_p = _load(p, p_space, temperature, norm_p)
    y, raw_q = _load(q, q_space, temperature, norm_q)
    _report_checks(report, check, [(0, p_space, x, np.asarray(p, np.float64), raw_p, tol_p),
                                   (1, q_space, y, np.asarray(q, np.float64), raw_q, tol_q)])
    diff = None
    if p_space == q_space == LOGITS and temperature != 1.0:
        diff = (np.asarray(p, np.float64) - np.asarray(q, np.float64)) / temperature
    _finish(out, _kl(x, y, p_space, q_space, diff), log_base, True)


@quiet
def cross_entropy_space_rows(p, q, out, report, check, tol_p, tol_q, q_space, temperature,
                             norm_p, log_base, n_threads):
    """out[i] = -sum_j p log q / log_base, q as log-probabilities or logits."""
    if p.shape[0] == 0 or p.shape[1] == 0:
        return
    x, raw_p = _load(p, PROB, temperature, norm_p)
    y, raw_q = _load(q, q_space, temperature, False)
    _report_checks(report, check, [(0, PROB, x, np.asarray(p, np.float64), raw_p, tol_p),
                                   (1, q_space, y, np.asarray(q, np.float64), raw_q, tol_q)])
    if q_space == LOGITS:
        # CE = (sum p) log S - sum p (y - max): two non-negative parts
        _, t, _, log_s, _ = _log_sum_tail(y)
        value = x.sum(axis=1) * log_s - np.where(x == 0, 0.0, x * t).sum(axis=1)
    else:
        value = np.where(x == 0, 0.0, -x * y).sum(axis=1)
    _finish(out, value, log_base, False)


@quiet
def entropy_space_rows(p, out, report, check, tol_p, space, temperature, log_base, n_threads):
    """out[i] = -sum_j p log p / log_base, p as log-probabilities or logits."""
    if p.shape[0] == 0 or p.shape[1] == 0:
        return
    x, raw = _load(p, space, temperature, False)
    _report_checks(report, check, [(0, space, x, np.asarray(p, np.float64), raw, tol_p)])
    if space == LOGITS:
        # H = log S - E[x - max]: two non-negative parts, no cancellation
        _, t, e, log_s, s = _log_sum_tail(x)
        value = log_s - np.where(e == 0, 0.0, e * t).sum(axis=1) / s
    else:
        w, lp = _log_weights(x, space)
        value = np.where(w == 0, 0.0, -w * lp).sum(axis=1)
    _finish(out, value, log_base, False)


@quiet
def cross_entropy_label_space_rows(labels, q, out, report, check, q_space, temperature,
                                   ignore_index, has_ignore, log_base, n_threads):
    """out[i] = -log softmax(q[i])[labels[i]] (logits) or -q[i, labels[i]] (log), / log_base."""
    n_rows, n = q.shape
    if n_rows == 0 or n == 0:
        return
    labels = np.asarray(labels, dtype=np.int64)
    ignored = (labels == ignore_index) if has_ignore else np.zeros(n_rows, bool)
    outside = ~ignored & ((labels < 0) | (labels >= n))
    if outside.any():
        report[0, 0] += int(outside.sum())
        report[0, 1:4] = (int(np.flatnonzero(outside)[0]), 0, 0)
    y, _ = _load(q, q_space, temperature, False)
    picked = np.where(ignored | outside, 0, labels)
    rows = np.arange(n_rows)
    if q_space == LOGITS:
        # -log softmax(y)[c] = log1p(sum_{k != c} exp(y_k - y_c)): the tail itself
        yc = y[rows, picked]
        _, e = _exp_shifted(y, yc[:, None])
        e[rows, picked] = 0.0
        tail = e.sum(axis=1)
        lsm = -special.log_softmax(y, axis=1)[rows, picked]
        minus_lq = np.where(tail < 1e300, np.log1p(tail), lsm)
    else:
        minus_lq = -y[rows, picked]
    value = np.where(ignored | outside, np.nan, minus_lq)
    if check and not outside.any():
        if q_space == LOGITS:
            bad = _bad(np.asarray(q, np.float64), LOGITS) & ~(ignored)[:, None]
            report_values(report, [(1, bad)])
            if report[0, 0] == 0:
                s = _check_value(LOGITS, y, None)
                none = np.flatnonzero(~(s > 0) & ~ignored)
                if none.size:
                    report[0, 4:6] = (none[0], 1)
        else:
            bad = np.zeros(q.shape, bool)
            ok = ~ignored
            bad[rows[ok], picked[ok]] = _bad(y[rows[ok], picked[ok]], LOG)
            report_values(report, [(1, bad)])
    out[...] = value / log_base
