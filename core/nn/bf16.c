/* bf16.c: the bf16 products (bf16.h): AMX tiles where the CPU has them,
 * else vdpbf16ps (AVX512_BF16).
 *
 * AMX: C in 32 x 32 blocks, four 16 x 16 fp32 accumulator tiles fed by two
 * A tiles (16 rows x 32 k) and two B tiles (16 k pairs x 16 columns) per
 * 32-k step; the accumulators go through a 4 KB scratch to the same fp32
 * epilogue (bias, activation, bf16 or fp32 store). The tile configuration
 * is loaded at the start of each call (each pool worker's own state) and
 * released at its end. The weight tiles stream from L2 (a layer's packed W
 * is ~100 KB at 200 x 200); their loads were the larger cost (skipping
 * them for a test: 535 -> 1,230 GFLOP/s on one core at 256 x 200 x 200),
 * so the next k block's rows are prefetched into L1 while this one
 * multiplies (+10% without the epilogue, +20% with SiLU, best of 30).
 * vdpbf16ps: C[i..i+8, j..j+48] accumulates in 8 x 3 zmm over k pairs: per pair, 3
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

/* 1/d for d >= 1: rcp14's estimate and one Newton step (~1 ulp); a
 * division costs more than the bf16 rounding that follows can show. */
AI MB_TARGET_BF16 __m512 b16__recip(__m512 d) {
    __m512 y = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(1.0f)), y);
}

/* The activations before the bf16 store: vmath.h's exp, the reciprocal
 * above instead of a division (fp32 results within ~1 ulp of the fp32
 * kernels', then rounded to 8 bits). */
