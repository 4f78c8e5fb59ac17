"""KL divergence between full-covariance Gaussians, numpy reference backend.

The kernel contract of ``src/gaussian_full.pyx`` by an independent
path: LAPACK (np.linalg.cholesky, np.linalg.solve) and the eigenvalues of
E = L2^{-1} (cov1 - cov2) L2^{-T}, with 2 KL = sum_i (lam_i - log1p(lam_i))
+ |z|^2 taken through the stable u - 1 - log u of the diagonal Gaussian
reference; items with an eigenvalue below -1/2 (cov1 much smaller than
cov2 in some direction) use M = L2^{-1} L1 directly, as the compiled kernels
do.  Slow and simple; for tests and as the fallback.
"""

import numpy as np

from .rows import u_minus_1_minus_log_u

__all__ = ["gaussian_full_kernel"]

OK, NOT_PD, NOT_SYMMETRIC, NOT_FINITE = 0, 1, 2, 3
A_MU1, A_COV1, A_MU2, A_COV2 = 0, 1, 2, 3


def _first_bad_pivot(a):
    """The first pivot <= 0 (or NaN) of the lower Cholesky factorization of `a`, or -1."""
    a = np.tril(np.array(a, dtype=np.float64))
    k = a.shape[0]
    for j in range(k):
        s = a[j, j] - np.dot(a[j, :j], a[j, :j])
        if not s > 0.0:
            return j
        a[j, j] = np.sqrt(s)
        a[j + 1:, j] = (a[j + 1:, j] - a[j + 1:, :j] @ a[j, :j]) / a[j, j]
    return -1


def _cholesky(c, info, arg, todo):
    """Lower Cholesky factors of c[todo]; items that are not positive definite get
    NOT_PD in `info` and drop out of `todo`."""
    with np.errstate(all="ignore"):
        try:
            return np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            pass
        out = np.full_like(c, np.nan)
        for t in np.flatnonzero(todo):
            piv = _first_bad_pivot(c[t])
            if piv >= 0:
                info[t] = (NOT_PD, piv, arg)
                todo[t] = False
            else:
                out[t] = np.linalg.cholesky(c[t])
        return out


def _check(mu, cov, arg_mu, arg_cov, info, todo, sym_tol):
    """Mark the first non-finite mean / non-finite or asymmetric covariance per item."""
    n, k = mu.shape
    bad = ~np.isfinite(mu)
    hit = todo & bad.any(axis=1)
    info[hit] = np.column_stack([np.full(hit.sum(), NOT_FINITE), bad[hit].argmax(axis=1),
                                 np.full(hit.sum(), arg_mu)])
    todo &= ~hit
    flat = cov.reshape(n, k * k)
    bad = ~np.isfinite(flat)
    hit = todo & bad.any(axis=1)
    info[hit] = np.column_stack([np.full(hit.sum(), NOT_FINITE), bad[hit].argmax(axis=1),
                                 np.full(hit.sum(), arg_cov)])
    todo &= ~hit
    with np.errstate(invalid="ignore"):
        big = np.abs(flat).max(axis=1, initial=0.0)
        lower = np.tril(np.ones((k, k), dtype=bool), -1).reshape(k * k)
        asym = (np.abs(cov - np.swapaxes(cov, -1, -2)).reshape(n, k * k)
                > (sym_tol * big)[:, None]) & lower
    hit = todo & asym.any(axis=1)
    info[hit] = np.column_stack([np.full(hit.sum(), NOT_SYMMETRIC), asym[hit].argmax(axis=1),
                                 np.full(hit.sum(), arg_cov)])
    todo &= ~hit


def _sym_lower(c):
    """The symmetric matrix of c's lower triangle (what Cholesky reads)."""
    low = np.tril(c)
    return low + np.swapaxes(np.tril(c, -1), -1, -2)


def gaussian_full_kernel(mu1, cov1, mu2, cov2, out, info, prior, check, sym_tol, log_base,
                         n_threads):
    """See ``kl_fast._cython.gaussian_full.gaussian_full_kernel``."""
    n, k = mu1.shape
    if n == 0:
        return
    if k == 0:   # zero-dimensional Gaussians: nothing differs
        out[:] = 0.0
        return
    mu1 = np.asarray(mu1, dtype=np.float64)
    cov1 = np.asarray(cov1, dtype=np.float64)
    if prior:
        mu2 = np.zeros_like(mu1)
        cov2 = np.broadcast_to(np.eye(k), cov1.shape)
    mu2 = np.asarray(mu2, dtype=np.float64)
    cov2 = np.asarray(cov2, dtype=np.float64)
    todo = np.ones(n, dtype=bool)
    if check:
        _check(mu1, cov1, A_MU1, A_COV1, info, todo, sym_tol)
        if not prior:
            _check(mu2, cov2, A_MU2, A_COV2, info, todo, sym_tol)
    result = np.full(n, np.nan)
    with np.errstate(all="ignore"):
        safe = np.where(todo[:, None, None], cov2, np.eye(k))
        l2 = _cholesky(safe, info, A_COV2, todo)
        l2 = np.where(todo[:, None, None], l2, np.eye(k))
        z = np.linalg.solve(l2, (mu2 - mu1)[..., None])[..., 0]
        zz = np.where(todo, (z * z).sum(axis=1), np.nan)
        d = np.where(todo[:, None, None], _sym_lower(cov1) - _sym_lower(cov2), 0.0)
        y = np.linalg.solve(l2, d)
        e = np.linalg.solve(l2, np.swapaxes(y, -1, -2))
        e = 0.5 * (e + np.swapaxes(e, -1, -2))
        finite = np.isfinite(e).all(axis=(1, 2))   # NaN/inf input (validate=False): NaN
        lam = np.linalg.eigvalsh(np.where(finite[:, None, None], e, 0.0))
        near = todo & finite & (lam.min(axis=1, initial=0.0) >= -0.5)
        terms = u_minus_1_minus_log_u(lam, np.log1p(lam)).sum(axis=1)
        result[near] = terms[near] + zz[near]
        far = todo & finite & ~near
        if far.any():
            c1 = cov1[far]
            sub = np.ones(c1.shape[0], dtype=bool)
            sub_info = np.zeros((c1.shape[0], 3), dtype=np.int64)
            l1 = _cholesky(c1, sub_info, A_COV1, sub)
            info[far] = np.where(sub[:, None], info[far], sub_info)
            l1 = np.where(sub[:, None, None], l1, np.eye(k))
            m = np.tril(np.linalg.solve(l2[far], l1))
            dg = np.diagonal(m, axis1=-2, axis2=-1)
            off = (m * m).sum(axis=(1, 2)) - (dg * dg).sum(axis=1)
            g = u_minus_1_minus_log_u((dg - 1.0) * (dg + 1.0), 2.0 * np.log(dg)).sum(axis=1)
            result[far] = np.where(sub, off + g + zz[far], np.nan)
        r = 0.5 * result / log_base
        out[:] = np.where(r < 0.0, 0.0, r)
