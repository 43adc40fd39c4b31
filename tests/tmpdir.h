/* tmpdir.h: one fresh temporary directory per test, for the suites that
 * touch the file system (check fixtures: tmpdir_setup in setup, tmpdir_remove
 * in teardown). The directory is $TMPDIR (or /tmp) /mbrld-TAG-XXXXXX,
 * made by mkdtemp and removed recursively (mb_fs_remove_tree) afterwards.
 * Not for: the daemon suites, which start a server in their own directory
 * (tests/server/harness.h, tests/clients/daemon_util.h). */
#ifndef MB_TMPDIR_H
#define MB_TMPDIR_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/fsutil.h"

static char tmpdir[256];

static void tmpdir_setup(const char *tag) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/mbrld-%s-XXXXXX", t && *t ? t : "/tmp", tag);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_remove(void) {
    char e[512];
    mb_fs_remove_tree(tmpdir, e, sizeof e);
}

#endif
