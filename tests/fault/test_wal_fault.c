/* test_wal_fault.c: the write-ahead log and snapshots under injected disk
 * faults (tests/fault/faultfs.c, preloaded: main() re-executes this binary
 * with LD_PRELOAD set). For each fault (fsync EIO, write ENOSPC, a short
 * write then ENOSPC, under fsync=always and everysec): no append is
 * acknowledged while the fault lasts, the log refuses writes until resumed,
 * resume fails while the disk still fails and succeeds after, and a reopen
 * then finds every acknowledged record once and in order (plus at most the
 * few written just before the fault, never acknowledged), with nothing torn
 * or corrupt. A snapshot save that fails
 * leaves the previous snapshot intact and no temp file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "tmpdir.h"
#include "base/fsutil.h"
#include "store/snapshot.h"
#include "store/wal.h"

#ifndef MB_FAULTFS
#error "build through tests/fault/fault.mk (MB_FAULTFS names the shim)"
#endif

static char err[1024];

static void setup(void) { tmpdir_setup("fault"); }
static void teardown(void) { tmpdir_remove(); }

/* Switches faults: spec like "write=ENOSPC" (applied under tmpdir), or ""
 * for none. The shim re-reads the control file on every call. */
static void fault(const char *spec) {
    const char *ctl = getenv("MBRLD_FAULT_CTL");
    ck_assert_ptr_nonnull(ctl);
    char text[1024];
    int n = spec[0] ? snprintf(text, sizeof text, "dir=%s\n%s\n", tmpdir, spec) : 0;
    int fd = open(ctl, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    /* The control file lives outside tmpdir, so this write is never faulted. */
    ck_assert_int_eq(write(fd, text, (size_t)n), n);
    close(fd);
}

typedef struct {
    uint64_t *v;
    size_t n, cap;
} vals;

static void vals_push(vals *a, uint64_t x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 256;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        ck_assert_ptr_nonnull(a->v);
    }
    a->v[a->n++] = x;
}

static mb_status collect_fn(void *ctx, const mb_wal_record *r, char *e, size_t esz) {
    (void)e;
    (void)esz;
    uint64_t x;
    ck_assert_uint_eq(r->len, 8);
    memcpy(&x, r->body, 8);
    vals_push(ctx, x);
    return MB_OK;
}

static mb_wal *open_log(const char *dir, mb_wal_fsync policy, vals *got, mb_wal_report *rep) {
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.fsync = policy;
    o.segment_bytes = 4096;
    mb_wal *w = NULL;
    mb_status st = mb_wal_open(&w, dir, &o, 0, got ? collect_fn : NULL, got, rep, err, sizeof err);
    ck_assert_msg(st == MB_OK, "open: %s", err);
    return w;
}

static mb_status append(mb_wal *w, uint64_t x) {
    return mb_wal_append(w, MB_WAL_REC_USER, &x, sizeof x, NULL, err, sizeof err);
}

/* Threads that try to append during a fault and count acknowledgements. */
typedef struct {
    mb_wal *w;
    uint64_t base;
    int tries, acked, eio;
} try_arg;

static void *try_main(void *p) {
    try_arg *a = p;
    char e[512];
    for (int i = 0; i < a->tries; i++) {
        uint64_t x = a->base + (uint64_t)i;
        mb_status st = mb_wal_append(a->w, MB_WAL_REC_USER, &x, sizeof x, NULL, e, sizeof e);
        if (st == MB_OK) a->acked++;
        else if (st == MB_EIO) a->eio++;
    }
    return NULL;
}

/* The scenario: acknowledged records, a fault, concurrent appends during it,
 * recovery, more records, reopen. */
