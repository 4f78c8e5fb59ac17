"""Compiled row drivers of ``_numba.rows`` (probability rows, class labels,
diagonal Gaussians), as module-level functions so that numba caches them on disk.

The C code specializes each block loop on the quantity and the pass
(kl_blocks.h's switch on KL_MODE_*); here the quantity (`kind`), the pass
(`mode`), the Gaussian scale and the prior are int/bool arguments of
force-inlined functions, and each entry point at the bottom is a closure over
its constants, which numba compiles as literals: after LLVM inlines the calls
the constants fold, every branch on them goes, and the block loops are
straight-line code the loop vectorizer takes -- one specialized kernel per
entry point, which the disk cache keys by its code and its constants.  See
``_numba.rows`` for the design (blocks, lanes, passes, summation order).
"""

import math

import numba
import numpy as np
from numba import prange

from . import kl_math as m
from .cache import register_source
from .lanes import (
    SUB,
    Z8,
    borrow,
    lanes8,
    prefetch_after,
    row_view,
    scratch,
    stage_row,
    sums8,
    tree8,
)

register_source(__file__)
register_source(m.__file__)

BLOCK_SIZE = 8192
_Q_KL, _Q_CE, _Q_H, _Q_JS = 0, 1, 2, 3
# the f-divergences (src/rows.pyx's Q_*): Hellinger, total variation, chi^2,
# Renyi's two tiers and its order inf
_Q_HELLINGER, _Q_TV, _Q_CHI2, _Q_RENYI, _Q_RENYI_S, _Q_RENYI_MAX = 4, 5, 6, 7, 8, 9
_Q_RENYI_HALF, _Q_RENYI_TWO = 10, 11   # Renyi's first tier at alpha = 1/2 and 2
_Q_RENYI_ZERO = 12   # Renyi of order 0: W summed exactly (renyi_zero_w)
_Q_HELLINGER_BC = 13   # float32 Hellinger's fast tier: B = sum sqrt(p q)
# what a pass over a block computes (kl_blocks.h's KL_MODE_*)
_TERMS, _TERMS_SUMS, _SUMS, _TERMS_SCALED = 0, 1, 2, 3
_LN2 = 0.6931471805599453
# _LN2 * (1 + 64 eps), as src/rows.pyx: above it a JS total is no rounding
# excess of log 2 but a real value (inf or garbage from invalid input)
_LN2_ROUNDING = 0.6931471805599552
_ONE_ROUNDING = 1.0000000000000142   # 1 + 64 eps, for Hellinger distance and TV
_LABEL_CHUNK = 256   # label rows whose picked probabilities are logged in one vector loop

njit = numba.njit(nogil=True, error_model="numpy")
inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
block, sub = BLOCK_SIZE, SUB


# -- probability rows: KL, cross-entropy, entropy, JS ---------------------------------
# kind -> (vector term, odd-lane flag, exact scalar term), as kl_blocks.h

@inline
def term(kind, x, y, oma):
    # oma: Renyi's 1 - alpha (the others ignore it)
    if kind == _Q_KL:
        return m.vrel_entr(x, y)
    if kind == _Q_CE:
        return m.vce_term(x, y)
    if kind == _Q_H:
        return m.ventr(x, y)
    if kind == _Q_JS:
        return m.vjs_term(x, y)
    if kind == _Q_HELLINGER:
        return m.vhellinger_term(x, y, oma)
    if kind == _Q_CHI2:
        return m.vchi2_term(x, y, oma)
    if kind == _Q_RENYI:
        return m.vrenyi_w(x, y, oma)
    if kind == _Q_RENYI_S:
        return m.vrenyi_s(x, y, oma)
    if kind == _Q_RENYI_HALF:
        return m.vrenyi_w_half(x, y, oma)
    if kind == _Q_RENYI_TWO:
        return m.vrenyi_w_two(x, y, oma)
    if kind == _Q_HELLINGER_BC:
        return m.vsqrt_prod(x, y, oma)
    return m.vtv_term(x, y, oma)


@inline
def odd(kind, x, y, oma):
    if kind == _Q_KL:
        return m.rel_entr_odd(x, y)
    if kind == _Q_CE:
        return m.ce_odd(x, y)
    if kind == _Q_H:
        return m.entr_odd(x, y)
    if kind == _Q_JS:
        return m.js_odd(x, y)
    if kind == _Q_CHI2:
        return m.chi2_odd(x, y, oma)
    if kind == _Q_RENYI or kind == _Q_RENYI_S:
        return m.renyi_odd(x, y, oma)
    return m.no_odd(x, y, oma)


