/* Generators of synth-nyud and synth-mvsa: classification datasets shaped like the two image
 * sets of QMF's noise experiments, NYU Depth V2 scene recognition (RGB and depth) and
 * MVSA-Single (image and text). The content is synthetic with a known structure:
 *
 *   synth-nyud  10 scene classes. Each class has a prototype colour layout (base colour,
 *               gradient, three colour blobs) and a prototype depth layout (back wall, floor,
 *               side wall, three boxes of furniture). A sample renders both prototypes with
 *               its own shift, lighting or depth scale, clutter and sensor noise.
 *   synth-mvsa  3 sentiment classes. The image's brightness and warmth shift with the class
 *               over a random scene. The text mixes sentiment words of the class, some
 *               contradictory words, neutral words and filler.
 *
 * In synth-nyud each modality is ambiguous for NYUD_AMBIGUOUS_SHARE of the samples,
 * independently for rgb and depth. Half of those blend the prototype of the true class with
 * another class's, and the others keep only NYUD_DEGRADED_CONTRAST of their contrast under
 * stronger noise. /modalities/<name>/quality stores 1 for a clear sample, the weight of the
 * true class for a blend and the remaining contrast for a degraded sample. The noise levels
 * were tuned by hand so that simple classifiers find each modality useful alone and both
 * together better (tests/test_synth_images.c). Every value is a counter-addressed Philox
 * draw keyed by (seed, sample, purpose), so the same seed gives the same bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "datasets/dataset.h"
#include "datasets/dataset_internal.h"

#define SIDE 32
#define PIXELS (SIDE * SIDE)
#define MAX_SAMPLES 1000000

/* Counter slots (c1) of the per-sample draws. Their c0 is the sample index. */
enum {
    DRAW_CLASS,
    DRAW_RGB,
    DRAW_RGB_NORMAL,
    DRAW_RGB_NOISE,
    DRAW_DEPTH,
    DRAW_DEPTH_NORMAL,
    DRAW_DEPTH_NOISE,
    DRAW_IMAGE,
    DRAW_IMAGE_NORMAL,
    DRAW_IMAGE_NOISE,
    DRAW_TEXT_LENGTH,
    DRAW_TEXT,
    DRAW_TEXT_ORDER
};
/* c0 of the draws of dataset-level parameters (class prototypes), beyond any sample index. */
#define DRAW_GLOBAL 0xFFFFFFFFu

/* Clamps v to [0, 255] and rounds half up. */
static uint8_t to_level(float v) {
    float r = floorf(v + 0.5f);
    if (r < 0.0f)
        return 0;
    if (r > 255.0f)
        return 255;
    return (uint8_t)r;
}

static float gauss_blob(float u, float v, float cu, float cv, float radius) {
    float du = u - cu, dv = v - cv;
    return expf(-(du * du + dv * dv) / (2.0f * radius * radius));
}

/* Pixel centre of column x (or row y) in (0, 1). */
static float coord(int x) {
    return ((float)x + 0.5f) / SIDE;
}

/* Checks the requested split sizes, then fills name, ids and splits of `ds`. The splits come
 * from a permutation of the split stream, as in the other generators. */
static int synth_images_init(Dataset *ds, const char *variant, uint64_t seed,
                             const int sizes[EUAR_SPLIT_COUNT]) {
    long long total = 0;
    for (int s = 0; s < EUAR_SPLIT_COUNT; s++) {
        if (sizes[s] < 1)
            return err_set("split %s of synth-%s has %d samples; each split needs at least 1",
                           split_name((SplitId)s), variant, sizes[s]);
        total += sizes[s];
    }
    if (total > MAX_SAMPLES)
        return err_set("synth-%s of %lld samples is too large (maximum %d)", variant, total,
                       MAX_SAMPLES);
    memset(ds, 0, sizeof(*ds));
    snprintf(ds->name, sizeof(ds->name), "synth-%s", variant);
    ds->task = EUAR_TASK_CLASSIFICATION;
    ds->n = (int)total;
    int n = ds->n;
    ds->ids = xcalloc((size_t)n, sizeof(char *));
    ds->split = xmalloc((size_t)n);
    ds->classes = xmalloc((size_t)n * sizeof(int32_t));
    int32_t *perm = xmalloc((size_t)n * sizeof(int32_t));
    rng_permutation(rng_stream(seed, EUAR_RNG_SPLIT), 0, 0, perm, n);
    for (int j = 0; j < n; j++)
        ds->split[perm[j]] = j < sizes[0]              ? EUAR_SPLIT_TRAIN
                             : j < sizes[0] + sizes[1] ? EUAR_SPLIT_VALID
                                                       : EUAR_SPLIT_TEST;
    free(perm);
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof(id), "synth-%s-%06d", variant, i);
        ds->ids[i] = xstrdup(id);
    }
    return 0;
}

