/* rng_vec.c: 8-lane xoshiro256** (rng_vec.h): the AVX-512 and AVX2 loops
 * (chosen per call by mb_cpu_isa, base/cpu.h) and their lane-by-lane
 * scalar twins, and the polynomial log and sin/cos of the Box-Muller
 * normals.
 *
 * The scalar twins repeat the vector arithmetic operation by operation
 * (fmaf where the vector code fuses, the same constants, exact integer to
 * float conversions of 24-bit values), so both give the same bits.
 * Not for: single draws (rng.c). */
#include "base/rng_vec.h"

#include <math.h>
#include <string.h>

#include "base/cpu.h"
#include "base/rng.h"

void mb_vrng_init(mb_vrng *g, uint64_t seed, uint64_t stream) {
    mb_rng base, child, lane;
    mb_rng_seed(&base, seed);
    mb_rng_split(&base, stream, &child);
    for (int l = 0; l < 8; l++) {
        mb_rng_split(&child, (uint64_t)l, &lane);
        for (int w = 0; w < 4; w++) g->s[w][l] = lane.s[w];
        if (!(g->s[0][l] | g->s[1][l] | g->s[2][l] | g->s[3][l])) g->s[0][l] = 1;
    }
}

/* ---- scalar, one lane at a time ------------------------------------------ */

static uint64_t vrng__lane_step(mb_vrng *g, int l) {
    uint64_t s[4] = {g->s[0][l], g->s[1][l], g->s[2][l], g->s[3][l]};
    uint64_t r = mb_rng_step(s);
    for (int w = 0; w < 4; w++) g->s[w][l] = s[w];
    return r;
}

static float vrng__bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t vrng__f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ln(u) for u in (0, 1]: exponent + 2 atanh((m-1)/(m+1)) series, m in
 * [sqrt(1/2), sqrt(2)); |error| < 2e-7. */
static float vrng__log1(float u) {
    uint32_t bits = vrng__f_bits(u);
    int32_t e = (int32_t)(bits >> 23) - 127;
    float m = vrng__bits_f((bits & 0x7fffffu) | 0x3f800000u);
    if (m > 1.41421356f) {
        m = m * 0.5f;
        e += 1;
    }
    float t = (m - 1.0f) / (m + 1.0f);
    float t2 = t * t;
    float p = fmaf(t2, 1.0f / 9, 1.0f / 7);
    p = fmaf(t2, p, 1.0f / 5);
    p = fmaf(t2, p, 1.0f / 3);
    p = fmaf(t2, p, 1.0f);
    float lnm = (t + t) * p;
    return fmaf((float)e, 0.69314718f, lnm);
}

/* cos and sin of 2 pi u for u in [0, 1): quadrant + Taylor on [0, pi/2)
 * (|error| < 1e-7). */
static void vrng__sincos1(float u, float *c_out, float *s_out) {
    float x = u * 4.0f;
    int32_t q = (int32_t)x;
    float a = (x - (float)q) * 1.57079633f;
    float a2 = a * a;
    float s = fmaf(a2, -1.0f / 39916800, 1.0f / 362880);
    s = fmaf(a2, s, -1.0f / 5040);
    s = fmaf(a2, s, 1.0f / 120);
    s = fmaf(a2, s, -1.0f / 6);
    s = fmaf(a2, s, 1.0f);
    s = s * a;
    float c = fmaf(a2, 1.0f / 479001600, -1.0f / 3628800);
    c = fmaf(a2, c, 1.0f / 40320);
    c = fmaf(a2, c, -1.0f / 720);
    c = fmaf(a2, c, 1.0f / 24);
    c = fmaf(a2, c, -0.5f);
    c = fmaf(a2, c, 1.0f);
    /* quadrant q: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c) */
    float cv = (q & 1) ? s : c, sv = (q & 1) ? c : s;
    uint32_t neg_s = (uint32_t)(q & 2) << 30, neg_c = (uint32_t)((q + 1) & 2) << 30;
    *c_out = vrng__bits_f(vrng__f_bits(cv) ^ neg_c);
    *s_out = vrng__bits_f(vrng__f_bits(sv) ^ neg_s);
}