static void fault_scenario(mb_wal_fsync policy, const char *spec) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/log", tmpdir);
    vals acked = {0};
    mb_wal *w = open_log(dir, policy, NULL, NULL);
    for (uint64_t i = 1; i <= 200; i++) { /* crosses several 4 kB segments */
        ck_assert_msg(append(w, i) == MB_OK, "append %" PRIu64 ": %s", i, err);
        vals_push(&acked, i);
    }
    fault(spec);
    if (policy == MB_WAL_FSYNC_EVERYSEC && strstr(spec, "fsync")) {
        /* Writes still succeed (acknowledged on write) until a sync fails. */
        ck_assert_int_eq(append(w, 1000), MB_OK);
        vals_push(&acked, 1000);
        ck_assert_int_eq(mb_wal_sync(w, err, sizeof err), MB_EIO);
    }
    pthread_t th[4];
    try_arg args[4];
    for (int t = 0; t < 4; t++) {
        args[t] = (try_arg){w, 10000 * (uint64_t)(t + 1), 25, 0, 0};
        ck_assert_int_eq(pthread_create(&th[t], NULL, try_main, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        ck_assert_msg(args[t].acked == 0, "%s: %d appends acknowledged during the fault", spec, args[t].acked);
        ck_assert_int_eq(args[t].eio, 25);
    }
    char msg[512];
    ck_assert(mb_wal_failed(w, msg, sizeof msg));
    ck_assert_msg(strstr(msg, "No space") || strstr(msg, "Input/output"), "failure names the cause: %s", msg);
    /* Still failing: resume must not pretend. */
    if (strstr(spec, "fsync")) ck_assert_int_eq(mb_wal_resume(w, err, sizeof err), MB_EIO);
    fault("");
    /* The disk is fine again, but the log stays refused until resumed. */
    ck_assert_int_eq(append(w, 5), MB_EIO);
    ck_assert_msg(mb_wal_resume(w, err, sizeof err) == MB_OK, "resume: %s", err);
    ck_assert(!mb_wal_failed(w, NULL, 0));
    for (uint64_t i = 201; i <= 260; i++) {
        ck_assert_msg(append(w, i) == MB_OK, "append after resume: %s", err);
        vals_push(&acked, i);
    }
    ck_assert_int_eq(mb_wal_close(w, err, sizeof err), MB_OK);

    vals got = {0};
    mb_wal_report rep;
    w = open_log(dir, policy, &got, &rep);
    ck_assert_msg(rep.warning[0] == '\0', "clean after resume, got: %s", rep.warning);
    ck_assert_int_eq(mb_wal_close(w, err, sizeof err), MB_OK);
    /* Every acknowledged record, in order and once. Besides them only
     * records written just before the fault hit (never acknowledged, at most
     * one per thread) may survive: resume keeps what verifies. */
    size_t j = 0, extra = 0;
    for (size_t i = 0; i < got.n; i++) {
        if (j < acked.n && got.v[i] == acked.v[j]) {
            j++;
            continue;
        }
        ck_assert_msg(got.v[i] >= 10000 && got.v[i] % 10000 == 0, "unexpected record %" PRIu64, got.v[i]);
        extra++;
    }
    ck_assert_uint_eq(j, acked.n);
    ck_assert_uint_le(extra, 4);
    mb_wal_scan(dir, NULL, 0, NULL, NULL, &rep, err, sizeof err);
    ck_assert_uint_eq(rep.torn_bytes, 0);
    free(acked.v);
    free(got.v);
}

START_TEST(test_shim_is_active) {
    char p[512];
    snprintf(p, sizeof p, "%s/probe", tmpdir);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    fault("write=ENOSPC");
    errno = 0;
    ck_assert_int_eq(write(fd, "x", 1), -1);
    ck_assert_int_eq(errno, ENOSPC);
    fault("fsync=EIO");
    ck_assert_int_eq(write(fd, "x", 1), 1);
    ck_assert_int_eq(fdatasync(fd), -1);
    ck_assert_int_eq(errno, EIO);
    fault("write=EIO\npartial=1");
    ck_assert_int_eq(write(fd, "abcd", 4), 2);
    ck_assert_int_eq(write(fd, "x", 1), -1);
    fault("");
    ck_assert_int_eq(fsync(fd), 0);
    close(fd);
    /* Outside the directory nothing is faulted. */
    fault("write=ENOSPC");
    ck_assert_int_eq(write(STDOUT_FILENO, "", 0), 0);
    fault("");
}
END_TEST

START_TEST(test_fsync_eio_always) { fault_scenario(MB_WAL_FSYNC_ALWAYS, "fsync=EIO"); }
END_TEST
START_TEST(test_write_enospc_always) { fault_scenario(MB_WAL_FSYNC_ALWAYS, "write=ENOSPC"); }
END_TEST
START_TEST(test_short_write_then_enospc_always) { fault_scenario(MB_WAL_FSYNC_ALWAYS, "write=ENOSPC\npartial=1"); }
END_TEST
START_TEST(test_fsync_eio_everysec) { fault_scenario(MB_WAL_FSYNC_EVERYSEC, "fsync=EIO"); }
END_TEST
START_TEST(test_short_write_everysec) { fault_scenario(MB_WAL_FSYNC_EVERYSEC, "write=EIO\npartial=1"); }
END_TEST

/* A crash while the log holds a short write (no resume): the next open cuts
 * the torn tail and keeps every acknowledged record. */
START_TEST(test_crash_after_short_write) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/log", tmpdir);
    mb_wal *w = open_log(dir, MB_WAL_FSYNC_ALWAYS, NULL, NULL);
    for (uint64_t i = 1; i <= 10; i++) ck_assert_int_eq(append(w, i), MB_OK);
    fault("write=ENOSPC\npartial=1");
    ck_assert_int_eq(append(w, 11), MB_EIO);
    fault("");
    ck_assert_int_eq(mb_wal_close(w, err, sizeof err), MB_EIO); /* still failed */
    vals got = {0};
    mb_wal_report rep;
    w = open_log(dir, MB_WAL_FSYNC_ALWAYS, &got, &rep);
    ck_assert_uint_eq(got.n, 10);
    ck_assert_uint_gt(rep.torn_bytes, 0);
    ck_assert_ptr_nonnull(strstr(rep.warning, "torn"));
    ck_assert_int_eq(append(w, 11), MB_OK);
    ck_assert_int_eq(mb_wal_close(w, err, sizeof err), MB_OK);
    free(got.v);
}
END_TEST

