/* snapshot.h: the versioned, checksummed file that holds a model's state
 * (DESIGN.md "Persistence"); the same format is the export/import file.
 *
 * Layout (little-endian):
 *   header  "MBRLSNAP" | version u32 | flags u32 | log_seq u64 | 0 u32 | crc32c u32 (of the 28 bytes before)
 *   section tag u32 | 0 u32 | length u64 | data[length] | crc32c u32 (of tag..data)
 *           in this order: META (opaque blob, e.g. the server's model JSON),
 *           ENSM (spec, parameters, normaliser, elites, holdout losses; optional),
 *           TERM (the ensemble's termination head: in_dim u32, hidden u32,
 *                 n_params u64, parameters; only with learn_termination, so
 *                 files without a head are what older builds wrote and read),
 *           ADAM (lr, betas, eps, t, m, v; optional),
 *           AGNT (the policy agent: its spec, the policy, twin critics, their
 *                 targets, the value network, the entropy coefficient, update
 *                 count and the four optimisers' state; optional, absent in
 *                 files written before policies, which still load),
 *           BUFF (ring fields incl. head, total, holdout seed, then the held
 *                 rows oldest first; optional),
 *           VERS (kept older versions; optional, header flag 8 (AGNT 16,
 *                 TERM 32): u32 count,
 *                 then per version u64 number | u32 parts | u32 info_len |
 *                 info (opaque, e.g. the server's JSON) | the parts in bit
 *                 order: bit 0 an ensemble laid out as ENSM's data, bit 1
 *                 its termination head laid out as TERM's (the current
 *                 ensemble and the kept ones have one or none alike); a
 *                 later part (a policy) takes the next bit and follows it),
 *           END  (u64 bytes before END, u32 sections before END).
 * Files without VERS (older files) load as before; a file with it is
 * refused by builds older than the section (unknown header flag).
 * log_seq is the last write-ahead-log seq whose effect the file contains.
 * Floats are stored in host order (the code refuses big-endian hosts).
 *
 * Decoding validates everything before it allocates (spec limits, lengths
 * against the spec, an allocation cap) and checks every CRC; any mismatch is
 * MB_ECORRUPT with a message naming the section and what is wrong.
 *
 * Streaming: an encoder lays the file out over the caller's arrays without
 * copying them and hands out the bytes at any position (for a pull-style
 * HTTP response), or pushes them to a write callback; the arrays must not
 * change until the encoder is freed (the caller copies or locks). Decoding
 * pulls from a read callback, so a file or an upload is never held twice.
 *
 * Files in a snapshot directory are snap-<log_seq, 20 digits>.mbs; save keeps
 * the newest `keep` (normally 2) and load falls back to an older one when the
 * newest is damaged.
 * Not for: the write-ahead log (wal.c), what META means (the server). */
#ifndef MB_SNAPSHOT_H
#define MB_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "learn/buffer.h"
#include "base/common.h"
#include "learn/sac.h"
#include "nn/ensemble.h"

#define MB_SNAPSHOT_VERSION 1
#define MB_SNAPSHOT_MAX_META (16u << 20)
#define MB_SNAPSHOT_MAX_KEPT 32          /* versions in a VERS section */
#define MB_SNAPSHOT_MAX_KEPT_INFO (64u << 10) /* bytes of one kept version's info */

/* A kept older version to write (VERS): its number, an opaque info blob and
 * its ensemble (required). */
typedef struct {
    uint64_t number;
    const void *info; /* (info_len) bytes, may be NULL when info_len is 0 */
    size_t info_len;
    const mb_ensemble *ens;
} mb_snapshot_kept_src;

/* A kept older version as read; info and ens owned by the mb_snapshot. */
typedef struct {
    uint64_t number;
    char *info; /* (info_len) bytes + a NUL */
    size_t info_len;
    mb_ensemble ens;
} mb_snapshot_kept;

/* What to write. Any of ens, adam, buf may be NULL (section left out);
 * adam, when given with ens, must have adam->n == ens->n_params. */
typedef struct {
    const void *meta; /* (meta_len) bytes, may be NULL when meta_len is 0 */
    size_t meta_len;
    const mb_ensemble *ens;
    const mb_adam *adam;
    const mb_buffer *buf;
    uint64_t log_seq;
    const mb_snapshot_kept_src *kept; /* (n_kept) kept older versions, may be NULL */
    int n_kept;                       /* 0..MB_SNAPSHOT_MAX_KEPT; 0 leaves VERS out */
    const mb_sac *agent; /* the policy agent, or NULL (section left out) */
} mb_snapshot_src;

