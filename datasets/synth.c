/* Generator of synth-mosi and synth-mosei: regression datasets shaped like the CMU-MOSI and
 * CMU-MOSEI features that EUAR was evaluated on. Text has 768 dimensions (BERT), audio 74
 * (COVAREP) and vision 47 for MOSI or 35 for MOSEI (Facet), over 50 aligned steps, and the
 * split sizes are those of the standard folds. The content is synthetic, with a known
 * structure:
 *
 *   y          sentiment label in [-3, 3], a multiple of 1/3, exactly 0 for about 5%;
 *   q[m]       quality of modality m per sample, in [0, 1]: mostly clean, some heavily
 *              corrupted, stored as /modalities/<m>/quality;
 *   x[m][s]    step s < length: q*(a*y + b*n)*w + B*z + (1-q)*C*c + sigma*e[s], where w is a
 *              unit sentiment direction, n a per-sample ambiguity, B*z nuisance factors of
 *              rank K, c a per-sample corruption vector and e per-step noise; steps beyond
 *              the length are zero.
 *
 * The sentiment direction is in every valid step, so it survives the masked mean. Text has
 * the least ambiguity and corruption, audio and vision more. Every value is a counter-
 * addressed Philox draw keyed by (seed, sample, modality), so the file is the same for the
 * same seed however it is chunked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "datasets/dataset.h"
#include "datasets/dataset_internal.h"

#define SYNTH_STEPS 50
#define SYNTH_MIN_LENGTH 10
#define SYNTH_NUISANCE_RANK 8
#define SYNTH_ZERO_SHARE 0.05f

/* Counter slots (c1) of the per-sample draws. Their c0 is the sample index. */
enum { DRAW_STEP_NOISE, DRAW_NUISANCE, DRAW_CORRUPTION, DRAW_SCALARS, DRAW_LABEL, DRAW_LENGTH };
/* c0 of the draws of dataset-level parameters, beyond any sample index. */
#define DRAW_GLOBAL 0xFFFFFFFFu

/* Structure of one modality. The weights were tuned by hand so that a ridge fit on pooled
 * features gives a sign accuracy of about 0.8 for text and 0.65 to 0.7 for audio and vision
 * (checked by synth_text_most_informative in tests/test_dataset.c). */
typedef struct {
    const char *name;
    int dim;
    float gain;         /* a: weight of the label on the sentiment direction */
    float ambiguity;    /* b: weight of the per-sample ambiguity n */
    float step_noise;   /* sigma: std of per-step noise, per dimension */
    float nuisance;     /* std of each nuisance factor's loading, per dimension */
    float corruption;   /* C: std of the corruption vector, per dimension */
    float heavy_share;  /* share of samples with q in [0, 0.3) */
    float medium_share; /* share with q in [0.3, 0.8); the rest has q in [0.8, 1] */
} SynthModality;

typedef struct {
    SynthModality mod[3];
    float *direction[3]; /* [D] unit sentiment direction */
    float *loadings[3];  /* [D, K] nuisance loadings */
    RngStream stream[3];
} SynthModel;

static void synth_model_init(SynthModel *sm, const char *variant, RngStream base) {
    const SynthModality text = {"text", 768, 1.0f, 0.8f, 1.0f, 0.5f, 2.0f, 0.10f, 0.15f};
    const SynthModality audio = {"audio", 74, 1.0f, 2.6f, 1.0f, 0.5f, 2.0f, 0.20f, 0.20f};
    SynthModality vision = {"vision", 47, 1.0f, 2.9f, 1.0f, 0.5f, 2.0f, 0.20f, 0.20f};
    if (strcmp(variant, "mosei") == 0)
        vision.dim = 35;
    sm->mod[0] = text;
    sm->mod[1] = audio;
    sm->mod[2] = vision;
    for (int m = 0; m < 3; m++) {
        int d = sm->mod[m].dim;
        sm->stream[m] = rng_substream(base, (uint64_t)m + 1);
        sm->direction[m] = xmalloc((size_t)d * sizeof(float));
        rng_fill_normal(sm->stream[m], DRAW_GLOBAL, 0, sm->direction[m], (size_t)d);
        double norm = 0;
        for (int j = 0; j < d; j++)
            norm += (double)sm->direction[m][j] * sm->direction[m][j];
        for (int j = 0; j < d; j++)
            sm->direction[m][j] = (float)(sm->direction[m][j] / sqrt(norm));
        size_t nl = (size_t)d * SYNTH_NUISANCE_RANK;
        sm->loadings[m] = xmalloc(nl * sizeof(float));
        rng_fill_normal(sm->stream[m], DRAW_GLOBAL, 1, sm->loadings[m], nl);
        for (size_t j = 0; j < nl; j++)
            sm->loadings[m][j] *= sm->mod[m].nuisance;
    }
}

