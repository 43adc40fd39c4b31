/* planner.c: the MPC planners (random shooting, CEM, MPPI, iCEM), their
 * configuration, warm-start state and workspace (contract in planner.h).
 *
 * A planning call samples candidate action sequences from a distribution,
 * scores them with propagate.c (rollouts through known dynamics or the
 * ensemble, with trajectory sampling and the reward spec) and refits the
 * distribution. Everything a call touches is carved out of the mb_plan_ws
 * at mb_plan_ws_new; mb_plan itself never allocates.
 * Not for: the rollouts themselves (propagate.c), sessions (server/). */
#include "plan/plan_methods.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ---------------------------------------------------- */

void mb_planner_cfg_default(mb_planner_cfg *cfg, mb_plan_method method) {
    *cfg = (mb_planner_cfg){
        .method = method,
        .horizon = 30,
        .population = 500,
        .elites = 50,
        .iterations = 5,
        .alpha = 0.1f,
        .particles = 20,
        .propagation = MB_PROP_TS_INF,
        .risk = 0.0f,
        .init_std = 0.5f, /* PETS: var = ((high - low) / 4)^2 */
        .kappa = 1.0f,
        .sigma = 0.9f,    /* PDDM */
        .beta = 0.6f,     /* PDDM */
        .noise_beta = 2.0f,
        .pop_decay = 1.25f,
        .keep_elites = 0.3f,
        .elites_only = 0,
        .precision = MB_PREC_FP32,
    };
    switch (method) {
    case MB_PLAN_RANDOM: cfg->iterations = 1; break;
    case MB_PLAN_MPPI: cfg->iterations = 1; break; /* PDDM refines across time steps */
    case MB_PLAN_ICEM: cfg->iterations = 3; cfg->elites = 10; cfg->population = 300; break;
    case MB_PLAN_CEM: break;
    default: break;
    }
    plan_methods_cfg_default(cfg, method);
}

static int plan__finite_in(float v, float lo, float hi) { return isfinite(v) && v >= lo && v <= hi; }

