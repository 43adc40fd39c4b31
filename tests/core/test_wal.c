/* test_wal.c: the write-ahead log (core/store/wal.c).
 *
 * Round trips of every record type and of transition batches; rotation and
 * removal of covered segments; a cut at every byte offset inside the last
 * record (recovery keeps every complete record and cuts the rest); one
 * flipped byte in the middle (MB_ECORRUPT naming file and offset; repair
 * keeps exactly what precedes the damage); a missing segment; read-only
 * scans; group commit with many threads (every record present exactly once
 * after reopen) under each fsync policy; and a kill -9 loop: a child process
 * appends numbered records from several threads and reports each
 * acknowledged number through a pipe, is killed with SIGKILL at a random
 * moment, and after every reopen every acknowledged number is in the log
 * exactly once. Disk faults are in tests/fault/test_wal_fault.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check_util.h"
#include "tmpdir.h"
#include "base/fsutil.h"
#include "store/wal.h"

static char err[1024];

static void setup(void) { tmpdir_setup("wal"); }
static void teardown(void) { tmpdir_remove(); }

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    uint64_t *seq;
    uint32_t *type;
    uint64_t *val; /* first 8 body bytes (0 if shorter) */
    size_t n, cap;
} collected;

static mb_status collect_fn(void *ctx, const mb_wal_record *r, char *e, size_t esz) {
    (void)e;
    (void)esz;
    collected *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->seq = realloc(c->seq, c->cap * sizeof *c->seq);
        c->type = realloc(c->type, c->cap * sizeof *c->type);
        c->val = realloc(c->val, c->cap * sizeof *c->val);
        ck_assert(c->seq && c->type && c->val);
    }
    ck_assert_uint_eq((uintptr_t)r->body & 7, 0);
    uint64_t v = 0;
    if (r->len >= 8) memcpy(&v, r->body, 8);
    c->seq[c->n] = r->seq;
    c->type[c->n] = r->type;
    c->val[c->n] = v;
    c->n++;
    return MB_OK;
}

static void collected_free(collected *c) {
    free(c->seq);
    free(c->type);
    free(c->val);
    memset(c, 0, sizeof *c);
}

static mb_wal *open_log_after(const char *dir, mb_wal_fsync policy, uint64_t seg_bytes, uint64_t after,
                              collected *c, mb_wal_report *rep) {
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.fsync = policy;
    if (seg_bytes) o.segment_bytes = seg_bytes;
    mb_wal *w = NULL;
    mb_status st = mb_wal_open(&w, dir, &o, after, c ? collect_fn : NULL, c, rep, err, sizeof err);
    ck_assert_msg(st == MB_OK, "open %s: %s", dir, err);
    return w;
}

static mb_wal *open_log(const char *dir, mb_wal_fsync policy, uint64_t seg_bytes, collected *c,
                        mb_wal_report *rep) {
    return open_log_after(dir, policy, seg_bytes, 0, c, rep);
}

static void append_u64(mb_wal *w, uint64_t v, uint64_t want_seq) {
    uint64_t seq = 0;
    mb_status st = mb_wal_append(w, MB_WAL_REC_USER, &v, sizeof v, &seq, err, sizeof err);
    ck_assert_msg(st == MB_OK, "append: %s", err);
    if (want_seq) ck_assert_uint_eq(seq, want_seq);
}

static void close_log(mb_wal *w) { ck_assert_msg(mb_wal_close(w, err, sizeof err) == MB_OK, "close: %s", err); }

/* Segment paths of dir, ascending; returns the count. */
static int list_segments(const char *dir, char paths[][600], int max) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL)
        if (!strncmp(de->d_name, "wal-", 4) && strlen(de->d_name) == 28 && n < max)
            snprintf(paths[n++], 600, "%s/%s", dir, de->d_name);
    closedir(d);
    qsort(paths, (size_t)n, 600, (int (*)(const void *, const void *))strcmp);
    return n;
}

static off_t file_size(const char *p) {
    struct stat sb;
    ck_assert_int_eq(stat(p, &sb), 0);
    return sb.st_size;
}

static void copy_file(const char *from, const char *to, off_t len) {
    void *data;
    size_t n;
    ck_assert_int_eq(mb_fs_read_file(from, 1 << 30, &data, &n, err, sizeof err), MB_OK);
    ck_assert_int_le(len, (off_t)n);
    ck_assert_int_eq(mb_fs_write_file_atomic(to, data, (size_t)len, err, sizeof err), MB_OK);
    free(data);
}

