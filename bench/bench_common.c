/* bench_common.c: the clock, the same-run peaks (FMA loop, sgemm) and the
 * median that every benchmark shares (bench.h).
 * Not for: a particular benchmark's table (bench_NAME.c). */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *x, int n) {
    if (n <= 0) return 0;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* ---- FMA peak ----------------------------------------------------------- */

/* 12 independent accumulators: an FMA has 4 cycles latency and this CPU
 * issues 2 per cycle, so at least 8 chains must be in flight; 12 leaves
 * slack and still fits in the 16 ymm registers. */
#define FMA_CHAINS 12

typedef struct {
    long iters;
    pthread_barrier_t *start; /* all threads leave it together */
    double t_start, t_end;
    float sink;
} fma__arg;

#if defined(__AVX2__) && defined(__FMA__)
static void *fma__thread(void *vp) {
    fma__arg *a = vp;
    __m256 acc[FMA_CHAINS];
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm256_set1_ps(1.0f + 0.01f * (float)i);
    /* x * 0.999999 + 1e-7 stays bounded: the loop never overflows */
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    pthread_barrier_wait(a->start);
    a->t_start = bench_now();
    for (long it = 0; it < a->iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
    }
    a->t_end = bench_now();
    __m256 s = acc[0];
    for (int i = 1; i < FMA_CHAINS; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    a->sink = out[0];
    return NULL;
}
#define FMA_LANES 8
#else
static void *fma__thread(void *vp) {
    fma__arg *a = vp;
    float acc[FMA_CHAINS];
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = 1.0f + 0.01f * (float)i;
    pthread_barrier_wait(a->start);
    a->t_start = bench_now();
    for (long it = 0; it < a->iters; it++)
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
    a->t_end = bench_now();
    a->sink = acc[0];
    return NULL;
}
#define FMA_LANES 1
#endif

double bench_fma_peak_gflops(int threads) {
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : (int)n;
    }
    if (threads > 256) threads = 256;
    /* 2^25 iterations x 12 FMAs x 8 lanes x 2 = 6.4 GFLOP per thread, ~60 ms
     * at 110 GFLOP/s per core, long against a scheduler's time slice; best of
     * 3 against a noisy machine. The rate is all threads' FLOPs over the
     * wall time from the common start to the last finish, so threads that
     * cannot run at the same time (a busy or shared core) lower it. */
    const long iters = 1L << 25;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        fma__arg args[256];
        pthread_t th[256];
        pthread_barrier_t bar;
        int n = threads;
        if (pthread_barrier_init(&bar, NULL, (unsigned)n)) return 0;
        int started = 0;
        for (int i = 1; i < n; i++) {
            args[i].iters = iters;
            args[i].start = &bar;
            if (pthread_create(&th[i], NULL, fma__thread, &args[i]) != 0) break;
            started++;
        }
        if (started < n - 1) {
            /* cannot release a barrier that counts missing threads: measure
             * nothing this round rather than hang */
            pthread_barrier_destroy(&bar);
            for (int i = 1; i <= started; i++) pthread_cancel(th[i]);
            for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
            return 0;
        }
        args[0].iters = iters;
        args[0].start = &bar;
        fma__thread(&args[0]);
        for (int i = 1; i < n; i++) pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        double t0 = args[0].t_start, t1 = args[0].t_end;
        for (int i = 1; i < n; i++) {
            if (args[i].t_start < t0) t0 = args[i].t_start;
            if (args[i].t_end > t1) t1 = args[i].t_end;
        }
        double rate = 2.0 * FMA_LANES * FMA_CHAINS * (double)iters * n / (t1 - t0);
        if (rate > best) best = rate;
    }
    return best * 1e-9;
}

/* ---- sgemm -------------------------------------------------------------- */

double bench_sgemm_gflops(int m, int n, int k, int threads) {
    float *A = malloc((size_t)m * k * sizeof(float));
    float *B = malloc((size_t)k * n * sizeof(float));
    float *C = malloc((size_t)m * n * sizeof(float));
    if (!A || !B || !C) {
        free(A);
        free(B);
        free(C);
        return 0;
    }
    for (size_t i = 0; i < (size_t)m * k; i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)k * n; i++) B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    openblas_set_num_threads(threads);
    double flops = 2.0 * m * n * k;
    /* repeat until ~0.05 s per measurement so small shapes are timed fairly */
    int reps = (int)(5e9 / flops) + 1;
    if (reps > 10000) reps = 10000;
    double best = 0;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = bench_now();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, A, k, B, n, 0.0f,
                        C, n);
        double dt = bench_now() - t0;
        double rate = flops * reps / dt;
        if (trial > 0 && rate > best) best = rate; /* trial 0 warms up */
    }
    openblas_set_num_threads(1);
    free(A);
    free(B);
    free(C);
    return best * 1e-9;
}
