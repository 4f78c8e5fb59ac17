"""Pairwise KL kernel of kl_fast, Numba backend.

A mirror of ``src/_pairwise_cython.pyx`` and ``src/kl_pairwise.h`` (read
their notes): the same tiles, chunks, per-row logs (``vlog``, the twin of
``kl_vlog``), the same term ``x (log x - log y)`` and the same summation
order -- blocks of ``PW_BLOCK`` categories, element k to lane k % 8, lanes
combined by the fixed tree, block sums added to the pair's total in order --
so both backends return the same bits.  Compiled lazily (first call) for one
signature per dtype, with a serial and a parallel variant, like
``_numba_kernels``; the parallel variant runs under its thread-count and
workqueue-lock wrapper.
"""

import functools
import threading

import numpy as np

from ._numba_kernels import _call_parallel, _dtype_name

__all__ = ["pairwise_kl_matrix", "tile_shape"]

PW_BLOCK = 1024        # kl_pairwise.h's KL_PW_BLOCK
_MAX_CHUNK = 4096
_TILE_BUDGET = 16384
_MIN_TILE, _MAX_TILE = 16, 64

_build_lock = threading.Lock()
_compiled = {}


def tile_shape(n_cat):
    """(T, KC): tile rows and chunk length, as the Cython kernel picks them."""
    kc = n_cat if n_cat <= _MAX_CHUNK else _MAX_CHUNK
    return max(_MIN_TILE, min(_MAX_TILE, _TILE_BUDGET // kc)), kc


@functools.cache
def _drivers():
    """Import numba and build the (uncompiled) serial and parallel drivers."""
    import numba

    from . import _numba_math as m

    inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
    prange = numba.prange
    block = PW_BLOCK

    @inline
    def term(x, lx, ly):
        return x * (lx - ly) if x > 0.0 else 0.0

    @inline
    def add_pair(x, lx, ly, xo, yo, n, total):
        """total + this chunk's blocks of x (lx - ly), in kl_pw_rows1's order."""
        for b in range(0, n, block):
            end = min(n, b + block)
            full = end - (end - b) % 8
            a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
            for j in range(b, full, 8):
                a0 += term(x[xo + j], lx[xo + j], ly[yo + j])
                a1 += term(x[xo + j + 1], lx[xo + j + 1], ly[yo + j + 1])
                a2 += term(x[xo + j + 2], lx[xo + j + 2], ly[yo + j + 2])
                a3 += term(x[xo + j + 3], lx[xo + j + 3], ly[yo + j + 3])
                a4 += term(x[xo + j + 4], lx[xo + j + 4], ly[yo + j + 4])
                a5 += term(x[xo + j + 5], lx[xo + j + 5], ly[yo + j + 5])
                a6 += term(x[xo + j + 6], lx[xo + j + 6], ly[yo + j + 6])
                a7 += term(x[xo + j + 7], lx[xo + j + 7], ly[yo + j + 7])
            r = end - full
            if r > 0:
                a0 += term(x[xo + full], lx[xo + full], ly[yo + full])
            if r > 1:
                a1 += term(x[xo + full + 1], lx[xo + full + 1], ly[yo + full + 1])
            if r > 2:
                a2 += term(x[xo + full + 2], lx[xo + full + 2], ly[yo + full + 2])
            if r > 3:
                a3 += term(x[xo + full + 3], lx[xo + full + 3], ly[yo + full + 3])
            if r > 4:
                a4 += term(x[xo + full + 4], lx[xo + full + 4], ly[yo + full + 4])
            if r > 5:
                a5 += term(x[xo + full + 5], lx[xo + full + 5], ly[yo + full + 5])
            if r > 6:
                a6 += term(x[xo + full + 6], lx[xo + full + 6], ly[yo + full + 6])
            total += ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        return total

    @inline
    def fill(src, row, c0, n, eps, d, v, vo, lv):
        """v[vo:vo+n] = (src[row, c0:c0+n] + eps) / d as float64; lv = their logs."""
        for k in range(n):
            v[vo + k] = (np.float64(src[row, c0 + k]) + eps) / d
        for k in range(n):
            lv[vo + k] = m.vlog(v[vo + k])

    @inline
    def tiles(P, Q, out, dP, dQ, eps, log_base, T, KC, lo, hi):
        N, K = P.shape
        M = Q.shape[0]
        n_tj = (M + T - 1) // T
        x = np.empty(T * KC)
        lx = np.empty(T * KC)
        yv = np.empty(T * KC)
        ly = np.empty(T * KC)
        acc = np.empty(T * T)
        one_chunk = K <= KC
        filled = -1
        for t in range(lo, hi):
            ti = t // n_tj
            i0 = ti * T
            ni = min(T, N - i0)
            j0 = (t % n_tj) * T
            nj = min(T, M - j0)
            acc[:] = 0.0
            for c0 in range(0, K, KC):
                kc = min(KC, K - c0)
                if not (one_chunk and ti == filled):
                    for i in range(ni):
                        fill(P, i0 + i, c0, kc, eps, dP[i0 + i], x, i * KC, lx)
                    filled = ti
                for j in range(nj):
                    fill(Q, j0 + j, c0, kc, eps, dQ[j0 + j], yv, j * KC, ly)
                for i in range(ni):
                    for j in range(nj):
                        acc[i * T + j] = add_pair(x, lx, ly, i * KC, j * KC, kc,
                                                  acc[i * T + j])
            for i in range(ni):
                for j in range(nj):
                    total = acc[i * T + j]
                    if total < 0.0:      # rounding of nearly equal rows; NaN passes
                        total = 0.0
                    out[i0 + i, j0 + j] = total / log_base

    def serial(P, Q, out, dP, dQ, eps, log_base, T, KC, n_tiles, n_chunks):
        tiles(P, Q, out, dP, dQ, eps, log_base, T, KC, 0, n_tiles)

    def parallel(P, Q, out, dP, dQ, eps, log_base, T, KC, n_tiles, n_chunks):
        for c in prange(n_chunks):
            tiles(P, Q, out, dP, dQ, eps, log_base, T, KC, c * n_tiles // n_chunks,
                  (c + 1) * n_tiles // n_chunks)

    return numba, {"serial": serial, "parallel": parallel}


def _kernel(variant, dtype):
    key = (variant, dtype)
    fn = _compiled.get(key)
    if fn is None:
        with _build_lock:
            fn = _compiled.get(key)
            if fn is None:
                numba, drivers = _drivers()
                t = numba.types
                fl = t.float64 if dtype == "float64" else t.float32
                x = t.Array(fl, 2, "A", readonly=True)
                d = t.Array(t.float64, 1, "C", readonly=True)
                sig = t.void(x, x, t.Array(fl, 2, "C"), d, d, t.float64, t.float64, t.intp,
                             t.intp, t.intp, t.intp)
                fn = numba.njit(sig, parallel=variant == "parallel", nogil=True,
                                error_model="numpy")(drivers[variant])
                _compiled[key] = fn
    return fn


def _readonly(a):
    """A read-only view, so every call matches the one compiled signature."""
    v = a.view()
    v.flags.writeable = False
    return v


def pairwise_kl_matrix(P, Q, out, dP, dQ, eps, log_base, n_threads):
    """out[i, j] = sum_k x log(x / y) / log_base, x = (P[i] + eps) / dP[i],
    y = (Q[j] + eps) / dQ[j], from one log per row (clamped at 0)."""
    N, K = P.shape
    M = Q.shape[0]
    if N == 0 or M == 0 or K == 0:
        return
    if Q.shape[1] != K or out.shape != (N, M) or dP.shape != (N,) or dQ.shape != (M,):
        raise ValueError("pairwise_kl_matrix: shapes of P, Q, out, dP and dQ do not match")
    T, KC = tile_shape(K)
    n_tiles = ((N + T - 1) // T) * ((M + T - 1) // T)
    n_chunks = max(1, min(int(n_threads), n_tiles))
    dtype = _dtype_name(P)
    args = (_readonly(P), _readonly(Q), out, _readonly(np.ascontiguousarray(dP, np.float64)),
            _readonly(np.ascontiguousarray(dQ, np.float64)), float(eps), float(log_base),
            T, KC, n_tiles, n_chunks)
    if n_chunks == 1:
        _kernel("serial", dtype)(*args)
    else:
        _call_parallel(_kernel("parallel", dtype), args, n_chunks)
