/*
 * kl_binary.h -- the elementwise family of kl_fast's Cython backend:
 * binary KL divergence, binary cross-entropy and the k1/k2/k3 sample
 * estimators of KL, one value per element (no category axis).
 *
 * Layout: a row piece of n elements of two inputs (any strides, float32 or
 * float64) is computed in contiguous double chunks by one plain loop per
 * operation (kl_bin_acc), multi-versioned like kl_blocks.h's loops so that
 * it runs as AVX-512 / AVX2 SIMD code.  Every term is branch-free (selects,
 * full-range vector log/exp of kl_vmath.h), so there are no odd lanes: the
 * result of an element depends on its two inputs only, never on its
 * neighbours, the layout, the clone or the thread -- the results are
 * bit-identical for any thread count.  The Numba backend
 * (kl_fast/_numba/elementwise.py) mirrors this file operation for operation.
 *
 * Validation is folded into the same loop: an integer count of bad values
 * (integer adds vectorize; a double sum would not without reassociation),
 * and the caller scans a piece for its first bad index only when the count
 * is not zero.
 */
#ifndef KL_FAST_BINARY_H
#define KL_FAST_BINARY_H

#include <stddef.h>
#include <stdint.h>
#include "kl_vmath.h"
#include "kl_blocks.h"      /* KL_CLONES, KL_CHUNK, kl_vexpm1mx */

/* Operation codes (kl_fast/_elementwise.py builds them). */
enum {
    KL_OP_KL = 0,           /* + 2 * p_logits + q_logits, + 4 with eps smoothing: 0..7 */
    KL_OP_BCE_PROB = 8,     /* y, q probabilities */
    KL_OP_BCE_PROB_EPS = 9,
    KL_OP_BCE_LOGITS = 10,  /* q logits, softplus form */
    KL_OP_BCE_LOGITS_EPS = 11,
    KL_OP_K1 = 12,          /* kl_estimate from logp, logq */
    KL_OP_K2 = 13,
    KL_OP_K3 = 14
};

#define KL_LOG_2P900 623.8324625039508     /* 900 log 2, rounded */

/* ---- validation predicates (1 = invalid) -------------------------------- */
KL_INLINE int kl_bad_prob(double x) { return !(x >= 0.0 && x <= 1.0); }
KL_INLINE int kl_bad_nan(double x) { return x != x; }
KL_INLINE int kl_bad_nonfinite(double x) { return !(x - x == 0.0); }
KL_INLINE int kl_bad_logq(double x) { return x != x || x == INFINITY; }

/* Is value x of argument `arg` (0 or 1) invalid for operation `op`? */
KL_INLINE int kl_bin_bad(int op, int arg, double x)
{
    if (op < KL_OP_BCE_PROB) {
        int logits = arg == 0 ? (op >> 1) & 1 : op & 1;
        return logits ? kl_bad_nan(x) : kl_bad_prob(x);
    }
    if (op < KL_OP_K1) {
        if (arg == 0) return kl_bad_prob(x);
        return op >= KL_OP_BCE_LOGITS ? kl_bad_nan(x) : kl_bad_prob(x);
    }
    return arg == 0 ? kl_bad_nonfinite(x) : kl_bad_logq(x);
}

/* ---- the math ------------------------------------------------------------ */

/* x log(x/y) - d with d = x - y given accurately: one Bregman term of the
 * binary KL, >= 0.  With s = d / (x + y), x/y = (1 + s)/(1 - s) and
 * log(x/y) = 2 atanh s = 2 s (1 + s^2 B(s^2)), B = 1/3 + s^2/5 + ..., so
 *     x log(x/y) - d = d s (1 + s (1 + s) B(s^2))
 * exactly: a product of non-negative factors (d s >= 0), no cancellation
 * however close x and y are.  For |s| <= 1/3 (x/y in [1/2, 2]) 18 terms of
 * B reach double precision.  Outside, x log(x/y) - d loses at most a few
 * bits; log(x/y) = log r + e/(y r) with r = x/y rounded and e = x - r y its
 * exact residual (fma), as kl_vrel_entr does.  Where x/y would overflow,
 * y is first scaled up by 2^900 and 900 log 2 added back to log r (both
 * positive there: no cancellation).  x = 0 gives y.  y = 0 < x gives
 * x (log x - ly0) - d: ly0 is log y where y underflowed (-|a| for the
 * sigmoid of a logit a beyond -745: the result is then finite, as it should
 * be) and -inf for a true zero (+inf); lx0 likewise for x.  The same form
 * serves every y below ylim: DBL_MIN for a sigmoid (a subnormal sigmoid has
 * lost its digits, -|a| has not), the smallest subnormal (i.e. only 0) for
 * a stored probability. */
