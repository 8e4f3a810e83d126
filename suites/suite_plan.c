/* Planning of a suite run: which cells are finished, the worker command of a cell, and the
 * record of the resolved suite in the results folder. Nothing here starts a process. */
#include "suite.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"

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

/* Returns 1 when the result file at `path` has "status": "ok". */
static int result_is_ok(const char *path) {
    char *text = read_file_text(path, NULL);
    if (!text)
        return 0;
    cJSON *root = cJSON_Parse(text);
    free(text);
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

void suite_plan(const SuiteCell *cells, int count, const char *dir, SuiteCellPlan *plan) {
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
        if (state > 0)
            plan[i] = EUAR_CELL_SKIP;
        else if (state == 0)
            plan[i] = EUAR_CELL_RUN;
        else
            plan[i] = EUAR_CELL_RERUN;
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
    }
    cJSON_Delete(root);
    return rc;
}
