/* Report aggregation and rendering on hand-made result files in a temporary folder.
 *
 * Folder "main": suite missing, dataset synth-mosi (regression, protocol mib), conditions
 * T+A (condition_index 0) and T (1), models euar (model_index 0) and concat (1):
 *   T+A/euar    seeds 1-3 ok, mib_acc2 0.5/0.6/0.7, mib_f1 0.5 each, acc7 0.2/0.3/0.4,
 *               seed 4 failed: mean 0.6, sample std 0.1, n 3
 *   T+A/concat  seeds 1-2 ok, selected on test Acc2, experts 4, mib_acc2 0.5/0.6,
 *               mib_f1 0.4/0.6, acc7 0.25 each
 *   T/euar      seed 1 failed at epoch 12
 *   T/concat    missing
 * and dataset fmnist (classification) with one seed of concat under condition clean.
 * Temporary files (*.json.tmp.*, *.tmp.*.json) hold invalid JSON and must be skipped. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/common.h"
#include "report/report.h"

#define assert_near(actual, expected, tol) check_near((actual), (expected), (tol), #actual)

static void check_near(double actual, double expected, double tol, const char *what) {
    if (!(fabs(actual - expected) <= tol))
        fail_msg("%s = %.17g, expected %.17g (tolerance %g)", what, actual, expected, tol);
}

/* Fails with the whole text when needle is not in it. */
#define assert_contains(text, needle) check_contains((text), (needle))

static void check_contains(const char *text, const char *needle) {
    if (!strstr(text, needle))
        fail_msg("expected to find\n  %s\nin\n%s", needle, text);
}

static char main_dir[256];

static void write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

typedef struct {
    const char *dataset, *task, *condition, *model, *experts, *select;
    int condition_index, model_index, seed;
    const char *failure; /* JSON of the failure object, NULL for status ok */
    const char *test;    /* JSON of metrics.test */
    int version;
} FakeResult;

static void write_result(const char *dir, const char *name, const FakeResult *r) {
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"format\": \"euar-bench-result\", \"format_version\": %d,\n"
             " \"status\": \"%s\", \"failure\": %s,\n"
             " \"cell\": {\"suite\": \"missing\", \"dataset\": \"%s\", \"condition\": \"%s\",\n"
             "   \"condition_index\": %d, \"model\": \"%s\", \"model_index\": %d, \"seed\": %d,\n"
             "   \"settings\": {\"epochs\": \"100\", \"batch\": \"16\", \"lr\": \"0.001\",\n"
             "     \"experts\": \"%s\", \"top_k\": \"3\", \"hidden\": \"128\",\n"
             "     \"select\": \"%s\", \"protocol\": \"mib\"}},\n"
             " \"task\": \"%s\", \"num_classes\": 0, \"select\": \"%s\", \"selected_epoch\": 7,\n"
             " \"metrics\": {\"valid\": {\"loss\": 1.0}, \"test\": %s},\n"
             " \"curve\": [], \"routing\": {}}\n",
             r->version ? r->version : 1, r->failure ? "failed" : "ok",
             r->failure ? r->failure : "null", r->dataset, r->condition, r->condition_index,
             r->model, r->model_index, r->seed, r->experts ? r->experts : "8",
             r->select ? r->select : "valid-loss", r->task ? r->task : "regression",
             r->select ? r->select : "valid-loss", r->test ? r->test : "{}");
    write_text(dir, name, text);
}

static void make_temp_dir(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/euar_test_report_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir) {
    char command[600];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    assert_int_equal(system(command), 0);
}

static int setup_main(void **state) {
    (void)state;
    make_temp_dir(main_dir, sizeof(main_dir));
    const char *mosi = "synth-mosi";
    FakeResult r[] = {
        {mosi, NULL, "T+A", "euar", NULL, NULL, 0, 0, 1, NULL,
         "{\"loss\": 1.5, \"mib_acc2\": 0.5, \"mib_f1\": 0.5, \"acc7\": 0.2}", 0},
        {mosi, NULL, "T+A", "euar", NULL, NULL, 0, 0, 2, NULL,
         "{\"loss\": 1.4, \"mib_acc2\": 0.6, \"mib_f1\": 0.5, \"acc7\": 0.3}", 0},
        {mosi, NULL, "T+A", "euar", NULL, NULL, 0, 0, 3, NULL,
         "{\"loss\": 1.3, \"mib_acc2\": 0.7, \"mib_f1\": 0.5, \"acc7\": 0.4}", 0},
        {mosi, NULL, "T+A", "euar", NULL, NULL, 0, 0, 4,
         "{\"epoch\": 3, \"reason\": \"parameters exploded\"}", NULL, 0},
        {mosi, NULL, "T+A", "concat", "4", "test-acc2", 0, 1, 1, NULL,
         "{\"mib_acc2\": 0.5, \"mib_f1\": 0.4, \"acc7\": 0.25}", 0},
        {mosi, NULL, "T+A", "concat", "4", "test-acc2", 0, 1, 2, NULL,
         "{\"mib_acc2\": 0.6, \"mib_f1\": 0.6, \"acc7\": 0.25}", 0},
        {mosi, NULL, "T", "euar", NULL, NULL, 1, 0, 1,
         "{\"epoch\": 12, \"reason\": \"training loss is NaN\"}", NULL, 0},
        {"fmnist", "classification", "clean", "concat", NULL, NULL, 0, 0, 1, NULL,
         "{\"acc\": 0.8, \"macro_f1\": 0.75, \"weighted_f1\": 0.7}", 0},
    };
    for (size_t i = 0; i < EUAR_ARRAY_LEN(r); i++) {
        char name[32];
        snprintf(name, sizeof(name), "%016zx.json", i * 7919 + 3);
        write_result(main_dir, name, &r[i]);
    }
    write_text(main_dir, "0000000000000001.json.tmp.4242", "{\"format\": ");
    write_text(main_dir, "partial.tmp.77.json", "{\"format\": ");
    write_text(main_dir, "notes.txt", "not a result");
    return 0;
}

