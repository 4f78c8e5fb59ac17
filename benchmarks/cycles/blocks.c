/* One-core timing of every row block kernel of src/kl_blocks.h, in every mode.
 *
 *   gcc -O3 -ffp-contract=off -fno-trapping-math -fno-math-errno -fopenmp-simd \
 *       -Isrc benchmarks/cycles/blocks.c -o /tmp/blocks -lm && /tmp/blocks
 *
 * (the flags of setup.py; GCC >= 12 builds the same target_clones, so the
 * AVX-512 or AVX2 clone runs as in the extension).  Each quantity and dtype
 * runs the four passes (terms; terms + the validation sums; the sums alone;
 * the scaled terms of normalize / eps) over 2048 blocks of 256 elements (2 MiB
 * a float32 input, 4 MiB a float64 one: L2 / L3), best of 5 runs of 4 sweeps,
 * and prints ns an element.  `/tmp/blocks bits` prints every block's sums in
 * hex instead (odd lengths and zeros included): run it on two builds of
 * kl_blocks.h and `cmp` the outputs to show that a change keeps the bits. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kl_blocks.h"

#define N_BLOCKS 2048
#define BLOCK_LEN 256

typedef kl_block_sums (*block_f32)(int, const float*, ptrdiff_t, const float*, ptrdiff_t,
                                   ptrdiff_t, double, double, double, double);
typedef kl_block_sums (*block_f64)(int, const double*, ptrdiff_t, const double*, ptrdiff_t,
                                   ptrdiff_t, double, double, double, double);

#define NAME_OF(NAME, KERNEL, TERM, ODD, EXACT, ONE, LOGS, FINISH) #NAME,
#define F32_OF(NAME, KERNEL, TERM, ODD, EXACT, ONE, LOGS, FINISH) kl_block_##NAME##_f32,
#define F64_OF(NAME, KERNEL, TERM, ODD, EXACT, ONE, LOGS, FINISH) kl_block_##NAME##_f64,
static const char* names[] = {KL_ROW_QUANTITIES(NAME_OF)};
static const block_f32 f32s[] = {KL_ROW_QUANTITIES(F32_OF)};
static const block_f64 f64s[] = {KL_ROW_QUANTITIES(F64_OF)};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static kl_block_sums call(int k, int is64, int mode, const float* p, const float* q,
                          const double* pd, const double* qd, ptrdiff_t n)
{
    /* eps, dp, dq, c: the scaled pass's (p + eps) / dp and Renyi's 1 - alpha */
    return is64 ? f64s[k](mode, pd, 1, qd, 1, n, 1e-9, 1.1, 1.2, 0.3)
                : f32s[k](mode, p, 1, q, 1, n, 1e-9, 1.1, 1.2, 0.3);
}

int main(int argc, char** argv)
{
    size_t total = (size_t) N_BLOCKS * BLOCK_LEN;
    float* p = aligned_alloc(64, total * sizeof(float));
    float* q = aligned_alloc(64, total * sizeof(float));
    double* pd = aligned_alloc(64, total * sizeof(double));
    double* qd = aligned_alloc(64, total * sizeof(double));
    int n_quantities = sizeof(names) / sizeof(names[0]);
    srand(1);
    for (size_t i = 0; i < total; ++i) {
        p[i] = (float) ((rand() + 1.0) / RAND_MAX / 128);
        q[i] = (float) ((rand() + 1.0) / RAND_MAX / 128);
        pd[i] = p[i];
        qd[i] = q[i];
    }
    if (argc > 1) {
        for (size_t i = 0; i + 300 < total; i += 997) p[i] = 0.0f, pd[i] = 0.0;
        for (int k = 0; k < n_quantities; ++k)
            for (int is64 = 0; is64 < 2; ++is64)
                for (int mode = 0; mode < 4; ++mode)
                    for (int b = 0; b < 64; ++b) {
                        ptrdiff_t n = BLOCK_LEN - b % 37, o = (ptrdiff_t) b * BLOCK_LEN;
                        kl_block_sums s = call(k, is64, mode, p + o, q + o, pd + o, qd + o, n);
                        printf("%s %d %d %d %a %a %a %a %a\n", names[k], is64, mode, b,
                               s.terms, s.sum_p, s.sum_q, s.n_bad, s.n_odd);
                    }
        return 0;
    }
    printf("%-14s %-6s %10s %10s %10s %10s   ns an element, one core\n", "quantity", "dtype",
           "terms", "terms_sums", "sums", "scaled");
    for (int k = 0; k < n_quantities; ++k)
        for (int is64 = 0; is64 < 2; ++is64) {
            printf("%-14s %-6s", names[k], is64 ? "f64" : "f32");
            for (int mode = 0; mode < 4; ++mode) {
                double best = 1e30, check = 0.0;
                for (int run = 0; run < 5; ++run) {
                    double t = now();
                    for (int sweep = 0; sweep < 4; ++sweep)
                        for (ptrdiff_t b = 0; b < N_BLOCKS; ++b) {
                            ptrdiff_t o = b * BLOCK_LEN;
                            kl_block_sums s = call(k, is64, mode, p + o, q + o, pd + o,
                                                   qd + o, BLOCK_LEN);
                            check += s.terms + s.sum_p;
                        }
                    t = now() - t;
                    best = t < best ? t : best;
                }
                printf(" %10.3f", best / 4 / total * 1e9 + 0.0 * check);
            }
            printf("\n");
        }
    return 0;
}
