"""Scalar math of kl_fast, Numba backend.

A line-by-line mirror of the C math of the Cython backend (read the comments
there for the numerics): ``src/kl_math.h`` (the exact point functions, on
libm), ``src/kl_vmath.h`` (the branch-free log, log1p and exp on the float's
bits) and the term functions of ``src/kl_blocks.h`` (the vector forms the
block loops sum).  Same formulas, same operation order, same selects, so the
two backends agree to the bit.

Never ``fastmath``: it folds the NaN/inf tests away, and inf/NaN are real
results here; no FMA contraction either (Numba emits none), an FMA only where
the C code writes one.  ``error_model="numpy"`` makes x / 0 give inf or NaN as
in C.  Every function is ``forceinline`` (LLVM ``alwaysinline``) so that the
block loops that call them are straight-line code LLVM can vectorize.
Importing this module imports numba but compiles nothing.
"""

import math

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

DBL_MIN = 2.2250738585072014e-308
DBL_MAX = 1.7976931348623157e308
INF = math.inf
NAN = math.nan

# Gaussian scales, as the API codes them.
SCALE_VAR = 0
SCALE_STD = 1
SCALE_LOGVAR = 2
SCALE_LOGSTD = 3

_njit = numba.njit(nogil=True, cache=False, error_model="numpy", forceinline=True)

# 1/3, 1/5, ..., 1/37: the atanh series of log1pmx_band.
_ATANH_COEF = tuple(1.0 / k for k in range(3, 38, 2))
# 1/k!, k = 2..20: the Taylor series of expm1mx (every k! up to 20! is exact
# in a double, as the C literals are).
_INV_FACT = tuple(1.0 / float(math.factorial(k)) for k in range(2, 21))


# -- bits and fma (kl_vmath.h's memcpy and __builtin_fma) ---------------------------------

