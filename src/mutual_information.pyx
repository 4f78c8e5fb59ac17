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
   Every sum is compensated (TwoSum) and runs along a fixed axis: the
   marginals, and the terms into one double-double accumulator per column,
   which are combined in column order at the end.
e) Speed: a table is first copied into two contiguous double buffers (as is
   and transposed), so that each loop is independent across its inner
   index and vectorizes (the C below is multi-versioned like kl_blocks.h:
   AVX-512 / AVX2+FMA / baseline clones doing the same roundings).  A term
   whose log argument is not a normal number (or garbage input) is "odd":
   the table is then recomputed by the exact scalar term.
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
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from kl_common cimport floating

cdef extern from *:
    """
    #include "kl_blocks.h"

    /* (hi, lo) += x, the rounding of hi + x carried exactly into lo (TwoSum) */
    #define KL_MI_TWO_SUM(hi, lo, x) do { double s_ = (hi) + (x), b_ = s_ - (hi); \
        (lo) += ((hi) - (s_ - b_)) + ((x) - b_); (hi) = s_; } while (0)

    /* x log(x / (a b)) with a = ah + al, b = bh + bl: the exact scalar form */
    static double kl_mi_term_exact(double x, double ah, double al, double bh, double bl)
    {
        double qh, ql, r, e;
        if (x == 0.0) return 0.0;
        qh = ah * bh;
        ql = __builtin_fma(ah, bh, -qh) + (ah * bl + al * bh);
        if (!(qh >= DBL_MIN)) return x * ((kl_vlog(x) - kl_vlog(ah)) - kl_vlog(bh));
        r = x / qh;
        e = __builtin_fma(-r, qh, x) - r * ql;
        return __builtin_fma(x, kl_vlog(r), e);
    }

    /* I(X;Y) (unclamped) of one table: x is it row-major (nx x ny), xt its
     * transpose; ws holds 2 nx + 7 ny doubles. */
    KL_CLONES __attribute__((noinline)) static double kl_mi_table(
        const double* restrict x, const double* restrict xt, ptrdiff_t nx, ptrdiff_t ny,
        double* restrict ws)
    {
        /* disjoint pieces of ws: restrict spares the vectorizer its run-time overlap checks */
        double *restrict ah = ws, *restrict al = ws + nx, *restrict bh = ws + 2 * nx;
        double *restrict bl = bh + ny, *restrict sh = bl + ny, *restrict sl = sh + ny;
        double *restrict od = sl + ny, *restrict tb = od + ny, *restrict ob = tb + ny;
        double odd = 0.0, hi = 0.0, lo = 0.0;
        ptrdiff_t i, j;
        for (i = 0; i < nx; ++i) { ah[i] = 0.0; al[i] = 0.0; }
        for (j = 0; j < ny; ++j) { bh[j] = 0.0; bl[j] = 0.0; sh[j] = 0.0; sl[j] = 0.0; od[j] = 0.0; }
        /* b_j: over i in order, all j at once; a_i: over j in order, via xt */
        for (i = 0; i < nx; ++i)
            for (j = 0; j < ny; ++j) KL_MI_TWO_SUM(bh[j], bl[j], x[i * ny + j]);
        for (j = 0; j < ny; ++j)
            for (i = 0; i < nx; ++i) KL_MI_TWO_SUM(ah[i], al[i], xt[j * nx + i]);
        for (i = 0; i < nx; ++i) {
            double a = ah[i], b = al[i];
            const double* row = x + i * ny;
            /* two loops: the vectorizer takes each, not the two fused */
            for (j = 0; j < ny; ++j) {
                double v = row[j];
                double qh = a * bh[j];
                double ql = __builtin_fma(a, bh[j], -qh) + (a * bl[j] + b * bh[j]);
                double r = v / qh;
                double e = __builtin_fma(-r, qh, v) - r * ql;
                int ok = qh >= DBL_MIN && r >= DBL_MIN && r <= DBL_MAX;
                double t = __builtin_fma(v, kl_vlog_normal(ok ? r : 1.0), e);
                tb[j] = (v == 0.0) ? 0.0 : t;
                ob[j] = (v != 0.0 && !ok) ? 1.0 : 0.0;
            }
            for (j = 0; j < ny; ++j) {
                od[j] += ob[j];
                KL_MI_TWO_SUM(sh[j], sl[j], tb[j]);
            }
        }
        for (j = 0; j < ny; ++j) odd += od[j];
        if (odd > 0.0) {
            for (j = 0; j < ny; ++j) { sh[j] = 0.0; sl[j] = 0.0; }
            for (i = 0; i < nx; ++i)
                for (j = 0; j < ny; ++j) {
                    double t = kl_mi_term_exact(x[i * ny + j], ah[i], al[i], bh[j], bl[j]);
                    KL_MI_TWO_SUM(sh[j], sl[j], t);
                }
        }
        for (j = 0; j < ny; ++j) { KL_MI_TWO_SUM(hi, lo, sh[j]); lo += sl[j]; }
        return hi + lo;
    }
    """
    double kl_mi_table(const double* x, const double* xt, Py_ssize_t nx, Py_ssize_t ny,
                       double* ws) nogil


cdef inline double _table(const floating[:, :, :] j3, Py_ssize_t t, Py_ssize_t nx,
                          Py_ssize_t ny, int check, double eps, bint transform,
                          double* buf, double* ws, double* sums, int64_t* info) noexcept nogil:
    """I(X;Y) of table t in nats (unclamped); see the design notes."""
    cdef Py_ssize_t i, j
    cdef double x, total = 0.0, d
    cdef double* xt = buf + nx * ny
    for i in range(nx):
        for j in range(ny):
            x = j3[t, i, j]
            total = total + x
            if check and info[0] == 0 and (not (x >= 0.0) or x == INFINITY):
                info[0] = 1; info[1] = i; info[2] = j
            buf[i * ny + j] = x
            xt[j * nx + i] = x
    sums[0] = total
    if transform:
        d = total + <double> (nx * ny) * eps
        for i in range(nx * ny):
            buf[i] = (buf[i] + eps) / d
            xt[i] = (xt[i] + eps) / d
    return kl_mi_table(buf, xt, nx, ny, ws)


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
            ws = <double*> malloc((2 * nx * ny + 2 * nx + 7 * ny + 1) * sizeof(double))
            if ws == NULL:
                failed += 1
            else:
                for t in range(lo, hi):
                    r = _table(joint, t, nx, ny, check, eps, transform, ws,
                               ws + 2 * nx * ny, &sums[t], &info[t, 0])
                    r = (0.0 if r < 0.0 else r) / log_base
                    out[t] = <floating> r
                free(ws)
    if failed:
        raise MemoryError("kl_fast: no memory for the mutual information workspace")
