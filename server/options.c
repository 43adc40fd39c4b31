/* options.c: the one option table and everything it drives (see options.h). */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_STR, OPT_INT, OPT_FLAG } opt_type; /* FLAG: a long, 0 or 1; --name alone sets 1 */

typedef struct {
    const char *name;
    opt_type type;
    long lo, hi;              /* OPT_INT bounds */
    const char *def;          /* default, as text */
    size_t offset, size;      /* target field in srv_config */
    const char *choices;      /* OPT_STR: "a|b|c" or NULL for any text */
    const char *help;
} srv_option;

#define S(f) offsetof(srv_config, f), sizeof(((srv_config *)0)->f)

static const srv_option opt__table[] = {
    {"listen", OPT_STR, 0, 0, "127.0.0.1:8080", S(listen), NULL,
     "address:port to listen on (port 0: any free port, see --port-file)"},
    {"data-dir", OPT_STR, 0, 0, "./mbrld-data", S(data_dir), NULL,
     "data directory: per model a transition log and snapshots (\"\" = memory only)"},
    {"config", OPT_STR, 0, 0, "", S(config), NULL, "config file of `name = value` lines"},
    {"fsync", OPT_STR, 0, 0, "always", S(fsync), "always|everysec|no",
     "transition log fsync: always (group commit before each answer), everysec, no"},
    {"repair", OPT_INT, 0, 1, "0", S(repair), NULL,
     "1: start even on a damaged log, keeping what precedes the damage (set aside as *.damaged)"},
    {"snapshot-interval", OPT_INT, 0, 86400 * 30, "300", S(snapshot_interval), NULL,
     "s between automatic snapshots of a model with new transitions (0 = off)"},
    {"tokens", OPT_STR, 0, 0, "", S(tokens), NULL,
     "file of tokens, a line each: `<sha256 hex of the token> <read,act,write,admin> [label]`"},
    {"insecure", OPT_FLAG, 0, 1, "0", S(insecure), NULL,
     "serve a non-loopback --listen without --tokens (refused otherwise: anyone could delete models)"},
    {"auth-max-failures", OPT_INT, 0, 1000000, "20", S(auth_max_failures), NULL,
     "failed authentications per address and window before 429 (0 = no throttle)"},
    {"auth-fail-window", OPT_INT, 1, 86400, "60", S(auth_fail_window), NULL,
     "s: the window of --auth-max-failures"},
    {"tls-cert", OPT_STR, 0, 0, "", S(tls_cert), NULL, "PEM certificate: serve HTTPS"},
    {"tls-key", OPT_STR, 0, 0, "", S(tls_key), NULL, "PEM private key for --tls-cert"},
    {"tls-priorities", OPT_STR, 0, 0, "NORMAL", S(tls_priorities), NULL,
     "GnuTLS priority string for --tls-cert (TLS 1.0/1.1 are always removed: 1.2 is the minimum)"},
    {"port-file", OPT_STR, 0, 0, "", S(port_file), NULL, "write the bound port here once listening"},
    {"log-level", OPT_STR, 0, 0, "info", S(log_level), "debug|info|warn|error",
     "lowest level logged (requests are logged at debug)"},
    {"threads", OPT_INT, 1, 256, "8", S(threads), NULL, "HTTP worker threads"},
    {"plan-workers", OPT_INT, 1, 256, "1", S(plan_workers), NULL,
     "planning workers (each plans one batch of acts at a time on its own --plan-threads)"},
    {"plan-threads", OPT_INT, 1, 256, "2", S(plan_threads), NULL,
     "threads per planning worker (workers x threads should not exceed the cores)"},
    {"plan-queue", OPT_INT, 1, 1000000, "256", S(plan_queue), NULL,
     "acts waiting for a planning worker (429 with Retry-After beyond)"},
    {"max-batch", OPT_INT, 1, 4096, "1", S(max_batch), NULL,
     "acts planned together (same model version and planner config) in one batch (1: no batching)"},
    {"batch-delay-us", OPT_INT, 0, 10000000, "0", S(batch_delay_us), NULL,
     "us a worker holds a batch that is not full for more acts to join (0: take what is queued)"},
    {"train-threads", OPT_INT, 1, 256, "1", S(train_threads), NULL, "threads per training job"},
    {"max-body", OPT_INT, 1024, 1L << 30, "8388608", S(max_body), NULL,
     "largest request body in bytes (413 beyond; act and predict: 256 KiB; import: --max-import-mb)"},
    {"max-import-mb", OPT_INT, 1, 1L << 20, "4096", S(max_import_mb), NULL,
     "largest import body, MiB (streamed to a temporary file, never held in memory)"},
    {"max-connections", OPT_INT, 1, 100000, "1024", S(max_connections), NULL,
     "concurrent connections"},
    {"conn-timeout", OPT_INT, 1, 86400, "60", S(conn_timeout), NULL, "idle connection timeout, s"},
    {"max-connections-per-ip", OPT_INT, 0, 100000, "128", S(max_connections_per_ip), NULL,
     "concurrent connections from one client address (0 = no limit); behind a proxy, raise it"},
    {"request-timeout", OPT_INT, 0, 86400, "30", S(request_timeout), NULL,
     "s for a request's headers and body to arrive, from the connection's start or its previous "
     "answer; however slowly bytes trickle in (0 = off)"},
    {"session-timeout", OPT_INT, 1, 86400 * 7, "600", S(session_timeout), NULL,
     "idle act session lifetime, s"},
    {"max-sessions", OPT_INT, 1, 1000000, "256", S(max_sessions), NULL,
     "act sessions per model (least recently used dropped)"},
    {"max-models", OPT_INT, 1, SRV_MAX_MODELS, "64", S(max_models), NULL, "models (429 beyond)"},
    {"max-clients", OPT_INT, 1, 1000000, "4096", S(max_clients), NULL,
     "client+seq idempotency keys kept per model (least recently used dropped)"},
    {"max-buffer-mb", OPT_INT, 1, 1L << 20, "1024", S(max_buffer_mb), NULL,
     "replay buffer memory per model, MiB"},
    {"max-params", OPT_INT, 1, 1L << 32, "20000000", S(max_params), NULL,
     "ensemble parameters (floats) per model"},
    {"max-plan-rows", OPT_INT, 1, 1L << 32, "1000000", S(max_plan_rows), NULL,
     "population x particles per planning iteration"},
    {"max-plan-mb", OPT_INT, 1, 1L << 20, "1024", S(max_plan_mb), NULL,
     "memory one planning request may need (workspace, session state), MiB (422 beyond)"},
    {"plan-memory-mb", OPT_INT, 1, 1L << 24, "4096", S(plan_memory_mb), NULL,
     "planning memory of the whole daemon (workspaces in use and kept, sessions, batches), MiB"},
    {"max-plan-ms", OPT_INT, 1, 3600000, "10000", S(max_plan_ms), NULL,
     "deadline of an act, ms: the cap and default of its deadline_ms"},
    {"shutdown-timeout", OPT_INT, 0, 3600, "30", S(shutdown_timeout), NULL,
     "s to let in-flight requests finish on SIGTERM"},
    {"keep-versions", OPT_INT, 1, 32, "4", S(keep_versions), NULL,
     "published versions kept per model for pinning and promote (fewer when they would exceed --max-params)"},
    {"follow", OPT_STR, 0, 0, "", S(follow), NULL,
     "trainer URL (http://host:port): serve its models read-only, pulling each new version (no data directory)"},
    {"follow-token-file", OPT_STR, 0, 0, "", S(follow_token_file), NULL,
     "file holding a read-scoped token of the trainer's, for --follow"},
    {"follow-interval", OPT_INT, 1, 3600, "2", S(follow_interval), NULL,
     "s between a follower's pulls (an unchanged version costs one small request per model)"},
    {"follow-grace", OPT_INT, 1, 86400, "30", S(follow_grace), NULL,
     "s a follower serves without reaching its trainer before /readyz answers 503"},
};
#define OPT__N (int)(sizeof opt__table / sizeof opt__table[0])

