/* transitions_json.c: the transitions body decoded from its text (see
 * transitions_json.h). First a strict validating pass over the whole text
 * (no allocation, recursion bounded by JV_MAX_DEPTH); every later pass may
 * then assume valid JSON, yet still checks every bound. */
#include "transitions_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"

typedef struct {
    const char *s;
    size_t n, i;
} tj_in;

static void tj__ws(tj_in *in) {
    while (in->i < in->n && (in->s[in->i] == ' ' || in->s[in->i] == '\t' || in->s[in->i] == '\n' ||
                             in->s[in->i] == '\r'))
        in->i++;
}

static int tj__peek(const tj_in *in) { return in->i < in->n ? (unsigned char)in->s[in->i] : -1; }

static int tj__hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* ---- the validating pass ---------------------------------------------- */

#define TJ_BAD -1
#define TJ_DEEP -2

static int tj__v_string(tj_in *in) {
    in->i++; /* the opening quote */
    while (in->i < in->n) {
        unsigned char c = (unsigned char)in->s[in->i];
        if (c == '"') {
            in->i++;
            return 0;
        }
        if (c < 0x20) return TJ_BAD;
        if (c == '\\') {
            if (++in->i >= in->n) return TJ_BAD;
            char x = in->s[in->i];
            if (x == 'u') {
                if (in->i + 4 >= in->n) return TJ_BAD;
                for (int k = 1; k <= 4; k++)
                    if (tj__hex((unsigned char)in->s[in->i + k]) < 0) return TJ_BAD;
                in->i += 4;
            } else if (!strchr("\"\\/bfnrt", x) || x == 0) {
                return TJ_BAD;
            }
        }
        in->i++;
    }
    return TJ_BAD;
}

static int tj__digits(tj_in *in) {
    size_t s = in->i;
    while (in->i < in->n && in->s[in->i] >= '0' && in->s[in->i] <= '9') in->i++;
    return in->i > s ? 0 : TJ_BAD;
}

static int tj__v_number(tj_in *in) {
    if (tj__peek(in) == '-') in->i++;
    if (tj__peek(in) == '0') in->i++;
    else if (tj__digits(in)) return TJ_BAD;
    if (tj__peek(in) == '.') {
        in->i++;
        if (tj__digits(in)) return TJ_BAD;
    }
    if (tj__peek(in) == 'e' || tj__peek(in) == 'E') {
        in->i++;
        if (tj__peek(in) == '+' || tj__peek(in) == '-') in->i++;
        if (tj__digits(in)) return TJ_BAD;
    }
    return 0;
}

static int tj__v_literal(tj_in *in, const char *lit) {
    size_t k = strlen(lit);
    if (in->n - in->i < k || memcmp(in->s + in->i, lit, k) != 0) return TJ_BAD;
    in->i += k;
    return 0;
}

static int tj__v_value(tj_in *in, int depth) {
    tj__ws(in);
    int c = tj__peek(in);
    if (c == '"') return tj__v_string(in);
    if (c == '-' || (c >= '0' && c <= '9')) return tj__v_number(in);
    if (c == 't') return tj__v_literal(in, "true");
    if (c == 'f') return tj__v_literal(in, "false");
    if (c == 'n') return tj__v_literal(in, "null");
    if (c != '[' && c != '{') return TJ_BAD;
    if (depth + 1 > JV_MAX_DEPTH) return TJ_DEEP;
    int obj = c == '{';
    in->i++;
    tj__ws(in);
    if (tj__peek(in) == (obj ? '}' : ']')) {
        in->i++;
        return 0;
    }
    for (;;) {
        if (obj) {
            tj__ws(in);
            if (tj__peek(in) != '"') return TJ_BAD;
            int r = tj__v_string(in);
            if (r) return r;
            tj__ws(in);
            if (tj__peek(in) != ':') return TJ_BAD;
            in->i++;
        }
        int r = tj__v_value(in, depth + 1);
        if (r) return r;
        tj__ws(in);
        c = tj__peek(in);
        in->i++;
        if (c == ',') continue;
        if (c == (obj ? '}' : ']')) return 0;
        in->i--;
        return TJ_BAD;
    }
}

/* ---- readers over validated text ---------------------------------------- */

/* Skips one value (valid JSON assumed, bounds still checked). */
static void tj__skip(tj_in *in) {
    tj__ws(in);
    int depth = 0;
    do {
        int c = tj__peek(in);
        if (c < 0) return;
        if (c == '"') {
            in->i++;
            while (in->i < in->n && in->s[in->i] != '"') in->i += in->s[in->i] == '\\' ? 2 : 1;
            in->i++;
        } else if (c == '[' || c == '{') {
            depth++;
            in->i++;
        } else if (c == ']' || c == '}') {
            depth--;
            in->i++;
        } else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            in->i++;
        } else { /* number or literal */
            while (in->i < in->n && !strchr(",:]} \t\n\r", in->s[in->i])) in->i++;
        }
    } while (depth > 0 && in->i < in->n);
}