static int teardown_main(void **state) {
    (void)state;
    remove_dir(main_dir);
    return 0;
}

static void aggregate_mean_std_n(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, main_dir), 0);
    const ReportGroup *g = report_find(&set, "missing", "synth-mosi", "T+A", "euar");
    assert_non_null(g);
    const MetricStat *acc2 = report_group_metric(g, "mib_acc2");
    assert_non_null(acc2);
    assert_near(acc2->mean, 0.6, 1e-12);
    assert_near(acc2->std, 0.1, 1e-12);
    assert_int_equal(acc2->n, 3);
    const MetricStat *f1 = report_group_metric(g, "mib_f1");
    assert_non_null(f1);
    assert_near(f1->std, 0.0, 0.0);
    assert_int_equal(g->n_ok, 3);
    assert_int_equal(g->n_failed, 1);
    report_free(&set);
}

/* Two seeds: 0.5 and 0.6 give mean 0.55 and sample std sqrt(0.005). */
static void aggregate_two_seeds(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, main_dir), 0);
    const ReportGroup *g = report_find(&set, "missing", "synth-mosi", "T+A", "concat");
    assert_non_null(g);
    const MetricStat *acc2 = report_group_metric(g, "mib_acc2");
    assert_non_null(acc2);
    assert_near(acc2->mean, 0.55, 1e-12);
    assert_near(acc2->std, sqrt(0.005), 1e-12);
    assert_int_equal(acc2->n, 2);
    assert_int_equal(g->selected_on_test, 1);
    report_free(&set);
}

static void aggregate_single_seed(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, main_dir), 0);
    const ReportGroup *g = report_find(&set, "missing", "fmnist", "clean", "concat");
    assert_non_null(g);
    const MetricStat *acc = report_group_metric(g, "acc");
    assert_non_null(acc);
    assert_near(acc->mean, 0.8, 0.0);
    assert_near(acc->std, 0.0, 0.0);
    assert_int_equal(acc->n, 1);
    report_free(&set);
}

static void aggregate_failed_group(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, main_dir), 0);
    const ReportGroup *g = report_find(&set, "missing", "synth-mosi", "T", "euar");
    assert_non_null(g);
    assert_int_equal(g->n_ok, 0);
    assert_int_equal(g->n_failed, 1);
    assert_string_equal(g->failure, "training loss is NaN (epoch 12)");
    assert_null(report_group_metric(g, "mib_acc2"));
    assert_null(report_find(&set, "missing", "synth-mosi", "T", "concat"));
    report_free(&set);
}

static void aggregate_skips_temp_files(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, main_dir), 0);
    assert_int_equal(set.num_files, 8);
    assert_int_equal(set.num_groups, 4);
    report_free(&set);
}

static char *render_main(const ReportOptions *options) {
    ReportSet set;
    assert_int_equal(report_load_dir(&set, main_dir), 0);
    char *text = report_render_markdown(&set, options);
    report_free(&set);
    return text;
}

static void table_cells(void **state) {
    (void)state;
    char *md = render_main(NULL);
    assert_contains(md, "| condition | euar | concat |");
    assert_contains(md, "| T+A | 60.0±10.0 / 50.0±0.0 / 30.0±10.0 [1] | "
                        "55.0±7.1 / 50.0±14.1 / 25.0±0.0 [2] † |");
    assert_contains(md, "over n = 3 seeds");
    assert_contains(md, "[2] n = 2 seeds.");
    assert_contains(md, "[1] 1 of 4 seeds failed (first: parameters exploded (epoch 3)); "
                        "the statistics cover the other 3.");
    free(md);
}

static void table_row_order(void **state) {
    (void)state;
    char *md = render_main(NULL);
    const char *first = strstr(md, "| T+A |");
    const char *second = strstr(md, "| T |");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    free(md);
}

static void table_failed_missing(void **state) {
    (void)state;
    char *md = render_main(NULL);
    assert_contains(md, "| T | failed [3] | — |");
    assert_contains(md, "[3] failed: training loss is NaN (epoch 12).");
    assert_contains(md, "— no result for this condition and model.");
    free(md);
}

