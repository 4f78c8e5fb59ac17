# cython: freethreading_compatible = True
"""KL divergence between full-covariance Gaussians, Cython backend.

Design notes
------------
a) One batch item = (mu1, cov1, mu2, cov2) with mu of shape (k,) and cov
   of shape (k, k); the kernel sees (n, k) and (n, k, k) views with any
   strides and writes one value per item.  Items run in parallel (prange,
   static chunks); each chunk owns an O(k^2) workspace.  An item's result
   never depends on the thread that computes it.
b) The formula (all in double, float32 data included).  With L2 = chol(cov2),
   M = L2^{-1} chol(cov1) and z = L2^{-1}(mu2 - mu1),
       2 KL = sum_{i != j} M_ij^2 + sum_i g(M_ii) + |z|^2,
       g(m) = m^2 - 1 - 2 log m = (m^2 - 1) - log1p(m^2 - 1) >= 0.
   M is not formed as L2^{-1} L1: when the Gaussians nearly coincide
   M = I + O(delta), and the separate roundings of L1 and L2 would leave
   M - I (hence KL ~ delta^2) with a relative error eps/delta.  Instead
       E = L2^{-1} (cov1 - cov2) L2^{-T},   I + E = M M^T,
   and M is the Cholesky factor of I + E computed "around I": pivot j is
   w_j = 1 + x_j with x_j = E_jj - sum_{p<j} M_jp^2 = M_jj^2 - 1, and
   g(M_jj) = x_j - log1p(x_j) = -log1pmx(x_j) takes x_j itself -- no
   cancellation at all.  cov1 - cov2 is exact where the entries are close
   (Sterbenz), so KL keeps a relative error ~ eps * cond(cov2) however
   small it is.
c) That form loses digits where cov1 << cov2 in some direction (w_j -> 0
   from 1 + x_j, x_j -> -1).  A pivot with x_j < -1/2 (M_jj^2 < 1/2, so
   KL > 0.09) sends the item to the direct form M = L2^{-1} L1, accurate
   there because KL is not small.  A non-positive or NaN pivot of cov1
   also ends there, where chol(cov1) names it.
d) Kernels report, the API judges: ``info[i] = (code, index, argument)`` of
   the first problem of item i (codes in ``_gaussian_full.py``); such an item's
   result is NaN.  Checks (``check``): mu finite, cov finite, cov symmetric
   within ``sym_tol * max|cov|``.  Positive definiteness is always noted
   (the factorization cannot go on without it).
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN, fabs, sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from kl_common cimport floating

cdef extern from "kl_blocks.h" nogil:
    double kl_vlog(double x)
    double kl_vlog1p(double x)
    double kl_vu_minus_1_minus_log_u(double um1, double log_u)


# info codes (kept in step with kl_fast/_gaussian_full.py)
cdef enum:
    OK = 0
    NOT_PD = 1          # index: the pivot
    NOT_SYMMETRIC = 2   # index: i * k + j
    NOT_FINITE = 3      # index: flat position in mu (k) or cov (k * k)

# the argument of a problem: 0 mu1, 1 cov1, 2 mu2, 3 cov2
cdef enum:
    A_MU1 = 0
    A_COV1 = 1
    A_MU2 = 2
    A_COV2 = 3


cdef inline double _dot(const double* a, Py_ssize_t sa, const double* b, Py_ssize_t sb,
                        Py_ssize_t n) noexcept nogil:
    """sum_p a[p sa] b[p sb] in 8 interleaved accumulators and a fixed tree: no
    add waits for the one before (the dot products are the O(k^3) work)."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, s5 = 0.0, s6 = 0.0
    cdef double s7 = 0.0
    cdef Py_ssize_t p = 0
    while p + 8 <= n:
        s0 = s0 + a[p * sa] * b[p * sb]
        s1 = s1 + a[(p + 1) * sa] * b[(p + 1) * sb]
        s2 = s2 + a[(p + 2) * sa] * b[(p + 2) * sb]
        s3 = s3 + a[(p + 3) * sa] * b[(p + 3) * sb]
        s4 = s4 + a[(p + 4) * sa] * b[(p + 4) * sb]
        s5 = s5 + a[(p + 5) * sa] * b[(p + 5) * sb]
        s6 = s6 + a[(p + 6) * sa] * b[(p + 6) * sb]
        s7 = s7 + a[(p + 7) * sa] * b[(p + 7) * sb]
        p = p + 8
    while p < n:
        s0 = s0 + a[p * sa] * b[p * sb]
        p = p + 1
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


