/* test_rng.c: the seeded generator (core/base/rng.c) and its 8-lane form
 * (core/base/rng_vec.c): known first outputs (the sequences the planner,
 * the trainer and the simulators were built on must not move), each vector
 * lane against the scalar stream it claims to be, the vector code against
 * its scalar twin bit for bit, and the Box-Muller normals against libm.
 *
 * Moment checks use N draws and a tolerance of 5 standard errors of the
 * estimate (computed from N, so the shrunken sanitizer run stays fair):
 * a correct generator fails one with probability below 1e-6.
 * Not for: statistical test batteries (TestU01 / PractRand territory). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "base/rng_vec.h"

static size_t draws(void) { return mb_test_sanitized() ? 200000 : 2000000; }

START_TEST(test_same_seed_same_sequence) {
    mb_rng a, b, c;
    mb_rng_seed(&a, 12345);
    mb_rng_seed(&b, 12345);
    mb_rng_seed(&c, 12346);
    int differ = 0, same = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = mb_rng_u64(&a);
        same += x == mb_rng_u64(&b);
        if (x != mb_rng_u64(&c)) differ++;
    }
    ck_assert_int_eq(same, 1000);
    ck_assert_int_eq(differ, 1000);
    /* normals (with the cached spare) repeat too */
    mb_rng_seed(&a, 9);
    mb_rng_seed(&b, 9);
    same = 0;
    for (int i = 0; i < 101; i++) same += mb_rng_normal(&a) == mb_rng_normal(&b);
    ck_assert_int_eq(same, 101);
    /* re-seeding resets the spare */
    mb_rng_seed(&a, 9);
    mb_rng_seed(&b, 9);
    (void)mb_rng_normal(&a);
    mb_rng_seed(&a, 9);
    ck_assert(mb_rng_normal(&a) == mb_rng_normal(&b));
    /* seed 0 is a valid seed */
    mb_rng_seed(&a, 0);
    ck_assert(mb_rng_u64(&a) != 0 || mb_rng_u64(&a) != 0);
}
END_TEST

