"""Mutual information of joint probability tables, Numba backend.

A line-by-line mirror of ``src/_mutual_information_cython.pyx`` (read its
design notes): double-double marginals, the FMA-corrected log ratio, the
Neumaier sum, the same order, the same vector log (``_numba_math.vlog``) and
an explicit FMA where the C code has one, so both backends return the same
bits.  Compiled lazily on first use, one signature per dtype.
"""

import functools
import threading

import numpy as np

__all__ = ["mutual_information_kernel"]

_DBL_MIN = 2.2250738585072014e-308
_build_lock = threading.Lock()
_compiled = {}


@functools.cache
def _impl():
    import numba

    from . import _numba_math as m

    inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
    prange = numba.prange

    @inline
    def term_of(x, ah, al, bh, bl):
        qh = ah * bh
        ql = m.fma(ah, bh, -qh) + (ah * bl + al * bh)
        if not (qh >= _DBL_MIN):
            return x * ((m.vlog(x) - m.vlog(ah)) - m.vlog(bh))
        r = x / qh
        e = m.fma(-r, qh, x) - r * ql
        return m.fma(x, m.vlog(r), e)

    @inline
    def table(j3, t, nx, ny, check, eps, transform, ws, sums, info):
        total = 0.0
        for i in range(nx):
            for j in range(ny):
                x = np.float64(j3[t, i, j])
                total = total + x
                if check and info[t, 0] == 0 and (not (x >= 0.0) or x == np.inf):
                    info[t, 0] = 1
                    info[t, 1] = i
                    info[t, 2] = j
        sums[t] = total
        d = 1.0
        if transform:
            d = total + np.float64(nx * ny) * eps
        for j in range(ny):
            ws[2 * nx + j] = 0.0
            ws[2 * nx + ny + j] = 0.0
        for i in range(nx):
            ws[i] = 0.0
            ws[nx + i] = 0.0
            for j in range(ny):
                x = np.float64(j3[t, i, j])
                if transform:
                    x = (x + eps) / d
                # two TwoSums: (ah, al) += x and (bh, bl) += x
                s = ws[i] + x
                bb = s - ws[i]
                ws[nx + i] = ws[nx + i] + ((ws[i] - (s - bb)) + (x - bb))
                ws[i] = s
                s = ws[2 * nx + j] + x
                bb = s - ws[2 * nx + j]
                ws[2 * nx + ny + j] = ws[2 * nx + ny + j] + ((ws[2 * nx + j] - (s - bb))
                                                             + (x - bb))
                ws[2 * nx + j] = s
        s = 0.0
        c = 0.0
        for i in range(nx):
            for j in range(ny):
                x = np.float64(j3[t, i, j])
                if transform:
                    x = (x + eps) / d
                if x == 0.0:
                    continue
                term = term_of(x, ws[i], ws[nx + i], ws[2 * nx + j], ws[2 * nx + ny + j])
                tt = s + term
                if abs(s) >= abs(term):
                    c = c + ((s - tt) + term)
                else:
                    c = c + ((term - tt) + s)
                s = tt
        return s + c

    @inline
    def chunk(j3, out, sums, info, check, eps, transform, log_base, lo, hi):
        nx = j3.shape[1]
        ny = j3.shape[2]
        ws = np.empty(2 * nx + 2 * ny + 1)
        for t in range(lo, hi):
            r = table(j3, t, nx, ny, check, eps, transform, ws, sums, info)
            r = (0.0 if r < 0.0 else r) / log_base
            out[t] = r

    def serial(j3, out, sums, info, check, eps, transform, log_base, n_chunks):
        chunk(j3, out, sums, info, check, eps, transform, log_base, 0, out.shape[0])

    def parallel(j3, out, sums, info, check, eps, transform, log_base, n_chunks):
        n = out.shape[0]
        for c in prange(n_chunks):
            chunk(j3, out, sums, info, check, eps, transform, log_base,
                  c * n // n_chunks, (c + 1) * n // n_chunks)

    return numba, {"serial": serial, "parallel": parallel}


def _kernel(variant, dtype):
    key = (variant, dtype)
    fn = _compiled.get(key)
    if fn is None:
        with _build_lock:
            fn = _compiled.get(key)
            if fn is None:
                numba, drivers = _impl()
                t = numba.types
                fl = t.float64 if dtype == "float64" else t.float32
                sig = t.void(t.Array(fl, 3, "A", readonly=True), t.Array(fl, 1, "C"),
                             t.Array(t.float64, 1, "C"), t.Array(t.int64, 2, "C"), t.int64,
                             t.float64, t.boolean, t.float64, t.int64)
                fn = numba.njit(sig, parallel=variant == "parallel", nogil=True,
                                error_model="numpy")(drivers[variant])
                _compiled[key] = fn
    return fn


def mutual_information_kernel(joint, out, sums, info, check, eps, transform, log_base,
                              n_threads):
    """The Cython kernel's contract (``kl_fast._mutual_information_cython``)."""
    from ._numba_kernels import _call_parallel

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
        _call_parallel(_kernel("parallel", dtype), args, n_chunks)