static void set_class_names(Dataset *ds, const char *const *names, int count) {
    ds->num_classes = count;
    ds->class_names = xcalloc((size_t)count, sizeof(char *));
    for (int c = 0; c < count; c++)
        ds->class_names[c] = xstrdup(names[c]);
}

/* Appends a modality, available for every sample; `channels` is used by images only. */
static void add_modality(Dataset *ds, const char *name, ModalityKind kind, int channels) {
    Modality *m = &ds->mod[ds->num_modalities++];
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->kind = kind;
    if (kind == EUAR_KIND_IMAGE) {
        m->c = channels;
        m->h = SIDE;
        m->w = SIDE;
    }
    m->available = xmalloc((size_t)ds->n);
    memset(m->available, 1, (size_t)ds->n);
}

/* Writes the data of sample i of one modality to `out` and, for synth-nyud, its quality. */
typedef void (*RenderFn)(const void *model, const Dataset *ds, int i, void *out, float *quality);

/* Renders `bytes_per_sample` bytes per sample of modality m chunk by chunk and writes them. */
static int write_rendered(H5Writer *w, const Dataset *ds, int m, size_t bytes_per_sample,
                          RenderFn render, const void *model, float *quality) {
    const int chunk_samples = EUAR_CHUNK_SAMPLES_SMALL;
    uint8_t *chunk = xmalloc((size_t)chunk_samples * bytes_per_sample);
    int rc = 0;
    for (int first = 0; first < ds->n && rc == 0; first += chunk_samples) {
        int count = EUAR_MIN(chunk_samples, ds->n - first);
        for (int j = 0; j < count; j++) {
            int i = first + j;
            render(model, ds, i, chunk + (size_t)j * bytes_per_sample,
                   quality ? &quality[i] : NULL);
        }
        rc = h5_writer_write_rows(w, ds, m, first, count, chunk);
    }
    free(chunk);
    return rc;
}

/* ---------------------------------------------------------------- synth-nyud */

#define NYUD_CLASSES 10
#define NYUD_BLOBS 3
#define NYUD_BOXES 3
/* Share of samples whose rgb (and, independently, depth) is ambiguous. */
#define NYUD_AMBIGUOUS_SHARE 0.25f
/* Contrast left in a degraded sample, which is also its stored quality. */
#define NYUD_DEGRADED_CONTRAST 0.3f

/* Class names of the ten-class NYU Depth V2 scene-recognition setting, where "others" gathers
 * the rare scene types. */
static const char *const nyud_class_names[NYUD_CLASSES] = {
    "bedroom", "kitchen",   "living_room", "bathroom",  "dining_room",
    "office",  "home_office", "classroom", "bookstore", "others"};

/* Colour layout of a class: level(u, v) = base + gradient . (u - 0.5, v - 0.5) + blobs. */
typedef struct {
    float base[3];
    float grad_u[3], grad_v[3];
    float blob_u[NYUD_BLOBS], blob_v[NYUD_BLOBS], blob_radius[NYUD_BLOBS];
    float blob_colour[NYUD_BLOBS][3];
} RgbLayout;

/* Depth layout of a class, depths in [0, 1] from near to far: a back wall, a floor rising
 * from the bottom row to the horizon, an optional side wall and boxes of furniture. */
typedef struct {
    float wall, horizon;
    int side;          /* 0 none, 1 left, 2 right */
    float side_extent; /* width of the side wall band */
    float box_u0[NYUD_BOXES], box_u1[NYUD_BOXES], box_v0[NYUD_BOXES], box_v1[NYUD_BOXES];
    float box_depth[NYUD_BOXES];
} DepthLayout;

