"""Elementwise kernels written with plain numpy: the reference backend of
binary KL, binary cross-entropy and the KL estimators.

Same entry point and report protocol as ``src/elementwise.pyx``, but
an independent code path: whole-array numpy with np.log1p / np.expm1 and
power series in t = p/q - 1 instead of the compiled kernels' atanh series
and vector log.  It agrees with them within the accuracy bound, not bit for
bit.
"""

import numpy as np

from .exact import expm1mx, two_diff, two_prod

__all__ = ["binary_elementwise"]

# sum_{n >= 2} (-1)^n t^n / (n (n - 1)) = (1 + t) log1p(t) - t, for |t| <= 1/2
_F_COEF = np.array([(-1.0) ** n / (n * (n - 1)) for n in range(2, 62)])


def _horner(coef, x):
    acc = np.full_like(x, coef[-1])
    for c in coef[-2::-1]:
        acc = acc * x + c
    return acc


def _bregman(d, x, y, lx0, ly0, ylim):
    """x log(x/y) - d with d = x - y accurate: y f(t), f(t) = (1 + t) log1p(t) - t.
    ly0 is log y where y < ylim (a sigmoid that underflowed or went subnormal), else -inf."""
    t = d / y
    band = np.abs(t) <= 0.5
    tb = np.where(band, t, 0.0)
    near = y * (tb * tb * _horner(_F_COEF, tb))
    r = x / y
    small = y < ylim
    ok = (r > 0) & (r < np.inf) & ~small
    lr = np.where(ok, np.log(np.where(ok, r, 1.0)),
                  np.log(x) - np.where(small, ly0, np.log(y)))
    # x log(x/y) = x log r + (x - r y): the rounding of r corrected by its exact
    # residual, as the compiled kernels' fma does (src/kl_binary.h)
    ry, ry_err = two_prod(r, y)
    e = np.where(ok, (x - ry) - ry_err, 0.0)
    far = (x * lr + e) - d
    out = np.where(band, near, far)
    t0 = np.where((y == 0) & (ly0 == -np.inf) & (lx0 > -np.inf), np.inf, y)
    return np.where(x == 0, t0, out)


def _pair(a, logits):
    """(p, 1 - p) of probabilities, or of logits by the sigmoid (exp(-|a|) never
    overflows), and the log of the one that is 0 (-|a| where a sigmoid underflowed)."""
    if not logits:
        return a, 1.0 - a, np.full_like(a, -np.inf)
    e = np.exp(-np.abs(a))
    big, small = 1.0 / (1.0 + e), e / (1.0 + e)
    return np.where(a >= 0, big, small), np.where(a >= 0, small, big), -np.abs(a)


def _binary_kl(a, b, p_logits, q_logits, eps):
    p, pc, lp0 = _pair(a, p_logits)
    q, qc, lq0 = _pair(b, q_logits)
    d = np.where(p + q <= 1, p - q, qc - pc)
    if p_logits and q_logits:
        delta = a - b
        d = np.where(np.abs(delta) <= 1, q * pc * np.expm1(delta), d)
    if eps > 0:
        den = 1.0 + 2.0 * eps
        p, pc, q, qc, d = ((p + eps) / den, (pc + eps) / den, (q + eps) / den,
                           (qc + eps) / den, d / den)
    lim = np.finfo(np.float64).tiny if (q_logits and eps == 0) else 5e-324
    t = _bregman(d, p, q, lp0, lq0, lim) + _bregman(-d, pc, qc, lp0, lq0, lim)
    if p_logits and q_logits and eps == 0:
        # two logits within 2: log1p(v expm1mx(-u e) + u expm1mx(v e)), u = sigmoid(-|a|),
        # v = 1 - u, e = sign(a) (a - b): nothing cancels (src/kl_binary.h)
        near = np.abs(delta) <= 2.0
        u, v = np.where(a >= 0, pc, p), np.where(a >= 0, p, pc)
        e = np.where(near, np.where(a >= 0, delta, -delta), 0.0)
        t = np.where(near, np.log1p(v * expm1mx(-(u * e)) + u * expm1mx(v * e)), t)
    return np.maximum(t, 0.0)


def _neg_wlog(w, log_v):
    """-w log v with 0 log 0 = 0."""
    return np.where(w == 0, 0.0, -w * log_v)


def _bce(y, b, q_logits, eps):
    yc = 1.0 - y
    if q_logits and eps == 0:
        ax = np.abs(b)
        w = np.where(b >= 0, yc, y)
        return np.where(w == 0, 0.0, w * ax) + np.log1p(np.exp(-ax))
    if eps == 0:
        return _neg_wlog(y, np.log(b)) + _neg_wlog(yc, np.log1p(-b))
    # smoothed: both logs from the smaller of (q, 1 - q), the other being 1 - it
    q, qc, _ = _pair(b, q_logits)
    small_is_q = (b < 0) if q_logits else (b <= 0.5)
    den = 1.0 + 2.0 * eps
    small = (np.where(small_is_q, q, qc) + eps) / den
    ls, lb = np.log(small), np.log1p(-small)
    return (_neg_wlog((y + eps) / den, np.where(small_is_q, ls, lb))
            + _neg_wlog((yc + eps) / den, np.where(small_is_q, lb, ls)))


def _estimate(lp, lq, kind):
    lr, dlr = two_diff(lq, lp)
    if kind == 12:
        return -lr
    if kind == 13:
        return 0.5 * lr * lr
    k3 = expm1mx(lr)
    # the rounding of lq - lp (TwoSum residual dlr), put back to first order through
    # d k3 / d lr = expm1(lr): for lr ~ 17 it alone is ~8 eps (as the compiled kernels do)
    return k3 + np.where(dlr != 0.0, np.expm1(lr) * dlr, 0.0)


def _bad(x, rule):
    if rule == "prob":
        return ~((x >= 0) & (x <= 1))
    if rule == "nan":
        return np.isnan(x)
    if rule == "finite":
        return ~np.isfinite(x)
    return np.isnan(x) | (x == np.inf)     # "logq"


def _rules(op):
    if op < 8:
        return ("nan" if op & 2 else "prob"), ("nan" if op & 1 else "prob")
    if op < 12:
        return "prob", ("nan" if op >= 10 else "prob")
    return "finite", "logq"


def binary_elementwise(a, b, out, report, op, eps, log_base, n_threads):
    """out[i, j] = op(a[i, j], b[i, j]) / log_base; invalid values counted in `report`."""
    if a.size == 0:
        return
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    with np.errstate(all="ignore"):
        if op < 8:
            r = _binary_kl(x, y, bool(op & 2), bool(op & 1), eps if op >= 4 else 0.0)
        elif op < 12:
            r = _bce(x, y, op >= 10, eps if op in (9, 11) else 0.0)
        else:
            r = _estimate(x, y, op)
        if log_base != 1.0:
            r = r / log_base
    out[...] = r
    rule_a, rule_b = _rules(op)
    bad_a, bad_b = _bad(x, rule_a), _bad(y, rule_b)
    n_bad = int(bad_a.sum() + bad_b.sum())
    if n_bad:
        report[0, 0] += n_bad
        # first in C order; at the same element the first argument wins
        flat = np.flatnonzero((bad_a | bad_b).ravel())[0]
        i, j = divmod(int(flat), x.shape[1])
        report[0, 1:4] = (i, j, 0 if bad_a[i, j] else 1)
