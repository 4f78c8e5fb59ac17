"""Elementwise kernels of kl_fast, Numba backend: binary KL, binary
cross-entropy and the k1/k2/k3 KL estimators.

A mirror of ``src/kl_binary.h`` and ``src/elementwise.pyx`` (read
their notes): the same entry point, ops, work units, report, and the same
operations in the same order on the math of ``_numba/kl_math.py``, so that both
backends return the same bits.  Compiled lazily, once per dtype and machine
(numba's disk cache, ``_numba.cache``), on first use (all ops in one driver,
~20-40 s: one compile instead of fifteen).  Pieces
of a row are staged into float64 buffers and each op runs its own plain,
force-inlined loop over them (``fill`` called with a literal op), which LLVM
vectorizes as GCC does kl_bin_acc.
"""

import math

import numba
import numpy as np

from . import kl_math as m
from .cache import compile_kernel, register_source
from .lanes import row_view, row_view_f64
from .rows import compile_once

register_source(__file__)
register_source(m.__file__)

__all__ = ["binary_elementwise"]

UNIT = 8192
_STAGE = 1024     # elements staged at a time (kl_blocks.h's KL_CHUNK)
_OP_BCE_PROB, _OP_BCE_PROB_EPS, _OP_BCE_LOGITS, _OP_BCE_LOGITS_EPS = 8, 9, 10, 11
_OP_K1, _OP_K2, _OP_K3 = 12, 13, 14
_LOG_2P900 = 623.8324625039508
_2P900 = 2.0 ** 900
_2P1000 = 2.0 ** 1000
_TRUE_MIN = 5e-324
_U = 2.0 ** -53
_FAST_TOL = 2.0 ** -27   # kl_binary.h's KL_BIN_FAST_TOL
_BIN_NEAR = 2.0   # KL_BIN_NEAR of kl_binary.h
# 1/k!, k = 2..30, the doubles nearest to them (kl_binary.h's kl_vk3)
_K3_COEF = tuple(1.0 / float(math.factorial(k)) for k in range(2, 31))



# -- compiled code (module level, so that numba caches it on disk) ---------------------

njit = numba.njit(nogil=True, error_model="numpy")
inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
inf = math.inf
coef = m._ATANH_COEF

# -- kl_binary.h's scalar math


@inline
def bad_prob(x):
    return 0 if (x >= 0.0 and x <= 1.0) else 1


@inline
def bad_nan(x):
    return 1 if x != x else 0


@inline
def bad_nonfinite(x):
    return 0 if x - x == 0.0 else 1


@inline
def bad_logq(x):
    return 1 if (x != x or x == inf) else 0


@inline
def bad(op, arg, x):
    if op < _OP_BCE_PROB:
        logits = (op >> 1) & 1 if arg == 0 else op & 1
        return bad_nan(x) if logits else bad_prob(x)
    if op < _OP_K1:
        if arg == 0:
            return bad_prob(x)
        return bad_nan(x) if op >= _OP_BCE_LOGITS else bad_prob(x)
    return bad_nonfinite(x) if arg == 0 else bad_logq(x)


@inline
def bregman(d, x, y, lx0, ly0, ylim):
    s = d / (x + y)
    band = s >= -1.0 / 3 and s <= 1.0 / 3
    sb = s if band else 0.0
    s2 = sb * sb
    b = coef[17]
    for k in range(16, -1, -1):
        b = b * s2 + coef[k]
    series = (d * sb) * (1.0 + (sb * (1.0 + sb)) * b)
    zero = y < ylim
    tiny = y * _2P1000 < x
    ys = 1.0 if zero else (y * _2P900 if tiny else y)
    shift = -ly0 if zero else (_LOG_2P900 if tiny else 0.0)
    r = x / ys
    e = m.fma(-r, ys, x)
    lr = m.vlog(r) + shift
    far = m.fma(x, lr, e) - d
    t = series if band else far
    t0 = inf if (y == 0.0 and ly0 == -inf and lx0 > -inf) else y
    return t0 if x == 0.0 else t


@inline
def sigmoid_pair(a):
    e = m.vexp(-abs(a))
    big = 1.0 / (1.0 + e)
    small = e / (1.0 + e)
    return (big, small) if a >= 0.0 else (small, big)


@inline
def bern(a, logits):
    if logits:
        v, vc = sigmoid_pair(a)
        return v, vc, -abs(a)
    return a, 1.0 - a, -inf