KL_INLINE double kl_vbregman(double d, double x, double y, double lx0, double ly0,
                               double ylim)
{
    double s = d / (x + y);
    int band = s >= -1.0 / 3 && s <= 1.0 / 3;
    double sb = band ? s : 0.0, s2 = sb * sb, b = 1.0 / 37;
    b = b * s2 + 1.0 / 35; b = b * s2 + 1.0 / 33; b = b * s2 + 1.0 / 31;
    b = b * s2 + 1.0 / 29; b = b * s2 + 1.0 / 27; b = b * s2 + 1.0 / 25;
    b = b * s2 + 1.0 / 23; b = b * s2 + 1.0 / 21; b = b * s2 + 1.0 / 19;
    b = b * s2 + 1.0 / 17; b = b * s2 + 1.0 / 15; b = b * s2 + 1.0 / 13;
    b = b * s2 + 1.0 / 11; b = b * s2 + 1.0 / 9;  b = b * s2 + 1.0 / 7;
    b = b * s2 + 1.0 / 5;  b = b * s2 + 1.0 / 3;
    double series = (d * sb) * (1.0 + (sb * (1.0 + sb)) * b);
    int zero = y < ylim;
    int tiny = y * 0x1p1000 < x;            /* x/y would overflow: |log(x/y)| > 693 */
    double ys = zero ? 1.0 : (tiny ? y * 0x1p900 : y);
    double shift = zero ? -ly0 : (tiny ? KL_LOG_2P900 : 0.0);
    double r = x / ys;
    double e = __builtin_fma(-r, ys, x);
    double lr = kl_vlog(r) + shift;
    double far = __builtin_fma(x, lr, e) - d;
    double t = band ? series : far;
    /* x = 0: the term is y, unless x only underflowed and y is a true 0 */
    double t0 = (y == 0.0 && ly0 == -INFINITY && lx0 > -INFINITY) ? INFINITY : y;
    return (x == 0.0) ? t0 : t;
}

/* (sigmoid(a), sigmoid(-a)), each to a few ulps: exp(-|a|) never overflows,
 * and the smaller of the pair is formed directly, never as 1 - the larger.
 * a = +-inf gives (1, 0) / (0, 1). */
KL_INLINE void kl_vsigmoid_pair(double a, double* v, double* vc)
{
    double e = kl_vexp(-fabs(a));
    double big = 1.0 / (1.0 + e);
    double small = e / (1.0 + e);
    *v = a >= 0.0 ? big : small;
    *vc = a >= 0.0 ? small : big;
}

/* (x, 1 - x) of a probability, or the sigmoid pair of a logit; *l0 is the
 * log of whichever of the two is 0 (-|a| where a sigmoid underflowed: log
 * sigmoid(-|a|) = -|a| - log1p(e^-|a|) = -|a| in double there) */
KL_INLINE void kl_vbern(double a, int logits, double* v, double* vc, double* l0)
{
    if (logits) {
        kl_vsigmoid_pair(a, v, vc);
        *l0 = -fabs(a);
    } else {
        *v = a;
        *vc = 1.0 - a;
        *l0 = -INFINITY;
    }
}

/* |a - b| up to which binary KL from two logits takes the log1p form
 * (kl_vbinary_kl) */
#define KL_BIN_NEAR 2.0

