/* test_slow_clients.c: slow and greedy clients, black-box against a real
 * mbrld: the per-address connection limit (--max-connections-per-ip), the
 * whole-request deadline (--request-timeout: headers and body must arrive in
 * time however slowly bytes trickle in; --conn-timeout only counts idle
 * time), and a slow-headers flood from one loopback address (1,500
 * connections, more than --max-connections) while a client from another
 * loopback address (127.0.0.2) is served.
 * Mirrors server/http.c (and its options in server/options.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "check_util.h"
#include "harness.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A TCP connection from `src` (e.g. "127.0.0.1") to the daemon; blocking
 * unless nonblock (then the connect may still be in progress). */
static int conn_from(const mbd *d, const char *src, int nonblock) {
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    inet_pton(AF_INET, src, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    a.sin_port = htons((uint16_t)d->port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 once the peer closed fd (EOF or reset) within ms, else 0. */
static int closed_within(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0) return 0;
    char b[256];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n <= 0;
}

/* GET /healthz from 127.0.0.2 with curl; the status (0: no answer in 10 s). */
static long healthz_from_other(const mbd *d) {
    CURL *c = curl_easy_init();
    char url[96];
    snprintf(url, sizeof url, "%s/healthz", d->url);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_INTERFACE, "host!127.0.0.2");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    long st = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    curl_easy_cleanup(c);
    fclose(sink);
    return st;
}

static void raise_fd_limit(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 4096 && rl.rlim_max >= 4096) rl.rlim_cur = 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
}

