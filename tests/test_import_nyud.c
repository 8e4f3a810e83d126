/* Tests of the NYU Depth V2 importer and of area-averaging resize. Fixture images are made
 * of constant 2x2 blocks, so a resize to half the side returns each block's level exactly.
 * The tests check those pixels, classes, ids, splits, and each rejected input's message. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "datasets/dataset.h"
#include "datasets/import_images.h"
#include "tests/image_fixtures.h"

/* Side of the imported images; each half of a fixture image is 2*SIDE pixels square. */
#define SIDE 4
#define HALF (2 * SIDE)

/* Levels of the RGB block (bx, by) of fixture image `k`, channel c. */
static uint8_t rgb_level(int k, int bx, int by, int c) {
    if (c == 0)
        return (uint8_t)(10 * bx + 40 * by + k);
    if (c == 1)
        return (uint8_t)(200 - 10 * bx - k);
    return (uint8_t)(50 + 7 * k);
}

/* Grey level of the depth block (bx, by) of fixture image `k`. */
static uint8_t depth_level(int k, int bx, int by) {
    return (uint8_t)(100 + 10 * bx + 30 * by + k);
}

/* Writes fixture image `k` (2*HALF x HALF, RGB left, depth right) as PNG. With
 * `tinted_depth`, the depth half is stored as (v, v + 1, v + 1), whose mean v + 2/3 rounds
 * to v + 1. */
static void write_pair(const char *name, int k, int tinted_depth) {
    uint8_t pixels[HALF * 2 * HALF * 3];
    for (int y = 0; y < HALF; y++)
        for (int x = 0; x < 2 * HALF; x++) {
            uint8_t *p = pixels + (y * 2 * HALF + x) * 3;
            if (x < HALF) {
                for (int c = 0; c < 3; c++)
                    p[c] = rgb_level(k, x / 2, y / 2, c);
            } else {
                uint8_t v = depth_level(k, (x - HALF) / 2, y / 2);
                p[0] = v;
                p[1] = (uint8_t)(v + tinted_depth);
                p[2] = (uint8_t)(v + tinted_depth);
            }
        }
    fixture_write_png(name, 2 * HALF, HALF, 3, pixels);
}

/* Writes a one-channel grey PNG of width 2*HALF with level g everywhere. */
static void write_grey(const char *name, uint8_t g) {
    uint8_t pixels[HALF * 2 * HALF];
    memset(pixels, g, sizeof(pixels));
    fixture_write_png(name, 2 * HALF, HALF, 1, pixels);
}

/* The fixture images of make_tree: relative path, image number, tinted depth. */
static const struct {
    const char *path;
    int k, tinted;
} tree_images[] = {
    {"train/kitchen/k0.png", 0, 0},     {"train/kitchen/k1.png", 1, 1},
    {"train/kitchen/sub/k2.png", 2, 0}, {"train/bedroom/b0.png", 3, 0},
    {"train/bedroom/b1.png", 4, 1},     {"train/living_room/l0.png", 5, 0},
    {"train/living_room/l1.png", 6, 0}, {"train/living_room/l2.png", 7, 0},
    {"train/living_room/l3.png", 8, 0}, {"test/kitchen/t0.png", 9, 0},
    {"test/kitchen/t1.PNG", 10, 1},     {"test/bedroom/t2.png", 11, 0},
};

/* Builds root `name` with classes bedroom, kitchen and living_room: 10 train images (one
 * grey PNG, train/bedroom/grey.png at level 77) and 3 test images, plus a file that is not a
 * PNG. */
static void make_tree(const char *name) {
    char rel[256];
    fixture_remove_tree(name);
    const char *dirs[] = {"train/kitchen/sub", "train/bedroom", "train/living_room",
                          "test/kitchen", "test/bedroom"};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(dirs); i++) {
        snprintf(rel, sizeof(rel), "%s/%s", name, dirs[i]);
        fixture_mkdir(rel);
    }
    for (size_t i = 0; i < EUAR_ARRAY_LEN(tree_images); i++) {
        snprintf(rel, sizeof(rel), "%s/%s", name, tree_images[i].path);
        write_pair(rel, tree_images[i].k, tree_images[i].tinted);
    }
    snprintf(rel, sizeof(rel), "%s/train/bedroom/grey.png", name);
    write_grey(rel, 77);
    snprintf(rel, sizeof(rel), "%s/train/kitchen/notes.txt", name);
    fixture_write_text(rel, "not an image\n");
}

