"""Row kernels for log-probability and logits inputs, Numba backend.

A mirror of ``src/_spaces_cython.pyx`` and ``src/kl_spaces.h`` (read the
formulas there): same entry points, report layout, row loading, passes and
lane order (element k to lane k % 8, lanes combined by the same tree), on the
same vector math (``_numba_math``), so both backends return the same bits.
Compiled lazily on first use, like ``_numba_kernels``; rows run in parallel
(one row per thread), so the thread count never changes a result.
"""

import functools

import numpy as np

from ._numba_kernels import _call_parallel, _dtype_name

__all__ = [
    "kl_space_rows",
    "cross_entropy_space_rows",
    "entropy_space_rows",
    "cross_entropy_label_space_rows",
]

PROB, LOG, LOGITS = 0, 1, 2
_Q_KL, _Q_CE, _Q_H = 0, 1, 2


# kl_spaces.h's fast tier bound for float32 rows (_spaces_cython.FAST_TOL_F32)
_FAST_TOL_F32 = 2.0 ** -27


@functools.cache
def _impl():
    """Import numba and build (and lazily compile) the drivers."""
    import numba

    from . import _numba_math as m

    inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
    jit = numba.njit(nogil=True, error_model="numpy")
    inf = np.inf

    @inline
    def tree8(a):
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))

    @inline
    def rmax(x, n):
        mx = np.full(8, -inf)
        for k in range(n):
            v = x[k]
            mx[k & 7] = v if (v > mx[k & 7] or v != v) else mx[k & 7]
        r = -inf
        for lane in range(8):
            r = mx[lane] if (mx[lane] > r or mx[lane] != mx[lane]) else r
        return r

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
    def sumexp_m1(x, n, mx):
        """S - 1, the maximum's exact ones counted apart (kl_sp_sumexp_m1)."""
        acc = np.zeros(8)
        cnt = np.zeros(8)
        for k in range(n):
            e = exp_diff(x[k], mx)
            top = 1.0 if x[k] == mx else 0.0
            acc[k & 7] += e - e * top
            cnt[k & 7] += top
        return (tree8(cnt) - 1.0) + tree8(acc)

    @inline
    def normalizer(mx, sm1):
        return 1.0 + sm1 if (mx > -inf and mx < inf) else 0.0

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
    def weights(space, x, n, w, lp):
        """(l1p, top, check) and w, lp filled: kl_sp_weights."""
        acc = np.zeros(8)
        if space == PROB:
            for k in range(n):
                w[k] = x[k]
                lp[k] = m.vlog(x[k])
                acc[k & 7] += x[k]
            return 0.0, 0.0, tree8(acc)
        if space == LOG:
            for k in range(n):
                w[k] = m.vexp(x[k])
                lp[k] = x[k]
                acc[k & 7] += w[k]
            return 0.0, 0.0, tree8(acc)
        # logits: e = exp(x - max) once, kept in w and divided by their sum
        mx = rmax(x, n)
        cnt = np.zeros(8)
        for k in range(n):
            e = exp_diff(x[k], mx)
            top = 1.0 if x[k] == mx else 0.0
            w[k] = e
            acc[k & 7] += e - e * top
            cnt[k & 7] += top
        sm1 = (tree8(cnt) - 1.0) + tree8(acc)
        s = 1.0 + sm1
        l1p = m.vlog1p(sm1)
        for k in range(n):
            w[k] = w[k] / s
            lp[k] = (x[k] - mx) - l1p
        return l1p, mx, normalizer(mx, sm1)

    @inline
    def entropy(space, x, n):
        a1 = np.zeros(8)
        a2 = np.zeros(8)
        if space == LOG:
            for k in range(n):
                e = m.vexp(x[k])
                a1[k & 7] += 0.0 if e == 0.0 else -e * x[k]
                a2[k & 7] += e
            return tree8(a1), tree8(a2), 0.0
        mx = rmax(x, n)
        cnt = np.zeros(8)
        for k in range(n):
            t = x[k] - mx
            lo = lo_of(x[k], mx, t)
            e0 = m.vexp(t)
            e = m.fma(e0, lo, e0)
            et = m.fma(e, t, e0 * lo)
            top = 1.0 if x[k] == mx else 0.0
            a1[k & 7] += e - e * top
            cnt[k & 7] += top
            a2[k & 7] += 0.0 if e == 0.0 else et
        sm1 = (tree8(cnt) - 1.0) + tree8(a1)
        value = m.vlog1p(sm1) - tree8(a2) / (1.0 + sm1)
        return value, normalizer(mx, sm1), 0.0

    @inline
    def cross_entropy(qspace, p, y, n, want_check):
        a1 = np.zeros(8)
        a2 = np.zeros(8)
        a3 = np.zeros(8)
        if qspace == LOG:
            for k in range(n):
                a1[k & 7] += 0.0 if p[k] == 0.0 else -p[k] * y[k]
                a2[k & 7] += p[k]
            if want_check:
                for k in range(n):
                    a3[k & 7] += m.vexp(y[k])
            return tree8(a1), tree8(a2), tree8(a3)
        mx = rmax(y, n)
        cnt = np.zeros(8)
        for k in range(n):
            t = y[k] - mx
            lo = lo_of(y[k], mx, t)
            e0 = m.vexp(t)
            e = m.fma(e0, lo, e0)
            top = 1.0 if y[k] == mx else 0.0
            pt = m.fma(p[k], t, p[k] * lo)
            a1[k & 7] += e - e * top
            cnt[k & 7] += top
            a2[k & 7] += 0.0 if p[k] == 0.0 else pt
            a3[k & 7] += p[k]
        sm1 = (tree8(cnt) - 1.0) + tree8(a1)
        sp = tree8(a3)
        return sp * m.vlog1p(sm1) - tree8(a2), sp, normalizer(mx, sm1)

    @inline
    def kl_plain(w, lp, y, n, my, l1py):
        acc = np.zeros(8)
        for k in range(n):
            acc[k & 7] += 0.0 if w[k] == 0.0 else w[k] * (lp[k] - ((y[k] - my) - l1py))
        return tree8(acc)

    @inline
    def kl_qlogits(pspace, x, y, diff, use_diff, n, w, d, dlo):
        a1 = np.zeros(8)
        a2 = np.zeros(8)
        a3 = np.zeros(8)
        l1p, top, check_p = weights(pspace, x, n, w, d)
        # the shift (top - my) of kl_sp_kl_qlogits, in double-double
        my = rmax(y, n)
        sh = top - my
        sl = lo_of(top, my, sh)
        if not (sh - sh == 0.0):
            sh = 0.0
        for k in range(n):
            if pspace == LOGITS:
                if use_diff:
                    d[k], dlo[k] = shifted_diff(diff[k], 0.0, sh, sl)
                else:
                    d[k], dlo[k] = shifted_diff(x[k], y[k], sh, sl)
            else:
                d[k], dlo[k] = shifted_diff(d[k], y[k], sh, sl)
        inf_terms = 0.0
        for k in range(n):
            dk = d[k]
            on = w[k] > 0.0
            inf_terms += 1.0 if (on and y[k] == -inf) else 0.0
            wd = w[k] * dk
            a1[k & 7] += wd if wd == wd else 0.0   # 0 x inf where w = 0 (kl_spaces.h)
            a2[k & 7] += w[k] if on else 0.0
        check_q = 1.0 if (my > -inf and my < inf) else 0.0
        if inf_terms > 0.0:
            return inf, check_p, check_q
        s = tree8(a1) / tree8(a2)
        a1[:] = 0.0
        a2[:] = 0.0
        for k in range(n):
            # c = d - s and its rounding error (plus d's), kl_sp_kl_qlogits
            on = w[k] > 0.0
            ch = d[k] - s
            cl = lo_of(d[k], s, ch) + dlo[k]
            c = ch if on else 0.0   # (cl is finite: a zero weight zeroes both terms)
            f = m.vexpm1mx(-c)
            a1[k & 7] += w[k] * (f - cl * (f - c))
            a2[k & 7] += w[k] * (c + cl)
            a3[k & 7] += 0.0 if on else m.vexp(((y[k] - my) + s) - l1p)
        s1 = tree8(a1)
        s2 = tree8(a2)
        rest = tree8(a3)
        kl = s2 + m.vlog1p(s1 - s2 + rest)
        if not (kl - kl == 0.0) or not (s1 < 1e300) or not (rest < 1e300):
            l1p, top, check_p = weights(pspace, x, n, w, d)
            l1py = m.vlog1p(sumexp_m1(y, n, my))
            kl = kl_plain(w, d, y, n, my, l1py)
        return kl, check_p, check_q

    @inline
    def kl_direct(pspace, qspace, x, y, n, w, d):
        acc = np.zeros(8)
        aq = np.zeros(8)
        l1p, top, check_p = weights(pspace, x, n, w, d)
        if qspace == PROB:
            for k in range(n):
                acc[k & 7] += 0.0 if w[k] == 0.0 else w[k] * (d[k] - m.vlog(y[k]))
                aq[k & 7] += y[k]
        else:
            for k in range(n):
                acc[k & 7] += 0.0 if w[k] == 0.0 else w[k] * (d[k] - y[k])
                aq[k & 7] += m.vexp(y[k])
        return tree8(acc), check_p, tree8(aq)

    @inline
    def kl(pspace, qspace, x, y, diff, use_diff, n, w, d, dlo):
        if qspace == LOGITS:
            return kl_qlogits(pspace, x, y, diff, use_diff, n, w, d, dlo)
        # q not in logits: direct terms (kl_sp_kl_direct)
        return kl_direct(pspace, qspace, x, y, n, w, d)

    @inline
    def is_bad(v, space):
        if space == PROB:
            return not (v >= 0.0) or v == inf
        if space == LOG:
            return not (v <= 0.0)
        return v != v or v == inf

    @inline
    def load(x, i, n, space, temperature, normalize, scan, buf):
        """(bad count, raw sum) and buf filled: _spaces_cython._load / kl_space_scan."""
        for j in range(n):
            buf[j] = np.float64(x[i, j])
        s = 0.0
        bad = 0.0
        if scan or (space == PROB and normalize):
            acc = np.zeros(8)
            nb = np.zeros(8)
            for k in range(n):
                acc[k & 7] += buf[k]
                nb[k & 7] += 1.0 if is_bad(buf[k], space) else 0.0
            s = tree8(acc)
            bad = tree8(nb)
        if space == LOGITS and temperature != 1.0:
            for j in range(n):
                buf[j] = buf[j] / temperature
        elif space == PROB and normalize:
            for j in range(n):
                buf[j] = buf[j] / s
        return int(bad), s

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
            return not (s > 0.0 and s < inf)
        return not (abs(s - 1.0) <= tol)

    @inline
    def chunk(kind, p, q, out, report, c, n_chunks, check, tol_p, tol_q, pspace, qspace,
              temperature, norm_p, norm_q, log_base):
        n_rows, n = p.shape
        lo = c * n_rows // n_chunks
        hi = (c + 1) * n_rows // n_chunks
        rep = report[c]
        scratch = np.empty(6 * n)
        a = scratch[:n]
        b = scratch[n:2 * n]
        w = scratch[2 * n:3 * n]
        d = scratch[3 * n:4 * n]
        diff = scratch[4 * n:5 * n]
        dlo = scratch[5 * n:]
        # (a - b) / T from the raw logits (kl_spaces.h, _spaces_cython.pyx)
        use_diff = kind == _Q_KL and pspace == LOGITS and qspace == LOGITS \
            and temperature != 1.0
        # float32 rows may take the fast tier (kl_spaces.h, FAST_TOL_F32)
        fast_tol = _FAST_TOL_F32 if p.itemsize == 4 else 0.0
        lanes = np.empty((8, 8))
        for i in range(lo, hi):
            bad_p, sum_p = load(p, i, n, pspace, temperature, norm_p, check > 0, a)
            bad_q = 0
            sum_q = 0.0
            if kind == _Q_H:
                taken = False
                if fast_tol > 0.0 and pspace == LOGITS:
                    taken, value, check_p = m.entropy_fast(
                        a, n, rmax(a, n), fast_tol, lanes[0], lanes[1], lanes[2], lanes[3],
                        lanes[4])
                    check_q = 0.0
                if not taken:
                    value, check_p, check_q = entropy(pspace, a, n)
            else:
                bad_q, sum_q = load(q, i, n, qspace, temperature, norm_q, check > 0, b)
                if kind == _Q_CE:
                    taken = False
                    if fast_tol > 0.0 and qspace == LOGITS:
                        taken, value, check_p, check_q = m.ce_fast(
                            a, b, n, rmax(b, n), fast_tol, lanes[0], lanes[1], lanes[2],
                            lanes[3], lanes[4], lanes[5])
                    if not taken:
                        value, check_p, check_q = cross_entropy(qspace, a, b, n, check == 2)
                else:
                    if use_diff:
                        for j in range(n):
                            diff[j] = (np.float64(p[i, j]) - np.float64(q[i, j])) / temperature
                    taken = False
                    if fast_tol > 0.0 and pspace == LOGITS and qspace == LOGITS:
                        taken, value, check_p = m.kl_logits_fast(
                            a, b, n, fast_tol, lanes[0], lanes[1], lanes[2], lanes[3],
                            lanes[4], lanes[5], lanes[6], lanes[7])
                        check_q = 1.0
                    if not taken:
                        value, check_p, check_q = kl(pspace, qspace, a, b, diff, use_diff, n,
                                                     w, d, dlo)
            if kind == _Q_KL and value < 0.0:
                value = 0.0
            out[i] = value / log_base
            if check == 0:
                continue
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

    def make_rows(parallel):
        loop = numba.prange if parallel else range

        def rows(kind, p, q, out, report, check, tol_p, tol_q, pspace, qspace, temperature,
                 norm_p, norm_q, log_base):
            n_chunks = report.shape[0]
            for c in loop(n_chunks):
                chunk(kind, p, q, out, report, c, n_chunks, check, tol_p, tol_q, pspace,
                      qspace, temperature, norm_p, norm_q, log_base)
        return rows

    def make_labels(parallel):
        loop = numba.prange if parallel else range

        def labels_rows(labels, q, out, report, check, qspace, temperature, ignore_index,
                        has_ignore, log_base):
            n_rows, n = q.shape
            n_chunks = report.shape[0]
            for c in loop(n_chunks):
                lo = c * n_rows // n_chunks
                hi = (c + 1) * n_rows // n_chunks
                rep = report[c]
                buf = np.empty(n)
                lanes = np.empty((4, 8))
                fast_tol = _FAST_TOL_F32 if q.itemsize == 4 else 0.0
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
                        bad, _ = load(q, i, n, qspace, temperature, False, check > 0, buf)
                        # the fast tier of float32 rows (kl_sp_label_fast)
                        taken, value, tail = False, 0.0, 0.0
                        if fast_tol > 0.0:
                            taken, value, tail = m.label_fast(buf, n, label, fast_tol,
                                                              lanes[0], lanes[1], lanes[2],
                                                              lanes[3])
                        if not taken:
                            # log1p of the tail against the label's logit (kl_space_label)
                            yc = buf[label]
                            acc = np.zeros(8)
                            for k in range(n):
                                e = exp_diff(buf[k], yc)
                                acc[k & 7] += 0.0 if k == label else e
                            tail = tree8(acc)
                        if taken:
                            s = 1.0 + tail
                        elif tail < 1e300:
                            value = m.vlog1p(tail)
                            s = 1.0 + tail
                        else:
                            mx = rmax(buf, n)
                            sm1 = sumexp_m1(buf, n, mx)
                            s = normalizer(mx, sm1)
                            value = m.vlog1p(sm1) - (buf[label] - mx)
                        if check and bad > 0:
                            rep[0] += bad
                            record_bad(q, i, n, qspace, 1, rep)
                        elif check and rep[4] < 0 and bad_check(s, -1.0):
                            rep[4] = i
                            rep[5] = 1
                    out[i] = value / log_base
        return labels_rows

    @functools.cache
    def compiled(family, parallel):
        maker = make_labels if family == "labels" else make_rows
        return numba.njit(nogil=True, error_model="numpy", parallel=parallel)(maker(parallel))

    del jit
    return compiled


