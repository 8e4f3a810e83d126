/* The paper's tables and figures (report/paper.h, report/output.h) on hand-made results
 * folders, one per suite table kind, each with a suite.json naming its kind.
 *
 * main: synth-mosi (regression, mib) and fmnist (classification), condition clean, models
 *   euar (model_index 0) and concat (1), seeds 1 and 2:
 *     synth-mosi euar   mib_acc2 0.80/0.82, mib_f1 0.70/0.70, acc7 0.30/0.40
 *     synth-mosi concat mib_acc2 0.60/0.60, mib_f1 0.50/0.60, acc7 0.20/0.20
 *     fmnist     euar   acc 0.90/0.94, macro_f1 0.88/0.90
 *     fmnist     concat only seed 1 of acc 0.85, macro_f1 0.84
 * ablation: the same files with the suite kind ablation.
 * experts: synth-mosi, model euar, conditions E=2, E=4, E=8 (setting experts 2, 4, 8), seeds 1
 *   and 2: mib_acc2 0.70/0.72, 0.74/0.76, 0.80/0.80.
 * convergence: synth-mosi, condition clean, euar seeds 1 and 2 with valid_metric 0.5, 0.6 and
 *   0.7, 0.8 over two epochs and valid_loss 1.0, 0.8 and 1.2, 1.0.
 * missing: synth-mosi, conditions T (0) and A (1), models euar and mlp-moe, seeds 1 to 3:
 *   T euar 0.80/0.82/0.81, T mlp-moe 0.78/0.78/0.78, A euar 0.60/0.70/0.65, A mlp-moe
 *   0.50/0.55/0.60 (mib_acc2; mib_f1 and acc7 0.5). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/common.h"
#include "report/joint_file.h"
#include "report/output.h"
#include "report/paper.h"

#define assert_contains(text, needle) check_contains((text), (needle))

static void check_contains(const char *text, const char *needle) {
    if (!strstr(text, needle))
        fail_msg("expected to find\n  %s\nin\n%s", needle, text);
}

typedef struct {
    const char *dataset, *task, *condition, *model, *experts;
    int condition_index, model_index, seed;
    const char *test;  /* JSON of metrics.test */
    const char *curve; /* JSON of curve, NULL for [] */
} Fake;

static void write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Writes the results as h<i>.json with hash h<i> and a suite.json of kind `table` listing
 * them as cells; joint, when not NULL, is the "joint" file name of the first cell. */
static void write_folder(const char *dir, const char *table, const Fake *fakes, int count,
                         const char *joint) {
    char *cells = xcalloc(1, (size_t)count * 400 + 16);
    for (int i = 0; i < count; i++) {
        const Fake *r = &fakes[i];
        char text[4096], name[32], cell[400], hash[16];
        snprintf(hash, sizeof(hash), "h%d", i);
        snprintf(text, sizeof(text),
                 "{\"format\": \"euar-bench-result\", \"format_version\": 1, \"hash\": \"%s\",\n"
                 " \"status\": \"ok\", \"failure\": null,\n"
                 " \"cell\": {\"suite\": \"s\", \"dataset\": \"%s\", \"condition\": \"%s\",\n"
                 "   \"condition_index\": %d, \"model\": \"%s\", \"model_index\": %d,\n"
                 "   \"seed\": %d, \"settings\": {\"epochs\": \"2\", \"experts\": \"%s\",\n"
                 "   \"protocol\": \"mib\"}},\n"
                 " \"task\": \"%s\", \"select\": \"valid-loss\",\n"
                 " \"metrics\": {\"valid\": {}, \"test\": %s},\n"
                 " \"curve\": %s, \"routing\": {}}\n",
                 hash, r->dataset, r->condition, r->condition_index, r->model, r->model_index,
                 r->seed, r->experts ? r->experts : "8", r->task ? r->task : "regression",
                 r->test, r->curve ? r->curve : "[]");
        snprintf(name, sizeof(name), "h%d.json", i);
        write_text(dir, name, text);
        snprintf(cell, sizeof(cell),
                 "%s{\"hash\": \"%s\", \"dataset\": \"%s\", \"condition\": \"%s\", "
                 "\"condition_index\": %d, \"model\": \"%s\", \"model_index\": %d, "
                 "\"seed\": %d%s%s%s}", i ? ",\n  " : "", hash, r->dataset, r->condition,
                 r->condition_index, r->model, r->model_index, r->seed,
                 i == 0 && joint ? ", \"joint\": \"" : "", i == 0 && joint ? joint : "",
                 i == 0 && joint ? "\"" : "");
        strcat(cells, cell);
    }
    size_t len = strlen(cells) + 512;
    char *record = xmalloc(len);
    snprintf(record, len,
             "{\"format\": \"euar-bench-suite\", \"format_version\": 1, \"name\": \"s\",\n"
             " \"source\": \"suites/s.json\", \"table\": \"%s\", \"quick\": false,\n"
             " \"datasets\": [], \"cells\": [\n  %s]}\n", table, cells);
    write_text(dir, "suite.json", record);
    free(record);
    free(cells);
}

