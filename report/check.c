#include "check.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/common.h"
#include "report/text.h"

/* Every metric of result files (docs/results.md) with its direction and built-in absolute
 * tolerance. The same binary, backend and thread count give bit-identical metrics, so the
 * tolerance only absorbs floating-point differences between compilers and BLAS builds.
 * docs/check.md gives the measurements behind 0.02. */
static const struct {
    const char *name;
    int direction; /* +1 higher is better, -1 lower is better */
    double tolerance;
} check_metrics[] = {
    {"loss", -1, 0.02},
    {"mib_acc2", +1, 0.02},
    {"mib_f1", +1, 0.02},
    {"mib_mae", -1, 0.02},
    {"mib_corr", +1, 0.02},
    {"mmsa_has0_acc2", +1, 0.02},
    {"mmsa_has0_f1", +1, 0.02},
    {"mmsa_non0_acc2", +1, 0.02},
    {"mmsa_non0_f1", +1, 0.02},
    {"mmsa_mae", -1, 0.02},
    {"mmsa_corr", +1, 0.02},
    {"acc7", +1, 0.02},
    {"acc5", +1, 0.02},
    {"acc", +1, 0.02},
    {"macro_f1", +1, 0.02},
    {"weighted_f1", +1, 0.02},
};

/* Margin added to each tolerance so that a difference equal to the tolerance in decimal
 * (0.50 - 0.48 against 0.02) is not a regression because of binary rounding. */
#define CHECK_ROUNDING_MARGIN 1e-9

static const char *const metric_list_text =
    "loss, mib_acc2, mib_f1, mib_mae, mib_corr, mmsa_has0_acc2, mmsa_has0_f1, mmsa_non0_acc2, "
    "mmsa_non0_f1, mmsa_mae, mmsa_corr, acc7, acc5, acc, macro_f1, weighted_f1";

int check_metric_direction(const char *metric) {
    for (size_t i = 0; i < EUAR_ARRAY_LEN(check_metrics); i++)
        if (strcmp(metric, check_metrics[i].name) == 0)
            return check_metrics[i].direction;
    return 0;
}

double check_default_tolerance(const char *metric) {
    for (size_t i = 0; i < EUAR_ARRAY_LEN(check_metrics); i++)
        if (strcmp(metric, check_metrics[i].name) == 0)
            return check_metrics[i].tolerance;
    return -1.0;
}

/* Parses a finite non-negative number that fills the whole text. */
static int parse_abs(const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v < 0.0)
        return -1;
    *out = v;
    return 0;
}

int check_tolerance_parse(CheckTolerances *tol, const char *text) {
    const char *eq = strchr(text, '=');
    if (!eq)
        return err_set("--tolerance '%s': expected METRIC=ABS, for example mib_acc2=0.01", text);
    char metric[64];
    size_t len = (size_t)(eq - text);
    if (len >= sizeof(metric))
        len = sizeof(metric) - 1;
    memcpy(metric, text, len);
    metric[len] = '\0';
    if (check_metric_direction(metric) == 0)
        return err_set("--tolerance '%s': unknown metric '%s'; valid metrics are %s", text,
                       metric, metric_list_text);
    double value;
    if (parse_abs(eq + 1, &value) != 0)
        return err_set("--tolerance '%s': value '%s' is not a finite non-negative number; give "
                       "an absolute difference such as 0.01", text, eq + 1);
    for (int i = 0; i < tol->count; i++) {
        if (strcmp(tol->items[i].metric, metric) == 0) {
            tol->items[i].value = value;
            return 0;
        }
    }
    EUAR_ASSERT(tol->count < EUAR_CHECK_MAX_TOLERANCES);
    /* Known metric names are shorter than the field. */
    snprintf(tol->items[tol->count].metric, sizeof(tol->items[0].metric), "%.31s", metric);
    tol->items[tol->count].value = value;
    tol->count++;
    return 0;
}

int check_default_tolerance_parse(CheckTolerances *tol, const char *text) {
    double value;
    if (parse_abs(text, &value) != 0)
        return err_set("--default-tolerance: value '%s' is not a finite non-negative number; "
                       "give an absolute difference such as 0.02", text);
    tol->has_default = 1;
    tol->default_value = value;
    return 0;
}

/* Returns the tolerance the user gave for a metric, or -1. */
static double user_tolerance(const CheckTolerances *tol, const char *metric) {
    if (!tol)
        return -1.0;
    for (int i = 0; i < tol->count; i++)
        if (strcmp(tol->items[i].metric, metric) == 0)
            return tol->items[i].value;
    return tol->has_default ? tol->default_value : -1.0;
}