static const srv_option *opt__find(const char *name) {
    for (int i = 0; i < OPT__N; i++)
        if (!strcmp(opt__table[i].name, name)) return &opt__table[i];
    return NULL;
}

static int opt__choice_ok(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

int srv_config_set(srv_config *cfg, const char *name, const char *value, char *err, size_t err_sz) {
    const srv_option *o = opt__find(name);
    if (!o) {
        snprintf(err, err_sz, "unknown option '%s' (see --help)", name);
        return -1;
    }
    char *dst = (char *)cfg + o->offset;
    if (o->type == OPT_STR) {
        if (strlen(value) >= o->size) {
            snprintf(err, err_sz, "--%s: value longer than %zu bytes", name, o->size - 1);
            return -1;
        }
        if (o->choices && !opt__choice_ok(o->choices, value)) {
            snprintf(err, err_sz, "--%s: '%s' is not one of %s", name, value, o->choices);
            return -1;
        }
        memcpy(dst, value, strlen(value) + 1);
        return 0;
    }
    if (o->type == OPT_FLAG) {
        long v;
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) v = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) v = 0;
        else {
            snprintf(err, err_sz, "--%s: '%s' is not 0/1, true/false or yes/no", name, value);
            return -1;
        }
        memcpy(dst, &v, sizeof v);
        return 0;
    }
    errno = 0;
    char *end;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end) {
        snprintf(err, err_sz, "--%s: '%s' is not an integer", name, value);
        return -1;
    }
    if (v < o->lo || v > o->hi) {
        snprintf(err, err_sz, "--%s: %ld is outside [%ld, %ld]", name, v, o->lo, o->hi);
        return -1;
    }
    memcpy(dst, &v, sizeof v);
    return 0;
}

