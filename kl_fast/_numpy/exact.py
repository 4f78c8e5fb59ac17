"""Exact residuals and cancellation-free pieces for the numpy reference backend.

The compiled kernels correct roundings with FMA residuals; numpy has no FMA, so
the reference backend gets the same exact residuals from Dekker's product (a
Veltkamp split into 26-bit halves) and Knuth's TwoSum.  ``expm1mx`` is the
series every numpy module uses where expm1(x) - x would cancel.
"""

import math

import numpy as np

__all__ = ["expm1mx", "two_diff", "two_prod"]

# 1/n! for n = 2 .. 23: expm1(x) - x = x^2 sum_n x^(n-2) / n!, to double precision on |x| <= 1
_INV_FACT = [1.0 / math.factorial(n) for n in range(2, 24)]

_SPLITTER = 134217729.0   # 2^27 + 1


def two_diff(a, b):
    """(t, err): t = a - b rounded and its exact rounding error, err 0 where not finite."""
    t = a - b
    bv = t - a
    err = (a - (t - bv)) + (-b - bv)
    return t, np.where(np.isfinite(err), err, 0.0)


def _split(a):
    c = _SPLITTER * a
    hi = c - (c - a)
    return hi, a - hi


def two_prod(a, b):
    """(p, err): p = a * b rounded and its exact rounding error (|a|, |b| < 2^995),
    err 0 where not finite."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    err = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, np.where(np.isfinite(err), err, 0.0)


def expm1mx(x):
    """expm1(x) - x without cancellation: the Taylor series on |x| <= 1, expm1(x) - x
    beyond (inf for x > ~709, no warning)."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) <= 1.0
    xs = np.where(small, x, 0.0)
    poly = np.full_like(xs, _INV_FACT[-1])
    for c in _INV_FACT[-2::-1]:
        poly = poly * xs + c
    with np.errstate(over="ignore", invalid="ignore"):
        far = np.expm1(x) - x
    return np.where(small, xs * xs * poly, far)
