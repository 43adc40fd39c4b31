/* test_lifecycle.c: the daemon's life as a process, black-box against a real
 * mbrld: signals (every thread but the one waiting for them blocks
 * SIGTERM and SIGINT, OpenBLAS's included; a second SIGTERM during the drain
 * does not kill it) and what a model leaves behind when deleted (file
 * descriptors, threads, files: nothing).
 * Mirrors server/main.c, server/app.c, server/store.c. */
#include <dirent.h>
#include <sys/stat.h>

#include "check_util.h"
#include "harness.h"

/* Counts the entries of /proc/PID/<sub> (fd, task). */
static int proc_count(pid_t pid, const char *sub) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, sub);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* The SigBlk mask of thread tid of pid. */
static unsigned long long thread_blocked(pid_t pid, const char *tid) {
    char path[400], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, tid);
    FILE *f = fopen(path, "r");
    if (!f) return ~0ULL; /* ended meanwhile */
    unsigned long long m = ~0ULL;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "SigBlk:", 7)) m = strtoull(line + 7, NULL, 16);
    fclose(f);
    return m;
}

START_TEST(test_signals_blocked_in_every_thread) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    ck_assert_int_eq(mbd_create_small(&d, "s", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&d, "s", 20, 0, NULL, 0, NULL), 201);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/s/train", "{\"max_epochs\": 2, \"wait\": true}"), 200);
    mbr_free(&r);
    /* The main thread waits in sigwait (the kernel shows the waited signals
     * unblocked meanwhile); every other thread must block both. */
    char self[24];
    snprintf(self, sizeof self, "%d", (int)d.pid);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)d.pid);
    DIR *dir = opendir(path);
    ck_assert_ptr_nonnull(dir);
    struct dirent *e;
    int threads = 0;
    const unsigned long long want = (1ULL << (SIGTERM - 1)) | (1ULL << (SIGINT - 1));
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, self)) continue;
        threads++;
        unsigned long long m = thread_blocked(d.pid, e->d_name);
        ck_assert_msg((m & want) == want, "thread %s does not block SIGTERM/SIGINT (SigBlk %016llx)", e->d_name, m);
    }
    closedir(dir);
    ck_assert_int_gt(threads, 0);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Two SIGTERMs a few ms apart, while a model is being trained and posted
 * to: the drain runs to its end and the exit status is 0, every time. */
START_TEST(test_double_sigterm) {
    for (int round = 0; round < 5; round++) {
        mbd d;
        ck_assert_int_eq(mbd_start(&d, NULL), 0);
        ck_assert_int_eq(mbd_create_small(&d, "s", NULL), 201);
        ck_assert_int_eq(mbd_post_rows(&d, "s", 50, 0, NULL, 0, NULL), 201);
        mbr r;
        ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/s/train", "{\"max_epochs\": 200}"), 202);
        mbr_free(&r);
        kill(d.pid, SIGTERM);
        mbd_sleep_ms(2 + round * 3);
        kill(d.pid, SIGTERM);
        mbd_sleep_ms(5);
        kill(d.pid, SIGINT);
        int st = 0;
        waitpid(d.pid, &st, 0);
        int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (rc != 0) mbd_dump_log(&d);
        ck_assert_msg(rc == 0, "round %d: exit status %d after repeated signals", round, rc);
        d.pid = 0;
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d.dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* Files and directories under dir (recursively). */
static int tree_count(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        n++;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) n += tree_count(p);
    }
    closedir(d);
    return n;
}

static void create_post_delete(const mbd *d, int i) {
    char name[32];
    snprintf(name, sizeof name, "m%d", i);
    ck_assert_int_eq(mbd_create_small(d, name, NULL), 201);
    ck_assert_int_eq(mbd_post_rows(d, name, 3, i, "c", 1, NULL), 201);
    char path[64];
    snprintf(path, sizeof path, "/v1/models/%s", name);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "DELETE", path, NULL), 200);
    mbr_free(&r);
}

/* 200 create/post/delete cycles leave the daemon with the fds, threads and
 * files it had: nothing of a deleted model stays open (its log segment,
 * pinned by an fd, would keep its disk space), no flusher thread remains. */
static void delete_cycles(const char *fsync) {
    const char *extra[] = {"--fsync", fsync, NULL};
    mbd d;
    ck_assert_int_eq(mbd_start(&d, extra), 0);
    ck_assert_int_eq(mbd_create_small(&d, "keep", NULL), 201);
    for (int i = 0; i < 3; i++) create_post_delete(&d, 1000 + i); /* warm up */
    mbd_sleep_ms(200);
    char data[200];
    snprintf(data, sizeof data, "%s/data", d.dir);
    int fds0 = proc_count(d.pid, "fd"), th0 = proc_count(d.pid, "task"), files0 = tree_count(data);
    for (int i = 0; i < 200; i++) create_post_delete(&d, i);
    int fds = 0, th = 0;
    for (int k = 0; k < 50; k++) { /* closing connections and threads ending take a moment */
        fds = proc_count(d.pid, "fd");
        th = proc_count(d.pid, "task");
        if (fds <= fds0 && th <= th0) break;
        mbd_sleep_ms(20);
    }
    int files = tree_count(data);
    ck_assert_msg(fds <= fds0, "--fsync %s: %d open fds after 200 deletes, %d before", fsync, fds, fds0);
    ck_assert_msg(th <= th0, "--fsync %s: %d threads after 200 deletes, %d before", fsync, th, th0);
    ck_assert_msg(files <= files0, "--fsync %s: %d files in the data dir after 200 deletes, %d before", fsync, files,
                  files0);
    ck_assert_int_eq(mbd_stop(&d), 0);
}

START_TEST(test_delete_leaves_nothing_always) { delete_cycles("always"); }
END_TEST

START_TEST(test_delete_leaves_nothing_everysec) { delete_cycles("everysec"); }
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_signals_blocked_in_every_thread);
    tcase_add_test(tc, test_double_sigterm);
    tcase_add_test(tc, test_delete_leaves_nothing_always);
    tcase_add_test(tc, test_delete_leaves_nothing_everysec);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
