/* store.c: the in-memory no-op store (see store.h). The durability layer of
 * issue 5 replaces this file; nothing here claims durability. */
/* Paths and messages are truncated on purpose when they do not fit. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "store.h"

#include <stdlib.h>

struct srv_store {
    int unused;
};

mb_status store_open(srv_store **out, const srv_config *cfg, char *err, size_t err_sz) {
    (void)cfg;
    *out = calloc(1, sizeof **out);
    if (!*out) return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    return MB_OK;
}

void store_close(srv_store *s) { free(s); }

int store_ready(const srv_store *s) { return s != NULL; }

mb_status store_model_created(srv_store *s, const char *name, const char *spec_json, char *err,
                              size_t err_sz) {
    (void)s, (void)name, (void)spec_json, (void)err, (void)err_sz;
    return MB_OK;
}

mb_status store_model_deleted(srv_store *s, const char *name, char *err, size_t err_sz) {
    (void)s, (void)name, (void)err, (void)err_sz;
    return MB_OK;
}

mb_status store_transitions(srv_store *s, const char *name, const char *client, uint64_t seq,
                            size_t n, int obs_dim, int act_dim, const float *obs, const float *act,
                            const float *rew, const float *next_obs, const uint8_t *term,
                            const uint8_t *trunc, char *err, size_t err_sz) {
    (void)s, (void)name, (void)client, (void)seq, (void)n, (void)obs_dim, (void)act_dim;
    (void)obs, (void)act, (void)rew, (void)next_obs, (void)term, (void)trunc, (void)err, (void)err_sz;
    return MB_OK;
}

mb_status store_version(srv_store *s, const char *name, uint64_t number, const mb_ensemble *ens,
                        char *err, size_t err_sz) {
    (void)s, (void)name, (void)number, (void)ens, (void)err, (void)err_sz;
    return MB_OK;
}