typedef struct {
    RngStream stream;
    RgbLayout rgb[NYUD_CLASSES];
    DepthLayout depth[NYUD_CLASSES];
} NyudModel;

static void nyud_model_init(NyudModel *nm, uint64_t seed) {
    nm->stream = rng_substream(rng_stream(seed, EUAR_RNG_SYNTH), hash_fnv1a64("synth-nyud", 10,
                                                                             EUAR_FNV_OFFSET));
    for (int c = 0; c < NYUD_CLASSES; c++) {
        float u[32], g[32];
        rng_fill_uniform(nm->stream, DRAW_GLOBAL, (uint32_t)(2 * c), u, 32);
        rng_fill_normal(nm->stream, DRAW_GLOBAL, (uint32_t)(2 * c), g, 32);
        RgbLayout *r = &nm->rgb[c];
        for (int ch = 0; ch < 3; ch++) {
            r->base[ch] = 100.0f + 50.0f * u[ch];
            r->grad_u[ch] = 25.0f * g[ch];
            r->grad_v[ch] = 25.0f * g[3 + ch];
        }
        for (int k = 0; k < NYUD_BLOBS; k++) {
            r->blob_u[k] = 0.15f + 0.7f * u[3 + k];
            r->blob_v[k] = 0.15f + 0.7f * u[6 + k];
            r->blob_radius[k] = 0.08f + 0.14f * u[9 + k];
            for (int ch = 0; ch < 3; ch++)
                r->blob_colour[k][ch] = 45.0f * g[6 + 3 * k + ch];
        }

        rng_fill_uniform(nm->stream, DRAW_GLOBAL, (uint32_t)(2 * c + 1), u, 32);
        DepthLayout *d = &nm->depth[c];
        d->wall = 0.55f + 0.4f * u[0];
        d->horizon = 0.3f + 0.3f * u[1];
        d->side = (int)(u[2] * 3.0f);
        d->side_extent = 0.15f + 0.2f * u[3];
        for (int k = 0; k < NYUD_BOXES; k++) {
            d->box_u0[k] = 0.05f + 0.65f * u[4 + k];
            d->box_u1[k] = d->box_u0[k] + 0.12f + 0.23f * u[7 + k];
            d->box_v0[k] = 0.3f + 0.4f * u[10 + k];
            d->box_v1[k] = d->box_v0[k] + 0.15f + 0.25f * u[13 + k];
            d->box_depth[k] = 0.15f + (d->wall - 0.25f) * u[16 + k];
        }
    }
}

/* Adds weight * the colour layout shifted by (du, dv) to out [3, SIDE, SIDE]. */
static void render_rgb_layout(float *out, const RgbLayout *r, float du, float dv, float weight) {
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            float u = coord(x) - du, v = coord(y) - dv;
            float blob[NYUD_BLOBS];
            for (int k = 0; k < NYUD_BLOBS; k++)
                blob[k] = gauss_blob(u, v, r->blob_u[k], r->blob_v[k], r->blob_radius[k]);
            for (int ch = 0; ch < 3; ch++) {
                float level = r->base[ch] + r->grad_u[ch] * (u - 0.5f) +
                              r->grad_v[ch] * (v - 0.5f);
                for (int k = 0; k < NYUD_BLOBS; k++)
                    level += r->blob_colour[k][ch] * blob[k];
                out[ch * PIXELS + y * SIDE + x] += weight * level;
            }
        }
}

/* Depth in [0, 1] of the layout at (u, v): the nearest of wall or floor, side wall, boxes. */
static float depth_at(const DepthLayout *d, float u, float v) {
    float depth = d->wall;
    if (v > d->horizon)
        depth = d->wall - (d->wall - 0.08f) * (v - d->horizon) / (1.0f - d->horizon);
    if (d->side != 0) {
        /* Distance from the wall's edge of the image; the side wall recedes from depth 0.25
         * there to the back wall's depth at side_extent. */
        float band = d->side == 1 ? u : 1.0f - u;
        if (band < d->side_extent)
            depth = fminf(depth, 0.25f + (d->wall - 0.25f) * band / d->side_extent);
    }
    for (int k = 0; k < NYUD_BOXES; k++)
        if (u >= d->box_u0[k] && u < d->box_u1[k] && v >= d->box_v0[k] && v < d->box_v1[k])
            depth = fminf(depth, d->box_depth[k]);
    return depth;
}

