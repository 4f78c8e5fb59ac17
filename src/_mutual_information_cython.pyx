# cython: freethreading_compatible = True
"""Mutual information of joint probability tables, Cython backend.

Design notes
------------
a) The kernel sees an (n, nx, ny) view of the tables with any strides (the
   API moves the two table axes last and merges the batch axes without
   copying) and writes one value per table.  Tables run in parallel
   (prange over static chunks); each chunk owns O(nx + ny) workspace.  A
   table's result never depends on the thread that computes it.
b) I(X;Y) = sum_ij J_ij log(J_ij / (a_i b_j)), a and b the row and column
   marginals.  For nearly independent tables the terms cancel, and an error
   of relative size d in a marginal a_i shifts the sum by a_i d: rounding
   the marginals to double alone would cost ~eps absolute, far above the
   contract's 8 eps * sum|terms|.  So the marginals are kept as unevaluated
   double-double sums (TwoSum, fixed order: a along j, b along i), the
   product a_i b_j as qh + ql (qh rounded, ql its FMA residual plus the
   cross terms of the low parts), and the rounding of r = J / qh is
   corrected as in kl_blocks.h's kl_vrel_entr:
       J log(J / q) = J log r + (J - r q) + O((J - r q)^2 / J),
       J - r q = fma(-r, qh, J) - r ql.
   The terms are summed with Neumaier's compensation, in row-major order.
c) J_ij = 0 terms are 0.  The result is clamped at 0 and is exactly 0 when
   J is exactly the outer product of its marginals and those sums are
   exact (then ql = 0, r = 1 and every term is 0).  A product that
   underflows (a_i b_j below DBL_MIN) takes the plain log difference.
d) Kernels report, the API judges: ``sums[t]`` is table t's raw sum (plain
   double, row-major) and ``info[t] = (1, i, j)`` marks its first negative,
   NaN or +inf entry when ``check``.  ``transform`` (eps smoothing and
   normalize): J -> (J + eps) / (sum + nx ny eps) before anything else.
"""

from cython.parallel cimport prange
from libc.float cimport DBL_MIN
from libc.math cimport INFINITY, fma
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cdef extern from "kl_vmath.h" nogil:
    double kl_vlog(double x)

ctypedef fused floating:
    float
    double


cdef inline void _two_sum_into(double* hi, double* lo, double x) noexcept nogil:
    """(hi, lo) += x with the rounding of hi + x carried exactly into lo."""
    cdef double s = hi[0] + x
    cdef double bb = s - hi[0]
    lo[0] = lo[0] + ((hi[0] - (s - bb)) + (x - bb))
    hi[0] = s


cdef inline double _term(double x, double ah, double al, double bh, double bl) noexcept nogil:
    """x log(x / (a b)) for x > 0, a = ah + al, b = bh + bl (note b)."""
    cdef double qh = ah * bh
    cdef double ql = fma(ah, bh, -qh) + (ah * bl + al * bh)
    cdef double r, e
    if not (qh >= DBL_MIN):
        return x * ((kl_vlog(x) - kl_vlog(ah)) - kl_vlog(bh))
    r = x / qh
    e = fma(-r, qh, x) - r * ql
    return fma(x, kl_vlog(r), e)


cdef inline double _table(const floating[:, :, :] j3, Py_ssize_t t, Py_ssize_t nx,
                          Py_ssize_t ny, int check, double eps, bint transform,
                          double* ws, double* sums, int64_t* info) noexcept nogil:
    """I(X;Y) of table t in nats (unclamped); see the design notes."""
    cdef Py_ssize_t i, j
    cdef double x, total = 0.0, d = 1.0, s, c, term, tt
    cdef double* ah = ws
    cdef double* al = ws + nx
    cdef double* bh = ws + 2 * nx
    cdef double* bl = ws + 2 * nx + ny
    for i in range(nx):
        for j in range(ny):
            x = j3[t, i, j]
            total = total + x
            if check and info[0] == 0 and (not (x >= 0.0) or x == INFINITY):
                info[0] = 1; info[1] = i; info[2] = j
    sums[0] = total
    if transform:
        d = total + <double> (nx * ny) * eps
    for j in range(ny):
        bh[j] = 0.0
        bl[j] = 0.0
    for i in range(nx):
        ah[i] = 0.0
        al[i] = 0.0
        for j in range(ny):
            x = j3[t, i, j]
            if transform:
                x = (x + eps) / d
            _two_sum_into(&ah[i], &al[i], x)
            _two_sum_into(&bh[j], &bl[j], x)
    s = 0.0
    c = 0.0
    for i in range(nx):
        for j in range(ny):
            x = j3[t, i, j]
            if transform:
                x = (x + eps) / d
            if x == 0.0:
                continue
            term = _term(x, ah[i], al[i], bh[j], bl[j])
            # Neumaier: s + c carries the sum of the terms exactly up to c's rounding
            tt = s + term
            if abs(s) >= abs(term):
                c = c + ((s - tt) + term)
            else:
                c = c + ((term - tt) + s)
            s = tt
    return s + c


def mutual_information_kernel(const floating[:, :, :] joint, floating[::1] out,
                              double[::1] sums, int64_t[:, ::1] info, int check, double eps,
                              bint transform, double log_base, int n_threads):
    """out[t] = max(I(X;Y), 0) / log_base of table joint[t]; sums[t] its raw sum.

    info[t] = (1, i, j) for the first invalid entry when `check` (left as
    is otherwise; the caller fills it with 0).
    """
    cdef Py_ssize_t n = joint.shape[0], nx = joint.shape[1], ny = joint.shape[2]
    cdef Py_ssize_t n_chunks, c, t, lo, hi
    cdef double* ws
    cdef double r
    cdef int failed = 0
    if n == 0:
        return
    n_chunks = max(1, min(n_threads, n))
    with nogil:
        for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
            lo = c * n // n_chunks
            hi = (c + 1) * n // n_chunks
            ws = <double*> malloc((2 * nx + 2 * ny + 1) * sizeof(double))
            if ws == NULL:
                failed += 1
            else:
                for t in range(lo, hi):
                    r = _table(joint, t, nx, ny, check, eps, transform, ws, &sums[t],
                               &info[t, 0])
                    r = (0.0 if r < 0.0 else r) / log_base
                    out[t] = <floating> r
                free(ws)
    if failed:
        raise MemoryError("kl_fast: no memory for the mutual information workspace")
