#include "aggregate.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/result.h"
#include "core/settings.h"
#include "report/data_files.h"

const char *const report_setting_keys[EUAR_REPORT_NUM_SETTINGS] = {
    "epochs", "batch", "lr", "experts", "top_k", "hidden", "select", "protocol",
};
/* Positions of the two settings the report interprets in report_setting_keys. */
enum { SETTING_SELECT = 6, SETTING_PROTOCOL = 7 };

/* report_setting_keys, then the other keys of core/settings.h except seed, and the default
 * value text of each; filled on first use. */
static struct {
    int count;
    const char *keys[EUAR_REPORT_MAX_SETTINGS];
    char defaults[EUAR_REPORT_MAX_SETTINGS][64];
} setting_table;

static void setting_table_fill(void) {
    if (setting_table.count > 0)
        return;
    Settings defaults;
    settings_default(&defaults);
    int count = 0;
    for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS; k++)
        setting_table.keys[count++] = report_setting_keys[k];
    for (int i = 0; i < settings_count(); i++) {
        const char *key = settings_key(i);
        int listed = strcmp(key, "seed") == 0;
        for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS && !listed; k++)
            listed = strcmp(key, report_setting_keys[k]) == 0;
        if (listed)
            continue;
        EUAR_ASSERT(count < EUAR_REPORT_MAX_SETTINGS);
        setting_table.keys[count++] = key;
    }
    for (int k = 0; k < count; k++)
        for (int i = 0; i < settings_count(); i++)
            if (strcmp(settings_key(i), setting_table.keys[k]) == 0)
                settings_value(&defaults, i, setting_table.defaults[k], 64);
    setting_table.count = count;
}

int report_settings_count(void) {
    setting_table_fill();
    return setting_table.count;
}

const char *report_setting_key(int k) {
    setting_table_fill();
    EUAR_ASSERT(k >= 0 && k < setting_table.count);
    return setting_table.keys[k];
}

const char *report_setting_default(int k) {
    setting_table_fill();
    EUAR_ASSERT(k >= 0 && k < setting_table.count);
    return setting_table.defaults[k];
}

/* Values collected over the seeds of a group before the statistics. */
typedef struct {
    double *values;
    int count, cap;
} ValueList;

typedef struct {
    char *name;
    ValueList list;
} MetricValues;

typedef struct {
    MetricValues *items;
    int count, cap;
} MetricTable;

/* Per-seed mean expert sigma^2 and per-expert loads of one modality. */
typedef struct {
    char *modality;
    ValueList sigma2;
    ValueList *load; /* [num_experts] */
    int num_experts;
} RoutingValues;

typedef struct {
    RoutingValues *items;
    int count;
} RoutingTable;

typedef struct {
    char *label, *noise;
    int n;
    MetricTable metrics;
    RoutingTable routing;
} TestValues;

typedef struct {
    MetricTable metrics;
    RoutingTable routing;
    TestValues *tests;
    int num_tests;
    double *seeds;
    int num_seeds, cap_seeds;
} GroupValues;

/* Cells of DIR/suite.json, the runner's record of the suite. */
typedef struct {
    cJSON *root;
    const cJSON *cells;    /* the "cells" array */
    const cJSON *datasets; /* the "datasets" array */
    int count;
    const char **hashes; /* [count] */
    int *found;          /* [count] 1 when a result file of the cell was read */
} SuiteRecord;

typedef struct {
    ReportSet *set;
    GroupValues *values; /* parallel to set->groups */
    int cap_groups;
    SuiteRecord *record; /* NULL without suite.json */
    DataFileCheck data_files;
} Builder;