void mb_vrng_fill_normal_ref(mb_vrng *g, float *out, size_t n) {
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t r[8];
        for (int l = 0; l < 8; l++) r[l] = vrng__lane_step(g, l);
        for (int j = 0; j < 8; j++) {
            uint64_t v = r[MB_VRNG_LANE(j)];
            float u1 = ((float)(int32_t)(v >> 40) + 1.0f) * 0x1p-24f;
            float u2 = (float)(int32_t)((v >> 16) & 0xffffff) * 0x1p-24f;
            float rad = sqrtf(-2.0f * vrng__log1(u1));
            float c, s;
            vrng__sincos1(u2, &c, &s);
            out[i + (size_t)j] = rad * c;
            out[i + 8 + (size_t)j] = rad * s;
        }
    }
}

void mb_vrng_fill_uniform_ref(mb_vrng *g, float *out, size_t n) {
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) out[i + (size_t)l] = (float)(int32_t)(vrng__lane_step(g, l) >> 40) * 0x1p-24f;
}

/* ---- AVX2: 2 x 4 lanes per step ------------------------------------------ */

#ifdef MB_X86
#include <immintrin.h>

#define VRNG_AVX2 static inline __attribute__((always_inline)) MB_TARGET_AVX2
#define VRNG_AVX512 static inline __attribute__((always_inline)) MB_TARGET_AVX512

VRNG_AVX2 __m256i vrng__rotl(__m256i x, int k) {
    return _mm256_or_si256(_mm256_slli_epi64(x, k), _mm256_srli_epi64(x, 64 - k));
}

/* One xoshiro256** step on 4 lanes; s0..s3 are the state words. */
VRNG_AVX2 __m256i vrng__step4(__m256i *s0, __m256i *s1, __m256i *s2, __m256i *s3) {
    __m256i x5 = _mm256_add_epi64(_mm256_slli_epi64(*s1, 2), *s1);   /* s1 * 5 */
    __m256i r = vrng__rotl(x5, 7);
    r = _mm256_add_epi64(_mm256_slli_epi64(r, 3), r);                 /* * 9 */
    __m256i t = _mm256_slli_epi64(*s1, 17);
    *s2 = _mm256_xor_si256(*s2, *s0);
    *s3 = _mm256_xor_si256(*s3, *s1);
    *s1 = _mm256_xor_si256(*s1, *s2);
    *s0 = _mm256_xor_si256(*s0, *s3);
    *s2 = _mm256_xor_si256(*s2, t);
    *s3 = vrng__rotl(*s3, 45);
    return r;
}

/* vrng__log1 on 8 lanes. */
VRNG_AVX2 __m256 vrng__log8(__m256 u) {
    __m256i bits = _mm256_castps_si256(u);
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)),
                                                   _mm256_set1_epi32(0x3f800000)));
    __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
    e = _mm256_sub_epi32(e, _mm256_castps_si256(big)); /* big lanes are -1 */
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
    __m256 t2 = _mm256_mul_ps(t, t);
    __m256 p = _mm256_fmadd_ps(t2, _mm256_set1_ps(1.0f / 9), _mm256_set1_ps(1.0f / 7));
    p = _mm256_fmadd_ps(t2, p, _mm256_set1_ps(1.0f / 5));
    p = _mm256_fmadd_ps(t2, p, _mm256_set1_ps(1.0f / 3));
    p = _mm256_fmadd_ps(t2, p, one);
    __m256 lnm = _mm256_mul_ps(_mm256_add_ps(t, t), p);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(e), _mm256_set1_ps(0.69314718f), lnm);
}

/* vrng__sincos1 on 8 lanes. */
VRNG_AVX2 void vrng__sincos8(__m256 u, __m256 *c_out, __m256 *s_out) {
    __m256 x = _mm256_mul_ps(u, _mm256_set1_ps(4.0f));
    __m256i q = _mm256_cvttps_epi32(x);
    __m256 a = _mm256_mul_ps(_mm256_sub_ps(x, _mm256_cvtepi32_ps(q)), _mm256_set1_ps(1.57079633f));
    __m256 a2 = _mm256_mul_ps(a, a);
    __m256 s = _mm256_fmadd_ps(a2, _mm256_set1_ps(-1.0f / 39916800), _mm256_set1_ps(1.0f / 362880));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(-1.0f / 5040));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(1.0f / 120));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(-1.0f / 6));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(1.0f));
    s = _mm256_mul_ps(s, a);
    __m256 c = _mm256_fmadd_ps(a2, _mm256_set1_ps(1.0f / 479001600), _mm256_set1_ps(-1.0f / 3628800));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(1.0f / 40320));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(-1.0f / 720));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(1.0f / 24));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(-0.5f));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(1.0f));
    /* quadrant q: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c) */
    __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)),
                                                         _mm256_set1_epi32(1)));
    __m256 cv = _mm256_blendv_ps(c, s, swap), sv = _mm256_blendv_ps(s, c, swap);
    __m256i two = _mm256_set1_epi32(2);
    __m256 neg_s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(q, two), 30));
    __m256 neg_c = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(q, _mm256_set1_epi32(1)), two), 30));
    *c_out = _mm256_xor_ps(cv, neg_c);
    *s_out = _mm256_xor_ps(sv, neg_s);
}

