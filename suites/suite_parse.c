/* Reader and validator of suite files; the format is documented in suite.h. */
#include "suite.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/model.h"
#include "core/result.h"

/* Largest integer a JSON number (an IEEE double) represents exactly. */
#define JSON_MAX_EXACT_INT 9007199254740992.0

/* Parser state: the file name and the JSON path of the value being read, for messages. */
typedef struct {
    const char *file;
    char path[256];
} Reader;

/* Reports an error at the current JSON path. Returns -1. */
static int bad(const Reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const Reader *r, const char *fmt, ...) {
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (r->path[0])
        return err_set("suite file %s: %s: %s", r->file, r->path, detail);
    return err_set("suite file %s: %s", r->file, detail);
}

/* Appends ".key" or "[index]" to the path; returns the old length for path_pop(). */
static size_t path_key(Reader *r, const char *key) {
    size_t n = strlen(r->path);
    snprintf(r->path + n, sizeof(r->path) - n, "%s%s", n ? "." : "", key);
    return n;
}

static size_t path_index(Reader *r, int index) {
    size_t n = strlen(r->path);
    snprintf(r->path + n, sizeof(r->path) - n, "[%d]", index);
    return n;
}

static void path_pop(Reader *r, size_t n) {
    r->path[n] = '\0';
}

static const char *json_type_name(const cJSON *item) {
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "an invalid value";
}

/* Returns 1 when `word` is an item of the comma-separated `list`. */
static int list_contains(const char *list, const char *word) {
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Checks that every key of `obj` is in the comma-separated `allowed` list and none repeats. */
static int check_keys(Reader *r, const cJSON *obj, const char *allowed) {
    for (const cJSON *a = obj->child; a; a = a->next) {
        int known = list_contains(allowed, a->string);
        if (!known)
            return bad(r, "unknown key \"%s\"; valid keys here are %s", a->string, allowed);
        for (const cJSON *b = obj->child; b != a; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return bad(r, "key \"%s\" appears twice", a->string);
    }
    return 0;
}

/* Labels end up in file names, patterns and tables: printable ASCII without '/' or quotes. */
static int label_valid(const char *s) {
    if (s[0] == '\0')
        return 0;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p > '~' || *p == '/' || *p == '"' || *p == '\\')
            return 0;
    return 1;
}

static int read_string(Reader *r, const cJSON *item, char *out, size_t cap) {
    if (!cJSON_IsString(item))
        return bad(r, "expected a string, found %s", json_type_name(item));
    if (strlen(item->valuestring) >= cap)
        return bad(r, "\"%.40s...\" is longer than %zu characters", item->valuestring, cap - 1);
    snprintf(out, cap, "%s", item->valuestring);
    return 0;
}

static int read_label(Reader *r, const cJSON *item, char *out) {
    if (read_string(r, item, out, EUAR_SUITE_LABEL_LEN) != 0)
        return -1;
    if (!label_valid(out))
        return bad(r, "invalid label \"%s\": use printable characters without spaces, '/', "
                   "quotes or backslashes", out);
    return 0;
}

/* Writes a JSON number as setting text: integers plainly, others in the shortest form that
 * reads back as the same double. */
static void number_text(double v, char *buf, size_t cap) {
    if (v == floor(v) && fabs(v) <= JSON_MAX_EXACT_INT) {
        snprintf(buf, cap, "%lld", (long long)v);
        return;
    }
    /* Larger integers are printed in full, not in exponent form. */
    if (v == floor(v) && fabs(v) < 1e30) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, cap, "%.17g", v);
}

static int read_uint(Reader *r, const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item))
        return bad(r, "expected a non-negative integer, found %s", json_type_name(item));
    double v = item->valuedouble;
    if (v < 0 || v > JSON_MAX_EXACT_INT || v != floor(v)) {
        char text[64];
        number_text(v, text, sizeof(text));
        return bad(r, "invalid value %s: expected an integer from 0 to 2^53", text);
    }
    *out = (uint64_t)v;
    return 0;
}

