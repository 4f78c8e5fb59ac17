/*
 * kl_blocks.h -- the innermost loops of kl_fast's Cython kernels: one block
 * (at most BLOCK elements of one row) of terms and sums.
 *
 * Why C and not Cython: these loops must compile to SIMD code for the CPU
 * they run on while the extension stays portable, which takes GCC's
 * function multi-versioning (target_clones: an AVX-512, an AVX2 and a
 * baseline clone, picked at load time).  That is a C function attribute
 * Cython cannot attach.  The row loops, the threading and the reports stay
 * in src/rows.pyx.
 *
 * Determinism: element j of a block always goes to lane j % KL_LANES, lanes
 * are combined in a fixed tree, and every clone performs the same IEEE
 * operations (-ffp-contract=off; fma only where written), so a block's
 * result is the same bit for bit whatever the layout, the clone or the
 * thread that computes it.
 */
#ifndef KL_FAST_BLOCKS_H
#define KL_FAST_BLOCKS_H

#include <stddef.h>
#include "kl_math.h"
#include "kl_vmath.h"

#define KL_LANES 8

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12 \
    && !defined(KL_FAST_NO_CLONES)
#define KL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KL_CLONES
#endif

typedef struct {
    double terms;   /* sum of the quantity's terms */
    double sum_p;   /* sum of the first input's raw values */
    double sum_q;   /* sum of the second input's raw values */
    double n_bad;   /* row kernels: 1 if the block may hold a negative / NaN / +inf raw
                     * value (KL_TRACK_MIN; the caller counts them); Gaussians: the count */
    double n_odd;   /* terms the vector form cannot take (p/q overflowed) */
} kl_block_sums;

/* what a pass over a block computes */
enum { KL_MODE_TERMS = 0, KL_MODE_TERMS_SUMS = 1, KL_MODE_SUMS = 2, KL_MODE_TERMS_SCALED = 3 };

/* The vector terms take their logs with kl_vlog_normal, which handles normal
 * positive arguments only; a lane whose log argument is subnormal or
 * overflowed is "odd" and its whole block is recomputed by the exact scalar
 * terms of kl_math.h.  p = 0, q = 0, NaN and negative inputs are selected
 * here, following scipy.special's conventions. */
KL_INLINE double kl_odd_log_arg(double x)
{
    return (x > 0.0 && !(x >= DBL_MIN && x <= DBL_MAX)) ? 1.0 : 0.0;
}

/* p log(p/q) with the rounding of r = p/q corrected by its exact residual:
 * p/q = r + e/q with e = p - r q exact (fma), so
 * p log(p/q) = p log r + e + O(e^2/p).  One log, no branch, and as accurate
 * near p = q as the log1p form (log r is accurate there since r - 1 is). */
KL_INLINE double kl_vrel_entr(double p, double q)
{
    double r = p / q;
    double e = __builtin_fma(-r, q, p);
    double t = __builtin_fma(p, kl_vlog_normal(r), e);
    t = (p > 0.0 && q == 0.0) ? INFINITY : t;
    t = (p == 0.0 && q >= 0.0) ? 0.0 : t;
    /* invalid (validate=False) input: negatives give +inf, as in scipy */
    t = ((p < 0.0 || q < 0.0) && p == p && q == q) ? INFINITY : t;
    return t;
}

KL_INLINE double kl_rel_entr_odd(double p, double q)
{
    return q > 0.0 ? kl_odd_log_arg(p / q) : 0.0;
}

KL_INLINE double kl_vjs_term(double p, double q)
{
    double s = p + q;
    double bq = s - p;
    double e = (p - (s - bq)) + (q - bq);   /* TwoSum: p + q == s + e exactly */
    double m = 0.5 * s;
    double t = kl_vrel_entr(p, m) + kl_vrel_entr(q, m);
    t = 0.5 * ((e == e && e != INFINITY && e != -INFINITY) ? t - e : t);
    return (p == 0.0 && q == 0.0) ? 0.0 : t;
}

KL_INLINE double kl_js_odd(double p, double q)
{
    double m = 0.5 * (p + q);
    return m > 0.0 ? kl_odd_log_arg(p / m) + kl_odd_log_arg(q / m) : 0.0;
}

KL_INLINE double kl_vce_term(double p, double q)
{
    double t = -p * kl_vlog_normal(q);
    t = (q == 0.0) ? p * INFINITY : t;
    t = (q < 0.0 || q != q) ? NAN : t;
    return (p == 0.0 && q == q) ? 0.0 : t;
}

KL_INLINE double kl_ce_odd(double p, double q) { (void) p; return kl_odd_log_arg(q); }

KL_INLINE double kl_ventr(double p, double q)
{
    (void) q;
    double t = (p == 0.0) ? 0.0 : -p * kl_vlog_normal(p);
    return (p < 0.0) ? -INFINITY : t;     /* scipy.special.entr's convention */
}

KL_INLINE double kl_entr_odd(double p, double q) { (void) q; return kl_odd_log_arg(p); }

/* the exact scalar terms, as (p, q) functions for the fallback */
KL_INLINE double kl_ce_exact(double p, double q) { return kl_neg_xlogy(p, q); }
KL_INLINE double kl_entr_exact(double p, double q) { (void) q; return kl_entr(p); }

/* Validation inside the terms pass, at the cost of an OR an element: a lane
 * keeps the OR of the sign bits of the values seen (entropy's y is 0), so a
 * negative value (or a -0.0, which the exact count then clears) sets it; NaN
 * and +inf make the row's sum NaN or inf instead.  The block then flags
 * itself (kl_block_sums.n_bad = 1) and the caller counts the bad values
 * exactly on that error path only.  (Counting every element's "bad" test here
 * cost ~10% of a validated call.)  An OR of bits is a reduction every
 * vectorizer takes; the running min(0, x, y) this replaced was not vectorized
 * in a pass of sums alone (measured 1.15 ns an element, scalar). */
#define KL_SIGN_BIT 0x8000000000000000ULL
#define KL_TRACK_SIGN(M, X, Y)                                                         \
    ((M) = kl_from_bits(kl_bits(M) | ((kl_bits(X) | kl_bits(Y)) & KL_SIGN_BIT)))

KL_INLINE double kl_block_flag(const double* signs, double sum_p, double sum_q)
{
    uint64_t any = 0;
    for (int l = 0; l < KL_LANES; ++l) any |= kl_bits(signs[l]);
    return (any != 0 || !(sum_p - sum_p == 0.0) || !(sum_q - sum_q == 0.0)) ? 1.0 : 0.0;
}

KL_INLINE double kl_tree8(const double* a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* The exact scalar terms over a block with odd lanes (same lane order). */
#define KL_DEFINE_BLOCK_EXACT(T)                                                       \
KL_INLINE double kl_block_exact_##T(double (*term)(double, double, double), int one,   \
                                    const T* p, ptrdiff_t sp, const T* q, ptrdiff_t sq, \
                                    ptrdiff_t n, int scaled, double eps, double dp,    \
                                    double dq, double c)                               \
{                                                                                      \
    double at[KL_LANES] = {0};                                                         \
    for (ptrdiff_t j = 0; j < n; ++j) {                                                \
        double x = p[j * sp], y = one ? 0.0 : q[j * sq];                               \
        if (scaled) { x = (x + eps) / dp; y = one ? 0.0 : (y + eps) / dq; }            \
        at[j % KL_LANES] += term(x, y, c);                                                \
    }                                                                                  \
    return kl_tree8(at);                                                               \
}