START_TEST(test_uniform_moments) {
    mb_rng r;
    mb_rng_seed(&r, 1);
    size_t n = draws();
    double s = 0, s2 = 0, lo = 1, hi = 0;
    size_t outside = 0;
    for (size_t i = 0; i < n; i++) {
        double u = mb_rng_uniform(&r);
        outside += !(u >= 0.0 && u < 1.0);
        s += u;
        s2 += (u - 0.5) * (u - 0.5);
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    /* mean 1/2, sd of the mean sqrt(1/12/n); E(u-1/2)^2 = 1/12 with sd
     * sqrt((1/80 - 1/144)/n) */
    ck_assert_uint_eq(outside, 0);
    MB_ASSERT_CLOSE("uniform mean", s / n, 0.5, 5 * sqrt(1.0 / 12 / n));
    MB_ASSERT_CLOSE("uniform var", s2 / n, 1.0 / 12, 5 * sqrt((1.0 / 80 - 1.0 / 144) / n));
    ck_assert(lo < 1e-4 && hi > 1 - 1e-4);
    float f[1001];
    mb_rng_fill_uniform(&r, f, 1001, -2.0f, 3.0f);
    double fs = 0;
    for (int i = 0; i < 1001; i++) {
        outside += !(f[i] >= -2.0f && f[i] < 3.0f);
        fs += f[i];
    }
    ck_assert_uint_eq(outside, 0);
    MB_ASSERT_CLOSE("fill_uniform mean", fs / 1001, 0.5, 5 * 5 / sqrt(12.0 * 1001));
}
END_TEST

START_TEST(test_normal_moments) {
    mb_rng r;
    mb_rng_seed(&r, 2);
    size_t n = draws();
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    for (size_t i = 0; i < n; i++) {
        double z = mb_rng_normal(&r);
        m1 += z;
        m2 += z * z;
        m3 += z * z * z;
        m4 += z * z * z * z;
    }
    m1 /= n;
    m2 /= n;
    m3 /= n;
    m4 /= n;
    /* sd of the k-th raw moment estimate: sqrt((E z^2k - (E z^k)^2) / n):
     * k=1: 1, k=2: sqrt(2), k=3: sqrt(15), k=4: sqrt(105 - 9) */
    MB_ASSERT_CLOSE("normal mean", m1, 0, 5 * sqrt(1.0 / n));
    MB_ASSERT_CLOSE("normal E z^2", m2, 1, 5 * sqrt(2.0 / n));
    MB_ASSERT_CLOSE("normal E z^3", m3, 0, 5 * sqrt(15.0 / n));
    MB_ASSERT_CLOSE("normal E z^4", m4, 3, 5 * sqrt(96.0 / n));
    float f[4000];
    mb_rng_fill_normal(&r, f, 4000, 3.0f, 0.5f);
    double fs = 0, fs2 = 0;
    for (int i = 0; i < 4000; i++) {
        fs += f[i];
        fs2 += (f[i] - 3.0) * (f[i] - 3.0);
    }
    MB_ASSERT_CLOSE("fill_normal mean", fs / 4000, 3.0, 5 * 0.5 / sqrt(4000.0));
    MB_ASSERT_CLOSE("fill_normal var", fs2 / 4000, 0.25, 5 * 0.25 * sqrt(2.0 / 4000));
}
END_TEST

/* Unbiased bounded integers: in range; uniform over small n (chi-square);
 * and for n = 3 * 2^62, where taking u64 % n would put half the mass below
 * 2^62, the share below 2^62 is 1/3. */
START_TEST(test_below) {
    mb_rng r;
    mb_rng_seed(&r, 3);
    ck_assert_uint_eq(mb_rng_below(&r, 1), 0);
    size_t outside = 0;
    for (int i = 0; i < 1000; i++) outside += mb_rng_below(&r, 2) >= 2;
    uint64_t big = UINT64_MAX - 5;
    for (int i = 0; i < 1000; i++) outside += mb_rng_below(&r, big) >= big;
    size_t n = draws() / 2;
    enum { K = 7 };
    size_t cnt[K] = {0};
    for (size_t i = 0; i < n; i++) {
        uint64_t v = mb_rng_below(&r, K);
        if (v < K) cnt[v]++;
        else outside++;
    }
    ck_assert_uint_eq(outside, 0);
    double chi2 = 0, e = (double)n / K;
    for (int k = 0; k < K; k++) chi2 += (cnt[k] - e) * (cnt[k] - e) / e;
    /* 6 degrees of freedom: P(chi2 > 35) < 5e-6 */
    ck_assert_msg(chi2 < 35, "chi2 %g over %d bins", chi2, K);
    const uint64_t n3 = 3ULL << 62;
    size_t low = 0, m = draws() / 4;
    for (size_t i = 0; i < m; i++) low += mb_rng_below(&r, n3) < (1ULL << 62);
    MB_ASSERT_CLOSE("P(below(3*2^62) < 2^62)", (double)low / m, 1.0 / 3,
                    5 * sqrt(2.0 / 9 / m));
}
END_TEST

START_TEST(test_split) {
    mb_rng parent, keep, c0, c1, c0b;
    mb_rng_seed(&parent, 77);
    keep = parent;
    mb_rng_split(&parent, 0, &c0);
    mb_rng_split(&parent, 1, &c1);
    mb_rng_split(&parent, 0, &c0b);
    ck_assert_mem_eq(&parent, &keep, sizeof parent); /* parent unchanged */
    int same01 = 0, same0p = 0, repeat = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t a = mb_rng_u64(&c0), b = mb_rng_u64(&c1), p = mb_rng_u64(&parent);
        repeat += a == mb_rng_u64(&c0b); /* deterministic */
        same01 += a == b;
        same0p += a == p;
    }
    ck_assert_int_eq(repeat, 1000);
    ck_assert_int_eq(same01, 0);
    ck_assert_int_eq(same0p, 0);
    /* streams look independent: correlation of uniforms ~ 0 */
    mb_rng_seed(&parent, 78);
    mb_rng_split(&parent, 5, &c0);
    mb_rng_split(&parent, 6, &c1);
    size_t n = draws() / 4;
    double sxy = 0;
    for (size_t i = 0; i < n; i++)
        sxy += (mb_rng_uniform(&c0) - 0.5) * (mb_rng_uniform(&c1) - 0.5);
    /* corr = 12 * mean((u-1/2)(v-1/2)), sd 1/sqrt(n) */
    MB_ASSERT_CLOSE("corr(stream 5, stream 6)", 12 * sxy / n, 0, 5 / sqrt((double)n));
}
END_TEST

/* The first outputs as they were before the generators were merged (the
 * scalar u64s; the simulators' Box-Muller normal, sim_rng_normal, which is
 * now mb_rng_normal_bm; the planner's 8-lane normals, plan_fill_normal). */
