/* bench_durability.c: `mbrld-bench durability`: how many transitions per
 * second the write-ahead log acknowledges with 1 and 16 writer threads under
 * each fsync policy (always = group commit, everysec, no), with the
 * per-append latency and the records covered per fsync; and how long
 * recovery takes for a log of 1,000,000 transitions (scan + verify + decode
 * + replay into an mb_buffer), with the page cache dropped for the log first
 * (posix_fadvise DONTNEED, best effort) and again warm; and, when the
 * daemon binary is found (next to this one, or --mbrld PATH), the time from
 * starting mbrld on that log (a model directory with its create record) to
 * listening, i.e. to ready.
 * Each append is one transition (obs 18, act 6: the halfcheetah shapes), the
 * worst case for the log (a server batch of k rows costs about one append).
 * Human table first, then one JSON line per result.
 * Not for: assertions (tests never assert on time). */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "learn/buffer.h"
#include "base/fsutil.h"
#include "store/wal.h"

#define OBS 18
#define ACT 6
#define MAX_LAT 400000

typedef struct {
    mb_wal *w;
    double until;
    int batch;
    uint64_t appended;
    int failed;
    double *lat; /* (MAX_LAT) seconds per acknowledged append */
    size_t n_lat;
} writer;

static void *writer_main(void *p) {
    writer *a = p;
    float obs[64 * OBS], act[64 * ACT], rew[64], nxt[64 * OBS];
    for (int i = 0; i < 64 * OBS; i++) obs[i] = (float)i * 0.01f, nxt[i] = -(float)i * 0.01f;
    for (int i = 0; i < 64 * ACT; i++) act[i] = 0.1f;
    for (int i = 0; i < 64; i++) rew[i] = 1.0f;
    mb_wal_batch b = {.client = "bench", .n = (uint32_t)a->batch, .obs_dim = OBS, .act_dim = ACT,
                      .obs = obs, .act = act, .rew = rew, .next_obs = nxt};
    char err[256];
    while (1) {
        double t0 = bench_now();
        if (t0 >= a->until) break;
        b.client_seq = a->appended;
        if (mb_wal_append_batch(a->w, &b, NULL, err, sizeof err) != MB_OK) {
            fprintf(stderr, "append: %s\n", err);
            a->failed = 1;
            break;
        }
        double t1 = bench_now();
        if (a->n_lat < MAX_LAT) a->lat[a->n_lat++] = t1 - t0;
        a->appended++;
    }
    return NULL;
}

static int cmp_d(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

typedef struct {
    double tps, p50_ms, p99_ms, per_fsync;
} tput;

static int run_tput(const char *root, mb_wal_fsync pol, int threads, int batch, double seconds, tput *out) {
    char dir[1200], err[512];
    snprintf(dir, sizeof dir, "%s/tput-%s-%d", root, mb_wal_fsync_name(pol), threads);
    mb_fs_remove_tree(dir, err, sizeof err);
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.fsync = pol;
    mb_wal *w;
    if (mb_wal_open(&w, dir, &o, 0, NULL, NULL, NULL, err, sizeof err) != MB_OK) {
        fprintf(stderr, "durability: %s\n", err);
        return 1;
    }
    writer ws[16];
    pthread_t th[16];
    double t0 = bench_now();
    for (int t = 0; t < threads; t++) {
        ws[t] = (writer){w, t0 + seconds, batch, 0, 0, malloc(MAX_LAT * sizeof(double)), 0};
        pthread_create(&th[t], NULL, writer_main, &ws[t]);
    }
    uint64_t total = 0;
    size_t nl = 0;
    int failed = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        total += ws[t].appended;
        nl += ws[t].n_lat;
        failed |= ws[t].failed;
    }
    double dt = bench_now() - t0;
    double *all = malloc((nl ? nl : 1) * sizeof(double));
    size_t k = 0;
    for (int t = 0; t < threads; t++) {
        memcpy(all + k, ws[t].lat, ws[t].n_lat * sizeof(double));
        k += ws[t].n_lat;
        free(ws[t].lat);
    }
    qsort(all, nl, sizeof(double), cmp_d);
    mb_wal_stats st;
    mb_wal_get_stats(w, &st);
    mb_wal_close(w, err, sizeof err);
    mb_fs_remove_tree(dir, err, sizeof err);
    out->tps = (double)total * batch / dt;
    out->p50_ms = nl ? all[nl / 2] * 1e3 : 0;
    out->p99_ms = nl ? all[(size_t)(0.99 * (double)(nl - 1))] * 1e3 : 0;
    out->per_fsync = st.fsyncs ? (double)st.appends / (double)st.fsyncs : 0;
    free(all);
    return failed;
}

