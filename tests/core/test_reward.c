/* test_reward.c: declared reward terms, termination and goal overrides
 * (core/plan/reward.c) against hand computations. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/reward.h"

static mb_reward_spec spec_empty(void) {
    mb_reward_spec r;
    mb_reward_spec_default(&r);
    r.use_learned = 0;
    return r;
}

static float one_step(const mb_reward_spec *r, const float *s, const float *a, const float *learned,
                      uint8_t *alive) {
    float rew = 123.0f;
    mb_reward_step(r, 4, 2, 1, s, a, learned, alive, &rew);
    return rew;
}

START_TEST(test_each_term) {
    const float s[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    const float a[2] = {0.5f, -1.5f};
    uint8_t alive;
    mb_reward_spec r = spec_empty();
    r.n_terms = 1;

    r.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 2.0f, .n_idx = 1, .idx = {3}};
    alive = 1;
    MB_ASSERT_CLOSE("linear: 2 * s[3]", one_step(&r, s, a, NULL, &alive), 6.0, 1e-6);

    r.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 0.5f, .n_idx = 2,
                                  .idx = {0, 1}, .target = {2.0f, 1.0f}};
    alive = 1; /* -0.5 * ((1-2)^2 + (-2-1)^2) = -5 */
    MB_ASSERT_CLOSE("quadratic", one_step(&r, s, a, NULL, &alive), -5.0, 1e-6);

    r.terms[0] = (mb_reward_term){.type = MB_TERM_NORM, .weight = 3.0f, .n_idx = 2,
                                  .idx = {0, 1}, .target = {4.0f, 2.0f}};
    alive = 1; /* -3 * sqrt(9 + 16) = -15 */
    MB_ASSERT_CLOSE("norm to a target", one_step(&r, s, a, NULL, &alive), -15.0, 1e-5);

    r.terms[0] = (mb_reward_term){.type = MB_TERM_NORM, .weight = 1.0f, .n_idx = 2, .idx = {0, 1},
                                  .n_other = 2, .other = {2, 3}};
    alive = 1; /* -sqrt((1-0.5)^2 + (-2-3)^2) = -sqrt(25.25) */
    MB_ASSERT_CLOSE("norm between groups", one_step(&r, s, a, NULL, &alive), -sqrt(25.25), 1e-5);

    r.terms[0] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.1f};
    alive = 1; /* -0.1 * (0.25 + 2.25) */
    MB_ASSERT_CLOSE("action_l2", one_step(&r, s, a, NULL, &alive), -0.25, 1e-6);

    r.terms[0] = (mb_reward_term){.type = MB_TERM_CONSTANT, .weight = 1.5f};
    alive = 1;
    MB_ASSERT_CLOSE("constant", one_step(&r, s, a, NULL, &alive), 1.5, 1e-6);

    /* All together plus a learned reward of 0.25. */
    r.n_terms = 3;
    r.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 2.0f, .n_idx = 1, .idx = {3}};
    r.terms[1] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.1f};
    r.terms[2] = (mb_reward_term){.type = MB_TERM_CONSTANT, .weight = 1.5f};
    r.use_learned = 1;
    const float learned = 0.25f;
    alive = 1;
    MB_ASSERT_CLOSE("sum of terms + learned", one_step(&r, s, a, &learned, &alive),
                    6.0 - 0.25 + 1.5 + 0.25, 1e-5);
    ck_assert_int_eq(alive, 1);
}
END_TEST

START_TEST(test_termination) {
    mb_reward_spec r = spec_empty();
    r.n_terms = 2;
    r.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 1.0f, .n_idx = 1, .idx = {0}};
    r.terms[1] = (mb_reward_term){.type = MB_TERM_CONSTANT, .weight = 10.0f};
    r.n_bounds = 1;
    r.bounds[0] = (mb_bound){.index = 1, .has_min = 1, .min = 0.7f, .has_max = 1, .max = 2.0f};
    /* Three rows: healthy, below min (terminates now), already dead. */
    const float s[3 * 4] = {1, 1.0f, 0, 0, 2, 0.5f, 0, 0, 3, 1.0f, 0, 0};
    const float a[3 * 2] = {0};
    uint8_t alive[3] = {1, 1, 0};
    float rew[3];
    mb_reward_step(&r, 4, 2, 3, s, a, NULL, alive, rew);
    MB_ASSERT_CLOSE("healthy row: linear + constant", rew[0], 11.0, 1e-6);
    MB_ASSERT_CLOSE("terminating row: every term but constant", rew[1], 2.0, 1e-6);
    MB_ASSERT_CLOSE("dead row earns nothing", rew[2], 0.0, 0.0);
    ck_assert_int_eq(alive[0], 1);
    ck_assert_int_eq(alive[1], 0);
    ck_assert_int_eq(alive[2], 0);
    /* The row that terminated earns nothing on the next step, even back in range. */
    const float s2[4] = {5, 1.0f, 0, 0};
    mb_reward_step(&r, 4, 2, 1, s2, a, NULL, &alive[1], rew);
    MB_ASSERT_CLOSE("after termination", rew[0], 0.0, 0.0);
    /* The max limit is exclusive; NaN terminates. */
    const float s3[2 * 4] = {0, 2.0f, 0, 0, 0, NAN, 0, 0};
    uint8_t al[2] = {1, 1};
    mb_reward_step(&r, 4, 2, 2, s3, a, NULL, al, rew);
    ck_assert_int_eq(al[0], 0);
    ck_assert_int_eq(al[1], 0);
    /* One-sided bound. */
    r.bounds[0] = (mb_bound){.index = 0, .has_max = 1, .max = 1.0f};
    uint8_t a1 = 1;
    const float s4[4] = {-100.0f, 0, 0, 0};
    mb_reward_step(&r, 4, 2, 1, s4, a, NULL, &a1, rew);
    ck_assert_int_eq(a1, 1);
}
END_TEST