static void flip_byte(const char *path, off_t off) {
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x5A;
    ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* ---- round trips -------------------------------------------------------- */

START_TEST(test_record_types_round_trip) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmpdir);
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_ALWAYS, 0, NULL, NULL);
    ck_assert_uint_eq(mb_wal_last_seq(w), 0);
    const char *spec = "{\"name\": \"pendulum\", \"obs_dim\": 3}";
    uint64_t seq;
    ck_assert_int_eq(mb_wal_append(w, MB_WAL_REC_CREATE, spec, strlen(spec), &seq, err, sizeof err), MB_OK);
    ck_assert_uint_eq(seq, 1);
    /* A batch of 3 rows, obs 3, act 2, with flags; another without flags. */
    float obs[9], act[6], rew[3], nxt[9];
    uint8_t term[3] = {0, 1, 0}, trunc[3] = {1, 0, 0};
    for (int i = 0; i < 9; i++) obs[i] = 0.5f * (float)i, nxt[i] = -1.25f * (float)i;
    for (int i = 0; i < 6; i++) act[i] = (float)i / 7.0f;
    for (int i = 0; i < 3; i++) rew[i] = -(float)i - 0.5f;
    mb_wal_batch b = {.client = "robot-7", .client_seq = 42, .n = 3, .obs_dim = 3, .act_dim = 2,
                      .obs = obs, .act = act, .rew = rew, .next_obs = nxt, .terminated = term, .truncated = trunc};
    ck_assert_int_eq(mb_wal_append_batch(w, &b, &seq, err, sizeof err), MB_OK);
    ck_assert_uint_eq(seq, 2);
    b.client = NULL;
    b.terminated = b.truncated = NULL;
    b.n = 1;
    ck_assert_int_eq(mb_wal_append_batch(w, &b, &seq, err, sizeof err), MB_OK);
    uint64_t covered = 2;
    ck_assert_int_eq(mb_wal_append(w, MB_WAL_REC_SNAPSHOT, &covered, 8, &seq, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_wal_append(w, MB_WAL_REC_DELETE, NULL, 0, &seq, err, sizeof err), MB_OK);
    ck_assert_uint_eq(seq, 5);
    /* Bad arguments change nothing. */
    ck_assert_int_eq(mb_wal_append(w, 0, NULL, 0, &seq, err, sizeof err), MB_EINVAL);
    ck_assert_int_eq(mb_wal_wait(w, 99, err, sizeof err), MB_EINVAL); /* never written */
    ck_assert_int_eq(mb_wal_wait(w, 5, err, sizeof err), MB_OK);
    b.n = 0;
    ck_assert_int_eq(mb_wal_append_batch(w, &b, &seq, err, sizeof err), MB_EINVAL);
    close_log(w);

    /* Replay everything and decode. */
    collected c = {0};
    mb_wal_report rep;
    w = open_log(dir, MB_WAL_FSYNC_ALWAYS, 0, &c, &rep);
    ck_assert_uint_eq(c.n, 5);
    ck_assert_uint_eq(rep.records, 5);
    ck_assert_uint_eq(rep.replayed, 5);
    ck_assert_uint_eq(rep.first_seq, 1);
    ck_assert_uint_eq(rep.last_seq, 5);
    ck_assert_uint_eq(rep.torn_bytes, 0);
    ck_assert_str_eq(rep.warning, "");
    uint32_t want_types[5] = {MB_WAL_REC_CREATE, MB_WAL_REC_TRANSITIONS, MB_WAL_REC_TRANSITIONS,
                              MB_WAL_REC_SNAPSHOT, MB_WAL_REC_DELETE};
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(c.seq[i], (uint64_t)i + 1);
        ck_assert_uint_eq(c.type[i], want_types[i]);
    }
    ck_assert_uint_eq(c.val[3], 2);
    ck_assert_uint_eq(mb_wal_last_seq(w), 5);
    append_u64(w, 77, 6);
    close_log(w);
    collected_free(&c);
}
END_TEST

/* Replays batches and checks every field bit for bit. */
typedef struct {
    int seen;
    const float *obs, *act, *rew, *nxt;
    const uint8_t *term, *trunc;
} batch_check;

