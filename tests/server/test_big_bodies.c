/* test_big_bodies.c: what a large body costs the daemon, black-box against
 * a real mbrld:
 * - 4 concurrent 8 MiB transition posts grow its peak RSS (VmHWM) by less
 *   than 160 MB (they are decoded from the text, transitions_json.h; as a
 *   cJSON tree each took ~250 MB);
 * - an export larger than 8 MiB (--max-body) imports back into the daemon
 *   that produced it (streamed to a temporary file, --max-import-mb), with
 *   the same buffer and predictions; chunked too; over --max-import-mb ->
 *   413; a broken file -> 422; no temporary file is left behind.
 * Mirrors server/http.c (uploads), server/api_data.c, server/api_persist.c. */
#include <dirent.h>
#include <pthread.h>

#include "check_util.h"
#include "harness.h"

static long vm_kb(pid_t pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') v = strtol(line + kl + 1, NULL, 10);
    fclose(f);
    return v;
}

/* A transitions body of about `bytes` for obs_dim od, act_dim 1, as dense
 * as JSON allows (every number one digit). */
static char *dense_rows(int od, size_t bytes, int *rows) {
    char *b = malloc(bytes + 4096);
    size_t len = (size_t)sprintf(b, "{\"transitions\":[");
    int n = 0;
    while (len + 64 + 4 * (size_t)od < bytes) {
        len += (size_t)sprintf(b + len, "%s{\"obs\":[", n ? "," : "");
        for (int k = 0; k < od; k++) b[len++] = (char)('0' + (n + k) % 10), b[len++] = ',';
        len--;
        len += (size_t)sprintf(b + len, "],\"action\":[%d],\"reward\":%d,\"next_obs\":[", n % 2, n % 7);
        for (int k = 0; k < od; k++) b[len++] = (char)('0' + (n + 2 * k) % 10), b[len++] = ',';
        len--;
        len += (size_t)sprintf(b + len, "]}");
        n++;
    }
    len += (size_t)sprintf(b + len, "]}");
    *rows = n;
    return b;
}

typedef struct {
    const mbd *d;
    const char *body;
    long status;
} post_job;

static void *post_main(void *arg) {
    post_job *j = arg;
    mbr r;
    mbr_do(&r, j->d, "POST", "/v1/models/wide/transitions", j->body, 0, NULL);
    j->status = r.status;
    mbr_free(&r);
    return NULL;
}

START_TEST(test_concurrent_8mib_transition_posts) {
    mbd d;
    const char *args[] = {"--fsync", "no", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models",
                              "{\"name\": \"wide\", \"obs_dim\": 32, \"act_dim\": 1, \"act_low\": [-1], "
                              "\"act_high\": [1], \"ensemble\": {\"members\": 2, \"hidden\": [8]}, "
                              "\"buffer\": {\"capacity\": 400000}}"),
                     201);
    mbr_free(&r);
    int rows;
    /* Under the sanitizers: 1 MiB bodies (TSan decodes 8 MiB ones slower
     * than curl waits) and no RSS bound (shadow memory) */
    size_t bytes = mb_test_sanitized() ? 1u << 20 : 8u << 20;
    char *body = dense_rows(32, bytes, &rows);
    ck_assert_uint_le(strlen(body), bytes);
    /* one post first: the buffer and the log are allocated and touched */
    post_job j0 = {&d, body, 0};
    post_main(&j0);
    ck_assert_int_eq(j0.status, 201);
    long hwm0 = vm_kb(d.pid, "VmHWM");
    post_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (post_job){&d, body, 0};
        pthread_create(&th[i], NULL, post_main, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(jobs[i].status, 201);
    long hwm1 = vm_kb(d.pid, "VmHWM");
    printf("4 concurrent posts of %zu bytes (%d rows of obs_dim 32 each): peak RSS %ld -> %ld MB (+%ld MB)\n",
           strlen(body), rows, hwm0 / 1024, hwm1 / 1024, (hwm1 - hwm0) / 1024);
    if (!mb_test_sanitized())
        ck_assert_msg(hwm1 - hwm0 < 160 * 1024, "peak RSS grew by %ld MB (limit 160)", (hwm1 - hwm0) / 1024);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/wide", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 5 * rows);
    mbr_free(&r);
    free(body);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

static size_t collect(char *p, size_t sz, size_t n, void *ud) {
    mbr *r = ud;
    return mbr__write(p, sz, n, r);
}

/* GET into memory (binary). */
static size_t get_binary(const mbd *d, const char *path, char **out) {
    mbr r;
    memset(&r, 0, sizeof r);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", d->url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long st;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    ck_assert_int_eq(st, 200);
    *out = r.body;
    return r.len;
}

typedef struct {
    const char *data;
    size_t len, off;
} bin_src;

static size_t bin_read(char *buf, size_t sz, size_t n, void *ud) {
    bin_src *s = ud;
    size_t k = sz * n < 65536 ? sz * n : 65536;
    if (k > s->len - s->off) k = s->len - s->off;
    memcpy(buf, s->data + s->off, k);
    s->off += k;
    return k;
}

/* POST binary; chunked: Transfer-Encoding chunked instead of Content-Length. */
static long post_binary(mbr *r, const mbd *d, const char *path, const char *data, size_t n, int chunked) {
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", d->url, path);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    hl = curl_slist_append(hl, "Expect:");
    bin_src src = {data, n, 0};
    if (chunked) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "POST");
        curl_easy_setopt(c, CURLOPT_READFUNCTION, bin_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &src);
    } else {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
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

/* Files in dir whose names start with a dot or hold "upload" (none should). */
static int stray_files(const char *dir) {
    DIR *dd = opendir(dir);
    if (!dd) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)) != NULL)
        if (strstr(e->d_name, "upload")) n++;
    closedir(dd);
    return n;
}