@inline
def exact(kind, x, y, oma):
    if kind == _Q_KL:
        return m.rel_entr(x, y)
    if kind == _Q_CE:
        return m.neg_xlogy(x, y)
    if kind == _Q_H:
        return m.entr_exact(x, y)
    if kind == _Q_JS:
        return m.js_term(x, y)
    if kind == _Q_CHI2:
        return m.chi2_term(x, y, oma)
    if kind == _Q_RENYI:
        return m.renyi_w(x, y, oma)
    if kind == _Q_RENYI_S:
        return m.renyi_s(x, y, oma)
    return term(kind, x, y, oma)     # no odd lanes (Hellinger, TV, ...): never called


@inline
def fill(kind, mode, x, y, n, eps, dp, dq, oma, tt, raw32):
    """tt[k] = the terms of n elements; returns the count of odd lanes (an exact
    integer: any order gives the C lanes' result).  The loop LLVM vectorizes:
    the math is branch-free, kind and mode constants at every entry point.
    raw32: the data is float32 (kl_blocks.h's ODD##_raw_f32: chi^2 needs no odd
    test on float32 values read as they are)."""
    one = kind == _Q_H          # entropy reads no q
    scaled = mode == _TERMS_SCALED
    n_odd = 0
    if kind == _Q_CHI2 and raw32 and not scaled:
        for k in range(n):
            tt[k] = term(kind, np.float64(x[k]), np.float64(y[k]), oma)
        return n_odd
    if raw32 and not scaled and (kind == _Q_CE or kind == _Q_H or kind == _Q_JS):
        # float32 data of cross-entropy, entropy and JS: widened into double buffers
        # first (the rest of tt), then the loop on doubles, as kl_blocks.h stages its
        # terms with logs on AVX-512 hosts: LLVM's loop of mixed widths ran them
        # slower (50,000 x 256, one thread, Numba / Cython: entropy 1.46 -> 1.17,
        # cross-entropy 1.40 -> 1.13, JS 1.34 -> 1.20; KL and Renyi unchanged, so
        # they keep the one loop).  The same double operations: the same bits.
        w = tt.shape[0] // 3
        xs = tt[w:w + n]
        ys = tt[2 * w:2 * w + n]
        for k in range(n):
            xs[k] = np.float64(x[k])
        if not one:
            for k in range(n):
                ys[k] = np.float64(y[k])
        for k in range(n):
            xv = xs[k]
            yv = 0.0 if one else ys[k]
            tt[k] = term(kind, xv, yv, oma)
            n_odd += int(odd(kind, xv, yv, oma))
        return n_odd
    for k in range(n):
        xv = np.float64(x[k])   # np.float64: Numba's float() keeps a float32
        yv = 0.0 if one else np.float64(y[k])
        if scaled:
            xv = (xv + eps) / dp
            yv = 0.0 if one else (yv + eps) / dq
        tt[k] = term(kind, xv, yv, oma)
        n_odd += int(odd(kind, xv, yv, oma))
    return n_odd


@inline
def settle(kind, mode, p, q, i, start, n, eps, dp, dq, oma, work, t, n_odd):
    # a log argument was not a normal double: the exact scalar terms instead
    one = kind == _Q_H
    scaled = mode == _TERMS_SCALED
    if not (mode != _SUMS and n_odd > 0):
        return t
    a = Z8
    for s in range(0, n, sub):
        k = min(sub, n - s)
        for j in range(k):
            x = np.float64(p[i, start + s + j])
            y = 0.0 if one else np.float64(q[i, start + s + j])
            if scaled:
                x = (x + eps) / dp
                y = 0.0 if one else (y + eps) / dq
            work[j] = exact(kind, x, y, oma)
        a = lanes8(work, k, a)
    return tree8(a)


