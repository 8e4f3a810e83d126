/* Exact t-SNE into 2-D (van der Maaten and Hinton, JMLR 9, 2008), with the optimisation
 * schedule of van der Maaten's bhtsne (tsne.cpp, 2014) and an optional PCA step through
 * LAPACK dsyevr from OpenBLAS. */
#include "report/tsne.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"

/* LAPACK symmetric eigensolver (Fortran ABI). Debian's libopenblas0 0.3.21 exports it, but
 * ships no lapacke.h; the trailing arguments are the hidden lengths of the three character
 * arguments that gfortran passes. */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n,
                    double *a, const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info, size_t jobz_len, size_t range_len,
                    size_t uplo_len);

/* Standard deviation of the random start. Algorithm 1 of the 2008 paper draws Y(0) from
 * N(0, 1e-4 I), a variance of 1e-4, where bhtsne multiplies randn() by 1e-4. */
#define TSNE_INIT_STD 1e-2

void tsne_options_default(TsneOptions *options) {
    memset(options, 0, sizeof(*options));
    options->perplexity = 30.0;
    options->iterations = 1000;
    options->pca_dims = 50;
    options->learning_rate = 200.0;
    options->exaggeration = 12.0;
    options->exaggeration_iterations = 250;
    options->momentum_initial = 0.5;
    options->momentum_final = 0.8;
}

/* ---- PCA ---------------------------------------------------------------------------------- */

/* Computes the k largest eigenpairs of the symmetric m x m matrix a (overwritten): values into
 * w[k] in decreasing order and vectors into the columns of z [m, k] (column-major, column c
 * belongs to w[c]). Returns 0 or -1 with err_set(). */
static int eigen_top(double *a, int m, int k, double *w, double *z) {
    const char jobz = 'V', range = 'I', uplo = 'U';
    int il = m - k + 1, iu = m, found = 0, info = 0, lwork = -1, liwork = -1, iwork_size = 0;
    double vl = 0.0, vu = 0.0, abstol = 0.0, work_size = 0.0;
    /* With w of length k and isuppz of length 2k, dsyevr of OpenBLAS 0.3.21 broke the heap in
     * a test, so both get room for the whole spectrum of order m. */
    int *isuppz = xmalloc(2 * (size_t)m * sizeof(int));
    double *w_asc = xmalloc((size_t)m * sizeof(double));
    double *z_asc = xmalloc((size_t)m * (size_t)k * sizeof(double));
    dsyevr_(&jobz, &range, &uplo, &m, a, &m, &vl, &vu, &il, &iu, &abstol, &found, w_asc, z_asc,
            &m, isuppz, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1, 1);

    if (info == 0) {
        lwork = (int)work_size;
        liwork = iwork_size;
        double *work = xmalloc((size_t)lwork * sizeof(double));
        int *iwork = xmalloc((size_t)liwork * sizeof(int));
        dsyevr_(&jobz, &range, &uplo, &m, a, &m, &vl, &vu, &il, &iu, &abstol, &found, w_asc,
                z_asc, &m, isuppz, work, &lwork, iwork, &liwork, &info, 1, 1, 1);
        free(work);
        free(iwork);
    }
    int rc = 0;
    if (info != 0 || found != k) {
        rc = err_set("tsne: LAPACK dsyevr failed on the %d x %d PCA matrix (info %d, %d of %d "
                     "eigenvalues); set pca_dims to 0 to embed the input dimensions as they are",
                     m, m, info, found, k);
    } else {
        /* dsyevr returns ascending eigenvalues; the leading component goes first. */
        for (int c = 0; c < k; c++) {
            w[c] = w_asc[k - 1 - c];
            memcpy(z + (size_t)c * m, z_asc + (size_t)(k - 1 - c) * m, (size_t)m * sizeof(double));
        }
    }
    free(isuppz);
    free(w_asc);
    free(z_asc);
    return rc;
}

