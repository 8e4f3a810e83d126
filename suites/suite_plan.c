/* Planning of a suite run: which cells are finished, the worker command of a cell, and the
 * record of the resolved suite in the results folder. Nothing here starts a process. */
#define _XOPEN_SOURCE 700 /* realpath() */
#include "suite.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/file_hash.h"

/* Name and version of DIR/suite.json. */
#define SUITE_RECORD_FORMAT "euar-bench-suite"
#define SUITE_RECORD_VERSION 1

void suite_result_path(const char *dir, const SuiteCell *c, char *buf, int cap) {
    snprintf(buf, (size_t)cap, "%s/%s.json", dir, c->hash);
}

void suite_checkpoint_path(const char *dir, const SuiteCell *c, char *buf, int cap) {
    snprintf(buf, (size_t)cap, "%s/%s.ckpt.h5", dir, c->hash);
}

void suite_joint_path(const char *dir, const SuiteCell *c, char *buf, int cap) {
    snprintf(buf, (size_t)cap, "%s/%s.joint.h5", dir, c->hash);
}

/* Parses the result file at `path`. Returns the tree, or NULL when it cannot be read or is
 * not JSON. */
static cJSON *result_parse(const char *path) {
    char *text = read_file_text(path, NULL);
    if (!text)
        return NULL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    return root;
}

/* Returns 1 when the result file at `path` has "status": "ok". */
static int result_is_ok(const char *path) {
    cJSON *root = result_parse(path);
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    int ok = cJSON_IsString(status) && strcmp(status->valuestring, "ok") == 0;
    cJSON_Delete(root);
    return ok;
}

int suite_result_state(const char *path, char *reason, int cap) {
    reason[0] = '\0';
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(reason, (size_t)cap, "cannot stat: %s", strerror(errno));
        return -1;
    }
    char *text = read_file_text(path, NULL);
    if (!text) {
        snprintf(reason, (size_t)cap, "%s", err_get());
        return -1;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) {
        snprintf(reason, (size_t)cap, "not valid JSON");
        return -1;
    }
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
    int finished = cJSON_IsString(status) && (strcmp(status->valuestring, "ok") == 0 ||
                                              strcmp(status->valuestring, "failed") == 0);
    if (!finished)
        snprintf(reason, (size_t)cap, "no \"status\" of \"ok\" or \"failed\"");
    cJSON_Delete(root);
    return finished ? 1 : -1;
}

const char *suite_plural(int n) {
    return n == 1 ? "" : "s";
}

void suite_hash_cache_path(const char *dir, char *buf, int cap) {
    snprintf(buf, (size_t)cap, "%s/%s", dir, EUAR_SUITE_HASH_CACHE);
}

/* Reads "data_file_hash" of a result into *hash. Returns 1 when the result has one, 0 for a
 * result written before the field existed (or unreadable). */
static int result_file_hash(const char *path, uint64_t *hash) {
    cJSON *root = result_parse(path);
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(root, "data_file_hash");
    int found = cJSON_IsString(field) && sscanf(field->valuestring, "%" SCNx64, hash) == 1;
    cJSON_Delete(root);
    return found;
}

/* Hashes of the data files of the cells, one per distinct path, computed on first use. */
typedef struct {
    int count;
    const char **path;
    uint64_t *hash;
    int *known; /* 1 hashed, -1 unreadable (its cells keep their results) */
} DataHashes;

/* Returns 1 with *hash set when the current file of `path` could be hashed. */
static int data_hash_lookup(DataHashes *h, const char *path, const char *cache, int update,
                            uint64_t *hash) {
    int k = 0;
    while (k < h->count && strcmp(h->path[k], path) != 0)
        k++;
    if (k == h->count) {
        int rc = update ? file_hash_cached(path, cache, &h->hash[k])
                        : file_hash_cached_read_only(path, cache, &h->hash[k]);
        h->path[k] = path;
        h->known[k] = rc == 0 ? 1 : -1;
        h->count++;
    }
    *hash = h->hash[k];
    return h->known[k] == 1;
}

