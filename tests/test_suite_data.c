/* Tests of the data files behind a suite's results. They cover the file hash and its cache,
 * results of an earlier version of a data file planned again, the results folder of another
 * suite's data, the pre-flight read of NaN features, the report's check of mixed data file
 * versions, and the plot ranges of equal values. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/tmp_dir.h"

#include "core/common.h"
#include "core/file_hash.h"
#include "datasets/dataset.h"
#include "report/data_files.h"
#include "report/plots.h"
#include "suites/suite.h"

static void write_bytes(const char *path, const unsigned char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    write_bytes(path, (const unsigned char *)text, strlen(text));
}

static uint64_t hash_of(const char *path) {
    uint64_t h = 0;
    if (file_hash_compute(path, &h) != 0)
        fail_msg("%s", err_get());
    return h;
}

/* ---- file hash ---- */

/* Equal bytes give equal hashes. Any changed byte (in a full stripe, in the tail or past the
 * first 4 MiB block) and any change of length change the hash. */
static void file_hash_content(void **state) {
    size_t len = (5u << 20) + 13;
    unsigned char *data = xmalloc(len);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 131u + (i >> 9));
    const char *a = tmp_path("a.bin"), *b = tmp_path("b.bin");
    write_bytes(a, data, len);
    write_bytes(b, data, len);
    uint64_t base = hash_of(a);
    assert_true(base == hash_of(b));
    size_t at[] = {0, 31, 1000, (4u << 20) + 3, len - 1};
    for (size_t k = 0; k < EUAR_ARRAY_LEN(at); k++) {
        data[at[k]] ^= 0x10;
        write_bytes(b, data, len);
        if (hash_of(b) == base)
            fail_msg("a change at byte %zu kept the hash", at[k]);
        data[at[k]] ^= 0x10;
    }
    /* Zero bytes appended, and a file cut short by one byte. */
    unsigned char *longer = xcalloc(len + 8, 1);
    memcpy(longer, data, len);
    write_bytes(b, longer, len + 8);
    assert_true(hash_of(b) != base);
    write_bytes(b, data, len - 1);
    assert_true(hash_of(b) != base);
    write_bytes(b, data, 0);
    assert_true(hash_of(b) != base);
    free(longer);
    free(data);
    uint64_t h;
    assert_int_equal(file_hash_compute(tmp_path("absent.bin"), &h), -1);
    assert_non_null(strstr(err_get(), "absent.bin"));
}

/* The cache gives the hash of a file with the same path, size and modification time. A changed
 * file is hashed again, and the lines of other files stay. */
static void file_hash_cache(void **state) {
    const char *data = tmp_path("cached.bin"), *other = tmp_path("other.bin");
    const char *cache = tmp_path("hashes.txt");
    write_text(data, "first version of the data");
    write_text(other, "another file");
    uint64_t h, real = hash_of(data), other_hash;
    assert_int_equal(file_hash_cached_read_only(other, cache, &other_hash), 0);
    assert_false(file_exists(cache));
    assert_int_equal(file_hash_cached(other, cache, &other_hash), 0);
    assert_int_equal(file_hash_cached(data, cache, &h), 0);
    assert_true(h == real);
    /* Replace the hash of the cached line: a lookup must now return it unread. */
    char *text = read_file_text(cache, NULL);
    assert_non_null(text);
    char *line = strstr(text, data);
    assert_non_null(line);
    while (line > text && line[-1] != '\n')
        line--;
    memcpy(line, "00000000000000aa", 16);
    write_text(cache, text);
    free(text);
    assert_int_equal(file_hash_cached(data, cache, &h), 0);
    assert_true(h == 0xaa);
    /* A new modification time makes the line stale. */
    struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 5}};
    assert_int_equal(utimensat(AT_FDCWD, data, times, 0), 0);
    assert_int_equal(file_hash_cached(data, cache, &h), 0);
    assert_true(h == real);
    /* So does a new size, with the same time. */
    write_text(data, "second, longer version of the data");
    assert_int_equal(utimensat(AT_FDCWD, data, times, 0), 0);
    assert_int_equal(file_hash_cached(data, cache, &h), 0);
    assert_true(h == hash_of(data) && h != real);
    assert_int_equal(file_hash_cached(other, cache, &h), 0);
    assert_true(h == other_hash);
    text = read_file_text(cache, NULL);
    assert_non_null(strstr(text, other));
    free(text);
    /* Without a cache the file is hashed; a missing file is an error naming it. */
    assert_int_equal(file_hash_cached(data, NULL, &h), 0);
    assert_int_equal(file_hash_cached(tmp_path("gone.bin"), cache, &h), -1);
    assert_non_null(strstr(err_get(), "gone.bin"));
}

