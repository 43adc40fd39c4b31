/* bench_load.c: `mbrld-bench load [--seconds S] [--robots 1,8,64]
 * [--rates 5,10,...] [--no-background] [--max-batch N]`: act latency and throughput under
 * an open-loop load, while a training job runs and transitions stream in.
 *
 * Starts the daemon in this process (libmbserver.a: app_init + app_start on
 * 127.0.0.1, a free port, memory only, the default executor: 1 planning
 * worker x 2 threads, no batching unless --max-batch N), creates a model with DESIGN.md's
 * `small` preset (obs 18, act 6, 5 x (2 x 64 SiLU), CEM H 15, N 200,
 * elites 20, 3 iterations, P 20, TS-inf), posts 2,000 random transitions,
 * trains 2 epochs. Then, unless --no-background: a training job of 100,000
 * epochs runs (one core's worth, --train-threads 1) and 20 transitions are
 * posted every 100 ms, for the whole run.
 *
 * Open loop (so that slow answers are not hidden, unlike a closed loop
 * whose clients wait for each answer): for each robot count R and total
 * rate L (acts/s), act k is due at t0 + k / L from robot k mod R (its own
 * session and observation, deadline_ms 1000), sent at its due time
 * whatever is outstanding (libcurl's multi interface, one thread), and its
 * latency counts from its due time to its answer. Each level runs S
 * seconds, then its outstanding acts are awaited (their deadlines bound
 * that). The ladder of rates stops at the first level where the daemon is
 * saturated (answers below 90% of the rate, or more than 5% errors).
 * Per level: acts due, answered 200 (and truncated), errors by status
 * (429, 503, other, transport), latency p50 / p99 / max, answered GFLOP/s
 * (200s not truncated x mb_plan_flops of the model's planner, over the
 * level's wall time) and its ratio to the FMA peak measured in the same run
 * before the load (bench.h); per robot count, the highest rate whose p99
 * stayed under 50 ms with no errors. Loopback only, bounded in time (about
 * 3 x levels x (S + 1) s). Human table first, then one JSON line per
 * result.
 * Not for: assertions (tests never assert on time). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "bench.h"
#include "bench_http.h"
#include "plan/flops.h"

#define LOAD_MAX_OUT 1024 /* acts outstanding at once (beyond: counted as generator overrun) */
#define LOAD_DEADLINE_MS 1000

/* 20 random transitions of the small preset's shape, as a body. */
static void load__rows(char *b, size_t cap, mb_rng *rng, int n) {
    size_t len = (size_t)snprintf(b, cap, "{\"transitions\": [");
    for (int i = 0; i < n && len < cap; i++) {
        len += (size_t)snprintf(b + len, cap - len, "%s{\"obs\": [", i ? "," : "");
        for (int k = 0; k < 18; k++) len += (size_t)snprintf(b + len, cap - len, "%s%.3f", k ? "," : "", mb_rng_normal(rng));
        len += (size_t)snprintf(b + len, cap - len, "], \"action\": [");
        for (int k = 0; k < 6; k++)
            len += (size_t)snprintf(b + len, cap - len, "%s%.3f", k ? "," : "", mb_rng_uniform(rng) * 2 - 1);
        len += (size_t)snprintf(b + len, cap - len, "], \"reward\": %.3f, \"next_obs\": [", mb_rng_normal(rng));
        for (int k = 0; k < 18; k++) len += (size_t)snprintf(b + len, cap - len, "%s%.3f", k ? "," : "", mb_rng_normal(rng));
        len += (size_t)snprintf(b + len, cap - len, "]}");
    }
    snprintf(b + len, cap > len ? cap - len : 0, "]}");
}

/* The background stream of transitions: 20 rows every 100 ms. */
typedef struct {
    const char *url;
    struct curl_slist *hdr;
    atomic_int stop;
    long posted, failed;
} load_stream;

