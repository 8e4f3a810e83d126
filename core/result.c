#include "result.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* JSON has no NaN: a metric that could not be computed is written as null. */
static void add_number(cJSON *obj, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, key, v);
    else
        cJSON_AddNullToObject(obj, key);
}

static cJSON *metric_object(const MetricSet *ms) {
    cJSON *o = cJSON_CreateObject();
    add_number(o, "loss", ms->loss);
    for (int i = 0; i < ms->count; i++)
        add_number(o, ms->names[i], ms->values[i]);
    return o;
}

static int is_integer_text(const char *s) {
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}

/* Routing over a test split: load is the share of the k selections each expert received,
 * and sigma2 the mean of mean_d sigma^2 over them. */
static cJSON *routing_object(const ResultInfo *info, const TrainResult *r,
                             const RoutingStats *rs) {
    cJSON *routing = cJSON_CreateObject();
    if (!r->has_experts || rs->samples <= 0)
        return routing;
    for (int m = 0; m < info->num_modalities; m++) {
        cJSON *o = cJSON_AddObjectToObject(routing, info->modality_names[m]);
        cJSON *load = cJSON_AddArrayToObject(o, "load");
        cJSON *sigma2 = cJSON_AddArrayToObject(o, "sigma2");
        for (int j = 0; j < r->experts; j++) {
            double count = rs->load[m][j];
            cJSON_AddItemToArray(load, cJSON_CreateNumber(count / (rs->samples * r->top_k)));
            /* MLP experts have no variance: their sums stay 0 and are written as null. */
            if (count == 0 || rs->sigma2[m][j] == 0.0)
                cJSON_AddItemToArray(sigma2, cJSON_CreateNull());
            else
                cJSON_AddItemToArray(sigma2, cJSON_CreateNumber(rs->sigma2[m][j] / count));
        }
    }
    return routing;
}

/* Writes a CUDA-encoded version (1000 major + 10 minor) as "major.minor". */
static void add_cuda_version(cJSON *obj, const char *key, int v) {
    char text[32];
    snprintf(text, sizeof(text), "%d.%d", v / 1000, (v % 1000) / 10);
    cJSON_AddStringToObject(obj, key, text);
}

/* The device that ran the training: its kind and name, and for CUDA the driver, runtime
 * (toolkit), cuBLAS and cuRAND versions, compute capability and memory. */
static cJSON *device_object(const BackendInfo *d) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", d ? d->device : "cpu");
    cJSON_AddStringToObject(o, "name", d ? d->name : "unknown CPU");
    if (!d || strcmp(d->device, "cuda") != 0)
        return o;
    add_cuda_version(o, "driver_version", d->driver_version);
    add_cuda_version(o, "runtime_version", d->runtime_version);
    char text[32];
    snprintf(text, sizeof(text), "%d.%d.%d", d->cublas_version / 10000,
             (d->cublas_version % 10000) / 100, d->cublas_version % 100);
    cJSON_AddStringToObject(o, "cublas_version", text);
    snprintf(text, sizeof(text), "%d.%d.%d", d->curand_version / 1000,
             (d->curand_version % 1000) / 100, d->curand_version % 100);
    cJSON_AddStringToObject(o, "curand_version", text);
    snprintf(text, sizeof(text), "%d.%d", d->compute_major, d->compute_minor);
    cJSON_AddStringToObject(o, "compute_capability", text);
    cJSON_AddNumberToObject(o, "memory_mb", (double)(d->memory_bytes >> 20));
    return o;
}