static mb_status batch_fn(void *ctx, const mb_wal_record *r, char *e, size_t esz) {
    batch_check *bc = ctx;
    mb_wal_batch b;
    if (r->type != MB_WAL_REC_TRANSITIONS) return MB_OK;
    mb_status st = mb_wal_batch_decode(r, &b, e, esz);
    ck_assert_msg(st == MB_OK, "decode: %s", e);
    if (bc->seen == 0) {
        ck_assert_uint_eq(b.client_len, 7);
        ck_assert_int_eq(memcmp(b.client, "robot-7", 7), 0);
        ck_assert_uint_eq(b.client_seq, 42);
        ck_assert_uint_eq(b.n, 3);
        ck_assert_int_eq(memcmp(b.terminated, bc->term, 3), 0);
        ck_assert_int_eq(memcmp(b.truncated, bc->trunc, 3), 0);
    } else {
        ck_assert_uint_eq(b.client_len, 0);
        ck_assert_ptr_null(b.client);
        ck_assert_ptr_null(b.terminated);
        ck_assert_ptr_null(b.truncated);
        ck_assert_uint_eq(b.n, 1);
    }
    ck_assert_int_eq(b.obs_dim, 3);
    ck_assert_int_eq(b.act_dim, 2);
    ck_assert_int_eq(memcmp(b.obs, bc->obs, b.n * 3 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(b.act, bc->act, b.n * 2 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(b.rew, bc->rew, b.n * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(b.next_obs, bc->nxt, b.n * 3 * sizeof(float)), 0);
    bc->seen++;
    return MB_OK;
}

START_TEST(test_batch_round_trip_and_decode_checks) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmpdir);
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_NO, 0, NULL, NULL);
    float obs[9], act[6], rew[3], nxt[9];
    uint8_t term[3] = {0, 1, 0}, trunc[3] = {1, 0, 1};
    for (int i = 0; i < 9; i++) obs[i] = 0.1f * (float)i, nxt[i] = 1e-30f * (float)i;
    for (int i = 0; i < 6; i++) act[i] = -(float)i / 3.0f;
    for (int i = 0; i < 3; i++) rew[i] = (float)i * 1e20f;
    mb_wal_batch b = {.client = "robot-7", .client_seq = 42, .n = 3, .obs_dim = 3, .act_dim = 2,
                      .obs = obs, .act = act, .rew = rew, .next_obs = nxt, .terminated = term, .truncated = trunc};
    ck_assert_int_eq(mb_wal_append_batch(w, &b, NULL, err, sizeof err), MB_OK);
    b.client = "";
    b.terminated = b.truncated = NULL;
    b.n = 1;
    ck_assert_int_eq(mb_wal_append_batch(w, &b, NULL, err, sizeof err), MB_OK);
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    b.client = longname;
    ck_assert_int_eq(mb_wal_append_batch(w, &b, NULL, err, sizeof err), MB_ERANGE);
    close_log(w);
    batch_check bc = {0, obs, act, rew, nxt, term, trunc};
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    mb_wal_report rep;
    ck_assert_int_eq(mb_wal_scan(dir, &o, 0, batch_fn, &bc, &rep, err, sizeof err), MB_OK);
    ck_assert_int_eq(bc.seen, 2);

    /* A record whose sizes disagree with its length is refused. */
    unsigned char body[64] = {0};
    body[0] = 3;  /* n = 3 */
    body[4] = 3;  /* obs 3 */
    body[6] = 2;  /* act 2 */
    mb_wal_record r = {.seq = 1, .type = MB_WAL_REC_TRANSITIONS, .body = body, .len = sizeof body,
                       .file = "x", .offset = 0};
    ck_assert_int_eq(mb_wal_batch_decode(&r, &b, err, sizeof err), MB_ECORRUPT);
    r.type = MB_WAL_REC_CREATE;
    ck_assert_int_eq(mb_wal_batch_decode(&r, &b, err, sizeof err), MB_ECORRUPT);
}
END_TEST

START_TEST(test_fsync_policy_names) {
    mb_wal_fsync f;
    ck_assert_int_eq(mb_wal_fsync_parse("always", &f, err, sizeof err), MB_OK);
    ck_assert_int_eq(f, MB_WAL_FSYNC_ALWAYS);
    ck_assert_int_eq(mb_wal_fsync_parse("everysec", &f, err, sizeof err), MB_OK);
    ck_assert_int_eq(f, MB_WAL_FSYNC_EVERYSEC);
    ck_assert_int_eq(mb_wal_fsync_parse("no", &f, err, sizeof err), MB_OK);
    ck_assert_int_eq(f, MB_WAL_FSYNC_NO);
    ck_assert_int_eq(mb_wal_fsync_parse("sometimes", &f, err, sizeof err), MB_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "sometimes"));
    ck_assert_str_eq(mb_wal_fsync_name(MB_WAL_FSYNC_EVERYSEC), "everysec");
}
END_TEST

