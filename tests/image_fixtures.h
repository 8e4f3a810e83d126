/* Fixture helpers of the image importer tests: a temporary folder per test program, PNG and
 * JPEG files written with stb_image_write (Debian's libstb-dev), text files, and a check that
 * an import failed with a given message and left no output file. Include after cmocka.h. */
#ifndef EUAR_TEST_IMAGE_FIXTURES_H
#define EUAR_TEST_IMAGE_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ftw.h>
#include <hdf5.h>
#include <stb/stb_image_write.h>

#include "core/common.h"

static char fixture_dir[64];

/* Returns fixture_dir/name in one of 8 rotating buffers. */
static inline const char *fixture_path(const char *name) {
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof(paths[0]), "%s/%s", fixture_dir, name);
    return p;
}

static inline int fixture_remove_entry(const char *path, const struct stat *st, int flag,
                                       struct FTW *ftw) {
    return remove(path);
}

static inline int fixture_setup(const char *prefix) {
    snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/euar-test-%s-XXXXXX", prefix);
    if (!mkdtemp(fixture_dir))
        return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

static inline int fixture_teardown(void) {
    return nftw(fixture_dir, fixture_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes fixture_dir/name and everything under it, if present. */
static inline void fixture_remove_tree(const char *name) {
    struct stat st;
    const char *path = fixture_path(name);
    if (stat(path, &st) == 0)
        nftw(path, fixture_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int fixture_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Creates fixture_dir/name and its parents. */
static inline void fixture_mkdir(const char *name) {
    assert_int_equal(make_dirs(fixture_path(name)), 0);
}

static inline void fixture_write_text(const char *name, const char *text) {
    FILE *f = fopen(fixture_path(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Writes an image with `comp` channels (1 grey, 3 RGB), interleaved, as PNG. */
static inline void fixture_write_png(const char *name, int w, int h, int comp,
                                     const uint8_t *pixels) {
    assert_true(stbi_write_png(fixture_path(name), w, h, comp, pixels, w * comp) != 0);
}

/* Writes a w x h image of one RGB colour as a JPEG of quality 100. */
static inline void fixture_write_jpeg_colour(const char *name, int w, int h, uint8_t r,
                                             uint8_t g, uint8_t b) {
    uint8_t *pixels = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) {
        pixels[3 * i] = r;
        pixels[3 * i + 1] = g;
        pixels[3 * i + 2] = b;
    }
    assert_true(stbi_write_jpg(fixture_path(name), w, h, 3, pixels, 100) != 0);
    free(pixels);
}

/* Keeps only the first `bytes` bytes of fixture_dir/name. */
static inline void fixture_truncate(const char *name, long bytes) {
    assert_int_equal(truncate(fixture_path(name), bytes), 0);
}

/* Checks that an import returned -1 with a message containing each of the NULL-terminated
 * `parts`, and that it left no file at `out`. */
static inline void fixture_expect_failure(int rc, const char *out, const char *const *parts) {
    assert_int_equal(rc, -1);
    for (int k = 0; parts[k]; k++) {
        if (!strstr(err_get(), parts[k]))
            print_error("message \"%s\" lacks \"%s\"\n", err_get(), parts[k]);
        assert_non_null(strstr(err_get(), parts[k]));
    }
    assert_false(fixture_exists(out));
}

#endif
