"""Mutual information of joint probability tables, Numba backend.

A line-by-line mirror of ``src/mutual_information.pyx`` and its C
``kl_mi_table`` (read the design notes there): the contiguous table buffers,
double-double marginals, the FMA-corrected log ratio, the per-column TwoSum
accumulators and the odd-term fallback, in the same order, with the same
vector log (``_numba.kl_math``) and an explicit FMA where the C code has one, so
both backends return the same bits.  Compiled lazily on first use, one
signature per dtype, through numba's disk cache (``_numba.cache``).
"""

import numba
import numpy as np

from . import kl_math as m
from .cache import compile_kernel, register_source
from .rows import compile_once

register_source(__file__)
register_source(m.__file__)

__all__ = ["mutual_information_kernel", "compiled"]

_DBL_MIN = 2.2250738585072014e-308


# -- compiled code (module level, so that numba caches it on disk) ---------------------

inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
prange = numba.prange


@inline
def term_exact(x, ah, al, bh, bl):
    if x == 0.0:
        return 0.0
    qh = ah * bh
    ql = m.fma(ah, bh, -qh) + (ah * bl + al * bh)
    if not (qh >= _DBL_MIN):
        return x * ((m.vlog(x) - m.vlog(ah)) - m.vlog(bh))
    r = x / qh
    e = m.fma(-r, qh, x) - r * ql
    return m.fma(x, m.vlog(r), e)


@inline
def mi_table(x, xt, nx, ny, ah, al, bh, bl, sh, sl, od, tb, ob):
    """The C kl_mi_table, loop for loop."""
    for i in range(nx):
        ah[i] = 0.0
        al[i] = 0.0
    for j in range(ny):
        bh[j] = 0.0
        bl[j] = 0.0
        sh[j] = 0.0
        sl[j] = 0.0
        od[j] = 0.0
    for i in range(nx):
        for j in range(ny):
            bh[j], bl[j] = m.two_sum_add(bh[j], bl[j], x[i * ny + j])
    for j in range(ny):
        for i in range(nx):
            ah[i], al[i] = m.two_sum_add(ah[i], al[i], xt[j * nx + i])
    for i in range(nx):
        a = ah[i]
        b = al[i]
        for j in range(ny):
            v = x[i * ny + j]
            qh = a * bh[j]
            ql = m.fma(a, bh[j], -qh) + (a * bl[j] + b * bh[j])
            r = v / qh
            e = m.fma(-r, qh, v) - r * ql
            ok = qh >= _DBL_MIN and r >= _DBL_MIN and r <= m.DBL_MAX
            t = m.fma(v, m.vlog_normal(r if ok else 1.0), e)
            tb[j] = 0.0 if v == 0.0 else t
            ob[j] = 1.0 if (v != 0.0 and not ok) else 0.0
        for j in range(ny):
            od[j] += ob[j]
            sh[j], sl[j] = m.two_sum_add(sh[j], sl[j], tb[j])
    odd = 0.0
    for j in range(ny):
        odd += od[j]
    if odd > 0.0:
        for j in range(ny):
            sh[j] = 0.0
            sl[j] = 0.0
        for i in range(nx):
            for j in range(ny):
                t = term_exact(x[i * ny + j], ah[i], al[i], bh[j], bl[j])
                sh[j], sl[j] = m.two_sum_add(sh[j], sl[j], t)
    hi = 0.0
    lo = 0.0
    for j in range(ny):
        hi, lo = m.two_sum_add(hi, lo, sh[j])
        lo += sl[j]
    return hi + lo


@inline
def table(j3, t, nx, ny, check, eps, transform, buf, xt, ws, sums, info):
    total = 0.0
    for i in range(nx):
        for j in range(ny):
            x = np.float64(j3[t, i, j])
            total = total + x
            if check and info[t, 0] == 0 and (not (x >= 0.0) or x == np.inf):
                info[t, 0] = 1
                info[t, 1] = i
                info[t, 2] = j
            buf[i * ny + j] = x
            xt[j * nx + i] = x
    sums[t] = total
    if transform:
        d = total + np.float64(nx * ny) * eps
        for i in range(nx * ny):
            buf[i] = (buf[i] + eps) / d
            xt[i] = (xt[i] + eps) / d
    ah = ws[:nx]
    al = ws[nx:2 * nx]
    o = 2 * nx
    return mi_table(buf, xt, nx, ny, ah, al, ws[o:o + ny], ws[o + ny:o + 2 * ny],
                    ws[o + 2 * ny:o + 3 * ny], ws[o + 3 * ny:o + 4 * ny],
                    ws[o + 4 * ny:o + 5 * ny], ws[o + 5 * ny:o + 6 * ny],
                    ws[o + 6 * ny:o + 7 * ny])


@inline
def chunk(j3, out, sums, info, check, eps, transform, log_base, lo, hi):
    nx = j3.shape[1]
    ny = j3.shape[2]
    buf = np.empty(nx * ny)
    xt = np.empty(nx * ny)
    ws = np.empty(2 * nx + 7 * ny + 1)
    for t in range(lo, hi):
        r = table(j3, t, nx, ny, check, eps, transform, buf, xt, ws, sums, info)
        r = (0.0 if r < 0.0 else r) / log_base
        out[t] = r


def serial(j3, out, sums, info, check, eps, transform, log_base, n_chunks):
    chunk(j3, out, sums, info, check, eps, transform, log_base, 0, out.shape[0])


def parallel(j3, out, sums, info, check, eps, transform, log_base, n_chunks):
    n = out.shape[0]
    for c in prange(n_chunks):
        chunk(j3, out, sums, info, check, eps, transform, log_base,
              c * n // n_chunks, (c + 1) * n // n_chunks)


_DRIVERS = {"serial": serial, "parallel": parallel}


def _kernel(variant, dtype):
    def build():
        t = numba.types
        fl = t.float64 if dtype == "float64" else t.float32
        sig = t.void(t.Array(fl, 3, "A", readonly=True), t.Array(fl, 1, "C"),
                     t.Array(t.float64, 1, "C"), t.Array(t.int64, 2, "C"), t.int64,
                     t.float64, t.boolean, t.float64, t.int64)
        return compile_kernel(_DRIVERS[variant], sig, parallel=variant == "parallel")

    return compile_once((__name__, variant, dtype), build)


def compiled(variant, dtype):
    """The compiled driver ("serial" or "parallel"), as a first call would get it."""
    return _kernel(variant, dtype)


def mutual_information_kernel(joint, out, sums, info, check, eps, transform, log_base,
                              n_threads):
    """The Cython kernel's contract (``kl_fast._cython.mutual_information``)."""
    from .rows import call_parallel

    n = out.shape[0]
    if n == 0:
        return
    dtype = "float32" if out.dtype == np.float32 else "float64"
    n_chunks = max(1, min(int(n_threads), n))
    args = (joint, out, sums, info, int(check), float(eps), bool(transform), float(log_base),
            n_chunks)
    if n_chunks == 1:
        _kernel("serial", dtype)(*args)
    else:
        call_parallel(_kernel("parallel", dtype), args, n_chunks)