int tsne_pca(double *out, const float *x, int n, int d, int k) {
    EUAR_ASSERT(n >= 1 && d >= 1 && k >= 1 && k <= n && k <= d);
    size_t nd = (size_t)n * d;
    double *xc = xmalloc(nd * sizeof(double));
    double *mean = xcalloc((size_t)d, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            mean[j] += x[(size_t)i * d + j];
    for (int j = 0; j < d; j++)
        mean[j] /= n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            xc[(size_t)i * d + j] = x[(size_t)i * d + j] - mean[j];
    free(mean);

    /* The scatter matrix Xc^T Xc and the Gram matrix Xc Xc^T share their nonzero eigenvalues;
     * the smaller one is decomposed. Both are filled completely, so the triangle LAPACK reads
     * does not depend on the storage order. */
    int m = d <= n ? d : n;
    double *a = xmalloc((size_t)m * m * sizeof(double));
    /* One OpenBLAS thread: how the threaded dsyrk, dsymv and dgemm of OpenBLAS 0.3.21 split
     * their sums depends on the thread count, and t-SNE magnifies a difference in the last bit
     * into a different picture. The price is the O(m^3) reduction of dsyevr on one core. */
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    if (d <= n)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, 1.0, xc, d, 0.0, a, d);
    else
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, d, 1.0, xc, d, 0.0, a, n);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < i; j++)
            a[(size_t)i * m + j] = a[(size_t)j * m + i];

    double *w = xmalloc((size_t)k * sizeof(double));
    double *z = xmalloc((size_t)m * k * sizeof(double));
    int rc = eigen_top(a, m, k, w, z);
    if (rc == 0 && d <= n) {
        /* out = Xc V, where V [d, k] is column-major z, that is z read as a row-major [k, d]. */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, k, d, 1.0, xc, d, z, d, 0.0, out,
                    k);
    } else if (rc == 0) {
        /* With Xc = U S V^T, the projection Xc V is U S: eigenvector u_c of the Gram matrix
         * times sqrt(lambda_c). Rounding can leave a zero eigenvalue slightly negative. */
        for (int c = 0; c < k; c++) {
            double s = sqrt(w[c] > 0.0 ? w[c] : 0.0);
            for (int i = 0; i < n; i++)
                out[(size_t)i * k + c] = z[(size_t)c * n + i] * s;
        }
    }
    openblas_set_num_threads(threads);
    free(xc);
    free(a);
    free(w);
    free(z);
    return rc;
}

/* ---- input probabilities ------------------------------------------------------------------ */

/* Finds the Gaussian precision beta of one row so that the entropy of
 * p_j = exp(-beta d_j) / sum_k exp(-beta d_k) is log_perp, and writes the normalised p into p
 * (p[self] = 0). dist2 contains the squared distances of the row. Distances are shifted by their
 * minimum, which leaves p unchanged and keeps the nearest weight at 1, so the sum never
 * underflows. Returns 1 when the entropy is within TSNE_ENTROPY_TOL, else 0. */
static int search_row(double *p, const double *dist2, int n, int self, double log_perp) {
    double d_min = INFINITY, d_sum = 0.0;
    for (int j = 0; j < n; j++) {
        if (j != self && dist2[j] < d_min)
            d_min = dist2[j];
    }
    for (int j = 0; j < n; j++)
        if (j != self)
            d_sum += dist2[j] - d_min;
    /* Starting from the inverse mean distance puts beta on the data's scale, so the search
     * needs few doublings however the input is scaled. */
    double beta = d_sum > 0.0 ? (n - 1) / d_sum : 1.0;
    double beta_lo = 0.0, beta_hi = INFINITY, sum = 1.0;
    int converged = 0;
    for (int step = 0; step < TSNE_SEARCH_STEPS && !converged; step++) {
        double weighted = 0.0;
        sum = 0.0;
        for (int j = 0; j < n; j++) {
            double shifted = dist2[j] - d_min;
            p[j] = j == self ? 0.0 : exp(-beta * shifted);
            sum += p[j];
            weighted += p[j] * shifted;
        }
        /* H = log(sum) + beta E_p[d] for the normalised Gaussian row, in nats. */
        double entropy = log(sum) + beta * weighted / sum;
        double diff = entropy - log_perp;
        if (fabs(diff) < TSNE_ENTROPY_TOL) {
            converged = 1;
        } else if (diff > 0.0) {
            /* Too flat: a larger precision narrows the Gaussian. */
            beta_lo = beta;
            beta = isinf(beta_hi) ? beta * 2.0 : 0.5 * (beta + beta_hi);
        } else {
            beta_hi = beta;
            beta = 0.5 * (beta + beta_lo);
        }
    }
    for (int j = 0; j < n; j++)
        p[j] /= sum;
    return converged;
}