/* Reads a settings object and checks each value with settings_set_kv(). */
static int read_settings(Reader *r, const cJSON *obj, SuiteSettings *out) {
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(obj))
        return bad(r, "expected an object of settings, found %s", json_type_name(obj));
    Settings scratch;
    settings_default(&scratch);
    for (const cJSON *a = obj->child; a; a = a->next) {
        size_t mark = path_key(r, a->string);
        char value[EUAR_SUITE_VALUE_LEN];
        if (cJSON_IsNumber(a)) {
            number_text(a->valuedouble, value, sizeof(value));
        } else if (cJSON_IsString(a)) {
            if (read_string(r, a, value, sizeof(value)) != 0)
                return -1;
        } else {
            return bad(r, "expected a string or a number, found %s", json_type_name(a));
        }
        for (int i = 0; i < out->count; i++)
            if (strcmp(out->key[i], a->string) == 0)
                return bad(r, "setting appears twice");
        if (strcmp(a->string, "seed") == 0)
            return err_set("suite file %s: %s = \"%s\": the seed of each cell comes from "
                           "\"seeds\"; remove this setting", r->file, r->path, value);
        if (settings_set_kv(&scratch, a->string, value) != 0) {
            char reason[1024];
            snprintf(reason, sizeof(reason), "%s", err_get());
            return err_set("suite file %s: %s = \"%s\": %s", r->file, r->path, value, reason);
        }
        EUAR_ASSERT(out->count < EUAR_SUITE_MAX_SETTINGS);
        EUAR_ASSERT(strlen(a->string) < sizeof(out->key[0]));
        snprintf(out->key[out->count], sizeof(out->key[0]), "%s", a->string);
        snprintf(out->value[out->count], sizeof(out->value[0]), "%s", value);
        out->count++;
        path_pop(r, mark);
    }
    return 0;
}

static int read_models(Reader *r, const cJSON *arr, SuiteGrid *grid) {
    if (!cJSON_IsArray(arr))
        return bad(r, "expected an array of model names, found %s", json_type_name(arr));
    int n = cJSON_GetArraySize(arr);
    if (n == 0)
        return bad(r, "empty list; name at least one model of: %s", model_names());
    grid->models = xcalloc((size_t)n, sizeof(*grid->models));
    int i = 0;
    for (const cJSON *a = arr->child; a; a = a->next, i++) {
        size_t mark = path_index(r, i);
        if (read_string(r, a, grid->models[i], EUAR_SUITE_LABEL_LEN) != 0)
            return -1;
        if (!model_exists(grid->models[i]))
            return bad(r, "unknown model \"%s\"; registered models are %s", grid->models[i],
                       model_names());
        for (int j = 0; j < i; j++)
            if (strcmp(grid->models[j], grid->models[i]) == 0)
                return bad(r, "model \"%s\" is listed twice", grid->models[i]);
        grid->num_models = i + 1;
        path_pop(r, mark);
    }
    return 0;
}