#define VRNG__LOAD(g)                                                    \
    __m256i a0 = _mm256_loadu_si256((const __m256i *)&(g)->s[0][0]);     \
    __m256i a1 = _mm256_loadu_si256((const __m256i *)&(g)->s[1][0]);     \
    __m256i a2 = _mm256_loadu_si256((const __m256i *)&(g)->s[2][0]);     \
    __m256i a3 = _mm256_loadu_si256((const __m256i *)&(g)->s[3][0]);     \
    __m256i b0 = _mm256_loadu_si256((const __m256i *)&(g)->s[0][4]);     \
    __m256i b1 = _mm256_loadu_si256((const __m256i *)&(g)->s[1][4]);     \
    __m256i b2 = _mm256_loadu_si256((const __m256i *)&(g)->s[2][4]);     \
    __m256i b3 = _mm256_loadu_si256((const __m256i *)&(g)->s[3][4])
#define VRNG__STORE(g)                                      \
    _mm256_storeu_si256((__m256i *)&(g)->s[0][0], a0);      \
    _mm256_storeu_si256((__m256i *)&(g)->s[1][0], a1);      \
    _mm256_storeu_si256((__m256i *)&(g)->s[2][0], a2);      \
    _mm256_storeu_si256((__m256i *)&(g)->s[3][0], a3);      \
    _mm256_storeu_si256((__m256i *)&(g)->s[0][4], b0);      \
    _mm256_storeu_si256((__m256i *)&(g)->s[1][4], b1);      \
    _mm256_storeu_si256((__m256i *)&(g)->s[2][4], b2);      \
    _mm256_storeu_si256((__m256i *)&(g)->s[3][4], b3)

static MB_TARGET_AVX2 void vrng__fill_normal8(mb_vrng *g, float *out, size_t n) {
    VRNG__LOAD(g);
    const __m256i m24 = _mm256_set1_epi64x(0xffffff);
    const __m256 scale = _mm256_set1_ps(0x1p-24f), one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i + 16 <= n; i += 16) {
        __m256i ra = vrng__step4(&a0, &a1, &a2, &a3), rb = vrng__step4(&b0, &b1, &b2, &b3);
        /* 24-bit fields in the low half of each 64-bit lane, packed to 8 x 32 */
        __m256i k1a = _mm256_srli_epi64(ra, 40), k1b = _mm256_srli_epi64(rb, 40);
        __m256i k2a = _mm256_and_si256(_mm256_srli_epi64(ra, 16), m24);
        __m256i k2b = _mm256_and_si256(_mm256_srli_epi64(rb, 16), m24);
        __m256 k1 = _mm256_shuffle_ps(_mm256_castsi256_ps(k1a), _mm256_castsi256_ps(k1b), 0x88);
        __m256 k2 = _mm256_shuffle_ps(_mm256_castsi256_ps(k2a), _mm256_castsi256_ps(k2b), 0x88);
        __m256 u1 = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_castps_si256(k1)), one), scale);
        __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_castps_si256(k2)), scale);
        __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), vrng__log8(u1)));
        __m256 c, s;
        vrng__sincos8(u2, &c, &s);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(r, c));
        _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(r, s));
    }
    VRNG__STORE(g);
}

static MB_TARGET_AVX2 void vrng__fill_uniform8(mb_vrng *g, float *out, size_t n) {
    VRNG__LOAD(g);
    const __m256 scale = _mm256_set1_ps(0x1p-24f);
    /* lane order after the pack: 0 1 4 5 2 3 6 7; this permute restores 0..7 */
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (size_t i = 0; i + 8 <= n; i += 8) {
        __m256i ra = vrng__step4(&a0, &a1, &a2, &a3), rb = vrng__step4(&b0, &b1, &b2, &b3);
        __m256 k = _mm256_shuffle_ps(_mm256_castsi256_ps(_mm256_srli_epi64(ra, 40)),
                                     _mm256_castsi256_ps(_mm256_srli_epi64(rb, 40)), 0x88);
        k = _mm256_permutevar8x32_ps(k, order);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_castps_si256(k)), scale));
    }
    VRNG__STORE(g);
}

