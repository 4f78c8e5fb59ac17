"""Pairwise KL kernel of kl_fast, Numba backend.

A mirror of ``src/pairwise.pyx`` and ``src/kl_pairwise.h`` (read
their notes): the same tiles, chunks, per-row logs (``vlog``, the twin of
``kl_vlog``), the same term ``x (log x - log y)`` and the same summation
order -- blocks of ``PW_BLOCK`` categories, element k to lane k % 8, lanes
combined by the fixed tree, block sums added to the pair's total in order --
so both backends return the same bits.  What differs is the loop nest: the
Q logs of a tile are stored transposed and the innermost loop runs over the
tile's Q rows (one lane of every pair at once), a plain elementwise loop
that LLVM vectorizes without the SLP vectorizer (which Numba leaves off).
Compiled lazily (first call) for one signature per dtype, through numba's
disk cache (``_numba.cache``), with a serial and a parallel variant, like
``_numba.rows``; the parallel variant runs under its thread-count and
workqueue-lock wrapper.
"""

import numba
import numpy as np

from . import kl_math as m
from .cache import compile_kernel, register_source
from .rows import call_parallel, compile_once, dtype_name

register_source(__file__)
register_source(m.__file__)

__all__ = ["pairwise_kl_matrix", "tile_shape", "compiled"]

PW_BLOCK = 1024        # kl_pairwise.h's KL_PW_BLOCK
_MAX_CHUNK = 4096
_TILE_BUDGET = 16384
_MIN_TILE, _MAX_TILE = 16, 64



def tile_shape(n_cat):
    """(T, KC): tile rows and chunk length, as the Cython kernel picks them."""
    kc = n_cat if n_cat <= _MAX_CHUNK else _MAX_CHUNK
    return max(_MIN_TILE, min(_MAX_TILE, _TILE_BUDGET // kc)), kc


# -- compiled code (module level, so that numba caches it on disk) ---------------------

inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
prange = numba.prange
block = PW_BLOCK


@inline
def fill(src, row, c0, n, eps, d, v, vo, lv):
    """v[vo:vo+n] = (src[row, c0:c0+n] + eps) / d as float64; lv = their logs."""
    for k in range(n):
        v[vo + k] = (np.float64(src[row, c0 + k]) + eps) / d
    for k in range(n):
        lv[vo + k] = m.vlog(v[vo + k])


@inline
def fill_logs_t(src, j0, nj, c0, n, eps, dQ, yv, lyt):
    """lyt[k, j] = log((src[j0 + j, c0 + k] + eps) / dQ[j0 + j]): the Q logs of a
    tile, transposed so that the pair loop below runs over contiguous Q rows."""
    for j in range(nj):
        d = dQ[j0 + j]
        for k in range(n):
            yv[k] = (np.float64(src[j0 + j, c0 + k]) + eps) / d
        for k in range(n):
            lyt[k, j] = m.vlog(yv[k])


@inline
def add_row(x, lx, xo, lyt, n, nj, lanes, total):
    """total[j] += row x's KL terms against Q row j of the tile, for every j at once.

    The order of kl_pairwise.h: per block, element k to lane (k - b) % 8, the
    lanes combined by the fixed tree, added to the total.  A term with x <= 0
    (or NaN) is 0 there; here it is skipped, which gives the same bits
    (a lane starts at +0.0 and is never -0.0, so adding +0.0 changes nothing).
    The loops over j are plain elementwise loops that LLVM vectorizes."""
    for b in range(0, n, block):
        end = min(n, b + block)
        lanes[:, :nj] = 0.0
        for k in range(b, end):
            xv = x[xo + k]
            if xv > 0.0:
                lv = lx[xo + k]
                lane = (k - b) % 8
                for j in range(nj):
                    lanes[lane, j] += xv * (lv - lyt[k, j])
        for j in range(nj):
            total[j] += (((lanes[0, j] + lanes[1, j]) + (lanes[2, j] + lanes[3, j]))
                         + ((lanes[4, j] + lanes[5, j]) + (lanes[6, j] + lanes[7, j])))


@inline
def tiles(P, Q, out, dP, dQ, eps, log_base, T, KC, lo, hi):
    N, K = P.shape
    M = Q.shape[0]
    n_tj = (M + T - 1) // T
    x = np.empty(T * KC)
    lx = np.empty(T * KC)
    yv = np.empty(KC)
    lyt = np.empty((KC, T))
    lanes = np.empty((8, T))
    acc = np.empty((T, T))
    one_chunk = K <= KC
    filled = -1
    for t in range(lo, hi):
        ti = t // n_tj
        i0 = ti * T
        ni = min(T, N - i0)
        j0 = (t % n_tj) * T
        nj = min(T, M - j0)
        acc[:, :] = 0.0
        for c0 in range(0, K, KC):
            kc = min(KC, K - c0)
            if not (one_chunk and ti == filled):
                for i in range(ni):
                    fill(P, i0 + i, c0, kc, eps, dP[i0 + i], x, i * KC, lx)
                filled = ti
            fill_logs_t(Q, j0, nj, c0, kc, eps, dQ, yv, lyt)
            for i in range(ni):
                add_row(x, lx, i * KC, lyt, kc, nj, lanes, acc[i])
        for i in range(ni):
            for j in range(nj):
                total = acc[i, j]
                if total < 0.0:      # rounding of nearly equal rows; NaN passes
                    total = 0.0
                out[i0 + i, j0 + j] = total / log_base


def serial(P, Q, out, dP, dQ, eps, log_base, T, KC, n_tiles, n_chunks):
    tiles(P, Q, out, dP, dQ, eps, log_base, T, KC, 0, n_tiles)


def parallel(P, Q, out, dP, dQ, eps, log_base, T, KC, n_tiles, n_chunks):
    for c in prange(n_chunks):
        tiles(P, Q, out, dP, dQ, eps, log_base, T, KC, c * n_tiles // n_chunks,
              (c + 1) * n_tiles // n_chunks)


_DRIVERS = {"serial": serial, "parallel": parallel}


def _kernel(variant, dtype):
    def build():
        t = numba.types
        fl = t.float64 if dtype == "float64" else t.float32
        x = t.Array(fl, 2, "A", readonly=True)
        d = t.Array(t.float64, 1, "C", readonly=True)
        sig = t.void(x, x, t.Array(fl, 2, "C"), d, d, t.float64, t.float64, t.intp,
                     t.intp, t.intp, t.intp)
        return compile_kernel(_DRIVERS[variant], sig, parallel=variant == "parallel")

    return compile_once((__name__, variant, dtype), build)


def compiled(variant, dtype):
    """The compiled driver ("serial" or "parallel"), as a first call would get it."""
    return _kernel(variant, dtype)


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
    dtype = dtype_name(P)
    args = (_readonly(P), _readonly(Q), out, _readonly(np.ascontiguousarray(dP, np.float64)),
            _readonly(np.ascontiguousarray(dQ, np.float64)), float(eps), float(log_base),
            T, KC, n_tiles, n_chunks)
    if n_chunks == 1:
        _kernel("serial", dtype)(*args)
    else:
        call_parallel(_kernel("parallel", dtype), args, n_chunks)