/* ---- rotation and removal ----------------------------------------------- */

START_TEST(test_rotation_and_remove_through) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmpdir);
    /* Each record is 24 + 8 = 32 bytes; 10 records per 320-byte segment. */
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_EVERYSEC, 320, NULL, NULL);
    for (uint64_t i = 1; i <= 95; i++) append_u64(w, i * 1000, i);
    char paths[32][600];
    ck_assert_int_eq(list_segments(dir, paths, 32), 10);
    ck_assert_int_eq(file_size(paths[0]), 320);
    ck_assert_ptr_nonnull(strstr(paths[1], "wal-00000000000000000011.log"));
    int removed = -1;
    /* Covered through 35: segments [1..10], [11..20], [21..30] go. */
    ck_assert_int_eq(mb_wal_remove_through(w, 35, &removed, err, sizeof err), MB_OK);
    ck_assert_int_eq(removed, 3);
    /* Everything: all but the current segment go. */
    ck_assert_int_eq(mb_wal_remove_through(w, 1000, &removed, err, sizeof err), MB_OK);
    ck_assert_int_eq(removed, 6);
    ck_assert_int_eq(list_segments(dir, paths, 32), 1);
    append_u64(w, 96000, 96);
    close_log(w);

    collected c = {0};
    mb_wal_report rep;
    w = open_log_after(dir, MB_WAL_FSYNC_ALWAYS, 320, 90, &c, &rep);
    ck_assert_uint_eq(rep.first_seq, 91);
    ck_assert_uint_eq(rep.last_seq, 96);
    ck_assert_uint_eq(c.n, 6);
    for (size_t i = 0; i < c.n; i++) ck_assert_uint_eq(c.val[i], (91 + i) * 1000);
    close_log(w);
    collected_free(&c);

    /* Asking to replay from before the log's start is an error, not silence. */
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 50, collect_fn, &c, NULL, err, sizeof err), MB_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "after seq 50"));
    collected_free(&c);
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 92, collect_fn, &c, &rep, err, sizeof err), MB_OK);
    ck_assert_uint_eq(c.n, 4);
    ck_assert_uint_eq(c.seq[0], 93);
    ck_assert_uint_eq(rep.records, 6);
    close_log(w);
    collected_free(&c);
}
END_TEST

START_TEST(test_min_next_seq) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmpdir);
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.min_next_seq = 100;
    mb_wal *w;
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 99, NULL, NULL, NULL, err, sizeof err), MB_OK);
    append_u64(w, 1, 100);
    append_u64(w, 2, 101);
    close_log(w);
    /* A snapshot that covers more than the log holds: start afresh. */
    o.min_next_seq = 200;
    collected c = {0};
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 199, collect_fn, &c, NULL, err, sizeof err), MB_OK);
    ck_assert_uint_eq(c.n, 0);
    append_u64(w, 3, 200);
    close_log(w);
    char paths[4][600];
    ck_assert_int_eq(list_segments(dir, paths, 4), 1);
    /* A smaller min_next_seq never moves the log back. */
    o.min_next_seq = 5;
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 0, collect_fn, &c, NULL, err, sizeof err), MB_ECORRUPT);
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 199, collect_fn, &c, NULL, err, sizeof err), MB_OK);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_uint_eq(c.seq[0], 200);
    append_u64(w, 4, 201);
    close_log(w);
    collected_free(&c);
}
END_TEST

/* ---- torn tails --------------------------------------------------------- */

