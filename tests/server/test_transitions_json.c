/* test_transitions_json.c: the transitions body decoder (server/
 * transitions_json.c) against the tree readers it replaced: every error case
 * with its status and JSON path, strict JSON (what cJSON let through is 400
 * now: leading zeros, "+1", ".5", raw control characters), escaped keys and
 * client ids, and random bodies in random layouts decoded to the same floats
 * as cJSON + strtod give, bit for bit.
 * Mirrors server/transitions_json.c. */
#include <cjson/cJSON.h>
#include <string.h>

#include "base/rng.h"
#include "check_util.h"
#include "transitions_json.h"

typedef struct {
    float obs[8], act[4], rew[8], next[8];
    uint8_t term[8], trunc[8];
} rows2; /* up to 2 rows of obs 3 (or 4), act 1 (or 2) */

/* Decodes text with od/ad; returns the srv_err status (0 = ok). */
static int decode(const char *text, int od, int ad, tj_head *h, rows2 *r, srv_err *e) {
    memset(e, 0, sizeof *e);
    memset(r, 0, sizeof *r);
    if (tj_head_parse(text, strlen(text), 2, h, e) != 0) return e->status;
    if (tj_rows(text, strlen(text), h, od, ad, 0, r->obs, r->act, r->rew, r->next, r->term, r->trunc, e) != 0)
        return e->status;
    return 0;
}

#define ROW "{\"obs\": [1, 2, 3], \"action\": [0.5], \"reward\": -1, \"next_obs\": [4, 5, 6]}"

START_TEST(test_valid_bodies) {
    tj_head h;
    rows2 r;
    srv_err e;
    ck_assert_int_eq(decode("{\"transitions\": [" ROW "]}", 3, 1, &h, &r, &e), 0);
    ck_assert_int_eq(h.n, 1);
    ck_assert_int_eq(h.has_client, 0);
    ck_assert(r.obs[2] == 3.0f && r.act[0] == 0.5f && r.rew[0] == -1.0f && r.next[0] == 4.0f);
    ck_assert_int_eq(r.term[0], 0);
    /* keys in any order, escapes in keys and the client, null = absent,
     * exponents, whitespace everywhere */
    const char *b = " \r\n{ \"seq\" : 12 , \"c\\u006cient\":\"r\\u00e9b\\ud83d\\ude00\\\"t\",\"transitions\":[ "
                    "{\"next_obs\":[1e1,-0.0,2.5E-1],\"terminated\":true,\"truncated\":null,"
                    "\"\\u006fbs\":[1,2,3],\"reward\":1e-2,\"action\":[-2e0]},"
                    "{\"obs\":[0,0,0],\"action\":[0],\"reward\":0,\"next_obs\":[0,0,0],\"truncated\":true}] } \t";
    ck_assert_int_eq(decode(b, 3, 1, &h, &r, &e), 0);
    ck_assert_int_eq(h.n, 2);
    ck_assert_int_eq(h.has_client, 1);
    ck_assert_str_eq(h.client, "r\xc3\xa9" "b\xf0\x9f\x98\x80\"t");
    ck_assert_int_eq(h.has_seq, 1);
    ck_assert_int_eq(h.seq, 12);
    ck_assert(r.next[0] == 10.0f && r.next[2] == 0.25f && r.rew[0] == 0.01f && r.act[0] == -2.0f);
    ck_assert(r.term[0] == 1 && r.trunc[0] == 0 && r.term[1] == 0 && r.trunc[1] == 1);
    /* an empty body reads as {} */
    ck_assert_int_eq(decode("", 3, 1, &h, &r, &e), MB_EINVAL);
    ck_assert_str_eq(e.field, "transitions");
}
END_TEST