START_TEST(test_known_first_outputs) {
    static const uint64_t u64[4] = {0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull,
                                    0xae17533239e499a1ull, 0xecb8ad4703b360a1ull};
    mb_rng r;
    mb_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++) ck_assert_uint_eq(mb_rng_u64(&r), u64[i]);
    mb_rng_seed(&r, 42);
    ck_assert(mb_rng_uniform(&r) == 0x1.5780b2e0c2ecp-4);
    ck_assert(mb_rng_uniform(&r) == 0x1.84136619b444ep-2);
    /* libm's log and cos: allow an ulp or two of another libm */
    static const double bm[4] = {-0x1.368a97c38507cp-2, 0x1.58040c37f1762p+0, 0x1.88aa35330a92cp-2,
                                 0x1.dfb989fa22575p-1};
    mb_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++) MB_ASSERT_CLOSE("normal_bm", mb_rng_normal_bm(&r), bm[i], 1e-14);
    static const float vn[32] = {
        0x1.ff0bfcp-2,  -0x1.1896ap+0,   0x1.9d2f8p+0,   -0x1.80d01p-8,  -0x1.2003a6p-1, 0x1.3c95fap-2,
        0x1.43ee86p+0,  0x1.d11cfp-1,    0x1.42bd1ep-6,  -0x1.68faecp-1, 0x1.c1866ap+0,  -0x1.c1f224p-3,
        -0x1.632e1ap+0, 0x1.ea14b2p-3,   0x1.5220a2p-1,  0x1.8373ecp-1,  -0x1.e5507p-5,  -0x1.14b824p-2,
        -0x1.59f022p+1, 0x1.224244p-4,   0x1.2ef96ap-2,  -0x1.8f7474p-1, 0x1.191066p-4,  0x1.5c81ecp-1,
        0x1.608c0cp-1,  -0x1.8cae96p+0,  0x1.03d008p+0,  0x1.db76dep-4,  -0x1.883106p-1, 0x1.e903b2p-2,
        -0x1.1e9c6ep-5, -0x1.31f34ep-2};
    mb_vrng g;
    float out[32];
    mb_vrng_init(&g, 42, 7);
    mb_vrng_fill_normal(&g, out, 32);
    for (int i = 0; i < 32; i++) ck_assert_msg(out[i] == vn[i], "vrng normal %d: %a, want %a", i, out[i], vn[i]);
    mb_vrng_init(&g, 42, 7);
    mb_vrng_fill_normal_ref(&g, out, 32);
    for (int i = 0; i < 32; i++) ck_assert_msg(out[i] == vn[i], "vrng normal ref %d: %a, want %a", i, out[i], vn[i]);
}
END_TEST

/* Lane l of mb_vrng_init(seed, stream) is split(split(seed(seed), stream), l):
 * its uniforms are that mb_rng's outputs >> 40, and its normals are
 * Box-Muller on the fields rng_vec.h names (checked against libm). */
START_TEST(test_vrng_lanes) {
    const uint64_t seed = 123456789, stream = (1ull << 62) | 5;
    mb_rng base, child, lane[8];
    mb_rng_seed(&base, seed);
    mb_rng_split(&base, stream, &child);
    for (int l = 0; l < 8; l++) mb_rng_split(&child, (uint64_t)l, &lane[l]);
    mb_vrng g, h;
    mb_vrng_init(&g, seed, stream);
    for (int w = 0; w < 4; w++)
        for (int l = 0; l < 8; l++) ck_assert_uint_eq(g.s[w][l], lane[l].s[w]);
    enum { N = 1024 };
    float u[N], ur[N];
    h = g;
    mb_vrng_fill_uniform(&g, u, N);
    mb_vrng_fill_uniform_ref(&h, ur, N);
    ck_assert_mem_eq(&g, &h, sizeof g);
    for (int i = 0; i < N; i++) {
        float want = (float)(mb_rng_u64(&lane[i % 8]) >> 40) * 0x1p-24f;
        ck_assert_msg(u[i] == want && ur[i] == want, "uniform %d: %a / %a, want %a", i, u[i], ur[i], want);
    }
    /* normals: vector == scalar twin bit for bit, both == Box-Muller */
    size_t n = mb_test_sanitized() ? 4096 : 65536;
    float *x = malloc(n * sizeof *x), *xr = malloc(n * sizeof *xr);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(xr);
    h = g;
    mb_vrng_fill_normal(&g, x, n);
    mb_vrng_fill_normal_ref(&h, xr, n);
    ck_assert_mem_eq(&g, &h, sizeof g);
    ck_assert_int_eq(memcmp(x, xr, n * sizeof *x), 0);
    double worst = 0, sum = 0, sum2 = 0;
    for (size_t i = 0; i < n; i += 16)
        for (int j = 0; j < 8; j++) {
            uint64_t v = mb_rng_u64(&lane[MB_VRNG_LANE(j)]);
            double u1 = ((double)(v >> 40) + 1) * 0x1p-24, u2 = (double)((v >> 16) & 0xffffff) * 0x1p-24;
            double r = sqrt(-2 * log(u1));
            double c = r * cos(2 * M_PI * u2), s = r * sin(2 * M_PI * u2);
            double e = fmax(fabs(x[i + j] - c), fabs(x[i + 8 + j] - s)) / fmax(1.0, r);
            if (e > worst) worst = e;
            sum += x[i + j] + x[i + 8 + j];
            sum2 += (double)x[i + j] * x[i + j] + (double)x[i + 8 + j] * x[i + 8 + j];
        }
    MB_ASSERT_CLOSE("vrng normal vs libm Box-Muller", worst, 0, 2e-6);
    MB_ASSERT_CLOSE("vrng normal mean", sum / n, 0, 5 / sqrt((double)n));
    MB_ASSERT_CLOSE("vrng normal variance", sum2 / n, 1, 5 * sqrt(2.0 / n));
    free(x);
    free(xr);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_same_seed_same_sequence);
    tcase_add_test(tc, test_uniform_moments);
    tcase_add_test(tc, test_normal_moments);
    tcase_add_test(tc, test_below);
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_known_first_outputs);
    tcase_add_test(tc, test_vrng_lanes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
