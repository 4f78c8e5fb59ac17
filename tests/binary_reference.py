"""mpmath references for the elementwise family (binary KL, BCE, KL estimators).

The inputs are read exactly as stored.  The working precision is 2300 bits,
not 50 digits: 1 - p must be exact for p down to the smallest subnormal
(2^-1074), which 50 digits would round to 1.  The results are then good to
far more than 50 digits.
"""

import mpmath
from mpmath import mpf

from tests.mp_reference import EPS32, EPS64, ulp32, ulp64

__all__ = ["binary_kl", "bce", "estimate", "err_eps", "err_ulp32", "EPS32", "EPS64"]

PREC = 2300


def _pair(x, logits):
    x = mpf(float(x))
    if not logits:
        return x, 1 - x
    if mpmath.isinf(x):
        return (mpf(1), mpf(0)) if x > 0 else (mpf(0), mpf(1))
    return 1 / (1 + mpmath.exp(-x)), 1 / (1 + mpmath.exp(x))


def _xlogxy(x, y):
    if x == 0:
        return mpf(0)
    if y == 0:
        return mpmath.inf
    return x * mpmath.log(x / y)


def _smooth(x, eps):
    return (x + mpf(eps)) / (1 + 2 * mpf(eps)) if eps else x


def binary_kl(p, q, p_logits=False, q_logits=False, eps=0.0):
    with mpmath.workprec(PREC):
        p, pc = _pair(p, p_logits)
        q, qc = _pair(q, q_logits)
        p, pc, q, qc = (_smooth(v, eps) for v in (p, pc, q, qc))
        return +(_xlogxy(p, q) + _xlogxy(pc, qc))


def _neg_xlogy(w, v):
    if w == 0:
        return mpf(0)
    if v == 0:
        return mpmath.inf
    return -w * mpmath.log(v)


def bce(y, q, q_logits=False, eps=0.0):
    with mpmath.workprec(PREC):
        y = mpf(float(y))
        yc = 1 - y
        q, qc = _pair(q, q_logits)
        y, yc, q, qc = (_smooth(v, eps) for v in (y, yc, q, qc))
        return +(_neg_xlogy(y, q) + _neg_xlogy(yc, qc))


def estimate(lp, lq, kind):
    with mpmath.workprec(PREC):
        lp, lq = mpf(float(lp)), mpf(float(lq))
        if mpmath.isinf(lq):
            return mpmath.inf
        lr = lq - lp
        if kind == "k1":
            return -lr
        if kind == "k2":
            return lr * lr / 2
        return mpmath.expm1(lr) - lr


def err_eps(got, ref):
    """|got - ref| / |ref| in float64 eps; where ref is subnormal, in units of its ulp.
    inf/NaN must match exactly (0) or count as inf."""
    got = float(got)
    if mpmath.isinf(ref) or got != got or got in (float("inf"), float("-inf")):
        return 0.0 if got == ref else float("inf")
    diff = abs(mpf(got) - ref)
    if ref == 0:
        return 0.0 if diff == 0 else float("inf")
    if abs(ref) < mpf(2.0) ** -1022:
        return float(diff / ulp64(ref))
    return float(diff / abs(ref) / EPS64)


def err_ulp32(got, ref):
    """|got - ref| in float32 ulps of ref (inf/NaN must match)."""
    got = float(got)
    if mpmath.isinf(ref) or got != got or got in (float("inf"), float("-inf")):
        return 0.0 if got == ref else float("inf")
    return float(abs(mpf(got) - ref) / ulp32(ref))

