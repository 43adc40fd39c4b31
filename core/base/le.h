/* le.h: the little-endian codec of every on-disk format (the log's records,
 * the snapshot file): fixed-width integers and IEEE floats to and from byte
 * buffers, the same bytes on any host.
 *
 * Static inline; p points to at least the width's bytes (no alignment
 * needed). Not for: bulk float arrays (snapshot.c writes those in host
 * order on a little-endian host). */
#ifndef MB_LE_H
#define MB_LE_H

#include <stdint.h>
#include <string.h>

static inline void mb_le_put16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void mb_le_put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void mb_le_put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t mb_le_get16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t mb_le_get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t mb_le_get64(const unsigned char *p) {
    return (uint64_t)mb_le_get32(p) | (uint64_t)mb_le_get32(p + 4) << 32;
}
/* A float as its IEEE-754 bit pattern (bit-exact round trip, NaNs too). */
static inline void mb_le_putf32(unsigned char *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    mb_le_put32(p, u);
}
static inline float mb_le_getf32(const unsigned char *p) {
    uint32_t u = mb_le_get32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
