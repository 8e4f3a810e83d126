/* Grid expansion of a suite: cells, their resolved settings, canonical text and hash. */
#include "suite.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* Applies a settings object that suite_load() has already validated. */
static void settings_apply(Settings *set, const SuiteSettings *from) {
    for (int i = 0; i < from->count; i++)
        EUAR_ASSERT(settings_set_kv(set, from->key[i], from->value[i]) == 0);
}

/* Resolves the settings of one cell before the seed: `cond` is NULL for a grouped cell, whose
 * test-time conditions have no settings. */
static void cell_settings(const Suite *s, const SuiteDataset *d, const SuiteCondition *cond,
                          int quick, Settings *out) {
    settings_default(out);
    settings_apply(out, &s->settings);
    settings_apply(out, &d->settings);
    if (cond)
        settings_apply(out, &cond->settings);
    if (quick) {
        settings_apply(out, &s->quick_settings);
        settings_apply(out, &d->quick_settings);
    }
}

void suite_dataset_settings(const Suite *s, const SuiteDataset *d, int quick, Settings *out) {
    cell_settings(s, d, NULL, quick, out);
}

char (*suite_dataset_models(const Suite *s, const SuiteDataset *d, int quick,
                            int *count))[EUAR_SUITE_LABEL_LEN] {
    const SuiteGrid *order[4] = {quick ? &d->quick_grid : NULL, &d->grid,
                                 quick ? &s->quick_grid : NULL, &s->grid};
    for (int i = 0; i < 4; i++) {
        if (order[i] && order[i]->num_models > 0) {
            *count = order[i]->num_models;
            return order[i]->models;
        }
    }
    *count = 0;
    return NULL;
}

int suite_dataset_included(const SuiteDataset *d, int quick) {
    return !(quick && d->quick_skip);
}

static int dataset_wants_joint(const SuiteDataset *d, const char *model) {
    for (int i = 0; i < d->joint.num_models; i++)
        if (strcmp(d->joint.models[i], model) == 0)
            return 1;
    return 0;
}

