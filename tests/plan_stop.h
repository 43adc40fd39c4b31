/* plan_stop.h: one planning call cut by its deadline at every one of its
 * polls (mb_plan_ctl.stop, planner.h), for the method suites
 * (tests/core/test_mcts.c, test_ilqr.c, test_lqr_flm.c, test_grad.c).
 * Include it in one file of a test program (static functions, libcheck).
 *
 * ps_sweep plans once with mb_plan (the reference), then under a stop
 * callback that counts its polls and says stop at poll k + 1:
 *   - a callback that never says stop changes nothing (the same plan,
 *     return, std and model rows to the bit) and gives the call's polls;
 *   - k = 0 (stopped at once): MB_ECANCELED, the session state untouched
 *     (still valid, its warm start as it was);
 *   - 0 < k < polls (all of them, or max_cuts spread evenly, the first and
 *     the last included): the call polls exactly k + 1 times (never again
 *     once told), and answers MB_ECANCELED (nothing evaluated yet: only
 *     before its first answer) or MB_OK with truncated = 1, a plan inside
 *     the bounds, action = its first step, a finite predicted return,
 *     fewer model rows than the whole call, a warm start kept in the
 *     state; `check` (may be NULL) judges each such plan;
 *   - k = polls: the stop never fires: the reference, not truncated.
 * Each call gets a fresh workspace (nothing carried between them). */
#ifndef MB_TEST_PLAN_STOP_H
#define MB_TEST_PLAN_STOP_H

#include <math.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"

typedef struct {
    int polls;   /* polls so far */
    int stop_at; /* says stop once polls exceed this; -1: never */
} ps_counter;

static int ps_stop(void *ctx) {
    ps_counter *c = ctx;
    c->polls++;
    return c->stop_at >= 0 && c->polls > c->stop_at;
}

typedef struct {
    int polls;        /* polls of the whole call */
    int cuts;         /* calls cut */
    int truncated;    /* of them answered with truncated = 1 */
    int first_answer; /* the smallest k answered (0: none) */
} ps_result;

#define PS_MAX_SEQ 4096

/* One call of cfg under a stop at poll k + 1 (k < 0: never); state: cold
 * (valid 0) unless given. Returns the status; polls in *polls. */
