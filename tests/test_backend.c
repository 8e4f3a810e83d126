/* Backend choice without a GPU: --device auto with a probe that poses as a machine whose
 * device is counted but fails to open (cublasCreate out of memory, say) or to describe itself
 * must fall back to the CPU with a warning naming the reason; a usable device must be taken;
 * and the task losses must reject an empty batch on the CPU as the CUDA backend does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/backend.h"
#include "core/common.h"
#include "tests/child_process.h"

#define OPEN_FAILURE "cublasCreate failed: the resource allocation failed"
#define DESCRIBE_FAILURE "cudaGetDeviceProperties failed: unspecified launch failure"

/* A table that stands for an opened CUDA backend; only its address is compared. */
static Backend fake_gpu = {.name = "fake-gpu"};

static int count_none(char *why, size_t cap) {
    snprintf(why, cap, "no CUDA device is present");
    return 0;
}

static int count_one(char *why, size_t cap) {
    (void)why;
    (void)cap;
    return 1;
}

static const Backend *open_fails(void) {
    err_set("no usable CUDA device: %s", OPEN_FAILURE);
    return NULL;
}

static const Backend *open_works(void) {
    return &fake_gpu;
}

static int describe_fails(BackendInfo *info) {
    (void)info;
    return err_set("%s", DESCRIBE_FAILURE);
}

static int describe_works(BackendInfo *info) {
    memset(info, 0, sizeof(*info));
    snprintf(info->device, sizeof(info->device), "cuda");
    snprintf(info->name, sizeof(info->name), "Fake GPU");
    return 0;
}

/* Runs backend_select_auto with stderr sent to a file, whose text goes to log[cap]. */
static const Backend *select_logged(const CudaProbe *probe, BackendInfo *info, char *log,
                                    size_t cap) {
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    const Backend *be = backend_select_auto(probe, info);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(log, 1, cap - 1, tmp);
    log[n] = '\0';
    fclose(tmp);
    return be;
}

static void auto_without_device_uses_cpu(void **state) {
    (void)state;
    CudaProbe probe = {count_none, open_works, describe_works};
    BackendInfo info;
    char log[1024];
    const Backend *be = select_logged(&probe, &info, log, sizeof(log));
    assert_ptr_equal(be, backend_cpu());
    assert_string_equal(info.device, "cpu");
    /* No device is the ordinary case on a CPU machine: no warning. */
    assert_null(strstr(log, "warning"));
}

static void auto_falls_back_when_open_fails(void **state) {
    (void)state;
    CudaProbe probe = {count_one, open_fails, describe_works};
    BackendInfo info;
    char log[1024];
    err_clear();
    const Backend *be = select_logged(&probe, &info, log, sizeof(log));
    assert_ptr_equal(be, backend_cpu());
    assert_string_equal(info.device, "cpu");
    assert_non_null(strstr(log, "warning"));
    assert_non_null(strstr(log, OPEN_FAILURE));
    /* The failure was handled: it is not left for the caller to print again. */
    assert_null(strstr(err_get(), OPEN_FAILURE));
}

static void auto_falls_back_when_describe_fails(void **state) {
    (void)state;
    CudaProbe probe = {count_one, open_works, describe_fails};
    BackendInfo info;
    char log[1024];
    const Backend *be = select_logged(&probe, &info, log, sizeof(log));
    assert_ptr_equal(be, backend_cpu());
    assert_string_equal(info.device, "cpu");
    assert_non_null(strstr(log, DESCRIBE_FAILURE));
}

static void auto_takes_usable_device(void **state) {
    (void)state;
    CudaProbe probe = {count_one, open_works, describe_works};
    BackendInfo info;
    char log[1024];
    const Backend *be = select_logged(&probe, &info, log, sizeof(log));
    assert_ptr_equal(be, &fake_gpu);
    assert_string_equal(info.device, "cuda");
    assert_string_equal(info.name, "Fake GPU");
    assert_null(strstr(log, "warning"));
}

/* --device cuda on this build: an error through err_get, never an exit. */
static void cuda_without_device_is_an_error(void **state) {
    (void)state;
    char why[256];
    if (backend_cuda_device_count(why, sizeof(why)) > 0)
        skip();
    err_clear();
    assert_null(backend_select("cuda", NULL));
    assert_true(strlen(err_get()) > 0);
}

static void mse_of_empty_batch(void) {
    backend_cpu()->mse(NULL, NULL, NULL, 0, 1.0f);
}

static void cross_entropy_of_empty_batch(void) {
    backend_cpu()->cross_entropy(NULL, NULL, NULL, NULL, 0, 3, 1.0f);
}

static void empty_batch_loss_rejected(void **state) {
    (void)state;
    assert_child_exits(mse_of_empty_batch, 2);
    assert_child_exits(cross_entropy_of_empty_batch, 2);
}

int main(void) {
    log_set_level(EUAR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auto_without_device_uses_cpu),
        cmocka_unit_test(auto_falls_back_when_open_fails),
        cmocka_unit_test(auto_falls_back_when_describe_fails),
        cmocka_unit_test(auto_takes_usable_device),
        cmocka_unit_test(cuda_without_device_is_an_error),
        cmocka_unit_test(empty_batch_loss_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
