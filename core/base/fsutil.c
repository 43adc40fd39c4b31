/* fsutil.c: careful writes, atomic replacement, whole-file reads, mkdir -p,
 * rm -r, numbered-file listing. See fsutil.h for the contracts.
 * Not for: record or snapshot formats. */
#include "base/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

mb_status mb_fs_write_all(int fd, const void *data, size_t n, const char *what,
                          char *err, size_t err_sz) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return mb_fail(err, err_sz, MB_EIO, "write %s: %s", what, strerror(errno));
        }
        if (w == 0) return mb_fail(err, err_sz, MB_EIO, "write %s: wrote nothing", what);
        p += w;
        n -= (size_t)w;
    }
    return MB_OK;
}

mb_status mb_fs_pread_all(int fd, void *dst, size_t n, uint64_t off, const char *what,
                          char *err, size_t err_sz) {
    char *p = dst;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return mb_fail(err, err_sz, MB_EIO, "read %s: %s", what, strerror(errno));
        }
        if (r == 0)
            return mb_fail(err, err_sz, MB_ECORRUPT, "read %s: file ends at offset %llu",
                           what, (unsigned long long)off);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return MB_OK;
}

mb_status mb_fs_fsync_dir(const char *dir, char *err, size_t err_sz) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return mb_fail(err, err_sz, MB_EIO, "open directory %s: %s", dir, strerror(errno));
    mb_status st = MB_OK;
    if (fsync(fd) != 0) st = mb_fail(err, err_sz, MB_EIO, "fsync directory %s: %s", dir, strerror(errno));
    close(fd);
    return st;
}

mb_status mb_fs_dirname(const char *path, char *out, size_t out_sz, char *err, size_t err_sz) {
    const char *slash = strrchr(path, '/');
    size_t n;
    if (!slash) {
        if (out_sz < 2) return mb_fail(err, err_sz, MB_ERANGE, "path too long: %s", path);
        strcpy(out, ".");
        return MB_OK;
    }
    n = slash == path ? 1 : (size_t)(slash - path);
    if (n + 1 > out_sz) return mb_fail(err, err_sz, MB_ERANGE, "path too long: %s", path);
    memcpy(out, path, n);
    out[n] = '\0';
    return MB_OK;
}

mb_status mb_fs_mkdir_p(const char *path, mode_t mode, char *err, size_t err_sz) {
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) return mb_fail(err, err_sz, MB_EINVAL, "bad directory path '%s'", path);
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    /* Create each missing component from the top; p walks the separators. */
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        struct stat sb;
        if (stat(buf, &sb) != 0) {
            if (errno != ENOENT || (mkdir(buf, mode) != 0 && errno != EEXIST))
                return mb_fail(err, err_sz, MB_EIO, "mkdir %s: %s", buf, strerror(errno));
            char parent[4096];
            mb_status st = mb_fs_dirname(buf, parent, sizeof parent, err, err_sz);
            if (st == MB_OK) st = mb_fs_fsync_dir(parent, err, err_sz);
            if (st != MB_OK) return st;
        } else if (!S_ISDIR(sb.st_mode)) {
            return mb_fail(err, err_sz, MB_EIO, "mkdir %s: exists and is not a directory", buf);
        }
        *p = saved;
        if (saved == '\0') break;
    }
    return MB_OK;
}

static int fs__rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    return (rc != 0 && errno != ENOENT) ? errno : 0;
}

mb_status mb_fs_remove_tree(const char *path, char *err, size_t err_sz) {
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno == ENOENT) return MB_OK;
        return mb_fail(err, err_sz, MB_EIO, "stat %s: %s", path, strerror(errno));
    }
    int rc = nftw(path, fs__rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (rc != 0)
        return mb_fail(err, err_sz, MB_EIO, "remove %s: %s", path, strerror(rc > 0 ? rc : errno));
    char parent[4096];
    mb_status st = mb_fs_dirname(path, parent, sizeof parent, err, err_sz);
    return st == MB_OK ? mb_fs_fsync_dir(parent, err, err_sz) : st;
}

mb_status mb_fs_read_file(const char *path, size_t max_bytes, void **data, size_t *n,
                          char *err, size_t err_sz) {
    *data = NULL;
    *n = 0;
    mb_status st = MB_OK;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mb_fail(err, err_sz, errno == ENOENT ? MB_ENOTFOUND : MB_EIO, "open %s: %s", path,
                       strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        st = mb_fail(err, err_sz, MB_EIO, "stat %s: %s", path, strerror(errno));
        goto err;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = mb_fail(err, err_sz, MB_EINVAL, "%s is not a regular file", path);
        goto err;
    }
    if ((uint64_t)sb.st_size > max_bytes) {
        st = mb_fail(err, err_sz, MB_ERANGE, "%s is %lld bytes, more than the limit %zu", path,
                     (long long)sb.st_size, max_bytes);
        goto err;
    }
    size_t size = (size_t)sb.st_size;
    buf = malloc(size + 1);
    if (!buf) {
        st = mb_fail(err, err_sz, MB_ENOMEM, "no memory for %zu bytes of %s", size, path);
        goto err;
    }
    st = mb_fs_pread_all(fd, buf, size, 0, path, err, err_sz);
    if (st != MB_OK) goto err;
    buf[size] = '\0';
    close(fd);
    *data = buf;
    *n = size;
    return MB_OK;
err:
    free(buf);
    close(fd);
    return st;
}

