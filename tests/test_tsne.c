/* Exact t-SNE: cluster separation, KL descent, determinism, the perplexity search, PCA, input
 * checks, and the scatter plot files. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cblas.h>
#include <cmocka.h>

#include "core/common.h"
#include "core/rng.h"
#include "report/plots.h"
#include "report/tsne.h"

#define assert_contains(text, needle) check_contains((text), (needle))

static void check_contains(const char *text, const char *needle) {
    if (!strstr(text, needle))
        fail_msg("expected to find\n  %s\nin\n%s", needle, text);
}

/* Fills x [k * per_cluster, d] with k Gaussian clusters of unit variance whose centres are drawn
 * with standard deviation `spread`, and labels with the cluster of each row. */
static void make_clusters(float *x, int32_t *labels, int k, int per_cluster, int d, float spread,
                          uint64_t seed) {
    RngStream s = rng_stream(seed, EUAR_RNG_TEST);
    float *centres = xmalloc((size_t)k * d * sizeof(float));
    rng_fill_normal(s, 0, 0, centres, (size_t)k * d);
    int n = k * per_cluster;
    rng_fill_normal(s, 1, 0, x, (size_t)n * d);
    for (int i = 0; i < n; i++) {
        labels[i] = i % k;
        for (int j = 0; j < d; j++)
            x[(size_t)i * d + j] += spread * centres[(size_t)labels[i] * d + j];
    }
    free(centres);
}

/* Returns the fraction of points whose nearest other point in y [n, 2] has the same label. */
static double neighbour_agreement(const float *y, const int32_t *labels, int n) {
    int same = 0;
    for (int i = 0; i < n; i++) {
        int best = -1;
        double best_d = INFINITY;
        for (int j = 0; j < n; j++) {
            double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
            double dist = dx * dx + dy * dy;
            if (j != i && dist < best_d) {
                best_d = dist;
                best = j;
            }
        }
        same += labels[best] == labels[i];
    }
    return (double)same / n;
}

/* 4 clusters of 60 points in 30 dimensions, centres about 77 apart against a within-cluster
 * spread of about 7.7: every neighbourhood is inside one cluster. */
static void tsne_clusters_separated(void **state) {
    (void)state;
    enum { K = 4, PER = 60, N = K * PER, D = 30 };
    float *x = xmalloc((size_t)N * D * sizeof(float));
    int32_t labels[N];
    float y[2 * N];
    make_clusters(x, labels, K, PER, D, 10.0f, 1);
    TsneStats stats;
    int rc = tsne_embed(x, N, D, 30.0, 7, 1000, y, &stats);
    if (rc != 0)
        fail_msg("tsne_embed: %s", err_get());
    double agreement = neighbour_agreement(y, labels, N);
    if (agreement <= 0.95)
        fail_msg("nearest-neighbour agreement %.3f, expected > 0.95", agreement);
    assert_int_equal(stats.dims, D);
    assert_int_equal(stats.unconverged_rows, 0);
    if (!(stats.kl_final < stats.kl_initial))
        fail_msg("KL %.4f at the end, %.4f at the start", stats.kl_final, stats.kl_initial);
    if (!(stats.kl_final < stats.kl_exaggeration))
        fail_msg("KL %.4f at the end, %.4f when exaggeration ended", stats.kl_final,
                 stats.kl_exaggeration);
    if (!(stats.kl_final > 0.0))
        fail_msg("KL %.6f at the end, expected a positive divergence", stats.kl_final);
    free(x);
}

/* 80 input dimensions go through PCA to 50 and the clusters still separate. */
static void tsne_pca_clusters_separated(void **state) {
    (void)state;
    enum { K = 3, PER = 60, N = K * PER, D = 80 };
    float *x = xmalloc((size_t)N * D * sizeof(float));
    int32_t labels[N];
    float y[2 * N];
    make_clusters(x, labels, K, PER, D, 10.0f, 2);
    TsneStats stats;
    int rc = tsne_embed(x, N, D, 20.0, 3, 1000, y, &stats);
    if (rc != 0)
        fail_msg("tsne_embed: %s", err_get());
    assert_int_equal(stats.dims, 50);
    double agreement = neighbour_agreement(y, labels, N);
    if (agreement <= 0.95)
        fail_msg("nearest-neighbour agreement %.3f, expected > 0.95", agreement);
    free(x);
}