/* Tolerance of a metric in a comparison: user entry, then the baseline's stored value, then
 * the built-in default. */
static double compare_tolerance(const CheckTolerances *tol, const CheckBaseline *baseline,
                                const char *metric) {
    double value = user_tolerance(tol, metric);
    if (value >= 0.0)
        return value;
    for (int i = 0; i < baseline->num_tolerances; i++)
        if (strcmp(baseline->tolerance_metrics[i], metric) == 0)
            return baseline->tolerance_values[i];
    return check_default_tolerance(metric);
}

/* ---- writing a baseline ---- */

static int metric_requested(const char *const *metrics, int num_metrics, const char *name) {
    if (!metrics)
        return 1;
    for (int i = 0; i < num_metrics; i++)
        if (strcmp(metrics[i], name) == 0)
            return 1;
    return 0;
}

static void group_label(const char *suite, const char *dataset, const char *condition,
                        const char *model, char *buf, size_t cap) {
    if (suite && suite[0])
        snprintf(buf, cap, "%s/%s/%s/%s", suite, dataset, condition, model);
    else
        snprintf(buf, cap, "%s/%s/%s", dataset, condition, model);
}

/* Adds {"mean", "std", "n"} of one metric to the metrics object of a group and its tolerance
 * to the tolerances object when the metric is new there. */
static void add_baseline_metric(cJSON *metrics, cJSON *tolerances, const MetricStat *ms,
                                const CheckTolerances *tol) {
    cJSON *entry = cJSON_AddObjectToObject(metrics, ms->name);
    cJSON_AddNumberToObject(entry, "mean", ms->mean);
    cJSON_AddNumberToObject(entry, "std", ms->std);
    cJSON_AddNumberToObject(entry, "n", ms->n);
    if (!cJSON_GetObjectItemCaseSensitive(tolerances, ms->name)) {
        double value = user_tolerance(tol, ms->name);
        cJSON_AddNumberToObject(tolerances, ms->name,
                                value >= 0.0 ? value : check_default_tolerance(ms->name));
    }
}

/* Appends the compact JSON text of item. */
static void append_json(TextBuf *out, const cJSON *item) {
    char *text = cJSON_PrintUnformatted(item);
    EUAR_ASSERT(text != NULL);
    text_printf(out, "%s", text);
    cJSON_free(text);
}

/* Appends "key": with the key escaped as a JSON string. */
static void append_json_key(TextBuf *out, const char *key) {
    cJSON *name = cJSON_CreateString(key);
    append_json(out, name);
    cJSON_Delete(name);
    text_printf(out, ": ");
}

/* Formats a baseline tree with one line per top-level field, group header and metric, so that
 * a change of the stored baseline shows as a small line diff. */
static char *baseline_format(const cJSON *root) {
    TextBuf out = {NULL, 0, 0};
    text_printf(&out, "{\n");
    const cJSON *field;
    cJSON_ArrayForEach(field, root) {
        text_printf(&out, "  ");
        append_json_key(&out, field->string);
        if (strcmp(field->string, "groups") != 0) {
            append_json(&out, field);
            text_printf(&out, field->next ? ",\n" : "\n");
            continue;
        }
        text_printf(&out, "[\n");
        const cJSON *group;
        cJSON_ArrayForEach(group, field) {
            text_printf(&out, "    {");
            const cJSON *key;
            cJSON_ArrayForEach(key, group) {
                if (strcmp(key->string, "metrics") == 0)
                    continue;
                append_json_key(&out, key->string);
                append_json(&out, key);
                text_printf(&out, ", ");
            }
            text_printf(&out, "\"metrics\": {\n");
            const cJSON *metric;
            cJSON_ArrayForEach(metric, cJSON_GetObjectItemCaseSensitive(group, "metrics")) {
                text_printf(&out, "      ");
                append_json_key(&out, metric->string);
                append_json(&out, metric);
                text_printf(&out, metric->next ? ",\n" : "\n");
            }
            text_printf(&out, group->next ? "    }},\n" : "    }}\n");
        }
        text_printf(&out, field->next ? "  ],\n" : "  ]\n");
    }
    text_printf(&out, "}\n");
    return text_finish(&out);
}

/* Orders groups as the tables do: suite, dataset, then condition and model by their position
 * in the suite file, then by name. */
/* The set whose suite order cmp_groups follows; qsort passes no context. */
static const ReportSet *sort_set;

