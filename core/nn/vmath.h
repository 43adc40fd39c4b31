/* vmath.h: the one exp approximation of nn (Cephes' expf polynomial after
 * n = round(x log2 e); relative error ~1e-7) at every width: scalar
 * mb_vm_exp1, 8 lanes mb_vm_exp8 (AVX2+FMA), 16 lanes mb_vm_exp16
 * (AVX-512F); Cephes' logf polynomial (mb_vm_log8/16, for softplus); and
 * the activations built on them (silu, sigmoid, tanh, softplus at 8 and 16
 * lanes), shared by ops.c and the gemm epilogue.
 *
 * The 8- and 16-lane forms do the same operations in the same order, so a
 * lane's result does not depend on the width that computed it: exp16
 * applies 2^n with scalef where exp8 multiplies by a built exponent, and the
 * two agree bit for bit on all 2^32 inputs (tests/core/test_ops.c checks
 * it). The scalar form (builds without AVX2+FMA) is the same polynomial
 * without fused multiply-adds. Inputs are clamped to [-87, 88] (NaN gives
 * e^-87). Static inline, header only.
 * Not for: the planner's Box-Muller log and sincos (base/rng_vec.c). */
#ifndef MB_VMATH_H
#define MB_VMATH_H

#include <math.h>
#include <stdint.h>

#include "base/cpu.h"

/* Every width is compiled on x86-64 whatever -march says (target
 * attributes, base/cpu.h); callers run a width only when mb_cpu_isa()
 * allows it, from a function compiled for it. */
#ifdef MB_X86
#include <immintrin.h>
#define MB_VM_AVX2 1
#define MB_VM_AVX512 1
#endif

#define MB_VM_INLINE static inline __attribute__((always_inline))
#define MB_VM_INLINE8 MB_VM_INLINE MB_TARGET_AVX2
#define MB_VM_INLINE16 MB_VM_INLINE MB_TARGET_AVX512

#define MB_VM_EXP_LO -87.0f
#define MB_VM_EXP_HI 88.0f
#define MB_VM_LOG2E 1.44269504088896341f
#define MB_VM_LN2_HI 0.693359375f
#define MB_VM_LN2_LO -2.12194440e-4f
#define MB_VM_P0 1.9875691500E-4f
#define MB_VM_P1 1.3981999507E-3f
#define MB_VM_P2 8.3334519073E-3f
#define MB_VM_P3 4.1665795894E-2f
#define MB_VM_P4 1.6666665459E-1f
#define MB_VM_P5 5.0000001201E-1f

MB_VM_INLINE float mb_vm_exp1(float x) {
    x = fminf(fmaxf(x, MB_VM_EXP_LO), MB_VM_EXP_HI);
    float n = nearbyintf(x * MB_VM_LOG2E);
    float r = x - n * MB_VM_LN2_HI;
    r = r - n * MB_VM_LN2_LO;
    float p = MB_VM_P0;
    p = p * r + MB_VM_P1;
    p = p * r + MB_VM_P2;
    p = p * r + MB_VM_P3;
    p = p * r + MB_VM_P4;
    p = p * r + MB_VM_P5;
    p = p * r * r + r + 1.0f;
    union { float f; int32_t i; } u;
    u.i = ((int32_t)n + 127) << 23;
    return p * u.f;
}

/* Scalar activations (CPUs without AVX2): the formulas of the vector forms
 * without fused multiply-adds, within ~1e-7 relative of them. */
MB_VM_INLINE float mb_vm_silu1(float x) { return x / (1.0f + mb_vm_exp1(-x)); }
MB_VM_INLINE float mb_vm_sigmoid1(float x) { return 1.0f / (1.0f + mb_vm_exp1(-x)); }
MB_VM_INLINE float mb_vm_tanh1(float x) { return 1.0f - 2.0f / (mb_vm_exp1(2 * x) + 1.0f); }

