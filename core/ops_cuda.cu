/* CUDA backend: device set-up, memory, GEMM on cuBLAS, the scratch buffers and the operation
 * table. The kernels live in ops_cuda_elementwise.cu, ops_cuda_rows.cu, ops_cuda_reduce.cu and
 * ops_cuda_random.cu; their per-element maths comes from elementwise.h, as on the CPU. All work
 * runs on the default stream of device 0, so operations run in the order the model calls
 * them, and each one that returns a host value or writes host memory waits for the device. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_cuda_impl.h"

static struct {
    int ready;
    cublasHandle_t blas;
    void *scratch[EUAR_SCRATCH_COUNT];
    size_t scratch_bytes[EUAR_SCRATCH_COUNT];
} cuda;

const char *curand_status_text(curandStatus_t status) {
    switch (status) {
    case CURAND_STATUS_SUCCESS: return "success";
    case CURAND_STATUS_VERSION_MISMATCH: return "header and library versions differ";
    case CURAND_STATUS_NOT_INITIALIZED: return "generator not initialised";
    case CURAND_STATUS_ALLOCATION_FAILED: return "memory allocation failed";
    case CURAND_STATUS_TYPE_ERROR: return "wrong generator type";
    case CURAND_STATUS_OUT_OF_RANGE: return "argument out of range";
    case CURAND_STATUS_LENGTH_NOT_MULTIPLE: return "length not a multiple of the dimension";
    case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED: return "GPU lacks double precision";
    case CURAND_STATUS_LAUNCH_FAILURE: return "kernel launch failed";
    case CURAND_STATUS_PREEXISTING_FAILURE: return "an earlier library call failed";
    case CURAND_STATUS_INITIALIZATION_FAILED: return "initialisation of CUDA failed";
    case CURAND_STATUS_ARCH_MISMATCH: return "GPU architecture not supported";
    case CURAND_STATUS_INTERNAL_ERROR: return "internal library error";
    default: return "unknown cuRAND status";
    }
}

/* Returns 1 when EUAR_CUDA_SYNC is set to 1, read once. */
static int cuda_sync_enabled(void) {
    static int enabled = -1;
    if (enabled < 0) {
        const char *v = getenv("EUAR_CUDA_SYNC");
        enabled = v && strcmp(v, "1") == 0;
    }
    return enabled;
}

void cuda_launch_check(const char *kernel, const char *file, int line) {
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess)
        euar_fatal(file, line, "launch of %s failed: %s (%s)", kernel, cudaGetErrorString(status),
                   cudaGetErrorName(status));
    if (!cuda_sync_enabled())
        return;
    status = cudaDeviceSynchronize();
    if (status != cudaSuccess)
        euar_fatal(file, line, "kernel %s failed: %s (%s; EUAR_CUDA_SYNC=1 waited for it)",
                   kernel, cudaGetErrorString(status), cudaGetErrorName(status));
}

extern "C" int backend_cuda_built(void) {
    return 1;
}

extern "C" int backend_cuda_device_count(char *why, size_t cap) {
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        if (why)
            snprintf(why, cap, "no usable CUDA device: cudaGetDeviceCount failed: %s (%s)",
                     cudaGetErrorString(status), cudaGetErrorName(status));
        /* Clear the sticky error so a later cudaGetLastError does not report it again. */
        cudaGetLastError();
        return 0;
    }
    if (count == 0 && why)
        snprintf(why, cap, "no CUDA device is present (cudaGetDeviceCount returned 0)");
    return count;
}

void *cuda_scratch(ScratchSlot slot, size_t bytes) {
    if (bytes > cuda.scratch_bytes[slot]) {
        /* Grow to twice the need, so a batch of slightly different size does not grow it
         * again; this happens in the first training steps only. */
        size_t grown = bytes < 4096 ? 4096 : 2 * bytes;
        if (cuda.scratch[slot])
            CUDA_CHECK(cudaFree(cuda.scratch[slot]));
        CUDA_CHECK(cudaMalloc(&cuda.scratch[slot], grown));
        cuda.scratch_bytes[slot] = grown;
    }
    return cuda.scratch[slot];
}

int32_t *cuda_stage_i32(ScratchSlot slot, const int32_t *host, size_t n) {
    int32_t *d = (int32_t *)cuda_scratch(slot, n * sizeof(int32_t));
    /* A copy from pageable memory returns once the source has been read, so the caller may
     * reuse its array at once. The default stream orders it after earlier kernels that read
     * the slot. */
    if (n > 0)
        CUDA_CHECK(cudaMemcpy(d, host, n * sizeof(int32_t), cudaMemcpyHostToDevice));
    return d;
}

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t status = cudaMalloc(&p, bytes ? bytes : 1);
    if (status != cudaSuccess) {
        size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        euar_fatal(__FILE__, __LINE__, "cudaMalloc of %zu bytes failed: %s (%zu of %zu MiB "
                   "free); lower batch, hidden or experts", bytes, cudaGetErrorString(status),
                   free_bytes >> 20, total >> 20);
    }
    CUDA_CHECK(cudaMemset(p, 0, bytes));
    return p;
}

static void cuda_release(void *p) {
    if (p)
        CUDA_CHECK(cudaFree(p));
}

static void cuda_upload(void *dst, const void *src, size_t bytes) {
    if (bytes > 0)
        CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

static void cuda_download(void *dst, const void *src, size_t bytes) {
    if (bytes > 0)
        CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

static void cuda_zero(void *p, size_t bytes) {
    if (bytes > 0)
        CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0));
}

