/* Tables 1 to 4 of the paper as Markdown, LaTeX and CSV (report/paper.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "report/paper.h"
#include "report/text.h"

/* Adds label to a list unless it is there, keeping the smallest index seen. */
typedef struct {
    const char *label;
    int index;
} Entry;

static void entry_add(Entry **list, int *count, const char *label, int index) {
    for (int i = 0; i < *count; i++)
        if (strcmp((*list)[i].label, label) == 0) {
            if (index >= 0 && ((*list)[i].index < 0 || index < (*list)[i].index))
                (*list)[i].index = index;
            return;
        }
    *list = xrealloc(*list, (size_t)(*count + 1) * sizeof(Entry));
    (*list)[*count].label = label;
    (*list)[*count].index = index;
    (*count)++;
}

static int cmp_entry(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->index >= 0 && y->index >= 0 && x->index != y->index)
        return x->index < y->index ? -1 : 1;
    if ((x->index >= 0) != (y->index >= 0))
        return x->index >= 0 ? -1 : 1;
    return strcmp(x->label, y->label);
}

static int group_has_result(const ReportGroup *g) {
    return g && g->n_ok > 0;
}

/* Fills a cell with the given metrics of g, or leaves it empty when g has no finished seed. */
static void cell_fill(PaperCell *cell, const ReportGroup *g, const MetricStat *source,
                      int num_source, const char *const *names, int count) {
    memset(cell, 0, sizeof(*cell));
    if (g && g->n_ok == 0 && g->n_failed > 0)
        cell->failure = g->failure_short;
    if (!group_has_result(g))
        return;
    for (int i = 0; i < count && i < EUAR_PAPER_MAX_METRICS; i++) {
        cell->names[i] = names[i];
        cell->stats[i] = report_metric_find(source, num_source, names[i]);
    }
    cell->count = EUAR_MIN(count, EUAR_PAPER_MAX_METRICS);
}

/* Default metrics of a group: Acc2 / F1 (/ Acc7 with acc7) of its protocol, or acc /
 * macro_f1 for classification. */
static int default_metrics(const ReportGroup *g, int acc7, const char **names) {
    if (strcmp(g->task, "classification") == 0) {
        names[0] = "acc";
        names[1] = "macro_f1";
        return 2;
    }
    int mmsa = strcmp(g->protocol, "mmsa") == 0;
    names[0] = mmsa ? "mmsa_non0_acc2" : "mib_acc2";
    names[1] = mmsa ? "mmsa_non0_f1" : "mib_f1";
    names[2] = "acc7";
    return acc7 ? 3 : 2;
}

static PaperTable *table_add(PaperTables *out, int rows, int cols) {
    out->tables = xrealloc(out->tables, (size_t)(out->count + 1) * sizeof(PaperTable));
    PaperTable *t = &out->tables[out->count++];
    memset(t, 0, sizeof(*t));
    t->num_rows = rows;
    t->num_cols = cols;
    t->rows = xcalloc((size_t)EUAR_MAX(rows, 1), sizeof(char *));
    t->cols = xcalloc((size_t)EUAR_MAX(cols, 1), sizeof(char *));
    t->cells = xcalloc((size_t)EUAR_MAX(rows * cols, 1), sizeof(PaperCell));
    return t;
}

/* Writes a file-name-safe copy of s: letters, digits, '-' and '.' kept, others '_'. */
static void safe_name(char *buf, size_t cap, const char *s) {
    size_t i = 0;
    for (; *s && i + 1 < cap; s++)
        buf[i++] = (char)(((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                           (*s >= '0' && *s <= '9') || *s == '-' || *s == '.') ? *s : '_');
    buf[i] = '\0';
}

/* Joins the distinct values of the first settings of the groups (report_setting_keys), leaving
 * out `skip` (NULL: none) and protocol when every group is classification. */
static char *settings_text(const ReportGroup *const *groups, int count, const char *skip) {
    TextBuf out = {NULL, 0, 0};
    int all_classification = 1;
    for (int i = 0; i < count; i++)
        all_classification &= strcmp(groups[i]->task, "classification") == 0;
    int shown = 0;
    for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS; k++) {
        const char *key = report_setting_keys[k];
        if ((skip && strcmp(key, skip) == 0) ||
            (all_classification && strcmp(key, "protocol") == 0))
            continue;
        TextBuf values = {NULL, 0, 0};
        text_printf(&values, "%s", "");
        for (int i = 0; i < count; i++) {
            const char *v = groups[i]->settings[k];
            char *have = values.data;
            size_t n = strlen(v);
            int known = 0;
            for (const char *p = have; p && *p && !known;) {
                const char *end = strchr(p, '|');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                known = len == n && strncmp(p, v, n) == 0;
                p = end ? end + 1 : p + len;
            }
            if (!known)
                text_printf(&values, "%s%s", values.len ? "|" : "", v);
        }
        char *joined = text_finish(&values);
        text_printf(&out, "%s%s=%s", shown++ ? ", " : "", key, joined[0] ? joined : "?");
        free(joined);
    }
    return text_finish(&out);
}

