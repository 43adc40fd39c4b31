/* wal.c: the write-ahead log: record codec, segment files, recovery scan,
 * group commit, failure and resume. Contracts in wal.h.
 * Not for: snapshots (snapshot.c) or replaying into model state (server). */
#include "store/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/fsutil.h"
#include "base/le.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the log stores floats in host order and assumes a little-endian host"
#endif

#define WAL__MAGIC 0x314C574Du /* "MWL1" */
#define WAL__MAX_IOV 16
#define WAL__DIR 4096
#define WAL__PATH (WAL__DIR + 64)

struct mb_wal {
    char dir[WAL__DIR];
    mb_wal_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* a sync round ended (group commit followers) */
    pthread_cond_t flush_cv; /* wakes the everysec flusher early (close) */
    pthread_cond_t arrive_cv; /* a record was written while a leader gathers */
    int gathering;            /* a leader waits for more records before its fsync */
    uint64_t last_group;      /* records covered by the previous fsync */
    double last_sync_s;       /* how long the previous fsync took */
    int fd;                  /* current segment, -1 before the first append */
    uint64_t *segs;          /* (n_segs) first seq of each segment, ascending */
    int n_segs, cap_segs;
    uint64_t seg_bytes;      /* bytes written to the current segment */
    uint64_t synced_bytes;   /* of which durable */
    uint64_t next_seq;       /* seq the next record gets */
    uint64_t written_seq;    /* last seq written (0 none) */
    uint64_t synced_seq;     /* last seq durable */
    int syncing;             /* a leader is in fdatasync outside the lock */
    int failed;
    char fail_msg[400];
    int flusher_on, stop;
    pthread_t flusher;
    mb_wal_stats stats;
};

/* CRC of a record: payload (type + body) first, then the length and seq
 * fields, so the payload part can be computed before the seq is known. */
static uint32_t wal__crc_finish(uint32_t payload_crc, uint32_t len, uint64_t seq) {
    unsigned char b[12];
    mb_le_put32(b, len);
    mb_le_put64(b + 4, seq);
    return mb_crc32c(payload_crc, b, sizeof b);
}

/* ---- options ------------------------------------------------------------ */

void mb_wal_opts_default(mb_wal_opts *o) {
    memset(o, 0, sizeof *o);
    o->fsync = MB_WAL_FSYNC_ALWAYS;
    o->segment_bytes = 64u << 20;
    o->max_record = 64u << 20;
}

mb_status mb_wal_fsync_parse(const char *s, mb_wal_fsync *out, char *err, size_t err_sz) {
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "fsync policy missing");
    if (!strcmp(s, "always")) *out = MB_WAL_FSYNC_ALWAYS;
    else if (!strcmp(s, "everysec") || !strcmp(s, "batch")) *out = MB_WAL_FSYNC_EVERYSEC;
    else if (!strcmp(s, "no") || !strcmp(s, "none")) *out = MB_WAL_FSYNC_NO;
    else return mb_fail(err, err_sz, MB_EINVAL, "fsync policy '%s': expected always, everysec or no", s);
    return MB_OK;
}

const char *mb_wal_fsync_name(mb_wal_fsync f) {
    switch (f) {
    case MB_WAL_FSYNC_ALWAYS: return "always";
    case MB_WAL_FSYNC_EVERYSEC: return "everysec";
    case MB_WAL_FSYNC_NO: return "no";
    }
    return "unknown";
}

static void wal__opts_fix(mb_wal_opts *o, const mb_wal_opts *in) {
    if (in) *o = *in;
    else mb_wal_opts_default(o);
    if (o->segment_bytes == 0) o->segment_bytes = 64u << 20;
    if (o->max_record == 0) o->max_record = 64u << 20;
}

/* ---- segment files ------------------------------------------------------ */

static void wal__seg_path(char *out, size_t sz, const char *dir, uint64_t first) {
    snprintf(out, sz, "%s/wal-%020" PRIu64 ".log", dir, first);
}

/* Lists wal-<seq>.log in dir, ascending. *segs owned by the caller; *cap is
 * its capacity (wal__segs_push grows it). A missing dir is MB_EIO here. */
static mb_status wal__list(const char *dir, uint64_t **segs, int *n, int *cap, char *err, size_t err_sz) {
    size_t k;
    mb_status st = mb_fs_list_numbered(dir, "wal-", ".log", "log directory", segs, &k, err, err_sz);
    if (st == MB_ENOTFOUND) st = MB_EIO;
    if (st == MB_OK && k > (size_t)INT_MAX) {
        free(*segs);
        *segs = NULL;
        k = 0;
        st = mb_fail(err, err_sz, MB_ERANGE, "too many segments in %s", dir);
    }
    *n = *cap = st == MB_OK ? (int)k : 0;
    return st;
}

static mb_status wal__read_seg(const char *path, unsigned char **buf, size_t *size, char *err, size_t err_sz) {
    void *p;
    mb_status st = mb_fs_read_file(path, (size_t)1 << 40, &p, size, err, err_sz);
    *buf = p;
    return st;
}

/* Truncates path to len bytes and makes that durable. */
static mb_status wal__truncate(const char *path, uint64_t len, char *err, size_t err_sz) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return mb_fail(err, err_sz, MB_EIO, "open %s: %s", path, strerror(errno));
    mb_status st = MB_OK;
    if (ftruncate(fd, (off_t)len) != 0) st = mb_fail(err, err_sz, MB_EIO, "truncate %s: %s", path, strerror(errno));
    else if (fdatasync(fd) != 0) st = mb_fail(err, err_sz, MB_EIO, "fsync %s: %s", path, strerror(errno));
    close(fd);
    return st;
}

