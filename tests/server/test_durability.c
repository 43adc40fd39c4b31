/* test_durability.c: issue 5 against a real mbrld with a --data-dir.
 *
 * - kill -9 loop: writer threads post numbered transitions (obs[0] = the
 *   number, client+seq per thread) and record which were acknowledged; the
 *   daemon is killed with SIGKILL at a random moment and restarted on the
 *   same data dir; after every restart every acknowledged transition is in
 *   the buffer exactly once (read back through GET .../export), and a retry
 *   of an acknowledged client+seq adds nothing (50 cycles; 10 under the
 *   sanitizers).
 * - restart: a trained model gives identical predictions and the same first
 *   planned action after a clean restart; status shows what was recovered.
 * - export from one daemon, import into a second: same predictions; a
 *   damaged upload is 422, a taken name 409.
 * - a flipped byte in the middle of the log: the daemon refuses to start and
 *   says where; with --repair 1 it keeps what precedes the damage. A torn
 *   tail is cut with a warning shown in the model's status.
 * - disk errors through tests/fault/faultfs.so preloaded into the daemon:
 *   503 with Retry-After and /readyz false during the fault, writes resume
 *   after it, nothing acknowledged is lost. */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "check_util.h"
#include "harness.h"
#include "store/snapshot.h"

/* ---- helpers ------------------------------------------------------------ */

static char root[200];

static void setup(void) {
    snprintf(root, sizeof root, "/tmp/mbrld-dur-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

/* Starts mbrld on `data` (the later --data-dir wins over the harness's). */
static int dur_start(mbd *d, const char *data, const char *x1, const char *x2) {
    const char *extra[8] = {"--data-dir", data, "--snapshot-interval", "0", x1, x2, NULL};
    return mbd_start(d, extra);
}

static void dur_kill9(mbd *d) {
    kill(d->pid, SIGKILL);
    int st;
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d->dir);
}

/* Binary POST (import). */
static long dur_post_binary(mbr *r, const mbd *d, const char *path, const void *data, size_t n) {
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", d->url, path);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mbr__write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, mbr__header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    r->curl = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (r->body && strstr(r->headers, "application/json")) r->json = cJSON_Parse(r->body);
    return r->status;
}

/* The model's buffer, decoded from GET .../export (caller frees). */
static void dur_export(const mbd *d, const char *name, mb_snapshot *s, void **raw, size_t *raw_n) {
    char path[128], err[512];
    snprintf(path, sizeof path, "/v1/models/%s/export", name);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "GET", path, NULL), 200);
    ck_assert_msg(mb_snapshot_decode_mem(r.body, r.len, NULL, s, err, sizeof err) == MB_OK, "export: %s", err);
    if (raw) {
        *raw = r.body;
        *raw_n = r.len;
        r.body = NULL;
    }
    mbr_free(&r);
}

