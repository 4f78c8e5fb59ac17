"""Row kernels of kl_fast, Numba backend.

A mirror of ``src/_kernels_cython.pyx`` and the block loops of
``src/kl_blocks.h`` (read their design notes): same entry points and
positional arguments, same ``report`` layout, same blocks, lanes, passes and
summation order, so both backends return the same bits.  What differs is how
that is spelled in Numba:

* Compilation is lazy.  Importing this module imports neither numba nor the
  math; each (kernel, variant, dtype) is compiled on first use for a single
  signature (2-D readonly 'A' arrays), so every layout, stride pattern and
  writeability of the inputs reuses the same machine code.
* A block runs as in kl_blocks.h, in sub-blocks of ``_SUB`` elements: a row
  piece with unit inner stride is viewed in place (``row_view``), any other is
  first copied to a small buffer; one plain loop writes the per-element terms
  to a scratch buffer -- the loop LLVM vectorizes, the math being branch-free
  and force-inlined -- and ``lanes_full`` adds the buffer (and the raw values,
  for the row sums) into the LANES accumulators, element j to lane j % LANES,
  with one <8 x double> add per group: the C lane order exactly.  Counts (bad
  values, odd lanes) are exact integers, gathered wherever it is cheapest.
* The per-block code is force-inlined into the row loop, and the arrays it
  takes are passed ``borrow``-ed (no meminfo): otherwise every call would
  cost atomic reference-count updates, which dominate on short rows.
* Scratch is allocated once per chunk of rows (a few KiB), never per row.
* Numba's thread count belongs to the calling thread, so it is set around each
  call; the ``workqueue`` threading layer aborts on concurrent use, so
  parallel calls are serialized by a lock while that layer is (or may be)
  the active one.
"""

import contextlib
import functools
import sys
import threading

import numpy as np

BLOCK_SIZE = 8192
REPORT_WIDTH = 6
LANES = 8

_Q_KL, _Q_CE, _Q_H, _Q_JS = 0, 1, 2, 3
# what a pass over a block computes (kl_blocks.h's KL_MODE_*)
_TERMS, _TERMS_SUMS, _SUMS, _TERMS_SCALED = 0, 1, 2, 3
_LN2 = 0.6931471805599453
# _LN2 * (1 + 64 eps), as _kernels_cython.pyx: above it a JS total is no rounding
# excess of log 2 but a real value (inf or garbage from invalid input)
_LN2_ROUNDING = 0.6931471805599552
# elements per vectorized sub-block (a multiple of LANES dividing BLOCK_SIZE):
# its scratch stays in L1
_SUB = 1024
_LABEL_CHUNK = 256   # label rows whose picked probabilities are logged in one vector loop

_build_lock = threading.Lock()
_workqueue_lock = threading.Lock()
_compiled = {}


