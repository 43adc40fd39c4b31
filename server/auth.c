/* auth.c: bearer tokens (see auth.h). */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int auth_parse(srv_auth *a, const char *text, const char *source, char *err, size_t err_sz) {
    memset(a, 0, sizeof *a);
    char *copy = strdup(text);
    int cap = 16;
    a->tokens = calloc((size_t)cap, sizeof *a->tokens);
    if (!copy || !a->tokens) {
        free(copy);
        auth_free(a);
        snprintf(err, err_sz, "--tokens %s: out of memory", source);
        return -1;
    }
    for (char *save = NULL, *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        while (*line == ' ' || *line == '\t') line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = 0;
        if (!n || line[0] == '#') continue;
        if (a->n == cap) {
            char **p = realloc(a->tokens, sizeof *p * (size_t)(cap * 2));
            if (!p) break;
            a->tokens = p;
            cap *= 2;
        }
        if (!(a->tokens[a->n] = strdup(line))) break;
        a->n++;
    }
    free(copy);
    if (a->n == 0) {
        auth_free(a);
        snprintf(err, err_sz, "--tokens %s: no tokens in the file", source);
        return -1;
    }
    return 0;
}

void auth_free(srv_auth *a) {
    for (int i = 0; i < a->n; i++) free(a->tokens[i]);
    free(a->tokens);
    memset(a, 0, sizeof *a);
}

int auth_enabled(const srv_auth *a) { return a->n > 0; }

/* Equal strings, in time that depends on the lengths only. */
static int auth__eq(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = (unsigned char)(na != nb);
    for (size_t i = 0; i < na; i++) d |= (unsigned char)(a[i] ^ b[i % (nb ? nb : 1)]);
    return d == 0;
}

int auth_check(const srv_auth *a, const char *header, srv_err *e) {
    if (!auth_enabled(a)) return 0;
    if (!header || strncmp(header, "Bearer ", 7) != 0)
        return srv_fail(e, SRV_E_UNAUTH, NULL, "a bearer token is required");
    int ok = 0;
    for (int i = 0; i < a->n; i++) ok |= auth__eq(header + 7, a->tokens[i]);
    if (!ok) return srv_fail(e, SRV_E_FORBIDDEN, NULL, "the bearer token is not accepted");
    return 0;
}