static void make_temp_dir(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/euar_test_figures_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir) {
    char command[600];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    assert_int_equal(system(command), 0);
}

static const Fake main_fakes[] = {
    {"synth-mosi", NULL, "clean", "euar", NULL, 0, 0, 1,
     "{\"mib_acc2\": 0.80, \"mib_f1\": 0.70, \"acc7\": 0.30}", NULL},
    {"synth-mosi", NULL, "clean", "euar", NULL, 0, 0, 2,
     "{\"mib_acc2\": 0.82, \"mib_f1\": 0.70, \"acc7\": 0.40}", NULL},
    {"synth-mosi", NULL, "clean", "concat", NULL, 0, 1, 1,
     "{\"mib_acc2\": 0.60, \"mib_f1\": 0.50, \"acc7\": 0.20}", NULL},
    {"synth-mosi", NULL, "clean", "concat", NULL, 0, 1, 2,
     "{\"mib_acc2\": 0.60, \"mib_f1\": 0.60, \"acc7\": 0.20}", NULL},
    {"fmnist", "classification", "clean", "euar", NULL, 0, 0, 1,
     "{\"acc\": 0.90, \"macro_f1\": 0.88}", NULL},
    {"fmnist", "classification", "clean", "euar", NULL, 0, 0, 2,
     "{\"acc\": 0.94, \"macro_f1\": 0.90}", NULL},
    {"fmnist", "classification", "clean", "concat", NULL, 0, 1, 1,
     "{\"acc\": 0.85, \"macro_f1\": 0.84}", NULL},
};

/* Loads a folder of fakes of kind `table` and builds its tables. */
static void build_tables(const char *table, const Fake *fakes, int count, char *dir,
                         size_t cap, ReportSet *set, PaperTables *tables) {
    make_temp_dir(dir, cap);
    write_folder(dir, table, fakes, count, NULL);
    assert_int_equal(report_load_dir(set, dir), 0);
    paper_tables_build(set, table, tables);
}

static void main_table_text(void **state) {
    (void)state;
    char dir[256];
    ReportSet set;
    PaperTables tables;
    build_tables("main", main_fakes, 7, dir, sizeof(dir), &set, &tables);
    assert_int_equal(tables.count, 1);
    char *md = paper_table_markdown(&tables.tables[0]);
    assert_string_equal(md,
        "### Table 1: comparison of the methods on clean data\n\n"
        "Test split. Cells: Acc2 / F1 of each dataset's protocol (regression) or Acc / Macro "
        "F1 (classification), in %; mean ± sample standard deviation over the finished "
        "seeds.\n\n"
        "| model | fmnist | synth-mosi |\n|---|---|---|\n"
        "| euar | 92.0±2.8 / 89.0±1.4 | 81.0±1.4 / 70.0±0.0 |\n"
        "| concat | 85.0 / 84.0 | 60.0±0.0 / 55.0±7.1 |\n\n"
        "Settings: epochs=2, batch=?, lr=?, experts=8, top_k=?, hidden=?, "
        "select=valid-loss, protocol=mib.\n\n");
    free(md);
    paper_tables_free(&tables);
    report_free(&set);
    remove_dir(dir);
}