/* ---- suites ---- */

/* Writes a small synth-mosi (16 samples) made with `seed` to the temporary folder. */
static const char *write_mosi(const char *name, uint64_t seed) {
    static const int sizes[EUAR_SPLIT_COUNT] = {8, 4, 4};
    const char *path = tmp_path(name);
    if (synth_sentiment_write_sized(path, "mosi", seed, sizes) != 0)
        fail_msg("%s", err_get());
    return path;
}

/* Writes and loads a suite named `name` with one dataset labelled `label` at `data`. */
static void load_suite(Suite *s, const char *name, const char *label, const char *data,
                       const char *seeds, const char *extra) {
    char text[2048], file[64];
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"%s\", \"table\": \"main\", "
             "\"models\": [\"euar\"], \"seeds\": %s, \"datasets\": [{\"label\": \"%s\", "
             "\"path\": \"%s\"%s, \"conditions\": [{\"label\": \"T\", "
             "\"noise\": \"missing:keep=text\"}]}]}", name, seeds, label, data, extra);
    snprintf(file, sizeof(file), "%s.json", name);
    const char *path = tmp_path(file);
    write_text(path, text);
    if (suite_load(path, s) != 0)
        fail_msg("%s", err_get());
}

static void write_result(const char *dir, const SuiteCell *c, const char *file_hash) {
    char path[EUAR_SUITE_PATH_LEN + 32], text[256];
    suite_result_path(dir, c, path, sizeof(path));
    if (file_hash)
        snprintf(text, sizeof(text), "{\"status\": \"ok\", \"data_file_hash\": \"%s\"}",
                 file_hash);
    else
        snprintf(text, sizeof(text), "{\"status\": \"ok\"}");
    write_text(path, text);
}

/* A finished result of another version of the data file is planned again; one without the
 * field (an older result) stays finished. */
static void plan_changed_data_file(void **state) {
    const char *data = write_mosi("plan.h5", 1);
    Suite s;
    load_suite(&s, "changed", "d", data, "[1, 2, 3]", "");
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 3);
    const char *dir = tmp_path("changed-results");
    assert_int_equal(make_dirs(dir), 0);
    char current[17];
    snprintf(current, sizeof(current), "%016" PRIx64, hash_of(data));
    write_result(dir, &cells[0], current);
    write_result(dir, &cells[1], "0123456789abcdef");
    write_result(dir, &cells[2], NULL);
    SuiteCellPlan plan[3];
    /* A dry run plans the same and writes no cache. */
    char cache[EUAR_SUITE_PATH_LEN + 32];
    suite_hash_cache_path(dir, cache, sizeof(cache));
    suite_plan_read_only(cells, n, dir, plan);
    assert_int_equal(plan[0], EUAR_CELL_SKIP);
    assert_int_equal(plan[1], EUAR_CELL_STALE);
    assert_int_equal(plan[2], EUAR_CELL_SKIP);
    assert_false(file_exists(cache));
    suite_plan(cells, n, dir, plan);
    assert_int_equal(plan[0], EUAR_CELL_SKIP);
    assert_int_equal(plan[1], EUAR_CELL_STALE);
    assert_int_equal(plan[2], EUAR_CELL_SKIP);
    /* The planner cached the hash in the results folder. */
    assert_true(file_exists(cache));
    /* Regenerated with other content at the same path: the first cell is stale too. */
    write_mosi("plan.h5", 2);
    suite_plan(cells, n, dir, plan);
    assert_int_equal(plan[0], EUAR_CELL_STALE);
    assert_int_equal(plan[1], EUAR_CELL_STALE);
    assert_int_equal(plan[2], EUAR_CELL_SKIP);
    /* The worker's command line names the cache. */
    char **argv = suite_cell_argv(&cells[0], "/opt/euar", dir);
    int found = 0;
    for (char **p = argv; *p; p++)
        found |= strcmp(*p, "--data-hash-cache") == 0 && p[1] && strcmp(p[1], cache) == 0;
    assert_true(found);
    suite_argv_free(argv);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* A worker that records a data_file_hash no file has, so that every finished cell is stale
 * on the next run. */
