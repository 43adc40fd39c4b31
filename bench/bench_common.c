/* bench_common.c: the clock, the same-run peaks (FMA loop per vector width,
 * sgemm), the ratio check, the median and the percentiles that every
 * benchmark shares (bench.h).
 * Not for: a particular benchmark's table (bench_NAME.c). */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cpu.h"
#include "bench.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define FMA_X86 1
#include <immintrin.h>
#else
#define FMA_X86 0
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

double bench_percentile(double *x, int n, double q) {
    if (n <= 0) return 0;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    int i = (int)(q * (n - 1) + 0.5);
    return x[i < n ? i : n - 1];
}

/* ---- FMA peak ----------------------------------------------------------- */

/* The loop: acc[i] = acc[i] * m + c on CHAINS independent registers, so
 * the FMAs of one iteration never wait for each other. An FMA has 4 cycles
 * latency and these CPUs issue 2 per cycle (Zen 4/5, Intel since Haswell),
 * so at least 2 x 4 = 8 chains must be in flight to keep both pipes busy:
 * 12 ymm chains (of 16 ymm registers, with m and c), 24 zmm chains (of 32
 * zmm registers) leave slack for a longer latency. x * 0.999999 + 1e-7
 * stays bounded: the loop never overflows or goes denormal. */
#define FMA_CHAINS_256 12
#define FMA_CHAINS_512 24

typedef struct {
    int width;  /* index into fma__widths */
    long iters;
    pthread_barrier_t *start; /* all threads leave it together */
    double t_start, t_end;
    float sink;
} fma__arg;

static void fma__scalar(fma__arg *a) {
    float acc[FMA_CHAINS_256];
    for (int i = 0; i < FMA_CHAINS_256; i++) acc[i] = 1.0f + 0.01f * (float)i;
    pthread_barrier_wait(a->start);
    a->t_start = bench_now();
    for (long it = 0; it < a->iters; it++)
        for (int i = 0; i < FMA_CHAINS_256; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
    a->t_end = bench_now();
    a->sink = acc[0];
}

#if FMA_X86
__attribute__((target("avx2,fma"))) static void fma__avx2(fma__arg *a) {
    __m256 acc[FMA_CHAINS_256];
    for (int i = 0; i < FMA_CHAINS_256; i++) acc[i] = _mm256_set1_ps(1.0f + 0.01f * (float)i);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    pthread_barrier_wait(a->start);
    a->t_start = bench_now();
    for (long it = 0; it < a->iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < FMA_CHAINS_256; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
    }
    a->t_end = bench_now();
    __m256 s = acc[0];
    for (int i = 1; i < FMA_CHAINS_256; i++) s = _mm256_add_ps(s, acc[i]);
    float out[8];
    _mm256_storeu_ps(out, s);
    a->sink = out[0];
}

/* After the clock stops: lane 0 of the sum of the 24 zmm chains into the
 * thread's sink, so that the compiler keeps the loop. Always inlined, so
 * that acc's address never escapes the kernel (its loop keeps the chains
 * in registers; checked with objdump). */
__attribute__((target("avx512f"), always_inline)) static inline void fma__sink512(fma__arg *a,
                                                                                 const __m512 *acc) {
    __m512 s = acc[0];
    for (int i = 1; i < FMA_CHAINS_512; i++) s = _mm512_add_ps(s, acc[i]);
    float out[16];
    _mm512_storeu_ps(out, s);
    a->sink = out[0];
}

/* Compiled for AVX-512F whatever -march says, so an x86-64-v3 build has
 * it too; only called when the CPU has it (bench__have). */
__attribute__((target("avx512f"))) static void fma__avx512(fma__arg *a) {
    __m512 acc[FMA_CHAINS_512];
    for (int i = 0; i < FMA_CHAINS_512; i++) acc[i] = _mm512_set1_ps(1.0f + 0.01f * (float)i);
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    pthread_barrier_wait(a->start);
    a->t_start = bench_now();
    for (long it = 0; it < a->iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < FMA_CHAINS_512; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
    }
    a->t_end = bench_now();
    fma__sink512(a, acc);
}
#endif

/* bf16 peaks: vdpbf16ps on 24 zmm chains (4 FLOPs per lane), and AMX:
 * TDPBF16PS into 4 independent accumulator tiles from 4 tiles held in
 * the tile registers (zeros after ldtilecfg: the values do not matter for
 * the rate). Only called when mb_cpu_has_bf16() / mb_cpu_has_amx(). */
__attribute__((target("avx512f,avx512bf16"))) static void fma__dpbf16(fma__arg *a) {
    __m512 acc[FMA_CHAINS_512];
    for (int i = 0; i < FMA_CHAINS_512; i++) acc[i] = _mm512_set1_ps(0.01f * (float)i);
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x33003300);
    pthread_barrier_wait(a->start);
    a->t_start = bench_now();
    for (long it = 0; it < a->iters; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < FMA_CHAINS_512; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
    }
    a->t_end = bench_now();
    fma__sink512(a, acc);
}

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) fma__tilecfg;

