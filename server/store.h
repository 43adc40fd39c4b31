/* store.h: where state changes go to become durable (DESIGN.md
 * "Persistence"; core/store/wal.h and core/store/snapshot.h do the disk work).
 *
 * Layout: <data-dir>/models/m-<name>/wal/ (the model's write-ahead log) and
 * <data-dir>/models/m-<name>/snap/ (its newest two snapshots). The "m-"
 * prefix keeps names like ".." harmless. An empty --data-dir keeps
 * everything in memory (nothing survives a restart; said at start).
 *
 * model.c calls the hooks at exactly the points where a change must be
 * durable before it is acknowledged:
 *   store_model_created   before the model is visible (spec_json is the
 *                         canonical spec, spec_render's output): CREATE record
 *   store_model_deleted   before it disappears: DELETE record, then rm -r
 *   store_transitions     under the model lock, before the rows enter the
 *                         buffer: writes the record and returns a ticket;
 *   store_wait            after the model lock is released and before the
 *                         201 answer: the ticket is durable (group commit)
 *   store_version         when a trained version is published (nothing to
 *                         log: the snapshot that follows training holds it)
 * Snapshots (store_snapshot): after each training job, on request
 * (POST /v1/models/{m}/snapshot), on clean shutdown, every
 * --snapshot-interval seconds; then log segments covered by the older kept
 * snapshot are removed.
 * Recovery (store_recover, before the HTTP server starts): per model the
 * newest valid snapshot, then the log after it, replayed through
 * model_create / model_append with the store in replay mode (so client+seq
 * deduplication works exactly as live). A torn tail is cut with a warning; a
 * damaged log refuses the start unless --repair.
 * Disk errors: a failed write or fsync makes that model's log refuse writes
 * (MB_EIO -> 503 + Retry-After), /readyz turns false, and a background
 * thread resumes the log (core/store/wal.h: re-read, verify, re-write, fsync) once
 * the disk works again.
 * Not for: anything else. */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "nn/ensemble.h"
#include "options.h"
#include "store/snapshot.h"

typedef struct srv_store srv_store;
struct srv_app;
struct srv_model;

/* Opens the data directory (creating it) or, with an empty --data-dir, the
 * in-memory store. */
mb_status store_open(srv_store **out, const srv_config *cfg, char *err, size_t err_sz);
/* Loads every model of the data directory into app's registry (see above),
 * logs what was recovered, and starts the background thread (disk-error
 * resume, interval snapshots). Call once, after registry_init and before the
 * HTTP server starts. MB_ECORRUPT: refuse to start (message says where). */
mb_status store_recover(srv_store *s, struct srv_app *app, char *err, size_t err_sz);
/* Stops the background thread, syncs and closes every log. */
void store_close(srv_store *s);
/* 1 if the store is healthy (readiness): no log is in the failed state. */
int store_ready(const srv_store *s);
/* 1 when there is a data directory. */
int store_durable(const srv_store *s);

mb_status store_model_created(srv_store *s, const char *name, const char *spec_json, char *err,
                              size_t err_sz);
mb_status store_model_deleted(srv_store *s, const char *name, char *err, size_t err_sz);
/* rows as in model_append; client may be NULL. *ticket gets what to pass to
 * store_wait (0 = nothing to wait for). */
mb_status store_transitions(srv_store *s, const char *name, const char *client, uint64_t seq,
                            size_t n, int obs_dim, int act_dim, const float *obs, const float *act,
                            const float *rew, const float *next_obs, const uint8_t *term,
                            const uint8_t *trunc, uint64_t *ticket, char *err, size_t err_sz);
/* Returns once the ticket's record is durable under --fsync (group commit
 * with every writer waiting at the same moment), or MB_EIO. */
mb_status store_wait(srv_store *s, const char *name, uint64_t ticket, char *err, size_t err_sz);
mb_status store_version(srv_store *s, const char *name, uint64_t number, const mb_ensemble *ens,
                        char *err, size_t err_sz);

/* Writes a snapshot of m now (its buffer is copied under the model lock; the
 * file is written outside it). adam_owned: the caller is the training job
 * that owns m->adam (else Adam's state is included only while no job runs).
 * info (may be NULL) gets a one-line JSON object describing the snapshot
 * (caller owns the cJSON). MB_ESTATE without a data directory. */
mb_status store_snapshot(srv_store *s, struct srv_model *m, int adam_owned, cJSON **info, char *err,
                         size_t err_sz);
/* Snapshots every model (clean shutdown); failures are logged. */
void store_snapshot_all(srv_store *s, struct srv_app *app);
/* The "persistence" object of GET /v1/models/{m} (caller owns), or NULL. */
cJSON *store_model_status(srv_store *s, const char *name);

/* Moves a decoded snapshot's state (ensemble with its version number,
 * buffer, optimiser, idempotency keys; each if present) into m, a model just
 * created from the same spec; what was moved is cleared in sn. meta is the
 * parsed META blob. MB_ECORRUPT if the state does not fit the spec. */
mb_status store_install(struct srv_app *app, struct srv_model *m, mb_snapshot *sn, const cJSON *meta,
                        char *err, size_t err_sz);

/* The export file of m (snapshot format, core/store/snapshot.h) in a new buffer
 * (*data, free()); with_buffer 0 leaves the replay buffer out. */
mb_status store_export(struct srv_model *m, int with_buffer, void **data, size_t *n, char *err,
                       size_t err_sz);

#endif
