/* Markdown tables and CSV summary of an aggregated results folder. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/metrics.h"
#include "report/report.h"
#include "report/text.h"

/* One row or column label of a table and its position from cell.condition_index or
 * cell.model_index (-1 when no result carries one). */
typedef struct {
    const char *label;
    int index;
} AxisEntry;

typedef struct {
    const char *suite, *dataset;
    int rank;    /* report_dataset_rank() of the dataset */
    int *groups; /* indices into ReportSet.groups */
    int num_groups;
    AxisEntry *rows, *cols;
    int num_rows, num_cols;
} TableView;

int report_is_metric(const char *name) {
    const char *names[EUAR_METRICS_MAX];
    double values[EUAR_METRICS_MAX];
    RegressionMetrics regression = {0};
    ClassMetrics classification = {0};
    if (strcmp(name, "loss") == 0)
        return 1;
    int count = metrics_regression_list(&regression, names, values, EUAR_METRICS_MAX);
    for (int i = 0; i < count; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    count = metrics_classification_list(&classification, names, values, EUAR_METRICS_MAX);
    for (int i = 0; i < count; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* Orders labels by their index when they have one, then by label. */
static int cmp_axis(const void *a, const void *b) {
    const AxisEntry *x = a, *y = b;
    if (x->index >= 0 && y->index >= 0 && x->index != y->index)
        return x->index < y->index ? -1 : 1;
    if ((x->index >= 0) != (y->index >= 0))
        return x->index >= 0 ? -1 : 1;
    return strcmp(x->label, y->label);
}

static void axis_add(AxisEntry **entries, int *count, const char *label, int index) {
    for (int i = 0; i < *count; i++) {
        AxisEntry *e = &(*entries)[i];
        if (strcmp(e->label, label) == 0) {
            if (index >= 0 && (e->index < 0 || index < e->index))
                e->index = index;
            return;
        }
    }
    *entries = xrealloc(*entries, (size_t)(*count + 1) * sizeof(AxisEntry));
    (*entries)[*count].label = label;
    (*entries)[*count].index = index;
    (*count)++;
}

static int cmp_tables(const void *a, const void *b) {
    const TableView *x = a, *y = b;
    int c = strcmp(x->suite, y->suite);
    if (c == 0 && x->rank != y->rank)
        c = x->rank < y->rank ? -1 : 1;
    return c ? c : strcmp(x->dataset, y->dataset);
}

/* Splits the groups into one table per (suite, dataset), with ordered rows and columns. */
static int collect_tables(const ReportSet *set, TableView **out) {
    TableView *tables = NULL;
    int count = 0;
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        TableView *t = NULL;
        for (int j = 0; j < count && !t; j++)
            if (strcmp(tables[j].suite, g->suite) == 0 &&
                strcmp(tables[j].dataset, g->dataset) == 0)
                t = &tables[j];
        if (!t) {
            tables = xrealloc(tables, (size_t)(count + 1) * sizeof(TableView));
            t = &tables[count++];
            memset(t, 0, sizeof(*t));
            t->suite = g->suite;
            t->dataset = g->dataset;
            t->rank = report_dataset_rank(set, g->dataset);
        }
        t->groups = xrealloc(t->groups, (size_t)(t->num_groups + 1) * sizeof(int));
        t->groups[t->num_groups++] = i;
        axis_add(&t->rows, &t->num_rows, g->condition, g->condition_index);
        axis_add(&t->cols, &t->num_cols, g->model, g->model_index);
    }
    if (count > 0)
        qsort(tables, (size_t)count, sizeof(TableView), cmp_tables);
    for (int j = 0; j < count; j++) {
        qsort(tables[j].rows, (size_t)tables[j].num_rows, sizeof(AxisEntry), cmp_axis);
        qsort(tables[j].cols, (size_t)tables[j].num_cols, sizeof(AxisEntry), cmp_axis);
    }
    *out = tables;
    return count;
}

static void free_tables(TableView *tables, int count) {
    for (int j = 0; j < count; j++) {
        free(tables[j].groups);
        free(tables[j].rows);
        free(tables[j].cols);
    }
    free(tables);
}

static const ReportGroup *table_cell(const ReportSet *set, const TableView *t,
                                     const char *condition, const char *model) {
    for (int i = 0; i < t->num_groups; i++) {
        const ReportGroup *g = &set->groups[t->groups[i]];
        if (strcmp(g->condition, condition) == 0 && strcmp(g->model, model) == 0)
            return g;
    }
    return NULL;
}

/* Returns 1 when a cell has no result file yet: no group, or the empty group of a cell that
 * DIR/suite.json lists. */
static int group_empty(const ReportGroup *g) {
    return !g || g->n_ok + g->n_failed == 0;
}

/* Returns the first group of a table with a result, or NULL when every cell is still empty. */
static const ReportGroup *table_first_result(const ReportSet *set, const TableView *t) {
    for (int i = 0; i < t->num_groups; i++)
        if (!group_empty(&set->groups[t->groups[i]]))
            return &set->groups[t->groups[i]];
    return NULL;
}

/* Ends a caption with the statistics shown: mean and standard deviation, or the value alone
 * when every cell has one seed. */
static void append_seed_count(TextBuf *out, int common_n) {
    if (common_n == 1)
        text_printf(out, "; value of n = 1 seed, so no standard deviation.");
    else
        text_printf(out, "; mean ± sample standard deviation over n = %d seeds.", common_n);
}

/* Metrics shown in a cell of group g. */
static int cell_metrics(const ReportGroup *g, const ReportOptions *options,
                        const char **names) {
    if (options && options->metrics && options->num_metrics > 0) {
        int n = EUAR_MIN(options->num_metrics, EUAR_METRICS_MAX);
        for (int i = 0; i < n; i++)
            names[i] = options->metrics[i];
        return n;
    }
    if (strcmp(g->task, "classification") == 0) {
        names[0] = "acc";
        names[1] = "macro_f1";
        return 2;
    }
    int mmsa = strcmp(g->protocol, "mmsa") == 0;
    names[0] = mmsa ? "mmsa_non0_acc2" : "mib_acc2";
    names[1] = mmsa ? "mmsa_non0_f1" : "mib_f1";
    names[2] = "acc7";
    return 3;
}

/* The most common number of finished seeds among the table's cells, 0 if none finished. */
static int common_seed_count(const ReportSet *set, const TableView *t) {
    int best = 0, best_votes = 0;
    for (int i = 0; i < t->num_groups; i++) {
        int n = set->groups[t->groups[i]].n_ok, votes = 0;
        if (n == 0)
            continue;
        for (int j = 0; j < t->num_groups; j++)
            votes += set->groups[t->groups[j]].n_ok == n;
        if (votes > best_votes || (votes == best_votes && n > best)) {
            best = n;
            best_votes = votes;
        }
    }
    return best;
}

static void append_cell(TextBuf *out, const ReportGroup *g, const ReportOptions *options,
                        int common_n, Notes *notes) {
    char note[768];
    if (group_empty(g)) {
        text_printf(out, "—");
        return;
    }
    if (g->n_ok == 0) {
        if (g->n_failed > 1)
            snprintf(note, sizeof(note), "failed in all %d seeds, first: %s", g->n_failed,
                     g->failure);
        else
            snprintf(note, sizeof(note), "failed: %s", g->failure);
        text_printf(out, "%s [%d]", g->failure_short, notes_add(notes, note));
        return;
    }
    const char *names[EUAR_METRICS_MAX];
    int count = cell_metrics(g, options, names);
    for (int i = 0; i < count; i++) {
        if (i > 0)
            text_printf(out, " / ");
        append_stat(out, names[i], report_group_metric(g, names[i]));
    }
    if (g->n_ok != common_n) {
        snprintf(note, sizeof(note), "n = %d seeds", g->n_ok);
        text_printf(out, " [%d]", notes_add(notes, note));
    }
    if (g->n_failed > 0) {
        snprintf(note, sizeof(note), "%d of %d seeds failed (first: %s); the statistics cover "
                 "the other %d", g->n_failed, g->n_failed + g->n_ok, g->failure, g->n_ok);
        text_printf(out, " [%d]", notes_add(notes, note));
    }
    if (g->selected_on_test)
        text_printf(out, " †");
}

/* Describes the cell contents in the line above a table. */
static void append_caption(TextBuf *out, const ReportSet *set, const TableView *t,
                           const ReportOptions *options, int common_n) {
    const ReportGroup *first = table_first_result(set, t);
    if (!first) {
        text_printf(out, "No result yet for this dataset.\n\n");
        return;
    }
    int mixed_protocol = 0;
    for (int i = 0; i < t->num_groups; i++) {
        const ReportGroup *g = &set->groups[t->groups[i]];
        if (!group_empty(g) && strcmp(g->protocol, first->protocol) != 0)
            mixed_protocol = 1;
    }
    text_printf(out, "Test split. Cells: ");
    if (options && options->metrics && options->num_metrics > 0) {
        for (int i = 0; i < options->num_metrics; i++)
            text_printf(out, "%s%s", i ? " / " : "", options->metrics[i]);
    } else if (strcmp(first->task, "classification") == 0) {
        text_printf(out, "Acc / Macro F1");
    } else if (mixed_protocol) {
        text_printf(out, "Acc2 / F1 / Acc7, Acc2 and F1 under each cell's protocol");
    } else if (strcmp(first->protocol, "mmsa") == 0) {
        text_printf(out, "Acc2 / F1 / Acc7 (protocol mmsa: Non0 Acc2 and weighted F1, "
                         "y > 0 vs p > 0 over samples with a non-zero label)");
    } else {
        text_printf(out, "Acc2 / F1 / Acc7 (protocol mib: Acc2 and weighted F1, "
                         "y >= 0 vs p >= 0 over samples with a non-zero label)");
    }
    const char *names[EUAR_METRICS_MAX];
    int count = cell_metrics(first, options, names), raw = 0;
    for (int i = 0; i < count; i++)
        raw |= is_raw_metric(names[i]);
    text_printf(out, raw ? ", fractions in %%, loss, MAE and correlation unscaled" : ", in %%");
    append_seed_count(out, common_n);
    text_printf(out, "\n\n");
}

/* Appends "cond/model" labels of the groups whose value of setting k is value. */
static void append_setting_cells(TextBuf *out, const ReportSet *set, const TableView *t, int k,
                                 const char *value) {
    int listed = 0, total = 0;
    for (int i = 0; i < t->num_groups; i++) {
        const ReportGroup *g = &set->groups[t->groups[i]];
        if (strcmp(g->settings[k], value) != 0)
            continue;
        total++;
        if (listed < 4) {
            text_printf(out, "%s", listed ? ", " : "");
            append_escaped(out, g->condition);
            text_printf(out, "/");
            append_escaped(out, g->model);
            listed++;
        }
    }
    if (total > listed)
        text_printf(out, " and %d more", total - listed);
}

/* Returns 1 when setting k of some seed of the table differs from its default. A group's
 * value joins the distinct values of its seeds with '|', and "?" is a seed without it. */
static int setting_differs(const ReportSet *set, const TableView *t, int k) {
    const char *fallback = report_setting_default(k);
    size_t n = strlen(fallback);
    for (int i = 0; i < t->num_groups; i++) {
        for (const char *p = set->groups[t->groups[i]].settings[k]; *p;) {
            const char *end = strchr(p, '|');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            int unknown = len == 1 && p[0] == '?';
            int same = len == n && strncmp(p, fallback, n) == 0;
            if (!unknown && !same)
                return 1;
            if (!end)
                break;
            p = end + 1;
        }
    }
    return 0;
}

/* Writes the settings behind a table: those of report_setting_keys, then every other setting
 * that differs from its default. A setting that differs between cells shows the value of most
 * cells, then each other value with the cells that used it. */
static void append_settings(TextBuf *out, const ReportSet *set, const TableView *t) {
    int seeds_differ = 0;
    const ReportGroup *first = table_first_result(set, t);
    int classification = first && strcmp(first->task, "classification") == 0;
    if (set->quick && set->record_suite && strcmp(set->record_suite, t->suite) == 0)
        text_printf(out, "Settings (quick variant, `euar suite --quick`): ");
    else
        text_printf(out, "Settings: ");
    int shown_keys = 0;
    for (int k = 0; k < report_settings_count(); k++) {
        /* The protocol only concerns regression metrics. */
        if (classification && strcmp(report_setting_key(k), "protocol") == 0)
            continue;
        if (k >= EUAR_REPORT_NUM_SETTINGS && !setting_differs(set, t, k))
            continue;
        const char *values[256] = {"?"};
        int votes[256] = {0}, count = 0;
        for (int i = 0; i < t->num_groups; i++) {
            const char *v = set->groups[t->groups[i]].settings[k];
            int j = 0;
            while (j < count && strcmp(values[j], v) != 0)
                j++;
            if (j == count && count < (int)EUAR_ARRAY_LEN(values)) {
                values[count] = v;
                votes[count++] = 0;
            }
            if (j < count)
                votes[j]++;
            if (strchr(v, '|'))
                seeds_differ = 1;
        }
        int major = 0;
        for (int j = 1; j < count; j++)
            if (votes[j] > votes[major])
                major = j;
        text_printf(out, "%s%s=", shown_keys++ ? ", " : "", report_setting_key(k));
        append_escaped(out, values[major]);
        if (count > 1) {
            text_printf(out, " (");
            for (int j = 0, shown = 0; j < count; j++) {
                if (j == major)
                    continue;
                text_printf(out, "%s", shown++ ? "; " : "");
                append_escaped(out, values[j]);
                text_printf(out, " for ");
                append_setting_cells(out, set, t, k, values[j]);
            }
            text_printf(out, ")");
        }
    }
    text_printf(out, ".");
    if (seeds_differ)
        text_printf(out, " Values joined by \\| differ between the seeds of a cell.");
    text_printf(out, "\n");
}

static void render_table(TextBuf *out, const ReportSet *set, const TableView *t,
                         const ReportOptions *options) {
    Notes notes = {NULL, 0};
    int common_n = common_seed_count(set, t);
    int any_missing = 0, any_test_selected = 0;

    text_printf(out, "## ");
    if (t->suite[0])
        text_printf(out, "%s: ", t->suite);
    text_printf(out, "%s\n\n", t->dataset);
    append_caption(out, set, t, options, common_n);

    text_printf(out, "| condition |");
    for (int c = 0; c < t->num_cols; c++) {
        text_printf(out, " ");
        append_escaped(out, t->cols[c].label);
        text_printf(out, " |");
    }
    text_printf(out, "\n|---|");
    for (int c = 0; c < t->num_cols; c++)
        text_printf(out, "---|");
    text_printf(out, "\n");
    for (int r = 0; r < t->num_rows; r++) {
        text_printf(out, "| ");
        append_escaped(out, t->rows[r].label);
        text_printf(out, " |");
        for (int c = 0; c < t->num_cols; c++) {
            const ReportGroup *g = table_cell(set, t, t->rows[r].label, t->cols[c].label);
            text_printf(out, " ");
            if (group_empty(g)) {
                text_printf(out, "—");
                any_missing = 1;
            } else {
                append_cell(out, g, options, common_n, &notes);
                any_test_selected |= g->selected_on_test && g->n_ok > 0;
            }
            text_printf(out, " |");
        }
        text_printf(out, "\n");
    }
    text_printf(out, "\n");
    /* A list, so that Markdown keeps one note per line. */
    if (any_missing)
        text_printf(out, "- — no result for this condition and model.\n");
    for (int i = 0; i < notes.count; i++) {
        text_printf(out, "- [%d] ", i + 1);
        append_escaped(out, notes.texts[i]);
        text_printf(out, ".\n");
    }
    if (any_test_selected)
        text_printf(out, "- † selected on test Acc2 (the authors' protocol), optimistic.\n");
    text_printf(out, "%s", any_missing || notes.count || any_test_selected ? "\n" : "");
    append_settings(out, set, t);
    text_printf(out, "\n");
    notes_free(&notes);
}

/* Returns 1 when a group of the table carries test-time conditions. */
static int table_has_tests(const ReportSet *set, const TableView *t) {
    for (int i = 0; i < t->num_groups; i++)
        if (set->groups[t->groups[i]].num_tests > 0)
            return 1;
    return 0;
}

/* Lists the test-time conditions of the groups trained under `condition`, each label once in
 * order of first appearance, the groups taken in model order. */
static int collect_tests(const ReportSet *set, const TableView *t, const char *condition,
                         const TestStat ***out) {
    const TestStat **tests = NULL;
    int count = 0;
    for (int c = 0; c < t->num_cols; c++) {
        const ReportGroup *g = table_cell(set, t, condition, t->cols[c].label);
        for (int k = 0; g && k < g->num_tests; k++) {
            int known = 0;
            for (int i = 0; i < count && !known; i++)
                known = strcmp(tests[i]->label, g->tests[k].label) == 0;
            if (known)
                continue;
            tests = xrealloc(tests, (size_t)(count + 1) * sizeof(*tests));
            tests[count++] = &g->tests[k];
        }
    }
    *out = tests;
    return count;
}

/* Metrics shown in a cell of the noise table: the --metric list, else the accuracy. */
static int noise_cell_metrics(const ReportGroup *g, const ReportOptions *options,
                              const char **names) {
    if (options && options->metrics && options->num_metrics > 0)
        return cell_metrics(g, options, names);
    names[0] = report_accuracy_metric(g);
    return 1;
}

/* Writes one cell of the noise table: the group's clean test split when test is NULL, else
 * the test-time condition `test`. Returns 1 when the cell has no result ("—"). */
static int append_noise_cell(TextBuf *out, const ReportGroup *g, const TestStat *test,
                             const char *label, const ReportOptions *options, int common_n,
                             Notes *notes) {
    char note[768];
    if (!group_empty(g) && g->n_ok == 0) {
        append_cell(out, g, options, common_n, notes);
        return 0;
    }
    if (group_empty(g) || (label && (!test || test->n == 0))) {
        text_printf(out, "—");
        return 1;
    }
    const char *names[EUAR_METRICS_MAX];
    int count = noise_cell_metrics(g, options, names);
    for (int i = 0; i < count; i++) {
        const MetricStat *ms = test ? report_metric_find(test->metrics, test->num_metrics,
                                                         names[i])
                                    : report_group_metric(g, names[i]);
        text_printf(out, "%s", i ? " / " : "");
        append_stat(out, names[i], ms);
    }
    int n = test ? test->n : g->n_ok;
    if (n != common_n) {
        snprintf(note, sizeof(note), "n = %d seeds", n);
        text_printf(out, " [%d]", notes_add(notes, note));
    }
    if (g->n_failed > 0) {
        snprintf(note, sizeof(note), "%d of %d seeds failed (first: %s); the statistics cover "
                 "the other %d", g->n_failed, g->n_failed + g->n_ok, g->failure, g->n_ok);
        text_printf(out, " [%d]", notes_add(notes, note));
    }
    if (g->selected_on_test)
        text_printf(out, " †");
    return 0;
}

/* Describes the cells of a noise table in the line above it. */
static void append_noise_caption(TextBuf *out, const ReportSet *set, const TableView *t,
                                 const ReportOptions *options, int common_n) {
    const ReportGroup *first = table_first_result(set, t);
    if (!first) {
        text_printf(out, "No result yet for this dataset.\n\n");
        return;
    }
    text_printf(out, "Test split under test-time noise. Cells: ");
    if (options && options->metrics && options->num_metrics > 0) {
        for (int i = 0; i < options->num_metrics; i++)
            text_printf(out, "%s%s", i ? " / " : "", options->metrics[i]);
        text_printf(out, " (fractions in %%)");
    } else if (strcmp(first->task, "classification") == 0) {
        text_printf(out, "accuracy in %%");
    } else if (strcmp(first->protocol, "mmsa") == 0) {
        text_printf(out, "Acc2 in %% (protocol mmsa: Non0 Acc2, y > 0 vs p > 0 over samples "
                         "with a non-zero label)");
    } else {
        text_printf(out, "Acc2 in %% (protocol mib: y >= 0 vs p >= 0 over samples with a "
                         "non-zero label)");
    }
    append_seed_count(out, common_n);
    text_printf(out, " Column clean is the test split as trained; each other column evaluates "
                "the same trained models on the test split corrupted by the noise spec listed "
                "under the table.\n\n");
}

/* Writes the links to the plots of one training condition of a table. */
static void append_plot_links(TextBuf *out, const TableView *t, const char *condition,
                              const ReportOptions *options) {
    const PlotSet *plots = options ? options->plots : NULL;
    const char *dir = options && options->plots_link ? options->plots_link : "plots";
    int listed = 0;
    for (int i = 0; plots && i < plots->count; i++) {
        const Plot *p = &plots->plots[i];
        if (strcmp(p->suite, t->suite) != 0 || strcmp(p->dataset, t->dataset) != 0 ||
            strcmp(p->condition, condition) != 0)
            continue;
        if (!listed++)
            text_printf(out, "Plots:\n\n");
        text_printf(out, "- ");
        if (options->plots_rendered) {
            text_printf(out, "[");
            append_escaped(out, p->caption);
            text_printf(out, "](%s/%s.png) ([SVG](%s/%s.svg), ", dir, p->stem, dir, p->stem);
        } else {
            append_escaped(out, p->caption);
            text_printf(out, " (no image: gnuplot was not found; ");
        }
        text_printf(out, "[data](%s/%s.dat), [gnuplot script](%s/%s.gp))\n", dir, p->stem, dir,
                    p->stem);
    }
    if (listed)
        text_printf(out, "\n");
}

/* Writes the canonical noise spec of each test-time condition. */
static void append_noise_specs(TextBuf *out, const TestStat **tests, int count,
                               const ReportOptions *options) {
    const char *doc = options && options->noise_doc ? options->noise_doc : "docs/noise.md";
    for (int k = 0; k < count; k++) {
        text_printf(out, "- ");
        append_escaped(out, tests[k]->label);
        text_printf(out, ": ");
        if (strchr(tests[k]->noise, '`')) {
            append_escaped(out, tests[k]->noise);
        } else {
            text_printf(out, "`");
            append_escaped(out, tests[k]->noise);
            text_printf(out, "`");
        }
        text_printf(out, " (types and options: [docs/noise.md](%s))\n", doc);
    }
    text_printf(out, "%s", count ? "\n" : "");
}

/* Renders a table of test-time noise results (EUAR Table 3): per training condition, rows
 * are models and columns the clean test split, then each test-time condition. */
static void render_noise_table(TextBuf *out, const ReportSet *set, const TableView *t,
                               const ReportOptions *options) {
    int common_n = common_seed_count(set, t);
    text_printf(out, "## ");
    if (t->suite[0])
        text_printf(out, "%s: ", t->suite);
    text_printf(out, "%s\n\n", t->dataset);
    append_noise_caption(out, set, t, options, common_n);
    for (int r = 0; r < t->num_rows; r++) {
        const char *condition = t->rows[r].label;
        Notes notes = {NULL, 0};
        int any_missing = 0, any_test_selected = 0;
        const TestStat **tests;
        int num_tests = collect_tests(set, t, condition, &tests);
        if (t->num_rows > 1) {
            text_printf(out, "### trained under ");
            append_escaped(out, condition);
            text_printf(out, "\n\n");
        }
        text_printf(out, "| method | clean |");
        for (int k = 0; k < num_tests; k++) {
            text_printf(out, " ");
            append_escaped(out, tests[k]->label);
            text_printf(out, " |");
        }
        text_printf(out, "\n|---|---|");
        for (int k = 0; k < num_tests; k++)
            text_printf(out, "---|");
        text_printf(out, "\n");
        for (int c = 0; c < t->num_cols; c++) {
            const ReportGroup *g = table_cell(set, t, condition, t->cols[c].label);
            text_printf(out, "| ");
            append_escaped(out, t->cols[c].label);
            text_printf(out, " | ");
            any_missing |= append_noise_cell(out, g, NULL, NULL, options, common_n, &notes);
            for (int k = 0; k < num_tests; k++) {
                const TestStat *test = g ? report_group_test(g, tests[k]->label) : NULL;
                text_printf(out, " | ");
                any_missing |= append_noise_cell(out, g, test, tests[k]->label, options,
                                                 common_n, &notes);
            }
            text_printf(out, " |\n");
            any_test_selected |= g && g->selected_on_test && g->n_ok > 0;
        }
        text_printf(out, "\n");
        if (any_missing)
            text_printf(out, "- — no result for this model and condition.\n");
        for (int i = 0; i < notes.count; i++) {
            text_printf(out, "- [%d] ", i + 1);
            append_escaped(out, notes.texts[i]);
            text_printf(out, ".\n");
        }
        if (any_test_selected)
            text_printf(out, "- † selected on test Acc2 (the authors' protocol), optimistic.\n");
        text_printf(out, "%s", any_missing || notes.count || any_test_selected ? "\n" : "");
        append_noise_specs(out, tests, num_tests, options);
        append_plot_links(out, t, condition, options);
        free(tests);
        notes_free(&notes);
    }
    append_settings(out, set, t);
    text_printf(out, "\n");
}

char *report_render_markdown(const ReportSet *set, const ReportOptions *options) {
    TextBuf out = {NULL, 0, 0};
    TableView *tables;
    int count = collect_tables(set, &tables);
    const char *title = options && options->title ? options->title : "euar-bench report";
    text_printf(&out, "# %s\n\n", title);
    text_printf(&out, "%d result file%s, aggregated by euar-bench %s.\n\n", set->num_files,
                set->num_files == 1 ? "" : "s", EUAR_VERSION);
    if (set->has_record) {
        text_printf(&out, "Suite ");
        append_escaped(&out, set->record_suite);
        text_printf(&out, "%s, as recorded in suite.json of the results folder.",
                    set->quick ? ", quick variant (`euar suite --quick`)" : "");
        if (set->num_missing > 0)
            text_printf(&out, " %d of %d cells have no result yet; the tables show — for them.",
                        set->num_missing, set->num_cells);
        if (set->num_left_out > 0)
            text_printf(&out, " %d result file%s of the folder %s left out because %s hash "
                        "matches no cell of the suite: %s from earlier settings and can be "
                        "deleted.", set->num_left_out, set->num_left_out == 1 ? "" : "s",
                        set->num_left_out == 1 ? "was" : "were",
                        set->num_left_out == 1 ? "its" : "their",
                        set->num_left_out == 1 ? "it comes" : "they come");
        text_printf(&out, "\n\n");
    }
    for (int j = 0; j < count; j++) {
        if (table_has_tests(set, &tables[j]))
            render_noise_table(&out, set, &tables[j], options);
        else
            render_table(&out, set, &tables[j], options);
    }
    free_tables(tables, count);
    return text_finish(&out);
}

/* Writes a CSV field, quoted (RFC 4180) when it contains a comma, quote or line break. */
static void append_csv_field(TextBuf *out, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        text_printf(out, "%s", s);
        return;
    }
    text_printf(out, "\"");
    for (; *s; s++) {
        if (*s == '"')
            text_printf(out, "\"\"");
        else
            text_printf(out, "%c", *s);
    }
    text_printf(out, "\"");
}

/* Writes the rows of a group whose seeds all failed: one per default metric, with the short
 * failure text in place of the mean, no standard deviation and n = 0. */
static void append_failed_rows(TextBuf *out, const ReportGroup *g) {
    const char *names[EUAR_METRICS_MAX];
    int count = cell_metrics(g, NULL, names);
    for (int m = 0; m < count; m++) {
        const char *keys[] = {g->suite, g->dataset, g->condition, g->model, names[m],
                              g->failure_short};
        for (size_t f = 0; f < EUAR_ARRAY_LEN(keys); f++) {
            append_csv_field(out, keys[f]);
            text_printf(out, ",");
        }
        text_printf(out, ",0\n");
    }
}

char *report_render_csv(const ReportSet *set) {
    TextBuf out = {NULL, 0, 0};
    TableView *tables;
    int count = collect_tables(set, &tables);
    text_printf(&out, "suite,dataset,condition,model,metric,mean,std,n\n");
    for (int j = 0; j < count; j++) {
        const TableView *t = &tables[j];
        for (int r = 0; r < t->num_rows; r++) {
            for (int c = 0; c < t->num_cols; c++) {
                const ReportGroup *g = table_cell(set, t, t->rows[r].label, t->cols[c].label);
                if (g && g->n_ok == 0 && g->n_failed > 0) {
                    append_failed_rows(&out, g);
                    continue;
                }
                for (int m = 0; g && m < g->num_metrics; m++) {
                    const MetricStat *ms = &g->metrics[m];
                    const char *keys[] = {g->suite, g->dataset, g->condition, g->model,
                                          ms->name};
                    for (size_t f = 0; f < EUAR_ARRAY_LEN(keys); f++) {
                        append_csv_field(&out, keys[f]);
                        text_printf(&out, ",");
                    }
                    /* One seed has no sample standard deviation. */
                    if (ms->n == 1)
                        text_printf(&out, "%.9g,,%d\n", ms->mean, ms->n);
                    else
                        text_printf(&out, "%.9g,%.9g,%d\n", ms->mean, ms->std, ms->n);
                }
            }
        }
    }
    free_tables(tables, count);
    return text_finish(&out);
}
