/*
 * kl_math.h -- the scalar math of kl_fast for the Cython backend.
 *
 * Every quantity is written once here as a point function named after its
 * scipy.special twin; the row loops in _kernels_cython.pyx only call these.
 * The Numba backend (kl_fast/_numba_math.py) mirrors this file line by line.
 *
 * Edge-case contract (scipy.special conventions):
 *   rel_entr(p, q) = p log(p/q);  0 if p == 0 and q >= 0;  +inf if p > 0, q == 0;
 *                    NaN if either is NaN.
 *   entr(p)        = -p log p;    0 if p == 0.
 *   neg_xlogy(p,q) = -p log q;    0 if p == 0 (whatever q);  +inf if p > 0, q == 0.
 *
 * Never compile with -ffast-math: it folds the isnan/isinf tests below away.
 */
#ifndef KL_FAST_MATH_H
#define KL_FAST_MATH_H

#include <math.h>
#include <float.h>

#if defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__
#error "kl_fast must not be compiled with -ffast-math / -ffinite-math-only"
#endif

static inline int kl_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* p log(p/q), accurate where p ~ q.  When 1/2 < p/q < 2, p - q is exact
 * (Sterbenz), so log1p((p - q)/q) keeps the digits that log(p/q) loses to the
 * rounding of p/q: a naive p*log(p/q) is ~1e5 times worse on nearly equal
 * rows (research/reliability notes, 1.2).  Outside that band p/q may
 * overflow or underflow, so fall back to log p - log q there. */
static inline double kl_rel_entr(double p, double q)
{
    if (isnan(p) || isnan(q)) return p + q;
    if (p > 0.0 && q > 0.0) {
        double r = p / q;
        if (r > 0.5 && r < 2.0) return p * log1p((p - q) / q);
        if (r > DBL_MIN && r < DBL_MAX) return p * log(r);
        return p * (log(p) - log(q));
    }
    if (p == 0.0 && q >= 0.0) return 0.0;
    return INFINITY;
}

/* Jensen-Shannon term 1/2 [rel_entr(p, m) + rel_entr(q, m)], m = (p + q)/2.
 * The rounding e of p + q would shift both terms by a first-order -p e/2m and
 * -q e/2m, swamping the second-order result when p ~ q; TwoSum gives e
 * exactly and the correction is -e/2 in total.  Exact e keeps the term
 * symmetric in (p, q) bit for bit, and p == q gives exactly 0. */
static inline double kl_js_term(double p, double q)
{
    if (p == 0.0 && q == 0.0) return 0.0;
    double s = p + q;
    double bq = s - p;
    double e = (p - (s - bq)) + (q - bq);   /* p + q == s + e exactly */
    double t = kl_rel_entr(p, 0.5 * s) + kl_rel_entr(q, 0.5 * s);
    return 0.5 * (isfinite(e) ? t - e : t);
}

static inline double kl_entr(double p)
{
    if (p > 0.0) return -p * log(p);
    if (p == 0.0) return 0.0;
    if (isnan(p)) return p;
    return -INFINITY;
}

static inline double kl_neg_xlogy(double p, double q)
{
    if (p == 0.0 && !isnan(q)) return 0.0;
    return -p * log(q);
}

/* log1p(x) - x without cancellation, for x in [-1/2, 1] (callers handle the
 * rest).  With s = x/(2+x), log1p(x) = 2 atanh(s) and 2s - x = -x s exactly
 * in real arithmetic, so
 *     log1p(x) - x = -x s + 2 s^3 (1/3 + s^2/5 + s^4/7 + ...),
 * where the first term dominates (ratio >= 3/|s|) and nothing cancels.
 * |s| <= 1/3 there, so 18 terms reach double precision. */
static const double KL_ATANH_COEF[18] = {
    1.0/3, 1.0/5, 1.0/7, 1.0/9, 1.0/11, 1.0/13, 1.0/15, 1.0/17, 1.0/19,
    1.0/21, 1.0/23, 1.0/25, 1.0/27, 1.0/29, 1.0/31, 1.0/33, 1.0/35, 1.0/37};

