/* gemm.c: the two sgemm variants the ensemble's tiles need (see gemm.h),
 * at three widths chosen per call by mb_cpu_isa() (base/cpu.h).
 *
 * Kernel: C[i..i+MR, j..j+W*NV] accumulates in MR x NV vector registers
 * over the whole k range; per k step NV vector loads of B's row and MR
 * broadcasts of A's column feed MR*NV FMAs. AVX-512: 8 rows x 3 zmm
 * (24 FMAs per 11 loads; 32 registers). AVX2: 6 rows x 2 ymm (12 FMAs per
 * 8 loads; 16 registers). The last vector of a panel is masked, so any n
 * works; rows beyond the last full block go one at a time.
 *
 * Every width computes each entry of C the same way: fmaf over k in order
 * from 0 (one rounding per step), then + C (accumulate) or + bias and the
 * activation of vmath.h; the scalar path uses fmaf in the same order. So
 * the product's bits do not depend on the width, the blocking or how a
 * caller splits rows (test_dispatch checks it); the scalar activations
 * differ from the vector ones in the last bits (vmath.h).
 * Not for: large k (no blocking over k: each row block streams all of k). */
#include "nn/gemm.h"

#include <math.h>
#include <stddef.h>

#include "base/cpu.h"
#include "nn/vmath.h"

#define GEMM_NO_ACT (-1)
#define AI static inline __attribute__((always_inline))

#ifdef MB_X86

/* ---- AVX-512: 8 x 3 zmm ------------------------------------------------- */

#define G16_MR 8
#define G16_NV 3

/* The fused epilogue: act(x) for the activations of ops.h. */
AI MB_TARGET_AVX512 __m512 g16__act(int act, __m512 x) {
    switch (act) {
    case MB_ACT_SILU: return mb_vm_silu16(x);
    case MB_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case MB_ACT_TANH: return mb_vm_tanh16(x);
    }
    return x;
}

/* C (MR, 16 NV) [+]= A-block (MR, K) B-panel (K, 16 NV); A(r, kk) is
 * A[r * a_rs + kk * a_ks]; the last vector of the panel is masked by m.
 * With act != GEMM_NO_ACT (and acc 0): C = act(A B + bias), bias (16 NV). */
