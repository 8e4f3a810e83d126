/* Tests of the MVSA-Single importer: labels, ids, splits, image pixels (PNG of constant 2x2
 * blocks, exact; JPEG of one colour, within JPEG rounding), token ids, lengths, truncation and
 * the stored vocabulary, and each rejected input with its message. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "datasets/dataset.h"
#include "datasets/import_images.h"
#include "tests/image_fixtures.h"

/* Side of the imported images; the PNG fixtures are 2*SIDE square with 2x2 blocks. */
#define SIDE 8

static uint8_t block_level(int bx, int by, int c) {
    if (c == 0)
        return (uint8_t)(8 * bx + 3 * by);
    if (c == 1)
        return (uint8_t)(250 - 20 * by);
    return (uint8_t)(17 * c + bx);
}

static void write_block_png(const char *name) {
    uint8_t pixels[2 * SIDE * 2 * SIDE * 3];
    for (int y = 0; y < 2 * SIDE; y++)
        for (int x = 0; x < 2 * SIDE; x++)
            for (int c = 0; c < 3; c++)
                pixels[(y * 2 * SIDE + x) * 3 + c] = block_level(x / 2, y / 2, c);
    fixture_write_png(name, 2 * SIDE, 2 * SIDE, 3, pixels);
}

static const char *const train_lines =
    "{\"id\": \"10\", \"label\": \"positive\", \"text\": \"Happy happy day! Happy cat\", "
    "\"img\": \"data/10.jpg\"}\n"
    "{\"id\": 11, \"label\": \"negative\", \"text\": \"Sad day... #sad\", "
    "\"img\": \"data/11.png\"}\n"
    "\n"
    "{\"id\": \"12\", \"label\": \"neutral\", \"text\": \"\", \"img\": \"data/12.png\"}\n";
static const char *const dev_lines =
    "{\"id\": \"20\", \"label\": \"positive\", \"text\": \"happy DOG day\", "
    "\"img\": \"data/20.png\"}\n";
static const char *const test_lines =
    "{\"id\": \"30\", \"label\": \"negative\", \"text\": \"one two three four five six day\", "
    "\"img\": \"data/30.jpg\"}";

/* Writes folder `name` with the three JSONL files above and their images. */
static void make_set(const char *name) {
    char rel[256];
    fixture_remove_tree(name);
    snprintf(rel, sizeof(rel), "%s/data", name);
    fixture_mkdir(rel);
    const char *files[3][2] = {{"train.jsonl", train_lines},
                               {"dev.jsonl", dev_lines},
                               {"test.jsonl", test_lines}};
    for (int f = 0; f < 3; f++) {
        snprintf(rel, sizeof(rel), "%s/%s", name, files[f][0]);
        fixture_write_text(rel, files[f][1]);
    }
    snprintf(rel, sizeof(rel), "%s/data/10.jpg", name);
    fixture_write_jpeg_colour(rel, 2 * SIDE, 2 * SIDE, 200, 40, 40);
    snprintf(rel, sizeof(rel), "%s/data/30.jpg", name);
    fixture_write_jpeg_colour(rel, 24, 12, 30, 120, 220);
    const char *pngs[] = {"11", "12", "20"};
    for (int k = 0; k < 3; k++) {
        snprintf(rel, sizeof(rel), "%s/data/%s.png", name, pngs[k]);
        write_block_png(rel);
    }
}

static int find_id(const Dataset *ds, const char *id) {
    for (int i = 0; i < ds->n; i++)
        if (strcmp(ds->ids[i], id) == 0)
            return i;
    fail_msg("id %s not found", id);
    return -1;
}

static void expect_tokens(const Dataset *ds, const char *id, const int32_t *expected,
                          int length) {
    const Modality *text = &ds->mod[1];
    int i = find_id(ds, id);
    assert_int_equal(text->lengths[i], length);
    for (int k = 0; k < text->t; k++)
        assert_int_equal(text->tokens[(size_t)i * text->t + k], expected[k]);
}

