"""Row kernels of kl_fast, Numba backend.

A mirror of ``src/_kernels_cython.pyx`` (read its design notes): same entry
points and positional arguments, same ``report`` layout, same blocks, lanes
and summation order, so both backends return the same bits.  Differences
are only in how that is spelled in Numba:

* Compilation is lazy.  Importing this module imports neither numba nor the
  scalar math; each (kernel, dtype, serial/parallel) variant is compiled on
  first use for one signature (2-D readonly 'A' arrays), so every layout,
  stride pattern and writeability of the inputs reuses the same machine code.
* The LANES accumulators are eight tuple elements, not a stack array (Numba
  has none): LLVM keeps them in registers.  A ragged tail lane is skipped,
  as in ``acc[j % LANES]``.
* Numba's thread count is per calling thread, so it is set around each call;
  the ``workqueue`` threading layer aborts on concurrent use, so parallel
  calls are serialized by a lock whenever that layer is (or may be) active.
"""

import contextlib
import functools
import sys
import threading

import numpy as np

BLOCK_SIZE = 8192
REPORT_WIDTH = 6
LANES = 8

_Q_KL, _Q_CE, _Q_H = 0, 1, 2
_build_lock = threading.Lock()
_workqueue_lock = threading.Lock()
_compiled = {}