static void synth_model_free(SynthModel *sm) {
    for (int m = 0; m < 3; m++) {
        free(sm->direction[m]);
        free(sm->loadings[m]);
    }
}

/* Label of sample i: a bimodal sentiment (magnitude about 1.3 +- 0.8, either sign) rounded
 * to a multiple of 1/3, like averaged annotator scores, with SYNTH_ZERO_SHARE exact zeros. */
static float synth_label(RngStream s, int i) {
    float u[4], g[2];
    rng_fill_uniform(s, (uint32_t)i, DRAW_LABEL, u, 4);
    rng_fill_normal(s, (uint32_t)i, DRAW_LABEL, g, 2);
    if (u[0] < SYNTH_ZERO_SHARE)
        return 0.0f;
    float magnitude = fabsf(1.3f + 0.8f * g[0]);
    float sentiment = u[1] < 0.5f ? -magnitude : magnitude;
    float y = roundf(sentiment * 3.0f) / 3.0f;
    if (y == 0.0f)
        y = sentiment < 0 ? -1.0f / 3.0f : 1.0f / 3.0f;
    return fminf(fmaxf(y, -EUAR_LABEL_MAX), EUAR_LABEL_MAX);
}

static float synth_quality(const SynthModality *p, const float u[2]) {
    if (u[0] < p->heavy_share)
        return 0.3f * u[1];
    if (u[0] < p->heavy_share + p->medium_share)
        return 0.3f + 0.5f * u[1];
    return 0.8f + 0.2f * u[1];
}

/* Writes the [T, D] features of sample i for modality m into out (zeroed beyond length) and
 * returns its quality. `work` has room for T*D + D + K floats. */
static float synth_sample(const SynthModel *sm, int m, int i, float y, int length, float *out,
                          float *work) {
    const SynthModality *p = &sm->mod[m];
    const int d = p->dim, k_rank = SYNTH_NUISANCE_RANK;
    RngStream s = sm->stream[m];
    float u[2], n[1];
    rng_fill_uniform(s, (uint32_t)i, DRAW_SCALARS, u, 2);
    rng_fill_normal(s, (uint32_t)i, DRAW_SCALARS, n, 1);
    float q = synth_quality(p, u);
    float *noise = work;                            /* [length, D] */
    float *base = work + (size_t)SYNTH_STEPS * d;   /* [D] the time-invariant part */
    float *z = base + d;                            /* [K] */
    rng_fill_normal(s, (uint32_t)i, DRAW_NUISANCE, z, (size_t)k_rank);
    rng_fill_normal(s, (uint32_t)i, DRAW_CORRUPTION, base, (size_t)d);
    float signal = q * (p->gain * y + p->ambiguity * n[0]);
    for (int j = 0; j < d; j++) {
        float nuisance = 0;
        for (int k = 0; k < k_rank; k++)
            nuisance += sm->loadings[m][(size_t)j * k_rank + k] * z[k];
        base[j] = signal * sm->direction[m][j] + nuisance + (1 - q) * p->corruption * base[j];
    }
    rng_fill_normal(s, (uint32_t)i, DRAW_STEP_NOISE, noise, (size_t)length * d);
    for (int t = 0; t < SYNTH_STEPS; t++)
        for (int j = 0; j < d; j++) {
            size_t at = (size_t)t * d + j;
            out[at] = t < length ? base[j] + p->step_noise * noise[at] : 0.0f;
        }
    return q;
}

/* Fills ids, splits, labels and per-modality lengths and availability of `ds`. */
static void synth_fill_samples(Dataset *ds, const char *variant, uint64_t seed,
                               const int sizes[EUAR_SPLIT_COUNT], RngStream base) {
    int n = ds->n;
    ds->ids = xcalloc((size_t)n, sizeof(char *));
    ds->split = xmalloc((size_t)n);
    ds->labels = xmalloc((size_t)n * sizeof(float));
    int32_t *perm = xmalloc((size_t)n * sizeof(int32_t));
    rng_permutation(rng_stream(seed, EUAR_RNG_SPLIT), 0, 0, perm, n);
    for (int j = 0; j < n; j++)
        ds->split[perm[j]] = j < sizes[0] ? EUAR_SPLIT_TRAIN
                             : j < sizes[0] + sizes[1] ? EUAR_SPLIT_VALID
                                                       : EUAR_SPLIT_TEST;
    free(perm);
    int32_t *lengths = xmalloc((size_t)n * sizeof(int32_t));
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "synth-%s-%05d", variant, i);
        ds->ids[i] = xstrdup(id);
        ds->labels[i] = synth_label(base, i);
        lengths[i] = SYNTH_MIN_LENGTH +
                     (int32_t)rng_below(base, (uint32_t)i, DRAW_LENGTH, 0,
                                        SYNTH_STEPS - SYNTH_MIN_LENGTH + 1);
    }
    for (int m = 0; m < ds->num_modalities; m++) {
        /* Steps are aligned across modalities (as in the word-aligned CMU-MOSI features), so
         * every modality of a sample has the same length. */
        ds->mod[m].lengths = xmalloc((size_t)n * sizeof(int32_t));
        memcpy(ds->mod[m].lengths, lengths, (size_t)n * sizeof(int32_t));
        ds->mod[m].available = xmalloc((size_t)n);
        memset(ds->mod[m].available, 1, (size_t)n);
    }
    free(lengths);
}

