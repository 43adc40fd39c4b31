/* bf16.c: the bf16 pair-dot kernels (bf16.h), AVX512_BF16 only.
 *
 * C[i..i+8, j..j+48] accumulates in 8 x 3 zmm over k pairs: per pair, 3
 * loads of packed W (16 columns x 2 k each), 8 broadcasts of an A pair (one
 * 32-bit load each) and 24 vdpbf16ps. The epilogue adds the bias, applies
 * the activation in fp32 (vmath.h, as the fp32 kernel) and stores bf16
 * (hidden layers) or fp32 (the head). Measured on this Sapphire Rapids
 * class CPU: vdpbf16ps zmm issues once per 2 cycles, so a pair-dot loop
 * peaks at ~106 GFLOP/s per core against ~222 for fp32 FMAs (the bench
 * measures both): bf16 halves the weight bytes here but not the time.
 * Not for: CPUs without AVX512_BF16 (the entry points return at once). */
#include "nn/bf16.h"

#include <string.h>

#include "base/cpu.h"
#include "nn/vmath.h"

#ifdef MB_X86
#include <immintrin.h>

#define B16_MR 8
#define B16_NV 3
#define B16_OUT_BF16 0
#define B16_OUT_F32 1
#define AI static inline __attribute__((always_inline))

AI MB_TARGET_BF16 __m512 b16__act(int act, __m512 x) {
    switch (act) {
    case MB_ACT_SILU: return mb_vm_silu16(x);
    case MB_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case MB_ACT_TANH: return mb_vm_tanh16(x);
    }
    return x;
}

AI MB_TARGET_BF16 __m512bh b16__pair(const uint16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return (__m512bh)_mm512_set1_epi32(v);
}

/* MR rows x NV vectors; m masks the last vector's columns that exist in W
 * and the bias, ms the ones stored (for bf16 output the even-padded width:
 * the pad column reads nothing and stores act(0) = 0). */
