/*
 * kl_spaces.h -- KL divergence, cross-entropy and entropy of one row whose
 * inputs are log-probabilities ("log") or unnormalized logits ("logits").
 * The row arrives as contiguous doubles (the Cython layer has converted it,
 * divided logits by the temperature and normalized counts); ``w`` and ``d``
 * are row-sized scratch so that no exp is taken twice.
 *
 * No softmax array is built: a logits row is normalized through its maximum
 * and log-sum-exp, inside the passes below.
 *
 * The forms (x_k: the p side, y_k: the q side; every sum in 8 lanes, element
 * k to lane k % 8, combined by kl_tree8, so Numba gives the same bits):
 *
 * q in logits, p any: d = (x - y) - (max x - max y) with x = log p up to a
 * constant (the logits themselves when p is in logits too, so that d is
 * exact where the rows nearly coincide), formed in double-double and its
 * rounding carried along; l1p = log sum exp(x - max x), s ~ E_p[d],
 * c = d - s:
 *     KL = S2 + log1p(S1 - S2 + R),  S1 = E_p[expm1(-c) + c] >= 0,
 *     S2 = E_p[c],  R = sum_{p_k = 0} exp((y_k - max y) + s - l1p).
 * This is KL = E_p[c] + log E_p[exp(-c)] (+ q's mass off p's support) and is
 * exact for any shift s; the rounding of S2 cancels to first order and the
 * terms of S1 are >= 0, so logits rows that nearly coincide keep their
 * relative accuracy (distillation), where log_softmax(x) - log_softmax(y)
 * loses every digit (research notes, "Logits").  With p in prob or log
 * space, log p carries its own rounding (eps |log p| per term), which bounds
 * the accuracy of any form: |error| ~ eps sum_k p_k |log p_k|.
 *
 * p in logits, q in prob/log, and neither side in logits: direct terms
 * p_k (log p_k - log q_k), log p = (x - max x) - l1p for logits.  Log-space inputs
 * on both sides are as accurate as given (x - y is exact where they nearly
 * coincide); mixed spaces have the absolute accuracy above.
 *
 * A row whose centred values overflow (rows far apart, |c| > ~700) takes the
 * plain log-sum-exp form instead, which is accurate there (no cancellation).
 */
#ifndef KL_FAST_SPACES_H
#define KL_FAST_SPACES_H

#include <stddef.h>
#include "kl_blocks.h"

enum { KL_SPACE_PROB = 0, KL_SPACE_LOG = 1, KL_SPACE_LOGITS = 2 };

typedef struct {
    double value;     /* the quantity, in nats, unclamped */
    double check_p;   /* prob: sum x; log: sum exp(x); logits: sum exp(x - max) */
    double check_q;   /* the same for the q side */
    int fast;         /* 1: a float32 fast tier took the row -- it read every logit of
                       * the row(s) in logits space and found them all finite, so the
                       * caller's validation need not scan them */
} kl_space_result;

/* one pass over the row in 8 lanes: element k -> lane k % 8.
 *
 * Vectorization note: GCC (12-14) gives up on a loop ("control flow in
 * loop") when one condition feeds two selects, so each loop below tests a
 * condition at most once, and derives the other uses arithmetically from a
 * 0/1 mask (only where the masked value is finite) or by writing the
 * terms so that a zero weight zeroes them. */
#define KL_SP_LANES(N, K, BODY)                                                    \
    do {                                                                           \
        ptrdiff_t nb_ = (N) & ~(ptrdiff_t) 7;                                      \
        for (ptrdiff_t b_ = 0; b_ < nb_; b_ += 8)                                  \
            KL_SIMD for (int l_ = 0; l_ < 8; ++l_) {                               \
                ptrdiff_t K = b_ + l_; int L_ = l_; (void) L_; BODY                    \
            }                                                                          \
        for (ptrdiff_t K = nb_; K < (N); ++K) { int L_ = (int) (K - nb_); (void) L_; BODY } \
    } while (0)

/* A float32 row widened into doubles (exact).  Here and not in the .pyx:
 * the Cython modules are compiled for the baseline target, where this loop
 * runs 2 floats at a time; cloned, it runs 8 (an LLM row of 32,000 logits
 * spent a fifth of its time here). */
KL_CLONES __attribute__((noinline))
static void kl_sp_widen_f32(const float* x, ptrdiff_t sx, ptrdiff_t n, double* buf)
{
    if (sx == 1)
        for (ptrdiff_t j = 0; j < n; ++j) buf[j] = (double) x[j];
    else
        for (ptrdiff_t j = 0; j < n; ++j) buf[j] = (double) x[j * sx];
}

KL_INLINE double kl_sp_max(const double* x, ptrdiff_t n)
{
    double m[8];
    for (int l = 0; l < 8; ++l) m[l] = -INFINITY;
    /* a NaN sticks (x > NaN and NaN != NaN test false after it): the
     * caller's checks report it, and the result is NaN */
    KL_SP_LANES(n, k, { m[L_] = (x[k] > m[L_] || x[k] != x[k]) ? x[k] : m[L_]; });
    double r = -INFINITY;
    for (int l = 0; l < 8; ++l) r = (m[l] > r || m[l] != m[l]) ? m[l] : r;
    return r;
}