@inline
def blk(kind, mode, p, q, i, start, n, eps, dp, dq, oma, work, stage):
    """kl_block_<kind>(mode, ...): (terms, sum_p, sum_q, n_bad) of one block of row i."""
    one = kind == _Q_H
    want_terms = mode != _SUMS
    want_sums = mode == _TERMS_SUMS or mode == _SUMS
    at = ap = aq = bp = bq = Z8
    n_odd = 0
    contiguous = p.strides[1] == p.itemsize and q.strides[1] == q.itemsize
    # the next row's lines (kl_blocks.h prefetches them before each block too)
    if p.strides[1] == p.itemsize:
        prefetch_after(p, i, start, n)
    if not one and q.strides[1] == q.itemsize:
        prefetch_after(q, i, start, n)
    for s in range(0, n, sub):
        k = min(sub, n - s)
        if contiguous:
            x = row_view(p, i, start + s, k)
            y = row_view(q, i, start + s, k)
        else:
            x = y = stage[0]
            stage_row(p, i, start + s, k, x)
            if not one:
                y = stage[1]
                stage_row(q, i, start + s, k, y)
        if want_terms:
            n_odd += fill(kind, mode, x, y, k, eps, dp, dq, oma, work, p.itemsize == 4)
            at = lanes8(work, k, at)
        if want_sums:
            ap, bp = sums8(x, k, ap, bp)
            if not one:
                aq, bq = sums8(y, k, aq, bq)
    t = settle(kind, mode, p, q, i, start, n, eps, dp, dq, oma, work, tree8(at), n_odd)
    sp, sq = tree8(ap), tree8(aq)
    # the bad-value flag (kl_block_flag): a sign bit seen, or a NaN / +inf in a sum
    nb = tree8(bp) + tree8(bq)
    if want_sums and not (sp - sp == 0.0 and sq - sq == 0.0):
        nb += 1.0
    return (t, sp, sq, nb)


@inline
def blk_alone(kind, mode, p, q, i, start, n, eps, dp, dq, oma):
    # one block with its own scratch: a task of the long-row path
    work, stage = scratch(p, n, 2)
    return blk(kind, mode, borrow(p), borrow(q), i, start, n, eps, dp, dq, oma, work, stage)


@inline
def run(kind, mode, p, q, i, eps, dp, dq, oma, work, stage):
    # _pass without parts: the blocks of row i in order, their results added
    n = p.shape[1]
    t = sp = sq = nb = 0.0
    for start in range(0, n, block):
        r = blk(kind, mode, p, q, i, start, min(block, n - start), eps, dp, dq, oma, work,
                stage)
        t += r[0]
        sp += r[1]
        sq += r[2]
        nb += r[3]
    return (t, sp, sq, nb)


@njit
def add_parts(parts):
    # the block results of a parallel pass, added in block order
    t = sp = sq = nb = 0.0
    for b in range(parts.shape[0]):
        t += parts[b, 0]
        sp += parts[b, 1]
        sq += parts[b, 2]
        nb += parts[b, 3]
    return (t, sp, sq, nb)


@njit
def count_bad(x, i, n):
    """The number of negative, NaN or +inf values in x[i, :n] (a flagged row only)."""
    bad = 0
    for j in range(n):
        bad += int(m.is_bad(np.float64(x[i, j])))
    return bad


@njit
def first_bad(x, i, n):
    for j in range(n):
        if m.is_bad(np.float64(x[i, j])) > 0.0:
            return j
    return -1


@njit
def bad_sum(s, tol):
    # tol < 0 (normalize=True): the sum must only be positive and finite
    if tol < 0.0:
        return not (s > 0.0 and s < m.INF)
    return not (abs(s - 1.0) <= tol)


@inline
def finish(kind, p, q, i, check, tol, log_base, rep, c, total, sums):
    """Record bad values or a bad sum in rep[c]; clamp and scale the total."""
    one = kind == _Q_H
    n = p.shape[1]
    n_bad = 0
    if check > 0 and sums[3] > 0.0:
        # flagged: count the bad values exactly (a -0.0 flags and counts nothing,
        # and its row's sum is then checked as any other's, as rows.pyx does)
        n_bad = count_bad(p, i, n) + (0 if one else count_bad(q, i, n))
    if n_bad > 0:
        rep[c, 0] += n_bad
        if rep[c, 1] < 0:
            col = first_bad(p, i, n)
            if col >= 0:
                rep[c, 1], rep[c, 2], rep[c, 3] = i, col, 0
            elif not one:
                col = first_bad(q, i, n)
                if col >= 0:
                    rep[c, 1], rep[c, 2], rep[c, 3] = i, col, 1
    elif check == 2 and rep[c, 4] < 0:
        if bad_sum(sums[1], tol):
            rep[c, 4], rep[c, 5] = i, 0
        elif not one and bad_sum(sums[2], tol):
            rep[c, 4], rep[c, 5] = i, 1
    # divergences are never negative (rounding can dip below 0); NaN and -inf pass
    if (kind == _Q_KL or kind == _Q_JS or renyi_first_tier(kind) or kind == _Q_RENYI_MAX
            or kind == _Q_RENYI_ZERO) \
            and total < 0.0 and total > -m.INF:
        total = 0.0
    # disjoint supports: log 2 up to rounding; inf, NaN and larger pass
    if kind == _Q_JS and total > _LN2 and total <= _LN2_ROUNDING:
        total = _LN2
    if kind == _Q_HELLINGER:
        total = math.sqrt(0.5 * total)
    elif kind == _Q_TV:
        total = 0.5 * total
    # Hellinger distance and total variation are at most 1, up to rounding
    if (kind == _Q_HELLINGER or kind == _Q_TV) and total > 1.0 and total <= _ONE_ROUNDING:
        total = 1.0
    return total / log_base


