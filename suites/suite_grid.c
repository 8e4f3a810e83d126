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

/* Resolves the settings shared by every cell of a dataset, before the seed is set. */
static void dataset_settings(const Suite *s, const SuiteDataset *d, int quick, Settings *out) {
    settings_default(out);
    settings_apply(out, &s->settings);
    settings_apply(out, &d->settings);
    if (quick) {
        settings_apply(out, &s->quick_settings);
        settings_apply(out, &d->quick_settings);
    }
}

static int compare_lines(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *suite_cell_canonical(const SuiteCell *c) {
    int nset = settings_count();
    int nlines = nset + 11;
    char **lines = xcalloc((size_t)nlines, sizeof(char *));
    char buf[EUAR_NOISE_TEXT_LEN + 64];
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

int suite_expand(const Suite *s, int quick, SuiteCell **cells_out, int *count_out) {
    *cells_out = NULL;
    *count_out = 0;
    if (quick && !s->has_quick)
        return err_set("suite file %s has no \"quick\" object; run it without --quick or add "
                       "one", s->file);
    const SuiteGrid *grid = &s->grid;
    int num_models = grid->num_models, num_seeds = grid->num_seeds;
    char (*models)[EUAR_SUITE_LABEL_LEN] = grid->models;
    const uint64_t *seeds = grid->seeds;
    if (quick && s->quick_grid.num_models > 0) {
        num_models = s->quick_grid.num_models;
        models = s->quick_grid.models;
    }
    if (quick && s->quick_grid.num_seeds > 0) {
        num_seeds = s->quick_grid.num_seeds;
        seeds = s->quick_grid.seeds;
    }

    int total = 0;
    for (int d = 0; d < s->num_datasets; d++)
        total += s->datasets[d].num_conditions * num_models * num_seeds;
    SuiteCell *cells = xcalloc((size_t)EUAR_MAX(total, 1), sizeof(SuiteCell));
    int k = 0;
    for (int d = 0; d < s->num_datasets; d++) {
        const SuiteDataset *ds = &s->datasets[d];
        Settings shared;
        dataset_settings(s, ds, quick, &shared);
        for (int ci = 0; ci < ds->num_conditions; ci++) {
            for (int mi = 0; mi < num_models; mi++) {
                for (int si = 0; si < num_seeds; si++) {
                    SuiteCell *c = &cells[k++];
                    c->suite = s->name;
                    c->dataset = ds->label;
                    c->path = ds->path;
                    c->condition = ds->conditions[ci].label;
                    c->condition_index = ci;
                    c->noise = ds->conditions[ci].noise;
                    c->noise_seed = s->noise_seed;
                    c->model = models[mi];
                    c->model_index = mi;
                    c->seed = seeds[si];
                    c->settings = shared;
                    c->settings.seed = seeds[si];
                    c->canonical = suite_cell_canonical(c);
                    uint64_t h = hash_fnv1a64(c->canonical, strlen(c->canonical),
                                              EUAR_FNV_OFFSET);
                    snprintf(c->hash, sizeof(c->hash), "%016" PRIx64, h);
                }
            }
        }
    }
    EUAR_ASSERT(k == total);
    *cells_out = cells;
    *count_out = total;
    return 0;
}

void suite_cells_free(SuiteCell *cells, int count) {
    if (!cells)
        return;
    for (int i = 0; i < count; i++)
        free(cells[i].canonical);
    free(cells);
}

int suite_cell_matches(const SuiteCell *c, const char *pattern) {
    if (strcmp(pattern, c->hash) == 0)
        return 1;
    char name[4 * EUAR_SUITE_LABEL_LEN + 32];
    snprintf(name, sizeof(name), "%s/%s/%s/%" PRIu64, c->dataset, c->condition, c->model,
             c->seed);
    return fnmatch(pattern, name, 0) == 0;
}
