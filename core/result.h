/* The result file of one training run (format in docs/results.md). */
#ifndef EUAR_RESULT_H
#define EUAR_RESULT_H

#include <stdint.h>

#include "backend.h"
#include "trainer.h"

#define EUAR_RESULT_FORMAT "euar-bench-result"
#define EUAR_RESULT_VERSION 1
#define EUAR_RESULT_MAX_META 16
#define EUAR_RESULT_MAX_CONDITIONS 32

/* What the run was, beyond its settings. Meta pairs come from `euar train --meta key=value`;
 * integer-valued keys condition_index and model_index are written as numbers. */
typedef struct {
    const char *model;
    const char *data_path;
    const char *dataset_name;
    const char *noise;
    uint64_t noise_seed;
    int regression;
    int num_classes;
    int num_modalities;
    const char *modality_names[EUAR_MODEL_MAX_MODALITIES];
    uint64_t data_checksum;
    uint64_t data_file_hash; /* file_hash_compute() of data_path before it was read */
    int has_data_file_hash;
    const char *backend;
    const BackendInfo *device; /* what ran it, or NULL (written as the CPU) */
    /* Test-time conditions: the selected model evaluated on the corrupted test split. */
    int condition_count;
    const char *condition_label[EUAR_RESULT_MAX_CONDITIONS];
    const char *condition_noise[EUAR_RESULT_MAX_CONDITIONS];
    const MetricSet *condition_metrics;   /* [condition_count] */
    const RoutingStats *condition_routing; /* [condition_count] */
    int meta_count;
    const char *meta_key[EUAR_RESULT_MAX_META];
    const char *meta_value[EUAR_RESULT_MAX_META];
} ResultInfo;

/* Writes the result JSON to `path` atomically. Returns 0 or -1 with err_set(). */
int result_write(const char *path, const ResultInfo *info, const Settings *s,
                 const TrainResult *r);

#endif