/* ---- recovery ----------------------------------------------------------- */

typedef struct {
    mb_buffer *buf;
    uint64_t rows;
} replay_ctx;

static mb_status replay_fn(void *ctx, const mb_wal_record *r, char *err, size_t err_sz) {
    replay_ctx *c = ctx;
    if (r->type != MB_WAL_REC_TRANSITIONS) return MB_OK;
    mb_wal_batch b;
    mb_status st = mb_wal_batch_decode(r, &b, err, err_sz);
    if (st != MB_OK) return st;
    if (b.obs_dim != c->buf->obs_dim || b.act_dim != c->buf->act_dim)
        return mb_fail(err, err_sz, MB_ECORRUPT, "dims differ");
    mb_buffer_append(c->buf, b.n, b.obs, b.act, b.rew, b.next_obs, b.terminated, b.truncated);
    c->rows += b.n;
    return MB_OK;
}

/* Drops the log's pages from the page cache (clean pages only; best effort). */
static int drop_cache(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int ok = 1;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "wal-", 4) != 0) continue;
        char p[1600];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0) { ok = 0; continue; }
        fdatasync(fd);
        if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) ok = 0;
        close(fd);
    }
    closedir(d);
    return ok;
}

typedef struct {
    double seconds, mb;
    uint64_t rows;
} recov;

static int run_recover(const char *dir, uint64_t n, recov *out) {
    char err[512];
    double t0 = bench_now();
    mb_buffer buf;
    if (mb_buffer_init(&buf, OBS, ACT, (size_t)n, 0.1f, 1, err, sizeof err) != MB_OK) {
        fprintf(stderr, "durability: %s\n", err);
        return 1;
    }
    replay_ctx c = {&buf, 0};
    mb_wal *w;
    mb_wal_report rep;
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    if (mb_wal_open(&w, dir, &o, 0, replay_fn, &c, &rep, err, sizeof err) != MB_OK) {
        fprintf(stderr, "durability: recovery: %s\n", err);
        mb_buffer_free(&buf);
        return 1;
    }
    out->seconds = bench_now() - t0;
    out->rows = c.rows;
    out->mb = (double)rep.bytes / 1e6;
    mb_wal_close(w, err, sizeof err);
    mb_buffer_free(&buf);
    return c.rows == n ? 0 : 1;
}

/* Starts `bin` on data_dir, returns seconds until it wrote its port file
 * (after recovery, once listening), then kills it (-1 on failure). */
static double time_daemon_ready(const char *bin, const char *data_dir, const char *root) {
    char port_file[1200], log[1200];
    snprintf(port_file, sizeof port_file, "%s/port", root);
    snprintf(log, sizeof log, "%s/mbrld.log", root);
    unlink(port_file);
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execl(bin, bin, "--listen", "127.0.0.1:0", "--port-file", port_file, "--data-dir", data_dir,
              "--snapshot-interval", "0", (char *)NULL);
        _exit(127);
    }
    double ready = -1;
    for (;;) {
        struct stat sb;
        if (stat(port_file, &sb) == 0 && sb.st_size > 0) {
            ready = bench_now() - t0;
            break;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "durability: mbrld exited during recovery (log: %s)\n", log);
            return -1;
        }
        if (bench_now() - t0 > 300) break;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL); /* no shutdown snapshot of the 1M rows */
    waitpid(pid, NULL, 0);
    /* Show what the daemon says it recovered, so the time means something. */
    FILE *f = fopen(log, "r");
    char line[1024];
    int found = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "model recovered")) {
            printf("  daemon: %s", line);
            found = 1;
        }
    if (f) fclose(f);
    return found ? ready : -1;
}