static long dur_post_one(const mbd *d, const char *name, double id, const char *client, long seq) {
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/transitions", name);
    mbr r;
    long st = mbr_call(&r, d, "POST", path,
                       "{\"transitions\": [{\"obs\": [%.1f, 0, 0], \"action\": [0.5], \"reward\": 1, "
                       "\"next_obs\": [%.1f, 0.1, 0], \"terminated\": false}], \"client\": \"%s\", \"seq\": %ld}",
                       id, id, client, seq);
    if (st == 0 && r.curl != CURLE_OK) st = 0;
    mbr_free(&r);
    return st;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- kill -9 loop ------------------------------------------------------- */

#define KW 4

typedef struct {
    const mbd *d;
    int t, cycle;
    atomic_int *stop;
    double *acked; /* (cap) */
    size_t n, cap;
    long *seq;     /* next seq of this writer (survives cycles) */
    double *pending; /* a post that got no answer: resent first, same seq and row */
} kw_arg;

/* A well-behaved client: a post without an answer is retried with the same
 * client+seq AND the same row (the server takes a repeated seq for a retry
 * of the same request). */
static void *kw_main(void *p) {
    kw_arg *a = p;
    char client[32];
    snprintf(client, sizeof client, "w%d", a->t);
    for (int k = 0; !atomic_load(a->stop); k++) {
        double id = *a->pending >= 0 ? *a->pending : (double)a->cycle * 100000.0 + a->t * 10000.0 + k;
        long st = dur_post_one(a->d, "dur", id, client, *a->seq);
        if (st == 0) { /* the daemon is gone: maybe applied, maybe not */
            *a->pending = id;
            break;
        }
        ck_assert_msg(st == 200 || st == 201 || st == 202, "post: status %ld", st);
        if (a->n < a->cap) a->acked[a->n++] = id;
        (*a->seq)++;
        *a->pending = -1;
    }
    return NULL;
}

START_TEST(test_kill9_loop) {
    char data[300];
    snprintf(data, sizeof data, "%s/data", root);
    int cycles = mb_test_sanitized() ? 10 : 50;
    size_t cap = 200000;
    double *acked = malloc(cap * sizeof *acked);
    size_t n_acked = 0;
    long seqs[KW] = {1, 1, 1, 1};
    double pending[KW] = {-1, -1, -1, -1};
    srand((unsigned)time(NULL));
    mbd d;
    for (int cycle = 1; cycle <= cycles; cycle++) {
        ck_assert_msg(dur_start(&d, data, NULL, NULL) == 0, "cycle %d: start failed", cycle);
        if (cycle == 1)
            ck_assert_int_eq(mbd_create_small(&d, "dur", "\"buffer\": {\"capacity\": 200000}"), 201);
        /* Everything acknowledged so far is there, once. */
        mb_snapshot s;
        dur_export(&d, "dur", &s, NULL, NULL);
        ck_assert(s.has_buffer);
        size_t n = s.buf.size;
        double *ids = malloc((n ? n : 1) * sizeof *ids);
        for (size_t i = 0; i < n; i++) ids[i] = s.buf.obs[mb_buffer_slot(&s.buf, i) * 3];
        if (n) qsort(ids, n, sizeof *ids, cmp_d);
        for (size_t i = 1; i < n; i++) ck_assert_msg(ids[i] != ids[i - 1], "cycle %d: row %.0f twice", cycle, ids[i]);
        size_t lost = 0;
        for (size_t i = 0; i < n_acked; i++) lost += !(n && bsearch(&acked[i], ids, n, sizeof *ids, cmp_d));
        if (lost) {
            fprintf(stderr, "cycle %d: %zu of %zu acknowledged rows lost; buffer %zu\n", cycle, lost, n_acked, n);
            for (size_t i = 0; i < n_acked && i < 5000; i++)
                if (!(n && bsearch(&acked[i], ids, n, sizeof *ids, cmp_d))) fprintf(stderr, " lost %.0f\n", acked[i]);
            mbd_dump_log(&d);
        }
        ck_assert_msg(lost == 0, "cycle %d: %zu acknowledged rows lost", cycle, lost);
        free(ids);
        mb_snapshot_free(&s);
        if (cycle == cycles) break;
        /* A retried post of an acknowledged client+seq adds nothing. */
        if (seqs[0] > 1) {
            mbr r;
            char body[256];
            snprintf(body, sizeof body, "{\"transitions\": [{\"obs\": [-1, 0, 0], \"action\": [0], \"reward\": 0, "
                     "\"next_obs\": [-1, 0, 0]}], \"client\": \"w0\", \"seq\": %ld}", seqs[0] - 1);
            mbr_do(&r, &d, "POST", "/v1/models/dur/transitions", body, 0, NULL);
            ck_assert_msg(r.status / 100 == 2 && strstr(r.headers, "X-Idempotent-Replay"), "retry: %ld %s",
                          r.status, r.body);
            mbr_free(&r);
        }
        atomic_int stop = 0;
        pthread_t th[KW];
        kw_arg args[KW];
        for (int t = 0; t < KW; t++) {
            args[t] = (kw_arg){&d, t, cycle, &stop, acked + n_acked + (size_t)t * 2000, 0, 2000, &seqs[t], &pending[t]};
            ck_assert_int_le(n_acked + (size_t)(t + 1) * 2000, cap);
            pthread_create(&th[t], NULL, kw_main, &args[t]);
        }
        mbd_sleep_ms(20 + rand() % 150);
        dur_kill9(&d);
        atomic_store(&stop, 1);
        size_t base = n_acked;
        for (int t = 0; t < KW; t++) {
            pthread_join(th[t], NULL);
            memmove(acked + n_acked, acked + base + (size_t)t * 2000, args[t].n * sizeof *acked);
            n_acked += args[t].n;
        }
    }
    ck_assert_uint_gt(n_acked, 0);
    printf("daemon kill -9 loop: %d cycles, %zu acknowledged transitions all present once\n", cycles, n_acked);
    ck_assert_int_eq(mbd_stop(&d), 0);
    free(acked);
}
END_TEST

/* ---- restart and export/import ------------------------------------------ */

static void post_and_train(const mbd *d, const char *name) {
    mbr r;
    for (int b = 0; b < 4; b++) {
        ck_assert_int_eq(mbd_post_rows(d, name, 50, 50 * b, "c", b + 1, &r) / 100, 2);
        mbr_free(&r);
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    ck_assert_int_eq(mbr_call(&r, d, "POST", path, "{\"max_epochs\": 3, \"wait\": true}"), 200);
    mbr_free(&r);
}

static char *call_body(const mbd *d, const char *method, const char *path, const char *body, long want) {
    mbr r;
    mbr_do(&r, d, method, path, body, 0, NULL);
    ck_assert_msg(r.status == want, "%s %s: %ld %s", method, path, r.status, r.body ? r.body : "");
    char *b = r.body;
    r.body = NULL;
    mbr_free(&r);
    return b;
}

#define PRED "{\"obs\": [0.1, -0.2, 0.5], \"actions\": [[0.5], [-1.0], [1.5]]}"
#define ACT "{\"obs\": [0.1, -0.2, 0.5]}"

START_TEST(test_restart_same_predictions_and_plans) {
    char data[300];
    snprintf(data, sizeof data, "%s/data", root);
    mbd d;
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    ck_assert_int_eq(mbd_create_small(&d, "p", NULL), 201);
    post_and_train(&d, "p");
    char *p1 = call_body(&d, "POST", "/v1/models/p/predict", PRED, 200);
    ck_assert_int_eq(mbd_stop(&d), 0);
    /* Nothing but the snapshots: the first act of a fresh process. */
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    char *a1 = call_body(&d, "POST", "/v1/models/p/act", ACT, 200);
    ck_assert_int_eq(mbd_stop(&d), 0);
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    char *p2 = call_body(&d, "POST", "/v1/models/p/predict", PRED, 200);
    ck_assert_str_eq(p1, p2);
    char *a2 = call_body(&d, "POST", "/v1/models/p/act", ACT, 200);
    /* Same action, return and version; plan_ms differs. */
    cJSON *j1 = cJSON_Parse(a1), *j2 = cJSON_Parse(a2);
    const char *keys[3] = {"action", "predicted_return", "version"};
    for (int k = 0; k < 3; k++) {
        char *x = cJSON_PrintUnformatted(cJSON_GetObjectItem(j1, keys[k]));
        char *y = cJSON_PrintUnformatted(cJSON_GetObjectItem(j2, keys[k]));
        ck_assert_msg(x && y && !strcmp(x, y), "%s differs after restart: %s vs %s", keys[k], x, y);
        free(x), free(y);
    }
    cJSON_Delete(j1), cJSON_Delete(j2);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/p", NULL), 200);
    ck_assert_int_eq(mbr_num(&r, "buffer_size"), 200);
    ck_assert_int_eq(mbr_num(&r, "version"), 1);
    cJSON *ps = cJSON_GetObjectItem(r.json, "persistence");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(ps, "durable")));
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(ps, "recovered")));
    mbr_free(&r);
    /* On request. */
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/p/snapshot", "{}"), 201);
    ck_assert_int_eq(mbr_num(&r, "rows"), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/p/snapshot", "{\"x\": 1}"), 400);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/nope/snapshot", "{}"), 404);
    mbr_free(&r);
    /* Deleted models stay deleted. */
    ck_assert_int_eq(mbd_create_small(&d, "gone", NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &d, "DELETE", "/v1/models/gone", NULL) / 100, 2);
    mbr_free(&r);
    dur_kill9(&d);
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/gone", NULL), 404);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
    free(p1), free(p2), free(a1), free(a2);
}
END_TEST