/* Generates the features of every sample chunk by chunk into the open writer. */
static int synth_write_features(H5Writer *w, const Dataset *ds, const SynthModel *sm) {
    float *quality[3];
    int rc = 0;
    for (int m = 0; m < 3; m++)
        quality[m] = xmalloc((size_t)ds->n * sizeof(float));
    for (int m = 0; m < 3 && rc == 0; m++) {
        const int d = sm->mod[m].dim;
        const size_t per_sample = (size_t)SYNTH_STEPS * d;
        float *chunk = xmalloc((size_t)EUAR_CHUNK_SAMPLES * per_sample * sizeof(float));
        float *work = xmalloc((per_sample + (size_t)d + SYNTH_NUISANCE_RANK) * sizeof(float));
        for (int first = 0; first < ds->n && rc == 0; first += EUAR_CHUNK_SAMPLES) {
            int count = EUAR_MIN(EUAR_CHUNK_SAMPLES, ds->n - first);
            for (int j = 0; j < count; j++) {
                int i = first + j;
                quality[m][i] = synth_sample(sm, m, i, ds->labels[i], ds->mod[m].lengths[i],
                                             chunk + (size_t)j * per_sample, work);
            }
            rc = h5_writer_write_rows(w, ds, m, first, count, chunk);
        }
        free(chunk);
        free(work);
    }
    for (int m = 0; m < 3 && rc == 0; m++) {
        char path[96];
        snprintf(path, sizeof(path), "/modalities/%s/quality", sm->mod[m].name);
        rc = h5_writer_write_extra_f32(w, path, quality[m], ds->n);
    }
    for (int m = 0; m < 3; m++)
        free(quality[m]);
    return rc;
}

int synth_sentiment_write_sized(const char *path, const char *variant, uint64_t seed,
                                const int split_sizes[EUAR_SPLIT_COUNT]) {
    if (strcmp(variant, "mosi") != 0 && strcmp(variant, "mosei") != 0)
        return err_set("synthetic variant '%s' is unknown; use 'mosi' or 'mosei'", variant);
    long long total = 0;
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++) {
        if (split_sizes[s] < 1)
            return err_set("split %s of the synthetic dataset has %d samples; each split "
                           "needs at least 1",
                           split_name((SplitId)s), split_sizes[s]);
        total += split_sizes[s];
    }
    if (total > 10000000)
        return err_set("synthetic dataset of %lld samples is too large (maximum 10000000)",
                       total);
    RngStream base = rng_stream(seed, EUAR_RNG_SYNTH);
    SynthModel sm;
    synth_model_init(&sm, variant, base);
    Dataset ds;
    memset(&ds, 0, sizeof(ds));
    snprintf(ds.name, sizeof(ds.name), "synth-%s", variant);
    ds.task = EUAR_TASK_REGRESSION;
    ds.n = (int)total;
    ds.num_modalities = 3;
    for (int m = 0; m < 3; m++) {
        snprintf(ds.mod[m].name, sizeof(ds.mod[m].name), "%s", sm.mod[m].name);
        ds.mod[m].kind = EUAR_KIND_FEATURES;
        ds.mod[m].t = SYNTH_STEPS;
        ds.mod[m].d = sm.mod[m].dim;
    }
    synth_fill_samples(&ds, variant, seed, split_sizes, base);
    H5Writer w;
    int rc = h5_writer_open(&w, path);
    if (rc == 0) {
        rc = h5_writer_write_layout(&w, &ds);
        if (rc == 0)
            rc = synth_write_features(&w, &ds, &sm);
        if (rc == 0)
            rc = h5_writer_commit(&w);
        else
            h5_writer_abort(&w);
    }
    dataset_free(&ds);
    synth_model_free(&sm);
    return rc;
}

int synth_sentiment_write(const char *path, const char *variant, uint64_t seed) {
    /* Sizes of the standard CMU-MOSI and CMU-MOSEI folds (train, valid, test), as in the
     * MMSA and MAG-BERT feature pickles. */
    static const int mosi[EUAR_SPLIT_COUNT] = {1284, 229, 686};
    static const int mosei[EUAR_SPLIT_COUNT] = {16326, 1871, 4659};
    return synth_sentiment_write_sized(path, variant, seed,
                                       strcmp(variant, "mosei") == 0 ? mosei : mosi);
}
