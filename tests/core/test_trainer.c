/* test_trainer.c: the trainer's mechanics (core/learn/trainer.c): configuration
 * checks, the normaliser, argument errors, early stopping by the stated rule,
 * best weights kept, elites, cancel, warm restarts, the parallel gradient
 * combination and determinism; the adaptive minibatch and the floor under
 * early stopping (mb_train_plan) against hand-computed cases.
 * Not for: whether the model learns the right thing (test_learning.c). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "learn/buffer.h"
#include "check_util.h"
#include "base/pool.h"
#include "base/rng.h"
#include "learn/trainer.h"

enum { OD = 2, AD = 1 };

/* Allocation counting for test_epoch_loop_allocates_nothing: this binary
 * interposes malloc/calloc/realloc (forwarding to glibc's __libc_* entry
 * points; the other tests only pay an atomic add). Sanitizer builds keep
 * their own allocator, so there that test is left out. */
#include "alloc_count.h"

/* s' = s + 0.1 * (-s1 + a, s0 - 0.5 s1^2) + noise 0.02; reward = -|s|^2.
 * Inputs drawn uniformly in [-1, 1]^3; n rows appended to b. */
static void fill_buffer(mb_buffer *b, size_t n, uint64_t seed) {
    mb_rng r;
    mb_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        float s[OD], a[AD], ns[OD], rew;
        for (int j = 0; j < OD; j++) s[j] = (float)(2.0 * mb_rng_uniform(&r) - 1.0);
        a[0] = (float)(2.0 * mb_rng_uniform(&r) - 1.0);
        ns[0] = s[0] + 0.1f * (-s[1] + a[0]) + 0.02f * (float)mb_rng_normal(&r);
        ns[1] = s[1] + 0.1f * (s[0] - 0.5f * s[1] * s[1]) + 0.02f * (float)mb_rng_normal(&r);
        rew = -(s[0] * s[0] + s[1] * s[1]);
        mb_buffer_append(b, 1, s, a, &rew, ns, NULL, NULL);
    }
}

static void make_ensemble(mb_ensemble *e, int members, int learn_reward, uint64_t seed) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.members = members;
    spec.obs_dim = OD;
    spec.act_dim = AD;
    spec.learn_reward = learn_reward;
    spec.n_hidden = 2;
    spec.hidden[0] = spec.hidden[1] = 32;
    char err[256];
    ck_assert_msg(mb_ensemble_init(e, &spec, seed, err, sizeof err) == MB_OK, "%s", err);
}

static void small_cfg(mb_train_cfg *cfg) {
    mb_train_cfg_default(cfg);
    cfg->batch_size = 32;
    cfg->max_epochs = 20;
    cfg->seed = 3;
    cfg->min_steps = 0; /* the mechanics below: no floor under early stopping */
    cfg->min_epochs = 0;
}

/* Per-epoch holdout losses as the callback saw them. */
typedef struct {
    int epochs, cancel_at;
    float hold[200][MB_MAX_MEMBERS];
    float train[200][MB_MAX_MEMBERS];
} trace;

static int record(void *ctx, int epoch, int members, const float *train_loss,
                  const float *holdout_loss) {
    trace *t = ctx;
    ck_assert_int_eq(epoch, t->epochs + 1);
    if (epoch <= 200) {
        memcpy(t->hold[epoch - 1], holdout_loss, (size_t)members * sizeof(float));
        memcpy(t->train[epoch - 1], train_loss, (size_t)members * sizeof(float));
    }
    t->epochs = epoch;
    return t->cancel_at > 0 && epoch >= t->cancel_at;
}

/* Holdout MSE of every member of e on buf's holdout rows, normalised units,
 * computed here from the ensemble's normaliser (independent of the trainer's
 * gather code). */
static void holdout_mse(const mb_ensemble *e, const mb_buffer *b, float *out) {
    size_t *tr = malloc(b->size * sizeof(size_t)), *ho = malloc(b->size * sizeof(size_t));
    size_t nt, nh;
    ck_assert(tr && ho);
    mb_buffer_split(b, tr, &nt, ho, &nh);
    ck_assert_uint_gt(nh, 0);
    int in_dim = OD + AD, out_dim = mb_ensemble_out_dim(&e->spec);
    float *xn = malloc(nh * (size_t)in_dim * sizeof(float));
    float *yn = malloc(nh * (size_t)out_dim * sizeof(float));
    ck_assert(xn && yn);
    for (size_t i = 0; i < nh; i++) {
        size_t s = ho[i];
        for (int j = 0; j < OD; j++) {
            xn[i * in_dim + j] = (b->obs[s * OD + j] - e->in_mean[j]) / e->in_std[j];
            yn[i * out_dim + j] =
                (b->next_obs[s * OD + j] - b->obs[s * OD + j] - e->out_mean[j]) / e->out_std[j];
        }
        xn[i * in_dim + OD] = (b->act[s] - e->in_mean[OD]) / e->in_std[OD];
        if (out_dim > OD) yn[i * out_dim + OD] = (b->rew[s] - e->out_mean[OD]) / e->out_std[OD];
    }
    mb_ens_ws *ws = mb_ens_ws_new(&e->spec, nh);
    ck_assert_ptr_nonnull(ws);
    for (int m = 0; m < e->spec.members; m++) out[m] = mb_ensemble_mse(e, ws, m, xn, yn, nh);
    mb_ens_ws_free(ws);
    free(xn); free(yn); free(tr); free(ho);
}