/* The minimum of x[:n] in 8 lanes.  The fast tiers bound their error with the
 * most negative of t_k = x_k - m over a row; rounding is monotonic, so that
 * is min x - m, and taking it here keeps a min reduction out of the exp
 * loops (the same value; NaN rows have been turned down by then). */
KL_INLINE double kl_sp_min(const double* x, ptrdiff_t n)
{
    double m[8];
    for (int l = 0; l < 8; ++l) m[l] = INFINITY;
    KL_SP_LANES(n, k, { m[L_] = (x[k] < m[L_]) ? x[k] : m[L_]; });
    double r = INFINITY;
    for (int l = 0; l < 8; ++l) r = (m[l] < r) ? m[l] : r;
    return r;
}

/* The rounding error of t = x - m (TwoSum: x - m == t + lo exactly), 0 where
 * x or m is not finite.  exp(x - m) = exp(t) (1 + lo) to first order: a
 * logit 30 below the maximum would otherwise carry up to 15 eps of rounding
 * into its exp, and a peaked row's entropy or cross-entropy is those tails. */
KL_INLINE double kl_sp_lo(double x, double m, double t)
{
    double bv = t - x;
    double lo = (x - (t - bv)) + (-m - bv);
    return (lo - lo == 0.0) ? lo : 0.0;
}

/* S - 1 for S = sum exp(x - m), m = max x: the elements equal to the
 * maximum (exp(0) = 1 each) are counted apart, so that log S = log1p(S - 1)
 * keeps the digits of a small tail -- a peaked row's entropy or
 * cross-entropy is that tail, and log(S) would round it to eps. */
KL_INLINE double kl_sp_sumexp_m1(const double* x, ptrdiff_t n, double m)
{
    double acc[8] = {0}, cnt[8] = {0};
    KL_SP_LANES(n, k, {
        double t = x[k] - m;
        double e0 = kl_vexp(t);
        double e = __builtin_fma(e0, kl_sp_lo(x[k], m, t), e0);   /* in [0, 1] */
        double top = (x[k] == m) ? 1.0 : 0.0;
        acc[L_] += e - e * top;
        cnt[L_] += top;
    });
    return (kl_tree8(cnt) - 1.0) + kl_tree8(acc);
}

/* the sum check of a logits row: S, or 0 if the row has no finite maximum */
KL_INLINE double kl_sp_normalizer(double m, double sm1)
{
    return (m > -INFINITY && m < INFINITY) ? 1.0 + sm1 : 0.0;
}

/* (a - b) - (sh + sl) as a double-double: the exact difference of two inputs
 * less a constant shift given as a double-double (TwoSum on each step,
 * kl_sp_lo); returns the rounded value and stores its rounding error in *lo
 * (0 where anything is not finite). */
KL_INLINE double kl_sp_shifted_diff(double a, double b, double sh, double sl, double* lo)
{
    /* TwoSum without kl_sp_lo's guard (a select per step would stop the
     * vectorizer): a non-finite a - b gives a NaN *lo, which the c pass
     * (where such elements have weight 0 or make the KL +inf) zeroes */
    double t = a - b;
    double tb = t - a, e = (a - (t - tb)) + (-b - tb);
    double u = t - sh;
    double ub = u - t, f = (t - (u - ub)) + (-sh - ub);
    double v = (e + f) - sl;
    double hi = u + v;
    double hb = hi - u;
    *lo = (u - (hi - hb)) + (v - hb);
    return hi;
}

/* The checks of a row: its sum (lanes, so that normalizing by it gives the
 * same bits in every backend) and its count of values that mean nothing in
 * its space (probabilities: negative, NaN, +inf; log-probabilities: NaN and
 * anything > 0, a probability above 1; logits: NaN, +inf -- -inf is
 * probability 0). */
KL_CLONES __attribute__((noinline))
static double kl_space_scan(int space, const double* x, ptrdiff_t n, double* n_bad)
{
    double acc[8] = {0}, bad[8] = {0};
    if (space == KL_SPACE_PROB)
        KL_SP_LANES(n, k, {
            acc[L_] += x[k];
            bad[L_] += (x[k] >= 0.0 && x[k] < INFINITY) ? 0.0 : 1.0;
        });
    else if (space == KL_SPACE_LOG)
        KL_SP_LANES(n, k, {
            acc[L_] += x[k];
            bad[L_] += (x[k] <= 0.0) ? 0.0 : 1.0;
        });
    else
        KL_SP_LANES(n, k, {
            acc[L_] += x[k];
            bad[L_] += (x[k] != x[k] || x[k] == INFINITY) ? 1.0 : 0.0;
        });
    *n_bad = kl_tree8(bad);
    return kl_tree8(acc);
}

