/* bench.h: what every benchmark shares: a clock, the same-run peaks, and the
 * JSON line format of DESIGN.md ("Benchmarks"): a human table first, then one
 * JSON object per result, one per line, last.
 * Not for: assertions (tests never assert on time). */
#ifndef MB_BENCH_H
#define MB_BENCH_H

#include <stdio.h>

/* Monotonic seconds. */
double bench_now(void);
/* The FMA peak of this machine, fp32, 2 FLOPs per FMA lane, measured by a
 * register-resident FMA loop on `threads` threads (0 = all cores) at
 * every vector width the CPU has at run time (AVX2/FMA 256-bit; AVX-512F
 * 512-bit when __builtin_cpu_supports("avx512f"); scalar only when neither
 * exists). The peak every ratio uses is the widest width's: the kernels
 * use the widest width there is. */
typedef struct {
    const char *isa; /* "avx2-256", "avx512f-512", "scalar" */
    int lanes;       /* fp32 lanes per vector */
    double gflops;   /* all threads */
} bench_peak_width;
typedef struct {
    int threads, n_widths;
    bench_peak_width width[3]; /* narrowest first */
    double gflops;             /* the widest width's: what ratios divide by */
    const char *isa;           /* its name ("peak_isa" in the JSON lines) */
    /* The widest width on one thread (threads > 1 only, else 0): threads x
     * this bounds what the cores could do if none were busy, so a ratio
     * above 1.0 that stays below it points at a busy machine, not a bug. */
    double one_core_gflops;
    /* The bf16 products' peak on all threads, for the path the bf16 kernels
     * take (core/nn/bf16.h): "amx-bf16" (TDPBF16PS, 2 x 16 x 16 x 32 FLOPs
     * per instruction) or "avx512bf16-512" (vdpbf16ps, 4 FLOPs per lane);
     * 0 and NULL when the CPU has neither. bf16 results divide by this. */
    double bf16_gflops;
    const char *bf16_isa;
} bench_peak;
/* Returns 0, or -1 if nothing could be measured (p->gflops 0). */
int bench_peak_measure(bench_peak *p, int threads);
/* One line: each width's GFLOP/s and the one the ratios use. */
void bench_peak_print(FILE *f, const bench_peak *p, const char *label);
/* bench_peak_measure's gflops (0 on failure). */
double bench_fma_peak_gflops(int threads);
/* gflops / p->gflops. A ratio above 1.0 is a bug of the bench (a FLOP
 * count or a peak that is wrong): it prints a loud "BUG: ratio above 1.0"
 * line to stderr and is counted; main() then exits non-zero. */
double bench_ratio(double gflops, const bench_peak *p, const char *what);
/* The same against p->bf16_gflops (bf16 planning results). */
double bench_ratio_bf16(double gflops, const bench_peak *p, const char *what);
/* Ratios above 1.0 seen so far in this process. */
int bench_bugs(void);
/* cblas_sgemm GFLOP/s for C(m,n) = A(m,k) B(k,n), best of a few runs, with
 * OpenBLAS set to `threads` threads. */
double bench_sgemm_gflops(int m, int n, int k, int threads);
/* Median of x[0..n) (sorts x). */
double bench_median(double *x, int n);
/* The q-quantile (0..1) of x[0..n), nearest rank: x[round(q (n - 1))] once
 * sorted (sorts x); 0 when n <= 0. */
double bench_percentile(double *x, int n, double q);

/* Each benchmark: returns 0 on success. */
typedef int (*bench_fn)(int argc, char **argv);

#endif
