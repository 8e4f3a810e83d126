/* euar report: aggregates a results folder over seeds into Markdown tables, a CSV and, for
 * test-time noise results, gnuplot plots. */
#define _XOPEN_SOURCE 700 /* realpath() */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/common.h"
#include "report/report.h"

static void report_usage(FILE *f) {
    fprintf(f, "usage: euar report DIR [--out FILE.md] [--metric NAME[,NAME...]]\n"
               "                   [--no-plots]\n\n"
               "Reads every result file DIR/*.json, aggregates the seeds of each condition and\n"
               "model (mean, sample standard deviation, n), prints one Markdown table per suite\n"
               "and dataset, and writes it to DIR/report.md and the statistics to\n"
               "DIR/summary.csv. When DIR holds suite.json (written by euar suite), only\n"
               "the results of its cells count, and cells without a result show —.\n"
               "Results with test-time noise conditions get a noise table\n"
               "(rows methods, columns clean and each condition) and plots in DIR/plots: .dat\n"
               "data, .gp gnuplot scripts, and PNG and SVG images when gnuplot is in PATH.\n\n"
               "options:\n"
               "  --out FILE.md        write the Markdown to FILE.md instead of DIR/report.md\n"
               "  --no-plots           write no plots\n"
               "  --metric NAME,...    metrics shown in each cell, in order (repeatable), for\n"
               "                       example mmsa_has0_acc2,mmsa_has0_f1,acc7; default\n"
               "                       Acc2/F1/Acc7 of each cell's protocol (regression) or\n"
               "                       acc/macro_f1 (classification)\n"
               "  -h, --help           print this help\n");
}

/* Adds the comma-separated metric names of list to names. Returns 0 or -1 with err_set(). */
static int add_metrics(const char *list, const char **names, int *count, char **storage) {
    char *copy = xstrdup(list);
    *storage = copy;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (!report_is_metric(tok))
            return err_set("--metric: unknown metric '%s'; valid metrics are loss, mib_acc2, "
                           "mib_f1, mib_mae, mib_corr, mmsa_has0_acc2, mmsa_has0_f1, "
                           "mmsa_non0_acc2, mmsa_non0_f1, mmsa_mae, mmsa_corr, acc7, acc5, "
                           "acc, macro_f1, weighted_f1", tok);
        if (*count >= 8)
            return err_set("--metric: at most 8 metrics fit in a cell");
        names[(*count)++] = tok;
    }
    return 0;
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

/* Writes the report files, the plots, and prints the Markdown. Returns 0 or -1 with
 * err_set(). */
static int write_report(const char *dir, const char *out_path, ReportOptions *options,
                        int plots_wanted) {
    ReportSet set;
    if (report_load_dir(&set, dir) != 0)
        return -1;
    PlotSet plots = {NULL, 0};
    char gnuplot[PATH_MAX] = "";
    if (plots_wanted)
        report_plots_build(&set, &plots);
    int have_gnuplot = plots.count > 0 && report_gnuplot_find(gnuplot, sizeof(gnuplot));

    size_t len = strlen(dir) + 32;
    char *default_md = xmalloc(len), *csv_path = xmalloc(len), *plots_dir = xmalloc(len);
    snprintf(default_md, len, "%s/report.md", dir);
    snprintf(csv_path, len, "%s/summary.csv", dir);
    snprintf(plots_dir, len, "%s/plots", dir);
    const char *md_path = out_path ? out_path : default_md;

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

    char *markdown = report_render_markdown(&set, options);
    char *csv = report_render_csv(&set);
    int rc = write_file_atomic(md_path, markdown, strlen(markdown));
    if (rc == 0)
        rc = write_file_atomic(csv_path, csv, strlen(csv));
    if (rc == 0)
        fputs(markdown, stdout);
    if (rc == 0 && plots.count > 0) {
        if (!have_gnuplot)
            LOG_WARN("gnuplot not found in PATH, so plots are skipped; the data and scripts "
                     "are in %s (install gnuplot-nox and rerun)", plots_dir);
        rc = report_plots_write(&plots, plots_dir, have_gnuplot ? gnuplot : NULL);
    }
    report_plots_free(&plots);
    report_free(&set);
    free(default_md);
    free(csv_path);
    free(plots_dir);
    free(markdown);
    free(csv);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *dir = NULL, *out_path = NULL;
    const char *metrics[8];
    char *storage[16];
    int num_metrics = 0, num_storage = 0, rc = 0, plots_wanted = 1;
    for (int i = 1; i < argc && rc == 0; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            report_usage(stdout);
            for (int j = 0; j < num_storage; j++)
                free(storage[j]);
            return 0;
        } else if (strcmp(argv[i], "--no-plots") == 0) {
            plots_wanted = 0;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_path = argv[++i];
        } else if (strcmp(argv[i], "--metric") == 0 && i + 1 < argc) {
            if (num_storage == (int)EUAR_ARRAY_LEN(storage))
                rc = err_set("--metric: given too often; list the metrics comma-separated");
            else
                rc = add_metrics(argv[++i], metrics, &num_metrics, &storage[num_storage++]);
        } else if (argv[i][0] == '-') {
            rc = err_set("unknown or incomplete option '%s'; run 'euar report --help'", argv[i]);
        } else if (!dir) {
            dir = argv[i];
        } else {
            rc = err_set("unexpected argument '%s': give one results folder", argv[i]);
        }
    }
    if (rc == 0 && !dir) {
        fprintf(stderr, "euar: error: missing results folder DIR\n\n");
        report_usage(stderr);
        return 1;
    }
    if (rc == 0) {
        ReportOptions options = {.title = dir,
                                 .metrics = num_metrics ? metrics : NULL,
                                 .num_metrics = num_metrics};
        rc = write_report(dir, out_path, &options, plots_wanted);
    }
    for (int j = 0; j < num_storage; j++)
        free(storage[j]);
    if (rc != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    return 0;
}