/* The training condition of a dataset that Tables 1 and 4 show: the first in suite order. */
static const char *first_condition(const ReportSet *set, const char *dataset) {
    const ReportGroup *best = NULL;
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        if (strcmp(g->dataset, dataset) != 0)
            continue;
        if (!best || (g->condition_index >= 0 && (best->condition_index < 0 ||
                                                  g->condition_index < best->condition_index)))
            best = g;
    }
    return best ? best->condition : "";
}

/* Table 1 (main) and Table 4 (ablation): rows models, columns datasets. */
static void build_model_dataset(const ReportSet *set, PaperTables *out, int ablation) {
    Entry *models = NULL, *datasets = NULL;
    int num_models = 0, num_datasets = 0;
    for (int i = 0; i < set->num_groups; i++) {
        entry_add(&models, &num_models, set->groups[i].model, set->groups[i].model_index);
        entry_add(&datasets, &num_datasets, set->groups[i].dataset, -1);
    }
    if (num_models == 0) {
        free(models);
        free(datasets);
        return;
    }
    qsort(models, (size_t)num_models, sizeof(Entry), cmp_entry);
    qsort(datasets, (size_t)num_datasets, sizeof(Entry), cmp_entry);
    PaperTable *t = table_add(out, num_models, num_datasets);
    t->stem = xstrdup(ablation ? "table4-ablation" : "table1-main");
    t->label = xstrdup(ablation ? "Table 4" : "Table 1");
    t->title = xstrdup(ablation ? "loss ablation: EUAR and its variants on clean data"
                                : "comparison of the methods on clean data");
    t->caption = xstrdup(ablation
                             ? "Test split. Cells: Acc2 / F1 / Acc7 of each dataset's protocol "
                               "(regression) or Acc / Macro F1 (classification), in %; mean ± "
                               "sample standard deviation over the finished seeds."
                             : "Test split. Cells: Acc2 / F1 of each dataset's protocol "
                               "(regression) or Acc / Macro F1 (classification), in %; mean ± "
                               "sample standard deviation over the finished seeds.");
    t->corner = xstrdup(ablation ? "variant" : "model");
    const ReportGroup **used = xcalloc((size_t)(num_models * num_datasets), sizeof(*used));
    int num_used = 0;
    for (int r = 0; r < num_models; r++)
        t->rows[r] = xstrdup(models[r].label);
    for (int c = 0; c < num_datasets; c++) {
        t->cols[c] = xstrdup(datasets[c].label);
        const char *condition = first_condition(set, datasets[c].label);
        for (int r = 0; r < num_models; r++) {
            const ReportGroup *g = report_find(set, set->groups[0].suite, datasets[c].label,
                                               condition, models[r].label);
            const char *names[EUAR_PAPER_MAX_METRICS];
            int count = g ? default_metrics(g, ablation, names) : 0;
            if (g)
                cell_fill(&t->cells[r * num_datasets + c], g, g->metrics, g->num_metrics,
                          names, count);
            if (group_has_result(g))
                used[num_used++] = g;
        }
    }
    t->settings = settings_text(used, num_used, NULL);
    free(used);
    free(models);
    free(datasets);
}

