/* Report files of a suite folder and the index of a root folder (report/output.h). */
#define _XOPEN_SOURCE 700 /* realpath() */
#include "report/output.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "report/text.h"

/* Suites of the paper in index order: the table kind (also the folder name and the make target
 * suite-KIND) and what it reproduces. */
static const struct {
    const char *kind, *what;
} paper_suites[] = {
    {"main", "Table 1 (comparison on clean data) and Fig. 6 (t-SNE)"},
    {"missing", "Table 2 (fixed missing modalities) and Fig. 3 (box plots)"},
    {"noise", "Table 3 (test-time noise) and the noise plots"},
    {"ablation", "Table 4 (loss ablation)"},
    {"experts", "Fig. 4 (accuracy against the number of experts)"},
    {"convergence", "Fig. 5 (validation curves)"},
};

static char *path_join(const char *dir, const char *name) {
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/%s", dir, name);
    return path;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Number of *.json files of dir other than suite.json and temporary files. */
static int count_results(const char *dir) {
    DIR *d = opendir(dir);
    int count = 0;
    struct dirent *entry;
    while (d && (entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (len > 5 && strcmp(entry->d_name + len - 5, ".json") == 0 &&
            strcmp(entry->d_name, "suite.json") != 0 && !strstr(entry->d_name, ".tmp."))
            count++;
    }
    if (d)
        closedir(d);
    return count;
}

int report_dir_is_suite(const char *dir) {
    char *record = path_join(dir, "suite.json");
    int suite = is_file(record) || count_results(dir) > 0;
    free(record);
    return suite;
}

/* Writes the path of `to` relative to folder `from` into buf; both are absolute and
 * normalised, as realpath() returns them. */
static void relative_path(const char *from, const char *to, char *buf, size_t cap) {
    size_t common = 0;
    while (from[common] && from[common] == to[common])
        common++;
    /* Step back to the start of the component where the paths part. */
    int boundary = (from[common] == '\0' || from[common] == '/') &&
                   (to[common] == '\0' || to[common] == '/');
    while (!boundary && common > 0 && from[common - 1] != '/')
        common--;
    size_t len = 0;
    buf[0] = '\0';
    const char *rest = from + common;
    for (const char *p = rest; *p; p++) {
        if (*p != '/' && (p == rest || p[-1] == '/')) {
            int n = snprintf(buf + len, cap - len, "../");
            if (n < 0 || (size_t)n >= cap - len)
                return;
            len += (size_t)n;
        }
    }
    const char *target = to + common;
    if (*target == '/')
        target++;
    snprintf(buf + len, cap - len, "%s", target[0] || len ? target : ".");
}

/* Finds docs/noise.md of this checkout, beside the folder of the binary (bin/euar) or in the
 * working folder, and writes its path relative to md_dir. Leaves buf empty when not found. */
static void noise_doc_link(const char *md_dir, char *buf, size_t cap) {
    char exe[PATH_MAX], doc[PATH_MAX + 32], resolved[PATH_MAX];
    buf[0] = '\0';
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    int found = 0;
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(doc, sizeof(doc), "%s/../docs/noise.md", exe);
            found = realpath(doc, resolved) != NULL;
        }
    }
    if (!found)
        found = realpath("docs/noise.md", resolved) != NULL;
    if (found)
        relative_path(md_dir, resolved, buf, cap);
}

/* Writes tables/STEM.tex and tables/STEM.csv of each table and lists them. */
static int write_tables(const char *dir, const PaperTables *tables, TextBuf *md,
                        PaperArtifacts *artifacts) {
    if (tables->count == 0)
        return 0;
    char *tables_dir = path_join(dir, "tables");
    int rc = make_dirs(tables_dir);
    for (int i = 0; i < tables->count && rc == 0; i++) {
        const PaperTable *t = &tables->tables[i];
        char *latex = paper_table_latex(t), *csv = paper_table_csv(t);
        char name[320];
        snprintf(name, sizeof(name), "%s.tex", t->stem);
        char *tex_path = path_join(tables_dir, name);
        snprintf(name, sizeof(name), "%s.csv", t->stem);
        char *csv_path = path_join(tables_dir, name);
        rc = write_file_atomic(tex_path, latex, strlen(latex));
        if (rc == 0)
            rc = write_file_atomic(csv_path, csv, strlen(csv));
        free(tex_path);
        free(csv_path);
        free(latex);
        free(csv);
        if (rc != 0)
            break;
        text_printf(md, "- %s, ", t->label);
        append_escaped(md, t->title);
        text_printf(md, ": [LaTeX](tables/%s.tex), [CSV](tables/%s.csv)\n", t->stem, t->stem);
        if (artifacts) {
            char path[320], caption[1024];
            snprintf(path, sizeof(path), "tables/%s.tex", t->stem);
            snprintf(caption, sizeof(caption), "%s (LaTeX; CSV beside it)", t->title);
            paper_artifact_add(artifacts, t->label, caption, path, t->settings);
        }
    }
    free(tables_dir);
    return rc;
}

