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
 * Temporary files (*.json.tmp.*, *.tmp.*.json) hold invalid JSON and must be skipped.
 *
 * Folder "noise": suite noise, dataset synth-mvsa (classification), training condition clean,
 * models euar (model_index 0) and concat (1), seeds k = 1-3, each evaluated under sp5, sp10
 * (saltpepper eps 5 and 10), g5 and g10 (gaussian eps 5 and 10). Accuracy in %:
 *   euar    clean 80/82/84, sp5 70/72/74, sp10 60/62/64, g5 75/77/79, g10 65/66/67
 *   concat  clean 80/80/80, sp5 60/65/70, sp10 50/55/60, g5 70/70/70, g10 50/60/70
 * euar routing, image: clean load [0.5, 0.25, 0.25, 0] and sigma2 k * [1, 2, 4, null], whose
 * load-weighted mean is 2k (mean 4, std 2); under a condition load [0.4, 0.3, 0.2, 0.1] and
 * sigma2 c k for every expert, c = 3, 4, 2.5, 6 for sp5, sp10, g5, g10 (mean 2c, std c).
 * Text: load 0.25 and sigma2 0.5 for every expert everywhere. concat has no routing. */
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
static char noise_dir[256];

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

/* Writes a result file; hash, when not NULL, is its top-level "hash". */
static void write_result_hash(const char *dir, const char *name, const FakeResult *r,
                              const char *hash) {
    char text[4096], hash_field[64] = "";
    if (hash)
        snprintf(hash_field, sizeof(hash_field), "\"hash\": \"%s\", ", hash);
    snprintf(text, sizeof(text),
             "{%s\"format\": \"euar-bench-result\", \"format_version\": %d,\n"
             " \"status\": \"%s\", \"failure\": %s,\n"
             " \"cell\": {\"suite\": \"missing\", \"dataset\": \"%s\", \"condition\": \"%s\",\n"
             "   \"condition_index\": %d, \"model\": \"%s\", \"model_index\": %d, \"seed\": %d,\n"
             "   \"settings\": {\"epochs\": \"100\", \"batch\": \"16\", \"lr\": \"0.001\",\n"
             "     \"experts\": \"%s\", \"top_k\": \"3\", \"hidden\": \"128\",\n"
             "     \"select\": \"%s\", \"protocol\": \"mib\"}},\n"
             " \"task\": \"%s\", \"num_classes\": 0, \"select\": \"%s\", \"selected_epoch\": 7,\n"
             " \"metrics\": {\"valid\": {\"loss\": 1.0}, \"test\": %s},\n"
             " \"curve\": [], \"routing\": {}}\n",
             hash_field, r->version ? r->version : 1, r->failure ? "failed" : "ok",
             r->failure ? r->failure : "null", r->dataset, r->condition, r->condition_index,
             r->model, r->model_index, r->seed, r->experts ? r->experts : "8",
             r->select ? r->select : "valid-loss", r->task ? r->task : "regression",
             r->select ? r->select : "valid-loss", r->test ? r->test : "{}");
    write_text(dir, name, text);
}

static void write_result(const char *dir, const char *name, const FakeResult *r) {
    write_result_hash(dir, name, r, NULL);
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
         "{\"epoch\": 12, \"kind\": \"NaN loss\", \"reason\": \"training loss is NaN\"}",
         NULL, 0},
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
    assert_string_equal(g->failure_short, "failed (NaN loss, epoch 12)");
    assert_null(report_group_metric(g, "mib_acc2"));
    assert_null(report_find(&set, "missing", "synth-mosi", "T", "concat"));
    /* A file without failure.kind shows its reason in the short form. */
    const ReportGroup *partial = report_find(&set, "missing", "synth-mosi", "T+A", "euar");
    assert_non_null(partial);
    assert_string_equal(partial->failure_short, "failed (parameters exploded, epoch 3)");
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
    assert_contains(md, "| T | failed (NaN loss, epoch 12) [3] | — |");
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
    /* One seed: the value alone, without a standard deviation of 0. */
    assert_contains(md, "| clean | 80.0 / 75.0 |");
    assert_contains(md, "value of n = 1 seed, so no standard deviation.");
    free(md);
}