static void ablation_table_text(void **state) {
    (void)state;
    char dir[256];
    ReportSet set;
    PaperTables tables;
    build_tables("ablation", main_fakes, 4, dir, sizeof(dir), &set, &tables);
    assert_int_equal(tables.count, 1);
    char *md = paper_table_markdown(&tables.tables[0]);
    assert_contains(md, "### Table 4: loss ablation");
    assert_contains(md, "| variant | synth-mosi |\n|---|---|\n"
                        "| euar | 81.0±1.4 / 70.0±0.0 / 35.0±7.1 |\n"
                        "| concat | 60.0±0.0 / 55.0±7.1 / 20.0±0.0 |\n");
    free(md);
    paper_tables_free(&tables);
    report_free(&set);
    remove_dir(dir);
}

/* Returns 1 when braces balance and never close more than they opened. */
static int braces_balanced(const char *s) {
    int depth = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            continue;
        }
        depth += *p == '{';
        depth -= *p == '}';
        if (depth < 0)
            return 0;
    }
    return depth == 0;
}

static void latex_structure(void **state) {
    (void)state;
    char dir[256];
    ReportSet set;
    PaperTables tables;
    build_tables("main", main_fakes, 7, dir, sizeof(dir), &set, &tables);
    char *tex = paper_table_latex(&tables.tables[0]);
    assert_true(braces_balanced(tex));
    assert_contains(tex, "\\toprule\n");
    assert_contains(tex, "\\midrule\n");
    assert_contains(tex, "\\bottomrule\n");
    assert_contains(tex, "\\begin{tabular}{lcc}");
    assert_contains(tex, "euar & 92.0 $\\pm$ 2.8 / 89.0 $\\pm$ 1.4 & 81.0 $\\pm$ 1.4 / "
                         "70.0 $\\pm$ 0.0 \\\\\n");
    assert_contains(tex, "top\\_k");
    assert_null(strstr(tex, "±"));
    free(tex);
    char *escaped = paper_latex_escape("a_b&c%d#e{f}~^\\");
    assert_string_equal(escaped, "a\\_b\\&c\\%d\\#e\\{f\\}\\textasciitilde{}"
                                 "\\textasciicircum{}\\textbackslash{}");
    free(escaped);
    char *csv = paper_table_csv(&tables.tables[0]);
    assert_contains(csv, "row,column,metric,mean,std,n\n");
    assert_contains(csv, "concat,fmnist,acc,0.85,,1\n");
    free(csv);
    paper_tables_free(&tables);
    report_free(&set);
    remove_dir(dir);
}

static const Fake expert_fakes[] = {
    {"synth-mosi", NULL, "E=2", "euar", "2", 0, 0, 1, "{\"mib_acc2\": 0.70}", NULL},
    {"synth-mosi", NULL, "E=2", "euar", "2", 0, 0, 2, "{\"mib_acc2\": 0.72}", NULL},
    {"synth-mosi", NULL, "E=4", "euar", "4", 1, 0, 1, "{\"mib_acc2\": 0.74}", NULL},
    {"synth-mosi", NULL, "E=4", "euar", "4", 1, 0, 2, "{\"mib_acc2\": 0.76}", NULL},
    {"synth-mosi", NULL, "E=8", "euar", "8", 2, 0, 1, "{\"mib_acc2\": 0.80}", NULL},
    {"synth-mosi", NULL, "E=8", "euar", "8", 2, 0, 2, "{\"mib_acc2\": 0.80}", NULL},
};

