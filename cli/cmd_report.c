/* euar report: aggregates a results folder over seeds into Markdown tables and a CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"
#include "report/report.h"

static void report_usage(FILE *f) {
    fprintf(f, "usage: euar report DIR [--out FILE.md] [--metric NAME[,NAME...]]\n\n"
               "Reads every result file DIR/*.json, aggregates the seeds of each condition and\n"
               "model (mean, sample standard deviation, n), prints one Markdown table per suite\n"
               "and dataset, and writes it to DIR/report.md and the statistics to\n"
               "DIR/summary.csv.\n\n"
               "options:\n"
               "  --out FILE.md        write the Markdown to FILE.md instead of DIR/report.md\n"
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

/* Writes the report files and prints the Markdown. Returns 0 or -1 with err_set(). */
static int write_report(const char *dir, const char *out_path, const ReportOptions *options) {
    ReportSet set;
    if (report_load_dir(&set, dir) != 0)
        return -1;
    char *markdown = report_render_markdown(&set, options);
    char *csv = report_render_csv(&set);
    report_free(&set);

    size_t len = strlen(dir) + 32;
    char *default_md = xmalloc(len), *csv_path = xmalloc(len);
    snprintf(default_md, len, "%s/report.md", dir);
    snprintf(csv_path, len, "%s/summary.csv", dir);
    int rc = write_file_atomic(out_path ? out_path : default_md, markdown, strlen(markdown));
    if (rc == 0)
        rc = write_file_atomic(csv_path, csv, strlen(csv));
    if (rc == 0)
        fputs(markdown, stdout);
    free(default_md);
    free(csv_path);
    free(markdown);
    free(csv);
    return rc;
}

int cmd_report(int argc, char **argv) {
    const char *dir = NULL, *out_path = NULL;
    const char *metrics[8];
    char *storage[16];
    int num_metrics = 0, num_storage = 0, rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            report_usage(stdout);
            for (int j = 0; j < num_storage; j++)
                free(storage[j]);
            return 0;
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
    if (rc == 0 && !dir)
        rc = err_set("missing results folder; usage: euar report DIR [--out FILE.md]");
    if (rc == 0) {
        ReportOptions options = {dir, num_metrics ? metrics : NULL, num_metrics};
        rc = write_report(dir, out_path, &options);
    }
    for (int j = 0; j < num_storage; j++)
        free(storage[j]);
    if (rc != 0) {
        fprintf(stderr, "euar report: error: %s\n", err_get());
        return 1;
    }
    return 0;
}