START_TEST(test_export_import_between_daemons) {
    char da[300], db[300];
    snprintf(da, sizeof da, "%s/a", root);
    snprintf(db, sizeof db, "%s/b", root);
    mbd a, b;
    ck_assert_int_eq(dur_start(&a, da, NULL, NULL), 0);
    ck_assert_int_eq(mbd_create_small(&a, "src", NULL), 201);
    post_and_train(&a, "src");
    char *p1 = call_body(&a, "POST", "/v1/models/src/predict", PRED, 200);
    mb_snapshot s;
    void *file;
    size_t n;
    dur_export(&a, "src", &s, &file, &n);
    ck_assert_uint_eq(s.buf.size, 200);
    mb_snapshot_free(&s);
    ck_assert_int_eq(mbd_stop(&a), 0);

    ck_assert_int_eq(dur_start(&b, db, NULL, NULL), 0);
    mbr r;
    ck_assert_int_eq(dur_post_binary(&r, &b, "/v1/models/copy/import", file, n), 201);
    ck_assert_int_eq(mbr_num(&r, "buffer_size"), 200);
    ck_assert_int_eq(mbr_num(&r, "version"), 1);
    mbr_free(&r);
    char *p2 = call_body(&b, "POST", "/v1/models/copy/predict", PRED, 200);
    ck_assert_str_eq(p1, p2);
    dur_post_binary(&r, &b, "/v1/models/copy/import", file, n);
    MBR_EXPECT_ERROR(&r, 409, "already_exists", "name");
    mbr_free(&r);
    ((unsigned char *)file)[n / 2] ^= 0x40; /* a damaged file */
    dur_post_binary(&r, &b, "/v1/models/bad/import", file, n);
    MBR_EXPECT_ERROR(&r, 422, "corrupt", "");
    mbr_free(&r);
    dur_post_binary(&r, &b, "/v1/models/bad/import", "{\"x\": 1}", 8);
    MBR_EXPECT_ERROR(&r, 422, "corrupt", "");
    mbr_free(&r);
    /* The import survives a kill -9 (it was snapshotted before the answer). */
    dur_kill9(&b);
    ck_assert_int_eq(dur_start(&b, db, NULL, NULL), 0);
    char *p3 = call_body(&b, "POST", "/v1/models/copy/predict", PRED, 200);
    ck_assert_str_eq(p1, p3);
    ck_assert_int_eq(mbd_stop(&b), 0);
    free(file), free(p1), free(p2), free(p3);
}
END_TEST