@inline
def renyi_first_tier(kind):
    return kind == _Q_RENYI or kind == _Q_RENYI_HALF or kind == _Q_RENYI_TWO


@inline
def row_total(kind, p, q, i, check, eps, transform, oma, work, stage):
    """_row's passes for row i: (the total to finish, the sums and bad-value flags)."""
    n = p.shape[1]
    dp = dq = 1.0
    if kind == _Q_HELLINGER and p.itemsize == 4 and not transform:
        # float32 Hellinger's two tiers (kl_math.hellinger_fast_total), as src/rows.pyx
        sums = run(_Q_HELLINGER_BC, _TERMS_SUMS, p, q, i, 0.0, 1.0, 1.0, oma, work, stage)
        total = m.hellinger_fast_total(sums[0], sums[1], sums[2], n)
        if total != total:
            total = run(kind, _TERMS, p, q, i, 0.0, 1.0, 1.0, oma, work, stage)[0]
        return total, sums
    if transform or kind == _Q_RENYI_MAX or kind == _Q_RENYI_ZERO:
        sums = run(kind, _SUMS, p, q, i, 0.0, 1.0, 1.0, oma, work, stage)
        if transform:
            dp = sums[1] + n * eps
            dq = sums[2] + n * eps
        terms = sums
        if kind != _Q_RENYI_MAX and kind != _Q_RENYI_ZERO:
            terms = run(kind, _TERMS_SCALED, p, q, i, eps, dp, dq, oma, work, stage)
    elif check > 0 or renyi_first_tier(kind):    # Renyi always needs P = sum p
        terms = sums = run(kind, _TERMS_SUMS, p, q, i, 0.0, 1.0, 1.0, oma, work, stage)
    else:
        terms = sums = run(kind, _TERMS, p, q, i, 0.0, 1.0, 1.0, oma, work, stage)
    total = terms[0]
    if kind == _Q_RENYI_MAX:
        total = max_log_ratio(p, q, i, transform, eps, dp, dq)
    elif kind == _Q_RENYI_ZERO:
        total = renyi_total(p, q, i, transform, eps, dp, dq, 1.0,
                            renyi_zero_w(p, q, i, transform, eps, dp, dq),
                            1.0 if transform else sums[1], work, stage)
    elif renyi_first_tier(kind):
        total = renyi_total(p, q, i, transform, eps, dp, dq, oma, terms[0],
                            1.0 if transform else sums[1], work, stage)
    return total, sums


@inline
def renyi_total(p, q, i, transform, eps, dp, dq, oma, w, sum_p, work, stage):
    """src/rows.pyx's _renyi_total: log1p(W/P) / (alpha - 1), the terms of S
    where W/P < -1/2, the log domain where S over- or underflows."""
    if w != w:
        return w
    if w < m.INF and w >= -0.5 * sum_p:
        return math.log1p(w / sum_p) / -oma
    if w < m.INF:
        s_sum = run(_Q_RENYI_S, _TERMS_SCALED if transform else _TERMS, p, q, i, eps, dp, dq,
                    oma, work, stage)[0]
        if s_sum > 0.0 and s_sum < m.INF:
            return math.log(s_sum / sum_p) / -oma
    return (renyi_log_sum(p, q, i, transform, eps, dp, dq, oma) - math.log(sum_p)) / -oma


@inline
def scaled_pair(p, q, i, j, transform, eps, dp, dq):
    """(p[i, j], q[i, j]) as doubles, (x + eps) / d if `transform` (src/rows.pyx's _scaled)."""
    x = np.float64(p[i, j])
    y = np.float64(q[i, j])
    if transform:
        x = (x + eps) / dp
        y = (y + eps) / dq
    return x, y


