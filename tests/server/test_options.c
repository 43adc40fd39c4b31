/* test_options.c: unit tests of server/options.c: the one option table
 * drives defaults, the command line (--name value, --name=value), the config
 * file (the command line wins), --help and validation. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_util.h"
#include "options.h"

START_TEST(test_defaults) {
    srv_config c;
    srv_config_default(&c);
    ck_assert_str_eq(c.listen, "127.0.0.1:8080");
    ck_assert_str_eq(c.fsync, "always");
    ck_assert_int_eq(c.max_body, 8 * 1024 * 1024);
    ck_assert_int_eq(c.session_timeout, 600);
    ck_assert_int_ge(c.threads, 2);
    ck_assert_int_eq(c.insecure, 0); /* protected mode unless asked */
    ck_assert_int_eq(c.auth_max_failures, 20);
    ck_assert_int_eq(c.auth_fail_window, 60);
}
END_TEST

START_TEST(test_command_line_and_file) {
    char path[] = "/tmp/mbrld-conf-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "# a comment\n  threads = 3\nmax-body=2048\nfsync = everysec\n\nlisten = 0.0.0.0:9000\n";
    ck_assert_int_eq((int)write(fd, text, sizeof text - 1), (int)sizeof text - 1);
    close(fd);
    char *argv[] = {"mbrld", "--config", path, "--threads=5", "--session-timeout", "30", NULL};
    srv_config c;
    char err[256];
    ck_assert_int_eq(srv_config_load(&c, 6, argv, stdout, err, sizeof err), 0);
    ck_assert_int_eq(c.threads, 5);          /* the command line wins */
    ck_assert_int_eq(c.max_body, 2048);      /* from the file */
    ck_assert_str_eq(c.fsync, "everysec");
    ck_assert_str_eq(c.listen, "0.0.0.0:9000");
    ck_assert_int_eq(c.session_timeout, 30);
    unlink(path);
}
END_TEST

START_TEST(test_validation) {
    srv_config c;
    char err[256];
    struct {
        int argc;
        char *argv[4];
        const char *needle;
    } bad[] = {
        {3, {"mbrld", "--threads", "0"}, "outside"},
        {3, {"mbrld", "--threads", "many"}, "not an integer"},
        {3, {"mbrld", "--fsync", "sometimes"}, "not one of"},
        {3, {"mbrld", "--nonsense", "1"}, "unknown option"},
        {2, {"mbrld", "--nonsense"}, "unknown option"},
        {2, {"mbrld", "--listen"}, "needs a value"},
        {2, {"mbrld", "stray"}, "unexpected argument"},
        {3, {"mbrld", "--tls-cert", "/x.pem"}, "go together"},
        {3, {"mbrld", "--config", "/nonexistent/mbrld.conf"}, "No such file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        ck_assert_int_eq(srv_config_load(&c, bad[i].argc, bad[i].argv, stdout, err, sizeof err), -1);
        ck_assert_msg(strstr(err, bad[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i, err, bad[i].needle);
    }
}
END_TEST

START_TEST(test_help_lists_every_option) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char *argv[] = {"mbrld", "--help", NULL};
    srv_config c;
    char err[64];
    ck_assert_int_eq(srv_config_load(&c, 2, argv, f, err, sizeof err), 1);
    fclose(f);
    const char *names[] = {"--listen", "--data-dir", "--config", "--fsync", "--tokens", "--tls-cert",
                           "--tls-key", "--threads", "--max-body", "--session-timeout", "--max-sessions",
                           "--insecure ", "--auth-max-failures", "--auth-fail-window"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ck_assert_msg(strstr(buf, names[i]) != NULL, "--help lacks %s", names[i]);
    free(buf);
}
END_TEST

/* --insecure is a flag: alone it sets 1 and takes no value (the next
 * argument stays an option); =0/=1 and `insecure = 1` in a file work too */
START_TEST(test_flag_insecure) {
    srv_config c;
    char err[256];
    char *a1[] = {"mbrld", "--insecure", "--threads", "3", NULL};
    ck_assert_int_eq(srv_config_load(&c, 4, a1, stdout, err, sizeof err), 0);
    ck_assert_int_eq(c.insecure, 1);
    ck_assert_int_eq(c.threads, 3);
    char *a2[] = {"mbrld", "--threads", "3", "--insecure", NULL}; /* last: no value needed */
    ck_assert_int_eq(srv_config_load(&c, 4, a2, stdout, err, sizeof err), 0);
    ck_assert_int_eq(c.insecure, 1);
    char *a3[] = {"mbrld", "--insecure=0", NULL};
    ck_assert_int_eq(srv_config_load(&c, 2, a3, stdout, err, sizeof err), 0);
    ck_assert_int_eq(c.insecure, 0);
    char *a4[] = {"mbrld", "--insecure=maybe", NULL};
    ck_assert_int_eq(srv_config_load(&c, 2, a4, stdout, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "--insecure"));
    char path[] = "/tmp/mbrld-conf-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "insecure = 1\nauth-max-failures = 5\n";
    ck_assert_int_eq((int)write(fd, text, sizeof text - 1), (int)sizeof text - 1);
    close(fd);
    char *a5[] = {"mbrld", "--config", path, NULL};
    ck_assert_int_eq(srv_config_load(&c, 3, a5, stdout, err, sizeof err), 0);
    ck_assert_int_eq(c.insecure, 1);
    ck_assert_int_eq(c.auth_max_failures, 5);
    unlink(path);
}
END_TEST

int main(void) {
    Suite *s = suite_create("options");
    TCase *tc = tcase_create("options");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_command_line_and_file);
    tcase_add_test(tc, test_validation);
    tcase_add_test(tc, test_help_lists_every_option);
    tcase_add_test(tc, test_flag_insecure);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