/* Plans the cells as suite_plan() does; with update 0 the hash cache is only read. */
static void plan_cells(const SuiteCell *cells, int count, const char *dir, int update,
                       SuiteCellPlan *plan) {
    char cache[EUAR_SUITE_PATH_LEN + 32];
    suite_hash_cache_path(dir, cache, sizeof(cache));
    /* The cache lives in the results folder; before the first run there is none to write. */
    struct stat dir_st;
    const char *cache_path = stat(dir, &dir_st) == 0 ? cache : NULL;
    DataHashes hashes = {0};
    hashes.path = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(char *));
    hashes.hash = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(uint64_t));
    hashes.known = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    for (int i = 0; i < count; i++) {
        char path[EUAR_SUITE_PATH_LEN + 32], reason[256];
        suite_result_path(dir, &cells[i], path, sizeof(path));
        int state = suite_result_state(path, reason, sizeof(reason));
        /* euar train writes the joint file after the result, so a run stopped in between
         * leaves a result without it. A failed run writes none and is not repeated. */
        if (state > 0 && cells[i].joint) {
            char joint[EUAR_SUITE_PATH_LEN + 32];
            suite_joint_path(dir, &cells[i], joint, sizeof(joint));
            struct stat st;
            if (stat(joint, &st) != 0 && result_is_ok(path))
                state = -1;
        }
        /* A result of another version of the data file is not finished; a result without
         * the field predates it and is kept. */
        uint64_t recorded, current;
        int stale = state > 0 && result_file_hash(path, &recorded) &&
                    data_hash_lookup(&hashes, cells[i].path, cache_path, update, &current) &&
                    recorded != current;
        if (stale)
            plan[i] = EUAR_CELL_STALE;
        else if (state > 0)
            plan[i] = EUAR_CELL_SKIP;
        else if (state == 0)
            plan[i] = EUAR_CELL_RUN;
        else
            plan[i] = EUAR_CELL_RERUN;
    }
    free(hashes.path);
    free(hashes.hash);
    free(hashes.known);
}

void suite_plan(const SuiteCell *cells, int count, const char *dir, SuiteCellPlan *plan) {
    plan_cells(cells, count, dir, 1, plan);
}

void suite_plan_read_only(const SuiteCell *cells, int count, const char *dir,
                          SuiteCellPlan *plan) {
    plan_cells(cells, count, dir, 0, plan);
}

void suite_plan_selected(const SuiteCell *cells, int count, const char *dir, int dry_run,
                         const int *selected, int n, SuiteCellPlan *plan) {
    plan_cells(cells, count, dir, !dry_run, plan);
    for (int i = 0; i < n; i++) {
        const SuiteCell *c = &cells[selected[i]];
        int first = 1, stale = 0;
        for (int j = 0; j < n && first; j++)
            first = !(j < i && strcmp(cells[selected[j]].dataset, c->dataset) == 0);
        if (!first)
            continue;
        for (int j = i; j < n; j++)
            stale += strcmp(cells[selected[j]].dataset, c->dataset) == 0 &&
                     plan[selected[j]] == EUAR_CELL_STALE;
        if (stale > 0)
            fprintf(stderr, "dataset %s: %d finished cell%s %s run again because %s changed "
                    "since %s ran\n", c->dataset, stale, suite_plural(stale),
                    stale == 1 ? "is" : "are", c->path, stale == 1 ? "it" : "they");
    }
}

/* Growing NULL-terminated argument vector. */
typedef struct {
    char **v;
    int n, cap;
} ArgList;

static void arg_push(ArgList *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arg_push(ArgList *a, const char *fmt, ...) {
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof(char *));
    }
    char buf[EUAR_NOISE_TEXT_LEN + EUAR_SUITE_PATH_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    a->v[a->n++] = xstrdup(buf);
    a->v[a->n] = NULL;
}

char **suite_cell_argv(const SuiteCell *c, const char *exe, const char *dir) {
    ArgList a = {0};
    arg_push(&a, "%s", exe);
    arg_push(&a, "train");
    arg_push(&a, "--data");
    arg_push(&a, "%s", c->path);
    arg_push(&a, "--model");
    arg_push(&a, "%s", c->model);
    arg_push(&a, "--noise");
    arg_push(&a, "%s", c->noise);
    arg_push(&a, "--noise-seed");
    arg_push(&a, "%" PRIu64, c->noise_seed);
    for (int i = 0; i < c->num_tests; i++) {
        if (!suite_cell_test_noise(c, i))
            continue;
        arg_push(&a, "--test-noise");
        arg_push(&a, "%s=%s", c->tests[i]->label, c->tests[i]->noise);
    }
    for (int i = 0; i < settings_count(); i++) {
        char value[64];
        settings_value(&c->settings, i, value, sizeof(value));
        arg_push(&a, "--set");
        arg_push(&a, "%s=%s", settings_key(i), value);
    }
    if (c->joint) {
        arg_push(&a, "--joint-out");
        arg_push(&a, "%s/%s.joint.h5", dir, c->hash);
    }
    if (c->nonfinite_zero) {
        arg_push(&a, "--nonfinite");
        arg_push(&a, "zero");
    }
    arg_push(&a, "--data-hash-cache");
    arg_push(&a, "%s/%s", dir, EUAR_SUITE_HASH_CACHE);
    arg_push(&a, "--out");
    arg_push(&a, "%s/%s.json", dir, c->hash);
    arg_push(&a, "--meta");
    arg_push(&a, "suite=%s", c->suite);
    arg_push(&a, "--meta");
    arg_push(&a, "dataset=%s", c->dataset);
    arg_push(&a, "--meta");
    arg_push(&a, "condition=%s", c->condition);
    arg_push(&a, "--meta");
    arg_push(&a, "condition_index=%d", c->condition_index);
    arg_push(&a, "--meta");
    arg_push(&a, "model_index=%d", c->model_index);
    arg_push(&a, "--meta");
    arg_push(&a, "hash=%s", c->hash);
    return a.v;
}