@intrinsic
def bits(typingctx, x):
    """The bits of a float64, as an int64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def from_bits(typingctx, u):
    """The float64 with the bits of an int64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c with one rounding."""
    def codegen(context, builder, sig, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]),
                                            "llvm.fma.f64")
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


# -- kl_math.h: exact point functions on libm ---------------------------------------------

@_njit
def rel_entr(p, q):
    """p log(p/q), accurate where p ~ q; 0 if p == 0 <= q, +inf if p > 0 == q."""
    if math.isnan(p) or math.isnan(q):
        return p + q
    if p > 0.0 and q > 0.0:
        r = p / q
        if r > 0.5 and r < 2.0:
            return p * math.log1p((p - q) / q)
        if r > DBL_MIN and r < DBL_MAX:
            return p * math.log(r)
        return p * (math.log(p) - math.log(q))
    if p == 0.0 and q >= 0.0:
        return 0.0
    return INF


@_njit
def js_term(p, q):
    """1/2 [rel_entr(p, m) + rel_entr(q, m)], m = (p + q)/2, TwoSum-corrected."""
    if p == 0.0 and q == 0.0:
        return 0.0
    s = p + q
    bq = s - p
    e = (p - (s - bq)) + (q - bq)
    t = rel_entr(p, 0.5 * s) + rel_entr(q, 0.5 * s)
    return 0.5 * (t - e if math.isfinite(e) else t)


@_njit
def entr(p):
    """-p log p; 0 if p == 0, -inf if p < 0."""
    if p > 0.0:
        return -p * math.log(p)
    if p == 0.0:
        return 0.0
    if math.isnan(p):
        return p
    return -INF


@_njit
def neg_xlogy(p, q):
    """-p log q; 0 if p == 0 (whatever q but NaN)."""
    if p == 0.0 and not math.isnan(q):
        return 0.0
    return -p * math.log(q)


@_njit
def log1pmx_band(x):
    """log1p(x) - x without cancellation, for x in [-1/2, 1]."""
    s = x / (2.0 + x)
    s2 = s * s
    poly = _ATANH_COEF[17]
    for k in range(16, -1, -1):
        poly = poly * s2 + _ATANH_COEF[k]
    return -x * s + 2.0 * s * s2 * poly


@_njit
def _expm1mx_poly(x):
    poly = _INV_FACT[18]
    for k in range(17, -1, -1):
        poly = poly * x + _INV_FACT[k]
    return poly


# -- kl_vmath.h: branch-free log, log1p, exp ----------------------------------------------
# The C code does its integer work in uint64; every value here is in
# [0, 2^63), where int64 gives the same bits.

_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SHIFTER = 6755399441055744.0          # 0x1.8p52
_SHIFTER_BITS = 0x4338000000000000
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01)
_P = (1.66666666666666019037e-01, -2.77777777770155933842e-03, 6.61375632143793436117e-05,
      -1.65339022054652515390e-06, 4.13813679705723846039e-08)


@_njit
def vlog_core(x, c):
    """log(x) + c for finite x > 0 and a tiny correction c."""
    sub = x < DBL_MIN
    xs = x * 18014398509481984.0 if sub else x           # 0x1p54
    kadj = -54.0 if sub else 0.0
    ix = bits(xs)
    kb = (ix + (0x3ff0000000000000 - 0x3fe6a09e667f3bcd)) >> 52
    z = from_bits(ix - (kb << 52) + (1023 << 52))
    f = z - 1.0
    s = f / (2.0 + f)
    dk = (from_bits(_SHIFTER_BITS + kb) - _SHIFTER) - 1023.0 + kadj
    r = _lg_poly(s)
    hfsq = 0.5 * f * f
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + (dk * _LN2_LO + c))) - f)


@_njit
def _lg_poly(s):
    # fdlibm's R(s^2), in kl_vmath.h's FMA Horner form
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG
    z2 = s * s
    w = z2 * z2
    t1 = w * fma(w, fma(w, lg6, lg4), lg2)
    t2 = z2 * fma(w, fma(w, fma(w, lg7, lg5), lg3), lg1)
    return t2 + t1


@_njit
def vlog_normal(x):
    """log(x) for normal, positive, finite x only (the block loops route any other
    argument to the exact scalar terms: an "odd" lane)."""
    ix = bits(x)
    kb = (ix + (0x3ff0000000000000 - 0x3fe6a09e667f3bcd)) >> 52
    z = from_bits(ix - (kb << 52) + (1023 << 52))
    f = z - 1.0
    s = f / (2.0 + f)
    dk = (from_bits(_SHIFTER_BITS + kb) - _SHIFTER) - 1023.0
    r = _lg_poly(s)
    hfsq = 0.5 * f * f
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)


@_njit
def vlog(x):
    """log(x), branch-free (C99 special values)."""
    r = vlog_core(x if (x > 0.0 and x < INF) else 1.0, 0.0)
    r = -INF if x == 0.0 else r
    r = INF if x == INF else r
    return NAN if (x < 0.0 or x != x) else r


@_njit
def vlog1p(x):
    """log(1 + x), branch-free, with the rounding of 1 + x folded in."""
    u = 1.0 + x
    c = x - (u - 1.0)
    safe = u if (u > 0.0 and u < INF) else 1.0
    r = vlog_core(safe, c / safe)
    r = -INF if u == 0.0 else r
    r = INF if u == INF else r
    return NAN if (x < -1.0 or x != x) else r


@_njit
def vexp(x):
    """exp(x), branch-free (C99 special values, subnormal results)."""
    p1, p2, p3, p4, p5 = _P
    xc = 709.8 if x > 709.8 else (-745.2 if x < -745.2 else x)
    xc = 0.0 if x != x else xc
    t = xc * 1.44269504088896338700e+00 + _SHIFTER
    kd = t - _SHIFTER
    hi = xc - kd * _LN2_HI
    lo = kd * _LN2_LO
    r = hi - lo
    tt = r * r
    c = r - tt * (p1 + tt * (p2 + tt * (p3 + tt * (p4 + tt * p5))))
    p = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    j = 600.0 if kd > 1000.0 else (-600.0 if kd < -1000.0 else 0.0)
    sj = 2.0 ** 600 if kd > 1000.0 else (2.0 ** -600 if kd < -1000.0 else 1.0)
    kb = bits((kd - j) + _SHIFTER) - _SHIFTER_BITS + 1023
    y = (p * from_bits(kb << 52)) * sj
    y = INF if x > 709.8 else y
    y = 0.0 if x < -745.2 else y
    return x if x != x else y


# 1/k!, k = 13 down to 2: kl_vexp_fast's Taylor polynomial (C literals 1.0 / k!)
_FAST_EXP_COEF = tuple(1.0 / float(math.factorial(k)) for k in range(13, 1, -1))


@_njit
def vexp_fast(x):
    """exp(x) for the fast tiers, x in [-708, 709] only (kl_vexp_fast): < 4 u."""
    t = x * 1.44269504088896338700e+00 + _SHIFTER
    kd = t - _SHIFTER
    r = (x - kd * _LN2_HI) - kd * _LN2_LO
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = _FAST_EXP_COEF
    p = c13
    p = fma(p, r, c12)
    p = fma(p, r, c11)
    p = fma(p, r, c10)
    p = fma(p, r, c9)
    p = fma(p, r, c8)
    p = fma(p, r, c7)
    p = fma(p, r, c6)
    p = fma(p, r, c5)
    p = fma(p, r, c4)
    p = fma(p, r, c3)
    p = fma(p, r, c2)
    p = fma(p, r * r, r)
    kb = bits(kd + _SHIFTER) - _SHIFTER_BITS + 1023
    return (1.0 + p) * from_bits(kb << 52)


# -- kl_blocks.h: the terms the block loops sum -------------------------------------------

@_njit
def odd_log_arg(x):
    """1.0 where x > 0 is not a normal double: vlog_normal cannot take it."""
    return 1.0 if (x > 0.0 and not (x >= DBL_MIN and x <= DBL_MAX)) else 0.0


@_njit
def vrel_entr(p, q):
    """p log(p/q) with the rounding of p/q corrected by its fma residual."""
    r = p / q
    e = fma(-r, q, p)
    t = fma(p, vlog_normal(r), e)
    t = INF if (p > 0.0 and q == 0.0) else t
    t = 0.0 if (p == 0.0 and q >= 0.0) else t
    return INF if ((p < 0.0 or q < 0.0) and p == p and q == q) else t


@_njit
def rel_entr_odd(p, q):
    """1.0 where vrel_entr's log argument p/q is not normal."""
    return odd_log_arg(p / q) if q > 0.0 else 0.0


