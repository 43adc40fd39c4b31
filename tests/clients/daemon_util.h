/* daemon_util.h: start and stop a real mbrld for the client suites.
 *
 * The daemon is $MBRLD_BIN (tests/run.sh sets it to BUILD/mbrld), else
 * build/mbrld. It listens on loopback: port 0 lets it pick a free port and
 * report it through --port-file; a restart passes the port it had before.
 * Not for: anything but tests (it may leave a temp dir if a test crashes). */
#ifndef MB_TEST_DAEMON_UTIL_H
#define MB_TEST_DAEMON_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int port;
    char url[64];
    char dir[256];   /* data dir (and the log, port file) */
} test_daemon;

static inline const char *test_daemon_bin(void) {
    const char *b = getenv("MBRLD_BIN");
    return b && *b ? b : "build/mbrld";
}

static inline int test_daemon_exists(void) { return access(test_daemon_bin(), X_OK) == 0; }

static inline void test_daemon_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* Starts mbrld on d->dir (made when empty) and port (0: any free port).
 * Returns 0 once the port is known (the caller still waits for /healthz),
 * -1 with a reason on stderr. extra: more arguments or NULL. */
static inline int test_daemon_start(test_daemon *d, int port, const char *const *extra) {
    if (!d->dir[0]) {
        snprintf(d->dir, sizeof d->dir, "%s/mbrl-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(d->dir)) {
            perror("mkdtemp");
            return -1;
        }
    }
    char listen[64], port_file[320], log[320], data[320];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(port_file, sizeof port_file, "%s/port", d->dir);
    snprintf(log, sizeof log, "%s/mbrld.log", d->dir);
    snprintf(data, sizeof data, "%s/data", d->dir);
    unlink(port_file);
    const char *argv[32] = {test_daemon_bin(), "--listen", listen, "--data-dir", data,
                            "--port-file", port_file, "--log-level", "warn"};
    int argc = 9;
    for (int i = 0; extra && extra[i] && argc < 30; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
    for (int i = 0; i < 600; i++) { /* up to 30 s (sanitizer builds start slowly) */
        FILE *f = fopen(port_file, "r");
        int p = 0;
        if (f) {
            if (fscanf(f, "%d", &p) != 1) p = 0;
            fclose(f);
        }
        if (p > 0) {
            d->port = p;
            snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", p);
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "mbrld exited at start (status %d); log: %s\n", st, log);
            d->pid = 0;
            return -1;
        }
        test_daemon_sleep_ms(50);
    }
    fprintf(stderr, "mbrld wrote no port file in 30 s; log: %s\n", log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    d->pid = 0;
    return -1;
}

/* Sends sig (SIGTERM: clean stop; SIGKILL: crash) and reaps the daemon.
 * Returns its exit status (or 128 + signal). */
static inline int test_daemon_stop(test_daemon *d, int sig) {
    if (d->pid <= 0) return -1;
    kill(d->pid, sig);
    int st = 0;
    for (int i = 0; i < 600; i++) { /* 30 s, then force */
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) break;
        if (i == 599) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &st, 0);
        }
        test_daemon_sleep_ms(50);
    }
    d->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Removes the daemon's directory (data, log). */
static inline void test_daemon_cleanup(test_daemon *d) {
    if (!d->dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d->dir);
    d->dir[0] = '\0';
}

#endif