/* Number of experts of a group: its setting "experts", else the label "E=N". */
static int group_experts(const ReportGroup *g) {
    int e = 0;
    for (int k = 0; k < EUAR_REPORT_NUM_SETTINGS; k++)
        if (strcmp(report_setting_keys[k], "experts") == 0)
            e = atoi(g->settings[k]);
    if (e <= 0 && sscanf(g->condition, "E=%d", &e) != 1)
        e = 0;
    return e;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The table beside Fig. 4: rows the number of experts, columns dataset (and model when the
 * suite has several), cells the accuracy. */
static void build_experts(const ReportSet *set, PaperTables *out) {
    int *experts = NULL, num_experts = 0;
    Entry *cols = NULL;
    int num_cols = 0;
    char (*col_names)[160] = xcalloc((size_t)EUAR_MAX(set->num_groups, 1), 160);
    Entry *models = NULL;
    int num_models = 0;
    for (int i = 0; i < set->num_groups; i++)
        entry_add(&models, &num_models, set->groups[i].model, set->groups[i].model_index);
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        int e = group_experts(g), known = 0;
        for (int j = 0; j < num_experts; j++)
            known |= experts[j] == e;
        if (!known && e > 0) {
            experts = xrealloc(experts, (size_t)(num_experts + 1) * sizeof(int));
            experts[num_experts++] = e;
        }
        if (num_models > 1)
            snprintf(col_names[i], 160, "%s / %s", g->dataset, g->model);
        else
            snprintf(col_names[i], 160, "%s", g->dataset);
    }
    for (int i = 0; i < set->num_groups; i++)
        entry_add(&cols, &num_cols, col_names[i], -1);
    if (num_experts == 0) {
        free(experts);
        free(cols);
        free(col_names);
        free(models);
        return;
    }
    qsort(experts, (size_t)num_experts, sizeof(int), cmp_int);
    qsort(cols, (size_t)num_cols, sizeof(Entry), cmp_entry);
    PaperTable *t = table_add(out, num_experts, num_cols);
    t->stem = xstrdup("fig4-experts");
    t->label = xstrdup("Fig. 4 (table)");
    t->title = xstrdup("accuracy against the number of experts");
    t->caption = xstrdup("Test split. Cells: Acc2 of each dataset's protocol (regression) or "
                         "Acc (classification), in %; mean ± sample standard deviation over "
                         "the finished seeds.");
    t->corner = xstrdup("experts");
    const ReportGroup **used = xcalloc((size_t)EUAR_MAX(set->num_groups, 1), sizeof(*used));
    int num_used = 0;
    for (int r = 0; r < num_experts; r++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%d", experts[r]);
        t->rows[r] = xstrdup(buf);
    }
    for (int c = 0; c < num_cols; c++)
        t->cols[c] = xstrdup(cols[c].label);
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        int r = 0, c = 0, e = group_experts(g);
        while (r < num_experts && experts[r] != e)
            r++;
        while (c < num_cols && strcmp(cols[c].label, col_names[i]) != 0)
            c++;
        if (r == num_experts || c == num_cols)
            continue;
        const char *name = report_accuracy_metric(g);
        cell_fill(&t->cells[r * num_cols + c], g, g->metrics, g->num_metrics, &name, 1);
        if (group_has_result(g))
            used[num_used++] = g;
    }
    t->settings = settings_text(used, num_used, "experts");
    free(used);
    free(experts);
    free(cols);
    free(col_names);
    free(models);
}

/* Table 2 (missing) per dataset: rows available modalities, columns models. */
static void build_missing(const ReportSet *set, PaperTables *out) {
    Entry *datasets = NULL;
    int num_datasets = 0;
    for (int i = 0; i < set->num_groups; i++)
        entry_add(&datasets, &num_datasets, set->groups[i].dataset, -1);
    qsort(datasets, (size_t)num_datasets, sizeof(Entry), cmp_entry);
    for (int d = 0; d < num_datasets; d++) {
        Entry *rows = NULL, *cols = NULL;
        int num_rows = 0, num_cols = 0;
        const ReportGroup **used = xcalloc((size_t)set->num_groups, sizeof(*used));
        int num_used = 0;
        for (int i = 0; i < set->num_groups; i++) {
            const ReportGroup *g = &set->groups[i];
            if (strcmp(g->dataset, datasets[d].label) != 0)
                continue;
            entry_add(&rows, &num_rows, g->condition, g->condition_index);
            entry_add(&cols, &num_cols, g->model, g->model_index);
            if (group_has_result(g))
                used[num_used++] = g;
        }
        qsort(rows, (size_t)num_rows, sizeof(Entry), cmp_entry);
        qsort(cols, (size_t)num_cols, sizeof(Entry), cmp_entry);
        PaperTable *t = table_add(out, num_rows, num_cols);
        char safe[128], buf[192];
        safe_name(safe, sizeof(safe), datasets[d].label);
        snprintf(buf, sizeof(buf), "table2-missing-%s", safe);
        t->stem = xstrdup(buf);
        t->label = xstrdup("Table 2");
        snprintf(buf, sizeof(buf), "fixed missing modalities, %s", datasets[d].label);
        t->title = xstrdup(buf);
        t->caption = xstrdup("Test split. Rows: available modalities. Cells: Acc2 / F1 / Acc7 "
                             "of the protocol (regression) or Acc / Macro F1 "
                             "(classification), in %; mean ± sample standard deviation over "
                             "the finished seeds.");
        t->corner = xstrdup("condition");
        for (int r = 0; r < num_rows; r++)
            t->rows[r] = xstrdup(rows[r].label);
        for (int c = 0; c < num_cols; c++)
            t->cols[c] = xstrdup(cols[c].label);
        for (int r = 0; r < num_rows; r++)
            for (int c = 0; c < num_cols; c++) {
                const ReportGroup *g = report_find(set, set->groups[0].suite,
                                                   datasets[d].label, rows[r].label,
                                                   cols[c].label);
                const char *names[EUAR_PAPER_MAX_METRICS];
                if (g)
                    cell_fill(&t->cells[r * num_cols + c], g, g->metrics, g->num_metrics,
                              names, default_metrics(g, 1, names));
            }
        t->settings = settings_text(used, num_used, NULL);
        free(used);
        free(rows);
        free(cols);
    }
    free(datasets);
}