@_njit
def vjs_term(p, q):
    """Jensen-Shannon term, vector form of js_term."""
    s = p + q
    bq = s - p
    e = (p - (s - bq)) + (q - bq)
    m = 0.5 * s
    t = vrel_entr(p, m) + vrel_entr(q, m)
    t = 0.5 * (t - e if (e == e and e != INF and e != -INF) else t)
    return 0.0 if (p == 0.0 and q == 0.0) else t


@_njit
def js_odd(p, q):
    """Odd-lane count of vjs_term's two log arguments."""
    m = 0.5 * (p + q)
    return odd_log_arg(p / m) + odd_log_arg(q / m) if m > 0.0 else 0.0


@_njit
def vce_term(p, q):
    """-p log q, vector form."""
    t = -p * vlog_normal(q)
    t = p * INF if q == 0.0 else t
    t = NAN if (q < 0.0 or q != q) else t
    return 0.0 if (p == 0.0 and q == q) else t


@_njit
def ce_odd(p, q):
    """1.0 where vce_term's log argument q is not normal."""
    return odd_log_arg(q)


@_njit
def ventr(p, q):
    """-p log p, vector form (q unused)."""
    t = 0.0 if p == 0.0 else -p * vlog_normal(p)
    return -INF if p < 0.0 else t


