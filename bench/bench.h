/* bench.h: what every benchmark shares: a clock, the same-run peaks, and the
 * JSON line format of DESIGN.md ("Benchmarks"): a human table first, then one
 * JSON object per result, one per line, last.
 * Not for: assertions (tests never assert on time). */
#ifndef MB_BENCH_H
#define MB_BENCH_H

/* Monotonic seconds. */
double bench_now(void);
/* FMA peak of this machine in GFLOP/s (fp32, 2 FLOPs per FMA lane), measured
 * by a register-resident FMA loop on `threads` threads (0 = all cores). */
double bench_fma_peak_gflops(int threads);
/* cblas_sgemm GFLOP/s for C(m,n) = A(m,k) B(k,n), best of a few runs, with
 * OpenBLAS set to `threads` threads. */
double bench_sgemm_gflops(int m, int n, int k, int threads);
/* Median of x[0..n) (sorts x). */
double bench_median(double *x, int n);

/* Each benchmark: returns 0 on success. */
typedef int (*bench_fn)(int argc, char **argv);

#endif
