"""Mutual information of joint probability tables, numpy reference backend.

The kernel contract of ``src/mutual_information.pyx`` by an
independent, whole-array path.  For nearly independent tables the terms
cancel, and rounding the marginals to double would cost ~eps absolute, so
(as in the compiled kernels) the marginals are double-double sums, the
product a_i b_j is qh + ql with its exact residual, and the rounding of
r = J / qh is corrected: J log(J / q) = J log r + (J - r q), with the error-free
products of ``_numpy.exact`` in place of the compiled kernels' FMAs.  The
terms are summed by numpy's pairwise sum.
"""

import numpy as np

from .exact import two_prod


def _dd_sum(x, axis):
    """(hi, lo): the sum of `x` along `axis` (in order) as a double-double (TwoSum)."""
    x = np.moveaxis(x, axis, 0)
    hi = np.zeros(x.shape[1:])
    lo = np.zeros(x.shape[1:])
    for v in x:
        s = hi + v
        bv = s - hi
        lo += (hi - (s - bv)) + (v - bv)
        hi = s
    return hi, lo

__all__ = ["mutual_information_kernel"]


def mutual_information_kernel(joint, out, sums, info, check, eps, transform, log_base,
                              n_threads):
    """See ``kl_fast._cython.mutual_information.mutual_information_kernel``."""
    n, nx, ny = joint.shape
    if n == 0:
        return
    j3 = np.asarray(joint, dtype=np.float64)
    with np.errstate(all="ignore"):
        sums[:] = j3.reshape(n, nx * ny).sum(axis=1)
        if check:
            bad = ~((j3 >= 0.0) & (j3 != np.inf))
            flat = bad.reshape(n, nx * ny)
            hit = flat.any(axis=1)
            first = flat[hit].argmax(axis=1)
            info[hit] = np.column_stack([np.ones_like(first), first // ny, first % ny])
        if transform:
            j3 = (j3 + eps) / (sums + nx * ny * eps)[:, None, None]
        ah, al = _dd_sum(j3, 2)
        bh, bl = _dd_sum(j3, 1)
        qh, q_err = two_prod(ah[:, :, None], bh[:, None, :])
        ql = q_err + (ah[:, :, None] * bl[:, None, :] + al[:, :, None] * bh[:, None, :])
        ok = qh >= np.finfo(np.float64).tiny
        r = j3 / np.where(ok, qh, 1.0)
        rq, rq_err = two_prod(r, qh)
        e = ((j3 - rq) - rq_err) - r * ql
        good = ok & (r > 0) & (r < np.inf)
        terms = np.where(good, j3 * np.log(np.where(good, r, 1.0)) + e, 0.0)
        # a_i b_j underflows where marginals are tiny: take the logs apart there; negative
        # or non-finite entries (validate=False garbage) give what the plain form gives
        rest = (j3 != 0.0) & ~good
        if rest.any():
            logs = np.log(j3) - np.log(ah)[:, :, None] - np.log(bh)[:, None, :]
            plain = np.where(j3 < 0, np.inf, j3 * logs)
            terms = np.where(rest, plain, terms)
        mi = terms.sum(axis=(1, 2))
        # rel_entr gives inf for negative entries (validate=False garbage): keep NaN/inf as is
        out[:] = np.where(mi < 0.0, 0.0, mi) / log_base