AI MB_TARGET_AVX512 void g16__kernel(int MR, int NV, int act, __mmask16 m, const float *A,
                                     size_t a_rs, size_t a_ks, const float *B, size_t ldb,
                                     const float *bias, float *C, size_t ldc, size_t K, int acc) {
    __m512 c[G16_MR][G16_NV];
#pragma GCC unroll 8
    for (int r = 0; r < G16_MR; r++)
#pragma GCC unroll 3
        for (int v = 0; v < G16_NV; v++) {
            if (r >= MR || v >= NV) break;
            c[r][v] = _mm512_setzero_ps();
        }
    /* unrolled: the loop's own counter and pointer updates otherwise take
     * issue slots from the FMAs (8 x 3 at k = 200: +10% measured) */
#pragma GCC unroll 4
    for (size_t k = 0; k < K; k++) {
        __m512 b[G16_NV];
        const float *bk = B + k * ldb;
#pragma GCC unroll 3
        for (int v = 0; v < G16_NV; v++) {
            if (v >= NV) break;
            b[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(m, bk + 16 * v) : _mm512_loadu_ps(bk + 16 * v);
        }
        const float *ak = A + k * a_ks;
#pragma GCC unroll 8
        for (int r = 0; r < G16_MR; r++) {
            if (r >= MR) break;
            __m512 a = _mm512_set1_ps(ak[(size_t)r * a_rs]);
#pragma GCC unroll 3
            for (int v = 0; v < G16_NV; v++) {
                if (v >= NV) break;
                c[r][v] = _mm512_fmadd_ps(a, b[v], c[r][v]);
            }
        }
    }
    if (act != GEMM_NO_ACT) {
        __m512 bv[G16_NV];
#pragma GCC unroll 3
        for (int v = 0; v < G16_NV; v++) {
            if (v >= NV) break;
            bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(m, bias + 16 * v) : _mm512_loadu_ps(bias + 16 * v);
        }
#pragma GCC unroll 8
        for (int r = 0; r < G16_MR; r++) {
            if (r >= MR) break;
#pragma GCC unroll 3
            for (int v = 0; v < G16_NV; v++) {
                if (v >= NV) break;
                c[r][v] = g16__act(act, _mm512_add_ps(c[r][v], bv[v]));
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < G16_MR; r++) {
        if (r >= MR) break;
        float *cr = C + (size_t)r * ldc;
#pragma GCC unroll 3
        for (int v = 0; v < G16_NV; v++) {
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
typedef void (*g16__fn)(__mmask16, const float *, size_t, size_t, const float *, size_t,
                        const float *, float *, size_t, size_t, int);
#define G16_FN(NAME, MR, NV, ACT)                                                               \
    static MB_TARGET_AVX512 void NAME(__mmask16 m, const float *A, size_t a_rs, size_t a_ks,    \
                                      const float *B, size_t ldb, const float *bias, float *C,   \
                                      size_t ldc, size_t K, int acc) {                          \
        g16__kernel(MR, NV, ACT, m, A, a_rs, a_ks, B, ldb, bias, C, ldc, K, acc);               \
    }
#define G16_FNS(TAG, ACT)                                                                        \
    G16_FN(g16__big1_##TAG, G16_MR, 1, ACT)                                                      \
    G16_FN(g16__big2_##TAG, G16_MR, 2, ACT)                                                      \
    G16_FN(g16__big3_##TAG, G16_MR, 3, ACT)                                                      \
    G16_FN(g16__one1_##TAG, 1, 1, ACT)                                                           \
    G16_FN(g16__one2_##TAG, 1, 2, ACT)                                                           \
    G16_FN(g16__one3_##TAG, 1, 3, ACT)                                                           \
    static const g16__fn g16__big_##TAG[3] = {g16__big1_##TAG, g16__big2_##TAG, g16__big3_##TAG}; \
    static const g16__fn g16__one_##TAG[3] = {g16__one1_##TAG, g16__one2_##TAG, g16__one3_##TAG};
G16_FNS(none, GEMM_NO_ACT)
G16_FNS(silu, MB_ACT_SILU)
G16_FNS(relu, MB_ACT_RELU)
G16_FNS(tanh, MB_ACT_TANH)

/* C (M, N) [+]= A (M, K) B (K, N) with A's strides given (row, k); with
 * an activation, C = act(A B + bias). */
static MB_TARGET_AVX512 void g16__drive(size_t M, int N, size_t K, const float *A, size_t a_rs,
                                        size_t a_ks, const float *B, const float *bias, int act,
                                        float *C, int acc) {
    const g16__fn *big = act == MB_ACT_SILU ? g16__big_silu
                         : act == MB_ACT_RELU ? g16__big_relu
                         : act == MB_ACT_TANH ? g16__big_tanh : g16__big_none;
    const g16__fn *one = act == MB_ACT_SILU ? g16__one_silu
                         : act == MB_ACT_RELU ? g16__one_relu
                         : act == MB_ACT_TANH ? g16__one_tanh : g16__one_none;
    for (int j = 0; j < N; j += 16 * G16_NV) {
        int w = N - j < 16 * G16_NV ? N - j : 16 * G16_NV;
        int nv = (w + 15) / 16, last = w - 16 * (nv - 1);
        __mmask16 m = last == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << last) - 1);
        const float *bj = bias ? bias + j : NULL;
        size_t i = 0;
        for (; i + G16_MR <= M; i += G16_MR)
            big[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, bj, C + i * (size_t)N + j,
                        (size_t)N, K, acc);
        for (; i < M; i++)
            one[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, bj, C + i * (size_t)N + j,
                        (size_t)N, K, acc);
    }
}

/* ---- AVX2: 6 x 2 ymm ----------------------------------------------------- */

#define G8_MR 6
#define G8_NV 2

AI MB_TARGET_AVX2 __m256 g8__act(int act, __m256 x) {
    switch (act) {
    case MB_ACT_SILU: return mb_vm_silu8(x);
    case MB_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case MB_ACT_TANH: return mb_vm_tanh8(x);
    }
    return x;
}

/* g16__kernel at 8 lanes; m: all-ones in the lanes of the last vector. */
AI MB_TARGET_AVX2 void g8__kernel(int MR, int NV, int act, __m256i m, const float *A, size_t a_rs,
                                  size_t a_ks, const float *B, size_t ldb, const float *bias,
                                  float *C, size_t ldc, size_t K, int acc) {
    __m256 c[G8_MR][G8_NV];
#pragma GCC unroll 6
    for (int r = 0; r < G8_MR; r++)
#pragma GCC unroll 2
        for (int v = 0; v < G8_NV; v++) {
            if (r >= MR || v >= NV) break;
            c[r][v] = _mm256_setzero_ps();
        }
#pragma GCC unroll 4
    for (size_t k = 0; k < K; k++) {
        __m256 b[G8_NV];
        const float *bk = B + k * ldb;
#pragma GCC unroll 2
        for (int v = 0; v < G8_NV; v++) {
            if (v >= NV) break;
            b[v] = v == NV - 1 ? _mm256_maskload_ps(bk + 8 * v, m) : _mm256_loadu_ps(bk + 8 * v);
        }
        const float *ak = A + k * a_ks;
#pragma GCC unroll 6
        for (int r = 0; r < G8_MR; r++) {
            if (r >= MR) break;
            __m256 a = _mm256_broadcast_ss(ak + (size_t)r * a_rs);
#pragma GCC unroll 2
            for (int v = 0; v < G8_NV; v++) {
                if (v >= NV) break;
                c[r][v] = _mm256_fmadd_ps(a, b[v], c[r][v]);
            }
        }
    }
    if (act != GEMM_NO_ACT) {
        __m256 bv[G8_NV];
#pragma GCC unroll 2
        for (int v = 0; v < G8_NV; v++) {
            if (v >= NV) break;
            bv[v] = v == NV - 1 ? _mm256_maskload_ps(bias + 8 * v, m) : _mm256_loadu_ps(bias + 8 * v);
        }
#pragma GCC unroll 6
        for (int r = 0; r < G8_MR; r++) {
            if (r >= MR) break;
#pragma GCC unroll 2
            for (int v = 0; v < G8_NV; v++) {
                if (v >= NV) break;
                c[r][v] = g8__act(act, _mm256_add_ps(c[r][v], bv[v]));
            }
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < G8_MR; r++) {
        if (r >= MR) break;
        float *cr = C + (size_t)r * ldc;
#pragma GCC unroll 2
        for (int v = 0; v < G8_NV; v++) {
            if (v >= NV) break;
            if (v == NV - 1) {
                if (acc) c[r][v] = _mm256_add_ps(c[r][v], _mm256_maskload_ps(cr + 8 * v, m));
                _mm256_maskstore_ps(cr + 8 * v, m, c[r][v]);
            } else {
                if (acc) c[r][v] = _mm256_add_ps(c[r][v], _mm256_loadu_ps(cr + 8 * v));
                _mm256_storeu_ps(cr + 8 * v, c[r][v]);
            }
        }
    }
}

typedef void (*g8__fn)(__m256i, const float *, size_t, size_t, const float *, size_t,
                       const float *, float *, size_t, size_t, int);
#define G8_FN(NAME, MR, NV, ACT)                                                                \
    static MB_TARGET_AVX2 void NAME(__m256i m, const float *A, size_t a_rs, size_t a_ks,        \
                                    const float *B, size_t ldb, const float *bias, float *C,    \
                                    size_t ldc, size_t K, int acc) {                            \
        g8__kernel(MR, NV, ACT, m, A, a_rs, a_ks, B, ldb, bias, C, ldc, K, acc);                \
    }
#define G8_FNS(TAG, ACT)                                                          \
    G8_FN(g8__big1_##TAG, G8_MR, 1, ACT)                                          \
    G8_FN(g8__big2_##TAG, G8_MR, 2, ACT)                                          \
    G8_FN(g8__one1_##TAG, 1, 1, ACT)                                              \
    G8_FN(g8__one2_##TAG, 1, 2, ACT)                                              \
    static const g8__fn g8__big_##TAG[2] = {g8__big1_##TAG, g8__big2_##TAG};      \
    static const g8__fn g8__one_##TAG[2] = {g8__one1_##TAG, g8__one2_##TAG};
G8_FNS(none, GEMM_NO_ACT)
G8_FNS(silu, MB_ACT_SILU)
G8_FNS(relu, MB_ACT_RELU)
G8_FNS(tanh, MB_ACT_TANH)

static MB_TARGET_AVX2 void g8__drive(size_t M, int N, size_t K, const float *A, size_t a_rs,
                                     size_t a_ks, const float *B, const float *bias, int act,
                                     float *C, int acc) {
    const g8__fn *big = act == MB_ACT_SILU ? g8__big_silu
                        : act == MB_ACT_RELU ? g8__big_relu
                        : act == MB_ACT_TANH ? g8__big_tanh : g8__big_none;
    const g8__fn *one = act == MB_ACT_SILU ? g8__one_silu
                        : act == MB_ACT_RELU ? g8__one_relu
                        : act == MB_ACT_TANH ? g8__one_tanh : g8__one_none;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int j = 0; j < N; j += 8 * G8_NV) {
        int w = N - j < 8 * G8_NV ? N - j : 8 * G8_NV;
        int nv = (w + 7) / 8, last = w - 8 * (nv - 1);
        __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(last), lane);
        const float *bj = bias ? bias + j : NULL;
        size_t i = 0;
        for (; i + G8_MR <= M; i += G8_MR)
            big[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, bj, C + i * (size_t)N + j,
                        (size_t)N, K, acc);
        for (; i < M; i++)
            one[nv - 1](m, A + i * a_rs, a_rs, a_ks, B + j, (size_t)N, bj, C + i * (size_t)N + j,
                        (size_t)N, K, acc);
    }
}

#endif /* MB_X86 */

/* ---- scalar: the same fmaf chain per entry ------------------------------- */

static float g1__act(int act, float x) {
    switch (act) {
    case MB_ACT_SILU: return mb_vm_silu1(x);
    case MB_ACT_RELU: return x > 0 ? x : 0.0f;
    case MB_ACT_TANH: return mb_vm_tanh1(x);
    }
    return x;
}

static void g1__drive(size_t M, int N, size_t K, const float *A, size_t a_rs, size_t a_ks,
                      const float *B, const float *bias, int act, float *C, int acc) {
    float s[64];
    for (size_t i = 0; i < M; i++)
        for (int j0 = 0; j0 < N; j0 += 64) {
            int w = N - j0 < 64 ? N - j0 : 64;
            for (int j = 0; j < w; j++) s[j] = 0.0f;
            for (size_t k = 0; k < K; k++) {
                float a = A[i * a_rs + k * a_ks];
                const float *b = B + k * (size_t)N + j0;
                for (int j = 0; j < w; j++) s[j] = fmaf(a, b[j], s[j]);
            }
            float *c = C + i * (size_t)N + j0;
            for (int j = 0; j < w; j++)
                c[j] = act != GEMM_NO_ACT ? g1__act(act, s[j] + bias[j0 + j]) : acc ? s[j] + c[j] : s[j];
        }
}

static void gemm__drive(size_t M, int N, size_t K, const float *A, size_t a_rs, size_t a_ks,
                        const float *B, const float *bias, int act, float *C, int acc) {
    switch (mb_cpu_isa()) {
#ifdef MB_X86
    case MB_ISA_AVX512: g16__drive(M, N, K, A, a_rs, a_ks, B, bias, act, C, acc); return;
    case MB_ISA_AVX2: g8__drive(M, N, K, A, a_rs, a_ks, B, bias, act, C, acc); return;
#endif
    default: g1__drive(M, N, K, A, a_rs, a_ks, B, bias, act, C, acc); return;
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