/* The fields of one result file that the report uses; strings point into the cJSON tree. */
typedef struct {
    const char *suite, *dataset, *condition, *model, *task, *status;
    int condition_index, model_index;
    int has_seed;
    double seed;
    const char *settings[EUAR_REPORT_MAX_SETTINGS];
    int selected_on_test;
    char failure[512];
    char failure_short[256];
    const cJSON *test_metrics; /* NULL when the file has none */
    const cJSON *routing;      /* NULL when the file has none */
    const cJSON *conditions;   /* NULL when the file has none (older files) */
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
    const char *kind = NULL;
    if (cJSON_IsObject(failure) &&
        get_string(failure, "kind", "failure.kind", path, 0, &kind) != 0)
        return -1;
    const cJSON *epoch = cJSON_IsObject(failure)
                             ? cJSON_GetObjectItemCaseSensitive(failure, "epoch")
                             : NULL;
    if (!reason)
        reason = "no reason recorded";
    /* Results written before failure.kind existed show their reason in the short form. */
    if (!kind || !*kind)
        kind = reason;
    if (cJSON_IsNumber(epoch)) {
        snprintf(f->failure, sizeof(f->failure), "%s (epoch %.0f)", reason,
                 epoch->valuedouble);
        snprintf(f->failure_short, sizeof(f->failure_short), "failed (%s, epoch %.0f)", kind,
                 epoch->valuedouble);
    } else {
        snprintf(f->failure, sizeof(f->failure), "%s", reason);
        snprintf(f->failure_short, sizeof(f->failure_short), "failed (%s)", kind);
    }
    return 0;
}

/* Checks an optional metrics object: every member a number or null. */
static int check_metrics(const cJSON *metrics, const char *field, const char *path) {
    if (!metrics || cJSON_IsNull(metrics))
        return 0;
    if (!cJSON_IsObject(metrics))
        return err_set("%s: field '%s' must be an object; rerun the cell to rewrite the file",
                       path, field);
    const cJSON *item;
    cJSON_ArrayForEach(item, metrics) {
        if (!cJSON_IsNumber(item) && !cJSON_IsNull(item))
            return err_set("%s: field '%s.%s' must be a number or null; rerun the cell to "
                           "rewrite the file", path, field, item->string ? item->string : "?");
    }
    return 0;
}

/* Checks an optional array whose entries are numbers, or also null when nulls is 1. */
static int check_number_array(const cJSON *array, int nulls, const char *field,
                              const char *modality, const char *key, const char *path) {
    if (!array || cJSON_IsNull(array))
        return 0;
    int ok = cJSON_IsArray(array);
    const cJSON *item;
    if (ok) {
        cJSON_ArrayForEach(item, array) {
            if (!cJSON_IsNumber(item) && !(nulls && cJSON_IsNull(item)))
                ok = 0;
        }
    }
    if (!ok)
        return err_set("%s: field '%s.%s.%s' must be an array of numbers%s; rerun the cell to "
                       "rewrite the file", path, field, modality, key, nulls ? " or nulls" : "");
    return 0;
}

/* Checks an optional routing object: per modality an object with arrays load and sigma2. */
static int check_routing(const cJSON *routing, const char *field, const char *path) {
    if (!routing || cJSON_IsNull(routing))
        return 0;
    if (!cJSON_IsObject(routing))
        return err_set("%s: field '%s' must be an object; rerun the cell to rewrite the file",
                       path, field);
    const cJSON *modality;
    cJSON_ArrayForEach(modality, routing) {
        const char *name = modality->string ? modality->string : "?";
        if (!cJSON_IsObject(modality))
            return err_set("%s: field '%s.%s' must be an object; rerun the cell to rewrite the "
                           "file", path, field, name);
        const cJSON *load = cJSON_GetObjectItemCaseSensitive(modality, "load");
        const cJSON *sigma2 = cJSON_GetObjectItemCaseSensitive(modality, "sigma2");
        if (check_number_array(load, 0, field, name, "load", path) != 0 ||
            check_number_array(sigma2, 1, field, name, "sigma2", path) != 0)
            return -1;
    }
    return 0;
}

/* Checks the optional conditions array: entries with a label, a noise spec, metrics and
 * routing (docs/results.md). */
