/* Noise transforms, applied to each chunk of samples as the dataset reader streams them. The
 * definitions are in docs/noise.md and the layout of the draws in noise.h. */
#include "noise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

/* Counter c0 of each kind of draw inside a sample's stream. */
enum { NOISE_CTR_GATE = 0, NOISE_CTR_FIELD = 1, NOISE_CTR_POSITION = 2 };

/* Share of the positions of a corrupted image that become 0 (pepper) and 255 (salt): QMF's
 * AddSaltPepperNoise(density=0.1) draws each position from (0, 255, unchanged) with
 * probabilities (0.05, 0.05, 0.9). */
#define NOISE_PEPPER_SHARE 0.05
#define NOISE_SALT_SHARE 0.05

/* The sample id whose stream draws the field of gaussian field=fixed. */
#define NOISE_FIXED_FIELD_ID ""

RngStream noise_sample_stream(uint64_t noise_seed, int term, const char *sample_id,
                              const char *modality) {
    RngStream s = rng_stream(noise_seed, EUAR_RNG_NOISE);
    s = rng_substream(s, (uint64_t)term);
    s = rng_substream(s, hash_fnv1a64(sample_id, strlen(sample_id), EUAR_FNV_OFFSET));
    return rng_substream(s, hash_fnv1a64(modality, strlen(modality), EUAR_FNV_OFFSET));
}

/* What one call of a transform works on: term `ti` of the spec, on modality `name` of `ds`,
 * for chunk samples [0, count) that are samples [first, first + count) of the dataset. */
typedef struct {
    const NoiseContext *nc;
    const NoiseTerm *term;
    int ti;
    const Dataset *ds;
    int modality;
    const char *name;
    int first, count;
    Modality *m;
} Job;

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

static int apply_missing(const Job *job) {
    if (keeps(job->term, job->name))
        return 0;
    for (int i = 0; i < job->count; i++)
        if (noise_phase_covers(job->term->phase, (SplitId)job->ds->split[job->first + i]))
            modality_blank_sample(job->m, i);
    return 0;
}

/* Returns the stream of chunk sample i. */
static RngStream job_stream(const Job *job, int i) {
    return noise_sample_stream(job->nc->seed, job->ti, job->ds->ids[job->first + i], job->name);
}

/* Returns 1 when chunk sample i lies in the term's phase, is available, and passes the gate:
 * the uniform at counter (0, 0, 0, 0) of its stream is below `prob`. A probability of 0 never
 * passes and one of 1 or more always does, because the uniform lies in (0, 1). */
static int job_sample_gated(const Job *job, int i, double prob) {
    if (!noise_phase_covers(job->term->phase, (SplitId)job->ds->split[job->first + i]))
        return 0;
    if (job->m->available && !job->m->available[i])
        return 0;
    uint32_t w[4];
    rng_block(job_stream(job, i), NOISE_CTR_GATE, 0, 0, 0, w);
    return (double)rng_word_to_uniform(w[0]) < prob;
}

/* Maps a noisy level to uint8. The level is truncated toward zero first, as NumPy's
 * astype(np.uint8) does with the float sum in QMF's AddGaussianNoise. Then clip keeps it in
 * [0, 255], and wrap reduces it modulo 256 like the uint8 conversion of an integer. Cliphigh
 * sets levels above 255 to 255 and wraps the rest. */
static uint8_t level_to_u8(double v, NoiseRange range) {
    if (range == EUAR_RANGE_CLIP_HIGH && v > 255.0)
        return 255;
    double level = trunc(v);
    if (range == EUAR_RANGE_CLIP) {
        if (level < 0.0)
            return 0;
        if (level > 255.0)
            return 255;
        return (uint8_t)level;
    }
    double r = fmod(level, 256.0);
    if (r < 0.0)
        r += 256.0;
    return (uint8_t)r;
}

