/* bench_http.c: the in-process daemon and the libcurl calls of the
 * benchmarks that measure mbrld over HTTP (bench_http.h).
 * Not for: what a benchmark measures or prints (bench_NAME.c). */
#include "bench_http.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "log.h"

size_t bench_http_write(char *p, size_t sz, size_t n, void *ud) {
    bench_http_buf *b = ud;
    size_t k = sz * n;
    if (b->len + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + k + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, k);
    b->len += k;
    b->p[b->len] = 0;
    return k;
}

CURL *bench_http_handle(struct curl_slist *hdr, long timeout_s) {
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    return c;
}

void bench_http_prepare(CURL *c, const char *url, const char *body, bench_http_buf *out) {
    out->len = 0;
    if (out->p) out->p[0] = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bench_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
}

long bench_http_post(CURL *c, const char *url, const char *body, bench_http_buf *out) {
    bench_http_prepare(c, url, body, out);
    long st = 0;
    if (curl_easy_perform(c) != CURLE_OK) return 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    return st;
}

void bench_http_config(srv_config *cfg, const char *log_level) {
    srv_config_default(cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:0");
    cfg->data_dir[0] = '\0';
    snprintf(cfg->log_level, sizeof cfg->log_level, "%s", log_level);
}

int bench_http_start(bench_http_daemon *d, const srv_config *cfg, const char *who) {
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* app_init sets it too, from cfg; this covers what it logs before */
    srv_log_level lvl;
    if (srv_log_level_parse(cfg->log_level, &lvl) == 0) srv_log_set_level(lvl);
    char err[512];
    if (app_init(&d->app, cfg, err, sizeof err) != 0 || app_start(&d->app, err, sizeof err) != 0) {
        fprintf(stderr, "%s: cannot start the daemon: %s\n", who, err);
        app_free(&d->app);
        curl_global_cleanup();
        return -1;
    }
    snprintf(d->base, sizeof d->base, "http://127.0.0.1:%d", d->app.port);
    d->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    d->hdr = curl_slist_append(d->hdr, "Expect:");
    return 0;
}

void bench_http_stop(bench_http_daemon *d) {
    curl_slist_free_all(d->hdr);
    d->hdr = NULL;
    app_shutdown(&d->app);
    app_free(&d->app);
    curl_global_cleanup();
}

typedef struct {
    const char *url, *body;
    struct curl_slist *hdr;
    long timeout_s;
    double until;
    long acts, errors;
} bench_http__client;

static void *bench_http__client_main(void *p) {
    bench_http__client *c = p;
    CURL *h = bench_http_handle(c->hdr, c->timeout_s);
    bench_http_buf b = {0};
    while (h && bench_now() < c->until) {
        if (bench_http_post(h, c->url, c->body, &b) == 200) c->acts++;
        else c->errors++;
    }
    free(b.p);
    if (h) curl_easy_cleanup(h);
    return NULL;
}

double bench_http_closed_loop(const char *url, const char *body, struct curl_slist *hdr, long timeout_s,
                              int clients, double seconds, long *errors) {
    *errors = 0;
    bench_http__client *cl = calloc((size_t)clients, sizeof *cl);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    if (!cl || !th) {
        free(cl), free(th);
        return -1;
    }
    double t0 = bench_now(), until = t0 + seconds;
    int started = 0;
    for (int i = 0; i < clients; i++) {
        cl[i] = (bench_http__client){.url = url, .body = body, .hdr = hdr, .timeout_s = timeout_s, .until = until};
        if (pthread_create(&th[i], NULL, bench_http__client_main, &cl[i]) != 0) break;
        started++;
    }
    long acts = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        acts += cl[i].acts;
        *errors += cl[i].errors;
    }
    /* fewer clients than asked: no rate for that count */
    double rate = started == clients ? acts / (bench_now() - t0) : -1;
    free(cl);
    free(th);
    return rate;
}