@njit
def renyi_log_sum(p, q, i, transform, eps, dp, dq, oma):
    """log sum p^alpha q^(1-alpha), element by element in order (log-sum-exp)."""
    n = p.shape[1]
    top = -m.INF
    for j in range(n):
        x, y = scaled_pair(p, q, i, j, transform, eps, dp, dq)
        t = m.renyi_log_term(x, y, oma)
        if t != t:
            return t
        if t > top:
            top = t
    if top == m.INF or top == -m.INF:
        return top
    acc = 0.0
    for j in range(n):
        x, y = scaled_pair(p, q, i, j, transform, eps, dp, dq)
        acc += math.exp(m.renyi_log_term(x, y, oma) - top)
    return top + math.log(acc)


@njit
def renyi_zero_w(p, q, i, transform, eps, dp, dq):
    """src/rows.pyx's _renyi_zero_w: W = sum over p > 0 of (q - p) with error-free
    additions (TwoSum), in order; NaN for NaN or negative values."""
    s = e = big = 0.0
    for j in range(p.shape[1]):
        x, y = scaled_pair(p, q, i, j, transform, eps, dp, dq)
        if not (x >= 0.0 and y >= 0.0):
            return m.NAN
        if x == 0.0:
            continue
        if x == m.INF or y == m.INF:
            big += y - x
            continue
        s, e = m.two_sum_add(s, e, y)
        s, e = m.two_sum_add(s, e, -x)
    return (s + e) + big


@njit
def max_log_ratio(p, q, i, transform, eps, dp, dq):
    """Renyi of order inf: max over p > 0 of log(p/q); NaN for a row without p > 0."""
    top = m.NAN
    for j in range(p.shape[1]):
        x, y = scaled_pair(p, q, i, j, transform, eps, dp, dq)
        if x != x or y != y or x < 0.0 or y < 0.0:
            return m.NAN
        if x == 0.0:
            continue
        if y == 0.0:
            return m.INF
        x = m.log_ratio(x, y)
        if not (x <= top):
            top = x
    return top


@inline
def chunk(kind, p, q, out, rep, lo, hi, c, check, tol, eps, transform, log_base, oma, work,
          stage):
    """Rows lo..hi, each serially (_row), reporting into rep[c]."""
    p, q, out, rep = borrow(p), borrow(q), borrow(out), borrow(rep)
    work, stage = borrow(work), borrow(stage)
    for i in range(lo, hi):
        total, sums = row_total(kind, p, q, i, check, eps, transform, oma, work, stage)
        out[i] = finish(kind, p, q, i, check, tol, log_base, rep, c, total, sums)


@inline
def rows_serial(kind, p, q, out, rep, check, tol, eps, transform, log_base, oma):
    work, stage = scratch(p, p.shape[1], 2)
    chunk(kind, p, q, out, rep, 0, p.shape[0], 0, check, tol, eps, transform, log_base, oma,
          work, stage)


@inline
def rows_chunk(kind, p, q, out, rep, c, n_chunks, check, tol, eps, transform, log_base, oma):
    # one prange task: its chunk of rows with its own scratch
    n_rows = p.shape[0]
    work, stage = scratch(p, p.shape[1], 2)
    chunk(kind, p, q, out, rep, c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks, c,
          check, tol, eps, transform, log_base, oma, work, stage)


@inline
def long_task(kind, mode, p, q, i, b, parts, eps, dp, dq, oma):
    # one block of a long row, a prange task: its result into parts[b]
    n = p.shape[1]
    st = b * block
    r = blk_alone(kind, mode, p, q, i, st, min(block, n - st), eps, dp, dq, oma)
    parts[b, 0], parts[b, 1], parts[b, 2], parts[b, 3] = r


# -- class labels ------------------------------------------------------------------

@inline
def neg_log(buf, n):
    # kl_neg_log_inplace: the logs of a gathered chunk as one vector loop;
    # 0.0 - log: a certain label gives +0.0, not -0.0
    for k in range(n):
        buf[k] = 0.0 - m.vlog(buf[k])