/* ---- walking the records of one segment --------------------------------- */

typedef struct {
    uint64_t good_end; /* offset after the last valid record */
    uint64_t last_seq; /* seq of the last valid record (first_seq - 1 when none) */
    uint64_t count;
    int bad;           /* 0 clean, 1 damaged record, 2 valid record with a wrong seq */
    char why[160];
} wal__segres;

/* Checks the record at off: 0 valid (len set), else 1 with why. */
static int wal__check_at(const unsigned char *buf, size_t size, size_t off, uint32_t max_record,
                         uint32_t *len, char *why, size_t why_sz) {
    size_t left = size - off;
    if (left < MB_WAL_HEADER_BYTES) {
        snprintf(why, why_sz, "incomplete header (%zu of %d bytes)", left, MB_WAL_HEADER_BYTES);
        return 1;
    }
    const unsigned char *h = buf + off;
    if (mb_le_get32(h) != WAL__MAGIC) {
        snprintf(why, why_sz, "bad magic 0x%08x", mb_le_get32(h));
        return 1;
    }
    uint32_t l = mb_le_get32(h + 4);
    if (l < 4 || l > max_record) {
        snprintf(why, why_sz, "bad length %u", l);
        return 1;
    }
    if ((uint64_t)l + 20 > left) {
        snprintf(why, why_sz, "record of %u bytes extends past the end of the file", l + 20);
        return 1;
    }
    uint32_t crc = wal__crc_finish(mb_crc32c(0, h + 20, l), l, mb_le_get64(h + 8));
    if (crc != mb_le_get32(h + 16)) {
        snprintf(why, why_sz, "checksum mismatch (stored 0x%08x, computed 0x%08x)", mb_le_get32(h + 16), crc);
        return 1;
    }
    *len = l;
    return 0;
}

/* 1 if a valid record starts anywhere in buf[from, size). */
static int wal__valid_after(const unsigned char *buf, size_t size, size_t from, uint32_t max_record) {
    char why[160];
    for (size_t p = from; p + MB_WAL_HEADER_BYTES <= size; p++) {
        uint32_t len;
        if (buf[p] == (WAL__MAGIC & 0xFF) && mb_le_get32(buf + p) == WAL__MAGIC &&
            wal__check_at(buf, size, p, max_record, &len, why, sizeof why) == 0)
            return 1;
    }
    return 0;
}

typedef struct {
    unsigned char *scratch; /* aligned copy of a misaligned body */
    size_t cap;
} wal__scratch;

/* Walks buf (one segment) from offset 0, expecting seqs from first_seq on;
 * calls fn for records with seq > replay_after. Stops at the first bad
 * record (r->bad). Fails only when fn fails or memory runs out. */
static mb_status wal__walk(const char *path, const unsigned char *buf, size_t size, uint64_t first_seq,
                           uint32_t max_record, uint64_t replay_after, mb_wal_replay_fn fn, void *ctx,
                           wal__scratch *sc, uint64_t *replayed, wal__segres *r, char *err, size_t err_sz) {
    memset(r, 0, sizeof *r);
    r->last_seq = first_seq - 1;
    size_t off = 0;
    while (off < size) {
        uint32_t len;
        if (wal__check_at(buf, size, off, max_record, &len, r->why, sizeof r->why)) {
            r->bad = 1;
            break;
        }
        uint64_t seq = mb_le_get64(buf + off + 8);
        if (seq != r->last_seq + 1) {
            snprintf(r->why, sizeof r->why, "sequence gap: expected seq %" PRIu64 ", found %" PRIu64,
                     r->last_seq + 1, seq);
            r->bad = 2;
            break;
        }
        if (fn && seq > replay_after) {
            mb_wal_record rec;
            rec.seq = seq;
            rec.type = mb_le_get32(buf + off + 20);
            rec.len = len - 4;
            rec.file = path;
            rec.offset = off;
            const unsigned char *body = buf + off + MB_WAL_HEADER_BYTES;
            if (((uintptr_t)body & 7) != 0 && rec.len > 0) {
                if (sc->cap < rec.len) {
                    free(sc->scratch);
                    sc->cap = rec.len < 4096 ? 4096 : rec.len;
                    sc->scratch = malloc(sc->cap);
                    if (!sc->scratch) {
                        sc->cap = 0;
                        return mb_fail(err, err_sz, MB_ENOMEM, "no memory for a %zu-byte record", rec.len);
                    }
                }
                memcpy(sc->scratch, body, rec.len);
                body = sc->scratch;
            }
            rec.body = body;
            mb_status st = fn(ctx, &rec, err, err_sz);
            if (st != MB_OK) return st;
            (*replayed)++;
        }
        r->last_seq = seq;
        r->count++;
        off += (size_t)len + 20;
        r->good_end = off;
    }
    return MB_OK;
}

/* ---- recovery over all segments ----------------------------------------- */

typedef struct {
    uint64_t *segs; /* kept segments, owned */
    int n_segs, cap_segs;
    uint64_t last_seq;      /* last valid seq (0 when none) */
    uint64_t last_seg_size; /* valid bytes of the last kept segment */
} wal__state;

