/* follow.h: a follower replica (--follow TRAINER_URL). A read-only mbrld
 * that serves act, predict and status from copies of a trainer's models:
 * every --follow-interval seconds one thread lists the trainer's models
 * (GET /v1/models) and pulls each one's current version
 * (GET /v1/models/{m}/versions/latest with If-None-Match, so an unchanged
 * version costs one small request and a 304), creates the model from the
 * spec in the file's META the first time (again when the spec changed: the
 * trainer deleted and re-created it), makes the pulled version current
 * without a restart (versions.h: model_adopt), and deletes models the
 * trainer no longer has. No replay buffer, optimiser or log comes over:
 * a follower keeps nothing on disk (--data-dir is ignored).
 *
 * While the trainer cannot be reached the follower keeps serving the
 * versions it has; /readyz answers 503 until the first complete pull and
 * again once the trainer has not answered for --follow-grace seconds.
 * Every write (a route of scope write or admin: transitions, train,
 * cancel, snapshot, create, delete, import, promote) is answered 409
 * read_only naming the trainer. The trainer's token (--follow-token-file,
 * a read-scoped one suffices) is read once at start.
 * Metrics: mbrld_follow_up, mbrld_follow_last_success_timestamp_seconds,
 * mbrld_follow_pulls_total{result}, and per model
 * mbrld_follow_trainer_version and mbrld_follow_version_lag.
 * Not for: the versions themselves (versions.c) or a trainer's side (the
 * trainer only answers GETs). */
#ifndef SRV_FOLLOW_H
#define SRV_FOLLOW_H

#include <stddef.h>

#include "errors.h"
#include "sbuf.h"

typedef struct srv_app srv_app;
typedef struct srv_follow srv_follow;

/* Checks --follow and reads the token file (before anything listens); 0, or
 * -1 with err. Does nothing without --follow. */
int follow_init(srv_app *app, char *err, size_t err_sz);
/* Starts the pulling thread (once the HTTP server runs); 0 or -1 with err. */
int follow_start(srv_app *app, char *err, size_t err_sz);
/* Stops the thread (an exchange in progress is aborted); idempotent. */
void follow_stop(srv_app *app);
void follow_free(srv_app *app);

/* 1 with e filled (409 read_only) when app follows a trainer and `route`
 * (index into srv_routes) is a write; else 0. */
int follow_refuses(srv_app *app, int route, srv_err *e);
/* 0 when ready (not a follower, or in sync within --follow-grace), else -1
 * with e filled (503 saying why). */
int follow_ready(srv_app *app, srv_err *e);
/* The follower's lines of /metrics (nothing when not a follower). */
void follow_metrics(srv_app *app, sbuf *b);

#endif