static inline double kl_log1pmx_band(double x)
{
    double s = x / (2.0 + x);
    double s2 = s * s;
    double poly = KL_ATANH_COEF[17];
    for (int k = 16; k >= 0; --k) poly = poly * s2 + KL_ATANH_COEF[k];
    return -x * s + 2.0 * s * s2 * poly;
}

static inline int kl_in_log1pmx_band(double x) { return x >= -0.5 && x <= 1.0; }

/* expm1(x) - x without cancellation: Taylor series x^2 (1/2! + x/3! + ...)
 * for |x| <= 1 (terms to 1/20! reach double precision), the direct form
 * beyond, where the cancellation costs at most a factor ~3. */
static const double KL_INV_FACT[19] = {   /* 1/k!, k = 2..20 */
    1.0/2, 1.0/6, 1.0/24, 1.0/120, 1.0/720, 1.0/5040, 1.0/40320,
    1.0/362880, 1.0/3628800, 1.0/39916800, 1.0/479001600,
    1.0/6227020800.0, 1.0/87178291200.0, 1.0/1307674368000.0,
    1.0/20922789888000.0, 1.0/355687428096000.0, 1.0/6402373705728000.0,
    1.0/121645100408832000.0, 1.0/2432902008176640000.0};

static inline double kl_expm1mx(double x)
{
    if (fabs(x) <= 1.0) {
        double poly = KL_INV_FACT[18];
        for (int k = 17; k >= 0; --k) poly = poly * x + KL_INV_FACT[k];
        return x * x * poly;
    }
    return expm1(x) - x;
}

/* u - 1 - log u >= 0, from u - 1 (computed exactly by the caller where it is
 * small) and log u: the series in the band where the two terms cancel,
 * the plain difference elsewhere (|log u| >= log 2 there, no cancellation). */
static inline double kl_u_minus_1_minus_log_u(double u_minus_1, double log_u)
{
    if (kl_in_log1pmx_band(u_minus_1)) return -kl_log1pmx_band(u_minus_1);
    return u_minus_1 - log_u;
}

/* Gaussian scales, as the API codes them. */
enum { KL_SCALE_VAR = 0, KL_SCALE_STD = 1, KL_SCALE_LOGVAR = 2, KL_SCALE_LOGSTD = 3 };

/* 2 KL(N(m1, v1) || N(m2, v2)) for one coordinate, s1/s2 in the given scale:
 *     u - 1 - log u + (m1 - m2)^2 / v2,   u = v1 / v2.
 * u - 1 is formed exactly near u = 1 ((s1 - s2) is exact by Sterbenz), and
 * for log scales u - 1 - log u = expm1(d) - d with d = log u exact, so the
 * term stays accurate and non-negative when the Gaussians nearly coincide
 * (the textbook form had relative error 18 there; research notes 1.3). */
static inline double kl_gauss_term2(int scale, double m1, double s1, double m2, double s2)
{
    double dm = m1 - m2;
    switch (scale) {
    case KL_SCALE_VAR:
        return kl_u_minus_1_minus_log_u((s1 - s2) / s2, log(s1) - log(s2)) + dm * dm / s2;
    case KL_SCALE_STD: {
        double z = dm / s2;
        return kl_u_minus_1_minus_log_u(((s1 - s2) / s2) * ((s1 + s2) / s2),
                                        2.0 * (log(s1) - log(s2))) + z * z;
    }
    case KL_SCALE_LOGVAR:
        return kl_expm1mx(s1 - s2) + dm * dm * exp(-s2);
    default: /* KL_SCALE_LOGSTD */
        return kl_expm1mx(2.0 * (s1 - s2)) + dm * dm * exp(-2.0 * s2);
    }
}

/* 2 KL(N(m, v) || N(0, 1)) for one coordinate: the VAE prior term
 * m^2 + v - 1 - log v. */
static inline double kl_gauss_prior_term2(int scale, double m, double s)
{
    switch (scale) {
    case KL_SCALE_VAR:
        return kl_u_minus_1_minus_log_u(s - 1.0, log(s)) + m * m;
    case KL_SCALE_STD:
        return kl_u_minus_1_minus_log_u((s - 1.0) * (s + 1.0), 2.0 * log(s)) + m * m;
    case KL_SCALE_LOGVAR:
        return kl_expm1mx(s) + m * m;
    default:
        return kl_expm1mx(2.0 * s) + m * m;
    }
}

#endif