static mb_status ps_call(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                         const float *obs, uint64_t seed, int k, mb_plan_state *state, float *action,
                         float *plan, mb_plan_info *info, int *polls) {
    mb_plan_ws *ws = mb_plan_ws_new(cfg, dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    ps_counter c = {0, k};
    mb_plan_ctl ctl = {.stop = ps_stop, .stop_ctx = &c};
    char err[200];
    mb_status s = mb_plan_ex(cfg, dyn, rw, obs, state, &rng, ws, NULL, &ctl, action, plan, info, err,
                             sizeof err);
    ck_assert_msg(s == MB_OK || s == MB_ECANCELED, "%s: stop at %d: %s",
                  mb_plan_method_name(cfg->method), k, err);
    mb_plan_ws_free(ws);
    *polls = c.polls;
    return s;
}

static void ps_sweep(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                     const float *obs, uint64_t seed, int max_cuts,
                     void (*check)(void *ctx, const float *plan, const mb_plan_info *info), void *ctx,
                     ps_result *out) {
    const char *name = mb_plan_method_name(cfg->method);
    const int H = cfg->horizon, A = dyn->act_dim;
    const size_t seq = (size_t)H * (size_t)A;
    ck_assert_int_le((int)seq, PS_MAX_SEQ);
    static float full[PS_MAX_SEQ], plan[PS_MAX_SEQ];
    float a_full[MB_MAX_ACT_DIM], a[MB_MAX_ACT_DIM];
    mb_plan_info fi, info;
    char err[200];
    /* the reference: mb_plan, no control */
    mb_plan_ws *ws = mb_plan_ws_new(cfg, dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    ck_assert_msg(mb_plan(cfg, dyn, rw, obs, NULL, &rng, ws, NULL, a_full, full, &fi, err, sizeof err) == MB_OK,
                  "%s: %s", name, err);
    mb_plan_ws_free(ws);
    ck_assert_int_eq(fi.truncated, 0);
    /* never told to stop: the same call, to the bit; its polls */
    int polls;
    ck_assert_int_eq(ps_call(cfg, dyn, rw, obs, seed, -1, NULL, a, plan, &info, &polls), MB_OK);
    ck_assert_msg(!memcmp(plan, full, seq * sizeof(float)), "%s: a stop that never fires changed the plan", name);
    ck_assert_msg(info.predicted_return == fi.predicted_return && info.return_std == fi.return_std &&
                      info.model_rows == fi.model_rows && !info.truncated,
                  "%s: a stop that never fires changed the answer", name);
    ck_assert_msg(polls >= 2, "%s: polled %d times", name, polls);
    *out = (ps_result){.polls = polls};
    /* stopped at once: no answer, the session as it was */
    mb_plan_state st;
    ck_assert_int_eq(mb_plan_state_init(&st, cfg, A, err, sizeof err), MB_OK);
    st.valid = 1;
    for (size_t i = 0; i < seq; i++) st.mean[i] = dyn->act_low[i % (size_t)A];
    int p0;
    ck_assert_msg(ps_call(cfg, dyn, rw, obs, seed, 0, &st, a, plan, &info, &p0) == MB_ECANCELED,
                  "%s: stopped at the first poll, yet answered", name);
    ck_assert_int_eq(p0, 1);
    ck_assert_int_eq(st.valid, 1);
    for (size_t i = 0; i < seq; i++) ck_assert(st.mean[i] == dyn->act_low[i % (size_t)A]);
    mb_plan_state_free(&st);
    /* cut at poll k + 1 */
    int n = polls - 1 < max_cuts ? polls - 1 : max_cuts;
    for (int i = 0; i < n; i++) {
        int k = n == 1 ? 1 : 1 + (int)((long)i * (polls - 2) / (n - 1));
        ck_assert_int_eq(mb_plan_state_init(&st, cfg, A, err, sizeof err), MB_OK);
        int pk;
        mb_status s = ps_call(cfg, dyn, rw, obs, seed, k, &st, a, plan, &info, &pk);
        out->cuts++;
        ck_assert_msg(pk == k + 1, "%s: cut at %d, polled %d times", name, k, pk);
        if (s == MB_ECANCELED) {
            ck_assert_msg(out->first_answer == 0, "%s: no answer at %d after one at %d", name, k,
                          out->first_answer);
            ck_assert_int_eq(st.valid, 0);
        } else {
            if (!out->first_answer) out->first_answer = k;
            ck_assert_msg(info.truncated == 1, "%s: cut at %d of %d polls, not truncated", name, k, polls);
            out->truncated++;
            for (size_t j = 0; j < seq; j++) {
                int ad = (int)(j % (size_t)A);
                ck_assert_msg(isfinite(plan[j]) && plan[j] >= dyn->act_low[ad] && plan[j] <= dyn->act_high[ad],
                              "%s: cut at %d: plan[%zu] = %g", name, k, j, (double)plan[j]);
            }
            ck_assert(!memcmp(a, plan, (size_t)A * sizeof(float)));
            ck_assert_msg(isfinite(info.predicted_return) && isfinite(info.return_std), "%s: cut at %d", name, k);
            ck_assert_msg(info.model_rows < fi.model_rows, "%s: cut at %d: %g model rows, the whole call %g",
                          name, k, info.model_rows, fi.model_rows);
            ck_assert_int_eq(st.valid, 1);
            if (check) check(ctx, plan, &info);
        }
        mb_plan_state_free(&st);
    }
    /* told to stop after its last poll: never fires */
    int pl;
    ck_assert_int_eq(ps_call(cfg, dyn, rw, obs, seed, polls, NULL, a, plan, &info, &pl), MB_OK);
    ck_assert_int_eq(pl, polls);
    ck_assert(!memcmp(plan, full, seq * sizeof(float)) && !info.truncated);
}

#endif
