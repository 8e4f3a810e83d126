#include "aggregate.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/result.h"

const char *const report_setting_keys[EUAR_REPORT_NUM_SETTINGS] = {
    "epochs", "batch", "lr", "experts", "top_k", "hidden", "select", "protocol",
};
/* Positions of the two settings the report interprets in report_setting_keys. */
enum { SETTING_SELECT = 6, SETTING_PROTOCOL = 7 };

/* Values of one metric collected over the seeds of a group before the statistics. */
typedef struct {
    char *name;
    double *values;
    int count, cap;
} MetricValues;

typedef struct {
    MetricValues *metrics;
    int num_metrics, cap_metrics;
    double *seeds;
    int num_seeds, cap_seeds;
} GroupValues;

typedef struct {
    ReportSet *set;
    GroupValues *values; /* parallel to set->groups */
    int cap_groups;
} Builder;

/* The fields of one result file that the report uses; strings point into the cJSON tree. */
typedef struct {
    const char *suite, *dataset, *condition, *model, *task, *status;
    int condition_index, model_index;
    int has_seed;
    double seed;
    const char *settings[EUAR_REPORT_NUM_SETTINGS];
    int selected_on_test;
    char failure[512];
    const cJSON *test_metrics; /* NULL when the file has none */
} ResultFields;

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a string field; a missing field gives NULL when optional and an error otherwise. */
static int get_string(const cJSON *obj, const char *key, const char *field, const char *path,
                      int required, const char **out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!item || cJSON_IsNull(item)) {
        if (required)
            return err_set("%s: field '%s' is missing; rerun the cell to rewrite the file", path,
                           field);
        return 0;
    }
    if (!cJSON_IsString(item) || !item->valuestring)
        return err_set("%s: field '%s' must be a string; rerun the cell to rewrite the file",
                       path, field);
    *out = item->valuestring;
    return 0;
}

/* Reads an optional non-negative integer field into *out, or -1 when absent. */
static int get_index(const cJSON *obj, const char *key, const char *field, const char *path,
                     int *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = -1;
    if (!item || cJSON_IsNull(item))
        return 0;
    double v = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
    if (!(v >= 0.0 && v <= 1e9 && v == floor(v)))
        return err_set("%s: field '%s' must be a non-negative integer; rerun the cell to "
                       "rewrite the file", path, field);
    *out = (int)v;
    return 0;
}

/* Checks format and format_version. Returns 1 when the file is JSON of another format. */
static int check_format(const cJSON *root, const char *path) {
    const char *format;
    if (get_string(root, "format", "format", path, 1, &format) != 0)
        return err_set("%s: field 'format' is missing or not a string, so this is not a result "
                       "file (expected \"%s\"); move it out of the results folder", path,
                       EUAR_RESULT_FORMAT);
    if (strcmp(format, EUAR_RESULT_FORMAT) != 0) {
        /* suite.json, the runner's copy of the resolved suite, lives beside the results. */
        if (strcmp(format, "euar-bench-suite") == 0)
            return 1;
        LOG_WARN("%s: format \"%s\" is not \"%s\"; skipped", path, format, EUAR_RESULT_FORMAT);
        return 1;
    }
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "format_version");
    if (!cJSON_IsNumber(version) || version->valuedouble != floor(version->valuedouble) ||
        version->valuedouble < 1)
        return err_set("%s: field 'format_version' must be a positive integer; rerun the cell "
                       "to rewrite the file", path);
    if (version->valuedouble > EUAR_RESULT_VERSION)
        return err_set("%s: format_version %.0f is newer than this euar-bench reads (up to %d); "
                       "upgrade euar-bench to report these results", path,
                       version->valuedouble, EUAR_RESULT_VERSION);
    return 0;
}

/* Reads one entry of cell.settings as text into a buffer owned by the caller. */
static int setting_text(const cJSON *settings, const char *key, const char *path, char *buf,
                        size_t cap, const char **out) {
    const cJSON *item = settings ? cJSON_GetObjectItemCaseSensitive(settings, key) : NULL;
    *out = NULL;
    if (!item || cJSON_IsNull(item))
        return 0;
    if (cJSON_IsString(item) && item->valuestring)
        snprintf(buf, cap, "%s", item->valuestring);
    else if (cJSON_IsNumber(item))
        snprintf(buf, cap, "%.9g", item->valuedouble);
    else
        return err_set("%s: field 'cell.settings.%s' must be a string or a number; rerun the "
                       "cell to rewrite the file", path, key);
    *out = buf;
    return 0;
}