/* Adds weight * the depth layout shifted by (du, dv) to out [SIDE, SIDE]. */
static void render_depth_layout(float *out, const DepthLayout *d, float du, float dv,
                                float weight) {
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
            out[y * SIDE + x] += weight * depth_at(d, coord(x) - du, coord(y) - dv);
}

/* Chooses how sample i shows its class in one modality from uniforms u[0..3): returns the
 * weight of the true class (1 clear, in [0.35, 0.6) blended, NYUD_DEGRADED_CONTRAST
 * degraded) and sets *other to the blended class (or -1) and *degraded. */
static float nyud_ambiguity(const NyudModel *nm, int i, uint32_t slot, int cls, const float *u,
                            int *other, int *degraded) {
    *other = -1;
    *degraded = 0;
    if (u[0] >= NYUD_AMBIGUOUS_SHARE)
        return 1.0f;
    if (u[1] < 0.5f) {
        *degraded = 1;
        return NYUD_DEGRADED_CONTRAST;
    }
    *other = (cls + 1 + (int)rng_below(nm->stream, (uint32_t)i, slot, 0, NYUD_CLASSES - 1)) %
             NYUD_CLASSES;
    return 0.35f + 0.25f * u[2];
}

/* Renders the rgb image [3, SIDE, SIDE] of sample i. */
static void nyud_render_rgb(const void *model, const Dataset *ds, int i, void *out,
                            float *quality) {
    const NyudModel *nm = model;
    const int cls = ds->classes[i];
    float u[16], g[16], noise[3 * PIXELS], level[3 * PIXELS];
    rng_fill_uniform(nm->stream, (uint32_t)i, DRAW_RGB, u, 16);
    rng_fill_normal(nm->stream, (uint32_t)i, DRAW_RGB_NORMAL, g, 16);
    rng_fill_normal(nm->stream, (uint32_t)i, DRAW_RGB_NOISE, noise, 3 * PIXELS);
    int other, degraded;
    float q = nyud_ambiguity(nm, i, DRAW_RGB, cls, u, &other, &degraded);
    float du = 0.24f * (u[3] - 0.5f), dv = 0.24f * (u[4] - 0.5f);
    memset(level, 0, sizeof(level));
    render_rgb_layout(level, &nm->rgb[cls], du, dv, other >= 0 ? q : 1.0f);
    if (other >= 0)
        render_rgb_layout(level, &nm->rgb[other], du, dv, 1.0f - q);
    /* Lighting: a gain around 1 and an offset per channel; clutter: two blobs of random
     * colour; texture: independent noise per pixel and channel. */
    float contrast = degraded ? NYUD_DEGRADED_CONTRAST : 1.0f;
    float gain = contrast * (1.0f + 0.12f * g[0]);
    float noise_std = degraded ? 40.0f : 20.0f;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            float clutter[2];
            for (int k = 0; k < 2; k++)
                clutter[k] = gauss_blob(coord(x), coord(y), u[5 + k], u[7 + k],
                                        0.06f + 0.12f * u[9 + k]);
            for (int ch = 0; ch < 3; ch++) {
                int at = ch * PIXELS + y * SIDE + x;
                float v = 128.0f + gain * (level[at] - 128.0f) + 28.0f * g[1 + ch] +
                          70.0f * (g[4 + ch] * clutter[0] + g[7 + ch] * clutter[1]) +
                          noise_std * noise[at];
                ((uint8_t *)out)[at] = to_level(v);
            }
        }
    *quality = q;
}

/* Renders the depth image [1, SIDE, SIDE] of sample i; near is bright (level 215 at depth 0,
 * 45 at depth 1). */
