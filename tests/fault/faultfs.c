/* faultfs.c: an LD_PRELOAD shim that makes writes and fsyncs fail on
 * purpose, for the durability tests (disk full, I/O errors).
 *
 * It interposes write, writev, pwrite, fsync and fdatasync. A call fails only
 * when (1) a fault is configured and (2) the file descriptor refers to a path
 * under the configured directory (so the test harness's own pipes and logs
 * keep working). Configuration is "key=value" items, separated by newlines
 * or ';', from the environment variable MBRLD_FAULT and, re-read on every
 * call, from the file named by MBRLD_FAULT_CTL (a test rewrites it to switch
 * faults on and off; an empty file means no faults):
 *   dir=/abs/path      faults apply under this prefix only (required)
 *   write=ENOSPC|EIO   write, writev, pwrite fail with this errno
 *   partial=1          ... but first write half of a request (a short write,
 *                      as a filling disk does), failing only at <= 1 byte
 *   fsync=EIO|ENOSPC   fsync and fdatasync fail with this errno
 *   fsync_delay_ms=N   fsync and fdatasync take N ms longer (a slow disk)
 * Build: cc -fPIC -shared faultfs.c -o faultfs.so -ldl (tests/fault/fault.mk).
 * Not for: production, or any fault other than these. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef int (*fsync_fn)(int);

static write_fn real_write;
static writev_fn real_writev;
static pwrite_fn real_pwrite;
static fsync_fn real_fsync, real_fdatasync;

__attribute__((constructor)) static void faultfs_init(void) {
    real_write = (write_fn)dlsym(RTLD_NEXT, "write");
    real_writev = (writev_fn)dlsym(RTLD_NEXT, "writev");
    real_pwrite = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    real_fsync = (fsync_fn)dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (fsync_fn)dlsym(RTLD_NEXT, "fdatasync");
}

typedef struct {
    char dir[1024];
    int write_errno, fsync_errno, partial, fsync_delay_ms;
} faultfs_conf;

static int faultfs_errno_of(const char *v) {
    if (!strncmp(v, "ENOSPC", 6)) return ENOSPC;
    if (!strncmp(v, "EIO", 3)) return EIO;
    if (!strncmp(v, "EDQUOT", 6)) return EDQUOT;
    return 0;
}

static void faultfs_parse(faultfs_conf *c, const char *s) {
    while (s && *s) {
        size_t n = strcspn(s, ";\n");
        if (!strncmp(s, "dir=", 4) && n - 4 < sizeof c->dir) {
            memcpy(c->dir, s + 4, n - 4);
            c->dir[n - 4] = '\0';
        } else if (!strncmp(s, "write=", 6)) {
            c->write_errno = faultfs_errno_of(s + 6);
        } else if (!strncmp(s, "fsync=", 6)) {
            c->fsync_errno = faultfs_errno_of(s + 6);
        } else if (!strncmp(s, "fsync_delay_ms=", 15)) {
            c->fsync_delay_ms = atoi(s + 15);
        } else if (!strncmp(s, "partial=", 8)) {
            c->partial = s[8] == '1';
        }
        s += n;
        if (*s) s++;
    }
}

/* Current configuration; the control file is read with read(2), which is not
 * interposed, so there is no recursion. */
static void faultfs_load(faultfs_conf *c) {
    memset(c, 0, sizeof *c);
    faultfs_parse(c, getenv("MBRLD_FAULT"));
    const char *ctl = getenv("MBRLD_FAULT_CTL");
    if (!ctl || !*ctl) return;
    int fd = open(ctl, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char buf[2048];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = '\0';
    faultfs_parse(c, buf);
}

static int faultfs_applies(const faultfs_conf *c, int fd) {
    if (!c->dir[0]) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    return strncmp(path, c->dir, strlen(c->dir)) == 0;
}

/* 0: pass through; -1: fail with errno set; >0: write only this many bytes. */
static ssize_t faultfs_write_verdict(int fd, size_t n) {
    faultfs_conf c;
    faultfs_load(&c);
    if (!c.write_errno || !faultfs_applies(&c, fd)) return 0;
    if (c.partial && n > 1) return (ssize_t)(n / 2);
    errno = c.write_errno;
    return -1;
}

ssize_t write(int fd, const void *buf, size_t n) {
    ssize_t v = faultfs_write_verdict(fd, n);
    if (v < 0) return -1;
    return real_write(fd, buf, v > 0 ? (size_t)v : n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    ssize_t v = faultfs_write_verdict(fd, n);
    if (v < 0) return -1;
    return real_pwrite(fd, buf, v > 0 ? (size_t)v : n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    size_t total = 0;
    for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
    ssize_t v = faultfs_write_verdict(fd, total);
    if (v < 0) return -1;
    if (v == 0) return real_writev(fd, iov, cnt);
    /* A short write: the first v bytes of the gathered buffers. */
    struct iovec part[64];
    int k = 0;
    size_t left = (size_t)v;
    for (int i = 0; i < cnt && left > 0 && k < 64; i++) {
        part[k].iov_base = iov[i].iov_base;
        part[k].iov_len = iov[i].iov_len < left ? iov[i].iov_len : left;
        left -= part[k].iov_len;
        k++;
    }
    return real_writev(fd, part, k);
}

static int faultfs_sync(int fd, fsync_fn real) {
    faultfs_conf c;
    faultfs_load(&c);
    if (c.fsync_errno && faultfs_applies(&c, fd)) {
        errno = c.fsync_errno;
        return -1;
    }
    if (c.fsync_delay_ms > 0 && faultfs_applies(&c, fd)) {
        struct timespec ts = {c.fsync_delay_ms / 1000, (long)(c.fsync_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return real(fd);
}

int fsync(int fd) { return faultfs_sync(fd, real_fsync); }
int fdatasync(int fd) { return faultfs_sync(fd, real_fdatasync); }
