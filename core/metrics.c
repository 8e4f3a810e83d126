#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

double round_half_even(double x) {
    if (!isfinite(x))
        return x;
    /* Work on |x| so floor() picks the lower neighbour. a - floor(a) is exact for a >= 0:
     * for a < 1 it is a itself, and for a >= 1 both operands lie within a factor of two. */
    double a = fabs(x);
    double lower = floor(a);
    double frac = a - lower;
    double r;
    if (frac < 0.5)
        r = lower;
    else if (frac > 0.5)
        r = lower + 1.0;
    else
        r = fmod(lower, 2.0) == 0.0 ? lower : lower + 1.0;
    return copysign(r, x);
}

static double clip(double v, double lo, double hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* Confusion counts of a binary decision, positive class first. */
typedef struct {
    long tp, fp, fn, tn;
} BinaryCounts;

static void binary_add(BinaryCounts *c, int truth, int predicted) {
    if (truth && predicted)
        c->tp++;
    else if (predicted)
        c->fp++;
    else if (truth)
        c->fn++;
    else
        c->tn++;
}

static double f1_from_counts(double tp, double fp, double fn) {
    double denom = 2.0 * tp + fp + fn;
    return denom > 0.0 ? 2.0 * tp / denom : 0.0;
}

/* Accuracy and weighted F1 of a binary decision; both 0 on an empty set. */
static void binary_scores(const BinaryCounts *c, double *acc, double *weighted_f1) {
    double n = (double)(c->tp + c->fp + c->fn + c->tn);
    if (n == 0.0) {
        *acc = 0.0;
        *weighted_f1 = 0.0;
        return;
    }
    double f1_pos = f1_from_counts((double)c->tp, (double)c->fp, (double)c->fn);
    double f1_neg = f1_from_counts((double)c->tn, (double)c->fn, (double)c->fp);
    double support_pos = (double)(c->tp + c->fn);
    double support_neg = (double)(c->tn + c->fp);
    *acc = (double)(c->tp + c->tn) / n;
    *weighted_f1 = (f1_pos * support_pos + f1_neg * support_neg) / n;
}

/* Mean absolute error and Pearson correlation over all samples, or over those with a non-zero
 * label when nonzero_only is set. Sets *count to the number of samples used. */
static void error_and_correlation(const float *pred, const float *label, int n, int nonzero_only,
                                  double *mae, double *corr, int *count) {
    double sum_p = 0.0, sum_y = 0.0, sum_abs = 0.0;
    int used = 0;
    for (int i = 0; i < n; i++) {
        if (nonzero_only && label[i] == 0.0f)
            continue;
        sum_p += pred[i];
        sum_y += label[i];
        sum_abs += fabs((double)pred[i] - (double)label[i]);
        used++;
    }
    *count = used;
    *mae = 0.0;
    *corr = 0.0;
    if (used == 0)
        return;
    double mean_p = sum_p / used, mean_y = sum_y / used;
    double sxx = 0.0, syy = 0.0, sxy = 0.0;
    for (int i = 0; i < n; i++) {
        if (nonzero_only && label[i] == 0.0f)
            continue;
        double dp = pred[i] - mean_p, dy = label[i] - mean_y;
        sxx += dp * dp;
        syy += dy * dy;
        sxy += dp * dy;
    }
    *mae = sum_abs / used;
    /* Zero variance leaves the correlation undefined (numpy returns NaN); 0 keeps tables and
     * means finite. */
    if (sxx > 0.0 && syy > 0.0)
        *corr = clip(sxy / sqrt(sxx * syy), -1.0, 1.0);
}

void metrics_regression(RegressionMetrics *out, const float *pred, const float *label, int n) {
    EUAR_ASSERT(n >= 0);
    memset(out, 0, sizeof(*out));
    BinaryCounts mib = {0}, has0 = {0}, non0 = {0};
    long hits7 = 0, hits5 = 0;
    for (int i = 0; i < n; i++) {
        double p = pred[i], y = label[i];
        binary_add(&has0, y >= 0.0, p >= 0.0);
        if (y != 0.0) {
            binary_add(&mib, y >= 0.0, p >= 0.0);
            binary_add(&non0, y > 0.0, p > 0.0);
        }
        if (round_half_even(clip(p, -3.0, 3.0)) == round_half_even(clip(y, -3.0, 3.0)))
            hits7++;
        if (round_half_even(clip(p, -2.0, 2.0)) == round_half_even(clip(y, -2.0, 2.0)))
            hits5++;
    }
    binary_scores(&mib, &out->mib_acc2, &out->mib_f1);
    binary_scores(&has0, &out->mmsa_has0_acc2, &out->mmsa_has0_f1);
    binary_scores(&non0, &out->mmsa_non0_acc2, &out->mmsa_non0_f1);
    error_and_correlation(pred, label, n, 1, &out->mib_mae, &out->mib_corr, &out->mib_n);
    int all = 0;
    error_and_correlation(pred, label, n, 0, &out->mmsa_mae, &out->mmsa_corr, &all);
    if (n > 0) {
        out->acc7 = (double)hits7 / n;
        out->acc5 = (double)hits5 / n;
    }
}

void metrics_classification(ClassMetrics *out, const int32_t *pred, const int32_t *label, int n,
                            int num_classes) {
    EUAR_ASSERT(n >= 0 && num_classes > 0);
    memset(out, 0, sizeof(*out));
    /* Per class: true positives, predicted count, true count. */
    long *tp = xcalloc((size_t)num_classes, sizeof(long));
    long *predicted = xcalloc((size_t)num_classes, sizeof(long));
    long *actual = xcalloc((size_t)num_classes, sizeof(long));
    long correct = 0;
    for (int i = 0; i < n; i++) {
        EUAR_ASSERT(pred[i] >= 0 && pred[i] < num_classes);
        EUAR_ASSERT(label[i] >= 0 && label[i] < num_classes);
        predicted[pred[i]]++;
        actual[label[i]]++;
        if (pred[i] == label[i]) {
            tp[pred[i]]++;
            correct++;
        }
    }
    if (n > 0) {
        double macro_sum = 0.0, weighted_sum = 0.0;
        int present = 0;
        for (int c = 0; c < num_classes; c++) {
            if (predicted[c] == 0 && actual[c] == 0)
                continue;
            double fp = (double)(predicted[c] - tp[c]);
            double fn = (double)(actual[c] - tp[c]);
            double f1 = f1_from_counts((double)tp[c], fp, fn);
            macro_sum += f1;
            weighted_sum += f1 * (double)actual[c];
            present++;
        }
        out->acc = (double)correct / n;
        out->macro_f1 = macro_sum / present;
        out->weighted_f1 = weighted_sum / n;
    }
    free(tp);
    free(predicted);
    free(actual);
}

int metrics_regression_list(const RegressionMetrics *m, const char **names, double *values,
                            int cap) {
    const char *keys[] = {"mib_acc2",       "mib_f1",         "mib_mae",      "mib_corr",
                          "mmsa_has0_acc2", "mmsa_has0_f1",   "mmsa_non0_acc2", "mmsa_non0_f1",
                          "mmsa_mae",       "mmsa_corr",      "acc7",         "acc5"};
    const double vals[] = {m->mib_acc2,       m->mib_f1,         m->mib_mae,
                           m->mib_corr,       m->mmsa_has0_acc2, m->mmsa_has0_f1,
                           m->mmsa_non0_acc2, m->mmsa_non0_f1,   m->mmsa_mae,
                           m->mmsa_corr,      m->acc7,           m->acc5};
    int count = (int)EUAR_ARRAY_LEN(keys);
    EUAR_ASSERT(cap >= count);
    for (int i = 0; i < count; i++) {
        names[i] = keys[i];
        values[i] = vals[i];
    }
    return count;
}

int metrics_classification_list(const ClassMetrics *m, const char **names, double *values,
                                int cap) {
    const char *keys[] = {"acc", "macro_f1", "weighted_f1"};
    const double vals[] = {m->acc, m->macro_f1, m->weighted_f1};
    int count = (int)EUAR_ARRAY_LEN(keys);
    EUAR_ASSERT(cap >= count);
    for (int i = 0; i < count; i++) {
        names[i] = keys[i];
        values[i] = vals[i];
    }
    return count;
}