/* p's weights w_k and logs lp_k (stored in w and lp) for its space.  Returns
 * the log-normalizer of a logits row less its maximum, log1p(S - 1), and
 * stores that maximum in *top (0 and 0 for probabilities and log-
 * probabilities, which need no normalizing): log p_k = (x_k - top) - return. */
KL_INLINE double kl_sp_weights(int space, const double* x, ptrdiff_t n, double* w,
                               double* lp, double* check, double* top)
{
    double acc[8] = {0};
    *top = 0.0;
    if (space == KL_SPACE_PROB) {
        KL_SP_LANES(n, k, { w[k] = x[k]; lp[k] = kl_vlog(x[k]); acc[L_] += x[k]; });
        *check = kl_tree8(acc);
        return 0.0;
    }
    if (space == KL_SPACE_LOG) {
        KL_SP_LANES(n, k, { w[k] = kl_vexp(x[k]); lp[k] = x[k]; acc[L_] += w[k]; });
        *check = kl_tree8(acc);
        return 0.0;
    }
    /* logits: e = exp(x - max) once, kept in w and divided by their sum */
    double m = kl_sp_max(x, n), cnt[8] = {0};
    KL_SP_LANES(n, k, {
        double t = x[k] - m;
        double e0 = kl_vexp(t);
        double e = __builtin_fma(e0, kl_sp_lo(x[k], m, t), e0);
        double top = (x[k] == m) ? 1.0 : 0.0;
        w[k] = e;
        acc[L_] += e - e * top;
        cnt[L_] += top;
    });
    double sm1 = (kl_tree8(cnt) - 1.0) + kl_tree8(acc);
    double s = 1.0 + sm1, l1p = kl_vlog1p(sm1);
    *check = kl_sp_normalizer(m, sm1);
    *top = m;
    KL_SP_LANES(n, k, { w[k] = w[k] / s; lp[k] = (x[k] - m) - l1p; });
    return l1p;
}

/* ---- the fast tiers of entropy and cross-entropy from logits ------------
 *
 * For float32 rows (fast_tol > 0), as kl_sp_kl_logits_fast: both quantities
 * are sums of two parts that are >= 0 (log S, and -E[t] with t = y - max y
 * <= 0, weighted by probabilities >= 0), so nothing cancels and the relative
 * error of the result is at most that of its worst part plus a rounding:
 * kl_vexp_fast of t, u (|t| + 4), a product, u, lane sums, u (n / 8 + 3), a
 * division and log1p, 2 u; with a factor 2 for second-order terms, at most
 * 2 u (T + n / 8 + 12) with T = max |t| -- a test on the row's spread alone.
 * The maximum's own terms (exp(0) = 1 exactly) are counted apart, as in the
 * accurate forms, so that log S = log1p(S - 1) keeps a peaked row's tail.
 * Rows with a non-finite logit (or, for cross-entropy, a negative weight)
 * take the accurate forms.  Return 1 and fill *r when taken, else 0. */
KL_INLINE int kl_sp_entropy_fast(const double* x, ptrdiff_t n, double tol, kl_space_result* r)
{
    double m = kl_sp_max(x, n), a1[8] = {0}, a2[8] = {0}, cnt[8] = {0}, tmin[8] = {0};
    double nf[8] = {0};
    KL_SP_LANES(n, k, {
        double t = x[k] - m;
        double keep = ((t >= -708.0) & (t != 0.0)) ? 1.0 : 0.0;
        double e = kl_vexp_fast(t * keep) * keep;
        a1[L_] += e;
        a2[L_] += e * t;
        cnt[L_] += (t == 0.0) ? 1.0 : 0.0;
        tmin[L_] = (t < tmin[L_]) ? t : tmin[L_];
        nf[L_] += (t - t == 0.0) ? 0.0 : 1.0;
    });
    double lo = 0.0;
    for (int l = 0; l < 8; ++l) lo = (tmin[l] < lo) ? tmin[l] : lo;
    if (kl_tree8(nf) > 0.0) return 0;
    if (!(2.0 * (0.5 * DBL_EPSILON) * ((double) ((n + 7) / 8) + 12.0 - lo) <= tol)) return 0;
    double sm1 = (kl_tree8(cnt) - 1.0) + kl_tree8(a1);
    r->value = kl_vlog1p(sm1) - kl_tree8(a2) / (1.0 + sm1);
    r->check_p = 1.0 + sm1;
    return 1;
}