/* ---- damaged logs ------------------------------------------------------- */

static void wal_segment(const char *data, const char *model, char *out, size_t out_sz) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/models/m-%s/wal", data, model);
    DIR *dd = opendir(dir);
    ck_assert_ptr_nonnull(dd);
    struct dirent *de;
    out[0] = 0;
    while ((de = readdir(dd)) != NULL)
        if (!strncmp(de->d_name, "wal-", 4) && strlen(de->d_name) == 28) snprintf(out, out_sz, "%s/%s", dir, de->d_name);
    closedir(dd);
    ck_assert_msg(out[0], "no segment in %s", dir);
}

static int log_contains(const mbd *d, const char *what) {
    FILE *f = fopen(d->log, "r");
    if (!f) return 0;
    char line[2048];
    int hit = 0;
    while (!hit && fgets(line, sizeof line, f)) hit = strstr(line, what) != NULL;
    fclose(f);
    return hit;
}

START_TEST(test_damaged_log_refuses_then_repairs) {
    char data[300], seg[600];
    snprintf(data, sizeof data, "%s/data", root);
    mbd d;
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    ck_assert_int_eq(mbd_create_small(&d, "lg", NULL), 201);
    for (int i = 0; i < 20; i++) ck_assert_int_eq(dur_post_one(&d, "lg", i, "c", i + 1) / 100, 2);
    dur_kill9(&d); /* no shutdown snapshot: the rows live only in the log */
    wal_segment(data, "lg", seg, sizeof seg);
    struct stat sb;
    ck_assert_int_eq(stat(seg, &sb), 0);
    /* Flip a byte in the middle of the file. */
    int fd = open(seg, O_RDWR);
    unsigned char c;
    off_t mid = sb.st_size / 2;
    ck_assert_int_eq(pread(fd, &c, 1, mid), 1);
    c ^= 0xFF;
    ck_assert_int_eq(pwrite(fd, &c, 1, mid), 1);
    close(fd);
    ck_assert_int_ne(dur_start(&d, data, NULL, NULL), 0); /* refuses to start */
    ck_assert_msg(log_contains(&d, "offset") && log_contains(&d, "--repair"), "the log says where");
    ck_assert_int_eq(dur_start(&d, data, "--repair", "1"), 0);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/lg", NULL), 200);
    double kept = mbr_num(&r, "buffer_size");
    ck_assert_msg(kept >= 1 && kept < 20, "repair kept %g rows", kept);
    cJSON *rec = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "persistence"), "recovered");
    ck_assert_double_gt(cJSON_GetObjectItem(rec, "repaired_bytes")->valuedouble, 0);
    mbr_free(&r);
    /* The kept rows are the first ones, in order. */
    mb_snapshot s;
    dur_export(&d, "lg", &s, NULL, NULL);
    for (size_t i = 0; i < s.buf.size; i++) ck_assert(s.buf.obs[mb_buffer_slot(&s.buf, i) * 3] == (float)i);
    mb_snapshot_free(&s);
    ck_assert_int_eq(dur_post_one(&d, "lg", 100, "c", 100) / 100, 2);
    dur_kill9(&d);

    /* A torn tail: half a record at the end is cut with a warning. */
    wal_segment(data, "lg", seg, sizeof seg);
    ck_assert_int_eq(stat(seg, &sb), 0);
    ck_assert_int_eq(truncate(seg, sb.st_size - 7), 0);
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/lg", NULL), 200);
    ck_assert_double_eq(mbr_num(&r, "buffer_size"), kept); /* the cut record was the last post */
    rec = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "persistence"), "recovered");
    ck_assert_double_gt(cJSON_GetObjectItem(rec, "torn_bytes_cut")->valuedouble, 0);
    ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(rec, "warning")->valuestring, "torn"));
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* ---- disk errors -------------------------------------------------------- */