START_TEST(test_cfg_check) {
    mb_train_cfg c;
    char err[128];
    mb_train_cfg_default(&c);
    ck_assert_int_eq(c.max_epochs, 100);
    ck_assert_int_eq(c.patience, 5);
    ck_assert_int_eq(c.batch_size, 0); /* adapts */
    ck_assert_int_eq(c.min_steps, 1000);
    ck_assert_int_eq(c.min_epochs, 5);
    ck_assert_int_eq(mb_train_cfg_check(&c, 5, err, sizeof err), MB_OK);
    mb_train_cfg bad = c;
    bad.max_epochs = 0;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.batch_size = -1;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.min_steps = -1;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.min_epochs = -1;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.lr = NAN;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.lr = 0;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.n_elites = 6;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    ck_assert_msg(strstr(err, "n_elites") != NULL, "message names the field: %s", err);
    bad = c; bad.patience = -1;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.min_improvement = -0.5f;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_ERANGE);
    bad = c; bad.bootstrap = 2;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_EINVAL);
    bad = c; bad.keep_last = -1;
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_EINVAL);
    bad = c; bad.n_elites = 0; /* all members */
    ck_assert_int_eq(mb_train_cfg_check(&bad, 5, err, sizeof err), MB_OK);
}
END_TEST

/* The rule of trainer.h, by hand (min_steps 1000, min_epochs 5):
 *   180 rows, 50 epochs: min(180 / 32 = 5.6, 180 * 50 / 1000 = 9) = 5.6 ->
 *     8 (the floor); ceil(180 / 8) = 23 steps per epoch; ceil(1000 / 23) =
 *     44 epochs before early stopping may stop;
 *   1800 rows, 100 epochs: min(56.25, 180) -> 56; ceil(1800 / 56) = 33;
 *     ceil(1000 / 33) = 31;
 *   100,000 rows: min(3125, 10000) -> 256 (the cap); 391 steps; ceil(1000 /
 *     391) = 3 < 5 -> 5;
 *   2000 rows, 2 epochs: min(62.5, 4) -> 8; 250 steps; min 4 -> capped at 2;
 *   5 rows: 8 -> 5 (all rows), 1 step, 1000 -> capped at max_epochs;
 *   explicit batch 32 on 180 rows, 50 epochs: 6 steps; 167 -> 50;
 *   min_steps 0: only the 32-per-epoch rule and min_epochs. */
