/* crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every on-disk record and snapshot section.
 *
 * Uses the SSE4.2 crc32 instruction when the compiler targets it, else a
 * portable slicing-by-8 table; both give the same values (tests compare
 * them). Standard check value: mb_crc32c(0, "123456789", 9) == 0xE3069283.
 * Not for: cryptographic integrity (it catches accidents, not attackers). */
#ifndef MB_CRC32C_H
#define MB_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc is 0 for a fresh checksum, or the value returned for
 * the preceding bytes (so crc(A||B) == mb_crc32c(mb_crc32c(0, A), B)).
 * data may be NULL when n == 0. Thread-safe. */
uint32_t mb_crc32c(uint32_t crc, const void *data, size_t n);
/* The same with the portable table path only (for tests and comparison). */
uint32_t mb_crc32c_sw(uint32_t crc, const void *data, size_t n);
/* 1 if mb_crc32c uses the hardware instruction. */
int mb_crc32c_hw(void);

#endif