/* Row-major c[M,N] = alpha op(a) op(b) + beta c is column-major c^T[N,M] = alpha op(b)^T
 * op(a)^T + beta c^T, and a row-major matrix with leading dimension ld is its transpose in
 * column-major with the same ld, so cuBLAS gets the operands swapped and nothing copied. */
static void cuda_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc) {
    if (m == 0 || n == 0)
        return;
    CUBLAS_CHECK(cublasSgemm(cuda.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                             trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb, a, lda,
                             &beta, c, ldc));
}

/* The same swap, for `count` products at once (the experts of a layer). */
static void cuda_gemm_strided_batched(int trans_a, int trans_b, int m, int n, int k, float alpha,
                                      const float *a, int lda, size_t stride_a, const float *b,
                                      int ldb, size_t stride_b, float beta, float *c, int ldc,
                                      size_t stride_c, int count) {
    if (m == 0 || n == 0 || count == 0)
        return;
    CUBLAS_CHECK(cublasSgemmStridedBatched(
        cuda.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m,
        k, &alpha, b, ldb, (long long)stride_b, a, lda, (long long)stride_a, &beta, c, ldc,
        (long long)stride_c, count));
}

static Backend cuda_backend;

static void table_fill(Backend *t) {
    memset(t, 0, sizeof(*t));
    t->name = "cuda";
    t->shares_host_memory = 0;
    t->alloc = cuda_alloc;
    t->release = cuda_release;
    t->upload = cuda_upload;
    t->download = cuda_download;
    t->zero = cuda_zero;
    t->gemm = cuda_gemm;
    t->gemm_strided_batched = cuda_gemm_strided_batched;
    t->bias_add = cuda_bias_add;
    t->bias_grad = cuda_bias_grad;
    t->scale = cuda_scale;
    t->act_forward = cuda_act_forward;
    t->act_backward = cuda_act_backward;
    t->gather_rows = cuda_gather_rows;
    t->gather_rows_u8 = cuda_gather_rows_u8;
    t->gather_rows_i32 = cuda_gather_rows_i32;
    t->scatter_add_rows = cuda_scatter_add_rows;
    t->copy_block = cuda_copy_block;
    t->embedding_mean_forward = cuda_embedding_mean_forward;
    t->embedding_mean_backward = cuda_embedding_mean_backward;
    t->softmax_topk = cuda_softmax_topk;
    t->softmax_backward = cuda_softmax_backward;
    t->expert_forward = cuda_expert_forward;
    t->expert_backward = cuda_expert_backward;
    t->mixture_forward = cuda_mixture_forward;
    t->mixture_backward = cuda_mixture_backward;
    t->normal_experts = cuda_normal_experts;
    t->mse = cuda_mse;
    t->cross_entropy = cuda_cross_entropy;
    t->adam = cuda_adam;
    t->sum = cuda_sum;
    t->sum_squares = cuda_sum_squares;
}

extern "C" const Backend *backend_cuda(void) {
    if (cuda.ready)
        return &cuda_backend;
    char why[256];
    if (backend_cuda_device_count(why, sizeof(why)) <= 0) {
        err_set("%s; use --device cpu or auto", why);
        return NULL;
    }
    cudaError_t status = cudaSetDevice(0);
    if (status != cudaSuccess) {
        cudaGetLastError();
        err_set("no usable CUDA device: cudaSetDevice(0) failed: %s (%s); use --device cpu",
                cudaGetErrorString(status), cudaGetErrorName(status));
        return NULL;
    }
    cublasStatus_t blas = cublasCreate(&cuda.blas);
    /* Plain FP32 products: no TF32 tensor-core rounding, so GEMM stays within float rounding
     * of the CPU's (NVIDIA_TF32_OVERRIDE=1 in the environment would still force TF32). */
    const char *call = "cublasCreate";
    if (blas == CUBLAS_STATUS_SUCCESS) {
        call = "cublasSetMathMode";
        blas = cublasSetMathMode(cuda.blas, CUBLAS_DEFAULT_MATH);
        if (blas == CUBLAS_STATUS_SUCCESS) {
            call = "cublasSetPointerMode";
            blas = cublasSetPointerMode(cuda.blas, CUBLAS_POINTER_MODE_HOST);
        }
        if (blas != CUBLAS_STATUS_SUCCESS)
            cublasDestroy(cuda.blas);
    }
    if (blas != CUBLAS_STATUS_SUCCESS) {
        err_set("no usable CUDA device: %s failed: %s (%s); use --device cpu", call,
                cublasGetStatusString(blas), cublasGetStatusName(blas));
        return NULL;
    }
    table_fill(&cuda_backend);
    cuda.ready = 1;
    return &cuda_backend;
}

extern "C" int backend_cuda_describe(BackendInfo *info) {
    memset(info, 0, sizeof(*info));
    snprintf(info->device, sizeof(info->device), "cuda");
    cudaDeviceProp prop;
    cudaError_t status = cudaGetDeviceProperties(&prop, 0);
    if (status != cudaSuccess)
        return err_set("cudaGetDeviceProperties failed: %s",
                       cudaGetErrorString(status));
    snprintf(info->name, sizeof(info->name), "%s", prop.name);
    info->compute_major = prop.major;
    info->compute_minor = prop.minor;
    info->memory_bytes = prop.totalGlobalMem;
    CUDA_CHECK(cudaDriverGetVersion(&info->driver_version));
    CUDA_CHECK(cudaRuntimeGetVersion(&info->runtime_version));
    if (cuda.ready)
        CUBLAS_CHECK(cublasGetVersion(cuda.blas, &info->cublas_version));
    CURAND_CHECK(curandGetVersion(&info->curand_version));
    return 0;
}