START_TEST(test_adaptive_plan_hand_cases) {
    mb_train_cfg c;
    mb_train_cfg_default(&c);
    const struct {
        size_t n;
        int max_epochs, batch, min_steps;
        int want_b, want_spe, want_min;
    } cases[] = {
        {180, 50, 0, 1000, 8, 23, 44},     {1800, 100, 0, 1000, 56, 33, 31},
        {100000, 100, 0, 1000, 256, 391, 5}, {2000, 2, 0, 1000, 8, 250, 2},
        {5, 100, 0, 1000, 5, 1, 100},     {180, 50, 32, 1000, 32, 6, 50},
        {1800, 100, 0, 0, 56, 33, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        c.max_epochs = cases[i].max_epochs;
        c.batch_size = cases[i].batch;
        c.min_steps = cases[i].min_steps;
        mb_train_sizes p;
        mb_train_plan(&c, cases[i].n, &p);
        ck_assert_msg(p.batch_size == cases[i].want_b && p.steps_per_epoch == cases[i].want_spe &&
                          p.min_epochs == cases[i].want_min,
                      "case %zu (%zu rows): batch %d steps %d min_epochs %d, want %d %d %d", i,
                      cases[i].n, p.batch_size, p.steps_per_epoch, p.min_epochs, cases[i].want_b,
                      cases[i].want_spe, cases[i].want_min);
    }
}
END_TEST

/* Early stopping cannot end a run before the floor: the noisy setup of
 * test_early_stopping_best_weights_elites, which stops within a few dozen
 * epochs without it, runs at least res.min_epochs with the default floor,
 * with the adaptive minibatch reported and every step counted. */
START_TEST(test_floor_under_early_stopping) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.25f, 11, NULL, 0), MB_OK);
    fill_buffer(&b, 240, 5);
    mb_ensemble e;
    make_ensemble(&e, 4, 1, 2);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    mb_train_cfg_default(&cfg); /* batch 0, min_steps 1000, min_epochs 5 */
    cfg.max_epochs = 150;
    cfg.patience = 1;
    cfg.min_improvement = 0.02f;
    cfg.lr = 1e-2f;
    cfg.seed = 3;
    mb_train_result res;
    char err[256];
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK,
                  "%s", err);
    mb_train_sizes p;
    mb_train_plan(&cfg, res.n_train, &p);
    ck_assert_int_eq(res.batch_size, p.batch_size);
    ck_assert_int_eq(res.min_epochs, p.min_epochs);
    ck_assert_int_eq(res.batch_size, 8); /* ~180 rows: the floor of 8 */
    ck_assert_int_ge(res.min_epochs, 40);
    ck_assert_int_ge(res.epochs, res.min_epochs);
    ck_assert_int_eq(res.steps, (long)res.epochs * p.steps_per_epoch);
    ck_assert_int_ge(res.steps, 1000);
    /* the same run without the floor stops sooner */
    mb_ensemble e2;
    make_ensemble(&e2, 4, 1, 2);
    mb_adam opt2;
    memset(&opt2, 0, sizeof opt2);
    cfg.min_steps = 0;
    cfg.min_epochs = 0;
    mb_train_result res2;
    ck_assert_msg(mb_train(&e2, &opt2, &b, &cfg, NULL, NULL, NULL, &res2, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert_int_eq(res2.stopped_early, 1);
    ck_assert_int_lt(res2.epochs, res.min_epochs);
    mb_ensemble_free(&e);
    mb_ensemble_free(&e2);
    mb_adam_free(&opt);
    mb_adam_free(&opt2);
    mb_buffer_free(&b);
}
END_TEST

START_TEST(test_fit_normalizer_matches_closed_form) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 64, 0.0f, 1, NULL, 0), MB_OK);
    /* Rows i = 0..9: obs (i, 1e4 + 0.001 i), act (7) constant, next_obs =
     * obs + (2i, -i), reward i^2. Mean/std of 0..9 in closed form:
     * mean 4.5, var (n^2 - 1) / 12 = 8.25. The second obs column has a huge
     * mean against a tiny spread (float sums would lose it). */
    for (int i = 0; i < 10; i++) {
        float s[OD] = {(float)i, 1e4f + 0.001f * (float)i}, a = 7.0f;
        float ns[OD] = {s[0] + 2.0f * (float)i, s[1] - (float)i}, r = (float)(i * i);
        mb_buffer_append(&b, 1, s, &a, &r, ns, NULL, NULL);
    }
    mb_ensemble e;
    make_ensemble(&e, 1, 1, 1);
    size_t slots[10];
    for (size_t i = 0; i < 10; i++) slots[i] = mb_buffer_slot(&b, i);
    mb_trainer_fit_normalizer(&e, &b, slots, 10);
    double sd = sqrt(8.25);
    MB_ASSERT_CLOSE("in_mean[0]", e.in_mean[0], 4.5, 1e-5);
    MB_ASSERT_CLOSE("in_std[0]", e.in_std[0], sd, 1e-5);
    MB_ASSERT_CLOSE("in_mean[1]", e.in_mean[1], 1e4 + 0.0045, 2e-3);
    /* float spacing at 1e4 is ~1e-3: the stored values are i * 0.001 to
     * within that, so the std is 0.001 * sd to within ~1e-4 */
    MB_ASSERT_CLOSE("in_std[1]", e.in_std[1], 0.001 * sd, 2e-4);
    MB_ASSERT_CLOSE("in_mean[2] (constant action)", e.in_mean[2], 7.0, 1e-6);
    MB_ASSERT_CLOSE("in_std[2] (constant -> 1)", e.in_std[2], 1.0, 0.0);
    MB_ASSERT_CLOSE("out_mean[0]", e.out_mean[0], 9.0, 1e-5);
    MB_ASSERT_CLOSE("out_std[0]", e.out_std[0], 2.0 * sd, 1e-5);
    /* obs1 deltas are -i up to float rounding at 1e4 (spacing ~1e-3) */
    MB_ASSERT_CLOSE("out_mean[1]", e.out_mean[1], -4.5, 2e-3);
    MB_ASSERT_CLOSE("out_std[1]", e.out_std[1], sd, 2e-3);
    /* rewards 0, 1, 4, ..., 81: mean 28.5, var = mean(i^4) - 28.5^2 */
    double m4 = 0;
    for (int i = 0; i < 10; i++) m4 += pow(i, 4) / 10.0;
    MB_ASSERT_CLOSE("out_mean[2] (reward)", e.out_mean[2], 28.5, 1e-4);
    MB_ASSERT_CLOSE("out_std[2] (reward)", e.out_std[2], sqrt(m4 - 28.5 * 28.5), 1e-4);
    /* A subset of slots: rows 0 and 2 only. */
    size_t sub[2] = {slots[0], slots[2]};
    mb_trainer_fit_normalizer(&e, &b, sub, 2);
    MB_ASSERT_CLOSE("in_mean[0] subset", e.in_mean[0], 1.0, 1e-6);
    MB_ASSERT_CLOSE("in_std[0] subset", e.in_std[0], 1.0, 1e-6);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST

START_TEST(test_argument_errors) {
    mb_buffer b, small, other;
    char err[256];
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 100, 0.2f, 1, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_buffer_init(&small, OD, AD, 100, 0.0f, 1, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_buffer_init(&other, OD + 1, AD, 100, 0.0f, 1, NULL, 0), MB_OK);
    fill_buffer(&b, 100, 1);
    fill_buffer(&small, 1, 1);
    mb_ensemble e;
    make_ensemble(&e, 2, 0, 1);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    mb_train_result res;
    ck_assert_int_eq(mb_train(&e, &opt, &small, &cfg, NULL, NULL, NULL, &res, err, sizeof err),
                     MB_ESTATE);
    ck_assert_msg(strstr(err, "2 training rows") != NULL, "%s", err);
    ck_assert_int_eq(mb_train(&e, &opt, &other, &cfg, NULL, NULL, NULL, &res, err, sizeof err),
                     MB_EINVAL);
    cfg.n_elites = 3;
    ck_assert_int_eq(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err),
                     MB_ERANGE);
    small_cfg(&cfg);
    mb_adam wrong;
    ck_assert_int_eq(mb_adam_init(&wrong, 10, 1e-3f, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_train(&e, &wrong, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err),
                     MB_EINVAL);
    mb_adam_free(&wrong);
    ck_assert_ptr_null(opt.m); /* nothing allocated on the failed calls */
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
    mb_buffer_free(&small);
    mb_buffer_free(&other);
}
END_TEST

/* Early stopping stops where the stated rule says, from the losses the
 * callback saw; the weights at the end are each member's best; elites are the
 * best-ranked members. */
START_TEST(test_early_stopping_best_weights_elites) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.25f, 11, NULL, 0), MB_OK);
    /* Little data and a large step size: the holdout loss turns noisy and
     * rises again, so the last epoch is not every member's best. */
    fill_buffer(&b, 240, 5);
    mb_ensemble e;
    make_ensemble(&e, 4, 1, 2);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    cfg.max_epochs = 150;
    cfg.patience = 4;
    cfg.min_improvement = 0.02f;
    cfg.lr = 1e-2f;
    cfg.n_elites = 2;
    /* Epoch 0's score (the untrained weights under the refit normaliser),
     * which the callback does not see: the first reference of the rule. */
    float ref[MB_MAX_MEMBERS];
    {
        size_t tr[240], ho[240], nt, nh;
        mb_buffer_split(&b, tr, &nt, ho, &nh);
        mb_trainer_fit_normalizer(&e, &b, tr, nt);
        holdout_mse(&e, &b, ref);
    }
    float ref0[MB_MAX_MEMBERS];
    memcpy(ref0, ref, sizeof ref);
    trace *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    mb_train_result res;
    char err[256];
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, record, t, &res, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert_int_eq(res.epochs, t->epochs);
    ck_assert_int_eq(res.stopped_early, 1);
    ck_assert_int_lt(res.epochs, cfg.max_epochs);
    ck_assert_uint_eq(res.n_train + res.n_holdout, 240);
    ck_assert_uint_gt(res.n_holdout, 30);

    /* Replay the rule: an epoch counts when some member's loss is more than
     * min_improvement (relative) below its reference; the references then drop
     * to the members' minima. */
    int since = 0, stop_at = -1;
    for (int ep = 1; ep <= t->epochs && stop_at < 0; ep++) {
        int imp = 0;
        for (int m = 0; m < 4; m++)
            if (ref[m] - t->hold[ep - 1][m] > cfg.min_improvement * fabsf(ref[m])) imp = 1;
        if (imp) {
            for (int m = 0; m < 4; m++) ref[m] = fminf(ref[m], t->hold[ep - 1][m]);
            since = 0;
        } else if (++since >= cfg.patience) {
            stop_at = ep;
        }
    }
    ck_assert_int_eq(stop_at, res.epochs);

    /* Best weights kept: the holdout MSE of the final weights, measured
     * afresh, is each member's minimum over the epochs (float rounding of
     * the two evaluation orders: 1e-5 relative). */
    float now[MB_MAX_MEMBERS], best[MB_MAX_MEMBERS];
    holdout_mse(&e, &b, now);
    int last_not_best = 0;
    for (int m = 0; m < 4; m++) {
        best[m] = ref0[m]; /* epoch 0 counts: training never ends worse than it began */
        for (int ep = 0; ep < t->epochs; ep++) best[m] = fminf(best[m], t->hold[ep][m]);
        last_not_best += t->hold[t->epochs - 1][m] > best[m];
        MB_ASSERT_CLOSE("final holdout = best seen", now[m], best[m], 1e-5 * best[m]);
        MB_ASSERT_CLOSE("result holdout = best seen", res.holdout_loss[m], best[m], 1e-6 * best[m]);
        MB_ASSERT_CLOSE("ensemble holdout = best seen", e.holdout_loss[m], best[m], 1e-6 * best[m]);
        ck_assert(res.train_loss[m] == t->train[t->epochs - 1][m]);
    }
    ck_assert_msg(last_not_best > 0, "the setup must make the last epoch worse than the best");

    /* Elites: the two lowest holdout losses, best first; then the rest. */
    ck_assert_int_eq(e.n_elites, 2);
    for (int i = 1; i < 4; i++)
        ck_assert(e.holdout_loss[e.elites[i - 1]] <= e.holdout_loss[e.elites[i]]);
    int seen[4] = {0};
    for (int i = 0; i < 4; i++) seen[e.elites[i]]++;
    for (int i = 0; i < 4; i++) ck_assert_int_eq(seen[i], 1);
    /* best_epoch: where the mean holdout loss was lowest */
    int be = 1;
    double bm = 1e30;
    for (int ep = 1; ep <= t->epochs; ep++) {
        double s = 0;
        for (int m = 0; m < 4; m++) s += t->hold[ep - 1][m];
        if (s < bm) { bm = s; be = ep; }
    }
    ck_assert_int_eq(res.best_epoch, be);
    free(t);
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST

START_TEST(test_cancel_keeps_best) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.2f, 3, NULL, 0), MB_OK);
    fill_buffer(&b, 300, 6);
    mb_ensemble e;
    make_ensemble(&e, 3, 0, 4);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    cfg.patience = 0;
    trace *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    t->cancel_at = 3;
    mb_train_result res;
    char err[256] = "";
    ck_assert_int_eq(mb_train(&e, &opt, &b, &cfg, NULL, record, t, &res, err, sizeof err),
                     MB_ECANCELED);
    ck_assert_msg(strstr(err, "cancel") != NULL, "%s", err);
    ck_assert_int_eq(res.canceled, 1);
    ck_assert_int_eq(res.epochs, 3);
    ck_assert_int_eq(t->epochs, 3);
    float now[MB_MAX_MEMBERS];
    holdout_mse(&e, &b, now);
    for (int m = 0; m < 3; m++) {
        float best = fminf(t->hold[0][m], fminf(t->hold[1][m], t->hold[2][m]));
        MB_ASSERT_CLOSE("holdout after cancel = best seen", now[m], best, 1e-5 * best);
    }
    ck_assert_int_eq(e.n_elites, 3); /* n_elites 0 = all members */

    /* keep_last: the weights (and reported losses) are the last epoch's. */
    mb_ensemble e2;
    make_ensemble(&e2, 3, 0, 4);
    mb_adam opt2;
    memset(&opt2, 0, sizeof opt2);
    memset(t, 0, sizeof *t);
    cfg.keep_last = 1;
    cfg.max_epochs = 6;
    ck_assert_int_eq(mb_train(&e2, &opt2, &b, &cfg, NULL, record, t, &res, err, sizeof err), MB_OK);
    ck_assert_int_eq(t->epochs, 6);
    holdout_mse(&e2, &b, now);
    for (int m = 0; m < 3; m++) {
        MB_ASSERT_CLOSE("keep_last: holdout = last epoch's", now[m], t->hold[5][m],
                        1e-5 * t->hold[5][m]);
        ck_assert(res.holdout_loss[m] == t->hold[5][m]);
    }
    mb_adam_free(&opt2);
    mb_ensemble_free(&e2);
    free(t);
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST

/* Trains a fresh ensemble (init seed 7) on b; returns the parameters. */
static float *train_fresh(const mb_buffer *b, uint64_t train_seed, mb_pool *pool, int max_epochs,
                          size_t *n_params, mb_adam *opt_out) {
    mb_ensemble e;
    make_ensemble(&e, 5, 1, 7);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    cfg.max_epochs = max_epochs;
    cfg.patience = 0;
    cfg.seed = train_seed;
    char err[256];
    mb_train_result res;
    ck_assert_msg(mb_train(&e, &opt, b, &cfg, pool, NULL, NULL, &res, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert_int_eq(res.epochs, max_epochs);
    float *p = malloc(e.n_params * sizeof(float));
    ck_assert_ptr_nonnull(p);
    memcpy(p, e.params, e.n_params * sizeof(float));
    *n_params = e.n_params;
    if (opt_out) *opt_out = opt;
    else mb_adam_free(&opt);
    mb_ensemble_free(&e);
    return p;
}

START_TEST(test_determinism) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.2f, 3, NULL, 0), MB_OK);
    fill_buffer(&b, 400, 8);
    int epochs = mb_test_sanitized() ? 2 : 5;
    size_t n;
    float *a = train_fresh(&b, 1, NULL, epochs, &n, NULL);
    float *a2 = train_fresh(&b, 1, NULL, epochs, &n, NULL);
    float *c = train_fresh(&b, 2, NULL, epochs, &n, NULL);
    ck_assert_msg(memcmp(a, a2, n * sizeof(float)) == 0, "same seed, same weights (serial)");
    ck_assert_msg(memcmp(a, c, n * sizeof(float)) != 0, "another seed, other weights");
    mb_pool *pool = mb_pool_new(2);
    ck_assert_ptr_nonnull(pool);
    float *p = train_fresh(&b, 1, pool, epochs, &n, NULL);
    float *p2 = train_fresh(&b, 1, pool, epochs, &n, NULL);
    ck_assert_msg(memcmp(p, p2, n * sizeof(float)) == 0, "same seed, same weights (2 threads)");
    mb_pool_free(pool);
    free(a); free(a2); free(c); free(p); free(p2);
    mb_buffer_free(&b);
}
END_TEST

/* One epoch with the whole training set in one minibatch is one Adam step,
 * whose first moment is 0.1 * gradient: the gradient combined from partial
 * tiles (2 and 3 workers split members across pieces) must match the
 * serial one up to float summation order. */
START_TEST(test_parallel_gradient_matches_serial) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.0f, 3, NULL, 0), MB_OK);
    fill_buffer(&b, 30, 9); /* < batch_size 32: one step per epoch */
    size_t n;
    mb_adam o1, o2, o3;
    float *p1 = train_fresh(&b, 1, NULL, 1, &n, &o1);
    mb_pool *pool2 = mb_pool_new(2), *pool3 = mb_pool_new(3);
    ck_assert(pool2 && pool3);
    float *p2 = train_fresh(&b, 1, pool2, 1, &n, &o2);
    float *p3 = train_fresh(&b, 1, pool3, 1, &n, &o3);
    ck_assert_int_eq(o1.t, 1);
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(o1.m[i]));
    ck_assert(gmax > 0);
    for (size_t i = 0; i < n; i++) {
        MB_ASSERT_CLOSE("grad (2 workers) vs serial", o2.m[i], o1.m[i], 1e-5 * gmax);
        MB_ASSERT_CLOSE("grad (3 workers) vs serial", o3.m[i], o1.m[i], 1e-5 * gmax);
    }
    mb_pool_free(pool2);
    mb_pool_free(pool3);
    mb_adam_free(&o1); mb_adam_free(&o2); mb_adam_free(&o3);
    free(p1); free(p2); free(p3);
    mb_buffer_free(&b);
}
END_TEST

/* bootstrap 0, one minibatch holding every training row: the first Adam
 * moment after the step is 0.1 x the gradient over exactly the training rows
 * (holdout rows excluded), which we compute here directly with loss_grad
 * from the untrained weights, the trainer's normaliser and our own gather.
 * Checks the gather, normalisation, split and the tiled combination. */
START_TEST(test_full_batch_gradient_matches_direct) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 100, 0.3f, 12, NULL, 0), MB_OK);
    fill_buffer(&b, 60, 13);
    mb_ensemble e, ref;
    make_ensemble(&e, 3, 1, 9);
    make_ensemble(&ref, 3, 1, 9); /* same initial weights */
    mb_pool *pool = mb_pool_new(2);
    ck_assert_ptr_nonnull(pool);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    cfg.batch_size = 64;
    cfg.bootstrap = 0;
    cfg.max_epochs = 1;
    cfg.patience = 0;
    cfg.keep_last = 1;
    char err[256];
    mb_train_result res;
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, pool, NULL, NULL, &res, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert_int_eq(opt.t, 1);
    size_t tr[60], ho[60], nt, nh;
    mb_buffer_split(&b, tr, &nt, ho, &nh);
    ck_assert_uint_eq(nt, res.n_train);
    ck_assert_uint_gt(nh, 5);
    enum { IN = OD + AD, OUT = OD + 1 };
    float xn[60 * IN], yn[60 * OUT];
    for (size_t i = 0; i < nt; i++) {
        size_t s = tr[i];
        for (int j = 0; j < OD; j++) {
            xn[i * IN + j] = (b.obs[s * OD + j] - e.in_mean[j]) / e.in_std[j];
            yn[i * OUT + j] = (b.next_obs[s * OD + j] - b.obs[s * OD + j] - e.out_mean[j]) / e.out_std[j];
        }
        xn[i * IN + OD] = (b.act[s] - e.in_mean[OD]) / e.in_std[OD];
        yn[i * OUT + OD] = (b.rew[s] - e.out_mean[OD]) / e.out_std[OD];
    }
    float *g = malloc(ref.member_size * sizeof(float));
    ck_assert_ptr_nonnull(g);
    mb_ens_ws *ws = mb_ens_ws_new(&ref.spec, 64);
    ck_assert_ptr_nonnull(ws);
    for (int m = 0; m < 3; m++) {
        float loss = mb_ensemble_loss_grad(&ref, ws, m, xn, yn, nt, g);
        double gmax = 0;
        for (size_t i = 0; i < ref.member_size; i++) gmax = fmax(gmax, fabs(g[i]));
        const float *mom = opt.m + (size_t)m * ref.member_size;
        for (size_t i = 0; i < ref.member_size; i++)
            MB_ASSERT_CLOSE("trainer gradient vs direct loss_grad", mom[i] / 0.1f, g[i], 1e-4 * gmax);
        MB_ASSERT_CLOSE("trainer loss vs direct", res.train_loss[m], loss, 1e-5 * fabsf(loss));
    }
    mb_ens_ws_free(ws);
    free(g);
    mb_pool_free(pool);
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_ensemble_free(&ref);
    mb_buffer_free(&b);
}
END_TEST