/* KL(Bern(p) || Bern(q)) = B(p - q; p, q) + B(q - p; 1 - p, 1 - q), with B
 * kl_vbregman.  The difference d = p - q is the accurate part: exact for two
 * probabilities (Sterbenz, p - q near 0 or (1 - q) - (1 - p) near 1); for two
 * logits a, b within 1 of each other, p - q = q (1 - p) expm1(a - b) since
 * p/q - 1 = sigmoid(-a) expm1(a - b).  eps smoothing maps every probability
 * x to (x + eps) / (1 + 2 eps) and d to d / (1 + 2 eps). */
KL_INLINE double kl_vbinary_kl(double a, double b, int pl, int ql, int smooth, double eps,
                               double den)
{
    double p, pc, q, qc, d, lp0, lq0;
    kl_vbern(a, pl, &p, &pc, &lp0);
    kl_vbern(b, ql, &q, &qc, &lq0);
    d = (p + q <= 1.0) ? p - q : qc - pc;
    if (pl && ql) {
        double delta = a - b;
        double near = q * (pc * (kl_vexpm1mx(delta) + delta));
        d = fabs(delta) <= 1.0 ? near : d;
    }
    if (smooth) {
        p = (p + eps) / den; pc = (pc + eps) / den;
        q = (q + eps) / den; qc = (qc + eps) / den;
        d = d / den;
    }
    double lim = (ql && !smooth) ? DBL_MIN : 0x1p-1074;
    double t = kl_vbregman(d, p, q, lp0, lq0, lim) + kl_vbregman(-d, pc, qc, lp0, lq0, lim);
    if (pl && ql && !smooth) {
        /* Two logits not far apart: with u = sigmoid(-|a|) <= 1/2, v = 1 - u
         * (the sigmoid pair of a) and e = sign(a) (a - b) (KL is unchanged by
         * a, b -> -a, -b),
         *     KL = log(v exp(-u e) + u exp(v e))
         *        = log1p(v expm1mx(-u e) + u expm1mx(v e)):
         * a log1p of a sum of two non-negative terms, so nothing cancels and
         * no sigmoid value enters a difference (the Bregman terms amplify the
         * rounding of p and q ~10x near |a - b| ~ 1).  Beyond KL_BIN_NEAR the
         * rounding of u e and v e inside the exps costs more than the Bregman
         * terms lose (500-point accuracy table: 3.4 eps at most with 2, 5.4
         * with 30), and the Bregman form is kept. */
        double delta = a - b;
        int near = fabs(delta) <= KL_BIN_NEAR;
        double u = a >= 0.0 ? pc : p, v = a >= 0.0 ? p : pc;
        double e = near ? (a >= 0.0 ? delta : -delta) : 0.0;
        double w = v * kl_vexpm1mx(-(u * e)) + u * kl_vexpm1mx(v * e);
        double tn = kl_vlog1p(w);
        t = near ? tn : t;
    }
    return t < 0.0 ? 0.0 : t;
}

/* -w log(v) with 0 log 0 = 0: w = 0 gives 0 whatever v (but NaN) */
KL_INLINE double kl_vneg_wlog(double w, double log_v) { return w == 0.0 ? 0.0 : -w * log_v; }

/* Smoothed binary cross-entropy from the smaller of (q, 1 - q): with
 * s' = (s + eps) / (1 + 2 eps) the other is 1 - s' in exact arithmetic, so
 * log(s') and log1p(-s') give both logs accurately (log of the larger one,
 * formed as a rounded number near 1, would lose digits). */
KL_INLINE double kl_vbce_smooth(double y, double small, int small_is_q, double eps, double den)
{
    double yc = ((1.0 - y) + eps) / den;
    double ys = (y + eps) / den;
    double ss = (small + eps) / den;
    double ls = kl_vlog(ss), lb = kl_vlog1p(-ss);
    return kl_vneg_wlog(ys, small_is_q ? ls : lb) + kl_vneg_wlog(yc, small_is_q ? lb : ls);
}

/* -(y log q + (1 - y) log(1 - q)), q a probability; log(1 - q) = log1p(-q) */
KL_INLINE double kl_vbce_prob(double y, double q, int smooth, double eps, double den)
{
    if (smooth) return kl_vbce_smooth(y, q <= 0.5 ? q : 1.0 - q, q <= 0.5, eps, den);
    return kl_vneg_wlog(y, kl_vlog(q)) + kl_vneg_wlog(1.0 - y, kl_vlog1p(-q));
}