static void wal__warn(mb_wal_report *rep, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void wal__warn(mb_wal_report *rep, const char *fmt, ...) {
    size_t used = strlen(rep->warning);
    if (used + 3 >= sizeof rep->warning) return;
    if (used) {
        strcpy(rep->warning + used, "; ");
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->warning + used, sizeof rep->warning - used, fmt, ap);
    va_end(ap);
}

/* Renames segments[i..n) to *.damaged (repair mode). */
static mb_status wal__set_aside(const char *dir, const uint64_t *segs, int from, int n, uint64_t *bytes,
                                char *err, size_t err_sz) {
    for (int i = from; i < n; i++) {
        char p[WAL__PATH], q[WAL__PATH + 16];
        struct stat sb;
        wal__seg_path(p, sizeof p, dir, segs[i]);
        if (stat(p, &sb) == 0) *bytes += (uint64_t)sb.st_size;
        snprintf(q, sizeof q, "%s.damaged", p);
        if (rename(p, q) != 0) return mb_fail(err, err_sz, MB_EIO, "rename %s: %s", p, strerror(errno));
    }
    return mb_fs_fsync_dir(dir, err, err_sz);
}

static mb_status wal__recover(const char *dir, const mb_wal_opts *o, int modify, uint64_t replay_after,
                              mb_wal_replay_fn fn, void *ctx, mb_wal_report *rep, wal__state *s,
                              char *err, size_t err_sz) {
    memset(s, 0, sizeof *s);
    mb_status st = wal__list(dir, &s->segs, &s->n_segs, &s->cap_segs, err, err_sz);
    if (st != MB_OK) return st;
    rep->segments = s->n_segs;
    wal__scratch sc = {NULL, 0};
    unsigned char *buf = NULL;
    uint64_t expect = 0; /* seq the next record must have; 0 before the first segment */
    for (int i = 0; i < s->n_segs; i++) {
        char path[WAL__PATH];
        size_t size;
        wal__seg_path(path, sizeof path, dir, s->segs[i]);
        int last = (i == s->n_segs - 1);
        if (expect && s->segs[i] != expect) {
            /* A segment is missing or misnamed: everything from here on
             * cannot be placed in the sequence. */
            if (modify && o->repair) {
                uint64_t b = 0;
                st = wal__set_aside(dir, s->segs, i, s->n_segs, &b, err, err_sz);
                if (st != MB_OK) goto out;
                rep->repaired_bytes += b;
                wal__warn(rep, "repair: %s starts at seq %" PRIu64 " but seq %" PRIu64
                          " was expected; set it and %d later segment(s) aside as *.damaged",
                          path, s->segs[i], expect, s->n_segs - i - 1);
                s->n_segs = i;
                break;
            }
            st = mb_fail(err, err_sz, MB_ECORRUPT, "log %s: starts at seq %" PRIu64 ", expected %" PRIu64
                         " (a segment is missing); --repair keeps the records before it",
                         path, s->segs[i], expect);
            goto out;
        }
        st = wal__read_seg(path, &buf, &size, err, err_sz);
        if (st != MB_OK) goto out;
        if (fn && size > 0 && rep->records == 0 && replay_after + 1 < s->segs[i]) {
            st = mb_fail(err, err_sz, MB_ECORRUPT, "log %s starts at seq %" PRIu64
                         " but replay needs every record after seq %" PRIu64, path, s->segs[i], replay_after);
            goto out;
        }
        wal__segres r;
        st = wal__walk(path, buf, size, s->segs[i], o->max_record, replay_after, fn, ctx, &sc,
                       &rep->replayed, &r, err, err_sz);
        if (st != MB_OK) goto out;
        if (r.count && rep->records == 0) rep->first_seq = s->segs[i];
        rep->records += r.count;
        rep->bytes += r.good_end;
        s->last_seq = r.last_seq;
        s->last_seg_size = r.good_end;
        expect = r.last_seq + 1;
        if (r.bad) {
            int torn = (r.bad == 1 && last &&
                        !wal__valid_after(buf, size, (size_t)r.good_end + 1, o->max_record));
            uint64_t cut = size - r.good_end;
            if (torn) {
                rep->torn_bytes += cut;
                if (modify) {
                    st = wal__truncate(path, r.good_end, err, err_sz);
                    if (st != MB_OK) goto out;
                    wal__warn(rep, "cut a torn record at the tail of %s: %" PRIu64 " bytes at offset %"
                              PRIu64 " (%s)", path, cut, r.good_end, r.why);
                } else {
                    wal__warn(rep, "torn record at the tail of %s: %" PRIu64 " bytes at offset %" PRIu64
                              " (%s)", path, cut, r.good_end, r.why);
                }
            } else if (modify && o->repair) {
                char dpath[WAL__PATH + 16];
                snprintf(dpath, sizeof dpath, "%s.damaged", path);
                st = mb_fs_write_file_atomic(dpath, buf + r.good_end, cut, err, err_sz);
                if (st == MB_OK) st = wal__truncate(path, r.good_end, err, err_sz);
                uint64_t b = 0;
                if (st == MB_OK) st = wal__set_aside(dir, s->segs, i + 1, s->n_segs, &b, err, err_sz);
                if (st != MB_OK) goto out;
                rep->repaired_bytes += cut + b;
                wal__warn(rep, "repair: %s offset %" PRIu64 ": %s; kept the %" PRIu64 " bytes before it, "
                          "set %" PRIu64 " bytes after it (and %d later segment(s)) aside as *.damaged",
                          path, r.good_end, r.why, r.good_end, cut, s->n_segs - i - 1);
                s->n_segs = i + 1;
                break;
            } else {
                st = mb_fail(err, err_sz, MB_ECORRUPT, "log %s offset %" PRIu64 ": %s, with valid records "
                             "after it; --repair keeps the %" PRIu64 " records before it",
                             path, r.good_end, r.why, rep->records);
                goto out;
            }
        }
        free(buf);
        buf = NULL;
    }
    rep->last_seq = s->last_seq;
    if (rep->records == 0) rep->first_seq = rep->last_seq = 0;
out:
    free(buf);
    free(sc.scratch);
    if (st != MB_OK) {
        free(s->segs);
        s->segs = NULL;
        s->n_segs = 0;
    }
    return st;
}

mb_status mb_wal_scan(const char *dir, const mb_wal_opts *opts, uint64_t replay_after,
                      mb_wal_replay_fn fn, void *ctx, mb_wal_report *rep, char *err, size_t err_sz) {
    mb_wal_opts o;
    mb_wal_report local;
    wal__state s;
    wal__opts_fix(&o, opts);
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    mb_status st = wal__recover(dir, &o, 0, replay_after, fn, ctx, rep, &s, err, err_sz);
    free(s.segs);
    return st;
}

/* ---- failure state ------------------------------------------------------ */

static void wal__set_failed(mb_wal *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void wal__set_failed(mb_wal *w, const char *fmt, ...) {
    if (!w->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->fail_msg, sizeof w->fail_msg, fmt, ap);
        va_end(ap);
    }
    w->failed = 1;
    pthread_cond_broadcast(&w->cv);
}

static mb_status wal__failed_status(mb_wal *w, char *err, size_t err_sz) {
    return mb_fail(err, err_sz, MB_EIO, "log %s refuses writes after a disk error (%s)", w->dir, w->fail_msg);
}

/* ---- open / close ------------------------------------------------------- */

static void *wal__flusher_main(void *arg);

static mb_status wal__segs_push(mb_wal *w, uint64_t first, char *err, size_t err_sz) {
    if (w->n_segs == w->cap_segs) {
        int nc = w->cap_segs ? w->cap_segs * 2 : 16;
        uint64_t *p = realloc(w->segs, (size_t)nc * sizeof *p);
        if (!p) return mb_fail(err, err_sz, MB_ENOMEM, "no memory for the segment list");
        w->segs = p;
        w->cap_segs = nc;
    }
    w->segs[w->n_segs++] = first;
    return MB_OK;
}

static void wal__free(mb_wal *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->flush_cv);
    pthread_cond_destroy(&w->arrive_cv);
    free(w->segs);
    free(w);
}

