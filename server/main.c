/* main.c: build/mbrld. Reads the configuration (options.c), starts the
 * daemon (app.c) and waits for SIGTERM/SIGINT, then shuts down in order:
 * stop accepting, cancel and join training jobs, let in-flight requests
 * finish, exit 0.
 * Not for: anything a test needs to call (that lives in libmbserver.a). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "base/cpu.h"
#include "base/pool.h"
#include "log.h"

int main(int argc, char **argv) {
    /* The signals are taken synchronously by this thread (sigwait) and by no
     * other: blocked before any thread of ours starts, so every thread
     * inherits the mask; OpenBLAS's threads, started before main with
     * nothing blocked, are stopped (a SIGTERM delivered to one would end the
     * process with no drain). A second SIGTERM during the drain stays
     * pending: the shutdown finishes. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    mb_pool_blas_single_thread();

    char err[512];
    srv_config cfg;
    int rc = srv_config_load(&cfg, argc, argv, stdout, err, sizeof err);
    if (rc == 1) return 0;
    if (rc != 0) {
        fprintf(stderr, "mbrld: %s\n", err);
        return 2;
    }
    /* Which kernels this process runs (chosen at run time, base/cpu.h). */
    srv_log(SRV_LOG_INFO, "kernels", "isa=%s cpu_max=%s bf16=%d", mb_isa_name(mb_cpu_isa()),
            mb_isa_name(mb_cpu_isa_max()), mb_cpu_has_bf16());
    if (mb_cpu_isa_env_note()) srv_log(SRV_LOG_WARN, "kernels", "note=\"%s\"", mb_cpu_isa_env_note());
    static srv_app app;
    if (app_init(&app, &cfg, err, sizeof err) != 0 || app_start(&app, err, sizeof err) != 0) {
        srv_log(SRV_LOG_ERROR, "cannot start", "error=\"%s\"", err);
        app_free(&app);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    srv_log(SRV_LOG_INFO, "signal received", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    app_shutdown(&app);
    app_free(&app);
    return 0;
}
