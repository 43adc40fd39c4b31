/* model_persist.h: the registry's side of persistence. What a snapshot or
 * an export of a model holds (spec, version, weights, optimiser,
 * idempotency keys, buffer) is assembled here under the model lock and
 * handed to the store (store.h); what the store recovers comes back here
 * and is rebuilt through the same functions as live requests (model.h).
 * Also the interval-snapshot timer (--snapshot-interval).
 * Not for: the disk (store.c) or the file format (core/store/snapshot.c). */
#ifndef SRV_MODEL_PERSIST_H
#define SRV_MODEL_PERSIST_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>

#include "model.h"
#include "store/snapshot.h"

/* The interval-snapshot timer's thread (in srv_app). */
typedef struct {
    pthread_t th;
    int on, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} srv_persist_timer;

/* Loads every model of the data directory into app's registry, before the
 * HTTP server starts, and starts the interval-snapshot timer.
 * MB_ECORRUPT: refuse to start (err says where). */
mb_status model_recover(srv_app *app, char *err, size_t err_sz);
/* Stops the interval-snapshot timer (before store_close). */
void model_persist_stop(srv_app *app);

/* Writes a snapshot of m now (its buffer is copied under the model lock;
 * the file is written outside it). adam_owned: the caller is the training
 * job that owns m->adam (else the optimiser is included only while no job
 * runs). info (may be NULL): JSON describing it (caller owns). MB_ESTATE
 * without a data directory. */
mb_status model_snapshot(srv_app *app, srv_model *m, int adam_owned, cJSON **info, char *err,
                         size_t err_sz);
/* Snapshots every model (clean shutdown); failures are logged. */
void model_snapshot_all(srv_app *app);

/* The export file of m (snapshot format) in a new buffer (*data, free());
 * with_buffer 0 leaves the replay buffer out. */
mb_status model_export(srv_model *m, int with_buffer, void **data, size_t *n, char *err, size_t err_sz);
/* The same for version v (referenced by the caller), or the current one
 * when v is NULL: its number and version_info in META. */
mb_status model_export_version(srv_model *m, srv_version *v, int with_buffer, void **data, size_t *n,
                               char *err, size_t err_sz);
/* Moves a decoded snapshot's state (ensemble with its version number,
 * buffer, optimiser, idempotency keys; each if present) into m, a model just
 * created from the same spec; what was moved is cleared in sn. meta is the
 * parsed META blob. MB_ECORRUPT if the state does not fit the spec. */
mb_status model_install(srv_app *app, srv_model *m, mb_snapshot *sn, const cJSON *meta, char *err,
                        size_t err_sz);

#endif