static void table_metric_option(void **state) {
    (void)state;
    const char *metrics[] = {"acc7", "loss", "mmsa_mae"};
    ReportOptions options = {.title = "results", .metrics = metrics, .num_metrics = 3};
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
    assert_contains(csv, "\nmissing,fmnist,clean,concat,acc,0.8,,1\n");
    /* A cell whose seeds all failed has the failure text in place of the mean. */
    assert_contains(csv, "\nmissing,synth-mosi,T,euar,mib_acc2,\"failed (NaN loss, epoch 12)\",,0\n");
    assert_contains(csv, "\nmissing,synth-mosi,T,euar,acc7,\"failed (NaN loss, epoch 12)\",,0\n");
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
    expect_load_error(NULL, NULL, "no result files in /tmp/euar_test_report_");
    expect_load_error("x.json.tmp.99", "{", "run `euar suite FILE --results /tmp/euar_test");
    expect_load_error(NULL, NULL, "(make suite-missing for the default suite)");
}

static void load_absent_folder(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, "/nonexistent/results"), -1);
    assert_contains(err_get(), "cannot open results folder /nonexistent/results");
    assert_contains(err_get(), "euar suite FILE --results /nonexistent/results");
}

/* ---- a folder with suite.json, the runner's record of the suite ----
 *
 * The record lists suite missing, quick variant, dataset synth-mosi with max_train 128, and four
 * cells: T+A/euar seeds 1 and 2 (hashes a1, a2), T/euar seed 1 (b1) and the grouped cell
 * clean/euar seed 1 of dataset nyud (c1, conditions clean and sp5). Results exist for a1 and
 * a2, and a stale one (hash old) of T+A/euar seed 1 from earlier settings. */
static const char record_json[] =
    "{\"format\": \"euar-bench-suite\", \"format_version\": 1, \"source\": \"suites/rec.json\",\n"
    " \"name\": \"missing\", \"quick\": true,\n"
    " \"datasets\": [{\"label\": \"synth-mosi\", \"settings\": {\"epochs\": \"2\", "
    "\"max_train\": \"128\"},\n"
    "   \"conditions\": [{\"label\": \"T+A\", \"noise\": \"missing:keep=text,audio\"}, "
    "{\"label\": \"T\", \"noise\": \"missing:keep=text\"}]},\n"
    "  {\"label\": \"nyud\", \"settings\": {\"epochs\": \"2\"}, \"conditions\": [{\"label\": "
    "\"clean\", \"noise\": \"none\"}, {\"label\": \"sp5\", \"noise\": \"saltpepper:eps=5\"}]}],\n"
    " \"cells\": [\n"
    "  {\"hash\": \"a1\", \"dataset\": \"synth-mosi\", \"condition\": \"T+A\", "
    "\"condition_index\": 0, \"model\": \"euar\", \"model_index\": 0, \"seed\": 1},\n"
    "  {\"hash\": \"a2\", \"dataset\": \"synth-mosi\", \"condition\": \"T+A\", "
    "\"condition_index\": 0, \"model\": \"euar\", \"model_index\": 0, \"seed\": 2},\n"
    "  {\"hash\": \"b1\", \"dataset\": \"synth-mosi\", \"condition\": \"T\", "
    "\"condition_index\": 1, \"model\": \"euar\", \"model_index\": 0, \"seed\": 1},\n"
    "  {\"hash\": \"c1\", \"dataset\": \"nyud\", \"condition\": \"clean\", "
    "\"condition_index\": 0, \"model\": \"euar\", \"model_index\": 0, \"seed\": 1, "
    "\"test_conditions\": [\"clean\", \"sp5\"]}]}\n";

static void write_record_folder(char *dir, size_t cap) {
    make_temp_dir(dir, cap);
    write_text(dir, "suite.json", record_json);
    FakeResult r = {"synth-mosi", NULL, "T+A", "euar", NULL, NULL, 0, 0, 1, NULL,
                    "{\"mib_acc2\": 0.5, \"mib_f1\": 0.5, \"acc7\": 0.2}", 0};
    write_result_hash(dir, "a1.json", &r, "a1");
    r.seed = 2;
    r.test = "{\"mib_acc2\": 0.7, \"mib_f1\": 0.5, \"acc7\": 0.2}";
    write_result_hash(dir, "a2.json", &r, "a2");
    /* The same cell under earlier settings: a mib_acc2 of 0.1 would pull the mean down. */
    r.seed = 1;
    r.test = "{\"mib_acc2\": 0.1, \"mib_f1\": 0.5, \"acc7\": 0.2}";
    write_result_hash(dir, "old.json", &r, "old");
}

