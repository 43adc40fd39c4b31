/* gemm.c: the two sgemm variants the ensemble's tiles need (see gemm.h).
 *
 * Kernel: C[i..i+MR, j..j+16*NV] accumulates in MR x NV zmm registers over
 * the whole k range; per k step NV vector loads of B's row and MR
 * broadcasts of A's column feed MR*NV FMAs (8 x 3: 24 FMAs per 11 loads).
 * The last vector of a panel is masked, so any n works; rows beyond the
 * last full block of 8 go one at a time. Summation over k is sequential,
 * so a result never depends on how a caller splits rows.
 * Not for: large k (no blocking over k: each row block streams all of k). */
#include "gemm.h"

#include <cblas.h>

#if defined(__AVX512F__)
#include <immintrin.h>

#ifndef GEMM_MR
#define GEMM_MR 8
#define GEMM_NV 3
#endif
#define GEMM_MAXR 24
#define GEMM_MAXV 3
#define AI static inline __attribute__((always_inline))

/* C (MR, 16 NV) [+]= A-block (MR, K) B-panel (K, 16 NV); A(r, kk) is
 * A[r * a_rs + kk * a_ks]; the last vector of the panel is masked by m. */
AI void gemm__kernel(int MR, int NV, __mmask16 m, const float *A, size_t a_rs, size_t a_ks,
                     const float *B, size_t ldb, float *C, size_t ldc, size_t K, int acc) {
    __m512 c[GEMM_MAXR][GEMM_MAXV];
#pragma GCC unroll 24
    for (int r = 0; r < GEMM_MAXR; r++)
#pragma GCC unroll 3
        for (int v = 0; v < GEMM_MAXV; v++) {
            if (r >= MR || v >= NV) break;
            c[r][v] = _mm512_setzero_ps();
        }
    for (size_t k = 0; k < K; k++) {
        __m512 b[GEMM_MAXV];
        const float *bk = B + k * ldb;
#pragma GCC unroll 3
        for (int v = 0; v < GEMM_MAXV; v++) {
            if (v >= NV) break;
            b[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(m, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
        }
        const float *ak = A + k * a_ks;
#pragma GCC unroll 24
        for (int r = 0; r < GEMM_MAXR; r++) {
            if (r >= MR) break;
            __m512 a = _mm512_set1_ps(ak[(size_t)r * a_rs]);
#pragma GCC unroll 3
            for (int v = 0; v < GEMM_MAXV; v++) {
                if (v >= NV) break;
                c[r][v] = _mm512_fmadd_ps(a, b[v], c[r][v]);
            }
        }
    }
#pragma GCC unroll 24
    for (int r = 0; r < GEMM_MAXR; r++) {
        if (r >= MR) break;
        float *cr = C + (size_t)r * ldc;
#pragma GCC unroll 3
        for (int v = 0; v < GEMM_MAXV; v++) {
            if (v >= NV) break;
            if (v == NV - 1) {
                if (acc) c[r][v] = _mm512_add_ps(c[r][v], _mm512_maskz_loadu_ps(m, cr + 16 * v));
                _mm512_mask_storeu_ps(cr + 16 * v, m, c[r][v]);
            } else {
                if (acc) c[r][v] = _mm512_add_ps(c[r][v], _mm512_loadu_ps(cr + 16 * v));
                _mm512_storeu_ps(cr + 16 * v, c[r][v]);
            }
        }
    }
}

/* One specialised kernel per (rows, vectors) pair the driver uses. */
#define GEMM_VARIANTS(MR, NAME)                                                             \
    static void gemm__k##NAME##_1(__mmask16 m, const float *A, size_t a_rs, size_t a_ks,     \
                                const float *B, size_t ldb, float *C, size_t ldc, size_t K, \
                                int acc) {                                                  \
        gemm__kernel(MR, 1, m, A, a_rs, a_ks, B, ldb, C, ldc, K, acc);                      \
    }                                                                                       \
    static void gemm__k##NAME##_2(__mmask16 m, const float *A, size_t a_rs, size_t a_ks,     \
                                const float *B, size_t ldb, float *C, size_t ldc, size_t K, \
                                int acc) {                                                  \
        gemm__kernel(MR, 2, m, A, a_rs, a_ks, B, ldb, C, ldc, K, acc);                      \
    }                                                                                       \
    static void gemm__k##NAME##_3(__mmask16 m, const float *A, size_t a_rs, size_t a_ks,     \
                                const float *B, size_t ldb, float *C, size_t ldc, size_t K, \
                                int acc) {                                                  \
        gemm__kernel(MR, 3, m, A, a_rs, a_ks, B, ldb, C, ldc, K, acc);                      \
    }
GEMM_VARIANTS(GEMM_MR, big)
GEMM_VARIANTS(1, 1)

typedef void (*gemm__fn)(__mmask16, const float *, size_t, size_t, const float *, size_t,
                         float *, size_t, size_t, int);

/* C (M, N) [+]= A (M, K) B (K, N) with A's strides given (row, k). */
static void gemm__drive(size_t M, int N, size_t K, const float *A, size_t a_rs, size_t a_ks,
                        const float *B, float *C, int acc) {
    static const gemm__fn k8[3] = {gemm__kbig_1, gemm__kbig_2, gemm__kbig_3};
    static const gemm__fn k1[3] = {gemm__k1_1, gemm__k1_2, gemm__k1_3};
    for (int j = 0; j < N; j += 16 * GEMM_NV) {
        int w = N - j < 16 * GEMM_NV ? N - j : 16 * GEMM_NV;
        int nv = (w + 15) / 16, last = w - 16 * (nv - 1);
        __mmask16 m = last == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << last) - 1);
        size_t i = 0;
        for (; i + GEMM_MR <= M; i += GEMM_MR)
            k8[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, C + i * (size_t)N + j,
                       (size_t)N, K, acc);
        for (; i < M; i++)
            k1[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, C + i * (size_t)N + j,
                       (size_t)N, K, acc);
    }
}

void mb_gemm_nn(size_t m, int n, int k, const float *A, const float *B, float *C, int accumulate) {
    if (m == 0 || n <= 0) return;
    gemm__drive(m, n, (size_t)k, A, (size_t)k, 1, B, C, accumulate);
}

void mb_gemm_tn(int m, int n, size_t k, const float *A, const float *B, float *C, int accumulate) {
    if (m <= 0 || n <= 0) return;
    gemm__drive((size_t)m, n, k, A, 1, (size_t)m, B, C, accumulate);
}

#else /* no AVX-512: OpenBLAS */

void mb_gemm_nn(size_t m, int n, int k, const float *A, const float *B, float *C, int accumulate) {
    if (m == 0 || n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, n, k, 1.0f, A, k, B, n,
                accumulate ? 1.0f : 0.0f, C, n);
}

void mb_gemm_tn(int m, int n, size_t k, const float *A, const float *B, float *C, int accumulate) {
    if (m <= 0 || n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, (int)k, 1.0f, A, m, B, n,
                accumulate ? 1.0f : 0.0f, C, n);
}

#endif