cdef inline bint _finite(double x) noexcept nogil:
    return x - x == 0.0


cdef inline double _cov(const floating[:, :, :] c, Py_ssize_t t, Py_ssize_t i,
                        Py_ssize_t j, bint ident) noexcept nogil:
    """Entry (i, j), i >= j, of the lower triangle (the identity for the prior)."""
    if ident:
        return 1.0 if i == j else 0.0
    return c[t, i, j]


cdef inline int _check_cov(const floating[:, :, :] c, Py_ssize_t t, Py_ssize_t k,
                           double sym_tol, int64_t* index) noexcept nogil:
    """NOT_FINITE / NOT_SYMMETRIC / OK for cov item t (first offending position)."""
    cdef Py_ssize_t i, j
    cdef double x, big = 0.0
    for i in range(k):
        for j in range(k):
            x = c[t, i, j]
            if not _finite(x):
                index[0] = i * k + j
                return NOT_FINITE
            big = max(big, fabs(x))
    for i in range(k):
        for j in range(i):
            if fabs(<double> c[t, i, j] - <double> c[t, j, i]) > sym_tol * big:
                index[0] = i * k + j
                return NOT_SYMMETRIC
    return OK


cdef inline Py_ssize_t _cholesky(double* a, Py_ssize_t k) noexcept nogil:
    """In-place lower Cholesky of a (k x k, row-major, lower triangle read).

    Returns -1, or the first pivot that is <= 0 or NaN (a is then partial)."""
    cdef Py_ssize_t i, j
    cdef double s, x
    for j in range(k):
        s = a[j * k + j] - _dot(a + j * k, 1, a + j * k, 1, j)
        if not (s > 0.0):
            return j
        s = sqrt(s)
        a[j * k + j] = s
        for i in range(j + 1, k):
            x = a[i * k + j] - _dot(a + i * k, 1, a + j * k, 1, j)
            a[i * k + j] = x / s
    return -1


cdef inline double _direct(const floating[:, :, :] cov1, Py_ssize_t t, Py_ssize_t k,
                           double* l2, double* m, double total,
                           int64_t* info) noexcept nogil:
    """2 KL by M = L2^{-1} chol(cov1) (note c); `total` comes in as |z|^2."""
    cdef Py_ssize_t i, j, piv
    cdef double x, d
    for i in range(k):
        for j in range(i + 1):
            m[i * k + j] = cov1[t, i, j]
    piv = _cholesky(m, k)
    if piv >= 0:
        info[0] = NOT_PD; info[1] = piv; info[2] = A_COV1
        return NAN
    # in place, column by column: M[i, j] = (L1[i, j] - sum_{j<=p<i} L2[i, p] M[p, j]) / L2[i, i]
    for j in range(k):
        for i in range(j, k):
            x = m[i * k + j] - _dot(l2 + i * k + j, 1, m + j * k + j, k, i - j)
            m[i * k + j] = x / l2[i * k + i]
    for i in range(k):
        for j in range(i):
            total = total + m[i * k + j] * m[i * k + j]
        d = m[i * k + i]
        total = total + kl_vu_minus_1_minus_log_u((d - 1.0) * (d + 1.0), 2.0 * kl_vlog(d))
    return total


