/* test_fsutil.c: atomic replacement (old or new file, never a mix, no temp
 * left behind), abort, whole-file reads with the size cap, mkdir -p,
 * rm -r, dirname, full writes and exact preads, numbered-file listing. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_util.h"
#include "tmpdir.h"
#include "base/fsutil.h"

static char err[512];

static void setup(void) { tmpdir_setup("fsutil"); }
static void teardown(void) { tmpdir_remove(); }

static int exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0;
}

START_TEST(test_atomic_write_and_read) {
    char path[512];
    snprintf(path, sizeof path, "%s/a.bin", tmpdir);
    const char *v1 = "first version", *v2 = "second, longer version of the file";
    ck_assert_int_eq(mb_fs_write_file_atomic(path, v1, strlen(v1), err, sizeof err), MB_OK);
    void *data;
    size_t n;
    ck_assert_int_eq(mb_fs_read_file(path, 1 << 20, &data, &n, err, sizeof err), MB_OK);
    ck_assert_uint_eq(n, strlen(v1));
    ck_assert_int_eq(memcmp(data, v1, n), 0);
    ck_assert_int_eq(((char *)data)[n], '\0');
    free(data);
    ck_assert_int_eq(mb_fs_write_file_atomic(path, v2, strlen(v2), err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_fs_read_file(path, 1 << 20, &data, &n, err, sizeof err), MB_OK);
    ck_assert_uint_eq(n, strlen(v2));
    ck_assert_int_eq(memcmp(data, v2, n), 0);
    free(data);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_msg(!exists(tmp), "temp file left behind");
    /* Size cap and missing file. */
    ck_assert_int_eq(mb_fs_read_file(path, 5, &data, &n, err, sizeof err), MB_ERANGE);
    ck_assert_ptr_null(data);
    snprintf(tmp, sizeof tmp, "%s/missing", tmpdir);
    ck_assert_int_eq(mb_fs_read_file(tmp, 100, &data, &n, err, sizeof err), MB_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err, "missing"));
}
END_TEST

