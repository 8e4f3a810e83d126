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

static const Backend *select_cuda(BackendInfo *info) {
    const Backend *be = backend_cuda();
    if (!be)
        return NULL;
    if (info && backend_cuda_describe(info) != 0)
        return NULL;
    return be;
}

const Backend *backend_select(const char *name, BackendInfo *info) {
    if (strcmp(name, "cpu") == 0)
        return select_cpu("cpu", backend_cpu(), info);
    if (strcmp(name, "cpu-guarded") == 0)
        return select_cpu("cpu-guarded", backend_cpu_guarded(), info);
    if (strcmp(name, "cuda") == 0)
        return select_cuda(info);
    if (strcmp(name, "auto") == 0) {
        char why[256];
        if (backend_cuda_device_count(why, sizeof(why)) > 0)
            return select_cuda(info);
        LOG_DEBUG("device auto: using the CPU because %s", why);
        return select_cpu("cpu", backend_cpu(), info);
    }
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