KL_DEFINE_BLOCK_EXACT(float)
KL_DEFINE_BLOCK_EXACT(double)

/* The loops, stamped out per quantity: TERM and ODD are inline functions of
 * (p, q); ONE is 1 for entropy, which reads no q.  They run over contiguous
 * buffers of T (double, or float: float32 data is converted to double inside
 * the loop, which is exact, so both run the same double operations in the
 * same lane order); each pass is its own plain loop because the vectorizer
 * gives up on loops that mix optional work.  Element j of a block goes to
 * lane j % KL_LANES.
 *
 * Each pass accumulates into local lane arrays (KL_LANES_IN / KL_LANES_OUT),
 * not through the caller's pointers: stores through a pointer that may alias
 * p or q stop GCC from vectorizing the loop at all, and whether it managed to
 * prove them apart depended on the pass (measured, one core, 256-element
 * blocks: the chi^2 terms 2.8 ns an element scalar against 0.8 vectorized,
 * the sums pass 1.15 against ~0.4), and the lane loop is marked `omp simd`
 * (-fopenmp-simd: no threads, only the hint), without which GCC vectorized
 * some passes across blocks of 8 x 8 elements with shuffles (chi^2 terms 1.8
 * ns an element against 0.8).  Same operations, same lane order: the same
 * bits. */
#define KL_SIMD _Pragma("omp simd")
#define KL_LANES_IN(L, A)                                                              \
    double L[KL_LANES];                                                                \
    for (int l_ = 0; l_ < KL_LANES; ++l_) L[l_] = (A)[l_]
#define KL_LANES_OUT(L, A)                                                             \
    for (int l_ = 0; l_ < KL_LANES; ++l_) (A)[l_] = L[l_]

/* Quantities without logs (PAIR = 1) take two blocks of lanes an iteration in
 * the passes that read the values as they are: the terms of 2 KL_LANES
 * elements by one vector loop into small arrays, then added to the lanes half
 * by half -- lane l gets element l and then element l + KL_LANES, exactly the
 * additions of two KL_LANES iterations, so the bits do not change (nor does
 * the Numba mirror).  Their terms are a few operations an element, and the
 * wider loop converts float32 and tracks the sums with fewer shuffles
 * (measured, one core, 256-element blocks, float32, validated pass: total
 * variation 0.39 -> 0.31 ns an element, chi^2 0.58 -> 0.51, Renyi of order 2
 * 0.79 -> 0.54).  For the terms with logs it changed nothing measurable, so
 * they keep the plain loop. */
#define KL_PAIR (2 * KL_LANES)
#define KL_PAIR_ADD(L, V)                                                              \
    KL_SIMD for (int l_ = 0; l_ < KL_LANES; ++l_) { L[l_] += (V)[l_]; L[l_] += (V)[l_ + KL_LANES]; }
#define KL_PAIR_OR(L, V)                                                               \
    KL_SIMD for (int l_ = 0; l_ < KL_LANES; ++l_)                                      \
        L[l_] = kl_from_bits(kl_bits(L[l_]) | kl_bits((V)[l_]) | kl_bits((V)[l_ + KL_LANES]))

