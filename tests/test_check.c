/* The regression gate of `euar check` on hand-made result files and baselines in a temporary
 * folder.
 *
 * Folder "fresh" (suite missing, dataset synth-mosi, regression, one seed each):
 *   T/euar    mib_acc2 0.60, mib_mae 1.00
 *   T+A/euar  mib_acc2 0.70, mib_mae 0.90
 * Folder "failed": T/euar seed 1 ok (mib_acc2 0.60), seed 2 failed at epoch 5.
 * Each test writes its own baseline; the default tolerance of both metrics is 0.02. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/metrics.h"
#include "report/check.h"

static char root_dir[256];
static char fresh_dir[300];
static char failed_dir[300];
static char baseline_path[300];

/* Fails with the whole text when needle is not in it. */
static void check_contains(const char *text, const char *needle) {
    if (!text || !strstr(text, needle))
        fail_msg("expected to find\n  %s\nin\n%s", needle, text ? text : "(null)");
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_result(const char *dir, const char *condition, int seed, const char *failure,
                         const char *test) {
    char path[400], text[2048];
    snprintf(path, sizeof(path), "%s/%s-%d.json", dir, condition, seed);
    snprintf(text, sizeof(text),
             "{\"format\": \"euar-bench-result\", \"format_version\": 1,\n"
             " \"status\": \"%s\", \"failure\": %s,\n"
             " \"cell\": {\"suite\": \"missing\", \"dataset\": \"synth-mosi\",\n"
             "   \"condition\": \"%s\", \"model\": \"euar\", \"seed\": %d},\n"
             " \"task\": \"regression\", \"select\": \"valid-loss\",\n"
             " \"metrics\": {\"valid\": {}, \"test\": %s}, \"routing\": {}}\n",
             failure ? "failed" : "ok", failure ? failure : "null", condition, seed,
             test ? test : "{}");
    write_text(path, text);
}

/* Writes a baseline whose groups array is groups_json. */
static void write_baseline(const char *groups_json) {
    char text[4096];
    snprintf(text, sizeof(text),
             "{\"format\": \"euar-bench-baseline\", \"format_version\": 1,\n"
             " \"created\": \"2026-01-01T00:00:00Z\", \"build\": {\"version\": \"0.1.0\"},\n"
             " \"tolerances\": {\"mib_acc2\": 0.02, \"mib_mae\": 0.02},\n"
             " \"groups\": %s}\n",
             groups_json);
    write_text(baseline_path, text);
}

/* A baseline of group T/euar with the given means; other groups are left out. */
static void write_baseline_t(double acc2, double mae) {
    char groups[1024];
    snprintf(groups, sizeof(groups),
             "[{\"suite\": \"missing\", \"dataset\": \"synth-mosi\", \"condition\": \"T\",\n"
             "  \"model\": \"euar\", \"metrics\": {\n"
             "   \"mib_acc2\": {\"mean\": %.17g, \"std\": 0, \"n\": 1},\n"
             "   \"mib_mae\": {\"mean\": %.17g, \"std\": 0, \"n\": 1}}}]",
             acc2, mae);
    write_baseline(groups);
}

static int setup(void **state) {
    (void)state;
    snprintf(root_dir, sizeof(root_dir), "/tmp/euar_test_check_XXXXXX");
    assert_non_null(mkdtemp(root_dir));
    snprintf(fresh_dir, sizeof(fresh_dir), "%s/fresh", root_dir);
    snprintf(failed_dir, sizeof(failed_dir), "%s/failed", root_dir);
    snprintf(baseline_path, sizeof(baseline_path), "%s/baseline.json", root_dir);
    assert_int_equal(make_dirs(fresh_dir), 0);
    assert_int_equal(make_dirs(failed_dir), 0);
    write_result(fresh_dir, "T", 1, NULL, "{\"mib_acc2\": 0.60, \"mib_mae\": 1.00}");
    write_result(fresh_dir, "T+A", 1, NULL, "{\"mib_acc2\": 0.70, \"mib_mae\": 0.90}");
    write_result(failed_dir, "T", 1, NULL, "{\"mib_acc2\": 0.60, \"mib_mae\": 1.00}");
    write_result(failed_dir, "T", 2, "{\"epoch\": 5, \"reason\": \"training loss is NaN\"}",
                 NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char command[400];
    snprintf(command, sizeof(command), "rm -rf '%s'", root_dir);
    assert_int_equal(system(command), 0);
    return 0;
}

/* Loads the baseline file and the results of dir and compares them. */
static void compare(CheckReport *report, CheckBaseline *baseline, ReportSet *set,
                    const char *dir, const CheckTolerances *tol) {
    assert_int_equal(check_baseline_load(baseline, baseline_path), 0);
    assert_int_equal(report_load_dir(set, dir), 0);
    check_compare(report, baseline, set, tol);
}

static void release(CheckReport *report, CheckBaseline *baseline, ReportSet *set) {
    check_report_free(report);
    report_free(set);
    check_baseline_free(baseline);
}

/* Returns the row of a metric of group condition/euar, or NULL. */
static const CheckRow *find_row(const CheckReport *report, const char *condition,
                                const char *metric) {
    for (int i = 0; i < report->num_rows; i++) {
        const CheckRow *row = &report->rows[i];
        int same_metric = metric ? row->metric && strcmp(row->metric, metric) == 0
                                 : row->metric == NULL;
        if (strcmp(row->condition, condition) == 0 && same_metric)
            return row;
    }
    return NULL;
}

/* A baseline with both groups of fresh_dir at their exact values. */
static void write_baseline_both(void) {
    write_baseline(
        "[{\"suite\": \"missing\", \"dataset\": \"synth-mosi\", \"condition\": \"T\",\n"
        "  \"model\": \"euar\", \"metrics\": {\"mib_acc2\": {\"mean\": 0.60},\n"
        "  \"mib_mae\": {\"mean\": 1.00}}},\n"
        " {\"suite\": \"missing\", \"dataset\": \"synth-mosi\", \"condition\": \"T+A\",\n"
        "  \"model\": \"euar\", \"metrics\": {\"mib_acc2\": {\"mean\": 0.70},\n"
        "  \"mib_mae\": {\"mean\": 0.90}}}]");
}

/* A test-time condition of a noise suite is gated like a group of its own: a worse value in
 * a result's conditions array fails, whatever the clean column says. */
static void check_gates_test_conditions(void **state) {
    (void)state;
    char dir[400], path[500], text[2048];
    snprintf(dir, sizeof(dir), "%s/noisy", root_dir);
    assert_int_equal(make_dirs(dir), 0);
    const char *accs[2] = {"0.80", "0.40"};
    for (int round = 0; round < 2; round++) {
        snprintf(path, sizeof(path), "%s/r.json", dir);
        snprintf(text, sizeof(text),
                 "{\"format\": \"euar-bench-result\", \"format_version\": 1,\n"
                 " \"status\": \"ok\", \"failure\": null,\n"
                 " \"cell\": {\"suite\": \"noise\", \"dataset\": \"synth-nyud\",\n"
                 "   \"condition\": \"clean\", \"model\": \"euar\", \"seed\": 1},\n"
                 " \"task\": \"classification\", \"select\": \"valid-loss\",\n"
                 " \"metrics\": {\"valid\": {}, \"test\": {\"acc\": 0.9}}, \"routing\": {},\n"
                 " \"conditions\": [{\"label\": \"g10\", \"noise\": \"gaussian:eps=10\",\n"
                 "   \"metrics\": {\"acc\": %s}, \"routing\": {}}]}\n",
                 accs[round]);
        write_text(path, text);
        if (round == 0) {
            assert_int_equal(check_baseline_write(baseline_path, dir, NULL, 0, NULL), 0);
            char *saved = read_file_text(baseline_path, NULL);
            assert_non_null(strstr(saved, "\"condition\": \"g10\""));
            free(saved);
        }
    }
    char *table = NULL;
    int status = check_run(dir, baseline_path, NULL, 0, &table);
    assert_int_equal(status, EUAR_CHECK_FAIL);
    check_contains(table, "noise/synth-nyud/g10/euar");
    check_contains(table, "REGRESSED");
    free(table);
}

static void check_equal_passes(void **state) {
    (void)state;
    write_baseline_both();
    char *table = NULL;
    int status = check_run(fresh_dir, baseline_path, NULL, 0, &table);
    assert_int_equal(status, EUAR_CHECK_PASS);
    check_contains(table, "4 ok, 0 improved, 0 regressed, 0 missing");
    check_contains(table, "PASS");
    free(table);
}

static void check_worse_fails(void **state) {
    (void)state;
    write_baseline_t(0.65, 1.00);
    char *table = NULL;
    int status = check_run(fresh_dir, baseline_path, NULL, 0, &table);
    assert_int_equal(status, EUAR_CHECK_FAIL);
    check_contains(table, "missing/synth-mosi/T/euar");
    check_contains(table, "REGRESSED");
    check_contains(table, "FAIL");
    free(table);

    CheckReport report;
    CheckBaseline baseline;
    ReportSet set;
    compare(&report, &baseline, &set, fresh_dir, NULL);
    const CheckRow *row = find_row(&report, "T", "mib_acc2");
    assert_non_null(row);
    assert_int_equal(row->status, EUAR_ROW_REGRESSED);
    assert_true(fabs(row->delta - -0.05) < 1e-12);
    assert_true(fabs(row->tolerance - 0.02) < 1e-12);
    const CheckRow *mae = find_row(&report, "T", "mib_mae");
    assert_non_null(mae);
    assert_int_equal(mae->status, EUAR_ROW_OK);
    assert_int_equal(report.counts[EUAR_ROW_REGRESSED], 1);
    release(&report, &baseline, &set);
}

static void check_within_tolerance(void **state) {
    (void)state;
    /* 0.62 - 0.60 equals the tolerance 0.02 in decimal, so it is not beyond it. */
    write_baseline_t(0.62, 0.99);
    char *table = NULL;
    assert_int_equal(check_run(fresh_dir, baseline_path, NULL, 0, &table), EUAR_CHECK_PASS);
    check_contains(table, "2 ok, 0 improved, 0 regressed");
    free(table);
}

static void check_improved_passes(void **state) {
    (void)state;
    write_baseline_t(0.55, 1.00);
    char *table = NULL;
    assert_int_equal(check_run(fresh_dir, baseline_path, NULL, 0, &table), EUAR_CHECK_PASS);
    check_contains(table, "improved; update the baseline");
    free(table);

    CheckReport report;
    CheckBaseline baseline;
    ReportSet set;
    compare(&report, &baseline, &set, fresh_dir, NULL);
    const CheckRow *row = find_row(&report, "T", "mib_acc2");
    assert_non_null(row);
    assert_int_equal(row->status, EUAR_ROW_IMPROVED);
    release(&report, &baseline, &set);
}

static void check_missing_group(void **state) {
    (void)state;
    write_baseline(
        "[{\"suite\": \"missing\", \"dataset\": \"synth-mosi\", \"condition\": \"V\",\n"
        "  \"model\": \"euar\", \"metrics\": {\"mib_acc2\": {\"mean\": 0.5}}}]");
    char *table = NULL;
    assert_int_equal(check_run(fresh_dir, baseline_path, NULL, 0, &table), EUAR_CHECK_FAIL);
    check_contains(table, "missing/synth-mosi/V/euar");
    check_contains(table, "MISSING (group not in the results)");
    free(table);
}

static void check_missing_metric(void **state) {
    (void)state;
    write_baseline(
        "[{\"suite\": \"missing\", \"dataset\": \"synth-mosi\", \"condition\": \"T\",\n"
        "  \"model\": \"euar\", \"metrics\": {\"acc7\": {\"mean\": 0.3}}}]");
    CheckReport report;
    CheckBaseline baseline;
    ReportSet set;
    compare(&report, &baseline, &set, fresh_dir, NULL);
    const CheckRow *row = find_row(&report, "T", "acc7");
    assert_non_null(row);
    assert_int_equal(row->status, EUAR_ROW_MISSING);
    assert_int_equal(check_report_status(&report), EUAR_CHECK_FAIL);
    release(&report, &baseline, &set);
}

static void check_new_group_listed(void **state) {
    (void)state;
    write_baseline_t(0.60, 1.00);
    char *table = NULL;
    assert_int_equal(check_run(fresh_dir, baseline_path, NULL, 0, &table), EUAR_CHECK_PASS);
    check_contains(table, "missing/synth-mosi/T+A/euar");
    check_contains(table, "new (1 finished seeds, not in the baseline)");
    free(table);

    CheckReport report;
    CheckBaseline baseline;
    ReportSet set;
    compare(&report, &baseline, &set, fresh_dir, NULL);
    assert_int_equal(report.counts[EUAR_ROW_NEW], 1);
    const CheckRow *row = find_row(&report, "T+A", NULL);
    assert_non_null(row);
    assert_int_equal(row->status, EUAR_ROW_NEW);
    release(&report, &baseline, &set);
}

static void check_mae_lower_better(void **state) {
    (void)state;
    CheckReport report;
    CheckBaseline baseline;
    ReportSet set;

    /* Fresh MAE 1.00 against 0.90: higher MAE is worse. */
    write_baseline_t(0.60, 0.90);
    compare(&report, &baseline, &set, fresh_dir, NULL);
    const CheckRow *row = find_row(&report, "T", "mib_mae");
    assert_non_null(row);
    assert_int_equal(row->status, EUAR_ROW_REGRESSED);
    release(&report, &baseline, &set);

    /* Fresh MAE 1.00 against 1.10: lower MAE is better. */
    write_baseline_t(0.60, 1.10);
    compare(&report, &baseline, &set, fresh_dir, NULL);
    row = find_row(&report, "T", "mib_mae");
    assert_non_null(row);
    assert_int_equal(row->status, EUAR_ROW_IMPROVED);
    assert_int_equal(check_report_status(&report), EUAR_CHECK_PASS);
    release(&report, &baseline, &set);
}

static void check_failed_seed_fails(void **state) {
    (void)state;
    write_baseline_t(0.60, 1.00);
    char *table = NULL;
    assert_int_equal(check_run(failed_dir, baseline_path, NULL, 0, &table), EUAR_CHECK_FAIL);
    check_contains(table, "FAILED (1 of 2 seeds failed: training loss is NaN (epoch 5))");
    free(table);
}

static void tolerance_option_overrides(void **state) {
    (void)state;
    write_baseline_t(0.65, 1.00);
    CheckTolerances tol;
    memset(&tol, 0, sizeof(tol));
    assert_int_equal(check_tolerance_parse(&tol, "mib_acc2=0.1"), 0);
    assert_int_equal(check_run(fresh_dir, baseline_path, &tol, 0, NULL), EUAR_CHECK_PASS);

    /* A later entry for the same metric replaces the earlier one. */
    assert_int_equal(check_tolerance_parse(&tol, "mib_acc2=0.01"), 0);
    assert_int_equal(tol.count, 1);
    assert_int_equal(check_run(fresh_dir, baseline_path, &tol, 0, NULL), EUAR_CHECK_FAIL);

    /* --default-tolerance covers the metrics without their own entry. */
    CheckTolerances loose;
    memset(&loose, 0, sizeof(loose));
    assert_int_equal(check_default_tolerance_parse(&loose, "0.06"), 0);
    assert_int_equal(check_run(fresh_dir, baseline_path, &loose, 0, NULL), EUAR_CHECK_PASS);
}

static void tolerance_bad_input(void **state) {
    (void)state;
    CheckTolerances tol;
    memset(&tol, 0, sizeof(tol));
    assert_int_equal(check_tolerance_parse(&tol, "accuracy=0.1"), -1);
    check_contains(err_get(), "unknown metric 'accuracy'");
    assert_int_equal(check_tolerance_parse(&tol, "mib_acc2=-1"), -1);
    check_contains(err_get(), "value '-1'");
    assert_int_equal(check_tolerance_parse(&tol, "mib_acc2"), -1);
    check_contains(err_get(), "METRIC=ABS");
    assert_int_equal(check_default_tolerance_parse(&tol, "nan"), -1);
    check_contains(err_get(), "'nan'");
    assert_int_equal(tol.count, 0);
}

static void baseline_malformed_json(void **state) {
    (void)state;
    write_text(baseline_path, "{\"format\": \"euar-bench-baseline\",\n \"groups\": [\n");
    assert_int_equal(check_run(fresh_dir, baseline_path, NULL, 0, NULL), EUAR_CHECK_ERROR);
    check_contains(err_get(), baseline_path);
    check_contains(err_get(), "invalid JSON at line");
}

static void baseline_bad_fields(void **state) {
    (void)state;
    CheckBaseline baseline;
    write_baseline(
        "[{\"suite\": \"missing\", \"dataset\": \"synth-mosi\", \"condition\": \"T\",\n"
        "  \"model\": \"euar\", \"metrics\": {\"mib_acc2\": {\"mean\": \"high\"}}}]");
    assert_int_equal(check_baseline_load(&baseline, baseline_path), -1);
    check_contains(err_get(), baseline_path);
    check_contains(err_get(), "groups[0].metrics.mib_acc2.mean");
    check_contains(err_get(), "\"high\"");

    write_baseline(
        "[{\"suite\": \"missing\", \"dataset\": \"synth-mosi\", \"condition\": \"T\",\n"
        "  \"model\": \"euar\", \"metrics\": {\"accuracy\": {\"mean\": 0.5}}}]");
    assert_int_equal(check_baseline_load(&baseline, baseline_path), -1);
    check_contains(err_get(), "groups[0].metrics.accuracy");

    write_text(baseline_path, "{\"format\": \"euar-bench-baseline\", \"format_version\": 2}");
    assert_int_equal(check_baseline_load(&baseline, baseline_path), -1);
    check_contains(err_get(), "format_version 2 is newer");

    write_text(baseline_path, "{\"format\": \"euar-bench-result\", \"format_version\": 1}");
    assert_int_equal(check_baseline_load(&baseline, baseline_path), -1);
    check_contains(err_get(), "not a baseline file");
}

static void baseline_unreadable(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof(path), "%s/no-such-baseline.json", root_dir);
    assert_int_equal(check_run(fresh_dir, path, NULL, 0, NULL), EUAR_CHECK_ERROR);
    check_contains(err_get(), "no-such-baseline.json");
}

static void baseline_write_roundtrip(void **state) {
    (void)state;
    const char *metrics[] = {"mib_acc2"};
    CheckTolerances tol;
    memset(&tol, 0, sizeof(tol));
    assert_int_equal(check_tolerance_parse(&tol, "mib_acc2=0.005"), 0);
    assert_int_equal(check_baseline_write(baseline_path, fresh_dir, metrics, 1, &tol), 0);

    CheckBaseline baseline;
    assert_int_equal(check_baseline_load(&baseline, baseline_path), 0);
    assert_int_equal(baseline.num_groups, 2);
    assert_int_equal(baseline.groups[0].num_metrics, 1);
    assert_string_equal(baseline.groups[0].metrics[0].name, "mib_acc2");
    assert_int_equal(baseline.groups[0].metrics[0].n, 1);
    assert_int_equal(baseline.num_tolerances, 1);
    assert_true(fabs(baseline.tolerance_values[0] - 0.005) < 1e-15);
    assert_string_equal(baseline.version, EUAR_VERSION);
    check_baseline_free(&baseline);
    /* Same results, same means to the bit. */
    char *table = NULL;
    assert_int_equal(check_run(fresh_dir, baseline_path, NULL, 0, &table), EUAR_CHECK_PASS);
    check_contains(table, "+0.0000");
    free(table);
}

static void baseline_write_rejects(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof(path), "%s/rejected.json", root_dir);
    const char *unknown[] = {"accuracy"};
    assert_int_equal(check_baseline_write(path, fresh_dir, unknown, 1, NULL), -1);
    check_contains(err_get(), "unknown metric 'accuracy'");
    const char *absent[] = {"acc"};
    assert_int_equal(check_baseline_write(path, fresh_dir, absent, 1, NULL), -1);
    check_contains(err_get(), "'acc'");
    assert_int_equal(check_baseline_write(path, failed_dir, NULL, 0, NULL), -1);
    check_contains(err_get(), "seed(s) failed");
    FILE *f = fopen(path, "r");
    assert_null(f);
}

