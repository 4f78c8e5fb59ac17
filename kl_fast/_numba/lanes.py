"""Lane sums and array views shared by the Numba kernel families.

Module-level (so that the kernels calling them can be cached on disk):

* ``row_view``: a[i, start:start + n] as a 1-D C-contiguous view, which the
  loop vectorizer needs (it gives up on 'A' arrays);
* ``borrow``: an array without its meminfo, so passing it costs no atomic
  reference-count update;
* ``lanes8`` / ``sums8`` / ``tree8``: kl_blocks.h's 8 lanes (element k to lane
  k % 8, lanes combined by a fixed tree), with the full groups added as one
  <8 x double> add each (Numba leaves LLVM's SLP vectorizer off, so eight
  scalar lanes would stay scalar);
* ``max8``: kl_spaces.h's lane maximum (a NaN sticks); ``row_max`` the same value,
  in one vector pass for a finite row.

A term loop writes its terms to a buffer (the loop LLVM vectorizes) and
``lanes8`` adds the buffer: the same additions in the same order as
``acc[k % 8] += term_k``, so the same bits, without a heap array of lanes.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from . import kl_math as m
from .cache import register_source

register_source(__file__)
register_source(m.__file__)

LANES = 8
Z8 = (0.0,) * LANES
# elements per vectorized sub-block (a multiple of LANES dividing the 8192-element
# block): its scratch stays in L1
SUB = 1024

inline = numba.njit(nogil=True, error_model="numpy", forceinline=True)


@intrinsic
def row_view(typingctx, a, i, start, n):
    """a[i, start:start + n] as a 1-D C-contiguous view; the caller has checked
    a.strides[1] == a.itemsize.  Borrowed (no meminfo): it must not outlive `a`.
    Typed writable to share its type with the staging buffers; it is only read."""
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
def prefetch_after(typingctx, a, i, start, n):
    """Prefetch the cache lines after a[i, start:start + n] -- the next row's, when the
    rows of a C-contiguous batch follow each other -- at most n elements and 4 KiB
    (kl_blocks.h's KL_PREFETCH_AFTER: the hardware's stream prefetchers stop at every
    page).  A prefetch never faults; it changes no value."""
    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        intp = context.get_value_type(types.intp)
        size = context.get_abi_sizeof(context.get_data_type(sig.args[0].dtype))
        itemsize = context.get_constant(types.intp, size)
        first = builder.add(builder.mul(args[1], builder.extract_value(src.strides, 0)),
                            builder.mul(builder.add(args[2], args[3]), itemsize))
        base = builder.add(builder.ptrtoint(src.data, intp), first)
        nbytes = builder.mul(args[3], itemsize)
        page = context.get_constant(types.intp, 4096)
        nbytes = builder.select(builder.icmp_signed("<", nbytes, page), nbytes, page)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        zero = context.get_constant(types.intp, 0)
        line = context.get_constant(types.intp, 64)
        with cgutils.for_range_slice(builder, zero, nbytes, line) as (off, _):
            ptr = builder.inttoptr(builder.add(base, off), i8p)
            builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(a, types.intp, types.intp, types.intp), codegen


@intrinsic
def row_view_f64(typingctx, a, i, start, n):
    """row_view typed float64 whatever a's dtype: only for float64 data (the caller
    checks a.itemsize == 8), so that a float32 kernel types its float64 in-place
    branch (never taken there) without compiling a float32 copy of the loops."""
    ret = types.Array(types.float64, 1, "C")

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        dst = make_array(ret)(context, builder)
        intp = context.get_value_type(types.intp)
        itemsize = context.get_constant(types.intp, 8)
        offset = builder.add(builder.mul(args[1], builder.extract_value(src.strides, 0)),
                             builder.mul(args[2], itemsize))
        data = builder.inttoptr(builder.add(builder.ptrtoint(src.data, intp), offset),
                                ir.DoubleType().as_pointer())
        populate_array(dst, data=data, shape=[args[3]], strides=[itemsize],
                       itemsize=itemsize, meminfo=None)
        return dst._getvalue()

    return ret(a, types.intp, types.intp, types.intp), codegen


@intrinsic
def borrow(typingctx, a):
    """`a` without its meminfo: reference counting it is then a no-op.  Only for
    arrays the caller owns for the whole borrowed use (its own arguments)."""

    def codegen(context, builder, sig, args):
        ary = make_array(sig.args[0])(context, builder, args[0])
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        ary.parent = cgutils.get_null_value(ary.parent.type)
        return ary._getvalue()

    return a(a), codegen


def _lanes_codegen(flag_bad):
    """Codegen of lanes_full / lanes_full_bad: one <8 x double> accumulator over the
    full groups of LANES elements (and, flag_bad, the OR of their sign bits)."""

    def codegen(context, builder, sig, args):
        data = make_array(sig.args[0])(context, builder, args[0]).data
        vec = ir.VectorType(ir.DoubleType(), LANES)
        src = ir.VectorType(data.type.pointee, LANES)
        width = sig.args[0].dtype.bitwidth
        ints = ir.VectorType(ir.IntType(width), LANES)
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

        sums = cgutils.alloca_once_value(builder, to_vec(args[2]))
        signs = cgutils.alloca_once_value(builder, ir.Constant(ints, [0] * LANES)) \
            if flag_bad else None
        sign_bit = ir.Constant(ints, [1 << (width - 1)] * LANES)
        with cgutils.for_range(builder, builder.sdiv(args[1], intp(LANES))) as loop:
            at = builder.gep(data, [builder.mul(loop.index, intp(LANES))])
            raw = builder.load(builder.bitcast(at, src.as_pointer()), align=width // 8)
            x = builder.fpext(raw, vec) if width == 32 else raw   # float32: exact widening
            builder.store(builder.fadd(builder.load(sums), x), sums)
            if flag_bad:
                # kl_blocks.h's KL_TRACK_SIGN: an OR an element; NaN and +inf show
                # in the sum instead (kl_block_flag)
                bits = builder.and_(builder.bitcast(raw, ints), sign_bit)
                builder.store(builder.or_(builder.load(signs), bits), signs)
        if not flag_bad:
            return to_tuple(builder.load(sums))
        any_bits = builder.extract_element(builder.load(signs), i32(0))
        for lane in range(1, LANES):
            any_bits = builder.or_(any_bits,
                                   builder.extract_element(builder.load(signs), i32(lane)))
        flagged = builder.icmp_unsigned("!=", any_bits, ir.Constant(any_bits.type, 0))
        flags = to_vec(args[3])
        lane0 = builder.extract_element(flags, i32(0))
        lane0 = builder.fadd(lane0, builder.select(flagged, ir.Constant(ir.DoubleType(), 1.0),
                                                   ir.Constant(ir.DoubleType(), 0.0)))
        flags = builder.insert_element(flags, lane0, i32(0))
        return context.make_tuple(builder, sig.return_type,
                                  [to_tuple(builder.load(sums)), to_tuple(flags)])

    return codegen


@intrinsic
def lanes_full(typingctx, buf, n, a):
    """The lanes `a` (8 doubles) after buf[j] is added to lane j % LANES for j below
    n - n % LANES: lane-wise IEEE additions, the C lane order exactly, in SIMD."""
    return a(buf, types.intp, a), _lanes_codegen(False)


@intrinsic
def lanes_full_bad(typingctx, buf, n, a, b):
    """lanes_full, and the lanes `b` of bad-value flags: lane 0 gains 1 if a value has
    its sign bit set (a negative, or a -0.0: the exact count then finds nothing)."""
    return types.Tuple((a, a))(buf, types.intp, a, b), _lanes_codegen(True)


def _extremes_codegen(context, builder, sig, args):
    """kl_sp_kl_logits_fast's first loop in 8 vector lanes: per lane the running
    maximum and minimum of x and of y (a NaN never replaces a lane's value) and
    the count of non-finite pairs; element k goes to lane k % 8 (the tail, k past
    the full groups, to lane k - n + n % 8) and the lanes are combined 0 to 7 with
    the same selects, as the C loop does -- so even the sign of a zero maximum
    is C's.  (Numba's scalar compare-and-select chains took 1.3 ns an element.)"""
    xs, ys, n = args
    dx = make_array(sig.args[0])(context, builder, xs).data
    dy = make_array(sig.args[1])(context, builder, ys).data
    f64 = ir.DoubleType()
    vec = ir.VectorType(f64, LANES)
    i32, intp = ir.IntType(32), n.type
    inf = float("inf")
    init = [ir.Constant(vec, [-inf] * LANES), ir.Constant(vec, [-inf] * LANES),
            ir.Constant(vec, [inf] * LANES), ir.Constant(vec, [inf] * LANES),
            ir.Constant(vec, [0.0] * LANES)]
    acc = [cgutils.alloca_once_value(builder, v) for v in init]

    def step(x, y, get, put):
        """The five lane updates for x, y (vectors, or scalars of one lane)."""
        zero = ir.Constant(x.type, [0.0] * LANES) if isinstance(x.type, ir.VectorType) \
            else ir.Constant(f64, 0.0)
        one = ir.Constant(x.type, [1.0] * LANES) if isinstance(x.type, ir.VectorType) \
            else ir.Constant(f64, 1.0)
        for k, (v, op) in enumerate(((x, ">"), (y, ">"), (x, "<"), (y, "<"))):
            cur = get(k)
            put(k, builder.select(builder.fcmp_ordered(op, v, cur), v, cur))
        fin = builder.and_(builder.fcmp_ordered("==", builder.fsub(x, x), zero),
                           builder.fcmp_ordered("==", builder.fsub(y, y), zero))
        put(4, builder.fadd(get(4), builder.select(fin, zero, one)))

    full = builder.mul(builder.sdiv(n, intp(LANES)), intp(LANES))
    with cgutils.for_range(builder, builder.sdiv(n, intp(LANES))) as loop:
        base = builder.mul(loop.index, intp(LANES))
        vals = []
        for d in (dx, dy):
            src = ir.VectorType(d.type.pointee, LANES)
            v = builder.load(builder.bitcast(builder.gep(d, [base]), src.as_pointer()),
                             align=4 if isinstance(d.type.pointee, ir.FloatType) else 8)
            vals.append(builder.fpext(v, vec) if src.element != f64 else v)
        step(vals[0], vals[1], lambda k: builder.load(acc[k]),
             lambda k, v: builder.store(v, acc[k]))
    with cgutils.for_range(builder, builder.sub(n, full)) as loop:
        lane = builder.trunc(loop.index, i32)
        j = builder.add(full, loop.index)
        vals = []
        for d in (dx, dy):
            v = builder.load(builder.gep(d, [j]))
            vals.append(builder.fpext(v, f64) if v.type != f64 else v)

        def get(k):
            return builder.extract_element(builder.load(acc[k]), lane)

        def put(k, v):
            builder.store(builder.insert_element(builder.load(acc[k]), v, lane), acc[k])
        step(vals[0], vals[1], get, put)
    out = [ir.Constant(f64, -inf), ir.Constant(f64, -inf), ir.Constant(f64, inf),
           ir.Constant(f64, inf), ir.Constant(f64, 0.0)]
    for lane in range(LANES):
        for k, op in enumerate((">", ">", "<", "<")):
            v = builder.extract_element(builder.load(acc[k]), i32(lane))
            out[k] = builder.select(builder.fcmp_ordered(op, v, out[k]), v, out[k])
        out[4] = builder.fadd(out[4], builder.extract_element(builder.load(acc[4]), i32(lane)))
    return context.make_tuple(builder, sig.return_type, out)


@intrinsic
def extremes_pair(typingctx, x, y, n):
    """(max x, max y, min x, min y, non-finite pairs) of x[:n], y[:n] in kl_spaces.h's
    8 lanes (see _extremes_codegen)."""
    return types.UniTuple(types.float64, 5)(x, y, types.intp), _extremes_codegen


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
    """lanes8 of buf[:n], and the lanes `b` of its bad-value flags: positive when a
    value of buf[:n] may be negative, NaN or +inf (the sum of `a` shows the last two),
    which the caller then counts exactly (count_bad) -- kl_blocks.h's validation in
    the terms pass.  (Counting every element's test here cost ~0.35 ns an element,
    more than the terms of total variation or chi^2.)"""
    a, b = lanes_full_bad(buf, n, a, b)
    extra = 0.0
    for j in range(n - n % LANES, n):
        extra += m.is_bad(np.float64(buf[j]))
    return tail8(buf, n, a), (b[0] + extra, b[1], b[2], b[3], b[4], b[5], b[6], b[7])


@inline
def tree8(a):
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))


@inline
def sum8(buf, n):
    """tree8 of the lanes of buf[:n]: kl_spaces.h's lane sum of a term loop."""
    return tree8(lanes8(buf, n, Z8))