__attribute__((target("amx-tile,amx-bf16"))) static void fma__amx(fma__arg *a) {
    fma__tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
    pthread_barrier_wait(a->start);
    a->t_start = bench_now();
    for (long it = 0; it < a->iters; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float c[16 * 16];
    _tile_stored(0, c, 64);
    a->t_end = bench_now();
    _tile_release();
    a->sink = c[0];
}

/* The widths, narrowest first: name, fp32 lanes, chains. */
static const struct {
    const char *isa;
    int lanes, chains;
} fma__widths[] = {
    {"scalar", 1, FMA_CHAINS_256},
    {"avx2-256", 8, FMA_CHAINS_256},
    {"avx512f-512", 16, FMA_CHAINS_512},
    /* bf16 (not fp32 widths: measured apart, bench_peak.bf16_*); FLOPs
     * per loop iteration and chain: lanes x chains x 2 as for FMAs */
    {"avx512bf16-512", 32, FMA_CHAINS_512}, /* 16 lanes x 2 pairs */
    {"amx-bf16", 0, 4},                     /* FLOPs counted per tile op: fma__measure */
};
#define FMA_N_WIDTHS 3 /* the fp32 widths; 3 and 4 are the bf16 paths */

static int fma__have(int w) {
#if FMA_X86
    __builtin_cpu_init();
    if (w == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (w == 2) return __builtin_cpu_supports("avx512f");
#endif
    return w == 0;
}

static void *fma__thread(void *vp) {
    fma__arg *a = vp;
    switch (a->width) {
#if FMA_X86
    case 1: fma__avx2(a); break;
    case 2: fma__avx512(a); break;
    case 3: fma__dpbf16(a); break;
    case 4: fma__amx(a); break;
#endif
    default: fma__scalar(a); break;
    }
    return NULL;
}

static int fma__threads(int threads) {
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : (int)n;
    }
    return threads > 256 ? 256 : threads;
}

/* GFLOP/s of one width on n threads: best of FMA_REPS. Each thread runs
 * `iters` iterations (~30-60 ms at full speed, long against a scheduler's
 * time slice); the rate is all threads' FLOPs over the wall time from the
 * common start to the last finish, so threads that cannot run at the same
 * time (a busy or shared core) lower it. Noise only ever lowers a peak, so
 * the best of several short windows is the estimate: on a shared machine
 * one of them usually finds every core free. */
#define FMA_REPS 7
static double fma__measure(int w, int n) {
    const int lanes = fma__widths[w].lanes, chains = fma__widths[w].chains;
    /* 2^24 x 12 x 8 x 2 = 3.2 GFLOP (AVX2), 2^23 x 24 x 16 x 2 = 6.4
     * GFLOP (AVX-512) per thread; scalar 2^22 x 12 x 2 = 0.1 GFLOP */
    const long iters = w == 4 ? 1L << 19 : w >= 2 ? 1L << 23 : w == 1 ? 1L << 24 : 1L << 22;
    double best = 0;
    for (int rep = 0; rep < FMA_REPS; rep++) {
        fma__arg args[256];
        pthread_t th[256];
        pthread_barrier_t bar;
        if (pthread_barrier_init(&bar, NULL, (unsigned)n)) return 0;
        int started = 0;
        for (int i = 0; i < n; i++) args[i] = (fma__arg){.width = w, .iters = iters, .start = &bar};
        for (int i = 1; i < n; i++) {
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
        fma__thread(&args[0]);
        for (int i = 1; i < n; i++) pthread_join(th[i], NULL);
        pthread_barrier_destroy(&bar);
        double t0 = args[0].t_start, t1 = args[0].t_end;
        for (int i = 1; i < n; i++) {
            if (args[i].t_start < t0) t0 = args[i].t_start;
            if (args[i].t_end > t1) t1 = args[i].t_end;
        }
        /* AMX: 4 TDPBF16PS per iteration, each 16 x 16 x 32 MACs */
        double per_iter = w == 4 ? 4.0 * 16 * 16 * 32 * 2 : 2.0 * lanes * chains;
        double rate = per_iter * (double)iters * n / (t1 - t0);
        if (rate > best) best = rate;
    }
    return best * 1e-9;
}

int bench_peak_measure(bench_peak *p, int threads) {
    memset(p, 0, sizeof *p);
    p->threads = fma__threads(threads);
    p->isa = "none";
    for (int w = 0; w < FMA_N_WIDTHS; w++) {
        /* scalar only where no vector width exists: it is no one's peak */
        if (w == 0 && (fma__have(1) || fma__have(2))) continue;
        if (!fma__have(w)) continue;
        bench_peak_width *o = &p->width[p->n_widths++];
        o->isa = fma__widths[w].isa;
        o->lanes = fma__widths[w].lanes;
        o->gflops = fma__measure(w, p->threads);
    }
    if (!p->n_widths) return -1;
    /* The widest width the CPU has is the peak (the kernels use it). */
    const bench_peak_width *wide = &p->width[p->n_widths - 1];
    p->gflops = wide->gflops;
    p->isa = wide->isa;
    if (p->threads > 1) {
        int w = 0;
        while (w < FMA_N_WIDTHS && strcmp(fma__widths[w].isa, wide->isa)) w++;
        p->one_core_gflops = w < FMA_N_WIDTHS ? fma__measure(w, 1) : 0.0;
    }
#if FMA_X86
    /* the bf16 kernels' path: AMX where the CPU (and kernel) allow it */
    int bw = mb_cpu_has_amx() ? 4 : mb_cpu_has_bf16() ? 3 : -1;
    if (bw > 0) {
        p->bf16_isa = fma__widths[bw].isa;
        p->bf16_gflops = fma__measure(bw, p->threads);
    }
#endif
    return p->gflops > 0 ? 0 : -1;
}

void bench_peak_print(FILE *f, const bench_peak *p, const char *label) {
    fprintf(f, "FMA peak%s%s, %d thread%s:", label ? " " : "", label ? label : "", p->threads,
            p->threads == 1 ? "" : "s");
    for (int i = 0; i < p->n_widths; i++)
        fprintf(f, " %s %.1f GFLOP/s%s", p->width[i].isa, p->width[i].gflops,
                i + 1 < p->n_widths ? ";" : "");
    if (p->one_core_gflops > 0)
        fprintf(f, "; one thread %.1f (x %d = %.1f)", p->one_core_gflops, p->threads,
                p->one_core_gflops * p->threads);
    if (p->bf16_gflops > 0) fprintf(f, "; bf16 %s %.1f", p->bf16_isa, p->bf16_gflops);
    fprintf(f, "  (ratios use %s, %.1f)\n", p->isa, p->gflops);
}

double bench_fma_peak_gflops(int threads) {
    bench_peak p;
    return bench_peak_measure(&p, threads) == 0 ? p.gflops : 0.0;
}

/* ---- ratios ------------------------------------------------------------- */

static int bench__bugs;

double bench_ratio(double gflops, const bench_peak *p, const char *what) {
    double r = p && p->gflops > 0 ? gflops / p->gflops : 0.0;
    if (r > 1.0) {
        bench__bugs++;
        double bound = p->one_core_gflops * p->threads;
        fprintf(stderr,
                "\n*** BUG: ratio above 1.0: %s reached %.1f GFLOP/s = %.3f of the %s peak %.1f "
                "GFLOP/s: the FLOP count or the peak is wrong%s ***\n\n",
                what ? what : "?", gflops, r, p->isa, p->gflops,
                bound > gflops ? " (or a core was busy while the peak was measured: "
                                 "threads x the one-thread peak is higher; rerun on an idle machine)"
                               : "");
    }
    return r;
}

double bench_ratio_bf16(double gflops, const bench_peak *p, const char *what) {
    double r = p && p->bf16_gflops > 0 ? gflops / p->bf16_gflops : 0.0;
    if (r > 1.0) {
        bench__bugs++;
        fprintf(stderr,
                "\n*** BUG: ratio above 1.0: %s reached %.1f GFLOP/s = %.3f of the bf16 (%s) peak %.1f "
                "GFLOP/s: the FLOP count or the peak is wrong (or a core was busy while the peak was "
                "measured) ***\n\n",
                what ? what : "?", gflops, r, p->bf16_isa, p->bf16_gflops);
    }
    return r;
}

int bench_bugs(void) { return bench__bugs; }

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