static int gaussian_image(const Job *job) {
    const NoiseTerm *t = job->term;
    Modality *m = job->m;
    double scale = t->scale > 0 ? t->scale : noise_default_image_scale(job->ds->name);
    if (scale <= 0)
        return err_set("gaussian noise on image modality '%s' needs scale=S, because dataset "
                       "'%s' has no default scale (defaults: synth-mvsa and mvsa 10, "
                       "synth-nyud and nyud 1, fmnist-2view 10)", job->name, job->ds->name);
    if (t->eps == 0.0)
        return 0;
    double sigma = scale * t->eps;
    /* |N(0, 1)| from rng_fill_normal stays below 6, so 8 sigma bounds every offset. */
    if (!isfinite(sigma * 8.0))
        return err_set("gaussian noise on image modality '%s': eps * scale = %g * %g is too "
                       "large", job->name, t->eps, scale);

    const size_t plane = (size_t)m->h * (size_t)m->w;
    float *field = xmalloc(plane * sizeof(float));
    if (t->field == EUAR_FIELD_FIXED) {
        RngStream fixed = noise_sample_stream(job->nc->seed, job->ti, NOISE_FIXED_FIELD_ID,
                                              job->name);
        rng_fill_normal(fixed, NOISE_CTR_FIELD, 0, field, plane);
    }
    for (int i = 0; i < job->count; i++) {
        if (!job_sample_gated(job, i, t->p))
            continue;
        if (t->field == EUAR_FIELD_FRESH)
            rng_fill_normal(job_stream(job, i), NOISE_CTR_FIELD, 0, field, plane);
        uint8_t *img = m->pixels + (size_t)i * (size_t)m->c * plane;
        for (int c = 0; c < m->c; c++) {
            uint8_t *px = img + (size_t)c * plane;
            for (size_t k = 0; k < plane; k++)
                px[k] = level_to_u8((double)px[k] + sigma * (double)field[k], t->range);
        }
    }
    free(field);
    return 0;
}

static int gaussian_features(const Job *job) {
    const NoiseTerm *t = job->term;
    Modality *m = job->m;
    const float *std = job->nc->feature_std[job->modality];
    if (!std)
        return err_set("gaussian noise on features modality '%s' needs the standard deviation "
                       "of each dimension over the training split, which the loader did not "
                       "provide (NoiseContext.feature_std, from noise_feature_std() or "
                       "noise_stats_chunk())", job->name);
    const size_t row = (size_t)m->t * (size_t)m->d;
    float *field = xmalloc(row * sizeof(float));
    if (t->field == EUAR_FIELD_FIXED) {
        RngStream fixed = noise_sample_stream(job->nc->seed, job->ti, NOISE_FIXED_FIELD_ID,
                                              job->name);
        rng_fill_normal(fixed, NOISE_CTR_FIELD, 0, field, row);
    }
    for (int i = 0; i < job->count; i++) {
        if (!job_sample_gated(job, i, t->p))
            continue;
        if (t->field == EUAR_FIELD_FRESH)
            rng_fill_normal(job_stream(job, i), NOISE_CTR_FIELD, 0, field, row);
        float *x = m->features + (size_t)i * row;
        int steps = m->lengths[i];
        for (int s = 0; s < steps; s++)
            for (int d = 0; d < m->d; d++) {
                size_t k = (size_t)s * (size_t)m->d + (size_t)d;
                x[k] = (float)((double)x[k] + t->eps * (double)std[d] * (double)field[k]);
            }
    }
    free(field);
    return 0;
}

/* Sets 5% of the positions of each corrupted image to 0 and 5% to 255 in every channel; each
 * position draws one uniform u and becomes 0 when u < 0.05, 255 when 0.05 <= u < 0.1. */
static int saltpepper_image(const Job *job) {
    const NoiseTerm *t = job->term;
    Modality *m = job->m;
    /* QMF gates twice, RandomApply(p) and then `random.uniform(0, 1) < E / convention`, so a
     * sample is corrupted with probability p * min(1, E / convention): a level above the
     * convention corrupts every image that passed the first gate, and no more. */
    double prob = t->p * EUAR_MIN(1.0, t->eps / (double)t->convention);
    const size_t plane = (size_t)m->h * (size_t)m->w;
    float *u = xmalloc(plane * sizeof(float));
    for (int i = 0; i < job->count; i++) {
        if (!job_sample_gated(job, i, prob))
            continue;
        rng_fill_uniform(job_stream(job, i), NOISE_CTR_POSITION, 0, u, plane);
        uint8_t *img = m->pixels + (size_t)i * (size_t)m->c * plane;
        for (size_t k = 0; k < plane; k++) {
            int level;
            if (u[k] < NOISE_PEPPER_SHARE)
                level = 0;
            else if (u[k] < NOISE_PEPPER_SHARE + NOISE_SALT_SHARE)
                level = 255;
            else
                continue;
            for (int c = 0; c < m->c; c++)
                img[(size_t)c * plane + k] = (uint8_t)level;
        }
    }
    free(u);
    return 0;
}

