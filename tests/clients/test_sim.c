/* test_sim.c: the simulators of clients/c/sim against their definitions:
 * Gymnasium Pendulum-v1's equations, the PETS cartpole reward, and the
 * MuJoCo v5 tasks of clients/c/sim/models/TASKS.md (observation layout,
 * reward, termination), plus the reward terms each task declares to mbrld.
 * Runs without a daemon. Not for: HTTP (test_client.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "sim/sim.h"

static sim_env *open_task(const char *task, double noise, int steps) {
    sim_env *e = NULL;
    char err[512];
    sim_opts o = {getenv("MBRL_MUJOCO_DIR"), noise, steps};
    int rc = sim_env_open(&e, task, &o, err, sizeof err);
    ck_assert_msg(rc == 0 && e, "open %s: %s", task, err);
    return e;
}

/* HalfCheetah-v5 from its initial pose (no reset noise), zero actions for
 * 1000 steps: return -0.2464 on Debian's MuJoCo 2.2.2 (TASKS.md's figure).
 * Only the forward term moves (the body settles backwards a little). */
START_TEST(test_halfcheetah_zero_action_return) {
    sim_env *e = open_task("halfcheetah", 0.0, 0);
    ck_assert_int_eq(e->obs_dim, 17);
    ck_assert_int_eq(e->act_dim, 6);
    ck_assert_int_eq(e->max_steps, 1000);
    MB_ASSERT_CLOSE("halfcheetah dt", e->dt, 0.05, 1e-12);
    sim_rng r;
    sim_rng_seed(&r, 1);
    float obs[SIM_MAX_OBS], next[SIM_MAX_OBS], a[SIM_MAX_ACT] = {0};
    e->reset(e, &r, obs);
    /* qpos0 of half_cheetah.xml is all zeros: the observation starts at 0 */
    for (int i = 0; i < 17; i++) MB_ASSERT_CLOSE("halfcheetah obs0", obs[i], 0.0, 0.0);
    double ret = 0;
    for (int t = 0; t < 1000; t++) {
        float rw;
        int term;
        e->step(e, a, next, &rw, &term);
        ck_assert_msg(!term, "halfcheetah never terminates (step %d)", t);
        ret += rw;
    }
    MB_ASSERT_CLOSE("halfcheetah zero-action return", ret, -0.2464, 1e-3);
    sim_env_free(e);
}
END_TEST

/* The control cost is 0.1 * sum a^2 of the action as given: two runs from
 * the same state, one with a = +1 on every joint, one recomputed here. */
START_TEST(test_halfcheetah_ctrl_cost_and_declared_terms) {
    sim_env *e = open_task("halfcheetah", 0.0, 0);
    mbrl_model_spec s;
    mbrl_model_spec_init(&s);
    e->declare(e, "declared", &s);
    ck_assert_int_eq(s.learn_reward, 0);
    ck_assert_int_eq(s.n_terms, 2);
    ck_assert_int_eq(s.terms[0].type, MBRL_TERM_LINEAR);
    ck_assert_int_eq(s.terms[0].idx[0], 8); /* qvel[0] after qpos[1:9] */
    MB_ASSERT_CLOSE("cheetah forward weight", s.terms[0].weight, 1.0, 0);
    ck_assert_int_eq(s.terms[1].type, MBRL_TERM_ACTION_L2);
    MB_ASSERT_CLOSE("cheetah ctrl weight", s.terms[1].weight, 0.1, 1e-7);
    ck_assert_int_eq(s.n_bounds, 0);
    /* Over a random-action episode, the declared reward (forward velocity
     * at the end of the step - 0.1 |a|^2) tracks the true one (mean dx/dt
     * over the step): per-step error well below the reward's own scale. */
    sim_rng r;
    sim_rng_seed(&r, 3);
    float obs[SIM_MAX_OBS], next[SIM_MAX_OBS], a[SIM_MAX_ACT];
    e->reset(e, &r, obs);
    double err2 = 0, var = 0, mean_r = 0;
    double rs[200], ds[200];
    for (int t = 0; t < 200; t++) {
        double cost = 0;
        for (int i = 0; i < 6; i++) {
            a[i] = (float)(2 * sim_rng_uniform(&r) - 1);
            cost += (double)a[i] * a[i];
        }
        float rw;
        int term;
        e->step(e, a, next, &rw, &term);
        rs[t] = rw;
        ds[t] = next[8] - 0.1 * cost;
        mean_r += rw / 200;
    }
    for (int t = 0; t < 200; t++) {
        err2 += (rs[t] - ds[t]) * (rs[t] - ds[t]);
        var += (rs[t] - mean_r) * (rs[t] - mean_r);
    }
    ck_assert_msg(err2 < 0.5 * var, "declared reward of halfcheetah explains too little: err %g var %g", err2, var);
    sim_env_free(e);
}
END_TEST