int tsne_conditional_p(double *p_out, const double *x, int n, int d, double perplexity) {
    double log_perp = log(perplexity);
    double *dist2 = xmalloc((size_t)n * sizeof(double));
    int missed = 0;
    for (int i = 0; i < n; i++) {
        const double *xi = x + (size_t)i * d;
        for (int j = 0; j < n; j++) {
            const double *xj = x + (size_t)j * d;
            double s = 0.0;
            for (int k = 0; k < d; k++) {
                double diff = xi[k] - xj[k];
                s += diff * diff;
            }
            dist2[j] = s;
        }
        missed += !search_row(p_out + (size_t)i * n, dist2, n, i, log_perp);
    }
    free(dist2);
    return missed;
}

/* Turns the conditional P_{j|i} in p [n, n] into the joint P_ij = (P_{j|i} + P_{i|j}) / (2n) in
 * place. Values below DBL_MIN become 0 so that no subnormal number slows the gradient loop. */
static void symmetrise(double *p, int n) {
    for (int i = 0; i < n; i++) {
        p[(size_t)i * n + i] = 0.0;
        for (int j = i + 1; j < n; j++) {
            double v = (p[(size_t)i * n + j] + p[(size_t)j * n + i]) / (2.0 * n);
            if (v < DBL_MIN)
                v = 0.0;
            p[(size_t)i * n + j] = v;
            p[(size_t)j * n + i] = v;
        }
    }
}

/* ---- optimisation ------------------------------------------------------------------------- */

/* Writes the gradient of KL(exaggeration * P || Q) with respect to y [n, 2] into grad [n, 2]:
 * dC/dy_i = 4 sum_j (e p_ij - q_ij) w_ij (y_i - y_j), w_ij = 1 / (1 + |y_i - y_j|^2),
 * q_ij = w_ij / Z (the t-SNE gradient of the 2008 paper). It is split into the attractive sum over
 * e p_ij w_ij and the repulsive sum over w_ij^2 / Z, so one pass over the pairs i < j needs no
 * n x n matrix of w. acc [n, 4] is scratch. */
static void tsne_gradient(double *grad, double *acc, const double *p, const double *y, int n,
                          double exaggeration) {
    memset(acc, 0, (size_t)n * 4 * sizeof(double));
    double z = 0.0;
    for (int i = 0; i < n; i++) {
        const double *prow = p + (size_t)i * n;
        double yi0 = y[2 * i], yi1 = y[2 * i + 1];
        double a0 = 0.0, a1 = 0.0, r0 = 0.0, r1 = 0.0, z_row = 0.0;
        for (int j = i + 1; j < n; j++) {
            double dx = yi0 - y[2 * j], dy = yi1 - y[2 * j + 1];
            double w = 1.0 / (1.0 + dx * dx + dy * dy);
            double attract = exaggeration * prow[j] * w;
            double repel = w * w;
            z_row += w;
            a0 += attract * dx;
            a1 += attract * dy;
            r0 += repel * dx;
            r1 += repel * dy;
            double *accj = acc + 4 * (size_t)j;
            accj[0] -= attract * dx;
            accj[1] -= attract * dy;
            accj[2] -= repel * dx;
            accj[3] -= repel * dy;
        }
        double *acci = acc + 4 * (size_t)i;
        acci[0] += a0;
        acci[1] += a1;
        acci[2] += r0;
        acci[3] += r1;
        z += 2.0 * z_row;
    }
    for (int i = 0; i < n; i++) {
        const double *acci = acc + 4 * (size_t)i;
        grad[2 * i] = 4.0 * (acci[0] - acci[2] / z);
        grad[2 * i + 1] = 4.0 * (acci[1] - acci[3] / z);
    }
}

/* Returns KL(P || Q) = sum_{i != j} p_ij log(p_ij / q_ij) of the embedding y [n, 2], with
 * log q_ij = log w_ij - log Z, so one pass gives both Z and the sum. */
static double tsne_kl(const double *p, const double *y, int n) {
    double z = 0.0, p_sum = 0.0, cross = 0.0;
    for (int i = 0; i < n; i++) {
        const double *prow = p + (size_t)i * n;
        for (int j = i + 1; j < n; j++) {
            double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
            double w = 1.0 / (1.0 + dx * dx + dy * dy);
            z += 2.0 * w;
            if (prow[j] > 0.0) {
                p_sum += 2.0 * prow[j];
                cross += 2.0 * prow[j] * (log(prow[j]) - log(w));
            }
        }
    }
    return cross + p_sum * log(z);
}

/* Subtracts the mean of y [n, 2]: the cost does not depend on a translation, which would
 * otherwise drift with the momentum. */