/* What was read; every member owned (mb_snapshot_free). */
typedef struct {
    uint32_t version;
    uint64_t log_seq;
    char *meta;       /* (meta_len) bytes + a NUL, never NULL after a successful decode */
    size_t meta_len;
    int has_ensemble, has_adam, has_buffer, has_agent;
    int buffer_skipped; /* the file had a buffer that opts.skip_buffer left out */
    mb_ensemble ens;
    mb_adam adam;
    mb_buffer buf;
    int n_kept;             /* kept older versions (VERS), 0 when absent */
    mb_snapshot_kept *kept; /* (n_kept), owned; oldest first as written */
    mb_sac agent;
} mb_snapshot;
void mb_snapshot_free(mb_snapshot *s);

typedef struct {
    int skip_buffer;  /* verify the buffer section but do not keep it (import) */
    size_t max_alloc; /* refuse files whose state would need more bytes (0 = no cap) */
} mb_snapshot_opts;

/* ---- encoding ----------------------------------------------------------- */

typedef struct mb_snapshot_enc mb_snapshot_enc;
/* Lays out the file and computes its checksums (one pass over the data).
 * *out owned by the caller (mb_snapshot_enc_free). MB_EINVAL on an
 * inconsistent source (e.g. adam size != ensemble size). */
mb_status mb_snapshot_enc_new(mb_snapshot_enc **out, const mb_snapshot_src *src, char *err, size_t err_sz);
/* Total file size in bytes. */
uint64_t mb_snapshot_enc_size(const mb_snapshot_enc *e);
/* Copies up to max bytes of the file starting at pos into dst (max bytes);
 * returns the count, 0 at or past the end. */
size_t mb_snapshot_enc_read(const mb_snapshot_enc *e, uint64_t pos, void *dst, size_t max);
void mb_snapshot_enc_free(mb_snapshot_enc *e);

/* Push-style: calls fn for consecutive pieces of the file. */
typedef mb_status (*mb_snapshot_write_fn)(void *ctx, const void *data, size_t n, char *err, size_t err_sz);
mb_status mb_snapshot_encode(const mb_snapshot_src *src, mb_snapshot_write_fn fn, void *ctx,
                             char *err, size_t err_sz);
/* The whole file in a new buffer (*data owned by the caller, free()). */
mb_status mb_snapshot_encode_mem(const mb_snapshot_src *src, void **data, size_t *n, char *err, size_t err_sz);
/* Writes path atomically (temp file, fsync, rename, directory fsync). */
mb_status mb_snapshot_write_file(const char *path, const mb_snapshot_src *src, char *err, size_t err_sz);

/* ---- decoding ----------------------------------------------------------- */

/* Reads exactly n bytes into dst; MB_ECORRUPT (with a message) when the input
 * ends first. */
typedef mb_status (*mb_snapshot_read_fn)(void *ctx, void *dst, size_t n, char *err, size_t err_sz);
/* Decodes one file from rd, reading up to and including END (nothing
 * after it); out is zeroed first and freed again on failure. opts may be
 * NULL. MB_ERANGE when opts->max_alloc is exceeded. */
mb_status mb_snapshot_decode(mb_snapshot_read_fn rd, void *ctx, const mb_snapshot_opts *opts,
                             mb_snapshot *out, char *err, size_t err_sz);
/* From memory: data (n bytes); bytes after END are MB_ECORRUPT. */
mb_status mb_snapshot_decode_mem(const void *data, size_t n, const mb_snapshot_opts *opts,
                                 mb_snapshot *out, char *err, size_t err_sz);
/* From a file; messages name the path; bytes after END are MB_ECORRUPT. */
mb_status mb_snapshot_read_file(const char *path, const mb_snapshot_opts *opts, mb_snapshot *out,
                                char *err, size_t err_sz);

/* ---- a directory of snapshots ------------------------------------------- */

/* Writes dir/snap-<src->log_seq>.mbs atomically (creating dir), then removes
 * all but the newest `keep` (>= 1) snapshots. path_out (may be NULL) gets the
 * new file's path; *oldest_kept (may be NULL) the log seq of the oldest kept
 * snapshot: log segments up to it may be removed (mb_wal_remove_through). */
mb_status mb_snapshot_save(const char *dir, const mb_snapshot_src *src, int keep, char *path_out,
                           size_t path_sz, uint64_t *oldest_kept, char *err, size_t err_sz);
/* Loads the newest snapshot of dir that decodes cleanly. A damaged newer one
 * is skipped with a note in warning (may be NULL; "" when nothing was
 * skipped). MB_ENOTFOUND when dir holds no snapshot (or does not exist);
 * MB_ECORRUPT when every one is damaged. path_out (may be NULL) gets the
 * loaded file. */
mb_status mb_snapshot_load_latest(const char *dir, const mb_snapshot_opts *opts, mb_snapshot *out,
                                  char *path_out, size_t path_sz, char *warning, size_t warning_sz,
                                  char *err, size_t err_sz);

#endif