static void nyud_render_depth(const void *model, const Dataset *ds, int i, void *out,
                              float *quality) {
    const NyudModel *nm = model;
    const int cls = ds->classes[i];
    float u[16], g[8], noise[PIXELS], depth[PIXELS];
    rng_fill_uniform(nm->stream, (uint32_t)i, DRAW_DEPTH, u, 16);
    rng_fill_normal(nm->stream, (uint32_t)i, DRAW_DEPTH_NORMAL, g, 8);
    rng_fill_normal(nm->stream, (uint32_t)i, DRAW_DEPTH_NOISE, noise, PIXELS);
    int other, degraded;
    float q = nyud_ambiguity(nm, i, DRAW_DEPTH, cls, u, &other, &degraded);
    float du = 0.2f * (u[3] - 0.5f), dv = 0.2f * (u[4] - 0.5f);
    memset(depth, 0, sizeof(depth));
    render_depth_layout(depth, &nm->depth[cls], du, dv, other >= 0 ? q : 1.0f);
    if (other >= 0)
        render_depth_layout(depth, &nm->depth[other], du, dv, 1.0f - q);
    /* Clutter: one box at a random place and depth in 60% of samples; a depth scale and
     * offset per sample; sensor noise per pixel. */
    int has_box = u[5] < 0.6f;
    float bu0 = u[6] * 0.8f, bv0 = 0.2f + 0.6f * u[7];
    float bu1 = bu0 + 0.1f + 0.25f * u[8], bv1 = bv0 + 0.1f + 0.25f * u[9];
    float box_depth = 0.1f + 0.6f * u[10];
    float contrast = degraded ? NYUD_DEGRADED_CONTRAST : 1.0f;
    float scale = 1.0f + 0.08f * g[0], offset = 0.04f * g[1];
    float noise_std = degraded ? 18.0f : 7.0f;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            float d = depth[y * SIDE + x];
            float cu = coord(x), cv = coord(y);
            if (has_box && cu >= bu0 && cu < bu1 && cv >= bv0 && cv < bv1)
                d = fminf(d, box_depth);
            d = 0.5f + contrast * (scale * d + offset - 0.5f);
            ((uint8_t *)out)[y * SIDE + x] =
                to_level(215.0f - 170.0f * d + noise_std * noise[y * SIDE + x]);
        }
    *quality = q;
}

int synth_nyud_write_sized(const char *path, uint64_t seed,
                           const int split_sizes[EUAR_SPLIT_COUNT]) {
    Dataset ds;
    if (synth_images_init(&ds, "nyud", seed, split_sizes) != 0)
        return -1;
    NyudModel nm;
    nyud_model_init(&nm, seed);
    set_class_names(&ds, nyud_class_names, NYUD_CLASSES);
    for (int i = 0; i < ds.n; i++)
        ds.classes[i] = (int32_t)rng_below(nm.stream, (uint32_t)i, DRAW_CLASS, 0, NYUD_CLASSES);
    add_modality(&ds, "rgb", EUAR_KIND_IMAGE, 3);
    add_modality(&ds, "depth", EUAR_KIND_IMAGE, 1);
    float *quality[2] = {xmalloc((size_t)ds.n * sizeof(float)),
                         xmalloc((size_t)ds.n * sizeof(float))};
    H5Writer w;
    int rc = h5_writer_open(&w, path);
    if (rc == 0) {
        rc = h5_writer_write_layout(&w, &ds);
        if (rc == 0)
            rc = write_rendered(&w, &ds, 0, 3 * PIXELS, nyud_render_rgb, &nm, quality[0]);
        if (rc == 0)
            rc = write_rendered(&w, &ds, 1, PIXELS, nyud_render_depth, &nm, quality[1]);
        if (rc == 0)
            rc = h5_writer_write_extra_f32(&w, "/modalities/rgb/quality", quality[0], ds.n);
        if (rc == 0)
            rc = h5_writer_write_extra_f32(&w, "/modalities/depth/quality", quality[1], ds.n);
        if (rc == 0)
            rc = h5_writer_commit(&w);
        else
            h5_writer_abort(&w);
    }
    free(quality[0]);
    free(quality[1]);
    dataset_free(&ds);
    return rc;
}

int synth_nyud_write(const char *path, uint64_t seed) {
    /* The standard NYU Depth V2 split has 795 training and 654 test images; 159 of the
     * training images (20%) become the validation split here. */
    static const int sizes[EUAR_SPLIT_COUNT] = {636, 159, 654};
    return synth_nyud_write_sized(path, seed, sizes);
}

/* ---------------------------------------------------------------- synth-mvsa */

#define MVSA_CLASSES 3
#define MVSA_STEPS 30
#define MVSA_MIN_LENGTH 8
#define MVSA_VOCAB 1000
/* Vocabulary: 0 padding, 1 blank, then a positive and a negative lexicon, neutral
 * (informational) words and filler. */