static void fault_ctl(const char *ctl, const char *dir, const char *spec) {
    FILE *f = fopen(ctl, "w");
    ck_assert_ptr_nonnull(f);
    if (spec[0]) fprintf(f, "dir=%s\n%s\n", dir, spec);
    fclose(f);
}

/* Starts a daemon on root/data with faultfs.so preloaded, controlled
 * through ctl (no faults at first). 0, or 1 when the shim is not built. */
static int dur_start_faulty(mbd *d, char *ctl, size_t ctl_sz, char *data, size_t data_sz) {
    const char *b = getenv("MBRLD_BUILD") ? getenv("MBRLD_BUILD") : "build";
    char shim[800];
    snprintf(shim, sizeof shim, "%s/tests/fault/faultfs.so", b);
    if (access(shim, R_OK) != 0) {
        printf("skipped: %s not built (make %s)\n", shim, shim);
        return 1;
    }
    if (shim[0] != '/') { /* the daemon's LD_PRELOAD needs no cwd games */
        char cwd[256];
        ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
        char tmp[700];
        snprintf(tmp, sizeof tmp, "%s/%.400s", cwd, shim);
        snprintf(shim, sizeof shim, "%s", tmp);
    }
    snprintf(ctl, ctl_sz, "%s/faultctl", root);
    snprintf(data, data_sz, "%s/data", root);
    fault_ctl(ctl, data, "");
    setenv("LD_PRELOAD", shim, 1);
    setenv("MBRLD_FAULT_CTL", ctl, 1);
    const char *ao = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", ao ? ao : "", ao && *ao ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    int started = dur_start(d, data, NULL, NULL);
    unsetenv("LD_PRELOAD"); /* only the daemon gets the shim */
    ck_assert_int_eq(started, 0);
    return 0;
}

