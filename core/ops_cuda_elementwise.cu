/* CUDA kernels of the element-wise operations: bias, scale, activations, block copies, Adam,
 * the Gaussian experts and the mixture. Per-element maths comes from elementwise.h. Where the
 * CPU sums a row in order (bias gradient, KL and s2 sums, mixture), one thread does the same
 * sum in the same order, so those results match the CPU's up to the ulps of expf and tanhf. */
#include "ops_cuda_impl.h"

__global__ void bias_add_kernel(float *y, const float *bias, int rows, int cols, int ldy) {
    CUDA_FOR(i, (size_t)rows * cols) {
        size_t r = i / cols, c = i % cols;
        y[r * ldy + c] += bias[c];
    }
}

void cuda_bias_add(float *y, const float *bias, int rows, int cols, int ldy) {
    size_t n = (size_t)rows * cols;
    if (n == 0)
        return;
    bias_add_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(y, bias, rows, cols, ldy);
    CUDA_LAUNCH_CHECK(bias_add_kernel);
}

/* One thread per column, rows in order: the CPU's summation order. */
__global__ void bias_grad_kernel(float *dbias, const float *dy, int rows, int cols, int ldy) {
    CUDA_FOR(c, (size_t)cols) {
        float acc = dbias[c];
        for (int r = 0; r < rows; r++)
            acc += dy[(size_t)r * ldy + c];
        dbias[c] = acc;
    }
}

void cuda_bias_grad(float *dbias, const float *dy, int rows, int cols, int ldy) {
    if (cols == 0)
        return;
    bias_grad_kernel<<<cuda_blocks((size_t)cols), EUAR_CUDA_THREADS>>>(dbias, dy, rows, cols,
                                                                         ldy);
    CUDA_LAUNCH_CHECK(bias_grad_kernel);
}

__global__ void scale_kernel(float *x, float alpha, size_t n) {
    CUDA_FOR(i, n) x[i] *= alpha;
}

void cuda_scale(float *x, float alpha, size_t n) {
    if (n == 0)
        return;
    scale_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(x, alpha, n);
    CUDA_LAUNCH_CHECK(scale_kernel);
}

__global__ void act_forward_kernel(int kind, float *y, const float *x, size_t n) {
    CUDA_FOR(i, n) y[i] = act_f(kind, x[i]);
}

void cuda_act_forward(ActKind kind, float *y, const float *x, size_t n) {
    if (n == 0)
        return;
    act_forward_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>((int)kind, y, x, n);
    CUDA_LAUNCH_CHECK(act_forward_kernel);
}

__global__ void act_backward_kernel(int kind, float *dx, const float *dy, const float *x,
                                    size_t n) {
    CUDA_FOR(i, n) dx[i] = dy[i] * act_grad_f(kind, x[i]);
}

void cuda_act_backward(ActKind kind, float *dx, const float *dy, const float *x, size_t n) {
    if (n == 0)
        return;
    act_backward_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>((int)kind, dx, dy, x, n);
    CUDA_LAUNCH_CHECK(act_backward_kernel);
}

__global__ void copy_block_kernel(float *dst, int ldd, const float *src, int lds, int rows,
                                  int cols, int accumulate) {
    CUDA_FOR(i, (size_t)rows * cols) {
        size_t r = i / cols, c = i % cols;
        float v = src[r * lds + c];
        if (accumulate)
            dst[r * ldd + c] += v;
        else
            dst[r * ldd + c] = v;
    }
}

void cuda_copy_block(float *dst, int ldd, const float *src, int lds, int rows, int cols,
                     int accumulate) {
    size_t n = (size_t)rows * cols;
    if (n == 0)
        return;
    copy_block_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(dst, ldd, src, lds, rows, cols,
                                                              accumulate);
    CUDA_LAUNCH_CHECK(copy_block_kernel);
}

__global__ void adam_kernel(float *p, float *m, float *v, float *g, size_t n, AdamStep a) {
    CUDA_FOR(i, n) {
        adam_step_f(&p[i], &m[i], &v[i], g[i], a);
        g[i] = 0.0f;
    }
}

void cuda_adam(float *p, float *m, float *v, float *g, size_t n, float lr, float beta1,
               float beta2, float eps, float wd, int t) {
    if (n == 0)
        return;
    /* The constants are computed on the host, as the CPU backend does. */
    AdamStep a = adam_step_make(lr, beta1, beta2, eps, wd, t);
    adam_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(p, m, v, g, n, a);
    CUDA_LAUNCH_CHECK(adam_kernel);
}

/* z, sd per element: y [rows, 2H] holds mu then the raw log-variance of each slot. */
__global__ void expert_values_kernel(float *z, float *sd, const float *y, const float *eps,
                                     int rows, int h, float lv_min, float lv_max) {
    CUDA_FOR(i, (size_t)rows * h) {
        size_t r = i / h, d = i % h;
        float mu = y[r * 2 * h + d], raw = y[r * 2 * h + h + d];
        float sigma = expert_sigma_f(raw, lv_min, lv_max);
        z[i] = eps ? mu + sigma * eps[i] : mu;
        if (sd)
            sd[i] = sigma;
    }
}

