/* bench_serve.c: `mbrld-bench serve [--acts N] [--seconds S]`: what HTTP
 * adds to an act, and act throughput under concurrent clients.
 *
 * Starts the daemon in this process (libmbserver.a: app_init + app_start on
 * 127.0.0.1, a free port, memory only), creates a model with DESIGN.md's
 * `small` preset (obs 18, act 6, 5 x (2 x 64 SiLU), CEM H 15, N 200,
 * elites 20, 3 iterations, P 20, TS-inf), posts 2,000 random transitions and
 * trains 2 epochs. Then:
 *  - latency: N sequential acts over one keep-alive connection; per act the
 *    client's wall time minus the plan time the daemon reports (plan_ms) is
 *    the HTTP + JSON overhead (p50, p99), and the same plan is timed
 *    in-process (mb_plan on the model's published version, same workspace
 *    kind and pool) for comparison;
 *  - throughput: 1, 8, 16 and 64 clients (threads, one keep-alive connection
 *    each) acting for S seconds each; acts/s answered, and as GFLOP/s
 *    (acts/s x mb_plan_flops of the model's planner) with the ratio to the
 *    same-run FMA peak of the widest vector width (bench.h).
 * Human table first, then one JSON line per result.
 * Not for: assertions (tests never assert on time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "bench.h"
#include "bench_http.h"
#include "plan/flops.h"

int bench_serve(int argc, char **argv) {
    int n_acts = 200;
    double seconds = 3.0;
    long max_batch = -1, workers = -1, threads = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--acts") && i + 1 < argc) n_acts = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--max-batch") && i + 1 < argc) max_batch = atol(argv[++i]);
        else if (!strcmp(argv[i], "--plan-workers") && i + 1 < argc) workers = atol(argv[++i]);
        else if (!strcmp(argv[i], "--plan-threads") && i + 1 < argc) threads = atol(argv[++i]);
        else {
            printf("usage: mbrld-bench serve [--acts N (200)] [--seconds S per client count (3)] "
                   "[--max-batch N] [--plan-workers N] [--plan-threads N] (the daemon's, defaults as mbrld's)\n");
            return strcmp(argv[i], "--help") ? 1 : 0;
        }
    }
    if (n_acts < 10) n_acts = 10;
    static bench_http_daemon d;
    srv_config cfg;
    bench_http_config(&cfg, "warn"); /* memory only: this measures HTTP, not the disk */
    cfg.threads = 16;
    if (max_batch > 0) cfg.max_batch = max_batch;
    if (workers > 0) cfg.plan_workers = workers;
    if (threads > 0) cfg.plan_threads = threads;
    if (bench_http_start(&d, &cfg, "serve") != 0) return 1;
    char err[512], url[160];
    const char *base = d.base;
    CURL *c = bench_http_handle(d.hdr, 60);
    bench_http_buf b = {0};
    int rc = 1;
    double *lat = malloc(sizeof(double) * n_acts), *ovh = malloc(sizeof(double) * n_acts);
    double *inproc = malloc(sizeof(double) * n_acts);
    char *rows = malloc(2000 * 400 + 128);

    snprintf(url, sizeof url, "%s/v1/models", base);
    const char *create =
        "{\"name\": \"bench\", \"obs_dim\": 18, \"act_dim\": 6, \"act_low\": [-1,-1,-1,-1,-1,-1], "
        "\"act_high\": [1,1,1,1,1,1], \"ensemble\": {\"members\": 5, \"hidden\": [64, 64], "
        "\"activation\": \"silu\", \"learn_reward\": true}, \"planner\": {\"method\": \"cem\", "
        "\"horizon\": 15, \"population\": 200, \"elites\": 20, \"iterations\": 3, \"particles\": 20, "
        "\"propagation\": \"ts_inf\"}, \"seed\": 1}";
    if (!c || !lat || !ovh || !inproc || !rows || bench_http_post(c, url, create, &b) != 201) {
        fprintf(stderr, "serve: cannot create the model: %s\n", b.p ? b.p : "");
        goto out;
    }
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    size_t len = (size_t)sprintf(rows, "{\"transitions\": [");
    for (int i = 0; i < 2000; i++) {
        len += (size_t)sprintf(rows + len, "%s{\"obs\": [", i ? "," : "");
        for (int k = 0; k < 18; k++) len += (size_t)sprintf(rows + len, "%s%.3f", k ? "," : "", mb_rng_normal(&rng));
        len += (size_t)sprintf(rows + len, "], \"action\": [");
        for (int k = 0; k < 6; k++) len += (size_t)sprintf(rows + len, "%s%.3f", k ? "," : "", mb_rng_uniform(&rng) * 2 - 1);
        len += (size_t)sprintf(rows + len, "], \"reward\": %.3f, \"next_obs\": [", mb_rng_normal(&rng));
        for (int k = 0; k < 18; k++) len += (size_t)sprintf(rows + len, "%s%.3f", k ? "," : "", mb_rng_normal(&rng));
        len += (size_t)sprintf(rows + len, "]}");
    }
    sprintf(rows + len, "]}");
    snprintf(url, sizeof url, "%s/v1/models/bench/transitions", base);
    if (bench_http_post(c, url, rows, &b) != 201) {
        fprintf(stderr, "serve: cannot post transitions: %s\n", b.p ? b.p : "");
        goto out;
    }
    snprintf(url, sizeof url, "%s/v1/models/bench/train", base);
    if (bench_http_post(c, url, "{\"max_epochs\": 2, \"wait\": true}", &b) != 200) {
        fprintf(stderr, "serve: cannot train: %s\n", b.p ? b.p : "");
        goto out;
    }

    /* latency over HTTP, one keep-alive connection */
    const char *act = "{\"obs\": [0.1,-0.2,0.3,0.0,0.5,-0.1,0.2,0.1,0.0,-0.3,0.4,0.1,0.0,0.2,-0.2,0.1,0.3,-0.1]}";
    snprintf(url, sizeof url, "%s/v1/models/bench/act", base);
    for (int i = -3; i < n_acts; i++) { /* 3 warm-up calls */
        double t0 = bench_now();
        if (bench_http_post(c, url, act, &b) != 200) {
            fprintf(stderr, "serve: act failed: %s\n", b.p ? b.p : "");
            goto out;
        }
        double dt = bench_now() - t0;
        const char *pm = strstr(b.p, "\"plan_ms\":");
        double plan_ms = pm ? atof(pm + 10) : 0;
        if (i >= 0) lat[i] = dt * 1e3, ovh[i] = dt * 1e3 - plan_ms;
    }

    /* the same plan in-process: the published version, a pool like a
     * planning worker's (the daemon's workers are idle meanwhile) */
    mb_pool *pool = d.app.cfg.plan_threads > 1 ? mb_pool_new((int)d.app.cfg.plan_threads) : NULL;
    srv_model *m = registry_get(&d.app.reg, "bench");
    srv_version *v = model_version_get(m);
    mb_dynamics dyn = {.ens = &v->ens, .known = NULL, .obs_dim = 18, .act_dim = 6,
                       .act_low = m->spec.act_low, .act_high = m->spec.act_high};
    const double act_flops = mb_plan_flops(&v->ens.spec, &m->spec.planner);
    mb_plan_ws *ws = mb_plan_ws_new(&m->spec.planner, &dyn);
    float obs[18] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f, -0.1f, 0.2f, 0.1f, 0.0f, -0.3f, 0.4f, 0.1f, 0.0f, 0.2f, -0.2f, 0.1f, 0.3f, -0.1f};
    float action[6];
    for (int i = -3; i < n_acts; i++) {
        mb_plan_info info;
        double t0 = bench_now();
        mb_plan(&m->spec.planner, &dyn, &m->spec.reward, obs, NULL, &rng, ws, pool, action,
                NULL, &info, err, sizeof err);
        double dt = bench_now() - t0;
        if (i >= 0) inproc[i] = dt * 1e3;
    }
    mb_plan_ws_free(ws);
    mb_pool_free(pool);
    model_version_put(v);
    model_put(m);

    double lat50 = bench_percentile(lat, n_acts, 0.5), lat99 = bench_percentile(lat, n_acts, 0.99);
    double ovh50 = bench_percentile(ovh, n_acts, 0.5), ovh99 = bench_percentile(ovh, n_acts, 0.99);
    double in50 = bench_percentile(inproc, n_acts, 0.5), in99 = bench_percentile(inproc, n_acts, 0.99);
    printf("act latency, preset small, %d sequential acts on one keep-alive connection\n", n_acts);
    printf("  %-34s %10s %10s\n", "", "p50 ms", "p99 ms");
    printf("  %-34s %10.3f %10.3f\n", "HTTP act (client wall time)", lat50, lat99);
    printf("  %-34s %10.3f %10.3f\n", "same plan in-process (mb_plan)", in50, in99);
    printf("  %-34s %10.3f %10.3f\n", "HTTP + JSON overhead (wall-plan)", ovh50, ovh99);
    /* the peak after the daemon's setup and training, before the load */
    bench_peak pk;
    bench_peak_measure(&pk, 0);
    printf("\n");
    bench_peak_print(stdout, &pk, "(all cores)");
    const double in_gflops = act_flops / (in50 * 1e-3) * 1e-9;
    const double in_ratio = bench_ratio(in_gflops, &pk, "serve: in-process plan (small)");
    printf("  in-process plan p50: %.1f GFLOP/s, %.2f of peak (%.3f GFLOP per act)\n", in_gflops,
           in_ratio, act_flops * 1e-9);

    /* throughput with 1, 8, 16, 64 clients */
    enum { NC = 4 };
    int counts[NC] = {1, 8, 16, 64};
    double tput[NC], gfl[NC], ratio[NC];
    long errors[NC];
    printf("\nact throughput, preset small, %.1f s per client count\n", seconds);
    printf("  %-10s %12s %10s %10s %8s\n", "clients", "acts/s", "errors", "GFLOP/s", "of peak");
    for (int k = 0; k < NC; k++) {
        int n = counts[k];
        tput[k] = bench_http_closed_loop(url, act, d.hdr, 60, n, seconds, &errors[k]);
        if (tput[k] < 0) {
            fprintf(stderr, "serve: cannot start %d clients\n", n);
            goto out;
        }
        gfl[k] = tput[k] * act_flops * 1e-9;
        char what[64];
        snprintf(what, sizeof what, "serve: act throughput, %d clients", n);
        ratio[k] = bench_ratio(gfl[k], &pk, what);
        printf("  %-10d %12.1f %10ld %10.1f %8.2f\n", n, tput[k], errors[k], gfl[k], ratio[k]);
    }
    printf("{\"bench\": \"serve\", \"preset\": \"small\", \"metric\": \"act_latency\", \"acts\": %d, "
           "\"http_p50_ms\": %.3f, \"http_p99_ms\": %.3f, \"inprocess_p50_ms\": %.3f, "
           "\"inprocess_p99_ms\": %.3f, \"overhead_p50_ms\": %.3f, \"overhead_p99_ms\": %.3f, "
           "\"gflop_per_act\": %.4f, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"peak_isa\": \"%s\", "
           "\"ratio_to_peak\": %.3f}\n",
           n_acts, lat50, lat99, in50, in99, ovh50, ovh99, act_flops * 1e-9, in_gflops, pk.gflops,
           pk.isa, in_ratio);
    for (int k = 0; k < NC; k++)
        printf("{\"bench\": \"serve\", \"preset\": \"small\", \"metric\": \"act_throughput\", "
               "\"clients\": %d, \"seconds\": %.1f, \"acts_per_s\": %.2f, \"errors\": %ld, "
               "\"gflops\": %.1f, \"peak_gflops\": %.1f, \"peak_isa\": \"%s\", \"ratio_to_peak\": %.3f}\n",
               counts[k], seconds, tput[k], errors[k], gfl[k], pk.gflops, pk.isa, ratio[k]);
    rc = 0;
out:
    free(b.p);
    free(lat), free(ovh), free(inproc), free(rows);
    if (c) curl_easy_cleanup(c);
    bench_http_stop(&d);
    return rc;
}
