/* Per-dimension standard deviation of features over the training split, which gaussian noise
 * on features scales by eps. */
#include "noise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* Adds the valid steps of samples [0, count) of a features block (`x` [count, T, D], lengths
 * and availability indexed like it) whose dataset split, split[i], is train. */
static void stats_add(NoiseFeatureStats *st, int modality, const float *x, const int32_t *lengths,
                      const uint8_t *available, const uint8_t *split, int count, int t, int d) {
    if (st->d[modality] == 0) {
        st->d[modality] = d;
        st->mean[modality] = xcalloc((size_t)d, sizeof(double));
        st->m2[modality] = xcalloc((size_t)d, sizeof(double));
    }
    EUAR_ASSERT(st->d[modality] == d);
    double *mean = st->mean[modality], *m2 = st->m2[modality];
    for (int i = 0; i < count; i++) {
        if (split[i] != EUAR_SPLIT_TRAIN || (available && !available[i]))
            continue;
        for (int s = 0; s < lengths[i]; s++) {
            const float *row = x + ((size_t)i * (size_t)t + (size_t)s) * (size_t)d;
            /* Welford's update, one step at a time, in double. */
            double n = (double)++st->count[modality];
            for (int k = 0; k < d; k++) {
                double delta = (double)row[k] - mean[k];
                mean[k] += delta / n;
                m2[k] += delta * ((double)row[k] - mean[k]);
            }
        }
    }
}

int noise_stats_chunk(void *ctx, const Dataset *ds, int modality, int first, int count,
                      Modality *m) {
    NoiseFeatureStats *st = ctx;
    EUAR_ASSERT(modality >= 0 && modality < EUAR_MAX_MODALITIES);
    if (m->kind != EUAR_KIND_FEATURES)
        return 0;
    stats_add(st, modality, m->features, m->lengths, m->available, ds->split + first, count,
              m->t, m->d);
    return 0;
}

int noise_stats_std(const NoiseFeatureStats *st, const Dataset *ds, int modality, float *out) {
    const char *name = ds->mod[modality].name;
    if (st->count[modality] == 0)
        return err_set("dataset '%s', modality '%s': no valid step in an available training "
                       "sample, so the standard deviation that gaussian noise on features "
                       "scales is undefined", ds->name, name);
    for (int k = 0; k < st->d[modality]; k++)
        out[k] = (float)sqrt(st->m2[modality][k] / (double)st->count[modality]);
    return 0;
}

void noise_stats_free(NoiseFeatureStats *st) {
    for (int m = 0; m < EUAR_MAX_MODALITIES; m++) {
        free(st->mean[m]);
        free(st->m2[m]);
    }
    memset(st, 0, sizeof(*st));
}

int noise_feature_std(const Dataset *ds, int modality, float *out) {
    const Modality *m = &ds->mod[modality];
    if (m->kind != EUAR_KIND_FEATURES)
        return err_set("dataset '%s', modality '%s': the training standard deviation needs "
                       "features, but the modality is %s", ds->name, m->name,
                       modality_kind_name(m->kind));
    NoiseFeatureStats st;
    memset(&st, 0, sizeof(st));
    stats_add(&st, modality, m->features, m->lengths, m->available, ds->split, ds->n, m->t,
              m->d);
    int rc = noise_stats_std(&st, ds, modality, out);
    noise_stats_free(&st);
    return rc;
}
