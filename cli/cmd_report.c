/* euar report: aggregates a results folder over seeds into Markdown tables, a CSV, the
 * paper's tables in LaTeX and its figures with gnuplot; or renders every suite folder of a
 * root folder and indexes them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"
#include "report/output.h"
#include "report/report.h"

static void report_usage(FILE *f) {
    fprintf(f, "usage: euar report DIR [--out FILE.md] [--metric NAME[,NAME...]]\n"
               "                   [--no-plots]\n"
               "       euar report ROOT [--metric NAME[,NAME...]] [--no-plots]\n\n"
               "Reads every result file DIR/*.json, aggregates the seeds of each condition and\n"
               "model (mean, sample standard deviation, n), prints one Markdown table per suite\n"
               "and dataset, and writes it to DIR/report.md and the statistics to\n"
               "DIR/summary.csv. When DIR holds suite.json (written by euar suite), only\n"
               "the results of its cells count, and cells without a result show —.\n"
               "Results with test-time noise conditions get a noise table\n"
               "(rows methods, columns clean and each condition) and plots in DIR/plots: .dat\n"
               "data, .gp gnuplot scripts, and PNG and SVG images when gnuplot is in PATH.\n"
               "The \"table\" field of suite.json selects the paper's tables and figures:\n"
               "main (Table 1, Fig. 6 t-SNE of the joint files), missing (Table 2, Fig. 3 box\n"
               "plots), noise (Table 3), ablation (Table 4), experts (Fig. 4), convergence\n"
               "(Fig. 5); their LaTeX and CSV go to DIR/tables, their images to DIR/plots.\n"
               "A folder without suite.json and result files is a ROOT: each suite folder\n"
               "in it is rendered, and ROOT/index.md links every table and figure and lists\n"
               "the suites that have no results yet.\n\n"
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
        if (report_dir_is_suite(dir))
            rc = report_write_suite(dir, out_path, &options, plots_wanted, 1, NULL);
        else if (out_path)
            rc = err_set("--out: %s holds no suite.json and no result file, so it is read as "
                         "a root of suite folders, which writes %s/index.md; leave out --out",
                         dir, dir);
        else
            rc = report_write_root(dir, &options, plots_wanted);
    }
    for (int j = 0; j < num_storage; j++)
        free(storage[j]);
    if (rc != 0) {
        fprintf(stderr, "euar: error: %s\n", err_get());
        return 1;
    }
    return 0;
}