static int find_id(const Dataset *ds, const char *id) {
    for (int i = 0; i < ds->n; i++)
        if (strcmp(ds->ids[i], id) == 0)
            return i;
    return -1;
}

static void resize_block_means(void **state) {
    /* A 4x2 RGB image of 2x2 blocks to 2x1: each output pixel is its block's level. */
    const uint8_t src[2 * 4 * 3] = {10, 20, 30, 10, 20, 30, 200, 0, 5, 200, 0, 5,
                                    10, 20, 30, 10, 20, 30, 200, 0, 5, 200, 0, 5};
    uint8_t dst[3 * 2];
    image_resize_area(dst, 2, 1, src, 4, 2, 3, 12);
    const uint8_t expected[] = {10, 200, 20, 0, 30, 5}; /* planar [C, 1, 2] */
    assert_memory_equal(dst, expected, sizeof(expected));
}

static void resize_fractional_weights(void **state) {
    /* 3 pixels to 2: output 0 covers pixel 0 and half of pixel 1, output 1 the rest, so
     * (0 + 90 / 2) / 1.5 = 30 and (90 / 2 + 180) / 1.5 = 150. */
    const uint8_t src[3] = {0, 90, 180};
    uint8_t dst[2];
    image_resize_area(dst, 2, 1, src, 3, 1, 1, 3);
    assert_int_equal(dst[0], 30);
    assert_int_equal(dst[1], 150);
    /* Rounding half up: the mean of 1 and 2 is 1.5. */
    const uint8_t pair[2] = {1, 2};
    image_resize_area(dst, 1, 1, pair, 2, 1, 1, 2);
    assert_int_equal(dst[0], 2);
    /* Upscaling repeats each pixel. */
    const uint8_t one[2] = {7, 9};
    uint8_t up[4];
    image_resize_area(up, 4, 1, one, 2, 1, 1, 2);
    const uint8_t up_expected[4] = {7, 7, 9, 9};
    assert_memory_equal(up, up_expected, 4);
}

static void nyud_pixels_classes_ids(void **state) {
    make_tree("nyu");
    const char *out = fixture_path("nyu.h5");
    NyudImportOptions o;
    nyud_import_defaults(&o);
    o.size = SIDE;
    ImportSummary s;
    assert_int_equal(nyud_import(fixture_path("nyu"), out, &o, &s), 0);
    assert_int_equal(s.n, 13);
    assert_int_equal(s.num_classes, 3);
    Dataset ds;
    assert_int_equal(dataset_load_h5(out, NULL, &ds), 0);
    assert_string_equal(ds.name, "nyud-v2");
    assert_int_equal(ds.num_classes, 3);
    assert_string_equal(ds.class_names[0], "bedroom");
    assert_string_equal(ds.class_names[1], "kitchen");
    assert_string_equal(ds.class_names[2], "living_room");
    assert_int_equal(ds.num_modalities, 2);
    assert_string_equal(ds.mod[0].name, "rgb");
    assert_string_equal(ds.mod[1].name, "depth");
    assert_int_equal(ds.mod[0].c, 3);
    assert_int_equal(ds.mod[0].h, SIDE);
    assert_int_equal(ds.mod[1].c, 1);
    assert_int_equal(ds.mod[1].w, SIDE);
    /* 10 train images: round(0.2 * 10) = 2 become valid. */
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_TRAIN), 8);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_VALID), 2);
    assert_int_equal(dataset_split_count(&ds, EUAR_SPLIT_TEST), 3);

    const size_t plane = SIDE * SIDE;
    for (size_t t = 0; t < EUAR_ARRAY_LEN(tree_images); t++) {
        int i = find_id(&ds, tree_images[t].path);
        assert_true(i >= 0);
        int k = tree_images[t].k;
        const char *cls = strchr(tree_images[t].path, '/') + 1;
        assert_int_equal(strncmp(ds.class_names[ds.classes[i]], cls,
                                 strlen(ds.class_names[ds.classes[i]])),
                         0);
        int is_test = strncmp(tree_images[t].path, "test/", 5) == 0;
        assert_int_equal(ds.split[i] == EUAR_SPLIT_TEST, is_test);
        const uint8_t *rgb = ds.mod[0].pixels + (size_t)i * 3 * plane;
        const uint8_t *depth = ds.mod[1].pixels + (size_t)i * plane;
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                for (int c = 0; c < 3; c++)
                    assert_int_equal(rgb[c * plane + y * SIDE + x], rgb_level(k, x, y, c));
                assert_int_equal(depth[y * SIDE + x],
                                 depth_level(k, x, y) + tree_images[t].tinted);
            }
    }
    int grey = find_id(&ds, "train/bedroom/grey.png");
    assert_true(grey >= 0);
    assert_int_equal(ds.classes[grey], 0);
    for (size_t j = 0; j < 3 * plane; j++)
        assert_int_equal(ds.mod[0].pixels[(size_t)grey * 3 * plane + j], 77);
    for (size_t j = 0; j < plane; j++)
        assert_int_equal(ds.mod[1].pixels[(size_t)grey * plane + j], 77);
    assert_int_equal(find_id(&ds, "train/kitchen/notes.txt"), -1);
    dataset_free(&ds);
}