static int check_conditions(const cJSON *conditions, const char *path) {
    if (!conditions || cJSON_IsNull(conditions))
        return 0;
    if (!cJSON_IsArray(conditions))
        return err_set("%s: field 'conditions' must be an array; rerun the cell to rewrite the "
                       "file", path);
    int index = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, conditions) {
        char field[64];
        snprintf(field, sizeof(field), "conditions[%d]", index);
        if (!cJSON_IsObject(entry))
            return err_set("%s: field '%s' must be an object; rerun the cell to rewrite the "
                           "file", path, field);
        char sub[96];
        const char *label, *noise;
        snprintf(sub, sizeof(sub), "%s.label", field);
        if (get_string(entry, "label", sub, path, 1, &label) != 0)
            return -1;
        if (!label[0])
            return err_set("%s: field '%s' is empty; rerun the cell to rewrite the file", path,
                           sub);
        snprintf(sub, sizeof(sub), "%s.noise", field);
        if (get_string(entry, "noise", sub, path, 0, &noise) != 0)
            return -1;
        snprintf(sub, sizeof(sub), "%s.metrics", field);
        if (check_metrics(cJSON_GetObjectItemCaseSensitive(entry, "metrics"), sub, path) != 0)
            return -1;
        snprintf(sub, sizeof(sub), "%s.routing", field);
        if (check_routing(cJSON_GetObjectItemCaseSensitive(entry, "routing"), sub, path) != 0)
            return -1;
        index++;
    }
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
    for (int k = 0; k < report_settings_count(); k++)
        if (setting_text(settings, report_setting_key(k), path, setting_buf[k], 64,
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
    if (check_metrics(test, "metrics.test", path) != 0)
        return -1;
    f->test_metrics = cJSON_IsObject(test) ? test : NULL;
    const cJSON *routing = cJSON_GetObjectItemCaseSensitive(root, "routing");
    if (check_routing(routing, "routing", path) != 0)
        return -1;
    f->routing = cJSON_IsObject(routing) ? routing : NULL;
    const cJSON *conditions = cJSON_GetObjectItemCaseSensitive(root, "conditions");
    if (check_conditions(conditions, path) != 0)
        return -1;
    f->conditions = cJSON_IsArray(conditions) ? conditions : NULL;
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
    for (int k = 0; k < report_settings_count(); k++)
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

static void list_add(ValueList *list, double value) {
    if (list->count == list->cap) {
        list->cap = list->cap ? 2 * list->cap : 8;
        list->values = xrealloc(list->values, (size_t)list->cap * sizeof(double));
    }
    list->values[list->count++] = value;
}

static void metric_add(MetricTable *table, const char *name, double value) {
    MetricValues *mv = NULL;
    for (int i = 0; i < table->count && !mv; i++)
        if (strcmp(table->items[i].name, name) == 0)
            mv = &table->items[i];
    if (!mv) {
        if (table->count == table->cap) {
            table->cap = table->cap ? 2 * table->cap : 16;
            table->items = xrealloc(table->items, (size_t)table->cap * sizeof(*mv));
        }
        mv = &table->items[table->count++];
        memset(mv, 0, sizeof(*mv));
        mv->name = xstrdup(name);
    }
    list_add(&mv->list, value);
}

/* Adds the numeric members of a metrics object; nulls (metrics that could not be computed)
 * are left out. */
static void metrics_add_object(MetricTable *table, const cJSON *metrics) {
    const cJSON *item;
    cJSON_ArrayForEach(item, metrics) {
        if (cJSON_IsNumber(item) && item->string)
            metric_add(table, item->string, item->valuedouble);
    }
}

/* Adds one seed's routing object: its load-weighted mean expert sigma^2 (RoutingStat) and
 * its per-expert loads, per modality. */
static void routing_add_object(RoutingTable *table, const cJSON *routing) {
    const cJSON *modality;
    cJSON_ArrayForEach(modality, routing) {
        if (!modality->string)
            continue;
        RoutingValues *rv = NULL;
        for (int i = 0; i < table->count && !rv; i++)
            if (strcmp(table->items[i].modality, modality->string) == 0)
                rv = &table->items[i];
        if (!rv) {
            table->items = xrealloc(table->items, (size_t)(table->count + 1) * sizeof(*rv));
            rv = &table->items[table->count++];
            memset(rv, 0, sizeof(*rv));
            rv->modality = xstrdup(modality->string);
        }
        const cJSON *load = cJSON_GetObjectItemCaseSensitive(modality, "load");
        const cJSON *sigma2 = cJSON_GetObjectItemCaseSensitive(modality, "sigma2");
        int num_load = cJSON_IsArray(load) ? cJSON_GetArraySize(load) : 0;
        if (num_load > rv->num_experts) {
            rv->load = xrealloc(rv->load, (size_t)num_load * sizeof(ValueList));
            memset(rv->load + rv->num_experts, 0,
                   (size_t)(num_load - rv->num_experts) * sizeof(ValueList));
            rv->num_experts = num_load;
        }
        for (int j = 0; j < num_load; j++)
            list_add(&rv->load[j], cJSON_GetArrayItem(load, j)->valuedouble);
        double weighted = 0.0, weights = 0.0, plain = 0.0;
        int count = 0;
        int num_sigma2 = cJSON_IsArray(sigma2) ? cJSON_GetArraySize(sigma2) : 0;
        for (int j = 0; j < num_sigma2; j++) {
            const cJSON *v = cJSON_GetArrayItem(sigma2, j);
            if (!cJSON_IsNumber(v))
                continue;
            double w = j < num_load ? cJSON_GetArrayItem(load, j)->valuedouble : 0.0;
            weighted += w * v->valuedouble;
            weights += w;
            plain += v->valuedouble;
            count++;
        }
        /* Without loads for the experts that have a sigma2, every expert weighs the same. */
        if (count > 0)
            list_add(&rv->sigma2, weights > 0.0 ? weighted / weights : plain / count);
    }
}

/* Adds one seed's conditions array to the group's test-time conditions. */
static void tests_add_array(GroupValues *gv, const cJSON *conditions, const char *path) {
    const cJSON *entry;
    cJSON_ArrayForEach(entry, conditions) {
        const char *label = cJSON_GetObjectItemCaseSensitive(entry, "label")->valuestring;
        const cJSON *noise_item = cJSON_GetObjectItemCaseSensitive(entry, "noise");
        const char *noise = cJSON_IsString(noise_item) ? noise_item->valuestring : "";
        TestValues *tv = NULL;
        for (int i = 0; i < gv->num_tests && !tv; i++)
            if (strcmp(gv->tests[i].label, label) == 0)
                tv = &gv->tests[i];
        if (!tv) {
            gv->tests = xrealloc(gv->tests, (size_t)(gv->num_tests + 1) * sizeof(*tv));
            tv = &gv->tests[gv->num_tests++];
            memset(tv, 0, sizeof(*tv));
            tv->label = xstrdup(label);
            tv->noise = xstrdup(noise);
        } else if (strcmp(tv->noise, noise) != 0) {
            LOG_WARN("%s: test condition '%s' has noise \"%s\", other seeds \"%s\"; the "
                     "report shows the first", path, label, noise, tv->noise);
        }
        tv->n++;
        metrics_add_object(&tv->metrics, cJSON_GetObjectItemCaseSensitive(entry, "metrics"));
        const cJSON *routing = cJSON_GetObjectItemCaseSensitive(entry, "routing");
        if (cJSON_IsObject(routing))
            routing_add_object(&tv->routing, routing);
    }
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
    for (int k = 0; k < report_settings_count(); k++)
        merge_setting(&g->settings[k], f->settings[k] ? f->settings[k] : "?");
    if (f->selected_on_test)
        g->selected_on_test = 1;
    note_seed(gv, g, f, path);
    if (strcmp(f->status, "failed") == 0) {
        g->n_failed++;
        if (!g->failure) {
            g->failure = xstrdup(f->failure);
            g->failure_short = xstrdup(f->failure_short);
        }
        return 0;
    }
    g->n_ok++;
    metrics_add_object(&gv->metrics, f->test_metrics);
    if (f->routing)
        routing_add_object(&gv->routing, f->routing);
    if (f->conditions)
        tests_add_array(gv, f->conditions, path);
    return 0;
}

/* Reads DIR/suite.json. Returns 1 when it is a suite record with a list of cells, else 0. A
 * file that is not a usable record gets a warning and is ignored. */
static int record_load(const char *dir, SuiteRecord *rec, ReportSet *set) {
    memset(rec, 0, sizeof(*rec));
    size_t len = strlen(dir) + 16;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/suite.json", dir);
    struct stat st;
    if (stat(path, &st) != 0) {
        free(path);
        return 0;
    }
    char *text = read_file_text(path, NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(root, "cells");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, "euar-bench-suite") != 0 ||
        !cJSON_IsString(name) || !cJSON_IsArray(cells)) {
        LOG_WARN("%s is not a suite record of euar-bench (format \"euar-bench-suite\" with a "
                 "\"cells\" list), so the report reads every result file of %s", path, dir);
        cJSON_Delete(root);
        free(path);
        return 0;
    }
    rec->root = root;
    rec->cells = cells;
    rec->datasets = cJSON_GetObjectItemCaseSensitive(root, "datasets");
    rec->count = cJSON_GetArraySize(cells);
    rec->hashes = xcalloc((size_t)EUAR_MAX(rec->count, 1), sizeof(char *));
    rec->found = xcalloc((size_t)EUAR_MAX(rec->count, 1), sizeof(int));
    int i = 0;
    const cJSON *cell;
    cJSON_ArrayForEach(cell, cells) {
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(cell, "hash");
        rec->hashes[i++] = cJSON_IsString(hash) ? hash->valuestring : "";
    }
    const cJSON *source = cJSON_GetObjectItemCaseSensitive(root, "source");
    set->has_record = 1;
    set->record_suite = xstrdup(name->valuestring);
    set->record_source = xstrdup(cJSON_IsString(source) ? source->valuestring : "");
    set->quick = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "quick"));
    const cJSON *dataset;
    int num_datasets = cJSON_GetArraySize(rec->datasets);
    set->record_datasets = xcalloc((size_t)EUAR_MAX(num_datasets, 1), sizeof(char *));
    cJSON_ArrayForEach(dataset, rec->datasets) {
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(dataset, "label");
        if (cJSON_IsString(label))
            set->record_datasets[set->num_record_datasets++] = xstrdup(label->valuestring);
    }
    set->num_cells = rec->count;
    free(path);
    return 1;
}

