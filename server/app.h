/* app.h: the daemon's shared state (one per process, passed explicitly to
 * handlers through srv_req), its start-up and its orderly shutdown.
 * Not for: request handling (http.c) or model logic (model.c). */
#ifndef SRV_APP_H
#define SRV_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include "auth.h"
#include "job.h"
#include "metrics.h"
#include "model.h"
#include "model_persist.h"
#include "options.h"
#include "base/pool.h"
#include "executor.h"
#include "store.h"

struct MHD_Daemon;

struct srv_app {
    srv_config cfg;
    srv_registry reg;
    srv_store *store;
    srv_persist_timer persist; /* interval snapshots (model_persist.c) */
    srv_metrics metrics;
    srv_auth auth;          /* --tokens */
    srv_plan_budget budget; /* planning memory (plan_budget.h) */
    atomic_int shutting_down;
    atomic_int ready;
    atomic_int in_flight;   /* requests between first callback and completion */
    srv_jobs jobs;          /* training job threads (job.h) */
    srv_exec *exec;         /* the planning executor (executor.h): acts run there */
    atomic_int plans_stop;  /* shutdown after the drain: running plans stop now */
    atomic_uint_fast64_t model_serial; /* last srv_model.serial given */
    double started;         /* wall clock */
    struct MHD_Daemon *daemon;
    int listen_fd;
    int port;
    char *tls_cert, *tls_key; /* PEM text, owned */
    struct srv_follow *follow; /* --follow: the follower replica (follow.h), or NULL */
};

/* Everything but the network. 0 or -1 with err. */
int app_init(srv_app *app, const srv_config *cfg, char *err, size_t err_sz);
/* Binds, starts the HTTP daemon, writes --port-file. 0 or -1 with err. */
int app_start(srv_app *app, char *err, size_t err_sz);
/* Stops accepting, cancels training jobs, lets in-flight requests finish
 * (up to --shutdown-timeout), stops the HTTP daemon, joins job threads. */
void app_shutdown(srv_app *app);
void app_free(srv_app *app);

#endif
