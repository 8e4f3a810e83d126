/* Per-element maths shared by the CPU backend and CUDA kernels. Every function here compiles
 * as C11 and as CUDA device code, so the CPU tests cover the arithmetic the GPU runs. */
#ifndef EUAR_ELEMENTWISE_H
#define EUAR_ELEMENTWISE_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define EUAR_HD __host__ __device__ static inline
#else
#define EUAR_HD static inline
#endif

/* Activation kinds of the encoders and hidden layers. */
typedef enum { EUAR_ACT_RELU, EUAR_ACT_GELU, EUAR_ACT_NONE } ActKind;

EUAR_HD float relu_f(float x) {
    return x > 0.0f ? x : 0.0f;
}

EUAR_HD float relu_grad_f(float x) {
    return x > 0.0f ? 1.0f : 0.0f;
}

/* GELU, tanh approximation (Hendrycks and Gimpel 2016; the form GPT-2 uses):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
#define EUAR_GELU_SCALE 0.7978845608028654f /* sqrt(2 / pi) */
#define EUAR_GELU_CUBE 0.044715f

EUAR_HD float gelu_f(float x) {
    float u = EUAR_GELU_SCALE * (x + EUAR_GELU_CUBE * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
}

EUAR_HD float gelu_grad_f(float x) {
    float u = EUAR_GELU_SCALE * (x + EUAR_GELU_CUBE * x * x * x);
    float t = tanhf(u);
    float du = EUAR_GELU_SCALE * (1.0f + 3.0f * EUAR_GELU_CUBE * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
}

EUAR_HD float act_f(int kind, float x) {
    return kind == EUAR_ACT_RELU ? relu_f(x) : kind == EUAR_ACT_GELU ? gelu_f(x) : x;
}

EUAR_HD float act_grad_f(int kind, float x) {
    return kind == EUAR_ACT_RELU ? relu_grad_f(x) : kind == EUAR_ACT_GELU ? gelu_grad_f(x) : 1.0f;
}

/* Clamp of a raw log-variance to [lo, hi]; the gradient passes only strictly inside. */
EUAR_HD float clamp_f(float x, float lo, float hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

EUAR_HD float clamp_grad_f(float x, float lo, float hi) {
    return (x > lo && x < hi) ? 1.0f : 0.0f;
}

/* KL(N(mu, sigma^2) || N(0, 1)) of one dimension, with lv = log sigma^2:
 * 0.5 (mu^2 + sigma^2 - 1 - lv) (Kingma and Welling 2014, appendix B). */
EUAR_HD float kl_normal_f(float mu, float lv) {
    return 0.5f * (mu * mu + expf(lv) - 1.0f - lv);
}

/* The same from sigma^2 = e^lv when the caller has it, which saves an exp. */
EUAR_HD float kl_normal_var_f(float mu, float var, float lv) {
    return 0.5f * (mu * mu + var - 1.0f - lv);
}

/* Its partial derivatives: d/dmu = mu, d/dlv = 0.5 (sigma^2 - 1). */
EUAR_HD float kl_normal_dmu_f(float mu) {
    return mu;
}

EUAR_HD float kl_normal_dlv_f(float lv) {
    return 0.5f * (expf(lv) - 1.0f);
}

EUAR_HD float kl_normal_dlv_var_f(float var) {
    return 0.5f * (var - 1.0f);
}

/* Softplus log(1 + e^x) in a form that neither overflows for large x nor loses digits for
 * very negative x, and its derivative, the logistic sigmoid. Double precision, because the
 * evidential losses of tmc are computed in double on host copies of [B, C] logits. */
EUAR_HD double softplus_d(double x) {
    return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

EUAR_HD double sigmoid_d(double x) {
    if (x >= 0.0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

/* Below this argument digamma_d and trigamma_d first shift x upwards by the recurrences
 * psi(x) = psi(x + 1) - 1/x and psi'(x) = psi'(x + 1) + 1/x^2. */
#define EUAR_POLYGAMMA_SHIFT 10.0

/* Digamma psi(x) = d/dx log Gamma(x) for x > 0 (NaN otherwise): the recurrence up to x >= 10,
 * then the asymptotic series log x - 1/(2x) - sum_n B_2n / (2n x^2n) through n = 5, with B_2n
 * the Bernoulli numbers 1/6, -1/30, 1/42, -1/30, 5/66. The first omitted term,
 * 691 / (32760 x^12), is below 3e-14 at x = 10. The recurrence adds rounding of a few units in
 * the last place of its largest term 1/x, which matters only for x far below 1. */
EUAR_HD double digamma_d(double x) {
    if (!(x > 0.0))
        return NAN;
    double shift = 0.0;
    while (x < EUAR_POLYGAMMA_SHIFT) {
        shift -= 1.0 / x;
        x += 1.0;
    }
    double r = 1.0 / (x * x);
    double series = r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r * (1.0 / 240 -
                    r * (1.0 / 132)))));
    return shift + log(x) - 0.5 / x - series;
}

/* Trigamma psi'(x) for x > 0 (NaN otherwise): the recurrence up to x >= 10, then the
 * asymptotic series 1/x + 1/(2x^2) + sum_n B_2n / x^(2n+1) through n = 5. The first omitted
 * term, 691 / (2730 x^13), is below 3e-14 at x = 10. */
EUAR_HD double trigamma_d(double x) {
    if (!(x > 0.0))
        return NAN;
    double shift = 0.0;
    while (x < EUAR_POLYGAMMA_SHIFT) {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    double r = 1.0 / (x * x);
    double series = 1.0 / 6 - r * (1.0 / 30 - r * (1.0 / 42 - r * (1.0 / 30 - r * (5.0 / 66))));
    return shift + 1.0 / x + 0.5 * r + r * series / x;
}

/* Uniform in (0, 1), never 0 or 1, from one 32-bit random word: its 24 high bits, offset by
 * half a step. */
EUAR_HD float uniform_from_word_f(uint32_t w) {
    return ((float)(w >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

/* Box-Muller: two independent N(0, 1) values from two random words, r cos(t) and r sin(t)
 * with r = sqrt(-2 log u1) and t = 2 pi u2. */
EUAR_HD void box_muller_f(uint32_t w1, uint32_t w2, float *n1, float *n2) {
    float u1 = uniform_from_word_f(w1);
    float u2 = uniform_from_word_f(w2);
    float r = sqrtf(-2.0f * logf(u1));
    float t = 6.28318530717958647692f * u2;
    *n1 = r * cosf(t);
    *n2 = r * sinf(t);
}

/* Writes the N(0, 1) draws of one Philox block (words w[4]) to out[j] for the positions
 * j = first .. first + 3 that are below n, in the order rng_fill_normal defines. */
EUAR_HD void normal_block_f(float *out, size_t first, size_t n, const uint32_t w[4]) {
    for (int pair = 0; pair < 2; pair++) {
        float a, b;
        box_muller_f(w[2 * pair], w[2 * pair + 1], &a, &b);
        size_t j = first + 2 * (size_t)pair;
        if (j < n)
            out[j] = a;
        if (j + 1 < n)
            out[j + 1] = b;
    }
}

/* Row softmax p[E] of logits l[E]: the maximum is subtracted before exp, the normaliser is
 * summed in double. */
EUAR_HD void softmax_row_f(float *p, const float *l, int e) {
    float mx = -FLT_MAX;
    for (int j = 0; j < e; j++)
        mx = l[j] > mx ? l[j] : mx;
    double total = 0.0;
    for (int j = 0; j < e; j++) {
        p[j] = expf(l[j] - mx);
        total += p[j];
    }
    float inv = (float)(1.0 / total);
    for (int j = 0; j < e; j++)
        p[j] *= inv;
}

/* The k largest entries of p[E] in descending order: indices to sel[k], values to gate[k].
 * Ties go to the lower index. Repeated scans, since k <= E <= 256 are small. */
EUAR_HD void topk_row_f(int32_t *sel, float *gate, const float *p, int e, int k) {
    for (int s = 0; s < k; s++) {
        int best = -1;
        for (int j = 0; j < e; j++) {
            int already_selected = 0;
            for (int t = 0; t < s; t++)
                already_selected |= sel[t] == j;
            if (!already_selected && (best < 0 || p[j] > p[best]))
                best = j;
        }
        sel[s] = best;
        gate[s] = p[best];
    }
}

/* Softmax backward of one row: dlogits_j = p_j (dp_j - sum_i p_i dp_i). */
EUAR_HD void softmax_backward_row_f(float *dlogits, const float *dp, const float *p, int e) {
    float dot = 0.0f;
    for (int j = 0; j < e; j++)
        dot += p[j] * dp[j];
    for (int j = 0; j < e; j++)
        dlogits[j] = p[j] * (dp[j] - dot);
}

/* Cross-entropy of one row of logits l[C] against class y: writes the probabilities to
 * prob[C] and, unless dlogits is NULL, scale * (prob - onehot(y)) / b to dlogits[C].
 * Returns -log prob_y in double. */
EUAR_HD double cross_entropy_row_f(float *dlogits, float *prob, const float *l, int c, int y,
                                   float scale, int b) {
    float mx = -FLT_MAX;
    for (int j = 0; j < c; j++)
        mx = l[j] > mx ? l[j] : mx;
    double total = 0.0;
    for (int j = 0; j < c; j++) {
        prob[j] = expf(l[j] - mx);
        total += prob[j];
    }
    for (int j = 0; j < c; j++)
        prob[j] = (float)(prob[j] / total);
    if (dlogits)
        for (int j = 0; j < c; j++)
            dlogits[j] = scale * (prob[j] - (j == y ? 1.0f : 0.0f)) / (float)b;
    return -(double)(l[y] - mx) + log(total);
}

/* Gradient of scale * mean_b (pred - y)^2 at one row with difference diff = pred - y. */
EUAR_HD float mse_grad_f(float diff, float scale, int b) {
    return scale * 2.0f * diff / (float)b;
}

/* Gaussian expert, one dimension: sigma = exp(clamp(raw) / 2). */
EUAR_HD float expert_sigma_f(float raw, float lv_min, float lv_max) {
    return expf(0.5f * clamp_f(raw, lv_min, lv_max));
}

/* Gaussian expert backward, one dimension: the gradients at mu and at the raw log-variance
 * from the incoming dz (0 when absent), the slot's KL weight wkl and s2 weight ws2 (already
 * divided by H). dz/dlv = 0.5 sigma eps and d(sigma^2)/dlv = sigma^2. */
EUAR_HD void expert_backward_f(float *dmu, float *draw, float mu, float raw, float sigma,
                               float dz, float eps, float wkl, float ws2, float lv_min,
                               float lv_max) {
    float var = sigma * sigma;
    float g_mu = wkl * kl_normal_dmu_f(mu) + dz;
    float g_lv = wkl * kl_normal_dlv_var_f(var) + ws2 * var + dz * 0.5f * sigma * eps;
    *dmu = g_mu;
    *draw = g_lv * clamp_grad_f(raw, lv_min, lv_max);
}

/* Constants of one Adam step, shared by every parameter: step_size = lr / (1 - beta1^t),
 * inv_sqrt_c2 = 1 / sqrt(1 - beta2^t), decay = lr * weight_decay. */
typedef struct {
    float beta1, beta2, step_size, inv_sqrt_c2, eps, decay;
} AdamStep;

/* The constants of step t (1-based) from the optimizer settings; powf runs once per step on
 * the host, so every backend updates with the same constants. */
EUAR_HD AdamStep adam_step_make(float lr, float beta1, float beta2, float eps, float wd,
                                int t) {
    AdamStep a;
    a.beta1 = beta1;
    a.beta2 = beta2;
    a.step_size = lr / (1.0f - powf(beta1, (float)t));
    a.inv_sqrt_c2 = 1.0f / sqrtf(1.0f - powf(beta2, (float)t));
    a.eps = eps;
    a.decay = lr * wd;
    return a;
}

/* Adam update of one parameter (Kingma and Ba 2015, algorithm 1), with the bias corrections
 * folded into two constants as PyTorch 1.13's torch.optim.Adam does, so each element costs
 * one square root and one division, and decoupled weight decay (Loshchilov and Hutter 2019)
 * when decay > 0. */
EUAR_HD void adam_step_f(float *p, float *m, float *v, float g, AdamStep a) {
    *m = a.beta1 * *m + (1.0f - a.beta1) * g;
    *v = a.beta2 * *v + (1.0f - a.beta2) * g * g;
    float denom = sqrtf(*v) * a.inv_sqrt_c2 + a.eps;
    *p -= a.step_size * *m / denom + a.decay * *p;
}

#endif
