"""Row kernels for log-probability and logits inputs, Numba backend.

A mirror of ``src/spaces.pyx`` and ``src/kl_spaces.h`` (read the
formulas there): same entry points, report layout, row loading, passes and
lane order (element k to lane k % 8, lanes combined by the same tree), on the
same vector math (``_numba.kl_math``), so both backends return the same bits.
Compiled lazily on first use for one signature per dtype, through numba's
disk cache (``_numba.cache``), like ``_numba.rows``; rows run in parallel
(one row per thread), so the thread count never changes a result.  Scratch is
allocated once per chunk of rows; a row allocates nothing.
"""

import numba
import numpy as np

from . import kl_math as m
from .cache import compile_kernel, register_source, row_types
from .lanes import borrow, extremes_pair, row_max, row_view, sum8
from .rows import call_parallel, compile_once, dtype_name

register_source(__file__)
register_source(m.__file__)

__all__ = [
    "kl_space_rows",
    "cross_entropy_space_rows",
    "entropy_space_rows",
    "cross_entropy_label_space_rows",
    "compiled",
]

PROB, LOG, LOGITS = 0, 1, 2
_Q_KL, _Q_CE, _Q_H = 0, 1, 2


# -- compiled code (module level, so that numba caches it on disk) ---------------------
# Every lane sum of kl_spaces.h (element k to lane k % 8, combined by kl_tree8) is
# spelled as a term loop writing a row-sized buffer -- a plain loop LLVM vectorizes --
# and ``sum8`` of the buffer: the same additions in the same order.  Counts of exact
# ones (the maximum's ties, infinite terms) are integers, which any order gives exactly.
# (Lanes held in np.zeros(8) arrays cost a heap allocation each per row, and their
# loop-carried stores through memory kept the loops scalar: logits KL ran at 3.2x
# Cython's time.)

njit = numba.njit(nogil=True, error_model="numpy")
inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
_INF = np.inf


@inline
def lo_of(x, mx, t):
    """The rounding error of t = x - mx, 0 where not finite (kl_sp_lo)."""
    bv = t - x
    lo = (x - (t - bv)) + (-mx - bv)
    return lo if lo - lo == 0.0 else 0.0


@inline
def exp_diff(x, mx):
    """exp(x - mx) with the subtraction's rounding corrected."""
    t = x - mx
    e0 = m.vexp(t)
    return m.fma(e0, lo_of(x, mx, t), e0)


@inline
def sumexp_m1(x, n, mx, t1):
    """S - 1, the maximum's exact ones counted apart (kl_sp_sumexp_m1)."""
    cnt = 0
    for k in range(n):
        e = exp_diff(x[k], mx)
        top = 1.0 if x[k] == mx else 0.0
        t1[k] = e - e * top
        cnt += 1 if x[k] == mx else 0
    return (np.float64(cnt) - 1.0) + sum8(t1, n)


@inline
def normalizer(mx, sm1):
    return 1.0 + sm1 if (mx > -_INF and mx < _INF) else 0.0


@inline
def shifted_diff(a, b, sh, sl):
    """(a - b) - (sh + sl) as (rounded, rounding error): kl_sp_shifted_diff."""
    t = a - b
    e = lo_of(a, b, t)
    u = t - sh
    f = lo_of(t, sh, u)
    v = (e + f) - sl
    hi = u + v
    return hi, lo_of(u, -v, hi)


@inline
def weights(space, x, n, w, lp, t1):
    """(l1p, top, check) and w, lp filled: kl_sp_weights."""
    if space == PROB:
        for k in range(n):
            w[k] = x[k]
            lp[k] = m.vlog(x[k])
        return 0.0, 0.0, sum8(x, n)
    if space == LOG:
        for k in range(n):
            w[k] = m.vexp(x[k])
            lp[k] = x[k]
        return 0.0, 0.0, sum8(w, n)
    # logits: e = exp(x - max) once, kept in w and divided by their sum
    mx = row_max(x, n)
    cnt = 0
    for k in range(n):
        e = exp_diff(x[k], mx)
        top = 1.0 if x[k] == mx else 0.0
        w[k] = e
        t1[k] = e - e * top
        cnt += 1 if x[k] == mx else 0
    sm1 = (np.float64(cnt) - 1.0) + sum8(t1, n)
    s = 1.0 + sm1
    l1p = m.vlog1p(sm1)
    for k in range(n):
        w[k] = w[k] / s
        lp[k] = (x[k] - mx) - l1p
    return l1p, mx, normalizer(mx, sm1)


