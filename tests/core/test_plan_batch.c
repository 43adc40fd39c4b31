/* test_plan_batch.c: mb_plan_batch (core/plan/batch.h). A request planned
 * in a batch answers bit for bit what mb_plan_ex answers for it alone with
 * the same random state: action, plan, predicted return and spread, model
 * rows, truncation and the warm-start state it leaves; for every method and
 * propagation, requests with different observations, seeds, goals, warm
 * starts and configs (horizon, population, particles) in one batch, one of
 * them stopped part-way, a pool of 1 and of 2, batches of 1 to 9. */
#include <string.h>

#include "check_util.h"
#include "plan/batch.h"

#define NQ 9
#define H_MAX 9

typedef struct {
    int polls, stop_at; /* stop when polls reaches stop_at (-1: never) */
} counter;
static int stop_after(void *ctx) {
    counter *c = ctx;
    return c->stop_at >= 0 && c->polls++ >= c->stop_at;
}

typedef struct {
    mb_planner_cfg cfg;
    mb_reward_spec rw;
    float obs[4];
    uint64_t seed;
    int warm;
    int stop_at;
    /* outcome */
    mb_status st;
    float action[2], plan[H_MAX * 2], mean[H_MAX * 2];
    mb_plan_info info;
} request;

static void make_requests(request *q, int n, mb_plan_method m, mb_prop pr) {
    for (int i = 0; i < n; i++) {
        mb_planner_cfg_default(&q[i].cfg, m);
        q[i].cfg.horizon = 5 + i % 3 * 2;           /* 5, 7, 9 */
        q[i].cfg.population = 40 + 13 * (i % 4);
        q[i].cfg.elites = 6;
        q[i].cfg.iterations = 2;
        q[i].cfg.particles = i % 2 ? 7 : 10;         /* 7: not a multiple of the members */
        q[i].cfg.propagation = pr;
        mb_reward_spec_default(&q[i].rw);
        q[i].rw.n_terms = 1;
        q[i].rw.terms[0] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.1f + 0.05f * (float)i};
        for (int o = 0; o < 4; o++) q[i].obs[o] = 0.1f * (float)(i + 1) * (o % 2 ? -1.0f : 1.0f);
        q[i].seed = 1000 + (uint64_t)i * 7;
        q[i].warm = i % 3 == 1;
        q[i].stop_at = i == 2 ? 12 : -1; /* stopped inside its second evaluation */
    }
}

/* Plans q (alone when batcher is NULL) and records the outcome. */
static void run(request *q, int n, const mb_dynamics *dyn, mb_plan_batcher *batcher, mb_pool *pool) {
    mb_plan_ws *ws[NQ];
    mb_plan_state st[NQ];
    mb_rng rng[NQ];
    counter cnt[NQ];
    mb_plan_ctl ctl[NQ];
    mb_plan_req req[NQ];
    char err[256];
    for (int i = 0; i < n; i++) {
        ws[i] = mb_plan_ws_new(&q[i].cfg, dyn);
        ck_assert_ptr_nonnull(ws[i]);
        ck_assert_int_eq(mb_plan_state_init(&st[i], &q[i].cfg, 2, err, sizeof err), MB_OK);
        if (q[i].warm) { /* a warm start to shift from */
            st[i].valid = 1;
            for (int j = 0; j < q[i].cfg.horizon * 2; j++) st[i].mean[j] = 0.3f * (float)((j % 3) - 1);
        }
        mb_rng_seed(&rng[i], q[i].seed);
        cnt[i] = (counter){0, q[i].stop_at};
        ctl[i] = (mb_plan_ctl){.stop = stop_after, .stop_ctx = &cnt[i]};
        memset(q[i].plan, 0, sizeof q[i].plan);
        memset(&q[i].info, 0, sizeof q[i].info);
        req[i] = (mb_plan_req){.cfg = &q[i].cfg, .rw = &q[i].rw, .obs = q[i].obs, .state = &st[i],
                               .rng = &rng[i], .ws = ws[i], .ctl = &ctl[i], .action = q[i].action,
                               .plan = q[i].plan, .info = &q[i].info};
    }
    if (!batcher) {
        for (int i = 0; i < n; i++)
            q[i].st = mb_plan_ex(&q[i].cfg, dyn, &q[i].rw, q[i].obs, &st[i], &rng[i], ws[i], pool, &ctl[i],
                                 q[i].action, q[i].plan, &q[i].info, err, sizeof err);
    } else {
        ck_assert_msg(mb_plan_batch(batcher, dyn, req, n, pool, err, sizeof err) == MB_OK, "%s", err);
        for (int i = 0; i < n; i++) q[i].st = req[i].status;
    }
    for (int i = 0; i < n; i++) {
        memset(q[i].mean, 0, sizeof q[i].mean);
        memcpy(q[i].mean, st[i].mean, (size_t)q[i].cfg.horizon * 2 * sizeof(float));
        mb_plan_state_free(&st[i]);
        mb_plan_ws_free(ws[i]);
    }
}

