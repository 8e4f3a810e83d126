/* gnuplot plots of test-time noise results: the data and scripts, and running gnuplot. */
#include "report/plots.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/common.h"
#include "report/text.h"

/* Plot size in pixels (PNG) and points (SVG). */
#define PLOT_WIDTH 1000
#define PLOT_HEIGHT 600
/* Longest title line in characters: about 8 pixels each in the 12-point default font of
 * pngcairo, so a line stays well inside PLOT_WIDTH beside the key. */
#define PLOT_TITLE_COLUMNS 90

int report_noise_level(const char *spec, NoiseLevel *out) {
    memset(out, 0, sizeof(*out));
    if (!spec || !spec[0] || strcmp(spec, "none") == 0)
        return -1;
    int found = 0, blank_found = 0;
    double blank_level = 0.0;
    size_t series_len = 0;
    for (const char *term = spec; term; ) {
        const char *end = strchr(term, '+');
        size_t len = end ? (size_t)(end - term) : strlen(term);
        char text[512];
        if (len == 0 || len >= sizeof(text))
            return -1;
        memcpy(text, term, len);
        text[len] = '\0';
        char *at = strchr(text, '@');
        const char *modality = at ? at + 1 : "";
        if (at)
            *at = '\0';
        char *colon = strchr(text, ':');
        const char *params = colon ? colon + 1 : "";
        if (colon)
            *colon = '\0';
        int n = snprintf(out->series + series_len, sizeof(out->series) - series_len, "%s%s%s%s",
                         out->num_terms ? "+" : "", text, modality[0] ? "@" : "", modality);
        if (n < 0 || (size_t)n >= sizeof(out->series) - series_len)
            return -1;
        series_len += (size_t)n;
        out->num_terms++;
        int image = strcmp(text, "gaussian") == 0 || strcmp(text, "saltpepper") == 0;
        int blank = strcmp(text, "blank") == 0;
        const char *key = NULL;
        if (image)
            key = "eps";
        else if (blank)
            key = "ratio";
        size_t key_len = key ? strlen(key) : 0;
        for (const char *p = params; key && *p; ) {
            const char *comma = strchr(p, ',');
            size_t item_len = comma ? (size_t)(comma - p) : strlen(p);
            if (item_len > key_len && strncmp(p, key, key_len) == 0 && p[key_len] == '=') {
                char value[64];
                size_t value_len = item_len - key_len - 1;
                if (value_len == 0 || value_len >= sizeof(value))
                    return -1;
                memcpy(value, p + key_len + 1, value_len);
                value[value_len] = '\0';
                char *stop;
                errno = 0;
                double level = strtod(value, &stop);
                if (*stop || errno || !isfinite(level))
                    return -1;
                if (image && !found) {
                    found = 1;
                    out->level = level;
                    snprintf(out->type, sizeof(out->type), "%.31s", text);
                    snprintf(out->level_key, sizeof(out->level_key), "%s", key);
                } else if (blank && !blank_found) {
                    blank_found = 1;
                    blank_level = level;
                }
            }
            p = comma ? comma + 1 : p + item_len;
        }
        term = end ? end + 1 : NULL;
    }
    if (!found && blank_found) {
        found = 1;
        out->level = blank_level;
        snprintf(out->type, sizeof(out->type), "blank");
        snprintf(out->level_key, sizeof(out->level_key), "ratio");
    }
    return found ? 0 : -1;
}

/* Writes text as a single-quoted gnuplot string. A quote is doubled and a control character
 * becomes a space. Backslashes, '@', '#' and ';' stay literal inside single quotes, which
 * tests/test_report.c checks by running gnuplot 5.4 on such labels. */
static void append_gp_string(TextBuf *out, const char *s) {
    text_printf(out, "'");
    for (; *s; s++) {
        if (*s == '\'')
            text_printf(out, "''");
        else if ((unsigned char)*s < 0x20)
            text_printf(out, " ");
        else
            text_printf(out, "%c", *s);
    }
    text_printf(out, "'");
}

void report_gp_range_add(double *lo, double *hi, double value, double err) {
    if (!isfinite(value))
        return;
    double e = isfinite(err) ? fabs(err) : 0.0;
    *lo = fmin(*lo, value - e);
    *hi = fmax(*hi, value + e);
}

