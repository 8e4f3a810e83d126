/* `euar report`: aggregates a folder of result files over seeds and renders the paper-style
 * tables as Markdown (one table per suite and dataset: rows are conditions, columns models)
 * and the statistics as CSV. Loading and statistics live in report/aggregate.h. */
#ifndef EUAR_REPORT_H
#define EUAR_REPORT_H

#include "report/aggregate.h"

typedef struct {
    const char *title;    /* first heading of the Markdown, for example the folder */
    const char **metrics; /* metrics shown in each cell; NULL for the defaults below */
    int num_metrics;
} ReportOptions;

/* Returns 1 when name is a metric of result files (docs/results.md), else 0. */
int report_is_metric(const char *name);

/* Renders the Markdown report. Cells show mean±std over the finished seeds, in % for
 * fractions and with three decimals for loss, MAE and correlation. Default cell metrics:
 * regression Acc2 / F1 / Acc7 of the cell's protocol (mib: mib_acc2, mib_f1; mmsa:
 * mmsa_non0_acc2, mmsa_non0_f1; then acc7), classification acc / macro_f1. A missing
 * combination shows "—", a cell whose seeds all failed "failed" with the reason in a
 * footnote, and a cell selected on test Acc2 the marker "†". Returns a malloc'd string. */
char *report_render_markdown(const ReportSet *set, const ReportOptions *options);

/* Renders one CSV row per group and metric: suite,dataset,condition,model,metric,mean,std,n
 * (metric values as stored, fractions not percent), after a header row. Groups whose seeds
 * all failed have no rows. Returns a malloc'd string. */
char *report_render_csv(const ReportSet *set);

#endif