/* Table 3 (noise) per dataset and training condition: rows models, columns the clean test
 * split and each test-time condition, cells the accuracy. */
static void build_noise(const ReportSet *set, PaperTables *out) {
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *first = &set->groups[i];
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(set->groups[j].dataset, first->dataset) == 0 &&
                   strcmp(set->groups[j].condition, first->condition) == 0;
        if (seen)
            continue;
        Entry *rows = NULL, *cols = NULL;
        int num_rows = 0, num_cols = 0;
        entry_add(&cols, &num_cols, "clean", -1);
        const ReportGroup **used = xcalloc((size_t)set->num_groups, sizeof(*used));
        int num_used = 0;
        for (int j = i; j < set->num_groups; j++) {
            const ReportGroup *g = &set->groups[j];
            if (strcmp(g->dataset, first->dataset) != 0 ||
                strcmp(g->condition, first->condition) != 0)
                continue;
            entry_add(&rows, &num_rows, g->model, g->model_index);
            for (int k = 0; k < g->num_tests; k++)
                entry_add(&cols, &num_cols, g->tests[k].label, -1);
            if (group_has_result(g))
                used[num_used++] = g;
        }
        qsort(rows, (size_t)num_rows, sizeof(Entry), cmp_entry);
        PaperTable *t = table_add(out, num_rows, num_cols);
        char safe[128], safe_condition[128], buf[320];
        safe_name(safe, sizeof(safe), first->dataset);
        safe_name(safe_condition, sizeof(safe_condition), first->condition);
        snprintf(buf, sizeof(buf), "table3-noise-%s-%s", safe, safe_condition);
        t->stem = xstrdup(buf);
        t->label = xstrdup("Table 3");
        snprintf(buf, sizeof(buf), "test-time noise, %s, trained under %s", first->dataset,
                 first->condition);
        t->title = xstrdup(buf);
        t->caption = xstrdup("Test split as trained (clean) and under each test-time "
                             "condition. Cells: Acc2 of the protocol (regression) or Acc "
                             "(classification), in %; mean ± sample standard deviation over "
                             "the finished seeds.");
        t->corner = xstrdup("method");
        for (int r = 0; r < num_rows; r++)
            t->rows[r] = xstrdup(rows[r].label);
        for (int c = 0; c < num_cols; c++)
            t->cols[c] = xstrdup(cols[c].label);
        for (int r = 0; r < num_rows; r++) {
            const ReportGroup *g = report_find(set, first->suite, first->dataset,
                                               first->condition, rows[r].label);
            if (!g)
                continue;
            const char *name = report_accuracy_metric(g);
            cell_fill(&t->cells[r * num_cols], g, g->metrics, g->num_metrics, &name, 1);
            for (int c = 1; c < num_cols; c++) {
                const TestStat *ts = report_group_test(g, cols[c].label);
                /* A group whose seeds all failed shows its failure in every column. */
                if (ts && ts->n > 0)
                    cell_fill(&t->cells[r * num_cols + c], g, ts->metrics, ts->num_metrics,
                              &name, 1);
                else if (g->n_ok == 0)
                    cell_fill(&t->cells[r * num_cols + c], g, NULL, 0, &name, 1);
            }
        }
        t->settings = settings_text(used, num_used, NULL);
        free(used);
        free(rows);
        free(cols);
    }
}