KL_INLINE int kl_sp_ce_fast(const double* p, const double* y, ptrdiff_t n, double tol,
                            kl_space_result* r)
{
    double m = kl_sp_max(y, n), a1[8] = {0}, a2[8] = {0}, a3[8] = {0}, cnt[8] = {0};
    double tmin[8] = {0}, nf[8] = {0};
    KL_SP_LANES(n, k, {
        double t = y[k] - m;
        double keep = ((t >= -708.0) & (t != 0.0)) ? 1.0 : 0.0;
        a1[L_] += kl_vexp_fast(t * keep) * keep;
        a2[L_] += p[k] * t;
        a3[L_] += p[k];
        cnt[L_] += (t == 0.0) ? 1.0 : 0.0;
        tmin[L_] = (t < tmin[L_]) ? t : tmin[L_];
        nf[L_] += ((t - t == 0.0) & (p[k] >= 0.0) & (p[k] < INFINITY)) ? 0.0 : 1.0;
    });
    double lo = 0.0;
    for (int l = 0; l < 8; ++l) lo = (tmin[l] < lo) ? tmin[l] : lo;
    if (kl_tree8(nf) > 0.0) return 0;
    if (!(2.0 * (0.5 * DBL_EPSILON) * ((double) ((n + 7) / 8) + 12.0 - lo) <= tol)) return 0;
    double sm1 = (kl_tree8(cnt) - 1.0) + kl_tree8(a1), sp = kl_tree8(a3);
    r->value = sp * kl_vlog1p(sm1) - kl_tree8(a2);
    r->check_p = sp;
    r->check_q = 1.0 + sm1;
    return 1;
}

/* ---- entropy ---------------------------------------------------------- */

KL_CLONES __attribute__((noinline))
static kl_space_result kl_space_entropy(int space, const double* x, ptrdiff_t n,
                                        double fast_tol)
{
    kl_space_result r = {0.0, 0.0, 0.0, 0};
    if (fast_tol > 0.0 && space == KL_SPACE_LOGITS && kl_sp_entropy_fast(x, n, fast_tol, &r)) {
        r.fast = 1;
        return r;
    }
    double a1[8] = {0}, a2[8] = {0};
    if (space == KL_SPACE_LOG) {
        KL_SP_LANES(n, k, {
            double e = kl_vexp(x[k]);
            double t = -e * x[k];
            a1[L_] += (x[k] == -INFINITY) ? 0.0 : t;   /* 0 log 0 = 0 */
            a2[L_] += e;
        });
        r.value = kl_tree8(a1);
        r.check_p = kl_tree8(a2);
        return r;
    }
    /* logits: H = log S - E[x - m] with S = sum exp(x - m): both parts >= 0 */
    double m = kl_sp_max(x, n), cnt[8] = {0};
    KL_SP_LANES(n, k, {
        double t = x[k] - m;
        double lo = kl_sp_lo(x[k], m, t);
        double e0 = kl_vexp(t);
        double e = __builtin_fma(e0, lo, e0);
        double et = __builtin_fma(e, t, e0 * lo);   /* exp(x - m) (x - m) */
        double top = (x[k] == m) ? 1.0 : 0.0;
        a1[L_] += e - e * top;
        cnt[L_] += top;
        a2[L_] += (e == 0.0) ? 0.0 : et;
    });
    double sm1 = (kl_tree8(cnt) - 1.0) + kl_tree8(a1);
    r.value = kl_vlog1p(sm1) - kl_tree8(a2) / (1.0 + sm1);
    r.check_p = kl_sp_normalizer(m, sm1);
    return r;
}

/* ---- cross-entropy, p probabilities -------------------------------------- */

KL_CLONES __attribute__((noinline))
static kl_space_result kl_space_ce(int qspace, const double* p, const double* y, ptrdiff_t n,
                                   int want_check, double fast_tol)
{
    kl_space_result r = {0.0, 0.0, 0.0, 0};
    if (fast_tol > 0.0 && qspace == KL_SPACE_LOGITS && kl_sp_ce_fast(p, y, n, fast_tol, &r)) {
        r.fast = 1;
        return r;
    }
    double a1[8] = {0}, a2[8] = {0}, a3[8] = {0};
    if (qspace == KL_SPACE_LOG) {
        KL_SP_LANES(n, k, {
            a1[L_] += (p[k] == 0.0) ? 0.0 : -p[k] * y[k];
            a2[L_] += p[k];
        });
        if (want_check) KL_SP_LANES(n, k, { a3[L_] += kl_vexp(y[k]); });
        r.value = kl_tree8(a1);
        r.check_p = kl_tree8(a2);
        r.check_q = kl_tree8(a3);
        return r;
    }
    /* logits: CE = (sum p) log S - sum p (y - m); both parts >= 0 */
    double m = kl_sp_max(y, n), cnt[8] = {0};
    KL_SP_LANES(n, k, {
        double t = y[k] - m;
        double lo = kl_sp_lo(y[k], m, t);
        double e0 = kl_vexp(t);
        double e = __builtin_fma(e0, lo, e0);
        double top = (y[k] == m) ? 1.0 : 0.0;
        double pt = __builtin_fma(p[k], t, p[k] * lo);   /* p (y - m) */
        a1[L_] += e - e * top;
        cnt[L_] += top;
        a2[L_] += (p[k] == 0.0) ? 0.0 : pt;
        a3[L_] += p[k];
    });
    double sm1 = (kl_tree8(cnt) - 1.0) + kl_tree8(a1), sp = kl_tree8(a3);
    r.value = sp * kl_vlog1p(sm1) - kl_tree8(a2);
    r.check_p = sp;
    r.check_q = kl_sp_normalizer(m, sm1);
    return r;
}