static void tsne_same_seed_identical(void **state) {
    (void)state;
    enum { K = 2, PER = 50, N = K * PER, D = 12 };
    float x[N * D], a[2 * N], b[2 * N], c[2 * N];
    int32_t labels[N];
    make_clusters(x, labels, K, PER, D, 5.0f, 3);
    assert_int_equal(tsne_embed(x, N, D, 10.0, 42, 300, a, NULL), 0);
    assert_int_equal(tsne_embed(x, N, D, 10.0, 42, 300, b, NULL), 0);
    assert_int_equal(tsne_embed(x, N, D, 10.0, 43, 300, c, NULL), 0);
    assert_memory_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
}

/* stats.kl_final equals KL(P || Q) computed directly from the returned embedding, with P
 * built from tsne_conditional_p() as (P_{j|i} + P_{i|j}) / (2n). */
static void tsne_kl_matches_direct(void **state) {
    (void)state;
    enum { K = 2, PER = 30, N = K * PER, D = 6 };
    float x[N * D], y[2 * N];
    int32_t labels[N];
    double xd[N * D];
    make_clusters(x, labels, K, PER, D, 4.0f, 9);
    for (int k = 0; k < N * D; k++)
        xd[k] = x[k];
    TsneStats stats;
    assert_int_equal(tsne_embed(x, N, D, 8.0, 2, 400, y, &stats), 0);
    double *cond = xmalloc((size_t)N * N * sizeof(double));
    assert_int_equal(tsne_conditional_p(cond, xd, N, D, 8.0), 0);
    double z = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double dx = (double)y[2 * i] - y[2 * j], dy = (double)y[2 * i + 1] - y[2 * j + 1];
            if (i != j)
                z += 1.0 / (1.0 + dx * dx + dy * dy);
        }
    double kl = 0.0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double p = (cond[i * N + j] + cond[j * N + i]) / (2.0 * N);
            double dx = (double)y[2 * i] - y[2 * j], dy = (double)y[2 * i + 1] - y[2 * j + 1];
            double q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
            if (i != j && p > 0.0)
                kl += p * log(p / q);
        }
    free(cond);
    if (fabs(kl - stats.kl_final) > 1e-4)
        fail_msg("stats.kl_final = %.8f, direct KL of the output %.8f", stats.kl_final, kl);
}

/* The PCA step runs on one OpenBLAS thread, so the embedding does not depend on how many
 * threads the caller gave OpenBLAS. */
static void tsne_threads_identical(void **state) {
    (void)state;
    enum { K = 2, PER = 40, N = K * PER, D = 64 };
    float x[N * D], a[2 * N], b[2 * N];
    int32_t labels[N];
    make_clusters(x, labels, K, PER, D, 3.0f, 8);
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    TsneStats stats;
    assert_int_equal(tsne_embed(x, N, D, 10.0, 5, 200, a, &stats), 0);
    assert_int_equal(stats.dims, 50);
    openblas_set_num_threads(4);
    assert_int_equal(tsne_embed(x, N, D, 10.0, 5, 200, b, NULL), 0);
    assert_int_equal(openblas_get_num_threads(), 4);
    openblas_set_num_threads(threads);
    assert_memory_equal(a, b, sizeof(a));
}

/* Entropy in nats of row p [n] of a conditional distribution. */
static double row_entropy(const double *p, int n) {
    double h = 0.0;
    for (int j = 0; j < n; j++)
        if (p[j] > 0.0)
            h -= p[j] * log(p[j]);
    return h;
}

