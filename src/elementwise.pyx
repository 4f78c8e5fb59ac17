# cython: freethreading_compatible = True
"""Elementwise kernels of kl_fast, Cython backend: binary KL, binary
cross-entropy and the k1/k2/k3 KL estimators (see ``kl_binary.h``).

The kernel sees two 2-D ``(n_rows, n_cols)`` views with any strides (zero
for broadcast inputs) and writes one value per element into the C-contiguous
``out``.  The work is cut into units of at most ``UNIT`` elements of one row;
``report.shape[0]`` chunks of consecutive units run in parallel.  An element's
value depends on its own inputs only, so the result is the same bit for bit
for any thread count.  ``report`` has one row per chunk, in the layout of
``kl_fast/_engine/report.py``: ``[n_bad, bad_row, bad_col, bad_arg, -1, -1]``, the
first bad value of a chunk being its first in C order.
"""

from cython.parallel cimport prange
from libc.stdint cimport int64_t
from kl_common cimport floating

cdef extern from "kl_binary.h" nogil:
    int64_t kl_bin_piece_f32(int op, const float* a, Py_ssize_t sa, const float* b,
                             Py_ssize_t sb, float* out, Py_ssize_t n, double eps, double den,
                             double log_base)
    int64_t kl_bin_piece_f64(int op, const double* a, Py_ssize_t sa, const double* b,
                             Py_ssize_t sb, double* out, Py_ssize_t n, double eps, double den,
                             double log_base)
    Py_ssize_t kl_bin_first_bad_f32(int op, const float* a, Py_ssize_t sa, const float* b,
                                    Py_ssize_t sb, Py_ssize_t n, int* arg)
    Py_ssize_t kl_bin_first_bad_f64(int op, const double* a, Py_ssize_t sa, const double* b,
                                    Py_ssize_t sb, Py_ssize_t n, int* arg)
    double kl_bin_point(int op, double a, double b, double eps, double den, int f32)


cdef enum:
    UNIT = 8192       # elements of one row per work unit


cdef inline const floating* _at(const floating[:, :] x, Py_ssize_t i,
                                Py_ssize_t j) noexcept nogil:
    return <const floating*> (<const char*> &x[0, 0] + i * x.strides[0] + j * x.strides[1])


cdef void _chunk(int op, const floating[:, :] a, const floating[:, :] b, floating[:, ::1] out,
                 int64_t* rep, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t per_row, double eps,
                 double den, double log_base) noexcept nogil:
    """Units lo..hi-1 (unit u: row u // per_row, columns from (u % per_row) * UNIT)."""
    cdef Py_ssize_t n = a.shape[1], it = <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t sa = a.strides[1] // it, sb = b.strides[1] // it
    cdef Py_ssize_t u, i, j0, m, k
    cdef int64_t nb
    cdef int arg = 0
    for u in range(lo, hi):
        i = u // per_row
        j0 = (u % per_row) * UNIT
        m = min(<Py_ssize_t> UNIT, n - j0)
        if floating is float:
            nb = kl_bin_piece_f32(op, _at(a, i, j0), sa, _at(b, i, j0), sb, &out[i, j0], m,
                                  eps, den, log_base)
        else:
            nb = kl_bin_piece_f64(op, _at(a, i, j0), sa, _at(b, i, j0), sb, &out[i, j0], m,
                                  eps, den, log_base)
        if nb > 0:
            rep[0] += nb
            if rep[1] < 0:
                if floating is float:
                    k = kl_bin_first_bad_f32(op, _at(a, i, j0), sa, _at(b, i, j0), sb, m, &arg)
                else:
                    k = kl_bin_first_bad_f64(op, _at(a, i, j0), sa, _at(b, i, j0), sb, m, &arg)
                rep[1] = i
                rep[2] = j0 + k
                rep[3] = arg


def binary_elementwise(const floating[:, :] a, const floating[:, :] b, floating[:, ::1] out,
                       int64_t[:, ::1] report, int op, double eps, double log_base,
                       int n_threads):
    """out[i, j] = op(a[i, j], b[i, j]) / log_base; invalid values counted in `report`.

    `op` is one of kl_binary.h's KL_OP_* codes; `eps` > 0 smooths the
    probabilities, x -> (x + eps) / (1 + 2 eps), for the ops that take it.
    """
    cdef Py_ssize_t n_rows = a.shape[0], n = a.shape[1]
    cdef Py_ssize_t n_chunks = report.shape[0], c, per_row, units
    cdef double den = 1.0 + 2.0 * eps
    if n_rows == 0 or n == 0:
        return
    if not (0 <= op <= 14):
        raise ValueError(f"op must be in [0, 14], got {op}")
    if b.shape[0] != n_rows or b.shape[1] != n or out.shape[0] != n_rows or out.shape[1] != n:
        raise ValueError("a, b and out must have the same 2-D shape")
    per_row = (n + UNIT - 1) // UNIT
    units = n_rows * per_row
    with nogil:
        if n_threads <= 1 or n_chunks == 1:
            _chunk(op, a, b, out, &report[0, 0], 0, units, per_row, eps, den, log_base)
        else:
            for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
                _chunk(op, a, b, out, &report[c, 0], c * units // n_chunks,
                       (c + 1) * units // n_chunks, per_row, eps, den, log_base)


def point(int op, double a, double b, double eps=0.0, bint f32=False):
    """One value of operation `op` (no validation, nats): for the tests of the math.

    ``f32=True``: the form float32 inputs take (binary KL's two tiers, k3's
    float32 expm1mx).
    """
    return kl_bin_point(op, a, b, eps, 1.0 + 2.0 * eps, f32)
