/* test_planner_ensemble.c: planning through a learned ensemble (core/
 * propagate.c): hand-built ensembles whose weights encode known dynamics,
 * so the answers are known: LQR through the ensemble with declared and
 * learned rewards, members that disagree in one region (TS-inf and TS-1
 * avoid it, expectation does not), elites_only, FLOP accounting,
 * determinism across pools, mb_predict. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"

static void set_W(mb_ensemble *e, int m, int l, int i, int j, float v) {
    int out = l == e->spec.n_hidden ? 2 * mb_ensemble_out_dim(&e->spec) : e->spec.hidden[l];
    mb_ensemble_layer_W(&e->spec, e->params, m, l)[i * out + j] = v;
}
static void set_b(mb_ensemble *e, int m, int l, int j, float v) {
    mb_ensemble_layer_b(&e->spec, e->params, m, l)[j] = v;
}
/* Zero weights; aleatoric noise ~ exp(-10) (raw logvar -20, min -20). */
static void quiet(mb_ensemble *e) {
    memset(e->params, 0, e->n_params * sizeof(float));
    int D = mb_ensemble_out_dim(&e->spec);
    for (int m = 0; m < e->spec.members; m++) {
        float *mx = mb_ensemble_max_logvar(&e->spec, e->params, m);
        float *mn = mb_ensemble_min_logvar(&e->spec, e->params, m);
        for (int o = 0; o < D; o++) {
            mx[o] = 0.5f;
            mn[o] = -20.0f;
            set_b(e, m, e->spec.n_hidden, D + o, -20.0f);
        }
    }
}

/* ---- the double integrator as an ensemble --------------------------------
 * obs (p, v), act u; ReLU pairs make it exactly linear:
 *   h = relu(v), relu(-v), relu(u), relu(-u);  dp = dt (h0 - h1),
 *   dv = sign_m dt (h2 - h3);  learned reward = 0.5. */
#define DT 0.1
static void di_ensemble(mb_ensemble *e, int members, const int *flip) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.members = members;
    spec.obs_dim = 2;
    spec.act_dim = 1;
    spec.learn_reward = 1;
    spec.n_hidden = 1;
    spec.hidden[0] = 4;
    spec.activation = MB_ACT_RELU;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(e, &spec, 1, err, sizeof err), MB_OK);
    quiet(e);
    for (int m = 0; m < members; m++) {
        set_W(e, m, 0, 1, 0, 1.0f);
        set_W(e, m, 0, 1, 1, -1.0f);
        set_W(e, m, 0, 2, 2, 1.0f);
        set_W(e, m, 0, 2, 3, -1.0f);
        float sg = flip && flip[m] ? -1.0f : 1.0f;
        set_W(e, m, 1, 0, 0, (float)DT);
        set_W(e, m, 1, 1, 0, (float)-DT);
        set_W(e, m, 1, 2, 1, sg * (float)DT);
        set_W(e, m, 1, 3, 1, -sg * (float)DT);
        set_b(e, m, 1, 2, 0.5f);
    }
}

/* The LQR reward as declared terms: -(p'^2 + v'^2) - 0.1 u^2 (+ learned). */
static mb_reward_spec lqr_reward(int use_learned) {
    mb_reward_spec r;
    mb_reward_spec_default(&r);
    r.use_learned = use_learned;
    r.n_terms = 2;
    r.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 2,
                                  .idx = {0, 1}, .target = {0, 0}};
    r.terms[1] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.1f};
    return r;
}

static double di_cost(const float *x0, const float *u, int H) {
    double p = x0[0], v = x0[1], c = 0.0;
    for (int t = 0; t < H; t++) {
        double np = p + DT * v, nv = v + DT * u[t];
        c += np * np + nv * nv + 0.1 * u[t] * u[t];
        p = np;
        v = nv;
    }
    return c;
}

