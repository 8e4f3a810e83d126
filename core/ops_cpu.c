/* CPU backend: OpenBLAS for matrix products, plain C loops over the shared per-element maths
 * of elementwise.h for the rest. This is the reference every other backend is tested against. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ops.h"

/* Element-wise loops get one clone per x86-64 level (AVX-512, AVX2 with FMA, baseline),
 * chosen at load time by GCC's function multiversioning, so one binary runs everywhere and
 * uses the widest vectors the CPU has. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(EUAR_NO_CLONES)
#define EUAR_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", \
                                                        "default")))
#else
#define EUAR_VECTOR_CLONES
#endif

static void *cpu_alloc(size_t bytes) {
    /* 64-byte alignment suits AVX-512 loads in OpenBLAS kernels. */
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        euar_fatal(__FILE__, __LINE__, "out of memory allocating %zu bytes", bytes);
    memset(p, 0, rounded);
    return p;
}

static void cpu_release(void *p) {
    free(p);
}

static void cpu_copy(void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
}

static void cpu_zero(void *p, size_t bytes) {
    memset(p, 0, bytes);
}

static void cpu_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void cpu_gemm_strided_batched(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                     const float *a, int lda, size_t stride_a, const float *b,
                                     int ldb, size_t stride_b, float beta, float *c, int ldc,
                                     size_t stride_c, int count) {
    for (int i = 0; i < count; i++)
        cpu_gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
                 beta, c + i * stride_c, ldc);
}

EUAR_VECTOR_CLONES
static void cpu_bias_add(float *y, const float *bias, int rows, int cols, int ldy) {
    for (int r = 0; r < rows; r++) {
        float *row = y + (size_t)r * ldy;
        for (int c = 0; c < cols; c++)
            row[c] += bias[c];
    }
}

EUAR_VECTOR_CLONES
static void cpu_bias_grad(float *dbias, const float *dy, int rows, int cols, int ldy) {
    for (int r = 0; r < rows; r++) {
        const float *row = dy + (size_t)r * ldy;
        for (int c = 0; c < cols; c++)
            dbias[c] += row[c];
    }
}

EUAR_VECTOR_CLONES
static void cpu_scale(float *x, float alpha, size_t n) {
    for (size_t i = 0; i < n; i++)
        x[i] *= alpha;
}

EUAR_VECTOR_CLONES
static void cpu_act_forward(ActKind kind, float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = act_f(kind, x[i]);
}

EUAR_VECTOR_CLONES
static void cpu_act_backward(ActKind kind, float *dx, const float *dy, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * act_grad_f(kind, x[i]);
}

static void cpu_gather_rows(float *dst, int ldd, const float *src, int lds, const int32_t *idx,
                            int n, int cols) {
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * ldd, src + (size_t)idx[i] * lds, (size_t)cols * sizeof(float));
}

static void cpu_gather_rows_u8(float *dst, int ldd, const uint8_t *src, int lds,
                               const int32_t *idx, int n, int cols, float scale) {
    for (int i = 0; i < n; i++) {
        float *d = dst + (size_t)i * ldd;
        const uint8_t *s = src + (size_t)idx[i] * lds;
        for (int c = 0; c < cols; c++)
            d[c] = scale * (float)s[c];
    }
}

static void cpu_gather_rows_i32(int32_t *dst, int ldd, const int32_t *src, int lds,
                                const int32_t *idx, int n, int cols) {
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * ldd, src + (size_t)idx[i] * lds, (size_t)cols * sizeof(int32_t));
}

static void cpu_embedding_mean_forward(float *out, const float *emb, const int32_t *tok,
                                       const int32_t *len, int b, int t, int h) {
    for (int r = 0; r < b; r++) {
        float *o = out + (size_t)r * h;
        memset(o, 0, sizeof(float) * (size_t)h);
        int n = len[r];
        for (int s = 0; s < n; s++) {
            const float *e = emb + (size_t)tok[(size_t)r * t + s] * h;
            for (int d = 0; d < h; d++)
                o[d] += e[d];
        }
        if (n > 0) {
            float inv = 1.0f / (float)n;
            for (int d = 0; d < h; d++)
                o[d] *= inv;
        }
    }
}

static void cpu_embedding_mean_backward(float *demb, const float *dout, const int32_t *tok,
                                        const int32_t *len, int b, int t, int h) {
    for (int r = 0; r < b; r++) {
        int n = len[r];
        if (n == 0)
            continue;
        float inv = 1.0f / (float)n;
        const float *g = dout + (size_t)r * h;
        for (int s = 0; s < n; s++) {
            float *e = demb + (size_t)tok[(size_t)r * t + s] * h;
            for (int d = 0; d < h; d++)
                e[d] += inv * g[d];
        }
    }
}

