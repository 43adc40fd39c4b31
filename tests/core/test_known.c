/* test_known.c: the built-in known dynamics (core/plan/known.c): Pendulum-v1
 * steps against hand computations of Gymnasium's equations, the cart-pole
 * against physics it must obey (small-angle period, energy, momentum). */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "plan/known.h"

static void pend_obs(double th, double thdot, float *o) {
    o[0] = (float)cos(th);
    o[1] = (float)sin(th);
    o[2] = (float)thdot;
}

START_TEST(test_pendulum_hand) {
    const mb_known_model *m = &mb_known_pendulum;
    ck_assert_int_eq(m->obs_dim, 3);
    ck_assert_int_eq(m->act_dim, 1);
    float o[3], no[3], r, u;
    /* Upright at rest, u = 1: thdot' = 3 u dt = 0.15, th' = 0.15 * 0.05. */
    pend_obs(0.0, 0.0, o);
    u = 1.0f;
    m->step(1, o, &u, no, &r);
    MB_ASSERT_CLOSE("upright: cos th'", no[0], cos(0.0075), 1e-6);
    MB_ASSERT_CLOSE("upright: sin th'", no[1], sin(0.0075), 1e-6);
    MB_ASSERT_CLOSE("upright: thdot'", no[2], 0.15, 1e-6);
    MB_ASSERT_CLOSE("upright: reward -0.001 u^2", r, -0.001, 1e-7);
    /* th = pi/2, thdot = 1, u = 0: thdot' = 1 + 15 * 0.05 = 1.75. */
    pend_obs(M_PI / 2, 1.0, o);
    u = 0.0f;
    m->step(1, o, &u, no, &r);
    MB_ASSERT_CLOSE("side: thdot'", no[2], 1.75, 1e-5);
    MB_ASSERT_CLOSE("side: sin th'", no[1], sin(M_PI / 2 + 1.75 * 0.05), 1e-5);
    MB_ASSERT_CLOSE("side: reward of the state before", r, -(M_PI * M_PI / 4 + 0.1), 1e-5);
    /* Torque clipped to 2 in the dynamics and in the reward. */
    pend_obs(0.0, 0.0, o);
    u = 5.0f;
    m->step(1, o, &u, no, &r);
    MB_ASSERT_CLOSE("clipped torque: thdot'", no[2], 0.3, 1e-6);
    MB_ASSERT_CLOSE("clipped torque: reward", r, -0.004, 1e-7);
    /* Speed clipped to 8. */
    pend_obs(M_PI / 2, 7.9, o);
    u = 2.0f;
    m->step(1, o, &u, no, &r);
    MB_ASSERT_CLOSE("max speed", no[2], 8.0, 1e-6);
    /* Hanging at rest costs pi^2 (angle_normalize(pi) = -pi). */
    pend_obs(M_PI, 0.0, o);
    u = 0.0f;
    m->step(1, o, &u, no, &r);
    MB_ASSERT_CLOSE("hanging reward", r, -M_PI * M_PI, 1e-4);
    MB_ASSERT_CLOSE("hanging stays: cos", no[0], -1.0, 1e-6);
    /* Several rows at once equal single steps; reward may be NULL. */
    float obs[2 * 3], act[2] = {0.5f, -1.5f}, next[2 * 3], next1[3];
    pend_obs(0.3, -2.0, obs);
    pend_obs(-2.5, 4.0, obs + 3);
    m->step(2, obs, act, next, NULL);
    for (int i = 0; i < 2; i++) {
        m->step(1, obs + 3 * i, act + i, next1, &r);
        for (int j = 0; j < 3; j++) ck_assert_float_eq(next[3 * i + j], next1[j]);
    }
}
END_TEST

static double cart_energy(const float *s) {
    const double M = 10.5, m = 5.0, lc = 0.3, J = 5.0 * 0.36 / 3.0, g = 9.81;
    double th = s[1], xd = s[2], thd = s[3];
    return 0.5 * (M + m) * xd * xd - m * lc * cos(th) * xd * thd + 0.5 * J * thd * thd -
           m * g * lc * cos(th);
}

