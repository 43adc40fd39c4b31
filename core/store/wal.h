/* wal.h: the write-ahead transition log of one model (DESIGN.md
 * "Persistence"): append-only segment files in one directory, each a run of
 * records
 *
 *     magic u32 | length u32 | seq u64 | crc32c u32 | payload[length]
 *
 * (little-endian; payload = type u32 then the body; the CRC covers the
 * payload, then the length and seq fields, so a damaged length or seq is
 * caught too). Seqs are consecutive over the log's life: 1, 2, 3, ...
 * Segments are named wal-<first seq, 20 digits>.log and rotate when the next
 * record would take one past opts.segment_bytes.
 *
 * Durability (like Redis's appendfsync): MB_WAL_FSYNC_ALWAYS (default) makes
 * an append return only after its record is on disk, with GROUP COMMIT: the
 * first waiter becomes the leader and its one fdatasync covers every record
 * written before it started; the others wait on a condition variable.
 * EVERYSEC returns after write() and a background thread syncs once a
 * second; NO leaves syncing to the kernel. Any policy survives a process
 * crash (kill -9) for acknowledged records; only ALWAYS survives power loss.
 *
 * Failure: a failed write or fsync (ENOSPC, EIO) returns MB_EIO to every
 * append it touches and puts the log in a failed state in which appends are
 * refused (MB_EIO) without touching the disk. A failed fsync is never retried
 * as if it might have worked (the kernel may have marked the unwritten pages
 * clean): mb_wal_resume() re-opens the current segment, re-reads and
 * verifies every record in it, cuts a partial record off the end, WRITES the
 * part after the last durable offset again (so those pages are dirty again)
 * and fsyncs; only then are appends accepted again. Records that were
 * written but never acknowledged may so survive (at-least-once; the server
 * deduplicates by client seq); damage before the last durable offset is
 * MB_ECORRUPT.
 *
 * Recovery (mb_wal_open): every segment is read and verified in order. A bad
 * record at the end of the last segment with nothing valid after it is a torn
 * write: it is cut off (truncate) and reported as a warning. A bad record
 * followed by valid ones, a bad record in an older segment, or a gap in the
 * seqs is corruption: MB_ECORRUPT naming the file and offset, unless
 * opts.repair, which keeps what precedes the damage (the cut bytes are saved
 * next to the segment as <segment>.damaged, later segments renamed to
 * *.damaged) and reports it.
 *
 * Threads: every call but open and close may come from any number of threads
 * at once (resume and remove_through take the log's lock for their whole
 * work); close only when no other call is in progress.
 * Not for: the snapshot format (snapshot.c), the meaning of the server's
 * model-spec blob, deduplication by client seq (the server does that while
 * replaying). */
#ifndef MB_WAL_H
#define MB_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/common.h"

typedef enum {
    MB_WAL_FSYNC_ALWAYS = 0,
    MB_WAL_FSYNC_EVERYSEC,
    MB_WAL_FSYNC_NO
} mb_wal_fsync;

/* "always", "everysec", "no" (also "batch" = everysec, "none" = no). */
mb_status mb_wal_fsync_parse(const char *s, mb_wal_fsync *out, char *err, size_t err_sz);
const char *mb_wal_fsync_name(mb_wal_fsync f);

/* Record types the core knows; the server may use its own from 100 up. */
enum {
    MB_WAL_REC_CREATE = 1,      /* body: the server's model spec blob (opaque) */
    MB_WAL_REC_TRANSITIONS = 2, /* body: a batch, see mb_wal_batch */
    MB_WAL_REC_DELETE = 3,      /* body: empty */
    MB_WAL_REC_SNAPSHOT = 4,    /* body: u64 seq covered by a durable snapshot */
    MB_WAL_REC_USER = 100
};

#define MB_WAL_HEADER_BYTES 24   /* magic, length, seq, crc, type */
#define MB_WAL_MAX_CLIENT 255    /* bytes of a client id */

typedef struct {
    mb_wal_fsync fsync;     /* default MB_WAL_FSYNC_ALWAYS */
    uint64_t segment_bytes; /* rotation size, default 64 MiB */
    uint32_t max_record;    /* largest payload written or believed, default 64 MiB */
    int repair;             /* open: cut at damage instead of MB_ECORRUPT */
    uint64_t min_next_seq;  /* first seq of an empty log (e.g. a snapshot's seq
                               + 1); the log's own last seq + 1 wins if larger */
} mb_wal_opts;
void mb_wal_opts_default(mb_wal_opts *o);

/* One record as recovery hands it out. body is 8-byte aligned and valid only
 * during the callback. */
typedef struct {
    uint64_t seq;
    uint32_t type;
    const void *body; /* (len) bytes */
    size_t len;
    const char *file; /* segment path and offset of the record, for messages */
    uint64_t offset;
} mb_wal_record;
/* Called for each record with seq > replay_after, in seq order. A status other
 * than MB_OK stops recovery and is returned (err filled by the callback). */
typedef mb_status (*mb_wal_replay_fn)(void *ctx, const mb_wal_record *rec, char *err, size_t err_sz);

/* What open (or scan) found. */
typedef struct {
    uint64_t first_seq, last_seq; /* of the records on disk; 0, 0 when none */
    uint64_t records;             /* valid records read */
    uint64_t replayed;            /* records passed to the callback */
    uint64_t bytes;               /* valid bytes in all segments */
    int segments;
    uint64_t torn_bytes;          /* cut (open) or found (scan) at the tail */
    uint64_t repaired_bytes;      /* cut at damage in repair mode (+ later segments) */
    char warning[600];            /* what was cut and where; "" when nothing */
} mb_wal_report;

