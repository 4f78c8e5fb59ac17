/*
 * kl_pairwise.h -- the inner loops of pairwise KL (src/pairwise.pyx).
 *
 * D[i, j] = sum_k x_k (log x_k - log y_k) for one row x of P against rows y
 * of Q, from logs computed once per row (kl_vlog, <= 1 ULP) instead of one
 * log per (i, j, k).  The term is 0 where x_k == 0 and +inf where x_k > 0
 * and y_k == 0 (log y_k = -inf); equal rows give exactly 0 (same log bits).
 *
 * Summation order (the Numba mirror, kl_fast/_numba/pairwise.py, repeats
 * it): the row is cut into blocks of KL_PW_BLOCK elements; within a block
 * element k goes to lane k % KL_LANES, the lanes are combined by kl_tree8,
 * and each block's sum is added to the pair's running total in block order.
 * The running totals are passed in, so a caller may feed a row in chunks (a
 * multiple of KL_PW_BLOCK long) and get the same bits as in one go.
 */
#ifndef KL_FAST_PAIRWISE_H
#define KL_FAST_PAIRWISE_H

#include <stddef.h>
#include <string.h>
#include "kl_vmath.h"
#include "kl_blocks.h"   /* KL_CLONES, KL_LANES, kl_tree8 */

#define KL_PW_BLOCK 1024

/* x (log x - log y), 0 where x == 0 (whatever y): the scalar form, for the
 * tails of the rows (and the statement of what the vector form computes) */
KL_INLINE double kl_pw_term(double x, double lx, double ly)
{
    return x > 0.0 ? x * (lx - ly) : 0.0;
}

/* The KL_LANES lanes as one GCC vector: explicit, so that the accumulators
 * stay in registers (the auto-vectorizer gave up on four lane sets at once).
 * Each lane does the scalar IEEE operations above, so every target clone
 * (one 512-bit, two 256-bit or four 128-bit registers) gives the same bits. */
#if defined(__GNUC__)
/* the helpers below are always inlined: no vector crosses a call boundary,
 * so GCC's note about the ABI of 64-byte vector arguments does not apply */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef double kl_v8d __attribute__((vector_size(8 * sizeof(double))));
typedef long long kl_v8i __attribute__((vector_size(8 * sizeof(long long))));

KL_INLINE kl_v8d kl_v8_load(const double* p)
{
    kl_v8d v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* kl_pw_term lane by lane: the select is an AND with the mask of x > 0
 * (0.0 is all zero bits, and x NaN or <= 0 gives 0.0 as the scalar form).
 * A macro: GCC notes an ABI change for functions taking 64-byte vectors. */
#define KL_V8_TERM(x, lx, ly) \
    ((kl_v8d) ((kl_v8i) ((x) * ((lx) - (ly))) & (kl_v8i) ((x) > (kl_v8d) {0})))

KL_INLINE double kl_v8_tree(const kl_v8d* v)
{
    double a[KL_LANES];
    memcpy(a, v, sizeof a);
    return kl_tree8(a);
}

/* lx[k] = log x[k] over a contiguous buffer (vectorized) */
KL_CLONES void kl_pw_logs(const double* x, double* lx, ptrdiff_t n)
{
    for (ptrdiff_t k = 0; k < n; ++k) lx[k] = kl_vlog(x[k]);
}

/* One row (x, lx) against four rows of logs l0..l3: t[r] += the sum of the
 * terms, block by block.  Element k of a block goes to lane k % KL_LANES
 * (the tail's lanes 0 up), lanes combined by kl_tree8. */
KL_CLONES __attribute__((noinline))
void kl_pw_rows4(const double* x, const double* lx, const double* l0, const double* l1,
                 const double* l2, const double* l3, ptrdiff_t n, double* t)
{
    for (ptrdiff_t b = 0; b < n; b += KL_PW_BLOCK) {
        ptrdiff_t end = n - b < KL_PW_BLOCK ? n : b + KL_PW_BLOCK;
        ptrdiff_t full = end - (end - b) % KL_LANES, j;
        kl_v8d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (j = b; j < full; j += KL_LANES) {
            kl_v8d xv = kl_v8_load(x + j), lv = kl_v8_load(lx + j);
            a0 += KL_V8_TERM(xv, lv, kl_v8_load(l0 + j));
            a1 += KL_V8_TERM(xv, lv, kl_v8_load(l1 + j));
            a2 += KL_V8_TERM(xv, lv, kl_v8_load(l2 + j));
            a3 += KL_V8_TERM(xv, lv, kl_v8_load(l3 + j));
        }
        for (; j < end; ++j) {
            a0[j - full] += kl_pw_term(x[j], lx[j], l0[j]);
            a1[j - full] += kl_pw_term(x[j], lx[j], l1[j]);
            a2[j - full] += kl_pw_term(x[j], lx[j], l2[j]);
            a3[j - full] += kl_pw_term(x[j], lx[j], l3[j]);
        }
        t[0] += kl_v8_tree(&a0);
        t[1] += kl_v8_tree(&a1);
        t[2] += kl_v8_tree(&a2);
        t[3] += kl_v8_tree(&a3);
    }
}

/* One row against one row of logs: the additions of one lane set of
 * kl_pw_rows4 (for the last M % 4 rows of a tile). */
KL_CLONES __attribute__((noinline))
void kl_pw_rows1(const double* x, const double* lx, const double* l0, ptrdiff_t n, double* t)
{
    for (ptrdiff_t b = 0; b < n; b += KL_PW_BLOCK) {
        ptrdiff_t end = n - b < KL_PW_BLOCK ? n : b + KL_PW_BLOCK;
        ptrdiff_t full = end - (end - b) % KL_LANES, j;
        kl_v8d a0 = {0};
        for (j = b; j < full; j += KL_LANES)
            a0 += KL_V8_TERM(kl_v8_load(x + j), kl_v8_load(lx + j), kl_v8_load(l0 + j));
        for (; j < end; ++j)
            a0[j - full] += kl_pw_term(x[j], lx[j], l0[j]);
        t[0] += kl_v8_tree(&a0);
    }
}

#endif