static int read_seeds(Reader *r, const cJSON *arr, SuiteGrid *grid) {
    if (!cJSON_IsArray(arr))
        return bad(r, "expected an array of integer seeds, found %s", json_type_name(arr));
    int n = cJSON_GetArraySize(arr);
    if (n == 0)
        return bad(r, "empty list; give at least one seed, for example [1]");
    grid->seeds = xcalloc((size_t)n, sizeof(uint64_t));
    int i = 0;
    for (const cJSON *a = arr->child; a; a = a->next, i++) {
        size_t mark = path_index(r, i);
        if (read_uint(r, a, &grid->seeds[i]) != 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (grid->seeds[j] == grid->seeds[i])
                return bad(r, "seed %llu is listed twice", (unsigned long long)grid->seeds[i]);
        grid->num_seeds = i + 1;
        path_pop(r, mark);
    }
    return 0;
}

static int read_condition(Reader *r, const cJSON *obj, SuiteCondition *out) {
    if (!cJSON_IsObject(obj))
        return bad(r, "expected an object {\"label\", \"noise\"}, found %s",
                   json_type_name(obj));
    if (check_keys(r, obj, "label,noise,settings") != 0)
        return -1;
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(obj, "label");
    if (!label)
        return bad(r, "missing key \"label\"");
    size_t mark = path_key(r, "label");
    if (read_label(r, label, out->label) != 0)
        return -1;
    path_pop(r, mark);
    const cJSON *noise = cJSON_GetObjectItemCaseSensitive(obj, "noise");
    char text[EUAR_NOISE_TEXT_LEN] = "none";
    mark = path_key(r, "noise");
    if (noise && read_string(r, noise, text, sizeof(text)) != 0)
        return -1;
    if (noise_parse(text, &out->spec) != 0)
        return bad(r, "%s", err_get());
    path_pop(r, mark);
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(obj, "settings");
    if (settings) {
        mark = path_key(r, "settings");
        if (read_settings(r, settings, &out->settings) != 0)
            return -1;
        /* An empty object would make a training condition that differs from a clean one in
         * nothing but its label. */
        if (out->settings.count == 0)
            return bad(r, "empty settings object; name at least one setting, for example "
                       "{\"experts\": 4}, or remove the key");
        path_pop(r, mark);
    }
    noise_describe(&out->spec, out->noise, sizeof(out->noise));
    out->test_time = out->settings.count == 0 && suite_spec_is_test_time(&out->spec);
    /* euar train splits --test-noise LABEL=SPEC at the first '='. */
    if (out->test_time && strchr(out->label, '=')) {
        path_key(r, "label");
        return bad(r, "invalid label \"%s\" of a test-time condition: it is passed as "
                   "--test-noise LABEL=SPEC, so it cannot contain '='", out->label);
    }
    return 0;
}

/* Checks what the grouped cell of a dataset's test-time conditions needs: at most
 * EUAR_RESULT_MAX_CONDITIONS --test-noise options, and when no test-time condition is clean,
 * no training condition labelled EUAR_SUITE_CLEAN_LABEL, which the grouped cell then uses. */
static int check_test_group(Reader *r, const SuiteDataset *ds) {
    int runs = 0, has_clean = 0, grouped = 0, clean_label = -1;
    for (int i = 0; i < ds->num_conditions; i++) {
        const SuiteCondition *c = &ds->conditions[i];
        if (!c->test_time) {
            if (strcmp(c->label, EUAR_SUITE_CLEAN_LABEL) == 0)
                clean_label = i;
            continue;
        }
        grouped = 1;
        if (c->spec.count == 0 && !has_clean)
            has_clean = 1;
        else
            runs++;
    }
    if (runs > EUAR_RESULT_MAX_CONDITIONS)
        return bad(r, "%d noisy test-time conditions; euar train evaluates at most %d per run, "
                   "so split them over two entries of \"datasets\" with distinct labels", runs,
                   EUAR_RESULT_MAX_CONDITIONS);
    if (grouped && !has_clean && clean_label >= 0) {
        path_index(r, clean_label);
        return bad(r, "a training condition labelled \"%s\" clashes with the clean training "
                   "of the test-time conditions, which takes this label when none of them is "
                   "clean; rename it or add {\"label\": \"%s\", \"noise\": \"none\"}",
                   EUAR_SUITE_CLEAN_LABEL, EUAR_SUITE_CLEAN_LABEL);
    }
    return 0;
}

/* Reads joint_models: models of the dataset (`models`, count n) whose first-seed cells write
 * joint files. */
static int read_joint_models(Reader *r, const cJSON *arr, SuiteDataset *out,
                             char (*models)[EUAR_SUITE_LABEL_LEN], int n) {
    if (read_models(r, arr, &out->joint) != 0)
        return -1;
    for (int i = 0; i < out->joint.num_models; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found |= strcmp(models[j], out->joint.models[i]) == 0;
        if (!found) {
            path_index(r, i);
            return bad(r, "model \"%s\" is not a model of this dataset; add it to "
                       "\"models\" or remove it here", out->joint.models[i]);
        }
    }
    return 0;
}

/* Reads the policy for NaN and Inf features: "reject" (the default) or "zero". */
static int read_nonfinite(Reader *r, const cJSON *v, int *zero) {
    if (!cJSON_IsString(v))
        return bad(r, "expected \"reject\" or \"zero\", found %s", json_type_name(v));
    if (strcmp(v->valuestring, "reject") == 0)
        *zero = 0;
    else if (strcmp(v->valuestring, "zero") == 0)
        *zero = 1;
    else
        return bad(r, "'%s' is not a policy for NaN and Inf features; use \"reject\" or "
                   "\"zero\"", v->valuestring);
    return 0;
}

static int read_dataset(Reader *r, const cJSON *obj, const SuiteGrid *suite_grid,
                        SuiteDataset *out) {
    if (!cJSON_IsObject(obj))
        return bad(r, "expected a dataset object, found %s", json_type_name(obj));
    if (check_keys(r, obj, "label,path,nonfinite,settings,models,joint_models,conditions") != 0)
        return -1;
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(obj, "label");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(obj, "path");
    const cJSON *settings = cJSON_GetObjectItemCaseSensitive(obj, "settings");
    const cJSON *conditions = cJSON_GetObjectItemCaseSensitive(obj, "conditions");
    if (!label)
        return bad(r, "missing key \"label\"");
    if (!path)
        return bad(r, "missing key \"path\", the HDF5 file of the dataset");
    if (!conditions)
        return bad(r, "missing key \"conditions\"");

    size_t mark = path_key(r, "label");
    if (read_label(r, label, out->label) != 0)
        return -1;
    path_pop(r, mark);
    mark = path_key(r, "path");
    if (read_string(r, path, out->path, sizeof(out->path)) != 0)
        return -1;
    if (out->path[0] == '\0')
        return bad(r, "empty path");
    path_pop(r, mark);
    const cJSON *nonfinite = cJSON_GetObjectItemCaseSensitive(obj, "nonfinite");
    if (nonfinite) {
        mark = path_key(r, "nonfinite");
        if (read_nonfinite(r, nonfinite, &out->nonfinite_zero) != 0)
            return -1;
        path_pop(r, mark);
    }
    if (settings) {
        mark = path_key(r, "settings");
        if (read_settings(r, settings, &out->settings) != 0)
            return -1;
        path_pop(r, mark);
    }
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(obj, "models");
    if (models) {
        mark = path_key(r, "models");
        if (read_models(r, models, &out->grid) != 0)
            return -1;
        path_pop(r, mark);
    }
    const cJSON *joint = cJSON_GetObjectItemCaseSensitive(obj, "joint_models");
    if (joint) {
        const SuiteGrid *g = out->grid.num_models > 0 ? &out->grid : suite_grid;
        mark = path_key(r, "joint_models");
        if (read_joint_models(r, joint, out, g->models, g->num_models) != 0)
            return -1;
        path_pop(r, mark);
    }

    mark = path_key(r, "conditions");
    if (!cJSON_IsArray(conditions))
        return bad(r, "expected an array of conditions, found %s", json_type_name(conditions));
    int n = cJSON_GetArraySize(conditions);
    if (n == 0)
        return bad(r, "empty list; give at least one condition, for example "
                   "{\"label\": \"clean\", \"noise\": \"none\"}");
    out->conditions = xcalloc((size_t)n, sizeof(SuiteCondition));
    int i = 0;
    for (const cJSON *c = conditions->child; c; c = c->next, i++) {
        size_t item = path_index(r, i);
        if (read_condition(r, c, &out->conditions[i]) != 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(out->conditions[j].label, out->conditions[i].label) == 0)
                return bad(r, "condition label \"%s\" is used twice in this dataset",
                           out->conditions[i].label);
        out->num_conditions = i + 1;
        path_pop(r, item);
    }
    if (check_test_group(r, out) != 0)
        return -1;
    path_pop(r, mark);
    return 0;
}

/* Reads quick.datasets.<label>: {"settings": {...}, "models": [...], "skip": true}. */
static int read_quick_dataset(Reader *r, const cJSON *d, SuiteDataset *ds) {
    if (!cJSON_IsObject(d))
        return bad(r, "expected an object {\"settings\": {...}}, found %s", json_type_name(d));
    if (check_keys(r, d, "settings,models,skip") != 0)
        return -1;
    const cJSON *item;
    size_t leaf;
    if ((item = cJSON_GetObjectItemCaseSensitive(d, "settings"))) {
        leaf = path_key(r, "settings");
        if (read_settings(r, item, &ds->quick_settings) != 0)
            return -1;
        path_pop(r, leaf);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(d, "models"))) {
        leaf = path_key(r, "models");
        if (read_models(r, item, &ds->quick_grid) != 0)
            return -1;
        path_pop(r, leaf);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(d, "skip"))) {
        leaf = path_key(r, "skip");
        if (!cJSON_IsBool(item))
            return bad(r, "expected true or false, found %s", json_type_name(item));
        ds->quick_skip = cJSON_IsTrue(item);
        path_pop(r, leaf);
    }
    return 0;
}

