/* test_log.c: log lines (server/log.c) stay one logfmt event whatever the
 * values hold: a value with spaces, quotes, '=', backslashes, newlines or
 * control characters cannot add a field or a line, and parses back (by a
 * strict logfmt reader here) to exactly the value given.
 * Mirrors server/log.c. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "log.h"

typedef struct {
    char key[16][32];
    char val[16][512];
    int n;
} kvs;

/* Strict logfmt: key=value pairs split by single spaces; a value is bare
 * (no space, quote or '=') or quoted with \\" \\\\ \\n \\r \\t \\xHH escapes.
 * Returns 0, or -1 where the text is not that. */
static int parse(const char *s, kvs *o) {
    memset(o, 0, sizeof *o);
    while (*s) {
        if (o->n == 16) return -1;
        const char *eq = strchr(s, '=');
        if (!eq || eq == s || (size_t)(eq - s) >= sizeof o->key[0]) return -1;
        for (const char *k = s; k < eq; k++)
            if (*k == ' ' || *k == '"') return -1;
        memcpy(o->key[o->n], s, (size_t)(eq - s));
        s = eq + 1;
        char *v = o->val[o->n];
        size_t vn = 0;
        if (*s == '"') {
            s++;
            while (*s && *s != '"') {
                char c = *s++;
                if (c == '\\') {
                    char x = *s++;
                    if (x == 'n') c = '\n';
                    else if (x == 'r') c = '\r';
                    else if (x == 't') c = '\t';
                    else if (x == '"' || x == '\\') c = x;
                    else if (x == 'x') {
                        unsigned h;
                        if (sscanf(s, "%2x", &h) != 1) return -1;
                        c = (char)h;
                        s += 2;
                    } else return -1;
                } else if ((unsigned char)c < 0x20) {
                    return -1; /* raw control characters never appear */
                }
                if (vn + 1 < sizeof o->val[0]) v[vn++] = c;
            }
            if (*s != '"') return -1;
            s++;
        } else {
            while (*s && *s != ' ') {
                if (*s == '"' || *s == '=' || (unsigned char)*s < 0x20) return -1;
                if (vn + 1 < sizeof o->val[0]) v[vn++] = *s;
                s++;
            }
        }
        v[vn] = '\0';
        o->n++;
        if (*s == ' ') s++;
        else if (*s) return -1;
    }
    return 0;
}

static const char *const nasty[] = {
    "plain",
    "/v1/models/a b",
    "x level=error msg=\"forged\"",
    "quote\" forged=1",
    "back\\slash\\\" forged=2",
    "new\nline level=error",
    "cr\rtab\tbell\x07 del\x7f",
    "",
    "unicode \xc3\xa9\xe2\x82\xac",
    "=",
    "k=v",
    "\"",
    "\\",
};

START_TEST(test_values_cannot_forge_fields) {
    for (size_t i = 0; i < sizeof nasty / sizeof nasty[0]; i++) {
        char line[2048];
        srv_log_format(line, sizeof line, "url=%s label=%s error=\"%s\" status=%d", nasty[i], "ok", nasty[i], 503);
        kvs kv;
        ck_assert_msg(parse(line, &kv) == 0, "value %zu: not logfmt: %s", i, line);
        ck_assert_msg(kv.n == 4, "value %zu: %d fields in %s", i, kv.n, line);
        ck_assert_str_eq(kv.key[0], "url");
        ck_assert_str_eq(kv.val[0], nasty[i]);
        ck_assert_str_eq(kv.key[1], "label");
        ck_assert_str_eq(kv.val[1], "ok");
        ck_assert_str_eq(kv.key[2], "error");
        ck_assert_str_eq(kv.val[2], nasty[i]);
        ck_assert_str_eq(kv.key[3], "status");
        ck_assert_str_eq(kv.val[3], "503");
        ck_assert_ptr_null(strchr(line, '\n'));
    }
}
END_TEST

START_TEST(test_other_conversions) {
    char line[512];
    srv_log_format(line, sizeof line, "a=%d b=%ld c=%zu d=%llu e=%.3f f=%u g=%x h=%%s i=%.2s j=%c k=%" PRIu64, -7,
                   -123456789012L, (size_t)42, 18446744073709551615ULL, 1.23456, 7u, 255u, "xyz", 'q',
                   (uint64_t)9);
    ck_assert_str_eq(line, "a=-7 b=-123456789012 c=42 d=18446744073709551615 e=1.235 f=7 g=ff h=%s i=xy j=q k=9");
    const char *volatile none = NULL; /* NULL: printed as (null) */
    srv_log_format(line, sizeof line, "n=%s", none);
    ck_assert_str_eq(line, "n=(null)");
    /* truncated to the buffer, NUL-terminated */
    char small[8];
    srv_log_format(small, sizeof small, "k=%s", "0123456789");
    ck_assert_uint_eq(strlen(small), 7);
}
END_TEST

/* The whole line through stderr: one line, one write, msg escaped too. */
START_TEST(test_one_line_on_stderr) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    int saved = dup(2);
    dup2(fds[1], 2);
    srv_log_set_level(SRV_LOG_DEBUG);
    srv_log(SRV_LOG_WARN, "msg with \"quotes\"\nand a newline", "model=%s error=\"%s\"", "a b\nlevel=error",
            "x\" y=1");
    dup2(saved, 2);
    close(saved);
    close(fds[1]);
    char buf[2048];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_msg(buf[n - 1] == '\n' && strchr(buf, '\n') == buf + n - 1, "not one line: %s", buf);
    buf[n - 1] = '\0';
    kvs kv;
    ck_assert_msg(parse(buf, &kv) == 0, "not logfmt: %s", buf);
    ck_assert_int_eq(kv.n, 5); /* ts level msg model error */
    ck_assert_str_eq(kv.key[2], "msg");
    ck_assert_str_eq(kv.val[2], "msg with \"quotes\"\nand a newline");
    ck_assert_str_eq(kv.val[3], "a b\nlevel=error");
    ck_assert_str_eq(kv.val[4], "x\" y=1");
}
END_TEST

int main(void) {
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, test_values_cannot_forge_fields);
    tcase_add_test(tc, test_other_conversions);
    tcase_add_test(tc, test_one_line_on_stderr);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
