/* Turns an HDF5 dataset and a noise spec into the trainer's input: load with the noise
 * applied chunk by chunk, features pooled over time, samples grouped by split. */
#ifndef EUAR_PREPARE_H
#define EUAR_PREPARE_H

#include "core/trainer.h"
#include "datasets/dataset.h"
#include "noise/noise.h"

typedef struct {
    Dataset ds;      /* pooled: features modalities are [N, 1, D] */
    NoiseSpec noise; /* with default scales resolved, as applied */
    TrainData data;  /* points into `owned` */
    void *owned[3 * (2 * EUAR_MODEL_MAX_MODALITIES + 1) + EUAR_MODEL_MAX_MODALITIES];
    int owned_count;
    uint64_t checksum; /* FNV-1a over every split's inputs and labels, after noise */
} PreparedData;

/* Loads `path`, applies `noise` (empty for none) with `noise_seed`, and fills `p`.
 * Returns 0 or -1 with err_set() naming the file or the spec. */
int prepare_data(PreparedData *p, const char *path, const char *noise, uint64_t noise_seed,
                 NonFinitePolicy nonfinite);
void prepared_data_free(PreparedData *p);

#endif
