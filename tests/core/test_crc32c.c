/* test_crc32c.c: CRC-32C against published check values (the "123456789"
 * vector and RFC 3720's iSCSI vectors), hardware vs table path on every
 * length and alignment, and incremental == one-shot. */
#include <stdint.h>
#include <string.h>

#include "check_util.h"
#include "base/crc32c.h"

START_TEST(test_check_value) {
    ck_assert_uint_eq(mb_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(mb_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(mb_crc32c(0, NULL, 0), 0u);
}
END_TEST

/* RFC 3720 appendix B.4 (bytes in order; the RFC prints the CRC bytes
 * little-endian). */
START_TEST(test_rfc3720_vectors) {
    unsigned char b[32];
    memset(b, 0, sizeof b);
    ck_assert_uint_eq(mb_crc32c(0, b, 32), 0x8A9136AAu);
    memset(b, 0xFF, sizeof b);
    ck_assert_uint_eq(mb_crc32c(0, b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
    ck_assert_uint_eq(mb_crc32c(0, b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
    ck_assert_uint_eq(mb_crc32c(0, b, 32), 0x113FDB5Cu);
    ck_assert_uint_eq(mb_crc32c_sw(0, b, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(test_hw_matches_table_and_incremental) {
    unsigned char buf[1100];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (size_t start = 0; start < 9; start++) {
        for (size_t n = 0; n + start <= 1000; n += (n < 40 ? 1 : 37)) {
            uint32_t a = mb_crc32c(0, buf + start, n), b = mb_crc32c_sw(0, buf + start, n);
            ck_assert_msg(a == b, "start %zu n %zu: hw 0x%08x sw 0x%08x", start, n, a, b);
            size_t cut = n / 3;
            uint32_t c = mb_crc32c(mb_crc32c(0, buf + start, cut), buf + start + cut, n - cut);
            ck_assert_msg(a == c, "incremental start %zu n %zu cut %zu", start, n, cut);
        }
    }
    /* Any single flipped bit changes the checksum. */
    uint32_t ref = mb_crc32c(0, buf, 512);
    for (int bit = 0; bit < 512 * 8; bit += 7) {
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        ck_assert_uint_ne(mb_crc32c(0, buf, 512), ref);
        buf[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("crc32c");
    tcase_add_test(tc, test_check_value);
    tcase_add_test(tc, test_rfc3720_vectors);
    tcase_add_test(tc, test_hw_matches_table_and_incremental);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