@njit
def label_chunk(labels, q, out, rep, lo, hi, c, check, eps, transform, ignore_index,
                has_ignore, log_base, work, stage, buf):
    """_label_rows: gather the picked probabilities (_label_value) of up to
    _LABEL_CHUNK rows, then one vector -log.  The per-row code is written in
    the loop: a call taking arrays costs reference-count updates per row."""
    n = q.shape[1]
    labels, q, out, rep = borrow(labels), borrow(q), borrow(out), borrow(rep)
    work, stage, buf = borrow(work), borrow(stage), borrow(buf)
    for start in range(lo, hi, _LABEL_CHUNK):
        k_n = min(_LABEL_CHUNK, hi - start)
        for k in range(k_n):
            i = start + k
            lab = labels[i]
            buf[k] = np.nan
            if has_ignore and lab == ignore_index:
                continue
            if lab < 0 or lab >= n:
                # out of range: always reported, whatever `check` says
                rep[c, 0] += 1
                if rep[c, 1] < 0:
                    rep[c, 1], rep[c, 2], rep[c, 3] = i, -1, 0
                continue
            value = np.float64(q[i, lab])
            n_bad = 0
            if transform:
                sums = run(_Q_H, _SUMS, q, q, i, 0.0, 1.0, 1.0, 0.0, work, stage)
                n_bad = count_bad(q, i, n) if sums[3] > 0.0 else 0
                value = (value + eps) / (sums[1] + n * eps)
            elif check > 0:
                n_bad = 1 if (m.is_bad(value) > 0.0 or value > 1.0) else 0
            if check > 0 and n_bad > 0:
                rep[c, 0] += n_bad
                if rep[c, 1] < 0:
                    rep[c, 1] = i
                    rep[c, 2] = first_bad(q, i, n) if transform else lab
                    rep[c, 3] = 1
            buf[k] = value
        neg_log(buf, k_n)
        for k in range(k_n):
            out[start + k] = buf[k] / log_base


def label_serial(labels, q, out, rep, check, eps, transform, ignore_index, has_ignore,
                 log_base):
    work, stage = scratch(q, q.shape[1] if transform else 1, 2)
    buf = np.empty(_LABEL_CHUNK)
    label_chunk(labels, q, out, rep, 0, q.shape[0], 0, check, eps, transform, ignore_index,
                has_ignore, log_base, work, stage, buf)


def label_parallel(labels, q, out, rep, check, eps, transform, ignore_index, has_ignore,
                   log_base):
    n_rows = q.shape[0]
    n_chunks = rep.shape[0]
    for c in prange(n_chunks):
        work, stage = scratch(q, q.shape[1] if transform else 1, 2)
        buf = np.empty(_LABEL_CHUNK)
        label_chunk(labels, q, out, rep, c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks,
                    c, check, eps, transform, ignore_index, has_ignore, log_base, work, stage,
                    buf)


# -- diagonal Gaussians, one (scale, prior) at a time ---------------------------------

@inline
def gauss_term(scale, prior, f32, m1, s1, m2, s2):
    # f32: float32 parameters, whose log-scale terms take the float32 expm1mx
    # (kl_blocks.h's KL_DEFINE_GAUSS instances)
    if scale == m.SCALE_VAR:
        return m.vgauss_var_prior(m1, s1, m2, s2) if prior else m.vgauss_var(m1, s1, m2, s2)
    if scale == m.SCALE_STD:
        return m.vgauss_std_prior(m1, s1, m2, s2) if prior else m.vgauss_std(m1, s1, m2, s2)
    if scale == m.SCALE_LOGVAR:
        return (m.vgauss_logvar_prior(m1, s1, f32) if prior
                else m.vgauss_logvar(m1, s1, m2, s2, f32))
    return (m.vgauss_logstd_prior(m1, s1, f32) if prior
            else m.vgauss_logstd(m1, s1, m2, s2, f32))


@inline
def bad_s(scale, x):
    # the check of the scale parameter (kl_blocks.h's switch)
    if scale == m.SCALE_VAR or scale == m.SCALE_STD:
        return m.bad_positive(x)
    return m.bad_finite(x)


@inline
def gauss_fill(scale, prior, f32, m1, s1, m2, s2, n, check, tt):
    # tt = 2 KL terms, returns the bad-parameter count: the vectorized loop
    n_bad = 0
    for k in range(n):
        a = np.float64(m1[k])
        b = np.float64(s1[k])
        u = 0.0 if prior else np.float64(m2[k])
        v = 1.0 if prior else np.float64(s2[k])
        tt[k] = gauss_term(scale, prior, f32, a, b, u, v)
        if check:
            n_bad += int(m.bad_finite(a) + bad_s(scale, b) + (
                0.0 if prior else m.bad_finite(u) + bad_s(scale, v)))
    return n_bad