static void cpu_scatter_add_rows(float *dst, int ldd, const float *src, int lds,
                                 const int32_t *idx, int n, int cols) {
    for (int i = 0; i < n; i++) {
        float *d = dst + (size_t)idx[i] * ldd;
        const float *s = src + (size_t)i * lds;
        for (int c = 0; c < cols; c++)
            d[c] += s[c];
    }
}

static void cpu_copy_block(float *dst, int ldd, const float *src, int lds, int rows, int cols,
                           int accumulate) {
    for (int r = 0; r < rows; r++) {
        float *d = dst + (size_t)r * ldd;
        const float *s = src + (size_t)r * lds;
        if (accumulate) {
            for (int c = 0; c < cols; c++)
                d[c] += s[c];
        } else {
            memcpy(d, s, (size_t)cols * sizeof(float));
        }
    }
}

static void cpu_softmax_topk(float *p, float *gate, int32_t *sel, const float *logits, int b,
                             int e, int k) {
    for (int r = 0; r < b; r++) {
        float *pr = p + (size_t)r * e;
        softmax_row_f(pr, logits + (size_t)r * e, e);
        topk_row_f(sel + (size_t)r * k, gate + (size_t)r * k, pr, e, k);
    }
}

static void cpu_softmax_backward(float *dlogits, const float *dp, const float *p, int b, int e) {
    for (int r = 0; r < b; r++)
        softmax_backward_row_f(dlogits + (size_t)r * e, dp + (size_t)r * e, p + (size_t)r * e, e);
}

EUAR_VECTOR_CLONES
static void cpu_expert_forward(float *z, float *sd, float *kl, float *s2, const float *y,
                               const float *eps, int rows, int h, float lv_min, float lv_max) {
    for (int r = 0; r < rows; r++) {
        const float *mu = y + (size_t)r * 2 * h;
        const float *raw = mu + h;
        const float *er = eps ? eps + (size_t)r * h : NULL;
        float *zr = z + (size_t)r * h;
        float *sdr = sd ? sd + (size_t)r * h : NULL;
        float kl_sum = 0.0f, s2_sum = 0.0f;
        for (int d = 0; d < h; d++) {
            float lv = clamp_f(raw[d], lv_min, lv_max);
            float sigma = expert_sigma_f(raw[d], lv_min, lv_max);
            float var = sigma * sigma;
            zr[d] = er ? mu[d] + sigma * er[d] : mu[d];
            if (sdr)
                sdr[d] = sigma;
            kl_sum += kl_normal_var_f(mu[d], var, lv);
            s2_sum += var;
        }
        if (kl)
            kl[r] = kl_sum;
        if (s2)
            s2[r] = s2_sum / (float)h;
    }
}

EUAR_VECTOR_CLONES
static void cpu_expert_backward(float *dy, const float *dz, const float *dkl, const float *ds2,
                                const float *y, const float *sd, const float *eps, int rows,
                                int h, float lv_min, float lv_max) {
    for (int r = 0; r < rows; r++) {
        const float *mu = y + (size_t)r * 2 * h;
        const float *raw = mu + h;
        const float *er = eps ? eps + (size_t)r * h : NULL;
        const float *dzr = dz ? dz + (size_t)r * h : NULL;
        const float *sdr = sd ? sd + (size_t)r * h : NULL;
        float *dmu = dy + (size_t)r * 2 * h;
        float *draw = dmu + h;
        float wkl = dkl ? dkl[r] : 0.0f;
        float ws2 = ds2 ? ds2[r] / (float)h : 0.0f;
        for (int d = 0; d < h; d++) {
            float sigma = sdr ? sdr[d] : expert_sigma_f(raw[d], lv_min, lv_max);
            expert_backward_f(&dmu[d], &draw[d], mu[d], raw[d], sigma, dzr ? dzr[d] : 0.0f,
                              er ? er[d] : 0.0f, wkl, ws2, lv_min, lv_max);
        }
    }
}

EUAR_VECTOR_CLONES
static void cpu_mixture_forward(float *out, int ldo, const float *w, const float *z, int b, int s,
                                int h) {
    for (int r = 0; r < b; r++) {
        float *o = out + (size_t)r * ldo;
        memset(o, 0, (size_t)h * sizeof(float));
        for (int j = 0; j < s; j++) {
            float g = w[(size_t)r * s + j];
            if (g == 0.0f)
                continue;
            const float *zr = z + ((size_t)r * s + j) * h;
            for (int d = 0; d < h; d++)
                o[d] += g * zr[d];
        }
    }
}