static const char stale_worker[] =
    "#!/bin/sh\n"
    "out=''\n"
    "while [ $# -gt 0 ]; do\n"
    "  case \"$1\" in --out) out=\"$2\"; shift;; esac\n"
    "  shift\n"
    "done\n"
    "printf '{\"status\": \"ok\", \"data_file_hash\": \"00000000000000ff\"}' > \"$out\"\n"
    "echo ran >> \"$(dirname \"$out\")/runs.txt\"\n";

/* suite_run() runs the stale cells again and leaves finished ones. */
static void runner_reruns_changed_data(void **state) {
    const char *data = write_mosi("rerun.h5", 1);
    const char *exe = tmp_path("stale-worker.sh");
    write_text(exe, stale_worker);
    assert_int_equal(chmod(exe, 0755), 0);
    Suite s;
    load_suite(&s, "rerun", "d", data, "[1, 2]", "");
    const char *dir = tmp_path("rerun-results");
    SuiteRunOptions opt = {.jobs = 1, .results = dir, .exe = exe};
    assert_int_equal(suite_run(&s, &opt), 0);
    assert_int_equal(suite_run(&s, &opt), 0);
    char runs[EUAR_SUITE_PATH_LEN + 16];
    snprintf(runs, sizeof(runs), "%s/runs.txt", dir);
    char *text = read_file_text(runs, NULL);
    assert_non_null(text);
    int count = 0;
    for (char *p = text; (p = strstr(p, "ran")) != NULL; p++)
        count++;
    assert_int_equal(count, 4);
    free(text);
    suite_free(&s);
}

/* A suite is rejected in a results folder where its dataset label named another file. The
 * same suite, and the same suite with one more cell, are accepted. */
static void results_dir_other_data(void **state) {
    const char *first = write_mosi("first.h5", 1), *second = write_mosi("second.h5", 2);
    const char *dir = tmp_path("shared-results");
    assert_int_equal(make_dirs(dir), 0);
    Suite s;
    load_suite(&s, "shared", "d", first, "[1]", "");
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(suite_write_resolved(&s, 0, cells, n, dir), 0);
    suite_cells_free(cells, n);
    assert_int_equal(suite_check_results_dir(&s, 0, dir), 0);
    suite_free(&s);

    load_suite(&s, "shared", "d", first, "[1, 2]", "");
    assert_int_equal(suite_check_results_dir(&s, 0, dir), 0);
    suite_free(&s);

    char record[EUAR_SUITE_PATH_LEN + 16];
    snprintf(record, sizeof(record), "%s/suite.json", dir);
    char *before = read_file_text(record, NULL);
    load_suite(&s, "shared", "d", second, "[1]", "");
    assert_int_equal(suite_check_results_dir(&s, 0, dir), -1);
    const char *needles[] = {first, second, "\"name\"", "--results", "'d'"};
    for (size_t k = 0; k < EUAR_ARRAY_LEN(needles); k++)
        if (!strstr(err_get(), needles[k]))
            fail_msg("expected '%s' in: %s", needles[k], err_get());
    /* The runner stops before it writes anything. */
    SuiteRunOptions opt = {.jobs = 1, .results = dir, .exe = "/bin/false"};
    assert_int_equal(suite_run(&s, &opt), 1);
    opt.dry_run = 1;
    assert_int_equal(suite_run(&s, &opt), 1);
    char *after = read_file_text(record, NULL);
    assert_string_equal(before, after);
    free(before);
    free(after);
    suite_free(&s);
}

/* Sets one text feature of a dataset file to NaN. */
static void poison_features(const char *path) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "/modalities/text/data", H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t space = H5Dget_space(d);
    hssize_t count = H5Sget_simple_extent_npoints(space);
    float *x = xmalloc(sizeof(float) * (size_t)count);
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    x[count / 2] = NAN;
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    free(x);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
}

/* NaN features fail the pre-flight check with the reader's message before anything is
 * written, unless the dataset reads them as 0. */
