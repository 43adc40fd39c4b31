/* jsonv.h: strict readers for request bodies (parsed cJSON trees).
 *
 * Every reader names the field it failed on by its JSON path ("planner.elites",
 * "transitions[2].obs[3]") in the srv_err, so a client knows what to fix.
 * Rules: unknown keys are rejected (jv_keys), numbers must be finite and in
 * the stated range, integers integral, vectors exactly as long as asked.
 * Readers return 0 on success, 1 when an optional key is absent (out left
 * untouched), -1 on error (e filled).
 * Not for: rendering answers, or anything numerical. */
#ifndef SRV_JSONV_H
#define SRV_JSONV_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "errors.h"

#define JV_MAX_DEPTH 8 /* objects/arrays nested deeper than this are refused */

/* Checks nesting depth of raw JSON text before parsing (strings skipped).
 * Returns 0 if every bracket depth <= max_depth. */
int jv_depth_ok(const char *text, size_t len, int max_depth);
/* Walks the tree; -1 with the path of the first non-finite number (cJSON
 * turns 1e999 into inf). */
int jv_all_finite(const cJSON *root, srv_err *e);
/* path = base "." key (or key if base is empty). */
void jv_path(char *dst, size_t n, const char *base, const char *key);
/* path = base "[" i "]" */
void jv_path_i(char *dst, size_t n, const char *base, int i);

/* obj must be an object whose keys are all in allowed (NULL-terminated). */
int jv_object(const cJSON *obj, const char *path, const char *const *allowed, srv_err *e);
int jv_int(const cJSON *obj, const char *base, const char *key, int required, long lo, long hi,
           long *out, srv_err *e);
int jv_num(const cJSON *obj, const char *base, const char *key, int required, double lo,
           double hi, double *out, srv_err *e);
int jv_bool(const cJSON *obj, const char *base, const char *key, int required, int *out,
            srv_err *e);
/* A string of 1..cap-1 bytes. */
int jv_str(const cJSON *obj, const char *base, const char *key, int required, char *out,
           size_t cap, srv_err *e);
/* A float array; n >= 0: exactly n entries; n < 0: 1..-n entries, count in
 * *n_out. Values within [lo, hi].
 *   out: (n or -n) floats */
int jv_floats(const cJSON *obj, const char *base, const char *key, int required, int n,
              double lo, double hi, float *out, int *n_out, srv_err *e);
/* Same for a bare array node (path given). */
int jv_floats_node(const cJSON *arr, const char *path, int n, double lo, double hi, float *out,
                   int *n_out, srv_err *e);
/* An int array, same conventions. out: (n or -n) ints */
int jv_ints(const cJSON *obj, const char *base, const char *key, int required, int n, long lo,
            long hi, int *out, int *n_out, srv_err *e);

#endif
