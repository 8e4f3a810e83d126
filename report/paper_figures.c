/* Figures 3, 4 and 5 of the paper as gnuplot data and scripts (report/paper.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "report/paper.h"
#include "report/text.h"

/* Canvas in pixels (PNG) and points (SVG), and the longest title line in characters (about 8
 * pixels each in the 12-point default font of pngcairo). */
#define FIG_WIDTH 1000
#define FIG_HEIGHT 600
#define FIG_TITLE_COLUMNS 90

/* Okabe and Ito, "Color Universal Design" (2008): colours that stay distinct under the
 * common colour-vision deficiencies; series beyond eight reuse them in order. */
static const char *const series_colours[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                             "#CC79A7", "#56B4E9", "#F0E442", "#000000"};

static const char *colour(int i) {
    return series_colours[i % (int)EUAR_ARRAY_LEN(series_colours)];
}

static void safe_append(TextBuf *out, const char *s) {
    for (; *s; s++)
        text_printf(out, "%c", ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                                (*s >= '0' && *s <= '9') || *s == '-' || *s == '.') ? *s : '_');
}

static Plot *plot_new(PlotSet *out, PlotKind kind, const char *suite, const char *dataset,
                      const char *condition, const char *stem_prefix, const char *what) {
    out->plots = xrealloc(out->plots, (size_t)(out->count + 1) * sizeof(Plot));
    Plot *p = &out->plots[out->count++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->suite = suite;
    p->dataset = dataset;
    p->condition = condition;
    TextBuf stem = {NULL, 0, 0};
    text_printf(&stem, "%s", stem_prefix);
    if (dataset) {
        text_printf(&stem, "-");
        safe_append(&stem, dataset);
    }
    if (what) {
        text_printf(&stem, "-");
        safe_append(&stem, what);
    }
    p->stem = text_finish(&stem);
    return p;
}

static void gp_quoted(TextBuf *out, const char *s) {
    char *quoted = report_gp_string_wrapped(s, 0);
    text_printf(out, "%s", quoted);
    free(quoted);
}

/* Terminal, output, title and axis labels of a script; the plot command follows. */
static void gp_header(TextBuf *gp, const Plot *p, const char *title, const char *xlabel,
                      const char *ylabel) {
    text_printf(gp, "# euar-bench: %s.\n# Data: %s.dat. Run in this folder: gnuplot %s.gp\n",
                p->caption, p->stem, p->stem);
    text_printf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                    "    set terminal pngcairo noenhanced size %d,%d\n"
                    "} else {\n"
                    "    set terminal png noenhanced size %d,%d\n"
                    "}\n", FIG_WIDTH, FIG_HEIGHT, FIG_WIDTH, FIG_HEIGHT);
    char *wrapped = report_gp_string_wrapped(title, FIG_TITLE_COLUMNS);
    text_printf(gp, "set output '%s.png'\nset title %s noenhanced\nset xlabel ", p->stem,
                wrapped);
    free(wrapped);
    gp_quoted(gp, xlabel);
    text_printf(gp, " noenhanced\nset ylabel ");
    gp_quoted(gp, ylabel);
    text_printf(gp, " noenhanced\nset key outside right top noenhanced\nset grid\n");
}