/* ---- AVX-512: all 8 lanes in one register, 16-lane math ------------------
 * The same arithmetic as the AVX2 loops (and the _ref twins), lane for
 * lane; two steps share one pass of the log and sin/cos. */

VRNG_AVX512 __m512i vrng__step8(__m512i *s0, __m512i *s1, __m512i *s2, __m512i *s3) {
    __m512i x5 = _mm512_add_epi64(_mm512_slli_epi64(*s1, 2), *s1);
    __m512i r = _mm512_rol_epi64(x5, 7);
    r = _mm512_add_epi64(_mm512_slli_epi64(r, 3), r);
    __m512i t = _mm512_slli_epi64(*s1, 17);
    *s2 = _mm512_xor_si512(*s2, *s0);
    *s3 = _mm512_xor_si512(*s3, *s1);
    *s1 = _mm512_xor_si512(*s1, *s2);
    *s0 = _mm512_xor_si512(*s0, *s3);
    *s2 = _mm512_xor_si512(*s2, t);
    *s3 = _mm512_rol_epi64(*s3, 45);
    return r;
}

VRNG_AVX512 __m512 vrng__log16(__m512 u) {
    __m512i bits = _mm512_castps_si512(u);
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127));
    __m512 m = _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffff)),
                                                   _mm512_set1_epi32(0x3f800000)));
    __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_epi32(e, big, e, _mm512_set1_epi32(1));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(_mm512_sub_ps(m, one), _mm512_add_ps(m, one));
    __m512 t2 = _mm512_mul_ps(t, t);
    __m512 p = _mm512_fmadd_ps(t2, _mm512_set1_ps(1.0f / 9), _mm512_set1_ps(1.0f / 7));
    p = _mm512_fmadd_ps(t2, p, _mm512_set1_ps(1.0f / 5));
    p = _mm512_fmadd_ps(t2, p, _mm512_set1_ps(1.0f / 3));
    p = _mm512_fmadd_ps(t2, p, one);
    __m512 lnm = _mm512_mul_ps(_mm512_add_ps(t, t), p);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(e), _mm512_set1_ps(0.69314718f), lnm);
}

VRNG_AVX512 void vrng__sincos16(__m512 u, __m512 *c_out, __m512 *s_out) {
    __m512 x = _mm512_mul_ps(u, _mm512_set1_ps(4.0f));
    __m512i q = _mm512_cvttps_epi32(x);
    __m512 a = _mm512_mul_ps(_mm512_sub_ps(x, _mm512_cvtepi32_ps(q)), _mm512_set1_ps(1.57079633f));
    __m512 a2 = _mm512_mul_ps(a, a);
    __m512 s = _mm512_fmadd_ps(a2, _mm512_set1_ps(-1.0f / 39916800), _mm512_set1_ps(1.0f / 362880));
    s = _mm512_fmadd_ps(a2, s, _mm512_set1_ps(-1.0f / 5040));
    s = _mm512_fmadd_ps(a2, s, _mm512_set1_ps(1.0f / 120));
    s = _mm512_fmadd_ps(a2, s, _mm512_set1_ps(-1.0f / 6));
    s = _mm512_fmadd_ps(a2, s, _mm512_set1_ps(1.0f));
    s = _mm512_mul_ps(s, a);
    __m512 c = _mm512_fmadd_ps(a2, _mm512_set1_ps(1.0f / 479001600), _mm512_set1_ps(-1.0f / 3628800));
    c = _mm512_fmadd_ps(a2, c, _mm512_set1_ps(1.0f / 40320));
    c = _mm512_fmadd_ps(a2, c, _mm512_set1_ps(-1.0f / 720));
    c = _mm512_fmadd_ps(a2, c, _mm512_set1_ps(1.0f / 24));
    c = _mm512_fmadd_ps(a2, c, _mm512_set1_ps(-0.5f));
    c = _mm512_fmadd_ps(a2, c, _mm512_set1_ps(1.0f));
    __mmask16 swap = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
    __m512 cv = _mm512_mask_blend_ps(swap, c, s), sv = _mm512_mask_blend_ps(swap, s, c);
    __m512i two = _mm512_set1_epi32(2);
    __m512i neg_s = _mm512_slli_epi32(_mm512_and_si512(q, two), 30);
    __m512i neg_c = _mm512_slli_epi32(_mm512_and_si512(_mm512_add_epi32(q, _mm512_set1_epi32(1)), two), 30);
    *c_out = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(cv), neg_c));
    *s_out = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sv), neg_s));
}