#define TOKEN_POSITIVE_FIRST 2
#define TOKEN_NEGATIVE_FIRST 102
#define TOKEN_LEXICON_SIZE 100
#define TOKEN_NEUTRAL_FIRST 202
#define TOKEN_NEUTRAL_SIZE 200
#define TOKEN_FILLER_FIRST 402
/* Share of positive and negative texts without any sentiment word. */
#define MVSA_SILENT_SHARE 0.12f
/* Probability that a sentiment word of a positive or negative text has the other polarity. */
#define MVSA_FLIP_SHARE 0.15f

static const char *const mvsa_class_names[MVSA_CLASSES] = {"positive", "neutral", "negative"};

/* Sentiment sign of each class, in the order of mvsa_class_names. */
static const float mvsa_sign[MVSA_CLASSES] = {1.0f, 0.0f, -1.0f};

typedef struct {
    RngStream stream;
} MvsaModel;

/* Renders the image [3, SIDE, SIDE] of sample i: a random scene of four colour blobs over a
 * gradient, whose brightness and warmth (red up, blue down) shift with the sentiment sign. */
static void mvsa_render_image(const void *model, const Dataset *ds, int i, void *out,
                              float *quality) {
    const MvsaModel *mm = model;
    const float sign = mvsa_sign[ds->classes[i]];
    float u[16], g[24], noise[3 * PIXELS];
    rng_fill_uniform(mm->stream, (uint32_t)i, DRAW_IMAGE, u, 16);
    rng_fill_normal(mm->stream, (uint32_t)i, DRAW_IMAGE_NORMAL, g, 24);
    rng_fill_normal(mm->stream, (uint32_t)i, DRAW_IMAGE_NOISE, noise, 3 * PIXELS);
    float brightness = 128.0f + 11.0f * sign + 20.0f * g[0];
    float warmth = 8.0f * sign + 14.0f * g[1];
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            float cu = coord(x), cv = coord(y), blob[4];
            for (int k = 0; k < 4; k++)
                blob[k] = gauss_blob(cu, cv, u[k], u[4 + k], 0.08f + 0.17f * u[8 + k]);
            for (int ch = 0; ch < 3; ch++) {
                int at = ch * PIXELS + y * SIDE + x;
                float v = brightness + 25.0f * g[2 + ch] * (cu - 0.5f) +
                          25.0f * g[5 + ch] * (cv - 0.5f) + 12.0f * noise[at];
                for (int k = 0; k < 4; k++)
                    v += 50.0f * g[8 + 3 * k + ch] * blob[k];
                if (ch == 0)
                    v += warmth;
                else if (ch == 2)
                    v -= warmth;
                ((uint8_t *)out)[at] = to_level(v);
            }
        }
}

static int synth_mvsa_class(const MvsaModel *mm, int i) {
    float u;
    rng_fill_uniform(mm->stream, (uint32_t)i, DRAW_CLASS, &u, 1);
    /* Probabilities 0.4 positive, 0.25 neutral, 0.35 negative: imbalanced on purpose, so
     * that accuracy and macro F1 differ. */
    if (u < 0.4f)
        return 0;
    return u < 0.65f ? 1 : 2;
}

/* Length of the text of sample i, in [MVSA_MIN_LENGTH, MVSA_STEPS]. */
static int32_t mvsa_text_length(const MvsaModel *mm, int i) {
    return MVSA_MIN_LENGTH + (int32_t)rng_below(mm->stream, (uint32_t)i, DRAW_TEXT_LENGTH, 0,
                                                MVSA_STEPS - MVSA_MIN_LENGTH + 1);
}

/* Id of a word of the lexicon [first, first + count), skewed towards the first ids so that
 * some words are frequent and many rare, as in real text. */
static int32_t pick_word(int32_t first, int32_t count, float u) {
    return first + EUAR_MIN((int32_t)((float)count * u * u), count - 1);
}

/* Writes the tokens [MVSA_STEPS] of sample i: its words in random order, then padding 0.
 * A positive or negative text has no sentiment word in MVSA_SILENT_SHARE of cases, else one
 * to three, each of the other polarity with probability MVSA_FLIP_SHARE. A neutral text has
 * one sentiment word of either polarity in 30% of cases. The other words are neutral words
 * (30% of them in a neutral text, 12% otherwise) and filler. */