@functools.cache
def _impl():
    """Import numba and define the generic (untyped, not yet compiled) helpers."""
    import numba

    from . import _numba_math as m

    njit = numba.njit(nogil=True, error_model="numpy")  # x / 0 -> inf/NaN, as in C
    block = BLOCK_SIZE
    inf = float("inf")

    @njit
    def is_bad(x):
        # negative, NaN or +inf: not a probability (or count)
        return 1.0 if (not (x >= 0.0) or x == inf) else 0.0

    @njit
    def entr2(x, y):
        return m.entr(x)

    @njit
    def tree8(s, k):
        return (((s[0][k] + s[1][k]) + (s[2][k] + s[3][k]))
                + ((s[4][k] + s[5][k]) + (s[6][k] + s[7][k])))

    def make_lanes(step):
        """Sum ``step`` over ``m`` elements from ``start`` in LANES lanes."""

        @njit
        def group(s, a, j, r):
            # lanes l >= r (the ragged tail of a block) keep their state
            return (step(s[0], a, j),
                    step(s[1], a, j + 1) if r > 1 else s[1],
                    step(s[2], a, j + 2) if r > 2 else s[2],
                    step(s[3], a, j + 3) if r > 3 else s[3],
                    step(s[4], a, j + 4) if r > 4 else s[4],
                    step(s[5], a, j + 5) if r > 5 else s[5],
                    step(s[6], a, j + 6) if r > 6 else s[6],
                    step(s[7], a, j + 7) if r > 7 else s[7])

        @njit
        def lanes(a, start, m, z):
            s = (z, z, z, z, z, z, z, z)
            full = m - m % LANES
            for j in range(start, start + full, LANES):
                s = group(s, a, j, LANES)
            if full < m:
                s = group(s, a, start + full, m - full)
            return s

        return lanes

    def make_row_kind(kind):
        """The _block/_row/_long_row helpers of one quantity (kind is frozen)."""
        has_q = kind != _Q_H
        term = (m.rel_entr, m.neg_xlogy, entr2)[kind]

        @njit
        def step(s, a, j):
            # a = (p, q, i, want_terms, want_sums, transform, eps, dp, dq)
            p, q, i, want_terms, want_sums, transform, eps, dp, dq = a
            t, sp, sq, nbad = s
            x = float(p[i, j])
            y = float(q[i, j]) if has_q else 0.0
            if want_sums:
                sp += x
                nbad += is_bad(x)
                if has_q:
                    sq += y
                    nbad += is_bad(y)
            if want_terms:
                if transform:
                    x = (x + eps) / dp
                    if has_q:
                        y = (y + eps) / dq
                t += term(x, y)
            return (t, sp, sq, nbad)

        lanes = make_lanes(step)

        @njit
        def blk(p, q, i, start, m_, want_terms, want_sums, transform, eps, dp, dq):
            """(terms, sum_p, sum_q, n_bad) of one block of row i."""
            s = lanes((p, q, i, want_terms, want_sums, transform, eps, dp, dq),
                      start, m_, (0.0, 0.0, 0.0, 0.0))
            return tree8(s, 0), tree8(s, 1), tree8(s, 2), int(tree8(s, 3))

        @njit
        def first_bad(x, i, n):
            for j in range(n):
                if is_bad(float(x[i, j])):
                    return j
            return -1

        @njit
        def finish(p, q, i, n, check, tol, log_base, rep, c, total, sum_p, sum_q, n_bad):
            """Record bad values or a bad sum in rep[c]; clamp and scale the total."""
            if check > 0 and n_bad > 0:
                rep[c, 0] += n_bad
                if rep[c, 1] < 0:
                    col = first_bad(p, i, n)
                    if col >= 0:
                        rep[c, 1], rep[c, 2], rep[c, 3] = i, col, 0
                    elif has_q:
                        col = first_bad(q, i, n)
                        if col >= 0:
                            rep[c, 1], rep[c, 2], rep[c, 3] = i, col, 1
            elif check == 2 and rep[c, 4] < 0:
                if abs(sum_p - 1.0) > tol:
                    rep[c, 4], rep[c, 5] = i, 0
                elif has_q and abs(sum_q - 1.0) > tol:
                    rep[c, 4], rep[c, 5] = i, 1
            # divergences are never negative (rounding can dip below 0); NaN passes
            if kind == _Q_KL and total < 0.0:
                total = 0.0
            return total / log_base

        @njit
        def row(p, q, i, check, tol, eps, transform, log_base, rep, c):
            """One whole row, serially, block by block (the reference order)."""
            n = p.shape[1]
            n_bad = 0
            total = sum_p = sum_q = 0.0
            dp = dq = 1.0
            fused = check > 0 and not transform
            if transform:
                for start in range(0, n, block):
                    r = blk(p, q, i, start, min(block, n - start), False, True, False,
                            0.0, 1.0, 1.0)
                    sum_p += r[1]
                    sum_q += r[2]
                    n_bad += r[3]
                dp = sum_p + n * eps
                dq = sum_q + n * eps
            for start in range(0, n, block):
                r = blk(p, q, i, start, min(block, n - start), True, fused, transform,
                        eps, dp, dq)
                total += r[0]
                if fused:
                    sum_p += r[1]
                    sum_q += r[2]
                    n_bad += r[3]
            return finish(p, q, i, n, check, tol, log_base, rep, c, total, sum_p, sum_q, n_bad)

        def serial(p, q, out, rep, check, tol, eps, transform, log_base):
            for i in range(p.shape[0]):
                out[i] = row(p, q, i, check, tol, eps, transform, log_base, rep, 0)

        def parallel(p, q, out, rep, check, tol, eps, transform, log_base):
            n_rows = p.shape[0]
            n_chunks = rep.shape[0]
            for c in numba.prange(n_chunks):
                for i in range(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks):
                    out[i] = row(p, q, i, check, tol, eps, transform, log_base, rep, c)

        def long_rows(p, q, out, rep, check, tol, eps, transform, log_base):
            # Few long rows: the blocks of each row in parallel into `parts`,
            # then combined serially in block order (the additions of `row`).
            n = p.shape[1]
            n_blocks = (n + block - 1) // block
            parts = np.empty((n_blocks, 4))
            fused = check > 0 and not transform
            for i in range(p.shape[0]):
                n_bad = 0
                total = sum_p = sum_q = 0.0
                dp = dq = 1.0
                if transform:
                    for b in numba.prange(n_blocks):
                        r = blk(p, q, i, b * block, min(block, n - b * block), False, True,
                                False, 0.0, 1.0, 1.0)
                        parts[b, 1], parts[b, 2], parts[b, 3] = r[1], r[2], r[3]
                    for b in range(n_blocks):
                        sum_p += parts[b, 1]
                        sum_q += parts[b, 2]
                        n_bad += int(parts[b, 3])
                    dp = sum_p + n * eps
                    dq = sum_q + n * eps
                for b in numba.prange(n_blocks):
                    r = blk(p, q, i, b * block, min(block, n - b * block), True, fused,
                            transform, eps, dp, dq)
                    parts[b, 0], parts[b, 1], parts[b, 2], parts[b, 3] = r
                for b in range(n_blocks):
                    total += parts[b, 0]
                    if fused:
                        sum_p += parts[b, 1]
                        sum_q += parts[b, 2]
                        n_bad += int(parts[b, 3])
                out[i] = finish(p, q, i, n, check, tol, log_base, rep, 0, total, sum_p,
                                sum_q, n_bad)

        return {"serial": serial, "parallel": parallel, "long": long_rows, "block": blk,
                "first_bad": first_bad}

    kinds = {k: make_row_kind(k) for k in (_Q_KL, _Q_CE, _Q_H)}
    h_block, h_first_bad = kinds[_Q_H]["block"], kinds[_Q_H]["first_bad"]

    @njit
    def label_row(labels, i, q, n, check, eps, transform, ignore_index, has_ignore,
                  log_base, rep, c):
        lab = labels[i]
        n_bad = 0
        total = 0.0
        if has_ignore and lab == ignore_index:
            return np.nan
        if lab < 0 or lab >= n:
            # out of range: always reported, whatever `check` says
            rep[c, 0] += 1
            if rep[c, 1] < 0:
                rep[c, 1], rep[c, 2], rep[c, 3] = i, -1, 0
            return np.nan
        value = float(q[i, lab])
        if transform:
            for start in range(0, n, block):
                r = h_block(q, q, i, start, min(block, n - start), False, True, False,
                            0.0, 1.0, 1.0)
                total += r[1]
                n_bad += r[3]
            value = (value + eps) / (total + n * eps)
        elif check > 0:
            n_bad = int(is_bad(value) > 0.0 or value > 1.0)
        if check > 0 and n_bad > 0:
            rep[c, 0] += n_bad
            if rep[c, 1] < 0:
                rep[c, 1] = i
                rep[c, 2] = h_first_bad(q, i, n) if transform else lab
                rep[c, 3] = 1
        return m.neg_xlogy(1.0, value) / log_base

    def label_serial(labels, q, out, rep, check, eps, transform, ignore_index, has_ignore,
                     log_base):
        for i in range(q.shape[0]):
            out[i] = label_row(labels, i, q, q.shape[1], check, eps, transform, ignore_index,
                               has_ignore, log_base, rep, 0)

    def label_parallel(labels, q, out, rep, check, eps, transform, ignore_index, has_ignore,
                       log_base):
        n_rows = q.shape[0]
        n_chunks = rep.shape[0]
        for c in numba.prange(n_chunks):
            for i in range(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks):
                out[i] = label_row(labels, i, q, q.shape[1], check, eps, transform,
                                   ignore_index, has_ignore, log_base, rep, c)

    @njit
    def bad_scale(scale, s):
        if scale == m.SCALE_VAR or scale == m.SCALE_STD:
            return not (s > 0.0) or s == inf
        return s != s or abs(s) == inf

    @njit
    def bad_mean(x):
        return x != x or abs(x) == inf

    @njit
    def gauss_step(s, a, j):
        # a = (m1, s1, m2, s2, i, prior, check, scale); lane state (acc, n_bad)
        m1, s1, m2, s2, i, prior, check, scale = a
        acc, nbad = s
        u = v = 0.0
        x = float(m1[i, j])
        y = float(s1[i, j])
        if prior:
            acc += m.gauss_prior_term2(scale, x, y)
        else:
            u = float(m2[i, j])
            v = float(s2[i, j])
            acc += m.gauss_term2(scale, x, y, u, v)
        if check > 0:
            nbad += float(bad_mean(x)) + float(bad_scale(scale, y))
            if not prior:
                nbad += float(bad_mean(u)) + float(bad_scale(scale, v))
        return (acc, nbad)

    gauss_lanes = make_lanes(gauss_step)

    @njit
    def gauss_row(m1, s1, m2, s2, i, prior, check, scale, log_base, rep, c):
        n = m1.shape[1]
        s = gauss_lanes((m1, s1, m2, s2, i, prior, check, scale), 0, n, (0.0, 0.0))
        n_bad = int(tree8(s, 1))
        if n_bad > 0:
            rep[c, 0] += n_bad
            if rep[c, 1] < 0:
                for j in range(n):
                    k = -1
                    if bad_mean(float(m1[i, j])):
                        k = 0
                    elif bad_scale(scale, float(s1[i, j])):
                        k = 1
                    elif not prior and bad_mean(float(m2[i, j])):
                        k = 2
                    elif not prior and bad_scale(scale, float(s2[i, j])):
                        k = 3
                    if k >= 0:
                        rep[c, 1], rep[c, 2], rep[c, 3] = i, j, k
                        break
        total = 0.5 * tree8(s, 0)
        if total < 0.0:
            total = 0.0
        return total / log_base

    def gauss_serial(m1, s1, m2, s2, prior, out, rep, check, scale, log_base):
        for i in range(m1.shape[0]):
            out[i] = gauss_row(m1, s1, m2, s2, i, prior, check, scale, log_base, rep, 0)

    def gauss_parallel(m1, s1, m2, s2, prior, out, rep, check, scale, log_base):
        n_rows = m1.shape[0]
        n_chunks = rep.shape[0]
        for c in numba.prange(n_chunks):
            for i in range(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks):
                out[i] = gauss_row(m1, s1, m2, s2, i, prior, check, scale, log_base, rep, c)

    drivers = {("label", "serial"): label_serial, ("label", "parallel"): label_parallel,
               ("gauss", "serial"): gauss_serial, ("gauss", "parallel"): gauss_parallel}
    for k, fns in kinds.items():
        for variant in ("serial", "parallel", "long"):
            drivers[(k, variant)] = fns[variant]
    return numba, drivers