#define VRNG__LOAD16(g)                                                  \
    __m512i z0 = _mm512_loadu_si512((const void *)&(g)->s[0][0]);        \
    __m512i z1 = _mm512_loadu_si512((const void *)&(g)->s[1][0]);        \
    __m512i z2 = _mm512_loadu_si512((const void *)&(g)->s[2][0]);        \
    __m512i z3 = _mm512_loadu_si512((const void *)&(g)->s[3][0])
#define VRNG__STORE16(g)                                \
    _mm512_storeu_si512((void *)&(g)->s[0][0], z0);     \
    _mm512_storeu_si512((void *)&(g)->s[1][0], z1);     \
    _mm512_storeu_si512((void *)&(g)->s[2][0], z2);     \
    _mm512_storeu_si512((void *)&(g)->s[3][0], z3)

/* One step's 24-bit fields as 8 x 32, output j from lane MB_VRNG_LANE(j). */
VRNG_AVX512 void vrng__fields8(__m512i r, __m256i *k1, __m256i *k2) {
    const __m512i order = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
    r = _mm512_permutexvar_epi64(order, r);
    *k1 = _mm512_cvtepi64_epi32(_mm512_srli_epi64(r, 40));
    *k2 = _mm512_cvtepi64_epi32(_mm512_and_si512(_mm512_srli_epi64(r, 16), _mm512_set1_epi64(0xffffff)));
}

static MB_TARGET_AVX512 void vrng__fill_normal16(mb_vrng *g, float *out, size_t n) {
    VRNG__LOAD16(g);
    const __m512 scale = _mm512_set1_ps(0x1p-24f), one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i + 16 <= n; i += 32) {
        int two = i + 32 <= n;
        __m256i k1a, k2a, k1b, k2b;
        vrng__fields8(vrng__step8(&z0, &z1, &z2, &z3), &k1a, &k2a);
        if (two) vrng__fields8(vrng__step8(&z0, &z1, &z2, &z3), &k1b, &k2b);
        else k1b = k1a, k2b = k2a;
        __m512i k1 = _mm512_inserti64x4(_mm512_castsi256_si512(k1a), k1b, 1);
        __m512i k2 = _mm512_inserti64x4(_mm512_castsi256_si512(k2a), k2b, 1);
        __m512 u1 = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepi32_ps(k1), one), scale);
        __m512 u2 = _mm512_mul_ps(_mm512_cvtepi32_ps(k2), scale);
        __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), vrng__log16(u1)));
        __m512 c, s;
        vrng__sincos16(u2, &c, &s);
        __m512 rc = _mm512_mul_ps(r, c), rs = _mm512_mul_ps(r, s);
        _mm256_storeu_ps(out + i, _mm512_castps512_ps256(rc));
        _mm256_storeu_ps(out + i + 8, _mm512_castps512_ps256(rs));
        if (two) {
            _mm256_storeu_ps(out + i + 16, _mm512_extractf32x8_ps(rc, 1));
            _mm256_storeu_ps(out + i + 24, _mm512_extractf32x8_ps(rs, 1));
        }
    }
    VRNG__STORE16(g);
}

static MB_TARGET_AVX512 void vrng__fill_uniform16(mb_vrng *g, float *out, size_t n) {
    VRNG__LOAD16(g);
    const __m256 scale = _mm256_set1_ps(0x1p-24f);
    for (size_t i = 0; i + 8 <= n; i += 8) {
        __m512i r = vrng__step8(&z0, &z1, &z2, &z3);
        __m256i k = _mm512_cvtepi64_epi32(_mm512_srli_epi64(r, 40));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(k), scale));
    }
    VRNG__STORE16(g);
}
#endif /* MB_X86 */

void mb_vrng_fill_normal(mb_vrng *g, float *out, size_t n) {
    switch (mb_cpu_isa()) {
#ifdef MB_X86
    case MB_ISA_AVX512: vrng__fill_normal16(g, out, n); return;
    case MB_ISA_AVX2: vrng__fill_normal8(g, out, n); return;
#endif
    default: mb_vrng_fill_normal_ref(g, out, n); return;
    }
}

void mb_vrng_fill_uniform(mb_vrng *g, float *out, size_t n) {
    switch (mb_cpu_isa()) {
#ifdef MB_X86
    case MB_ISA_AVX512: vrng__fill_uniform16(g, out, n); return;
    case MB_ISA_AVX2: vrng__fill_uniform8(g, out, n); return;
#endif
    default: mb_vrng_fill_uniform_ref(g, out, n); return;
    }
}
