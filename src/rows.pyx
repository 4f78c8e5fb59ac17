# cython: freethreading_compatible = True
"""Row kernels of kl_fast, Cython backend.

Design notes
------------
a) Every kernel sees 2-D ``(n_rows, n_cat)`` views with any strides (zero
   strides for broadcast inputs, negative for reversed ones) and writes one
   value per row into a C-contiguous ``out``.  The Python layer
   (``kl_fast/_api.py``) moves the reduced axis last, broadcasts, byte-swaps
   and casts; kernels do no Python work and release the GIL throughout.
b) Math in double for float32 data: every term and every sum.  The scalar
   math lives in ``kl_math.h``; this file only loops.
c) Determinism: a row is summed in fixed blocks of ``BLOCK`` elements, each
   block in ``LANES`` interleaved accumulators combined in a fixed tree, and
   the block partials in order.  Rows run in parallel in chunks handed out
   dynamically (several per thread, ``_engine.threads.chunk_count``: with a core
   busy elsewhere, a descheduled thread holds back one small chunk, not half
   the call); a batch with fewer rows than threads runs the blocks of each
   row in parallel instead.  Either way every row's additions happen in the
   same order, so results are bit-identical for any thread count and any
   schedule.
d) Kernels report, the API judges.  ``report`` has one row per chunk of
   rows: ``[n_bad, bad_row, bad_col, bad_arg, sum_row, sum_arg]`` -- the
   number of negative/NaN/inf values seen, the first one's position and
   input, and the first row whose sum is off by more than ``tol``.  Unused
   slots stay -1.  Nothing is raised here.
e) ``check``: 0 = no checks, 1 = values, 2 = values and row sums: each
   row must sum to 1 within ``tol``, or, if ``tol < 0`` (normalize=True),
   have a positive sum.
   ``transform``: x -> (x + eps) / (row_sum + n_cat * eps), which is both
   eps smoothing and ``normalize``; it costs a first pass for the sums.
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN, exp, fabs, log, log1p, sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from kl_common cimport N_REPORT, floating

cdef extern from "kl_math.h" nogil:
    int kl_openmp_enabled()
    double kl_rel_entr(double p, double q)
    double kl_entr(double p)
    double kl_neg_xlogy(double p, double q)
    double kl_js_term(double p, double q)
    double kl_log_ratio(double q, double p)
    double kl_renyi_log_term(double p, double q, double c)
    void kl_two_sum_add(double* s, double* e, double v)
    int KL_SCALE_VAR, KL_SCALE_STD, KL_SCALE_LOGVAR, KL_SCALE_LOGSTD

cdef extern from "kl_blocks.h" nogil:
    ctypedef struct kl_block_sums:
        double terms
        double sum_p
        double sum_q
        double n_bad
        double n_odd
    int KL_MODE_TERMS, KL_MODE_TERMS_SUMS, KL_MODE_SUMS, KL_MODE_TERMS_SCALED
    # the table of row quantities (KL_ROW_QUANTITIES) and its dispatch
    enum:
        KL_N_ROWS
        KL_ROW_kl, KL_ROW_h, KL_ROW_tv, KL_ROW_hellinger, KL_ROW_hellinger_bc
        KL_ROW_renyi_w, KL_ROW_renyi_s, KL_ROW_renyi_half, KL_ROW_renyi_two
    const char* kl_row_kernel(int kind)
    int kl_row_one_input(int kind)
    double kl_row_finish(int kind, double total)
    double kl_hellinger_fast_total(double b, double sum_p, double sum_q, Py_ssize_t n)
    kl_block_sums kl_block_row_f32(int, int, const float*, Py_ssize_t, const float*,
                                   Py_ssize_t, Py_ssize_t, double, double, double, double)
    kl_block_sums kl_block_row_f64(int, int, const double*, Py_ssize_t, const double*,
                                   Py_ssize_t, Py_ssize_t, double, double, double, double)
    void kl_neg_log_inplace(double* x, Py_ssize_t n)
    kl_block_sums kl_gauss_block_f32(int, int, int, const float*, Py_ssize_t, const float*,
                                     Py_ssize_t, const float*, Py_ssize_t, const float*,
                                     Py_ssize_t, Py_ssize_t)
    kl_block_sums kl_gauss_block_f64(int, int, int, const double*, Py_ssize_t, const double*,
                                     Py_ssize_t, const double*, Py_ssize_t, const double*,
                                     Py_ssize_t, Py_ssize_t)

# One fused type for all float inputs of a call: the API casts mixed
# float32/float64 pairs to float64, so two independent fused types (four
# specializations) would buy nothing.

cdef enum:
    BLOCK = 8192      # elements per block; a fixed constant -> deterministic sums
    LANES = 8         # interleaved accumulators per block

# Kind codes: a line of kl_blocks.h's KL_ROW_QUANTITIES each (KL_ROW_<name>), and
# Renyi's orders inf and 0, which have no blocks of their own (their sums pass is TV's;
# a max is exact; order 0's sum is compensated, _renyi_zero_w).  The quantities with a row kernel of their own are the table's lines that
# name one (_row_kernel, at the end of this file); the others are Renyi's tiers.
cdef extern from *:
    """
    #define KL_ROW_RENYI_MAX KL_N_ROWS
    #define KL_ROW_RENYI_ZERO (KL_N_ROWS + 1)
    """
    enum: KL_ROW_RENYI_MAX, KL_ROW_RENYI_ZERO

cdef enum:
    Q_H = KL_ROW_h
    Q_RENYI = KL_ROW_renyi_w       # Renyi, first tier: w = p^alpha q^(1-alpha) - p
    Q_RENYI_S = KL_ROW_renyi_s     # Renyi, second tier: the terms p^alpha q^(1-alpha)
    Q_RENYI_HALF = KL_ROW_renyi_half   # the first tier at alpha = 1/2 and 2: algebraic
    Q_RENYI_TWO = KL_ROW_renyi_two
    Q_RENYI_MAX = KL_ROW_RENYI_MAX     # order inf: max log(p/q)
    Q_RENYI_ZERO = KL_ROW_RENYI_ZERO   # order 0: W = sum_{p>0} (q - p) summed exactly

BLOCK_SIZE = BLOCK
REPORT_WIDTH = N_REPORT


def openmp_enabled():
    """True if this extension was compiled with OpenMP (else kernels run serially)."""
    return bool(kl_openmp_enabled())


cdef inline bint _is_bad(double x) noexcept nogil:
    # negative, NaN or +inf: not a probability (or count)
    return not (x >= 0.0) or x == INFINITY


cdef inline kl_block_sums _block(int kind, int mode,
                                 const floating* p, Py_ssize_t sp,   # IN
                                 const floating* q, Py_ssize_t sq,   # IN (unused for entropy)
                                 Py_ssize_t n, double eps, double dp, double dq,
                                 double c) noexcept nogil:
    """One block of terms and/or sums: the SIMD loops of kl_blocks.h (c: Renyi's 1 - alpha)."""
    if floating is float:
        return kl_block_row_f32(kind, mode, p, sp, q, sq, n, eps, dp, dq, c)
    else:
        return kl_block_row_f64(kind, mode, p, sp, q, sq, n, eps, dp, dq, c)


cdef inline Py_ssize_t _first_bad(const floating* x, Py_ssize_t sx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(n):
        if _is_bad(x[j * sx]):
            return j
    return -1


cdef inline Py_ssize_t _count_bad(const floating* x, Py_ssize_t sx, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j, count = 0
    for j in range(n):
        count += _is_bad(x[j * sx])
    return count


cdef inline bint _record_bad(int kind, const floating* p, Py_ssize_t sp,
                             const floating* q, Py_ssize_t sq, Py_ssize_t n,
                             Py_ssize_t row, int64_t* rep) noexcept nogil:
    """A block flagged the row (error path only): count its bad values into the
    chunk's report and locate the first; False if there are none (a flag can come
    from a sum that overflowed on finite values)."""
    cdef Py_ssize_t col, n_bad = _count_bad(p, sp, n)
    if not kl_row_one_input(kind):
        n_bad += _count_bad(q, sq, n)
    if n_bad == 0:
        return False
    rep[0] += n_bad
    if rep[1] >= 0:
        return True
    col = _first_bad(p, sp, n)
    if col >= 0:
        rep[1] = row
        rep[2] = col
        rep[3] = 0
        return True
    col = _first_bad(q, sq, n)
    rep[1] = row
    rep[2] = col
    rep[3] = 1
    return True


cdef inline bint _bad_sum(double s, double tol) noexcept nogil:
    # tol >= 0: the row must sum to 1 within tol; tol < 0 (normalize=True):
    # it must only be positive so that it can be divided by its sum.
    if tol < 0.0:
        return not (s > 0.0 and s < INFINITY)
    return not (fabs(s - 1.0) <= tol)


cdef inline void _record_sums(int kind, double sum_p, double sum_q, double tol,
                              Py_ssize_t row, int64_t* rep) noexcept nogil:
    if rep[4] >= 0:
        return
    if _bad_sum(sum_p, tol):
        rep[4] = row
        rep[5] = 0
    elif not kl_row_one_input(kind) and _bad_sum(sum_q, tol):
        rep[4] = row
        rep[5] = 1


cdef inline bint _renyi_first_tier(int kind) noexcept nogil:
    return kind == Q_RENYI or kind == Q_RENYI_HALF or kind == Q_RENYI_TWO


cdef inline double _finish(int kind, double total, double log_base) noexcept nogil:
    # the table's finish (clamps of rounding excesses, square root, halving);
    # Renyi's order inf is a divergence: never negative
    if kind == Q_RENYI_MAX or kind == Q_RENYI_ZERO:
        total = kl_row_finish(KL_ROW_kl, total)
    else:
        total = kl_row_finish(kind, total)
    return total / log_base


cdef inline kl_block_sums _pass(int kind, int mode,
                                const floating* p, Py_ssize_t sp,   # IN
                                const floating* q, Py_ssize_t sq,   # IN
                                Py_ssize_t n, double eps, double dp, double dq, double c,
                                kl_block_sums* parts, int n_threads) noexcept nogil:
    """One pass over a row: its blocks in order (parts == NULL) or in parallel
    into `parts`; either way the block results are added in block order."""
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK, b, start
    cdef kl_block_sums acc, r
    acc.terms = 0.0
    acc.sum_p = 0.0
    acc.sum_q = 0.0
    acc.n_bad = 0.0
    acc.n_odd = 0.0
    if parts != NULL:
        for b in prange(n_blocks, schedule="dynamic", num_threads=n_threads):
            start = b * BLOCK
            parts[b] = _block(kind, mode, p + start * sp, sp, q + start * sq, sq,
                              min(BLOCK, n - start), eps, dp, dq, c)
    for b in range(n_blocks):
        if parts != NULL:
            r = parts[b]
        else:
            start = b * BLOCK
            r = _block(kind, mode, p + start * sp, sp, q + start * sq, sq,
                       min(BLOCK, n - start), eps, dp, dq, c)
        acc.terms += r.terms
        acc.sum_p += r.sum_p
        acc.sum_q += r.sum_q
        acc.n_bad += r.n_bad
    return acc


cdef inline double _row(int kind,
                        const floating* p, Py_ssize_t sp,      # IN
                        const floating* q, Py_ssize_t sq,      # IN
                        Py_ssize_t n, int check, double tol, double eps, bint transform,
                        double c, double log_base, Py_ssize_t row, int64_t* rep,
                        kl_block_sums* parts, int n_threads) noexcept nogil:
    """One whole row: a first pass for the sums if the inputs are transformed,
    then the terms (with the sums and checks folded in when they are not)."""
    cdef kl_block_sums sums, terms
    cdef double dp = 1.0, dq = 1.0, total = NAN
    if floating is float:
        if kind == KL_ROW_hellinger and not transform:
            # two tiers (kl_hellinger_fast_total): P + Q - 2B where its bound holds,
            # else (NaN) the accurate terms; one pass gives the sums for the checks
            sums = _pass(KL_ROW_hellinger_bc, KL_MODE_TERMS_SUMS, p, sp, q, sq, n, 0.0, 1.0,
                         1.0, c, parts, n_threads)
            total = kl_hellinger_fast_total(sums.terms, sums.sum_p, sums.sum_q, n)
            if total != total:
                total = _pass(kind, KL_MODE_TERMS, p, sp, q, sq, n, 0.0, 1.0, 1.0, c, parts,
                              n_threads).terms
            if check > 0 and sums.n_bad > 0 and _record_bad(kind, p, sp, q, sq, n, row, rep):
                pass
            elif check == 2:
                _record_sums(kind, sums.sum_p, sums.sum_q, tol, row, rep)
            return _finish(kind, total, log_base)
    if transform or kind == Q_RENYI_MAX or kind == Q_RENYI_ZERO:
        sums = _pass(kind, KL_MODE_SUMS, p, sp, q, sq, n, 0.0, 1.0, 1.0, c, parts, n_threads)
        if transform:
            dp = sums.sum_p + n * eps
            dq = sums.sum_q + n * eps
        if kind != Q_RENYI_MAX and kind != Q_RENYI_ZERO:
            terms = _pass(kind, KL_MODE_TERMS_SCALED, p, sp, q, sq, n, eps, dp, dq, c, parts,
                          n_threads)
    else:
        # Renyi always needs P = sum p (its finish divides by it)
        terms = _pass(kind, KL_MODE_TERMS_SUMS if check > 0 or _renyi_first_tier(kind)
                      else KL_MODE_TERMS, p, sp, q, sq, n, 0.0, 1.0, 1.0, c, parts, n_threads)
        sums = terms
    if check > 0 and sums.n_bad > 0 and _record_bad(kind, p, sp, q, sq, n, row, rep):
        pass
    elif check == 2:
        _record_sums(kind, sums.sum_p, sums.sum_q, tol, row, rep)
    if kind == Q_RENYI_MAX:
        total = _max_log_ratio(p, sp, q, sq, n, transform, eps, dp, dq)
    elif kind == Q_RENYI_ZERO:
        total = _renyi_total(p, sp, q, sq, n, transform, eps, dp, dq, 1.0,
                             _renyi_zero_w(p, sp, q, sq, n, transform, eps, dp, dq),
                             1.0 if transform else sums.sum_p, parts, n_threads)
    elif _renyi_first_tier(kind):
        total = _renyi_total(p, sp, q, sq, n, transform, eps, dp, dq, c, terms.terms,
                             1.0 if transform else sums.sum_p, parts, n_threads)
    else:
        total = terms.terms
    return _finish(kind, total, log_base)


cdef inline double _renyi_total(const floating* p, Py_ssize_t sp,    # IN
                                const floating* q, Py_ssize_t sq,    # IN
                                Py_ssize_t n, bint transform, double eps, double dp,
                                double dq, double c, double w, double sum_p,
                                kl_block_sums* parts, int n_threads) noexcept nogil:
    """D_alpha of one row from its first tier's W = S - P (`w`) and P (`sum_p`):
    log1p(W/P) / (alpha - 1), Renyi's definition for (possibly incomplete)
    distributions, which divides S by P.  Rows where W/P < -1/2 (S < P/2:
    W cancels) take the terms of S; rows where S over- or underflows, the
    log domain.  c = 1 - alpha."""
    cdef double s_sum
    if w != w:
        return w
    if w < INFINITY and w >= -0.5 * sum_p:
        return log1p(w / sum_p) / -c
    if w < INFINITY:
        s_sum = _pass(Q_RENYI_S, KL_MODE_TERMS_SCALED if transform else KL_MODE_TERMS,
                      p, sp, q, sq, n, eps, dp, dq, c, parts, n_threads).terms
        if s_sum > 0.0 and s_sum < INFINITY:
            return log(s_sum / sum_p) / -c
    return (_renyi_log_sum(p, sp, q, sq, n, transform, eps, dp, dq, c) - log(sum_p)) / -c


cdef inline double _scaled(double x, bint transform, double eps, double d) noexcept nogil:
    return (x + eps) / d if transform else x


cdef double _renyi_log_sum(const floating* p, Py_ssize_t sp,    # IN
                           const floating* q, Py_ssize_t sq,    # IN
                           Py_ssize_t n, bint transform, double eps, double dp,
                           double dq, double c) noexcept nogil:
    """log sum p^alpha q^(1-alpha), element by element in order (log-sum-exp)."""
    cdef Py_ssize_t j
    cdef double t, top = -INFINITY, acc = 0.0
    for j in range(n):
        t = kl_renyi_log_term(_scaled(p[j * sp], transform, eps, dp),
                              _scaled(q[j * sq], transform, eps, dq), c)
        if t != t:
            return t
        if t > top:
            top = t
    if top == INFINITY or top == -INFINITY:
        return top
    for j in range(n):
        acc += exp(kl_renyi_log_term(_scaled(p[j * sp], transform, eps, dp),
                                     _scaled(q[j * sq], transform, eps, dq), c) - top)
    return top + log(acc)


cdef double _renyi_zero_w(const floating* p, Py_ssize_t sp,    # IN
                          const floating* q, Py_ssize_t sq,    # IN
                          Py_ssize_t n, bint transform, double eps, double dp,
                          double dq) noexcept nogil:
    """Renyi of order 0: W = S - P = sum over p > 0 of (q - p), element by element in
    order with error-free additions (TwoSum, the errors summed apart).  Its terms
    cancel to W, which can lie many orders below them (two rows that differ only by
    the rounding of their sums) while order 0 is -log1p(W/P) itself: a plain sum,
    good to eps * sum|q - p| in double, missed the float32 contract (1 ULP of the
    result) there by up to 1e6 ULP.  NaN for NaN or negative values; infinities
    add apart (inf - inf = NaN)."""
    cdef Py_ssize_t j
    cdef double x, y, s = 0.0, e = 0.0, big = 0.0
    for j in range(n):
        x = _scaled(p[j * sp], transform, eps, dp)
        y = _scaled(q[j * sq], transform, eps, dq)
        if not (x >= 0.0 and y >= 0.0):
            return NAN
        if x == 0.0:
            continue
        if x == INFINITY or y == INFINITY:
            big += y - x
            continue
        kl_two_sum_add(&s, &e, y)
        kl_two_sum_add(&s, &e, -x)
    return (s + e) + big


cdef double _max_log_ratio(const floating* p, Py_ssize_t sp,    # IN
                           const floating* q, Py_ssize_t sq,    # IN
                           Py_ssize_t n, bint transform, double eps, double dp,
                           double dq) noexcept nogil:
    """Renyi of order inf: max over p > 0 of log(p/q), accurate where p ~ q; NaN
    for a row without p > 0 (or with NaN or negative values)."""
    cdef Py_ssize_t j
    cdef double x, y, top = NAN
    for j in range(n):
        x = _scaled(p[j * sp], transform, eps, dp)
        y = _scaled(q[j * sq], transform, eps, dq)
        if x != x or y != y or x < 0.0 or y < 0.0:
            return NAN
        if x == 0.0:
            continue
        if y == 0.0:
            return INFINITY
        x = kl_log_ratio(x, y)
        if not (x <= top):      # NaN (the first) or larger
            top = x
    return top


cdef inline const floating* _row_ptr(const floating[:, :] x, Py_ssize_t i) noexcept nogil:
    return <const floating*> (<const char*> &x[0, 0] + i * x.strides[0])


cdef void _rows(int kind,
                const floating[:, :] p,         # IN  (n_rows, n_cat)
                const floating[:, :] q,         # IN  (n_rows, n_cat); p again for entropy
                floating[::1] out,              # OUT (n_rows,)
                int64_t[:, ::1] report,         # OUT (n_chunks, N_REPORT)
                int check, double tol, double eps, bint transform,
                double c, double log_base, int n_threads) noexcept nogil:
    cdef Py_ssize_t n_rows = p.shape[0], n = p.shape[1]
    cdef Py_ssize_t sp = p.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t sq = q.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t n_chunks = report.shape[0], k, i, lo, hi
    if n_rows == 0 or n == 0:
        return
    if n_rows < n_threads and n > BLOCK:
        for i in range(n_rows):
            out[i] = <floating> _long_row(kind, _row_ptr(p, i), sp, _row_ptr(q, i), sq, n,
                                          check, tol, eps, transform, c, log_base, i,
                                          &report[0, 0], n_threads)
        return
    if n_threads == 1 or n_chunks == 1:
        for i in range(n_rows):
            out[i] = <floating> _row(kind, _row_ptr(p, i), sp, _row_ptr(q, i), sq, n,
                                     check, tol, eps, transform, c, log_base, i, &report[0, 0],
                                     NULL, 1)
        return
    for k in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
        lo = k * n_rows // n_chunks
        hi = (k + 1) * n_rows // n_chunks
        for i in range(lo, hi):
            out[i] = <floating> _row(kind, _row_ptr(p, i), sp, _row_ptr(q, i), sq, n,
                                     check, tol, eps, transform, c, log_base, i, &report[k, 0],
                                     NULL, 1)


cdef double _long_row(int kind,
                      const floating* p, Py_ssize_t sp,    # IN
                      const floating* q, Py_ssize_t sq,    # IN
                      Py_ssize_t n, int check, double tol, double eps, bint transform,
                      double c, double log_base, Py_ssize_t row, int64_t* rep,
                      int n_threads) noexcept nogil:
    """One long row with its blocks in parallel; same additions, same order as _row."""
    cdef kl_block_sums* parts = <kl_block_sums*> malloc(
        ((n + BLOCK - 1) // BLOCK) * sizeof(kl_block_sums))
    cdef double result
    if parts == NULL:
        return NAN
    result = _row(kind, p, sp, q, sq, n, check, tol, eps, transform, c, log_base, row, rep,
                  parts, n_threads)
    free(parts)
    return result


def _reduce_rows(int kind, const floating[:, :] p, const floating[:, :] q,
                 floating[::1] out, int64_t[:, ::1] report, int check, double tol,
                 double eps, bint transform, double c, double log_base, int n_threads):
    """out[i] = finish(sum_j term(p[i, j], q[i, j])) / log_base for quantity `kind`
    (a KL_ROW_* code; q is p again for entropy); the row kernels below call it."""
    with nogil:
        _rows(kind, p, q, out, report, check, tol, eps, transform, c, log_base, n_threads)


def renyi_rows(const floating[:, :] p, const floating[:, :] q, floating[::1] out,
               int64_t[:, ::1] report, int check, double tol, double eps, bint transform,
               double log_base, double alpha, int n_threads):
    """out[i] = log(sum_j p^alpha q^(1-alpha) / sum_j p) / (alpha - 1) / log_base:
    KL at alpha = 1, max log(p/q) over p > 0 at alpha = inf (alpha >= 0)."""
    cdef int kind = Q_RENYI
    if alpha == 1.0:
        kind = KL_ROW_kl
    elif alpha == INFINITY:
        kind = Q_RENYI_MAX
    elif alpha == 0.0:
        kind = Q_RENYI_ZERO
    elif alpha == 0.5:
        kind = Q_RENYI_HALF
    elif alpha == 2.0:
        kind = Q_RENYI_TWO
    with nogil:
        _rows(kind, p, q, out, report, check, tol, eps, transform, 1.0 - alpha, log_base,
              n_threads)


cdef enum:
    LABEL_CHUNK = 256   # rows whose picked probabilities are logged in one vector loop


cdef inline double _label_value(int64_t lab, Py_ssize_t i,
                                const floating* q, Py_ssize_t sq, Py_ssize_t n,
                                int check, double eps, bint transform,
                                int64_t ignore_index, bint has_ignore,
                                int64_t* rep) noexcept nogil:
    """The probability row i's label picks (transformed if asked), NaN if ignored."""
    cdef Py_ssize_t n_bad = 0
    cdef double value
    cdef kl_block_sums sums
    if has_ignore and lab == ignore_index:
        return NAN
    if lab < 0 or lab >= n:
        # out of range: always reported, whatever `check` says
        rep[0] += 1
        if rep[1] < 0:
            rep[1] = i
            rep[2] = -1
            rep[3] = 0
        return NAN
    value = q[lab * sq]
    if transform:
        sums = _pass(Q_H, KL_MODE_SUMS, q, sq, q, sq, n, 0.0, 1.0, 1.0, 0.0, NULL, 1)
        n_bad = _count_bad(q, sq, n) if sums.n_bad > 0 else 0
        value = (value + eps) / (sums.sum_p + n * eps)
    elif check > 0:
        n_bad = _is_bad(value) or value > 1.0
    if check > 0 and n_bad > 0:
        rep[0] += n_bad
        if rep[1] < 0:
            rep[1] = i
            rep[2] = lab if not transform else _first_bad(q, sq, n)
            rep[3] = 1
    return value


cdef void _label_rows(const int64_t[:] labels, const floating[:, :] q, floating[::1] out,
                      Py_ssize_t lo, Py_ssize_t hi, int check, double eps, bint transform,
                      int64_t ignore_index, bint has_ignore, double log_base,
                      int64_t* rep) noexcept nogil:
    """Rows lo..hi in chunks: gather the picked probabilities, then one vector -log."""
    cdef double buf[LABEL_CHUNK]
    cdef Py_ssize_t n = q.shape[1], sq = q.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t start = lo, m, k
    while start < hi:
        m = min(<Py_ssize_t> LABEL_CHUNK, hi - start)
        for k in range(m):
            buf[k] = _label_value(labels[start + k], start + k, _row_ptr(q, start + k), sq, n,
                                  check, eps, transform, ignore_index, has_ignore, rep)
        kl_neg_log_inplace(buf, m)
        for k in range(m):
            out[start + k] = <floating> (buf[k] / log_base)
        start += m


def cross_entropy_label_rows(const int64_t[:] labels, const floating[:, :] q,
                             floating[::1] out, int64_t[:, ::1] report, int check,
                             double eps, bint transform, int64_t ignore_index,
                             bint has_ignore, double log_base, int n_threads):
    """out[i] = -log q[i, labels[i]] / log_base; NaN where labels[i] == ignore_index.

    Labels out of [0, n_cat) are counted in ``report`` (arg 0) even when
    ``check == 0``; without ``transform`` only the picked value of q is read
    and checked (arg 1), so the call costs O(n_rows), not O(n_rows * n_cat).
    """
    cdef Py_ssize_t n_rows = q.shape[0], n_chunks = report.shape[0], c
    if n_rows == 0 or q.shape[1] == 0:
        return
    with nogil:
        if n_threads == 1 or n_chunks == 1:
            _label_rows(labels, q, out, 0, n_rows, check, eps, transform, ignore_index,
                        has_ignore, log_base, &report[0, 0])
        else:
            for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
                _label_rows(labels, q, out, c * n_rows // n_chunks,
                            (c + 1) * n_rows // n_chunks, check, eps, transform,
                            ignore_index, has_ignore, log_base, &report[c, 0])


cdef inline bint _bad_scale(int scale, double s) noexcept nogil:
    if scale == KL_SCALE_VAR or scale == KL_SCALE_STD:
        return not (s > 0.0) or s == INFINITY
    return s != s or fabs(s) == INFINITY


cdef inline bint _bad_mean(double m) noexcept nogil:
    return m != m or fabs(m) == INFINITY


cdef inline double _gauss_row(const floating* m1, Py_ssize_t sm1,
                              const floating* s1, Py_ssize_t ss1,
                              const floating* m2, Py_ssize_t sm2,
                              const floating* s2, Py_ssize_t ss2,
                              bint prior, Py_ssize_t n, int check, int scale,
                              double log_base, Py_ssize_t row, int64_t* rep) noexcept nogil:
    """2 KL summed over one row in blocks (kl_blocks.h), then halved; bad values reported."""
    cdef Py_ssize_t b, j, k, st, m
    cdef double total = 0.0, n_bad = 0.0
    cdef kl_block_sums r
    for b in range((n + BLOCK - 1) // BLOCK):
        st = b * BLOCK
        m = min(BLOCK, n - st)
        if floating is float:
            r = kl_gauss_block_f32(scale, prior, check, m1 + st * sm1, sm1, s1 + st * ss1, ss1,
                                   m2 + st * sm2, sm2, s2 + st * ss2, ss2, m)
        else:
            r = kl_gauss_block_f64(scale, prior, check, m1 + st * sm1, sm1, s1 + st * ss1, ss1,
                                   m2 + st * sm2, sm2, s2 + st * ss2, ss2, m)
        total += r.terms
        n_bad += r.n_bad
    if n_bad > 0:
        rep[0] += <int64_t> n_bad
        if rep[1] < 0:
            for j in range(n):
                k = -1
                if _bad_mean(m1[j * sm1]):
                    k = 0
                elif _bad_scale(scale, s1[j * ss1]):
                    k = 1
                elif not prior and _bad_mean(m2[j * sm2]):
                    k = 2
                elif not prior and _bad_scale(scale, s2[j * ss2]):
                    k = 3
                if k >= 0:
                    rep[1] = row
                    rep[2] = j
                    rep[3] = k
                    break
    total = 0.5 * total
    if total < 0.0:
        total = 0.0
    return total / log_base


cdef void _gauss_rows(const floating[:, :] m1, const floating[:, :] s1,
                      const floating[:, :] m2, const floating[:, :] s2, bint prior,
                      floating[::1] out, int64_t[:, ::1] report, int check, int scale,
                      double log_base, int n_threads) noexcept nogil:
    cdef Py_ssize_t n_rows = m1.shape[0], n = m1.shape[1]
    cdef Py_ssize_t it = <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t sm1 = m1.strides[1] // it, ss1 = s1.strides[1] // it
    cdef Py_ssize_t sm2 = m2.strides[1] // it, ss2 = s2.strides[1] // it
    cdef Py_ssize_t n_chunks = report.shape[0], c, i, lo, hi
    if n_rows == 0 or n == 0:
        return
    if n_threads == 1 or n_chunks == 1:
        for i in range(n_rows):
            out[i] = <floating> _gauss_row(_row_ptr(m1, i), sm1, _row_ptr(s1, i), ss1,
                                           _row_ptr(m2, i), sm2, _row_ptr(s2, i), ss2,
                                           prior, n, check, scale, log_base, i, &report[0, 0])
        return
    for c in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
        lo = c * n_rows // n_chunks
        hi = (c + 1) * n_rows // n_chunks
        for i in range(lo, hi):
            out[i] = <floating> _gauss_row(_row_ptr(m1, i), sm1, _row_ptr(s1, i), ss1,
                                           _row_ptr(m2, i), sm2, _row_ptr(s2, i), ss2,
                                           prior, n, check, scale, log_base, i, &report[c, 0])


def gaussian_kl_rows(const floating[:, :] mu1, const floating[:, :] s1,
                     const floating[:, :] mu2, const floating[:, :] s2,
                     floating[::1] out, int64_t[:, ::1] report, int check, int scale,
                     double log_base, int n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(mu2, s2))[i, j] / log_base, s in `scale`."""
    with nogil:
        _gauss_rows(mu1, s1, mu2, s2, False, out, report, check, scale, log_base, n_threads)


def gaussian_kl_prior_rows(const floating[:, :] mu1, const floating[:, :] s1,
                           floating[::1] out, int64_t[:, ::1] report, int check, int scale,
                           double log_base, int n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(0, 1))[i, j] / log_base, s in `scale`."""
    with nogil:
        _gauss_rows(mu1, s1, mu1, s1, True, out, report, check, scale, log_base, n_threads)


def rel_entr_1d(const floating[:] x, const floating[:] y, floating[:] out, int n_threads):
    """out[i] = rel_entr(x[i], y[i]): the elementwise term, for the scipy drop-in."""
    cdef Py_ssize_t n = x.shape[0], i
    with nogil:
        if n_threads == 1 or n < 4 * BLOCK:
            for i in range(n):
                out[i] = <floating> kl_rel_entr(x[i], y[i])
        else:
            for i in prange(n, schedule="static", num_threads=n_threads):
                out[i] = <floating> kl_rel_entr(x[i], y[i])


# ---- the small-call fast path ------------------------------------------------
# One short distribution costs a few microseconds in scipy; the general path
# (broadcasting, dispatch, reports) costs tens.  `vector_fast` takes the common
# case -- 1-D contiguous native float64/float32 arrays of one length, default
# options -- straight to one serial row, and returns None for anything else,
# including invalid data, so that the general path handles it and words the
# error.

cimport numpy as cnp
from libc.math cimport sqrt

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyArray_Scalar(void* data, cnp.dtype descr, object base)

cdef double _EPS32 = 1.1920928955078125e-07


cdef double _sum_tolerance(double eps, Py_ssize_t n) noexcept nogil:
    # kl_fast._inputs.validation.sum_tolerance (the default), for the dtype's eps;
    # tests/test_validation.py checks that the two agree
    cdef double t = n * _EPS32
    if t < 1e-6:
        t = 1e-6
    if eps >= _EPS32:
        if t < sqrt(eps):
            t = sqrt(eps)
        if t < 4.0 * n * eps:
            t = 4.0 * n * eps
    return t if t < 1e-3 else 1e-3


def sum_tolerance(double eps, Py_ssize_t n):
    """The one-vector fast path's default row-sum tolerance (for the tests)."""
    return _sum_tolerance(eps, n)


cdef bint _plain_vector(object x, int typenum, Py_ssize_t n):
    if not cnp.PyArray_CheckExact(x):
        return False
    cdef cnp.ndarray a = <cnp.ndarray> x
    return (cnp.PyArray_NDIM(a) == 1 and cnp.PyArray_TYPE(a) == typenum
            and cnp.PyArray_DIM(a, 0) == n and cnp.PyArray_ISCARRAY_RO(a)
            and cnp.PyArray_ISNOTSWAPPED(a))


def vector_fast(object p, object q, int kind, Py_ssize_t max_n):
    """KL/CE/JS (q given) or entropy (q None) of one plain 1-D distribution, or None."""
    cdef int typenum
    cdef Py_ssize_t n
    cdef int64_t rep[6]
    cdef double result
    cdef float r32
    if not cnp.PyArray_CheckExact(p):
        return None
    typenum = cnp.PyArray_TYPE(<cnp.ndarray> p)
    if typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT:
        return None
    n = cnp.PyArray_SIZE(<cnp.ndarray> p)
    if n == 0 or n > max_n or not _plain_vector(p, typenum, n):
        return None
    if kind != Q_H and not _plain_vector(q, typenum, n):
        return None
    rep[0] = 0
    rep[1] = -1
    rep[4] = -1
    if typenum == cnp.NPY_DOUBLE:
        result = _row(kind, <const double*> cnp.PyArray_DATA(<cnp.ndarray> p), 1,
                      <const double*> cnp.PyArray_DATA(<cnp.ndarray> (p if kind == Q_H else q)),
                      1, n, 2, _sum_tolerance(2.220446049250313e-16, n), 0.0, False, 0.0, 1.0, 0,
                      rep, NULL, 1)
    else:
        result = _row(kind, <const float*> cnp.PyArray_DATA(<cnp.ndarray> p), 1,
                      <const float*> cnp.PyArray_DATA(<cnp.ndarray> (p if kind == Q_H else q)),
                      1, n, 2, _sum_tolerance(1.1920928955078125e-07, n), 0.0, False, 0.0, 1.0, 0,
                      rep, NULL, 1)
    if rep[0] != 0 or rep[4] >= 0:
        return None
    if typenum == cnp.NPY_DOUBLE:
        return PyArray_Scalar(&result, cnp.PyArray_DescrFromType(cnp.NPY_DOUBLE), None)
    r32 = <float> result
    return PyArray_Scalar(&r32, cnp.PyArray_DescrFromType(cnp.NPY_FLOAT), None)


def _row_kernel(int kind):
    """The row kernel of line `kind` of kl_blocks.h's KL_ROW_QUANTITIES: the same
    arguments as every backend's kernel of that name (one input for entropy)."""
    if kl_row_one_input(kind):
        def kernel(p, out, report, int check, double tol, double eps, bint transform,
                   double log_base, int n_threads):
            _reduce_rows(kind, p, p, out, report, check, tol, eps, transform, 0.0, log_base,
                         n_threads)
    else:
        def kernel(p, q, out, report, int check, double tol, double eps, bint transform,
                   double log_base, int n_threads):
            _reduce_rows(kind, p, q, out, report, check, tol, eps, transform, 0.0, log_base,
                         n_threads)
    name = kl_row_kernel(kind).decode()
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = (f"out[i] = {name[:-len('_rows')]}(p[i], q[i]) / log_base: a line of "
                      "src/kl_blocks.h's KL_ROW_QUANTITIES.")
    return kernel


# {row kernel: kind code}: a kernel for every line of KL_ROW_QUANTITIES that names one
# (kl_rows, entropy_rows, ..., chi2_rows), made here so that adding a line there adds
# its kernel; also the one-vector shortcut's codes (vector_fast)
QUANTITY_CODES = {kl_row_kernel(k).decode(): k for k in range(KL_N_ROWS) if kl_row_kernel(k)[0]}
globals().update({name: _row_kernel(kind) for name, kind in QUANTITY_CODES.items()})


cdef extern from "kl_vmath.h" nogil:
    double kl_vlog(double x)
    double kl_vlog1p(double x)
    double kl_vexp(double x)
    double kl_vexp_fast(double x)


def vmath(str name, const double[::1] x, double[::1] out):
    """Apply the kernels' own log, log1p, exp or exp_fast (the fast tiers' exp, for
    arguments in [-708, 709]) elementwise (for the accuracy tests)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int which = {"log": 0, "log1p": 1, "exp": 2, "exp_fast": 3}[name]
    with nogil:
        for i in range(n):
            if which == 0:
                out[i] = kl_vlog(x[i])
            elif which == 1:
                out[i] = kl_vlog1p(x[i])
            elif which == 2:
                out[i] = kl_vexp(x[i])
            else:
                out[i] = kl_vexp_fast(x[i])
