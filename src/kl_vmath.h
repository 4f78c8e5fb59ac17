/*
 * kl_vmath.h -- vectorizable log, log1p and exp for kl_fast's Cython kernels.
 *
 * Why: the libm log is a function call the compiler cannot vectorize, and
 * -ffast-math (which would let it substitute a vector log) breaks inf and
 * NaN.  These are branch-free (special cases are selects, which vectorize as
 * blends) so that a loop calling them compiles to SIMD code, and they work on
 * the float's bits as fdlibm does:
 *
 *   log:   x = 2^k z, z in [sqrt(2)/2, sqrt(2)), f = z - 1 exactly,
 *          log(1+f) = f - f^2/2 + s (f^2/2 + R(s^2)), s = f/(2+f),
 *          with fdlibm's Lg1..Lg7 minimax coefficients (error < 1 ulp).
 *   log1p: u = 1 + x rounded, c = x - (u - 1) its rounding error,
 *          log1p(x) = log(u) + c/u.
 *   exp:   x = k ln2 + r, |r| <= ln2/2 (Cody-Waite two-part ln2), e^r by
 *          fdlibm's rational form 1 + 2r/(2 - c) (error < 1 ulp), times 2^k
 *          built in the exponent bits (two steps at the ends of the range).
 *
 * Special values follow C99: log(0) = -inf, log(x<0) = NaN, log(inf) = inf,
 * exp(-inf) = 0, exp(inf) = inf, NaN in -> NaN out.  The Numba backend
 * (kl_fast/_numba/kl_math.py) mirrors these line by line.  Accuracy is tested
 * against mpmath over the whole range in tests/test_vmath.py.
 */
#ifndef KL_FAST_VMATH_H
#define KL_FAST_VMATH_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Force inlining: the callers are multi-versioned (kl_blocks.h), and an
 * out-of-line copy would be compiled for the baseline target only. */
#if defined(__GNUC__)
#define KL_INLINE static inline __attribute__((always_inline))
#else
#define KL_INLINE static inline
#endif

