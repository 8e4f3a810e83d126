/* `euar check`: a regression gate that compares the aggregated test metrics of a results folder
 * with a stored baseline file (format in docs/check.md). Loading and statistics come from
 * report/aggregate.h. */
#ifndef EUAR_REPORT_CHECK_H
#define EUAR_REPORT_CHECK_H

#include "report/aggregate.h"

#define EUAR_BASELINE_FORMAT "euar-bench-baseline"
#define EUAR_BASELINE_VERSION 1

/* Exit codes of `euar check`: pass, a regression or missing entry, bad input. */
enum { EUAR_CHECK_PASS = 0, EUAR_CHECK_FAIL = 1, EUAR_CHECK_ERROR = 2 };

/* Maximum number of --tolerance entries, enough for each metric of docs/results.md. */
#define EUAR_CHECK_MAX_TOLERANCES 32

/* Absolute tolerances given by the user. An entry for a metric overrides the default value,
 * which overrides the tolerances stored in the baseline, which override the built-in defaults
 * of check_default_tolerance(). */
typedef struct {
    struct {
        char metric[32];
        double value;
    } items[EUAR_CHECK_MAX_TOLERANCES];
    int count;
    int has_default;
    double default_value;
} CheckTolerances;

/* One metric of a baseline group: the mean over seeds that is compared, and the standard
 * deviation and seed count for information. */
typedef struct {
    char *name;
    double mean, std;
    int n;
} BaselineMetric;

typedef struct {
    char *suite; /* "" when the results carry no cell.suite */
    char *dataset;
    char *condition;
    char *model;
    BaselineMetric *metrics;
    int num_metrics;
} BaselineGroup;

/* A baseline file loaded by check_baseline_load(). */
typedef struct {
    char *path;
    char *version; /* build.version of the euar that wrote it */
    char *created; /* UTC date and time of writing, ISO 8601 */
    /* Stored tolerances per metric, from the file's "tolerances" object. */
    char **tolerance_metrics;
    double *tolerance_values;
    int num_tolerances;
    BaselineGroup *groups;
    int num_groups;
} CheckBaseline;

typedef enum {
    EUAR_ROW_OK,       /* within tolerance */
    EUAR_ROW_IMPROVED, /* better by more than the tolerance: passes */
    EUAR_ROW_REGRESSED, /* worse by more than the tolerance: fails */
    EUAR_ROW_MISSING,  /* baseline group or metric absent from the results: fails */
    EUAR_ROW_FAILED,   /* a seed of the group failed (diverged): fails */
    EUAR_ROW_NEW,      /* group in the results but not in the baseline: passes */
} CheckRowStatus;

/* One line of the comparison table. Group rows (failed, new) have metric NULL. */
typedef struct {
    const char *suite, *dataset, *condition, *model; /* point into the baseline or results */
    const char *metric;
    double baseline, fresh, delta, tolerance; /* delta = fresh - baseline */
    int has_baseline, has_fresh;
    CheckRowStatus status;
    char *detail; /* reason of a failed or missing row, NULL otherwise */
} CheckRow;

typedef struct {
    CheckRow *rows;
    int num_rows;
    int counts[EUAR_ROW_NEW + 1]; /* rows per status */
} CheckReport;

/* Returns +1 for a metric where higher is better (accuracies, F1 scores, correlations), -1
 * where lower is better (loss, MAE), and 0 for a name that is not a metric of result files. */
int check_metric_direction(const char *metric);

/* Returns the built-in absolute tolerance of a metric (docs/check.md explains the values), or
 * -1 for an unknown metric. */
double check_default_tolerance(const char *metric);

/* Adds one "METRIC=ABS" entry to tol, replacing an earlier entry for the same metric. Returns
 * 0, or -1 with err_set() naming the text when the metric is unknown or ABS is not a finite
 * non-negative number. */
int check_tolerance_parse(CheckTolerances *tol, const char *text);

/* Parses the value of --default-tolerance into tol. Returns 0 or -1 with err_set(). */
int check_default_tolerance_parse(CheckTolerances *tol, const char *text);

/* Renders the baseline JSON of a results set: per group the mean, std and n of each metric in
 * `metrics` (NULL: every test metric the group has), the tolerance of each metric used
 * (user entries in tol, else the built-in default), the build version and `created`.
 * Returns a malloc'd string, or NULL with err_set() when a group has failed seeds, a requested
 * metric is unknown or present in no group, or the set has no finished group. */
char *check_baseline_render(const ReportSet *set, const char *const *metrics, int num_metrics,
                            const CheckTolerances *tol, const char *created);

/* Writes the baseline of a results folder to path atomically, with the current UTC time as
 * its creation date. Returns 0 or -1 with err_set(). */
int check_baseline_write(const char *path, const char *results_dir, const char *const *metrics,
                         int num_metrics, const CheckTolerances *tol);

/* Reads and validates a baseline file. Returns 0, or -1 with err_set() naming the file, the
 * field and the value on unreadable or invalid JSON, another format, a newer format_version,
 * an unknown metric or a non-numeric value. On error *out is left empty. */
int check_baseline_load(CheckBaseline *out, const char *path);

/* Frees what check_baseline_load() allocated. */
void check_baseline_free(CheckBaseline *baseline);

/* Compares a results set with a baseline, one row per baseline group and metric, in baseline
 * order, then one row per new group. The rows point into baseline and fresh, so free the
 * report before them. A metric regresses when it is worse than the baseline
 * mean by more than its tolerance (plus 1e-9 for the rounding of the difference). */
void check_compare(CheckReport *out, const CheckBaseline *baseline, const ReportSet *fresh,
                   const CheckTolerances *tol);

/* Returns EUAR_CHECK_FAIL when a row regressed, is missing or failed, else EUAR_CHECK_PASS. */
int check_report_status(const CheckReport *report);

/* Renders the comparison as an aligned text table (group, metric, baseline, fresh, delta,
 * tolerance, status) and a summary line. With only_changes set, rows with status ok are left
 * out of the table but still counted. Returns a malloc'd string. */
char *check_report_render(const CheckReport *report, int only_changes);

void check_report_free(CheckReport *report);

/* Loads the results folder and the baseline, compares them and, when table_out is not NULL,
 * stores the rendered table there (malloc'd). Returns EUAR_CHECK_PASS, EUAR_CHECK_FAIL, or
 * EUAR_CHECK_ERROR with err_set() on bad input. */
int check_run(const char *results_dir, const char *baseline_path, const CheckTolerances *tol,
              int only_changes, char **table_out);

#endif