void srv_config_default(srv_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char err[256];
    for (int i = 0; i < OPT__N; i++) {
        int rc = srv_config_set(cfg, opt__table[i].name, opt__table[i].def, err, sizeof err);
        (void)rc; /* defaults are valid by construction (tested) */
    }
}

static void opt__trim(char **s) {
    while (**s == ' ' || **s == '\t') (*s)++;
    char *e = *s + strlen(*s);
    while (e > *s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
}

static int opt__read_file(srv_config *cfg, const char *path, char *err, size_t err_sz) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_sz, "--config %s: %s", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        opt__trim(&s);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, err_sz, "%s:%d: expected `name = value`", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *k = s, *v = eq + 1;
        opt__trim(&k);
        opt__trim(&v);
        if (!strcmp(k, "config")) {
            snprintf(err, err_sz, "%s:%d: config files do not nest", path, lineno);
            rc = -1;
            break;
        }
        char e2[200];
        if (srv_config_set(cfg, k, v, e2, sizeof e2) != 0) {
            snprintf(err, err_sz, "%s:%d: %s", path, lineno, e2);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

/* Splits "--name=value" / "--name value"; returns the next argv index or -1. */
static int opt__arg(int argc, char **argv, int i, char *name, size_t cap, const char **value,
                    char *err, size_t err_sz) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0) {
        snprintf(err, err_sz, "unexpected argument '%s' (see --help)", a);
        return -1;
    }
    a += 2;
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    if (n >= cap) n = cap - 1;
    memcpy(name, a, n);
    name[n] = 0;
    if (eq) {
        *value = eq + 1;
        return i + 1;
    }
    const srv_option *o = opt__find(name);
    if (o && o->type == OPT_FLAG) { /* --insecure: no value follows */
        *value = "1";
        return i + 1;
    }
    if (i + 1 >= argc) {
        if (!o)
            snprintf(err, err_sz, "unknown option '%s' (see --help)", name);
        else
            snprintf(err, err_sz, "--%s needs a value", name);
        return -1;
    }
    *value = argv[i + 1];
    return i + 2;
}

int srv_config_load(srv_config *cfg, int argc, char **argv, FILE *out, char *err, size_t err_sz) {
    srv_config_default(cfg);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            srv_config_usage(out);
            return 1;
        }
    /* the config file first, so the command line overrides it */
    char name[64];
    const char *value;
    for (int i = 1; i < argc;) {
        int next = opt__arg(argc, argv, i, name, sizeof name, &value, err, err_sz);
        if (next < 0) return -1;
        if (!strcmp(name, "config")) {
            if (srv_config_set(cfg, "config", value, err, err_sz) != 0) return -1;
            if (opt__read_file(cfg, value, err, err_sz) != 0) return -1;
        }
        i = next;
    }
    for (int i = 1; i < argc;) {
        int next = opt__arg(argc, argv, i, name, sizeof name, &value, err, err_sz);
        if (next < 0) return -1;
        if (srv_config_set(cfg, name, value, err, err_sz) != 0) return -1;
        i = next;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, err_sz, "--tls-cert and --tls-key go together");
        return -1;
    }
    return 0;
}

void srv_config_usage(FILE *out) {
    fprintf(out, "usage: mbrld [options]\n\n"
                 "Model-based RL as a service: HTTP/JSON API v1 (see /v1/openapi.json).\n"
                 "Options (also `name = value` lines in --config FILE; the command line wins):\n\n");
    for (int i = 0; i < OPT__N; i++) {
        const srv_option *o = &opt__table[i];
        char arg[64];
        if (o->type == OPT_INT) snprintf(arg, sizeof arg, "--%s N", o->name);
        else if (o->type == OPT_FLAG) snprintf(arg, sizeof arg, "--%s", o->name);
        else if (o->choices) snprintf(arg, sizeof arg, "--%s %s", o->name, o->choices);
        else snprintf(arg, sizeof arg, "--%s S", o->name);
        fprintf(out, "  %-34s %s\n", arg, o->help);
        if (o->type == OPT_INT)
            fprintf(out, "  %-34s (default %s, range %ld..%ld)\n", "", o->def, o->lo, o->hi);
        else if (o->type == OPT_STR && o->def[0])
            fprintf(out, "  %-34s (default %s)\n", "", o->def);
    }
    fprintf(out, "  %-34s %s\n", "--help", "this text");
}