void suite_argv_free(char **argv) {
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

/* Adds every setting except the seed as a string, in the order of core/settings.h. */
static cJSON *settings_json(const Settings *set) {
    cJSON *obj = cJSON_CreateObject();
    for (int i = 0; i < settings_count(); i++) {
        if (strcmp(settings_key(i), "seed") == 0)
            continue;
        char value[64];
        settings_value(set, i, value, sizeof(value));
        cJSON_AddStringToObject(obj, settings_key(i), value);
    }
    return obj;
}

static cJSON *strings_json(char (*items)[EUAR_SUITE_LABEL_LEN], int n) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(items[i]));
    return arr;
}

static cJSON *seeds_json(const uint64_t *seeds, int n) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)seeds[i]));
    return arr;
}

int suite_write_resolved(const Suite *s, int quick, const SuiteCell *cells, int count,
                         const char *dir) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", SUITE_RECORD_FORMAT);
    cJSON_AddNumberToObject(root, "format_version", SUITE_RECORD_VERSION);
    cJSON_AddStringToObject(root, "source", s->file);
    cJSON_AddStringToObject(root, "name", s->name);
    cJSON_AddStringToObject(root, "description", s->description ? s->description : "");
    cJSON_AddStringToObject(root, "table", s->table);
    cJSON_AddBoolToObject(root, "quick", quick);
    cJSON_AddNumberToObject(root, "noise_seed", (double)s->noise_seed);

    const SuiteGrid *grid = &s->grid;
    int nm = quick && s->quick_grid.num_models ? s->quick_grid.num_models : grid->num_models;
    int ns = quick && s->quick_grid.num_seeds ? s->quick_grid.num_seeds : grid->num_seeds;
    cJSON_AddItemToObject(root, "models", strings_json(quick && s->quick_grid.num_models
                                                           ? s->quick_grid.models
                                                           : grid->models, nm));
    cJSON_AddItemToObject(root, "seeds", seeds_json(quick && s->quick_grid.num_seeds
                                                        ? s->quick_grid.seeds
                                                        : grid->seeds, ns));

    cJSON *datasets = cJSON_AddArrayToObject(root, "datasets");
    for (int d = 0; d < s->num_datasets; d++) {
        const SuiteDataset *ds = &s->datasets[d];
        if (!suite_dataset_included(ds, quick))
            continue;
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "label", ds->label);
        cJSON_AddStringToObject(obj, "path", ds->path);
        if (ds->nonfinite_zero)
            cJSON_AddStringToObject(obj, "nonfinite", "zero");
        int num_models;
        char (*models)[EUAR_SUITE_LABEL_LEN] = suite_dataset_models(s, ds, quick, &num_models);
        cJSON_AddItemToObject(obj, "models", strings_json(models, num_models));
        if (ds->joint.num_models > 0)
            cJSON_AddItemToObject(obj, "joint_models",
                                  strings_json(ds->joint.models, ds->joint.num_models));
        /* The settings every cell of the dataset shares before a condition's own settings and
         * the seed; each cell below lists its resolved settings. */
        Settings shared;
        suite_dataset_settings(s, ds, quick, &shared);
        cJSON_AddItemToObject(obj, "settings", settings_json(&shared));
        cJSON *conds = cJSON_AddArrayToObject(obj, "conditions");
        for (int c = 0; c < ds->num_conditions; c++) {
            const SuiteCondition *sc = &ds->conditions[c];
            cJSON *cond = cJSON_CreateObject();
            cJSON_AddStringToObject(cond, "label", sc->label);
            cJSON_AddStringToObject(cond, "noise", sc->noise);
            cJSON_AddBoolToObject(cond, "test_time", sc->test_time);
            if (sc->settings.count > 0) {
                cJSON *set = cJSON_AddObjectToObject(cond, "settings");
                for (int k = 0; k < sc->settings.count; k++)
                    cJSON_AddStringToObject(set, sc->settings.key[k], sc->settings.value[k]);
            }
            cJSON_AddItemToArray(conds, cond);
        }
        cJSON_AddItemToArray(datasets, obj);
    }

    cJSON *list = cJSON_AddArrayToObject(root, "cells");
    for (int i = 0; i < count; i++) {
        const SuiteCell *c = &cells[i];
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddStringToObject(obj, "hash", c->hash);
        cJSON_AddStringToObject(obj, "dataset", c->dataset);
        cJSON_AddStringToObject(obj, "condition", c->condition);
        cJSON_AddNumberToObject(obj, "condition_index", c->condition_index);
        cJSON_AddStringToObject(obj, "model", c->model);
        cJSON_AddNumberToObject(obj, "model_index", c->model_index);
        cJSON_AddNumberToObject(obj, "seed", (double)c->seed);
        /* A grouped cell lists every condition it reports. When "condition" names a clean
         * one, the result's metrics.test contains it. */
        if (c->num_tests > 0) {
            cJSON *tests = cJSON_AddArrayToObject(obj, "test_conditions");
            for (int t = 0; t < c->num_tests; t++)
                cJSON_AddItemToArray(tests, cJSON_CreateString(c->tests[t]->label));
        }
        cJSON_AddItemToObject(obj, "settings", settings_json(&c->settings));
        if (c->joint) {
            char joint[32];
            snprintf(joint, sizeof(joint), "%s.joint.h5", c->hash);
            cJSON_AddStringToObject(obj, "joint", joint);
        }
        cJSON_AddItemToArray(list, obj);
    }

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    EUAR_ASSERT(text != NULL);
    char path[EUAR_SUITE_PATH_LEN + 32];
    snprintf(path, sizeof(path), "%s/suite.json", dir);
    size_t len = strlen(text);
    text[len] = '\n';
    int rc = write_file_atomic(path, text, len + 1);
    free(text);
    return rc;
}