/* The same from a logit x.  Without smoothing, the softplus form
 *     max(x, 0) - x y + log1p(exp(-|x|)) = w |x| + log1p(exp(-|x|)),
 * w = 1 - y for x >= 0 and y for x < 0: all terms >= 0, and w = 0 makes the
 * linear term 0 even at x = +-inf.  With smoothing, via the sigmoid pair. */
KL_INLINE double kl_vbce_logits(double y, double x, int smooth, double eps, double den)
{
    if (smooth) {
        double q, qc;
        kl_vsigmoid_pair(x, &q, &qc);
        return kl_vbce_smooth(y, x >= 0.0 ? qc : q, !(x >= 0.0), eps, den);
    }
    double ax = fabs(x);
    double w = x >= 0.0 ? 1.0 - y : y;
    double lin = w == 0.0 ? 0.0 : w * ax;
    return lin + kl_vlog1p(kl_vexp(-ax));
}

/* k1, k2, k3 of log r = logq - logp (Schulman's estimators of KL(p || q)):
 * -log r, (log r)^2 / 2 and expm1(log r) - log r.  For k3, x = log r:
 * the Taylor series x^2 (1/2! + x/3! + ... + x^28/30!) on [-1, 3] (no
 * cancellation worth a bit there; 1/k! are the doubles nearest to them),
 * e^x + (-1 - x) below (two positive terms) and (e^x - 1) - x above (e^x
 * dominates): accurate to a few eps and never negative. */
KL_INLINE double kl_vk1(double lp, double lq) { return lp - lq; }
KL_INLINE double kl_vk2(double lp, double lq) { double lr = lq - lp; return 0.5 * lr * lr; }
KL_INLINE double kl_vk3(double lp, double lq)
{
    double x = lq - lp;
    /* x + dx == lq - lp exactly (TwoSum), and k3(x + dx) = k3(x) + (e^x - 1) dx:
     * without it the rounding of x alone costs x eps / 2 relative for large x */
    double bb = x - lq;
    double dx = (lq - (x - bb)) + (-lp - bb);
    dx = (dx - dx == 0.0) ? dx : 0.0;
    int band = x >= -1.0 && x <= 3.0;
    double xb = band ? x : 0.0;
    double c = 3.7699876288159054e-33;
    c = c * xb + 1.1309962886447718e-31;
    c = c * xb + 3.279889237069838e-30;
    c = c * xb + 9.183689863795546e-29;
    c = c * xb + 2.4795962632247972e-27;
    c = c * xb + 6.446950284384474e-26;
    c = c * xb + 1.6117375710961184e-24;
    c = c * xb + 3.8681701706306835e-23;
    c = c * xb + 8.896791392450574e-22;
    c = c * xb + 1.9572941063391263e-20;
    c = c * xb + 4.110317623312165e-19;
    c = c * xb + 8.22063524662433e-18;
    c = c * xb + 1.5619206968586225e-16;
    c = c * xb + 2.8114572543455206e-15;
    c = c * xb + 4.779477332387385e-14;
    c = c * xb + 7.647163731819816e-13;
    c = c * xb + 1.1470745597729725e-11;
    c = c * xb + 1.6059043836821613e-10;
    c = c * xb + 2.08767569878681e-09;
    c = c * xb + 2.505210838544172e-08;
    c = c * xb + 2.755731922398589e-07;
    c = c * xb + 2.7557319223985893e-06;
    c = c * xb + 2.48015873015873e-05;
    c = c * xb + 0.0001984126984126984;
    c = c * xb + 0.001388888888888889;
    c = c * xb + 0.008333333333333333;
    c = c * xb + 0.041666666666666664;
    c = c * xb + 0.16666666666666666;
    c = c * xb + 0.5;
    double e = kl_vexp(x);
    double far = x < 0.0 ? e + (-1.0 - x) : (e - 1.0) - x;
    double fix = (e < INFINITY) ? (e - 1.0) * dx : 0.0;   /* k3 is inf where e^x is */
    return (band ? (xb * xb) * c : far) + fix;
}

