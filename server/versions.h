/* versions.h: the published versions a model keeps, for operators: the
 * listing (GET /v1/models/{m}/versions, with each version's training
 * losses), an act pinned to one ("version": N), promoting an older one back
 * to current (a rollback after a bad training run), the content tag that
 * GET /v1/models/{m}/versions/latest answers as its ETag, and a follower's
 * adoption of a version pulled from its trainer (follow.h).
 *
 * How many: a model keeps its newest published versions, the current one
 * always among them, up to
 *     min(--keep-versions, --max-params / the ensemble's parameters)
 * so the weights of the versions kept stay within --max-params floats, the
 * same budget that bounds one ensemble (a model whose ensemble fills more
 * than half of --max-params keeps only its current version). Version 0, the
 * untrained initial weights, is never kept once a version is published.
 * Kept versions are immutable and reference-counted like the current one;
 * they go into every snapshot (core/store/snapshot.h, VERS) and come back on
 * restart. After a promote the current version is an older one; the next
 * training job starts from it and publishes the next number.
 *
 * Locking: functions marked "model lock held" run under m->lock; the rest
 * take it. Not for: publishing (model.c) or the file format. */
#ifndef SRV_VERSIONS_H
#define SRV_VERSIONS_H

#include <cjson/cJSON.h>

#include "model.h"
#include "store/snapshot.h"

/* A 64-bit content hash of an ensemble (parameters, normaliser, elites,
 * holdout losses) and of its model's canonical spec JSON. */
uint64_t versions_hash(const mb_ensemble *ens, const char *spec_json);
/* Sets v->etag to "\"<number>-<hash, 16 hex>\"" (before v is shared). */
void versions_seal(srv_version *v, uint64_t hash);
/* How many published versions m keeps (see above), >= 1. */
int versions_limit(const srv_app *app, const srv_model *m);

/* Model lock held. Adds a reference of v (number > 0) to m->kept, replacing
 * a kept version of the same number, and drops the oldest beyond
 * versions_limit (never m->cur). The dropped references go to dropped
 * (SRV_KEEP_MAX + 1), for the caller to put after unlocking; returns how
 * many. */
int versions_keep(srv_app *app, srv_model *m, srv_version *v, srv_version **dropped);
/* Model lock held. Referenced kept versions other than m->cur, oldest first,
 * into out (SRV_KEEP_MAX); returns the count. */
int versions_others(srv_model *m, srv_version **out);

/* The version an act pins: referenced in *out. 404 not_found (field
 * "version") for a number never published, 409 failed_precondition for
 * one no longer kept (the message lists those kept). Version 0 is the
 * current one only while nothing has been published. */
int model_version_pin(srv_model *m, uint64_t number, srv_version **out, srv_err *e);
/* Makes kept version `number` current again, resets the optimiser (its
 * moments belong to the weights left), and snapshots the model with a data
 * directory before answering. Errors as model_version_pin; 409 busy while
 * a training job runs (it would publish over the promoted version). Promoting
 * the current version only snapshots again (so a retried promote succeeds). */
int model_promote(srv_app *app, srv_model *m, uint64_t number, srv_err *e);
/* The listing of GET /v1/models/{m}/versions (caller owns); NULL when out of
 * memory. */
cJSON *versions_render(srv_app *app, srv_model *m);

/* What published v, as JSON for snapshots and answers (caller owns):
 * {"published", "job", "epochs", "train_loss"}; and back (absent or
 * malformed fields left zero). */
cJSON *versions_info_json(const srv_version *v);
void versions_info_read(srv_version_info *info, const cJSON *json, int members);

/* After model_install moved a snapshot's current ensemble in: the current
 * version's info from META ("version_info"), the kept versions of sn (moved
 * out of it), the tags. MB_ENOMEM, or MB_ECORRUPT for a kept ensemble that
 * does not fit the spec. */
mb_status versions_install(srv_app *app, srv_model *m, mb_snapshot *sn, const cJSON *meta, char *err,
                           size_t err_sz);
/* A follower's copy of its trainer's version `number` becomes current
 * (takes ownership of *ens, leaving it zeroed; freed on failure). info is
 * the META's "version_info" (may be NULL). MB_ESTATE if m was deleted. */
int model_adopt(srv_app *app, srv_model *m, mb_ensemble *ens, uint64_t number, const cJSON *info,
                srv_err *e);

#endif
