/* Choice of the backend that runs a model, in one place: the CLI passes the --device value
 * here and hands the returned table to the trainer, so models never see which device runs
 * them. */
#ifndef EUAR_BACKEND_H
#define EUAR_BACKEND_H

#include <stddef.h>

#include "ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What ran a training run, for the result file and the settings table. Versions are as the
 * CUDA runtime encodes them (1000 major + 10 minor: 12040 is 12.4), 0 when not applicable. */
typedef struct {
    char device[16];           /* "cpu", "cuda" or "cpu-guarded" */
    char name[256];            /* GPU name, or the CPU model from /proc/cpuinfo */
    int driver_version;        /* CUDA version the installed driver supports */
    int runtime_version;       /* CUDA runtime (toolkit) bin/euar was built with */
    int cublas_version;        /* cuBLAS, major 10000 + minor 100 + patch */
    int curand_version;        /* cuRAND, major 1000 + minor 100 + patch */
    int compute_major, compute_minor;
    size_t memory_bytes;       /* device memory, 0 for the CPU */
} BackendInfo;

/* Returns the backend named `name` and describes it in `info` (unless NULL). The names are
 * "cpu", "cuda" (device 0, an error when CUDA was not built or no device is usable), "auto"
 * (cuda when a device is usable, cpu otherwise) and "cpu-guarded" (the CPU operations behind
 * page protection, a test backend). Any other name returns NULL with err_set(). */
const Backend *backend_select(const char *name, BackendInfo *info);

/* The CUDA calls behind --device auto, replaceable so that a test can pose as a machine whose
 * device is present but unusable. */
typedef struct {
    int (*device_count)(char *why, size_t cap);
    const Backend *(*open)(void);
    int (*describe)(BackendInfo *info);
} CudaProbe;

/* Selects as backend_select("auto") does, through the given probe. Returns the CUDA backend
 * when a device is counted and opens, and the CPU otherwise. A counted device that fails to
 * open or describe itself gives a warning with the reason. Never returns NULL. */
const Backend *backend_select_auto(const CudaProbe *probe, BackendInfo *info);

/* Checks that backend_select(name) would succeed without setting the backend up (no cuBLAS
 * handle or device context), for a parent process that only starts workers. Returns 0, or -1
 * with err_set(). */
int backend_check(const char *name);

/* Comma-separated names backend_select accepts, for help text. */
#define EUAR_DEVICE_NAMES "cpu, cuda, auto"

/* Returns the CPU backend behind page protection. Its "device" memory is in mmap'd pages that
 * are PROT_NONE except while one of its own operations (upload and download included) runs
 * on them, so a host access to device memory ends the process with SIGSEGV. It also checks
 * that every device pointer argument lies in its memory and every host array outside it. */
const Backend *backend_cpu_guarded(void);

/* Protection faults are the point of the guarded backend; this counts the operations it ran,
 * so a test can check the model went through it. */
long backend_cpu_guarded_ops(void);

/* CUDA backend (core/ops_cuda*.cu, or core/ops_cuda_stub.c when nvcc was not found). */

/* Returns 1 when bin/euar was built with the CUDA backend. */
int backend_cuda_built(void);

/* Returns the number of CUDA devices; 0 with the reason in why (unless NULL) when CUDA was
 * not built, the driver is missing, or no device is present. */
int backend_cuda_device_count(char *why, size_t cap);

/* Returns the CUDA backend on device 0, set up on first use (cuBLAS handle, scratch), or NULL
 * with err_set() when there is no usable device. */
const Backend *backend_cuda(void);

/* Fills info for device 0 of the CUDA backend. Returns 0, or -1 with err_set(). */
int backend_cuda_describe(BackendInfo *info);

/* Runs cuRAND's Philox4x32-10 round function (curand_Philox4x32_10, compiled for the host
 * from the same header the kernels use) on counter ctr and key, for tests that compare it
 * with Random123. Returns -1 when CUDA was not built. */
int backend_cuda_philox_host(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Runs the CUDA backend's eps code for one row on the host: the N(0, 1) vector that
 * normal_experts writes for (stream, step, row), n values. Returns -1 when CUDA was not
 * built. */
int backend_cuda_normal_row_host(RngStream st, uint32_t step, uint32_t row, float *out, size_t n);

/* Runs the host grouping behind the CUDA scatter-adds: positions i < n with keep[i] (all when
 * keep is NULL) grouped by keys[i]. Writes into packed[cap] the G distinct keys in increasing
 * order, then G + 1 offsets, then the positions of each key in increasing order, sets *groups
 * to G and returns the count of values written; -1 when cap is too small or CUDA was not
 * built. */
long backend_cuda_group_host(const int32_t *keys, const unsigned char *keep, int n,
                             int32_t *packed, size_t cap, int *groups);

#ifdef __cplusplus
}
#endif

#endif