/* The fast tier of -log softmax(y)[c] (float32 rows, as kl_sp_kl_logits_fast):
 * the tail sum of exp(y_k - y_c) by kl_vexp_fast, without the rounding
 * correction of each argument.  The tail's relative error is at most
 * u (T + 4) for the exps (T = max |y_k - y_c|) plus u (n / 8 + 3) for the lane
 * sums, and log1p passes a relative error on at most unchanged (its condition
 * number x / ((1 + x) log1p x) is <= 1) and adds 1 ulp; so, with a factor 2
 * for second-order terms, the result's relative error is at most
 * 2 u (T + n / 8 + 9), a test on the row's spread alone.  Rows with a
 * non-finite value or an exp above 709 take the accurate form.
 * Returns 1 and stores the value and the tail when taken, else 0. */
#define KL_DEFINE_LABEL_FAST(NAME, T)                                                    \
KL_INLINE int NAME(const T* y, ptrdiff_t n, ptrdiff_t c, double tol,                     \
                               double* value, double* tail)                              \
{                                                                                        \
    double yc = (double) y[c], acc[8] = {0}, tmin[8] = {0}, tmax[8] = {0}, nf[8] = {0};  \
    KL_SP_LANES(n, k, {                                                                  \
        double t = (double) y[k] - yc;                                                   \
        /* the label's own term is left out (a tail of 1e-10 must not be                 \
         * found as (1 + tail) - 1), and exps below -708 are 0 (< 4e-308 each,           \
         * below float32's range even summed) */                                         \
        double keep = ((t >= -708.0) & (k != c)) ? 1.0 : 0.0;                            \
        acc[L_] += kl_vexp_fast(t * keep) * keep;                                        \
        tmin[L_] = (t < tmin[L_]) ? t : tmin[L_];                                        \
        tmax[L_] = (t > tmax[L_]) ? t : tmax[L_];                                        \
        nf[L_] += (t - t == 0.0) ? 0.0 : 1.0;                                            \
    });                                                                                  \
    double lo = 0.0, hi = 0.0;                                                           \
    for (int l = 0; l < 8; ++l) {                                                        \
        lo = (tmin[l] < lo) ? tmin[l] : lo;                                              \
        hi = (tmax[l] > hi) ? tmax[l] : hi;                                              \
    }                                                                                    \
    if (kl_tree8(nf) > 0.0 || hi > 709.0) return 0;                                      \
    double spread = (hi > -lo) ? hi : -lo;                                               \
    if (!(2.0 * (0.5 * DBL_EPSILON) * (spread + (double) ((n + 7) / 8) + 9.0) <= tol))   \
        return 0;                                                                        \
    double s = kl_tree8(acc);                                                            \
    *value = kl_vlog1p(s);                                                               \
    *tail = s;                                                                           \
    return 1;                                                                            \
}

/* on the row as doubles, and on a unit-stride float32 row read in place (no
 * widened copy: the LLM-sized rows of 32,000 logits save a pass over 256 KB) */
KL_DEFINE_LABEL_FAST(kl_sp_label_fast, double)
KL_DEFINE_LABEL_FAST(kl_sp_label_fast_f32, float)

/* The fast tier of the label cross-entropy on a float32 row in place: 1 and
 * *r filled when taken (the row is then proven finite), else 0 and the caller
 * widens the row for the accurate form. */
KL_CLONES __attribute__((noinline))
static int kl_space_label_fast_f32(const float* y, ptrdiff_t n, ptrdiff_t c, double tol,
                                   kl_space_result* r)
{
    double tail;
    if (!kl_sp_label_fast_f32(y, n, c, tol, &r->value, &tail)) return 0;
    r->check_p = 1.0;
    r->check_q = 1.0 + tail;
    r->fast = 1;
    return 1;
}

/* -log softmax(y)[c] (logits) or -y[c] (log); check_q as above */
KL_CLONES __attribute__((noinline))
static kl_space_result kl_space_label(int qspace, const double* y, ptrdiff_t n, ptrdiff_t c,
                                      double fast_tol)
{
    kl_space_result r = {0.0, 1.0, 0.0, 0};
    double fast_tail;
    if (qspace == KL_SPACE_LOG) {
        r.value = -y[c];
        r.check_q = 1.0;
        return r;
    }
    if (fast_tol > 0.0 && kl_sp_label_fast(y, n, c, fast_tol, &r.value, &fast_tail)) {
        r.check_q = 1.0 + fast_tail;
        r.fast = 1;
        return r;
    }
    /* -log softmax(y)[c] = log1p(sum_{k != c} exp(y_k - y_c)): one pass and no
     * maximum, accurate when the label dominates (the sum is the tail itself).
     * An overflowed exp (y_k - y_c > 709), an all -inf row or a -inf label
     * take the max-shifted form, which gets those right. */
    double yc = y[c], acc[8] = {0};
    KL_SP_LANES(n, k, {
        double t = y[k] - yc;
        double e0 = kl_vexp(t);
        double e = __builtin_fma(e0, kl_sp_lo(y[k], yc, t), e0);
        acc[L_] += (k == c) ? 0.0 : e;
    });
    double tail = kl_tree8(acc);
    if (tail < 1e300) {
        r.value = kl_vlog1p(tail);
        r.check_q = 1.0 + tail;
        return r;
    }
    double m = kl_sp_max(y, n);
    double sm1 = kl_sp_sumexp_m1(y, n, m);
    r.value = kl_vlog1p(sm1) - (y[c] - m);
    r.check_q = kl_sp_normalizer(m, sm1);
    return r;
}