static int cmp_groups(const void *a, const void *b) {
    const ReportGroup *x = *(const ReportGroup *const *)a, *y = *(const ReportGroup *const *)b;
    int c = strcmp(x->suite, y->suite);
    if (c == 0) {
        int rx = report_dataset_rank(sort_set, x->dataset);
        int ry = report_dataset_rank(sort_set, y->dataset);
        c = (rx > ry) - (rx < ry);
    }
    if (c == 0)
        c = strcmp(x->dataset, y->dataset);
    if (c == 0 && x->condition_index != y->condition_index)
        c = x->condition_index < y->condition_index ? -1 : 1;
    if (c == 0)
        c = strcmp(x->condition, y->condition);
    if (c == 0 && x->model_index != y->model_index)
        c = x->model_index < y->model_index ? -1 : 1;
    if (c == 0)
        c = strcmp(x->model, y->model);
    return c;
}

char *check_baseline_render(const ReportSet *set, const char *const *metrics, int num_metrics,
                            const CheckTolerances *tol, const char *created) {
    for (int i = 0; metrics && i < num_metrics; i++)
        if (check_metric_direction(metrics[i]) == 0) {
            err_set("--metrics: unknown metric '%s'; valid metrics are %s", metrics[i],
                    metric_list_text);
            return NULL;
        }
    char label[512];
    for (int g = 0; g < set->num_groups; g++) {
        const ReportGroup *group = &set->groups[g];
        if (group->n_failed == 0)
            continue;
        group_label(group->suite, group->dataset, group->condition, group->model, label,
                    sizeof(label));
        err_set("%s: %d seed(s) failed (%s), so the results cannot serve as a baseline; fix or "
                "rerun the failed cells first", label, group->n_failed,
                group->failure ? group->failure : "no reason recorded");
        return NULL;
    }

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", EUAR_BASELINE_FORMAT);
    cJSON_AddNumberToObject(root, "format_version", EUAR_BASELINE_VERSION);
    cJSON_AddStringToObject(root, "created", created);
    cJSON *build = cJSON_AddObjectToObject(root, "build");
    cJSON_AddStringToObject(build, "version", EUAR_VERSION);
#ifdef __VERSION__
    cJSON_AddStringToObject(build, "compiler", __VERSION__);
#endif
    cJSON_AddNumberToObject(root, "result_files", set->num_files);
    cJSON *tolerances = cJSON_AddObjectToObject(root, "tolerances");
    cJSON *groups = cJSON_AddArrayToObject(root, "groups");
    int written = 0;
    const ReportGroup **order = xcalloc((size_t)(set->num_groups ? set->num_groups : 1),
                                        sizeof(*order));
    for (int g = 0; g < set->num_groups; g++)
        order[g] = &set->groups[g];
    sort_set = set;
    qsort(order, (size_t)set->num_groups, sizeof(*order), cmp_groups);
    for (int g = 0; g < set->num_groups; g++) {
        const ReportGroup *group = order[g];
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddStringToObject(entry, "suite", group->suite);
        cJSON_AddStringToObject(entry, "dataset", group->dataset);
        cJSON_AddStringToObject(entry, "condition", group->condition);
        cJSON_AddStringToObject(entry, "model", group->model);
        cJSON_AddStringToObject(entry, "task", group->task);
        cJSON_AddNumberToObject(entry, "n", group->n_ok);
        cJSON *group_metrics = cJSON_AddObjectToObject(entry, "metrics");
        int count = 0;
        for (int m = 0; m < group->num_metrics; m++) {
            if (!metric_requested(metrics, num_metrics, group->metrics[m].name))
                continue;
            add_baseline_metric(group_metrics, tolerances, &group->metrics[m], tol);
            count++;
        }
        /* A group without any requested metric would only test that the group exists. */
        if (count == 0) {
            cJSON_Delete(entry);
            continue;
        }
        cJSON_AddItemToArray(groups, entry);
        written++;
    }
    free(order);
    for (int i = 0; metrics && i < num_metrics; i++)
        if (!cJSON_GetObjectItemCaseSensitive(tolerances, metrics[i])) {
            err_set("--metrics: no finished seed of the results has metric '%s'; choose the "
                    "metrics of the task (docs/results.md)", metrics[i]);
            cJSON_Delete(root);
            return NULL;
        }
    if (written == 0) {
        err_set("the results have no finished seed with a test metric, so there is nothing to "
                "store in a baseline");
        cJSON_Delete(root);
        return NULL;
    }
    char *text = baseline_format(root);
    cJSON_Delete(root);
    return text;
}

/* Makes `view` a copy of `set` in which every test-time condition of a group (an entry of the
 * result's `conditions` array) is a group of its own, named by the condition's label. The
 * robustness columns of a noise suite are therefore gated like the clean one. The view
 * shares its strings and arrays with `set`, so free only view->groups, before report_free. */