int bench_durability(int argc, char **argv) {
    double seconds = 2.0;
    uint64_t n_recover = 1000000;
    int batch = 1;
    const char *t = getenv("TMPDIR");
    const char *root_base = t && *t ? t : "/tmp";
    char mbrld[1024] = "";
    ssize_t nl = readlink("/proc/self/exe", mbrld, sizeof mbrld - 8);
    if (nl > 0) {
        mbrld[nl] = 0;
        char *slash = strrchr(mbrld, '/');
        if (slash) strcpy(slash + 1, "mbrld");
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("mbrld-bench durability [--seconds S] [--recover N] [--batch K] [--dir DIR] [--mbrld PATH]\n"
                   "  --seconds S   duration of each throughput point (default 2)\n"
                   "  --recover N   transitions in the recovery log (default 1000000)\n"
                   "  --batch K     transitions per append, 1..64 (default 1)\n"
                   "  --dir DIR     where the logs go (default $TMPDIR or /tmp; same disk as the data dir you care about)\n"
                   "  --mbrld PATH  daemon for the start-to-ready time (default: mbrld next to this binary)\n");
            return 0;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--recover") && i + 1 < argc) n_recover = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc) root_base = argv[++i];
        else if (!strcmp(argv[i], "--mbrld") && i + 1 < argc) snprintf(mbrld, sizeof mbrld, "%s", argv[++i]);
        else {
            fprintf(stderr, "durability: unknown option %s\n", argv[i]);
            return 1;
        }
    }
    if (batch < 1 || batch > 64 || seconds <= 0 || n_recover < 1) {
        fprintf(stderr, "durability: bad option value\n");
        return 1;
    }
    char root[1024], err[512];
    snprintf(root, sizeof root, "%s/mbrld-bench-durability-%d", root_base, (int)getpid());
    if (mb_fs_mkdir_p(root, 0755, err, sizeof err) != MB_OK) {
        fprintf(stderr, "durability: %s\n", err);
        return 1;
    }
    char json[16][512];
    int nj = 0, rc = 0;
    printf("write-ahead log, %d transition(s) per append (obs %d, act %d), %.1f s per point, in %s\n", batch, OBS,
           ACT, seconds, root_base);
    printf("%-9s %8s %16s %10s %10s %14s\n", "fsync", "writers", "transitions/s", "p50 ms", "p99 ms", "appends/fsync");
    const mb_wal_fsync pols[3] = {MB_WAL_FSYNC_ALWAYS, MB_WAL_FSYNC_EVERYSEC, MB_WAL_FSYNC_NO};
    const int thr[2] = {1, 16};
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < 2; k++) {
            tput r = {0, 0, 0, 0};
            rc |= run_tput(root, pols[p], thr[k], batch, seconds, &r);
            printf("%-9s %8d %16.0f %10.3f %10.3f %14.1f\n", mb_wal_fsync_name(pols[p]), thr[k], r.tps, r.p50_ms,
                   r.p99_ms, pols[p] == MB_WAL_FSYNC_ALWAYS ? r.per_fsync : 0.0);
            snprintf(json[nj++], sizeof json[0],
                     "{\"bench\": \"durability_append\", \"fsync\": \"%s\", \"writers\": %d, \"batch\": %d, "
                     "\"obs_dim\": %d, \"act_dim\": %d, \"transitions_per_s\": %.0f, \"p50_ms\": %.3f, "
                     "\"p99_ms\": %.3f, \"appends_per_fsync\": %.1f}",
                     mb_wal_fsync_name(pols[p]), thr[k], batch, OBS, ACT, r.tps, r.p50_ms, r.p99_ms,
                     pols[p] == MB_WAL_FSYNC_ALWAYS ? r.per_fsync : 0.0);
        }

    /* Recovery: write the log (fsync=no, then one sync), then recover it.
     * It is laid out as a daemon's model directory, create record first. */
    char dir[1200], data_dir[1100];
    snprintf(data_dir, sizeof data_dir, "%s/data", root);
    snprintf(dir, sizeof dir, "%s/models/m-bench/wal", data_dir);
    mb_wal_opts o;
    mb_wal_opts_default(&o);
    o.fsync = MB_WAL_FSYNC_NO;
    mb_wal *w;
    if (mb_wal_open(&w, dir, &o, 0, NULL, NULL, NULL, err, sizeof err) != MB_OK) {
        fprintf(stderr, "durability: %s\n", err);
        mb_fs_remove_tree(root, err, sizeof err);
        return 1;
    }
    float obs[OBS], act[ACT], rew = 0.5f, nxt[OBS];
    for (int i = 0; i < OBS; i++) obs[i] = (float)i, nxt[i] = (float)i + 0.5f;
    for (int i = 0; i < ACT; i++) act[i] = -(float)i;
    mb_wal_batch b = {.client = "bench", .n = 1, .obs_dim = OBS, .act_dim = ACT, .obs = obs, .act = act,
                      .rew = &rew, .next_obs = nxt};
    char spec[512];
    snprintf(spec, sizeof spec, "{\"name\": \"bench\", \"obs_dim\": %d, \"act_dim\": %d, "
             "\"act_low\": [-1, -1, -1, -1, -1, -1], \"act_high\": [1, 1, 1, 1, 1, 1], "
             "\"buffer\": {\"capacity\": %llu}}", OBS, ACT, (unsigned long long)n_recover);
    if (mb_wal_append(w, MB_WAL_REC_CREATE, spec, strlen(spec), NULL, err, sizeof err) != MB_OK) {
        fprintf(stderr, "durability: %s\n", err);
        rc = 1;
    }
    double tw = bench_now();
    for (uint64_t i = 0; i < n_recover && rc == 0; i++) {
        b.client_seq = i;
        if (mb_wal_append_batch(w, &b, NULL, err, sizeof err) != MB_OK) {
            fprintf(stderr, "durability: %s\n", err);
            rc = 1;
        }
    }
    mb_wal_sync(w, err, sizeof err);
    mb_wal_close(w, err, sizeof err);
    tw = bench_now() - tw;
    if (rc == 0) {
        int cold = drop_cache(dir);
        recov rcold, rwarm;
        rc |= run_recover(dir, n_recover, &rcold);
        rc |= run_recover(dir, n_recover, &rwarm);
        printf("\nrecovery of %llu transitions (one per record, %.0f MB of log, written in %.1f s):\n",
               (unsigned long long)n_recover, rcold.mb, tw);
        printf("  %-34s %8.3f s  (%.0f transitions/s, %.0f MB/s)\n",
               cold ? "page cache dropped (fadvise):" : "cache drop failed, probably warm:", rcold.seconds,
               (double)rcold.rows / rcold.seconds, rcold.mb / rcold.seconds);
        printf("  %-34s %8.3f s  (%.0f transitions/s, %.0f MB/s)\n", "warm page cache:", rwarm.seconds,
               (double)rwarm.rows / rwarm.seconds, rwarm.mb / rwarm.seconds);
        snprintf(json[nj++], sizeof json[0],
                 "{\"bench\": \"durability_recover\", \"transitions\": %llu, \"log_mb\": %.1f, \"cache\": \"%s\", "
                 "\"seconds\": %.3f, \"transitions_per_s\": %.0f}",
                 (unsigned long long)n_recover, rcold.mb, cold ? "dropped" : "unknown", rcold.seconds,
                 (double)rcold.rows / rcold.seconds);
        snprintf(json[nj++], sizeof json[0],
                 "{\"bench\": \"durability_recover\", \"transitions\": %llu, \"log_mb\": %.1f, \"cache\": \"warm\", "
                 "\"seconds\": %.3f, \"transitions_per_s\": %.0f}",
                 (unsigned long long)n_recover, rwarm.mb, rwarm.seconds, (double)rwarm.rows / rwarm.seconds);
        if (access(mbrld, X_OK) == 0) {
            drop_cache(dir);
            double ready = time_daemon_ready(mbrld, data_dir, root);
            if (ready >= 0) {
                printf("  %-34s %8.3f s  (mbrld start to listening, page cache dropped)\n", "daemon start to ready:", ready);
                snprintf(json[nj++], sizeof json[0],
                         "{\"bench\": \"durability_start_to_ready\", \"transitions\": %llu, \"log_mb\": %.1f, "
                         "\"seconds\": %.3f}", (unsigned long long)n_recover, rcold.mb, ready);
            } else {
                rc = 1;
            }
        } else {
            printf("  (no daemon at %s: start-to-ready not measured; --mbrld PATH)\n", mbrld);
        }
    }
    mb_fs_remove_tree(root, err, sizeof err);
    printf("\n");
    for (int i = 0; i < nj; i++) printf("%s\n", json[i]);
    return rc;
}