cdef inline double _item(const floating[:, :] mu1, const floating[:, :, :] cov1,
                         const floating[:, :] mu2, const floating[:, :, :] cov2,
                         Py_ssize_t t, Py_ssize_t k, bint prior, int check, double sym_tol,
                         double* l2, double* y, double* e, double* v,
                         int64_t* info) noexcept nogil:
    """2 KL of item t (NaN and info set on a problem); see the design notes."""
    cdef Py_ssize_t i, j, piv
    cdef double s, x, w, total, zz
    cdef int code
    cdef int64_t index = 0
    if check:
        for i in range(k):
            if not _finite(mu1[t, i]):
                info[0] = NOT_FINITE; info[1] = i; info[2] = A_MU1
                return NAN
        code = _check_cov(cov1, t, k, sym_tol, &index)
        if code != OK:
            info[0] = code; info[1] = index; info[2] = A_COV1
            return NAN
        if not prior:
            for i in range(k):
                if not _finite(mu2[t, i]):
                    info[0] = NOT_FINITE; info[1] = i; info[2] = A_MU2
                    return NAN
            code = _check_cov(cov2, t, k, sym_tol, &index)
            if code != OK:
                info[0] = code; info[1] = index; info[2] = A_COV2
                return NAN
    # L2 = chol(cov2)
    for i in range(k):
        for j in range(i + 1):
            l2[i * k + j] = _cov(cov2, t, i, j, prior)
    piv = _cholesky(l2, k)
    if piv >= 0:
        info[0] = NOT_PD; info[1] = piv; info[2] = A_COV2
        return NAN
    # z = L2^{-1} (mu2 - mu1); |z|^2
    total = 0.0
    for i in range(k):
        x = (0.0 if prior else <double> mu2[t, i]) - <double> mu1[t, i]
        x = x - _dot(l2 + i * k, 1, v, 1, i)
        v[i] = x / l2[i * k + i]
        total = total + v[i] * v[i]
    # Y = L2^{-1} D, D = cov1 - cov2 (symmetric, from the lower triangles); y[c * k + i] = Y[i, c]
    for j in range(k):
        for i in range(k):
            if i >= j:
                x = <double> cov1[t, i, j] - _cov(cov2, t, i, j, prior)
            else:
                x = <double> cov1[t, j, i] - _cov(cov2, t, j, i, prior)
            x = x - _dot(l2 + i * k, 1, y + j * k, 1, i)
            y[j * k + i] = x / l2[i * k + i]
    # E = L2^{-1} Y^T (symmetric): column c, rows i >= c; rows p < c of the
    # column are E[c, p], already computed
    for j in range(k):
        for i in range(j, k):
            x = y[i * k + j]          # Y[j, i]
            x = x - _dot(l2 + i * k, 1, e + j * k, 1, j)
            x = x - _dot(l2 + i * k + j, 1, e + j * k + j, k, i - j)
            e[i * k + j] = x / l2[i * k + i]
    zz = total
    # M = chol(I + E) around I: x_j = M_jj^2 - 1, M_jj = sqrt(1 + x_j)
    for j in range(k):
        x = e[j * k + j] - _dot(e + j * k, 1, e + j * k, 1, j)
        if not (x >= -0.5):
            return _direct(cov1, t, k, l2, y, zz, info)
        w = sqrt(1.0 + x)
        total = total + kl_vu_minus_1_minus_log_u(x, kl_vlog1p(x))
        for i in range(j + 1, k):
            s = e[i * k + j] - _dot(e + i * k, 1, e + j * k, 1, j)
            s = s / w
            e[i * k + j] = s
            total = total + s * s
    return total


def gaussian_full_kernel(const floating[:, :] mu1, const floating[:, :, :] cov1,
                         const floating[:, :] mu2, const floating[:, :, :] cov2,
                         floating[::1] out, int64_t[:, ::1] info, bint prior, int check,
                         double sym_tol, double log_base, int n_threads):
    """out[t] = KL(N(mu1[t], cov1[t]) || N(mu2[t], cov2[t])) / log_base.

    With `prior`, mu2 and cov2 are ignored (read as 0 and I; pass mu1 and
    cov1 again).  info[t] = (code, index, argument) of item t's first
    problem, left as is when there is none (the caller fills it with 0).
    """
    cdef Py_ssize_t n = out.shape[0], k = mu1.shape[1]
    cdef Py_ssize_t n_chunks, c, t, lo, hi
    cdef double* work
    cdef double r
    cdef int failed = 0
    if n == 0:
        return
    n_chunks = max(1, min(n_threads, n))
    with nogil:
        for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
            lo = c * n // n_chunks
            hi = (c + 1) * n // n_chunks
            work = <double*> malloc((3 * k * k + k + 1) * sizeof(double))
            if work == NULL:
                failed += 1
            else:
                for t in range(lo, hi):
                    r = _item(mu1, cov1, mu2, cov2, t, k, prior, check, sym_tol,
                              work, work + k * k, work + 2 * k * k, work + 3 * k * k,
                              &info[t, 0])
                    r = 0.5 * r / log_base
                    out[t] = <floating> (0.0 if r < 0.0 else r)
                free(work)
    if failed:
        raise MemoryError("kl_fast: no memory for the Gaussian workspace")