static void expand_test_conditions(const ReportSet *set, ReportSet *view) {
    *view = *set;
    int total = set->num_groups;
    for (int g = 0; g < set->num_groups; g++)
        total += set->groups[g].num_tests;
    view->groups = xcalloc((size_t)(total ? total : 1), sizeof(ReportGroup));
    view->num_groups = 0;
    for (int g = 0; g < set->num_groups; g++) {
        const ReportGroup *group = &set->groups[g];
        view->groups[view->num_groups++] = *group;
        for (int t = 0; t < group->num_tests; t++) {
            const TestStat *test = &group->tests[t];
            ReportGroup *copy = &view->groups[view->num_groups++];
            *copy = *group;
            copy->condition = test->label;
            copy->metrics = test->metrics;
            copy->num_metrics = test->num_metrics;
            copy->n_ok = test->n;
            copy->routing = test->routing;
            copy->num_routing = test->num_routing;
            copy->tests = NULL;
            copy->num_tests = 0;
        }
    }
}

int check_baseline_write(const char *path, const char *results_dir, const char *const *metrics,
                         int num_metrics, const CheckTolerances *tol) {
    for (int i = 0; metrics && i < num_metrics; i++)
        if (check_metric_direction(metrics[i]) == 0)
            return err_set("--metrics: unknown metric '%s'; valid metrics are %s", metrics[i],
                           metric_list_text);
    ReportSet set;
    if (report_load_dir(&set, results_dir) != 0)
        return -1;
    char created[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &utc);
    ReportSet view;
    expand_test_conditions(&set, &view);
    char *text = check_baseline_render(&view, metrics, num_metrics, tol, created);
    free(view.groups);
    report_free(&set);
    if (!text)
        return err_prefix("%s", results_dir);
    int rc = write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* ---- loading a baseline ---- */

#define BASELINE_FIX "write it again with `euar check RESULTS --write-baseline FILE`"

/* Writes at most 40 characters of the JSON text of item into buf, for messages. */
static const char *json_excerpt(const cJSON *item, char *buf, size_t cap) {
    char *text = item ? cJSON_PrintUnformatted(item) : NULL;
    if (!text) {
        snprintf(buf, cap, "nothing");
        return buf;
    }
    if (strlen(text) > 40)
        snprintf(buf, cap, "%.37s...", text);
    else
        snprintf(buf, cap, "%s", text);
    cJSON_free(text);
    return buf;
}

static int load_string(const cJSON *obj, const char *key, const char *field, const char *path,
                       char **out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(item) || !item->valuestring) {
        char value[64];
        return err_set("%s: field '%s' must be a string, got %s; %s", path, field,
                       json_excerpt(item, value, sizeof(value)), BASELINE_FIX);
    }
    *out = xstrdup(item->valuestring);
    return 0;
}

/* Reads a finite number, non-negative when nonneg is set. */
static int load_number(const cJSON *obj, const char *key, const char *field, const char *path,
                       int nonneg, double *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble) ||
        (nonneg && item->valuedouble < 0.0)) {
        char value[64];
        return err_set("%s: field '%s' must be a finite %snumber, got %s; %s", path, field,
                       nonneg ? "non-negative " : "", json_excerpt(item, value, sizeof(value)),
                       BASELINE_FIX);
    }
    *out = item->valuedouble;
    return 0;
}

