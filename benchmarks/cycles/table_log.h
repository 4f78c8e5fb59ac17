#include "tab.h"   /* python benchmarks/cycles/log_table.py > benchmarks/cycles/tab.h */
#define KL_LOG_OFF 0x3fe6000000000000ULL
static inline __attribute__((always_inline)) double tlog(double x){
    uint64_t ix = kl_bits(x);
    uint64_t tmp = ix - KL_LOG_OFF;
    uint64_t i = (tmp >> 45) & 127;
    uint64_t kb = (ix + (0x3ff0000000000000ULL - KL_LOG_OFF)) >> 52;
    double z = kl_from_bits(ix - (kb << 52) + (1023ULL << 52));
    double invc = KL_LOG_INVC[i], logc = KL_LOG_LOGC[i];
    double r = __builtin_fma(z, invc, -1.0);
    double kd = (kl_from_bits(KL_SHIFTER_BITS + kb) - KL_SHIFTER) - 1023.0;
    double w = kd * KL_LN2_HI + logc;
    double hi = w + r;
    double lo = (w - hi) + r + kd * KL_LN2_LO;
    double r2 = r * r;
    double p = -1.0/8; p = __builtin_fma(p, r, 1.0/7); p = __builtin_fma(p, r, -1.0/6); p = __builtin_fma(p, r, 1.0/5);
    p = __builtin_fma(p, r, -1.0/4); p = __builtin_fma(p, r, 1.0/3); p = __builtin_fma(p, r, -0.5);
    return (lo + r2 * p) + hi;
}
static inline __attribute__((always_inline)) double tlog4(double x){
    uint64_t ix = kl_bits(x);
    uint64_t tmp = ix - KL_LOG_OFF;
    uint64_t i = (tmp >> 45) & 127;
    uint64_t kb = (ix + (0x3ff0000000000000ULL - KL_LOG_OFF)) >> 52;
    double z = kl_from_bits(ix - (kb << 52) + (1023ULL << 52));
    double invc = KL_LOG_INVC[i], logc = KL_LOG_LOGC[i];
    double r = __builtin_fma(z, invc, -1.0);
    double kd = (kl_from_bits(KL_SHIFTER_BITS + kb) - KL_SHIFTER) - 1023.0;
    double p = __builtin_fma(__builtin_fma(-0.25, r, 1.0/3), r, -0.5);
    return __builtin_fma(kd, 0x1.62e42fefa39efp-1, logc) + __builtin_fma(r * r, p, r);
}