/* Finite-horizon LQR optimum for the cost above (see test_planner.c). */
static double lqr_optimum(const float *x0, int H) {
    double P[2][2] = {{1, 0}, {0, 1}};
    for (int t = H - 1; t >= 0; t--) {
        double s = 0.1 + DT * DT * P[1][1];
        double k0 = DT * P[1][0] / s, k1 = DT * (DT * P[1][0] + P[1][1]) / s;
        double M[2][2] = {{1, DT}, {-DT * k0, 1 - DT * k1}};
        double PM[2][2], NP[2][2];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) PM[i][j] = P[i][0] * M[0][j] + P[i][1] * M[1][j];
        for (int j = 0; j < 2; j++) {
            NP[0][j] = PM[0][j];
            NP[1][j] = DT * PM[0][j] + PM[1][j];
        }
        if (t > 0) {
            NP[0][0] += 1.0;
            NP[1][1] += 1.0;
        }
        memcpy(P, NP, sizeof P);
    }
    return x0[0] * (P[0][0] * x0[0] + P[0][1] * x0[1]) + x0[1] * (P[1][0] * x0[0] + P[1][1] * x0[1]);
}

static const float di_low[1] = {-5.0f}, di_high[1] = {5.0f};

static mb_planner_cfg cem_cfg(int H, int N, int elites, int iters, int P, mb_prop prop) {
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, MB_PLAN_CEM);
    c.horizon = H;
    c.population = N;
    c.elites = elites;
    c.iterations = iters;
    c.particles = P;
    c.propagation = prop;
    return c;
}

static void plan_ok(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                    const float *obs, uint64_t seed, mb_pool *pool, float *plan, mb_plan_info *info) {
    mb_plan_ws *ws = mb_plan_ws_new(cfg, dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    float a[MB_MAX_ACT_DIM];
    char err[160] = "";
    mb_status st = mb_plan(cfg, dyn, rw, obs, NULL, &rng, ws, pool, a, plan, info, err, sizeof err);
    ck_assert_msg(st == MB_OK, "mb_plan: %s", err);
    mb_plan_ws_free(ws);
}

START_TEST(test_lqr_through_ensemble) {
    mb_ensemble e;
    di_ensemble(&e, 2, NULL);
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 1, .act_low = di_low, .act_high = di_high};
    const int H = 20;
    const float x0[2] = {1.0f, 0.0f};
    double J = lqr_optimum(x0, H);
    mb_reward_spec rw = lqr_reward(1);
    const mb_prop props[4] = {MB_PROP_MEAN, MB_PROP_TS_INF, MB_PROP_TS1, MB_PROP_EXPECTATION};
    for (int i = 0; i < 4; i++) {
        mb_planner_cfg cfg = cem_cfg(H, 200, 20, 8, 2, props[i]);
        float plan[H];
        mb_plan_info info;
        plan_ok(&cfg, &dyn, &rw, x0, 3, NULL, plan, &info);
        double c = di_cost(x0, plan, H);
        fprintf(stderr, "ensemble LQR (%s): J* %.5f, CEM %.5f (+%.2f%%)\n", mb_prop_name(props[i]), J,
                c, 100 * (c / J - 1));
        ck_assert_msg(c >= J * (1 - 1e-4) && c <= J * 1.03, "%s: CEM %g vs LQR %g",
                      mb_prop_name(props[i]), c, J);
        /* predicted = learned 0.5 per step minus the declared cost */
        MB_ASSERT_CLOSE("predicted return with the learned head", info.predicted_return,
                        0.5 * H - c, 2e-3 * c + 1e-3);
        ck_assert(info.return_std < 1e-2);
    }
    /* The learned head is required when the reward uses it. */
    mb_ensemble_free(&e);
    di_ensemble(&e, 2, NULL);
    e.spec.learn_reward = 0; /* pretend: only the check reads it here */
    mb_planner_cfg cfg = cem_cfg(H, 20, 2, 1, 2, MB_PROP_TS_INF);
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    mb_rng rng;
    mb_rng_seed(&rng, 1);
    float a;
    char err[160];
    ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, &a, NULL, NULL, err, sizeof err), MB_EINVAL);
    mb_plan_ws_free(ws);
    e.spec.learn_reward = 1;
    mb_ensemble_free(&e);
}
END_TEST

/* ---- members that disagree in one region ---------------------------------
 * obs (x, y), act (ax, ay) in [-1, 1]^2, every member moves by 0.3 a; in a
 * bump around (1, -0.15) (L1 radius 0.6) members 0, 1 add +3 * bump to dy,
 * members 2, 3 add -3 * bump: the members' mean is the plain dynamics, but
 * every particle that crosses the bump is kicked off the line. The reward
 * pulls to (2, 0): -(x - 2)^2 - y^2. The straight line crosses the bump. */