def _signature(numba, family, dtype):
    t = numba.types
    fl = t.float64 if dtype == "float64" else t.float32
    x = t.Array(fl, 2, "A", readonly=True)
    out = t.Array(fl, 1, "C")
    rep = t.Array(t.int64, 2, "C")
    i8, f8, b1 = t.int64, t.float64, t.boolean
    if family == "label":
        labels = t.Array(t.int64, 1, "A", readonly=True)
        return t.void(labels, x, out, rep, i8, f8, b1, i8, b1, f8)
    if family == "gauss":
        return t.void(x, x, x, x, b1, out, rep, i8, i8, f8)
    return t.void(x, x, out, rep, i8, f8, f8, b1, f8)


def _kernel(family, variant, dtype):
    """The compiled driver for (family, variant, dtype), compiled on first request."""
    key = (family, variant, dtype)
    fn = _compiled.get(key)
    if fn is None:
        with _build_lock:
            fn = _compiled.get(key)
            if fn is None:
                numba, drivers = _impl()
                parallel = variant != "serial"
                fn = numba.njit(_signature(numba, family, dtype), parallel=parallel,
                                nogil=True)(drivers[(family, variant)])
                _compiled[key] = fn
    return fn


def _dtype_name(x):
    name = x.dtype.name
    if name not in ("float32", "float64"):
        raise TypeError(f"numba kernels take float32 or float64 arrays, not {name}")
    return name