void report_gp_flat_range(TextBuf *gp, const char *axis, double lo, double hi) {
    if (lo > hi || hi - lo > 1e-9 * fmax(1.0, fabs(hi)))
        return;
    double margin = hi != 0.0 ? 0.05 * fabs(hi) : 1.0;
    text_printf(gp, "set %srange [%.6g:%.6g]\n", axis, lo - margin, hi + margin);
}

char *report_gp_string_wrapped(const char *text, int max_columns) {
    TextBuf out = {NULL, 0, 0};
    const char *s = text;
    int first = 1;
    while (first || *s) {
        size_t len = strlen(s), cut = len;
        if (max_columns > 0 && len > (size_t)max_columns) {
            /* Break after the last space or comma that keeps the line within max_columns. */
            cut = 0;
            for (size_t k = 1; k < (size_t)max_columns; k++)
                if (s[k] == ' ' || s[k - 1] == ',')
                    cut = k;
            if (cut == 0)
                cut = (size_t)max_columns;
        }
        char *line = xmalloc(cut + 1);
        memcpy(line, s, cut);
        line[cut] = '\0';
        if (!first)
            text_printf(&out, ".\"\\n\".");
        append_gp_string(&out, line);
        free(line);
        s += cut;
        while (*s == ' ')
            s++;
        first = 0;
    }
    return text_finish(&out);
}

/* Writes a name as one whitespace-free column name of a .dat header. */
static void append_column_name(TextBuf *out, const char *s, const char *suffix) {
    text_printf(out, " ");
    for (; *s; s++)
        text_printf(out, "%c", (unsigned char)*s <= ' ' ? '_' : *s);
    text_printf(out, "%s", suffix);
}

/* Writes a value of a .dat file; NaN marks a missing point, which gnuplot skips. */
static void append_value(TextBuf *out, double value, int present) {
    if (present)
        text_printf(out, " %.6g", value);
    else
        text_printf(out, " NaN");
}

/* One x position of a plot against noise level: clean (test NULL, level 0) or a condition. */
typedef struct {
    const char *label;
    double level;
    int order;
} LevelPoint;

static int cmp_points(const void *a, const void *b) {
    const LevelPoint *x = a, *y = b;
    if (x->level != y->level)
        return x->level < y->level ? -1 : 1;
    return x->order - y->order;
}

/* The groups of one (suite, dataset, training condition) with their test-time conditions. */
typedef struct {
    const char *suite, *dataset, *condition;
    const ReportGroup **models; /* in model order */
    int num_models;
    const TestStat **tests; /* each label once, in order of first appearance */
    int num_tests;
} PlotScope;

static int cmp_models(const void *a, const void *b) {
    const ReportGroup *x = *(const ReportGroup *const *)a, *y = *(const ReportGroup *const *)b;
    if (x->model_index >= 0 && y->model_index >= 0 && x->model_index != y->model_index)
        return x->model_index < y->model_index ? -1 : 1;
    if ((x->model_index >= 0) != (y->model_index >= 0))
        return x->model_index >= 0 ? -1 : 1;
    return strcmp(x->model, y->model);
}

static int cmp_scopes(const void *a, const void *b) {
    const PlotScope *x = a, *y = b;
    int c = strcmp(x->suite, y->suite);
    if (!c)
        c = strcmp(x->dataset, y->dataset);
    if (!c && x->models[0]->condition_index != y->models[0]->condition_index)
        c = x->models[0]->condition_index < y->models[0]->condition_index ? -1 : 1;
    return c ? c : strcmp(x->condition, y->condition);
}

