/* CUDA kernels with row or whole-array reductions: softmax with top-k selection, its
 * backward, the task losses and the sums. Rows are short (E experts or C classes), so one
 * thread runs the shared row function of elementwise.h. Whole-array sums run in double: each
 * block adds a strided share and reduces it in shared memory, then one block adds the block
 * sums. The order differs from the CPU's sequential sum, by double rounding only; NaN and
 * Inf propagate as in any sum. */
#include "ops_cuda_impl.h"

/* Blocks of the first stage of a sum; their partial sums are added by one block. */
#define EUAR_CUDA_REDUCE_BLOCKS 1024

/* Adds v over the block into shared[0] (blockDim.x a power of two, at most 1024). */
__device__ static double block_sum(double v, double *shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            shared[threadIdx.x] += shared[threadIdx.x + half];
        __syncthreads();
    }
    return shared[0];
}

__global__ void sum_float_kernel(double *partial, const float *x, size_t n, int squares) {
    __shared__ double shared[EUAR_CUDA_THREADS];
    double acc = 0.0;
    CUDA_FOR(i, n) {
        double v = x[i];
        acc += squares ? v * v : v;
    }
    double total = block_sum(acc, shared);
    if (threadIdx.x == 0)
        partial[blockIdx.x] = total;
}

__global__ void sum_double_kernel(double *out, const double *d, size_t n) {
    __shared__ double shared[EUAR_CUDA_THREADS];
    double acc = 0.0;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        acc += d[i];
    double total = block_sum(acc, shared);
    if (threadIdx.x == 0)
        *out = total;
}

double cuda_reduce_doubles(const double *d, size_t n) {
    if (n == 0)
        return 0.0;
    double *out = (double *)cuda_scratch(EUAR_SCRATCH_RESULT, sizeof(double));
    sum_double_kernel<<<1, EUAR_CUDA_THREADS>>>(out, d, n);
    CUDA_LAUNCH_CHECK(sum_double_kernel);
    double host = 0.0;
    CUDA_CHECK(cudaMemcpy(&host, out, sizeof(double), cudaMemcpyDeviceToHost));
    return host;
}

double cuda_reduce_sum(const float *x, size_t n, int squares) {
    if (n == 0)
        return 0.0;
    size_t blocks = (n + EUAR_CUDA_THREADS - 1) / EUAR_CUDA_THREADS;
    if (blocks > EUAR_CUDA_REDUCE_BLOCKS)
        blocks = EUAR_CUDA_REDUCE_BLOCKS;
    double *partial = (double *)cuda_scratch(EUAR_SCRATCH_REDUCE, blocks * sizeof(double));
    sum_float_kernel<<<(unsigned int)blocks, EUAR_CUDA_THREADS>>>(partial, x, n, squares);
    CUDA_LAUNCH_CHECK(sum_float_kernel);
    return cuda_reduce_doubles(partial, blocks);
}

double cuda_sum(const float *x, size_t n) {
    return cuda_reduce_sum(x, n, 0);
}

double cuda_sum_squares(const float *x, size_t n) {
    return cuda_reduce_sum(x, n, 1);
}

__global__ void softmax_topk_kernel(float *p, float *gate, int32_t *sel, const float *logits,
                                    int b, int e, int k) {
    CUDA_FOR(r, (size_t)b) {
        float *pr = p + r * e;
        softmax_row_f(pr, logits + r * e, e);
        topk_row_f(sel + r * k, gate + r * k, pr, e, k);
    }
}

void cuda_softmax_topk(float *p, float *gate, int32_t *sel, const float *logits, int b, int e,
                       int k) {
    if (b == 0)
        return;
    size_t n = (size_t)b * k;
    int32_t *d_sel = (int32_t *)cuda_scratch(EUAR_SCRATCH_INDEX, n * sizeof(int32_t));
    softmax_topk_kernel<<<cuda_blocks((size_t)b), EUAR_CUDA_THREADS>>>(p, gate, d_sel, logits, b,
                                                                        e, k);
    CUDA_LAUNCH_CHECK(softmax_topk_kernel);
    /* sel is host memory: the routing bookkeeping of the model reads it. */
    CUDA_CHECK(cudaMemcpy(sel, d_sel, n * sizeof(int32_t), cudaMemcpyDeviceToHost));
}

__global__ void softmax_backward_kernel(float *dlogits, const float *dp, const float *p, int b,
                                        int e) {
    CUDA_FOR(r, (size_t)b) softmax_backward_row_f(dlogits + r * e, dp + r * e, p + r * e, e);
}

void cuda_softmax_backward(float *dlogits, const float *dp, const float *p, int b, int e) {
    if (b == 0)
        return;
    softmax_backward_kernel<<<cuda_blocks((size_t)b), EUAR_CUDA_THREADS>>>(dlogits, dp, p, b, e);
    CUDA_LAUNCH_CHECK(softmax_backward_kernel);
}

__global__ void mse_kernel(double *row_loss, float *dpred, const float *pred, const float *y,
                           int b, float scale) {
    CUDA_FOR(r, (size_t)b) {
        float diff = pred[r] - y[r];
        row_loss[r] = (double)diff * diff;
        if (dpred)
            dpred[r] = mse_grad_f(diff, scale, b);
    }
}

double cuda_mse(float *dpred, const float *pred, const float *y, int b, float scale) {
    EUAR_ASSERT(b > 0);
    double *row_loss = (double *)cuda_scratch(EUAR_SCRATCH_REDUCE, (size_t)b * sizeof(double));
    mse_kernel<<<cuda_blocks((size_t)b), EUAR_CUDA_THREADS>>>(row_loss, dpred, pred, y, b,
                                                               scale);
    CUDA_LAUNCH_CHECK(mse_kernel);
    return cuda_reduce_doubles(row_loss, (size_t)b) / b;
}

__global__ void cross_entropy_kernel(double *row_loss, float *dlogits, float *prob,
                                     const float *logits, const int32_t *cls, int b, int c,
                                     float scale) {
    CUDA_FOR(r, (size_t)b) {
        row_loss[r] = cross_entropy_row_f(dlogits ? dlogits + r * c : NULL, prob + r * c,
                                          logits + r * c, c, cls[r], scale, b);
    }
}

double cuda_cross_entropy(float *dlogits, float *prob, const float *logits, const int32_t *cls,
                          int b, int c, float scale) {
    EUAR_ASSERT(b > 0);
    const int32_t *d_cls = cuda_stage_i32(EUAR_SCRATCH_INDEX, cls, (size_t)b);
    double *row_loss = (double *)cuda_scratch(EUAR_SCRATCH_REDUCE, (size_t)b * sizeof(double));
    cross_entropy_kernel<<<cuda_blocks((size_t)b), EUAR_CUDA_THREADS>>>(
        row_loss, dlogits, prob, logits, d_cls, b, c, scale);
    CUDA_LAUNCH_CHECK(cross_entropy_kernel);
    return cuda_reduce_doubles(row_loss, (size_t)b) / b;
}