START_TEST(test_hopper_obs_reward_termination) {
    sim_env *e = open_task("hopper", 0.0, 0);
    ck_assert_int_eq(e->obs_dim, 11);
    ck_assert_int_eq(e->act_dim, 3);
    MB_ASSERT_CLOSE("hopper dt", e->dt, 0.008, 1e-12);
    sim_rng r;
    sim_rng_seed(&r, 1);
    float obs[SIM_MAX_OBS], next[SIM_MAX_OBS], a[SIM_MAX_ACT] = {0};
    e->reset(e, &r, obs);
    /* hopper.xml's qpos0: rootz 1.25 (obs[0] = qpos[1]), the rest 0 */
    MB_ASSERT_CLOSE("hopper obs0 height", obs[0], 1.25, 1e-6);
    for (int i = 1; i < 11; i++) MB_ASSERT_CLOSE("hopper obs0 rest", obs[i], 0.0, 0.0);
    /* Zero actions: the hopper falls over; each healthy step pays
     * 1 + dx/dt, and the terminating step pays no alive bonus. */
    int t, term = 0;
    double ret = 0;
    float rw = 0;
    for (t = 0; t < 1000 && !term; t++) {
        e->step(e, a, next, &rw, &term);
        ret += rw;
        for (int i = 5; i < 11; i++) ck_assert_msg(fabsf(next[i]) <= 10.0f, "hopper velocities are clipped at 10");
    }
    ck_assert_msg(term && t < 1000, "a passive hopper falls (t = %d)", t);
    /* terminated because height <= 0.7 or |angle| >= 0.2 */
    ck_assert_msg(!(next[0] > 0.7f) || !(fabsf(next[1]) < 0.2f), "terminated while healthy: z %g angle %g", next[0], next[1]);
    ck_assert_msg(rw < 0.9f, "the terminating step earns no alive bonus (reward %g)", rw);
    ck_assert_msg(ret > 0.5 * (t - 1), "healthy steps earn the alive bonus: return %g over %d steps", ret, t);
    mbrl_model_spec s;
    mbrl_model_spec_init(&s);
    e->declare(e, "declared", &s);
    ck_assert_int_eq(s.n_terms, 3);
    ck_assert_int_eq(s.terms[0].idx[0], 5); /* qvel[0] after qpos[1:6] */
    ck_assert_int_eq(s.terms[1].type, MBRL_TERM_CONSTANT);
    MB_ASSERT_CLOSE("hopper ctrl weight", s.terms[2].weight, 0.001, 1e-9);
    ck_assert_int_eq(s.bounds[0].index, 0);
    MB_ASSERT_CLOSE("hopper healthy z min", s.bounds[0].min, 0.7, 1e-7);
    ck_assert_int_eq(s.bounds[1].index, 1);
    MB_ASSERT_CLOSE("hopper angle max", s.bounds[1].max, 0.2, 1e-7);
    sim_env_free(e);
}
END_TEST

START_TEST(test_swimmer_and_inverted_pendulum) {
    sim_env *e = open_task("swimmer", 0.0, 0);
    ck_assert_int_eq(e->obs_dim, 8);
    MB_ASSERT_CLOSE("swimmer dt", e->dt, 0.04, 1e-12);
    sim_rng r;
    sim_rng_seed(&r, 1);
    float obs[SIM_MAX_OBS], next[SIM_MAX_OBS], a[SIM_MAX_ACT] = {0};
    e->reset(e, &r, obs);
    double ret = 0;
    for (int t = 0; t < 100; t++) {
        float rw;
        int term;
        e->step(e, a, next, &rw, &term);
        ret += rw;
    }
    /* a swimmer at rest with no control stays at rest: no reward at all */
    MB_ASSERT_CLOSE("swimmer zero-action return", ret, 0.0, 1e-9);
    sim_env_free(e);

    e = open_task("inverted_pendulum", 0.0, 0);
    ck_assert_int_eq(e->obs_dim, 4);
    ck_assert_int_eq(e->act_dim, 1);
    MB_ASSERT_CLOSE("invpend act high", e->act_high[0], 3.0, 0);
    MB_ASSERT_CLOSE("invpend dt", e->dt, 0.04, 1e-12);
    e->reset(e, &r, obs);
    /* Push hard one way: the pole tips past 0.2 rad; every step before pays
     * 1, the terminating one 0. */
    a[0] = 3.0f;
    int t, term = 0;
    float rw = 0;
    ret = 0;
    for (t = 0; t < 1000 && !term; t++) {
        e->step(e, a, next, &rw, &term);
        ret += rw;
    }
    ck_assert_msg(term, "pushed pole falls");
    ck_assert_msg(fabsf(next[1]) > 0.2f, "terminated at |angle| %g", next[1]);
    MB_ASSERT_CLOSE("invpend terminating reward", rw, 0.0, 0);
    MB_ASSERT_CLOSE("invpend return = steps alive", ret, t - 1, 0);
    mbrl_model_spec s;
    mbrl_model_spec_init(&s);
    e->declare(e, "declared", &s);
    ck_assert_int_eq(s.n_terms, 3);
    ck_assert_int_eq(s.terms[0].type, MBRL_TERM_CONSTANT);
    /* the planner-only centring costs: on x at most the alive bonus on the
     * rail (|x| < 1), and on the cart speed */
    ck_assert_int_eq(s.terms[1].type, MBRL_TERM_QUADRATIC);
    ck_assert_int_eq(s.terms[1].idx[0], 0);
    ck_assert_msg(s.terms[1].weight * 1.0f * 1.0f <= s.terms[0].weight, "centring cost below the alive bonus");
    ck_assert_int_eq(s.terms[2].type, MBRL_TERM_QUADRATIC);
    ck_assert_int_eq(s.terms[2].idx[0], 2);
    ck_assert_int_eq(s.n_bounds, 1);
    ck_assert_int_eq(s.bounds[0].index, 1);
    MB_ASSERT_CLOSE("invpend bound", s.bounds[0].max, 0.2, 1e-7);
    sim_env_free(e);
}
END_TEST

