/* test_sha256.c: SHA-256 against the FIPS 180-2 vectors (appendix B: "abc",
 * the 448-bit two-block message, one million 'a'), the empty message, and
 * incremental == one-shot across every split (the padding edge at 55/56/64
 * bytes included). */
#include <string.h>

#include "check_util.h"
#include "base/sha256.h"

static void hex_of(const void *msg, size_t n, char hex[65]) {
    unsigned char d[MB_SHA256_LEN];
    mb_sha256(msg, n, d);
    mb_sha256_hex(d, hex);
}

START_TEST(test_fips_vectors) {
    char hex[65];
    hex_of("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of(NULL, 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* the padding edges: 55 bytes fit one block, 56 and 64 need two
     * (values from coreutils' sha256sum) */
    char x[64];
    memset(x, 'x', sizeof x);
    hex_of(x, 55, hex);
    ck_assert_str_eq(hex, "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
    hex_of(x, 56, hex);
    ck_assert_str_eq(hex, "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
    hex_of(x, 64, hex);
    ck_assert_str_eq(hex, "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
}
END_TEST

START_TEST(test_million_a) {
    /* one million 'a', fed in uneven pieces */
    char chunk[1000];
    memset(chunk, 'a', sizeof chunk);
    mb_sha256_ctx c;
    mb_sha256_init(&c);
    size_t left = 1000000, step = 1;
    while (left) {
        size_t k = step < left ? step : left;
        if (k > sizeof chunk) k = sizeof chunk;
        mb_sha256_update(&c, chunk, k);
        left -= k;
        step = step * 3 + 1;
        if (step > 997) step = 7;
    }
    unsigned char d[MB_SHA256_LEN];
    char hex[65];
    mb_sha256_final(&c, d);
    mb_sha256_hex(d, hex);
    ck_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
END_TEST

START_TEST(test_incremental_matches_one_shot) {
    unsigned char msg[200];
    for (size_t i = 0; i < sizeof msg; i++) msg[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof msg; n++) {
        unsigned char one[MB_SHA256_LEN];
        mb_sha256(msg, n, one);
        for (size_t cut = 0; cut <= n; cut += (n < 70 ? 1 : 13)) {
            mb_sha256_ctx c;
            unsigned char two[MB_SHA256_LEN];
            mb_sha256_init(&c);
            mb_sha256_update(&c, msg, cut);
            mb_sha256_update(&c, msg + cut, n - cut);
            mb_sha256_final(&c, two);
            ck_assert_msg(!memcmp(one, two, sizeof one), "n %zu cut %zu", n, cut);
        }
    }
    /* a flipped bit changes the digest */
    unsigned char a[MB_SHA256_LEN], b[MB_SHA256_LEN];
    mb_sha256(msg, 64, a);
    msg[63] ^= 1;
    mb_sha256(msg, 64, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("sha256");
    TCase *tc = tcase_create("sha256");
    tcase_add_test(tc, test_fips_vectors);
    tcase_add_test(tc, test_million_a);
    tcase_add_test(tc, test_incremental_matches_one_shot);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