/* Groups the finished groups with test-time conditions by (suite, dataset, condition). */
static int collect_scopes(const ReportSet *set, PlotScope **out) {
    PlotScope *scopes = NULL;
    int count = 0;
    for (int i = 0; i < set->num_groups; i++) {
        const ReportGroup *g = &set->groups[i];
        if (g->num_tests == 0 || g->n_ok == 0)
            continue;
        PlotScope *s = NULL;
        for (int j = 0; j < count && !s; j++)
            if (strcmp(scopes[j].suite, g->suite) == 0 &&
                strcmp(scopes[j].dataset, g->dataset) == 0 &&
                strcmp(scopes[j].condition, g->condition) == 0)
                s = &scopes[j];
        if (!s) {
            scopes = xrealloc(scopes, (size_t)(count + 1) * sizeof(*s));
            s = &scopes[count++];
            memset(s, 0, sizeof(*s));
            s->suite = g->suite;
            s->dataset = g->dataset;
            s->condition = g->condition;
        }
        s->models = xrealloc(s->models, (size_t)(s->num_models + 1) * sizeof(*s->models));
        s->models[s->num_models++] = g;
    }
    for (int j = 0; j < count; j++) {
        PlotScope *s = &scopes[j];
        qsort(s->models, (size_t)s->num_models, sizeof(*s->models), cmp_models);
        for (int m = 0; m < s->num_models; m++) {
            for (int k = 0; k < s->models[m]->num_tests; k++) {
                const TestStat *test = &s->models[m]->tests[k];
                int known = 0;
                for (int i = 0; i < s->num_tests && !known; i++)
                    known = strcmp(s->tests[i]->label, test->label) == 0;
                if (known)
                    continue;
                s->tests = xrealloc(s->tests, (size_t)(s->num_tests + 1) * sizeof(*s->tests));
                s->tests[s->num_tests++] = test;
            }
        }
    }
    if (count > 0)
        qsort(scopes, (size_t)count, sizeof(*scopes), cmp_scopes);
    *out = scopes;
    return count;
}

/* Distinct series of a scope's conditions that have a level, in order of first appearance. */
static int collect_series(const PlotScope *s, NoiseLevel *levels, int *has_level,
                          const char **series) {
    int count = 0;
    for (int k = 0; k < s->num_tests; k++) {
        has_level[k] = report_noise_level(s->tests[k]->noise, &levels[k]) == 0;
        if (!has_level[k])
            continue;
        int known = 0;
        for (int i = 0; i < count && !known; i++)
            known = strcmp(series[i], levels[k].series) == 0;
        if (!known)
            series[count++] = levels[k].series;
    }
    return count;
}

/* Clean at level 0, then the conditions of one series by level. */
static int series_points(const PlotScope *s, const NoiseLevel *levels, const int *has_level,
                         const char *series, LevelPoint *points) {
    int count = 0;
    points[count++] = (LevelPoint){NULL, 0.0, -1};
    for (int k = 0; k < s->num_tests; k++)
        if (has_level[k] && strcmp(levels[k].series, series) == 0)
            points[count++] = (LevelPoint){s->tests[k]->label, levels[k].level, k};
    qsort(points, (size_t)count, sizeof(*points), cmp_points);
    return count;
}

/* Appends a file-name-safe form of s: letters, digits, '.', '_' and '-' stay, others become
 * '_', and a leading '.' or '-' becomes '_'. */
static void append_safe(TextBuf *out, const char *s) {
    for (const char *p = s; *p; p++) {
        char c = *p;
        int keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || ((c == '.' || c == '-') && p != s);
        text_printf(out, "%c", keep ? c : '_');
    }
}

typedef struct {
    PlotSet *set;
    const PlotScope *scope;
    int many_conditions; /* the (suite, dataset) has more than one training condition */
} PlotBuilder;

