/* Scatter plot of a 2-D t-SNE embedding coloured by class: a .dat file, a gnuplot script, and
 * the PNG and SVG that gnuplot draws from them. */
#include "report/tsne.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "report/plots.h"
#include "report/text.h"

/* Plot size in pixels (PNG) and points (SVG); square, because both axes share one scale. */
#define TSNE_PLOT_SIZE 720

/* Okabe and Ito, "Color Universal Design" (2008): eight colours that stay distinct under the
 * common colour-vision deficiencies. Classes beyond eight reuse them in order. */
static const char *const class_colours[] = {"#D55E00", "#0072B2", "#009E73", "#E69F00",
                                            "#CC79A7", "#56B4E9", "#F0E442", "#000000"};

/* Writes text as a single-quoted gnuplot string: a quote is doubled and a control character
 * becomes a space, and everything else is literal inside single quotes (gnuplot 5.4). */
static void append_quoted(TextBuf *out, const char *s) {
    text_printf(out, "'");
    for (; *s; s++) {
        if (*s == '\'')
            text_printf(out, "''");
        else if ((unsigned char)*s < 0x20)
            text_printf(out, " ");
        else
            text_printf(out, "%c", *s);
    }
    text_printf(out, "'");
}

/* Returns 1 when stem is a plain file name: letters, digits, '.', '_' and '-', not starting
 * with '.' or '-', so it needs no quoting in the script or on the command line. */