mb_status mb_planner_cfg_check(const mb_planner_cfg *cfg, int members, char *err, size_t err_sz) {
    if (!cfg) return mb_fail(err, err_sz, MB_EINVAL, "planner config is NULL");
    if ((unsigned)cfg->method >= MB_PLAN_N_METHODS)
        return mb_fail(err, err_sz, MB_EINVAL, "planner.method: unknown method %d", (int)cfg->method);
    if ((unsigned)cfg->propagation > MB_PROP_MEAN)
        return mb_fail(err, err_sz, MB_EINVAL, "planner.propagation: unknown %d", (int)cfg->propagation);
    if ((unsigned)cfg->precision > MB_PREC_BF16)
        return mb_fail(err, err_sz, MB_EINVAL, "planner.precision: unknown %d", (int)cfg->precision);
    if (members < 0 || members > MB_MAX_MEMBERS)
        return mb_fail(err, err_sz, MB_ERANGE, "members %d outside [0, %d]", members, MB_MAX_MEMBERS);
    if (cfg->horizon < 1 || cfg->horizon > MB_MAX_HORIZON)
        return mb_fail(err, err_sz, MB_ERANGE, "planner.horizon must be in [1, %d], got %d",
                       MB_MAX_HORIZON, cfg->horizon);
    if (cfg->population < 1 || cfg->population > MB_MAX_POPULATION)
        return mb_fail(err, err_sz, MB_ERANGE, "planner.population must be in [1, %d], got %d",
                       MB_MAX_POPULATION, cfg->population);
    if (cfg->iterations < 1 || cfg->iterations > MB_MAX_ITERATIONS)
        return mb_fail(err, err_sz, MB_ERANGE, "planner.iterations must be in [1, %d], got %d",
                       MB_MAX_ITERATIONS, cfg->iterations);
    if (cfg->particles < 1 || cfg->particles > MB_MAX_PARTICLES)
        return mb_fail(err, err_sz, MB_ERANGE, "planner.particles must be in [1, %d], got %d",
                       MB_MAX_PARTICLES, cfg->particles);
    if (cfg->method == MB_PLAN_CEM || cfg->method == MB_PLAN_ICEM) {
        if (cfg->elites < 1 || cfg->elites > cfg->population)
            return mb_fail(err, err_sz, MB_EINVAL,
                           "planner.elites must be in [1, population = %d], got %d",
                           cfg->population, cfg->elites);
        if (!plan__finite_in(cfg->alpha, 0.0f, 0.999f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.alpha must be in [0, 1), got %g",
                           (double)cfg->alpha);
        if (!plan__finite_in(cfg->init_std, 1e-6f, 10.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.init_std must be in (0, 10], got %g",
                           (double)cfg->init_std);
    }
    if (cfg->method == MB_PLAN_ICEM) {
        if (!plan__finite_in(cfg->noise_beta, 0.0f, 5.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.noise_beta must be in [0, 5], got %g",
                           (double)cfg->noise_beta);
        if (!plan__finite_in(cfg->pop_decay, 1.0f, 100.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.pop_decay must be in [1, 100], got %g",
                           (double)cfg->pop_decay);
        if (!plan__finite_in(cfg->keep_elites, 0.0f, 1.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.keep_elites must be in [0, 1], got %g",
                           (double)cfg->keep_elites);
    }
    if (cfg->method == MB_PLAN_MPPI) {
        if (!plan__finite_in(cfg->kappa, 1e-6f, 1e6f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.kappa must be in (0, 1e6], got %g",
                           (double)cfg->kappa);
        if (!plan__finite_in(cfg->sigma, 1e-6f, 10.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.sigma must be in (0, 10], got %g",
                           (double)cfg->sigma);
        if (!plan__finite_in(cfg->beta, 1e-6f, 1.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.beta must be in (0, 1], got %g",
                           (double)cfg->beta);
    }
    if (!plan__finite_in(cfg->risk, 0.0f, 1e6f))
        return mb_fail(err, err_sz, MB_ERANGE, "planner.risk must be finite and >= 0, got %g",
                       (double)cfg->risk);
    mb_status st14 = plan_methods_cfg_check(cfg, members, err, err_sz);
    if (st14) return st14;
    if (cfg->terminal_value != 0 && cfg->terminal_value != 1)
        return mb_fail(err, err_sz, MB_EINVAL, "planner.terminal_value must be 0 or 1");
    if (cfg->policy_samples < 0 || cfg->policy_samples > cfg->population)
        return mb_fail(err, err_sz, MB_ERANGE, "planner.policy_samples must be in [0, population = %d], got %d",
                       cfg->population, cfg->policy_samples);
    /* Known dynamics are deterministic: one particle per candidate whatever
     * the config says, so the limits count one. */
    double p = members > 0 ? cfg->particles : 1;
    double rows = (double)cfg->population * p;
    if (rows > MB_MAX_PLAN_ROWS)
        return mb_fail(err, err_sz, MB_ERANGE,
                       "planner: population x particles = %.0f exceeds the limit %d", rows,
                       MB_MAX_PLAN_ROWS);
    if (rows * cfg->horizon > MB_MAX_PLAN_WORK)
        return mb_fail(err, err_sz, MB_ERANGE,
                       "planner: population x particles x horizon = %.0f exceeds the limit %.0f",
                       rows * cfg->horizon, MB_MAX_PLAN_WORK);
    return MB_OK;
}

static const char *const plan__method_names[] = {"random", "cem",     "mppi", "icem",    "mcts",
                                                  "ilqr",   "lqr_flm", "grad", "cem_grad"};
static const char *const plan__prop_names[] = {"ts1", "ts_inf", "expectation", "mean"};

int mb_plan_method_parse(const char *name, mb_plan_method *out) {
    for (int i = 0; name && i < MB_PLAN_N_METHODS; i++)
        if (!strcmp(name, plan__method_names[i])) {
            *out = (mb_plan_method)i;
            return 0;
        }
    return -1;
}
const char *mb_plan_method_name(mb_plan_method m) {
    return (unsigned)m < MB_PLAN_N_METHODS ? plan__method_names[m] : "unknown";
}
int mb_prop_parse(const char *name, mb_prop *out) {
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, plan__prop_names[i])) {
            *out = (mb_prop)i;
            return 0;
        }
    return -1;
}
const char *mb_prop_name(mb_prop p) { return (unsigned)p < 4 ? plan__prop_names[p] : "unknown"; }

/* ---- warm-start state --------------------------------------------------- */

/* iCEM's kept elites: int(keep_elites * elites), as the paper's code
 * (the small epsilon absorbs float rounding: 0.3 * 10 is 3). */
static int plan__max_kept(const mb_planner_cfg *cfg) {
    if (cfg->method != MB_PLAN_ICEM) return 0;
    int k = (int)floor((double)cfg->keep_elites * (double)cfg->elites + 1e-6);
    return k < 0 ? 0 : k > cfg->elites ? cfg->elites : k;
}

mb_status mb_plan_state_init(mb_plan_state *s, const mb_planner_cfg *cfg, int act_dim,
                             char *err, size_t err_sz) {
    if (!s || !cfg) return mb_fail(err, err_sz, MB_EINVAL, "plan state: NULL argument");
    *s = (mb_plan_state){0};
    if (cfg->horizon < 1 || cfg->horizon > MB_MAX_HORIZON || act_dim < 1 || act_dim > MB_MAX_ACT_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "plan state: horizon %d / act_dim %d out of range",
                       cfg->horizon, act_dim);
    size_t seq = (size_t)cfg->horizon * (size_t)act_dim;
    s->horizon = cfg->horizon;
    s->act_dim = act_dim;
    s->max_kept = plan__max_kept(cfg);
    s->mean = calloc(seq, sizeof(float));
    s->kept = s->max_kept ? calloc((size_t)s->max_kept * seq, sizeof(float)) : NULL;
    if (!s->mean || (s->max_kept && !s->kept)) {
        mb_plan_state_free(s);
        return mb_fail(err, err_sz, MB_ENOMEM, "plan state: out of memory");
    }
    return MB_OK;
}

void mb_plan_state_free(mb_plan_state *s) {
    if (!s) return;
    free(s->mean);
    free(s->kept);
    *s = (mb_plan_state){0};
}

/* seq: (horizon, act_dim), shifted left by one step, last step = mid. */
static void plan__shift_seq(float *seq, int horizon, int act_dim, const float *lo, const float *hi) {
    memmove(seq, seq + act_dim, (size_t)(horizon - 1) * (size_t)act_dim * sizeof(float));
    for (int a = 0; a < act_dim; a++)
        seq[(size_t)(horizon - 1) * act_dim + a] = 0.5f * (lo[a] + hi[a]);
}

void mb_plan_state_shift(mb_plan_state *s, const float *act_low, const float *act_high) {
    if (!s || !s->valid || !s->mean) return;
    plan__shift_seq(s->mean, s->horizon, s->act_dim, act_low, act_high);
    size_t seq = (size_t)s->horizon * (size_t)s->act_dim;
    for (int k = 0; k < s->n_kept; k++)
        plan__shift_seq(s->kept + (size_t)k * seq, s->horizon, s->act_dim, act_low, act_high);
}

/* ---- workspace ---------------------------------------------------------- */

static void plan__dims(const mb_planner_cfg *cfg, int is_ens, int *n_cand, int *P) {
    *P = is_ens ? cfg->particles : 1;
    /* iCEM adds kept elites and the mean to the sampled population. */
    *n_cand = cfg->population + plan__max_kept(cfg) + (cfg->method == MB_PLAN_ICEM ? 1 : 0);
}

static int plan__spec_same(const mb_ensemble_spec *a, const mb_ensemble_spec *b) {
    if (a->members != b->members || a->obs_dim != b->obs_dim || a->act_dim != b->act_dim ||
        a->learn_reward != b->learn_reward || a->n_hidden != b->n_hidden)
        return 0;
    for (int l = 0; l < a->n_hidden; l++)
        if (a->hidden[l] != b->hidden[l]) return 0;
    return 1;
}

int mb_plan_ws_fits(const mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    if (!ws || !cfg || !dyn) return 0;
    if (!plan_prior_fits(ws->prior, cfg, dyn)) return 0;
    int n_cand, P;
    plan__dims(cfg, dyn->ens != NULL, &n_cand, &P);
    if (ws->method != cfg->method || ws->prop != cfg->propagation || ws->horizon != cfg->horizon ||
        ws->population != cfg->population || ws->n_cand != n_cand || ws->P != P ||
        ws->max_kept != plan__max_kept(cfg) || ws->elites_only != cfg->elites_only ||
        ws->obs_dim != dyn->obs_dim || ws->act_dim != dyn->act_dim || ws->is_ens != !!dyn->ens)
        return 0;
    if (dyn->ens && !plan__spec_same(&ws->spec, &dyn->ens->spec)) return 0;
    return plan_methods_ws_fits(ws, cfg, dyn);
}

void mb_plan_ws_free(mb_plan_ws *ws) {
    if (!ws) return;
    plan_methods_ws_free(ws);
    mb_ens_ws_free(ws->ens_ws);
    plan_prior_free(ws->prior);
    free(ws->block);
    free(ws);
}

/* Doornik's ZIGNOR tables (128 layers) for plan__normal in propagate.c. */
static void plan__zig_init(mb_plan_ws *ws) {
    const double R = PLAN_ZIG_R, V = PLAN_ZIG_V;
    double f = exp(-0.5 * R * R);
    double *x = ws->zig_x;
    x[0] = V / f;
    x[1] = R;
    x[PLAN_ZIG_C] = 0.0;
    for (int i = 2; i < PLAN_ZIG_C; i++) {
        x[i] = sqrt(-2.0 * log(V / x[i - 1] + f));
        f = exp(-0.5 * x[i] * x[i]);
    }
    for (int i = 0; i < PLAN_ZIG_C; i++) {
        ws->zig_r[i] = x[i + 1] / x[i];
        ws->zig_xf[i] = (float)x[i];
        ws->zig_rf[i] = (float)ws->zig_r[i];
    }
}

/* ws's sizes for (cfg, spec or NULL for known dynamics, dims): what it was
 * made for, candidate and row counts, the ensemble's rows. */
static void plan__ws_dims(mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_ensemble_spec *spec,
                          int obs_dim, int act_dim) {
    ws->method = cfg->method;
    ws->prop = cfg->propagation;
    ws->horizon = cfg->horizon;
    ws->population = cfg->population;
    ws->max_kept = plan__max_kept(cfg);
    ws->elites_only = cfg->elites_only;
    ws->obs_dim = obs_dim;
    ws->act_dim = act_dim;
    ws->is_ens = spec != NULL;
    plan__dims(cfg, spec != NULL, &ws->n_cand, &ws->P);
    ws->rows = (size_t)ws->n_cand * (size_t)ws->P;
    ws->max_elites = cfg->elites > 0 && cfg->elites <= cfg->population ? cfg->elites : cfg->population;
    size_t rows = ws->rows;
    if (spec) {
        ws->spec = *spec;
        int E = ws->spec.members;
        ws->in_dim = mb_ensemble_in_dim(&ws->spec);
        ws->out_dim = mb_ensemble_out_dim(&ws->spec);
        int all_rows = cfg->propagation == MB_PROP_EXPECTATION || cfg->propagation == MB_PROP_MEAN;
        /* Every row goes through every member (expectation), or rows are
         * split over k members; with elites_only k is only known per call. */
        ws->x_rows = all_rows ? (size_t)E * rows : rows + (size_t)E;
        ws->ens_rows = (all_rows || cfg->elites_only) ? rows : (rows + (size_t)E - 1) / (size_t)E;
        /* TS-inf with fewer particles than members: P members, n_cand rows each */
        if (!all_rows && (size_t)ws->P < (size_t)E && ws->ens_rows < (size_t)ws->n_cand)
            ws->ens_rows = (size_t)ws->n_cand;
    }
    ws->n_freq = cfg->method == MB_PLAN_ICEM ? cfg->horizon / 2 + 1 : 0;
}

/* The block's layout from ws's sizes: returns its bytes; with block, points
 * ws's arrays into it. One block, carved up: floats first, then ints, then
 * bytes. */
static size_t plan__carve(mb_plan_ws *ws, char *block) {
    size_t H = (size_t)ws->horizon, A = (size_t)ws->act_dim, O = (size_t)ws->obs_dim;
    size_t seq = H * A, rows = ws->rows;
    size_t nf = 0, ni = 0, nb = 0;
#define PLAN_F(field, count) size_t off_##field = nf; nf += (count);
    PLAN_F(cand, (size_t)ws->n_cand * seq)
    PLAN_F(mean, seq)
    PLAN_F(var, seq)
    PLAN_F(sd, seq)
    PLAN_F(best, seq)
    PLAN_F(keep, (size_t)ws->max_elites * seq)
    PLAN_F(keep_score, 3 * (size_t)ws->max_kept)
    PLAN_F(score, (size_t)ws->n_cand)
    PLAN_F(ret_mean, (size_t)ws->n_cand)
    PLAN_F(ret_std, (size_t)ws->n_cand)
    PLAN_F(S, rows * O)
    PLAN_F(S2, rows * O)
    PLAN_F(act_rows, rows * A)
    PLAN_F(learned, rows)
    PLAN_F(rew, rows)
    PLAN_F(ret, rows)
    PLAN_F(x, ws->x_rows * (size_t)ws->in_dim)
    PLAN_F(mu, ws->x_rows * (size_t)ws->out_dim)
    PLAN_F(sdv, ws->x_rows * (size_t)ws->out_dim)
    PLAN_F(cn_cos, (size_t)ws->n_freq * H)
    PLAN_F(cn_sin, (size_t)ws->n_freq * H)
    PLAN_F(cn_g, 2 * (size_t)ws->n_freq)
    PLAN_F(cn_out, H)
#undef PLAN_F
    size_t off_order = ni; ni += (size_t)ws->n_cand;
    size_t off_slot_a = ni; ni += ws->is_ens ? rows : 0;
    size_t off_slot_b = ni; ni += ws->is_ens ? rows : 0;
    size_t off_perm = ni; ni += ws->is_ens ? rows : 0;
    size_t off_alive = nb; nb += rows;
    size_t bytes = nf * sizeof(float) + ni * sizeof(int) + nb;
    if (!block) return bytes;
    float *F = (float *)block;
    int *I = (int *)(block + nf * sizeof(float));
    uint8_t *B = (uint8_t *)(block + nf * sizeof(float) + ni * sizeof(int));
#define PLAN_SET(field) ws->field = F + off_##field;
    PLAN_SET(cand) PLAN_SET(mean) PLAN_SET(var) PLAN_SET(sd) PLAN_SET(best) PLAN_SET(keep)
    PLAN_SET(keep_score)
    PLAN_SET(score) PLAN_SET(ret_mean) PLAN_SET(ret_std) PLAN_SET(S) PLAN_SET(S2)
    PLAN_SET(act_rows) PLAN_SET(learned) PLAN_SET(rew) PLAN_SET(ret) PLAN_SET(x) PLAN_SET(mu)
    PLAN_SET(sdv) PLAN_SET(cn_cos) PLAN_SET(cn_sin) PLAN_SET(cn_g) PLAN_SET(cn_out)
#undef PLAN_SET
    ws->order = I + off_order;
    ws->slot_a = I + off_slot_a;
    ws->slot_b = I + off_slot_b;
    ws->perm = I + off_perm;
    ws->alive = B + off_alive;
    return bytes;
}

/* The block is over-allocated by this much (alignment slack). */
#define PLAN_BLOCK_SLACK 64

mb_status mb_plan_cost_of(const mb_planner_cfg *cfg, const mb_ensemble_spec *spec, int obs_dim,
                          int act_dim, mb_plan_cost *out, char *err, size_t err_sz) {
    return mb_plan_cost_with_prior(cfg, spec, obs_dim, act_dim, NULL, NULL, out, err, err_sz);
}

mb_status mb_plan_cost_with_prior(const mb_planner_cfg *cfg, const mb_ensemble_spec *spec, int obs_dim,
                                  int act_dim, const mb_vnet_spec *value, const mb_policy_spec *policy,
                                  mb_plan_cost *out, char *err, size_t err_sz) {
    if (!cfg || !out) return mb_fail(err, err_sz, MB_EINVAL, "plan cost: NULL argument");
    memset(out, 0, sizeof *out);
    mb_status st = mb_planner_cfg_check(cfg, spec ? spec->members : 0, err, err_sz);
    if (st) return st;
    if (obs_dim < 1 || obs_dim > MB_MAX_OBS_DIM || act_dim < 1 || act_dim > MB_MAX_ACT_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "plan cost: obs_dim %d / act_dim %d out of range",
                       obs_dim, act_dim);
    if (spec && (st = mb_ensemble_spec_check(spec, err, err_sz))) return st;
    if (value && (st = mb_vnet_spec_check(value, err, err_sz))) return st;
    if (policy && (st = mb_policy_spec_check(policy, err, err_sz))) return st;
    /* The workspace struct holds tables: on the heap, not the stack. Its
     * sizes are integers: the same code as mb_plan_ws_new, nothing allocated
     * but this struct. */
    mb_plan_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return mb_fail(err, err_sz, MB_ENOMEM, "plan cost: out of memory");
    plan__ws_dims(ws, cfg, spec, obs_dim, act_dim);
    out->ws = sizeof *ws + plan__carve(ws, NULL) + PLAN_BLOCK_SLACK;
    out->ens_ws = spec ? mb_ens_ws_bytes(spec, ws->ens_rows) : 0;
    free(ws);
    /* the issue-14 method's own workspace and the prior's scratch, by the
     * layout code that allocates them */
    plan_shape sh = {spec, obs_dim, act_dim};
    out->ws += plan_methods_ws_bytes(cfg, &sh);
    mb_mlp_spec vmlp;
    if (value) mb_vnet_mlp_spec(value, &vmlp);
    out->ws += plan_prior_bytes(cfg, spec, obs_dim, act_dim, value ? &vmlp : NULL, policy);
    size_t seq = (size_t)cfg->horizon * (size_t)act_dim;
    out->state = (seq + (size_t)plan__max_kept(cfg) * seq) * sizeof(float);
    out->total = out->ws + out->ens_ws + out->state;
    return MB_OK;
}

size_t mb_plan_ws_bytes(const mb_plan_ws *ws) { return ws ? ws->bytes : 0; }

mb_plan_ws *mb_plan_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    if (!cfg || !dyn || (!dyn->ens == !dyn->known)) return NULL;
    if (mb_planner_cfg_check(cfg, dyn->ens ? dyn->ens->spec.members : 0, NULL, 0) != MB_OK ||
        plan_methods_check_dyn(cfg, dyn, NULL, 0) != MB_OK)
        return NULL;
    if (dyn->obs_dim < 1 || dyn->obs_dim > MB_MAX_OBS_DIM || dyn->act_dim < 1 ||
        dyn->act_dim > MB_MAX_ACT_DIM)
        return NULL;
    mb_plan_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    plan__ws_dims(ws, cfg, dyn->ens ? &dyn->ens->spec : NULL, dyn->obs_dim, dyn->act_dim);
    ws->bytes = sizeof *ws;
    if (dyn->ens) {
        ws->ens_ws = mb_ens_ws_new(&ws->spec, ws->ens_rows);
        if (!ws->ens_ws) goto fail;
        ws->bytes += mb_ens_ws_bytes(&ws->spec, ws->ens_rows);
    }
    size_t bytes = plan__carve(ws, NULL);
    char *block = calloc(1, bytes + PLAN_BLOCK_SLACK);
    if (!block) goto fail;
    ws->block = block;
    ws->bytes += bytes + PLAN_BLOCK_SLACK;
    plan__carve(ws, block);
    ws->cn_beta = -1.0f;
    plan__zig_init(ws);
    if (plan_methods_ws_new(ws, cfg, dyn)) goto fail;
    int prior_failed = 0;
    ws->prior = plan_prior_new(cfg, dyn, &prior_failed);
    if (prior_failed) goto fail;
    ws->bytes += plan_prior_bytes(cfg, dyn->ens ? &dyn->ens->spec : NULL, dyn->obs_dim, dyn->act_dim,
                                  dyn->value ? &dyn->value->mlp : NULL, dyn->policy ? &dyn->policy->spec : NULL);
    return ws;
fail:
    mb_plan_ws_free(ws);
    return NULL;
}

/* ---- helpers shared by the methods -------------------------------------- */

static float plan__clip(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

/* True if candidate a ranks before b: higher score, then lower index. */
static int plan__before(const float *score, int a, int b) {
    return score[a] > score[b] || (score[a] == score[b] && a < b);
}

/* Restores the heap below root; the heap's top is the worst-ranked. */
static void plan__sift(const float *score, int *o, int root, int end) {
    for (;;) {
        int child = 2 * root + 1;
        if (child >= end) return;
        if (child + 1 < end && plan__before(score, o[child], o[child + 1])) child++;
        if (!plan__before(score, o[root], o[child])) return;
        int t = o[root]; o[root] = o[child]; o[child] = t;
        root = child;
    }
}

/* order[0..n) = candidate indices, best first. Heap sort: no allocation
 * (glibc's qsort may malloc) and deterministic through the index tie-break. */
static void plan__sort(const float *score, int *order, int n) {
    for (int i = 0; i < n; i++) order[i] = i;
    for (int s = n / 2 - 1; s >= 0; s--) plan__sift(score, order, s, n);
    for (int end = n - 1; end > 0; end--) {
        int t = order[0]; order[0] = order[end]; order[end] = t;
        plan__sift(score, order, 0, end);
    }
}

/* Candidate c's sequence. */
static float *plan__cand(mb_plan_ws *ws, int c) {
    return ws->cand + (size_t)c * (size_t)ws->horizon * (size_t)ws->act_dim;
}

/* mean and var (seq) <- alpha * old + (1 - alpha) * stats of the elites. */
static void plan__refit(mb_plan_ws *ws, int n_elites, float alpha, int var_is_std) {
    size_t seq = (size_t)ws->horizon * (size_t)ws->act_dim;
    for (size_t j = 0; j < seq; j++) {
        double m = 0.0, q = 0.0;
        for (int e = 0; e < n_elites; e++) m += plan__cand(ws, ws->order[e])[j];
        m /= n_elites;
        for (int e = 0; e < n_elites; e++) {
            double d = plan__cand(ws, ws->order[e])[j] - m;
            q += d * d;
        }
        q /= n_elites;
        double v = var_is_std ? sqrt(q) : q;
        ws->mean[j] = (float)(alpha * ws->mean[j] + (1.0 - alpha) * m);
        ws->var[j] = (float)(alpha * ws->var[j] + (1.0 - alpha) * v);
    }
}

static void plan__init_mean(mb_plan_ws *ws, const mb_dynamics *dyn, const mb_plan_state *state,
                            int warm) {
    int H = ws->horizon, A = ws->act_dim;
    for (int t = 0; t < H; t++)
        for (int a = 0; a < A; a++) {
            float lo = dyn->act_low[a], hi = dyn->act_high[a];
            ws->mean[t * A + a] =
                warm ? plan__clip(state->mean[t * A + a], lo, hi) : 0.5f * (lo + hi);
        }
}

/* After a finished evaluation: candidate c (ranked first) becomes the
 * fallback plan if it beats the one held (what a stopped call answers). */
static void plan__note_best(plan_run *run, int c) {
    mb_plan_ws *ws = run->ws;
    if (run->have_best && !(ws->score[c] > run->best_score)) return;
    run->have_best = 1;
    run->best_score = ws->score[c];
    memcpy(ws->best, plan__cand(ws, c), (size_t)ws->horizon * (size_t)ws->act_dim * sizeof(float));
    run->ret_mean = ws->ret_mean[c];
    run->ret_std = ws->ret_std[c];
}

/* ---- the methods ---------------------------------------------------------- */

/* Each method leaves the plan in ws->best, its evaluation in *ret_mean /
 * *ret_std, and the warm-start mean in ws->mean. */

static void plan__random(plan_run *run) {
    mb_plan_ws *ws = run->ws;
    int N = run->cfg->population, H = ws->horizon, A = ws->act_dim;
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    for (int c = 0; c < N; c++) {
        float *s = plan__cand(ws, c);
        for (int t = 0; t < H; t++)
            for (int a = 0; a < A; a++) {
                float lo = run->dyn->act_low[a], hi = run->dyn->act_high[a];
                s[t * A + a] = plan__clip(lo + (hi - lo) * plan_uniform(&g), lo, hi);
            }
    }
    plan_evaluate(run, N);
    if (run->stopped) return;
    plan__sort(ws->score, ws->order, N);
    plan__note_best(run, ws->order[0]);
    memcpy(ws->mean, ws->best, (size_t)H * A * sizeof(float));
}

/* Evaluates ws->mean as the only candidate and makes it the plan. */
static void plan__finish_with_mean(plan_run *run) {
    mb_plan_ws *ws = run->ws;
    size_t seq = (size_t)ws->horizon * (size_t)ws->act_dim;
    memcpy(plan__cand(ws, 0), ws->mean, seq * sizeof(float));
    plan_evaluate(run, 1);
    if (run->stopped) return; /* the fallback in ws->best stays */
    run->have_best = 1;
    memcpy(ws->best, ws->mean, seq * sizeof(float));
    run->ret_mean = ws->ret_mean[0];
    run->ret_std = ws->ret_std[0];
}

/* CEM as in PETS: Gaussian per (step, action); the variance is capped by
 * the distance to the bounds, min(((m - lo)/2)^2, ((hi - m)/2)^2, var), and
 * samples are truncated at 2 std, so they stay inside the bounds. The plan
 * is the final (smoothed) elite mean. */
static void plan__cem(plan_run *run, int warm) {
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    int N = cfg->population, H = ws->horizon, A = ws->act_dim;
    plan__init_mean(ws, run->dyn, run->state, warm);
    for (int t = 0; t < H; t++)
        for (int a = 0; a < A; a++) {
            float half = 0.5f * (run->dyn->act_high[a] - run->dyn->act_low[a]);
            float s = cfg->init_std * half;
            ws->var[t * A + a] = s * s;
        }
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    for (int it = 0; it < cfg->iterations; it++) {
        for (int t = 0; t < H; t++)
            for (int a = 0; a < A; a++) {
                int j = t * A + a;
                float m = ws->mean[j];
                float dl = 0.5f * (m - run->dyn->act_low[a]), dh = 0.5f * (run->dyn->act_high[a] - m);
                float v = fminf(fminf(dl * dl, dh * dh), ws->var[j]);
                ws->sd[j] = sqrtf(v);
            }
        for (int c = 0; c < N; c++) {
            float *s = plan__cand(ws, c);
            for (int t = 0; t < H; t++)
                for (int a = 0; a < A; a++) {
                    int j = t * A + a;
                    float z;
                    do z = plan_normal(&g, ws);
                    while (z < -2.0f || z > 2.0f);
                    s[j] = plan__clip(ws->mean[j] + ws->sd[j] * z, run->dyn->act_low[a],
                                      run->dyn->act_high[a]);
                }
        }
        plan_prior_seed(run, N);
        plan_evaluate(run, N);
        if (run->stopped) return;
        plan__sort(ws->score, ws->order, N);
        plan__note_best(run, ws->order[0]);
        plan__refit(ws, cfg->elites, cfg->alpha, 0);
    }
    plan__finish_with_mean(run);
}

/* MPPI as in PDDM: filtered noise u_t = beta n_t + (1 - beta) u_{t-1},
 * n_t ~ N(0, (sigma * half range)^2), around the mean; the new mean is the
 * average of the candidates weighted by exp(kappa (R - max R)). */
static void plan__mppi(plan_run *run, int warm) {
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    int N = cfg->population, H = ws->horizon, A = ws->act_dim;
    size_t seq = (size_t)H * A;
    plan__init_mean(ws, run->dyn, run->state, warm);
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    for (int it = 0; it < cfg->iterations; it++) {
        for (int c = 0; c < N; c++) {
            float *s = plan__cand(ws, c);
            for (int a = 0; a < A; a++) {
                float lo = run->dyn->act_low[a], hi = run->dyn->act_high[a];
                float sig = cfg->sigma * 0.5f * (hi - lo), u = 0.0f;
                for (int t = 0; t < H; t++) {
                    float n = sig * plan_normal(&g, ws);
                    u = t == 0 ? cfg->beta * n : cfg->beta * n + (1.0f - cfg->beta) * u;
                    s[t * A + a] = plan__clip(ws->mean[t * A + a] + u, lo, hi);
                }
            }
        }
        plan_prior_seed(run, N);
        plan_evaluate(run, N);
        if (run->stopped) return;
        float best = -FLT_MAX;
        int arg = 0;
        for (int c = 0; c < N; c++)
            if (ws->score[c] > best) best = ws->score[arg = c];
        plan__note_best(run, arg);
        double wsum = 0.0;
        for (size_t j = 0; j < seq; j++) ws->sd[j] = 0.0f;
        for (int c = 0; c < N; c++) {
            double w = exp((double)cfg->kappa * ((double)ws->score[c] - (double)best));
            if (!(w > 0.0)) continue;
            wsum += w;
            const float *s = plan__cand(ws, c);
            for (size_t j = 0; j < seq; j++) ws->sd[j] += (float)(w * s[j]);
        }
        for (size_t j = 0; j < seq; j++) ws->mean[j] = (float)(ws->sd[j] / wsum);
    }
    plan__finish_with_mean(run);
}

/* Coloured noise table for exponent beta: x_t = sum_k amp_k (g_k cos(2 pi k
 * t / H) + h_k sin(...)), amp_k ~ f_k^(-beta/2) with f_0 clamped to f_1 (as
 * the `colorednoise` package does), the DC and Nyquist terms halved in power
 * so that beta = 0 is exactly white, normalised to unit variance per step. */
void plan_cn_table(mb_plan_ws *ws, float beta) {
    if (ws->cn_beta == beta) return;
    int H = ws->horizon, K = ws->n_freq;
    double norm = 0.0;
    for (int k = 0; k < K; k++) {
        double f = (double)(k > 0 ? k : 1) / H;
        double w = (k == 0 || 2 * k == H) ? 0.5 : 1.0;
        norm += w * pow(f, -beta);
    }
    for (int k = 0; k < K; k++) {
        double f = (double)(k > 0 ? k : 1) / H;
        double w = (k == 0 || 2 * k == H) ? 0.5 : 1.0;
        double amp = sqrt(w * pow(f, -beta) / norm);
        int has_sin = !(k == 0 || 2 * k == H);
        for (int t = 0; t < H; t++) {
            double ph = 2.0 * M_PI * (double)k * t / H;
            ws->cn_cos[(size_t)k * H + t] = (float)(amp * cos(ph));
            ws->cn_sin[(size_t)k * H + t] = has_sin ? (float)(amp * sin(ph)) : 0.0f;
        }
    }
    ws->cn_beta = beta;
}

/* out (H): one unit-variance coloured-noise sequence. */
void plan_cn_sample(mb_plan_ws *ws, plan_gen *g, float *out) {
    int H = ws->horizon, K = ws->n_freq;
    for (int k = 0; k < 2 * K; k++) ws->cn_g[k] = plan_normal(g, ws);
    for (int t = 0; t < H; t++) out[t] = 0.0f;
    for (int k = 0; k < K; k++) {
        float gc = ws->cn_g[2 * k], gs = ws->cn_g[2 * k + 1];
        const float *cs = ws->cn_cos + (size_t)k * H, *sn = ws->cn_sin + (size_t)k * H;
        for (int t = 0; t < H; t++) out[t] += gc * cs[t] + gs * sn[t];
    }
}

/* iCEM's population in iteration it: N_0 = N, N_i = max(2K, int(N_{i-1} /
 * decay)), capped at N (the workspace's size; only when 2K > N). This is
 * the paper's code (martius-lab/iCEM, controllers/icem.py), which truncates
 * at every step; the paper's formula max(N decay^-i, 2K) truncated once can
 * be one larger. */
int plan_icem_population(const mb_planner_cfg *cfg, int it) {
    int N = cfg->population, K = cfg->elites, n = N;
    for (int i = 1; i <= it; i++) {
        n = (int)((double)n / (double)cfg->pop_decay);
        if (n < 2 * K) n = 2 * K;
    }
    return n > N ? N : n;
}

/* c's sequence: ws->mean + ws->var (the std) * coloured noise, clipped to
 * the bounds (iCEM clips; it does not truncate or resample). Every action
 * dimension draws its own whole sequence of H steps. */
static void plan__icem_sample(plan_run *run, plan_gen *g, float *s) {
    mb_plan_ws *ws = run->ws;
    int H = ws->horizon, A = ws->act_dim;
    for (int a = 0; a < A; a++) {
        plan_cn_sample(ws, g, ws->cn_out);
        float lo = run->dyn->act_low[a], hi = run->dyn->act_high[a];
        for (int t = 0; t < H; t++) {
            int j = t * A + a;
            s[j] = plan__clip(ws->mean[j] + ws->var[j] * ws->cn_out[t], lo, hi);
        }
    }
}

/* The previous call's kept elites, shifted by the caller: their new last
 * step is drawn from this call's distribution (the last step of a sampled
 * sequence), as the paper's code does (elites_2_action_sequences). */
static void plan__icem_shifted(plan_run *run, plan_gen *g, const float *src, float *s) {
    mb_plan_ws *ws = run->ws;
    int H = ws->horizon, A = ws->act_dim;
    memcpy(s, src, (size_t)H * (size_t)A * sizeof(float));
    for (int a = 0; a < A; a++) {
        plan_cn_sample(ws, g, ws->cn_out);
        float lo = run->dyn->act_low[a], hi = run->dyn->act_high[a];
        int j = (H - 1) * A + a;
        s[j] = plan__clip(ws->mean[j] + ws->var[j] * ws->cn_out[H - 1], lo, hi);
        for (int t = 0; t < H - 1; t++) s[t * A + a] = plan__clip(s[t * A + a], lo, hi);
    }
}

/* iCEM as the paper's code runs it (Pinneri et al. 2020; martius-lab/iCEM,
 * controllers/icem.py, MpcICem.get_action):
 *   - the mean: warm, the previous plan's mean shifted by the caller, its new
 *     last step repeating the one before (the code keeps the last action);
 *     cold, the middle of the bounds. The std: init_std * half the range at
 *     every call (not carried over). ws->var holds the std.
 *   - iteration i samples plan_icem_population(i) sequences of coloured
 *     noise (exponent noise_beta, along time, per action dimension), mean +
 *     std * noise, clipped to the bounds;
 *   - iteration 0 adds the previous call's kept elites, shifted, their last
 *     step sampled (evaluated like the samples); iteration i > 0 adds the
 *     best int(keep_elites * K) of the previous iteration's elites with the
 *     scores they had (not evaluated again);
 *   - the last iteration's first sample is replaced by the mean;
 *   - the K best of all refit the mean and std (ddof 0) with momentum alpha;
 *   - the plan is the best candidate of the last iteration (ranked among the
 *     kept elites, so with any kept it is the best score seen). */
static void plan__icem(plan_run *run, int warm) {
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    int H = ws->horizon, A = ws->act_dim, K = cfg->elites;
    size_t seq = (size_t)H * A;
    int n_keep = ws->max_kept;
    plan__init_mean(ws, run->dyn, run->state, warm);
    if (warm && H >= 2)
        for (int a = 0; a < A; a++) ws->mean[(H - 1) * A + a] = ws->mean[(H - 2) * A + a];
    for (int t = 0; t < H; t++)
        for (int a = 0; a < A; a++)
            ws->var[t * A + a] = cfg->init_std * 0.5f * (run->dyn->act_high[a] - run->dyn->act_low[a]);
    plan_cn_table(ws, cfg->noise_beta);
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    /* Kept elites from the previous call (already shifted by the caller). */
    int n_shifted = 0;
    if (warm && run->state->kept) {
        n_shifted = run->state->n_kept < n_keep ? run->state->n_kept : n_keep;
        memcpy(ws->keep, run->state->kept, (size_t)n_shifted * seq * sizeof(float));
    }
    ws->n_keep = 0;
    for (int it = 0; it < cfg->iterations; it++) {
        int N = plan_icem_population(cfg, it);
        for (int c = 0; c < N; c++) plan__icem_sample(run, &g, plan__cand(ws, c));
        plan_prior_seed(run, N);
        if (it == cfg->iterations - 1) memcpy(plan__cand(ws, 0), ws->mean, seq * sizeof(float));
        int n_eval = N;
        if (it == 0)
            for (int k = 0; k < n_shifted; k++)
                plan__icem_shifted(run, &g, ws->keep + (size_t)k * seq, plan__cand(ws, n_eval++));
        plan_evaluate(run, n_eval);
        if (run->stopped) { /* the best so far: the previous iteration's first kept elite */
            if (ws->n_keep > 0) {
                memcpy(ws->best, ws->keep, seq * sizeof(float));
                run->ret_mean = ws->keep_score[n_keep];
                run->ret_std = ws->keep_score[2 * n_keep];
                run->have_best = 1;
            }
            break;
        }
        /* the previous iteration's best elites, with their scores */
        int total = n_eval;
        for (int k = 0; it > 0 && k < ws->n_keep; k++, total++) {
            memcpy(plan__cand(ws, total), ws->keep + (size_t)k * seq, seq * sizeof(float));
            ws->score[total] = ws->keep_score[k];
            ws->ret_mean[total] = ws->keep_score[n_keep + k];
            ws->ret_std[total] = ws->keep_score[2 * n_keep + k];
        }
        plan__sort(ws->score, ws->order, total);
        int ne = K < total ? K : total;
        /* Copied out before the next iteration overwrites the candidates. */
        ws->n_keep = n_keep < ne ? n_keep : ne;
        for (int k = 0; k < ws->n_keep; k++) {
            int c = ws->order[k];
            memcpy(ws->keep + (size_t)k * seq, plan__cand(ws, c), seq * sizeof(float));
            ws->keep_score[k] = ws->score[c];
            ws->keep_score[n_keep + k] = ws->ret_mean[c];
            ws->keep_score[2 * n_keep + k] = ws->ret_std[c];
        }
        if (it == cfg->iterations - 1) {
            int b = ws->order[0];
            memcpy(ws->best, plan__cand(ws, b), seq * sizeof(float));
            run->ret_mean = ws->ret_mean[b];
            run->ret_std = ws->ret_std[b];
            run->have_best = 1;
        }
        plan__refit(ws, ne, cfg->alpha, 1);
    }
}

/* ---- the call ------------------------------------------------------------- */

mb_status mb_plan(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                  const float *obs, mb_plan_state *state, mb_rng *rng, mb_plan_ws *ws,
                  mb_pool *pool, float *action, float *plan, mb_plan_info *info,
                  char *err, size_t err_sz) {
    return mb_plan_ex(cfg, dyn, rw, obs, state, rng, ws, pool, NULL, action, plan, info, err, err_sz);
}

mb_status mb_plan_ex(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                     const float *obs, mb_plan_state *state, mb_rng *rng, mb_plan_ws *ws,
                     mb_pool *pool, const mb_plan_ctl *ctl, float *action, float *plan,
                     mb_plan_info *info, char *err, size_t err_sz) {
    if (!cfg || !dyn || !obs || !rng || !ws || !action)
        return mb_fail(err, err_sz, MB_EINVAL, "plan: NULL argument");
    if (!dyn->ens == !dyn->known)
        return mb_fail(err, err_sz, MB_EINVAL, "plan: set exactly one of dynamics.ens / .known");
    if (!dyn->act_low || !dyn->act_high)
        return mb_fail(err, err_sz, MB_EINVAL, "plan: action bounds are NULL");
    int members = dyn->ens ? dyn->ens->spec.members : 0;
    mb_status st = mb_planner_cfg_check(cfg, members, err, err_sz);
    if (st) return st;
    if ((st = plan_methods_check_dyn(cfg, dyn, err, err_sz))) return st;
    if (dyn->ens) {
        if (dyn->ens->spec.obs_dim != dyn->obs_dim || dyn->ens->spec.act_dim != dyn->act_dim)
            return mb_fail(err, err_sz, MB_EINVAL, "plan: dynamics dims do not match the ensemble");
    } else if (dyn->known->obs_dim != dyn->obs_dim || dyn->known->act_dim != dyn->act_dim) {
        return mb_fail(err, err_sz, MB_EINVAL, "plan: dynamics dims do not match the known model");
    }
    if (!mb_plan_ws_fits(ws, cfg, dyn))
        return mb_fail(err, err_sz, MB_ESTATE, "plan: workspace was made for other sizes");
    for (int a = 0; a < dyn->act_dim; a++)
        if (!isfinite(dyn->act_low[a]) || !isfinite(dyn->act_high[a]) ||
            !(dyn->act_low[a] <= dyn->act_high[a]))
            return mb_fail(err, err_sz, MB_EINVAL, "plan: action bounds [%d] invalid", a);
    mb_reward_spec rw_default;
    if (!rw) {
        mb_reward_spec_default(&rw_default);
        rw = &rw_default;
    }
    if ((st = mb_reward_spec_check(rw, dyn->obs_dim, dyn->act_dim, err, err_sz))) return st;
    if (rw->use_learned && dyn->ens && !dyn->ens->spec.learn_reward)
        return mb_fail(err, err_sz, MB_EINVAL,
                       "plan: the reward uses the learned head but the ensemble has none");
    for (int i = 0; i < dyn->obs_dim; i++)
        if (!isfinite(obs[i])) return mb_fail(err, err_sz, MB_EINVAL, "obs[%d] is not finite", i);
    int k = members;
    const int *member_list = NULL;
    if (dyn->ens && cfg->elites_only) {
        if (dyn->ens->n_elites < 1 || dyn->ens->n_elites > members)
            return mb_fail(err, err_sz, MB_ESTATE, "plan: ensemble has no elites");
        k = dyn->ens->n_elites;
        member_list = dyn->ens->elites;
    }
    /* A state made for another horizon or action size is ignored (cold
     * start) and left untouched. */
    int state_ok = state && state->mean && state->horizon == cfg->horizon &&
                   state->act_dim == dyn->act_dim;
    int warm = state_ok && state->valid;

    /* bf16: the version's packed copy, made once (the first bf16 plan of a
     * version allocates it); without AVX512_BF16 the plan runs in fp32 */
    if (dyn->ens && cfg->precision == MB_PREC_BF16) (void)mb_ensemble_bf16_prepare(dyn->ens, NULL, 0);
    if (cfg->terminal_value && !dyn->value)
        return mb_fail(err, err_sz, MB_ESTATE, "plan: terminal_value needs a value network");
    if (cfg->policy_samples > 0 && !dyn->policy)
        return mb_fail(err, err_sz, MB_ESTATE, "plan: policy_samples needs a policy");
    plan_run run = {
        .cfg = cfg, .dyn = dyn, .rw = rw, .obs = obs, .state = state, .ws = ws, .pool = pool,
        .seed = mb_rng_u64(rng), .k = k, .members = member_list, .precision = MB_PREC_FP32,
        .ctl = ctl,
    };
    /* issue 14's methods and discrete actions: their own files (plan_methods.h) */
    int by_method = plan_methods_handles(cfg, dyn);
    if (!by_method && cfg->policy_samples > 0) plan_prior_rollout(&run);
    if (by_method) plan_methods_run(&run, warm);
    else switch (cfg->method) {
    case MB_PLAN_RANDOM: plan__random(&run); break;
    case MB_PLAN_CEM: plan__cem(&run, warm); break;
    case MB_PLAN_MPPI: plan__mppi(&run, warm); break;
    case MB_PLAN_ICEM: plan__icem(&run, warm); break;
    default: break;
    }

    int H = ws->horizon, A = ws->act_dim;
    size_t seq = (size_t)H * A;
    if (run.stopped && !run.have_best)
        return mb_fail(err, err_sz, MB_ECANCELED,
                       "plan: stopped before any candidate was evaluated (%d of the call's "
                       "evaluations started)", run.n_evals);
    for (int t = 0; t < H; t++)
        for (int a = 0; a < A; a++)
            ws->best[t * A + a] = plan__clip(ws->best[t * A + a], dyn->act_low[a], dyn->act_high[a]);
    /* A diverging model or an overflowing reward makes every score NaN or
     * inf: which candidate "won" is then arbitrary, so there is no plan. The
     * session is not warm-started from it. */
    int finite = isfinite(run.ret_mean) && isfinite(run.ret_std);
    for (size_t i = 0; i < seq && finite; i++) finite = isfinite(ws->best[i]);
    if (!finite) {
        if (state_ok) state->valid = 0;
        return mb_fail(err, err_sz, MB_ESTATE,
                       "plan: the predicted return is not finite (%g): the model diverged or the reward "
                       "overflows; retrain the model or scale the reward", (double)run.ret_mean);
    }
    memcpy(action, ws->best, (size_t)A * sizeof(float));
    if (plan) memcpy(plan, ws->best, seq * sizeof(float));
    if (state_ok) {
        memcpy(state->mean, cfg->method == MB_PLAN_RANDOM ? ws->best : ws->mean, seq * sizeof(float));
        state->n_kept = 0;
        if (cfg->method == MB_PLAN_ICEM && state->kept) {
            int nk = ws->n_keep < state->max_kept ? ws->n_keep : state->max_kept;
            memcpy(state->kept, ws->keep, (size_t)nk * seq * sizeof(float));
            state->n_kept = nk;
        }
        state->valid = 1;
    }
    if (info) {
        info->predicted_return = run.ret_mean; /* finite: checked above */
        info->return_std = run.ret_std;
        info->model_rows = run.model_rows;
        info->flops = dyn->ens ? run.model_rows * mb_ensemble_flops_per_row(&dyn->ens->spec) : 0.0;
        info->precision = run.precision;
        info->truncated = run.stopped;
    }
    return MB_OK;
}
