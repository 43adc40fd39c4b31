/* test_policy_pendulum.c: a policy learned through a real daemon acts well
 * on Pendulum-v1 (issue 13), through the C client.
 *   1. data: build/mbrl-sim runs 8 episodes of the MBRL loop on the daemon
 *      (1 random, 7 MPC with retraining; a cheaper planner than its
 *      defaults: H 20, 200 candidates, 10 particles, 3 iterations), with a
 *      "policy" in the model spec (distillation, 64 x 64);
 *   2. POST .../policy/train {"wait": true} (the spec's 5 DAgger rounds of
 *      256 states labelled by CEM H 20 through the learned model);
 *   3. 3 episodes of 200 steps on the true pendulum (core/plan/known.c,
 *      Gymnasium's resets) acting only with "method": "policy": every answer
 *      has source "policy" and the mean return beats -400 (random: about
 *      -1,200; measured -81, episodes -121, -122, -1).
 * About 3.5 minutes on 2 busy cores (load 16-20; most of it the MBRL loop's
 * planning and the teacher's labels), so it
 * runs in make test's plain pass only (skipped under the sanitizers). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "daemon_util.h"
#include "lib/mbrl_client.h"
#include "base/rng.h"
#include "plan/known.h"

static test_daemon D;

START_TEST(test_distilled_policy_swings_up) {
    if (mb_test_sanitized()) {
        printf("skipped under the sanitizers (minutes of planning)\n");
        return;
    }
    memset(&D, 0, sizeof D);
    ck_assert_int_eq(test_daemon_start(&D, 0, NULL), 0);
    const char *build = getenv("MBRLD_BUILD") ? getenv("MBRLD_BUILD") : "build";
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s/mbrl-sim --url %s --task pendulum --episodes 8 --seed 1 --no-plot --quiet --out '%s/out' "
             "--horizon 20 --population 200 --particles 10 --iterations 3 "
             "--spec '{\"policy\": {\"algorithm\": \"distill\", \"hidden\": [64, 64], \"steps\": 5, \"updates\": 400, "
             "\"teacher\": {\"horizon\": 20, \"population\": 200, \"elites\": 20, \"iterations\": 3, \"particles\": 5}}}' "
             "> '%s/sim.log' 2>&1",
             build, D.url, D.dir, D.dir);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "mbrl-sim failed (%d), see %s/sim.log", rc, D.dir);
    mbrl_client *c;
    mbrl_error e;
    mbrl_client_opts o = {.url = D.url};
    ck_assert_int_eq(mbrl_client_new(&c, &o, &e), MBRL_OK);
    mbrl_job job;
    memset(&job, 0, sizeof job);
    char eb[600];
    ck_assert_msg(mbrl_policy_train(c, "pendulum", NULL, &job, &e) == MBRL_OK, "%s", mbrl_error_str(&e, eb, sizeof eb));
    ck_assert_str_eq(job.state, "done");
    ck_assert_int_ge(job.version, 1);
    mbrl_job_free(&job);
    const mb_known_model *k = &mb_known_pendulum;
    mb_rng r;
    mb_rng_seed(&r, 5);
    mbrl_act_opts ao = {.method = "policy"};
    double mean = 0;
    for (int ep = 0; ep < 3; ep++) {
        double th = (2 * mb_rng_uniform(&r) - 1) * M_PI, thd = 2 * mb_rng_uniform(&r) - 1, R = 0;
        float obs[3] = {(float)cos(th), (float)sin(th), (float)thd}, nx[3], rew;
        for (int t = 0; t < 200; t++) {
            mbrl_act_result a;
            ck_assert_msg(mbrl_act(c, "pendulum", obs, 3, &ao, &a, &e) == MBRL_OK, "%s", mbrl_error_str(&e, eb, sizeof eb));
            ck_assert_str_eq(a.source, "policy");
            ck_assert_int_ge(a.policy_version, 1);
            k->step(1, obs, a.action, nx, &rew);
            R += rew;
            memcpy(obs, nx, sizeof obs);
        }
        printf("policy episode %d: return %.1f\n", ep + 1, R);
        mean += R / 3;
    }
    printf("distilled policy through the daemon: mean return %.1f over 3 episodes\n", mean);
    ck_assert_msg(mean > -400, "mean return %.1f (want > -400)", mean);
    mbrl_client_free(c);
    ck_assert_int_eq(test_daemon_stop(&D, SIGTERM), 0);
    test_daemon_cleanup(&D);
}
END_TEST

int main(void) {
    if (!test_daemon_exists()) {
        printf("SKIPPED: %s not built\n", test_daemon_bin());
        return 0;
    }
    Suite *s = suite_create("policy_pendulum");
    TCase *tc = tcase_create("policy_pendulum");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_distilled_policy_swings_up);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