#define BX 1.0f
#define BY -0.15f
#define BRAD 0.6f
#define BK 3.0f
static float bump(float x, float y) {
    float b = 1.0f - (fabsf(x - BX) + fabsf(y - BY)) / BRAD;
    return b > 0.0f ? b : 0.0f;
}

static void bump_ensemble(mb_ensemble *e) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.members = 4;
    spec.obs_dim = 2;
    spec.act_dim = 2;
    spec.learn_reward = 0;
    spec.n_hidden = 2;
    spec.hidden[0] = 8;
    spec.hidden[1] = 5;
    spec.activation = MB_ACT_RELU;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(e, &spec, 1, err, sizeof err), MB_OK);
    quiet(e);
    for (int m = 0; m < 4; m++) {
        /* layer 0: |x - BX|, |y - BY| as ReLU pairs; ax, ay as pairs */
        set_W(e, m, 0, 0, 0, 1); set_b(e, m, 0, 0, -BX);
        set_W(e, m, 0, 0, 1, -1); set_b(e, m, 0, 1, BX);
        set_W(e, m, 0, 1, 2, 1); set_b(e, m, 0, 2, -BY);
        set_W(e, m, 0, 1, 3, -1); set_b(e, m, 0, 3, BY);
        set_W(e, m, 0, 2, 4, 1);
        set_W(e, m, 0, 2, 5, -1);
        set_W(e, m, 0, 3, 6, 1);
        set_W(e, m, 0, 3, 7, -1);
        /* layer 1: g0 = bump, g1..g4 pass the action pairs */
        for (int i = 0; i < 4; i++) set_W(e, m, 1, i, 0, -1.0f / BRAD);
        set_b(e, m, 1, 0, 1.0f);
        for (int i = 0; i < 4; i++) set_W(e, m, 1, 4 + i, 1 + i, 1.0f);
        /* head: dx = 0.3 (g1 - g2), dy = 0.3 (g3 - g4) + s_m BK g0 */
        set_W(e, m, 2, 1, 0, 0.3f);
        set_W(e, m, 2, 2, 0, -0.3f);
        set_W(e, m, 2, 3, 1, 0.3f);
        set_W(e, m, 2, 4, 1, -0.3f);
        set_W(e, m, 2, 0, 1, m < 2 ? BK : -BK);
    }
}

/* Largest bump along the plan's path under the members' mean dynamics. */
static float path_bump(const float *plan, int H) {
    float x = 0.0f, y = 0.0f, worst = bump(x, y);
    for (int t = 0; t < H; t++) {
        x += 0.3f * plan[2 * t];
        y += 0.3f * plan[2 * t + 1];
        worst = fmaxf(worst, bump(x, y));
    }
    return worst;
}