void paper_tables_build(const ReportSet *set, const char *kind, PaperTables *out) {
    memset(out, 0, sizeof(*out));
    if (!kind || set->num_groups == 0)
        return;
    if (strcmp(kind, "main") == 0)
        build_model_dataset(set, out, 0);
    else if (strcmp(kind, "ablation") == 0)
        build_model_dataset(set, out, 1);
    else if (strcmp(kind, "experts") == 0)
        build_experts(set, out);
    else if (strcmp(kind, "missing") == 0)
        build_missing(set, out);
    else if (strcmp(kind, "noise") == 0)
        build_noise(set, out);
}

void paper_tables_free(PaperTables *tables) {
    for (int i = 0; i < tables->count; i++) {
        PaperTable *t = &tables->tables[i];
        for (int r = 0; r < t->num_rows; r++)
            free(t->rows[r]);
        for (int c = 0; c < t->num_cols; c++)
            free(t->cols[c]);
        free(t->rows);
        free(t->cols);
        free(t->cells);
        free(t->stem);
        free(t->label);
        free(t->title);
        free(t->caption);
        free(t->corner);
        free(t->settings);
    }
    free(tables->tables);
    memset(tables, 0, sizeof(*tables));
}

char *paper_table_markdown(const PaperTable *t) {
    TextBuf out = {NULL, 0, 0};
    text_printf(&out, "### %s: ", t->label);
    append_escaped(&out, t->title);
    text_printf(&out, "\n\n%s\n\n| ", t->caption);
    append_escaped(&out, t->corner);
    text_printf(&out, " |");
    for (int c = 0; c < t->num_cols; c++) {
        text_printf(&out, " ");
        append_escaped(&out, t->cols[c]);
        text_printf(&out, " |");
    }
    text_printf(&out, "\n|---|");
    for (int c = 0; c < t->num_cols; c++)
        text_printf(&out, "---|");
    text_printf(&out, "\n");
    for (int r = 0; r < t->num_rows; r++) {
        text_printf(&out, "| ");
        append_escaped(&out, t->rows[r]);
        text_printf(&out, " |");
        for (int c = 0; c < t->num_cols; c++) {
            const PaperCell *cell = &t->cells[r * t->num_cols + c];
            text_printf(&out, " ");
            if (cell->failure)
                append_escaped(&out, cell->failure);
            else if (cell->count == 0)
                text_printf(&out, "—");
            for (int m = 0; m < cell->count; m++) {
                text_printf(&out, "%s", m ? " / " : "");
                append_stat(&out, cell->names[m], cell->stats[m]);
            }
            text_printf(&out, " |");
        }
        text_printf(&out, "\n");
    }
    text_printf(&out, "\nSettings: ");
    append_escaped(&out, t->settings);
    text_printf(&out, ".\n\n");
    return text_finish(&out);
}

char *paper_latex_escape(const char *s) {
    TextBuf out = {NULL, 0, 0};
    text_printf(&out, "%s", "");
    for (; *s; s++) {
        /* UTF-8 of the plus-minus sign and the em dash used in captions. */
        if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xB1) {
            text_printf(&out, "$\\pm$");
            s++;
            continue;
        }
        if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x80 &&
            (unsigned char)s[2] == 0x94) {
            text_printf(&out, "---");
            s += 2;
            continue;
        }
        switch (*s) {
        case '#': case '$': case '%': case '&': case '_': case '{': case '}':
            text_printf(&out, "\\%c", *s);
            break;
        case '~':
            text_printf(&out, "\\textasciitilde{}");
            break;
        case '^':
            text_printf(&out, "\\textasciicircum{}");
            break;
        case '\\':
            text_printf(&out, "\\textbackslash{}");
            break;
        default:
            text_printf(&out, "%c", *s);
        }
    }
    return text_finish(&out);
}

static void latex_text(TextBuf *out, const char *s) {
    char *escaped = paper_latex_escape(s);
    text_printf(out, "%s", escaped);
    free(escaped);
}

