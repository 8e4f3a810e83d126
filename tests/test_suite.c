/* Suite files: parsing, rejections, grid expansion, hashes, resume planning, worker commands
 * and the runner with a stand-in worker script. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "core/common.h"
#include "core/model.h"
#include "core/result.h"
#include "core/settings.h"
#include "datasets/dataset.h"
#include "suites/suite.h"

/* Suite file of the repository; the tests run from the repository root. */
#define MISSING_SUITE "suites/missing.json"
#define NOISE_SUITE "suites/noise.json"

static char temp_dir[256];

static int setup_temp(void **state) {
    snprintf(temp_dir, sizeof(temp_dir), "/tmp/euar-test-suite-XXXXXX");
    return mkdtemp(temp_dir) ? 0 : -1;
}

static int teardown_temp(void **state) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", temp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const SuiteCell *find_cell(const SuiteCell *cells, int n, const char *dataset,
                                  const char *condition, const char *model, uint64_t seed) {
    for (int i = 0; i < n; i++)
        if (!strcmp(cells[i].dataset, dataset) && !strcmp(cells[i].condition, condition) &&
            !strcmp(cells[i].model, model) && cells[i].seed == seed)
            return &cells[i];
    return NULL;
}

/* ---- the suite file of the repository ---- */

static void missing_suite_full(void **state) {
    Suite s;
    if (suite_load(MISSING_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    assert_string_equal(s.name, "missing");
    assert_int_equal(s.num_datasets, 2);
    assert_int_equal(s.datasets[0].num_conditions, 7);
    assert_int_equal(s.datasets[1].num_conditions, 3);
    assert_string_equal(s.datasets[0].conditions[3].noise, "missing:keep=text,audio,phase=both");

    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, (7 + 3) * 4 * 3);
    const SuiteCell *c = find_cell(cells, n, "synth-mosi", "T+A", "mlp-moe", 2);
    assert_non_null(c);
    assert_int_equal(c->condition_index, 3);
    assert_int_equal(c->model_index, 3);
    assert_int_equal(c->settings.batch, 16);
    assert_int_equal(c->settings.epochs, 100);
    assert_int_equal((int)c->settings.seed, 2);
    assert_int_equal(c->settings.max_train, 0);
    c = find_cell(cells, n, "fmnist-2view", "image+thumbnail", "euar", 3);
    assert_non_null(c);
    assert_int_equal(c->settings.batch, 64);
    assert_int_equal(c->settings.epochs, 5);
    /* Every cell has its own result file. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(cells[i].hash, cells[j].hash) == 0)
                fail_msg("cells %d and %d share hash %s", i, j, cells[i].hash);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void missing_suite_quick(void **state) {
    Suite s;
    if (suite_load(MISSING_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    assert_int_equal(n, (7 + 3) * 4 * 1);
    const SuiteCell *c = find_cell(cells, n, "synth-mosi", "V", "late", 1);
    assert_non_null(c);
    assert_int_equal(c->settings.epochs, 2);
    assert_int_equal(c->settings.max_train, 128);
    assert_int_equal(c->settings.batch, 16);
    c = find_cell(cells, n, "fmnist-2view", "thumbnail", "concat", 1);
    assert_non_null(c);
    assert_int_equal(c->settings.epochs, 2);
    assert_int_equal(c->settings.max_train, 256);
    assert_int_equal(c->settings.batch, 64);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* Pinned hashes of missing.json cells. Cells of training conditions have no test_noise lines,
 * so their result files keep the names earlier versions gave them. Adding a setting to
 * core/settings.h changes every hash by design, and these values then need updating. */
static void missing_hashes_pinned(void **state) {
    static const struct {
        int quick;
        const char *condition, *model;
        uint64_t seed;
        const char *dataset, *hash;
    } pinned[] = {
        {0, "T+A", "euar", 2, "synth-mosi", "9f2a16bebdd0a8d3"},
        {0, "image+thumbnail", "late", 3, "fmnist-2view", "1140e848dc19773a"},
        {1, "V", "late", 1, "synth-mosi", "6a87793eb3c49d58"},
        {1, "thumbnail", "concat", 1, "fmnist-2view", "7abe070086ef7bc5"},
    };
    Suite s;
    if (suite_load(MISSING_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    for (size_t i = 0; i < EUAR_ARRAY_LEN(pinned); i++) {
        SuiteCell *cells;
        int n;
        assert_int_equal(suite_expand(&s, pinned[i].quick, &cells, &n), 0);
        const SuiteCell *c = find_cell(cells, n, pinned[i].dataset, pinned[i].condition,
                                       pinned[i].model, pinned[i].seed);
        assert_non_null(c);
        assert_int_equal(c->num_tests, 0);
        if (strcmp(c->hash, pinned[i].hash) != 0)
            fail_msg("%s/%s/%s/%d: hash %s, pinned %s", pinned[i].dataset, pinned[i].condition,
                     pinned[i].model, (int)pinned[i].seed, c->hash, pinned[i].hash);
        suite_cells_free(cells, n);
    }
    suite_free(&s);
}

/* ---- rejections ---- */

/* Parts of a small suite; NULL keeps the default of each part. */
typedef struct {
    const char *models, *seeds, *settings, *dataset_settings, *conditions, *extra;
} SuiteParts;

static void suite_text(char *buf, size_t cap, const SuiteParts *p) {
    snprintf(buf, cap,
             "{\"format_version\": 1, \"name\": \"t\", \"table\": \"main\",\n"
             " \"models\": %s, \"seeds\": %s, \"settings\": %s,\n"
             " \"datasets\": [{\"label\": \"d\", \"path\": \"d.h5\", \"settings\": %s,\n"
             "                \"conditions\": %s}]%s}\n",
             p->models ? p->models : "[\"euar\", \"concat\"]", p->seeds ? p->seeds : "[1, 2]",
             p->settings ? p->settings : "{\"epochs\": 3}",
             p->dataset_settings ? p->dataset_settings : "{\"batch\": \"8\"}",
             p->conditions ? p->conditions
                           : "[{\"label\": \"T\", \"noise\": \"missing:keep=text\"}, "
                             "{\"label\": \"clean\"}]",
             p->extra ? p->extra : "");
}

static void suite_parts_valid(void **state) {
    char text[2048], path[300];
    SuiteParts parts = {0};
    suite_text(text, sizeof(text), &parts);
    snprintf(path, sizeof(path), "%s/good.json", temp_dir);
    write_text(path, text);
    Suite s;
    if (suite_load(path, &s) != 0)
        fail_msg("%s", err_get());
    assert_int_equal(s.grid.num_models, 2);
    assert_string_equal(s.datasets[0].conditions[1].noise, "none");
    assert_int_equal(s.has_quick, 0);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 8);
    assert_int_equal(cells[0].settings.epochs, 3);
    assert_int_equal(cells[0].settings.batch, 8);
    suite_cells_free(cells, n);
    assert_int_equal(suite_expand(&s, 1, &cells, &n), -1);
    assert_non_null(strstr(err_get(), "has no \"quick\" object"));
    suite_free(&s);
}

static void suite_rejections(void **state) {
    static const struct {
        const char *name;
        SuiteParts parts;
        const char *raw; /* whole file instead of parts */
        const char *expect[2];
    } cases[] = {
        {"invalid-json", {0}, "{\"format_version\": 1,\n  \"name\": \"t\",,\n}",
         {"invalid JSON at line 2, column", NULL}},
        {"truncated", {0}, "{\"format_version\": 1, \"name\": ", {"invalid JSON at line 1", NULL}},
        {"top-array", {0}, "[1, 2]", {"expected a JSON object at the top level", NULL}},
        {"unknown-top-key", {.extra = ", \"colour\": \"red\""}, NULL,
         {"unknown key \"colour\"", NULL}},
        {"unknown-dataset-key", {.conditions = "[{\"label\": \"T\"}], \"colour\": 1"}, NULL,
         {"datasets[0]: unknown key \"colour\"", NULL}},
        {"unknown-condition-key", {.conditions = "[{\"label\": \"T\", \"noize\": \"none\"}]"},
         NULL, {"datasets[0].conditions[0]: unknown key \"noize\"", NULL}},
        {"seeds-type", {.seeds = "\"1\""}, NULL,
         {"seeds: expected an array of integer seeds, found a string", NULL}},
        {"seed-fraction", {.seeds = "[1, 2.5]"}, NULL, {"seeds[1]: invalid value 2.5", NULL}},
        {"seed-negative", {.seeds = "[-1]"}, NULL, {"seeds[0]: invalid value -1", NULL}},
        {"seed-huge", {.seeds = "[1152921504606846976]"}, NULL,
         {"seeds[0]: invalid value 1152921504606846976:", NULL}},
        {"label-type", {.conditions = "[{\"label\": 7}]"}, NULL,
         {"datasets[0].conditions[0].label: expected a string, found a number", NULL}},
        {"settings-type", {.settings = "[1]"}, NULL,
         {"settings: expected an object of settings, found an array", NULL}},
        {"setting-bool", {.settings = "{\"epochs\": true}"}, NULL,
         {"settings.epochs: expected a string or a number, found a boolean", NULL}},
        {"empty-models", {.models = "[]"}, NULL, {"models: empty list", NULL}},
        {"empty-seeds", {.seeds = "[]"}, NULL, {"seeds: empty list", NULL}},
        {"empty-conditions", {.conditions = "[]"}, NULL,
         {"datasets[0].conditions: empty list", NULL}},
        {"empty-datasets", {0},
         "{\"format_version\": 1, \"name\": \"t\", \"table\": \"main\", "
         "\"models\": [\"euar\"], \"seeds\": [1], "
         "\"datasets\": []}",
         {"datasets: empty list", NULL}},
        {"unknown-model", {.models = "[\"euar\", \"resnet\"]"}, NULL,
         {"models[1]: unknown model \"resnet\"", "registered models are"}},
        {"duplicate-model", {.models = "[\"euar\", \"euar\"]"}, NULL,
         {"models[1]: model \"euar\" is listed twice", NULL}},
        {"bad-noise", {.conditions = "[{\"label\": \"T\"}, {\"label\": \"X\", \"noise\": "
                                     "\"missing:keep=\"}]"},
         NULL, {"datasets[0].conditions[1].noise: invalid noise spec 'missing:keep='",
                "empty keep list"}},
        {"bad-setting-value", {.dataset_settings = "{\"batch\": \"zero\"}"}, NULL,
         {"datasets[0].settings.batch = \"zero\"", "invalid value 'zero' for setting 'batch'"}},
        {"bad-setting-number", {.settings = "{\"lr\": -1}"}, NULL,
         {"settings.lr = \"-1\"", "invalid value '-1' for setting 'lr'"}},
        {"unknown-setting", {.dataset_settings = "{\"foo\": \"3\"}"}, NULL,
         {"datasets[0].settings.foo = \"3\"", "unknown setting 'foo'"}},
        {"seed-setting", {.settings = "{\"seed\": 4}"}, NULL,
         {"settings.seed = \"4\"", "comes from \"seeds\""}},
        {"duplicate-condition", {.conditions = "[{\"label\": \"T\"}, {\"label\": \"T\"}]"}, NULL,
         {"datasets[0].conditions[1]: condition label \"T\" is used twice", NULL}},
        {"duplicate-key", {.extra = ", \"name\": \"u\""}, NULL,
         {"key \"name\" appears twice", NULL}},
        {"bad-label", {.conditions = "[{\"label\": \"a b\"}]"}, NULL,
         {"datasets[0].conditions[0].label: invalid label \"a b\"", NULL}},
        {"newer-version", {0},
         "{\"format_version\": 2, \"name\": \"t\", \"models\": [\"euar\"], \"seeds\": [1], "
         "\"datasets\": [{\"label\": \"d\", \"path\": \"d.h5\", \"conditions\": "
         "[{\"label\": \"c\"}]}]}",
         {"format_version: version 2 is newer", "update euar-bench"}},
        {"missing-models", {0},
         "{\"format_version\": 1, \"name\": \"t\", \"seeds\": [1], \"datasets\": []}",
         {"missing key \"models\"", NULL}},
        {"quick-unknown-dataset", {.extra = ", \"quick\": {\"datasets\": {\"e\": {}}}"}, NULL,
         {"quick.datasets.e: no dataset is labelled \"e\"", NULL}},
        {"quick-bad-setting",
         {.extra = ", \"quick\": {\"datasets\": {\"d\": {\"settings\": {\"epochs\": 0}}}}"},
         NULL, {"quick.datasets.d.settings.epochs = \"0\"", "invalid value '0'"}},
        {"quick-empty-seeds", {.extra = ", \"quick\": {\"seeds\": []}"}, NULL,
         {"quick.seeds: empty list", NULL}},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        char text[2048], path[300];
        if (cases[i].raw)
            snprintf(text, sizeof(text), "%s", cases[i].raw);
        else
            suite_text(text, sizeof(text), &cases[i].parts);
        snprintf(path, sizeof(path), "%s/%s.json", temp_dir, cases[i].name);
        write_text(path, text);
        Suite s;
        err_clear();
        if (suite_load(path, &s) != -1)
            fail_msg("suite %s was accepted", cases[i].name);
        assert_int_equal(s.num_datasets, 0);
        const char *msg = err_get();
        if (strstr(msg, path) == NULL)
            fail_msg("message for %s does not name the file: %s", cases[i].name, msg);
        for (int k = 0; k < 2; k++)
            if (cases[i].expect[k] && strstr(msg, cases[i].expect[k]) == NULL)
                fail_msg("message for %s lacks \"%s\": %s", cases[i].name, cases[i].expect[k],
                         msg);
    }
}

static void suite_missing_file(void **state) {
    Suite s;
    assert_int_equal(suite_load("/nonexistent/suite.json", &s), -1);
    assert_non_null(strstr(err_get(), "suite file /nonexistent/suite.json: No such file"));
    assert_null(strstr(err_get(), "suite: "));
    assert_int_equal(suite_load(temp_dir, &s), -1);
    assert_non_null(strstr(err_get(), "is a folder, not a file"));
}

/* ---- canonical text and hash ---- */

static void load_parts(const SuiteParts *parts, const char *name, Suite *s) {
    char text[2048], path[300];
    suite_text(text, sizeof(text), parts);
    snprintf(path, sizeof(path), "%s/%s.json", temp_dir, name);
    write_text(path, text);
    if (suite_load(path, s) != 0)
        fail_msg("%s", err_get());
}

static void hash_of_first_cell(const SuiteParts *parts, char hash[17]) {
    Suite s;
    load_parts(parts, "hash", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    memcpy(hash, cells[0].hash, 17);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void hash_stable(void **state) {
    SuiteParts parts = {0};
    char a[17], b[17];
    hash_of_first_cell(&parts, a);
    hash_of_first_cell(&parts, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 16);
    /* The hash is taken over resolved values, so 1e-3 and 0.001 name the same cell. */
    SuiteParts lr_text = {.settings = "{\"epochs\": 3, \"lr\": \"1e-3\"}"};
    SuiteParts lr_number = {.settings = "{\"epochs\": 3, \"lr\": 0.001}"};
    hash_of_first_cell(&lr_text, a);
    hash_of_first_cell(&lr_number, b);
    assert_string_equal(a, b);
}

static void hash_changes(void **state) {
    SuiteParts base = {0};
    char ref[17], other[17];
    hash_of_first_cell(&base, ref);
    static const SuiteParts changed[] = {
        {.settings = "{\"epochs\": 4}"},
        {.dataset_settings = "{\"batch\": \"9\"}"},
        {.seeds = "[7, 2]"},
        {.models = "[\"concat\", \"euar\"]"},
        {.conditions = "[{\"label\": \"T\", \"noise\": \"missing:keep=audio\"}]"},
        {.conditions = "[{\"label\": \"T2\", \"noise\": \"missing:keep=text\"}]"},
        {.extra = ", \"noise_seed\": 5"},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(changed); i++) {
        hash_of_first_cell(&changed[i], other);
        if (strcmp(ref, other) == 0)
            fail_msg("change %zu keeps hash %s", i, ref);
    }
}

/* Every setting of core/settings.h is part of the hash: changing any one changes it. */
static void hash_covers_settings(void **state) {
    Suite s;
    SuiteParts parts = {0};
    load_parts(&parts, "cover", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    static const char *const candidates[] = {"2", "3", "0.5", "0.25", "-5", "5", "sparse",
                                             "dense", "gelu", "none", "mmsa", "valid-metric"};
    for (int k = 0; k < settings_count(); k++) {
        SuiteCell c = cells[0];
        char before[64], after[64];
        settings_value(&c.settings, k, before, sizeof(before));
        int changed = 0;
        for (size_t j = 0; j < EUAR_ARRAY_LEN(candidates) && !changed; j++) {
            Settings trial = c.settings;
            if (settings_set_kv(&trial, settings_key(k), candidates[j]) != 0)
                continue;
            settings_value(&trial, k, after, sizeof(after));
            if (strcmp(before, after) != 0) {
                c.settings = trial;
                changed = 1;
            }
        }
        if (!changed)
            fail_msg("no test value changes setting '%s'", settings_key(k));
        char *text = suite_cell_canonical(&c);
        char hash[17];
        snprintf(hash, sizeof(hash), "%016llx",
                 (unsigned long long)hash_fnv1a64(text, strlen(text), EUAR_FNV_OFFSET));
        if (strcmp(hash, cells[0].hash) == 0)
            fail_msg("setting '%s' is not part of the hash", settings_key(k));
        free(text);
    }
    /* The stored hash is the FNV-1a hash of the stored canonical text. */
    char hash[17];
    snprintf(hash, sizeof(hash), "%016llx",
             (unsigned long long)hash_fnv1a64(cells[0].canonical, strlen(cells[0].canonical),
                                              EUAR_FNV_OFFSET));
    assert_string_equal(hash, cells[0].hash);
    assert_non_null(strstr(cells[0].canonical, "set.batch=8\n"));
    assert_non_null(strstr(cells[0].canonical, "noise=missing:keep=text,phase=both\n"));
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void canonical_lines_sorted(void **state) {
    Suite s;
    SuiteParts parts = {0};
    load_parts(&parts, "sorted", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    char *text = xstrdup(cells[0].canonical);
    char *prev = NULL;
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (prev && strcmp(prev, line) >= 0)
            fail_msg("line '%s' is not after '%s'", line, prev);
        prev = line;
        lines++;
    }
    assert_int_equal(lines, settings_count() + 10);
    free(text);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* ---- grouped cells of test-time conditions ---- */

/* Conditions of a mixed dataset: three test-time ones (clean, sp5, g5), a missing term (phase
 * both by default) and a gaussian term with phase both, which also applies while training. */
#define MIXED_CONDITIONS                                                                           \
    "[{\"label\": \"clean\", \"noise\": \"none\"}, "                                                \
    "{\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5@image\"}, "                                \
    "{\"label\": \"T\", \"noise\": \"missing:keep=text\"}, "                                       \
    "{\"label\": \"g5\", \"noise\": \"gaussian:eps=5,p=0.5\"}, "                                   \
    "{\"label\": \"gboth\", \"noise\": \"gaussian:eps=5,phase=both\"}]"

static void group_mixed_cells(void **state) {
    Suite s;
    SuiteParts parts = {.conditions = MIXED_CONDITIONS};
    load_parts(&parts, "mixed", &s);
    const SuiteDataset *ds = &s.datasets[0];
    static const int test_time[] = {1, 1, 0, 1, 0};
    for (int i = 0; i < 5; i++)
        if (ds->conditions[i].test_time != test_time[i])
            fail_msg("condition %s: test_time %d, expected %d", ds->conditions[i].label,
                     ds->conditions[i].test_time, test_time[i]);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    /* One grouped cell and one cell per training condition, for 2 models x 2 seeds. */
    assert_int_equal(n, 3 * 2 * 2);
    /* The grouped cells come first, at the position of their first condition. */
    static const char *const order[] = {"clean", "T", "gboth"};
    static const int index[] = {0, 2, 4};
    for (int i = 0; i < n; i++) {
        assert_string_equal(cells[i].condition, order[i / 4]);
        assert_int_equal(cells[i].condition_index, index[i / 4]);
    }
    const SuiteCell *g = find_cell(cells, n, "d", "clean", "concat", 2);
    assert_non_null(g);
    assert_string_equal(g->noise, "none");
    assert_int_equal(g->num_tests, 3);
    assert_string_equal(g->tests[0]->label, "clean");
    assert_string_equal(g->tests[1]->label, "sp5");
    assert_string_equal(g->tests[2]->label, "g5");
    assert_false(suite_cell_test_noise(g, 0));
    assert_true(suite_cell_test_noise(g, 1));
    assert_true(suite_cell_test_noise(g, 2));
    const SuiteCell *t = find_cell(cells, n, "d", "T", "euar", 1);
    assert_non_null(t);
    assert_int_equal(t->num_tests, 0);
    assert_string_equal(t->noise, "missing:keep=text,phase=both");
    t = find_cell(cells, n, "d", "gboth", "euar", 1);
    assert_non_null(t);
    assert_int_equal(t->num_tests, 0);
    assert_non_null(strstr(t->noise, "phase=both"));
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (strcmp(cells[i].hash, cells[j].hash) == 0)
                fail_msg("cells %d and %d share hash %s", i, j, cells[i].hash);
    char text[256];
    suite_cell_conditions_text(g, text, sizeof(text));
    assert_string_equal(text, "clean,sp5,g5");
    suite_cell_conditions_text(t, text, sizeof(text));
    assert_string_equal(text, "gboth");
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* Without a clean test-time condition, the grouped cell is labelled "clean" at the index of
 * its first condition, and every condition becomes a --test-noise. */
static void group_without_clean(void **state) {
    Suite s;
    SuiteParts parts = {.models = "[\"euar\"]", .seeds = "[1]",
                        .conditions = "[{\"label\": \"T\", \"noise\": \"missing:keep=text\"}, "
                                      "{\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5\"}, "
                                      "{\"label\": \"b\", \"noise\": \"blank:ratio=0.5\"}]"};
    load_parts(&parts, "noclean", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 2);
    const SuiteCell *g = &cells[1];
    assert_string_equal(g->condition, EUAR_SUITE_CLEAN_LABEL);
    assert_int_equal(g->condition_index, 1);
    assert_int_equal(g->num_tests, 2);
    assert_true(suite_cell_test_noise(g, 0));
    assert_true(suite_cell_test_noise(g, 1));
    char **argv = suite_cell_argv(g, "/opt/euar", "res");
    int found = 0;
    for (char **p = argv; *p; p++)
        if (strcmp(*p, "--test-noise") == 0)
            found++;
    assert_int_equal(found, 2);
    suite_argv_free(argv);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void group_worker_argv(void **state) {
    Suite s;
    SuiteParts parts = {.conditions = MIXED_CONDITIONS};
    load_parts(&parts, "gargv", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    const SuiteCell *c = find_cell(cells, n, "d", "clean", "concat", 1);
    assert_non_null(c);
    char **argv = suite_cell_argv(c, "/opt/euar", "res");
    /* Trained clean, then one --test-noise LABEL=SPEC per noisy condition in suite order. */
    static const char *const head[] = {
        "/opt/euar", "train", "--data", "d.h5", "--model", "concat", "--noise", "none",
        "--noise-seed", "0", "--test-noise",
        "sp5=saltpepper:eps=5,p=0.5,convention=10,phase=test@image", "--test-noise",
        "g5=gaussian:eps=5,p=0.5,range=clip,field=fresh,phase=test", "--set"};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(head); i++)
        assert_string_equal(argv[i], head[i]);
    int k = 0, tests = 0, meta_condition = 0, meta_index = 0;
    for (char **p = argv; *p; p++, k++) {
        tests += strcmp(*p, "--test-noise") == 0;
        meta_condition |= strcmp(*p, "condition=clean") == 0;
        meta_index |= strcmp(*p, "condition_index=0") == 0;
    }
    assert_int_equal(tests, 2);
    assert_true(meta_condition);
    assert_true(meta_index);
    suite_argv_free(argv);
    /* A training condition's worker has no --test-noise. */
    c = find_cell(cells, n, "d", "T", "concat", 1);
    assert_non_null(c);
    argv = suite_cell_argv(c, "/opt/euar", "res");
    for (char **p = argv; *p; p++)
        assert_string_not_equal(*p, "--test-noise");
    suite_argv_free(argv);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void group_hash(void **state) {
    SuiteParts base = {.conditions = MIXED_CONDITIONS};
    Suite s;
    load_parts(&base, "ghash", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    const char *text = cells[0].canonical;
    assert_non_null(strstr(text, "\ntest_noise.000=clean=none\n"));
    assert_non_null(strstr(text, "\ntest_noise.001=sp5=saltpepper:eps=5,p=0.5,convention=10,"
                                 "phase=test@image\n"));
    assert_non_null(strstr(text, "\ntest_noise.002=g5=gaussian:"));
    assert_non_null(strstr(text, "\nnoise=none\n"));
    char ref[17];
    memcpy(ref, cells[0].hash, 17);
    suite_cells_free(cells, n);
    suite_free(&s);

    /* The list of (label, spec) pairs is part of the hash: a spec, a label, the order or one
     * more condition each give a new hash. */
    static const char *const changed[] = {
        "[{\"label\": \"clean\"}, {\"label\": \"sp5\", \"noise\": \"saltpepper:eps=6@image\"}, "
        "{\"label\": \"g5\", \"noise\": \"gaussian:eps=5,p=0.5\"}]",
        "[{\"label\": \"clean\"}, {\"label\": \"sp\", \"noise\": \"saltpepper:eps=5@image\"}, "
        "{\"label\": \"g5\", \"noise\": \"gaussian:eps=5,p=0.5\"}]",
        "[{\"label\": \"clean\"}, {\"label\": \"g5\", \"noise\": \"gaussian:eps=5,p=0.5\"}, "
        "{\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5@image\"}]",
        "[{\"label\": \"clean\"}, {\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5@image\"}, "
        "{\"label\": \"g5\", \"noise\": \"gaussian:eps=5,p=0.5\"}, "
        "{\"label\": \"b\", \"noise\": \"blank:ratio=0.2\"}]",
    };
    /* The same three test-time conditions without the training ones: the grouped cell's hash
     * does not depend on training conditions elsewhere in the list. */
    SuiteParts same = {.conditions = "[{\"label\": \"clean\"}, "
                                     "{\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5@image\"}, "
                                     "{\"label\": \"g5\", \"noise\": \"gaussian:eps=5,p=0.5\"}]"};
    char other[17];
    hash_of_first_cell(&same, other);
    assert_string_equal(other, ref);
    for (size_t i = 0; i < EUAR_ARRAY_LEN(changed); i++) {
        SuiteParts p = {.conditions = changed[i]};
        hash_of_first_cell(&p, other);
        if (strcmp(ref, other) == 0)
            fail_msg("change %zu keeps hash %s", i, ref);
    }
}

/* A grouped cell whose only condition is clean has the canonical text of an ordinary cell. */
static void group_only_clean(void **state) {
    Suite s;
    SuiteParts parts = {.conditions = "[{\"label\": \"clean\"}]"};
    load_parts(&parts, "oclean", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(cells[0].num_tests, 1);
    assert_null(strstr(cells[0].canonical, "test_noise."));
    int lines = 0;
    for (const char *p = cells[0].canonical; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, settings_count() + 10);
    char **argv = suite_cell_argv(&cells[0], "/opt/euar", "res");
    for (char **p = argv; *p; p++)
        assert_string_not_equal(*p, "--test-noise");
    suite_argv_free(argv);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void group_only_pattern(void **state) {
    Suite s;
    SuiteParts parts = {.conditions = MIXED_CONDITIONS};
    load_parts(&parts, "gonly", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    const SuiteCell *g = find_cell(cells, n, "d", "clean", "euar", 2);
    assert_non_null(g);
    assert_true(suite_cell_matches(g, "d/clean/euar/2"));
    assert_true(suite_cell_matches(g, "d/sp5/*"));
    assert_true(suite_cell_matches(g, "*/g5/euar/*"));
    assert_false(suite_cell_matches(g, "d/T/*"));
    assert_false(suite_cell_matches(g, "d/gboth/*"));
    int matched = 0;
    for (int i = 0; i < n; i++)
        matched += suite_cell_matches(&cells[i], "*/sp5/*");
    assert_int_equal(matched, 4);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void group_rejections(void **state) {
    char many[8192];
    int used = snprintf(many, sizeof(many), "[{\"label\": \"clean\"}");
    for (int i = 0; i <= EUAR_RESULT_MAX_CONDITIONS; i++)
        used += snprintf(many + used, sizeof(many) - (size_t)used,
                         ", {\"label\": \"b%d\", \"noise\": \"blank:ratio=0.5\"}", i);
    snprintf(many + used, sizeof(many) - (size_t)used, "]");
    const struct {
        const char *name, *conditions, *expect[2];
    } cases[] = {
        {"equals-label", "[{\"label\": \"a=b\", \"noise\": \"saltpepper:eps=5\"}]",
         {"datasets[0].conditions[0].label: invalid label \"a=b\"", "cannot contain '='"}},
        {"too-many", many, {"datasets[0].conditions: 33 noisy test-time conditions", NULL}},
        {"clean-training",
         "[{\"label\": \"clean\", \"noise\": \"missing:keep=text\"}, "
         "{\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5\"}]",
         {"datasets[0].conditions[0]: a training condition labelled \"clean\" clashes", NULL}},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        char text[16384], path[300];
        SuiteParts parts = {.conditions = cases[i].conditions};
        suite_text(text, sizeof(text), &parts);
        snprintf(path, sizeof(path), "%s/%s.json", temp_dir, cases[i].name);
        write_text(path, text);
        Suite s;
        if (suite_load(path, &s) != -1)
            fail_msg("suite %s was accepted", cases[i].name);
        const char *msg = err_get();
        for (int k = 0; k < 2; k++)
            if (cases[i].expect[k] && strstr(msg, cases[i].expect[k]) == NULL)
                fail_msg("message for %s lacks \"%s\": %s", cases[i].name, cases[i].expect[k],
                         msg);
    }
    /* A label with '=' is fine for a training condition, which is passed as --noise. */
    Suite s;
    SuiteParts ok = {.conditions = "[{\"label\": \"a=b\", \"noise\": \"missing:keep=text\"}]"};
    load_parts(&ok, "equals-training", &s);
    suite_free(&s);
}

/* ---- the noise suite of the repository ---- */

static void noise_suite_cells(void **state) {
    if (!model_exists("tmc") || !model_exists("qmf")) {
        print_message("suites/noise.json names the models tmc and qmf, which are not "
                      "registered in core/model.c yet; skipping\n");
        skip();
    }
    Suite s;
    if (suite_load(NOISE_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    assert_string_equal(s.name, "noise");
    assert_int_equal(s.num_datasets, 3);
    assert_int_equal(s.grid.num_models, 6);
    assert_int_equal(s.grid.num_seeds, 3);
    static const int conditions[] = {5, 8, 5};
    for (int d = 0; d < 3; d++) {
        assert_int_equal(s.datasets[d].num_conditions, conditions[d]);
        for (int i = 0; i < conditions[d]; i++)
            if (!s.datasets[d].conditions[i].test_time)
                fail_msg("%s condition %s is not test-time", s.datasets[d].label,
                         s.datasets[d].conditions[i].label);
    }
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 3 * 6 * 3);
    const SuiteCell *c = find_cell(cells, n, "synth-mvsa", "clean", "qmf", 2);
    assert_non_null(c);
    assert_int_equal(c->num_tests, 8);
    assert_int_equal(c->condition_index, 0);
    assert_string_equal(c->noise, "none");
    assert_int_equal(c->settings.epochs, 40);
    assert_int_equal(c->settings.batch, 16);
    suite_cells_free(cells, n);
    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    assert_int_equal(n, 3 * 6 * 1);
    c = find_cell(cells, n, "fmnist-2view", "clean", "euar", 1);
    assert_non_null(c);
    assert_int_equal(c->num_tests, 5);
    assert_int_equal(c->settings.epochs, 2);
    assert_int_equal(c->settings.max_train, 256);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* ---- resume planning ---- */

static void plan_resume(void **state) {
    Suite s;
    SuiteParts parts = {.models = "[\"euar\"]", .seeds = "[1, 2, 3, 4, 5]",
                        .conditions = "[{\"label\": \"T\"}]"};
    load_parts(&parts, "plan", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 5);
    char dir[300], path[400];
    snprintf(dir, sizeof(dir), "%s/plan-results", temp_dir);
    assert_int_equal(make_dirs(dir), 0);
    static const char *const contents[] = {
        "{\"status\": \"ok\", \"metrics\": {}}", /* finished */
        "{\"status\": \"o",                        /* cut short */
        NULL,                                      /* absent */
        "{\"status\": \"failed\"}",               /* diverged, finished */
        "{\"metrics\": {}}",                       /* no status */
    };
    static const SuiteCellPlan expected[] = {EUAR_CELL_SKIP, EUAR_CELL_RERUN, EUAR_CELL_RUN,
                                             EUAR_CELL_SKIP, EUAR_CELL_RERUN};
    for (int i = 0; i < 5; i++) {
        if (!contents[i])
            continue;
        suite_result_path(dir, &cells[i], path, sizeof(path));
        write_text(path, contents[i]);
    }
    SuiteCellPlan plan[5];
    suite_plan(cells, n, dir, plan);
    for (int i = 0; i < 5; i++)
        if (plan[i] != expected[i])
            fail_msg("cell %d planned %d, expected %d", i, plan[i], expected[i]);
    /* Planning only reads: the corrupt file is still there. */
    suite_result_path(dir, &cells[1], path, sizeof(path));
    assert_int_equal(access(path, F_OK), 0);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* ---- worker command ---- */

static void worker_argv(void **state) {
    Suite s;
    SuiteParts parts = {0};
    load_parts(&parts, "argv", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    const SuiteCell *c = find_cell(cells, n, "d", "T", "concat", 2);
    assert_non_null(c);
    char **argv = suite_cell_argv(c, "/opt/euar", "res");
    static const char *const head[] = {"/opt/euar", "train", "--data", "d.h5", "--model",
                                       "concat", "--noise", "missing:keep=text,phase=both",
                                       "--noise-seed", "0"};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(head); i++)
        assert_string_equal(argv[i], head[i]);
    int k = (int)EUAR_ARRAY_LEN(head);
    for (int i = 0; i < settings_count(); i++) {
        char expect[128], value[64];
        settings_value(&c->settings, i, value, sizeof(value));
        snprintf(expect, sizeof(expect), "%s=%s", settings_key(i), value);
        assert_string_equal(argv[k++], "--set");
        assert_string_equal(argv[k++], expect);
    }
    char out[64], hash[64];
    snprintf(out, sizeof(out), "res/%s.json", c->hash);
    snprintf(hash, sizeof(hash), "hash=%s", c->hash);
    const char *tail[] = {"--data-hash-cache", "res/data-hashes.txt",
                          "--out", out, "--meta", "suite=t", "--meta", "dataset=d", "--meta",
                          "condition=T", "--meta", "condition_index=0", "--meta",
                          "model_index=1", "--meta", hash};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(tail); i++)
        assert_string_equal(argv[k++], tail[i]);
    assert_null(argv[k]);
    /* The seed and the batch of this cell travel as settings. */
    int seen_seed = 0, seen_batch = 0;
    for (char **p = argv; *p; p++) {
        seen_seed |= strcmp(*p, "seed=2") == 0;
        seen_batch |= strcmp(*p, "batch=8") == 0;
    }
    assert_true(seen_seed);
    assert_true(seen_batch);
    suite_argv_free(argv);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void only_pattern(void **state) {
    Suite s;
    if (suite_load(MISSING_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    const SuiteCell *c = find_cell(cells, n, "synth-mosi", "T+A", "euar", 2);
    assert_non_null(c);
    assert_true(suite_cell_matches(c, "synth-mosi/T+A/*"));
    assert_true(suite_cell_matches(c, "*/T+A/euar/2"));
    assert_true(suite_cell_matches(c, c->hash));
    assert_false(suite_cell_matches(c, "synth-mosi/T/*"));
    assert_false(suite_cell_matches(c, "fmnist-2view/*"));
    int matched = 0;
    for (int i = 0; i < n; i++)
        matched += suite_cell_matches(&cells[i], "*/*/late/1");
    assert_int_equal(matched, 10);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* ---- results folder record ---- */

static void resolved_record(void **state) {
    Suite s;
    if (suite_load(MISSING_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    char dir[300], path[400];
    snprintf(dir, sizeof(dir), "%s/record", temp_dir);
    assert_int_equal(make_dirs(dir), 0);
    assert_int_equal(suite_check_results_dir(&s, 1, dir), 0);
    assert_int_equal(suite_write_resolved(&s, 1, cells, n, dir), 0);
    snprintf(path, sizeof(path), "%s/suite.json", dir);
    char *text = read_file_text(path, NULL);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "name")->valuestring, "missing");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "quick")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(root, "cells")), n);
    cJSON *ds = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "datasets"), 1);
    cJSON *set = cJSON_GetObjectItem(ds, "settings");
    assert_string_equal(cJSON_GetObjectItem(set, "max_train")->valuestring, "256");
    assert_null(cJSON_GetObjectItem(set, "seed"));
    cJSON_Delete(root);

    assert_int_equal(suite_check_results_dir(&s, 1, dir), 0);
    assert_int_equal(suite_check_results_dir(&s, 0, dir), -1);
    assert_non_null(strstr(err_get(), "holds the quick variant"));
    Suite other = s;
    snprintf(other.name, sizeof(other.name), "noise");
    assert_int_equal(suite_check_results_dir(&other, 1, dir), -1);
    assert_non_null(strstr(err_get(), "holds suite 'missing', not 'noise'"));
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* ---- runner with a stand-in worker ---- */

/* Stands in for `euar train`: writes a finished result for euar, a failed result with exit 3
 * for concat, and exits 1 without a result for late. Exits 4 without one BLAS thread. */
static const char fake_worker[] =
    "#!/bin/sh\n"
    "out=''; model=''\n"
    "while [ $# -gt 0 ]; do\n"
    "  case \"$1\" in --out) out=\"$2\"; shift;; --model) model=\"$2\"; shift;; esac\n"
    "  shift\n"
    "done\n"
    "[ \"$OPENBLAS_NUM_THREADS\" = 1 ] || exit 4\n"
    "echo \"training $model\"\n"
    "case \"$model\" in\n"
    "  late) echo 'invalid input' >&2; exit 1;;\n"
    "  concat) printf '{\"status\": \"failed\"}' > \"$out\"; exit 3;;\n"
    "esac\n"
    "printf '{\"status\": \"ok\"}' > \"$out\"\n";

/* Writes a small synth-mosi (regression; text, audio, vision features) to dir/name. */
static void write_mosi(char *path, size_t cap, const char *name) {
    static const int sizes[EUAR_SPLIT_COUNT] = {8, 4, 4};
    snprintf(path, cap, "%s/%s", temp_dir, name);
    if (access(path, F_OK) != 0 && synth_sentiment_write_sized(path, "mosi", 1, sizes) != 0)
        fail_msg("%s", err_get());
}

/* Writes a small synth-nyud (classification; rgb and depth images) to dir/name. */
static void write_nyud(char *path, size_t cap, const char *name) {
    static const int sizes[EUAR_SPLIT_COUNT] = {10, 10, 10};
    snprintf(path, cap, "%s/%s", temp_dir, name);
    if (access(path, F_OK) != 0 && synth_nyud_write_sized(path, 1, sizes) != 0)
        fail_msg("%s", err_get());
}

static int file_exists(const char *dir, const char *hash, const char *suffix) {
    char path[400];
    snprintf(path, sizeof(path), "%s/%s%s", dir, hash, suffix);
    return access(path, F_OK) == 0;
}

static void runner_fake_worker(void **state) {
    char exe[300], data[300], results[300], suite_path[300], text[2048];
    snprintf(exe, sizeof(exe), "%s/fake-euar.sh", temp_dir);
    write_text(exe, fake_worker);
    assert_int_equal(chmod(exe, 0755), 0);
    write_mosi(data, sizeof(data), "d.h5");
    snprintf(results, sizeof(results), "%s/run-results", temp_dir);
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"fake\", \"table\": \"main\", "
             "\"models\": [\"euar\", \"concat\", "
             "\"late\"], \"seeds\": [1, 2], \"datasets\": [{\"label\": \"d\", \"path\": \"%s\", "
             "\"conditions\": [{\"label\": \"T\", \"noise\": \"missing:keep=text\"}]}]}",
             data);
    snprintf(suite_path, sizeof(suite_path), "%s/fake.json", temp_dir);
    write_text(suite_path, text);
    Suite s;
    if (suite_load(suite_path, &s) != 0)
        fail_msg("%s", err_get());
    SuiteRunOptions opt = {.jobs = 2, .results = results, .exe = exe};

    /* A cell that fails with bad input makes the status 1; the other cells still run. */
    assert_int_equal(suite_run(&s, &opt), 1);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    char logs[320];
    snprintf(logs, sizeof(logs), "%s/logs", results);
    for (int i = 0; i < n; i++) {
        int expect_result = strcmp(cells[i].model, "late") != 0;
        if (file_exists(results, cells[i].hash, ".json") != expect_result)
            fail_msg("result of %s seed %d: exists %d, expected %d", cells[i].model,
                     (int)cells[i].seed, !expect_result, expect_result);
        assert_true(file_exists(logs, cells[i].hash, ".log"));
    }
    char record[340];
    snprintf(record, sizeof(record), "%s/suite.json", results);
    assert_int_equal(access(record, F_OK), 0);

    /* The log starts with the command and contains the worker's output. */
    char log_path[400];
    const SuiteCell *late = find_cell(cells, n, "d", "T", "late", 1);
    snprintf(log_path, sizeof(log_path), "%s/%s.log", logs, late->hash);
    char *log = read_file_text(log_path, NULL);
    assert_non_null(log);
    assert_true(strncmp(log, "# '", 3) == 0);
    assert_non_null(strstr(log, "'--model' 'late'"));
    assert_non_null(strstr(log, "invalid input"));
    free(log);

    /* A corrupt result is replaced; finished ones are kept. */
    const SuiteCell *euar = find_cell(cells, n, "d", "T", "euar", 2);
    char result_path[400];
    suite_result_path(results, euar, result_path, sizeof(result_path));
    write_text(result_path, "{\"stat");
    opt.only = "*/*/euar/*";
    assert_int_equal(suite_run(&s, &opt), 0);
    char reason[128];
    assert_int_equal(suite_result_state(result_path, reason, sizeof(reason)), 1);

    /* --only with no match is an error. */
    opt.only = "*/*/mlp-moe/*";
    assert_int_equal(suite_run(&s, &opt), 1);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* A grouped cell runs once and its log shows the --test-noise options; suite.json lists its
 * conditions. */
static void runner_grouped_cell(void **state) {
    char exe[300], data[300], results[300], suite_path[300], text[2048];
    snprintf(exe, sizeof(exe), "%s/fake-euar-grouped.sh", temp_dir);
    write_text(exe, fake_worker);
    assert_int_equal(chmod(exe, 0755), 0);
    write_nyud(data, sizeof(data), "g.h5");
    snprintf(results, sizeof(results), "%s/grouped-results", temp_dir);
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"grouped\", \"table\": \"noise\", "
             "\"models\": [\"euar\"], "
             "\"seeds\": [1], \"datasets\": [{\"label\": \"d\", \"path\": \"%s\", "
             "\"conditions\": [{\"label\": \"clean\"}, "
             "{\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5\"}]}]}",
             data);
    snprintf(suite_path, sizeof(suite_path), "%s/grouped.json", temp_dir);
    write_text(suite_path, text);
    Suite s;
    if (suite_load(suite_path, &s) != 0)
        fail_msg("%s", err_get());
    SuiteRunOptions opt = {.jobs = 1, .results = results, .exe = exe};
    assert_int_equal(suite_run(&s, &opt), 0);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 1);
    assert_true(file_exists(results, cells[0].hash, ".json"));
    char log_path[400];
    snprintf(log_path, sizeof(log_path), "%s/logs/%s.log", results, cells[0].hash);
    char *log = read_file_text(log_path, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "'--noise' 'none'"));
    assert_non_null(strstr(log, "'--test-noise' 'sp5=saltpepper:eps=5,p=0.5,convention=10,"
                                "phase=test'"));
    assert_null(strstr(log, "'clean=none'"));
    free(log);
    char record[340];
    snprintf(record, sizeof(record), "%s/suite.json", results);
    char *json = read_file_text(record, NULL);
    assert_non_null(json);
    cJSON *root = cJSON_Parse(json);
    free(json);
    assert_non_null(root);
    cJSON *cell = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "cells"), 0);
    cJSON *tests = cJSON_GetObjectItem(cell, "test_conditions");
    assert_int_equal(cJSON_GetArraySize(tests), 2);
    assert_string_equal(cJSON_GetArrayItem(tests, 1)->valuestring, "sp5");
    cJSON_Delete(root);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void runner_missing_data(void **state) {
    char results[300], suite_path[300], text[1024];
    snprintf(results, sizeof(results), "%s/nodata-results", temp_dir);
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"nodata\", \"table\": \"main\", "
             "\"models\": [\"euar\"], "
             "\"seeds\": [1], \"datasets\": [{\"label\": \"d\", \"path\": \"%s/absent.h5\", "
             "\"conditions\": [{\"label\": \"T\"}]}]}",
             temp_dir);
    snprintf(suite_path, sizeof(suite_path), "%s/nodata.json", temp_dir);
    write_text(suite_path, text);
    Suite s;
    if (suite_load(suite_path, &s) != 0)
        fail_msg("%s", err_get());
    SuiteRunOptions opt = {.jobs = 1, .results = results, .exe = "/bin/false"};
    assert_int_equal(suite_run(&s, &opt), 1);
    assert_non_null(strstr(err_get(), "absent.h5"));
    /* Nothing is written before the check: no folder, no suite.json, no logs/. */
    assert_int_not_equal(access(results, F_OK), 0);
    /* A dry run reads nothing and creates no folder. */
    char other[320];
    snprintf(other, sizeof(other), "%s/dry-results", temp_dir);
    opt.results = other;
    opt.dry_run = 1;
    assert_int_equal(suite_run(&s, &opt), 0);
    assert_int_not_equal(access(other, F_OK), 0);
    suite_free(&s);
}

/* Runs a suite whose cells are invalid and expects suite_run() to fail before writing
 * anything, with an error containing both needles. */
static void expect_preflight_error(const char *name, const char *models, const char *settings,
                                   const char *data, const char *noise, const char *needle1,
                                   const char *needle2) {
    char results[300], suite_path[300], text[2048];
    snprintf(results, sizeof(results), "%s/%s-results", temp_dir, name);
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"%s\", \"table\": \"main\", "
             "\"models\": %s, \"seeds\": [1], "
             "\"settings\": %s, \"datasets\": [{\"label\": \"d\", \"path\": \"%s\", "
             "\"conditions\": [{\"label\": \"c\", \"noise\": \"%s\"}]}]}",
             name, models, settings, data, noise);
    snprintf(suite_path, sizeof(suite_path), "%s/%s.json", temp_dir, name);
    write_text(suite_path, text);
    Suite s;
    if (suite_load(suite_path, &s) != 0)
        fail_msg("%s", err_get());
    SuiteRunOptions opt = {.jobs = 1, .results = results, .exe = "/bin/false"};
    err_clear();
    assert_int_equal(suite_run(&s, &opt), 1);
    if (!strstr(err_get(), suite_path))
        fail_msg("error does not name the suite file: %s", err_get());
    if (!strstr(err_get(), needle1) || !strstr(err_get(), needle2))
        fail_msg("expected '%s' and '%s' in: %s", needle1, needle2, err_get());
    assert_int_not_equal(access(results, F_OK), 0);
    suite_free(&s);
}

static void preflight_noise_names(void **state) {
    char data[300];
    write_mosi(data, sizeof(data), "pre.h5");
    expect_preflight_error("badnoise", "[\"euar\"]", "{}", data, "missing:keep=smell",
                           "condition 'c'", "smell");
    /* Salt and pepper applies to images; synth-mosi has only features. */
    expect_preflight_error("badkind", "[\"euar\"]", "{}", data, "saltpepper:eps=5",
                           "dataset 'd'", "saltpepper");
}

static void preflight_model_task(void **state) {
    char data[300];
    write_mosi(data, sizeof(data), "pre.h5");
    expect_preflight_error("badtask", "[\"euar\", \"tmc\"]", "{}", data, "none",
                           "model 'tmc'", "needs a classification dataset");
}

static void preflight_settings(void **state) {
    char data[300];
    write_mosi(data, sizeof(data), "pre.h5");
    expect_preflight_error("badtopk", "[\"euar\"]", "{\"experts\": 2, \"top_k\": 3}", data,
                           "none", "top_k=3 is larger than experts=2", "dataset 'd'");
    expect_preflight_error("badlv", "[\"euar\"]", "{\"lv_min\": 2, \"lv_max\": 1}", data,
                           "none", "lv_min=2 must be below lv_max=1", "dataset 'd'");
}

/* The rules of settings_check() and model_supports_task() on their own. */
static void settings_cross_rules(void **state) {
    Settings set;
    settings_default(&set);
    assert_int_equal(settings_check(&set), 0);
    set.top_k = set.experts + 1;
    assert_int_equal(settings_check(&set), -1);
    settings_default(&set);
    set.lv_min = set.lv_max;
    assert_int_equal(settings_check(&set), -1);
    char why[256];
    assert_int_equal(model_supports_task("tmc", 0, why, sizeof(why)), 0);
    assert_non_null(strstr(why, "model 'tmc' needs a classification dataset"));
    assert_int_equal(model_supports_task("qmf", 0, why, sizeof(why)), 0);
    assert_int_equal(model_supports_task("tmc", 1, why, sizeof(why)), 1);
    assert_int_equal(model_supports_task("euar", 0, why, sizeof(why)), 1);
}

/* Sets up a one-cell suite on small synth-mosi data that the stand-in worker finishes. */
static void load_small_suite(const char *name, Suite *s, char *exe, size_t exe_cap) {
    char data[300], suite_path[300], text[1024];
    snprintf(exe, exe_cap, "%s/fake-euar-small.sh", temp_dir);
    write_text(exe, fake_worker);
    assert_int_equal(chmod(exe, 0755), 0);
    write_mosi(data, sizeof(data), "small.h5");
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"%s\", \"table\": \"main\", "
             "\"models\": [\"euar\"], \"seeds\": [1], "
             "\"datasets\": [{\"label\": \"d\", \"path\": \"%s\", \"conditions\": "
             "[{\"label\": \"T\", \"noise\": \"missing:keep=text\"}]}]}", name, data);
    snprintf(suite_path, sizeof(suite_path), "%s/%s.json", temp_dir, name);
    write_text(suite_path, text);
    if (suite_load(suite_path, s) != 0)
        fail_msg("%s", err_get());
}

/* Temporary files of killed processes are deleted on start; those of a live process stay. */
static void runner_stale_temp(void **state) {
    char exe[300], results[300], stale[400], live[400];
    Suite s;
    load_small_suite("staletemp", &s, exe, sizeof(exe));
    snprintf(results, sizeof(results), "%s/stale-results", temp_dir);
    assert_int_equal(make_dirs(results), 0);
    /* pid_max is at most 2^22 on Linux (proc(5)), so this pid cannot run. */
    snprintf(stale, sizeof(stale), "%s/0123456789abcdef.json.tmp.%d", results, 4194305);
    snprintf(live, sizeof(live), "%s/fedcba9876543210.json.tmp.%ld", results, (long)getpid());
    write_text(stale, "{\"stat");
    write_text(live, "{\"stat");
    SuiteRunOptions opt = {.jobs = 1, .results = results, .exe = exe};
    assert_int_equal(suite_run(&s, &opt), 0);
    assert_int_not_equal(access(stale, F_OK), 0);
    assert_int_equal(access(live, F_OK), 0);
    suite_free(&s);
}

/* A second runner on a locked results folder is rejected and starts no worker. */
static void runner_folder_locked(void **state) {
    char exe[300], results[300], lock_path[340];
    Suite s;
    load_small_suite("locked", &s, exe, sizeof(exe));
    snprintf(results, sizeof(results), "%s/locked-results", temp_dir);
    assert_int_equal(make_dirs(results), 0);
    snprintf(lock_path, sizeof(lock_path), "%s/.lock", results);
    int fd = open(lock_path, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    SuiteRunOptions opt = {.jobs = 1, .results = results, .exe = exe};
    err_clear();
    assert_int_equal(suite_run(&s, &opt), 1);
    assert_non_null(strstr(err_get(), "is in use by another 'euar suite'"));
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_false(file_exists(results, cells[0].hash, ".json"));
    close(fd);
    /* Released, the folder is usable again. */
    assert_int_equal(suite_run(&s, &opt), 0);
    assert_true(file_exists(results, cells[0].hash, ".json"));
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* ---- keys of the paper suites: condition settings, dataset models, joint files, skips ---- */

#define EXPERTS_SUITE "suites/experts.json"
#define ABLATION_SUITE "suites/ablation.json"
#define CONVERGENCE_SUITE "suites/convergence.json"
#define MAIN_SUITE "suites/main.json"

/* Conditions with settings are training conditions whose settings override the dataset's,
 * and the quick settings override both. */
static void condition_settings_cells(void **state) {
    Suite s;
    SuiteParts parts = {
        .models = "[\"euar\"]",
        .seeds = "[1, 2]",
        .conditions = "[{\"label\": \"E=2\", \"settings\": {\"experts\": 2, \"top_k\": 2}}, "
                      "{\"label\": \"E=16\", \"settings\": {\"experts\": 16, \"epochs\": 9}}, "
                      "{\"label\": \"clean\"}]",
        .extra = ", \"quick\": {\"seeds\": [1], \"settings\": {\"epochs\": 2}}"};
    load_parts(&parts, "condset", &s);
    assert_false(s.datasets[0].conditions[0].test_time);
    assert_false(s.datasets[0].conditions[1].test_time);
    assert_true(s.datasets[0].conditions[2].test_time);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 3 * 2);
    const SuiteCell *c = find_cell(cells, n, "d", "E=2", "euar", 2);
    assert_non_null(c);
    assert_int_equal(c->settings.experts, 2);
    assert_int_equal(c->settings.top_k, 2);
    assert_int_equal(c->settings.epochs, 3);
    assert_int_equal(c->settings.batch, 8);
    assert_string_equal(c->noise, "none");
    assert_int_equal(c->num_tests, 0);
    c = find_cell(cells, n, "d", "E=16", "euar", 1);
    assert_non_null(c);
    assert_int_equal(c->settings.experts, 16);
    assert_int_equal(c->settings.top_k, 3);
    assert_int_equal(c->settings.epochs, 9);
    assert_non_null(strstr(c->canonical, "set.experts=16\n"));
    c = find_cell(cells, n, "d", "clean", "euar", 1);
    assert_non_null(c);
    assert_int_equal(c->settings.experts, 8);
    suite_cells_free(cells, n);

    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    assert_int_equal(n, 3);
    c = find_cell(cells, n, "d", "E=16", "euar", 1);
    assert_non_null(c);
    assert_int_equal(c->settings.epochs, 2);
    assert_int_equal(c->settings.experts, 16);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* A dataset's models replace the suite's; quick.datasets.<label>.models replace both in the
 * quick variant, and the model index is the position in the list in use. */
static void dataset_models_cells(void **state) {
    char text[2048], path[300];
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"main\", \"models\": [\"concat\", \"euar\"],\n"
             " \"seeds\": [1, 2], \"datasets\": [\n"
             "  {\"label\": \"reg\", \"path\": \"r.h5\", \"conditions\": [{\"label\": \"c\"}]},\n"
             "  {\"label\": \"cls\", \"path\": \"c.h5\", \"models\": [\"tmc\", \"concat\", "
             "\"euar\"], \"conditions\": [{\"label\": \"c\"}]}],\n"
             " \"quick\": {\"seeds\": [1], \"models\": [\"euar\"], \"datasets\": {\"cls\": "
             "{\"models\": [\"qmf\", \"tmc\"]}}}}\n");
    snprintf(path, sizeof(path), "%s/dsmodels.json", temp_dir);
    write_text(path, text);
    Suite s;
    if (suite_load(path, &s) != 0)
        fail_msg("%s", err_get());
    assert_string_equal(s.table, "main");
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, (2 + 3) * 2);
    assert_null(find_cell(cells, n, "reg", "c", "tmc", 1));
    const SuiteCell *c = find_cell(cells, n, "cls", "c", "tmc", 2);
    assert_non_null(c);
    assert_int_equal(c->model_index, 0);
    c = find_cell(cells, n, "cls", "c", "euar", 1);
    assert_non_null(c);
    assert_int_equal(c->model_index, 2);
    c = find_cell(cells, n, "reg", "c", "euar", 1);
    assert_non_null(c);
    assert_int_equal(c->model_index, 1);
    suite_cells_free(cells, n);

    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    assert_int_equal(n, 1 + 2);
    assert_non_null(find_cell(cells, n, "reg", "c", "euar", 1));
    assert_null(find_cell(cells, n, "reg", "c", "concat", 1));
    c = find_cell(cells, n, "cls", "c", "tmc", 1);
    assert_non_null(c);
    assert_int_equal(c->model_index, 1);
    assert_null(find_cell(cells, n, "cls", "c", "euar", 1));
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* joint_models marks the first-seed cells of those models: their canonical text has
 * joint_out=1 and their worker gets --joint-out DIR/<hash>.joint.h5. */
static void joint_models_cells(void **state) {
    Suite s;
    SuiteParts parts = {.models = "[\"concat\", \"late\", \"euar\"]",
                        .seeds = "[4, 2]",
                        .conditions = "[{\"label\": \"clean\"}, {\"label\": \"A-missing\", "
                                      "\"noise\": \"missing:keep=text,vision,phase=test\"}], "
                                      "\"joint_models\": [\"euar\", \"concat\"]"};
    load_parts(&parts, "joint", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 3 * 2);
    int joints = 0;
    for (int i = 0; i < n; i++) {
        const SuiteCell *c = &cells[i];
        int expect = c->seed == 4 && strcmp(c->model, "late") != 0;
        if (c->joint != expect)
            fail_msg("%s seed %d: joint %d, expected %d", c->model, (int)c->seed, c->joint,
                     expect);
        assert_int_equal(strstr(c->canonical, "joint_out=1\n") != NULL, expect);
        joints += c->joint;
    }
    assert_int_equal(joints, 2);
    const SuiteCell *c = find_cell(cells, n, "d", "clean", "euar", 4);
    assert_non_null(c);
    assert_int_equal(c->num_tests, 2);
    char **argv = suite_cell_argv(c, "/opt/euar", "res");
    char expect[64];
    snprintf(expect, sizeof(expect), "res/%s.joint.h5", c->hash);
    int found = 0;
    for (char **p = argv; *p; p++)
        if (strcmp(*p, "--joint-out") == 0 && p[1] && strcmp(p[1], expect) == 0)
            found = 1;
    assert_true(found);
    suite_argv_free(argv);
    c = find_cell(cells, n, "d", "clean", "euar", 2);
    assert_non_null(c);
    argv = suite_cell_argv(c, "/opt/euar", "res");
    for (char **p = argv; *p; p++)
        assert_string_not_equal(*p, "--joint-out");
    suite_argv_free(argv);

    /* A cell without joint_models keeps the hash it has without the key. */
    const SuiteCell *late = find_cell(cells, n, "d", "clean", "late", 4);
    assert_non_null(late);
    char late_hash[17];
    memcpy(late_hash, late->hash, 17);
    suite_cells_free(cells, n);
    suite_free(&s);
    parts.conditions = "[{\"label\": \"clean\"}, {\"label\": \"A-missing\", "
                       "\"noise\": \"missing:keep=text,vision,phase=test\"}]";
    load_parts(&parts, "nojoint", &s);
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    late = find_cell(cells, n, "d", "clean", "late", 4);
    assert_non_null(late);
    assert_string_equal(late->hash, late_hash);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* "nonfinite": "zero" reaches the worker as --nonfinite zero and changes the hash, while
 * "reject" keeps the hash of a dataset without the key. */
static void nonfinite_policy_cells(void **state) {
    static const char *policies[] = {NULL, "reject", "zero"};
    char hashes[3][17];
    for (int i = 0; i < 3; i++) {
        char conditions[128];
        snprintf(conditions, sizeof(conditions), "[{\"label\": \"clean\"}]%s%s%s",
                 policies[i] ? ", \"nonfinite\": \"" : "", policies[i] ? policies[i] : "",
                 policies[i] ? "\"" : "");
        SuiteParts parts = {.models = "[\"euar\"]", .seeds = "[1]", .conditions = conditions};
        Suite s;
        load_parts(&parts, "nonfinite", &s);
        SuiteCell *cells;
        int n;
        assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
        assert_int_equal(n, 1);
        int zero = policies[i] && strcmp(policies[i], "zero") == 0;
        assert_int_equal(cells[0].nonfinite_zero, zero);
        assert_int_equal(strstr(cells[0].canonical, "nonfinite=zero\n") != NULL, zero);
        char **argv = suite_cell_argv(&cells[0], "/opt/euar", "res");
        int found = 0;
        for (char **p = argv; *p; p++)
            if (strcmp(*p, "--nonfinite") == 0 && p[1] && strcmp(p[1], "zero") == 0)
                found = 1;
        assert_int_equal(found, zero);
        suite_argv_free(argv);
        memcpy(hashes[i], cells[0].hash, 17);
        suite_cells_free(cells, n);
        suite_free(&s);
    }
    assert_string_equal(hashes[0], hashes[1]);
    assert_string_not_equal(hashes[0], hashes[2]);
}

/* A result with status ok but no joint file is planned again; a failed run keeps no joint
 * file and stays finished. */
static void joint_plan_resume(void **state) {
    Suite s;
    SuiteParts parts = {.models = "[\"euar\"]", .seeds = "[1]",
                        .conditions = "[{\"label\": \"clean\"}], \"joint_models\": [\"euar\"]"};
    load_parts(&parts, "jplan", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 1);
    assert_true(cells[0].joint);
    char dir[300], path[400];
    snprintf(dir, sizeof(dir), "%s/jplan-results", temp_dir);
    assert_int_equal(make_dirs(dir), 0);
    SuiteCellPlan plan[1];
    suite_result_path(dir, &cells[0], path, sizeof(path));
    write_text(path, "{\"status\": \"ok\"}");
    suite_plan(cells, n, dir, plan);
    assert_int_equal(plan[0], EUAR_CELL_RERUN);
    char joint[400];
    suite_joint_path(dir, &cells[0], joint, sizeof(joint));
    write_text(joint, "joint");
    suite_plan(cells, n, dir, plan);
    assert_int_equal(plan[0], EUAR_CELL_SKIP);
    assert_int_equal(unlink(joint), 0);
    write_text(path, "{\"status\": \"failed\"}");
    suite_plan(cells, n, dir, plan);
    assert_int_equal(plan[0], EUAR_CELL_SKIP);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* quick.datasets.<label>.skip removes a dataset from the quick variant and its record. */
static void quick_skip_dataset(void **state) {
    char text[2048], path[300];
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"ablation\", \"models\": [\"euar\"],\n"
             " \"seeds\": [1, 2], \"datasets\": [\n"
             "  {\"label\": \"small\", \"path\": \"s.h5\", \"conditions\": [{\"label\": \"c\"}]},\n"
             "  {\"label\": \"big\", \"path\": \"b.h5\", \"conditions\": [{\"label\": \"c\"}]}],\n"
             " \"quick\": {\"seeds\": [1], \"datasets\": {\"big\": {\"skip\": true}, "
             "\"small\": {\"skip\": false}}}}\n");
    snprintf(path, sizeof(path), "%s/skip.json", temp_dir);
    write_text(path, text);
    Suite s;
    if (suite_load(path, &s) != 0)
        fail_msg("%s", err_get());
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    assert_int_equal(n, 4);
    suite_cells_free(cells, n);
    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cells[0].dataset, "small");

    char dir[300], record_path[400];
    snprintf(dir, sizeof(dir), "%s/skip-record", temp_dir);
    assert_int_equal(make_dirs(dir), 0);
    assert_int_equal(suite_write_resolved(&s, 1, cells, n, dir), 0);
    snprintf(record_path, sizeof(record_path), "%s/suite.json", dir);
    char *record = read_file_text(record_path, NULL);
    assert_non_null(record);
    cJSON *root = cJSON_Parse(record);
    free(record);
    assert_non_null(root);
    cJSON *datasets = cJSON_GetObjectItem(root, "datasets");
    assert_int_equal(cJSON_GetArraySize(datasets), 1);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(datasets, 0), "label")->valuestring,
                        "small");
    assert_string_equal(cJSON_GetObjectItem(root, "table")->valuestring, "ablation");
    cJSON_Delete(root);
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* suite.json lists each dataset's models and joint models, each condition's own settings, and
 * each cell's resolved settings and joint file. */
static void paper_record_fields(void **state) {
    Suite s;
    SuiteParts parts = {.models = "[\"concat\", \"euar\"]", .seeds = "[1, 2]",
                        .conditions = "[{\"label\": \"E=4\", \"settings\": {\"experts\": 4}}, "
                                      "{\"label\": \"clean\"}], \"joint_models\": [\"euar\"]"};
    load_parts(&parts, "record2", &s);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    char dir[300], path[400];
    snprintf(dir, sizeof(dir), "%s/record2", temp_dir);
    assert_int_equal(make_dirs(dir), 0);
    assert_int_equal(suite_write_resolved(&s, 0, cells, n, dir), 0);
    snprintf(path, sizeof(path), "%s/suite.json", dir);
    char *text = read_file_text(path, NULL);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    cJSON *ds = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "datasets"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ds, "models")), 2);
    cJSON *joint_models = cJSON_GetObjectItem(ds, "joint_models");
    assert_int_equal(cJSON_GetArraySize(joint_models), 1);
    assert_string_equal(cJSON_GetArrayItem(joint_models, 0)->valuestring, "euar");
    /* The dataset's settings are those before any condition's own. */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ds, "settings"),
                                            "experts")->valuestring, "8");
    cJSON *cond = cJSON_GetArrayItem(cJSON_GetObjectItem(ds, "conditions"), 0);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cond, "settings"),
                                            "experts")->valuestring, "4");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cond, "test_time")));
    cond = cJSON_GetArrayItem(cJSON_GetObjectItem(ds, "conditions"), 1);
    assert_null(cJSON_GetObjectItem(cond, "settings"));

    int joints = 0;
    cJSON *list = cJSON_GetObjectItem(root, "cells");
    assert_int_equal(cJSON_GetArraySize(list), n);
    for (int i = 0; i < n; i++) {
        cJSON *cell = cJSON_GetArrayItem(list, i);
        cJSON *set = cJSON_GetObjectItem(cell, "settings");
        assert_non_null(set);
        assert_null(cJSON_GetObjectItem(set, "seed"));
        const char *expect = strcmp(cells[i].condition, "E=4") == 0 ? "4" : "8";
        assert_string_equal(cJSON_GetObjectItem(set, "experts")->valuestring, expect);
        cJSON *joint = cJSON_GetObjectItem(cell, "joint");
        assert_int_equal(joint != NULL, cells[i].joint);
        if (joint) {
            char name[40];
            snprintf(name, sizeof(name), "%s.joint.h5", cells[i].hash);
            assert_string_equal(joint->valuestring, name);
            joints++;
        }
    }
    assert_int_equal(joints, 2);
    cJSON_Delete(root);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void paper_key_rejections(void **state) {
    static const struct {
        const char *name;
        SuiteParts parts;
        const char *raw; /* whole file instead of parts */
        const char *expect[2];
    } cases[] = {
        {"table-twice", {.extra = ", \"table\": \"noise\""}, NULL,
         {"key \"table\" appears twice", NULL}},
        {"table-missing", {0},
         "{\"format_version\": 1, \"name\": \"mine\", \"models\": [\"euar\"], \"seeds\": [1], "
         "\"datasets\": [{\"label\": \"d\", \"path\": \"d.h5\", \"conditions\": "
         "[{\"label\": \"c\"}]}]}",
         {"missing key \"table\": the name \"mine\" is not a report table",
          "missing,noise,experts,ablation,convergence,main"}},
        {"table-bad", {0},
         "{\"format_version\": 1, \"name\": \"mine\", \"table\": \"fig4\", \"models\": "
         "[\"euar\"], \"seeds\": [1], \"datasets\": [{\"label\": \"d\", \"path\": \"d.h5\", "
         "\"conditions\": [{\"label\": \"c\"}]}]}",
         {"table: unknown table \"fig4\"", "valid tables are missing,noise"}},
        {"condition-settings-empty", {.conditions = "[{\"label\": \"E\", \"settings\": {}}]"},
         NULL, {"datasets[0].conditions[0].settings: empty settings object", NULL}},
        {"condition-settings-type", {.conditions = "[{\"label\": \"E\", \"settings\": 4}]"},
         NULL, {"datasets[0].conditions[0].settings: expected an object of settings", NULL}},
        {"condition-settings-value",
         {.conditions = "[{\"label\": \"E\", \"settings\": {\"experts\": 0}}]"}, NULL,
         {"datasets[0].conditions[0].settings.experts = \"0\"", "invalid value '0'"}},
        {"condition-settings-seed",
         {.conditions = "[{\"label\": \"E\", \"settings\": {\"seed\": 3}}]"}, NULL,
         {"datasets[0].conditions[0].settings.seed = \"3\"", "comes from \"seeds\""}},
        {"dataset-models-unknown",
         {.conditions = "[{\"label\": \"c\"}], \"models\": [\"svm\"]"}, NULL,
         {"datasets[0].models[0]: unknown model \"svm\"", NULL}},
        {"dataset-models-empty", {.conditions = "[{\"label\": \"c\"}], \"models\": []"}, NULL,
         {"datasets[0].models: empty list", NULL}},
        {"joint-not-a-model",
         {.conditions = "[{\"label\": \"c\"}], \"joint_models\": [\"euar\", \"late\"]"}, NULL,
         {"datasets[0].joint_models[1]: model \"late\" is not a model of this dataset", NULL}},
        {"joint-not-in-dataset-models",
         {.conditions = "[{\"label\": \"c\"}], \"models\": [\"concat\"], "
                        "\"joint_models\": [\"euar\"]"},
         NULL, {"datasets[0].joint_models[0]: model \"euar\" is not a model", NULL}},
        {"joint-type", {.conditions = "[{\"label\": \"c\"}], \"joint_models\": \"euar\""}, NULL,
         {"datasets[0].joint_models: expected an array of model names", NULL}},
        {"nonfinite-value", {.conditions = "[{\"label\": \"c\"}], \"nonfinite\": \"drop\""},
         NULL, {"datasets[0].nonfinite: 'drop' is not a policy", "\"reject\" or \"zero\""}},
        {"nonfinite-type", {.conditions = "[{\"label\": \"c\"}], \"nonfinite\": 0"}, NULL,
         {"datasets[0].nonfinite: expected \"reject\" or \"zero\", found a number", NULL}},
        {"quick-skip-type", {.extra = ", \"quick\": {\"datasets\": {\"d\": {\"skip\": 1}}}"},
         NULL, {"quick.datasets.d.skip: expected true or false, found a number", NULL}},
        {"quick-skip-all", {.extra = ", \"quick\": {\"datasets\": {\"d\": {\"skip\": true}}}"},
         NULL, {"quick.datasets: every dataset is skipped", NULL}},
        {"quick-dataset-key",
         {.extra = ", \"quick\": {\"datasets\": {\"d\": {\"seeds\": [1]}}}"}, NULL,
         {"quick.datasets.d: unknown key \"seeds\"", "settings,models,skip"}},
        {"quick-dataset-models",
         {.extra = ", \"quick\": {\"datasets\": {\"d\": {\"models\": [\"x\"]}}}"}, NULL,
         {"quick.datasets.d.models[0]: unknown model \"x\"", NULL}},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(cases); i++) {
        char text[2048], path[300];
        if (cases[i].raw)
            snprintf(text, sizeof(text), "%s", cases[i].raw);
        else
            suite_text(text, sizeof(text), &cases[i].parts);
        snprintf(path, sizeof(path), "%s/%s.json", temp_dir, cases[i].name);
        write_text(path, text);
        Suite s;
        err_clear();
        if (suite_load(path, &s) != -1)
            fail_msg("suite %s was accepted", cases[i].name);
        const char *msg = err_get();
        if (strstr(msg, path) == NULL)
            fail_msg("message for %s does not name the file: %s", cases[i].name, msg);
        for (int k = 0; k < 2; k++)
            if (cases[i].expect[k] && strstr(msg, cases[i].expect[k]) == NULL)
                fail_msg("message for %s lacks \"%s\": %s", cases[i].name, cases[i].expect[k],
                         msg);
    }
}

