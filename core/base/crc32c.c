/* crc32c.c: CRC-32C by SSE4.2 instruction or slicing-by-8 tables.
 * Not for: anything but checksumming bytes. */
#include "base/crc32c.h"

#include <pthread.h>
#include <string.h>

#if defined(__SSE4_2__) && defined(__x86_64__)
#include <nmmintrin.h>
#define CRC__HW 1
#else
#define CRC__HW 0
#endif

#define CRC__POLY 0x82F63B78u

static uint32_t crc__table[8][256];
static pthread_once_t crc__once = PTHREAD_ONCE_INIT;

static void crc__init_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ CRC__POLY : c >> 1;
        crc__table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc__table[t][i] = (crc__table[t - 1][i] >> 8) ^ crc__table[0][crc__table[t - 1][i] & 0xFF];
}

uint32_t mb_crc32c_sw(uint32_t crc, const void *data, size_t n) {
    pthread_once(&crc__once, crc__init_tables);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = crc__table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        /* Little-endian assembly of two words, byte by byte, so the code has
         * no alignment or byte-order assumptions. */
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc__table[7][lo & 0xFF] ^ crc__table[6][(lo >> 8) & 0xFF] ^
            crc__table[5][(lo >> 16) & 0xFF] ^ crc__table[4][lo >> 24] ^
            crc__table[3][hi & 0xFF] ^ crc__table[2][(hi >> 8) & 0xFF] ^
            crc__table[1][(hi >> 16) & 0xFF] ^ crc__table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc__table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}

int mb_crc32c_hw(void) { return CRC__HW; }

uint32_t mb_crc32c(uint32_t crc, const void *data, size_t n) {
#if CRC__HW
    const unsigned char *p = data;
    uint64_t c = (uint32_t)~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        n -= 8;
    }
    while (n--) c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
#else
    return mb_crc32c_sw(crc, data, n);
#endif
}