/* Adds a plot with a stem made of the scope and the given parts, unique in the set. */
static Plot *plot_add(PlotBuilder *b, PlotKind kind, const char *const *parts, int num_parts) {
    const PlotScope *s = b->scope;
    TextBuf stem = {NULL, 0, 0};
    if (s->suite[0]) {
        append_safe(&stem, s->suite);
        text_printf(&stem, "-");
    }
    append_safe(&stem, s->dataset);
    if (b->many_conditions) {
        text_printf(&stem, "-");
        append_safe(&stem, s->condition);
    }
    for (int i = 0; i < num_parts; i++) {
        text_printf(&stem, "-");
        append_safe(&stem, parts[i]);
    }
    char *base = text_finish(&stem);
    char *name = xstrdup(base);
    for (int n = 2;; n++) {
        int taken = 0;
        for (int i = 0; i < b->set->count && !taken; i++)
            taken = strcmp(b->set->plots[i].stem, name) == 0;
        if (!taken)
            break;
        free(name);
        size_t len = strlen(base) + 16;
        name = xmalloc(len);
        snprintf(name, len, "%s-%d", base, n);
    }
    free(base);
    b->set->plots = xrealloc(b->set->plots, (size_t)(b->set->count + 1) * sizeof(Plot));
    Plot *p = &b->set->plots[b->set->count++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->suite = s->suite;
    p->dataset = s->dataset;
    p->condition = s->condition;
    p->stem = name;
    return p;
}

/* Writes the terminal, output and labels of a script; the plot command follows. */
static void append_gp_header(TextBuf *gp, const Plot *p, const char *title, const char *xlabel,
                             const char *ylabel) {
    text_printf(gp, "# euar-bench: %s.\n# Data: %s.dat. Run in this folder: gnuplot %s.gp\n",
                "plot of test-time noise results", p->stem, p->stem);
    /* pngcairo draws antialiased text; Debian's gnuplot-nox has it, other builds may only have
     * the libgd png terminal. */
    text_printf(gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                    "    set terminal pngcairo noenhanced size %d,%d\n"
                    "} else {\n"
                    "    set terminal png noenhanced size %d,%d\n"
                    "}\n", PLOT_WIDTH, PLOT_HEIGHT, PLOT_WIDTH, PLOT_HEIGHT);
    text_printf(gp, "set output '%s.png'\nset title ", p->stem);
    char *wrapped = report_gp_string_wrapped(title, PLOT_TITLE_COLUMNS);
    text_printf(gp, "%s", wrapped);
    free(wrapped);
    text_printf(gp, " noenhanced\nset xlabel ");
    append_gp_string(gp, xlabel);
    text_printf(gp, " noenhanced\nset ylabel ");
    append_gp_string(gp, ylabel);
    text_printf(gp, " noenhanced\nset key outside right top noenhanced\nset grid\n");
}

/* Finishes a script: the SVG of the same plot, then closing the output. */
static void append_gp_footer(TextBuf *gp, const Plot *p) {
    text_printf(gp, "set terminal svg noenhanced size %d,%d\nset output '%s.svg'\nreplot\n"
                    "unset output\n", PLOT_WIDTH, PLOT_HEIGHT, p->stem);
}

/* Title of a plot against the level of `series`, noting combined specs. */
static void series_title(char *buf, size_t cap, const char *what, const PlotScope *s,
                         const NoiseLevel *level) {
    if (level->num_terms > 1)
        snprintf(buf, cap, "%s under %s noise (x: %s of the %s term), %s", what, level->series,
                 level->level_key, level->type, s->dataset);
    else
        snprintf(buf, cap, "%s under %s noise, %s", what, level->series, s->dataset);
}

static const char *xlabel_of(const NoiseLevel *level) {
    return strcmp(level->level_key, "ratio") == 0 ? "blank ratio R (clean at 0)"
                                                  : "noise level E (clean at 0)";
}

/* The metrics and routing of one x position of a model: clean or a test-time condition. */
static const TestStat *point_test(const ReportGroup *g, const LevelPoint *pt) {
    return pt->label ? report_group_test(g, pt->label) : NULL;
}

/* (a) Accuracy in % against the noise level, one line per model with error bars. */
static void build_accuracy(PlotBuilder *b, const NoiseLevel *level, const LevelPoint *points,
                           int num_points) {
    const PlotScope *s = b->scope;
    const char *parts[] = {"accuracy", level->series};
    Plot *p = plot_add(b, EUAR_PLOT_ACCURACY, parts, 2);
    char title[768];
    series_title(title, sizeof(title), "accuracy", s, level);
    p->caption = xstrdup(title);

    TextBuf dat = {NULL, 0, 0};
    text_printf(&dat, "# %s\n# accuracy in %% (mean and sample std over seeds) of each model; "
                "level 0 is the clean test split\n# level", title);
    for (int m = 0; m < s->num_models; m++) {
        append_column_name(&dat, s->models[m]->model, ".mean");
        append_column_name(&dat, s->models[m]->model, ".std");
    }
    text_printf(&dat, "\n");
    double lo = INFINITY, hi = -INFINITY; /* y extent of the points with their error bars */
    for (int i = 0; i < num_points; i++) {
        text_printf(&dat, "%.6g", points[i].level);
        for (int m = 0; m < s->num_models; m++) {
            const ReportGroup *g = s->models[m];
            const char *name = report_accuracy_metric(g);
            const TestStat *test = point_test(g, &points[i]);
            const MetricStat *ms = NULL;
            if (!points[i].label)
                ms = report_group_metric(g, name);
            else if (test)
                ms = report_metric_find(test->metrics, test->num_metrics, name);
            append_value(&dat, ms ? 100.0 * ms->mean : 0.0, ms != NULL);
            append_value(&dat, ms ? 100.0 * ms->std : 0.0, ms != NULL);
            if (ms)
                report_gp_range_add(&lo, &hi, 100.0 * ms->mean, 100.0 * ms->std);
        }
        text_printf(&dat, "\n");
    }
    p->dat = text_finish(&dat);

    TextBuf gp = {NULL, 0, 0};
    append_gp_header(&gp, p, title, xlabel_of(level), "accuracy (%), mean and std over seeds");
    report_gp_flat_range(&gp, "y", lo, hi);
    /* Margins keep the points and error bars at the first and last level inside the frame. */
    text_printf(&gp, "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\nplot");
    for (int m = 0; m < s->num_models; m++) {
        text_printf(&gp, "%s '%s.dat' using 1:%d:%d with yerrorlines title ", m ? ", \\\n    "
                    : " ", p->stem, 2 + 2 * m, 3 + 2 * m);
        append_gp_string(&gp, s->models[m]->model);
    }
    text_printf(&gp, "\n");
    append_gp_footer(&gp, p);
    p->gp = text_finish(&gp);
}

/* Routing of one modality of a model at one x position, or NULL. */
static const RoutingStat *point_routing(const ReportGroup *g, const LevelPoint *pt,
                                        const char *modality) {
    if (!pt->label)
        return report_routing_find(g->routing, g->num_routing, modality);
    const TestStat *test = report_group_test(g, pt->label);
    return test ? report_routing_find(test->routing, test->num_routing, modality) : NULL;
}

/* Modalities of a model's routing with a mean sigma^2 at some x position, in order. */
static int sigma2_modalities(const ReportGroup *g, const LevelPoint *points, int num_points,
                             const char **names, int cap) {
    int count = 0;
    for (int i = 0; i < num_points; i++) {
        const RoutingStat *routing = g->routing;
        int num = g->num_routing;
        if (points[i].label) {
            const TestStat *test = report_group_test(g, points[i].label);
            routing = test ? test->routing : NULL;
            num = test ? test->num_routing : 0;
        }
        for (int r = 0; r < num; r++) {
            if (routing[r].sigma2_n == 0)
                continue;
            int known = 0;
            for (int j = 0; j < count && !known; j++)
                known = strcmp(names[j], routing[r].modality) == 0;
            if (!known && count < cap)
                names[count++] = routing[r].modality;
        }
    }
    return count;
}

/* (b) Mean expert sigma^2 against the noise level, one line per modality. */
static void build_sigma2(PlotBuilder *b, const ReportGroup *g, const NoiseLevel *level,
                         const LevelPoint *points, int num_points) {
    const char *modalities[64];
    int num_modalities = sigma2_modalities(g, points, num_points, modalities, 64);
    if (num_modalities == 0)
        return;
    const char *parts[] = {"sigma2", level->series, g->model};
    Plot *p = plot_add(b, EUAR_PLOT_SIGMA2, parts, 3);
    char what[256], title[768];
    snprintf(what, sizeof(what), "mean expert sigma^2 of %s", g->model);
    series_title(title, sizeof(title), what, b->scope, level);
    p->caption = xstrdup(title);

    TextBuf dat = {NULL, 0, 0};
    text_printf(&dat, "# %s\n# per modality: load-weighted mean over experts of sigma^2, mean "
                "and sample std over seeds; level 0 is the clean test split\n# level", title);
    for (int r = 0; r < num_modalities; r++) {
        append_column_name(&dat, modalities[r], ".mean");
        append_column_name(&dat, modalities[r], ".std");
    }
    text_printf(&dat, "\n");
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < num_points; i++) {
        text_printf(&dat, "%.6g", points[i].level);
        for (int r = 0; r < num_modalities; r++) {
            const RoutingStat *rs = point_routing(g, &points[i], modalities[r]);
            int present = rs && rs->sigma2_n > 0;
            append_value(&dat, present ? rs->sigma2_mean : 0.0, present);
            append_value(&dat, present ? rs->sigma2_std : 0.0, present);
            if (present)
                report_gp_range_add(&lo, &hi, rs->sigma2_mean, rs->sigma2_std);
        }
        text_printf(&dat, "\n");
    }
    p->dat = text_finish(&dat);

    TextBuf gp = {NULL, 0, 0};
    append_gp_header(&gp, p, title, xlabel_of(level), "mean expert sigma^2");
    report_gp_flat_range(&gp, "y", lo, hi);
    text_printf(&gp, "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\nplot");
    for (int r = 0; r < num_modalities; r++) {
        text_printf(&gp, "%s '%s.dat' using 1:%d:%d with yerrorlines title ", r ? ", \\\n    "
                    : " ", p->stem, 2 + 2 * r, 3 + 2 * r);
        append_gp_string(&gp, modalities[r]);
    }
    text_printf(&gp, "\n");
    append_gp_footer(&gp, p);
    p->gp = text_finish(&gp);
}