mb_status mb_wal_open(mb_wal **out, const char *dir, const mb_wal_opts *opts,
                      uint64_t replay_after, mb_wal_replay_fn fn, void *ctx,
                      mb_wal_report *rep, char *err, size_t err_sz) {
    mb_wal_report local;
    wal__state s = {0};
    mb_status st;
    *out = NULL;
    if (!rep) rep = &local;
    memset(rep, 0, sizeof *rep);
    if (strlen(dir) >= WAL__DIR) return mb_fail(err, err_sz, MB_EINVAL, "log directory path too long");
    mb_wal *w = calloc(1, sizeof *w);
    if (!w) return mb_fail(err, err_sz, MB_ENOMEM, "no memory for the log");
    w->fd = -1;
    strcpy(w->dir, dir);
    wal__opts_fix(&w->o, opts);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->flush_cv, &ca);
    pthread_cond_init(&w->arrive_cv, &ca);
    pthread_condattr_destroy(&ca);

    st = mb_fs_mkdir_p(dir, 0755, err, err_sz);
    if (st != MB_OK) goto err;
    st = wal__recover(dir, &w->o, 1, replay_after, fn, ctx, rep, &s, err, err_sz);
    if (st != MB_OK) goto err;
    w->segs = s.segs;
    w->n_segs = s.n_segs;
    w->cap_segs = s.cap_segs;
    s.segs = NULL;

    /* The seq that continues the log on disk, and the one we must use. */
    uint64_t cont = w->n_segs ? (rep->records ? s.last_seq + 1 : w->segs[w->n_segs - 1]) : 1;
    uint64_t next = cont;
    if (w->o.min_next_seq > next) next = w->o.min_next_seq;
    if (next != cont && w->n_segs > 0) {
        /* The caller's snapshot covers everything on disk (and more):
         * start afresh rather than leave a gap in the seqs. */
        for (int i = 0; i < w->n_segs; i++) {
            char p[WAL__PATH];
            wal__seg_path(p, sizeof p, dir, w->segs[i]);
            if (unlink(p) != 0 && errno != ENOENT) {
                st = mb_fail(err, err_sz, MB_EIO, "remove %s: %s", p, strerror(errno));
                goto err;
            }
        }
        w->n_segs = 0;
        st = mb_fs_fsync_dir(dir, err, err_sz);
        if (st != MB_OK) goto err;
    }
    w->next_seq = next;
    w->written_seq = w->synced_seq = next - 1;
    if (w->n_segs > 0) {
        char p[WAL__PATH];
        wal__seg_path(p, sizeof p, dir, w->segs[w->n_segs - 1]);
        w->fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (w->fd < 0) {
            st = mb_fail(err, err_sz, MB_EIO, "open %s: %s", p, strerror(errno));
            goto err;
        }
        /* What a crashed process left in the page cache becomes durable now,
         * so "synced" below is true. */
        if (fdatasync(w->fd) != 0) {
            st = mb_fail(err, err_sz, MB_EIO, "fsync %s: %s", p, strerror(errno));
            goto err;
        }
        w->seg_bytes = w->synced_bytes = s.last_seg_size;
    }
    if (w->o.fsync == MB_WAL_FSYNC_EVERYSEC) {
        if (pthread_create(&w->flusher, NULL, wal__flusher_main, w) != 0) {
            st = mb_fail(err, err_sz, MB_ENOMEM, "cannot start the log flusher thread");
            goto err;
        }
        w->flusher_on = 1;
    }
    *out = w;
    return MB_OK;
