/* Evaluation metrics of regression (sentiment in [-3, 3]) and classification runs.
 *
 * Regression follows the two protocols of the multimodal sentiment literature:
 * - mib (the one EUAR's authors ran): Acc2 and weighted F1 on (y >= 0) vs (p >= 0), MAE and
 *   Pearson correlation, all over the samples with a non-zero label;
 * - mmsa: Has0 Acc2 and weighted F1 on (y >= 0) vs (p >= 0) over all samples, Non0 Acc2 and
 *   weighted F1 on (y > 0) vs (p > 0) over the samples with y != 0, MAE and correlation over
 *   all samples.
 * Acc7 and Acc5 compare round(clip(p)) with round(clip(y)) over all samples, rounding half to
 * even as numpy.round does. All sums are accumulated in double. */
#ifndef EUAR_METRICS_H
#define EUAR_METRICS_H

#include <stdint.h>

/* Maximum number of entries either listing function writes. */
#define EUAR_METRICS_MAX 16

typedef struct {
    double mib_acc2, mib_f1, mib_mae, mib_corr;
    int mib_n; /* samples with y != 0; every mib_* value is 0 when mib_n is 0 */
    double mmsa_has0_acc2, mmsa_has0_f1;
    double mmsa_non0_acc2, mmsa_non0_f1;
    double mmsa_mae, mmsa_corr;
    double acc7, acc5;
} RegressionMetrics;

typedef struct {
    double acc, macro_f1, weighted_f1;
} ClassMetrics;

/* Rounds x to the nearest integer, ties to the even neighbour, independently of the current
 * floating-point rounding mode: -2.5 -> -2, -0.5 -> -0, 0.5 -> 0, 1.5 -> 2. NaN and infinities
 * are returned unchanged. */
double round_half_even(double x);

/* Computes every regression metric of n predictions against n labels.
 * Conventions: an empty sample set gives 0 for each of its metrics (and mib_n = 0); the
 * Pearson correlation is 0 when the predictions or the labels of the set have zero variance. */
void metrics_regression(RegressionMetrics *out, const float *pred, const float *label, int n);

/* Computes accuracy, macro F1 and weighted F1 of n predicted class indices against n labels,
 * both in [0, num_classes). The F1 of a class is 2 TP / (2 TP + FP + FN), and 0 when the class
 * has neither predictions nor true samples. Macro F1 averages over the classes that occur in
 * the labels or the predictions, so a class absent from both is left out (the default of
 * f1_score with average='macro' in scikit-learn 1.0, which uses the labels of y_true and
 * y_pred). Weighted F1 weighs each class's F1 by its share of the true labels
 * (average='weighted'). n = 0 gives all zeros. */
void metrics_classification(ClassMetrics *out, const int32_t *pred, const int32_t *label, int n,
                            int num_classes);

/* Lists the metrics under the names of the result files (docs/results.md), in a fixed order.
 * Writes the entries to names and values, which have room for cap entries, and returns the
 * number written. A cap below the number of metrics is a fatal error, so pass
 * EUAR_METRICS_MAX. */
int metrics_regression_list(const RegressionMetrics *m, const char **names, double *values,
                            int cap);
int metrics_classification_list(const ClassMetrics *m, const char **names, double *values,
                                int cap);

#endif
