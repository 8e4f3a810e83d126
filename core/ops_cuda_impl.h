/* Internals shared by the CUDA backend's files (compiled by nvcc only): the check macros, the
 * launch shape, the reusable device scratch buffers and the operations each file defines. */
#ifndef EUAR_OPS_CUDA_IMPL_H
#define EUAR_OPS_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>

#include "backend.h"
#include "common.h"
#include "ops.h"

/* Each check prints the failed call, its file and line and the library's own message, then
 * exits with status 2 (euar_fatal). */
#define CUDA_CHECK(call)                                                                           \
    do {                                                                                           \
        cudaError_t status_ = (call);                                                              \
        if (status_ != cudaSuccess)                                                                \
            euar_fatal(__FILE__, __LINE__, "%s failed: %s (%s)", #call,                            \
                       cudaGetErrorString(status_), cudaGetErrorName(status_));                    \
    } while (0)

#define CUBLAS_CHECK(call)                                                                         \
    do {                                                                                           \
        cublasStatus_t status_ = (call);                                                           \
        if (status_ != CUBLAS_STATUS_SUCCESS)                                                      \
            euar_fatal(__FILE__, __LINE__, "%s failed: %s (%s)", #call,                            \
                       cublasGetStatusString(status_), cublasGetStatusName(status_));              \
    } while (0)

#define CURAND_CHECK(call)                                                                         \
    do {                                                                                           \
        curandStatus_t status_ = (call);                                                           \
        if (status_ != CURAND_STATUS_SUCCESS)                                                      \
            euar_fatal(__FILE__, __LINE__, "%s failed: %s", #call, curand_status_text(status_)); \
    } while (0)

/* After every kernel launch: a bad launch configuration shows here, an error inside the
 * kernel at the next synchronising call (a copy to the host or the next check), under that
 * call's name. With EUAR_CUDA_SYNC=1 in the environment the check also waits for the kernel,
 * so a fault inside it is reported with the kernel's name (slower; for debugging). */
#define CUDA_LAUNCH_CHECK(kernel) cuda_launch_check(#kernel, __FILE__, __LINE__)

void cuda_launch_check(const char *kernel, const char *file, int line);

/* Threads per block of the element-wise kernels, and the maximum blocks of a grid-stride loop. */
#define EUAR_CUDA_THREADS 256
#define EUAR_CUDA_MAX_BLOCKS 4096

static inline unsigned int cuda_blocks(size_t n) {
    size_t blocks = (n + EUAR_CUDA_THREADS - 1) / EUAR_CUDA_THREADS;
    if (blocks < 1)
        blocks = 1;
    return (unsigned int)(blocks < EUAR_CUDA_MAX_BLOCKS ? blocks : EUAR_CUDA_MAX_BLOCKS);
}

/* Grid-stride loop over i in [0, n). */
#define CUDA_FOR(i, n)                                                                             \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

const char *curand_status_text(curandStatus_t status);

/* Device scratch buffers. Each grows (cudaFree, cudaMalloc) only when an operation needs more
 * than it had, so after the first training step nothing is allocated. Host arrays that an
 * operation takes (indices, selections, class labels) are copied into them; per-row partial
 * results live in them too. The backend runs on one stream, so one user at a time. */
typedef enum {
    EUAR_SCRATCH_INDEX,   /* int32 copy of a host index array */
    EUAR_SCRATCH_INDEX2,  /* a second one (normal_experts: sample and sel) */
    EUAR_SCRATCH_REDUCE,  /* per-row losses and partial sums, double */
    EUAR_SCRATCH_RESULT,  /* the final sum of a reduction, one double */
    EUAR_SCRATCH_COUNT
} ScratchSlot;

/* Returns a device buffer of at least `bytes` in slot `slot`. */
void *cuda_scratch(ScratchSlot slot, size_t bytes);

/* Copies n host int32 values into scratch slot `slot` and returns the device copy. */
int32_t *cuda_stage_i32(ScratchSlot slot, const int32_t *host, size_t n);

/* Sum of x[n] (squares when `squares`) in double: block partial sums, then one block. */
double cuda_reduce_sum(const float *x, size_t n, int squares);

/* Sum of d[n] doubles on the device (in the REDUCE slot, or anywhere but RESULT). */
double cuda_reduce_doubles(const double *d, size_t n);

/* The operations, by file. */
/* ops_cuda_elementwise.cu */
void cuda_bias_add(float *y, const float *bias, int rows, int cols, int ldy);
void cuda_bias_grad(float *dbias, const float *dy, int rows, int cols, int ldy);
void cuda_scale(float *x, float alpha, size_t n);
void cuda_act_forward(ActKind kind, float *y, const float *x, size_t n);
void cuda_act_backward(ActKind kind, float *dx, const float *dy, const float *x, size_t n);
void cuda_copy_block(float *dst, int ldd, const float *src, int lds, int rows, int cols,
                     int accumulate);
void cuda_adam(float *p, float *m, float *v, float *g, size_t n, float lr, float beta1,
               float beta2, float eps, float wd, int t);
void cuda_expert_forward(float *z, float *sd, float *kl, float *s2, const float *y,
                         const float *eps, int rows, int h, float lv_min, float lv_max);
void cuda_expert_backward(float *dy, const float *dz, const float *dkl, const float *ds2,
                          const float *y, const float *sd, const float *eps, int rows, int h,
                          float lv_min, float lv_max);
void cuda_mixture_forward(float *out, int ldo, const float *w, const float *z, int b, int s,
                          int h);
void cuda_mixture_backward(float *dz, float *dw, const float *dout, int ldo, const float *w,
                           const float *z, int b, int s, int h);
/* ops_cuda_rows.cu */
void cuda_gather_rows(float *dst, int ldd, const float *src, int lds, const int32_t *idx, int n,
                      int cols);
void cuda_gather_rows_u8(float *dst, int ldd, const uint8_t *src, int lds, const int32_t *idx,
                         int n, int cols, float scale);
void cuda_gather_rows_i32(int32_t *dst, int ldd, const int32_t *src, int lds,
                          const int32_t *idx, int n, int cols);
void cuda_scatter_add_rows(float *dst, int ldd, const float *src, int lds, const int32_t *idx,
                           int n, int cols);
void cuda_embedding_mean_forward(float *out, const float *emb, const int32_t *tok,
                                 const int32_t *len, int b, int t, int h);
void cuda_embedding_mean_backward(float *demb, const float *dout, const int32_t *tok,
                                  const int32_t *len, int b, int t, int h);
/* ops_cuda_reduce.cu */
void cuda_softmax_topk(float *p, float *gate, int32_t *sel, const float *logits, int b, int e,
                       int k);
void cuda_softmax_backward(float *dlogits, const float *dp, const float *p, int b, int e);
double cuda_mse(float *dpred, const float *pred, const float *y, int b, float scale);
double cuda_cross_entropy(float *dlogits, float *prob, const float *logits, const int32_t *cls,
                          int b, int c, float scale);
double cuda_sum(const float *x, size_t n);
double cuda_sum_squares(const float *x, size_t n);
/* ops_cuda_random.cu */
void cuda_normal_experts(float *eps, RngStream st, uint32_t step, const int32_t *sample,
                         const int32_t *sel, int b, int s, int e, int k, int h);

#endif