/* Expands a suite file of the repository and checks its table and cell counts. */
static void expand_repo_suite(const char *file, const char *table, int full, int quick) {
    Suite s;
    if (suite_load(file, &s) != 0)
        fail_msg("%s", err_get());
    assert_string_equal(s.table, table);
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    if (n != full)
        fail_msg("%s: %d cells, expected %d", file, n, full);
    for (int i = 0; i < n; i++)
        if (settings_check(&cells[i].settings) != 0)
            fail_msg("%s: cell %s: %s", file, cells[i].hash, err_get());
    suite_cells_free(cells, n);
    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    if (n != quick)
        fail_msg("%s: %d quick cells, expected %d", file, n, quick);
    suite_cells_free(cells, n);
    suite_free(&s);
}

static void paper_suite_counts(void **state) {
    /* 2 datasets x 5 expert counts x 1 model x 3 seeds; quick: synth-mosi, 1 seed. */
    expand_repo_suite(EXPERTS_SUITE, "experts", 2 * 5 * 3, 5);
    /* 2 datasets x 4 models x 3 seeds; quick: synth-mosi, 1 seed. */
    expand_repo_suite(ABLATION_SUITE, "ablation", 2 * 4 * 3, 4);
    expand_repo_suite(CONVERGENCE_SUITE, "convergence", 3 * 3, 3);
    /* 2 regression datasets x 4 models and 3 classification datasets x 6 models, 3 seeds;
     * quick: without synth-mosei, 1 seed. */
    expand_repo_suite(MAIN_SUITE, "main", (2 * 4 + 3 * 6) * 3, 4 + 3 * 6);
}