/* ---- KL divergence ------------------------------------------------------ */

/* the plain log-sum-exp form, for rows far apart: sum w (lp - lq), with
 * log q = (y - my) - l1py, my = max y, l1py = log1p(S - 1): kept apart so
 * that log q rounds at its own scale, not at that of the logits */
KL_INLINE double kl_sp_kl_plain(const double* w, const double* lp, const double* y,
                                ptrdiff_t n, double my, double l1py)
{
    double acc[8] = {0};
    KL_SP_LANES(n, k, {
        double t = w[k] * (lp[k] - ((y[k] - my) - l1py));
        acc[L_] += (w[k] == 0.0) ? 0.0 : t;
    });
    return kl_tree8(acc);
}

/* q in logits: the centred form (header comment) */
KL_INLINE double kl_sp_kl_qlogits(int pspace, const double* x, const double* y,
                                  const double* diff, ptrdiff_t n, double* w, double* d,
                                  double* dlo, int want_check, kl_space_result* r)
{
    double a1[8] = {0}, a2[8] = {0}, zeros[8] = {0}, infs[8] = {0};
    double top;
    double l1p = kl_sp_weights(pspace, x, n, w, d, &r->check_p, &top);
    /* d = (x - y) - (top - my): p's values less q's, x the logits as given
     * when p is in logits (log p otherwise), less the difference of the two
     * rows' maxima -- a shift (the form is exact for any), computed in
     * double-double so that d is the exact difference rounded once.  Where
     * the rows nearly coincide, d is as exact as x - y (distillation); where
     * p is concentrated on logits of 1e4 and q is not, d is small there
     * instead of 1e4, whose rounding would cost every digit of a small KL.
     * d's rounding error is kept in dlo: exp(-d) of a peaked row's tail
     * (|d| ~ 20) would otherwise carry 20 eps of it into the q mass there.
     * With a temperature, diff = (a - b) / T from the raw logits keeps that
     * exactness.  The same pass sums E_p[d]'s parts and counts p's zeros and
     * the +inf terms (p > 0 where q = 0). */
    /* (weights are >= 0: a zero weight adds nothing to the sums but must not
     * meet an infinite d -- the w d sum drops the NaN of 0 x inf, a test on
     * w d rather than on w, which the zero count tests: two selects on one
     * condition stop the vectorizer; q = 0 where p > 0 makes the sum of those
     * w > 0) */
    double my = kl_sp_max(y, n);
    double sh = top - my, sl = kl_sp_lo(top, my, sh);
    if (!(sh - sh == 0.0)) sh = 0.0;   /* no finite maximum: the row is reported */
#define KL_SP_D_AND_SUMS(DK)                                                         \
    KL_SP_LANES(n, k, {                                                              \
        double dl;                                                                   \
        double dk = (DK);                                                            \
        double wd = w[k] * dk;                                                       \
        d[k] = dk;                                                                   \
        dlo[k] = dl;                                                                 \
        a1[L_] += (wd == wd) ? wd : 0.0;                                             \
        a2[L_] += w[k];                                                              \
        zeros[L_] += (w[k] == 0.0) ? 1.0 : 0.0;                                      \
        infs[L_] += (y[k] == -INFINITY) ? w[k] : 0.0;                                \
    })
    if (pspace != KL_SPACE_LOGITS)
        KL_SP_D_AND_SUMS(kl_sp_shifted_diff(d[k], y[k], sh, sl, &dl));
    else if (diff != NULL)
        KL_SP_D_AND_SUMS(kl_sp_shifted_diff(diff[k], 0.0, sh, sl, &dl));
    else
        KL_SP_D_AND_SUMS(kl_sp_shifted_diff(x[k], y[k], sh, sl, &dl));
#undef KL_SP_D_AND_SUMS
    /* a logits row is a distribution iff its maximum is finite */
    if (want_check) r->check_q = (my > -INFINITY && my < INFINITY) ? 1.0 : 0.0;
    if (kl_tree8(infs) > 0.0) return INFINITY;
    double s = kl_tree8(a1) / kl_tree8(a2);
    for (int l = 0; l < 8; ++l) a1[l] = a2[l] = 0.0;
    /* c = d - s with its rounding error (plus d's) in dlo; c is 0 where the
     * weight is 0 (its d may be infinite), and the error is always finite
     * (kl_sp_lo), so a zero weight zeroes its terms below; a loop of its own:
     * a select feeding the expm1mx selects stops the vectorizer */
    KL_SP_LANES(n, k, {
        double c = d[k] - s;
        double l = dlo[k];
        dlo[k] = kl_sp_lo(d[k], s, c) + ((l - l == 0.0) ? l : 0.0);
        d[k] = (w[k] > 0.0) ? c : 0.0;
    });
    /* expm1mx(-(c + cl)) = f - cl (f - c) to first order, f = expm1mx(-c)
     * (its derivative at -c is expm1(-c) = f - c) */
    KL_SP_LANES(n, k, {
        double f = kl_vexpm1mx(-d[k]);
        a1[L_] += w[k] * (f - dlo[k] * (f - d[k]));
        a2[L_] += w[k] * (d[k] + dlo[k]);
    });
    double s1 = kl_tree8(a1), s2 = kl_tree8(a2), rest = 0.0;
    if (kl_tree8(zeros) > 0.0) {
        /* q's mass where p is 0 (p's logits -inf): a pass of its own, rarely run;
         * exp(y + s + (top - my) - (top + l1p)) in the shifted coordinates */
        double a3[8] = {0};
        KL_SP_LANES(n, k, {
            double e = kl_vexp(((y[k] - my) + s) - l1p);
            a3[L_] += (w[k] > 0.0) ? 0.0 : e;
        });
        rest = kl_tree8(a3);
    }
    double kl = s2 + kl_vlog1p(s1 - s2 + rest);
    if (!(kl - kl == 0.0) || !(s1 < 1e300) || !(rest < 1e300)) {
        /* far apart: log q = y - lse(y), no cancellation to fear */
        kl_sp_weights(pspace, x, n, w, d, &r->check_p, &top);   /* d: log p again */
        double l1py = kl_vlog1p(kl_sp_sumexp_m1(y, n, my));
        kl = kl_sp_kl_plain(w, d, y, n, my, l1py);
    }
    return kl;
}

