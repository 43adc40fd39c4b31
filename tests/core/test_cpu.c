/* test_cpu.c: the run-time instruction-set level (core/base/cpu.c): names
 * round-trip, forcing clamps to what the CPU has, MBRLD_ISA is obeyed when
 * the suite runs under it (tests/run.sh runs this suite again with
 * MBRLD_ISA=avx2), bf16 only at the avx512 level.
 * Not for: whether the kernels agree across levels (test_dispatch). */
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "check_util.h"

START_TEST(test_names) {
    for (int i = MB_ISA_SCALAR; i <= MB_ISA_AVX512; i++) {
        mb_isa back;
        ck_assert_int_eq(mb_isa_parse(mb_isa_name((mb_isa)i), &back), 0);
        ck_assert_int_eq(back, i);
    }
    mb_isa x = MB_ISA_AVX2;
    ck_assert_int_eq(mb_isa_parse("sse2", &x), -1);
    ck_assert_int_eq(mb_isa_parse(NULL, &x), -1);
    ck_assert_int_eq(x, MB_ISA_AVX2);
    ck_assert_str_eq(mb_isa_name((mb_isa)7), "unknown");
}
END_TEST

START_TEST(test_env_and_force) {
    mb_isa max = mb_cpu_isa_max(), now = mb_cpu_isa();
    const char *env = getenv("MBRLD_ISA");
    mb_isa asked;
    if (env && *env && mb_isa_parse(env, &asked) == 0 && asked <= max) {
        ck_assert_int_eq(now, asked);
        ck_assert_ptr_null(mb_cpu_isa_env_note());
    } else {
        ck_assert_int_eq(now, max);
        if (env && *env) ck_assert_ptr_nonnull(mb_cpu_isa_env_note());
    }
    /* forcing: never above the CPU, and back */
    ck_assert_int_eq(mb_cpu_isa_force(MB_ISA_SCALAR), MB_ISA_SCALAR);
    ck_assert_int_eq(mb_cpu_isa(), MB_ISA_SCALAR);
    ck_assert_int_eq(mb_cpu_has_bf16(), 0);
    ck_assert_int_eq(mb_cpu_isa_force(MB_ISA_AVX512), max);
    ck_assert_int_eq(mb_cpu_isa(), max);
    if (max < MB_ISA_AVX512) ck_assert_int_eq(mb_cpu_has_bf16(), 0);
    mb_cpu_isa_force(now);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("cpu");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_env_and_force);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
