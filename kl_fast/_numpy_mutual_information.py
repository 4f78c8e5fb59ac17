"""Mutual information of joint probability tables, numpy reference backend.

The kernel contract of ``src/_mutual_information_cython.pyx`` by an
independent, plain path: marginals by ``.sum``, the terms by
``scipy.special.rel_entr(J, outer(a, b))``.  Accurate for tables that are
far from independent; for nearly independent ones the rounding of the
marginals limits it to ~eps absolute (the compiled kernels carry the
marginals in double-double).
"""

import numpy as np
from scipy import special

__all__ = ["mutual_information_kernel"]


def mutual_information_kernel(joint, out, sums, info, check, eps, transform, log_base,
                              n_threads):
    """See ``kl_fast._mutual_information_cython.mutual_information_kernel``."""
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
        a = j3.sum(axis=2)
        b = j3.sum(axis=1)
        outer = a[:, :, None] * b[:, None, :]
        terms = special.rel_entr(j3, outer)
        # a_i b_j can underflow to 0 where J_ij > 0 (tiny marginals): take logs apart there
        under = (outer == 0.0) & (j3 > 0.0)
        if under.any():
            logs = np.log(j3) - np.log(a)[:, :, None] - np.log(b)[:, None, :]
            terms = np.where(under, j3 * logs, terms)
        mi = terms.sum(axis=(1, 2))
        # rel_entr gives inf for negative entries (validate=False garbage): keep NaN/inf as is
        out[:] = np.where(mi < 0.0, 0.0, mi) / log_base
