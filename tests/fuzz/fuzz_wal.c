/* fuzz_wal.c: libFuzzer target for the write-ahead log reader
 * (core/store/wal.c): the input becomes one segment file of a log directory,
 * which is then scanned (mb_wal_scan, read-only) and, every other input,
 * opened in repair mode (mb_wal_open, which cuts and sets aside what is
 * damaged) with every batch record decoded (mb_wal_batch_decode).
 * Bit 0 of the first byte: 1 = recompute every record's CRC-32C that the
 * walk can find (so mutations reach the record decoding instead of stopping
 * at the checksum), 0 = leave the bytes as they are (the damage paths).
 * Run: build/fuzz/fuzz_wal [-max_total_time=S] DIR... (tests/fuzz/README.md) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/le.h"
#include "store/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mb_status fuzz__rec(void *ctx, const mb_wal_record *rec, char *err, size_t err_sz) {
    (void)ctx;
    mb_wal_batch b;
    if (mb_wal_batch_decode(rec, &b, err, err_sz) == MB_OK) {
        /* touch every row the decoder vouched for */
        volatile float s = 0;
        for (size_t i = 0; i < (size_t)b.n * (size_t)b.obs_dim; i++) s += b.obs[i] + b.next_obs[i];
        for (size_t i = 0; i < (size_t)b.n * (size_t)b.act_dim; i++) s += b.act[i];
        for (size_t i = 0; i < b.n; i++) s += b.rew[i] + (b.terminated ? b.terminated[i] : 0) + (b.truncated ? b.truncated[i] : 0);
        for (size_t i = 0; i < b.client_len; i++) s += (float)b.client[i];
        (void)s;
    }
    return MB_OK;
}

/* Records are magic u32 | length u32 | seq u64 | crc u32 | payload[length];
 * the CRC covers the payload, then length and seq. */
static void fuzz__fix_crcs(unsigned char *buf, size_t size) {
    size_t off = 0;
    while (off + 20 <= size) {
        uint32_t l = mb_le_get32(buf + off + 4);
        if (l < 4 || l > size - off - 20) break;
        unsigned char tail[12];
        mb_le_put32(tail, l);
        memcpy(tail + 4, buf + off + 8, 8);
        uint32_t crc = mb_crc32c(mb_crc32c(0, buf + off + 20, l), tail, sizeof tail);
        mb_le_put32(buf + off + 16, crc);
        off += 20 + (size_t)l;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/mbrld-fuzz-wal-XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    char path[128];
    snprintf(path, sizeof path, "%s/wal-%020d.log", dir, 1);
    unsigned char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    if (data[0] & 1) fuzz__fix_crcs(buf, size - 1);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size > 1 && fwrite(buf, 1, size - 1, f) != size - 1) abort();
    fclose(f);
    free(buf);
    char err[512];
    mb_wal_report rep;
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.fsync = MB_WAL_FSYNC_NO;
    (void)mb_wal_scan(dir, &o, 0, fuzz__rec, NULL, &rep, err, sizeof err);
    if (data[0] & 2) {
        o.repair = 1;
        mb_wal *w = NULL;
        if (mb_wal_open(&w, dir, &o, 0, fuzz__rec, NULL, &rep, err, sizeof err) == MB_OK)
            (void)mb_wal_close(w, err, sizeof err);
    }
    /* repair may set files aside: start each input from an empty directory */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    return 0;
}