@_njit
def entr_odd(p, q):
    """1.0 where ventr's log argument p is not normal."""
    return odd_log_arg(p)


@_njit
def entr_exact(p, q):
    """entr(p) as a (p, q) function, for the exact fallback."""
    return entr(p)


# -- the f-divergence family (kl_blocks.h's terms and kl_math.h's exact forms) -------------
# Every term takes Renyi's c = 1 - alpha; the others ignore it.

@_njit
def vhellinger_term(p, q, c):
    """(sqrt p - sqrt q)^2 as ((p - q) / (sqrt p + sqrt q))^2."""
    d = (p - q) / (math.sqrt(p) + math.sqrt(q))
    return p + q if (p == 0.0 or q == 0.0) else d * d


@_njit
def two_sum_add(s, e, v):
    """s + v with its rounding error added to e (TwoSum): kl_math.h's kl_two_sum_add."""
    t = s + v
    b = t - s
    return t, e + ((s - (t - b)) + (v - b))


@_njit
def vsqrt_prod(p, q, c):
    """sqrt(p q): float32 Hellinger's fast tier (kl_blocks.h's kl_vsqrt_prod)."""
    return math.sqrt(p * q)


@_njit
def hellinger_fast_total(b, sum_p, sum_q, n):
    """P + Q - 2B where kl_blocks.h's bound for float32 rows holds, else NaN."""
    s = sum_p + sum_q
    t = s - 2.0 * b
    return t if (t >= s * (float(n) + 3.0) * 5.9604644775390625e-08 and t < INF) else NAN


@_njit
def vtv_term(p, q, c):
    """|p - q|."""
    return abs(p - q)


@_njit
def vchi2_term(p, q, c):
    """(p - q)^2 / q as d (d / q); 0/0 gives 0; q + 0.0 makes a q of -0.0 +0.0."""
    d = p - q
    t = d * (d / (q + 0.0))
    return 0.0 if (p == 0.0 and q == 0.0) else t


@_njit
def chi2_odd(p, q, c):
    """1.0 where d / q overflows or d (d / q) underflows (the exact form instead)."""
    d = p - q
    r = abs(d / (q + 0.0))     # the divisor of vchi2_term: one shared division
    t = abs(d) * r
    return 1.0 if (q > 0.0 and d != 0.0 and not (r <= DBL_MAX and t >= DBL_MIN)) else 0.0


@_njit
def no_odd(p, q, c):
    """No odd lanes (terms without logs)."""
    return 0.0


@_njit
def chi2_term(p, q, c):
    """(p - q)^2 / q as (d / sqrt q)^2, the exact fallback."""
    if p == 0.0 and q == 0.0:
        return 0.0
    d = (p - q) / math.sqrt(q)
    return d * d


@_njit
def vexpm1(x):
    """expm1(x): the expm1mx series on |x| <= 1, e^x - 1 beyond, branch-free."""
    band = x >= -1.0 and x <= 1.0
    xb = x if band else 0.0
    p = _expm1mx_poly(xb)
    return xb + (xb * xb) * p if band else vexp(x) - 1.0


@_njit
def vlog_ratio(q, p):
    """log(q/p) with the rounding of q/p corrected by its fma residual."""
    r = q / p
    e = fma(-r, p, q)
    return vlog_normal(r) + e / q


@_njit
def vrenyi_w(p, q, c):
    """Renyi's first-tier term p^alpha q^(1-alpha) - p = p expm1(c log(q/p))."""
    t = p * vexpm1(c * vlog_ratio(q, p))
    t = q - p if c == 1.0 else t
    t = (-p if c > 0.0 else INF) if q == 0.0 else t
    t = 0.0 if p == 0.0 else t
    return NAN if (p < 0.0 or q < 0.0 or p != p or q != q) else t


