/* fuzz_snapshot.c: libFuzzer target for the snapshot/export reader
 * (core/store/snapshot.c) and what an import does with an accepted file
 * (server/api_persist.c): decode with an allocation cap, then read the META
 * blob as JSON and its "spec" with spec_parse, as import does.
 * Bit 0 of the first byte: 1 = recompute the header's and every section's
 * CRC-32C (so mutations reach the section decoders instead of stopping at
 * the checksum), 0 = leave the bytes as they are. Bit 1: skip_buffer.
 * Run: build/fuzz/fuzz_snapshot [-max_total_time=S] DIR... (tests/fuzz/README.md) */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/le.h"
#include "jsonv.h"
#include "options.h"
#include "spec.h"
#include "store/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* header: 28 bytes | crc u32; sections: tag u32 | 0 u32 | length u64 |
 * data[length] | crc u32 (of tag..data). */
static void fuzz__fix_crcs(unsigned char *b, size_t size) {
    if (size < 32) return;
    mb_le_put32(b + 28, mb_crc32c(0, b, 28));
    size_t off = 32;
    while (off + 16 <= size) {
        uint64_t len = mb_le_get64(b + off + 8);
        if (len > size - off - 16 || size - off - 16 - len < 4) break;
        mb_le_put32(b + off + 16 + len, mb_crc32c(0, b + off, 16 + (size_t)len));
        off += 16 + (size_t)len + 4;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static srv_config cfg;
    static int ready;
    if (!ready) {
        srv_config_default(&cfg);
        ready = 1;
    }
    unsigned char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    if (data[0] & 1) fuzz__fix_crcs(buf, size - 1);
    mb_snapshot_opts o = {(data[0] & 2) != 0, 64u << 20};
    mb_snapshot sn;
    char err[512];
    if (mb_snapshot_decode_mem(buf, size - 1, &o, &sn, err, sizeof err) == MB_OK) {
        if (!sn.meta) abort();
        cJSON *meta = cJSON_ParseWithLength(sn.meta, sn.meta_len);
        cJSON *spec = cJSON_GetObjectItemCaseSensitive(meta, "spec");
        srv_err e;
        memset(&e, 0, sizeof e);
        if (cJSON_IsObject(spec) && jv_depth_ok(sn.meta, sn.meta_len, 64) && jv_all_finite(spec, &e) == 0) {
            srv_model_spec *sp = calloc(1, sizeof *sp);
            (void)spec_parse(spec, &cfg, sp, &e);
            free(sp);
        }
        cJSON_Delete(meta);
        if (sn.has_buffer && sn.buf.size > sn.buf.capacity) abort();
        mb_snapshot_free(&sn);
    } else if (!err[0]) {
        abort();
    }
    free(buf);
    return 0;
}