START_TEST(test_cut_at_every_offset_of_last_record) {
    char dir[512], work[512];
    snprintf(dir, sizeof dir, "%s/src", tmpdir);
    snprintf(work, sizeof work, "%s/cut", tmpdir);
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_NO, 0, NULL, NULL);
    float obs[2 * 18], act[2 * 6], rew[2], nxt[2 * 18];
    for (int i = 0; i < 36; i++) obs[i] = (float)i, nxt[i] = (float)-i;
    for (int i = 0; i < 12; i++) act[i] = 0.25f * (float)i;
    rew[0] = 1.0f, rew[1] = 2.0f;
    mb_wal_batch b = {.client = "c", .client_seq = 1, .n = 2, .obs_dim = 18, .act_dim = 6,
                      .obs = obs, .act = act, .rew = rew, .next_obs = nxt};
    for (int i = 0; i < 6; i++) {
        b.client_seq = (uint64_t)i;
        ck_assert_int_eq(mb_wal_append_batch(w, &b, NULL, err, sizeof err), MB_OK);
    }
    close_log(w);
    char src[1][600];
    ck_assert_int_eq(list_segments(dir, src, 1), 1);
    off_t full = file_size(src[0]);
    off_t rec = full / 6, last_start = full - rec;
    char seg[600];
    for (off_t cut = last_start; cut < full; cut++) {
        mb_fs_remove_tree(work, err, sizeof err);
        ck_assert_int_eq(mb_fs_mkdir_p(work, 0755, err, sizeof err), MB_OK);
        snprintf(seg, sizeof seg, "%s/%s", work, strrchr(src[0], '/') + 1);
        copy_file(src[0], seg, cut);
        /* The read-only scan sees the torn tail but leaves it. */
        mb_wal_report rep;
        ck_assert_int_eq(mb_wal_scan(work, NULL, 0, NULL, NULL, &rep, err, sizeof err), MB_OK);
        ck_assert_uint_eq(rep.torn_bytes, (uint64_t)(cut - last_start));
        ck_assert_int_eq(file_size(seg), cut);
        collected c = {0};
        mb_wal *w2 = open_log(work, MB_WAL_FSYNC_ALWAYS, 0, &c, &rep);
        ck_assert_msg(c.n == 5, "cut at %lld: %zu records", (long long)cut, c.n);
        ck_assert_uint_eq(rep.last_seq, 5);
        ck_assert_uint_eq(rep.torn_bytes, (uint64_t)(cut - last_start));
        if (cut > last_start) ck_assert_ptr_nonnull(strstr(rep.warning, "torn"));
        else ck_assert_str_eq(rep.warning, "");
        ck_assert_int_eq(file_size(seg), last_start);
        append_u64(w2, 12345, 6); /* the log continues where it was cut */
        close_log(w2);
        collected_free(&c);
        w2 = open_log(work, MB_WAL_FSYNC_ALWAYS, 0, &c, &rep);
        ck_assert_uint_eq(c.n, 6);
        ck_assert_uint_eq(c.val[5], 12345);
        ck_assert_uint_eq(rep.torn_bytes, 0);
        close_log(w2);
        collected_free(&c);
    }
}
END_TEST

START_TEST(test_zero_filled_tail_is_torn) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmpdir);
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_ALWAYS, 0, NULL, NULL);
    for (uint64_t i = 1; i <= 4; i++) append_u64(w, i, i);
    close_log(w);
    char seg[1][600];
    ck_assert_int_eq(list_segments(dir, seg, 1), 1);
    /* What a crash can leave on ext4: the size grew, the data did not land. */
    int fd = open(seg[0], O_WRONLY | O_APPEND);
    unsigned char zeros[4096] = {0};
    ck_assert_int_eq(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
    close(fd);
    collected c = {0};
    mb_wal_report rep;
    w = open_log(dir, MB_WAL_FSYNC_ALWAYS, 0, &c, &rep);
    ck_assert_uint_eq(c.n, 4);
    ck_assert_uint_eq(rep.torn_bytes, sizeof zeros);
    close_log(w);
    collected_free(&c);
}
END_TEST

/* ---- corruption --------------------------------------------------------- */

