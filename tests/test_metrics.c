/* Metrics against values computed by hand in the comments. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/common.h"
#include "core/metrics.h"

/* Fails with both values when |actual - expected| > tol. */
#define assert_near(actual, expected, tol) check_near((actual), (expected), (tol), #actual)

static void check_near(double actual, double expected, double tol, const char *what) {
    if (!(fabs(actual - expected) <= tol))
        fail_msg("%s = %.17g, expected %.17g (tolerance %g)", what, actual, expected, tol);
}

/* Float inputs such as 3.4f differ from the decimal by up to 1e-7, so values derived from
 * them are compared with TOL_FLOAT. Ratios of counts are compared with TOL_EXACT. */
#define TOL_FLOAT 1e-6
#define TOL_EXACT 1e-15

static void round_half_even_ties(void **state) {
    (void)state;
    assert_near(round_half_even(-2.5), -2.0, 0.0);
    assert_near(round_half_even(-1.5), -2.0, 0.0);
    assert_near(round_half_even(-0.5), 0.0, 0.0);
    assert_true(signbit(round_half_even(-0.5)));
    assert_near(round_half_even(0.5), 0.0, 0.0);
    assert_near(round_half_even(1.5), 2.0, 0.0);
    assert_near(round_half_even(2.5), 2.0, 0.0);
    assert_near(round_half_even(3.5), 4.0, 0.0);
}

static void round_half_even_non_ties(void **state) {
    (void)state;
    assert_near(round_half_even(2.6), 3.0, 0.0);
    assert_near(round_half_even(-2.4), -2.0, 0.0);
    assert_near(round_half_even(0.49999999999999994), 0.0, 0.0);
    assert_near(round_half_even(-1e-300), 0.0, 0.0);
    assert_near(round_half_even(4503599627370497.0), 4503599627370497.0, 0.0);
    assert_true(isnan(round_half_even(NAN)));
    assert_true(isinf(round_half_even(-INFINITY)));
}

/* i  p     y     has0 (y>=0 vs p>=0)  non0 (y>0 vs p>0)   mib (y>=0 vs p>=0, y!=0)
 * 0  0.0   0.0   tp                   excluded            excluded
 * 1  2.5   2.0   tp                   tp                  tp
 * 2  -0.5  1.5   fn                   fn                  fn
 * 3  3.4   3.0   tp                   tp                  tp
 * 4  -1.0  -1.0  tn                   tn                  tn
 * 5  0.0   -2.0  fp                   tn (p = 0 is not >0) fp (p = 0 counts as >= 0)
 * 6  -0.2  -0.4  tn                   tn                  tn
 * 7  1.0   -3.0  fp                   fp                  fp */
static const float bin_pred[8] = {0.0f, 2.5f, -0.5f, 3.4f, -1.0f, 0.0f, -0.2f, 1.0f};
static const float bin_label[8] = {0.0f, 2.0f, 1.5f, 3.0f, -1.0f, -2.0f, -0.4f, -3.0f};

static void regression_has0(void **state) {
    (void)state;
    RegressionMetrics m;
    metrics_regression(&m, bin_pred, bin_label, 8);
    /* tp 3, fn 1, tn 2, fp 2: Acc2 = 5/8. F1+ = 6/9, F1- = 4/7, supports 4 and 4:
     * weighted F1 = (4 * 2/3 + 4 * 4/7) / 8 = 13/21. */
    assert_near(m.mmsa_has0_acc2, 5.0 / 8.0, TOL_EXACT);
    assert_near(m.mmsa_has0_f1, 13.0 / 21.0, TOL_EXACT);
}

static void regression_non0(void **state) {
    (void)state;
    RegressionMetrics m;
    metrics_regression(&m, bin_pred, bin_label, 8);
    /* 7 samples, tp 2, fn 1, tn 3, fp 1: Acc2 = 5/7. F1+ = 4/6, F1- = 6/8, supports 3 and 4:
     * weighted F1 = (3 * 2/3 + 4 * 3/4) / 7 = 5/7. */
    assert_near(m.mmsa_non0_acc2, 5.0 / 7.0, TOL_EXACT);
    assert_near(m.mmsa_non0_f1, 5.0 / 7.0, TOL_EXACT);
}

static void regression_mib(void **state) {
    (void)state;
    RegressionMetrics m;
    metrics_regression(&m, bin_pred, bin_label, 8);
    /* 7 samples, tp 2, fn 1, tn 2, fp 2: Acc2 = 4/7. F1+ = 4/7, F1- = 4/7: weighted F1 = 4/7.
     * |p - y| over i = 1..7: 0.5 + 2.0 + 0.4 + 0 + 2.0 + 0.2 + 4.0 = 9.1, MAE = 1.3. */
    assert_int_equal(m.mib_n, 7);
    assert_near(m.mib_acc2, 4.0 / 7.0, TOL_EXACT);
    assert_near(m.mib_f1, 4.0 / 7.0, TOL_EXACT);
    assert_near(m.mib_mae, 9.1 / 7.0, TOL_FLOAT);
}