static void centre(double *y, int n) {
    double m0 = 0.0, m1 = 0.0;
    for (int i = 0; i < n; i++) {
        m0 += y[2 * i];
        m1 += y[2 * i + 1];
    }
    m0 /= n;
    m1 /= n;
    for (int i = 0; i < n; i++) {
        y[2 * i] -= m0;
        y[2 * i + 1] -= m1;
    }
}

/* Runs the gradient descent on y [n, 2] and fills the KL fields of stats. Each step uses the
 * delta-bar-delta gains of Jacobs (Neural Networks 1, 1988): a gain grows by 0.2 while the
 * gradient keeps its direction against the last update, else shrinks by 0.8, and stays at least
 * 0.01 (bhtsne). */
static void optimise(double *y, const double *p, int n, const TsneOptions *o, double eta,
                     TsneStats *stats) {
    size_t len = 2 * (size_t)n;
    double *grad = xmalloc(len * sizeof(double));
    double *update = xcalloc(len, sizeof(double));
    double *gains = xmalloc(len * sizeof(double));
    double *acc = xmalloc(2 * len * sizeof(double));
    for (size_t k = 0; k < len; k++)
        gains[k] = 1.0;
    stats->kl_initial = tsne_kl(p, y, n);
    stats->kl_exaggeration = stats->kl_initial;
    for (int t = 0; t < o->iterations; t++) {
        int early = t < o->exaggeration_iterations;
        double momentum = early ? o->momentum_initial : o->momentum_final;
        tsne_gradient(grad, acc, p, y, n, early ? o->exaggeration : 1.0);
        for (size_t k = 0; k < len; k++) {
            if (grad[k] * update[k] < 0.0)
                gains[k] += 0.2;
            else
                gains[k] *= 0.8;
            if (gains[k] < 0.01)
                gains[k] = 0.01;
            update[k] = momentum * update[k] - eta * gains[k] * grad[k];
            y[k] += update[k];
        }
        centre(y, n);
        if (t + 1 == o->exaggeration_iterations)
            stats->kl_exaggeration = tsne_kl(p, y, n);
    }
    stats->kl_final = tsne_kl(p, y, n);
    if (o->iterations < o->exaggeration_iterations)
        stats->kl_exaggeration = stats->kl_final;
    free(grad);
    free(update);
    free(gains);
    free(acc);
}

/* ---- entry points ------------------------------------------------------------------------- */

/* Checks sizes and options. Returns 0 or -1 with err_set(). */
static int check_arguments(const float *x, int n, int d, const TsneOptions *o,
                           const float *y_out) {
    if (!x || !o || !y_out)
        return err_set("tsne: x, options and y_out must not be NULL");
    if (n < 2)
        return err_set("tsne: %d point(s) given, but t-SNE needs at least 2; pass a split with "
                       "more samples", n);
    if (n > TSNE_MAX_POINTS)
        return err_set("tsne: %d points given, more than the %d exact t-SNE accepts (it needs "
                       "8 n^2 bytes and O(n^2) time per iteration); embed a subsample", n,
                       TSNE_MAX_POINTS);
    if (d < 1)
        return err_set("tsne: input dimension %d is invalid; it must be at least 1", d);
    double max_perp = (n - 1) / 3.0;
    if (!isfinite(o->perplexity) || o->perplexity <= 1.0)
        return err_set("tsne: perplexity %g is invalid; it must be a number above 1 (the "
                       "effective number of neighbours, 30 by default)", o->perplexity);
    /* bhtsne rejects 3 * perplexity > n - 1 as well: the Gaussian of each point then needs
     * nearly every other point as a neighbour, and P loses the local structure it encodes. */
    if (o->perplexity > max_perp)
        return err_set("tsne: perplexity %g is too large for %d points; it must be at most "
                       "(n - 1) / 3 = %g, so use a smaller perplexity or more points",
                       o->perplexity, n, max_perp);
    if (o->iterations < 1 || o->iterations > TSNE_MAX_ITERATIONS)
        return err_set("tsne: %d iterations is invalid; use 1 to %d (1000 is the default)",
                       o->iterations, TSNE_MAX_ITERATIONS);
    if (o->pca_dims < 0)
        return err_set("tsne: pca_dims %d is invalid; use 0 to keep the input dimensions or a "
                       "positive number of principal components", o->pca_dims);
    if (!isfinite(o->learning_rate) || o->learning_rate < 0.0)
        return err_set("tsne: learning rate %g is invalid; use a positive value, or 0 for "
                       "max(n / 12, 50)", o->learning_rate);
    if (!isfinite(o->exaggeration) || o->exaggeration < 1.0 || o->exaggeration_iterations < 0)
        return err_set("tsne: exaggeration %g for %d iterations is invalid; the factor must be "
                       "at least 1 and the count at least 0", o->exaggeration,
                       o->exaggeration_iterations);
    if (!(o->momentum_initial >= 0.0 && o->momentum_initial < 1.0) ||
        !(o->momentum_final >= 0.0 && o->momentum_final < 1.0))
        return err_set("tsne: momentum %g then %g is invalid; each must be in [0, 1)",
                       o->momentum_initial, o->momentum_final);
    for (size_t k = 0; k < (size_t)n * d; k++)
        if (!isfinite(x[k]))
            return err_set("tsne: x[%zu][%zu] is %g; the input must be finite, so check the "
                           "representations for NaN or overflow", k / (size_t)d, k % (size_t)d,
                           (double)x[k]);
    return 0;
}