#define PRED "{\"obs\": [0.5, 0.1, 0.2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], \"actions\": [[0.3], [-0.2]]}"

START_TEST(test_import_larger_than_max_body) {
    mbd d;
    /* under the sanitizers the same with --max-body 1 MiB and ~8x fewer rows */
    int san = mb_test_sanitized();
    size_t max_body = san ? 1u << 20 : 8u << 20;
    char mb[16];
    snprintf(mb, sizeof mb, "%zu", max_body);
    const char *args[] = {"--fsync", "no", "--max-import-mb", "64", "--max-body", mb, NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models",
                              "{\"name\": \"src\", \"obs_dim\": 16, \"act_dim\": 1, \"act_low\": [-1], "
                              "\"act_high\": [1], \"ensemble\": {\"members\": 2, \"hidden\": [8]}, "
                              "\"buffer\": {\"capacity\": 400000}}"),
                     201);
    mbr_free(&r);
    /* 16 obs + 16 next + 1 action + 1 reward floats + 2 flags = 138 B a row:
     * 70,000 rows make a 9.7 MB export, over the 8 MiB --max-body */
    int total = 0;
    while (total < (san ? 9000 : 70000)) {
        int rows;
        char *body = dense_rows(16, max_body * 3 / 4, &rows);
        ck_assert_int_eq(mbr_do(&r, &d, "POST", "/v1/models/src/transitions", body, 0, NULL), 0);
        ck_assert_int_eq(r.status, 201);
        mbr_free(&r);
        free(body);
        total += rows;
    }
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/src/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/src/predict", PRED), 200);
    char *p1 = strdup(r.body);
    mbr_free(&r);
    char *file;
    size_t n = get_binary(&d, "/v1/models/src/export", &file);
    printf("export of %d rows: %zu bytes (--max-body %zu)\n", total, n, max_body);
    ck_assert_uint_gt(n, max_body);
    for (int chunked = 0; chunked < 2; chunked++) {
        const char *name = chunked ? "/v1/models/copy2/import" : "/v1/models/copy/import";
        ck_assert_int_eq(post_binary(&r, &d, name, file, n, chunked), 201);
        ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), total);
        ck_assert_int_eq((int)mbr_num(&r, "bytes"), (int)n);
        mbr_free(&r);
        ck_assert_int_eq(mbr_call(&r, &d, "POST", chunked ? "/v1/models/copy2/predict" : "/v1/models/copy/predict",
                                  PRED),
                         200);
        ck_assert_str_eq(r.body, p1);
        mbr_free(&r);
    }
    /* damaged: 422, nothing created */
    file[n / 2] ^= 0x40;
    post_binary(&r, &d, "/v1/models/bad/import", file, n, 0);
    MBR_EXPECT_ERROR(&r, 422, "corrupt", "");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/bad", NULL), 404);
    mbr_free(&r);
    char data[300];
    snprintf(data, sizeof data, "%s/data", d.dir);
    ck_assert_int_eq(stray_files(data), 0);
    ck_assert_int_eq(mbd_stop(&d), 0);

    /* over --max-import-mb: 413, from Content-Length or while chunks arrive */
    const char *small[] = {"--max-import-mb", san ? "1" : "4", NULL}; /* below the export */
    ck_assert_int_eq(mbd_start(&d, small), 0);
    /* refused from Content-Length before reading: the daemon answers 413 and
     * closes, and curl may see the reset while it still sends */
    post_binary(&r, &d, "/v1/models/big/import", file, n, 0);
    ck_assert_msg(r.status == 413 || (r.status == 0 && r.curl != CURLE_OK), "import over the cap: %ld", r.status);
    mbr_free(&r);
    post_binary(&r, &d, "/v1/models/big/import", file, n, 1);
    ck_assert_msg(r.status == 413 || r.curl != CURLE_OK, "chunked import over the cap: %ld", r.status);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/healthz", NULL), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
    free(file);
    free(p1);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("big_bodies");
    TCase *tc = tcase_create("big");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_concurrent_8mib_transition_posts);
    tcase_add_test(tc, test_import_larger_than_max_body);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
