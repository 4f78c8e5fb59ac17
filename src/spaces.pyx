# cython: freethreading_compatible = True
"""Row kernels for log-probability and logits inputs, Cython backend.

The ``prob`` x ``prob`` cases run in ``_cython.rows``; this module takes
every call where an input is in ``"log"`` or ``"logits"`` space.  Each row is
loaded into double scratch (logits divided by the temperature, counts
normalized, bad values counted), then one of the row functions of
``kl_spaces.h`` computes it; rows run in parallel, each row in one thread, so
the result does not depend on the thread count.

Report layout and ``check`` codes as in ``_cython.rows`` (its notes d, e),
with one sum check per input: ``tol_p``/``tol_q`` >= 0 asks for a sum of 1
within the tolerance (probabilities: the sum; log-probabilities: the sum of
their exponentials); < 0 asks only for a positive finite normalizer
(normalized counts, and logits -- a row of all -inf logits has none).
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN, fabs
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from kl_common cimport floating

cdef extern from "kl_spaces.h" nogil:
    ctypedef struct kl_space_result:
        double value
        double check_p
        double check_q
        int fast
    int KL_SPACE_PROB, KL_SPACE_LOG, KL_SPACE_LOGITS
    double kl_space_scan(int space, const double* x, Py_ssize_t n, double* n_bad)
    void kl_sp_widen_f32(const float* x, Py_ssize_t sx, Py_ssize_t n, double* buf)
    int kl_space_label_fast_f32(const float* y, Py_ssize_t n, Py_ssize_t c, double tol,
                                kl_space_result* r)
    kl_space_result kl_space_entropy(int space, const double* x, Py_ssize_t n,
                                     double fast_tol)
    kl_space_result kl_space_ce(int qspace, const double* p, const double* y, Py_ssize_t n,
                                int want_check, double fast_tol)
    kl_space_result kl_space_label(int qspace, const double* y, Py_ssize_t n, Py_ssize_t c,
                                   double fast_tol)
    kl_space_result kl_space_kl_fast(const double* x, const double* y, Py_ssize_t n,
                                     double fast_tol)
    kl_space_result kl_space_kl(int pspace, int qspace, const double* x, const double* y,
                                const double* diff, Py_ssize_t n, double* w, double* d,
                                double* dlo, int want_check)


cdef enum:
    Q_KL = 0
    Q_CE = 1
    Q_H = 2

SPACE_CODES = {"prob": 0, "log": 1, "logits": 2}

# The bound below which a float32 row may take the fast tier of kl_spaces.h
# (2^-27 relative: the float32 contract leaves 2^-25 before the final rounding)
cdef double FAST_TOL_F32 = 2.0 ** -27
FAST_TOL_FLOAT32 = FAST_TOL_F32


cdef inline bint _is_bad(double x, int space) noexcept nogil:
    if space == KL_SPACE_PROB:
        return not (x >= 0.0) or x == INFINITY
    if space == KL_SPACE_LOG:
        # a log-probability is <= 0 (-inf is p = 0); NaN and > 0 have no meaning
        return not (x <= 0.0)
    # logits: NaN and +inf have no meaning (-inf is p = 0)
    return x != x or x == INFINITY


cdef inline const double* _load(const floating* x, Py_ssize_t sx, Py_ssize_t n, int space,
                                double temperature, bint normalize, bint scan, double* buf,
                                double* raw_sum, Py_ssize_t* n_bad) noexcept nogil:
    """The row as contiguous doubles in the space the row functions take: read
    in place when it already is (float64, unit stride, nothing to scale), else
    converted into `buf`.  With `scan` (checks asked, or counts to normalize),
    its raw sum and count of bad values go to raw_sum and n_bad."""
    cdef Py_ssize_t j
    cdef const double* row
    cdef double bad = 0.0, s = 0.0
    if floating is double and sx == 1:
        row = <const double*> x
    elif floating is float:
        kl_sp_widen_f32(x, sx, n, buf)
        row = buf
    else:
        for j in range(n):
            buf[j] = x[j * sx]
        row = buf
    if scan or (space == KL_SPACE_PROB and normalize):
        s = kl_space_scan(space, row, n, &bad)
    raw_sum[0] = s
    n_bad[0] = <Py_ssize_t> bad
    if space == KL_SPACE_LOGITS and temperature != 1.0:
        for j in range(n):
            buf[j] = row[j] / temperature
        row = buf
    elif space == KL_SPACE_PROB and normalize:
        for j in range(n):
            buf[j] = row[j] / s
        row = buf
    return row


cdef inline void _load_diff(const floating* a, Py_ssize_t sa, const floating* b,
                            Py_ssize_t sb, Py_ssize_t n, double temperature,
                            double* diff) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        diff[j] = (<double> a[j * sa] - <double> b[j * sb]) / temperature


cdef inline Py_ssize_t _count_bad(const floating* x, Py_ssize_t sx, Py_ssize_t n,
                                  int space) noexcept nogil:
    """The row's bad values, counted on the raw data: validation of a logits row the
    fast tier turned down (kl_space_result.fast)."""
    cdef Py_ssize_t j, bad = 0
    for j in range(n):
        bad += _is_bad(x[j * sx], space)
    return bad


cdef inline void _record_bad(const floating* x, Py_ssize_t sx, Py_ssize_t n, int space,
                             int arg, Py_ssize_t row, int64_t* rep) noexcept nogil:
    cdef Py_ssize_t j
    if rep[1] >= 0:
        return
    for j in range(n):
        if _is_bad(x[j * sx], space):
            rep[1] = row
            rep[2] = j
            rep[3] = arg
            return


cdef inline bint _bad_check(double s, double tol) noexcept nogil:
    if tol < 0.0:
        return not (s > 0.0 and s < INFINITY)
    return not (fabs(s - 1.0) <= tol)


cdef inline double _check_value(int space, double raw_sum, double kernel_check) noexcept nogil:
    return raw_sum if space == KL_SPACE_PROB else kernel_check


cdef inline const floating* _row_ptr(const floating[:, :] x, Py_ssize_t i) noexcept nogil:
    return <const floating*> (<const char*> &x[0, 0] + i * x.strides[0])


cdef inline double _finish(int kind, double value, double log_base) noexcept nogil:
    if kind == Q_KL and value < 0.0:   # never negative (NaN passes)
        value = 0.0
    return value / log_base


cdef void _rows(int kind, const floating[:, :] p, const floating[:, :] q, floating[::1] out,
                int64_t[:, ::1] report, int check, double tol_p, double tol_q, int pspace,
                int qspace, double temperature, bint norm_p, bint norm_q, double log_base,
                int n_threads) noexcept nogil:
    cdef Py_ssize_t n_rows = p.shape[0], n = p.shape[1]
    cdef Py_ssize_t sp = p.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t sq = q.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t n_chunks = report.shape[0], c, i, lo, hi, bad_p, bad_q
    cdef double* scratch
    cdef const double* a
    cdef const double* b
    cdef double* diff
    cdef double sum_p, sum_q
    cdef kl_space_result r
    cdef int64_t* rep
    # float32 rows may take the fast tiers of kl_spaces.h (their bounds decide)
    cdef double fast_tol = FAST_TOL_F32 if floating is float else 0.0
    # two logits rows at a temperature: (a - b) / T from the raw logits, exact
    # where they nearly coincide (a / T - b / T is not)
    cdef bint use_diff = kind == Q_KL and pspace == KL_SPACE_LOGITS \
        and qspace == KL_SPACE_LOGITS and temperature != 1.0
    # a row that a fast tier may take is scanned for bad values only if the tier
    # turns it down: taking it proves every logit finite (r.fast), and cross-entropy's
    # tier also checks every weight p_k in [0, inf) and sums them in the scan's lanes
    # (r.check_p: the same bits as the scan's raw sum)
    cdef bint defer_p = check > 0 and fast_tol > 0.0 and (
        (kind != Q_CE and pspace == KL_SPACE_LOGITS)
        or (kind == Q_CE and qspace == KL_SPACE_LOGITS and not norm_p))
    cdef double bad_scan
    cdef bint defer_q = check > 0 and fast_tol > 0.0 and qspace == KL_SPACE_LOGITS \
        and kind != Q_H
    if n_rows == 0 or n == 0:
        return
    for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
        lo = c * n_rows // n_chunks
        hi = (c + 1) * n_rows // n_chunks
        rep = &report[c, 0]
        scratch = <double*> malloc(6 * n * sizeof(double))
        if scratch == NULL:
            for i in range(lo, hi):
                out[i] = NAN
            continue
        for i in range(lo, hi):
            a = _load(_row_ptr(p, i), sp, n, pspace, temperature, norm_p,
                      check > 0 and not defer_p, scratch, &sum_p, &bad_p)
            bad_q = 0
            if kind == Q_H:
                r = kl_space_entropy(pspace, a, n, fast_tol)
            else:
                b = _load(_row_ptr(q, i), sq, n, qspace, temperature, norm_q,
                          check > 0 and not defer_q, scratch + n, &sum_q, &bad_q)
                if kind == Q_CE:
                    r = kl_space_ce(qspace, a, b, n, check == 2, fast_tol)
                else:
                    r.fast = 0
                    if fast_tol > 0.0 and pspace == KL_SPACE_LOGITS \
                            and qspace == KL_SPACE_LOGITS:
                        r = kl_space_kl_fast(a, b, n, fast_tol)
                    if not r.fast:
                        # the accurate form; its diff row only now (a pass an
                        # element, with a division, that the fast tier never reads)
                        diff = NULL
                        if use_diff:
                            diff = scratch + 4 * n
                            _load_diff(_row_ptr(p, i), sp, _row_ptr(q, i), sq, n,
                                       temperature, diff)
                        r = kl_space_kl(pspace, qspace, a, b, diff, n, scratch + 2 * n,
                                        scratch + 3 * n, scratch + 5 * n, check == 2)
            out[i] = <floating> _finish(kind, r.value, log_base)
            if check == 0:
                continue
            if r.fast:
                if defer_p and pspace == KL_SPACE_PROB:
                    sum_p = r.check_p
            else:
                if defer_p and pspace == KL_SPACE_PROB:   # a, read as given (not norm_p)
                    sum_p = kl_space_scan(pspace, a, n, &bad_scan)
                    bad_p = <Py_ssize_t> bad_scan
                elif defer_p:
                    bad_p = _count_bad(_row_ptr(p, i), sp, n, pspace)
                if defer_q:
                    bad_q = _count_bad(_row_ptr(q, i), sq, n, qspace)
            if bad_p + bad_q > 0:
                rep[0] += bad_p + bad_q
                if bad_p > 0:
                    _record_bad(_row_ptr(p, i), sp, n, pspace, 0, i, rep)
                else:
                    _record_bad(_row_ptr(q, i), sq, n, qspace, 1, i, rep)
            elif check == 2 and rep[4] < 0:
                if _bad_check(_check_value(pspace, sum_p, r.check_p), tol_p):
                    rep[4] = i
                    rep[5] = 0
                elif kind != Q_H and _bad_check(_check_value(qspace, sum_q, r.check_q), tol_q):
                    rep[4] = i
                    rep[5] = 1
        free(scratch)


def kl_space_rows(const floating[:, :] p, const floating[:, :] q, floating[::1] out,
                  int64_t[:, ::1] report, int check, double tol_p, double tol_q, int p_space,
                  int q_space, double temperature, bint norm_p, bint norm_q, double log_base,
                  int n_threads):
    """out[i] = KL(p[i] || q[i]) / log_base for inputs in the given spaces (SPACE_CODES)."""
    with nogil:
        _rows(Q_KL, p, q, out, report, check, tol_p, tol_q, p_space, q_space, temperature,
              norm_p, norm_q, log_base, n_threads)


def cross_entropy_space_rows(const floating[:, :] p, const floating[:, :] q, floating[::1] out,
                             int64_t[:, ::1] report, int check, double tol_p, double tol_q,
                             int q_space, double temperature, bint norm_p, double log_base,
                             int n_threads):
    """out[i] = -sum_j p[i, j] log q[i, j] / log_base, q given as log-probabilities or logits."""
    with nogil:
        _rows(Q_CE, p, q, out, report, check, tol_p, tol_q, KL_SPACE_PROB, q_space,
              temperature, norm_p, False, log_base, n_threads)


def entropy_space_rows(const floating[:, :] p, floating[::1] out, int64_t[:, ::1] report,
                       int check, double tol_p, int space, double temperature, double log_base,
                       int n_threads):
    """out[i] = -sum_j p log p / log_base, p given as log-probabilities or logits."""
    with nogil:
        _rows(Q_H, p, p, out, report, check, tol_p, tol_p, space, space, temperature,
              False, False, log_base, n_threads)


def cross_entropy_label_space_rows(const int64_t[:] labels, const floating[:, :] q,
                                   floating[::1] out, int64_t[:, ::1] report, int check,
                                   int q_space, double temperature, int64_t ignore_index,
                                   bint has_ignore, double log_base, int n_threads):
    """out[i] = -log softmax(q[i])[labels[i]] (logits) or -q[i, labels[i]] (log), / log_base.

    NaN where labels[i] == ignore_index.  Labels outside [0, n_cat) are
    counted in ``report`` (arg 0) whatever ``check`` says; with ``check``
    the q row is checked (logits: the whole row; log: the picked value).
    """
    cdef Py_ssize_t n_rows = q.shape[0], n = q.shape[1]
    cdef Py_ssize_t sq = q.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t n_chunks = report.shape[0], c, i, lo, hi, bad, label
    cdef double* scratch
    cdef const double* row
    cdef double sum_q
    cdef kl_space_result r
    cdef int64_t* rep
    if n_rows == 0 or n == 0:
        return
    with nogil:
        for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
            lo = c * n_rows // n_chunks
            hi = (c + 1) * n_rows // n_chunks
            rep = &report[c, 0]
            scratch = <double*> malloc(n * sizeof(double))
            if scratch == NULL:
                for i in range(lo, hi):
                    out[i] = NAN
                continue
            for i in range(lo, hi):
                label = labels[i]
                if has_ignore and label == ignore_index:
                    out[i] = NAN
                    continue
                if label < 0 or label >= n:
                    rep[0] += 1
                    if rep[1] < 0:
                        rep[1] = i
                        rep[2] = 0
                        rep[3] = 0
                    out[i] = NAN
                    continue
                if q_space == KL_SPACE_LOG:
                    # one value read: -log q_c is given
                    scratch[0] = _row_ptr(q, i)[label * sq]
                    bad = _is_bad(scratch[0], KL_SPACE_LOG) if check else 0
                    r = kl_space_label(q_space, scratch, 1, 0, 0.0)
                    if bad and check:
                        rep[0] += 1
                        if rep[1] < 0:
                            rep[1] = i
                            rep[2] = label
                            rep[3] = 1
                elif floating is float and sq == 1 and temperature == 1.0 and \
                        kl_space_label_fast_f32(_row_ptr(q, i), n, label, FAST_TOL_F32, &r):
                    # the fast tier on the float32 row in place: every logit finite
                    if check and rep[4] < 0 and _bad_check(r.check_q, -1.0):
                        rep[4] = i
                        rep[5] = 1
                else:
                    # float32 rows: scanned only if the fast tier turns them down (a
                    # unit-stride row at temperature 1 was just turned down in place)
                    row = _load(_row_ptr(q, i), sq, n, q_space, temperature, False,
                                check > 0 and floating is double, scratch, &sum_q, &bad)
                    r = kl_space_label(q_space, row, n, label,
                                       FAST_TOL_F32 if floating is float and not (
                                           sq == 1 and temperature == 1.0) else 0.0)
                    if check and floating is float and not r.fast:
                        bad = _count_bad(_row_ptr(q, i), sq, n, q_space)
                    if check and bad > 0:
                        rep[0] += bad
                        _record_bad(_row_ptr(q, i), sq, n, q_space, 1, i, rep)
                    elif check and rep[4] < 0 and _bad_check(r.check_q, -1.0):
                        rep[4] = i
                        rep[5] = 1
                out[i] = <floating> (r.value / log_base)
            free(scratch)
