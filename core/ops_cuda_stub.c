/* Stand-in for the CUDA backend when nvcc was not found at build time (or make GPU=0): the
 * lookups report that CUDA was not built, so `--device cuda` fails with a clear message and
 * `--device auto` falls back to the CPU. */
#include <stdio.h>

#include "backend.h"
#include "common.h"

#define NOT_BUILT "bin/euar was built without the CUDA backend (nvcc was not found, or make " \
                  "GPU=0); rebuild without GPU=0 and with nvcc on PATH or at "            \
                  "/usr/local/cuda/bin/nvcc"

int backend_cuda_built(void) {
    return 0;
}

int backend_cuda_device_count(char *why, size_t cap) {
    if (why)
        snprintf(why, cap, "%s", NOT_BUILT);
    return 0;
}

const Backend *backend_cuda(void) {
    err_set("%s", NOT_BUILT);
    return NULL;
}

int backend_cuda_describe(BackendInfo *info) {
    return err_set("%s", NOT_BUILT);
}

int backend_cuda_philox_host(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    return -1;
}

int backend_cuda_normal_row_host(RngStream st, uint32_t step, uint32_t row, float *out,
                                 size_t n) {
    return -1;
}

long backend_cuda_group_host(const int32_t *keys, const unsigned char *keep, int n,
                             int32_t *packed, size_t cap, int *groups) {
    return -1;
}