static int load_header(CheckBaseline *out, const cJSON *root, const char *path) {
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsString(format) || strcmp(format->valuestring, EUAR_BASELINE_FORMAT) != 0) {
        char value[64];
        return err_set("%s: field 'format' is %s, expected \"%s\", so this is not a baseline "
                       "file; %s", path, json_excerpt(format, value, sizeof(value)),
                       EUAR_BASELINE_FORMAT, BASELINE_FIX);
    }
    double version;
    if (load_number(root, "format_version", "format_version", path, 1, &version) != 0)
        return -1;
    if (version != floor(version) || version < 1)
        return err_set("%s: field 'format_version' is %g, expected a positive integer; %s",
                       path, version, BASELINE_FIX);
    if (version > EUAR_BASELINE_VERSION)
        return err_set("%s: format_version %.0f is newer than this euar-bench reads (up to %d); "
                       "upgrade euar-bench or %s", path, version, EUAR_BASELINE_VERSION,
                       BASELINE_FIX);
    const cJSON *build = cJSON_GetObjectItemCaseSensitive(root, "build");
    if (!cJSON_IsObject(build))
        return err_set("%s: field 'build' is missing or not an object; %s", path, BASELINE_FIX);
    if (load_string(build, "version", "build.version", path, &out->version) != 0 ||
        load_string(root, "created", "created", path, &out->created) != 0)
        return -1;

    const cJSON *tolerances = cJSON_GetObjectItemCaseSensitive(root, "tolerances");
    if (!cJSON_IsObject(tolerances))
        return err_set("%s: field 'tolerances' is missing or not an object; %s", path,
                       BASELINE_FIX);
    int count = cJSON_GetArraySize(tolerances);
    out->tolerance_metrics = xcalloc((size_t)(count ? count : 1), sizeof(char *));
    out->tolerance_values = xcalloc((size_t)(count ? count : 1), sizeof(double));
    const cJSON *item;
    cJSON_ArrayForEach(item, tolerances) {
        char field[96];
        snprintf(field, sizeof(field), "tolerances.%.60s", item->string ? item->string : "?");
        if (!item->string || check_metric_direction(item->string) == 0)
            return err_set("%s: field '%s' names an unknown metric; valid metrics are %s", path,
                           field, metric_list_text);
        double value;
        if (load_number(tolerances, item->string, field, path, 1, &value) != 0)
            return -1;
        out->tolerance_metrics[out->num_tolerances] = xstrdup(item->string);
        out->tolerance_values[out->num_tolerances++] = value;
    }
    return 0;
}

static int load_metric(BaselineMetric *metric, const cJSON *item, const char *prefix,
                       const char *path) {
    char field[160];
    snprintf(field, sizeof(field), "%s.%.60s", prefix, item->string ? item->string : "?");
    if (!item->string || check_metric_direction(item->string) == 0)
        return err_set("%s: field '%s' names an unknown metric; valid metrics are %s", path,
                       field, metric_list_text);
    if (!cJSON_IsObject(item))
        return err_set("%s: field '%s' must be an object with mean, std and n; %s", path,
                       field, BASELINE_FIX);
    metric->name = xstrdup(item->string);
    char sub[200];
    double n;
    snprintf(sub, sizeof(sub), "%s.mean", field);
    if (load_number(item, "mean", sub, path, 0, &metric->mean) != 0)
        return -1;
    /* std and n are for information; a hand-written baseline may leave them out. */
    metric->std = 0.0;
    metric->n = 0;
    snprintf(sub, sizeof(sub), "%s.std", field);
    if (cJSON_GetObjectItemCaseSensitive(item, "std") &&
        load_number(item, "std", sub, path, 1, &metric->std) != 0)
        return -1;
    snprintf(sub, sizeof(sub), "%s.n", field);
    if (cJSON_GetObjectItemCaseSensitive(item, "n")) {
        if (load_number(item, "n", sub, path, 1, &n) != 0)
            return -1;
        metric->n = (int)EUAR_MIN(n, 1e9);
    }
    return 0;
}

static int load_group(BaselineGroup *group, const cJSON *item, int index, const char *path) {
    char prefix[64], field[96];
    snprintf(prefix, sizeof(prefix), "groups[%d]", index);
    if (!cJSON_IsObject(item))
        return err_set("%s: field '%s' must be an object; %s", path, prefix, BASELINE_FIX);
    static const char *const keys[4] = {"suite", "dataset", "condition", "model"};
    char **values[4] = {&group->suite, &group->dataset, &group->condition, &group->model};
    for (int k = 0; k < 4; k++) {
        snprintf(field, sizeof(field), "%s.%s", prefix, keys[k]);
        if (load_string(item, keys[k], field, path, values[k]) != 0)
            return -1;
    }
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(item, "metrics");
    snprintf(field, sizeof(field), "%s.metrics", prefix);
    if (!cJSON_IsObject(metrics))
        return err_set("%s: field '%s' is missing or not an object; %s", path, field,
                       BASELINE_FIX);
    int count = cJSON_GetArraySize(metrics);
    group->metrics = xcalloc((size_t)(count ? count : 1), sizeof(BaselineMetric));
    const cJSON *entry;
    cJSON_ArrayForEach(entry, metrics) {
        BaselineMetric *metric = &group->metrics[group->num_metrics++];
        if (load_metric(metric, entry, field, path) != 0)
            return -1;
        for (int j = 0; j + 1 < group->num_metrics; j++)
            if (strcmp(group->metrics[j].name, metric->name) == 0)
                return err_set("%s: field '%s.%s' appears twice; %s", path, field,
                               metric->name, BASELINE_FIX);
    }
    return 0;
}

static int same_group(const BaselineGroup *a, const BaselineGroup *b) {
    return strcmp(a->suite, b->suite) == 0 && strcmp(a->dataset, b->dataset) == 0 &&
           strcmp(a->condition, b->condition) == 0 && strcmp(a->model, b->model) == 0;
}