START_TEST(test_strided) {
    mb_reward_spec r = spec_empty();
    r.use_learned = 1;
    r.n_terms = 2;
    r.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 1.0f, .n_idx = 1, .idx = {1}};
    r.terms[1] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 1.0f};
    /* Rows of stride 3 holding 2 obs entries each; one shared action. */
    const float s[3 * 3] = {0, 1, 99, 0, 2, 99, 0, 3, 99};
    const float act[2] = {1.0f, 2.0f};
    const float learned[3 * 2] = {0.5f, 99, 1.5f, 99, 2.5f, 99};
    uint8_t alive[3] = {1, 1, 1};
    float rew[3];
    mb_reward_step_strided(&r, 2, 2, 3, s, 3, act, 0, learned, 2, alive, rew);
    for (int i = 0; i < 3; i++) {
        char label[32];
        snprintf(label, sizeof label, "strided row %d", i);
        MB_ASSERT_CLOSE(label, rew[i], (i + 1) - 5.0 + (0.5 + i), 1e-6);
    }
}
END_TEST

START_TEST(test_check_and_goal) {
    char err[128];
    mb_reward_spec r = spec_empty();
    ck_assert_int_eq(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    r.n_terms = 1;
    r.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 2,
                                  .idx = {0, 1}, .target = {0, 0}};
    ck_assert_int_eq(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    r.terms[0].idx[1] = 4;
    ck_assert_int_ne(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    ck_assert_ptr_nonnull(strstr(err, "terms[0]"));
    r.terms[0].idx[1] = 1;
    r.terms[0].weight = NAN;
    ck_assert_int_ne(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    r.terms[0].weight = 1.0f;
    r.discount = 0.0f;
    ck_assert_int_ne(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    r.discount = 1.5f;
    ck_assert_int_ne(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    r.discount = 0.99f;
    r.n_bounds = 1;
    r.bounds[0] = (mb_bound){.index = 0};
    ck_assert_int_ne(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    r.bounds[0] = (mb_bound){.index = 0, .has_min = 1, .min = 1, .has_max = 1, .max = 0};
    ck_assert_int_ne(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    r.bounds[0] = (mb_bound){.index = 0, .has_min = 1, .min = 0};
    ck_assert_int_eq(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);
    /* norm between groups needs equal sizes */
    r.terms[0] = (mb_reward_term){.type = MB_TERM_NORM, .weight = 1, .n_idx = 2, .idx = {0, 1},
                                  .n_other = 1, .other = {2}};
    ck_assert_int_ne(mb_reward_spec_check(&r, 4, 2, err, sizeof err), MB_OK);

    /* Goal override on a copy: the original is untouched. */
    mb_reward_spec base = spec_empty();
    base.n_terms = 2;
    base.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 1, .n_idx = 1, .idx = {0}};
    base.terms[1] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1, .n_idx = 2,
                                     .idx = {0, 1}, .target = {0, 0}};
    mb_reward_spec copy = base;
    const float goal[2] = {1.0f, -1.0f};
    ck_assert_int_eq(mb_reward_set_target(&copy, 1, goal, 2, err, sizeof err), MB_OK);
    ck_assert_int_ne(mb_reward_set_target(&copy, 0, goal, 1, err, sizeof err), MB_OK);
    ck_assert_int_ne(mb_reward_set_target(&copy, 1, goal, 1, err, sizeof err), MB_OK);
    ck_assert_int_ne(mb_reward_set_target(&copy, 2, goal, 2, err, sizeof err), MB_OK);
    const float bad[2] = {INFINITY, 0};
    ck_assert_int_ne(mb_reward_set_target(&copy, 1, bad, 2, err, sizeof err), MB_OK);
    const float s[4] = {1.0f, -1.0f, 0, 0}, a[2] = {0, 0};
    uint8_t alive = 1;
    MB_ASSERT_CLOSE("goal reached: only the linear term", one_step(&copy, s, a, NULL, &alive), 1.0,
                    1e-6);
    alive = 1;
    MB_ASSERT_CLOSE("original target kept", one_step(&base, s, a, NULL, &alive), 1.0 - 2.0, 1e-6);
}
END_TEST

int main(void) {
    Suite *s = suite_create("reward");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_each_term);
    tcase_add_test(tc, test_termination);
    tcase_add_test(tc, test_strided);
    tcase_add_test(tc, test_check_and_goal);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
