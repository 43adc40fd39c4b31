/* test_http_stop.c: stopping the HTTP daemon while connections come and go
 * at the connection limit, in process (libmbserver.a: app_start and
 * app_shutdown, the same calls main.c makes on SIGTERM).
 *
 * libmicrohttpd 0.9.75 aborts the process ("Failed to remove listen FD from
 * epoll set", daemon.c) when MHD_quiesce_daemon races a pool worker that is
 * adding or removing the listen socket from its epoll set (it does so each
 * time it reaches or leaves its share of the connection limit). The drain
 * must never quiesce an epoll daemon; new connections during the drain are
 * closed by the accept policy instead. Many start/stop cycles with clients
 * churning at the limit, each ending in an orderly stop.
 * Mirrors server/http.c, server/app.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app.h"
#include "check_util.h"
#include "log.h"

typedef struct {
    int port;
    atomic_int stop;
    atomic_long served; /* answers read */
    unsigned seed;
} churn;

/* Connects, sends a request (whole, or only part of its headers so the
 * connection stays open), reads what comes within a few ms, closes. */
static void *churn_main(void *arg) {
    churn *c = arg;
    unsigned s = c->seed;
    while (!atomic_load(&c->stop)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) continue;
        struct sockaddr_in a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)c->port);
        a.sin_addr.s_addr = htonl(0x7f000001);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            s = s * 1103515245u + 12345u;
            static const char full[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
            static const char part[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
            const char *req = (s >> 16) % 3 ? part : full;
            ssize_t w = send(fd, req, strlen(req), MSG_NOSIGNAL);
            (void)w;
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, (int)((s >> 8) % 8)) > 0) {
                char buf[512];
                if (recv(fd, buf, sizeof buf, 0) > 0) atomic_fetch_add(&c->served, 1);
            }
        }
        close(fd);
        struct timespec ts = {0, 200 * 1000}; /* a closed connection is not a busy loop */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

START_TEST(test_stop_at_connection_limit_never_aborts) {
    srv_log_set_level(SRV_LOG_ERROR);
    int cycles = getenv("MBRLD_SANITIZER") ? 150 : 400;
    long served = 0;
    for (int cyc = 0; cyc < cycles; cyc++) {
        srv_config cfg;
        srv_config_default(&cfg);
        char err[512];
        ck_assert_int_eq(srv_config_set(&cfg, "listen", "127.0.0.1:0", err, sizeof err), 0);
        ck_assert_int_eq(srv_config_set(&cfg, "data-dir", "", err, sizeof err), 0);
        ck_assert_int_eq(srv_config_set(&cfg, "log-level", "error", err, sizeof err), 0);
        ck_assert_int_eq(srv_config_set(&cfg, "threads", "4", err, sizeof err), 0);
        /* 2 connections per worker: workers reach their limit all the time */
        ck_assert_int_eq(srv_config_set(&cfg, "max-connections", "8", err, sizeof err), 0);
        ck_assert_int_eq(srv_config_set(&cfg, "shutdown-timeout", "0", err, sizeof err), 0);
        static srv_app app;
        ck_assert_msg(app_init(&app, &cfg, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(app_start(&app, err, sizeof err) == 0, "%s", err);
        churn c = {.port = app.port, .seed = (unsigned)cyc};
        pthread_t th[6];
        for (int i = 0; i < 6; i++) pthread_create(&th[i], NULL, churn_main, &c);
        struct timespec ts = {0, (long)(2 + cyc % 7) * 1000000L};
        nanosleep(&ts, NULL);
        app_shutdown(&app); /* with the clients still connecting */
        atomic_store(&c.stop, 1);
        for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
        app_free(&app);
        served += atomic_load(&c.served);
    }
    ck_assert_msg(served > 0, "no request was answered in %d cycles", cycles);
}
END_TEST

/* During the drain a new connection is closed at once (not left in the
 * backlog until the timeout), and the listen socket is closed exactly once:
 * after the stop the port refuses. */
START_TEST(test_drain_refuses_new_connections) {
    srv_log_set_level(SRV_LOG_ERROR);
    srv_config cfg;
    srv_config_default(&cfg);
    char err[512];
    ck_assert_int_eq(srv_config_set(&cfg, "listen", "127.0.0.1:0", err, sizeof err), 0);
    ck_assert_int_eq(srv_config_set(&cfg, "data-dir", "", err, sizeof err), 0);
    ck_assert_int_eq(srv_config_set(&cfg, "log-level", "error", err, sizeof err), 0);
    ck_assert_int_eq(srv_config_set(&cfg, "threads", "2", err, sizeof err), 0);
    static srv_app app;
    ck_assert_msg(app_init(&app, &cfg, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(app_start(&app, err, sizeof err) == 0, "%s", err);
    int port = app.port, lfd = app.listen_fd;
    atomic_store(&app.shutting_down, 1); /* what app_shutdown sets first */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(0x7f000001);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, 10000), 1);
    char buf[64];
    ck_assert_int_le(recv(fd, buf, sizeof buf, 0), 0); /* closed, no answer */
    close(fd);
    app_shutdown(&app);
    app_free(&app);
    ck_assert_int_eq(app.listen_fd, -1);
    ck_assert_int_eq(fcntl(lfd, F_GETFD), -1); /* MHD closed it, nobody else did */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ne(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
}
END_TEST

int main(void) {
    Suite *s = suite_create("http_stop");
    TCase *tc = tcase_create("stop");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_stop_at_connection_limit_never_aborts);
    tcase_add_test(tc, test_drain_refuses_new_connections);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
