/* A temporary folder for the files of one test program, removed after its tests: call
 * tmp_dir_setup() from the group setup and tmp_dir_teardown() as the group teardown. Needs
 * _XOPEN_SOURCE 700 (for nftw) before the first include. */
#ifndef EUAR_TESTS_TMP_DIR_H
#define EUAR_TESTS_TMP_DIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <hdf5.h>

static char tmp_dir[64];

/* Returns `name` inside the folder; the last 8 results stay valid. */
static const char *tmp_path(const char *name) {
    static char paths[8][256];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    return p;
}

static int tmp_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    return remove(path);
}

/* Creates /tmp/euar-test-<name>-XXXXXX and turns off HDF5's error printing, because the
 * tests provoke HDF5 errors on purpose. */
static int tmp_dir_setup(const char *name) {
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/euar-test-%.20s-XXXXXX", name);
    if (!mkdtemp(tmp_dir))
        return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static int tmp_dir_teardown(void **state) {
    return nftw(tmp_dir, tmp_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

#endif