/* k3 for float32 inputs: expm1mx(lq - lp) to 2^-38 relative
 * (kl_vexpm1mx_f32).  lq - lp of two floats is exact in double unless their
 * exponents are ~29 apart; then its relative error u moves k3 by at most
 * |x| u relative, below 709 u where k3 is finite. */
KL_INLINE double kl_vk3_f32(double lp, double lq) { return kl_vexpm1mx_f32(lq - lp); }

/* The fast tier of binary KL between two float32 probabilities (op 0): the
 * plain form t = p log(p/q) + (1 - p) log((1 - p)/(1 - q)) with fdlibm's log
 * (kl_vlog_normal), and a rigorous bound on its error.  For p, q in (0, 1)
 * (float32, so 1 - p >= 2^-24 and every ratio is a normal double): each log
 * is within 2u |L| + u of the log of the exact ratio (ratio rounding u, log
 * < 1 ulp), each product adds u, 1 - p and 1 - q are within u relative; in
 * all |t - KL| <= 5u (|t1| + |t2|) + 3.01u < 8u (|t1| + |t2| + 1).  The
 * element keeps t when that bound is below tol t (tol = 2^-27: the float32
 * result is then within 0.5 + 1/8 ulp); the rest -- p near q, where the two
 * parts cancel, and any p or q outside (0, 1) -- take kl_vbinary_kl.
 * Returns t, and in *fail 1 for an element that needs the accurate form. */
KL_INLINE double kl_vbinary_kl_fast(double p, double q, double tol, int* fail)
{
    int inside = p > 0.0 && p < 1.0 && q > 0.0 && q < 1.0;
    double x = inside ? p : 0.5, y = inside ? q : 0.25;
    double xc = 1.0 - x, yc = 1.0 - y;
    double t1 = x * kl_vlog_normal(x / y);
    double t2 = xc * kl_vlog_normal(xc / yc);
    double t = t1 + t2;
    double bound = 8.0 * 0x1p-53 * (fabs(t1) + fabs(t2) + 1.0);
    *fail = !(inside && bound <= tol * t);
    return t;
}

#define KL_BIN_FAST_TOL 0x1p-27     /* the fast tiers' tol (as _cython.spaces's FAST_TOL_F32) */

/* ---- the loops ------------------------------------------------------------ */

#define KL_BIN_LOOP(EXPR, BAD_A, BAD_B)                                                \
    for (ptrdiff_t j = 0; j < n; ++j) {                                                \
        double x = a[j], y = b[j];                                                     \
        o[j] = EXPR;                                                                   \
        nb += BAD_A(x) + BAD_B(y);                                                     \
    }                                                                                  \
    break;

#define KL_PB(X) kl_bad_prob(X)
#define KL_NB(X) kl_bad_nan(X)

/* Binary KL of float32 probabilities (op 0) in two tiers: the fast form for
 * every element, then kl_vbinary_kl for those whose bound failed; into the
 * doubles o[0..n), n <= KL_CHUNK.  One body for both inputs it reads: the
 * staged doubles (kl_bin_acc) and a float32 row in place (kl_bin_f32_direct),
 * the same operations on the same (exactly widened) values either way. */
#define KL_DEFINE_BIN_KL_TWO_TIER(NAME, T)                                             \
KL_INLINE int64_t NAME(const T* a, const T* b, double* o, ptrdiff_t n)                 \
{                                                                                      \
    unsigned char fail[KL_CHUNK];                                                      \
    int64_t nb = 0, n_fail = 0;                                                        \
    for (ptrdiff_t j = 0; j < n; ++j) {                                                \
        int f;                                                                         \
        double x = (double) a[j], y = (double) b[j];                                   \
        o[j] = kl_vbinary_kl_fast(x, y, KL_BIN_FAST_TOL, &f);                          \
        fail[j] = (unsigned char) f;                                                   \
        n_fail += f;                                                                   \
        nb += kl_bad_prob(x) + kl_bad_prob(y);                                         \
    }                                                                                  \
    if (n_fail > 0)                                                                    \
        for (ptrdiff_t j = 0; j < n; ++j)                                              \
            if (fail[j])                                                               \
                o[j] = kl_vbinary_kl((double) a[j], (double) b[j], 0, 0, 0, 0.0, 1.0); \
    return nb;                                                                         \
}