/* Returns 1 when two dataset paths name the same file: equal text, or equal real paths. */
static int same_file_path(const char *a, const char *b) {
    if (strcmp(a, b) == 0)
        return 1;
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

/* Checks that every dataset label of the suite record `root` (read from `record`) that the
 * suite also has names the same file in both, so that results of two data sets never share
 * a label in one folder. Returns 0 or -1 with err_set(). */
static int check_dataset_paths(const Suite *s, const cJSON *root, const char *record) {
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(root, "source");
    const cJSON *datasets = cJSON_GetObjectItemCaseSensitive(root, "datasets");
    const cJSON *item;
    cJSON_ArrayForEach(item, datasets) {
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(item, "label");
        const cJSON *old_path = cJSON_GetObjectItemCaseSensitive(item, "path");
        if (!cJSON_IsString(label) || !cJSON_IsString(old_path))
            continue;
        for (int d = 0; d < s->num_datasets; d++) {
            const SuiteDataset *ds = &s->datasets[d];
            if (strcmp(ds->label, label->valuestring) != 0 ||
                same_file_path(ds->path, old_path->valuestring))
                continue;
            return err_set("%s: results of suite '%s' (suite file %s) were made with dataset "
                           "'%s' at %s, but suite file %s gives '%s' the path %s; give the "
                           "suite another \"name\" (and the dataset another \"label\") or use "
                           "--results DIR to keep the results apart", record, s->name,
                           cJSON_IsString(source) ? source->valuestring : "unknown",
                           ds->label, old_path->valuestring, s->file, ds->label, ds->path);
        }
    }
    return 0;
}

int suite_check_results_dir(const Suite *s, int quick, const char *dir) {
    char path[EUAR_SUITE_PATH_LEN + 32];
    snprintf(path, sizeof(path), "%s/suite.json", dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    char *text = read_file_text(path, NULL);
    if (!text)
        return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *was_quick = cJSON_GetObjectItemCaseSensitive(root, "quick");
    int rc = 0;
    if (!root || !cJSON_IsString(format) || strcmp(format->valuestring, SUITE_RECORD_FORMAT) ||
        !cJSON_IsString(name) || !cJSON_IsBool(was_quick)) {
        rc = err_set("%s is not a suite record of euar-bench; choose another --results folder "
                     "or delete the file", path);
    } else if (strcmp(name->valuestring, s->name) != 0) {
        rc = err_set("results folder %s holds suite '%s', not '%s'; choose another --results "
                     "folder", dir, name->valuestring, s->name);
    } else if (cJSON_IsTrue(was_quick) != (quick != 0)) {
        rc = err_set("results folder %s holds the %s variant of suite '%s'; choose another "
                     "--results folder for the %s variant", dir,
                     cJSON_IsTrue(was_quick) ? "quick" : "full", s->name,
                     quick ? "quick" : "full");
    } else {
        rc = check_dataset_paths(s, root, path);
    }
    cJSON_Delete(root);
    return rc;
}
