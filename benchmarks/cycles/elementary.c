/* One-core cost of the elementary functions and terms of src/kl_vmath.h and
 * src/kl_blocks.h, on data in L1 (4096 elements, best of 7 runs of 3000
 * repetitions), in ns an element:
 *
 *   python benchmarks/cycles/log_table.py > benchmarks/cycles/tab.h
 *   gcc -O3 -march=native -ffp-contract=off -fno-trapping-math -fno-math-errno \
 *       -fopenmp-simd -Isrc -Ibenchmarks/cycles benchmarks/cycles/elementary.c \
 *       -o /tmp/elementary -lm && /tmp/elementary
 *
 * Every loop body reads float32 data (what model outputs are), widens it to
 * double and accumulates into 8 lanes as the kernels do.  The table-driven
 * logs (table_log.h) and the float32-reciprocal variants are experiments that
 * were measured and not shipped; docs/performance.md gives the figures. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kl_vmath.h"
#include "table_log.h"

#define N 4096

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* fdlibm's log with s = f / (2 + f) from a float32 reciprocal refined by one
 * Newton step (no double division): the variant tried for float32 data */
static inline __attribute__((always_inline)) double vlog_float_reciprocal(double x)
{
    uint64_t ix = kl_bits(x);
    uint64_t kb = (ix + (0x3ff0000000000000ULL - 0x3fe6a09e667f3bcdULL)) >> 52;
    double z = kl_from_bits(ix - (kb << 52) + (1023ULL << 52));
    double f = z - 1.0, den = 2.0 + f;
    double rc = (double) (1.0f / (float) den);
    double s0 = f * rc;
    double s = s0 + __builtin_fma(-s0, den, f) * rc;
    double dk = (kl_from_bits(KL_SHIFTER_BITS + kb) - KL_SHIFTER) - 1023.0;
    return kl_vlog_poly(f, s, dk, dk * KL_LN2_LO);
}

#define LOOP(NAME, EXPR)                                                               \
    __attribute__((noinline)) static double NAME(const float* p, const float* q)       \
    {                                                                                  \
        double acc[8] = {0};                                                           \
        for (int j = 0; j < N; j += 8)                                                 \
            _Pragma("omp simd") for (int l = 0; l < 8; ++l)                            \
            {                                                                          \
                double x = (double) p[j + l], y = (double) q[j + l];                   \
                (void) y;                                                              \
                acc[l] += EXPR;                                                        \
            }                                                                          \
        return kl_tree8(acc);                                                          \
    }

static inline double kl_tree8(const double* a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

LOOP(sum_p, x)
LOOP(ratio, x / y)
LOOP(xlogx_fdlibm, -x * kl_vlog_normal(x))
LOOP(xlogx_table8, -x * tlog(x))
LOOP(xlogx_table4, -x * tlog4(x))
LOOP(xlogx_float_reciprocal, -x * vlog_float_reciprocal(x))
LOOP(kl_term, ({ double r = x / y; double e = __builtin_fma(-r, y, x);
                 __builtin_fma(x, kl_vlog_normal(r), e); }))
LOOP(kl_term_float_reciprocal, ({ double rc = (double) (1.0f / (float) y); double r0 = x * rc;
                                  double r = r0 + __builtin_fma(-r0, y, x) * rc;
                                  double e = __builtin_fma(-r, y, x);
                                  __builtin_fma(x, kl_vlog_normal(r), e); }))
LOOP(chi2_term, ({ double d = x - y; d * (d / y); }))
LOOP(chi2_term_float_reciprocal, ({ double r = (double) (1.0f / (float) y); double d = x - y;
                                    (d * d) * (r * (2.0 - y * r)); }))
LOOP(exp_fdlibm, kl_vexp(-x * 64.0))
LOOP(exp_fast, kl_vexp_fast(-x * 64.0))

typedef double (*loop_fn)(const float*, const float*);

int main(void)
{
    static const struct { const char* name; loop_fn fn; } loops[] = {
        {"sum of p", sum_p},
        {"p / q", ratio},
        {"-p log p, kl_vlog_normal (fdlibm)", xlogx_fdlibm},
        {"-p log p, table log, degree 8", xlogx_table8},
        {"-p log p, table log, degree 4", xlogx_table4},
        {"-p log p, float32 reciprocal in the log", xlogx_float_reciprocal},
        {"KL term p log(p/q) + residual (shipped)", kl_term},
        {"KL term, float32 reciprocal for p/q", kl_term_float_reciprocal},
        {"chi2 term d (d / q) (shipped)", chi2_term},
        {"chi2 term, float32 reciprocal", chi2_term_float_reciprocal},
        {"kl_vexp (fdlibm)", exp_fdlibm},
        {"kl_vexp_fast (Taylor 13)", exp_fast},
    };
    float* p = aligned_alloc(64, N * sizeof(float));
    float* q = aligned_alloc(64, N * sizeof(float));
    srand(1);
    for (int i = 0; i < N; ++i) {
        p[i] = (float) ((rand() + 1.0) / RAND_MAX / 256);
        q[i] = (float) ((rand() + 1.0) / RAND_MAX / 256);
    }
    for (size_t f = 0; f < sizeof(loops) / sizeof(loops[0]); ++f) {
        double best = 1e30, check = 0.0;
        for (int run = 0; run < 7; ++run) {
            double t = now();
            for (int rep = 0; rep < 3000; ++rep) {
                __asm__ volatile("" ::: "memory");   /* keep every repetition */
                check += loops[f].fn(p, q);
            }
            t = now() - t;
            best = t < best ? t : best;
        }
        printf("%-44s %6.3f ns  (%g)\n", loops[f].name, best / 3000 / N * 1e9, check);
    }
    return 0;
}