@inline
def entropy(space, x, n, t1, t2):
    if space == LOG:
        for k in range(n):
            e = m.vexp(x[k])
            t1[k] = 0.0 if e == 0.0 else -e * x[k]
            t2[k] = e
        return sum8(t1, n), sum8(t2, n), 0.0
    mx = row_max(x, n)
    cnt = 0
    for k in range(n):
        t = x[k] - mx
        lo = lo_of(x[k], mx, t)
        e0 = m.vexp(t)
        e = m.fma(e0, lo, e0)
        et = m.fma(e, t, e0 * lo)
        top = 1.0 if x[k] == mx else 0.0
        t1[k] = e - e * top
        cnt += 1 if x[k] == mx else 0
        t2[k] = 0.0 if e == 0.0 else et
    sm1 = (np.float64(cnt) - 1.0) + sum8(t1, n)
    value = m.vlog1p(sm1) - sum8(t2, n) / (1.0 + sm1)
    return value, normalizer(mx, sm1), 0.0


@inline
def cross_entropy(qspace, p, y, n, want_check, t1, t2):
    if qspace == LOG:
        for k in range(n):
            t1[k] = 0.0 if p[k] == 0.0 else -p[k] * y[k]
        a3 = 0.0
        if want_check:
            for k in range(n):
                t2[k] = m.vexp(y[k])
            a3 = sum8(t2, n)
        return sum8(t1, n), sum8(p, n), a3
    mx = row_max(y, n)
    cnt = 0
    for k in range(n):
        t = y[k] - mx
        lo = lo_of(y[k], mx, t)
        e0 = m.vexp(t)
        e = m.fma(e0, lo, e0)
        top = 1.0 if y[k] == mx else 0.0
        pt = m.fma(p[k], t, p[k] * lo)
        t1[k] = e - e * top
        cnt += 1 if y[k] == mx else 0
        t2[k] = 0.0 if p[k] == 0.0 else pt
    sm1 = (np.float64(cnt) - 1.0) + sum8(t1, n)
    sp = sum8(p, n)
    return sp * m.vlog1p(sm1) - sum8(t2, n), sp, normalizer(mx, sm1)


@inline
def kl_plain(w, lp, y, n, my, l1py, t1):
    for k in range(n):
        t1[k] = 0.0 if w[k] == 0.0 else w[k] * (lp[k] - ((y[k] - my) - l1py))
    return sum8(t1, n)