/* A non-finite training row is refused before any change to the ensemble;
 * a run whose loss turns non-finite ends with MB_ERANGE, the best weights
 * and a reset optimiser, and the next run trains normally. */
START_TEST(test_nonfinite_data_and_divergence) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.0f, 3, NULL, 0), MB_OK);
    fill_buffer(&b, 100, 14);
    mb_ensemble e;
    make_ensemble(&e, 2, 1, 6);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    cfg.max_epochs = 3;
    cfg.patience = 0;
    char err[256];
    mb_train_result res;
    /* one row with an infinite reward */
    float keep = b.rew[17];
    b.rew[17] = INFINITY;
    float *p0 = malloc(e.n_params * sizeof(float));
    ck_assert_ptr_nonnull(p0);
    memcpy(p0, e.params, e.n_params * sizeof(float));
    ck_assert_int_eq(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err),
                     MB_EINVAL);
    ck_assert_msg(strstr(err, "target column 2") != NULL, "%s", err);
    ck_assert(memcmp(p0, e.params, e.n_params * sizeof(float)) == 0);
    ck_assert(e.out_mean[2] == 0.0f && e.out_std[2] == 1.0f); /* identity normaliser kept */
    b.rew[17] = keep;

    /* Divergence: poison one member's weight with NaN after a first good
     * run (a warm start from a broken model); the entry score is NaN, the
     * loss is NaN from the first step. */
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK,
                  "%s", err);
    mb_ensemble_layer_W(&e.spec, e.params, 1, 0)[0] = NAN;
    ck_assert_int_eq(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err),
                     MB_ERANGE);
    ck_assert_msg(strstr(err, "diverged at epoch 1") != NULL, "%s", err);
    ck_assert_int_eq(opt.t, 0);
    for (size_t i = 0; i < opt.n; i++) ck_assert(opt.m[i] == 0.0f && opt.v[i] == 0.0f);
    /* member 0 is finite; member 1 had no finite weights to go back to */
    for (size_t i = 0; i < e.member_size; i++) ck_assert(isfinite(e.params[i]));
    mb_ensemble_free(&e);
    make_ensemble(&e, 2, 1, 6);
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK,
                  "after a reset the optimiser trains again: %s", err);
    ck_assert(isfinite(res.holdout_loss[0]) && isfinite(res.holdout_loss[1]));
    free(p0);
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST

/* Without holdout rows the training rows score the epochs; a second call
 * continues the optimiser (warm restart) and never ends worse than it began. */
START_TEST(test_no_holdout_and_warm_restart) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.0f, 3, NULL, 0), MB_OK);
    fill_buffer(&b, 200, 10);
    mb_ensemble e;
    make_ensemble(&e, 2, 0, 5);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    cfg.max_epochs = 4;
    cfg.patience = 0;
    mb_train_result r1, r2;
    char err[256];
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &r1, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert_uint_eq(r1.n_holdout, 0);
    ck_assert_uint_eq(r1.n_train, 200);
    long steps = 4 * ((200 + 31) / 32);
    ck_assert_int_eq(opt.t, steps);
    cfg.max_epochs = 2;
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &r2, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert_int_eq(opt.t, steps + 2 * ((200 + 31) / 32));
    for (int m = 0; m < 2; m++) {
        ck_assert(isfinite(r2.holdout_loss[m]));
        /* the normaliser is refit on the same rows, so the starting score of
         * run 2 is run 1's best: run 2 cannot end above it */
        ck_assert_msg(r2.holdout_loss[m] <= r1.holdout_loss[m] * (1 + 1e-5f),
                      "member %d: %g after warm restart, %g before", m, r2.holdout_loss[m],
                      r1.holdout_loss[m]);
    }
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST

/* Every train option applies to its call: lr too on a warm optimiser. When
 * the weights kept are an earlier epoch's (early stopping rolled back), the
 * optimiser's moments and step count start afresh; when they are the last
 * epoch's, Adam continues. */
START_TEST(test_rollback_resets_optimizer_lr_applies) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.25f, 11, NULL, 0), MB_OK);
    fill_buffer(&b, 240, 5);
    mb_ensemble e;
    make_ensemble(&e, 4, 1, 2);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    small_cfg(&cfg);
    cfg.max_epochs = 150;
    cfg.patience = 4;
    cfg.min_improvement = 0.02f;
    cfg.lr = 1e-2f; /* noisy: the last epoch is not every member's best (as above) */
    mb_train_result res;
    char err[256];
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_int_eq(res.stopped_early, 1);
    ck_assert_int_eq(opt.t, 0);
    size_t nonzero = 0;
    for (size_t i = 0; i < opt.n; i++) nonzero += opt.m[i] != 0.0f || opt.v[i] != 0.0f;
    ck_assert_uint_eq(nonzero, 0);
    ck_assert(opt.lr == 1e-2f);
    /* A second call with its own lr and keep_last (no rollback): Adam runs on
     * with the new step size and its moments are kept. */
    cfg.lr = 3e-4f;
    cfg.max_epochs = 2;
    cfg.patience = 0;
    cfg.keep_last = 1;
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK, "%s", err);
    ck_assert(opt.lr == 3e-4f);
    ck_assert_int_eq(opt.t, 2 * (long)((res.n_train + cfg.batch_size - 1) / cfg.batch_size));
    nonzero = 0;
    for (size_t i = 0; i < opt.n; i++) nonzero += opt.v[i] != 0.0f;
    ck_assert_uint_gt(nonzero, 0);
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST

#if ALLOC_COUNTING
/* Allocations seen at each epoch's callback. */
typedef struct {
    long at[8];
    int n;
} alloc_trace;

static int count_allocs(void *ctx, int epoch, int members, const float *train_loss,
                        const float *holdout_loss) {
    (void)epoch; (void)members; (void)train_loss; (void)holdout_loss;
    alloc_trace *a = ctx;
    if (a->n < 8) a->at[a->n++] = atomic_load(&n_allocs);
    return 0;
}

/* Everything between the end of epoch 1 and the end of epoch 4 (shuffles,
 * gathers, loss_grad, Adam, holdout scoring, the pool runs) allocates
 * nothing, serially and with a 2-thread pool. */
START_TEST(test_epoch_loop_allocates_nothing) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, OD, AD, 1000, 0.2f, 3, NULL, 0), MB_OK);
    fill_buffer(&b, 500, 15);
    mb_pool *pool = mb_pool_new(2);
    ck_assert_ptr_nonnull(pool);
    for (int k = 0; k < 2; k++) {
        mb_ensemble e;
        make_ensemble(&e, 5, 1, 8);
        mb_adam opt;
        memset(&opt, 0, sizeof opt);
        mb_train_cfg cfg;
        small_cfg(&cfg);
        cfg.max_epochs = 4;
        cfg.patience = 0;
        alloc_trace a = {.n = 0};
        char err[256];
        mb_train_result res;
        ck_assert_msg(mb_train(&e, &opt, &b, &cfg, k ? pool : NULL, count_allocs, &a, &res, err,
                               sizeof err) == MB_OK, "%s", err);
        ck_assert_int_eq(a.n, 4);
        ck_assert_msg(a.at[3] == a.at[0], "%ld allocations in epochs 2-4 (pool %d)",
                      a.at[3] - a.at[0], k);
        mb_adam_free(&opt);
        mb_ensemble_free(&e);
    }
    mb_pool_free(pool);
    mb_buffer_free(&b);
}
END_TEST
#endif

static Suite *trainer_suite(void) {
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_cfg_check);
    tcase_add_test(tc, test_adaptive_plan_hand_cases);
    tcase_add_test(tc, test_floor_under_early_stopping);
    tcase_add_test(tc, test_fit_normalizer_matches_closed_form);
    tcase_add_test(tc, test_argument_errors);
    tcase_add_test(tc, test_early_stopping_best_weights_elites);
    tcase_add_test(tc, test_cancel_keeps_best);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_parallel_gradient_matches_serial);
    tcase_add_test(tc, test_full_batch_gradient_matches_direct);
    tcase_add_test(tc, test_nonfinite_data_and_divergence);
    tcase_add_test(tc, test_no_holdout_and_warm_restart);
    tcase_add_test(tc, test_rollback_resets_optimizer_lr_applies);
#if ALLOC_COUNTING
    tcase_add_test(tc, test_epoch_loop_allocates_nothing);
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    /* as the daemon runs: mbrld's pool parallelises, OpenBLAS does not */
    mb_pool_blas_single_thread();
    return mb_test_main(trainer_suite());
}