def _call_parallel(fn, args, n_threads):
    """Run a parallel driver on min(n_threads, NUMBA_NUM_THREADS) numba threads."""
    import numba

    old = numba.get_num_threads()  # also starts numba's threading layer
    try:
        layer = numba.threading_layer()
    except ValueError:  # not started: assume the worst
        layer = "workqueue"
    lock = _workqueue_lock if layer == "workqueue" else contextlib.nullcontext()
    with lock:
        numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
        try:
            fn(*args)
        finally:
            numba.set_num_threads(old)


def _rows(kind, p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    n_rows, n = p.shape
    if n_rows == 0 or n == 0:
        return
    dtype = _dtype_name(p)
    args = (p, q, out, report, int(check), float(tol), float(eps), bool(transform),
            float(log_base))
    if n_rows < n_threads and n > BLOCK_SIZE:
        _call_parallel(_kernel(kind, "long", dtype), args, n_threads)
    elif n_threads == 1 or report.shape[0] == 1:
        _kernel(kind, "serial", dtype)(*args)
    else:
        _call_parallel(_kernel(kind, "parallel", dtype), args, n_threads)


def kl_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j rel_entr(p[i, j], q[i, j]) / log_base, clamped at 0."""
    _rows(_Q_KL, p, q, out, report, check, tol, eps, transform, log_base, n_threads)


def cross_entropy_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = -sum_j xlogy(p[i, j], q[i, j]) / log_base."""
    _rows(_Q_CE, p, q, out, report, check, tol, eps, transform, log_base, n_threads)


def entropy_rows(p, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j entr(p[i, j]) / log_base."""
    _rows(_Q_H, p, p, out, report, check, tol, eps, transform, log_base, n_threads)


def cross_entropy_label_rows(labels, q, out, report, check, eps, transform, ignore_index,
                             has_ignore, log_base, n_threads):
    """out[i] = -log q[i, labels[i]] / log_base; NaN where labels[i] == ignore_index.

    Labels out of [0, n_cat) are counted in ``report`` (arg 0) even when
    ``check == 0``; without ``transform`` only the picked value of q is read.
    """
    n_rows, n = q.shape
    if n_rows == 0 or n == 0:
        return
    args = (labels, q, out, report, int(check), float(eps), bool(transform), int(ignore_index),
            bool(has_ignore), float(log_base))
    if n_threads == 1 or report.shape[0] == 1:
        _kernel("label", "serial", _dtype_name(q))(*args)
    else:
        _call_parallel(_kernel("label", "parallel", _dtype_name(q)), args, n_threads)


def _gauss(mu1, s1, mu2, s2, prior, out, report, check, scale, log_base, n_threads):
    n_rows, n = mu1.shape
    if n_rows == 0 or n == 0:
        return
    args = (mu1, s1, mu2, s2, prior, out, report, int(check), int(scale), float(log_base))
    if n_threads == 1 or report.shape[0] == 1:
        _kernel("gauss", "serial", _dtype_name(mu1))(*args)
    else:
        _call_parallel(_kernel("gauss", "parallel", _dtype_name(mu1)), args, n_threads)


def gaussian_kl_rows(mu1, s1, mu2, s2, out, report, check, scale, log_base, n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(mu2, s2))[i, j] / log_base, s in `scale`."""
    _gauss(mu1, s1, mu2, s2, False, out, report, check, scale, log_base, n_threads)


def gaussian_kl_prior_rows(mu1, s1, out, report, check, scale, log_base, n_threads):
    """out[i] = sum_j KL(N(mu1, s1) || N(0, 1))[i, j] / log_base, s in `scale`."""
    _gauss(mu1, s1, mu1, s1, True, out, report, check, scale, log_base, n_threads)


def threading_layer():
    """Name of numba's active threading layer, or None before it has started."""
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def warmup(dtypes=("float32", "float64")):
    """Compile every kernel variant for ``dtypes`` now instead of on first use."""
    families = [(k, v) for k in (_Q_KL, _Q_CE, _Q_H) for v in ("serial", "parallel", "long")]
    families += [(f, v) for f in ("label", "gauss") for v in ("serial", "parallel")]
    for dtype in dtypes:
        for family, variant in families:
            _kernel(family, variant, str(dtype))