/* Reads the string array at h5path into `out` (at most `cap` entries); returns the count. */
static int read_strings(const char *path, const char *h5path, char out[][32], int cap) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, h5path, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t space = H5Dget_space(d);
    int n = (int)H5Sget_simple_extent_npoints(space);
    assert_true(n <= cap);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    char *raw[64];
    assert_true(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0);
    for (int i = 0; i < n; i++) {
        snprintf(out[i], 32, "%s", raw[i]);
        H5free_memory(raw[i]);
    }
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
    return n;
}

static void mvsa_labels_ids_tokens(void **state) {
    make_set("mvsa");
    const char *out = fixture_path("mvsa.h5");
    MvsaImportOptions o;
    mvsa_import_defaults(&o);
    o.size = SIDE;
    o.max_tokens = 5;
    ImportSummary s;
    assert_int_equal(mvsa_import(fixture_path("mvsa"), out, &o, &s), 0);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.vocab, 7);
    assert_int_equal(s.truncated, 1);
    assert_int_equal(s.longest, 7);
    assert_int_equal(s.empty_texts, 1);
    assert_int_equal(s.unknown_words, 6);

    Dataset ds;
    assert_int_equal(dataset_load_h5(out, NULL, &ds), 0);
    assert_string_equal(ds.name, "mvsa-single");
    assert_int_equal(ds.num_classes, 3);
    assert_string_equal(ds.class_names[0], "positive");
    assert_string_equal(ds.class_names[1], "neutral");
    assert_string_equal(ds.class_names[2], "negative");
    assert_string_equal(ds.mod[0].name, "image");
    assert_string_equal(ds.mod[1].name, "text");
    assert_int_equal(ds.mod[1].kind, EUAR_KIND_TOKENS);
    assert_int_equal(ds.mod[1].vocab, 7);
    assert_int_equal(ds.mod[1].t, 5);
    const char *ids[] = {"10", "11", "12", "20", "30"};
    const int classes[] = {0, 2, 1, 0, 2};
    const int splits[] = {EUAR_SPLIT_TRAIN, EUAR_SPLIT_TRAIN, EUAR_SPLIT_TRAIN,
                          EUAR_SPLIT_VALID, EUAR_SPLIT_TEST};
    for (int k = 0; k < 5; k++) {
        int i = find_id(&ds, ids[k]);
        assert_int_equal(ds.classes[i], classes[k]);
        assert_int_equal(ds.split[i], splits[k]);
    }

    /* Train counts are happy 3, day 2, sad 2 and cat 1, so their ids are 3, 4, 5 and 6 (ties
     * in byte order). "dog" and the words of the test text are unknown (2). */
    const int32_t t10[5] = {3, 3, 4, 3, 6}, t11[5] = {5, 4, 5, 0, 0}, t12[5] = {0};
    const int32_t t20[5] = {3, 2, 4, 0, 0}, t30[5] = {2, 2, 2, 2, 2};
    expect_tokens(&ds, "10", t10, 5);
    expect_tokens(&ds, "11", t11, 3);
    expect_tokens(&ds, "12", t12, 0);
    /* A text without words is unavailable, as in the pickle importer; the others are not. */
    for (int k = 0; k < 5; k++)
        assert_int_equal(ds.mod[1].available[find_id(&ds, ids[k])], k == 2 ? 0 : 1);
    assert_int_equal(s.invalid_utf8, 0);
    expect_tokens(&ds, "20", t20, 3);
    expect_tokens(&ds, "30", t30, 5);

    char vocab[16][32];
    assert_int_equal(read_strings(out, "/modalities/text/vocabulary", vocab, 16), 7);
    const char *expected_vocab[] = {"<pad>", "<blank>", "<unk>", "happy", "day", "sad", "cat"};
    for (int k = 0; k < 7; k++)
        assert_string_equal(vocab[k], expected_vocab[k]);

    const size_t plane = SIDE * SIDE;
    const uint8_t *png = ds.mod[0].pixels + (size_t)find_id(&ds, "11") * 3 * plane;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++)
                assert_int_equal(png[c * plane + y * SIDE + x], block_level(x, y, c));
    const int colours[2][3] = {{200, 40, 40}, {30, 120, 220}};
    const char *jpegs[2] = {"10", "30"};
    for (int j = 0; j < 2; j++) {
        const uint8_t *p = ds.mod[0].pixels + (size_t)find_id(&ds, jpegs[j]) * 3 * plane;
        for (int c = 0; c < 3; c++)
            for (size_t q = 0; q < plane; q++)
                assert_in_range(p[c * plane + q], colours[j][c] - 3, colours[j][c] + 3);
    }
    dataset_free(&ds);
}

