/* fsutil.h: the few file-system moves durability needs, each done the
 * careful way (STYLE.md "On disk"): full writes that survive EINTR and short
 * writes, atomic file replacement (temp file, fsync, rename, fsync of
 * the directory), whole-file reads with a size cap, mkdir -p, rm -r, and
 * the listing of numbered files (the log's segments, the snapshots).
 *
 * Every function returns MB_OK or a status with a one-line reason in err
 * (naming the path and strerror); none exits or aborts. Nothing here keeps
 * global state.
 * Not for: the log's record format (wal.c) or the snapshot format
 * (snapshot.c). */
#ifndef MB_FSUTIL_H
#define MB_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/common.h"

/* Writes all n bytes of data to fd (retrying EINTR and short writes).
 * A failure (ENOSPC, EIO, ...) is MB_EIO; `what` names the file in err. */
mb_status mb_fs_write_all(int fd, const void *data, size_t n, const char *what,
                          char *err, size_t err_sz);
/* Reads exactly n bytes at offset off into dst; a short file is MB_ECORRUPT. */
mb_status mb_fs_pread_all(int fd, void *dst, size_t n, uint64_t off, const char *what,
                          char *err, size_t err_sz);
/* fsync of the directory that holds an entry (makes a create, rename or
 * unlink in it durable). */
mb_status mb_fs_fsync_dir(const char *dir, char *err, size_t err_sz);
/* The directory part of path ("." when there is none) into out[out_sz]. */
mb_status mb_fs_dirname(const char *path, char *out, size_t out_sz, char *err, size_t err_sz);
/* mkdir -p with mode (e.g. 0755); fsyncs each parent it created an entry in. */
mb_status mb_fs_mkdir_p(const char *path, mode_t mode, char *err, size_t err_sz);
/* rm -r of path (a file or a directory tree); a missing path is MB_OK.
 * Fsyncs the parent directory afterwards. */
mb_status mb_fs_remove_tree(const char *path, char *err, size_t err_sz);

/* Reads a whole regular file into a new buffer (*data, owned by the caller,
 * free() it; one extra NUL byte is appended so text can be parsed in place).
 * A file larger than max_bytes is MB_ERANGE; a missing file MB_ENOTFOUND. */
mb_status mb_fs_read_file(const char *path, size_t max_bytes, void **data, size_t *n,
                          char *err, size_t err_sz);

/* Numbered files: the numbers N of dir's entries named exactly
 * <prefix><N as MB_FS_NUM_DIGITS decimal digits><suffix> (what "%020" PRIu64
 * writes), ascending, into *out (owned by the caller, free() it; NULL when
 * there are none) and *n. Other names are skipped. A missing dir is
 * MB_ENOTFOUND, another failure to open it MB_EIO; err then reads
 * "open <what> <dir>: <strerror>" (what: e.g. "log directory"). */
#define MB_FS_NUM_DIGITS 20
mb_status mb_fs_list_numbered(const char *dir, const char *prefix, const char *suffix,
                              const char *what, uint64_t **out, size_t *n, char *err,
                              size_t err_sz);

/* Atomic replacement, streamed: open writes to "<path>.tmp", write appends
 * (unbuffered write(2) calls: the caller passes large pieces), commit does
 * fsync + close + rename over path + fsync of the directory; abort (or any
 * failure) removes the temp file. After a crash the file at path is either
 * the old or the new one, whole. One writer per path at a time (the caller
 * serialises). */
typedef struct {
    int fd; /* -1 when not open */
    char path[4096];
    char tmp[4200];
} mb_fs_atomic;
mb_status mb_fs_atomic_open(mb_fs_atomic *a, const char *path, char *err, size_t err_sz);
mb_status mb_fs_atomic_write(mb_fs_atomic *a, const void *data, size_t n, char *err, size_t err_sz);
mb_status mb_fs_atomic_commit(mb_fs_atomic *a, char *err, size_t err_sz);
/* Safe on an opened, committed or zeroed struct. */
void mb_fs_atomic_abort(mb_fs_atomic *a);
/* The whole sequence for one buffer: data (n bytes). */
mb_status mb_fs_write_file_atomic(const char *path, const void *data, size_t n,
                                  char *err, size_t err_sz);

#endif