KL_DEFINE_BIN_KL_TWO_TIER(kl_bin_kl_two_tier, double)
KL_DEFINE_BIN_KL_TWO_TIER(kl_bin_kl_two_tier_f32, float)

/* out[j] = op(a[j], b[j]) / log_base over contiguous doubles; returns the
 * number of invalid values seen.  One plain loop per operation (the
 * vectorizer gives up on loops that mix optional work).  f32 = 1 for values
 * that came from float32 inputs: binary KL and k3 then take their float32
 * forms (their float32 results cannot see the difference). */
KL_CLONES __attribute__((noinline)) static int64_t kl_bin_acc(
    int op, const double* a, const double* b, double* o, ptrdiff_t n, double eps, double den,
    double log_base, int f32)
{
    int64_t nb = 0;
    if (f32 && op == 0)
        nb = kl_bin_kl_two_tier(a, b, o, n);
    else if (f32 && op == KL_OP_K3) {
        for (ptrdiff_t j = 0; j < n; ++j) {
            double x = a[j], y = b[j];
            o[j] = kl_vk3_f32(x, y);
            nb += kl_bad_nonfinite(x) + kl_bad_logq(y);
        }
    } else
    switch (op) {
    case 0: KL_BIN_LOOP(kl_vbinary_kl(x, y, 0, 0, 0, eps, den), KL_PB, KL_PB)
    case 1: KL_BIN_LOOP(kl_vbinary_kl(x, y, 0, 1, 0, eps, den), KL_PB, KL_NB)
    case 2: KL_BIN_LOOP(kl_vbinary_kl(x, y, 1, 0, 0, eps, den), KL_NB, KL_PB)
    case 3: KL_BIN_LOOP(kl_vbinary_kl(x, y, 1, 1, 0, eps, den), KL_NB, KL_NB)
    case 4: KL_BIN_LOOP(kl_vbinary_kl(x, y, 0, 0, 1, eps, den), KL_PB, KL_PB)
    case 5: KL_BIN_LOOP(kl_vbinary_kl(x, y, 0, 1, 1, eps, den), KL_PB, KL_NB)
    case 6: KL_BIN_LOOP(kl_vbinary_kl(x, y, 1, 0, 1, eps, den), KL_NB, KL_PB)
    case 7: KL_BIN_LOOP(kl_vbinary_kl(x, y, 1, 1, 1, eps, den), KL_NB, KL_NB)
    case KL_OP_BCE_PROB: KL_BIN_LOOP(kl_vbce_prob(x, y, 0, eps, den), KL_PB, KL_PB)
    case KL_OP_BCE_PROB_EPS: KL_BIN_LOOP(kl_vbce_prob(x, y, 1, eps, den), KL_PB, KL_PB)
    case KL_OP_BCE_LOGITS: KL_BIN_LOOP(kl_vbce_logits(x, y, 0, eps, den), KL_PB, KL_NB)
    case KL_OP_BCE_LOGITS_EPS: KL_BIN_LOOP(kl_vbce_logits(x, y, 1, eps, den), KL_PB, KL_NB)
    case KL_OP_K1: KL_BIN_LOOP(kl_vk1(x, y), kl_bad_nonfinite, kl_bad_logq)
    case KL_OP_K2: KL_BIN_LOOP(kl_vk2(x, y), kl_bad_nonfinite, kl_bad_logq)
    default: KL_BIN_LOOP(kl_vk3(x, y), kl_bad_nonfinite, kl_bad_logq)
    }
    if (log_base != 1.0)
        for (ptrdiff_t j = 0; j < n; ++j) o[j] = o[j] / log_base;
    return nb;
}

/* Binary KL (op 0) and k3 of unit-stride float32 rows, read and written as
 * float32 in the loop (no staging copies: a third of the call's time); the
 * same operations on the same doubles as the staged path, so the same bits. */