static void mvsa_render_text(const void *model, const Dataset *ds, int i, void *out,
                             float *quality) {
    const MvsaModel *mm = model;
    const float sign = mvsa_sign[ds->classes[i]];
    const int length = ds->mod[1].lengths[i];
    int32_t *tokens = out, words[MVSA_STEPS], order[MVSA_STEPS];
    float u[4 + 3 * MVSA_STEPS];
    rng_fill_uniform(mm->stream, (uint32_t)i, DRAW_TEXT, u, EUAR_ARRAY_LEN(u));
    int k;
    if (sign != 0.0f)
        k = u[0] < MVSA_SILENT_SHARE ? 0 : 1 + (int)(3.0f * u[1]);
    else
        k = u[0] < 0.7f ? 0 : 1;
    float neutral_share = sign == 0.0f ? 0.3f : 0.12f;
    for (int t = 0; t < length; t++) {
        const float *w = &u[4 + 3 * t];
        if (t < k) {
            float polarity = sign != 0.0f ? (w[0] < MVSA_FLIP_SHARE ? -sign : sign)
                                          : (w[0] < 0.5f ? 1.0f : -1.0f);
            words[t] = pick_word(polarity > 0 ? TOKEN_POSITIVE_FIRST : TOKEN_NEGATIVE_FIRST,
                                 TOKEN_LEXICON_SIZE, w[1]);
        } else if (w[0] < neutral_share) {
            words[t] = pick_word(TOKEN_NEUTRAL_FIRST, TOKEN_NEUTRAL_SIZE, w[1]);
        } else {
            words[t] = pick_word(TOKEN_FILLER_FIRST, MVSA_VOCAB - TOKEN_FILLER_FIRST, w[1]);
        }
    }
    rng_permutation(mm->stream, (uint32_t)i, DRAW_TEXT_ORDER, order, length);
    for (int t = 0; t < MVSA_STEPS; t++)
        tokens[t] = t < length ? words[order[t]] : 0;
}

int synth_mvsa_write_sized(const char *path, uint64_t seed,
                           const int split_sizes[EUAR_SPLIT_COUNT]) {
    Dataset ds;
    if (synth_images_init(&ds, "mvsa", seed, split_sizes) != 0)
        return -1;
    MvsaModel mm;
    mm.stream = rng_substream(rng_stream(seed, EUAR_RNG_SYNTH),
                              hash_fnv1a64("synth-mvsa", 10, EUAR_FNV_OFFSET));
    set_class_names(&ds, mvsa_class_names, MVSA_CLASSES);
    for (int i = 0; i < ds.n; i++)
        ds.classes[i] = synth_mvsa_class(&mm, i);
    add_modality(&ds, "image", EUAR_KIND_IMAGE, 3);
    add_modality(&ds, "text", EUAR_KIND_TOKENS, 0);
    Modality *text = &ds.mod[1];
    text->t = MVSA_STEPS;
    text->d = 1;
    text->vocab = MVSA_VOCAB;
    text->lengths = xmalloc((size_t)ds.n * sizeof(int32_t));
    for (int i = 0; i < ds.n; i++)
        text->lengths[i] = mvsa_text_length(&mm, i);
    H5Writer w;
    int rc = h5_writer_open(&w, path);
    if (rc == 0) {
        rc = h5_writer_write_layout(&w, &ds);
        if (rc == 0)
            rc = write_rendered(&w, &ds, 0, 3 * PIXELS, mvsa_render_image, &mm, NULL);
        if (rc == 0)
            rc = write_rendered(&w, &ds, 1, MVSA_STEPS * sizeof(int32_t), mvsa_render_text,
                                &mm, NULL);
        if (rc == 0)
            rc = h5_writer_commit(&w);
        else
            h5_writer_abort(&w);
    }
    dataset_free(&ds);
    return rc;
}

int synth_mvsa_write(const char *path, uint64_t seed) {
    /* Sizes of the MVSA-Single train, dev and test files read by the QMF code (Zhang et al.,
 * ICML 2023). NOTE: not checked against a copy of those files. */
    static const int sizes[EUAR_SPLIT_COUNT] = {1555, 518, 519};
    return synth_mvsa_write_sized(path, seed, sizes);
}
