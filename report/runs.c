/* Per-seed loading of a results folder for the figures (report/runs.h). */
#include "report/runs.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"

static char *path_join(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/%s", dir, name);
    return path;
}

static const char *json_text(const cJSON *obj, const char *key, const char *fallback) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) && item->valuestring ? item->valuestring : fallback;
}

static int json_int(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) && item->valuedouble >= 0 ? (int)item->valuedouble : -1;
}

static cJSON *read_json(const char *path) {
    char *text = read_file_text(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    return root;
}

int report_suite_table(const char *dir, char *buf, int cap) {
    char *path = path_join(dir, "suite.json");
    struct stat st;
    int exists = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    buf[0] = '\0';
    if (exists) {
        cJSON *root = read_json(path);
        snprintf(buf, (size_t)cap, "%s", json_text(root, "table", ""));
        cJSON_Delete(root);
    }
    free(path);
    return exists;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns 1 when hash is the hash of a cell of the record. */
static int record_has(const cJSON *cells, const char *hash) {
    const cJSON *cell;
    cJSON_ArrayForEach(cell, cells) {
        if (strcmp(json_text(cell, "hash", ""), hash) == 0)
            return 1;
    }
    return 0;
}

/* Reads one number of a curve entry; null and absent fields give NaN. */
static int curve_value(const cJSON *entry, const char *key, int index, const char *path,
                       double *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(entry, key);
    *out = NAN;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsNumber(item))
        return err_set("%s: field 'curve[%d].%s' must be a number or null; rerun the cell to "
                       "rewrite the file", path, index, key);
    *out = item->valuedouble;
    return 0;
}

static int read_curve(SeedRun *run, const cJSON *curve, const char *path) {
    if (!curve || cJSON_IsNull(curve))
        return 0;
    if (!cJSON_IsArray(curve))
        return err_set("%s: field 'curve' must be an array; rerun the cell to rewrite the file",
                       path);
    int n = cJSON_GetArraySize(curve);
    run->epoch = xcalloc((size_t)EUAR_MAX(n, 1), sizeof(double));
    run->valid_metric = xcalloc((size_t)EUAR_MAX(n, 1), sizeof(double));
    run->valid_loss = xcalloc((size_t)EUAR_MAX(n, 1), sizeof(double));
    run->num_epochs = n;
    for (int i = 0; i < n; i++) {
        const cJSON *entry = cJSON_GetArrayItem(curve, i);
        if (!cJSON_IsObject(entry))
            return err_set("%s: field 'curve[%d]' must be an object; rerun the cell to rewrite "
                           "the file", path, i);
        if (curve_value(entry, "epoch", i, path, &run->epoch[i]) != 0 ||
            curve_value(entry, "valid_metric", i, path, &run->valid_metric[i]) != 0 ||
            curve_value(entry, "valid_loss", i, path, &run->valid_loss[i]) != 0)
            return -1;
        if (isnan(run->epoch[i]))
            run->epoch[i] = i + 1;
    }
    return 0;
}

static void run_free(SeedRun *run) {
    free(run->dataset);
    free(run->condition);
    free(run->model);
    free(run->hash);
    free(run->accuracy_metric);
    free(run->epoch);
    free(run->valid_metric);
    free(run->valid_loss);
}

/* Adds the result in root to the set unless it is not a result file. */
static int add_run(RunSet *set, const cJSON *root, const char *path) {
    if (strcmp(json_text(root, "format", ""), "euar-bench-result") != 0)
        return 0;
    const cJSON *cell = cJSON_GetObjectItemCaseSensitive(root, "cell");
    SeedRun run;
    memset(&run, 0, sizeof(run));
    run.dataset = xstrdup(json_text(cell, "dataset", "?"));
    run.condition = xstrdup(json_text(cell, "condition", "?"));
    run.model = xstrdup(json_text(cell, "model", "?"));
    run.hash = xstrdup(json_text(root, "hash", ""));
    run.condition_index = json_int(cell, "condition_index");
    run.model_index = json_int(cell, "model_index");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(cell, "seed");
    run.seed = cJSON_IsNumber(seed) ? seed->valuedouble : 0.0;
    run.ok = strcmp(json_text(root, "status", ""), "ok") == 0;
    const char *protocol = json_text(cJSON_GetObjectItemCaseSensitive(cell, "settings"),
                                     "protocol", "mib");
    const char *metric = "mib_acc2";
    if (strcmp(json_text(root, "task", ""), "classification") == 0)
        metric = "acc";
    else if (strcmp(protocol, "mmsa") == 0)
        metric = "mmsa_non0_acc2";
    run.accuracy_metric = xstrdup(metric);
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(metrics, "test"), metric);
    if (run.ok && cJSON_IsNumber(value)) {
        run.has_accuracy = 1;
        run.accuracy = value->valuedouble;
    }
    if (read_curve(&run, cJSON_GetObjectItemCaseSensitive(root, "curve"), path) != 0) {
        run_free(&run);
        return -1;
    }
    set->runs = xrealloc(set->runs, (size_t)(set->num_runs + 1) * sizeof(SeedRun));
    set->runs[set->num_runs++] = run;
    return 0;
}