static void record_filters_stale(void **state) {
    (void)state;
    char dir[256];
    write_record_folder(dir, sizeof(dir));
    ReportSet set;
    assert_int_equal(report_load_dir(&set, dir), 0);
    assert_int_equal(set.has_record, 1);
    assert_int_equal(set.num_files, 2);
    assert_int_equal(set.num_left_out, 1);
    assert_int_equal(set.num_cells, 4);
    assert_int_equal(set.num_missing, 2);
    const ReportGroup *g = report_find(&set, "missing", "synth-mosi", "T+A", "euar");
    assert_non_null(g);
    assert_int_equal(g->n_ok, 2);
    assert_int_equal(g->n_expected, 2);
    const MetricStat *acc2 = report_group_metric(g, "mib_acc2");
    assert_non_null(acc2);
    assert_near(acc2->mean, 0.6, 1e-12);
    report_free(&set);
    remove_dir(dir);
}

static void record_missing_cells(void **state) {
    (void)state;
    char dir[256];
    write_record_folder(dir, sizeof(dir));
    ReportSet set;
    assert_int_equal(report_load_dir(&set, dir), 0);
    const ReportGroup *t = report_find(&set, "missing", "synth-mosi", "T", "euar");
    assert_non_null(t);
    assert_int_equal(t->n_ok + t->n_failed, 0);
    assert_int_equal(t->condition_index, 1);
    const ReportGroup *nyud = report_find(&set, "missing", "nyud", "clean", "euar");
    assert_non_null(nyud);
    assert_int_equal(nyud->num_tests, 1);
    assert_string_equal(nyud->tests[0].label, "sp5");
    assert_string_equal(nyud->tests[0].noise, "saltpepper:eps=5");
    /* Tables follow the suite's dataset order, not name order (nyud sorts first by name). */
    assert_int_equal(report_dataset_rank(&set, "synth-mosi"), 0);
    assert_int_equal(report_dataset_rank(&set, "nyud"), 1);
    assert_int_equal(report_dataset_rank(&set, "absent"), 2);
    char *md = report_render_markdown(&set, NULL);
    report_free(&set);
    const char *mosi_table = strstr(md, "## missing: synth-mosi");
    const char *nyud_table = strstr(md, "## missing: nyud");
    assert_non_null(mosi_table);
    assert_non_null(nyud_table);
    assert_true(mosi_table < nyud_table);
    assert_contains(md, "2 of 4 cells have no result yet; the tables show — for them.");
    assert_contains(md, "1 result file of the folder was left out because its hash matches no "
                        "cell of the suite");
    assert_contains(md, "| T | — |");
    assert_contains(md, "## missing: nyud\n\nNo result yet for this dataset.");
    assert_contains(md, "| method | clean | sp5 |");
    assert_contains(md, "| euar | — | — |");
    free(md);
    remove_dir(dir);
}

static void record_quick_settings(void **state) {
    (void)state;
    char dir[256];
    write_record_folder(dir, sizeof(dir));
    /* A result whose settings include max_train 128, which differs from the default 0. */
    write_text(dir, "a1.json",
               "{\"hash\": \"a1\", \"format\": \"euar-bench-result\", \"format_version\": 1, "
               "\"status\": \"ok\", \"task\": \"regression\", \"cell\": {\"suite\": \"missing\", "
               "\"dataset\": \"synth-mosi\", \"condition\": \"T+A\", \"condition_index\": 0, "
               "\"model\": \"euar\", \"model_index\": 0, \"seed\": 1, \"settings\": "
               "{\"epochs\": \"2\", \"max_train\": \"128\", \"eval_every\": \"1\"}}, "
               "\"metrics\": {\"test\": {\"mib_acc2\": 0.5}}}");
    ReportSet set;
    assert_int_equal(report_load_dir(&set, dir), 0);
    assert_int_equal(set.quick, 1);
    char *md = report_render_markdown(&set, NULL);
    report_free(&set);
    assert_contains(md, "Suite missing, quick variant");
    assert_contains(md, "Settings (quick variant, `euar suite --quick`): epochs=2");
    assert_contains(md, "max_train=128");
    /* eval_every keeps its default 1, so the line leaves it out. */
    assert_null(strstr(md, "eval_every"));
    free(md);
    remove_dir(dir);
}

