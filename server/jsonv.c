/* jsonv.c: strict JSON readers with field paths (see jsonv.h). */
#include "jsonv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int jv_depth_ok(const char *text, size_t len, int max_depth) {
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) return 0;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 1;
}

static int jv__finite(const cJSON *n, char *path, size_t cap, srv_err *e) {
    if (cJSON_IsNumber(n)) {
        if (!isfinite(n->valuedouble))
            return srv_fail(e, MB_EINVAL, path, "number is not finite");
        return 0;
    }
    if (!cJSON_IsArray(n) && !cJSON_IsObject(n)) return 0;
    size_t base = strlen(path);
    int i = 0;
    for (const cJSON *c = n->child; c; c = c->next, i++) {
        if (cJSON_IsArray(n)) snprintf(path + base, cap - base, "[%d]", i);
        else snprintf(path + base, cap - base, "%s%s", base ? "." : "", c->string ? c->string : "");
        if (jv__finite(c, path, cap, e) != 0) return -1;
        path[base] = '\0';
    }
    return 0;
}

int jv_all_finite(const cJSON *root, srv_err *e) {
    char path[128] = "";
    return jv__finite(root, path, sizeof path, e);
}

/* A path that did not fit ends in "..." (error messages only). */
static void jv__fit(char *dst, size_t n, int k) {
    if (k >= 0 && (size_t)k < n) return;
    if (n >= 4) memcpy(dst + n - 4, "...", 4);
}

void jv_path(char *dst, size_t n, const char *base, const char *key) {
    jv__fit(dst, n, base && *base ? snprintf(dst, n, "%s.%s", base, key) : snprintf(dst, n, "%s", key));
}

void jv_path_i(char *dst, size_t n, const char *base, int i) {
    jv__fit(dst, n, snprintf(dst, n, "%s[%d]", base ? base : "", i));
}

int jv_object(const cJSON *obj, const char *path, const char *const *allowed, srv_err *e) {
    if (!cJSON_IsObject(obj)) return srv_fail(e, MB_EINVAL, path, "must be an object");
    for (const cJSON *c = obj->child; c; c = c->next) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (!strcmp(c->string, allowed[i])) ok = 1;
        char p[128];
        jv_path(p, sizeof p, path, c->string);
        if (!ok) return srv_fail(e, MB_EINVAL, p, "unknown field");
        /* duplicate keys: cJSON keeps both; the reader would see the first */
        for (const cJSON *d = c->next; d; d = d->next)
            if (!strcmp(c->string, d->string)) return srv_fail(e, MB_EINVAL, p, "duplicate field");
    }
    return 0;
}

/* Looks up key; 1 if absent and optional, -1 if absent and required. */
static int jv__get(const cJSON *obj, const char *base, const char *key, int required,
                   const cJSON **out, char *path, size_t cap, srv_err *e) {
    jv_path(path, cap, base, key);
    *out = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!*out || cJSON_IsNull(*out)) {
        if (required) return srv_fail(e, MB_EINVAL, path, "missing required field");
        return 1;
    }
    return 0;
}

int jv_int(const cJSON *obj, const char *base, const char *key, int required, long lo, long hi,
           long *out, srv_err *e) {
    const cJSON *n;
    char p[128];
    int r = jv__get(obj, base, key, required, &n, p, sizeof p, e);
    if (r) return r;
    if (!cJSON_IsNumber(n)) return srv_fail(e, MB_EINVAL, p, "must be an integer");
    double v = n->valuedouble;
    if (!isfinite(v) || v != floor(v)) return srv_fail(e, MB_EINVAL, p, "must be an integer");
    if (v < (double)lo || v > (double)hi)
        return srv_fail(e, MB_ERANGE, p, "must be in [%ld, %ld]", lo, hi);
    *out = (long)v;
    return 0;
}

int jv_num(const cJSON *obj, const char *base, const char *key, int required, double lo,
           double hi, double *out, srv_err *e) {
    const cJSON *n;
    char p[128];
    int r = jv__get(obj, base, key, required, &n, p, sizeof p, e);
    if (r) return r;
    if (!cJSON_IsNumber(n)) return srv_fail(e, MB_EINVAL, p, "must be a number");
    double v = n->valuedouble;
    if (!isfinite(v)) return srv_fail(e, MB_EINVAL, p, "number is not finite");
    if (v < lo || v > hi) return srv_fail(e, MB_ERANGE, p, "must be in [%g, %g]", lo, hi);
    *out = v;
    return 0;
}

