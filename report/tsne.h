/* Exact t-SNE (van der Maaten and Hinton, "Visualizing Data using t-SNE", JMLR 9, 2008) of a
 * set of representations into 2-D, and a gnuplot scatter plot of the result coloured by class.
 * The method costs O(n^2) time per iteration and 8 n^2 bytes, so it is meant for a test split
 * of a few thousand points at most (TSNE_MAX_POINTS). */
#ifndef EUAR_REPORT_TSNE_H
#define EUAR_REPORT_TSNE_H

#include <stdint.h>

/* Largest number of points accepted: the symmetric P matrix takes 8 n^2 bytes (200 MB here)
 * and one iteration costs n^2 / 2 pair updates. Larger sets need Barnes-Hut t-SNE. */
#define TSNE_MAX_POINTS 5000

/* Largest number of iterations accepted. */
#define TSNE_MAX_ITERATIONS 100000

/* The perplexity binary search stops when |H(P_i) - log(perplexity)| is below this (entropy in
 * nats) or after TSNE_SEARCH_STEPS halvings; both values are those of van der Maaten's bhtsne
 * (tsne.cpp, 2014). */
#define TSNE_ENTROPY_TOL 1e-5
#define TSNE_SEARCH_STEPS 200

/* Settings of one embedding; tsne_options_default() gives the values of bhtsne's exact mode. */
typedef struct {
    double perplexity;         /* effective number of neighbours; 1 < perplexity <= (n-1)/3 */
    int iterations;            /* gradient steps, 1..TSNE_MAX_ITERATIONS */
    int pca_dims;              /* reduce to this many principal components first when d is
                                * larger; 0 uses the input dimensions as they are */
    double learning_rate;      /* step size eta; 0 means max(n / 12, 50) (Belkina et al., Nature
                                * Communications 10, 2019) */
    double exaggeration;       /* factor on P during the first exaggeration_iterations */
    int exaggeration_iterations;
    double momentum_initial;   /* momentum before exaggeration_iterations, then momentum_final */
    double momentum_final;
} TsneOptions;

/* Diagnostics of one embedding. */
typedef struct {
    int dims;                 /* input dimensions after the PCA step */
    int unconverged_rows;     /* rows whose perplexity search missed TSNE_ENTROPY_TOL */
    double kl_initial;        /* KL(P || Q) at the random start */
    double kl_exaggeration;   /* KL(P || Q) with the true P when exaggeration ends */
    double kl_final;          /* KL(P || Q) after the last iteration */
    double seconds;           /* wall time of the whole call */
} TsneStats;

/* Fills the defaults: perplexity 30, 1000 iterations, PCA to 50 dimensions (the initial_dims of
 * van der Maaten's reference tsne.py), learning rate 200, exaggeration 12 for 250 iterations,
 * momentum 0.5 then 0.8 (bhtsne, tsne.cpp, 2014). */
void tsne_options_default(TsneOptions *options);

/* Embeds the rows of x [n, d] into y_out [n, 2] with exact t-SNE. The start is drawn from
 * N(0, 1e-4 I) on the Philox stream of (seed, EUAR_RNG_INIT, tag "tsne"), so the output is the
 * same for the same input, options and seed on one OpenBLAS build and CPU type, whatever the
 * OpenBLAS thread count. stats may be NULL. Returns 0, or -1 with err_set() for invalid sizes,
 * non-finite input or options out of range. */
int tsne_embed_options(const float *x, int n, int d, const TsneOptions *options, uint64_t seed,
                       float *y_out, TsneStats *stats);

/* Embeds with tsne_options_default() but the given perplexity and iterations; see
 * tsne_embed_options(). */
int tsne_embed(const float *x, int n, int d, double perplexity, uint64_t seed, int iterations,
               float *y_out, TsneStats *stats);

/* Computes the conditional probabilities P_{j|i} of a Gaussian around each row of x [n, d]
 * into p_out [n, n]: row i sums to 1, has p_ii = 0, and its precision is found by binary search
 * so that its entropy in nats is log(perplexity) within TSNE_ENTROPY_TOL. Returns the number of
 * rows that missed the tolerance (rows with all distances equal cannot meet it). */
int tsne_conditional_p(double *p_out, const double *x, int n, int d, double perplexity);

/* Projects the centred rows of x [n, d] onto their k leading principal components, into
 * out [n, k] (1 <= k <= min(n, d)), leading component first. The eigenvectors come from LAPACK
 * dsyevr on the smaller of the d x d scatter matrix and the n x n Gram matrix, computed on one
 * OpenBLAS thread. Returns 0, or -1 with err_set() when LAPACK fails. */
int tsne_pca(double *out, const float *x, int n, int d, int k);

/* Writes DIR/STEM.dat (columns x, y, class index), DIR/STEM.gp (a scatter plot with one colour
 * and legend entry per class) and, when gnuplot is in PATH, runs it in DIR to draw STEM.png and
 * STEM.svg. labels[i] is in [0, num_classes); class_names has num_classes entries. Without
 * gnuplot it logs one line and returns 0. Returns -1 with err_set() for invalid arguments, a file
 * that cannot be written or a failed gnuplot run, whose images are removed. */
int tsne_plot(const char *dir, const char *stem, const float *y, const int32_t *labels, int n,
              const char *const *class_names, int num_classes, const char *title);

#endif