START_TEST(test_flipped_byte_in_the_middle) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmpdir);
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_NO, 0, NULL, NULL);
    for (uint64_t i = 1; i <= 20; i++) append_u64(w, i * 10, i);
    close_log(w);
    char seg[1][600];
    ck_assert_int_eq(list_segments(dir, seg, 1), 1);
    /* Records are 32 bytes; damage record 11 (offset 320) in its body, then
     * in its magic and its length, each time on a fresh copy. */
    const int where[3] = {320 + 26, 320 + 1, 320 + 5};
    char name[600];
    snprintf(name, sizeof name, "%s", strrchr(seg[0], '/') + 1);
    for (int k = 0; k < 3; k++) {
        char d2[600], s2[1300];
        snprintf(d2, sizeof d2, "%s/copy%d", tmpdir, k);
        ck_assert_int_eq(mb_fs_mkdir_p(d2, 0755, err, sizeof err), MB_OK);
        snprintf(s2, sizeof s2, "%s/%s", d2, name);
        copy_file(seg[0], s2, file_size(seg[0]));
        flip_byte(s2, where[k]);

        mb_wal_opts o;
        mb_wal_opts_default(&o);
        collected c = {0};
        mb_wal *w2 = NULL;
        ck_assert_int_eq(mb_wal_scan(d2, &o, 0, NULL, NULL, NULL, err, sizeof err), MB_ECORRUPT);
        ck_assert_int_eq(mb_wal_open(&w2, d2, &o, 0, collect_fn, &c, NULL, err, sizeof err), MB_ECORRUPT);
        ck_assert_ptr_null(w2);
        ck_assert_msg(strstr(err, name) && strstr(err, "offset 320"), "message names the place: %s", err);
        ck_assert_int_eq(file_size(s2), 640); /* nothing was cut */
        collected_free(&c);

        o.repair = 1;
        mb_wal_report rep;
        ck_assert_int_eq(mb_wal_open(&w2, d2, &o, 0, collect_fn, &c, &rep, err, sizeof err), MB_OK);
        ck_assert_uint_eq(c.n, 10);
        for (size_t i = 0; i < 10; i++) ck_assert_uint_eq(c.val[i], (i + 1) * 10);
        ck_assert_uint_eq(rep.repaired_bytes, 320);
        ck_assert_ptr_nonnull(strstr(rep.warning, "repair"));
        char dmg[1400];
        snprintf(dmg, sizeof dmg, "%s.damaged", s2);
        ck_assert_int_eq(file_size(dmg), 320);
        append_u64(w2, 999, 11);
        close_log(w2);
        collected_free(&c);
        o.repair = 0;
        ck_assert_int_eq(mb_wal_open(&w2, d2, &o, 0, collect_fn, &c, &rep, err, sizeof err), MB_OK);
        ck_assert_uint_eq(c.n, 11);
        close_log(w2);
        collected_free(&c);
    }
}
END_TEST

START_TEST(test_damage_in_older_segment_and_missing_segment) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmpdir);
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_NO, 320, NULL, NULL);
    for (uint64_t i = 1; i <= 30; i++) append_u64(w, i, i);
    close_log(w);
    char seg[4][600];
    ck_assert_int_eq(list_segments(dir, seg, 4), 3);
    /* The LAST record of an older segment is damaged: not a torn tail,
     * because later segments hold valid records. */
    flip_byte(seg[1], 320 - 3);
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.segment_bytes = 320;
    collected c = {0};
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 0, collect_fn, &c, NULL, err, sizeof err), MB_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "offset 288"));
    collected_free(&c);
    o.repair = 1;
    mb_wal_report rep;
    ck_assert_int_eq(mb_wal_open(&w, dir, &o, 0, collect_fn, &c, &rep, err, sizeof err), MB_OK);
    ck_assert_uint_eq(c.n, 19);
    ck_assert_uint_eq(rep.last_seq, 19);
    append_u64(w, 20, 20);
    close_log(w);
    collected_free(&c);

    /* A missing segment in the middle is a gap. */
    char d2[600];
    snprintf(d2, sizeof d2, "%s/gap", tmpdir);
    o.repair = 0;
    ck_assert_int_eq(mb_wal_open(&w, d2, &o, 0, NULL, NULL, NULL, err, sizeof err), MB_OK);
    for (uint64_t i = 1; i <= 30; i++) append_u64(w, i, i);
    close_log(w);
    ck_assert_int_eq(list_segments(d2, seg, 4), 3);
    ck_assert_int_eq(unlink(seg[1]), 0);
    ck_assert_int_eq(mb_wal_open(&w, d2, &o, 0, collect_fn, &c, NULL, err, sizeof err), MB_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "missing"));
    collected_free(&c);
    o.repair = 1;
    ck_assert_int_eq(mb_wal_open(&w, d2, &o, 0, collect_fn, &c, &rep, err, sizeof err), MB_OK);
    ck_assert_uint_eq(c.n, 10);
    append_u64(w, 11, 11);
    close_log(w);
    collected_free(&c);
}
END_TEST

/* ---- group commit ------------------------------------------------------- */

typedef struct {
    mb_wal *w;
    int id, n;
    int failures;
    pthread_mutex_t *outer; /* non-NULL: the server's pattern, write under an
                               outer lock, wait for durability outside it */
} writer_arg;

