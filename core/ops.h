/* The operation table that models call. A model holds a `const Backend *` and never knows which
 * device runs it; the CPU backend (ops_cpu.c) is the reference. All pointers are device
 * memory of the backend, matrices are row-major. Shapes use B batch, D input width, H hidden,
 * E experts, K top-k, S expert slots per sample (E when every expert runs, K when only the
 * selected ones run), C outputs. Backward operations write input gradients and add (+=) into
 * parameter gradients. */
#ifndef EUAR_OPS_H
#define EUAR_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "elementwise.h"
#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct Backend {
    const char *name;
    /* 1 when device memory is host memory, so host arrays can be read in place. */
    int shares_host_memory;

    void *(*alloc)(size_t bytes); /* zero-filled; exits on failure */
    void (*release)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);
    void (*download)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);

    /* c[M,N] = alpha * op(a) op(b) + beta * c, op(a) [M,K], op(b) [K,N] (cblas_sgemm). */
    void (*gemm)(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                 int lda, const float *b, int ldb, float beta, float *c, int ldc);
    /* `count` independent gemm calls on a + i stride_a, b + i stride_b, c + i stride_c
     * (strides in floats), such as the E experts of one layer; the c blocks must not overlap. */
    void (*gemm_strided_batched)(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                 const float *a, int lda, size_t stride_a, const float *b,
                                 int ldb, size_t stride_b, float beta, float *c, int ldc,
                                 size_t stride_c, int count);

    /* y[R,C] += bias[C] */
    void (*bias_add)(float *y, const float *bias, int rows, int cols, int ldy);
    /* dbias[C] += sum over rows of dy[R,C] */
    void (*bias_grad)(float *dbias, const float *dy, int rows, int cols, int ldy);

    /* x[n] *= alpha */
    void (*scale)(float *x, float alpha, size_t n);

    /* y[n] = act(x[n]) */
    void (*act_forward)(ActKind kind, float *y, const float *x, size_t n);
    /* dx[n] = dy[n] * act'(x[n]); dx may alias dy */
    void (*act_backward)(ActKind kind, float *dx, const float *dy, const float *x, size_t n);

    /* Copies rows: dst[i, :cols] = src[idx[i], :cols] for i < n (idx is host memory). */
    void (*gather_rows)(float *dst, int ldd, const float *src, int lds, const int32_t *idx,
                        int n, int cols);
    /* The same from uint8 rows, scaled: dst[i, c] = scale * src[idx[i], c]. */
    void (*gather_rows_u8)(float *dst, int ldd, const uint8_t *src, int lds, const int32_t *idx,
                           int n, int cols, float scale);
    /* The same for int32 rows (token ids, lengths). */
    void (*gather_rows_i32)(int32_t *dst, int ldd, const int32_t *src, int lds,
                            const int32_t *idx, int n, int cols);
    /* dst[idx[i], :cols] += src[i, :cols] (idx is host memory, may repeat). */
    void (*scatter_add_rows)(float *dst, int ldd, const float *src, int lds,
                             const int32_t *idx, int n, int cols);
    /* dst[r, :cols] (+)= src[r, :cols] for r < rows; accumulate selects += over =. */
    void (*copy_block)(float *dst, int ldd, const float *src, int lds, int rows, int cols,
                       int accumulate);

    /* Token encoder. out[B,H] = mean over t < len[b] of emb[tok[b,t], :] (zeros when
     * len[b] is 0); tok [B,T] and len [B] are device memory. */
    void (*embedding_mean_forward)(float *out, const float *emb, const int32_t *tok,
                                   const int32_t *len, int b, int t, int h);
    /* demb[tok[b,t], :] += dout[b, :] / len[b] for t < len[b]. */
    void (*embedding_mean_backward)(float *demb, const float *dout, const int32_t *tok,
                                    const int32_t *len, int b, int t, int h);

    /* Router. p[B,E] = softmax(logits); the K largest entries of each row, in descending order,
     * go to sel[B,K] (host memory, ties to the lower index) and their values to gate[B,K]. */
    void (*softmax_topk)(float *p, float *gate, int32_t *sel, const float *logits, int b, int e,
                         int k);
    /* dlogits[B,E] = softmax backward of dp[B,E] at p: p * (dp - sum_j p_j dp_j). */
    void (*softmax_backward)(float *dlogits, const float *dp, const float *p, int b, int e);

    /* Gaussian experts, slot-wise. y[B,S,2H] holds [mu | raw log-variance] of each slot;
     * lv = clamp(raw, lv_min, lv_max), z = mu + exp(lv / 2) * eps, or z = mu when eps is NULL.
     * kl[B,S] = sum_d KL(N(mu, e^lv) || N(0,1)), s2[B,S] = mean_d e^lv. sd[B,S,H] receives
     * exp(lv / 2) for the backward pass unless it is NULL; kl and s2 may be NULL too. */
    void (*expert_forward)(float *z, float *sd, float *kl, float *s2, const float *y,
                           const float *eps, int rows, int h, float lv_min, float lv_max);
    /* dy[B,S,2H] from dz[B,S,H] (may be NULL), dkl[B,S] (weight of each slot's KL sum) and
     * ds2[B,S] (weight of each slot's s2). sd is forward's output, or NULL to recompute it. */
    void (*expert_backward)(float *dy, const float *dz, const float *dkl, const float *ds2,
                            const float *y, const float *sd, const float *eps, int rows, int h,
                            float lv_min, float lv_max);

    /* Mixture: out[B, :H] = sum_s w[B,S] * z[B,S,H] (out has row stride ldo). */
    void (*mixture_forward)(float *out, int ldo, const float *w, const float *z, int b, int s,
                            int h);
    /* dz[B,S,H] = w * dout (written); dw[B,S] = dout . z (written). */
    void (*mixture_backward)(float *dz, float *dw, const float *dout, int ldo, const float *w,
                             const float *z, int b, int s, int h);

    /* Fills eps[B,S,H] for the K selected experts of each row: expert j = sel[r K + t] gets
     * the N(0,1) vector of stream `st` at counter (step, sample[r] E + j), in slot j (the
     * others zero) when S = E, and in slot t when S = K < E. K = E therefore means all
     * experts. The same (step, sample, expert) gets the same eps whether all experts run or
     * only the selected. sample[] and sel[B,K] are host memory. */
    void (*normal_experts)(float *eps, RngStream st, uint32_t step, const int32_t *sample,
                           const int32_t *sel, int b, int s, int e, int k, int h);

    /* Task losses of a batch, mean over rows: returns the loss (host value) and writes the
     * gradient of scale * loss into dpred. MSE on pred[B] and y[B]; cross-entropy on logits
     * [B,C] and class indices cls[B] (host memory). B > 0: both backends assert it. */
    double (*mse)(float *dpred, const float *pred, const float *y, int b, float scale);
    double (*cross_entropy)(float *dlogits, float *prob, const float *logits,
                            const int32_t *cls, int b, int c, float scale);

    /* Adam over n parameters; t is the 1-based step. Leaves g zero, ready for the next
     * step's accumulation, which saves a separate pass over the gradients. */
    void (*adam)(float *p, float *m, float *v, float *g, size_t n, float lr, float beta1,
                 float beta2, float eps, float wd, int t);

    /* Sum of x[n] as a host value; NaN when any element is NaN. */
    double (*sum)(const float *x, size_t n);
    /* Sum of squares, for divergence checks on parameters. */
    double (*sum_squares)(const float *x, size_t n);
} Backend;

/* Returns the CPU backend (OpenBLAS for GEMM, plain C for the rest). */
const Backend *backend_cpu(void);

/* Sets the number of BLAS threads (1 by default in suite workers). */
void backend_cpu_set_threads(int threads);

#ifdef __cplusplus
}
#endif

#endif