/* Lists the figures of a plot set in the Markdown and in artifacts. */
static void list_figures(const PlotSet *figures, int rendered, const ReportSet *set,
                         const char *skip, TextBuf *md, PaperArtifacts *artifacts) {
    for (int i = 0; i < figures->count; i++) {
        const Plot *p = &figures->plots[i];
        text_printf(md, "- ");
        if (rendered) {
            text_printf(md, "[");
            append_escaped(md, p->caption);
            text_printf(md, "](plots/%s.png) ([SVG](plots/%s.svg), ", p->stem, p->stem);
        } else {
            append_escaped(md, p->caption);
            text_printf(md, " (no image: gnuplot was not found; ");
        }
        text_printf(md, "[data](plots/%s.dat), [gnuplot script](plots/%s.gp))\n", p->stem,
                    p->stem);
        if (artifacts) {
            char path[320], label[16];
            snprintf(path, sizeof(path), "plots/%s.%s", p->stem, rendered ? "png" : "gp");
            snprintf(label, sizeof(label), "Fig. %c", p->caption[5]);
            char *settings = paper_settings_text(set, p->dataset, skip);
            paper_artifact_add(artifacts, label, p->caption, path, settings);
            free(settings);
        }
    }
}

/* Renders the paper section of a suite: tables of its kind, their files, and its figures. */
static int render_paper(const char *dir, const ReportSet *set, const RunSet *runs,
                        const char *kind, int plots_wanted, TextBuf *md,
                        PaperArtifacts *artifacts) {
    PaperTables tables;
    paper_tables_build(set, kind, &tables);
    PlotSet figures = {NULL, 0};
    if (plots_wanted)
        paper_figures_build(set, runs, kind, &figures);
    char gnuplot[PATH_MAX] = "";
    int have_gnuplot = report_gnuplot_find(gnuplot, sizeof(gnuplot));
    const char *skip = strcmp(kind, "experts") == 0 ? "experts" : NULL;
    text_printf(md, "## Paper tables and figures (suite table kind: %s)\n\n", kind);
    /* Tables 2 and 3 are the Markdown tables above; the others are shown here. */
    int show = strcmp(kind, "missing") != 0 && strcmp(kind, "noise") != 0;
    for (int i = 0; show && i < tables.count; i++) {
        char *text = paper_table_markdown(&tables.tables[i]);
        text_printf(md, "%s", text);
        free(text);
    }
    int rc = write_tables(dir, &tables, md, artifacts);
    if (rc == 0 && figures.count > 0) {
        char *plots_dir = path_join(dir, "plots");
        rc = report_plots_write(&figures, plots_dir, have_gnuplot ? gnuplot : NULL);
        free(plots_dir);
        list_figures(&figures, have_gnuplot, set, skip, md, artifacts);
    }
    if (rc == 0 && plots_wanted && runs->num_joints > 0) {
        PaperArtifacts tsne = {NULL, 0};
        rc = paper_tsne_figures(runs, dir, &tsne);
        for (int i = 0; i < tsne.count; i++) {
            text_printf(md, "- [");
            append_escaped(md, tsne.items[i].caption);
            text_printf(md, "](%s)\n", tsne.items[i].path);
            if (artifacts) {
                char *settings = paper_settings_text(set, runs->joints[0].dataset, NULL);
                paper_artifact_add(artifacts, tsne.items[i].label, tsne.items[i].caption,
                                   tsne.items[i].path, settings);
                free(settings);
            }
        }
        paper_artifacts_free(&tsne);
    }
    text_printf(md, "\n");
    report_plots_free(&figures);
    paper_tables_free(&tables);
    return rc;
}