static void mvsa_absolute_image_and_latin1(void **state) {
    make_set("mvsa-abs");
    /* An absolute "img" path is read as it is, not joined to the folder. */
    char line[1024];
    snprintf(line, sizeof(line),
             "{\"id\": \"20\", \"label\": \"positive\", \"text\": \"caf\xe9 happy\", "
             "\"img\": \"%s\"}\n",
             fixture_path("mvsa-abs/data/20.png"));
    fixture_write_text("mvsa-abs/dev.jsonl", line);
    const char *out = fixture_path("mvsa-abs.h5");
    MvsaImportOptions o;
    mvsa_import_defaults(&o);
    o.size = SIDE;
    ImportSummary s;
    if (mvsa_import(fixture_path("mvsa-abs"), out, &o, &s) != 0)
        fail_msg("import failed: %s", err_get());
    /* The Latin-1 byte 0xE9 is invalid UTF-8: the text is counted. */
    assert_int_equal(s.invalid_utf8, 1);
    assert_string_equal(s.first_invalid_utf8, "20");
}

static void mvsa_rejects_bad_name_and_out(void **state) {
    make_set("mvsa-name");
    MvsaImportOptions o;
    mvsa_import_defaults(&o);
    o.size = SIDE;
    const char *out = fixture_path("mvsa-name.h5");
    o.name = "";
    const char *empty[] = {"--name: '' has 0 bytes", NULL};
    fixture_expect_failure(mvsa_import(fixture_path("mvsa-name"), out, &o, NULL), out, empty);
    o.name = "mvsa/single";
    const char *slash[] = {"--name: 'mvsa/single' contains '/'", NULL};
    fixture_expect_failure(mvsa_import(fixture_path("mvsa-name"), out, &o, NULL), out, slash);
    o.name = NULL;
    const char *no_folder[] = {"--out: folder ", "no-such does not exist; create it first",
                               NULL};
    const char *deep = fixture_path("no-such/out.h5");
    fixture_expect_failure(mvsa_import(fixture_path("mvsa-name"), deep, &o, NULL), deep,
                           no_folder);
}

static void mvsa_min_count(void **state) {
    make_set("mvsa-min");
    const char *out = fixture_path("mvsa-min.h5");
    MvsaImportOptions o;
    mvsa_import_defaults(&o);
    o.size = SIDE;
    o.max_tokens = 5;
    o.min_count = 2;
    ImportSummary s;
    assert_int_equal(mvsa_import(fixture_path("mvsa-min"), out, &o, &s), 0);
    assert_int_equal(s.vocab, 6);
    Dataset ds;
    assert_int_equal(dataset_load_h5(out, NULL, &ds), 0);
    const int32_t t10[5] = {3, 3, 4, 3, 2};
    expect_tokens(&ds, "10", t10, 5);
    dataset_free(&ds);
}

/* Rewrites file `file` of a fresh copy of the set with `text`, imports it, and expects a
 * failure whose message has each of `parts`. */
static void expect_mvsa_failure(const char *file, const char *text, const char *const *parts) {
    make_set("bad");
    char rel[256];
    snprintf(rel, sizeof(rel), "bad/%s", file);
    if (text)
        fixture_write_text(rel, text);
    else
        remove(fixture_path(rel));
    MvsaImportOptions o;
    mvsa_import_defaults(&o);
    o.size = SIDE;
    const char *out = fixture_path("failed.h5");
    fixture_expect_failure(mvsa_import(fixture_path("bad"), out, &o, NULL), out, parts);
}