#define KL_DEFINE_PASSES_T(NAME, TERM, ODD, ODD_RAW, ONE, PAIR, T, SFX)                \
KL_INLINE void NAME##_terms##SFX(const T* p, const T* q, ptrdiff_t n,                  \
                                 double c, double* at_, double* ao_)                   \
{                                                                                      \
    ptrdiff_t j = 0, l, n_full = n - n % KL_LANES, n_pair = PAIR ? n - n % KL_PAIR : 0; \
    KL_LANES_IN(at, at_); KL_LANES_IN(ao, ao_);                                        \
    for (; j < n_pair; j += KL_PAIR) {                                                 \
        double t2[KL_PAIR], o2[KL_PAIR];                                               \
        KL_SIMD for (l = 0; l < KL_PAIR; ++l) {                                        \
            double x = (double) p[j + l], y = ONE ? 0.0 : (double) q[j + l];           \
            t2[l] = TERM(x, y, c);                                                     \
            o2[l] = ODD_RAW(x, y, c);                                                  \
        }                                                                              \
        KL_PAIR_ADD(at, t2); KL_PAIR_ADD(ao, o2);                                      \
    }                                                                                  \
    for (; j < n_full; j += KL_LANES)                                                  \
        KL_SIMD for (l = 0; l < KL_LANES; ++l) {                                       \
            double x = (double) p[j + l], y = ONE ? 0.0 : (double) q[j + l];           \
            at[l] += TERM(x, y, c);                                                    \
            ao[l] += ODD_RAW(x, y, c);                                                 \
        }                                                                              \
    for (; j < n; ++j) {                                                               \
        double x = (double) p[j], y = ONE ? 0.0 : (double) q[j];                       \
        at[j - n_full] += TERM(x, y, c);                                               \
        ao[j - n_full] += ODD_RAW(x, y, c);                                                \
    }                                                                                  \
    KL_LANES_OUT(at, at_); KL_LANES_OUT(ao, ao_);                                      \
}                                                                                      \
KL_INLINE void NAME##_scaled##SFX(const T* p, const T* q, ptrdiff_t n,                 \
                                  double eps, double dp, double dq, double c,          \
                                  double* at_, double* ao_)                            \
{                                                                                      \
    ptrdiff_t j = 0, l, n_full = n - n % KL_LANES;                                     \
    KL_LANES_IN(at, at_); KL_LANES_IN(ao, ao_);                                        \
    for (; j < n_full; j += KL_LANES)                                                  \
        KL_SIMD for (l = 0; l < KL_LANES; ++l) {                                       \
            double x = ((double) p[j + l] + eps) / dp;                                 \
            double y = ONE ? 0.0 : ((double) q[j + l] + eps) / dq;                     \
            at[l] += TERM(x, y, c);                                                    \
            ao[l] += ODD(x, y, c);                                                     \
        }                                                                              \
    for (; j < n; ++j) {                                                               \
        double x = ((double) p[j] + eps) / dp;                                         \
        double y = ONE ? 0.0 : ((double) q[j] + eps) / dq;                             \
        at[j - n_full] += TERM(x, y, c);                                               \
        ao[j - n_full] += ODD(x, y, c);                                                \
    }                                                                                  \
    KL_LANES_OUT(at, at_); KL_LANES_OUT(ao, ao_);                                      \
}                                                                                      \
KL_INLINE void NAME##_terms_sums##SFX(const T* p, const T* q, ptrdiff_t n,             \
                                      double c, double* at_, double* ao_, double* ap_, \
                                      double* aq_, double* ab_)                        \
{                                                                                      \
    ptrdiff_t j = 0, l, n_full = n - n % KL_LANES, n_pair = PAIR ? n - n % KL_PAIR : 0; \
    KL_LANES_IN(at, at_); KL_LANES_IN(ao, ao_); KL_LANES_IN(ap, ap_);                  \
    KL_LANES_IN(aq, aq_); KL_LANES_IN(ab, ab_);                                        \
    for (; j < n_pair; j += KL_PAIR) {                                                 \
        double t2[KL_PAIR], o2[KL_PAIR], x2[KL_PAIR], y2[KL_PAIR], b2[KL_PAIR];        \
        KL_SIMD for (l = 0; l < KL_PAIR; ++l) {                                        \
            double x = (double) p[j + l], y = ONE ? 0.0 : (double) q[j + l];           \
            t2[l] = TERM(x, y, c);                                                     \
            o2[l] = ODD_RAW(x, y, c);                                                  \
            x2[l] = x;                                                                 \
            y2[l] = y;                                                                 \
            b2[l] = kl_from_bits((kl_bits(x) | kl_bits(y)) & KL_SIGN_BIT);             \
        }                                                                              \
        KL_PAIR_ADD(at, t2); KL_PAIR_ADD(ao, o2);                                      \
        KL_PAIR_ADD(ap, x2); KL_PAIR_ADD(aq, y2); KL_PAIR_OR(ab, b2);                  \
    }                                                                                  \
    for (; j < n_full; j += KL_LANES)                                                  \
        KL_SIMD for (l = 0; l < KL_LANES; ++l) {                                       \
            double x = (double) p[j + l], y = ONE ? 0.0 : (double) q[j + l];           \
            at[l] += TERM(x, y, c);                                                    \
            ao[l] += ODD_RAW(x, y, c);                                                     \
            ap[l] += x;                                                                \
            aq[l] += y;                                                                \
            KL_TRACK_SIGN(ab[l], x, y);                                                 \
        }                                                                              \
    for (; j < n; ++j) {                                                               \
        double x = (double) p[j], y = ONE ? 0.0 : (double) q[j];                       \
        at[j - n_full] += TERM(x, y, c);                                               \
        ao[j - n_full] += ODD_RAW(x, y, c);                                                \
        ap[j - n_full] += x;                                                           \
        aq[j - n_full] += y;                                                           \
        KL_TRACK_SIGN(ab[j - n_full], x, y);                                            \
    }                                                                                  \
    KL_LANES_OUT(at, at_); KL_LANES_OUT(ao, ao_); KL_LANES_OUT(ap, ap_);               \
    KL_LANES_OUT(aq, aq_); KL_LANES_OUT(ab, ab_);                                      \
}                                                                                      \
KL_INLINE void NAME##_sums##SFX(const T* p, const T* q, ptrdiff_t n,                   \
                                double* ap_, double* aq_, double* ab_)                 \
{                                                                                      \
    ptrdiff_t j = 0, l, n_full = n - n % KL_LANES;                                     \
    KL_LANES_IN(ap, ap_); KL_LANES_IN(aq, aq_); KL_LANES_IN(ab, ab_);                  \
    for (; j < n_full; j += KL_LANES)                                                  \
        KL_SIMD for (l = 0; l < KL_LANES; ++l) {                                       \
            double x = (double) p[j + l], y = ONE ? 0.0 : (double) q[j + l];           \
            ap[l] += x;                                                                \
            aq[l] += y;                                                                \
            KL_TRACK_SIGN(ab[l], x, y);                                                 \
        }                                                                              \
    for (; j < n; ++j) {                                                               \
        double x = (double) p[j], y = ONE ? 0.0 : (double) q[j];                       \
        ap[j - n_full] += x;                                                           \
        aq[j - n_full] += y;                                                           \
        KL_TRACK_SIGN(ab[j - n_full], x, y);                                            \
    }                                                                                  \
    KL_LANES_OUT(ap, ap_); KL_LANES_OUT(aq, aq_); KL_LANES_OUT(ab, ab_);               \
}                                                                                      \
KL_INLINE void NAME##_run##SFX(int mode, const T* p, const T* q, ptrdiff_t n,          \
                               double eps, double dp, double dq, double c, double* at, \
                               double* ao, double* ap, double* aq, double* ab)         \
{                                                                                      \
    if (mode == KL_MODE_TERMS) NAME##_terms##SFX(p, q, n, c, at, ao);                  \
    else if (mode == KL_MODE_TERMS_SCALED)                                             \
        NAME##_scaled##SFX(p, q, n, eps, dp, dq, c, at, ao);                           \
    else if (mode == KL_MODE_TERMS_SUMS)                                               \
        NAME##_terms_sums##SFX(p, q, n, c, at, ao, ap, aq, ab);                        \
    else NAME##_sums##SFX(p, q, n, ap, aq, ab);                                        \
}

/* ODD_RAW: the odd-lane test of the passes that read the values as they are
 * (terms, terms_sums); the scaled pass keeps ODD.  For float32 data a quantity
 * may name a cheaper test there (its ODD##_raw_f32), where the float32 range
 * rules lanes out -- each such test says why it gives the same bits. */
#define KL_DEFINE_PASSES(NAME, TERM, ODD, ONE, PAIR)                                   \
KL_DEFINE_PASSES_T(NAME, TERM, ODD, ODD, ONE, PAIR, double, )                          \
KL_DEFINE_PASSES_T(NAME, TERM, ODD, ODD##_raw_f32, ONE, PAIR, float, _f32)

/* Exported block kernels, one per quantity and input dtype.  The vector
 * loops run over contiguous data (NAME_acc for doubles, NAME_acc_f32 for
 * floats, multi-versioned and not inlined, so every caller shares the one
 * compiled loop); strided data is first converted into small contiguous
 * double buffers.  Every layout and dtype thus runs the same double
 * operations and gives the same bits.  Contiguous float32 data is converted
 * inside the loop or staged like strided data, whichever is faster on the
 * host (kl_f32_in_loop). */
#define KL_CHUNK 1024

#define KL_DEFINE_ACC(NAME, PASSES, T, SFX)                                            \
KL_CLONES __attribute__((noinline)) static void NAME##_acc##SFX(                       \
    int mode, const T* p, const T* q, ptrdiff_t n, double eps, double dp,              \
    double dq, double c, double* acc)                                                            \
{                                                                                      \
    PASSES##_run##SFX(mode, p, q, n, eps, dp, dq, c, acc, acc + KL_LANES,                 \
                      acc + 2 * KL_LANES, acc + 3 * KL_LANES, acc + 4 * KL_LANES);     \
}

#define KL_DEFINE_BLOCK(NAME, PASSES, EXACT, ONE, LOGS)                                \
KL_DEFINE_ACC(NAME, PASSES, double, )                                                  \
KL_DEFINE_ACC(NAME, PASSES, float, _f32)                                               \
KL_DEFINE_BLOCK_DTYPE(NAME, EXACT, ONE, LOGS, double, f64, )                           \
KL_DEFINE_BLOCK_DTYPE(NAME, EXACT, ONE, LOGS, float, f32, _f32)

/* Contiguous float32 rows: converted to double inside the vector loop, or
 * staged into the double buffers first?  Measured (one thread, 256-element
 * blocks): on an AVX2 host (Zen 4) the in-loop conversion is ~20% faster for
 * every quantity; on an AVX-512 host (Xeon, the x86-64-v4 clone) staging is
 * 13-30% faster for the quantities whose terms take logs or exps (LOGS = 1:
 * KL, cross-entropy, entropy, JS, Renyi's general order) and in-loop 10-40%
 * faster for the others (Hellinger, TV, chi^2, Renyi 1/2 and 2) and for the
 * pass of sums alone.  Both run the same double operations on the same
 * (exactly converted) values in the same lane order, so the choice never
 * changes a bit. */