err:
    free(s.segs);
    wal__free(w);
    return st;
}

/* ---- syncing ------------------------------------------------------------ */

static double wal__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct timespec wal__ts(double t) {
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

/* Before its fsync, a leader of a busy log waits while records keep
 * arriving (each within WAL__QUIET_S of the last), for at most half of the
 * previous fsync's time. Without it, synchronous writers settle into two
 * halves that alternate between fsyncs, and each fsync covers only half of
 * them (PostgreSQL's commit_delay idea, made adaptive). A lone writer
 * (previous group of 1) never waits. */
#define WAL__QUIET_S 60e-6
#define WAL__MAX_GATHER_S 2e-3

static void wal__gather(mb_wal *w) {
    double now = wal__now();
    double until = now + (w->last_sync_s / 2 < WAL__MAX_GATHER_S ? w->last_sync_s / 2 : WAL__MAX_GATHER_S);
    w->gathering = 1;
    while (now < until) {
        uint64_t seen = w->written_seq;
        double wake = now + WAL__QUIET_S < until ? now + WAL__QUIET_S : until;
        struct timespec ts = wal__ts(wake);
        while (w->written_seq == seen && pthread_cond_timedwait(&w->arrive_cv, &w->mu, &ts) != ETIMEDOUT) {
        }
        if (w->written_seq == seen || w->failed) break; /* quiet: nobody else is coming */
        now = wal__now();
    }
    w->gathering = 0;
}

/* One group-commit round. Called with mu held and !syncing; returns with mu
 * held. The fdatasync runs outside the lock so other writers keep writing;
 * it covers every record written before it started. */
static void wal__sync_round(mb_wal *w) {
    if (w->fd < 0 || w->written_seq <= w->synced_seq) return;
    w->syncing = 1;
    if (w->o.fsync == MB_WAL_FSYNC_ALWAYS && w->last_group > 1) wal__gather(w);
    uint64_t target_seq = w->written_seq, target_bytes = w->seg_bytes;
    int fd = w->fd;
    pthread_mutex_unlock(&w->mu);
    double t0 = wal__now();
    int rc = fdatasync(fd);
    int e = errno;
    double dt = wal__now() - t0;
    pthread_mutex_lock(&w->mu);
    w->syncing = 0;
    if (rc != 0) {
        wal__set_failed(w, "fsync of %s segment %" PRIu64 ": %s", w->dir, w->segs[w->n_segs - 1], strerror(e));
    } else {
        w->last_group = target_seq - w->synced_seq;
        w->last_sync_s = dt;
        w->synced_seq = target_seq;
        w->synced_bytes = target_bytes;
        w->stats.fsyncs++;
    }
    pthread_cond_broadcast(&w->cv);
}

/* Waits (mu held) until seq is durable, leading a round when nobody is. */
static mb_status wal__wait_durable(mb_wal *w, uint64_t seq, char *err, size_t err_sz) {
    while (w->synced_seq < seq) {
        if (w->failed) return wal__failed_status(w, err, err_sz);
        if (!w->syncing) wal__sync_round(w);
        else pthread_cond_wait(&w->cv, &w->mu);
    }
    return MB_OK;
}

static void *wal__flusher_main(void *arg) {
    mb_wal *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        while (!w->stop && pthread_cond_timedwait(&w->flush_cv, &w->mu, &ts) != ETIMEDOUT) {
        }
        if (w->stop) break;
        if (!w->failed && !w->syncing) wal__sync_round(w);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

mb_status mb_wal_sync(mb_wal *w, char *err, size_t err_sz) {
    pthread_mutex_lock(&w->mu);
    mb_status st = w->failed ? wal__failed_status(w, err, err_sz) : wal__wait_durable(w, w->written_seq, err, err_sz);
    pthread_mutex_unlock(&w->mu);
    return st;
}

/* ---- appending ---------------------------------------------------------- */

/* Starts a new segment for next_seq (mu held): the old one is synced first so
 * that only the current segment can ever hold undurable bytes. */
static mb_status wal__rotate(mb_wal *w, char *err, size_t err_sz) {
    while (w->syncing) pthread_cond_wait(&w->cv, &w->mu);
    if (w->failed) return wal__failed_status(w, err, err_sz);
    char p[WAL__PATH];
    if (w->fd >= 0) {
        if (fdatasync(w->fd) != 0) {
            wal__set_failed(w, "fsync before rotating %s: %s", w->dir, strerror(errno));
            return wal__failed_status(w, err, err_sz);
        }
        w->stats.fsyncs++;
        w->synced_seq = w->written_seq;
        close(w->fd);
        w->fd = -1;
    }
    wal__seg_path(p, sizeof p, w->dir, w->next_seq);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        wal__set_failed(w, "create %s: %s", p, strerror(errno));
        return wal__failed_status(w, err, err_sz);
    }
    mb_status st = wal__segs_push(w, w->next_seq, err, err_sz);
    if (st != MB_OK) {
        close(fd);
        unlink(p);
        return st;
    }
    w->fd = fd;
    w->seg_bytes = w->synced_bytes = 0;
    char e2[300];
    if (mb_fs_fsync_dir(w->dir, e2, sizeof e2) != MB_OK) {
        wal__set_failed(w, "%s", e2);
        return wal__failed_status(w, err, err_sz);
    }
    return MB_OK;
}

static mb_status wal__writev_all(int fd, struct iovec *iov, int cnt) {
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0) {
            if (errno == EINTR) continue;
            return MB_EIO;
        }
        if (n == 0) {
            errno = EIO;
            return MB_EIO;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return MB_OK;
}

static mb_status wal__appendv(mb_wal *w, uint32_t type, const struct iovec *iov, int iovcnt, int wait,
                              uint64_t *seq, char *err, size_t err_sz) {
    if (type == 0) return mb_fail(err, err_sz, MB_EINVAL, "log record type 0 is reserved");
    if (iovcnt < 0 || iovcnt > WAL__MAX_IOV) return mb_fail(err, err_sz, MB_EINVAL, "too many body parts");
    struct iovec v[WAL__MAX_IOV + 1];
    unsigned char hdr[MB_WAL_HEADER_BYTES];
    uint64_t len = 4;
    mb_le_put32(hdr + 20, type);
    uint32_t crc = mb_crc32c(0, hdr + 20, 4);
    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
        crc = mb_crc32c(crc, iov[i].iov_base, iov[i].iov_len);
        v[i + 1] = iov[i];
    }
    if (len > w->o.max_record)
        return mb_fail(err, err_sz, MB_ERANGE, "log record of %" PRIu64 " bytes exceeds the limit %u", len,
                       w->o.max_record);
    v[0].iov_base = hdr;
    v[0].iov_len = sizeof hdr;
    mb_le_put32(hdr, WAL__MAGIC);
    mb_le_put32(hdr + 4, (uint32_t)len);
    uint64_t rec_bytes = len + 20;

    pthread_mutex_lock(&w->mu);
    mb_status st;
    if (w->failed) {
        st = wal__failed_status(w, err, err_sz);
        goto out;
    }
    if (w->fd < 0 || (w->seg_bytes > 0 && w->seg_bytes + rec_bytes > w->o.segment_bytes)) {
        st = wal__rotate(w, err, err_sz);
        if (st != MB_OK) goto out;
    }
    uint64_t s = w->next_seq;
    mb_le_put64(hdr + 8, s);
    mb_le_put32(hdr + 16, wal__crc_finish(crc, (uint32_t)len, s));
    if (wal__writev_all(w->fd, v, iovcnt + 1) != MB_OK) {
        /* Part of the record may be in the file: resume cuts it off. */
        wal__set_failed(w, "write to %s segment %" PRIu64 ": %s", w->dir, w->segs[w->n_segs - 1], strerror(errno));
        st = wal__failed_status(w, err, err_sz);
        goto out;
    }
    w->next_seq++;
    w->written_seq = s;
    w->seg_bytes += rec_bytes;
    if (w->gathering) pthread_cond_signal(&w->arrive_cv);
    w->stats.appends++;
    w->stats.bytes += rec_bytes;
    st = MB_OK;
    if (seq) *seq = s;
    if (wait && w->o.fsync == MB_WAL_FSYNC_ALWAYS) st = wal__wait_durable(w, s, err, err_sz);
out:
    pthread_mutex_unlock(&w->mu);
    return st;
}

