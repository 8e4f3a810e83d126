/* Writing the report files of a results folder (report.md, summary.csv, tables/, plots/) and
 * of a root folder of several suites (index.md). */
#ifndef EUAR_REPORT_OUTPUT_H
#define EUAR_REPORT_OUTPUT_H

#include "report/paper.h"
#include "report/report.h"

/* Returns 1 when dir is a suite folder: it contains suite.json or a *.json result file. */
int report_dir_is_suite(const char *dir);

/* Renders one suite folder: dir/report.md (or md_path when not NULL), dir/summary.csv, the
 * paper tables of its table kind in dir/tables/STEM.tex and STEM.csv, and, when plots_wanted,
 * the noise plots and figures in dir/plots. Prints the Markdown when print is 1. Adds every
 * table and figure to artifacts (paths relative to dir) when artifacts is not NULL. Returns 0,
 * or -1 with err_set(). */
int report_write_suite(const char *dir, const char *md_path, ReportOptions *options,
                       int plots_wanted, int print, PaperArtifacts *artifacts);

/* Renders every suite folder under root (report_write_suite()) and writes root/index.md,
 * which links each table and figure with the settings behind it. Suites of the paper without
 * a folder or without results are listed with the make target that runs them. Returns 0, or
 * -1 with err_set() when a suite folder fails to render (the index is still written). */
int report_write_root(const char *root, const ReportOptions *options, int plots_wanted);

#endif