static int read_quick(Reader *r, const cJSON *obj, Suite *s) {
    if (!cJSON_IsObject(obj))
        return bad(r, "expected an object, found %s", json_type_name(obj));
    if (check_keys(r, obj, "seeds,models,settings,datasets") != 0)
        return -1;
    const cJSON *item;
    size_t mark;
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "seeds"))) {
        mark = path_key(r, "seeds");
        if (read_seeds(r, item, &s->quick_grid) != 0)
            return -1;
        path_pop(r, mark);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "models"))) {
        mark = path_key(r, "models");
        if (read_models(r, item, &s->quick_grid) != 0)
            return -1;
        path_pop(r, mark);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "settings"))) {
        mark = path_key(r, "settings");
        if (read_settings(r, item, &s->quick_settings) != 0)
            return -1;
        path_pop(r, mark);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "datasets"))) {
        mark = path_key(r, "datasets");
        if (!cJSON_IsObject(item))
            return bad(r, "expected an object keyed by dataset label, found %s",
                       json_type_name(item));
        for (const cJSON *d = item->child; d; d = d->next) {
            size_t inner = path_key(r, d->string);
            SuiteDataset *ds = NULL;
            for (int i = 0; i < s->num_datasets; i++)
                if (strcmp(s->datasets[i].label, d->string) == 0)
                    ds = &s->datasets[i];
            if (!ds)
                return bad(r, "no dataset is labelled \"%s\" in \"datasets\"", d->string);
            for (const cJSON *e = item->child; e != d; e = e->next)
                if (strcmp(e->string, d->string) == 0)
                    return bad(r, "dataset \"%s\" appears twice", d->string);
            if (read_quick_dataset(r, d, ds) != 0)
                return -1;
            path_pop(r, inner);
        }
        int kept = 0;
        for (int i = 0; i < s->num_datasets; i++)
            kept += !s->datasets[i].quick_skip;
        if (kept == 0)
            return bad(r, "every dataset is skipped; keep at least one in the quick variant");
        path_pop(r, mark);
    }
    s->has_quick = 1;
    return 0;
}