typedef struct mb_wal mb_wal;

/* Opens (creating dir when missing) the log in dir, recovers it as described
 * above, calls fn for every record with seq > replay_after (fn may be NULL),
 * and readies it for appends. *out is owned by the caller (mb_wal_close).
 * rep may be NULL. If replay is asked for records the log no longer has
 * (replay_after + 1 < first seq on disk), that is MB_ECORRUPT. */
mb_status mb_wal_open(mb_wal **out, const char *dir, const mb_wal_opts *opts,
                      uint64_t replay_after, mb_wal_replay_fn fn, void *ctx,
                      mb_wal_report *rep, char *err, size_t err_sz);
/* Read-only verification of a log directory (changes nothing): the same
 * classification as open, but a torn tail is only reported (rep->torn_bytes).
 * opts may be NULL (defaults; repair is ignored). */
mb_status mb_wal_scan(const char *dir, const mb_wal_opts *opts, uint64_t replay_after,
                      mb_wal_replay_fn fn, void *ctx, mb_wal_report *rep,
                      char *err, size_t err_sz);

/* Appends one record (type >= 1; body of len bytes, may be NULL when len is 0)
 * and returns once it is written, and durable under ALWAYS. *seq (may be NULL)
 * gets its seq. MB_EIO on a failed write/fsync or a failed log; MB_ERANGE if
 * the payload exceeds max_record. */
mb_status mb_wal_append(mb_wal *w, uint32_t type, const void *body, size_t len,
                        uint64_t *seq, char *err, size_t err_sz);
/* The same with the body gathered from iov[0..iovcnt), iovcnt <= 16. */
mb_status mb_wal_appendv(mb_wal *w, uint32_t type, const struct iovec *iov, int iovcnt,
                         uint64_t *seq, char *err, size_t err_sz);

/* Split append, for callers that order records under their own lock but
 * must not hold it through the fsync (the server's model lock): _nowait
 * writes the record and returns its seq in *seq (required); mb_wal_wait
 * returns once that seq is durable under the policy (joining the group
 * commit under ALWAYS, at once under the others), or MB_EIO. */
mb_status mb_wal_appendv_nowait(mb_wal *w, uint32_t type, const struct iovec *iov, int iovcnt,
                                uint64_t *seq, char *err, size_t err_sz);
mb_status mb_wal_wait(mb_wal *w, uint64_t seq, char *err, size_t err_sz);

/* A batch of transitions, as appended and as decoded. */
typedef struct {
    const char *client;     /* idempotency key, NUL-terminated, may be NULL; <= 255 bytes */
    uint64_t client_seq;
    uint32_t n;             /* rows */
    int obs_dim, act_dim;
    const float *obs;       /* (n, obs_dim) */
    const float *act;       /* (n, act_dim) */
    const float *rew;       /* (n) */
    const float *next_obs;  /* (n, obs_dim) */
    const uint8_t *terminated, *truncated; /* (n) each, or NULL (all 0) */
    size_t client_len;      /* set by decode (client is not NUL-terminated there) */
} mb_wal_batch;
mb_status mb_wal_append_batch(mb_wal *w, const mb_wal_batch *b, uint64_t *seq,
                              char *err, size_t err_sz);
/* Write-only half (see mb_wal_appendv_nowait); then mb_wal_wait(*seq). */
mb_status mb_wal_append_batch_nowait(mb_wal *w, const mb_wal_batch *b, uint64_t *seq,
                                     char *err, size_t err_sz);
/* Points b's arrays into rec->body (valid while the record is); checks the
 * body's sizes. b->client is then NOT NUL-terminated: use b->client_len. */
mb_status mb_wal_batch_decode(const mb_wal_record *rec, mb_wal_batch *b, char *err, size_t err_sz);
/* Bytes of a batch's body (for sizing). */
size_t mb_wal_batch_bytes(uint32_t n, int obs_dim, int act_dim, size_t client_len,
                          int has_terminated, int has_truncated);

/* Forces an fsync of everything written so far (clean shutdown, tests). */
mb_status mb_wal_sync(mb_wal *w, char *err, size_t err_sz);
/* 1 when the log refuses appends after a disk error (message into msg). */
int mb_wal_failed(mb_wal *w, char *msg, size_t msg_sz);
/* After a failure: re-open, cut back, verify and fsync (see above). MB_OK
 * and a working log, or the same or a new error and still failed. A log
 * that has not failed is left alone (MB_OK). */
mb_status mb_wal_resume(mb_wal *w, char *err, size_t err_sz);
/* Seq of the last record written (0 when none). */
uint64_t mb_wal_last_seq(mb_wal *w);
/* Removes segments whose records all have seq <= seq (never the current
 * one), then fsyncs the directory. *removed (may be NULL) counts them. Call
 * with the seq covered by the OLDEST snapshot that is kept, so that falling
 * back to it still finds its log. */
mb_status mb_wal_remove_through(mb_wal *w, uint64_t seq, int *removed, char *err, size_t err_sz);

typedef struct {
    uint64_t appends, fsyncs, bytes; /* since open; appends / fsyncs = group size */
} mb_wal_stats;
void mb_wal_get_stats(mb_wal *w, mb_wal_stats *s);

/* Syncs (unless policy NO or failed), stops the flusher, closes and frees.
 * Returns the sync's status; w is freed either way. NULL is a no-op. */
mb_status mb_wal_close(mb_wal *w, char *err, size_t err_sz);

#endif
