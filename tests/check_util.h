/* check_util.h: shared helpers for the libcheck suites.
 *
 * MB_ASSERT_CLOSE(label, got, want, tol): a tolerance check that names the
 * quantity (llm.c's check_tensor habit). mb_test_main(): runs one suite with
 * the normal verbosity line the test runner parses. mb_test_scale(): 1 in
 * plain builds, smaller under the sanitizers (MBRLD_SANITIZER=1) so slow
 * tests shrink their workloads there. */
#ifndef MB_CHECK_UTIL_H
#define MB_CHECK_UTIL_H

#include <check.h>
#include <math.h>
#include <stdlib.h>

#define MB_ASSERT_CLOSE(label, got, want, tol)                                         \
    do {                                                                               \
        double mb__g = (double)(got), mb__w = (double)(want), mb__t = (double)(tol);   \
        ck_assert_msg(isfinite(mb__g) && fabs(mb__g - mb__w) <= mb__t,                 \
                      "%s: got %.9g, want %.9g (tol %.3g, diff %.3g)", (label), mb__g, \
                      mb__w, mb__t, fabs(mb__g - mb__w));                              \
    } while (0)

static inline int mb_test_sanitized(void) {
    const char *s = getenv("MBRLD_SANITIZER");
    return s && s[0] == '1';
}

static inline int mb_test_main(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