int jv_bool(const cJSON *obj, const char *base, const char *key, int required, int *out,
            srv_err *e) {
    const cJSON *n;
    char p[128];
    int r = jv__get(obj, base, key, required, &n, p, sizeof p, e);
    if (r) return r;
    if (!cJSON_IsBool(n)) return srv_fail(e, MB_EINVAL, p, "must be true or false");
    *out = cJSON_IsTrue(n) ? 1 : 0;
    return 0;
}

int jv_str(const cJSON *obj, const char *base, const char *key, int required, char *out,
           size_t cap, srv_err *e) {
    const cJSON *n;
    char p[128];
    int r = jv__get(obj, base, key, required, &n, p, sizeof p, e);
    if (r) return r;
    if (!cJSON_IsString(n)) return srv_fail(e, MB_EINVAL, p, "must be a string");
    size_t len = strlen(n->valuestring);
    if (len == 0 || len >= cap)
        return srv_fail(e, MB_EINVAL, p, "must be 1..%zu characters", cap - 1);
    memcpy(out, n->valuestring, len + 1);
    return 0;
}

int jv_floats_node(const cJSON *arr, const char *path, int n, double lo, double hi, float *out,
                   int *n_out, srv_err *e) {
    if (!cJSON_IsArray(arr)) return srv_fail(e, MB_EINVAL, path, "must be an array of numbers");
    int len = cJSON_GetArraySize(arr);
    if (n >= 0 && len != n)
        return srv_fail(e, MB_EINVAL, path, "must have %d entries, has %d", n, len);
    if (n < 0 && (len < 1 || len > -n))
        return srv_fail(e, MB_EINVAL, path, "must have 1..%d entries, has %d", -n, len);
    int i = 0;
    for (const cJSON *c = arr->child; c; c = c->next, i++) {
        char p[128];
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble)) {
            jv_path_i(p, sizeof p, path, i);
            return srv_fail(e, MB_EINVAL, p, "must be a finite number");
        }
        if (c->valuedouble < lo || c->valuedouble > hi) {
            jv_path_i(p, sizeof p, path, i);
            return srv_fail(e, MB_ERANGE, p, "must be in [%g, %g]", lo, hi);
        }
        out[i] = (float)c->valuedouble;
    }
    if (n_out) *n_out = len;
    return 0;
}

int jv_floats(const cJSON *obj, const char *base, const char *key, int required, int n,
              double lo, double hi, float *out, int *n_out, srv_err *e) {
    const cJSON *a;
    char p[128];
    int r = jv__get(obj, base, key, required, &a, p, sizeof p, e);
    if (r) return r;
    return jv_floats_node(a, p, n, lo, hi, out, n_out, e);
}

int jv_ints(const cJSON *obj, const char *base, const char *key, int required, int n, long lo,
            long hi, int *out, int *n_out, srv_err *e) {
    const cJSON *a;
    char p[128];
    int r = jv__get(obj, base, key, required, &a, p, sizeof p, e);
    if (r) return r;
    if (!cJSON_IsArray(a)) return srv_fail(e, MB_EINVAL, p, "must be an array of integers");
    int len = cJSON_GetArraySize(a);
    if (n >= 0 && len != n) return srv_fail(e, MB_EINVAL, p, "must have %d entries, has %d", n, len);
    if (n < 0 && (len < 1 || len > -n))
        return srv_fail(e, MB_EINVAL, p, "must have 1..%d entries, has %d", -n, len);
    int i = 0;
    for (const cJSON *c = a->child; c; c = c->next, i++) {
        char q[128];
        jv_path_i(q, sizeof q, p, i);
        if (!cJSON_IsNumber(c) || c->valuedouble != floor(c->valuedouble))
            return srv_fail(e, MB_EINVAL, q, "must be an integer");
        if (c->valuedouble < (double)lo || c->valuedouble > (double)hi)
            return srv_fail(e, MB_ERANGE, q, "must be in [%ld, %ld]", lo, hi);
        out[i] = (int)c->valuedouble;
    }
    if (n_out) *n_out = len;
    return 0;
}