int report_write_suite(const char *dir, const char *md_path, ReportOptions *options,
                       int plots_wanted, int print, PaperArtifacts *artifacts) {
    ReportSet set;
    if (report_load_dir(&set, dir) != 0)
        return -1;
    RunSet runs;
    if (report_runs_load(&runs, dir) != 0) {
        report_free(&set);
        return -1;
    }
    PlotSet plots = {NULL, 0};
    char gnuplot[PATH_MAX] = "";
    if (plots_wanted)
        report_plots_build(&set, &plots);
    int have_gnuplot = plots.count > 0 && report_gnuplot_find(gnuplot, sizeof(gnuplot));
    char *default_md = path_join(dir, "report.md"), *csv_path = path_join(dir, "summary.csv");
    char *plots_dir = path_join(dir, "plots");
    if (!md_path)
        md_path = default_md;

    /* Links from the Markdown to the plots and to docs/noise.md are relative to its folder. */
    char md_dir[PATH_MAX] = "", dir_abs[PATH_MAX] = "", plots_abs[PATH_MAX + 8] = "";
    char plots_link[PATH_MAX] = "plots", doc_link[PATH_MAX] = "";
    char *md_copy = xstrdup(md_path), *slash = strrchr(md_copy, '/');
    if (slash)
        *slash = '\0';
    const char *md_parent = ".";
    if (slash)
        md_parent = md_copy[0] ? md_copy : "/";
    if (realpath(md_parent, md_dir) && realpath(dir, dir_abs)) {
        snprintf(plots_abs, sizeof(plots_abs), "%s/plots", dir_abs);
        relative_path(md_dir, plots_abs, plots_link, sizeof(plots_link));
        noise_doc_link(md_dir, doc_link, sizeof(doc_link));
    }
    free(md_copy);
    options->plots = &plots;
    options->plots_link = plots_link;
    options->plots_rendered = have_gnuplot;
    options->noise_doc = doc_link[0] ? doc_link : NULL;

    TextBuf md = {NULL, 0, 0};
    char *markdown = report_render_markdown(&set, options);
    text_printf(&md, "%s", markdown);
    free(markdown);
    int rc = 0;
    if (runs.table && runs.table[0])
        rc = render_paper(dir, &set, &runs, runs.table, plots_wanted, &md, artifacts);
    if (artifacts && plots.count > 0) {
        for (int i = 0; i < plots.count; i++) {
            char path[320];
            snprintf(path, sizeof(path), "plots/%s.%s", plots.plots[i].stem,
                     have_gnuplot ? "png" : "gp");
            char *settings = paper_settings_text(&set, plots.plots[i].dataset, NULL);
            paper_artifact_add(artifacts, "noise plot", plots.plots[i].caption, path, settings);
            free(settings);
        }
    }
    markdown = text_finish(&md);
    char *csv = report_render_csv(&set);
    if (rc == 0)
        rc = write_file_atomic(md_path, markdown, strlen(markdown));
    if (rc == 0)
        rc = write_file_atomic(csv_path, csv, strlen(csv));
    if (rc == 0 && print)
        fputs(markdown, stdout);
    if (rc == 0 && plots.count > 0) {
        if (!have_gnuplot)
            LOG_WARN("gnuplot not found in PATH, so plots are skipped; the data and scripts "
                     "are in %s (install gnuplot-nox and rerun)", plots_dir);
        rc = report_plots_write(&plots, plots_dir, have_gnuplot ? gnuplot : NULL);
    }
    report_plots_free(&plots);
    report_runs_free(&runs);
    report_free(&set);
    free(default_md);
    free(csv_path);
    free(plots_dir);
    free(markdown);
    free(csv);
    return rc;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Renders one suite folder of the root and writes its part of the index. Returns 0 or -1. */
static int index_suite(TextBuf *index, const char *root, const char *name,
                       const ReportOptions *base, int plots_wanted) {
    char *dir = path_join(root, name);
    PaperArtifacts artifacts = {NULL, 0};
    ReportOptions options = *base;
    options.title = dir;
    int rc = report_write_suite(dir, NULL, &options, plots_wanted, 0, &artifacts);
    if (rc != 0) {
        err_prefix("%s", dir);
        text_printf(index, "Failed to render: ");
        append_escaped(index, err_get());
        text_printf(index, "\n\n");
    } else {
        text_printf(index, "[report.md](%s/report.md) · [summary.csv](%s/summary.csv)\n\n",
                    name, name);
        for (int i = 0; i < artifacts.count; i++) {
            const PaperArtifact *a = &artifacts.items[i];
            text_printf(index, "- %s: [", a->label);
            append_escaped(index, a->caption);
            text_printf(index, "](%s/%s)", name, a->path);
            if (a->settings[0]) {
                text_printf(index, "; settings: ");
                append_escaped(index, a->settings);
            }
            text_printf(index, "\n");
        }
        text_printf(index, "%s", artifacts.count ? "\n" : "");
    }
    paper_artifacts_free(&artifacts);
    free(dir);
    return rc;
}

int report_write_root(const char *root, const ReportOptions *options, int plots_wanted) {
    DIR *d = opendir(root);
    if (!d)
        return err_set("cannot open results folder %s; run a suite first, for example make "
                       "suite-missing", root);
    char **names = NULL;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char *path = path_join(root, entry->d_name);
        if (is_dir(path) && report_dir_is_suite(path)) {
            names = xrealloc(names, (size_t)(count + 1) * sizeof(char *));
            names[count++] = xstrdup(entry->d_name);
        }
        free(path);
    }
    closedir(d);
    if (count > 0)
        qsort(names, (size_t)count, sizeof(char *), cmp_names);
    int *done = xcalloc((size_t)EUAR_MAX(count, 1), sizeof(int));
    TextBuf index = {NULL, 0, 0};
    text_printf(&index, "# euar-bench results\n\nIndex of the tables and figures of the "
                "paper's suites under %s, written by `euar report %s` (euar-bench %s). Each "
                "entry links the file and names the settings behind it.\n\n", root, root,
                EUAR_VERSION);
    int rc = 0;
    char first_error[1024] = "";
    for (size_t s = 0; s < EUAR_ARRAY_LEN(paper_suites); s++) {
        const char *kind = paper_suites[s].kind;
        text_printf(&index, "## %s: %s\n\n", kind, paper_suites[s].what);
        int found = -1;
        for (int i = 0; i < count && found < 0; i++) {
            char *dir = path_join(root, names[i]);
            char table[64];
            int has_record = report_suite_table(dir, table, sizeof(table));
            if (strcmp(names[i], kind) == 0 && !(has_record && table[0] &&
                                                 strcmp(table, kind) != 0))
                found = i;
            free(dir);
        }
        char *dir = found >= 0 ? path_join(root, names[found]) : NULL;
        if (found < 0 || count_results(dir) == 0) {
            text_printf(&index, "Missing: no results in %s/%s yet; run `make suite-%s`.\n\n",
                        root, kind, kind);
        } else {
            done[found] = 1;
            if (index_suite(&index, root, names[found], options, plots_wanted) != 0 && rc == 0) {
                rc = -1;
                snprintf(first_error, sizeof(first_error), "%s", err_get());
            }
        }
        free(dir);
    }
    int others = 0;
    for (int i = 0; i < count; i++) {
        char *dir = path_join(root, names[i]);
        int has_results = count_results(dir) > 0;
        free(dir);
        if (done[i] || !has_results)
            continue;
        if (!others++)
            text_printf(&index, "## Other suite folders\n\n");
        text_printf(&index, "### %s\n\n", names[i]);
        if (index_suite(&index, root, names[i], options, plots_wanted) != 0 && rc == 0) {
            rc = -1;
            snprintf(first_error, sizeof(first_error), "%s", err_get());
        }
    }
    /* The error of the first suite that failed is the one reported. */
    char *text = text_finish(&index);
    char *index_path = path_join(root, "index.md");
    if (write_file_atomic(index_path, text, strlen(text)) != 0)
        rc = -1;
    else if (rc != 0)
        err_set("%s", first_error);
    if (rc == 0)
        fputs(text, stdout);
    free(index_path);
    free(text);
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
    free(done);
    return rc;
}