static int kl_f32_in_loop(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    static int in_loop = -1;      /* a benign race: every thread stores the same value */
    if (in_loop < 0) {
        __builtin_cpu_init();
        in_loop = !__builtin_cpu_supports("avx512f");
    }
    return in_loop;
#else
    return 1;
#endif
}

/* A prefetch of the N elements after X: the next row's, when a C-contiguous batch
 * is read row by row.  The hardware's stream prefetchers stop at each 4 KiB page,
 * and a row of 256 doubles is half a page: without this the rows streamed from
 * memory ran at a speed that depended on how p and q were placed relative to
 * each other (KL of 200,000 x 256 float64 rows, one core: 129-180 ms over four
 * offsets of q, 112-125 ms with it).  At most a page: within one the hardware
 * keeps up by itself.  A prefetch never faults, so the lines past the last row
 * cost nothing but the request. */
#define KL_PREFETCH_AFTER(X, N)                                                        \
    for (ptrdiff_t b_ = 0; b_ < (ptrdiff_t) ((N) * sizeof(*(X))) && b_ < 4096; b_ += 64) \
        __builtin_prefetch((const char*) ((X) + (N)) + b_)

#define KL_DEFINE_BLOCK_DTYPE(NAME, EXACT, ONE, LOGS, T, SUFFIX, SFX)                  \
kl_block_sums NAME##_##SUFFIX(int mode, const T* p, ptrdiff_t sp, const T* q,          \
                              ptrdiff_t sq, ptrdiff_t n, double eps, double dp,        \
                              double dq, double c)                                     \
{                                                                                      \
    /* acc rows: terms, odd counts, sums of p, sums of q, sign bits; 8 lanes each */  \
    double acc[5 * KL_LANES] = {0};                                                    \
    /* bq is offset by 64 bytes from a 4 KiB multiple of bp: equal low address  \
     * bits alias in the load/store unit and cost ~60% (measured) */             \
    double buffer[2 * KL_CHUNK + 8];                                                   \
    double* bp = buffer;                                                               \
    double* bq = buffer + KL_CHUNK + 8;                                                \
    kl_block_sums r;                                                                   \
    /* the next row's cache lines, if rows follow each other: see KL_PREFETCH_AFTER */ \
    if (sp == 1) KL_PREFETCH_AFTER(p, n);                                              \
    if (!(ONE) && sq == 1) KL_PREFETCH_AFTER(q, n);                                    \
    if (sp == 1 && (ONE || sq == 1)                                                    \
        && (sizeof(T) == sizeof(double) || !(LOGS) || mode == KL_MODE_SUMS             \
            || kl_f32_in_loop())) {                                                    \
        NAME##_acc##SFX(mode, p, q, n, eps, dp, dq, c, acc);                              \
    } else {                                                                           \
        for (ptrdiff_t o = 0; o < n; o += KL_CHUNK) {                                  \
            ptrdiff_t m = n - o < KL_CHUNK ? n - o : KL_CHUNK;                         \
            for (ptrdiff_t j = 0; j < m; ++j) bp[j] = p[(o + j) * sp];                 \
            if (!ONE) for (ptrdiff_t j = 0; j < m; ++j) bq[j] = q[(o + j) * sq];       \
            NAME##_acc(mode, bp, bq, m, eps, dp, dq, c, acc);                             \
        }                                                                              \
    }                                                                                  \
    r.terms = kl_tree8(acc); r.n_odd = kl_tree8(acc + KL_LANES);                       \
    r.sum_p = kl_tree8(acc + 2 * KL_LANES); r.sum_q = kl_tree8(acc + 3 * KL_LANES);    \
    r.n_bad = kl_block_flag(acc + 4 * KL_LANES, r.sum_p, r.sum_q);                     \
    if (r.n_odd > 0.0 && mode != KL_MODE_SUMS)                                         \
        r.terms = kl_block_exact_##T(EXACT, ONE, p, sp, q, sq, n,                      \
                                     mode == KL_MODE_TERMS_SCALED, eps, dp, dq, c);       \
    return r;                                                                          \
}

/* Every term takes a parameter c (the Renyi divergence's 1 - alpha); the
 * other quantities ignore it (these wrappers), at no cost once inlined. */
#define KL_IGNORING_C(F)                                                               \
KL_INLINE double F##_c(double p, double q, double c) { (void) c; return F(p, q); }

KL_IGNORING_C(kl_vrel_entr)  KL_IGNORING_C(kl_rel_entr_odd)  KL_IGNORING_C(kl_rel_entr)
KL_IGNORING_C(kl_vce_term)   KL_IGNORING_C(kl_ce_odd)        KL_IGNORING_C(kl_ce_exact)
KL_IGNORING_C(kl_ventr)      KL_IGNORING_C(kl_entr_odd)      KL_IGNORING_C(kl_entr_exact)
KL_IGNORING_C(kl_vjs_term)   KL_IGNORING_C(kl_js_odd)        KL_IGNORING_C(kl_js_term)

/* ---- the f-divergence family ------------------------------------------
 * Squared Hellinger, total variation and Pearson chi^2 sum non-negative terms
 * (no cancellation: a relative error of a few u each is a few u in the sum);
 * each term is formed from the exact-or-correctly-rounded difference p - q,
 * so it keeps its relative accuracy when p ~ q.  No logs: no odd lanes.
 * The Renyi terms are in kl_renyi_* below; the row finish in the .pyx. */

/* (sqrt p - sqrt q)^2 as ((p - q) / (sqrt p + sqrt q))^2: the difference of
 * the two roots would lose all its digits when p ~ q, the quotient none.
 * Where p or q is 0 the term is the other one, exactly (so disjoint supports
 * give a distance of exactly 1, and 0/0 gives 0). */
KL_INLINE double kl_vhellinger_term(double p, double q, double c)
{
    (void) c;
    double d = (p - q) / (__builtin_sqrt(p) + __builtin_sqrt(q));
    return (p == 0.0 || q == 0.0) ? p + q : d * d;
}

/* Float32 Hellinger's fast tier: sum (sqrt p - sqrt q)^2 = P + Q - 2B with
 * B = sum sqrt(p q): one root an element instead of two and a division.  For
 * float32 data p q never under- or overflows a double, each sqrt(p q) is good to
 * 1.5 u (u = 2^-53) and every sum of n terms to (n - 1) u times its size, so
 * t = (P + Q) - 2B is off by at most 2 (n + 2) u (P + Q) (2B <= P + Q).  Where
 * t >= (n + 3) 2^-24 (P + Q) that is below 2^-26 t: the distance sqrt(t / 2) is
 * then good to 2^-27, and rounded to float32 within 1 ULP (the float32
 * contract).  Elsewhere -- nearly equal rows, where P + Q - 2B cancels, and any
 * NaN or infinity -- NaN: the row takes the accurate terms above instead. */
KL_INLINE double kl_vsqrt_prod(double p, double q, double c)
{
    (void) c;
    return __builtin_sqrt(p * q);
}

static inline double kl_hellinger_fast_total(double b, double sum_p, double sum_q,
                                             ptrdiff_t n)
{
    double s = sum_p + sum_q, t = s - 2.0 * b;
    return (t >= s * ((double) n + 3.0) * 0x1p-24 && t < INFINITY) ? t : NAN;
}

KL_INLINE double kl_vtv_term(double p, double q, double c)
{
    (void) c;
    return __builtin_fabs(p - q);
}

