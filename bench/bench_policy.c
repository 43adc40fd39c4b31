/* bench_policy.c: `mbrld-bench policy [--acts N] [--seconds S] [--updates N]`:
 * what a learned policy costs to act with and to train.
 *
 * Starts the daemon in this process (libmbserver.a, 127.0.0.1, a free port,
 * memory only) with a Pendulum-v1 model (obs 3, act 1; ensemble 5 x (2 x
 * 64 SiLU)) whose spec has the default policy, 2 x 256 ReLU; posts
 * 2,000 transitions of the true pendulum from states spread over its state
 * space, trains the ensemble 5 epochs and the policy 5 MBPO steps. Then:
 *  - act latency: N sequential acts with "planner": {"method": "policy"}
 *    over one keep-alive connection: the client's wall time and the daemon's
 *    own time (plan_ms: parse-to-answer of the policy's forward), p50/p99;
 *  - act throughput: 1, 2, 8 and 64 clients (threads, one keep-alive
 *    connection each) for S seconds: acts/s;
 *  - SAC updates/s in-process (mb_sac_update, batch 256, the 256 x 256
 *    networks, a pool of 2 as a job has with --train-threads 2) and GFLOP/s
 *    (mb_sac_flops_per_update) with the ratio to the same-run FMA peak;
 *  - BPTT: ||dJ/dtheta|| and the mean ||dJ/ds_0|| through the trained
 *    ensemble for H = 1, 2, 5, 10, 20, 50, 100 (the untrained policy, 256
 *    start states from the buffer): how the gradient grows or vanishes
 *    with the horizon.
 * Human table first, then one JSON line per result.
 * Not for: assertions (tests never assert on time). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "bench.h"
#include "bench_http.h"
#include "learn/bptt.h"

int bench_policy(int argc, char **argv) {
    int n_acts = 2000, n_updates = 200;
    double seconds = 3.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--acts") && i + 1 < argc) n_acts = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--updates") && i + 1 < argc) n_updates = atoi(argv[++i]);
        else {
            printf("usage: mbrld-bench policy [--acts N (2000)] [--seconds S per client count (3)] "
                   "[--updates N SAC updates timed (200)]\n");
            return strcmp(argv[i], "--help") ? 1 : 0;
        }
    }
    if (n_acts < 10) n_acts = 10;
    if (n_updates < 10) n_updates = 10;
    static bench_http_daemon d;
    srv_config cfg;
    bench_http_config(&cfg, "warn");
    cfg.threads = 16;
    if (bench_http_start(&d, &cfg, "policy") != 0) return 1;
    char err[512], url[160];
    const char *base = d.base;
    CURL *c = bench_http_handle(d.hdr, 300);
    bench_http_buf b = {0};
    int rc = 1;
    double *lat = malloc(sizeof(double) * n_acts), *dm = malloc(sizeof(double) * n_acts);
    char *rows = malloc(2000 * 200 + 128);
    snprintf(url, sizeof url, "%s/v1/models", base);
    const char *create =
        "{\"name\": \"pend\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], "
        "\"ensemble\": {\"members\": 5, \"hidden\": [64, 64]}, \"policy\": {\"algorithm\": \"mbpo\", "
        "\"hidden\": [256, 256]}, \"seed\": 1}";
    if (!c || !lat || !dm || !rows || bench_http_post(c, url, create, &b) != 201) {
        fprintf(stderr, "policy: cannot create the model: %s\n", b.p ? b.p : "");
        goto out;
    }
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    const mb_known_model *km = &mb_known_pendulum;
    size_t len = (size_t)sprintf(rows, "{\"transitions\": [");
    for (int i = 0; i < 2000; i++) {
        double th = (2 * mb_rng_uniform(&rng) - 1) * M_PI, thd = (2 * mb_rng_uniform(&rng) - 1) * 8;
        float o[3] = {(float)cos(th), (float)sin(th), (float)thd}, a = (float)(4 * mb_rng_uniform(&rng) - 2), nx[3], rw;
        km->step(1, o, &a, nx, &rw);
        len += (size_t)sprintf(rows + len, "%s{\"obs\": [%.6f,%.6f,%.6f], \"action\": [%.6f], \"reward\": %.6f, "
                               "\"next_obs\": [%.6f,%.6f,%.6f]}", i ? "," : "", o[0], o[1], o[2], a, rw, nx[0], nx[1], nx[2]);
    }
    sprintf(rows + len, "]}");
    snprintf(url, sizeof url, "%s/v1/models/pend/transitions", base);
    if (bench_http_post(c, url, rows, &b) != 201) {
        fprintf(stderr, "policy: cannot post transitions: %s\n", b.p ? b.p : "");
        goto out;
    }
    snprintf(url, sizeof url, "%s/v1/models/pend/train", base);
    if (bench_http_post(c, url, "{\"max_epochs\": 5, \"wait\": true}", &b) != 200) {
        fprintf(stderr, "policy: cannot train: %s\n", b.p ? b.p : "");
        goto out;
    }
    snprintf(url, sizeof url, "%s/v1/models/pend/policy/train", base);
    if (bench_http_post(c, url, "{\"steps\": 5, \"wait\": true}", &b) != 200) {
        fprintf(stderr, "policy: cannot train the policy: %s\n", b.p ? b.p : "");
        goto out;
    }

    /* act latency, one keep-alive connection */
    const char *act = "{\"obs\": [0.6, 0.8, -1.5], \"planner\": {\"method\": \"policy\"}}";
    snprintf(url, sizeof url, "%s/v1/models/pend/act", base);
    for (int i = -20; i < n_acts; i++) {
        double t0 = bench_now();
        if (bench_http_post(c, url, act, &b) != 200 || !strstr(b.p, "\"source\":\"policy\"")) {
            fprintf(stderr, "policy: act failed: %s\n", b.p ? b.p : "");
            goto out;
        }
        double dt = bench_now() - t0;
        const char *pm = strstr(b.p, "\"plan_ms\":");
        if (i >= 0) lat[i] = dt * 1e3, dm[i] = pm ? atof(pm + 10) : 0;
    }
    double lat50 = bench_percentile(lat, n_acts, 0.5), lat99 = bench_percentile(lat, n_acts, 0.99);
    double dm50 = bench_percentile(dm, n_acts, 0.5), dm99 = bench_percentile(dm, n_acts, 0.99);
    printf("act with \"method\": \"policy\" (2 x 256 ReLU), %d sequential acts on one keep-alive connection\n", n_acts);
    printf("  %-34s %10s %10s\n", "", "p50 ms", "p99 ms");
    printf("  %-34s %10.4f %10.4f\n", "client wall time", lat50, lat99);
    printf("  %-34s %10.4f %10.4f\n", "daemon-side (plan_ms)", dm50, dm99);

    int counts[4] = {1, 2, 8, 64};
    double tput[4];
    long errors[4];
    printf("\nact throughput with \"method\": \"policy\", %.1f s per client count\n", seconds);
    printf("  %-10s %12s %10s\n", "clients", "acts/s", "errors");
    for (int k = 0; k < 4; k++) {
        int n = counts[k];
        tput[k] = bench_http_closed_loop(url, act, d.hdr, 300, n, seconds, &errors[k]);
        if (tput[k] < 0) {
            fprintf(stderr, "policy: cannot start %d clients\n", n);
            goto out;
        }
        printf("  %-10d %12.1f %10ld\n", n, tput[k], errors[k]);
    }

    /* SAC updates in-process, on the model's policy agent (a copy) */
    srv_model *m = registry_get(&d.app.reg, "pend");
    srv_policy *pol = model_policy_get(m);
    srv_version *v = model_version_get(m);
    mb_sac ag;
    mb_sac_cfg sc = m->spec.policy.mbpo.sac;
    mb_pool *pool = mb_pool_new(2);
    mb_sac_copy(&ag, &pol->agent, err, sizeof err);
    mb_sac_ws *sws = mb_sac_ws_new(&ag, &sc, mb_pool_size(pool));
    mb_sac_batch *bt = mb_sac_ws_batch(sws);
    for (size_t i = 0; i < bt->n; i++) {
        size_t s = mb_buffer_slot(&m->buf, (size_t)mb_rng_below(&rng, m->buf.size));
        memcpy(bt->obs + 3 * i, m->buf.obs + 3 * s, 3 * sizeof(float));
        memcpy(bt->next_obs + 3 * i, m->buf.next_obs + 3 * s, 3 * sizeof(float));
        bt->act[i] = m->buf.act[s];
        bt->rew[i] = m->buf.rew[s];
        bt->done[i] = 0;
    }
    for (int i = 0; i < 5; i++) mb_sac_update(&ag, &sc, sws, &rng, pool, NULL, err, sizeof err);
    double t0 = bench_now();
    for (int i = 0; i < n_updates; i++) mb_sac_update(&ag, &sc, sws, &rng, pool, NULL, err, sizeof err);
    double ups = n_updates / (bench_now() - t0);
    double upd_flops = mb_sac_flops_per_update(&ag, &sc);
    bench_peak pk;
    bench_peak_measure(&pk, 0);
    printf("\n");
    bench_peak_print(stdout, &pk, "(all cores)");
    double sac_gflops = ups * upd_flops * 1e-9;
    double sac_ratio = bench_ratio(sac_gflops, &pk, "policy: SAC updates");
    printf("SAC (2 x 256 ReLU, batch 256, pool of 2): %.1f updates/s, %.3f GFLOP per update, %.1f GFLOP/s, %.2f of peak\n",
           ups, upd_flops * 1e-9, sac_gflops, sac_ratio);
    mb_sac_ws_free(sws);

    /* BPTT gradient norms against the horizon */
    int Hs[7] = {1, 2, 5, 10, 20, 50, 100};
    double gn[7], sn[7], jr[7];
    mb_dynamics dyn = {.ens = &v->ens, .obs_dim = 3, .act_dim = 1, .act_low = m->spec.act_low,
                       .act_high = m->spec.act_high};
    float *obs0 = malloc(256 * 3 * sizeof(float)), *grad = malloc(ag.pi.n_params * sizeof(float));
    for (int i = 0; i < 256; i++) {
        size_t s = mb_buffer_slot(&m->buf, (size_t)mb_rng_below(&rng, m->buf.size));
        memcpy(obs0 + 3 * i, m->buf.obs + 3 * s, 3 * sizeof(float));
    }
    mb_policy fresh;
    mb_policy_init(&fresh, &ag.pi.spec, 11, err, sizeof err);
    printf("\nBPTT through the ensemble's elite mean (untrained 2 x 256 policy, 256 starts, gamma 0.99)\n");
    printf("  %-6s %14s %16s %12s\n", "H", "||dJ/dtheta||", "mean ||dJ/ds0||", "J");
    for (int k = 0; k < 7; k++) {
        mb_bptt_cfg bc;
        mb_bptt_cfg_default(&bc);
        bc.horizon = Hs[k];
        mb_bptt_ws *bw = mb_bptt_ws_new(&bc, &fresh, NULL, &dyn);
        mb_bptt_stats st = {0};
        if (!bw || mb_bptt_grad(&fresh, NULL, &bc, &dyn, &m->spec.reward, obs0, 256, bw, grad, &st, err, sizeof err) != MB_OK)
            fprintf(stderr, "policy: bptt H %d: %s\n", Hs[k], err);
        gn[k] = st.grad_norm;
        sn[k] = st.obs_grad_norm;
        jr[k] = st.ret;
        printf("  %-6d %14.4g %16.4g %12.4g\n", Hs[k], gn[k], sn[k], jr[k]);
        mb_bptt_ws_free(bw);
    }
    mb_policy_free(&fresh);
    free(obs0);
    free(grad);
    mb_sac_free(&ag);
    mb_pool_free(pool);
    model_version_put(v);
    model_policy_put(pol);
    model_put(m);

    printf("{\"bench\": \"policy\", \"metric\": \"act_latency\", \"acts\": %d, \"client_p50_ms\": %.4f, "
           "\"client_p99_ms\": %.4f, \"daemon_p50_ms\": %.4f, \"daemon_p99_ms\": %.4f}\n",
           n_acts, lat50, lat99, dm50, dm99);
    for (int k = 0; k < 4; k++)
        printf("{\"bench\": \"policy\", \"metric\": \"act_throughput\", \"clients\": %d, \"seconds\": %.1f, "
               "\"acts_per_s\": %.1f, \"errors\": %ld}\n", counts[k], seconds, tput[k], errors[k]);
    printf("{\"bench\": \"policy\", \"metric\": \"sac_updates\", \"hidden\": [256, 256], \"batch\": %d, "
           "\"updates_per_s\": %.2f, \"gflop_per_update\": %.4f, \"gflops\": %.1f, \"peak_gflops\": %.1f, "
           "\"peak_isa\": \"%s\", \"ratio_to_peak\": %.3f}\n",
           sc.batch_size, ups, upd_flops * 1e-9, sac_gflops, pk.gflops, pk.isa, sac_ratio);
    for (int k = 0; k < 7; k++)
        printf("{\"bench\": \"policy\", \"metric\": \"bptt_grad_norm\", \"horizon\": %d, \"grad_norm\": %.6g, "
               "\"obs_grad_norm\": %.6g, \"model_return\": %.6g}\n", Hs[k], gn[k], sn[k], jr[k]);
    rc = 0;
out:
    free(b.p);
    free(lat), free(dm), free(rows);
    if (c) curl_easy_cleanup(c);
    bench_http_stop(&d);
    return rc;
}