static int parse_failure(const cJSON *root, const char *path, ResultFields *f) {
    const cJSON *failure = cJSON_GetObjectItemCaseSensitive(root, "failure");
    const char *reason = NULL;
    if (cJSON_IsObject(failure) &&
        get_string(failure, "reason", "failure.reason", path, 0, &reason) != 0)
        return -1;
    const cJSON *epoch = cJSON_IsObject(failure)
                             ? cJSON_GetObjectItemCaseSensitive(failure, "epoch")
                             : NULL;
    if (cJSON_IsNumber(epoch))
        snprintf(f->failure, sizeof(f->failure), "%s (epoch %.0f)",
                 reason ? reason : "no reason recorded", epoch->valuedouble);
    else
        snprintf(f->failure, sizeof(f->failure), "%s", reason ? reason : "no reason recorded");
    return 0;
}

/* Extracts and validates the fields the report needs. setting_buf receives the text of
 * numeric settings. */
static int parse_result(const cJSON *root, const char *path, ResultFields *f,
                        char setting_buf[][64]) {
    memset(f, 0, sizeof(*f));
    if (get_string(root, "status", "status", path, 1, &f->status) != 0)
        return -1;
    if (strcmp(f->status, "ok") != 0 && strcmp(f->status, "failed") != 0)
        return err_set("%s: field 'status' is \"%s\", expected \"ok\" or \"failed\"; rerun the "
                       "cell to rewrite the file", path, f->status);
    if (get_string(root, "task", "task", path, 1, &f->task) != 0)
        return -1;
    if (strcmp(f->task, "regression") != 0 && strcmp(f->task, "classification") != 0)
        return err_set("%s: field 'task' is \"%s\", expected \"regression\" or "
                       "\"classification\"; rerun the cell to rewrite the file", path, f->task);
    const cJSON *cell = cJSON_GetObjectItemCaseSensitive(root, "cell");
    if (!cJSON_IsObject(cell))
        return err_set("%s: field 'cell' is missing or not an object; rerun the cell to "
                       "rewrite the file", path);
    if (get_string(cell, "suite", "cell.suite", path, 0, &f->suite) != 0 ||
        get_string(cell, "dataset", "cell.dataset", path, 1, &f->dataset) != 0 ||
        get_string(cell, "condition", "cell.condition", path, 1, &f->condition) != 0 ||
        get_string(cell, "model", "cell.model", path, 1, &f->model) != 0 ||
        get_index(cell, "condition_index", "cell.condition_index", path,
                  &f->condition_index) != 0 ||
        get_index(cell, "model_index", "cell.model_index", path, &f->model_index) != 0)
        return -1;
    if (!f->suite)
        f->suite = "";
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(cell, "seed");
    if (cJSON_IsNumber(seed)) {
        f->has_seed = 1;
        f->seed = seed->valuedouble;
    }
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(cell, "settings");
    if (settings && !cJSON_IsObject(settings) && !cJSON_IsNull(settings))
        return err_set("%s: field 'cell.settings' must be an object; rerun the cell to "
                       "rewrite the file", path);
    for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS; k++)
        if (setting_text(settings, report_setting_keys[k], path, setting_buf[k], 64,
                         &f->settings[k]) != 0)
            return -1;

    /* docs/results.md defines the top-level select. cell.settings.select is the fallback for
     * files that lack it. */
    const char *select;
    if (get_string(root, "select", "select", path, 0, &select) != 0)
        return -1;
    if (select)
        f->settings[SETTING_SELECT] = select;
    if (!f->settings[SETTING_PROTOCOL])
        f->settings[SETTING_PROTOCOL] = "mib";
    if (f->settings[SETTING_SELECT] && strcmp(f->settings[SETTING_SELECT], "test-acc2") == 0)
        f->selected_on_test = 1;

    if (strcmp(f->status, "failed") == 0 && parse_failure(root, path, f) != 0)
        return -1;
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    const cJSON *test = cJSON_IsObject(metrics)
                            ? cJSON_GetObjectItemCaseSensitive(metrics, "test")
                            : NULL;
    if (test && !cJSON_IsObject(test) && !cJSON_IsNull(test))
        return err_set("%s: field 'metrics.test' must be an object; rerun the cell to rewrite "
                       "the file", path);
    f->test_metrics = cJSON_IsObject(test) ? test : NULL;
    const cJSON *item;
    cJSON_ArrayForEach(item, f->test_metrics) {
        if (!cJSON_IsNumber(item) && !cJSON_IsNull(item))
            return err_set("%s: field 'metrics.test.%s' must be a number or null; rerun the "
                           "cell to rewrite the file", path, item->string ? item->string : "?");
    }
    return 0;
}

static int find_group(const ReportSet *set, const ResultFields *f) {
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        if (strcmp(g->suite, f->suite) == 0 && strcmp(g->dataset, f->dataset) == 0 &&
            strcmp(g->condition, f->condition) == 0 && strcmp(g->model, f->model) == 0)
            return i;
    }
    return -1;
}