/* kl and s2 per slot, one thread per slot summing over d in order as the CPU does. */
__global__ void expert_sums_kernel(float *kl, float *s2, const float *y, int rows, int h,
                                   float lv_min, float lv_max) {
    CUDA_FOR(r, (size_t)rows) {
        const float *mu = y + r * 2 * h;
        const float *raw = mu + h;
        float kl_sum = 0.0f, s2_sum = 0.0f;
        for (int d = 0; d < h; d++) {
            float lv = clamp_f(raw[d], lv_min, lv_max);
            float sigma = expert_sigma_f(raw[d], lv_min, lv_max);
            float var = sigma * sigma;
            kl_sum += kl_normal_var_f(mu[d], var, lv);
            s2_sum += var;
        }
        if (kl)
            kl[r] = kl_sum;
        if (s2)
            s2[r] = s2_sum / (float)h;
    }
}

void cuda_expert_forward(float *z, float *sd, float *kl, float *s2, const float *y,
                         const float *eps, int rows, int h, float lv_min, float lv_max) {
    size_t n = (size_t)rows * h;
    if (n == 0)
        return;
    expert_values_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(z, sd, y, eps, rows, h, lv_min,
                                                                 lv_max);
    CUDA_LAUNCH_CHECK(expert_values_kernel);
    if (kl || s2) {
        expert_sums_kernel<<<cuda_blocks((size_t)rows), EUAR_CUDA_THREADS>>>(kl, s2, y, rows, h,
                                                                              lv_min, lv_max);
        CUDA_LAUNCH_CHECK(expert_sums_kernel);
    }
}

__global__ void expert_backward_kernel(float *dy, const float *dz, const float *dkl,
                                       const float *ds2, const float *y, const float *sd,
                                       const float *eps, int rows, int h, float lv_min,
                                       float lv_max) {
    CUDA_FOR(i, (size_t)rows * h) {
        size_t r = i / h, d = i % h;
        float mu = y[r * 2 * h + d], raw = y[r * 2 * h + h + d];
        float sigma = sd ? sd[i] : expert_sigma_f(raw, lv_min, lv_max);
        float wkl = dkl ? dkl[r] : 0.0f;
        float ws2 = ds2 ? ds2[r] / (float)h : 0.0f;
        expert_backward_f(&dy[r * 2 * h + d], &dy[r * 2 * h + h + d], mu, raw, sigma,
                          dz ? dz[i] : 0.0f, eps ? eps[i] : 0.0f, wkl, ws2, lv_min, lv_max);
    }
}

void cuda_expert_backward(float *dy, const float *dz, const float *dkl, const float *ds2,
                          const float *y, const float *sd, const float *eps, int rows, int h,
                          float lv_min, float lv_max) {
    size_t n = (size_t)rows * h;
    if (n == 0)
        return;
    expert_backward_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(dy, dz, dkl, ds2, y, sd, eps,
                                                                   rows, h, lv_min, lv_max);
    CUDA_LAUNCH_CHECK(expert_backward_kernel);
}

/* out[r, d] = sum_j w[r, j] z[r, j, d], slots in order and zero weights skipped, as on the
 * CPU. */
__global__ void mixture_forward_kernel(float *out, int ldo, const float *w, const float *z,
                                       int b, int s, int h) {
    CUDA_FOR(i, (size_t)b * h) {
        size_t r = i / h, d = i % h;
        float acc = 0.0f;
        for (int j = 0; j < s; j++) {
            float g = w[r * s + j];
            if (g != 0.0f)
                acc += g * z[(r * s + j) * h + d];
        }
        out[r * ldo + d] = acc;
    }
}

void cuda_mixture_forward(float *out, int ldo, const float *w, const float *z, int b, int s,
                          int h) {
    size_t n = (size_t)b * h;
    if (n == 0)
        return;
    mixture_forward_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(out, ldo, w, z, b, s, h);
    CUDA_LAUNCH_CHECK(mixture_forward_kernel);
}

__global__ void mixture_dz_kernel(float *dz, const float *dout, int ldo, const float *w, int b,
                                  int s, int h) {
    CUDA_FOR(i, (size_t)b * s * h) {
        size_t slot = i / h, d = i % h, r = slot / s;
        dz[i] = w[slot] * dout[r * ldo + d];
    }
}

/* dw[r, j] = dout[r] . z[r, j], one thread per slot, d in order. */
__global__ void mixture_dw_kernel(float *dw, const float *dout, int ldo, const float *z, int b,
                                  int s, int h) {
    CUDA_FOR(slot, (size_t)b * s) {
        size_t r = slot / s;
        const float *zr = z + slot * h;
        float dot = 0.0f;
        for (int d = 0; d < h; d++)
            dot += dout[r * ldo + d] * zr[d];
        dw[slot] = dot;
    }
}

void cuda_mixture_backward(float *dz, float *dw, const float *dout, int ldo, const float *w,
                           const float *z, int b, int s, int h) {
    size_t n = (size_t)b * s * h;
    if (n == 0)
        return;
    mixture_dz_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(dz, dout, ldo, w, b, s, h);
    CUDA_LAUNCH_CHECK(mixture_dz_kernel);
    mixture_dw_kernel<<<cuda_blocks((size_t)b * s), EUAR_CUDA_THREADS>>>(dw, dout, ldo, z, b, s,
                                                                          h);
    CUDA_LAUNCH_CHECK(mixture_dw_kernel);
}