static void direction_covers_metrics(void **state) {
    (void)state;
    const char *names[EUAR_METRICS_MAX];
    double values[EUAR_METRICS_MAX];
    RegressionMetrics regression = {0};
    ClassMetrics classification = {0};
    int count = metrics_regression_list(&regression, names, values, EUAR_METRICS_MAX);
    for (int i = 0; i < count; i++) {
        if (check_metric_direction(names[i]) == 0)
            fail_msg("regression metric %s has no direction", names[i]);
    }
    count = metrics_classification_list(&classification, names, values, EUAR_METRICS_MAX);
    for (int i = 0; i < count; i++) {
        if (check_metric_direction(names[i]) == 0)
            fail_msg("classification metric %s has no direction", names[i]);
    }
    assert_int_equal(check_metric_direction("loss"), -1);
    assert_int_equal(check_metric_direction("mmsa_mae"), -1);
    assert_int_equal(check_metric_direction("mib_corr"), 1);
    assert_int_equal(check_metric_direction("acc"), 1);
    assert_int_equal(check_metric_direction("accuracy"), 0);
    assert_true(check_default_tolerance("accuracy") < 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_equal_passes),
        cmocka_unit_test(check_gates_test_conditions),
        cmocka_unit_test(check_worse_fails),
        cmocka_unit_test(check_within_tolerance),
        cmocka_unit_test(check_improved_passes),
        cmocka_unit_test(check_missing_group),
        cmocka_unit_test(check_missing_metric),
        cmocka_unit_test(check_new_group_listed),
        cmocka_unit_test(check_mae_lower_better),
        cmocka_unit_test(check_failed_seed_fails),
        cmocka_unit_test(tolerance_option_overrides),
        cmocka_unit_test(tolerance_bad_input),
        cmocka_unit_test(baseline_malformed_json),
        cmocka_unit_test(baseline_bad_fields),
        cmocka_unit_test(baseline_unreadable),
        cmocka_unit_test(baseline_write_roundtrip),
        cmocka_unit_test(baseline_write_rejects),
        cmocka_unit_test(direction_covers_metrics),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