/* (p - q)^2 / q as d (d / q): d * d would underflow first.  q == 0 < p gives
 * +inf, 0/0 gives 0.  Lanes where d / q overflows or the product underflows
 * although the exact term may not are odd: the scalar (d / sqrt q)^2 instead.
 * q + 0.0 turns a q of -0.0 into +0.0 (and nothing else): d / -0.0 would
 * give the term -inf. */
KL_INLINE double kl_vchi2_term(double p, double q, double c)
{
    (void) c;
    double d = p - q;
    double t = d * (d / (q + 0.0));
    return (p == 0.0 && q == 0.0) ? 0.0 : t;
}

KL_INLINE double kl_chi2_odd(double p, double q, double c)
{
    (void) c;
    /* the divisor of kl_vchi2_term, so the two share one division */
    double d = p - q, r = __builtin_fabs(d / (q + 0.0)), t = __builtin_fabs(d) * r;
    return (q > 0.0 && d != 0.0 && !(r <= DBL_MAX && t >= DBL_MIN)) ? 1.0 : 0.0;
}

KL_INLINE double kl_no_odd(double p, double q, double c)
{
    (void) p; (void) q; (void) c;
    return 0.0;
}

/* The odd-lane tests of float32 data read as it is (the terms and terms_sums
 * passes): the same tests, except chi^2's, which float32 data never trips.
 * For finite float32 p != q and q > 0: |d| <= 2^129 and q >= 2^-149, so
 * |d / q| <= 2^278 (no overflow); |d| >= 2^-149 (a difference of two float32
 * values is a multiple of 2^-149), so |d| |d / q| >= 2^-426 (no underflow).
 * Where an input is infinite or NaN the vector form gives the exact form's
 * inf or NaN itself (a negative value, garbage that only validate=False lets
 * through, gives its own garbage either way).  Dropping the test cut the float32 terms pass from 0.78
 * to 0.51 ns an element (one core, 256-element blocks); the scaled pass
 * ((p + eps) / dp, any eps) keeps it. */
#define kl_rel_entr_odd_c_raw_f32 kl_rel_entr_odd_c
#define kl_ce_odd_c_raw_f32 kl_ce_odd_c
#define kl_entr_odd_c_raw_f32 kl_entr_odd_c
#define kl_js_odd_c_raw_f32 kl_js_odd_c
#define kl_renyi_odd_raw_f32 kl_renyi_odd
#define kl_no_odd_raw_f32 kl_no_odd
#define kl_chi2_odd_raw_f32 kl_no_odd

/* expm1(x): x + x^2 (1/2! + x/3! + ... + x^18/20!) on |x| <= 1 (kl_vexpm1mx's
 * series: below 1 ulp there), e^x - 1 beyond (|e^x - 1| >= 0.63: no cancellation). */
KL_INLINE double kl_vexpm1(double x)
{
    int band = x >= -1.0 && x <= 1.0;
    double xb = band ? x : 0.0;
    double p = 1.0 / 2432902008176640000.0;
    p = p * xb + 1.0 / 121645100408832000.0; p = p * xb + 1.0 / 6402373705728000.0;
    p = p * xb + 1.0 / 355687428096000.0;    p = p * xb + 1.0 / 20922789888000.0;
    p = p * xb + 1.0 / 1307674368000.0;      p = p * xb + 1.0 / 87178291200.0;
    p = p * xb + 1.0 / 6227020800.0;         p = p * xb + 1.0 / 479001600.0;
    p = p * xb + 1.0 / 39916800.0;           p = p * xb + 1.0 / 3628800.0;
    p = p * xb + 1.0 / 362880.0;             p = p * xb + 1.0 / 40320.0;
    p = p * xb + 1.0 / 5040.0;               p = p * xb + 1.0 / 720.0;
    p = p * xb + 1.0 / 120.0;                p = p * xb + 1.0 / 24.0;
    p = p * xb + 1.0 / 6.0;                  p = p * xb + 0.5;
    return band ? xb + (xb * xb) * p : kl_vexp(x) - 1.0;
}

/* log(q/p) for p, q > 0 with the rounding of r = q/p corrected: q = r p + e
 * exactly (fma), so log(q/p) = log r + e/(r p) + O(u^2) and r p ~ q.  The
 * caller flags r that is not a normal double (kl_odd_log_arg). */
KL_INLINE double kl_vlog_ratio(double q, double p)
{
    double r = q / p;
    double e = __builtin_fma(-r, p, q);
    return kl_vlog_normal(r) + e / q;
}

/* Renyi, first tier: w = p^alpha q^(1-alpha) - p = p expm1(c log(q/p)),
 * c = 1 - alpha.  Summed over a row, W = S - P (S = sum p^alpha q^(1-alpha),
 * P = sum p) comes without the cancellation of S - P: each w keeps its
 * relative accuracy (log ratio corrected, expm1), so D = log1p(W/P)/(alpha-1)
 * is accurate when p ~ q.  p == 0 adds nothing; q == 0 < p adds -p (alpha < 1:
 * the term is 0) or +inf (alpha > 1).  NaN or negative input gives NaN.
 * Odd lanes: the ratio is not normal, or e^(c L) overflows (the term may not). */
KL_INLINE double kl_vrenyi_w(double p, double q, double c)
{
    double t = p * kl_vexpm1(c * kl_vlog_ratio(q, p));
    t = (c == 1.0) ? q - p : t;     /* alpha = 0: the term is q, exactly */
    t = (q == 0.0) ? ((c > 0.0) ? -p : INFINITY) : t;
    t = (p == 0.0) ? 0.0 : t;
    return (p < 0.0 || q < 0.0 || p != p || q != q) ? NAN : t;
}

/* The orders people use most have algebraic terms, cheaper and as accurate
 * (each a few u relative), with loops of their own:
 * alpha = 1/2: w = sqrt(p q) - p = sqrt p (q - p) / (sqrt p + sqrt q);
 * alpha = 2:   w = p^2 / q - p = p (p - q) / q.  No log, no exp: no odd lanes. */
KL_INLINE double kl_vrenyi_w_half(double p, double q, double c)
{
    (void) c;
    double sp = __builtin_sqrt(p);
    double t = sp * ((q - p) / (sp + __builtin_sqrt(q)));
    t = (q == 0.0) ? -p : t;
    t = (p == 0.0) ? 0.0 : t;
    return (p < 0.0 || q < 0.0 || p != p || q != q) ? NAN : t;
}

KL_INLINE double kl_vrenyi_w_two(double p, double q, double c)
{
    (void) c;
    double t = p * ((p - q) / q);
    t = (q == 0.0) ? INFINITY : t;
    t = (p == 0.0) ? 0.0 : t;
    return (p < 0.0 || q < 0.0 || p != p || q != q) ? NAN : t;
}

KL_INLINE double kl_renyi_odd(double p, double q, double c)
{
    double r = q / p;
    double big = (p > 0.0 && q > 0.0 && c * kl_vlog_ratio(q, p) > 709.0) ? 1.0 : 0.0;
    return (p > 0.0 && q > 0.0) ? kl_odd_log_arg(r) + big : 0.0;
}

/* Renyi, second tier (rows where S < P/2, nearly disjoint supports with
 * alpha < 1: W = S - P cancels there): the terms s = p^alpha q^(1-alpha) =
 * p e^(c log(q/p)) themselves, all >= 0. */