static void *load__stream_main(void *p) {
    load_stream *s = p;
    CURL *c = bench_http_handle(s->hdr, 120);
    bench_http_buf b = {0};
    char *body = malloc(20 * 400 + 64);
    mb_rng rng;
    mb_rng_seed(&rng, 11);
    while (c && body && !atomic_load(&s->stop)) {
        load__rows(body, 20 * 400 + 64, &rng, 20);
        if (bench_http_post(c, s->url, body, &b) == 201) s->posted += 20;
        else s->failed++;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    free(body);
    free(b.p);
    if (c) curl_easy_cleanup(c);
    return NULL;
}

typedef struct {
    CURL *h;
    double due;
    char body[512];
    bench_http_buf resp;
    int busy;
} load_slot;

typedef struct {
    int robots;
    double rate, seconds, wall;
    long due, ok, truncated, e429, e503, eother, etransport, overrun;
    double p50, p99, max;
    double gflops, ratio;
} load_level;

/* One level: `rate` acts/s from `robots` robots for `seconds`. */
static void load__level(const char *url, load_slot *slots, double *lat, int robots, double rate,
                        double seconds, double act_flops, const bench_peak *pk, load_level *out) {
    memset(out, 0, sizeof *out);
    out->robots = robots;
    out->rate = rate;
    out->seconds = seconds;
    CURLM *m = curl_multi_init();
    int n_lat = 0, running = 0, outstanding = 0;
    long max_lat = (long)(rate * seconds) + 16;
    double t0 = bench_now(), t_end = t0 + seconds, give_up = t_end + LOAD_DEADLINE_MS * 1e-3 + 5.0;
    long k = 0;
    for (;;) {
        double now = bench_now();
        /* start every act that is due */
        while (t0 + (double)k / rate <= now && t0 + (double)k / rate < t_end) {
            double due = t0 + (double)k / rate;
            int r = (int)(k % robots);
            k++;
            out->due++;
            load_slot *s = NULL;
            for (int i = 0; i < LOAD_MAX_OUT && !s; i++)
                if (!slots[i].busy) s = &slots[i];
            if (!s) { /* the generator is out of slots: the daemon is far behind */
                out->overrun++;
                continue;
            }
            s->busy = 1;
            s->due = due;
            snprintf(s->body, sizeof s->body,
                     "{\"obs\": [%.3f, %.3f, 0.1, 0, 0.2, 0, -0.1, 0, 0.3, 0, 0, 0.1, 0, -0.2, 0, 0.1, 0, %.3f], "
                     "\"session\": \"robot-%d\", \"deadline_ms\": %d}",
                     0.01 * (r % 50), -0.02 * (r % 17), 0.001 * (double)(k % 1000), r, LOAD_DEADLINE_MS);
            bench_http_prepare(s->h, url, s->body, &s->resp);
            curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
            curl_multi_add_handle(m, s->h);
            outstanding++;
        }
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            load_slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long st = 0;
            if (msg->data.result == CURLE_OK) curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
            double l = bench_now() - s->due;
            if (n_lat < max_lat) lat[n_lat++] = l;
            if (l > out->max) out->max = l;
            if (st == 200) {
                out->ok++;
                if (s->resp.p && strstr(s->resp.p, "\"truncated\":true")) out->truncated++;
            } else if (st == 429) out->e429++;
            else if (st == 503) out->e503++;
            else if (st == 0) out->etransport++;
            else out->eother++;
            curl_multi_remove_handle(m, msg->easy_handle);
            s->busy = 0;
            outstanding--;
        }
        now = bench_now();
        if (now >= t_end && outstanding == 0) break;
        if (now > give_up) break; /* whatever is left counts as lost */
        double next = t0 + (double)k / rate;
        int wait_ms = next < t_end ? (int)((next - now) * 1e3) : 5;
        if (wait_ms < 0) wait_ms = 0;
        if (wait_ms > 5) wait_ms = 5;
        curl_multi_poll(m, NULL, 0, wait_ms, NULL);
    }
    for (int i = 0; i < LOAD_MAX_OUT; i++)
        if (slots[i].busy) { /* abandoned: lost answers */
            curl_multi_remove_handle(m, slots[i].h);
            slots[i].busy = 0;
            out->etransport++;
        }
    curl_multi_cleanup(m);
    out->wall = bench_now() - t0;
    out->p50 = bench_percentile(lat, n_lat, 0.50); /* 0 when nothing was answered */
    out->p99 = bench_percentile(lat, n_lat, 0.99);
    out->gflops = (double)(out->ok - out->truncated) * act_flops / out->wall * 1e-9;
    char what[96];
    snprintf(what, sizeof what, "load: %d robots at %.0f acts/s", robots, rate);
    out->ratio = bench_ratio(out->gflops, pk, what);
}

