/* http.h: the libmicrohttpd glue: start/stop the daemon with its thread pool,
 * and the request life cycle (route, auth, body cap, body accumulation,
 * parse once, handler, answer, metrics, log). Handlers never see MHD.
 * Not for: what the endpoints do (api_*.c). */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

typedef struct srv_app srv_app;

/* Starts MHD on app->listen_fd (already bound and listening). 0 or -1. */
int http_start(srv_app *app, char *err, size_t err_sz);
/* Connections shut down by --request-timeout so far (process-wide). */
long http_reaped(void);
/* Open connections (0 if not running). */
unsigned http_connections(srv_app *app);
/* Stops the daemon (joins its threads, closes connections and the listen
 * socket: app->listen_fd becomes -1). Once app->shutting_down is set, new
 * connections are closed as they are accepted. */
void http_stop(srv_app *app);

#endif