KL_INLINE double kl_vrenyi_s(double p, double q, double c)
{
    double t = p * kl_vexp(c * kl_vlog_ratio(q, p));
    t = (c == 1.0) ? q : t;
    t = (q == 0.0) ? ((c > 0.0) ? 0.0 : INFINITY) : t;
    t = (p == 0.0) ? 0.0 : t;
    return (p < 0.0 || q < 0.0 || p != p || q != q) ? NAN : t;
}

/* ---- the row quantities: one line each --------------------------------- */

/* What a row's sum of terms becomes (before the division by log(base)).  A
 * clamp only removes a rounding excess: NaN and the infinities pass unchanged
 * (a clamp never makes an infinity finite). */
#define KL_LN2 0.6931471805599453
#define KL_LN2_ROUNDING 0.6931471805599552      /* LN2 (1 + 64 eps) */
#define KL_ONE_ROUNDING 1.0000000000000142      /* 1 + 64 eps */

KL_INLINE double kl_finish_plain(double t) { return t; }

/* divergences are never negative: on stored inputs whose sums differ by
 * rounding, the exact sum can dip below zero by ~eps */
KL_INLINE double kl_finish_nonneg(double t) { return (t < 0.0 && t > -INFINITY) ? 0.0 : t; }

/* disjoint supports: log 2 up to rounding */
KL_INLINE double kl_finish_js(double t)
{
    t = kl_finish_nonneg(t);
    return (t > KL_LN2 && t <= KL_LN2_ROUNDING) ? KL_LN2 : t;
}

KL_INLINE double kl_at_most_one(double t) { return (t > 1.0 && t <= KL_ONE_ROUNDING) ? 1.0 : t; }

/* the sum of squared root differences -> the distance sqrt(sum / 2) <= 1 */
KL_INLINE double kl_finish_hellinger(double t) { return kl_at_most_one(sqrt(0.5 * t)); }

KL_INLINE double kl_finish_tv(double t) { return kl_at_most_one(0.5 * t); }

/* The table of row quantities (an X-macro: written once here, stamped below
 * into the block loops, the kind codes, the dispatch and the finishes that
 * src/rows.pyx calls; rows.pyx also makes a row kernel `KERNEL` of every line
 * that names one).  Columns:
 *   NAME    the C name: kl_block_NAME_f32/_f64, kind code KL_ROW_NAME
 *   KERNEL  its row kernel in kl_fast._cython.rows, or "" (a tier of Renyi's)
 *   TERM    the branch-free vector term (p, q, c); c is Renyi's 1 - alpha
 *   ODD     1 where TERM cannot take the lane (kl_no_odd: never)
 *   EXACT   the scalar form an odd lane is recomputed with
 *   ONE     1 if it reads p only (entropy)
 *   LOGS    1 if TERM takes a log or an exp (kl_f32_in_loop)
 *   FINISH  row sum -> value
 * A new probability-row quantity is its TERM (ODD, EXACT) above and a line
 * here; docs/architecture.md, "How to add a quantity", lists the rest. */
#define KL_ROW_QUANTITIES(X)                                                           \
X(kl, "kl_rows", kl_vrel_entr_c, kl_rel_entr_odd_c, kl_rel_entr_c, 0, 1, kl_finish_nonneg) \
X(ce, "cross_entropy_rows", kl_vce_term_c, kl_ce_odd_c, kl_ce_exact_c, 0, 1, kl_finish_plain) \
X(h, "entropy_rows", kl_ventr_c, kl_entr_odd_c, kl_entr_exact_c, 1, 1, kl_finish_plain)     \
X(js, "js_rows", kl_vjs_term_c, kl_js_odd_c, kl_js_term_c, 0, 1, kl_finish_js)             \
X(hellinger, "hellinger_rows", kl_vhellinger_term, kl_no_odd, kl_vhellinger_term, 0, 0,   \
  kl_finish_hellinger)                                                                 \
X(tv, "total_variation_rows", kl_vtv_term, kl_no_odd, kl_vtv_term, 0, 0, kl_finish_tv)     \
X(chi2, "chi2_rows", kl_vchi2_term, kl_chi2_odd, kl_chi2_term, 0, 0, kl_finish_plain)      \
/* float32 Hellinger's fast tier (B = sum sqrt(p q)), picked by rows.pyx's _row */\
X(hellinger_bc, "", kl_vsqrt_prod, kl_no_odd, kl_vsqrt_prod, 0, 0, kl_finish_plain)        \
/* Renyi's tiers (rows.pyx's renyi_rows picks them): the first, w = s - p,    \
 * in general and at alpha = 1/2 and 2; the second, the terms s themselves */    \
X(renyi_w, "", kl_vrenyi_w, kl_renyi_odd, kl_renyi_w, 0, 1, kl_finish_nonneg)            \
X(renyi_half, "", kl_vrenyi_w_half, kl_no_odd, kl_vrenyi_w_half, 0, 0, kl_finish_nonneg)  \
X(renyi_two, "", kl_vrenyi_w_two, kl_no_odd, kl_vrenyi_w_two, 0, 0, kl_finish_nonneg)     \
X(renyi_s, "", kl_vrenyi_s, kl_renyi_odd, kl_renyi_s, 0, 1, kl_finish_plain)