static void *writer_main(void *p) {
    writer_arg *a = p;
    char e[256];
    for (int i = 0; i < a->n; i++) {
        uint64_t v = (uint64_t)a->id << 32 | (uint64_t)i, seq = 0;
        struct iovec iov = {&v, sizeof v};
        if (a->outer) {
            pthread_mutex_lock(a->outer);
            mb_status st = mb_wal_appendv_nowait(a->w, MB_WAL_REC_USER, &iov, 1, &seq, e, sizeof e);
            pthread_mutex_unlock(a->outer);
            if (st != MB_OK || mb_wal_wait(a->w, seq, e, sizeof e) != MB_OK) a->failures++;
        } else if (mb_wal_append(a->w, MB_WAL_REC_USER, &v, sizeof v, NULL, e, sizeof e) != MB_OK) {
            a->failures++;
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void group_commit_case(mb_wal_fsync policy, int threads, int per_thread, uint64_t seg_bytes,
                              int split) {
    char dir[512];
    pthread_mutex_t outer = PTHREAD_MUTEX_INITIALIZER;
    snprintf(dir, sizeof dir, "%s/gc-%s-%d-%llu-%d", tmpdir, mb_wal_fsync_name(policy), threads,
             (unsigned long long)seg_bytes, split);
    mb_wal *w = open_log(dir, policy, seg_bytes, NULL, NULL);
    pthread_t th[32];
    writer_arg args[32];
    for (int t = 0; t < threads; t++) {
        args[t] = (writer_arg){w, t, per_thread, 0, split ? &outer : NULL};
        ck_assert_int_eq(pthread_create(&th[t], NULL, writer_main, &args[t]), 0);
    }
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        ck_assert_int_eq(args[t].failures, 0);
    }
    mb_wal_stats s;
    mb_wal_get_stats(w, &s);
    uint64_t total = (uint64_t)threads * (uint64_t)per_thread;
    ck_assert_uint_eq(s.appends, total);
    if (policy == MB_WAL_FSYNC_ALWAYS) {
        ck_assert_uint_ge(s.fsyncs, 1);
        ck_assert_uint_le(s.fsyncs, total + 64);
        printf("group commit (%s%s): %d threads, %" PRIu64 " appends, %" PRIu64 " fsyncs (%.1f records per fsync)\n",
               mb_wal_fsync_name(policy), split ? ", split append/wait" : "", threads, s.appends, s.fsyncs, (double)s.appends / (double)s.fsyncs);
    }
    close_log(w);
    collected c = {0};
    w = open_log(dir, MB_WAL_FSYNC_ALWAYS, seg_bytes, &c, NULL);
    ck_assert_uint_eq(c.n, total);
    for (size_t i = 0; i < c.n; i++) ck_assert_uint_eq(c.seq[i], i + 1);
    qsort(c.val, c.n, sizeof *c.val, cmp_u64);
    /* Exactly once: sorted values are exactly {t<<32 | i}. */
    size_t k = 0;
    for (int t = 0; t < threads; t++)
        for (int i = 0; i < per_thread; i++, k++)
            ck_assert_uint_eq(c.val[k], (uint64_t)t << 32 | (uint64_t)i);
    close_log(w);
    collected_free(&c);
}

START_TEST(test_group_commit_always) {
    int per = mb_test_sanitized() ? 100 : 400;
    group_commit_case(MB_WAL_FSYNC_ALWAYS, 16, per, 0, 0);
    group_commit_case(MB_WAL_FSYNC_ALWAYS, 8, per, 4096, 0); /* with rotation racing the leaders */
    group_commit_case(MB_WAL_FSYNC_ALWAYS, 16, per, 4096, 1);
}
END_TEST

START_TEST(test_group_commit_everysec_and_no) {
    int per = mb_test_sanitized() ? 200 : 1000;
    group_commit_case(MB_WAL_FSYNC_EVERYSEC, 16, per, 8192, 0);
    group_commit_case(MB_WAL_FSYNC_NO, 16, per, 0, 0);
    group_commit_case(MB_WAL_FSYNC_EVERYSEC, 8, per, 0, 1);
}
END_TEST

/* ---- kill -9 loop ------------------------------------------------------- */

#define KILL_THREADS 4

typedef struct {
    mb_wal *w;
    int pipe_fd;
    uint64_t base;
} kill_writer;

static void *kill_writer_main(void *p) {
    kill_writer *k = p;
    char e[256];
    for (uint64_t i = 0;; i++) {
        uint64_t v = k->base + i;
        if (mb_wal_append(k->w, MB_WAL_REC_USER, &v, sizeof v, NULL, e, sizeof e) != MB_OK) _exit(3);
        /* Only now is it acknowledged; 8 bytes to a pipe are atomic. */
        if (write(k->pipe_fd, &v, sizeof v) != (ssize_t)sizeof v) _exit(4);
    }
    return NULL;
}

static void kill_child(const char *dir, int pipe_fd, uint64_t cycle) {
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.segment_bytes = 16384; /* rotations happen while being killed */
    mb_wal *w;
    char e[512];
    if (mb_wal_open(&w, dir, &o, 0, NULL, NULL, NULL, e, sizeof e) != MB_OK) {
        fprintf(stderr, "child open: %s\n", e);
        _exit(2);
    }
    kill_writer kw[KILL_THREADS];
    pthread_t th[KILL_THREADS];
    for (int t = 0; t < KILL_THREADS; t++) {
        kw[t] = (kill_writer){w, pipe_fd, cycle << 40 | (uint64_t)t << 32};
        if (pthread_create(&th[t], NULL, kill_writer_main, &kw[t]) != 0) _exit(5);
    }
    for (;;) pause();
}

START_TEST(test_kill9_loop) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/kill", tmpdir);
    int cycles = 50;
    uint64_t *acked = NULL;
    size_t n_acked = 0, cap = 0;
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int cycle = 1; cycle <= cycles; cycle++) {
        int pfd[2];
        ck_assert_int_eq(pipe(pfd), 0);
        fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(pfd[0]);
            kill_child(dir, pfd[1], (uint64_t)cycle);
        }
        close(pfd[1]);
        /* A random moment: 2..40 ms into the child's life (opening included). */
        struct timespec ts = {0, (long)(2 + rand() % 39) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        uint64_t v;
        ssize_t r;
        while ((r = read(pfd[0], &v, sizeof v)) == (ssize_t)sizeof v) {
            if (n_acked == cap) {
                cap = cap ? 2 * cap : 4096;
                acked = realloc(acked, cap * sizeof *acked);
                ck_assert_ptr_nonnull(acked);
            }
            acked[n_acked++] = v;
        }
        ck_assert_int_eq(r, 0);
        close(pfd[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "cycle %d: child ended by itself (status 0x%x)", cycle, status);

        collected c = {0};
        mb_wal_report rep;
        mb_wal *w = open_log(dir, MB_WAL_FSYNC_ALWAYS, 16384, &c, &rep);
        close_log(w);
        ck_assert_str_eq(rep.warning, ""); /* kill -9 never tears a write() */
        for (size_t i = 0; i < c.n; i++) ck_assert_uint_eq(c.seq[i], i + 1);
        ck_assert_uint_ge(c.n, n_acked);
        if (c.n > 0) qsort(c.val, c.n, sizeof *c.val, cmp_u64); /* none yet if killed early */
        for (size_t i = 1; i < c.n; i++)
            ck_assert_msg(c.val[i] != c.val[i - 1], "cycle %d: record %" PRIx64 " twice", cycle, c.val[i]);
        for (size_t i = 0; i < n_acked; i++)
            ck_assert_msg(bsearch(&acked[i], c.val, c.n, sizeof *c.val, cmp_u64) != NULL,
                          "cycle %d: acknowledged record %" PRIx64 " lost", cycle, acked[i]);
        ck_assert_uint_ge(c.n, n_acked);
        if (cycle == cycles)
            printf("kill -9 loop: %d cycles, %zu acknowledged, %zu in the log\n", cycles, n_acked, c.n);
        collected_free(&c);
    }
    ck_assert_uint_gt(n_acked, 0);
    free(acked);
}
END_TEST

int main(void) {
    Suite *s = suite_create("wal");
    TCase *tc = tcase_create("wal");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_record_types_round_trip);
    tcase_add_test(tc, test_batch_round_trip_and_decode_checks);
    tcase_add_test(tc, test_fsync_policy_names);
    tcase_add_test(tc, test_rotation_and_remove_through);
    tcase_add_test(tc, test_min_next_seq);
    tcase_add_test(tc, test_cut_at_every_offset_of_last_record);
    tcase_add_test(tc, test_zero_filled_tail_is_torn);
    tcase_add_test(tc, test_flipped_byte_in_the_middle);
    tcase_add_test(tc, test_damage_in_older_segment_and_missing_segment);
    tcase_add_test(tc, test_group_commit_always);
    tcase_add_test(tc, test_group_commit_everysec_and_no);
    tcase_add_test(tc, test_kill9_loop);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
