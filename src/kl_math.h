/*
 * kl_math.h -- the scalar math of kl_fast for the Cython backend.
 *
 * Every quantity is written once here as a point function named after its
 * scipy.special twin; the row loops in src/rows.pyx only call these.
 * The Numba backend (kl_fast/_numba/kl_math.py) mirrors this file line by line.
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

/* ---- the f-divergence family (exact scalar forms: the fallbacks of the
 * vector terms in kl_blocks.h, for lanes those cannot take) ---------------- */

/* *s += v with its rounding error added to *e (TwoSum: s + v == t + err exactly):
 * a sum carried as the unevaluated s + e (Renyi of order 0, rows.pyx's
 * _renyi_zero_w; the Numba twin is _numba/kl_math.py's two_sum_add). */
static inline void kl_two_sum_add(double* s, double* e, double v)
{
    double t = *s + v, b = t - *s;
    *e += (*s - (t - b)) + (v - b);
    *s = t;
}

/* (p - q)^2 / q where d / q overflows or d (d / q) underflows: (d / sqrt q)^2
 * over- or underflows only where the exact term does. */
static inline double kl_chi2_term(double p, double q, double c)
{
    (void) c;
    if (p == 0.0 && q == 0.0) return 0.0;
    double d = (p - q) / sqrt(q);
    return d * d;
}

/* log(q/p) for p, q > 0, accurate where q ~ p (as kl_rel_entr). */
static inline double kl_log_ratio(double q, double p)
{
    double r = q / p;
    if (r > 0.5 && r < 2.0) return log1p((q - p) / p);
    if (r > DBL_MIN && r < DBL_MAX) return log(r);
    return log(q) - log(p);
}

/* Renyi's terms with c = 1 - alpha, as kl_vrenyi_w and kl_vrenyi_s:
 * w = p^alpha q^(1-alpha) - p and s = p^alpha q^(1-alpha).  Where e^(c L)
 * overflows, p e^(c L) = e^(log p + c L) may still be finite. */
static inline double kl_renyi_w(double p, double q, double c)
{
    if (isnan(p) || isnan(q) || p < 0.0 || q < 0.0) return NAN;
    if (p == 0.0) return 0.0;
    if (q == 0.0) return c > 0.0 ? -p : INFINITY;
    if (c == 1.0) return q - p;
    double y = c * kl_log_ratio(q, p);
    if (y < 709.0) return p * expm1(y);
    return exp(log(p) + y) - p;
}

static inline double kl_renyi_s(double p, double q, double c)
{
    if (isnan(p) || isnan(q) || p < 0.0 || q < 0.0) return NAN;
    if (p == 0.0) return 0.0;
    if (q == 0.0) return c > 0.0 ? 0.0 : INFINITY;
    if (c == 1.0) return q;
    double y = c * kl_log_ratio(q, p);
    if (y < 709.0) return p * exp(y);
    return exp(log(p) + y);
}

/* log(p^alpha q^(1-alpha)) = log p + c log(q/p) for the log-domain tier (rows
 * whose sum S over- or underflows); -inf where the term is 0, +inf where it is
 * infinite. */
static inline double kl_renyi_log_term(double p, double q, double c)
{
    if (isnan(p) || isnan(q) || p < 0.0 || q < 0.0) return NAN;
    if (p == 0.0) return -INFINITY;
    if (q == 0.0) return c > 0.0 ? -INFINITY : INFINITY;
    return log(p) + c * kl_log_ratio(q, p);
}

/* Gaussian scales, as the API codes them. */
enum { KL_SCALE_VAR = 0, KL_SCALE_STD = 1, KL_SCALE_LOGVAR = 2, KL_SCALE_LOGSTD = 3 };

#endif
