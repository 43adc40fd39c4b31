/* sha256.h: SHA-256 (FIPS 180-4; same function as FIPS 180-2), for the
 * hashed bearer tokens of --tokens (server/auth.c) and nothing on disk.
 * Portable C, no tables beyond the round constants; one-shot and
 * incremental forms give the same digest.
 * Not for: checksums of records (crc32c.h is the fast one), or keyed MACs. */
#ifndef MB_SHA256_H
#define MB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define MB_SHA256_LEN 32

typedef struct {
    uint32_t h[8];
    uint64_t bytes;         /* message length so far */
    unsigned char buf[64];  /* partial block */
    size_t used;            /* bytes in buf */
} mb_sha256_ctx;

void mb_sha256_init(mb_sha256_ctx *c);
/* data may be NULL when n == 0. */
void mb_sha256_update(mb_sha256_ctx *c, const void *data, size_t n);
/* Writes the digest; c must be initialised again before reuse. */
void mb_sha256_final(mb_sha256_ctx *c, unsigned char out[MB_SHA256_LEN]);
/* One shot. */
void mb_sha256(const void *data, size_t n, unsigned char out[MB_SHA256_LEN]);
/* 64 lowercase hex digits and a NUL into hex[65]. */
void mb_sha256_hex(const unsigned char d[MB_SHA256_LEN], char hex[2 * MB_SHA256_LEN + 1]);

#endif