static void record_all_stale(void **state) {
    (void)state;
    char dir[256];
    make_temp_dir(dir, sizeof(dir));
    write_text(dir, "suite.json", record_json);
    FakeResult r = {"synth-mosi", NULL, "T+A", "euar", NULL, NULL, 0, 0, 1, NULL, NULL, 0};
    write_result_hash(dir, "old.json", &r, "old");
    ReportSet set;
    assert_int_equal(report_load_dir(&set, dir), -1);
    assert_contains(err_get(), "no result file in");
    assert_contains(err_get(), "euar suite suites/rec.json --results");
    remove_dir(dir);
}


/* Test-time conditions of the noise folder: labels, specs, and a sigma2 multiplier. */
static const char *const noise_labels[4] = {"sp5", "sp10", "g5", "g10"};
static const char *const noise_specs[4] = {
    "saltpepper:eps=5,p=0.5,convention=10,phase=test",
    "saltpepper:eps=10,p=0.5,convention=10,phase=test",
    "gaussian:eps=5,p=0.5,scale=10,range=clip,field=fresh,phase=test",
    "gaussian:eps=10,p=0.5,scale=10,range=clip,field=fresh,phase=test",
};
static const double noise_sigma2_scale[4] = {3.0, 4.0, 2.5, 6.0};
/* Accuracy [model][seed][clean, sp5, sp10, g5, g10]. */
static const double noise_acc[2][3][5] = {
    {{0.80, 0.70, 0.60, 0.75, 0.65}, {0.82, 0.72, 0.62, 0.77, 0.66},
     {0.84, 0.74, 0.64, 0.79, 0.67}},
    {{0.80, 0.60, 0.50, 0.70, 0.50}, {0.80, 0.65, 0.55, 0.70, 0.60},
     {0.80, 0.70, 0.60, 0.70, 0.70}},
};

/* Writes the routing object of euar for seed k; c = 0 gives the clean routing. */
static void euar_routing(char *buf, size_t cap, int k, double c) {
    const char *text = "\"text\": {\"load\": [0.25, 0.25, 0.25, 0.25], "
                       "\"sigma2\": [0.5, 0.5, 0.5, 0.5]}";
    if (c == 0.0)
        snprintf(buf, cap, "{\"image\": {\"load\": [0.5, 0.25, 0.25, 0], \"sigma2\": "
                 "[%d, %d, %d, null]}, %s}", k, 2 * k, 4 * k, text);
    else
        snprintf(buf, cap, "{\"image\": {\"load\": [0.4, 0.3, 0.2, 0.1], \"sigma2\": "
                 "[%.17g, %.17g, %.17g, %.17g]}, %s}", c * k, c * k, c * k, c * k, text);
}