AI MB_TARGET_BF16 __m512 b16__act(int act, __m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (act) {
    case MB_ACT_SILU:
        return _mm512_mul_ps(x, b16__recip(_mm512_add_ps(one, mb_vm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x)))));
    case MB_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case MB_ACT_TANH:
        return _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), b16__recip(_mm512_add_ps(mb_vm_exp16(_mm512_add_ps(x, x)), one)), one);
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
static MB_TARGET_BF16 void b16__drive(size_t M, int n, int w, int k, const uint16_t *A,
                                      const uint16_t *P, const float *bias, int out, int act,
                                      void *C, size_t ldc) {
    const int kpad = mb_bf16_stride(k);
    const b16__fn *big = out == B16_OUT_F32 ? b16__big_f32
                         : act == MB_ACT_RELU ? b16__big_relu
                         : act == MB_ACT_TANH ? b16__big_tanh : b16__big_silu;
    const b16__fn *one = out == B16_OUT_F32 ? b16__one_f32
                         : act == MB_ACT_RELU ? b16__one_relu
                         : act == MB_ACT_TANH ? b16__one_tanh : b16__one_silu;
    size_t KP = (size_t)(k + 1) / 2, ldp = 2 * (size_t)mb_bf16_stride(n);
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

/* The columns past n of bf16 rows (stride(n)): zero, as act(0). */
static void b16__pad_zero(size_t m, int n, uint16_t *C) {
    const int ns = mb_bf16_stride(n);
    if (ns == n) return;
    for (size_t r = 0; r < m; r++) memset(C + r * (size_t)ns + n, 0, (size_t)(ns - n) * sizeof(uint16_t));
}

static MB_TARGET_BF16 void b16__pack(const float *W, int k, int n, uint16_t *P) {
    const int ks = mb_bf16_stride(k), ns = mb_bf16_stride(n);
    for (int kp = 0; kp < ks / 2; kp++)
        for (int j = 0; j < ns; j += 16) {
            int left = n - j;
            __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            __m512 lo = 2 * kp < k ? _mm512_maskz_loadu_ps(m, W + (size_t)(2 * kp) * n + j) : _mm512_setzero_ps();
            __m512 hi = 2 * kp + 1 < k ? _mm512_maskz_loadu_ps(m, W + (size_t)(2 * kp + 1) * n + j)
                                       : _mm512_setzero_ps();
            /* interleave: lane pairs (lo[j], hi[j]) */
            __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
            __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
            _mm512_storeu_si512((void *)(P + (size_t)kp * 2 * ns + 2 * (size_t)j),
                                _mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
        }
}

static MB_TARGET_BF16 void b16__rows(const float *src, size_t m, int k, uint16_t *dst) {
    const int ks = mb_bf16_stride(k);
    for (size_t r = 0; r < m; r++)
        for (int j = 0; j < ks; j += 32) {
            int l0 = k - j, l1 = k - j - 16;
            __mmask16 m0 = l0 >= 16 ? (__mmask16)0xFFFF : l0 <= 0 ? 0 : (__mmask16)((1u << l0) - 1);
            __mmask16 m1 = l1 >= 16 ? (__mmask16)0xFFFF : l1 <= 0 ? 0 : (__mmask16)((1u << l1) - 1);
            __m512 x0 = _mm512_maskz_loadu_ps(m0, src + r * (size_t)k + j);
            __m512 x1 = _mm512_maskz_loadu_ps(m1, src + r * (size_t)k + j + 16);
            _mm512_storeu_si512((void *)(dst + r * (size_t)ks + j), (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
        }
}

/* ---- AMX ----------------------------------------------------------------- */

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) amx__cfg;

static MB_TARGET_AMX void amx__drive(size_t M, int n, int k, const uint16_t *A, const uint16_t *P,
                                     const float *bias, int out, int act, void *C) {
    const int ks = mb_bf16_stride(k), ns = mb_bf16_stride(n);
    const size_t lda = (size_t)ks * 2, ldp = (size_t)ns * 4; /* bytes */
    amx__cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
    _tile_loadconfig(&cfg);
    float s[32 * 32] __attribute__((aligned(64)));
    for (size_t m0 = 0; m0 < M; m0 += 32) {
        size_t rows = M - m0 < 32 ? M - m0 : 32;
        const uint16_t *a0 = A + m0 * (size_t)ks, *a1 = a0 + 16 * (size_t)ks;
        for (int n0 = 0; n0 < ns; n0 += 32) {
            if (out == B16_OUT_F32 && n0 >= n) break;
            _tile_zero(0);
            _tile_zero(1);
            if (rows > 16) {
                _tile_zero(2);
                _tile_zero(3);
            }
            for (int k0 = 0; k0 < ks; k0 += 32) {
                const uint16_t *p = P + (size_t)(k0 / 2) * 2 * (size_t)ns + 2 * (size_t)n0;
                /* the next k block's B rows (or the first of the next column block) into L1 */
                const uint16_t *pn = k0 + 32 < ks ? p + 16 * 2 * (size_t)ns : P + 2 * (size_t)(n0 + 32);
                for (int r = 0; r < 16; r++) {
                    _mm_prefetch((const char *)(pn + (size_t)r * 2 * ns), _MM_HINT_T0);
                    _mm_prefetch((const char *)(pn + (size_t)r * 2 * ns + 32), _MM_HINT_T0);
                }
                _tile_loadd(6, p, ldp);
                _tile_loadd(7, p + 32, ldp);
                _tile_loadd(4, a0 + k0, lda);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                if (rows > 16) {
                    _tile_loadd(5, a1 + k0, lda);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
            }
            _tile_stored(0, s, 128);
            _tile_stored(1, s + 16, 128);
            if (rows > 16) {
                _tile_stored(2, s + 16 * 32, 128);
                _tile_stored(3, s + 16 * 32 + 16, 128);
            }
            int l0 = n - n0, l1 = n - n0 - 16;
            __mmask16 m0k = l0 >= 16 ? (__mmask16)0xFFFF : l0 <= 0 ? 0 : (__mmask16)((1u << l0) - 1);
            __mmask16 m1k = l1 >= 16 ? (__mmask16)0xFFFF : l1 <= 0 ? 0 : (__mmask16)((1u << l1) - 1);
            if (out == B16_OUT_F32) {
                float *c = (float *)C + m0 * (size_t)n + n0;
                for (size_t r = 0; r < rows; r++) {
                    _mm512_mask_storeu_ps(c + r * (size_t)n, m0k, _mm512_load_ps(s + r * 32));
                    _mm512_mask_storeu_ps(c + r * (size_t)n + 16, m1k, _mm512_load_ps(s + r * 32 + 16));
                }
            } else {
                __m512 b0 = _mm512_maskz_loadu_ps(m0k, bias + n0), b1 = _mm512_maskz_loadu_ps(m1k, bias + n0 + 16);
                uint16_t *c = (uint16_t *)C + m0 * (size_t)ns + n0;
                for (size_t r = 0; r < rows; r++) {
                    /* past n: 0 + 0 -> act(0) = 0, the zero padding */
                    __m512 x0 = b16__act(act, _mm512_add_ps(_mm512_load_ps(s + r * 32), b0));
                    __m512 x1 = b16__act(act, _mm512_add_ps(_mm512_load_ps(s + r * 32 + 16), b1));
                    _mm512_storeu_si512((void *)(c + r * (size_t)ns), (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
                }
            }
        }
    }
    _tile_release();
}
#endif /* MB_X86 */

void mb_bf16_pack(const float *W, int k, int n, uint16_t *P) {
#ifdef MB_X86
    if (mb_cpu_has_bf16()) b16__pack(W, k, n, P);
#else
    (void)W, (void)k, (void)n, (void)P;
#endif
}

void mb_bf16_rows(const float *src, size_t m, int k, uint16_t *dst) {
#ifdef MB_X86
    if (mb_cpu_has_bf16()) b16__rows(src, m, k, dst);
#else
    (void)src, (void)m, (void)k, (void)dst;
#endif
}

void mb_gemm_bf16_act(size_t m, int n, int k, const uint16_t *A, const uint16_t *P,
                      const float *bias, mb_activation act, uint16_t *C) {
#ifdef MB_X86
    if (m == 0 || n <= 0 || !mb_cpu_has_bf16()) return;
    if (mb_cpu_has_amx()) amx__drive(m, n, k, A, P, bias, B16_OUT_BF16, (int)act, C);
    else {
        b16__drive(m, n, n, k, A, P, bias, B16_OUT_BF16, (int)act, C, (size_t)mb_bf16_stride(n));
        b16__pad_zero(m, n, C);
    }
#else
    (void)m, (void)n, (void)k, (void)A, (void)P, (void)bias, (void)act, (void)C;
#endif
}

void mb_gemm_bf16_f32(size_t m, int n, int k, const uint16_t *A, const uint16_t *P, float *C) {
#ifdef MB_X86
    if (m == 0 || n <= 0 || !mb_cpu_has_bf16()) return;
    if (mb_cpu_has_amx()) amx__drive(m, n, k, A, P, NULL, B16_OUT_F32, -1, C);
    else b16__drive(m, n, n, k, A, P, NULL, B16_OUT_F32, -1, C, (size_t)n);
#else
    (void)m, (void)n, (void)k, (void)A, (void)P, (void)C;
#endif
}