static int add_group(Builder *b, const ResultFields *f) {
    ReportSet *set = b->set;
    if (set->num_groups == b->cap_groups) {
        b->cap_groups = b->cap_groups ? 2 * b->cap_groups : 16;
        set->groups = xrealloc(set->groups, (size_t)b->cap_groups * sizeof(ReportGroup));
        b->values = xrealloc(b->values, (size_t)b->cap_groups * sizeof(GroupValues));
    }
    int index = set->num_groups++;
    ReportGroup *g = &set->groups[index];
    memset(g, 0, sizeof(*g));
    memset(&b->values[index], 0, sizeof(GroupValues));
    g->suite = xstrdup(f->suite);
    g->dataset = xstrdup(f->dataset);
    g->condition = xstrdup(f->condition);
    g->model = xstrdup(f->model);
    g->condition_index = f->condition_index;
    g->model_index = f->model_index;
    g->task = xstrdup(f->task);
    g->protocol = xstrdup(f->settings[SETTING_PROTOCOL]);
    for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS; k++)
        g->settings[k] = xstrdup(f->settings[k] ? f->settings[k] : "?");
    return index;
}

/* Adds value to the "|"-joined list *joined unless it is there already. */
static void merge_setting(char **joined, const char *value) {
    size_t n = strlen(value);
    for (const char *p = *joined; *p;) {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return;
        if (!end)
            break;
        p = end + 1;
    }
    size_t old = strlen(*joined);
    *joined = xrealloc(*joined, old + n + 2);
    (*joined)[old] = '|';
    memcpy(*joined + old + 1, value, n + 1);
}

static void add_metric_value(GroupValues *gv, const char *name, double value) {
    MetricValues *mv = NULL;
    for (int i = 0; i < gv->num_metrics; i++)
        if (strcmp(gv->metrics[i].name, name) == 0)
            mv = &gv->metrics[i];
    if (!mv) {
        if (gv->num_metrics == gv->cap_metrics) {
            gv->cap_metrics = gv->cap_metrics ? 2 * gv->cap_metrics : 16;
            gv->metrics = xrealloc(gv->metrics, (size_t)gv->cap_metrics * sizeof(*mv));
        }
        mv = &gv->metrics[gv->num_metrics++];
        memset(mv, 0, sizeof(*mv));
        mv->name = xstrdup(name);
    }
    if (mv->count == mv->cap) {
        mv->cap = mv->cap ? 2 * mv->cap : 8;
        mv->values = xrealloc(mv->values, (size_t)mv->cap * sizeof(double));
    }
    mv->values[mv->count++] = value;
}

static void note_seed(GroupValues *gv, const ReportGroup *g, const ResultFields *f,
                      const char *path) {
    if (!f->has_seed)
        return;
    for (int i = 0; i < gv->num_seeds; i++)
        if (gv->seeds[i] == f->seed)
            LOG_WARN("%s: seed %.0f of condition '%s', model '%s' was already read from another "
                     "file; both count in the statistics", path, f->seed, g->condition, g->model);
    if (gv->num_seeds == gv->cap_seeds) {
        gv->cap_seeds = gv->cap_seeds ? 2 * gv->cap_seeds : 8;
        gv->seeds = xrealloc(gv->seeds, (size_t)gv->cap_seeds * sizeof(double));
    }
    gv->seeds[gv->num_seeds++] = f->seed;
}

static int add_result(Builder *b, const ResultFields *f, const char *path) {
    int index = find_group(b->set, f);
    if (index < 0)
        index = add_group(b, f);
    ReportGroup *g = &b->set->groups[index];
    GroupValues *gv = &b->values[index];
    if (strcmp(g->task, f->task) != 0)
        return err_set("%s: task \"%s\" differs from the \"%s\" of earlier results of "
                       "dataset '%s'; keep one dataset file per dataset label", path, f->task,
                       g->task, g->dataset);
    for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS; k++)
        merge_setting(&g->settings[k], f->settings[k] ? f->settings[k] : "?");
    if (f->selected_on_test)
        g->selected_on_test = 1;
    note_seed(gv, g, f, path);
    if (strcmp(f->status, "failed") == 0) {
        g->n_failed++;
        if (!g->failure)
            g->failure = xstrdup(f->failure);
        return 0;
    }
    g->n_ok++;
    const cJSON *item;
    cJSON_ArrayForEach(item, f->test_metrics) {
        if (cJSON_IsNumber(item) && item->string)
            add_metric_value(gv, item->string, item->valuedouble);
    }
    return 0;
}

