/* test_preset.c: named planner configurations (core/plan/preset.c): the
 * realtime preset's values, the candidates and model rows of one plan with
 * it counted by hand, a valid config for an ensemble of 5, unknown names
 * refused and the config left alone. */
#include <string.h>

#include "check_util.h"
#include "plan/flops.h"
#include "plan/preset.h"

/* realtime: iCEM, H 15, N 100, 10 elites, 3 iterations: populations 100,
 * int(100 / 1.25) = 80, int(80 / 1.25) = 64 = 244 candidates; P 5 over 5
 * members: 244 x 5 = 1220 rows per step, 18,300 over 15 steps (cold; a
 * warm call adds the 3 kept elites once: 15 x 15 = 225 more). */
START_TEST(test_realtime) {
    mb_planner_cfg c;
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(mb_planner_preset("realtime", &c), 0);
    ck_assert_int_eq(c.method, MB_PLAN_ICEM);
    ck_assert_int_eq(c.horizon, 15);
    ck_assert_int_eq(c.population, 100);
    ck_assert_int_eq(c.elites, 10);
    ck_assert_int_eq(c.iterations, 3);
    ck_assert_int_eq(c.particles, 5);
    ck_assert_int_eq(c.propagation, MB_PROP_TS_INF);
    MB_ASSERT_CLOSE("noise_beta", c.noise_beta, 2.0, 0.0);
    MB_ASSERT_CLOSE("keep_elites", c.keep_elites, 0.3, 1e-6);
    ck_assert_int_eq(mb_planner_cfg_check(&c, 5, NULL, 0), MB_OK);
    MB_ASSERT_CLOSE("cold rows", mb_plan_model_rows(&c, 5, 0), 18300.0, 0.0);
    MB_ASSERT_CLOSE("warm rows", mb_plan_model_rows(&c, 5, 3), 18525.0, 0.0);
    mb_planner_cfg keep = c;
    ck_assert_int_eq(mb_planner_preset("fast", &c), -1);
    ck_assert_int_eq(mb_planner_preset(NULL, &c), -1);
    ck_assert_int_eq(memcmp(&keep, &c, sizeof c), 0);
    ck_assert_str_eq(mb_planner_preset_names(), "realtime");
}
END_TEST

int main(void) {
    Suite *s = suite_create("preset");
    TCase *tc = tcase_create("preset");
    tcase_add_test(tc, test_realtime);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
