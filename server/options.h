/* options.h: mbrld's configuration, driven by ONE option table (options.c)
 * that serves the command line (--name value or --name=value), the optional
 * config file (--config FILE: `name = value` lines, `#` comments), --help and
 * validation (types, bounds, choices). The command line wins over the file.
 * Not for: per-model settings (those come with POST /v1/models). */
#ifndef SRV_OPTIONS_H
#define SRV_OPTIONS_H

#include <stddef.h>
#include <stdio.h>

#define SRV_PATH_MAX 1024
#define SRV_MAX_MODELS 1024 /* upper bound of --max-models (listing, metrics, shutdown) */

typedef struct {
    char listen[256];          /* host:port; port 0 = any free port */
    char data_dir[SRV_PATH_MAX];
    char config[SRV_PATH_MAX];
    char fsync[16];            /* always | everysec | no */
    char tokens[SRV_PATH_MAX]; /* bearer tokens file (auth.h); "" = no auth */
    long insecure;             /* 1: serve a non-loopback address without --tokens */
    long auth_max_failures;    /* 401s per address and window before 429; 0 = no throttle */
    long auth_fail_window;     /* s */
    char tls_cert[SRV_PATH_MAX], tls_key[SRV_PATH_MAX];
    char tls_priorities[512]; /* GnuTLS priority string; TLS < 1.2 always removed */
    char port_file[SRV_PATH_MAX]; /* the bound port is written here once listening */
    char log_level[16];
    long threads;            /* HTTP worker threads (MHD thread pool) */
    long plan_workers;       /* planning workers (executor.h) */
    long plan_threads;       /* threads per planning worker */
    long plan_queue;         /* acts waiting for a worker */
    long max_batch;          /* acts planned together */
    long batch_delay_us;     /* hold a batch that is not full this long */
    long train_threads;      /* threads per training job */
    long max_body;           /* bytes per request body */
    long max_connections;
    long conn_timeout;       /* idle connection timeout, s */
    long max_connections_per_ip; /* 0 = no limit */
    long request_timeout;    /* s for headers + body of one request; 0 = off */
    long max_import_mb;      /* import bodies (streamed to a temporary file) */
    long session_timeout;    /* idle session lifetime, s */
    long max_sessions;       /* per model (LRU beyond) */
    long max_models;
    long max_clients;        /* idempotency keys remembered per model (LRU beyond) */
    long max_buffer_mb;      /* replay buffer memory per model */
    long max_params;         /* ensemble parameters (floats) per model */
    long max_plan_rows;      /* population x particles per planning iteration */
    long max_plan_mb;        /* MiB one planning request may need */
    long plan_memory_mb;     /* MiB of planning memory for the whole daemon */
    long max_plan_ms;        /* cap and default of an act's deadline_ms */
    long shutdown_timeout;   /* s to let in-flight requests finish */
    long repair;             /* 1: start on a damaged log, keeping what precedes the damage */
    long snapshot_interval;  /* s between automatic snapshots of a changed model; 0 = off */
    long keep_versions;      /* published versions kept per model (versions.h) */
    char follow[SRV_PATH_MAX];            /* trainer URL: run as a read-only follower (follow.h) */
    char follow_token_file[SRV_PATH_MAX]; /* a read-scoped token of the trainer's */
    long follow_interval;    /* s between pulls */
    long follow_grace;       /* s without the trainer before /readyz says not ready */
} srv_config;

/* Fills defaults, reads --config FILE if given, then the command line.
 * Returns 0 to run, 1 if --help was printed (to `out`), -1 on error (message
 * in err). */
int srv_config_load(srv_config *cfg, int argc, char **argv, FILE *out, char *err, size_t err_sz);
/* Defaults only. */
void srv_config_default(srv_config *cfg);
/* One option by name (without dashes) from its text; 0 or -1 with err. */
int srv_config_set(srv_config *cfg, const char *name, const char *value, char *err, size_t err_sz);
/* --help text from the table. */
void srv_config_usage(FILE *out);

#endif