/* Reset noise follows TASKS.md: U(+-0.01) for the inverted pendulum. */
START_TEST(test_reset_noise) {
    sim_env *e = open_task("inverted_pendulum", 1.0, 0);
    sim_rng r;
    sim_rng_seed(&r, 5);
    float obs[SIM_MAX_OBS];
    double maxabs = 0;
    for (int k = 0; k < 200; k++) {
        e->reset(e, &r, obs);
        for (int i = 0; i < 4; i++) maxabs = fmax(maxabs, fabs(obs[i]));
    }
    ck_assert_msg(maxabs <= 0.01 + 1e-7 && maxabs > 0.008, "invpend reset noise max %g", maxabs);
    sim_env_free(e);
}
END_TEST

/* Pendulum-v1 against its equations, from a state set through reset's
 * stream and then one hand-computed step. */
START_TEST(test_pendulum_step_and_reset) {
    sim_env *e = open_task("pendulum", 1.0, 0);
    ck_assert_int_eq(e->obs_dim, 3);
    ck_assert_int_eq(e->max_steps, 200);
    MB_ASSERT_CLOSE("pendulum act high", e->act_high[0], 2.0, 0);
    sim_rng r;
    sim_rng_seed(&r, 11);
    float obs[SIM_MAX_OBS], next[SIM_MAX_OBS];
    for (int k = 0; k < 100; k++) {
        e->reset(e, &r, obs);
        MB_ASSERT_CLOSE("pendulum reset cos^2+sin^2", obs[0] * obs[0] + obs[1] * obs[1], 1.0, 1e-6);
        ck_assert_msg(fabsf(obs[2]) <= 1.0f, "pendulum reset thdot %g", obs[2]);
    }
    double th = atan2(obs[1], obs[0]), thdot = obs[2];
    float u = 1.5f;
    float rw;
    int term;
    e->step(e, &u, next, &rw, &term);
    ck_assert_int_eq(term, 0);
    double nthdot = thdot + (3.0 * 10.0 / 2.0 * sin(th) + 3.0 * u) * 0.05;
    nthdot = fmin(fmax(nthdot, -8.0), 8.0);
    double nth = th + nthdot * 0.05;
    double an = fmod(th + M_PI, 2 * M_PI);
    if (an < 0) an += 2 * M_PI;
    an -= M_PI;
    MB_ASSERT_CLOSE("pendulum cos", next[0], cos(nth), 1e-5);
    MB_ASSERT_CLOSE("pendulum sin", next[1], sin(nth), 1e-5);
    MB_ASSERT_CLOSE("pendulum thdot", next[2], nthdot, 1e-5);
    MB_ASSERT_CLOSE("pendulum reward", rw, -(an * an + 0.1 * thdot * thdot + 0.001 * u * u), 1e-5);
    /* Random torques score about -1200 per episode (Gymnasium's figure for
     * a random policy); 40 episodes keep the mean within a wide band. */
    double sum = 0;
    for (int k = 0; k < 40; k++) {
        e->reset(e, &r, obs);
        for (int t = 0; t < 200; t++) {
            u = (float)(4 * sim_rng_uniform(&r) - 2);
            e->step(e, &u, next, &rw, &term);
            sum += rw;
        }
    }
    ck_assert_msg(sum / 40 > -1600 && sum / 40 < -800, "random pendulum return %g", sum / 40);
    mbrl_model_spec s;
    mbrl_model_spec_init(&s);
    e->declare(e, "declared", &s);
    ck_assert_int_eq(s.learn_reward, 1); /* not expressible as declared terms */
    sim_env_free(e);
}
END_TEST