@inline
def kl_qlogits(pspace, x, y, diff, use_diff, n, w, d, dlo, t1, t2, t3):
    l1p, top, check_p = weights(pspace, x, n, w, d, t1)
    # the shift (top - my) of kl_sp_kl_qlogits, in double-double
    my = row_max(y, n)
    sh = top - my
    sl = lo_of(top, my, sh)
    if not (sh - sh == 0.0):
        sh = 0.0
    # one loop per case (the conditions are loop-invariant)
    if pspace == LOGITS and use_diff:
        for k in range(n):
            d[k], dlo[k] = shifted_diff(diff[k], 0.0, sh, sl)
    elif pspace == LOGITS:
        for k in range(n):
            d[k], dlo[k] = shifted_diff(x[k], y[k], sh, sl)
    else:
        for k in range(n):
            d[k], dlo[k] = shifted_diff(d[k], y[k], sh, sl)
    inf_terms = 0
    zeros = 0
    for k in range(n):
        on = w[k] > 0.0
        inf_terms += 1 if (on and y[k] == -_INF) else 0
        zeros += 0 if on else 1
        wd = w[k] * d[k]
        t1[k] = wd if wd == wd else 0.0   # 0 x inf where w = 0 (kl_spaces.h)
        t2[k] = w[k] if on else 0.0
    check_q = 1.0 if (my > -_INF and my < _INF) else 0.0
    if inf_terms > 0:
        return _INF, check_p, check_q
    s = sum8(t1, n) / sum8(t2, n)
    for k in range(n):
        # c = d - s and its rounding error (plus d's), kl_sp_kl_qlogits
        on = w[k] > 0.0
        ch = d[k] - s
        cl = lo_of(d[k], s, ch) + dlo[k]
        c = ch if on else 0.0   # (cl is finite: a zero weight zeroes both terms)
        f = m.vexpm1mx(-c)
        t1[k] = w[k] * (f - cl * (f - c))
        t2[k] = w[k] * (c + cl)
    s1 = sum8(t1, n)
    s2 = sum8(t2, n)
    rest = 0.0
    if zeros > 0:
        # q's mass where p is 0: a pass of its own, only where p has zeros, as in
        # the C form (in the loop above, LLVM computed the exp for every element:
        # a third of the row's time)
        for k in range(n):
            t3[k] = 0.0 if w[k] > 0.0 else m.vexp(((y[k] - my) + s) - l1p)
        rest = sum8(t3, n)
    kl = s2 + m.vlog1p(s1 - s2 + rest)
    if not (kl - kl == 0.0) or not (s1 < 1e300) or not (rest < 1e300):
        l1p, top, check_p = weights(pspace, x, n, w, d, t1)
        l1py = m.vlog1p(sumexp_m1(y, n, my, t1))
        kl = kl_plain(w, d, y, n, my, l1py, t1)
    return kl, check_p, check_q


@inline
def kl_direct(pspace, qspace, x, y, n, w, d, t1, t2):
    l1p, top, check_p = weights(pspace, x, n, w, d, t1)
    if qspace == PROB:
        for k in range(n):
            t1[k] = 0.0 if w[k] == 0.0 else w[k] * (d[k] - m.vlog(y[k]))
        return sum8(t1, n), check_p, sum8(y, n)
    for k in range(n):
        t1[k] = 0.0 if w[k] == 0.0 else w[k] * (d[k] - y[k])
        t2[k] = m.vexp(y[k])
    return sum8(t1, n), check_p, sum8(t2, n)


@inline
def kl(pspace, qspace, x, y, diff, use_diff, n, w, d, dlo, t1, t2, t3):
    if qspace == LOGITS:
        return kl_qlogits(pspace, x, y, diff, use_diff, n, w, d, dlo, t1, t2, t3)
    # q not in logits: direct terms (kl_sp_kl_direct)
    return kl_direct(pspace, qspace, x, y, n, w, d, t1, t2)



# -- the fast tiers of float32 rows (kl_spaces.h: kl_sp_*_fast) ---------------------------
# The same forms, bounds and additions as the C fast tiers: lane sums as term buffers
# and sum8; maxima, minima and counts are exact in any order.  Each returns
# (taken, ...) and leaves the buffers to the accurate form when not taken.

# kl_spaces.h's fast-tier bound for float32 rows (_cython.spaces.FAST_TOL_F32)
FAST_TOL_F32 = 2.0 ** -27
_EPS = 2.220446049250313e-16   # DBL_EPSILON