START_TEST(test_cartpole_physics) {
    const mb_known_model *m = &mb_known_cartpole_swingup;
    ck_assert_int_eq(m->obs_dim, 4);
    ck_assert_int_eq(m->act_dim, 1);
    MB_ASSERT_CLOSE("act_low", m->act_low[0], -3.0, 0.0);
    MB_ASSERT_CLOSE("act_high", m->act_high[0], 3.0, 0.0);
    float s[4] = {0, 0, 0, 0}, ns[4], r, a = 0.0f;
    /* Hanging at rest is an equilibrium; reward exp(-4). */
    m->step(1, s, &a, ns, &r);
    for (int j = 0; j < 4; j++) MB_ASSERT_CLOSE("hanging equilibrium", ns[j], 0.0, 1e-7);
    MB_ASSERT_CLOSE("hanging reward", r, exp(-4.0), 1e-6);
    /* Upright over the origin: reward 1 - 0.01 a^2, action clipped at 3. */
    float up[4] = {0, (float)M_PI, 0, 0};
    a = 10.0f;
    m->step(1, up, &a, ns, &r);
    ck_assert_msg(r < 1.0f && r > 0.9f - 0.09f, "upright reward %g", (double)r);
    a = 0.0f;
    m->step(1, up, &a, ns, &r);
    MB_ASSERT_CLOSE("upright reward", r, exp(-(pow(0.6 * sin(ns[1]) - ns[0], 2) +
                                              pow(-0.6 * cos(ns[1]) - 0.6, 2)) / 0.36), 1e-6);
    float a10 = 10.0f, a3 = 3.0f, n10[4], n3[4];
    m->step(1, s, &a10, n10, &r);
    m->step(1, s, &a3, n3, NULL);
    for (int j = 0; j < 4; j++) ck_assert_float_eq(n10[j], n3[j]);
    double ex = n10[0] - 0.6 * sin(n10[1]), ey = -0.6 * cos(n10[1]);
    MB_ASSERT_CLOSE("reward of the next state, cost of the clipped force", r,
                    exp(-(ex * ex + (ey - 0.6) * (ey - 0.6)) / 0.36) - 0.01 * 9.0, 1e-6);
    /* F = 100 u: from rest the cart's first substep accelerates at
     * F J / ((M + m) J - m^2 lc^2) (th = 0, c = 1, s = 0). */
    double xdd0 = 300.0 * (5.0 * 0.36 / 3.0) / (15.5 * (5.0 * 0.36 / 3.0) - 25.0 * 0.09);
    ck_assert_msg(fabs(n10[2] - 0.04 * xdd0) < 0.1 * 0.04 * xdd0, "cart speed after a full push %g, ~%g",
                  (double)n10[2], 0.04 * xdd0);

    /* Small oscillations: omega^2 = (M + m) m g lc / ((M + m) J - m^2 lc^2). */
    const double M = 10.5, mp = 5.0, lc = 0.3, J = mp * 0.36 / 3.0, g = 9.81;
    double w = sqrt((M + mp) * mp * g * lc / ((M + mp) * J - mp * mp * lc * lc));
    double period = 2.0 * M_PI / w;
    float st[4] = {0, 0.05f, 0, 0};
    double p0 = (M + mp) * st[2] - mp * lc * cos(st[1]) * st[3];
    double e0 = cart_energy(st);
    int crossings = 0;
    double first = -1, last = -1, max_de = 0, max_dp = 0;
    a = 0.0f;
    for (int t = 0; t < 400; t++) {
        float prev = st[1];
        m->step(1, st, &a, ns, NULL);
        memcpy(st, ns, sizeof st);
        if ((prev > 0) != (st[1] > 0)) {
            double tc = 0.04 * (t + prev / (prev - st[1])); /* linear interpolation */
            if (first < 0) first = tc;
            last = tc;
            crossings++;
        }
        max_de = fmax(max_de, fabs(cart_energy(st) - e0));
        double p = (M + mp) * st[2] - mp * lc * cos(st[1]) * st[3];
        max_dp = fmax(max_dp, fabs(p - p0));
    }
    ck_assert_int_ge(crossings, 10);
    double measured = 2.0 * (last - first) / (crossings - 1);
    MB_ASSERT_CLOSE("small-angle period (s)", measured, period, 0.02 * period);
    /* Semi-implicit Euler is symplectic: the energy error oscillates with
     * relative size about w h / 2 = 1.4% (h = 0.005) and does not drift;
     * horizontal momentum is conserved up to the integrator. */
    double e_osc = e0 - cart_energy((float[4]){0, 0, 0, 0});
    ck_assert_msg(max_de < 0.04 * e_osc, "energy drift %g of %g", max_de, e_osc);
    ck_assert_msg(max_dp < 1e-3, "momentum drift %g", max_dp);
    /* A push moves the cart the way it pushes. */
    float s0[4] = {0, 0, 0, 0};
    a = 2.0f;
    m->step(1, s0, &a, ns, NULL);
    ck_assert(ns[2] > 0.0f && ns[0] > 0.0f);
}
END_TEST

START_TEST(test_find) {
    ck_assert_ptr_eq(mb_known_find("pendulum"), &mb_known_pendulum);
    ck_assert_ptr_eq(mb_known_find("cartpole_swingup"), &mb_known_cartpole_swingup);
    ck_assert_ptr_null(mb_known_find("halfcheetah"));
    ck_assert_ptr_null(mb_known_find(NULL));
}
END_TEST

int main(void) {
    Suite *s = suite_create("known");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pendulum_hand);
    tcase_add_test(tc, test_cartpole_physics);
    tcase_add_test(tc, test_find);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