int tsne_embed_options(const float *x, int n, int d, const TsneOptions *options, uint64_t seed,
                       float *y_out, TsneStats *stats) {
    double start = time_now();
    if (check_arguments(x, n, d, options, y_out) != 0)
        return -1;
    TsneStats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof(*stats));

    /* PCA only when it drops dimensions: with n - 1 <= pca_dims the centred rows already lie
     * in a space of at most pca_dims dimensions and the distances would not change. */
    int dims = d;
    double *xr;
    if (options->pca_dims > 0 && d > options->pca_dims && n - 1 > options->pca_dims) {
        dims = options->pca_dims;
        xr = xmalloc((size_t)n * dims * sizeof(double));
        if (tsne_pca(xr, x, n, d, dims) != 0) {
            free(xr);
            return -1;
        }
    } else {
        xr = xmalloc((size_t)n * d * sizeof(double));
        for (size_t k = 0; k < (size_t)n * d; k++)
            xr[k] = x[k];
    }
    stats->dims = dims;
    double eta = options->learning_rate > 0.0 ? options->learning_rate : EUAR_MAX(n / 12.0, 50.0);
    LOG_DEBUG("tsne: n %d, d %d, dims %d, perplexity %g, iterations %d, learning rate %g, "
              "seed %llu", n, d, dims, options->perplexity, options->iterations, eta,
              (unsigned long long)seed);

    double *p = xmalloc((size_t)n * n * sizeof(double));
    stats->unconverged_rows = tsne_conditional_p(p, xr, n, dims, options->perplexity);
    free(xr);
    if (stats->unconverged_rows > 0)
        LOG_WARN("tsne: the perplexity search missed entropy log(%g) +- %g on %d of %d rows, "
                 "which happens when many points coincide; those rows keep the closest match",
                 options->perplexity, TSNE_ENTROPY_TOL, stats->unconverged_rows, n);
    symmetrise(p, n);

    RngStream stream = rng_substream(rng_stream(seed, EUAR_RNG_INIT),
                                     hash_fnv1a64("tsne", 4, EUAR_FNV_OFFSET));
    float *draws = xmalloc(2 * (size_t)n * sizeof(float));
    rng_fill_normal(stream, 0, 0, draws, 2 * (size_t)n);
    double *y = xmalloc(2 * (size_t)n * sizeof(double));
    for (size_t k = 0; k < 2 * (size_t)n; k++)
        y[k] = TSNE_INIT_STD * draws[k];
    free(draws);
    centre(y, n);

    optimise(y, p, n, options, eta, stats);
    free(p);
    int rc = 0;
    for (size_t k = 0; k < 2 * (size_t)n && rc == 0; k++)
        if (!isfinite(y[k]))
            rc = err_set("tsne: the embedding diverged (y[%zu] is %g) with learning rate %g; "
                         "use a smaller learning rate", k / 2, y[k], eta);
    for (size_t k = 0; k < 2 * (size_t)n && rc == 0; k++)
        y_out[k] = (float)y[k];
    free(y);
    stats->seconds = time_now() - start;
    return rc;
}

int tsne_embed(const float *x, int n, int d, double perplexity, uint64_t seed, int iterations,
               float *y_out, TsneStats *stats) {
    TsneOptions options;
    tsne_options_default(&options);
    options.perplexity = perplexity;
    options.iterations = iterations;
    return tsne_embed_options(x, n, d, &options, seed, y_out, stats);
}
