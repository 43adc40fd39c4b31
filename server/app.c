/* app.c: start-up (config checks, protected mode, tokens, TLS files,
 * listen socket, HTTP daemon) and the orderly shutdown of SIGTERM/SIGINT
 * (see app.h). */
#include "app.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "follow.h"
#include "http.h"
#include "job.h"
#include "log.h"
#include "model_persist.h"

/* Whole file as a NUL-terminated string (caller frees), NULL with err. */
static char *app__slurp(const char *path, size_t max, char *err, size_t err_sz) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_sz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf || n > max) {
        free(buf);
        snprintf(err, err_sz, "%s: larger than %zu bytes", path, max);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int app__tokens(srv_app *app, char *err, size_t err_sz) {
    char *text = app__slurp(app->cfg.tokens, 1 << 20, err, err_sz);
    if (!text) return -1;
    int rc = auth_parse(&app->auth, text, app->cfg.tokens, err, err_sz);
    free(text);
    if (rc == 0) auth_set_throttle(&app->auth, (int)app->cfg.auth_max_failures, (double)app->cfg.auth_fail_window);
    return rc;
}

/* --listen's host:port, [v6]:port or :port into host (brackets removed) and
 * port. 0, or -1 with err. */
static int app__split(const char *l, char *host, size_t host_sz, char *port, size_t port_sz, char *err,
                      size_t err_sz) {
    const char *colon = strrchr(l, ':');
    size_t hn = colon ? (size_t)(colon - l) : 0;
    if (!colon || hn >= host_sz || strlen(colon + 1) >= port_sz || !colon[1]) {
        snprintf(err, err_sz, "--listen %s: expected host:port", l);
        return -1;
    }
    memcpy(host, l, hn);
    host[hn] = 0;
    snprintf(port, port_sz, "%s", colon + 1);
    if (host[0] == '[' && hn >= 2 && host[hn - 1] == ']') {
        memmove(host, host + 1, hn - 2);
        host[hn - 2] = 0;
    }
    return 0;
}

static int app__is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* Protected mode (as Redis has it): a --listen that is not loopback only
 * (127.0.0.0/8, ::1, localhost) needs --tokens, or --insecure. Every
 * address the host resolves to must be loopback; "" and 0.0.0.0 are not. */
static int app__protected(const srv_config *cfg, char *err, size_t err_sz) {
    if (cfg->tokens[0]) return 0;
    char host[256], port[16];
    if (app__split(cfg->listen, host, sizeof host, port, sizeof port, err, err_sz) != 0) return -1;
    int loopback = 0;
    if (host[0]) {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        if (getaddrinfo(host, port, &hints, &res) == 0) {
            loopback = res != NULL;
            for (struct addrinfo *a = res; a; a = a->ai_next)
                if (!app__is_loopback(a->ai_addr)) loopback = 0;
            freeaddrinfo(res);
        }
    }
    if (loopback) return 0;
    if (cfg->insecure) {
        srv_log(SRV_LOG_WARN, "serving a non-loopback address without authentication (--insecure)",
                "listen=%s", cfg->listen);
        return 0;
    }
    snprintf(err, err_sz,
             "protected mode: --listen %s is not a loopback address and no --tokens file is given, so "
             "anyone who reaches the port could delete models or read every transition. Add tokens: "
             "for each, a line `<hash> read,act,write,admin LABEL` in a file, where <hash> is the "
             "output of `printf %%s TOKEN | sha256sum`, then --tokens FILE (README: Access "
             "control); or listen on 127.0.0.1; or pass --insecure to serve without authentication",
             cfg->listen);
    return -1;
}

int app_init(srv_app *app, const srv_config *cfg, char *err, size_t err_sz) {
    memset(app, 0, sizeof *app);
    app->cfg = *cfg;
    app->listen_fd = -1;
    app->started = srv_wall();
    jobs_init(&app->jobs, &app->metrics, &app->shutting_down, (int)cfg->train_threads);
    srv_alloc_init(); /* cJSON allocation failures are counted (alloc.h) */
    plan_budget_init(&app->budget, cfg->max_plan_mb, cfg->plan_memory_mb);
    srv_log_level lvl;
    if (srv_log_level_parse(cfg->log_level, &lvl) == 0) srv_log_set_level(lvl);
    if (registry_init(&app->reg, (int)cfg->max_models) != 0) {
        snprintf(err, err_sz, "out of memory");
        return -1;
    }
    /* before the data directory is touched */
    if (app__protected(cfg, err, err_sz) != 0) return -1;
    if (cfg->tokens[0] && app__tokens(app, err, err_sz) != 0) return -1;
    if (follow_init(app, err, err_sz) != 0) return -1;
    if (app->follow && app->cfg.data_dir[0]) { /* a follower keeps nothing: its trainer has it all */
        srv_log(SRV_LOG_INFO, "follower: models are kept in memory only (--data-dir ignored)", "data_dir=%s",
                app->cfg.data_dir);
        app->cfg.data_dir[0] = '\0';
    }
    if (store_open(&app->store, &app->cfg, err, err_sz) != MB_OK) return -1;
    if (cfg->tls_cert[0]) {
        app->tls_cert = app__slurp(cfg->tls_cert, 1 << 20, err, err_sz);
        if (!app->tls_cert) return -1;
        app->tls_key = app__slurp(cfg->tls_key, 1 << 20, err, err_sz);
        if (!app->tls_key) return -1;
    }
    mb_pool_blas_single_thread();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (cfg->plan_workers * cfg->plan_threads > ncpu && ncpu > 0)
        srv_log(SRV_LOG_WARN, "planning threads exceed the cores: plans will slow each other",
                "plan_workers=%ld plan_threads=%ld cores=%ld", cfg->plan_workers, cfg->plan_threads, ncpu);
    srv_exec_cfg ec = {.workers = (int)cfg->plan_workers, .threads = (int)cfg->plan_threads,
                       .queue_cap = (int)cfg->plan_queue, .max_batch = (int)cfg->max_batch,
                       .batch_delay_us = cfg->batch_delay_us};
    app->exec = exec_new(&ec, &app->metrics, err, err_sz);
    if (!app->exec) return -1;
    /* Models of the data directory come back before anything listens. */
    if (model_recover(app, err, err_sz) != MB_OK) return -1;
    return 0;
}

/* host:port, [v6]:port, :port; binds and listens. */
static int app__listen(srv_app *app, char *err, size_t err_sz) {
    char host[256], port[16];
    const char *l = app->cfg.listen;
    if (app__split(l, host, sizeof host, port, sizeof port, err, err_sz) != 0) return -1;
    char *h = host;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int g = getaddrinfo(*h ? h : NULL, port, &hints, &res);
    if (g != 0) {
        snprintf(err, err_sz, "--listen %s: %s", l, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
        snprintf(err, err_sz, "--listen %s: %s", l, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char sport[16];
    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, sport, sizeof sport, NI_NUMERICSERV);
    app->port = atoi(sport);
    app->listen_fd = fd;
    return 0;
}

int app_start(srv_app *app, char *err, size_t err_sz) {
    if (app__listen(app, err, err_sz) != 0) return -1;
    if (http_start(app, err, err_sz) != 0) return -1;
    if (app->cfg.port_file[0]) { /* temp + rename: a reader never sees half a number */
        char tmp[SRV_PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", app->cfg.port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d\n", app->port) < 0 || fclose(f) != 0 ||
            rename(tmp, app->cfg.port_file) != 0) {
            snprintf(err, err_sz, "--port-file %s: %s", app->cfg.port_file, strerror(errno));
            return -1;
        }
    }
    if (follow_start(app, err, err_sz) != 0) return -1;
    atomic_store(&app->ready, 1);
    srv_log(SRV_LOG_INFO, "listening", "listen=%s port=%d threads=%ld tls=%d auth=%d", app->cfg.listen,
            app->port, app->cfg.threads, app->tls_cert != NULL, auth_enabled(&app->auth));
    return 0;
}

void app_shutdown(srv_app *app) {
    atomic_store(&app->ready, 0);
    atomic_store(&app->shutting_down, 1); /* new connections are closed as accepted */
    srv_log(SRV_LOG_INFO, "shutting down", "in_flight=%d", atomic_load(&app->in_flight));
    follow_stop(app); /* no model changes under the drain */
    /* jobs first: a `wait: true` request is in flight until its job ends */
    registry_stop_jobs(app);
    /* A connection accepted before the signal may still wait for a worker
     * busy with another request (not yet counted in in_flight): the
     * requests are done once nothing has been in flight for a short grace
     * period, or no connection is open. Idle keep-alive connections are
     * then closed. */
    double until = srv_now() + (double)app->cfg.shutdown_timeout, quiet_since = srv_now();
    while (srv_now() < until && http_connections(app) > 0) {
        if (atomic_load(&app->in_flight) > 0) quiet_since = srv_now();
        else if (srv_now() - quiet_since > 0.2) break;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&app->in_flight) > 0)
        srv_log(SRV_LOG_WARN, "requests still in flight at the shutdown timeout", "in_flight=%d",
                atomic_load(&app->in_flight));
    /* Plans still queued are answered 503, running ones stop at their next
     * step (the best plan so far); their connections are resumed, so give
     * the answers a moment to leave before the HTTP daemon stops. */
    atomic_store(&app->plans_stop, 1);
    exec_stop(app->exec);
    for (double t_end = srv_now() + 1.0; srv_now() < t_end && atomic_load(&app->in_flight) > 0;) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    model_snapshot_all(app); /* a clean restart replays nothing */
    http_stop(app); /* closes the listen socket */
    srv_log(SRV_LOG_INFO, "stopped", NULL);
}

void app_free(srv_app *app) {
    http_stop(app);
    follow_free(app);
    registry_stop_jobs(app);
    model_persist_stop(app); /* first: its timer snapshots models */
    registry_free(&app->reg); /* before the store: models hold store_log handles */
    store_close(app->store);
    app->store = NULL;
    exec_free(app->exec); /* stopped in app_shutdown; here after a failed start */
    app->exec = NULL;
    auth_free(&app->auth);
    free(app->tls_cert);
    free(app->tls_key);
    if (app->listen_fd >= 0) close(app->listen_fd); /* bound, but the daemon never started */
    app->listen_fd = -1;
    jobs_free(&app->jobs);
}