mb_status mb_wal_appendv(mb_wal *w, uint32_t type, const struct iovec *iov, int iovcnt,
                         uint64_t *seq, char *err, size_t err_sz) {
    return wal__appendv(w, type, iov, iovcnt, 1, seq, err, err_sz);
}

mb_status mb_wal_appendv_nowait(mb_wal *w, uint32_t type, const struct iovec *iov, int iovcnt,
                                uint64_t *seq, char *err, size_t err_sz) {
    if (!seq) return mb_fail(err, err_sz, MB_EINVAL, "append without wait needs *seq");
    return wal__appendv(w, type, iov, iovcnt, 0, seq, err, err_sz);
}

mb_status mb_wal_wait(mb_wal *w, uint64_t seq, char *err, size_t err_sz) {
    mb_status st = MB_OK;
    pthread_mutex_lock(&w->mu);
    if (seq > w->written_seq) st = mb_fail(err, err_sz, MB_EINVAL, "wait for seq %" PRIu64 ", never written", seq);
    else if (w->o.fsync == MB_WAL_FSYNC_ALWAYS) st = wal__wait_durable(w, seq, err, err_sz);
    pthread_mutex_unlock(&w->mu);
    return st;
}

mb_status mb_wal_append(mb_wal *w, uint32_t type, const void *body, size_t len,
                        uint64_t *seq, char *err, size_t err_sz) {
    struct iovec v = {(void *)body, len};
    return mb_wal_appendv(w, type, &v, len ? 1 : 0, seq, err, err_sz);
}

/* ---- transition batches ------------------------------------------------- */

#define WAL__BATCH_HDR 24
#define WAL__F_TERM 1u
#define WAL__F_TRUNC 2u

static size_t wal__pad8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t mb_wal_batch_bytes(uint32_t n, int obs_dim, int act_dim, size_t client_len,
                          int has_terminated, int has_truncated) {
    size_t rows = (size_t)n;
    return WAL__BATCH_HDR + wal__pad8(client_len) +
           sizeof(float) * rows * (2 * (size_t)obs_dim + (size_t)act_dim + 1) +
           rows * (size_t)((has_terminated ? 1 : 0) + (has_truncated ? 1 : 0));
}