/* Checks that every row of P_{j|i} of x sums to 1, has p_ii = 0 and entropy log(perplexity). */
static void check_rows(const double *x, int n, int d, double perplexity) {
    double *p = xmalloc((size_t)n * n * sizeof(double));
    assert_int_equal(tsne_conditional_p(p, x, n, d, perplexity), 0);
    for (int i = 0; i < n; i++) {
        const double *row = p + (size_t)i * n;
        double sum = 0.0;
        for (int j = 0; j < n; j++)
            sum += row[j];
        if (fabs(sum - 1.0) > 1e-12)
            fail_msg("perplexity %g, row %d sums to %.15f", perplexity, i, sum);
        if (row[i] != 0.0)
            fail_msg("perplexity %g, p[%d][%d] = %g, expected 0", perplexity, i, i, row[i]);
        double h = row_entropy(row, n);
        if (fabs(h - log(perplexity)) > TSNE_ENTROPY_TOL)
            fail_msg("perplexity %g, row %d has entropy %.8f, expected %.8f +- %g", perplexity,
                     i, h, log(perplexity), TSNE_ENTROPY_TOL);
    }
    free(p);
}

/* The search meets the entropy whatever the scale of the distances, from 1e-12 to 1e12. */
static void tsne_perplexity_entropy(void **state) {
    (void)state;
    enum { N = 40, D = 5 };
    float draws[N * D];
    double x[N * D];
    rng_fill_normal(rng_stream(4, EUAR_RNG_TEST), 0, 0, draws, N * D);
    const double scales[] = {1e-6, 1.0, 1e6};
    const double perplexities[] = {2.0, 5.0, 12.0};
    for (size_t s = 0; s < EUAR_ARRAY_LEN(scales); s++) {
        for (int k = 0; k < N * D; k++)
            x[k] = scales[s] * draws[k];
        for (size_t q = 0; q < EUAR_ARRAY_LEN(perplexities); q++)
            check_rows(x, N, D, perplexities[q]);
    }
}

/* Points that all coincide cannot meet the entropy: every row stays uniform and is counted,
 * and the embedding still finishes. */
static void tsne_coincident_points(void **state) {
    (void)state;
    enum { N = 20, D = 3 };
    double x[N * D];
    float xf[N * D], y[2 * N];
    for (int k = 0; k < N * D; k++) {
        x[k] = 1.5;
        xf[k] = 1.5f;
    }
    double p[N * N];
    assert_int_equal(tsne_conditional_p(p, x, N, D, 5.0), N);
    for (int j = 1; j < N; j++)
        assert_true(fabs(p[j] - 1.0 / (N - 1)) < 1e-15);
    TsneStats stats;
    assert_int_equal(tsne_embed(xf, N, D, 5.0, 1, 100, y, &stats), 0);
    assert_int_equal(stats.unconverged_rows, N);
}

/* Rows of rank 4 in 60 dimensions keep their pairwise distances through PCA to 6 components,
 * by the n x n Gram matrix (n < d) and by the d x d scatter matrix (n >= d). The component
 * variances come out in decreasing order. */
static void check_pca_distances(int n) {
    enum { D = 60, R = 4, K = 6 };
    RngStream s = rng_stream(5, EUAR_RNG_TEST);
    float *basis = xmalloc((size_t)R * D * sizeof(float));
    float *coef = xmalloc((size_t)n * R * sizeof(float));
    float *x = xcalloc((size_t)n * D, sizeof(float));
    double *out = xmalloc((size_t)n * K * sizeof(double));
    rng_fill_normal(s, 0, 0, basis, (size_t)R * D);
    rng_fill_normal(s, 1, 0, coef, (size_t)n * R);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < R; r++)
            for (int j = 0; j < D; j++)
                x[(size_t)i * D + j] += (float)(r + 1) * coef[i * R + r] * basis[r * D + j];
    int rc = tsne_pca(out, x, n, D, K);
    if (rc != 0)
        fail_msg("tsne_pca: %s", err_get());
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            double d_in = 0.0, d_out = 0.0;
            for (int k = 0; k < D; k++) {
                double diff = (double)x[(size_t)i * D + k] - x[(size_t)j * D + k];
                d_in += diff * diff;
            }
            for (int k = 0; k < K; k++) {
                double diff = out[(size_t)i * K + k] - out[(size_t)j * K + k];
                d_out += diff * diff;
            }
            double rel = fabs(d_out - d_in) / d_in;
            worst = rel > worst ? rel : worst;
        }
    }
    if (worst > 1e-9)
        fail_msg("n = %d: squared distances change by up to %.3g (relative) through PCA", n,
                 worst);
    double previous = INFINITY;
    for (int k = 0; k < K; k++) {
        double var = 0.0;
        for (int i = 0; i < n; i++)
            var += out[(size_t)i * K + k] * out[(size_t)i * K + k];
        if (var > previous * (1.0 + 1e-9) + 1e-9)
            fail_msg("n = %d: component %d has variance %g above component %d (%g)", n, k, var,
                     k - 1, previous);
        previous = var;
    }
    free(basis);
    free(coef);
    free(x);
    free(out);
}

