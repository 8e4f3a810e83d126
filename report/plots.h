/* Plots of test-time noise results with gnuplot: accuracy against noise level per method,
 * mean expert sigma^2 against noise level per modality, and expert load under noise. Each plot
 * is a whitespace-column .dat file with a header comment and a .gp script that writes a PNG
 * and an SVG beside it. */
#ifndef EUAR_REPORT_PLOTS_H
#define EUAR_REPORT_PLOTS_H

#include <stddef.h>

#include "report/aggregate.h"
#include "report/text.h"

/* Noise type and level of a canonical noise spec (noise_describe() in noise/noise.h). */
typedef struct {
    /* The terms' types joined by "+", each with its "@modality" when it has one, for example
     * "gaussian+blank@text": conditions of one series lie on one line of a plot. */
    char series[256];
    char type[32];     /* type of the term that gives the level */
    char level_key[8]; /* "eps" (gaussian, saltpepper) or "ratio" (blank) */
    double level;
    int num_terms;
} NoiseLevel;

/* Reads the noise type and level of a spec: the level is eps of the first gaussian or
 * saltpepper term, or else ratio of the first blank term. Returns 0, or -1 (without err_set)
 * when the spec has no such term (clean data, missing modalities) or is malformed. */
int report_noise_level(const char *spec, NoiseLevel *out);

/* Noise plots (report_plots_build()), then the paper's figures (report/paper.h): box plots of
 * the missing subsets (Fig. 3), accuracy against experts (Fig. 4), validation curves (Fig. 5). */
typedef enum {
    EUAR_PLOT_ACCURACY,
    EUAR_PLOT_SIGMA2,
    EUAR_PLOT_LOAD,
    EUAR_PLOT_BOX,
    EUAR_PLOT_EXPERTS,
    EUAR_PLOT_CONVERGENCE
} PlotKind;

/* One plot of a (suite, dataset, training condition). */
typedef struct {
    PlotKind kind;
    const char *suite, *dataset, *condition; /* point into the ReportSet */
    char *stem;    /* file name without extension; unique in the set, safe in file names */
    char *caption; /* one line saying what the plot shows */
    char *dat;     /* contents of stem.dat */
    char *gp;      /* contents of stem.gp */
} Plot;

typedef struct {
    Plot *plots;
    int count;
} PlotSet;

/* Builds the plots of every group with test-time conditions, in the order of the tables. Plots
 * need conditions whose spec has a level (report_noise_level()). The sigma^2 plots cover models
 * with a non-null expert sigma2 (Gaussian experts); the load plots cover the model "euar". The
 * set points into `set`, which must outlive it. */
void report_plots_build(const ReportSet *set, PlotSet *out);

/* Frees a plot set. */
void report_plots_free(PlotSet *plots);

/* Finds an executable gnuplot in PATH. Returns 1 and writes its path, or 0 when none. */
int report_gnuplot_find(char *path, size_t cap);

/* Runs `gnuplot ./STEM.gp` in folder dir through fork and exec, so that no shell sees the
 * names. Returns gnuplot's exit status, or -1 when it could not start. */
int report_gnuplot_run(const char *gnuplot, const char *dir, const char *stem);

/* Returns a gnuplot string expression for text, split at spaces or after commas into lines of
 * at most max_columns characters joined by "\n" (for example 'a'."\n".'b'), so that a long title
 * fits the canvas. Each line is single-quoted as in plot scripts. Returns a malloc'd string. */
char *report_gp_string_wrapped(const char *text, int max_columns);

/* Writes "set AXISrange [lo - m:hi + m]" (axis "x" or "y") into a plot script when every value
 * on that axis is the same (hi - lo at most 1e-9 of their size). Without it gnuplot warns that
 * the range is empty. The margin m is 5% of the value, or 1 for 0. Writes nothing when the
 * values differ or there are none (lo > hi). */
void report_gp_flat_range(TextBuf *gp, const char *axis, double lo, double hi);

/* Widens [*lo, *hi] (start with INFINITY, -INFINITY) to value ± err. A value that is not
 * finite is skipped, and an err that is not finite counts as 0. */
void report_gp_range_add(double *lo, double *hi, double value, double err);

/* Writes stem.dat and stem.gp of every plot into folder dir (created when missing), then, when
 * gnuplot is not NULL, runs `gnuplot ./stem.gp` in dir for each, which writes stem.png and
 * stem.svg. The images of a failed script are removed. Returns 0, or -1 with err_set() naming
 * the first file that could not be written or the first script gnuplot failed on. */
int report_plots_write(const PlotSet *plots, const char *dir, const char *gnuplot);

#endif