KL_INLINE uint64_t kl_bits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
KL_INLINE double kl_from_bits(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

#define KL_LN2_HI 6.93147180369123816490e-01
#define KL_LN2_LO 1.90821492927058770002e-10

/* Integer work uses only unsigned adds and logical shifts on 64-bit lanes and
 * converts between integers and doubles through the 1.5 * 2^52 shifter, so
 * that AVX2 (which lacks 64-bit arithmetic shifts and int64 <-> double
 * conversions) vectorizes it too. */
#define KL_SHIFTER 0x1.8p52
#define KL_SHIFTER_BITS 0x4338000000000000ULL

/* fdlibm's log(1 + f) + k ln2 from f, s = f / (2 + f), dk = k and lo, the low
 * part (k ln2_lo, plus log1p's correction): the polynomial in s^2 and the
 * ordered sum, shared by the log forms below (and the benchmark variants of
 * benchmarks/cycles/elementary.c, which form s without the division). */
KL_INLINE double kl_vlog_poly(double f, double s, double dk, double lo)
{
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01,
                 Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01,
                 Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    double z2 = s * s, w = z2 * z2;
    double t1 = w * __builtin_fma(w, __builtin_fma(w, Lg6, Lg4), Lg2);
    double t2 = z2 * __builtin_fma(w, __builtin_fma(w, __builtin_fma(w, Lg7, Lg5), Lg3), Lg1);
    double R = t2 + t1;
    double hfsq = 0.5 * f * f;
    return dk * KL_LN2_HI - ((hfsq - (s * (hfsq + R) + lo)) - f);
}

/* log(x) + c for finite x > 0 (subnormals included) and a tiny correction c
 * (log1p's rounding term, folded in before the last rounding as fdlibm's
 * log1p does); other x are handled by the callers. */
KL_INLINE double kl_vlog_core(double x, double c)
{
    int sub = x < DBL_MIN;                      /* subnormal: scale into the normal range */
    double xs = sub ? x * 0x1p54 : x;
    double kadj = sub ? -54.0 : 0.0;
    uint64_t ix = kl_bits(xs);
    /* kb - 1023 = k with x = 2^k z, z in [sqrt(2)/2, sqrt(2)): offset by the
     * bits of sqrt(2)/2 so the exponent field rounds at sqrt(2) */
    uint64_t kb = (ix + (0x3ff0000000000000ULL - 0x3fe6a09e667f3bcdULL)) >> 52;
    double z = kl_from_bits(ix - (kb << 52) + (1023ULL << 52));
    double f = z - 1.0;
    double s = f / (2.0 + f);
    double dk = (kl_from_bits(KL_SHIFTER_BITS + kb) - KL_SHIFTER) - 1023.0 + kadj;
    return kl_vlog_poly(f, s, dk, dk * KL_LN2_LO + c);
}

/* log(x) for normal, positive, finite x only: no subnormal scaling and no
 * special values, which cost as much as the polynomial (measured: KL 2x
 * faster without them).  The kernels route every other x to the exact
 * scalar path instead (kl_blocks.h's "odd" lanes). */
KL_INLINE double kl_vlog_normal(double x)
{
    uint64_t ix = kl_bits(x);
    uint64_t kb = (ix + (0x3ff0000000000000ULL - 0x3fe6a09e667f3bcdULL)) >> 52;
    double z = kl_from_bits(ix - (kb << 52) + (1023ULL << 52));
    double f = z - 1.0;
    double s = f / (2.0 + f);
    double dk = (kl_from_bits(KL_SHIFTER_BITS + kb) - KL_SHIFTER) - 1023.0;
    return kl_vlog_poly(f, s, dk, dk * KL_LN2_LO);
}

KL_INLINE double kl_vlog(double x)
{
    double r = kl_vlog_core(x > 0.0 && x < INFINITY ? x : 1.0, 0.0);
    r = (x == 0.0) ? -INFINITY : r;
    r = (x == INFINITY) ? INFINITY : r;
    r = (x < 0.0 || x != x) ? NAN : r;
    return r;
}

KL_INLINE double kl_vlog1p(double x)
{
    double u = 1.0 + x;
    double c = x - (u - 1.0);            /* rounding error of 1 + x */
    double safe = (u > 0.0 && u < INFINITY) ? u : 1.0;
    double r = kl_vlog_core(safe, c / safe);
    r = (u == 0.0) ? -INFINITY : r;
    r = (u == INFINITY) ? INFINITY : r;
    r = (x < -1.0 || x != x) ? NAN : r;
    return r;
}

KL_INLINE double kl_vexp(double x)
{
    const double inv_ln2 = 1.44269504088896338700e+00;
    double xc = x > 709.8 ? 709.8 : (x < -745.2 ? -745.2 : x);
    xc = (x != x) ? 0.0 : xc;
    double t = xc * inv_ln2 + KL_SHIFTER;   /* round to nearest in the low bits */
    double kd = t - KL_SHIFTER;
    /* fdlibm e_exp: r = hi - lo, e^r = 1 + 2r/(2 - c) with c = r - r^2 P(r^2),
     * evaluated so that the last rounding falls on a term of size 1 (< 1 ulp) */
    const double P1 = 1.66666666666666019037e-01, P2 = -2.77777777770155933842e-03,
                 P3 = 6.61375632143793436117e-05, P4 = -1.65339022054652515390e-06,
                 P5 = 4.13813679705723846039e-08;
    double hi = xc - kd * KL_LN2_HI;
    double lo = kd * KL_LN2_LO;
    double r = hi - lo;
    double tt = r * r;
    double c = r - tt * (P1 + tt * (P2 + tt * (P3 + tt * (P4 + tt * P5))));
    double p = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    /* 2^k as 2^(k - j) 2^j: j = +-600 at the ends of the range keeps both
     * factors normal (k runs from -1075, subnormal results, to 1024) */
    double j = kd > 1000.0 ? 600.0 : (kd < -1000.0 ? -600.0 : 0.0);
    double sj = kd > 1000.0 ? 0x1p600 : (kd < -1000.0 ? 0x1p-600 : 1.0);
    uint64_t kb = kl_bits((kd - j) + KL_SHIFTER) - KL_SHIFTER_BITS + 1023;
    double y = (p * kl_from_bits(kb << 52)) * sj;
    y = (x > 709.8) ? INFINITY : y;
    y = (x < -745.2) ? 0.0 : y;
    y = (x != x) ? x : y;
    return y;
}

/* exp(x) for the fast tiers only: x in [-708, 709] (callers select the ends
 * and non-finite x themselves), no division -- x = k ln2 + r, |r| <= ln2/2,
 * e^r - 1 by its Taylor polynomial to r^13 (truncation < 4e-18 relative),
 * then times 2^k built in the exponent bits.  About half the cost of
 * kl_vexp (measured, AVX2: 4.1 vs 8.4 cycles an element), and less accurate:
 * relative error below 4 u (u = 2^-53; tests/test_vmath.py measures it).
 * The fast tiers count that error in their bounds. */
KL_INLINE double kl_vexp_fast(double x)
{
    double t = x * 1.44269504088896338700e+00 + KL_SHIFTER;
    double kd = t - KL_SHIFTER;
    double r = (x - kd * KL_LN2_HI) - kd * KL_LN2_LO;
    double p = 1.0 / 6227020800.0;
    p = __builtin_fma(p, r, 1.0 / 479001600.0);
    p = __builtin_fma(p, r, 1.0 / 39916800.0);
    p = __builtin_fma(p, r, 1.0 / 3628800.0);
    p = __builtin_fma(p, r, 1.0 / 362880.0);
    p = __builtin_fma(p, r, 1.0 / 40320.0);
    p = __builtin_fma(p, r, 1.0 / 5040.0);
    p = __builtin_fma(p, r, 1.0 / 720.0);
    p = __builtin_fma(p, r, 1.0 / 120.0);
    p = __builtin_fma(p, r, 1.0 / 24.0);
    p = __builtin_fma(p, r, 1.0 / 6.0);
    p = __builtin_fma(p, r, 0.5);
    p = __builtin_fma(p, r * r, r);
    uint64_t kb = kl_bits(kd + KL_SHIFTER) - KL_SHIFTER_BITS + 1023;
    return (1.0 + p) * kl_from_bits(kb << 52);
}

#endif