/* Writes one seed of a model of the noise folder into dir, with the given model name. */
static void write_noise_result(const char *dir, const char *model, int model_index, int m,
                               int k, const char *const *labels) {
    char text[16384], routing[1024], conditions[12288];
    size_t len = 0;
    conditions[0] = '\0';
    for (int c = 0; c < 4; c++) {
        if (m == 0)
            euar_routing(routing, sizeof(routing), k, noise_sigma2_scale[c]);
        else
            snprintf(routing, sizeof(routing), "{}");
        len += (size_t)snprintf(conditions + len, sizeof(conditions) - len,
                                "%s{\"label\": \"%s\", \"noise\": \"%s\", \"metrics\": "
                                "{\"loss\": 1.0, \"acc\": %.17g, \"macro_f1\": 0.5}, "
                                "\"routing\": %s}", c ? ", " : "", labels[c], noise_specs[c],
                                noise_acc[m][k - 1][c + 1], routing);
    }
    if (m == 0)
        euar_routing(routing, sizeof(routing), k, 0.0);
    else
        snprintf(routing, sizeof(routing), "{}");
    snprintf(text, sizeof(text),
             "{\"format\": \"euar-bench-result\", \"format_version\": 1,\n"
             " \"status\": \"ok\", \"failure\": null,\n"
             " \"cell\": {\"suite\": \"noise\", \"dataset\": \"synth-mvsa\", \"condition\": "
             "\"clean\",\n   \"condition_index\": 0, \"model\": \"%s\", \"model_index\": %d, "
             "\"seed\": %d,\n   \"settings\": {\"epochs\": \"10\", \"batch\": \"16\", \"lr\": "
             "\"0.001\", \"experts\": \"4\", \"top_k\": \"2\", \"hidden\": \"64\"}},\n"
             " \"task\": \"classification\", \"num_classes\": 3, \"select\": \"valid-loss\",\n"
             " \"metrics\": {\"valid\": {\"loss\": 1.0}, \"test\": {\"loss\": 1.0, \"acc\": "
             "%.17g, \"macro_f1\": 0.5}},\n \"routing\": %s,\n \"conditions\": [%s]}\n",
             model, model_index, k, noise_acc[m][k - 1][0], routing, conditions);
    char name[64];
    snprintf(name, sizeof(name), "%016x.json", (unsigned)(m * 31 + k * 7 + 5));
    write_text(dir, name, text);
}

static void write_noise_folder(const char *dir, const char *const *models,
                               const char *const *labels) {
    for (int m = 0; m < 2; m++)
        for (int k = 1; k <= 3; k++)
            write_noise_result(dir, models[m], m, m, k, labels);
}

static const char *const noise_models[2] = {"euar", "concat"};

static int setup_noise(void) {
    make_temp_dir(noise_dir, sizeof(noise_dir));
    write_noise_folder(noise_dir, noise_models, noise_labels);
    return 0;
}

static void noise_aggregate_tests(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, noise_dir), 0);
    const ReportGroup *g = report_find(&set, "noise", "synth-mvsa", "clean", "concat");
    assert_non_null(g);
    assert_int_equal(g->num_tests, 4);
    assert_string_equal(g->tests[1].label, "sp10");
    assert_string_equal(g->tests[1].noise, noise_specs[1]);
    const TestStat *g10 = report_group_test(g, "g10");
    assert_non_null(g10);
    assert_int_equal(g10->n, 3);
    const MetricStat *acc = report_metric_find(g10->metrics, g10->num_metrics, "acc");
    assert_non_null(acc);
    assert_near(acc->mean, 0.6, 1e-12);
    assert_near(acc->std, 0.1, 1e-12);
    assert_int_equal(acc->n, 3);
    report_free(&set);
}

/* Clean image sigma2 per seed is the load-weighted 2k, not the plain mean 7k/3. */
static void noise_aggregate_sigma2(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, noise_dir), 0);
    const ReportGroup *g = report_find(&set, "noise", "synth-mvsa", "clean", "euar");
    assert_non_null(g);
    const RoutingStat *image = report_routing_find(g->routing, g->num_routing, "image");
    assert_non_null(image);
    assert_near(image->sigma2_mean, 4.0, 1e-12);
    assert_near(image->sigma2_std, 2.0, 1e-12);
    assert_int_equal(image->sigma2_n, 3);
    assert_int_equal(image->num_experts, 4);
    assert_near(image->load_mean[0], 0.5, 1e-12);
    assert_near(image->load_mean[3], 0.0, 0.0);
    const TestStat *sp10 = report_group_test(g, "sp10");
    assert_non_null(sp10);
    const RoutingStat *noisy = report_routing_find(sp10->routing, sp10->num_routing, "image");
    assert_non_null(noisy);
    assert_near(noisy->sigma2_mean, 8.0, 1e-12);
    assert_near(noisy->sigma2_std, 4.0, 1e-12);
    const ReportGroup *concat = report_find(&set, "noise", "synth-mvsa", "clean", "concat");
    assert_non_null(concat);
    assert_int_equal(concat->num_routing, 0);
    report_free(&set);
}

static char *render_noise(const ReportOptions *options) {
    ReportSet set;
    assert_int_equal(report_load_dir(&set, noise_dir), 0);
    char *text = report_render_markdown(&set, options);
    report_free(&set);
    return text;
}