static void tsne_pca_keeps_distances(void **state) {
    (void)state;
    check_pca_distances(30);
    check_pca_distances(90);
}

/* Calls tsne_embed_options() with one option changed and expects -1 with `message`. */
static void expect_embed_error(const float *x, int n, int d, const TsneOptions *options,
                               const char *message) {
    float y[2 * 64];
    err_clear();
    assert_int_equal(tsne_embed_options(x, n, d, options, 1, y, NULL), -1);
    assert_contains(err_get(), message);
}

static void tsne_invalid_input(void **state) {
    (void)state;
    enum { N = 31, D = 4 };
    float x[64 * D];
    rng_fill_normal(rng_stream(6, EUAR_RNG_TEST), 0, 0, x, 64 * D);
    TsneOptions base, o;
    tsne_options_default(&base);
    base.perplexity = 5.0;
    base.iterations = 10;

    expect_embed_error(x, 1, D, &base, "1 point(s) given, but t-SNE needs at least 2");
    expect_embed_error(x, TSNE_MAX_POINTS + 1, D, &base, "5001 points given, more than the 5000");
    expect_embed_error(x, N, 0, &base, "input dimension 0 is invalid");
    o = base;
    o.perplexity = 11.0;
    expect_embed_error(x, N, D, &o, "perplexity 11 is too large for 31 points");
    o.perplexity = 1.0;
    expect_embed_error(x, N, D, &o, "perplexity 1 is invalid");
    o.perplexity = NAN;
    expect_embed_error(x, N, D, &o, "perplexity nan is invalid");
    o = base;
    o.iterations = 0;
    expect_embed_error(x, N, D, &o, "0 iterations is invalid");
    o.iterations = TSNE_MAX_ITERATIONS + 1;
    expect_embed_error(x, N, D, &o, "100001 iterations is invalid");
    o = base;
    o.pca_dims = -1;
    expect_embed_error(x, N, D, &o, "pca_dims -1 is invalid");
    o = base;
    o.learning_rate = -5.0;
    expect_embed_error(x, N, D, &o, "learning rate -5 is invalid");
    o = base;
    o.exaggeration = 0.5;
    expect_embed_error(x, N, D, &o, "exaggeration 0.5 for 250 iterations is invalid");
    o = base;
    o.momentum_final = 1.0;
    expect_embed_error(x, N, D, &o, "momentum 0.5 then 1 is invalid");
    float saved = x[2 * D + 3];
    x[2 * D + 3] = INFINITY;
    expect_embed_error(x, N, D, &base, "x[2][3] is inf");
    x[2 * D + 3] = saved;

    /* The exact limit is accepted: 3 * 10 = n - 1. */
    float y[2 * N];
    o = base;
    o.perplexity = 10.0;
    assert_int_equal(tsne_embed_options(x, N, D, &o, 1, y, NULL), 0);
}

/* ---- plot files ---------------------------------------------------------------------------- */