static void table_test_selection(void **state) {
    (void)state;
    char *md = render_main(NULL);
    assert_contains(md, "† selected on test Acc2 (the authors' protocol), optimistic.");
    assert_contains(md, "select=valid-loss (test-acc2 for T+A/concat)");
    free(md);
}

static void table_settings_line(void **state) {
    (void)state;
    char *md = render_main(NULL);
    assert_contains(md, "Settings: epochs=100, batch=16, lr=0.001, experts=8 (4 for T+A/concat), "
                        "top_k=3, hidden=128,");
    free(md);
}

static void table_classification(void **state) {
    (void)state;
    char *md = render_main(NULL);
    assert_contains(md, "## missing: fmnist");
    assert_contains(md, "| clean | 80.0±0.0 / 75.0±0.0 |");
    free(md);
}

static void table_metric_option(void **state) {
    (void)state;
    const char *metrics[] = {"acc7", "loss", "mmsa_mae"};
    ReportOptions options = {"results", metrics, 3};
    char *md = render_main(&options);
    assert_contains(md, "# results");
    assert_contains(md, "| T+A | 30.0±10.0 / 1.400±0.100 / n/a [1] |");
    free(md);
}

static void csv_rows(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, main_dir), 0);
    char *csv = report_render_csv(&set);
    report_free(&set);
    assert_true(strncmp(csv, "suite,dataset,condition,model,metric,mean,std,n\n", 48) == 0);
    assert_contains(csv, "\nmissing,synth-mosi,T+A,euar,mib_acc2,0.6,0.1,3\n");
    assert_contains(csv, "\nmissing,fmnist,clean,concat,acc,0.8,0,1\n");
    assert_null(strstr(csv, ",T,euar,"));
    free(csv);
}

static void metric_names_known(void **state) {
    (void)state;
    assert_int_equal(report_is_metric("mmsa_non0_f1"), 1);
    assert_int_equal(report_is_metric("weighted_f1"), 1);
    assert_int_equal(report_is_metric("loss"), 1);
    assert_int_equal(report_is_metric("acc2"), 0);
}

/* Loads a folder holding the given files and expects an error containing `needle`. */
static void expect_load_error(const char *name, const char *text, const char *needle) {
    char dir[256];
    make_temp_dir(dir, sizeof(dir));
    if (name)
        write_text(dir, name, text);
    ReportSet set;
    err_clear();
    assert_int_equal(report_load_dir(&set, dir), -1);
    assert_contains(err_get(), needle);
    assert_int_equal(set.num_groups, 0);
    remove_dir(dir);
}

static void load_malformed_json(void **state) {
    (void)state;
    expect_load_error("0123456789abcdef.json", "{\"format\": \"euar-bench-result\", ",
                      "0123456789abcdef.json: invalid JSON");
}

static void load_newer_version(void **state) {
    (void)state;
    char dir[256];
    make_temp_dir(dir, sizeof(dir));
    FakeResult r = {"synth-mosi", NULL, "T", "euar", NULL, NULL, 0, 0, 1, NULL, NULL, 2};
    write_result(dir, "future.json", &r);
    ReportSet set;
    assert_int_equal(report_load_dir(&set, dir), -1);
    assert_contains(err_get(), "future.json: format_version 2 is newer");
    assert_contains(err_get(), "upgrade euar-bench");
    remove_dir(dir);
}

static void load_missing_field(void **state) {
    (void)state;
    expect_load_error("nomodel.json",
                      "{\"format\": \"euar-bench-result\", \"format_version\": 1, "
                      "\"status\": \"ok\", \"task\": \"regression\", "
                      "\"cell\": {\"dataset\": \"d\", \"condition\": \"c\"}}",
                      "nomodel.json: field 'cell.model' is missing");
}

static void load_empty_folder(void **state) {
    (void)state;
    expect_load_error(NULL, NULL, "no results in /tmp/euar_test_report_");
    expect_load_error("x.json.tmp.99", "{", "run `make suite-missing` first");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(aggregate_mean_std_n),
        cmocka_unit_test(aggregate_two_seeds),
        cmocka_unit_test(aggregate_single_seed),
        cmocka_unit_test(aggregate_failed_group),
        cmocka_unit_test(aggregate_skips_temp_files),
        cmocka_unit_test(table_cells),
        cmocka_unit_test(table_row_order),
        cmocka_unit_test(table_failed_missing),
        cmocka_unit_test(table_test_selection),
        cmocka_unit_test(table_settings_line),
        cmocka_unit_test(table_classification),
        cmocka_unit_test(table_metric_option),
        cmocka_unit_test(csv_rows),
        cmocka_unit_test(metric_names_known),
        cmocka_unit_test(load_malformed_json),
        cmocka_unit_test(load_newer_version),
        cmocka_unit_test(load_missing_field),
        cmocka_unit_test(load_empty_folder),
    };
    return cmocka_run_group_tests(tests, setup_main, teardown_main);
}