/* Reads the top-level object into `s`. */
static int read_suite(Reader *r, const cJSON *root, Suite *s) {
    if (!cJSON_IsObject(root))
        return bad(r, "expected a JSON object at the top level, found %s",
                   json_type_name(root));
    if (check_keys(r, root, "format_version,name,description,table,models,seeds,noise_seed,"
                   "settings,datasets,quick") != 0)
        return -1;
    static const char *const required[] = {"format_version", "name", "models", "seeds",
                                           "datasets"};
    for (size_t i = 0; i < EUAR_ARRAY_LEN(required); i++)
        if (!cJSON_GetObjectItemCaseSensitive(root, required[i]))
            return bad(r, "missing key \"%s\"", required[i]);

    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "format_version");
    size_t mark = path_key(r, "format_version");
    uint64_t version;
    if (read_uint(r, item, &version) != 0)
        return -1;
    if (version > EUAR_SUITE_FORMAT_VERSION)
        return bad(r, "version %llu is newer than this euar-bench reads (%d); update euar-bench",
                   (unsigned long long)version, EUAR_SUITE_FORMAT_VERSION);
    if (version < 1)
        return bad(r, "version %llu is invalid; write 1", (unsigned long long)version);
    path_pop(r, mark);

    mark = path_key(r, "name");
    if (read_label(r, cJSON_GetObjectItemCaseSensitive(root, "name"), s->name) != 0)
        return -1;
    path_pop(r, mark);
    snprintf(s->table, sizeof(s->table), "%s", s->name);
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "table"))) {
        mark = path_key(r, "table");
        if (read_label(r, item, s->table) != 0)
            return -1;
        if (!list_contains(EUAR_SUITE_TABLES, s->table))
            return bad(r, "unknown table \"%s\"; valid tables are %s", s->table,
                       EUAR_SUITE_TABLES);
        path_pop(r, mark);
    } else if (!list_contains(EUAR_SUITE_TABLES, s->table)) {
        return bad(r, "missing key \"table\": the name \"%s\" is not a report table, so "
                   "add \"table\" with one of %s", s->name, EUAR_SUITE_TABLES);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "description"))) {
        mark = path_key(r, "description");
        if (!cJSON_IsString(item))
            return bad(r, "expected a string, found %s", json_type_name(item));
        s->description = xstrdup(item->valuestring);
        path_pop(r, mark);
    }

    mark = path_key(r, "models");
    if (read_models(r, cJSON_GetObjectItemCaseSensitive(root, "models"), &s->grid) != 0)
        return -1;
    path_pop(r, mark);
    mark = path_key(r, "seeds");
    if (read_seeds(r, cJSON_GetObjectItemCaseSensitive(root, "seeds"), &s->grid) != 0)
        return -1;
    path_pop(r, mark);
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "noise_seed"))) {
        mark = path_key(r, "noise_seed");
        if (read_uint(r, item, &s->noise_seed) != 0)
            return -1;
        path_pop(r, mark);
    }
    if ((item = cJSON_GetObjectItemCaseSensitive(root, "settings"))) {
        mark = path_key(r, "settings");
        if (read_settings(r, item, &s->settings) != 0)
            return -1;
        path_pop(r, mark);
    }

    item = cJSON_GetObjectItemCaseSensitive(root, "datasets");
    mark = path_key(r, "datasets");
    if (!cJSON_IsArray(item))
        return bad(r, "expected an array of datasets, found %s", json_type_name(item));
    int n = cJSON_GetArraySize(item);
    if (n == 0)
        return bad(r, "empty list; give at least one dataset");
    s->datasets = xcalloc((size_t)n, sizeof(SuiteDataset));
    int i = 0;
    for (const cJSON *d = item->child; d; d = d->next, i++) {
        size_t inner = path_index(r, i);
        s->num_datasets = i + 1;
        if (read_dataset(r, d, &s->grid, &s->datasets[i]) != 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(s->datasets[j].label, s->datasets[i].label) == 0)
                return bad(r, "dataset label \"%s\" is used twice", s->datasets[i].label);
        path_pop(r, inner);
    }
    path_pop(r, mark);

    if ((item = cJSON_GetObjectItemCaseSensitive(root, "quick"))) {
        mark = path_key(r, "quick");
        if (read_quick(r, item, s) != 0)
            return -1;
        path_pop(r, mark);
    }
    return 0;
}