static void dur_wait_ready(const mbd *d, const char *why) {
    mbr r;
    int ready = 0;
    for (int i = 0; i < 100 && !ready; i++) { /* the store resumes within ~1 s */
        ready = mbr_call(&r, d, "GET", "/readyz", NULL) == 200;
        mbr_free(&r);
        if (!ready) mbd_sleep_ms(50);
    }
    ck_assert_msg(ready, "not ready again after the fault (%s)", why);
}

START_TEST(test_disk_errors_503_then_resume) {
    char ctl[300], data[300];
    mbd d;
    if (dur_start_faulty(&d, ctl, sizeof ctl, data, sizeof data)) return;
    ck_assert_int_eq(mbd_create_small(&d, "df", NULL), 201);
    int id = 0;
    for (; id < 5; id++) ck_assert_int_eq(dur_post_one(&d, "df", id, "c", id + 1) / 100, 2);
    const char *faults[2] = {"fsync=EIO", "write=ENOSPC"};
    for (int k = 0; k < 2; k++) {
        fault_ctl(ctl, data, faults[k]);
        mbr r;
        char body[256];
        snprintf(body, sizeof body, "{\"transitions\": [{\"obs\": [%d, 0, 0], \"action\": [0], \"reward\": 0, "
                 "\"next_obs\": [0, 0, 0]}], \"client\": \"c\", \"seq\": %d}", 1000 + k, 1000 + 100 * k);
        mbr_do(&r, &d, "POST", "/v1/models/df/transitions", body, 0, NULL);
        MBR_EXPECT_ERROR(&r, 503, "io_error", "");
        ck_assert_msg(strstr(r.headers, "Retry-After"), "503 without Retry-After: %s", r.headers);
        mbr_free(&r);
        ck_assert_int_eq(mbr_call(&r, &d, "GET", "/readyz", NULL), 503);
        mbr_free(&r);
        ck_assert_int_eq(dur_post_one(&d, "df", 2000 + k, "c2", 1), 503); /* refused while failed */
        fault_ctl(ctl, data, "");
        dur_wait_ready(&d, faults[k]);
        for (int i = 0; i < 3; i++, id++) ck_assert_int_eq(dur_post_one(&d, "df", id, "c", 1001 + 100 * k + i) / 100, 2);
    }
    dur_kill9(&d);
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    mb_snapshot s;
    dur_export(&d, "df", &s, NULL, NULL);
    /* Every acknowledged row (ids 0..id-1) is there, once. */
    int *seen = calloc(3000, sizeof *seen);
    for (size_t i = 0; i < s.buf.size; i++) {
        int v = (int)s.buf.obs[mb_buffer_slot(&s.buf, i) * 3];
        ck_assert(v >= 0 && v < 3000);
        seen[v]++;
    }
    for (int i = 0; i < id; i++) ck_assert_msg(seen[i] == 1, "row %d seen %d times", i, seen[i]);
    for (int i = 0; i < 3000; i++) ck_assert_int_le(seen[i], 1);
    free(seen);
    mb_snapshot_free(&s);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* The same client+seq posted again while fsync fails is not acknowledged
 * either: a 2xx, first or replayed, means the rows are durable. Once the
 * disk works, the retry answers 201 (a replay) and the rows are there once. */
START_TEST(test_same_seq_retry_under_failing_fsync) {
    char ctl[300], data[300];
    mbd d;
    if (dur_start_faulty(&d, ctl, sizeof ctl, data, sizeof data)) return;
    ck_assert_int_eq(mbd_create_small(&d, "rt", NULL), 201);
    ck_assert_int_eq(dur_post_one(&d, "rt", 1, "c1", 1), 201);
    fault_ctl(ctl, data, "fsync=EIO");
    ck_assert_int_eq(dur_post_one(&d, "rt", 2, "c1", 2), 503);
    for (int i = 0; i < 3; i++) /* the client's identical retries */
        ck_assert_int_eq(dur_post_one(&d, "rt", 2, "c1", 2), 503);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/readyz", NULL), 503);
    mbr_free(&r);
    fault_ctl(ctl, data, "");
    dur_wait_ready(&d, "fsync=EIO");
    long st = mbr_call(&r, &d, "POST", "/v1/models/rt/transitions",
                       "{\"transitions\": [{\"obs\": [2.0, 0, 0], \"action\": [0.5], \"reward\": 1, "
                       "\"next_obs\": [2.0, 0.1, 0], \"terminated\": false}], \"client\": \"c1\", \"seq\": 2}");
    ck_assert_int_eq(st, 201);
    ck_assert_msg(strstr(r.headers, "X-Idempotent-Replay"), "not a replay: %s", r.headers);
    mbr_free(&r);
    dur_kill9(&d);
    ck_assert_int_eq(dur_start(&d, data, NULL, NULL), 0);
    mb_snapshot s;
    dur_export(&d, "rt", &s, NULL, NULL);
    ck_assert_uint_eq(s.buf.size, 2);
    int seen[3] = {0};
    for (size_t i = 0; i < s.buf.size; i++) {
        int v = (int)s.buf.obs[mb_buffer_slot(&s.buf, i) * 3];
        ck_assert(v >= 1 && v <= 2);
        seen[v]++;
    }
    ck_assert_int_eq(seen[1], 1);
    ck_assert_int_eq(seen[2], 1);
    mb_snapshot_free(&s);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Disk work of one model (its DELETE record's fsync, the removal of its
 * files; a CREATE) is done outside the registry lock: while a model on a slow
 * disk is being deleted, another model is read, created and posted to. */
typedef struct {
    const mbd *d;
    atomic_int done;
    long status;
} slow_del;

static void *slow_del_main(void *p) {
    slow_del *a = p;
    mbr r;
    a->status = mbr_call(&r, a->d, "DELETE", "/v1/models/slow", NULL);
    mbr_free(&r);
    atomic_store(&a->done, 1);
    return NULL;
}

START_TEST(test_slow_disk_does_not_hold_other_models) {
    char ctl[300], data[300];
    mbd d;
    if (dur_start_faulty(&d, ctl, sizeof ctl, data, sizeof data)) return;
    ck_assert_int_eq(mbd_create_small(&d, "slow", NULL), 201);
    ck_assert_int_eq(mbd_create_small(&d, "fast", NULL), 201);
    char slow_dir[400];
    snprintf(slow_dir, sizeof slow_dir, "%s/models/m-slow", data);
    fault_ctl(ctl, slow_dir, "fsync_delay_ms=3000");
    slow_del a = {&d, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, slow_del_main, &a), 0);
    mbd_sleep_ms(300); /* the delete is in its fsync now */
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/fast", NULL), 200);
    mbr_free(&r);
    ck_assert_int_eq(dur_post_one(&d, "fast", 1, "c", 1), 201);
    ck_assert_int_eq(mbd_create_small(&d, "other", NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models", NULL), 200);
    mbr_free(&r);
    ck_assert_msg(!atomic_load(&a.done), "the slow delete ended before the other requests: no overlap to test");
    pthread_join(th, NULL);
    ck_assert_int_eq(a.status, 200);
    fault_ctl(ctl, data, "");
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/slow", NULL), 404);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("durability");
    TCase *tc = tcase_create("durability");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_kill9_loop);
    tcase_add_test(tc, test_restart_same_predictions_and_plans);
    tcase_add_test(tc, test_export_import_between_daemons);
    tcase_add_test(tc, test_damaged_log_refuses_then_repairs);
    tcase_add_test(tc, test_disk_errors_503_then_resume);
    tcase_add_test(tc, test_same_seq_retry_under_failing_fsync);
    tcase_add_test(tc, test_slow_disk_does_not_hold_other_models);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