@inline
def binary_kl(a, b, pl, ql, smooth, eps, den):
    p, pc, lp0 = bern(a, pl)
    q, qc, lq0 = bern(b, ql)
    d = p - q if p + q <= 1.0 else qc - pc
    if pl and ql:
        delta = a - b
        near = q * (pc * (m.vexpm1mx(delta) + delta))
        d = near if abs(delta) <= 1.0 else d
    if smooth:
        p = (p + eps) / den
        pc = (pc + eps) / den
        q = (q + eps) / den
        qc = (qc + eps) / den
        d = d / den
    lim = m.DBL_MIN if (ql and not smooth) else _TRUE_MIN
    t = bregman(d, p, q, lp0, lq0, lim) + bregman(-d, pc, qc, lp0, lq0, lim)
    if pl and ql and not smooth:
        # two logits not far apart: log1p(v expm1mx(-u e) + u expm1mx(v e)), kl_binary.h
        delta = a - b
        near = abs(delta) <= _BIN_NEAR
        u = pc if a >= 0.0 else p
        v = p if a >= 0.0 else pc
        e = (delta if a >= 0.0 else -delta) if near else 0.0
        w = v * m.vexpm1mx(-(u * e)) + u * m.vexpm1mx(v * e)
        tn = m.vlog1p(w)
        t = tn if near else t
    return 0.0 if t < 0.0 else t


@inline
def neg_wlog(w, log_v):
    return 0.0 if w == 0.0 else -w * log_v


@inline
def bce_smooth(y, small, small_is_q, eps, den):
    yc = ((1.0 - y) + eps) / den
    ys = (y + eps) / den
    ss = (small + eps) / den
    ls = m.vlog(ss)
    lb = m.vlog1p(-ss)
    return neg_wlog(ys, ls if small_is_q else lb) + neg_wlog(yc, lb if small_is_q else ls)


@inline
def bce_prob(y, q, smooth, eps, den):
    if smooth:
        return bce_smooth(y, q if q <= 0.5 else 1.0 - q, q <= 0.5, eps, den)
    return neg_wlog(y, m.vlog(q)) + neg_wlog(1.0 - y, m.vlog1p(-q))


@inline
def bce_logits(y, x, smooth, eps, den):
    if smooth:
        q, qc = sigmoid_pair(x)
        return bce_smooth(y, qc if x >= 0.0 else q, not (x >= 0.0), eps, den)
    ax = abs(x)
    w = 1.0 - y if x >= 0.0 else y
    lin = 0.0 if w == 0.0 else w * ax
    return lin + m.vlog1p(m.vexp(-ax))


@inline
def k3(lp, lq):
    x = lq - lp
    bb = x - lq
    dx = (lq - (x - bb)) + (-lp - bb)
    dx = dx if dx - dx == 0.0 else 0.0
    band = x >= -1.0 and x <= 3.0
    xb = x if band else 0.0
    c = _K3_COEF[28]
    for k in range(27, -1, -1):
        c = c * xb + _K3_COEF[k]
    e = m.vexp(x)
    far = e + (-1.0 - x) if x < 0.0 else (e - 1.0) - x
    fix = (e - 1.0) * dx if e < inf else 0.0
    return ((xb * xb) * c if band else far) + fix


@inline
def k3_f32(lp, lq):
    # k3 for float32 inputs (kl_binary.h's kl_vk3_f32)
    return m.vexpm1mx_f32(lq - lp)


@inline
def binary_kl_fast(p, q, tol):
    # the fast tier of binary KL between float32 probabilities and whether its bound
    # failed (kl_binary.h's kl_vbinary_kl_fast: read the derivation there)
    inside = p > 0.0 and p < 1.0 and q > 0.0 and q < 1.0
    x = p if inside else 0.5
    y = q if inside else 0.25
    xc = 1.0 - x
    yc = 1.0 - y
    t1 = x * m.vlog_normal(x / y)
    t2 = xc * m.vlog_normal(xc / yc)
    t = t1 + t2
    bound = 8.0 * _U * (abs(t1) + abs(t2) + 1.0)
    fail = 0 if (inside and bound <= tol * t) else 1
    return t, fail


@inline
def value(op, x, y, eps, den):
    if op < _OP_BCE_PROB:
        return binary_kl(x, y, (op >> 1) & 1, op & 1, op >= 4, eps, den)
    if op == _OP_BCE_PROB:
        return bce_prob(x, y, False, eps, den)
    if op == _OP_BCE_PROB_EPS:
        return bce_prob(x, y, True, eps, den)
    if op == _OP_BCE_LOGITS:
        return bce_logits(x, y, False, eps, den)
    if op == _OP_BCE_LOGITS_EPS:
        return bce_logits(x, y, True, eps, den)
    if op == _OP_K1:
        return x - y
    if op == _OP_K2:
        lr = y - x
        return 0.5 * lr * lr
    return k3(x, y)