static mb_status wal__append_batch(mb_wal *w, const mb_wal_batch *b, int wait, uint64_t *seq, char *err,
                                   size_t err_sz) {
    static const unsigned char zeros[8];
    size_t cl = b->client ? strlen(b->client) : 0;
    if (cl > MB_WAL_MAX_CLIENT) return mb_fail(err, err_sz, MB_ERANGE, "client id longer than %d bytes", MB_WAL_MAX_CLIENT);
    if (b->obs_dim < 1 || b->obs_dim > 65535 || b->act_dim < 1 || b->act_dim > 65535 || b->n == 0 ||
        !b->obs || !b->act || !b->rew || !b->next_obs)
        return mb_fail(err, err_sz, MB_EINVAL, "bad transition batch (n %u, dims %d/%d)", b->n, b->obs_dim, b->act_dim);
    unsigned char h[WAL__BATCH_HDR];
    uint16_t flags = (uint16_t)((b->terminated ? WAL__F_TERM : 0) | (b->truncated ? WAL__F_TRUNC : 0));
    mb_le_put32(h, b->n);
    mb_le_put16(h + 4, (uint16_t)b->obs_dim);
    mb_le_put16(h + 6, (uint16_t)b->act_dim);
    mb_le_put64(h + 8, b->client_seq);
    mb_le_put16(h + 16, (uint16_t)cl);
    mb_le_put16(h + 18, flags);
    mb_le_put32(h + 20, 0);
    size_t n = b->n;
    struct iovec v[9];
    int k = 0;
    v[k++] = (struct iovec){h, sizeof h};
    if (cl) v[k++] = (struct iovec){(void *)b->client, cl};
    if (wal__pad8(cl) != cl) v[k++] = (struct iovec){(void *)zeros, wal__pad8(cl) - cl};
    v[k++] = (struct iovec){(void *)b->obs, n * (size_t)b->obs_dim * sizeof(float)};
    v[k++] = (struct iovec){(void *)b->act, n * (size_t)b->act_dim * sizeof(float)};
    v[k++] = (struct iovec){(void *)b->rew, n * sizeof(float)};
    v[k++] = (struct iovec){(void *)b->next_obs, n * (size_t)b->obs_dim * sizeof(float)};
    if (b->terminated) v[k++] = (struct iovec){(void *)b->terminated, n};
    if (b->truncated) v[k++] = (struct iovec){(void *)b->truncated, n};
    return wal__appendv(w, MB_WAL_REC_TRANSITIONS, v, k, wait, seq, err, err_sz);
}

mb_status mb_wal_append_batch(mb_wal *w, const mb_wal_batch *b, uint64_t *seq, char *err, size_t err_sz) {
    return wal__append_batch(w, b, 1, seq, err, err_sz);
}

mb_status mb_wal_append_batch_nowait(mb_wal *w, const mb_wal_batch *b, uint64_t *seq, char *err,
                                     size_t err_sz) {
    if (!seq) return mb_fail(err, err_sz, MB_EINVAL, "append without wait needs *seq");
    return wal__append_batch(w, b, 0, seq, err, err_sz);
}

mb_status mb_wal_batch_decode(const mb_wal_record *rec, mb_wal_batch *b, char *err, size_t err_sz) {
    memset(b, 0, sizeof *b);
    const unsigned char *p = rec->body;
    if (rec->type != MB_WAL_REC_TRANSITIONS || rec->len < WAL__BATCH_HDR)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": not a transition batch", rec->file,
                       rec->offset);
    b->n = mb_le_get32(p);
    b->obs_dim = mb_le_get16(p + 4);
    b->act_dim = mb_le_get16(p + 6);
    b->client_seq = mb_le_get64(p + 8);
    b->client_len = mb_le_get16(p + 16);
    uint16_t flags = mb_le_get16(p + 18);
    if (b->n == 0 || b->obs_dim == 0 || b->act_dim == 0 || b->client_len > MB_WAL_MAX_CLIENT ||
        (flags & ~(WAL__F_TERM | WAL__F_TRUNC)) != 0 ||
        rec->len != mb_wal_batch_bytes(b->n, b->obs_dim, b->act_dim, b->client_len, flags & WAL__F_TERM,
                                       (flags & WAL__F_TRUNC) != 0))
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": transition batch sizes do not match "
                       "its length", rec->file, rec->offset);
    size_t n = b->n, off = WAL__BATCH_HDR;
    b->client = b->client_len ? (const char *)p + off : NULL;
    off += wal__pad8(b->client_len);
    b->obs = (const float *)(const void *)(p + off);
    off += n * (size_t)b->obs_dim * sizeof(float);
    b->act = (const float *)(const void *)(p + off);
    off += n * (size_t)b->act_dim * sizeof(float);
    b->rew = (const float *)(const void *)(p + off);
    off += n * sizeof(float);
    b->next_obs = (const float *)(const void *)(p + off);
    off += n * (size_t)b->obs_dim * sizeof(float);
    if (flags & WAL__F_TERM) {
        b->terminated = p + off;
        off += n;
    }
    if (flags & WAL__F_TRUNC) b->truncated = p + off;
    return MB_OK;
}

/* ---- state, resume, cleanup --------------------------------------------- */

int mb_wal_failed(mb_wal *w, char *msg, size_t msg_sz) {
    pthread_mutex_lock(&w->mu);
    int f = w->failed;
    if (f && msg && msg_sz) snprintf(msg, msg_sz, "%s", w->fail_msg);
    pthread_mutex_unlock(&w->mu);
    return f;
}

uint64_t mb_wal_last_seq(mb_wal *w) {
    pthread_mutex_lock(&w->mu);
    uint64_t s = w->written_seq;
    pthread_mutex_unlock(&w->mu);
    return s;
}