static void regression_mae_all(void **state) {
    (void)state;
    RegressionMetrics m;
    metrics_regression(&m, bin_pred, bin_label, 8);
    /* Sample 0 adds |0 - 0| = 0: MAE = 9.1 / 8. */
    assert_near(m.mmsa_mae, 9.1 / 8.0, TOL_FLOAT);
}

/* p     y     Acc7: round(clip(.,-3,3))   Acc5: round(clip(.,-2,2))
 * 2.5   2.0   2 vs 2 hit (half-up gives 3)  2 vs 2 hit
 * -0.5  0.4   -0 vs 0 hit                   hit
 * 2.0   1.5   2 vs 2 hit (1.5 -> 2)         hit
 * 3.4   3.0   3 vs 3 hit (clip)             2 vs 2 hit
 * 2.6   2.0   3 vs 2 miss                   2 vs 2 hit (clip 2.6 -> 2)
 * -3.0  -1.0  miss                          miss
 * 3.6   2.5   3 vs 2 miss                   2 vs 2 hit
 * Acc7 = 4/7, Acc5 = 6/7. */
static void regression_acc7_acc5(void **state) {
    (void)state;
    const float pred[7] = {2.5f, -0.5f, 2.0f, 3.4f, 2.6f, -3.0f, 3.6f};
    const float label[7] = {2.0f, 0.4f, 1.5f, 3.0f, 2.0f, -1.0f, 2.5f};
    RegressionMetrics m;
    metrics_regression(&m, pred, label, 7);
    assert_near(m.acc7, 4.0 / 7.0, TOL_EXACT);
    assert_near(m.acc5, 6.0 / 7.0, TOL_EXACT);
}

/* p = 1..5, y = 2,4,5,4,5: deviations (-2,-1,0,1,2) and (-2,0,1,0,1), sxy = 6, sxx = 10,
 * syy = 6, r = 6 / sqrt(60). No label is 0, so mib and mmsa agree. */
static void regression_correlation(void **state) {
    (void)state;
    const float pred[5] = {1, 2, 3, 4, 5};
    const float label[5] = {2, 4, 5, 4, 5};
    RegressionMetrics m;
    metrics_regression(&m, pred, label, 5);
    assert_near(m.mmsa_corr, 6.0 / sqrt(60.0), 1e-12);
    assert_near(m.mib_corr, 6.0 / sqrt(60.0), 1e-12);
}