static void preflight_nonfinite(void **state) {
    const char *data = write_mosi("nan.h5", 1);
    poison_features(data);
    Suite s;
    load_suite(&s, "nan", "d", data, "[1]", "");
    const char *dir = tmp_path("nan-results");
    SuiteRunOptions opt = {.jobs = 1, .results = dir, .exe = "/bin/false"};
    assert_int_equal(suite_run(&s, &opt), 1);
    const char *needles[] = {data, "/modalities/text/data", "non-finite", "\"nonfinite\""};
    for (size_t k = 0; k < EUAR_ARRAY_LEN(needles); k++)
        if (!strstr(err_get(), needles[k]))
            fail_msg("expected '%s' in: %s", needles[k], err_get());
    assert_false(file_exists(dir));
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    int todo = 0;
    assert_int_equal(suite_preflight(&s, cells, &todo, 1), -1);
    suite_cells_free(cells, n);
    suite_free(&s);

    load_suite(&s, "nanzero", "d", data, "[1]", ", \"nonfinite\": \"zero\"");
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    if (suite_preflight(&s, cells, &todo, 1) != 0)
        fail_msg("%s", err_get());
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* ---- report ---- */

static void report_mixed_data_files(void **state) {
    DataFileCheck check = {0};
    data_files_note(&check, "s", "a", 1, "r1.json");
    data_files_note(&check, "s", "a", 1, "r2.json");
    data_files_note(&check, "s", "b", 2, "r3.json");
    data_files_note(&check, "t", "a", 3, "r4.json");
    assert_int_equal(data_files_warn(&check), 0);
    data_files_note(&check, "s", "a", 4, "r5.json");
    assert_int_equal(data_files_warn(&check), 1);
    data_files_note(&check, "s", "b", 2, "r6.json");
    data_files_note(&check, "t", "a", 5, "r7.json");
    assert_int_equal(data_files_warn(&check), 2);
    data_files_free(&check);
}

/* Equal values get a range with a margin; differing values or none get nothing. */
static void flat_axis_range(void **state) {
    TextBuf gp = {NULL, 0, 0};
    report_gp_flat_range(&gp, "y", 45.4545, 45.4545);
    char *text = text_finish(&gp);
    double lo, hi;
    assert_int_equal(sscanf(text, "set yrange [%lf:%lf]", &lo, &hi), 2);
    assert_true(lo < 45.4545 - 0.5 && hi > 45.4545 + 0.5);
    free(text);
    TextBuf zero = {NULL, 0, 0};
    report_gp_flat_range(&zero, "y", 0.0, 0.0);
    text = text_finish(&zero);
    assert_int_equal(sscanf(text, "set yrange [%lf:%lf]", &lo, &hi), 2);
    assert_true(lo < 0.0 && hi > 0.0);
    free(text);
    TextBuf none = {NULL, 0, 0};
    report_gp_flat_range(&none, "y", 40.0, 45.0);
    report_gp_flat_range(&none, "x", INFINITY, -INFINITY);
    text = text_finish(&none);
    assert_true(text == NULL || text[0] == '\0');
    free(text);
}

/* The extent of values with error bars skips values that are not finite. */
static void range_add_extent(void **state) {
    double lo = INFINITY, hi = -INFINITY;
    report_gp_range_add(&lo, &hi, 50.0, 2.0);
    report_gp_range_add(&lo, &hi, NAN, 1.0);
    report_gp_range_add(&lo, &hi, 51.0, NAN);
    assert_true(lo == 48.0);
    assert_true(hi == 52.0);
    report_gp_range_add(&lo, &hi, -INFINITY, 0.0);
    assert_true(lo == 48.0);
}

static int setup(void **state) {
    return tmp_dir_setup("suite-data");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(file_hash_content),
        cmocka_unit_test(file_hash_cache),
        cmocka_unit_test(plan_changed_data_file),
        cmocka_unit_test(runner_reruns_changed_data),
        cmocka_unit_test(results_dir_other_data),
        cmocka_unit_test(preflight_nonfinite),
        cmocka_unit_test(report_mixed_data_files),
        cmocka_unit_test(flat_axis_range),
        cmocka_unit_test(range_add_extent),
    };
    return cmocka_run_group_tests(tests, setup, tmp_dir_teardown);
}
