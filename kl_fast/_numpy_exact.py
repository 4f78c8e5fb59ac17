"""Error-free transformations for the numpy reference backend.

The compiled kernels correct roundings with FMA residuals; numpy has no FMA, so
the reference backend gets the same exact residuals from Dekker's product (a
Veltkamp split into 26-bit halves) and Knuth's TwoSum.
"""

import numpy as np

__all__ = ["two_diff", "two_prod"]

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