@inline
def kl_logits_fast(x, y, n, tol, t1, t2, t3, t4):
    """kl_sp_kl_logits_fast: (taken, KL, Sx)."""
    mx, my, mnx, mny, nf = extremes_pair(x, y, n)
    if nf > 0.0:
        return False, 0.0, 0.0
    sh = mx - my
    # the C loop's running minimum of x_k - mx and y_k - my (from 0): rounding is
    # monotonic, so it is min x - mx, min y - my; taken here, out of the exp loop,
    # because a floating-point min reduction keeps LLVM from vectorizing that loop
    t = 0.0
    t = mnx - mx if mnx - mx < t else t
    t = mny - my if mny - my < t else t
    # two loops of two stores each: with four stores into slices of one scratch
    # array, LLVM's run-time alias checks exceed its limit and the loop stays scalar
    for k in range(n):
        tx = x[k] - mx
        ty = y[k] - my
        kx = 1.0 if tx >= -708.0 else 0.0
        ky = 1.0 if ty >= -708.0 else 0.0
        t1[k] = m.vexp_fast(tx * kx) * kx
        t2[k] = m.vexp_fast(ty * ky) * ky
    for k in range(n):
        xk = x[k]
        yk = y[k]
        ex = t1[k]
        d = (xk - yk) - sh
        t3[k] = ex * d
        t4[k] = ex * ((abs(d) + abs(xk)) + abs(yk))
    s_x = sum8(t1, n)
    s_y = sum8(t2, n)
    lsx = m.vlog(s_x)
    lsy = m.vlog(s_y)
    ratio = sum8(t3, n) / s_x
    kl = ratio + (lsy - lsx)
    depth = np.float64((n + 7) // 8) + 12.0 - t
    mag = sum8(t4, n) / s_x + abs(ratio) + abs(sh) + abs(lsx) + abs(lsy) + abs(kl) + 2.0
    bound = 2.0 * (0.5 * _EPS) * depth * mag
    if not (bound <= tol * abs(kl)):
        return False, 0.0, 0.0
    return True, kl, s_x


@inline
def label_fast(y, n, c, tol, t1):
    """kl_sp_label_fast: (taken, -log softmax(y)[c], tail)."""
    yc = y[c]
    nf = 0
    for k in range(n):
        t = y[k] - yc
        keep = 1.0 if t >= -708.0 else 0.0
        t1[k] = m.vexp_fast(t * keep) * keep
        nf += 0 if t - t == 0.0 else 1
    t1[c] = 0.0   # the label's own term, left out (kept out of the loop: it vectorizes)
    if nf > 0:
        return False, 0.0, 0.0
    # the C loop's running min / max of y_k - yc (from 0), out of the exp loop (see
    # kl_logits_fast): rounding is monotonic, and the label's own term gives 0.  The
    # row is finite here, so one vector pass gives both (only compared: the sign of
    # a zero does not matter)
    hi, _, lo, _, _ = extremes_pair(y, y, n)
    lo = lo - yc
    hi = hi - yc
    if hi > 709.0:
        return False, 0.0, 0.0
    spread = hi if hi > -lo else -lo
    if not (2.0 * (0.5 * _EPS) * (spread + np.float64((n + 7) // 8) + 9.0) <= tol):
        return False, 0.0, 0.0
    s = sum8(t1, n)
    return True, m.vlog1p(s), s


@inline
def entropy_fast(x, n, tol, t1, t2):
    """kl_sp_entropy_fast: (taken, H, check_p)."""
    # the maximum, the minimum and the non-finite count in one vector pass
    # (extremes_pair: kl_sp_max's lanes and selects, so the same maximum for a
    # finite row); a row with a non-finite value is turned down before the exp
    # loop, as the C loop turns it down after (its t - t is NaN there too)
    mx, _, mn, _, nf = extremes_pair(x, x, n)
    if nf > 0.0:
        return False, 0.0, 0.0
    cnt = 0
    for k in range(n):
        t = x[k] - mx
        keep = 1.0 if (t >= -708.0 and t != 0.0) else 0.0
        e = m.vexp_fast(t * keep) * keep
        t1[k] = e
        t2[k] = e * t
        cnt += 1 if t == 0.0 else 0
    lo = mn - mx   # the C loop's running minimum of t (see kl_logits_fast)
    if not (2.0 * (0.5 * _EPS) * (np.float64((n + 7) // 8) + 12.0 - lo) <= tol):
        return False, 0.0, 0.0
    sm1 = (np.float64(cnt) - 1.0) + sum8(t1, n)
    return True, m.vlog1p(sm1) - sum8(t2, n) / (1.0 + sm1), 1.0 + sm1


@inline
def ce_fast(p, y, n, tol, t1, t2):
    """kl_sp_ce_fast: (taken, CE, check_p, check_q)."""
    # as entropy_fast: one vector pass for y's extremes, and the C loop's test of
    # every weight (finite and >= 0) as "all finite, and the least >= 0"
    my, _, mn, mnp, nf = extremes_pair(y, p, n)
    if nf > 0.0 or not (mnp >= 0.0):
        return False, 0.0, 0.0, 0.0
    cnt = 0
    for k in range(n):
        t = y[k] - my
        keep = 1.0 if (t >= -708.0 and t != 0.0) else 0.0
        t1[k] = m.vexp_fast(t * keep) * keep
        t2[k] = p[k] * t
        cnt += 1 if t == 0.0 else 0
    lo = mn - my   # the C loop's running minimum of t (see kl_logits_fast)
    if not (2.0 * (0.5 * _EPS) * (np.float64((n + 7) // 8) + 12.0 - lo) <= tol):
        return False, 0.0, 0.0, 0.0
    sm1 = (np.float64(cnt) - 1.0) + sum8(t1, n)
    sp = sum8(p, n)
    return True, sp * m.vlog1p(sm1) - sum8(t2, n), sp, 1.0 + sm1


@inline
def is_bad(v, space):
    if space == PROB:
        return not (v >= 0.0) or v == _INF
    if space == LOG:
        return not (v <= 0.0)
    return v != v or v == _INF


@inline
def widen(x, i, n, buf):
    """buf[:n] = row i of x as doubles (exact): kl_sp_widen_f32.  x is typed with any
    layout ('A'), where LLVM leaves the copy scalar; a unit-stride row is read through
    a C-contiguous view instead (50,000 x 256 float32: 0.50 -> 0.16 ns an element,
    a fifth of the fast tiers' time)."""
    if x.strides[1] == x.itemsize:
        r = row_view(x, i, 0, n)
        for j in range(n):
            buf[j] = np.float64(r[j])
    else:
        for j in range(n):
            buf[j] = np.float64(x[i, j])


@inline
def load_diff(p, q, i, n, temperature, diff):
    """diff[:n] = (p[i] - q[i]) / temperature from the raw rows (spaces.pyx's _load_diff),
    through C-contiguous views where both rows have a unit stride (see widen)."""
    if p.strides[1] == p.itemsize and q.strides[1] == q.itemsize:
        a = row_view(p, i, 0, n)
        b = row_view(q, i, 0, n)
        for j in range(n):
            diff[j] = (np.float64(a[j]) - np.float64(b[j])) / temperature
    else:
        for j in range(n):
            diff[j] = (np.float64(p[i, j]) - np.float64(q[i, j])) / temperature


@inline
def load(x, i, n, space, temperature, normalize, scan, buf):
    """(bad count, raw sum) and buf filled: _cython.spaces._load / kl_space_scan."""
    widen(x, i, n, buf)
    s = 0.0
    bad = 0
    if scan or (space == PROB and normalize):
        s = sum8(buf, n)
        for k in range(n):
            bad += 1 if is_bad(buf[k], space) else 0
    if space == LOGITS and temperature != 1.0:
        for j in range(n):
            buf[j] = buf[j] / temperature
    elif space == PROB and normalize:
        for j in range(n):
            buf[j] = buf[j] / s
    return bad, s


@inline
def count_bad(x, i, n, space):
    """Row i's bad values, counted on the raw data (_cython.spaces._count_bad)."""
    bad = 0
    for j in range(n):
        bad += 1 if is_bad(np.float64(x[i, j]), space) else 0
    return bad


@inline
def record_bad(x, i, n, space, arg, rep):
    if rep[1] >= 0:
        return
    for j in range(n):
        if is_bad(np.float64(x[i, j]), space):
            rep[1] = i
            rep[2] = j
            rep[3] = arg
            return


@inline
def bad_check(s, tol):
    if tol < 0.0:
        return not (s > 0.0 and s < _INF)
    return not (abs(s - 1.0) <= tol)


@inline
def chunk(kind, p, q, out, report, c, n_chunks, check, tol_p, tol_q, pspace, qspace,
          temperature, norm_p, norm_q, log_base, scratch):
    n_rows, n = p.shape
    lo = c * n_rows // n_chunks
    hi = (c + 1) * n_rows // n_chunks
    p, q, out, scratch = borrow(p), borrow(q), borrow(out), borrow(scratch)
    rep = borrow(report[c])
    a = scratch[:n]
    b = scratch[n:2 * n]
    w = scratch[2 * n:3 * n]
    d = scratch[3 * n:4 * n]
    diff = scratch[4 * n:5 * n]
    dlo = scratch[5 * n:6 * n]
    t1 = scratch[6 * n:7 * n]
    t2 = scratch[7 * n:]
    t3 = diff   # kl_qlogits reads diff only before it writes t3
    # (a - b) / T from the raw logits (kl_spaces.h, src/spaces.pyx)
    use_diff = kind == _Q_KL and pspace == LOGITS and qspace == LOGITS \
        and temperature != 1.0
    # float32 rows may take the fast tiers (their bounds decide)
    fast_tol = FAST_TOL_F32 if p.itemsize == 4 else 0.0
    # rows a fast tier may take are scanned only if it turns them down
    # (_cython.spaces._rows: defer_p, defer_q)
    defer_p = check > 0 and fast_tol > 0.0 and (
        (kind != _Q_CE and pspace == LOGITS)
        or (kind == _Q_CE and qspace == LOGITS and not norm_p))
    defer_q = check > 0 and fast_tol > 0.0 and qspace == LOGITS and kind != _Q_H
    for i in range(lo, hi):
        bad_p, sum_p = load(p, i, n, pspace, temperature, norm_p, check > 0 and not defer_p,
                            a)
        bad_q = 0
        sum_q = 0.0
        if kind == _Q_H:
            taken = False
            if fast_tol > 0.0 and pspace == LOGITS:
                taken, value, check_p = entropy_fast(a, n, fast_tol, t1, t2)
                check_q = 0.0
            if not taken:
                value, check_p, check_q = entropy(pspace, a, n, t1, t2)
        else:
            bad_q, sum_q = load(q, i, n, qspace, temperature, norm_q,
                                check > 0 and not defer_q, b)
            if kind == _Q_CE:
                taken = False
                if fast_tol > 0.0 and qspace == LOGITS:
                    taken, value, check_p, check_q = ce_fast(a, b, n, fast_tol, t1, t2)
                if not taken:
                    value, check_p, check_q = cross_entropy(qspace, a, b, n, check == 2,
                                                            t1, t2)
            else:
                taken = False
                if fast_tol > 0.0 and pspace == LOGITS and qspace == LOGITS:
                    # w, d, t1, t2 are free until the accurate form (t3 is diff)
                    taken, value, check_p = kl_logits_fast(a, b, n, fast_tol, w, d, t1, t2)
                    check_q = 1.0
                if not taken:
                    if use_diff:   # only for the accurate form, as spaces.pyx does
                        load_diff(p, q, i, n, temperature, diff)
                    value, check_p, check_q = kl(pspace, qspace, a, b, diff, use_diff, n,
                                                 w, d, dlo, t1, t2, t3)
        if kind == _Q_KL and value < 0.0:
            value = 0.0
        out[i] = value / log_base
        if check == 0:
            continue
        if taken:
            if defer_p and pspace == PROB:
                sum_p = check_p   # the tier's sum of p: the scan's lanes and bits
        else:
            if defer_p and pspace == PROB:   # a holds p as given (not norm_p)
                sum_p = sum8(a, n)
                for k in range(n):
                    bad_p += 1 if is_bad(a[k], PROB) else 0
            elif defer_p:
                bad_p = count_bad(p, i, n, pspace)
            if defer_q:
                bad_q = count_bad(q, i, n, qspace)
        if bad_p + bad_q > 0:
            rep[0] += bad_p + bad_q
            if bad_p > 0:
                record_bad(p, i, n, pspace, 0, rep)
            else:
                record_bad(q, i, n, qspace, 1, rep)
        elif check == 2 and rep[4] < 0:
            cp = sum_p if pspace == PROB else check_p
            cq = sum_q if qspace == PROB else check_q
            if bad_check(cp, tol_p):
                rep[4] = i
                rep[5] = 0
            elif kind != _Q_H and bad_check(cq, tol_q):
                rep[4] = i
                rep[5] = 1


def rows_serial(kind, p, q, out, report, check, tol_p, tol_q, pspace, qspace, temperature,
                norm_p, norm_q, log_base):
    scratch = np.empty(8 * p.shape[1])   # once per chunk of rows, never per row
    chunk(kind, p, q, out, report, 0, 1, check, tol_p, tol_q, pspace, qspace, temperature,
          norm_p, norm_q, log_base, scratch)


def rows_parallel(kind, p, q, out, report, check, tol_p, tol_q, pspace, qspace, temperature,
                  norm_p, norm_q, log_base):
    n_chunks = report.shape[0]
    for c in numba.prange(n_chunks):
        scratch = np.empty(8 * p.shape[1])
        chunk(kind, p, q, out, report, c, n_chunks, check, tol_p, tol_q, pspace, qspace,
              temperature, norm_p, norm_q, log_base, scratch)


@inline
def label_chunk(labels, q, out, report, c, n_chunks, check, qspace, temperature,
                ignore_index, has_ignore, log_base, buf, t1):
    n_rows, n = q.shape
    lo = c * n_rows // n_chunks
    hi = (c + 1) * n_rows // n_chunks
    labels, q, out, buf, t1 = borrow(labels), borrow(q), borrow(out), borrow(buf), borrow(t1)
    rep = borrow(report[c])
    for i in range(lo, hi):
        label = labels[i]
        if has_ignore and label == ignore_index:
            out[i] = np.nan
            continue
        if label < 0 or label >= n:
            rep[0] += 1
            if rep[1] < 0:
                rep[1] = i
                rep[2] = 0
                rep[3] = 0
            out[i] = np.nan
            continue
        if qspace == LOG:
            v = np.float64(q[i, label])
            if check and is_bad(v, LOG):
                rep[0] += 1
                if rep[1] < 0:
                    rep[1] = i
                    rep[2] = label
                    rep[3] = 1
            value = -v
        else:
            # float32 rows: scanned only if the fast tier turns them down
            bad, _ = load(q, i, n, qspace, temperature, False,
                          check > 0 and q.itemsize == 8, buf)
            taken = False
            tail = 0.0
            if q.itemsize == 4:   # float32 rows: the fast tier first (kl_sp_label_fast)
                taken, value, tail = label_fast(buf, n, label, FAST_TOL_F32, t1)
                if check and not taken:
                    bad = count_bad(q, i, n, qspace)
            if not taken:
                # log1p of the tail against the label's logit (kl_space_label)
                yc = buf[label]
                for k in range(n):
                    e = exp_diff(buf[k], yc)
                    t1[k] = 0.0 if k == label else e
                tail = sum8(t1, n)
            if taken:
                s = 1.0 + tail
            elif tail < 1e300:
                value = m.vlog1p(tail)
                s = 1.0 + tail
            else:
                mx = row_max(buf, n)
                sm1 = sumexp_m1(buf, n, mx, t1)
                s = normalizer(mx, sm1)
                value = m.vlog1p(sm1) - (buf[label] - mx)
            if check and bad > 0:
                rep[0] += bad
                record_bad(q, i, n, qspace, 1, rep)
            elif check and rep[4] < 0 and bad_check(s, -1.0):
                rep[4] = i
                rep[5] = 1
        out[i] = value / log_base


def labels_serial(labels, q, out, report, check, qspace, temperature, ignore_index,
                  has_ignore, log_base):
    buf = np.empty(q.shape[1])
    t1 = np.empty(q.shape[1])
    label_chunk(labels, q, out, report, 0, 1, check, qspace, temperature, ignore_index,
                has_ignore, log_base, buf, t1)


def labels_parallel(labels, q, out, report, check, qspace, temperature, ignore_index,
                    has_ignore, log_base):
    n_chunks = report.shape[0]
    for c in numba.prange(n_chunks):
        buf = np.empty(q.shape[1])
        t1 = np.empty(q.shape[1])
        label_chunk(labels, q, out, report, c, n_chunks, check, qspace, temperature,
                    ignore_index, has_ignore, log_base, buf, t1)


_ENTRIES = {("rows", False): rows_serial, ("rows", True): rows_parallel,
            ("labels", False): labels_serial, ("labels", True): labels_parallel}


def _signature(family, dtype):
    t = numba.types
    x, out, rep, labels, i8, f8, b1 = row_types(dtype)
    if family == "labels":
        return t.void(labels, x, out, rep, i8, i8, f8, i8, b1, f8)
    return t.void(i8, x, x, out, rep, i8, f8, f8, i8, i8, f8, b1, b1, f8)


def _kernel(family, parallel, dtype):
    """The compiled driver, compiled (or loaded from the disk cache) on first request."""
    def build():
        return compile_kernel(_ENTRIES[(family, parallel)], _signature(family, dtype),
                              parallel=parallel)

    return compile_once((__name__, family, parallel, dtype), build)


def compiled(family, parallel, dtype):
    """The compiled driver of `family` ("rows" or "labels"), as a first call would get it."""
    return _kernel(family, parallel, dtype)


def _run(family, args, n_rows, n, report, n_threads):
    if n_rows == 0 or n == 0:
        return
    dtype = dtype_name(args[1])   # p (rows) or q (labels)
    if n_threads == 1 or report.shape[0] == 1:
        _kernel(family, False, dtype)(*args)
    else:
        call_parallel(_kernel(family, True, dtype), args, n_threads)


def kl_space_rows(p, q, out, report, check, tol_p, tol_q, p_space, q_space, temperature,
                  norm_p, norm_q, log_base, n_threads):
    """out[i] = KL(p[i] || q[i]) / log_base for inputs in the given spaces."""
    dtype_name(p)
    args = (_Q_KL, p, q, out, report, int(check), float(tol_p), float(tol_q), int(p_space),
            int(q_space), float(temperature), bool(norm_p), bool(norm_q), float(log_base))
    _run("rows", args, p.shape[0], p.shape[1], report, n_threads)


def cross_entropy_space_rows(p, q, out, report, check, tol_p, tol_q, q_space, temperature,
                             norm_p, log_base, n_threads):
    """out[i] = -sum_j p log q / log_base, q as log-probabilities or logits."""
    dtype_name(p)
    args = (_Q_CE, p, q, out, report, int(check), float(tol_p), float(tol_q), PROB,
            int(q_space), float(temperature), bool(norm_p), False, float(log_base))
    _run("rows", args, p.shape[0], p.shape[1], report, n_threads)


def entropy_space_rows(p, out, report, check, tol_p, space, temperature, log_base, n_threads):
    """out[i] = -sum_j p log p / log_base, p as log-probabilities or logits."""
    dtype_name(p)
    args = (_Q_H, p, p, out, report, int(check), float(tol_p), float(tol_p), int(space),
            int(space), float(temperature), False, False, float(log_base))
    _run("rows", args, p.shape[0], p.shape[1], report, n_threads)


def cross_entropy_label_space_rows(labels, q, out, report, check, q_space, temperature,
                                   ignore_index, has_ignore, log_base, n_threads):
    """out[i] = -log softmax(q[i])[labels[i]] (logits) or -q[i, labels[i]] (log), / log_base."""
    dtype_name(q)
    args = (np.asarray(labels, dtype=np.int64), q, out, report, int(check), int(q_space),
            float(temperature), int(ignore_index), bool(has_ignore), float(log_base))
    _run("labels", args, q.shape[0], q.shape[1], report, n_threads)
