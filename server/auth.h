/* auth.h: bearer-token authentication (--tokens FILE: one token per line,
 * blank lines and lines starting with '#' ignored, surrounding blanks
 * trimmed). With no tokens every route is open; with tokens, every route
 * not marked public needs "Authorization: Bearer <token>" naming one of
 * them. Tokens are compared in time independent of where they differ.
 * Not for: TLS (app.c) or routing (routes.c). */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include <stddef.h>

#include "errors.h"

typedef struct {
    char **tokens; /* (n) */
    int n;
} srv_auth;

/* Parses the text of a tokens file (source names it in errors). 0, or -1
 * with err (also when the file holds no token). */
int auth_parse(srv_auth *a, const char *text, const char *source, char *err, size_t err_sz);
void auth_free(srv_auth *a);
/* 1 when tokens are required. */
int auth_enabled(const srv_auth *a);
/* header: the Authorization header's value, or NULL. 0 when accepted; else
 * -1 with e set: SRV_E_UNAUTH (no bearer token) or SRV_E_FORBIDDEN. */
int auth_check(const srv_auth *a, const char *header, srv_err *e);

#endif