@inline
def _mx(v, r):
    return v if (v > r or v != v) else r


@inline
def _mn(v, r):
    return v if v < r else r


@inline
def _pick(v, r, is_max):
    # is_max is a constant at every call site: the branch folds away
    return _mx(v, r) if is_max else _mn(v, r)


@inline
def extreme8(x, n, is_max):
    """The maximum (`is_max`) or the minimum of x[:n] in 8 lanes, combined in lane order:
    eight scalar chains (one chain is bound by the latency of its compare-and-select),
    no heap array of lanes.  The maximum is kl_sp_max's: a NaN sticks.  The minimum
    ignores NaN (the fast tiers that use it have turned down rows holding one) and is
    exact in any order."""
    start = -np.inf if is_max else np.inf
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = start
    full = n - n % LANES
    for g in range(0, full, LANES):
        m0 = _pick(x[g], m0, is_max)
        m1 = _pick(x[g + 1], m1, is_max)
        m2 = _pick(x[g + 2], m2, is_max)
        m3 = _pick(x[g + 3], m3, is_max)
        m4 = _pick(x[g + 4], m4, is_max)
        m5 = _pick(x[g + 5], m5, is_max)
        m6 = _pick(x[g + 6], m6, is_max)
        m7 = _pick(x[g + 7], m7, is_max)
    r = n - full
    if r > 0:
        m0 = _pick(x[full], m0, is_max)
    if r > 1:
        m1 = _pick(x[full + 1], m1, is_max)
    if r > 2:
        m2 = _pick(x[full + 2], m2, is_max)
    if r > 3:
        m3 = _pick(x[full + 3], m3, is_max)
    if r > 4:
        m4 = _pick(x[full + 4], m4, is_max)
    if r > 5:
        m5 = _pick(x[full + 5], m5, is_max)
    if r > 6:
        m6 = _pick(x[full + 6], m6, is_max)
    r = start
    r = _pick(m0, r, is_max)
    r = _pick(m1, r, is_max)
    r = _pick(m2, r, is_max)
    r = _pick(m3, r, is_max)
    r = _pick(m4, r, is_max)
    r = _pick(m5, r, is_max)
    r = _pick(m6, r, is_max)
    return _pick(m7, r, is_max)


