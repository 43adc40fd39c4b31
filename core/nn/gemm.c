/* gemm.c: the two sgemm variants the ensemble's tiles need (see gemm.h).
 *
 * Kernel: C[i..i+MR, j..j+16*NV] accumulates in MR x NV zmm registers over
 * the whole k range; per k step NV vector loads of B's row and MR
 * broadcasts of A's column feed MR*NV FMAs (8 x 3: 24 FMAs per 11 loads).
 * The last vector of a panel is masked, so any n works; rows beyond the
 * last full block of 8 go one at a time. Summation over k is sequential,
 * so a result never depends on how a caller splits rows.
 * Not for: large k (no blocking over k: each row block streams all of k). */
#include "nn/gemm.h"

#include <cblas.h>
#include <stddef.h>

#include "nn/vmath.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#ifndef GEMM_MR
#define GEMM_MR 8
#define GEMM_NV 3
#endif
#define GEMM_MAXR 24
#define GEMM_MAXV 3
#define AI static inline __attribute__((always_inline))
#define GEMM_NO_ACT (-1)

/* 1/d for d >= 1: 14-bit estimate and one Newton step (~1 ulp). */
AI __m512 gemm__recip16(__m512 d) {
    __m512 y = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(1.0f)), y);
}

/* The fused epilogue: act(x) for the activations of ops.h. */
AI __m512 gemm__act16(int act, __m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (act) {
    case MB_ACT_SILU:
        return _mm512_mul_ps(x, gemm__recip16(_mm512_add_ps(one, mb_vm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)))));
    case MB_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case MB_ACT_TANH: {
        __m512 e = mb_vm_exp16(_mm512_add_ps(x, x));
        return _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), gemm__recip16(_mm512_add_ps(e, one)), one);
    }
    }
    return x;
}

/* C (MR, 16 NV) [+]= A-block (MR, K) B-panel (K, 16 NV); A(r, kk) is
 * A[r * a_rs + kk * a_ks]; the last vector of the panel is masked by m.
 * With act != GEMM_NO_ACT (and acc 0): C = act(A B + bias), bias (16 NV). */
AI void gemm__kernel(int MR, int NV, int act, __mmask16 m, const float *A, size_t a_rs,
                     size_t a_ks, const float *B, size_t ldb, const float *bias, float *C,
                     size_t ldc, size_t K, int acc) {
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
    if (act != GEMM_NO_ACT) {
        __m512 bv[GEMM_MAXV];
#pragma GCC unroll 3
        for (int v = 0; v < GEMM_MAXV; v++) {
            if (v >= NV) break;
            bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(m, bias + 16 * v) : _mm512_loadu_ps(bias + 16 * v);
        }
#pragma GCC unroll 24
        for (int r = 0; r < GEMM_MAXR; r++) {
            if (r >= MR) break;
#pragma GCC unroll 3
            for (int v = 0; v < GEMM_MAXV; v++) {
                if (v >= NV) break;
                c[r][v] = gemm__act16(act, _mm512_add_ps(c[r][v], bv[v]));
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

/* One specialised kernel per (rows, vectors, activation) the driver uses. */
typedef void (*gemm__fn)(__mmask16, const float *, size_t, size_t, const float *, size_t,
                         const float *, float *, size_t, size_t, int);
#define GEMM_FN(NAME, MR, NV, ACT)                                                          \
    static void NAME(__mmask16 m, const float *A, size_t a_rs, size_t a_ks, const float *B, \
                     size_t ldb, const float *bias, float *C, size_t ldc, size_t K, int acc) { \
        gemm__kernel(MR, NV, ACT, m, A, a_rs, a_ks, B, ldb, bias, C, ldc, K, acc);         \
    }
#define GEMM_FNS(TAG, ACT)                          \
    GEMM_FN(gemm__big1_##TAG, GEMM_MR, 1, ACT)      \
    GEMM_FN(gemm__big2_##TAG, GEMM_MR, 2, ACT)      \
    GEMM_FN(gemm__big3_##TAG, GEMM_MR, 3, ACT)      \
    GEMM_FN(gemm__one1_##TAG, 1, 1, ACT)            \
    GEMM_FN(gemm__one2_##TAG, 1, 2, ACT)            \
    GEMM_FN(gemm__one3_##TAG, 1, 3, ACT)            \
    static const gemm__fn gemm__big_##TAG[3] = {gemm__big1_##TAG, gemm__big2_##TAG, gemm__big3_##TAG}; \
    static const gemm__fn gemm__one_##TAG[3] = {gemm__one1_##TAG, gemm__one2_##TAG, gemm__one3_##TAG};
GEMM_FNS(none, GEMM_NO_ACT)
GEMM_FNS(silu, MB_ACT_SILU)
GEMM_FNS(relu, MB_ACT_RELU)
GEMM_FNS(tanh, MB_ACT_TANH)

/* C (M, N) [+]= A (M, K) B (K, N) with A's strides given (row, k); with
 * an activation, C = act(A B + bias). */
static void gemm__drive(size_t M, int N, size_t K, const float *A, size_t a_rs, size_t a_ks,
                        const float *B, const float *bias, int act, float *C, int acc) {
    const gemm__fn *big = act == MB_ACT_SILU ? gemm__big_silu
                          : act == MB_ACT_RELU ? gemm__big_relu
                          : act == MB_ACT_TANH ? gemm__big_tanh : gemm__big_none;
    const gemm__fn *one = act == MB_ACT_SILU ? gemm__one_silu
                          : act == MB_ACT_RELU ? gemm__one_relu
                          : act == MB_ACT_TANH ? gemm__one_tanh : gemm__one_none;
    for (int j = 0; j < N; j += 16 * GEMM_NV) {
        int w = N - j < 16 * GEMM_NV ? N - j : 16 * GEMM_NV;
        int nv = (w + 15) / 16, last = w - 16 * (nv - 1);
        __mmask16 m = last == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << last) - 1);
        const float *bj = bias ? bias + j : NULL;
        size_t i = 0;
        for (; i + GEMM_MR <= M; i += GEMM_MR)
            big[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, bj,
                        C + i * (size_t)N + j, (size_t)N, K, acc);
        for (; i < M; i++)
            one[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, bj,
                        C + i * (size_t)N + j, (size_t)N, K, acc);
    }
}

void mb_gemm_nn(size_t m, int n, int k, const float *A, const float *B, float *C, int accumulate) {
    if (m == 0 || n <= 0) return;
    gemm__drive(m, n, (size_t)k, A, (size_t)k, 1, B, NULL, GEMM_NO_ACT, C, accumulate);
}

void mb_gemm_nn_bias_act(size_t m, int n, int k, const float *A, const float *B,
                         const float *bias, mb_activation act, float *C) {
    if (m == 0 || n <= 0) return;
    gemm__drive(m, n, (size_t)k, A, (size_t)k, 1, B, bias, (int)act, C, 0);
}

void mb_gemm_tn(int m, int n, size_t k, const float *A, const float *B, float *C, int accumulate) {
    if (m <= 0 || n <= 0) return;
    gemm__drive((size_t)m, n, k, A, 1, (size_t)m, B, NULL, GEMM_NO_ACT, C, accumulate);
}

#else /* no AVX-512: OpenBLAS, then the separate fused pass of ops.c */

void mb_gemm_nn_bias_act(size_t m, int n, int k, const float *A, const float *B,
                         const float *bias, mb_activation act, float *C) {
    if (m == 0 || n <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, n, k, 1.0f, A, k, B, n, 0.0f,
                C, n);
    mb_bias_act_forward(act, C, bias, C, m, n);
}

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