static void make_temp_dir(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/euar_test_tsne_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void remove_dir(const char *dir) {
    char command[600];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    assert_int_equal(system(command), 0);
}

/* Returns the size of dir/name, or -1 when it does not exist. */
static long file_size(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static char *read_in_dir(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    char *text = read_file_text(path, NULL);
    if (!text)
        fail_msg("cannot read %s: %s", path, err_get());
    return text;
}

static const char *const sentiment_names[3] = {"negative", "neutral", "positive"};

static void tsne_plot_files(void **state) {
    (void)state;
    enum { K = 3, PER = 40, N = K * PER, D = 10 };
    float x[N * D], y[2 * N];
    int32_t labels[N];
    make_clusters(x, labels, K, PER, D, 8.0f, 7);
    assert_int_equal(tsne_embed(x, N, D, 15.0, 1, 500, y, NULL), 0);
    char dir[256], out[512];
    make_temp_dir(dir, sizeof(dir));
    snprintf(out, sizeof(out), "%s/fig6", dir);
    int rc = tsne_plot(out, "tsne-euar-all", y, labels, N, sentiment_names, K,
                       "EUAR, all modalities (it's \"joint\" @ #1; \\n)");
    if (rc != 0)
        fail_msg("tsne_plot: %s", err_get());

    char *dat = read_in_dir(out, "tsne-euar-all.dat");
    assert_contains(dat, "# classes: 0=negative 1=neutral 2=positive\n# x y class\n");
    int lines = 0;
    for (const char *c = dat; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, N + 3);
    free(dat);
    char *gp = read_in_dir(out, "tsne-euar-all.gp");
    assert_contains(gp, "set title 'EUAR, all modalities (it''s \"joint\" @ #1; \\n)'");
    assert_contains(gp, "title 'neutral'");
    assert_contains(gp, "set output 'tsne-euar-all.svg'");
    free(gp);

    char gnuplot[1024];
    if (!report_gnuplot_find(gnuplot, sizeof(gnuplot))) {
        assert_int_equal(file_size(out, "tsne-euar-all.png"), -1);
        remove_dir(dir);
        skip();
    }
    long png_size = file_size(out, "tsne-euar-all.png");
    if (png_size <= 2048)
        fail_msg("tsne-euar-all.png has %ld bytes, expected more than 2048", png_size);
    char *png = read_in_dir(out, "tsne-euar-all.png");
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    free(png);
    char *svg = read_in_dir(out, "tsne-euar-all.svg");
    assert_contains(svg, "<svg");
    assert_contains(svg, "neutral");
    free(svg);
    remove_dir(dir);
}

/* Invalid arguments leave no files behind. */
static void tsne_plot_invalid(void **state) {
    (void)state;
    float y[6] = {0.0f, 0.0f, 1.0f, 1.0f, 2.0f, NAN};
    int32_t labels[3] = {0, 1, 3};
    char dir[256];
    make_temp_dir(dir, sizeof(dir));

    err_clear();
    assert_int_equal(tsne_plot(dir, "bad", y, labels, 2, sentiment_names, 3, NULL), 0);
    assert_int_equal(tsne_plot(dir, "bad", y, labels, 3, sentiment_names, 3, NULL), -1);
    assert_contains(err_get(), "labels[2] is 3, outside the 3 classes [0, 2)");
    labels[2] = 2;
    assert_int_equal(tsne_plot(dir, "bad2", y, labels, 3, sentiment_names, 3, NULL), -1);
    assert_contains(err_get(), "point 2 is (2, nan)");
    assert_int_equal(tsne_plot(dir, "../up", y, labels, 2, sentiment_names, 3, NULL), -1);
    assert_contains(err_get(), "file stem '../up' is invalid");
    assert_int_equal(tsne_plot(dir, "a b", y, labels, 2, sentiment_names, 3, NULL), -1);
    assert_contains(err_get(), "file stem 'a b' is invalid");
    assert_int_equal(tsne_plot(dir, "none", y, labels, 0, sentiment_names, 3, NULL), -1);
    assert_contains(err_get(), "0 points given");
    assert_int_equal(file_size(dir, "bad2.dat"), -1);
    assert_int_equal(file_size(dir, "bad2.gp"), -1);
    assert_int_equal(file_size(dir, "none.dat"), -1);
    remove_dir(dir);
}

int main(void) {
    log_set_level(EUAR_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tsne_clusters_separated),
        cmocka_unit_test(tsne_pca_clusters_separated),
        cmocka_unit_test(tsne_same_seed_identical),
        cmocka_unit_test(tsne_threads_identical),
        cmocka_unit_test(tsne_kl_matches_direct),
        cmocka_unit_test(tsne_perplexity_entropy),
        cmocka_unit_test(tsne_coincident_points),
        cmocka_unit_test(tsne_pca_keeps_distances),
        cmocka_unit_test(tsne_invalid_input),
        cmocka_unit_test(tsne_plot_files),
        cmocka_unit_test(tsne_plot_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
