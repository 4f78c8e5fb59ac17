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

/* Gaussian scales, as the API codes them. */
enum { KL_SCALE_VAR = 0, KL_SCALE_STD = 1, KL_SCALE_LOGVAR = 2, KL_SCALE_LOGSTD = 3 };

#endif