/* Decodes the string at in (escapes, \u surrogate pairs to UTF-8) into out
 * (cap bytes, NUL-terminated, cut at cap-1); *len: the decoded length, even
 * past cap. */
static void tj__string(tj_in *in, char *out, size_t cap, size_t *len) {
    size_t k = 0;
    in->i++;
#define TJ_PUT(ch)                                  \
    do {                                            \
        if (k + 1 < cap) out[k] = (char)(ch);       \
        k++;                                        \
    } while (0)
    while (in->i < in->n && in->s[in->i] != '"') {
        char c = in->s[in->i++];
        if (c != '\\') {
            TJ_PUT(c);
            continue;
        }
        if (in->i >= in->n) break;
        char x = in->s[in->i++];
        switch (x) {
        case 'b': TJ_PUT('\b'); break;
        case 'f': TJ_PUT('\f'); break;
        case 'n': TJ_PUT('\n'); break;
        case 'r': TJ_PUT('\r'); break;
        case 't': TJ_PUT('\t'); break;
        case 'u': {
            unsigned cp = 0;
            for (int d = 0; d < 4 && in->i < in->n; d++) cp = cp * 16 + (unsigned)tj__hex((unsigned char)in->s[in->i++]);
            if (cp >= 0xD800 && cp < 0xDC00 && in->i + 6 <= in->n && in->s[in->i] == '\\' &&
                in->s[in->i + 1] == 'u') {
                unsigned lo = 0;
                int ok = 1;
                for (int d = 2; d < 6; d++) {
                    int h = tj__hex((unsigned char)in->s[in->i + d]);
                    if (h < 0) ok = 0;
                    lo = lo * 16 + (unsigned)(h < 0 ? 0 : h);
                }
                if (ok && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    in->i += 6;
                }
            }
            if (cp < 0x80) {
                TJ_PUT(cp);
            } else if (cp < 0x800) {
                TJ_PUT(0xC0 | (cp >> 6));
                TJ_PUT(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                TJ_PUT(0xE0 | (cp >> 12));
                TJ_PUT(0x80 | ((cp >> 6) & 0x3F));
                TJ_PUT(0x80 | (cp & 0x3F));
            } else {
                TJ_PUT(0xF0 | (cp >> 18));
                TJ_PUT(0x80 | ((cp >> 12) & 0x3F));
                TJ_PUT(0x80 | ((cp >> 6) & 0x3F));
                TJ_PUT(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: TJ_PUT(x); break; /* \" \\ \/ */
        }
    }
#undef TJ_PUT
    in->i++; /* the closing quote */
    if (cap) out[k < cap ? k : cap - 1] = '\0';
    *len = k;
}

/* The number at in, as strtod reads it (the token was validated). 0, or -1
 * if no number starts here. */
static int tj__number(tj_in *in, double *v) {
    int c = tj__peek(in);
    if (!(c == '-' || (c >= '0' && c <= '9'))) return -1;
    size_t s = in->i;
    while (in->i < in->n && strchr("+-.eE0123456789", in->s[in->i]) && in->s[in->i]) in->i++;
    size_t k = in->i - s;
    char buf[128];
    char *tmp = k < sizeof buf ? buf : malloc(k + 1);
    if (!tmp) return -2;
    memcpy(tmp, in->s + s, k);
    tmp[k] = '\0';
    *v = strtod(tmp, NULL);
    if (tmp != buf) free(tmp);
    return 0;
}

/* Members of the object at in whose keys are in `keys` (NULL-terminated,
 * at most 8): at[k] = offset of key k's value, or (size_t)-1 when absent or
 * null. Unknown and duplicate keys are errors, as jv_object has them. */
static int tj__members(tj_in *in, const char *base, const char *const *keys, size_t *at, srv_err *e) {
    int nk = 0;
    while (keys[nk]) at[nk++] = (size_t)-1;
    int seen[8] = {0};
    tj__ws(in);
    in->i++; /* { */
    tj__ws(in);
    if (tj__peek(in) == '}') {
        in->i++;
        return 0;
    }
    while (in->i < in->n) {
        tj__ws(in);
        char key[96];
        size_t kl;
        tj__string(in, key, sizeof key, &kl);
        int k = -1;
        for (int j = 0; j < nk && kl < sizeof key; j++)
            if (strlen(keys[j]) == kl && !memcmp(keys[j], key, kl)) k = j;
        char p[128];
        jv_path(p, sizeof p, base, key);
        if (k < 0) return srv_fail(e, MB_EINVAL, p, "unknown field");
        if (seen[k]) return srv_fail(e, MB_EINVAL, p, "duplicate field");
        seen[k] = 1;
        tj__ws(in);
        in->i++; /* : */
        tj__ws(in);
        if (tj__peek(in) != 'n') at[k] = in->i;
        tj__skip(in);
        tj__ws(in);
        int c = tj__peek(in);
        in->i++;
        if (c != ',') break;
    }
    return 0;
}

/* Elements of the array at in (valid JSON assumed). */
static long tj__count(tj_in in) {
    tj__ws(&in);
    in.i++; /* [ */
    tj__ws(&in);
    if (tj__peek(&in) == ']') return 0;
    long n = 0;
    while (in.i < in.n) {
        tj__skip(&in);
        n++;
        tj__ws(&in);
        int c = tj__peek(&in);
        in.i++;
        if (c != ',') break;
    }
    return n;
}

/* ---- the transitions body ------------------------------------------------ */

int tj_head_parse(const char *text, size_t len, int max_rows, tj_head *h, srv_err *e) {
    memset(h, 0, sizeof *h);
    static const char *const keys[] = {"transitions", "client", "seq", NULL};
    size_t at[3] = {(size_t)-1, (size_t)-1, (size_t)-1};
    tj_in in = {text, len, 0};
    if (len > 0) {
        int r = tj__v_value(&in, 0);
        if (r == TJ_DEEP) return srv_fail(e, SRV_E_BAD_JSON, NULL, "JSON nested deeper than %d levels", JV_MAX_DEPTH);
        if (r) return srv_fail(e, SRV_E_BAD_JSON, NULL, "malformed JSON near byte %zu", in.i);
        tj__ws(&in);
        if (in.i < len)
            return srv_fail(e, SRV_E_BAD_JSON, NULL, "unexpected text after the JSON value at byte %zu", in.i);
        in.i = 0;
        tj__ws(&in);
        if (tj__peek(&in) != '{') return srv_fail(e, MB_EINVAL, NULL, "the body must be a JSON object");
        if (tj__members(&in, "", keys, at, e)) return -1;
    }
    if (at[1] != (size_t)-1) {
        in.i = at[1];
        if (tj__peek(&in) != '"') return srv_fail(e, MB_EINVAL, "client", "must be a string");
        size_t cl;
        tj__string(&in, h->client, sizeof h->client, &cl);
        if (cl < sizeof h->client) cl = strlen(h->client); /* a \u0000 ends it, as in cJSON */
        if (cl == 0 || cl >= sizeof h->client)
            return srv_fail(e, MB_EINVAL, "client", "must be 1..%zu characters", sizeof h->client - 1);
        h->has_client = 1;
    }
    if (at[2] != (size_t)-1) {
        in.i = at[2];
        double v;
        int r = tj__number(&in, &v);
        if (r == -2) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
        if (r || !isfinite(v) || v != floor(v)) return srv_fail(e, MB_EINVAL, "seq", "must be an integer");
        if (v < 0 || v > 9007199254740991.0) return srv_fail(e, MB_ERANGE, "seq", "must be in [0, 9007199254740991]");
        h->seq = (long)v;
        h->has_seq = 1;
    }
    if (h->has_client && !h->has_seq) return srv_fail(e, MB_EINVAL, "seq", "required with client");
    if (!h->has_client && h->has_seq) return srv_fail(e, MB_EINVAL, "client", "required with seq");
    if (at[0] == (size_t)-1) return srv_fail(e, MB_EINVAL, "transitions", "missing required field");
    in.i = at[0];
    if (tj__peek(&in) != '[') return srv_fail(e, MB_EINVAL, "transitions", "must be an array");
    long n = tj__count(in);
    if (n < 1 || n > max_rows)
        return srv_fail(e, MB_EINVAL, "transitions", "must hold 1..%d transitions", max_rows);
    h->n = (int)n;
    h->rows_at = at[0];
    return 0;
}

#define TJ_LO -3e38
#define TJ_HI 3e38

/* A float vector of exactly n entries at `at` ((size_t)-1: absent). */
static int tj__floats(const char *text, size_t len, size_t at, const char *base, const char *key, int n,
                      float *out, srv_err *e) {
    char p[128];
    jv_path(p, sizeof p, base, key);
    if (at == (size_t)-1) return srv_fail(e, MB_EINVAL, p, "missing required field");
    tj_in in = {text, len, at};
    if (tj__peek(&in) != '[') return srv_fail(e, MB_EINVAL, p, "must be an array of numbers");
    long cnt = tj__count(in);
    if (cnt != n) return srv_fail(e, MB_EINVAL, p, "must have %d entries, has %ld", n, cnt);
    in.i++; /* [ */
    for (int k = 0; k < n; k++) {
        tj__ws(&in);
        double v = 0;
        int r = tj__number(&in, &v);
        char q[128];
        if (r == -2) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
        if (r || !isfinite(v)) {
            jv_path_i(q, sizeof q, p, k);
            return srv_fail(e, MB_EINVAL, q, "must be a finite number");
        }
        if (v < TJ_LO || v > TJ_HI) {
            jv_path_i(q, sizeof q, p, k);
            return srv_fail(e, MB_ERANGE, q, "must be in [%g, %g]", TJ_LO, TJ_HI);
        }
        out[k] = (float)v;
        tj__ws(&in);
        in.i++; /* , or ] */
    }
    return 0;
}

/* A discrete action at `at`: an integer in [0, K), written one-hot into
 * out (K entries), as spec_discrete_action reads it from a tree. */
static int tj__discrete(const char *text, size_t len, size_t at, const char *base, const char *key, int K,
                        float *out, srv_err *e) {
    char p[128];
    jv_path(p, sizeof p, base, key);
    if (at == (size_t)-1) return srv_fail(e, MB_EINVAL, p, "missing required field");
    tj_in in = {text, len, at};
    double v = 0;
    int r = tj__number(&in, &v);
    if (r == -2) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    if (r || !isfinite(v) || v != floor(v))
        return srv_fail(e, MB_EINVAL, p, "must be an integer action in [0, %d)", K);
    if (v < 0 || v >= K) return srv_fail(e, MB_ERANGE, p, "must be in [0, %d)", K);
    for (int k = 0; k < K; k++) out[k] = (float)(k == (int)v);
    return 0;
}

static int tj__bool(const char *text, size_t len, size_t at, const char *base, const char *key, uint8_t *out,
                    srv_err *e) {
    *out = 0;
    if (at == (size_t)-1) return 0;
    char p[128];
    jv_path(p, sizeof p, base, key);
    if (len - at >= 4 && !memcmp(text + at, "true", 4)) *out = 1;
    else if (!(len - at >= 5 && !memcmp(text + at, "false", 5)))
        return srv_fail(e, MB_EINVAL, p, "must be true or false");
    return 0;
}

int tj_rows(const char *text, size_t len, const tj_head *h, int od, int ad, int discrete, float *obs,
            float *act, float *rew, float *next, uint8_t *term, uint8_t *trunc, srv_err *e) {
    static const char *const tkeys[] = {"obs", "action", "reward", "next_obs", "terminated", "truncated", NULL};
    tj_in in = {text, len, h->rows_at};
    tj__ws(&in);
    in.i++; /* [ */
    for (int i = 0; i < h->n; i++) {
        char p[48];
        jv_path_i(p, sizeof p, "transitions", i);
        tj__ws(&in);
        if (tj__peek(&in) != '{') return srv_fail(e, MB_EINVAL, p, "must be an object");
        size_t at[6];
        if (tj__members(&in, p, tkeys, at, e)) return -1;
        if (tj__floats(text, len, at[0], p, "obs", od, obs + (size_t)i * od, e) ||
            (discrete > 0 ? tj__discrete(text, len, at[1], p, "action", ad, act + (size_t)i * ad, e)
                          : tj__floats(text, len, at[1], p, "action", ad, act + (size_t)i * ad, e)))
            return -1;
        char q[128];
        jv_path(q, sizeof q, p, "reward");
        if (at[2] == (size_t)-1) return srv_fail(e, MB_EINVAL, q, "missing required field");
        tj_in rin = {text, len, at[2]};
        double rw;
        int r = tj__number(&rin, &rw);
        if (r == -2) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
        if (r) return srv_fail(e, MB_EINVAL, q, "must be a number");
        if (!isfinite(rw)) return srv_fail(e, MB_EINVAL, q, "number is not finite");
        if (rw < TJ_LO || rw > TJ_HI) return srv_fail(e, MB_ERANGE, q, "must be in [%g, %g]", TJ_LO, TJ_HI);
        rew[i] = (float)rw;
        if (tj__floats(text, len, at[3], p, "next_obs", od, next + (size_t)i * od, e) ||
            tj__bool(text, len, at[4], p, "terminated", term + i, e) ||
            tj__bool(text, len, at[5], p, "truncated", trunc + i, e))
            return -1;
        tj__ws(&in);
        in.i++; /* , or ] */
    }
    return 0;
}