static int compare_lines(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int suite_spec_is_test_time(const NoiseSpec *spec) {
    for (int i = 0; i < spec->count; i++)
        if (spec->term[i].phase != EUAR_PHASE_TEST)
            return 0;
    return 1;
}

/* Returns 1 when test condition i of a grouped cell is the clean one that metrics.test reports,
 * so it needs no --test-noise. */
static int test_is_reported_clean(const SuiteCell *c, int i) {
    return c->tests[i]->spec.count == 0 && strcmp(c->tests[i]->label, c->condition) == 0;
}

static int cell_only_clean(const SuiteCell *c) {
    return c->num_tests == 1 && test_is_reported_clean(c, 0);
}

int suite_cell_test_noise(const SuiteCell *c, int i) {
    EUAR_ASSERT(i >= 0 && i < c->num_tests);
    return !test_is_reported_clean(c, i);
}

char *suite_cell_canonical(const SuiteCell *c) {
    int nset = settings_count();
    int nlines = nset + 13 + c->num_tests;
    char **lines = xcalloc((size_t)nlines, sizeof(char *));
    char buf[EUAR_NOISE_TEXT_LEN + 2 * EUAR_SUITE_LABEL_LEN + 64];
    int k = 0;
#define LINE(...)                                                                                  \
    do {                                                                                           \
        snprintf(buf, sizeof(buf), __VA_ARGS__);                                                   \
        lines[k++] = xstrdup(buf);                                                                 \
    } while (0)
    LINE("suite=%s", c->suite);
    LINE("dataset=%s", c->dataset);
    LINE("data_path=%s", c->path);
    LINE("condition=%s", c->condition);
    LINE("condition_index=%d", c->condition_index);
    LINE("noise=%s", c->noise);
    LINE("noise_seed=%" PRIu64, c->noise_seed);
    LINE("model=%s", c->model);
    LINE("model_index=%d", c->model_index);
    LINE("seed=%" PRIu64, c->seed);
    for (int i = 0; i < nset; i++) {
        char value[64];
        settings_value(&c->settings, i, value, sizeof(value));
        LINE("set.%s=%s", settings_key(i), value);
    }
    /* Cells of training conditions have no such line, and neither have grouped cells whose only
     * condition is the clean one in metrics.test. Their text and result file names are
     * therefore the same as for a suite without grouped cells. */
    if (!cell_only_clean(c))
        for (int i = 0; i < c->num_tests; i++)
            LINE("test_noise.%03d=%s=%s", i, c->tests[i]->label, c->tests[i]->noise);
    /* Only cells that write a joint file have this line, so other hashes stay as they were. */
    if (c->joint)
        LINE("joint_out=1");
    /* The same holds for the non-finite policy: only "zero" adds a line. */
    if (c->nonfinite_zero)
        LINE("nonfinite=zero");
#undef LINE
    EUAR_ASSERT(k <= nlines);
    qsort(lines, (size_t)k, sizeof(char *), compare_lines);
    size_t total = 1;
    for (int i = 0; i < k; i++)
        total += strlen(lines[i]) + 1;
    char *text = xmalloc(total);
    size_t used = 0;
    for (int i = 0; i < k; i++) {
        size_t n = strlen(lines[i]);
        memcpy(text + used, lines[i], n);
        text[used + n] = '\n';
        used += n + 1;
        free(lines[i]);
    }
    text[used] = '\0';
    free(lines);
    return text;
}

/* The test-time conditions of a dataset: the group shared by one cell per (model, seed). */
typedef struct {
    int count;
    int first;                    /* index of the first test-time condition, -1 when none */
    const char *label;            /* the cell's condition: the first clean one, or "clean" */
    int index;                    /* index of that condition, or `first` */
    const SuiteCondition **tests; /* [count] in suite order */
} TestGroup;

static void test_group_find(const SuiteDataset *ds, TestGroup *g) {
    *g = (TestGroup){.first = -1, .label = EUAR_SUITE_CLEAN_LABEL, .index = -1};
    g->tests = xcalloc((size_t)EUAR_MAX(ds->num_conditions, 1), sizeof(*g->tests));
    for (int ci = 0; ci < ds->num_conditions; ci++) {
        const SuiteCondition *cond = &ds->conditions[ci];
        if (!cond->test_time)
            continue;
        if (g->first < 0)
            g->first = ci;
        if (cond->spec.count == 0 && g->index < 0) {
            g->label = cond->label;
            g->index = ci;
        }
        g->tests[g->count++] = cond;
    }
    if (g->index < 0)
        g->index = g->first;
}

static void cell_set_hash(SuiteCell *c) {
    c->canonical = suite_cell_canonical(c);
    uint64_t h = hash_fnv1a64(c->canonical, strlen(c->canonical), EUAR_FNV_OFFSET);
    snprintf(c->hash, sizeof(c->hash), "%016" PRIx64, h);
}

int suite_expand(const Suite *s, int quick, SuiteCell **cells_out, int *count_out) {
    *cells_out = NULL;
    *count_out = 0;
    if (quick && !s->has_quick)
        return err_set("suite file %s has no \"quick\" object; run it without --quick or add "
                       "one", s->file);
    const SuiteGrid *grid = &s->grid;
    int num_seeds = grid->num_seeds;
    const uint64_t *seeds = grid->seeds;
    if (quick && s->quick_grid.num_seeds > 0) {
        num_seeds = s->quick_grid.num_seeds;
        seeds = s->quick_grid.seeds;
    }

    /* One cell per (model, seed) for each training condition and for the test-time group. */
    int total = 0;
    for (int d = 0; d < s->num_datasets; d++) {
        const SuiteDataset *ds = &s->datasets[d];
        if (!suite_dataset_included(ds, quick))
            continue;
        int num_models;
        suite_dataset_models(s, ds, quick, &num_models);
        int runs = 0, grouped = 0;
        for (int ci = 0; ci < ds->num_conditions; ci++) {
            if (ds->conditions[ci].test_time)
                grouped = 1;
            else
                runs++;
        }
        total += (runs + grouped) * num_models * num_seeds;
    }
    SuiteCell *cells = xcalloc((size_t)EUAR_MAX(total, 1), sizeof(SuiteCell));
    int k = 0;
    for (int d = 0; d < s->num_datasets; d++) {
        const SuiteDataset *ds = &s->datasets[d];
        if (!suite_dataset_included(ds, quick))
            continue;
        int num_models;
        char (*models)[EUAR_SUITE_LABEL_LEN] = suite_dataset_models(s, ds, quick, &num_models);
        TestGroup group;
        test_group_find(ds, &group);
        for (int ci = 0; ci < ds->num_conditions; ci++) {
            const SuiteCondition *cond = &ds->conditions[ci];
            if (cond->test_time && ci != group.first)
                continue;
            Settings shared;
            cell_settings(s, ds, cond->test_time ? NULL : cond, quick, &shared);
            for (int mi = 0; mi < num_models; mi++) {
                for (int si = 0; si < num_seeds; si++) {
                    SuiteCell *c = &cells[k++];
                    c->suite = s->name;
                    c->dataset = ds->label;
                    c->path = ds->path;
                    c->nonfinite_zero = ds->nonfinite_zero;
                    c->noise_seed = s->noise_seed;
                    c->model = models[mi];
                    c->model_index = mi;
                    c->seed = seeds[si];
                    c->settings = shared;
                    c->settings.seed = seeds[si];
                    /* Joint files are written for the first seed only: one t-SNE plot per
                     * model and condition needs one run. */
                    c->joint = si == 0 && dataset_wants_joint(ds, models[mi]);
                    if (cond->test_time) {
                        c->condition = group.label;
                        c->condition_index = group.index;
                        c->noise = "none";
                        c->num_tests = group.count;
                        c->tests = xcalloc((size_t)group.count, sizeof(*c->tests));
                        memcpy(c->tests, group.tests, (size_t)group.count * sizeof(*c->tests));
                    } else {
                        c->condition = cond->label;
                        c->condition_index = ci;
                        c->noise = cond->noise;
                    }
                    cell_set_hash(c);
                }
            }
        }
        free(group.tests);
    }
    EUAR_ASSERT(k == total);
    *cells_out = cells;
    *count_out = total;
    return 0;
}

void suite_cells_free(SuiteCell *cells, int count) {
    if (!cells)
        return;
    for (int i = 0; i < count; i++) {
        free(cells[i].canonical);
        free(cells[i].tests);
    }
    free(cells);
}

static int name_matches(const SuiteCell *c, const char *condition, const char *pattern) {
    char name[4 * EUAR_SUITE_LABEL_LEN + 32];
    snprintf(name, sizeof(name), "%s/%s/%s/%" PRIu64, c->dataset, condition, c->model, c->seed);
    return fnmatch(pattern, name, 0) == 0;
}

int suite_cell_matches(const SuiteCell *c, const char *pattern) {
    if (strcmp(pattern, c->hash) == 0)
        return 1;
    if (name_matches(c, c->condition, pattern))
        return 1;
    for (int i = 0; i < c->num_tests; i++)
        if (name_matches(c, c->tests[i]->label, pattern))
            return 1;
    return 0;
}

void suite_cell_conditions_text(const SuiteCell *c, char *buf, int cap) {
    EUAR_ASSERT(cap > 0);
    if (c->num_tests == 0) {
        snprintf(buf, (size_t)cap, "%s", c->condition);
        return;
    }
    int used = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->num_tests && used < cap; i++)
        used += snprintf(buf + used, (size_t)(cap - used), "%s%s", i ? "," : "",
                         c->tests[i]->label);
}