AI MB_TARGET_BF16 void b16__kernel(int MR, int NV, int out, int act, __mmask16 m, __mmask16 ms,
                                   const uint16_t *A,
                                   size_t lda, const uint16_t *P, size_t ldp, const float *bias,
                                   void *C, size_t ldc, size_t KP) {
    __m512 c[B16_MR][B16_NV];
#pragma GCC unroll 8
    for (int r = 0; r < B16_MR; r++)
#pragma GCC unroll 3
        for (int v = 0; v < B16_NV; v++) {
            if (r >= MR || v >= NV) break;
            c[r][v] = _mm512_setzero_ps();
        }
#pragma GCC unroll 4
    for (size_t kp = 0; kp < KP; kp++) {
        __m512bh b[B16_NV];
        const uint16_t *pk = P + kp * ldp;
#pragma GCC unroll 3
        for (int v = 0; v < B16_NV; v++) {
            if (v >= NV) break;
            /* 16 columns x 2 = 32 bf16; the mask is per column (pairs of 16-bit) */
            b[v] = (__m512bh)(v == NV - 1 ? _mm512_maskz_loadu_epi32(m, pk + 32 * v)
                                          : _mm512_loadu_si512((const void *)(pk + 32 * v)));
        }
#pragma GCC unroll 8
        for (int r = 0; r < B16_MR; r++) {
            if (r >= MR) break;
            __m512bh a = b16__pair(A + (size_t)r * lda + 2 * kp);
#pragma GCC unroll 3
            for (int v = 0; v < B16_NV; v++) {
                if (v >= NV) break;
                c[r][v] = _mm512_dpbf16_ps(c[r][v], a, b[v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < B16_MR; r++) {
        if (r >= MR) break;
#pragma GCC unroll 3
        for (int v = 0; v < B16_NV; v++) {
            if (v >= NV) break;
            __mmask16 mv = v == NV - 1 ? m : (__mmask16)0xFFFF, sv = v == NV - 1 ? ms : (__mmask16)0xFFFF;
            if (out == B16_OUT_F32) {
                _mm512_mask_storeu_ps((float *)C + (size_t)r * ldc + 16 * v, sv, c[r][v]);
            } else {
                __m512 x = _mm512_add_ps(c[r][v], _mm512_maskz_loadu_ps(mv, bias + 16 * v));
                __m256i h = (__m256i)_mm512_cvtneps_pbh(b16__act(act, x));
                _mm256_mask_storeu_epi16((uint16_t *)C + (size_t)r * ldc + 16 * v, sv, h);
            }
        }
    }
}

typedef void (*b16__fn)(__mmask16, __mmask16, const uint16_t *, size_t, const uint16_t *, size_t, const float *,
                        void *, size_t, size_t);
#define B16_FN(NAME, MR, NV, OUT, ACT)                                                              \
    static MB_TARGET_BF16 void NAME(__mmask16 m, __mmask16 ms, const uint16_t *A, size_t lda, const uint16_t *P,  \
                                    size_t ldp, const float *bias, void *C, size_t ldc, size_t KP) { \
        b16__kernel(MR, NV, OUT, ACT, m, ms, A, lda, P, ldp, bias, C, ldc, KP);                          \
    }
#define B16_FNS(TAG, OUT, ACT)                                                                       \
    B16_FN(b16__big1_##TAG, B16_MR, 1, OUT, ACT)                                                     \
    B16_FN(b16__big2_##TAG, B16_MR, 2, OUT, ACT)                                                     \
    B16_FN(b16__big3_##TAG, B16_MR, 3, OUT, ACT)                                                     \
    B16_FN(b16__one1_##TAG, 1, 1, OUT, ACT)                                                          \
    B16_FN(b16__one2_##TAG, 1, 2, OUT, ACT)                                                          \
    B16_FN(b16__one3_##TAG, 1, 3, OUT, ACT)                                                          \
    static const b16__fn b16__big_##TAG[3] = {b16__big1_##TAG, b16__big2_##TAG, b16__big3_##TAG};   \
    static const b16__fn b16__one_##TAG[3] = {b16__one1_##TAG, b16__one2_##TAG, b16__one3_##TAG};
B16_FNS(f32, B16_OUT_F32, -1)
B16_FNS(silu, B16_OUT_BF16, MB_ACT_SILU)
B16_FNS(relu, B16_OUT_BF16, MB_ACT_RELU)
B16_FNS(tanh, B16_OUT_BF16, MB_ACT_TANH)

/* W's columns n (packed row stride 2n); C's row stride ldc; width w = the
 * columns to store (n, or n rounded up to even for bf16 output). */
static MB_TARGET_BF16 void b16__drive(size_t M, int n, int w, int kpad, const uint16_t *A,
                                      const uint16_t *P, const float *bias, int out, int act,
                                      void *C, size_t ldc) {
    const b16__fn *big = out == B16_OUT_F32 ? b16__big_f32
                         : act == MB_ACT_RELU ? b16__big_relu
                         : act == MB_ACT_TANH ? b16__big_tanh : b16__big_silu;
    const b16__fn *one = out == B16_OUT_F32 ? b16__one_f32
                         : act == MB_ACT_RELU ? b16__one_relu
                         : act == MB_ACT_TANH ? b16__one_tanh : b16__one_silu;
    size_t KP = (size_t)kpad / 2, ldp = 2 * (size_t)n;
    size_t esz = out == B16_OUT_F32 ? sizeof(float) : sizeof(uint16_t);
    for (int j = 0; j < w; j += 16 * B16_NV) {
        int cols = w - j < 16 * B16_NV ? w - j : 16 * B16_NV;
        int nv = (cols + 15) / 16, last = cols - 16 * (nv - 1);
        int in_w = n - j - 16 * (nv - 1); /* columns of the last vector that exist in W */
        if (in_w > last) in_w = last;
        __mmask16 ms = last == 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << last) - 1);
        __mmask16 m = in_w >= 16 ? (__mmask16)0xFFFF : in_w <= 0 ? 0 : (__mmask16)((1u << in_w) - 1);
        const float *bj = bias ? bias + j : NULL;
        const uint16_t *pj = P + 2 * (size_t)j;
        size_t i = 0;
        for (; i + B16_MR <= M; i += B16_MR)
            big[nv - 1](m, ms, A + i * (size_t)kpad, (size_t)kpad, pj, ldp, bj,
                        (char *)C + (i * ldc + (size_t)j) * esz, ldc, KP);
        for (; i < M; i++)
            one[nv - 1](m, ms, A + i * (size_t)kpad, (size_t)kpad, pj, ldp, bj,
                        (char *)C + (i * ldc + (size_t)j) * esz, ldc, KP);
    }
}

static MB_TARGET_BF16 void b16__pack(const float *W, int k, int n, uint16_t *P) {
    for (int kp = 0; kp < (k + 1) / 2; kp++)
        for (int j = 0; j < n; j += 16) {
            __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            __m512 lo = _mm512_maskz_loadu_ps(m, W + (size_t)(2 * kp) * n + j);
            __m512 hi = 2 * kp + 1 < k ? _mm512_maskz_loadu_ps(m, W + (size_t)(2 * kp + 1) * n + j)
                                       : _mm512_setzero_ps();
            /* interleave: lane pairs (lo[j], hi[j]) */
            __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
            __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
            __m512i pr = _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
            _mm512_mask_storeu_epi32(P + (size_t)kp * 2 * n + 2 * (size_t)j, m, pr);
        }
}

static MB_TARGET_BF16 void b16__rows(const float *src, size_t m, int k, uint16_t *dst, int kpad) {
    for (size_t r = 0; r < m; r++)
        for (int j = 0; j < kpad; j += 16) {
            int left = k - j;
            __mmask16 mk = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            __mmask16 ms = kpad - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (kpad - j)) - 1);
            __m512 x = _mm512_maskz_loadu_ps(mk, src + r * (size_t)k + j);
            _mm256_mask_storeu_epi16(dst + r * (size_t)kpad + j, ms, (__m256i)_mm512_cvtneps_pbh(x));
        }
}
#endif /* MB_X86 */

void mb_bf16_pack(const float *W, int k, int n, uint16_t *P) {
#ifdef MB_X86
    if (mb_cpu_has_bf16()) b16__pack(W, k, n, P);
#else
    (void)W, (void)k, (void)n, (void)P;
#endif
}

void mb_bf16_rows(const float *src, size_t m, int k, uint16_t *dst, int kpad) {
#ifdef MB_X86
    if (mb_cpu_has_bf16()) b16__rows(src, m, k, dst, kpad);
#else
    (void)src, (void)m, (void)k, (void)dst, (void)kpad;
#endif
}

void mb_gemm_bf16_act(size_t m, int n, int kpad, const uint16_t *A, const uint16_t *P,
                      const float *bias, mb_activation act, uint16_t *C) {
#ifdef MB_X86
    if (m == 0 || n <= 0 || !mb_cpu_has_bf16()) return;
    int npad = (n + 1) & ~1;
    b16__drive(m, n, npad, kpad, A, P, bias, B16_OUT_BF16, (int)act, C, (size_t)npad);
#else
    (void)m, (void)n, (void)kpad, (void)A, (void)P, (void)bias, (void)act, (void)C;
#endif
}

void mb_gemm_bf16_f32(size_t m, int n, int kpad, const uint16_t *A, const uint16_t *P, float *C) {
#ifdef MB_X86
    if (m == 0 || n <= 0 || !mb_cpu_has_bf16()) return;
    b16__drive(m, n, n, kpad, A, P, NULL, B16_OUT_F32, -1, C, (size_t)n);
#else
    (void)m, (void)n, (void)kpad, (void)A, (void)P, (void)C;
#endif
}