static void record_free(SuiteRecord *rec) {
    cJSON_Delete(rec->root);
    free(rec->hashes);
    free(rec->found);
    memset(rec, 0, sizeof(*rec));
}

/* Marks the cell whose hash the result carries as found. Returns 0 when no cell of the record
 * has that hash (a result of earlier settings, or one without a hash). */
static int record_claim(SuiteRecord *rec, const cJSON *result) {
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(result, "hash");
    if (!cJSON_IsString(hash) || !hash->valuestring[0])
        return 0;
    for (int i = 0; i < rec->count; i++)
        if (strcmp(rec->hashes[i], hash->valuestring) == 0) {
            rec->found[i] = 1;
            return 1;
        }
    return 0;
}

static const char *json_string(const cJSON *obj, const char *key, const char *fallback) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : fallback;
}

static int json_index(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) && item->valuedouble >= 0 ? (int)item->valuedouble : -1;
}

/* Returns the record's entry of dataset `label`, or NULL. */
static const cJSON *record_dataset(const SuiteRecord *rec, const char *label) {
    const cJSON *ds;
    cJSON_ArrayForEach(ds, rec->datasets) {
        if (strcmp(json_string(ds, "label", ""), label) == 0)
            return ds;
    }
    return NULL;
}

/* Returns the canonical noise spec of condition `label` of a record dataset, or "". */
static const char *record_condition_noise(const cJSON *ds, const char *label) {
    const cJSON *cond;
    cJSON_ArrayForEach(cond, cJSON_GetObjectItemCaseSensitive(ds, "conditions")) {
        if (strcmp(json_string(cond, "label", ""), label) == 0)
            return json_string(cond, "noise", "");
    }
    return "";
}