static void gp_footer(TextBuf *gp, const Plot *p) {
    text_printf(gp, "set terminal svg noenhanced size %d,%d\nset output '%s.svg'\nreplot\n"
                    "unset output\n", FIG_WIDTH, FIG_HEIGHT, p->stem);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile p of sorted values by linear interpolation between order statistics (Hyndman and
 * Fan 1996, type 7, the default of R's quantile()). */
static double quantile(const double *sorted, int n, double p) {
    double h = (n - 1) * p;
    int lo = (int)floor(h);
    int hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/* Names of a list in first-seen order, ordered by index where known. */
typedef struct {
    const char *name;
    int index;
} Name;

static int name_add(Name **list, int *count, const char *name, int index) {
    for (int i = 0; i < *count; i++)
        if (strcmp((*list)[i].name, name) == 0) {
            if (index >= 0 && ((*list)[i].index < 0 || index < (*list)[i].index))
                (*list)[i].index = index;
            return i;
        }
    *list = xrealloc(*list, (size_t)(*count + 1) * sizeof(Name));
    (*list)[*count].name = name;
    (*list)[*count].index = index;
    return (*count)++;
}

static int cmp_name(const void *a, const void *b) {
    const Name *x = a, *y = b;
    if (x->index >= 0 && y->index >= 0 && x->index != y->index)
        return x->index < y->index ? -1 : 1;
    if ((x->index >= 0) != (y->index >= 0))
        return x->index >= 0 ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Fig. 3: per dataset, one box per (missing subset, model) for euar and mlp-moe over the
 * seeds' accuracy, with the seeds drawn as points. Block 0 of the .dat holds the boxes, block
 * 1 the seeds. */
static void build_boxes(const RunSet *runs, const char *suite, PlotSet *out) {
    static const char *const models[] = {"euar", "mlp-moe"};
    Name *datasets = NULL;
    int num_datasets = 0;
    for (int i = 0; i < runs->num_runs; i++)
        name_add(&datasets, &num_datasets, runs->runs[i].dataset, -1);
    qsort(datasets, (size_t)num_datasets, sizeof(Name), cmp_name);
    for (int d = 0; d < num_datasets; d++) {
        Name *subsets = NULL;
        int num_subsets = 0, any = 0;
        const char *metric = "";
        for (int i = 0; i < runs->num_runs; i++) {
            const SeedRun *r = &runs->runs[i];
            if (strcmp(r->dataset, datasets[d].name) != 0)
                continue;
            name_add(&subsets, &num_subsets, r->condition, r->condition_index);
            for (int m = 0; m < 2; m++)
                if (strcmp(r->model, models[m]) == 0 && r->has_accuracy) {
                    any = 1;
                    metric = r->accuracy_metric;
                }
        }
        if (!any) {
            free(subsets);
            continue;
        }
        qsort(subsets, (size_t)num_subsets, sizeof(Name), cmp_name);
        Plot *p = plot_new(out, EUAR_PLOT_BOX, suite, datasets[d].name, NULL, "fig3-box",
                           NULL);
        TextBuf caption = {NULL, 0, 0};
        text_printf(&caption, "Fig. 3: test %s of euar and mlp-moe per missing-modality subset "
                    "over the seeds, %s (box: quartiles by linear interpolation, whiskers: "
                    "min and max, points: seeds)", metric, datasets[d].name);
        p->caption = text_finish(&caption);
        TextBuf dat = {NULL, 0, 0}, points = {NULL, 0, 0};
        text_printf(&dat, "# %s\n# values in %%\n# x min q1 median q3 max n subset model\n",
                    p->caption);
        text_printf(&points, "# x value seed subset model\n");
        double lo = INFINITY, hi = -INFINITY;
        for (int s = 0; s < num_subsets; s++) {
            for (int m = 0; m < 2; m++) {
                double values[256];
                int n = 0;
                double x = 3.0 * s + m + 1.0;
                for (int i = 0; i < runs->num_runs && n < 256; i++) {
                    const SeedRun *r = &runs->runs[i];
                    if (strcmp(r->dataset, datasets[d].name) != 0 ||
                        strcmp(r->condition, subsets[s].name) != 0 ||
                        strcmp(r->model, models[m]) != 0 || !r->has_accuracy)
                        continue;
                    values[n++] = 100.0 * r->accuracy;
                    text_printf(&points, "%g %.6f %.0f ", x, 100.0 * r->accuracy, r->seed);
                    safe_append(&points, subsets[s].name);
                    text_printf(&points, " %s\n", models[m]);
                }
                if (n == 0)
                    continue;
                qsort(values, (size_t)n, sizeof(double), cmp_double);
                lo = fmin(lo, values[0]);
                hi = fmax(hi, values[n - 1]);
                text_printf(&dat, "%g %.6f %.6f %.6f %.6f %.6f %d ", x, values[0],
                            quantile(values, n, 0.25), quantile(values, n, 0.5),
                            quantile(values, n, 0.75), values[n - 1], n);
                safe_append(&dat, subsets[s].name);
                text_printf(&dat, " %s\n", models[m]);
            }
        }
        char *point_text = text_finish(&points);
        text_printf(&dat, "\n\n%s", point_text);
        free(point_text);
        p->dat = text_finish(&dat);

        TextBuf gp = {NULL, 0, 0};
        gp_header(&gp, p, p->caption, "available modalities", "test accuracy (%)");
        report_gp_flat_range(&gp, "y", lo, hi);
        text_printf(&gp, "set style fill solid 0.35 border -1\nset boxwidth 0.7\n"
                         "set xrange [0:%d]\nset offsets 0, 0, graph 0.05, graph 0.05\n"
                         "set xtics (", 3 * num_subsets);
        for (int s = 0; s < num_subsets; s++) {
            text_printf(&gp, "%s", s ? ", " : "");
            gp_quoted(&gp, subsets[s].name);
            text_printf(&gp, " %.1f", 3.0 * s + 1.5);
        }
        text_printf(&gp, ")\nplot");
        for (int m = 0; m < 2; m++)
            /* Box x positions are 3 s + m + 1, so x mod 3 selects the model. */
            text_printf(&gp, "%s '%s.dat' index 0 using ($1 - 3 * floor($1 / 3) == %d ? $1 : "
                             "NaN):3:2:6:5 with candlesticks whiskerbars lc rgb '%s' title '%s'",
                        m ? ", \\\n    " : " ", p->stem, m + 1, colour(m), models[m]);
        text_printf(&gp, ", \\\n    '%s.dat' index 0 using 1:4:4:4:4 with candlesticks lt -1 "
                         "notitle, \\\n    '%s.dat' index 1 using 1:2 with points pt 7 ps 0.8 "
                         "lc rgb 'black' title 'seeds'\n", p->stem, p->stem);
        gp_footer(&gp, p);
        p->gp = text_finish(&gp);
        free(subsets);
    }
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

/* Fig. 4: accuracy (mean with error bars of one std) against the number of experts on a
 * log2 axis, one line per dataset (per dataset and model when there are several models). */
static void build_experts(const ReportSet *set, PlotSet *out) {
    Name *series = NULL;
    int num_series = 0;
    char (*names)[160] = xcalloc((size_t)EUAR_MAX(set->num_groups, 1), 160);
    Name *models = NULL;
    int num_models = 0;
    for (int i = 0; i < set->num_groups; i++)
        name_add(&models, &num_models, set->groups[i].model, -1);
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        if (num_models > 1)
            snprintf(names[i], 160, "%s / %s", g->dataset, g->model);
        else
            snprintf(names[i], 160, "%s", g->dataset);
    }
    for (int i = 0; i < set->num_groups; i++)
        if (group_experts(&set->groups[i]) > 0 && set->groups[i].n_ok > 0)
            name_add(&series, &num_series, names[i], -1);
    if (num_series == 0) {
        free(series);
        free(names);
        free(models);
        return;
    }
    qsort(series, (size_t)num_series, sizeof(Name), cmp_name);
    Plot *p = plot_new(out, EUAR_PLOT_EXPERTS, set->groups[0].suite, NULL, NULL,
                       "fig4-experts", "accuracy");
    p->caption = xstrdup("Fig. 4: test accuracy (Acc2 of the protocol, or Acc for "
                         "classification) against the number of experts, mean and sample std "
                         "over the seeds");
    TextBuf dat = {NULL, 0, 0}, gp = {NULL, 0, 0}, cmd = {NULL, 0, 0};
    text_printf(&dat, "# %s\n# values in %%; one block per series\n# experts mean std n\n",
                p->caption);
    gp_header(&gp, p, p->caption, "number of experts (log2 scale)", "test accuracy (%)");
    text_printf(&gp, "set logscale x 2\nset offsets graph 0.05, graph 0.05, graph 0.05, "
                     "graph 0.05\n");
    /* The plot command follows the y range, which needs every value first. */
    text_printf(&cmd, "plot");
    double lo = INFINITY, hi = -INFINITY, x_lo = INFINITY, x_hi = -INFINITY;
    for (int s = 0; s < num_series; s++) {
        int *experts = NULL, count = 0;
        const ReportGroup **groups = NULL;
        for (int i = 0; i < set->num_groups; i++) {
            if (strcmp(names[i], series[s].name) != 0 || set->groups[i].n_ok == 0)
                continue;
            int e = group_experts(&set->groups[i]);
            if (e <= 0)
                continue;
            experts = xrealloc(experts, (size_t)(count + 1) * sizeof(int));
            groups = xrealloc(groups, (size_t)(count + 1) * sizeof(*groups));
            int j = count++;
            while (j > 0 && experts[j - 1] > e) {
                experts[j] = experts[j - 1];
                groups[j] = groups[j - 1];
                j--;
            }
            experts[j] = e;
            groups[j] = &set->groups[i];
        }
        text_printf(&dat, "%s# series %s\n", s ? "\n\n" : "", series[s].name);
        for (int j = 0; j < count; j++) {
            const MetricStat *ms = report_group_metric(groups[j],
                                                       report_accuracy_metric(groups[j]));
            if (ms) {
                text_printf(&dat, "%d %.6f %.6f %d\n", experts[j], 100.0 * ms->mean,
                            100.0 * ms->std, ms->n);
                report_gp_range_add(&lo, &hi, 100.0 * ms->mean, 100.0 * ms->std);
                report_gp_range_add(&x_lo, &x_hi, experts[j], 0.0);
            }
        }
        text_printf(&cmd, "%s '%s.dat' index %d using 1:2:3 with yerrorlines lc rgb '%s' pt 7 "
                          "title ", s ? ", \\\n    " : " ", p->stem, s, colour(s));
        gp_quoted(&cmd, series[s].name);
        free(experts);
        free(groups);
    }
    report_gp_flat_range(&gp, "x", x_lo, x_hi);
    report_gp_flat_range(&gp, "y", lo, hi);
    char *plot_command = text_finish(&cmd);
    text_printf(&gp, "%s\n", plot_command);
    free(plot_command);
    gp_footer(&gp, p);
    p->dat = text_finish(&dat);
    p->gp = text_finish(&gp);
    free(series);
    free(names);
    free(models);
}

/* Mean and sample standard deviation (divisor n - 1, 0 when n is 1) of values. */
static void mean_std(const double *values, int n, double *mean, double *std) {
    double sum = 0.0, squares = 0.0;
    for (int i = 0; i < n; i++)
        sum += values[i];
    *mean = n > 0 ? sum / n : NAN;
    for (int i = 0; i < n; i++)
        squares += (values[i] - *mean) * (values[i] - *mean);
    *std = n > 1 ? sqrt(squares / (n - 1)) : 0.0;
}

/* Fig. 5: per dataset and training condition, the validation metric (and the validation loss
 * in a second plot) against the epoch, per model the mean over the seeds as a line and a band
 * of mean ± one sample std. Per model the .dat has columns mean, std, mean-std, mean+std, n;
 * an epoch without any evaluated seed is NaN. */
static void build_curves(const RunSet *runs, const char *suite, PlotSet *out) {
    Name *scopes = NULL;
    int num_scopes = 0;
    char (*keys)[256] = xcalloc((size_t)EUAR_MAX(runs->num_runs, 1), 256);
    for (int i = 0; i < runs->num_runs; i++) {
        snprintf(keys[i], 256, "%s\n%s", runs->runs[i].dataset, runs->runs[i].condition);
        if (runs->runs[i].ok && runs->runs[i].num_epochs > 0)
            name_add(&scopes, &num_scopes, keys[i], runs->runs[i].condition_index);
    }
    for (int s = 0; s < num_scopes; s++) {
        Name *models = NULL;
        int num_models = 0, max_epochs = 0;
        const SeedRun *first = NULL;
        for (int i = 0; i < runs->num_runs; i++) {
            const SeedRun *r = &runs->runs[i];
            if (strcmp(keys[i], scopes[s].name) != 0 || !r->ok)
                continue;
            first = first ? first : r;
            name_add(&models, &num_models, r->model, r->model_index);
            max_epochs = EUAR_MAX(max_epochs, r->num_epochs);
        }
        qsort(models, (size_t)num_models, sizeof(Name), cmp_name);
        for (int which = 0; which < 2; which++) {
            const char *what = which ? "valid_loss" : "valid_metric";
            Plot *p = plot_new(out, EUAR_PLOT_CONVERGENCE, suite, first->dataset,
                               first->condition, "fig5-convergence", what);
            TextBuf caption = {NULL, 0, 0};
            text_printf(&caption, "Fig. 5: validation %s against epoch, %s, trained under %s; "
                        "line: mean over the seeds, band: mean ± sample std",
                        which ? "loss" : "metric (the headline metric of the run)",
                        first->dataset, first->condition);
            p->caption = text_finish(&caption);
            TextBuf dat = {NULL, 0, 0};
            text_printf(&dat, "# %s\n# epoch", p->caption);
            for (int m = 0; m < num_models; m++)
                text_printf(&dat, " %s_mean %s_std %s_lo %s_hi %s_n", models[m].name,
                            models[m].name, models[m].name, models[m].name, models[m].name);
            text_printf(&dat, "\n");
            double *values = xcalloc((size_t)EUAR_MAX(runs->num_runs, 1), sizeof(double));
            double lo = INFINITY, hi = -INFINITY, x_lo = INFINITY, x_hi = -INFINITY;
            for (int e = 0; e < max_epochs; e++) {
                double epoch = e + 1;
                for (int i = 0; i < runs->num_runs; i++)
                    if (strcmp(keys[i], scopes[s].name) == 0 && runs->runs[i].ok &&
                        e < runs->runs[i].num_epochs) {
                        epoch = runs->runs[i].epoch[e];
                        break;
                    }
                text_printf(&dat, "%g", epoch);
                report_gp_range_add(&x_lo, &x_hi, epoch, 0.0);
                for (int m = 0; m < num_models; m++) {
                    int n = 0;
                    for (int i = 0; i < runs->num_runs; i++) {
                        const SeedRun *r = &runs->runs[i];
                        if (strcmp(keys[i], scopes[s].name) != 0 || !r->ok ||
                            strcmp(r->model, models[m].name) != 0 || e >= r->num_epochs)
                            continue;
                        double v = which ? r->valid_loss[e] : r->valid_metric[e];
                        if (isfinite(v))
                            values[n++] = v;
                    }
                    double mean, std;
                    mean_std(values, n, &mean, &std);
                    if (n == 0)
                        text_printf(&dat, " NaN NaN NaN NaN 0");
                    else
                        text_printf(&dat, " %.6f %.6f %.6f %.6f %d", mean, std, mean - std,
                                    mean + std, n);
                    if (n > 0)
                        report_gp_range_add(&lo, &hi, mean, std);
                }
                text_printf(&dat, "\n");
            }
            free(values);
            p->dat = text_finish(&dat);
            TextBuf gp = {NULL, 0, 0};
            gp_header(&gp, p, p->caption, "epoch",
                      which ? "validation loss" : "validation metric");
            report_gp_flat_range(&gp, "x", x_lo, x_hi);
            report_gp_flat_range(&gp, "y", lo, hi);
            text_printf(&gp, "set style fill transparent solid 0.2 noborder\nplot");
            for (int m = 0; m < num_models; m++) {
                int base = 2 + 5 * m;
                text_printf(&gp, "%s '%s.dat' using 1:%d:%d with filledcurves lc rgb '%s' "
                                 "notitle, \\\n    '%s.dat' using 1:%d with lines lw 2 lc rgb "
                                 "'%s' title ", m ? ", \\\n    " : " ", p->stem, base + 2,
                            base + 3, colour(m), p->stem, base, colour(m));
                gp_quoted(&gp, models[m].name);
            }
            text_printf(&gp, "\n");
            gp_footer(&gp, p);
            p->gp = text_finish(&gp);
        }
        free(models);
    }
    free(scopes);
    free(keys);
}

void paper_figures_build(const ReportSet *set, const RunSet *runs, const char *kind,
                         PlotSet *out) {
    if (!kind || set->num_groups == 0)
        return;
    if (strcmp(kind, "missing") == 0)
        build_boxes(runs, set->groups[0].suite, out);
    else if (strcmp(kind, "experts") == 0)
        build_experts(set, out);
    else if (strcmp(kind, "convergence") == 0)
        build_curves(runs, set->groups[0].suite, out);
}

void paper_artifact_add(PaperArtifacts *list, const char *label, const char *caption,
                        const char *path, const char *settings) {
    list->items = xrealloc(list->items, (size_t)(list->count + 1) * sizeof(PaperArtifact));
    PaperArtifact *a = &list->items[list->count++];
    a->label = xstrdup(label);
    a->caption = xstrdup(caption);
    a->path = xstrdup(path);
    a->settings = xstrdup(settings ? settings : "");
}

void paper_artifacts_free(PaperArtifacts *list) {
    for (int i = 0; i < list->count; i++) {
        free(list->items[i].label);
        free(list->items[i].caption);
        free(list->items[i].path);
        free(list->items[i].settings);
    }
    free(list->items);
    memset(list, 0, sizeof(*list));
}
