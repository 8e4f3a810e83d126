/* Helpers of the gradient tests: random fills from the test stream and a comparison of
 * analytic against numeric derivatives that keeps the worst coordinate for the failure
 * message. Header-only, included by test_grad.c and test_ops.c. */
#ifndef EUAR_TESTS_GRAD_UTIL_H
#define EUAR_TESTS_GRAD_UTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/rng.h"

/* Fills x[n] with uniform draws in [lo, hi) from counter (c0, c1) of the test stream. */
static inline void fill_uniform(float *x, size_t n, float lo, float hi, uint32_t c0, uint32_t c1) {
    RngStream st = rng_stream(20240601u, EUAR_RNG_TEST);
    rng_fill_uniform(st, c0, c1, x, n);
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * x[i];
}

/* Fills x[n] with N(0, scale^2) draws from counter (c0, c1) of the test stream. */
static inline void fill_normal(float *x, size_t n, float scale, uint32_t c0, uint32_t c1) {
    RngStream st = rng_stream(20240601u, EUAR_RNG_TEST);
    rng_fill_normal(st, c0, c1, x, n);
    for (size_t i = 0; i < n; i++)
        x[i] *= scale;
}

/* Comparison of analytic and numeric derivatives: coordinate i passes when
 * |a - n| <= rtol * max(|a|, |n|) + atol. `ratio` is |a - n| over that bound, so the check
 * fails when the worst ratio exceeds 1. */
typedef struct {
    const char *what;
    double rtol, atol;
    double worst_ratio, worst_analytic, worst_numeric;
    long worst_index;
    long checked, skipped;
    double max_abs_analytic;
} GradCheck;

static inline GradCheck grad_check_start(const char *what, double rtol, double atol) {
    GradCheck g = {0};
    g.what = what;
    g.rtol = rtol;
    g.atol = atol;
    g.worst_index = -1;
    return g;
}

static inline void grad_check_add(GradCheck *g, long index, double analytic, double numeric) {
    double scale = fabs(analytic) > fabs(numeric) ? fabs(analytic) : fabs(numeric);
    double ratio = fabs(analytic - numeric) / (g->rtol * scale + g->atol);
    if (isnan(ratio))
        ratio = INFINITY;
    if (g->worst_index < 0 || ratio > g->worst_ratio) {
        g->worst_ratio = ratio;
        g->worst_index = index;
        g->worst_analytic = analytic;
        g->worst_numeric = numeric;
    }
    if (fabs(analytic) > g->max_abs_analytic)
        g->max_abs_analytic = fabs(analytic);
    g->checked++;
}

/* Prints the worst coordinate; returns 1 when every coordinate passed. */
static inline int grad_check_report(const GradCheck *g, int verbose) {
    int ok = g->checked > 0 && g->worst_ratio <= 1.0;
    if (!ok || verbose)
        fprintf(stderr,
                "%s: %s, %ld checked, %ld skipped, worst at %ld: analytic %.6g numeric %.6g "
                "(error %.3g of tolerance)\n",
                g->what, ok ? "ok" : "MISMATCH", g->checked, g->skipped, g->worst_index,
                g->worst_analytic, g->worst_numeric, g->worst_ratio);
    return ok;
}

/* Central difference of loss() in *x. The divisor is the step as float32 stores it, because
 * x + step rounds and dividing by the nominal 2 step would add a relative error of up to
 * 1e-4 at the magnitudes of these tests. */
static inline double numeric_grad(double (*loss)(void *), void *ctx, float *x, float step) {
    float orig = *x, up = orig + step, down = orig - step;
    *x = up;
    double lp = loss(ctx);
    *x = down;
    double lm = loss(ctx);
    *x = orig;
    return (lp - lm) / ((double)up - (double)down);
}

#endif