/* (c) Expert load of one modality of model g: grouped bars per expert at clean and at the
 * strongest level of each series. */
static void build_load(PlotBuilder *b, const ReportGroup *g, const RoutingStat *clean,
                       const LevelPoint *strongest, int num_series) {
    const char *parts[] = {"load", g->model, clean->modality};
    Plot *p = plot_add(b, EUAR_PLOT_LOAD, parts, 3);
    char title[768];
    snprintf(title, sizeof(title), "expert load of %s, modality %s, clean and strongest noise, "
             "%s", g->model, clean->modality, b->scope->dataset);
    p->caption = xstrdup(title);

    const RoutingStat *columns[64];
    const char *labels[64];
    int num_columns = 0, num_experts = clean->num_experts;
    columns[num_columns] = clean;
    labels[num_columns++] = "clean";
    for (int i = 0; i < num_series && num_columns < 64; i++) {
        const RoutingStat *rs = point_routing(g, &strongest[i], clean->modality);
        columns[num_columns] = rs;
        labels[num_columns++] = strongest[i].label;
        if (rs && rs->num_experts > num_experts)
            num_experts = rs->num_experts;
    }
    TextBuf dat = {NULL, 0, 0};
    text_printf(&dat, "# %s\n# share of the top-k selections per expert, mean over seeds\n"
                "# expert", title);
    for (int c = 0; c < num_columns; c++)
        append_column_name(&dat, labels[c], "");
    text_printf(&dat, "\n");
    for (int j = 0; j < num_experts; j++) {
        text_printf(&dat, "%d", j);
        for (int c = 0; c < num_columns; c++) {
            int present = columns[c] && j < columns[c]->num_experts;
            append_value(&dat, present ? columns[c]->load_mean[j] : 0.0, present);
        }
        text_printf(&dat, "\n");
    }
    p->dat = text_finish(&dat);

    TextBuf gp = {NULL, 0, 0};
    append_gp_header(&gp, p, title, "expert", "share of top-k selections");
    text_printf(&gp, "set style data histograms\nset style histogram clustered gap 1\n"
                     "set style fill solid 0.8 border -1\nset yrange [0:*]\nplot");
    for (int c = 0; c < num_columns; c++) {
        text_printf(&gp, "%s '%s.dat' using %d%s title ", c ? ", \\\n    " : " ", p->stem,
                    2 + c, c ? "" : ":xtic(1)");
        append_gp_string(&gp, labels[c]);
    }
    text_printf(&gp, "\n");
    append_gp_footer(&gp, p);
    p->gp = text_finish(&gp);
}