KL_CLONES __attribute__((noinline)) static int64_t kl_bin_f32_direct(
    int op, const float* a, const float* b, float* out, ptrdiff_t n, double log_base)
{
    int64_t nb = 0;
    if (op == KL_OP_K3) {
        for (ptrdiff_t j = 0; j < n; ++j) {
            double x = a[j], y = b[j];
            double v = kl_vk3_f32(x, y);
            out[j] = (float) (log_base != 1.0 ? v / log_base : v);
            nb += kl_bad_nonfinite(x) + kl_bad_logq(y);
        }
        return nb;
    }
    for (ptrdiff_t c = 0; c < n; c += KL_CHUNK) {
        ptrdiff_t m = n - c < KL_CHUNK ? n - c : KL_CHUNK;
        double o[KL_CHUNK];
        nb += kl_bin_kl_two_tier_f32(a + c, b + c, o, m);
        for (ptrdiff_t j = 0; j < m; ++j)
            out[c + j] = (float) (log_base != 1.0 ? o[j] / log_base : o[j]);
    }
    return nb;
}

/* One row piece: n elements of a (stride sa) and b (stride sb), in elements,
 * into the contiguous out.  Float64 unit-stride data runs in place; anything
 * else through small contiguous double buffers, so every layout and dtype
 * runs the same loop and gives the same bits. */
#define KL_DEFINE_BIN_PIECE(T, SUFFIX)                                                 \
static int64_t kl_bin_piece_##SUFFIX(int op, const T* a, ptrdiff_t sa, const T* b,     \
                                     ptrdiff_t sb, T* out, ptrdiff_t n, double eps,    \
                                     double den, double log_base)                      \
{                                                                                      \
    double ba[KL_CHUNK], bb[KL_CHUNK], bo[KL_CHUNK];                                   \
    int64_t nb = 0;                                                                    \
    if (sizeof(T) == sizeof(double) && sa == 1 && sb == 1)                             \
        return kl_bin_acc(op, (const double*) a, (const double*) b, (double*) out, n,  \
                          eps, den, log_base, 0);                                      \
    if (sizeof(T) == sizeof(float) && sa == 1 && sb == 1 && (op == 0 || op == KL_OP_K3)) \
        return kl_bin_f32_direct(op, (const float*) a, (const float*) b, (float*) out, n, \
                                 log_base);                                            \
    for (ptrdiff_t c = 0; c < n; c += KL_CHUNK) {                                      \
        ptrdiff_t m = n - c < KL_CHUNK ? n - c : KL_CHUNK;                             \
        for (ptrdiff_t j = 0; j < m; ++j) ba[j] = a[(c + j) * sa];                     \
        for (ptrdiff_t j = 0; j < m; ++j) bb[j] = b[(c + j) * sb];                     \
        nb += kl_bin_acc(op, ba, bb, bo, m, eps, den, log_base, sizeof(T) == 4);       \
        for (ptrdiff_t j = 0; j < m; ++j) out[c + j] = (T) bo[j];                      \
    }                                                                                  \
    return nb;                                                                         \
}                                                                                      \
/* first invalid element of a piece: its index, and in *arg which input */             \
static ptrdiff_t kl_bin_first_bad_##SUFFIX(int op, const T* a, ptrdiff_t sa,           \
                                           const T* b, ptrdiff_t sb, ptrdiff_t n,      \
                                           int* arg)                                   \
{                                                                                      \
    for (ptrdiff_t j = 0; j < n; ++j) {                                                \
        if (kl_bin_bad(op, 0, a[j * sa])) { *arg = 0; return j; }                      \
        if (kl_bin_bad(op, 1, b[j * sb])) { *arg = 1; return j; }                      \
    }                                                                                  \
    return -1;                                                                         \
}

KL_DEFINE_BIN_PIECE(float, f32)
KL_DEFINE_BIN_PIECE(double, f64)

/* one value, for the tests of the math (kl_fast._cython.elementwise.point);
 * f32 = 1: the form float32 inputs take */
static double kl_bin_point(int op, double a, double b, double eps, double den, int f32)
{
    double o;
    kl_bin_acc(op, &a, &b, &o, 1, eps, den, 1.0, f32);
    return o;
}

#endif