START_TEST(test_atomic_stream_and_abort) {
    char path[512];
    snprintf(path, sizeof path, "%s/s.bin", tmpdir);
    ck_assert_int_eq(mb_fs_write_file_atomic(path, "old", 3, err, sizeof err), MB_OK);
    mb_fs_atomic a;
    ck_assert_int_eq(mb_fs_atomic_open(&a, path, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_fs_atomic_write(&a, "new data", 8, err, sizeof err), MB_OK);
    mb_fs_atomic_abort(&a);
    mb_fs_atomic_abort(&a); /* twice is fine */
    void *data;
    size_t n;
    ck_assert_int_eq(mb_fs_read_file(path, 100, &data, &n, err, sizeof err), MB_OK);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(data, "old", 3), 0);
    free(data);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert(!exists(tmp));
    /* Streamed in many pieces. */
    ck_assert_int_eq(mb_fs_atomic_open(&a, path, err, sizeof err), MB_OK);
    for (int i = 0; i < 1000; i++) {
        unsigned char b = (unsigned char)i;
        ck_assert_int_eq(mb_fs_atomic_write(&a, &b, 1, err, sizeof err), MB_OK);
    }
    ck_assert_int_eq(mb_fs_atomic_commit(&a, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_fs_read_file(path, 4096, &data, &n, err, sizeof err), MB_OK);
    ck_assert_uint_eq(n, 1000);
    for (int i = 0; i < 1000; i++) ck_assert_uint_eq(((unsigned char *)data)[i], (unsigned char)i);
    free(data);
    /* A commit into a missing directory fails cleanly. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/nodir/x", tmpdir);
    ck_assert_int_eq(mb_fs_write_file_atomic(bad, "x", 1, err, sizeof err), MB_EIO);
    ck_assert_ptr_nonnull(strstr(err, "nodir"));
}
END_TEST

START_TEST(test_mkdir_remove_dirname) {
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/a/b/c/", tmpdir);
    ck_assert_int_eq(mb_fs_mkdir_p(p, 0755, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_fs_mkdir_p(p, 0755, err, sizeof err), MB_OK); /* idempotent */
    snprintf(q, sizeof q, "%s/a/b/c/f", tmpdir);
    ck_assert_int_eq(mb_fs_write_file_atomic(q, "x", 1, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_fs_mkdir_p(q, 0755, err, sizeof err), MB_EIO); /* a file is in the way */
    snprintf(p, sizeof p, "%s/a", tmpdir);
    ck_assert_int_eq(mb_fs_remove_tree(p, err, sizeof err), MB_OK);
    ck_assert(!exists(p));
    ck_assert_int_eq(mb_fs_remove_tree(p, err, sizeof err), MB_OK); /* missing is fine */
    char d[64];
    ck_assert_int_eq(mb_fs_dirname("/x/y/z.log", d, sizeof d, err, sizeof err), MB_OK);
    ck_assert_str_eq(d, "/x/y");
    ck_assert_int_eq(mb_fs_dirname("z.log", d, sizeof d, err, sizeof err), MB_OK);
    ck_assert_str_eq(d, ".");
    ck_assert_int_eq(mb_fs_dirname("/z", d, sizeof d, err, sizeof err), MB_OK);
    ck_assert_str_eq(d, "/");
    ck_assert_int_eq(mb_fs_dirname("/a/b", d, 2, err, sizeof err), MB_ERANGE);
}
END_TEST

START_TEST(test_write_all_pread_all) {
    char p[512];
    snprintf(p, sizeof p, "%s/w.bin", tmpdir);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    static unsigned char big[1 << 20];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 31);
    ck_assert_int_eq(mb_fs_write_all(fd, big, sizeof big, p, err, sizeof err), MB_OK);
    static unsigned char back[1000];
    ck_assert_int_eq(mb_fs_pread_all(fd, back, sizeof back, 5000, p, err, sizeof err), MB_OK);
    ck_assert_int_eq(memcmp(back, big + 5000, sizeof back), 0);
    ck_assert_int_eq(mb_fs_pread_all(fd, back, sizeof back, sizeof big - 10, p, err, sizeof err), MB_ECORRUPT);
    close(fd);
    ck_assert_int_eq(mb_fs_write_all(fd, big, 10, p, err, sizeof err), MB_EIO); /* closed fd */
}
END_TEST

/* Only <prefix><20 digits><suffix> counts; numbers come back ascending. */
START_TEST(test_list_numbered) {
    const char *names[] = {"wal-00000000000000000300.log", "wal-00000000000000000007.log",
                           "wal-18446744073709551615.log", "wal-00000000000000000042.log",
                           "wal-0000000000000000042.log",  /* 19 digits */
                           "wal-0000000000000000004x.log", "wal-00000000000000000042.tmp",
                           "snap-00000000000000000042.mbs", "xwal-00000000000000000001.log"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        ck_assert_int_eq(mb_fs_write_file_atomic(p, "x", 1, err, sizeof err), MB_OK);
    }
    uint64_t *v;
    size_t n;
    ck_assert_int_eq(mb_fs_list_numbered(tmpdir, "wal-", ".log", "log directory", &v, &n, err, sizeof err), MB_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_uint_eq(v[0], 7);
    ck_assert_uint_eq(v[1], 42);
    ck_assert_uint_eq(v[2], 300);
    ck_assert_uint_eq(v[3], UINT64_MAX);
    free(v);
    ck_assert_int_eq(mb_fs_list_numbered(tmpdir, "snap-", ".mbs", "snapshot directory", &v, &n, err, sizeof err), MB_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(v[0], 42);
    free(v);
    ck_assert_int_eq(mb_fs_list_numbered(tmpdir, "none-", ".x", "dir", &v, &n, err, sizeof err), MB_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(v);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/missing", tmpdir);
    ck_assert_int_eq(mb_fs_list_numbered(missing, "wal-", ".log", "log directory", &v, &n, err, sizeof err),
                     MB_ENOTFOUND);
    ck_assert_ptr_null(v);
    ck_assert_ptr_nonnull(strstr(err, "open log directory"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("fsutil");
    TCase *tc = tcase_create("fsutil");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_atomic_write_and_read);
    tcase_add_test(tc, test_atomic_stream_and_abort);
    tcase_add_test(tc, test_mkdir_remove_dirname);
    tcase_add_test(tc, test_write_all_pread_all);
    tcase_add_test(tc, test_list_numbered);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
