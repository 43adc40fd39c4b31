/* test_jsonv.c: unit tests of server/jsonv.c, the strict request readers:
 * depth limit before parsing, non-finite numbers, unknown and duplicate
 * fields, types, ranges, vector lengths, and the field path of each error. */
#include <string.h>

#include "check_util.h"
#include "jsonv.h"

static cJSON *parse(const char *s) {
    cJSON *j = cJSON_Parse(s);
    ck_assert_msg(j != NULL, "test JSON does not parse: %s", s);
    return j;
}

START_TEST(test_depth) {
    ck_assert(jv_depth_ok("{\"a\": [[1]]}", 12, 3));
    ck_assert(!jv_depth_ok("{\"a\": [[1]]}", 12, 2));
    /* brackets inside strings do not count, escaped quotes do not end them */
    const char *s = "{\"a\": \"[[[[\\\"[[[[\"}";
    ck_assert(jv_depth_ok(s, strlen(s), 1));
}
END_TEST

START_TEST(test_finite) {
    cJSON *j = parse("{\"a\": {\"b\": [1, 2, 1e999]}}");
    srv_err e = {0};
    ck_assert_int_eq(jv_all_finite(j, &e), -1);
    ck_assert_str_eq(e.field, "a.b[2]");
    cJSON_Delete(j);
    j = parse("{\"a\": [1, -1e308]}");
    ck_assert_int_eq(jv_all_finite(j, &e), 0);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_readers) {
    cJSON *j = parse("{\"n\": 3, \"x\": 2.5, \"b\": true, \"s\": \"hi\", \"v\": [1, 2, 3], \"o\": {\"k\": 1}}");
    srv_err e = {0};
    long n;
    double x;
    int b, len;
    char s[8];
    float v[4];
    ck_assert_int_eq(jv_int(j, "", "n", 1, 0, 10, &n, &e), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(jv_int(j, "", "n", 1, 4, 10, &n, &e), -1);
    ck_assert_int_eq(e.status, MB_ERANGE);
    ck_assert_str_eq(e.field, "n");
    ck_assert_int_eq(jv_int(j, "", "x", 1, 0, 10, &n, &e), -1); /* 2.5 is no integer */
    ck_assert_int_eq(e.status, MB_EINVAL);
    ck_assert_int_eq(jv_num(j, "", "x", 1, 0, 10, &x, &e), 0);
    MB_ASSERT_CLOSE("x", x, 2.5, 0);
    ck_assert_int_eq(jv_bool(j, "", "b", 1, &b, &e), 0);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(jv_bool(j, "", "n", 1, &b, &e), -1);
    ck_assert_int_eq(jv_str(j, "", "s", 1, s, sizeof s, &e), 0);
    ck_assert_str_eq(s, "hi");
    ck_assert_int_eq(jv_floats(j, "", "v", 1, 3, -10, 10, v, NULL, &e), 0);
    MB_ASSERT_CLOSE("v[2]", v[2], 3, 0);
    ck_assert_int_eq(jv_floats(j, "", "v", 1, 4, -10, 10, v, NULL, &e), -1);
    ck_assert_str_eq(e.field, "v");
    ck_assert_int_eq(jv_floats(j, "", "v", 1, -4, -10, 10, v, &len, &e), 0);
    ck_assert_int_eq(len, 3);
    ck_assert_int_eq(jv_floats(j, "", "v", 1, 3, -10, 2.5, v, NULL, &e), -1);
    ck_assert_str_eq(e.field, "v[2]");
    ck_assert_int_eq(e.status, MB_ERANGE);
    ck_assert_int_eq(jv_int(cJSON_GetObjectItem(j, "o"), "o", "k", 1, 0, 0, &n, &e), -1);
    ck_assert_str_eq(e.field, "o.k");
    ck_assert_int_eq(jv_int(j, "", "missing", 0, 0, 1, &n, &e), 1);  /* optional, absent */
    ck_assert_int_eq(jv_int(j, "", "missing", 1, 0, 1, &n, &e), -1); /* required, absent */
    ck_assert_str_eq(e.field, "missing");
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_unknown_and_duplicate_keys) {
    static const char *const keys[] = {"a", "b", NULL};
    srv_err e = {0};
    cJSON *j = parse("{\"a\": 1, \"c\": 2}");
    ck_assert_int_eq(jv_object(j, "top", keys, &e), -1);
    ck_assert_str_eq(e.field, "top.c");
    cJSON_Delete(j);
    j = parse("{\"a\": 1, \"b\": 2, \"a\": 3}");
    ck_assert_int_eq(jv_object(j, "", keys, &e), -1);
    ck_assert_str_eq(e.field, "a");
    cJSON_Delete(j);
    j = parse("[1]");
    ck_assert_int_eq(jv_object(j, "x", keys, &e), -1);
    ck_assert_str_eq(e.field, "x");
    cJSON_Delete(j);
}
END_TEST

int main(void) {
    Suite *s = suite_create("jsonv");
    TCase *tc = tcase_create("jsonv");
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_finite);
    tcase_add_test(tc, test_readers);
    tcase_add_test(tc, test_unknown_and_duplicate_keys);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
