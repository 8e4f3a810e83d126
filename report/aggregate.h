/* Loading a folder of result files (docs/results.md) and aggregating its cells over seeds. */
#ifndef EUAR_REPORT_AGGREGATE_H
#define EUAR_REPORT_AGGREGATE_H

/* Settings named in the line under each table, in this order. protocol comes last, since
 * classification tables leave it out. */
#define EUAR_REPORT_NUM_SETTINGS 8
extern const char *const report_setting_keys[EUAR_REPORT_NUM_SETTINGS];
/* Room for every setting of core/settings.h in ReportGroup.settings. */
#define EUAR_REPORT_MAX_SETTINGS 64

/* Number of settings a group records: the EUAR_REPORT_NUM_SETTINGS of report_setting_keys
 * first, then every other setting of core/settings.h except seed, in its table order. The
 * line under a table names the others only where they differ from their default. */
int report_settings_count(void);

/* Key of recorded setting k, 0 <= k < report_settings_count(). */
const char *report_setting_key(int k);

/* Default value text of recorded setting k, as settings_value() writes it. */
const char *report_setting_default(int k);

/* One test-split metric of a group: mean and sample standard deviation (divisor n - 1, and 0
 * when n is 1) over the seeds that finished and report the metric. */
typedef struct {
    char *name;
    double mean, std;
    int n;
} MetricStat;

/* Routing of one modality (docs/results.md, routing.<modality>) over the finished seeds of a
 * group. The mean expert sigma^2 of one seed is the load-weighted mean of sigma2 over the
 * experts whose sigma2 is not null, sum_j load_j sigma2_j / sum_j load_j. Since sigma2_j is
 * the mean over the test samples that selected expert j and load_j is proportional to their
 * number, this is the mean sigma^2 over every (sample, selected expert) pair. */
typedef struct {
    char *modality;
    /* Mean, sample standard deviation and n over the seeds with at least one non-null
     * sigma2; n is 0 for experts without a variance (MLP experts). */
    double sigma2_mean, sigma2_std;
    int sigma2_n;
    int num_experts;   /* length of the longest load array among the seeds */
    double *load_mean; /* [num_experts] mean of load[j] over the seeds that have it */
} RoutingStat;

/* The test split of a group's seeds evaluated under one test-time condition (an entry of the
 * result's `conditions` array), aggregated over the finished seeds that carry it. */
typedef struct {
    char *label;
    char *noise; /* canonical noise spec of the first seed that carries the label */
    int n;       /* finished seeds that carry the label */
    MetricStat *metrics;
    int num_metrics;
    RoutingStat *routing; /* modalities in the order of the first seed */
    int num_routing;
} TestStat;

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
    char *failure_short; /* "failed (<kind>, epoch E)" of the first failed seed, the reason in
                          * place of the kind for files without failure.kind; NULL if none */
    int selected_on_test; /* 1 when any seed was selected with select=test-acc2 */
    /* Value of each report_setting_key(k), k < report_settings_count(). Seeds that disagree
     * give the distinct values joined by "|", and "?" marks a setting the results lack. */
    char *settings[EUAR_REPORT_MAX_SETTINGS];
    int n_expected;      /* cells of DIR/suite.json in this group, 0 without suite.json */
    MetricStat *metrics; /* test-split metrics in the order of the first result read */
    int num_metrics;
    RoutingStat *routing; /* routing over the test split as trained */
    int num_routing;
    TestStat *tests; /* test-time conditions in order of first appearance */
    int num_tests;
} ReportGroup;

typedef struct {
    ReportGroup *groups;
    int num_groups;
    int num_files; /* result files read, temporary files excluded */
    /* From DIR/suite.json, the runner's record of the suite; all 0 or NULL without one. */
    int has_record;
    char *record_suite;  /* the suite's name */
    char *record_source; /* the suite file it was run from */
    char **record_datasets; /* dataset labels in the suite's order */
    int num_record_datasets;
    int quick;           /* 1 when the suite ran with --quick */
    int num_cells;       /* cells the record lists */
    int num_missing;     /* of those, cells without a result file */
    int num_left_out;    /* result files whose hash matches no cell of the record */
} ReportSet;

/* Reads every *.json result in dir (skipping temporary files, whose names contain ".tmp.")
 * in name order and groups them. A result without a `conditions` array has no test-time
 * conditions. Failed seeds count in n_failed but never in the metric
 * statistics, since their metrics come from an epoch before the failure.
 * When dir holds suite.json, the runner's record of the suite, only results whose hash is a
 * cell of that record count, so results of earlier settings of the suite are left out
 * (num_left_out, with a warning on stderr). Every cell of the record then has a group: a
 * group without results has n_ok and n_failed 0, the settings of its dataset from the record,
 * and for a grouped cell its test-time conditions with n 0.
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

/* Returns the name of the accuracy metric of a group: "acc" for classification, the Acc2 of
 * the protocol for regression ("mib_acc2", or "mmsa_non0_acc2" for protocol mmsa). */
const char *report_accuracy_metric(const ReportGroup *group);

/* Returns the position of `dataset` in the suite's order (DIR/suite.json), or the number of
 * the suite's datasets when it is not listed or there is no record, so that tables follow
 * the suite file and fall back to name order. */
int report_dataset_rank(const ReportSet *set, const char *dataset);

/* Returns the test-time condition `label` of a group, or NULL. */
const TestStat *report_group_test(const ReportGroup *group, const char *label);

/* Returns the statistics of metric `name` in an array of MetricStat, or NULL. */
const MetricStat *report_metric_find(const MetricStat *metrics, int count, const char *name);

/* Returns the routing of `modality` in an array of RoutingStat, or NULL. */
const RoutingStat *report_routing_find(const RoutingStat *routing, int count,
                                       const char *modality);

#endif