static int stem_is_safe(const char *stem) {
    if (!stem[0] || stem[0] == '.' || stem[0] == '-' || strlen(stem) > 200)
        return 0;
    for (const char *c = stem; *c; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                 (*c >= '0' && *c <= '9') || *c == '.' || *c == '_' || *c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

/* Checks the arguments of tsne_plot(). Returns 0 or -1 with err_set(). */
static int check_plot_arguments(const char *dir, const char *stem, const float *y,
                                const int32_t *labels, int n, const char *const *class_names,
                                int num_classes) {
    if (!dir || !dir[0] || !stem || !y || !labels || !class_names)
        return err_set("tsne plot: dir, stem, y, labels and class_names must be given");
    if (!stem_is_safe(stem))
        return err_set("tsne plot: file stem '%s' is invalid; use letters, digits, '.', '_' and "
                       "'-' only, not starting with '.' or '-'", stem);
    if (n < 1)
        return err_set("tsne plot %s: %d points given; the plot needs at least 1", stem, n);
    if (num_classes < 1)
        return err_set("tsne plot %s: %d classes given; pass at least 1 class name", stem,
                       num_classes);
    for (int c = 0; c < num_classes; c++)
        if (!class_names[c])
            return err_set("tsne plot %s: class_names[%d] is NULL; give every class a name",
                           stem, c);
    for (int i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= num_classes)
            return err_set("tsne plot %s: labels[%d] is %d, outside the %d classes [0, %d); "
                           "map the labels to class indices first", stem, i, (int)labels[i],
                           num_classes, num_classes - 1);
        if (!isfinite(y[2 * i]) || !isfinite(y[2 * i + 1]))
            return err_set("tsne plot %s: point %d is (%g, %g); the embedding must be finite",
                           stem, i, (double)y[2 * i], (double)y[2 * i + 1]);
    }
    return 0;
}

/* Builds the .dat text: a header comment, then one "x y class" line per point. */
static char *build_dat(const char *stem, const float *y, const int32_t *labels, int n,
                       const char *const *class_names, int num_classes, const char *title) {
    TextBuf dat = {NULL, 0, 0};
    text_printf(&dat, "# euar-bench: t-SNE embedding %s", stem);
    if (title && title[0]) {
        text_printf(&dat, ", ");
        for (const char *c = title; *c; c++)
            text_printf(&dat, "%c", (unsigned char)*c < 0x20 ? ' ' : *c);
    }
    text_printf(&dat, "\n# classes:");
    for (int c = 0; c < num_classes; c++) {
        text_printf(&dat, " %d=", c);
        for (const char *s = class_names[c]; *s; s++)
            text_printf(&dat, "%c", (unsigned char)*s <= ' ' ? '_' : *s);
    }
    text_printf(&dat, "\n# x y class\n");
    for (int i = 0; i < n; i++)
        text_printf(&dat, "%.9g %.9g %d\n", (double)y[2 * i], (double)y[2 * i + 1],
                    (int)labels[i]);
    return text_finish(&dat);
}

/* Builds the gnuplot script: PNG (pngcairo when the build has it), then SVG of the same plot.
 * Each class is one plot element that keeps only its rows through the using filter. */
static char *build_gp(const char *stem, const int32_t *labels, int n,
                      const char *const *class_names, int num_classes, const char *title) {
    TextBuf gp = {NULL, 0, 0};
    text_printf(&gp, "# euar-bench: t-SNE scatter plot.\n# Data: %s.dat. Run in this folder: "
                     "gnuplot %s.gp\n", stem, stem);
    text_printf(&gp, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                     "    set terminal pngcairo noenhanced size %d,%d\n"
                     "} else {\n"
                     "    set terminal png noenhanced size %d,%d\n"
                     "}\n", TSNE_PLOT_SIZE, TSNE_PLOT_SIZE, TSNE_PLOT_SIZE, TSNE_PLOT_SIZE);
    text_printf(&gp, "set output '%s.png'\n", stem);
    if (title && title[0]) {
        /* About 8 pixels per character in the default 12-point font. */
        /* About 13 pixels per character of the default 12-point font keeps lines inside. */
        char *wrapped = report_gp_string_wrapped(title, TSNE_PLOT_SIZE / 13);
        text_printf(&gp, "set title %s noenhanced\n", wrapped);
        free(wrapped);
    }
    /* t-SNE axes have no units, and only the same scale on both of them keeps the distances. */
    text_printf(&gp, "set size ratio -1\nunset xtics\nunset ytics\n"
                     "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\n"
                     "set key outside right top noenhanced\n");
    text_printf(&gp, "plot");
    int first = 1;
    for (int c = 0; c < num_classes; c++) {
        int count = 0;
        for (int i = 0; i < n; i++)
            count += labels[i] == c;
        if (count == 0)
            continue;
        text_printf(&gp, "%s '%s.dat' using 1:($3 == %d ? $2 : NaN) with points pt 7 ps 0.6 "
                         "lc rgb '%s' title ", first ? "" : ", \\\n    ", stem, c,
                    class_colours[c % (int)EUAR_ARRAY_LEN(class_colours)]);
        append_quoted(&gp, class_names[c]);
        first = 0;
    }
    text_printf(&gp, "\nset terminal svg noenhanced size %d,%d\nset output '%s.svg'\nreplot\n"
                     "unset output\n", TSNE_PLOT_SIZE, TSNE_PLOT_SIZE, stem);
    return text_finish(&gp);
}

/* Writes text to DIR/STEM.EXT atomically. Returns 0 or -1 with err_set(). */
static int write_output(const char *dir, const char *stem, const char *ext, const char *text) {
    size_t len = strlen(dir) + strlen(stem) + strlen(ext) + 3;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/%s.%s", dir, stem, ext);
    int rc = write_file_atomic(path, text, strlen(text));
    free(path);
    return rc;
}

/* Removes DIR/STEM.EXT when it exists. */
static void remove_output(const char *dir, const char *stem, const char *ext) {
    size_t len = strlen(dir) + strlen(stem) + strlen(ext) + 3;
    char *path = xmalloc(len);
    snprintf(path, len, "%s/%s.%s", dir, stem, ext);
    unlink(path);
    free(path);
}

int tsne_plot(const char *dir, const char *stem, const float *y, const int32_t *labels, int n,
              const char *const *class_names, int num_classes, const char *title) {
    if (check_plot_arguments(dir, stem, y, labels, n, class_names, num_classes) != 0)
        return -1;
    if (make_dirs(dir) != 0)
        return -1;
    char *dat = build_dat(stem, y, labels, n, class_names, num_classes, title);
    char *gp = build_gp(stem, labels, n, class_names, num_classes, title);
    int rc = write_output(dir, stem, "dat", dat);
    if (rc == 0)
        rc = write_output(dir, stem, "gp", gp);
    free(dat);
    free(gp);
    if (rc != 0)
        return -1;

    char gnuplot[PATH_MAX];
    if (!report_gnuplot_find(gnuplot, sizeof(gnuplot))) {
        LOG_INFO("tsne plot: gnuplot not found in PATH, so %s/%s.png and .svg are skipped; run "
                 "`gnuplot %s.gp` in %s after installing gnuplot-nox", dir, stem, stem, dir);
        return 0;
    }
    int status = report_gnuplot_run(gnuplot, dir, stem);
    if (status == 0)
        return 0;
    /* No partial images: a failed script may have left a truncated PNG or SVG. */
    remove_output(dir, stem, "png");
    remove_output(dir, stem, "svg");
    return err_set("%s/%s.gp: gnuplot (%s) exited with status %d; run `gnuplot %s.gp` in %s to "
                   "see its message", dir, stem, gnuplot, status, stem, dir);
}