/* ---- the fast tier: two logits rows whose bound allows the plain form ----
 *
 * Two tiers (DESIGN.md: pay for the accurate forms only where a rigorous
 * bound says they are needed).  For two all-finite logits rows the plain form
 *     KL = A / Sx + log Sy - log Sx,   A = sum_k ex_k d_k,
 *     ex_k = exp(x_k - max x), Sx = sum ex_k (and ey, Sy for y),
 *     d_k = (x_k - y_k) - (max x - max y)
 * costs two cheap exps an element (kl_vexp_fast) and no series, against an
 * exp, an expm1mx and double-double differences in the centred form above.  Its error is bounded,
 * to first order in the unit roundoff u, by summing what every rounding can
 * do (kl_vexp_fast of a rounded argument t: u (|t| + 4) relative; a lane sum
 * of n / 8 terms: u (n / 8 + 3) of the sum of magnitudes; the rounding of
 * x_k, y_k themselves, which a temperature divides: u (|x_k| + |y_k|)):
 *     |error| <= 2 u (T + n/8 + 12) (M + |A / Sx| + |sh| + |log Sx| + |log Sy| + |KL| + 2)
 * with T = max |x_k - max x|, |y_k - max y| and M = sum_k ex_k (|d_k| + |x_k|
 * + |y_k|) / Sx (the factor 2 covers the second-order terms).  The row takes
 * this form only when that bound is at most `tol` |KL|: `tol` = 2^-27 for
 * float32 inputs, whose contract (1 float32 ULP of the result, after the
 * final rounding to float32 costs 1/2) leaves 2^-25 relative; float64 inputs
 * pass tol = 0 and always take the accurate form, since no such a-priori
 * bound reaches 4 eps.  Rows that nearly coincide (KL tiny against M: the
 * cancellation the centred form exists for), far-apart or non-finite rows
 * fail the test and are recomputed by the centred form.  Returns 1 and
 * stores KL and Sx when the row took the fast form, else 0. */