# -- the driver


@inline
def fill(op, ba, bb, ob, k, eps, den, log_base):
    # the vectorizable loop: with `op` a constant at each call site below, the
    # force-inlined math folds to straight-line selects (kl_binary.h's kl_bin_acc)
    nb = 0
    for j in range(k):
        x = ba[j]
        y = bb[j]
        v = value(op, x, y, eps, den)
        ob[j] = v / log_base if log_base != 1.0 else v
        nb += bad(op, 0, x) + bad(op, 1, y)
    return nb


@inline
def fill_kl_two_tier(ba, bb, ob, fail, k, log_base):
    # binary KL of float32 probabilities: the fast tier for every element, then the
    # accurate form for those whose bound failed (kl_binary.h's kl_bin_kl_two_tier)
    nb = 0
    n_fail = 0
    for j in range(k):
        x = ba[j]
        y = bb[j]
        v, f = binary_kl_fast(x, y, _FAST_TOL)
        ob[j] = v
        fail[j] = f
        n_fail += f
        nb += bad_prob(x) + bad_prob(y)
    if n_fail > 0:
        for j in range(k):
            if fail[j]:
                ob[j] = binary_kl(ba[j], bb[j], 0, 0, False, 0.0, 1.0)
    if log_base != 1.0:
        for j in range(k):
            ob[j] = ob[j] / log_base
    return nb


@inline
def fill_k3_f32(ba, bb, ob, k, log_base):
    # ba, bb, ob: staged doubles, or the float32 rows themselves (kl_bin_f32_direct)
    nb = 0
    for j in range(k):
        x = np.float64(ba[j])
        y = np.float64(bb[j])
        v = k3_f32(x, y)
        ob[j] = v / log_base if log_base != 1.0 else v
        nb += bad_nonfinite(x) + bad_logq(y)
    return nb


@inline
def fill_op(op, ba, bb, ob, fail, f32, k, eps, den, log_base):
    # one call per op with a literal op: 15 specialized loops, one switch per piece;
    # f32: values staged from float32 inputs, for which binary KL and k3 take their
    # float32 forms (kl_binary.h's kl_bin_acc)
    if f32 and op == 0:
        return fill_kl_two_tier(ba, bb, ob, fail, k, log_base)
    if f32 and op == _OP_K3:
        return fill_k3_f32(ba, bb, ob, k, log_base)
    if op == 0:
        return fill(0, ba, bb, ob, k, eps, den, log_base)
    if op == 1:
        return fill(1, ba, bb, ob, k, eps, den, log_base)
    if op == 2:
        return fill(2, ba, bb, ob, k, eps, den, log_base)
    if op == 3:
        return fill(3, ba, bb, ob, k, eps, den, log_base)
    if op == 4:
        return fill(4, ba, bb, ob, k, eps, den, log_base)
    if op == 5:
        return fill(5, ba, bb, ob, k, eps, den, log_base)
    if op == 6:
        return fill(6, ba, bb, ob, k, eps, den, log_base)
    if op == 7:
        return fill(7, ba, bb, ob, k, eps, den, log_base)
    if op == 8:
        return fill(8, ba, bb, ob, k, eps, den, log_base)
    if op == 9:
        return fill(9, ba, bb, ob, k, eps, den, log_base)
    if op == 10:
        return fill(10, ba, bb, ob, k, eps, den, log_base)
    if op == 11:
        return fill(11, ba, bb, ob, k, eps, den, log_base)
    if op == 12:
        return fill(12, ba, bb, ob, k, eps, den, log_base)
    if op == 13:
        return fill(13, ba, bb, ob, k, eps, den, log_base)
    return fill(14, ba, bb, ob, k, eps, den, log_base)