static void regression_zero_variance(void **state) {
    (void)state;
    const float constant[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    const float varied[4] = {-1.0f, 1.0f, 2.0f, -2.0f};
    RegressionMetrics m;
    metrics_regression(&m, constant, varied, 4);
    assert_near(m.mmsa_corr, 0.0, 0.0);
    metrics_regression(&m, varied, constant, 4);
    assert_near(m.mmsa_corr, 0.0, 0.0);
    assert_near(m.mib_corr, 0.0, 0.0);
}

/* Every label is 0: the mib set is empty, Has0 counts three true positives and one false
 * negative (p = -1), Non0 is empty. */
static void regression_all_labels_zero(void **state) {
    (void)state;
    const float pred[4] = {0.0f, 1.0f, -1.0f, 2.0f};
    const float label[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    RegressionMetrics m;
    metrics_regression(&m, pred, label, 4);
    assert_int_equal(m.mib_n, 0);
    assert_near(m.mib_acc2, 0.0, 0.0);
    assert_near(m.mib_f1, 0.0, 0.0);
    assert_near(m.mib_mae, 0.0, 0.0);
    assert_near(m.mib_corr, 0.0, 0.0);
    assert_near(m.mmsa_non0_acc2, 0.0, 0.0);
    assert_near(m.mmsa_has0_acc2, 0.75, TOL_EXACT);
    /* F1+ = 6/7 with support 4, F1- = 0 with support 0: weighted F1 = 6/7. */
    assert_near(m.mmsa_has0_f1, 6.0 / 7.0, TOL_EXACT);
}

static void regression_empty(void **state) {
    (void)state;
    RegressionMetrics m;
    memset(&m, 0x7f, sizeof(m));
    metrics_regression(&m, NULL, NULL, 0);
    assert_int_equal(m.mib_n, 0);
    assert_near(m.mmsa_has0_acc2, 0.0, 0.0);
    assert_near(m.mmsa_mae, 0.0, 0.0);
    assert_near(m.acc7, 0.0, 0.0);
}

/* Labels: six of class 0, three of class 1, one of class 2.
 * class 0: tp 5, fp 2, fn 1, F1 = 10/13; class 1: tp 2, fp 1, fn 1, F1 = 2/3;
 * class 2: tp 0, fn 1, F1 = 0. Accuracy 7/10.
 * Macro F1 = (10/13 + 2/3 + 0) / 3 = 56/117. Weighted F1 = (6 * 10/13 + 3 * 2/3) / 10 = 43/65. */
static const int32_t cls_label[10] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 2};
static const int32_t cls_pred[10] = {0, 0, 0, 0, 0, 1, 1, 1, 0, 0};

static void classification_imbalanced(void **state) {
    (void)state;
    ClassMetrics m;
    metrics_classification(&m, cls_pred, cls_label, 10, 3);
    assert_near(m.acc, 0.7, TOL_EXACT);
    assert_near(m.macro_f1, 56.0 / 117.0, TOL_EXACT);
    assert_near(m.weighted_f1, 43.0 / 65.0, TOL_EXACT);
}

/* A fourth class that occurs in neither labels nor predictions leaves macro F1 unchanged. */
static void classification_absent_class(void **state) {
    (void)state;
    ClassMetrics m;
    metrics_classification(&m, cls_pred, cls_label, 10, 4);
    assert_near(m.macro_f1, 56.0 / 117.0, TOL_EXACT);
    assert_near(m.weighted_f1, 43.0 / 65.0, TOL_EXACT);
}

/* Class 2 is predicted once but never true: its F1 is 0 and counts in macro F1 but has no
 * weight. Labels 0,0,1,1, predictions 0,2,1,1: F1_0 = 2/3, F1_1 = 1, F1_2 = 0.
 * Macro = 5/9, weighted = (2 * 2/3 + 2 * 1) / 4 = 5/6, accuracy 3/4. */
static void classification_predicted_only(void **state) {
    (void)state;
    const int32_t label[4] = {0, 0, 1, 1};
    const int32_t pred[4] = {0, 2, 1, 1};
    ClassMetrics m;
    metrics_classification(&m, pred, label, 4, 3);
    assert_near(m.acc, 0.75, TOL_EXACT);
    assert_near(m.macro_f1, 5.0 / 9.0, TOL_EXACT);
    assert_near(m.weighted_f1, 5.0 / 6.0, TOL_EXACT);
}

static void classification_empty(void **state) {
    (void)state;
    ClassMetrics m;
    metrics_classification(&m, NULL, NULL, 0, 3);
    assert_near(m.acc, 0.0, 0.0);
    assert_near(m.macro_f1, 0.0, 0.0);
    assert_near(m.weighted_f1, 0.0, 0.0);
}

static void list_names_order(void **state) {
    (void)state;
    static const char *expected[] = {"mib_acc2",     "mib_f1",         "mib_mae",
                                     "mib_corr",     "mmsa_has0_acc2", "mmsa_has0_f1",
                                     "mmsa_non0_acc2", "mmsa_non0_f1", "mmsa_mae",
                                     "mmsa_corr",    "acc7",           "acc5"};
    RegressionMetrics m;
    metrics_regression(&m, bin_pred, bin_label, 8);
    const char *names[EUAR_METRICS_MAX];
    double values[EUAR_METRICS_MAX];
    int count = metrics_regression_list(&m, names, values, EUAR_METRICS_MAX);
    assert_int_equal(count, 12);
    for (int i = 0; i < count; i++)
        assert_string_equal(names[i], expected[i]);
    assert_near(values[0], m.mib_acc2, 0.0);
    assert_near(values[11], m.acc5, 0.0);
}

static void list_classification(void **state) {
    (void)state;
    ClassMetrics m = {0.5, 0.25, 0.125};
    const char *names[EUAR_METRICS_MAX];
    double values[EUAR_METRICS_MAX];
    int count = metrics_classification_list(&m, names, values, EUAR_METRICS_MAX);
    assert_int_equal(count, 3);
    assert_string_equal(names[0], "acc");
    assert_string_equal(names[1], "macro_f1");
    assert_string_equal(names[2], "weighted_f1");
    assert_near(values[1], 0.25, 0.0);
    assert_near(values[2], 0.125, 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_half_even_ties),
        cmocka_unit_test(round_half_even_non_ties),
        cmocka_unit_test(regression_has0),
        cmocka_unit_test(regression_non0),
        cmocka_unit_test(regression_mib),
        cmocka_unit_test(regression_mae_all),
        cmocka_unit_test(regression_acc7_acc5),
        cmocka_unit_test(regression_correlation),
        cmocka_unit_test(regression_zero_variance),
        cmocka_unit_test(regression_all_labels_zero),
        cmocka_unit_test(regression_empty),
        cmocka_unit_test(classification_imbalanced),
        cmocka_unit_test(classification_absent_class),
        cmocka_unit_test(classification_predicted_only),
        cmocka_unit_test(classification_empty),
        cmocka_unit_test(list_names_order),
        cmocka_unit_test(list_classification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
