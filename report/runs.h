/* Per-seed view of a results folder for the paper's figures: the accuracy of each seed (box
 * plots), the validation curve of each seed (convergence plots), the suite's table kind and the
 * joint-representation files of its cells (t-SNE plots). report/aggregate.h keeps only the
 * statistics over seeds, which these figures cannot be drawn from. */
#ifndef EUAR_REPORT_RUNS_H
#define EUAR_REPORT_RUNS_H

/* One finished or failed result file. */
typedef struct {
    char *dataset, *condition, *model, *hash;
    int condition_index, model_index; /* -1 when absent */
    double seed;
    int ok;                /* status "ok" */
    int has_accuracy;      /* the accuracy metric is a number */
    double accuracy;       /* test split as trained: acc (classification), else the Acc2 of
                            * the cell's protocol (mib_acc2, or mmsa_non0_acc2 for mmsa) */
    char *accuracy_metric; /* name of that metric */
    int num_epochs;        /* entries of `curve` */
    double *epoch;         /* [num_epochs] */
    double *valid_metric;  /* [num_epochs] NaN where the epoch was not evaluated */
    double *valid_loss;    /* [num_epochs] NaN where the epoch was not evaluated */
} SeedRun;

/* A joint-representation file of a cell (report/joint_file.h), for the t-SNE plots. */
typedef struct {
    char *dataset, *condition, *model;
    double seed;
    char *path; /* DIR/<name> */
} JointEntry;

typedef struct {
    char *table; /* suite.json "table" (missing, noise, experts, ablation, convergence, main),
                  * NULL without suite.json or without the field */
    SeedRun *runs;
    int num_runs;
    JointEntry *joints;
    int num_joints;
} RunSet;

/* Reads the result files of dir the way report_load_dir() does (name order, temporary files
 * skipped, only cells of DIR/suite.json when it exists) and keeps each seed's accuracy and
 * curve. Joint files are the cells' "joint" names in suite.json, or else DIR/<hash>.joint.h5
 * where that file exists. Returns 0, or -1 with err_set() naming the file and field of a
 * malformed curve; files that report_load_dir() accepts otherwise load here too. */
int report_runs_load(RunSet *out, const char *dir);

/* Frees a run set and empties it. */
void report_runs_free(RunSet *set);

/* Reads only the "table" field of DIR/suite.json into buf (empty when there is none).
 * Returns 1 when DIR holds suite.json, else 0. */
int report_suite_table(const char *dir, char *buf, int cap);

#endif