int result_write(const char *path, const ResultInfo *info, const Settings *s,
                 const TrainResult *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", EUAR_RESULT_FORMAT);
    cJSON_AddNumberToObject(root, "format_version", EUAR_RESULT_VERSION);
    cJSON_AddStringToObject(root, "status", r->failed ? "failed" : "ok");
    if (r->failed) {
        cJSON *f = cJSON_AddObjectToObject(root, "failure");
        cJSON_AddNumberToObject(f, "epoch", r->fail_epoch);
        cJSON_AddStringToObject(f, "kind", r->fail_kind);
        cJSON_AddStringToObject(f, "reason", r->fail_reason);
    } else {
        cJSON_AddNullToObject(root, "failure");
    }

    cJSON *cell = cJSON_AddObjectToObject(root, "cell");
    const char *hash = "";
    for (int i = 0; i < info->meta_count; i++) {
        const char *k = info->meta_key[i], *v = info->meta_value[i];
        if (strcmp(k, "hash") == 0)
            hash = v;
        else if ((strcmp(k, "condition_index") == 0 || strcmp(k, "model_index") == 0) &&
                 is_integer_text(v))
            cJSON_AddNumberToObject(cell, k, atof(v));
        else
            cJSON_AddStringToObject(cell, k, v);
    }
    if (!cJSON_GetObjectItemCaseSensitive(cell, "dataset"))
        cJSON_AddStringToObject(cell, "dataset", info->dataset_name);
    if (!cJSON_GetObjectItemCaseSensitive(cell, "condition"))
        cJSON_AddStringToObject(cell, "condition",
                                info->noise[0] && strcmp(info->noise, "none") != 0 ? info->noise
                                                                                  : "clean");
    cJSON_AddStringToObject(cell, "data_path", info->data_path);
    cJSON_AddStringToObject(cell, "noise", info->noise);
    cJSON_AddNumberToObject(cell, "noise_seed", (double)info->noise_seed);
    cJSON_AddStringToObject(cell, "model", info->model);
    cJSON_AddNumberToObject(cell, "seed", (double)s->seed);
    cJSON *settings = cJSON_AddObjectToObject(cell, "settings");
    for (int i = 0; i < settings_count(); i++) {
        char value[64];
        settings_value(s, i, value, sizeof(value));
        cJSON_AddStringToObject(settings, settings_key(i), value);
    }
    cJSON_AddStringToObject(root, "hash", hash);
    cJSON_AddStringToObject(root, "task", info->regression ? "regression" : "classification");
    cJSON_AddNumberToObject(root, "num_classes", info->num_classes);
    cJSON *mods = cJSON_AddArrayToObject(root, "modalities");
    for (int i = 0; i < info->num_modalities; i++)
        cJSON_AddItemToArray(mods, cJSON_CreateString(info->modality_names[i]));
    char value[64];
    for (int i = 0; i < settings_count(); i++)
        if (strcmp(settings_key(i), "select") == 0)
            settings_value(s, i, value, sizeof(value));
    cJSON_AddStringToObject(root, "select", value);
    cJSON_AddNumberToObject(root, "selected_epoch", r->selected_epoch);

    cJSON *metrics = cJSON_AddObjectToObject(root, "metrics");
    if (r->selected_epoch > 0) {
        cJSON_AddItemToObject(metrics, "valid", metric_object(&r->valid));
        cJSON_AddItemToObject(metrics, "test", metric_object(&r->test));
    }

    cJSON *curve = cJSON_AddArrayToObject(root, "curve");
    for (int i = 0; i < r->epochs_run; i++) {
        const EpochRecord *e = &r->curve[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", e->epoch);
        add_number(o, "train_loss", e->train_loss);
        add_number(o, "train_task", e->train_task);
        add_number(o, "train_kl", e->train_kl);
        add_number(o, "train_balance", e->train_balance);
        add_number(o, "train_u", e->train_u);
        add_number(o, "valid_loss", e->valid_loss);
        add_number(o, "valid_metric", e->valid_metric);
        add_number(o, "ms", e->ms);
        cJSON_AddItemToArray(curve, o);
    }

    /* Routing over the test split at the selected epoch. */
    cJSON_AddItemToObject(root, "routing",
                          r->selected_epoch > 0 ? routing_object(info, r, &r->routing)
                                                : cJSON_CreateObject());
    cJSON *conditions = cJSON_AddArrayToObject(root, "conditions");
    for (int c = 0; c < info->condition_count; c++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "label", info->condition_label[c]);
        cJSON_AddStringToObject(o, "noise", info->condition_noise[c]);
        cJSON_AddItemToObject(o, "metrics", metric_object(&info->condition_metrics[c]));
        cJSON_AddItemToObject(o, "routing", routing_object(info, r, &info->condition_routing[c]));
        cJSON_AddItemToArray(conditions, o);
    }

    cJSON_AddNumberToObject(root, "time_s", r->time_s);
    cJSON_AddNumberToObject(root, "samples_per_s", r->samples_per_s);
    cJSON_AddStringToObject(root, "backend", info->backend);
    cJSON_AddItemToObject(root, "device", device_object(info->device));
    cJSON_AddNumberToObject(root, "threads", s->threads);
    cJSON *build = cJSON_AddObjectToObject(root, "build");
    cJSON_AddStringToObject(build, "version", EUAR_VERSION);
#ifdef __VERSION__
    cJSON_AddStringToObject(build, "compiler", __VERSION__);
#endif
    cJSON_AddStringToObject(build, "date", __DATE__);
    char checksum[24];
    snprintf(checksum, sizeof(checksum), "%016" PRIx64, info->data_checksum);
    cJSON_AddStringToObject(root, "data_checksum", checksum);
    if (info->has_data_file_hash) {
        snprintf(checksum, sizeof(checksum), "%016" PRIx64, info->data_file_hash);
        cJSON_AddStringToObject(root, "data_file_hash", checksum);
    }
    cJSON_AddNumberToObject(root, "peak_rss_mb", (double)peak_rss_bytes() / 1048576.0);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return err_set("cannot format the result of %s", path);
    size_t len = strlen(text);
    char *with_newline = xmalloc(len + 2);
    memcpy(with_newline, text, len);
    with_newline[len] = '\n';
    with_newline[len + 1] = '\0';
    cJSON_free(text);
    int rc = write_file_atomic(path, with_newline, len + 1);
    free(with_newline);
    return rc;
}