@inline
def gauss_row(scale, prior, m1, s1, m2, s2, i, check, log_base, rep, c, work, stage):
    n = m1.shape[1]
    it = m1.itemsize
    contiguous = m1.strides[1] == it and s1.strides[1] == it and (
        prior or (m2.strides[1] == it and s2.strides[1] == it))
    total = 0.0
    n_bad = 0
    for start in range(0, n, block):
        nb = min(block, n - start)
        at = Z8
        for s in range(0, nb, sub):
            k = min(sub, nb - s)
            j = start + s
            if contiguous:
                x1, x2 = row_view(m1, i, j, k), row_view(s1, i, j, k)
                x3, x4 = row_view(m2, i, j, k), row_view(s2, i, j, k)
            else:
                x1, x2, x3, x4 = stage[0], stage[1], stage[2], stage[3]
                stage_row(m1, i, j, k, x1)
                stage_row(s1, i, j, k, x2)
                if not prior:
                    stage_row(m2, i, j, k, x3)
                    stage_row(s2, i, j, k, x4)
            n_bad += gauss_fill(scale, prior, it == 4, x1, x2, x3, x4, k, check, work)
            at = lanes8(work, k, at)
        total += tree8(at)
    if n_bad > 0:
        rep[c, 0] += n_bad
        if rep[c, 1] < 0:
            for j in range(n):
                k = -1
                if m.bad_finite(np.float64(m1[i, j])) > 0.0:
                    k = 0
                elif bad_s(scale, np.float64(s1[i, j])) > 0.0:
                    k = 1
                elif not prior and m.bad_finite(np.float64(m2[i, j])) > 0.0:
                    k = 2
                elif not prior and bad_s(scale, np.float64(s2[i, j])) > 0.0:
                    k = 3
                if k >= 0:
                    rep[c, 1], rep[c, 2], rep[c, 3] = i, j, k
                    break
    total = 0.5 * total
    if total < 0.0:
        total = 0.0
    return total / log_base


@inline
def gauss_chunk(scale, prior, m1, s1, m2, s2, out, rep, lo, hi, c, check, log_base, work,
                stage):
    # borrowed here, allocated by the caller: a borrowed view must not outlive its owner
    m1, s1, m2, s2 = borrow(m1), borrow(s1), borrow(m2), borrow(s2)
    out, rep, work, stage = borrow(out), borrow(rep), borrow(work), borrow(stage)
    for i in range(lo, hi):
        out[i] = gauss_row(scale, prior, m1, s1, m2, s2, i, check, log_base, rep, c, work,
                           stage)


@inline
def gauss_serial(scale, prior, m1, s1, m2, s2, out, rep, check, log_base):
    work, stage = scratch(m1, m1.shape[1], 4)
    gauss_chunk(scale, prior, m1, s1, m2, s2, out, rep, 0, m1.shape[0], 0, check, log_base,
                work, stage)