START_TEST(test_disagreement_region) {
    mb_ensemble e;
    bump_ensemble(&e);
    /* The hand-built network computes what the comment says. */
    {
        mb_ens_ws *ews = mb_ens_ws_new(&e.spec, 1);
        float x[4 * 4], mu[4 * 2];
        for (int m = 0; m < 4; m++) {
            x[4 * m + 0] = 0.9f;
            x[4 * m + 1] = 0.0f;
            x[4 * m + 2] = 1.0f;
            x[4 * m + 3] = -0.5f;
        }
        mb_ensemble_forward(&e, ews, NULL, NULL, 4, x, 1, mu, NULL);
        for (int m = 0; m < 4; m++) {
            MB_ASSERT_CLOSE("hand-built dx", mu[2 * m], 0.3, 1e-6);
            MB_ASSERT_CLOSE("hand-built dy", mu[2 * m + 1],
                            -0.15 + (m < 2 ? BK : -BK) * bump(0.9f, 0.0f), 1e-5);
        }
        mb_ens_ws_free(ews);
    }
    const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 2,
                                   .idx = {0, 1}, .target = {2.0f, 0.0f}};
    const float obs[2] = {0, 0};
    const int H = 10;
    int N = mb_test_sanitized() ? 200 : 400;
    float plan[2 * H], b[4];
    /* TS-inf: each particle keeps its member, so crossing the bump splits
     * the particles up and down, which the shared open-loop plan cannot
     * undo: the quadratic cost of that spread makes it go round. TS-1
     * redraws members every step, so kicks partly cancel (a random walk)
     * and it sees less of the risk. Expectation and mean average the
     * members first: the bump vanishes and the straight line wins. */
    const mb_prop props[4] = {MB_PROP_TS_INF, MB_PROP_TS1, MB_PROP_EXPECTATION, MB_PROP_MEAN};
    for (int i = 0; i < 4; i++) {
        mb_planner_cfg cfg = cem_cfg(H, N, N / 10, 6, 4, props[i]);
        mb_plan_info info;
        plan_ok(&cfg, &dyn, &rw, obs, 9, NULL, plan, &info);
        b[i] = path_bump(plan, H);
        fprintf(stderr, "disagreement: %-11s largest bump on the path %.3f, return %.2f +- %.2f\n",
                mb_prop_name(props[i]), b[i], info.predicted_return, info.return_std);
    }
    ck_assert_msg(b[0] < 0.05f, "ts_inf should avoid the region (bump %g)", b[0]);
    ck_assert_msg(b[1] < b[2], "ts1 should cross less deep than expectation (%g vs %g)", b[1], b[2]);
    ck_assert_msg(b[2] > 0.3f, "expectation sees no disagreement and should cross (bump %g)", b[2]);
    ck_assert_msg(b[3] > 0.3f, "mean sees no disagreement and should cross (bump %g)", b[3]);
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_elites_only_and_flops) {
    /* Member 1 has the action sign flipped; with elites = {0} the planner
     * sees only the true dynamics. */
    mb_ensemble e;
    const int flip[2] = {0, 1};
    di_ensemble(&e, 2, flip);
    e.n_elites = 1;
    e.elites[0] = 0;
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 1, .act_low = di_low, .act_high = di_high};
    const int H = 20;
    const float x0[2] = {1.0f, 0.0f};
    double J = lqr_optimum(x0, H);
    mb_reward_spec rw = lqr_reward(0);
    mb_planner_cfg cfg = cem_cfg(H, 200, 20, 8, 3, MB_PROP_TS_INF);
    cfg.elites_only = 1;
    float plan[H];
    mb_plan_info info;
    plan_ok(&cfg, &dyn, &rw, x0, 5, NULL, plan, &info);
    double c = di_cost(x0, plan, H);
    ck_assert_msg(c <= J * 1.03, "elites_only: %g vs LQR %g", c, J);
    /* One member: every row through it, 3 particles each. */
    double rows = 8.0 * 200 * 3 * H + 3.0 * H;
    MB_ASSERT_CLOSE("model rows, elites only", info.model_rows, rows, 0.0);
    MB_ASSERT_CLOSE("flops = rows x flops per row", info.flops,
                    rows * mb_ensemble_flops_per_row(&e.spec), 1e-9 * info.flops);
    /* Both members: 600 rows split 300/300, the final mean's 3 rows 2/1
     * (padded to 2 per member). */
    cfg.elites_only = 0;
    plan_ok(&cfg, &dyn, &rw, x0, 5, NULL, plan, &info);
    MB_ASSERT_CLOSE("model rows, both members", info.model_rows, 8.0 * 600 * H + 4.0 * H, 0.0);
    ck_assert_msg(di_cost(x0, plan, H) > J * 1.05, "the flipped member should hurt");
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_ensemble_determinism_and_ws) {
    mb_ensemble e;
    bump_ensemble(&e);
    const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 1.0f, .n_idx = 1, .idx = {0}};
    mb_pool *pool = mb_pool_new(2);
    const float obs[2] = {0.5f, 0.1f};
    for (int pr = 0; pr < 4; pr++)
        for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++) {
            mb_planner_cfg cfg = cem_cfg(6, 300, 20, 2, 5, (mb_prop)pr);
            cfg.method = (mb_plan_method)m;
            float p0[12], p1[12];
            mb_plan_info i0, i1;
            plan_ok(&cfg, &dyn, &rw, obs, 77, NULL, p0, &i0);
            plan_ok(&cfg, &dyn, &rw, obs, 77, pool, p1, &i1);
            ck_assert_msg(!memcmp(p0, p1, sizeof p0), "%s/%s: serial and pool plans differ",
                          mb_plan_method_name(cfg.method), mb_prop_name(cfg.propagation));
            ck_assert(i0.predicted_return == i1.predicted_return);
        }
    /* Workspace reuse follows the sizes, not the parameters. */
    mb_planner_cfg cfg = cem_cfg(6, 30, 5, 1, 4, MB_PROP_TS_INF);
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    mb_ensemble e2;
    char err[160];
    ck_assert_int_eq(mb_ensemble_copy(&e2, &e, err, sizeof err), MB_OK);
    mb_dynamics dyn2 = dyn;
    dyn2.ens = &e2;
    ck_assert_int_eq(mb_plan_ws_fits(ws, &cfg, &dyn2), 1);
    mb_planner_cfg c3 = cfg;
    c3.particles = 8;
    ck_assert_int_eq(mb_plan_ws_fits(ws, &c3, &dyn2), 0);
    c3 = cfg;
    c3.propagation = MB_PROP_EXPECTATION;
    ck_assert_int_eq(mb_plan_ws_fits(ws, &c3, &dyn2), 0);
    mb_plan_ws_free(ws);
    mb_ensemble_free(&e2);
    mb_pool_free(pool);
    mb_ensemble_free(&e);
}
END_TEST

