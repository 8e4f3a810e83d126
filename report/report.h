/* `euar report`: aggregates a folder of result files over seeds and renders the paper-style
 * tables as Markdown and the statistics as CSV. There is one table per suite and dataset, with
 * conditions as rows and models as columns, or for test-time noise the other way round. Loading and statistics live in report/aggregate.h. */
#ifndef EUAR_REPORT_H
#define EUAR_REPORT_H

#include "report/aggregate.h"
#include "report/plots.h"

typedef struct {
    const char *title;    /* first heading of the Markdown, for example the folder */
    const char **metrics; /* metrics shown in each cell; NULL for the defaults below */
    int num_metrics;
    /* Plots linked under the noise tables (NULL: none), the path of their folder relative to
     * the Markdown file (NULL: "plots"), and whether their PNG and SVG files exist. */
    const PlotSet *plots;
    const char *plots_link;
    int plots_rendered;
    const char *noise_doc; /* link to docs/noise.md from the Markdown; NULL: "docs/noise.md" */
} ReportOptions;

/* Returns 1 when name is a metric of result files (docs/results.md), else 0. */
int report_is_metric(const char *name);

/* Renders the Markdown report. A (suite, dataset) whose results carry test-time conditions
 * gets a noise table (EUAR Table 3) instead. Its rows are models and its columns the test split
 * as trained ("clean") and then each test-time condition. Its cells show the accuracy
 * (classification acc, regression Acc2 of the protocol), and the lines below give the
 * canonical noise spec of each condition and links to the plots. Cells show mean±std over the finished seeds, in % for
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