/* Builds the plots of one scope. */
static void build_scope(PlotBuilder *b) {
    const PlotScope *s = b->scope;
    NoiseLevel *levels = xcalloc((size_t)s->num_tests + 1, sizeof(NoiseLevel));
    int *has_level = xcalloc((size_t)s->num_tests + 1, sizeof(int));
    const char **series = xcalloc((size_t)s->num_tests + 1, sizeof(char *));
    LevelPoint *points = xcalloc((size_t)s->num_tests + 1, sizeof(LevelPoint));
    LevelPoint *strongest = xcalloc((size_t)s->num_tests + 1, sizeof(LevelPoint));
    int num_series = collect_series(s, levels, has_level, series);
    for (int k = 0; k < num_series; k++) {
        int num_points = series_points(s, levels, has_level, series[k], points);
        const NoiseLevel *level = NULL;
        for (int i = 0; i < s->num_tests && !level; i++)
            if (has_level[i] && strcmp(levels[i].series, series[k]) == 0)
                level = &levels[i];
        build_accuracy(b, level, points, num_points);
        for (int m = 0; m < s->num_models; m++)
            build_sigma2(b, s->models[m], level, points, num_points);
        strongest[k] = points[num_points - 1];
    }
    /* NOTE: the load plot covers only the model named "euar" (Gao et al., ACM MM 2024), not its
     * ablations, to keep one bar chart per modality. */
    for (int m = 0; m < s->num_models && num_series > 0; m++) {
        const ReportGroup *g = s->models[m];
        if (strcmp(g->model, "euar") != 0)
            continue;
        for (int r = 0; r < g->num_routing; r++)
            if (g->routing[r].num_experts > 0)
                build_load(b, g, &g->routing[r], strongest, num_series);
    }
    free(levels);
    free(has_level);
    free(series);
    free(points);
    free(strongest);
}

