/* Per-element maths shared by the CPU backend and CUDA kernels. Every function here compiles
 * as C11 and as CUDA device code, so the CPU tests cover the arithmetic the GPU runs. */
#ifndef EUAR_ELEMENTWISE_H
#define EUAR_ELEMENTWISE_H

#include <math.h>

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

/* Constants of one Adam step, shared by every parameter: step_size = lr / (1 - beta1^t),
 * inv_sqrt_c2 = 1 / sqrt(1 - beta2^t), decay = lr * weight_decay. */
typedef struct {
    float beta1, beta2, step_size, inv_sqrt_c2, eps, decay;
} AdamStep;

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