@functools.cache
def _impl():
    """Import numba and the math; return the builder of the (uncompiled) drivers."""
    import numba
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic
    from numba.np.arrayobj import make_array, populate_array

    from . import _numba_math as m

    njit = numba.njit(nogil=True, error_model="numpy")
    inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)
    block, sub = BLOCK_SIZE, _SUB
    prange = numba.prange
    z8 = (0.0,) * LANES

    @intrinsic
    def row_view(typingctx, a, i, start, n):
        """a[i, start:start + n] as a 1-D C-contiguous view, which the loop vectorizer
        needs (it gives up on 'A' arrays); the caller has checked a.strides[1] ==
        a.itemsize.  Borrowed (no meminfo): it must not outlive `a`.  Typed writable
        to share its type with the staging buffers; it is only read."""
        ret = types.Array(a.dtype, 1, "C")

        def codegen(context, builder, sig, args):
            src = make_array(sig.args[0])(context, builder, args[0])
            dst = make_array(ret)(context, builder)
            intp = context.get_value_type(types.intp)
            size = context.get_abi_sizeof(context.get_data_type(ret.dtype))
            itemsize = context.get_constant(types.intp, size)
            offset = builder.add(builder.mul(args[1], builder.extract_value(src.strides, 0)),
                                 builder.mul(args[2], itemsize))
            data = builder.inttoptr(builder.add(builder.ptrtoint(src.data, intp), offset),
                                    src.data.type)
            populate_array(dst, data=data, shape=[args[3]], strides=[itemsize],
                           itemsize=itemsize, meminfo=None)
            return dst._getvalue()

        return ret(a, types.intp, types.intp, types.intp), codegen

    @intrinsic
    def borrow(typingctx, a):
        """`a` without its meminfo: reference counting it is then a no-op (an atomic
        update saved per call that passes it).  Only for arrays the caller owns for
        the whole borrowed use, e.g. the arguments of the calling function."""

        def codegen(context, builder, sig, args):
            ary = make_array(sig.args[0])(context, builder, args[0])
            ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
            ary.parent = cgutils.get_null_value(ary.parent.type)
            return ary._getvalue()

        return a(a), codegen

    def lanes_codegen(count_bad):
        """Codegen of lanes_full / lanes_full_bad: one <8 x double> accumulator
        (and one of bad-value counts) over the full groups of LANES elements."""

        def codegen(context, builder, sig, args):
            data = make_array(sig.args[0])(context, builder, args[0]).data
            vec = ir.VectorType(ir.DoubleType(), LANES)
            src = ir.VectorType(data.type.pointee, LANES)
            i32, intp = ir.IntType(32), args[1].type

            def to_vec(tup):
                v = ir.Constant(vec, ir.Undefined)
                for lane in range(LANES):
                    v = builder.insert_element(v, builder.extract_value(tup, lane), i32(lane))
                return v

            def to_tuple(v):
                tup = ir.Constant(args[2].type, ir.Undefined)
                for lane in range(LANES):
                    tup = builder.insert_value(tup, builder.extract_element(v, i32(lane)), lane)
                return tup

            zero, one = ir.Constant(vec, [0.0] * LANES), ir.Constant(vec, [1.0] * LANES)
            inf = ir.Constant(vec, [float("inf")] * LANES)
            sums = cgutils.alloca_once_value(builder, to_vec(args[2]))
            bads = cgutils.alloca_once_value(builder, to_vec(args[3])) if count_bad else None
            with cgutils.for_range(builder, builder.sdiv(args[1], intp(LANES))) as loop:
                at = builder.gep(data, [builder.mul(loop.index, intp(LANES))])
                x = builder.load(builder.bitcast(at, src.as_pointer()),
                                 align=sig.args[0].dtype.bitwidth // 8)
                if isinstance(data.type.pointee, ir.FloatType):
                    x = builder.fpext(x, vec)          # float32 data: exact widening
                builder.store(builder.fadd(builder.load(sums), x), sums)
                if count_bad:   # kl_is_bad: not (0 <= x < inf), NaN included
                    good = builder.and_(builder.fcmp_ordered(">=", x, zero),
                                        builder.fcmp_ordered("<", x, inf))
                    builder.store(builder.fadd(builder.load(bads),
                                               builder.select(good, zero, one)), bads)
            if not count_bad:
                return to_tuple(builder.load(sums))
            return context.make_tuple(builder, sig.return_type,
                                      [to_tuple(builder.load(sums)), to_tuple(builder.load(bads))])

        return codegen

    @intrinsic
    def lanes_full(typingctx, buf, n, a):
        """The lanes `a` (8 doubles) after buf[j] is added to lane j % LANES for j below
        n - n % LANES: lane-wise IEEE additions, the C lane order exactly, in SIMD
        (Numba leaves LLVM's SLP vectorizer off: eight scalar lanes stay scalar)."""
        return a(buf, types.intp, a), lanes_codegen(False)

    @intrinsic
    def lanes_full_bad(typingctx, buf, n, a, b):
        """lanes_full, and the lanes `b` of bad-value counts (exact small integers)."""
        return types.Tuple((a, a))(buf, types.intp, a, b), lanes_codegen(True)

    @inline
    def tail8(buf, n, a):
        """The lanes `a` after the last n % LANES values of buf[:n] are added, lane 0 up."""
        a0, a1, a2, a3, a4, a5, a6, a7 = a
        full = n - n % LANES
        r = n - full
        if r > 0:
            a0 += buf[full]
        if r > 1:
            a1 += buf[full + 1]
        if r > 2:
            a2 += buf[full + 2]
        if r > 3:
            a3 += buf[full + 3]
        if r > 4:
            a4 += buf[full + 4]
        if r > 5:
            a5 += buf[full + 5]
        if r > 6:
            a6 += buf[full + 6]
        return (a0, a1, a2, a3, a4, a5, a6, a7)

    @inline
    def lanes8(buf, n, a):
        """The lanes `a` after buf[k] is added to lane k % LANES, k < n (kl_blocks.h)."""
        return tail8(buf, n, lanes_full(buf, n, a))

    @inline
    def sums8(buf, n, a, b):
        """lanes8 of buf[:n], and the lanes `b` of its bad-value count (an exact
        integer, so which lane counts what does not matter)."""
        a, b = lanes_full_bad(buf, n, a, b)
        extra = 0.0
        for j in range(n - n % LANES, n):
            extra += m.is_bad(np.float64(buf[j]))
        return tail8(buf, n, a), (b[0] + extra, b[1], b[2], b[3], b[4], b[5], b[6], b[7])

    @inline
    def tree8(a):
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))

    @njit
    def scratch(x, n, n_stage):
        # per-chunk buffers: the per-element terms, n_stage staged input rows
        w = min(sub, n)
        return np.empty(w), np.empty((n_stage, w), x.dtype)

    @inline
    def stage_row(x, i, start, n, buf):
        # a strided row piece copied to a contiguous buffer, for the vectorized loop
        for t in range(n):
            buf[t] = x[i, start + t]

    # -- probability rows: KL, cross-entropy, entropy, JS ---------------------------------

    # quantity -> (vector term, odd-lane flag, exact scalar term), as kl_blocks.h
    terms_of = {_Q_KL: (m.vrel_entr, m.rel_entr_odd, m.rel_entr),
                _Q_CE: (m.vce_term, m.ce_odd, m.neg_xlogy),
                _Q_H: (m.ventr, m.entr_odd, m.entr_exact),
                _Q_JS: (m.vjs_term, m.js_odd, m.js_term)}

    def make_block(kind, mode):
        """kl_block_<kind>(mode, ...): (terms, sum_p, sum_q, n_bad) of one block of row i."""
        term, odd, exact = terms_of[kind]
        one = kind == _Q_H          # entropy reads no q
        want_terms = mode != _SUMS
        want_sums = mode in (_TERMS_SUMS, _SUMS)
        scaled = mode == _TERMS_SCALED

        @inline
        def fill(x, y, n, eps, dp, dq, tt):
            """tt[k] = the terms of n elements; returns the count of odd lanes (an
            exact integer: any order gives the C lanes' result).  The loop LLVM
            vectorizes: the math is branch-free, the flags compile-time constants."""
            n_odd = 0
            for k in range(n):
                xv = np.float64(x[k])   # np.float64: Numba's float() keeps a float32
                yv = 0.0 if one else np.float64(y[k])
                if scaled:
                    xv = (xv + eps) / dp
                    yv = 0.0 if one else (yv + eps) / dq
                tt[k] = term(xv, yv)
                n_odd += int(odd(xv, yv))
            return n_odd

        @inline
        def settle(p, q, i, start, n, eps, dp, dq, work, t, n_odd):
            # a log argument was not a normal double: the exact scalar terms instead
            if not (want_terms and n_odd > 0):
                return t
            a = z8
            for s in range(0, n, sub):
                k = min(sub, n - s)
                for j in range(k):
                    x = np.float64(p[i, start + s + j])
                    y = 0.0 if one else np.float64(q[i, start + s + j])
                    if scaled:
                        x = (x + eps) / dp
                        y = 0.0 if one else (y + eps) / dq
                    work[j] = exact(x, y)
                a = lanes8(work, k, a)
            return tree8(a)

        @inline
        def blk(p, q, i, start, n, eps, dp, dq, work, stage):
            at = ap = aq = bp = bq = z8
            n_odd = 0
            contiguous = p.strides[1] == p.itemsize and q.strides[1] == q.itemsize
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
                    n_odd += fill(x, y, k, eps, dp, dq, work)
                    at = lanes8(work, k, at)
                if want_sums:
                    ap, bp = sums8(x, k, ap, bp)
                    if not one:
                        aq, bq = sums8(y, k, aq, bq)
            t = settle(p, q, i, start, n, eps, dp, dq, work, tree8(at), n_odd)
            return (t, tree8(ap), tree8(aq), tree8(bp) + tree8(bq))

        @njit
        def blk_alone(p, q, i, start, n, eps, dp, dq):
            # one block with its own scratch: a task of the long-row path
            work, stage = scratch(p, n, 2)
            return blk(borrow(p), borrow(q), i, start, n, eps, dp, dq, work, stage)

        @inline
        def run(p, q, i, eps, dp, dq, work, stage):
            # _pass without parts: the blocks of row i in order, their results added
            n = p.shape[1]
            t = sp = sq = nb = 0.0
            for start in range(0, n, block):
                r = blk(p, q, i, start, min(block, n - start), eps, dp, dq, work, stage)
                t += r[0]
                sp += r[1]
                sq += r[2]
                nb += r[3]
            return (t, sp, sq, nb)

        return blk_alone, run

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

    def make_rows(kind):
        one = kind == _Q_H
        (b_terms, p_terms), (b_terms_sums, p_terms_sums), (b_sums, p_sums), \
            (b_scaled, p_scaled) = [make_block(kind, mode) for mode in range(4)]

        @inline
        def finish(p, q, i, check, tol, log_base, rep, c, total, sums):
            """Record bad values or a bad sum in rep[c]; clamp and scale the total."""
            n = p.shape[1]
            if check > 0 and sums[3] > 0.0:
                rep[c, 0] += int(sums[3])
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
            # divergences are never negative (rounding can dip below 0); NaN passes
            if (kind == _Q_KL or kind == _Q_JS) and total < 0.0:
                total = 0.0
            # disjoint supports: log 2 up to rounding; inf, NaN and larger pass
            if kind == _Q_JS and total > _LN2 and total <= _LN2_ROUNDING:
                total = _LN2
            return total / log_base

        @njit
        def chunk(p, q, out, rep, lo, hi, c, check, tol, eps, transform, log_base, work,
                  stage):
            """Rows lo..hi, each serially (_row), reporting into rep[c]."""
            n = p.shape[1]
            p, q, out, rep = borrow(p), borrow(q), borrow(out), borrow(rep)
            work, stage = borrow(work), borrow(stage)
            for i in range(lo, hi):
                if transform:
                    sums = p_sums(p, q, i, 0.0, 1.0, 1.0, work, stage)
                    terms = p_scaled(p, q, i, eps, sums[1] + n * eps, sums[2] + n * eps,
                                     work, stage)
                elif check > 0:
                    terms = sums = p_terms_sums(p, q, i, 0.0, 1.0, 1.0, work, stage)
                else:
                    terms = sums = p_terms(p, q, i, 0.0, 1.0, 1.0, work, stage)
                out[i] = finish(p, q, i, check, tol, log_base, rep, c, terms[0], sums)

        def serial(p, q, out, rep, check, tol, eps, transform, log_base):
            work, stage = scratch(p, p.shape[1], 2)
            chunk(p, q, out, rep, 0, p.shape[0], 0, check, tol, eps, transform, log_base,
                  work, stage)

        def parallel(p, q, out, rep, check, tol, eps, transform, log_base):
            n_rows = p.shape[0]
            n_chunks = rep.shape[0]
            for c in prange(n_chunks):
                work, stage = scratch(p, p.shape[1], 2)
                chunk(p, q, out, rep, c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks, c,
                      check, tol, eps, transform, log_base, work, stage)

        def long_rows(p, q, out, rep, check, tol, eps, transform, log_base):
            # _long_row: the blocks of each row in parallel into `parts`, added in order
            n = p.shape[1]
            n_blocks = (n + block - 1) // block
            parts = np.empty((n_blocks, 4))
            for i in range(p.shape[0]):
                if transform:
                    for b in prange(n_blocks):
                        st = b * block
                        r = b_sums(p, q, i, st, min(block, n - st), 0.0, 1.0, 1.0)
                        parts[b, 0], parts[b, 1], parts[b, 2], parts[b, 3] = r
                    sums = add_parts(parts)
                    dp = sums[1] + n * eps
                    dq = sums[2] + n * eps
                    for b in prange(n_blocks):
                        st = b * block
                        r = b_scaled(p, q, i, st, min(block, n - st), eps, dp, dq)
                        parts[b, 0], parts[b, 1], parts[b, 2], parts[b, 3] = r
                    terms = add_parts(parts)
                else:
                    for b in prange(n_blocks):
                        st = b * block
                        if check > 0:
                            r = b_terms_sums(p, q, i, st, min(block, n - st), 0.0, 1.0, 1.0)
                        else:
                            r = b_terms(p, q, i, st, min(block, n - st), 0.0, 1.0, 1.0)
                        parts[b, 0], parts[b, 1], parts[b, 2], parts[b, 3] = r
                    terms = sums = add_parts(parts)
                out[i] = finish(p, q, i, check, tol, log_base, rep, 0, terms[0], sums)

        return {"serial": serial, "parallel": parallel, "long": long_rows, "sums_pass": p_sums}

    # -- class labels ------------------------------------------------------------------

    def make_labels():
        h_sums = drivers(_Q_H)["sums_pass"]

        @njit
        def neg_log(buf, n):
            # kl_neg_log_inplace: the logs of a gathered chunk as one vector loop;
            # 0.0 - log: a certain label gives +0.0, not -0.0
            for k in range(n):
                buf[k] = 0.0 - m.vlog(buf[k])

        @njit
        def chunk(labels, q, out, rep, lo, hi, c, check, eps, transform, ignore_index,
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
                        sums = h_sums(q, q, i, 0.0, 1.0, 1.0, work, stage)
                        n_bad = int(sums[3])
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

        def serial(labels, q, out, rep, check, eps, transform, ignore_index, has_ignore,
                   log_base):
            work, stage = scratch(q, q.shape[1] if transform else 1, 2)
            buf = np.empty(_LABEL_CHUNK)
            chunk(labels, q, out, rep, 0, q.shape[0], 0, check, eps, transform, ignore_index,
                  has_ignore, log_base, work, stage, buf)

        def parallel(labels, q, out, rep, check, eps, transform, ignore_index, has_ignore,
                     log_base):
            n_rows = q.shape[0]
            n_chunks = rep.shape[0]
            for c in prange(n_chunks):
                work, stage = scratch(q, q.shape[1] if transform else 1, 2)
                buf = np.empty(_LABEL_CHUNK)
                chunk(labels, q, out, rep, c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks,
                      c, check, eps, transform, ignore_index, has_ignore, log_base, work, stage,
                      buf)

        return {"serial": serial, "parallel": parallel}

    # -- diagonal Gaussians, one (scale, prior) at a time ---------------------------------

    def make_gauss(scale, prior):
        term, bad_s = m.GAUSS_TERMS[(scale, prior)]

        @inline
        def fill(m1, s1, m2, s2, n, check, tt):
            # tt = 2 KL terms, returns the bad-parameter count: the vectorized loop
            n_bad = 0
            for k in range(n):
                a = np.float64(m1[k])
                b = np.float64(s1[k])
                u = 0.0 if prior else np.float64(m2[k])
                v = 1.0 if prior else np.float64(s2[k])
                tt[k] = term(a, b, u, v)
                if check:
                    n_bad += int(m.bad_finite(a) + bad_s(b) + (
                        0.0 if prior else m.bad_finite(u) + bad_s(v)))
            return n_bad

        @njit
        def gauss_row(m1, s1, m2, s2, i, check, log_base, rep, c, work, stage):
            n = m1.shape[1]
            it = m1.itemsize
            contiguous = m1.strides[1] == it and s1.strides[1] == it and (
                prior or (m2.strides[1] == it and s2.strides[1] == it))
            total = 0.0
            n_bad = 0
            for start in range(0, n, block):
                nb = min(block, n - start)
                at = z8
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
                    n_bad += fill(x1, x2, x3, x4, k, check, work)
                    at = lanes8(work, k, at)
                total += tree8(at)
            if n_bad > 0:
                rep[c, 0] += n_bad
                if rep[c, 1] < 0:
                    for j in range(n):
                        k = -1
                        if m.bad_finite(np.float64(m1[i, j])) > 0.0:
                            k = 0
                        elif bad_s(np.float64(s1[i, j])) > 0.0:
                            k = 1
                        elif not prior and m.bad_finite(np.float64(m2[i, j])) > 0.0:
                            k = 2
                        elif not prior and bad_s(np.float64(s2[i, j])) > 0.0:
                            k = 3
                        if k >= 0:
                            rep[c, 1], rep[c, 2], rep[c, 3] = i, j, k
                            break
            total = 0.5 * total
            if total < 0.0:
                total = 0.0
            return total / log_base

        @njit
        def chunk(m1, s1, m2, s2, out, rep, lo, hi, c, check, log_base, work, stage):
            m1, s1, m2, s2 = borrow(m1), borrow(s1), borrow(m2), borrow(s2)
            out, rep, work, stage = borrow(out), borrow(rep), borrow(work), borrow(stage)
            for i in range(lo, hi):
                out[i] = gauss_row(m1, s1, m2, s2, i, check, log_base, rep, c, work, stage)

        def serial(m1, s1, m2, s2, out, rep, check, log_base):
            work, stage = scratch(m1, m1.shape[1], 4)
            chunk(m1, s1, m2, s2, out, rep, 0, m1.shape[0], 0, check, log_base, work, stage)

        def parallel(m1, s1, m2, s2, out, rep, check, log_base):
            n_rows = m1.shape[0]
            n_chunks = rep.shape[0]
            for c in prange(n_chunks):
                work, stage = scratch(m1, m1.shape[1], 4)
                chunk(m1, s1, m2, s2, out, rep, c * n_rows // n_chunks,
                      (c + 1) * n_rows // n_chunks, c, check, log_base, work, stage)

        return {"serial": serial, "parallel": parallel}

    @functools.cache
    def drivers(family):
        """The Python functions of a family's drivers, built (not compiled) once."""
        if family == "label":
            return make_labels()
        if isinstance(family, tuple):
            return make_gauss(*family[1:])
        return make_rows(family)

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
    if isinstance(family, tuple):
        return t.void(x, x, x, x, out, rep, i8, f8)
    return t.void(x, x, out, rep, i8, f8, f8, b1, f8)


def compile_once(key, build):
    """The compiled function cached under `key`, built by `build()` on first request.

    Every Numba kernel family compiles through here: one cache and one lock
    (two threads asking at once compile once; the lock is taken only on a miss).
    `key` starts with the family's module name so families never collide.
    """
    fn = _compiled.get(key)
    if fn is None:
        with _build_lock:
            fn = _compiled.get(key)
            if fn is None:
                fn = build()
                _compiled[key] = fn
    return fn


def _kernel(family, variant, dtype):
    """The compiled driver for (family, variant, dtype), compiled on first request."""
    def build():
        numba, drivers = _impl()
        return numba.njit(_signature(numba, family, dtype), parallel=variant != "serial",
                          nogil=True, error_model="numpy")(drivers(family)[variant])

    return compile_once((__name__, family, variant, dtype), build)


# dtype -> name, by a dict look-up: dtype.name is Python code, ~2 us a call
_DTYPE_NAMES = {np.dtype(np.float32): "float32", np.dtype(np.float64): "float64"}


def _dtype_name(x):
    name = _DTYPE_NAMES.get(x.dtype)
    if name is None:
        raise TypeError(f"numba kernels take float32 or float64 arrays, not {x.dtype}")
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


def _dispatch(family, args, n_rows, n, report, n_threads, dtype, long_ok):
    # the branches of _rows / _gauss_rows / cross_entropy_label_rows
    if long_ok and n_rows < n_threads and n > BLOCK_SIZE:
        _call_parallel(_kernel(family, "long", dtype), args, n_threads)
    elif n_threads == 1 or report.shape[0] == 1:
        _kernel(family, "serial", dtype)(*args)
    else:
        _call_parallel(_kernel(family, "parallel", dtype), args, n_threads)


def _rows(kind, p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    n_rows, n = p.shape
    if n_rows == 0 or n == 0:
        return
    args = (p, q, out, report, int(check), float(tol), float(eps), bool(transform),
            float(log_base))
    _dispatch(kind, args, n_rows, n, report, n_threads, _dtype_name(p), True)


def kl_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j rel_entr(p[i, j], q[i, j]) / log_base, clamped at 0."""
    _rows(_Q_KL, p, q, out, report, check, tol, eps, transform, log_base, n_threads)


def cross_entropy_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = -sum_j xlogy(p[i, j], q[i, j]) / log_base."""
    _rows(_Q_CE, p, q, out, report, check, tol, eps, transform, log_base, n_threads)


def js_rows(p, q, out, report, check, tol, eps, transform, log_base, n_threads):
    """out[i] = sum_j js_term(p[i, j], q[i, j]) / log_base, clamped to [0, log 2]."""
    _rows(_Q_JS, p, q, out, report, check, tol, eps, transform, log_base, n_threads)


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
    _dispatch("label", args, n_rows, n, report, n_threads, _dtype_name(q), False)


def _gauss(mu1, s1, mu2, s2, prior, out, report, check, scale, log_base, n_threads):
    n_rows, n = mu1.shape
    if n_rows == 0 or n == 0:
        return
    scale = int(scale)
    if scale not in (0, 1, 2, 3):
        raise ValueError(f"scale code must be 0, 1, 2 or 3, not {scale}")
    args = (mu1, s1, mu2, s2, out, report, int(check), float(log_base))
    _dispatch(("gauss", scale, bool(prior)), args, n_rows, n, report, n_threads,
              _dtype_name(mu1), False)


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
    """Compile every kernel variant for ``dtypes`` now instead of on first use (slow)."""
    plan = [(k, v) for k in (_Q_KL, _Q_CE, _Q_H, _Q_JS) for v in ("serial", "parallel", "long")]
    gauss = [("gauss", scale, prior) for scale in range(4) for prior in (False, True)]
    plan += [(f, v) for f in ["label", *gauss] for v in ("serial", "parallel")]
    for dtype in dtypes:
        for family, variant in plan:
            _kernel(family, variant, np.dtype(dtype).name)