/* Returns the task of the results of (suite, dataset), or "" when none has been read. */
static const char *known_task(const ReportSet *set, const char *suite, const char *dataset) {
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        if (g->task[0] && strcmp(g->suite, suite) == 0 && strcmp(g->dataset, dataset) == 0)
            return g->task;
    }
    return "";
}

/* Gives each cell of the record a group, so that the tables keep every row and column of the
 * suite. A cell without any result gets an empty group with its dataset's settings from the
 * record. For a grouped cell, that group also lists the test-time conditions, with n 0. */
static void record_add_cells(Builder *b) {
    SuiteRecord *rec = b->record;
    ReportSet *set = b->set;
    int i = 0;
    const cJSON *cell;
    cJSON_ArrayForEach(cell, rec->cells) {
        ResultFields f;
        memset(&f, 0, sizeof(f));
        f.suite = set->record_suite;
        f.dataset = json_string(cell, "dataset", "?");
        f.condition = json_string(cell, "condition", "?");
        f.model = json_string(cell, "model", "?");
        f.condition_index = json_index(cell, "condition_index");
        f.model_index = json_index(cell, "model_index");
        const cJSON *ds = record_dataset(rec, f.dataset);
        const cJSON *settings = cJSON_GetObjectItemCaseSensitive(ds, "settings");
        for (int k = 0; k < report_settings_count(); k++)
            f.settings[k] = json_string(settings, report_setting_key(k), NULL);
        if (!f.settings[SETTING_PROTOCOL])
            f.settings[SETTING_PROTOCOL] = "mib";
        f.task = "";
        int index = find_group(set, &f);
        if (index < 0)
            index = add_group(b, &f);
        ReportGroup *g = &set->groups[index];
        GroupValues *gv = &b->values[index];
        g->n_expected++;
        set->num_missing += !rec->found[i];
        const cJSON *tests = cJSON_GetObjectItemCaseSensitive(cell, "test_conditions");
        if (g->n_ok + g->n_failed == 0 && gv->num_tests == 0 && cJSON_IsArray(tests)) {
            const cJSON *label;
            cJSON_ArrayForEach(label, tests) {
                /* The clean condition of the cell is metrics.test, not an entry of tests. */
                if (!cJSON_IsString(label) || strcmp(label->valuestring, f.condition) == 0)
                    continue;
                gv->tests = xrealloc(gv->tests, (size_t)(gv->num_tests + 1) * sizeof(TestValues));
                TestValues *tv = &gv->tests[gv->num_tests++];
                memset(tv, 0, sizeof(*tv));
                tv->label = xstrdup(label->valuestring);
                tv->noise = xstrdup(record_condition_noise(ds, label->valuestring));
            }
        }
        i++;
    }
    for (int j = 0; j < set->num_groups; j++) {
        ReportGroup *g = &set->groups[j];
        if (g->task[0])
            continue;
        const char *task = known_task(set, g->suite, g->dataset);
        free(g->task);
        g->task = xstrdup(task);
    }
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
    if (rc == 0 && b->record && !record_claim(b->record, root)) {
        b->set->num_left_out++;
    } else if (rc == 0) {
        ResultFields fields;
        char setting_buf[EUAR_REPORT_MAX_SETTINGS][64];
        rc = parse_result(root, path, &fields, setting_buf);
        if (rc == 0)
            rc = add_result(b, &fields, path);
        const cJSON *file_hash = cJSON_GetObjectItemCaseSensitive(root, "data_file_hash");
        uint64_t hash;
        if (rc == 0 && cJSON_IsString(file_hash) &&
            sscanf(file_hash->valuestring, "%" SCNx64, &hash) == 1)
            data_files_note(&b->data_files, fields.suite, fields.dataset, hash, path);
        if (rc == 0)
            b->set->num_files++;
    } else if (rc == 1) {
        rc = 0;
    }
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* Mean and sample standard deviation (divisor n - 1, 0 when n is 1) of a list; frees it. The
 * variance sums the differences from the first value (the shifted-data algorithm, Chan, Golub
 * and LeVeque 1983), so equal values give a std of exactly 0. */
static void list_finish(ValueList *list, double *mean_out, double *std_out) {
    double shift = list->count > 0 ? list->values[0] : 0.0, total = 0.0, sum = 0.0;
    double squares = 0.0;
    for (int j = 0; j < list->count; j++) {
        double d = list->values[j] - shift;
        total += list->values[j];
        sum += d;
        squares += d * d;
    }
    int n = list->count;
    *mean_out = n > 0 ? total / n : 0.0;
    double variance = n > 1 ? (squares - sum * sum / n) / (n - 1) : 0.0;
    if (std_out)
        *std_out = variance > 0.0 ? sqrt(variance) : 0.0;
    free(list->values);
}

static MetricStat *metrics_finish(MetricTable *table, int *count) {
    MetricStat *stats = xcalloc((size_t)(table->count ? table->count : 1), sizeof(MetricStat));
    for (int i = 0; i < table->count; i++) {
        MetricValues *mv = &table->items[i];
        stats[i].name = mv->name;
        stats[i].n = mv->list.count;
        list_finish(&mv->list, &stats[i].mean, &stats[i].std);
    }
    *count = table->count;
    free(table->items);
    return stats;
}

static RoutingStat *routing_finish(RoutingTable *table, int *count) {
    RoutingStat *stats = xcalloc((size_t)(table->count ? table->count : 1), sizeof(RoutingStat));
    for (int i = 0; i < table->count; i++) {
        RoutingValues *rv = &table->items[i];
        RoutingStat *rs = &stats[i];
        rs->modality = rv->modality;
        rs->sigma2_n = rv->sigma2.count;
        list_finish(&rv->sigma2, &rs->sigma2_mean, &rs->sigma2_std);
        rs->num_experts = rv->num_experts;
        rs->load_mean = xcalloc((size_t)(rv->num_experts ? rv->num_experts : 1), sizeof(double));
        for (int j = 0; j < rv->num_experts; j++)
            list_finish(&rv->load[j], &rs->load_mean[j], NULL);
        free(rv->load);
    }
    *count = table->count;
    free(table->items);
    return stats;
}

/* Turns the collected values into mean, sample standard deviation and n. */
static void finish_group(ReportGroup *g, GroupValues *gv) {
    g->metrics = metrics_finish(&gv->metrics, &g->num_metrics);
    g->routing = routing_finish(&gv->routing, &g->num_routing);
    g->num_tests = gv->num_tests;
    g->tests = xcalloc((size_t)(gv->num_tests ? gv->num_tests : 1), sizeof(TestStat));
    for (int i = 0; i < gv->num_tests; i++) {
        TestValues *tv = &gv->tests[i];
        TestStat *ts = &g->tests[i];
        ts->label = tv->label;
        ts->noise = tv->noise;
        ts->n = tv->n;
        ts->metrics = metrics_finish(&tv->metrics, &ts->num_metrics);
        ts->routing = routing_finish(&tv->routing, &ts->num_routing);
    }
    free(gv->tests);
    free(gv->seeds);
}

/* Lists the names of the result files of dir, sorted. */
static int list_results(const char *dir, char ***names_out, int *count_out) {
    DIR *d = opendir(dir);
    if (!d)
        return err_set("cannot open results folder %s: %s; run `euar suite FILE --results %s` "
                       "first (make suite-missing for the default suite)", dir, strerror(errno),
                       dir);
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
    SuiteRecord record;
    Builder b = {out, NULL, 0, NULL, {0}};
    if (record_load(dir, &record, out))
        b.record = &record;
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
    if (rc == 0 && b.record && out->num_files > 0)
        record_add_cells(&b);
    for (int i = 0; i < out->num_groups; i++)
        finish_group(&out->groups[i], &b.values[i]);
    free(b.values);
    if (rc == 0 && out->num_files == 0 && out->num_left_out > 0)
        rc = err_set("no result file in %s belongs to a cell of %s/suite.json: the %d result "
                     "file%s there come%s from earlier settings of the suite; run `euar suite "
                     "%s --results %s` first", dir, dir, out->num_left_out,
                     out->num_left_out == 1 ? "" : "s", out->num_left_out == 1 ? "s" : "",
                     out->record_source[0] ? out->record_source : "FILE", dir);
    else if (rc == 0 && out->num_files == 0)
        rc = err_set("no result files in %s; run `euar suite %s --results %s` first (make "
                     "suite-missing for the default suite)", dir,
                     out->record_source && out->record_source[0] ? out->record_source : "FILE",
                     dir);
    if (rc == 0 && out->num_left_out > 0)
        LOG_WARN("left out %d result file%s of %s whose hash matches no cell of its suite.json; "
                 "%s from earlier settings of the suite and can be deleted", out->num_left_out,
                 out->num_left_out == 1 ? "" : "s", dir,
                 out->num_left_out == 1 ? "it comes" : "they come");
    if (rc == 0)
        data_files_warn(&b.data_files);
    data_files_free(&b.data_files);
    if (b.record)
        record_free(&record);
    if (rc != 0)
        report_free(out);
    return rc;
}

static void free_metrics(MetricStat *metrics, int count) {
    for (int j = 0; j < count; j++)
        free(metrics[j].name);
    free(metrics);
}

static void free_routing(RoutingStat *routing, int count) {
    for (int j = 0; j < count; j++) {
        free(routing[j].modality);
        free(routing[j].load_mean);
    }
    free(routing);
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
        free(g->failure_short);
        for (int k = 0; k < report_settings_count(); k++)
            free(g->settings[k]);
        free_metrics(g->metrics, g->num_metrics);
        free_routing(g->routing, g->num_routing);
        for (int t = 0; t < g->num_tests; t++) {
            free(g->tests[t].label);
            free(g->tests[t].noise);
            free_metrics(g->tests[t].metrics, g->tests[t].num_metrics);
            free_routing(g->tests[t].routing, g->tests[t].num_routing);
        }
        free(g->tests);
    }
    free(set->groups);
    free(set->record_suite);
    free(set->record_source);
    for (int i = 0; i < set->num_record_datasets; i++)
        free(set->record_datasets[i]);
    free(set->record_datasets);
    memset(set, 0, sizeof(*set));
}