mb_status mb_fs_atomic_open(mb_fs_atomic *a, const char *path, char *err, size_t err_sz) {
    memset(a, 0, sizeof *a);
    a->fd = -1;
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof a->path) return mb_fail(err, err_sz, MB_EINVAL, "bad file path '%s'", path);
    memcpy(a->path, path, len + 1);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (a->fd < 0) {
        mb_status st = mb_fail(err, err_sz, MB_EIO, "create %s: %s", a->tmp, strerror(errno));
        a->tmp[0] = '\0';
        return st;
    }
    return MB_OK;
}

mb_status mb_fs_atomic_write(mb_fs_atomic *a, const void *data, size_t n, char *err, size_t err_sz) {
    if (a->fd < 0) return mb_fail(err, err_sz, MB_ESTATE, "atomic write: file not open");
    mb_status st = mb_fs_write_all(a->fd, data, n, a->tmp, err, err_sz);
    if (st != MB_OK) mb_fs_atomic_abort(a);
    return st;
}

mb_status mb_fs_atomic_commit(mb_fs_atomic *a, char *err, size_t err_sz) {
    mb_status st;
    char dir[4096];
    if (a->fd < 0) return mb_fail(err, err_sz, MB_ESTATE, "atomic commit: file not open");
    if (fsync(a->fd) != 0) {
        st = mb_fail(err, err_sz, MB_EIO, "fsync %s: %s", a->tmp, strerror(errno));
        goto err;
    }
    int fd = a->fd;
    a->fd = -1;
    if (close(fd) != 0) {
        st = mb_fail(err, err_sz, MB_EIO, "close %s: %s", a->tmp, strerror(errno));
        goto err;
    }
    if (rename(a->tmp, a->path) != 0) {
        st = mb_fail(err, err_sz, MB_EIO, "rename %s to %s: %s", a->tmp, a->path, strerror(errno));
        goto err;
    }
    a->tmp[0] = '\0'; /* renamed: nothing left to clean up */
    st = mb_fs_dirname(a->path, dir, sizeof dir, err, err_sz);
    if (st == MB_OK) st = mb_fs_fsync_dir(dir, err, err_sz);
    if (st != MB_OK) goto err;
    return MB_OK;
err:
    mb_fs_atomic_abort(a);
    return st;
}

void mb_fs_atomic_abort(mb_fs_atomic *a) {
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
    if (a->tmp[0]) {
        unlink(a->tmp);
        a->tmp[0] = '\0';
    }
}

mb_status mb_fs_write_file_atomic(const char *path, const void *data, size_t n,
                                  char *err, size_t err_sz) {
    mb_fs_atomic a;
    a.fd = -1;
    a.tmp[0] = '\0';
    mb_status st = mb_fs_atomic_open(&a, path, err, err_sz);
    if (st == MB_OK) st = mb_fs_atomic_write(&a, data, n, err, err_sz);
    if (st == MB_OK) st = mb_fs_atomic_commit(&a, err, err_sz);
    return st;
}

static int fs__cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

mb_status mb_fs_list_numbered(const char *dir, const char *prefix, const char *suffix,
                              const char *what, uint64_t **out, size_t *n, char *err,
                              size_t err_sz) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return mb_fail(err, err_sz, errno == ENOENT ? MB_ENOTFOUND : MB_EIO, "open %s %s: %s", what,
                       dir, strerror(errno));
    size_t pl = strlen(prefix), sl = strlen(suffix), cap = 0;
    struct dirent *de;
    mb_status st = MB_OK;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (strlen(nm) != pl + MB_FS_NUM_DIGITS + sl || strncmp(nm, prefix, pl) != 0 ||
            strcmp(nm + pl + MB_FS_NUM_DIGITS, suffix) != 0)
            continue;
        uint64_t v = 0;
        int ok = 1;
        for (size_t i = pl; i < pl + MB_FS_NUM_DIGITS; i++) {
            if (nm[i] < '0' || nm[i] > '9') { ok = 0; break; }
            v = v * 10 + (uint64_t)(nm[i] - '0');
        }
        if (!ok) continue;
        if (*n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            uint64_t *p = realloc(*out, nc * sizeof *p);
            if (!p) { st = mb_fail(err, err_sz, MB_ENOMEM, "no memory listing %s", dir); break; }
            *out = p;
            cap = nc;
        }
        (*out)[(*n)++] = v;
    }
    closedir(d);
    if (st != MB_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
        return st;
    }
    if (*n > 1) qsort(*out, *n, sizeof **out, fs__cmp_u64);
    return MB_OK;
}
