"""KL divergence between full-covariance Gaussians, Numba backend.

A line-by-line mirror of ``src/gaussian_full.pyx`` (read its design
notes for the numerics): same loops, same operation order, the same vector
log/log1p and log1pmx forms (``_numba.kl_math``), so both backends return the
same bits.  Compiled lazily on first use, for one signature per dtype
(readonly 'A' arrays: any layout reuses the machine code), through numba's
disk cache (``_numba.cache``).
"""

import numba
import numpy as np

from . import kl_math as m
from .cache import compile_kernel, register_source
from .rows import compile_once

register_source(__file__)
register_source(m.__file__)

__all__ = ["gaussian_full_kernel", "compiled"]

# info codes and argument numbers (those of the Cython kernel)
OK, NOT_PD, NOT_SYMMETRIC, NOT_FINITE = 0, 1, 2, 3
A_MU1, A_COV1, A_MU2, A_COV2 = 0, 1, 2, 3



# -- compiled code (module level, so that numba caches it on disk) ---------------------

inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
prange = numba.prange


@inline
def dot(a, oa, sa, b, ob, sb, n):
    """sum_p a[oa + p sa] b[ob + p sb]: the Cython _dot's 8 accumulators and tree."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    p = 0
    while p + 8 <= n:
        s0 = s0 + a[oa + p * sa] * b[ob + p * sb]
        s1 = s1 + a[oa + (p + 1) * sa] * b[ob + (p + 1) * sb]
        s2 = s2 + a[oa + (p + 2) * sa] * b[ob + (p + 2) * sb]
        s3 = s3 + a[oa + (p + 3) * sa] * b[ob + (p + 3) * sb]
        s4 = s4 + a[oa + (p + 4) * sa] * b[ob + (p + 4) * sb]
        s5 = s5 + a[oa + (p + 5) * sa] * b[ob + (p + 5) * sb]
        s6 = s6 + a[oa + (p + 6) * sa] * b[ob + (p + 6) * sb]
        s7 = s7 + a[oa + (p + 7) * sa] * b[ob + (p + 7) * sb]
        p += 8
    while p < n:
        s0 = s0 + a[oa + p * sa] * b[ob + p * sb]
        p += 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@inline
def finite(x):
    return x - x == 0.0


@inline
def cov_at(c, t, i, j, ident):
    if ident:
        return 1.0 if i == j else 0.0
    return np.float64(c[t, i, j])


@inline
def check_cov(c, t, k, sym_tol):
    """(code, index) of cov item t's first non-finite or asymmetric entry."""
    big = 0.0
    for i in range(k):
        for j in range(k):
            x = np.float64(c[t, i, j])
            if not finite(x):
                return NOT_FINITE, i * k + j
            big = max(big, abs(x))
    for i in range(k):
        for j in range(i):
            if abs(np.float64(c[t, i, j]) - np.float64(c[t, j, i])) > sym_tol * big:
                return NOT_SYMMETRIC, i * k + j
    return OK, 0


@inline
def cholesky(a, k):
    """In-place lower Cholesky of flat row-major a; -1 or the first bad pivot."""
    for j in range(k):
        s = a[j * k + j] - dot(a, j * k, 1, a, j * k, 1, j)
        if not (s > 0.0):
            return j
        s = np.sqrt(s)
        a[j * k + j] = s
        for i in range(j + 1, k):
            x = a[i * k + j] - dot(a, i * k, 1, a, j * k, 1, j)
            a[i * k + j] = x / s
    return -1


@inline
def direct(cov1, t, k, l2, mm, total, info):
    """2 KL by M = L2^{-1} chol(cov1); `total` holds |z|^2."""
    for i in range(k):
        for j in range(i + 1):
            mm[i * k + j] = np.float64(cov1[t, i, j])
    piv = cholesky(mm, k)
    if piv >= 0:
        info[t, 0] = NOT_PD
        info[t, 1] = piv
        info[t, 2] = A_COV1
        return np.nan
    for j in range(k):
        for i in range(j, k):
            x = mm[i * k + j] - dot(l2, i * k + j, 1, mm, j * k + j, k, i - j)
            mm[i * k + j] = x / l2[i * k + i]
    for i in range(k):
        for j in range(i):
            total = total + mm[i * k + j] * mm[i * k + j]
        d = mm[i * k + i]
        total = total + m.vu_minus_1_minus_log_u((d - 1.0) * (d + 1.0), 2.0 * m.vlog(d))
    return total


