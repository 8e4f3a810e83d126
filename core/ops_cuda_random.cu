/* Reparameterisation noise on the GPU. Each eps vector comes from cuRAND's Philox4x32-10 round
 * function with the key and counter layout of core/rng.c (Random123 on the CPU): key = the
 * stream's two words, counter = (step, sample E + expert, block, block >> 32) for the block of
 * four words that gives draws 4 block .. 4 block + 3, turned into normals by the Box-Muller of
 * elementwise.h. So the GPU's eps equal the CPU's up to the few ulps by which the device's
 * logf, sinf and cosf differ from glibc's.
 *
 * curand_kernel.h includes curand_philox4x32_x.h, which defines curand_Philox4x32_10 with the
 * QUALIFIERS macro. Including that header alone, with QUALIFIERS set to host and device, makes
 * the same source callable on the host, so a CPU test can compare it with Random123. Its
 * 32-bit multiply has a host branch (NV_IF_ELSE_TARGET), so the host build is exact. */
#define QUALIFIERS static __forceinline__ __host__ __device__
#include <curand_philox4x32_x.h>

#include "ops_cuda_impl.h"

/* Writes the normals of block q of row `row` (draws 4q .. 4q + 3 below n) into out[n]. */
__host__ __device__ static void normal_block_at(float *out, size_t n, uint2 key, uint32_t step,
                                                uint32_t row, size_t q) {
    uint4 ctr = make_uint4(step, row, (uint32_t)q, (uint32_t)((uint64_t)q >> 32));
    uint4 r = curand_Philox4x32_10(ctr, key);
    uint32_t w[4] = {r.x, r.y, r.z, r.w};
    normal_block_f(out, 4 * q, n, w);
}

/* One thread per (row, selected expert, block of four draws). */
__global__ void normal_experts_kernel(float *eps, uint2 key, uint32_t step,
                                      const int32_t *sample, const int32_t *sel, int b, int s,
                                      int e, int k, int h) {
    size_t blocks = ((size_t)h + 3) / 4;
    CUDA_FOR(i, (size_t)b * k * blocks) {
        size_t q = i % blocks, pick = i / blocks;
        size_t r = pick / k, t = pick % k;
        int expert = sel[pick];
        size_t slot = s == e ? (size_t)expert : t;
        uint32_t row = (uint32_t)sample[r] * (uint32_t)e + (uint32_t)expert;
        normal_block_at(eps + (r * s + slot) * h, (size_t)h, key, step, row, q);
    }
}

void cuda_normal_experts(float *eps, RngStream st, uint32_t step, const int32_t *sample,
                         const int32_t *sel, int b, int s, int e, int k, int h) {
    if (b == 0 || h == 0)
        return;
    /* Unselected slots (all experts computed) get zeros, as on the CPU. */
    if (s == e && k < e)
        CUDA_CHECK(cudaMemsetAsync(eps, 0, sizeof(float) * (size_t)b * s * h, 0));
    const int32_t *d_sample = cuda_stage_i32(EUAR_SCRATCH_INDEX, sample, (size_t)b);
    const int32_t *d_sel = cuda_stage_i32(EUAR_SCRATCH_INDEX2, sel, (size_t)b * k);
    uint2 key = make_uint2(st.key[0], st.key[1]);
    size_t n = (size_t)b * k * (((size_t)h + 3) / 4);
    normal_experts_kernel<<<cuda_blocks(n), EUAR_CUDA_THREADS>>>(eps, key, step, d_sample, d_sel,
                                                                  b, s, e, k, h);
    CUDA_LAUNCH_CHECK(normal_experts_kernel);
}

extern "C" int backend_cuda_philox_host(const uint32_t ctr[4], const uint32_t key[2],
                                        uint32_t out[4]) {
    uint4 r = curand_Philox4x32_10(make_uint4(ctr[0], ctr[1], ctr[2], ctr[3]),
                                   make_uint2(key[0], key[1]));
    out[0] = r.x;
    out[1] = r.y;
    out[2] = r.z;
    out[3] = r.w;
    return 0;
}

extern "C" int backend_cuda_normal_row_host(RngStream st, uint32_t step, uint32_t row,
                                            float *out, size_t n) {
    uint2 key = make_uint2(st.key[0], st.key[1]);
    for (size_t q = 0; q < (n + 3) / 4; q++)
        normal_block_at(out, n, key, step, row, q);
    return 0;
}
