/* Loading a folder of result files (docs/results.md) and aggregating its cells over seeds. */
#ifndef EUAR_REPORT_AGGREGATE_H
#define EUAR_REPORT_AGGREGATE_H

/* Settings named in the line under each table, in this order. protocol comes last, since
 * classification tables leave it out. */
#define EUAR_REPORT_NUM_SETTINGS 8
extern const char *const report_setting_keys[EUAR_REPORT_NUM_SETTINGS];

/* One test-split metric of a group: mean and sample standard deviation (divisor n - 1, and 0
 * when n is 1) over the seeds that finished and report the metric. */
typedef struct {
    char *name;
    double mean, std;
    int n;
} MetricStat;

/* The seeds of one (suite, dataset, condition, model) combination. */
typedef struct {
    char *suite; /* "" when the results carry no cell.suite */
    char *dataset;
    char *condition;
    char *model;
    int condition_index; /* cell.condition_index, -1 when absent */
    int model_index;     /* cell.model_index, -1 when absent */
    char *task;          /* "regression" or "classification" */
    char *protocol;      /* cell.settings.protocol, "mib" when absent */
    int n_ok;            /* seeds with status ok */
    int n_failed;        /* seeds with status failed */
    char *failure;       /* "<reason> (epoch E)" of the first failed seed, NULL if none */
    int selected_on_test; /* 1 when any seed was selected with select=test-acc2 */
    /* Value of each report_setting_keys entry. Seeds that disagree give the distinct values
     * joined by "|", and "?" marks a setting the results lack. */
    char *settings[EUAR_REPORT_NUM_SETTINGS];
    MetricStat *metrics; /* test-split metrics in the order of the first result read */
    int num_metrics;
} ReportGroup;

typedef struct {
    ReportGroup *groups;
    int num_groups;
    int num_files; /* result files read, temporary files excluded */
} ReportSet;

/* Reads every *.json result in dir (skipping temporary files, whose names contain ".tmp.")
 * in name order and groups them. Failed seeds count in n_failed but never in the metric
 * statistics, since their metrics come from an epoch before the failure.
 * Returns 0, or -1 with err_set() naming the file and field on a malformed or newer-version
 * file, and when dir contains no results. On error *out is left empty. */
int report_load_dir(ReportSet *out, const char *dir);

/* Frees everything report_load_dir() allocated and empties the set. */
void report_free(ReportSet *set);

/* Returns the group with these keys, or NULL. */
const ReportGroup *report_find(const ReportSet *set, const char *suite, const char *dataset,
                               const char *condition, const char *model);

/* Returns the statistics of one metric of a group, or NULL when no finished seed has it. */
const MetricStat *report_group_metric(const ReportGroup *group, const char *name);

#endif