START_TEST(test_batched_equals_alone) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.obs_dim = 4;
    spec.act_dim = 2;
    spec.members = 3;
    spec.n_hidden = 2;
    spec.hidden[0] = spec.hidden[1] = 24;
    mb_ensemble e;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(&e, &spec, 3, err, sizeof err), MB_OK);
    const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 4, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_pool *pool2 = mb_pool_new(2);
    ck_assert_ptr_nonnull(pool2);
    mb_plan_batcher *b = mb_plan_batcher_new(NQ);
    ck_assert_ptr_nonnull(b);
    static request alone[NQ], batched[NQ];
    int sizes[] = {1, 2, 5, NQ};
    for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++)
        for (int pr = 0; pr < 4; pr++)
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                int n = sizes[si];
                mb_pool *pool = (m + pr + (int)si) % 2 ? pool2 : NULL;
                make_requests(alone, n, (mb_plan_method)m, (mb_prop)pr);
                make_requests(batched, n, (mb_plan_method)m, (mb_prop)pr);
                run(alone, n, &dyn, NULL, pool2);
                run(batched, n, &dyn, b, pool);
                for (int i = 0; i < n; i++) {
                    const char *name = mb_plan_method_name((mb_plan_method)m);
                    const char *pn = mb_prop_name((mb_prop)pr);
                    ck_assert_msg(alone[i].st == batched[i].st, "%s/%s n %d req %d: status %d vs %d", name,
                                  pn, n, i, alone[i].st, batched[i].st);
                    ck_assert_msg(!memcmp(alone[i].action, batched[i].action, sizeof alone[i].action) &&
                                      !memcmp(alone[i].plan, batched[i].plan, sizeof alone[i].plan) &&
                                      !memcmp(alone[i].mean, batched[i].mean, sizeof alone[i].mean),
                                  "%s/%s n %d req %d: the batched plan differs (%g vs %g)", name, pn, n, i,
                                  (double)alone[i].action[0], (double)batched[i].action[0]);
                    ck_assert_msg(alone[i].info.predicted_return == batched[i].info.predicted_return &&
                                      alone[i].info.return_std == batched[i].info.return_std &&
                                      alone[i].info.model_rows == batched[i].info.model_rows &&
                                      alone[i].info.truncated == batched[i].info.truncated,
                                  "%s/%s n %d req %d: info differs", name, pn, n, i);
                    if (i == 2 && m != MB_PLAN_RANDOM)
                        ck_assert_msg(alone[i].info.truncated && alone[i].st == MB_OK,
                                      "%s/%s: request 2 was to be truncated", name, pn);
                }
            }
    ck_assert_uint_gt(mb_plan_batcher_bytes(b), 0);
    mb_plan_batcher_free(b);
    mb_pool_free(pool2);
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_batch_arguments) {
    mb_plan_batcher *b = mb_plan_batcher_new(2);
    char err[160];
    mb_dynamics dyn = {0};
    mb_plan_req q[3];
    memset(q, 0, sizeof q);
    ck_assert_int_eq(mb_plan_batch(b, &dyn, q, 3, NULL, err, sizeof err), MB_EINVAL); /* > max lanes */
    ck_assert_int_eq(mb_plan_batch(b, &dyn, q, 0, NULL, err, sizeof err), MB_EINVAL);
    ck_assert_int_eq(mb_plan_batch(b, &dyn, q, 1, NULL, err, sizeof err), MB_EINVAL); /* no cfg */
    ck_assert_ptr_null(mb_plan_batcher_new(0));
    mb_plan_batcher_free(b);
    mb_plan_batcher_free(NULL);
}
END_TEST

int main(void) {
    Suite *s = suite_create("plan_batch");
    TCase *tc = tcase_create("plan_batch");
    tcase_set_timeout(tc, mb_test_sanitized() ? 600 : 120);
    tcase_add_test(tc, test_batched_equals_alone);
    tcase_add_test(tc, test_batch_arguments);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
