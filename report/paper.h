/* The paper's tables and figures from one results folder, chosen by the suite's table kind
 * (suite.json "table"): Table 1 (main), Table 2 (missing), Table 3 (noise), Table 4
 * (ablation), Fig. 3 (box plots of the missing subsets), Fig. 4 (accuracy against the number of
 * experts), Fig. 5 (validation curves) and Fig. 6 (t-SNE of joint representations). Tables are
 * rendered as Markdown, LaTeX (booktabs) and CSV; figures are gnuplot .dat/.gp files drawn to
 * PNG and SVG. */
#ifndef EUAR_REPORT_PAPER_H
#define EUAR_REPORT_PAPER_H

#include "report/aggregate.h"
#include "report/plots.h"
#include "report/runs.h"

#define EUAR_PAPER_MAX_METRICS 4

/* t-SNE settings of Fig. 6: perplexity 30 (lowered to (n - 1) / 3 for small sets, which
 * tsne_embed() requires), 1000 iterations and this seed, written in each caption. */
#define EUAR_PAPER_TSNE_PERPLEXITY 30.0
#define EUAR_PAPER_TSNE_ITERATIONS 1000
#define EUAR_PAPER_TSNE_SEED 1

/* One cell: the statistics of up to EUAR_PAPER_MAX_METRICS metrics (NULL when no seed has
 * the metric); count 0 when the cell has no result. `failure` is the group's short failure
 * text ("failed (NaN loss, epoch 3)") when every seed failed, shown in place of numbers. */
typedef struct {
    const char *names[EUAR_PAPER_MAX_METRICS];
    const MetricStat *stats[EUAR_PAPER_MAX_METRICS];
    int count;
    const char *failure;
} PaperCell;

typedef struct {
    char *stem;     /* file name without extension, for tables/STEM.tex and tables/STEM.csv */
    char *label;    /* "Table 1", "Table 2", ... */
    char *title;    /* one line: what the table compares */
    char *caption;  /* what a cell shows */
    char *corner;   /* header of the row-label column */
    char **rows, **cols;
    int num_rows, num_cols;
    PaperCell *cells; /* [num_rows * num_cols], row-major */
    char *settings;   /* "key=value, ..." of the settings behind the table */
} PaperTable;

typedef struct {
    PaperTable *tables;
    int count;
} PaperTables;

/* A rendered figure or table file for the Markdown and the index page. */
typedef struct {
    char *label;    /* "Fig. 3", "Table 1", ... */
    char *caption;
    char *path;     /* relative to the results folder, for example plots/x.png */
    char *settings; /* settings behind it, "" when unknown */
} PaperArtifact;

typedef struct {
    PaperArtifact *items;
    int count;
} PaperArtifacts;

/* Builds the tables of a suite of table kind `kind` (NULL or unknown: none). missing and
 * noise give the LaTeX counterparts of the Markdown tables of report_render_markdown(). The
 * set must outlive the tables, which point into it. */
void paper_tables_build(const ReportSet *set, const char *kind, PaperTables *out);

/* Frees the tables. */
void paper_tables_free(PaperTables *tables);

/* Renders a table as Markdown: a heading, the caption, the table and the settings line. */
char *paper_table_markdown(const PaperTable *table);

/* Renders a table as a LaTeX table environment with booktabs rules (\toprule, \midrule,
 * \bottomrule), cells "mean $\pm$ std" and labels escaped for LaTeX. */
char *paper_table_latex(const PaperTable *table);

/* Renders a table as CSV: row,column,metric,mean,std,n (values as stored, fractions not
 * percent; std empty for one seed). */
char *paper_table_csv(const PaperTable *table);

/* Returns text for LaTeX: the special characters # $ % & _ { } ~ ^ \ are escaped, and the
 * UTF-8 plus-minus sign and em dash become $\pm$ and ---. Returns a malloc'd string. */
char *paper_latex_escape(const char *s);

/* Returns the settings of the finished groups of a set (of one dataset unless dataset is NULL)
 * as "key=value, ..." over the keys of report_setting_keys, distinct values joined by "|",
 * leaving out `skip` (NULL: none). Returns a malloc'd string. */
char *paper_settings_text(const ReportSet *set, const char *dataset, const char *skip);

/* Builds the figures of kind `kind` that gnuplot draws from .dat files: Fig. 3 (missing),
 * Fig. 4 (experts) and Fig. 5 (convergence). Appends to `out`, whose plots point into set. */
void paper_figures_build(const ReportSet *set, const RunSet *runs, const char *kind,
                         PlotSet *out);

/* Draws Fig. 6: for each joint file of runs, a t-SNE embedding of the conditions "clean" and
 * "A-missing" (those the file has) into DIR/plots/tsne-*.png and .svg, and adds each to
 * artifacts. Without gnuplot only the .dat and .gp files are written. Returns 0, or -1 with
 * err_set() for an unreadable joint file or a failed embedding. */
int paper_tsne_figures(const RunSet *runs, const char *dir, PaperArtifacts *artifacts);

/* Adds a copy of an artifact. */
void paper_artifact_add(PaperArtifacts *list, const char *label, const char *caption,
                        const char *path, const char *settings);

/* Frees the artifacts. */
void paper_artifacts_free(PaperArtifacts *list);

#endif