static int load_groups(CheckBaseline *out, const cJSON *root, const char *path) {
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(root, "groups");
    if (!cJSON_IsArray(groups))
        return err_set("%s: field 'groups' is missing or not an array; %s", path, BASELINE_FIX);
    int count = cJSON_GetArraySize(groups);
    if (count == 0)
        return err_set("%s: field 'groups' is empty, so the baseline checks nothing; %s", path,
                       BASELINE_FIX);
    out->groups = xcalloc((size_t)count, sizeof(BaselineGroup));
    const cJSON *item;
    cJSON_ArrayForEach(item, groups) {
        int index = out->num_groups;
        BaselineGroup *group = &out->groups[out->num_groups++];
        if (load_group(group, item, index, path) != 0)
            return -1;
        for (int j = 0; j < index; j++) {
            if (!same_group(&out->groups[j], group))
                continue;
            char label[512];
            group_label(group->suite, group->dataset, group->condition, group->model, label,
                        sizeof(label));
            return err_set("%s: groups[%d] and groups[%d] are both %s; %s", path, j, index,
                           label, BASELINE_FIX);
        }
    }
    return 0;
}

/* Returns the 1-based line and column of byte offset in text. */
static void text_position(const char *text, size_t offset, int *line, int *column) {
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

int check_baseline_load(CheckBaseline *out, const char *path) {
    memset(out, 0, sizeof(*out));
    size_t len = 0;
    char *text = read_file_text(path, &len);
    if (!text) {
        char reason[1024];
        snprintf(reason, sizeof(reason), "%s", err_get());
        return err_set("baseline: %s; check the path, or %s", reason, BASELINE_FIX);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        int line, column;
        size_t offset = end && end >= text ? (size_t)(end - text) : 0;
        text_position(text, offset, &line, &column);
        free(text);
        return err_set("%s: invalid JSON at line %d, column %d; %s", path, line, column,
                       BASELINE_FIX);
    }
    free(text);
    out->path = xstrdup(path);
    int rc = 0;
    if (!cJSON_IsObject(root))
        rc = err_set("%s: the top level must be a JSON object; %s", path, BASELINE_FIX);
    if (rc == 0)
        rc = load_header(out, root, path);
    if (rc == 0)
        rc = load_groups(out, root, path);
    cJSON_Delete(root);
    if (rc != 0)
        check_baseline_free(out);
    return rc;
}

void check_baseline_free(CheckBaseline *baseline) {
    free(baseline->path);
    free(baseline->version);
    free(baseline->created);
    for (int i = 0; i < baseline->num_tolerances; i++)
        free(baseline->tolerance_metrics[i]);
    free(baseline->tolerance_metrics);
    free(baseline->tolerance_values);
    for (int g = 0; g < baseline->num_groups; g++) {
        BaselineGroup *group = &baseline->groups[g];
        free(group->suite);
        free(group->dataset);
        free(group->condition);
        free(group->model);
        for (int m = 0; m < group->num_metrics; m++)
            free(group->metrics[m].name);
        free(group->metrics);
    }
    free(baseline->groups);
    memset(baseline, 0, sizeof(*baseline));
}

/* ---- comparing ---- */

typedef struct {
    CheckReport *report;
    int cap;
} RowList;

static CheckRow *row_add(RowList *list, const char *suite, const char *dataset,
                         const char *condition, const char *model, CheckRowStatus status) {
    CheckReport *report = list->report;
    if (report->num_rows == list->cap) {
        list->cap = list->cap ? 2 * list->cap : 64;
        report->rows = xrealloc(report->rows, (size_t)list->cap * sizeof(CheckRow));
    }
    CheckRow *row = &report->rows[report->num_rows++];
    memset(row, 0, sizeof(*row));
    row->suite = suite;
    row->dataset = dataset;
    row->condition = condition;
    row->model = model;
    row->status = status;
    report->counts[status]++;
    return row;
}

static char *format_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *format_text(const char *fmt, ...) {
    char buf[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return xstrdup(buf);
}

/* Classifies one metric: the signed change towards worse is compared with the tolerance. */
static CheckRowStatus classify(const char *metric, double baseline, double fresh,
                               double tolerance) {
    double worse = (fresh - baseline) * (double)-check_metric_direction(metric);
    if (worse > tolerance + CHECK_ROUNDING_MARGIN)
        return EUAR_ROW_REGRESSED;
    if (-worse > tolerance + CHECK_ROUNDING_MARGIN)
        return EUAR_ROW_IMPROVED;
    return EUAR_ROW_OK;
}

static void compare_group(RowList *list, const BaselineGroup *bg, const ReportGroup *fg,
                          const CheckTolerances *tol, const CheckBaseline *baseline) {
    if (fg && fg->n_failed > 0) {
        CheckRow *row = row_add(list, bg->suite, bg->dataset, bg->condition, bg->model,
                                EUAR_ROW_FAILED);
        row->detail = format_text("%d of %d seeds failed: %s", fg->n_failed,
                                  fg->n_failed + fg->n_ok,
                                  fg->failure ? fg->failure : "no reason recorded");
    }
    if (bg->num_metrics == 0 && !fg) {
        CheckRow *row = row_add(list, bg->suite, bg->dataset, bg->condition, bg->model,
                                EUAR_ROW_MISSING);
        row->detail = xstrdup("group not in the results");
    }
    for (int m = 0; m < bg->num_metrics; m++) {
        const BaselineMetric *bm = &bg->metrics[m];
        const MetricStat *fm = fg ? report_group_metric(fg, bm->name) : NULL;
        CheckRowStatus status = EUAR_ROW_MISSING;
        double tolerance = compare_tolerance(tol, baseline, bm->name);
        if (fm)
            status = classify(bm->name, bm->mean, fm->mean, tolerance);
        CheckRow *row = row_add(list, bg->suite, bg->dataset, bg->condition, bg->model, status);
        row->metric = bm->name;
        row->baseline = bm->mean;
        row->has_baseline = 1;
        row->tolerance = tolerance;
        if (fm) {
            row->fresh = fm->mean;
            row->has_fresh = 1;
            row->delta = fm->mean - bm->mean;
            if (bm->n > 0 && fm->n != bm->n)
                row->detail = format_text("n %d, baseline n %d", fm->n, bm->n);
        } else if (!fg) {
            row->detail = xstrdup("group not in the results");
        } else if (fg->n_ok == 0) {
            row->detail = xstrdup("no finished seed");
        } else {
            row->detail = xstrdup("metric not in the results");
        }
    }
}

void check_compare(CheckReport *out, const CheckBaseline *baseline, const ReportSet *fresh,
                   const CheckTolerances *tol) {
    memset(out, 0, sizeof(*out));
    RowList list = {out, 0};
    char *seen = xcalloc((size_t)(fresh->num_groups ? fresh->num_groups : 1), 1);
    for (int g = 0; g < baseline->num_groups; g++) {
        const BaselineGroup *bg = &baseline->groups[g];
        const ReportGroup *fg = report_find(fresh, bg->suite, bg->dataset, bg->condition,
                                            bg->model);
        if (fg)
            seen[fg - fresh->groups] = 1;
        compare_group(&list, bg, fg, tol, baseline);
    }
    for (int g = 0; g < fresh->num_groups; g++) {
        if (seen[g])
            continue;
        const ReportGroup *fg = &fresh->groups[g];
        CheckRow *row = row_add(&list, fg->suite, fg->dataset, fg->condition, fg->model,
                                EUAR_ROW_NEW);
        row->detail = format_text("%d finished seeds, not in the baseline", fg->n_ok);
    }
    free(seen);
}

int check_report_status(const CheckReport *report) {
    int failures = report->counts[EUAR_ROW_REGRESSED] + report->counts[EUAR_ROW_MISSING] +
                   report->counts[EUAR_ROW_FAILED];
    return failures > 0 ? EUAR_CHECK_FAIL : EUAR_CHECK_PASS;
}

/* Status words: failing statuses in capitals so that they stand out in a CI log. */
static const char *status_text(CheckRowStatus status) {
    switch (status) {
    case EUAR_ROW_OK:
        return "ok";
    case EUAR_ROW_IMPROVED:
        return "improved; update the baseline";
    case EUAR_ROW_REGRESSED:
        return "REGRESSED";
    case EUAR_ROW_MISSING:
        return "MISSING";
    case EUAR_ROW_FAILED:
        return "FAILED";
    case EUAR_ROW_NEW:
        return "new";
    }
    return "?";
}

/* Formats a value with 4 decimals. A difference too small for them gets 2 significant digits
 * instead, so that a change of the last bits still shows. */
static void format_value(char *buf, size_t cap, double value, int has, int sign) {
    if (!has)
        snprintf(buf, cap, "-");
    else if (sign && value != 0.0 && fabs(value) < 5e-5)
        snprintf(buf, cap, "%+.1e", value);
    else
        snprintf(buf, cap, sign ? "%+.4f" : "%.4f", value);
}

enum { COL_GROUP, COL_METRIC, COL_BASELINE, COL_FRESH, COL_DELTA, COL_TOL, COL_STATUS, NCOL };

static void row_cells(const CheckRow *row, char cells[NCOL][400]) {
    group_label(row->suite, row->dataset, row->condition, row->model, cells[COL_GROUP], 400);
    snprintf(cells[COL_METRIC], 400, "%s", row->metric ? row->metric : "-");
    format_value(cells[COL_BASELINE], 400, row->baseline, row->has_baseline, 0);
    format_value(cells[COL_FRESH], 400, row->fresh, row->has_fresh, 0);
    format_value(cells[COL_DELTA], 400, row->delta, row->has_baseline && row->has_fresh, 1);
    format_value(cells[COL_TOL], 400, row->tolerance, row->metric != NULL, 0);
    if (row->detail)
        snprintf(cells[COL_STATUS], 400, "%s (%.300s)", status_text(row->status), row->detail);
    else
        snprintf(cells[COL_STATUS], 400, "%s", status_text(row->status));
}

char *check_report_render(const CheckReport *report, int only_changes) {
    static const char *const headers[NCOL] = {"group",  "metric",    "baseline", "fresh",
                                              "delta", "tolerance", "status"};
    char cells[NCOL][400];
    size_t width[NCOL];
    for (int c = 0; c < NCOL; c++)
        width[c] = strlen(headers[c]);

    int num_shown = 0;
    for (int r = 0; r < report->num_rows; r++) {
        const CheckRow *row = &report->rows[r];
        if (only_changes && row->status == EUAR_ROW_OK)
            continue;
        row_cells(row, cells);
        for (int c = 0; c < NCOL - 1; c++)
            width[c] = EUAR_MAX(width[c], strlen(cells[c]));
        num_shown++;
    }
    TextBuf out = {NULL, 0, 0};
    if (num_shown > 0) {
        for (int c = 0; c + 1 < NCOL; c++)
            text_printf(&out, "%-*s  ", (int)width[c], headers[c]);
        text_printf(&out, "%s\n", headers[NCOL - 1]);
    }

    for (int r = 0; r < report->num_rows; r++) {
        const CheckRow *row = &report->rows[r];
        if (only_changes && row->status == EUAR_ROW_OK)
            continue;
        row_cells(row, cells);
        for (int c = 0; c < NCOL; c++) {
            /* Numbers are right-aligned, text left-aligned. */
            int right = c >= COL_BASELINE && c <= COL_TOL;
            if (c + 1 == NCOL)
                text_printf(&out, "%s\n", cells[c]);
            else
                text_printf(&out, right ? "%*s  " : "%-*s  ", (int)width[c], cells[c]);
        }
    }

    const int *n = report->counts;
    int status = check_report_status(report);
    text_printf(&out,
                "%scheck: %d ok, %d improved, %d regressed, %d missing, %d failed groups, "
                "%d new groups: %s\n",
                num_shown > 0 ? "\n" : "", n[EUAR_ROW_OK], n[EUAR_ROW_IMPROVED],
                n[EUAR_ROW_REGRESSED], n[EUAR_ROW_MISSING], n[EUAR_ROW_FAILED], n[EUAR_ROW_NEW],
                status == EUAR_CHECK_PASS ? "PASS" : "FAIL");
    if (n[EUAR_ROW_IMPROVED] > 0)
        text_printf(&out, "check: metrics improved beyond their tolerance; if the change is "
                          "intended, write a new baseline with --write-baseline\n");
    return text_finish(&out);
}

void check_report_free(CheckReport *report) {
    for (int r = 0; r < report->num_rows; r++)
        free(report->rows[r].detail);
    free(report->rows);
    memset(report, 0, sizeof(*report));
}

int check_run(const char *results_dir, const char *baseline_path, const CheckTolerances *tol,
              int only_changes, char **table_out) {
    if (table_out)
        *table_out = NULL;
    CheckBaseline baseline;
    if (check_baseline_load(&baseline, baseline_path) != 0)
        return EUAR_CHECK_ERROR;
    ReportSet fresh;
    if (report_load_dir(&fresh, results_dir) != 0) {
        check_baseline_free(&baseline);
        return EUAR_CHECK_ERROR;
    }
    ReportSet view;
    expand_test_conditions(&fresh, &view);
    CheckReport report;
    check_compare(&report, &baseline, &view, tol);
    int status = check_report_status(&report);
    if (table_out)
        *table_out = check_report_render(&report, only_changes);
    check_report_free(&report);
    free(view.groups);
    report_free(&fresh);
    check_baseline_free(&baseline);
    return status;
}