@inline
def gauss_task(scale, prior, m1, s1, m2, s2, out, rep, c, check, log_base):
    n_rows = m1.shape[0]
    n_chunks = rep.shape[0]
    work, stage = scratch(m1, m1.shape[1], 4)
    gauss_chunk(scale, prior, m1, s1, m2, s2, out, rep, c * n_rows // n_chunks,
                (c + 1) * n_rows // n_chunks, c, check, log_base, work, stage)


# IR-inlined (inline="always", before numba's parfor pass), so each entry point's
# prange loops stay parallel and its `kind` a literal constant
@numba.njit(nogil=True, error_model="numpy", inline="always")
def long_rows(kind, p, q, out, rep, check, tol, eps, transform, log_base, oma):
    # _long_row: the blocks of each row in parallel into `parts`, added in order (the
    # f-divergences' extra passes -- Renyi's second tier, its order inf's sums -- run
    # their blocks in order instead: the same additions, the same bits)
    n = p.shape[1]
    n_blocks = (n + block - 1) // block
    parts = np.empty((n_blocks, 4))
    work, stage = scratch(p, n, 2)
    for i in range(p.shape[0]):
        if (kind == _Q_RENYI_MAX or kind == _Q_RENYI_ZERO
                or (kind == _Q_HELLINGER and p.itemsize == 4 and not transform)):
            total, sums = row_total(kind, borrow(p), borrow(q), i, check, eps, transform, oma,
                                    work, stage)
        else:
            dp = dq = 1.0
            if transform:
                for b in prange(n_blocks):
                    long_task(kind, _SUMS, p, q, i, b, parts, 0.0, 1.0, 1.0, oma)
                sums = add_parts(parts)
                dp = sums[1] + n * eps
                dq = sums[2] + n * eps
                for b in prange(n_blocks):
                    long_task(kind, _TERMS_SCALED, p, q, i, b, parts, eps, dp, dq, oma)
                terms = add_parts(parts)
            else:
                for b in prange(n_blocks):
                    if check > 0 or renyi_first_tier(kind):
                        long_task(kind, _TERMS_SUMS, p, q, i, b, parts, 0.0, 1.0, 1.0, oma)
                    else:
                        long_task(kind, _TERMS, p, q, i, b, parts, 0.0, 1.0, 1.0, oma)
                terms = sums = add_parts(parts)
            total = terms[0]
            if renyi_first_tier(kind):
                total = renyi_total(borrow(p), borrow(q), i, transform, eps, dp, dq, oma,
                                    terms[0], 1.0 if transform else sums[1], work, stage)
        out[i] = finish(kind, p, q, i, check, tol, log_base, rep, 0, total, sums)


# -- entry points: one per (quantity, driver), each a closure over its constants -------
# Numba freezes a closure's variables into the code it compiles, as literals (every
# branch on them folds away), and its disk cache keys a closure by their values, so
# each (kind, driver) is a specialized kernel of its own, compiled once per machine.

def _row_entries(kind):
    """The serial, parallel and long-row drivers of row quantity `kind` (oma: Renyi's
    1 - alpha; the other quantities ignore it)."""
    def serial(p, q, out, rep, check, tol, eps, transform, log_base, oma):
        rows_serial(kind, p, q, out, rep, check, tol, eps, transform, log_base, oma)

    def parallel(p, q, out, rep, check, tol, eps, transform, log_base, oma):
        n_chunks = rep.shape[0]
        for c in prange(n_chunks):
            rows_chunk(kind, p, q, out, rep, c, n_chunks, check, tol, eps, transform,
                       log_base, oma)

    def long(p, q, out, rep, check, tol, eps, transform, log_base, oma):
        long_rows(kind, p, q, out, rep, check, tol, eps, transform, log_base, oma)

    return {"serial": serial, "parallel": parallel, "long": long}


def _gauss_entries(scale, prior):
    """The serial and parallel drivers of diagonal Gaussians with `scale` (0 var, 1 std,
    2 logvar, 3 logstd: _numba.kl_math.SCALE_*), against N(0, 1) if `prior`."""
    def serial(m1, s1, m2, s2, out, rep, check, log_base):
        gauss_serial(scale, prior, m1, s1, m2, s2, out, rep, check, log_base)

    def parallel(m1, s1, m2, s2, out, rep, check, log_base):
        for c in prange(rep.shape[0]):
            gauss_task(scale, prior, m1, s1, m2, s2, out, rep, c, check, log_base)

    return {"serial": serial, "parallel": parallel}


# The row quantities by name: each row kernel of _numba.rows (the registry's
# ROW_REDUCTIONS kernels; a kernel is made for each), then Renyi's tiers that
# _numba.rows.renyi_rows picks by alpha (renyi_rows itself is the general order).
ROW_KINDS = {"kl_rows": _Q_KL, "cross_entropy_rows": _Q_CE, "entropy_rows": _Q_H,
             "js_rows": _Q_JS, "hellinger_rows": _Q_HELLINGER,
             "total_variation_rows": _Q_TV, "chi2_rows": _Q_CHI2,
             "renyi_rows": _Q_RENYI, "renyi_max": _Q_RENYI_MAX, "renyi_zero": _Q_RENYI_ZERO,
             "renyi_half": _Q_RENYI_HALF, "renyi_two": _Q_RENYI_TWO}

_SCALES = ("var", "std", "logvar", "logstd")

# (family, variant) -> entry point, the families and variants of _numba.rows._kernel:
# a row quantity's name, "label", or ("gauss", scale, prior)
ENTRIES = {("label", "serial"): label_serial, ("label", "parallel"): label_parallel}
for _name, _kind in ROW_KINDS.items():
    ENTRIES.update({(_name, v): fn for v, fn in _row_entries(_kind).items()})
for _s in range(len(_SCALES)):
    for _prior in (False, True):
        ENTRIES.update({(("gauss", _s, _prior), v): fn
                        for v, fn in _gauss_entries(_s, _prior).items()})