/* Writes the split of every sample of `path`, ordered by id, to `splits`. */
static void read_splits(const char *path, char *splits) {
    Dataset ds;
    assert_int_equal(dataset_load_h5(path, NULL, &ds), 0);
    for (int i = 0; i < ds.n; i++)
        splits[i] = (char)('0' + ds.split[i]);
    splits[ds.n] = '\0';
    dataset_free(&ds);
}

static void nyud_skips_macos_files_and_notes(void **state) {
    make_tree("nyu-mac");
    /* What macOS's zip adds: a __MACOSX folder of "._" resource forks (not images) at the root
     * and inside train/, and .DS_Store files. A val/ folder is ignored and noted. */
    fixture_mkdir("nyu-mac/__MACOSX/train/kitchen");
    fixture_write_text("nyu-mac/__MACOSX/train/kitchen/._k0.png", "resource fork\n");
    fixture_mkdir("nyu-mac/train/__MACOSX/kitchen");
    fixture_write_text("nyu-mac/train/__MACOSX/kitchen/._k0.png", "resource fork\n");
    fixture_write_text("nyu-mac/train/kitchen/.DS_Store", "finder data\n");
    fixture_write_text("nyu-mac/train/.DS_Store", "finder data\n");
    fixture_mkdir("nyu-mac/val/kitchen");
    write_pair("nyu-mac/val/kitchen/v0.png", 0, 0);
    NyudImportOptions o;
    nyud_import_defaults(&o);
    o.size = SIDE;
    ImportSummary s;
    if (nyud_import(fixture_path("nyu-mac"), fixture_path("nyu-mac.h5"), &o, &s) != 0)
        fail_msg("import failed: %s", err_get());
    assert_int_equal(s.num_classes, 3);
    assert_int_equal(s.n, 13); /* the 13 images of make_tree */
    assert_int_equal(s.ignored_folders, 1);
    assert_string_equal(s.ignored_names, "val");
    /* living_room has training images only. */
    assert_int_equal(s.classes_without_test, 1);
    assert_string_equal(s.first_class_without_test, "living_room");
}

static void nyud_valid_cut_by_seed(void **state) {
    make_tree("nyu-seed");
    NyudImportOptions o;
    nyud_import_defaults(&o);
    o.size = SIDE;
    const char *root = fixture_path("nyu-seed");
    char a[32], b[32], c[32];
    assert_int_equal(nyud_import(root, fixture_path("seed1a.h5"), &o, NULL), 0);
    assert_int_equal(nyud_import(root, fixture_path("seed1b.h5"), &o, NULL), 0);
    o.seed = 2;
    assert_int_equal(nyud_import(root, fixture_path("seed2.h5"), &o, NULL), 0);
    read_splits(fixture_path("seed1a.h5"), a);
    read_splits(fixture_path("seed1b.h5"), b);
    read_splits(fixture_path("seed2.h5"), c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);

    o.valid_fraction = 0.5;
    ImportSummary s;
    assert_int_equal(nyud_import(root, fixture_path("half.h5"), &o, &s), 0);
    assert_int_equal(s.split_counts[EUAR_SPLIT_TRAIN], 5);
    assert_int_equal(s.split_counts[EUAR_SPLIT_VALID], 5);
    assert_int_equal(s.split_counts[EUAR_SPLIT_TEST], 3);
}