/* Cartpole swing-up: hanging still at the origin earns exp(-4) per step;
 * the observation's pole tip is (x - l sin th, -l cos th), and the declared
 * stand-in reward is -|tip - (0, l)|^2 / l^2 - 0.01 F^2, the log of the
 * task's exponential. */
START_TEST(test_cartpole_reset_and_reward) {
    sim_env *e = open_task("cartpole_swingup", 0.0, 0);
    ck_assert_int_eq(e->obs_dim, 6);
    ck_assert_int_eq(e->max_steps, 200);
    sim_rng r;
    sim_rng_seed(&r, 1);
    float obs[SIM_MAX_OBS], next[SIM_MAX_OBS], u = 0;
    e->reset(e, &r, obs);
    for (int i = 0; i < 4; i++) MB_ASSERT_CLOSE("cartpole obs0", obs[i], 0.0, 0.0);
    float rw;
    int term;
    e->step(e, &u, next, &rw, &term);
    MB_ASSERT_CLOSE("cartpole hanging reward", rw, exp(-4.0), 1e-6);
    MB_ASSERT_CLOSE("cartpole tip x hanging", next[4], 0.0, 1e-6);
    MB_ASSERT_CLOSE("cartpole tip y hanging", next[5], -0.6, 1e-6);
    /* push for 20 steps: the tip entries follow the state entries */
    u = 3.0f;
    for (int t = 0; t < 20; t++) e->step(e, &u, next, &rw, &term);
    MB_ASSERT_CLOSE("cartpole tip x", next[4], next[0] - 0.6 * sin(next[1]), 1e-5);
    MB_ASSERT_CLOSE("cartpole tip y", next[5], -0.6 * cos(next[1]), 1e-5);
    double d2 = next[4] * next[4] + (next[5] - 0.6) * (next[5] - 0.6);
    MB_ASSERT_CLOSE("cartpole reward from the tip", rw, exp(-d2 / 0.36) - 0.01 * 9.0, 1e-5);
    mbrl_model_spec s;
    mbrl_model_spec_init(&s);
    e->declare(e, "declared", &s);
    ck_assert_int_eq(s.learn_reward, 0);
    ck_assert_int_eq(s.n_terms, 2);
    ck_assert_int_eq(s.terms[0].type, MBRL_TERM_QUADRATIC);
    ck_assert_int_eq(s.terms[0].idx[0], 4);
    ck_assert_int_eq(s.terms[0].idx[1], 5);
    MB_ASSERT_CLOSE("cartpole target y", s.terms[0].target[1], 0.6, 1e-7);
    MB_ASSERT_CLOSE("cartpole weight 1/l^2", s.terms[0].weight, 1.0 / 0.36, 1e-5);
    ck_assert_int_eq(s.terms[1].type, MBRL_TERM_ACTION_L2);
    MB_ASSERT_CLOSE("cartpole ctrl weight", s.terms[1].weight, 0.01, 1e-9);
    mbrl_model_spec_init(&s);
    e->declare(e, "learned", &s);
    ck_assert_int_eq(s.learn_reward, 1);
    ck_assert_int_eq(s.n_terms, 0);
    sim_env_free(e);
    e = open_task("cartpole_swingup", 1.0, 50);
    ck_assert_int_eq(e->max_steps, 50);
    double m = 0;
    for (int k = 0; k < 100; k++) {
        e->reset(e, &r, obs);
        m = fmax(m, fabs(obs[1]));
    }
    ck_assert_msg(m > 0.1 && m < 0.6, "cartpole reset noise is N(0, 0.1^2): max |th| %g over 100", m);
    sim_env_free(e);
}
END_TEST

START_TEST(test_unknown_task_and_bad_dir) {
    sim_env *e = NULL;
    char err[512];
    sim_opts o = {"/nonexistent-dir", 1.0, 0};
    ck_assert_int_eq(sim_env_open(&e, "walker", &o, err, sizeof err), -1);
    ck_assert_ptr_null(e);
    ck_assert_msg(strstr(err, "unknown task"), "message: %s", err);
    ck_assert_int_eq(sim_env_open(&e, "hopper", &o, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "/nonexistent-dir/hopper.xml"), "message names the file: %s", err);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("tasks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_halfcheetah_zero_action_return);
    tcase_add_test(tc, test_halfcheetah_ctrl_cost_and_declared_terms);
    tcase_add_test(tc, test_hopper_obs_reward_termination);
    tcase_add_test(tc, test_swimmer_and_inverted_pendulum);
    tcase_add_test(tc, test_reset_noise);
    tcase_add_test(tc, test_pendulum_step_and_reset);
    tcase_add_test(tc, test_cartpole_reset_and_reward);
    tcase_add_test(tc, test_unknown_task_and_bad_dir);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