static void noise_table_cells(void **state) {
    (void)state;
    char *md = render_noise(NULL);
    assert_contains(md, "## noise: synth-mvsa\n");
    assert_contains(md, "\n| method | clean | sp5 | sp10 | g5 | g10 |\n|---|---|---|---|---|---|\n");
    assert_contains(md, "\n| euar | 82.0±2.0 | 72.0±2.0 | 62.0±2.0 | 77.0±2.0 | 66.0±1.0 |\n");
    assert_contains(md, "\n| concat | 80.0±0.0 | 65.0±5.0 | 55.0±5.0 | 70.0±0.0 | 60.0±10.0 |\n");
    assert_contains(md, "Cells: accuracy in %; mean ± sample standard deviation over n = 3 "
                        "seeds.");
    assert_null(strstr(md, "| condition |"));
    free(md);
}

static void noise_table_spec_lines(void **state) {
    (void)state;
    char *md = render_noise(NULL);
    assert_contains(md, "\n- sp5: `saltpepper:eps=5,p=0.5,convention=10,phase=test` (types "
                        "and options: [docs/noise.md](docs/noise.md))\n");
    assert_contains(md, "\n- g10: `gaussian:eps=10,p=0.5,scale=10,range=clip,field=fresh,"
                        "phase=test` (types and options: [docs/noise.md](docs/noise.md))\n");
    ReportOptions options = {.noise_doc = "../../docs/noise.md"};
    char *linked = render_noise(&options);
    assert_contains(linked, "(types and options: [docs/noise.md](../../docs/noise.md))");
    free(linked);
    free(md);
}

static void noise_level_parse(void **state) {
    (void)state;
    NoiseLevel level;
    assert_int_equal(report_noise_level(noise_specs[0], &level), 0);
    assert_string_equal(level.type, "saltpepper");
    assert_string_equal(level.series, "saltpepper");
    assert_near(level.level, 5.0, 0.0);
    assert_int_equal(report_noise_level(noise_specs[3], &level), 0);
    assert_string_equal(level.type, "gaussian");
    assert_near(level.level, 10.0, 0.0);
    assert_int_equal(report_noise_level("blank:ratio=0.5,p=0.5,phase=test", &level), 0);
    assert_string_equal(level.type, "blank");
    assert_string_equal(level.level_key, "ratio");
    assert_near(level.level, 0.5, 0.0);
    assert_int_equal(report_noise_level("blank:ratio=1,p=1@text+gaussian:eps=10,p=0.5@image",
                                        &level), 0);
    assert_string_equal(level.type, "gaussian");
    assert_string_equal(level.series, "blank@text+gaussian@image");
    assert_int_equal(level.num_terms, 2);
    assert_near(level.level, 10.0, 0.0);
    assert_int_equal(report_noise_level("none", &level), -1);
    assert_int_equal(report_noise_level("missing:keep=text,audio,phase=test", &level), -1);
    assert_int_equal(report_noise_level("gaussian:eps=abc", &level), -1);
}

static const Plot *find_plot(const PlotSet *plots, const char *stem) {
    for (int i = 0; i < plots->count; i++)
        if (strcmp(plots->plots[i].stem, stem) == 0)
            return &plots->plots[i];
    fail_msg("no plot %s among %d", stem, plots->count);
    return NULL;
}

static void noise_plot_data(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, noise_dir), 0);
    PlotSet plots;
    report_plots_build(&set, &plots);
    /* accuracy x 2 types, sigma2 of euar x 2 types, load of euar x 2 modalities */
    assert_int_equal(plots.count, 6);
    const Plot *acc = find_plot(&plots, "noise-synth-mvsa-accuracy-saltpepper");
    assert_contains(acc->dat, "\n# level euar.mean euar.std concat.mean concat.std\n"
                              "0 82 2 80 0\n5 72 2 65 5\n10 62 2 55 5\n");
    const Plot *gauss = find_plot(&plots, "noise-synth-mvsa-accuracy-gaussian");
    assert_contains(gauss->dat, "\n0 82 2 80 0\n5 77 2 70 0\n10 66 1 60 10\n");
    const Plot *sigma2 = find_plot(&plots, "noise-synth-mvsa-sigma2-saltpepper-euar");
    assert_contains(sigma2->dat, "\n# level image.mean image.std text.mean text.std\n"
                                 "0 4 2 0.5 0\n5 6 3 0.5 0\n10 8 4 0.5 0\n");
    const Plot *load = find_plot(&plots, "noise-synth-mvsa-load-euar-image");
    assert_contains(load->dat, "\n# expert clean sp10 g10\n0 0.5 0.4 0.4\n1 0.25 0.3 0.3\n"
                               "2 0.25 0.2 0.2\n3 0 0.1 0.1\n");
    assert_contains(acc->gp, "using 1:2:3 with yerrorlines title 'euar'");
    assert_contains(acc->gp, "set output 'noise-synth-mvsa-accuracy-saltpepper.svg'");
    report_plots_free(&plots);
    report_free(&set);
}