KL_INLINE int kl_sp_kl_logits_fast(const double* x, const double* y, ptrdiff_t n,
                                   double tol, double* value, double* sum_x)
{
    double mxl[8], myl[8], mnxl[8], mnyl[8], nf[8] = {0};
    for (int l = 0; l < 8; ++l) mxl[l] = myl[l] = -INFINITY;
    for (int l = 0; l < 8; ++l) mnxl[l] = mnyl[l] = INFINITY;
    KL_SP_LANES(n, k, {
        mxl[L_] = (x[k] > mxl[L_]) ? x[k] : mxl[L_];
        myl[L_] = (y[k] > myl[L_]) ? y[k] : myl[L_];
        mnxl[L_] = (x[k] < mnxl[L_]) ? x[k] : mnxl[L_];
        mnyl[L_] = (y[k] < mnyl[L_]) ? y[k] : mnyl[L_];
        nf[L_] += ((x[k] - x[k] == 0.0) & (y[k] - y[k] == 0.0)) ? 0.0 : 1.0;
    });
    if (kl_tree8(nf) > 0.0) return 0;   /* NaN, inf or -inf (p = 0): the centred form */
    double mx = -INFINITY, my = -INFINITY, mnx = INFINITY, mny = INFINITY;
    for (int l = 0; l < 8; ++l) {
        mx = (mxl[l] > mx) ? mxl[l] : mx;
        my = (myl[l] > my) ? myl[l] : my;
        mnx = (mnxl[l] < mnx) ? mnxl[l] : mnx;
        mny = (mnyl[l] < mny) ? mnyl[l] : mny;
    }
    double sh = mx - my;
    /* the most negative x_k - mx, y_k - my (from 0): by monotonic rounding
     * min x - mx and min y - my, kept out of the exp loop below */
    double t = 0.0;
    t = (mnx - mx < t) ? mnx - mx : t;
    t = (mny - my < t) ? mny - my : t;
    double sx[8] = {0}, sy[8] = {0}, a[8] = {0}, m[8] = {0};
    KL_SP_LANES(n, k, {
        double tx = x[k] - mx;
        double ty = y[k] - my;
        /* exp(t) for t <= 0: 0 below -708 (kl_vexp_fast's range), by a 0/1
         * factor rather than a second select on the same condition */
        double kx = (tx >= -708.0) ? 1.0 : 0.0;
        double ky = (ty >= -708.0) ? 1.0 : 0.0;
        double ex = kl_vexp_fast(tx * kx) * kx;
        double d = (x[k] - y[k]) - sh;
        sx[L_] += ex;
        sy[L_] += kl_vexp_fast(ty * ky) * ky;
        a[L_] += ex * d;
        m[L_] += ex * ((fabs(d) + fabs(x[k])) + fabs(y[k]));
    });
    double s_x = kl_tree8(sx), s_y = kl_tree8(sy);
    double lsx = kl_vlog(s_x), lsy = kl_vlog(s_y);
    double ratio = kl_tree8(a) / s_x;
    double kl = ratio + (lsy - lsx);
    double depth = (double) ((n + 7) / 8) + 12.0 - t;
    double mag = kl_tree8(m) / s_x + fabs(ratio) + fabs(sh) + fabs(lsx) + fabs(lsy) + fabs(kl) + 2.0;
    double bound = 2.0 * (0.5 * DBL_EPSILON) * depth * mag;
    if (!(bound <= tol * fabs(kl))) return 0;
    *value = kl;
    *sum_x = s_x;
    return 1;
}

/* q not in logits: direct terms w (log p - log q), log p = x - lse(x) for
 * logits (header comment) */
KL_INLINE double kl_sp_kl_direct(int pspace, int qspace, const double* x, const double* y,
                                 ptrdiff_t n, double* w, double* d, int want_check,
                                 kl_space_result* r)
{
    double acc[8] = {0}, aq[8] = {0};
    double top;
    kl_sp_weights(pspace, x, n, w, d, &r->check_p, &top);   /* d holds log p */
    if (qspace == KL_SPACE_PROB) {
        KL_SP_LANES(n, k, {
            double t = w[k] * (d[k] - kl_vlog(y[k]));
            acc[L_] += (w[k] == 0.0) ? 0.0 : t;
            aq[L_] += y[k];
        });
    } else {
        KL_SP_LANES(n, k, {
            double t = w[k] * (d[k] - y[k]);
            acc[L_] += (w[k] == 0.0) ? 0.0 : t;
        });
        if (want_check) KL_SP_LANES(n, k, { aq[L_] += kl_vexp(y[k]); });
    }
    r->check_q = kl_tree8(aq);
    return kl_tree8(acc);
}

KL_CLONES __attribute__((noinline))
static kl_space_result kl_space_kl_fast(const double* x, const double* y, ptrdiff_t n,
                                        double fast_tol)
{
    /* the fast tier of two float32 logits rows alone (r.fast: taken), so that the
     * caller makes the accurate form's inputs (a temperature's diff row) only for
     * the rows it turns down; a logits row's check is only that its sum of exps
     * is positive and finite, as the centred form's */
    kl_space_result r = {0.0, 0.0, 0.0, 0};
    if (kl_sp_kl_logits_fast(x, y, n, fast_tol, &r.value, &r.check_p)) {
        r.check_q = 1.0;
        r.fast = 1;
    }
    return r;
}

KL_CLONES __attribute__((noinline))
static kl_space_result kl_space_kl(int pspace, int qspace, const double* x, const double* y,
                                   const double* diff, ptrdiff_t n, double* w, double* d,
                                   double* dlo, int want_check)
{
    /* the accurate forms (kl_space_kl_fast first for float32 logits rows) */
    kl_space_result r = {0.0, 0.0, 0.0, 0};
    if (qspace == KL_SPACE_LOGITS)
        r.value = kl_sp_kl_qlogits(pspace, x, y, diff, n, w, d, dlo, want_check, &r);
    else
        r.value = kl_sp_kl_direct(pspace, qspace, x, y, n, w, d, want_check, &r);
    return r;
}

#endif
