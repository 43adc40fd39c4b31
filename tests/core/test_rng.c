/* test_rng.c: the seeded generator (core/base/rng.c).
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

static Suite *suite(void) {
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("rng");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_same_seed_same_sequence);
    tcase_add_test(tc, test_uniform_moments);
    tcase_add_test(tc, test_normal_moments);
    tcase_add_test(tc, test_below);
    tcase_add_test(tc, test_split);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