static void experts_table_and_data(void **state) {
    (void)state;
    char dir[256];
    ReportSet set;
    PaperTables tables;
    build_tables("experts", expert_fakes, 6, dir, sizeof(dir), &set, &tables);
    assert_int_equal(tables.count, 1);
    char *md = paper_table_markdown(&tables.tables[0]);
    assert_contains(md, "| experts | synth-mosi |\n|---|---|\n| 2 | 71.0±1.4 |\n"
                        "| 4 | 75.0±1.4 |\n| 8 | 80.0±0.0 |\n");
    assert_null(strstr(md, "experts=8"));
    free(md);
    RunSet runs;
    assert_int_equal(report_runs_load(&runs, dir), 0);
    PlotSet figures = {NULL, 0};
    paper_figures_build(&set, &runs, "experts", &figures);
    assert_int_equal(figures.count, 1);
    assert_contains(figures.plots[0].dat, "# series synth-mosi\n2 71.000000 1.414214 2\n"
                                          "4 75.000000 1.414214 2\n8 80.000000 0.000000 2\n");
    assert_contains(figures.plots[0].gp, "set logscale x 2\n");
    report_plots_free(&figures);
    report_runs_free(&runs);
    paper_tables_free(&tables);
    report_free(&set);
    remove_dir(dir);
}

static const Fake curve_fakes[] = {
    {"synth-mosi", NULL, "clean", "euar", NULL, 0, 0, 1, "{\"mib_acc2\": 0.7}",
     "[{\"epoch\": 1, \"valid_metric\": 0.5, \"valid_loss\": 1.0},"
     " {\"epoch\": 2, \"valid_metric\": 0.6, \"valid_loss\": 0.8}]"},
    {"synth-mosi", NULL, "clean", "euar", NULL, 0, 0, 2, "{\"mib_acc2\": 0.7}",
     "[{\"epoch\": 1, \"valid_metric\": 0.7, \"valid_loss\": 1.2},"
     " {\"epoch\": 2, \"valid_metric\": 0.8, \"valid_loss\": null}]"},
};

static void convergence_band_data(void **state) {
    (void)state;
    char dir[256];
    ReportSet set;
    PaperTables tables;
    build_tables("convergence", curve_fakes, 2, dir, sizeof(dir), &set, &tables);
    RunSet runs;
    assert_int_equal(report_runs_load(&runs, dir), 0);
    PlotSet figures = {NULL, 0};
    paper_figures_build(&set, &runs, "convergence", &figures);
    assert_int_equal(figures.count, 2);
    /* Columns: epoch, mean, std, mean-std, mean+std, n; std = sqrt(0.02) = 0.141421. */
    assert_contains(figures.plots[0].dat, "# epoch euar_mean euar_std euar_lo euar_hi euar_n\n"
                                          "1 0.600000 0.141421 0.458579 0.741421 2\n"
                                          "2 0.700000 0.141421 0.558579 0.841421 2\n");
    /* A null valid_loss leaves one seed at epoch 2. */
    assert_contains(figures.plots[1].dat, "1 1.100000 0.141421 0.958579 1.241421 2\n"
                                          "2 0.800000 0.000000 0.800000 0.800000 1\n");
    assert_contains(figures.plots[0].gp, "using 1:4:5 with filledcurves");
    report_plots_free(&figures);
    report_runs_free(&runs);
    paper_tables_free(&tables);
    report_free(&set);
    remove_dir(dir);
}

static const Fake missing_fakes[] = {
    {"synth-mosi", NULL, "T", "euar", NULL, 0, 0, 1, "{\"mib_acc2\": 0.80}", NULL},
    {"synth-mosi", NULL, "T", "euar", NULL, 0, 0, 2, "{\"mib_acc2\": 0.82}", NULL},
    {"synth-mosi", NULL, "T", "euar", NULL, 0, 0, 3, "{\"mib_acc2\": 0.81}", NULL},
    {"synth-mosi", NULL, "T", "mlp-moe", NULL, 0, 1, 1, "{\"mib_acc2\": 0.78}", NULL},
    {"synth-mosi", NULL, "T", "mlp-moe", NULL, 0, 1, 2, "{\"mib_acc2\": 0.78}", NULL},
    {"synth-mosi", NULL, "T", "mlp-moe", NULL, 0, 1, 3, "{\"mib_acc2\": 0.78}", NULL},
    {"synth-mosi", NULL, "A", "euar", NULL, 1, 0, 1, "{\"mib_acc2\": 0.60}", NULL},
    {"synth-mosi", NULL, "A", "euar", NULL, 1, 0, 2, "{\"mib_acc2\": 0.70}", NULL},
    {"synth-mosi", NULL, "A", "euar", NULL, 1, 0, 3, "{\"mib_acc2\": 0.65}", NULL},
    {"synth-mosi", NULL, "A", "mlp-moe", NULL, 1, 1, 1, "{\"mib_acc2\": 0.50}", NULL},
    {"synth-mosi", NULL, "A", "mlp-moe", NULL, 1, 1, 2, "{\"mib_acc2\": 0.55}", NULL},
    {"synth-mosi", NULL, "A", "mlp-moe", NULL, 1, 1, 3, "{\"mib_acc2\": 0.60}", NULL},
};