@inline
def max8(x, n):
    """kl_sp_max: the maximum of x[:n] in 8 lanes, combined in lane order; a NaN sticks."""
    return extreme8(x, n, True)


@inline
def min8(x, n):
    """The minimum of x[:n] (NaN ignored: see extreme8)."""
    return extreme8(x, n, False)


@inline
def row_max(x, n):
    """kl_sp_max of x[:n], as max8 gives it: a finite row's from one vector pass
    (extremes_pair: the same lanes and selects, so the same value, signed zeros
    included), a row with a NaN or an infinity from max8's scalar chains (there a
    NaN must stick).  The chains cost ~1.3 ns an element, most of a fast tier."""
    mx, _, _, _, nf = extremes_pair(x, x, n)
    return mx if nf == 0.0 else max8(x, n)


@numba.njit(nogil=True, error_model="numpy")
def scratch(x, n, n_stage):
    """Per-chunk buffers: the per-element terms (and two widened rows), n_stage staged
    input rows."""
    w = min(SUB, n)
    # the terms, then two double buffers for float32 values widened (row_loops.fill)
    return np.empty(3 * w), np.empty((n_stage, w), x.dtype)


@inline
def stage_row(x, i, start, n, buf):
    """A strided row piece copied to a contiguous buffer, for the vectorized loop."""
    for t in range(n):
        buf[t] = x[i, start + t]