/* Tokens: each valid token of a gated sample becomes the blank token (id 1) with probability
 * ratio. Features: each valid step becomes a row of zeros with that probability. Steps at or
 * beyond the length stay as they are. */
static int blank_sequence(const Job *job) {
    const NoiseTerm *t = job->term;
    Modality *m = job->m;
    if (m->kind == EUAR_KIND_TOKENS && m->vocab < 2)
        return err_set("blank noise on tokens modality '%s' needs the blank token id 1, but "
                       "the vocabulary has %d ids", job->name, m->vocab);
    float *u = xmalloc((size_t)m->t * sizeof(float));
    for (int i = 0; i < job->count; i++) {
        if (!job_sample_gated(job, i, t->p))
            continue;
        rng_fill_uniform(job_stream(job, i), NOISE_CTR_POSITION, 0, u, (size_t)m->t);
        int steps = m->lengths[i];
        for (int s = 0; s < steps; s++) {
            if ((double)u[s] >= t->ratio)
                continue;
            if (m->kind == EUAR_KIND_TOKENS) {
                m->tokens[(size_t)i * (size_t)m->t + (size_t)s] = 1;
            } else {
                float *x = m->features + ((size_t)i * (size_t)m->t + (size_t)s) * (size_t)m->d;
                memset(x, 0, (size_t)m->d * sizeof(float));
            }
        }
    }
    free(u);
    return 0;
}

/* Applies one term of a type other than missing to the chunk (noise_apply_chunk() applies
 * missing itself). */
static int apply_term(const Job *job) {
    const NoiseTerm *t = job->term;
    ModalityKind kind = job->m->kind;
    if (!noise_type_fits_kind(t->type, kind))
        return err_set("%s noise cannot apply to modality '%s' of kind %s; name a modality of "
                       "a fitting kind after '@'", noise_type_name(t->type), job->name,
                       modality_kind_name(kind));
    /* Gaussian images check their scale first, so a spec without one fails at every eps. */
    if (t->type == EUAR_NOISE_GAUSSIAN && kind == EUAR_KIND_IMAGE)
        return gaussian_image(job);
    /* eps = 0 and ratio = 0 change nothing; returning here also keeps -0.0 and every other
     * bit pattern of the clean data. */
    if ((t->type == EUAR_NOISE_BLANK && t->ratio == 0.0) ||
        (t->type != EUAR_NOISE_BLANK && t->eps == 0.0))
        return 0;
    switch (t->type) {
    case EUAR_NOISE_GAUSSIAN:
        return gaussian_features(job);
    case EUAR_NOISE_SALTPEPPER:
        return saltpepper_image(job);
    case EUAR_NOISE_BLANK:
        return blank_sequence(job);
    case EUAR_NOISE_MISSING:
        break;
    }
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
        if (!noise_term_targets(t, name, m->kind))
            continue;
        Job job = {nc, t, ti, ds, modality, name, first, count, m};
        int rc = t->type == EUAR_NOISE_MISSING ? apply_missing(&job) : apply_term(&job);
        if (rc != 0) {
            char text[EUAR_NOISE_TEXT_LEN];
            noise_describe(spec, text, sizeof(text));
            return err_prefix("noise spec '%s'", text);
        }
    }
    return 0;
}

int noise_needs_feature_std(const NoiseSpec *spec, const Dataset *ds, int modality) {
    const Modality *m = &ds->mod[modality];
    if (m->kind != EUAR_KIND_FEATURES)
        return 0;
    for (int ti = 0; ti < spec->count; ti++) {
        const NoiseTerm *t = &spec->term[ti];
        if (t->type == EUAR_NOISE_GAUSSIAN && t->eps > 0 &&
            noise_term_targets(t, m->name, m->kind))
            return 1;
    }
    return 0;
}