/* Writes one statistic as append_stat() does, with $\pm$ for the plus-minus sign. */
static void latex_stat(TextBuf *out, const char *name, const MetricStat *ms) {
    if (!ms) {
        text_printf(out, "n/a");
        return;
    }
    double scale = is_raw_metric(name) ? 1.0 : 100.0;
    const char *format = is_raw_metric(name) ? "%.3f" : "%.1f";
    text_printf(out, format, ms->mean * scale);
    if (ms->n > 1) {
        text_printf(out, " $\\pm$ ");
        text_printf(out, format, ms->std * scale);
    }
}

char *paper_table_latex(const PaperTable *t) {
    TextBuf out = {NULL, 0, 0};
    text_printf(&out, "%% euar-bench %s: requires \\usepackage{booktabs}\n", t->label);
    text_printf(&out, "\\begin{table}[t]\n\\centering\n\\caption{");
    latex_text(&out, t->label);
    text_printf(&out, ": ");
    latex_text(&out, t->title);
    text_printf(&out, ". ");
    latex_text(&out, t->caption);
    text_printf(&out, " Settings: ");
    latex_text(&out, t->settings);
    text_printf(&out, ".}\n\\label{tab:");
    latex_text(&out, t->stem);
    text_printf(&out, "}\n\\begin{tabular}{l");
    for (int c = 0; c < t->num_cols; c++)
        text_printf(&out, "c");
    text_printf(&out, "}\n\\toprule\n");
    latex_text(&out, t->corner);
    for (int c = 0; c < t->num_cols; c++) {
        text_printf(&out, " & ");
        latex_text(&out, t->cols[c]);
    }
    text_printf(&out, " \\\\\n\\midrule\n");
    for (int r = 0; r < t->num_rows; r++) {
        latex_text(&out, t->rows[r]);
        for (int c = 0; c < t->num_cols; c++) {
            const PaperCell *cell = &t->cells[r * t->num_cols + c];
            text_printf(&out, " & ");
            if (cell->failure)
                latex_text(&out, cell->failure);
            else if (cell->count == 0)
                text_printf(&out, "---");
            for (int m = 0; m < cell->count; m++) {
                text_printf(&out, "%s", m ? " / " : "");
                latex_stat(&out, cell->names[m], cell->stats[m]);
            }
        }
        text_printf(&out, " \\\\\n");
    }
    text_printf(&out, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    return text_finish(&out);
}

/* Writes a CSV field, quoted (RFC 4180) when it contains a comma, quote or line break. */
static void csv_field(TextBuf *out, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        text_printf(out, "%s,", s);
        return;
    }
    text_printf(out, "\"");
    for (; *s; s++)
        if (*s == '"')
            text_printf(out, "\"\"");
        else
            text_printf(out, "%c", *s);
    text_printf(out, "\",");
}

char *paper_table_csv(const PaperTable *t) {
    TextBuf out = {NULL, 0, 0};
    text_printf(&out, "row,column,metric,mean,std,n\n");
    for (int r = 0; r < t->num_rows; r++)
        for (int c = 0; c < t->num_cols; c++) {
            const PaperCell *cell = &t->cells[r * t->num_cols + c];
            if (cell->failure) {
                /* The failure text goes in the mean column, with no std and n = 0. */
                csv_field(&out, t->rows[r]);
                csv_field(&out, t->cols[c]);
                csv_field(&out, "status");
                csv_field(&out, cell->failure);
                text_printf(&out, ",0\n");
                continue;
            }
            for (int m = 0; m < cell->count; m++) {
                const MetricStat *ms = cell->stats[m];
                if (!ms)
                    continue;
                csv_field(&out, t->rows[r]);
                csv_field(&out, t->cols[c]);
                csv_field(&out, cell->names[m]);
                if (ms->n == 1)
                    text_printf(&out, "%.9g,,%d\n", ms->mean, ms->n);
                else
                    text_printf(&out, "%.9g,%.9g,%d\n", ms->mean, ms->std, ms->n);
            }
        }
    return text_finish(&out);
}

char *paper_settings_text(const ReportSet *set, const char *dataset, const char *skip) {
    const ReportGroup **used = xcalloc((size_t)EUAR_MAX(set->num_groups, 1), sizeof(*used));
    int count = 0;
    for (int i = 0; i < set->num_groups; i++)
        if (group_has_result(&set->groups[i]) &&
            (!dataset || strcmp(set->groups[i].dataset, dataset) == 0))
            used[count++] = &set->groups[i];
    char *text = settings_text(used, count, skip);
    free(used);
    return text;
}