/* Fig. 4: top_k = min(3, experts), and the quick variant does not need synth-mosei. */
static void experts_suite_cells(void **state) {
    Suite s;
    if (suite_load(EXPERTS_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    SuiteCell *cells;
    int n;
    assert_int_equal(suite_expand(&s, 0, &cells, &n), 0);
    static const int experts[] = {2, 4, 8, 16, 32};
    for (size_t e = 0; e < EUAR_ARRAY_LEN(experts); e++) {
        char label[16];
        snprintf(label, sizeof(label), "E=%d", experts[e]);
        for (int seed = 1; seed <= 3; seed++) {
            const SuiteCell *c = find_cell(cells, n, "synth-mosei", label, "euar", seed);
            assert_non_null(c);
            assert_int_equal(c->settings.experts, experts[e]);
            assert_int_equal(c->settings.top_k, EUAR_MIN(3, experts[e]));
            assert_int_equal(c->settings.moe_compute, EUAR_MOE_DENSE);
            assert_int_equal(c->settings.epochs, 20);
        }
    }
    const SuiteCell *c = find_cell(cells, n, "synth-mosi", "E=32", "euar", 3);
    assert_non_null(c);
    assert_int_equal(c->settings.epochs, 100);
    suite_cells_free(cells, n);
    assert_int_equal(suite_expand(&s, 1, &cells, &n), 0);
    for (int i = 0; i < n; i++)
        assert_string_equal(cells[i].dataset, "synth-mosi");
    suite_cells_free(cells, n);
    suite_free(&s);
}

/* Table 1 and Fig. 6: classifiers only on classification data, the A-missing test condition
 * on synth-mosi, and joint files for concat, mlp-moe and euar at the first seed. */
static void main_suite_cells(void **state) {
    Suite s;
    if (suite_load(MAIN_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    for (int quick = 0; quick <= 1; quick++) {
        SuiteCell *cells;
        int n;
        assert_int_equal(suite_expand(&s, quick, &cells, &n), 0);
        int joints = 0;
        for (int i = 0; i < n; i++) {
            const SuiteCell *c = &cells[i];
            int classifier = !strcmp(c->model, "tmc") || !strcmp(c->model, "qmf");
            int regression = !strcmp(c->dataset, "synth-mosi") ||
                             !strcmp(c->dataset, "synth-mosei");
            if (classifier && regression)
                fail_msg("%s on %s", c->model, c->dataset);
            if (quick && !strcmp(c->dataset, "synth-mosei"))
                fail_msg("quick cell on synth-mosei: %s", c->hash);
            joints += c->joint;
            if (c->joint) {
                assert_string_equal(c->dataset, "synth-mosi");
                assert_int_equal((int)c->seed, 1);
                assert_int_equal(c->num_tests, 2);
                assert_string_equal(c->tests[1]->label, "A-missing");
                assert_string_equal(c->tests[1]->noise,
                                    "missing:keep=text,vision,phase=test");
            }
        }
        assert_int_equal(joints, 3);
        const SuiteCell *c = find_cell(cells, n, "synth-mosi", "clean", "late", 1);
        assert_non_null(c);
        assert_false(c->joint);
        c = find_cell(cells, n, "synth-nyud", "clean", "qmf", 1);
        assert_non_null(c);
        assert_int_equal(c->model_index, 4);
        suite_cells_free(cells, n);
    }
    suite_free(&s);
}

/* The convergence suite evaluates on the validation split after every epoch. */
static void convergence_suite_cells(void **state) {
    Suite s;
    if (suite_load(CONVERGENCE_SUITE, &s) != 0)
        fail_msg("%s", err_get());
    for (int quick = 0; quick <= 1; quick++) {
        SuiteCell *cells;
        int n;
        assert_int_equal(suite_expand(&s, quick, &cells, &n), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(cells[i].settings.eval_every, 1);
        assert_true(cells[0].settings.epochs >= 3);
        suite_cells_free(cells, n);
    }
    suite_free(&s);
}

/* A condition's settings are checked against the rules of settings_check() before a run, and
 * the error names the condition. */
static void preflight_condition_settings(void **state) {
    char data[300], results[300], suite_path[300], text[2048];
    write_mosi(data, sizeof(data), "pre.h5");
    snprintf(results, sizeof(results), "%s/condtopk-results", temp_dir);
    snprintf(text, sizeof(text),
             "{\"format_version\": 1, \"name\": \"experts\", \"models\": [\"euar\"], "
             "\"seeds\": [1], \"datasets\": [{\"label\": \"d\", \"path\": \"%s\", "
             "\"conditions\": [{\"label\": \"E=4\", \"settings\": {\"experts\": 4}}, "
             "{\"label\": \"E=2\", \"settings\": {\"experts\": 2}}]}]}", data);
    snprintf(suite_path, sizeof(suite_path), "%s/condtopk.json", temp_dir);
    write_text(suite_path, text);
    Suite s;
    if (suite_load(suite_path, &s) != 0)
        fail_msg("%s", err_get());
    SuiteRunOptions opt = {.jobs = 1, .results = results, .exe = "/bin/false"};
    err_clear();
    assert_int_equal(suite_run(&s, &opt), 1);
    assert_non_null(strstr(err_get(), "condition 'E=2'"));
    assert_non_null(strstr(err_get(), "top_k=3 is larger than experts=2"));
    assert_int_not_equal(access(results, F_OK), 0);
    suite_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(missing_suite_full),
        cmocka_unit_test(missing_suite_quick),
        cmocka_unit_test(missing_hashes_pinned),
        cmocka_unit_test(suite_parts_valid),
        cmocka_unit_test(suite_rejections),
        cmocka_unit_test(suite_missing_file),
        cmocka_unit_test(hash_stable),
        cmocka_unit_test(hash_changes),
        cmocka_unit_test(hash_covers_settings),
        cmocka_unit_test(canonical_lines_sorted),
        cmocka_unit_test(group_mixed_cells),
        cmocka_unit_test(group_without_clean),
        cmocka_unit_test(group_worker_argv),
        cmocka_unit_test(group_hash),
        cmocka_unit_test(group_only_clean),
        cmocka_unit_test(group_only_pattern),
        cmocka_unit_test(group_rejections),
        cmocka_unit_test(noise_suite_cells),
        cmocka_unit_test(plan_resume),
        cmocka_unit_test(worker_argv),
        cmocka_unit_test(only_pattern),
        cmocka_unit_test(resolved_record),
        cmocka_unit_test(runner_fake_worker),
        cmocka_unit_test(runner_grouped_cell),
        cmocka_unit_test(runner_missing_data),
        cmocka_unit_test(preflight_noise_names),
        cmocka_unit_test(preflight_model_task),
        cmocka_unit_test(preflight_settings),
        cmocka_unit_test(settings_cross_rules),
        cmocka_unit_test(runner_stale_temp),
        cmocka_unit_test(condition_settings_cells),
        cmocka_unit_test(dataset_models_cells),
        cmocka_unit_test(joint_models_cells),
        cmocka_unit_test(nonfinite_policy_cells),
        cmocka_unit_test(joint_plan_resume),
        cmocka_unit_test(quick_skip_dataset),
        cmocka_unit_test(paper_record_fields),
        cmocka_unit_test(paper_key_rejections),
        cmocka_unit_test(paper_suite_counts),
        cmocka_unit_test(experts_suite_cells),
        cmocka_unit_test(main_suite_cells),
        cmocka_unit_test(convergence_suite_cells),
        cmocka_unit_test(preflight_condition_settings),
        cmocka_unit_test(runner_folder_locked),
    };
    return cmocka_run_group_tests(tests, setup_temp, teardown_temp);
}
