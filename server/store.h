/* store.h: where state changes go to become durable.
 *
 * For now an IN-MEMORY NO-OP: every hook returns MB_OK and nothing survives a
 * restart (--data-dir and --fsync are parsed but not used). The durability
 * layer (issue 5: write-ahead transition log with group commit, snapshots,
 * recovery) replaces store.c; model.c calls these hooks at exactly the points
 * where a change must be durable before it is acknowledged:
 *   store_model_created   before the model is visible (spec_json is the
 *                         canonical spec, spec_render's output)
 *   store_model_deleted   before it disappears
 *   store_transitions     under the model lock, before the rows enter the
 *                         buffer and before the 201 answer
 *   store_version         when a trained version is published
 * Not for: anything else. */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "ensemble.h"
#include "options.h"

typedef struct srv_store srv_store;

/* NULL-free: returns an opaque store (never fails for the no-op store). */
mb_status store_open(srv_store **out, const srv_config *cfg, char *err, size_t err_sz);
void store_close(srv_store *s);
/* 1 if the store is healthy (readiness). */
int store_ready(const srv_store *s);

mb_status store_model_created(srv_store *s, const char *name, const char *spec_json, char *err,
                              size_t err_sz);
mb_status store_model_deleted(srv_store *s, const char *name, char *err, size_t err_sz);
/* rows as in model_append; client may be NULL. */
mb_status store_transitions(srv_store *s, const char *name, const char *client, uint64_t seq,
                            size_t n, int obs_dim, int act_dim, const float *obs, const float *act,
                            const float *rew, const float *next_obs, const uint8_t *term,
                            const uint8_t *trunc, char *err, size_t err_sz);
mb_status store_version(srv_store *s, const char *name, uint64_t number, const mb_ensemble *ens,
                        char *err, size_t err_sz);

#endif