static void mvsa_rejects_bad_lines(void **state) {
    const char *invalid[] = {"bad/dev.jsonl line 2", "invalid JSON",
                             "at column 21 (near \":\")", NULL};
    expect_mvsa_failure("dev.jsonl",
                        "{\"id\": \"20\", \"label\": \"positive\", \"text\": \"a\", "
                        "\"img\": \"data/20.png\"}\n{\"id\": \"21\", \"label\": \n",
                        invalid);
    const char *bad_token[] = {"bad/train.jsonl line 1", "invalid JSON at column 22",
                               "near \"\"x\", \"text\"", NULL};
    expect_mvsa_failure("train.jsonl", "{\"id\": \"21\", \"label\" \"x\", \"text\": \"a\"}\n",
                        bad_token);
    const char *trailing[] = {"bad/test.jsonl line 2", "unexpected text at column 14", NULL};
    expect_mvsa_failure("test.jsonl",
                        "{\"id\": \"30\", \"label\": \"negative\", \"text\": \"a\", "
                        "\"img\": \"data/30.jpg\"}\r\n{\"id\": \"31\"} trailing\n",
                        trailing);
    const char *not_object[] = {"bad/test.jsonl line 1", "expected a JSON object", NULL};
    expect_mvsa_failure("test.jsonl", "[1, 2]\n", not_object);
    const char *missing[] = {"bad/train.jsonl line 1", "missing field \"img\"", NULL};
    expect_mvsa_failure("train.jsonl",
                        "{\"id\": \"10\", \"label\": \"positive\", \"text\": \"a\"}\n",
                        missing);
    const char *wrong_type[] = {"bad/train.jsonl line 1", "field \"text\" is 5",
                                "expected a string", NULL};
    expect_mvsa_failure("train.jsonl",
                        "{\"id\": \"10\", \"label\": \"positive\", \"text\": 5, "
                        "\"img\": \"data/10.jpg\"}\n",
                        wrong_type);
    const char *label[] = {"bad/test.jsonl line 1", "label \"Positive\" is unknown",
                           "positive, neutral or negative", NULL};
    expect_mvsa_failure("test.jsonl",
                        "{\"id\": \"30\", \"label\": \"Positive\", \"text\": \"a\", "
                        "\"img\": \"data/30.jpg\"}\n",
                        label);
    const char *duplicate[] = {"duplicate id \"10\"", "bad/train.jsonl line 1",
                               "bad/test.jsonl line 1", NULL};
    expect_mvsa_failure("test.jsonl",
                        "{\"id\": 10, \"label\": \"negative\", \"text\": \"a\", "
                        "\"img\": \"data/30.jpg\"}\n",
                        duplicate);
}

static void mvsa_rejects_bad_files(void **state) {
    const char *empty[] = {"bad/dev.jsonl", "no samples", "valid split would be empty", NULL};
    expect_mvsa_failure("dev.jsonl", "\n  \n", empty);
    const char *no_file[] = {"bad/test.jsonl", "cannot read the split file", NULL};
    expect_mvsa_failure("test.jsonl", NULL, no_file);
    const char *no_image[] = {"bad/train.jsonl line 4", "data/12.png", "image file not found",
                              NULL};
    expect_mvsa_failure("data/12.png", NULL, no_image);
    const char *corrupt[] = {"bad/test.jsonl line 1", "bad/data/30.jpg",
                             "not a readable image", NULL};
    expect_mvsa_failure("data/30.jpg", "plain text in a .jpg file\n", corrupt);

    /* A JPEG cut in half: stb_image stops at the missing marker instead of guessing. */
    make_set("bad");
    FILE *f = fopen(fixture_path("bad/data/10.jpg"), "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    fclose(f);
    fixture_truncate("bad/data/10.jpg", size / 2);
    MvsaImportOptions o;
    mvsa_import_defaults(&o);
    const char *out = fixture_path("failed.h5");
    const char *truncated[] = {"bad/train.jsonl line 1", "bad/data/10.jpg",
                               "not a readable image", NULL};
    fixture_expect_failure(mvsa_import(fixture_path("bad"), out, &o, NULL), out, truncated);
}

static int setup(void **state) {
    return fixture_setup("import-mvsa");
}

static int teardown(void **state) {
    return fixture_teardown();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mvsa_labels_ids_tokens),
        cmocka_unit_test(mvsa_min_count),
        cmocka_unit_test(mvsa_absolute_image_and_latin1),
        cmocka_unit_test(mvsa_rejects_bad_name_and_out),
        cmocka_unit_test(mvsa_rejects_bad_lines),
        cmocka_unit_test(mvsa_rejects_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