#ifdef MB_VM_AVX2
MB_VM_INLINE8 __m256 mb_vm_exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(MB_VM_EXP_LO)), _mm256_set1_ps(MB_VM_EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(MB_VM_LOG2E)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(MB_VM_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(MB_VM_LN2_LO), r);
    __m256 p = _mm256_set1_ps(MB_VM_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MB_VM_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MB_VM_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MB_VM_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MB_VM_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(MB_VM_P5));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* Natural log for normal x > 0 (Cephes' logf polynomial on m in
 * [sqrt(1/2), sqrt(2)]). Only softplus uses it, on 1 + e^-|x| in (1, 2]. */
MB_VM_INLINE8 __m256 mb_vm_log8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256i xi = _mm256_castps_si256(x);
    __m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(127));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(xi, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f800000)));
    __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
    __m256 e = _mm256_add_ps(_mm256_cvtepi32_ps(ei), _mm256_and_ps(big, one));
    __m256 f = _mm256_sub_ps(m, one);
    __m256 z = _mm256_mul_ps(f, f);
    __m256 y = _mm256_set1_ps(7.0376836292E-2f);
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-1.1514610310E-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.1676998740E-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-1.2420140846E-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(1.4249322787E-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-1.6668057665E-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(2.0000714765E-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(-2.4999993993E-1f));
    y = _mm256_fmadd_ps(y, f, _mm256_set1_ps(3.3333331174E-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, f), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(MB_VM_LN2_LO), y);
    y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(MB_VM_LN2_HI), _mm256_add_ps(f, y));
}
/* The activations of ops.h and the gemm epilogue, one formula each (the
 * 16-lane forms below do the same operations): silu x / (1 + e^-x),
 * sigmoid 1 / (1 + e^-x), tanh 1 - 2 / (e^2x + 1), softplus
 * max(x, 0) + log(1 + e^-|x|). Divisions are IEEE, so lanes agree. */
MB_VM_INLINE8 __m256 mb_vm_silu8(__m256 x) {
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
MB_VM_INLINE8 __m256 mb_vm_sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}
MB_VM_INLINE8 __m256 mb_vm_tanh8(__m256 x) {
    __m256 e = mb_vm_exp8(_mm256_add_ps(x, x));
    return _mm256_sub_ps(_mm256_set1_ps(1.0f), _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
}
MB_VM_INLINE8 __m256 mb_vm_softplus8(__m256 x) {
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    __m256 t = mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), ax));
    return _mm256_add_ps(_mm256_max_ps(x, _mm256_setzero_ps()), mb_vm_log8(_mm256_add_ps(_mm256_set1_ps(1.0f), t)));
}
#endif /* MB_VM_AVX2 */

#ifdef MB_VM_AVX512
MB_VM_INLINE16 __m512 mb_vm_exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(MB_VM_EXP_LO)), _mm512_set1_ps(MB_VM_EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(MB_VM_LOG2E)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(MB_VM_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(MB_VM_LN2_LO), r);
    __m512 p = _mm512_set1_ps(MB_VM_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MB_VM_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MB_VM_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MB_VM_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MB_VM_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(MB_VM_P5));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n); /* p * 2^n, exact as exp8's multiply */
}

MB_VM_INLINE16 __m512 mb_vm_log16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512i xi = _mm512_castps_si512(x);
    __m512i ei = _mm512_sub_epi32(_mm512_srli_epi32(xi, 23), _mm512_set1_epi32(127));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(xi, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f800000)));
    __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    __m512 e = _mm512_add_ps(_mm512_cvtepi32_ps(ei), _mm512_maskz_mov_ps(big, one));
    __m512 f = _mm512_sub_ps(m, one);
    __m512 z = _mm512_mul_ps(f, f);
    __m512 y = _mm512_set1_ps(7.0376836292E-2f);
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.1514610310E-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.1676998740E-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.2420140846E-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(1.4249322787E-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-1.6668057665E-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(2.0000714765E-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(-2.4999993993E-1f));
    y = _mm512_fmadd_ps(y, f, _mm512_set1_ps(3.3333331174E-1f));
    y = _mm512_mul_ps(_mm512_mul_ps(y, f), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(MB_VM_LN2_LO), y);
    y = _mm512_fnmadd_ps(z, _mm512_set1_ps(0.5f), y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(MB_VM_LN2_HI), _mm512_add_ps(f, y));
}
MB_VM_INLINE16 __m512 mb_vm_silu16(__m512 x) {
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), mb_vm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
MB_VM_INLINE16 __m512 mb_vm_sigmoid16(__m512 x) {
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, mb_vm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}
MB_VM_INLINE16 __m512 mb_vm_tanh16(__m512 x) {
    __m512 e = mb_vm_exp16(_mm512_add_ps(x, x));
    return _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
}
MB_VM_INLINE16 __m512 mb_vm_softplus16(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = mb_vm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), ax));
    return _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), mb_vm_log16(_mm512_add_ps(_mm512_set1_ps(1.0f), t)));
}
#endif /* MB_VM_AVX512 */

#endif