static int load_file(Builder *b, const char *path) {
    char *text = read_file_text(path, NULL);
    if (!text)
        return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root || !cJSON_IsObject(root)) {
        long offset = end && end >= text ? (long)(end - text) : -1;
        cJSON_Delete(root);
        free(text);
        if (offset >= 0)
            return err_set("%s: invalid JSON near byte %ld; delete the file and rerun the suite "
                           "to recreate it", path, offset);
        return err_set("%s: not a JSON object; delete the file and rerun the suite to recreate "
                       "it", path);
    }
    int rc = check_format(root, path);
    if (rc == 0) {
        ResultFields fields;
        char setting_buf[EUAR_REPORT_NUM_SETTINGS][64];
        rc = parse_result(root, path, &fields, setting_buf);
        if (rc == 0)
            rc = add_result(b, &fields, path);
        if (rc == 0)
            b->set->num_files++;
    } else if (rc == 1) {
        rc = 0;
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* Turns the collected values into mean, sample standard deviation and n. */
static void finish_group(ReportGroup *g, GroupValues *gv) {
    g->num_metrics = gv->num_metrics;
    g->metrics = xcalloc((size_t)(gv->num_metrics ? gv->num_metrics : 1), sizeof(MetricStat));
    for (int i = 0; i < gv->num_metrics; i++) {
        MetricValues *mv = &gv->metrics[i];
        MetricStat *ms = &g->metrics[i];
        double sum = 0.0;
        for (int j = 0; j < mv->count; j++)
            sum += mv->values[j];
        double mean = sum / mv->count;
        double squares = 0.0;
        for (int j = 0; j < mv->count; j++)
            squares += (mv->values[j] - mean) * (mv->values[j] - mean);
        ms->name = mv->name;
        ms->mean = mean;
        ms->std = mv->count > 1 ? sqrt(squares / (mv->count - 1)) : 0.0;
        ms->n = mv->count;
        free(mv->values);
    }
    free(gv->metrics);
    free(gv->seeds);
}

/* Lists the names of the result files of dir, sorted. */
static int list_results(const char *dir, char ***names_out, int *count_out) {
    DIR *d = opendir(dir);
    if (!d)
        return err_set("no results in %s (%s); run `make suite-missing` first", dir,
                       strerror(errno));
    char **names = NULL;
    int count = 0, cap = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        if (!ends_with(name, ".json") || strstr(name, ".tmp."))
            continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            names = xrealloc(names, (size_t)cap * sizeof(char *));
        }
        names[count++] = xstrdup(name);
    }
    closedir(d);
    if (count > 0)
        qsort(names, (size_t)count, sizeof(char *), cmp_names);
    *names_out = names;
    *count_out = count;
    return 0;
}

int report_load_dir(ReportSet *out, const char *dir) {
    EUAR_ASSERT(strcmp(report_setting_keys[SETTING_SELECT], "select") == 0);
    EUAR_ASSERT(strcmp(report_setting_keys[SETTING_PROTOCOL], "protocol") == 0);
    memset(out, 0, sizeof(*out));
    char **names = NULL;
    int count = 0;
    if (list_results(dir, &names, &count) != 0)
        return -1;
    Builder b = {out, NULL, 0};
    int rc = 0;
    for (int i = 0; i < count && rc == 0; i++) {
        size_t len = strlen(dir) + strlen(names[i]) + 2;
        char *path = xmalloc(len);
        snprintf(path, len, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            rc = load_file(&b, path);
        free(path);
    }
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
    for (int i = 0; i < out->num_groups; i++)
        finish_group(&out->groups[i], &b.values[i]);
    free(b.values);
    if (rc == 0 && out->num_files == 0)
        rc = err_set("no results in %s; run `make suite-missing` first", dir);
    if (rc != 0)
        report_free(out);
    return rc;
}

void report_free(ReportSet *set) {
    for (int i = 0; i < set->num_groups; i++) {
        ReportGroup *g = &set->groups[i];
        free(g->suite);
        free(g->dataset);
        free(g->condition);
        free(g->model);
        free(g->task);
        free(g->protocol);
        free(g->failure);
        for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS; k++)
            free(g->settings[k]);
        for (int j = 0; j < g->num_metrics; j++)
            free(g->metrics[j].name);
        free(g->metrics);
    }
    free(set->groups);
    memset(set, 0, sizeof(*set));
}

const ReportGroup *report_find(const ReportSet *set, const char *suite, const char *dataset,
                               const char *condition, const char *model) {
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        if (strcmp(g->suite, suite) == 0 && strcmp(g->dataset, dataset) == 0 &&
            strcmp(g->condition, condition) == 0 && strcmp(g->model, model) == 0)
            return g;
    }
    return NULL;
}

const MetricStat *report_group_metric(const ReportGroup *group, const char *name) {
    for (int i = 0; i < group->num_metrics; i++)
        if (strcmp(group->metrics[i].name, name) == 0)
            return &group->metrics[i];
    return NULL;
}
