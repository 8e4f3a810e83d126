/* euar check: compares a results folder with a stored baseline and fails on a regression, or
 * writes that baseline (docs/check.md). Exit status 0 pass, 1 regression or missing entry,
 * 2 bad input or usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/common.h"
#include "report/check.h"

/* Maximum number of names in --metrics, enough for each metric of docs/results.md. */
#define CHECK_MAX_METRICS 32

static void check_usage(FILE *f) {
    fprintf(f, "usage: euar check RESULTS --baseline FILE [--tolerance METRIC=ABS]...\n"
               "                  [--default-tolerance ABS] [--changes-only]\n"
               "       euar check RESULTS --write-baseline FILE [--metrics M1,M2,...]\n"
               "                  [--tolerance METRIC=ABS]... [--default-tolerance ABS]\n\n"
               "Aggregates the result files RESULTS/*.json over seeds and compares the test\n"
               "mean of each (suite, dataset, condition, model) and metric with the baseline.\n"
               "A metric that got worse by more than its tolerance is a regression; loss and\n"
               "MAE are better when lower, every other metric when higher. Prints a table of\n"
               "the differences. Exit status: 0 pass, 1 a regression, a baseline group or\n"
               "metric missing from the results, or a failed seed; 2 bad input.\n\n"
               "options:\n"
               "  --baseline FILE          baseline to compare with\n"
               "  --write-baseline FILE    write the baseline of RESULTS to FILE instead\n"
               "  --metrics M1,M2,...      metrics stored by --write-baseline (default: every\n"
               "                           test metric of each group)\n"
               "  --tolerance METRIC=ABS   absolute tolerance of one metric, in its own unit\n"
               "                           (fractions for accuracies); repeatable\n"
               "  --default-tolerance ABS  absolute tolerance of every other metric\n"
               "                           (default: the baseline's, else 0.02)\n"
               "  --changes-only           print only the rows whose status is not ok\n"
               "  -h, --help               print this help\n");
}

/* Splits a comma-separated list into metrics, which has room for CHECK_MAX_METRICS names
 * pointing into the modified copy *storage. */
static int split_metrics(const char *list, const char **metrics, int *count, char **storage) {
    free(*storage);
    *storage = xstrdup(list);
    *count = 0;
    for (char *save = NULL, *tok = strtok_r(*storage, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*count == CHECK_MAX_METRICS)
            return err_set("--metrics: more than %d metrics in '%s'", CHECK_MAX_METRICS, list);
        metrics[(*count)++] = tok;
    }
    if (*count == 0)
        return err_set("--metrics: no metric in '%s'; give names such as mib_acc2,acc7", list);
    return 0;
}

int cmd_check(int argc, char **argv) {
    const char *results = NULL, *baseline = NULL, *write_path = NULL;
    const char *metrics[CHECK_MAX_METRICS];
    char *metrics_storage = NULL;
    int num_metrics = 0, only_changes = 0, rc = 0;
    CheckTolerances tol;
    memset(&tol, 0, sizeof(tol));
    for (int i = 1; i < argc && rc == 0; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            check_usage(stdout);
            free(metrics_storage);
            return EUAR_CHECK_PASS;
        } else if (strcmp(argv[i], "--changes-only") == 0) {
            only_changes = 1;
        } else if (strcmp(argv[i], "--baseline") == 0 && i + 1 < argc) {
            baseline = argv[++i];
        } else if (strcmp(argv[i], "--write-baseline") == 0 && i + 1 < argc) {
            write_path = argv[++i];
        } else if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc) {
            rc = split_metrics(argv[++i], metrics, &num_metrics, &metrics_storage);
        } else if (strcmp(argv[i], "--tolerance") == 0 && i + 1 < argc) {
            rc = check_tolerance_parse(&tol, argv[++i]);
        } else if (strcmp(argv[i], "--default-tolerance") == 0 && i + 1 < argc) {
            rc = check_default_tolerance_parse(&tol, argv[++i]);
        } else if (argv[i][0] == '-') {
            rc = err_set("unknown or incomplete option '%s'; run 'euar check --help'", argv[i]);
        } else if (!results) {
            results = argv[i];
        } else {
            rc = err_set("unexpected argument '%s': give one results folder", argv[i]);
        }
    }
    if (rc == 0 && !results)
        rc = err_set("missing results folder; usage: euar check RESULTS --baseline FILE");
    if (rc == 0 && !baseline == !write_path)
        rc = err_set("give exactly one of --baseline FILE (compare) and --write-baseline FILE "
                     "(store); run 'euar check --help'");
    if (rc == 0 && baseline && num_metrics > 0)
        rc = err_set("--metrics applies to --write-baseline only; the baseline file decides "
                     "which metrics are compared");

    int status = EUAR_CHECK_ERROR;
    if (rc == 0 && write_path) {
        rc = check_baseline_write(write_path, results, num_metrics ? metrics : NULL,
                                  num_metrics, &tol);
        if (rc == 0) {
            fprintf(stderr, "euar check: baseline of %s written to %s\n", results, write_path);
            status = EUAR_CHECK_PASS;
        }
    } else if (rc == 0) {
        char *table = NULL;
        status = check_run(results, baseline, &tol, only_changes, &table);
        if (table)
            fputs(table, stdout);
        free(table);
        rc = status == EUAR_CHECK_ERROR ? -1 : 0;
    }
    free(metrics_storage);
    if (rc != 0) {
        fprintf(stderr, "euar check: error: %s\n", err_get());
        return EUAR_CHECK_ERROR;
    }
    return status;
}