int report_dataset_rank(const ReportSet *set, const char *dataset) {
    for (int i = 0; i < set->num_record_datasets; i++)
        if (strcmp(set->record_datasets[i], dataset) == 0)
            return i;
    return set->num_record_datasets;
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

const MetricStat *report_metric_find(const MetricStat *metrics, int count, const char *name) {
    for (int i = 0; i < count; i++)
        if (strcmp(metrics[i].name, name) == 0)
            return &metrics[i];
    return NULL;
}

const MetricStat *report_group_metric(const ReportGroup *group, const char *name) {
    return report_metric_find(group->metrics, group->num_metrics, name);
}

const char *report_accuracy_metric(const ReportGroup *group) {
    if (strcmp(group->task, "classification") == 0)
        return "acc";
    return strcmp(group->protocol, "mmsa") == 0 ? "mmsa_non0_acc2" : "mib_acc2";
}

const TestStat *report_group_test(const ReportGroup *group, const char *label) {
    for (int i = 0; i < group->num_tests; i++)
        if (strcmp(group->tests[i].label, label) == 0)
            return &group->tests[i];
    return NULL;
}

const RoutingStat *report_routing_find(const RoutingStat *routing, int count,
                                       const char *modality) {
    for (int i = 0; i < count; i++)
        if (strcmp(routing[i].modality, modality) == 0)
            return &routing[i];
    return NULL;
}