/* Converts a position in `text` to a 1-based line and column. */
static void text_position(const char *text, const char *at, int *line, int *column) {
    *line = 1;
    *column = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

int suite_parse_text(const char *text, const char *file, Suite *out) {
    memset(out, 0, sizeof(*out));
    snprintf(out->file, sizeof(out->file), "%s", file);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const char *at = end ? end : cJSON_GetErrorPtr();
        int line = 0, column = 0;
        if (at)
            text_position(text, at, &line, &column);
        char near[24] = "";
        if (at)
            snprintf(near, sizeof(near), "%.20s", at);
        for (char *p = near; *p; p++)
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        suite_free(out);
        return err_set("suite file %s: invalid JSON at line %d, column %d (near \"%s\"); check "
                       "for a missing comma, quote or bracket", file, line, column, near);
    }
    Reader r = {.file = file};
    int rc = read_suite(&r, root, out);
    cJSON_Delete(root);
    if (rc != 0) {
        suite_free(out);
        return -1;
    }
    return 0;
}

int suite_load(const char *path, Suite *out) {
    memset(out, 0, sizeof(*out));
    struct stat st;
    if (stat(path, &st) != 0)
        return err_set("suite file %s: %s; check the path (the repository's suites are "
                       "the JSON files under suites/)", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return err_set("suite file %s is a folder, not a file; give the path of a suite JSON "
                       "file, for example suites/missing.json", path);
    char *text = read_file_text(path, NULL);
    if (!text)
        return -1;
    int rc = suite_parse_text(text, path, out);
    free(text);
    return rc;
}

void suite_free(Suite *s) {
    free(s->description);
    free(s->grid.models);
    free(s->grid.seeds);
    free(s->quick_grid.models);
    free(s->quick_grid.seeds);
    for (int i = 0; i < s->num_datasets; i++) {
        free(s->datasets[i].conditions);
        free(s->datasets[i].grid.models);
        free(s->datasets[i].quick_grid.models);
        free(s->datasets[i].joint.models);
    }
    free(s->datasets);
    memset(s, 0, sizeof(*s));
}