@_njit
def vrenyi_w_half(p, q, c):
    """The first-tier term at alpha = 1/2: sqrt p (q - p) / (sqrt p + sqrt q)."""
    sp = math.sqrt(p)
    t = sp * ((q - p) / (sp + math.sqrt(q)))
    t = -p if q == 0.0 else t
    t = 0.0 if p == 0.0 else t
    return NAN if (p < 0.0 or q < 0.0 or p != p or q != q) else t


@_njit
def vrenyi_w_two(p, q, c):
    """The first-tier term at alpha = 2: p (p - q) / q."""
    t = p * ((p - q) / q)
    t = INF if q == 0.0 else t
    t = 0.0 if p == 0.0 else t
    return NAN if (p < 0.0 or q < 0.0 or p != p or q != q) else t


@_njit
def renyi_odd(p, q, c):
    """1.0 where the ratio is not normal, 2.0 where also e^(c L) overflows, as C."""
    r = q / p
    big = 1.0 if (p > 0.0 and q > 0.0 and c * vlog_ratio(q, p) > 709.0) else 0.0
    return odd_log_arg(r) + big if (p > 0.0 and q > 0.0) else 0.0


@_njit
def vrenyi_s(p, q, c):
    """Renyi's second-tier term p^alpha q^(1-alpha) = p e^(c log(q/p))."""
    t = p * vexp(c * vlog_ratio(q, p))
    t = q if c == 1.0 else t
    t = (0.0 if c > 0.0 else INF) if q == 0.0 else t
    t = 0.0 if p == 0.0 else t
    return NAN if (p < 0.0 or q < 0.0 or p != p or q != q) else t


@_njit
def log_ratio(q, p):
    """log(q/p) for p, q > 0, accurate where q ~ p (kl_math.h's kl_log_ratio)."""
    r = q / p
    if r > 0.5 and r < 2.0:
        return math.log1p((q - p) / p)
    if r > DBL_MIN and r < DBL_MAX:
        return math.log(r)
    return math.log(q) - math.log(p)


@_njit
def renyi_w(p, q, c):
    """The exact form of vrenyi_w."""
    if math.isnan(p) or math.isnan(q) or p < 0.0 or q < 0.0:
        return NAN
    if p == 0.0:
        return 0.0
    if q == 0.0:
        return -p if c > 0.0 else INF
    if c == 1.0:
        return q - p
    y = c * log_ratio(q, p)
    if y < 709.0:
        return p * math.expm1(y)
    return math.exp(math.log(p) + y) - p


@_njit
def renyi_s(p, q, c):
    """The exact form of vrenyi_s."""
    if math.isnan(p) or math.isnan(q) or p < 0.0 or q < 0.0:
        return NAN
    if p == 0.0:
        return 0.0
    if q == 0.0:
        return 0.0 if c > 0.0 else INF
    if c == 1.0:
        return q
    y = c * log_ratio(q, p)
    if y < 709.0:
        return p * math.exp(y)
    return math.exp(math.log(p) + y)


@_njit
def renyi_log_term(p, q, c):
    """log p + c log(q/p): the log-domain tier's term."""
    if math.isnan(p) or math.isnan(q) or p < 0.0 or q < 0.0:
        return NAN
    if p == 0.0:
        return -INF
    if q == 0.0:
        return -INF if c > 0.0 else INF
    return math.log(p) + c * log_ratio(q, p)


@_njit
def is_bad(x):
    """1.0 for a negative, NaN or +inf value (not a probability or count)."""
    return 1.0 if (not (x >= 0.0) or x == INF) else 0.0


@_njit
def vu_minus_1_minus_log_u(um1, log_u):
    """u - 1 - log u, branch-free."""
    band = um1 >= -0.5 and um1 <= 1.0
    series = -log1pmx_band(um1 if band else 0.0)
    return series if band else um1 - log_u