@njit
def chunk(op, a, b, out, rep, c, lo, hi, per_row, eps, den, log_base):
    n = a.shape[1]
    # float64 staging buffers: computing straight from widened float32 loads lets
    # LLVM narrow some double operations to float (measured: 1-ulp float32 results
    # off); loaded from a double buffer the values are opaque doubles, as in C.
    # Float64 unit-stride rows run in place, as kl_bin_piece does (the staging
    # copies cost k3 60% more time than Cython's in-place loop).
    # One allocation, the three buffers 64 bytes off a 4 KiB multiple of each other
    # (as kl_blocks.h's bp/bq): equal low address bits alias in the load/store unit.
    buf = np.empty(3 * _STAGE + 16)
    ba = buf[:_STAGE]
    bb = buf[_STAGE + 8:2 * _STAGE + 8]
    ob = buf[2 * _STAGE + 16:]
    fail = np.empty(_STAGE, np.int64)
    f32 = a.itemsize == 4
    unit = a.strides[1] == a.itemsize and b.strides[1] == b.itemsize
    inplace = unit and a.itemsize == 8
    for u in range(lo, hi):
        i = u // per_row
        j0 = (u % per_row) * UNIT
        j1 = min(j0 + UNIT, n)
        nb = 0
        for s0 in range(j0, j1, _STAGE):
            s1 = min(s0 + _STAGE, j1)
            if f32 and unit and op == _OP_K3:   # no staging (kl_binary.h's kl_bin_f32_direct)
                nb += fill_k3_f32(row_view(a, i, s0, s1 - s0), row_view(b, i, s0, s1 - s0),
                                  row_view(out, i, s0, s1 - s0), s1 - s0, log_base)
                continue
            if inplace:
                xa = row_view_f64(a, i, s0, s1 - s0)
                xb = row_view_f64(b, i, s0, s1 - s0)
                xo = row_view_f64(out, i, s0, s1 - s0)
            else:
                xa, xb, xo = ba, bb, ob
                if unit:   # float32 rows: copies through 1-D views, which vectorize
                    ra = row_view(a, i, s0, s1 - s0)
                    rb = row_view(b, i, s0, s1 - s0)
                    for t in range(s1 - s0):
                        ba[t] = ra[t]
                    for t in range(s1 - s0):
                        bb[t] = rb[t]
                else:
                    for j in range(s0, s1):
                        ba[j - s0] = a[i, j]
                        bb[j - s0] = b[i, j]
            nb += fill_op(op, xa, xb, xo, fail, f32, s1 - s0, eps, den, log_base)
            if not inplace:
                ro = row_view(out, i, s0, s1 - s0)
                for t in range(s1 - s0):
                    ro[t] = ob[t]
        if nb > 0:
            rep[c, 0] += nb
            if rep[c, 1] < 0:
                for j in range(j0, j1):
                    if bad(op, 0, float(a[i, j])):
                        rep[c, 1], rep[c, 2], rep[c, 3] = i, j, 0
                        break
                    if bad(op, 1, float(b[i, j])):
                        rep[c, 1], rep[c, 2], rep[c, 3] = i, j, 1
                        break


def parallel(a, b, out, rep, op, eps, log_base):
    """The entry point: units of 8192 elements of a row, chunks of units in parallel."""
    n_rows, n = a.shape
    per_row = (n + UNIT - 1) // UNIT
    units = n_rows * per_row
    n_chunks = rep.shape[0]
    den = 1.0 + 2.0 * eps
    for c in numba.prange(n_chunks):
        chunk(op, a, b, out, rep, c, c * units // n_chunks, (c + 1) * units // n_chunks,
              per_row, eps, den, log_base)


def _kernel(dtype):
    """The compiled driver for `dtype` ("float32"/"float64"), compiled (or loaded from
    numba's disk cache) on first request."""
    def build():
        t = numba.types
        fl = t.float64 if dtype == "float64" else t.float32
        x = t.Array(fl, 2, "A", readonly=True)
        sig = t.void(x, x, t.Array(fl, 2, "C"), t.Array(t.int64, 2, "C"), t.int64,
                     t.float64, t.float64)
        return compile_kernel(parallel, sig, parallel=True)

    return compile_once((__name__, dtype), build)


def binary_elementwise(a, b, out, report, op, eps, log_base, n_threads):
    """out[i, j] = op(a[i, j], b[i, j]) / log_base; invalid values counted in `report`."""
    from .rows import call_parallel, dtype_name

    n_rows, n = a.shape
    if n_rows == 0 or n == 0:
        return
    op = int(op)
    if not 0 <= op <= 14:
        raise ValueError(f"op must be in [0, 14], got {op}")
    fn = _kernel(dtype_name(a))
    call_parallel(fn, (a, b, out, report, op, float(eps), float(log_base)), int(n_threads))


def warmup(dtypes=("float32", "float64")):
    """Compile the driver for ``dtypes`` now instead of on first use."""
    for dtype in dtypes:
        _kernel(dtype)