/* TS-inf weighs every candidate's members equally, also when the members do
 * not divide the particles: with the action fixed (low = high) every
 * candidate is the same sequence, so its predicted return must be the mean
 * of the two members' returns, whatever P; before, P = 3 over 2 members gave
 * 2:1 or 1:2 weightings depending on the candidate's index (1.1 off here;
 * the tolerance covers the members' tiny aleatoric noise). */
START_TEST(test_ts_inf_equal_member_weighting) {
    mb_ensemble e;
    const int flip[2] = {0, 1};
    di_ensemble(&e, 2, flip); /* member 1: the action's sign flipped */
    const float lo[1] = {1.0f}, hi[1] = {1.0f};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 1, .act_low = lo, .act_high = hi};
    mb_reward_spec rw = lqr_reward(0);
    const float x0[2] = {1.0f, 0.0f};
    mb_planner_cfg cfg = cem_cfg(10, 16, 4, 1, 2, MB_PROP_TS_INF);
    cfg.method = MB_PLAN_RANDOM;
    float plan[10];
    mb_plan_info i2, i3, i5;
    plan_ok(&cfg, &dyn, &rw, x0, 3, NULL, plan, &i2); /* one particle per member */
    cfg.particles = 3;
    plan_ok(&cfg, &dyn, &rw, x0, 3, NULL, plan, &i3);
    cfg.particles = 5;
    plan_ok(&cfg, &dyn, &rw, x0, 3, NULL, plan, &i5);
    MB_ASSERT_CLOSE("P 3 vs P 2", i3.predicted_return, i2.predicted_return, 1e-3 * fabs(i2.predicted_return));
    MB_ASSERT_CLOSE("P 5 vs P 2", i5.predicted_return, i2.predicted_return, 1e-3 * fabs(i2.predicted_return));
    /* the members disagree, so a 2:1 weighting would show */
    mb_planner_cfg one = cfg;
    one.particles = 1;
    mb_plan_info a, b;
    plan_ok(&one, &dyn, &rw, x0, 3, NULL, plan, &a);
    ck_assert(isfinite(a.predicted_return));
    e.n_elites = 1;
    e.elites[0] = 1;
    one.elites_only = 1;
    plan_ok(&one, &dyn, &rw, x0, 3, NULL, plan, &b);
    e.elites[0] = 0;
    mb_plan_info c;
    plan_ok(&one, &dyn, &rw, x0, 3, NULL, plan, &c);
    ck_assert_msg(fabs(b.predicted_return - c.predicted_return) > 1e-3, "members agree: %g %g", b.predicted_return,
                  c.predicted_return);
    MB_ASSERT_CLOSE("P 2 = mean of the members", i2.predicted_return,
                    0.5 * (b.predicted_return + c.predicted_return), 1e-3 * fabs(i2.predicted_return));
    mb_ensemble_free(&e);
}
END_TEST

/* A model that predicts NaN (diverged weights) or overflows to inf gives
 * no plan: MB_ESTATE, never an arbitrary "best" action, and a warm
 * session is not warm-started from it. */