def _run(family, args, n_rows, n, report, n_threads):
    if n_rows == 0 or n == 0:
        return
    if n_threads == 1 or report.shape[0] == 1:
        _impl()(family, False)(*args)
    else:
        _call_parallel(_impl()(family, True), args, n_threads)


def kl_space_rows(p, q, out, report, check, tol_p, tol_q, p_space, q_space, temperature,
                  norm_p, norm_q, log_base, n_threads):
    """out[i] = KL(p[i] || q[i]) / log_base for inputs in the given spaces."""
    _dtype_name(p)
    args = (_Q_KL, p, q, out, report, int(check), float(tol_p), float(tol_q), int(p_space),
            int(q_space), float(temperature), bool(norm_p), bool(norm_q), float(log_base))
    _run("rows", args, p.shape[0], p.shape[1], report, n_threads)


def cross_entropy_space_rows(p, q, out, report, check, tol_p, tol_q, q_space, temperature,
                             norm_p, log_base, n_threads):
    """out[i] = -sum_j p log q / log_base, q as log-probabilities or logits."""
    _dtype_name(p)
    args = (_Q_CE, p, q, out, report, int(check), float(tol_p), float(tol_q), PROB,
            int(q_space), float(temperature), bool(norm_p), False, float(log_base))
    _run("rows", args, p.shape[0], p.shape[1], report, n_threads)


def entropy_space_rows(p, out, report, check, tol_p, space, temperature, log_base, n_threads):
    """out[i] = -sum_j p log p / log_base, p as log-probabilities or logits."""
    _dtype_name(p)
    args = (_Q_H, p, p, out, report, int(check), float(tol_p), float(tol_p), int(space),
            int(space), float(temperature), False, False, float(log_base))
    _run("rows", args, p.shape[0], p.shape[1], report, n_threads)


def cross_entropy_label_space_rows(labels, q, out, report, check, q_space, temperature,
                                   ignore_index, has_ignore, log_base, n_threads):
    """out[i] = -log softmax(q[i])[labels[i]] (logits) or -q[i, labels[i]] (log), / log_base."""
    _dtype_name(q)
    args = (np.asarray(labels, dtype=np.int64), q, out, report, int(check), int(q_space),
            float(temperature), int(ignore_index), bool(has_ignore), float(log_base))
    _run("labels", args, q.shape[0], q.shape[1], report, n_threads)
