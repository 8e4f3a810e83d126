/* Noise transforms, applied to each chunk of samples as the dataset reader streams them. */
#include "noise.h"

#include <string.h>

#include "core/common.h"

RngStream noise_sample_stream(uint64_t noise_seed, int term, const char *sample_id,
                              const char *modality) {
    RngStream s = rng_stream(noise_seed, EUAR_RNG_NOISE);
    s = rng_substream(s, (uint64_t)term);
    s = rng_substream(s, hash_fnv1a64(sample_id, strlen(sample_id), EUAR_FNV_OFFSET));
    return rng_substream(s, hash_fnv1a64(modality, strlen(modality), EUAR_FNV_OFFSET));
}

static int keeps(const NoiseTerm *t, const char *name) {
    for (int i = 0; i < t->num_keep; i++)
        if (strcmp(t->keep[i], name) == 0)
            return 1;
    return 0;
}

/* Zeroes the values of chunk sample i and clears its availability bit; lengths stay, so the
 * shape of the sample is unchanged. */
static void modality_blank_sample(Modality *m, int i) {
    size_t row;
    switch (m->kind) {
    case EUAR_KIND_FEATURES:
        row = (size_t)m->t * (size_t)m->d;
        memset(m->features + (size_t)i * row, 0, row * sizeof(float));
        break;
    case EUAR_KIND_IMAGE:
        row = (size_t)m->c * (size_t)m->h * (size_t)m->w;
        memset(m->pixels + (size_t)i * row, 0, row);
        break;
    case EUAR_KIND_TOKENS:
        row = (size_t)m->t;
        memset(m->tokens + (size_t)i * row, 0, row * sizeof(int32_t));
        break;
    }
    if (m->available)
        m->available[i] = 0;
}

static int apply_missing(const NoiseTerm *t, const Dataset *ds, const char *name, int first,
                         int count, Modality *m) {
    if (keeps(t, name))
        return 0;
    for (int i = 0; i < count; i++)
        if (noise_phase_covers(t->phase, (SplitId)ds->split[first + i]))
            modality_blank_sample(m, i);
    return 0;
}

int noise_apply_chunk(void *ctx, const Dataset *ds, int modality, int first, int count,
                      Modality *m) {
    const NoiseContext *nc = ctx;
    EUAR_ASSERT(nc != NULL && nc->spec != NULL);
    EUAR_ASSERT(modality >= 0 && modality < ds->num_modalities);
    EUAR_ASSERT(first >= 0 && count >= 0 && first + count <= ds->n);
    const NoiseSpec *spec = nc->spec;
    const char *name = m->name[0] ? m->name : ds->mod[modality].name;
    for (int ti = 0; ti < spec->count; ti++) {
        const NoiseTerm *t = &spec->term[ti];
        if (t->type != EUAR_NOISE_MISSING) {
            char text[EUAR_NOISE_TEXT_LEN];
            noise_describe(spec, text, sizeof(text));
            return err_set("noise type '%s' is not implemented yet (spec '%s'); only missing "
                           "can be applied so far", noise_type_name(t->type), text);
        }
        if (apply_missing(t, ds, name, first, count, m) != 0)
            return -1;
    }
    return 0;
}