void report_plots_build(const ReportSet *set, PlotSet *out) {
    memset(out, 0, sizeof(*out));
    PlotScope *scopes;
    int count = collect_scopes(set, &scopes);
    for (int j = 0; j < count; j++) {
        int many = 0;
        for (int i = 0; i < count; i++)
            many |= i != j && strcmp(scopes[i].suite, scopes[j].suite) == 0 &&
                    strcmp(scopes[i].dataset, scopes[j].dataset) == 0;
        PlotBuilder b = {out, &scopes[j], many};
        build_scope(&b);
    }
    for (int j = 0; j < count; j++) {
        free(scopes[j].models);
        free(scopes[j].tests);
    }
    free(scopes);
}

void report_plots_free(PlotSet *plots) {
    for (int i = 0; i < plots->count; i++) {
        Plot *p = &plots->plots[i];
        free(p->stem);
        free(p->caption);
        free(p->dat);
        free(p->gp);
    }
    free(plots->plots);
    memset(plots, 0, sizeof(*plots));
}

int report_gnuplot_find(char *path, size_t cap) {
    return find_program("gnuplot", path, cap);
}

int report_gnuplot_run(const char *gnuplot, const char *dir, const char *stem) {
    size_t len = strlen(stem) + 8;
    char *script = xmalloc(len);
    snprintf(script, len, "./%s.gp", stem);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(126);
        execl(gnuplot, "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    free(script);
    if (pid < 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static char *plot_path(const char *dir, const char *stem, const char *ext) {
    size_t len = strlen(dir) + strlen(stem) + strlen(ext) + 3;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/%s.%s", dir, stem, ext);
    return path;
}

int report_plots_write(const PlotSet *plots, const char *dir, const char *gnuplot) {
    if (plots->count == 0)
        return 0;
    if (make_dirs(dir) != 0)
        return -1;
    for (int i = 0; i < plots->count; i++) {
        const Plot *p = &plots->plots[i];
        const char *exts[] = {"dat", "gp"};
        const char *texts[] = {p->dat, p->gp};
        for (int k = 0; k < 2; k++) {
            char *path = plot_path(dir, p->stem, exts[k]);
            int rc = write_file_atomic(path, texts[k], strlen(texts[k]));
            free(path);
            if (rc != 0)
                return -1;
        }
    }
    if (!gnuplot)
        return 0;
    int failed = 0, first = -1, first_status = 0;
    for (int i = 0; i < plots->count; i++) {
        const Plot *p = &plots->plots[i];
        int status = report_gnuplot_run(gnuplot, dir, p->stem);
        if (status == 0)
            continue;
        /* No partial images: a failed script may have left a truncated PNG or SVG. */
        const char *images[] = {"png", "svg"};
        for (int k = 0; k < 2; k++) {
            char *path = plot_path(dir, p->stem, images[k]);
            unlink(path);
            free(path);
        }
        if (first < 0) {
            first = i;
            first_status = status;
        }
        failed++;
    }
    if (failed > 0)
        return err_set("%s/%s.gp: gnuplot (%s) exited with status %d, and %d of %d plot "
                       "scripts failed; run `gnuplot %s.gp` in %s to see its message", dir,
                       plots->plots[first].stem, gnuplot, first_status, failed, plots->count,
                       plots->plots[first].stem, dir);
    return 0;
}
