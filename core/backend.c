#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "common.h"

/* Copies the "model name" line of /proc/cpuinfo, or "unknown CPU". */
static void cpu_model_name(char *out, size_t cap) {
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *colon = strchr(line, ':');
        if (!colon)
            break;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        snprintf(out, cap, "%s", colon);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}

static const Backend *select_cpu(const char *device, const Backend *be, BackendInfo *info) {
    if (info) {
        memset(info, 0, sizeof(*info));
        snprintf(info->device, sizeof(info->device), "%s", device);
        cpu_model_name(info->name, sizeof(info->name));
    }
    return be;
}

static const Backend *select_cuda(const CudaProbe *probe, BackendInfo *info) {
    const Backend *be = probe->open();
    if (!be)
        return NULL;
    if (info && probe->describe(info) != 0)
        return NULL;
    return be;
}

static const CudaProbe cuda_probe = {backend_cuda_device_count, backend_cuda,
                                     backend_cuda_describe};

const Backend *backend_select_auto(const CudaProbe *probe, BackendInfo *info) {
    char why[256];
    if (probe->device_count(why, sizeof(why)) <= 0) {
        LOG_DEBUG("device auto: using the CPU because %s", why);
        return select_cpu("cpu", backend_cpu(), info);
    }
    const Backend *be = select_cuda(probe, info);
    if (be)
        return be;
    /* A device is present but unusable (busy, out of memory, a broken driver). The CPU
     * still runs the model, so log the reason and continue. */
    LOG_WARN("device auto: a CUDA device is present but cannot be used (%s); using the CPU",
             err_get());
    err_clear();
    return select_cpu("cpu", backend_cpu(), info);
}

const Backend *backend_select(const char *name, BackendInfo *info) {
    if (strcmp(name, "cpu") == 0)
        return select_cpu("cpu", backend_cpu(), info);
    if (strcmp(name, "cpu-guarded") == 0)
        return select_cpu("cpu-guarded", backend_cpu_guarded(), info);
    if (strcmp(name, "cuda") == 0)
        return select_cuda(&cuda_probe, info);
    if (strcmp(name, "auto") == 0)
        return backend_select_auto(&cuda_probe, info);
    err_set("invalid device '%s': expected one of %s", name, EUAR_DEVICE_NAMES);
    return NULL;
}

int backend_check(const char *name) {
    if (strcmp(name, "cpu") == 0 || strcmp(name, "cpu-guarded") == 0 || strcmp(name, "auto") == 0)
        return 0;
    if (strcmp(name, "cuda") == 0) {
        char why[256];
        if (backend_cuda_device_count(why, sizeof(why)) > 0)
            return 0;
        return err_set("%s; use --device cpu or auto", why);
    }
    return err_set("invalid device '%s': expected one of %s", name, EUAR_DEVICE_NAMES);
}