/* "1,8,64" into v (cap); returns the count. */
static int load__list(const char *s, double *v, int cap) {
    int n = 0;
    while (s && *s && n < cap) {
        char *end;
        double x = strtod(s, &end);
        if (end == s || x <= 0) break;
        v[n++] = x;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int bench_load(int argc, char **argv) {
    double seconds = 2.0, robots_v[8] = {1, 8, 64}, rates_v[16] = {5, 10, 20, 40, 80, 160, 320};
    int n_robots = 3, n_rates = 7, background = 1;
    long max_batch = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--robots") && i + 1 < argc) n_robots = load__list(argv[++i], robots_v, 8);
        else if (!strcmp(argv[i], "--rates") && i + 1 < argc) n_rates = load__list(argv[++i], rates_v, 16);
        else if (!strcmp(argv[i], "--no-background")) background = 0;
        else if (!strcmp(argv[i], "--max-batch") && i + 1 < argc) max_batch = atol(argv[++i]);
        else {
            printf("usage: mbrld-bench load [--seconds S per level (2)] [--robots 1,8,64] "
                   "[--rates 5,10,20,40,80,160,320 (acts/s)] [--no-background] [--max-batch N]\n");
            return strcmp(argv[i], "--help") ? 1 : 0;
        }
    }
    if (seconds < 0.2) seconds = 0.2;
    if (n_robots < 1 || n_rates < 1) return 1;
    static bench_http_daemon d;
    srv_config cfg;
    bench_http_config(&cfg, "error"); /* memory only: this measures planning under load, not the disk */
    cfg.threads = 16;
    cfg.max_connections = 4096;
    if (max_batch > 0) cfg.max_batch = max_batch;
    if (bench_http_start(&d, &cfg, "load") != 0) return 1;
    char url[160], act_url[160], rows_url[160];
    const char *base = d.base;
    CURL *c = bench_http_handle(d.hdr, 120);
    bench_http_buf b = {0};
    int rc = 1;
    char *rows = malloc(2000 * 400 + 64);
    double *lat = NULL;
    load_slot *slots = calloc(LOAD_MAX_OUT, sizeof *slots);
    load_level *levels = calloc((size_t)(n_robots * n_rates), sizeof *levels);
    int n_levels = 0;
    load_stream stream = {.hdr = d.hdr};
    pthread_t stream_th;
    int stream_started = 0;
    char job[64] = "";
    snprintf(url, sizeof url, "%s/v1/models", base);
    const char *create =
        "{\"name\": \"bench\", \"obs_dim\": 18, \"act_dim\": 6, \"act_low\": [-1,-1,-1,-1,-1,-1], "
        "\"act_high\": [1,1,1,1,1,1], \"ensemble\": {\"members\": 5, \"hidden\": [64, 64], "
        "\"activation\": \"silu\", \"learn_reward\": true}, \"planner\": {\"method\": \"cem\", "
        "\"horizon\": 15, \"population\": 200, \"elites\": 20, \"iterations\": 3, \"particles\": 20, "
        "\"propagation\": \"ts_inf\"}, \"seed\": 1}";
    if (!c || !rows || !slots || !levels || bench_http_post(c, url, create, &b) != 201) {
        fprintf(stderr, "load: cannot create the model: %s\n", b.p ? b.p : "");
        goto out;
    }
    for (int i = 0; i < LOAD_MAX_OUT; i++)
        if (!(slots[i].h = bench_http_handle(d.hdr, 30))) goto out;
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    load__rows(rows, 2000 * 400 + 64, &rng, 2000);
    snprintf(rows_url, sizeof rows_url, "%s/v1/models/bench/transitions", base);
    snprintf(url, sizeof url, "%s/v1/models/bench/train", base);
    if (bench_http_post(c, rows_url, rows, &b) != 201 ||
        bench_http_post(c, url, "{\"max_epochs\": 2, \"wait\": true}", &b) != 200) {
        fprintf(stderr, "load: cannot post or train: %s\n", b.p ? b.p : "");
        goto out;
    }
    snprintf(act_url, sizeof act_url, "%s/v1/models/bench/act", base);
    srv_model *m = registry_get(&d.app.reg, "bench");
    srv_version *v = model_version_get(m);
    const double act_flops = mb_plan_flops(&v->ens.spec, &m->spec.planner);
    model_version_put(v);
    model_put(m);

    /* the peak after setup, before the load (and before the background) */
    bench_peak pk;
    bench_peak_measure(&pk, 0);
    bench_peak_print(stdout, &pk, "(all cores)");
    if (background) {
        if (bench_http_post(c, url, "{\"max_epochs\": 100000, \"patience\": 0}", &b) == 202 && b.p) {
            const char *id = strstr(b.p, "\"job\":\"");
            if (id) sscanf(id + 7, "%63[^\"]", job);
        }
        stream.url = rows_url;
        stream_started = pthread_create(&stream_th, NULL, load__stream_main, &stream) == 0;
    }
    double max_rate = 0;
    for (int i = 0; i < n_rates; i++)
        if (rates_v[i] > max_rate) max_rate = rates_v[i];
    lat = malloc(sizeof(double) * (size_t)(max_rate * seconds + 32));
    if (!lat) goto out;
    printf("\nopen-loop acts, preset small (%.3f GFLOP per act), %.1f s per level, deadline_ms %d, %s\n",
           act_flops * 1e-9, seconds, LOAD_DEADLINE_MS,
           background ? "a training job running and 20 transitions posted every 100 ms" : "no background load");
    printf("  %6s %7s %6s %6s %5s %5s %5s %5s %5s %8s %8s %8s %8s %7s\n", "robots", "acts/s", "due", "ok",
           "trunc", "429", "503", "other", "lost", "p50 ms", "p99 ms", "max ms", "GFLOP/s", "of peak");
    double best[8] = {0};
    for (int ri = 0; ri < n_robots; ri++) {
        int robots = (int)robots_v[ri];
        for (int k = 0; k < n_rates; k++) {
            load_level *L = &levels[n_levels++];
            load__level(act_url, slots, lat, robots, rates_v[k], seconds, act_flops, &pk, L);
            long errors = L->e429 + L->e503 + L->eother + L->etransport + L->overrun;
            printf("  %6d %7.0f %6ld %6ld %5ld %5ld %5ld %5ld %5ld %8.1f %8.1f %8.1f %8.1f %7.3f\n", robots,
                   L->rate, L->due, L->ok, L->truncated, L->e429, L->e503, L->eother,
                   L->etransport + L->overrun, L->p50 * 1e3, L->p99 * 1e3, L->max * 1e3, L->gflops, L->ratio);
            fflush(stdout);
            if (L->p99 < 0.050 && errors == 0 && L->ok > 0 && L->rate > best[ri]) best[ri] = L->rate;
            /* saturated: the next level only queues more */
            if ((double)L->ok < 0.9 * (double)L->due || errors > 0.05 * (double)L->due) break;
        }
    }
    printf("\n  highest rate with p99 under 50 ms and no errors:");
    for (int ri = 0; ri < n_robots; ri++) printf("  %d robots %.0f acts/s%s", (int)robots_v[ri], best[ri], ri + 1 < n_robots ? ";" : "\n");
    if (background)
        printf("  background: training job %s, %ld transitions posted (%ld failed posts)\n", job[0] ? job : "(none)",
               stream.posted, stream.failed);
    for (int i = 0; i < n_levels; i++) {
        const load_level *L = &levels[i];
        printf("{\"bench\": \"load\", \"preset\": \"small\", \"metric\": \"open_loop\", \"robots\": %d, "
               "\"rate\": %.1f, \"seconds\": %.1f, \"background\": %s, \"due\": %ld, \"ok\": %ld, "
               "\"truncated\": %ld, \"errors\": {\"429\": %ld, \"503\": %ld, \"other\": %ld, \"lost\": %ld}, "
               "\"p50_ms\": %.2f, \"p99_ms\": %.2f, \"max_ms\": %.2f, \"gflop_per_act\": %.4f, "
               "\"gflops\": %.1f, \"peak_gflops\": %.1f, \"peak_isa\": \"%s\", \"ratio_to_peak\": %.3f}\n",
               L->robots, L->rate, L->seconds, background ? "true" : "false", L->due, L->ok, L->truncated,
               L->e429, L->e503, L->eother, L->etransport + L->overrun, L->p50 * 1e3, L->p99 * 1e3,
               L->max * 1e3, act_flops * 1e-9, L->gflops, pk.gflops, pk.isa, L->ratio);
    }
    for (int ri = 0; ri < n_robots; ri++)
        printf("{\"bench\": \"load\", \"preset\": \"small\", \"metric\": \"max_rate_p99_under_50ms\", "
               "\"robots\": %d, \"background\": %s, \"rate\": %.1f}\n",
               (int)robots_v[ri], background ? "true" : "false", best[ri]);
    rc = 0;
out:
    if (stream_started) {
        atomic_store(&stream.stop, 1);
        pthread_join(stream_th, NULL);
    }
    if (job[0] && c) {
        char jurl[200];
        snprintf(jurl, sizeof jurl, "%s/v1/models/bench/jobs/%s", base, job);
        curl_easy_setopt(c, CURLOPT_URL, jurl);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_perform(c);
    }
    for (int i = 0; slots && i < LOAD_MAX_OUT; i++) {
        if (slots[i].h) curl_easy_cleanup(slots[i].h);
        free(slots[i].resp.p);
    }
    free(slots);
    free(levels);
    free(lat);
    free(rows);
    free(b.p);
    if (c) curl_easy_cleanup(c);
    bench_http_stop(&d);
    return rc;
}