static void missing_box_data(void **state) {
    (void)state;
    char dir[256];
    ReportSet set;
    PaperTables tables;
    build_tables("missing", missing_fakes, 12, dir, sizeof(dir), &set, &tables);
    assert_int_equal(tables.count, 1);
    RunSet runs;
    assert_int_equal(report_runs_load(&runs, dir), 0);
    PlotSet figures = {NULL, 0};
    paper_figures_build(&set, &runs, "missing", &figures);
    assert_int_equal(figures.count, 1);
    /* Quartiles by linear interpolation: for 80, 81, 82 they are 80.5, 81 and 81.5. */
    assert_contains(figures.plots[0].dat,
                    "1 80.000000 80.500000 81.000000 81.500000 82.000000 3 T euar\n"
                    "2 78.000000 78.000000 78.000000 78.000000 78.000000 3 T mlp-moe\n"
                    "4 60.000000 62.500000 65.000000 67.500000 70.000000 3 A euar\n"
                    "5 50.000000 52.500000 55.000000 57.500000 60.000000 3 A mlp-moe\n");
    assert_contains(figures.plots[0].dat, "1 82.000000 2 T euar\n");
    assert_contains(figures.plots[0].gp, "with candlesticks whiskerbars");
    report_plots_free(&figures);
    report_runs_free(&runs);
    paper_tables_free(&tables);
    report_free(&set);
    remove_dir(dir);
}

