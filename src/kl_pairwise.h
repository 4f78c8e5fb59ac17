/*
 * kl_pairwise.h -- the inner loops of pairwise KL (src/_pairwise_cython.pyx).
 *
 * D[i, j] = sum_k x_k (log x_k - log y_k) for one row x of P against rows y
 * of Q, from logs computed once per row (kl_vlog, <= 1 ULP) instead of one
 * log per (i, j, k).  The term is 0 where x_k == 0 and +inf where x_k > 0
 * and y_k == 0 (log y_k = -inf); equal rows give exactly 0 (same log bits).
 *
 * Summation order (the Numba mirror, kl_fast/_numba_pairwise.py, repeats
 * it): the row is cut into blocks of KL_PW_BLOCK elements; within a block
 * element k goes to lane k % KL_LANES, the lanes are combined by kl_tree8,
 * and each block's sum is added to the pair's running total in block order.
 * The running totals are passed in, so a caller may feed a row in chunks (a
 * multiple of KL_PW_BLOCK long) and get the same bits as in one go.
 */
#ifndef KL_FAST_PAIRWISE_H
#define KL_FAST_PAIRWISE_H

#include <stddef.h>
#include "kl_vmath.h"
#include "kl_blocks.h"   /* KL_CLONES, KL_LANES, kl_tree8 */

#define KL_PW_BLOCK 1024

/* x (log x - log y), 0 where x == 0 (whatever y), a select so it vectorizes */
KL_INLINE double kl_pw_term(double x, double lx, double ly)
{
    return x > 0.0 ? x * (lx - ly) : 0.0;
}

/* lx[k] = log x[k] over a contiguous buffer (vectorized) */
KL_CLONES void kl_pw_logs(const double* x, double* lx, ptrdiff_t n)
{
    for (ptrdiff_t k = 0; k < n; ++k) lx[k] = kl_vlog(x[k]);
}

/* One row (x, lx) against four rows of logs l0..l3: t[r] += sum of the
 * terms, block by block (the loop the vectorizer turns into 4 x 8 lanes). */
KL_CLONES __attribute__((noinline))
void kl_pw_rows4(const double* x, const double* lx, const double* l0, const double* l1,
                 const double* l2, const double* l3, ptrdiff_t n, double* t)
{
    for (ptrdiff_t b = 0; b < n; b += KL_PW_BLOCK) {
        ptrdiff_t end = n - b < KL_PW_BLOCK ? n : b + KL_PW_BLOCK;
        ptrdiff_t full = end - (end - b) % KL_LANES, j = b, l;
        double a0[KL_LANES] = {0}, a1[KL_LANES] = {0}, a2[KL_LANES] = {0},
               a3[KL_LANES] = {0};
        for (; j < full; j += KL_LANES)
            for (l = 0; l < KL_LANES; ++l) {
                double xv = x[j + l], lv = lx[j + l];
                a0[l] += kl_pw_term(xv, lv, l0[j + l]);
                a1[l] += kl_pw_term(xv, lv, l1[j + l]);
                a2[l] += kl_pw_term(xv, lv, l2[j + l]);
                a3[l] += kl_pw_term(xv, lv, l3[j + l]);
            }
        for (; j < end; ++j) {
            a0[j - full] += kl_pw_term(x[j], lx[j], l0[j]);
            a1[j - full] += kl_pw_term(x[j], lx[j], l1[j]);
            a2[j - full] += kl_pw_term(x[j], lx[j], l2[j]);
            a3[j - full] += kl_pw_term(x[j], lx[j], l3[j]);
        }
        t[0] += kl_tree8(a0);
        t[1] += kl_tree8(a1);
        t[2] += kl_tree8(a2);
        t[3] += kl_tree8(a3);
    }
}

/* One row against one row of logs: the same additions as one lane set of
 * kl_pw_rows4 (for the last M % 4 rows of a tile). */
KL_CLONES __attribute__((noinline))
void kl_pw_rows1(const double* x, const double* lx, const double* l0, ptrdiff_t n, double* t)
{
    for (ptrdiff_t b = 0; b < n; b += KL_PW_BLOCK) {
        ptrdiff_t end = n - b < KL_PW_BLOCK ? n : b + KL_PW_BLOCK;
        ptrdiff_t full = end - (end - b) % KL_LANES, j = b, l;
        double a0[KL_LANES] = {0};
        for (; j < full; j += KL_LANES)
            for (l = 0; l < KL_LANES; ++l)
                a0[l] += kl_pw_term(x[j + l], lx[j + l], l0[j + l]);
        for (; j < end; ++j)
            a0[j - full] += kl_pw_term(x[j], lx[j], l0[j]);
        t[0] += kl_tree8(a0);
    }
}

#endif