@_njit
def vexpm1mx(x):
    """expm1(x) - x, branch-free."""
    p = _expm1mx_poly(x)
    far = (vexp(x) - 1.0) - x
    return x * x * p if (x >= -1.0 and x <= 1.0) else far


@_njit
def vexpm1mx_f32(x):
    """expm1(x) - x for float32 results, < 2^-38 relative (kl_blocks.h's kl_vexpm1mx_f32)."""
    band = x >= -0.0625 and x <= 0.0625
    xb = x if band else 0.0
    p = 1.0 / 5040
    p = p * xb + 1.0 / 720
    p = p * xb + 1.0 / 120
    p = p * xb + 1.0 / 24
    p = p * xb + 1.0 / 6
    p = p * xb + 0.5
    xc = 709.0 if x > 709.0 else (-708.0 if x < -708.0 else x)
    e = vexp_fast(xc)
    far = e + (-1.0 - x) if x < 0.0 else (e - 1.0) - x
    far = INF if x > 709.0 else far
    return (xb * xb) * p if band else far


@_njit
def vgauss_var(m1, s1, m2, s2):
    """2 KL per coordinate, variances."""
    dm = m1 - m2
    return vu_minus_1_minus_log_u((s1 - s2) / s2, vlog(s1) - vlog(s2)) + dm * dm / s2


@_njit
def vgauss_std(m1, s1, m2, s2):
    """2 KL per coordinate, standard deviations."""
    z = (m1 - m2) / s2
    return vu_minus_1_minus_log_u(((s1 - s2) / s2) * ((s1 + s2) / s2),
                                  2.0 * (vlog(s1) - vlog(s2))) + z * z


@_njit
def vgauss_var_prior(m, s, u, v):
    """2 KL to N(0, 1) per coordinate, variance (u, v unused)."""
    return vu_minus_1_minus_log_u(s - 1.0, vlog(s)) + m * m


@_njit
def vgauss_std_prior(m, s, u, v):
    """2 KL to N(0, 1) per coordinate, standard deviation (u, v unused)."""
    return vu_minus_1_minus_log_u((s - 1.0) * (s + 1.0), 2.0 * vlog(s)) + m * m


# The log-scale terms take the expm1mx of their parameters' dtype (kl_blocks.h's
# KL_DEFINE_GAUSS_LOG_TERMS): f32 (a compile-time constant where they are inlined)
# picks vexpm1mx_f32 for float32 parameters, vexpm1mx for float64 ones.

@_njit
def expm1mx_for(x, f32):
    """expm1(x) - x, the float32 form when `f32`."""
    return vexpm1mx_f32(x) if f32 else vexpm1mx(x)


@_njit
def vgauss_logvar(m1, s1, m2, s2, f32):
    """2 KL per coordinate, log variances."""
    dm = m1 - m2
    return expm1mx_for(s1 - s2, f32) + dm * dm * vexp(-s2)


@_njit
def vgauss_logstd(m1, s1, m2, s2, f32):
    """2 KL per coordinate, log standard deviations."""
    dm = m1 - m2
    return expm1mx_for(2.0 * (s1 - s2), f32) + dm * dm * vexp(-2.0 * s2)


@_njit
def vgauss_logvar_prior(m, s, f32):
    """2 KL to N(0, 1) per coordinate, log variance."""
    return expm1mx_for(s, f32) + m * m


@_njit
def vgauss_logstd_prior(m, s, f32):
    """2 KL to N(0, 1) per coordinate, log standard deviation."""
    return expm1mx_for(2.0 * s, f32) + m * m


@_njit
def bad_finite(x):
    """1.0 for NaN or +-inf."""
    return 0.0 if x - x == 0.0 else 1.0


@_njit
def bad_positive(x):
    """1.0 unless 0 < x < inf."""
    return 0.0 if (x > 0.0 and x < INF) else 1.0