START_TEST(test_nonfinite_plan_is_an_error) {
    mb_ensemble e;
    bump_ensemble(&e);
    const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 1.0f, .n_idx = 1, .idx = {0}};
    const float obs[2] = {0.5f, 0.1f};
    for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++)
        for (int bad = 0; bad < 2; bad++) {
            mb_ensemble e2;
            char err[200] = "";
            ck_assert_int_eq(mb_ensemble_copy(&e2, &e, err, sizeof err), MB_OK);
            mb_reward_spec r2 = rw;
            /* NaN weights (diverged training), or weights so large that the
             * forward pass overflows to inf */
            for (size_t i = 0; i < e2.n_params; i++) e2.params[i] = bad ? 1e30f : NAN;
            mb_dynamics d2 = dyn;
            d2.ens = &e2;
            mb_planner_cfg cfg = cem_cfg(6, 40, 5, 2, 4, MB_PROP_TS_INF);
            cfg.method = (mb_plan_method)m;
            mb_plan_ws *ws = mb_plan_ws_new(&cfg, &d2);
            mb_plan_state st;
            ck_assert_int_eq(mb_plan_state_init(&st, &cfg, 2, err, sizeof err), MB_OK);
            st.valid = 1;
            mb_rng rng;
            mb_rng_seed(&rng, 5);
            float a[2];
            mb_plan_info info;
            mb_status s = mb_plan(&cfg, &d2, &r2, obs, &st, &rng, ws, NULL, a, NULL, &info, err, sizeof err);
            ck_assert_msg(s == MB_ESTATE, "%s, %s: status %d (%s)", mb_plan_method_name(cfg.method),
                          bad ? "overflowing model" : "NaN model", (int)s, err);
            ck_assert_ptr_nonnull(strstr(err, "not finite"));
            ck_assert_int_eq(st.valid, 0);
            mb_plan_state_free(&st);
            mb_plan_ws_free(ws);
            mb_ensemble_free(&e2);
        }
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_predict_ensemble) {
    mb_ensemble e;
    const int flip[2] = {0, 1};
    di_ensemble(&e, 2, flip);
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 1, .act_low = di_low, .act_high = di_high};
    mb_reward_spec rw = lqr_reward(1);
    const float x0[2] = {1.0f, 0.5f}, u[3] = {1.0f, -2.0f, 0.5f};
    float mean[6], std[6], rm[3], rs[3];
    char err[160];
    ck_assert_int_eq(mb_predict(&dyn, &rw, x0, u, 3, mean, std, rm, rs, err, sizeof err), MB_OK);
    /* Member 0 follows +u, member 1 -u, each its own mean trajectory. */
    double s[2][2] = {{1.0, 0.5}, {1.0, 0.5}};
    for (int t = 0; t < 3; t++) {
        double r[2];
        for (int m = 0; m < 2; m++) {
            double sg = m ? -1.0 : 1.0;
            double np = s[m][0] + DT * s[m][1], nv = s[m][1] + sg * DT * u[t];
            s[m][0] = np;
            s[m][1] = nv;
            r[m] = 0.5 - (np * np + nv * nv) - 0.1 * u[t] * u[t];
        }
        for (int o = 0; o < 2; o++) {
            double m = 0.5 * (s[0][o] + s[1][o]), d = 0.5 * fabs(s[0][o] - s[1][o]);
            MB_ASSERT_CLOSE("predict mean", mean[2 * t + o], m, 1e-5);
            MB_ASSERT_CLOSE("predict std = spread of the members", std[2 * t + o], d, 1e-4);
        }
        MB_ASSERT_CLOSE("predict reward mean", rm[t], 0.5 * (r[0] + r[1]), 1e-4);
        MB_ASSERT_CLOSE("predict reward std", rs[t], 0.5 * fabs(r[0] - r[1]), 1e-4);
    }
    mb_ensemble_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("planner_ensemble");
    TCase *tc = tcase_create("ensemble");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_lqr_through_ensemble);
    tcase_add_test(tc, test_disagreement_region);
    tcase_add_test(tc, test_elites_only_and_flops);
    tcase_add_test(tc, test_ensemble_determinism_and_ws);
    tcase_add_test(tc, test_predict_ensemble);
    tcase_add_test(tc, test_nonfinite_plan_is_an_error);
    tcase_add_test(tc, test_ts_inf_equal_member_weighting);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