@inline
def item(mu1, cov1, mu2, cov2, t, k, prior, check, sym_tol, l2, y, e, v, info):
    if check:
        for i in range(k):
            if not finite(np.float64(mu1[t, i])):
                info[t, 0] = NOT_FINITE
                info[t, 1] = i
                info[t, 2] = A_MU1
                return np.nan
        code, index = check_cov(cov1, t, k, sym_tol)
        if code != OK:
            info[t, 0] = code
            info[t, 1] = index
            info[t, 2] = A_COV1
            return np.nan
        if not prior:
            for i in range(k):
                if not finite(np.float64(mu2[t, i])):
                    info[t, 0] = NOT_FINITE
                    info[t, 1] = i
                    info[t, 2] = A_MU2
                    return np.nan
            code, index = check_cov(cov2, t, k, sym_tol)
            if code != OK:
                info[t, 0] = code
                info[t, 1] = index
                info[t, 2] = A_COV2
                return np.nan
    for i in range(k):
        for j in range(i + 1):
            l2[i * k + j] = cov_at(cov2, t, i, j, prior)
    piv = cholesky(l2, k)
    if piv >= 0:
        info[t, 0] = NOT_PD
        info[t, 1] = piv
        info[t, 2] = A_COV2
        return np.nan
    total = 0.0
    for i in range(k):
        x = (0.0 if prior else np.float64(mu2[t, i])) - np.float64(mu1[t, i])
        x = x - dot(l2, i * k, 1, v, 0, 1, i)
        v[i] = x / l2[i * k + i]
        total = total + v[i] * v[i]
    for j in range(k):
        for i in range(k):
            if i >= j:
                x = np.float64(cov1[t, i, j]) - cov_at(cov2, t, i, j, prior)
            else:
                x = np.float64(cov1[t, j, i]) - cov_at(cov2, t, j, i, prior)
            x = x - dot(l2, i * k, 1, y, j * k, 1, i)
            y[j * k + i] = x / l2[i * k + i]
    for j in range(k):
        for i in range(j, k):
            x = y[i * k + j]
            x = x - dot(l2, i * k, 1, e, j * k, 1, j)
            x = x - dot(l2, i * k + j, 1, e, j * k + j, k, i - j)
            e[i * k + j] = x / l2[i * k + i]
    zz = total
    for j in range(k):
        x = e[j * k + j] - dot(e, j * k, 1, e, j * k, 1, j)
        if not (x >= -0.5):
            return direct(cov1, t, k, l2, y, zz, info)
        w = np.sqrt(1.0 + x)
        total = total + m.vu_minus_1_minus_log_u(x, m.vlog1p(x))
        for i in range(j + 1, k):
            s = e[i * k + j] - dot(e, i * k, 1, e, j * k, 1, j)
            s = s / w
            e[i * k + j] = s
            total = total + s * s
    return total


@inline
def chunk(mu1, cov1, mu2, cov2, out, info, prior, check, sym_tol, log_base, lo, hi):
    k = mu1.shape[1]
    work = np.empty(3 * k * k + k + 1)
    l2 = work[:k * k]
    y = work[k * k:2 * k * k]
    e = work[2 * k * k:3 * k * k]
    v = work[3 * k * k:]
    for t in range(lo, hi):
        r = item(mu1, cov1, mu2, cov2, t, k, prior, check, sym_tol, l2, y, e, v, info)
        r = 0.5 * r / log_base
        out[t] = 0.0 if r < 0.0 else r


def serial(mu1, cov1, mu2, cov2, out, info, prior, check, sym_tol, log_base, n_chunks):
    chunk(mu1, cov1, mu2, cov2, out, info, prior, check, sym_tol, log_base, 0, out.shape[0])


def parallel(mu1, cov1, mu2, cov2, out, info, prior, check, sym_tol, log_base, n_chunks):
    n = out.shape[0]
    for c in prange(n_chunks):
        chunk(mu1, cov1, mu2, cov2, out, info, prior, check, sym_tol, log_base,
              c * n // n_chunks, (c + 1) * n // n_chunks)


_DRIVERS = {"serial": serial, "parallel": parallel}


def _kernel(variant, dtype):
    def build():
        t = numba.types
        fl = t.float64 if dtype == "float64" else t.float32
        mu = t.Array(fl, 2, "A", readonly=True)
        cov = t.Array(fl, 3, "A", readonly=True)
        sig = t.void(mu, cov, mu, cov, t.Array(fl, 1, "C"), t.Array(t.int64, 2, "C"),
                     t.boolean, t.int64, t.float64, t.float64, t.int64)
        return compile_kernel(_DRIVERS[variant], sig, parallel=variant == "parallel")

    return compile_once((__name__, variant, dtype), build)


def compiled(variant, dtype):
    """The compiled driver ("serial" or "parallel"), as a first call would get it."""
    return _kernel(variant, dtype)


def gaussian_full_kernel(mu1, cov1, mu2, cov2, out, info, prior, check, sym_tol, log_base,
                         n_threads):
    """The Cython kernel's contract (``kl_fast._cython.gaussian_full``)."""
    from .rows import call_parallel

    n = out.shape[0]
    if n == 0:
        return
    dtype = "float32" if out.dtype == np.float32 else "float64"
    n_chunks = max(1, min(int(n_threads), n))
    args = (mu1, cov1, mu2, cov2, out, info, bool(prior), int(check), float(sym_tol),
            float(log_base), n_chunks)
    if n_chunks == 1:
        _kernel("serial", dtype)(*args)
    else:
        call_parallel(_kernel("parallel", dtype), args, n_chunks)