/* Checks that path is a PNG over 2 KB. */
static void check_png(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s was not written", path);
    unsigned char head[8] = {0};
    size_t got = fread(head, 1, 8, f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(got, 8);
    assert_memory_equal(head, "\x89PNG\r\n\x1a\n", 8);
    assert_true(size > 2048);
}

static void check_svg(const char *path) {
    char *text = read_file_text(path, NULL);
    if (!text)
        fail_msg("%s was not written", path);
    assert_contains(text, "<svg");
    free(text);
}

static int have_gnuplot(void) {
    char path[4096];
    return report_gnuplot_find(path, sizeof(path));
}

static void suite_files_written(void **state) {
    (void)state;
    if (!have_gnuplot())
        skip();
    char dir[256], path[512];
    make_temp_dir(dir, sizeof(dir));
    write_folder(dir, "missing", missing_fakes, 12, NULL);
    ReportOptions options = {.title = dir};
    assert_int_equal(report_write_suite(dir, NULL, &options, 1, 0, NULL), 0);
    snprintf(path, sizeof(path), "%s/plots/fig3-box-synth-mosi.png", dir);
    check_png(path);
    snprintf(path, sizeof(path), "%s/plots/fig3-box-synth-mosi.svg", dir);
    check_svg(path);
    snprintf(path, sizeof(path), "%s/tables/table2-missing-synth-mosi.tex", dir);
    char *tex = read_file_text(path, NULL);
    assert_non_null(tex);
    assert_true(braces_balanced(tex));
    free(tex);
    snprintf(path, sizeof(path), "%s/report.md", dir);
    char *md = read_file_text(path, NULL);
    assert_non_null(md);
    assert_contains(md, "](plots/fig3-box-synth-mosi.png)");
    free(md);
    remove_dir(dir);
}

static void root_index_lists_suites(void **state) {
    (void)state;
    char root[256], dir[512], path[600];
    make_temp_dir(root, sizeof(root));
    snprintf(dir, sizeof(dir), "%s/missing", root);
    assert_int_equal(make_dirs(dir), 0);
    write_folder(dir, "missing", missing_fakes, 12, NULL);
    snprintf(dir, sizeof(dir), "%s/experts", root);
    assert_int_equal(make_dirs(dir), 0); /* a folder without results */
    assert_int_equal(report_dir_is_suite(root), 0);
    ReportOptions options = {.title = NULL};
    assert_int_equal(report_write_root(root, &options, 0), 0);
    snprintf(path, sizeof(path), "%s/index.md", root);
    char *index = read_file_text(path, NULL);
    assert_non_null(index);
    assert_contains(index, "[report.md](missing/report.md)");
    assert_contains(index, "- Table 2: [fixed missing modalities, synth-mosi (LaTeX; CSV "
                           "beside it)](missing/tables/table2-missing-synth-mosi.tex); "
                           "settings: epochs=2");
    assert_contains(index, "run `make suite-experts`");
    assert_contains(index, "run `make suite-noise`");
    assert_contains(index, "run `make suite-main`");
    free(index);
    remove_dir(root);
}

/* Three clusters of 30 points in 4-D, labels -1, 0 and +1. */
static void tsne_figure_from_joint(void **state) {
    (void)state;
    if (!have_gnuplot())
        skip();
    char dir[256], path[600];
    make_temp_dir(dir, sizeof(dir));
    JointFile jf;
    memset(&jf, 0, sizeof(jf));
    snprintf(jf.model, sizeof(jf.model), "euar");
    snprintf(jf.dataset, sizeof(jf.dataset), "synth-mosi");
    jf.n = 90;
    jf.dim = 4;
    jf.count = 2;
    snprintf(jf.names[0], 64, "clean");
    snprintf(jf.names[1], 64, "A-missing");
    jf.labels = xmalloc(90 * sizeof(float));
    for (int k = 0; k < 2; k++)
        jf.joint[k] = xmalloc(90 * 4 * sizeof(float));
    for (int i = 0; i < 90; i++) {
        int cluster = i / 30;
        jf.labels[i] = (float)(cluster - 1);
        for (int d = 0; d < 4; d++)
            for (int k = 0; k < 2; k++)
                jf.joint[k][i * 4 + d] = (float)(10.0 * (d == cluster) +
                                                 0.1 * sin(7.0 * i + d + k));
    }
    snprintf(path, sizeof(path), "%s/h0.joint.h5", dir);
    assert_int_equal(joint_file_write(path, &jf), 0);
    free(jf.labels);
    free(jf.joint[0]);
    free(jf.joint[1]);
    write_folder(dir, "main", main_fakes, 2, "h0.joint.h5");
    PaperArtifacts artifacts = {NULL, 0};
    ReportOptions options = {.title = dir};
    assert_int_equal(report_write_suite(dir, NULL, &options, 1, 0, &artifacts), 0);
    snprintf(path, sizeof(path), "%s/plots/fig6-tsne-synth-mosi-euar-clean.png", dir);
    check_png(path);
    snprintf(path, sizeof(path), "%s/plots/fig6-tsne-synth-mosi-euar-A-missing.png", dir);
    check_png(path);
    int found = 0;
    for (int i = 0; i < artifacts.count; i++)
        found += strcmp(artifacts.items[i].label, "Fig. 6") == 0;
    assert_int_equal(found, 2);
    assert_contains(artifacts.items[artifacts.count - 1].caption, "t-SNE seed 1");
    paper_artifacts_free(&artifacts);
    remove_dir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(main_table_text),
        cmocka_unit_test(ablation_table_text),
        cmocka_unit_test(latex_structure),
        cmocka_unit_test(experts_table_and_data),
        cmocka_unit_test(convergence_band_data),
        cmocka_unit_test(missing_box_data),
        cmocka_unit_test(suite_files_written),
        cmocka_unit_test(root_index_lists_suites),
        cmocka_unit_test(tsne_figure_from_joint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