START_TEST(test_snapshot_save_fault_keeps_previous) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/snap", tmpdir);
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, 3, 1, 100, 0.1f, 7, err, sizeof err), MB_OK);
    float o[3] = {1, 2, 3}, a = 0.5f, r = -1, n[3] = {4, 5, 6};
    mb_buffer_append(&b, 1, o, &a, &r, n, NULL, NULL);
    mb_snapshot_src src = {"v1", 2, NULL, NULL, &b, 10, NULL};
    ck_assert_int_eq(mb_snapshot_save(dir, &src, 2, NULL, 0, NULL, err, sizeof err), MB_OK);
    const char *faults[3] = {"write=ENOSPC", "fsync=EIO", "write=EIO\npartial=1"};
    for (int k = 0; k < 3; k++) {
        fault(faults[k]);
        src.meta = "v2";
        src.log_seq = 10; /* would replace the same file */
        ck_assert_int_eq(mb_snapshot_save(dir, &src, 2, NULL, 0, NULL, err, sizeof err), MB_EIO);
        fault("");
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s/snap-%020d.mbs.tmp", dir, 10);
        ck_assert_msg(access(tmp, F_OK) != 0, "temp file left after %s", faults[k]);
        mb_snapshot s;
        ck_assert_int_eq(mb_snapshot_load_latest(dir, NULL, &s, NULL, 0, NULL, 0, err, sizeof err), MB_OK);
        ck_assert_str_eq(s.meta, "v1");
        ck_assert_uint_eq(s.buf.size, 1);
        mb_snapshot_free(&s);
    }
    mb_buffer_free(&b);
}
END_TEST

int main(int argc, char **argv) {
    (void)argc;
    /* Re-execute with the shim preloaded and a control file (outside the
     * faulted directories). */
    const char *pre = getenv("LD_PRELOAD");
    if (!pre || !strstr(pre, "faultfs.so")) {
        if (access(MB_FAULTFS, R_OK) != 0) {
            fprintf(stderr, "test_wal_fault: shim %s missing: %s\n", MB_FAULTFS, strerror(errno));
            return 1;
        }
        const char *t = getenv("TMPDIR");
        static char ctl[300], opts[1024];
        snprintf(ctl, sizeof ctl, "%s/mbrld-faultctl-%d", t && *t ? t : "/tmp", (int)getpid());
        setenv("MBRLD_FAULT_CTL", ctl, 1);
        setenv("LD_PRELOAD", MB_FAULTFS, 1);
        /* A sanitized binary would insist on its runtime coming first. */
        const char *ao = getenv("ASAN_OPTIONS");
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", ao ? ao : "", ao && *ao ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "test_wal_fault: exec: %s\n", strerror(errno));
        return 1;
    }
    Suite *s = suite_create("wal_fault");
    TCase *tc = tcase_create("wal_fault");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_shim_is_active);
    tcase_add_test(tc, test_fsync_eio_always);
    tcase_add_test(tc, test_write_enospc_always);
    tcase_add_test(tc, test_short_write_then_enospc_always);
    tcase_add_test(tc, test_fsync_eio_everysec);
    tcase_add_test(tc, test_short_write_everysec);
    tcase_add_test(tc, test_crash_after_short_write);
    tcase_add_test(tc, test_snapshot_save_fault_keeps_previous);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    unlink(getenv("MBRLD_FAULT_CTL"));
    return rc;
}