static void noise_plot_links(void **state) {
    (void)state;
    ReportSet set;
    assert_int_equal(report_load_dir(&set, noise_dir), 0);
    PlotSet plots;
    report_plots_build(&set, &plots);
    ReportOptions options = {.plots = &plots, .plots_rendered = 1};
    char *md = report_render_markdown(&set, &options);
    assert_contains(md, "- [accuracy under saltpepper noise, synth-mvsa]"
                        "(plots/noise-synth-mvsa-accuracy-saltpepper.png) ([SVG]"
                        "(plots/noise-synth-mvsa-accuracy-saltpepper.svg), [data]"
                        "(plots/noise-synth-mvsa-accuracy-saltpepper.dat), [gnuplot script]"
                        "(plots/noise-synth-mvsa-accuracy-saltpepper.gp))\n");
    free(md);
    report_plots_free(&plots);
    report_free(&set);
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    return size;
}

/* Checks the files of one plot: .dat and .gp always, PNG and SVG when images is 1. */
static void check_plot_files(const char *dir, const char *stem, int images) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.dat", dir, stem);
    assert_true(file_size(path) > 0);
    snprintf(path, sizeof(path), "%s/%s.gp", dir, stem);
    assert_true(file_size(path) > 0);
    snprintf(path, sizeof(path), "%s/%s.png", dir, stem);
    if (!images) {
        assert_int_equal(file_size(path), -1);
        return;
    }
    if (file_size(path) <= 2048)
        fail_msg("%s has %ld bytes, expected a PNG over 2 KB", path, file_size(path));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char head[8] = {0};
    assert_int_equal(fread(head, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(head, "\x89PNG\r\n\x1a\n", 8);
    snprintf(path, sizeof(path), "%s/%s.svg", dir, stem);
    char *svg = read_file_text(path, NULL);
    assert_non_null(svg);
    assert_contains(svg, "<svg");
    free(svg);
}

/* Writes the plots of folder dir into dir/plots with gnuplot (when images) or without. */
static void write_plots(const char *dir, int images, char *plots_dir, size_t cap) {
    ReportSet set;
    assert_int_equal(report_load_dir(&set, dir), 0);
    PlotSet plots;
    report_plots_build(&set, &plots);
    char gnuplot[1024];
    int found = report_gnuplot_find(gnuplot, sizeof(gnuplot));
    snprintf(plots_dir, cap, "%s/plots", dir);
    int rc = report_plots_write(&plots, plots_dir, images && found ? gnuplot : NULL);
    if (rc != 0)
        fail_msg("report_plots_write: %s", err_get());
    report_plots_free(&plots);
    report_free(&set);
}

static void plots_without_gnuplot(void **state) {
    (void)state;
    char dir[256], plots_dir[512];
    make_temp_dir(dir, sizeof(dir));
    write_noise_folder(dir, noise_models, noise_labels);
    write_plots(dir, 0, plots_dir, sizeof(plots_dir));
    check_plot_files(plots_dir, "noise-synth-mvsa-accuracy-gaussian", 0);
    check_plot_files(plots_dir, "noise-synth-mvsa-load-euar-text", 0);
    remove_dir(dir);
}

static void plots_gnuplot_images(void **state) {
    (void)state;
    char gnuplot[1024];
    if (!report_gnuplot_find(gnuplot, sizeof(gnuplot)))
        skip();
    char dir[256], plots_dir[512];
    make_temp_dir(dir, sizeof(dir));
    write_noise_folder(dir, noise_models, noise_labels);
    write_plots(dir, 1, plots_dir, sizeof(plots_dir));
    check_plot_files(plots_dir, "noise-synth-mvsa-accuracy-saltpepper", 1);
    check_plot_files(plots_dir, "noise-synth-mvsa-sigma2-gaussian-euar", 1);
    check_plot_files(plots_dir, "noise-synth-mvsa-load-euar-image", 1);
    remove_dir(dir);
}

/* Quotes, spaces, '@', '#', '\' and ';' in model and condition labels stay inside the gnuplot
 * strings, so every script still runs. */
static void plots_odd_labels(void **state) {
    (void)state;
    char gnuplot[1024];
    if (!report_gnuplot_find(gnuplot, sizeof(gnuplot)))
        skip();
    const char *models[2] = {"euar", "it's \\\"q\\\" @x #1; \\\\n"};
    const char *labels[4] = {"sp 5's", "sp10 \\\"x\\\"", "g5@", "g'10; #"};
    char dir[256], plots_dir[512];
    make_temp_dir(dir, sizeof(dir));
    write_noise_folder(dir, models, labels);
    write_plots(dir, 1, plots_dir, sizeof(plots_dir));
    check_plot_files(plots_dir, "noise-synth-mvsa-accuracy-saltpepper", 1);
    check_plot_files(plots_dir, "noise-synth-mvsa-load-euar-image", 1);
    char path[1024];
    snprintf(path, sizeof(path), "%s/noise-synth-mvsa-accuracy-saltpepper.gp", plots_dir);
    char *gp = read_file_text(path, NULL);
    assert_non_null(gp);
    assert_contains(gp, "title 'it''s \"q\" @x #1; \\n'");
    free(gp);
    snprintf(path, sizeof(path), "%s/noise-synth-mvsa-load-euar-image.gp", plots_dir);
    gp = read_file_text(path, NULL);
    assert_non_null(gp);
    assert_contains(gp, "title 'g''10; #'");
    free(gp);
    remove_dir(dir);
}

static void load_bad_conditions(void **state) {
    (void)state;
    expect_load_error("badcond.json",
                      "{\"format\": \"euar-bench-result\", \"format_version\": 1, "
                      "\"status\": \"ok\", \"task\": \"regression\", "
                      "\"cell\": {\"dataset\": \"d\", \"condition\": \"c\", \"model\": \"m\"}, "
                      "\"conditions\": [{\"label\": \"sp5\", \"noise\": \"x\"}, "
                      "{\"noise\": \"y\"}]}",
                      "badcond.json: field 'conditions[1].label' is missing");
    expect_load_error("badrouting.json",
                      "{\"format\": \"euar-bench-result\", \"format_version\": 1, "
                      "\"status\": \"ok\", \"task\": \"regression\", "
                      "\"cell\": {\"dataset\": \"d\", \"condition\": \"c\", \"model\": \"m\"}, "
                      "\"routing\": {\"text\": {\"load\": [0.5, \"x\"]}}}",
                      "badrouting.json: field 'routing.text.load' must be an array of numbers");
}

static int setup_all(void **state) {
    setup_main(state);
    return setup_noise();
}

static int teardown_all(void **state) {
    teardown_main(state);
    remove_dir(noise_dir);
    return 0;
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
        cmocka_unit_test(load_absent_folder),
        cmocka_unit_test(record_filters_stale),
        cmocka_unit_test(record_missing_cells),
        cmocka_unit_test(record_quick_settings),
        cmocka_unit_test(record_all_stale),
        cmocka_unit_test(load_bad_conditions),
        cmocka_unit_test(noise_aggregate_tests),
        cmocka_unit_test(noise_aggregate_sigma2),
        cmocka_unit_test(noise_table_cells),
        cmocka_unit_test(noise_table_spec_lines),
        cmocka_unit_test(noise_level_parse),
        cmocka_unit_test(noise_plot_data),
        cmocka_unit_test(noise_plot_links),
        cmocka_unit_test(plots_without_gnuplot),
        cmocka_unit_test(plots_gnuplot_images),
        cmocka_unit_test(plots_odd_labels),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