START_TEST(test_errors_name_the_field) {
    static const struct {
        const char *body;
        int status;
        const char *field;
    } cases[] = {
        {"{\"transitions\": [" ROW "]", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [" ROW "]} x", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [" ROW ",]}", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [{\"obs\": [01, 2, 3]}]}", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [{\"obs\": [+1, 2, 3]}]}", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [{\"obs\": [.5, 2, 3]}]}", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [{\"obs\": [1., 2, 3]}]}", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [{\"obs\": [NaN, 2, 3]}]}", SRV_E_BAD_JSON, ""},
        {"{\"client\": \"a\tb\", \"seq\": 1}", SRV_E_BAD_JSON, ""},
        {"{\"client\": \"a\\xb\", \"seq\": 1}", SRV_E_BAD_JSON, ""},
        {"{\"client\": \"\\u12G4\", \"seq\": 1}", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": [[[[[[[[[1]]]]]]]]]}", SRV_E_BAD_JSON, ""},
        {"{\"transitions\": tru}", SRV_E_BAD_JSON, ""},
        {"[1]", MB_EINVAL, ""},
        {"\"x\"", MB_EINVAL, ""},
        {"{}", MB_EINVAL, "transitions"},
        {"{\"transitions\": null}", MB_EINVAL, "transitions"},
        {"{\"transitions\": {}}", MB_EINVAL, "transitions"},
        {"{\"transitions\": []}", MB_EINVAL, "transitions"},
        {"{\"transitions\": [" ROW "," ROW "," ROW "]}", MB_EINVAL, "transitions"}, /* max 2 here */
        {"{\"transitions\": [" ROW "], \"extra\": 1}", MB_EINVAL, "extra"},
        {"{\"transitions\": [" ROW "], \"transitions\": [" ROW "]}", MB_EINVAL, "transitions"},
        {"{\"transitions\": [" ROW "], \"client\": \"c\"}", MB_EINVAL, "seq"},
        {"{\"transitions\": [" ROW "], \"seq\": 3}", MB_EINVAL, "client"},
        {"{\"transitions\": [" ROW "], \"client\": 5, \"seq\": 3}", MB_EINVAL, "client"},
        {"{\"transitions\": [" ROW "], \"client\": \"\", \"seq\": 3}", MB_EINVAL, "client"},
        {"{\"transitions\": [" ROW "], \"client\": \"\\u0000x\", \"seq\": 3}", MB_EINVAL, "client"},
        {"{\"transitions\": [" ROW "], \"client\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", "
         "\"seq\": 3}", MB_EINVAL, "client"},
        {"{\"transitions\": [" ROW "], \"client\": \"c\", \"seq\": 1.5}", MB_EINVAL, "seq"},
        {"{\"transitions\": [" ROW "], \"client\": \"c\", \"seq\": \"1\"}", MB_EINVAL, "seq"},
        {"{\"transitions\": [" ROW "], \"client\": \"c\", \"seq\": -1}", MB_ERANGE, "seq"},
        {"{\"transitions\": [" ROW "], \"client\": \"c\", \"seq\": 1e300}", MB_ERANGE, "seq"},
        {"{\"transitions\": [" ROW "], \"client\": \"c\", \"seq\": 1e999}", MB_EINVAL, "seq"},
        {"{\"transitions\": [5]}", MB_EINVAL, "transitions[0]"},
        {"{\"transitions\": [" ROW ", 5]}", MB_EINVAL, "transitions[1]"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0], \"reward\": 0}]}", MB_EINVAL,
         "transitions[0].next_obs"},
        {"{\"transitions\": [{\"obs\": [1, 2], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0]}]}",
         MB_EINVAL, "transitions[0].obs"},
        {"{\"transitions\": [{\"obs\": 1, \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0]}]}", MB_EINVAL,
         "transitions[0].obs"},
        {"{\"transitions\": [{\"obs\": [1, \"2\", 3], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0]}]}",
         MB_EINVAL, "transitions[0].obs[1]"},
        {"{\"transitions\": [{\"obs\": [1, 2, 1e999], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0]}]}",
         MB_EINVAL, "transitions[0].obs[2]"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [4e38], \"reward\": 0, \"next_obs\": [0, 0, 0]}]}",
         MB_ERANGE, "transitions[0].action[0]"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0, 1], \"reward\": 0, \"next_obs\": [0, 0, 0]}]}",
         MB_EINVAL, "transitions[0].action"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0], \"reward\": \"x\", \"next_obs\": [0, 0, 0]}]}",
         MB_EINVAL, "transitions[0].reward"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0], \"reward\": -1e999, \"next_obs\": [0, 0, 0]}]}",
         MB_EINVAL, "transitions[0].reward"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0], \"reward\": 1e39, \"next_obs\": [0, 0, 0]}]}",
         MB_ERANGE, "transitions[0].reward"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0], "
         "\"terminated\": 1}]}", MB_EINVAL, "transitions[0].terminated"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0], "
         "\"truncated\": \"true\"}]}", MB_EINVAL, "transitions[0].truncated"},
        {"{\"transitions\": [{\"obs\": [1, 2, 3], \"obs\": [1, 2, 3]}]}", MB_EINVAL, "transitions[0].obs"},
        {"{\"transitions\": [{\"ob\\u0073x\": 1}]}", MB_EINVAL, "transitions[0].obsx"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tj_head h;
        rows2 r;
        srv_err e;
        int st = decode(cases[i].body, 3, 1, &h, &r, &e);
        ck_assert_msg(st == cases[i].status, "case %zu (%s): status %d, want %d (%s)", i, cases[i].body, st,
                      cases[i].status, e.message);
        ck_assert_msg(!strcmp(e.field, cases[i].field), "case %zu (%s): field '%s', want '%s'", i, cases[i].body,
                      e.field, cases[i].field);
        ck_assert_msg(e.message[0], "case %zu: no message", i);
    }
}
END_TEST

/* Random rows written in random layouts (spaces, exponents, key order,
 * escaped keys) decode to exactly what cJSON + strtod read. */
/* Discrete models ("actions": {"discrete": K}): the action is an integer in
 * [0, K), stored one-hot; anything else is a 400/422 at its path. */
static int decode_discrete(const char *text, int K, rows2 *r, srv_err *e) {
    tj_head h;
    memset(e, 0, sizeof *e);
    memset(r, 0, sizeof *r);
    if (tj_head_parse(text, strlen(text), 2, &h, e) != 0) return e->status;
    if (tj_rows(text, strlen(text), &h, 3, K, K, r->obs, r->act, r->rew, r->next, r->term, r->trunc, e) != 0)
        return e->status;
    return 0;
}

START_TEST(test_discrete_actions) {
    rows2 r;
    srv_err e;
#define DROW(a) "{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": " a ", \"reward\": 0, \"next_obs\": [4, 5, 6]}]}"
    ck_assert_int_eq(decode_discrete(DROW("2"), 3, &r, &e), 0);
    ck_assert(r.act[0] == 0.0f && r.act[1] == 0.0f && r.act[2] == 1.0f);
    ck_assert_int_eq(decode_discrete(DROW("0"), 3, &r, &e), 0);
    ck_assert(r.act[0] == 1.0f && r.act[1] == 0.0f && r.act[2] == 0.0f);
    ck_assert_int_eq(decode_discrete(DROW("3"), 3, &r, &e), MB_ERANGE);
    ck_assert_str_eq(e.field, "transitions[0].action");
    ck_assert_int_eq(decode_discrete(DROW("-1"), 3, &r, &e), MB_ERANGE);
    ck_assert_int_eq(decode_discrete(DROW("1.5"), 3, &r, &e), MB_EINVAL);
    ck_assert_str_eq(e.field, "transitions[0].action");
    ck_assert_int_eq(decode_discrete(DROW("[1]"), 3, &r, &e), MB_EINVAL);
    ck_assert_int_eq(decode_discrete(DROW("\"1\""), 3, &r, &e), MB_EINVAL);
    ck_assert_int_eq(decode_discrete("{\"transitions\": [{\"obs\": [1, 2, 3], \"reward\": 0, \"next_obs\": [4, 5, 6]}]}",
                                     3, &r, &e), MB_EINVAL);
    ck_assert_str_eq(e.field, "transitions[0].action");
#undef DROW
}
END_TEST

START_TEST(test_same_floats_as_cjson) {
    mb_rng rng;
    mb_rng_seed(&rng, 11);
    static const char *const names[] = {"obs", "action", "reward", "next_obs"};
    static const char *const escaped[] = {"\\u006fbs", "act\\u0069on", "rewar\\u0064", "next_ob\\u0073"};
    char text[4096];
    for (int it = 0; it < 2000; it++) {
        size_t len = 0;
        len += (size_t)snprintf(text + len, sizeof text - len, "{\"transitions\":[");
        for (int row = 0; row < 2; row++) {
            len += (size_t)snprintf(text + len, sizeof text - len, "%s{", row ? "," : "");
            int order[4] = {0, 1, 2, 3};
            for (int k = 3; k > 0; k--) {
                int j = (int)mb_rng_below(&rng, (uint64_t)(k + 1)), t = order[k];
                order[k] = order[j], order[j] = t;
            }
            for (int k = 0; k < 4; k++) {
                int f = order[k];
                const char *key = mb_rng_below(&rng, 4) ? names[f] : escaped[f];
                len += (size_t)snprintf(text + len, sizeof text - len, "%s%s\"%s\"%s:", k ? "," : "",
                                        mb_rng_below(&rng, 2) ? " " : "", key, mb_rng_below(&rng, 2) ? "\n" : "");
                int cnt = f == 0 || f == 3 ? 4 : f == 1 ? 2 : 1;
                if (f != 2) len += (size_t)snprintf(text + len, sizeof text - len, "[");
                for (int c = 0; c < cnt; c++) {
                    double v = (mb_rng_uniform(&rng) - 0.5) * pow(10.0, (double)mb_rng_below(&rng, 60) - 30.0);
                    const char *fmt = mb_rng_below(&rng, 3) == 0 ? "%s%.17g" : mb_rng_below(&rng, 2) ? "%s%.9e" : "%s%.6f";
                    len += (size_t)snprintf(text + len, sizeof text - len, fmt, c ? " , " : "", v);
                }
                if (f != 2) len += (size_t)snprintf(text + len, sizeof text - len, "]");
            }
            len += (size_t)snprintf(text + len, sizeof text - len, "}");
        }
        len += (size_t)snprintf(text + len, sizeof text - len, "]}");
        ck_assert_uint_lt(len, sizeof text - 1);
        tj_head h;
        rows2 r;
        srv_err e;
        ck_assert_msg(decode(text, 4, 2, &h, &r, &e) == 0, "%s: %s at %s", text, e.message, e.field);
        cJSON *root = cJSON_Parse(text);
        ck_assert_ptr_nonnull(root);
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "transitions");
        for (int row = 0; row < 2; row++) {
            const cJSON *t = cJSON_GetArrayItem(ts, row);
            for (int f = 0; f < 4; f++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, names[f]);
                const float *got = f == 0 ? r.obs + row * 4 : f == 1 ? r.act + row * 2 : f == 2 ? r.rew + row : r.next + row * 4;
                int cnt = f == 2 ? 1 : cJSON_GetArraySize(v);
                for (int c = 0; c < cnt; c++) {
                    double want = f == 2 ? v->valuedouble : cJSON_GetArrayItem(v, c)->valuedouble;
                    float wf = (float)want;
                    ck_assert_msg(!memcmp(&wf, &got[c], sizeof wf), "%s: row %d %s[%d] %.9g vs cJSON %.9g", text,
                                  row, names[f], c, got[c], wf);
                }
            }
        }
        cJSON_Delete(root);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("transitions_json");
    TCase *tc = tcase_create("decode");
    tcase_add_test(tc, test_valid_bodies);
    tcase_add_test(tc, test_errors_name_the_field);
    tcase_add_test(tc, test_same_floats_as_cjson);
    tcase_add_test(tc, test_discrete_actions);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