EUAR_VECTOR_CLONES
static void cpu_mixture_backward(float *dz, float *dw, const float *dout, int ldo, const float *w,
                                 const float *z, int b, int s, int h) {
    for (int r = 0; r < b; r++) {
        const float *go = dout + (size_t)r * ldo;
        for (int j = 0; j < s; j++) {
            float g = w[(size_t)r * s + j];
            const float *zr = z + ((size_t)r * s + j) * h;
            float *dzr = dz + ((size_t)r * s + j) * h;
            float dot = 0.0f;
            for (int d = 0; d < h; d++) {
                dzr[d] = g * go[d];
                dot += go[d] * zr[d];
            }
            dw[(size_t)r * s + j] = dot;
        }
    }
}

static void cpu_normal_experts(float *eps, RngStream st, uint32_t step, const int32_t *sample,
                               const int32_t *sel, int b, int s, int e, int k, int h) {
    /* Unselected slots (all experts computed) get zeros: their weight is 0, so their eps
     * never reaches the output or a gradient. */
    if (s == e && k < e)
        memset(eps, 0, sizeof(float) * (size_t)b * s * h);
    for (int r = 0; r < b; r++)
        for (int t = 0; t < k; t++) {
            int expert = sel[(size_t)r * k + t];
            int slot = s == e ? expert : t;
            uint32_t row = (uint32_t)sample[r] * (uint32_t)e + (uint32_t)expert;
            rng_fill_normal(st, step, row, eps + ((size_t)r * s + slot) * h, (size_t)h);
        }
}

static double cpu_mse(float *dpred, const float *pred, const float *y, int b, float scale) {
    EUAR_ASSERT(b > 0);
    double loss = 0.0;
    for (int r = 0; r < b; r++) {
        float diff = pred[r] - y[r];
        loss += (double)diff * diff;
        if (dpred)
            dpred[r] = mse_grad_f(diff, scale, b);
    }
    return loss / b;
}

static double cpu_cross_entropy(float *dlogits, float *prob, const float *logits,
                                const int32_t *cls, int b, int c, float scale) {
    EUAR_ASSERT(b > 0);
    double loss = 0.0;
    for (int r = 0; r < b; r++)
        loss += cross_entropy_row_f(dlogits ? dlogits + (size_t)r * c : NULL, prob + (size_t)r * c,
                                    logits + (size_t)r * c, c, cls[r], scale, b);
    return loss / b;
}

EUAR_VECTOR_CLONES
static void cpu_adam(float *p, float *m, float *v, float *g, size_t n, float lr, float beta1,
                     float beta2, float eps, float wd, int t) {
    AdamStep a = adam_step_make(lr, beta1, beta2, eps, wd, t);
    /* Restrict-qualified copies let the compiler vectorise the loop: the four arrays are
     * distinct allocations of the parameter table. */
    float *restrict pr = p, *restrict mr = m, *restrict vr = v, *restrict gr = g;
    for (size_t i = 0; i < n; i++) {
        adam_step_f(&pr[i], &mr[i], &vr[i], gr[i], a);
        gr[i] = 0.0f;
    }
}

static double cpu_sum(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

static double cpu_sum_squares(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return s;
}

static const Backend cpu_backend = {
    .name = "cpu",
    .shares_host_memory = 1,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .gemm = cpu_gemm,
    .gemm_strided_batched = cpu_gemm_strided_batched,
    .bias_add = cpu_bias_add,
    .bias_grad = cpu_bias_grad,
    .scale = cpu_scale,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .gather_rows = cpu_gather_rows,
    .gather_rows_u8 = cpu_gather_rows_u8,
    .gather_rows_i32 = cpu_gather_rows_i32,
    .scatter_add_rows = cpu_scatter_add_rows,
    .embedding_mean_forward = cpu_embedding_mean_forward,
    .embedding_mean_backward = cpu_embedding_mean_backward,
    .copy_block = cpu_copy_block,
    .softmax_topk = cpu_softmax_topk,
    .softmax_backward = cpu_softmax_backward,
    .expert_forward = cpu_expert_forward,
    .expert_backward = cpu_expert_backward,
    .mixture_forward = cpu_mixture_forward,
    .mixture_backward = cpu_mixture_backward,
    .normal_experts = cpu_normal_experts,
    .mse = cpu_mse,
    .cross_entropy = cpu_cross_entropy,
    .adam = cpu_adam,
    .sum = cpu_sum,
    .sum_squares = cpu_sum_squares,
};

const Backend *backend_cpu(void) {
    return &cpu_backend;
}

void backend_cpu_set_threads(int threads) {
    openblas_set_num_threads(threads);
}