#define KL_STAMP_ROW(NAME, KERNEL, TERM, ODD, EXACT, ONE, LOGS, FINISH)                \
KL_DEFINE_PASSES(kl_pass_##NAME, TERM, ODD, ONE, !(LOGS))                               \
KL_DEFINE_BLOCK(kl_block_##NAME, kl_pass_##NAME, EXACT, ONE, LOGS)
KL_ROW_QUANTITIES(KL_STAMP_ROW)

#define KL_ROW_CODE(NAME, ...) KL_ROW_##NAME,
enum { KL_ROW_QUANTITIES(KL_ROW_CODE) KL_N_ROWS };

#define KL_ROW_KERNEL(NAME, KERNEL, ...) KERNEL,
/* the row kernel of kind code `kind` ("" for none; NULL past the table) */
static inline const char* kl_row_kernel(int kind)
{
    static const char* kernels[] = {KL_ROW_QUANTITIES(KL_ROW_KERNEL) NULL};
    return (kind >= 0 && kind < KL_N_ROWS) ? kernels[kind] : NULL;
}

#define KL_ROW_ONE(NAME, KERNEL, TERM, ODD, EXACT, ONE, ...) case KL_ROW_##NAME: return ONE;
/* 1 if quantity `kind` reads p only */
static inline int kl_row_one_input(int kind)
{
    switch (kind) { KL_ROW_QUANTITIES(KL_ROW_ONE) default: return 0; }
}

#define KL_ROW_FINISH(NAME, KERNEL, TERM, ODD, EXACT, ONE, LOGS, FINISH)               \
    case KL_ROW_##NAME: return FINISH(total);
static inline double kl_row_finish(int kind, double total)
{
    switch (kind) { KL_ROW_QUANTITIES(KL_ROW_FINISH) default: return total; }
}

/* kl_block_row_f32 / _f64: the block kernel of kind code `kind` */
#define KL_ROW_CALL_f32(NAME, ...)                                                     \
    case KL_ROW_##NAME: return kl_block_##NAME##_f32(mode, p, sp, q, sq, n, eps, dp, dq, c);
#define KL_ROW_CALL_f64(NAME, ...)                                                     \
    case KL_ROW_##NAME: return kl_block_##NAME##_f64(mode, p, sp, q, sq, n, eps, dp, dq, c);
#define KL_DEFINE_ROW_DISPATCH(T, SUFFIX)                                              \
static inline kl_block_sums kl_block_row_##SUFFIX(                                     \
    int kind, int mode, const T* p, ptrdiff_t sp, const T* q, ptrdiff_t sq,            \
    ptrdiff_t n, double eps, double dp, double dq, double c)                           \
{                                                                                      \
    /* any other kind: Renyi's order inf, whose sums pass is TV's */                  \
    switch (kind) { KL_ROW_QUANTITIES(KL_ROW_CALL_##SUFFIX) default: break; }          \
    return kl_block_tv_##SUFFIX(mode, p, sp, q, sq, n, eps, dp, dq, c);                \
}
KL_DEFINE_ROW_DISPATCH(float, f32)
KL_DEFINE_ROW_DISPATCH(double, f64)

/* ---- diagonal Gaussians ------------------------------------------------ */

/* log1p(x) - x without cancellation, for x in [-1/2, 1] (callers handle the
 * rest).  With s = x/(2+x), log1p(x) = 2 atanh(s) and 2s - x = -x s exactly
 * in real arithmetic, so log1p(x) - x = -x s + 2 s^3 (1/3 + s^2/5 + ...),
 * where the first term dominates and nothing cancels; |s| <= 1/3 there, so
 * 18 terms reach double precision.  Unrolled for the vectorizer. */
KL_INLINE double kl_vlog1pmx_band(double x)
{
    double s = x / (2.0 + x), s2 = s * s, p = 1.0 / 37;
    p = p * s2 + 1.0 / 35; p = p * s2 + 1.0 / 33; p = p * s2 + 1.0 / 31;
    p = p * s2 + 1.0 / 29; p = p * s2 + 1.0 / 27; p = p * s2 + 1.0 / 25;
    p = p * s2 + 1.0 / 23; p = p * s2 + 1.0 / 21; p = p * s2 + 1.0 / 19;
    p = p * s2 + 1.0 / 17; p = p * s2 + 1.0 / 15; p = p * s2 + 1.0 / 13;
    p = p * s2 + 1.0 / 11; p = p * s2 + 1.0 / 9;  p = p * s2 + 1.0 / 7;
    p = p * s2 + 1.0 / 5;  p = p * s2 + 1.0 / 3;
    return -x * s + 2.0 * s * s2 * p;
}

KL_INLINE double kl_vu_minus_1_minus_log_u(double um1, double log_u)
{
    int band = um1 >= -0.5 && um1 <= 1.0;
    double series = -kl_vlog1pmx_band(band ? um1 : 0.0);
    return band ? series : um1 - log_u;
}

/* expm1(x) - x: Taylor series to 1/20! on |x| <= 1, exp(x) - 1 - x beyond */
KL_INLINE double kl_vexpm1mx(double x)
{
    double p = 1.0 / 2432902008176640000.0;
    p = p * x + 1.0 / 121645100408832000.0; p = p * x + 1.0 / 6402373705728000.0;
    p = p * x + 1.0 / 355687428096000.0;    p = p * x + 1.0 / 20922789888000.0;
    p = p * x + 1.0 / 1307674368000.0;      p = p * x + 1.0 / 87178291200.0;
    p = p * x + 1.0 / 6227020800.0;         p = p * x + 1.0 / 479001600.0;
    p = p * x + 1.0 / 39916800.0;           p = p * x + 1.0 / 3628800.0;
    p = p * x + 1.0 / 362880.0;             p = p * x + 1.0 / 40320.0;
    p = p * x + 1.0 / 5040.0;               p = p * x + 1.0 / 720.0;
    p = p * x + 1.0 / 120.0;                p = p * x + 1.0 / 24.0;
    p = p * x + 1.0 / 6.0;                  p = p * x + 0.5;
    double far = (kl_vexp(x) - 1.0) - x;
    return (x >= -1.0 && x <= 1.0) ? x * x * p : far;
}

/* expm1(x) - x for float32 results: relative error below 2^-38, which the
 * final rounding to float32 (2^-24) cannot see, at about a third of
 * kl_vexpm1mx's cost.  |x| <= 1/16: x^2 (1/2! + x/3! + ... + x^5/7!), whose
 * truncation is below 2 |x|^6 / 8! <= 2^-38.3 relative.  Beyond: e^x by
 * kl_vexp_fast (< 4u) and (e^x - 1) - x or e^x + (-1 - x); the worst case is
 * the edge of the band, |x| = 1/16, where the result is ~0.002 and the error
 * ~6u absolute: 2^-41 relative.  x is clamped to kl_vexp_fast's domain:
 * below -708, e^x is negligible against -1 - x; above 709 the result is inf
 * (as are float32 inputs' results beyond 88.7).  NaN gives NaN. */
KL_INLINE double kl_vexpm1mx_f32(double x)
{
    int band = x >= -0.0625 && x <= 0.0625;
    double xb = band ? x : 0.0;
    double p = 1.0 / 5040;
    p = p * xb + 1.0 / 720; p = p * xb + 1.0 / 120; p = p * xb + 1.0 / 24;
    p = p * xb + 1.0 / 6;   p = p * xb + 0.5;
    double xc = x > 709.0 ? 709.0 : (x < -708.0 ? -708.0 : x);
    double e = kl_vexp_fast(xc);
    double far = x < 0.0 ? e + (-1.0 - x) : (e - 1.0) - x;
    far = x > 709.0 ? INFINITY : far;
    return band ? (xb * xb) * p : far;
}

/* 2 KL(N(m1, v1) || N(m2, v2)) per coordinate, s1/s2 in the given scale:
 *     u - 1 - log u + (m1 - m2)^2 / v2,   u = v1 / v2.
 * u - 1 is formed exactly near u = 1 ((s1 - s2) is exact by Sterbenz), and
 * for log scales u - 1 - log u = expm1(d) - d with d = log u exact, so the
 * term stays accurate and non-negative when the Gaussians nearly coincide
 * (the textbook form had relative error 18 there; research notes 1.3). */
KL_INLINE double kl_vgauss_var(double m1, double s1, double m2, double s2)
{
    double dm = m1 - m2;
    return kl_vu_minus_1_minus_log_u((s1 - s2) / s2, kl_vlog(s1) - kl_vlog(s2)) + dm * dm / s2;
}
KL_INLINE double kl_vgauss_std(double m1, double s1, double m2, double s2)
{
    double z = (m1 - m2) / s2;
    return kl_vu_minus_1_minus_log_u(((s1 - s2) / s2) * ((s1 + s2) / s2),
                                     2.0 * (kl_vlog(s1) - kl_vlog(s2))) + z * z;
}
KL_INLINE double kl_vgauss_var_prior(double m, double s, double u, double v)
{
    (void) u; (void) v;
    return kl_vu_minus_1_minus_log_u(s - 1.0, kl_vlog(s)) + m * m;
}
KL_INLINE double kl_vgauss_std_prior(double m, double s, double u, double v)
{
    (void) u; (void) v;
    return kl_vu_minus_1_minus_log_u((s - 1.0) * (s + 1.0), 2.0 * kl_vlog(s)) + m * m;
}

/* The log-scale terms (log variance, log standard deviation; against a
 * second Gaussian or the standard prior), stamped out per expm1mx: the
 * accurate kl_vexpm1mx for float64 parameters, kl_vexpm1mx_f32 (2^-38
 * relative) for float32 ones, whose float32 results cannot see the
 * difference (a sum of non-negative terms loses nothing more). */
#define KL_DEFINE_GAUSS_LOG_TERMS(SFX, EXPM1MX)                                        \
KL_INLINE double kl_vgauss_logvar##SFX(double m1, double s1, double m2, double s2)     \
{                                                                                      \
    double dm = m1 - m2;                                                               \
    return EXPM1MX(s1 - s2) + dm * dm * kl_vexp(-s2);                                  \
}                                                                                      \
KL_INLINE double kl_vgauss_logstd##SFX(double m1, double s1, double m2, double s2)     \
{                                                                                      \
    double dm = m1 - m2;                                                               \
    return EXPM1MX(2.0 * (s1 - s2)) + dm * dm * kl_vexp(-2.0 * s2);                    \
}                                                                                      \
KL_INLINE double kl_vgauss_logvar_prior##SFX(double m, double s, double u, double v)   \
{                                                                                      \
    (void) u; (void) v;                                                                \
    return EXPM1MX(s) + m * m;                                                         \
}                                                                                      \
KL_INLINE double kl_vgauss_logstd_prior##SFX(double m, double s, double u, double v)   \
{                                                                                      \
    (void) u; (void) v;                                                                \
    return EXPM1MX(2.0 * s) + m * m;                                                   \
}

KL_DEFINE_GAUSS_LOG_TERMS(, kl_vexpm1mx)
KL_DEFINE_GAUSS_LOG_TERMS(_f32, kl_vexpm1mx_f32)

KL_INLINE double kl_bad_finite(double x) { return (x - x == 0.0) ? 0.0 : 1.0; }
KL_INLINE double kl_bad_positive(double x) { return (x > 0.0 && x < INFINITY) ? 0.0 : 1.0; }

/* One row of n coordinates: sum of 2 KL terms in lanes, and the count of
 * invalid parameters (means must be finite; variances and standard deviations
 * finite and > 0; log scales finite). */
#define KL_GAUSS_LOOP(T, TERM, BADS, PRIOR)                                            \
    {                                                                                  \
        ptrdiff_t j = 0, l, n_full = n - n % KL_LANES;                                 \
        if (sm1 == 1 && ss1 == 1 && (PRIOR || (sm2 == 1 && ss2 == 1))) {                \
            for (; j < n_full; j += KL_LANES)                                          \
                for (l = 0; l < KL_LANES; ++l) {                                       \
                    double a = m1[j + l], b = s1[j + l];                               \
                    double c = PRIOR ? 0.0 : m2[j + l], d = PRIOR ? 1.0 : s2[j + l];   \
                    at[l] += TERM(a, b, c, d);                                         \
                    if (check) ab[l] += kl_bad_finite(a) + BADS(b)                     \
                        + (PRIOR ? 0.0 : kl_bad_finite(c) + BADS(d));                  \
                }                                                                      \
        }                                                                              \
        for (; j < n; ++j) {                                                           \
            double a = m1[j * sm1], b = s1[j * ss1];                                   \
            double c = PRIOR ? 0.0 : m2[j * sm2], d = PRIOR ? 1.0 : s2[j * ss2];       \
            at[j % KL_LANES] += TERM(a, b, c, d);                                      \
            if (check) ab[j % KL_LANES] += kl_bad_finite(a) + BADS(b)                  \
                + (PRIOR ? 0.0 : kl_bad_finite(c) + BADS(d));                          \
        }                                                                              \
    }

#define KL_DEFINE_GAUSS(NAME, T, LV, LS, LVP, LSP)                                     \
KL_CLONES kl_block_sums NAME(int scale, int prior, int check,                          \
                             const T* m1, ptrdiff_t sm1, const T* s1, ptrdiff_t ss1,   \
                             const T* m2, ptrdiff_t sm2, const T* s2, ptrdiff_t ss2,   \
                             ptrdiff_t n)                                              \
{                                                                                      \
    double at[KL_LANES] = {0}, ab[KL_LANES] = {0};                                     \
    kl_block_sums r;                                                                   \
    /* the next row's lines (see KL_PREFETCH_AFTER) */                                 \
    if (sm1 == 1) KL_PREFETCH_AFTER(m1, n);                                            \
    if (ss1 == 1) KL_PREFETCH_AFTER(s1, n);                                            \
    if (!prior && sm2 == 1) KL_PREFETCH_AFTER(m2, n);                                  \
    if (!prior && ss2 == 1) KL_PREFETCH_AFTER(s2, n);                                  \
    switch (scale * 2 + (prior != 0)) {                                                \
    case 2 * KL_SCALE_VAR:        KL_GAUSS_LOOP(T, kl_vgauss_var, kl_bad_positive, 0) break; \
    case 2 * KL_SCALE_VAR + 1:    KL_GAUSS_LOOP(T, kl_vgauss_var_prior, kl_bad_positive, 1) break; \
    case 2 * KL_SCALE_STD:        KL_GAUSS_LOOP(T, kl_vgauss_std, kl_bad_positive, 0) break; \
    case 2 * KL_SCALE_STD + 1:    KL_GAUSS_LOOP(T, kl_vgauss_std_prior, kl_bad_positive, 1) break; \
    case 2 * KL_SCALE_LOGVAR:     KL_GAUSS_LOOP(T, LV, kl_bad_finite, 0) break;         \
    case 2 * KL_SCALE_LOGVAR + 1: KL_GAUSS_LOOP(T, LVP, kl_bad_finite, 1) break;        \
    case 2 * KL_SCALE_LOGSTD:     KL_GAUSS_LOOP(T, LS, kl_bad_finite, 0) break;         \
    default:                      KL_GAUSS_LOOP(T, LSP, kl_bad_finite, 1)               \
    }                                                                                  \
    r.terms = kl_tree8(at); r.n_bad = kl_tree8(ab);                                    \
    r.sum_p = 0.0; r.sum_q = 0.0; r.n_odd = 0.0;                                       \
    return r;                                                                          \
}

/* float32 parameters take the float32 log-scale terms (their results are
 * float32: the accurate expm1mx's last bits cannot show) */
KL_DEFINE_GAUSS(kl_gauss_block_f32, float, kl_vgauss_logvar_f32, kl_vgauss_logstd_f32,
                kl_vgauss_logvar_prior_f32, kl_vgauss_logstd_prior_f32)
KL_DEFINE_GAUSS(kl_gauss_block_f64, double, kl_vgauss_logvar, kl_vgauss_logstd,
                kl_vgauss_logvar_prior, kl_vgauss_logstd_prior)

/* x[j] = -log x[j] over a small buffer: the label cross-entropy gathers the
 * picked probabilities first so that the logs run as one vector loop.
 * 0.0 - log x, not -log x: a certain label (x = 1) gives +0.0, not -0.0 (signed
 * zeros are honoured without -ffast-math, so the compiler keeps the subtraction). */
KL_CLONES void kl_neg_log_inplace(double* x, ptrdiff_t n)
{
    for (ptrdiff_t j = 0; j < n; ++j) x[j] = 0.0 - kl_vlog(x[j]);
}

#endif