START_TEST(test_per_ip_limit) {
    mbd d;
    const char *args[] = {"--max-connections-per-ip", "4", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    int fds[10], closed = 0;
    for (int i = 0; i < 10; i++) {
        fds[i] = conn_from(&d, "127.0.0.1", 0);
        ck_assert_int_ge(fds[i], 0);
        mbd_sleep_ms(20);
    }
    for (int i = 0; i < 10; i++) closed += closed_within(fds[i], i < 4 ? 200 : 3000);
    ck_assert_msg(closed == 6, "%d of 10 connections from one address were closed, want 6 (limit 4)", closed);
    ck_assert_int_eq(healthz_from_other(&d), 200); /* another address is not limited */
    for (int i = 0; i < 10; i++) close(fds[i]);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* A byte every 250 ms keeps MHD's idle timeout from ever firing: the
 * request deadline ends it, headers or body. */
START_TEST(test_request_deadline) {
    mbd d;
    const char *args[] = {"--request-timeout", "2", "--conn-timeout", "600", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    static const char *const heads[] = {
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "POST /v1/models HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        "{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (int k = 0; k < 2; k++) {
        int fd = conn_from(&d, "127.0.0.1", 0);
        ck_assert_int_ge(fd, 0);
        const char *h = heads[k];
        size_t hl = strlen(h), first = k == 0 ? 40 : hl - 80, sent = 0;
        ck_assert_int_eq(send(fd, h, first, MSG_NOSIGNAL), (ssize_t)first);
        sent = first;
        double t0 = now_s();
        int closed = 0;
        while (!closed && now_s() - t0 < 30 && sent < hl) {
            if (send(fd, h + sent, 1, MSG_NOSIGNAL) != 1) closed = 1;
            sent++;
            if (!closed) closed = closed_within(fd, 250);
        }
        double dt = now_s() - t0;
        ck_assert_msg(closed, "%s trickling in for %.1f s was not closed (request timeout 2 s)",
                      k ? "a body" : "headers", dt);
        printf("%s trickling in: closed after %.2f s (--request-timeout 2)\n", k ? "body" : "headers", dt);
        close(fd);
    }
    /* keep-alive: the deadline restarts with each request, and the answer
     * of a complete request is not cut */
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/healthz", NULL), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

typedef struct {
    const mbd *d;
    int n;                /* connections to hold */
    atomic_int stop;
    atomic_long opened, reopened;
} flood;

/* slowhttptest -H style: n connections from 127.0.0.1, each sending a
 * partial request and one more header line every 500 ms; a connection the
 * daemon closes is opened again. */
static void *flood_main(void *arg) {
    flood *f = arg;
    int *fds = calloc((size_t)f->n, sizeof *fds);
    char *started = calloc((size_t)f->n, 1); /* the request line went out */
    for (int i = 0; i < f->n; i++) fds[i] = -1;
    double next_tick = 0;
    while (!atomic_load(&f->stop)) {
        double t = now_s();
        int tick = t >= next_tick;
        if (tick) next_tick = t + 0.5;
        for (int i = 0; i < f->n; i++) {
            if (fds[i] < 0) {
                if (!tick && atomic_load(&f->opened) >= f->n) continue; /* reopen on the next tick */
                fds[i] = conn_from(f->d, "127.0.0.1", 1);
                started[i] = 0;
                if (fds[i] >= 0) atomic_fetch_add(&f->opened, 1);
                continue;
            }
            char b[64];
            ssize_t n = recv(fds[i], b, sizeof b, MSG_DONTWAIT);
            int dead = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN);
            if (!dead && tick) {
                static const char start[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
                static const char more[] = "X-Slow: 1\r\n";
                const char *what = started[i] ? more : start;
                ssize_t w = send(fds[i], what, strlen(what), MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) started[i] = 1;
                else if (w < 0 && errno != EAGAIN && errno != ENOTCONN) dead = 1;
            }
            if (dead) {
                close(fds[i]);
                fds[i] = -1;
                atomic_fetch_add(&f->reopened, 1);
            }
        }
        mbd_sleep_ms(20);
    }
    for (int i = 0; i < f->n; i++)
        if (fds[i] >= 0) close(fds[i]);
    free(fds);
    free(started);
    return NULL;
}

START_TEST(test_slow_header_flood_from_one_address) {
    raise_fd_limit();
    mbd d;
    /* the defaults: --max-connections 1024, --max-connections-per-ip 128 */
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    flood f = {.d = &d, .n = 1500};
    double flood_t0 = now_s();
    pthread_t th;
    pthread_create(&th, NULL, flood_main, &f);
    mbd_sleep_ms(2000); /* the flood is in place */
    int ok = 0, tries = 10;
    double worst = 0;
    for (int i = 0; i < tries; i++) {
        double t0 = now_s();
        long st = healthz_from_other(&d);
        double dt = now_s() - t0;
        if (dt > worst) worst = dt;
        ok += st == 200;
        mbd_sleep_ms(200);
    }
    atomic_store(&f.stop, 1);
    pthread_join(th, NULL);
    printf("slow-header flood: %ld connections opened from 127.0.0.1 (%ld closed by the daemon); "
           "127.0.0.2 served %d of %d, slowest %.3f s\n",
           atomic_load(&f.opened), atomic_load(&f.reopened), ok, tries, worst);
    ck_assert_msg(ok == tries, "127.0.0.2 was served %d of %d times during the flood", ok, tries);
    ck_assert_int_ge(atomic_load(&f.opened), 1500);
    /* every refused connection is a libmicrohttpd message: at most 5 a
     * second reach the log (before: one line each, thousands) */
    FILE *lf = fopen(d.log, "r");
    ck_assert_ptr_nonnull(lf);
    char line[1024];
    int mhd_lines = 0;
    while (fgets(line, sizeof line, lf))
        if (strstr(line, "source=libmicrohttpd")) mhd_lines++;
    fclose(lf);
    double secs = now_s() - flood_t0;
    printf("libmicrohttpd log lines during %.1f s of flood: %d\n", secs, mhd_lines);
    ck_assert_msg(mhd_lines <= 5 * ((int)secs + 2), "%d libmicrohttpd lines in %.1f s", mhd_lines, secs);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("slow_clients");
    TCase *tc = tcase_create("slow");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_per_ip_limit);
    tcase_add_test(tc, test_request_deadline);
    tcase_add_test(tc, test_slow_header_flood_from_one_address);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
