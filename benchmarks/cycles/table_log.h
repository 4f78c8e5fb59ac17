/* A table-driven log, glibc / ARM optimized-routines style, for the timing
 * comparison of elementary.c only (not shipped: measured slower than fdlibm's
 * on AVX2, where each table lookup is a gather).  x = 2^k z, z in
 * [0.6875, 1.375) split into 128 intervals; log x = k ln2 + log c + log1p(r),
 * r = z / c - 1 by one fma with the tabulated 1/c. */
#include "tab.h"   /* python benchmarks/cycles/log_table.py > benchmarks/cycles/tab.h */
#define KL_LOG_OFF 0x3fe6000000000000ULL

/* the shared reduction: r, log c and k for x > 0 normal */
static inline __attribute__((always_inline)) double tlog_reduce(double x, double* logc,
                                                                double* kd)
{
    uint64_t ix = kl_bits(x);
    uint64_t i = ((ix - KL_LOG_OFF) >> 45) & 127;
    uint64_t kb = (ix + (0x3ff0000000000000ULL - KL_LOG_OFF)) >> 52;
    double z = kl_from_bits(ix - (kb << 52) + (1023ULL << 52));
    *logc = KL_LOG_LOGC[i];
    *kd = (kl_from_bits(KL_SHIFTER_BITS + kb) - KL_SHIFTER) - 1023.0;
    return __builtin_fma(z, KL_LOG_INVC[i], -1.0);
}

/* double-precision grade: log1p(r) - r by its Taylor polynomial to r^8 */
static inline __attribute__((always_inline)) double tlog(double x)
{
    double logc, kd, r = tlog_reduce(x, &logc, &kd);
    double w = kd * KL_LN2_HI + logc;
    double hi = w + r;
    double lo = (w - hi) + r + kd * KL_LN2_LO;
    double p = -1.0 / 8;
    p = __builtin_fma(p, r, 1.0 / 7);
    p = __builtin_fma(p, r, -1.0 / 6);
    p = __builtin_fma(p, r, 1.0 / 5);
    p = __builtin_fma(p, r, -1.0 / 4);
    p = __builtin_fma(p, r, 1.0 / 3);
    p = __builtin_fma(p, r, -0.5);
    return (lo + r * r * p) + hi;
}

/* float32 grade: to r^4 (relative error ~2^-35 near 1) */
static inline __attribute__((always_inline)) double tlog4(double x)
{
    double logc, kd, r = tlog_reduce(x, &logc, &kd);
    double p = __builtin_fma(__builtin_fma(-0.25, r, 1.0 / 3), r, -0.5);
    return __builtin_fma(kd, 0x1.62e42fefa39efp-1, logc) + __builtin_fma(r * r, p, r);
}