/* Imports root `name` with the default options into a fresh output path and expects a
 * failure whose message has each of `parts`. */
static void expect_nyud_failure(const char *name, double valid_fraction,
                                const char *const *parts) {
    NyudImportOptions o;
    nyud_import_defaults(&o);
    o.size = SIDE;
    o.valid_fraction = valid_fraction;
    const char *out = fixture_path("failed.h5");
    fixture_expect_failure(nyud_import(fixture_path(name), out, &o, NULL), out, parts);
}

static void nyud_rejects_bad_images(void **state) {
    make_tree("bad");
    fixture_truncate("bad/train/kitchen/k1.png", 60);
    const char *truncated[] = {"bad/train/kitchen/k1.png", "not a readable image",
                               "truncated, corrupt", NULL};
    expect_nyud_failure("bad", 0.2, truncated);

    make_tree("bad");
    fixture_write_text("bad/test/bedroom/t2.png", "this is text, not a PNG\n");
    const char *text[] = {"bad/test/bedroom/t2.png", "not a readable image", NULL};
    expect_nyud_failure("bad", 0.2, text);

    make_tree("bad");
    uint8_t pixels[15 * 4 * 3];
    memset(pixels, 9, sizeof(pixels));
    fixture_write_png("bad/train/bedroom/b0.png", 15, 4, 3, pixels);
    const char *odd[] = {"bad/train/bedroom/b0.png", "width 15 is odd", "even", NULL};
    expect_nyud_failure("bad", 0.2, odd);

    make_tree("bad");
    fixture_write_png("bad/train/bedroom/b0.png", 1, 4, 3, pixels);
    const char *narrow[] = {"bad/train/bedroom/b0.png", "width 1 is too small to split", NULL};
    expect_nyud_failure("bad", 0.2, narrow);
}

static void nyud_rejects_bad_folders(void **state) {
    make_tree("bad");
    fixture_mkdir("bad/train/office");
    const char *empty[] = {"bad/train/office", "empty class folder", NULL};
    expect_nyud_failure("bad", 0.2, empty);

    make_tree("bad");
    fixture_mkdir("bad/test/office");
    fixture_write_text("bad/test/office/readme.txt", "no images here\n");
    const char *unknown[] = {"bad/test/office", "'office' is not in", NULL};
    expect_nyud_failure("bad", 0.2, unknown);

    make_tree("bad");
    fixture_remove_tree("bad/test");
    const char *no_test[] = {"bad/test", "folder not found", NULL};
    expect_nyud_failure("bad", 0.2, no_test);

    const char *no_root[] = {"missing-root", "folder not found", NULL};
    expect_nyud_failure("missing-root", 0.2, no_root);

    make_tree("bad");
    const char *no_valid[] = {"bad/train", "10 images", "give 0 valid", NULL};
    expect_nyud_failure("bad", 0.01, no_valid);
    const char *range[] = {"--valid-fraction 1", "(0, 1)", NULL};
    expect_nyud_failure("bad", 1.0, range);

    make_tree("bad");
    fixture_remove_tree("bad/train/kitchen");
    fixture_remove_tree("bad/train/living_room");
    fixture_remove_tree("bad/test/kitchen");
    const char *one_class[] = {"bad/train", "1 class folder", "at least 2", NULL};
    expect_nyud_failure("bad", 0.2, one_class);
}

static int setup(void **state) {
    return fixture_setup("import-nyud");
}

static int teardown(void **state) {
    return fixture_teardown();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resize_block_means),
        cmocka_unit_test(resize_fractional_weights),
        cmocka_unit_test(nyud_pixels_classes_ids),
        cmocka_unit_test(nyud_valid_cut_by_seed),
        cmocka_unit_test(nyud_skips_macos_files_and_notes),
        cmocka_unit_test(nyud_rejects_bad_images),
        cmocka_unit_test(nyud_rejects_bad_folders),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
