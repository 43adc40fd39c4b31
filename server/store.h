/* store.h: where state changes go to become durable (DESIGN.md
 * "Persistence"; core/store/wal.h and core/store/snapshot.h do the disk work).
 *
 * Layout: <data-dir>/models/m-<name>/wal/ (the model's write-ahead log) and
 * <data-dir>/models/m-<name>/snap/ (its newest two snapshots). The "m-"
 * prefix keeps names like ".." harmless. An empty --data-dir keeps
 * everything in memory (nothing survives a restart; said at start).
 *
 * The store is handed what to persist and hands back what it recovered; it
 * never reaches into a model (model.c and model_persist.c, the registry,
 * call it, never the other way). The registry calls it at exactly the points
 * where a change must be durable before it is acknowledged:
 *   store_model_created   before the model is visible (spec_json is the
 *                         canonical spec, spec_render's output): CREATE
 *                         record; gives the model's store_log handle
 *   store_model_deleted   before it disappears: DELETE record, then rm -r
 *   store_transitions     under the model lock, before the rows enter the
 *                         buffer: writes the record and returns a ticket;
 *   store_wait            after the model lock is released and before the
 *                         201 answer: the ticket is durable (group commit)
 *   store_snapshot        a snapshot the registry assembled (after a
 *                         training job, on request, on clean shutdown, every
 *                         --snapshot-interval seconds); then log segments
 *                         covered by the older kept snapshot are removed.
 * Recovery (store_recover, before the HTTP server starts): per model the
 * newest valid snapshot, then the log after it, handed record by record to
 * the caller's store_sink (the registry replays them exactly as live, so
 * client+seq deduplication works the same). A torn tail is cut with a
 * warning; a damaged log refuses the start unless --repair.
 * Disk errors: a failed write or fsync makes that model's log refuse writes
 * (MB_EIO -> 503 + Retry-After), /readyz turns false, and a background
 * thread resumes the log (core/store/wal.h: re-read, verify, re-write, fsync)
 * once the disk works again.
 * Not for: what a model is (model.h) or what a snapshot holds (the registry
 * assembles it: model_persist.c). */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "options.h"
#include "store/snapshot.h"
#include "store/wal.h"

typedef struct srv_store srv_store;
/* One model's log and snapshots; NULL without a data directory (every call
 * taking one is then a no-op). Valid until store_log_release (after the
 * model's deletion, by its last user) or store_close. */
typedef struct store_log store_log;

/* What recovery found, per model, in order: create (its spec: the snapshot
 * META's "spec" or the CREATE record), install (only with a snapshot: the
 * decoded snapshot and its parsed META; what is moved out of sn is the
 * sink's), rows (each logged batch after the snapshot), then done (the
 * model survives; info is its recovery report) or drop (deleted, or created
 * but never acknowledged: forget it). A failing callback refuses the start
 * (its status and err are returned). */
typedef struct {
    uint64_t snapshot_log_seq, records, replayed, torn_bytes, last_seq;
    const char *snapshot_path; /* "none" without a snapshot */
    const char *warning;       /* "" if none */
} store_recovered;

typedef struct {
    void *ctx;
    mb_status (*create)(void *ctx, const char *name, const cJSON *spec, store_log *log, char *err,
                        size_t err_sz);
    mb_status (*install)(void *ctx, mb_snapshot *sn, const cJSON *meta, char *err, size_t err_sz);
    mb_status (*rows)(void *ctx, const mb_wal_batch *b, char *err, size_t err_sz);
    void (*done)(void *ctx, const store_recovered *info);
    void (*drop)(void *ctx);
} store_sink;

/* Opens the data directory (creating it) or, with an empty --data-dir, the
 * in-memory store. */
mb_status store_open(srv_store **out, const srv_config *cfg, char *err, size_t err_sz);
/* Hands every model of the data directory to sink (see above), then starts
 * the background thread (disk-error resume). Call once, before the HTTP
 * server starts. MB_ECORRUPT: refuse to start (message says where). */
mb_status store_recover(srv_store *s, const store_sink *sink, char *err, size_t err_sz);
/* Stops the background thread, syncs and closes every log. */
void store_close(srv_store *s);
/* 1 if the store is healthy (readiness): no log is in the failed state. */
int store_ready(const srv_store *s);
/* 1 when there is a data directory. */
int store_durable(const srv_store *s);

/* *log gets the new model's handle (NULL when not durable or replaying). */
mb_status store_model_created(srv_store *s, const char *name, const char *spec_json, store_log **log,
                              char *err, size_t err_sz);
mb_status store_model_deleted(srv_store *s, store_log *log, char *err, size_t err_sz);
/* The deleted model's last reference is gone: closes its log (fd, flusher
 * thread; the files went at store_model_deleted) and frees the handle. No-op
 * for a model not deleted (store_close closes those). */
void store_log_release(store_log *log);
/* rows as in model_append; client may be NULL. *ticket gets what to pass to
 * store_wait (0 = nothing to wait for). */
mb_status store_transitions(srv_store *s, store_log *log, const char *client, uint64_t seq, size_t n,
                            int obs_dim, int act_dim, const float *obs, const float *act, const float *rew,
                            const float *next_obs, const uint8_t *term, const uint8_t *trunc,
                            uint64_t *ticket, char *err, size_t err_sz);
/* Returns once the ticket's record is durable under --fsync (group commit
 * with every writer waiting at the same moment), or MB_EIO. */
mb_status store_wait(srv_store *s, store_log *log, uint64_t ticket, char *err, size_t err_sz);

/* The log's last sequence number: read it under the model lock, where it
 * agrees with the buffer (every append logs and buffers under that lock). */
uint64_t store_log_seq(const store_log *log);
/* A snapshot the registry assembled. */
typedef struct {
    mb_snapshot_src src; /* src.log_seq from store_log_seq, with the buffer */
    uint64_t gen;        /* the registry's state generation when assembled */
    uint64_t version;    /* the ensemble's version number (log and info) */
} store_snap;
/* Writes sn as the model's newest snapshot. One older (by gen) than one
 * already written is skipped, never written over the newer one (two
 * snapshots that raced); info then says "superseded". info (may be NULL)
 * gets a JSON object describing the newest snapshot (caller owns).
 * MB_ESTATE without a data directory, MB_ENOTFOUND once deleted. */
mb_status store_snapshot(srv_store *s, store_log *log, const store_snap *sn, cJSON **info, char *err,
                         size_t err_sz);
/* 1 when --snapshot-interval has passed since the last snapshot and the log
 * has grown since. */
int store_snapshot_due(srv_store *s, store_log *log);
/* The "persistence" object of GET /v1/models/{m} (caller owns), or NULL. */
cJSON *store_model_status(srv_store *s, store_log *log);

#endif
