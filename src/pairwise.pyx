# cython: freethreading_compatible = True
"""Pairwise KL kernel of kl_fast, Cython backend: D[i, j] = KL(P_i || Q_j).

Design notes
------------
a) Never N*M*K: the output is cut into tiles of ``T x T`` (P rows x Q rows).
   For a tile, the P rows (as doubles, transformed if asked) and their logs
   and the logs of the Q rows go into small per-thread buffers, computed once
   per tile (the P part once per run of tiles sharing it), and every pair
   then costs one subtract, multiply, select and add per category
   (``kl_pairwise.h``).  Rows longer than ``KC`` are fed in chunks of ``KC``
   categories, so the buffers stay O(T * KC) whatever K is.
b) Determinism: each pair is summed in the fixed order of kl_pairwise.h
   (blocks, lanes, tree), independent of the tile, chunk or thread that
   computes it -> bit-identical for any thread count, and equal to the Numba
   mirror (kl_fast/_numba/pairwise.py) bit for bit.
c) Validation is not here: the API checks each input row once (the entropy
   kernel's report) before this runs, so nothing is checked per pair.
d) The transform x -> (x + eps) / d (eps smoothing and normalize) takes the
   per-row divisors ``dP``/``dQ`` from the API (1.0 and eps = 0 otherwise,
   which leaves x unchanged).
"""

from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from kl_common cimport floating

cdef extern from "kl_pairwise.h" nogil:
    int KL_PW_BLOCK
    void kl_pw_logs(const double* x, double* lx, Py_ssize_t n)
    void kl_pw_rows4(const double* x, const double* lx, const double* l0, const double* l1,
                     const double* l2, const double* l3, Py_ssize_t n, double* t)
    void kl_pw_rows1(const double* x, const double* lx, const double* l0, Py_ssize_t n,
                     double* t)


cdef enum:
    MAX_CHUNK = 4096      # categories per chunk (a multiple of KL_PW_BLOCK)
    TILE_BUDGET = 16384   # T * chunk doubles per buffer, about 128 KiB
    MIN_TILE = 16
    MAX_TILE = 64


def tile_shape(Py_ssize_t n_cat):
    """(T, KC): tile rows and chunk length for rows of `n_cat` categories (both
    backends use the same, though only the order within a pair matters)."""
    cdef Py_ssize_t kc = n_cat if n_cat <= MAX_CHUNK else MAX_CHUNK
    cdef Py_ssize_t t = TILE_BUDGET // kc
    t = MIN_TILE if t < MIN_TILE else (MAX_TILE if t > MAX_TILE else t)
    return t, kc


cdef inline const floating* _row_ptr(const floating[:, :] x, Py_ssize_t i) noexcept nogil:
    return <const floating*> (<const char*> &x[0, 0] + i * x.strides[0])


cdef inline void _fill(const floating* x, Py_ssize_t sx, Py_ssize_t n, double eps, double d,
                       double* v) noexcept nogil:
    """v[k] = (x[k] + eps) / d as double (exact copy for eps = 0, d = 1)."""
    cdef Py_ssize_t k
    for k in range(n):
        v[k] = (<double> x[k * sx] + eps) / d


cdef int _tiles(const floating[:, :] P, const floating[:, :] Q, floating[:, ::1] out,
                const double[::1] dP, const double[::1] dQ, double eps, double log_base,
                Py_ssize_t T, Py_ssize_t KC, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    """Tiles lo..hi (row-major over the tile grid) with this thread's own buffers;
    1 if the buffers could not be allocated, else 0."""
    cdef Py_ssize_t N = P.shape[0], M = Q.shape[0], K = P.shape[1]
    cdef Py_ssize_t sp = P.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t sq = Q.strides[1] // <Py_ssize_t> sizeof(floating)
    cdef Py_ssize_t n_tj = (M + T - 1) // T
    cdef Py_ssize_t t, ti, i0, ni, j0, nj, c0, kc, i, j, filled = -1
    cdef bint one_chunk = K <= KC
    cdef double total
    cdef double* x = <double*> malloc((3 * T * KC + T * T) * sizeof(double))
    cdef double* lx
    cdef double* ly
    cdef double* acc
    if x == NULL:
        return 1
    lx = x + T * KC
    ly = lx + T * KC
    acc = ly + T * KC
    for t in range(lo, hi):
        ti = t // n_tj
        i0 = ti * T
        ni = min(T, N - i0)
        j0 = (t % n_tj) * T
        nj = min(T, M - j0)
        for i in range(ni * T):
            acc[i] = 0.0
        c0 = 0
        while c0 < K:
            kc = min(KC, K - c0)
            if not (one_chunk and ti == filled):
                for i in range(ni):
                    _fill(_row_ptr(P, i0 + i) + c0 * sp, sp, kc, eps, dP[i0 + i], x + i * KC)
                    kl_pw_logs(x + i * KC, lx + i * KC, kc)
                filled = ti
            for j in range(nj):
                _fill(_row_ptr(Q, j0 + j) + c0 * sq, sq, kc, eps, dQ[j0 + j], ly + j * KC)
                kl_pw_logs(ly + j * KC, ly + j * KC, kc)
            for i in range(ni):
                j = 0
                while j + 4 <= nj:
                    kl_pw_rows4(x + i * KC, lx + i * KC, ly + j * KC, ly + (j + 1) * KC,
                                ly + (j + 2) * KC, ly + (j + 3) * KC, kc, acc + i * T + j)
                    j += 4
                while j < nj:
                    kl_pw_rows1(x + i * KC, lx + i * KC, ly + j * KC, kc, acc + i * T + j)
                    j += 1
            c0 += KC
        for i in range(ni):
            for j in range(nj):
                total = acc[i * T + j]
                if total < 0.0:      # rounding of nearly equal rows; NaN passes
                    total = 0.0
                out[i0 + i, j0 + j] = <floating> (total / log_base)
    free(x)
    return 0


def pairwise_kl_matrix(const floating[:, :] P, const floating[:, :] Q, floating[:, ::1] out,
                       const double[::1] dP, const double[::1] dQ, double eps,
                       double log_base, int n_threads):
    """out[i, j] = sum_k x log(x / y) / log_base, x = (P[i] + eps) / dP[i],
    y = (Q[j] + eps) / dQ[j], from one log per row (clamped at 0)."""
    cdef Py_ssize_t N = P.shape[0], M = Q.shape[0], K = P.shape[1]
    cdef Py_ssize_t T, KC, n_tiles, n_chunks, c
    cdef int failed = 0
    if N == 0 or M == 0 or K == 0:
        return
    if Q.shape[1] != K or out.shape[0] != N or out.shape[1] != M:
        raise ValueError("pairwise_kl_matrix: shapes of P, Q and out do not match")
    if dP.shape[0] != N or dQ.shape[0] != M:
        raise ValueError("pairwise_kl_matrix: dP and dQ must have one entry per row")
    T, KC = tile_shape(K)
    n_tiles = ((N + T - 1) // T) * ((M + T - 1) // T)
    n_chunks = max(1, min(n_threads, n_tiles))
    with nogil:
        if n_chunks == 1:
            failed = _tiles(P, Q, out, dP, dQ, eps, log_base, T, KC, 0, n_tiles)
        else:
            for c in prange(n_chunks, schedule="static", num_threads=n_chunks):
                failed += _tiles(P, Q, out, dP, dQ, eps, log_base, T, KC,
                                 c * n_tiles // n_chunks, (c + 1) * n_tiles // n_chunks)
    if failed:
        raise MemoryError("pairwise_kl_matrix: could not allocate the tile buffers")