void mb_wal_get_stats(mb_wal *w, mb_wal_stats *s) {
    pthread_mutex_lock(&w->mu);
    *s = w->stats;
    pthread_mutex_unlock(&w->mu);
}

mb_status mb_wal_resume(mb_wal *w, char *err, size_t err_sz) {
    mb_status st = MB_OK;
    unsigned char *buf = NULL;
    int fd = -1;
    pthread_mutex_lock(&w->mu);
    while (w->syncing) pthread_cond_wait(&w->cv, &w->mu);
    if (!w->failed) goto out;
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->n_segs == 0) {
        st = mb_fs_fsync_dir(w->dir, err, err_sz);
        if (st == MB_OK) w->failed = 0;
        goto out;
    }
    char p[WAL__PATH];
    uint64_t first = w->segs[w->n_segs - 1];
    wal__seg_path(p, sizeof p, w->dir, first);
    /* Not O_APPEND: the rewrite below is a positioned write. */
    fd = open(p, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        st = mb_fail(err, err_sz, MB_EIO, "reopen %s: %s", p, strerror(errno));
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = mb_fail(err, err_sz, MB_EIO, "stat %s: %s", p, strerror(errno));
        goto out;
    }
    uint64_t size = (uint64_t)sb.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        st = mb_fail(err, err_sz, MB_ENOMEM, "no memory to verify %s", p);
        goto out;
    }
    st = mb_fs_pread_all(fd, buf, size, 0, p, err, err_sz);
    if (st != MB_OK) goto out;
    wal__segres r;
    uint64_t replayed = 0;
    wal__scratch sc = {NULL, 0};
    st = wal__walk(p, buf, size, first, w->o.max_record, 0, NULL, NULL, &sc, &replayed, &r, err, err_sz);
    if (st != MB_OK) goto out;
    if (r.bad == 2 || (r.bad && r.good_end < w->synced_bytes)) {
        st = mb_fail(err, err_sz, MB_ECORRUPT, "log %s offset %" PRIu64 ": %s in data that was durable",
                     p, r.good_end, r.why);
        goto out;
    }
    if (r.good_end < size && ftruncate(fd, (off_t)r.good_end) != 0) {
        st = mb_fail(err, err_sz, MB_EIO, "truncate %s: %s", p, strerror(errno));
        goto out;
    }
    /* What was written after the last good fsync is what we just read and
     * verified; write it again so it is dirty again, then fsync. */
    uint64_t from = w->synced_bytes < r.good_end ? w->synced_bytes : r.good_end;
    for (uint64_t off = from; off < r.good_end;) {
        ssize_t k = pwrite(fd, buf + off, (size_t)(r.good_end - off), (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            st = mb_fail(err, err_sz, MB_EIO, "rewrite %s: %s", p, k < 0 ? strerror(errno) : "wrote nothing");
            goto out;
        }
        off += (uint64_t)k;
    }
    if (fdatasync(fd) != 0) {
        st = mb_fail(err, err_sz, MB_EIO, "fsync %s: %s", p, strerror(errno));
        goto out;
    }
    st = mb_fs_fsync_dir(w->dir, err, err_sz);
    if (st != MB_OK) goto out;
    w->fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (w->fd < 0) {
        st = mb_fail(err, err_sz, MB_EIO, "reopen %s: %s", p, strerror(errno));
        goto out;
    }
    w->seg_bytes = w->synced_bytes = r.good_end;
    w->written_seq = w->synced_seq = r.last_seq;
    w->next_seq = r.last_seq + 1;
    w->failed = 0;
    w->fail_msg[0] = '\0';
out:
    if (fd >= 0) close(fd);
    pthread_mutex_unlock(&w->mu);
    free(buf);
    return st;
}

mb_status mb_wal_remove_through(mb_wal *w, uint64_t seq, int *removed, char *err, size_t err_sz) {
    int k = 0;
    mb_status st = MB_OK;
    pthread_mutex_lock(&w->mu);
    /* Segment i holds seqs [segs[i], segs[i+1]); the last one is current. */
    while (k + 1 < w->n_segs && w->segs[k + 1] - 1 <= seq) {
        char p[WAL__PATH];
        wal__seg_path(p, sizeof p, w->dir, w->segs[k]);
        if (unlink(p) != 0 && errno != ENOENT) {
            st = mb_fail(err, err_sz, MB_EIO, "remove %s: %s", p, strerror(errno));
            break;
        }
        k++;
    }
    if (k > 0) {
        memmove(w->segs, w->segs + k, (size_t)(w->n_segs - k) * sizeof *w->segs);
        w->n_segs -= k;
        mb_status s2 = mb_fs_fsync_dir(w->dir, err, err_sz);
        if (st == MB_OK) st = s2;
    }
    pthread_mutex_unlock(&w->mu);
    if (removed) *removed = k;
    return st;
}

mb_status mb_wal_close(mb_wal *w, char *err, size_t err_sz) {
    if (!w) return MB_OK;
    if (w->flusher_on) {
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_broadcast(&w->flush_cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->flusher, NULL);
    }
    mb_status st = MB_OK;
    pthread_mutex_lock(&w->mu);
    if (w->failed) st = wal__failed_status(w, err, err_sz);
    else if (w->o.fsync != MB_WAL_FSYNC_NO) st = wal__wait_durable(w, w->written_seq, err, err_sz);
    pthread_mutex_unlock(&w->mu);
    wal__free(w);
    return st;
}