static void add_joint(RunSet *set, const cJSON *cell, const char *path) {
    set->joints = xrealloc(set->joints, (size_t)(set->num_joints + 1) * sizeof(JointEntry));
    JointEntry *j = &set->joints[set->num_joints++];
    j->dataset = xstrdup(json_text(cell, "dataset", "?"));
    j->condition = xstrdup(json_text(cell, "condition", "?"));
    j->model = xstrdup(json_text(cell, "model", "?"));
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(cell, "seed");
    j->seed = cJSON_IsNumber(seed) ? seed->valuedouble : 0.0;
    j->path = xstrdup(path);
}

/* Lists the joint files of the record's cells: the "joint" name, else <hash>.joint.h5 when it
 * exists in dir. */
static void collect_joints(RunSet *set, const cJSON *cells, const char *dir) {
    const cJSON *cell;
    cJSON_ArrayForEach(cell, cells) {
        const char *name = json_text(cell, "joint", NULL);
        char fallback[64];
        struct stat st;
        if (!name) {
            snprintf(fallback, sizeof(fallback), "%s.joint.h5", json_text(cell, "hash", ""));
            name = fallback;
        }
        char *path = path_join(dir, name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            add_joint(set, cell, path);
        else if (name != fallback)
            LOG_WARN("%s: joint file of cell %s/%s/%s listed in suite.json is missing, so its "
                     "t-SNE plot is skipped; rerun the suite to write it", path,
                     json_text(cell, "dataset", "?"), json_text(cell, "condition", "?"),
                     json_text(cell, "model", "?"));
        free(path);
    }
}

int report_runs_load(RunSet *out, const char *dir) {
    memset(out, 0, sizeof(*out));
    char *record_path = path_join(dir, "suite.json");
    struct stat st;
    cJSON *record = stat(record_path, &st) == 0 ? read_json(record_path) : NULL;
    free(record_path);
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(record, "cells");
    if (!cJSON_IsArray(cells))
        cells = NULL;
    if (record && json_text(record, "table", NULL))
        out->table = xstrdup(json_text(record, "table", ""));

    DIR *d = opendir(dir);
    if (!d) {
        cJSON_Delete(record);
        return err_set("cannot open results folder %s; run `euar suite FILE --results %s` "
                       "first", dir, dir);
    }
    char **names = NULL;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len < 5 || strcmp(entry->d_name + len - 5, ".json") != 0 ||
            strstr(entry->d_name, ".tmp.") || strcmp(entry->d_name, "suite.json") == 0)
            continue;
        names = xrealloc(names, (size_t)(count + 1) * sizeof(char *));
        names[count++] = xstrdup(entry->d_name);
    }
    closedir(d);
    if (count > 0)
        qsort(names, (size_t)count, sizeof(char *), cmp_names);
    int rc = 0;
    for (int i = 0; i < count; i++) {
        char *path = path_join(dir, names[i]);
        cJSON *root = rc == 0 ? read_json(path) : NULL;
        const char *hash = json_text(root, "hash", "");
        if (root && (!cells || record_has(cells, hash)))
            rc = add_run(out, root, path);
        cJSON_Delete(root);
        free(path);
        free(names[i]);
    }
    free(names);
    if (cells)
        collect_joints(out, cells, dir);
    cJSON_Delete(record);
    if (rc != 0)
        report_runs_free(out);
    return rc;
}

void report_runs_free(RunSet *set) {
    for (int i = 0; i < set->num_runs; i++)
        run_free(&set->runs[i]);
    for (int i = 0; i < set->num_joints; i++) {
        free(set->joints[i].dataset);
        free(set->joints[i].condition);
        free(set->joints[i].model);
        free(set->joints[i].path);
    }
    free(set->runs);
    free(set->joints);
    free(set->table);
    memset(set, 0, sizeof(*set));
}
