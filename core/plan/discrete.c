/* discrete.c: random shooting and CEM over discrete actions (dynamics with
 * `discrete` = K > 0; the seam is plan_methods.h).
 *
 * A sequence is H one-hot rows of width K (what the ensemble takes).
 *   random: N sequences of uniform actions; the best scored one is the plan.
 *   CEM: a categorical distribution per step, p (H, K) in ws->mean (so the
 *     session's warm start carries it; a shifted-in last step, filled with
 *     the bounds' middle 0.5, normalises to uniform). Each iteration samples
 *     N sequences, scores them (plan_evaluate), and refits
 *       p <- alpha p + (1 - alpha) (frequency of each action among the elites),
 *     the smoothing that keeps an action the elites did not pick alive for
 *     the next iteration. The plan is the better of the final mode (argmax
 *     per step, evaluated once) and the best sequence sampled.
 * The deadline (mb_plan_ctl.stop, polled inside plan_evaluate): a cut
 * evaluation is void; random then has no answer (MB_ECANCELED), CEM
 * answers the best sequence of the iterations that finished (none before
 * the first: MB_ECANCELED).
 * Not for: continuous actions (planner.c). */
#include <float.h>
#include <string.h>

#include "plan/plan_methods.h"

static float *disc__cand(mb_plan_ws *ws, int c) {
    return ws->cand + (size_t)c * (size_t)ws->horizon * (size_t)ws->act_dim;
}

/* Ranks 0..n-1 by score, best first, into ws->order (selection of the top
 * `top` is enough; n is small against the rollouts). */
static void disc__top(mb_plan_ws *ws, int n, int top) {
    for (int i = 0; i < n; i++) ws->order[i] = i;
    for (int i = 0; i < top && i < n; i++) {
        int b = i;
        for (int j = i + 1; j < n; j++) {
            int cj = ws->order[j], cb = ws->order[b];
            if (ws->score[cj] > ws->score[cb] || (ws->score[cj] == ws->score[cb] && cj < cb)) b = j;
        }
        int t = ws->order[i];
        ws->order[i] = ws->order[b];
        ws->order[b] = t;
    }
}

/* One row: action k drawn from p (K), written one-hot into row. */
static void disc__sample_row(plan_gen *g, const float *p, int K, float *row) {
    float u = plan_uniform(g), c = 0.0f;
    int k = K - 1;
    for (int i = 0; i < K; i++) {
        c += p[i];
        if (u < c) {
            k = i;
            break;
        }
    }
    for (int i = 0; i < K; i++) row[i] = (float)(i == k);
}

void plan_discrete_random(plan_run *run) {
    mb_plan_ws *ws = run->ws;
    int N = run->cfg->population, H = ws->horizon, K = ws->act_dim;
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    for (int c = 0; c < N; c++) {
        float *s = disc__cand(ws, c);
        for (int t = 0; t < H; t++) {
            int k = (int)(((plan_u64(&g) >> 32) * (uint64_t)K) >> 32);
            for (int i = 0; i < K; i++) s[t * K + i] = (float)(i == k);
        }
    }
    plan_evaluate(run, N);
    if (run->stopped) return; /* its only evaluation was cut: no answer */
    disc__top(ws, N, 1);
    int b = ws->order[0];
    memcpy(ws->best, disc__cand(ws, b), (size_t)H * K * sizeof(float));
    memcpy(ws->mean, ws->best, (size_t)H * K * sizeof(float));
    run->ret_mean = ws->ret_mean[b];
    run->ret_std = ws->ret_std[b];
    run->have_best = 1;
}

void plan_discrete_cem(plan_run *run, int warm) {
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    int N = cfg->population, H = ws->horizon, K = ws->act_dim, E = cfg->elites;
    size_t seq = (size_t)H * K;
    float *p = ws->mean;
    for (int t = 0; t < H; t++) {
        float sum = 0.0f;
        for (int i = 0; i < K; i++) {
            float v = warm ? run->state->mean[t * K + i] : 1.0f;
            p[t * K + i] = v > 0.0f ? v : 0.0f;
            sum += p[t * K + i];
        }
        for (int i = 0; i < K; i++) p[t * K + i] = sum > 0.0f ? p[t * K + i] / sum : 1.0f / K;
    }
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    float best_score = -FLT_MAX, best_mean = 0.0f, best_std = 0.0f;
    for (int it = 0; it < cfg->iterations; it++) {
        for (int c = 0; c < N; c++) {
            float *s = disc__cand(ws, c);
            for (int t = 0; t < H; t++) disc__sample_row(&g, p + t * K, K, s + t * K);
        }
        plan_evaluate(run, N);
        if (run->stopped) break; /* void: the iterations before answer */
        disc__top(ws, N, E);
        int b = ws->order[0];
        run->have_best = 1;
        if (it == 0 || ws->score[b] > best_score) {
            best_score = ws->score[b];
            best_mean = ws->ret_mean[b];
            best_std = ws->ret_std[b];
            memcpy(ws->best, disc__cand(ws, b), seq * sizeof(float));
        }
        for (size_t j = 0; j < seq; j++) {
            double f = 0.0;
            for (int e = 0; e < E; e++) f += disc__cand(ws, ws->order[e])[j];
            p[j] = (float)(cfg->alpha * p[j] + (1.0 - cfg->alpha) * f / E);
        }
    }
    /* the mode, evaluated as candidate 0 (the best sequence is in ws->best) */
    float *m = disc__cand(ws, 0);
    for (int t = 0; t < H; t++) {
        int k = 0;
        for (int i = 1; i < K; i++)
            if (p[t * K + i] > p[t * K + k]) k = i;
        for (int i = 0; i < K; i++) m[t * K + i] = (float)(i == k);
    }
    plan_evaluate(run, 1);
    if (run->stopped) { /* the best sequence sampled, if an iteration finished */
        run->ret_mean = best_mean;
        run->ret_std = best_std;
        return;
    }
    if (ws->score[0] >= best_score) {
        memcpy(ws->best, m, seq * sizeof(float));
        run->ret_mean = ws->ret_mean[0];
        run->ret_std = ws->ret_std[0];
    } else {
        run->ret_mean = best_mean;
        run->ret_std = best_std;
    }
}
